//! The crate's error type.

/// Why a PPP frame, packet or option list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PppError {
    /// The frame ends before its protocol field is complete.
    #[error("ppp frame too short ({0} bytes)")]
    FrameTooShort(usize),
    /// The protocol field violates RFC 1661 (low bit of the last octet must be 1, of the first 0).
    #[error("invalid ppp protocol field {0:#06x}")]
    BadProtocol(u16),
    /// A control packet is shorter than its 4-byte header or than its length field says.
    #[error("truncated control packet: length field {declared}, {available} bytes available")]
    Truncated {
        /// Length field of the packet.
        declared: usize,
        /// Bytes present.
        available: usize,
    },
    /// An option's length field is below 2 or runs past the end of the packet.
    #[error("malformed option {kind} (length {len})")]
    BadOption {
        /// Option type.
        kind: u8,
        /// Length field.
        len: usize,
    },
    /// An authentication packet is malformed.
    #[error("malformed {0} packet")]
    BadAuthPacket(&'static str),
}
