//! Sans-IO L2TPv2 (RFC 2661) for l2sec: header and AVP codec (hidden AVPs included), reliable
//! control connection, and an LAC that keeps one tunnel with any number of calls to an LNS.
//!
//! The [`Lac`] never touches a socket or a clock: feed it datagrams with
//! [`Lac::handle_datagram`] and time with [`Lac::handle_timeout`], send what
//! [`Lac::poll_transmit`] returns to UDP port 1701 of the LNS, and react to [`Lac::poll_event`].
#![forbid(unsafe_code)]

pub mod avp;
pub mod header;
mod lac;
pub mod message;
mod reason;
mod reliable;

#[cfg(test)]
mod tests;

pub use avp::{Avp, CallErrors, PppDisconnectCause, Q931Cause, ResultCode};
pub use header::Header;
pub use lac::{Config, DataFrame, Event, Lac, SessionHandle};
pub use message::{Message, MessageType};
pub use reason::{CloseCause, CloseReason, Phase};

/// The injected source of random bytes (tunnel and session ids, challenges, random vectors).
pub use l2sec_crypto::Rng;

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The datagram ends inside a header or field.
    #[error("datagram truncated ({0} bytes)")]
    Truncated(usize),
    /// Not L2TPv2 (3 is L2TPv3, 1 is L2F).
    #[error("unsupported l2tp version {0}")]
    UnsupportedVersion(u8),
    /// A control message without the length or sequence bits.
    #[error("control message header lacks the length or sequence bit")]
    BadControlHeader,
    /// The Length field disagrees with the datagram.
    #[error("length field {field} does not fit a datagram of {actual} bytes")]
    BadLength {
        /// Length field value.
        field: usize,
        /// Datagram length.
        actual: usize,
    },
    /// An AVP length below 6 or beyond the message.
    #[error("invalid avp length {0}")]
    BadAvpLength(usize),
    /// An AVP value that does not fit its attribute's format.
    #[error("avp type {attr} has an invalid value of {len} bytes")]
    BadAvpValue {
        /// Attribute type.
        attr: u16,
        /// Value length.
        len: usize,
    },
    /// An AVP too long to encode.
    #[error("avp of {0} bytes exceeds 1023")]
    AvpTooLong(usize),
    /// The message does not start with a Message Type AVP.
    #[error("control message does not start with a message type avp")]
    MissingMessageType,
    /// A hidden AVP arrived but no tunnel secret is configured.
    #[error("hidden avp received but no tunnel secret is configured")]
    HiddenWithoutSecret,
    /// A hidden AVP without a Random Vector AVP before it.
    #[error("hidden avp without a preceding random vector")]
    HiddenWithoutRandomVector,
    /// A hidden AVP whose revealed length is impossible (wrong secret?).
    #[error("hidden avp does not decode (wrong tunnel secret?)")]
    BadHiddenAvp,
    /// More AVPs than [`message::MAX_AVPS`].
    #[error("too many avps in one control message")]
    TooManyAvps,
    /// A message longer than 65535 bytes.
    #[error("message too long to encode")]
    MessageTooLong,
    /// No such call.
    #[error("unknown session")]
    UnknownSession,
    /// The call is not connected yet (or any more).
    #[error("session is not established")]
    SessionNotEstablished,
    /// The tunnel is closing or closed.
    #[error("tunnel is closed")]
    TunnelClosed,
    /// An output buffer is too small.
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}
