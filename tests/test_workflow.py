"""The workflow itself: lint-clean, runs end to end from another working directory, is idempotent,
and refuses bad configs (naming the key) before any job runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = REPO / "tests" / "config" / "tiny.yaml"
FIGURE, MACROS, PDF = "results/figures/norms.pdf", "results/macros/norms.tex", "results/paper/layerwise.pdf"
HAS_LATEX = shutil.which("latexmk") is not None


def snakemake(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with `workdir` as working directory (never the repository)."""
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), *args]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")  # the tiny run needs no network
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)


def tiny_config(tmp_path: Path, data: Path, **changes) -> Path:
    """tests/config/tiny.yaml with the absolute data path, plus `changes` (`section.key=value`)."""
    config = yaml.safe_load(TINY.read_text())
    config["data"]["search_path"] = [str(data)]
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_lint_is_clean():
    done = subprocess.run([*SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")],
                          capture_output=True, text=True, cwd=REPO)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output
    assert "Lints for" not in output, output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shared_data):
    """One end-to-end run of the tiny config in a fresh temp dir (to the PDF when LaTeX is installed)."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    configfile = tiny_config(workdir, shared_data)
    targets = [] if HAS_LATEX else [FIGURE, MACROS]  # default target = the PDF
    done = snakemake(workdir, configfile, "--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir, configfile


@pytest.mark.slow
def test_tiny_run_draws_the_norm_figure_and_writes_macros(tiny_run):
    workdir, _ = tiny_run
    assert (workdir / FIGURE).read_bytes().startswith(b"%PDF")
    macros = (workdir / MACROS).read_text()
    # One growth macro per model (digits spelled out: LaTeX names are letters only) and the sentence.
    for name in (r"\newcommand{\NormGrowthTinyGptTwo}", r"\newcommand{\NormGrowthTinyBert}", r"\newcommand{\NormsSummary}"):
        assert name in macros
    assert "In tiny-gpt2 the mean norm" in macros and "In tiny-bert the mean norm" in macros
    # The stores behind the figure are complete: a manifest each.
    for model in ("tiny-gpt2", "tiny-bert"):
        assert (workdir / "results/activations" / model / "imdb/n8_l12_s0/manifest.json").is_file()
    assert not (REPO / "results/activations/tiny-gpt2").exists()  # nothing leaked into the repository


@pytest.mark.slow
def test_tiny_run_builds_the_pdf(tiny_run):
    if not HAS_LATEX:
        pytest.skip("latexmk not installed: the PDF step is not run (install: apt-get install latexmk "
                    "texlive-latex-base texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra)")
    workdir, _ = tiny_run
    assert (workdir / PDF).read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(workdir / PDF), "-"], capture_output=True, text=True).stdout
        assert "In tiny-gpt2 the mean norm" in " ".join(text.split())  # this run's numbers, not the repo's


@pytest.mark.slow
def test_second_run_does_nothing(tiny_run):
    workdir, configfile = tiny_run
    targets = [] if HAS_LATEX else [FIGURE, MACROS]
    done = snakemake(workdir, configfile, "--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Nothing to be done" in done.stdout + done.stderr


@pytest.mark.parametrize("change, message", [
    ({"norms.models": ["tiny-gpt2", "no-such-model"]}, r"config 'norms': unknown model key\(s\) \['no-such-model'\]"),
    ({"models.hub-model": {"source": "hf", "id": "openai-community/gpt2", "revision": "main; rm -rf /"}},
     r"'main; rm -rf /' does not match[\s\S]*On instance\['models'\]\['hub-model'\]\['revision'\]"),
    ({"norms.n_texts": 0}, r"0 is less than the minimum of 1[\s\S]*On instance\['norms'\]\['n_texts'\]"),
    ({"norms.dataset": "wikitext"}, r"'wikitext' is not one of[\s\S]*On instance\['norms'\]\['dataset'\]"),
    ({"norms.max_tokens": "twelve"}, r"'twelve' is not of type 'integer'[\s\S]*On instance\['norms'\]\['max_tokens'\]"),
], ids=["unknown-model", "bad-revision", "zero-texts", "unknown-dataset", "wrong-type"])
def test_bad_config_fails_before_any_job(tmp_path, change, message):
    # A data path that does not exist: the config must be refused before anything looks for data.
    configfile = tiny_config(tmp_path, tmp_path / "no-data", **change)
    done = snakemake(tmp_path, configfile, "-n")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Building DAG of jobs" not in output, output[-3000:]
    assert re.search(message, output), output[-3000:]


def job_counts(output: str) -> dict[str, int]:
    """The `Job stats` table of a dry run as {rule: count} (empty when nothing is to be done)."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            inside = True
            continue
        if inside:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    break
                counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.slow
def test_changing_a_study_parameter_reruns_only_that_study(tiny_run, shared_data):
    workdir, _ = tiny_run
    (workdir / "changed").mkdir(exist_ok=True)
    changed = tiny_config(workdir / "changed", shared_data, **{"geometry.twonn_fraction": 0.8})
    done = snakemake(workdir, changed, "-n", "--cores", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts.get("geometry") == 2 and counts.get("geometry_figures") == 1
    assert counts.get("checkpoint_geometry", 0) > 0  # the training study shares the TwoNN settings
    for rule in ("extract", "train", "probe", "probe_condition", "lens_dataset", "norm_table", "model", "dataset"):
        assert rule not in counts, counts
    assert counts.get("paper") == 1


@pytest.mark.slow
def test_touching_the_data_reextracts_only_what_reads_it(tiny_run):
    workdir, configfile = tiny_run
    table = workdir / "resources/datasets/ag_news.parquet"
    os.utime(table, None)
    done = snakemake(workdir, configfile, "-n", "--cores", "1")
    counts = job_counts(done.stdout + done.stderr)
    assert counts.get("extract") == 2  # AG News stores of the two models (probe transfer only)
    assert counts.get("probe_transfer") == 2
    for rule in ("geometry", "train", "lens_dataset", "norm_table", "probe_condition"):
        assert rule not in counts, counts
