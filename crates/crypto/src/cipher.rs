//! CBC block ciphers (AES: RustCrypto aes/cbc; DES and 3DES: our own [`crate::des`]) and
//! AES-GCM-16 for ESP (ring, RFC 4106).

use crate::alg::CipherAlg;
use crate::error::CryptoError;
use cipher::block_padding::NoPadding;
use cipher::generic_array::GenericArray;
use cipher::{
    BlockCipher as RcBlockCipher, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut,
    InnerIvInit, KeyInit,
};
use zeroize::Zeroize;

#[derive(Clone)]
enum BlockInner {
    Des(crate::des::Des),
    TripleDes(crate::des::TripleDes),
    Aes128(aes::Aes128),
    Aes192(aes::Aes192),
    Aes256(aes::Aes256),
}

/// A keyed CBC block cipher: DES, 3DES or AES-CBC. Key schedules are zeroized on drop.
///
/// DES and 3DES use table lookups that are not constant-time with respect to cache timing
/// (see the `des` module); they are legacy ciphers only used when the policy opts in.
#[derive(Clone)]
pub struct BlockCipher {
    alg: CipherAlg,
    inner: BlockInner,
}

impl std::fmt::Debug for BlockCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCipher")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn bad_key(alg: CipherAlg, got: usize) -> CryptoError {
    CryptoError::BadKeyLength {
        alg: alg.name(),
        expected: alg.key_len(),
        got,
    }
}

fn cbc_encrypt<C>(c: &C, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError>
where
    C: BlockEncryptMut + RcBlockCipher + Clone,
{
    let enc = cbc::Encryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .map_err(|_| CryptoError::BadLength("iv length must equal the block length"))?;
    let len = data.len();
    enc.encrypt_padded_mut::<NoPadding>(data, len)
        .map_err(|_| {
            CryptoError::BadLength("data length must be a multiple of the block length")
        })?;
    Ok(())
}

/// One message of [`BlockCipher::encrypt_cbc_many`]: `data` (a multiple of the block length)
/// is encrypted in place, chained from `iv` (one block).
#[derive(Debug)]
pub struct CbcJob<'a> {
    /// The initialisation vector.
    pub iv: &'a [u8],
    /// The message, encrypted in place.
    pub data: &'a mut [u8],
}

/// Messages whose blocks [`BlockCipher::encrypt_cbc_many`] puts through the cipher side by side
/// (the AES-NI backend pipelines 8): callers batching for it gain nothing beyond this many.
pub const CBC_LANES: usize = 8;

