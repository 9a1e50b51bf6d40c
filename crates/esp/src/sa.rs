//! One transport-mode ESP SA pair (RFC 4303): seal outbound, open inbound.

use crate::Error;
use crate::config::{Encapsulation, SaConfig};
use crate::replay::{ReplayVerdict, ReplayWindow};
use crate::udp::{Checksum, ChecksumCheck};
use core::ops::Range;
use l2sec_crypto::{
    Aead, BlockCipher, CBC_LANES, CbcJob, CipherAlg, IntegAlg, Mac, Policy, Rng, check_policy,
};
use std::net::Ipv4Addr;
use std::time::Duration;
use zeroize::Zeroizing;

/// SPI and sequence number.
const ESP_FIXED: usize = 8;
/// Next-header value of a dummy packet (RFC 4303 section 2.6).
pub const NEXT_HEADER_DUMMY: u8 = 59;
/// Next-header value of UDP, the only protocol l2sec carries.
pub const NEXT_HEADER_UDP: u8 = 17;
/// Outbound sequence number at which [`Event::RekeyNeeded`] is raised (3/4 of the space).
pub const SEQ_SOFT_LIMIT: u32 = 0xC000_0000;
/// Largest ESP packet [`Sa::seal`] produces.
const MAX_PACKET: usize = 65535;

/// Something the owner of an SA must act upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A soft limit (sequence numbers, kilobytes or seconds) was reached: negotiate a new SA.
    RekeyNeeded {
        /// Outbound SPI of the SA that needs replacing.
        spi_out: u32,
    },
    /// A hard limit was reached: the SA refuses all traffic from now on.
    HardLimit {
        /// Outbound SPI of the expired SA.
        spi_out: u32,
    },
}

/// Packets dropped by [`Sa::open`], by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Duplicate or too old sequence number.
    pub replay: u64,
    /// ICV mismatch.
    pub auth: u64,
    /// Too short or misaligned packet.
    pub malformed: u64,
    /// Invalid padding or pad length after decryption.
    pub padding: u64,
    /// Next header not carried by this SA.
    pub next_header: u64,
    /// Dummy packets (next header 59), discarded as the RFC asks.
    pub dummy: u64,
    /// SPI unknown to the receiver.
    pub unknown_spi: u64,
    /// Refused because the SA reached a hard limit.
    pub expired: u64,
}

impl Drops {
    /// Sum of all drop counters.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.replay
            + self.auth
            + self.malformed
            + self.padding
            + self.next_header
            + self.dummy
            + self.unknown_spi
            + self.expired
    }

    fn add(&mut self, o: &Drops) {
        self.replay += o.replay;
        self.auth += o.auth;
        self.malformed += o.malformed;
        self.padding += o.padding;
        self.next_header += o.next_header;
        self.dummy += o.dummy;
        self.unknown_spi += o.unknown_spi;
        self.expired += o.expired;
    }
}

/// Traffic counters of an SA (bytes are payload bytes, before ESP framing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets sealed.
    pub packets_out: u64,
    /// Payload bytes sealed.
    pub bytes_out: u64,
    /// Packets opened successfully.
    pub packets_in: u64,
    /// Payload bytes opened successfully.
    pub bytes_in: u64,
    /// Inbound packets dropped, by reason.
    pub drops: Drops,
}

impl Stats {
    /// Adds another SA's counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.drops.add(&o.drops);
    }
}

/// A successfully opened packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The next-header field (17 for the UDP datagrams of L2TP).
    pub next_header: u8,
    /// Where the payload lies inside the packet passed to `open`.
    pub payload: Range<usize>,
    /// Inbound SPI of the SA that opened it.
    pub spi: u32,
}

/// The keyed transform of one direction. Built once per SA, so the size difference between
/// the variants costs nothing per packet; boxing would add a pointer chase on the hot path.
#[allow(clippy::large_enum_variant)]
enum Transform {
    Cbc { cipher: BlockCipher, mac: Mac },
    Gcm(Aead),
}

