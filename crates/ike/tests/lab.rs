//! Main mode + quick mode against the project lab's real servers (run with `L2SEC_LAB=1`, as root).
//!
//! The SoftEther tests prove the negotiated keys: an L2TP SCCRQ goes out through the ESP SA
//! (l2sec-esp, UDP-encapsulated transport mode) and the server's SCCRP comes back through it;
//! the rekey test does the same again on the replacement SA. Every test ends its L2TP tunnel
//! with a StopCCN (SoftEther wedges after clients that vanish) and deletes its SAs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use l2sec_crypto::{OsRng, Policy};
use l2sec_esp::{NEXT_HEADER_UDP, NON_ESP_MARKER, Sa, SaConfig, Udp4500, classify_udp4500, udp};
use l2sec_ike::{Auth, CertAuth, Config, Error, EspMode, Event, IkePort, Initiator, RemoteId};
use l2sec_labutil::topo;

const L2TP_PORT: u16 = 1701;

/// One IKE session on real sockets (ephemeral source ports, so tests running concurrently in
/// the same namespace do not collide), with the ESP SAs it negotiated.
struct Session {
    ike: Initiator,
    s500: UdpSocket,
    s4500: UdpSocket,
    server: IpAddr,
    local: Ipv4Addr,
    /// Newest SA first; older ones stay for inbound traffic until deleted.
    sas: Vec<Sa>,
    phase1: String,
    phase2: String,
    rekeys: u32,
    deleted: Vec<u32>,
    tun: Option<Tunnel>,
    closed: bool,
    failure: Option<Error>,
}

impl Session {
    /// Enters `ns` (for this thread), runs the initiator until the first ESP SA is ready.
    fn connect(ns: &str, server: IpAddr, cfg: Config) -> Session {
        match Self::try_connect(ns, server, cfg) {
            Ok(s) => s,
            Err(e) => panic!("ike failed: {e} (hint: {:?})", e.hint()),
        }
    }

    /// Like [`Session::connect`], returning the initiator's terminal error.
    fn try_connect(ns: &str, server: IpAddr, cfg: Config) -> Result<Session, Error> {
        l2sec_labutil::enter_netns(ns).expect("enter lab netns");
        let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
        probe.connect((server, 500)).unwrap();
        let IpAddr::V4(local) = probe.local_addr().unwrap().ip() else {
            panic!("lab addresses are ipv4")
        };
        let s500 = UdpSocket::bind((local, 0)).unwrap();
        let s4500 = UdpSocket::bind((local, 0)).unwrap();
        for s in [&s500, &s4500] {
            s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        }
        let natt_local = s4500.local_addr().unwrap().port();
        let ike = Initiator::new(
            cfg,
            s500.local_addr().unwrap(),
            SocketAddr::new(server, 500),
            (natt_local, 4500),
            Box::new(OsRng),
            Instant::now(),
        )
        .unwrap();
        let mut s = Session {
            ike,
            s500,
            s4500,
            server,
            local,
            sas: Vec::new(),
            phase1: String::new(),
            phase2: String::new(),
            rekeys: 0,
            deleted: Vec::new(),
            tun: None,
            closed: false,
            failure: None,
        };
        let deadline = Instant::now() + Duration::from_secs(45);
        while s.sas.is_empty() {
            assert!(Instant::now() < deadline, "no esp sa within 45 s");
            s.step();
            if let Some(e) = s.failure.take() {
                s.closed = true;
                return Err(e);
            }
        }
        Ok(s)
    }

    fn send_ike(&self, port: IkePort, data: &[u8], keepalive: bool) {
        match port {
            IkePort::Ike => self.s500.send_to(data, (self.server, 500)).unwrap(),
            IkePort::NatT if keepalive => self.s4500.send_to(data, (self.server, 4500)).unwrap(),
            IkePort::NatT => {
                let mut d = NON_ESP_MARKER.to_vec();
                d.extend_from_slice(data);
                self.s4500.send_to(&d, (self.server, 4500)).unwrap()
            }
        };
    }

