//! The initiator against a small in-memory IKEv1 responder (main mode with PSK or RSA
//! signatures + quick mode, with or without PFS) on a virtual clock: happy path with key
//! agreement, wrong PSK, silence, NO-PROPOSAL-CHOSEN, DPD, deletes, close, ESP rekeying and
//! lifetimes, certificates generated at test time (right and wrong CA, DN and signature), and
//! which PFS group quick mode uses when the server picks another phase 1 proposal than the
//! first.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use l2sec_crypto::{CipherAlg, DhGroup, DhKeyPair, HashAlg, IntegAlg, Rng, TestRng};
use l2sec_ike::keys::{self, Phase1Keys};
use l2sec_ike::wire::{
    self, CERT_X509_SIGNATURE, CertPayload, DeletePayload, Header, IdPayload, Message,
    NotifyPayload, Packet, Payload, SaPayload, Transform, exchange, flags, notify_type,
    payload_type,
};
use l2sec_ike::{
    Auth, CertAuth, Config, Error, EspProposal, Event, IkePort, Initiator, PfsChoice, RemoteId,
    Transmit, parse_esp_proposal, parse_ike_proposal,
};
use rsa::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

const RFC3947: [u8; 16] = [
    0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
];
const DPD: [u8; 16] = [
    0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00,
];

#[derive(Default, Clone, Copy)]
struct Quirks {
    /// Send a HASH_R computed with a wrong key.
    bad_hash_r: bool,
    /// Like SoftEther with a wrong PSK: answer MM5 by repeating MM4.
    repeat_mm4: bool,
    /// Refuse quick mode with an encrypted NO-PROPOSAL-CHOSEN.
    refuse_qm: bool,
    /// Kilobytes to announce in RESPONDER-LIFETIME (besides 1200 s).
    responder_kb: Option<u32>,
    /// Index of the phase 1 transform to choose (the first by default).
    pick: usize,
    /// Put this PFS group in the quick mode reply instead of the one offered (the KE still
    /// uses the offered group).
    reply_pfs: Option<DhGroup>,
}

/// The responder's side of RSA-signature main mode.
struct CertSide {
    /// Certificates sent in MM6 (end entity first).
    chain: Vec<Vec<u8>>,
    /// The key that signs HASH_R (the certificate's own key unless testing a bad signature).
    key: rsa::RsaPrivateKey,
}

/// Quick mode in progress, waiting for message 3.
#[derive(Clone)]
struct QmState {
    mid: u32,
    /// IV for message 3.
    iv: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// The initiator's SPI and ours.
    their: u32,
    ours: u32,
    /// The PFS shared secret, if quick mode exchanged KE payloads.
    gxy: Option<Vec<u8>>,
    /// Keying material length of the chosen transform (encryption, then integrity).
    keymat_len: usize,
}

/// What the responder saw of one quick mode message 1.
struct SeenQm {
    /// Every ESP transform offered, in order.
    offer: Vec<EspProposal>,
    /// Length of the KE payload, if any.
    ke_len: Option<usize>,
}

/// Decodes an ESP transform (RFC 2407 attributes) into the proposal it stands for.
fn esp_proposal(t: &Transform) -> EspProposal {
    let get = |k| t.attr(k).map(|a| a.as_u64().unwrap() as u16);
    EspProposal {
        cipher: CipherAlg::from_esp(t.id, get(6)).unwrap(),
        integ: get(5).map(|a| IntegAlg::from_esp_auth(a).unwrap()),
        pfs: get(3).map(|g| DhGroup::from_id(g).unwrap()),
    }
}

struct Responder {
    psk: Vec<u8>,
    rng: TestRng,
    quirks: Quirks,
    ic: [u8; 8],
    rc: [u8; 8],
    sai_b: Vec<u8>,
    hash: HashAlg,
    cipher: l2sec_crypto::CipherAlg,
    group: DhGroup,
    dh: Option<DhKeyPair>,
    gxi: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    keys: Option<Phase1Keys>,
    iv: Vec<u8>,
    mm4: Vec<u8>,
    qm: Option<QmState>,
    /// Keys of the finished child: (spi the initiator sends to, keymat).
    child: Option<(u32, Vec<u8>, u32, Vec<u8>)>,
    /// Certificate authentication instead of the PSK.
    cert: Option<CertSide>,
    /// The initiator's signature verified with its certificate.
    client_sig_ok: bool,
    /// Every quick mode transform offered: (life type, duration) pairs.
    offered_lifetimes: Vec<Vec<(u64, u64)>>,
    /// Quick modes answered so far.
    quick_modes: u32,
    /// Every quick mode message 1 answered: its offer and KE.
    seen_qm: Vec<SeenQm>,
}

fn hashed(keys: &Phase1Keys, parts: &[&[u8]], rest: &[Payload]) -> (u8, Vec<u8>) {
    let (first, body) = wire::emit_payloads(rest);
    let mut all = parts.to_vec();
    all.push(&body);
    let h = keys.auth_hash(&all);
    let mut out = vec![first, 0];
    out.extend_from_slice(&((4 + h.len()) as u16).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&body);
    (payload_type::HASH, out)
}

fn seal(keys: &Phase1Keys, iv: &[u8], mut h: Header, chain: (u8, Vec<u8>)) -> (Vec<u8>, Vec<u8>) {
    let ct = keys::encrypt(keys.cipher, &keys.enc_key, iv, &chain.1).unwrap();
    h.next_payload = chain.0;
    h.flags = flags::ENCRYPTION;
    let mut out = Vec::new();
    h.emit(28 + ct.len(), &mut out);
    out.extend_from_slice(&ct);
    let bl = keys.cipher.block_len();
    (out, ct[ct.len() - bl..].to_vec())
}

