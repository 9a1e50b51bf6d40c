//! A sans-IO IKEv1 initiator (RFC 2407, 2408, 2409) that negotiates the ESP SA protecting
//! L2TP (UDP/1701, RFC 3193), with NAT traversal (RFC 3947 and drafts), DPD (RFC 3706),
//! rekeying and the ISAKMP wire format.
//!
//! The [`Initiator`] never touches a socket or a clock: feed it datagrams and timeouts, drain
//! [`Initiator::poll_transmit`] and [`Initiator::poll_event`].
#![forbid(unsafe_code)]

mod cert;
mod config;
mod error;
mod initiator;
pub mod keys;
mod proposal;
pub mod wire;

pub use cert::{ServerCert, sign, subject_der, validate_chain};
pub use config::{
    Auth, CertAuth, Config, EspMode, Identity, PfsChoice, RemoteId, load_certs, load_private_key,
};
pub use error::{Error, notify_name};
pub use initiator::{
    AGGRESSIVE_MODE_WARNING, Event, IkePort, Initiator, NatStatus, Transmit, vendor_id,
};
pub use proposal::{
    EspProposal, IkeProposal, ProposalError, default_esp_proposals, default_ike_proposals,
    parse_esp_proposal, parse_ike_proposal,
};