    fn install(&mut self, cfg: &SaConfig) {
        let sa = Sa::new(cfg, Policy::Legacy, &mut OsRng).expect("esp accepts the ike hand-off");
        self.sas.insert(0, sa);
    }

    /// One round: IKE output, events, timers, and at most one datagram per socket. Returns
    /// the L2TP payload of an ESP packet if one arrived.
    fn step(&mut self) -> Option<Vec<u8>> {
        let now = Instant::now();
        while let Some(t) = self.ike.poll_transmit(now) {
            self.send_ike(t.port, &t.data, t.keepalive);
        }
        while let Some(ev) = self.ike.poll_event() {
            match ev {
                Event::Phase1Done { proposal, nat, .. } => {
                    assert!(
                        nat.encap,
                        "lab servers fake nat-d, so we must float to 4500"
                    );
                    self.phase1 = proposal;
                }
                Event::ChildSaReady {
                    sa,
                    proposal,
                    rekey,
                    ..
                } => {
                    self.rekeys += u32::from(rekey);
                    self.phase2 = proposal;
                    self.install(&sa);
                }
                Event::ChildSaDeleted { inbound_spi } => {
                    self.deleted.push(inbound_spi);
                    self.sas.retain(|s| s.spi_in() != inbound_spi);
                }
                Event::Failed(e) if self.sas.is_empty() => self.failure = Some(e),
                Event::Failed(e) => panic!("ike failed: {e} (hint: {:?})", e.hint()),
                Event::Warning(w) => eprintln!("ike warning: {w}"),
                _ => {}
            }
        }
        if self.ike.poll_timeout().is_some_and(|t| t <= now) {
            self.ike.handle_timeout(now);
        }
        // Volume limits of the ESP SAs ask IKE for a rekey.
        for sa in &mut self.sas {
            while let Some(e) = sa.poll_event() {
                eprintln!("esp event: {e:?}");
                self.ike.rekey_child(now);
            }
        }
        let mut buf = [0u8; 65536];
        if let Ok((n, _)) = self.s500.recv_from(&mut buf) {
            self.ike
                .handle_datagram(Instant::now(), IkePort::Ike, &buf[..n]);
        }
        let Ok((n, _)) = self.s4500.recv_from(&mut buf) else {
            return None;
        };
        match classify_udp4500(&buf[..n]) {
            Ok(Udp4500::Ike(m)) => {
                self.ike.handle_datagram(Instant::now(), IkePort::NatT, m);
                None
            }
            Ok(Udp4500::Esp(p)) => self.open_esp(&mut p.to_vec()),
            Ok(Udp4500::Keepalive) | Err(_) => None,
        }
    }

    fn open_esp(&mut self, pkt: &mut [u8]) -> Option<Vec<u8>> {
        let spi = l2sec_esp::peek_spi(pkt)?;
        let IpAddr::V4(server) = self.server else {
            return None;
        };
        let local = self.local;
        let sa = self.sas.iter_mut().find(|s| s.spi_in() == spi)?;
        let opened = match sa.open(pkt) {
            Ok(o) => o,
            Err(e) => panic!("esp packet on spi {spi:#x} does not open: {e}"),
        };
        assert_eq!(opened.next_header, NEXT_HEADER_UDP);
        let dgram = &pkt[opened.payload];
        let inner = udp::parse(dgram, sa.rx_checksum_check(server, local)).expect("inner udp");
        assert_eq!((inner.src_port, inner.dst_port), (L2TP_PORT, L2TP_PORT));
        Some(dgram[inner.payload].to_vec())
    }

    /// Seals one L2TP message (UDP 1701 -> 1701) with the newest SA and sends it.
    fn send_l2tp(&mut self, payload: &[u8]) {
        let IpAddr::V4(server) = self.server else {
            unreachable!("lab addresses are ipv4")
        };
        let local = self.local;
        let sa = self.sas.first_mut().expect("an esp sa");
        let hl = sa.header_len();
        let len = udp::HEADER_LEN + payload.len();
        let mut buf = vec![0u8; hl + sa.overhead(len) + len];
        buf[hl + udp::HEADER_LEN..hl + len].copy_from_slice(payload);
        let ck = sa.tx_checksum(local, server);
        udp::write_header(&mut buf[hl..], L2TP_PORT, L2TP_PORT, payload.len(), ck);
        let n = sa.seal(&mut buf, len, NEXT_HEADER_UDP).expect("seal");
        self.s4500
            .send_to(&buf[..n], (self.server, 4500))
            .expect("send esp");
    }

