//! Link-level tests: recorded server option sets (SoftEther, l2tpns, from the lab notes) and
//! PPP-against-PPP runs with loss, duplication and reordering on a virtual clock.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use l2sec_crypto::{Rng, TestRng};
use zeroize::Zeroizing;

use crate::fsm::{Fsm, Negotiator, Params, State, Verdict};
use crate::mschap;
use crate::options::{decode_auth, encode_auth};
use crate::wire::*;
use crate::{AuthMethod, Config, DownReason, Event, Link, Packet, Phase};

fn config(auth: &[AuthMethod]) -> Config {
    Config {
        user: "labuser".into(),
        password: Zeroizing::new("labpass".into()),
        auth: auth.to_vec(),
        ..Config::default()
    }
}

/// A decoded control frame the link sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    proto: u16,
    code: u8,
    id: u8,
    data: Vec<u8>,
}

struct Script {
    link: Link,
    now: Instant,
}

impl Script {
    fn new(cfg: Config) -> Self {
        let now = Instant::now();
        let mut link = Link::new(cfg, Box::new(TestRng::new(7)), now);
        link.open(now);
        Self { link, now }
    }

    fn out(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(f) = self.link.poll_transmit(self.now) {
            assert_eq!(&f[..2], &[0xff, 0x03], "we always send address/control");
            let fr = Frame::parse(&f).unwrap();
            let p = CpPacket::parse(fr.payload).unwrap();
            v.push(Out {
                proto: fr.protocol,
                code: p.code,
                id: p.id,
                data: p.data.to_vec(),
            });
        }
        v
    }

    fn one(&mut self) -> Out {
        let o = self.out();
        assert_eq!(o.len(), 1, "{o:x?}");
        o.into_iter().next().unwrap()
    }

    fn feed(&mut self, proto: u16, code: u8, id: u8, data: &[u8]) {
        let f = Frame::emit(proto, &CpPacket::emit(code, id, data));
        assert!(self.link.handle_frame(self.now, &f).is_none());
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.link.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.link.handle_timeout(self.now);
    }
}

const CHALLENGE: [u8; 16] = [
    0x5b, 0x5d, 0x7c, 0x7d, 0x7b, 0x3f, 0x2f, 0x3e, 0x3c, 0x2c, 0x60, 0x21, 0x32, 0x26, 0x26, 0x28,
];

fn chap_challenge(value: &[u8], name: &[u8]) -> Vec<u8> {
    let mut d = vec![value.len() as u8];
    d.extend_from_slice(value);
    d.extend_from_slice(name);
    d
}

/// SoftEther up to LCP open with `auth` accepted after the EAP (and maybe MS-CHAPv2) Naks;
/// returns what followed the final Configure-Ack.
fn softether_lcp(s: &mut Script, expect_naks: &[Vec<u8>], final_auth: &[u8]) -> Vec<Out> {
    // >> LCP Conf-Req MRU=1400 Magic=...
    let req = s.one();
    assert_eq!((req.proto, req.code), (PROTO_LCP, CODE_CONF_REQ));
    assert_eq!(&req.data[..4], &[1, 4, 0x05, 0x78]);
    assert_eq!(&req.data[4..6], &[5, 6]);
    // << Conf-Rej Magic
    s.feed(PROTO_LCP, CODE_CONF_REJ, req.id, &req.data[4..]);
    let req2 = s.one();
    assert_eq!(
        (req2.code, req2.data.clone()),
        (CODE_CONF_REQ, vec![1, 4, 0x05, 0x78])
    );
    assert_ne!(req2.id, req.id);
    // << Conf-Req Auth=EAP  >> Conf-Nak
    s.feed(PROTO_LCP, CODE_CONF_REQ, 0, &[3, 4, 0xc2, 0x27]);
    let nak = s.one();
    assert_eq!((nak.code, nak.id), (CODE_CONF_NAK, 0));
    assert_eq!(nak.data, expect_naks[0]);
    // << Echo-Req before LCP is open: silently discarded
    s.feed(PROTO_LCP, CODE_ECHO_REQ, 0, b"\0\0\0\0Aho Baka Manuke\0");
    assert!(s.out().is_empty());
    // << Conf-Ack MRU=1400
    s.feed(PROTO_LCP, CODE_CONF_ACK, req2.id, &[1, 4, 0x05, 0x78]);
    assert!(s.out().is_empty());
    let mut id = 1;
    for (i, offer) in [&[3u8, 5, 0xc2, 0x23, 0x81][..], &[3, 4, 0xc0, 0x23]]
        .iter()
        .enumerate()
    {
        if *offer == final_auth {
            break;
        }
        s.feed(PROTO_LCP, CODE_CONF_REQ, id, offer);
        let nak = s.one();
        assert_eq!(
            (nak.code, nak.id, nak.data.clone()),
            (CODE_CONF_NAK, id, expect_naks[i + 1].clone())
        );
        id += 1;
    }
    s.feed(PROTO_LCP, CODE_CONF_REQ, id, final_auth);
    let mut out = s.out();
    let ack = out.remove(0);
    assert_eq!(
        (ack.code, ack.id, ack.data),
        (CODE_CONF_ACK, id, final_auth.to_vec())
    );
    out
}

