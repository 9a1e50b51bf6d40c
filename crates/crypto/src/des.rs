//! DES and 3DES (TDEA keying option 1, EDE) block ciphers, FIPS 46-3 / SP 800-67.
//!
//! The round function uses the classic "SP-box" formulation: each of the eight S-boxes is merged
//! with the P permutation into a 64-entry table of 32-bit words built at compile time, and the key
//! schedule is expanded once into per-round words laid out so that the E expansion reduces to
//! two rotations and a mask per S-box index. IP and FP are done with delta swaps on 64-bit words.
//!
//! Timing: the S-box table lookups are indexed by secret-dependent values, so, as in most DES
//! implementations, they are not constant-time with respect to cache timing. That is accepted
//! here: DES and 3DES are legacy ciphers kept for interoperability with old servers and only used
//! when the policy opts in to them (DES is "weak", 3DES "legacy"); the tables are small (2 KiB)
//! and stay in L1 cache, and a bitsliced constant-time variant cannot parallelize CBC encryption,
//! the direction every ESP packet we send needs.

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

/// S-box `s` merged with P, rotated left by one bit to match the rotated half-block
/// representation the rounds work in (see [`round`]).
const fn build_sp() -> [[u32; 64]; 8] {
    let mut sp = [[0u32; 64]; 8];
    let mut s = 0;
    while s < 8 {
        let mut x = 0;
        while x < 64 {
            let row = ((x >> 4) & 2) | (x & 1);
            let col = (x >> 1) & 0xf;
            let out = SBOX[s][row][col] as u64;
            let placed = out << (28 - 4 * s);
            let permuted = permute(placed, 32, &P) as u32;
            sp[s][x] = permuted.rotate_left(1);
            x += 1;
        }
        s += 1;
    }
    sp
}

/// The combined S-box/P tables, computed at compile time.
static SP: [[u32; 64]; 8] = build_sp();

/// Number of 32-bit words in one DES key schedule (16 rounds, 2 words each).
const SCHEDULE_WORDS: usize = 32;

/// Expand a 64-bit DES key (parity bits ignored) into 16 round keys, each as two words:
/// the even S-box chunks (S1, S3, S5, S7 from the top byte down) and the odd ones.
fn key_schedule(key: &[u8; 8]) -> [u32; SCHEDULE_WORDS] {
    let mut cd = permute(u64::from_be_bytes(*key), 64, &PC1);
    let mut c = (cd >> 28) as u32;
    let mut d = (cd & 0x0fff_ffff) as u32;
    let mut ks = [0u32; SCHEDULE_WORDS];
    for (round, &shift) in SHIFTS.iter().enumerate() {
        c = ((c << shift) | (c >> (28 - shift))) & 0x0fff_ffff;
        d = ((d << shift) | (d >> (28 - shift))) & 0x0fff_ffff;
        cd = (u64::from(c) << 28) | u64::from(d);
        let k48 = permute(cd, 56, &PC2);
        let chunk = |i: u32| ((k48 >> (42 - 6 * i)) & 0x3f) as u32;
        ks[2 * round] = (chunk(0) << 24) | (chunk(2) << 16) | (chunk(4) << 8) | chunk(6);
        ks[2 * round + 1] = (chunk(1) << 24) | (chunk(3) << 16) | (chunk(5) << 8) | chunk(7);
    }
    cd.zeroize();
    c.zeroize();
    d.zeroize();
    ks
}

/// The same round keys in reverse round order, for decryption.
fn reversed(ks: &[u32; SCHEDULE_WORDS]) -> [u32; SCHEDULE_WORDS] {
    let mut out = [0u32; SCHEDULE_WORDS];
    for round in 0..16 {
        out[2 * round] = ks[2 * (15 - round)];
        out[2 * round + 1] = ks[2 * (15 - round) + 1];
    }
    out
}