/// One packet of [`Sa::seal_many`]: `buf`, `payload_len` and `next_header` as for
/// [`Sa::seal`]; `len` receives the sealed length.
#[derive(Debug, Default)]
pub struct SealJob<'a> {
    /// The packet's buffer: header room, payload, trailer room.
    pub buf: &'a mut [u8],
    /// Length of the payload at `buf[header_len..]`.
    pub payload_len: usize,
    /// The next header value (17 for UDP).
    pub next_header: u8,
    /// Set by [`Sa::seal_many`]: the ESP packet's length from `buf[0]`.
    pub len: usize,
}

/// A CBC packet of `pkt.len()` bytes cut into its header (SPI, sequence number, IV), its
/// ciphertext and its ICV.
fn cbc_parts(pkt: &mut [u8], hl: usize, icv: usize) -> (&[u8], &mut [u8], &mut [u8]) {
    let (head, rest) = pkt.split_at_mut(hl);
    let ct_len = rest.len() - icv;
    let (ct, tag) = rest.split_at_mut(ct_len);
    (head, ct, tag)
}

/// Unpredictable CBC IVs: AES-128 over a counter under a random key (RFC 4303 section 3.3.2 /
/// NIST SP 800-38A appendix C), one block operation per packet.
struct IvGen {
    cipher: BlockCipher,
    counter: u128,
}

impl IvGen {
    fn new(rng: &mut dyn Rng) -> Result<Self, Error> {
        let mut key = Zeroizing::new([0u8; 16]);
        rng.fill(&mut key[..]);
        let mut start = [0u8; 16];
        rng.fill(&mut start);
        Ok(Self {
            cipher: BlockCipher::new(CipherAlg::AesCbc { key_bits: 128 }, &key[..])?,
            counter: u128::from_be_bytes(start),
        })
    }

    fn next(&mut self, out: &mut [u8]) -> Result<(), Error> {
        self.counter = self.counter.wrapping_add(1);
        let mut block = self.counter.to_be_bytes();
        self.cipher.encrypt_block(&mut block)?;
        out.copy_from_slice(&block[..out.len()]);
        Ok(())
    }
}

/// Soft and hard limits; `None` means unlimited.
#[derive(Debug, Clone, Copy)]
struct Limits {
    seq_soft: u32,
    bytes_soft: Option<u64>,
    bytes_hard: Option<u64>,
    secs_soft: Option<u64>,
    secs_hard: Option<u64>,
}

/// A transport-mode ESP SA pair (one inbound and one outbound SPI), sans-IO.
pub struct Sa {
    out: Transform,
    inp: Transform,
    cipher_alg: CipherAlg,
    integ_alg: Option<IntegAlg>,
    ivgen: Option<IvGen>,
    iv_len: usize,
    align: usize,
    icv_len: usize,
    spi_in: u32,
    spi_out: u32,
    seq_out: u32,
    replay: ReplayWindow,
    encap: Encapsulation,
    expected_next_header: Option<u8>,
    strict_padding: bool,
    stats: Stats,
    limits: Limits,
    soft_hit: bool,
    soft_reported: bool,
    hard_hit: bool,
    hard_reported: bool,
    /// Known-answer tests pin the IV of the next sealed packet.
    #[cfg(test)]
    pub(crate) test_iv: Option<Vec<u8>>,
}

impl core::fmt::Debug for Sa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sa")
            .field("cipher", &self.cipher_alg)
            .field("integ", &self.integ_alg)
            .field("spi_in", &format_args!("{:#010x}", self.spi_in))
            .field("spi_out", &format_args!("{:#010x}", self.spi_out))
            .field("seq_out", &self.seq_out)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn transform(
    cipher: CipherAlg,
    integ: Option<IntegAlg>,
    enc_key: &[u8],
    auth_key: &[u8],
) -> Result<Transform, Error> {
    if enc_key.len() != cipher.keymat_len() {
        return Err(Error::Config(
            "encryption key length does not match the cipher",
        ));
    }
    match (cipher.is_aead(), integ) {
        (true, None) => Ok(Transform::Gcm(Aead::new(cipher, enc_key)?)),
        (true, Some(_)) => Err(Error::Config("an aead cipher takes no integrity algorithm")),
        (false, None) => Err(Error::Config("a cbc cipher needs an integrity algorithm")),
        (false, Some(i)) => {
            if auth_key.len() != i.key_len() {
                return Err(Error::Config(
                    "integrity key length does not match the algorithm",
                ));
            }
            Ok(Transform::Cbc {
                cipher: BlockCipher::new(cipher, enc_key)?,
                mac: Mac::new(i, auth_key)?,
            })
        }
    }
}

