//! The L2TPv2 header (RFC 2661 section 3.1).

use crate::Error;

const T_BIT: u16 = 0x8000;
const L_BIT: u16 = 0x4000;
const S_BIT: u16 = 0x0800;
const O_BIT: u16 = 0x0200;
const P_BIT: u16 = 0x0100;
const VERSION_MASK: u16 = 0x000f;

/// The only protocol version this crate speaks (L2TPv2).
pub const VERSION: u8 = 2;
/// Length of a control message header (flags, length, tunnel, session, Ns, Nr).
pub const CONTROL_HEADER_LEN: usize = 12;

/// A parsed L2TPv2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// T bit: control message (true) or data message (false).
    pub control: bool,
    /// L bit: the header carries a Length field.
    pub with_length: bool,
    /// Tunnel ID (the receiver's assigned id).
    pub tunnel_id: u16,
    /// Session ID (the receiver's assigned id, 0 for tunnel-level messages).
    pub session_id: u16,
    /// Ns and Nr when the S bit is set.
    pub sequence: Option<(u16, u16)>,
    /// Offset Size when the O bit is set (padding bytes after the header).
    pub offset: Option<u16>,
    /// P bit: priority data message.
    pub priority: bool,
}

impl Header {
    /// A control message header (T, L and S set).
    #[must_use]
    pub fn control(tunnel_id: u16, session_id: u16, ns: u16, nr: u16) -> Self {
        Header {
            control: true,
            with_length: true,
            tunnel_id,
            session_id,
            sequence: Some((ns, nr)),
            offset: None,
            priority: false,
        }
    }

