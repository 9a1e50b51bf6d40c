//! Option logic of LCP (RFC 1661, 1334, 1994, 2433, 2759), IPCP (RFC 1332, 1877) and
//! IPV6CP (RFC 5072), as [`Negotiator`]s for the automaton.

use std::net::Ipv4Addr;

use l2sec_crypto::Rng;

use crate::fsm::{Negotiator, Verdict};
use crate::types::AuthMethod;
use crate::wire::{Options, PROTO_CHAP, PROTO_EAP, PROTO_PAP, RawOption, push_option};

/// LCP option: Maximum-Receive-Unit.
pub const LCP_MRU: u8 = 1;
/// LCP option: Async-Control-Character-Map.
pub const LCP_ACCM: u8 = 2;
/// LCP option: Authentication-Protocol.
pub const LCP_AUTH: u8 = 3;
/// LCP option: Magic-Number.
pub const LCP_MAGIC: u8 = 5;
/// LCP option: Protocol-Field-Compression.
pub const LCP_PFC: u8 = 7;
/// LCP option: Address-and-Control-Field-Compression.
pub const LCP_ACFC: u8 = 8;
/// IPCP option: IP-Address.
pub const IPCP_ADDR: u8 = 3;
/// IPCP option: Primary-DNS-Server (RFC 1877).
pub const IPCP_DNS1: u8 = 129;
/// IPCP option: Secondary-DNS-Server (RFC 1877).
pub const IPCP_DNS2: u8 = 131;
/// IPV6CP option: Interface-Identifier.
pub const IPV6CP_IID: u8 = 1;

fn random_u32(rng: &mut dyn Rng) -> u32 {
    for _ in 0..8 {
        let mut b = [0u8; 4];
        rng.fill(&mut b);
        let v = u32::from_be_bytes(b);
        if v != 0 {
            return v;
        }
    }
    1
}

fn random_iid(rng: &mut dyn Rng, not: [u8; 8]) -> [u8; 8] {
    for _ in 0..8 {
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        if b != [0; 8] && b != not {
            return b;
        }
    }
    let mut b = not;
    b[7] ^= 0x5a;
    if b == [0; 8] {
        b[0] = 2;
    }
    b
}

/// Decodes an Authentication-Protocol option value; `Err` carries a readable name.
pub fn decode_auth(value: &[u8]) -> Result<AuthMethod, String> {
    if value.len() < 2 {
        return Err("malformed".into());
    }
    let proto = u16::from_be_bytes([value[0], value[1]]);
    match (proto, &value[2..]) {
        (PROTO_PAP, []) => Ok(AuthMethod::Pap),
        (PROTO_CHAP, [5]) => Ok(AuthMethod::Chap),
        (PROTO_CHAP, [0x81]) => Ok(AuthMethod::MsChapV2),
        (PROTO_CHAP, [0x80]) => Ok(AuthMethod::MsChapV1),
        (PROTO_CHAP, [a]) => Err(format!("CHAP algorithm {a:#04x}")),
        (PROTO_EAP, _) => Err("EAP".into()),
        (p, _) => Err(format!("protocol {p:#06x}")),
    }
}

/// Encodes an Authentication-Protocol option value.
#[must_use]
pub fn encode_auth(m: AuthMethod) -> Vec<u8> {
    match m {
        AuthMethod::Pap => PROTO_PAP.to_be_bytes().to_vec(),
        AuthMethod::Chap => vec![0xc2, 0x23, 5],
        AuthMethod::MsChapV2 => vec![0xc2, 0x23, 0x81],
        AuthMethod::MsChapV1 => vec![0xc2, 0x23, 0x80],
    }
}

fn parse_all(options: &[u8]) -> Option<Vec<RawOption<'_>>> {
    Options::new(options).collect::<Result<Vec<_>, _>>().ok()
}

fn verdict(rej: Vec<u8>, nak: Vec<u8>) -> Verdict {
    if !rej.is_empty() {
        Verdict::Reject(rej)
    } else if !nak.is_empty() {
        Verdict::Nak(nak)
    } else {
        Verdict::Ack
    }
}

/// LCP state: what we ask for and what the peer's acknowledged request said.
#[derive(Debug, Clone)]
pub struct LcpOptions {
    cfg_mru: u16,
    allowed: Vec<AuthMethod>,
    want_mru: Option<u16>,
    /// Our magic number, `None` once the peer rejected it.
    pub magic: Option<u32>,
    /// MRU the peer acknowledged for us.
    pub mru: u16,
    /// The peer's MRU (1500 unless it asked otherwise).
    pub peer_mru: u16,
    /// The peer's magic number (0 if none).
    pub peer_magic: u32,
    /// Method the peer asked for and we acknowledged.
    pub auth: Option<AuthMethod>,
    /// Methods the peer offered that we refused (readable names, in order).
    pub refused_auth: Vec<String>,
}

