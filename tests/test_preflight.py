"""Config problems known at parse time are refused then, naming the key, before any job is queued."""

from __future__ import annotations

import re

import pytest

from layerwise.preflight import missing_datasets, missing_local_models, preflight, used_datasets
from workflow_runs import snakemake, tiny_config


def config_with(search_path, allow_hub=False, **sections):
    return {"data": {"search_path": [str(p) for p in search_path], "allow_hub": allow_hub},
            "models": {}, **sections}


def test_a_dataset_missing_from_the_search_path_is_named_by_its_key(tmp_path):
    (tmp_path / "imdb_test.jsonl").write_text('{"text": "a", "label": 0}\n')
    config = config_with([tmp_path / "empty", tmp_path], norms={"dataset": "imdb"},
                         probes={"dataset": "imdb.nopunct", "transfer_dataset": "ag_news"})
    assert used_datasets(config) == {"imdb": "norms.dataset", "imdb.nopunct": "probes.dataset",
                                     "ag_news": "probes.transfer_dataset"}
    problems = missing_datasets(config)
    assert len(problems) == 1 and problems[0].startswith("probes.transfer_dataset = 'ag_news'"), problems
    # With the hub allowed, the dataset rule may download it: nothing to refuse at parse time.
    assert missing_datasets({**config, "data": {**config["data"], "allow_hub": True}}) == []


def test_a_used_local_model_path_that_does_not_exist_is_refused(tmp_path):
    (tmp_path / "here").mkdir()
    models = {"ok": {"source": "local", "path": str(tmp_path / "here")},
              "gone": {"source": "local", "path": str(tmp_path / "nope")},
              "unused": {"source": "local", "path": str(tmp_path / "nope")},
              "hub": {"source": "hf", "id": "gpt2"}}
    assert missing_local_models(models, ["ok", "gone", "hub"]) == [
        f"models.gone.path = {str(tmp_path / 'nope')!r} does not exist"]
    with pytest.raises(ValueError, match=r"models\.gone\.path"):
        preflight(config_with([tmp_path], models=models), ["gone"])


def test_the_workflow_refuses_missing_data_before_building_the_dag(tmp_path):
    configfile = tiny_config(tmp_path, tmp_path / "no-data")
    done = snakemake(tmp_path, configfile, "-n")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Building DAG of jobs" not in output, output[-3000:]
    assert re.search(r"\w+\.dataset = 'imdb': none of imdb_test\.jsonl", output), output[-3000:]
