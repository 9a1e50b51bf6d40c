//! IKEv1 key derivation (RFC 2409 section 5, 5.5 and appendix B) and CBC message protection.

use l2sec_crypto::{BlockCipher, CipherAlg, HashAlg, prf};
use zeroize::Zeroizing;

use crate::Error;

/// The keys of an ISAKMP SA.
pub struct Phase1Keys {
    /// Negotiated hash (PRF = HMAC with it).
    pub hash: HashAlg,
    /// Negotiated cipher.
    pub cipher: CipherAlg,
    /// SKEYID.
    pub skeyid: Zeroizing<Vec<u8>>,
    /// SKEYID_d (derives phase 2 keys).
    pub skeyid_d: Zeroizing<Vec<u8>>,
    /// SKEYID_a (authenticates phase 2 and informational messages).
    pub skeyid_a: Zeroizing<Vec<u8>>,
    /// SKEYID_e.
    pub skeyid_e: Zeroizing<Vec<u8>>,
    /// Encryption key derived from SKEYID_e (appendix B expansion when needed).
    pub enc_key: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Phase1Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Phase1Keys")
            .field("hash", &self.hash)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

/// SKEYID for pre-shared keys: `prf(psk, Ni_b | Nr_b)`.
#[must_use]
pub fn skeyid_psk(hash: HashAlg, psk: &[u8], ni: &[u8], nr: &[u8]) -> Zeroizing<Vec<u8>> {
    prf(hash, psk, &[ni, nr])
}

/// SKEYID for signatures: `prf(Ni_b | Nr_b, g^xy)`.
#[must_use]
pub fn skeyid_sig(hash: HashAlg, ni: &[u8], nr: &[u8], gxy: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf(hash, &key, &[gxy])
}

impl Phase1Keys {
    /// Derives SKEYID_d/_a/_e and the encryption key from SKEYID.
    #[must_use]
    pub fn derive(
        hash: HashAlg,
        cipher: CipherAlg,
        skeyid: Zeroizing<Vec<u8>>,
        gxy: &[u8],
        cky_i: &[u8; 8],
        cky_r: &[u8; 8],
    ) -> Self {
        let skeyid_d = prf(hash, &skeyid, &[gxy, cky_i, cky_r, &[0]]);
        let skeyid_a = prf(hash, &skeyid, &[&skeyid_d, gxy, cky_i, cky_r, &[1]]);
        let skeyid_e = prf(hash, &skeyid, &[&skeyid_a, gxy, cky_i, cky_r, &[2]]);
        let enc_key = expand_key(hash, &skeyid_e, cipher.key_len());
        Self {
            hash,
            cipher,
            skeyid,
            skeyid_d,
            skeyid_a,
            skeyid_e,
            enc_key,
        }
    }

    /// `prf(SKEYID_a, parts...)`: the HASH of phase 2 and informational messages.
    #[must_use]
    pub fn auth_hash(&self, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        prf(self.hash, &self.skeyid_a, parts)
    }
}

/// RFC 2409 appendix B: `Ka = K1 | K2 | ...`, `K1 = prf(SKEYID_e, 0)`, `Kn = prf(SKEYID_e, Kn-1)`,
/// used when SKEYID_e is shorter than the key; otherwise the first `len` bytes of SKEYID_e.
#[must_use]
pub fn expand_key(hash: HashAlg, skeyid_e: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    if skeyid_e.len() >= len {
        return Zeroizing::new(skeyid_e[..len].to_vec());
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + 64));
    let mut k = prf(hash, skeyid_e, &[&[0]]);
    out.extend_from_slice(&k);
    while out.len() < len {
        k = prf(hash, skeyid_e, &[&k]);
        out.extend_from_slice(&k);
    }
    out.truncate(len);
    out
}