impl Sa {
    /// Builds the SA from the IKE hand-off. `policy` gates DES/3DES/MD5/SHA-1; `rng` seeds the
    /// CBC IV generator (no per-packet randomness calls).
    pub fn new(cfg: &SaConfig, policy: Policy, rng: &mut dyn Rng) -> Result<Self, Error> {
        check_policy(policy, cfg.cipher.name(), cfg.cipher.strength())?;
        if let Some(i) = cfg.integ {
            check_policy(policy, i.name(), i.strength())?;
        }
        // SPIs 1..=255 are reserved by IANA, 0 is never valid.
        if cfg.inbound.spi < 256 || cfg.outbound.spi < 256 {
            return Err(Error::Config("spi values below 256 are reserved"));
        }
        let out = transform(
            cfg.cipher,
            cfg.integ,
            &cfg.outbound.enc_key,
            &cfg.outbound.auth_key,
        )?;
        let inp = transform(
            cfg.cipher,
            cfg.integ,
            &cfg.inbound.enc_key,
            &cfg.inbound.auth_key,
        )?;
        let ivgen = if cfg.cipher.is_aead() {
            None
        } else {
            Some(IvGen::new(rng)?)
        };
        let icv_len = match cfg.integ {
            Some(i) => i.icv_len(),
            None => 16,
        };
        let bytes_hard = cfg.lifetime_kbytes.map(|kb| kb.saturating_mul(1024));
        let secs_hard = cfg.lifetime_secs.map(u64::from);
        Ok(Self {
            out,
            inp,
            cipher_alg: cfg.cipher,
            integ_alg: cfg.integ,
            ivgen,
            iv_len: cfg.cipher.iv_len(),
            // ESP aligns the ciphertext to 4 bytes at least (RFC 4303 section 2.4).
            align: cfg.cipher.block_len().max(4),
            icv_len,
            spi_in: cfg.inbound.spi,
            spi_out: cfg.outbound.spi,
            seq_out: 0,
            replay: ReplayWindow::new(),
            encap: cfg.encap,
            expected_next_header: Some(NEXT_HEADER_UDP),
            strict_padding: true,
            stats: Stats::default(),
            limits: Limits {
                seq_soft: SEQ_SOFT_LIMIT,
                bytes_soft: bytes_hard.map(|b| b / 10 * 9),
                bytes_hard,
                secs_soft: secs_hard.map(|s| s / 10 * 9),
                secs_hard,
            },
            soft_hit: false,
            soft_reported: false,
            hard_hit: false,
            hard_reported: false,
            #[cfg(test)]
            test_iv: None,
        })
    }

    /// SPI of inbound packets (chosen by us).
    #[must_use]
    pub fn spi_in(&self) -> u32 {
        self.spi_in
    }

    /// SPI of outbound packets (chosen by the peer).
    #[must_use]
    pub fn spi_out(&self) -> u32 {
        self.spi_out
    }

    /// Encryption transform.
    #[must_use]
    pub fn cipher(&self) -> CipherAlg {
        self.cipher_alg
    }

    /// Integrity transform (`None` for AES-GCM).
    #[must_use]
    pub fn integ(&self) -> Option<IntegAlg> {
        self.integ_alg
    }

    /// How packets of this SA travel.
    #[must_use]
    pub fn encapsulation(&self) -> Encapsulation {
        self.encap
    }

    /// Bytes before the payload: SPI, sequence number and IV.
    #[must_use]
    pub fn header_len(&self) -> usize {
        ESP_FIXED + self.iv_len
    }

    /// Worst-case bytes after the payload: padding, pad length, next header and ICV.
    #[must_use]
    pub fn max_trailer_len(&self) -> usize {
        self.align - 1 + 2 + self.icv_len
    }

