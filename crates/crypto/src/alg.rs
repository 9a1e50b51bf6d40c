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

impl Strength {
    /// Lowercase name: "modern", "legacy" or "weak".
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Modern => "modern",
            Strength::Legacy => "legacy",
            Strength::Weak => "weak",
        }
    }
}

/// Whether `bits` is a valid AES key size.
fn aes_bits_ok(bits: u16) -> bool {
    matches!(bits, 128 | 192 | 256)
}

impl CipherAlg {
    /// Every cipher with every supported key size, strongest first.
    pub const ALL: [CipherAlg; 8] = [
        CipherAlg::AesGcm16 { key_bits: 256 },
        CipherAlg::AesGcm16 { key_bits: 192 },
        CipherAlg::AesGcm16 { key_bits: 128 },
        CipherAlg::AesCbc { key_bits: 256 },
        CipherAlg::AesCbc { key_bits: 192 },
        CipherAlg::AesCbc { key_bits: 128 },
        CipherAlg::TripleDesCbc,
        CipherAlg::DesCbc,
    ];

    /// Cipher key length in bytes (without the GCM salt).
    #[must_use]
    pub fn key_len(&self) -> usize {
        match self {
            CipherAlg::DesCbc => 8,
            CipherAlg::TripleDesCbc => 24,
            CipherAlg::AesCbc { key_bits } | CipherAlg::AesGcm16 { key_bits } => {
                usize::from(*key_bits) / 8
            }
        }
    }

    /// Key material ESP needs: the key, plus the 4-byte salt for GCM (RFC 4106).
    #[must_use]
    pub fn keymat_len(&self) -> usize {
        match self {
            CipherAlg::AesGcm16 { .. } => self.key_len() + 4,
            _ => self.key_len(),
        }
    }

    /// Padding alignment: the block size for CBC, 4 for GCM.
    #[must_use]
    pub fn block_len(&self) -> usize {
        match self {
            CipherAlg::DesCbc | CipherAlg::TripleDesCbc => 8,
            CipherAlg::AesCbc { .. } => 16,
            CipherAlg::AesGcm16 { .. } => 4,
        }
    }

    /// Length of the explicit IV carried in each packet.
    #[must_use]
    pub fn iv_len(&self) -> usize {
        match self {
            CipherAlg::DesCbc | CipherAlg::TripleDesCbc => 8,
            CipherAlg::AesCbc { .. } => 16,
            CipherAlg::AesGcm16 { .. } => 8,
        }
    }

    /// Whether this is an AEAD (no separate integrity algorithm).
    #[must_use]
    pub fn is_aead(&self) -> bool {
        matches!(self, CipherAlg::AesGcm16 { .. })
    }

    /// Strength class: DES weak, 3DES legacy, AES modern.
    #[must_use]
    pub fn strength(&self) -> Strength {
        match self {
            CipherAlg::DesCbc => Strength::Weak,
            CipherAlg::TripleDesCbc => Strength::Legacy,
            CipherAlg::AesCbc { .. } | CipherAlg::AesGcm16 { .. } => Strength::Modern,
        }
    }

