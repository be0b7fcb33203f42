#!/usr/bin/env bash
# `make run`: the node on the embedded SQLite default, and the kiosk's window next to it when
# this machine has a desktop. Ctrl-C stops both; the node drains its queue and closes cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${DATA_DIR:-./data}
listen=${LISTEN:-0.0.0.0:8080}
port=${listen##*:}
bin=${CARGO_TARGET_DIR:-target}/debug

"$bin/pvm-node" --data-dir "$data_dir" --listen "$listen" &
node=$!
kiosk=""
stop() {
  [[ -n "$kiosk" ]] && kill "$kiosk" 2>/dev/null || true
  kill -TERM "$node" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
}
trap stop EXIT INT TERM

# Wait until the node answers before pointing the kiosk at it.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done

if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  "$bin/pvm-kiosk" --url "ws://127.0.0.1:$port/api/v1/ws" --backend winit &
  kiosk=$!
else
  echo "No desktop display here, so no kiosk window: the TV's view is at http://localhost:$port/display/hdmi"
fi
wait "$node"
