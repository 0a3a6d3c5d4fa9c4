# mmfw: every target runs inside the project's own virtual environment at .venv/.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.mmfw-installed
# Tests never touch the network or the user's wandb/HF state.
TEST_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline WANDB_SILENT=true

.PHONY: help setup demo study test test-full test-gpu test-lmms bench lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv/ and install mmfw with its pinned dependencies

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned, so pip takes the build that lies on this disk
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup  ## sweep two connectors of a tiny LLaVA on synthetic data, evaluate, report
	HF_HUB_OFFLINE=1 bash experiments/demo_connector/run.sh

study: setup  ## run one study of experiments/ and write its report: make study STUDY=mm15_mixture_alpha
	@test -n "$(STUDY)" || (echo "make study STUDY=<name>: one of $$(ls experiments)"; exit 2)
	HF_HUB_OFFLINE=1 bash experiments/$(STUDY)/run.sh

test: setup  ## the default test suite (< 15 min on 2 cores)
	$(TEST_ENV) $(BIN)/python -m pytest -q

test-full: setup  ## every test, including the slow ones
	$(TEST_ENV) $(BIN)/python -m pytest -q -m 'not bench'

test-gpu: setup  ## what only a GPU runs (tests/gpu: DeepSpeed/FSDP on CUDA, bf16, flash-attn); skipped without CUDA
	$(TEST_ENV) $(BIN)/python -m pytest -q -rs tests/gpu -m 'not bench'

test-lmms: setup  ## lmms-eval on an mmfw run; installs lmms-eval into .lmms-site (its pins differ from mmfw's)
	test -d .lmms-site/lmms_eval || $(BIN)/pip install --quiet --target .lmms-site lmms-eval==0.7.3
	test -d .lmms-site/_filelock3 || $(BIN)/pip install --quiet --target .lmms-site/_filelock3 'filelock<4'
	$(TEST_ENV) MMFW_LMMS_SITE=$(CURDIR)/.lmms-site $(BIN)/python -m pytest -q -rs tests/eval/test_lmms.py

bench: setup  ## speed benchmarks: numbers and ratios against a baseline
	$(TEST_ENV) $(BIN)/python -m pytest -q -s tests/benchmarks -m bench

lint: setup  ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove runs and caches (keeps .venv)
	rm -rf runs multirun outputs .pytest_cache .ruff_cache
