//! Cryptographic primitives for l2sec: one registry for IKEv1, ESP and PPP.
//!
//! Algorithm identifiers and their wire ids live in [`CipherAlg`], [`IntegAlg`], [`HashAlg`] and
//! [`DhGroup`]; the primitives are [`BlockCipher`], [`Aead`], [`Mac`], [`Prf`] and [`DhKeyPair`].
//! Randomness is always injected through [`Rng`].
#![forbid(unsafe_code)]

mod alg;
mod cipher;
mod des;
mod dh;
mod error;
mod mac;
mod primes;
mod rng;

pub use alg::{CipherAlg, DhGroup, HashAlg, IntegAlg, Policy, Strength};
pub use cipher::{Aead, BlockCipher, CBC_LANES, CbcJob};
pub use dh::DhKeyPair;
pub use error::CryptoError;
pub use mac::{Mac, Prf, des_encrypt_7, hash, md4, md5, prf, sha1};
pub use rng::{OsRng, Rng, RngAdapter, TestRng};

/// Check `strength` against `policy`; the error names the algorithm (`name`) for the user.
pub fn check_policy(policy: Policy, name: &str, strength: Strength) -> Result<(), CryptoError> {
    if policy.allows(strength) {
        Ok(())
    } else {
        Err(CryptoError::NotAllowed {
            name: name.to_owned(),
            strength,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_checks() {
        assert!(check_policy(Policy::Modern, "aes128", Strength::Modern).is_ok());
        assert!(check_policy(Policy::Legacy, "3des", Strength::Legacy).is_ok());
        assert!(check_policy(Policy::Weak, "des", Strength::Weak).is_ok());
        let e = check_policy(Policy::Legacy, "des", Strength::Weak).unwrap_err();
        assert_eq!(
            e,
            CryptoError::NotAllowed {
                name: "des".into(),
                strength: Strength::Weak
            }
        );
        assert_eq!(
            e.to_string(),
            "algorithm des is weak and not allowed by the policy"
        );
        let e = check_policy(Policy::Modern, "modp1024", Strength::Legacy).unwrap_err();
        assert!(e.to_string().contains("modp1024"));
        // Policy gates every registry entry by its own strength.
        for g in DhGroup::ALL {
            let ok = check_policy(Policy::default(), g.name(), g.strength()).is_ok();
            assert_eq!(ok, g != DhGroup::Modp768, "{g:?}");
        }
    }
}