/// IPCP as SoftEther runs it (server Nak with the DHCP lease, then its own request).
fn softether_ipcp(s: &mut Script, first: Vec<Out>) {
    let ipcp = first
        .iter()
        .find(|o| o.proto == PROTO_IPCP)
        .expect("IPCP Conf-Req")
        .clone();
    assert_eq!(ipcp.code, CODE_CONF_REQ);
    assert_eq!(
        ipcp.data,
        vec![3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0]
    );
    let v6 = first
        .iter()
        .find(|o| o.proto == PROTO_IPV6CP)
        .expect("IPV6CP Conf-Req")
        .clone();
    // SoftEther does not run IPV6CP: Protocol-Reject it; the link must stay up
    let mut rej = PROTO_IPV6CP.to_be_bytes().to_vec();
    rej.extend_from_slice(&CpPacket::emit(v6.code, v6.id, &v6.data));
    s.feed(PROTO_LCP, CODE_PROTO_REJ, 9, &rej);
    assert!(s.out().is_empty());
    let lease = [
        3, 6, 198, 19, 0, 10, 129, 6, 198, 19, 0, 1, 131, 6, 198, 19, 0, 2,
    ];
    s.feed(PROTO_IPCP, CODE_CONF_NAK, ipcp.id, &lease);
    let req = s.one();
    assert_eq!(
        (req.proto, req.code, req.data.clone()),
        (PROTO_IPCP, CODE_CONF_REQ, lease.to_vec())
    );
    s.feed(PROTO_IPCP, CODE_CONF_REQ, 3, &[3, 6, 198, 19, 0, 1]);
    let ack = s.one();
    assert_eq!(
        (ack.code, ack.id, ack.data),
        (CODE_CONF_ACK, 3, vec![3, 6, 198, 19, 0, 1])
    );
    assert!(s.events().iter().all(|e| !matches!(e, Event::Up { .. })));
    s.feed(PROTO_IPCP, CODE_CONF_ACK, req.id, &lease);
    let ev = s.events();
    assert_eq!(
        ev,
        vec![Event::Up {
            local: Ipv4Addr::new(198, 19, 0, 10),
            peer: Ipv4Addr::new(198, 19, 0, 1),
            dns: vec![Ipv4Addr::new(198, 19, 0, 1), Ipv4Addr::new(198, 19, 0, 2)],
            mtu: 1400,
        }]
    );
    assert_eq!(s.link.phase(), Phase::Network);
}

#[test]
fn softether_mschapv2_recorded() {
    let mut cfg = config(&[AuthMethod::MsChapV2, AuthMethod::Pap]);
    cfg.user = "LAB\\labuser".into();
    let mut s = Script::new(cfg);
    let ms = vec![3, 5, 0xc2, 0x23, 0x81];
    assert!(softether_lcp(&mut s, std::slice::from_ref(&ms), &ms).is_empty());
    assert_eq!(
        s.events(),
        vec![
            Event::LcpUp {
                mru: 1400,
                peer_mru: 1500
            },
            Event::AuthStarted {
                method: AuthMethod::MsChapV2
            }
        ]
    );
    assert_eq!(s.link.phase(), Phase::Authenticate);
    // << CHAP Challenge id=2 size 16 name "vm"
    s.feed(PROTO_CHAP, 1, 2, &chap_challenge(&CHALLENGE, b"vm"));
    let resp = s.one();
    assert_eq!((resp.proto, resp.code, resp.id), (PROTO_CHAP, 2, 2));
    assert_eq!(resp.data[0], 49);
    let peer: [u8; 16] = resp.data[1..17].try_into().unwrap();
    assert_eq!(&resp.data[17..25], &[0; 8]);
    let nt: [u8; 24] = resp.data[25..49].try_into().unwrap();
    assert_eq!(resp.data[49], 0);
    // the full DOMAIN\user goes in the Name field, the hash uses "labuser" only
    assert_eq!(&resp.data[50..], b"LAB\\labuser");
    assert_eq!(
        nt,
        mschap::generate_nt_response(&CHALLENGE, &peer, "labuser", "labpass")
    );
    // a retransmitted challenge gets the very same response
    s.feed(PROTO_CHAP, 1, 2, &chap_challenge(&CHALLENGE, b"vm"));
    assert_eq!(s.one(), resp);
    let ar = mschap::authenticator_response("labpass", &nt, &peer, &CHALLENGE, "labuser");
    let success = mschap::format_authenticator_response(&ar);
    s.feed(PROTO_CHAP, 3, 2, success.as_bytes());
    assert_eq!(
        s.events(),
        vec![Event::AuthOk {
            method: AuthMethod::MsChapV2
        }]
    );
    let first = s.out();
    softether_ipcp(&mut s, first);
    // << Echo-Req magic 0 "Aho Baka Manuke": reply with magic 0 (ours was rejected)
    s.feed(PROTO_LCP, CODE_ECHO_REQ, 4, b"\0\0\0\0Aho Baka Manuke\0");
    let rep = s.one();
    assert_eq!(
        (rep.code, rep.id, rep.data),
        (CODE_ECHO_REPLY, 4, b"\0\0\0\0Aho Baka Manuke\0".to_vec())
    );
    // IP data, zero-copy, with and without FF 03 / PFC
    let ip = [0x45u8, 0, 0, 20];
    for f in [
        vec![0xff, 0x03, 0x00, 0x21],
        vec![0x00, 0x21],
        vec![0x21],
        vec![0xff, 0x03, 0x21],
    ] {
        let mut frame = f.clone();
        frame.extend_from_slice(&ip);
        assert_eq!(
            s.link.handle_frame(s.now, &frame),
            Some(Packet::Ipv4(&frame[f.len()..]))
        );
    }
    // IPv6 was rejected: its data is dropped; CCP is Protocol-Rejected
    assert_eq!(s.link.handle_frame(s.now, &[0xff, 3, 0, 0x57, 0x60]), None);
    s.feed(PROTO_CCP, CODE_CONF_REQ, 1, &[18, 6, 0, 0, 0, 1]);
    let pr = s.one();
    assert_eq!((pr.proto, pr.code), (PROTO_LCP, CODE_PROTO_REJ));
    assert_eq!(&pr.data[..2], &[0x80, 0xfd]);
    assert_eq!(
        &pr.data[2..],
        &CpPacket::emit(1, 1, &[18, 6, 0, 0, 0, 1])[..]
    );
    let mut hdr = [0u8; 4];
    assert_eq!(s.link.write_ip_header(&mut hdr, false), 4);
    assert_eq!(hdr, [0xff, 0x03, 0x00, 0x21]);
    assert_eq!(s.link.write_ip_header(&mut hdr, true), 4);
    assert_eq!(hdr, [0xff, 0x03, 0x00, 0x57]);
    // close: Terminate-Request, Down after the Terminate-Ack
    s.link.close(s.now);
    let tr = s.one();
    assert_eq!(tr.code, CODE_TERM_REQ);
    assert_eq!(s.link.phase(), Phase::Terminate);
    s.feed(PROTO_LCP, CODE_TERM_ACK, tr.id, &[]);
    assert_eq!(
        s.events(),
        vec![Event::Down {
            reason: DownReason::Closed
        }]
    );
    assert_eq!(s.link.phase(), Phase::Dead);
    assert_eq!(s.link.poll_timeout(), None);
}

