//! The engine's public surface: options in, events and one error out.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use l2sec_profile::Profile;

/// What `run` needs besides the profile.
#[derive(Debug, Clone)]
pub struct Options {
    /// The connection profile (secrets already loaded).
    pub profile: Profile,
    /// Reconnect with backoff after a loss (the profile's explicit value is applied by the caller).
    pub reconnect: bool,
    /// Where to serve the control socket; `None` = [`crate::control::default_socket_path`].
    pub control_socket: Option<PathBuf>,
    /// Send sd_notify READY/STATUS messages (systemd `Type=notify`).
    pub notify_systemd: bool,
}

/// The stages of bringing a connection up, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading the profile and checking the host.
    Setup,
    /// Resolving the server name.
    Resolving,
    /// IKE phase 1 (main or aggressive mode).
    IkePhase1,
    /// IKE quick mode (the ESP SA).
    QuickMode,
    /// L2TP control connection.
    L2tpTunnel,
    /// L2TP call (session).
    L2tpCall,
    /// PPP link control.
    Lcp,
    /// PPP authentication.
    Authentication,
    /// PPP IP control (address, DNS).
    Ipcp,
    /// Configuring the host: TUN, addresses, routes, DNS.
    Host,
    /// Connected.
    Up,
    /// Disconnecting.
    Teardown,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Setup => "setup",
            Stage::Resolving => "resolving",
            Stage::IkePhase1 => "IKE phase 1",
            Stage::QuickMode => "IKE quick mode",
            Stage::L2tpTunnel => "L2TP tunnel",
            Stage::L2tpCall => "L2TP call",
            Stage::Lcp => "PPP LCP",
            Stage::Authentication => "PPP authentication",
            Stage::Ipcp => "PPP IPCP",
            Stage::Host => "host configuration",
            Stage::Up => "up",
            Stage::Teardown => "teardown",
        })
    }
}

/// Facts about an established connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpInfo {
    /// TUN interface name.
    pub interface: String,
    /// Our tunnel address.
    pub local: Ipv4Addr,
    /// The server's tunnel address.
    pub peer: Ipv4Addr,
    /// DNS servers pushed by the server.
    pub dns: Vec<IpAddr>,
    /// MTU of the TUN interface.
    pub mtu: u16,
    /// Time from start to up.
    #[serde(with = "secs")]
    pub elapsed: Duration,
    /// Negotiated IKE proposal, if IPsec is on.
    pub ike: Option<String>,
    /// Negotiated ESP proposal, if IPsec is on.
    pub esp: Option<String>,
}

/// Progress reported while connecting and connected.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A stage started or finished a step.
    Stage {
        /// The stage.
        stage: Stage,
        /// What happened (e.g. the negotiated proposal).
        detail: String,
        /// Time since the connection attempt started.
        #[serde(with = "secs")]
        elapsed: Duration,
    },
    /// The tunnel is up and the host configured.
    Up(UpInfo),
    /// Something the user should know (weak crypto, aggressive mode ...).
    Warning {
        /// One line for the user.
        message: String,
    },
    /// The connection was lost; a new attempt follows after `delay`.
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// Wait before the attempt.
        #[serde(with = "secs")]
        delay: Duration,
        /// Why the previous connection ended.
        error: ConnectError,
    },
    /// Disconnected and the host restored.
    Disconnected,
}

/// Broad class of a failure, mapped to exit codes by the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Profile or flags are wrong.
    Config,
    /// The server refused or did not answer.
    Remote,
    /// Authentication failed: the server rejected our credentials, or we rejected the
    /// server's (signature, certificate, identity).
    Auth,
    /// An established connection was lost.
    Lost,
    /// Changing the host (TUN, routes, DNS) failed.
    Host,
    /// A bug or an unexpected local failure.
    Internal,
}

/// One failure: the stage, the cause and, when we know one, the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ConnectError {
    /// Where it failed.
    pub stage: Stage,
    /// What happened, one lowercase line.
    pub cause: String,
    /// What to change, if known.
    pub hint: Option<String>,
    /// Broad class.
    pub kind: ErrorKind,
}

impl ConnectError {
    /// A new error.
    pub fn new(stage: Stage, kind: ErrorKind, cause: impl Into<String>) -> Self {
        Self {
            stage,
            cause: cause.into(),
            hint: None,
            kind,
        }
    }

    /// The same error with a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage, self.cause)?;
        if let Some(h) = &self.hint {
            write!(f, " — {h}")?;
        }
        Ok(())
    }
}

mod secs {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}
