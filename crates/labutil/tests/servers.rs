//! Proves that every server of the project's lab answers (run `lab/l2sec-lab up` and set
//! `L2SEC_LAB=1`; without it the lab tests skip).
//!
//! The packets are built by hand here, independent of the protocol crates: an L2TP SCCRQ
//! (RFC 2661) must get an SCCRP addressed to our tunnel, an IKEv1 main mode message 1
//! (RFC 2409, with the RFC 3947 NAT-T vendor ID and one AES-128/SHA-1/MODP-1024 PSK transform)
//! must get main mode message 2 carrying our initiator cookie. Sockets are created on a thread
//! that entered the client namespace of the lab under test.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use l2sec_labutil::{enter_netns, require_lab, topo};

/// How long one test waits for an answer, retransmitting every second.
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

/// Runs `f` on a new thread that first moved into network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &'static str, f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::spawn(move || {
        enter_netns(ns).unwrap_or_else(|e| panic!("enter netns {ns} (is the lab up?): {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Sends `request` to `server` until a datagram that `accept` maps to `Some` arrives, or
/// [`ANSWER_WITHIN`] is over. Other datagrams are ignored.
fn exchange<T>(
    sock: &UdpSocket,
    server: SocketAddr,
    request: &[u8],
    accept: impl Fn(&[u8]) -> Option<T>,
) -> Result<T, String> {
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut buf = [0u8; 4096];
    let mut next_send = Instant::now();
    let mut ignored = 0usize;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "no acceptable answer from {server} within {ANSWER_WITHIN:?} ({ignored} other datagrams)"
            ));
        }
        if now >= next_send {
            sock.send_to(request, server)
                .map_err(|e| format!("send to {server}: {e}"))?;
            next_send = now + Duration::from_secs(1);
        }
        let wait = next_send.min(deadline).saturating_duration_since(now);
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(10))))
            .map_err(|e| e.to_string())?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == server => match accept(&buf[..n]) {
                Some(v) => return Ok(v),
                None => ignored += 1,
            },
            Ok(_) => ignored += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("receive from {server}: {e}")),
        }
    }
}

// ------------------------------------------------------------------------------------ L2TP

/// L2TP control message type of an SCCRQ, SCCRP and StopCCN.
const SCCRQ: u16 = 1;
const SCCRP: u16 = 2;
const STOP_CCN: u16 = 4;
/// AVP attribute types (RFC 2661 section 4.4).
const AVP_MESSAGE_TYPE: u16 = 0;
const AVP_RESULT_CODE: u16 = 1;
const AVP_PROTOCOL_VERSION: u16 = 2;
const AVP_FRAMING_CAPABILITIES: u16 = 3;
const AVP_HOST_NAME: u16 = 7;
const AVP_ASSIGNED_TUNNEL_ID: u16 = 9;
const AVP_RECEIVE_WINDOW_SIZE: u16 = 10;
const AVP_CHALLENGE: u16 = 11;

/// One mandatory, unhidden AVP of the IETF vendor.
fn put_avp(out: &mut Vec<u8>, attr: u16, value: &[u8]) {
    let len = u16::try_from(6 + value.len()).expect("short AVP");
    out.extend_from_slice(&(0x8000 | len).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&attr.to_be_bytes());
    out.extend_from_slice(value);
}

/// A control message: T, L and S bits, version 2, then the AVPs.
fn control_message(tunnel: u16, ns: u16, nr: u16, avps: &[u8]) -> Vec<u8> {
    let len = u16::try_from(12 + avps.len()).expect("short message");
    let mut out = Vec::with_capacity(usize::from(len));
    out.extend_from_slice(&0xc802u16.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&tunnel.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&ns.to_be_bytes());
    out.extend_from_slice(&nr.to_be_bytes());
    out.extend_from_slice(avps);
    out
}

fn sccrq(our_tunnel: u16) -> Vec<u8> {
    let mut avps = Vec::new();
    put_avp(&mut avps, AVP_MESSAGE_TYPE, &SCCRQ.to_be_bytes());
    put_avp(&mut avps, AVP_PROTOCOL_VERSION, &[1, 0]);
    put_avp(&mut avps, AVP_FRAMING_CAPABILITIES, &3u32.to_be_bytes());
    put_avp(&mut avps, AVP_HOST_NAME, b"l2sec-lab-test");
    put_avp(&mut avps, AVP_ASSIGNED_TUNNEL_ID, &our_tunnel.to_be_bytes());
    put_avp(&mut avps, AVP_RECEIVE_WINDOW_SIZE, &4u16.to_be_bytes());
    control_message(0, 0, 0, &avps)
}