/// CBC encryption of several messages at once. Within one message CBC is serial (each block
/// needs the previous ciphertext), so a lone message waits on the cipher's latency; taking
/// block `i` of up to [`CBC_LANES`] messages together lets the cipher work on all of them at
/// once.
fn cbc_encrypt_many<C>(c: &C, jobs: &mut [CbcJob<'_>]) -> Result<(), CryptoError>
where
    C: BlockEncrypt + RcBlockCipher<BlockSize = cipher::consts::U16>,
{
    for j in jobs.iter() {
        if j.iv.len() != 16 {
            return Err(CryptoError::BadLength(
                "iv length must equal the block length",
            ));
        }
        if j.data.len() % 16 != 0 {
            return Err(CryptoError::BadLength(
                "data length must be a multiple of the block length",
            ));
        }
    }
    for group in jobs.chunks_mut(CBC_LANES) {
        let mut chain = [GenericArray::<u8, cipher::consts::U16>::default(); CBC_LANES];
        for (ch, j) in chain.iter_mut().zip(group.iter()) {
            ch.copy_from_slice(j.iv);
        }
        let blocks = group.iter().map(|j| j.data.len() / 16).max().unwrap_or(0);
        let mut lanes = [GenericArray::<u8, cipher::consts::U16>::default(); CBC_LANES];
        let mut owner = [0usize; CBC_LANES];
        for b in 0..blocks {
            let at = b * 16..b * 16 + 16;
            let mut n = 0;
            for (k, j) in group.iter().enumerate() {
                let Some(pt) = j.data.get(at.clone()) else {
                    continue;
                };
                for ((x, p), c) in lanes[n].iter_mut().zip(pt).zip(chain[k].iter()) {
                    *x = p ^ c;
                }
                owner[n] = k;
                n += 1;
            }
            c.encrypt_blocks(&mut lanes[..n]);
            for (ct, &k) in lanes[..n].iter().zip(&owner[..n]) {
                group[k].data[at.clone()].copy_from_slice(ct);
                chain[k] = *ct;
            }
        }
        chain.zeroize();
        lanes.zeroize();
    }
    Ok(())
}

fn cbc_decrypt<C>(c: &C, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError>
where
    C: BlockDecryptMut + RcBlockCipher + Clone,
{
    let dec = cbc::Decryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .map_err(|_| CryptoError::BadLength("iv length must equal the block length"))?;
    dec.decrypt_padded_mut::<NoPadding>(data).map_err(|_| {
        CryptoError::BadLength("data length must be a multiple of the block length")
    })?;
    Ok(())
}

/// The 8-byte IV of DES/3DES CBC, or the error the AES path gives for a wrong length.
fn des_iv(iv: &[u8], data: &[u8]) -> Result<[u8; 8], CryptoError> {
    let iv: [u8; 8] = iv
        .try_into()
        .map_err(|_| CryptoError::BadLength("iv length must equal the block length"))?;
    if data.len() % 8 != 0 {
        return Err(CryptoError::BadLength(
            "data length must be a multiple of the block length",
        ));
    }
    Ok(iv)
}

/// An 8-byte block view for the DES ECB paths (length checked by the caller).
fn block8(block: &mut [u8]) -> Result<&mut [u8; 8], CryptoError> {
    block
        .try_into()
        .map_err(|_| CryptoError::BadLength("block length"))
}

fn ecb_encrypt<C: BlockEncrypt>(c: &C, block: &mut [u8]) {
    c.encrypt_block(GenericArray::from_mut_slice(block));
}

fn ecb_decrypt<C: BlockDecrypt>(c: &C, block: &mut [u8]) {
    c.decrypt_block(GenericArray::from_mut_slice(block));
}

impl BlockCipher {
    /// Key a CBC cipher. Errors for GCM ([`CryptoError::Unsupported`]) or a wrong key length.
    pub fn new(alg: CipherAlg, key: &[u8]) -> Result<Self, CryptoError> {
        if alg.is_aead() {
            return Err(CryptoError::Unsupported(
                "aead cipher used as a cbc block cipher",
            ));
        }
        if key.len() != alg.key_len() {
            return Err(bad_key(alg, key.len()));
        }
        let err = |_| bad_key(alg, key.len());
        let inner = match alg {
            CipherAlg::DesCbc => {
                let k: &[u8; 8] = key.try_into().map_err(|_| bad_key(alg, key.len()))?;
                BlockInner::Des(crate::des::Des::new(k))
            }
            CipherAlg::TripleDesCbc => {
                let k: &[u8; 24] = key.try_into().map_err(|_| bad_key(alg, key.len()))?;
                BlockInner::TripleDes(crate::des::TripleDes::new(k))
            }
            CipherAlg::AesCbc { key_bits: 128 } => {
                BlockInner::Aes128(aes::Aes128::new_from_slice(key).map_err(err)?)
            }
            CipherAlg::AesCbc { key_bits: 192 } => {
                BlockInner::Aes192(aes::Aes192::new_from_slice(key).map_err(err)?)
            }
            CipherAlg::AesCbc { key_bits: 256 } => {
                BlockInner::Aes256(aes::Aes256::new_from_slice(key).map_err(err)?)
            }
            CipherAlg::AesCbc { .. } | CipherAlg::AesGcm16 { .. } => {
                return Err(CryptoError::Unsupported("aes key size"));
            }
        };
        Ok(BlockCipher { alg, inner })
    }

    /// The algorithm this cipher was keyed for.
    #[must_use]
    pub fn alg(&self) -> CipherAlg {
        self.alg
    }

    /// Block length in bytes (8 or 16).
    #[must_use]
    pub fn block_len(&self) -> usize {
        self.alg.block_len()
    }

    /// CBC-encrypt `data` in place; `iv` is one block and `data.len()` a multiple of the block length.
    pub fn encrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        match &self.inner {
            BlockInner::Des(c) => {
                c.encrypt_cbc(&des_iv(iv, data)?, data);
                Ok(())
            }
            BlockInner::TripleDes(c) => {
                c.encrypt_cbc(&des_iv(iv, data)?, data);
                Ok(())
            }
            BlockInner::Aes128(c) => cbc_encrypt(c, iv, data),
            BlockInner::Aes192(c) => cbc_encrypt(c, iv, data),
            BlockInner::Aes256(c) => cbc_encrypt(c, iv, data),
        }
    }

    /// CBC-encrypts each job's data in place from its IV: the same result as
    /// [`BlockCipher::encrypt_cbc`] on each in turn, but several times faster for AES on many
    /// messages, whose blocks go through the cipher side by side. DES and 3DES take them one
    /// by one. Nothing is encrypted when a job has a wrong length.
    pub fn encrypt_cbc_many(&self, jobs: &mut [CbcJob<'_>]) -> Result<(), CryptoError> {
        match &self.inner {
            BlockInner::Aes128(c) => cbc_encrypt_many(c, jobs),
            BlockInner::Aes192(c) => cbc_encrypt_many(c, jobs),
            BlockInner::Aes256(c) => cbc_encrypt_many(c, jobs),
            BlockInner::Des(_) | BlockInner::TripleDes(_) => {
                let bl = self.alg.block_len();
                if jobs
                    .iter()
                    .any(|j| j.iv.len() != bl || j.data.len() % bl != 0)
                {
                    return Err(CryptoError::BadLength(
                        "iv and data lengths must fit the block length",
                    ));
                }
                jobs.iter_mut()
                    .try_for_each(|j| self.encrypt_cbc(j.iv, j.data))
            }
        }
    }

    /// CBC-decrypt `data` in place; `iv` is one block and `data.len()` a multiple of the block length.
    pub fn decrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        match &self.inner {
            BlockInner::Des(c) => {
                c.decrypt_cbc(&des_iv(iv, data)?, data);
                Ok(())
            }
            BlockInner::TripleDes(c) => {
                c.decrypt_cbc(&des_iv(iv, data)?, data);
                Ok(())
            }
            BlockInner::Aes128(c) => cbc_decrypt(c, iv, data),
            BlockInner::Aes192(c) => cbc_decrypt(c, iv, data),
            BlockInner::Aes256(c) => cbc_decrypt(c, iv, data),
        }
    }

    /// Encrypt exactly one block in place (ECB), e.g. to derive IVs.
    pub fn encrypt_block(&self, block: &mut [u8]) -> Result<(), CryptoError> {
        if block.len() != self.block_len() {
            return Err(CryptoError::BadLength("block length"));
        }
        match &self.inner {
            BlockInner::Des(c) => c.encrypt_block(block8(block)?),
            BlockInner::TripleDes(c) => c.encrypt_block(block8(block)?),
            BlockInner::Aes128(c) => ecb_encrypt(c, block),
            BlockInner::Aes192(c) => ecb_encrypt(c, block),
            BlockInner::Aes256(c) => ecb_encrypt(c, block),
        }
        Ok(())
    }

    /// Decrypt exactly one block in place (ECB).
    pub fn decrypt_block(&self, block: &mut [u8]) -> Result<(), CryptoError> {
        if block.len() != self.block_len() {
            return Err(CryptoError::BadLength("block length"));
        }
        match &self.inner {
            BlockInner::Des(c) => c.decrypt_block(block8(block)?),
            BlockInner::TripleDes(c) => c.decrypt_block(block8(block)?),
            BlockInner::Aes128(c) => ecb_decrypt(c, block),
            BlockInner::Aes192(c) => ecb_decrypt(c, block),
            BlockInner::Aes256(c) => ecb_decrypt(c, block),
        }
        Ok(())
    }
}

/// AES-GCM with a 16-byte tag as used by ESP (RFC 4106): nonce = 4-byte salt || 8-byte explicit IV.
pub struct Aead {
    alg: CipherAlg,
    key: ring::aead::LessSafeKey,
    salt: [u8; 4],
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aead")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Drop for Aead {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl Aead {
    /// Key AES-GCM-16 from `keymat` = key || 4-byte salt. AES-192-GCM is [`CryptoError::Unsupported`].
    pub fn new(alg: CipherAlg, keymat: &[u8]) -> Result<Self, CryptoError> {
        let ring_alg = match alg {
            CipherAlg::AesGcm16 { key_bits: 128 } => &ring::aead::AES_128_GCM,
            CipherAlg::AesGcm16 { key_bits: 256 } => &ring::aead::AES_256_GCM,
            CipherAlg::AesGcm16 { .. } => {
                return Err(CryptoError::Unsupported(
                    "aes-gcm key size (only 128 and 256)",
                ));
            }
            _ => return Err(CryptoError::Unsupported("cbc cipher used as an aead")),
        };
        if keymat.len() != alg.keymat_len() {
            return Err(CryptoError::BadKeyLength {
                alg: alg.name(),
                expected: alg.keymat_len(),
                got: keymat.len(),
            });
        }
        let (key, salt) = keymat.split_at(alg.key_len());
        let unbound =
            ring::aead::UnboundKey::new(ring_alg, key).map_err(|_| CryptoError::BadKeyLength {
                alg: alg.name(),
                expected: alg.key_len(),
                got: key.len(),
            })?;
        let mut s = [0u8; 4];
        s.copy_from_slice(salt);
        Ok(Aead {
            alg,
            key: ring::aead::LessSafeKey::new(unbound),
            salt: s,
        })
    }

    /// The algorithm this AEAD was keyed for.
    #[must_use]
    pub fn alg(&self) -> CipherAlg {
        self.alg
    }

    fn nonce(&self, iv: &[u8; 8]) -> ring::aead::Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(iv);
        ring::aead::Nonce::assume_unique_for_key(n)
    }

    /// Encrypt `data` in place and return the 16-byte tag. `iv` must never repeat under one key.
    pub fn seal_in_place(
        &self,
        iv: &[u8; 8],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(iv), ring::aead::Aad::from(aad), data)
            .map_err(|_| CryptoError::BadLength("aead input too long"))?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Verify `tag` and decrypt `data` in place; on failure `data` must be discarded.
    pub fn open_in_place(
        &self,
        iv: &[u8; 8],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let tag = ring::aead::Tag::try_from(tag)
            .map_err(|_| CryptoError::BadLength("aead tag must be 16 bytes"))?;
        self.key
            .open_in_place_separate_tag(self.nonce(iv), ring::aead::Aad::from(aad), tag, data, 0..)
            .map_err(|_| CryptoError::AuthFailed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    proptest::proptest! {
        /// Many messages at once (ragged lengths, any count) give exactly what one at a time
        /// gives, for every CBC cipher.
        #[test]
        fn cbc_many_equals_one_by_one(
            alg in proptest::sample::select(vec![
                CipherAlg::AesCbc { key_bits: 128 },
                CipherAlg::AesCbc { key_bits: 192 },
                CipherAlg::AesCbc { key_bits: 256 },
                CipherAlg::TripleDesCbc,
                CipherAlg::DesCbc,
            ]),
            key in proptest::collection::vec(proptest::num::u8::ANY, 32),
            msgs in proptest::collection::vec((proptest::num::u8::ANY, 0usize..40), 0..20),
        ) {
            let c = BlockCipher::new(alg, &key[..alg.keymat_len()]).unwrap();
            let bl = alg.block_len();
            let ivs: Vec<Vec<u8>> = msgs.iter().map(|&(s, _)| vec![s.wrapping_mul(7); bl]).collect();
            let mut one: Vec<Vec<u8>> = msgs
                .iter()
                .map(|&(s, blocks)| (0..blocks * bl).map(|i| s ^ i as u8).collect())
                .collect();
            let mut many = one.clone();
            for (iv, m) in ivs.iter().zip(one.iter_mut()) {
                c.encrypt_cbc(iv, m).unwrap();
            }
            let mut jobs: Vec<CbcJob<'_>> = ivs
                .iter()
                .zip(many.iter_mut())
                .map(|(iv, data)| CbcJob { iv, data })
                .collect();
            c.encrypt_cbc_many(&mut jobs).unwrap();
            proptest::prop_assert_eq!(many, one);
        }
    }

    #[test]
    fn cbc_many_refuses_bad_lengths_and_touches_nothing() {
        let c = BlockCipher::new(CipherAlg::AesCbc { key_bits: 128 }, &[1; 16]).unwrap();
        let (mut a, mut b) = (vec![0u8; 32], vec![0u8; 20]);
        let mut jobs = [
            CbcJob {
                iv: &[0; 16],
                data: &mut a,
            },
            CbcJob {
                iv: &[0; 16],
                data: &mut b,
            },
        ];
        assert!(c.encrypt_cbc_many(&mut jobs).is_err());
        assert_eq!(a, [0; 32], "nothing encrypted");
        let mut a = vec![0u8; 32];
        let mut jobs = [CbcJob {
            iv: &[0; 8],
            data: &mut a,
        }];
        assert!(c.encrypt_cbc_many(&mut jobs).is_err());
    }

    fn check_cbc(alg: CipherAlg, key: &str, iv: &str, pt: &[u8], ct: &str) {
        let c = BlockCipher::new(alg, &h(key)).expect("key");
        let mut buf = pt.to_vec();
        c.encrypt_cbc(&h(iv), &mut buf).expect("encrypt");
        assert_eq!(hex::encode(&buf), ct, "{alg:?}");
        c.decrypt_cbc(&h(iv), &mut buf).expect("decrypt");
        assert_eq!(buf, pt);
    }

    #[test]
    fn rfc3602_aes128_cbc() {
        let aes = CipherAlg::AesCbc { key_bits: 128 };
        check_cbc(
            aes,
            "06a9214036b8a15b512e03d534120006",
            "3dafba429d9eb430b422da802c9fac41",
            b"Single block msg",
            "e353779c1079aeb82708942dbe77181a",
        );
        let pt: Vec<u8> = (0u8..32).collect();
        check_cbc(
            aes,
            "c286696d887c9aa0611bbb3e2025a45a",
            "562e17996d093d28ddb3ba695a2e6f58",
            &pt,
            "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
        );
    }

    #[test]
    fn sp800_38a_aes192_aes256_cbc() {
        let pt = h("6bc1bee22e409f96e93d7e117393172a");
        let iv = "000102030405060708090a0b0c0d0e0f";
        check_cbc(
            CipherAlg::AesCbc { key_bits: 192 },
            "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
            iv,
            &pt,
            "4f021db243bc633d7178183a9fa071e8",
        );
        check_cbc(
            CipherAlg::AesCbc { key_bits: 256 },
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            iv,
            &pt,
            "f58c4c04d6e5f1ba779eabfb5f7bfbd6",
        );
    }

    #[test]
    fn des_and_3des_vectors() {
        // Classic DES example: key 133457799BBCDFF1, plaintext 0123456789ABCDEF.
        let c = BlockCipher::new(CipherAlg::DesCbc, &h("133457799bbcdff1")).expect("key");
        let mut b = h("0123456789abcdef");
        c.encrypt_block(&mut b).expect("block");
        assert_eq!(hex::encode(&b), "85e813540f0ab405");
        c.decrypt_block(&mut b).expect("block");
        assert_eq!(hex::encode(&b), "0123456789abcdef");
        // CBC with a zero IV on one block equals ECB.
        let mut b = h("0123456789abcdef");
        c.encrypt_cbc(&[0; 8], &mut b).expect("cbc");
        assert_eq!(hex::encode(&b), "85e813540f0ab405");
        // NIST SP 800-67 TDEA example (ECB, three blocks).
        let t = BlockCipher::new(
            CipherAlg::TripleDesCbc,
            &h("0123456789abcdef23456789abcdef01456789abcdef0123"),
        )
        .expect("key");
        let mut buf = b"The qufck brown fox jump".to_vec();
        for blk in buf.chunks_mut(8) {
            t.encrypt_block(blk).expect("block");
        }
        assert_eq!(
            hex::encode(&buf),
            "a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900"
        );
    }

    #[test]
    fn cbc_chains_like_ecb_xor() {
        // CBC built by hand from single-block ECB must equal the CBC mode.
        for alg in [CipherAlg::TripleDesCbc, CipherAlg::AesCbc { key_bits: 256 }] {
            let c = BlockCipher::new(alg, &vec![0x5a; alg.key_len()]).expect("key");
            let bl = c.block_len();
            let iv: Vec<u8> = (0..bl as u8).collect();
            let pt: Vec<u8> = (0..(bl * 5) as u8).map(|x| x.wrapping_mul(31)).collect();
            let mut prev = iv.clone();
            let mut manual = Vec::new();
            for blk in pt.chunks(bl) {
                let mut x: Vec<u8> = blk.iter().zip(&prev).map(|(a, b)| a ^ b).collect();
                c.encrypt_block(&mut x).expect("block");
                manual.extend_from_slice(&x);
                prev = x;
            }
            let mut buf = pt.clone();
            c.encrypt_cbc(&iv, &mut buf).expect("cbc");
            assert_eq!(buf, manual);
        }
    }

    #[test]
    fn cbc_rejects_bad_inputs() {
        let aes = CipherAlg::AesCbc { key_bits: 128 };
        assert!(matches!(
            BlockCipher::new(aes, &[0; 15]),
            Err(CryptoError::BadKeyLength {
                expected: 16,
                got: 15,
                ..
            })
        ));
        assert!(matches!(
            BlockCipher::new(CipherAlg::AesGcm16 { key_bits: 128 }, &[0; 16]),
            Err(CryptoError::Unsupported(_))
        ));
        assert!(matches!(
            BlockCipher::new(CipherAlg::AesCbc { key_bits: 100 }, &[0; 12]),
            Err(CryptoError::Unsupported(_))
        ));
        let c = BlockCipher::new(aes, &[0; 16]).expect("key");
        let mut odd = [0u8; 17];
        assert!(matches!(
            c.encrypt_cbc(&[0; 16], &mut odd),
            Err(CryptoError::BadLength(_))
        ));
        assert!(matches!(
            c.decrypt_cbc(&[0; 16], &mut odd),
            Err(CryptoError::BadLength(_))
        ));
        let mut ok = [0u8; 32];
        assert!(matches!(
            c.encrypt_cbc(&[0; 8], &mut ok),
            Err(CryptoError::BadLength(_))
        ));
        assert!(matches!(
            c.encrypt_block(&mut ok),
            Err(CryptoError::BadLength(_))
        ));
        let mut empty = [0u8; 0];
        assert!(c.encrypt_cbc(&[0; 16], &mut empty).is_ok());
        assert_eq!(
            format!("{c:?}"),
            "BlockCipher { alg: AesCbc { key_bits: 128 }, .. }"
        );
    }

    // GCM spec (McGrew-Viega) test cases 4 (AES-128) and 16 (AES-256): the 12-byte nonce
    // cafebabefacedbaddecaf888 split as RFC 4106 salt cafebabe || IV facedbaddecaf888.
    const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const GCM_A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

    fn check_gcm(bits: u16, key: &str, ct: &str, tag: &str) {
        let alg = CipherAlg::AesGcm16 { key_bits: bits };
        let keymat = h(&format!("{key}cafebabe"));
        let a = Aead::new(alg, &keymat).expect("key");
        let iv: [u8; 8] = h("facedbaddecaf888").try_into().expect("8");
        let mut buf = h(GCM_P);
        let t = a.seal_in_place(&iv, &h(GCM_A), &mut buf).expect("seal");
        assert_eq!(hex::encode(&buf), ct);
        assert_eq!(hex::encode(t), tag);
        a.open_in_place(&iv, &h(GCM_A), &mut buf, &t).expect("open");
        assert_eq!(hex::encode(&buf), GCM_P);
    }

    #[test]
    fn gcm_spec_vectors() {
        check_gcm(
            128,
            "feffe9928665731c6d6a8f9467308308",
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            "5bc94fbc3221a5db94fae95ae7121a47",
        );
        check_gcm(
            256,
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        );
    }

    #[test]
    fn gcm_rejects_tampering_and_bad_inputs() {
        let alg = CipherAlg::AesGcm16 { key_bits: 128 };
        let a = Aead::new(alg, &[7; 20]).expect("key");
        let iv = [1u8; 8];
        let mut buf = b"payload".to_vec();
        let tag = a.seal_in_place(&iv, b"hdr", &mut buf).expect("seal");
        let mut bad = buf.clone();
        bad[0] ^= 1;
        assert_eq!(
            a.open_in_place(&iv, b"hdr", &mut bad, &tag),
            Err(CryptoError::AuthFailed)
        );
        let mut c = buf.clone();
        assert_eq!(
            a.open_in_place(&iv, b"hdX", &mut c, &tag),
            Err(CryptoError::AuthFailed)
        );
        let mut c = buf.clone();
        assert_eq!(
            a.open_in_place(&[2; 8], b"hdr", &mut c, &tag),
            Err(CryptoError::AuthFailed)
        );
        let mut c = buf.clone();
        assert!(matches!(
            a.open_in_place(&iv, b"hdr", &mut c, &tag[..12]),
            Err(CryptoError::BadLength(_))
        ));
        assert!(matches!(
            Aead::new(alg, &[0; 16]),
            Err(CryptoError::BadKeyLength { expected: 20, .. })
        ));
        assert!(matches!(
            Aead::new(CipherAlg::AesGcm16 { key_bits: 192 }, &[0; 28]),
            Err(CryptoError::Unsupported(_))
        ));
        assert!(matches!(
            Aead::new(CipherAlg::TripleDesCbc, &[0; 24]),
            Err(CryptoError::Unsupported(_))
        ));
        // Different salt, same key: different ciphertext.
        let b = Aead::new(
            alg,
            &[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0],
        )
        .expect("key");
        let mut other = b"payload".to_vec();
        b.seal_in_place(&iv, b"hdr", &mut other).expect("seal");
        assert_ne!(other, buf);
    }

    proptest::proptest! {
        #[test]
        fn cbc_roundtrip(key in proptest::collection::vec(proptest::num::u8::ANY, 32),
                         blocks in 0usize..8, fill in proptest::num::u8::ANY, which in 0usize..5) {
            let alg = [CipherAlg::DesCbc, CipherAlg::TripleDesCbc, CipherAlg::AesCbc { key_bits: 128 },
                       CipherAlg::AesCbc { key_bits: 192 }, CipherAlg::AesCbc { key_bits: 256 }][which];
            let c = BlockCipher::new(alg, &key[..alg.key_len()]).expect("key");
            let iv = vec![fill; alg.iv_len()];
            let pt: Vec<u8> = (0..blocks * alg.block_len()).map(|i| (i as u8) ^ fill).collect();
            let mut buf = pt.clone();
            c.encrypt_cbc(&iv, &mut buf).expect("enc");
            if !pt.is_empty() { proptest::prop_assert_ne!(&buf, &pt); }
            c.decrypt_cbc(&iv, &mut buf).expect("dec");
            proptest::prop_assert_eq!(buf, pt);
        }

        #[test]
        fn gcm_roundtrip(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                         aad in proptest::collection::vec(proptest::num::u8::ANY, 0..20), iv in proptest::num::u64::ANY) {
            let a = Aead::new(CipherAlg::AesGcm16 { key_bits: 256 }, &[3; 36]).expect("key");
            let mut buf = data.clone();
            let tag = a.seal_in_place(&iv.to_be_bytes(), &aad, &mut buf).expect("seal");
            a.open_in_place(&iv.to_be_bytes(), &aad, &mut buf, &tag).expect("open");
            proptest::prop_assert_eq!(buf, data);
        }
    }
}
