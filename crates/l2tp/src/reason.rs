//! Why a tunnel or call ended, in words a user can act on.

use std::fmt;

use crate::avp::{PppDisconnectCause, Q931Cause, ResultCode};

/// How far a call had got when it ended (the engine reports PPP phases with
/// `Lac::set_session_phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Phase {
    /// SCCRQ/SCCRP/SCCCN exchange.
    #[default]
    TunnelSetup,
    /// ICRQ/ICRP/ICCN exchange.
    CallSetup,
    /// PPP LCP negotiation.
    LinkEstablishment,
    /// PPP authentication (PAP, CHAP, MS-CHAPv2).
    Authentication,
    /// PPP network-layer negotiation (IPCP).
    Network,
    /// Up and carrying traffic.
    Established,
    /// Closing on our request.
    Closing,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::TunnelSetup => "during tunnel setup",
            Phase::CallSetup => "during call setup",
            Phase::LinkEstablishment => "during PPP link negotiation",
            Phase::Authentication => "during authentication",
            Phase::Network => "during network negotiation",
            Phase::Established => "while connected",
            Phase::Closing => "while closing",
        })
    }
}

/// Who or what ended the tunnel or call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The LNS sent StopCCN.
    PeerStopCcn,
    /// The LNS sent CDN for the call.
    PeerCdn,
    /// We asked for it (`close` / `close_session`).
    Local,
    /// The call ended because its tunnel went down.
    TunnelDown,
    /// The LNS stopped acknowledging control messages.
    NoResponse {
        /// Retransmissions made before giving up.
        retransmits: u32,
    },
    /// The LNS's Challenge Response was missing or wrong.
    TunnelAuthFailed,
    /// The LNS challenged us but no tunnel secret is configured.
    SecretRequired,
    /// The LNS sent a mandatory AVP we do not understand.
    UnknownMandatoryAvp {
        /// Vendor id (0 = IETF).
        vendor_id: u16,
        /// Attribute type.
        attr_type: u16,
    },
    /// The LNS sent something that violates the protocol.
    ProtocolError(String),
}

/// Why a tunnel or call ended: the cause, what the LNS said, and how far we had got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// Who or what ended it.
    pub cause: CloseCause,
    /// Result Code AVP of the StopCCN or CDN, when one was received or sent.
    pub result: Option<ResultCode>,
    /// Q.931 Cause Code AVP of a CDN.
    pub q931: Option<Q931Cause>,
    /// PPP Disconnect Cause Code AVP (RFC 3145) of a CDN.
    pub ppp_disconnect: Option<PppDisconnectCause>,
    /// How far the call (or tunnel) had got.
    pub phase: Phase,
}

impl CloseReason {
    /// A reason without AVP details.
    #[must_use]
    pub fn new(cause: CloseCause, phase: Phase) -> Self {
        CloseReason {
            cause,
            result: None,
            q931: None,
            ppp_disconnect: None,
            phase,
        }
    }

    /// True when this is a call the LNS hung up while PPP authenticated (l2tpns sends no
    /// PAP/CHAP failure, only a CDN).
    #[must_use]
    pub fn is_authentication_failure(&self) -> bool {
        self.cause == CloseCause::PeerCdn && self.phase == Phase::Authentication
    }

    fn hint(&self) -> Option<&'static str> {
        let rc = self.result.as_ref();
        let result = rc.map(|r| r.result);
        let challenge_msg = rc
            .and_then(|r| r.message.as_deref())
            .is_some_and(|m| m.to_ascii_lowercase().contains("challenge"));
        match &self.cause {
            CloseCause::PeerCdn if self.phase == Phase::Authentication => {
                Some("probably wrong user name or password")
            }
            CloseCause::PeerCdn if matches!(result, Some(4 | 5)) => {
                Some("the LNS lacks resources (address pool exhausted or session limit?)")
            }
            CloseCause::PeerStopCcn if result == Some(4) || challenge_msg => {
                Some("probably wrong tunnel secret (or the LNS requires one)")
            }
            CloseCause::PeerStopCcn if result == Some(5) => Some("the LNS does not speak L2TPv2"),
            CloseCause::TunnelAuthFailed => {
                Some("the tunnel secret differs between us and the LNS")
            }
            CloseCause::SecretRequired => Some("set the tunnel secret in the profile"),
            CloseCause::NoResponse { .. } if self.phase == Phase::TunnelSetup => {
                Some("is the LNS reachable on UDP 1701 (and is IPsec up)?")
            }
            _ => None,
        }
    }
}

fn stopccn_result(r: u16) -> Option<&'static str> {
    Some(match r {
        1 => "general request to clear the control connection",
        2 => "general error",
        3 => "control connection already exists",
        4 => "requester not authorized",
        5 => "protocol version not supported",
        6 => "requester is shutting down",
        7 => "finite state machine error",
        _ => return None,
    })
}

fn cdn_result(r: u16) -> Option<&'static str> {
    Some(match r {
        1 => "lost carrier",
        2 => "general error",
        3 => "administrative",
        4 => "temporary lack of facilities",
        5 => "permanent lack of facilities",
        6 => "invalid destination",
        7 => "no carrier",
        8 => "busy",
        9 => "no dial tone",
        10 => "timeout",
        11 => "no appropriate framing",
        _ => return None,
    })
}

fn general_error(e: u16) -> Option<&'static str> {
    Some(match e {
        0 => "no general error",
        1 => "no control connection yet",
        2 => "wrong length",
        3 => "field value out of range",
        4 => "insufficient resources",
        5 => "invalid session id",
        6 => "vendor-specific error",
        7 => "try another LNS",
        8 => "unknown mandatory AVP",
        _ => return None,
    })
}

