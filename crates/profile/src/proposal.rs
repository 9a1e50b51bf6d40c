//! IKE and ESP proposal names in the strongSwan style: `aes256-sha1-modp2048`, `aes256-sha1`,
//! `aes128gcm16`.

use std::fmt;

use l2sec_crypto::{CipherAlg, DhGroup, HashAlg, IntegAlg};

use crate::suggest::closest;

/// One IKE (phase 1) proposal: cipher, hash (PRF and integrity) and Diffie-Hellman group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeProposal {
    /// Encryption of IKE messages (CBC ciphers only).
    pub cipher: CipherAlg,
    /// Hash of the PRF and of the IKE HASH payloads.
    pub hash: HashAlg,
    /// Diffie-Hellman group.
    pub group: DhGroup,
}

/// One ESP (phase 2) proposal: cipher and, for non-AEAD ciphers, integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspProposal {
    /// Encryption.
    pub cipher: CipherAlg,
    /// Integrity; `None` for AES-GCM.
    pub integ: Option<IntegAlg>,
}

fn names<T>(all: &[T], name: impl Fn(&T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(name).collect()
}

fn cipher(s: &str) -> Option<CipherAlg> {
    CipherAlg::from_name(s)
}

fn hash(s: &str) -> Option<HashAlg> {
    HashAlg::from_name(s)
}

/// The ESP integrity algorithm of a hash (HMAC truncated as RFC 2404/4868 say).
fn integ(h: HashAlg) -> IntegAlg {
    match h {
        HashAlg::Md5 => IntegAlg::HmacMd5_96,
        HashAlg::Sha1 => IntegAlg::HmacSha1_96,
        HashAlg::Sha256 => IntegAlg::HmacSha256_128,
        HashAlg::Sha384 => IntegAlg::HmacSha384_192,
        HashAlg::Sha512 => IntegAlg::HmacSha512_256,
    }
}

/// Parses a DH group name (`modp2048`, `ecp256`, `dh14`, ...).
pub(crate) fn group(s: &str) -> Option<DhGroup> {
    DhGroup::from_name(s)
}

/// The profile name of a DH group.
pub(crate) fn group_name(g: DhGroup) -> &'static str {
    g.name()
}

/// An error for an unknown part of a proposal, with a suggestion.
fn unknown(kind: &str, part: &str, whole: &str, known: &[&'static str]) -> String {
    match closest(part, known) {
        Some(s) => format!("unknown {kind} `{part}` in `{whole}`; did you mean `{s}`?"),
        None => format!(
            "unknown {kind} `{part}` in `{whole}`; known: {}",
            known.join(", ")
        ),
    }
}

/// An error for an unknown DH group name, with a suggestion.
pub(crate) fn unknown_group(part: &str) -> String {
    let groups = names(&DhGroup::ALL, DhGroup::name);
    match closest(part, &groups) {
        Some(s) => format!("unknown DH group `{part}`; did you mean `{s}`?"),
        None => format!("unknown DH group `{part}`; known: {}", groups.join(", ")),
    }
}

impl IkeProposal {
    /// Parses `cipher-hash-group`, e.g. `aes256-sha1-modp2048`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('-').collect();
        let [c, h, g] = parts[..] else {
            return Err(format!(
                "IKE proposal `{s}` must be cipher-hash-group, like \"aes256-sha1-modp2048\""
            ));
        };
        let cipher = cipher(c)
            .ok_or_else(|| unknown("cipher", c, s, &names(&CipherAlg::ALL, CipherAlg::name)))?;
        if matches!(cipher, CipherAlg::AesGcm16 { .. }) {
            return Err(format!(
                "IKE proposal `{s}`: AES-GCM is for ESP only in IKEv1; use aes256 or aes128"
            ));
        }
        let hash =
            hash(h).ok_or_else(|| unknown("hash", h, s, &names(&HashAlg::ALL, HashAlg::name)))?;
        let group = group(g)
            .ok_or_else(|| unknown("DH group", g, s, &names(&DhGroup::ALL, DhGroup::name)))?;
        Ok(IkeProposal {
            cipher,
            hash,
            group,
        })
    }
}

