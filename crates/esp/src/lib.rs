//! ESP (RFC 4303) transport-mode security associations in userspace, sans-IO.
#![forbid(unsafe_code)]

mod config;
pub use config::{DirectionKeys, Encapsulation, SaConfig};