    fn pad_len(&self, payload_len: usize) -> usize {
        (self.align - (payload_len + 2) % self.align) % self.align
    }

    /// Exact bytes ESP adds to a payload of `payload_len` bytes.
    #[must_use]
    pub fn overhead(&self, payload_len: usize) -> usize {
        self.header_len() + self.pad_len(payload_len) + 2 + self.icv_len
    }

    /// Counters of this SA.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Next outbound sequence number minus one (the number of packets sealed).
    #[must_use]
    pub fn seq_out(&self) -> u32 {
        self.seq_out
    }

    /// Restricts `open` to one next-header value (default: UDP, 17), or lifts the check (`None`).
    pub fn set_expected_next_header(&mut self, next_header: Option<u8>) {
        self.expected_next_header = next_header;
    }

    /// Whether `open` checks the padding bytes are 1, 2, 3, ... (default: true, RFC 4303
    /// section 2.4); turn off for a peer that pads otherwise. The pad length is always checked.
    pub fn set_strict_padding(&mut self, strict: bool) {
        self.strict_padding = strict;
    }

    /// Whether a hard limit was reached (the SA refuses all traffic).
    #[must_use]
    pub fn is_expired(&self) -> bool {
        self.hard_hit
    }

    /// Tells the SA its age (time since it was installed); raises lifetime events.
    pub fn handle_age(&mut self, age: Duration) {
        let secs = age.as_secs();
        if self.limits.secs_hard.is_some_and(|h| secs >= h) {
            self.hard_hit = true;
        }
        if self.limits.secs_soft.is_some_and(|s| secs >= s) {
            self.soft_hit = true;
        }
    }

    /// The inner UDP checksum to send: zero under UDP encapsulation (the peer cannot verify
    /// it across a NAT, RFC 3948 section 3.1.1), computed over `src`/`dst` on raw ESP.
    #[must_use]
    pub fn tx_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Checksum {
        match self.encap {
            Encapsulation::Udp { .. } => Checksum::Zero,
            Encapsulation::Raw => Checksum::Compute { src, dst },
        }
    }

    /// How to check a received inner UDP checksum given the outer addresses: skipped under
    /// UDP encapsulation (RFC 3948 section 3.1.2, ESP authenticated it), verified on raw ESP.
    #[must_use]
    pub fn rx_checksum_check(&self, outer_src: Ipv4Addr, outer_dst: Ipv4Addr) -> ChecksumCheck {
        match self.encap {
            Encapsulation::Udp { .. } => ChecksumCheck::Ignore,
            Encapsulation::Raw => ChecksumCheck::Verify {
                src: outer_src,
                dst: outer_dst,
            },
        }
    }

    /// Raises soft/hard flags from the sequence number and the byte counters.
    fn account(&mut self) {
        let most = self.stats.bytes_out.max(self.stats.bytes_in);
        if self.seq_out >= self.limits.seq_soft || self.limits.bytes_soft.is_some_and(|s| most >= s)
        {
            self.soft_hit = true;
        }
        if self.limits.bytes_hard.is_some_and(|h| most >= h) {
            self.hard_hit = true;
        }
    }

