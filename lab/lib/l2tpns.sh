# shellcheck shell=bash
# l2tpns (plain L2TP LNS with userspace PPP on a TUN device) + FreeRADIUS for its users.
#
#   l2s-l2-cli 198.18.20.2/24 <--veth--> l2s-l2-srv 198.18.20.1/24 (l2tpns UDP 1701,
#                                        FreeRADIUS on 127.0.0.1:1812/1813)
#
# PPP: PAP and CHAP-MD5 (l2tpns asks CHAP first), checked by RADIUS.  Users alice/alice-pass
# (address from the pool 198.19.20.0/24 minus .99) and fixed/fixed-pass (RADIUS
# Framed-IP-Address 198.19.20.99).  Through the tunnel the client reaches 198.19.22.1, the
# address of l2tpns' TUN device in l2s-l2-srv (the IPCP peer address); IPCP hands out DNS
# 198.19.22.53 (nothing answers there).
#
# Quirks handled here: l2tpns reads the compiled-in /etc/l2tpns/ip_pool, so it runs in a
# private mount namespace with our etc dir bound over /etc/l2tpns; it always opens a cluster
# multicast socket (bound to lo here) and an nftables rule in the server namespace drops all
# multicast output; it ignores L2TP until it has declared itself cluster master (~3 s).

L2_ST=$LAB_STATE/l2tpns
L2_SRV_NS=l2s-l2-srv L2_CLI_NS=l2s-l2-cli L2_SRV_IF=l2s-l2-srv0 L2_CLI_IF=l2s-l2-cli0
L2_SRV_IP=198.18.20.1 L2_CLI_IP=198.18.20.2 L2_CLI_DNS=198.18.20.53
L2_GW=198.19.22.1 L2_PPP_DNS=198.19.22.53 L2_FIXED=198.19.20.99
L2_RADIUS_SECRET=l2sec-lab-radius
L2_TUNNEL_SECRET=l2sec-lab-secret
L2_PKGS=(l2tpns freeradius freeradius-utils nftables iproute2 util-linux)

l2_pkgs() { pkgs_ensure "${L2_PKGS[@]}"; }

l2_radius_config() {
	mkdir -p "$L2_ST/raddb" "$L2_ST/radacct" "$L2_ST/run"
	# A self-contained FreeRADIUS 3 server: loopback only, one client (l2tpns), modules pap,
	# chap and files; users in raddb/users with cleartext passwords (CHAP needs them).
	cat >"$L2_ST/raddb/radiusd.conf" <<-EOF
		# l2sec lab FreeRADIUS for l2tpns
		prefix = /usr
		exec_prefix = /usr
		sysconfdir = /etc
		localstatedir = /var
		sbindir = /usr/sbin
		logdir = $L2_ST
		raddbdir = $L2_ST/raddb
		radacctdir = $L2_ST/radacct
		name = freeradius
		confdir = $L2_ST/raddb
		modconfdir = $L2_ST/raddb/mods-config
		run_dir = $L2_ST/run
		db_dir = $L2_ST/raddb
		libdir = /usr/lib/freeradius
		dictdir = /usr/share/freeradius
		pidfile = $L2_ST/run/radiusd.pid
		max_request_time = 10
		cleanup_delay = 2
		max_requests = 256
		hostname_lookups = no
		log {
			destination = files
			file = $L2_ST/radius.log
			auth = yes
			auth_badpass = no
			auth_goodpass = no
		}
		security {
			allow_core_dumps = no
			max_attributes = 200
			reject_delay = 0
			status_server = no
		}
		thread pool {
			start_servers = 1
			max_servers = 2
			min_spare_servers = 1
			max_spare_servers = 2
			max_requests_per_server = 0
		}
		client l2tpns {
			ipaddr = 127.0.0.1
			secret = $L2_RADIUS_SECRET
			require_message_authenticator = no
		}
		modules {
			pap {
				normalise = yes
			}
			chap {
			}
			files {
				filename = $L2_ST/raddb/users
			}
			always ok {
				rcode = ok
			}
		}
		server default {
			listen {
				type = auth
				ipaddr = 127.0.0.1
				port = 1812
			}
			listen {
				type = acct
				ipaddr = 127.0.0.1
				port = 1813
			}
			authorize {
				chap
				files
				pap
			}
			authenticate {
				Auth-Type PAP {
					pap
				}
				Auth-Type CHAP {
					chap
				}
			}
			preacct {
			}
			accounting {
				ok
			}
			post-auth {
			}
		}
	EOF
	cat >"$L2_ST/raddb/users" <<-EOF
		# l2sec lab RADIUS users (PAP and CHAP-MD5)
		alice	Cleartext-Password := "alice-pass"

		fixed	Cleartext-Password := "fixed-pass"
		        Framed-IP-Address = $L2_FIXED
	EOF
}

