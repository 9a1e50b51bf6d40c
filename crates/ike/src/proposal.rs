//! Proposals in `aes256-sha256-modp2048` notation, the default offers, and their encoding as
//! ISAKMP / IPsec DOI transforms.

use core::fmt;

use l2sec_crypto::{CipherAlg, DhGroup, HashAlg, IntegAlg, Policy, Strength};

use crate::Error;
use crate::wire::{Attribute, Proposal, SaPayload, Transform, protocol};

/// Phase 1 attribute types (RFC 2409 Appendix A).
pub(crate) mod p1attr {
    pub const ENCRYPTION: u16 = 1;
    pub const HASH: u16 = 2;
    pub const AUTH_METHOD: u16 = 3;
    pub const GROUP: u16 = 4;
    pub const LIFE_TYPE: u16 = 11;
    pub const LIFE_DURATION: u16 = 12;
    pub const KEY_LENGTH: u16 = 14;
}

/// IPsec DOI SA attribute types (RFC 2407 4.5).
pub(crate) mod p2attr {
    pub const LIFE_TYPE: u16 = 1;
    pub const LIFE_DURATION: u16 = 2;
    pub const GROUP: u16 = 3;
    pub const ENCAPSULATION: u16 = 4;
    pub const AUTH_ALG: u16 = 5;
    pub const KEY_LENGTH: u16 = 6;
}

/// Life type: seconds.
pub(crate) const LIFE_SECONDS: u16 = 1;
/// Life type: kilobytes.
pub(crate) const LIFE_KILOBYTES: u16 = 2;
/// Auth method: pre-shared key.
pub(crate) const AUTH_PSK: u16 = 1;
/// Auth method: RSA signatures.
pub(crate) const AUTH_RSA_SIG: u16 = 3;

/// A phase 1 (ISAKMP SA) proposal: encryption, hash/PRF and Diffie-Hellman group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeProposal {
    /// Encryption algorithm (CBC only).
    pub cipher: CipherAlg,
    /// Hash, also the HMAC PRF.
    pub hash: HashAlg,
    /// Diffie-Hellman group.
    pub group: DhGroup,
}

/// A phase 2 (ESP SA) proposal: cipher, integrity (none for AEAD) and optional PFS group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspProposal {
    /// Encryption transform.
    pub cipher: CipherAlg,
    /// Integrity transform; `None` for AES-GCM.
    pub integ: Option<IntegAlg>,
    /// PFS group for this proposal, if any.
    pub pfs: Option<DhGroup>,
}

impl IkeProposal {
    /// The weakest strength of its parts.
    #[must_use]
    pub fn strength(&self) -> Strength {
        self.cipher
            .strength()
            .max(self.hash.strength())
            .max(self.group.strength())
    }
}

impl EspProposal {
    /// The weakest strength of its parts.
    #[must_use]
    pub fn strength(&self) -> Strength {
        let mut s = self.cipher.strength();
        if let Some(i) = self.integ {
            s = s.max(i.strength());
        }
        if let Some(g) = self.pfs {
            s = s.max(g.strength());
        }
        s
    }
}

impl fmt::Display for IkeProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.cipher.name(),
            self.hash.name(),
            self.group.name()
        )
    }
}

impl fmt::Display for EspProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cipher.name())?;
        if let Some(i) = self.integ {
            write!(f, "-{}", i.name())?;
        }
        if let Some(g) = self.pfs {
            write!(f, "-{}", g.name())?;
        }
        Ok(())
    }
}

/// Why a proposal name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// A part names no algorithm of its kind (a caller may suggest the closest of `known`).
    #[error("unknown {kind} {part}")]
    Unknown {
        /// `cipher`, `hash`, `integrity algorithm` or `DH group`.
        kind: &'static str,
        /// The part as written.
        part: String,
        /// Every name of that kind.
        known: Vec<&'static str>,
    },
    /// The proposal is not written right; the message says how to write it.
    #[error("{0}")]
    Malformed(String),
}

