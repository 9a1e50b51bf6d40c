//! The IKEv1 initiator state machine: main / aggressive mode, quick mode (as initiator and
//! responder), informational exchanges, NAT traversal, DPD, rekeying.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use l2sec_crypto::{DhGroup, DhKeyPair, HashAlg, Rng, Strength};
use l2sec_esp::{DirectionKeys, Encapsulation, SaConfig};
use zeroize::Zeroizing;

use crate::cert::{self, ServerCert};
use crate::config::{Auth, Config, EspMode, Identity, PfsChoice};
use crate::error::{Error, notify_name};
use crate::keys::{self, Phase1Keys};
use crate::proposal::{
    self, AUTH_PSK, AUTH_RSA_SIG, EncapMode, EspProposal, IkeProposal, Lifetimes,
    default_esp_proposals, default_ike_proposals,
};
use crate::wire::{
    self, CERT_X509_SIGNATURE, CertPayload, DeletePayload, Header, IdPayload, Message,
    NatOaPayload, NotifyPayload, Packet, Payload, RawPayload, exchange, flags, id_type,
    notify_type, payload_type, protocol,
};

/// Well-known vendor IDs.
pub mod vendor_id {
    /// RFC 3947 NAT-T.
    pub const RFC3947: [u8; 16] =
        *b"\x4a\x13\x1c\x81\x07\x03\x58\x45\x5c\x57\x28\xf2\x0e\x95\x45\x2f";
    /// draft-ietf-ipsec-nat-t-ike-02.
    pub const DRAFT_02: [u8; 16] =
        *b"\xcd\x60\x46\x43\x35\xdf\x21\xf8\x7c\xfd\xb2\xfc\x68\xb6\xa4\x48";
    /// draft-ietf-ipsec-nat-t-ike-02\n.
    pub const DRAFT_02N: [u8; 16] =
        *b"\x90\xcb\x80\x91\x3e\xbb\x69\x6e\x08\x63\x81\xb5\xec\x42\x7b\x1f";
    /// draft-ietf-ipsec-nat-t-ike-03.
    pub const DRAFT_03: [u8; 16] =
        *b"\x7d\x94\x19\xa6\x53\x10\xca\x6f\x2c\x17\x9d\x92\x15\x52\x9d\x56";
    /// Dead Peer Detection v1.0 (RFC 3706).
    pub const DPD: [u8; 16] = *b"\xaf\xca\xd7\x13\x68\xa1\xf1\xc9\x6b\x86\x96\xfc\x77\x57\x01\x00";
}

/// Which UDP port an IKE datagram uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkePort {
    /// UDP 500.
    Ike,
    /// UDP 4500: the engine adds / strips the 4-byte non-ESP marker.
    NatT,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Port to send from / to.
    pub port: IkePort,
    /// ISAKMP message (without non-ESP marker), or `[0xFF]` for a keepalive.
    pub data: Vec<u8>,
    /// A NAT-T keepalive: send `data` as is, without the non-ESP marker.
    pub keepalive: bool,
}

/// What NAT detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatStatus {
    /// Our address is translated.
    pub local_behind_nat: bool,
    /// The server's address is translated (or the server fakes NAT-D).
    pub remote_behind_nat: bool,
    /// IKE and ESP use UDP 4500 (ESP in UDP).
    pub encap: bool,
}

/// What the initiator reports to the engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The ISAKMP SA is up.
    Phase1Done {
        /// Chosen proposal in `aes256-sha256-modp2048` form.
        proposal: String,
        /// NAT detection result.
        nat: NatStatus,
        /// Whether the suite is in the legacy tier (3DES, SHA-1, MODP-1024).
        legacy: bool,
    },
    /// An ESP SA pair is ready.
    ChildSaReady {
        /// Everything ESP needs.
        sa: SaConfig,
        /// Chosen proposal in `aes256-sha1` form.
        proposal: String,
        /// A replacement of an earlier SA (rekey or server-initiated quick mode).
        rekey: bool,
    },
    /// An ESP SA is gone (deleted by the server, replaced after rekey, or expired).
    ChildSaDeleted {
        /// Our inbound SPI of the SA.
        inbound_spi: u32,
    },
    /// Something the user should know (legacy suite, ignored notify, failed rekey).
    Warning(String),
    /// Terminal failure.
    Failed(Error),
    /// After [`Initiator::close`]: deletes were sent.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NatT {
    None,
    Rfc,
    Draft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum P1State {
    ExpectMm2,
    ExpectMm4,
    ExpectMm6,
    ExpectAm2,
}

struct Retx {
    data: Vec<u8>,
    port: IkePort,
    tries: u32,
    next: Instant,
}

struct Handshake {
    state: P1State,
    icookie: [u8; 8],
    rcookie: [u8; 8],
    sai_b: Vec<u8>,
    chosen: Option<(IkeProposal, Lifetimes)>,
    dh: Option<DhKeyPair>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    gxr: Vec<u8>,
    keys: Option<Phase1Keys>,
    iv: Vec<u8>,
    idii: IdPayload,
    retx: Retx,
    last_rx: Vec<u8>,
    mm4_repeats: u32,
    rekey: bool,
}

struct IkeSa {
    icookie: [u8; 8],
    rcookie: [u8; 8],
    /// The Diffie-Hellman group negotiated in phase 1 (for [`PfsChoice::Phase1`]).
    group: DhGroup,
    keys: Phase1Keys,
    iv: Vec<u8>,
    rekey_at: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QmRole {
    Initiator,
    Responder,
}

struct QuickMode {
    msg_id: u32,
    role: QmRole,
    iv: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    dh: Option<DhKeyPair>,
    our_spi: u32,
    /// The ESP proposals we offered, PFS group resolved (empty when we are the responder).
    offer: Vec<EspProposal>,
    retx: Option<Retx>,
    last_sent: Vec<u8>,
    last_rx: Vec<u8>,
    rekey_of: Option<u32>,
    pending: Option<(SaConfig, String)>,
    done_until: Option<Instant>,
}

struct Child {
    inbound_spi: u32,
    outbound_spi: u32,
    rekey_at: Option<Instant>,
    expire_at: Instant,
    rekeying: bool,
}

struct Dpd {
    next: Instant,
    seq: u32,
    outstanding: Vec<u32>,
    tries: u32,
    retry_at: Option<Instant>,
}

const NONCE_LEN: usize = 32;
const KEEPALIVE: Duration = Duration::from_secs(20);
const OLD_SA_GRACE: Duration = Duration::from_secs(20);
const DONE_QM_KEEP: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const L2TP_PORT: u16 = 1701;
const UDP: u8 = 17;

/// The warning for aggressive mode ([`Config::aggressive`]), in one wording for every caller.
/// The initiator does not report it: whoever turns aggressive mode on tells the user.
pub const AGGRESSIVE_MODE_WARNING: &str = "aggressive mode is on: its pre-shared key hash travels in the clear and can be cracked offline; \
     use main mode unless the server demands it";

/// The IKEv1 initiator.
pub struct Initiator {
    cfg: Config,
    local: SocketAddr,
    remote: SocketAddr,
    natt_ports: (u16, u16),
    rng: Box<dyn Rng>,
    ike_props: Vec<IkeProposal>,
    esp_props: Vec<EspProposal>,
    port: IkePort,
    natt: NatT,
    nat: NatStatus,
    dpd_supported: bool,
    handshake: Option<Handshake>,
    sa: Option<IkeSa>,
    qms: Vec<QuickMode>,
    children: Vec<Child>,
    pending_deletes: Vec<(Instant, u32)>,
    dpd: Option<Dpd>,
    keepalive_at: Option<Instant>,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    dead: bool,
}

impl core::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Initiator")
            .field("remote", &self.remote)
            .field("port", &self.port)
            .field("established", &self.sa.is_some())
            .field("children", &self.children.len())
            .finish_non_exhaustive()
    }
}

fn backoff(base: Duration, tries: u32) -> Duration {
    base.saturating_mul(1u32 << tries.min(16)).min(MAX_BACKOFF)
}

fn nat_hash(hash: HashAlg, ic: &[u8; 8], rc: &[u8; 8], addr: SocketAddr) -> Vec<u8> {
    let ip = match addr.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    l2sec_crypto::hash(hash, &[ic, rc, &ip, &addr.port().to_be_bytes()])
}

fn host_id(ip: IpAddr, proto: u8, port: u16) -> IdPayload {
    match ip {
        IpAddr::V4(a) => IdPayload {
            id_type: id_type::IPV4_ADDR,
            protocol: proto,
            port,
            data: a.octets().to_vec(),
        },
        IpAddr::V6(a) => IdPayload {
            id_type: id_type::IPV6_ADDR,
            protocol: proto,
            port,
            data: a.octets().to_vec(),
        },
    }
}

/// Builds `HASH | rest` where the hash covers `parts | rest`.
fn hashed_chain(keys: &Phase1Keys, parts: &[&[u8]], rest: &[Payload]) -> (u8, Vec<u8>) {
    let (first, rest_bytes) = wire::emit_payloads(rest);
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(&rest_bytes);
    let h = keys.auth_hash(&all);
    let mut out = Vec::with_capacity(4 + h.len() + rest_bytes.len());
    out.push(first);
    out.push(0);
    out.extend_from_slice(&((4 + h.len()) as u16).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&rest_bytes);
    (payload_type::HASH, out)
}