    /// Bytes this header occupies on the wire, offset padding included.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        let mut n = 6;
        if self.with_length {
            n += 2;
        }
        if self.sequence.is_some() {
            n += 4;
        }
        if let Some(off) = self.offset {
            n += 2 + usize::from(off);
        }
        n
    }

    /// Parses the header of `data`; returns it with the payload (after the offset padding,
    /// cut to the Length field when present).
    ///
    /// # Errors
    /// On a truncated datagram, a version other than 2, a control message without the L and
    /// S bits, or a Length field that disagrees with the datagram.
    pub fn parse(data: &[u8]) -> Result<(Header, &[u8]), Error> {
        let flags = read_u16(data, 0)?;
        let version = (flags & VERSION_MASK) as u8;
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let control = flags & T_BIT != 0;
        let with_length = flags & L_BIT != 0;
        let has_seq = flags & S_BIT != 0;
        let has_offset = flags & O_BIT != 0;
        if control && (!with_length || !has_seq) {
            return Err(Error::BadControlHeader);
        }
        let mut pos = 2;
        let mut end = data.len();
        if with_length {
            let len = usize::from(read_u16(data, pos)?);
            if len > data.len() || len < 6 {
                return Err(Error::BadLength {
                    field: len,
                    actual: data.len(),
                });
            }
            end = len;
            pos += 2;
        }
        let data = &data[..end];
        let tunnel_id = read_u16(data, pos)?;
        let session_id = read_u16(data, pos + 2)?;
        pos += 4;
        let sequence = if has_seq {
            let ns = read_u16(data, pos)?;
            let nr = read_u16(data, pos + 2)?;
            pos += 4;
            Some((ns, nr))
        } else {
            None
        };
        let offset = if has_offset && !control {
            let off = read_u16(data, pos)?;
            pos += 2 + usize::from(off);
            if pos > data.len() {
                return Err(Error::Truncated(data.len()));
            }
            Some(off)
        } else {
            None
        };
        let header = Header {
            control,
            with_length,
            tunnel_id,
            session_id,
            sequence,
            offset,
            priority: flags & P_BIT != 0 && !control,
        };
        Ok((header, &data[pos..]))
    }

    /// Writes the header into `buf[..self.buffer_len()]`; `total_len` (header + payload) goes
    /// into the Length field when present. Offset padding is zeroed.
    ///
    /// # Errors
    /// When `buf` is shorter than the header or `total_len` does not fit 16 bits.
    pub fn emit(&self, buf: &mut [u8], total_len: usize) -> Result<(), Error> {
        let need = self.buffer_len();
        if buf.len() < need {
            return Err(Error::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        let mut flags = u16::from(VERSION);
        if self.control {
            flags |= T_BIT;
        }
        if self.with_length {
            flags |= L_BIT;
        }
        if self.sequence.is_some() {
            flags |= S_BIT;
        }
        if self.offset.is_some() {
            flags |= O_BIT;
        }
        if self.priority {
            flags |= P_BIT;
        }
        buf[0..2].copy_from_slice(&flags.to_be_bytes());
        let mut pos = 2;
        if self.with_length {
            let len = u16::try_from(total_len).map_err(|_| Error::MessageTooLong)?;
            buf[2..4].copy_from_slice(&len.to_be_bytes());
            pos = 4;
        }
        buf[pos..pos + 2].copy_from_slice(&self.tunnel_id.to_be_bytes());
        buf[pos + 2..pos + 4].copy_from_slice(&self.session_id.to_be_bytes());
        pos += 4;
        if let Some((ns, nr)) = self.sequence {
            buf[pos..pos + 2].copy_from_slice(&ns.to_be_bytes());
            buf[pos + 2..pos + 4].copy_from_slice(&nr.to_be_bytes());
            pos += 4;
        }
        if let Some(off) = self.offset {
            buf[pos..pos + 2].copy_from_slice(&off.to_be_bytes());
            pos += 2;
            buf[pos..pos + usize::from(off)].fill(0);
        }
        Ok(())
    }
}

pub(crate) fn read_u16(data: &[u8], pos: usize) -> Result<u16, Error> {
    match data.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Error::Truncated(data.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_control_header() {
        // SCCRQ header as sent by xl2tpd: T L S, ver 2, length 20, tunnel 0, session 0, Ns 0, Nr 0.
        let mut pkt = vec![0xc8, 0x02, 0x00, 0x14, 0, 0, 0, 0, 0, 0, 0, 0];
        pkt.extend_from_slice(&[0x80, 0x08, 0, 0, 0, 0, 0, 1]);
        let (h, payload) = Header::parse(&pkt).unwrap();
        assert!(h.control);
        assert_eq!(h.sequence, Some((0, 0)));
        assert_eq!(payload, &pkt[12..]);
    }

    #[test]
    fn length_field_cuts_trailing_bytes() {
        let mut pkt = vec![0xc8, 0x02, 0x00, 0x0c, 0, 1, 0, 0, 0, 3, 0, 4];
        pkt.extend_from_slice(&[9, 9, 9]);
        let (h, payload) = Header::parse(&pkt).unwrap();
        assert_eq!(h.sequence, Some((3, 4)));
        assert!(payload.is_empty());
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(Header::parse(&[0xc8]), Err(Error::Truncated(1)));
        assert_eq!(
            Header::parse(&[0xc8, 0x03, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::UnsupportedVersion(3))
        );
        assert_eq!(
            Header::parse(&[0x80, 0x02, 0, 0, 0, 0]),
            Err(Error::BadControlHeader)
        );
        assert_eq!(
            Header::parse(&[0xc8, 0x02, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadLength {
                field: 40,
                actual: 12
            })
        );
        // Offset beyond the end.
        assert_eq!(
            Header::parse(&[0x02, 0x02, 0, 1, 0, 2, 0, 9, 1]),
            Err(Error::Truncated(9))
        );
    }

    #[test]
    fn data_header_with_offset_and_sequence() {
        let pkt = [
            0x0a, 0x02, 0, 7, 0, 9, 0, 1, 0, 0, 0, 2, 0xee, 0xee, 0xff, 0x03,
        ];
        let (h, payload) = Header::parse(&pkt).unwrap();
        assert!(!h.control);
        assert_eq!((h.tunnel_id, h.session_id), (7, 9));
        assert_eq!(h.sequence, Some((1, 0)));
        assert_eq!(h.offset, Some(2));
        assert_eq!(payload, &[0xff, 0x03]);
    }

    proptest! {
        #[test]
        fn round_trip(control in any::<bool>(), len in any::<bool>(), t in any::<u16>(), s in any::<u16>(),
                      seq in proptest::option::of(any::<(u16, u16)>()), off in proptest::option::of(0u16..16),
                      prio in any::<bool>(), payload in proptest::collection::vec(any::<u8>(), 0..32)) {
            let h = if control {
                Header { control, with_length: true, tunnel_id: t, session_id: s,
                         sequence: Some(seq.unwrap_or((1, 2))), offset: None, priority: false }
            } else {
                Header { control, with_length: len, tunnel_id: t, session_id: s, sequence: seq, offset: off, priority: prio }
            };
            let mut buf = vec![0u8; h.buffer_len() + payload.len()];
            let total = buf.len();
            h.emit(&mut buf, total).unwrap();
            buf[h.buffer_len()..].copy_from_slice(&payload);
            let (back, p) = Header::parse(&buf).unwrap();
            prop_assert_eq!(back, h);
            prop_assert_eq!(p, &payload[..]);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Header::parse(&data);
        }
    }
}
