//! PPP wire formats: the frame header (RFC 1661 section 2, RFC 1662 address/control), control
//! packets shared by LCP and the NCPs (RFC 1661 section 5) and their option lists (section 6).
//!
//! Every parser here is bounded by its input and returns [`PppError`] instead of panicking.

use crate::error::PppError;

/// Internet Protocol version 4 (RFC 1332).
pub const PROTO_IPV4: u16 = 0x0021;
/// Internet Protocol version 6 (RFC 5072).
pub const PROTO_IPV6: u16 = 0x0057;
/// Link Control Protocol (RFC 1661).
pub const PROTO_LCP: u16 = 0xc021;
/// Password Authentication Protocol (RFC 1334).
pub const PROTO_PAP: u16 = 0xc023;
/// Challenge Handshake Authentication Protocol (RFC 1994).
pub const PROTO_CHAP: u16 = 0xc223;
/// Extensible Authentication Protocol (RFC 3748).
pub const PROTO_EAP: u16 = 0xc227;
/// IP Control Protocol (RFC 1332).
pub const PROTO_IPCP: u16 = 0x8021;
/// IPv6 Control Protocol (RFC 5072).
pub const PROTO_IPV6CP: u16 = 0x8057;
/// Compression Control Protocol (RFC 1962).
pub const PROTO_CCP: u16 = 0x80fd;

/// Configure-Request.
pub const CODE_CONF_REQ: u8 = 1;
/// Configure-Ack.
pub const CODE_CONF_ACK: u8 = 2;
/// Configure-Nak.
pub const CODE_CONF_NAK: u8 = 3;
/// Configure-Reject.
pub const CODE_CONF_REJ: u8 = 4;
/// Terminate-Request.
pub const CODE_TERM_REQ: u8 = 5;
/// Terminate-Ack.
pub const CODE_TERM_ACK: u8 = 6;
/// Code-Reject.
pub const CODE_CODE_REJ: u8 = 7;
/// Protocol-Reject (LCP only).
pub const CODE_PROTO_REJ: u8 = 8;
/// Echo-Request (LCP only).
pub const CODE_ECHO_REQ: u8 = 9;
/// Echo-Reply (LCP only).
pub const CODE_ECHO_REPLY: u8 = 10;
/// Discard-Request (LCP only).
pub const CODE_DISCARD_REQ: u8 = 11;
/// Identification (LCP only, RFC 1570).
pub const CODE_IDENTIFICATION: u8 = 12;
/// Time-Remaining (LCP only, RFC 1570).
pub const CODE_TIME_REMAINING: u8 = 13;

/// A PPP frame split into protocol and information field; borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Protocol number (decompressed if it arrived PFC-compressed).
    pub protocol: u16,
    /// Information field.
    pub payload: &'a [u8],
    /// Offset of `payload` within the input frame.
    pub offset: usize,
}

impl<'a> Frame<'a> {
    /// Parses a frame with or without the FF 03 address/control prefix and with a one- or
    /// two-octet protocol field.
    pub fn parse(frame: &'a [u8]) -> Result<Self, PppError> {
        let mut off = 0;
        if frame.len() >= 2 && frame[0] == 0xff && frame[1] == 0x03 {
            off = 2;
        }
        let first = *frame.get(off).ok_or(PppError::FrameTooShort(frame.len()))?;
        let protocol = if first & 1 == 1 {
            off += 1;
            u16::from(first)
        } else {
            let second = *frame
                .get(off + 1)
                .ok_or(PppError::FrameTooShort(frame.len()))?;
            let p = u16::from_be_bytes([first, second]);
            if second & 1 == 0 {
                return Err(PppError::BadProtocol(p));
            }
            off += 2;
            p
        };
        Ok(Self {
            protocol,
            payload: &frame[off..],
            offset: off,
        })
    }

    /// Builds a frame with the FF 03 prefix and an uncompressed protocol field.
    #[must_use]
    pub fn emit(protocol: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + payload.len());
        v.extend_from_slice(&[0xff, 0x03]);
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }
}

/// A control packet: code, identifier and data (RFC 1661 section 5); used by LCP, the NCPs,
/// PAP and CHAP alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpPacket<'a> {
    /// Code field.
    pub code: u8,
    /// Identifier field.
    pub id: u8,
    /// Data after the 4-byte header, cut to the length field (padding is dropped).
    pub data: &'a [u8],
}

impl<'a> CpPacket<'a> {
    /// Parses a control packet from an information field.
    pub fn parse(buf: &'a [u8]) -> Result<Self, PppError> {
        if buf.len() < 4 {
            return Err(PppError::Truncated {
                declared: 4,
                available: buf.len(),
            });
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if len < 4 || len > buf.len() {
            return Err(PppError::Truncated {
                declared: len,
                available: buf.len(),
            });
        }
        Ok(Self {
            code: buf[0],
            id: buf[1],
            data: &buf[4..len],
        })
    }

    /// The whole packet as it would be emitted (header plus data).
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        Self::emit(self.code, self.id, self.data)
    }

    /// Builds a control packet; data longer than 65531 bytes is truncated.
    #[must_use]
    pub fn emit(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
        let data = &data[..data.len().min(usize::from(u16::MAX) - 4)];
        let mut v = Vec::with_capacity(4 + data.len());
        v.push(code);
        v.push(id);
        v.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }
}

/// One configuration option (type, value), borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// Option type.
    pub kind: u8,
    /// Value (without the type and length octets).
    pub value: &'a [u8],
}

