#!/bin/bash
# shellcheck shell=bash
# resolved.sh: a private systemd-resolved and Debian's resolvconf for netcfg's DNS tests,
# without installing either package (systemd-resolved's postinst would take over the host's
# /etc/resolv.conf).  Their .debs are fetched with `apt-get download` and unpacked with
# `dpkg-deb -x` into a cache; they only ever run inside a private network + mount namespace
# (the netns tests of crates/netcfg/src/nstest.rs re-execute themselves under
# `unshare --net --mount`), where /run is a fresh tmpfs and /etc/passwd, /etc and /usr are
# private copies or overlays.  Nothing on the host changes besides the cache.
#
#   resolved.sh prepare              download + unpack into $RSV_CACHE (needs apt; run once)
#   resolved.sh bus STATE            in a private netns+mntns: tmpfs /run, a private system bus
#   resolved.sh resolved STATE [--other-netns]
#                                    ... and systemd-resolved on it (--other-netns: in a nested
#                                    network namespace whose ifindexes 2..9 exist)
#   resolved.sh resolvconf STATE     in a private netns+mntns: resolvconf installed through
#                                    overlays, /etc/resolv.conf -> /run/resolvconf/resolv.conf
#   resolved.sh resolvectl ARGS...   the unpacked resolvectl (an independent observer)
#   resolved.sh stop STATE           stop what `bus`/`resolved` started (by recorded PID)
#   resolved.sh check                fail (and stop them) if daemons of any run are still alive
#   resolved.sh shell [CMD...]       a private namespace with bus + resolved, for trying by hand
#
# Daemons are recorded as "PID COMM ROLE" in STATE/pids and $RSV_HISTORY; they are only ever
# signalled by PID, after checking /proc/PID/comm.  Environment: RSV_CACHE (default
# /var/cache/l2sec-lab/resolved), LAB_STATE (default /tmp/l2sec-lab), RSV_EXTRACT_DBUS=1 to use
# an unpacked dbus-daemon even when one is installed.
set -euo pipefail

RSV_CACHE=${RSV_CACHE:-/var/cache/l2sec-lab/resolved}
RSV_HISTORY=${RSV_HISTORY:-${LAB_STATE:-/tmp/l2sec-lab}/resolved/pids.history}
RSV_ROOT=$RSV_CACHE/root
# resolvconf apart: systemd-resolved ships a /sbin/resolvconf of its own
RSV_RC=$RSV_ROOT/.resolvconf
RSV_SELF=$(readlink -f "${BASH_SOURCE[0]}")