/// Encrypts a payload chain into a full message; returns the bytes and the next IV.
fn seal(
    keys: &Phase1Keys,
    iv: &[u8],
    mut header: Header,
    chain: (u8, Vec<u8>),
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let ct = keys::encrypt(keys.cipher, &keys.enc_key, iv, &chain.1)?;
    header.next_payload = chain.0;
    header.flags |= flags::ENCRYPTION;
    let mut out = Vec::with_capacity(wire::HEADER_LEN + ct.len());
    header.emit(wire::HEADER_LEN + ct.len(), &mut out);
    out.extend_from_slice(&ct);
    Ok((out, keys::last_block(&ct, keys.cipher.block_len())))
}

/// Decrypts an encrypted message; returns the plaintext body and the next IV.
fn open(keys: &Phase1Keys, iv: &[u8], data: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Error> {
    let p = Packet::new_checked(data)?;
    if p.flags() & flags::ENCRYPTION == 0 {
        return Err(Error::Malformed("expected an encrypted message"));
    }
    let plain = keys::decrypt(keys.cipher, &keys.enc_key, iv, p.body())?;
    Ok((plain, keys::last_block(p.body(), keys.cipher.block_len())))
}

/// Parsed payloads of a hashed (quick mode / informational) message, with the hash checked.
fn check_hashed<'a>(
    keys: &Phase1Keys,
    plain: &'a [u8],
    first: u8,
    parts: &[&[u8]],
) -> Result<Vec<(RawPayload<'a>, Payload)>, Error> {
    let raws = wire::collect_payloads(plain, first)?;
    let Some(h) = raws.first().filter(|r| r.kind == payload_type::HASH) else {
        return Err(Error::Malformed(
            "message does not start with a hash payload",
        ));
    };
    let end = raws.last().map_or(h.end, |r| r.end);
    let rest = &plain[h.end..end];
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(rest);
    let expect = keys.auth_hash(&all);
    if !subtle_eq(&expect, h.body) {
        return Err(Error::Protocol(
            "hash of a protected message does not verify".into(),
        ));
    }
    raws.into_iter()
        .skip(1)
        .map(|r| Payload::parse(&r).map(|p| (r, p)))
        .collect()
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn notify_error(code: u16, phase: u8, offered: String) -> Error {
    match code {
        notify_type::NO_PROPOSAL_CHOSEN => Error::NoProposalChosen { phase, offered },
        notify_type::INVALID_ID_INFORMATION => Error::InvalidIdInformation,
        notify_type::AUTHENTICATION_FAILED => Error::AuthenticationFailed,
        code => Error::Notify {
            code,
            name: notify_name(code),
        },
    }
}

fn keymat_split(
    sa: &IkeSa,
    gxy: Option<&[u8]>,
    p: &EspProposal,
    spi: u32,
    ni: &[u8],
    nr: &[u8],
) -> DirectionKeys {
    let enc_len = p.cipher.keymat_len();
    let auth_len = p.integ.map_or(0, |i| i.key_len());
    let km = keys::keymat(
        sa.keys.hash,
        &sa.keys.skeyid_d,
        gxy,
        protocol::ESP,
        spi,
        ni,
        nr,
        enc_len + auth_len,
    );
    DirectionKeys {
        spi,
        enc_key: Zeroizing::new(km[..enc_len].to_vec()),
        auth_key: Zeroizing::new(km[enc_len..].to_vec()),
    }
}

/// The first KE and nonce payloads of a message, if present.
fn ke_and_nonce(payloads: &[Payload]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (mut ke, mut nonce) = (None, None);
    for p in payloads {
        match p {
            Payload::Ke(k) if ke.is_none() => ke = Some(k.clone()),
            Payload::Nonce(n) if nonce.is_none() => nonce = Some(n.clone()),
            _ => {}
        }
    }
    (ke, nonce)
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Initiator {
    /// Creates the initiator and queues main (or aggressive) mode message 1.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty PSK, missing certificates, or proposals the policy forbids.
    pub fn new(
        config: Config,
        local: SocketAddr,
        remote: SocketAddr,
        natt_ports: (u16, u16),
        rng: Box<dyn Rng>,
        now: Instant,
    ) -> Result<Self, Error> {
        match &config.auth {
            Auth::Psk(k) if k.is_empty() => {
                return Err(Error::Config("the pre-shared key is empty".into()));
            }
            Auth::Cert(c) if c.cert_chain_der.is_empty() => {
                return Err(Error::Config("no client certificate configured".into()));
            }
            Auth::Cert(c) if c.ca_der.is_empty() => {
                return Err(Error::Config(
                    "no ca configured to validate the server certificate".into(),
                ));
            }
            _ => {}
        }
        let ike_props = if config.ike_proposals.is_empty() {
            default_ike_proposals(config.policy)
        } else {
            for p in &config.ike_proposals {
                l2sec_crypto::check_policy(config.policy, &p.to_string(), p.strength())
                    .map_err(|e| Error::Config(e.to_string()))?;
            }
            config.ike_proposals.clone()
        };
        if let PfsChoice::Group(g) = config.pfs {
            l2sec_crypto::check_policy(config.policy, g.name(), g.strength())
                .map_err(|e| Error::Config(e.to_string()))?;
        }
        // The PFS group is given to these proposals for each quick mode (it may be phase 1's).
        let esp_props = if config.esp_proposals.is_empty() {
            default_esp_proposals(config.policy, None)
        } else {
            for p in &config.esp_proposals {
                l2sec_crypto::check_policy(config.policy, &p.to_string(), p.strength())
                    .map_err(|e| Error::Config(e.to_string()))?;
            }
            config.esp_proposals.clone()
        };
        if ike_props.is_empty() || esp_props.is_empty() {
            return Err(Error::Config(
                "the policy leaves no proposal to offer".into(),
            ));
        }
        let mut me = Self {
            cfg: config,
            local,
            remote,
            natt_ports,
            rng,
            ike_props,
            esp_props,
            port: IkePort::Ike,
            natt: NatT::None,
            nat: NatStatus::default(),
            dpd_supported: false,
            handshake: None,
            sa: None,
            qms: Vec::new(),
            children: Vec::new(),
            pending_deletes: Vec::new(),
            dpd: None,
            keepalive_at: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            dead: false,
        };
        me.start_phase1(now, false)?;
        Ok(me)
    }

    fn random(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill(&mut v);
        v
    }

    fn random_u32(&mut self, min: u32) -> u32 {
        loop {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b);
            let v = u32::from_be_bytes(b);
            if v >= min {
                return v;
            }
        }
    }

    fn local_addr(&self) -> SocketAddr {
        match self.port {
            IkePort::Ike => self.local,
            IkePort::NatT => SocketAddr::new(self.local.ip(), self.natt_ports.0),
        }
    }

    fn remote_addr(&self) -> SocketAddr {
        match self.port {
            IkePort::Ike => self.remote,
            IkePort::NatT => SocketAddr::new(self.remote.ip(), self.natt_ports.1),
        }
    }

    fn auth_method(&self) -> u16 {
        match self.cfg.auth {
            Auth::Psk(_) => AUTH_PSK,
            Auth::Cert(_) => AUTH_RSA_SIG,
        }
    }

    fn local_identity(&self) -> Result<IdPayload, Error> {
        if let Some(id) = &self.cfg.local_id {
            return Ok(id.to_payload());
        }
        match (&self.cfg.auth, self.local.ip()) {
            (Auth::Cert(c), _) => {
                Ok(Identity::DerDn(cert::subject_der(&c.cert_chain_der[0])?).to_payload())
            }
            (Auth::Psk(_), IpAddr::V4(a)) => Ok(Identity::Ipv4(a).to_payload()),
            (Auth::Psk(_), ip) => Ok(host_id(ip, 0, 0)),
        }
    }

    fn offered_ike(&self) -> String {
        proposal::list(&self.ike_props)
    }

    /// What our latest quick mode offered (before any: the configured proposals).
    fn offered_esp(&self) -> String {
        let latest = self
            .qms
            .iter()
            .rev()
            .find(|q| q.role == QmRole::Initiator)
            .map_or(&self.esp_props, |q| &q.offer);
        proposal::list(latest)
    }

    fn vendor_ids() -> Vec<Payload> {
        [
            vendor_id::RFC3947,
            vendor_id::DRAFT_03,
            vendor_id::DRAFT_02N,
            vendor_id::DRAFT_02,
            vendor_id::DPD,
        ]
        .iter()
        .map(|v| Payload::VendorId(v.to_vec()))
        .collect()
    }

    fn queue(&mut self, port: IkePort, data: Vec<u8>) {
        self.out.push_back(Transmit {
            port,
            data,
            keepalive: false,
        });
    }

    fn fail(&mut self, e: Error) {
        if !self.dead {
            self.dead = true;
            self.events.push_back(Event::Failed(e));
        }
    }

    // ---------------------------------------------------------------- phase 1

    fn start_phase1(&mut self, now: Instant, rekey: bool) -> Result<(), Error> {
        let mut icookie = [0u8; 8];
        while icookie == [0; 8] {
            self.rng.fill(&mut icookie);
        }
        let aggressive = self.cfg.aggressive;
        let props: Vec<IkeProposal> = if aggressive {
            let g = self.ike_props[0].group;
            self.ike_props
                .iter()
                .copied()
                .filter(|p| p.group == g)
                .collect()
        } else {
            self.ike_props.clone()
        };
        let sa =
            proposal::ike_sa_payload(&props, self.auth_method(), self.cfg.ike_lifetime.as_secs());
        let mut sai_b = Vec::new();
        sa.emit(&mut sai_b);
        let idii = self.local_identity()?;
        let header = Header {
            initiator_cookie: icookie,
            responder_cookie: [0; 8],
            next_payload: 0,
            exchange: if aggressive {
                exchange::AGGRESSIVE
            } else {
                exchange::MAIN
            },
            flags: 0,
            message_id: 0,
        };
        let mut payloads = vec![Payload::Sa(sa)];
        let mut dh = None;
        let mut ni = Vec::new();
        if aggressive {
            let g = props[0].group;
            let kp = DhKeyPair::generate(g, &mut *self.rng)?;
            ni = self.random(NONCE_LEN);
            payloads.push(Payload::Ke(kp.public_value().to_vec()));
            payloads.push(Payload::Nonce(ni.clone()));
            payloads.push(Payload::Id(idii.clone()));
            dh = Some(kp);
        }
        payloads.extend(Self::vendor_ids());
        let data = Message { header, payloads }.emit();
        let port = self.port;
        self.queue(port, data.clone());
        self.handshake = Some(Handshake {
            state: if aggressive {
                P1State::ExpectAm2
            } else {
                P1State::ExpectMm2
            },
            icookie,
            rcookie: [0; 8],
            sai_b,
            chosen: None,
            dh,
            ni,
            nr: Vec::new(),
            gxr: Vec::new(),
            keys: None,
            iv: Vec::new(),
            idii,
            retx: Retx {
                data,
                port,
                tries: 1,
                next: now + self.cfg.retransmit_base,
            },
            last_rx: Vec::new(),
            mm4_repeats: 0,
            rekey,
        });
        Ok(())
    }

    fn stage_name(h: &Handshake) -> &'static str {
        match h.state {
            P1State::ExpectMm2 => "main mode message 1",
            P1State::ExpectMm4 => "main mode message 3",
            P1State::ExpectMm6 => "main mode message 5",
            P1State::ExpectAm2 => "aggressive mode message 1",
        }
    }

    fn send_handshake(&mut self, now: Instant, data: Vec<u8>, state: P1State) {
        let port = self.port;
        self.queue(port, data.clone());
        let base = self.cfg.retransmit_base;
        if let Some(h) = self.handshake.as_mut() {
            h.state = state;
            h.retx = Retx {
                data,
                port,
                tries: 1,
                next: now + base,
            };
        }
    }

    fn check_chosen_ike(&self, msg: &Message) -> Result<(IkeProposal, Lifetimes), Error> {
        let sa = msg
            .payloads
            .iter()
            .find_map(|p| {
                if let Payload::Sa(s) = p {
                    Some(s)
                } else {
                    None
                }
            })
            .ok_or(Error::Malformed("phase 1 response without sa"))?;
        let t = sa
            .proposals
            .first()
            .and_then(|p| p.transforms.first())
            .ok_or(Error::Malformed("phase 1 response sa without transform"))?;
        let (p, auth, life) = proposal::decode_ike_transform(t)?;
        if !self.ike_props.contains(&p) || auth != self.auth_method() {
            return Err(Error::BadProposal(format!("{p} (auth method {auth})")));
        }
        Ok((p, life))
    }

    fn note_vendor_ids(&mut self, msg: &Message) {
        let mut natt = NatT::None;
        for p in &msg.payloads {
            if let Payload::VendorId(v) = p {
                if v.as_slice() == vendor_id::RFC3947 {
                    natt = NatT::Rfc;
                } else if natt == NatT::None
                    && [
                        vendor_id::DRAFT_02,
                        vendor_id::DRAFT_02N,
                        vendor_id::DRAFT_03,
                    ]
                    .iter()
                    .any(|d| v.as_slice() == d)
                {
                    natt = NatT::Draft;
                } else if v.as_slice() == vendor_id::DPD {
                    self.dpd_supported = true;
                }
            }
        }
        self.natt = natt;
    }

    fn our_nat_d(&mut self, hash: HashAlg, ic: &[u8; 8], rc: &[u8; 8]) -> Vec<Payload> {
        if self.natt == NatT::None {
            return Vec::new();
        }
        let draft = self.natt == NatT::Draft;
        let remote = nat_hash(hash, ic, rc, self.remote_addr());
        let local = if self.cfg.force_encap {
            // A hash that cannot match makes the server see us behind a NAT (RFC 3947 allows faking).
            self.random(remote.len())
        } else {
            nat_hash(hash, ic, rc, self.local_addr())
        };
        vec![
            Payload::NatD {
                draft,
                hash: remote,
            },
            Payload::NatD { draft, hash: local },
        ]
    }

    fn detect_nat(&mut self, msg: &Message, hash: HashAlg, ic: &[u8; 8], rc: &[u8; 8]) {
        if self.natt == NatT::None {
            return;
        }
        let hashes: Vec<&Vec<u8>> = msg
            .payloads
            .iter()
            .filter_map(|p| {
                if let Payload::NatD { hash, .. } = p {
                    Some(hash)
                } else {
                    None
                }
            })
            .collect();
        if hashes.is_empty() {
            return;
        }
        let me = nat_hash(hash, ic, rc, self.local_addr());
        let them = nat_hash(hash, ic, rc, self.remote_addr());
        self.nat.local_behind_nat = hashes[0] != &me;
        self.nat.remote_behind_nat = !hashes[1..].iter().any(|h| **h == them);
        if self.nat.local_behind_nat || self.nat.remote_behind_nat || self.cfg.force_encap {
            self.port = IkePort::NatT;
            self.nat.encap = true;
        }
    }

    fn on_handshake(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        if pkt.exchange() == exchange::INFORMATIONAL {
            return self.on_handshake_informational(data);
        }
        let Some(h) = self.handshake.as_mut() else {
            return Ok(());
        };
        if data == h.last_rx.as_slice() {
            if h.state == P1State::ExpectMm6 {
                h.mm4_repeats += 1;
                if h.mm4_repeats >= 2 && matches!(self.cfg.auth, Auth::Psk(_)) {
                    return Err(Error::PskRejectedSilently);
                }
            }
            let (port, d) = (h.retx.port, h.retx.data.clone());
            self.queue(port, d);
            return Ok(());
        }
        match h.state {
            P1State::ExpectMm2 => self.on_mm2(now, data),
            P1State::ExpectMm4 => self.on_mm4(now, data),
            P1State::ExpectMm6 => self.on_mm6(now, data),
            P1State::ExpectAm2 => self.on_am2(now, data),
        }
    }

    fn on_handshake_informational(&mut self, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        let Some(h) = self.handshake.as_ref() else {
            return Ok(());
        };
        let payloads: Vec<Payload> = if pkt.flags() & flags::ENCRYPTION != 0 {
            let Some(k) = h.keys.as_ref() else {
                return Ok(());
            };
            let iv = keys::exchange_iv(k.hash, &h.iv, pkt.message_id(), k.cipher.block_len());
            let (plain, _) = open(k, &iv, data)?;
            let mid = pkt.message_id().to_be_bytes();
            check_hashed(k, &plain, pkt.next_payload(), &[&mid])?
                .into_iter()
                .map(|(_, p)| p)
                .collect()
        } else {
            Message::parse(data)?.payloads
        };
        let rekey = h.rekey;
        for p in payloads {
            if let Payload::Notify(n) = p {
                if n.kind < 8192 {
                    let e = notify_error(n.kind, 1, self.offered_ike());
                    if rekey {
                        self.events
                            .push_back(Event::Warning(format!("phase 1 rekey failed: {e}")));
                        self.handshake = None;
                        return Ok(());
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn on_mm2(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let msg = Message::parse(data)?;
        if msg.header.exchange != exchange::MAIN {
            return Ok(());
        }
        let chosen = self.check_chosen_ike(&msg)?;
        self.note_vendor_ids(&msg);
        let kp = DhKeyPair::generate(chosen.0.group, &mut *self.rng)?;
        let ni = self.random(NONCE_LEN);
        let rc = msg.header.responder_cookie;
        let h = self.handshake.as_mut().ok_or(Error::Closed)?;
        h.rcookie = rc;
        h.chosen = Some(chosen);
        h.last_rx = data.to_vec();
        h.ni = ni.clone();
        let ic = h.icookie;
        let mut payloads = vec![Payload::Ke(kp.public_value().to_vec()), Payload::Nonce(ni)];
        h.dh = Some(kp);
        if let Auth::Cert(c) = &self.cfg.auth {
            for ca in &c.ca_der {
                if let Ok(dn) = cert::subject_der(ca) {
                    payloads.push(Payload::CertReq(CertPayload {
                        encoding: CERT_X509_SIGNATURE,
                        data: dn,
                    }));
                }
            }
        }
        payloads.extend(self.our_nat_d(chosen.0.hash, &ic, &rc));
        let header = Header {
            initiator_cookie: ic,
            responder_cookie: rc,
            next_payload: 0,
            exchange: exchange::MAIN,
            flags: 0,
            message_id: 0,
        };
        self.send_handshake(now, Message { header, payloads }.emit(), P1State::ExpectMm4);
        Ok(())
    }

    /// Computes g^xy and the phase 1 keys once KE and nonce of the responder are known.
    fn derive_phase1(&mut self, gxr: &[u8], nr: &[u8]) -> Result<(), Error> {
        let h = self.handshake.as_mut().ok_or(Error::Closed)?;
        let (p, _) = h.chosen.ok_or(Error::Closed)?;
        let dh = h.dh.as_ref().ok_or(Error::Closed)?;
        let gxy = dh.compute_shared(gxr)?;
        let skeyid = match &self.cfg.auth {
            Auth::Psk(k) => keys::skeyid_psk(p.hash, k, &h.ni, nr),
            Auth::Cert(_) => keys::skeyid_sig(p.hash, &h.ni, nr, &gxy),
        };
        let k = Phase1Keys::derive(p.hash, p.cipher, skeyid, &gxy, &h.icookie, &h.rcookie);
        h.iv = keys::initial_iv(p.hash, dh.public_value(), gxr, p.cipher.block_len());
        h.keys = Some(k);
        h.nr = nr.to_vec();
        h.gxr = gxr.to_vec();
        Ok(())
    }

    fn hash_i(h: &Handshake) -> Zeroizing<Vec<u8>> {
        let k = h.keys.as_ref().expect("keys derived before hash_i");
        let gxi =
            h.dh.as_ref()
                .map(|d| d.public_value().to_vec())
                .unwrap_or_default();
        let idii_b = h.idii.to_bytes();
        l2sec_crypto::prf(
            k.hash,
            &k.skeyid,
            &[&gxi, &h.gxr, &h.icookie, &h.rcookie, &h.sai_b, &idii_b],
        )
    }

    fn hash_r(h: &Handshake, idir_b: &[u8]) -> Zeroizing<Vec<u8>> {
        let k = h.keys.as_ref().expect("keys derived before hash_r");
        let gxi =
            h.dh.as_ref()
                .map(|d| d.public_value().to_vec())
                .unwrap_or_default();
        l2sec_crypto::prf(
            k.hash,
            &k.skeyid,
            &[&h.gxr, &gxi, &h.rcookie, &h.icookie, &h.sai_b, idir_b],
        )
    }

    /// Our authentication payloads: HASH_I, or CERT + SIG.
    fn auth_payloads(&mut self) -> Result<Vec<Payload>, Error> {
        let h = self.handshake.as_ref().ok_or(Error::Closed)?;
        let hash = Self::hash_i(h);
        match &self.cfg.auth {
            Auth::Psk(_) => Ok(vec![Payload::Hash(hash.to_vec())]),
            Auth::Cert(c) => {
                let mut v: Vec<Payload> = c
                    .cert_chain_der
                    .iter()
                    .map(|d| {
                        Payload::Cert(CertPayload {
                            encoding: CERT_X509_SIGNATURE,
                            data: d.clone(),
                        })
                    })
                    .collect();
                let key = c.key.clone();
                v.push(Payload::Sig(cert::sign(&key, &mut *self.rng, &hash)?));
                Ok(v)
            }
        }
    }

    fn on_mm4(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let msg = Message::parse(data)?;
        if msg.header.exchange != exchange::MAIN {
            return Ok(());
        }
        let (ke, nr) = ke_and_nonce(&msg.payloads);
        let (Some(ke), Some(nr)) = (ke, nr) else {
            return Err(Error::Malformed("main mode message 4 without ke or nonce"));
        };
        self.derive_phase1(&ke, &nr)?;
        let (ic, rc, hash) = {
            let h = self.handshake.as_mut().ok_or(Error::Closed)?;
            h.last_rx = data.to_vec();
            (
                h.icookie,
                h.rcookie,
                h.keys.as_ref().map(|k| k.hash).ok_or(Error::Closed)?,
            )
        };
        self.detect_nat(&msg, hash, &ic, &rc);
        let idii = self.handshake.as_ref().ok_or(Error::Closed)?.idii.clone();
        let mut payloads = vec![Payload::Id(idii)];
        payloads.extend(self.auth_payloads()?);
        let h = self.handshake.as_mut().ok_or(Error::Closed)?;
        if !h.rekey {
            let mut spi = ic.to_vec();
            spi.extend_from_slice(&rc);
            payloads.push(Payload::Notify(NotifyPayload {
                doi: 1,
                protocol: protocol::ISAKMP,
                kind: notify_type::INITIAL_CONTACT,
                spi,
                data: Vec::new(),
            }));
        }
        let header = Header {
            initiator_cookie: ic,
            responder_cookie: rc,
            next_payload: 0,
            exchange: exchange::MAIN,
            flags: 0,
            message_id: 0,
        };
        let k = h.keys.as_ref().ok_or(Error::Closed)?;
        let (bytes, iv) = seal(k, &h.iv, header, wire::emit_payloads(&payloads))?;
        h.iv = iv;
        self.send_handshake(now, bytes, P1State::ExpectMm6);
        Ok(())
    }

    fn verify_responder(
        &mut self,
        payloads: &[(Option<RawPayload<'_>>, Payload)],
    ) -> Result<(), Error> {
        let h = self.handshake.as_ref().ok_or(Error::Closed)?;
        for (_, p) in payloads {
            if let Payload::Notify(n) = p {
                if n.kind < 8192 {
                    return Err(notify_error(n.kind, 1, self.offered_ike()));
                }
            }
        }
        let id = payloads
            .iter()
            .find_map(|(_, p)| {
                if let Payload::Id(i) = p {
                    Some(i.clone())
                } else {
                    None
                }
            })
            .ok_or(Error::Malformed("responder authentication without id"))?;
        let idir_b = id.to_bytes();
        let expect = Self::hash_r(h, &idir_b);
        match &self.cfg.auth {
            Auth::Psk(_) => {
                let got = payloads
                    .iter()
                    .find_map(|(_, p)| {
                        if let Payload::Hash(x) = p {
                            Some(x)
                        } else {
                            None
                        }
                    })
                    .ok_or(Error::Malformed("responder authentication without hash"))?;
                if !subtle_eq(&expect, got) {
                    return Err(Error::WrongPsk);
                }
            }
            Auth::Cert(c) => {
                let certs: Vec<Vec<u8>> = payloads
                    .iter()
                    .filter_map(|(_, p)| match p {
                        Payload::Cert(c) if c.encoding == CERT_X509_SIGNATURE => {
                            Some(c.data.clone())
                        }
                        _ => None,
                    })
                    .collect();
                let sig = payloads
                    .iter()
                    .find_map(|(_, p)| {
                        if let Payload::Sig(s) = p {
                            Some(s)
                        } else {
                            None
                        }
                    })
                    .ok_or(Error::Malformed(
                        "responder authentication without signature",
                    ))?;
                // Certificate validity needs wall-clock time, the one clock this crate reads.
                let now_unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let sc: ServerCert = cert::validate_chain(&certs, &c.ca_der, &id, now_unix)?;
                sc.verify(&expect, sig)?;
                sc.check_identity(&id, c.remote_id.as_ref())?;
            }
        }
        Ok(())
    }

    fn on_mm6(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        if pkt.exchange() != exchange::MAIN || pkt.flags() & flags::ENCRYPTION == 0 {
            // A changed plaintext main mode message here is MM4 sent again.
            let h = self.handshake.as_mut().ok_or(Error::Closed)?;
            h.mm4_repeats += 1;
            if h.mm4_repeats >= 2 && matches!(self.cfg.auth, Auth::Psk(_)) {
                return Err(Error::PskRejectedSilently);
            }
            let (port, d) = (h.retx.port, h.retx.data.clone());
            self.queue(port, d);
            return Ok(());
        }
        let (plain, next_iv) = {
            let h = self.handshake.as_ref().ok_or(Error::Closed)?;
            let k = h.keys.as_ref().ok_or(Error::Closed)?;
            open(k, &h.iv, data)?
        };
        let parsed: Vec<(Option<RawPayload<'_>>, Payload)> =
            match wire::collect_payloads(&plain, pkt.next_payload()).and_then(|raws| {
                raws.into_iter()
                    .map(|r| Payload::parse(&r).map(|p| (Some(r), p)))
                    .collect()
            }) {
                Ok(v) => v,
                Err(_) if matches!(self.cfg.auth, Auth::Psk(_)) => return Err(Error::WrongPsk),
                Err(e) => return Err(e),
            };
        self.verify_responder(&parsed)?;
        let h = self.handshake.as_mut().ok_or(Error::Closed)?;
        h.iv = next_iv;
        self.establish(now)
    }

    fn on_am2(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let msg = Message::parse(data)?;
        if msg.header.exchange != exchange::AGGRESSIVE {
            return Ok(());
        }
        let chosen = self.check_chosen_ike(&msg)?;
        self.note_vendor_ids(&msg);
        let (ke, nr) = ke_and_nonce(&msg.payloads);
        let (Some(ke), Some(nr)) = (ke, nr) else {
            return Err(Error::Malformed(
                "aggressive mode message 2 without ke or nonce",
            ));
        };
        {
            let h = self.handshake.as_mut().ok_or(Error::Closed)?;
            h.rcookie = msg.header.responder_cookie;
            h.chosen = Some(chosen);
            h.last_rx = data.to_vec();
        }
        self.derive_phase1(&ke, &nr)?;
        let parsed: Vec<(Option<RawPayload<'_>>, Payload)> =
            msg.payloads.iter().map(|p| (None, p.clone())).collect();
        self.verify_responder(&parsed)?;
        let (ic, rc) = {
            let h = self.handshake.as_ref().ok_or(Error::Closed)?;
            (h.icookie, h.rcookie)
        };
        let mut payloads = self.auth_payloads()?;
        payloads.extend(self.our_nat_d(chosen.0.hash, &ic, &rc));
        self.detect_nat(&msg, chosen.0.hash, &ic, &rc);
        let header = Header {
            initiator_cookie: ic,
            responder_cookie: rc,
            next_payload: 0,
            exchange: exchange::AGGRESSIVE,
            flags: 0,
            message_id: 0,
        };
        // Message 3 is encrypted (RFC 2408 section 4.7, `HDR*`), and its last cipher block
        // seeds the quick mode IVs: libreswan accepts a clear message 3 but then expects
        // that chain, so a quick mode after a clear one cannot be decrypted.
        let bytes = {
            let h = self.handshake.as_mut().ok_or(Error::Closed)?;
            let k = h.keys.as_ref().ok_or(Error::Closed)?;
            let (bytes, iv) = seal(k, &h.iv, header, wire::emit_payloads(&payloads))?;
            h.iv = iv;
            bytes
        };
        let port = self.port;
        self.queue(port, bytes);
        self.establish(now)
    }

    fn establish(&mut self, now: Instant) -> Result<(), Error> {
        let h = self.handshake.take().ok_or(Error::Closed)?;
        let (p, life) = h.chosen.ok_or(Error::Closed)?;
        let keys = h.keys.ok_or(Error::Closed)?;
        let ours = self.cfg.ike_lifetime.as_secs();
        let secs = life.secs.map_or(ours, |s| s.min(ours)).max(60);
        let sa = IkeSa {
            icookie: h.icookie,
            rcookie: h.rcookie,
            group: p.group,
            keys,
            iv: h.iv,
            rekey_at: now + Duration::from_secs(secs * 9 / 10),
        };
        let old = self.sa.replace(sa);
        let legacy = p.strength() != Strength::Modern;
        self.events.push_back(Event::Phase1Done {
            proposal: p.to_string(),
            nat: self.nat,
            legacy,
        });
        if legacy && !h.rekey {
            self.events.push_back(Event::Warning(format!(
                "the server negotiated the legacy ike suite {p}"
            )));
        }
        if let Some(old) = old {
            let mut spi = old.icookie.to_vec();
            spi.extend_from_slice(&old.rcookie);
            let d = Payload::Delete(DeletePayload {
                doi: 1,
                protocol: protocol::ISAKMP,
                spi_size: 16,
                spis: vec![spi],
            });
            self.send_informational_with(&old, vec![d])?;
        }
        if self.port == IkePort::NatT && self.keepalive_at.is_none() {
            self.keepalive_at = Some(now + KEEPALIVE);
        }
        if self.dpd_supported && !self.cfg.dpd_interval.is_zero() && self.dpd.is_none() {
            let seq = self.random_u32(1) & 0x7fff_ffff;
            self.dpd = Some(Dpd {
                next: now + self.cfg.dpd_interval,
                seq,
                outstanding: Vec::new(),
                tries: 0,
                retry_at: None,
            });
        }
        if !h.rekey {
            self.start_quick_mode(now, None)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- informational

    fn send_informational_with(&mut self, sa: &IkeSa, payloads: Vec<Payload>) -> Result<(), Error> {
        let msg_id = self.random_u32(1);
        let mid = msg_id.to_be_bytes();
        let chain = hashed_chain(&sa.keys, &[&mid], &payloads);
        let iv = keys::exchange_iv(sa.keys.hash, &sa.iv, msg_id, sa.keys.cipher.block_len());
        let header = Header {
            initiator_cookie: sa.icookie,
            responder_cookie: sa.rcookie,
            next_payload: 0,
            exchange: exchange::INFORMATIONAL,
            flags: 0,
            message_id: msg_id,
        };
        let (bytes, _) = seal(&sa.keys, &iv, header, chain)?;
        let port = self.port;
        self.queue(port, bytes);
        Ok(())
    }

    fn send_informational(&mut self, payloads: Vec<Payload>) -> Result<(), Error> {
        let Some(sa) = self.sa.take() else {
            return Ok(());
        };
        let r = self.send_informational_with(&sa, payloads);
        self.sa = Some(sa);
        r
    }

    fn isakmp_notify(&self, kind: u16, data: Vec<u8>) -> Payload {
        let mut spi = Vec::with_capacity(16);
        if let Some(sa) = &self.sa {
            spi.extend_from_slice(&sa.icookie);
            spi.extend_from_slice(&sa.rcookie);
        }
        Payload::Notify(NotifyPayload {
            doi: 1,
            protocol: protocol::ISAKMP,
            kind,
            spi,
            data,
        })
    }

    fn on_informational(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        if pkt.flags() & flags::ENCRYPTION == 0 {
            return Ok(()); // unauthenticated after phase 1: ignore
        }
        let payloads: Vec<Payload> = {
            let Some(sa) = self.sa.as_ref() else {
                return Ok(());
            };
            let iv = keys::exchange_iv(
                sa.keys.hash,
                &sa.iv,
                pkt.message_id(),
                sa.keys.cipher.block_len(),
            );
            let (plain, _) = open(&sa.keys, &iv, data)?;
            let mid = pkt.message_id().to_be_bytes();
            check_hashed(&sa.keys, &plain, pkt.next_payload(), &[&mid])?
                .into_iter()
                .map(|(_, p)| p)
                .collect()
        };
        self.peer_alive(now);
        for p in payloads {
            match p {
                Payload::Notify(n) => self.on_notify(now, &n)?,
                Payload::Delete(d) => self.on_delete(now, &d)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn peer_alive(&mut self, now: Instant) {
        if let Some(d) = self.dpd.as_mut() {
            d.outstanding.clear();
            d.tries = 0;
            d.retry_at = None;
            d.next = now + self.cfg.dpd_interval;
        }
    }

    fn on_notify(&mut self, now: Instant, n: &NotifyPayload) -> Result<(), Error> {
        match n.kind {
            notify_type::R_U_THERE => {
                let ack = self.isakmp_notify(notify_type::R_U_THERE_ACK, n.data.clone());
                self.send_informational(vec![ack])?;
            }
            notify_type::R_U_THERE_ACK => self.peer_alive(now),
            k if k < 8192 => {
                let pending = self
                    .qms
                    .iter()
                    .position(|q| q.role == QmRole::Initiator && q.done_until.is_none());
                let offered = pending.map_or_else(
                    || self.offered_esp(),
                    |i| proposal::list(&self.qms[i].offer),
                );
                let e = notify_error(k, 2, offered);
                match pending {
                    Some(i) if self.qms[i].rekey_of.is_none() => return Err(e),
                    Some(i) => {
                        self.qms.remove(i);
                        self.events
                            .push_back(Event::Warning(format!("esp rekey failed: {e}")));
                    }
                    None => self
                        .events
                        .push_back(Event::Warning(format!("the server reported: {e}"))),
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_delete(&mut self, now: Instant, d: &DeletePayload) -> Result<(), Error> {
        match d.protocol {
            protocol::ISAKMP => {
                let Some(sa) = &self.sa else { return Ok(()) };
                let mut me = sa.icookie.to_vec();
                me.extend_from_slice(&sa.rcookie);
                if d.spis.contains(&me) {
                    return Err(Error::Deleted);
                }
            }
            protocol::ESP => {
                for s in &d.spis {
                    let Ok(b) = <[u8; 4]>::try_from(s.as_slice()) else {
                        continue;
                    };
                    let spi = u32::from_be_bytes(b);
                    if let Some(i) = self
                        .children
                        .iter()
                        .position(|c| c.outbound_spi == spi || c.inbound_spi == spi)
                    {
                        let c = self.children.remove(i);
                        self.events.push_back(Event::ChildSaDeleted {
                            inbound_spi: c.inbound_spi,
                        });
                    }
                }
                let negotiating = self.qms.iter().any(|q| q.done_until.is_none());
                if self.children.is_empty() && !negotiating {
                    self.start_quick_mode(now, Some(0))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    // ---------------------------------------------------------------- quick mode

    fn esp_mode(&self) -> EncapMode {
        let draft = self.natt == NatT::Draft;
        match (self.cfg.mode, self.port) {
            (EspMode::Transport, IkePort::Ike) => EncapMode::Transport,
            (EspMode::Transport, IkePort::NatT) => EncapMode::UdpTransport { draft },
            (EspMode::TunnelHost, IkePort::Ike) => EncapMode::Tunnel,
            (EspMode::TunnelHost, IkePort::NatT) => EncapMode::UdpTunnel { draft },
        }
    }

    fn start_quick_mode(&mut self, now: Instant, rekey_of: Option<u32>) -> Result<(), Error> {
        let msg_id = loop {
            let m = self.random_u32(1);
            if !self.qms.iter().any(|q| q.msg_id == m) {
                break m;
            }
        };
        let phase1_group = self.sa.as_ref().ok_or(Error::Closed)?.group;
        let offer = proposal::quick_mode_offer(&self.esp_props, self.cfg.pfs.resolve(phase1_group));
        let our_spi = self.random_u32(256);
        let ni = self.random(NONCE_LEN);
        let dh = match offer.first().and_then(|p| p.pfs) {
            Some(g) => Some(DhKeyPair::generate(g, &mut *self.rng)?),
            None => None,
        };
        let mode = self.esp_mode();
        let sa = proposal::esp_sa_payload(
            &offer,
            our_spi,
            mode,
            self.cfg.esp_lifetime.as_secs(),
            self.cfg.esp_lifetime_kb,
        );
        let mut rest = vec![Payload::Sa(sa), Payload::Nonce(ni.clone())];
        if let Some(kp) = &dh {
            rest.push(Payload::Ke(kp.public_value().to_vec()));
        }
        rest.push(Payload::Id(host_id(self.local.ip(), UDP, L2TP_PORT)));
        rest.push(Payload::Id(host_id(self.remote.ip(), UDP, L2TP_PORT)));
        if self.port == IkePort::NatT && !mode.is_tunnel() {
            let draft = self.natt == NatT::Draft;
            rest.push(Payload::NatOa {
                draft,
                oa: NatOaPayload {
                    addr: self.local.ip(),
                },
            });
            if !draft {
                rest.push(Payload::NatOa {
                    draft,
                    oa: NatOaPayload {
                        addr: self.remote.ip(),
                    },
                });
            }
        }
        let sa = self.sa.as_ref().ok_or(Error::Closed)?;
        let mid = msg_id.to_be_bytes();
        let chain = hashed_chain(&sa.keys, &[&mid], &rest);
        let iv = keys::exchange_iv(sa.keys.hash, &sa.iv, msg_id, sa.keys.cipher.block_len());
        let header = Header {
            initiator_cookie: sa.icookie,
            responder_cookie: sa.rcookie,
            next_payload: 0,
            exchange: exchange::QUICK,
            flags: 0,
            message_id: msg_id,
        };
        let (bytes, iv) = seal(&sa.keys, &iv, header, chain)?;
        let port = self.port;
        self.queue(port, bytes.clone());
        self.qms.push(QuickMode {
            msg_id,
            role: QmRole::Initiator,
            iv,
            ni,
            nr: Vec::new(),
            dh,
            our_spi,
            offer,
            retx: Some(Retx {
                data: bytes.clone(),
                port,
                tries: 1,
                next: now + self.cfg.retransmit_base,
            }),
            last_sent: bytes,
            last_rx: Vec::new(),
            rekey_of,
            pending: None,
            done_until: None,
        });
        Ok(())
    }

    fn on_quick(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        if pkt.flags() & flags::ENCRYPTION == 0 || pkt.message_id() == 0 {
            return Ok(());
        }
        let Some(i) = self.qms.iter().position(|q| q.msg_id == pkt.message_id()) else {
            return self.on_quick_responder(now, data);
        };
        if self.qms[i].last_rx == data {
            let (port, d) = (self.port, self.qms[i].last_sent.clone());
            self.queue(port, d);
            return Ok(());
        }
        if self.qms[i].done_until.is_some() {
            return Ok(());
        }
        match self.qms[i].role {
            QmRole::Initiator => self.on_qm2(now, i, data),
            QmRole::Responder => self.on_qm3(now, i, data),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn child_sa(
        &self,
        choice: &proposal::EspChoice,
        their_spi: u32,
        our_spi: u32,
        gxy: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        life: Lifetimes,
        nat_oa: &[IpAddr],
    ) -> Result<SaConfig, Error> {
        let sa = self.sa.as_ref().ok_or(Error::Closed)?;
        let p = &choice.proposal;
        let encap = match self.port {
            IkePort::NatT => Encapsulation::Udp {
                local_port: self.natt_ports.0,
                remote_port: self.natt_ports.1,
            },
            IkePort::Ike => Encapsulation::Raw,
        };
        let nat_oa = match nat_oa {
            [a, b, ..] => Some((*a, *b)),
            [b] => Some((self.local.ip(), *b)),
            [] => None,
        };
        Ok(SaConfig {
            cipher: p.cipher,
            integ: p.integ,
            outbound: keymat_split(sa, gxy, p, their_spi, ni, nr),
            inbound: keymat_split(sa, gxy, p, our_spi, ni, nr),
            encap,
            nat_oa,
            lifetime_secs: life.secs.map(|s| s.min(u64::from(u32::MAX)) as u32),
            lifetime_kbytes: life.kbytes,
        })
    }

    fn install_child(
        &mut self,
        now: Instant,
        sa: SaConfig,
        proposal: String,
        rekey_of: Option<u32>,
        rekey: bool,
    ) {
        let secs = u64::from(sa.lifetime_secs.unwrap_or(u32::MAX)).min(u64::from(u32::MAX));
        let life = Duration::from_secs(secs.max(10));
        if let Some(old) = rekey_of {
            self.pending_deletes.push((now + OLD_SA_GRACE, old));
        } else if rekey {
            // Server-initiated quick mode: the server replaces its SA; retire ours later too.
            for c in &self.children {
                if !self
                    .pending_deletes
                    .iter()
                    .any(|(_, s)| *s == c.inbound_spi)
                {
                    self.pending_deletes
                        .push((now + OLD_SA_GRACE, c.inbound_spi));
                }
            }
        }
        self.children.push(Child {
            inbound_spi: sa.inbound.spi,
            outbound_spi: sa.outbound.spi,
            rekey_at: Some(now + life * 9 / 10),
            expire_at: now + life,
            rekeying: false,
        });
        self.events.push_back(Event::ChildSaReady {
            sa,
            proposal,
            rekey: rekey || rekey_of.is_some(),
        });
    }

    fn on_qm2(&mut self, now: Instant, i: usize, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        let sa = self.sa.as_ref().ok_or(Error::Closed)?;
        let q = &self.qms[i];
        let (plain, next_iv) = open(&sa.keys, &q.iv, data)?;
        let mid = q.msg_id.to_be_bytes();
        let payloads = check_hashed(&sa.keys, &plain, pkt.next_payload(), &[&mid, &q.ni])?;
        let mut choice = None;
        let mut their_spi = None;
        let mut nr = None;
        let mut ke = None;
        let mut oas = Vec::new();
        let mut life = Lifetimes {
            secs: Some(self.cfg.esp_lifetime.as_secs()),
            kbytes: self.cfg.esp_lifetime_kb,
        };
        for (_, p) in &payloads {
            match p {
                Payload::Sa(s) => {
                    let prop = s
                        .proposals
                        .first()
                        .ok_or(Error::Malformed("quick mode sa without proposal"))?;
                    let t = prop
                        .transforms
                        .first()
                        .ok_or(Error::Malformed("quick mode sa without transform"))?;
                    let spi = <[u8; 4]>::try_from(prop.spi.as_slice())
                        .map_err(|_| Error::Malformed("esp spi is not 4 bytes"))?;
                    their_spi = Some(u32::from_be_bytes(spi));
                    let c = proposal::decode_esp_transform(t)?;
                    if !q.offer.contains(&c.proposal) {
                        return Err(Error::BadProposal(c.proposal.to_string()));
                    }
                    choice = Some(c);
                }
                Payload::Nonce(n) => nr = Some(n.clone()),
                Payload::Ke(k) => ke = Some(k.clone()),
                Payload::NatOa { oa, .. } => oas.push(oa.addr),
                Payload::Notify(n) if n.kind == notify_type::RESPONDER_LIFETIME => {
                    let attrs = wire::Attribute::parse_list(&n.data)?;
                    let l = proposal::read_lifetimes(
                        &attrs,
                        proposal::p2attr::LIFE_TYPE,
                        proposal::p2attr::LIFE_DURATION,
                    );
                    life.secs = min_opt(life.secs, l.secs);
                    life.kbytes = min_opt(life.kbytes, l.kbytes);
                }
                _ => {}
            }
        }
        let (Some(choice), Some(their_spi), Some(nr)) = (choice, their_spi, nr) else {
            return Err(Error::Malformed(
                "quick mode message 2 without sa, spi or nonce",
            ));
        };
        life.secs = min_opt(life.secs, choice.life.secs);
        life.kbytes = min_opt(life.kbytes, choice.life.kbytes);
        let gxy = match (&q.dh, ke) {
            (Some(dh), Some(ke)) => Some(dh.compute_shared(&ke)?),
            (Some(_), None) => {
                return Err(Error::Malformed(
                    "pfs requested but no ke in quick mode message 2",
                ));
            }
            _ => None,
        };
        let hash3 = sa.keys.auth_hash(&[&[0], &mid, &q.ni, &nr]);
        let chain = wire::emit_payloads(&[Payload::Hash(hash3.to_vec())]);
        let header = Header {
            initiator_cookie: sa.icookie,
            responder_cookie: sa.rcookie,
            next_payload: 0,
            exchange: exchange::QUICK,
            flags: 0,
            message_id: q.msg_id,
        };
        let (bytes, _) = seal(&sa.keys, &next_iv, header, chain)?;
        let child = self.child_sa(
            &choice,
            their_spi,
            q.our_spi,
            gxy.as_deref().map(|v| &v[..]),
            &q.ni,
            &nr,
            life,
            &oas,
        )?;
        let rekey_of = q.rekey_of;
        let port = self.port;
        self.queue(port, bytes.clone());
        let q = &mut self.qms[i];
        q.retx = None;
        q.last_sent = bytes;
        q.last_rx = data.to_vec();
        q.done_until = Some(now + DONE_QM_KEEP);
        self.peer_alive(now);
        let is_rekey = rekey_of.is_some();
        self.install_child(
            now,
            child,
            choice.proposal.to_string(),
            rekey_of.filter(|s| *s != 0),
            is_rekey,
        );
        Ok(())
    }

    fn on_quick_responder(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        let msg_id = pkt.message_id();
        let sa = self.sa.as_ref().ok_or(Error::Closed)?;
        let iv = keys::exchange_iv(sa.keys.hash, &sa.iv, msg_id, sa.keys.cipher.block_len());
        let (plain, next_iv) = open(&sa.keys, &iv, data)?;
        let mid = msg_id.to_be_bytes();
        let payloads = check_hashed(&sa.keys, &plain, pkt.next_payload(), &[&mid])?;
        let mut pick = None;
        let mut ni = None;
        let mut ke = None;
        let mut ids = Vec::new();
        for (_, p) in &payloads {
            match p {
                Payload::Sa(s) => {
                    'outer: for prop in s.proposals.iter().filter(|p| p.protocol == protocol::ESP) {
                        let Ok(spi) = <[u8; 4]>::try_from(prop.spi.as_slice()) else {
                            continue;
                        };
                        for t in &prop.transforms {
                            if let Ok(c) = proposal::decode_esp_transform(t) {
                                let ok = self.esp_props.iter().any(|p| {
                                    p.cipher == c.proposal.cipher && p.integ == c.proposal.integ
                                });
                                if ok {
                                    pick =
                                        Some((prop.number, u32::from_be_bytes(spi), t.clone(), c));
                                    break 'outer;
                                }
                            }
                        }
                    }
                }
                Payload::Nonce(n) => ni = Some(n.clone()),
                Payload::Ke(k) => ke = Some(k.clone()),
                Payload::Id(id) => ids.push(id.clone()),
                _ => {}
            }
        }
        let Some(ni) = ni else {
            return Err(Error::Malformed("quick mode message 1 without nonce"));
        };
        let Some((pnum, their_spi, transform, choice)) = pick else {
            let n = Payload::Notify(NotifyPayload {
                doi: 1,
                protocol: protocol::ESP,
                kind: notify_type::NO_PROPOSAL_CHOSEN,
                spi: Vec::new(),
                data: Vec::new(),
            });
            self.events.push_back(Event::Warning(
                "refused a server-initiated quick mode: no acceptable proposal".into(),
            ));
            return self.send_informational(vec![n]);
        };
        let our_spi = self.random_u32(256);
        let nr = self.random(NONCE_LEN);
        let (dh, gxy) = match (choice.proposal.pfs, ke) {
            (Some(g), Some(ke)) => {
                let kp = DhKeyPair::generate(g, &mut *self.rng)?;
                let s = kp.compute_shared(&ke)?;
                (Some(kp), Some(s))
            }
            (Some(_), None) => {
                return Err(Error::Malformed(
                    "pfs group without ke in quick mode message 1",
                ));
            }
            _ => (None, None),
        };
        let mut rest = vec![
            Payload::Sa(wire::SaPayload {
                doi: 1,
                situation: 1,
                proposals: vec![wire::Proposal {
                    number: pnum,
                    protocol: protocol::ESP,
                    spi: our_spi.to_be_bytes().to_vec(),
                    transforms: vec![transform],
                }],
            }),
            Payload::Nonce(nr.clone()),
        ];
        if let Some(kp) = &dh {
            rest.push(Payload::Ke(kp.public_value().to_vec()));
        }
        rest.extend(ids.into_iter().map(Payload::Id));
        let sa = self.sa.as_ref().ok_or(Error::Closed)?;
        let chain = hashed_chain(&sa.keys, &[&mid, &ni], &rest);
        let header = Header {
            initiator_cookie: sa.icookie,
            responder_cookie: sa.rcookie,
            next_payload: 0,
            exchange: exchange::QUICK,
            flags: 0,
            message_id: msg_id,
        };
        let (bytes, iv) = seal(&sa.keys, &next_iv, header, chain)?;
        let ours = Lifetimes {
            secs: Some(self.cfg.esp_lifetime.as_secs()),
            kbytes: self.cfg.esp_lifetime_kb,
        };
        let life = Lifetimes {
            secs: min_opt(ours.secs, choice.life.secs),
            kbytes: min_opt(ours.kbytes, choice.life.kbytes),
        };
        // The server is the quick mode initiator: Ni_b is its nonce, Nr_b ours.
        let child = self.child_sa(
            &choice,
            their_spi,
            our_spi,
            gxy.as_deref().map(|v| &v[..]),
            &ni,
            &nr,
            life,
            &[],
        )?;
        let port = self.port;
        self.queue(port, bytes.clone());
        self.qms.push(QuickMode {
            msg_id,
            role: QmRole::Responder,
            iv,
            ni,
            nr,
            dh,
            our_spi,
            offer: Vec::new(),
            retx: Some(Retx {
                data: bytes.clone(),
                port,
                tries: 1,
                next: now + self.cfg.retransmit_base,
            }),
            last_sent: bytes,
            last_rx: data.to_vec(),
            rekey_of: None,
            pending: Some((child, choice.proposal.to_string())),
            done_until: None,
        });
        self.peer_alive(now);
        Ok(())
    }

    fn on_qm3(&mut self, now: Instant, i: usize, data: &[u8]) -> Result<(), Error> {
        let pkt = Packet::new_checked(data)?;
        let sa = self.sa.as_ref().ok_or(Error::Closed)?;
        let q = &self.qms[i];
        let (plain, _) = open(&sa.keys, &q.iv, data)?;
        let raws = wire::collect_payloads(&plain, pkt.next_payload())?;
        let h = raws
            .first()
            .filter(|r| r.kind == payload_type::HASH)
            .ok_or(Error::Malformed("quick mode message 3 without hash"))?;
        let mid = q.msg_id.to_be_bytes();
        let expect = sa.keys.auth_hash(&[&[0], &mid, &q.ni, &q.nr]);
        if !subtle_eq(&expect, h.body) {
            return Err(Error::Protocol(
                "quick mode message 3 hash does not verify".into(),
            ));
        }
        let q = &mut self.qms[i];
        q.retx = None;
        q.done_until = Some(now + DONE_QM_KEEP);
        if let Some((child, name)) = q.pending.take() {
            self.install_child(now, child, name, None, true);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- public API

    /// Feeds one received datagram (without the non-ESP marker on UDP 4500).
    pub fn handle_datagram(&mut self, now: Instant, port: IkePort, data: &[u8]) {
        if self.dead || (port == IkePort::NatT && data == [0xFF]) {
            return;
        }
        let Ok(pkt) = Packet::new_checked(data) else {
            return;
        };
        let (ic, rc) = (pkt.initiator_cookie(), pkt.responder_cookie());
        let in_handshake = self
            .handshake
            .as_ref()
            .is_some_and(|h| h.icookie == ic && (h.rcookie == [0; 8] || h.rcookie == rc));
        let r = if in_handshake {
            let rekey = self.handshake.as_ref().is_some_and(|h| h.rekey);
            match self.on_handshake(now, data) {
                Err(e) if rekey && !matches!(e, Error::Malformed(_)) => {
                    self.handshake = None;
                    self.events
                        .push_back(Event::Warning(format!("phase 1 rekey failed: {e}")));
                    Ok(())
                }
                r => r,
            }
        } else if self
            .sa
            .as_ref()
            .is_some_and(|s| s.icookie == ic && s.rcookie == rc)
        {
            match pkt.exchange() {
                exchange::INFORMATIONAL => self.on_informational(now, data),
                exchange::QUICK => self.on_quick(now, data),
                _ => Ok(()),
            }
        } else {
            Ok(())
        };
        match r {
            Ok(()) | Err(Error::Malformed(_)) => {}
            // A message that fails its hash after phase 1 may be forged: drop it.
            Err(Error::Protocol(_)) if self.sa.is_some() => {}
            Err(e) => self.fail(e),
        }
    }

    /// Drives retransmissions, DPD, keepalives, rekeying and expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        if let Err(e) = self.timers(now) {
            self.fail(e);
        }
    }

    fn timers(&mut self, now: Instant) -> Result<(), Error> {
        let base = self.cfg.retransmit_base;
        let max = self.cfg.max_tries.max(1);
        // Phase 1 retransmission.
        if let Some(h) = self.handshake.as_mut() {
            if now >= h.retx.next {
                if h.retx.tries >= max {
                    let stage = Self::stage_name(h);
                    let (tries, rekey) = (h.retx.tries, h.rekey);
                    self.handshake = None;
                    let e = match stage {
                        "main mode message 5" if self.cfg.aggressive => Error::NoResponse {
                            stage,
                            tries,
                            offered: self.offered_ike(),
                        },
                        _ => Error::NoResponse {
                            stage,
                            tries,
                            offered: self.offered_ike(),
                        },
                    };
                    if !rekey {
                        return Err(e);
                    }
                    self.events
                        .push_back(Event::Warning(format!("phase 1 rekey failed: {e}")));
                    if let Some(sa) = self.sa.as_mut() {
                        sa.rekey_at = now + Duration::from_secs(60);
                    }
                } else {
                    h.retx.next = now + backoff(base, h.retx.tries);
                    h.retx.tries += 1;
                    let (p, d) = (h.retx.port, h.retx.data.clone());
                    self.queue(p, d);
                }
            }
        }
        // Quick mode retransmission and cleanup.
        let mut i = 0;
        while i < self.qms.len() {
            let q = &mut self.qms[i];
            if q.done_until.is_some_and(|t| now >= t) {
                self.qms.remove(i);
                continue;
            }
            if let Some(r) = q.retx.as_mut() {
                if now >= r.next {
                    if r.tries >= max {
                        let q = self.qms.remove(i);
                        match (q.role, q.rekey_of) {
                            (QmRole::Initiator, None) => {
                                return Err(Error::NoResponse {
                                    stage: "quick mode message 1",
                                    tries: max,
                                    offered: proposal::list(&q.offer),
                                });
                            }
                            _ => {
                                self.events.push_back(Event::Warning(
                                    "a quick mode exchange timed out".into(),
                                ));
                                if let Some(c) = self
                                    .children
                                    .iter_mut()
                                    .find(|c| Some(c.inbound_spi) == q.rekey_of)
                                {
                                    c.rekeying = false;
                                    c.rekey_at = Some(now + Duration::from_secs(30))
                                        .filter(|t| *t < c.expire_at);
                                }
                            }
                        }
                        continue;
                    }
                    r.next = now + backoff(base, r.tries);
                    r.tries += 1;
                    let (p, d) = (r.port, r.data.clone());
                    self.queue(p, d);
                }
            }
            i += 1;
        }
        // NAT-T keepalive.
        if let Some(t) = self.keepalive_at {
            if now >= t && self.port == IkePort::NatT {
                self.out.push_back(Transmit {
                    port: IkePort::NatT,
                    data: vec![0xFF],
                    keepalive: true,
                });
                self.keepalive_at = Some(now + KEEPALIVE);
            }
        }
        // DPD.
        if self.sa.is_some() {
            let interval = self.cfg.dpd_interval;
            let mut send = None;
            if let Some(d) = self.dpd.as_mut() {
                if let Some(r) = d.retry_at {
                    if now >= r {
                        if d.tries >= max {
                            return Err(Error::PeerDead);
                        }
                        d.tries += 1;
                        d.retry_at = Some(now + backoff(base.max(Duration::from_secs(2)), d.tries));
                        send = Some(d.seq);
                    }
                } else if now >= d.next {
                    d.tries = 1;
                    d.retry_at = Some(now + base.max(Duration::from_secs(2)));
                    send = Some(d.seq);
                }
                if let Some(s) = send {
                    d.outstanding.push(s);
                    d.seq = d.seq.wrapping_add(1);
                    d.next = now + interval;
                }
            }
            if let Some(s) = send {
                let n = self.isakmp_notify(notify_type::R_U_THERE, s.to_be_bytes().to_vec());
                self.send_informational(vec![n])?;
            }
        }
        // Old SAs after a rekey.
        let due: Vec<u32> = self
            .pending_deletes
            .iter()
            .filter(|(t, _)| now >= *t)
            .map(|(_, s)| *s)
            .collect();
        self.pending_deletes.retain(|(t, _)| now < *t);
        for spi in due {
            self.delete_child(spi)?;
        }
        // Child rekey / expiry.
        let mut rekey = Vec::new();
        let mut expired = Vec::new();
        for c in &mut self.children {
            if now >= c.expire_at {
                expired.push(c.inbound_spi);
            } else if !c.rekeying && c.rekey_at.is_some_and(|t| now >= t) {
                c.rekeying = true;
                rekey.push(c.inbound_spi);
            }
        }
        for spi in expired {
            self.delete_child(spi)?;
        }
        if self.sa.is_some() {
            for spi in rekey {
                self.start_quick_mode(now, Some(spi))?;
            }
            // Phase 1 rekey.
            if self.handshake.is_none() && self.sa.as_ref().is_some_and(|s| now >= s.rekey_at) {
                if let Some(sa) = self.sa.as_mut() {
                    sa.rekey_at = now + Duration::from_secs(3600 * 24 * 365);
                }
                self.start_phase1(now, true)?;
            }
        }
        Ok(())
    }

    fn delete_child(&mut self, inbound_spi: u32) -> Result<(), Error> {
        let Some(i) = self
            .children
            .iter()
            .position(|c| c.inbound_spi == inbound_spi)
        else {
            return Ok(());
        };
        self.children.remove(i);
        let d = Payload::Delete(DeletePayload {
            doi: 1,
            protocol: protocol::ESP,
            spi_size: 4,
            spis: vec![inbound_spi.to_be_bytes().to_vec()],
        });
        self.send_informational(vec![d])?;
        self.events.push_back(Event::ChildSaDeleted { inbound_spi });
        Ok(())
    }

    /// Starts a quick mode now that replaces the newest ESP SA (the engine calls it when the
    /// ESP SA reports a volume limit: `l2sec_esp::Event::RekeyNeeded` or `HardLimit`). Does
    /// nothing while a quick mode is already running, before phase 1 is done, or after close.
    /// The result arrives as [`Event::ChildSaReady`] with `rekey: true`; the replaced SA is
    /// deleted after a grace period.
    pub fn rekey_child(&mut self, now: Instant) {
        if self.dead || self.sa.is_none() || self.qms.iter().any(|q| q.done_until.is_none()) {
            return;
        }
        let retiring: Vec<u32> = self.pending_deletes.iter().map(|(_, s)| *s).collect();
        let old = match self
            .children
            .iter_mut()
            .rev()
            .find(|c| !retiring.contains(&c.inbound_spi))
        {
            Some(c) => {
                c.rekeying = true;
                c.inbound_spi
            }
            // No SA left to replace: negotiate a fresh one (0 = replaces nothing).
            None => 0,
        };
        if let Err(e) = self.start_quick_mode(now, Some(old)) {
            self.fail(e);
        }
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When [`Initiator::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dead {
            return None;
        }
        let mut t: Vec<Instant> = Vec::new();
        if let Some(h) = &self.handshake {
            t.push(h.retx.next);
        }
        for q in &self.qms {
            if let Some(r) = &q.retx {
                t.push(r.next);
            }
            if let Some(d) = q.done_until {
                t.push(d);
            }
        }
        t.extend(self.keepalive_at);
        if self.sa.is_some() {
            if let Some(d) = &self.dpd {
                t.push(d.retry_at.unwrap_or(d.next));
            }
            if self.handshake.is_none() {
                t.extend(self.sa.as_ref().map(|s| s.rekey_at));
            }
        }
        t.extend(self.pending_deletes.iter().map(|(w, _)| *w));
        for c in &self.children {
            t.push(c.expire_at);
            if !c.rekeying {
                t.extend(c.rekey_at);
            }
        }
        t.into_iter().min()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sends deletes for every ESP SA and then the ISAKMP SA, and reports [`Event::Closed`].
    pub fn close(&mut self, _now: Instant) {
        if self.dead {
            return;
        }
        let spis: Vec<u32> = self.children.iter().map(|c| c.inbound_spi).collect();
        if self.sa.is_some() {
            if !spis.is_empty() {
                let d = Payload::Delete(DeletePayload {
                    doi: 1,
                    protocol: protocol::ESP,
                    spi_size: 4,
                    spis: spis.iter().map(|s| s.to_be_bytes().to_vec()).collect(),
                });
                let _ = self.send_informational(vec![d]);
            }
            if let Some(sa) = &self.sa {
                let mut spi = sa.icookie.to_vec();
                spi.extend_from_slice(&sa.rcookie);
                let d = Payload::Delete(DeletePayload {
                    doi: 1,
                    protocol: protocol::ISAKMP,
                    spi_size: 16,
                    spis: vec![spi],
                });
                let _ = self.send_informational(vec![d]);
            }
        }
        self.children.clear();
        self.qms.clear();
        self.handshake = None;
        self.dead = true;
        self.events.push_back(Event::Closed);
    }

    /// The port IKE currently uses (UDP 4500 after a NAT-T float).
    #[must_use]
    pub fn current_port(&self) -> IkePort {
        self.port
    }

    /// NAT detection result so far.
    #[must_use]
    pub fn nat_status(&self) -> NatStatus {
        self.nat
    }
}
