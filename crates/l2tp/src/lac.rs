//! The L2TP Access Concentrator: one tunnel to one LNS, any number of outgoing calls.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::avp::{Avp, ResultCode};
use crate::header::{CONTROL_HEADER_LEN, Header};
use crate::message::{Hider, Message, MessageType};
use crate::reason::{CloseCause, CloseReason, Phase};
use crate::reliable::{Reliable, Rx, seq_lt};
use crate::{Error, Rng};

/// Framing capabilities we announce: synchronous and asynchronous.
const FRAMING_CAPS: u32 = 3;
/// Framing type of our calls: synchronous (no HDLC-like framing inside L2TP).
const FRAMING_SYNC: u32 = 1;
/// Connect speed we report in ICCN (bits per second).
const CONNECT_SPEED: u32 = 100_000_000;
/// Firmware revision we report.
const FIRMWARE_REVISION: u16 = 0x0100;
/// Vendor name we report.
const VENDOR_NAME: &str = "l2sec";

/// LAC settings.
#[derive(Clone)]
pub struct Config {
    /// Host Name AVP we send (default "l2sec").
    pub host_name: String,
    /// Tunnel secret: we challenge the LNS, answer its challenges, and can hide AVPs.
    pub secret: Option<Zeroizing<Vec<u8>>>,
    /// Send HELLO after this long without hearing from the LNS (zero turns it off).
    pub hello_interval: Duration,
    /// Our receive window (4..=16).
    pub recv_window: u16,
    /// First retransmission timeout.
    pub retransmit_base: Duration,
    /// Largest retransmission timeout.
    pub retransmit_cap: Duration,
    /// Retransmissions of one message before the LNS is declared gone.
    pub max_retransmits: u32,
    /// Hide sensitive AVPs (needs `secret`).
    pub hide_avps: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host_name: "l2sec".into(),
            secret: None,
            hello_interval: Duration::from_secs(60),
            recv_window: 8,
            retransmit_base: Duration::from_secs(1),
            retransmit_cap: Duration::from_secs(8),
            max_retransmits: 5,
            hide_avps: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host_name", &self.host_name)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("hello_interval", &self.hello_interval)
            .field("recv_window", &self.recv_window)
            .field("retransmit_base", &self.retransmit_base)
            .field("retransmit_cap", &self.retransmit_cap)
            .field("max_retransmits", &self.max_retransmits)
            .field("hide_avps", &self.hide_avps)
            .finish()
    }
}

/// Identifies one call of the tunnel (wraps our assigned session id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(u16);

impl SessionHandle {
    /// Our Assigned Session ID for this call.
    #[must_use]
    pub fn local_id(self) -> u16 {
        self.0
    }
}

/// A PPP frame received on an established session (borrowed from the datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFrame<'a> {
    /// The session it arrived on.
    pub session: SessionHandle,
    /// The PPP frame (starting with the protocol field or FF 03).
    pub payload: &'a [u8],
}

/// Something the engine should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The control connection is established.
    TunnelUp {
        /// Host Name AVP of the LNS.
        peer_host_name: String,
        /// Vendor Name AVP of the LNS.
        peer_vendor: Option<String>,
        /// The LNS's Assigned Tunnel ID.
        peer_tunnel_id: u16,
    },
    /// A call is connected: PPP may start.
    SessionUp {
        /// The call.
        session: SessionHandle,
    },
    /// A call ended.
    SessionDown {
        /// The call.
        session: SessionHandle,
        /// Why.
        reason: CloseReason,
    },
    /// The tunnel ended without us asking.
    TunnelDown {
        /// Why.
        reason: CloseReason,
    },
    /// Our `close` finished (StopCCN acknowledged or given up on).
    TunnelClosed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    WaitSccrp,
    /// We lost a tie-break and answered the LNS's SCCRQ.
    WaitScccn,
    /// SCCCN sent, waiting for its acknowledgement.
    WaitScccnAck,
    Established,
    /// StopCCN sent; `notify` = emit `TunnelClosed` once done.
    Stopping {
        notify: bool,
    },
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    Queued,
    WaitIcrp,
    Established,
}