_rsv_say() { printf '[resolved.sh] %s\n' "$*" >&2; }
_rsv_die() {
	printf '[resolved.sh] ERROR: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------- prepare

# _rsv_download DIR PKG[=VERSION]...: apt-get download into DIR (apt-get update once if needed).
_rsv_download() {
	local dir=$1
	shift
	# apt drops to _apt for downloads; a directory it can write avoids its warning
	if id _apt >/dev/null 2>&1; then chown _apt "$dir"; fi
	if (cd "$dir" && apt-get -q download "$@") >>"$RSV_CACHE/apt.log" 2>&1; then return 0; fi
	if [ -z "${_RSV_UPDATED:-}" ]; then
		_RSV_UPDATED=1
		_rsv_say "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >>"$RSV_CACHE/apt.log" 2>&1 || true
		(cd "$dir" && apt-get -q download "$@") >>"$RSV_CACHE/apt.log" 2>&1 && return 0
	fi
	return 1
}

# _rsv_libdir: the directory of the unpacked libsystemd-shared.
_rsv_libdir() {
	local so
	so=$(find "$RSV_ROOT/usr/lib" -name 'libsystemd-shared-*.so' -print -quit 2>/dev/null)
	[ -n "$so" ] || _rsv_die "no unpacked libsystemd-shared in $RSV_ROOT: run '$RSV_SELF prepare'"
	dirname "$so"
}

# _rsv_ldpath: LD_LIBRARY_PATH for the unpacked binaries (libsystemd-shared, and libdbus when
# dbus-daemon was unpacked too).
_rsv_ldpath() {
	local libdir triplet
	libdir=$(_rsv_libdir)
	triplet=$(basename "$(dirname "$libdir")")
	echo "$libdir:$RSV_ROOT/usr/lib/$triplet:$RSV_ROOT/lib/$triplet"
}

# _rsv_resolved_bin: the unpacked systemd-resolved (/lib/systemd before trixie, /usr/lib/systemd after).
_rsv_resolved_bin() {
	local f
	for f in "$RSV_ROOT/lib/systemd/systemd-resolved" "$RSV_ROOT/usr/lib/systemd/systemd-resolved"; do
		if [ -x "$f" ]; then
			echo "$f"
			return 0
		fi
	done
	_rsv_die "no unpacked systemd-resolved in $RSV_ROOT: run '$RSV_SELF prepare'"
}

rsv_prepare() {
	local ver debs new pkgs=() missing="" deb dep RSV_LD
	[ "$(id -u)" = 0 ] || _rsv_die "prepare must run as root (apt-get)"
	for dep in apt-get dpkg-deb; do command -v "$dep" >/dev/null || _rsv_die "$dep not found (Debian/Ubuntu only)"; done
	if [ -f "$RSV_ROOT/.l2sec-ready" ] && { [ -x "$RSV_ROOT/usr/bin/dbus-daemon" ] ||
		{ command -v dbus-daemon >/dev/null && [ "${RSV_EXTRACT_DBUS:-0}" != 1 ]; }; }; then
		_rsv_say "ready: $(cat "$RSV_ROOT/.l2sec-ready")"
		return 0
	fi
	mkdir -p "$RSV_CACHE"
	debs=$(mktemp -d "$RSV_CACHE/debs.XXXXXX")
	# resolved and the private library it links, of the systemd version the host has if the
	# archive still has it (same library set), else the newest
	ver=$(dpkg-query -W -f='${Version}' libsystemd-shared 2>/dev/null || true)
	if [ -z "$ver" ] || ! _rsv_download "$debs" "systemd-resolved=$ver" "libsystemd-shared=$ver"; then
		rm -f "$debs"/*.deb
		_rsv_download "$debs" systemd-resolved libsystemd-shared ||
			_rsv_die "apt-get download systemd-resolved libsystemd-shared failed (see $RSV_CACHE/apt.log)"
	fi
	_rsv_download "$debs" resolvconf || _rsv_die "apt-get download resolvconf failed (see $RSV_CACHE/apt.log)"
	# A system bus daemon: the installed one, else unpacked too (installing `dbus` would
	# enable and, without a policy-rc.d, start the host's system bus).
	if ! command -v dbus-daemon >/dev/null || [ "${RSV_EXTRACT_DBUS:-0}" = 1 ]; then
		_rsv_download "$debs" dbus-daemon libdbus-1-3 ||
			_rsv_die "apt-get download dbus-daemon libdbus-1-3 failed (see $RSV_CACHE/apt.log)"
	fi
	new=$(mktemp -d "$RSV_CACHE/root.XXXXXX")
	for deb in "$debs"/*.deb; do
		case "$deb" in
		*/resolvconf_*) dpkg-deb -x "$deb" "$new/.resolvconf" ;;
		*) dpkg-deb -x "$deb" "$new" ;;
		esac
	done
	# the libraries those packages need (plain libraries, no services): install what is missing
	for deb in "$debs"/*.deb; do
		for dep in $(dpkg-deb -f "$deb" Depends | sed 's/[,|]/\n/g' | sed 's/(.*//; s/:any//; s/ //g'); do
			case "$dep" in lib*) dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'ok installed' || pkgs+=("$dep") ;; esac
		done
	done
	for dep in "${pkgs[@]}"; do
		case "$dep" in libsystemd-shared | libdbus-1-3) continue ;; esac
		missing+=" $dep"
	done
	if [ -n "$missing" ]; then
		_rsv_say "installing libraries:$missing"
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >>"$RSV_CACHE/apt.log" 2>&1 ||
			_rsv_die "apt-get install$missing failed (see $RSV_CACHE/apt.log)"
	fi
	{ find "$debs" -name '*.deb' -printf '%f '; echo; } >"$new/.l2sec-ready"
	rm -rf -- "$debs" "$RSV_ROOT"
	mv "$new" "$RSV_ROOT"
	chmod 0755 "$RSV_ROOT"
	# every unpacked binary finds its libraries
	RSV_LD=$(_rsv_ldpath)
	for deb in "$(_rsv_resolved_bin)" "$RSV_ROOT/usr/bin/resolvectl" "$RSV_ROOT/usr/bin/dbus-daemon"; do
		[ -e "$deb" ] || continue
		missing=$(LD_LIBRARY_PATH=$RSV_LD ldd "$deb" | awk '/not found/ {print $1}' | tr '\n' ' ')
		[ -z "$missing" ] || _rsv_die "$deb: libraries not found: $missing"
	done
	_rsv_say "ready in $RSV_ROOT: $(cat "$RSV_ROOT/.l2sec-ready")"
}