fn mschap_to_auth(s: &mut Script) -> (Out, [u8; 16], [u8; 24]) {
    let ms = vec![3, 5, 0xc2, 0x23, 0x81];
    assert!(softether_lcp(s, std::slice::from_ref(&ms), &ms).is_empty());
    s.events();
    s.feed(PROTO_CHAP, 1, 2, &chap_challenge(&CHALLENGE, b"vm"));
    let resp = s.one();
    let peer: [u8; 16] = resp.data[1..17].try_into().unwrap();
    let nt: [u8; 24] = resp.data[25..49].try_into().unwrap();
    (resp, peer, nt)
}

#[test]
fn softether_wrong_password_e691() {
    let mut s = Script::new(config(&[AuthMethod::MsChapV2]));
    mschap_to_auth(&mut s);
    let msg = "E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3";
    s.feed(PROTO_CHAP, 4, 2, msg.as_bytes());
    let tr = s.one();
    assert_eq!((tr.proto, tr.code), (PROTO_LCP, CODE_TERM_REQ));
    assert!(s.events().is_empty());
    s.feed(PROTO_LCP, CODE_TERM_ACK, tr.id, &[]);
    let ev = s.events();
    let Event::Down { reason } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        reason,
        &DownReason::AuthFailed {
            method: AuthMethod::MsChapV2,
            message: msg.into()
        }
    );
    assert_eq!(reason.mschap_error(), Some(691));
}

#[test]
fn mschapv2_authenticator_mismatch_fails_the_link() {
    let mut s = Script::new(config(&[AuthMethod::MsChapV2]));
    mschap_to_auth(&mut s);
    s.feed(
        PROTO_CHAP,
        3,
        2,
        b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=hi",
    );
    assert!(s.events().is_empty(), "no AuthOk for a wrong S=");
    let tr = s.one();
    assert_eq!(tr.code, CODE_TERM_REQ);
    // the server never answers: Down after two Terminate-Requests
    s.advance(Duration::from_secs(3));
    assert_eq!(s.one().code, CODE_TERM_REQ);
    s.advance(Duration::from_secs(3));
    assert_eq!(
        s.events(),
        vec![Event::Down {
            reason: DownReason::AuthResponseMismatch
        }]
    );
    // Success without S= is a mismatch as well
    let mut s = Script::new(config(&[AuthMethod::MsChapV2]));
    mschap_to_auth(&mut s);
    s.feed(PROTO_CHAP, 3, 2, b"");
    assert_eq!(s.one().code, CODE_TERM_REQ);
}

#[test]
fn softether_pap_recorded() {
    let mut s = Script::new(config(&[AuthMethod::Pap]));
    let pap = vec![3, 4, 0xc0, 0x23];
    let after = softether_lcp(&mut s, &[pap.clone(), pap.clone()], &pap);
    let ev = s.events();
    assert_eq!(
        ev[1],
        Event::AuthStarted {
            method: AuthMethod::Pap
        }
    );
    let [req] = &after[..] else {
        panic!("{after:?}")
    };
    let req = req.clone();
    assert_eq!((req.proto, req.code), (PROTO_PAP, 1));
    assert_eq!(req.data, b"\x07labuser\x07labpass".to_vec());
    // lost: retransmitted with the same id after the restart timer
    s.advance(Duration::from_secs(3));
    assert_eq!(s.one(), req);
    s.feed(PROTO_PAP, 2, req.id, &[0]);
    assert_eq!(
        s.events(),
        vec![Event::AuthOk {
            method: AuthMethod::Pap
        }]
    );
    let first = s.out();
    softether_ipcp(&mut s, first);
}

#[test]
fn softether_refused_methods() {
    // only CHAP-MD5 allowed: SoftEther offers EAP, MS-CHAPv2, PAP, then terminates
    let mut s = Script::new(config(&[AuthMethod::Chap]));
    let chap = vec![3, 5, 0xc2, 0x23, 5];
    let req = s.one();
    s.feed(PROTO_LCP, CODE_CONF_REJ, req.id, &req.data[4..]);
    let req2 = s.one();
    for (id, offer) in [
        (0u8, &[3u8, 4, 0xc2, 0x27][..]),
        (1, &[3, 5, 0xc2, 0x23, 0x81]),
        (2, &[3, 4, 0xc0, 0x23]),
    ] {
        s.feed(PROTO_LCP, CODE_CONF_REQ, id, offer);
        assert_eq!(s.one().data, chap);
    }
    s.feed(PROTO_LCP, CODE_CONF_ACK, req2.id, &req2.data);
    s.feed(PROTO_LCP, CODE_TERM_REQ, 3, &[]);
    assert_eq!(s.one().code, CODE_TERM_ACK);
    // no further Configure-Requests: the link is dead at once
    assert_eq!(s.link.poll_timeout(), None);
    let ev = s.events();
    let Event::Down { reason } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        reason,
        &DownReason::AuthMethodRefused {
            offered: vec!["EAP".into(), "MS-CHAPv2".into(), "PAP".into()]
        }
    );
    assert!(reason.to_string().contains("EAP, MS-CHAPv2, PAP"));
}