fn open(keys: &Phase1Keys, iv: &[u8], data: &[u8]) -> (Vec<Payload>, Vec<u8>, Vec<u8>) {
    let p = Packet::new_checked(data).unwrap();
    let plain = keys::decrypt(keys.cipher, &keys.enc_key, iv, p.body()).unwrap();
    let raws = wire::collect_payloads(&plain, p.next_payload()).unwrap();
    let payloads = raws.iter().map(|r| Payload::parse(r).unwrap()).collect();
    let bl = keys.cipher.block_len();
    let after_hash = raws
        .first()
        .map(|h| plain[h.end..raws.last().unwrap().end].to_vec())
        .unwrap_or_default();
    (
        payloads,
        p.body()[p.body().len() - bl..].to_vec(),
        after_hash,
    )
}

impl Responder {
    fn new(psk: &[u8], quirks: Quirks) -> Self {
        Self {
            psk: psk.to_vec(),
            rng: TestRng::new(99),
            quirks,
            ic: [0; 8],
            rc: [0; 8],
            sai_b: Vec::new(),
            hash: HashAlg::Sha1,
            cipher: l2sec_crypto::CipherAlg::TripleDesCbc,
            group: DhGroup::Modp1024,
            dh: None,
            gxi: Vec::new(),
            ni: Vec::new(),
            nr: Vec::new(),
            keys: None,
            iv: Vec::new(),
            mm4: Vec::new(),
            qm: None,
            child: None,
            cert: None,
            client_sig_ok: false,
            offered_lifetimes: Vec::new(),
            quick_modes: 0,
            seen_qm: Vec::new(),
        }
    }

    fn with_cert(cert: CertSide) -> Self {
        Self {
            cert: Some(cert),
            ..Self::new(b"unused", Quirks::default())
        }
    }

    fn header(&self, exch: u8, mid: u32) -> Header {
        Header {
            initiator_cookie: self.ic,
            responder_cookie: self.rc,
            next_payload: 0,
            exchange: exch,
            flags: 0,
            message_id: mid,
        }
    }

    /// Handles one message from the initiator and returns the answers.
    fn handle(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let p = Packet::new_checked(data).unwrap();
        match (p.exchange(), p.flags() & flags::ENCRYPTION != 0) {
            (exchange::MAIN, false) if p.responder_cookie() == [0; 8] => {
                let m = Message::parse(data).unwrap();
                self.ic = p.initiator_cookie();
                self.rng.fill(&mut self.rc);
                let Payload::Sa(sa) = &m.payloads[0] else {
                    panic!("mm1 without sa")
                };
                sa.emit(&mut self.sai_b);
                let t = sa.proposals[0].transforms[self.quirks.pick].clone();
                let a = |k| t.attr(k).unwrap().as_u64().unwrap() as u16;
                self.cipher = l2sec_crypto::CipherAlg::from_ike(
                    a(1),
                    t.attr(14).map(|x| x.as_u64().unwrap() as u16),
                )
                .unwrap();
                self.hash = HashAlg::from_ike(a(2)).unwrap();
                self.group = DhGroup::from_id(a(4)).unwrap();
                let mut chosen = sa.clone();
                chosen.proposals[0].transforms = vec![t];
                let payloads = vec![
                    Payload::Sa(chosen),
                    Payload::VendorId(RFC3947.to_vec()),
                    Payload::VendorId(DPD.to_vec()),
                ];
                vec![
                    Message {
                        header: self.header(exchange::MAIN, 0),
                        payloads,
                    }
                    .emit(),
                ]
            }
            (exchange::MAIN, false) => {
                let m = Message::parse(data).unwrap();
                for pl in &m.payloads {
                    match pl {
                        Payload::Ke(k) => self.gxi = k.clone(),
                        Payload::Nonce(n) => self.ni = n.clone(),
                        _ => {}
                    }
                }
                let dh = DhKeyPair::generate(self.group, &mut self.rng).unwrap();
                self.nr = vec![5; 24];
                let gxy = dh.compute_shared(&self.gxi).unwrap();
                let skeyid = match self.cert {
                    None => keys::skeyid_psk(self.hash, &self.psk, &self.ni, &self.nr),
                    Some(_) => keys::skeyid_sig(self.hash, &self.ni, &self.nr, &gxy),
                };
                let k =
                    Phase1Keys::derive(self.hash, self.cipher, skeyid, &gxy, &self.ic, &self.rc);
                self.iv = keys::initial_iv(
                    self.hash,
                    &self.gxi,
                    dh.public_value(),
                    self.cipher.block_len(),
                );
                let payloads = vec![
                    Payload::Ke(dh.public_value().to_vec()),
                    Payload::Nonce(self.nr.clone()),
                    Payload::NatD {
                        draft: false,
                        hash: vec![1; self.hash.output_len()],
                    },
                    Payload::NatD {
                        draft: false,
                        hash: vec![2; self.hash.output_len()],
                    },
                ];
                self.keys = Some(k);
                self.dh = Some(dh);
                self.mm4 = Message {
                    header: self.header(exchange::MAIN, 0),
                    payloads,
                }
                .emit();
                vec![self.mm4.clone()]
            }
            (exchange::MAIN, true) => {
                if self.quirks.repeat_mm4 {
                    return vec![self.mm4.clone()];
                }
                let k = self.keys.as_ref().unwrap();
                let (payloads, iv, _) = open(k, &self.iv, data);
                let Payload::Id(idii) = &payloads[0] else {
                    panic!("mm5 without id")
                };
                let gxr = self.dh.as_ref().unwrap().public_value().to_vec();
                let expect = l2sec_crypto::prf(
                    self.hash,
                    &k.skeyid,
                    &[
                        &self.gxi,
                        &gxr,
                        &self.ic,
                        &self.rc,
                        &self.sai_b,
                        &idii.to_bytes(),
                    ],
                );
                match &self.cert {
                    None => {
                        let Payload::Hash(hash_i) = &payloads[1] else {
                            panic!("mm5 without hash")
                        };
                        assert_eq!(&expect[..], &hash_i[..], "hash_i");
                    }
                    Some(_) => {
                        let Some(Payload::Cert(c)) =
                            payloads.iter().find(|p| matches!(p, Payload::Cert(_)))
                        else {
                            panic!("mm5 without certificate")
                        };
                        let Some(Payload::Sig(sig)) =
                            payloads.iter().find(|p| matches!(p, Payload::Sig(_)))
                        else {
                            panic!("mm5 without signature")
                        };
                        let (_, x) = X509Certificate::from_der(&c.data).unwrap();
                        assert_eq!(x.subject().as_raw(), &idii.data[..], "idii is the cert dn");
                        let key =
                            rsa::RsaPublicKey::from_public_key_der(x.public_key().raw).unwrap();
                        key.verify(Pkcs1v15Sign::new_unprefixed(), &expect, sig)
                            .expect("initiator signature");
                        self.client_sig_ok = true;
                    }
                }
                assert!(payloads.iter().any(
                    |p| matches!(p, Payload::Notify(n) if n.kind == notify_type::INITIAL_CONTACT)
                ));
                let idir = match &self.cert {
                    None => IdPayload {
                        id_type: 1,
                        protocol: 0,
                        port: 0,
                        data: vec![0, 0, 0, 0],
                    },
                    Some(c) => IdPayload {
                        id_type: wire::id_type::DER_ASN1_DN,
                        protocol: 0,
                        port: 0,
                        data: l2sec_ike::subject_der(&c.chain[0]).unwrap(),
                    },
                };
                let skey: &[u8] = if self.quirks.bad_hash_r {
                    b"other"
                } else {
                    &k.skeyid
                };
                let hash_r = l2sec_crypto::prf(
                    self.hash,
                    skey,
                    &[
                        &gxr,
                        &self.gxi,
                        &self.rc,
                        &self.ic,
                        &self.sai_b,
                        &idir.to_bytes(),
                    ],
                );
                let auth = match &self.cert {
                    None => vec![Payload::Hash(hash_r.to_vec())],
                    Some(c) => {
                        let mut v: Vec<Payload> = c
                            .chain
                            .iter()
                            .map(|d| {
                                Payload::Cert(CertPayload {
                                    encoding: CERT_X509_SIGNATURE,
                                    data: d.clone(),
                                })
                            })
                            .collect();
                        v.push(Payload::Sig(
                            l2sec_ike::sign(&c.key, &mut self.rng, &hash_r).unwrap(),
                        ));
                        v
                    }
                };
                let mut chain = vec![Payload::Id(idir)];
                chain.extend(auth);
                let k = self.keys.as_ref().unwrap();
                let (msg, iv) = seal(
                    k,
                    &iv,
                    self.header(exchange::MAIN, 0),
                    wire::emit_payloads(&chain),
                );
                self.iv = iv;
                vec![msg]
            }
            (exchange::QUICK, true) => self.quick(data),
            _ => Vec::new(),
        }
    }

