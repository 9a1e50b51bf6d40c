//! HMAC integrity (truncated, for ESP), the IKEv1 PRF (full HMAC), plain hashes and MS-CHAP DES.

use crate::alg::{HashAlg, IntegAlg};
use crate::error::CryptoError;
use cipher::KeyInit;

fn keyed<M: hmac::Mac + KeyInit>(key: &[u8]) -> M {
    <M as KeyInit>::new_from_slice(key).expect("hmac accepts keys of any length")
}
use hmac::Hmac;
use sha2::Digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Largest digest we produce (SHA-512).
const MAX_OUT: usize = 64;

/// A keyed HMAC state for one hash.
#[derive(Clone)]
enum HmacState {
    Md5(Hmac<md5::Md5>),
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha384(Hmac<sha2::Sha384>),
    Sha512(Hmac<sha2::Sha512>),
}

fn run<M: hmac::Mac + Clone>(m: &M, parts: &[&[u8]], out: &mut [u8; MAX_OUT]) {
    let mut m = m.clone();
    for p in parts {
        m.update(p);
    }
    let tag = m.finalize().into_bytes();
    out[..tag.len()].copy_from_slice(&tag);
}

impl HmacState {
    fn new(alg: HashAlg, key: &[u8]) -> Self {
        match alg {
            HashAlg::Md5 => HmacState::Md5(keyed(key)),
            HashAlg::Sha1 => HmacState::Sha1(keyed(key)),
            HashAlg::Sha256 => HmacState::Sha256(keyed(key)),
            HashAlg::Sha384 => HmacState::Sha384(keyed(key)),
            HashAlg::Sha512 => HmacState::Sha512(keyed(key)),
        }
    }

    /// Full HMAC over the concatenation of `parts`, written to the front of `out`.
    fn compute(&self, parts: &[&[u8]], out: &mut [u8; MAX_OUT]) {
        match self {
            HmacState::Md5(m) => run(m, parts, out),
            HmacState::Sha1(m) => run(m, parts, out),
            HmacState::Sha256(m) => run(m, parts, out),
            HmacState::Sha384(m) => run(m, parts, out),
            HmacState::Sha512(m) => run(m, parts, out),
        }
    }
}

/// A keyed, truncated HMAC for ESP integrity. The keyed state is prepared once; each packet clones it.
#[derive(Clone)]
pub struct Mac {
    alg: IntegAlg,
    state: HmacState,
}

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mac")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Mac {
    /// Key an integrity algorithm; `key` must be exactly `alg.key_len()` bytes (RFC 2403/2404/4868).
    pub fn new(alg: IntegAlg, key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::BadKeyLength {
                alg: alg.name(),
                expected: alg.key_len(),
                got: key.len(),
            });
        }
        Ok(Self::with_any_key(alg, key))
    }

    /// Key with any key length (HMAC allows it; used for RFC test vectors).
    fn with_any_key(alg: IntegAlg, key: &[u8]) -> Self {
        Mac {
            alg,
            state: HmacState::new(alg.hash(), key),
        }
    }

    /// The integrity algorithm.
    #[must_use]
    pub fn alg(&self) -> IntegAlg {
        self.alg
    }

    /// ICV length in bytes.
    #[must_use]
    pub fn icv_len(&self) -> usize {
        self.alg.icv_len()
    }

    /// Write the truncated HMAC of the concatenated `parts` to `out[..icv_len]`.
    ///
    /// # Panics
    /// If `out` is shorter than [`Mac::icv_len`] (a caller bug).
    pub fn sign(&self, parts: &[&[u8]], out: &mut [u8]) {
        let mut full = [0u8; MAX_OUT];
        self.state.compute(parts, &mut full);
        let n = self.icv_len();
        out[..n].copy_from_slice(&full[..n]);
    }

    /// Check `icv` against the truncated HMAC of `parts`, in constant time. A wrong-length `icv` fails.
    #[must_use]
    pub fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        let n = self.icv_len();
        if icv.len() != n {
            return false;
        }
        let mut full = [0u8; MAX_OUT];
        self.state.compute(parts, &mut full);
        full[..n].ct_eq(icv).into()
    }
}

/// The IKEv1 pseudo-random function: full-length HMAC with a fixed key.
#[derive(Clone)]
pub struct Prf {
    alg: HashAlg,
    state: HmacState,
}

impl std::fmt::Debug for Prf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prf")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Prf {
    /// Key the PRF (any key length).
    #[must_use]
    pub fn new(alg: HashAlg, key: &[u8]) -> Self {
        Prf {
            alg,
            state: HmacState::new(alg, key),
        }
    }

    /// The hash algorithm.
    #[must_use]
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// HMAC of the concatenated `parts`, full length.
    #[must_use]
    pub fn compute(&self, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        let mut full = Zeroizing::new([0u8; MAX_OUT]);
        self.state.compute(parts, &mut full);
        Zeroizing::new(full[..self.output_len()].to_vec())
    }

    /// Output length in bytes.
    #[must_use]
    pub fn output_len(&self) -> usize {
        self.alg.output_len()
    }
}

