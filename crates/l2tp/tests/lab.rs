//! Lab tests over plain L2TP (no IPsec) against l2tpns and xl2tpd; run with `L2SEC_LAB=1`.
//!
//! Namespaces and addresses default to the project lab (`l2sec_labutil::topo`) and can be
//! pointed elsewhere (e.g. the shared labs) with `L2SEC_LAB_L2_NS`, `L2SEC_LAB_L2_SRV`,
//! `L2SEC_LAB_L2_SECRET` (l2tpns `l2tp_secret`, optional), `L2SEC_LAB_XL_NS`,
//! `L2SEC_LAB_XL_SRV` and `L2SEC_LAB_XL_SECRET`.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use l2sec_l2tp::{CloseCause, Config, Event, Lac, ResultCode, SessionHandle};
use l2sec_labutil::{enter_netns, require_lab, topo};
use zeroize::Zeroizing;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn secret(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    Some(Zeroizing::new(s.as_bytes().to_vec()))
}

/// A LAC driven over a real UDP socket inside a network namespace.
struct Driver {
    sock: UdpSocket,
    lac: Lac,
    events: Vec<Event>,
    frames: Vec<(SessionHandle, Vec<u8>)>,
}

impl Driver {
    fn new(ns: &str, server: Ipv4Addr, config: Config) -> Driver {
        enter_netns(ns).unwrap_or_else(|e| panic!("enter netns {ns}: {e}"));
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        sock.connect(SocketAddrV4::new(server, 1701)).unwrap();
        let lac = Lac::new(config, Box::new(l2sec_crypto::OsRng), Instant::now());
        Driver {
            sock,
            lac,
            events: Vec::new(),
            frames: Vec::new(),
        }
    }

    fn flush(&mut self) {
        let now = Instant::now();
        while let Some(d) = self.lac.poll_transmit(now) {
            self.sock.send(&d).unwrap();
        }
        while let Some(e) = self.lac.poll_event() {
            eprintln!("event: {e:?}");
            if let Event::SessionDown { reason, .. } | Event::TunnelDown { reason } = &e {
                eprintln!("  reason: {reason}");
            }
            self.events.push(e);
        }
    }

    /// Runs the LAC until `done` holds or `limit` passes; returns whether `done` held.
    fn run(&mut self, limit: Duration, mut done: impl FnMut(&Driver) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        loop {
            self.flush();
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= end {
                return false;
            }
            let wake = self.lac.poll_timeout().unwrap_or(end).min(end);
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            if let Ok(n) = self.sock.recv(&mut buf) {
                if let Some(f) = self.lac.handle_datagram(Instant::now(), &buf[..n]) {
                    self.frames.push((f.session, f.payload.to_vec()));
                }
            }
            let now = Instant::now();
            if self.lac.poll_timeout().is_some_and(|t| t <= now) {
                self.lac.handle_timeout(now);
            }
        }
    }