impl LcpOptions {
    /// LCP options for our MRU and the allowed authentication methods.
    #[must_use]
    pub fn new(mru: u16, allowed: Vec<AuthMethod>) -> Self {
        Self {
            cfg_mru: mru,
            allowed,
            want_mru: None,
            magic: None,
            mru: 1500,
            peer_mru: 1500,
            peer_magic: 0,
            auth: None,
            refused_auth: Vec::new(),
        }
    }
}

/// [`LcpOptions`] with the randomness it needs, as a [`Negotiator`].
pub struct Lcp<'a> {
    /// Option state.
    pub o: &'a mut LcpOptions,
    /// Randomness for magic numbers.
    pub rng: &'a mut dyn Rng,
}

impl Negotiator for Lcp<'_> {
    fn reset(&mut self) {
        self.o.want_mru = (self.o.cfg_mru != 1500).then_some(self.o.cfg_mru);
        self.o.magic = Some(random_u32(self.rng));
        self.o.mru = 1500;
        self.o.peer_mru = 1500;
        self.o.peer_magic = 0;
        self.o.auth = None;
        self.o.refused_auth.clear();
    }

    fn request(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        if let Some(mru) = self.o.want_mru {
            push_option(&mut v, LCP_MRU, &mru.to_be_bytes());
        }
        if let Some(m) = self.o.magic {
            push_option(&mut v, LCP_MAGIC, &m.to_be_bytes());
        }
        v
    }

    fn check_request(&mut self, options: &[u8], allow_nak: bool) -> Verdict {
        let Some(opts) = parse_all(options) else {
            return Verdict::Discard;
        };
        let (mut rej, mut nak) = (Vec::new(), Vec::new());
        let mut peer_mru = 1500;
        let mut peer_magic = 0;
        let mut auth = None;
        for o in &opts {
            match o.kind {
                LCP_MRU => match o.u16() {
                    Some(v) if v >= 128 => peer_mru = v,
                    Some(_) if allow_nak => push_option(&mut nak, LCP_MRU, &1500u16.to_be_bytes()),
                    _ => o.emit(&mut rej),
                },
                LCP_ACCM if o.value.len() == 4 => {}
                LCP_AUTH => match decode_auth(o.value) {
                    Ok(m) if self.o.allowed.contains(&m) => auth = Some(m),
                    other => {
                        let name = match other {
                            Ok(m) => m.to_string(),
                            Err(e) => e,
                        };
                        if !self.o.refused_auth.contains(&name) {
                            self.o.refused_auth.push(name);
                        }
                        match self.o.allowed.first() {
                            Some(&m) if allow_nak => {
                                push_option(&mut nak, LCP_AUTH, &encode_auth(m));
                            }
                            _ => o.emit(&mut rej),
                        }
                    }
                },
                LCP_MAGIC => match o.u32() {
                    Some(v) if v != 0 && Some(v) == self.o.magic => {
                        // looped-back link or a peer that copies us: suggest another number
                        if allow_nak {
                            let fresh = random_u32(self.rng);
                            push_option(&mut nak, LCP_MAGIC, &fresh.to_be_bytes());
                        } else {
                            o.emit(&mut rej);
                        }
                    }
                    Some(v) => peer_magic = v,
                    None => o.emit(&mut rej),
                },
                LCP_PFC | LCP_ACFC if o.value.is_empty() => {}
                _ => o.emit(&mut rej),
            }
        }
        let v = verdict(rej, nak);
        if v == Verdict::Ack {
            self.o.peer_mru = peer_mru;
            self.o.peer_magic = peer_magic;
            self.o.auth = auth;
        }
        v
    }

    fn ack_received(&mut self, _options: &[u8]) {
        self.o.mru = self.o.want_mru.unwrap_or(1500);
    }

    fn nak_received(&mut self, options: &[u8]) {
        for o in Options::new(options).map_while(Result::ok) {
            match o.kind {
                LCP_MRU => {
                    self.o.want_mru = match o.u16() {
                        Some(v) if (128..=1500).contains(&v) => Some(v),
                        _ => None,
                    };
                }
                LCP_MAGIC if self.o.magic.is_some() => self.o.magic = Some(random_u32(self.rng)),
                _ => {}
            }
        }
    }

    fn reject_received(&mut self, options: &[u8]) {
        for o in Options::new(options).map_while(Result::ok) {
            match o.kind {
                LCP_MRU => self.o.want_mru = None,
                LCP_MAGIC => self.o.magic = None,
                _ => {}
            }
        }
    }
}

