# PVM — the two commands a newcomer needs are `make run` and `make test`.
# Everything else here is what those two are made of, plus benchmarks.

CARGO ?= cargo
DATA_DIR ?= ./data
LISTEN ?= 0.0.0.0:8080
export CARGO_TERM_COLOR ?= never

.PHONY: run test setup web build build-release lint lint-image test-rust test-web test-image test-post-image bench soak clean-data help cloud image

help:
	@echo "make run    build everything and start the node (console on http://localhost:8080)"
	@echo "make test   install what the tests need, then run every test"
	@echo "make bench  print the performance figures"
	@echo "make soak   the long crash-safety runs"
	@echo "make cloud  the whole cloud side on this machine (PostgreSQL, nats-server, pvm-cloud)"
	@echo "make image  the Raspberry Pi 5 SD-card image and its signed OTA bundle (needs the internet)"
	@echo "make test-image  build the QEMU test image of the appliance and boot-test it"

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

## Every test: formatting and lints first (cheap), then the Rust suites, the web's, and the
## appliance image (the Buildroot post-image step on stand-in firmware, then the QEMU image).
test: setup web lint lint-image test-rust test-web test-post-image test-image

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace --exclude pvm-appliance-tests

## Defconfig symbols, shellcheck on every script, systemd-analyze verify on every unit.
lint-image:
	scripts/lint-image.sh

## The whole cloud side for trying it out: a throwaway PostgreSQL cluster and nats-server under
## ./cloud-data, then pvm-cloud; prints what to do next.
cloud: setup
	bash scripts/cloud.sh

## The SD-card image (Buildroot; needs the internet for its downloads and says so at once when
## offline). PVM_RELEASE_KEY names the minisign secret key for the OTA bundle (or `none`).
image: setup web
	image/buildroot/build.sh

test-post-image:
	$(CARGO) build -p pvm-ota --bin pvm-release
	PVM_RELEASE_BIN=$(CURDIR)/target/debug/pvm-release image/buildroot/test-post-image.sh

## The QEMU test image (Debian root filesystem, our overlays and binaries, the Pi's GPT A/B
## layout), booted under emulation with a stand-in for the Pi firmware.
test-image: setup web
	$(CARGO) build -p pvm-node -p pvm-kiosk -p pvm-firstboot
	$(CARGO) test -p pvm-appliance-tests

## Unit tests, type checks, then the console and display pages in headless Chromium against a
## real pvm-node (built by test-rust, with the console embedded).
test-web:
	cd web && npm test && npm run check && PVM_NODE_BIN=$(CURDIR)/target/debug/pvm-node npm run e2e

bench: setup web
	$(CARGO) run --release -p pvm-core --example core_bench
	$(CARGO) bench -p pvm-core --bench icm
	$(CARGO) run --release -p pvm-store --example store_bench
	$(CARGO) run --release -p pvm-ota --example ota_bench
	$(CARGO) run --release -p pvm-cast --example cast_bench
	scripts/bench-node.sh
	scripts/bench-kiosk.sh
	scripts/bench-image.sh
	scripts/bench-sync.sh
	cd web && npm run size

soak:
	PVM_STORE_CRASH_ROUNDS=1000 $(CARGO) test --release -p pvm-store --test crash
	PVM_CRASH_ROUNDS=2000 $(CARGO) test --release -p pvm-node --test crash

clean-data:
	rm -rf $(DATA_DIR)
