//! Decryption of attacker-chosen ESP payloads: CBC and GCM open must return errors, never panic.
#![no_main]

use l2sec_crypto::{Aead, BlockCipher, CipherAlg, IntegAlg, Mac};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ciphers = [
        CipherAlg::DesCbc,
        CipherAlg::TripleDesCbc,
        CipherAlg::AesCbc { key_bits: 128 },
        CipherAlg::AesCbc { key_bits: 256 },
        CipherAlg::AesGcm16 { key_bits: 128 },
        CipherAlg::AesGcm16 { key_bits: 256 },
    ];
    let alg = ciphers[usize::from(sel) % ciphers.len()];
    let mut buf = rest.to_vec();
    if alg.is_aead() {
        let aead =
            Aead::new(alg, &vec![1; alg.keymat_len()]).expect("key length from the registry");
        if buf.len() < 8 + 16 {
            return;
        }
        let (iv, body) = buf.split_at_mut(8);
        let iv: [u8; 8] = iv.try_into().expect("8 bytes");
        let split = body.len() - 16;
        let (ct, tag) = body.split_at_mut(split);
        let _ = aead.open_in_place(&iv, b"spi+seq!", ct, tag);
    } else {
        let cipher =
            BlockCipher::new(alg, &vec![1; alg.key_len()]).expect("key length from the registry");
        let mac = Mac::new(IntegAlg::HmacSha1_96, &[2; 20]).expect("key length from the registry");
        let _ = mac.verify(&[&buf], &buf[buf.len().saturating_sub(12)..]);
        let iv_len = alg.iv_len().min(buf.len());
        let (iv, body) = buf.split_at_mut(iv_len);
        let _ = cipher.decrypt_cbc(iv, body);
    }
});
