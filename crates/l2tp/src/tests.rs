//! In-memory tests: the LAC against a small test LNS on a virtual clock, with loss,
//! duplication and reordering injected.

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::Rng;
use crate::avp::{Avp, ResultCode};
use crate::header::{CONTROL_HEADER_LEN, Header};
use crate::lac::{Config, Event, Lac, SessionHandle};
use crate::message::{Message, MessageType};
use crate::reason::{CloseCause, Phase};
use crate::reliable::{Reliable, Rx};

/// Deterministic splitmix64 generator for tests.
#[derive(Debug, Clone)]
pub(crate) struct SeqRng(pub u64);

impl SeqRng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

impl Rng for SeqRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn md5_chap(id: u8, secret: &[u8], chal: &[u8]) -> [u8; 16] {
    l2sec_crypto::md5(&[&[id], secret, chal])
}

#[test]
fn chap_response_known_answer() {
    // RFC 2661 4.4.3: MD5(message type || secret || challenge); expected value from Python hashlib.
    let chal: Vec<u8> = (0..16).collect();
    assert_eq!(
        crate::lac::chap_md5(2, b"lab-l2tp-secret", &chal),
        [
            0xa6, 0x69, 0x5a, 0xf6, 0x4d, 0xaf, 0x5c, 0x9c, 0x3e, 0x8e, 0x6f, 0xf9, 0xcb, 0x6c,
            0x94, 0xc9
        ]
    );
}

#[derive(Debug, Clone, Default)]
struct LnsCfg {
    secret: Option<Vec<u8>>,
    challenge: bool,
    rws: u16,
    seq_data: bool,
    sccrp_extra: Vec<Avp>,
    /// Answer the LAC's challenge with a wrong response.
    bad_response: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum LnsState {
    Idle,
    WaitScccn,
    Up,
    Closed,
}

/// A minimal LNS: answers SCCRQ, ICRQ, verifies tunnel authentication, records what it got.
struct TestLns {
    cfg: LnsCfg,
    reliable: Reliable,
    tid: u16,
    peer_tid: u16,
    state: LnsState,
    our_challenge: Option<Vec<u8>>,
    /// (our session id, LAC's session id, ICCN received)
    sessions: Vec<(u16, u16, bool)>,
    delivered: Vec<MessageType>,
    raw_delivered: Vec<Vec<u8>>,
    data_rx: Vec<Vec<u8>>,
    data_ns: Vec<u16>,
    tx_ns: u16,
    zlb_tids: Vec<u16>,
}

impl TestLns {
    fn new(cfg: LnsCfg) -> Self {
        let rws = if cfg.rws == 0 { 4 } else { cfg.rws };
        TestLns {
            cfg,
            reliable: Reliable::new(rws, Duration::from_secs(1), Duration::from_secs(8), 10),
            tid: 4242,
            peer_tid: 0,
            state: LnsState::Idle,
            our_challenge: None,
            sessions: Vec::new(),
            delivered: Vec::new(),
            raw_delivered: Vec::new(),
            data_rx: Vec::new(),
            data_ns: Vec::new(),
            tx_ns: 0,
            zlb_tids: Vec::new(),
        }
    }

    fn count(&self, t: MessageType) -> usize {
        self.delivered.iter().filter(|m| **m == t).count()
    }

    fn send(&mut self, session: u16, m: Message) {
        let (ns, nr) = self.reliable.ns_nr();
        let mut buf = vec![0u8; CONTROL_HEADER_LEN];
        m.emit(&mut buf, None).unwrap();
        let total = buf.len();
        Header::control(self.peer_tid, session, ns, nr)
            .emit(&mut buf, total)
            .unwrap();
        self.reliable.push(buf);
    }

    fn handle(&mut self, now: Instant, data: &[u8]) {
        let Ok((h, body)) = Header::parse(data) else {
            return;
        };
        if !h.control {
            assert_eq!(
                h.tunnel_id,
                self.peer_tid_or_ours(),
                "data to the wrong tunnel"
            );
            if let Some((ns, _)) = h.sequence {
                self.data_ns.push(ns);
            }
            self.data_rx.push(body.to_vec());
            return;
        }
        if h.tunnel_id != 0 && h.tunnel_id != self.tid {
            return;
        }
        let (ns, nr) = h.sequence.unwrap();
        if body.is_empty() {
            self.zlb_tids.push(h.tunnel_id);
        }
        if self.reliable.on_packet(now, ns, nr, body.is_empty(), data) == Rx::Deliver {
            self.dispatch(data);
            while let Some(b) = self.reliable.pop_buffered() {
                self.dispatch(&b);
            }
        }
    }

