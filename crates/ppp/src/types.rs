//! Configuration, events and reasons exchanged with the engine.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use zeroize::Zeroizing;

/// An authentication protocol we can run as the authenticatee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// PAP (RFC 1334): the password in clear inside the (ESP-protected) link.
    Pap,
    /// CHAP with MD5 (RFC 1994).
    Chap,
    /// MS-CHAPv2 (RFC 2759), server authenticator response verified.
    MsChapV2,
    /// MS-CHAPv1 (RFC 2433), NT response only.
    MsChapV1,
}

impl AuthMethod {
    /// Profile spelling: "pap", "chap", "mschapv2", "mschap".
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pap => "pap",
            Self::Chap => "chap",
            Self::MsChapV2 => "mschapv2",
            Self::MsChapV1 => "mschap",
        }
    }

    /// Parses the profile spelling (also "chap-md5", "mschapv1", "ms-chap-v2").
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "pap" => Some(Self::Pap),
            "chap" | "chapmd5" => Some(Self::Chap),
            "mschapv2" => Some(Self::MsChapV2),
            "mschap" | "mschapv1" => Some(Self::MsChapV1),
            _ => None,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pap => "PAP",
            Self::Chap => "CHAP-MD5",
            Self::MsChapV2 => "MS-CHAPv2",
            Self::MsChapV1 => "MS-CHAPv1",
        })
    }
}

/// Settings of one PPP link (from the profile).
#[derive(Clone)]
pub struct Config {
    /// User name, sent as is (`user`, `user@realm` or `DOMAIN\user`).
    pub user: String,
    /// Password.
    pub password: Zeroizing<String>,
    /// Methods we accept when the server asks, in order of preference (Nak suggestions).
    pub auth: Vec<AuthMethod>,
    /// MRU we ask for (1500 = do not ask).
    pub mru: u16,
    /// LCP Echo-Request interval; zero disables keepalives.
    pub echo_interval: Duration,
    /// Unanswered Echo-Requests before the link is declared dead.
    pub echo_failures: u32,
    /// IPv4 address to request instead of letting the server choose.
    pub request_ip: Option<Ipv4Addr>,
    /// Ask for primary and secondary DNS servers (RFC 1877).
    pub request_dns: bool,
    /// Run IPV6CP.
    pub ipv6: bool,
    /// Restart timer of every control protocol.
    pub restart_timer: Duration,
    /// Max-Configure (also the number of PAP Authenticate-Request tries).
    pub max_configure: u32,
    /// Max-Failure: Configure-Naks before options are rejected.
    pub max_failure: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            user: String::new(),
            password: Zeroizing::new(String::new()),
            auth: vec![AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap],
            mru: 1400,
            echo_interval: Duration::from_secs(20),
            echo_failures: 3,
            request_ip: None,
            request_dns: true,
            ipv6: true,
            restart_timer: Duration::from_secs(3),
            max_configure: 10,
            max_failure: 5,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("auth", &self.auth)
            .field("mru", &self.mru)
            .field("echo_interval", &self.echo_interval)
            .field("echo_failures", &self.echo_failures)
            .field("request_ip", &self.request_ip)
            .field("request_dns", &self.request_dns)
            .field("ipv6", &self.ipv6)
            .field("restart_timer", &self.restart_timer)
            .field("max_configure", &self.max_configure)
            .field("max_failure", &self.max_failure)
            .finish()
    }
}

/// RFC 1661 section 3 link phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started or finished.
    Dead,
    /// LCP negotiating.
    Establish,
    /// LCP open, authenticating.
    Authenticate,
    /// Authenticated; NCPs negotiating or up.
    Network,
    /// LCP terminating.
    Terminate,
}

/// An IP packet carried by a PPP frame, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// An IPv4 packet.
    Ipv4(&'a [u8]),
    /// An IPv6 packet.
    Ipv6(&'a [u8]),
}

/// What the link reports to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// LCP opened: our MRU and the peer's MRU (what we may send).
    LcpUp {
        /// MRU the peer acknowledged for us.
        mru: u16,
        /// The peer's MRU.
        peer_mru: u16,
    },
    /// The server asked for this method; authentication runs.
    AuthStarted {
        /// Method in use.
        method: AuthMethod,
    },
    /// The server accepted our credentials (and, for MS-CHAPv2, proved it knows them).
    AuthOk {
        /// Method in use.
        method: AuthMethod,
    },
    /// IPCP opened.
    Up {
        /// Our address.
        local: Ipv4Addr,
        /// The server's address (0.0.0.0 if it did not tell).
        peer: Ipv4Addr,
        /// DNS servers the server assigned (0 to 2).
        dns: Vec<Ipv4Addr>,
        /// Interface MTU: the smaller of both MRUs.
        mtu: u16,
    },
    /// IPV6CP opened.
    Ipv6Up {
        /// Our interface identifier.
        local_iid: [u8; 8],
        /// The server's interface identifier.
        peer_iid: [u8; 8],
    },
    /// The link is dead; nothing more will happen.
    Down {
        /// Why.
        reason: DownReason,
    },
}

