"""The workflow itself: lint-clean, runs end to end from another working directory, is idempotent,
and refuses bad configs (naming the key) before any job runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from layerwise.workflow.legibility import misplaced_figures, too_small

from tests.helpers import REPO
from tests.helpers.workflow_runs import SNAKEMAKE, copy_workflow, job_counts, snakemake, tiny_config

FIGURE, MACROS, PDF = "results/figures/norms.pdf", "results/macros/norms.tex", "results/paper/layerwise.pdf"
HAS_LATEX = shutil.which("latexmk") is not None


@dataclass(frozen=True)
class TinyRun:
    """A finished tiny run: its working directory, config, and the private workflow copy it ran."""

    workdir: Path
    configfile: Path
    snakefile: Path

    def run(self, *args: str, configfile: Path | None = None) -> subprocess.CompletedProcess:
        return snakemake(self.workdir, configfile or self.configfile, *args, snakefile=self.snakefile)

    def dry_run_counts(self, configfile: Path | None = None) -> dict[str, int]:
        done = self.run("-n", "--cores", "1", configfile=configfile)
        assert done.returncode == 0, done.stderr[-3000:]
        return job_counts(done.stdout + done.stderr)


def test_lint_is_clean():
    done = subprocess.run([*SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")],
                          capture_output=True, text=True, cwd=REPO)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output
    assert "Lints for" not in output, output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shared_data):
    """One end-to-end run of the tiny config in a fresh temp dir (to the PDF when LaTeX is installed),
    with a private copy of the workflow that tests may edit."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    run = TinyRun(workdir, tiny_config(workdir, shared_data), copy_workflow(tmp_path_factory.mktemp("workflow")))
    targets = [] if HAS_LATEX else [FIGURE, MACROS]  # default target = the PDF
    done = run.run("--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-5000:]
    return run


@pytest.mark.slow
def test_tiny_run_draws_the_norm_figure_and_writes_macros(tiny_run):
    workdir = tiny_run.workdir
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
    workdir = tiny_run.workdir
    assert (workdir / PDF).read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(workdir / PDF), "-"], capture_output=True, text=True).stdout
        assert "In tiny-gpt2 the mean norm" in " ".join(text.split())  # this run's numbers, not the repo's
    # Pages read as a paper: no figure taller than a page, nothing running into the margin.
    log = (workdir / "results/paper/build/main.log").read_text(errors="replace")
    assert "Float too large" not in log
    overfull = [float(width) for width in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert max(overfull, default=0.0) < 5.0, overfull


@pytest.mark.slow
def test_every_figure_is_legible_and_near_its_first_mention(tiny_run):
    """Every figure's text >= 7 pt as printed (the paper's own figures at their \\includegraphics widths), and
    each figure cited, within a page of the section that first cites it."""
    if not HAS_LATEX:
        pytest.skip("latexmk not installed: no PDF to measure")
    pdf = tiny_run.workdir / PDF
    small = too_small(pdf)
    by_figure = {}
    for t in small:
        by_figure.setdefault(f"page {t.page} {t.figure}", []).append(f"{t.text[:12]!r} {t.size} pt")
    assert not small, {figure: runs[:4] for figure, runs in by_figure.items()}
    assert not misplaced_figures(pdf, tiny_run.workdir / "results/paper/build/main.aux")


@pytest.mark.slow
def test_second_run_does_nothing(tiny_run):
    targets = [] if HAS_LATEX else [FIGURE, MACROS]
    done = tiny_run.run("--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Nothing to be done" in done.stdout + done.stderr


@pytest.mark.parametrize("change, message", [
    ({"norms.models": ["tiny-gpt2", "no-such-model"]}, r"config 'norms': unknown model key\(s\) \['no-such-model'\]"),
    ({"models.hub-model": {"source": "hf", "id": "openai-community/gpt2", "revision": "main; rm -rf /"}},
     r"'models.hub-model.revision': 'main; rm -rf /' does not match"),
    ({"norms.n_texts": 0}, r"'norms.n_texts' = 0: must be >= 1"),
    ({"norms.dataset": "wikitext"}, r"config 'norms.dataset': unknown dataset 'wikitext'; registry \(config 'datasets'\) has"),
    ({"norms.max_tokens": "twelve"}, r"'norms.max_tokens' = 'twelve': must be of type integer"),
    ({"probes.n_texts": -3}, r"'probes.n_texts' = -3: must be >= 1"),
    ({"geometry.max_tokens": 600},
     r"config 'geometry.max_tokens' = 600 exceeds the context of model 'tiny-gpt2' \(512 positions\)"),
    ({"probes.grid": {"n_texts": [6], "max_tokens": [8, 4096]}},
     r"config 'probes.grid.max_tokens' = 4096 exceeds the context of model 'tiny-gpt2'"),
    ({"geometry.twonn_fracton": 0.8}, r"unknown key 'geometry.twonn_fracton': did you mean 'twonn_fraction'\?"),
    ({"crossstudy.n_bootstrap": 3}, r"'crossstudy.n_bootstrap' = 3: must be >= 10"),
    ({"device": "cuda"}, r"config 'device' = 'cuda', but torch sees 0 CUDA device\(s\) on this machine"),
    ({"crossstudy.lens_decoder": "norm_only"}, r"config 'crossstudy.lens_decoder': 'norm_only' is not one of lens.decoders"),
], ids=["unknown-model", "bad-revision", "zero-texts", "unknown-dataset", "wrong-type", "negative-texts",
        "length-beyond-context", "grid-length-beyond-context", "misspelt-key", "too-few-resamples",
        "cuda-without-gpu", "crossstudy-decoder-not-run"])
def test_bad_config_fails_before_any_job(tmp_path, change, message):
    # A data path that does not exist: the config must be refused before anything looks for data.
    configfile = tiny_config(tmp_path, tmp_path / "no-data", **change)
    done = snakemake(tmp_path, configfile, "-n")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Building DAG of jobs" not in output, output[-3000:]
    assert re.search(message, output), output[-3000:]


@pytest.mark.slow
def test_device_auto_and_cpu_are_one_run_on_a_cpu_machine(tiny_run, shared_data, tmp_path):
    """Outputs are keyed on the device that runs, not on its spelling: `auto` resolves to `cpu` here."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("auto resolves to cuda on this machine")
    changed = tiny_config(tmp_path, shared_data, device="auto")
    assert tiny_run.dry_run_counts(configfile=changed) == {}


@pytest.mark.slow
def test_changing_a_study_parameter_reruns_only_that_study(tiny_run, shared_data, tmp_path):
    changed = tiny_config(tmp_path, shared_data, **{"geometry.twonn_fraction": 0.8})
    counts = tiny_run.dry_run_counts(configfile=changed)
    assert counts.get("geometry") == 2 and counts.get("geometry_figures") == 1
    assert counts.get("checkpoint_geometry", 0) > 0  # the training study shares the TwoNN settings
    for rule in ("extract", "train", "probe", "probe_condition", "lens_dataset", "norm_table", "model", "dataset"):
        assert rule not in counts, counts
    assert counts.get("paper") == 1


@pytest.mark.slow
def test_touching_the_data_reextracts_only_what_reads_it(tiny_run):
    with touched(tiny_run.workdir / "resources/datasets/ag_news.parquet"):
        counts = tiny_run.dry_run_counts()
    assert counts.get("extract") == 2  # AG News stores of the two models (probe transfer only)
    assert counts.get("probe_transfer") == 2
    for rule in ("geometry", "train", "lens_dataset", "norm_table", "probe_condition"):
        assert rule not in counts, counts


@contextmanager
def restored(path: Path) -> Iterator[Path]:
    """`path` as the test leaves it for the duration, then its old content and mtime back (later tests see
    the run as built)."""
    before, content = path.stat(), path.read_bytes()
    try:
        yield path
    finally:
        path.write_bytes(content)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@contextmanager
def touched(path: Path) -> Iterator[Path]:
    """`path` with a new mtime for the duration."""
    with restored(path):
        os.utime(path, None)
        yield path


@contextmanager
def edited(path: Path, extra: str) -> Iterator[Path]:
    """`path` with `extra` appended for the duration."""
    with restored(path):
        path.write_text(path.read_text() + extra)
        yield path


@pytest.mark.slow
def test_touching_a_figure_script_redraws_only_that_figure(tiny_run):
    with touched(tiny_run.snakefile.parent / "scripts" / "geometry_figures.py"):
        counts = tiny_run.dry_run_counts()
    # provenance tabulates every generated input's rule wall time, and the report's previews are drawn from
    # the figures, so both follow any redrawn figure.
    assert counts == {"geometry_figures": 1, "figure_previews": 1, "provenance": 1, "paper": 1}, counts


@pytest.mark.slow
def test_editing_a_plot_module_redraws_only_its_figures(tiny_run):
    with edited(tiny_run.snakefile.parent / "src" / "layerwise" / "plots" / "lens.py", "\n# a new colour map\n"):
        counts = tiny_run.dry_run_counts()
    assert set(counts) == {"lens_heatmap", "lens_figures", "figure_previews", "provenance", "paper"}, counts


@pytest.mark.slow
def test_editing_the_geometry_kernel_reruns_geometry_but_never_extraction(tiny_run):
    with edited(tiny_run.snakefile.parent / "src" / "layerwise" / "geometry" / "neighbours.py", "\n# a faster kernel\n"):
        counts = tiny_run.dry_run_counts()
    assert counts.get("geometry") == 2 and counts.get("checkpoint_geometry", 0) > 0, counts
    # outliers recomputes anisotropy/TwoNN with and without outlier tokens through the same kernel;
    # the cross-study view reads both the geometry tables and the kernel.
    assert set(counts) == {"geometry", "checkpoint_geometry", "geometry_figures", "training_figures", "outliers",
                           "outlier_figures", "provenance", "paper", "crossstudy_model", "crossstudy_figures",
                           "geometry_verdicts", "verdict_summary", "figure_previews"}, counts


@pytest.mark.slow
def test_a_rewrite_with_the_same_content_reruns_nothing(tiny_run):
    """Library tracking is by content: a checkout that rewrites a module unchanged costs no job."""
    module = tiny_run.snakefile.parent / "src" / "layerwise" / "activations" / "store.py"
    with edited(module, ""):
        os.utime(module, None)
        assert tiny_run.dry_run_counts() == {}


# Outputs that record the machine and the clock rather than results (the paper's appendix reports them).
NOT_RESULTS = ("results/benchmarks/", "results/macros/provenance.tex", "results/paper/")
TIMING = {"extraction_seconds", "tokens_per_second", "elapsed_s"}


def comparable(path: Path) -> bytes | str:
    """A result file's content without its timing fields (a store manifest's speed, a training log's clock)."""
    if path.name == "manifest.json":
        return json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING}, sort_keys=True)
    if path.suffix == ".csv":
        table = pd.read_csv(path)
        return table.drop(columns=[c for c in table.columns if c in TIMING]).to_csv(index=False)
    return path.read_bytes()