fn unknown<T>(
    kind: &'static str,
    part: &str,
    all: &[T],
    name: fn(&T) -> &'static str,
) -> ProposalError {
    ProposalError::Unknown {
        kind,
        part: part.to_owned(),
        known: all.iter().map(name).collect(),
    }
}

fn cipher(part: &str) -> Result<CipherAlg, ProposalError> {
    CipherAlg::from_name(part)
        .ok_or_else(|| unknown("cipher", part, &CipherAlg::ALL, CipherAlg::name))
}

impl IkeProposal {
    /// Parses `cipher-hash-group`, e.g. `aes256-sha1-modp2048` (names are case-insensitive).
    ///
    /// # Errors
    /// The part that names no algorithm, or how to write the proposal.
    pub fn parse(s: &str) -> Result<Self, ProposalError> {
        let parts: Vec<&str> = s.split('-').collect();
        let [c, h, g] = parts[..] else {
            return Err(ProposalError::Malformed(format!(
                "IKE proposal `{s}` must be cipher-hash-group, like \"aes256-sha1-modp2048\""
            )));
        };
        let cipher = cipher(c)?;
        if cipher.is_aead() {
            return Err(ProposalError::Malformed(format!(
                "IKE proposal `{s}`: AES-GCM is for ESP only in IKEv1; use aes256 or aes128"
            )));
        }
        let hash = HashAlg::from_name(h)
            .ok_or_else(|| unknown("hash", h, &HashAlg::ALL, HashAlg::name))?;
        let group = DhGroup::from_name(g)
            .ok_or_else(|| unknown("DH group", g, &DhGroup::ALL, DhGroup::name))?;
        Ok(IkeProposal {
            cipher,
            hash,
            group,
        })
    }
}

impl EspProposal {
    /// Parses `cipher-integrity` (e.g. `aes256-sha1`) or an AEAD cipher alone (`aes128gcm16`),
    /// without a PFS group ([`parse_esp_proposal`] also takes one).
    ///
    /// # Errors
    /// The part that names no algorithm, or how to write the proposal.
    pub fn parse(s: &str) -> Result<Self, ProposalError> {
        let parts: Vec<&str> = s.split('-').collect();
        let (c, h) = match parts[..] {
            [c] => (c, None),
            [c, h] => (c, Some(h)),
            _ => {
                return Err(ProposalError::Malformed(format!(
                    "ESP proposal `{s}` must be cipher-integrity, like \"aes256-sha1\", or \"aes128gcm16\""
                )));
            }
        };
        let cipher = cipher(c)?;
        let integ = match h {
            None if cipher.is_aead() => None,
            None => {
                return Err(ProposalError::Malformed(format!(
                    "ESP proposal `{s}` needs an integrity algorithm, like \"{c}-sha1\""
                )));
            }
            Some(h) => {
                let i = IntegAlg::from_name(h).ok_or_else(|| {
                    unknown("integrity algorithm", h, &IntegAlg::ALL, IntegAlg::name)
                })?;
                if cipher.is_aead() {
                    return Err(ProposalError::Malformed(format!(
                        "ESP proposal `{s}`: AES-GCM includes integrity; write just \"{c}\""
                    )));
                }
                Some(i)
            }
        };
        Ok(EspProposal {
            cipher,
            integ,
            pfs: None,
        })
    }
}

fn bad(s: &str, why: ProposalError) -> Error {
    Error::InvalidProposal(s.to_string(), why.to_string())
}

/// Parses a phase 1 proposal such as `aes256-sha256-modp2048` or `3des-sha1-modp1024`
/// (see [`IkeProposal::parse`]; blanks around it are ignored).
///
/// # Errors
/// [`Error::InvalidProposal`] naming the part that is not understood.
pub fn parse_ike_proposal(s: &str) -> Result<IkeProposal, Error> {
    IkeProposal::parse(s.trim()).map_err(|e| bad(s, e))
}

