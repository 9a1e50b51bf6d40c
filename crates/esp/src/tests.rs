//! SA-level tests: RFC known answers, round-trips for every suite, tampering, replay,
//! limits and rekey.

use crate::{
    DirectionKeys, Encapsulation, Error, Event, SEQ_SOFT_LIMIT, Sa, SaConfig, SaPair, SealJob, udp,
};
use l2sec_crypto::{CipherAlg, IntegAlg, Mac, Policy, Rng, TestRng};
use proptest::prelude::*;
use zeroize::Zeroizing;

const AES128: CipherAlg = CipherAlg::AesCbc { key_bits: 128 };
const AES192: CipherAlg = CipherAlg::AesCbc { key_bits: 192 };
const AES256: CipherAlg = CipherAlg::AesCbc { key_bits: 256 };
const GCM128: CipherAlg = CipherAlg::AesGcm16 { key_bits: 128 };
const GCM256: CipherAlg = CipherAlg::AesGcm16 { key_bits: 256 };

/// Every suite the crate supports.
fn suites() -> Vec<(CipherAlg, Option<IntegAlg>)> {
    let mut v = Vec::new();
    for c in [AES128, AES192, AES256] {
        for i in [
            IntegAlg::HmacSha1_96,
            IntegAlg::HmacSha256_128,
            IntegAlg::HmacSha384_192,
            IntegAlg::HmacSha512_256,
        ] {
            v.push((c, Some(i)));
        }
    }
    v.push((GCM128, None));
    v.push((GCM256, None));
    v.push((CipherAlg::TripleDesCbc, Some(IntegAlg::HmacSha1_96)));
    v.push((CipherAlg::TripleDesCbc, Some(IntegAlg::HmacMd5_96)));
    v.push((CipherAlg::DesCbc, Some(IntegAlg::HmacMd5_96)));
    v.push((CipherAlg::DesCbc, Some(IntegAlg::HmacSha1_96)));
    v.push((AES128, Some(IntegAlg::HmacMd5_96)));
    v
}

fn keys(rng: &mut TestRng, spi: u32, c: CipherAlg, i: Option<IntegAlg>) -> DirectionKeys {
    let mut enc = Zeroizing::new(vec![0u8; c.keymat_len()]);
    rng.fill(&mut enc);
    let mut auth = Zeroizing::new(vec![0u8; i.map_or(0, |i| i.key_len())]);
    rng.fill(&mut auth);
    DirectionKeys {
        spi,
        enc_key: enc,
        auth_key: auth,
    }
}

/// Configurations of both ends of one SA pair (a's outbound is b's inbound and vice versa).
fn configs(c: CipherAlg, i: Option<IntegAlg>, seed: u64) -> (SaConfig, SaConfig) {
    let mut rng = TestRng::new(seed);
    let a_to_b = keys(&mut rng, 0x1000_0001, c, i);
    let b_to_a = keys(&mut rng, 0x2000_0002, c, i);
    let encap = Encapsulation::Udp {
        local_port: 4500,
        remote_port: 4500,
    };
    let a = SaConfig {
        cipher: c,
        integ: i,
        outbound: a_to_b.clone(),
        inbound: b_to_a.clone(),
        encap,
        nat_oa: None,
        lifetime_secs: None,
        lifetime_kbytes: None,
    };
    let b = SaConfig {
        outbound: b_to_a,
        inbound: a_to_b,
        ..a.clone()
    };
    (a, b)
}

fn pair(c: CipherAlg, i: Option<IntegAlg>, seed: u64) -> (Sa, Sa) {
    let (ca, cb) = configs(c, i, seed);
    let mut rng = TestRng::new(seed ^ 0xABCD);
    (
        Sa::new(&ca, Policy::Weak, &mut rng).unwrap(),
        Sa::new(&cb, Policy::Weak, &mut rng).unwrap(),
    )
}

