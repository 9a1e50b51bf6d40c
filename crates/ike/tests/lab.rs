//! Main mode + quick mode against the project lab's real servers (run with `L2SEC_LAB=1`, as root).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use l2sec_ike::{Config, EspMode, Event, IkePort, Initiator};
use l2sec_labutil::topo;

/// Runs one initiator in `ns` against `server` until the first ESP SA; returns it and the
/// phase 1 proposal.
fn connect(ns: &str, server: IpAddr, cfg: Config) -> (l2sec_esp::SaConfig, String, String) {
    l2sec_labutil::enter_netns(ns).expect("enter lab netns");
    let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect((server, 500)).unwrap();
    let local_ip = probe.local_addr().unwrap().ip();
    let s500 = UdpSocket::bind((local_ip, 500)).expect("bind udp 500 (root needed)");
    let s4500 = UdpSocket::bind((local_ip, 4500)).expect("bind udp 4500");
    for s in [&s500, &s4500] {
        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    }
    let start = Instant::now();
    let mut ike = Initiator::new(
        cfg,
        SocketAddr::new(local_ip, 500),
        SocketAddr::new(server, 500),
        (4500, 4500),
        Box::new(l2sec_crypto::OsRng),
        start,
    )
    .unwrap();
    let mut p1 = String::new();
    let mut buf = [0u8; 65536];
    while start.elapsed() < Duration::from_secs(45) {
        let now = Instant::now();
        while let Some(t) = ike.poll_transmit(now) {
            let mut d = if t.port == IkePort::NatT && !t.keepalive {
                vec![0u8; 4]
            } else {
                Vec::new()
            };
            d.extend_from_slice(&t.data);
            match t.port {
                IkePort::Ike => s500.send_to(&d, (server, 500)).unwrap(),
                IkePort::NatT => s4500.send_to(&d, (server, 4500)).unwrap(),
            };
        }
        while let Some(ev) = ike.poll_event() {
            match ev {
                Event::Phase1Done { proposal, nat, .. } => {
                    assert!(
                        nat.encap,
                        "lab servers fake nat-d, so we must float to 4500"
                    );
                    p1 = proposal;
                }
                Event::ChildSaReady { sa, proposal, .. } => {
                    ike.close(Instant::now());
                    while let Some(t) = ike.poll_transmit(Instant::now()) {
                        let mut d = vec![0u8; 4];
                        d.extend_from_slice(&t.data);
                        s4500.send_to(&d, (server, 4500)).unwrap();
                    }
                    return (sa, p1, proposal);
                }
                Event::Failed(e) => panic!("ike failed: {e} (hint: {:?})", e.hint()),
                _ => {}
            }
        }
        if ike.poll_timeout().is_some_and(|t| t <= now) {
            ike.handle_timeout(now);
        }
        for (sock, port) in [(&s500, IkePort::Ike), (&s4500, IkePort::NatT)] {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                let d = &buf[..n];
                match port {
                    IkePort::NatT if d.len() > 4 && d[..4] == [0; 4] => {
                        ike.handle_datagram(Instant::now(), port, &d[4..])
                    }
                    IkePort::NatT => {}
                    IkePort::Ike => ike.handle_datagram(Instant::now(), port, d),
                }
            }
        }
    }
    panic!("no esp sa within 45 s");
}

#[test]
fn softether_main_and_quick_mode() {
    if !l2sec_labutil::require_lab("softether_main_and_quick_mode") {
        return;
    }
    let cfg = Config::with_psk(topo::SE_PSK.as_bytes());
    let (sa, p1, p2) = connect(topo::SE_CLI_NS, IpAddr::V4(topo::SE_SRV), cfg);
    assert!(!p1.is_empty());
    assert!(
        p2.contains("sha1") || p2.contains("md5"),
        "softether only does sha1/md5 esp: {p2}"
    );
    assert!(matches!(sa.encap, l2sec_esp::Encapsulation::Udp { .. }));
    assert_ne!(sa.inbound.spi, sa.outbound.spi);
    assert!(!sa.inbound.enc_key.is_empty() && !sa.outbound.auth_key.is_empty());
}

#[test]
fn strongswan_main_and_quick_mode() {
    if !l2sec_labutil::require_lab("strongswan_main_and_quick_mode") {
        return;
    }
    let mut cfg = Config::with_psk(topo::SS_PSK.as_bytes());
    cfg.mode = EspMode::TunnelHost; // the lab's strongSwan (libipsec) cannot hold transport-mode SAs
    let (sa, p1, _) = connect(topo::SS_CLI_NS, IpAddr::V4(topo::SS_SRV), cfg);
    assert!(!p1.is_empty());
    assert_ne!(sa.inbound.spi, sa.outbound.spi);
}
