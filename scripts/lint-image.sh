#!/usr/bin/env bash
# The image lint, run by `make test`:
#   symbols  every BR2_ symbol the defconfig sets (or unsets) is a real Buildroot symbol of the
#            pinned release, or one our own Config.in defines; legacy (removed) ones fail too
#   shell    shellcheck on every shell script in the repository
#   units    `systemd-analyze verify` on every systemd unit in overlays/, inside a temporary
#            root that holds the host's systemd units, the overlay, and stand-ins for the
#            programs the image build installs (so a wrong path or a typo fails, but our own
#            binaries need not be installed on this machine)
#
#   scripts/lint-image.sh [--only symbols|shell|units]...
#
# Environment:
#   PVM_BR2_SYMBOLS_DIR  folder with br2-symbols.txt and br2-legacy-symbols.txt for the pinned
#                        Buildroot release (default: ../shared/buildroot next to the repo; made
#                        by image/buildroot/br2-symbols.sh). Absent: the symbols part is skipped
#                        and says so.
#   PVM_LINT_DEFCONFIG   the defconfig to check (default: buildroot-config/configs/pvm_rpi5_defconfig)
#   PVM_LINT_OVERLAYS    the overlay whose units are verified (default: overlays/)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
defconfig=${PVM_LINT_DEFCONFIG:-$repo/buildroot-config/configs/pvm_rpi5_defconfig}
symbols_dir=${PVM_BR2_SYMBOLS_DIR:-$repo/../shared/buildroot}
overlays=${PVM_LINT_OVERLAYS:-$repo/overlays}