    fn peer_tid_or_ours(&self) -> u16 {
        self.tid
    }

    fn dispatch(&mut self, data: &[u8]) {
        let (_, body) = Header::parse(data).unwrap();
        let m =
            Message::parse(body, self.cfg.secret.as_deref()).expect("LAC sent a malformed message");
        self.delivered.push(m.kind);
        self.raw_delivered.push(data.to_vec());
        match m.kind {
            MessageType::Sccrq => {
                self.peer_tid = m
                    .find(|a| {
                        if let Avp::AssignedTunnelId(v) = a {
                            Some(*v)
                        } else {
                            None
                        }
                    })
                    .unwrap();
                let mut avps = vec![
                    Avp::ProtocolVersion {
                        version: 1,
                        revision: 0,
                    },
                    Avp::FramingCapabilities(3),
                    Avp::HostName("test-lns".into()),
                    Avp::VendorName("l2sec test".into()),
                    Avp::AssignedTunnelId(self.tid),
                ];
                if self.cfg.rws != 0 {
                    avps.push(Avp::ReceiveWindowSize(self.cfg.rws));
                }
                if let (Some(c), Some(s)) = (
                    m.find(|a| {
                        if let Avp::Challenge(c) = a {
                            Some(c.clone())
                        } else {
                            None
                        }
                    }),
                    &self.cfg.secret,
                ) {
                    let mut r = md5_chap(2, s, &c);
                    if self.cfg.bad_response {
                        r[0] ^= 1;
                    }
                    avps.push(Avp::ChallengeResponse(r));
                }
                if self.cfg.challenge {
                    let c = vec![7u8; 16];
                    self.our_challenge = Some(c.clone());
                    avps.push(Avp::Challenge(c));
                }
                avps.extend(self.cfg.sccrp_extra.clone());
                self.send(0, Message::new(MessageType::Sccrp, avps));
                self.state = LnsState::WaitScccn;
            }
            MessageType::Scccn => {
                if let Some(c) = &self.our_challenge {
                    let want = md5_chap(3, self.cfg.secret.as_deref().unwrap_or_default(), c);
                    let got = m.find(|a| {
                        if let Avp::ChallengeResponse(r) = a {
                            Some(*r)
                        } else {
                            None
                        }
                    });
                    if got != Some(want) {
                        self.stop(ResultCode::with_error(
                            2,
                            6,
                            Some("Invalid challenge authentication"),
                        ));
                        return;
                    }
                }
                self.state = LnsState::Up;
            }
            MessageType::Icrq => {
                let peer = m
                    .find(|a| {
                        if let Avp::AssignedSessionId(v) = a {
                            Some(*v)
                        } else {
                            None
                        }
                    })
                    .unwrap();
                let ours = 100 + self.sessions.len() as u16;
                self.sessions.push((ours, peer, false));
                self.send(
                    peer,
                    Message::new(MessageType::Icrp, vec![Avp::AssignedSessionId(ours)]),
                );
            }
            MessageType::Iccn => {
                let (_, h_body) = Header::parse(data).unwrap();
                let _ = h_body;
                let (h, _) = Header::parse(data).unwrap();
                let s = self
                    .sessions
                    .iter_mut()
                    .find(|s| s.0 == h.session_id)
                    .expect("ICCN for unknown session");
                s.2 = true;
            }
            MessageType::Cdn => {
                let peer = m
                    .find(|a| {
                        if let Avp::AssignedSessionId(v) = a {
                            Some(*v)
                        } else {
                            None
                        }
                    })
                    .unwrap();
                self.sessions.retain(|s| s.1 != peer);
            }
            MessageType::StopCcn => self.state = LnsState::Closed,
            _ => {}
        }
    }

    fn stop(&mut self, rc: ResultCode) {
        self.send(
            0,
            Message::new(
                MessageType::StopCcn,
                vec![Avp::AssignedTunnelId(self.tid), Avp::ResultCode(rc)],
            ),
        );
        self.state = LnsState::Closed;
    }

