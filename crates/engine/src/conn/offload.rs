//! TUN offload: finishing the packets the kernel hands over unfinished once
//! [`l2sec_netcfg::Tun::enable_offload`] is on. A TCP super-packet (TSO, up to 64 KiB) is split
//! into segments of the MSS the kernel chose, as a NIC would; a packet whose checksum was left
//! to the device gets it. Pure functions over byte slices.

use std::ops::Range;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` on is left to compute.
const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_*`.
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_ECN: u8 = 0x80;

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// The `struct virtio_net_hdr` in front of a packet read from the TUN device (native byte
/// order, as the kernel writes it for a device without `TUNSETVNETLE`/`BE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct VnetHdr {
    flags: u8,
    gso_type: u8,
    gso_size: u16,
    csum_start: u16,
    csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header's fields (`hdr_len` is not used: the kernel's value is only a hint).
    pub(super) fn parse(b: &[u8; l2sec_netcfg::Tun::VNET_HDR_LEN]) -> VnetHdr {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// The header's bytes (`hdr_len` zero).
    fn bytes(&self) -> [u8; l2sec_netcfg::Tun::VNET_HDR_LEN] {
        let mut b = [0u8; l2sec_netcfg::Tun::VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// True for a TCP super-packet to split.
    pub(super) fn is_gso(&self) -> bool {
        self.gso_type != GSO_NONE
    }
}

/// Why a packet from the TUN device cannot be finished (it is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Completes a checksum the kernel left to the device (`NEEDS_CSUM` without GSO), in place:
/// the ones' complement sum of `pkt[csum_start..]`, whose checksum field holds the
/// pseudo-header sum, goes at `csum_start + csum_offset` (as the kernel's
/// `skb_checksum_help` does).
pub(super) fn complete_checksum(hdr: &VnetHdr, pkt: &mut [u8]) -> Result<(), Malformed> {
    if hdr.flags & F_NEEDS_CSUM == 0 {
        return Ok(());
    }
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    if at + 2 > pkt.len() {
        return Err(Malformed("checksum offset beyond the packet"));
    }
    let c = !fold(sum(&pkt[start..], 0));
    let c = if c == 0 { 0xffff } else { c };
    pkt[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// The segments of one TCP super-packet: [`Segments::write`] builds segment `k` as a complete
/// IP packet (headers fixed up, checksums computed).
#[derive(Debug)]
pub(super) struct Segments<'a> {
    pkt: &'a [u8],
    v6: bool,
    /// Offset of the TCP header.
    tcp: usize,
    /// Length of the IP and TCP headers, copied in front of each segment.
    hlen: usize,
    mss: usize,
    count: usize,
}

impl<'a> Segments<'a> {
    /// Checks `pkt` against `hdr` (a TCP/IPv4 or TCP/IPv6 super-packet without extension
    /// headers or fragmentation) and prepares its segments.
    pub(super) fn new(hdr: &VnetHdr, pkt: &'a [u8]) -> Result<Segments<'a>, Malformed> {
        let v6 = match hdr.gso_type & !GSO_ECN {
            GSO_TCPV4 => false,
            GSO_TCPV6 => true,
            _ => return Err(Malformed("GSO type other than TCP")),
        };
        let mss = usize::from(hdr.gso_size);
        if mss == 0 {
            return Err(Malformed("GSO without a segment size"));
        }
        let tcp = if v6 {
            if pkt.len() < 40 || pkt[0] >> 4 != 6 || pkt[6] != 6 {
                return Err(Malformed("not TCP/IPv6 without extension headers"));
            }
            40
        } else {
            if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt[9] != 6 {
                return Err(Malformed("not TCP/IPv4"));
            }
            if u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff != 0 {
                return Err(Malformed("IPv4 fragment"));
            }
            usize::from(pkt[0] & 0x0f) * 4
        };
        if tcp < 20 || usize::from(hdr.csum_start) != tcp || pkt.len() < tcp + 20 {
            return Err(Malformed("TCP header not where the header says"));
        }
        let hlen = tcp + usize::from(pkt[tcp + 12] >> 4) * 4;
        if hlen < tcp + 20 || hlen >= pkt.len() {
            return Err(Malformed("TCP header length"));
        }
        let count = (pkt.len() - hlen).div_ceil(mss);
        Ok(Segments {
            pkt,
            v6,
            tcp,
            hlen,
            mss,
            count,
        })
    }

    /// Number of segments.
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// Bytes the largest segment needs.
    pub(super) fn max_len(&self) -> usize {
        self.hlen + self.mss
    }

    /// The payload bytes of segment `k` in the super-packet.
    fn payload(&self, k: usize) -> Range<usize> {
        let start = self.hlen + k * self.mss;
        start..(start + self.mss).min(self.pkt.len())
    }

    /// Writes segment `k` (< [`Segments::count`]) as a complete IP packet at the start of
    /// `out` (at least [`Segments::max_len`] bytes) and returns its length. Like the kernel's
    /// own TCP segmentation: the IPv4 ID counts up, the sequence number advances, FIN and PSH
    /// stay on the last segment only and CWR on the first only.
    pub(super) fn write(&self, k: usize, out: &mut [u8]) -> usize {
        assert!(k < self.count);
        let (hlen, tcp) = (self.hlen, self.tcp);
        let payload = self.payload(k);
        let total = hlen + payload.len();
        out[..hlen].copy_from_slice(&self.pkt[..hlen]);
        out[hlen..total].copy_from_slice(&self.pkt[payload]);
        let out = &mut out[..total];
        // The segment numbers fit u16 and u32 arithmetic: k < 65536 and k * mss < 2^32.
        if self.v6 {
            let plen = u16::try_from(total - 40).unwrap_or(u16::MAX);
            out[4..6].copy_from_slice(&plen.to_be_bytes());
        } else {
            let tot = u16::try_from(total).unwrap_or(u16::MAX);
            out[2..4].copy_from_slice(&tot.to_be_bytes());
            let id = u16::from_be_bytes([out[4], out[5]]).wrapping_add(k as u16);
            out[4..6].copy_from_slice(&id.to_be_bytes());
            out[10..12].copy_from_slice(&[0, 0]);
            let c = !fold(sum(&out[..tcp], 0));
            out[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let seq = u32::from_be_bytes([out[tcp + 4], out[tcp + 5], out[tcp + 6], out[tcp + 7]])
            .wrapping_add((k * self.mss) as u32);
        out[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = out[tcp + 13];
        if k + 1 < self.count {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if k > 0 {
            flags &= !TCP_CWR;
        }
        out[tcp + 13] = flags;
        out[tcp + 16..tcp + 18].copy_from_slice(&[0, 0]);
        let tcp_len = (total - tcp) as u64;
        let pseudo = if self.v6 {
            sum(&out[8..40], 6 + tcp_len)
        } else {
            sum(&out[12..20], 6 + tcp_len)
        };
        let c = !fold(sum(&out[tcp..], pseudo));
        out[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
        total
    }
}

/// The virtio-net header length.
const VNET: usize = l2sec_netcfg::Tun::VNET_HDR_LEN;
/// `TCP_ACK`.
const TCP_ACK: u8 = 0x10;
/// Most segments joined into one packet (the kernel's GSO limit for TCP is higher; this keeps
/// the packet under 64 KiB with any MSS that matters).
const GRO_MAX_SEGMENTS: usize = 64;
/// Largest joined packet (the IPv4 total length field).
const GRO_MAX_LEN: usize = 65535;

/// What [`tcp_segment`] found in a TCP segment that could be joined to others.
#[derive(Debug, Clone, Copy)]
struct TcpSeg {
    v6: bool,
    ip_hlen: usize,
    hlen: usize,
    seq: u32,
    payload: usize,
    psh: bool,
}

/// A TCP segment that may join others: IPv4 without options or fragmentation, or IPv6
/// without extension headers; ACK, at most PSH besides; a payload; valid checksums (a
/// joined packet is not checked again by the kernel, so a corrupt segment must pass alone,
/// to be dropped by the kernel as before).
fn tcp_segment(p: &[u8]) -> Option<TcpSeg> {
    let v6 = match p.first()? >> 4 {
        4 => false,
        6 => true,
        _ => return None,
    };
    let ip_hlen = if v6 {
        if p.len() < 40
            || p[6] != 6
            || usize::from(u16::from_be_bytes([p[4], p[5]])) + 40 != p.len()
        {
            return None;
        }
        40
    } else {
        if p.len() < 20
            || p[0] != 0x45
            || p[9] != 6
            || usize::from(u16::from_be_bytes([p[2], p[3]])) != p.len()
            || u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0
            || fold(sum(&p[..20], 0)) != 0xffff
        {
            return None;
        }
        20
    };
    if p.len() < ip_hlen + 20 {
        return None;
    }
    let t = &p[ip_hlen..];
    let hlen = ip_hlen + usize::from(t[12] >> 4) * 4;
    let flags = t[13];
    if hlen < ip_hlen + 20
        || hlen >= p.len()
        || flags & !(TCP_ACK | TCP_PSH) != 0
        || flags & TCP_ACK == 0
    {
        return None;
    }
    let tcp_len = (p.len() - ip_hlen) as u64;
    let pseudo = if v6 {
        sum(&p[8..40], 6 + tcp_len)
    } else {
        sum(&p[12..20], 6 + tcp_len)
    };
    if fold(sum(t, pseudo)) != 0xffff {
        return None;
    }
    Some(TcpSeg {
        v6,
        ip_hlen,
        hlen,
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        payload: p.len() - hlen,
        psh: flags & TCP_PSH != 0,
    })
}

/// Receive-side coalescing for the TUN device (GRO): in-order TCP segments of one flow that
/// arrive back to back (same addresses, ports, ACK, window and options; same size but for a
/// shorter last one) are joined into one super-packet, written behind a GSO virtio-net header
/// so that the local stack takes it in one piece instead of one a segment. Everything else
/// passes through unchanged; the order of packets is kept.
pub(super) struct Gro {
    buf: Vec<u8>,
    /// Bytes pending in `buf` (one packet: the first segment's headers, then the payloads).
    len: usize,
    segs: usize,
    seg_size: usize,
    v6: bool,
    ip_hlen: usize,
    hlen: usize,
    next_seq: u32,
    /// A shorter segment or PSH ended the run: the next segment starts a new one.
    closed: bool,
}

impl Gro {
    /// An empty coalescer with its buffer (64 KiB).
    pub(super) fn new() -> Gro {
        Gro {
            buf: vec![0; GRO_MAX_LEN],
            len: 0,
            segs: 0,
            seg_size: 0,
            v6: false,
            ip_hlen: 0,
            hlen: 0,
            next_seq: 0,
            closed: false,
        }
    }

    /// Takes `pkt`, an IP packet for the TUN device. `write` gets, in order, what is ready for
    /// the device: a virtio-net header (all zero for a packet passed through) and a packet.
    pub(super) fn push(&mut self, pkt: &[u8], write: &mut impl FnMut(&[u8; VNET], &[u8])) {
        let seg = tcp_segment(pkt);
        if let Some(s) = seg {
            if self.segs > 0 && self.joins(pkt, &s) {
                let h = self.hlen;
                self.buf[self.len..self.len + s.payload].copy_from_slice(&pkt[h..]);
                self.len += s.payload;
                self.segs += 1;
                self.next_seq = s.seq.wrapping_add(s.payload as u32);
                if s.payload < self.seg_size || s.psh {
                    self.closed = true;
                }
                if s.psh {
                    self.buf[self.ip_hlen + 13] |= TCP_PSH;
                }
                return;
            }
        }
        self.flush(write);
        match seg {
            Some(s) if !s.psh => {
                self.buf[..pkt.len()].copy_from_slice(pkt);
                self.len = pkt.len();
                self.segs = 1;
                self.seg_size = s.payload;
                self.v6 = s.v6;
                self.ip_hlen = s.ip_hlen;
                self.hlen = s.hlen;
                self.next_seq = s.seq.wrapping_add(s.payload as u32);
                self.closed = false;
            }
            _ => write(&[0; VNET], pkt),
        }
    }

    /// True when segment `pkt` (described by `s`) continues the pending run.
    fn joins(&self, pkt: &[u8], s: &TcpSeg) -> bool {
        let (b, h, ih) = (&self.buf, self.hlen, self.ip_hlen);
        if self.closed
            || self.segs >= GRO_MAX_SEGMENTS
            || s.v6 != self.v6
            || s.hlen != h
            || s.payload > self.seg_size
            || self.len + s.payload > GRO_MAX_LEN
            || s.seq != self.next_seq
        {
            return false;
        }
        let same_ip = if self.v6 {
            // Version, traffic class, flow label; next header and hop limit; addresses.
            b[0..4] == pkt[0..4] && b[6..40] == pkt[6..40]
        } else {
            // Version and TOS; DF; TTL and protocol; addresses.
            b[0..2] == pkt[0..2]
                && (b[6] ^ pkt[6]) & 0x40 == 0
                && b[8..10] == pkt[8..10]
                && b[12..20] == pkt[12..20]
        };
        // Ports; ACK number; data offset, window, urgent pointer and options.
        same_ip
            && b[ih..ih + 4] == pkt[ih..ih + 4]
            && b[ih + 8..ih + 13] == pkt[ih + 8..ih + 13]
            && b[ih + 14..ih + 16] == pkt[ih + 14..ih + 16]
            && b[ih + 18..h] == pkt[ih + 18..h]
    }

    /// Writes what is pending: the lone segment as it came, or the joined packet with its
    /// lengths and IPv4 header checksum fixed, the TCP checksum left partial (the pseudo-header
    /// sum, as a NIC's GRO leaves it) and a GSO header.
    pub(super) fn flush(&mut self, write: &mut impl FnMut(&[u8; VNET], &[u8])) {
        let segs = std::mem::take(&mut self.segs);
        if segs == 0 {
            return;
        }
        let (len, ih) = (self.len, self.ip_hlen);
        if segs == 1 {
            write(&[0; VNET], &self.buf[..len]);
            return;
        }
        let p = &mut self.buf[..len];
        // Lengths fit u16: len <= GRO_MAX_LEN.
        if self.v6 {
            p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        } else {
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let c = !fold(sum(&p[..20], 0));
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let tcp_len = (len - ih) as u64;
        let pseudo = if self.v6 {
            sum(&p[8..40], 6 + tcp_len)
        } else {
            sum(&p[12..20], 6 + tcp_len)
        };
        p[ih + 16..ih + 18].copy_from_slice(&fold(pseudo).to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if self.v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            gso_size: self.seg_size as u16,
            csum_start: ih as u16,
            csum_offset: 16,
        };
        let mut b = hdr.bytes();
        b[2..4].copy_from_slice(&(self.hlen as u16).to_ne_bytes());
        write(&b, p);
    }
}

/// Adds `data` to the ones' complement sum `acc` (RFC 1071), eight bytes at a time: 64-bit
/// big-endian words with end-around carry fold to the same 16-bit sum. `data` starts on a
/// 16-bit boundary of the summed region; an odd last byte counts as the high byte of a word.
pub(super) fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(v);
        acc = s + u64::from(carry);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes(last));
        acc = s + u64::from(carry);
    }
    acc
}

/// Folds a sum from [`sum`] to 16 bits (not complemented).
pub(super) fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071's straightforward 16-bit sum, the reference.
    fn ref_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// True when the packet's IP header checksum (IPv4) and TCP checksum verify.
    fn verifies(p: &[u8]) -> bool {
        let v6 = p[0] >> 4 == 6;
        let tcp = if v6 { 40 } else { usize::from(p[0] & 15) * 4 };
        if !v6 && ref_sum(&p[..tcp]) != 0xffff {
            return false;
        }
        let len = (p.len() - tcp) as u32;
        let mut pseudo = Vec::new();
        if v6 {
            pseudo.extend_from_slice(&p[8..40]);
            pseudo.extend_from_slice(&len.to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 6]);
        } else {
            pseudo.extend_from_slice(&p[12..20]);
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(len as u16).to_be_bytes());
        }
        pseudo.extend_from_slice(&p[tcp..]);
        ref_sum(&pseudo) == 0xffff
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// A TCP super-packet of `payload` bytes as the kernel hands it over with TSO: one header,
    /// tot_len of the whole, TCP checksum field holding the pseudo-header sum only.
    fn super_packet(v6: bool, payload: &[u8], flags: u8) -> Vec<u8> {
        let mut p = Vec::new();
        if v6 {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&((20 + 12 + payload.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[6, 64]);
            p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&((20 + 32 + payload.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
            p.extend_from_slice(&[198, 19, 0, 11, 198, 19, 0, 250]);
        }
        // TCP: ports, seq 0xfffff000 (wraps), ack, doff 8 (12 bytes of options), flags, window.
        p.extend_from_slice(&[0xc0, 0x01, 0x13, 0x89]);
        p.extend_from_slice(&0xffff_f000u32.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&[0x80, flags, 0x01, 0xf5, 0xab, 0xcd, 0, 0]);
        p.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn sum_matches_rfc1071_for_every_length_and_alignment() {
        let data = pseudo_random(300, 7);
        for start in 0..9 {
            for end in start..data.len() {
                let d = &data[start..end];
                assert_eq!(fold(sum(d, 0)), ref_sum(d), "{start}..{end}");
            }
        }
        // End-around carry with all-ones words.
        let ones = [0xffu8; 64];
        assert_eq!(fold(sum(&ones, u64::MAX)), ref_sum(&ones));
    }

    #[test]
    fn segments_are_the_payload_in_order_with_valid_headers() {
        for v6 in [false, true] {
            for (len, mss) in [
                (1, 1348),
                (1348, 1348),
                (1349, 1348),
                (65000, 1348),
                (4000, 536),
            ] {
                let payload = pseudo_random(len, len as u32);
                // PSH|ACK|FIN|CWR on the super-packet.
                let flags = TCP_PSH | 0x10 | TCP_FIN | TCP_CWR;
                let p = super_packet(v6, &payload, flags);
                let tcp = if v6 { 40 } else { 20 };
                let hdr = VnetHdr {
                    flags: F_NEEDS_CSUM,
                    gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 | GSO_ECN },
                    gso_size: mss as u16,
                    csum_start: tcp as u16,
                    csum_offset: 16,
                };
                let hdr = VnetHdr::parse(&hdr.bytes());
                let s = Segments::new(&hdr, &p).unwrap();
                assert_eq!(s.count(), len.div_ceil(mss));
                let mut joined = Vec::new();
                let mut out = vec![0u8; s.max_len()];
                for k in 0..s.count() {
                    let n = s.write(k, &mut out);
                    let seg = &out[..n];
                    assert!(n <= s.max_len());
                    assert!(verifies(seg), "v6 {v6} len {len} segment {k}");
                    let h = tcp + 32;
                    joined.extend_from_slice(&seg[h..]);
                    let seq = u32::from_be_bytes(seg[tcp + 4..tcp + 8].try_into().unwrap());
                    assert_eq!(seq, 0xffff_f000u32.wrapping_add((k * mss) as u32));
                    let f = seg[tcp + 13];
                    let last = k + 1 == s.count();
                    assert_eq!(f & (TCP_FIN | TCP_PSH) != 0, last, "FIN/PSH on {k}");
                    assert_eq!(f & TCP_CWR != 0, k == 0, "CWR on {k}");
                    assert_eq!(f & 0x10, 0x10, "ACK kept");
                    if v6 {
                        assert_eq!(usize::from(u16::from_be_bytes([seg[4], seg[5]])), n - 40);
                    } else {
                        assert_eq!(usize::from(u16::from_be_bytes([seg[2], seg[3]])), n);
                        let id = u16::from_be_bytes([seg[4], seg[5]]);
                        assert_eq!(id, 0x1234u16.wrapping_add(k as u16));
                    }
                }
                assert_eq!(
                    joined, payload,
                    "v6 {v6} len {len}: payload lost or reordered"
                );
            }
        }
    }

    #[test]
    fn malformed_super_packets_are_refused() {
        let p = super_packet(false, &[0u8; 3000], 0x10);
        let good = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            gso_size: 1000,
            csum_start: 20,
            csum_offset: 16,
        };
        assert!(Segments::new(&good, &p).is_ok());
        for bad in [
            VnetHdr {
                gso_size: 0,
                ..good
            },
            VnetHdr {
                gso_type: 3,
                ..good
            },
            VnetHdr {
                gso_type: GSO_TCPV6,
                ..good
            },
            VnetHdr {
                csum_start: 24,
                ..good
            },
        ] {
            assert!(Segments::new(&bad, &p).is_err(), "{bad:?}");
        }
        assert!(Segments::new(&good, &p[..30]).is_err());
        assert!(Segments::new(&good, &p[..52]).is_err(), "headers only");
        let mut frag = p.clone();
        frag[6] = 0x20; // MF
        assert!(Segments::new(&good, &frag).is_err());
    }

    #[test]
    fn partial_checksum_is_completed() {
        for v6 in [false, true] {
            let payload = pseudo_random(777, 3);
            let mut p = super_packet(v6, &payload, 0x18);
            let tcp = if v6 { 40 } else { 20 };
            if !v6 {
                let c = !fold(sum(&p[..20], 0));
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
            // What the kernel leaves: the pseudo-header sum (not complemented) in the field.
            let tcp_len = (p.len() - tcp) as u64;
            let pseudo = if v6 {
                sum(&p[8..40], 6 + tcp_len)
            } else {
                sum(&p[12..20], 6 + tcp_len)
            };
            p[tcp + 16..tcp + 18].copy_from_slice(&fold(pseudo).to_be_bytes());
            assert!(!verifies(&p));
            let hdr = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_NONE,
                gso_size: 0,
                csum_start: tcp as u16,
                csum_offset: 16,
            };
            complete_checksum(&hdr, &mut p).unwrap();
            assert!(verifies(&p), "v6 {v6}");
            let far = VnetHdr {
                csum_offset: 2000,
                ..hdr
            };
            assert!(complete_checksum(&far, &mut p).is_err());
            // Without NEEDS_CSUM nothing changes.
            let before = p.clone();
            complete_checksum(&VnetHdr::default(), &mut p).unwrap();
            assert_eq!(p, before);
        }
    }

    /// The segments of a super-packet of `len` payload bytes (flags on the super-packet, as
    /// the kernel's segmentation leaves them: FIN/PSH on the last only), source port `port`.
    fn flow(v6: bool, port: u16, len: usize, mss: usize, flags: u8) -> Vec<Vec<u8>> {
        let mut p = super_packet(v6, &pseudo_random(len, u32::from(port)), flags);
        let tcp = if v6 { 40 } else { 20 };
        p[tcp..tcp + 2].copy_from_slice(&port.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            gso_size: mss as u16,
            csum_start: tcp as u16,
            csum_offset: 16,
        };
        let s = Segments::new(&hdr, &p).unwrap();
        (0..s.count())
            .map(|k| {
                let mut out = vec![0u8; s.max_len()];
                let n = s.write(k, &mut out);
                out.truncate(n);
                out
            })
            .collect()
    }

    /// Pushes `pkts` through a coalescer (flushing at the end); returns what it wrote.
    fn gro(pkts: &[Vec<u8>]) -> Vec<([u8; VNET], Vec<u8>)> {
        let mut g = Gro::new();
        let mut out = Vec::new();
        let mut w = |h: &[u8; VNET], p: &[u8]| out.push((*h, p.to_vec()));
        for p in pkts {
            g.push(p, &mut w);
        }
        g.flush(&mut w);
        out
    }

    /// What the kernel makes of `writes`: super-packets split again (as it does when it
    /// forwards them), single packets as they are.
    fn expand(writes: &[([u8; VNET], Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for (h, p) in writes {
            if *h == [0; VNET] {
                all.push(p.clone());
                continue;
            }
            let vh = VnetHdr::parse(h);
            assert_eq!(vh.flags, F_NEEDS_CSUM);
            // The kernel finishes the partial checksum of the joined packet as a NIC would.
            let mut whole = p.clone();
            complete_checksum(&vh, &mut whole).unwrap();
            assert!(verifies(&whole), "joined packet's partial checksum");
            let s = Segments::new(&vh, p).unwrap();
            for k in 0..s.count() {
                let mut out = vec![0u8; s.max_len()];
                let n = s.write(k, &mut out);
                out.truncate(n);
                all.push(out);
            }
        }
        all
    }

    #[test]
    fn gro_joins_a_run_and_the_kernel_gets_the_same_segments_back() {
        for v6 in [false, true] {
            let segs = flow(v6, 40000, 65000, 1348, 0x10 | TCP_PSH);
            let out = gro(&segs);
            assert_eq!(out.len(), 1, "v6 {v6}: one write for the whole run");
            let vh = VnetHdr::parse(&out[0].0);
            assert!(vh.is_gso());
            assert_eq!(vh.gso_size, 1348);
            assert_eq!(
                usize::from(u16::from_ne_bytes([out[0].0[2], out[0].0[3]])),
                if v6 { 72 } else { 52 }
            );
            assert_eq!(expand(&out), segs, "v6 {v6}: segments differ");
        }
    }

    #[test]
    fn gro_keeps_the_order_of_interleaved_flows_and_odd_packets() {
        let a = flow(false, 1111, 8 * 1000, 1000, 0x10);
        let b = flow(false, 2222, 3 * 1000 + 10, 1000, 0x10 | TCP_PSH);
        let c = flow(true, 3333, 5 * 1000, 1000, 0x10);
        let mut udp = a[0].clone();
        udp[9] = 17; // not TCP
        let mut ack = a[3][..52].to_vec(); // no payload
        ack[2..4].copy_from_slice(&52u16.to_be_bytes());
        let mut bad = a[5].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1; // corrupt payload: must reach the kernel alone
        let mut fin = b[1].clone();
        fin[33] |= TCP_FIN;
        let input: Vec<Vec<u8>> = vec![
            a[0].clone(),
            a[1].clone(),
            b[0].clone(),
            a[2].clone(),
            a[3].clone(),
            udp.clone(),
            a[4].clone(),
            ack.clone(),
            bad.clone(),
            a[6].clone(), // after a gap (a[5] was the corrupt one): a new run
            a[7].clone(),
            c[0].clone(),
            c[1].clone(),
            c[2].clone(),
            fin.clone(),
            b[2].clone(),
            b[3].clone(), // PSH, shorter: ends its run
            c[3].clone(),
            c[4].clone(),
        ];
        let out = gro(&input);
        let expanded = expand(&out);
        // The corrupt packet and the odd ones are passed through unchanged, the rest comes
        // back segment by segment: the kernel sees exactly the input, in order.
        assert_eq!(expanded, input);
        let joined = out.iter().filter(|(h, _)| *h != [0; VNET]).count();
        assert_eq!(
            joined, 6,
            "runs a0-a1, a2-a3, a6-a7, c0-c2, b2-b3 and c3-c4 joined"
        );
    }

    #[test]
    fn gro_stops_at_psh_a_short_segment_and_the_limits() {
        // PSH in the middle of a run ends it there.
        let mut a = flow(false, 1111, 6 * 1000, 1000, 0x10);
        a[2][33] |= TCP_PSH;
        // Fix the checksum after changing a flag.
        let fix = |p: &mut Vec<u8>| {
            p[36..38].copy_from_slice(&[0, 0]);
            let tcp_len = (p.len() - 20) as u64;
            let pseudo = sum(&p[12..20], 6 + tcp_len);
            let c = !fold(sum(&p[20..], pseudo));
            p[36..38].copy_from_slice(&c.to_be_bytes());
        };
        fix(&mut a[2]);
        let out = gro(&a);
        assert_eq!(out.len(), 2);
        assert_eq!(
            Segments::new(&VnetHdr::parse(&out[0].0), &out[0].1)
                .unwrap()
                .count(),
            3
        );
        assert_eq!(expand(&out), a);
        // At most GRO_MAX_SEGMENTS segments and 64 KiB a packet.
        let many = flow(false, 1111, 100 * 500, 500, 0x10);
        let out = gro(&many);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(_, p)| p.len() <= GRO_MAX_LEN));
        assert_eq!(expand(&out), many);
        let big = flow(false, 1111, 60 * 1400, 1400, 0x10);
        let out = gro(&big);
        assert!(out.iter().all(|(_, p)| p.len() <= GRO_MAX_LEN));
        assert_eq!(expand(&out), big);
    }
}