    /// Steps until an L2TP message arrives through ESP or `within` passes.
    fn recv_l2tp(&mut self, within: Duration) -> Option<Vec<u8>> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(m) = self.step() {
                return Some(m);
            }
        }
        None
    }

    /// Sends the deletes (ESP, then ISAKMP) once and flushes them; returns how many went out.
    fn close_ike(&mut self) -> usize {
        if self.closed {
            return 0;
        }
        self.closed = true;
        let now = Instant::now();
        self.ike.close(now);
        let mut deletes = 0;
        while let Some(t) = self.ike.poll_transmit(now) {
            deletes += usize::from(!t.keepalive);
            self.send_ike(t.port, &t.data, t.keepalive);
        }
        deletes
    }

    /// Ends the session: the tunnel must be stopped; ESP and ISAKMP deletes go out.
    fn close(mut self) {
        assert!(self.tun.is_none(), "stop the tunnel first");
        assert!(self.close_ike() >= 2, "esp and isakmp deletes sent");
    }
}

// ---------------------------------------------------------------- a minimal L2TP LAC

const MSG_SCCRQ: u16 = 1;
const MSG_SCCRP: u16 = 2;
const MSG_SCCCN: u16 = 3;
const MSG_STOPCCN: u16 = 4;
const MSG_HELLO: u16 = 6;

fn avp(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&(0x8000 | (6 + value.len()) as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(value);
}

/// An L2TPv2 control message (T, L, S bits): header then AVPs.
fn control(tunnel: u16, ns: u16, nr: u16, avps: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + avps.len());
    m.extend_from_slice(&0xC802u16.to_be_bytes());
    m.extend_from_slice(&((12 + avps.len()) as u16).to_be_bytes());
    m.extend_from_slice(&tunnel.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&ns.to_be_bytes());
    m.extend_from_slice(&nr.to_be_bytes());
    m.extend_from_slice(avps);
    m
}

/// A parsed control message: tunnel id, Ns, Nr, message type (None for a ZLB), AVPs.
#[derive(Debug)]
struct Ctl {
    tunnel: u16,
    ns: u16,
    nr: u16,
    kind: Option<u16>,
    avps: Vec<(u16, Vec<u8>)>,
}

fn parse_control(m: &[u8]) -> Option<Ctl> {
    let be = |i: usize| m.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let flags = be(0)?;
    if flags & 0xC80F != 0xC802 {
        return None; // data message or not L2TPv2 with length and sequence
    }
    let len = usize::from(be(2)?).min(m.len());
    let (tunnel, ns, nr) = (be(4)?, be(8)?, be(10)?);
    let mut avps = Vec::new();
    let mut i = 12;
    while i + 6 <= len {
        let alen = usize::from(be(i)? & 0x3FF);
        if alen < 6 || i + alen > len {
            return None;
        }
        if be(i + 2)? == 0 {
            avps.push((be(i + 4)?, m[i + 6..i + alen].to_vec()));
        }
        i += alen;
    }
    let kind = avps
        .first()
        .filter(|(t, v)| *t == 0 && v.len() == 2)
        .map(|(_, v)| u16::from_be_bytes([v[0], v[1]]));
    Some(Ctl {
        tunnel,
        ns,
        nr,
        kind,
        avps,
    })
}

/// Our side of the L2TP control connection carried through the ESP SA.
struct Tunnel {
    ours: u16,
    theirs: u16,
    ns: u16,
    nr: u16,
}