/// The Feistel function f(R, K) = P(S(E(R) ^ K)) on rotated halves.
///
/// `r` is the half-block rotated left by one bit. For S-box i the six E-expanded input bits are
/// `rotr(R, 27 - 4i)`: with `r = rotl(R, 1)` the odd boxes read `r` directly and the even ones
/// `rotr(r, 4)`, one byte per box. The result is rotated left by one bit like `r`.
#[inline(always)]
fn round(r: u32, k_even: u32, k_odd: u32) -> u32 {
    let t = r.rotate_right(4) ^ k_even;
    let u = r ^ k_odd;
    let a = SP[0][(t >> 24) as usize & 0x3f] ^ SP[2][(t >> 16) as usize & 0x3f];
    let b = SP[4][(t >> 8) as usize & 0x3f] ^ SP[6][t as usize & 0x3f];
    let c = SP[1][(u >> 24) as usize & 0x3f] ^ SP[3][(u >> 16) as usize & 0x3f];
    let d = SP[5][(u >> 8) as usize & 0x3f] ^ SP[7][u as usize & 0x3f];
    (a ^ b) ^ (c ^ d)
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

/// Run 16 rounds per schedule in `ks` (1 for DES, 3 for EDE), swapping halves after each.
#[inline(always)]
fn crypt<const N: usize>(ks: &[u32; N], x: u64) -> u64 {
    let (mut l, mut r) = ip(x);
    for stage in ks.chunks_exact(SCHEDULE_WORDS) {
        for k in stage.chunks_exact(4) {
            l ^= round(r, k[0], k[1]);
            r ^= round(l, k[2], k[3]);
        }
        std::mem::swap(&mut l, &mut r);
    }
    fp(l, r)
}

/// Two independent blocks through the same schedule, interleaved for instruction-level
/// parallelism (used where the mode allows it: CBC decryption).
#[inline(always)]
fn crypt2<const N: usize>(ks: &[u32; N], x0: u64, x1: u64) -> (u64, u64) {
    let (mut l0, mut r0) = ip(x0);
    let (mut l1, mut r1) = ip(x1);
    for stage in ks.chunks_exact(SCHEDULE_WORDS) {
        for k in stage.chunks_exact(4) {
            l0 ^= round(r0, k[0], k[1]);
            l1 ^= round(r1, k[0], k[1]);
            r0 ^= round(l0, k[2], k[3]);
            r1 ^= round(l1, k[2], k[3]);
        }
        std::mem::swap(&mut l0, &mut r0);
        std::mem::swap(&mut l1, &mut r1);
    }
    (fp(l0, r0), fp(l1, r1))
}

fn load(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

/// CBC-encrypt whole 8-byte blocks in place (lengths checked by the caller).
fn cbc_encrypt<const N: usize>(ks: &[u32; N], iv: u64, data: &mut [u8]) {
    let mut prev = iv;
    for blk in data.chunks_exact_mut(8) {
        prev = crypt(ks, load(blk) ^ prev);
        blk.copy_from_slice(&prev.to_be_bytes());
    }
}

/// CBC-decrypt whole 8-byte blocks in place, two blocks at a time.
fn cbc_decrypt<const N: usize>(ks: &[u32; N], iv: u64, data: &mut [u8]) {
    let mut prev = iv;
    let mut pairs = data.chunks_exact_mut(16);
    for pair in &mut pairs {
        let c0 = load(&pair[..8]);
        let c1 = load(&pair[8..]);
        let (p0, p1) = crypt2(ks, c0, c1);
        pair[..8].copy_from_slice(&(p0 ^ prev).to_be_bytes());
        pair[8..].copy_from_slice(&(p1 ^ c0).to_be_bytes());
        prev = c1;
    }
    let rest = pairs.into_remainder();
    if !rest.is_empty() {
        let c = load(rest);
        rest.copy_from_slice(&(crypt(ks, c) ^ prev).to_be_bytes());
    }
}

/// Single DES with a precomputed key schedule; the schedule is zeroized on drop.
///
/// Weak and semi-weak keys are accepted and parity bits are ignored, as FIPS 46-3 allows.
#[derive(Clone)]
pub(crate) struct Des {
    enc: [u32; SCHEDULE_WORDS],
    dec: [u32; SCHEDULE_WORDS],
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
    enc: [u32; EDE_WORDS],
    dec: [u32; EDE_WORDS],
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
        let mut enc = [0u32; EDE_WORDS];
        let mut dec = [0u32; EDE_WORDS];
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