/// IPCP state.
#[derive(Debug, Clone)]
pub struct IpcpOptions {
    cfg_ip: Option<Ipv4Addr>,
    cfg_dns: bool,
    req_addr: bool,
    /// Our address (0.0.0.0 until the server assigns one).
    pub local: Ipv4Addr,
    /// DNS servers requested (`None` once rejected or when not wanted).
    pub dns: [Option<Ipv4Addr>; 2],
    /// The server's address.
    pub peer: Ipv4Addr,
}

impl IpcpOptions {
    /// IPCP options requesting `ip` (or any address) and, if `dns`, two DNS servers.
    #[must_use]
    pub fn new(ip: Option<Ipv4Addr>, dns: bool) -> Self {
        let mut s = Self {
            cfg_ip: ip,
            cfg_dns: dns,
            req_addr: true,
            local: Ipv4Addr::UNSPECIFIED,
            dns: [None, None],
            peer: Ipv4Addr::UNSPECIFIED,
        };
        s.reset();
        s
    }

    fn reset(&mut self) {
        self.req_addr = true;
        self.local = self.cfg_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let d = self.cfg_dns.then_some(Ipv4Addr::UNSPECIFIED);
        self.dns = [d, d];
        self.peer = Ipv4Addr::UNSPECIFIED;
    }

    /// The assigned DNS servers (non-zero ones).
    #[must_use]
    pub fn dns_servers(&self) -> Vec<Ipv4Addr> {
        self.dns
            .iter()
            .flatten()
            .filter(|a| !a.is_unspecified())
            .copied()
            .collect()
    }
}

fn ipv4(o: &RawOption<'_>) -> Option<Ipv4Addr> {
    o.u32().map(Ipv4Addr::from)
}

impl Negotiator for IpcpOptions {
    fn reset(&mut self) {
        IpcpOptions::reset(self);
    }

    fn request(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        if self.req_addr {
            push_option(&mut v, IPCP_ADDR, &self.local.octets());
        }
        for (kind, d) in [(IPCP_DNS1, self.dns[0]), (IPCP_DNS2, self.dns[1])] {
            if let Some(a) = d {
                push_option(&mut v, kind, &a.octets());
            }
        }
        v
    }

    fn check_request(&mut self, options: &[u8], _allow_nak: bool) -> Verdict {
        let Some(opts) = parse_all(options) else {
            return Verdict::Discard;
        };
        let mut rej = Vec::new();
        let mut peer = Ipv4Addr::UNSPECIFIED;
        for o in &opts {
            match (o.kind, ipv4(o)) {
                (IPCP_ADDR, Some(a)) if !a.is_unspecified() => peer = a,
                // anything else: VJ compression, old IP-Addresses, a peer asking us for an
                // address or for DNS/NBNS servers: we have none to give
                _ => o.emit(&mut rej),
            }
        }
        let v = verdict(rej, Vec::new());
        if v == Verdict::Ack {
            self.peer = peer;
        }
        v
    }

    fn nak_received(&mut self, options: &[u8]) {
        for o in Options::new(options).map_while(Result::ok) {
            match (o.kind, ipv4(&o)) {
                (IPCP_ADDR, Some(a)) => {
                    self.local = a;
                    self.req_addr = true;
                }
                (IPCP_DNS1, Some(a)) if self.cfg_dns => self.dns[0] = Some(a),
                (IPCP_DNS2, Some(a)) if self.cfg_dns => self.dns[1] = Some(a),
                // NBNS (130/132) and anything we did not ask for: ignored
                _ => {}
            }
        }
    }

    fn reject_received(&mut self, options: &[u8]) {
        for o in Options::new(options).map_while(Result::ok) {
            match o.kind {
                IPCP_ADDR => self.req_addr = false,
                IPCP_DNS1 => self.dns[0] = None,
                IPCP_DNS2 => self.dns[1] = None,
                _ => {}
            }
        }
    }
}

/// IPV6CP state.
#[derive(Debug, Clone, Default)]
pub struct Ipv6cpOptions {
    req_iid: bool,
    /// Our interface identifier.
    pub local: [u8; 8],
    /// The peer's interface identifier.
    pub peer: [u8; 8],
}