    fn cdn(&mut self, rc: ResultCode) {
        let (ours, peer, _) = self.sessions.remove(0);
        self.send(
            peer,
            Message::new(
                MessageType::Cdn,
                vec![Avp::ResultCode(rc), Avp::AssignedSessionId(ours)],
            ),
        );
    }

    fn data(&mut self, payload: &[u8], offset: Option<u16>) -> Vec<u8> {
        let (_, peer, _) = self.sessions[0];
        let h = Header {
            control: false,
            with_length: true,
            tunnel_id: self.peer_tid,
            session_id: peer,
            sequence: self.cfg.seq_data.then_some((self.tx_ns, 0)),
            offset,
            priority: false,
        };
        self.tx_ns = self.tx_ns.wrapping_add(1);
        let mut buf = vec![0u8; h.buffer_len() + payload.len()];
        let total = buf.len();
        h.emit(&mut buf, total).unwrap();
        buf[h.buffer_len()..].copy_from_slice(payload);
        buf
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if let Some(b) = self.reliable.poll_transmit(now) {
            return Some(b);
        }
        if self.reliable.take_ack() {
            let (ns, nr) = self.reliable.ns_nr();
            let mut buf = vec![0u8; CONTROL_HEADER_LEN];
            Header::control(self.peer_tid, 0, ns, nr)
                .emit(&mut buf, CONTROL_HEADER_LEN)
                .unwrap();
            return Some(buf);
        }
        None
    }
}

/// Both ends and the wire between them on a virtual clock.
struct Sim {
    now: Instant,
    start: Instant,
    lac: Lac,
    lns: TestLns,
    /// (delivery time, towards the LNS, datagram)
    wire: Vec<(Instant, bool, Vec<u8>)>,
    rng: SeqRng,
    loss: f64,
    dup: f64,
    reorder: bool,
    /// Drop everything towards the LNS.
    lns_dead: bool,
    events: Vec<Event>,
    lac_data: Vec<Vec<u8>>,
    /// Send times of the LAC's datagrams (relative to start) with the datagram.
    lac_sent: Vec<(Duration, Vec<u8>)>,
}

impl Sim {
    fn new(config: Config, lns: LnsCfg, seed: u64) -> Self {
        let start = Instant::now();
        Sim {
            now: start,
            start,
            lac: Lac::new(config, Box::new(SeqRng(seed ^ 0x5555)), start),
            lns: TestLns::new(lns),
            wire: Vec::new(),
            rng: SeqRng(seed),
            loss: 0.0,
            dup: 0.0,
            reorder: false,
            lns_dead: false,
            events: Vec::new(),
            lac_data: Vec::new(),
            lac_sent: Vec::new(),
        }
    }

    fn put(&mut self, to_lns: bool, d: Vec<u8>) {
        if (to_lns && self.lns_dead) || self.rng.chance(self.loss) {
            return;
        }
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let jitter = if self.reorder {
                self.rng.next_u64() % 80
            } else {
                0
            };
            self.wire.push((
                self.now + Duration::from_millis(5 + jitter),
                to_lns,
                d.clone(),
            ));
        }
    }

    fn pump(&mut self) {
        while let Some(d) = self.lac.poll_transmit(self.now) {
            self.lac_sent.push((self.now - self.start, d.clone()));
            self.put(true, d);
        }
        while let Some(d) = self.lns.poll_transmit(self.now) {
            self.put(false, d);
        }
        while let Some(e) = self.lac.poll_event() {
            self.events.push(e);
        }
    }

    /// Advances to the next thing that happens; false when nothing is left to happen.
    fn step(&mut self) -> bool {
        self.pump();
        let next_wire = self.wire.iter().map(|w| w.0).min();
        let next = [
            next_wire,
            self.lac.poll_timeout(),
            self.lns.reliable.deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = next else { return false };
        self.now = self.now.max(t);
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.wire)
            .into_iter()
            .partition(|w| w.0 <= self.now);
        self.wire = rest;
        for (_, to_lns, d) in due {
            if to_lns {
                self.lns.handle(self.now, &d);
            } else if let Some(f) = self.lac.handle_datagram(self.now, &d) {
                self.lac_data.push(f.payload.to_vec());
            }
        }
        if self.lac.poll_timeout().is_some_and(|t| t <= self.now) {
            self.lac.handle_timeout(self.now);
        }
        if self.lns.reliable.deadline().is_some_and(|t| t <= self.now)
            && self.lns.reliable.on_timeout(self.now).is_err()
        {
            self.lns.state = LnsState::Closed;
        }
        self.pump();
        true
    }

    fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        while !cond(self) {
            if self.now > end || !self.step() {
                return cond(self);
            }
        }
        true
    }

    fn has(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
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

    /// Sends a PPP frame from the LAC through the data path.
    fn lac_send(&mut self, h: SessionHandle, frame: &[u8]) {
        let hl = self.lac.data_header_len(h);
        let mut buf = vec![0u8; hl + frame.len()];
        buf[hl..].copy_from_slice(frame);
        let n = self
            .lac
            .write_data_header(h, &mut buf, frame.len())
            .unwrap();
        assert_eq!(n, buf.len());
        self.put(true, buf);
    }
}

fn secret(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    Some(Zeroizing::new(s.as_bytes().to_vec()))
}

fn is_tunnel_up(e: &Event) -> bool {
    matches!(e, Event::TunnelUp { .. })
}

#[test]
fn tunnel_call_data_and_orderly_close() {
    let mut sim = Sim::new(
        Config::default(),
        LnsCfg {
            rws: 4,
            ..LnsCfg::default()
        },
        1,
    );
    sim.lac.connect(sim.now);
    let h = sim.lac.open_session(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| s.session_up().is_some()));
    assert_eq!(
        sim.events[0],
        Event::TunnelUp {
            peer_host_name: "test-lns".into(),
            peer_vendor: Some("l2sec test".into()),
            peer_tunnel_id: 4242
        }
    );
    assert_eq!(sim.session_up(), Some(h));
    assert!(sim.run_until(Duration::from_secs(1), |s| {
        s.lns.sessions.first().is_some_and(|x| x.2)
    }));
    assert_eq!(
        sim.lns.delivered,
        vec![
            MessageType::Sccrq,
            MessageType::Scccn,
            MessageType::Icrq,
            MessageType::Iccn
        ]
    );

    // Data both ways; the LNS's offset field is skipped.
    sim.lac_send(h, &[0xff, 0x03, 0xc0, 0x21, 1]);
    let d = sim.lns.data(&[0xff, 0x03, 0xc0, 0x21, 2], Some(3));
    sim.put(false, d);
    assert!(
        sim.run_until(Duration::from_secs(1), |s| !s.lac_data.is_empty()
            && !s.lns.data_rx.is_empty())
    );
    assert_eq!(sim.lns.data_rx, vec![vec![0xff, 0x03, 0xc0, 0x21, 1]]);
    assert_eq!(sim.lac_data, vec![vec![0xff, 0x03, 0xc0, 0x21, 2]]);

    sim.lac.close_session(sim.now, h, ResultCode::new(3));
    sim.lac.close(sim.now);
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.has(|e| *e == Event::TunnelClosed)
    }));
    assert_eq!(sim.lns.count(MessageType::Cdn), 1);
    assert_eq!(sim.lns.state, LnsState::Closed);
    assert_eq!(sim.count(|e| matches!(e, Event::SessionDown { .. })), 1);
    assert!(!sim.has(|e| matches!(e, Event::TunnelDown { .. })));
    assert_eq!(sim.lac.poll_timeout(), None);
    // Every ZLB the LAC sent carried the LNS's tunnel id.
    for (_, d) in &sim.lac_sent {
        let (hd, body) = Header::parse(d).unwrap();
        if hd.control && body.is_empty() {
            assert_eq!(hd.tunnel_id, 4242);
        }
    }
}

