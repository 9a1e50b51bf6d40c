//! Plain-data configuration of an IKEv1 initiator, built by the engine from a profile.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use l2sec_crypto::{DhGroup, Policy};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::Error;
use crate::proposal::{EspProposal, IkeProposal};
use crate::wire::{IdPayload, id_type};

/// How we authenticate in phase 1.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per connection; the engine constructs it by value
pub enum Auth {
    /// Pre-shared key.
    Psk(Zeroizing<Vec<u8>>),
    /// RSA signatures with X.509 certificates.
    Cert(CertAuth),
}

/// Certificate authentication material.
#[derive(Clone)]
pub struct CertAuth {
    /// Our certificate first, then any intermediates (DER).
    pub cert_chain_der: Vec<Vec<u8>>,
    /// Our RSA private key.
    pub key: rsa::RsaPrivateKey,
    /// Trust anchors for the server certificate (DER).
    pub ca_der: Vec<Vec<u8>>,
    /// The identity the server must prove; `None` accepts any certificate issued by `ca_der`.
    pub remote_id: Option<RemoteId>,
}

impl core::fmt::Debug for CertAuth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CertAuth")
            .field("cert_chain_der", &self.cert_chain_der.len())
            .field("key", &"<redacted>")
            .field("ca_der", &self.ca_der.len())
            .field("remote_id", &self.remote_id)
            .finish()
    }
}

impl CertAuth {
    /// Builds certificate authentication from PEM or DER inputs: our certificate (chain),
    /// our RSA key (PKCS#8 or PKCS#1) and the CA certificate(s).
    ///
    /// # Errors
    /// [`Error::Config`] when an input does not parse.
    pub fn from_pem_or_der(
        cert: &[u8],
        key: &[u8],
        ca: &[u8],
        remote_id: Option<RemoteId>,
    ) -> Result<Self, Error> {
        Ok(Self {
            cert_chain_der: load_certs(cert)?,
            key: load_private_key(key)?,
            ca_der: load_certs(ca)?,
            remote_id,
        })
    }
}

/// Reads certificates from PEM (one or more blocks) or a single DER certificate.
///
/// # Errors
/// [`Error::Config`] when nothing usable is found.
pub fn load_certs(data: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    if data.first() == Some(&0x30) {
        return Ok(vec![data.to_vec()]);
    }
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(data)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Config(format!("cannot read certificate pem: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(
            "no certificate found (expected pem or der)".into(),
        ));
    }
    Ok(certs)
}

/// Reads an RSA private key from PEM or DER (PKCS#8 or PKCS#1).
///
/// # Errors
/// [`Error::Config`] when the key cannot be read or is not RSA.
pub fn load_private_key(data: &[u8]) -> Result<rsa::RsaPrivateKey, Error> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let bad =
        |e: &dyn core::fmt::Display| Error::Config(format!("cannot read rsa private key: {e}"));
    if data.first() == Some(&0x30) {
        return rsa::RsaPrivateKey::from_pkcs8_der(data)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_der(data))
            .map_err(|e| bad(&e));
    }
    match PrivateKeyDer::from_pem_slice(data).map_err(|e| bad(&e))? {
        PrivateKeyDer::Pkcs8(k) => {
            rsa::RsaPrivateKey::from_pkcs8_der(k.secret_pkcs8_der()).map_err(|e| bad(&e))
        }
        PrivateKeyDer::Pkcs1(k) => {
            rsa::RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der()).map_err(|e| bad(&e))
        }
        _ => Err(Error::Config("private key is not an rsa key".into())),
    }
}

/// The identity the server must present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteId {
    /// An IP address (ID_IPV4_ADDR, or a subjectAltName IP of the certificate).
    Ip(IpAddr),
    /// A host name (ID_FQDN, or a subjectAltName DNS name of the certificate).
    Fqdn(String),
    /// A distinguished name such as `C=XX, O=l2sec lab, CN=vpn.lab.test`.
    Dn(String),
}

impl core::fmt::Display for RemoteId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RemoteId::Ip(a) => write!(f, "ip {a}"),
            RemoteId::Fqdn(n) => write!(f, "fqdn {n}"),
            RemoteId::Dn(d) => write!(f, "dn \"{d}\""),
        }
    }
}

/// Our phase 1 identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_FQDN.
    Fqdn(String),
    /// ID_USER_FQDN.
    UserFqdn(String),
    /// ID_DER_ASN1_DN (DER bytes of the name).
    DerDn(Vec<u8>),
    /// ID_KEY_ID.
    KeyId(Vec<u8>),
}

