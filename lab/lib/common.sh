# shellcheck shell=bash
# Helpers shared by every server of the l2sec lab.  Sourced by lab/l2sec-lab.
#
# Conventions
#   * Everything the lab creates lives in network namespaces named l2s-* with addresses from
#     198.18.0.0/15; a namespace only has its link routes (no default route, no way out).
#   * State of server S lives in $LAB_STATE/S:
#       pids         "PID COMM ROLE" per daemon started by `up` (file order = start order)
#       pids.stopped the same lines after `down`, for the leak check
#       netns        namespaces `up` created (down deletes exactly these)
#       etcnetns     /etc/netns/<ns> directories `up` created (down removes exactly these)
#       *.log        daemon logs (kept after down; wiped by the next up)
#   * Daemons start in their own session (setsid) inside their namespace and never fork into
#     the background themselves, so the PID that bash starts is the daemon after its exec chain.
#   * Nothing is ever killed by name: only recorded PIDs whose /proc/PID/comm still matches.

LAB_STATE=${LAB_STATE:-/tmp/l2sec-lab}
LAB_APT_LOG=${LAB_APT_LOG:-$LAB_STATE/apt.log}

say() { printf '[lab] %s\n' "$*" >&2; }
warn() { printf '[lab] WARNING: %s\n' "$*" >&2; }
die() {
	printf '[lab] ERROR: %s\n' "$*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, bind mounts)"
}

# ---------------------------------------------------------------------------- packages

pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# pkgs_ensure PKG...: apt-get install the packages that are missing.  apt-get update runs at
# most once per lab run, and only when apt does not know a package or the install fails
# (fresh machines have empty lists).  A temporary /usr/sbin/policy-rc.d (only when the
# machine has none) stops the packages' maintainer scripts from starting system services.
pkgs_ensure() {
	local p missing=() known=1 rc=0 policy=/usr/sbin/policy-rc.d ours=0
	for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
	[ "${#missing[@]}" -gt 0 ] || return 0
	mkdir -p "$(dirname "$LAB_APT_LOG")"
	say "installing ${missing[*]} (log: $LAB_APT_LOG)"
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# l2sec lab: no service starts while installing\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		ours=1
	fi
	for p in "${missing[@]}"; do apt-cache show "$p" >/dev/null 2>&1 || known=0; done
	[ "$known" = 1 ] || _apt_update
	if ! _apt_install "${missing[@]}"; then
		if [ -z "${LAB_APT_UPDATED:-}" ]; then
			_apt_update && _apt_install "${missing[@]}" || rc=1
		else
			rc=1
		fi
	fi
	if [ "$ours" = 1 ] && grep -q 'l2sec lab' "$policy" 2>/dev/null; then rm -f "$policy"; fi
	if [ "$rc" != 0 ]; then
		tail -n 8 "$LAB_APT_LOG" >&2
		die "could not install ${missing[*]}"
	fi
}
_apt_update() {
	[ -z "${LAB_APT_UPDATED:-}" ] || return 0
	export LAB_APT_UPDATED=1
	say "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >>"$LAB_APT_LOG" 2>&1
}
_apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=600 "$@" >>"$LAB_APT_LOG" 2>&1
}

