#!/usr/bin/env bash
# `make image`: builds the Raspberry Pi 5 SD card image with Buildroot and the signed OTA
# bundle of the same build. See docs/image.md.
#
#   image/buildroot/build.sh
#
# Steps, each announced as it starts:
#   1. reachability: Buildroot's sources come from the internet; offline, stop at once
#   2. preflight: host tools and the signing key, before hours of building
#   3. the pinned Buildroot release (a git checkout of its tag, commit id verified)
#   4. the PVM source tree for Buildroot: this commit's files, the built web console, and
#      `cargo vendor --locked` into VENDOR/ (Buildroot builds Rust --offline --locked)
#   5. the host pvm-release (signs the OTA bundle)
#   6. Buildroot itself, with BR2_EXTERNAL=buildroot-config (one line per package step)
#
# Environment:
#   PVM_IMAGE_OUT        work and output folder (default ~/.cache/pvm-image)
#   PVM_VERSION          version of this build (default: the workspace version)
#   PVM_RELEASE_KEY      minisign secret key signing the OTA bundle, or "none" to skip it
#   PVM_RELEASE_PUBKEY   its public key, installed as trusted in /etc/pvm/keys/
#   PVM_RELEASE_PASSWORD_FILE, PVM_RELEASE_KEY_UNENCRYPTED  see post-image.sh
#   PVM_BUILDROOT_GIT    where the Buildroot release is fetched from
#   PVM_REACH_TIMEOUT    seconds to wait for that server before calling it offline (default 10)
#   PVM_IMAGE_JOBS       parallel jobs for Buildroot (default: all cores)
set -euo pipefail

