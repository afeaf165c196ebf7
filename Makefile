# Conclave — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
SWIFT_BUILD_FLAGS ?=
FUZZ_SECONDS ?= 60
PY := .venv/bin/python

.PHONY: setup build release demo test test-sanitize fuzz unit-test integration-test python-test bench-orchestration bench-knowledge bench-inference bench-distributed bench-tracing study chaos soak console format lint clean

## Installs what the project needs (idempotent, quiet when done): .venv, llama-server, SmolLM2, Python test clients.
setup:
	@bash scripts/setup.sh

build:
	@swift build --build-tests $(SWIFT_BUILD_FLAGS)

release:
	@swift build -c release --product conclave $(SWIFT_BUILD_FLAGS)

## Setup, release build, ingest the Meridian sample, serve, run a scripted conversation, stop.
demo: setup release
	@bash scripts/demo.sh

## Setup, build, all unit and integration tests (Swift and Python).
test: setup build
	@bash scripts/test.sh

## The unit tests (not IntegrationTests) under AddressSanitizer, then ThreadSanitizer, in .build/asan and
## .build/tsan. Not part of make test: each build takes long (docs/reliability.md).
test-sanitize: setup
	@bash scripts/sanitize.sh

## Every libFuzzer target in fuzz/ for FUZZ_SECONDS on a copy of its corpus; fails on a crash, keeping
## the input under var/fuzz-crashes/ (docs/reliability.md).
fuzz: setup
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

bench-orchestration: setup release
	@bash scripts/bench-orchestration.sh

## Embedding throughput vs sentence-transformers; HNSW vs hnswlib and exact vs numpy (docs/performance.md).
bench-knowledge: setup
	@bash scripts/bench-knowledge.sh

## 8 SmolLM2 streams raw vs through Conclave; gateway overhead vs LiteLLM on an instant upstream (docs/performance.md).
bench-inference: setup release
	@bash scripts/bench-inference.sh

## The full workflow at 1/8/32 users, embedded vs a local cluster (PostgreSQL, NATS, gateways, workers); bus overhead per step.
bench-distributed: setup release
	@bash scripts/bench-distributed.sh

## Tracing off vs on (sampling 1.0, exporting to a receiver): an instant fake model, then one of 50 ms (docs/performance.md).
bench-tracing: setup release
	@CONCLAVE_BIN=$(CURDIR)/.build/release/conclave .build/release/conclave bench tracing --output bench/results/tracing.json
	@CONCLAVE_BIN=$(CURDIR)/.build/release/conclave .build/release/conclave bench tracing --model-latency-ms 50 --output bench/results/tracing-50ms.json

## Chaos under load for 3 minutes: a replica SIGKILLed every 10 s, then a gateway SIGKILLed mid-conversation (docs/reliability.md).
chaos: setup build
	@CONCLAVE_BIN=$(CURDIR)/.build/debug/conclave CONCLAVE_CHAOS_SECONDS=$${CONCLAVE_CHAOS_SECONDS:-90} $(PY) -m pytest -q tests/python/test_chaos.py

## The gateway at saturation for SOAK_SECONDS (default 1800): RSS, open files, p99 latency, errors (docs/reliability.md).
soak: setup build
	@CONCLAVE_BIN=$(CURDIR)/.build/debug/conclave CONCLAVE_SOAK_SECONDS=$${SOAK_SECONDS:-1800} $(PY) -m pytest -q tests/python/test_soak.py

## The study: experiments/*.yaml against real servers, into reports/<timestamp>/ (docs/evaluation.md).
study: setup release
	@bash scripts/study.sh

## Compiles console/ (the web console's HTML, JS, CSS) into Sources/ConclaveServer/Console/ConsoleAssets.swift.
console:
	@python3 scripts/embed-console.py

format:
	@swift format --in-place --recursive Sources Tests

lint:
	@swift format lint --recursive Sources Tests

clean:
	@rm -rf .build var