    fn quick(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let p = Packet::new_checked(data).unwrap();
        let mid = p.message_id();
        let k = self.keys.as_ref().unwrap();
        if let Some(q) = self.qm.clone() {
            if q.mid == mid {
                let (payloads, _, _) = open(k, &q.iv, data);
                let Payload::Hash(h3) = &payloads[0] else {
                    panic!("qm3 without hash")
                };
                assert_eq!(
                    &k.auth_hash(&[&[0], &mid.to_be_bytes(), &q.ni, &q.nr])[..],
                    &h3[..],
                    "hash(3)"
                );
                let km = |spi| {
                    let g = q.gxy.as_deref();
                    keys::keymat(
                        self.hash,
                        &k.skeyid_d,
                        g,
                        3,
                        spi,
                        &q.ni,
                        &q.nr,
                        q.keymat_len,
                    )
                };
                self.child = Some((q.ours, km(q.ours).to_vec(), q.their, km(q.their).to_vec()));
                return Vec::new();
            }
        }
        let iv = keys::exchange_iv(self.hash, &self.iv, mid, self.cipher.block_len());
        let (payloads, next_iv, after_hash) = open(k, &iv, data);
        let Payload::Hash(h1) = &payloads[0] else {
            panic!("qm1 without hash")
        };
        assert_eq!(
            &k.auth_hash(&[&mid.to_be_bytes(), &after_hash])[..],
            &h1[..],
            "hash(1)"
        );
        if self.quirks.refuse_qm {
            let n = Payload::Notify(NotifyPayload {
                doi: 1,
                protocol: 3,
                kind: notify_type::NO_PROPOSAL_CHOSEN,
                spi: vec![],
                data: vec![],
            });
            return vec![self.informational(vec![n])];
        }
        let mut sa: SaPayload = payloads
            .iter()
            .find_map(|p| {
                if let Payload::Sa(s) = p {
                    Some(s.clone())
                } else {
                    None
                }
            })
            .unwrap();
        let ni = payloads
            .iter()
            .find_map(|p| {
                if let Payload::Nonce(n) = p {
                    Some(n.clone())
                } else {
                    None
                }
            })
            .unwrap();
        let ke = payloads.iter().find_map(|p| {
            if let Payload::Ke(k) = p {
                Some(k.clone())
            } else {
                None
            }
        });
        let ids: Vec<Payload> = payloads
            .iter()
            .filter(|p| matches!(p, Payload::Id(_)))
            .cloned()
            .collect();
        let their = u32::from_be_bytes(sa.proposals[0].spi.clone().try_into().unwrap());
        self.seen_qm.push(SeenQm {
            offer: sa.proposals[0]
                .transforms
                .iter()
                .map(esp_proposal)
                .collect(),
            ke_len: ke.as_ref().map(Vec::len),
        });
        let mut t = sa.proposals[0].transforms[0].clone();
        let choice = esp_proposal(&t);
        let mut lifetimes = Vec::new();
        let mut life_type = 0;
        for a in &t.attributes {
            match a.kind {
                1 => life_type = a.as_u64().unwrap(),
                2 => lifetimes.push((life_type, a.as_u64().unwrap())),
                _ => {}
            }
        }
        self.offered_lifetimes.push(lifetimes);
        assert_eq!(
            t.attr(4).unwrap().as_u64(),
            Some(4),
            "udp-encapsulated transport after the nat-t float"
        );
        if let Some(g) = self.quirks.reply_pfs {
            t.attributes.retain(|a| a.kind != 3);
            t.attributes.push(wire::Attribute::basic(3, g.id()));
        }
        self.quick_modes += 1;
        let ours: u32 = 0x0bad_cafe + self.quick_modes;
        sa.proposals[0].spi = ours.to_be_bytes().to_vec();
        sa.proposals[0].transforms = vec![t];
        let nr = vec![9u8; 16];
        let mut rest = vec![Payload::Sa(sa), Payload::Nonce(nr.clone())];
        // PFS: our KE in the group of the chosen transform, and the shared secret for KEYMAT.
        let gxy = match (choice.pfs, ke) {
            (Some(g), Some(gxi)) => {
                let dh = DhKeyPair::generate(g, &mut self.rng).unwrap();
                rest.push(Payload::Ke(dh.public_value().to_vec()));
                Some(dh.compute_shared(&gxi).unwrap().to_vec())
            }
            (None, None) => None,
            other => panic!("pfs group and ke disagree: {other:?}"),
        };
        rest.extend(ids);
        // RESPONDER-LIFETIME: 1200 s.
        let mut life = Vec::new();
        wire::Attribute::basic(1, 1).emit(&mut life);
        wire::Attribute::basic(2, 1200).emit(&mut life);
        if let Some(kb) = self.quirks.responder_kb {
            wire::Attribute::basic(1, 2).emit(&mut life);
            wire::Attribute::number(2, u64::from(kb)).emit(&mut life);
        }
        rest.push(Payload::Notify(NotifyPayload {
            doi: 1,
            protocol: 3,
            kind: notify_type::RESPONDER_LIFETIME,
            spi: ours.to_be_bytes().to_vec(),
            data: life,
        }));
        let chain = hashed(k, &[&mid.to_be_bytes(), &ni], &rest);
        let (msg, iv) = seal(k, &next_iv, self.header(exchange::QUICK, mid), chain);
        self.qm = Some(QmState {
            mid,
            iv,
            ni,
            nr,
            their,
            ours,
            gxy,
            keymat_len: choice.cipher.keymat_len() + choice.integ.map_or(0, |i| i.key_len()),
        });
        vec![msg]
    }