/// Parses a phase 2 proposal such as `aes256-sha1`, `aes128gcm16` or, with a PFS group,
/// `aes256-sha1-modp2048` (see [`EspProposal::parse`]; blanks around it are ignored).
///
/// # Errors
/// [`Error::InvalidProposal`] naming the part that is not understood.
pub fn parse_esp_proposal(s: &str) -> Result<EspProposal, Error> {
    let t = s.trim();
    let (body, pfs) = match t.rsplit_once('-').map(|(b, g)| (b, DhGroup::from_name(g))) {
        Some((b, Some(g))) => (b, Some(g)),
        _ => (t, None),
    };
    let p = EspProposal::parse(body).map_err(|e| bad(s, e))?;
    Ok(EspProposal { pfs, ..p })
}

const DEFAULT_IKE: &[&str] = &[
    "aes256-sha256-modp2048",
    "aes128-sha256-modp2048",
    "aes256-sha1-modp2048",
    "aes128-sha1-modp2048",
    "aes256-sha1-ecp384",
    "aes128-sha1-ecp256",
    "aes256-sha1-modp1536",
    "aes256-sha1-modp1024",
    "aes128-sha1-modp1024",
    "3des-sha1-modp2048",
    "3des-sha1-modp1024",
];

const DEFAULT_ESP: &[&str] = &[
    "aes256-sha1",
    "aes128-sha1",
    "aes256-sha256",
    "aes128-sha256",
    "aes256gcm16",
    "aes128gcm16",
    "3des-sha1",
];

/// The default phase 1 offer (at most 11 transforms), filtered by `policy`: modern suites
/// first, then the legacy tier (SHA-1 PRF, MODP-1024, 3DES) when the policy allows it.
#[must_use]
pub fn default_ike_proposals(policy: Policy) -> Vec<IkeProposal> {
    DEFAULT_IKE
        .iter()
        .filter_map(|s| parse_ike_proposal(s).ok())
        .filter(|p| policy.allows(p.strength()))
        .collect()
}

/// The default phase 2 offer, filtered by `policy`, each with the PFS group `pfs`.
#[must_use]
pub fn default_esp_proposals(policy: Policy, pfs: Option<DhGroup>) -> Vec<EspProposal> {
    DEFAULT_ESP
        .iter()
        .filter_map(|s| parse_esp_proposal(s).ok())
        .map(|p| EspProposal { pfs, ..p })
        .filter(|p| policy.allows(p.strength()))
        .collect()
}

/// The ESP offer of one quick mode: `props` with the PFS group `pfs` given to each proposal that
/// names none, keeping only those whose group is the first one's (a quick mode carries one KE).
pub(crate) fn quick_mode_offer(props: &[EspProposal], pfs: Option<DhGroup>) -> Vec<EspProposal> {
    let resolved = props.iter().map(|p| EspProposal {
        pfs: p.pfs.or(pfs),
        ..*p
    });
    let first = props.first().map(|p| p.pfs.or(pfs));
    resolved.filter(|p| Some(p.pfs) == first).collect()
}

/// Joins proposals for messages (`a, b, c`).
pub(crate) fn list<T: fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the phase 1 SA payload: one ISAKMP proposal with one transform per entry.
pub(crate) fn ike_sa_payload(
    props: &[IkeProposal],
    auth_method: u16,
    lifetime_secs: u64,
) -> SaPayload {
    let transforms = props
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let (enc, klen) = p.cipher.ike_id()?;
            let mut a = vec![Attribute::basic(p1attr::ENCRYPTION, enc)];
            if let Some(k) = klen {
                a.push(Attribute::basic(p1attr::KEY_LENGTH, k));
            }
            a.push(Attribute::basic(p1attr::HASH, p.hash.ike_id()));
            a.push(Attribute::basic(p1attr::AUTH_METHOD, auth_method));
            a.push(Attribute::basic(p1attr::GROUP, p.group.id()));
            a.push(Attribute::basic(p1attr::LIFE_TYPE, LIFE_SECONDS));
            a.push(Attribute::number(p1attr::LIFE_DURATION, lifetime_secs));
            Some(Transform {
                number: (i + 1) as u8,
                id: 1,
                attributes: a,
            })
        })
        .collect();
    SaPayload {
        doi: 1,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: protocol::ISAKMP,
            spi: vec![],
            transforms,
        }],
    }
}