#[derive(Debug)]
struct Session {
    local_id: u16,
    peer_id: u16,
    state: CallState,
    phase: Phase,
    send_seq: bool,
    tx_ns: u16,
    rx_next: Option<u16>,
    serial: u32,
}

/// Sans-IO L2TPv2 LAC (RFC 2661): feed it datagrams and timeouts, drain transmissions and events.
pub struct Lac {
    config: Config,
    rng: Box<dyn Rng>,
    state: State,
    local_tunnel_id: u16,
    peer_tunnel_id: u16,
    reliable: Reliable,
    our_challenge: Option<[u8; 16]>,
    tie_breaker: [u8; 8],
    peer_host_name: String,
    peer_vendor: Option<String>,
    sessions: Vec<Session>,
    events: VecDeque<Event>,
    last_rx: Instant,
    next_serial: u32,
}

impl fmt::Debug for Lac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lac")
            .field("state", &self.state)
            .field("local_tunnel_id", &self.local_tunnel_id)
            .field("peer_tunnel_id", &self.peer_tunnel_id)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

/// Tunnel authentication response (RFC 2661 4.4.3): MD5(message type || secret || challenge).
pub(crate) fn chap_md5(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    l2sec_crypto::md5(&[&[id], secret, challenge])
}

fn nonzero_u16(rng: &mut dyn Rng) -> u16 {
    loop {
        let mut b = [0u8; 2];
        rng.fill(&mut b);
        let v = u16::from_be_bytes(b);
        if v != 0 {
            return v;
        }
    }
}

impl Lac {
    /// A LAC that has not contacted the LNS yet.
    #[must_use]
    pub fn new(mut config: Config, mut rng: Box<dyn Rng>, now: Instant) -> Self {
        config.recv_window = config.recv_window.clamp(4, 16);
        let reliable = Reliable::new(
            config.recv_window,
            config.retransmit_base,
            config.retransmit_cap,
            config.max_retransmits,
        );
        let local_tunnel_id = nonzero_u16(rng.as_mut());
        Lac {
            config,
            rng,
            state: State::Idle,
            local_tunnel_id,
            peer_tunnel_id: 0,
            reliable,
            our_challenge: None,
            tie_breaker: [0; 8],
            peer_host_name: String::new(),
            peer_vendor: None,
            sessions: Vec::new(),
            events: VecDeque::new(),
            last_rx: now,
            next_serial: 1,
        }
    }

    /// Our Assigned Tunnel ID.
    #[must_use]
    pub fn local_tunnel_id(&self) -> u16 {
        self.local_tunnel_id
    }

    /// True once the control connection is established (and until it closes).
    #[must_use]
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Sends SCCRQ (does nothing unless idle).
    pub fn connect(&mut self, now: Instant) {
        if self.state != State::Idle {
            return;
        }
        self.reliable = self.new_reliable();
        self.peer_tunnel_id = 0;
        self.rng.fill(&mut self.tie_breaker);
        let mut avps = vec![
            Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            Avp::HostName(self.config.host_name.clone()),
            Avp::FramingCapabilities(FRAMING_CAPS),
            Avp::BearerCapabilities(0),
            Avp::AssignedTunnelId(self.local_tunnel_id),
            Avp::ReceiveWindowSize(self.config.recv_window),
            Avp::TieBreaker(self.tie_breaker),
            Avp::FirmwareRevision(FIRMWARE_REVISION),
            Avp::VendorName(VENDOR_NAME.into()),
        ];
        self.our_challenge = None;
        if self.config.secret.is_some() {
            let mut c = [0u8; 16];
            self.rng.fill(&mut c);
            self.our_challenge = Some(c);
            avps.push(Avp::Challenge(c.to_vec()));
        }
        self.state = State::WaitSccrp;
        self.last_rx = now;
        self.send(0, Message::new(MessageType::Sccrq, avps));
    }

