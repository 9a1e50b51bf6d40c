# shellcheck shell=bash
# SoftEther VPN Server: L2TP/IPsec (IKEv1 PSK, NAT-T) and plain L2TP on UDP 1701.
#
#   l2s-se-cli 198.18.0.2/24 <--veth--> l2s-se-srv 198.18.0.1/24 (vpnserver)
#   l2s-se-lan 198.19.0.250/24 <--veth--> (no address, bridged into hub LAB by vpnserver)
#
# Hub LAB, user alice / alice-pass, PSK l2sec-lab-psk, SecureNAT host 198.19.0.1 (answers ping;
# its NAT is off) with DHCP 198.19.0.10-200 handing out DNS 198.19.0.1 and 198.19.0.2.
#
# The Debian build compiles in /var/lib/softether, /var/log/softether and /run/softether.
# vpnserver therefore runs in a private mount namespace where those three are bind mounts of
# $SE_ST/{db,log,run}: each run starts from our seed config and nothing is shared with a
# system-wide vpnserver.  vpnserver runs as "execsvc": a watchdog process that forks the worker
# (restarted if it crashes).  Both PIDs are recorded, watchdog first.  A graceful stop is
# SIGTERM to the worker (it saves its config and sends CDN/StopCCN to clients; the watchdog then
# exits by itself); a crash (--kill) is SIGKILL to the watchdog, then the worker.

SE_ST=$LAB_STATE/softether
SE_SRV_NS=l2s-se-srv SE_CLI_NS=l2s-se-cli SE_LAN_NS=l2s-se-lan
SE_SRV_IF=l2s-se-srv0 SE_CLI_IF=l2s-se-cli0 SE_LAN_IF=l2s-se-lan0 SE_BR_IF=l2s-se-br0
SE_SRV_IP=198.18.0.1 SE_CLI_IP=198.18.0.2 SE_CLI_DNS=198.18.0.53
SE_HUB=LAB SE_USER=alice SE_PASS=alice-pass SE_PSK=l2sec-lab-psk SE_ADMIN=l2sec-lab-admin
SE_GW=198.19.0.1 SE_DNS1=198.19.0.1 SE_DNS2=198.19.0.2 SE_POOL_LO=198.19.0.10 SE_POOL_HI=198.19.0.200
SE_LAN_IP=198.19.0.250
SE_BIN=/usr/libexec/softether/vpnserver/vpnserver
SE_PKGS=(softether-vpnserver softether-vpncmd ethtool iproute2 util-linux)

se_pkgs() { pkgs_ensure "${SE_PKGS[@]}"; }

se_worker_pid() { awk '$3 == "worker" {print $1}' "$SE_ST/pids" 2>/dev/null; }

# vpncmd inside the worker's net and mount namespaces.  timeout: with a wrong password vpncmd
# prompts forever.  Note: an /IN: batch exits 0 even when a command fails.
se_vpncmd() {
	nsenter --target "$(se_worker_pid)" --net --mount -- \
		timeout 60 vpncmd 127.0.0.1:5555 /SERVER "$@" </dev/null
}