#[test]
fn survives_loss_duplication_and_reordering() {
    let mut retransmitted = 0;
    for seed in 0..40u64 {
        let loss = (seed % 4) as f64 * 0.1; // 0, 10, 20, 30 %
        let mut sim = Sim::new(
            Config {
                max_retransmits: 8,
                ..Config::default()
            },
            LnsCfg {
                rws: 8,
                ..LnsCfg::default()
            },
            seed,
        );
        sim.loss = loss;
        sim.dup = 0.2;
        sim.reorder = true;
        sim.lac.connect(sim.now);
        let h1 = sim.lac.open_session(sim.now).unwrap();
        let h2 = sim.lac.open_session(sim.now).unwrap();
        assert!(
            sim.run_until(Duration::from_secs(120), |s| s
                .count(|e| matches!(e, Event::SessionUp { .. }))
                == 2
                && s.lns.sessions.iter().filter(|x| x.2).count() == 2),
            "seed {seed}: calls not up; events {:?}",
            sim.events
        );
        // Nothing processed twice on either side.
        assert_eq!(sim.count(is_tunnel_up), 1, "seed {seed}");
        for t in [
            MessageType::Sccrq,
            MessageType::Scccn,
            MessageType::Icrq,
            MessageType::Iccn,
        ] {
            let want = if matches!(t, MessageType::Sccrq | MessageType::Scccn) {
                1
            } else {
                2
            };
            assert_eq!(
                sim.lns.count(t),
                want,
                "seed {seed}: {t:?} delivered {} times",
                sim.lns.count(t)
            );
        }
        // The LNS saw the LAC's messages in Ns order without gaps.
        let ns: Vec<u16> = sim
            .lns
            .raw_delivered
            .iter()
            .map(|d| Header::parse(d).unwrap().0.sequence.unwrap().0)
            .collect();
        assert_eq!(ns, (0..ns.len() as u16).collect::<Vec<_>>());
        assert_ne!(h1, h2);
        sim.lac.close(sim.now);
        assert!(
            sim.run_until(Duration::from_secs(120), |s| s
                .has(|e| *e == Event::TunnelClosed)),
            "seed {seed}"
        );
        assert!(
            !sim.has(|e| matches!(e, Event::TunnelDown { .. })),
            "seed {seed}: {:?}",
            sim.events
        );
        assert!(
            sim.lns.zlb_tids.iter().all(|t| *t == 4242),
            "seed {seed}: ZLB without the LNS's tunnel id"
        );
        let msgs: Vec<_> = sim
            .lac_sent
            .iter()
            .filter(|(_, d)| d.len() > CONTROL_HEADER_LEN)
            .map(|(_, d)| d[8..10].to_vec())
            .collect();
        let mut distinct = msgs.clone();
        distinct.sort();
        distinct.dedup();
        retransmitted += msgs.len() - distinct.len();
    }
    assert!(
        retransmitted > 20,
        "loss must have forced retransmissions ({retransmitted})"
    );
}

#[test]
fn retransmissions_back_off_then_give_up() {
    let mut sim = Sim::new(Config::default(), LnsCfg::default(), 3);
    sim.lns_dead = true;
    sim.lac.connect(sim.now);
    sim.lac.open_session(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(60), |s| {
        s.has(|e| matches!(e, Event::TunnelDown { .. }))
    }));
    let times: Vec<u64> = sim.lac_sent.iter().map(|(t, _)| t.as_secs()).collect();
    assert_eq!(times, vec![0, 1, 3, 7, 15, 23]);
    assert!(
        sim.lac_sent.iter().all(|(_, d)| *d == sim.lac_sent[0].1),
        "retransmissions are identical"
    );
    let Some(Event::TunnelDown { reason }) = sim
        .events
        .iter()
        .find(|e| matches!(e, Event::TunnelDown { .. }))
    else {
        unreachable!()
    };
    assert_eq!(reason.cause, CloseCause::NoResponse { retransmits: 5 });
    assert_eq!((sim.now - sim.start).as_secs(), 31);
    assert!(sim.has(|e| matches!(e, Event::SessionDown { .. })));
    assert_eq!(sim.lac.poll_timeout(), None);
}