#[test]
fn l2tpns_multilink_chap_md5_recorded() {
    let mut s = Script::new(config(&[
        AuthMethod::MsChapV2,
        AuthMethod::Chap,
        AuthMethod::Pap,
    ]));
    let req = s.one();
    // << LCP ConfReq MRU=1462 Auth=CHAP/MD5 Magic MRRU(17)=1614 EndpointDisc(19)
    let mrru = [17u8, 4, 0x06, 0x4e];
    let ed = [19u8, 9, 1, 0x76, 0x6d, 0x2d, 0x6c, 0x6e, 0x73];
    let mut offer = vec![
        1, 4, 0x05, 0xb6, 3, 5, 0xc2, 0x23, 5, 5, 6, 0x12, 0x34, 0x56, 0x78,
    ];
    offer.extend_from_slice(&mrru);
    offer.extend_from_slice(&ed);
    s.feed(PROTO_LCP, CODE_CONF_REQ, 1, &offer);
    let rej = s.one();
    let mut want = mrru.to_vec();
    want.extend_from_slice(&ed);
    assert_eq!((rej.code, rej.id, rej.data), (CODE_CONF_REJ, 1, want));
    // l2tpns acks our request (MRU and Magic) and re-sends its own without MP options
    s.feed(PROTO_LCP, CODE_CONF_ACK, req.id, &req.data);
    s.feed(PROTO_LCP, CODE_CONF_REQ, 2, &offer[..15]);
    assert_eq!(s.one().code, CODE_CONF_ACK);
    assert_eq!(
        s.events(),
        vec![
            Event::LcpUp {
                mru: 1400,
                peer_mru: 1462
            },
            Event::AuthStarted {
                method: AuthMethod::Chap
            }
        ]
    );
    // << CHAP Challenge (16 bytes, name = hostname)
    let ch = [0xa5u8; 16];
    s.feed(PROTO_CHAP, 1, 7, &chap_challenge(&ch, b"vm"));
    let resp = s.one();
    assert_eq!((resp.proto, resp.code, resp.id), (PROTO_CHAP, 2, 7));
    assert_eq!(resp.data[0], 16);
    assert_eq!(
        &resp.data[1..17],
        &mschap::chap_md5_response(7, b"labpass", &ch)
    );
    assert_eq!(&resp.data[17..], b"labuser");
    s.feed(PROTO_CHAP, 3, 7, b"");
    assert_eq!(
        s.events(),
        vec![Event::AuthOk {
            method: AuthMethod::Chap
        }]
    );
    let out = s.out();
    let ipcp = out.iter().find(|o| o.proto == PROTO_IPCP).unwrap().clone();
    // << IPCP ConfReq IP=198.19.22.1; ConfNak IP=198.19.20.1 DNS1=198.19.22.53
    s.feed(PROTO_IPCP, CODE_CONF_REQ, 1, &[3, 6, 198, 19, 22, 1]);
    assert_eq!(s.one().code, CODE_CONF_ACK);
    s.feed(
        PROTO_IPCP,
        CODE_CONF_NAK,
        ipcp.id,
        &[3, 6, 198, 19, 20, 1, 129, 6, 198, 19, 22, 53],
    );
    let req = s.one();
    assert_eq!(
        req.data,
        vec![
            3, 6, 198, 19, 20, 1, 129, 6, 198, 19, 22, 53, 131, 6, 0, 0, 0, 0
        ]
    );
    s.feed(PROTO_IPCP, CODE_CONF_REJ, req.id, &[131, 6, 0, 0, 0, 0]);
    let req = s.one();
    assert_eq!(
        req.data,
        vec![3, 6, 198, 19, 20, 1, 129, 6, 198, 19, 22, 53]
    );
    s.feed(PROTO_IPCP, CODE_CONF_ACK, req.id, &req.data);
    assert_eq!(
        s.events(),
        vec![Event::Up {
            local: Ipv4Addr::new(198, 19, 20, 1),
            peer: Ipv4Addr::new(198, 19, 22, 1),
            dns: vec![Ipv4Addr::new(198, 19, 22, 53)],
            mtu: 1400,
        }]
    );
    // echo keepalive: our request carries our magic; l2tpns answers
    s.advance(Duration::from_secs(20));
    let echo = s
        .out()
        .into_iter()
        .find(|o| o.code == CODE_ECHO_REQ)
        .unwrap();
    assert_eq!(echo.data.len(), 4);
    s.feed(
        PROTO_LCP,
        CODE_ECHO_REPLY,
        echo.id,
        &[0x12, 0x34, 0x56, 0x78],
    );
}

#[test]
fn l2tpns_cdn_during_auth_is_auth_failure() {
    let mut s = Script::new(config(&[AuthMethod::Pap]));
    let req = s.one();
    s.feed(PROTO_LCP, CODE_CONF_ACK, req.id, &req.data);
    s.feed(PROTO_LCP, CODE_CONF_REQ, 1, &[3, 4, 0xc0, 0x23]);
    s.out();
    s.events();
    s.link.lower_layer_down(s.now);
    let ev = s.events();
    let Event::Down {
        reason:
            DownReason::AuthFailed {
                method: AuthMethod::Pap,
                ..
            },
    } = &ev[0]
    else {
        panic!("{ev:?}")
    };
}

#[test]
fn echo_timeout_and_peer_terminate() {
    let mut cfg = config(&[AuthMethod::Pap]);
    cfg.echo_interval = Duration::from_secs(5);
    cfg.echo_failures = 3;
    let mut s = Script::new(cfg);
    let req = s.one();
    s.feed(PROTO_LCP, CODE_CONF_ACK, req.id, &req.data);
    s.feed(PROTO_LCP, CODE_CONF_REQ, 1, &[]);
    assert_eq!(s.out()[0].code, CODE_CONF_ACK);
    assert_eq!(s.link.phase(), Phase::Network);
    let mut echoes = 0;
    for _ in 0..4 {
        let t = s.link.poll_timeout().unwrap();
        s.now = t;
        s.link.handle_timeout(t);
        // only the IPCP/IPV6CP restarts and echoes happen here; nobody answers
        echoes += s
            .out()
            .iter()
            .filter(|o| o.code == CODE_ECHO_REQ && o.proto == PROTO_LCP)
            .count();
        if s.events().iter().any(|e| matches!(e, Event::Down { .. })) {
            panic!("down too early");
        }
        if echoes == 3 {
            break;
        }
    }
    let mut down = None;
    for _ in 0..50 {
        let Some(t) = s.link.poll_timeout() else {
            break;
        };
        s.now = t;
        s.link.handle_timeout(t);
        s.out();
        if let Some(Event::Down { reason }) = s
            .events()
            .into_iter()
            .find(|e| matches!(e, Event::Down { .. }))
        {
            down = Some(reason);
            break;
        }
    }
    // IPCP gives up first? No: it is Max-Configure * 3 s = 30 s; echo fails at 20 s.
    assert_eq!(down, Some(DownReason::EchoTimeout));

    let mut s = Script::new(config(&[AuthMethod::Pap]));
    let req = s.one();
    s.feed(PROTO_LCP, CODE_CONF_ACK, req.id, &req.data);
    s.feed(PROTO_LCP, CODE_CONF_REQ, 1, &[]);
    s.out();
    s.feed(PROTO_LCP, CODE_TERM_REQ, 9, b"Admin reset");
    assert_eq!(s.one().code, CODE_TERM_ACK);
    assert_eq!(s.link.phase(), Phase::Terminate);
    s.advance(Duration::from_secs(3));
    let ev = s.events();
    assert_eq!(
        ev.last(),
        Some(&Event::Down {
            reason: DownReason::PeerTerminated("Admin reset".into())
        })
    );
    assert!(
        ev.last().unwrap().clone()
            != Event::Down {
                reason: DownReason::Closed
            }
    );
}