/// One-shot PRF: HMAC-`alg`(`key`, concatenation of `parts`).
#[must_use]
pub fn prf(alg: HashAlg, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    Prf::new(alg, key).compute(parts)
}

fn digest<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = D::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

/// Hash of the concatenated `parts`.
#[must_use]
pub fn hash(alg: HashAlg, parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        HashAlg::Md5 => digest::<md5::Md5>(parts),
        HashAlg::Sha1 => digest::<sha1::Sha1>(parts),
        HashAlg::Sha256 => digest::<sha2::Sha256>(parts),
        HashAlg::Sha384 => digest::<sha2::Sha384>(parts),
        HashAlg::Sha512 => digest::<sha2::Sha512>(parts),
    }
}

/// MD4 (RFC 1320), for the MS-CHAP NT password hash.
#[must_use]
pub fn md4(data: &[u8]) -> [u8; 16] {
    md4::Md4::digest(data).into()
}

/// MD5 of the concatenated `parts` (CHAP-MD5, L2TP hidden AVPs).
#[must_use]
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = md5::Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// SHA-1 of the concatenated `parts` (MS-CHAPv2, NAT-D).
#[must_use]
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// MS-CHAP DesEncrypt (RFC 2759 section 8.6): expand a 56-bit key to 8 bytes with odd parity,
/// then DES-encrypt one block.
#[must_use]
pub fn des_encrypt_7(key7: &[u8; 7], block: &[u8; 8]) -> [u8; 8] {
    let mut key = Zeroizing::new([0u8; 8]);
    key[0] = key7[0];
    for i in 1..7 {
        key[i] = (key7[i - 1] << (8 - i)) | (key7[i] >> i);
    }
    key[7] = key7[6] << 1;
    for b in key.iter_mut() {
        let hi = *b & 0xfe;
        // Odd parity in the low bit.
        *b = hi | u8::from(hi.count_ones() % 2 == 0);
    }
    let mut out = *block;
    crate::des::Des::new(&key).encrypt_block(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    const HI: &[u8] = b"Hi There";
    const JEFE: &[u8] = b"what do ya want for nothing?";
    const BIG: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";

    #[test]
    fn rfc2202_hmac_md5_sha1() {
        let cases: [(HashAlg, Vec<u8>, Vec<u8>, &str); 8] = [
            (
                HashAlg::Md5,
                vec![0x0b; 16],
                HI.to_vec(),
                "9294727a3638bb1c13f48ef8158bfc9d",
            ),
            (
                HashAlg::Md5,
                b"Jefe".to_vec(),
                JEFE.to_vec(),
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (
                HashAlg::Md5,
                vec![0xaa; 16],
                vec![0xdd; 50],
                "56be34521d144c88dbb8c733f0e8b3f6",
            ),
            (
                HashAlg::Md5,
                vec![0xaa; 80],
                BIG.to_vec(),
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
            ),
            (
                HashAlg::Sha1,
                vec![0x0b; 20],
                HI.to_vec(),
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                HashAlg::Sha1,
                b"Jefe".to_vec(),
                JEFE.to_vec(),
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                HashAlg::Sha1,
                vec![0xaa; 20],
                vec![0xdd; 50],
                "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
            ),
            (
                HashAlg::Sha1,
                vec![0xaa; 80],
                BIG.to_vec(),
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
        ];
        for (alg, key, data, expect) in cases {
            assert_eq!(
                hex::encode(prf(alg, &key, &[&data]).as_slice()),
                expect,
                "{alg:?}"
            );
            // Split input gives the same result.
            let (a, b) = data.split_at(data.len() / 2);
            assert_eq!(
                hex::encode(Prf::new(alg, &key).compute(&[a, b]).as_slice()),
                expect
            );
        }
    }

    #[test]
    fn rfc4231_hmac_sha2() {
        let k1 = vec![0x0b; 20];
        let k6 = vec![0xaa; 131];
        let cases: [(HashAlg, &[u8], &[u8], &str); 9] = [
            (
                HashAlg::Sha256,
                &k1,
                HI,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                HashAlg::Sha384,
                &k1,
                HI,
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
            ),
            (
                HashAlg::Sha512,
                &k1,
                HI,
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
            ),
            (
                HashAlg::Sha256,
                b"Jefe",
                JEFE,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                HashAlg::Sha384,
                b"Jefe",
                JEFE,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                HashAlg::Sha512,
                b"Jefe",
                JEFE,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
            (
                HashAlg::Sha256,
                &k6,
                BIG,
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                HashAlg::Sha384,
                &k6,
                BIG,
                "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
            ),
            (
                HashAlg::Sha512,
                &k6,
                BIG,
                "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
            ),
        ];
        for (alg, key, data, expect) in cases {
            let p = Prf::new(alg, key);
            assert_eq!(p.output_len(), alg.output_len());
            assert_eq!(
                hex::encode(p.compute(&[data]).as_slice()),
                expect,
                "{alg:?}"
            );
            // The truncated ESP MAC is the prefix of the full HMAC.
            let integ = IntegAlg::ALL
                .into_iter()
                .find(|i| i.hash() == alg)
                .expect("integ");
            let m = Mac::with_any_key(integ, key);
            let mut icv = vec![0u8; m.icv_len()];
            m.sign(&[data], &mut icv);
            assert_eq!(hex::encode(&icv), expect[..2 * m.icv_len()]);
            assert!(m.verify(&[data], &icv));
        }
    }

    #[test]
    fn rfc4231_case5_truncation() {
        let key = [0x0c; 20];
        let data: &[u8] = b"Test With Truncation";
        for (integ, expect) in [
            (IntegAlg::HmacSha256_128, "a3b6167473100ee06e0c796c2955552b"),
            (IntegAlg::HmacSha384_192, "3abf34c3503b2a23a46efc619baef897"),
            (IntegAlg::HmacSha512_256, "415fad6271580a531d4179bc891d87a6"),
        ] {
            let m = Mac::with_any_key(integ, &key);
            let mut icv = [0u8; 32];
            m.sign(&[data], &mut icv);
            assert_eq!(hex::encode(&icv[..16]), expect, "{integ:?}");
        }
    }

    #[test]
    fn mac_verify_and_key_lengths() {
        for integ in IntegAlg::ALL {
            assert!(matches!(
                Mac::new(integ, &[1; 3]),
                Err(CryptoError::BadKeyLength { .. })
            ));
            let m = Mac::new(integ, &vec![9; integ.key_len()]).expect("key");
            let mut icv = vec![0u8; m.icv_len()];
            m.sign(&[b"ab", b"cd"], &mut icv);
            assert!(m.verify(&[b"abcd"], &icv));
            assert!(!m.verify(&[b"abce"], &icv));
            let mut bad = icv.clone();
            bad[m.icv_len() - 1] ^= 0x80;
            assert!(!m.verify(&[b"abcd"], &bad));
            assert!(!m.verify(&[b"abcd"], &icv[1..]));
            let mut longer = icv.clone();
            longer.push(0);
            assert!(!m.verify(&[b"abcd"], &longer));
            // Writes exactly icv_len bytes.
            let mut out = vec![0xee; m.icv_len() + 4];
            m.sign(&[b"abcd"], &mut out);
            assert_eq!(&out[m.icv_len()..], &[0xee; 4]);
            assert_eq!(format!("{m:?}"), format!("Mac {{ alg: {integ:?}, .. }}"));
        }
    }

    #[test]
    fn plain_hashes() {
        assert_eq!(
            hex::encode(md5(&[b"a", b"bc"])),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex::encode(sha1(&[b"ab", b"c"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(hash(HashAlg::Sha256, &[b"abc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for alg in HashAlg::ALL {
            assert_eq!(hash(alg, &[b"x"]).len(), alg.output_len());
        }
        assert_eq!(hash(HashAlg::Md5, &[b"abc"]), md5(&[b"abc"]));
        assert_eq!(hash(HashAlg::Sha1, &[b"abc"]), sha1(&[b"abc"]));
    }

    #[test]
    fn rfc1320_md4() {
        for (m, d) in [
            ("", "31d6cfe0d16ae931b73c59d7e0c089c0"),
            ("abc", "a448017aaf21d8525fc10ae87aa6729d"),
            ("message digest", "d9130a8164549fe818874806e1c7014b"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "d79e1c308aa5bbcdeea8ed63df412da9",
            ),
        ] {
            assert_eq!(hex::encode(md4(m.as_bytes())), d, "{m}");
        }
    }

    #[test]
    fn rfc2759_challenge_response() {
        // RFC 2759 section 9.2: ChallengeResponse from PasswordHash and Challenge.
        let mut z = [0u8; 21];
        z[..16].copy_from_slice(&h("44ebba8d5312b8d611474411f56989ae"));
        let challenge: [u8; 8] = h("d02e4386bce91226").try_into().expect("8");
        let mut resp = Vec::new();
        for k in z.chunks(7) {
            resp.extend_from_slice(&des_encrypt_7(k.try_into().expect("7"), &challenge));
        }
        assert_eq!(
            hex::encode_upper(resp),
            "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"
        );
    }

    #[test]
    fn des7_matches_expanded_des() {
        // An all-ones 56-bit key expands to bytes 0xfe|parity; DES ignores the parity bits.
        let k7 = [0xff; 7];
        let c = crate::BlockCipher::new(crate::CipherAlg::DesCbc, &[0xfe; 8]).expect("key");
        let mut b = [0x11u8; 8];
        c.encrypt_block(&mut b).expect("block");
        assert_eq!(des_encrypt_7(&k7, &[0x11; 8]), b);
    }
}