#[test]
fn tunnel_secret_both_ways() {
    let cfg = Config {
        secret: secret("s3cret"),
        ..Config::default()
    };
    let mut sim = Sim::new(
        cfg.clone(),
        LnsCfg {
            secret: Some(b"s3cret".to_vec()),
            challenge: true,
            ..LnsCfg::default()
        },
        4,
    );
    sim.lac.connect(sim.now);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.has(is_tunnel_up)));
    assert_eq!(sim.lns.state, LnsState::Up);

    // The LNS has another secret: it rejects our response with StopCCN (like xl2tpd).
    let mut sim = Sim::new(
        cfg.clone(),
        LnsCfg {
            secret: Some(b"other".to_vec()),
            challenge: true,
            ..LnsCfg::default()
        },
        5,
    );
    sim.lns.cfg.secret = None; // does not answer our challenge either -> we detect it first
    sim.lac.connect(sim.now);
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.has(|e| matches!(e, Event::TunnelDown { .. }))
    }));
    let Some(Event::TunnelDown { reason }) = sim.events.last().cloned() else {
        panic!("{:?}", sim.events)
    };
    assert_eq!(reason.cause, CloseCause::TunnelAuthFailed);
    assert!(sim.run_until(
        Duration::from_secs(5),
        |s| s.lns.count(MessageType::StopCcn) == 1
    ));

    // The LNS answers our challenge correctly but we answer its challenge wrongly.
    let mut lns = LnsCfg {
        secret: Some(b"s3cret".to_vec()),
        challenge: true,
        ..LnsCfg::default()
    };
    let mut sim = Sim::new(
        Config {
            secret: secret("s3cret"),
            ..Config::default()
        },
        lns.clone(),
        6,
    );
    sim.lns.our_challenge = None;
    lns.secret = Some(b"s3cret".to_vec());
    sim.lns.cfg = lns;
    sim.lac.connect(sim.now);
    // Swap the LNS's view of the secret after it answered our challenge.
    assert!(sim.run_until(Duration::from_secs(5), |s| s.lns.state
        == LnsState::WaitScccn));
    sim.lns.cfg.secret = Some(b"different".to_vec());
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.has(|e| matches!(e, Event::TunnelDown { .. }))
    }));
    let reason = sim
        .events
        .iter()
        .find_map(|e| {
            if let Event::TunnelDown { reason } = e {
                Some(reason.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(reason.cause, CloseCause::PeerStopCcn);
    assert!(
        reason.to_string().contains("probably wrong tunnel secret"),
        "{reason}"
    );

    // The LNS's response to our challenge is wrong.
    let mut sim = Sim::new(
        cfg,
        LnsCfg {
            secret: Some(b"s3cret".to_vec()),
            bad_response: true,
            ..LnsCfg::default()
        },
        7,
    );
    sim.lac.connect(sim.now);
    assert!(sim.run_until(
        Duration::from_secs(5),
        |s| s.lns.count(MessageType::StopCcn) == 1
    ));
    assert!(sim.has(|e| matches!(e, Event::TunnelDown { reason } if reason.cause == CloseCause::TunnelAuthFailed)));
    assert!(!sim.has(is_tunnel_up));
}

#[test]
fn lns_that_never_challenges_is_fine_and_challenge_without_secret_fails() {
    // l2tpns: answers our challenge, never challenges us.
    let cfg = Config {
        secret: secret("k"),
        ..Config::default()
    };
    let mut sim = Sim::new(
        cfg,
        LnsCfg {
            secret: Some(b"k".to_vec()),
            ..LnsCfg::default()
        },
        8,
    );
    sim.lac.connect(sim.now);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.has(is_tunnel_up)));

    let mut sim = Sim::new(
        Config::default(),
        LnsCfg {
            secret: Some(b"k".to_vec()),
            challenge: true,
            ..LnsCfg::default()
        },
        9,
    );
    sim.lac.connect(sim.now);
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.has(|e| matches!(e, Event::TunnelDown { .. }))
    }));
    assert!(sim.has(
        |e| matches!(e, Event::TunnelDown { reason } if reason.cause == CloseCause::SecretRequired)
    ));
}

#[test]
fn hidden_avps_reach_the_lns() {
    let cfg = Config {
        secret: secret("hide-me"),
        hide_avps: true,
        ..Config::default()
    };
    let mut sim = Sim::new(
        cfg,
        LnsCfg {
            secret: Some(b"hide-me".to_vec()),
            ..LnsCfg::default()
        },
        10,
    );
    sim.lac.connect(sim.now);
    sim.lac.open_session(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.lns.sessions.first().is_some_and(|x| x.2)
    }));
    // The ICRQ's Assigned Session ID travelled hidden.
    let icrq = sim.lns.raw_delivered.iter().find(|d| {
        let (_, b) = Header::parse(d).unwrap();
        Message::parse(b, Some(b"hide-me")).unwrap().kind == MessageType::Icrq
    });
    let (_, body) = Header::parse(icrq.unwrap()).unwrap();
    let hidden: Vec<_> = crate::avp::RawAvpIter::new(body)
        .map(Result::unwrap)
        .filter(|a| a.hidden)
        .map(|a| a.attr_type)
        .collect();
    assert!(
        hidden.contains(&crate::avp::attr::ASSIGNED_SESSION_ID),
        "{hidden:?}"
    );
}