    /// Canonical name, e.g. "aes128" or "aes256gcm16"; "invalid" for an unsupported key size.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            CipherAlg::DesCbc => "des",
            CipherAlg::TripleDesCbc => "3des",
            CipherAlg::AesCbc { key_bits: 128 } => "aes128",
            CipherAlg::AesCbc { key_bits: 192 } => "aes192",
            CipherAlg::AesCbc { key_bits: 256 } => "aes256",
            CipherAlg::AesGcm16 { key_bits: 128 } => "aes128gcm16",
            CipherAlg::AesGcm16 { key_bits: 192 } => "aes192gcm16",
            CipherAlg::AesGcm16 { key_bits: 256 } => "aes256gcm16",
            CipherAlg::AesCbc { .. } | CipherAlg::AesGcm16 { .. } => "invalid",
        }
    }

    /// Parse a name (ASCII case-insensitive); accepts "aes" for aes128 and "aesNNNgcm" aliases.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        let alg = match s.as_str() {
            "aes" => CipherAlg::AesCbc { key_bits: 128 },
            "aes128gcm" => CipherAlg::AesGcm16 { key_bits: 128 },
            "aes192gcm" => CipherAlg::AesGcm16 { key_bits: 192 },
            "aes256gcm" => CipherAlg::AesGcm16 { key_bits: 256 },
            other => return Self::ALL.into_iter().find(|a| a.name() == other),
        };
        Some(alg)
    }

    /// IKEv1 phase 1 Encryption-Algorithm attribute value and Key-Length attribute (RFC 2409, RFC 3602).
    /// `None` for GCM, which IKEv1 phase 1 does not define.
    #[must_use]
    pub fn ike_id(&self) -> Option<(u16, Option<u16>)> {
        match *self {
            CipherAlg::DesCbc => Some((1, None)),
            CipherAlg::TripleDesCbc => Some((5, None)),
            CipherAlg::AesCbc { key_bits } if aes_bits_ok(key_bits) => Some((7, Some(key_bits))),
            CipherAlg::AesCbc { .. } | CipherAlg::AesGcm16 { .. } => None,
        }
    }

    /// Inverse of [`CipherAlg::ike_id`]. AES requires a Key-Length (RFC 3602 section 5.3);
    /// DES/3DES accept an absent Key-Length or one equal to their fixed size in bits.
    #[must_use]
    pub fn from_ike(id: u16, key_len: Option<u16>) -> Option<Self> {
        match (id, key_len) {
            (1, None | Some(64)) => Some(CipherAlg::DesCbc),
            (5, None | Some(192)) => Some(CipherAlg::TripleDesCbc),
            (7, Some(bits)) if aes_bits_ok(bits) => Some(CipherAlg::AesCbc { key_bits: bits }),
            _ => None,
        }
    }

    /// IPsec DOI ESP transform id and Key-Length attribute (RFC 2407, RFC 3602, RFC 4106).
    #[must_use]
    pub fn esp_id(&self) -> (u8, Option<u16>) {
        match *self {
            CipherAlg::DesCbc => (2, None),
            CipherAlg::TripleDesCbc => (3, None),
            CipherAlg::AesCbc { key_bits } => (12, Some(key_bits)),
            CipherAlg::AesGcm16 { key_bits } => (20, Some(key_bits)),
        }
    }

    /// Inverse of [`CipherAlg::esp_id`]. AES requires a Key-Length.
    #[must_use]
    pub fn from_esp(id: u8, key_len: Option<u16>) -> Option<Self> {
        match (id, key_len) {
            (2, None | Some(64)) => Some(CipherAlg::DesCbc),
            (3, None | Some(192)) => Some(CipherAlg::TripleDesCbc),
            (12, Some(bits)) if aes_bits_ok(bits) => Some(CipherAlg::AesCbc { key_bits: bits }),
            (20, Some(bits)) if aes_bits_ok(bits) => Some(CipherAlg::AesGcm16 { key_bits: bits }),
            _ => None,
        }
    }
}

impl IntegAlg {
    /// Every integrity algorithm, strongest first.
    pub const ALL: [IntegAlg; 5] = [
        IntegAlg::HmacSha512_256,
        IntegAlg::HmacSha384_192,
        IntegAlg::HmacSha256_128,
        IntegAlg::HmacSha1_96,
        IntegAlg::HmacMd5_96,
    ];

    /// HMAC key length in bytes (the hash output length).
    #[must_use]
    pub fn key_len(&self) -> usize {
        self.hash().output_len()
    }

    /// ICV (truncated HMAC) length in bytes.
    #[must_use]
    pub fn icv_len(&self) -> usize {
        match self {
            IntegAlg::HmacMd5_96 | IntegAlg::HmacSha1_96 => 12,
            IntegAlg::HmacSha256_128 => 16,
            IntegAlg::HmacSha384_192 => 24,
            IntegAlg::HmacSha512_256 => 32,
        }
    }

    /// Strength class: MD5 weak, SHA-1 legacy, SHA-2 modern.
    #[must_use]
    pub fn strength(&self) -> Strength {
        self.hash().strength()
    }