# ---------------------------------------------------------------------------- namespaces

# _rsv_private_ns: refuse to run anywhere but in a private network and mount namespace whose
# mounts do not propagate back to the host.
_rsv_private_ns() {
	[ "$(id -u)" = 0 ] || _rsv_die "must run as root"
	if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ] ||
		[ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
		_rsv_die "refusing to touch the host: run inside a private network + mount namespace (unshare --net --mount --propagation private)"
	fi
	case "$(findmnt -n -o PROPAGATION /)" in
	*shared*) _rsv_die "refusing: / is a shared mount here, mounts would reach the host (use --propagation private)" ;;
	esac
}

# _rsv_private_run: a fresh tmpfs on /run (once per namespace).
_rsv_private_run() {
	local st=$1
	if [ ! -e "$st/run-mounted" ] || [ "$(cat "$st/run-mounted")" != "$(readlink /proc/self/ns/mnt)" ]; then
		mount -t tmpfs -o mode=0755,size=16m l2sec-rsv-run /run
		readlink /proc/self/ns/mnt >"$st/run-mounted"
	fi
}

# _rsv_start STATE COMM ROLE LOG CMD...: start CMD in its own session, wait until its exec chain
# ends in COMM, record "PID COMM ROLE".
_rsv_start() {
	local st=$1 comm=$2 role=$3 log=$4 pid i
	shift 4
	setsid "$@" >>"$log" 2>&1 </dev/null &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && break
		if ! _rsv_alive "$pid"; then
			tail -n 20 "$log" >&2
			_rsv_die "$role exited at once; see $log"
		fi
		sleep 0.025
	done
	_rsv_is "$pid" "$comm" || _rsv_die "$role did not start; see $log"
	echo "$pid $comm $role" >>"$st/pids"
	mkdir -p "$(dirname "$RSV_HISTORY")"
	echo "$pid $comm $role" >>"$RSV_HISTORY"
}
_rsv_alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
_rsv_is() { _rsv_alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }

# _rsv_wait TENTHS WHAT CMD...: wait until CMD succeeds.
_rsv_wait() {
	local n=$1 what=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	_rsv_die "timed out waiting for $what"
}

# ---------------------------------------------------------------------------- bus, resolved

rsv_bus() {
	local st=$1 daemon uid
	_rsv_private_ns
	mkdir -p "$st"
	st=$(readlink -f "$st")
	_rsv_private_run "$st"
	mkdir -p /run/dbus /run/systemd
	# resolved started as root drops to the user systemd-resolve; the host need not have it
	if ! getent passwd systemd-resolve >/dev/null; then
		for ((uid = 999; uid > 900; uid--)); do
			getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null || break
		done
		cp /etc/passwd "$st/passwd"
		cp /etc/group "$st/group"
		echo "systemd-resolve:x:$uid:$uid:l2sec lab resolver:/:/usr/sbin/nologin" >>"$st/passwd"
		echo "systemd-resolve:x:$uid:" >>"$st/group"
		mount --bind "$st/passwd" /etc/passwd
		mount --bind "$st/group" /etc/group
	fi
	cat >"$st/bus.conf" <<-'EOF'
		<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
		 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
		<!-- l2sec lab: the private system bus of one test namespace -->
		<busconfig>
		  <type>system</type>
		  <listen>unix:path=/run/dbus/system_bus_socket</listen>
		  <auth>EXTERNAL</auth>
		  <policy context="default">
		    <allow user="*"/>
		    <deny own="*"/>
		    <allow send_destination="org.freedesktop.DBus"/>
		    <allow send_destination="org.freedesktop.resolve1"/>
		    <allow send_type="signal"/>
		    <allow send_requested_reply="true" send_type="method_return"/>
		    <allow send_requested_reply="true" send_type="error"/>
		    <allow receive_type="method_call"/>
		    <allow receive_type="method_return"/>
		    <allow receive_type="error"/>
		    <allow receive_type="signal"/>
		  </policy>
		  <policy user="root">
		    <allow own="org.freedesktop.resolve1"/>
		  </policy>
		  <policy user="systemd-resolve">
		    <allow own="org.freedesktop.resolve1"/>
		  </policy>
		</busconfig>
	EOF
	if [ -x "$RSV_ROOT/usr/bin/dbus-daemon" ]; then
		daemon=(env "LD_LIBRARY_PATH=$(_rsv_ldpath)" "$RSV_ROOT/usr/bin/dbus-daemon")
	else
		command -v dbus-daemon >/dev/null || _rsv_die "no dbus-daemon: run '$RSV_SELF prepare'"
		daemon=(dbus-daemon)
	fi
	_rsv_start "$st" dbus-daemon bus "$st/bus.log" \
		"${daemon[@]}" --config-file="$st/bus.conf" --nofork --nopidfile --nosyslog
	_rsv_wait 100 "the private system bus" test -S /run/dbus/system_bus_socket
}

