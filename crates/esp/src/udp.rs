//! The inner (transport-mode) UDP header of L2TP traffic, and its checksum.

use crate::Error;
use core::ops::Range;
use std::net::Ipv4Addr;

/// Length of a UDP header.
pub const HEADER_LEN: usize = 8;

const IPPROTO_UDP: u8 = 17;

/// How to fill the checksum of an outgoing datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// No checksum (zero), allowed for UDP over IPv4; RFC 3948 section 3.1.1 uses it under NAT.
    Zero,
    /// Compute it over the IPv4 pseudo-header of these addresses.
    Compute {
        /// Source address of the pseudo-header.
        src: Ipv4Addr,
        /// Destination address of the pseudo-header.
        dst: Ipv4Addr,
    },
}

/// How to treat the checksum of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumCheck {
    /// Do not verify (RFC 3948 section 3.1.2: after NAT the receiver may skip it; ESP
    /// already protects the datagram's integrity).
    Ignore,
    /// Verify a non-zero checksum against the IPv4 pseudo-header of these addresses.
    Verify {
        /// Source address of the pseudo-header.
        src: Ipv4Addr,
        /// Destination address of the pseudo-header.
        dst: Ipv4Addr,
    },
}

/// A parsed inner UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inner {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Where the payload lies inside the datagram passed to [`parse`].
    pub payload: Range<usize>,
}

/// Sums `data` as big-endian 16-bit words (odd length padded with a zero byte).
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]))
            + u64::from(u16::from_be_bytes([c[2], c[3]]))
            + u64::from(u16::from_be_bytes([c[4], c[5]]))
            + u64::from(u16::from_be_bytes([c[6], c[7]]));
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = rest.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> u64 {
    let mut acc = sum_words(0, &src.octets());
    acc = sum_words(acc, &dst.octets());
    acc + u64::from(IPPROTO_UDP) + len as u64
}

