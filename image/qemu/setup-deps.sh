#!/usr/bin/env bash
# What building and booting the QEMU test image needs (called by scripts/setup-deps.sh).
# Idempotent and quiet when everything is there. Needs root (or sudo) for apt.
#
#   qemu-system-x86   from bookworm-backports: these machines carry qemu-utils 10 from there,
#                     which conflicts with bookworm's own qemu-system 7.2
#   qemu-system-gui   is not needed: the VM runs with -display none
#   mmdebstrap        the Debian root filesystem
#   squashfs-tools dosfstools mtools e2fsprogs fdisk
#                     the partitions and the GPT, built without loop mounts
set -euo pipefail

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

packages=(mmdebstrap squashfs-tools dosfstools mtools e2fsprogs fdisk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_qemu=false
command -v qemu-system-x86_64 >/dev/null || need_qemu=true
if ((${#missing[@]} == 0)) && ! $need_qemu; then
  exit 0
fi

if $need_qemu && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Backports from the same mirror apt already uses here (never a host of our own choosing).
  uri="$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
  if [[ -z "$uri" ]]; then
    uri="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  [[ -n "$uri" ]] || { echo "setup: no Debian mirror configured for apt; cannot add bookworm-backports" >&2; exit 1; }
  echo "setup: adding bookworm-backports from $uri"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" |
    $sudo tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
fi

echo "setup: installing ${missing[*]} $($need_qemu && echo qemu-system-x86)"
$sudo apt-get update -qq
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if $need_qemu; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports qemu-system-x86 >/dev/null
fi
command -v qemu-system-x86_64 >/dev/null || { echo "setup: qemu-system-x86_64 is still missing" >&2; exit 1; }