/// [`Ipv6cpOptions`] with its randomness, as a [`Negotiator`].
pub struct Ipv6cp<'a> {
    /// Option state.
    pub o: &'a mut Ipv6cpOptions,
    /// Randomness for interface identifiers.
    pub rng: &'a mut dyn Rng,
}

impl Negotiator for Ipv6cp<'_> {
    fn reset(&mut self) {
        self.o.req_iid = true;
        self.o.local = random_iid(self.rng, [0; 8]);
        self.o.peer = [0; 8];
    }

    fn request(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        if self.o.req_iid {
            push_option(&mut v, IPV6CP_IID, &self.o.local);
        }
        v
    }

    fn check_request(&mut self, options: &[u8], allow_nak: bool) -> Verdict {
        let Some(opts) = parse_all(options) else {
            return Verdict::Discard;
        };
        let (mut rej, mut nak) = (Vec::new(), Vec::new());
        let mut peer = [0u8; 8];
        for o in &opts {
            match (o.kind, <[u8; 8]>::try_from(o.value)) {
                (IPV6CP_IID, Ok(iid)) if iid != [0; 8] && iid != self.o.local => peer = iid,
                (IPV6CP_IID, Ok(_)) if allow_nak => {
                    push_option(&mut nak, IPV6CP_IID, &random_iid(self.rng, self.o.local));
                }
                _ => o.emit(&mut rej),
            }
        }
        let v = verdict(rej, nak);
        if v == Verdict::Ack {
            self.o.peer = peer;
        }
        v
    }

    fn nak_received(&mut self, options: &[u8]) {
        for o in Options::new(options).map_while(Result::ok) {
            if let (IPV6CP_IID, Ok(iid)) = (o.kind, <[u8; 8]>::try_from(o.value)) {
                self.o.local = if iid != [0; 8] && iid != self.o.peer {
                    iid
                } else {
                    random_iid(self.rng, self.o.peer)
                };
            }
        }
    }

    fn reject_received(&mut self, options: &[u8]) {
        if Options::new(options)
            .map_while(Result::ok)
            .any(|o| o.kind == IPV6CP_IID)
        {
            self.o.req_iid = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2sec_crypto::TestRng;
    use proptest::prelude::*;

    fn lcp_check(o: &mut LcpOptions, req: &[u8]) -> Verdict {
        let mut rng = TestRng::new(1);
        let mut n = Lcp { o, rng: &mut rng };
        n.check_request(req, true)
    }

    #[test]
    fn lcp_request_and_rejected_magic() {
        let mut o = LcpOptions::new(1400, vec![AuthMethod::MsChapV2]);
        let mut rng = TestRng::new(1);
        let mut n = Lcp {
            o: &mut o,
            rng: &mut rng,
        };
        n.reset();
        let req = n.request();
        assert_eq!(&req[..4], &[1, 4, 0x05, 0x78]);
        assert_eq!(req[4..6], [5, 6]);
        n.reject_received(&req[4..]);
        assert_eq!(n.request(), vec![1, 4, 0x05, 0x78]);
    }

    #[test]
    fn lcp_auth_nak_and_ack() {
        let mut o = LcpOptions::new(1400, vec![AuthMethod::MsChapV2, AuthMethod::Pap]);
        // EAP: Nak toward MS-CHAPv2
        assert_eq!(
            lcp_check(&mut o, &[3, 4, 0xc2, 0x27]),
            Verdict::Nak(vec![3, 5, 0xc2, 0x23, 0x81])
        );
        // CHAP-MD5 not allowed: Nak as well
        assert_eq!(
            lcp_check(&mut o, &[3, 5, 0xc2, 0x23, 5]),
            Verdict::Nak(vec![3, 5, 0xc2, 0x23, 0x81])
        );
        assert_eq!(
            o.refused_auth,
            vec!["EAP".to_string(), "CHAP-MD5".to_string()]
        );
        assert_eq!(lcp_check(&mut o, &[3, 4, 0xc0, 0x23]), Verdict::Ack);
        assert_eq!(o.auth, Some(AuthMethod::Pap));
        // unknown options rejected, all at once
        let req = [1, 4, 5, 0x78, 17, 4, 6, 0x4e, 19, 3, 0, 13, 3, 6];
        assert_eq!(
            lcp_check(&mut o, &req),
            Verdict::Reject(vec![17, 4, 6, 0x4e, 19, 3, 0, 13, 3, 6])
        );
        // malformed list: discarded
        assert_eq!(lcp_check(&mut o, &[1, 9, 0]), Verdict::Discard);
    }

    /// pppd as LNS with the setup-ipsec-vpn options asks CHAP-MD5 first; with the default
    /// over IPsec (MS-CHAPv2 only) we Nak toward MS-CHAPv2, which it then asks for. A method
    /// the profile allows is accepted as asked: pppd drops authentication altogether when Nak'd
    /// toward a method it cannot do, and then ends the link.
    #[test]
    fn lcp_auth_md5_first_then_mschapv2() {
        let md5 = [3, 5, 0xc2, 0x23, 5];
        let mschap = [3, 5, 0xc2, 0x23, 0x81];
        let mut o = LcpOptions::new(1400, vec![AuthMethod::MsChapV2]);
        assert_eq!(lcp_check(&mut o, &md5), Verdict::Nak(mschap.to_vec()));
        assert_eq!(lcp_check(&mut o, &mschap), Verdict::Ack);
        assert_eq!(o.auth, Some(AuthMethod::MsChapV2));
        let mut o = LcpOptions::new(1400, vec![AuthMethod::MsChapV2, AuthMethod::Chap]);
        assert_eq!(lcp_check(&mut o, &md5), Verdict::Ack);
        assert_eq!(o.auth, Some(AuthMethod::Chap));
    }

    #[test]
    fn ipcp_nak_assigns_address_and_dns() {
        let mut o = IpcpOptions::new(None, true);
        assert_eq!(
            o.request(),
            vec![3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0]
        );
        o.nak_received(&[
            3, 6, 198, 19, 0, 10, 129, 6, 198, 19, 0, 1, 131, 6, 198, 19, 0, 2, 130, 6, 1, 1, 1, 1,
        ]);
        assert_eq!(o.local, Ipv4Addr::new(198, 19, 0, 10));
        assert_eq!(
            o.dns_servers(),
            vec![Ipv4Addr::new(198, 19, 0, 1), Ipv4Addr::new(198, 19, 0, 2)]
        );
        o.reject_received(&[131, 6, 0, 0, 0, 0]);
        assert_eq!(o.request().len(), 12);
        assert_eq!(o.check_request(&[3, 6, 198, 19, 0, 1], true), Verdict::Ack);
        assert_eq!(o.peer, Ipv4Addr::new(198, 19, 0, 1));
        assert_eq!(
            o.check_request(&[2, 6, 0, 0x2d, 0x0f, 1], true),
            Verdict::Reject(vec![2, 6, 0, 0x2d, 0x0f, 1])
        );
        assert_eq!(
            o.check_request(&[3, 6, 0, 0, 0, 0], true),
            Verdict::Reject(vec![3, 6, 0, 0, 0, 0])
        );
    }

    #[test]
    fn ipv6cp_collision_is_naked() {
        let mut o = Ipv6cpOptions::default();
        let mut rng = TestRng::new(3);
        let mut n = Ipv6cp {
            o: &mut o,
            rng: &mut rng,
        };
        n.reset();
        let local = n.o.local;
        let mut same = vec![1, 10];
        same.extend_from_slice(&local);
        match n.check_request(&same, true) {
            Verdict::Nak(v) => assert_ne!(&v[2..], &local),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            n.check_request(&[1, 10, 1, 2, 3, 4, 5, 6, 7, 8], true),
            Verdict::Ack
        );
        assert_eq!(n.o.peer, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    proptest! {
        #[test]
        fn negotiators_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120), allow in any::<bool>()) {
            let mut rng = TestRng::new(9);
            let mut lo = LcpOptions::new(1400, vec![AuthMethod::Pap]);
            let mut l = Lcp { o: &mut lo, rng: &mut rng };
            let v = l.check_request(&data, allow);
            if let Verdict::Reject(r) = &v {
                // a Configure-Reject only carries options copied from the request
                prop_assert!(r.len() <= data.len());
            }
            l.nak_received(&data);
            l.reject_received(&data);
            let mut io = IpcpOptions::new(None, true);
            let _ = io.check_request(&data, allow);
            io.nak_received(&data);
            io.reject_received(&data);
            let mut vo = Ipv6cpOptions::default();
            let mut v6 = Ipv6cp { o: &mut vo, rng: &mut rng };
            let _ = v6.check_request(&data, allow);
            v6.nak_received(&data);
        }

        #[test]
        fn ipcp_request_roundtrips(a in any::<u32>(), dns in any::<bool>()) {
            let mut o = IpcpOptions::new(Some(Ipv4Addr::from(a)), dns);
            let req = o.request();
            let opts = crate::wire::parse_options(&req).unwrap();
            prop_assert_eq!(opts.len(), if dns { 3 } else { 1 });
            prop_assert_eq!(opts[0].u32(), Some(a));
        }
    }
}
