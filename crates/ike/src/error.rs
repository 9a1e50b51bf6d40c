//! The crate's error type.

/// Errors of the IKEv1 initiator. Each message is one lowercase line; [`Error::hint`] adds
/// advice for the user where there is any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that do not parse (peer misbehaved).
    #[error("malformed isakmp message: {0}")]
    Malformed(&'static str),
    /// A message failed decryption or integrity checks that are not authentication.
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// The server never answered a message.
    #[error("no answer from the server to {stage} after {tries} tries (we offered: {offered})")]
    NoResponse {
        /// Which message went unanswered.
        stage: &'static str,
        /// How many times it was sent.
        tries: u32,
        /// What we offered, in proposal notation.
        offered: String,
    },
    /// The server rejected every proposal.
    #[error(
        "the server accepted none of our phase {phase} proposals (no-proposal-chosen; we offered: {offered})"
    )]
    NoProposalChosen {
        /// 1 (IKE) or 2 (ESP).
        phase: u8,
        /// What we offered.
        offered: String,
    },
    /// The server chose something we did not offer.
    #[error("the server chose a proposal we did not offer: {0}")]
    BadProposal(String),
    /// The server refused our identities / traffic selectors.
    #[error("the server rejected our identity or traffic selectors (invalid-id-information)")]
    InvalidIdInformation,
    /// The server reported AUTHENTICATION-FAILED.
    #[error("the server reported authentication-failed")]
    AuthenticationFailed,
    /// The server's HASH_R did not verify with our pre-shared key.
    #[error("the server's authentication hash does not match our pre-shared key")]
    WrongPsk,
    /// The server kept repeating main mode message 4 after our message 5.
    #[error(
        "the server ignored our authentication (main mode message 4 repeated): wrong pre-shared key?"
    )]
    PskRejectedSilently,
    /// The server's signature did not verify.
    #[error("the server's signature does not verify with its certificate")]
    BadSignature,
    /// The server certificate failed validation.
    #[error("server certificate rejected: {0}")]
    Certificate(String),
    /// The server identity does not match the configured remote ID.
    #[error("server identity {got} does not match the expected {expected}")]
    IdentityMismatch {
        /// What we expected.
        expected: String,
        /// What the server presented.
        got: String,
    },
    /// Another error notification from the server.
    #[error("the server sent error notification {name} ({code})")]
    Notify {
        /// Notify message type.
        code: u16,
        /// Its name.
        name: &'static str,
    },
    /// The server deleted the ISAKMP SA.
    #[error("the server deleted the ike sa")]
    Deleted,
    /// Dead peer detection found the server unreachable.
    #[error("the server stopped answering dead peer detection")]
    PeerDead,
    /// The local configuration is invalid.
    #[error("invalid ike configuration: {0}")]
    Config(String),
    /// A proposal string could not be parsed.
    #[error("invalid proposal {0:?}: {1}")]
    InvalidProposal(String, String),
    /// A cryptographic operation failed.
    #[error("crypto error: {0}")]
    Crypto(String),
    /// The connection was closed locally.
    #[error("the ike session is closed")]
    Closed,
}

impl Error {
    /// A short piece of advice for the user, if any.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Error::NoResponse {
                stage: "main mode message 1",
                ..
            }
            | Error::NoResponse {
                stage: "aggressive mode message 1",
                ..
            } => {
                "check the server address and that udp/500 is reachable; some servers (softether) silently drop proposals they do not accept: set `ike = [...]` in [ipsec] to what the server allows, e.g. [\"3des-sha1-modp1024\"]"
            }
            Error::NoResponse {
                stage: "main mode message 5",
                ..
            } => {
                "the server did not accept our authentication: check the pre-shared key or certificate"
            }
            Error::NoResponse { .. } => {
                "the server or the path to it stopped answering; check udp/500 and udp/4500"
            }
            Error::NoProposalChosen { phase: 1, .. } => {
                "the server accepts none of our ike proposals: remove `ike = [...]` from [ipsec] to offer l2sec's default list, or set it to what the server allows (e.g. [\"aes256-sha256-modp2048\"] for libreswan, [\"3des-sha1-modp1024\"] for old servers)"
            }
            Error::NoProposalChosen { .. } => {
                "the server accepts none of our esp proposals: remove `esp = [...]` from [ipsec] to offer l2sec's default list, or set it (e.g. aes128-sha1, 3des-sha1) and pfs as the server requires"
            }
            Error::InvalidIdInformation => {
                "the server does not accept l2tp transport mode (udp/1701) for our address, or expects another local id"
            }
            Error::AuthenticationFailed | Error::WrongPsk | Error::PskRejectedSilently => {
                "check the pre-shared key (or the client certificate) configured for this server"
            }
            Error::BadSignature | Error::Certificate(_) => {
                "check that `ca` names the authority that issued the server certificate"
            }
            Error::IdentityMismatch { .. } => {
                "check `remote_id` in the profile against the server certificate"
            }
            Error::Deleted | Error::PeerDead => "the connection was lost; reconnect",
            Error::Malformed(_) | Error::Protocol(_) | Error::BadProposal(_) => {
                "the server sent something unexpected; a capture (udp 500/4500) helps diagnose it"
            }
            _ => return None,
        })
    }
}

impl From<l2sec_crypto::CryptoError> for Error {
    fn from(e: l2sec_crypto::CryptoError) -> Self {
        Error::Crypto(e.to_string())
    }
}

/// The name of a notify message type.
#[must_use]
pub fn notify_name(code: u16) -> &'static str {
    match code {
        1 => "invalid-payload-type",
        2 => "doi-not-supported",
        3 => "situation-not-supported",
        4 => "invalid-cookie",
        5 => "invalid-major-version",
        6 => "invalid-minor-version",
        7 => "invalid-exchange-type",
        8 => "invalid-flags",
        9 => "invalid-message-id",
        10 => "invalid-protocol-id",
        11 => "invalid-spi",
        12 => "invalid-transform-id",
        13 => "attributes-not-supported",
        14 => "no-proposal-chosen",
        15 => "bad-proposal-syntax",
        16 => "payload-malformed",
        17 => "invalid-key-information",
        18 => "invalid-id-information",
        19 => "invalid-cert-encoding",
        20 => "invalid-certificate",
        21 => "cert-type-unsupported",
        22 => "invalid-cert-authority",
        23 => "invalid-hash-information",
        24 => "authentication-failed",
        25 => "invalid-signature",
        26 => "address-notification",
        27 => "notify-sa-lifetime",
        28 => "certificate-unavailable",
        29 => "unsupported-exchange-type",
        30 => "unequal-payload-lengths",
        _ => "unknown",
    }
}
