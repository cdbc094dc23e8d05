"""A config that fails the schema, explained in a few lines: the key path, what is wrong, the nearest valid key.

Why: jsonschema's own message prints the whole schema and config (~1,850 lines for one typo), which buries
the one line a person needs.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

MAX_PROBLEMS = 3


def config_problems(config: Mapping[str, Any], schema: Mapping[str, Any] | Path | str,
                    files: Iterable[str] = ()) -> list[str]:
    """One short line per schema violation (at most MAX_PROBLEMS, the most specific first); empty if valid."""
    if not isinstance(schema, Mapping):
        schema = yaml.safe_load(Path(schema).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (-len(e.absolute_path), list(map(str, e.absolute_path))))
    where = ", ".join(str(f) for f in files) or "the config"
    lines = [_explain(error) for error in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        lines.append(f"... and {len(errors) - MAX_PROBLEMS} more")
    return [f"invalid config ({where}):", *("  " + line for line in lines)] if lines else []


def _explain(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        parts = []
        for key in unknown:
            near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'?" if near else f"valid keys: {', '.join(allowed)}"
            parts.append(f"unknown key '{_join(path, key)}': {hint}")
        return "; ".join(parts)
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"'{path}' = {error.instance!r}: must be {_BOUND[error.validator]} {error.validator_value}"
    if error.validator == "enum":
        return f"'{path}' = {error.instance!r}: must be one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "type":
        return f"'{path}' = {error.instance!r}: must be of type {error.validator_value}"
    if error.validator == "required":
        return f"'{path}': {error.message}"
    return f"'{path}': {error.message[:200]}"


_BOUND = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _join(path: str, key: str) -> str:
    return key if path == "(top level)" else f"{path}.{key}"


def yaml_problem(path: Path | str) -> str | None:
    """A YAML syntax error as `file:line:column: problem` (Snakemake's own message names neither), else None."""
    try:
        yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        return f"{where}: YAML syntax error: {error.problem or error.context}"
    except yaml.YAMLError as error:
        return f"{path}: YAML syntax error: {error}"
    return None


if __name__ == "__main__":  # `python -m layerwise.workflow.config_errors FILE...`: the Makefile's check before Snakemake
    import sys

    found = [p for p in (yaml_problem(f) for f in sys.argv[1:]) if p]
    for problem in found:
        print(problem, file=sys.stderr)
    sys.exit(1 if found else 0)
