"""Schema errors in a few lines: key path, problem, nearest valid key (not the schema dump)."""

import copy

import yaml

from layerwise.workflow.config_errors import MAX_PROBLEMS, config_problems

from tests.helpers import REPO
from tests.helpers.workflow_runs import snakemake

SCHEMA = REPO / "schemas" / "config.schema.yaml"
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_the_default_config_has_no_problems():
    assert config_problems(CONFIG, SCHEMA) == []


def test_top_level_typo_names_the_nearest_key_and_the_file():
    config = copy.deepcopy(CONFIG)
    config["geomtry"] = config.pop("geometry")
    lines = config_problems(config, SCHEMA, ["my.yaml"])
    assert lines[0] == "invalid config (my.yaml):"
    assert "unknown key 'geomtry': did you mean 'geometry'?" in lines[1]
    assert len(lines) <= 10


def test_nested_bound_type_and_enum():
    config = copy.deepcopy(CONFIG)
    config["probes"]["n_texts"] = 0
    config["geometry"]["batch_size"] = "big"
    config["backend"] = "jax"
    text = "\n".join(config_problems(config, SCHEMA))
    assert "'probes.n_texts' = 0: must be >= 1" in text
    assert "'geometry.batch_size' = 'big': must be of type integer" in text
    assert "'backend' = 'jax': must be one of 'auto', 'numpy', 'cupy'" in text


def test_a_key_with_no_near_match_lists_the_valid_ones():
    config = copy.deepcopy(CONFIG)
    config["probes"]["zzzz"] = 1
    (line,) = config_problems(config, SCHEMA)[1:]
    assert "unknown key 'probes.zzzz': valid keys:" in line and "n_texts" in line


def test_many_problems_are_cut_to_a_few_lines():
    config = copy.deepcopy(CONFIG)
    for i in range(6):
        config[f"unknown{i}"] = i
    config["seed"] = -1
    config["threads"] = 0
    config["device"] = 3
    config["backend"] = 3
    lines = config_problems(config, SCHEMA)
    assert len(lines) == 1 + MAX_PROBLEMS + 1 and lines[-1].startswith("  ... and ")


def test_snakemake_prints_the_short_message(tmp_path):
    config = copy.deepcopy(CONFIG)
    config["geomtry"] = config.pop("geometry")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, path, "-n")
    output = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode != 0
    assert any("did you mean 'geometry'?" in line for line in output), output
    assert any(str(path) in line for line in output)
    assert len(output) <= 10, output


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    from layerwise.workflow.config_errors import yaml_problem

    path = tmp_path / "broken.yaml"
    path.write_text("seed: 0\nprobes:\n  n_texts: [1, 2\n  max_tokens: 3\n")
    problem = yaml_problem(path)
    assert problem.startswith(f"{path}:4:") and "YAML syntax error" in problem
    assert yaml_problem(REPO / "config.yaml") is None