/// Initial phase 1 IV: `hash(g^xi | g^xr)` truncated to the block size.
#[must_use]
pub fn initial_iv(hash: HashAlg, gxi: &[u8], gxr: &[u8], block_len: usize) -> Vec<u8> {
    let mut h = l2sec_crypto::hash(hash, &[gxi, gxr]);
    h.truncate(block_len);
    h
}

/// IV of a phase 2 or informational exchange: `hash(last phase 1 block | M-ID)` truncated.
#[must_use]
pub fn exchange_iv(hash: HashAlg, phase1_iv: &[u8], message_id: u32, block_len: usize) -> Vec<u8> {
    let mut h = l2sec_crypto::hash(hash, &[phase1_iv, &message_id.to_be_bytes()]);
    h.truncate(block_len);
    h
}

/// Phase 2 KEYMAT (RFC 2409 5.5): `K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)`,
/// `Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)`, truncated to `len`.
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn keymat(
    hash: HashAlg,
    skeyid_d: &[u8],
    gxy: Option<&[u8]>,
    protocol: u8,
    spi: u32,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let g = gxy.unwrap_or(&[]);
    let spi = spi.to_be_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(len + 64));
    let mut k = prf(hash, skeyid_d, &[g, &[protocol], &spi, ni, nr]);
    out.extend_from_slice(&k);
    while out.len() < len {
        k = prf(hash, skeyid_d, &[&k, g, &[protocol], &spi, ni, nr]);
        out.extend_from_slice(&k);
    }
    out.truncate(len);
    out
}

/// Encrypts a payload chain: zero padding to the block size, CBC. Returns the ciphertext;
/// the next IV is its last block.
///
/// # Errors
/// When the cipher cannot be built (wrong key length).
pub fn encrypt(cipher: CipherAlg, key: &[u8], iv: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
    let c = BlockCipher::new(cipher, key)?;
    let bl = c.block_len();
    let mut data = plain.to_vec();
    let pad = (bl - data.len() % bl) % bl;
    data.resize(data.len() + pad, 0);
    c.encrypt_cbc(iv, &mut data)?;
    Ok(data)
}

/// Decrypts an encrypted message body in CBC mode.
///
/// # Errors
/// [`Error::Malformed`] when the length is not a multiple of the block size.
pub fn decrypt(
    cipher: CipherAlg,
    key: &[u8],
    iv: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let c = BlockCipher::new(cipher, key)?;
    let bl = c.block_len();
    if ct.is_empty() || ct.len() % bl != 0 {
        return Err(Error::Malformed(
            "encrypted body is not a whole number of blocks",
        ));
    }
    let mut data = Zeroizing::new(ct.to_vec());
    c.decrypt_cbc(iv, &mut data)?;
    Ok(data)
}

/// The last cipher block of `ct` (the next CBC IV).
#[must_use]
pub fn last_block(ct: &[u8], block_len: usize) -> Vec<u8> {
    ct[ct.len().saturating_sub(block_len)..].to_vec()
}

#[cfg(test)]
mod tests {
    //! Vectors computed with the independent Python script `tests/data/ikev1_vectors.py`
    //! (Python's `hmac`/`hashlib`), which follows RFC 2409 from the text.
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    struct Inputs {
        ni: Vec<u8>,
        nr: Vec<u8>,
        gxy: Vec<u8>,
        cky_i: [u8; 8],
        cky_r: [u8; 8],
    }

    fn inputs() -> Inputs {
        Inputs {
            ni: (0u8..16).collect(),
            nr: (16u8..48).collect(),
            gxy: (0..128).map(|i: u32| (i * 7 + 3) as u8).collect(),
            cky_i: [1, 2, 3, 4, 5, 6, 7, 8],
            cky_r: [0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18],
        }
    }

    include!("../tests/data/ikev1_vectors.rs");

