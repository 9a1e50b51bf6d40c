//! A sans-IO PPP client (RFC 1661 family) for the LAC side of an L2TP session.
//!
//! [`Link`] runs LCP (MRU, Magic-Number, authentication, PFC/ACFC, echo keepalives), the
//! authenticatee side of PAP, CHAP-MD5, MS-CHAPv1 and MS-CHAPv2, and the IPCP (address, DNS)
//! and IPV6CP (interface identifier) NCPs. It never reads a clock or a socket: frames come in
//! through [`Link::handle_frame`], timers through [`Link::handle_timeout`], and everything it
//! wants to send or report is drained with [`Link::poll_transmit`] and [`Link::poll_event`].
//!
//! CCP and every other protocol we do not run is answered with LCP Protocol-Reject.
#![forbid(unsafe_code)]

mod auth;
mod error;
pub mod fsm;
mod link;
pub mod mschap;
pub mod options;
mod types;
pub mod wire;

#[cfg(test)]
mod tests;

pub use error::PppError;
pub use link::Link;
pub use types::{AuthMethod, Config, DownReason, Event, Packet, Phase};