impl EspProposal {
    /// Parses `cipher-integrity` (e.g. `aes256-sha1`) or an AEAD cipher alone (`aes128gcm16`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('-').collect();
        match parts[..] {
            [c] => {
                let cipher = cipher(c).ok_or_else(|| {
                    unknown("cipher", c, s, &names(&CipherAlg::ALL, CipherAlg::name))
                })?;
                if !matches!(cipher, CipherAlg::AesGcm16 { .. }) {
                    return Err(format!(
                        "ESP proposal `{s}` needs an integrity algorithm, like \"{c}-sha1\""
                    ));
                }
                Ok(EspProposal {
                    cipher,
                    integ: None,
                })
            }
            [c, h] => {
                let cipher = cipher(c).ok_or_else(|| {
                    unknown("cipher", c, s, &names(&CipherAlg::ALL, CipherAlg::name))
                })?;
                let h = hash(h).ok_or_else(|| {
                    unknown(
                        "integrity algorithm",
                        h,
                        s,
                        &names(&HashAlg::ALL, HashAlg::name),
                    )
                })?;
                if matches!(cipher, CipherAlg::AesGcm16 { .. }) {
                    return Err(format!(
                        "ESP proposal `{s}`: AES-GCM includes integrity; write just \"{c}\""
                    ));
                }
                Ok(EspProposal {
                    cipher,
                    integ: Some(integ(h)),
                })
            }
            [_, _, g] if group(g).is_some() => Err(format!(
                "ESP proposal `{s}` names a DH group; set it with pfs = \"{g}\" in [ipsec]"
            )),
            _ => Err(format!(
                "ESP proposal `{s}` must be cipher-integrity, like \"aes256-sha1\", or \"aes128gcm16\""
            )),
        }
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ike_names() {
        let p = IkeProposal::parse("aes256-sha1-modp2048").unwrap();
        assert_eq!(p.cipher, CipherAlg::AesCbc { key_bits: 256 });
        assert_eq!(p.hash, HashAlg::Sha1);
        assert_eq!(p.group, DhGroup::Modp2048);
        let p = IkeProposal::parse("3des-md5-modp768").unwrap();
        assert_eq!(
            (p.cipher, p.hash, p.group),
            (CipherAlg::TripleDesCbc, HashAlg::Md5, DhGroup::Modp768)
        );
        assert_eq!(
            IkeProposal::parse("aes128-sha256-ecp256")
                .unwrap()
                .to_string(),
            "aes128-sha256-ecp256"
        );
    }

    #[test]
    fn ike_errors() {
        let e = IkeProposal::parse("aes265-sha1-modp2048").unwrap_err();
        assert!(e.contains("did you mean `aes256`"), "{e}");
        let e = IkeProposal::parse("aes256-sha1-modp2084").unwrap_err();
        assert!(e.contains("did you mean `modp2048`"), "{e}");
        assert!(IkeProposal::parse("aes256-sha1").is_err());
        assert!(IkeProposal::parse("aes128gcm16-sha1-modp2048").is_err());
        assert!(IkeProposal::parse("").is_err());
    }

    #[test]
    fn esp_names() {
        let p = EspProposal::parse("aes256-sha1").unwrap();
        assert_eq!(p.cipher, CipherAlg::AesCbc { key_bits: 256 });
        assert_eq!(p.integ, Some(IntegAlg::HmacSha1_96));
        let p = EspProposal::parse("aes128gcm16").unwrap();
        assert_eq!(p.cipher, CipherAlg::AesGcm16 { key_bits: 128 });
        assert_eq!(p.integ, None);
        assert_eq!(
            EspProposal::parse("3des-sha256").unwrap().to_string(),
            "3des-sha256"
        );
        assert_eq!(
            EspProposal::parse("aes256-sha256").unwrap().integ,
            Some(IntegAlg::HmacSha256_128)
        );
    }

    #[test]
    fn esp_errors() {
        assert!(
            EspProposal::parse("aes256")
                .unwrap_err()
                .contains("aes256-sha1")
        );
        assert!(
            EspProposal::parse("aes256-sha1-modp2048")
                .unwrap_err()
                .contains("pfs")
        );
        assert!(EspProposal::parse("aes128gcm16-sha1").is_err());
        assert!(EspProposal::parse("a-b-c-d").is_err());
    }
}
