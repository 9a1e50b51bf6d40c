//! IKE and ESP proposal names as profiles and the command line write them
//! (`aes256-sha1-modp2048`, `aes256-sha1`, `aes128gcm16`): `l2sec-ike` parses them, this adds a
//! "did you mean" to an unknown name and keeps DH groups out of `esp` (PFS is `[ipsec] pfs`).

use l2sec_crypto::DhGroup;
use l2sec_ike::{EspProposal, IkeProposal, ProposalError};

use crate::suggest::closest;

/// Parses an IKE proposal, e.g. `aes256-sha1-modp2048`; an unknown name gets a suggestion.
///
/// # Errors
/// What is wrong, one line.
pub fn parse_ike(s: &str) -> Result<IkeProposal, String> {
    IkeProposal::parse(s).map_err(|e| explain(s, e))
}

/// Parses an ESP proposal, e.g. `aes256-sha1` or `aes128gcm16`; an unknown name gets a
/// suggestion.
///
/// # Errors
/// What is wrong, one line.
pub fn parse_esp(s: &str) -> Result<EspProposal, String> {
    if let [_, _, g] = s.split('-').collect::<Vec<_>>()[..] {
        if DhGroup::from_name(g).is_some() {
            return Err(format!(
                "ESP proposal `{s}` names a DH group; set it with pfs = \"{g}\" in [ipsec]"
            ));
        }
    }
    EspProposal::parse(s).map_err(|e| explain(s, e))
}

fn explain(whole: &str, e: ProposalError) -> String {
    match e {
        ProposalError::Unknown { kind, part, known } => unknown(
            &format!("unknown {kind} `{part}` in `{whole}`"),
            &part,
            &known,
        ),
        ProposalError::Malformed(m) => m,
    }
}

/// `what`, then the closest of `known` to `part`, or all of them.
fn unknown(what: &str, part: &str, known: &[&str]) -> String {
    match closest(part, known) {
        Some(s) => format!("{what}; did you mean `{s}`?"),
        None => format!("{what}; known: {}", known.join(", ")),
    }
}

/// An error for an unknown DH group name, with a suggestion.
pub(crate) fn unknown_group(part: &str) -> String {
    let groups: Vec<&str> = DhGroup::ALL.iter().map(DhGroup::name).collect();
    unknown(&format!("unknown DH group `{part}`"), part, &groups)
}

#[cfg(test)]
mod tests {
    use l2sec_crypto::{CipherAlg, DhGroup, HashAlg, IntegAlg};

    use super::*;

    #[test]
    fn ike_names() {
        let p = parse_ike("aes256-sha1-modp2048").unwrap();
        assert_eq!(p.cipher, CipherAlg::AesCbc { key_bits: 256 });
        assert_eq!(p.hash, HashAlg::Sha1);
        assert_eq!(p.group, DhGroup::Modp2048);
        let p = parse_ike("3des-md5-modp768").unwrap();
        assert_eq!(
            (p.cipher, p.hash, p.group),
            (CipherAlg::TripleDesCbc, HashAlg::Md5, DhGroup::Modp768)
        );
        assert_eq!(
            parse_ike("aes128-sha256-ecp256").unwrap().to_string(),
            "aes128-sha256-ecp256"
        );
    }

    #[test]
    fn ike_errors() {
        let e = parse_ike("aes265-sha1-modp2048").unwrap_err();
        assert!(e.contains("did you mean `aes256`"), "{e}");
        let e = parse_ike("aes256-sha1-modp2084").unwrap_err();
        assert!(e.contains("did you mean `modp2048`"), "{e}");
        assert!(parse_ike("aes256-sha1").is_err());
        assert!(parse_ike("aes128gcm16-sha1-modp2048").is_err());
        assert!(parse_ike("").is_err());
    }

    #[test]
    fn esp_names() {
        let p = parse_esp("aes256-sha1").unwrap();
        assert_eq!(p.cipher, CipherAlg::AesCbc { key_bits: 256 });
        assert_eq!(p.integ, Some(IntegAlg::HmacSha1_96));
        let p = parse_esp("aes128gcm16").unwrap();
        assert_eq!(p.cipher, CipherAlg::AesGcm16 { key_bits: 128 });
        assert_eq!(p.integ, None);
        assert_eq!(parse_esp("3des-sha256").unwrap().to_string(), "3des-sha256");
        assert_eq!(
            parse_esp("aes256-sha256").unwrap().integ,
            Some(IntegAlg::HmacSha256_128)
        );
    }

    #[test]
    fn esp_errors() {
        assert!(parse_esp("aes256").unwrap_err().contains("aes256-sha1"));
        assert!(
            parse_esp("aes256-sha1-modp2048")
                .unwrap_err()
                .contains("pfs")
        );
        assert!(parse_esp("aes128gcm16-sha1").is_err());
        assert!(parse_esp("a-b-c-d").is_err());
    }
}