#[test]
fn unknown_mandatory_avp_stops_the_tunnel_and_optional_vendor_avps_are_ignored() {
    let extra = vec![Avp::Unknown {
        vendor_id: 9,
        attr_type: 77,
        mandatory: false,
        value: b"x".to_vec(),
    }];
    let mut sim = Sim::new(
        Config::default(),
        LnsCfg {
            sccrp_extra: extra,
            ..LnsCfg::default()
        },
        11,
    );
    sim.lac.connect(sim.now);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.has(is_tunnel_up)));

    let extra = vec![Avp::Unknown {
        vendor_id: 311,
        attr_type: 5,
        mandatory: true,
        value: vec![],
    }];
    let mut sim = Sim::new(
        Config::default(),
        LnsCfg {
            sccrp_extra: extra,
            ..LnsCfg::default()
        },
        12,
    );
    sim.lac.connect(sim.now);
    assert!(sim.run_until(
        Duration::from_secs(5),
        |s| s.lns.count(MessageType::StopCcn) == 1
    ));
    let stop = sim.lns.raw_delivered.last().unwrap();
    let m = Message::parse(Header::parse(stop).unwrap().1, None).unwrap();
    assert_eq!(m.result_code(), Some(&ResultCode::with_error(2, 8, None)));
    assert!(sim.has(|e| matches!(e, Event::TunnelDown { reason }
        if reason.cause == CloseCause::UnknownMandatoryAvp { vendor_id: 311, attr_type: 5 })));
}

#[test]
fn cdn_during_authentication_is_an_authentication_failure() {
    let mut sim = Sim::new(Config::default(), LnsCfg::default(), 13);
    sim.lac.connect(sim.now);
    let h = sim.lac.open_session(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.lns.sessions.first().is_some_and(|x| x.2)
    }));
    sim.lac.set_session_phase(h, Phase::Authentication);
    sim.lns.cdn(ResultCode::new(3));
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.has(|e| matches!(e, Event::SessionDown { .. }))
    }));
    let reason = sim
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
    assert_eq!(
        reason.to_string(),
        "LNS closed the call: result 3 (administrative), during authentication — probably wrong user name or password"
    );
    // The tunnel stays up; data to the dead session is refused.
    assert!(sim.lac.is_established());
    assert!(sim.lac.write_data_header(h, &mut [0u8; 64], 10).is_err());
}

#[test]
fn peer_stopccn_surfaces_and_is_acked() {
    let mut sim = Sim::new(Config::default(), LnsCfg::default(), 14);
    sim.lac.connect(sim.now);
    sim.lac.open_session(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.lns.sessions.first().is_some_and(|x| x.2)
    }));
    sim.lns.stop(ResultCode::new(6));
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.has(|e| matches!(e, Event::TunnelDown { .. })) && s.lns.reliable.all_acked()
    }));
    let reason = sim
        .events
        .iter()
        .find_map(|e| {
            if let Event::TunnelDown { reason } = e {
                Some(reason.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(
        reason.to_string(),
        "LNS closed the tunnel: result 6 (requester is shutting down), during PPP link negotiation"
    );
    assert!(sim.has(
        |e| matches!(e, Event::SessionDown { reason, .. } if reason.cause == CloseCause::TunnelDown)
    ));
    // A close afterwards still completes.
    sim.lac.close(sim.now);
    assert_eq!(sim.lac.poll_event(), Some(Event::TunnelClosed));
}

#[test]
fn peer_sequencing_is_honoured_and_duplicates_dropped() {
    let mut sim = Sim::new(
        Config::default(),
        LnsCfg {
            seq_data: true,
            ..LnsCfg::default()
        },
        15,
    );
    sim.lac.connect(sim.now);
    let h = sim.lac.open_session(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.lns.sessions.first().is_some_and(|x| x.2)
    }));
    assert_eq!(sim.lac.data_header_len(h), 6);
    let d0 = sim.lns.data(b"zero", None);
    let d1 = sim.lns.data(b"one", Some(0));
    let now = sim.now;
    assert_eq!(
        sim.lac.handle_datagram(now, &d0).map(|f| f.payload),
        Some(&b"zero"[..])
    );
    assert_eq!(
        sim.lac.handle_datagram(now, &d1).map(|f| f.session),
        Some(h)
    );
    assert_eq!(
        sim.lac.handle_datagram(now, &d0),
        None,
        "duplicate must be dropped"
    );
    assert_eq!(sim.lac.handle_datagram(now, &d1), None);
    assert_eq!(sim.lac.data_header_len(h), 10);
    sim.lac_send(h, b"a");
    sim.lac_send(h, b"b");
    assert!(sim.run_until(Duration::from_secs(1), |s| s.lns.data_rx.len() == 2));
    assert_eq!(sim.lns.data_ns, vec![0, 1]);
}

#[test]
fn hello_keeps_an_idle_tunnel_alive() {
    let mut sim = Sim::new(
        Config {
            hello_interval: Duration::from_secs(60),
            ..Config::default()
        },
        LnsCfg::default(),
        16,
    );
    sim.lac.connect(sim.now);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.has(is_tunnel_up)));
    assert!(sim.run_until(
        Duration::from_secs(200),
        |s| s.lns.count(MessageType::Hello) == 3
    ));
    assert!(sim.lac.is_established());
    // An LNS that stops answering is detected through the unanswered HELLO.
    sim.lns_dead = true;
    assert!(sim.run_until(Duration::from_secs(200), |s| {
        s.has(|e| matches!(e, Event::TunnelDown { .. }))
    }));
}

