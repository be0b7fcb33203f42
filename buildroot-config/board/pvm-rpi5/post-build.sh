#!/usr/bin/env bash
# Buildroot post-build script: the last touches to the root filesystem before it is packed
# into the read-only squashfs. $1 is the target directory; Buildroot exports TARGET_DIR,
# BR2_EXTERNAL_PVM_PATH and friends.
set -euo pipefail

target=${1:?target directory}
external=${BR2_EXTERNAL_PVM_PATH:?run by Buildroot with the PVM external tree}
repo=$(cd "$external/.." && pwd)

# Mount points for the units in overlays/ (the root is read-only at run time).
mkdir -p "$target/data" "$target/boot/autoboot"

# An empty machine-id on a read-only root: systemd then uses a fresh one for each boot instead
# of failing to write it.
: >"$target/etc/machine-id"

# The release keys the update agent trusts (docs/ota.md, "Trust").
mkdir -p "$target/etc/pvm/keys"
if [[ -n "${PVM_RELEASE_PUBKEY:-}" ]]; then
	install -m 0644 "$PVM_RELEASE_PUBKEY" "$target/etc/pvm/keys/$(basename "$PVM_RELEASE_PUBKEY")"
fi

# What version this root filesystem is; the update agent compares bundles with it.
if [[ -n "${PVM_VERSION:-}" ]]; then
	echo "$PVM_VERSION" >"$target/etc/pvm/version"
fi

# The documentation the units point to (Documentation=file:/usr/share/doc/pvm/image.md).
install -D -m 0644 "$repo/docs/image.md" "$target/usr/share/doc/pvm/image.md"

# The kiosk owns the HDMI console; a login prompt there would fight it for the screen.
rm -f "$target/etc/systemd/system/getty.target.wants/getty@tty1.service"
