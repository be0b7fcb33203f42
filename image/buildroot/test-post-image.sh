#!/usr/bin/env bash
# Runs the board's post-image.sh on stand-in firmware files (the real ones come from
# Buildroot's download, which needs the internet) and checks what a venue and the update agent
# rely on: the GPT layout (numbers, names, types) that crates/pvm-ota/src/slots.rs expects,
# autoboot.txt, one cmdline.txt per slot naming its own system partition, the example
# pvm.toml on p1, the .img.xz with a matching SHA-256, the Imager os_list entry, and a signed
# bundle that pvm-release verifies against the public key the image would trust.
#
#   image/buildroot/test-post-image.sh
# Needs: genimage, mtools, dosfstools, e2fsprogs, squashfs-tools, xz-utils, python3, cargo.
# PVM_RELEASE_BIN: an already built pvm-release (default: built with cargo).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
for tool in genimage mcopy mtype mkfs.vfat mke2fs mksquashfs sfdisk xz python3; do
	command -v "$tool" >/dev/null || { echo "test-post-image: $tool is missing (Debian: genimage mtools dosfstools e2fsprogs squashfs-tools fdisk xz-utils python3)" >&2; exit 1; }
done
release=${PVM_RELEASE_BIN:-}
if [[ -z "$release" ]]; then
	cargo build --quiet --manifest-path "$repo/Cargo.toml" -p pvm-ota --bin pvm-release
	release=${CARGO_TARGET_DIR:-$repo/target}/debug/pvm-release
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
images=$work/images
mkdir -p "$images/rpi-firmware/overlays" "$work/build" "$work/rootfs/etc" "$work/keys"

# Stand-ins for what Buildroot puts in images/: kernel, device tree, firmware config and
# overlays, and a root filesystem.
head -c 1048576 /dev/urandom >"$images/Image"
echo "stand-in device tree" >"$images/bcm2712-rpi-5-b.dtb"
cp "$repo/buildroot-config/board/pvm-rpi5/config.txt" "$images/rpi-firmware/config.txt"
echo "root=/dev/mmcblk0p2 (Buildroot's, to be replaced)" >"$images/rpi-firmware/cmdline.txt"
echo "stand-in overlay" >"$images/rpi-firmware/overlays/vc4-kms-v3d-pi5.dtbo"
echo "1.4.0" >"$work/rootfs/etc/version"
mksquashfs "$work/rootfs" "$images/rootfs.squashfs" -quiet -comp zstd >/dev/null
"$release" keygen --unencrypted --out "$work/release" >/dev/null
cp "$work/release.pub" "$work/keys/"

BUILD_DIR=$work/build PVM_VERSION=1.4.0 PVM_RELEASE_BIN=$release \
	PVM_RELEASE_KEY=$work/release.key PVM_RELEASE_KEY_UNENCRYPTED=1 PVM_XZ_LEVEL=0 \
	PVM_IMAGE_URL=https://example.invalid/pvm-rpi5-1.4.0.img.xz SOURCE_DATE_EPOCH=1790000000 \
	"$repo/buildroot-config/board/pvm-rpi5/post-image.sh" "$images" >"$work/post-image.log" 2>&1 ||
	{ cat "$work/post-image.log" >&2; echo "test-post-image: post-image.sh failed" >&2; exit 1; }

failures=0
check() {
	local what=$1
	shift
	if "$@"; then
		echo "ok   $what"
	else
		echo "FAIL $what" >&2
		failures=$((failures + 1))
	fi
}