    /// Starts an outgoing call (ICRQ now if the tunnel is up, else once it is).
    ///
    /// # Errors
    /// [`Error::TunnelClosed`] when the tunnel is closing or closed.
    pub fn open_session(&mut self, _now: Instant) -> Result<SessionHandle, Error> {
        if matches!(self.state, State::Stopping { .. } | State::Closed) {
            return Err(Error::TunnelClosed);
        }
        let local_id = loop {
            let id = nonzero_u16(self.rng.as_mut());
            if !self.sessions.iter().any(|s| s.local_id == id) {
                break id;
            }
        };
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        self.sessions.push(Session {
            local_id,
            peer_id: 0,
            state: CallState::Queued,
            phase: Phase::CallSetup,
            send_seq: false,
            tx_ns: 0,
            rx_next: None,
            serial,
        });
        if self.state == State::Established {
            self.send_icrq(local_id);
        }
        Ok(SessionHandle(local_id))
    }

    /// Tells the LAC how far PPP has got on a call, so a CDN can be explained
    /// (a CDN during [`Phase::Authentication`] means the credentials were refused).
    pub fn set_session_phase(&mut self, h: SessionHandle, phase: Phase) {
        if let Some(s) = self.sessions.iter_mut().find(|s| s.local_id == h.0) {
            s.phase = phase;
        }
    }

    /// Ends a call with a CDN carrying `result`; emits [`Event::SessionDown`].
    pub fn close_session(&mut self, _now: Instant, h: SessionHandle, result: ResultCode) {
        let Some(i) = self.sessions.iter().position(|s| s.local_id == h.0) else {
            return;
        };
        let s = self.sessions.remove(i);
        if s.state != CallState::Queued && self.can_send() {
            let avps = vec![
                Avp::ResultCode(result.clone()),
                Avp::AssignedSessionId(s.local_id),
            ];
            self.send(s.peer_id, Message::new(MessageType::Cdn, avps));
        }
        let mut reason = CloseReason::new(CloseCause::Local, s.phase);
        reason.result = Some(result);
        self.events
            .push_back(Event::SessionDown { session: h, reason });
    }

    /// Closes the tunnel with StopCCN; [`Event::TunnelClosed`] follows once it is acknowledged
    /// (or the retransmissions run out).
    pub fn close(&mut self, _now: Instant) {
        match self.state {
            State::Idle | State::Closed | State::WaitSccrp => {
                self.sessions_down(CloseCause::Local, None);
                self.state = State::Closed;
                self.events.push_back(Event::TunnelClosed);
            }
            State::Stopping { .. } => self.state = State::Stopping { notify: true },
            State::WaitScccn | State::WaitScccnAck | State::Established => {
                self.sessions_down(CloseCause::Local, None);
                self.send_stopccn(ResultCode::new(1));
                self.state = State::Stopping { notify: true };
            }
        }
    }

