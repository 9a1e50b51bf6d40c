//! ESP (RFC 4303) transport-mode security associations in userspace, sans-IO.
//!
//! [`Sa`] seals and opens packets in place in caller-provided buffers; [`SaPair`] keeps the
//! previous SA alive for inbound traffic during a rekey; [`classify_udp4500`] and
//! [`strip_ipv4_header`] handle the outer framing (RFC 3948 UDP encapsulation or raw IP
//! protocol 50); [`udp`] builds and parses the inner UDP header of L2TP.
#![forbid(unsafe_code)]

mod config;
mod encap;
mod error;
mod pair;
pub mod replay;
mod sa;
pub mod udp;

pub use config::{DirectionKeys, Encapsulation, SaConfig};
pub use encap::{
    IPPROTO_ESP, NAT_KEEPALIVE, NON_ESP_MARKER, Udp4500, classify_udp4500, peek_spi,
    strip_ipv4_header,
};
pub use error::Error;
pub use pair::{Endpoint, SaPair};
pub use sa::{
    Drops, Event, NEXT_HEADER_DUMMY, NEXT_HEADER_UDP, Opened, SEQ_SOFT_LIMIT, Sa, SealJob, Stats,
};

#[cfg(test)]
mod tests;
