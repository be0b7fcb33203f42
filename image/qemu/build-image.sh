#!/usr/bin/env bash
# Assembles the QEMU test image of the appliance: the same GPT layout as the Pi's SD card,
# built from a cached Debian root filesystem, the shared overlays and our x86_64 binaries,
# without loop mounts or root-only mounting (sfdisk, mkfs.vfat + mcopy, mksquashfs, mke2fs -d,
# then dd at the partitions' offsets).
#
#   image/qemu/build-image.sh OUT_DIR [BIN_DIR]
#
# BIN_DIR holds pvm-node, pvm-kiosk and pvm-firstboot; default: the cargo debug output.
# OUT_DIR receives:
#   disk.img         the whole card: p1 autoboot, p2/p3 boot A/B, p4/p5 system A/B, p6 data
#   boot-a.vfat boot-b.vfat system.squashfs   the slot payloads (what an update bundle carries)
#   system-next.squashfs  the same system reporting the next version (version-next), for
#                    update tests: an update must be newer than what runs
#   version version-next  the two versions (semver, one line each)
#   layout.json      sfdisk's view of disk.img (offsets and sizes in 512-byte sectors)
#   inputs.sha256    the key of this build; an OUT_DIR whose key matches is reused as it is
#
# Slot B ships empty (a formatted FAT with no kernel, a zeroed system partition) as on a fresh
# card: only an update fills it, so booting it by mistake fails loudly instead of passing.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/image/qemu"
out="${1:?usage: build-image.sh OUT_DIR [BIN_DIR]}"
bins="${2:-${CARGO_TARGET_DIR:-$repo/target}/debug}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

for tool in mksquashfs mkfs.vfat mcopy mke2fs sfdisk; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (make setup)" >&2; exit 1; }
done
for b in pvm-node pvm-kiosk pvm-firstboot; do
  [[ -x "$bins/$b" ]] || { echo "build-image: $bins/$b is missing (cargo build -p $b)" >&2; exit 1; }
done

# PVM_ROOTFS_TAR: a tarball to use instead of the cached build (for trying things out).
rootfs_tar="${PVM_ROOTFS_TAR:-$("$here/build-rootfs.sh")}"

# Sizes in MiB. The system slots are sized for the image plus room for updates to grow.
AUTOBOOT_MIB=16 BOOT_MIB=64 SYSTEM_MIB=384 DATA_MIB=256

binaries=("$bins/pvm-node" "$bins/pvm-kiosk" "$bins/pvm-firstboot")

# Contents only (never the paths they were reached by), so every caller agrees on the key.
key="$( {
  basename "$rootfs_tar"
  cat "$0" "$here/node-update.toml" "$repo/Cargo.toml" "${binaries[@]}" | sha256sum
  for tree in "$here/rootfs" "$repo/overlays"; do
    [[ -d "$tree" ]] || continue
    (cd "$tree" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
    # Links (often into /data, dangling here) count by where they point.
    (cd "$tree" && find . -type l -printf '%p -> %l\n' | sort)
  done
} | sha256sum | cut -c1-32)"
if [[ -s "$out/disk.img" && "$(cat "$out/inputs.sha256" 2>/dev/null)" == "$key" ]]; then
  echo "build-image: $out is up to date" >&2
  exit 0
fi
rm -f "$out/inputs.sha256"

work="$(mktemp -d "$out/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir "$root"
# Extracted as root so ownership and modes survive into the squashfs.
tar -C "$root" --numeric-owner -xpf "$rootfs_tar"

# --- the system slot ---------------------------------------------------------------------
kernels=("$root"/boot/vmlinuz-*)
initrds=("$root"/boot/initrd.img-*)
cp "${kernels[0]}" "$work/vmlinuz"
cp "${initrds[0]}" "$work/initrd.img"
# The kernel and initrd live in the boot slot (as on the Pi); the system slot needs no copy.
rm -f "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$root"/vmlinuz* "$root"/initrd.img*

install -d "$root/usr/bin"
for b in "${binaries[@]}"; do
  install -m 0755 "$b" "$root/usr/bin/"
done
# Debug builds carry line tables; the image does not need them and they triple the slot.
strip --strip-debug "$root"/usr/bin/pvm-* 2>/dev/null || true

# The shared overlays (the same files every image of the appliance gets), then what only the
# QEMU image needs.
if [[ -d "$repo/overlays" ]]; then
  cp -a "$repo/overlays/." "$root/"
