//! The host side of a connection: the TUN device (kept across reconnects) and the applied
//! configuration (addresses, routes, DNS), restored at the end.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use l2sec_netcfg::{Applied, DnsMode, HostConfig, RoutePlan, Tun};
use tokio::io::unix::AsyncFd;
use tracing::info;

use crate::plan::Plan;

/// Where restore journals live.
pub(crate) fn journal_dir() -> PathBuf {
    std::env::var_os("L2SEC_JOURNAL_DIR").map_or_else(|| PathBuf::from("/run/l2sec"), PathBuf::from)
}

/// What PPP negotiated for the TUN device.
pub(crate) struct LinkAddrs {
    /// Our IPv4 address.
    pub local: Ipv4Addr,
    /// The server's IPv4 address.
    pub peer: Ipv4Addr,
    /// Link-local IPv6 addresses (ours, the server's) if IPV6CP opened.
    pub ipv6: Option<(std::net::Ipv6Addr, std::net::Ipv6Addr)>,
    /// DNS servers.
    pub dns: Vec<IpAddr>,
    /// MTU of the TUN device.
    pub mtu: u16,
}

pub(crate) struct HostState {
    ifname: String,
    tun: Option<AsyncFd<Tun>>,
    applied: Option<(Applied, HostConfig)>,
}

impl HostState {
    pub(crate) fn new(plan: &Plan) -> Self {
        Self {
            ifname: plan.ifname.clone(),
            tun: None,
            applied: None,
        }
    }

    pub(crate) fn ifname(&self) -> &str {
        &self.ifname
    }

    pub(crate) fn tun(&self) -> Option<&AsyncFd<Tun>> {
        self.tun.as_ref()
    }

    /// Applies a journal left by a crashed run; returns a message for the user if it did.
    pub(crate) fn cleanup_leftover(&mut self) -> Option<String> {
        let dir = journal_dir();
        if !l2sec_netcfg::has_leftover(&dir) {
            return None;
        }
        Some(match l2sec_netcfg::cleanup(&dir) {
            Ok(r) => format!("restored host changes left by an earlier run: {r}"),
            Err(e) => format!(
                "could not restore host changes left by an earlier run: {e}; try `l2sec cleanup`"
            ),
        })
    }

    /// Creates the TUN device if needed and applies addresses, routes and DNS. A reconnect with
    /// the same result keeps everything as it is.
    pub(crate) fn configure(
        &mut self,
        plan: &Plan,
        server: IpAddr,
        link: &LinkAddrs,
    ) -> Result<(), String> {
        let LinkAddrs {
            local,
            peer,
            ipv6,
            ref dns,
            mtu,
        } = *link;
        if self.tun.is_none() {
            let tun = Tun::create(&self.ifname).map_err(|e| e.to_string())?;
            self.ifname = tun.name().to_string();
            // SAFETY: the Tun owns its descriptor, which stays open and is not replaced while
            // the AsyncFd holds it (the AsyncFd owns the Tun).
            #[allow(unsafe_code)]
            let fd = unsafe { AsyncFd::register(tun) }
                .map_err(|e| format!("TUN device: {}", std::io::Error::from(e)))?;
            self.tun = Some(fd);
        }
        let routes = if plan.default_route {
            RoutePlan::Full
        } else if plan.routes.is_empty() {
            RoutePlan::None
        } else {
            RoutePlan::Split(plan.routes.clone())
        };
        let cfg = HostConfig {
            ifname: self.ifname.clone(),
            local,
            peer,
            prefix6: ipv6,
            mtu,
            server,
            routes,
            dns: if plan.dns { dns.to_vec() } else { Vec::new() },
            search: plan.dns_search.clone(),
            dns_mode: if plan.dns {
                DnsMode::Auto
            } else {
                DnsMode::Off
            },
            mss_clamp: plan.mss_clamp,
            journal_dir: journal_dir(),
        };
        if let Some((_, old)) = &self.applied {
            if *old == cfg {
                info!("reconnected with the same addresses: host configuration kept");
                return Ok(());
            }
        }
        if let Some((old, _)) = self.applied.take() {
            old.restore().map_err(|e| e.to_string())?;
        }
        let applied = Applied::apply(&cfg).map_err(|e| e.to_string())?;
        self.applied = Some((applied, cfg));
        Ok(())
    }

    /// Warnings of the applied configuration (e.g. no nftables for MSS clamping).
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.applied
            .as_ref()
            .map(|(a, _)| a.warnings().to_vec())
            .unwrap_or_default()
    }

    /// Restores the host and closes the TUN device.
    pub(crate) fn restore(&mut self) -> Result<(), String> {
        let r = match self.applied.take() {
            Some((a, _)) => a.restore().map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        self.tun = None;
        r
    }
}
