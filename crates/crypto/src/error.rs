//! The crate's error type.

use crate::alg::Strength;

/// Errors returned by l2sec-crypto.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key (or key material) has the wrong length for the algorithm.
    #[error("bad key length for {alg}: expected {expected} bytes, got {got}")]
    BadKeyLength {
        /// Algorithm name.
        alg: &'static str,
        /// Expected length in bytes.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// An input (IV, data, tag) has the wrong length.
    #[error("bad length: {0}")]
    BadLength(&'static str),
    /// An AEAD tag did not verify.
    #[error("authentication failed")]
    AuthFailed,
    /// A peer's Diffie-Hellman public value is malformed or unsafe.
    #[error("invalid diffie-hellman public value: {0}")]
    InvalidPublicValue(&'static str),
    /// A private value given for import is invalid.
    #[error("invalid private value: {0}")]
    InvalidPrivateValue(&'static str),
    /// The algorithm is not allowed by the configured policy.
    #[error("algorithm {name} is {} and not allowed by the policy", strength.as_str())]
    NotAllowed {
        /// Algorithm name.
        name: String,
        /// Its strength.
        strength: Strength,
    },
    /// The algorithm or combination is not supported by this operation.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}