/// Seals `payload` with `sa` into a fresh buffer sized exactly; returns the packet.
fn seal(sa: &mut Sa, payload: &[u8], nh: u8) -> Vec<u8> {
    let hl = sa.header_len();
    let mut buf = vec![0u8; hl + payload.len() + sa.max_trailer_len()];
    buf[hl..hl + payload.len()].copy_from_slice(payload);
    let n = sa.seal(&mut buf, payload.len(), nh).unwrap();
    assert_eq!(n, payload.len() + sa.overhead(payload.len()));
    buf.truncate(n);
    buf
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

// RFC 3602 section 4, cases #5 and #6 (AES-128-CBC ESP, SPI 0x4321, no ICV in the RFC).
const RFC3602_KEY: &str = "90d382b410eeba7ad938c46cec1a82bf";
const CASE5_PAYLOAD: &str = "08000ebda70a00008e9c083db95b070008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
const CASE5_PACKET: &str = "0000432100000001e96e8c08ab465763fd098d45dd3ff893f663c25d325c18c6a9453e194e120849a4870b66cc6b9965330013b4898dc856a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c538ab50c551b874aa269add047ad2d5913ac19b7cfbad4a6";
const CASE6_PAYLOAD: &str = "0800b5e8a80a0500a69c083d0b660e00777777777777777777777777";
const CASE6_PACKET: &str = "000043210000000869d08df7d203329db093fc4924e5bd80f51995881ec4e0c4488987ce742e8109689bb379d2d750c0d915dca346a89f75";

/// An SA whose inbound and outbound both use SPI `spi` and the given keys (loopback).
fn loopback(c: CipherAlg, i: Option<IntegAlg>, spi: u32, enc: &[u8], auth: &[u8]) -> Sa {
    let k = DirectionKeys {
        spi,
        enc_key: Zeroizing::new(enc.to_vec()),
        auth_key: Zeroizing::new(auth.to_vec()),
    };
    let cfg = SaConfig {
        cipher: c,
        integ: i,
        outbound: k.clone(),
        inbound: k,
        encap: Encapsulation::Raw,
        nat_oa: None,
        lifetime_secs: None,
        lifetime_kbytes: None,
    };
    let mut sa = Sa::new(&cfg, Policy::Modern, &mut TestRng::new(1)).unwrap();
    sa.set_expected_next_header(None);
    sa
}

#[test]
fn rfc3602_cases_5_and_6() {
    let auth = [0x5Au8; 32];
    let mac = Mac::new(IntegAlg::HmacSha256_128, &auth).unwrap();
    for (seq, payload, packet) in [
        (1u32, CASE5_PAYLOAD, CASE5_PACKET),
        (8, CASE6_PAYLOAD, CASE6_PACKET),
    ] {
        let (payload, packet) = (h(payload), h(packet));
        // Seal with the RFC's IV reproduces the RFC's ciphertext (padding 1, 2, 3, ...).
        let mut sa = loopback(
            AES128,
            Some(IntegAlg::HmacSha256_128),
            0x4321,
            &h(RFC3602_KEY),
            &auth,
        );
        sa.force_seq_out(seq - 1);
        sa.test_iv = Some(packet[8..24].to_vec());
        let sealed = seal(&mut sa, &payload, 1);
        assert_eq!(&sealed[..packet.len()], &packet[..]);
        let mut icv = [0u8; 16];
        mac.sign(&[&packet], &mut icv);
        assert_eq!(&sealed[packet.len()..], &icv);
        // Open the RFC packet (ICV appended) gives the RFC's payload back.
        let mut rx = loopback(
            AES128,
            Some(IntegAlg::HmacSha256_128),
            0x4321,
            &h(RFC3602_KEY),
            &auth,
        );
        let mut pkt = packet.clone();
        pkt.extend_from_slice(&icv);
        let o = rx.open(&mut pkt).unwrap();
        assert_eq!(o.next_header, 1);
        assert_eq!(o.spi, 0x4321);
        assert_eq!(&pkt[o.payload], &payload[..]);
    }
}

// draft-mcgrew-gcm-test-01 section 4 (RFC 4106 ESP), the cases without ESN and with SPI >= 256:
// (key || salt, SPI, seq, IV, plaintext incl. ESP trailer, ciphertext || tag)
const GCM_CASES: [(&str, u32, u32, &str, &str, &str); 2] = [
    (
        "abbccddef00112233445566778899aababbccddef00112233445566778899aab11223344",
        0x4a2c_bfe3,
        2,
        "0102030405060708",
        "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee0000000007002400020bf0000020405b40101040201020201",
        "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c4915956c96",
    ),
    (
        "7d773d00c144c525ac619d18c84a3f47d9664267",
        0x3354_67ae,
        0xffff_ffff,
        "43457e9182443bc6",
        "01020201",
        "437f866bcb3f699fe9b0822bac961c4504bef270",
    ),
];

#[test]
fn gcm_draft_mcgrew_vectors() {
    for (keymat, spi, seq, iv, plain, ct) in GCM_CASES {
        let keymat = h(keymat);
        let c = if keymat.len() == 36 { GCM256 } else { GCM128 };
        let plain = h(plain);
        let payload = &plain[..plain.len() - 4];
        let mut expect = spi.to_be_bytes().to_vec();
        expect.extend_from_slice(&seq.to_be_bytes());
        expect.extend_from_slice(&h(iv));
        expect.extend_from_slice(&h(ct));
        let mut sa = loopback(c, None, spi, &keymat, &[]);
        sa.force_seq_out(seq - 1);
        sa.test_iv = Some(h(iv));
        assert_eq!(seal(&mut sa, payload, 1), expect);
        let mut rx = loopback(c, None, spi, &keymat, &[]);
        let mut pkt = expect.clone();
        let o = rx.open(&mut pkt).unwrap();
        assert_eq!(o.next_header, 1);
        assert_eq!(&pkt[o.payload], payload);
        // The same packet again is a replay.
        let mut pkt = expect.clone();
        assert!(matches!(rx.open(&mut pkt), Err(Error::Replay(s)) if s == seq));
    }
}

#[test]
fn round_trip_every_suite_and_sizes() {
    for (n, (c, i)) in suites().into_iter().enumerate() {
        let (mut a, mut b) = pair(c, i, n as u64);
        assert_eq!(a.header_len(), 8 + c.iv_len());
        for len in [0usize, 1, 2, 3, 13, 14, 15, 16, 17, 100, 1400, 1999] {
            let payload: Vec<u8> = (0..len).map(|x| (x * 7 + len) as u8).collect();
            let mut pkt = seal(&mut a, &payload, 17);
            assert_eq!(
                (pkt.len() - a.header_len() - i.map_or(16, |i| i.icv_len())) % c.block_len().max(4),
                0
            );
            let o = b.open(&mut pkt).unwrap();
            assert_eq!(
                &pkt[o.payload.clone()],
                &payload[..],
                "{c:?} {i:?} len {len}"
            );
            // And back.
            let mut pkt = seal(&mut b, &payload, 17);
            let o = a.open(&mut pkt).unwrap();
            assert_eq!(&pkt[o.payload], &payload[..]);
        }
        assert_eq!(a.stats().packets_out, 12);
        assert_eq!(b.stats().packets_in, 12);
        assert_eq!(a.stats().drops.total(), 0);
    }
}

#[test]
fn cbc_ivs_differ_and_look_random() {
    let (mut a, _) = pair(AES128, Some(IntegAlg::HmacSha1_96), 7);
    let p1 = seal(&mut a, b"same", 17);
    let p2 = seal(&mut a, b"same", 17);
    assert_ne!(p1[8..24], p2[8..24]);
    assert_ne!(p1[24..], p2[24..]);
}

#[test]
fn tamper_rejected_then_original_accepted() {
    for (n, (c, i)) in suites().into_iter().enumerate() {
        let (mut a, mut b) = pair(c, i, 100 + n as u64);
        let pkt = seal(&mut a, b"l2tp payload", 17);
        for bit in [
            0usize,
            5 * 8,
            9 * 8 + 3,
            (pkt.len() - 1) * 8 + 7,
            (pkt.len() - 20) * 8,
        ] {
            let mut bad = pkt.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(b.open(&mut bad).is_err(), "{c:?} bit {bit}");
        }
        let mut good = pkt.clone();
        assert!(b.open(&mut good).is_ok());
        let d = b.stats().drops;
        assert_eq!(d.unknown_spi, 1);
        // A flipped sequence number bit may be rejected as an ICV failure only.
        assert_eq!(d.auth, 4);
    }
}

#[test]
fn replay_and_reordering() {
    let (mut a, mut b) = pair(GCM128, None, 3);
    let pkts: Vec<Vec<u8>> = (0..3000).map(|_| seal(&mut a, b"x", 17)).collect();
    // Deliver in reverse order: only the newest 2048 are inside the window.
    let mut ok = 0;
    let mut replay = 0;
    for p in pkts.iter().rev() {
        match b.open(&mut p.clone()) {
            Ok(_) => ok += 1,
            Err(Error::Replay(_)) => replay += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, replay), (2048, 3000 - 2048));
    assert!(matches!(
        b.open(&mut pkts[2999].clone()),
        Err(Error::Replay(3000))
    ));
    assert_eq!(b.stats().drops.replay, 3000 - 2048 + 1);
}

/// Builds a CBC packet by hand with an arbitrary (possibly invalid) trailer.
fn craft_cbc(cfg: &SaConfig, seq: u32, plaintext: &[u8]) -> Vec<u8> {
    let k = &cfg.outbound;
    let cipher = l2sec_crypto::BlockCipher::new(cfg.cipher, &k.enc_key).unwrap();
    let mac = Mac::new(cfg.integ.unwrap(), &k.auth_key).unwrap();
    let mut p = k.spi.to_be_bytes().to_vec();
    p.extend_from_slice(&seq.to_be_bytes());
    let iv = vec![0x33u8; cfg.cipher.iv_len()];
    p.extend_from_slice(&iv);
    let mut ct = plaintext.to_vec();
    cipher.encrypt_cbc(&iv, &mut ct).unwrap();
    p.extend_from_slice(&ct);
    let mut icv = vec![0u8; mac.icv_len()];
    mac.sign(&[&p], &mut icv);
    p.extend_from_slice(&icv);
    p
}

#[test]
fn padding_and_next_header_checks() {
    let (ca, cb) = configs(AES128, Some(IntegAlg::HmacSha1_96), 9);
    let mut b = Sa::new(&cb, Policy::Legacy, &mut TestRng::new(2)).unwrap();
    let block = |b: &mut Sa, seq: u32, tail: &[u8]| {
        let mut pt = vec![0xEEu8; 16 - tail.len()];
        pt.extend_from_slice(tail);
        let mut p = craft_cbc(&ca, seq, &pt);
        b.open(&mut p).map(|o| o.payload.len())
    };
    let b = &mut b;
    assert_eq!(block(b, 1, &[1, 2, 3, 3, 17]).unwrap(), 11);
    assert!(matches!(
        block(b, 2, &[1, 2, 4, 3, 17]),
        Err(Error::BadPadding)
    ));
    assert!(matches!(block(b, 3, &[15, 17]), Err(Error::BadPadding)));
    assert!(matches!(block(b, 4, &[255, 17]), Err(Error::BadPadding)));
    assert!(matches!(block(b, 5, &[0, 59]), Err(Error::Dummy)));
    assert!(matches!(
        block(b, 6, &[0, 6]),
        Err(Error::UnexpectedNextHeader(6))
    ));
    // Authentic but rejected packets still consume their sequence number.
    assert!(matches!(block(b, 2, &[0, 17]), Err(Error::Replay(2))));
    let d = b.stats().drops;
    assert_eq!((d.padding, d.dummy, d.next_header, d.replay), (3, 1, 1, 1));
    b.set_strict_padding(false);
    assert_eq!(block(b, 7, &[9, 9, 2, 17]).unwrap(), 12);
}

#[test]
fn malformed_lengths() {
    let (mut a, mut b) = pair(AES256, Some(IntegAlg::HmacSha256_128), 11);
    let pkt = seal(&mut a, b"abc", 17);
    // Truncated by less than a block: misaligned; to the bare header: too short.
    for cut in [1, 5, 15, pkt.len() - 8, pkt.len()] {
        let mut p = pkt[..pkt.len() - cut].to_vec();
        assert!(
            matches!(b.open(&mut p), Err(Error::Malformed(_))),
            "cut {cut}"
        );
    }
    assert_eq!(b.stats().drops.malformed, 5);
    let mut buf = vec![0u8; 20];
    assert!(matches!(
        a.seal(&mut buf, 4, 17),
        Err(Error::BufferTooSmall { .. })
    ));
    let mut big = vec![0u8; 70_000];
    assert!(matches!(
        a.seal(&mut big, 65_500, 17),
        Err(Error::PayloadTooLarge)
    ));
}

#[test]
fn overhead_is_exact() {
    for (c, i) in suites() {
        let (mut a, _) = pair(c, i, 5);
        for len in 0..70 {
            let pkt = seal(&mut a, &vec![1u8; len], 17);
            assert_eq!(pkt.len(), len + a.overhead(len));
            assert!(a.overhead(len) <= a.header_len() + a.max_trailer_len());
        }
    }
}

#[test]
fn policy_and_config_checks() {
    let mut rng = TestRng::new(0);
    let (des, _) = configs(CipherAlg::DesCbc, Some(IntegAlg::HmacSha1_96), 1);
    assert!(matches!(
        Sa::new(&des, Policy::Legacy, &mut rng),
        Err(Error::Crypto(_))
    ));
    assert!(Sa::new(&des, Policy::Weak, &mut rng).is_ok());
    let (md5, _) = configs(AES128, Some(IntegAlg::HmacMd5_96), 1);
    assert!(Sa::new(&md5, Policy::Legacy, &mut rng).is_err());
    let (tdes, _) = configs(CipherAlg::TripleDesCbc, Some(IntegAlg::HmacSha1_96), 1);
    assert!(Sa::new(&tdes, Policy::Legacy, &mut rng).is_ok());
    assert!(Sa::new(&tdes, Policy::Modern, &mut rng).is_err());
    let (gcm, _) = configs(GCM256, None, 1);
    assert!(Sa::new(&gcm, Policy::Modern, &mut rng).is_ok());
    let bad = SaConfig {
        integ: Some(IntegAlg::HmacSha256_128),
        ..gcm.clone()
    };
    assert!(matches!(
        Sa::new(&bad, Policy::Weak, &mut rng),
        Err(Error::Config(_))
    ));
    let (cbc, _) = configs(AES128, Some(IntegAlg::HmacSha256_128), 1);
    let bad = SaConfig {
        integ: None,
        ..cbc.clone()
    };
    assert!(matches!(
        Sa::new(&bad, Policy::Weak, &mut rng),
        Err(Error::Config(_))
    ));
    let mut bad = cbc.clone();
    bad.outbound.enc_key.push(0);
    assert!(matches!(
        Sa::new(&bad, Policy::Weak, &mut rng),
        Err(Error::Config(_))
    ));
    let mut bad = cbc.clone();
    bad.inbound.auth_key.pop();
    assert!(matches!(
        Sa::new(&bad, Policy::Weak, &mut rng),
        Err(Error::Config(_))
    ));
    let mut bad = cbc.clone();
    bad.inbound.spi = 0;
    assert!(matches!(
        Sa::new(&bad, Policy::Weak, &mut rng),
        Err(Error::Config(_))
    ));
    // Keys never reach Debug output.
    let sa = Sa::new(&cbc, Policy::Modern, &mut rng).unwrap();
    let key_hex = hex::encode(&cbc.outbound.enc_key[..]);
    assert!(!format!("{sa:?}{cbc:?}").contains(&key_hex));
}

#[test]
fn sequence_soft_and_hard_limits() {
    let (mut a, mut b) = pair(GCM128, None, 21);
    a.force_seq_out(SEQ_SOFT_LIMIT - 2);
    seal(&mut a, b"a", 17);
    assert_eq!(a.poll_event(), None);
    seal(&mut a, b"a", 17);
    assert_eq!(
        a.poll_event(),
        Some(Event::RekeyNeeded {
            spi_out: 0x1000_0001
        })
    );
    assert_eq!(a.poll_event(), None);
    a.force_seq_out(u32::MAX - 1);
    let mut last = seal(&mut a, b"last", 17);
    assert_eq!(&last[4..8], &[0xFF; 4]);
    let mut buf = vec![0u8; 64];
    assert!(matches!(
        a.seal(&mut buf, 1, 17),
        Err(Error::SequenceExhausted)
    ));
    // The receiver accepts sequence number 2^32 - 1.
    assert!(b.open(&mut last).is_ok());
}

#[test]
fn byte_and_time_lifetimes() {
    let (mut ca, cb) = configs(AES128, Some(IntegAlg::HmacSha1_96), 22);
    ca.lifetime_kbytes = Some(2);
    ca.lifetime_secs = Some(100);
    let mut rng = TestRng::new(3);
    let mut a = Sa::new(&ca, Policy::Legacy, &mut rng).unwrap();
    let mut b = Sa::new(&cb, Policy::Legacy, &mut rng).unwrap();
    seal(&mut a, &[0; 1000], 17);
    assert_eq!(a.poll_event(), None);
    let mut p = seal(&mut a, &[0; 1000], 17);
    assert_eq!(
        a.poll_event(),
        Some(Event::RekeyNeeded {
            spi_out: 0x1000_0001
        })
    );
    seal(&mut a, &[0; 100], 17);
    assert_eq!(
        a.poll_event(),
        Some(Event::HardLimit {
            spi_out: 0x1000_0001
        })
    );
    assert_eq!(a.poll_event(), None);
    assert!(a.is_expired());
    let mut buf = vec![0u8; 100];
    assert!(matches!(a.seal(&mut buf, 1, 17), Err(Error::Expired)));
    let mut back = seal(&mut b, b"hi", 17);
    assert!(matches!(a.open(&mut back), Err(Error::Expired)));
    assert_eq!(a.stats().drops.expired, 1);
    assert!(b.open(&mut p).is_ok());

    let mut t = Sa::new(&ca, Policy::Legacy, &mut rng).unwrap();
    t.handle_age(std::time::Duration::from_secs(89));
    assert_eq!(t.poll_event(), None);
    t.handle_age(std::time::Duration::from_secs(90));
    assert_eq!(
        t.poll_event(),
        Some(Event::RekeyNeeded {
            spi_out: 0x1000_0001
        })
    );
    t.handle_age(std::time::Duration::from_secs(100));
    assert_eq!(
        t.poll_event(),
        Some(Event::HardLimit {
            spi_out: 0x1000_0001
        })
    );
}

/// A second SA pair with new SPIs and keys, as a rekey produces.
fn rekeyed(seed: u64) -> (Sa, Sa) {
    let (mut ca, mut cb) = configs(GCM256, None, seed);
    ca.outbound.spi = 0x3000_0003;
    cb.inbound.spi = 0x3000_0003;
    ca.inbound.spi = 0x4000_0004;
    cb.outbound.spi = 0x4000_0004;
    let mut rng = TestRng::new(seed);
    (
        Sa::new(&ca, Policy::Modern, &mut rng).unwrap(),
        Sa::new(&cb, Policy::Modern, &mut rng).unwrap(),
    )
}

#[test]
fn pair_rekey() {
    let (a1, mut b1) = pair(GCM256, None, 30);
    let mut ep = SaPair::new(a1);
    let mut old_in = seal(&mut b1, b"old", 17);
    let mut old_in2 = seal(&mut b1, b"old2", 17);
    let (a2, mut b2) = rekeyed(31);
    assert!(ep.install(a2).is_none());
    // Outbound switches at once.
    let mut out = vec![0u8; 64];
    out[16..19].copy_from_slice(b"new");
    let n = ep.seal(&mut out, 3, 17).unwrap();
    assert_eq!(crate::peek_spi(&out[..n]), Some(0x3000_0003));
    let o = b2.open(&mut out[..n]).unwrap();
    assert_eq!(&out[o.payload], b"new");
    // Inbound accepts both.
    let o = ep.open(&mut old_in).unwrap();
    assert_eq!(
        (o.spi, &old_in[o.payload.clone()]),
        (0x2000_0002, &b"old"[..])
    );
    let mut new_in = seal(&mut b2, b"fresh", 17);
    let o = ep.open(&mut new_in).unwrap();
    assert_eq!(o.spi, 0x4000_0004);
    assert!(ep.has_spi_in(0x2000_0002) && ep.has_spi_in(0x4000_0004));
    // After retiring, the old SPI is unknown.
    let old = ep.retire_previous().unwrap();
    assert_eq!(old.stats().packets_in, 1);
    assert!(matches!(
        ep.open(&mut old_in2),
        Err(Error::UnknownSpi(0x2000_0002))
    ));
    assert!(matches!(ep.open(&mut [0u8; 3]), Err(Error::Malformed(_))));
    let s = ep.stats();
    assert_eq!(
        (
            s.packets_in,
            s.packets_out,
            s.drops.unknown_spi,
            s.drops.malformed
        ),
        (2, 1, 1, 1)
    );
}

#[test]
fn udp_checksum_policy_follows_encapsulation() {
    let (ca, _) = configs(AES128, Some(IntegAlg::HmacSha1_96), 40);
    let mut rng = TestRng::new(4);
    let a = Sa::new(&ca, Policy::Legacy, &mut rng).unwrap();
    let (s, d) = (
        std::net::Ipv4Addr::new(198, 18, 0, 1),
        std::net::Ipv4Addr::new(198, 18, 0, 2),
    );
    assert_eq!(a.tx_checksum(s, d), udp::Checksum::Zero);
    assert_eq!(a.rx_checksum_check(s, d), udp::ChecksumCheck::Ignore);
    let raw = SaConfig {
        encap: Encapsulation::Raw,
        ..ca
    };
    let r = Sa::new(&raw, Policy::Legacy, &mut rng).unwrap();
    assert_eq!(
        r.tx_checksum(s, d),
        udp::Checksum::Compute { src: s, dst: d }
    );
    assert_eq!(
        r.rx_checksum_check(d, s),
        udp::ChecksumCheck::Verify { src: d, dst: s }
    );
}

fn suite_strategy() -> impl Strategy<Value = (CipherAlg, Option<IntegAlg>)> {
    prop::sample::select(suites())
}

/// Seals `payloads` with one `seal_many` call; returns each buffer (room included), the
/// length `seal_many` gave it, and its result.
fn seal_batch(
    sa: &mut Sa,
    payloads: &[Vec<u8>],
    nh: u8,
) -> (Vec<Vec<u8>>, Vec<usize>, Result<(), Error>) {
    let hl = sa.header_len();
    let mut bufs: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| {
            let mut b = vec![0u8; hl + p.len() + sa.max_trailer_len()];
            b[hl..hl + p.len()].copy_from_slice(p);
            b
        })
        .collect();
    let mut jobs: Vec<SealJob<'_>> = bufs
        .iter_mut()
        .zip(payloads)
        .map(|(buf, p)| SealJob {
            buf,
            payload_len: p.len(),
            next_header: nh,
            len: 0,
        })
        .collect();
    let r = sa.seal_many(&mut jobs);
    let lens: Vec<usize> = jobs.iter().map(|j| j.len).collect();
    drop(jobs);
    (bufs, lens, r)
}

