//! Ephemeral Diffie-Hellman: MODP groups (constant-time crypto-bigint) and ECP groups 19/20 (p256/p384).

use crate::alg::DhGroup;
use crate::error::CryptoError;
use crate::primes;
use crate::rng::{Rng, RngAdapter};
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Uint, Word};
use zeroize::Zeroizing;

const WORD_BYTES: usize = Word::BITS as usize / 8;

/// The prime of a MODP group, big-endian; `None` for ECP groups.
pub(crate) fn modp_prime(group: DhGroup) -> Option<&'static [u8]> {
    Some(match group {
        DhGroup::Modp768 => &primes::MODP768,
        DhGroup::Modp1024 => &primes::MODP1024,
        DhGroup::Modp1536 => &primes::MODP1536,
        DhGroup::Modp2048 => &primes::MODP2048,
        DhGroup::Modp3072 => &primes::MODP3072,
        DhGroup::Modp4096 => &primes::MODP4096,
        DhGroup::Ecp256 | DhGroup::Ecp384 => return None,
    })
}

/// Private exponent size in bits for generated MODP keys: at least twice the group's
/// estimated security strength (RFC 3526 section 8), never below 256.
fn modp_exponent_bits(group: DhGroup) -> usize {
    match group {
        DhGroup::Modp768 | DhGroup::Modp1024 | DhGroup::Modp1536 => 256,
        DhGroup::Modp2048 => 320,
        DhGroup::Modp3072 => 384,
        _ => 512,
    }
}

/// Big-endian bytes (at most `L` words) to a `Uint<L>`.
fn uint_from_be<const L: usize>(bytes: &[u8]) -> Uint<L> {
    let mut words = [0 as Word; L];
    for (i, chunk) in bytes.rchunks(WORD_BYTES).enumerate().take(L) {
        let mut w = [0u8; WORD_BYTES];
        w[WORD_BYTES - chunk.len()..].copy_from_slice(chunk);
        words[i] = Word::from_be_bytes(w);
    }
    let u = Uint::from_words(words);
    zeroize::Zeroize::zeroize(&mut words);
    u
}

/// `Uint<L>` to big-endian bytes of exactly `L * WORD_BYTES` bytes.
fn uint_to_be<const L: usize>(u: &Uint<L>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(L * WORD_BYTES));
    for w in u.as_words().iter().rev() {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out
}

/// `base ^ exp mod prime`, constant time in `exp` for a given exponent length.
/// `prime.len()` must be `L * WORD_BYTES`; the result has that length.
fn modexp_sized<const L: usize>(prime: &[u8], base: &[u8], exp: &[u8]) -> Zeroizing<Vec<u8>> {
    let p: Uint<L> = uint_from_be(prime);
    let params = DynResidueParams::new(&p);
    let b = Zeroizing::new(uint_from_be::<L>(base));
    let e = Zeroizing::new(uint_from_be::<L>(exp));
    let r = DynResidue::new(&b, params).pow_bounded_exp(&e, exp.len() * 8);
    let v = Zeroizing::new(r.retrieve());
    uint_to_be(&v)
}

fn modexp(prime: &[u8], base: &[u8], exp: &[u8]) -> Zeroizing<Vec<u8>> {
    match prime.len() * 8 {
        768 => modexp_sized::<{ 768 / Word::BITS as usize }>(prime, base, exp),
        1024 => modexp_sized::<{ 1024 / Word::BITS as usize }>(prime, base, exp),
        1536 => modexp_sized::<{ 1536 / Word::BITS as usize }>(prime, base, exp),
        2048 => modexp_sized::<{ 2048 / Word::BITS as usize }>(prime, base, exp),
        3072 => modexp_sized::<{ 3072 / Word::BITS as usize }>(prime, base, exp),
        _ => modexp_sized::<{ 4096 / Word::BITS as usize }>(prime, base, exp),
    }
}

/// Big-endian equal-length comparison: `a < b`. Public values only (not constant time).
fn be_less(a: &[u8], b: &[u8]) -> bool {
    a < b
}

