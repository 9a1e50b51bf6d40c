//! Throughput of the cipher + integrity combinations ESP uses, on 1400-byte packets.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use l2sec_crypto::{Aead, BlockCipher, CipherAlg, IntegAlg, Mac};
use std::hint::black_box;

const PACKET: usize = 1400;

fn cbc_combo(c: &mut Criterion, alg: CipherAlg, integ: IntegAlg) {
    let cipher = BlockCipher::new(alg, &vec![0x42; alg.key_len()]).expect("key");
    let mac = Mac::new(integ, &vec![0x24; integ.key_len()]).expect("key");
    let iv = vec![7u8; alg.iv_len()];
    let header = [0u8; 8];
    // ESP pads the payload to the block length: 1400 -> 1408 for AES.
    let len = PACKET.next_multiple_of(alg.block_len());
    let mut buf = vec![0u8; len];
    let mut icv = [0u8; 32];
    let mut g = c.benchmark_group("esp");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function(format!("{}+{} seal", alg.name(), integ.name()), |b| {
        b.iter(|| {
            cipher.encrypt_cbc(&iv, &mut buf).expect("aligned");
            mac.sign(&[&header, &iv, &buf], &mut icv);
            black_box(&icv);
        })
    });
    g.bench_function(format!("{}+{} open", alg.name(), integ.name()), |b| {
        b.iter(|| {
            black_box(mac.verify(&[&header, &iv, &buf], &icv[..mac.icv_len()]));
            cipher.decrypt_cbc(&iv, &mut buf).expect("aligned");
        })
    });
    g.finish();
}

/// The CBC cipher alone (no integrity), to separate cipher cost from MAC cost.
fn cbc_only(c: &mut Criterion, alg: CipherAlg) {
    let cipher = BlockCipher::new(alg, &vec![0x42; alg.key_len()]).expect("key");
    let iv = vec![7u8; alg.iv_len()];
    let len = PACKET.next_multiple_of(alg.block_len());
    let mut buf = vec![0u8; len];
    let mut g = c.benchmark_group("cbc");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function(format!("{} encrypt", alg.name()), |b| {
        b.iter(|| {
            cipher
                .encrypt_cbc(&iv, black_box(&mut buf))
                .expect("aligned")
        })
    });
    g.bench_function(format!("{} decrypt", alg.name()), |b| {
        b.iter(|| {
            cipher
                .decrypt_cbc(&iv, black_box(&mut buf))
                .expect("aligned")
        })
    });
    g.finish();
}

fn gcm(c: &mut Criterion, alg: CipherAlg) {
    let aead = Aead::new(alg, &vec![0x42; alg.keymat_len()]).expect("key");
    let aad = [0u8; 8];
    let mut buf = vec![0u8; PACKET];
    let mut g = c.benchmark_group("esp");
    g.throughput(Throughput::Bytes(PACKET as u64));
    let mut counter = 0u64;
    g.bench_function(format!("{} seal", alg.name()), |b| {
        b.iter(|| {
            counter += 1;
            black_box(
                aead.seal_in_place(&counter.to_be_bytes(), &aad, &mut buf)
                    .expect("seal"),
            );
        })
    });
    let iv = [1u8; 8];
    let mut sealed = vec![0u8; PACKET];
    let tag = aead.seal_in_place(&iv, &aad, &mut sealed).expect("seal");
    g.bench_function(format!("{} open", alg.name()), |b| {
        b.iter(|| {
            buf.copy_from_slice(&sealed);
            aead.open_in_place(&iv, &aad, &mut buf, &tag).expect("open");
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    cbc_combo(
        c,
        CipherAlg::AesCbc { key_bits: 128 },
        IntegAlg::HmacSha1_96,
    );
    cbc_combo(
        c,
        CipherAlg::AesCbc { key_bits: 256 },
        IntegAlg::HmacSha1_96,
    );
    cbc_combo(
        c,
        CipherAlg::AesCbc { key_bits: 128 },
        IntegAlg::HmacSha256_128,
    );
    cbc_combo(
        c,
        CipherAlg::AesCbc { key_bits: 256 },
        IntegAlg::HmacSha256_128,
    );
    cbc_combo(c, CipherAlg::TripleDesCbc, IntegAlg::HmacSha1_96);
    cbc_only(c, CipherAlg::TripleDesCbc);
    cbc_only(c, CipherAlg::DesCbc);
    gcm(c, CipherAlg::AesGcm16 { key_bits: 128 });
    gcm(c, CipherAlg::AesGcm16 { key_bits: 256 });
}

criterion_group!(esp, benches);
criterion_main!(esp);