/// Why the link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// We closed it.
    Closed,
    /// The server sent Terminate-Request (its text, lossily decoded).
    PeerTerminated(String),
    /// The server rejected our credentials (its message, e.g. "E=691 R=0 C=... V=3").
    AuthFailed {
        /// Method in use.
        method: AuthMethod,
        /// The server's message (may be empty).
        message: String,
    },
    /// The MS-CHAPv2 Success did not prove the server knows our password.
    AuthResponseMismatch,
    /// The server never completed authentication.
    AuthTimeout,
    /// The server only offered authentication methods the profile does not allow.
    AuthMethodRefused {
        /// What the server offered, in order (e.g. "EAP", "CHAP-MD5").
        offered: Vec<String>,
    },
    /// No Echo-Reply to the configured number of LCP Echo-Requests.
    EchoTimeout,
    /// LCP or IPCP did not converge.
    NegotiationFailed(String),
    /// The L2TP session went away under us.
    LowerLayerDown,
}

impl DownReason {
    /// The numeric error of an MS-CHAP failure message ("E=691" gives 691).
    #[must_use]
    pub fn mschap_error(&self) -> Option<u32> {
        let Self::AuthFailed { message, .. } = self else {
            return None;
        };
        let rest = &message[message.find("E=")? + 2..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    /// One line of advice for the user.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Closed => "the connection was closed on request",
            Self::PeerTerminated(_) => {
                "the server ended the PPP session; its logs tell why (idle timeout, admin action, policy)"
            }
            Self::AuthFailed { .. } => match self.mschap_error() {
                Some(646) => "the account may not log in at this hour",
                Some(647) => "ask the administrator to enable the account",
                Some(648) => "change the password (not possible over this client), then retry",
                Some(649) => "the account lacks dial-in/VPN permission on the server",
                _ => {
                    "check user name and password; some servers want DOMAIN\\user or user@realm (SoftEther: user@HUB)"
                }
            },
            Self::AuthResponseMismatch => {
                "the server could not prove it knows the password: wrong password, or a server impersonating the real one"
            }
            Self::AuthTimeout => {
                "the server did not finish authentication; check the server's RADIUS/back-end"
            }
            Self::AuthMethodRefused { .. } => {
                "allow one of the offered methods in the profile's [ppp] auth list"
            }
            Self::EchoTimeout => {
                "the server stopped answering; check the network path and the server"
            }
            Self::NegotiationFailed(_) => {
                "the server and this client could not agree on PPP options; run with debug logging"
            }
            Self::LowerLayerDown => "the L2TP session was closed; see the L2TP result code",
        }
    }
}

fn mschap_meaning(code: u32) -> Option<&'static str> {
    Some(match code {
        646 => "restricted logon hours",
        647 => "account disabled",
        648 => "password expired",
        649 => "no dial-in permission",
        691 => "authentication failure (wrong user name or password)",
        709 => "error changing password",
        _ => return None,
    })
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("closed"),
            Self::PeerTerminated(m) if m.is_empty() => {
                f.write_str("the server terminated the link")
            }
            Self::PeerTerminated(m) => write!(f, "the server terminated the link: {m}"),
            Self::AuthFailed { method, message } => {
                write!(f, "{method} authentication failed")?;
                if let Some(meaning) = self.mschap_error().and_then(mschap_meaning) {
                    write!(f, ": {meaning}")?;
                }
                if !message.is_empty() {
                    write!(f, " (server said: {message})")?;
                }
                Ok(())
            }
            Self::AuthResponseMismatch => {
                f.write_str("MS-CHAPv2: the server's authenticator response does not match")
            }
            Self::AuthTimeout => f.write_str("authentication timed out"),
            Self::AuthMethodRefused { offered } => write!(
                f,
                "the server only offers authentication methods the profile does not allow: {}",
                offered.join(", ")
            ),
            Self::EchoTimeout => f.write_str("no answer to LCP echo requests"),
            Self::NegotiationFailed(m) => write!(f, "ppp negotiation failed: {m}"),
            Self::LowerLayerDown => f.write_str("the L2TP session went down"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_messages() {
        let r = DownReason::AuthFailed {
            method: AuthMethod::MsChapV2,
            message: "E=691 R=0 C=0123456789ABCDEF0123456789ABCDEF V=3".into(),
        };
        assert_eq!(r.mschap_error(), Some(691));
        let s = r.to_string();
        assert!(
            s.starts_with("MS-CHAPv2 authentication failed: authentication failure"),
            "{s}"
        );
        assert!(!s.contains('\n'));
        assert!(r.hint().contains("user name"));
        let r = DownReason::AuthFailed {
            method: AuthMethod::MsChapV2,
            message: "E=649 R=0".into(),
        };
        assert!(r.to_string().contains("no dial-in permission"));
        let r = DownReason::AuthFailed {
            method: AuthMethod::Pap,
            message: String::new(),
        };
        assert_eq!(r.mschap_error(), None);
        assert_eq!(r.to_string(), "PAP authentication failed");
    }

    #[test]
    fn names_and_debug() {
        for m in [
            AuthMethod::Pap,
            AuthMethod::Chap,
            AuthMethod::MsChapV2,
            AuthMethod::MsChapV1,
        ] {
            assert_eq!(AuthMethod::from_name(m.name()), Some(m));
        }
        assert_eq!(
            AuthMethod::from_name("MS-CHAP-v2"),
            Some(AuthMethod::MsChapV2)
        );
        let c = Config {
            password: Zeroizing::new("secret".into()),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
