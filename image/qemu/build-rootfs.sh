#!/usr/bin/env bash
# Builds the Debian root filesystem of the QEMU test image as a tarball and caches it.
#
# The tarball depends only on the Debian suite, the package list and the hooks and options
# below, so it is cached under a key made of those (comments can change freely) (about 5 minutes to build, seconds to reuse). The cache
# lives outside the cargo target dir so `cargo clean` and fresh clones keep it:
# ${PVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pvm}/rootfs-<key>.tar
#
# Prints the tarball's path on stdout (and nothing else there).
#
# The mirror is the one apt on this machine already uses: mmdebstrap is given no mirror of
# its own, so it reads /etc/apt/sources.list*.
set -euo pipefail

suite=bookworm

# What the appliance needs at run time, as Debian packages:
#   linux-image-amd64           the kernel (and its initramfs tools, for the initrd)
#   systemd systemd-sysv udev   init, journald, networkd, device nodes
#   libinput10 libgbm1 libdrm2 libxkbcommon0 libfontconfig1 fonts-dejavu-core
#                               what pvm-kiosk (Slint, linuxkms backend) loads; no X
#   ca-certificates tzdata      the node's TLS peers (cloud sync); time zones for pvm.toml
#   dosfstools mtools           repairing and writing the FAT partitions (autoboot, boot slots)
#   e2fsprogs util-linux fdisk  mounting, checking and growing /data (the overlays' grow-data)
#   iproute2 procps kmod        the test harness's commands over the serial line
packages=(linux-image-amd64 initramfs-tools systemd systemd-sysv udev
  libinput10 libgbm1 libdrm2 libxkbcommon0 libfontconfig1 fonts-dejavu-core
  ca-certificates tzdata dosfstools mtools e2fsprogs util-linux fdisk iproute2 procps kmod)

# Debian's kernel ships every driver: the ones a virtio VM can never use are dropped so the
# system slot stays small and quick to compress. Only whole subtrees are removed, so no module
# anything here needs loses a dependency; depmod runs again after.
# shellcheck disable=SC2016 # expanded by the hook's shell inside mmdebstrap, not here
prune='set -e
m=$(echo "$1"/lib/modules/*)
for d in drivers/net/wireless drivers/net/ethernet drivers/media drivers/infiniband drivers/staging \
  drivers/scsi drivers/isdn drivers/bluetooth drivers/iio drivers/hwmon drivers/mtd drivers/usb/gadget \
  drivers/gpu/drm/amd drivers/gpu/drm/nouveau drivers/gpu/drm/i915 drivers/gpu/drm/radeon \
  drivers/gpu/drm/xe drivers/net/can drivers/net/usb sound net/wireless net/mac80211 net/bluetooth \
  fs/btrfs fs/xfs fs/ocfs2 fs/gfs2 fs/nfs fs/nfsd fs/ceph fs/smb fs/f2fs fs/jfs fs/reiserfs; do
  rm -rf "$m/kernel/$d"
done
rm -rf "$1"/lib/firmware/* "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*
chroot "$1" depmod -a "$(basename "$m")"'

# The initrd only has to find a virtio disk and mount a squashfs root: a short module list
# keeps it small and quick to unpack under emulation.
# shellcheck disable=SC2016
initrd='set -e
printf "%s\n" virtio_pci virtio_blk squashfs ext4 vfat > "$1"/etc/initramfs-tools/modules
sed -i "s/^MODULES=.*/MODULES=list/; s/^COMPRESS=.*/COMPRESS=gzip/" "$1"/etc/initramfs-tools/initramfs.conf
chroot "$1" update-initramfs -u -k all'

options=(--variant=minbase --format=tar --include="$(IFS=,; echo "${packages[*]}")"
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --customize-hook="$prune" --customize-hook="$initrd")

cache="${PVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pvm}"
mkdir -p "$cache"
key="$(printf '%s\n' "$suite" "${options[@]}" | sha256sum | cut -c1-16)"
out="$cache/rootfs-$key.tar"
if [[ -s "$out" ]]; then
  echo "$out"
  exit 0
fi

command -v mmdebstrap >/dev/null || { echo "build-rootfs: mmdebstrap is missing (make setup)" >&2; exit 1; }
echo "build-rootfs: building $out (a few minutes; cached afterwards)" >&2
# mmdebstrap picks its output format from the name, so the temporary name ends in .tar too.
tmp="$cache/.rootfs-$key.$$.tar"
trap 'rm -f "$tmp"' EXIT
mmdebstrap "${options[@]}" "$suite" "$tmp" >&2
mv "$tmp" "$out"
trap - EXIT
echo "$out"
