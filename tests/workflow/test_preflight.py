"""Config problems known at parse time are refused then, naming the key, before any job is queued."""

from __future__ import annotations

import re

import pytest

from layerwise.workflow.preflight import missing_datasets, missing_local_models, preflight, used_datasets

from tests.helpers.workflow_runs import snakemake, tiny_config


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


def test_a_users_local_corpus_with_a_wrong_path_is_refused_even_with_the_hub_allowed(tmp_path):
    config = config_with([tmp_path], allow_hub=True, norms={"dataset": "mine"},
                         datasets={"mine": {"source": "local", "path": "corpus.jsonl", "layout": "documents"}})
    (problem,) = missing_datasets(config)
    assert problem == (f"norms.dataset = 'mine': none of corpus.jsonl is in data.search_path {[str(tmp_path)]} "
                       "and the entry has no hub fallback")
    (tmp_path / "corpus.jsonl").write_text('{"text": "a review"}\n')
    assert missing_datasets(config) == []


def test_an_empty_or_too_short_corpus_is_refused_naming_file_and_key(tmp_path):
    from layerwise.workflow.preflight import short_corpora

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": ""}\n{"text": "one"}\n{"text": "  "}\n{"text": "two"}\n')
    stream = tmp_path / "stream.txt"
    stream.write_text("x" * 99)
    datasets = {"mine": {"source": "local", "path": "corpus.jsonl", "layout": "documents"},
                "flow": {"source": "local", "path": "stream.txt", "layout": "stream", "format": "txt"}}
    config = config_with([tmp_path], datasets=datasets, norms={"dataset": "mine", "n_texts": 3, "max_tokens": 8},
                         geometry={"dataset": "flow", "n_texts": 10, "max_tokens": 12})
    cache = tmp_path / "cache.json"
    assert short_corpora(config, cache) == [
        f"norms.n_texts = 3: dataset 'mine' ({corpus}) has only 2 non-empty texts",
        f"geometry.n_texts = 10 chunks of geometry.max_tokens = 12: dataset 'flow' ({stream}) has only 99 bytes of text"]
    # enough: 2 texts; 10 chunks of 12 - 2 tokens fit in 100 bytes (a token is at least one byte)
    config["norms"]["n_texts"], config["geometry"]["n_texts"] = 2, 9
    assert short_corpora(config, cache) == []
    # the counts are cached by file version: an edited file is read again
    corpus.write_text('{"text": ""}\n')
    config["norms"]["n_texts"] = 1
    assert short_corpora(config, cache) == [f"norms.n_texts = 1: dataset 'mine' ({corpus}) has only 0 non-empty texts"]


def test_the_workflow_refuses_an_empty_corpus_before_any_job(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "empty.jsonl").write_text('{"text": ""}\n')
    configfile = tiny_config(tmp_path, tmp_path / "no-data", **{
        "datasets": {"empty": {"source": "local", "path": str(tmp_path / "data" / "empty.jsonl")}},
        "norms.dataset": "empty"})
    done = snakemake(tmp_path, configfile, "-n")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Building DAG of jobs" not in output, output[-3000:]
    assert re.search(r"norms\.n_texts = \d+: dataset 'empty' \(.*empty\.jsonl\) has only 0 non-empty texts", output), \
        output[-3000:]


def test_a_lens_example_that_names_no_text_is_refused_with_the_known_names():
    from layerwise.workflow.preflight import unknown_lens_texts
    config = {"lens": {"paper_example": "plasm", "paper_more_examples": ["gpt3_abstract", "nope"]}}
    problems = unknown_lens_texts(config, ["plasma", "gpt3_abstract"])
    assert problems == [
        "lens.paper_example = 'plasm': no example text of that name (known: gpt3_abstract, plasma; add a file "
        "plasm.txt to lens.examples_dir or an entry lens.texts.plasm)",
        "lens.paper_more_examples = 'nope': no example text of that name (known: gpt3_abstract, plasma; add a "
        "file nope.txt to lens.examples_dir or an entry lens.texts.nope)"]
    assert unknown_lens_texts({"lens": {"paper_example": "plasma", "paper_more_examples": []}}, ["plasma"]) == []


def test_the_workflow_refuses_an_unknown_lens_example_before_any_job(tmp_path):
    configfile = tiny_config(tmp_path, tmp_path / "no-data", **{"lens.paper_example": "no_such_text"})
    done = snakemake(tmp_path, configfile, "-n")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "lens.paper_example = 'no_such_text': no example text of that name" in output, output[-3000:]
    assert "Building DAG of jobs" not in output