/// The UDP checksum of `datagram` (header included, its checksum field taken as is).
fn checksum_sum(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> u16 {
    fold(sum_words(pseudo_sum(src, dst, datagram.len()), datagram))
}

/// Writes a UDP header into `buf[..8]` for the payload already at `buf[8..8 + payload_len]`.
///
/// # Panics
/// If `buf` is shorter than `HEADER_LEN + payload_len` or the datagram exceeds 65535 bytes
/// (a caller bug, never network input).
pub fn write_header(
    buf: &mut [u8],
    src_port: u16,
    dst_port: u16,
    payload_len: usize,
    checksum: Checksum,
) {
    let len = HEADER_LEN + payload_len;
    assert!(buf.len() >= len, "udp buffer shorter than header + payload");
    let len16 = u16::try_from(len).expect("udp datagram longer than 65535 bytes");
    buf[0..2].copy_from_slice(&src_port.to_be_bytes());
    buf[2..4].copy_from_slice(&dst_port.to_be_bytes());
    buf[4..6].copy_from_slice(&len16.to_be_bytes());
    buf[6..8].copy_from_slice(&[0, 0]);
    if let Checksum::Compute { src, dst } = checksum {
        let c = !checksum_sum(src, dst, &buf[..len]);
        // A computed zero is sent as all ones (RFC 768).
        let c = if c == 0 { 0xFFFF } else { c };
        buf[6..8].copy_from_slice(&c.to_be_bytes());
    }
}

/// Parses a UDP datagram whose length is exactly `datagram.len()`.
pub fn parse(datagram: &[u8], check: ChecksumCheck) -> Result<Inner, Error> {
    if datagram.len() < HEADER_LEN {
        return Err(Error::Malformed("udp header truncated"));
    }
    let len = usize::from(u16::from_be_bytes([datagram[4], datagram[5]]));
    if len != datagram.len() {
        return Err(Error::Malformed("udp length field mismatch"));
    }
    let sum = u16::from_be_bytes([datagram[6], datagram[7]]);
    if let ChecksumCheck::Verify { src, dst } = check {
        if sum != 0 && checksum_sum(src, dst, datagram) != 0xFFFF {
            return Err(Error::Malformed("udp checksum mismatch"));
        }
    }
    Ok(Inner {
        src_port: u16::from_be_bytes([datagram[0], datagram[1]]),
        dst_port: u16::from_be_bytes([datagram[2], datagram[3]]),
        payload: HEADER_LEN..len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn known_checksum() {
        // Hand-checked: 198.18.0.1 -> 198.18.0.2, 1701 -> 1701, payload "ab".
        // Sum = c612+0001+c612+0002+0011+000a + 06a5+06a5+000a+0000 + 6162 = 0x1faf8,
        // folded 0xfaf9, complemented 0x0506.
        let mut buf = [0u8; 10];
        buf[8..].copy_from_slice(b"ab");
        write_header(
            &mut buf,
            1701,
            1701,
            2,
            Checksum::Compute { src: A, dst: B },
        );
        assert_eq!(buf[..8], [0x06, 0xa5, 0x06, 0xa5, 0x00, 0x0a, 0x05, 0x06]);
        let inner = parse(&buf, ChecksumCheck::Verify { src: A, dst: B }).unwrap();
        assert_eq!(
            (inner.src_port, inner.dst_port, inner.payload),
            (1701, 1701, 8..10)
        );
    }

    #[test]
    fn zero_checksum_accepted_and_bad_rejected() {
        let mut buf = [0u8; 13];
        buf[8..].copy_from_slice(b"hello");
        write_header(&mut buf, 1701, 1701, 5, Checksum::Zero);
        assert_eq!(&buf[6..8], &[0, 0]);
        assert!(parse(&buf, ChecksumCheck::Verify { src: A, dst: B }).is_ok());
        write_header(
            &mut buf,
            1701,
            1701,
            5,
            Checksum::Compute { src: A, dst: B },
        );
        // Wrong pseudo-header (as after NAT): verification fails, Ignore accepts.
        let nat = Ipv4Addr::new(198, 19, 1, 1);
        assert!(parse(&buf, ChecksumCheck::Verify { src: nat, dst: B }).is_err());
        assert!(parse(&buf, ChecksumCheck::Ignore).is_ok());
        buf[9] ^= 1;
        assert!(parse(&buf, ChecksumCheck::Verify { src: A, dst: B }).is_err());
    }

    #[test]
    fn length_checks() {
        assert!(parse(&[0; 7], ChecksumCheck::Ignore).is_err());
        let mut buf = [0u8; 12];
        write_header(&mut buf, 1, 2, 4, Checksum::Zero);
        assert!(parse(&buf[..11], ChecksumCheck::Ignore).is_err());
        assert!(parse(&buf, ChecksumCheck::Ignore).is_ok());
    }

    proptest! {
        #[test]
        fn round_trip(payload in prop::collection::vec(any::<u8>(), 0..1500), sp: u16, dp: u16, s: u32, d: u32) {
            let (src, dst) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
            let mut buf = vec![0u8; HEADER_LEN + payload.len()];
            buf[HEADER_LEN..].copy_from_slice(&payload);
            write_header(&mut buf, sp, dp, payload.len(), Checksum::Compute { src, dst });
            prop_assert_ne!(&buf[6..8], &[0, 0]);
            let inner = parse(&buf, ChecksumCheck::Verify { src, dst }).unwrap();
            prop_assert_eq!(inner.src_port, sp);
            prop_assert_eq!(inner.dst_port, dp);
            prop_assert_eq!(&buf[inner.payload], &payload[..]);
        }

        #[test]
        fn parse_never_panics(data in prop::collection::vec(any::<u8>(), 0..64), s: u32, d: u32) {
            let _ = parse(&data, ChecksumCheck::Verify { src: Ipv4Addr::from(s), dst: Ipv4Addr::from(d) });
            let _ = parse(&data, ChecksumCheck::Ignore);
        }
    }
}
