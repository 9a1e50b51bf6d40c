# shellcheck shell=bash
# strongSwan charon (5.9, kernel-libipsec) as a strict IKEv1 main/quick mode responder.
#
#   l2s-ss-cli 198.18.10.2/24 <--veth--> l2s-ss-srv 198.18.10.1/24 (charon UDP 500/4500)
#
# AUTH=psk (`AUTH=psk up strongswan`): PSK l2sec-lab-psk, server ID = its IP address.
# AUTH=cert (`up strongswan-cert`): RSA signatures with a fresh PKI in $SS_ST/pki on every up
#   (the server's ID is its certificate DN "C=XX, O=l2sec lab, CN=server"; any client
#   certificate from the lab CA is accepted, the client sends it in MM5).
# AUTH=both (default): both connections; charon picks one by the auth method of the client's proposal.
#
# libipsec cannot hold a transport-mode SA and always encapsulates ESP in UDP, so charon fakes
# NAT-D (the client floats to UDP 4500) and the L2TP child is a TUNNEL-mode child with
# host-to-host selectors 198.18.10.1[udp/1701] <-> client[udp/any].  MODE=transport makes the
# child transport mode: quick mode then gets QM2, but the SA install fails after QM3.
# SS_IKE_LOG=4 logs IKE keys to charon.log (for decrypting captures).
#
# charon runs with its own strongswan.conf (STRONGSWAN_CONF) and a private /run (its pid file
# path is compiled in), so it cannot clash with a system-wide strongSwan.  libipsec routes the
# peer through its TUN device; IKE packets carry fwmark 0x42 so they bypass that route.

SS_ST=$LAB_STATE/strongswan
SS_SRV_NS=l2s-ss-srv SS_CLI_NS=l2s-ss-cli SS_SRV_IF=l2s-ss-srv0 SS_CLI_IF=l2s-ss-cli0
SS_SRV_IP=198.18.10.1 SS_CLI_IP=198.18.10.2 SS_CLI_DNS=198.18.10.53
SS_PSK=l2sec-lab-psk
SS_SERVER_DN="C=XX, O=l2sec lab, CN=server"
SS_CLIENT_DN="C=XX, O=l2sec lab, CN=client"
SS_CA_DN="C=XX, O=l2sec lab, CN=l2sec lab CA"
SS_PKGS=(strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins openssl iproute2 util-linux)
SS_IKE_PROPOSALS=aes256-sha256-modp2048,aes256-sha1-modp2048,aes128-sha1-modp2048,aes256-sha1-ecp384,aes128-sha1-ecp256,aes256-sha1-modp1024,aes128-sha1-modp1024,3des-sha1-modp1024
SS_ESP_PROPOSALS=aes256-sha1,aes128-sha1,aes128-sha256,aes256gcm16,aes128gcm16,3des-sha1

ss_pkgs() { pkgs_ensure "${SS_PKGS[@]}"; }

# openssl subject string from "C=XX, O=..., CN=..."
ss_subj() { printf '/%s' "$(printf '%s' "$1" | sed 's/, /\//g')"; }

