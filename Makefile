# Two commands on a fresh machine: `make paper` (the default run) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# --rerun-incomplete: after a hard kill (OOM, power), the next `make paper` redoes the jobs Snakemake marked
# incomplete instead of stopping at them; outputs are written so that a redo equals an uninterrupted run.
SNAKEMAKE := $(BIN)/snakemake --cores $(CORES) --rerun-incomplete
# `make paper` also rebuilds every missing file the paper depends on (layerwise.workflow.complete_run): a job killed after
# Snakemake deleted its old outputs leaves them missing, and a plain run would call the paper up to date.
export PYTHONHASHSEED := 0
# pip byte-compiles every module of every package it installs (torch, transformers, ...): 100 of the 152 s a fresh
# install took here. Installed with --no-compile, a module is compiled on its first import and cached, which needs
# bytecode writing on; some environments switch it off (PYTHONDONTWRITEBYTECODE), so the recipes run without it.
unexport PYTHONDONTWRITEBYTECODE
PIP_INSTALL := $(BIN)/pip install --quiet --no-compile
# `make paper` runs through profiles/local, so local runs honour the rules' resources as a cluster would. Its
# `gpu` cap is the number of GPUs here; on a CPU-only machine the GPU rules run on the CPU and the cap is the
# core count (the cores limit them anyway), so they are not serialised on a GPU that does not exist.
GPUS ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
GPU_SLOTS ?= $(if $(filter-out 0,$(GPUS)),$(GPUS),$(shell nproc))
# Memory the jobs may reserve together: 80% of this machine's RAM.
MEM_MB ?= $(shell awk '/^MemTotal/ {print int($$2 / 1024 * 0.8)}' /proc/meminfo)
LOCAL_PROFILE := --profile profiles/local --resources gpu=$(GPU_SLOTS) mem_mb=$(MEM_MB)

.PHONY: paper test bench verify report dryrun-paper-config latex unlock clean mutants planted

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install only when a dependency file changes.
$(VENV)/.installed-run: $(BIN)/python pyproject.toml requirements.txt constraints.txt
	$(PIP_INSTALL) -c constraints.txt -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-run requirements-test.txt
	$(PIP_INSTALL) -c constraints.txt -r requirements-test.txt
	touch $@

latex:
	@if command -v latexmk >/dev/null && kpsewhich lmodern.sty >/dev/null; then exit 0; fi; \
	PKGS="latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra lmodern"; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$PKGS; \
	else \
		echo "latexmk is missing. Run: sudo apt-get install -y --no-install-recommends $$PKGS" >&2; exit 1; \
	fi

paper: $(VENV)/.installed-run latex
	$(BIN)/python -m layerwise.workflow.config_errors config.yaml  # a YAML syntax error named by file and line
	$(BIN)/python -m layerwise.workflow.complete_run --cores $(CORES) --rerun-incomplete $(LOCAL_PROFILE) --configfile config.yaml

# Two pytest workers: the suite's long parts are Snakemake runs whose short jobs leave a core idle much of the
# time, so a second worker fills it. A test file is one unit (its module fixtures, e.g. the tiny run, are built
# once), handed out in collection order, long runs first (tests/conftest.py).
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test latex
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_all.py --out results/benchmarks

# Recompute the paper's key numbers (if needed) and compare them with paper/expected_values.yaml.
verify: $(VENV)/.installed-run latex
	$(SNAKEMAKE) --configfile config.yaml --forcerun verify verify

report: $(VENV)/.installed-run
	$(BIN)/snakemake --configfile config.yaml --report results/report.html

dryrun-paper-config: $(VENV)/.installed-run
	$(SNAKEMAKE) -n --configfile configs/paper.yaml

# The tiny config on the GPU (torch on CUDA, CuPy kernels) against the CPU, one line per compared number with its
# tolerance (tools/gpu_check.py). Without CUDA it fails at once: "no CUDA device: gpu-check needs a GPU".
.PHONY: gpu-check
gpu-check: $(VENV)/.installed-run
	$(BIN)/python tools/gpu_check.py

# After a hard kill (SIGKILL, OOM, power loss) Snakemake keeps its lock: lift it, then `make paper` again.
unlock: $(VENV)/.installed-run
	$(BIN)/snakemake --configfile config.yaml --unlock

clean:
	rm -rf results logs .snakemake

# Mutation testing (slow; not part of `make test`): mutmut 3 plants small bugs in the modules that produce the
# paper's numbers ([tool.mutmut] only_mutate in pyproject.toml) and runs, per mutant, the fast tests that reach
# the mutated function; the per-module counts and every mutant no test kills go to results/mutants.txt.
# mutmut runs pytest in its own process, so its venv sees the test venv's packages through a .pth file.
# Workers are forked from that process: numba (the lens kernel) must use its fork-safe threading layer
# (its default OpenMP layer SIGTERMs a forked child), and torch runs on one thread (a child forked after
# torch's OpenMP pool has started hangs at its first parallel op: every mutant of `extract` timed out).
# Some of the mutants only: `make mutants MUTANTS="layerwise.norms.*"`; results are kept in mutants/ and a
# re-run tests only what changed.
MUTANTS ?=
MUTANTS_VENV := .venv-mutants
SHARED ?= $(abspath ../shared)
PURELIB := import sysconfig; print(sysconfig.get_paths()['purelib'])

$(MUTANTS_VENV)/.installed: $(VENV)/.installed-test requirements-mutants.txt
	rm -rf $(MUTANTS_VENV)
	$(PYTHON) -m venv $(MUTANTS_VENV)
	$(BIN)/python -c "$(PURELIB)" > "$$($(MUTANTS_VENV)/bin/python -c "$(PURELIB)")/layerwise_test_env.pth"
	$(MUTANTS_VENV)/bin/pip install --quiet -r requirements-mutants.txt
	touch $@

# mutmut 3 records which test reaches which function once, then only for new tests: a new function that old
# tests call has no tests in that record and its mutants would all be "no tests" (seen on extract.py).
# So the record is rebuilt whenever code or a test changed after it. The report is written even when
# mutmut stops early, and mutmut's exit status is kept.
mutants: $(MUTANTS_VENV)/.installed
	mkdir -p results
	if [ -f mutants/mutmut-stats.json ] && \
	   [ -n "$$(find src/layerwise tests -name '*.py' -newer mutants/mutmut-stats.json)" ]; then \
		rm mutants/mutmut-stats.json; fi
	status=0; NUMBA_THREADING_LAYER=workqueue OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LAYERWISE_SHARED=$(SHARED) \
		$(MUTANTS_VENV)/bin/mutmut run $(MUTANTS) || status=$$?; \
	$(MUTANTS_VENV)/bin/python tools/mutants_report.py > results/mutants.txt; \
	head -n 40 results/mutants.txt; exit $$status

# The hand-planted mutants of issue 19 (wrong layer stored, wrong anisotropy scale, a condition run as "raw", ...),
# applied one at a time to the working tree and restored: each must fail a fast test. About 2 minutes.
planted: $(VENV)/.installed-test
	$(BIN)/python tools/planted_mutants.py