    fn informational(&mut self, payloads: Vec<Payload>) -> Vec<u8> {
        let k = self.keys.as_ref().unwrap();
        let mid: u32 = 0x1234_5678;
        let iv = keys::exchange_iv(self.hash, &self.iv, mid, self.cipher.block_len());
        let chain = hashed(k, &[&mid.to_be_bytes()], &payloads);
        seal(k, &iv, self.header(exchange::INFORMATIONAL, mid), chain).0
    }

    fn read_informational(&self, data: &[u8]) -> Vec<Payload> {
        let p = Packet::new_checked(data).unwrap();
        assert_eq!(p.exchange(), exchange::INFORMATIONAL);
        let k = self.keys.as_ref().unwrap();
        let iv = keys::exchange_iv(self.hash, &self.iv, p.message_id(), self.cipher.block_len());
        let (payloads, _, after) = open(k, &iv, data);
        let Payload::Hash(h) = &payloads[0] else {
            panic!("informational without hash")
        };
        assert_eq!(
            &k.auth_hash(&[&p.message_id().to_be_bytes(), &after])[..],
            &h[..]
        );
        payloads[1..].to_vec()
    }
}

fn config() -> Config {
    let mut c = Config::with_psk(b"secret");
    c.ike_proposals = vec![parse_ike_proposal("3des-sha1-modp1024").unwrap()];
    c.esp_proposals = vec![parse_esp_proposal("aes128-sha1").unwrap()];
    c
}

fn initiator(cfg: Config, now: Instant) -> Initiator {
    Initiator::new(
        cfg,
        "198.18.0.2:500".parse::<SocketAddr>().unwrap(),
        "198.18.0.1:500".parse().unwrap(),
        (4500, 4500),
        Box::new(TestRng::new(1)),
        now,
    )
    .unwrap()
}

/// Exchanges messages until both sides are quiet; returns the initiator's events.
fn pump(i: &mut Initiator, r: &mut Responder, now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..20 {
        let mut sent = false;
        while let Some(Transmit {
            port,
            data,
            keepalive,
        }) = i.poll_transmit(now)
        {
            assert!(!keepalive);
            sent = true;
            for answer in r.handle(&data) {
                i.handle_datagram(now, port, &answer);
            }
        }
        while let Some(e) = i.poll_event() {
            events.push(e);
        }
        if !sent {
            break;
        }
    }
    events
}

