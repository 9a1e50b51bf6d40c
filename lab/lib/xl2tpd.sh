# shellcheck shell=bash
# xl2tpd as an L2TP LNS: the L2TP control plane of a common Linux server.
#
#   l2s-xl-cli 198.18.30.2/24 <--veth--> l2s-xl-srv 198.18.30.1/24 (xl2tpd UDP 1701)
#
# Tunnel authentication is on (challenge = yes, secret l2sec-lab-secret): xl2tpd puts a
# Challenge AVP in its SCCRP and drops a tunnel whose SCCCN lacks the right Challenge Response
# (StopCCN "Invalid challenge authentication").  xl2tpd runs pppd at ICCN; pppd cannot work on
# a kernel without /dev/ppp, so xl2tpd sends a CDN a few ms after the call is up: use this
# server for tunnel and call setup, not for PPP.

XL_ST=$LAB_STATE/xl2tpd
XL_SRV_NS=l2s-xl-srv XL_CLI_NS=l2s-xl-cli XL_SRV_IF=l2s-xl-srv0 XL_CLI_IF=l2s-xl-cli0
XL_SRV_IP=198.18.30.1 XL_CLI_IP=198.18.30.2 XL_CLI_DNS=198.18.30.53
XL_SECRET=l2sec-lab-secret
XL_PKGS=(xl2tpd iproute2 util-linux)

xl_pkgs() { pkgs_ensure "${XL_PKGS[@]}"; }

xl_up() {
	xl_pkgs
	xl_down quiet
	state_fresh "$XL_ST"
	ns_create "$XL_ST" "$XL_SRV_NS"
	ns_create "$XL_ST" "$XL_CLI_NS"
	veth_link "$XL_SRV_NS" "$XL_SRV_IF" "$XL_SRV_IP/24" "$XL_CLI_NS" "$XL_CLI_IF" "$XL_CLI_IP/24"
	no_route_out "$XL_SRV_NS" "$XL_CLI_NS"
	client_resolv "$XL_ST" "$XL_CLI_NS" "$XL_CLI_DNS"
	cat >"$XL_ST/xl2tpd.conf" <<-EOF
		; l2sec lab xl2tpd LNS, see xl2tpd.conf(5)
		[global]
		listen-addr = $XL_SRV_IP
		port = 1701
		auth file = $XL_ST/l2tp-secrets
		access control = no
		debug avp = yes
		debug network = yes
		debug state = yes
		debug tunnel = yes

		[lns default]
		ip range = 198.19.30.10-198.19.30.50
		local ip = 198.19.30.1
		challenge = yes
		require chap = yes
		refuse pap = yes
		require authentication = yes
		name = l2sec-lab-xl2tpd
		pppoptfile = $XL_ST/options.pppd
		length bit = yes
	EOF
	# "<their name> <our name> <secret>"
	printf '* * %s\n' "$XL_SECRET" >"$XL_ST/l2tp-secrets"
	chmod 0600 "$XL_ST/l2tp-secrets"
	printf 'ms-dns 198.19.30.1\nmtu 1400\nmru 1400\n' >"$XL_ST/options.pppd"
	daemon_start "$XL_ST" "$XL_SRV_NS" xl2tpd lns "$XL_ST/xl2tpd.log" \
		/usr/sbin/xl2tpd -D -c "$XL_ST/xl2tpd.conf" -s "$XL_ST/l2tp-secrets" \
		-p "$XL_ST/xl2tpd.pid" -C "$XL_ST/l2tp-control"
	wait_udp "$XL_SRV_NS" "$XL_SRV_IP:1701" 100 || die "xl2tpd does not listen; see $XL_ST/xl2tpd.log"
	say "xl2tpd up: LNS $XL_SRV_IP ($XL_SRV_NS; UDP 1701), client $XL_CLI_IP ($XL_CLI_NS), tunnel secret $XL_SECRET; log $XL_ST/xl2tpd.log"
}

xl_down() {
	[ -d "$XL_ST" ] || return 0
	daemons_stop "$XL_ST"
	netns_remove "$XL_ST"
	[ "${1:-}" = quiet ] || say "xl2tpd down (log kept in $XL_ST)"
}

xl_status() {
	lab_status_common xl2tpd "$XL_ST" "$XL_SRV_NS" "$XL_SRV_NS:UDP:1701"
}