/// A fresh tunnel id every run (SoftEther keeps old tunnels alive for a minute).
fn new_tunnel_id() -> u16 {
    let mut b = [0u8; 2];
    l2sec_crypto::Rng::fill(&mut OsRng, &mut b);
    u16::from_be_bytes(b) | 0x8000
}

fn stopccn_avps(ours: u16) -> Vec<u8> {
    let mut extra = Vec::new();
    avp(&mut extra, 9, &ours.to_be_bytes());
    avp(&mut extra, 1, &1u16.to_be_bytes()); // result 1: general request to clear
    extra
}

impl Session {
    /// Sends SCCRQ through ESP and waits for the SCCRP that proves both directions' keys.
    /// One tunnel per session: SoftEther wedges on a second SCCRQ from the same port while
    /// a tunnel is open (lab/softether/NOTES.md).
    fn open_tunnel(&mut self) {
        assert!(self.tun.is_none(), "one l2tp tunnel per session");
        let ours = new_tunnel_id();
        let mut avps = Vec::new();
        avp(&mut avps, 0, &MSG_SCCRQ.to_be_bytes());
        avp(&mut avps, 2, &[1, 0]); // protocol version 1.0
        avp(&mut avps, 7, b"l2sec-ike-lab-test"); // host name
        avp(&mut avps, 3, &3u32.to_be_bytes()); // framing capabilities
        avp(&mut avps, 9, &ours.to_be_bytes()); // assigned tunnel id
        avp(&mut avps, 10, &4u16.to_be_bytes()); // receive window
        let sccrq = control(0, 0, 0, &avps);
        for _ in 0..3 {
            self.send_l2tp(&sccrq);
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                let Some(c) = self
                    .recv_l2tp(Duration::from_millis(200))
                    .and_then(|m| parse_control(&m))
                else {
                    continue;
                };
                if c.tunnel != ours || c.kind != Some(MSG_SCCRP) {
                    continue;
                }
                let theirs = c
                    .avps
                    .iter()
                    .find(|(k, v)| *k == 9 && v.len() == 2)
                    .map(|(_, v)| u16::from_be_bytes([v[0], v[1]]))
                    .expect("sccrp assigns a tunnel id");
                assert_eq!(c.ns, 0);
                assert_ne!(theirs, 0);
                self.tun = Some(Tunnel {
                    ours,
                    theirs,
                    ns: 1,
                    nr: 1,
                });
                return;
            }
        }
        panic!("no sccrp through the esp sa: the keys do not match or esp is dropped");
    }

    /// Acks a server message of our tunnel (ZLB) if it carries a message.
    fn on_control(&mut self, c: &Ctl) {
        let Some(t) = self.tun.as_mut() else { return };
        if c.tunnel != t.ours || c.kind.is_none() {
            return;
        }
        if c.ns == t.nr {
            t.nr = t.nr.wrapping_add(1);
        }
        let zlb = control(t.theirs, t.ns, t.nr, &[]);
        self.send_l2tp(&zlb);
    }

    /// Sends a control message of `kind` and waits until the server acknowledges it.
    fn send_acked(&mut self, kind: u16, extra: &[u8]) -> bool {
        let t = self.tun.as_mut().expect("an open tunnel");
        let mut avps = Vec::new();
        avp(&mut avps, 0, &kind.to_be_bytes());
        avps.extend_from_slice(extra);
        let msg = control(t.theirs, t.ns, t.nr, &avps);
        t.ns = t.ns.wrapping_add(1);
        let (ours, want) = (t.ours, t.ns);
        for _ in 0..4 {
            self.send_l2tp(&msg);
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end {
                let Some(c) = self
                    .recv_l2tp(Duration::from_millis(100))
                    .and_then(|m| parse_control(&m))
                else {
                    continue;
                };
                if c.tunnel != ours {
                    continue;
                }
                self.on_control(&c);
                if c.nr == want {
                    return true;
                }
            }
        }
        false
    }

    /// Keeps the tunnel alive (acks HELLOs) while stepping IKE for `d`.
    fn idle(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Some(c) = self
                .recv_l2tp(Duration::from_millis(100))
                .and_then(|m| parse_control(&m))
            {
                self.on_control(&c);
            }
        }
    }

    /// StopCCN, acknowledged by the server.
    fn stop_tunnel(&mut self) {
        let ours = self.tun.as_ref().expect("an open tunnel").ours;
        let acked = self.send_acked(MSG_STOPCCN, &stopccn_avps(ours));
        self.tun = None;
        assert!(acked, "the server acknowledged our stopccn");
    }
}