#[test]
fn main_and_quick_mode_agree_on_keys() {
    let now = Instant::now();
    let mut i = initiator(config(), now);
    let mut r = Responder::new(b"secret", Quirks::default());
    let events = pump(&mut i, &mut r, now);
    assert_eq!(i.current_port(), IkePort::NatT);
    let Event::Phase1Done {
        proposal,
        nat,
        legacy,
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(proposal, "3des-sha1-modp1024");
    assert!(*legacy && nat.encap && nat.local_behind_nat && nat.remote_behind_nat);
    let sa = events
        .iter()
        .find_map(|e| {
            if let Event::ChildSaReady {
                sa,
                proposal,
                rekey: false,
            } = e
            {
                Some((sa, proposal))
            } else {
                None
            }
        })
        .expect("child sa");
    assert_eq!(sa.1, "aes128-sha1");
    let (sa, _) = sa;
    let (r_in_spi, r_in, r_out_spi, r_out) =
        r.child.clone().expect("responder finished quick mode");
    // Our outbound = the responder's inbound; key order: encryption then integrity.
    assert_eq!(sa.outbound.spi, r_in_spi);
    assert_eq!(sa.inbound.spi, r_out_spi);
    assert_eq!(&sa.outbound.enc_key[..], &r_in[..16]);
    assert_eq!(&sa.outbound.auth_key[..], &r_in[16..36]);
    assert_eq!(&sa.inbound.enc_key[..], &r_out[..16]);
    assert_eq!(&sa.inbound.auth_key[..], &r_out[16..36]);
    assert_eq!(sa.lifetime_secs, Some(1200), "responder-lifetime honoured");
    assert!(matches!(
        sa.encap,
        l2sec_esp::Encapsulation::Udp {
            local_port: 4500,
            remote_port: 4500
        }
    ));

    // DPD from the server is answered.
    let ping = r.informational(vec![Payload::Notify(NotifyPayload {
        doi: 1,
        protocol: 1,
        kind: notify_type::R_U_THERE,
        spi: [r.ic, r.rc].concat(),
        data: 7u32.to_be_bytes().to_vec(),
    })]);
    i.handle_datagram(now, IkePort::NatT, &ping);
    let ack = i.poll_transmit(now).expect("dpd ack");
    let p = r.read_informational(&ack.data);
    assert!(
        matches!(&p[0], Payload::Notify(n) if n.kind == notify_type::R_U_THERE_ACK && n.data == 7u32.to_be_bytes())
    );

    // Our own DPD after the interval, and keepalives on 4500.
    let later = now + Duration::from_secs(31);
    i.handle_timeout(later);
    let mut saw_keepalive = false;
    let mut saw_dpd = false;
    while let Some(t) = i.poll_transmit(later) {
        if t.keepalive {
            assert_eq!(t.data, [0xFF]);
            saw_keepalive = true;
        } else {
            let p = r.read_informational(&t.data);
            saw_dpd |= matches!(&p[0], Payload::Notify(n) if n.kind == notify_type::R_U_THERE);
        }
    }
    assert!(saw_keepalive && saw_dpd);

    // Close: delete ESP, then ISAKMP, then Closed.
    i.close(later);
    let d1 = r.read_informational(&i.poll_transmit(later).unwrap().data);
    assert!(
        matches!(&d1[0], Payload::Delete(DeletePayload { protocol: 3, spis, .. }) if spis[0] == sa.inbound.spi.to_be_bytes())
    );
    let d2 = r.read_informational(&i.poll_transmit(later).unwrap().data);
    assert!(matches!(
        &d2[0],
        Payload::Delete(DeletePayload {
            protocol: 1,
            spi_size: 16,
            ..
        })
    ));
    assert!(matches!(i.poll_event(), Some(Event::Closed)));
}

#[test]
fn server_delete_of_ike_sa_is_terminal() {
    let now = Instant::now();
    let mut i = initiator(config(), now);
    let mut r = Responder::new(b"secret", Quirks::default());
    pump(&mut i, &mut r, now);
    let d = r.informational(vec![Payload::Delete(DeletePayload {
        doi: 1,
        protocol: 1,
        spi_size: 16,
        spis: vec![[r.ic, r.rc].concat()],
    })]);
    i.handle_datagram(now, IkePort::NatT, &d);
    assert!(matches!(
        i.poll_event(),
        Some(Event::Failed(Error::Deleted))
    ));
}

#[test]
fn wrong_hash_r_is_wrong_psk() {
    let now = Instant::now();
    let mut i = initiator(config(), now);
    let mut r = Responder::new(
        b"secret",
        Quirks {
            bad_hash_r: true,
            ..Quirks::default()
        },
    );
    let events = pump(&mut i, &mut r, now);
    assert!(
        matches!(events.last(), Some(Event::Failed(Error::WrongPsk))),
        "{events:?}"
    );
    if let Some(Event::Failed(e)) = events.last() {
        assert!(e.hint().unwrap().contains("pre-shared key"));
    }
}

#[test]
fn repeated_mm4_is_reported_as_wrong_psk() {
    let now = Instant::now();
    let mut i = initiator(config(), now);
    let mut r = Responder::new(
        b"secret",
        Quirks {
            repeat_mm4: true,
            ..Quirks::default()
        },
    );
    let mut events = pump(&mut i, &mut r, now);
    // The initiator resends MM5 once; the second repeat of MM4 ends it.
    events.extend(pump(&mut i, &mut r, now));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Failed(Error::PskRejectedSilently))),
        "{events:?}"
    );
}

#[test]
fn no_proposal_chosen_in_quick_mode() {
    let now = Instant::now();
    let mut i = initiator(config(), now);
    let mut r = Responder::new(
        b"secret",
        Quirks {
            refuse_qm: true,
            ..Quirks::default()
        },
    );
    let events = pump(&mut i, &mut r, now);
    let Some(Event::Failed(e)) = events.last() else {
        panic!("{events:?}")
    };
    assert!(matches!(e, Error::NoProposalChosen { phase: 2, .. }));
    assert!(e.to_string().contains("aes128-sha1"), "{e}");
}

#[test]
fn silent_server_times_out_listing_the_offer() {
    let start = Instant::now();
    let mut i = initiator(Config::with_psk(b"secret"), start);
    let mut sent = 0;
    let mut now = start;
    loop {
        while i.poll_transmit(now).is_some() {
            sent += 1;
        }
        if let Some(Event::Failed(e)) = i.poll_event() {
            assert!(
                matches!(
                    e,
                    Error::NoResponse {
                        stage: "main mode message 1",
                        tries: 5,
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().contains("aes256-sha256-modp2048"), "{e}");
            assert!(e.hint().unwrap().contains("softether"));
            break;
        }
        now = i.poll_timeout().expect("a retransmission timer");
        i.handle_timeout(now);
    }
    assert_eq!(sent, 5);
    // 1 + 2 + 4 + 8 + 16 s of backoff.
    assert_eq!(now - start, Duration::from_secs(31));
}

#[test]
fn weak_explicit_proposal_needs_policy() {
    let mut c = Config::with_psk(b"k");
    c.ike_proposals = vec![parse_ike_proposal("des-md5-modp768").unwrap()];
    let r = Initiator::new(
        c,
        "198.18.0.2:500".parse().unwrap(),
        "198.18.0.1:500".parse().unwrap(),
        (4500, 4500),
        Box::new(TestRng::new(1)),
        Instant::now(),
    );
    assert!(matches!(r, Err(Error::Config(_))));
    assert!(matches!(
        Initiator::new(
            Config::with_psk(b""),
            "1.2.3.4:500".parse().unwrap(),
            "1.2.3.5:500".parse().unwrap(),
            (4500, 4500),
            Box::new(TestRng::new(1)),
            Instant::now()
        ),
        Err(Error::Config(_))
    ));
}

fn child_ready(events: &[Event]) -> Vec<(&l2sec_esp::SaConfig, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaReady { sa, rekey, .. } => Some((sa, *rekey)),
            _ => None,
        })
        .collect()
}