fn stop_ccn(peer_tunnel: u16, our_tunnel: u16) -> Vec<u8> {
    let mut avps = Vec::new();
    put_avp(&mut avps, AVP_MESSAGE_TYPE, &STOP_CCN.to_be_bytes());
    put_avp(&mut avps, AVP_ASSIGNED_TUNNEL_ID, &our_tunnel.to_be_bytes());
    // result code 1: general request to clear the control connection
    put_avp(&mut avps, AVP_RESULT_CODE, &1u16.to_be_bytes());
    control_message(peer_tunnel, 1, 1, &avps)
}

/// What the tests need from an L2TP control message.
#[derive(Debug, PartialEq, Eq)]
struct Control {
    tunnel: u16,
    message_type: u16,
    assigned_tunnel: Option<u16>,
    has_challenge: bool,
}

/// Parses an L2TPv2 control message; `None` for anything else (data, ZLB, garbage).
fn parse_control(d: &[u8]) -> Option<Control> {
    let word = |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*d.get(i)?, *d.get(i + 1)?])) };
    let flags = word(0)?;
    // T, L and S set, O and P clear, version 2
    if flags & 0xcb0f != 0xc802 {
        return None;
    }
    let len = usize::from(word(2)?);
    if len < 12 || len > d.len() {
        return None;
    }
    let tunnel = word(4)?;
    let mut avps = &d[12..len];
    let mut message_type = None;
    let mut assigned_tunnel = None;
    let mut has_challenge = false;
    while !avps.is_empty() {
        let head = u16::from_be_bytes([*avps.first()?, *avps.get(1)?]);
        let avp_len = usize::from(head & 0x03ff);
        if avp_len < 6 || avp_len > avps.len() {
            return None;
        }
        let hidden = head & 0x4000 != 0;
        let vendor = u16::from_be_bytes([avps[2], avps[3]]);
        let attr = u16::from_be_bytes([avps[4], avps[5]]);
        let value = &avps[6..avp_len];
        if vendor == 0 && !hidden {
            match (attr, value) {
                (AVP_MESSAGE_TYPE, [a, b]) => message_type = Some(u16::from_be_bytes([*a, *b])),
                (AVP_ASSIGNED_TUNNEL_ID, [a, b]) => {
                    assigned_tunnel = Some(u16::from_be_bytes([*a, *b]));
                }
                (AVP_CHALLENGE, v) if !v.is_empty() => has_challenge = true,
                _ => {}
            }
        }
        avps = &avps[avp_len..];
    }
    Some(Control {
        tunnel,
        message_type: message_type?,
        assigned_tunnel,
        has_challenge,
    })
}

/// Sends an SCCRQ from client namespace `ns` to `server`:1701 and returns the SCCRP, after
/// closing the tunnel again with a StopCCN (best effort).
fn sccrq_gets_sccrp(ns: &'static str, server: Ipv4Addr) -> Control {
    in_netns(ns, move || {
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind UDP");
        let server = SocketAddr::V4(SocketAddrV4::new(server, 1701));
        let our_tunnel = u16::from_be_bytes(random_bytes::<2>()) | 1;
        let reply = exchange(&sock, server, &sccrq(our_tunnel), |d| {
            parse_control(d).filter(|c| c.tunnel == our_tunnel)
        })
        .unwrap_or_else(|e| panic!("{ns}: SCCRQ to {server}: {e}"));
        if let Some(peer) = reply.assigned_tunnel {
            // the server keeps the half-open tunnel otherwise; nobody waits for its ZLB
            let _ = sock.send_to(&stop_ccn(peer, our_tunnel), server);
        }
        reply
    })
}

fn assert_sccrp(reply: &Control) {
    assert_eq!(
        reply.message_type, SCCRP,
        "expected an SCCRP, got {reply:?}"
    );
    assert!(
        reply.assigned_tunnel.is_some_and(|t| t != 0),
        "SCCRP without an Assigned Tunnel ID: {reply:?}"
    );
}

#[test]
fn softether_answers_l2tp_sccrq() {
    if !require_lab("softether_answers_l2tp_sccrq") {
        return;
    }
    assert_sccrp(&sccrq_gets_sccrp(topo::SE_CLI_NS, topo::SE_SRV));
}

#[test]
fn l2tpns_answers_l2tp_sccrq() {
    if !require_lab("l2tpns_answers_l2tp_sccrq") {
        return;
    }
    assert_sccrp(&sccrq_gets_sccrp(topo::L2_CLI_NS, topo::L2_SRV));
}