#[test]
fn lcp_identification_and_unknown_code() {
    let mut s = Script::new(config(&[AuthMethod::Pap]));
    let req = s.one();
    s.feed(PROTO_LCP, CODE_CONF_ACK, req.id, &req.data);
    s.feed(PROTO_LCP, CODE_CONF_REQ, 1, &[]);
    s.out();
    // RFC 1570 Identification / Time-Remaining: ignored silently
    s.feed(PROTO_LCP, CODE_IDENTIFICATION, 2, b"\0\0\0\0MikroTik");
    s.feed(
        PROTO_LCP,
        CODE_TIME_REMAINING,
        3,
        &[0, 0, 0, 0, 0, 0, 0, 60],
    );
    assert!(s.out().is_empty());
    // an unknown code gets a Code-Reject
    s.feed(PROTO_LCP, 0x42, 4, &[1, 2]);
    let cj = s.one();
    assert_eq!(
        (cj.code, cj.data),
        (CODE_CODE_REJ, vec![0x42, 4, 0, 6, 1, 2])
    );
    assert_eq!(s.link.phase(), Phase::Network);
}

#[test]
fn lcp_gives_up_without_answer() {
    let mut s = Script::new(config(&[AuthMethod::Pap]));
    let mut reqs = 0;
    while let Some(t) = s.link.poll_timeout() {
        reqs += s.out().len();
        s.now = t;
        s.link.handle_timeout(t);
    }
    assert_eq!(reqs, 10);
    let ev = s.events();
    assert!(
        matches!(
            &ev[..],
            [Event::Down {
                reason: DownReason::NegotiationFailed(_)
            }]
        ),
        "{ev:?}"
    );
}

// ---------------------------------------------------------------- test server

struct SrvLcp {
    auth: AuthMethod,
    supported: Vec<AuthMethod>,
    magic: Option<u32>,
    multilink: bool,
}

impl Negotiator for SrvLcp {
    fn request(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        push_option(&mut v, 3, &encode_auth(self.auth));
        if let Some(m) = self.magic {
            push_option(&mut v, 5, &m.to_be_bytes());
        }
        if self.multilink {
            v.extend_from_slice(&[17, 4, 0x06, 0x4e, 19, 3, 0]);
        }
        v
    }
    fn check_request(&mut self, options: &[u8], _allow_nak: bool) -> Verdict {
        let mut rej = Vec::new();
        for o in Options::new(options) {
            let Ok(o) = o else { return Verdict::Discard };
            if !matches!(o.kind, 1 | 5) {
                o.emit(&mut rej);
            }
        }
        if rej.is_empty() {
            Verdict::Ack
        } else {
            Verdict::Reject(rej)
        }
    }
    fn nak_received(&mut self, options: &[u8]) {
        for o in Options::new(options).map_while(Result::ok) {
            if o.kind == 3 {
                if let Ok(m) = decode_auth(o.value) {
                    if self.supported.contains(&m) {
                        self.auth = m;
                    }
                }
            }
        }
    }
    fn reject_received(&mut self, options: &[u8]) {
        for o in Options::new(options).map_while(Result::ok) {
            match o.kind {
                5 => self.magic = None,
                17 | 19 => self.multilink = false,
                _ => {}
            }
        }
    }
}

struct SrvIpcp {
    own: Ipv4Addr,
    assign: Ipv4Addr,
    dns: [Ipv4Addr; 2],
}

impl Negotiator for SrvIpcp {
    fn request(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        push_option(&mut v, 3, &self.own.octets());
        v
    }
    fn check_request(&mut self, options: &[u8], _allow_nak: bool) -> Verdict {
        let (mut nak, mut rej) = (Vec::new(), Vec::new());
        for o in Options::new(options) {
            let Ok(o) = o else { return Verdict::Discard };
            let want = match o.kind {
                3 => self.assign,
                129 => self.dns[0],
                131 => self.dns[1],
                _ => {
                    o.emit(&mut rej);
                    continue;
                }
            };
            if o.value != want.octets() {
                push_option(&mut nak, o.kind, &want.octets());
            }
        }
        if !rej.is_empty() {
            Verdict::Reject(rej)
        } else if !nak.is_empty() {
            Verdict::Nak(nak)
        } else {
            Verdict::Ack
        }
    }
    fn nak_received(&mut self, _options: &[u8]) {}
    fn reject_received(&mut self, _options: &[u8]) {}
}

struct SrvV6;

impl Negotiator for SrvV6 {
    fn request(&mut self) -> Vec<u8> {
        vec![1, 10, 2, 0, 0, 0, 0, 0, 0, 1]
    }
    fn check_request(&mut self, options: &[u8], _allow_nak: bool) -> Verdict {
        match options {
            [1, 10, iid @ ..] if iid != [0; 8] && iid != [2, 0, 0, 0, 0, 0, 0, 1] => Verdict::Ack,
            _ => Verdict::Reject(options.to_vec()),
        }
    }
    fn nak_received(&mut self, _options: &[u8]) {}
    fn reject_received(&mut self, _options: &[u8]) {}
}

/// A small authenticator/LNS-side PPP peer built on the same automaton.
struct Server {
    user: String,
    pass: String,
    lcp: Fsm,
    lcp_n: SrvLcp,
    ipcp: Fsm,
    ipcp_n: SrvIpcp,
    v6: Fsm,
    v6_n: SrvV6,
    rng: TestRng,
    tx: Vec<Vec<u8>>,
    chap: Option<(u8, [u8; 16])>,
    chap_deadline: Option<Instant>,
    verdict: Option<(u16, Vec<u8>)>,
    ncp_started: bool,
    ipv6: bool,
}