#[test]
fn rekey_child_replaces_the_esp_sa_once() {
    let now = Instant::now();
    let mut i = initiator(config(), now);
    let mut r = Responder::new(b"secret", Quirks::default());
    let events = pump(&mut i, &mut r, now);
    let first = child_ready(&events)[0].0.clone();
    assert_eq!(r.quick_modes, 1);

    // The engine reports a volume limit twice in a row: one quick mode only.
    let t = now + Duration::from_secs(5);
    i.rekey_child(t);
    i.rekey_child(t);
    let qm = i.poll_transmit(t).expect("quick mode message 1");
    assert!(
        i.poll_transmit(t).is_none(),
        "a second rekey_child is a no-op"
    );
    assert_eq!(
        Packet::new_checked(&qm.data[..]).unwrap().exchange(),
        exchange::QUICK
    );
    let mut events = Vec::new();
    for answer in r.handle(&qm.data) {
        i.handle_datagram(t, qm.port, &answer);
    }
    events.extend(pump(&mut i, &mut r, t));
    let ready = child_ready(&events);
    assert_eq!(ready.len(), 1, "{events:?}");
    let (new, rekey) = ready[0];
    assert!(rekey);
    assert_eq!(r.quick_modes, 2);
    assert_ne!(new.inbound.spi, first.inbound.spi);
    assert_ne!(new.outbound.spi, first.outbound.spi);
    assert_ne!(new.inbound.enc_key[..], first.inbound.enc_key[..]);
    // The new keys are the responder's keys for the second quick mode.
    let (r_in_spi, r_in, r_out_spi, r_out) = r.child.clone().unwrap();
    assert_eq!((new.outbound.spi, new.inbound.spi), (r_in_spi, r_out_spi));
    assert_eq!(&new.outbound.enc_key[..], &r_in[..16]);
    assert_eq!(&new.inbound.auth_key[..], &r_out[16..36]);

    // The old SA is deleted after the grace period, the new one stays.
    let later = t + Duration::from_secs(21);
    i.handle_timeout(later);
    let mut deleted = Vec::new();
    while let Some(e) = i.poll_event() {
        if let Event::ChildSaDeleted { inbound_spi } = e {
            deleted.push(inbound_spi);
        }
    }
    assert_eq!(deleted, [first.inbound.spi]);
    let mut saw_delete = false;
    while let Some(tx) = i.poll_transmit(later) {
        if tx.keepalive {
            continue;
        }
        if let Some(Payload::Delete(d)) = r.read_informational(&tx.data).first() {
            assert_eq!(d.spis, [first.inbound.spi.to_be_bytes().to_vec()]);
            saw_delete = true;
        }
    }
    assert!(saw_delete);

    // A rekey after close does nothing.
    i.close(later);
    while i.poll_transmit(later).is_some() {}
    i.rekey_child(later);
    assert!(i.poll_transmit(later).is_none());
}

#[test]
fn rekey_child_before_phase1_is_a_no_op() {
    let now = Instant::now();
    let mut i = initiator(config(), now);
    assert!(i.poll_transmit(now).is_some(), "main mode message 1");
    i.rekey_child(now);
    assert!(i.poll_transmit(now).is_none());
    assert!(i.poll_event().is_none());
}

#[test]
fn kilobyte_lifetime_is_proposed_and_responder_lifetime_honoured() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.esp_lifetime = Duration::from_secs(3600);
    cfg.esp_lifetime_kb = Some(4_000_000);
    let mut i = initiator(cfg, now);
    let mut r = Responder::new(
        b"secret",
        Quirks {
            responder_kb: Some(250_000),
            ..Quirks::default()
        },
    );
    let events = pump(&mut i, &mut r, now);
    // Life-Type seconds (1) 3600 and kilobytes (2) 4000000 in the offer.
    assert_eq!(r.offered_lifetimes, [vec![(1, 3600), (2, 4_000_000)]]);
    let sa = child_ready(&events)[0].0;
    assert_eq!(sa.lifetime_secs, Some(1200));
    assert_eq!(
        sa.lifetime_kbytes,
        Some(250_000),
        "responder-lifetime in kb"
    );

    // Without a kilobyte limit of ours, the responder's becomes the SA's.
    let mut i = initiator(config(), now);
    let mut r = Responder::new(
        b"secret",
        Quirks {
            responder_kb: Some(9000),
            ..Quirks::default()
        },
    );
    let events = pump(&mut i, &mut r, now);
    assert_eq!(r.offered_lifetimes, [vec![(1, 3600)]]);
    assert_eq!(child_ready(&events)[0].0.lifetime_kbytes, Some(9000));

    // A responder kilobyte lifetime above ours does not raise it.
    let mut cfg = config();
    cfg.esp_lifetime_kb = Some(100);
    let mut i = initiator(cfg, now);
    let mut r = Responder::new(
        b"secret",
        Quirks {
            responder_kb: Some(9000),
            ..Quirks::default()
        },
    );
    let events = pump(&mut i, &mut r, now);
    assert_eq!(child_ready(&events)[0].0.lifetime_kbytes, Some(100));
}

// ---------------------------------------------------------------- PFS

/// Two phase 1 proposals that differ in the group only.
const PFS_IKE_OFFER: [&str; 2] = ["aes128-sha256-modp2048", "aes128-sha256-ecp256"];