    /// Canonical name: "md5", "sha1", "sha256", "sha384" or "sha512".
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.hash().name()
    }

    /// Parse a name (same names and aliases as [`HashAlg::from_name`]).
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        HashAlg::from_name(s).map(Self::from_hash)
    }

    /// IPsec DOI Authentication Algorithm attribute value (RFC 2407, RFC 4868).
    #[must_use]
    pub fn esp_auth_id(&self) -> u16 {
        match self {
            IntegAlg::HmacMd5_96 => 1,
            IntegAlg::HmacSha1_96 => 2,
            IntegAlg::HmacSha256_128 => 5,
            IntegAlg::HmacSha384_192 => 6,
            IntegAlg::HmacSha512_256 => 7,
        }
    }

    /// Inverse of [`IntegAlg::esp_auth_id`].
    #[must_use]
    pub fn from_esp_auth(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.esp_auth_id() == id)
    }

    /// The underlying hash.
    #[must_use]
    pub fn hash(&self) -> HashAlg {
        match self {
            IntegAlg::HmacMd5_96 => HashAlg::Md5,
            IntegAlg::HmacSha1_96 => HashAlg::Sha1,
            IntegAlg::HmacSha256_128 => HashAlg::Sha256,
            IntegAlg::HmacSha384_192 => HashAlg::Sha384,
            IntegAlg::HmacSha512_256 => HashAlg::Sha512,
        }
    }

    fn from_hash(h: HashAlg) -> Self {
        match h {
            HashAlg::Md5 => IntegAlg::HmacMd5_96,
            HashAlg::Sha1 => IntegAlg::HmacSha1_96,
            HashAlg::Sha256 => IntegAlg::HmacSha256_128,
            HashAlg::Sha384 => IntegAlg::HmacSha384_192,
            HashAlg::Sha512 => IntegAlg::HmacSha512_256,
        }
    }
}

impl HashAlg {
    /// Every hash, strongest first.
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha512,
        HashAlg::Sha384,
        HashAlg::Sha256,
        HashAlg::Sha1,
        HashAlg::Md5,
    ];

    /// Digest length in bytes.
    #[must_use]
    pub fn output_len(&self) -> usize {
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Internal block length in bytes (HMAC padding size).
    #[must_use]
    pub fn block_len(&self) -> usize {
        match self {
            HashAlg::Md5 | HashAlg::Sha1 | HashAlg::Sha256 => 64,
            HashAlg::Sha384 | HashAlg::Sha512 => 128,
        }
    }

    /// Strength class: MD5 weak, SHA-1 legacy, SHA-2 modern.
    #[must_use]
    pub fn strength(&self) -> Strength {
        match self {
            HashAlg::Md5 => Strength::Weak,
            HashAlg::Sha1 => Strength::Legacy,
            HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512 => Strength::Modern,
        }
    }

    /// Canonical name: "md5", "sha1", "sha256", "sha384" or "sha512".
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            HashAlg::Md5 => "md5",
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// Parse a name (ASCII case-insensitive); also accepts "sha" for SHA-1 and "sha2_256"-style aliases.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        match s.as_str() {
            "sha" => Some(HashAlg::Sha1),
            "sha2_256" | "sha2-256" => Some(HashAlg::Sha256),
            "sha2_384" | "sha2-384" => Some(HashAlg::Sha384),
            "sha2_512" | "sha2-512" => Some(HashAlg::Sha512),
            other => Self::ALL.into_iter().find(|h| h.name() == other),
        }
    }

    /// IKEv1 Hash Algorithm attribute value (RFC 2409 appendix A, RFC 4868).
    #[must_use]
    pub fn ike_id(&self) -> u16 {
        match self {
            HashAlg::Md5 => 1,
            HashAlg::Sha1 => 2,
            HashAlg::Sha256 => 4,
            HashAlg::Sha384 => 5,
            HashAlg::Sha512 => 6,
        }
    }

    /// Inverse of [`HashAlg::ike_id`].
    #[must_use]
    pub fn from_ike(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.ike_id() == id)
    }
}

impl DhGroup {
    /// Every group, strongest first.
    pub const ALL: [DhGroup; 8] = [
        DhGroup::Ecp384,
        DhGroup::Ecp256,
        DhGroup::Modp4096,
        DhGroup::Modp3072,
        DhGroup::Modp2048,
        DhGroup::Modp1536,
        DhGroup::Modp1024,
        DhGroup::Modp768,
    ];

    /// IANA group number (IKEv1 Group Description attribute).
    #[must_use]
    pub fn id(&self) -> u16 {
        match self {
            DhGroup::Modp768 => 1,
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Modp4096 => 16,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
        }
    }

