//! ESP seal/open throughput on 1400-byte payloads, per suite, beside the raw cipher+MAC cost of
//! the same primitives on the same byte counts, and `seal_many` on batches of 64 as the engine
//! seals them. Ends with a table of the ESP overhead.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, black_box};
use l2sec_crypto::{Aead, BlockCipher, CipherAlg, IntegAlg, Mac, Policy, Rng, TestRng};
use l2sec_esp::{DirectionKeys, Encapsulation, Sa, SaConfig, SealJob};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const PAYLOAD: usize = 1400;
/// Packets prepared (untimed) per timed batch of `open`.
const CHUNK: usize = 256;
/// Packets per `seal_many` call: the engine's batch.
const BATCH: usize = 64;

const SUITES: [(&str, CipherAlg, Option<IntegAlg>); 9] = [
    ("aes128gcm16", CipherAlg::AesGcm16 { key_bits: 128 }, None),
    ("aes256gcm16", CipherAlg::AesGcm16 { key_bits: 256 }, None),
    (
        "aes128-sha1",
        CipherAlg::AesCbc { key_bits: 128 },
        Some(IntegAlg::HmacSha1_96),
    ),
    (
        "aes256-sha1",
        CipherAlg::AesCbc { key_bits: 256 },
        Some(IntegAlg::HmacSha1_96),
    ),
    (
        "aes128-sha256",
        CipherAlg::AesCbc { key_bits: 128 },
        Some(IntegAlg::HmacSha256_128),
    ),
    (
        "aes256-sha256",
        CipherAlg::AesCbc { key_bits: 256 },
        Some(IntegAlg::HmacSha256_128),
    ),
    (
        "aes256-sha384",
        CipherAlg::AesCbc { key_bits: 256 },
        Some(IntegAlg::HmacSha384_192),
    ),
    (
        "aes256-sha512",
        CipherAlg::AesCbc { key_bits: 256 },
        Some(IntegAlg::HmacSha512_256),
    ),
    (
        "3des-sha1",
        CipherAlg::TripleDesCbc,
        Some(IntegAlg::HmacSha1_96),
    ),
];

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

/// Sender and receiver of one direction, plus the raw primitives keyed alike.
struct Bench {
    tx: Sa,
    rx: Sa,
    raw: Raw,
}

#[allow(clippy::large_enum_variant)]
enum Raw {
    Cbc(BlockCipher, Mac),
    Gcm(Aead),
}

fn setup(c: CipherAlg, i: Option<IntegAlg>) -> Bench {
    let mut rng = TestRng::new(42);
    let k1 = keys(&mut rng, 0x1000_0001, c, i);
    let k2 = keys(&mut rng, 0x2000_0002, c, i);
    let raw = match i {
        Some(i) => Raw::Cbc(
            BlockCipher::new(c, &k1.enc_key).unwrap(),
            Mac::new(i, &k1.auth_key).unwrap(),
        ),
        None => Raw::Gcm(Aead::new(c, &k1.enc_key).unwrap()),
    };
    let tx_cfg = SaConfig {
        cipher: c,
        integ: i,
        outbound: k1.clone(),
        inbound: k2.clone(),
        encap: Encapsulation::Udp {
            local_port: 4500,
            remote_port: 4500,
        },
        nat_oa: None,
        lifetime_secs: None,
        lifetime_kbytes: None,
    };
    let rx_cfg = SaConfig {
        outbound: k2,
        inbound: k1,
        ..tx_cfg.clone()
    };
    Bench {
        tx: Sa::new(&tx_cfg, Policy::Weak, &mut rng).unwrap(),
        rx: Sa::new(&rx_cfg, Policy::Weak, &mut rng).unwrap(),
        raw,
    }
}

impl Bench {
    fn buf(&self) -> Vec<u8> {
        vec![0x5Au8; self.tx.header_len() + PAYLOAD + self.tx.max_trailer_len()]
    }

    /// Seals one packet into `buf` (payload area assumed filled); returns its length.
    fn seal(&mut self, buf: &mut [u8]) -> usize {
        self.tx.seal(buf, PAYLOAD, 17).unwrap()
    }

    /// The primitives alone on the bytes ESP would process for one packet of length `len`.
    fn raw_seal(&self, pkt: &mut [u8]) {
        let hl = self.tx.header_len();
        let icv = self.icv_len();
        let (head, rest) = pkt.split_at_mut(hl);
        let ct_len = rest.len() - icv;
        let (ct, tag) = rest.split_at_mut(ct_len);
        match &self.raw {
            Raw::Cbc(c, m) => {
                c.encrypt_cbc(&head[8..], ct).unwrap();
                m.sign(&[head, ct], tag);
            }
            Raw::Gcm(a) => {
                let iv: [u8; 8] = head[8..16].try_into().unwrap();
                let t = a.seal_in_place(&iv, &head[..8], ct).unwrap();
                tag.copy_from_slice(&t);
            }
        }
    }

    fn raw_open(&self, pkt: &mut [u8]) {
        let hl = self.tx.header_len();
        let icv = self.icv_len();
        let (head, rest) = pkt.split_at_mut(hl);
        let ct_len = rest.len() - icv;
        let (ct, tag) = rest.split_at_mut(ct_len);
        match &self.raw {
            Raw::Cbc(c, m) => {
                assert!(m.verify(&[head, ct], tag));
                c.decrypt_cbc(&head[8..], ct).unwrap();
            }
            Raw::Gcm(a) => {
                let iv: [u8; 8] = head[8..16].try_into().unwrap();
                a.open_in_place(&iv, &head[..8], ct, tag).unwrap();
            }
        }
    }