fn pfs_config(pfs: PfsChoice) -> Config {
    let mut c = config();
    c.ike_proposals = PFS_IKE_OFFER
        .iter()
        .map(|s| parse_ike_proposal(s).unwrap())
        .collect();
    c.esp_proposals = vec![
        parse_esp_proposal("aes128-sha256").unwrap(),
        parse_esp_proposal("aes256-sha256").unwrap(),
    ];
    c.pfs = pfs;
    c
}

/// Main mode and quick mode against a server that takes the second phase 1 proposal
/// (ECP-256, not the first offered MODP-2048).
fn run_pfs(pfs: PfsChoice, reply_pfs: Option<DhGroup>) -> (Vec<Event>, Responder) {
    let now = Instant::now();
    let mut i = initiator(pfs_config(pfs), now);
    let mut r = Responder::new(
        b"secret",
        Quirks {
            pick: 1,
            reply_pfs,
            ..Quirks::default()
        },
    );
    let events = pump(&mut i, &mut r, now);
    assert!(
        matches!(&events[0], Event::Phase1Done { proposal, .. } if proposal == "aes128-sha256-ecp256"),
        "{events:?}"
    );
    (events, r)
}

/// The one quick mode offer the responder saw, as proposal names, and its KE length.
fn seen_offer(r: &Responder) -> (Vec<String>, Option<usize>) {
    let [qm] = &r.seen_qm[..] else {
        panic!("{} quick modes", r.seen_qm.len())
    };
    (
        qm.offer.iter().map(ToString::to_string).collect(),
        qm.ke_len,
    )
}

/// The ESP keys of both directions equal the responder's keying material (which includes the
/// PFS shared secret when quick mode had KE payloads).
fn assert_child_keys_agree(events: &[Event], r: &Responder) {
    let ready = child_ready(events);
    assert_eq!(ready.len(), 1, "{events:?}");
    let sa = ready[0].0;
    let (r_in_spi, r_in, r_out_spi, r_out) =
        r.child.clone().expect("responder finished quick mode");
    assert_eq!((sa.outbound.spi, sa.inbound.spi), (r_in_spi, r_out_spi));
    assert_eq!(
        [&sa.outbound.enc_key[..], &sa.outbound.auth_key[..]].concat(),
        r_in,
        "outbound keying material"
    );
    assert_eq!(
        [&sa.inbound.enc_key[..], &sa.inbound.auth_key[..]].concat(),
        r_out,
        "inbound keying material"
    );
}

#[test]
fn pfs_phase1_uses_the_group_the_server_chose() {
    let (events, r) = run_pfs(PfsChoice::Phase1, None);
    let (offer, ke_len) = seen_offer(&r);
    assert_eq!(offer, ["aes128-sha256-ecp256", "aes256-sha256-ecp256"]);
    assert_eq!(ke_len, Some(DhGroup::Ecp256.public_len()));
    assert_child_keys_agree(&events, &r);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failed(_))),
        "{events:?}"
    );
}

#[test]
fn pfs_phase1_reply_with_the_first_offered_group_is_refused() {
    let (events, r) = run_pfs(PfsChoice::Phase1, Some(DhGroup::Modp2048));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Failed(Error::BadProposal(p)) if p.ends_with("-modp2048"))),
        "{events:?}"
    );
    assert!(child_ready(&events).is_empty(), "{events:?}");
    assert!(r.child.is_none(), "no quick mode message 3");
}

#[test]
fn pfs_explicit_group_and_off_ignore_phase1() {
    let (events, r) = run_pfs(PfsChoice::Group(DhGroup::Ecp384), None);
    let (offer, ke_len) = seen_offer(&r);
    assert_eq!(offer, ["aes128-sha256-ecp384", "aes256-sha256-ecp384"]);
    assert_eq!(ke_len, Some(DhGroup::Ecp384.public_len()));
    assert_child_keys_agree(&events, &r);

    let (events, r) = run_pfs(PfsChoice::Off, None);
    let (offer, ke_len) = seen_offer(&r);
    assert_eq!(offer, ["aes128-sha256", "aes256-sha256"]);
    assert_eq!(ke_len, None);
    assert_child_keys_agree(&events, &r);
}

#[test]
fn pfs_choice_resolves_against_phase1() {
    assert_eq!(PfsChoice::Off.resolve(DhGroup::Ecp256), None);
    assert_eq!(
        PfsChoice::Phase1.resolve(DhGroup::Ecp256),
        Some(DhGroup::Ecp256)
    );
    assert_eq!(
        PfsChoice::Group(DhGroup::Modp2048).resolve(DhGroup::Ecp256),
        Some(DhGroup::Modp2048)
    );
}

#[test]
fn aggressive_mode_reports_no_warning_event() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.ike_proposals = vec![parse_ike_proposal("aes128-sha256-ecp256").unwrap()];
    cfg.aggressive = true;
    let mut i = initiator(cfg, now);
    let am1 = i.poll_transmit(now).expect("aggressive mode message 1");
    assert_eq!(
        Packet::new_checked(&am1.data[..]).unwrap().exchange(),
        exchange::AGGRESSIVE
    );
    assert!(
        i.poll_event().is_none(),
        "the engine's plan owns the warning"
    );
}

// ---------------------------------------------------------------- certificates

/// A throw-away PKI made at test time: RSA-2048 keys (the `rsa` crate, seeded), certificates
/// from rcgen.
struct Pki {
    ca: Vec<u8>,
    rogue_ca: Vec<u8>,
    server: Vec<u8>,
    server_key: rsa::RsaPrivateKey,
    /// The server's DN issued by the rogue CA (same key).
    rogue_server: Vec<u8>,
    client: Vec<u8>,
    client_key: rsa::RsaPrivateKey,
}

const SERVER_DN: &str = "C=XX, O=l2sec test, CN=vpn.test";

fn rsa_key(seed: u64) -> (rsa::RsaPrivateKey, rcgen::KeyPair) {
    use rsa::pkcs8::EncodePrivateKey;
    let mut rng = TestRng::new(seed);
    let key = rsa::RsaPrivateKey::new(&mut l2sec_crypto::RngAdapter(&mut rng), 2048).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
    (key, kp)
}