    /// Inverse of [`DhGroup::id`].
    #[must_use]
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.id() == id)
    }

    /// Strength class: MODP-768 weak, MODP-1024 legacy, others modern.
    #[must_use]
    pub fn strength(&self) -> Strength {
        match self {
            DhGroup::Modp768 => Strength::Weak,
            DhGroup::Modp1024 => Strength::Legacy,
            _ => Strength::Modern,
        }
    }

    /// Whether this is an elliptic-curve group.
    #[must_use]
    pub fn is_ecp(&self) -> bool {
        matches!(self, DhGroup::Ecp256 | DhGroup::Ecp384)
    }

    /// Length of a public value on the wire: the prime length for MODP, x || y for ECP (RFC 5903).
    #[must_use]
    pub fn public_len(&self) -> usize {
        match self {
            DhGroup::Modp768 => 96,
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 => 256,
            DhGroup::Modp3072 => 384,
            DhGroup::Modp4096 => 512,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
        }
    }

    /// Length of the shared secret: the prime length for MODP, the x coordinate for ECP.
    #[must_use]
    pub fn shared_len(&self) -> usize {
        if self.is_ecp() {
            self.public_len() / 2
        } else {
            self.public_len()
        }
    }

    /// Canonical name: "modp768" .. "modp4096", "ecp256", "ecp384".
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            DhGroup::Modp768 => "modp768",
            DhGroup::Modp1024 => "modp1024",
            DhGroup::Modp1536 => "modp1536",
            DhGroup::Modp2048 => "modp2048",
            DhGroup::Modp3072 => "modp3072",
            DhGroup::Modp4096 => "modp4096",
            DhGroup::Ecp256 => "ecp256",
            DhGroup::Ecp384 => "ecp384",
        }
    }

    /// Parse a name (ASCII case-insensitive); also accepts "dhN"/"groupN" with the IANA number.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        if let Some(n) = s.strip_prefix("dh").or_else(|| s.strip_prefix("group")) {
            return n.parse().ok().and_then(Self::from_id);
        }
        Self::ALL.into_iter().find(|g| g.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_registry_roundtrips() {
        for a in CipherAlg::ALL {
            assert_eq!(CipherAlg::from_name(a.name()), Some(a), "{a:?}");
            let (id, kl) = a.esp_id();
            assert_eq!(CipherAlg::from_esp(id, kl), Some(a), "{a:?}");
            match a.ike_id() {
                Some((id, kl)) => assert_eq!(CipherAlg::from_ike(id, kl), Some(a)),
                None => assert!(a.is_aead()),
            }
            assert!(a.keymat_len() >= a.key_len());
        }
    }

    #[test]
    fn cipher_wire_ids_and_sizes() {
        let aes128 = CipherAlg::AesCbc { key_bits: 128 };
        let gcm256 = CipherAlg::AesGcm16 { key_bits: 256 };
        assert_eq!(CipherAlg::DesCbc.ike_id(), Some((1, None)));
        assert_eq!(CipherAlg::TripleDesCbc.ike_id(), Some((5, None)));
        assert_eq!(aes128.ike_id(), Some((7, Some(128))));
        assert_eq!(gcm256.ike_id(), None);
        assert_eq!(CipherAlg::DesCbc.esp_id(), (2, None));
        assert_eq!(CipherAlg::TripleDesCbc.esp_id(), (3, None));
        assert_eq!(aes128.esp_id(), (12, Some(128)));
        assert_eq!(gcm256.esp_id(), (20, Some(256)));
        assert_eq!(
            (
                aes128.key_len(),
                aes128.keymat_len(),
                aes128.block_len(),
                aes128.iv_len()
            ),
            (16, 16, 16, 16)
        );
        assert_eq!(
            (
                gcm256.key_len(),
                gcm256.keymat_len(),
                gcm256.block_len(),
                gcm256.iv_len()
            ),
            (32, 36, 4, 8)
        );
        let t = CipherAlg::TripleDesCbc;
        assert_eq!((t.key_len(), t.block_len(), t.iv_len()), (24, 8, 8));
        // AES needs a Key-Length; unknown ids and sizes are rejected.
        assert_eq!(CipherAlg::from_ike(7, None), None);
        assert_eq!(CipherAlg::from_ike(7, Some(512)), None);
        assert_eq!(CipherAlg::from_esp(12, None), None);
        assert_eq!(CipherAlg::from_esp(99, Some(128)), None);
        assert_eq!(CipherAlg::from_esp(3, Some(128)), None);
    }

    #[test]
    fn cipher_names_and_aliases() {
        assert_eq!(
            CipherAlg::from_name("aes"),
            Some(CipherAlg::AesCbc { key_bits: 128 })
        );
        assert_eq!(
            CipherAlg::from_name("AES256"),
            Some(CipherAlg::AesCbc { key_bits: 256 })
        );
        assert_eq!(
            CipherAlg::from_name("aes128gcm"),
            Some(CipherAlg::AesGcm16 { key_bits: 128 })
        );
        assert_eq!(
            CipherAlg::from_name("aes256gcm"),
            Some(CipherAlg::AesGcm16 { key_bits: 256 })
        );
        assert_eq!(CipherAlg::from_name("3des"), Some(CipherAlg::TripleDesCbc));
        assert_eq!(CipherAlg::from_name("blowfish"), None);
        assert_eq!(CipherAlg::from_name("invalid"), None);
        assert_eq!(CipherAlg::AesGcm16 { key_bits: 192 }.name(), "aes192gcm16");
    }

    #[test]
    fn integ_and_hash_registry() {
        for a in IntegAlg::ALL {
            assert_eq!(IntegAlg::from_esp_auth(a.esp_auth_id()), Some(a));
            assert_eq!(IntegAlg::from_name(a.name()), Some(a));
            assert_eq!(a.key_len(), a.hash().output_len());
            assert!(a.icv_len() < a.key_len() || a == IntegAlg::HmacMd5_96);
        }
        let ids: Vec<u16> = IntegAlg::ALL
            .iter()
            .rev()
            .map(IntegAlg::esp_auth_id)
            .collect();
        assert_eq!(ids, [1, 2, 5, 6, 7]);
        let icv: Vec<usize> = IntegAlg::ALL.iter().rev().map(IntegAlg::icv_len).collect();
        assert_eq!(icv, [12, 12, 16, 24, 32]);
        assert_eq!(IntegAlg::from_esp_auth(3), None);
        for h in HashAlg::ALL {
            assert_eq!(HashAlg::from_ike(h.ike_id()), Some(h));
            assert_eq!(HashAlg::from_name(h.name()), Some(h));
        }
        let ids: Vec<u16> = HashAlg::ALL.iter().rev().map(HashAlg::ike_id).collect();
        assert_eq!(ids, [1, 2, 4, 5, 6]);
        assert_eq!(HashAlg::from_ike(3), None);
        assert_eq!(HashAlg::from_name("sha"), Some(HashAlg::Sha1));
        assert_eq!(HashAlg::from_name("sha2_256"), Some(HashAlg::Sha256));
        assert_eq!(
            (HashAlg::Sha384.block_len(), HashAlg::Sha1.block_len()),
            (128, 64)
        );
    }

    #[test]
    fn dh_registry() {
        let ids: Vec<u16> = DhGroup::ALL.iter().rev().map(DhGroup::id).collect();
        assert_eq!(ids, [1, 2, 5, 14, 15, 16, 19, 20]);
        for g in DhGroup::ALL {
            assert_eq!(DhGroup::from_id(g.id()), Some(g));
            assert_eq!(DhGroup::from_name(g.name()), Some(g));
        }
        assert_eq!(DhGroup::from_id(3), None);
        assert_eq!(DhGroup::from_name("dh14"), Some(DhGroup::Modp2048));
        assert_eq!(DhGroup::from_name("group19"), Some(DhGroup::Ecp256));
        assert_eq!(DhGroup::from_name("dhx"), None);
        assert_eq!(DhGroup::Ecp384.public_len(), 96);
        assert_eq!(DhGroup::Ecp384.shared_len(), 48);
        assert_eq!(DhGroup::Modp3072.public_len(), 384);
    }

    #[test]
    fn strengths() {
        assert_eq!(CipherAlg::DesCbc.strength(), Strength::Weak);
        assert_eq!(CipherAlg::TripleDesCbc.strength(), Strength::Legacy);
        assert_eq!(
            CipherAlg::AesGcm16 { key_bits: 128 }.strength(),
            Strength::Modern
        );
        assert_eq!(IntegAlg::HmacMd5_96.strength(), Strength::Weak);
        assert_eq!(IntegAlg::HmacSha1_96.strength(), Strength::Legacy);
        assert_eq!(HashAlg::Sha512.strength(), Strength::Modern);
        assert_eq!(DhGroup::Modp768.strength(), Strength::Weak);
        assert_eq!(DhGroup::Modp1024.strength(), Strength::Legacy);
        assert_eq!(DhGroup::Modp1536.strength(), Strength::Modern);
        assert_eq!(DhGroup::Ecp256.strength(), Strength::Modern);
    }

    proptest::proptest! {
        #[test]
        fn from_ike_esp_never_invents(id in 0u16..300, kl in proptest::option::of(0u16..600)) {
            if let Some(a) = CipherAlg::from_ike(id, kl) {
                proptest::prop_assert_eq!(a.ike_id().map(|x| x.0), Some(id));
            }
            if let Ok(id8) = u8::try_from(id) {
                if let Some(a) = CipherAlg::from_esp(id8, kl) {
                    proptest::prop_assert_eq!(a.esp_id().0, id8);
                    proptest::prop_assert!(a.name() != "invalid");
                }
            }
        }
    }
}