impl Identity {
    /// The phase 1 ID payload (protocol and port 0).
    #[must_use]
    pub fn to_payload(&self) -> IdPayload {
        let (t, data) = match self {
            Identity::Ipv4(a) => (id_type::IPV4_ADDR, a.octets().to_vec()),
            Identity::Fqdn(s) => (id_type::FQDN, s.as_bytes().to_vec()),
            Identity::UserFqdn(s) => (id_type::USER_FQDN, s.as_bytes().to_vec()),
            Identity::DerDn(d) => (id_type::DER_ASN1_DN, d.clone()),
            Identity::KeyId(k) => (id_type::KEY_ID, k.clone()),
        };
        IdPayload {
            id_type: t,
            protocol: 0,
            port: 0,
            data,
        }
    }
}

/// ESP mode and traffic selectors requested in quick mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EspMode {
    /// Transport mode, UDP/1701 on both sides (L2TP/IPsec, RFC 3193).
    #[default]
    Transport,
    /// Tunnel mode with host selectors UDP/1701 (for test peers that cannot do transport mode).
    TunnelHost,
}

/// Perfect forward secrecy in quick mode: the Diffie-Hellman group of its KE payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PfsChoice {
    /// No PFS, except for an ESP proposal that names a group itself.
    #[default]
    Off,
    /// This group.
    Group(DhGroup),
    /// The group negotiated in phase 1 (known once the ISAKMP SA is up, so resolved for each
    /// quick mode we start).
    Phase1,
}

impl PfsChoice {
    /// The PFS group of a quick mode on an ISAKMP SA that negotiated `phase1`; `None` for no PFS.
    #[must_use]
    pub fn resolve(self, phase1: DhGroup) -> Option<DhGroup> {
        match self {
            PfsChoice::Off => None,
            PfsChoice::Group(g) => Some(g),
            PfsChoice::Phase1 => Some(phase1),
        }
    }
}

/// Configuration of an [`crate::Initiator`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Phase 1 authentication.
    pub auth: Auth,
    /// Phase 1 proposals; empty = the default offer.
    pub ike_proposals: Vec<IkeProposal>,
    /// Phase 2 proposals; empty = the default offer.
    pub esp_proposals: Vec<EspProposal>,
    /// Which algorithm strengths are acceptable.
    pub policy: Policy,
    /// Use aggressive mode instead of main mode (PSK hash exposed to offline cracking).
    pub aggressive: bool,
    /// PFS for quick mode: the group of every ESP proposal that names none (the default offer
    /// names none).
    pub pfs: PfsChoice,
    /// Our phase 1 identity; default: our IP address (or the certificate subject).
    pub local_id: Option<Identity>,
    /// Always use UDP encapsulation, even without NAT.
    pub force_encap: bool,
    /// ESP mode and selectors.
    pub mode: EspMode,
    /// ISAKMP SA lifetime.
    pub ike_lifetime: Duration,
    /// ESP SA lifetime.
    pub esp_lifetime: Duration,
    /// ESP SA lifetime in kilobytes, if any.
    pub esp_lifetime_kb: Option<u64>,
    /// Dead peer detection interval; zero disables DPD.
    pub dpd_interval: Duration,
    /// First retransmission timeout (doubles each time, capped at 30 s).
    pub retransmit_base: Duration,
    /// How many times a message is sent before giving up.
    pub max_tries: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            auth: Auth::Psk(Zeroizing::new(Vec::new())),
            ike_proposals: Vec::new(),
            esp_proposals: Vec::new(),
            policy: Policy::default(),
            aggressive: false,
            pfs: PfsChoice::Off,
            local_id: None,
            force_encap: false,
            mode: EspMode::Transport,
            ike_lifetime: Duration::from_secs(28800),
            esp_lifetime: Duration::from_secs(3600),
            esp_lifetime_kb: None,
            dpd_interval: Duration::from_secs(30),
            retransmit_base: Duration::from_secs(1),
            max_tries: 5,
        }
    }
}

impl Config {
    /// A default configuration authenticating with the pre-shared key `psk`.
    #[must_use]
    pub fn with_psk(psk: &[u8]) -> Self {
        Self {
            auth: Auth::Psk(Zeroizing::new(psk.to_vec())),
            ..Self::default()
        }
    }
}
