#!/usr/bin/env bash
# Lists the BR2_ symbols a Buildroot release defines, for scripts/lint-image.sh, into
# OUT/br2-symbols.txt (every symbol, legacy ones included) and OUT/br2-legacy-symbols.txt
# (those defined only in Config.in.legacy: removed or renamed options).
#
#   image/buildroot/br2-symbols.sh BUILDROOT_DIR OUT_DIR
#
# A symbol is "defined" where a Kconfig file says `config BR2_X` or `menuconfig BR2_X`; the
# files read are every Config.in* in the tree plus linux/Config.ext.in and
# package/php/Config.ext (Kconfig files with other names).
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 BUILDROOT_DIR OUT_DIR" >&2
	exit 2
fi
br=$1
out=$2
[[ -f "$br/Config.in.legacy" ]] || {
	echo "$br does not look like a Buildroot tree (no Config.in.legacy)" >&2
	exit 1
}
mkdir -p "$out"

version=$(sed -n 's/^export BR2_VERSION := //p' "$br/Makefile")

symbols_in() {
	grep -hE '^[[:space:]]*(menu)?config[[:space:]]+BR2_' "$@" |
		sed -E 's/^[[:space:]]*(menu)?config[[:space:]]+(BR2_[A-Za-z0-9_]+).*/\2/' |
		LC_ALL=C sort -u
}

mapfile -t files < <(cd "$br" && find . -name 'Config.in*' -type f | LC_ALL=C sort)
extra=()
for f in linux/Config.ext.in package/php/Config.ext; do
	[[ -f "$br/$f" ]] && extra+=("$f")
done

non_legacy=()
for f in "${files[@]}" "${extra[@]}"; do
	[[ "$f" == ./Config.in.legacy ]] || non_legacy+=("$f")
done
legacy_only=$(comm -23 <(cd "$br" && symbols_in Config.in.legacy) \
	<(cd "$br" && symbols_in "${non_legacy[@]}"))

{
	echo "# Buildroot $version: BR2_ symbols defined by '(menu)config' in all Config.in* files plus linux/Config.ext.in and package/php/Config.ext; includes Config.in.legacy symbols (also listed in br2-legacy-symbols.txt)"
	(cd "$br" && symbols_in "${files[@]}" "${extra[@]}")
} >"$out/br2-symbols.txt"
{
	echo "# Buildroot $version: BR2_ symbols defined only in Config.in.legacy (removed/renamed options; setting one selects BR2_LEGACY and fails the build)"
	printf '%s\n' "$legacy_only" | sed '/^$/d'
} >"$out/br2-legacy-symbols.txt"
echo "wrote $(($(wc -l <"$out/br2-symbols.txt") - 1)) symbols ($(($(wc -l <"$out/br2-legacy-symbols.txt") - 1)) legacy) for Buildroot $version to $out"