    fn has(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    fn session_up(&self) -> Option<SessionHandle> {
        self.events.iter().find_map(|e| {
            if let Event::SessionUp { session } = e {
                Some(*session)
            } else {
                None
            }
        })
    }

    fn tunnel_down(&self) -> Option<&l2sec_l2tp::CloseReason> {
        self.events.iter().find_map(|e| {
            if let Event::TunnelDown { reason } = e {
                Some(reason)
            } else {
                None
            }
        })
    }
}

fn l2tpns() -> (String, Ipv4Addr) {
    let ns = env_or("L2SEC_LAB_L2_NS", topo::L2_CLI_NS);
    let srv = env_or("L2SEC_LAB_L2_SRV", &topo::L2_SRV.to_string())
        .parse()
        .unwrap();
    (ns, srv)
}

fn xl2tpd() -> (String, Ipv4Addr, String) {
    let ns = env_or("L2SEC_LAB_XL_NS", topo::XL_CLI_NS);
    let srv = env_or("L2SEC_LAB_XL_SRV", &topo::XL_SRV.to_string())
        .parse()
        .unwrap();
    (ns, srv, env_or("L2SEC_LAB_XL_SECRET", topo::XL_SECRET))
}

fn in_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

#[test]
fn l2tpns_tunnel_call_and_orderly_close() {
    if !require_lab("l2tpns_tunnel_call_and_orderly_close") {
        return;
    }
    in_thread(|| {
        let (ns, srv) = l2tpns();
        let mut d = Driver::new(&ns, srv, Config::default());
        let now = Instant::now();
        d.lac.connect(now);
        let h = d.lac.open_session(now).unwrap();
        // l2tpns ignores L2TP for ~3 s after start: retransmission covers it.
        assert!(
            d.run(Duration::from_secs(20), |d| d.session_up().is_some()),
            "{:?}",
            d.events
        );
        assert!(matches!(&d.events[0], Event::TunnelUp { .. }));
        // The LNS starts PPP: its LCP Configure-Request arrives through the data path.
        assert!(
            d.run(Duration::from_secs(5), |d| !d.frames.is_empty()),
            "no PPP frame from l2tpns"
        );
        let (fh, frame) = &d.frames[0];
        assert_eq!(*fh, h);
        let lcp = if frame.starts_with(&[0xff, 0x03]) {
            &frame[2..]
        } else {
            &frame[..]
        };
        assert_eq!(
            &lcp[..3],
            &[0xc0, 0x21, 1],
            "expected LCP Configure-Request, got {frame:02x?}"
        );
        d.lac.close_session(Instant::now(), h, ResultCode::new(3));
        d.lac.close(Instant::now());
        assert!(
            d.run(Duration::from_secs(20), |d| d
                .has(|e| *e == Event::TunnelClosed)),
            "{:?}",
            d.events
        );
        assert!(d.tunnel_down().is_none(), "{:?}", d.events);
    });
}

#[test]
fn l2tpns_tunnel_secret() {
    if !require_lab("l2tpns_tunnel_secret") {
        return;
    }
    in_thread(|| {
        let (ns, srv) = l2tpns();
        // l2tpns answers our challenge with its own secret: a wrong one on our side is caught.
        let mut d = Driver::new(
            &ns,
            srv,
            Config {
                secret: secret("not-the-lab-secret"),
                ..Config::default()
            },
        );
        d.lac.connect(Instant::now());
        assert!(
            d.run(Duration::from_secs(20), |d| d.tunnel_down().is_some()),
            "{:?}",
            d.events
        );
        assert_eq!(d.tunnel_down().unwrap().cause, CloseCause::TunnelAuthFailed);
        if let Ok(s) = std::env::var("L2SEC_LAB_L2_SECRET") {
            let mut d = Driver::new(
                &ns,
                srv,
                Config {
                    secret: secret(&s),
                    ..Config::default()
                },
            );
            d.lac.connect(Instant::now());
            assert!(
                d.run(Duration::from_secs(20), |d| d.lac.is_established()),
                "{:?}",
                d.events
            );
            d.lac.close(Instant::now());
            assert!(d.run(Duration::from_secs(20), |d| {
                d.has(|e| *e == Event::TunnelClosed)
            }));
        }
    });
}

#[test]
fn xl2tpd_right_secret_brings_tunnel_and_call_up() {
    if !require_lab("xl2tpd_right_secret_brings_tunnel_and_call_up") {
        return;
    }
    in_thread(|| {
        let (ns, srv, s) = xl2tpd();
        let mut d = Driver::new(
            &ns,
            srv,
            Config {
                secret: secret(&s),
                ..Config::default()
            },
        );
        let now = Instant::now();
        d.lac.connect(now);
        d.lac.open_session(now).unwrap();
        assert!(
            d.run(Duration::from_secs(20), |d| d.session_up().is_some()),
            "{:?}",
            d.events
        );
        match &d.events[0] {
            Event::TunnelUp { peer_vendor, .. } => {
                assert_eq!(peer_vendor.as_deref(), Some("xelerance.com"))
            }
            e => panic!("unexpected first event {e:?}"),
        }
        // xl2tpd cannot run pppd in the lab: it sends CDN shortly after ICCN; it must surface.
        assert!(d.run(Duration::from_secs(5), |d| {
            d.has(|e| matches!(e, Event::SessionDown { .. }))
        }));
        let reason = d
            .events
            .iter()
            .find_map(|e| {
                if let Event::SessionDown { reason, .. } = e {
                    Some(reason.clone())
                } else {
                    None
                }
            })
            .unwrap();
        assert_eq!(reason.cause, CloseCause::PeerCdn);
        assert!(
            reason
                .to_string()
                .starts_with("LNS closed the call: result"),
            "{reason}"
        );
        d.lac.close(Instant::now());
        assert!(
            d.run(Duration::from_secs(20), |d| d
                .has(|e| *e == Event::TunnelClosed)),
            "{:?}",
            d.events
        );
        assert!(d.tunnel_down().is_none());
    });
}

#[test]
fn xl2tpd_wrong_secret_surfaces_the_reason() {
    if !require_lab("xl2tpd_wrong_secret_surfaces_the_reason") {
        return;
    }
    in_thread(|| {
        let (ns, srv, _) = xl2tpd();
        let mut d = Driver::new(
            &ns,
            srv,
            Config {
                secret: secret("wrong-secret"),
                ..Config::default()
            },
        );
        d.lac.connect(Instant::now());
        assert!(
            d.run(Duration::from_secs(20), |d| d.tunnel_down().is_some()),
            "{:?}",
            d.events
        );
        let reason = d.tunnel_down().unwrap().clone();
        // We check xl2tpd's answer to our challenge first; either way the secret is named.
        assert!(
            matches!(
                reason.cause,
                CloseCause::TunnelAuthFailed | CloseCause::PeerStopCcn
            ),
            "{reason}"
        );
        assert!(reason.to_string().contains("secret"), "{reason}");
        assert!(!d.has(|e| matches!(e, Event::TunnelUp { .. })));
    });
}
