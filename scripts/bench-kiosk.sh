#!/usr/bin/env bash
# Kiosk figures (issue 4): software-render time of a full 1080p frame and of a one-second clock
# update; then, side by side over the same window, the kiosk following a real node's HDMI
# screen (a running tournament clock) and headless Chromium showing that same screen's web
# display page from the same node: RSS (Chromium: all its processes summed) and CPU, with the
# ratios against the targets (kiosk <= 1/5 of Chromium's memory, <= 1/3 of its CPU).
#
# Usage: scripts/bench-kiosk.sh [--secs 60] [--page URL --kiosk-url ws://HOST:PORT/api/v1/ws]
#   --secs S         length of the measured window (after a warm-up of $WARMUP s, default 5)
#   --page/--kiosk-url  measure against a node you started yourself instead of the bench node
#                    (the node benchmark example bench_display, built here in release).
# Env: CHROMIUM (binary, default: chromium or chromium-browser on PATH), CARGO_TARGET_DIR,
#      PVM_KIOSK_BENCH_BIN (use this bench binary instead of building the release one),
#      PVM_BENCH_DISPLAY_BIN and PVM_NODE_BIN (an already built bench_display and pvm-node).
# Nothing here asserts: figures are printed, "met"/"MISSED" said next to each ratio.
set -euo pipefail

secs=60
page=""
kiosk_url=""
warmup="${WARMUP:-5}"
while [ $# -gt 0 ]; do
    case "$1" in
        --secs) secs="$2"; shift 2 ;;
        --page) page="$2"; shift 2 ;;
        --kiosk-url) kiosk_url="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
if [ -n "${PVM_KIOSK_BENCH_BIN:-}" ]; then
    bench="$PVM_KIOSK_BENCH_BIN"   # an already built bench binary (figures are only meaningful from a release build)
else
    cargo build --release -q -p pvm-kiosk --bin pvm-kiosk-bench --manifest-path "$root/Cargo.toml"
    bench="$target/release/pvm-kiosk-bench"
fi
hz="$(getconf CLK_TCK)"

echo "== software rendering ($bench, this machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg))"
# KIOSK_FRAMES=0 skips this part (e.g. with a debug bench binary, whose frames take seconds).
if [ "${KIOSK_FRAMES:-30}" -gt 0 ]; then
    "$bench" frames --frames "${KIOSK_FRAMES:-30}"
fi

descendants() {
    local kids
    kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}

# CPU ticks (utime + stime + reaped children's cutime + cstime) and RSS in KiB of a process
# tree: the root pid and all its descendants, now. Prints "ticks rss_kib".
tree_usage() {
    local ticks=0 rss=0 p r t
    for p in "$1" $(descendants "$1"); do
        [ -r "/proc/$p/status" ] || continue
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}' || true)
        rss=$((rss + ${r:-0}))
        ticks=$((ticks + ${t:-0}))
    done
    echo "$ticks $rss"
}

# Samples several process trees once a second for $1 seconds; for each root pid given after
# it prints "avg_rss_kib peak_rss_kib cpu_seconds" (CPU used within the window only), one
# line per tree, in order.
measure_trees() {
    local duration="$1"
    shift
    local roots=("$@") i
    local -a t0 sum peak n last
    for i in "${!roots[@]}"; do
        read -r "t0[i]" _ < <(tree_usage "${roots[i]}")
        sum[i]=0; peak[i]=0; n[i]=0; last[i]=${t0[i]}
    done
    local end=$((SECONDS + duration)) ticks rss
    while [ $SECONDS -lt $end ]; do
        sleep 1
        for i in "${!roots[@]}"; do
            kill -0 "${roots[i]}" 2>/dev/null || continue
            read -r ticks rss < <(tree_usage "${roots[i]}")
            sum[i]=$((sum[i] + rss)); n[i]=$((n[i] + 1))
            [ "$rss" -gt "${peak[i]}" ] && peak[i]=$rss
            [ "$ticks" -gt "${last[i]}" ] && last[i]=$ticks
        done
    done
    for i in "${!roots[@]}"; do
        [ "${n[i]}" -eq 0 ] && n[i]=1
        echo "$((sum[i] / n[i])) ${peak[i]} $(awk -v t="$((last[i] - t0[i]))" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')"
    done
}

chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
pids_to_stop=()
cleanup() {
    for p in "${pids_to_stop[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${profile:-}" ] && rm -rf "$profile"
    # Closing its input makes the bench node's runner stop the node cleanly.
    if [ -n "${node_in:-}" ]; then exec {node_in}>&- || true; fi
    if [ -n "${node_runner:-}" ]; then wait "$node_runner" 2>/dev/null || true; fi
    return 0
}
trap cleanup EXIT

if [ -z "$page" ]; then
    # A real node with a running clock on its HDMI screen. Its display page is part of the web
    # build, embedded in the node when the node is compiled: build the web first if needed.
    if [ ! -f "$root/web/dist/display.html" ]; then
        echo "building the web display pages (web/dist)…" >&2
        (cd "$root/web" && npm run build >/dev/null)
    fi
    if [ -n "${PVM_BENCH_DISPLAY_BIN:-}" ]; then
        display_bin="$PVM_BENCH_DISPLAY_BIN"   # already built; it runs $PVM_NODE_BIN if set
    else
        cargo build --release -q -p pvm-node --bin pvm-node --example bench_display --manifest-path "$root/Cargo.toml"
        display_bin="$target/release/examples/bench_display"
    fi
    fifo="$(mktemp -u)"
    mkfifo "$fifo"
    info="$(mktemp)"
    # The example holds the node up until its input closes (or 10 minutes pass).
    "$display_bin" --hold 600 <"$fifo" >"$info" &
    node_runner=$!
    exec {node_in}>"$fifo"
    rm -f "$fifo"
    for _ in $(seq 1 600); do
        grep -q '^NODE_PID=' "$info" && break
        kill -0 "$node_runner" 2>/dev/null || { echo "the bench node did not start" >&2; exit 1; }
        sleep 0.2
    done
    page="$(sed -n 's/^PAGE=//p' "$info")"
    kiosk_url="$(sed -n 's/^WS=//p' "$info")"
    node_pid="$(sed -n 's/^NODE_PID=//p' "$info")"
    rm -f "$info"
    [ -n "$page" ] && [ -n "$kiosk_url" ] || { echo "the bench node gave no page URL" >&2; exit 1; }
    echo "== node (pid $node_pid) shows a running tournament clock on HDMI: $page"
fi

echo "== side by side, ${secs} s after ${warmup} s of warm-up, 1920x1080: the kiosk following $kiosk_url and headless Chromium on $page"
"$bench" soak --secs $((secs + warmup + 5)) --url "$kiosk_url" &
kpid=$!
pids_to_stop+=("$kpid")
cpid=""
if [ -n "$chromium" ]; then
    profile="$(mktemp -d)"
    "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$profile" --window-size=1920,1080 \
        "$page" >/dev/null 2>&1 &
    cpid=$!
    pids_to_stop+=("$cpid")
else
    echo "== chromium: skipped (no chromium binary; apt-get install chromium, or set CHROMIUM)"
fi
sleep "$warmup"
echo "load at the start of the window: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$cpid" ]; then
    mapfile -t usage < <(measure_trees "$secs" "$kpid" "$cpid")
else
    mapfile -t usage < <(measure_trees "$secs" "$kpid")
fi
echo "load at the end of the window: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r k_avg k_peak k_cpu <<<"${usage[0]}"
k_pct=$(awk -v c="$k_cpu" -v s="$secs" 'BEGIN {printf "%.2f", c * 100 / s}')
echo "kiosk: rss avg $((k_avg / 1024)) MiB, peak $((k_peak / 1024)) MiB; cpu ${k_cpu} s in ${secs} s = ${k_pct}% of a core"
wait "$kpid" || true

if [ -n "$cpid" ]; then
    read -r c_avg c_peak c_cpu <<<"${usage[1]}"
    kill "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
    c_pct=$(awk -v c="$c_cpu" -v s="$secs" 'BEGIN {printf "%.2f", c * 100 / s}')
    echo "chromium: rss avg $((c_avg / 1024)) MiB, peak $((c_peak / 1024)) MiB (sum over all its processes); cpu ${c_cpu} s in ${secs} s = ${c_pct}% of a core"
    awk -v ka="$k_avg" -v ca="$c_avg" -v kc="$k_cpu" -v cc="$c_cpu" 'BEGIN {
        mr = (ca > 0) ? ka / ca : 0; cr = (cc > 0) ? kc / cc : 0;
        printf "kiosk/chromium: memory %.3f (target <= 0.200: %s), cpu %.3f (target <= 0.333: %s)\n",
            mr, (mr <= 0.2 ? "met" : "MISSED"), cr, (cr <= 1/3 ? "met" : "MISSED");
    }'
fi
