# Two commands a researcher needs: `make paper` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRESET ?= paper
JOBS   ?= 2

.PHONY: install test paper sweeps data readme bench bench-gpu clean-notebooks check-sync
# The main study: every task's notebook, the feature PCA, then the main table. Longest first at paper, the order of a
# first run; later runs order them by their recorded times (`walt_paper.cli.longest_first`).
STUDY_NOTEBOOKS ?= 06 04 07 05 08 11 09
# The analyses beyond the main table: layers and noise (10), the explorer's static view (12), model size and training
# budget (13), what a frame of the world gives away about depth (14: the references for the depth row), and what the
# world's category and motion labels need (15: the object given, beside the features), and zero-shot correspondence on
# real image pairs (16: no probe, every block and noise level).
SWEEP_NOTEBOOKS ?= 10 12 13 14 15 16

# torch==2.13.0 first: it is the CPU build this machine carries; the range in settings.ini
# (torch>=2.4) is then already satisfied and pip pulls nothing larger.
$(STAMP): settings.ini setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (walt-paper)" >/dev/null
	touch $@

install: $(STAMP)

# nbdev_test runs every notebook (library and experiments) at the smoke preset; pytest runs
# what does not belong in a notebook (installation, CLI, bad inputs, loaders on fixtures).
# One OpenMP thread per process: nbdev_test runs two notebooks at once, and two processes of
# two spinning threads each on two cores run many times slower than one thread each.
test: install
	WALT_PRESET=smoke OMP_NUM_THREADS=1 $(BIN)/nbdev_test --timing
	WALT_PRESET=smoke OMP_NUM_THREADS=1 $(BIN)/pytest -q tests

data: install
	$(BIN)/walt-paper data --preset $(PRESET)

paper: install
	$(BIN)/walt-paper data --preset $(PRESET)
	$(BIN)/walt-paper models --preset $(PRESET)
	$(BIN)/walt-paper run --preset $(PRESET) --jobs $(JOBS) $(STUDY_NOTEBOOKS)

# Many settings, each probed with the lighter sweep recipe (walt_paper.study.SWEEP_SETTINGS): at paper, 10 (block, noise) settings x 2 models x 3 tasks in notebook 10.
sweeps: install
	$(BIN)/walt-paper models --preset $(PRESET)
	$(BIN)/walt-paper run --preset $(PRESET) --jobs $(JOBS) $(SWEEP_NOTEBOOKS)

# Benchmarks print figures beside their references and write figures/benchmarks.md; run on an idle machine.
bench: install
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python tests/benchmarks/run_all.py --preset $(PRESET)

# The CUDA path, on a machine with NVIDIA GPUs (not part of `make bench`): the training step of the small, base and L
# denoisers on one GPU in bf16 autocast, eager and under torch.compile, with MFU against the GPU's nominal peak, then
# the same under DDP on GPUS GPUs (default: every one torch sees). The device is named in the files it writes.
GPUS ?= $(shell $(BIN)/python -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null)
bench-gpu: install
	$(BIN)/python tests/benchmarks/bench_accel.py --device cuda --compile --out figures/benchmarks-gpu.md
	$(BIN)/torchrun --nproc_per_node $(GPUS) tests/benchmarks/bench_accel.py --device cuda --out figures/benchmarks-gpu-ddp.md

# README.md is generated from nbs/index.ipynb.
readme: install
	$(BIN)/jupyter nbconvert --log-level WARN --to markdown nbs/index.ipynb --output-dir . --output README

# What CI checks besides the tests: notebooks clean, package and README in sync with them.
check-sync: install readme
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	@if [ -n "$$(git status --porcelain)" ]; then \
	  echo "Notebooks unclean or package/README out of sync with them (run nbdev_export, nbdev_clean, make readme):"; \
	  git status --porcelain; git --no-pager diff --stat; exit 1; fi
	@echo "notebooks clean; package and README in sync"