    /// Processes one UDP payload from the LNS. Control messages are consumed; a data message
    /// of an established call returns its PPP frame.
    pub fn handle_datagram<'a>(&mut self, now: Instant, data: &'a [u8]) -> Option<DataFrame<'a>> {
        let (header, payload) = Header::parse(data).ok()?;
        if header.control {
            self.handle_control(now, header, payload, data);
            return None;
        }
        if header.tunnel_id != self.local_tunnel_id
            || !matches!(self.state, State::Established | State::WaitScccnAck)
        {
            return None;
        }
        let s = self
            .sessions
            .iter_mut()
            .find(|s| s.local_id == header.session_id && s.state == CallState::Established)?;
        if let Some((ns, _)) = header.sequence {
            // The LNS sequences its data: drop stale or duplicate frames and sequence ours too.
            s.send_seq = true;
            if s.rx_next.is_some_and(|next| seq_lt(ns, next)) {
                return None;
            }
            s.rx_next = Some(ns.wrapping_add(1));
        }
        self.last_rx = now;
        Some(DataFrame {
            session: SessionHandle(s.local_id),
            payload,
        })
    }

    fn handle_control(&mut self, now: Instant, header: Header, body: &[u8], data: &[u8]) {
        let Some((ns, nr)) = header.sequence else {
            return;
        };
        if header.tunnel_id == 0 {
            // Only an SCCRQ (the LNS opening a tunnel towards us) may use tunnel id 0.
            if let Ok(m) = Message::parse(body, self.secret()) {
                if m.kind == MessageType::Sccrq {
                    self.on_peer_sccrq(now, ns, nr, &m, data);
                }
            }
            return;
        }
        if header.tunnel_id != self.local_tunnel_id || self.state == State::Idle {
            return;
        }
        let zlb = body.is_empty();
        let msg = if zlb {
            None
        } else {
            match Message::parse(body, self.secret()) {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        };
        self.last_rx = now;
        let rx = self.reliable.on_packet(now, ns, nr, zlb, data);
        if self.state == State::Closed {
            return;
        }
        if rx == Rx::Deliver {
            if let Some(m) = msg {
                self.dispatch(header.session_id, m);
            }
            while let Some(buf) = self.reliable.pop_buffered() {
                if matches!(self.state, State::Closed) {
                    break;
                }
                let parsed = Header::parse(&buf).ok().and_then(|(h, body)| {
                    Message::parse(body, self.secret())
                        .ok()
                        .map(|m| (h.session_id, m))
                });
                if let Some((sid, m)) = parsed {
                    self.dispatch(sid, m);
                }
            }
        }
        self.after_ack();
    }

    fn after_ack(&mut self) {
        if !self.reliable.all_acked() {
            return;
        }
        match self.state {
            State::WaitScccnAck => self.tunnel_up(),
            State::Stopping { notify } => {
                self.state = State::Closed;
                if notify {
                    self.events.push_back(Event::TunnelClosed);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, session_id: u16, m: Message) {
        if m.kind.is_session_message() {
            self.on_session_message(session_id, m);
            return;
        }
        if let Some((vendor_id, attr_type)) = m.unknown_mandatory() {
            if m.kind == MessageType::Sccrp && self.state == State::WaitSccrp {
                // Learn where to send the StopCCN.
                if let Some(id) = m.find(|a| {
                    if let Avp::AssignedTunnelId(v) = a {
                        Some(*v)
                    } else {
                        None
                    }
                }) {
                    self.peer_tunnel_id = id;
                }
            }
            if !matches!(self.state, State::Stopping { .. } | State::Closed) {
                self.fail(
                    CloseCause::UnknownMandatoryAvp {
                        vendor_id,
                        attr_type,
                    },
                    ResultCode::with_error(2, 8, None),
                );
            }
            return;
        }
        match (m.kind, self.state) {
            (MessageType::Sccrp, State::WaitSccrp) => self.on_sccrp(&m),
            (MessageType::Scccn, State::WaitScccn) => self.on_scccn(&m),
            (MessageType::StopCcn, _) => self.on_stopccn(&m),
            // HELLO needs only the acknowledgement; an SCCRQ inside our tunnel, or anything else
            // out of place, is ignored (it was acknowledged, so the LNS stops resending it).
            _ => {}
        }
    }

    fn on_sccrp(&mut self, m: &Message) {
        let Some(peer_id) = m.find(|a| {
            if let Avp::AssignedTunnelId(v) = a {
                Some(*v)
            } else {
                None
            }
        }) else {
            self.fail(
                CloseCause::ProtocolError("SCCRP without Assigned Tunnel ID".into()),
                ResultCode::with_error(2, 3, None),
            );
            return;
        };
        self.peer_tunnel_id = peer_id;
        if !self.accept_peer_params(m) {
            return;
        }
        if !self.challenge_answered(m, MessageType::Sccrp) {
            self.fail(CloseCause::TunnelAuthFailed, ResultCode::new(4));
            return;
        }
        let mut avps = Vec::new();
        if let Some(chal) = m.find(|a| {
            if let Avp::Challenge(c) = a {
                Some(c.clone())
            } else {
                None
            }
        }) {
            let Some(secret) = self.secret() else {
                self.fail(CloseCause::SecretRequired, ResultCode::new(4));
                return;
            };
            avps.push(Avp::ChallengeResponse(chap_md5(
                MessageType::Scccn.code() as u8,
                secret,
                &chal,
            )));
        }
        self.send(0, Message::new(MessageType::Scccn, avps));
        self.state = State::WaitScccnAck;
    }

    /// Checks Protocol Version and takes Host Name, Vendor Name and Receive Window Size.
    fn accept_peer_params(&mut self, m: &Message) -> bool {
        if let Some((v, r)) = m.find(|a| {
            if let Avp::ProtocolVersion { version, revision } = a {
                Some((*version, *revision))
            } else {
                None
            }
        }) {
            if v != 1 {
                // Result 5 carries our highest version (1) and revision (0) as the error code.
                let rc = ResultCode::with_error(5, 0x0100, None);
                self.fail(
                    CloseCause::ProtocolError(format!("LNS speaks protocol version {v}.{r}")),
                    rc,
                );
                return false;
            }
        }
        self.peer_host_name = m
            .find(|a| {
                if let Avp::HostName(h) = a {
                    Some(h.clone())
                } else {
                    None
                }
            })
            .unwrap_or_default();
        self.peer_vendor = m.find(|a| {
            if let Avp::VendorName(v) = a {
                Some(v.clone())
            } else {
                None
            }
        });
        let rws = m
            .find(|a| {
                if let Avp::ReceiveWindowSize(w) = a {
                    Some(*w)
                } else {
                    None
                }
            })
            .unwrap_or(4);
        self.reliable.set_peer_window(rws);
        true
    }

    fn on_peer_sccrq(&mut self, now: Instant, ns: u16, nr: u16, m: &Message, data: &[u8]) {
        if self.state != State::WaitSccrp {
            return;
        }
        let theirs = m.find(|a| {
            if let Avp::TieBreaker(t) = a {
                Some(*t)
            } else {
                None
            }
        });
        match theirs {
            // No tie breaker from them, or ours is lower: our SCCRQ wins, theirs is dropped.
            None => return,
            Some(t) if t > self.tie_breaker => return,
            Some(t) if t == self.tie_breaker => {
                // Both must give up; start over with a fresh tie breaker.
                self.state = State::Idle;
                self.connect(now);
                return;
            }
            Some(_) => {}
        }
        // We lose: drop our SCCRQ and answer theirs as the responder.
        let Some(peer_id) = m.find(|a| {
            if let Avp::AssignedTunnelId(v) = a {
                Some(*v)
            } else {
                None
            }
        }) else {
            return;
        };
        self.reliable = self.new_reliable();
        let _ = self.reliable.on_packet(now, ns, nr, false, data);
        self.peer_tunnel_id = peer_id;
        if !self.accept_peer_params(m) {
            return;
        }
        let mut avps = vec![
            Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            Avp::HostName(self.config.host_name.clone()),
            Avp::FramingCapabilities(FRAMING_CAPS),
            Avp::BearerCapabilities(0),
            Avp::AssignedTunnelId(self.local_tunnel_id),
            Avp::ReceiveWindowSize(self.config.recv_window),
            Avp::FirmwareRevision(FIRMWARE_REVISION),
            Avp::VendorName(VENDOR_NAME.into()),
        ];
        if let Some(chal) = m.find(|a| {
            if let Avp::Challenge(c) = a {
                Some(c.clone())
            } else {
                None
            }
        }) {
            let Some(secret) = self.secret() else {
                self.fail(CloseCause::SecretRequired, ResultCode::new(4));
                return;
            };
            avps.push(Avp::ChallengeResponse(chap_md5(
                MessageType::Sccrp.code() as u8,
                secret,
                &chal,
            )));
        }
        self.our_challenge = None;
        if self.config.secret.is_some() {
            let mut c = [0u8; 16];
            self.rng.fill(&mut c);
            self.our_challenge = Some(c);
            avps.push(Avp::Challenge(c.to_vec()));
        }
        self.send(0, Message::new(MessageType::Sccrp, avps));
        self.state = State::WaitScccn;
    }

    /// Whether `m` (of type `mt`) answers the challenge we sent, if we sent one.
    fn challenge_answered(&self, m: &Message, mt: MessageType) -> bool {
        let Some(c) = self.our_challenge else {
            return true;
        };
        let want = chap_md5(mt.code() as u8, self.secret().unwrap_or_default(), &c);
        let got = m.find(|a| {
            if let Avp::ChallengeResponse(r) = a {
                Some(*r)
            } else {
                None
            }
        });
        got == Some(want)
    }

    fn on_scccn(&mut self, m: &Message) {
        if !self.challenge_answered(m, MessageType::Scccn) {
            self.fail(CloseCause::TunnelAuthFailed, ResultCode::new(4));
            return;
        }
        self.tunnel_up();
    }

    fn tunnel_up(&mut self) {
        self.state = State::Established;
        self.events.push_back(Event::TunnelUp {
            peer_host_name: self.peer_host_name.clone(),
            peer_vendor: self.peer_vendor.clone(),
            peer_tunnel_id: self.peer_tunnel_id,
        });
        let queued: Vec<u16> = self
            .sessions
            .iter()
            .filter(|s| s.state == CallState::Queued)
            .map(|s| s.local_id)
            .collect();
        for id in queued {
            self.send_icrq(id);
        }
    }

    fn on_stopccn(&mut self, m: &Message) {
        let result = m.result_code().cloned();
        let phase = self.tunnel_phase();
        self.sessions_down(CloseCause::TunnelDown, result.clone());
        let mut reason = CloseReason::new(CloseCause::PeerStopCcn, phase);
        reason.result = result;
        let notify = matches!(self.state, State::Stopping { notify: true });
        self.state = State::Closed;
        self.events.push_back(Event::TunnelDown { reason });
        if notify {
            self.events.push_back(Event::TunnelClosed);
        }
    }

    fn on_session_message(&mut self, session_id: u16, m: Message) {
        let peer_sid = m.find(|a| {
            if let Avp::AssignedSessionId(v) = a {
                Some(*v)
            } else {
                None
            }
        });
        let idx = self
            .sessions
            .iter()
            .position(|s| s.local_id == session_id && session_id != 0)
            .or_else(|| {
                // A CDN may come with session id 0 before the LNS learnt ours; match its Assigned Session ID.
                peer_sid.and_then(|p| self.sessions.iter().position(|s| s.peer_id == p && p != 0))
            });
        let Some(i) = idx else { return };
        if let Some((vendor_id, attr_type)) = m.unknown_mandatory() {
            if m.kind != MessageType::Cdn {
                let h = SessionHandle(self.sessions[i].local_id);
                let phase = self.sessions[i].phase;
                self.close_session_with(i, ResultCode::with_error(2, 8, None));
                let reason = CloseReason::new(
                    CloseCause::UnknownMandatoryAvp {
                        vendor_id,
                        attr_type,
                    },
                    phase,
                );
                self.events
                    .push_back(Event::SessionDown { session: h, reason });
                return;
            }
        }
        match (m.kind, self.sessions[i].state) {
            (MessageType::Icrp, CallState::WaitIcrp) => {
                let Some(peer) = peer_sid.filter(|p| *p != 0) else {
                    let h = SessionHandle(self.sessions[i].local_id);
                    self.close_session_with(i, ResultCode::with_error(2, 3, None));
                    let reason = CloseReason::new(
                        CloseCause::ProtocolError("ICRP without Assigned Session ID".into()),
                        Phase::CallSetup,
                    );
                    self.events
                        .push_back(Event::SessionDown { session: h, reason });
                    return;
                };
                let s = &mut self.sessions[i];
                s.peer_id = peer;
                s.state = CallState::Established;
                s.phase = Phase::LinkEstablishment;
                if m.avps.contains(&Avp::SequencingRequired) {
                    s.send_seq = true;
                }
                let h = SessionHandle(s.local_id);
                let avps = vec![
                    Avp::TxConnectSpeed(CONNECT_SPEED),
                    Avp::FramingType(FRAMING_SYNC),
                ];
                self.send(peer, Message::new(MessageType::Iccn, avps));
                self.events.push_back(Event::SessionUp { session: h });
            }
            (MessageType::Cdn, _) => {
                let s = self.sessions.remove(i);
                let mut reason = CloseReason::new(CloseCause::PeerCdn, s.phase);
                reason.result = m.result_code().cloned();
                reason.q931 = m.find(|a| {
                    if let Avp::Q931Cause(q) = a {
                        Some(q.clone())
                    } else {
                        None
                    }
                });
                reason.ppp_disconnect = m.find(|a| {
                    if let Avp::PppDisconnectCause(p) = a {
                        Some(p.clone())
                    } else {
                        None
                    }
                });
                self.events.push_back(Event::SessionDown {
                    session: SessionHandle(s.local_id),
                    reason,
                });
            }
            // Set-Link-Info (ACCM) and WAN-Error-Notify carry nothing a synchronous, userspace
            // PPP needs; the acknowledgement is all that is due, unless they ask for sequencing.
            (MessageType::Sli | MessageType::Wen, _)
                if m.avps.contains(&Avp::SequencingRequired) =>
            {
                self.sessions[i].send_seq = true;
            }
            _ => {}
        }
    }

    fn close_session_with(&mut self, i: usize, result: ResultCode) {
        let s = self.sessions.remove(i);
        let avps = vec![Avp::ResultCode(result), Avp::AssignedSessionId(s.local_id)];
        self.send(s.peer_id, Message::new(MessageType::Cdn, avps));
    }

    /// Sends StopCCN for a fatal condition and reports the tunnel down.
    fn fail(&mut self, cause: CloseCause, result: ResultCode) {
        let phase = self.tunnel_phase();
        self.sessions_down(CloseCause::TunnelDown, None);
        let reason = CloseReason::new(cause, phase);
        self.events.push_back(Event::TunnelDown { reason });
        if self.peer_tunnel_id != 0 {
            self.send_stopccn(result);
            self.state = State::Stopping { notify: false };
        } else {
            self.state = State::Closed;
        }
    }

    fn tunnel_phase(&self) -> Phase {
        match self.state {
            State::Idle | State::WaitSccrp | State::WaitScccn | State::WaitScccnAck => {
                Phase::TunnelSetup
            }
            State::Stopping { .. } | State::Closed => Phase::Closing,
            State::Established => self
                .sessions
                .iter()
                .map(|s| s.phase)
                .max()
                .unwrap_or(Phase::Established),
        }
    }

    fn sessions_down(&mut self, cause: CloseCause, result: Option<ResultCode>) {
        for s in std::mem::take(&mut self.sessions) {
            let mut reason = CloseReason::new(cause.clone(), s.phase);
            reason.result = result.clone();
            self.events.push_back(Event::SessionDown {
                session: SessionHandle(s.local_id),
                reason,
            });
        }
    }

    fn send_icrq(&mut self, local_id: u16) {
        let Some(s) = self.sessions.iter_mut().find(|s| s.local_id == local_id) else {
            return;
        };
        s.state = CallState::WaitIcrp;
        let avps = vec![
            Avp::AssignedSessionId(local_id),
            Avp::CallSerialNumber(s.serial),
            Avp::BearerType(0),
        ];
        self.send(0, Message::new(MessageType::Icrq, avps));
    }

    fn send_stopccn(&mut self, result: ResultCode) {
        let avps = vec![
            Avp::AssignedTunnelId(self.local_tunnel_id),
            Avp::ResultCode(result),
        ];
        self.send(0, Message::new(MessageType::StopCcn, avps));
    }

    fn can_send(&self) -> bool {
        self.peer_tunnel_id != 0 && !matches!(self.state, State::Closed | State::Stopping { .. })
    }

    fn secret(&self) -> Option<&[u8]> {
        self.config.secret.as_ref().map(|s| s.as_slice())
    }

    fn new_reliable(&self) -> Reliable {
        Reliable::new(
            self.config.recv_window,
            self.config.retransmit_base,
            self.config.retransmit_cap,
            self.config.max_retransmits,
        )
    }

    /// Encodes `m` for the peer's tunnel and queues it for reliable delivery.
    fn send(&mut self, session_id: u16, m: Message) {
        let (ns, nr) = self.reliable.ns_nr();
        let header = Header::control(self.peer_tunnel_id, session_id, ns, nr);
        let mut buf = vec![0u8; CONTROL_HEADER_LEN];
        let hider = match (&self.config.secret, self.config.hide_avps) {
            (Some(s), true) => Some(Hider {
                secret: s.as_slice(),
                rng: self.rng.as_mut(),
            }),
            _ => None,
        };
        // Our messages are small (no AVP near 1023 bytes), so encoding cannot fail.
        if m.emit(&mut buf, hider).is_err() {
            return;
        }
        let total = buf.len();
        if header.emit(&mut buf, total).is_err() {
            return;
        }
        self.reliable.push(buf);
    }

    /// Runs timers: retransmission, HELLO keepalive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Idle | State::Closed) {
            return;
        }
        if let Err(e) = self.reliable.on_timeout(now) {
            match self.state {
                State::Stopping { notify } => {
                    self.state = State::Closed;
                    if notify {
                        self.events.push_back(Event::TunnelClosed);
                    }
                }
                _ => {
                    let phase = self.tunnel_phase();
                    self.sessions_down(CloseCause::TunnelDown, None);
                    let reason = CloseReason::new(
                        CloseCause::NoResponse {
                            retransmits: e.retransmits,
                        },
                        phase,
                    );
                    self.events.push_back(Event::TunnelDown { reason });
                    self.state = State::Closed;
                }
            }
            return;
        }
        if let Some(at) = self.hello_at() {
            if now >= at {
                self.last_rx = now;
                if self.reliable.all_acked() {
                    self.send(0, Message::new(MessageType::Hello, Vec::new()));
                }
            }
        }
    }

    fn hello_at(&self) -> Option<Instant> {
        (self.state == State::Established && !self.config.hello_interval.is_zero())
            .then(|| self.last_rx + self.config.hello_interval)
    }

    /// The next UDP payload for the LNS: a control message or a ZLB acknowledgement.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !matches!(self.state, State::Closed | State::Idle) {
            if let Some(b) = self.reliable.poll_transmit(now) {
                return Some(b);
            }
        }
        if self.peer_tunnel_id != 0 && self.reliable.take_ack() {
            let (ns, nr) = self.reliable.ns_nr();
            let mut buf = vec![0u8; CONTROL_HEADER_LEN];
            Header::control(self.peer_tunnel_id, 0, ns, nr)
                .emit(&mut buf, CONTROL_HEADER_LEN)
                .ok()?;
            return Some(buf);
        }
        None
    }

    /// When [`Self::handle_timeout`] should run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Idle | State::Closed) {
            return None;
        }
        match (self.reliable.deadline(), self.hello_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Length of the L2TP data header for this call (6, or 10 with sequence numbers).
    /// Unknown handles get 6.
    #[must_use]
    pub fn data_header_len(&self, h: SessionHandle) -> usize {
        match self.sessions.iter().find(|s| s.local_id == h.0) {
            Some(s) if s.send_seq => 10,
            _ => 6,
        }
    }

    /// Writes the data header into `buf[..data_header_len(h)]` (the PPP frame already follows
    /// it) and returns the datagram length.
    ///
    /// # Errors
    /// When the call is unknown or not established, or `buf` is too short.
    pub fn write_data_header(
        &mut self,
        h: SessionHandle,
        buf: &mut [u8],
        payload_len: usize,
    ) -> Result<usize, Error> {
        if !matches!(self.state, State::Established) {
            return Err(Error::TunnelClosed);
        }
        let s = self
            .sessions
            .iter_mut()
            .find(|s| s.local_id == h.0)
            .ok_or(Error::UnknownSession)?;
        if s.state != CallState::Established {
            return Err(Error::SessionNotEstablished);
        }
        let header = Header {
            control: false,
            with_length: false,
            tunnel_id: self.peer_tunnel_id,
            session_id: s.peer_id,
            sequence: s.send_seq.then_some((s.tx_ns, 0)),
            offset: None,
            priority: false,
        };
        let total = header.buffer_len() + payload_len;
        if buf.len() < total {
            return Err(Error::BufferTooSmall {
                need: total,
                have: buf.len(),
            });
        }
        header.emit(buf, total)?;
        if s.send_seq {
            s.tx_ns = s.tx_ns.wrapping_add(1);
        }
        Ok(total)
    }
}
