#!/usr/bin/env bash
# `make bench`: the QEMU test image's sizes and its time from QEMU start to a healthy node
# (under TCG software emulation, so slower than a Pi; a trend, not the appliance's boot time).
# Builds pvm-node and pvm-kiosk (debug, as the image tests use them) and the image if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p pvm-node -p pvm-kiosk -p pvm-firstboot
rootfs="$(image/qemu/build-rootfs.sh)"
echo "rootfs tarball (Debian bookworm, cached): $(du -m --apparent-size "$rootfs" | cut -f1) MiB"
cargo run -q -p pvm-appliance-tests --example image_bench