# _rsv_resolvectl ARGS...: the unpacked resolvectl.
_rsv_resolvectl() {
	[ -x "$RSV_ROOT/usr/bin/resolvectl" ] || _rsv_die "no unpacked systemd-resolved: run '$RSV_SELF prepare'"
	LD_LIBRARY_PATH=$(_rsv_ldpath) "$RSV_ROOT/usr/bin/resolvectl" --no-pager "$@"
}

rsv_resolved() {
	local st=$1 where=${2:-} cmd
	_rsv_private_ns
	st=$(readlink -f "$st")
	[ -S /run/dbus/system_bus_socket ] || _rsv_die "no private bus: run '$RSV_SELF bus $st' first"
	# no systemd as PID 1: no NOTIFY_SOCKET, logs to the console (our log file)
	cmd=(env -u NOTIFY_SOCKET "LD_LIBRARY_PATH=$(_rsv_ldpath)" SYSTEMD_LOG_TARGET=console
		SYSTEMD_LOG_LEVEL="${RSV_LOG_LEVEL:-info}" "$(_rsv_resolved_bin)")
	case "$where" in
	"") _rsv_start "$st" systemd-resolve resolved "$st/resolved.log" "${cmd[@]}" ;;
	--other-netns)
		# a nested namespace where the ifindexes of the test's devices exist too (lo=1, 2..9)
		# shellcheck disable=SC2016 # expanded by the inner bash
		_rsv_start "$st" systemd-resolve resolved "$st/resolved.log" unshare --net -- \
			bash -c 'ip link set lo up; for i in 1 2 3 4; do ip link add rsvx$i type veth peer name rsvy$i; done; exec "$@"' \
			rsv "${cmd[@]}"
		;;
	*) _rsv_die "unknown option '$where' (--other-netns)" ;;
	esac
	_rsv_wait 100 "systemd-resolved on the bus" _rsv_resolvectl status
}

rsv_stop() {
	local st=$1 pid comm role i n lines=()
	[ -f "$st/pids" ] || return 0
	mapfile -t lines <"$st/pids"
	for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
		read -r pid comm role <<<"${lines[i]}"
		_rsv_is "$pid" "$comm" || continue
		kill -TERM "$pid" 2>/dev/null || true
		for ((n = 0; n < 50; n++)); do
			_rsv_alive "$pid" || break
			sleep 0.1
		done
		if _rsv_is "$pid" "$comm"; then
			_rsv_say "$role $comm ($pid) ignored SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	mv -f "$st/pids" "$st/pids.stopped"
}

rsv_check() {
	local pid comm role bad=0
	[ -f "$RSV_HISTORY" ] || return 0
	while read -r pid comm role; do
		if _rsv_is "$pid" "$comm"; then
			_rsv_say "WARNING: $role $comm ($pid) of a DNS test is still running: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			bad=1
		fi
	done <"$RSV_HISTORY"
	[ "$bad" = 1 ] || rm -f "$RSV_HISTORY"
	return "$bad"
}

# ---------------------------------------------------------------------------- resolvconf

