# shellcheck shell=bash
# Sourced by the packaging scripts.  apt_ensure PKG...: installs the missing Debian packages.
# `apt-get update` runs only when apt does not know one of them or the install fails (fresh
# machines have empty lists); a temporary /usr/sbin/policy-rc.d (only when the machine has
# none) keeps maintainer scripts from starting any service.
apt_ensure() {
	local p missing=() policy=/usr/sbin/policy-rc.d ours=0 rc=0
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
	done
	[ "${#missing[@]}" -gt 0 ] || return 0
	echo "[packaging] installing ${missing[*]}" >&2
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# l2sec packaging: no service starts while installing\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		ours=1
	fi
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600)
	if ! apt-cache show "${missing[@]}" >/dev/null 2>&1 ||
		! "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null; then
		"${apt[@]}" update >/dev/null &&
			"${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
	fi
	[ "$ours" = 0 ] || rm -f "$policy"
	return "$rc"
}