/// Lifetimes carried in a transform or a RESPONDER-LIFETIME notify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lifetimes {
    pub secs: Option<u64>,
    pub kbytes: Option<u64>,
}

/// Reads life type / duration pairs from an attribute list.
pub(crate) fn read_lifetimes(attrs: &[Attribute], type_attr: u16, dur_attr: u16) -> Lifetimes {
    let mut l = Lifetimes::default();
    let mut current = None;
    for a in attrs {
        if a.kind == type_attr {
            current = a.as_u64();
        } else if a.kind == dur_attr {
            match current.and_then(|c| u16::try_from(c).ok()) {
                Some(LIFE_SECONDS) => l.secs = a.as_u64(),
                Some(LIFE_KILOBYTES) => l.kbytes = a.as_u64(),
                _ => {}
            }
        }
    }
    l
}

/// Decodes the transform a responder chose in phase 1.
pub(crate) fn decode_ike_transform(t: &Transform) -> Result<(IkeProposal, u16, Lifetimes), Error> {
    let get = |k| {
        t.attr(k)
            .and_then(Attribute::as_u64)
            .and_then(|v| u16::try_from(v).ok())
    };
    let enc =
        get(p1attr::ENCRYPTION).ok_or(Error::Malformed("phase 1 transform without encryption"))?;
    let cipher = CipherAlg::from_ike(enc, get(p1attr::KEY_LENGTH))
        .ok_or_else(|| Error::BadProposal(format!("unknown phase 1 encryption {enc}")))?;
    let h = get(p1attr::HASH).ok_or(Error::Malformed("phase 1 transform without hash"))?;
    let hash = HashAlg::from_ike(h)
        .ok_or_else(|| Error::BadProposal(format!("unknown phase 1 hash {h}")))?;
    let g = get(p1attr::GROUP).ok_or(Error::Malformed("phase 1 transform without group"))?;
    let group =
        DhGroup::from_id(g).ok_or_else(|| Error::BadProposal(format!("unknown dh group {g}")))?;
    let auth = get(p1attr::AUTH_METHOD)
        .ok_or(Error::Malformed("phase 1 transform without auth method"))?;
    let life = read_lifetimes(&t.attributes, p1attr::LIFE_TYPE, p1attr::LIFE_DURATION);
    Ok((
        IkeProposal {
            cipher,
            hash,
            group,
        },
        auth,
        life,
    ))
}

/// ESP encapsulation modes (RFC 2407, RFC 3947, drafts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EncapMode {
    Tunnel,
    Transport,
    UdpTunnel { draft: bool },
    UdpTransport { draft: bool },
}

impl EncapMode {
    pub(crate) fn value(self) -> u16 {
        match self {
            EncapMode::Tunnel => 1,
            EncapMode::Transport => 2,
            EncapMode::UdpTunnel { draft: false } => 3,
            EncapMode::UdpTransport { draft: false } => 4,
            EncapMode::UdpTunnel { draft: true } => 61443,
            EncapMode::UdpTransport { draft: true } => 61444,
        }
    }

    pub(crate) fn from_value(v: u16) -> Option<Self> {
        Some(match v {
            1 => EncapMode::Tunnel,
            2 => EncapMode::Transport,
            3 => EncapMode::UdpTunnel { draft: false },
            4 => EncapMode::UdpTransport { draft: false },
            61443 => EncapMode::UdpTunnel { draft: true },
            61444 => EncapMode::UdpTransport { draft: true },
            _ => return None,
        })
    }

    pub(crate) fn is_tunnel(self) -> bool {
        matches!(self, EncapMode::Tunnel | EncapMode::UdpTunnel { .. })
    }
}

