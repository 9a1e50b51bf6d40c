//! From a profile to the configuration of each protocol machine, checked once per run.

use l2sec_crypto::{Policy, Strength};
use l2sec_ike::{EspProposal, IkeProposal, PfsChoice};
use l2sec_netcfg::MssClamp;
use l2sec_profile::{Pfs, Profile};

use crate::api::{ConnectError, ErrorKind, Stage};

/// Everything a connection attempt needs, derived from the profile.
#[derive(Clone)]
pub(crate) struct Plan {
    /// Server name or address, resolved on every attempt.
    pub server: String,
    /// IKE configuration; `None` for plain L2TP.
    pub ike: Option<l2sec_ike::Config>,
    /// Crypto policy (weak algorithms only when the profile names them).
    pub policy: Policy,
    /// L2TP configuration.
    pub l2tp: l2sec_l2tp::Config,
    /// PPP configuration.
    pub ppp: l2sec_ppp::Config,
    /// TUN interface name.
    pub ifname: String,
    /// Default route through the tunnel.
    pub default_route: bool,
    /// Split-tunnel routes.
    pub routes: Vec<l2sec_netcfg::IpNet>,
    /// Apply the server's DNS.
    pub dns: bool,
    /// Search domains.
    pub dns_search: Vec<String>,
    /// Fixed MTU from the profile.
    pub mtu: Option<u16>,
    /// TCP MSS clamping on the tunnel.
    pub mss_clamp: MssClamp,
    /// Things to tell the user once.
    pub warnings: Vec<String>,
}

fn cfg_err(cause: impl Into<String>) -> ConnectError {
    ConnectError::new(Stage::Setup, ErrorKind::Config, cause)
}

fn ike_config(
    p: &Profile,
    warnings: &mut Vec<String>,
) -> Result<(l2sec_ike::Config, Policy), ConnectError> {
    let ip = &p.ipsec;
    // A weak algorithm is allowed only when the profile names it.
    let named_weak = ip
        .ike
        .iter()
        .map(IkeProposal::strength)
        .chain(ip.esp.iter().map(EspProposal::strength))
        .any(|s| s == Strength::Weak);
    let policy = if named_weak {
        Policy::Weak
    } else {
        Policy::Legacy
    };
    let mut cfg = l2sec_ike::Config {
        ike_proposals: ip.ike.clone(),
        esp_proposals: ip.esp.clone(),
        policy,
        ..l2sec_ike::Config::default()
    };
    if policy == Policy::Weak {
        warnings.push(
            "the profile names weak algorithms (DES, MD5 or MODP-768): they are offered because you asked, \
             but an attacker can break them"
                .into(),
        );
    }
    cfg.auth = match (&ip.psk, &ip.cert) {
        (Some(psk), _) => {
            l2sec_ike::Auth::Psk(zeroize::Zeroizing::new(psk.expose().as_bytes().to_vec()))
        }
        (None, Some(cert)) => {
            let key = ip.key.as_ref().ok_or_else(|| {
                cfg_err("[ipsec] cert is set but key is not")
                    .with_hint("add key = \"/path/to/client.key\" to [ipsec]")
            })?;
            let ca = ip.ca.as_ref().ok_or_else(|| {
                cfg_err("[ipsec] cert is set but ca is not")
                    .with_hint("add ca = \"/path/to/ca.pem\" to [ipsec]: the server's certificate is checked against it")
            })?;
            let read = |path: &std::path::Path, what: &str| {
                std::fs::read(path).map_err(|e| {
                    cfg_err(format!(
                        "[ipsec] cannot read {what} {}: {e}",
                        path.display()
                    ))
                })
            };
            let remote_id = ip.remote_id.as_deref().map(parse_remote_id);
            let auth = l2sec_ike::CertAuth::from_pem_or_der(
                &read(cert, "cert")?,
                zeroize::Zeroizing::new(read(key, "key")?).as_slice(),
                &read(ca, "ca")?,
                remote_id,
            )
            .map_err(|e| cfg_err(format!("[ipsec] certificates: {e}")))?;
            l2sec_ike::Auth::Cert(auth)
        }
        (None, None) => {
            return Err(cfg_err("[ipsec] needs a pre-shared key or a certificate")
                .with_hint("set psk_file = \"...\" (or psk) in [ipsec], cert/key/ca for certificates, or enabled = false for plain L2TP"));
        }
    };
    if ip.aggressive {
        cfg.aggressive = true;
        // The IKE machine does not report it: this is the one place that tells the user.
        warnings.push(l2sec_ike::AGGRESSIVE_MODE_WARNING.into());
    }
    // Applies to every ESP proposal, default or listed; the phase 1 group is the one the server
    // chooses, resolved by the IKE machine when it starts quick mode.
    cfg.pfs = match ip.pfs {
        Pfs::Group(g) => PfsChoice::Group(g),
        Pfs::Phase1Group => PfsChoice::Phase1,
        _ => PfsChoice::Off,
    };
    if let Some(id) = &ip.local_id {
        cfg.local_id = Some(parse_local_id(id)?);
    }
    cfg.force_encap = ip.force_encap;
    if let Some(d) = ip.dpd_interval {
        cfg.dpd_interval = d;
    }
    if let Some(d) = ip.ike_lifetime {
        cfg.ike_lifetime = d;
    }
    if let Some(d) = ip.esp_lifetime {
        cfg.esp_lifetime = d;
    }
    Ok((cfg, policy))
}

