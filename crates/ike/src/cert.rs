//! RSA signature authentication: signing our hash, validating the server's certificate chain
//! against the configured CA(s), matching its identity, and verifying its signature.
//!
//! The chain check is our own (x509-parser with signature verification) rather than
//! rustls-webpki: webpki insists on TLS extended key usages and DNS/IP names and rejects SHA-1
//! signatures, while IKEv1 servers present certificates identified by DN with IKE or no EKUs.

use std::net::IpAddr;

use rsa::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Name;

use crate::Error;
use crate::config::RemoteId;
use crate::wire::{IdPayload, id_type};

const MAX_CHAIN: usize = 8;

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| Error::Certificate(format!("cannot parse certificate: {e}")))
}

/// The DER-encoded subject name of a certificate.
///
/// # Errors
/// [`Error::Certificate`] when the certificate does not parse.
pub fn subject_der(cert_der: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(parse(cert_der)?.subject().as_raw().to_vec())
}

/// Signs a raw IKEv1 hash with PKCS#1 v1.5 padding and no DigestInfo (blinded).
///
/// # Errors
/// [`Error::Crypto`] when the key is too small for the hash.
pub fn sign(
    key: &rsa::RsaPrivateKey,
    rng: &mut dyn l2sec_crypto::Rng,
    hash: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut adapter = l2sec_crypto::RngAdapter(rng);
    key.sign_with_rng(&mut adapter, Pkcs1v15Sign::new_unprefixed(), hash)
        .map_err(|e| Error::Crypto(format!("rsa signing failed: {e}")))
}

/// Normalises a DN string (`C=XX, O=Org, CN=name`) for comparison.
fn normalize_dn(s: &str) -> Vec<(String, String)> {
    s.split([',', '/'])
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((k.trim().to_ascii_uppercase(), v.trim().to_string()))
        })
        .collect()
}

fn name_string(n: &X509Name<'_>) -> String {
    n.to_string()
}

/// The validated server certificate: its subject and names, for identity checks.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// Subject DN as text.
    pub subject: String,
    /// Subject DN as DER.
    pub subject_der: Vec<u8>,
    /// subjectAltName DNS names.
    pub dns_names: Vec<String>,
    /// subjectAltName IP addresses.
    pub ips: Vec<IpAddr>,
    /// SubjectPublicKeyInfo DER.
    spki: Vec<u8>,
}

/// Validates the server's certificates: the end entity (the one whose subject matches the ID
/// payload, else the first) must chain to one of `cas` through the other received certificates,
/// every certificate valid at `now_unix`.
///
/// # Errors
/// [`Error::Certificate`] naming the problem.
pub fn validate_chain(
    received: &[Vec<u8>],
    cas: &[Vec<u8>],
    id: &IdPayload,
    now_unix: i64,
) -> Result<ServerCert, Error> {
    if received.is_empty() {
        return Err(Error::Certificate("the server sent no certificate".into()));
    }
    if cas.is_empty() {
        return Err(Error::Certificate(
            "no ca configured to validate the server certificate".into(),
        ));
    }
    let certs: Vec<X509Certificate<'_>> = received
        .iter()
        .map(|d| parse(d))
        .collect::<Result<_, _>>()?;
    let anchors: Vec<X509Certificate<'_>> =
        cas.iter().map(|d| parse(d)).collect::<Result<_, _>>()?;
    let leaf_idx = certs
        .iter()
        .position(|c| {
            id.id_type == id_type::DER_ASN1_DN && c.subject().as_raw() == id.data.as_slice()
        })
        .unwrap_or(0);
    let now = ASN1Time::from_timestamp(now_unix)
        .map_err(|e| Error::Certificate(format!("bad time: {e}")))?;
    let leaf = &certs[leaf_idx];
    let mut current = leaf;
    for _ in 0..MAX_CHAIN {
        if !current.validity().is_valid_at(now) {
            return Err(Error::Certificate(format!(
                "certificate \"{}\" is not valid now (valid {} to {})",
                name_string(current.subject()),
                current.validity().not_before,
                current.validity().not_after
            )));
        }
        if let Some(ca) = anchors.iter().find(|a| {
            a.subject().as_raw() == current.issuer().as_raw()
                && current.verify_signature(Some(a.public_key())).is_ok()
        }) {
            if !ca.validity().is_valid_at(now) {
                return Err(Error::Certificate(format!(
                    "ca \"{}\" is not valid now",
                    name_string(ca.subject())
                )));
            }
            return server_cert(leaf);
        }
        let next = certs.iter().find(|c| {
            c.subject().as_raw() == current.issuer().as_raw()
                && !std::ptr::eq(*c, current)
                && is_ca(c)
                && current.verify_signature(Some(c.public_key())).is_ok()
        });
        match next {
            Some(n) => current = n,
            None => {
                return Err(Error::Certificate(format!(
                    "\"{}\" is not issued by a configured ca (issuer \"{}\")",
                    name_string(current.subject()),
                    name_string(current.issuer())
                )));
            }
        }
    }
    Err(Error::Certificate("certificate chain too long".into()))
}