#[test]
fn xl2tpd_answers_l2tp_sccrq_with_a_challenge() {
    if !require_lab("xl2tpd_answers_l2tp_sccrq_with_a_challenge") {
        return;
    }
    let reply = sccrq_gets_sccrp(topo::XL_CLI_NS, topo::XL_SRV);
    assert_sccrp(&reply);
    assert!(
        reply.has_challenge,
        "xl2tpd should challenge the LAC (tunnel authentication on): {reply:?}"
    );
}

// ------------------------------------------------------------------------------------ IKE

/// RFC 3947 NAT-T vendor ID (MD5 of "RFC 3947").
const VID_RFC3947: [u8; 16] = [
    0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
];
/// ISAKMP payload types and the identity protection (main mode) exchange.
const PAYLOAD_SA: u8 = 1;
const PAYLOAD_VID: u8 = 13;
const EXCHANGE_MAIN_MODE: u8 = 2;

/// A phase 1 attribute in TV (basic) form.
fn put_attr(out: &mut Vec<u8>, kind: u16, value: u16) {
    out.extend_from_slice(&(0x8000 | kind).to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
}

/// A generic payload header followed by `body`.
fn put_payload(out: &mut Vec<u8>, next: u8, body: &[u8]) {
    let len = u16::try_from(4 + body.len()).expect("short payload");
    out.push(next);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

/// Main mode message 1: SA (one proposal, one transform: AES-CBC-128, SHA-1, PSK,
/// MODP-1024, 28800 s) and the RFC 3947 vendor ID.
fn main_mode_1(cookie: [u8; 8]) -> Vec<u8> {
    let mut attrs = Vec::new();
    put_attr(&mut attrs, 1, 7); // encryption: AES-CBC
    put_attr(&mut attrs, 14, 128); // key length
    put_attr(&mut attrs, 2, 2); // hash: SHA-1
    put_attr(&mut attrs, 3, 1); // authentication: pre-shared key
    put_attr(&mut attrs, 4, 2); // group: MODP-1024
    put_attr(&mut attrs, 11, 1); // life type: seconds
    put_attr(&mut attrs, 12, 28800); // life duration
    let mut transform = vec![1, 1, 0, 0]; // transform 1, KEY_IKE
    transform.extend_from_slice(&attrs);
    let mut proposal = vec![1, 1, 0, 1]; // proposal 1, PROTO_ISAKMP, no SPI, 1 transform
    put_payload(&mut proposal, 0, &transform);
    let mut sa = Vec::new();
    sa.extend_from_slice(&1u32.to_be_bytes()); // DOI: IPsec
    sa.extend_from_slice(&1u32.to_be_bytes()); // situation: identity only
    put_payload(&mut sa, 0, &proposal);
    let mut payloads = Vec::new();
    put_payload(&mut payloads, PAYLOAD_VID, &sa);
    put_payload(&mut payloads, 0, &VID_RFC3947);

    let len = u32::try_from(28 + payloads.len()).expect("short message");
    let mut out = Vec::with_capacity(28 + payloads.len());
    out.extend_from_slice(&cookie);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&[PAYLOAD_SA, 0x10, EXCHANGE_MAIN_MODE, 0]);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payloads);
    out
}

/// The ISAKMP header fields the tests check.
#[derive(Debug)]
struct IsakmpHeader {
    initiator_cookie: [u8; 8],
    responder_cookie: [u8; 8],
    next_payload: u8,
    exchange: u8,
}

fn parse_isakmp(d: &[u8]) -> Option<IsakmpHeader> {
    let header = d.get(..28)?;
    let len = u32::from_be_bytes(header[24..28].try_into().ok()?);
    if header[17] != 0x10 || usize::try_from(len).ok()? > d.len() {
        return None;
    }
    Some(IsakmpHeader {
        initiator_cookie: header[..8].try_into().ok()?,
        responder_cookie: header[8..16].try_into().ok()?,
        next_payload: header[16],
        exchange: header[18],
    })
}

/// Sends main mode message 1 from `ns` to `server`:500 and returns the header of the reply
/// that carries our initiator cookie.
fn main_mode_1_gets_reply(ns: &'static str, server: Ipv4Addr) -> IsakmpHeader {
    in_netns(ns, move || {
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind UDP");
        let server = SocketAddr::V4(SocketAddrV4::new(server, 500));
        let cookie = random_bytes::<8>();
        exchange(&sock, server, &main_mode_1(cookie), |d| {
            parse_isakmp(d).filter(|h| h.initiator_cookie == cookie)
        })
        .unwrap_or_else(|e| panic!("{ns}: main mode message 1 to {server}: {e}"))
    })
}