/// `remote_id` in a profile: an IP address, a distinguished name (`C=XX, O=..., CN=...`) or a
/// host name.
fn parse_remote_id(s: &str) -> l2sec_ike::RemoteId {
    if let Ok(ip) = s.parse() {
        l2sec_ike::RemoteId::Ip(ip)
    } else if s.contains('=') {
        l2sec_ike::RemoteId::Dn(s.to_string())
    } else {
        l2sec_ike::RemoteId::Fqdn(s.to_string())
    }
}

/// `local_id` in a profile: an IPv4 address, `user@domain` or a host name.
fn parse_local_id(s: &str) -> Result<l2sec_ike::Identity, ConnectError> {
    if let Ok(ip) = s.parse() {
        Ok(l2sec_ike::Identity::Ipv4(ip))
    } else if s.contains('=') {
        Err(cfg_err(format!(
            "[ipsec] local_id `{s}` looks like a distinguished name"
        ))
        .with_hint("with certificates the identity is the certificate's subject: remove local_id"))
    } else if s.contains('@') {
        Ok(l2sec_ike::Identity::UserFqdn(s.to_string()))
    } else {
        Ok(l2sec_ike::Identity::Fqdn(s.to_string()))
    }
}

impl Plan {
    /// Checks the profile and builds the plan.
    pub(crate) fn from_profile(p: &Profile) -> Result<Plan, ConnectError> {
        let mut warnings = Vec::new();
        let (ike, policy) = if p.ipsec.enabled {
            let (c, pol) = ike_config(p, &mut warnings)?;
            (Some(c), pol)
        } else {
            warnings.push(
                "IPsec is disabled: L2TP and PPP travel unencrypted (fine for an ISP link, not for a VPN)".into(),
            );
            (None, Policy::Legacy)
        };
        let mut l2tp = l2sec_l2tp::Config::default();
        if let Some(s) = &p.l2tp.secret {
            l2tp.secret = Some(zeroize::Zeroizing::new(s.expose().as_bytes().to_vec()));
        }
        if let Some(h) = &p.l2tp.hostname {
            l2tp.host_name.clone_from(h);
        }
        if let Some(d) = p.l2tp.hello_interval {
            l2tp.hello_interval = d;
        }
        let user = p.ppp.user.clone().ok_or_else(|| {
            cfg_err("[ppp] user is not set")
                .with_hint("add user = \"name\" to [ppp], or pass --user")
        })?;
        let password = p.ppp.password.as_ref().ok_or_else(|| {
            cfg_err("[ppp] no password")
                .with_hint("set password_file in [ppp] or run on a terminal to be asked")
        })?;
        let mut ppp = l2sec_ppp::Config {
            user,
            password: zeroize::Zeroizing::new(password.expose().to_string()),
            ..l2sec_ppp::Config::default()
        };
        ppp.auth = p
            .ppp
            .auth_methods(p.ipsec.enabled)
            .iter()
            .map(|m| match m {
                l2sec_profile::AuthMethod::MsChapV2 => l2sec_ppp::AuthMethod::MsChapV2,
                l2sec_profile::AuthMethod::Chap => l2sec_ppp::AuthMethod::Chap,
                _ => l2sec_ppp::AuthMethod::Pap,
            })
            .collect();
        if let Some(m) = p.ppp.mru {
            ppp.mru = m;
        }
        if let Some(d) = p.ppp.echo_interval {
            ppp.echo_interval = d;
        }
        if let Some(n) = p.ppp.echo_failures {
            ppp.echo_failures = n;
        }
        ppp.request_ip = p.ppp.request_ip;
        ppp.ipv6 = p.ppp.ipv6;
        let routes = p
            .network
            .routes
            .iter()
            .map(|r| {
                format!("{}/{}", r.addr, r.prefix)
                    .parse()
                    .map_err(|e| cfg_err(format!("[network] routes: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if p.network.default_route && !routes.is_empty() {
            warnings.push(
                "[network] routes are ignored while default_route = true (everything goes through the tunnel); \
                 set default_route = false for a split tunnel"
                    .into(),
            );
        }
        Ok(Plan {
            server: p.server.clone(),
            ike,
            policy,
            l2tp,
            ppp,
            ifname: p
                .network
                .interface
                .clone()
                .unwrap_or_else(|| "l2sec0".into()),
            default_route: p.network.default_route,
            routes,
            dns: p.network.dns,
            dns_search: p.network.dns_search.clone(),
            mtu: p.network.mtu,
            mss_clamp: mss_clamp(p.network.mss_clamp),
            warnings,
        })
    }
}

/// `[network] mss_clamp` as netcfg applies it.
fn mss_clamp(m: l2sec_profile::MssClamp) -> MssClamp {
    match m {
        l2sec_profile::MssClamp::Off => MssClamp::Off,
        l2sec_profile::MssClamp::Value(v) => MssClamp::Fixed(v),
        _ => MssClamp::Auto,
    }
}

/// Checks a profile as `connect` would, without touching the network; returns the warnings.
///
/// # Errors
/// The first problem, as a [`ConnectError`] of the setup stage.
pub fn check_profile(p: &Profile) -> Result<Vec<String>, ConnectError> {
    let plan = Plan::from_profile(p)?;
    Ok(plan.warnings)
}

#[cfg(test)]
mod tests {
    use l2sec_profile::{Secret, SecretOrigin};
    use zeroize::Zeroizing;

    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(Zeroizing::new(s.into()), SecretOrigin::Given)
    }

    /// A usable profile: PSK, user and password set, everything else default.
    fn profile() -> Profile {
        let mut p = Profile::new("t", "vpn.example.com");
        p.ipsec.psk = Some(secret("psk"));
        p.ppp.user = Some("alice".into());
        p.ppp.password = Some(secret("pw"));
        p
    }

    fn plan(p: &Profile) -> Plan {
        Plan::from_profile(p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn mss_clamp_auto_off_and_value() {
        let mut p = profile();
        assert_eq!(plan(&p).mss_clamp, MssClamp::Auto);
        p.network.mss_clamp = l2sec_profile::MssClamp::Off;
        assert_eq!(plan(&p).mss_clamp, MssClamp::Off);
        p.network.mss_clamp = l2sec_profile::MssClamp::Value(1360);
        assert_eq!(plan(&p).mss_clamp, MssClamp::Fixed(1360));
        // the value itself reaches nft, even on a 1500-byte MTU
        assert_eq!(plan(&p).mss_clamp.mss(1500), Some((1360, 1340)));
    }

    #[test]
    fn aggressive_mode_warns_exactly_once() {
        let mut p = profile();
        p.ipsec.aggressive = true;
        let w = check_profile(&p).unwrap();
        let aggressive: Vec<_> = w
            .iter()
            .filter(|w| w.to_lowercase().contains("aggressive"))
            .collect();
        assert_eq!(aggressive, [l2sec_ike::AGGRESSIVE_MODE_WARNING], "{w:?}");
        assert!(plan(&p).ike.unwrap().aggressive);
        p.ipsec.aggressive = false;
        let w = check_profile(&p).unwrap();
        assert!(!w.iter().any(|w| w.contains("aggressive")), "{w:?}");
    }

    #[test]
    fn pfs_maps_to_the_ike_choice() {
        let mut p = profile();
        p.ipsec.ike = vec![
            l2sec_ike::parse_ike_proposal("aes256-sha256-modp2048").unwrap(),
            l2sec_ike::parse_ike_proposal("aes256-sha1-modp1024").unwrap(),
        ];
        p.ipsec.esp = vec![l2sec_ike::parse_esp_proposal("aes256-sha1").unwrap()];
        let ike = |p: &Profile| plan(p).ike.unwrap();
        assert_eq!(ike(&p).pfs, PfsChoice::Off);
        // `pfs = true`: left to the IKE machine, which knows the group the server chose
        p.ipsec.pfs = Pfs::Phase1Group;
        assert_eq!(ike(&p).pfs, PfsChoice::Phase1);
        assert_eq!(ike(&p).esp_proposals, p.ipsec.esp);
        p.ipsec.pfs = Pfs::Group(l2sec_crypto::DhGroup::Ecp256);
        assert_eq!(ike(&p).pfs, PfsChoice::Group(l2sec_crypto::DhGroup::Ecp256));
    }
}
