#!/bin/bash
# systemd.sh: live test of the packaged unit l2sec@.service under a real systemd.
#
#   lab/lib/systemd.sh [run]     all checks, one PASS/FAIL line each; exit 0 when all pass
#   lab/lib/systemd.sh prepare   only build (or refresh) the cached Debian 12 root file system
#   lab/lib/systemd.sh clean     stop a container a previous run left behind, remove its copy
#
# A Debian 12 root (debootstrap minbase + systemd-sysv, dbus, iproute2, procps, iputils-ping,
# nftables; cached in $SD_CACHE/root) is copied to $SD_CACHE/run, booted with systemd-nspawn
# (-b: the container's PID 1 is systemd 252) inside the SoftEther lab's client namespace
# l2s-se-cli, and the l2sec .deb is installed into the running system with dpkg -i. Then,
# inside it: l2sec@lab (secrets from LoadCredential=, the profile says cred:psk and
# cred:password) is started and must become active only once the tunnel is up (Type=notify);
# ping through the tunnel; `l2sec status` on /run/l2sec/lab.sock; nft (run by l2sec) installs
# its MSS table; the hardening really applies to the main process; SIGKILL of the main PID:
# ExecStopPost=l2sec cleanup restores the host and Restart=on-failure brings the tunnel back;
# a server restart (lab/l2sec-lab restart softether): l2sec reconnects, the unit stays active;
# `systemctl stop` restores links, addresses, routes, nft tables and /etc/resolv.conf;
# l2sec@labbad (inline secrets, wrong password) fails with a clear journal message, is not
# restarted (no password guessing every RestartSec) and leaves nothing configured; no secret
# in the journal. Everything it starts is stopped by PID at the end (also on failure or
# Ctrl-C); the cached root is kept, the copy is deleted.
#
# Needs: root; the SoftEther lab up (lab/l2sec-lab up softether); debootstrap and
# systemd-nspawn (installed with apt-get when missing: debootstrap, systemd-container);
# the package: SD_DEB=/path/l2sec_*.deb, default the newest target/packaging/l2sec_*.deb
# (packaging/build.sh builds it when there is none).
# Environment: SD_CACHE (default /var/cache/l2sec-lab/systemd), LAB_STATE (default
# /tmp/l2sec-lab; logs in $LAB_STATE/systemd: console.log, journal.txt, run.log), SD_NS
# (default l2s-se-cli), SD_KEEP=1 to leave the container running after the checks (then
# `systemd.sh clean`), SD_SE_RESTART=0 to never restart the server: no `lab/l2sec-lab restart
# softether --kill` after the SIGKILL check (SoftEther wedges when the killed client comes
# back, so the restart check then fails) and no reconnect check.
#
# The container: systemd-nspawn --network-namespace-path (it shares l2s-se-cli, no other
# network), --bind=/dev/net/tun, CAP_NET_ADMIN/CAP_NET_RAW kept, and bpf() plus CAP_BPF so the
# container's systemd can enforce DevicePolicy=/DeviceAllow= with cgroup BPF programs as it
# does on a normal cgroup v2 host. On a host without systemd as PID 1 it runs with
# --register=no --keep-unit in a cgroup of its own ($SD_CG, removed afterwards) and the
# container gets a unified (cgroup v2) hierarchy even when the host is hybrid.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/../.." && pwd)
LAB_STATE=${LAB_STATE:-/tmp/l2sec-lab}
SD_CACHE=${SD_CACHE:-/var/cache/l2sec-lab/systemd}
SD_ST=$LAB_STATE/systemd
SD_NS=${SD_NS:-l2s-se-cli}
SD_SE_RESTART=${SD_SE_RESTART:-1}
SD_ROOT=$SD_CACHE/root
SD_RUN=$SD_CACHE/run
SD_MACHINE=l2s-sd
SD_CG=l2s-sd
# nftables: l2sec clamps the TCP MSS with nft, a helper that runs under the unit's sandbox too.
SD_PKGS=(systemd-sysv dbus iproute2 procps iputils-ping nftables)
SD_RECIPE=2
# A Debian package cache some other lab image may already have filled (read only: copied).
SD_SEED_DEBS=/var/cache/l2sec-lab/l2sec-linux/debs
# The SoftEther lab (lab/lib/softether.sh)
SE_ST=$LAB_STATE/softether
SE_SRV=198.18.0.1 SE_GW=198.19.0.1 SE_NET=198.19.0. SE_USER=alice
IFNAME=l2sec0