impl RawOption<'_> {
    /// Appends this option in wire form to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        push_option(out, self.kind, self.value);
    }

    /// The value as a big-endian u16 when it is exactly two bytes long.
    #[must_use]
    pub fn u16(&self) -> Option<u16> {
        <[u8; 2]>::try_from(self.value).ok().map(u16::from_be_bytes)
    }

    /// The value as a big-endian u32 when it is exactly four bytes long.
    #[must_use]
    pub fn u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.value).ok().map(u32::from_be_bytes)
    }
}

/// Appends one option (type, length, value) to `out`; values longer than 253 bytes are truncated.
pub fn push_option(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let value = &value[..value.len().min(253)];
    out.push(kind);
    out.push((value.len() + 2) as u8);
    out.extend_from_slice(value);
}

/// Iterator over the options of a Configure-* packet; yields an error once and then stops.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Options<'a> {
    /// Iterates over the options in `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            rest: data,
            failed: false,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<RawOption<'a>, PppError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let kind = self.rest[0];
        let Some(&len) = self.rest.get(1) else {
            self.failed = true;
            return Some(Err(PppError::BadOption { kind, len: 1 }));
        };
        let len = usize::from(len);
        if len < 2 || len > self.rest.len() {
            self.failed = true;
            return Some(Err(PppError::BadOption { kind, len }));
        }
        let value = &self.rest[2..len];
        self.rest = &self.rest[len..];
        Some(Ok(RawOption { kind, value }))
    }
}

/// Parses a whole option list; the result holds at most `data.len() / 2` entries.
pub fn parse_options(data: &[u8]) -> Result<Vec<RawOption<'_>>, PppError> {
    Options::new(data).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frame_with_and_without_address_control() {
        let f = Frame::parse(&[0xff, 0x03, 0xc0, 0x21, 1, 2, 0, 4]).unwrap();
        assert_eq!(f.protocol, PROTO_LCP);
        assert_eq!(f.payload, &[1, 2, 0, 4]);
        assert_eq!(f.offset, 4);
        let f = Frame::parse(&[0xc0, 0x21, 9]).unwrap();
        assert_eq!((f.protocol, f.payload), (PROTO_LCP, &[9u8][..]));
        // PFC-compressed IPv4 protocol, without and with FF 03
        let f = Frame::parse(&[0x21, 0x45, 0]).unwrap();
        assert_eq!((f.protocol, f.offset), (PROTO_IPV4, 1));
        let f = Frame::parse(&[0xff, 0x03, 0x57, 0x60]).unwrap();
        assert_eq!((f.protocol, f.offset), (PROTO_IPV6, 3));
    }

    #[test]
    fn frame_errors() {
        assert_eq!(Frame::parse(&[]), Err(PppError::FrameTooShort(0)));
        assert_eq!(Frame::parse(&[0xff, 0x03]), Err(PppError::FrameTooShort(2)));
        assert_eq!(Frame::parse(&[0xc0]), Err(PppError::FrameTooShort(1)));
        assert_eq!(
            Frame::parse(&[0xc0, 0x20]),
            Err(PppError::BadProtocol(0xc020))
        );
    }

    #[test]
    fn control_packet_and_padding() {
        let p = CpPacket::parse(&[2, 7, 0, 6, 0xaa, 0xbb, 0xcc, 0xdd]).unwrap();
        assert_eq!((p.code, p.id, p.data), (2, 7, &[0xaa, 0xbb][..]));
        assert!(CpPacket::parse(&[2, 7, 0, 3]).is_err());
        assert!(CpPacket::parse(&[2, 7, 0, 9, 1, 2]).is_err());
        assert!(CpPacket::parse(&[2, 7, 0]).is_err());
        assert_eq!(
            CpPacket::emit(5, 1, b"bye"),
            vec![5, 1, 0, 7, b'b', b'y', b'e']
        );
    }

    #[test]
    fn option_list() {
        let opts = parse_options(&[1, 4, 0x05, 0x78, 7, 2, 5, 6, 1, 2, 3, 4]).unwrap();
        assert_eq!(opts.len(), 3);
        assert_eq!(opts[0].u16(), Some(1400));
        assert_eq!(opts[1].value, &[] as &[u8]);
        assert_eq!(opts[2].u32(), Some(0x0102_0304));
        assert!(parse_options(&[1, 1]).is_err());
        assert!(parse_options(&[1, 5, 0, 0]).is_err());
        assert!(parse_options(&[1]).is_err());
    }

    proptest! {
        #[test]
        fn options_roundtrip(list in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..12)) {
            let mut buf = Vec::new();
            for (k, v) in &list {
                push_option(&mut buf, *k, v);
            }
            let parsed = parse_options(&buf).unwrap();
            prop_assert_eq!(parsed.len(), list.len());
            let mut again = Vec::new();
            for (o, (k, v)) in parsed.iter().zip(&list) {
                prop_assert_eq!(o.kind, *k);
                prop_assert_eq!(o.value, &v[..]);
                o.emit(&mut again);
            }
            prop_assert_eq!(again, buf);
        }

        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_options(&data);
            if let Ok(f) = Frame::parse(&data) {
                prop_assert!(f.offset + f.payload.len() == data.len());
                if let Ok(p) = CpPacket::parse(f.payload) {
                    prop_assert!(p.data.len() + 4 <= f.payload.len());
                    let _ = parse_options(p.data);
                }
            }
        }

        #[test]
        fn packet_roundtrip(code in any::<u8>(), id in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let bytes = CpPacket::emit(code, id, &data);
            let p = CpPacket::parse(&bytes).unwrap();
            prop_assert_eq!((p.code, p.id, p.data), (code, id, &data[..]));
            let frame = Frame::emit(PROTO_IPCP, &bytes);
            let f = Frame::parse(&frame).unwrap();
            prop_assert_eq!(f.protocol, PROTO_IPCP);
            prop_assert_eq!(f.payload, &bytes[..]);
        }
    }
}