fn q931_cause(c: u16) -> Option<&'static str> {
    Some(match c {
        1 => "unallocated number",
        16 => "normal call clearing",
        17 => "user busy",
        18 => "no user responding",
        19 => "no answer",
        21 => "call rejected",
        27 => "destination out of order",
        31 => "normal, unspecified",
        34 => "no circuit available",
        38 => "network out of order",
        41 => "temporary failure",
        47 => "resource unavailable",
        _ => return None,
    })
}

fn ppp_disconnect(c: u16) -> Option<&'static str> {
    Some(match c {
        0 => "no information",
        1 => "administrative disconnect",
        2 => "LCP renegotiation refused",
        3 => "normal disconnection",
        4 => "compulsory encryption refused",
        5 => "FSM timeout",
        _ => return None,
    })
}

fn with_text(f: &mut fmt::Formatter<'_>, what: &str, v: u16, text: Option<&str>) -> fmt::Result {
    match text {
        Some(t) => write!(f, "{what} {v} ({t})"),
        None => write!(f, "{what} {v}"),
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call_level = matches!(self.cause, CloseCause::PeerCdn | CloseCause::Local);
        match &self.cause {
            CloseCause::PeerStopCcn => f.write_str("LNS closed the tunnel")?,
            CloseCause::PeerCdn => f.write_str("LNS closed the call")?,
            CloseCause::Local => f.write_str("closed on our request")?,
            CloseCause::TunnelDown => f.write_str("the tunnel went down")?,
            CloseCause::NoResponse { retransmits } => {
                write!(
                    f,
                    "no answer from the LNS after {retransmits} retransmissions"
                )?;
            }
            CloseCause::TunnelAuthFailed => f.write_str("the LNS failed tunnel authentication")?,
            CloseCause::SecretRequired => {
                f.write_str(
                    "the LNS requires tunnel authentication but no tunnel secret is configured",
                )?;
            }
            CloseCause::UnknownMandatoryAvp {
                vendor_id,
                attr_type,
            } => {
                write!(
                    f,
                    "the LNS sent a mandatory AVP we do not support (vendor {vendor_id}, type {attr_type})"
                )?;
            }
            CloseCause::ProtocolError(e) => write!(f, "protocol error: {e}")?,
        }
        let mut sep = ": ";
        if let Some(r) = &self.result {
            f.write_str(sep)?;
            let text = if call_level {
                cdn_result(r.result)
            } else {
                stopccn_result(r.result)
            };
            with_text(f, "result", r.result, text)?;
            if let Some(e) = r.error.filter(|e| *e != 0 || r.message.is_none()) {
                f.write_str(", ")?;
                with_text(f, "error", e, general_error(e))?;
            }
            if let Some(m) = r.message.as_deref().filter(|m| !m.is_empty()) {
                write!(f, " \"{}\"", m.escape_debug())?;
            }
            sep = ", ";
        }
        if let Some(q) = &self.q931 {
            f.write_str(sep)?;
            with_text(f, "Q.931 cause", q.cause, q931_cause(q.cause))?;
            if let Some(a) = q.advisory.as_deref().filter(|a| !a.is_empty()) {
                write!(f, " \"{}\"", a.escape_debug())?;
            }
            sep = ", ";
        }
        if let Some(p) = &self.ppp_disconnect {
            f.write_str(sep)?;
            with_text(f, "PPP disconnect code", p.code, ppp_disconnect(p.code))?;
            if p.protocol != 0 {
                write!(f, " protocol {:#06x}", p.protocol)?;
            }
            if !p.message.is_empty() {
                write!(f, " \"{}\"", p.message.escape_debug())?;
            }
        }
        write!(f, ", {}", self.phase)?;
        if let Some(h) = self.hint() {
            write!(f, " — {h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdn_during_authentication_reads_well() {
        let mut r = CloseReason::new(CloseCause::PeerCdn, Phase::Authentication);
        r.result = Some(ResultCode::new(3));
        assert_eq!(
            r.to_string(),
            "LNS closed the call: result 3 (administrative), during authentication — probably wrong user name or password"
        );
        assert!(r.is_authentication_failure());
    }

    #[test]
    fn xl2tpd_wrong_secret_reads_well() {
        let mut r = CloseReason::new(CloseCause::PeerStopCcn, Phase::TunnelSetup);
        r.result = Some(ResultCode::with_error(
            2,
            6,
            Some("Invalid challenge authentication"),
        ));
        assert_eq!(
            r.to_string(),
            "LNS closed the tunnel: result 2 (general error), error 6 (vendor-specific error) \
             \"Invalid challenge authentication\", during tunnel setup — probably wrong tunnel secret (or the LNS requires one)"
        );
    }

    #[test]
    fn q931_and_ppp_causes_are_shown() {
        let mut r = CloseReason::new(CloseCause::PeerCdn, Phase::Established);
        r.result = Some(ResultCode::with_error(1, 0, None));
        r.q931 = Some(Q931Cause {
            cause: 16,
            msg_type: 0x45,
            advisory: None,
        });
        r.ppp_disconnect = Some(PppDisconnectCause {
            code: 3,
            protocol: 0xc021,
            direction: 1,
            message: String::new(),
        });
        assert_eq!(
            r.to_string(),
            "LNS closed the call: result 1 (lost carrier), error 0 (no general error), Q.931 cause 16 (normal call clearing), \
             PPP disconnect code 3 (normal disconnection) protocol 0xc021, while connected"
        );
    }

    #[test]
    fn timeout_hint() {
        let r = CloseReason::new(
            CloseCause::NoResponse { retransmits: 5 },
            Phase::TunnelSetup,
        );
        assert_eq!(
            r.to_string(),
            "no answer from the LNS after 5 retransmissions, during tunnel setup — is the LNS reachable on UDP 1701 (and is IPsec up)?"
        );
    }
}