impl Server {
    fn new(auth: AuthMethod, seed: u64) -> Self {
        let p = Params::default();
        Self {
            user: "labuser".into(),
            pass: "labpass".into(),
            lcp: Fsm::new(p, 200),
            lcp_n: SrvLcp {
                auth,
                supported: vec![AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap],
                magic: Some(0x1234_5678),
                multilink: true,
            },
            ipcp: Fsm::new(p, 100),
            ipcp_n: SrvIpcp {
                own: Ipv4Addr::new(198, 19, 22, 1),
                assign: Ipv4Addr::new(198, 19, 20, 7),
                dns: [
                    Ipv4Addr::new(198, 19, 22, 53),
                    Ipv4Addr::new(198, 19, 22, 54),
                ],
            },
            v6: Fsm::new(p, 50),
            v6_n: SrvV6,
            rng: TestRng::new(seed),
            tx: Vec::new(),
            chap: None,
            chap_deadline: None,
            verdict: None,
            ncp_started: false,
            ipv6: true,
        }
    }

    fn start(&mut self, now: Instant) {
        self.lcp.open(now, &mut self.lcp_n);
        self.lcp.up(now, &mut self.lcp_n);
        self.flush();
    }

    fn flush(&mut self) {
        while let Some(p) = self.lcp.pop_tx() {
            self.tx.push(Frame::emit(PROTO_LCP, &p));
        }
        while let Some(p) = self.ipcp.pop_tx() {
            self.tx.push(Frame::emit(PROTO_IPCP, &p));
        }
        while let Some(p) = self.v6.pop_tx() {
            self.tx.push(Frame::emit(PROTO_IPV6CP, &p));
        }
    }

    fn send_challenge(&mut self, now: Instant) {
        if let Some((id, ch)) = self.chap {
            self.tx.push(Frame::emit(
                PROTO_CHAP,
                &CpPacket::emit(1, id, &chap_challenge(&ch, b"srv")),
            ));
            self.chap_deadline = Some(now + Duration::from_secs(3));
        }
    }

    fn lcp_event(&mut self, now: Instant, ev: Option<crate::fsm::LayerEvent>) {
        match ev {
            Some(crate::fsm::LayerEvent::Up) => self.lcp_up(now),
            Some(crate::fsm::LayerEvent::Down) => {
                self.ipcp.down();
                self.v6.down();
                self.ncp_started = false;
                self.verdict = None;
                self.chap = None;
                self.chap_deadline = None;
            }
            _ => {}
        }
    }

    fn lcp_up(&mut self, now: Instant) {
        if self.lcp_n.auth != AuthMethod::Pap {
            let mut ch = [0u8; 16];
            self.rng.fill(&mut ch);
            self.chap = Some((self.lcp.alloc_id(), ch));
            self.send_challenge(now);
        }
    }

    fn auth_done(&mut self, now: Instant, proto: u16, packet: Vec<u8>, ok: bool) {
        self.tx.push(Frame::emit(proto, &packet));
        self.verdict = Some((proto, packet));
        self.chap_deadline = None;
        if ok && !self.ncp_started {
            self.ncp_started = true;
            self.ipcp.open(now, &mut self.ipcp_n);
            self.ipcp.up(now, &mut self.ipcp_n);
            if self.ipv6 {
                self.v6.open(now, &mut self.v6_n);
                self.v6.up(now, &mut self.v6_n);
            }
        }
    }

    fn handle(&mut self, now: Instant, frame: &[u8]) {
        let Ok(f) = Frame::parse(frame) else { return };
        let Ok(p) = CpPacket::parse(f.payload) else {
            return;
        };
        match f.protocol {
            PROTO_LCP if p.code == CODE_ECHO_REQ => {
                let mut d = 0x1234_5678u32.to_be_bytes().to_vec();
                d.extend_from_slice(&p.data[4.min(p.data.len())..]);
                self.tx.push(Frame::emit(
                    PROTO_LCP,
                    &CpPacket::emit(CODE_ECHO_REPLY, p.id, &d),
                ));
            }
            PROTO_LCP if p.code <= 7 => {
                let ev = self.lcp.input(now, &p, &mut self.lcp_n);
                self.lcp_event(now, ev);
            }
            PROTO_PAP if p.code == 1 => {
                if let Some((proto, pkt)) = &self.verdict {
                    let pkt = CpPacket::emit(pkt[0], p.id, CpPacket::parse(pkt).unwrap().data);
                    self.tx.push(Frame::emit(*proto, &pkt));
                    return;
                }
                let d = p.data;
                let ul = usize::from(d[0]);
                let user = &d[1..1 + ul];
                let pass = &d[2 + ul..2 + ul + usize::from(d[1 + ul])];
                let ok = user == self.user.as_bytes() && pass == self.pass.as_bytes();
                let pkt = CpPacket::emit(
                    if ok { 2 } else { 3 },
                    p.id,
                    if ok { b"\x02ok" } else { b"\x03bad" },
                );
                self.auth_done(now, PROTO_PAP, pkt, ok);
            }
            PROTO_CHAP if p.code == 2 => {
                let Some((id, ch)) = self.chap else { return };
                if p.id != id {
                    return;
                }
                if let Some((proto, pkt)) = self.verdict.clone() {
                    self.tx.push(Frame::emit(proto, &pkt));
                    return;
                }
                let size = usize::from(p.data[0]);
                let value = &p.data[1..1 + size];
                let name = std::str::from_utf8(&p.data[1 + size..])
                    .unwrap()
                    .to_string();
                let (ok, msg) = match self.lcp_n.auth {
                    AuthMethod::MsChapV2 => {
                        let peer: [u8; 16] = value[..16].try_into().unwrap();
                        let nt: [u8; 24] = value[24..48].try_into().unwrap();
                        let good = mschap::generate_nt_response(&ch, &peer, &name, &self.pass)
                            == nt
                            && mschap::hash_user_name(&name) == self.user;
                        let ar = mschap::authenticator_response(&self.pass, &nt, &peer, &ch, &name);
                        if good {
                            (
                                true,
                                format!("{} M=welcome", mschap::format_authenticator_response(&ar)),
                            )
                        } else {
                            (
                                false,
                                "E=691 R=0 C=00000000000000000000000000000000 V=3 M=denied"
                                    .to_string(),
                            )
                        }
                    }
                    _ => {
                        let good =
                            value == mschap::chap_md5_response(id, self.pass.as_bytes(), &ch);
                        (good, if good { "ok".into() } else { "no".into() })
                    }
                };
                let pkt = CpPacket::emit(if ok { 3 } else { 4 }, id, msg.as_bytes());
                self.auth_done(now, PROTO_CHAP, pkt, ok);
            }
            PROTO_IPCP if self.ncp_started => {
                self.ipcp.input(now, &p, &mut self.ipcp_n);
            }
            PROTO_IPV6CP if self.ncp_started && self.ipv6 => {
                self.v6.input(now, &p, &mut self.v6_n);
            }
            PROTO_IPV6CP => {
                let mut d = PROTO_IPV6CP.to_be_bytes().to_vec();
                d.extend_from_slice(f.payload);
                let id = self.lcp.alloc_id();
                self.tx.push(Frame::emit(
                    PROTO_LCP,
                    &CpPacket::emit(CODE_PROTO_REJ, id, &d),
                ));
            }
            _ => {}
        }
        self.flush();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.lcp.poll_timeout(),
            self.ipcp.poll_timeout(),
            self.v6.poll_timeout(),
            self.chap_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn timeout(&mut self, now: Instant) {
        let ev = self.lcp.handle_timeout(now, &mut self.lcp_n);
        self.lcp_event(now, ev);
        self.ipcp.handle_timeout(now, &mut self.ipcp_n);
        self.v6.handle_timeout(now, &mut self.v6_n);
        if self.chap_deadline.is_some_and(|d| now >= d) {
            self.send_challenge(now);
        }
        self.flush();
    }
}

/// Deterministic channel impairment.
struct Net {
    rng: TestRng,
    loss_pct: u8,
}

impl Net {
    fn roll(&mut self) -> u8 {
        let mut b = [0u8; 1];
        self.rng.fill(&mut b);
        b[0] % 100
    }