fn dn(org: &str, cn: &str) -> rcgen::DistinguishedName {
    let mut d = rcgen::DistinguishedName::new();
    d.push(rcgen::DnType::CountryName, "XX");
    d.push(rcgen::DnType::OrganizationName, org);
    d.push(rcgen::DnType::CommonName, cn);
    d
}

fn ca_cert(kp: &rcgen::KeyPair, org: &str) -> rcgen::Certificate {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = dn(org, "test CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.self_signed(kp).unwrap()
}

fn leaf(
    org: &str,
    cn: &str,
    san_ip: Option<&str>,
    kp: &rcgen::KeyPair,
    ca: &rcgen::Certificate,
    ca_kp: &rcgen::KeyPair,
) -> Vec<u8> {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = dn(org, cn);
    if let Some(ip) = san_ip {
        p.subject_alt_names = vec![rcgen::SanType::IpAddress(ip.parse().unwrap())];
    }
    p.signed_by(kp, ca, ca_kp).unwrap().der().to_vec()
}

fn pki() -> &'static Pki {
    static PKI: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let (_, ca_kp) = rsa_key(1);
        let (_, rogue_kp) = rsa_key(2);
        let (server_key, server_kp) = rsa_key(3);
        let (client_key, client_kp) = rsa_key(4);
        let ca = ca_cert(&ca_kp, "l2sec test");
        let rogue = ca_cert(&rogue_kp, "rogue");
        Pki {
            ca: ca.der().to_vec(),
            rogue_ca: rogue.der().to_vec(),
            server: leaf(
                "l2sec test",
                "vpn.test",
                Some("198.18.0.1"),
                &server_kp,
                &ca,
                &ca_kp,
            ),
            server_key,
            rogue_server: leaf(
                "l2sec test",
                "vpn.test",
                None,
                &server_kp,
                &rogue,
                &rogue_kp,
            ),
            client: leaf("l2sec test", "client", None, &client_kp, &ca, &ca_kp),
            client_key,
        }
    })
}

fn cert_config(ca: &[u8], remote_id: Option<RemoteId>) -> Config {
    let p = pki();
    let mut c = config();
    c.auth = Auth::Cert(CertAuth {
        cert_chain_der: vec![p.client.clone()],
        key: p.client_key.clone(),
        ca_der: vec![ca.to_vec()],
        remote_id,
    });
    c
}

fn run_cert(
    cfg: Config,
    server_chain: Vec<Vec<u8>>,
    signer: rsa::RsaPrivateKey,
) -> (Vec<Event>, Responder) {
    let now = Instant::now();
    let mut i = initiator(cfg, now);
    let mut r = Responder::with_cert(CertSide {
        chain: server_chain,
        key: signer,
    });
    let events = pump(&mut i, &mut r, now);
    (events, r)
}

#[test]
fn certificates_right_ca_and_dn_pass() {
    let p = pki();
    let cfg = cert_config(&p.ca, Some(RemoteId::Dn(SERVER_DN.into())));
    let (events, r) = run_cert(cfg, vec![p.server.clone()], p.server_key.clone());
    assert!(r.client_sig_ok, "the responder verified our signature");
    assert!(
        matches!(&events[0], Event::Phase1Done { proposal, .. } if proposal == "3des-sha1-modp1024"),
        "{events:?}"
    );
    let sa = child_ready(&events)[0].0;
    let (r_in_spi, r_in, _, _) = r.child.clone().unwrap();
    assert_eq!(sa.outbound.spi, r_in_spi);
    assert_eq!(&sa.outbound.enc_key[..], &r_in[..16]);
    // The SAN IP and "any certificate of the CA" also pass.
    for id in [Some(RemoteId::Ip("198.18.0.1".parse().unwrap())), None] {
        let (events, _) = run_cert(
            cert_config(&p.ca, id),
            vec![p.server.clone()],
            p.server_key.clone(),
        );
        assert_eq!(child_ready(&events).len(), 1, "{events:?}");
    }
}

fn failure(events: &[Event]) -> &Error {
    match events.last() {
        Some(Event::Failed(e)) => e,
        _ => panic!("expected a failure: {events:?}"),
    }
}

#[test]
fn certificates_wrong_ca_fails() {
    let p = pki();
    // We trust the rogue CA only: the real server certificate is not issued by it.
    let (events, _) = run_cert(
        cert_config(&p.rogue_ca, Some(RemoteId::Dn(SERVER_DN.into()))),
        vec![p.server.clone()],
        p.server_key.clone(),
    );
    let e = failure(&events);
    assert!(
        matches!(e, Error::Certificate(m) if m.contains("not issued by a configured ca")),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("`ca`"));
    assert!(child_ready(&events).is_empty());
    // The server presents a certificate of a CA we do not trust (same DN, same key).
    let (events, _) = run_cert(
        cert_config(&p.ca, Some(RemoteId::Dn(SERVER_DN.into()))),
        vec![p.rogue_server.clone()],
        p.server_key.clone(),
    );
    assert!(matches!(failure(&events), Error::Certificate(_)));
}

#[test]
fn certificates_wrong_dn_fails() {
    let p = pki();
    let (events, _) = run_cert(
        cert_config(
            &p.ca,
            Some(RemoteId::Dn("C=XX, O=l2sec test, CN=other.test".into())),
        ),
        vec![p.server.clone()],
        p.server_key.clone(),
    );
    let e = failure(&events);
    let Error::IdentityMismatch { expected, got } = e else {
        panic!("{e}")
    };
    assert!(
        expected.contains("other.test") && got.contains("vpn.test"),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("remote_id"));
}

#[test]
fn certificates_bad_signature_fails() {
    let p = pki();
    // Right certificate, but HASH_R signed with another key.
    let (events, _) = run_cert(
        cert_config(&p.ca, Some(RemoteId::Dn(SERVER_DN.into()))),
        vec![p.server.clone()],
        p.client_key.clone(),
    );
    assert!(
        matches!(failure(&events), Error::BadSignature),
        "{events:?}"
    );
}