parts=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	--only)
		[[ $# -ge 2 ]] || { echo "lint-image: --only needs symbols, shell or units" >&2; exit 2; }
		parts+=("$2")
		shift 2
		;;
	*)
		echo "usage: $0 [--only symbols|shell|units]..." >&2
		exit 2
		;;
	esac
done
[[ ${#parts[@]} -gt 0 ]] || parts=(symbols shell units)

failed=0
fail() {
	echo "lint-image: $*" >&2
	failed=1
}

lint_symbols() {
	local all=$symbols_dir/br2-symbols.txt legacy=$symbols_dir/br2-legacy-symbols.txt
	if [[ ! -f "$all" || ! -f "$legacy" ]]; then
		echo "lint-image: symbols: SKIPPED, no Buildroot symbol lists in $symbols_dir (set PVM_BR2_SYMBOLS_DIR; image/buildroot/br2-symbols.sh makes them)"
		return
	fi
	[[ -f "$defconfig" ]] || { fail "symbols: $defconfig does not exist"; return; }

	local ours
	ours=$(find "$repo/buildroot-config" -name 'Config.in*' -type f -exec \
		sed -nE 's/^[[:space:]]*(menu)?config[[:space:]]+(BR2_[A-Za-z0-9_]+).*/\2/p' {} + | sort -u)

	local line number=0 symbol checked=0
	while IFS= read -r line || [[ -n "$line" ]]; do
		number=$((number + 1))
		if [[ "$line" =~ ^(BR2_[A-Za-z0-9_]+)= ]]; then
			symbol=${BASH_REMATCH[1]}
		elif [[ "$line" =~ ^\#\ (BR2_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			symbol=${BASH_REMATCH[1]}
		elif [[ -z "${line//[[:space:]]/}" || "$line" =~ ^# ]]; then
			continue
		else
			fail "symbols: $defconfig:$number: not a Kconfig assignment: $line"
			continue
		fi
		checked=$((checked + 1))
		if grep -qxF "$symbol" <<<"$ours"; then
			continue
		elif grep -qxF "$symbol" "$legacy"; then
			fail "symbols: $defconfig:$number: $symbol is a LEGACY symbol (removed or renamed in this Buildroot release; see Config.in.legacy)"
		elif ! grep -qxF "$symbol" "$all"; then
			fail "symbols: $defconfig:$number: $symbol is not a Buildroot symbol (nor defined in buildroot-config/Config.in)"
		fi
	done <"$defconfig"
	echo "lint-image: symbols: $checked checked against $(head -n 1 "$all" | sed -E 's/^# (Buildroot [^:]*):.*/\1/')"
}

lint_shell() {
	command -v shellcheck >/dev/null || { fail "shell: shellcheck is not installed (scripts/setup-deps.sh installs it)"; return; }
	local scripts=() file
	# Tracked and new files; hidden folders (CI machinery) are not the project's scripts.
	while IFS= read -r file; do
		[[ "$file" == .* || ! -f "$repo/$file" ]] && continue
		if [[ "$file" == *.sh ]] || head -n 1 "$repo/$file" | grep -qE '^#!.*(/|env )(ba|da)?sh([[:space:]]|$)'; then
			scripts+=("$repo/$file")
		fi
	done < <(git -C "$repo" ls-files --cached --others --exclude-standard)
	# Warnings and errors fail; style notes (e.g. `A && B || true` written on purpose) do not.
	if ! shellcheck --severity=warning "${scripts[@]}"; then
		fail "shell: shellcheck found problems (above)"
	fi
	echo "lint-image: shell: ${#scripts[@]} scripts checked"
}

lint_units() {
	command -v systemd-analyze >/dev/null || { fail "units: systemd-analyze is not installed (Debian package systemd)"; return; }
	local host_units=/usr/lib/systemd/system
	[[ -d "$host_units" ]] || host_units=/lib/systemd/system
	local root
	root=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: the folder is this call's
	trap "rm -rf '$root'" RETURN

	mkdir -p "$root/usr/lib/systemd" "$root/etc"
	cp -a "$host_units" "$root/usr/lib/systemd/system"
	cp -a "$overlays/." "$root/"

	# Programs the image build installs (our cargo package, systemd, openssh, wpa_supplicant). Anything
	# else a unit runs must be in the overlay itself.
	local program
	for program in /usr/bin/pvm-node /usr/bin/pvm-kiosk /usr/bin/pvm-firstboot \
		/usr/bin/ssh-keygen /usr/sbin/sshd /usr/sbin/wpa_supplicant \
		/usr/bin/systemd-tmpfiles /usr/bin/journalctl; do
		mkdir -p "$root$(dirname "$program")"
		[[ -e "$root$program" ]] || printf '#!/bin/sh\nexit 0\n' >"$root$program"
		chmod +x "$root$program"
	done
	# The units our drop-ins extend, as their packages ship them, where this host has none,
	# so the drop-ins (overlays/etc/systemd/system/*.d) are parsed and checked too.
	[[ -e "$root/usr/lib/systemd/system/sshd.service" ]] ||
		printf '[Unit]\nDescription=OpenSSH server\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\n' \
			>"$root/usr/lib/systemd/system/sshd.service"
	[[ -e "$root/usr/lib/systemd/system/wpa_supplicant@.service" ]] ||
		printf '[Unit]\nDescription=WPA supplicant (%%I)\n[Service]\nExecStart=/usr/sbin/wpa_supplicant -c/etc/wpa_supplicant/wpa_supplicant-%%I.conf -i%%I\n[Install]\nWantedBy=multi-user.target\n' \
			>"$root/usr/lib/systemd/system/wpa_supplicant@.service"

	local units=() unit
	while IFS= read -r unit; do
		units+=("$(basename "$unit")")
	done < <(find "$overlays" -path '*/systemd/system/*' -type f \
		\( -name '*.service' -o -name '*.mount' -o -name '*.socket' -o -name '*.timer' -o -name '*.target' -o -name '*.path' \) | sort)
	local dropin
	while IFS= read -r dropin; do
		unit=$(basename "$(dirname "$dropin")" .d)
		[[ "$unit" == *@.service ]] && unit=${unit%@.service}@wlan0.service
		units+=("$unit")
	done < <(find "$overlays" -path '*/systemd/system/*.d/*.conf' -type f | sort)

	# verify exits 0 on some mistakes (an unknown key, an unparsable value) and only prints
	# them, so any output at all is a failure.
	local output status=0
	output=$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1) || status=$?
	if [[ $status -ne 0 || -n "$output" ]]; then
		printf '%s\n' "$output" >&2
		fail "units: systemd-analyze verify failed (status $status)"
	fi
	echo "lint-image: units: ${#units[@]} checked (${units[*]})"
}

for part in "${parts[@]}"; do
	case "$part" in
	symbols) lint_symbols ;;
	shell) lint_shell ;;
	units) lint_units ;;
	*) fail "unknown part $part (symbols, shell or units)" ;;
	esac
done

if [[ $failed -ne 0 ]]; then
	echo "lint-image: FAILED" >&2
	exit 1
fi
echo "lint-image: ok"