# apt_mirror: the machine's Debian mirror (the first non-security one apt uses).
apt_mirror() {
	local m=""
	m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security | head -n 1) || m=""
	if [ -z "$m" ]; then
		m=$(awk 'tolower($1) == "uris:" { print $2 }' /etc/apt/sources.list.d/*.sources 2>/dev/null |
			grep -v security | head -n 1) || m=""
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

# ---------------------------------------------------------------------------- namespaces

ns_exists() { [ -e "/run/netns/$1" ]; }

# ns_create STATE NS: a fresh namespace with lo up and IPv6 off, recorded in STATE/netns.
ns_create() {
	local st=$1 ns=$2
	ns_exists "$ns" && die "netns $ns already exists but this lab did not record it; delete it (ip netns delete $ns) if it is a leftover"
	ip netns add "$ns"
	echo "$ns" >>"$st/netns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}

# veth_link NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth pair straight into two namespaces; ADDR
# is "a.b.c.d/len" or "-" for no address.
veth_link() {
	local ns_a=$1 if_a=$2 addr_a=$3 ns_b=$4 if_b=$5 addr_b=$6
	ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
	[ "$addr_a" = - ] || ip -n "$ns_a" addr add "$addr_a" dev "$if_a"
	[ "$addr_b" = - ] || ip -n "$ns_b" addr add "$addr_b" dev "$if_b"
	ip -n "$ns_a" link set "$if_a" up
	ip -n "$ns_b" link set "$if_b" up
}

# nic_like NS IF: make a veth end receive like a physical NIC: through NAPI with GRO, in the
# kernel's own NAPI thread. By default a veth delivers each packet inside the sender's system
# call, so the receiving side's work (the server's, for our uploads) would be billed to the
# client and its figures. UDP GRO forwarding is what lets veth take the NAPI path for UDP.
# Best effort: an older kernel keeps the default.
nic_like() {
	local ns=$1 dev=$2
	ip netns exec "$ns" ethtool -K "$dev" gro on rx-udp-gro-forwarding on >/dev/null 2>&1 ||
		warn "ethtool -K $dev gro on rx-udp-gro-forwarding on failed: figures include the peer's receive work"
	ip netns exec "$ns" sh -c "echo 1 >/sys/class/net/$dev/threaded" 2>/dev/null ||
		warn "no threaded NAPI on $dev: figures include the peer's receive work"
}

# no_route_out NS...: fail if a namespace has a default route.
no_route_out() {
	local ns
	for ns in "$@"; do
		[ -z "$(ip -n "$ns" route show default)" ] || die "netns $ns has a default route"
	done
}

# client_resolv STATE NS NAMESERVER: /etc/netns/NS/resolv.conf with a fixed content, so tests
# can check that a client restores the DNS configuration it changed.
client_resolv() {
	local st=$1 ns=$2 dns=$3 dir=/etc/netns/$2
	if [ ! -d "$dir" ]; then
		mkdir -p "$dir"
		echo "$dir" >>"$st/etcnetns"
	fi
	printf '# l2sec lab: fixed resolver of netns %s (tests check it is restored)\nnameserver %s\n' \
		"$ns" "$dns" >"$dir/resolv.conf"
}

# ---------------------------------------------------------------------------- daemons

pid_alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
pid_is() { pid_alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }

# daemon_start STATE NS COMM ROLE LOG CMD...: run CMD in NS in a new session; wait until the
# exec chain (setsid, ip netns exec, sh -c ... exec) ends in COMM and record "PID COMM ROLE".
# Sets DAEMON_PID.  CMD must stay in the foreground.
daemon_start() {
	local st=$1 ns=$2 comm=$3 role=$4 log=$5 pid i
	shift 5
	setsid ip netns exec "$ns" "$@" >>"$log" 2>&1 </dev/null &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && break
		pid_alive "$pid" || {
			tail -n 15 "$log" >&2
			die "$comm exited at once; see $log"
		}
		sleep 0.025
	done
	pid_is "$pid" "$comm" || die "$comm did not start (pid $pid is $(cat "/proc/$pid/comm" 2>/dev/null)); see $log"
	echo "$pid $comm $role" >>"$st/pids"
	# shellcheck disable=SC2034 # read by the callers
	DAEMON_PID=$pid
}

# daemons_stop STATE [--kill]: stop the recorded daemons, newest first, with SIGTERM (or
# SIGKILL at once with --kill), SIGKILL after 15 s; then keep the list as pids.stopped.
daemons_stop() {
	local st=$1 hard=${2:-} pid comm role i lines=()
	[ -f "$st/pids" ] || return 0
	mapfile -t lines <"$st/pids"
	if [ "$hard" = --kill ]; then
		# file order: a watchdog (recorded before its worker) dies first and restarts nothing
		for ((i = 0; i < ${#lines[@]}; i++)); do
			read -r pid comm role <<<"${lines[i]}"
			if pid_is "$pid" "$comm" && kill -KILL "$pid" 2>/dev/null; then say "killed $role $comm ($pid)"; fi
		done
	else
		for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
			read -r pid comm role <<<"${lines[i]}"
			pid_is "$pid" "$comm" || continue
			kill -TERM "$pid" 2>/dev/null || true
			if _wait_gone "$pid" 150; then say "stopped $role $comm ($pid)"; fi
		done
	fi
	# whatever is still alive: SIGKILL in file order
	for ((i = 0; i < ${#lines[@]}; i++)); do
		read -r pid comm role <<<"${lines[i]}"
		if pid_is "$pid" "$comm"; then
			warn "$role $comm ($pid) still alive: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			_wait_gone "$pid" 50 || true
		fi
	done
	mv -f "$st/pids" "$st/pids.stopped"
}
_wait_gone() { # PID TENTHS
	local i
	for ((i = 0; i < $2; i++)); do
		pid_alive "$1" || return 0
		sleep 0.1
	done
	! pid_alive "$1"
}

# netns_remove STATE: delete the namespaces and /etc/netns dirs `up` recorded.
netns_remove() {
	local st=$1 ns left dir
	if [ -f "$st/netns" ]; then
		while read -r ns; do
			if [ -z "$ns" ] || ! ns_exists "$ns"; then continue; fi
			left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || left=
			[ -z "$left" ] || warn "processes the lab did not start are still in netns $ns: $left(left alone)"
			ip netns delete "$ns"
		done <"$st/netns"
		rm -f "$st/netns"
	fi
	if [ -f "$st/etcnetns" ]; then
		while read -r dir; do
			case "$dir" in /etc/netns/l2s-*) rm -rf -- "$dir" ;; esac
		done <"$st/etcnetns"
		rm -f "$st/etcnetns"
		rmdir /etc/netns 2>/dev/null || true
	fi
}

# wait_udp NS ADDR:PORT TENTHS: wait until something listens on that UDP socket in NS.
wait_udp() {
	local ns=$1 sock=$2 i
	for ((i = 0; i < $3; i++)); do
		ip netns exec "$ns" ss -Hlun 2>/dev/null | awk '{print $4}' | grep -x "$sock" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# state_fresh STATE: an empty state dir (logs of the previous run are dropped).
state_fresh() {
	local st=$1
	case "$st" in "$LAB_STATE"/*) ;; *) die "refusing to wipe $st" ;; esac
	rm -rf -- "$st"
	mkdir -p "$st"
}
