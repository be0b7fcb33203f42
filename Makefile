# PVM — the two commands a newcomer needs are `make run` and `make test`.
# Everything else here is what those two are made of, plus benchmarks.

CARGO ?= cargo
DATA_DIR ?= ./data
LISTEN ?= 0.0.0.0:8080
export CARGO_TERM_COLOR ?= never

.PHONY: run test setup web build build-release lint test-rust test-web bench soak clean-data help

help:
	@echo "make run    build everything and start the node (console on http://localhost:8080)"
	@echo "make test   install what the tests need, then run every test"
	@echo "make bench  print the performance figures"
	@echo "make soak   the long crash-safety runs"

## Runs the node on the embedded SQLite default, printing the console URL and setup code.
run: setup build
	DATA_DIR=$(DATA_DIR) LISTEN=$(LISTEN) scripts/run.sh

setup:
	@scripts/setup-deps.sh

## The web console and display pages, built to web/dist and embedded into pvm-node.
web: setup
	cd web && npm run build

build: web
	$(CARGO) build -p pvm-node -p pvm-kiosk

build-release: web
	$(CARGO) build --release -p pvm-node

## Every test: formatting and lints first (cheap), then the Rust suites, then the web's.
test: setup web lint test-rust test-web

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

## Unit tests, type checks, then the console and display pages in headless Chromium against a
## real pvm-node (built by test-rust, with the console embedded).
test-web:
	cd web && npm test && npm run check && PVM_NODE_BIN=$(CURDIR)/target/debug/pvm-node npm run e2e

bench: setup
	$(CARGO) run --release -p pvm-core --example core_bench
	$(CARGO) bench -p pvm-core --bench icm
	$(CARGO) run --release -p pvm-store --example store_bench
	$(CARGO) run --release -p pvm-ota --example ota_bench
	$(CARGO) run --release -p pvm-cast --example cast_bench
	scripts/bench-node.sh
	scripts/bench-kiosk.sh
	cd web && npm run size

soak:
	PVM_STORE_CRASH_ROUNDS=1000 $(CARGO) test --release -p pvm-store --test crash
	PVM_CRASH_ROUNDS=2000 $(CARGO) test --release -p pvm-node --test crash

clean-data:
	rm -rf $(DATA_DIR)
