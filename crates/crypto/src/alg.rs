//! Algorithm identifiers shared by IKE, ESP and PPP, and the policy that gates them.
//!
//! This file is the contract between crates: the enums and their wire ids are stable.

/// How strong an algorithm is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strength {
    /// Acceptable today (AES, SHA-2, MODP >= 1536, ECP).
    Modern,
    /// Still common in the field, allowed with a warning (3DES, SHA-1 for IKE, MODP-1024).
    Legacy,
    /// Broken: DES, MD5, MODP-768. Only when a profile names it explicitly.
    Weak,
}

/// What a connection is willing to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Policy {
    /// Only [`Strength::Modern`] algorithms.
    Modern,
    /// Modern and legacy algorithms (the default: needed by most servers).
    #[default]
    Legacy,
    /// Everything, including weak algorithms (explicit opt-in).
    Weak,
}

impl Policy {
    /// Whether an algorithm of `strength` is allowed under this policy.
    #[must_use]
    pub fn allows(self, strength: Strength) -> bool {
        match self {
            Policy::Modern => strength == Strength::Modern,
            Policy::Legacy => strength <= Strength::Legacy,
            Policy::Weak => true,
        }
    }
}

/// A block cipher or AEAD used by IKE (phase 1 encryption) or ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherAlg {
    /// DES-CBC, 8-byte key (weak).
    DesCbc,
    /// 3DES-EDE-CBC, 24-byte key (legacy).
    TripleDesCbc,
    /// AES-CBC with a 128, 192 or 256 bit key.
    AesCbc {
        /// Key length in bits: 128, 192 or 256.
        key_bits: u16,
    },
    /// AES-GCM with a 16-byte ICV (RFC 4106), ESP only. Key material is key + 4-byte salt.
    AesGcm16 {
        /// Key length in bits: 128 or 256 (192 accepted too).
        key_bits: u16,
    },
}

/// An integrity algorithm for ESP (HMAC truncated to the ICV length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegAlg {
    /// HMAC-MD5-96 (RFC 2403), weak.
    HmacMd5_96,
    /// HMAC-SHA1-96 (RFC 2404).
    HmacSha1_96,
    /// HMAC-SHA2-256-128 (RFC 4868).
    HmacSha256_128,
    /// HMAC-SHA2-384-192 (RFC 4868).
    HmacSha384_192,
    /// HMAC-SHA2-512-256 (RFC 4868).
    HmacSha512_256,
}

/// A hash algorithm, used as the IKEv1 PRF (HMAC) and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// MD5 (weak).
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA2-256.
    Sha256,
    /// SHA2-384.
    Sha384,
    /// SHA2-512.
    Sha512,
}

/// A Diffie-Hellman group by its IANA number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// MODP 768-bit, group 1 (weak).
    Modp768,
    /// MODP 1024-bit, group 2 (legacy).
    Modp1024,
    /// MODP 1536-bit, group 5.
    Modp1536,
    /// MODP 2048-bit, group 14.
    Modp2048,
    /// MODP 3072-bit, group 15.
    Modp3072,
    /// MODP 4096-bit, group 16.
    Modp4096,
    /// ECP 256-bit (NIST P-256), group 19.
    Ecp256,
    /// ECP 384-bit (NIST P-384), group 20.
    Ecp384,
}
