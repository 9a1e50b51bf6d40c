//! Outer framing: UDP encapsulation on port 4500 (RFC 3948) and raw IP protocol 50.

use crate::Error;
use core::ops::Range;

/// The one-octet NAT-keepalive payload (RFC 3948 section 2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xFF];

/// The non-ESP marker that prefixes IKE messages on port 4500 (RFC 3948 section 2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0, 0, 0, 0];

/// IP protocol number of ESP.
pub const IPPROTO_ESP: u8 = 50;

/// Smallest ESP packet worth handing to an SA: SPI and sequence number.
const ESP_MIN: usize = 8;

/// What one UDP datagram received on port 4500 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Udp4500<'a> {
    /// A NAT keepalive (a single 0xFF octet): ignore it.
    Keepalive,
    /// An IKE message, non-ESP marker stripped.
    Ike(&'a [u8]),
    /// An ESP packet, starting at the SPI.
    Esp(&'a [u8]),
}

/// Demultiplexes a datagram received on UDP port 4500 (RFC 3948 sections 2.2 and 2.3).
pub fn classify_udp4500(datagram: &[u8]) -> Result<Udp4500<'_>, Error> {
    match datagram {
        [0xFF] => Ok(Udp4500::Keepalive),
        [0, 0, 0, 0, ike @ ..] => {
            if ike.is_empty() {
                Err(Error::Malformed("empty ike message after non-esp marker"))
            } else {
                Ok(Udp4500::Ike(ike))
            }
        }
        _ if datagram.len() >= ESP_MIN => Ok(Udp4500::Esp(datagram)),
        _ => Err(Error::Malformed("datagram on port 4500 too short for esp")),
    }
}

/// The SPI of an ESP packet, or `None` if the packet is too short or the SPI is zero
/// (zero is reserved and doubles as the non-ESP marker).
#[must_use]
pub fn peek_spi(packet: &[u8]) -> Option<u32> {
    if packet.len() < ESP_MIN {
        return None;
    }
    let spi = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
    (spi != 0).then_some(spi)
}

/// The range of the ESP packet inside what a raw `IPPROTO_ESP` IPv4 socket returns
/// (the IPv4 header included, total length in network byte order as Linux delivers it).
pub fn strip_ipv4_header(raw: &[u8]) -> Result<Range<usize>, Error> {
    if raw.len() < 20 {
        return Err(Error::Malformed("ipv4 header truncated"));
    }
    if raw[0] >> 4 != 4 {
        return Err(Error::Malformed("not an ipv4 packet"));
    }
    let ihl = usize::from(raw[0] & 0x0F) * 4;
    if ihl < 20 {
        return Err(Error::Malformed("ipv4 header length below 20"));
    }
    let total = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
    if total < ihl || total > raw.len() {
        return Err(Error::Malformed("ipv4 total length inconsistent"));
    }
    if raw[9] != IPPROTO_ESP {
        return Err(Error::Malformed("ipv4 protocol is not esp"));
    }
    let flags_frag = u16::from_be_bytes([raw[6], raw[7]]);
    if flags_frag & 0x3FFF != 0 {
        return Err(Error::Malformed("ipv4 fragment"));
    }
    if total - ihl < ESP_MIN {
        return Err(Error::Malformed("esp packet too short"));
    }
    Ok(ihl..total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classify() {
        assert_eq!(classify_udp4500(&[0xFF]).unwrap(), Udp4500::Keepalive);
        assert_eq!(
            classify_udp4500(&[0, 0, 0, 0, 1, 2]).unwrap(),
            Udp4500::Ike(&[1, 2])
        );
        let esp = [0, 0, 1, 0, 0, 0, 0, 1, 9];
        assert_eq!(classify_udp4500(&esp).unwrap(), Udp4500::Esp(&esp));
        assert!(classify_udp4500(&[]).is_err());
        assert!(classify_udp4500(&[0, 0, 0, 0]).is_err());
        assert!(classify_udp4500(&[0xFE]).is_err());
        assert!(classify_udp4500(&[1, 2, 3, 4, 5, 6, 7]).is_err());
        // Two bytes starting with 0xFF are not a keepalive.
        assert!(classify_udp4500(&[0xFF, 0xFF]).is_err());
    }

    #[test]
    fn spi_peek() {
        assert_eq!(peek_spi(&[0xAB, 0xCD, 0, 1, 0, 0, 0, 1]), Some(0xABCD_0001));
        assert_eq!(peek_spi(&[0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(peek_spi(&[1, 2, 3]), None);
    }

    fn ipv4(proto: u8, ihl_words: u8, payload: &[u8], frag: u16) -> Vec<u8> {
        let hl = usize::from(ihl_words) * 4;
        let mut p = vec![0u8; hl];
        p[0] = 0x40 | ihl_words;
        let total = u16::try_from(hl + payload.len()).unwrap();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn strip_header() {
        let esp = [1u8, 2, 3, 4, 0, 0, 0, 1, 0xAA, 0xBB];
        let p = ipv4(50, 5, &esp, 0x4000);
        let r = strip_ipv4_header(&p).unwrap();
        assert_eq!(&p[r], &esp);
        // Options are skipped.
        let p = ipv4(50, 6, &esp, 0);
        assert_eq!(strip_ipv4_header(&p).unwrap(), 24..34);
        // Trailing link-layer padding beyond the total length is cut off.
        let mut p = ipv4(50, 5, &esp, 0);
        p.extend_from_slice(&[0; 6]);
        assert_eq!(strip_ipv4_header(&p).unwrap(), 20..30);
        assert!(strip_ipv4_header(&ipv4(17, 5, &esp, 0)).is_err());
        assert!(strip_ipv4_header(&ipv4(50, 4, &esp, 0)).is_err());
        assert!(strip_ipv4_header(&ipv4(50, 5, &esp, 0x2000)).is_err());
        assert!(strip_ipv4_header(&ipv4(50, 5, &esp[..4], 0)).is_err());
        let mut p = ipv4(50, 5, &esp, 0);
        p[0] = 0x65;
        assert!(strip_ipv4_header(&p).is_err());
        let p = ipv4(50, 5, &esp, 0);
        assert!(strip_ipv4_header(&p[..25]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = classify_udp4500(&data);
            let _ = peek_spi(&data);
            if let Ok(r) = strip_ipv4_header(&data) {
                prop_assert!(r.end <= data.len() && r.start <= r.end);
            }
        }
    }
}