    /// Applies loss, duplication (5%) and reordering (swap of neighbours) to a batch.
    fn impair(&mut self, batch: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for f in batch {
            if self.roll() < self.loss_pct {
                continue;
            }
            if self.loss_pct > 0 && self.roll() < 5 {
                out.push(f.clone());
            }
            out.push(f);
        }
        if self.loss_pct > 0 && out.len() > 1 && self.roll() < 30 {
            let i = usize::from(self.roll()) % (out.len() - 1);
            out.swap(i, i + 1);
        }
        out
    }
}

struct Outcome {
    events: Vec<Event>,
    server_ipcp: State,
    elapsed: Duration,
}

fn run_pair(cfg: Config, mut server: Server, loss_pct: u8, seed: u64, limit: Duration) -> Outcome {
    let t0 = Instant::now();
    let mut now = t0;
    let mut client = Link::new(cfg, Box::new(TestRng::new(seed)), now);
    let mut net = Net {
        rng: TestRng::new(seed ^ 0xabcd),
        loss_pct,
    };
    client.open(now);
    server.start(now);
    let mut events = Vec::new();
    let mut up = false;
    while now - t0 < limit {
        let mut progressed = true;
        while progressed {
            progressed = false;
            let c2s: Vec<_> = std::iter::from_fn(|| client.poll_transmit(now)).collect();
            let s2c = std::mem::take(&mut server.tx);
            progressed |= !c2s.is_empty() || !s2c.is_empty();
            for f in net.impair(c2s) {
                if std::env::var_os("PPP_TRACE").is_some() {
                    eprintln!("{:?} >> {:02x?}", now - t0, f);
                }
                server.handle(now, &f);
            }
            for f in net.impair(s2c) {
                if std::env::var_os("PPP_TRACE").is_some() {
                    eprintln!("{:?} << {:02x?}", now - t0, f);
                }
                client.handle_frame(now, &f);
            }
            while let Some(e) = client.poll_event() {
                up |= matches!(e, Event::Up { .. });
                events.push(e);
            }
        }
        if up && server.ipcp.state() == State::Opened {
            break;
        }
        if events.iter().any(|e| matches!(e, Event::Down { .. })) {
            break;
        }
        let next = [client.poll_timeout(), server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        now = next.max(now);
        client.handle_timeout(now);
        server.timeout(now);
    }
    Outcome {
        events,
        server_ipcp: server.ipcp.state(),
        elapsed: now - t0,
    }
}

fn assert_up(o: &Outcome, method: AuthMethod) {
    let ev = &o.events;
    assert!(ev.contains(&Event::AuthOk { method }), "{ev:?}");
    let up = ev.iter().find_map(|e| match e {
        Event::Up {
            local,
            peer,
            dns,
            mtu,
        } => Some((*local, *peer, dns.clone(), *mtu)),
        _ => None,
    });
    assert_eq!(
        up,
        Some((
            Ipv4Addr::new(198, 19, 20, 7),
            Ipv4Addr::new(198, 19, 22, 1),
            vec![
                Ipv4Addr::new(198, 19, 22, 53),
                Ipv4Addr::new(198, 19, 22, 54)
            ],
            1400
        )),
        "{ev:?}"
    );
    assert_eq!(o.server_ipcp, State::Opened);
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Down { .. })),
        "{ev:?}"
    );
}

#[test]
fn pair_without_loss_every_method() {
    for m in [AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap] {
        let o = run_pair(
            config(&[m]),
            Server::new(AuthMethod::MsChapV2, 1),
            0,
            1,
            Duration::from_secs(60),
        );
        assert_up(&o, m);
        assert!(
            o.elapsed < Duration::from_secs(1),
            "lossless run needs no timer: {:?}",
            o.elapsed
        );
        assert!(o.events.iter().any(|e| matches!(e, Event::Ipv6Up { .. })) || m != AuthMethod::Pap);
    }
}

#[test]
fn pair_with_loss_duplication_reordering() {
    for seed in 0..40u64 {
        let method = [AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap][(seed % 3) as usize];
        let o = run_pair(
            config(&[AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap]),
            Server::new(method, seed),
            25,
            seed,
            Duration::from_secs(300),
        );
        assert_up(&o, method);
    }
}

#[test]
fn pair_wrong_password() {
    for m in [AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap] {
        let mut cfg = config(&[m]);
        cfg.password = Zeroizing::new("wrong".into());
        let o = run_pair(cfg, Server::new(m, 3), 0, 3, Duration::from_secs(60));
        let last = o.events.last().cloned();
        let Some(Event::Down {
            reason: DownReason::AuthFailed { method, .. },
        }) = last
        else {
            panic!("{:?}", o.events)
        };
        assert_eq!(method, m);
    }
}