def result_files(workdir: Path) -> set[str]:
    return {p.relative_to(workdir).as_posix() for p in (workdir / "results").rglob("*") if p.is_file()
            and not p.relative_to(workdir).as_posix().startswith(NOT_RESULTS)}


def decoder_chain(workdir: Path) -> list[str]:
    """The outputs of a finished run's jobs for the decoder (its sample, store, probes with their controls and
    2-D maps, lens, geometry) and for the decoder's training: every kind of seeded or threaded step of the
    workflow (random weights, sampling, the forward pass, splits, label shuffles, random controls, t-SNE/UMAP,
    bootstraps, training). The encoder's jobs are the same code on other inputs."""
    outputs = set()
    for record in (workdir / "results/benchmarks/jobs").glob("*/*.json"):
        job = json.loads(record.read_text())
        if any("tiny-gpt2" in str(v) or v == "decoder" for v in job["wildcards"].values()):
            outputs.update(job["outputs"])
    return sorted(outputs)


@pytest.mark.slow
def test_two_runs_of_one_config_give_identical_results(tiny_run, shared_data, tmp_path):
    """Same config, fresh directory, CPU: the decoder's chain and training, run again, give every array, table,
    macro and figure of the first run, byte for byte. (A second run of everything took 11 minutes of the suite.)"""
    targets = decoder_chain(tiny_run.workdir)
    second = tmp_path / "second"
    second.mkdir()
    done = snakemake(second, tiny_config(second, shared_data), "--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    files = result_files(second)
    assert files <= result_files(tiny_run.workdir)
    assert len([f for f in files if f.endswith(".npy")]) > 20 and len([f for f in files if f.endswith(".pdf")]) > 5
    for kind in ("results/probes/tiny-gpt2/", "results/lens/tiny-gpt2/", "results/geometry/tiny-gpt2/",
                 "results/training/decoder/", "results/probes/tiny-gpt2/imdb/n8_l12_s0/random_covariance/"):
        assert any(f.startswith(kind) for f in files), kind
    differing = [f for f in sorted(files) if comparable(tiny_run.workdir / f) != comparable(second / f)]
    assert differing == []


@pytest.mark.slow
def test_report_carries_the_figures_with_their_captions(tiny_run, tmp_path):
    report = tmp_path / "report.html"
    done = tiny_run.run("--report", str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    html = report.read_text()
    for figure in ("anisotropy.pdf", "norms.pdf", "lens_dataset.pdf", "training_curves.pdf", "probe_conditions.pdf"):
        assert figure in html, figure
    assert "scripts/geometry_figures.py" in html  # a caption naming the rule's script


@pytest.mark.slow
def test_report_items_include_previews_the_paper_tables_and_config(tiny_run, tmp_path):
    """The zip report lists every item (as data/raw/<hash>/<name>): a PNG preview per figure of the paper, the paper
    PDF, the verdict and per-layer tables and the effective config; its page has the Outliers and previews
    categories."""
    import zipfile
    report = tmp_path / "report.zip"
    done = tiny_run.run("--report", str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    archive = zipfile.ZipFile(report)
    names = archive.namelist()
    basenames = {Path(n).name for n in names}
    previews = sorted((tiny_run.workdir / "results" / "report" / "previews").glob("*.png"))
    figures = sorted((tiny_run.workdir / "results" / "figures").glob("*.pdf"))
    assert figures and {f.stem + ".png" for f in figures} <= {p.name for p in previews}
    assert {p.name for p in previews} <= basenames
    for item in ("layerwise.pdf", "config.effective.yaml", "top_tokens.csv", "summary.csv", "probes.csv", "lens.csv",
                 "geometry.csv"):
        assert item in basenames, item
    page = archive.read(next(n for n in names if n.endswith("report.html"))).decode()
    for category in ("Outliers", "Figure previews", "Verdicts", "Tables", "Paper"):
        assert f'"{category}"' in page, category


# Shows one report item in the report's own viewer, as a click on it does (ToggleViewManager.handleImg).
_SHOW_ITEM = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var key = Object.keys(results).find(function (p) { return p.indexOf("previews") >= 0 && results[p].mime_type === "image/png"; });
  app.setView({content: "img", contentPath: URI});
}, 200); });
</script>"""
_WHITE_PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mP8/x8AAwMCAO+ip1sAAAAASUVORK5CYII="


def _screenshot(chromium: str, report: Path, uri: str, out: Path) -> "np.ndarray":
    import numpy as np
    from PIL import Image
    head, tail = report.read_text().rsplit("</body>", 1)  # the last one: the page's own, not one inside its scripts
    page = out.with_suffix(".html")
    page.write_text(head + _SHOW_ITEM.replace("URI", uri) + "</body>" + tail)
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,900", "--virtual-time-budget=4000", f"--screenshot={out}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(out).convert("L"), dtype=float)


@pytest.mark.slow
def test_report_shows_a_figure_preview_in_headless_chromium(tiny_run, tmp_path, chromium):
    """The report opened in a browser without a PDF plugin: a figure preview, shown as a click on it shows it,
    fills the content pane with a drawing; the same viewer given a blank image leaves it white (the control)."""
    report = tmp_path / "report.html"
    done = tiny_run.run("--report", str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    figure = _screenshot(chromium, report, "results[key].data_uri", tmp_path / "figure.png")
    blank = _screenshot(chromium, report, f'"{_WHITE_PIXEL}"', tmp_path / "blank.png")
    content = slice(300, None)  # right of the report's navigation bar
    assert (blank[:, content] < 200).mean() < 0.001
    assert (figure[:, content] < 200).mean() > 0.002, "the preview pane is blank"  # a line plot: ~0.5%
