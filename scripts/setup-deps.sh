#!/usr/bin/env bash
# Installs what building and testing PVM needs on a fresh Debian/Ubuntu machine.
# Idempotent and quiet when everything is already there. Needs root (or sudo) for apt.
set -euo pipefail

# Debian packages, by purpose:
#   chrony       a real NTP server for the SNTP tests (pvm-node timesync)
#   pkg-config   for -sys crates
#   sqlite3      to inspect event logs by hand (not needed by the build: SQLite is bundled)
packages=(chrony pkg-config sqlite3)
if [[ -n "${PVM_EXTRA_PACKAGES:-}" ]]; then
  read -r -a extra <<<"$PVM_EXTRA_PACKAGES"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# chronyd from the package may try to start as a service; the tests run their own on loopback.
command -v chronyd >/dev/null || { echo "setup: chronyd still missing" >&2; exit 1; }
