# Developer and CI entry points. `make test` is what CI runs (.ci/run) and what the README gives.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
# Each recipe runs as one script, so a recipe can collect the status of several steps.
.ONESHELL:

BIN := .venv/bin
LINT_PATHS := phoenix_certbot tests bench
# Tests wait on Docker far more than they compute: 4 workers on 2 cores took the suite
# from 13.2 to 5.0 min (measured). The cluster-lab tests share one worker (an xdist_group
# that tests/conftest.py gives them), so that each lab is started once, not in every worker. PYTEST_WORKERS=0 runs everything in one process.
# `unit` stays in one process: CPU-bound, it took 48 s alone and 75 s with 4 workers.
PYTEST_WORKERS ?= 4
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup

.PHONY: test provision venv lint unit bench demo clean-lab

# Lint, types and tests all run even when an earlier one fails, so one run shows every
# problem; the target still fails if any of them did. pytest's exit 5 (no tests collected)
# is non-zero too, so it fails the target like any other failure.
test: provision
	status=0
	$(BIN)/ruff check $(LINT_PATHS) || status=1
	$(BIN)/mypy phoenix_certbot || status=1
	$(BIN)/pytest $(PYTEST_PARALLEL) || status=1
	exit $$status

# Packages, dockerd, a one-node swarm, the stand-in image and the venv.
provision:
	bash tests/harness/provision.sh

# Only the venv: enough for lint and unit tests.
venv:
	bash tests/harness/provision.sh --venv-only

lint: venv
	status=0
	$(BIN)/ruff check $(LINT_PATHS) || status=1
	$(BIN)/mypy phoenix_certbot || status=1
	exit $$status

unit: venv
	$(BIN)/pytest -m "not docker and not pebble"

# Needs the swarm, Pebble and the stand-in image: provision, like `test`. ARGS=--quick (or
# benchmark names) is passed on: make bench ARGS="--quick startup".
bench: provision
	if [[ -f bench/__main__.py ]]; then $(BIN)/python -m bench $(ARGS); else echo "no benchmarks yet"; fi

# The main job on a local default: one-node swarm, Pebble, the Portainer stack (stand-in
# image), certbot issuing and renewing with phoenix-cert as deploy hook. KEEP=1 keeps the lab.
demo: provision
	$(BIN)/python -m tests.harness.demo $(if $(KEEP),--keep)

# Also the test labs (tests/harness/cluster) that killed runs left in free slots.
clean-lab: venv
	$(BIN)/python -m tests.harness.demo --clean
	$(BIN)/python -m tests.harness.cluster cleanup
