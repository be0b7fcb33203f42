#!/usr/bin/env bash
# Buildroot post-image script: assembles the SD card image (GPT, A/B slots; genimage.cfg.in),
# compresses it, writes its SHA-256 and a Raspberry Pi Imager os_list entry, and makes the
# signed OTA bundle of the same build with pvm-release.
#
# Environment (set by image/buildroot/build.sh):
#   PVM_VERSION        semantic version of this build (required)
#   PVM_RELEASE_BIN    the host pvm-release binary
#   PVM_RELEASE_KEY    minisign secret key, or "none" to skip the OTA bundle
#   PVM_RELEASE_PASSWORD_FILE  the key's password (read by pvm-release), if it has one
#   PVM_RELEASE_KEY_UNENCRYPTED=1  the key has no password (test keys only)
#   PVM_IMAGE_URL      where the .img.xz will be published (for the os_list entry)
#   PVM_XZ_LEVEL       xz preset for the image (default 9; the layout test uses 0)
set -euo pipefail

images=${1:-${BINARIES_DIR:?}}
board=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$board/../../.." && pwd)
version=${PVM_VERSION:?PVM_VERSION must be set (image/buildroot/build.sh sets it)}
name=pvm-rpi5-$version

# --- per-slot boot files -------------------------------------------------------------------
mkdir -p "$images/pvm"
# The two boot slots differ only in which system partition is their root.
sed 's|@ROOT@|/dev/mmcblk0p4|' "$board/cmdline.txt" >"$images/pvm/cmdline-a.txt"
sed 's|@ROOT@|/dev/mmcblk0p5|' "$board/cmdline.txt" >"$images/pvm/cmdline-b.txt"
install -m 0644 "$board/autoboot.txt" "$images/autoboot.txt"
# The venue edits this copy on the card; every line of it is commented out.
install -m 0644 "$repo/overlays/usr/share/pvm/pvm.toml.example" "$images/pvm/pvm.toml"

boot_files() {
	local cmdline=$1 f
	printf '\t\tfile cmdline.txt { image = "%s" }\n' "$cmdline"
	printf '\t\tfiles = {\n'
	for f in "$images"/*.dtb "$images"/rpi-firmware/* "$images/Image"; do
		[[ -e "$f" ]] || continue
		[[ "$(basename "$f")" == cmdline.txt ]] && continue
		printf '\t\t\t"%s",\n' "${f#"$images"/}"
	done
	printf '\t\t}\n'
}

cfg="$images/genimage.cfg"
awk -v a="$(boot_files pvm/cmdline-a.txt)" -v b="$(boot_files pvm/cmdline-b.txt)" '
	/^@BOOT_FILES_A@$/ { print a; next }
	/^@BOOT_FILES_B@$/ { print b; next }
	{ print }
' "$board/genimage.cfg.in" >"$cfg"

rootpath=$(mktemp -d)
trap 'rm -rf "$rootpath"' EXIT
rm -rf "${BUILD_DIR:?}/genimage.tmp"
genimage \
	--rootpath "$rootpath" \
	--tmppath "$BUILD_DIR/genimage.tmp" \
	--inputpath "$images" \
	--outputpath "$images" \
	--config "$cfg"

# --- the SD card image and its Imager entry -------------------------------------------------
echo "post-image: compressing $name.img.xz"
extract_size=$(stat -c %s "$images/sdcard.img")
extract_sha256=$(sha256sum "$images/sdcard.img" | cut -d' ' -f1)
xz -T0 "-${PVM_XZ_LEVEL:-9}" --stdout "$images/sdcard.img" >"$images/$name.img.xz"
(cd "$images" && sha256sum "$name.img.xz" >"$name.img.xz.sha256")
download_size=$(stat -c %s "$images/$name.img.xz")
download_sha256=$(cut -d' ' -f1 "$images/$name.img.xz.sha256")

url=${PVM_IMAGE_URL:-$name.img.xz}
release_date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)
cat >"$images/$name.os_list.json" <<JSON
{
  "os_list": [
    {
      "name": "PVM $version",
      "description": "PVM (Poker Venue Manager) appliance for the Raspberry Pi 5",
      "url": "$url",
      "extract_size": $extract_size,
      "extract_sha256": "$extract_sha256",
      "image_download_size": $download_size,
      "image_download_sha256": "$download_sha256",
      "release_date": "$release_date",
      "init_format": "none",
      "devices": ["pi5-64bit"]
    }
  ]
}
JSON

# --- the signed OTA bundle of the same build ------------------------------------------------
key=${PVM_RELEASE_KEY:-}
if [[ "$key" == none ]]; then
	echo "post-image: PVM_RELEASE_KEY=none, no OTA bundle made"
else
	release=${PVM_RELEASE_BIN:?PVM_RELEASE_BIN must name the host pvm-release binary}
	[[ -f "$key" ]] || { echo "post-image: signing key $key not found" >&2; exit 1; }
	mkdir -p "$images/ota"
	# The bundle's boot payload is slot A's boot image; see docs/image.md ("OTA bundle") for
	# what the agent does with cmdline.txt when it installs into slot B.
	cp "$images/boot-a.vfat" "$images/ota/boot.img"
	cp "$images/rootfs.squashfs" "$images/ota/rootfs.img"
	# An encrypted key's password comes from PVM_RELEASE_PASSWORD_FILE (read by pvm-release).
	password_args=()
	[[ "${PVM_RELEASE_KEY_UNENCRYPTED:-0}" != 1 ]] || password_args=(--unencrypted)
	"$release" build --version "$version" --board rpi5 \
		--boot "$images/ota/boot.img" --rootfs "$images/ota/rootfs.img" \
		--key "$key" "${password_args[@]}" --out "$images/$name.pvmb"
	rm -rf "$images/ota"
fi

echo "post-image: done"
ls -l "$images/$name".*
