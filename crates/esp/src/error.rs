//! The error type of this crate.

/// Why a packet could not be sealed or opened, or an SA could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The packet is too short or its length does not fit the suite (peer misbehaved).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The ICV did not verify (tampered packet or wrong keys).
    #[error("integrity check failed")]
    AuthFailed,
    /// The sequence number was already seen or is left of the replay window.
    #[error("replayed or too old sequence number {0}")]
    Replay(u32),
    /// The decrypted padding or pad length is invalid.
    #[error("invalid padding")]
    BadPadding,
    /// The next-header field names a protocol this SA does not carry.
    #[error("unexpected next header {0}")]
    UnexpectedNextHeader(u8),
    /// A dummy packet (next header 59, RFC 4303 section 2.6): discard silently.
    #[error("dummy packet")]
    Dummy,
    /// No SA of this endpoint has this inbound SPI.
    #[error("unknown spi {0:#010x}")]
    UnknownSpi(u32),
    /// The outbound sequence number space is used up: the SA must be replaced.
    #[error("sequence number space exhausted")]
    SequenceExhausted,
    /// The SA reached a hard lifetime limit and must not be used any more.
    #[error("sa expired")]
    Expired,
    /// The caller's buffer cannot hold the packet (local programming error).
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The payload exceeds what one packet can carry.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The configuration names an invalid combination (local configuration).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// The crypto layer refused the keys or algorithms (policy or key length).
    #[error("crypto: {0}")]
    Crypto(#[from] l2sec_crypto::CryptoError),
}