# shellcheck source=common.sh
source "$ROOT/lab/lib/common.sh"

# ---------------------------------------------------------------------------- host tools

# host_tools: debootstrap and systemd-nspawn. systemd-container is taken in the version of the
# installed systemd when apt has it (no upgrade of the host's systemd).
host_tools() {
	local want=() v
	command -v debootstrap >/dev/null || want+=(debootstrap)
	if ! command -v systemd-nspawn >/dev/null; then
		v=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true)
		if [ -n "$v" ] && apt-cache madison systemd-container 2>/dev/null | grep -qF "| $v |"; then
			want+=("systemd-container=$v")
		else
			want+=(systemd-container)
		fi
	fi
	[ "${#want[@]}" -gt 0 ] || return 0
	pkgs_ensure "${want[@]}"
}

# wipe DIR: rm -rf, only below the cache.
wipe() {
	case "$1" in "$SD_CACHE"/?*) rm -rf -- "$1" ;; *) die "refusing to wipe $1" ;; esac
}

# ---------------------------------------------------------------------------- root file system

# prepare: the cached root, built when missing or when its recipe changed (about a minute and
# a half with a warm package cache).
prepare() {
	local stamp t0 log=$SD_CACHE/build.log u
	stamp="recipe $SD_RECIPE: ${SD_PKGS[*]}"
	if [ -f "$SD_CACHE/stamp" ] && [ "$(cat "$SD_CACHE/stamp")" = "$stamp" ] &&
		[ -x "$SD_ROOT/lib/systemd/systemd" ]; then
		return 0
	fi
	mkdir -p "$SD_CACHE/debs"
	rm -f "$SD_CACHE/stamp"
	wipe "$SD_ROOT"
	if [ -d "$SD_SEED_DEBS" ]; then cp -n "$SD_SEED_DEBS"/*.deb "$SD_CACHE/debs/" 2>/dev/null || true; fi
	t0=$SECONDS
	say "building the root file system (debootstrap bookworm; log: $log)"
	: >"$log"
	debootstrap --variant=minbase --cache-dir="$SD_CACHE/debs" \
		--include="$(IFS=,; echo "${SD_PKGS[*]}")" bookworm "$SD_ROOT" "$(apt_mirror)" >>"$log" 2>&1 ||
		{
			tail -n 20 "$log" >&2
			die "debootstrap failed; see $log"
		}
	echo "$SD_MACHINE" >"$SD_ROOT/etc/hostname"
	# No consoles, no network management, no timers: a quiet boot that only runs what we test.
	for u in console-getty.service getty@tty1.service systemd-networkd.service \
		systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
		e2scrub_all.timer fstrim.timer; do
		ln -sfn /dev/null "$SD_ROOT/etc/systemd/system/$u"
	done
	rm -rf "$SD_ROOT"/var/log/journal/* "$SD_ROOT"/var/cache/apt/archives/*.deb
	echo "$stamp" >"$SD_CACHE/stamp"
	say "root file system built in $((SECONDS - t0)) s: $SD_ROOT"
}

# ---------------------------------------------------------------------------- the package

# deb_path: the .deb to test (builds one with packaging/build.sh when none exists).
deb_path() {
	local d
	if [ -n "${SD_DEB:-}" ]; then
		[ -f "$SD_DEB" ] || die "SD_DEB=$SD_DEB: no such file"
		echo "$SD_DEB"
		return
	fi
	# shellcheck disable=SC2012 # newest by mtime; the names are ours
	d=$(ls -t "$ROOT"/target/packaging/l2sec_*.deb 2>/dev/null | head -n 1) || d=""
	if [ -z "$d" ]; then
		say "no package in target/packaging: running packaging/build.sh (log: $SD_ST/build.log)"
		"$ROOT/packaging/build.sh" >"$SD_ST/build.log" 2>&1 || die "packaging/build.sh failed; see $SD_ST/build.log"
		# shellcheck disable=SC2012
		d=$(ls -t "$ROOT"/target/packaging/l2sec_*.deb | head -n 1)
	fi
	echo "$d"
}

# ---------------------------------------------------------------------------- the container

SD_PID="" SD_INIT="" SD_CGDIRS=()


host_has_systemd() { [ -d /run/systemd/system ]; }

# cg_dirs: the cgroup directories our nspawn runs in (host without systemd only).
cg_dirs() {
	SD_CGDIRS=()
	host_has_systemd && return 0
	if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
		SD_CGDIRS=("/sys/fs/cgroup/$SD_CG")
		return 0
	fi
	if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
		SD_CGDIRS+=("/sys/fs/cgroup/unified/$SD_CG")
	fi
	if [ -d /sys/fs/cgroup/systemd ]; then SD_CGDIRS+=("/sys/fs/cgroup/systemd/$SD_CG"); fi
}

# in_ct CMD...: run CMD in the container (all its namespaces), with a clean environment.
in_ct() {
	nsenter -t "$SD_INIT" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		SYSTEMD_COLORS=0 SYSTEMD_PAGER= SYSTEMD_URLIFY=0 "$@"
}

# boot: copy the root, put the test files in, start nspawn in the background, wait for PID 1.
boot() {
	local deb=$1 psk=$2 pass=$3 i d nsargs=() cgprocs=""
	wipe "$SD_RUN"
	cp -a --reflink=auto "$SD_ROOT" "$SD_RUN"
	cp "$deb" "$SD_RUN/root/l2sec.deb"
	# Profiles. lab: secrets as systemd credentials (LoadCredential in a drop-in, like
	# `systemctl edit` writes it). labbad: inline secrets and a wrong password.
	install -d -m 0700 "$SD_RUN/etc/l2sec" "$SD_RUN/etc/l2sec/profiles"
	umask 077
	cat >"$SD_RUN/etc/l2sec/profiles/lab.toml" <<-EOF
		# lab/lib/systemd.sh: the SoftEther lab through l2sec@lab.service, secrets as credentials
		server = "$SE_SRV"

		[ipsec]
		psk_file = "cred:psk"

		[ppp]
		user = "$SE_USER"
		password_file = "cred:password"
		auth = ["mschapv2", "pap"]

		[network]
		interface = "$IFNAME"
	EOF
	printf '%s\n' "$psk" >"$SD_RUN/etc/l2sec/lab.psk"
	printf '%s\n' "$pass" >"$SD_RUN/etc/l2sec/lab.password"
	cat >"$SD_RUN/etc/l2sec/profiles/labbad.toml" <<-EOF
		# lab/lib/systemd.sh: inline secrets, wrong password
		server = "$SE_SRV"

		[ipsec]
		psk = "$psk"

		[ppp]
		user = "$SE_USER"
		password = "l2sec-wrong-pass"
		auth = ["mschapv2", "pap"]

		[network]
		interface = "$IFNAME"
	EOF
	umask 022
	mkdir -p "$SD_RUN/etc/systemd/system/l2sec@lab.service.d"
	printf '[Service]\nLoadCredential=psk:/etc/l2sec/lab.psk\nLoadCredential=password:/etc/l2sec/lab.password\n' \
		>"$SD_RUN/etc/systemd/system/l2sec@lab.service.d/credentials.conf"
	# A resolv.conf of our own (a regular file, no resolver daemon): l2sec writes it in place.
	rm -f "$SD_RUN/etc/resolv.conf"
	printf '# lab/lib/systemd.sh: fixed resolver (checked to be restored)\nnameserver 198.18.0.53\n' \
		>"$SD_RUN/etc/resolv.conf"

	cg_dirs
	for d in "${SD_CGDIRS[@]}"; do
		mkdir -p "$d"
		cgprocs+=" $d/cgroup.procs"
	done
	host_has_systemd || nsargs+=(--register=no --keep-unit)
	: >"$SD_ST/console.log"
	# setsid: not a process group leader here, so no fork: $! becomes systemd-nspawn.
	# shellcheck disable=SC2016 # $$, $f and $@ expand in the inner shell
	SD_CGPROCS=$cgprocs SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid bash -c \
		'for f in $SD_CGPROCS; do echo $$ >"$f" || exit 1; done; exec "$@"' _ \
		systemd-nspawn -b -D "$SD_RUN" -M "$SD_MACHINE" "${nsargs[@]}" \
		--network-namespace-path="/run/netns/$SD_NS" --bind=/dev/net/tun \
		--capability=CAP_NET_ADMIN,CAP_NET_RAW,CAP_BPF --system-call-filter=bpf \
		--resolv-conf=off --timezone=off --link-journal=no \
		>>"$SD_ST/console.log" 2>&1 </dev/null &
	SD_PID=$!
	for ((i = 0; i < 100; i++)); do
		pid_is "$SD_PID" systemd-nspawn && break
		pid_alive "$SD_PID" || break
		sleep 0.05
	done
	pid_is "$SD_PID" systemd-nspawn || {
		tail -n 20 "$SD_ST/console.log" >&2
		die "systemd-nspawn did not start; see $SD_ST/console.log"
	}
	echo "$SD_PID systemd-nspawn container" >"$SD_ST/pids"
	for ((i = 0; i < 300; i++)); do
		for d in $(ps -o pid= --ppid "$SD_PID" 2>/dev/null); do
			if pid_is "$d" systemd; then SD_INIT=$d; fi
		done
		[ -n "$SD_INIT" ] && break
		pid_alive "$SD_PID" || break
		sleep 0.1
	done
	[ -n "$SD_INIT" ] || {
		tail -n 20 "$SD_ST/console.log" >&2
		die "the container's systemd did not start; see $SD_ST/console.log"
	}
	echo "$SD_INIT systemd container-init" >>"$SD_ST/pids"
}

# halt: stop the container by PID (SIGTERM to nspawn = orderly shutdown; SIGKILL after 60 s),
# then remove our cgroups and the copy of the root. Safe to call twice.
halt() {
	local i pid comm role d
	if [ -f "$SD_ST/pids" ]; then
		while read -r pid comm role; do
			[ "$role" = container ] || continue
			pid_is "$pid" "$comm" || continue
			kill -TERM "$pid" 2>/dev/null || true
			for ((i = 0; i < 600; i++)); do
				pid_alive "$pid" || break
				sleep 0.1
			done
			if pid_is "$pid" "$comm"; then
				say "systemd-nspawn $pid did not stop in 60 s: SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done <"$SD_ST/pids"
		# The container's PID 1 (a leftover only if nspawn was killed).
		while read -r pid comm role; do
			[ "$role" = container-init ] || continue
			if pid_is "$pid" "$comm"; then kill -KILL "$pid" 2>/dev/null || true; fi
		done <"$SD_ST/pids"
		for ((i = 0; i < 100; i++)); do
			local left=0
			while read -r pid comm role; do
				if pid_is "$pid" "$comm"; then left=1; fi
			done <"$SD_ST/pids"
			[ "$left" = 0 ] && break
			sleep 0.1
		done
		mv -f "$SD_ST/pids" "$SD_ST/pids.stopped"
	fi
	cg_dirs
	for d in "${SD_CGDIRS[@]}"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || say "cgroup $d is not empty; left in place"
	done
	# nspawn leaves its (empty) propagation directory when /run is not a tmpfs
	rmdir "/run/systemd/nspawn/propagate/$SD_MACHINE" 2>/dev/null || true
	if [ -d "$SD_RUN" ]; then wipe "$SD_RUN"; fi
	SD_PID="" SD_INIT=""
}

# ---------------------------------------------------------------------------- checks

PASSED=0 FAILED=0 RESULTS=()
result() {
	local verdict=$1 name=$2 detail=$3 line
	line=$(printf '%-4s %-14s %s' "$verdict" "$name" "$detail")
	RESULTS+=("$line")
	echo "$line"
	if [ "$verdict" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}
pass() { result PASS "$1" "$2"; }
fail() { result FAIL "$1" "$2"; }

# The host state l2sec changes, as the container sees it.
snapshot() {
	# shellcheck disable=SC2016 # expands inside the container
	in_ct sh -c 'ip -o link show | cut -d" " -f2; ip -o addr show | awk "{print \$2, \$4}";
		ip route show table all; ip rule show; nft list tables; stat -c "resolv.conf inode %i" /etc/resolv.conf;
		cat /etc/resolv.conf'
}
prop() { in_ct systemctl show -p "$2" --value "$1"; }
tunnel_addr() { in_ct ip -o -4 addr show dev "$IFNAME" 2>/dev/null | awk '{print $4}' | cut -d/ -f1; }
since_cursor() { in_ct journalctl -q --show-cursor -n 0 | sed -n 's/^-- cursor: //p'; }
journal_since() { in_ct journalctl -q --no-pager -o cat --after-cursor="$1" "${@:2}"; }

# wait_state UNIT STATE SECONDS
wait_state() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(in_ct systemctl is-active "$1" 2>/dev/null || true)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

run_checks() {
	local psk=$1 pass=$2 before after t0 ms st addr out cur pid pid2 n ifgone i v waiting text

	# boot
	# (systemctl fails until PID 1 has its private socket; then --wait waits for the boot)
	for ((i = 0; i < 300; i++)); do
		st=$(in_ct timeout 90 systemctl is-system-running --wait 2>/dev/null || true)
		[ -z "$st" ] || break
		sleep 0.1
	done
	case "$st" in
	running) pass boot "systemd $(in_ct systemctl --version | awk 'NR == 1 {print $2}') is PID 1 of the container: $st" ;;
	degraded) fail boot "degraded: $(in_ct systemctl --failed --plain --no-legend | awk '{print $1}' | xargs)" ;;
	*) fail boot "is-system-running says '$st'" ;;
	esac
	[ "$(in_ct stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] &&
		in_ct systemd-run --wait --pipe -q -p DevicePolicy=closed sh -c ': <>/dev/net/tun' 2>/dev/null &&
		say "note: DevicePolicy is not enforced in this container (no BPF device control)"

	# install into the running system, no daemon-reload
	if out=$(in_ct dpkg -i /root/l2sec.deb 2>&1); then
		if [ "$(prop l2sec@lab.service LoadState)" = loaded ]; then
			pass install "dpkg -i into the running system; l2sec@lab loads without daemon-reload"
		else
			fail install "l2sec@lab: LoadState $(prop l2sec@lab.service LoadState)"
		fi
	else
		fail install "dpkg -i: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	fi
	if cmp -s "$SD_RUN/lib/systemd/system/l2sec@.service" "$ROOT/packaging/l2sec@.service"; then :; else
		say "note: the unit in the package differs from packaging/l2sec@.service (stale .deb?)"
	fi
	if out=$(in_ct systemd-analyze verify --man=no l2sec@lab.service 2>&1); then
		pass verify "systemd-analyze verify: clean"
	else
		fail verify "$(tr '\n' ' ' <<<"$out")"
	fi
	out=$(in_ct systemd-analyze security --no-pager l2sec@lab.service 2>/dev/null | tail -n 1 || true)
	say "systemd-analyze security: ${out#→ }"

	# start: Type=notify, active only with the tunnel up
	before=$(snapshot)
	cur=$(since_cursor)
	t0=$(date +%s%N)
	if out=$(in_ct systemctl start l2sec@lab.service 2>&1); then
		ms=$((($(date +%s%N) - t0) / 1000000))
		st=$(in_ct systemctl is-active l2sec@lab.service || true)
		addr=$(tunnel_addr)
		if [ "$st" = active ] && [[ "$addr" == "$SE_NET"* ]]; then
			pass start "systemctl start returned after $ms ms: active, $IFNAME has $addr (psk and password from LoadCredential)"
		else
			fail start "systemctl start returned after $ms ms but: is-active $st, $IFNAME address '${addr:-none}'"
		fi
		st=$(prop l2sec@lab.service StatusText)
		v=$((($(prop l2sec@lab.service ActiveEnterTimestampMonotonic) - $(prop l2sec@lab.service InactiveExitTimestampMonotonic)) / 1000))
		if [[ "$st" == up:* ]] && [ "$v" -ge 100 ] &&
			journal_since "$cur" -u l2sec@lab.service | grep -q 'IKE phase 1'; then
			pass notify "Type=notify: activating for $v ms (IKE, L2TP, PPP), READY=1 with STATUS=\"$st\""
		else
			fail notify "StatusText '$st', activating for $v ms"
		fi
	else
		fail start "systemctl start: $(tr '\n' ' ' <<<"$out")"
		in_ct systemctl status --no-pager -n 20 l2sec@lab.service >&2 || true
	fi

	# traffic, control socket, DNS
	if out=$(in_ct ping -c 3 -W 2 "$SE_GW" 2>&1); then
		pass ping "3/3 replies from $SE_GW through the tunnel ($(grep -o 'rtt.*' <<<"$out" || true))"
	else
		fail ping "$(tail -n 2 <<<"$out" | tr '\n' ' ')"
	fi
	if out=$(in_ct l2sec --socket /run/l2sec/lab.sock status 2>&1) && grep -q '^state  *up$' <<<"$out"; then
		pass status "l2sec status on /run/l2sec/lab.sock: $(grep -E '^(state|interface) ' <<<"$out" | tr -s ' ' | tr '\n' ';')"
	else
		fail status "l2sec status: $(tr '\n' ' ' <<<"$out")"
	fi
	if in_ct grep -q "^nameserver $SE_GW" /etc/resolv.conf; then
		pass dns "/etc/resolv.conf (ReadWritePaths, in place) has nameserver $SE_GW while up"
	else
		fail dns "/etc/resolv.conf while up: $(in_ct cat /etc/resolv.conf | tr '\n' ' ')"
	fi

	if out=$(in_ct nft list table inet l2sec 2>&1) && grep -q 'maxseg size set' <<<"$out"; then
		pass mss "nft (a helper of l2sec, inside the sandbox) installed table inet l2sec: $(grep -o 'oifname.*' <<<"$out" | head -n 1 | tr -s ' ')"
	else
		fail mss "no MSS clamping table: $(tr '\n' ' ' <<<"$out" | cut -c1-200); journal: $(in_ct journalctl -q -o cat -u l2sec@lab.service | grep -i nft | tail -n 2 | tr '\n' '|')"
	fi

	# the hardening as applied to the running process
	pid=$(prop l2sec@lab.service MainPID)
	out=$(in_ct cat "/proc/$pid/status" 2>/dev/null || true)
	v=$(awk '/^CapBnd:/ {print $2} /^CapEff:/ {e = $2} /^NoNewPrivs:/ {n = $2} /^Seccomp:/ {s = $2} END {print e, n, s}' <<<"$out" | xargs)
	# CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13)
	if [ "$v" = "0000000000003400 0000000000003400 1 2" ]; then
		pass hardening "main PID $pid: CapBnd=CapEff=NET_BIND_SERVICE,NET_ADMIN,NET_RAW, NoNewPrivs=1, seccomp filter"
	else
		fail hardening "main PID $pid: CapBnd CapEff NoNewPrivs Seccomp = $v"
	fi

	# SIGKILL: ExecStopPost cleanup restores the host, Restart=on-failure reconnects
	if [ -n "$pid" ] && [ "$pid" != 0 ]; then
		cur=$(since_cursor)
		n=$(prop l2sec@lab.service NRestarts)
		in_ct kill -KILL "$pid"
		ifgone=""
		for ((i = 0; i < 80; i++)); do
			st=$(in_ct systemctl is-active l2sec@lab.service || true)
			if [ "$st" = activating ] && [ "$(prop l2sec@lab.service SubState)" = auto-restart ]; then
				[ "$(snapshot)" = "$before" ] && ifgone=yes || ifgone=no
				break
			fi
			sleep 0.1
		done
		out=$(journal_since "$cur" -u l2sec@lab.service)
		if [ "$ifgone" = yes ] && grep -q 'restored [1-9][0-9]* change' <<<"$out"; then
			pass cleanup "after SIGKILL: ExecStopPost '$(grep -o 'restored [0-9]* change.*' <<<"$out" | head -n 1)'; host as before"
		else
			fail cleanup "after SIGKILL: host restored: ${ifgone:-not seen}; journal: $(tail -n 4 <<<"$out" | tr '\n' '|')"
		fi
		# SoftEther wedges when a client it still has a session for comes back from the same
		# address (the killed process could not say goodbye): restart it while systemd waits
		# RestartSec=10s, so the check is about the unit and not about that server quirk.
		if [ "$SD_SE_RESTART" = 1 ]; then
			"$ROOT/lab/l2sec-lab" restart softether --kill >>"$SD_ST/softether-restart.log" 2>&1 ||
				say "lab/l2sec-lab restart softether --kill failed; see $SD_ST/softether-restart.log"
		fi
		if wait_state l2sec@lab.service active 120; then
			pid2=$(prop l2sec@lab.service MainPID)
			addr=$(tunnel_addr)
			if [ "$(prop l2sec@lab.service NRestarts)" = $((n + 1)) ] && [ "$pid2" != "$pid" ] &&
				in_ct ping -c 2 -W 2 "$SE_GW" >/dev/null 2>&1; then
				pass restart "Restart=on-failure: NRestarts $((n + 1)), main PID $pid2, $IFNAME $addr, ping ok"
			else
				fail restart "active again but NRestarts $(prop l2sec@lab.service NRestarts), PID $pid2, $IFNAME '${addr:-none}'"
			fi
		else
			fail restart "not active again within 120 s: $(in_ct systemctl is-active l2sec@lab.service || true); $(journal_since "$cur" -u l2sec@lab.service | tail -n 3 | tr '\n' '|')"
		fi
	else
		fail cleanup "no main PID"
		fail restart "no main PID"
	fi

	# the server goes away and comes back: l2sec reconnects by itself, the unit stays active
	if [ "$SD_SE_RESTART" = 1 ] && [ "$(in_ct systemctl is-active l2sec@lab.service || true)" = active ]; then
		cur=$(since_cursor)
		pid=$(prop l2sec@lab.service MainPID)
		n=$(prop l2sec@lab.service NRestarts)
		t0=$SECONDS
		"$ROOT/lab/l2sec-lab" restart softether >>"$SD_ST/softether-restart.log" 2>&1 ||
			say "lab/l2sec-lab restart softether failed; see $SD_ST/softether-restart.log"
		st="" waiting=""
		for ((i = 0; i < 900; i++)); do
			# Between attempts, STATUS= (systemctl status) says so.
			if [ -z "$waiting" ]; then
				text=$(prop l2sec@lab.service StatusText)
				case $text in "reconnecting in "*) waiting=$text ;; esac
			fi
			out=$(journal_since "$cur" -u l2sec@lab.service)
			if grep -q 'reconnecting' <<<"$out" && grep -q '  up  ' <<<"$out"; then st=up; break; fi
			sleep 0.1
		done
		v="$(in_ct systemctl is-active l2sec@lab.service || true) $(prop l2sec@lab.service MainPID) $(prop l2sec@lab.service NRestarts)"
		if [ "$st" = up ] && [ -n "$waiting" ] && [ "$v" = "active $pid $n" ] && in_ct ping -c 2 -W 2 "$SE_GW" >/dev/null 2>&1; then
			pass reconnect "server restarted: '$(grep -m 1 -o 'connection lost: [^;—]*' <<<"$out" | cut -c1-70)', StatusText '$(cut -c1-60 <<<"$waiting")', up again after $((SECONDS - t0)) s in the same process (PID $pid), unit active throughout"
		else
			fail reconnect "after a server restart: up again: ${st:-no}; StatusText reconnecting: ${waiting:-never seen}; is-active, PID, NRestarts = $v (before: active $pid $n)"
		fi
	fi

	# stop: everything back as before the start
	out=$(in_ct systemctl stop l2sec@lab.service 2>&1) || true
	after=$(snapshot)
	st=$(in_ct systemctl is-active l2sec@lab.service || true)
	if [ "$st" = inactive ] && [ "$after" = "$before" ] &&
		! in_ct test -e /run/l2sec/lab.sock && in_ct test -d /run/l2sec; then
		pass stop "inactive; links, addresses, routes, rules, nft tables and /etc/resolv.conf (same inode) as before; socket gone, /run/l2sec kept"
	else
		fail stop "is-active $st; $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -n 6 | tr '\n' '|')"
	fi

	# wrong password: fails, says why, does not loop on the server, leaves nothing
	cur=$(since_cursor)
	t0=$(date +%s%N)
	if in_ct timeout 150 systemctl start l2sec@labbad.service >/dev/null 2>&1; then
		fail badpass "systemctl start l2sec@labbad succeeded with a wrong password"
	else
		ms=$((($(date +%s%N) - t0) / 1000000))
		# RestartPreventExitStatus=6: failed at once, not activating (auto-restart)
		v=$(for p in ActiveState Result ExecMainStatus NRestarts; do prop l2sec@labbad.service "$p"; done | xargs)
		out=$(journal_since "$cur" -u l2sec@labbad.service | grep -m 1 'authentication failed' | cut -c1-110 || true)
		if [ "$v" = "failed exit-code 6 0" ] && [ -n "$out" ]; then
			pass badpass "start failed after $ms ms, exit 6, unit failed (no restart); journal: $out"
		else
			fail badpass "after $ms ms: ActiveState Result status NRestarts = $v; journal: $(journal_since "$cur" -u l2sec@labbad.service | tail -n 3 | tr '\n' '|')"
		fi
	fi
	in_ct systemctl stop l2sec@labbad.service >/dev/null 2>&1 || true
	in_ct systemctl reset-failed l2sec@labbad.service >/dev/null 2>&1 || true
	after=$(snapshot)
	if [ "$after" = "$before" ]; then
		pass badpass-host "host as before after the failed start"
	else
		fail badpass-host "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -n 6 | tr '\n' '|')"
	fi

	# the journal: stages, no secret
	out=$(in_ct journalctl -q --no-pager -o cat -u l2sec@lab.service)
	v=$(for s in resolving 'IKE phase 1' 'IKE quick mode' 'L2TP tunnel' 'L2TP call' 'PPP LCP' 'PPP authentication' 'PPP IPCP'; do
		grep -qF "$s" <<<"$out" || printf '%s, ' "$s"
	done)
	if [ -z "$v" ] && grep -q "^up\|  up " <<<"$out"; then
		pass journal "journalctl -u l2sec@lab shows every stage and the up line"
	else
		fail journal "stages missing from journalctl -u l2sec@lab: ${v:-up line}"
	fi
	out=$(in_ct journalctl -q --no-pager -o verbose)
	v=""
	for s in "$psk" "$pass" l2sec-wrong-pass; do
		if grep -qF -- "$s" <<<"$out"; then v+="${s:0:3}... "; fi
	done
	if [ -z "$v" ]; then
		pass secrets "no PSK or password (right or wrong) anywhere in the journal"
	else
		fail secrets "secret(s) in the journal: $v"
	fi
	if grep -qa $'\e\[' <(in_ct journalctl -q --no-pager -o cat -u 'l2sec@*'); then
		say "note: terminal escape sequences in the journal of l2sec@ (shown as blob data)"
	fi
}

# ---------------------------------------------------------------------------- main

cmd_run() {
	local deb psk pass t0=$SECONDS
	[ -e "/run/netns/$SD_NS" ] || die "no namespace $SD_NS: run lab/l2sec-lab up softether first"
	{ [ -s "$SE_ST/psk" ] && [ -s "$SE_ST/password" ]; } || die "no $SE_ST/psk or password: run lab/l2sec-lab up softether first"
	psk=$(cat "$SE_ST/psk")
	pass=$(cat "$SE_ST/password")
	deb=$(deb_path)
	host_tools
	prepare
	halt
	trap 'halt' EXIT
	trap 'exit 130' INT TERM
	say "package $deb; booting $SD_MACHINE in $SD_NS (console: $SD_ST/console.log)"
	boot "$deb" "$psk" "$pass"
	run_checks "$psk" "$pass"
	in_ct journalctl -q --no-pager -o short-precise >"$SD_ST/journal.txt" 2>&1 || true
	if [ "${SD_KEEP:-0}" = 1 ]; then
		trap - EXIT
		say "SD_KEEP=1: the container stays up; enter it with: nsenter -t $SD_INIT -a; stop it with: $SELF clean"
	else
		halt
		trap - EXIT
	fi
	echo "---- $PASSED passed, $FAILED failed in $((SECONDS - t0)) s (journal: $SD_ST/journal.txt)"
	[ "$FAILED" = 0 ]
}

[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$SD_ST" "$SD_CACHE"
case "${1:-run}" in
run) cmd_run 2>&1 | tee "$SD_ST/run.log"; exit "${PIPESTATUS[0]}" ;;
prepare)
	host_tools
	prepare
	;;
clean) halt ;;
*)
	sed -n '3,6p' "$SELF" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