/// Builds the phase 2 SA payload: one ESP proposal with one transform per entry.
pub(crate) fn esp_sa_payload(
    props: &[EspProposal],
    spi: u32,
    mode: EncapMode,
    life_secs: u64,
    life_kb: Option<u64>,
) -> SaPayload {
    let transforms = props
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (id, klen) = p.cipher.esp_id();
            let mut a = vec![
                Attribute::basic(p2attr::LIFE_TYPE, LIFE_SECONDS),
                Attribute::number(p2attr::LIFE_DURATION, life_secs),
            ];
            if let Some(kb) = life_kb {
                a.push(Attribute::basic(p2attr::LIFE_TYPE, LIFE_KILOBYTES));
                a.push(Attribute::number(p2attr::LIFE_DURATION, kb));
            }
            a.push(Attribute::basic(p2attr::ENCAPSULATION, mode.value()));
            if let Some(integ) = p.integ {
                a.push(Attribute::basic(p2attr::AUTH_ALG, integ.esp_auth_id()));
            }
            if let Some(k) = klen {
                a.push(Attribute::basic(p2attr::KEY_LENGTH, k));
            }
            if let Some(g) = p.pfs {
                a.push(Attribute::basic(p2attr::GROUP, g.id()));
            }
            Transform {
                number: (i + 1) as u8,
                id,
                attributes: a,
            }
        })
        .collect();
    SaPayload {
        doi: 1,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: protocol::ESP,
            spi: spi.to_be_bytes().to_vec(),
            transforms,
        }],
    }
}

/// A decoded ESP transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EspChoice {
    pub proposal: EspProposal,
    pub mode: Option<EncapMode>,
    pub life: Lifetimes,
}

