//! The hand-off from IKE to ESP: everything one transport-mode SA pair needs.
//!
//! This file is the contract between `l2sec-ike` (which produces it at the end of quick mode)
//! and `l2sec-esp` (which consumes it). Keep it plain data.

use l2sec_crypto::{CipherAlg, IntegAlg};
use zeroize::Zeroizing;

/// Keys of one direction of an SA.
#[derive(Clone)]
pub struct DirectionKeys {
    /// SPI carried in ESP headers of this direction (chosen by the receiver of this direction).
    pub spi: u32,
    /// Encryption key; for AES-GCM the key followed by the 4-byte salt (RFC 4106 section 8.1).
    pub enc_key: Zeroizing<Vec<u8>>,
    /// Integrity key (empty for AEAD ciphers).
    pub auth_key: Zeroizing<Vec<u8>>,
}

impl DirectionKeys {
    /// Keys of one direction from borrowed slices (copied into zeroizing storage).
    #[must_use]
    pub fn new(spi: u32, enc_key: &[u8], auth_key: &[u8]) -> Self {
        Self {
            spi,
            enc_key: Zeroizing::new(enc_key.to_vec()),
            auth_key: Zeroizing::new(auth_key.to_vec()),
        }
    }
}

impl core::fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DirectionKeys")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("enc_key", &"<redacted>")
            .field("auth_key", &"<redacted>")
            .finish()
    }
}

/// How ESP packets travel between the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// Raw IP protocol 50.
    Raw,
    /// UDP encapsulation (RFC 3948), normally 4500 on both sides.
    Udp {
        /// Our UDP source port.
        local_port: u16,
        /// The server's UDP port.
        remote_port: u16,
    },
}

/// One negotiated ESP transport-mode SA pair.
#[derive(Debug, Clone)]
pub struct SaConfig {
    /// Encryption transform.
    pub cipher: CipherAlg,
    /// Integrity transform; `None` for AEAD ciphers (AES-GCM).
    pub integ: Option<IntegAlg>,
    /// Keys of packets we send.
    pub outbound: DirectionKeys,
    /// Keys of packets we receive.
    pub inbound: DirectionKeys,
    /// Transport of the ESP packets.
    pub encap: Encapsulation,
    /// NAT original addresses (NAT-OA) if the peers exchanged them: (ours as the server saw
    /// it declared, the server's original address), used for inner checksum fix-ups.
    pub nat_oa: Option<(std::net::IpAddr, std::net::IpAddr)>,
    /// Lifetime in seconds (the smaller of ours and the responder's), if any.
    pub lifetime_secs: Option<u32>,
    /// Lifetime in kilobytes, if any.
    pub lifetime_kbytes: Option<u64>,
}
