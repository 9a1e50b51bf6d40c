# shellcheck shell=bash
# The Linux server stack in a VM: libreswan (IKEv1, kernel ESP in transport mode), xl2tpd (LNS,
# kernel L2TP) and pppd (kernel PPP), configured the way the setup-ipsec-vpn scripts do it.
# Our kernels lack ESP, L2TP and PPP, so the server runs in a qemu VM booting Debian 12's own
# kernel from an image this script builds (debootstrap, cached in $LX_CACHE).
#
#   l2s-lx-srv: bridge l2s-lx-br <- tap l2s-lx-tap (qemu; VM eth0 198.18.40.1/24)
#                              <- one veth per client namespace:
#   l2s-lx-cli 198.18.40.2  IPsec, conn l2tp-psk (encapsulation=yes: ESP in UDP 4500 without NAT), MS-CHAPv2
#   l2s-lx-raw 198.18.40.3  IPsec, conn l2tp-raw (encapsulation=auto: no NAT, so raw ESP, IP protocol 50); IPv6 on
#   l2s-lx-clr 198.18.40.4  plain L2TP: the VM's firewall lets this address reach UDP 1701 without IPsec
#   l2s-lx-md5 198.18.40.5  IPsec; xl2tpd's LNS "md5" (lac = this address) requires CHAP-MD5
#   l2s-lx-pap 198.18.40.6  IPsec; xl2tpd's LNS "pap" requires PAP
#   l2s-lx-agr 198.18.40.7  IPsec, conn l2tp-aggr: aggressive mode (aes256-sha2_256-modp2048 only)
#   l2s-lx-rky 198.18.40.8  IPsec, conn l2tp-rekey: the server rekeys the ESP SA itself (90 s lifetime)
#
# Every `up` draws a fresh PSK, user and password; $LX_ST/lab.env (mode 0600) holds them for the
# tests.  PPP: server 198.19.40.1, pools 198.19.40.10-99 (MS-CHAPv2), .100-149 (CHAP-MD5),
# .150-199 (PAP), DNS 198.19.40.53 and 198.19.40.54 (nothing answers), MTU/MRU 1280.
# In the VM: iperf3 -s (TCP 5201) and a sink on TCP 5001 that writes "<bytes> <sha256>" of each
# connection to $LX_ST/share/out/sink.txt.
#
# The VM runs under qemu's software emulation unless the machine has VMX/SVM KVM (a PVM-only KVM
# cannot run Debian's kernel): boot takes about a minute, ESP runs at tens of Mbit/s.

LX_ST=$LAB_STATE/linux
LX_CACHE=${LX_CACHE:-/var/cache/l2sec-lab/l2sec-linux}
LX_SRV_NS=l2s-lx-srv LX_BR=l2s-lx-br LX_TAP=l2s-lx-tap
LX_SRV_IP=198.18.40.1
# client namespaces: "name address"
LX_CLIENTS=("l2s-lx-cli 198.18.40.2" "l2s-lx-raw 198.18.40.3" "l2s-lx-clr 198.18.40.4"
	"l2s-lx-md5 198.18.40.5" "l2s-lx-pap 198.18.40.6" "l2s-lx-agr 198.18.40.7"
	"l2s-lx-rky 198.18.40.8")
LX_CLI_DNS=198.18.40.53
LX_PPP_SERVER=198.19.40.1 LX_PPP_DNS1=198.19.40.53 LX_PPP_DNS2=198.19.40.54
LX_MAC=52:54:00:12:28:01
LX_MEM=${LX_MEM:-512}
LX_BOOT_TIMEOUT=${LX_BOOT_TIMEOUT:-400}
LX_PKGS=(qemu-system-x86 debootstrap e2fsprogs iproute2 util-linux tcpdump)
# What the image holds; changing this list (or LX_IMG_RECIPE) rebuilds the image.
LX_IMG_PKGS=(systemd-sysv udev kmod iproute2 iptables procps iputils-ping netcat-openbsd
	libreswan bind9-host xl2tpd ppp iperf3 linux-image-amd64 initramfs-tools)
LX_IMG_RECIPE=1

lx_pkgs() { pkgs_ensure "${LX_PKGS[@]}"; }

lx_namespaces() {
	local c
	echo -n "$LX_SRV_NS"
	for c in "${LX_CLIENTS[@]}"; do echo -n " ${c%% *}"; done
	echo
}