impl Drop for Session {
    /// After a failed assertion: best-effort StopCCN and deletes, so that the shared lab
    /// server does not keep (or wedge on) a vanished client.
    fn drop(&mut self) {
        if let Some(t) = self.tun.take() {
            let mut avps = Vec::new();
            avp(&mut avps, 0, &MSG_STOPCCN.to_be_bytes());
            avps.extend_from_slice(&stopccn_avps(t.ours));
            let msg = control(t.theirs, t.ns, t.nr, &avps);
            if !self.sas.is_empty() {
                self.send_l2tp(&msg);
                self.idle(Duration::from_millis(300));
            }
        }
        self.close_ike();
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn softether_main_and_quick_mode() {
    if !l2sec_labutil::require_lab("softether_main_and_quick_mode") {
        return;
    }
    let cfg = Config::with_psk(topo::SE_PSK.as_bytes());
    let mut s = Session::connect(topo::SE_CLI_NS, IpAddr::V4(topo::SE_SRV), cfg);
    assert!(!s.phase1.is_empty());
    assert!(
        s.phase2.contains("sha1") || s.phase2.contains("md5"),
        "softether only does sha1/md5 esp: {}",
        s.phase2
    );
    let sa = &s.sas[0];
    assert!(matches!(
        sa.encapsulation(),
        l2sec_esp::Encapsulation::Udp { .. }
    ));
    assert_ne!(sa.spi_in(), sa.spi_out());
    // The keys: SCCRQ out through ESP, SCCRP back through it.
    s.open_tunnel();
    s.stop_tunnel();
    assert!(s.sas[0].stats().packets_in >= 2 && s.sas[0].stats().packets_out >= 2);
    s.close();
}

#[test]
fn softether_esp_rekey_keeps_l2tp_flowing() {
    if !l2sec_labutil::require_lab("softether_esp_rekey_keeps_l2tp_flowing") {
        return;
    }
    let mut cfg = Config::with_psk(topo::SE_PSK.as_bytes());
    // 30 s: the initiator rekeys at 90 % (27 s), before SoftEther's own quick mode at 29 s.
    cfg.esp_lifetime = Duration::from_secs(30);
    let start = Instant::now();
    let mut s = Session::connect(topo::SE_CLI_NS, IpAddr::V4(topo::SE_SRV), cfg);
    s.open_tunnel();
    let first_in = s.sas[0].spi_in();
    assert!(s.send_acked(MSG_SCCCN, &[]), "scccn acked");
    assert!(s.send_acked(MSG_HELLO, &[]), "hello acked before the rekey");
    let deadline = start + Duration::from_secs(60);
    while s.rekeys == 0 {
        assert!(Instant::now() < deadline, "no esp rekey within 60 s");
        s.idle(Duration::from_millis(200));
    }
    let rekey_at = start.elapsed();
    eprintln!("esp rekey after {rekey_at:?}");
    assert!(
        rekey_at >= Duration::from_secs(25),
        "rekeyed too early: {rekey_at:?}"
    );
    let new_in = s.sas[0].spi_in();
    assert_ne!(new_in, first_in);
    // HELLO sealed with the new SA is acknowledged through the new SA.
    let before = s.sas[0].stats().packets_in;
    assert!(s.send_acked(MSG_HELLO, &[]), "hello acked after the rekey");
    let sa = s.sas.iter().find(|x| x.spi_in() == new_in).expect("new sa");
    assert!(sa.stats().packets_out >= 1);
    assert!(
        sa.stats().packets_in > before,
        "the ack came through the new sa"
    );
    // The old SA goes (expiry at 30 s or the grace period after the rekey); traffic still flows.
    let end = Instant::now() + Duration::from_secs(25);
    while !s.deleted.contains(&first_in) && Instant::now() < end {
        s.idle(Duration::from_millis(200));
    }
    assert!(
        s.deleted.contains(&first_in),
        "old sa deleted after the rekey"
    );
    assert!(
        s.send_acked(MSG_HELLO, &[]),
        "hello acked after the old sa is gone"
    );
    s.stop_tunnel();
    s.close();
}

#[test]
fn strongswan_main_and_quick_mode() {
    if !l2sec_labutil::require_lab("strongswan_main_and_quick_mode") {
        return;
    }
    let mut cfg = Config::with_psk(topo::SS_PSK.as_bytes());
    cfg.mode = EspMode::TunnelHost; // the lab's strongSwan (libipsec) cannot hold transport-mode SAs
    let s = Session::connect(topo::SS_CLI_NS, IpAddr::V4(topo::SS_SRV), cfg);
    assert!(!s.phase1.is_empty());
    assert_ne!(s.sas[0].spi_in(), s.sas[0].spi_out());
    s.close();
}

/// The lab's strongSwan PKI (`AUTH=cert` or `AUTH=both`), if present.
fn strongswan_pki() -> Option<PathBuf> {
    let state =
        std::env::var_os("LAB_STATE").map_or_else(|| "/tmp/l2sec-lab".into(), PathBuf::from);
    let pki = state.join("strongswan/pki");
    ["ca.pem", "client.pem", "client.key"]
        .iter()
        .all(|f| pki.join(f).is_file())
        .then_some(pki)
}

fn strongswan_cert_config(pki: &std::path::Path, ca: &str, remote_dn: &str) -> Config {
    let read = |f: &str| std::fs::read(pki.join(f)).unwrap();
    let auth = CertAuth::from_pem_or_der(
        &read("client.pem"),
        &read("client.key"),
        &read(ca),
        Some(RemoteId::Dn(remote_dn.into())),
    )
    .unwrap();
    Config {
        auth: Auth::Cert(auth),
        // the lab's strongSwan (libipsec) cannot hold transport-mode SAs
        mode: EspMode::TunnelHost,
        ..Config::default()
    }
}

const SS_SERVER_DN: &str = "C=XX, O=l2sec lab, CN=server";

#[test]
fn strongswan_certificates() {
    if !l2sec_labutil::require_lab("strongswan_certificates") {
        return;
    }
    let Some(pki) = strongswan_pki() else {
        eprintln!(
            "strongswan_certificates: skipped, no lab pki (run `AUTH=both lab/l2sec-lab up strongswan`)"
        );
        return;
    };
    let cfg = strongswan_cert_config(&pki, "ca.pem", SS_SERVER_DN);
    let s = Session::connect(topo::SS_CLI_NS, IpAddr::V4(topo::SS_SRV), cfg);
    assert!(!s.phase1.is_empty());
    assert_ne!(s.sas[0].spi_in(), s.sas[0].spi_out());
    s.close();

    // The server's real certificate against the wrong CA, and against the wrong DN.
    let cfg = strongswan_cert_config(&pki, "rogue/ca.pem", SS_SERVER_DN);
    match Session::try_connect(topo::SS_CLI_NS, IpAddr::V4(topo::SS_SRV), cfg) {
        Err(Error::Certificate(m)) => assert!(m.contains("not issued by a configured ca"), "{m}"),
        Err(e) => panic!("wrong ca: unexpected error {e}"),
        Ok(_) => panic!("wrong ca accepted"),
    }
    let cfg = strongswan_cert_config(&pki, "ca.pem", "C=XX, O=l2sec lab, CN=not-the-server");
    match Session::try_connect(topo::SS_CLI_NS, IpAddr::V4(topo::SS_SRV), cfg) {
        Err(Error::IdentityMismatch { got, .. }) => assert!(got.contains("CN=server"), "{got}"),
        Err(e) => panic!("wrong dn: unexpected error {e}"),
        Ok(_) => panic!("wrong dn accepted"),
    }
}