/// Decodes one ESP transform.
pub(crate) fn decode_esp_transform(t: &Transform) -> Result<EspChoice, Error> {
    let get = |k| {
        t.attr(k)
            .and_then(Attribute::as_u64)
            .and_then(|v| u16::try_from(v).ok())
    };
    let cipher = CipherAlg::from_esp(t.id, get(p2attr::KEY_LENGTH))
        .ok_or_else(|| Error::BadProposal(format!("unknown esp transform {}", t.id)))?;
    let integ = match get(p2attr::AUTH_ALG) {
        Some(a) => Some(
            IntegAlg::from_esp_auth(a)
                .ok_or_else(|| Error::BadProposal(format!("unknown esp integrity {a}")))?,
        ),
        None => None,
    };
    if integ.is_none() && !cipher.is_aead() {
        return Err(Error::BadProposal("esp transform without integrity".into()));
    }
    let pfs = match get(p2attr::GROUP) {
        Some(g) => Some(
            DhGroup::from_id(g)
                .ok_or_else(|| Error::BadProposal(format!("unknown pfs group {g}")))?,
        ),
        None => None,
    };
    Ok(EspChoice {
        proposal: EspProposal { cipher, integ, pfs },
        mode: get(p2attr::ENCAPSULATION).and_then(EncapMode::from_value),
        life: read_lifetimes(&t.attributes, p2attr::LIFE_TYPE, p2attr::LIFE_DURATION),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for s in [
            "aes256-sha256-modp2048",
            "3des-sha1-modp1024",
            "aes128-sha1-ecp256",
            "aes192-sha512-modp4096",
        ] {
            assert_eq!(parse_ike_proposal(s).unwrap().to_string(), s);
        }
        for s in [
            "aes256-sha1",
            "aes128gcm16",
            "aes256-sha1-modp2048",
            "3des-md5",
            "aes256gcm16-ecp384",
        ] {
            assert_eq!(parse_esp_proposal(s).unwrap().to_string(), s);
        }
        let p = parse_ike_proposal("AES256-SHA256-MODP2048").unwrap();
        assert_eq!(p.cipher, CipherAlg::AesCbc { key_bits: 256 });
        assert_eq!(p.hash, HashAlg::Sha256);
        assert_eq!(p.group, DhGroup::Modp2048);
    }

    #[test]
    fn parse_errors_name_the_problem() {
        for s in [
            "aes256-sha256",
            "aes256-whirlpool-modp2048",
            "aes128gcm16-sha1-modp2048",
            "rc4-sha1-modp1024",
        ] {
            assert!(parse_ike_proposal(s).is_err(), "{s}");
        }
        for s in [
            "aes256",
            "aes256-sha1-sha256",
            "aes128gcm16-sha1",
            "aes256-modp2048-sha1",
            "x-sha1",
        ] {
            assert!(parse_esp_proposal(s).is_err(), "{s}");
        }
        let e = parse_ike_proposal("aes256-foo-modp2048")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown hash foo"), "{e}");
    }

    #[test]
    fn default_offers_respect_policy_and_size() {
        let legacy = default_ike_proposals(Policy::Legacy);
        assert!(legacy.len() <= 12);
        assert_eq!(legacy[0].to_string(), "aes256-sha256-modp2048");
        assert!(legacy.iter().any(|p| p.to_string() == "3des-sha1-modp1024"));
        // Legacy tier comes after every modern proposal.
        let first_legacy = legacy
            .iter()
            .position(|p| p.strength() != Strength::Modern)
            .unwrap();
        assert!(
            legacy[first_legacy..]
                .iter()
                .all(|p| p.strength() != Strength::Modern)
        );
        let modern = default_ike_proposals(Policy::Modern);
        assert!(!modern.is_empty());
        assert!(modern.iter().all(|p| p.strength() == Strength::Modern));
        let esp = default_esp_proposals(Policy::Legacy, None);
        assert_eq!(esp[0].to_string(), "aes256-sha1");
        assert!(esp.iter().any(|p| p.to_string() == "3des-sha1"));
        assert!(esp.iter().all(|p| p.integ != Some(IntegAlg::HmacMd5_96)));
        let pfs = default_esp_proposals(Policy::Legacy, Some(DhGroup::Modp2048));
        assert!(pfs.iter().all(|p| p.pfs == Some(DhGroup::Modp2048)));
    }

    #[test]
    fn quick_mode_offer_fills_the_group_and_keeps_one_ke() {
        let p = |s| parse_esp_proposal(s).unwrap();
        let props = [p("aes256-sha1"), p("aes128-sha1"), p("3des-sha1")];
        // No PFS: the proposals as they are.
        assert_eq!(quick_mode_offer(&props, None), props);
        // A group: given to every proposal.
        let offer = quick_mode_offer(&props, Some(DhGroup::Ecp256));
        assert_eq!(offer.len(), 3);
        assert!(offer.iter().all(|p| p.pfs == Some(DhGroup::Ecp256)));
        // A proposal's own group wins; those with another group than the first are dropped.
        let mixed = [
            p("aes256-sha1-modp2048"),
            p("aes128-sha1"),
            p("3des-sha1-modp1024"),
        ];
        let offer = quick_mode_offer(&mixed, Some(DhGroup::Modp2048));
        assert_eq!(list(&offer), "aes256-sha1-modp2048, aes128-sha1-modp2048");
        let offer = quick_mode_offer(&mixed, None);
        assert_eq!(list(&offer), "aes256-sha1-modp2048");
        assert!(quick_mode_offer(&[], Some(DhGroup::Modp2048)).is_empty());
    }

    #[test]
    fn transforms_round_trip() {
        let props = default_ike_proposals(Policy::Legacy);
        let sa = ike_sa_payload(&props, AUTH_PSK, 28800);
        let back: Vec<_> = sa.proposals[0]
            .transforms
            .iter()
            .map(|t| decode_ike_transform(t).unwrap())
            .collect();
        for (p, (d, auth, life)) in props.iter().zip(back) {
            assert_eq!(*p, d);
            assert_eq!(auth, AUTH_PSK);
            assert_eq!(life.secs, Some(28800));
        }
        let esp = default_esp_proposals(Policy::Legacy, Some(DhGroup::Modp1024));
        let sa = esp_sa_payload(
            &esp,
            0x1234_5678,
            EncapMode::UdpTransport { draft: false },
            3600,
            Some(100_000),
        );
        assert_eq!(sa.proposals[0].spi, vec![0x12, 0x34, 0x56, 0x78]);
        for (p, t) in esp.iter().zip(&sa.proposals[0].transforms) {
            let c = decode_esp_transform(t).unwrap();
            assert_eq!(c.proposal, *p);
            assert_eq!(c.mode, Some(EncapMode::UdpTransport { draft: false }));
            assert_eq!(
                c.life,
                Lifetimes {
                    secs: Some(3600),
                    kbytes: Some(100_000)
                }
            );
        }
    }
}
