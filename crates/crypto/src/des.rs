//! DES and 3DES (TDEA keying option 1, EDE) block ciphers, FIPS 46-3 / SP 800-67.
//!
//! The round function uses the classic "SP-box" formulation: each of the eight S-boxes is merged
//! with the P permutation into a 64-entry table built at compile time, and the key schedule is
//! expanded once into per-round words laid out so that the E expansion reduces to byte
//! extraction (see [`widen`]). IP and FP are done with delta swaps on 64-bit words.
//!
//! Timing: the S-box table lookups are indexed by secret-dependent values, so, as in most DES
//! implementations, they are not constant-time with respect to cache timing. That is accepted
//! here: DES and 3DES are legacy ciphers kept for interoperability with old servers and only used
//! when the policy opts in to them (DES is "weak", 3DES "legacy"); the tables are small (4 KiB)
//! and stay in L1 cache; and a bitsliced constant-time variant cannot parallelize CBC
//! encryption, the direction every ESP packet we send needs, so it would be several times slower.

use zeroize::Zeroize;

/// The eight S-boxes of FIPS 46-3, each as four rows of sixteen 4-bit outputs.
const SBOX: [[[u8; 16]; 4]; 8] = [
    [
        [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7],
        [0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8],
        [4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0],
        [15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
    ],
    [
        [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10],
        [3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5],
        [0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15],
        [13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
    ],
    [
        [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8],
        [13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1],
        [13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7],
        [1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
    ],
    [
        [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15],
        [13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9],
        [10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4],
        [3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
    ],
    [
        [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9],
        [14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6],
        [4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14],
        [11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
    ],
    [
        [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11],
        [10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8],
        [9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6],
        [4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
    ],
    [
        [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1],
        [13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6],
        [1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2],
        [6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
    ],
    [
        [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7],
        [1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2],
        [7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8],
        [2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
    ],
];

/// The P permutation: output bit i (1-based, MSB first) is input bit `P[i - 1]`.
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];

/// Permuted choice 1: 56 key bits from the 64-bit key (parity bits dropped).
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];

/// Permuted choice 2: the 48-bit round key from the 56-bit C||D register.
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/// Left rotations of C and D before each of the 16 rounds.
const SHIFTS: [u8; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// Apply a FIPS-style bit permutation: `table` holds 1-based positions counted from the MSB
/// of an `in_bits`-wide input; the result holds `table.len()` bits, MSB first.
const fn permute(input: u64, in_bits: u32, table: &[u8]) -> u64 {
    let mut out = 0u64;
    let mut i = 0;
    while i < table.len() {
        let bit = (input >> (in_bits - table[i] as u32)) & 1;
        out = (out << 1) | bit;
        i += 1;
    }
    out
}

/// S-box `s` merged with P, in the doubled half-block representation of [`widen`].
const fn build_sp() -> [[u64; 64]; 8] {
    let mut sp = [[0u64; 64]; 8];
    let mut s = 0;
    while s < 8 {
        let mut x = 0;
        while x < 64 {
            let row = ((x >> 4) & 2) | (x & 1);
            let col = (x >> 1) & 0xf;
            let out = SBOX[s][row][col] as u64;
            let placed = out << (28 - 4 * s);
            let permuted = permute(placed, 32, &P) as u32;
            sp[s][x] = widen(permuted.rotate_left(1));
            x += 1;
        }
        s += 1;
    }
    sp
}

/// The combined S-box/P tables (4 KiB), computed at compile time.
static SP: [[u64; 64]; 8] = build_sp();

/// Round keys in one DES key schedule (one 64-bit word per round).
const SCHEDULE_WORDS: usize = 16;

/// Expand a 64-bit DES key (parity bits ignored) into 16 round keys. Each round key word holds
/// the even S-box chunks (S1, S3, S5, S7, one per byte) in its high half and the odd ones
/// (S2, S4, S6, S8) in its low half, matching the byte positions [`feistel`] reads.
fn key_schedule(key: &[u8; 8]) -> [u64; SCHEDULE_WORDS] {
    let mut cd = permute(u64::from_be_bytes(*key), 64, &PC1);
    let mut c = (cd >> 28) as u32;
    let mut d = (cd & 0x0fff_ffff) as u32;
    let mut ks = [0u64; SCHEDULE_WORDS];
    for (k, &shift) in ks.iter_mut().zip(&SHIFTS) {
        c = ((c << shift) | (c >> (28 - shift))) & 0x0fff_ffff;
        d = ((d << shift) | (d >> (28 - shift))) & 0x0fff_ffff;
        cd = (u64::from(c) << 28) | u64::from(d);
        let k48 = permute(cd, 56, &PC2);
        let chunk = |i: u32| (k48 >> (42 - 6 * i)) & 0x3f;
        let even = (chunk(0) << 24) | (chunk(2) << 16) | (chunk(4) << 8) | chunk(6);
        let odd = (chunk(1) << 24) | (chunk(3) << 16) | (chunk(5) << 8) | chunk(7);
        *k = (even << 32) | odd;
    }
    cd.zeroize();
    c.zeroize();
    d.zeroize();
    ks
}

/// The same round keys in reverse round order, for decryption.
fn reversed(ks: &[u64; SCHEDULE_WORDS]) -> [u64; SCHEDULE_WORDS] {
    let mut out = *ks;
    out.reverse();
    out
}

/// A half-block `h` (already rotated left by one bit) as `rotr(h, 4) || h`.
///
/// For S-box i the six E-expanded input bits of R are `rotr(R, 27 - 4i)` (low six bits). With
/// `h = rotl(R, 1)`, the odd boxes S2, S4, S6, S8 read bytes 3..0 of `h` and the even boxes
/// S1, S3, S5, S7 bytes 3..0 of `rotr(h, 4)`. Keeping both forms in one word (and the tables in
/// the same form) turns E into nothing but byte extraction, with no rotation per round.
const fn widen(h: u32) -> u64 {
    ((h.rotate_right(4) as u64) << 32) | h as u64
}

/// The Feistel function f(R, K) = P(S(E(R) ^ K)) of `x` = widened R XOR the round key.
///
/// The eight table words have pairwise disjoint bits (each S-box feeds four distinct output
/// bits of P), so OR, ADD and XOR combine them alike. Mixing the three operators keeps the
/// compiler from re-associating the sum into one serial chain of eight XORs: the tree is three
/// levels deep, which shortens the per-round latency that bounds CBC encryption.
#[inline(always)]
fn feistel(x: u64) -> u64 {
    let a = SP[0][(x >> 56) as usize & 0x3f] | SP[2][(x >> 48) as usize & 0x3f];
    let b = SP[4][(x >> 40) as usize & 0x3f] | SP[6][(x >> 32) as usize & 0x3f];
    let c = SP[1][(x >> 24) as usize & 0x3f] | SP[3][(x >> 16) as usize & 0x3f];
    let d = SP[5][(x >> 8) as usize & 0x3f] | SP[7][x as usize & 0x3f];
    a.wrapping_add(b) ^ c.wrapping_add(d)
}

/// 8x8 bit-matrix transpose of a 64-bit word (row = byte, most significant byte first).
#[inline(always)]
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00aa_00aa_00aa_00aa;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_cccc_0000_cccc;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_f0f0_f0f0;
    x ^= t ^ (t << 28);
    x
}

/// Initial permutation; returns both halves rotated left by one bit.
///
/// IP maps row j, column k of the input bit matrix from input row 7-k, column c(j) with
/// c = [1, 3, 5, 7, 0, 2, 4, 6]: an anti-diagonal transpose (bit reversal, then transpose)
/// followed by a byte reordering.
#[inline(always)]
fn ip(x: u64) -> (u32, u32) {
    let a = transpose8(x.reverse_bits()).to_be_bytes();
    let l = u32::from_be_bytes([a[6], a[4], a[2], a[0]]);
    let r = u32::from_be_bytes([a[7], a[5], a[3], a[1]]);
    (l.rotate_left(1), r.rotate_left(1))
}

/// Final permutation (IP^-1) of the rotated halves `l || r`.
#[inline(always)]
fn fp(l: u32, r: u32) -> u64 {
    let l = l.rotate_right(1).to_be_bytes();
    let r = r.rotate_right(1).to_be_bytes();
    let a = [l[3], r[3], l[2], r[2], l[1], r[1], l[0], r[0]];
    transpose8(u64::from_be_bytes(a)).reverse_bits()
}

/// Run 16 rounds per schedule in `ks` (1 for DES, 3 for EDE) on the output halves of [`ip`],
/// swapping halves after each schedule; the result is the input of [`fp`].
///
/// The next round's keyed input is computed as `(half ^ next_key) ^ f` rather than
/// `(half ^ f) ^ next_key`, so the key XOR happens off the round-to-round dependency chain.
#[inline(always)]
fn rounds<const N: usize>(ks: &[u64; N], l: u32, r: u32) -> (u32, u32) {
    let (mut l, mut r) = (widen(l), widen(r));
    for stage in ks.chunks_exact(SCHEDULE_WORDS) {
        let mut x = r ^ stage[0];
        for i in 0..SCHEDULE_WORDS / 2 {
            let next = stage.get(2 * i + 2).copied().unwrap_or(0);
            let f = feistel(x);
            x = (l ^ stage[2 * i + 1]) ^ f;
            l ^= f;
            let f = feistel(x);
            x = (r ^ next) ^ f;
            r ^= f;
        }
        std::mem::swap(&mut l, &mut r);
    }
    (l as u32, r as u32)
}

/// One block through IP, the rounds and FP.
#[inline(always)]
fn crypt<const N: usize>(ks: &[u64; N], x: u64) -> u64 {
    let (l, r) = ip(x);
    let (l, r) = rounds(ks, l, r);
    fp(l, r)
}

/// `M` independent blocks through the same schedule, interleaved round by round for
/// instruction-level parallelism (used where the mode allows it: CBC decryption).
#[inline(always)]
fn crypt_many<const N: usize, const M: usize>(ks: &[u64; N], xs: [u64; M]) -> [u64; M] {
    let mut l = [0u64; M];
    let mut r = [0u64; M];
    for i in 0..M {
        let (a, b) = ip(xs[i]);
        (l[i], r[i]) = (widen(a), widen(b));
    }
    for stage in ks.chunks_exact(SCHEDULE_WORDS) {
        for k in stage.chunks_exact(2) {
            for i in 0..M {
                l[i] ^= feistel(r[i] ^ k[0]);
            }
            for i in 0..M {
                r[i] ^= feistel(l[i] ^ k[1]);
            }
        }
        std::mem::swap(&mut l, &mut r);
    }
    let mut out = [0u64; M];
    for i in 0..M {
        out[i] = fp(l[i] as u32, r[i] as u32);
    }
    out
}

/// Blocks decrypted together by [`cbc_decrypt`].
const LANES: usize = 3;

/// One big-endian block from an 8-byte slice (callers pass exact 8-byte chunks).
fn load(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

/// CBC-encrypt whole 8-byte blocks in place (lengths checked by the caller).
///
/// IP is linear over XOR and undoes FP, so `IP(P_i ^ C_{i-1}) = IP(P_i) ^ S_{i-1}` where
/// `S_{i-1}` is the previous block's state before FP: the chaining stays in the permuted domain
/// and IP/FP run off the serial block-to-block dependency chain.
fn cbc_encrypt<const N: usize>(ks: &[u64; N], iv: u64, data: &mut [u8]) {
    let (mut sl, mut sr) = ip(iv);
    for blk in data.chunks_exact_mut(8) {
        let (pl, pr) = ip(load(blk));
        (sl, sr) = rounds(ks, pl ^ sl, pr ^ sr);
        blk.copy_from_slice(&fp(sl, sr).to_be_bytes());
    }
}

/// CBC-decrypt whole 8-byte blocks in place, [`LANES`] blocks at a time.
fn cbc_decrypt<const N: usize>(ks: &[u64; N], iv: u64, data: &mut [u8]) {
    let mut prev = iv;
    let mut groups = data.chunks_exact_mut(8 * LANES);
    for group in &mut groups {
        let mut c = [0u64; LANES];
        for (ci, blk) in c.iter_mut().zip(group.chunks_exact(8)) {
            *ci = load(blk);
        }
        let p = crypt_many(ks, c);
        for ((blk, pi), ci) in group.chunks_exact_mut(8).zip(p).zip(c) {
            blk.copy_from_slice(&(pi ^ prev).to_be_bytes());
            prev = ci;
        }
    }
    for blk in groups.into_remainder().chunks_exact_mut(8) {
        let c = load(blk);
        blk.copy_from_slice(&(crypt(ks, c) ^ prev).to_be_bytes());
        prev = c;
    }
}

/// Single DES with a precomputed key schedule; the schedule is zeroized on drop.
///
/// Weak and semi-weak keys are accepted and parity bits are ignored, as FIPS 46-3 allows.
#[derive(Clone)]
pub(crate) struct Des {
    enc: [u64; SCHEDULE_WORDS],
    dec: [u64; SCHEDULE_WORDS],
}

impl Des {
    /// Key DES from its 8-byte key.
    pub(crate) fn new(key: &[u8; 8]) -> Self {
        let enc = key_schedule(key);
        let dec = reversed(&enc);
        Des { enc, dec }
    }

    /// Encrypt one block (ECB).
    pub(crate) fn encrypt_block(&self, block: &mut [u8; 8]) {
        *block = crypt(&self.enc, u64::from_be_bytes(*block)).to_be_bytes();
    }

    /// Decrypt one block (ECB).
    pub(crate) fn decrypt_block(&self, block: &mut [u8; 8]) {
        *block = crypt(&self.dec, u64::from_be_bytes(*block)).to_be_bytes();
    }

    /// CBC-encrypt `data` (a multiple of 8 bytes) in place.
    pub(crate) fn encrypt_cbc(&self, iv: &[u8; 8], data: &mut [u8]) {
        cbc_encrypt(&self.enc, u64::from_be_bytes(*iv), data);
    }

    /// CBC-decrypt `data` (a multiple of 8 bytes) in place.
    pub(crate) fn decrypt_cbc(&self, iv: &[u8; 8], data: &mut [u8]) {
        cbc_decrypt(&self.dec, u64::from_be_bytes(*iv), data);
    }
}

impl Drop for Des {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.dec.zeroize();
    }
}

/// Words in an EDE key schedule: three DES schedules back to back.
const EDE_WORDS: usize = 3 * SCHEDULE_WORDS;

/// Triple DES, EDE with three independent keys (SP 800-67 keying option 1):
/// `C = E_K3(D_K2(E_K1(P)))`. The schedules are zeroized on drop.
#[derive(Clone)]
pub(crate) struct TripleDes {
    enc: [u64; EDE_WORDS],
    dec: [u64; EDE_WORDS],
}

impl TripleDes {
    /// Key 3DES from K1 || K2 || K3 (24 bytes).
    pub(crate) fn new(key: &[u8; 24]) -> Self {
        let part = |i: usize| {
            let mut k = [0u8; 8];
            k.copy_from_slice(&key[8 * i..8 * i + 8]);
            let ks = key_schedule(&k);
            k.zeroize();
            ks
        };
        let (k1, k2, k3) = (part(0), part(1), part(2));
        let (mut r1, mut r2, mut r3) = (reversed(&k1), reversed(&k2), reversed(&k3));
        let mut enc = [0u64; EDE_WORDS];
        let mut dec = [0u64; EDE_WORDS];
        for (i, s) in [&k1, &r2, &k3].into_iter().enumerate() {
            enc[i * SCHEDULE_WORDS..(i + 1) * SCHEDULE_WORDS].copy_from_slice(s);
        }
        for (i, s) in [&r3, &k2, &r1].into_iter().enumerate() {
            dec[i * SCHEDULE_WORDS..(i + 1) * SCHEDULE_WORDS].copy_from_slice(s);
        }
        for mut s in [k1, k2, k3] {
            s.zeroize();
        }
        r1.zeroize();
        r2.zeroize();
        r3.zeroize();
        TripleDes { enc, dec }
    }

    /// Encrypt one block (ECB).
    pub(crate) fn encrypt_block(&self, block: &mut [u8; 8]) {
        *block = crypt(&self.enc, u64::from_be_bytes(*block)).to_be_bytes();
    }

    /// Decrypt one block (ECB).
    pub(crate) fn decrypt_block(&self, block: &mut [u8; 8]) {
        *block = crypt(&self.dec, u64::from_be_bytes(*block)).to_be_bytes();
    }

    /// CBC-encrypt `data` (a multiple of 8 bytes) in place.
    pub(crate) fn encrypt_cbc(&self, iv: &[u8; 8], data: &mut [u8]) {
        cbc_encrypt(&self.enc, u64::from_be_bytes(*iv), data);
    }

    /// CBC-decrypt `data` (a multiple of 8 bytes) in place.
    pub(crate) fn decrypt_cbc(&self, iv: &[u8; 8], data: &mut [u8]) {
        cbc_decrypt(&self.dec, u64::from_be_bytes(*iv), data);
    }
}

impl Drop for TripleDes {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.dec.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cipher::generic_array::GenericArray;
    use cipher::{BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit};

    /// FIPS 46-3 initial permutation, for checking the delta-swap version.
    const IP: [u8; 64] = [
        58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14,
        6, 64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11,
        3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
    ];

    /// Test values: every single-bit word, then a deterministic pseudo-random sequence.
    fn samples() -> Vec<u64> {
        let mut v: Vec<u64> = (0..64).map(|i| 1u64 << i).collect();
        let mut x = 0x0123_4567_89ab_cdefu64;
        for _ in 0..256 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            v.push(x);
        }
        v
    }

    #[test]
    fn transpose_is_a_transpose() {
        for x in samples() {
            let t = transpose8(x);
            for row in 0..8 {
                for col in 0..8 {
                    let bit = |w: u64, r: u32, c: u32| (w >> (63 - (8 * r + c))) & 1;
                    assert_eq!(bit(t, row, col), bit(x, col, row), "{x:016x}");
                }
            }
        }
    }

    #[test]
    fn ip_and_fp_match_fips_tables() {
        for x in samples() {
            let (l, r) = ip(x);
            let want = permute(x, 64, &IP);
            let got = (u64::from(l.rotate_right(1)) << 32) | u64::from(r.rotate_right(1));
            assert_eq!(got, want, "ip({x:016x})");
            assert_eq!(fp(l, r), x, "fp(ip({x:016x}))");
        }
    }

    #[test]
    fn sbox_rows_are_permutations() {
        for (i, sbox) in SBOX.iter().enumerate() {
            for row in sbox {
                let mut seen = [false; 16];
                for &v in row {
                    seen[usize::from(v)] = true;
                }
                assert!(seen.iter().all(|&s| s), "S{}", i + 1);
            }
        }
        // P is a permutation of 1..=32, PC1 picks no parity bit twice.
        let mut p = P.to_vec();
        p.sort_unstable();
        assert_eq!(p, (1..=32).collect::<Vec<u8>>());
        let mut pc1 = PC1.to_vec();
        pc1.sort_unstable();
        pc1.dedup();
        assert_eq!(pc1.len(), 56);
        assert!(pc1.iter().all(|b| b % 8 != 0));
    }

    fn check(key: u64, pt: u64, ct: u64) {
        let k = key.to_be_bytes();
        let d = Des::new(&k);
        let mut b = pt.to_be_bytes();
        d.encrypt_block(&mut b);
        assert_eq!(u64::from_be_bytes(b), ct, "des key {key:016x} pt {pt:016x}");
        d.decrypt_block(&mut b);
        assert_eq!(u64::from_be_bytes(b), pt, "des decrypt key {key:016x}");
        // The TDEA known-answer tests (SP 800-20) use K1 = K2 = K3, where EDE degenerates to DES.
        let mut k3 = [0u8; 24];
        for part in k3.chunks_mut(8) {
            part.copy_from_slice(&k);
        }
        let t = TripleDes::new(&k3);
        let mut b = pt.to_be_bytes();
        t.encrypt_block(&mut b);
        assert_eq!(
            u64::from_be_bytes(b),
            ct,
            "3des key {key:016x} pt {pt:016x}"
        );
        t.decrypt_block(&mut b);
        assert_eq!(u64::from_be_bytes(b), pt, "3des decrypt key {key:016x}");
    }

    /// SP 800-20 Table A.1 (variable plaintext; key 0101010101010101, plaintext bit i set).
    const VARIABLE_PLAINTEXT: [u64; 64] = [
        0x95f8a5e5dd31d900,
        0xdd7f121ca5015619,
        0x2e8653104f3834ea,
        0x4bd388ff6cd81d4f,
        0x20b9e767b2fb1456,
        0x55579380d77138ef,
        0x6cc5defaaf04512f,
        0x0d9f279ba5d87260,
        0xd9031b0271bd5a0a,
        0x424250b37c3dd951,
        0xb8061b7ecd9a21e5,
        0xf15d0f286b65bd28,
        0xadd0cc8d6e5deba1,
        0xe6d5f82752ad63d1,
        0xecbfe3bd3f591a5e,
        0xf356834379d165cd,
        0x2b9f982f20037fa9,
        0x889de068a16f0be6,
        0xe19e275d846a1298,
        0x329a8ed523d71aec,
        0xe7fce22557d23c97,
        0x12a9f5817ff2d65d,
        0xa484c3ad38dc9c19,
        0xfbe00a8a1ef8ad72,
        0x750d079407521363,
        0x64feed9c724c2faf,
        0xf02b263b328e2b60,
        0x9d64555a9a10b852,
        0xd106ff0bed5255d7,
        0xe1652c6b138c64a5,
        0xe428581186ec8f46,
        0xaeb5f5ede22d1a36,
        0xe943d7568aec0c5c,
        0xdf98c8276f54b04b,
        0xb160e4680f6c696f,
        0xfa0752b07d9c4ab8,
        0xca3a2b036dbc8502,
        0x5e0905517bb59bcf,
        0x814eeb3b91d90726,
        0x4d49db1532919c9f,
        0x25eb5fc3f8cf0621,
        0xab6a20c0620d1c6f,
        0x79e90dbc98f92cca,
        0x866ecedd8072bb0e,
        0x8b54536f2f3e64a8,
        0xea51d3975595b86b,
        0xcaffc6ac4542de31,
        0x8dd45a2ddf90796c,
        0x1029d55e880ec2d0,
        0x5d86cb23639dbea9,
        0x1d1ca853ae7c0c5f,
        0xce332329248f3228,
        0x8405d1abe24fb942,
        0xe643d78090ca4207,
        0x48221b9937748a23,
        0xdd7c0bbd61fafd54,
        0x2fbc291a570db5c4,
        0xe07c30d7e4e26e12,
        0x0953e2258e8e90a1,
        0x5b711bc4ceebf2ee,
        0xcc083f1e6d9e85f6,
        0xd2fd8867d50d2dfe,
        0x06e7ea22ce92708f,
        0x166b40b44aba4bd6,
    ];

    /// SP 800-20 Table A.2 (variable key; plaintext 0, one non-parity key bit set in turn).
    const VARIABLE_KEY: [u64; 56] = [
        0x95a8d72813daa94d,
        0x0eec1487dd8c26d5,
        0x7ad16ffb79c45926,
        0xd3746294ca6a6cf3,
        0x809f5f873c1fd761,
        0xc02faffec989d1fc,
        0x4615aa1d33e72f10,
        0x2055123350c00858,
        0xdf3b99d6577397c8,
        0x31fe17369b5288c9,
        0xdfdd3cc64dae1642,
        0x178c83ce2b399d94,
        0x50f636324a9b7f80,
        0xa8468ee3bc18f06d,
        0xa2dc9e92fd3cde92,
        0xcac09f797d031287,
        0x90ba680b22aeb525,
        0xce7a24f350e280b6,
        0x882bff0aa01a0b87,
        0x25610288924511c2,
        0xc71516c29c75d170,
        0x5199c29a52c9f059,
        0xc22f0a294a71f29f,
        0xee371483714c02ea,
        0xa81fbd448f9e522f,
        0x4f644c92e192dfed,
        0x1afa9a66a6df92ae,
        0xb3c1cc715cb879d8,
        0x19d032e64ab0bd8b,
        0x3cfaa7a7dc8720dc,
        0xb7265f7f447ac6f3,
        0x9db73b3c0d163f54,
        0x8181b65babf4a975,
        0x93c9b64042eaa240,
        0x5570530829705592,
        0x8638809e878787a0,
        0x41b9a79af79ac208,
        0x7a9be42f2009a892,
        0x29038d56ba6d2745,
        0x5495c6abf1e5df51,
        0xae13dbd561488933,
        0x024d1ffa8904e389,
        0xd1399712f99bf02e,
        0x14c1d7c1cffec79e,
        0x1de5279dae3bed6f,
        0xe941a33f85501303,
        0xda99dbbc9a03f379,
        0xb7fc92f91d8e92e9,
        0xae8e5caa3ca04e85,
        0x9cc62df43b6eed74,
        0xd863dbb5c59a91a0,
        0xa1ab2190545b91d7,
        0x0875041e64c570f7,
        0x5a594528bebef1cc,
        0xfcdb3291de21f0c0,
        0x869efd7f9f265a09,
    ];

    /// SP 800-20 Table A.3 (permutation operation; plaintext 0): (key, ciphertext).
    const PERMUTATION: [(u64, u64); 32] = [
        (0x1046913489980131, 0x88d55e54f54c97b4),
        (0x1007103489988020, 0x0c0cc00c83ea48fd),
        (0x10071034c8980120, 0x83bc8ef3a6570183),
        (0x1046103489988020, 0xdf725dcad94ea2e9),
        (0x1086911519190101, 0xe652b53b550be8b0),
        (0x1086911519580101, 0xaf527120c485cbb0),
        (0x5107b01519580101, 0x0f04ce393db926d5),
        (0x1007b01519190101, 0xc9f00ffc74079067),
        (0x3107915498080101, 0x7cfd82a593252b4e),
        (0x3107919498080101, 0xcb49a2f9e91363e3),
        (0x10079115b9080140, 0x00b588be70d23f56),
        (0x3107911598080140, 0x406a9a6ab43399ae),
        (0x1007d01589980101, 0x6cb773611dca9ada),
        (0x9107911589980101, 0x67fd21c17dbb5d70),
        (0x9107d01589190101, 0x9592cb4110430787),
        (0x1007d01598980120, 0xa6b7ff68a318ddd3),
        (0x1007940498190101, 0x4d102196c914ca16),
        (0x0107910491190401, 0x2dfa9f4573594965),
        (0x0107910491190101, 0xb46604816c0e0774),
        (0x0107940491190401, 0x6e7e6221a4f34e87),
        (0x19079210981a0101, 0xaa85e74643233199),
        (0x1007911998190801, 0x2e5a19db4d1962d6),
        (0x10079119981a0801, 0x23a866a809d30894),
        (0x1007921098190101, 0xd812d961f017d320),
        (0x100791159819010b, 0x055605816e58608f),
        (0x1004801598190101, 0xabd88e8b1b7716f1),
        (0x1004801598190102, 0x537ac95be69da1e1),
        (0x1004801598190108, 0xaed0f6ae3c25cdd8),
        (0x1002911498100104, 0xb3e35a5ee53e7b8d),
        (0x1002911598190104, 0x61c79c71921a2ef8),
        (0x1002911598100201, 0xe2f5728f0995013c),
        (0x1002911698100101, 0x1aeac39a61f0a464),
    ];

    /// SP 800-20 Table A.4 (substitution table; exercises every S-box entry): (key, pt, ct).
    const SUBSTITUTION: [(u64, u64, u64); 19] = [
        (0x7ca110454a1a6e57, 0x01a1d6d039776742, 0x690f5b0d9a26939b),
        (0x0131d9619dc1376e, 0x5cd54ca83def57da, 0x7a389d10354bd271),
        (0x07a1133e4a0b2686, 0x0248d43806f67172, 0x868ebb51cab4599a),
        (0x3849674c2602319e, 0x51454b582ddf440a, 0x7178876e01f19b2a),
        (0x04b915ba43feb5b6, 0x42fd443059577fa2, 0xaf37fb421f8c4095),
        (0x0113b970fd34f2ce, 0x059b5e0851cf143a, 0x86a560f10ec6d85b),
        (0x0170f175468fb5e6, 0x0756d8e0774761d2, 0x0cd3da020021dc09),
        (0x43297fad38e373fe, 0x762514b829bf486a, 0xea676b2cb7db2b7a),
        (0x07a7137045da2a16, 0x3bdd119049372802, 0xdfd64a815caf1a0f),
        (0x04689104c2fd3b2f, 0x26955f6835af609a, 0x5c513c9c4886c088),
        (0x37d06bb516cb7546, 0x164d5e404f275232, 0x0a2aeeae3ff4ab77),
        (0x1f08260d1ac2465e, 0x6b056e18759f5cca, 0xef1bf03e5dfa575a),
        (0x584023641aba6176, 0x004bd6ef09176062, 0x88bf0db6d70dee56),
        (0x025816164629b007, 0x480d39006ee762f2, 0xa1f9915541020b56),
        (0x49793ebc79b3258f, 0x437540c8698f3cfa, 0x6fbf1cafcffd0556),
        (0x4fb05e1515ab73a7, 0x072d43a077075292, 0x2f22e49bab7ca1ac),
        (0x49e95d6d4ca229bf, 0x02fe55778117f12a, 0x5a6b612cc26cce4a),
        (0x018310dc409b26d6, 0x1d9d5c5018f728c2, 0x5f4c038ed12b2e41),
        (0x1c587f1c13924fef, 0x305532286d6f295a, 0x63fac0d034d9f793),
    ];

    #[test]
    fn sp800_20_variable_plaintext() {
        for (i, &ct) in VARIABLE_PLAINTEXT.iter().enumerate() {
            check(0x0101_0101_0101_0101, 1u64 << (63 - i), ct);
        }
    }

    #[test]
    fn sp800_20_inverse_permutation() {
        // Table A.1 read backwards: decrypting the ciphertexts of A.1 yields the unit vectors.
        let d = Des::new(&[1; 8]);
        for (i, &ct) in VARIABLE_PLAINTEXT.iter().enumerate() {
            let mut b = ct.to_be_bytes();
            d.decrypt_block(&mut b);
            assert_eq!(u64::from_be_bytes(b), 1u64 << (63 - i));
        }
    }

    #[test]
    fn sp800_20_variable_key() {
        let mut n = 0;
        for byte in 0..8 {
            for bit in 0..7 {
                let mut key = [0x01u8; 8];
                key[byte] = 0x80 >> bit;
                check(u64::from_be_bytes(key), 0, VARIABLE_KEY[n]);
                n += 1;
            }
        }
        assert_eq!(n, VARIABLE_KEY.len());
    }

    #[test]
    fn sp800_20_permutation_operation() {
        for &(key, ct) in &PERMUTATION {
            check(key, 0, ct);
        }
    }

    #[test]
    fn sp800_20_substitution_table() {
        for &(key, pt, ct) in &SUBSTITUTION {
            check(key, pt, ct);
        }
    }

    #[test]
    fn parity_bits_are_ignored_and_weak_keys_accepted() {
        let a = Des::new(&[0x13, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1]);
        let b = Des::new(&[0x12, 0x35, 0x56, 0x78, 0x9a, 0xbd, 0xde, 0xf0]);
        let (mut x, mut y) = ([0x42u8; 8], [0x42u8; 8]);
        a.encrypt_block(&mut x);
        b.encrypt_block(&mut y);
        assert_eq!(x, y);
        // Weak key 0101010101010101: encryption is an involution.
        let w = Des::new(&[1; 8]);
        let mut z = [0x5au8; 8];
        w.encrypt_block(&mut z);
        assert_ne!(z, [0x5a; 8]);
        w.encrypt_block(&mut z);
        assert_eq!(z, [0x5a; 8]);
    }

    #[test]
    fn cbc_decrypt_handles_odd_block_counts() {
        let t = TripleDes::new(&[0x3c; 24]);
        let iv = [9u8; 8];
        for blocks in 0..6 {
            let pt: Vec<u8> = (0..blocks * 8).map(|i| (i * 7 + 1) as u8).collect();
            let mut buf = pt.clone();
            t.encrypt_cbc(&iv, &mut buf);
            let mut manual = pt.clone();
            let mut prev = iv;
            for blk in manual.chunks_mut(8) {
                let c: [u8; 8] = blk.try_into().expect("8");
                let mut p = c;
                t.decrypt_block(&mut p);
                for (o, (a, b)) in blk.iter_mut().zip(p.iter().zip(&prev)) {
                    *o = a ^ b;
                }
                prev = c;
            }
            // `manual` now holds CBC-decrypt(pt) computed block by block.
            let mut fast = pt.clone();
            t.decrypt_cbc(&iv, &mut fast);
            assert_eq!(fast, manual, "{blocks} blocks");
            t.decrypt_cbc(&iv, &mut buf);
            assert_eq!(buf, pt, "{blocks} blocks");
        }
    }

    fn rc_cbc_encrypt<C>(c: C, iv: &[u8; 8], data: &mut [u8])
    where
        C: BlockEncryptMut + cipher::BlockCipher,
    {
        use cipher::InnerIvInit;
        use cipher::block_padding::NoPadding;
        let len = data.len();
        cbc::Encryptor::<C>::inner_iv_slice_init(c, iv)
            .expect("iv")
            .encrypt_padded_mut::<NoPadding>(data, len)
            .expect("aligned");
    }

    fn rc_cbc_decrypt<C>(c: C, iv: &[u8; 8], data: &mut [u8])
    where
        C: BlockDecryptMut + cipher::BlockCipher,
    {
        use cipher::InnerIvInit;
        use cipher::block_padding::NoPadding;
        cbc::Decryptor::<C>::inner_iv_slice_init(c, iv)
            .expect("iv")
            .decrypt_padded_mut::<NoPadding>(data)
            .expect("aligned");
    }

    proptest::proptest! {
        #[test]
        fn des_matches_rustcrypto(key in proptest::num::u64::ANY, block in proptest::num::u64::ANY,
                                  iv in proptest::num::u64::ANY,
                                  data in proptest::collection::vec(proptest::num::u8::ANY, 0..10)) {
            let k = key.to_be_bytes();
            let ours = Des::new(&k);
            let theirs = des::Des::new(GenericArray::from_slice(&k));
            let mut a = block.to_be_bytes();
            let mut b = GenericArray::from(block.to_be_bytes());
            ours.encrypt_block(&mut a);
            theirs.encrypt_block(&mut b);
            proptest::prop_assert_eq!(&a[..], &b[..]);
            let mut a = block.to_be_bytes();
            let mut b = GenericArray::from(block.to_be_bytes());
            ours.decrypt_block(&mut a);
            theirs.decrypt_block(&mut b);
            proptest::prop_assert_eq!(&a[..], &b[..]);
            // CBC both ways over a few blocks built from `data`.
            let iv = iv.to_be_bytes();
            let mut x: Vec<u8> = data.iter().flat_map(|&d| [d; 8]).collect();
            let mut y = x.clone();
            ours.encrypt_cbc(&iv, &mut x);
            rc_cbc_encrypt(theirs.clone(), &iv, &mut y);
            proptest::prop_assert_eq!(&x, &y);
            ours.decrypt_cbc(&iv, &mut x);
            rc_cbc_decrypt(theirs, &iv, &mut y);
            proptest::prop_assert_eq!(x, y);
        }

        #[test]
        fn tdes_matches_rustcrypto(key in proptest::collection::vec(proptest::num::u8::ANY, 24),
                                   block in proptest::num::u64::ANY, iv in proptest::num::u64::ANY,
                                   data in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let k: [u8; 24] = key.as_slice().try_into().expect("24");
            let ours = TripleDes::new(&k);
            let theirs = des::TdesEde3::new(GenericArray::from_slice(&k));
            let mut a = block.to_be_bytes();
            let mut b = GenericArray::from(block.to_be_bytes());
            ours.encrypt_block(&mut a);
            theirs.encrypt_block(&mut b);
            proptest::prop_assert_eq!(&a[..], &b[..]);
            let mut a = block.to_be_bytes();
            let mut b = GenericArray::from(block.to_be_bytes());
            ours.decrypt_block(&mut a);
            theirs.decrypt_block(&mut b);
            proptest::prop_assert_eq!(&a[..], &b[..]);
            let iv = iv.to_be_bytes();
            let n = data.len() / 8 * 8;
            let mut x = data[..n].to_vec();
            let mut y = x.clone();
            ours.encrypt_cbc(&iv, &mut x);
            rc_cbc_encrypt(theirs.clone(), &iv, &mut y);
            proptest::prop_assert_eq!(&x, &y);
            // Decrypt the ciphertext (not just the round trip) with both.
            let mut x2 = x.clone();
            ours.decrypt_cbc(&iv, &mut x2);
            rc_cbc_decrypt(theirs, &iv, &mut y);
            proptest::prop_assert_eq!(&x2, &y);
            proptest::prop_assert_eq!(&x2[..], &data[..n]);
        }
    }
}