fi
cp -a "$here/rootfs/." "$root/"
# The update agent's settings for this machine (virtio slot devices, the boot selector as
# firmware) after the shared node.toml; the Pi keeps the defaults.
cat "$here/node-update.toml" >>"$root/etc/pvm/node.toml"
# What version this system is (the Pi's post-build.sh writes the same file): the workspace's.
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n1)"
[[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || { echo "build-image: workspace version '$version' is not x.y.z" >&2; exit 1; }
next_version="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.$((BASH_REMATCH[3] + 1))"
echo "$version" >"$root/etc/pvm/version"
# A read-only root cannot take new users at boot: create the overlays' system users now.
systemd-sysusers --root="$root" >/dev/null
# A read-only root needs a writable /tmp: Debian ships the tmpfs unit without enabling it.
if [[ -f "$root/usr/share/systemd/tmp.mount" && ! -e "$root/etc/systemd/system/tmp.mount" ]]; then
  cp "$root/usr/share/systemd/tmp.mount" "$root/etc/systemd/system/tmp.mount"
  echo tmp.mount >>"$root/etc/pvm-qemu-enable"
fi
# Enable what the QEMU overlay asks for (a list, since symlinks do not survive every checkout);
# systemctl --root only writes symlinks, it starts nothing.
# shellcheck disable=SC2046
systemctl --root="$root" enable $(grep -v '^#' "$root/etc/pvm-qemu-enable") >/dev/null 2>&1
rm "$root/etc/pvm-qemu-enable"
# An empty machine-id on a read-only root: systemd puts a transient one in /run each boot.
: >"$root/etc/machine-id"
install -d "$root/data" "$root/boot/autoboot"

mksquashfs "$root" "$work/system.squashfs" -comp gzip -noappend -quiet -no-progress >&2
# The update tests' payload: byte for byte the same system except the version it reports.
echo "$next_version" >"$root/etc/pvm/version"
mksquashfs "$root" "$work/system-next.squashfs" -comp gzip -noappend -quiet -no-progress >&2
echo "$version" >"$work/version"
echo "$next_version" >"$work/version-next"

# --- boot slots and autoboot ---------------------------------------------------------------
cmdline_for() {
  # systemd.volatile=state: / stays read-only, /var is a tmpfs (see docs/qemu-image.md).
  echo "root=/dev/vda$1 rootfstype=squashfs ro console=ttyS0,115200 panic=5 consoleblank=0 systemd.volatile=state quiet loglevel=4"
}
mkfat() { # file size_mib label
  rm -f "$1"
  mkfs.vfat -C -n "$3" "$1" $(($2 * 1024)) >/dev/null
}
mkfat "$work/boot-a.vfat" "$BOOT_MIB" BOOTA
cmdline_for 4 >"$work/cmdline-a.txt"
mcopy -i "$work/boot-a.vfat" "$work/vmlinuz" ::vmlinuz
mcopy -i "$work/boot-a.vfat" "$work/initrd.img" ::initrd.img
mcopy -i "$work/boot-a.vfat" "$work/cmdline-a.txt" ::cmdline.txt
# The same kernel and system, as slot B would hold them after an update: what a bundle carries.
mkfat "$work/boot-b-payload.vfat" "$BOOT_MIB" BOOTB
cmdline_for 5 >"$work/cmdline-b.txt"
mcopy -i "$work/boot-b-payload.vfat" "$work/vmlinuz" ::vmlinuz
mcopy -i "$work/boot-b-payload.vfat" "$work/initrd.img" ::initrd.img
mcopy -i "$work/boot-b-payload.vfat" "$work/cmdline-b.txt" ::cmdline.txt
mkfat "$work/boot-b-empty.vfat" "$BOOT_MIB" BOOTB

mkfat "$work/autoboot.vfat" "$AUTOBOOT_MIB" AUTOBOOT
printf '[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n' >"$work/autoboot.txt"
mcopy -i "$work/autoboot.vfat" "$work/autoboot.txt" ::autoboot.txt
# The commented example ships on the partition as pvm.toml, as on the Pi's card; a test writes
# its own before the first boot.
if [[ -f "$root/usr/share/pvm/pvm.toml.example" ]]; then
  mcopy -i "$work/autoboot.vfat" "$root/usr/share/pvm/pvm.toml.example" ::pvm.toml
fi

# --- data ----------------------------------------------------------------------------------
mkdir "$work/data"
mke2fs -q -t ext4 -L data -d "$work/data" "$work/data.ext4" "${DATA_MIB}M"

# --- the card ------------------------------------------------------------------------------
mib=$((1024 * 1024))
total=$((1 + AUTOBOOT_MIB + 2 * BOOT_MIB + 2 * SYSTEM_MIB + DATA_MIB + 1))
disk="$work/disk.img"
truncate -s $((total * mib)) "$disk"
s=2048 # 1 MiB in sectors: the first partition starts there, after the GPT
part() { echo "start=$s, size=$(($1 * 2048)), type=$2, name=$3"; s=$((s + $1 * 2048)); }
fat=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
linux=0FC63DAF-8483-4772-8E79-3D69D8477DE4
{
  echo "label: gpt"
  part "$AUTOBOOT_MIB" $fat autoboot
  part "$BOOT_MIB" $fat bootA
  part "$BOOT_MIB" $fat bootB
  part "$SYSTEM_MIB" $linux systemA
  part "$SYSTEM_MIB" $linux systemB
  part "$DATA_MIB" $linux data
} | sfdisk --quiet "$disk"
sfdisk --json "$disk" >"$work/layout.json"

put() { # partition_number file
  local start
  start="$(sfdisk --json "$disk" | python3 -c 'import json,sys; n=int(sys.argv[1]); print([p["start"] for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["node"].endswith(str(n))][0])' "$1")"
  dd if="$2" of="$disk" bs=512 seek="$start" conv=notrunc,sparse status=none
}
sqsize=$(stat -c %s "$work/system.squashfs")
if ((sqsize > SYSTEM_MIB * mib)); then
  echo "build-image: system.squashfs ($sqsize bytes) does not fit in ${SYSTEM_MIB} MiB" >&2
  exit 1
fi
put 1 "$work/autoboot.vfat"
put 2 "$work/boot-a.vfat"
put 3 "$work/boot-b-empty.vfat"
put 4 "$work/system.squashfs"
put 6 "$work/data.ext4"

mv "$disk" "$out/disk.img"
mv "$work/boot-a.vfat" "$out/boot-a.vfat"
mv "$work/boot-b-payload.vfat" "$out/boot-b.vfat"
mv "$work/system.squashfs" "$out/system.squashfs"
mv "$work/system-next.squashfs" "$out/system-next.squashfs"
mv "$work/version" "$work/version-next" "$out/"
mv "$work/layout.json" "$out/layout.json"
echo "$key" >"$out/inputs.sha256"
echo "build-image: $out/disk.img ($(du -h --apparent-size "$out/disk.img" | cut -f1) card, system $((sqsize / mib)) MiB)" >&2
