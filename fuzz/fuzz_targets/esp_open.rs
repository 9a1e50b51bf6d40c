//! `Sa::open` / `SaPair::open` on attacker-chosen packets: arbitrary bytes, and authentic
//! packets (valid ICV) around an arbitrary plaintext so padding and next-header checks run.
#![no_main]

use l2sec_crypto::{Aead, BlockCipher, CipherAlg, IntegAlg, Mac, Policy, TestRng};
use l2sec_esp::{DirectionKeys, Encapsulation, Sa, SaConfig, SaPair};
use libfuzzer_sys::fuzz_target;

const SPI: u32 = 0x1000_0001;

fn suite(sel: u8) -> (CipherAlg, Option<IntegAlg>) {
    match sel % 6 {
        0 => (
            CipherAlg::AesCbc { key_bits: 128 },
            Some(IntegAlg::HmacSha1_96),
        ),
        1 => (
            CipherAlg::AesCbc { key_bits: 256 },
            Some(IntegAlg::HmacSha256_128),
        ),
        2 => (CipherAlg::AesGcm16 { key_bits: 128 }, None),
        3 => (CipherAlg::AesGcm16 { key_bits: 256 }, None),
        4 => (CipherAlg::TripleDesCbc, Some(IntegAlg::HmacSha1_96)),
        _ => (CipherAlg::DesCbc, Some(IntegAlg::HmacMd5_96)),
    }
}

fuzz_target!(|data: &[u8]| {
    let [sel, mode, s0, s1, rest @ ..] = data else {
        return;
    };
    let (c, i) = suite(*sel);
    let enc = vec![7u8; c.keymat_len()];
    let auth = vec![9u8; i.map_or(0, |i| i.key_len())];
    let keys = DirectionKeys::new(SPI, &enc, &auth);
    let cfg = SaConfig {
        cipher: c,
        integ: i,
        outbound: keys.clone(),
        inbound: keys,
        encap: Encapsulation::Udp {
            local_port: 4500,
            remote_port: 4500,
        },
        nat_oa: None,
        lifetime_secs: None,
        lifetime_kbytes: None,
    };
    let sa = Sa::new(&cfg, Policy::Weak, &mut TestRng::new(0)).expect("valid config");
    let mut ep = SaPair::new(sa);
    let mut pkt = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        // Authentic packet: SPI, seq, IV, then `rest` truncated to the alignment as plaintext.
        let align = c.block_len().max(4);
        let pt_len = rest.len() / align * align;
        let mut p = SPI.to_be_bytes().to_vec();
        p.extend_from_slice(&u32::from_be_bytes([0, 0, *s0, *s1]).max(1).to_be_bytes());
        p.extend_from_slice(&vec![3u8; c.iv_len()]);
        let hl = p.len();
        p.extend_from_slice(&rest[..pt_len]);
        match i {
            Some(i) => {
                let (iv, ct) = p.split_at_mut(hl);
                BlockCipher::new(c, &enc)
                    .expect("key")
                    .encrypt_cbc(&iv[8..], ct)
                    .expect("aligned");
                let mac = Mac::new(i, &auth).expect("key");
                let mut icv = vec![0u8; mac.icv_len()];
                mac.sign(&[&p], &mut icv);
                p.extend_from_slice(&icv);
            }
            None => {
                let (head, ct) = p.split_at_mut(hl);
                let iv: [u8; 8] = head[8..16].try_into().expect("8 bytes");
                let tag = Aead::new(c, &enc)
                    .expect("key")
                    .seal_in_place(&iv, &head[..8], ct)
                    .expect("seal");
                p.extend_from_slice(&tag);
            }
        }
        p
    };
    let len = pkt.len();
    if let Ok(o) = ep.open(&mut pkt) {
        assert!(o.payload.start <= o.payload.end && o.payload.end <= len);
    }
    // The same packet again must never be accepted.
    let mut again = pkt.clone();
    let _ = ep.open(&mut again);
});