    #[test]
    fn psk_sha1_3des_vectors() {
        let i = inputs();
        let skeyid = skeyid_psk(HashAlg::Sha1, b"labpsk123", &i.ni, &i.nr);
        assert_eq!(*skeyid, h(PSK_SHA1_SKEYID));
        let k = Phase1Keys::derive(
            HashAlg::Sha1,
            CipherAlg::TripleDesCbc,
            skeyid,
            &i.gxy,
            &i.cky_i,
            &i.cky_r,
        );
        assert_eq!(*k.skeyid_d, h(PSK_SHA1_SKEYID_D));
        assert_eq!(*k.skeyid_a, h(PSK_SHA1_SKEYID_A));
        assert_eq!(*k.skeyid_e, h(PSK_SHA1_SKEYID_E));
        // 3DES needs 24 bytes > 20: appendix B expansion.
        assert_eq!(*k.enc_key, h(PSK_SHA1_3DES_KEY));
        let km = keymat(
            HashAlg::Sha1,
            &k.skeyid_d,
            None,
            3,
            0x1122_3344,
            &i.ni,
            &i.nr,
            56,
        );
        assert_eq!(*km, h(PSK_SHA1_KEYMAT_56));
        let km = keymat(
            HashAlg::Sha1,
            &k.skeyid_d,
            Some(&i.gxy),
            3,
            0x1122_3344,
            &i.ni,
            &i.nr,
            56,
        );
        assert_eq!(*km, h(PSK_SHA1_KEYMAT_PFS_56));
    }

    #[test]
    fn sig_sha256_aes256_vectors() {
        let i = inputs();
        let skeyid = skeyid_sig(HashAlg::Sha256, &i.ni, &i.nr, &i.gxy);
        assert_eq!(*skeyid, h(SIG_SHA256_SKEYID));
        let k = Phase1Keys::derive(
            HashAlg::Sha256,
            CipherAlg::AesCbc { key_bits: 256 },
            skeyid,
            &i.gxy,
            &i.cky_i,
            &i.cky_r,
        );
        assert_eq!(*k.skeyid_d, h(SIG_SHA256_SKEYID_D));
        assert_eq!(*k.skeyid_a, h(SIG_SHA256_SKEYID_A));
        assert_eq!(*k.skeyid_e, h(SIG_SHA256_SKEYID_E));
        assert_eq!(*k.enc_key, h(SIG_SHA256_SKEYID_E));
        let km = keymat(
            HashAlg::Sha256,
            &k.skeyid_d,
            None,
            3,
            0xdead_beef,
            &i.ni,
            &i.nr,
            72,
        );
        assert_eq!(*km, h(SIG_SHA256_KEYMAT_72));
        let iv = initial_iv(HashAlg::Sha256, &i.gxy[..64], &i.gxy[64..], 16);
        assert_eq!(iv, h(SIG_SHA256_IV0));
        let iv2 = exchange_iv(HashAlg::Sha256, &iv, 0x0102_0304, 16);
        assert_eq!(iv2, h(SIG_SHA256_QM_IV));
    }

    #[test]
    fn md5_expansion_for_aes256() {
        let i = inputs();
        let skeyid = skeyid_psk(HashAlg::Md5, b"k", &i.ni, &i.nr);
        let k = Phase1Keys::derive(
            HashAlg::Md5,
            CipherAlg::AesCbc { key_bits: 256 },
            skeyid,
            &i.gxy,
            &i.cky_i,
            &i.cky_r,
        );
        assert_eq!(*k.enc_key, h(PSK_MD5_AES256_KEY));
    }

    #[test]
    fn encrypt_decrypt_round_trip() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let alg = CipherAlg::AesCbc { key_bits: 128 };
        let ct = encrypt(alg, &key, &iv, b"hello, isakmp").unwrap();
        assert_eq!(ct.len(), 16);
        let pt = decrypt(alg, &key, &iv, &ct).unwrap();
        assert_eq!(&pt[..13], b"hello, isakmp");
        assert!(pt[13..].iter().all(|b| *b == 0));
        assert!(decrypt(alg, &key, &iv, &ct[..15]).is_err());
        assert_eq!(last_block(&ct, 16), ct);
    }
}