# rsv_resolvconf STATE: Debian's resolvconf as if installed: its /etc/resolvconf and
# /usr/{sbin,lib}/resolvconf through overlays (their layers on this namespace's /run),
# /etc/resolv.conf a symlink to /run/resolvconf/resolv.conf, one record for the uplink
# (up0.dhclient: 198.18.99.53, lab.example) and updates enabled.
rsv_resolvconf() {
	local st=$1 ov extra
	_rsv_private_ns
	mkdir -p "$st"
	st=$(readlink -f "$st")
	[ -x "$RSV_RC/sbin/resolvconf" ] || _rsv_die "no unpacked resolvconf: run '$RSV_SELF prepare'"
	if [ "$(readlink -f /sbin)" != /usr/sbin ] || [ "$(readlink -f /lib)" != /usr/lib ]; then
		_rsv_die "needs a merged /usr (/sbin -> usr/sbin, /lib -> usr/lib)"
	fi
	command -v run-parts flock >/dev/null || _rsv_die "run-parts and flock are needed (debianutils, util-linux)"
	_rsv_private_run "$st"
	# layers on the private /run: gone with the namespace, nothing left under STATE
	ov=/run/l2sec-rsv-overlay
	mkdir -p "$ov/etc-lower" "$ov/etc-upper" "$ov/etc-work" "$ov/usr/sbin" "$ov/usr/lib"
	extra=$ov/usr
	cp -a "$RSV_RC/etc/resolvconf" "$ov/etc-lower/"
	cp -a "$RSV_RC/sbin/resolvconf" "$extra/sbin/"
	cp -a "$RSV_RC/lib/resolvconf" "$extra/lib/"
	# a bind mount on /etc/resolv.conf (as the tests make) would hide the symlink and make it
	# a mount point; this namespace's own mounts only
	while findmnt -n /etc/resolv.conf >/dev/null 2>&1; do umount /etc/resolv.conf; done
	mount -t overlay l2sec-rsv-etc -o "lowerdir=$ov/etc-lower:/etc,upperdir=$ov/etc-upper,workdir=$ov/etc-work" /etc
	mount -t overlay l2sec-rsv-usr -o "lowerdir=$extra:/usr" /usr
	rm -f /etc/resolv.conf
	ln -s /run/resolvconf/resolv.conf /etc/resolv.conf
	mkdir -p /run/resolvconf/interface
	printf 'nameserver 198.18.99.53\nsearch lab.example\n' | /usr/sbin/resolvconf -a up0.dhclient
	/usr/sbin/resolvconf --enable-updates
	/usr/sbin/resolvconf -u
	grep -q '^nameserver 198.18.99.53$' /etc/resolv.conf || _rsv_die "resolvconf did not write /run/resolvconf/resolv.conf"
}

# ---------------------------------------------------------------------------- by hand

rsv_shell() {
	local st
	st=$(mktemp -d /tmp/l2sec-rsv-shell.XXXXXX)
	exec unshare --net --mount --propagation private -- "$BASH" "$RSV_SELF" _shell "$st" "$@"
}
_rsv_shell_inner() {
	local st=$1 rc=0
	shift
	ip link set lo up
	rsv_bus "$st"
	rsv_resolved "$st"
	_rsv_say "private system bus + systemd-resolved up (state $st); resolvectl: $RSV_SELF resolvectl"
	if [ $# -gt 0 ]; then "$@" || rc=$?; else "${SHELL:-/bin/bash}" || rc=$?; fi
	rsv_stop "$st"
	rm -rf -- "$st"
	return "$rc"
}

rsv_main() {
	local sub=${1:-}
	[ $# -eq 0 ] || shift
	case "$sub" in
	prepare) rsv_prepare ;;
	bus) rsv_bus "${1:?STATE}" ;;
	resolved) rsv_resolved "${1:?STATE}" "${2:-}" ;;
	resolvconf) rsv_resolvconf "${1:?STATE}" ;;
	resolvectl) _rsv_resolvectl "$@" ;;
	stop) rsv_stop "${1:?STATE}" ;;
	check) rsv_check ;;
	shell) rsv_shell "$@" ;;
	_shell) _rsv_shell_inner "$@" ;;
	*)
		sed -n '2,26p' "$RSV_SELF" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then rsv_main "$@"; fi