# The pinned Buildroot release: its tag and the commit the tag must name.
BUILDROOT_RELEASE=2026.05.1
BUILDROOT_COMMIT=cb857ba4c87a93e5265a9e4a3f32071abf39e14a

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${PVM_IMAGE_OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/pvm-image}
buildroot_git=${PVM_BUILDROOT_GIT:-https://gitlab.com/buildroot.org/buildroot.git}
reach_timeout=${PVM_REACH_TIMEOUT:-10}

step() { printf '\n==> %s\n' "$*"; }
die() {
	printf 'make image: %s\n' "$*" >&2
	exit 1
}

# --- 1. reachability -------------------------------------------------------------------------
step "checking that the Buildroot download ($buildroot_git) can be reached"
if ! GIT_TERMINAL_PROMPT=0 timeout "$reach_timeout" \
	git ls-remote --exit-code "$buildroot_git" "refs/tags/$BUILDROOT_RELEASE" >/dev/null 2>&1; then
	cat >&2 <<EOF
make image: OFFLINE — cannot reach $buildroot_git (waited at most ${reach_timeout}s).
make image: building the SD card image needs the internet: Buildroot downloads the Linux
make image: kernel, the toolchain and every package's source. Nothing was built or changed.
make image: (On a machine without internet, the QEMU test image of the same appliance is
make image:  built from Debian packages instead: make test-image.)
EOF
	exit 3
fi

# --- 2. preflight ----------------------------------------------------------------------------
step "checking host tools and the signing key"
missing=()
# Buildroot's mandatory host packages (its manual, "System requirements"), plus what the
# source preparation needs.
for tool in make gcc g++ patch perl python3 rsync bc cpio unzip file wget git tar xz \
	sha256sum cargo npm; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ ${#missing[@]} -eq 0 ]] || die "missing host tools: ${missing[*]} (Debian: build-essential rsync bc cpio unzip file wget git xz-utils python3 cargo npm)"

key=${PVM_RELEASE_KEY:-}
if [[ -z "$key" ]]; then
	die "PVM_RELEASE_KEY is not set: name the minisign secret key that signs the OTA bundle (make one with: cargo run -p pvm-ota --bin pvm-release -- keygen --out release), or set PVM_RELEASE_KEY=none for an image without a bundle"
fi
if [[ "$key" != none ]]; then
	[[ -f "$key" ]] || die "PVM_RELEASE_KEY: $key does not exist"
	pubkey=${PVM_RELEASE_PUBKEY:-${key%.key}.pub}
	[[ -f "$pubkey" ]] || die "the public key $pubkey (PVM_RELEASE_PUBKEY) does not exist; devices must trust the key that signs their updates"
	export PVM_RELEASE_PUBKEY=$pubkey PVM_RELEASE_KEY=$key
fi

workspace_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml")
export PVM_VERSION=${PVM_VERSION:-$workspace_version}
[[ -n "$PVM_VERSION" ]] || die "no version: set PVM_VERSION"
mkdir -p "$out"
echo "version $PVM_VERSION, working in $out"

# --- 3. Buildroot ----------------------------------------------------------------------------
buildroot=$out/buildroot-$BUILDROOT_RELEASE
if [[ ! -d "$buildroot/.git" ]]; then
	step "fetching Buildroot $BUILDROOT_RELEASE"
	rm -rf "$buildroot.partial"
	git clone --quiet --depth 1 --branch "$BUILDROOT_RELEASE" "$buildroot_git" "$buildroot.partial"
	mv "$buildroot.partial" "$buildroot"
fi
actual=$(git -C "$buildroot" rev-parse HEAD)
[[ "$actual" == "$BUILDROOT_COMMIT" ]] ||
	die "Buildroot $BUILDROOT_RELEASE in $buildroot is commit $actual, expected $BUILDROOT_COMMIT; remove the folder to fetch it again"
echo "Buildroot $BUILDROOT_RELEASE at $actual"

# --- 4. the PVM source tree ------------------------------------------------------------------
build=$out/build
src=$build/pvm-src
step "preparing the PVM source tree (commit $(git -C "$repo" rev-parse --short HEAD)) in $src"
if [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]]; then
	echo "note: uncommitted changes are NOT in the image; it is built from the last commit"
fi
rm -rf "$src"
mkdir -p "$src"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$src"
echo "$PVM_VERSION" >"$src/VERSION"

echo "building the web console (embedded into pvm-node)"
(cd "$repo/web" && npm ci --no-audit --no-fund --loglevel=error && npm run build >/dev/null)
rm -rf "$src/web/dist"
cp -a "$repo/web/dist" "$src/web/dist"

echo "vendoring the crates (cargo vendor --locked)"
mkdir -p "$src/.cargo"
(cd "$src" && cargo vendor --locked --quiet VENDOR >.cargo/config.toml)
# Offline from here on: Buildroot's cargo runs with --offline --locked against VENDOR/.
echo "vendored $(find "$src/VENDOR" -mindepth 1 -maxdepth 1 | wc -l) crates"

# --- 5. pvm-release for the host -------------------------------------------------------------
if [[ "$key" != none ]]; then
	step "building pvm-release for this machine"
	CARGO_TARGET_DIR=$out/host-target cargo build --quiet --release --locked \
		--manifest-path "$repo/Cargo.toml" -p pvm-ota --bin pvm-release
	export PVM_RELEASE_BIN=$out/host-target/release/pvm-release
fi

# --- 6. Buildroot ----------------------------------------------------------------------------
step "configuring Buildroot (pvm_rpi5_defconfig)"
make -C "$buildroot" O="$build" BR2_EXTERNAL="$repo/buildroot-config" pvm_rpi5_defconfig >/dev/null

log=$build/build.log
step "building (full log: $log); this takes an hour or more the first time"
jobs=${PVM_IMAGE_JOBS:-$(nproc)}
status=0
# Buildroot announces each package step with a ">>>" line; those are the progress shown here.
make -C "$buildroot" O="$build" BR2_JLEVEL="$jobs" 2>&1 | tee "$log" |
	grep --line-buffered -E '^>>> |^post-image: ' || status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
	tail -n 40 "$log" >&2
	die "Buildroot failed (status $status); the last lines are above, all of it in $log"
fi

step "done"
ls -l "$build/images/pvm-rpi5-$PVM_VERSION".*
