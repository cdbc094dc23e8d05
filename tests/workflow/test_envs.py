"""Conda environments per rule kind pin exactly what the pip constraints pin (one set of versions, two ways
to install it), and each rule's env provides every module its script imports."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import yaml

from layerwise.workflow.code_deps import library_modules

from tests.helpers import REPO


def constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip()):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_every_env_pin_matches_the_constraints():
    pins = constraints()
    checked = 0
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        pip = next((d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d), [])
        for requirement in pip:
            name, _, version = requirement.partition("==")
            assert version, f"{env.name}: {requirement!r} is not pinned"
            key = name.lower().replace("_", "-")
            assert key in pins, f"{env.name}: {name} is not in constraints.txt"
            assert pins[key] == version, f"{env.name}: {name}=={version}, constraints.txt has {pins[key]}"
            checked += 1
    assert checked >= 20


def test_the_torch_env_has_everything_the_library_imports_at_run_time():
    torch_env = yaml.safe_load((REPO / "envs/torch.yaml").read_text())
    pip = next(d["pip"] for d in torch_env["dependencies"] if isinstance(d, dict) and "pip" in d)
    names = {r.partition("==")[0].lower() for r in pip}
    declared = re.findall(r'^\s+"([A-Za-z0-9_.-]+)', (REPO / "pyproject.toml").read_text().split("dependencies = [")[1]
                          .split("]")[0], flags=re.M)
    missing = {re.split(r"[<>=]", d)[0].lower() for d in declared} - names
    assert not missing, f"envs/torch.yaml lacks {sorted(missing)} that pyproject.toml declares"


# --- Each rule's conda env provides what its script imports -------------------------------------------------
RULE_BLOCK = re.compile(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", flags=re.M)
# Imported by Snakemake's script preamble from Snakemake's own install (it puts itself on sys.path).
PROVIDED_BY_SNAKEMAKE = {"snakemake"}


def rules_with_scripts() -> dict[str, tuple[Path | None, Path]]:
    """rule → (its `conda:` env file or None, its `script:`), read from rules/*.smk."""
    found = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for rule, body in RULE_BLOCK.findall(smk.read_text()):
            script = re.search(r'script:\s*\n\s*"([^"]+)"', body)
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
            if script:
                found[rule] = ((smk.parent / conda.group(1)).resolve() if conda else None,
                               (smk.parent / script.group(1)).resolve())
    return found


def top_level_imports(source: str, module_level_only: bool) -> set[str]:
    """Top-level names of the modules a file imports. Library modules count at module level only: an import
    inside a function is a deliberate lazy one (e.g. torch in provenance.hardware) for the rules that call it."""
    tree = ast.parse(source)
    # `if TYPE_CHECKING:` imports are for type checkers only; they never run.
    runs = [top for top in tree.body if not (isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test))]
    nodes = ast.walk(tree) if not module_level_only else (
        n for top in runs if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for n in ast.walk(top))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def third_party_imports(script: Path) -> set[str]:
    names = top_level_imports(script.read_text(), module_level_only=False)
    for module in library_modules(script, REPO / "src"):
        names |= top_level_imports(module.read_text(), module_level_only=True)
    return {n for n in names if n not in sys.stdlib_module_names and n != "__future__" and n != "layerwise"
            and n not in PROVIDED_BY_SNAKEMAKE}


def normalise(name: str) -> str:
    return re.split(r"[<>=!\s]", name, maxsplit=1)[0].lower().replace("_", "-")


def env_packages(env: Path) -> set[str]:
    spec = yaml.safe_load(env.read_text())
    names = set()
    for dep in spec["dependencies"]:
        names |= {normalise(d) for d in dep["pip"]} if isinstance(dep, dict) else {normalise(dep)}
    return names


def test_every_rule_env_provides_every_module_its_script_imports():
    distributions = {module: {normalise(d) for d in dists}
                     for module, dists in metadata.packages_distributions().items()}
    rules = rules_with_scripts()
    assert len(rules) >= 20
    problems = []
    for rule, (env, script) in sorted(rules.items()):
        if env is None:
            problems.append(f"{rule}: no conda: env")
            continue
        provided = env_packages(env)
        for module in sorted(third_party_imports(script)):
            candidates = distributions.get(module)
            if not candidates:
                problems.append(f"{rule}: imports {module}, which no installed distribution provides")
            elif not candidates & provided:
                problems.append(f"{rule}: {script.name} imports {module} ({'/'.join(sorted(candidates))}), "
                                f"missing from {env.name}")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_an_import_through_the_library(tmp_path):
    # Planted: a script that imports a library module whose module-level import is torch.
    script = tmp_path / "figure.py"
    script.write_text("from layerwise.lens.decode import logit_lens\nimport matplotlib.pyplot as plt\n")
    assert {"torch", "matplotlib"} <= third_party_imports(script)


def test_gpu_rules_on_the_array_backend_have_cupy():
    """A GPU rule whose library picks numpy or CuPy (layerwise/backend.py) must be able to import CuPy on the
    GPU node, else it silently runs on the CPU of a GPU it reserved."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    gpu_rules = {rule for rule, res in profile["set-resources"].items() if res.get("gpu")}
    checked = 0
    for rule, (env, script) in rules_with_scripts().items():
        if rule in gpu_rules and REPO / "src/layerwise/backend.py" in library_modules(script, REPO / "src"):
            assert "cupy-cuda12x" in env_packages(env), f"{rule} runs on a GPU node from {env.name}, without CuPy"
            checked += 1
    assert checked >= 1