# ss_mkpki DIR: a throw-away PKI.  RSA 2048, SHA-256, random serials.
#   ca.pem ca.key                 lab CA ($SS_CA_DN)
#   server.pem server.key         $SS_SERVER_DN, SAN IP:$SS_SRV_IP, EKU serverAuth + IKE intermediate
#   client.pem client.key         $SS_CLIENT_DN, EKU clientAuth; client.key is PKCS#8,
#   client-rsa.key client.der     the same key as PKCS#1, the certificate as DER
#   rogue/ca.pem rogue/client.pem rogue/client.key  the same client DN from a CA the server
#                                 does not trust (negative tests)
ss_mkpki() {
	local dir=$1 ext
	rm -rf -- "$dir"
	mkdir -p "$dir/rogue"
	ext=$dir/extensions.cnf
	cat >"$ext" <<-EOF
		[req]
		distinguished_name = dn
		[dn]
		[ca]
		basicConstraints = critical, CA:TRUE
		keyUsage = critical, keyCertSign, cRLSign
		subjectKeyIdentifier = hash
		[server]
		basicConstraints = critical, CA:FALSE
		keyUsage = critical, digitalSignature, keyEncipherment
		extendedKeyUsage = serverAuth, 1.3.6.1.5.5.8.2.2
		subjectAltName = IP:$SS_SRV_IP
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid
		[client]
		basicConstraints = critical, CA:FALSE
		keyUsage = critical, digitalSignature, keyEncipherment
		extendedKeyUsage = clientAuth
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid
	EOF
	_ss_ca "$dir" "$SS_CA_DN"
	_ss_ca "$dir/rogue" "C=XX, O=rogue lab, CN=rogue CA"
	_ss_leaf "$dir" server "$SS_SERVER_DN" server "$ext"
	_ss_leaf "$dir" client "$SS_CLIENT_DN" client "$ext"
	_ss_leaf "$dir/rogue" client "$SS_CLIENT_DN" client "$ext"
	openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" "$dir/client.pem" >/dev/null ||
		die "the fresh lab PKI does not verify"
	chmod 0600 "$dir"/*.key "$dir"/rogue/*.key
	rm -f "$dir"/*.csr "$dir"/rogue/*.csr
}
_ss_serial() { echo "0x4$(openssl rand -hex 8 | cut -c2-)"; }
_ss_ca() { # DIR DN
	openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1/ca.key"
	openssl req -x509 -new -key "$1/ca.key" -subj "$(ss_subj "$2")" -sha256 -days 3650 \
		-set_serial "$(_ss_serial)" -extensions ca -config "$ext" -out "$1/ca.pem" 2>/dev/null ||
		die "openssl: CA $2 failed"
}
_ss_leaf() { # DIR NAME DN SECTION EXTFILE
	openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1/$2.key"
	openssl req -new -key "$1/$2.key" -subj "$(ss_subj "$3")" -out "$1/$2.csr" 2>/dev/null
	openssl x509 -req -in "$1/$2.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -sha256 -days 365 \
		-set_serial "$(_ss_serial)" -extfile "$5" -extensions "$4" -out "$1/$2.pem" 2>/dev/null ||
		die "openssl: certificate $3 failed"
	openssl rsa -in "$1/$2.key" -traditional -out "$1/$2-rsa.key" 2>/dev/null
	openssl x509 -in "$1/$2.pem" -outform DER -out "$1/$2.der"
}

ss_write_config() {
	local auth=$1 mode=$2 d=$SS_ST/charon
	mkdir -p "$d/run" "$d/x509" "$d/x509ca" "$d/x509ocsp" "$d/x509aa" "$d/x509ac" "$d/x509crl" "$d/pubkey" "$d/private" "$d/rsa" "$d/ecdsa" "$d/bliss" "$d/pkcs8" "$d/pkcs12"
	cat >"$d/strongswan.conf" <<-EOF
		# l2sec lab: charon as IKEv1 responder (AUTH=$auth MODE=$mode)
		charon {
			load = random nonce openssl aes sha1 sha2 hmac md5 gmp pem pkcs1 pkcs8 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici
			install_routes = yes
			retransmit_tries = 3
			retransmit_timeout = 2.0
			plugins {
				vici { socket = unix://$d/run/charon.vici }
				kernel-libipsec { allow_peer_ts = yes }
				socket-default { fwmark = 0x42 }
				kernel-netlink { fwmark = !0x42 }
			}
			filelog {
				lab {
					path = $SS_ST/charon.log
					time_format = %H:%M:%S
					append = no
					flush_line = yes
					default = 1
					ike = ${SS_IKE_LOG:-2}
					cfg = 2
					knl = 1
					esp = 1
					enc = 1
				}
			}
			syslog { daemon { default = -1 } }
		}
		swanctl {
			load = pem pkcs1 pkcs8 x509 pubkey openssl random
		}
	EOF
	local child
	child=$(
		cat <<-EOF
			children {
			  l2tp {
			    mode = $mode
			    local_ts = dynamic[udp/1701]
			    remote_ts = dynamic[udp]
			    esp_proposals = $SS_ESP_PROPOSALS
			    rekey_time = 0
			  }
			}
		EOF
	)
	{
		echo "# l2sec lab: IKEv1 main mode responder (AUTH=$auth)"
		echo "connections {"
		if [ "$auth" != cert ]; then
			cat <<-EOF
				l2tp-psk {
				  version = 1
				  aggressive = no
				  proposals = $SS_IKE_PROPOSALS
				  local_addrs = $SS_SRV_IP
				  remote_addrs = %any
				  rekey_time = 0
				  dpd_delay = 0
				  local { auth = psk
				    id = $SS_SRV_IP }
				  remote { auth = psk }
				  $child
				}
			EOF
		fi
		if [ "$auth" != psk ]; then
			cat <<-EOF
				l2tp-cert {
				  version = 1
				  aggressive = no
				  proposals = $SS_IKE_PROPOSALS
				  local_addrs = $SS_SRV_IP
				  remote_addrs = %any
				  rekey_time = 0
				  dpd_delay = 0
				  send_cert = always
				  local { auth = pubkey
				    certs = server.pem }
				  remote { auth = pubkey
				    cacerts = ca.pem }
				  $child
				}
			EOF
		fi
		echo "}"
		printf 'secrets {\n  ike-lab { secret = "%s" }\n}\n' "$SS_PSK"
	} >"$d/swanctl.conf"
	if [ "$auth" != psk ]; then
		cp "$SS_ST/pki/server.pem" "$d/x509/server.pem"
		cp "$SS_ST/pki/server.key" "$d/private/server.key"
		cp "$SS_ST/pki/ca.pem" "$d/x509ca/ca.pem"
	fi
}

ss_up() {
	local auth=${AUTH:-both} mode=${MODE:-tunnel} d i
	case "$auth" in psk | cert | both) ;; *) die "AUTH must be psk, cert or both" ;; esac
	case "$mode" in tunnel | transport) ;; *) die "MODE must be tunnel or transport" ;; esac
	ss_pkgs
	ss_down quiet
	state_fresh "$SS_ST"
	d=$SS_ST/charon
	[ "$auth" = psk ] || ss_mkpki "$SS_ST/pki"
	ns_create "$SS_ST" "$SS_SRV_NS"
	ns_create "$SS_ST" "$SS_CLI_NS"
	veth_link "$SS_SRV_NS" "$SS_SRV_IF" "$SS_SRV_IP/24" "$SS_CLI_NS" "$SS_CLI_IF" "$SS_CLI_IP/24"
	no_route_out "$SS_SRV_NS" "$SS_CLI_NS"
	client_resolv "$SS_ST" "$SS_CLI_NS" "$SS_CLI_DNS"
	ss_write_config "$auth" "$mode"
	# shellcheck disable=SC2016 # $1 expands in the inner shell
	daemon_start "$SS_ST" "$SS_SRV_NS" charon responder "$SS_ST/charon.out" \
		env STRONGSWAN_CONF="$d/strongswan.conf" \
		unshare --mount --propagation private -- /bin/sh -c \
		'mount --bind "$1" /run && exec /usr/lib/ipsec/charon' sh "$d/run"
	for ((i = 0; i < 100; i++)); do
		[ -S "$d/run/charon.vici" ] && break
		sleep 0.1
	done
	[ -S "$d/run/charon.vici" ] || die "charon did not open its vici socket; see $SS_ST/charon.log"
	SWANCTL_DIR=$d STRONGSWAN_CONF=$d/strongswan.conf swanctl --load-all --noprompt \
		--file "$d/swanctl.conf" --uri "unix://$d/run/charon.vici" >"$SS_ST/swanctl-load.log" 2>&1 ||
		die "swanctl --load-all failed; see $SS_ST/swanctl-load.log"
	grep -q "loaded connection 'l2tp-" "$SS_ST/swanctl-load.log" || die "no connection loaded; see $SS_ST/swanctl-load.log"
	wait_udp "$SS_SRV_NS" "0.0.0.0:500" 50 || wait_udp "$SS_SRV_NS" "*:500" 50 || die "charon does not listen on UDP 500"
	echo "AUTH=$auth MODE=$mode" >"$SS_ST/mode"
	say "strongswan up: responder $SS_SRV_IP ($SS_SRV_NS; UDP 500/4500), client $SS_CLI_IP ($SS_CLI_NS); AUTH=$auth, child $mode udp/1701"
	[ "$auth" = cert ] || say "  PSK $SS_PSK (server ID $SS_SRV_IP)"
	if [ "$auth" != psk ]; then
		say "  PKI $SS_ST/pki: CA ca.pem; client client.pem + client.key (PKCS#8) / client-rsa.key (PKCS#1), ID \"$SS_CLIENT_DN\""
		say "  server ID \"$SS_SERVER_DN\"; untrusted client cert: rogue/client.pem + rogue/client.key"
	fi
	say "  log $SS_ST/charon.log; SAs: STRONGSWAN_CONF=$d/strongswan.conf swanctl --list-sas --uri unix://$d/run/charon.vici"
}

ss_down() {
	[ -d "$SS_ST" ] || return 0
	daemons_stop "$SS_ST"
	rm -f "$SS_ST/charon/run/charon.vici" "$SS_ST/charon/run/charon.pid"
	netns_remove "$SS_ST"
	[ "${1:-}" = quiet ] || say "strongswan down (logs kept in $SS_ST)"
}

ss_status() {
	lab_status_common strongswan "$SS_ST" "$SS_SRV_NS" "$SS_SRV_NS:UDP:500,4500"
}