#[test]
fn pair_ipv6_when_offered() {
    let o = run_pair(
        config(&[AuthMethod::Pap]),
        Server::new(AuthMethod::Pap, 5),
        0,
        5,
        Duration::from_secs(60),
    );
    let v6 = o.events.iter().find_map(|e| match e {
        Event::Ipv6Up {
            local_iid,
            peer_iid,
        } => Some((*local_iid, *peer_iid)),
        _ => None,
    });
    let (local, peer) = v6.expect("IPV6CP up");
    assert_eq!(peer, [2, 0, 0, 0, 0, 0, 0, 1]);
    assert_ne!(local, [0; 8]);
    let mut srv = Server::new(AuthMethod::Pap, 6);
    srv.ipv6 = false;
    let o = run_pair(
        config(&[AuthMethod::Pap]),
        srv,
        0,
        6,
        Duration::from_secs(60),
    );
    assert_up(&o, AuthMethod::Pap);
    assert!(!o.events.iter().any(|e| matches!(e, Event::Ipv6Up { .. })));
}

#[test]
fn frames_never_panic() {
    use proptest::prelude::*;
    proptest!(|(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20))| {
        let now = Instant::now();
        let mut l = Link::new(config(&[AuthMethod::Pap, AuthMethod::MsChapV2]), Box::new(TestRng::new(1)), now);
        l.open(now);
        for f in &frames {
            let mut framed = vec![0xff, 0x03];
            framed.extend_from_slice(f);
            let _ = l.handle_frame(now, f);
            let _ = l.handle_frame(now, &framed);
            while l.poll_transmit(now).is_some() {}
        }
        l.handle_timeout(now + Duration::from_secs(100));
    });
}

#[test]
fn ncp_request_overtaking_success_is_replayed() {
    let mut s = Script::new(config(&[AuthMethod::MsChapV2]));
    let (_, peer, nt) = mschap_to_auth(&mut s);
    // the server's IPCP Conf-Req arrives before its CHAP Success
    s.feed(PROTO_IPCP, CODE_CONF_REQ, 3, &[3, 6, 198, 19, 0, 1]);
    assert!(s.out().is_empty());
    let ar = mschap::authenticator_response("labpass", &nt, &peer, &CHALLENGE, "labuser");
    s.feed(
        PROTO_CHAP,
        3,
        2,
        mschap::format_authenticator_response(&ar).as_bytes(),
    );
    let out = s.out();
    assert!(
        out.iter()
            .any(|o| o.proto == PROTO_IPCP && o.code == CODE_CONF_ACK && o.id == 3),
        "{out:x?}"
    );
    assert!(
        out.iter()
            .any(|o| o.proto == PROTO_IPCP && o.code == CODE_CONF_REQ)
    );
}

/// pppd on an LNS (xl2tpd) starts at ICCN: our first LCP request is lost, its own arrives at
/// once. Ours goes out again shortly after, not after the whole restart interval.
#[test]
fn first_request_lost_to_an_lns_is_resent_early() {
    let mut s = Script::new(config(&[AuthMethod::MsChapV2]));
    let lost = s.one();
    assert_eq!((lost.proto, lost.code), (PROTO_LCP, CODE_CONF_REQ));
    // << Conf-Req MRU 1280, ACCM, CHAP-MD5, magic  >> Conf-Nak CHAP MS-v2
    let pppd_md5 = [
        1, 4, 5, 0, 2, 6, 0, 0, 0, 0, 3, 5, 0xc2, 0x23, 5, 5, 6, 9, 8, 7, 6,
    ];
    s.feed(PROTO_LCP, CODE_CONF_REQ, 1, &pppd_md5);
    let nak = s.one();
    assert_eq!(
        (nak.code, nak.data.clone()),
        (CODE_CONF_NAK, vec![3, 5, 0xc2, 0x23, 0x81])
    );
    // << Conf-Req with MS-CHAPv2  >> Conf-Ack
    let pppd_v2 = [
        1, 4, 5, 0, 2, 6, 0, 0, 0, 0, 3, 5, 0xc2, 0x23, 0x81, 5, 6, 9, 8, 7, 6,
    ];
    s.feed(PROTO_LCP, CODE_CONF_REQ, 2, &pppd_v2);
    assert_eq!(s.one().code, CODE_CONF_ACK);
    s.advance(Duration::from_millis(499));
    assert!(s.out().is_empty());
    s.advance(Duration::from_millis(1));
    let again = s.one();
    assert_eq!((again.code, again.data.clone()), (CODE_CONF_REQ, lost.data));
    s.feed(PROTO_LCP, CODE_CONF_ACK, again.id, &again.data);
    assert!(s.events().contains(&Event::AuthStarted {
        method: AuthMethod::MsChapV2
    }));
}

/// pppd requiring CHAP-MD5 only, Nak'd toward MS-CHAPv2: it drops authentication from its
/// request, lets LCP open, then ends the link. The reason names what the server offered.
#[test]
fn pppd_that_drops_auth_after_our_nak_is_an_auth_method_refusal() {
    let mut s = Script::new(config(&[AuthMethod::MsChapV2]));
    let req = s.one();
    let md5 = [1, 4, 5, 0, 3, 5, 0xc2, 0x23, 5, 5, 6, 9, 8, 7, 6];
    s.feed(PROTO_LCP, CODE_CONF_REQ, 1, &md5);
    assert_eq!(s.one().code, CODE_CONF_NAK);
    let no_auth = [1, 4, 5, 0, 5, 6, 9, 8, 7, 6];
    s.feed(PROTO_LCP, CODE_CONF_REQ, 2, &no_auth);
    assert_eq!(s.one().code, CODE_CONF_ACK);
    s.feed(PROTO_LCP, CODE_CONF_ACK, req.id, &req.data);
    let _ = s.out();
    s.feed(PROTO_LCP, CODE_TERM_REQ, 3, b"peer refused to authenticate");
    assert_eq!(s.one().code, CODE_TERM_ACK);
    s.advance(Duration::from_secs(3));
    let reason = s
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Down { reason } => Some(reason),
            _ => None,
        })
        .unwrap_or_else(|| panic!("link not down: {:?}", s.out()));
    assert_eq!(
        reason,
        DownReason::AuthMethodRefused {
            offered: vec!["CHAP-MD5".into()]
        }
    );
}
