//! The MS-CHAP computations (RFC 2759 MS-CHAPv2, RFC 2433 MS-CHAPv1) and CHAP-MD5 (RFC 1994).

use l2sec_crypto::{des_encrypt_7, md4, md5, sha1};
use zeroize::Zeroizing;

/// "Magic server to client signing constant" (RFC 2759 section 8.7, Magic1).
const MAGIC1: &[u8] = b"Magic server to client signing constant";
/// "Pad to make it do more than one iteration" (RFC 2759 section 8.7, Magic2).
const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";

/// CHAP-MD5 response value: MD5(identifier || secret || challenge) (RFC 1994 section 4.1).
#[must_use]
pub fn chap_md5_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    md5(&[&[id], secret, challenge])
}

/// NtPasswordHash: MD4 of the UTF-16LE password (RFC 2759 section 8.3).
#[must_use]
pub fn nt_password_hash(password: &str) -> Zeroizing<[u8; 16]> {
    let unicode: Zeroizing<Vec<u8>> =
        Zeroizing::new(password.encode_utf16().flat_map(u16::to_le_bytes).collect());
    Zeroizing::new(md4(&unicode))
}

/// The user name MS-CHAPv2 hashes: without a leading `DOMAIN\` (RFC 2759 section 8.2).
#[must_use]
pub fn hash_user_name(user: &str) -> &str {
    user.rsplit_once('\\').map_or(user, |(_, u)| u)
}

/// ChallengeHash (RFC 2759 section 8.2): SHA-1(peer || authenticator || user)[..8].
#[must_use]
pub fn challenge_hash(peer: &[u8; 16], authenticator: &[u8; 16], user: &str) -> [u8; 8] {
    let d = sha1(&[peer, authenticator, hash_user_name(user).as_bytes()]);
    let mut out = [0; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// ChallengeResponse (RFC 2759 section 8.5): three DES encryptions under the zero-padded hash.
#[must_use]
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = Zeroizing::new([0u8; 21]);
    z[..16].copy_from_slice(password_hash);
    let mut out = [0; 24];
    for i in 0..3 {
        let mut k = [0u8; 7];
        k.copy_from_slice(&z[i * 7..i * 7 + 7]);
        out[i * 8..i * 8 + 8].copy_from_slice(&des_encrypt_7(&k, challenge));
    }
    out
}

/// GenerateNTResponse (RFC 2759 section 8.1).
#[must_use]
pub fn generate_nt_response(
    authenticator: &[u8; 16],
    peer: &[u8; 16],
    user: &str,
    password: &str,
) -> [u8; 24] {
    let ch = challenge_hash(peer, authenticator, user);
    challenge_response(&ch, &nt_password_hash(password))
}

/// GenerateAuthenticatorResponse (RFC 2759 section 8.7): the 20 bytes behind `S=`.
#[must_use]
pub fn authenticator_response(
    password: &str,
    nt_response: &[u8; 24],
    peer: &[u8; 16],
    authenticator: &[u8; 16],
    user: &str,
) -> [u8; 20] {
    let hash = nt_password_hash(password);
    let hash_hash = Zeroizing::new(md4(&hash[..]));
    let digest = sha1(&[&hash_hash[..], nt_response, MAGIC1]);
    let ch = challenge_hash(peer, authenticator, user);
    sha1(&[&digest, &ch, MAGIC2])
}

/// Formats an authenticator response as the `S=` string of a Success message (upper-case hex).
#[must_use]
pub fn format_authenticator_response(resp: &[u8; 20]) -> String {
    let mut s = String::with_capacity(42);
    s.push_str("S=");
    for b in resp {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Extracts the 20 bytes of `S=<40 hex>` from a Success message, if present and well formed.
#[must_use]
pub fn parse_authenticator_response(message: &[u8]) -> Option<[u8; 20]> {
    let pos = message.windows(2).position(|w| w == b"S=")?;
    let hex = message.get(pos + 2..pos + 42)?;
    let mut out = [0u8; 20];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// MS-CHAPv1 NT-Response (RFC 2433 section A.5): ChallengeResponse over the 8-byte challenge.
#[must_use]
pub fn mschapv1_nt_response(challenge: &[u8; 8], password: &str) -> [u8; 24] {
    challenge_response(challenge, &nt_password_hash(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 2759 section 9.2, every intermediate value.
    #[test]
    fn rfc2759_section9_vectors() {
        let auth: [u8; 16] = h("5B5D7C7D7B3F2F3E3C2C602132262628");
        let peer: [u8; 16] = h("21402324255E262A28295F2B3A337C7E");
        assert_eq!(
            challenge_hash(&peer, &auth, "User"),
            h::<8>("D02E4386BCE91226")
        );
        assert_eq!(
            *nt_password_hash("clientPass"),
            h::<16>("44EBBA8D5312B8D611474411F56989AE")
        );
        assert_eq!(
            md4(&nt_password_hash("clientPass")[..]),
            h::<16>("41C00C584BD2D91C4017A2A12FA59F3F")
        );
        let nt = generate_nt_response(&auth, &peer, "User", "clientPass");
        assert_eq!(
            nt,
            h::<24>("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
        );
        let ar = authenticator_response("clientPass", &nt, &peer, &auth, "User");
        assert_eq!(
            format_authenticator_response(&ar),
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
        assert_eq!(
            parse_authenticator_response(b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=ok"),
            Some(ar)
        );
        // the DOMAIN\ prefix is not hashed
        assert_eq!(
            generate_nt_response(&auth, &peer, "CORP\\User", "clientPass"),
            nt
        );
    }

    #[test]
    fn authenticator_response_parsing() {
        assert_eq!(parse_authenticator_response(b"M=hello"), None);
        assert_eq!(parse_authenticator_response(b"S=407A"), None);
        assert_eq!(
            parse_authenticator_response(b"S=ZZ7A5589115FD0D6209F510FE9C04566932CDA56"),
            None
        );
        let lower = parse_authenticator_response(b"S=407a5589115fd0d6209f510fe9c04566932cda56");
        assert!(lower.is_some());
    }

    /// RFC 1994 CHAP-MD5, checked against an independently computed MD5 of the concatenation.
    #[test]
    fn chap_md5() {
        let ch = [0x11u8; 16];
        let r = chap_md5_response(7, b"labpass", &ch);
        let mut buf = vec![7u8];
        buf.extend_from_slice(b"labpass");
        buf.extend_from_slice(&ch);
        assert_eq!(r, md5(&[&buf]));
        assert_ne!(r, chap_md5_response(8, b"labpass", &ch));
        // RFC 1321 test suite: MD5("abc")
        assert_eq!(
            md5(&[b"a", b"bc"]),
            h::<16>("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            chap_md5_response(b'a', b"b", b"c"),
            h::<16>("900150983cd24fb0d6963f7d28e17f72")
        );
    }

    /// RFC 2433 appendix B.2 (MS-CHAPv1): password "MyPw", challenge 102DB5DF085D3041.
    #[test]
    fn rfc2433_nt_response() {
        assert_eq!(
            *nt_password_hash("MyPw"),
            h::<16>("FC156AF7EDCD6C0EDDE3337D427F4EAC")
        );
        let ch: [u8; 8] = h("102DB5DF085D3041");
        assert_eq!(
            mschapv1_nt_response(&ch, "MyPw"),
            h::<24>("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")
        );
    }
}
