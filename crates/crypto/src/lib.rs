//! Cryptographic primitives for l2sec: one registry for IKEv1, ESP and PPP.
#![forbid(unsafe_code)]

mod alg;
pub use alg::{CipherAlg, DhGroup, HashAlg, IntegAlg, Policy, Strength};