img=$images/sdcard.img
layout=$(sfdisk --json "$img" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
print(t["label"])
for p in t["partitions"]:
    print(p["node"][-1], p["name"], p["type"])')
fat=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
linux=0FC63DAF-8483-4772-8E79-3D69D8477DE4
expected="gpt
1 autoboot $fat
2 bootA $fat
3 bootB $fat
4 systemA $linux
5 systemB $linux
6 data $linux"
check "GPT: p1 autoboot, p2/p3 boot A/B (FAT), p4/p5 system A/B, p6 data" [ "$layout" == "$expected" ]

part() { # extracts the first $2 sectors (default: all) of partition $1 to a file
	local start size
	read -r start size < <(sfdisk --json "$img" | python3 -c "
import json, sys
p = json.load(sys.stdin)['partitiontable']['partitions'][$1 - 1]
print(p['start'], p['size'])")
	dd if="$img" of="$work/p$1" bs=512 skip="$start" count="${2:-$size}" status=none
}
for n in 1 2 3; do part "$n"; done
squashfs_size=$(stat -c %s "$images/rootfs.squashfs")
part 4 $(((squashfs_size + 511) / 512))

check "autoboot.txt: A normal, B for the trial boot" \
	[ "$(mtype -i "$work/p1" ::autoboot.txt)" == "$(printf '[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3')" ]
check "p1 carries the commented example pvm.toml" \
	cmp -s <(mtype -i "$work/p1" ::pvm.toml) "$repo/overlays/usr/share/pvm/pvm.toml.example"
check "slot A boots system A (p4) with panic=5 and the forced HDMI mode" \
	grep -q '^root=/dev/mmcblk0p4 .*panic=5 video=HDMI-A-1:1920x1080@60D' <(mtype -i "$work/p2" ::cmdline.txt)
check "slot B boots system B (p5)" \
	grep -q '^root=/dev/mmcblk0p5 ' <(mtype -i "$work/p3" ::cmdline.txt)
check "both slots carry config.txt with vc4-kms-v3d, the kernel and the overlays" \
	bash -c "mtype -i '$work/p2' ::config.txt | grep -qx 'dtoverlay=vc4-kms-v3d' && mdir -i '$work/p3' ::overlays >/dev/null && mdir -i '$work/p3' ::Image >/dev/null"
check "p4 holds the root filesystem" cmp -s <(head -c "$squashfs_size" "$work/p4") "$images/rootfs.squashfs"
check "the .img.xz matches its SHA-256 file" bash -c "cd '$images' && sha256sum --quiet -c pvm-rpi5-1.4.0.img.xz.sha256"
check "the .img.xz holds an image of the raw image's size" \
	[ "$(xz --robot -l "$images/pvm-rpi5-1.4.0.img.xz" | awk '$1 == "totals" { print $5 }')" == "$(stat -c %s "$img")" ]
img_sha=$(sha256sum "$img" | cut -d' ' -f1)
xz_sha=$(sha256sum "$images/pvm-rpi5-1.4.0.img.xz" | cut -d' ' -f1)
check "the Imager entry describes the image" python3 - "$images" "$img_sha" "$xz_sha" <<'PY'
import json, os, sys
d, img_sha, xz_sha = sys.argv[1:]
e = json.load(open(os.path.join(d, "pvm-rpi5-1.4.0.os_list.json")))["os_list"][0]
img = os.path.join(d, "sdcard.img")
xz = os.path.join(d, "pvm-rpi5-1.4.0.img.xz")
assert e["devices"] == ["pi5-64bit"], e
assert e["url"].endswith("pvm-rpi5-1.4.0.img.xz"), e
assert e["extract_size"] == os.path.getsize(img) and e["extract_sha256"] == img_sha, e
assert e["image_download_size"] == os.path.getsize(xz) and e["image_download_sha256"] == xz_sha, e
assert e["release_date"] == "2026-09-21", e
PY
check "the OTA bundle verifies against the trusted key" \
	"$release" verify --keys "$work/keys" --running 1.3.0 "$images/pvm-rpi5-1.4.0.pvmb"

if [[ $failures -ne 0 ]]; then
	echo "test-post-image: $failures check(s) failed" >&2
	exit 1
fi
echo "test-post-image: all checks passed"