    /// Seals the payload at `buf[self.header_len()..][..payload_len]` in place; `buf` must also
    /// hold the trailer (see [`Sa::overhead`]). Writes the ESP packet from `buf[0]` and returns
    /// its length.
    pub fn seal(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, Error> {
        let total = self.seal_begin(buf, payload_len, next_header)?;
        if let Transform::Cbc { cipher, mac } = &self.out {
            let (head, ct, icv) = cbc_parts(&mut buf[..total], self.header_len(), self.icv_len);
            cipher.encrypt_cbc(&head[ESP_FIXED..], ct)?;
            mac.sign(&[head, ct], icv);
        }
        Ok(total)
    }

    /// Seals several packets in order, with consecutive sequence numbers: the same as
    /// [`Sa::seal`] on each in turn (each job's `len` receives the sealed length), but with
    /// AES-CBC the packets go through the cipher together, several times faster than one by
    /// one. On an error the jobs before the failing one are sealed and the rest untouched.
    pub fn seal_many(&mut self, jobs: &mut [SealJob<'_>]) -> Result<(), Error> {
        let mut done = 0;
        let mut failed = None;
        for j in jobs.iter_mut() {
            match self.seal_begin(j.buf, j.payload_len, j.next_header) {
                Ok(total) => {
                    j.len = total;
                    done += 1;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Transform::Cbc { cipher, mac } = &self.out {
            let (hl, icv) = (self.header_len(), self.icv_len);
            // The cipher's parallel width a round; spare lanes stay empty.
            for group in jobs[..done].chunks_mut(CBC_LANES) {
                let n = group.len();
                let mut parts: [(&[u8], &mut [u8], &mut [u8]); CBC_LANES] =
                    std::array::from_fn(|_| (&[][..], &mut [][..], &mut [][..]));
                for (p, j) in parts.iter_mut().zip(group.iter_mut()) {
                    *p = cbc_parts(&mut j.buf[..j.len], hl, icv);
                }
                let mut cbc: [CbcJob<'_>; CBC_LANES] = std::array::from_fn(|_| CbcJob {
                    iv: &[],
                    data: &mut [],
                });
                for (c, (head, ct, _)) in cbc.iter_mut().zip(parts[..n].iter_mut()) {
                    *c = CbcJob {
                        iv: &head[ESP_FIXED..],
                        data: ct,
                    };
                }
                cipher.encrypt_cbc_many(&mut cbc[..n])?;
                for (head, ct, tag) in parts[..n].iter_mut() {
                    mac.sign(&[head, ct], tag);
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Everything of sealing but the CBC encryption and the ICV, which the caller adds (see
    /// [`cbc_parts`]); with AES-GCM the whole seal. Counts the packet. Returns its length.
    fn seal_begin(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, Error> {
        if self.hard_hit {
            return Err(Error::Expired);
        }
        if self.seq_out == u32::MAX {
            return Err(Error::SequenceExhausted);
        }
        let hl = self.header_len();
        let pad = self.pad_len(payload_len);
        let ct_len = payload_len + pad + 2;
        let total = hl + ct_len + self.icv_len;
        if total > MAX_PACKET {
            return Err(Error::PayloadTooLarge);
        }
        if buf.len() < total {
            return Err(Error::BufferTooSmall {
                need: total,
                have: buf.len(),
            });
        }
        let seq = self.seq_out + 1;
        buf[0..4].copy_from_slice(&self.spi_out.to_be_bytes());
        buf[4..8].copy_from_slice(&seq.to_be_bytes());
        let trailer = &mut buf[hl + payload_len..hl + ct_len];
        for (i, b) in trailer[..pad].iter_mut().enumerate() {
            // Default padding 1, 2, 3, ... (RFC 4303 section 2.4); pad < 256.
            *b = (i + 1) as u8;
        }
        trailer[pad] = pad as u8;
        trailer[pad + 1] = next_header;
        let (head, rest) = buf.split_at_mut(hl);
        let (ct, tail) = rest.split_at_mut(ct_len);
        match &self.out {
            Transform::Cbc { .. } => {
                let iv = &mut head[ESP_FIXED..];
                if let Some(g) = self.ivgen.as_mut() {
                    g.next(iv)?;
                }
                #[cfg(test)]
                if let Some(t) = self.test_iv.take() {
                    iv.copy_from_slice(&t);
                }
            }
            Transform::Gcm(aead) => {
                // The explicit IV is the 64-bit sequence counter: unique per key (RFC 4106 section 3.1).
                #[allow(unused_mut)]
                let mut iv = u64::from(seq).to_be_bytes();
                #[cfg(test)]
                if let Some(t) = self.test_iv.take() {
                    iv.copy_from_slice(&t);
                }
                head[ESP_FIXED..].copy_from_slice(&iv);
                let tag = aead.seal_in_place(&iv, &head[..ESP_FIXED], ct)?;
                tail[..16].copy_from_slice(&tag);
            }
        }
        self.seq_out = seq;
        self.stats.packets_out += 1;
        self.stats.bytes_out += payload_len as u64;
        self.account();
        Ok(total)
    }

    /// Opens one ESP packet in place: checks the replay window, verifies the ICV (constant
    /// time, before decrypting), decrypts, checks padding and next header, then records the
    /// sequence number. Returns where the payload lies in `packet`.
    pub fn open(&mut self, packet: &mut [u8]) -> Result<Opened, Error> {
        let r = self.open_inner(packet);
        if let Err(e) = &r {
            let d = &mut self.stats.drops;
            match e {
                Error::Replay(_) => d.replay += 1,
                Error::AuthFailed => d.auth += 1,
                Error::BadPadding => d.padding += 1,
                Error::UnexpectedNextHeader(_) => d.next_header += 1,
                Error::Dummy => d.dummy += 1,
                Error::UnknownSpi(_) => d.unknown_spi += 1,
                Error::Expired => d.expired += 1,
                _ => d.malformed += 1,
            }
        }
        r
    }

    fn open_inner(&mut self, packet: &mut [u8]) -> Result<Opened, Error> {
        if self.hard_hit {
            return Err(Error::Expired);
        }
        let hl = self.header_len();
        let icv = self.icv_len;
        if packet.len() < hl + self.align + icv {
            return Err(Error::Malformed("esp packet too short"));
        }
        let ct_len = packet.len() - hl - icv;
        if ct_len % self.align != 0 {
            return Err(Error::Malformed(
                "esp ciphertext not aligned to the block size",
            ));
        }
        let spi = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
        if spi != self.spi_in {
            return Err(Error::UnknownSpi(spi));
        }
        let seq = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        if self.replay.check(seq) != ReplayVerdict::Fresh {
            return Err(Error::Replay(seq));
        }
        let (head, rest) = packet.split_at_mut(hl);
        let (ct, tag) = rest.split_at_mut(ct_len);
        match &self.inp {
            Transform::Cbc { cipher, mac } => {
                if !mac.verify(&[head, ct], tag) {
                    return Err(Error::AuthFailed);
                }
                cipher.decrypt_cbc(&head[ESP_FIXED..], ct)?;
            }
            Transform::Gcm(aead) => {
                let mut iv = [0u8; 8];
                iv.copy_from_slice(&head[ESP_FIXED..]);
                aead.open_in_place(&iv, &head[..ESP_FIXED], ct, tag)
                    .map_err(|_| Error::AuthFailed)?;
            }
        }
        // Authentic: the sequence number is consumed whatever the content says.
        self.replay.update(seq);
        let pad = usize::from(ct[ct_len - 2]);
        let next_header = ct[ct_len - 1];
        if pad + 2 > ct_len {
            return Err(Error::BadPadding);
        }
        let payload_len = ct_len - 2 - pad;
        let padding = &ct[payload_len..payload_len + pad];
        if self.strict_padding
            && padding
                .iter()
                .enumerate()
                .any(|(i, &b)| usize::from(b) != i + 1)
        {
            return Err(Error::BadPadding);
        }
        if next_header == NEXT_HEADER_DUMMY {
            return Err(Error::Dummy);
        }
        if self.expected_next_header.is_some_and(|n| n != next_header) {
            return Err(Error::UnexpectedNextHeader(next_header));
        }
        self.stats.packets_in += 1;
        self.stats.bytes_in += payload_len as u64;
        self.account();
        Ok(Opened {
            next_header,
            payload: hl..hl + payload_len,
            spi,
        })
    }

    /// The next pending event, if any: each of RekeyNeeded and HardLimit is reported once.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.hard_hit && !self.hard_reported {
            self.hard_reported = true;
            // A hard limit implies the soft one; do not ask for a rekey afterwards.
            self.soft_reported = true;
            return Some(Event::HardLimit {
                spi_out: self.spi_out,
            });
        }
        if self.soft_hit && !self.soft_reported {
            self.soft_reported = true;
            return Some(Event::RekeyNeeded {
                spi_out: self.spi_out,
            });
        }
        None
    }

    #[cfg(test)]
    pub(crate) fn force_seq_out(&mut self, seq: u32) {
        self.seq_out = seq;
    }
}
