#!/usr/bin/env bash
# Kiosk figures: software-render time of a full 1080p frame and of a one-second clock update,
# the kiosk's RSS and CPU over a running clock, and (given the web display page's URL) headless
# Chromium showing that page, measured the same way, with the ratios.
#
# Usage: scripts/bench-kiosk.sh [--secs 60] [--page URL] [--kiosk-url ws://HOST:PORT/api/v1/ws]
#   --page URL       the same screen's web display page (http://127.0.0.1:8080/display/<screen>);
#                    without it, or without a Chromium binary, the Chromium side is skipped.
#   --kiosk-url WS   make the kiosk follow a running node instead of its sample clock.
# Env: CHROMIUM (binary, default: chromium or chromium-browser on PATH), CARGO_TARGET_DIR,
#      PVM_KIOSK_BENCH_BIN (use this bench binary instead of building the release one).
# Targets (issue 4): the kiosk needs at most 1/5 of Chromium's memory and 1/3 of its CPU.
set -euo pipefail

secs=60
page=""
kiosk_url=""
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
if [ -n "${PVM_KIOSK_BENCH_BIN:-}" ]; then
    bench="$PVM_KIOSK_BENCH_BIN"   # an already built bench binary (figures are only meaningful from a release build)
else
    cargo build --release -q -p pvm-kiosk --bin pvm-kiosk-bench --manifest-path "$root/Cargo.toml"
    bench="$target/release/pvm-kiosk-bench"
fi
hz="$(getconf CLK_TCK)"

echo "== software rendering ($bench, this machine: $(nproc) cores)"
"$bench" frames --frames 30

# Samples a process tree (the root pid and all its descendants) once a second until the root
# exits or $2 seconds pass; prints "avg_rss_kib peak_rss_kib cpu_seconds".
measure_tree() {
    local root_pid="$1" duration="$2"
    local sum_rss=0 n=0 peak=0 cpu_ticks=0
    local end=$((SECONDS + duration))
    while [ $SECONDS -lt $end ] && kill -0 "$root_pid" 2>/dev/null; do
        local pids rss=0 ticks=0
        pids="$root_pid $(descendants "$root_pid")"
        for p in $pids; do
            if [ -r "/proc/$p/status" ]; then
                local r
                r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
                rss=$((rss + ${r:-0}))
                local t
                # utime + stime + reaped children's cutime + cstime (fields 14-17).
                t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}' || true)
                ticks=$((ticks + ${t:-0}))
            fi
        done
        sum_rss=$((sum_rss + rss)); n=$((n + 1))
        [ $rss -gt $peak ] && peak=$rss
        [ $ticks -gt $cpu_ticks ] && cpu_ticks=$ticks
        sleep 1
    done
    [ $n -eq 0 ] && n=1
    echo "$((sum_rss / n)) $peak $(awk -v t="$cpu_ticks" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')"
}

descendants() {
    local kids
    kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}

echo "== kiosk, ${secs} s of a running clock at 1920x1080 (headless, offscreen buffer)"
kiosk_args=(soak --secs "$secs")
[ -n "$kiosk_url" ] && kiosk_args+=(--url "$kiosk_url")
"$bench" "${kiosk_args[@]}" &
kpid=$!
read -r k_avg k_peak k_cpu < <(measure_tree "$kpid" $((secs + 5)))
wait "$kpid"
k_pct=$(awk -v c="$k_cpu" -v s="$secs" 'BEGIN {printf "%.2f", c * 100 / s}')
echo "kiosk: rss avg $((k_avg / 1024)) MiB, peak $((k_peak / 1024)) MiB; cpu ${k_cpu} s = ${k_pct}% of a core"

chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$page" ]; then
    echo "== chromium: skipped (no --page URL given)"
    exit 0
fi
if [ -z "$chromium" ]; then
    echo "== chromium: skipped (no chromium binary; apt-get install chromium, or set CHROMIUM)"
    exit 0
fi

echo "== headless chromium showing $page, ${secs} s at 1920x1080"
profile="$(mktemp -d)"
"$chromium" --headless=new --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" --window-size=1920,1080 "$page" >/dev/null 2>&1 &
cpid=$!
read -r c_avg c_peak c_cpu < <(measure_tree "$cpid" "$secs")
kill "$cpid" 2>/dev/null || true
wait "$cpid" 2>/dev/null || true
rm -rf "$profile"
c_pct=$(awk -v c="$c_cpu" -v s="$secs" 'BEGIN {printf "%.2f", c * 100 / s}')
echo "chromium: rss avg $((c_avg / 1024)) MiB, peak $((c_peak / 1024)) MiB (sum over its processes); cpu ${c_cpu} s = ${c_pct}% of a core"
awk -v ka="$k_avg" -v ca="$c_avg" -v kc="$k_cpu" -v cc="$c_cpu" 'BEGIN {
    mr = (ca > 0) ? ka / ca : 0; cr = (cc > 0) ? kc / cc : 0;
    printf "kiosk/chromium: memory %.3f (target <= 0.200 %s), cpu %.3f (target <= 0.333 %s)\n",
        mr, (mr <= 0.2 ? "met" : "MISSED"), cr, (cr <= 1/3 ? "met" : "MISSED");
}'