#[test]
fn tie_breaker_loss_makes_us_the_responder() {
    let mut sim = Sim::new(Config::default(), LnsCfg::default(), 17);
    sim.lac.connect(sim.now);
    // Drop our SCCRQ on the wire and deliver a crossing SCCRQ from the LNS with a lower tie breaker.
    while sim.lac.poll_transmit(sim.now).is_some() {}
    let mut buf = vec![0u8; CONTROL_HEADER_LEN];
    Message::new(
        MessageType::Sccrq,
        vec![
            Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            Avp::HostName("peer".into()),
            Avp::FramingCapabilities(3),
            Avp::AssignedTunnelId(777),
            Avp::TieBreaker([0; 8]),
        ],
    )
    .emit(&mut buf, None)
    .unwrap();
    let total = buf.len();
    Header::control(0, 0, 0, 0).emit(&mut buf, total).unwrap();
    let now = sim.now;
    sim.lac.handle_datagram(now, &buf);
    let sccrp = sim.lac.poll_transmit(now).unwrap();
    let (h, body) = Header::parse(&sccrp).unwrap();
    assert_eq!((h.tunnel_id, h.sequence), (777, Some((0, 1))));
    assert_eq!(Message::parse(body, None).unwrap().kind, MessageType::Sccrp);
    // SCCCN from the peer completes the tunnel.
    let mut buf = vec![0u8; CONTROL_HEADER_LEN];
    Message::new(MessageType::Scccn, vec![])
        .emit(&mut buf, None)
        .unwrap();
    let total = buf.len();
    Header::control(sim.lac.local_tunnel_id(), 0, 1, 1)
        .emit(&mut buf, total)
        .unwrap();
    sim.lac.handle_datagram(now, &buf);
    assert!(matches!(
        sim.lac.poll_event(),
        Some(Event::TunnelUp {
            peer_tunnel_id: 777,
            ..
        })
    ));
    // And is acknowledged.
    let zlb = sim.lac.poll_transmit(now).unwrap();
    assert_eq!(Header::parse(&zlb).unwrap().0.sequence, Some((1, 2)));
}

#[test]
fn garbage_never_panics_the_lac() {
    let mut sim = Sim::new(Config::default(), LnsCfg::default(), 18);
    sim.lac.connect(sim.now);
    sim.lac.open_session(sim.now).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.lns.sessions.first().is_some_and(|x| x.2)
    }));
    let mut rng = SeqRng(1);
    let tid = sim.lac.local_tunnel_id().to_be_bytes();
    for i in 0..5000 {
        let mut d = vec![0u8; (rng.next_u64() % 80) as usize];
        rng.fill(&mut d);
        if d.len() >= 6 && i % 2 == 0 {
            d[0] = if i % 4 == 0 { 0xc8 } else { 0x40 };
            d[1] = 0x02;
            d[4..6].copy_from_slice(&tid);
        }
        let now = sim.now;
        let _ = sim.lac.handle_datagram(now, &d);
        while sim.lac.poll_transmit(now).is_some() {}
    }
}