l2_l2tpns_config() {
	mkdir -p "$L2_ST/etc"
	cat >"$L2_ST/etc/startup-config" <<-EOF
		# l2sec lab l2tpns configuration, see startup-config(5)
		set debug 3
		set log_file "$L2_ST/l2tpns.log"
		set pid_file "$L2_ST/run/l2tpns.pid"
		set l2tp_secret "$L2_TUNNEL_SECRET"
		set bind_address $L2_SRV_IP
		set tundevicename "l2s-l2tpns"
		set iftun_address $L2_GW
		set peer_address $L2_GW
		set send_garp no
		set cli_bind_address 127.0.0.1
		set primary_dns $L2_PPP_DNS
		set secondary_dns 0.0.0.0
		set primary_radius 127.0.0.1
		set primary_radius_port 1812
		set radius_secret "$L2_RADIUS_SECRET"
		set radius_authtypes "chap,pap"
		set radius_accounting no
		set allow_duplicate_users yes
		set echo_timeout 10
		set idle_echo_timeout 60
		set ppp_keepalive yes
		set cluster_interface "lo"
		set cluster_hb_interval 5
		set cluster_hb_timeout 31
	EOF
	# the pool is 198.19.20.0/24 without the fixed user's address
	cat >"$L2_ST/etc/ip_pool" <<-EOF
		198.19.20.0/26
		198.19.20.64/27
		198.19.20.96/31
		198.19.20.98
		198.19.20.100/30
		198.19.20.104/29
		198.19.20.112/28
		198.19.20.128/25
	EOF
	echo "# no CLI users" >"$L2_ST/etc/users"
}

l2_up() {
	local i
	l2_pkgs
	l2_down quiet
	state_fresh "$L2_ST"
	ns_create "$L2_ST" "$L2_SRV_NS"
	ns_create "$L2_ST" "$L2_CLI_NS"
	veth_link "$L2_SRV_NS" "$L2_SRV_IF" "$L2_SRV_IP/24" "$L2_CLI_NS" "$L2_CLI_IF" "$L2_CLI_IP/24"
	no_route_out "$L2_SRV_NS" "$L2_CLI_NS"
	client_resolv "$L2_ST" "$L2_CLI_NS" "$L2_CLI_DNS"
	printf 'table inet l2sec_lab {\n chain output {\n  type filter hook output priority 0; policy accept;\n  ip daddr 224.0.0.0/4 drop\n }\n}\n' |
		ip netns exec "$L2_SRV_NS" nft -f - || die "nft (multicast drop rule) failed in $L2_SRV_NS"
	l2_radius_config
	l2_l2tpns_config

	daemon_start "$L2_ST" "$L2_SRV_NS" freeradius radius "$L2_ST/freeradius.out" \
		/usr/sbin/freeradius -f -d "$L2_ST/raddb" -n radiusd
	wait_udp "$L2_SRV_NS" 127.0.0.1:1812 100 || die "freeradius does not listen; see $L2_ST/radius.log $L2_ST/freeradius.out"

	# shellcheck disable=SC2016 # $1 expands in the inner shell
	daemon_start "$L2_ST" "$L2_SRV_NS" l2tpns lns "$L2_ST/l2tpns.out" \
		unshare --mount --propagation private -- /bin/sh -c \
		'mount --bind "$1" /etc/l2tpns && exec /usr/sbin/l2tpns -c /etc/l2tpns/startup-config' sh "$L2_ST/etc"
	wait_udp "$L2_SRV_NS" "$L2_SRV_IP:1701" 100 || die "l2tpns does not listen; see $L2_ST/l2tpns.log"
	for ((i = 0; i < 100; i++)); do
		grep -q 'declaring myself the master' "$L2_ST/l2tpns.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'declaring myself the master' "$L2_ST/l2tpns.log" || die "l2tpns did not become cluster master; see $L2_ST/l2tpns.log"
	say "l2tpns up: LNS $L2_SRV_IP ($L2_SRV_NS; UDP 1701), client $L2_CLI_IP ($L2_CLI_NS), gateway $L2_GW through the tunnel"
	say "  users alice/alice-pass (pool 198.19.20.0/24), fixed/fixed-pass ($L2_FIXED); PAP+CHAP; logs $L2_ST/l2tpns.log $L2_ST/radius.log"
}

l2_down() {
	[ -d "$L2_ST" ] || return 0
	daemons_stop "$L2_ST"
	netns_remove "$L2_ST"
	[ "${1:-}" = quiet ] || say "l2tpns down (logs kept in $L2_ST)"
}

l2_status() {
	lab_status_common l2tpns "$L2_ST" "$L2_SRV_NS" "$L2_SRV_NS:UDP:1701"
}