fn is_ca(c: &X509Certificate<'_>) -> bool {
    matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

fn server_cert(c: &X509Certificate<'_>) -> Result<ServerCert, Error> {
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns_names.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from([b[0], b[1], b[2], b[3]])),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        ips.push(IpAddr::from(a));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(ServerCert {
        subject: name_string(c.subject()),
        subject_der: c.subject().as_raw().to_vec(),
        dns_names,
        ips,
        spki: c.public_key().raw.to_vec(),
    })
}

fn id_text(id: &IdPayload) -> String {
    match id.id_type {
        id_type::IPV4_ADDR if id.data.len() == 4 => {
            IpAddr::from([id.data[0], id.data[1], id.data[2], id.data[3]]).to_string()
        }
        id_type::FQDN | id_type::USER_FQDN => String::from_utf8_lossy(&id.data).into_owned(),
        id_type::DER_ASN1_DN => match X509Name::from_der(&id.data) {
            Ok((_, n)) => name_string(&n),
            Err(_) => "<unparsable dn>".into(),
        },
        t => format!("id type {t}"),
    }
}

impl ServerCert {
    /// Checks that the ID payload names this certificate and, if given, that the certificate
    /// carries the expected identity.
    ///
    /// # Errors
    /// [`Error::IdentityMismatch`] with both sides spelled out.
    pub fn check_identity(&self, id: &IdPayload, expected: Option<&RemoteId>) -> Result<(), Error> {
        let id_ok = match id.id_type {
            id_type::DER_ASN1_DN => {
                id.data == self.subject_der
                    || X509Name::from_der(&id.data)
                        .map(|(_, n)| normalize_dn(&name_string(&n)) == normalize_dn(&self.subject))
                        .unwrap_or(false)
            }
            id_type::IPV4_ADDR if id.data.len() == 4 => self.ips.contains(&IpAddr::from([
                id.data[0], id.data[1], id.data[2], id.data[3],
            ])),
            id_type::FQDN => self
                .dns_names
                .contains(&String::from_utf8_lossy(&id.data).to_ascii_lowercase()),
            _ => false,
        };
        if !id_ok {
            return Err(Error::IdentityMismatch {
                expected: format!("the certificate subject \"{}\"", self.subject),
                got: format!("id payload {}", id_text(id)),
            });
        }
        let Some(exp) = expected else { return Ok(()) };
        let ok = match exp {
            RemoteId::Dn(d) => normalize_dn(d) == normalize_dn(&self.subject),
            RemoteId::Fqdn(f) => self.dns_names.contains(&f.to_ascii_lowercase()),
            RemoteId::Ip(a) => self.ips.contains(a),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::IdentityMismatch {
                expected: exp.to_string(),
                got: format!("certificate \"{}\"", self.subject),
            })
        }
    }

    /// Verifies the server's signature over the raw hash.
    ///
    /// # Errors
    /// [`Error::BadSignature`] when it does not verify, [`Error::Certificate`] when the key is not RSA.
    pub fn verify(&self, hash: &[u8], sig: &[u8]) -> Result<(), Error> {
        let key = rsa::RsaPublicKey::from_public_key_der(&self.spki)
            .map_err(|e| Error::Certificate(format!("server key is not rsa: {e}")))?;
        key.verify(Pkcs1v15Sign::new_unprefixed(), hash, sig)
            .map_err(|_| Error::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_normalisation() {
        assert_eq!(
            normalize_dn("C=XX, O=l2sec lab, CN=vpn.lab.test"),
            normalize_dn("c=XX,o=l2sec lab,  cn=vpn.lab.test")
        );
        assert_ne!(
            normalize_dn("C=XX, O=l2sec lab, CN=vpn.lab.test"),
            normalize_dn("C=XX, O=l2sec lab, CN=wrong")
        );
    }
}