#[test]
fn seal_many_stops_at_the_hard_limit() {
    let (mut a, mut b) = pair(AES128, Some(IntegAlg::HmacSha1_96), 5);
    let (mut twin, _) = pair(AES128, Some(IntegAlg::HmacSha1_96), 5);
    a.force_seq_out(u32::MAX - 3);
    twin.force_seq_out(u32::MAX - 3);
    let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100]).collect();
    let (mut bufs, lens, r) = seal_batch(&mut a, &payloads, 17);
    assert!(matches!(r, Err(Error::SequenceExhausted)));
    assert_eq!(
        lens[3..],
        [0, 0],
        "the jobs after the failure are untouched"
    );
    for (k, (buf, n)) in bufs.iter_mut().zip(&lens).take(3).enumerate() {
        assert_eq!(*n, seal(&mut twin, &payloads[k], 17).len());
        let o = b.open(&mut buf[..*n]).unwrap();
        assert_eq!(&buf[o.payload], &payloads[k][..], "packet {k} opens");
    }
    let hl = a.header_len();
    assert_eq!(bufs[3][hl..hl + 100], payloads[3][..], "not encrypted");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// A batch sealed at once is byte for byte what sealing one by one gives (the same keys
    /// and IV sequence), for every suite, any count and ragged lengths; and it opens.
    #[test]
    fn prop_seal_many_equals_one_by_one(
        suite in suite_strategy(),
        lens in prop::collection::vec(0usize..1500, 0..20),
        seed: u64,
    ) {
        let (mut a, mut b) = pair(suite.0, suite.1, seed);
        let (mut twin, _) = pair(suite.0, suite.1, seed);
        let payloads: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i ^ k) as u8).collect())
            .collect();
        let (many, lens, r) = seal_batch(&mut a, &payloads, 17);
        r.unwrap();
        for (k, p) in payloads.iter().enumerate() {
            let mut pkt = many[k][..lens[k]].to_vec();
            prop_assert_eq!(&pkt, &seal(&mut twin, p, 17), "packet {}", k);
            let o = b.open(&mut pkt).unwrap();
            prop_assert_eq!(&pkt[o.payload], &p[..]);
        }
    }

    #[test]
    fn prop_round_trip(suite in suite_strategy(), len in 0usize..2000, seed: u64, nh: u8) {
        let (mut a, mut b) = pair(suite.0, suite.1, seed);
        b.set_expected_next_header(None);
        let nh = if nh == 59 { 17 } else { nh };
        let payload: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
        let mut pkt = seal(&mut a, &payload, nh);
        let o = b.open(&mut pkt).unwrap();
        prop_assert_eq!(o.next_header, nh);
        prop_assert_eq!(&pkt[o.payload], &payload[..]);
    }

    #[test]
    fn prop_any_bit_flip_rejected(suite in suite_strategy(), len in 0usize..200, bit: prop::sample::Index, seed: u64) {
        let (mut a, mut b) = pair(suite.0, suite.1, seed);
        let pkt = seal(&mut a, &vec![0xA5; len], 17);
        let bit = bit.index(pkt.len() * 8);
        let mut bad = pkt.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(b.open(&mut bad).is_err());
        let mut good = pkt;
        prop_assert!(b.open(&mut good).is_ok());
    }

    #[test]
    fn prop_open_arbitrary_never_panics(suite in suite_strategy(), mut data in prop::collection::vec(any::<u8>(), 0..300), spi_prefix: bool) {
        let (_, b) = pair(suite.0, suite.1, 1);
        if spi_prefix && data.len() >= 4 {
            data[..4].copy_from_slice(&0x1000_0001u32.to_be_bytes());
        }
        let mut ep = SaPair::new(b);
        prop_assert!(ep.open(&mut data).is_err());
        prop_assert_eq!(ep.stats().drops.total(), 1);
    }
}

#[test]
fn sa_types_are_send() {
    fn send<T: Send>() {}
    send::<Sa>();
    send::<SaPair>();
}