    fn icv_len(&self) -> usize {
        self.tx.integ().map_or(16, |i| i.icv_len())
    }

    /// Seals `CHUNK` fresh packets (untimed) into `store`, each `stride` bytes apart.
    fn fill(&mut self, store: &mut [u8], stride: usize) -> usize {
        let mut len = 0;
        for p in store.chunks_exact_mut(stride) {
            len = self.seal(p);
        }
        len
    }

    /// Times `open` (or the raw primitives) over `iters` fresh packets.
    fn time_open(&mut self, iters: u64, raw: bool) -> Duration {
        let stride = self.buf().len();
        let mut store = vec![0x5Au8; stride * CHUNK];
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            let len = self.fill(&mut store, stride);
            let start = Instant::now();
            for p in store.chunks_exact_mut(stride).take(n) {
                if raw {
                    self.raw_open(&mut p[..len]);
                } else {
                    black_box(self.rx.open(&mut p[..len]).unwrap());
                }
            }
            total += start.elapsed();
            left -= n as u64;
        }
        total
    }

    /// Times `seal_many` over `iters` packets, [`BATCH`] per call, as the engine seals a batch.
    fn time_seal_many(&mut self, iters: u64) -> Duration {
        let stride = self.buf().len();
        let mut store = vec![0x5Au8; stride * BATCH];
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let n = left.min(BATCH as u64) as usize;
            let mut jobs: Vec<SealJob<'_>> = store
                .chunks_exact_mut(stride)
                .take(n)
                .map(|buf| SealJob {
                    buf,
                    payload_len: PAYLOAD,
                    next_header: 17,
                    len: 0,
                })
                .collect();
            self.tx.seal_many(&mut jobs).unwrap();
            black_box(&jobs);
            left -= n as u64;
        }
        start.elapsed()
    }

    fn time_seal(&mut self, iters: u64, raw: bool) -> Duration {
        let mut buf = self.buf();
        let len = self.seal(&mut buf);
        let start = Instant::now();
        for _ in 0..iters {
            if raw {
                self.raw_seal(&mut buf[..len]);
            } else {
                black_box(self.seal(&mut buf));
            }
        }
        start.elapsed()
    }
}

fn criterion_benches(c: &mut Criterion) {
    for (name, cipher, integ) in SUITES {
        let mut g = c.benchmark_group(format!("esp/{name}"));
        g.throughput(Throughput::Bytes(PAYLOAD as u64));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.sample_size(30);
        let mut b = setup(cipher, integ);
        for (what, raw) in [("seal", false), ("raw_seal", true)] {
            g.bench_function(BenchmarkId::from_parameter(what), |bch| {
                bch.iter_custom(|iters| b.time_seal(iters, raw));
            });
        }
        g.bench_function(BenchmarkId::from_parameter("seal_many"), |bch| {
            bch.iter_custom(|iters| b.time_seal_many(iters));
        });
        for (what, raw) in [("open", false), ("raw_open", true)] {
            g.bench_function(BenchmarkId::from_parameter(what), |bch| {
                bch.iter_custom(|iters| b.time_open(iters, raw));
            });
        }
        g.finish();
    }
}

/// Interleaved best-of-N timing of ESP against raw crypto, printed as a table.
fn overhead_table() {
    // Many short interleaved rounds, keeping the best: robust against other load on the machine.
    const ROUNDS: usize = 31;
    const N: u64 = 4_096;
    println!();
    println!(
        "ESP overhead over raw cipher+MAC, {PAYLOAD}-byte payloads (best of {ROUNDS} x {N} packets)"
    );
    println!(
        "{:<14} {:>11} {:>11} {:>9} {:>11} {:>11} {:>9} {:>11}",
        "suite",
        "seal MB/s",
        "raw MB/s",
        "overhead",
        "open MB/s",
        "raw MB/s",
        "overhead",
        "batch MB/s"
    );
    for (name, cipher, integ) in SUITES {
        let mut b = setup(cipher, integ);
        let n = if matches!(cipher, CipherAlg::TripleDesCbc) {
            N / 10
        } else {
            N
        };
        let mut best = [Duration::MAX; 5];
        for _ in 0..ROUNDS {
            let t = [
                b.time_seal(n, false),
                b.time_seal(n, true),
                b.time_open(n, false),
                b.time_open(n, true),
                b.time_seal_many(n),
            ];
            for (bst, t) in best.iter_mut().zip(t) {
                *bst = (*bst).min(t);
            }
        }
        let mbps = |d: Duration| (PAYLOAD as f64 * n as f64) / d.as_secs_f64() / 1e6;
        let pct =
            |esp: Duration, raw: Duration| (esp.as_secs_f64() / raw.as_secs_f64() - 1.0) * 100.0;
        println!(
            "{:<14} {:>11.0} {:>11.0} {:>8.1}% {:>11.0} {:>11.0} {:>8.1}% {:>11.0}",
            name,
            mbps(best[0]),
            mbps(best[1]),
            pct(best[0], best[1]),
            mbps(best[2]),
            mbps(best[3]),
            pct(best[2], best[3]),
            mbps(best[4])
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    overhead_table();
}