fn assert_main_mode_2(reply: &IsakmpHeader) {
    assert_eq!(
        reply.exchange, EXCHANGE_MAIN_MODE,
        "not a main mode reply: {reply:?}"
    );
    assert_eq!(
        reply.next_payload, PAYLOAD_SA,
        "main mode message 2 starts with the SA: {reply:?}"
    );
    assert_ne!(
        reply.responder_cookie, [0; 8],
        "no responder cookie: {reply:?}"
    );
}

#[test]
fn softether_answers_ike_main_mode() {
    if !require_lab("softether_answers_ike_main_mode") {
        return;
    }
    assert_main_mode_2(&main_mode_1_gets_reply(topo::SE_CLI_NS, topo::SE_SRV));
}

#[test]
fn strongswan_answers_ike_main_mode() {
    if !require_lab("strongswan_answers_ike_main_mode") {
        return;
    }
    assert_main_mode_2(&main_mode_1_gets_reply(topo::SS_CLI_NS, topo::SS_SRV));
}

// ------------------------------------------------------------------------------- topology

/// Every client namespace of the lab: no route out, a fixed resolv.conf.
const CLIENT_NAMESPACES: [&str; 4] = [
    topo::SE_CLI_NS,
    topo::L2_CLI_NS,
    topo::XL_CLI_NS,
    topo::SS_CLI_NS,
];

#[test]
fn client_namespaces_have_no_route_out() {
    if !require_lab("client_namespaces_have_no_route_out") {
        return;
    }
    for ns in CLIENT_NAMESPACES {
        let err = in_netns(ns, || {
            let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind UDP");
            // TEST-NET-1 (RFC 5737): only a default route could reach it
            sock.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).err()
        });
        let err = err.unwrap_or_else(|| panic!("{ns} has a route to 192.0.2.1"));
        assert_eq!(err.kind(), io::ErrorKind::NetworkUnreachable, "{ns}: {err}");
    }
}

#[test]
fn client_namespaces_have_a_fixed_resolv_conf() {
    if !require_lab("client_namespaces_have_a_fixed_resolv_conf") {
        return;
    }
    for ns in CLIENT_NAMESPACES {
        let path = format!("/etc/netns/{ns}/resolv.conf");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            text.lines().any(|l| l.starts_with("nameserver 198.18.")),
            "{path} has no lab nameserver line:\n{text}"
        );
    }
}

// ----------------------------------------------------------- packet builders (no lab needed)

#[test]
fn sccrq_parses_as_a_control_message_for_tunnel_zero() {
    let c = parse_control(&sccrq(0x1234)).expect("our SCCRQ parses");
    assert_eq!(
        c,
        Control {
            tunnel: 0,
            message_type: SCCRQ,
            assigned_tunnel: Some(0x1234),
            has_challenge: false,
        }
    );
    let s = parse_control(&stop_ccn(7, 9)).expect("our StopCCN parses");
    assert_eq!(
        (s.tunnel, s.message_type, s.assigned_tunnel),
        (7, STOP_CCN, Some(9))
    );
}

#[test]
fn parse_control_rejects_truncated_and_non_control_datagrams() {
    let m = sccrq(1);
    for cut in 0..m.len() {
        assert_eq!(parse_control(&m[..cut]), None, "prefix of {cut} bytes");
    }
    let mut data = m.clone();
    data[0] &= 0x7f; // T bit clear: a data message
    assert_eq!(parse_control(&data), None);
    let mut bad_avp = m;
    bad_avp[12] = 0x80; // first AVP: length 0
    bad_avp[13] = 0;
    assert_eq!(parse_control(&bad_avp), None);
}

#[test]
fn main_mode_1_has_consistent_lengths() {
    let cookie = [1, 2, 3, 4, 5, 6, 7, 8];
    let m = main_mode_1(cookie);
    // header 28 + SA (4 + 8 + proposal 8 + transform 8 + 7 attributes * 4) + VID (4 + 16)
    assert_eq!(m.len(), 28 + 56 + 20);
    let h = parse_isakmp(&m).expect("our message 1 parses");
    assert_eq!(h.initiator_cookie, cookie);
    assert_eq!(h.responder_cookie, [0; 8]);
    assert_eq!(
        (h.next_payload, h.exchange),
        (PAYLOAD_SA, EXCHANGE_MAIN_MODE)
    );
    assert_eq!(u16::from_be_bytes([m[30], m[31]]), 56, "SA payload length");
    assert_eq!(m[28], PAYLOAD_VID, "SA is followed by the vendor ID");
    assert_eq!(&m[m.len() - 16..], &VID_RFC3947);
    assert!(
        parse_isakmp(&m[..m.len() - 1]).is_none(),
        "length field beyond the datagram"
    );
}