# lx_image: the cached image (root.img, vmlinuz, initrd.img), built when missing or outdated.
lx_image() {
	local stamp root mirror size t0 log=$LX_CACHE/build.log
	stamp="recipe $LX_IMG_RECIPE: ${LX_IMG_PKGS[*]}"
	if [ -f "$LX_CACHE/stamp" ] && [ "$(cat "$LX_CACHE/stamp")" = "$stamp" ] &&
		[ -s "$LX_CACHE/root.img" ] && [ -s "$LX_CACHE/vmlinuz" ] && [ -s "$LX_CACHE/initrd.img" ]; then
		return 0
	fi
	mkdir -p "$LX_CACHE/debs"
	rm -f "$LX_CACHE/stamp" "$LX_CACHE/root.img"
	root=$LX_CACHE/root
	case "$root" in /var/cache/* | /tmp/*) rm -rf -- "$root" ;; *) die "refusing to wipe $root" ;; esac
	mirror=$(apt_mirror)
	t0=$SECONDS
	say "building the Linux server image (debootstrap bookworm from $mirror; a few minutes; log: $log)"
	: >"$log"
	debootstrap --variant=minbase --cache-dir="$LX_CACHE/debs" \
		--include="$(IFS=,; echo "${LX_IMG_PKGS[*]}")" bookworm "$root" "$mirror" >>"$log" 2>&1 ||
		{
			tail -n 20 "$log" >&2
			die "debootstrap failed; see $log"
		}
	lx_image_config "$root"
	local kernel initrd
	kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n 1)
	initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n 1)
	if [ -z "$kernel" ] || [ -z "$initrd" ]; then die "the image has no kernel or initrd; see $log"; fi
	cp "$kernel" "$LX_CACHE/vmlinuz"
	cp "$initrd" "$LX_CACHE/initrd.img"
	size=$(($(du -sm "$root" | cut -f1) * 13 / 10 + 200))
	mkfs.ext4 -q -F -L l2s-lx -d "$root" "$LX_CACHE/root.img" "${size}M" >>"$log" 2>&1 ||
		die "mkfs.ext4 -d failed; see $log"
	rm -rf -- "$root"
	echo "$stamp" >"$LX_CACHE/stamp"
	say "image built in $((SECONDS - t0)) s: $LX_CACHE/root.img (${size} MiB), kernel $(file -b "$LX_CACHE/vmlinuz" 2>/dev/null | grep -o 'version [^ ]*' || true)"
}

# lx_image_config ROOT: the parts of the guest that never change.  Everything of one run (role,
# addresses, credentials, server configs) comes from the 9p share "lab" mounted on /lab.
lx_image_config() {
	local r=$1 u
	echo l2s-lx >"$r/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 l2s-lx\n' >"$r/etc/hosts"
	printf '/dev/vda / ext4 rw,noatime 0 0\n' >"$r/etc/fstab"
	mkdir -p "$r/lab"
	# The run's services; Debian's own xl2tpd service is replaced by one that logs to the share.
	cat >"$r/etc/systemd/system/l2s-setup.service" <<-'EOF'
		[Unit]
		Description=l2sec lab: mount the share, install this run's configuration, network, firewall
		DefaultDependencies=no
		After=systemd-modules-load.service local-fs.target
		Before=network.target ipsec.service l2s-xl2tpd.service
		[Service]
		Type=oneshot
		RemainAfterExit=yes
		ExecStart=/bin/sh -c 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 lab /lab && cp -a /lab/etc/. /etc/ && exec /bin/sh /lab/setup.sh >/lab/out/setup.log 2>&1'
		[Install]
		WantedBy=multi-user.target
	EOF
	cat >"$r/etc/systemd/system/l2s-xl2tpd.service" <<-'EOF'
		[Unit]
		Description=l2sec lab: xl2tpd in the foreground, log on the share
		After=l2s-setup.service ipsec.service
		Requires=l2s-setup.service
		[Service]
		ExecStart=/bin/sh -c 'mkdir -p /run/xl2tpd && exec /usr/sbin/xl2tpd -D >>/lab/out/xl2tpd.log 2>&1'
		Restart=on-failure
		[Install]
		WantedBy=multi-user.target
	EOF
	cat >"$r/etc/systemd/system/l2s-run.service" <<-'EOF'
		[Unit]
		Description=l2sec lab: this run's programs (sink, iperf3) and the ready marker
		After=l2s-xl2tpd.service ipsec.service
		Requires=l2s-setup.service
		[Service]
		ExecStart=/bin/sh /lab/run.sh
		[Install]
		WantedBy=multi-user.target
	EOF
	cat >"$r/etc/systemd/system/l2s-journal.service" <<-'EOF'
		[Unit]
		Description=l2sec lab: the journal on the share
		After=l2s-setup.service
		Requires=l2s-setup.service
		[Service]
		ExecStart=/bin/sh -c 'exec journalctl -b -f -o short-monotonic >/lab/out/journal.log 2>&1'
		[Install]
		WantedBy=multi-user.target
	EOF
	for u in l2s-setup l2s-xl2tpd l2s-run l2s-journal; do
		ln -sf "/etc/systemd/system/$u.service" "$r/etc/systemd/system/multi-user.target.wants/$u.service"
	done
	# Units that only cost boot time here, and Debian's xl2tpd (ours replaces it).
	for u in xl2tpd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
		e2scrub_reap.service systemd-timesyncd.service getty@tty1.service serial-getty@ttyS0.service; do
		ln -sf /dev/null "$r/etc/systemd/system/$u"
	done
	# ipsec.service is enabled by the libreswan package; make sure.
	[ -e "$r/lib/systemd/system/ipsec.service" ] && ln -sf /lib/systemd/system/ipsec.service \
		"$r/etc/systemd/system/multi-user.target.wants/ipsec.service"
	return 0
}

# rand_hex N: N random bytes as hex.
rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# lx_guest_config SHARE: this run's server configuration (as setup-ipsec-vpn writes it, plus the
# lab's extra conn and LNS sections), network and firewall script, and programs.
lx_guest_config() {
	local s=$1
	mkdir -p "$s/etc/ppp" "$s/etc/xl2tpd" "$s/out"
	# libreswan: the scripts' conn "shared" + "l2tp-psk"; Debian's 4.10 needs ikev1-policy=accept
	# (it drops IKEv1 otherwise) and lacks modp1024, so the scripts' ";modp1024" entries are out.
	# The aggressive-mode conn names our port: with rightprotoport=17/%any, libreswan 4.10 aborts
	# (assertion in install_inbound_ipsec_sa) at the first aggressive-mode quick mode.
	cat >"$s/etc/ipsec.conf" <<-EOF
		version 2.0
		config setup
		  ikev1-policy=accept
		  virtual-private=%v4:10.0.0.0/8,%v4:192.168.0.0/16,%v4:172.16.0.0/12,%v4:!198.19.40.0/24
		  uniqueids=no
		  logfile=/lab/out/pluto.log
		  logappend=yes
		conn shared
		  left=$LX_SRV_IP
		  leftid=$LX_SRV_IP
		  right=%any
		  encapsulation=yes
		  authby=secret
		  pfs=no
		  rekey=no
		  keyingtries=5
		  dpddelay=30
		  dpdtimeout=120
		  dpdaction=clear
		  ikev2=never
		  ike=aes256-sha2,aes128-sha2,aes256-sha1,aes128-sha1
		  phase2alg=aes_gcm-null,aes128-sha1,aes256-sha1,aes256-sha2_512,aes128-sha2,aes256-sha2
		  ikelifetime=24h
		  salifetime=24h
		  sha2-truncbug=no
		conn l2tp-psk
		  auto=add
		  leftprotoport=17/1701
		  rightprotoport=17/%any
		  type=transport
		  phase2=esp
		  also=shared
		conn l2tp-raw
		  also=l2tp-psk
		  right=198.18.40.3
		  encapsulation=auto
		conn l2tp-aggr
		  also=l2tp-psk
		  right=198.18.40.7
		  aggressive=yes
		  ike=aes256-sha2_256-modp2048
		  rightprotoport=17/1701
		conn l2tp-rekey
		  also=l2tp-psk
		  right=198.18.40.8
		  rightprotoport=17/1701
		  rekey=yes
		  salifetime=90s
		  rekeymargin=40s
		  rekeyfuzz=0%
	EOF
	printf '%%any %%any : PSK 0s%s\n' "$(printf '%s' "$LX_PSK" | base64 -w0)" >"$s/etc/ipsec.secrets"
	chmod 0600 "$s/etc/ipsec.secrets"
	# xl2tpd: named LNS sections are matched by the peer's address before "default".
	cat >"$s/etc/xl2tpd/xl2tpd.conf" <<-EOF
		[global]
		port = 1701
		debug avp = yes
		debug network = yes
		debug state = yes
		debug tunnel = yes
		[lns md5]
		lac = 198.18.40.5
		ip range = 198.19.40.100-198.19.40.149
		local ip = $LX_PPP_SERVER
		require chap = yes
		refuse pap = yes
		require authentication = yes
		name = l2tpd
		pppoptfile = /etc/ppp/options.l2s-md5
		length bit = yes
		[lns pap]
		lac = 198.18.40.6
		ip range = 198.19.40.150-198.19.40.199
		local ip = $LX_PPP_SERVER
		require pap = yes
		refuse chap = yes
		require authentication = yes
		name = l2tpd
		pppoptfile = /etc/ppp/options.l2s-pap
		length bit = yes
		[lns default]
		ip range = 198.19.40.10-198.19.40.99
		local ip = $LX_PPP_SERVER
		require chap = yes
		refuse pap = yes
		require authentication = yes
		name = l2tpd
		pppoptfile = /etc/ppp/options.xl2tpd
		length bit = yes
	EOF
	local common
	common=$(
		cat <<-EOF
			ipcp-accept-local
			ipcp-accept-remote
			noccp
			auth
			mtu 1280
			mru 1280
			proxyarp
			lcp-echo-failure 4
			lcp-echo-interval 30
			connect-delay 5000
			ms-dns $LX_PPP_DNS1
			ms-dns $LX_PPP_DNS2
			debug
			logfile /lab/out/pppd.log
		EOF
	)
	printf '+mschap-v2\n%s\n' "$common" >"$s/etc/ppp/options.xl2tpd"
	printf 'require-chap\nrefuse-mschap-v2\nrefuse-mschap\n%s\n' "$common" >"$s/etc/ppp/options.l2s-md5"
	printf 'require-pap\n%s\n' "$common" >"$s/etc/ppp/options.l2s-pap"
	printf '"%s" l2tpd "%s" *\n' "$LX_USER" "$LX_PASS" >"$s/etc/ppp/chap-secrets"
	printf '"%s" * "%s" *\n' "$LX_USER" "$LX_PASS" >"$s/etc/ppp/pap-secrets"
	chmod 0600 "$s/etc/ppp/chap-secrets" "$s/etc/ppp/pap-secrets"
	# network, kernel modules, and the scripts' firewall: L2TP only through IPsec, except for
	# the plain-L2TP client's address
	cat >"$s/setup.sh" <<-EOF
		set -x
		ip link set lo up
		ip addr add $LX_SRV_IP/24 dev eth0
		ip link set eth0 up
		for m in af_key xfrm_user esp4 l2tp_core l2tp_netlink l2tp_ppp ppp_generic pppox ppp_async ppp_synctty xt_policy; do
		  modprobe \$m || echo "no module \$m"
		done
		iptables -A INPUT -p udp --dport 1701 -m policy --dir in --pol ipsec -j ACCEPT
		iptables -A INPUT -p udp --dport 1701 -s 198.18.40.4 -j ACCEPT
		iptables -A INPUT -p udp --dport 1701 -j DROP
		iptables -S
	EOF
	# the sink writes "<bytes> <sha256>" per connection; the ready marker appears once pluto has
	# loaded both conns and xl2tpd listens
	cat >"$s/run.sh" <<-'EOF'
		iperf3 -s >/lab/out/iperf3.log 2>&1 &
		( while :; do
		    nc -l 5001 >/tmp/sink.bin </dev/null || sleep 1
		    echo "$(stat -c %s /tmp/sink.bin) $(sha256sum /tmp/sink.bin | cut -d' ' -f1)" >/lab/out/sink.tmp
		    mv /lab/out/sink.tmp /lab/out/sink.txt
		  done ) &
		i=0
		while [ $i -lt 300 ]; do
		  if ipsec whack --status 2>/dev/null | grep -q '"l2tp-rekey"' &&
		     ss -Hlun 'sport = :1701' | grep -q . ; then
		    ipsec whack --status >/lab/out/ipsec-status.txt 2>&1
		    touch /lab/out/ready
		    break
		  fi
		  i=$((i + 1)); sleep 1
		done
		wait
	EOF
}

lx_up() {
	local c ns ip n=0 br_if
	lx_pkgs
	lx_down quiet
	lx_image
	state_fresh "$LX_ST"
	LX_PSK=$(rand_hex 16) LX_USER=u$(rand_hex 3) LX_PASS=$(rand_hex 12)
	(
		umask 077
		cat >"$LX_ST/lab.env" <<-EOF
			LX_SERVER=$LX_SRV_IP
			LX_PSK=$LX_PSK
			LX_USER=$LX_USER
			LX_PASS=$LX_PASS
			LX_PPP_SERVER=$LX_PPP_SERVER
			LX_PPP_DNS1=$LX_PPP_DNS1
			LX_PPP_DNS2=$LX_PPP_DNS2
			LX_SINK=$LX_ST/share/out/sink.txt
		EOF
	)
	lx_guest_config "$LX_ST/share"
	ns_create "$LX_ST" "$LX_SRV_NS"
	ip -n "$LX_SRV_NS" link add "$LX_BR" type bridge
	ip -n "$LX_SRV_NS" link set "$LX_BR" up
	ip -n "$LX_SRV_NS" tuntap add dev "$LX_TAP" mode tap
	ip -n "$LX_SRV_NS" link set "$LX_TAP" master "$LX_BR" up
	for c in "${LX_CLIENTS[@]}"; do
		ns=${c%% *} ip=${c##* } n=$((n + 1)) br_if=l2s-lx-p$n
		ns_create "$LX_ST" "$ns"
		veth_link "$ns" "${ns}0" "$ip/24" "$LX_SRV_NS" "$br_if" -
		ip -n "$LX_SRV_NS" link set "$br_if" master "$LX_BR"
		client_resolv "$LX_ST" "$ns" "$LX_CLI_DNS"
	done
	# IPv6 on in the raw-ESP client: its test negotiates IPV6CP and pings over link-local
	ip netns exec l2s-lx-raw sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
	# shellcheck disable=SC2046
	no_route_out $(lx_namespaces)
	lx_accel
	daemon_start "$LX_ST" "$LX_SRV_NS" qemu-system-x86 vm "$LX_ST/qemu.log" \
		qemu-system-x86_64 -name l2s-lx "${LX_ACCEL_ARGS[@]}" -smp 1 -m "$LX_MEM" \
		-display none -monitor none -serial "file:$LX_ST/console.log" -no-reboot \
		-kernel "$LX_CACHE/vmlinuz" -initrd "$LX_CACHE/initrd.img" \
		-append "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 quiet systemd.show_status=0" \
		-drive "file=$LX_CACHE/root.img,if=virtio,format=raw,snapshot=on" \
		-netdev "tap,id=n0,ifname=$LX_TAP,script=no,downscript=no" \
		-device "virtio-net-pci,netdev=n0,mac=$LX_MAC" \
		-virtfs "local,path=$LX_ST/share,mount_tag=lab,security_model=none,id=lab"
	date +%s >"$LX_ST/started"
	say "Linux server VM booting (${LX_ACCEL_ARGS[*]}); console $LX_ST/console.log"
}

# qemu acceleration: KVM only where it can run a standard guest (VMX/SVM present and not PVM).
lx_accel() {
	if [ -c /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && ! grep -q '^kvm_pvm ' /proc/modules 2>/dev/null; then
		# shellcheck disable=SC2034 # read by lx_up
		LX_ACCEL_ARGS=(-enable-kvm -cpu host)
	else
		LX_ACCEL_ARGS=(-accel "tcg,thread=multi" -cpu max)
	fi
}

# lx_wait: wait until the VM reports pluto and xl2tpd ready and answers ping.
lx_wait() {
	local i t0 pid
	[ -f "$LX_ST/pids" ] || die "Linux server VM not started"
	t0=$(cat "$LX_ST/started")
	pid=$(awk '$3 == "vm" {print $1}' "$LX_ST/pids")
	while [ ! -e "$LX_ST/share/out/ready" ]; do
		pid_is "$pid" qemu-system-x86 || {
			tail -n 20 "$LX_ST/console.log" "$LX_ST/qemu.log" >&2
			die "the Linux server VM stopped; see $LX_ST/console.log"
		}
		[ $(($(date +%s) - t0)) -lt "$LX_BOOT_TIMEOUT" ] || {
			tail -n 20 "$LX_ST/console.log" >&2
			die "the Linux server VM was not ready within $LX_BOOT_TIMEOUT s; see $LX_ST/console.log and $LX_ST/share/out/"
		}
		sleep 1
	done
	for ((i = 0; i < 30; i++)); do
		ip netns exec l2s-lx-cli ping -c 1 -W 1 "$LX_SRV_IP" >/dev/null 2>&1 && break
	done
	[ "$i" -lt 30 ] || die "the Linux server VM does not answer ping from l2s-lx-cli"
	say "Linux server up in $(($(date +%s) - t0)) s: libreswan + xl2tpd + pppd at $LX_SRV_IP (VM in $LX_SRV_NS), clients $(lx_namespaces | cut -d' ' -f2-); credentials in $LX_ST/lab.env; logs $LX_ST/share/out/"
}

lx_down() {
	[ -d "$LX_ST" ] || return 0
	daemons_stop "$LX_ST"
	netns_remove "$LX_ST"
	[ "${1:-}" = quiet ] || say "Linux server down (logs kept in $LX_ST; image cached in $LX_CACHE)"
}

lx_status() {
	lab_status_common linux "$LX_ST" "$LX_SRV_NS" "$LX_SRV_NS:UDP:"
}
