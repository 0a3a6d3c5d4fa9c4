# mmfw: every target runs inside the project's own virtual environment at .venv/.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.mmfw-installed
# Tests never touch the network or the user's wandb/HF state.
TEST_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline WANDB_SILENT=true

.PHONY: help setup browser demo study test test-full test-gpu test-lmms bench gpu-wheels gpu-check lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) browser  ## create .venv/ and install mmfw with its pinned dependencies

# Headless Chromium for tests/report/test_report_html.py: Debian's package, installed only as
# root with apt-get (no prompts); elsewhere that test skips and says why. Never fails setup.
browser:  ## install headless Chromium (Debian's `chromium`) if missing, for the HTML report test
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || command -v google-chrome >/dev/null || [ -n "$$MMFW_CHROMIUM" ] \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq \
	       && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	          chromium >/dev/null; } \
	  || echo "make browser: no Chromium (needs root and apt-get); the HTML report test will skip"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned, so pip takes the build that lies on this disk
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo is the ixc_hd_resolution study at 3 of its 5 seeds (its verdict holds at 3); the
# committed 5-seed report is `make study STUDY=ixc_hd_resolution`. SEEDS=... picks others.
demo: setup  ## the ixc_hd_resolution study: HD-1/4/9 x 3 seeds of a tiny IXC-style model, evaluated, reported
	HF_HUB_OFFLINE=1 SEEDS=$${SEEDS:-0,1,2} bash experiments/ixc_hd_resolution/run.sh

# The studies in the order `make study STUDY=all` runs them (the demo's first).
STUDIES := ixc_hd_resolution ixc_newline ixc_global_view ixc_token_merge \
	otterhd_dynamic_resolution owl3_distractors mm15_mixture_alpha llava_format_prompt \
	negative_control toy_recipe optuna_lr_warmup

study: setup  ## run one study of experiments/ and write its report: make study STUDY=<name> (all: every one, in order; SEEDS=5,6,7 for other seeds)
	@test "$(STUDY)" = all -o -n "$(STUDY)" -a -f "experiments/$(STUDY)/run.sh" || (echo "make study STUDY=<name>: all, or one of $$(cd experiments && ls -d */ | tr -d / | tr "\n" " ")"; exit 2)
	@failed=""; for s in $(if $(filter all,$(STUDY)),$(STUDIES),$(STUDY)); do \
	  echo "== study $$s"; HF_HUB_OFFLINE=1 bash experiments/$$s/run.sh || failed="$$failed $$s"; done; \
	  test -z "$$failed" || { echo "studies that failed:$$failed"; exit 1; }

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

# The GPU device check (docs/gpu.md). On the lent GPU machine there is no .venv: the check
# runs that machine's python3 with the wheels of .whl/ beside it.
gpu-wheels: setup  ## build .whl/: the wheels the GPU check carries to the GPU machine (docs/gpu.md)
	PYTHON=$(BIN)/python bash scripts/gpu_wheels.sh

gpu-check: $(if $(DRY_RUN),setup)  ## GPU device check into OUT=<dir> (DRY_RUN=1: its CPU dry run here)
	@test -n "$(OUT)" || { echo "make gpu-check OUT=<results dir> [DRY_RUN=1]"; exit 2; }
	PYTHON=$(if $(DRY_RUN),$(BIN)/python,python3) bash scripts/gpu_check.sh $(if $(DRY_RUN),--dry-run) $(OUT)

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