# Start vpnserver (state dirs must exist) and wait for the worker and its admin port.
se_start() {
	local wd worker="" f i
	mkdir -p /var/lib/softether /var/log/softether /run/softether
	rm -f "$SE_ST"/run/.pid_*
	# shellcheck disable=SC2016 # $1 and $2 expand in the inner shell
	daemon_start "$SE_ST" "$SE_SRV_NS" vpnserver watchdog "$SE_ST/vpnserver.out" \
		unshare --mount --propagation private -- /bin/sh -c '
			mount --bind "$1/db" /var/lib/softether &&
			mount --bind "$1/log" /var/log/softether &&
			mount --bind "$1/run" /run/softether &&
			exec "$2" execsvc' sh "$SE_ST" "$SE_BIN"
	wd=$DAEMON_PID
	# the worker writes its PID to run/.pid_<hash>; it must be a child of our watchdog
	for ((i = 0; i < 400; i++)); do
		f=$(find "$SE_ST/run" -maxdepth 1 -name '.pid_*' -size +0 2>/dev/null | head -n 1) || f=""
		if [ -n "$f" ]; then
			worker=$(tr -dc 0-9 <"$f") || worker=""
			[ -n "$worker" ] && [ "$(awk '/^PPid:/{print $2}' "/proc/$worker/status" 2>/dev/null)" = "$wd" ] && break
			worker=""
		fi
		pid_alive "$wd" || die "vpnserver exited; see $SE_ST/vpnserver.out"
		sleep 0.05
	done
	pid_is "$worker" vpnserver || die "vpnserver worker did not appear; see $SE_ST/vpnserver.out"
	echo "$worker vpnserver worker" >>"$SE_ST/pids"
	wait_tcp_5555 || die "vpnserver admin port 5555 not listening; see $SE_ST/vpnserver.out"
}
wait_tcp_5555() {
	local i
	for ((i = 0; i < 300; i++)); do
		ip netns exec "$SE_SRV_NS" ss -Hltn 'sport = :5555' 2>/dev/null | grep . >/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# UDP 500, 4500 and 1701 listening, and the LAN bridge operating.
se_wait_ready() {
	local p st=""
	for p in 500 4500 1701; do
		wait_udp "$SE_SRV_NS" "0.0.0.0:$p" 150 || die "vpnserver does not listen on UDP $p; see $SE_ST/log/server_log"
	done
	for _ in $(seq 60); do
		st=$(se_vpncmd /PASSWORD:"$SE_ADMIN" /CSV /CMD BridgeList 2>/dev/null | awk -F, -v d="$SE_BR_IF" '$3 == d {print $4}') || st=""
		[ "$st" = Operating ] && return 0
		sleep 0.25
	done
	die "local bridge $SE_HUB <-> $SE_BR_IF is '${st:-absent}', not Operating; see $SE_ST/vpncmd-setup.log"
}

se_seed_config() {
	# Only the admin listener on TCP 5555; no default hub, no cloud services (DDNS, VPN Azure,
	# keep-alive, SoftEther NAT traversal), no OpenVPN/SSTP, no web API, IPv4 only.  The
	# user@HUB separator must be set explicitly (it defaults to NUL).
	cat >"$SE_ST/db/vpn_server.config" <<-EOF
		# l2sec lab seed; vpnserver completes and rewrites this file
		declare root
		{
			uint ConfigRevision 0
			declare DDnsClient
			{
				bool Disabled true
			}
			declare ListenerList
			{
				declare Listener0
				{
					bool DisableDos false
					bool Enabled true
					uint Port 5555
				}
			}
			declare ServerConfiguration
			{
				bool DisableDosProtection true
				bool DisableIPv6Listener true
				bool DisableJsonRpcWebApi true
				bool DisableNatTraversal true
				bool EnableVpnAzure false
				bool UseKeepConnect false
				bool UseWebUI false
				bool DisableGetHostNameWhenAcceptTcp true
				string UsernameHubSeparator @
				declare Proto
				{
					declare OpenVPN
					{
						bool Enabled false
					}
					declare SSTP
					{
						bool Enabled false
					}
				}
			}
		}
	EOF
}

se_configure() {
	se_vpncmd /CMD ServerPasswordSet "$SE_ADMIN" >"$SE_ST/vpncmd-password.log" 2>&1 ||
		die "vpncmd ServerPasswordSet failed; see $SE_ST/vpncmd-password.log"
	cat >"$SE_ST/setup.vpncmd" <<-EOF
		HubCreate $SE_HUB /PASSWORD:$SE_ADMIN
		BridgeCreate $SE_HUB /DEVICE:$SE_BR_IF /TAP:no
		Hub $SE_HUB
		UserCreate $SE_USER /GROUP:none /REALNAME:none /NOTE:none
		UserPasswordSet $SE_USER /PASSWORD:$SE_PASS
		SecureNatHostSet /MAC:none /IP:$SE_GW /MASK:255.255.255.0
		DhcpSet /START:$SE_POOL_LO /END:$SE_POOL_HI /MASK:255.255.255.0 /EXPIRE:7200 /GW:$SE_GW /DNS:$SE_DNS1 /DNS2:$SE_DNS2 /DOMAIN:lab.test /LOG:yes /PUSHROUTE:none
		SecureNatEnable
		NatDisable
		IPsecEnable /L2TP:yes /L2TPRAW:yes /ETHERIP:no /PSK:$SE_PSK /DEFAULTHUB:$SE_HUB
		IPsecGet
		DhcpGet
	EOF
	se_vpncmd /PASSWORD:"$SE_ADMIN" /IN:"$SE_ST/setup.vpncmd" >"$SE_ST/vpncmd-setup.log" 2>&1 ||
		die "vpncmd setup failed; see $SE_ST/vpncmd-setup.log"
	! grep -q 'Error occurred' "$SE_ST/vpncmd-setup.log" || die "vpncmd reported an error; see $SE_ST/vpncmd-setup.log"
}

se_up() {
	se_pkgs
	[ -x "$SE_BIN" ] || die "$SE_BIN missing"
	se_down quiet
	state_fresh "$SE_ST"
	mkdir -p "$SE_ST/db" "$SE_ST/log" "$SE_ST/run"
	ns_create "$SE_ST" "$SE_SRV_NS"
	ns_create "$SE_ST" "$SE_CLI_NS"
	ns_create "$SE_ST" "$SE_LAN_NS"
	veth_link "$SE_SRV_NS" "$SE_SRV_IF" "$SE_SRV_IP/24" "$SE_CLI_NS" "$SE_CLI_IF" "$SE_CLI_IP/24"
	nic_like "$SE_SRV_NS" "$SE_SRV_IF"
	nic_like "$SE_CLI_NS" "$SE_CLI_IF"
	# LAN host: vpnserver reads and writes the server end with a packet socket.  Offloads off
	# on both ends, so no oversized or half-checksummed frame is handed to PPP.
	veth_link "$SE_SRV_NS" "$SE_BR_IF" - "$SE_LAN_NS" "$SE_LAN_IF" "$SE_LAN_IP/24"
	ip netns exec "$SE_SRV_NS" ethtool -K "$SE_BR_IF" rx off tx off sg off tso off gso off gro off >/dev/null 2>&1 || warn "ethtool -K $SE_BR_IF failed"
	ip netns exec "$SE_LAN_NS" ethtool -K "$SE_LAN_IF" tx off sg off tso off gso off gro off >/dev/null 2>&1 || warn "ethtool -K $SE_LAN_IF failed"
	no_route_out "$SE_SRV_NS" "$SE_CLI_NS" "$SE_LAN_NS"
	client_resolv "$SE_ST" "$SE_CLI_NS" "$SE_CLI_DNS"
	se_seed_config
	se_start
	se_configure
	se_wait_ready
	cat >"$SE_ST/lab.env" <<-EOF
		SE_SRV_NS=$SE_SRV_NS
		SE_CLI_NS=$SE_CLI_NS
		SE_LAN_NS=$SE_LAN_NS
		SE_SRV_IP=$SE_SRV_IP
		SE_CLI_IP=$SE_CLI_IP
		SE_LAN_IP=$SE_LAN_IP
		SE_GW=$SE_GW
		SE_HUB=$SE_HUB
		SE_USER=$SE_USER
		SE_PASS=$SE_PASS
		SE_PSK=$SE_PSK
		SE_ADMIN=$SE_ADMIN
	EOF
	# Secrets for profiles/lab-softether.toml (psk_file/password_file must be private).
	(umask 077 && printf '%s\n' "$SE_PSK" >"$SE_ST/psk" && printf '%s\n' "$SE_PASS" >"$SE_ST/password")
	say "softether up: server $SE_SRV_IP ($SE_SRV_NS; UDP 500/4500/1701), client $SE_CLI_IP ($SE_CLI_NS), LAN host $SE_LAN_IP ($SE_LAN_NS)"
	say "  PSK $SE_PSK, user $SE_USER / $SE_PASS (or $SE_USER@$SE_HUB, $SE_HUB\\$SE_USER), gateway $SE_GW, DNS $SE_DNS1 $SE_DNS2"
	say "  vpnserver pids: $(awk '{printf "%s=%s ", $3, $1}' "$SE_ST/pids"); logs $SE_ST/log/server_log, $SE_ST/log/security_log/$SE_HUB"
}

se_down() {
	[ -d "$SE_ST" ] || return 0
	daemons_stop "$SE_ST"
	netns_remove "$SE_ST"
	rm -f "$SE_ST/lab.env"
	[ "${1:-}" = quiet ] || say "softether down (logs kept in $SE_ST)"
}

# Restart only vpnserver, same config and namespaces (clients and the LAN host stay).
# --kill: a crash (SIGKILL, nothing is sent to clients); the config is flushed first.
se_restart() {
	local mode=${1:-}
	if [ ! -f "$SE_ST/pids" ] || ! pid_is "$(se_worker_pid)" vpnserver; then die "softether is not up"; fi
	case "$mode" in
	--kill)
		se_vpncmd /PASSWORD:"$SE_ADMIN" /CMD Flush >"$SE_ST/vpncmd-flush.log" 2>&1 || warn "vpncmd Flush failed"
		daemons_stop "$SE_ST" --kill
		;;
	"") daemons_stop "$SE_ST" ;;
	*) die "restart softether: unknown option $mode (use --kill)" ;;
	esac
	cat "$SE_ST/pids.stopped" >>"$SE_ST/pids.history"
	se_start
	se_wait_ready
	say "softether restarted${mode:+ after $mode}: vpnserver pids $(awk '{printf "%s=%s ", $3, $1}' "$SE_ST/pids")"
}

se_status() {
	lab_status_common softether "$SE_ST" "$SE_SRV_NS" "$SE_SRV_NS:UDP:500,4500,1701"
}
