#!/usr/bin/env bash
# Sync benchmark: ingestion rate node -> NATS -> PostgreSQL and catch-up time after an
# outage, with real peers on loopback (see cloud/examples/sync_bench.rs). Needs nats-server
# (2.10+) and PostgreSQL 15 as for the cloud's tests. Prints, per phase, the rate against the
# issue's target (>= 20,000 events/s) as met/NOT met, the CPU seconds per event of the whole
# pipeline (this process = node + cloud, postgres, nats-server) and the ingest consumer's
# redeliveries; the conditions line says the build and PostgreSQL's fsync setting.
#   PVM_BENCH_EVENTS=100000 (default)   events per phase
#   PVM_BENCH_PROFILE=debug              skip the release build (figures are far lower)
set -euo pipefail
cd "$(dirname "$0")/.."
profile_flag=(--release)
if [ "${PVM_BENCH_PROFILE:-release}" = debug ]; then
    profile_flag=()
fi
echo "== sync bench (${PVM_BENCH_PROFILE:-release}), ${PVM_BENCH_EVENTS:-100000} events per phase"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build "${profile_flag[@]}" -q -p pvm-cloud --example sync_bench
cargo run "${profile_flag[@]}" -q -p pvm-cloud --example sync_bench
echo "load: $(uptime)"