enum Private {
    Modp(Zeroizing<Vec<u8>>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

/// One ephemeral Diffie-Hellman key pair. The private part is zeroized on drop and never printed.
pub struct DhKeyPair {
    group: DhGroup,
    private: Private,
    public: Vec<u8>,
}

impl std::fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhKeyPair")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Uncompressed SEC1 point (0x04 || x || y) without its tag byte.
fn strip_tag(sec1: &[u8]) -> Vec<u8> {
    sec1.get(1..).unwrap_or_default().to_vec()
}

impl DhKeyPair {
    /// Generate a fresh key pair from `rng`.
    pub fn generate(group: DhGroup, rng: &mut dyn Rng) -> Result<Self, CryptoError> {
        match group {
            DhGroup::Ecp256 => {
                let sk = p256::SecretKey::random(&mut RngAdapter(rng));
                Ok(Self::from_p256(sk))
            }
            DhGroup::Ecp384 => {
                let sk = p384::SecretKey::random(&mut RngAdapter(rng));
                Ok(Self::from_p384(sk))
            }
            _ => {
                let mut x = Zeroizing::new(vec![0u8; modp_exponent_bits(group) / 8]);
                // An all-zero exponent has probability 2^-256; retry rather than fail.
                for _ in 0..4 {
                    rng.fill(&mut x);
                    if x.iter().any(|&b| b != 0) {
                        return Self::from_private(group, &x);
                    }
                }
                Err(CryptoError::InvalidPrivateValue(
                    "random generator returned zeros",
                ))
            }
        }
    }

    /// Import a private value (big-endian): a MODP exponent of 1..=prime-length bytes, or an ECP scalar.
    pub fn from_private(group: DhGroup, private: &[u8]) -> Result<Self, CryptoError> {
        match group {
            DhGroup::Ecp256 => p256::SecretKey::from_slice(private)
                .map(Self::from_p256)
                .map_err(|_| CryptoError::InvalidPrivateValue("not a valid p-256 scalar")),
            DhGroup::Ecp384 => p384::SecretKey::from_slice(private)
                .map(Self::from_p384)
                .map_err(|_| CryptoError::InvalidPrivateValue("not a valid p-384 scalar")),
            _ => {
                let prime = modp_prime(group).ok_or(CryptoError::Unsupported("group"))?;
                if private.is_empty() || private.len() > prime.len() {
                    return Err(CryptoError::InvalidPrivateValue("exponent length"));
                }
                if private.iter().all(|&b| b == 0) {
                    return Err(CryptoError::InvalidPrivateValue("zero exponent"));
                }
                let mut g = vec![0u8; prime.len()];
                g[prime.len() - 1] = 2;
                let public = modexp(prime, &g, private);
                Ok(DhKeyPair {
                    group,
                    private: Private::Modp(Zeroizing::new(private.to_vec())),
                    public: public.to_vec(),
                })
            }
        }
    }

    fn from_p256(sk: p256::SecretKey) -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let public = strip_tag(sk.public_key().to_encoded_point(false).as_bytes());
        DhKeyPair {
            group: DhGroup::Ecp256,
            private: Private::P256(sk),
            public,
        }
    }

    fn from_p384(sk: p384::SecretKey) -> Self {
        use p384::elliptic_curve::sec1::ToEncodedPoint;
        let public = strip_tag(sk.public_key().to_encoded_point(false).as_bytes());
        DhKeyPair {
            group: DhGroup::Ecp384,
            private: Private::P384(sk),
            public,
        }
    }

    /// The group.
    #[must_use]
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value as sent in the KE payload: MODP big-endian left-padded to the prime length,
    /// ECP x || y (RFC 5903).
    #[must_use]
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// Validate `peer_public` and compute the shared secret: for MODP g^xy left-padded to the prime
    /// length, for ECP the x coordinate.
    pub fn compute_shared(&self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if peer_public.len() != self.group.public_len() {
            return Err(CryptoError::InvalidPublicValue("wrong length"));
        }
        match &self.private {
            Private::Modp(x) => {
                let prime = modp_prime(self.group).ok_or(CryptoError::Unsupported("group"))?;
                let mut one = vec![0u8; prime.len()];
                one[prime.len() - 1] = 1;
                let mut p_minus_1 = prime.to_vec();
                // Every MODP prime ends in 0xff, so p - 1 only touches the last byte.
                p_minus_1[prime.len() - 1] = prime[prime.len() - 1] - 1;
                if !be_less(&one, peer_public) || !be_less(peer_public, &p_minus_1) {
                    return Err(CryptoError::InvalidPublicValue(
                        "out of range (need 1 < y < p-1)",
                    ));
                }
                let z = modexp(prime, peer_public, x);
                if z.as_slice() <= one.as_slice() {
                    return Err(CryptoError::InvalidPublicValue("degenerate shared secret"));
                }
                Ok(z)
            }
            Private::P256(sk) => {
                let pk = p256::PublicKey::from_sec1_bytes(&sec1(peer_public))
                    .map_err(|_| CryptoError::InvalidPublicValue("not a point on p-256"))?;
                let s = p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
                Ok(Zeroizing::new(s.raw_secret_bytes().to_vec()))
            }
            Private::P384(sk) => {
                let pk = p384::PublicKey::from_sec1_bytes(&sec1(peer_public))
                    .map_err(|_| CryptoError::InvalidPublicValue("not a point on p-384"))?;
                let s = p384::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
                Ok(Zeroizing::new(s.raw_secret_bytes().to_vec()))
            }
        }
    }
}

/// x || y to an uncompressed SEC1 encoding.
fn sec1(xy: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(xy.len() + 1);
    v.push(0x04);
    v.extend_from_slice(xy);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TestRng;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    const MODP: [DhGroup; 6] = [
        DhGroup::Modp768,
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Modp4096,
    ];

    #[test]
    fn modp_prime_shape() {
        for g in MODP {
            let p = modp_prime(g).expect("modp");
            assert_eq!(p.len(), g.public_len());
            // Bit length is exactly the group size: the top 64 and bottom 64 bits are all ones.
            assert_eq!(&p[..8], &[0xff; 8], "{g:?}");
            assert_eq!(&p[p.len() - 8..], &[0xff; 8], "{g:?}");
            // Then floor(2^(n-130) * pi) starts: pi = 3.243F6A8885A308D3... in hex, shifted.
            assert_eq!(&p[8..16], &h("c90fdaa22168c234"), "{g:?}");
        }
        // Published tails (RFC 2409 section 6.2, RFC 3526 sections 3 and 5).
        let tail = |g| hex::encode_upper(&modp_prime(g).expect("modp")[g.public_len() - 16..]);
        assert_eq!(tail(DhGroup::Modp1024), "49286651ECE65381FFFFFFFFFFFFFFFF");
        assert_eq!(tail(DhGroup::Modp2048), "15728E5A8AACAA68FFFFFFFFFFFFFFFF");
        assert_eq!(tail(DhGroup::Modp4096), "4DF435C934063199FFFFFFFFFFFFFFFF");
    }

    /// Fermat test base 2 on n (odd, big-endian, length a supported size).
    fn fermat2(n: &[u8]) -> bool {
        let mut n_minus_1 = n.to_vec();
        let last = n_minus_1.len() - 1;
        n_minus_1[last] -= 1;
        let mut two = vec![0u8; n.len()];
        two[last] = 2;
        let r = modexp(n, &two, &n_minus_1);
        r[..last].iter().all(|&b| b == 0) && r[last] == 1
    }

    #[test]
    fn modp_primes_are_safe_primes() {
        // p and q = (p-1)/2 both pass a base-2 Fermat test (a wrong digit would fail it).
        for g in [
            DhGroup::Modp768,
            DhGroup::Modp1024,
            DhGroup::Modp1536,
            DhGroup::Modp2048,
        ] {
            let p = modp_prime(g).expect("modp");
            assert!(fermat2(p), "{g:?} p");
            let mut q = vec![0u8; p.len()];
            let mut carry = 0u8;
            for (i, &b) in p.iter().enumerate() {
                q[i] = (carry << 7) | (b >> 1);
                carry = b & 1;
            }
            assert!(fermat2(&q), "{g:?} q");
            let mut p2 = p.to_vec();
            p2[40] ^= 0x10;
            assert!(!fermat2(&p2), "{g:?} altered");
        }
    }

    #[test]
    fn modp_small_exponents() {
        let g = DhGroup::Modp1536;
        let k = DhKeyPair::from_private(g, &[10]).expect("key");
        let mut expect = vec![0u8; 192];
        expect[190] = 0x04; // 2^10 = 0x0400
        assert_eq!(k.public_value(), expect.as_slice());
        let mut y = vec![0u8; 192];
        y[191] = 3;
        let mut z = vec![0u8; 192];
        z[190..].copy_from_slice(&59049u16.to_be_bytes()); // 3^10
        assert_eq!(
            k.compute_shared(&y).expect("shared").as_slice(),
            z.as_slice()
        );
    }

    #[test]
    fn modp1024_known_answer() {
        // Independently computed with Python's pow(2, x, p) over the RFC 2409 group 2 prime.
        let a = DhKeyPair::from_private(
            DhGroup::Modp1024,
            &h("b9ec92a452a771dc431b096b5cfc36a5dc064fd72e0cca0b108adf3f64cbfaf3"),
        )
        .expect("key");
        assert_eq!(
            hex::encode(a.public_value()),
            "7a2b0cd3ff7b6b8df9a41110acb428054f776530a092ef3405e5f36ecb9c1d67fddb1bfd370f49e5f5b20a111d07d91c008221a961e34bb7702138e5b6a8ec399827f9e66f6bcbe301607be4957adf5d809fb99c193d9c6c6807acac2e5b751f6d02e840ed2b4210eea9e795465ee8780ace925160b5e4bf45f85b1002ce466d"
        );
        let gb = h(
            "e2c648fa910947a8ca4e4aa3a0285c645ba2376904eabcc666f76e9b40c34dabfb4d79104e29a12606a78b62844d3b18bba0eab1659ce098685a440f7d94eec9620bf08582112e7b9fab1d454e77ae29b21cbcb608f3e3b87ad13b49be8047d86d5a27938a34de981f6ce721ed8f4e62d5b2fcdfc28d09403a3f4943fe98aeab",
        );
        assert_eq!(
            hex::encode(a.compute_shared(&gb).expect("shared").as_slice()),
            "db5fce9aaac32cc60c58184831fbbd62bb8316df0fb4f685851c9e751d3d220492f965ca48571de96c76281f29a5273a1fd8992850f055dc8ea4e741834e9d2b3532b0e1a75d632cf5fd60a1ef5ce4c24d3f7c1e8dd5a38f99b78d071722be141cd5c5a8e1a4cd1172baf94133aa9d99400790b85919deffc0321352d07b9740"
        );
    }

    #[test]
    fn rfc5903_ecp256() {
        let i = DhKeyPair::from_private(
            DhGroup::Ecp256,
            &h("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"),
        )
        .expect("key");
        assert_eq!(
            hex::encode_upper(i.public_value()),
            "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C37725811805271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3"
        );
        let gr = h(
            "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF6356FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
        );
        assert_eq!(
            hex::encode_upper(i.compute_shared(&gr).expect("shared").as_slice()),
            "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE"
        );
    }

    #[test]
    fn ecp384_known_answer() {
        // Computed independently with Python cryptography (OpenSSL).
        let a = DhKeyPair::from_private(
            DhGroup::Ecp384,
            &h("900116eccfea57874686fde3b97b7879b5e3c8ae7d553dec9836e2b7835e5852078f5f8f157582e9b0b11cb0a796fed5"),
        )
        .expect("key");
        assert_eq!(
            hex::encode(a.public_value()),
            "9f701cc04fb25b224c1179624ac88a028076abc3770098454918e5a3c27b3e80b00fde736eb056e93031c7e39edfa3725742f6fada3d64631d4aaed2c742e5129a35535e28699f78148f713dcbf19412d852297ab0e129ffa90acba948324b3e"
        );
        let gb = h(
            "2c425e89770e176d0217d7edbe9e2b308ef63a7fdd35fd18d3978df2d04910c9051a5f07e817183b4dfed1989b1b9e9b60147b4dd4b5e27bb4c29b2c9334fbbdc068da2c46099af64f6d73fb29ed560853f6668bb9145fcbab666cfd53126e17",
        );
        assert_eq!(
            hex::encode(a.compute_shared(&gb).expect("shared").as_slice()),
            "a3a9bd4de7f01fa1060f4e122eb7f768e364a0cdfdfa64326c479b7334fa2e208c426a793369adfd8288850bc8c09b8c"
        );
    }

    #[test]
    fn agreement_every_group() {
        let mut rng = TestRng::new(42);
        for g in DhGroup::ALL {
            let a = DhKeyPair::generate(g, &mut rng).expect("a");
            let b = DhKeyPair::generate(g, &mut rng).expect("b");
            assert_eq!(a.group(), g);
            assert_eq!(a.public_value().len(), g.public_len());
            assert_ne!(a.public_value(), b.public_value());
            let s1 = a.compute_shared(b.public_value()).expect("ab");
            let s2 = b.compute_shared(a.public_value()).expect("ba");
            assert_eq!(s1, s2, "{g:?}");
            assert_eq!(s1.len(), g.shared_len());
            assert_eq!(
                format!("{a:?}"),
                format!("DhKeyPair {{ group: {g:?}, .. }}")
            );
        }
    }

    #[test]
    fn deterministic_generation() {
        let a = DhKeyPair::generate(DhGroup::Modp2048, &mut TestRng::new(5)).expect("a");
        let b = DhKeyPair::generate(DhGroup::Modp2048, &mut TestRng::new(5)).expect("b");
        assert_eq!(a.public_value(), b.public_value());
        let c = DhKeyPair::generate(DhGroup::Ecp256, &mut TestRng::new(5)).expect("c");
        let d = DhKeyPair::generate(DhGroup::Ecp256, &mut TestRng::new(5)).expect("d");
        assert_eq!(c.public_value(), d.public_value());
    }

    #[test]
    fn modp_rejects_bad_public_values() {
        for g in [DhGroup::Modp768, DhGroup::Modp2048] {
            let k = DhKeyPair::generate(g, &mut TestRng::new(1)).expect("key");
            let p = modp_prime(g).expect("modp").to_vec();
            let n = p.len();
            let with_last = |v: u8| {
                let mut x = vec![0u8; n];
                x[n - 1] = v;
                x
            };
            let mut p_minus_1 = p.clone();
            p_minus_1[n - 1] -= 1;
            let mut p_minus_2 = p.clone();
            p_minus_2[n - 1] -= 2;
            for bad in [
                with_last(0),
                with_last(1),
                p_minus_1,
                p.clone(),
                vec![0xff; n],
            ] {
                assert!(
                    matches!(
                        k.compute_shared(&bad),
                        Err(CryptoError::InvalidPublicValue(_))
                    ),
                    "{g:?}"
                );
            }
            let mut long = vec![0u8];
            long.extend_from_slice(k.public_value());
            assert!(k.compute_shared(&long).is_err(), "too long");
            assert!(
                k.compute_shared(&k.public_value()[1..]).is_err(),
                "too short"
            );
            assert!(k.compute_shared(&[]).is_err(), "empty");
            assert!(k.compute_shared(&with_last(2)).is_ok());
            assert!(k.compute_shared(&p_minus_2).is_ok());
        }
    }

    #[test]
    fn ecp_rejects_bad_public_values() {
        for g in [DhGroup::Ecp256, DhGroup::Ecp384] {
            let k = DhKeyPair::generate(g, &mut TestRng::new(2)).expect("key");
            let mut off = k.public_value().to_vec();
            let last = off.len() - 1;
            off[last] ^= 1;
            assert!(matches!(
                k.compute_shared(&off),
                Err(CryptoError::InvalidPublicValue(_))
            ));
            assert!(
                k.compute_shared(&vec![0u8; g.public_len()]).is_err(),
                "zero"
            );
            assert!(
                k.compute_shared(&vec![0xffu8; g.public_len()]).is_err(),
                "out of field"
            );
            assert!(k.compute_shared(&k.public_value()[1..]).is_err(), "short");
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(k.public_value());
            assert!(
                k.compute_shared(&sec1).is_err(),
                "sec1-tagged is not x || y"
            );
        }
    }

    #[test]
    fn rejects_bad_private_values() {
        assert!(DhKeyPair::from_private(DhGroup::Modp1024, &[]).is_err());
        assert!(DhKeyPair::from_private(DhGroup::Modp1024, &[0, 0]).is_err());
        assert!(DhKeyPair::from_private(DhGroup::Modp1024, &[1; 129]).is_err());
        assert!(DhKeyPair::from_private(DhGroup::Ecp256, &[0; 32]).is_err());
        assert!(DhKeyPair::from_private(DhGroup::Ecp256, &[0xff; 32]).is_err());
        assert!(DhKeyPair::from_private(DhGroup::Ecp384, &[1; 10]).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_peer_values_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                                             which in 0usize..3) {
            let g = [DhGroup::Modp768, DhGroup::Ecp256, DhGroup::Ecp384][which];
            let k = DhKeyPair::from_private(g, &[7; 32]).expect("key");
            let _ = k.compute_shared(&data);
        }

        #[test]
        fn modp768_agreement(a in proptest::collection::vec(proptest::num::u8::ANY, 1..40),
                             b in proptest::collection::vec(proptest::num::u8::ANY, 1..40)) {
            proptest::prop_assume!(a.iter().any(|&x| x != 0) && b.iter().any(|&x| x != 0));
            let ka = DhKeyPair::from_private(DhGroup::Modp768, &a).expect("a");
            let kb = DhKeyPair::from_private(DhGroup::Modp768, &b).expect("b");
            let s1 = ka.compute_shared(kb.public_value());
            let s2 = kb.compute_shared(ka.public_value());
            // Tiny exponents give public values like 2 that are still valid; both sides agree.
            proptest::prop_assert_eq!(s1, s2);
        }
    }
}
