//! One PPP link: LCP, authentication, IPCP and IPV6CP over an L2TP session (sans-IO).

use std::collections::VecDeque;
use std::time::Instant;

use l2sec_crypto::Rng;

use crate::auth::{AuthResult, Authenticatee};
use crate::fsm::{Fsm, LayerEvent, Params, State};
use crate::options::{IpcpOptions, Ipv6cp, Ipv6cpOptions, Lcp, LcpOptions};
use crate::types::{Config, DownReason, Event, Packet, Phase};
use crate::wire::{
    CODE_CONF_REQ, CODE_DISCARD_REQ, CODE_ECHO_REPLY, CODE_ECHO_REQ, CODE_IDENTIFICATION,
    CODE_PROTO_REJ, CODE_TERM_REQ, CODE_TIME_REMAINING, CpPacket, Frame, PROTO_CHAP, PROTO_IPCP,
    PROTO_IPV4, PROTO_IPV6, PROTO_IPV6CP, PROTO_LCP, PROTO_PAP,
};

#[derive(Debug, Default)]
struct Echo {
    next: Option<Instant>,
    outstanding: u32,
}

/// A PPP link as the LAC's side of an L2TP session: the client end (authenticatee).
pub struct Link {
    cfg: Config,
    rng: Box<dyn Rng>,
    phase: Phase,
    lcp: Fsm,
    lcp_o: LcpOptions,
    auth: Option<Authenticatee>,
    authenticated: bool,
    ipcp: Fsm,
    ipcp_o: IpcpOptions,
    ipv6cp: Fsm,
    ipv6_o: Ipv6cpOptions,
    echo: Echo,
    tx: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    reason: Option<DownReason>,
    lcp_was_open: bool,
    finished: bool,
    early_ncp: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.state())
            .field("ipcp", &self.ipcp.state())
            .field("ipv6cp", &self.ipv6cp.state())
            .finish_non_exhaustive()
    }
}

fn first_id(rng: &mut dyn Rng) -> u8 {
    let mut b = [0u8; 1];
    rng.fill(&mut b);
    b[0]
}

impl Link {
    /// A link in the Dead phase; nothing is sent before [`Link::open`].
    pub fn new(config: Config, mut rng: Box<dyn Rng>, _now: Instant) -> Self {
        let params = Params {
            restart: config.restart_timer,
            max_terminate: 2,
            max_configure: config.max_configure.max(1),
            max_failure: config.max_failure,
        };
        let lcp = Fsm::new(params, first_id(rng.as_mut()));
        let ipcp = Fsm::new(params, first_id(rng.as_mut()));
        let ipv6cp = Fsm::new(params, first_id(rng.as_mut()));
        Self {
            lcp_o: LcpOptions::new(config.mru, config.auth.clone()),
            ipcp_o: IpcpOptions::new(config.request_ip, config.request_dns),
            ipv6_o: Ipv6cpOptions::default(),
            cfg: config,
            rng,
            phase: Phase::Dead,
            lcp,
            auth: None,
            authenticated: false,
            ipcp,
            ipv6cp,
            echo: Echo::default(),
            tx: VecDeque::new(),
            events: VecDeque::new(),
            reason: None,
            lcp_was_open: false,
            finished: false,
            early_ncp: Vec::new(),
        }
    }

    /// The lower layer (the L2TP session) is up: start LCP.
    pub fn open(&mut self, now: Instant) {
        if self.finished || self.phase != Phase::Dead {
            return;
        }
        self.phase = Phase::Establish;
        let mut n = Lcp {
            o: &mut self.lcp_o,
            rng: self.rng.as_mut(),
        };
        self.lcp.open(now, &mut n);
        let ev = self.lcp.up(now, &mut n);
        self.lcp_event(now, ev);
        self.flush();
    }

    /// Administrative close: LCP Terminate-Request; [`Event::Down`] follows when the server
    /// answers or after at most two restart intervals.
    pub fn close(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        self.reason.get_or_insert(DownReason::Closed);
        self.begin_close(now, b"User request");
    }

    /// The L2TP session went away: the link ends at once. During authentication this counts
    /// as an authentication failure (l2tpns answers bad credentials with a CDN, not a Nak).
    pub fn lower_layer_down(&mut self, _now: Instant) {
        if self.finished {
            return;
        }
        if self.reason.is_none() {
            self.reason = Some(match (&self.auth, self.phase) {
                (Some(a), Phase::Authenticate) => DownReason::AuthFailed {
                    method: a.method(),
                    message: "the server closed the session during authentication".into(),
                },
                _ => DownReason::LowerLayerDown,
            });
        }
        self.tx.clear();
        self.finish();
    }

    /// Current phase.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// One PPP frame from the L2TP session (with or without FF 03, protocol field possibly
    /// compressed). Control frames are consumed; IP packets of an open NCP are returned as
    /// slices of `frame`.
    pub fn handle_frame<'a>(&mut self, now: Instant, frame: &'a [u8]) -> Option<Packet<'a>> {
        if self.finished {
            return None;
        }
        let f = Frame::parse(frame).ok()?;
        let ip = &frame[f.offset..];
        match f.protocol {
            PROTO_IPV4 if self.ipcp.state() == State::Opened => return Some(Packet::Ipv4(ip)),
            PROTO_IPV6 if self.ipv6cp.state() == State::Opened => return Some(Packet::Ipv6(ip)),
            PROTO_IPV4 | PROTO_IPV6 => {}
            PROTO_LCP => self.lcp_frame(now, f.payload),
            PROTO_PAP | PROTO_CHAP => self.auth_frame(now, f.protocol, f.payload),
            PROTO_IPCP if self.phase == Phase::Network => {
                if let Ok(p) = CpPacket::parse(f.payload) {
                    let ev = self.ipcp.input(now, &p, &mut self.ipcp_o);
                    self.ipcp_event(now, ev);
                }
            }
            PROTO_IPV6CP if self.phase == Phase::Network && self.cfg.ipv6 => {
                if let Ok(p) = CpPacket::parse(f.payload) {
                    let mut n = Ipv6cp {
                        o: &mut self.ipv6_o,
                        rng: self.rng.as_mut(),
                    };
                    let ev = self.ipv6cp.input(now, &p, &mut n);
                    self.ipv6cp_event(ev);
                }
            }
            PROTO_IPCP | PROTO_IPV6CP if self.phase == Phase::Authenticate => {
                // an NCP request overtaking the Success: keep a few, replay them after it
                if self.early_ncp.len() < 4 && frame.len() <= 1500 {
                    self.early_ncp.push(frame.to_vec());
                }
            }
            PROTO_IPCP => {}
            p => {
                // CCP, EAP, multilink, IPV6CP when disabled, ...: we do not run them
                if self.lcp.state() == State::Opened && self.phase != Phase::Establish {
                    let max = usize::from(self.lcp_o.peer_mru).saturating_sub(6);
                    let mut data = p.to_be_bytes().to_vec();
                    data.extend_from_slice(
                        &f.payload[..f.payload.len().min(max.saturating_sub(2))],
                    );
                    let id = self.lcp.alloc_id();
                    self.lcp.send_raw(CpPacket::emit(CODE_PROTO_REJ, id, &data));
                }
            }
        }
        self.flush();
        None
    }

    /// Timer expiry; call when `now` reaches [`Link::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        let ev = {
            let mut n = Lcp {
                o: &mut self.lcp_o,
                rng: self.rng.as_mut(),
            };
            self.lcp.handle_timeout(now, &mut n)
        };
        self.lcp_event(now, ev);
        if let Some(a) = self.auth.as_mut() {
            let r = a.handle_timeout(now);
            self.auth_result(now, r);
        }
        let ev = self.ipcp.handle_timeout(now, &mut self.ipcp_o);
        self.ipcp_event(now, ev);
        let ev = {
            let mut n = Ipv6cp {
                o: &mut self.ipv6_o,
                rng: self.rng.as_mut(),
            };
            self.ipv6cp.handle_timeout(now, &mut n)
        };
        self.ipv6cp_event(ev);
        self.echo_timer(now);
        self.flush();
    }

    /// The next control frame to send (FF 03, protocol, packet).
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    /// When [`Link::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        [
            self.lcp.poll_timeout(),
            self.auth.as_ref().and_then(Authenticatee::poll_timeout),
            self.ipcp.poll_timeout(),
            self.ipv6cp.poll_timeout(),
            self.echo.next,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Writes the PPP header of an IP packet (FF 03 00 21, or FF 03 00 57 for IPv6) into
    /// `buf` and returns its length, 4 (0 if `buf` is shorter than 4).
    pub fn write_ip_header(&self, buf: &mut [u8], v6: bool) -> usize {
        let Some(h) = buf.get_mut(..4) else {
            return 0;
        };
        let proto = if v6 { PROTO_IPV6 } else { PROTO_IPV4 };
        h[..2].copy_from_slice(&[0xff, 0x03]);
        h[2..].copy_from_slice(&proto.to_be_bytes());
        4
    }

    // ---- internals

    fn flush(&mut self) {
        while let Some(p) = self.lcp.pop_tx() {
            self.tx.push_back(Frame::emit(PROTO_LCP, &p));
        }
        if let Some(a) = self.auth.as_mut() {
            for (proto, p) in a.take_tx() {
                self.tx.push_back(Frame::emit(proto, &p));
            }
        }
        while let Some(p) = self.ipcp.pop_tx() {
            self.tx.push_back(Frame::emit(PROTO_IPCP, &p));
        }
        while let Some(p) = self.ipv6cp.pop_tx() {
            self.tx.push_back(Frame::emit(PROTO_IPV6CP, &p));
        }
    }

    fn lcp_frame(&mut self, now: Instant, payload: &[u8]) {
        let Ok(p) = CpPacket::parse(payload) else {
            return;
        };
        let opened = self.lcp.state() == State::Opened;
        match p.code {
            CODE_PROTO_REJ if opened => {
                let Some(proto) = p.data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                    return;
                };
                match proto {
                    PROTO_IPCP => {
                        let ev = self.ipcp.rxj(now, false);
                        self.ipcp_event(now, ev);
                    }
                    PROTO_IPV6CP => {
                        let ev = self.ipv6cp.rxj(now, false);
                        self.ipv6cp_event(ev);
                    }
                    PROTO_LCP => {
                        let ev = self.lcp.rxj(now, false);
                        self.lcp_event(now, ev);
                    }
                    _ => {}
                }
            }
            CODE_ECHO_REQ if opened => {
                let Some(magic) = p.data.get(..4) else {
                    return;
                };
                let ours = self.lcp_o.magic.unwrap_or(0);
                if ours != 0 && magic == ours.to_be_bytes() {
                    return; // our own request looped back
                }
                let mut data = ours.to_be_bytes().to_vec();
                data.extend_from_slice(&p.data[4..]);
                self.lcp
                    .send_raw(CpPacket::emit(CODE_ECHO_REPLY, p.id, &data));
            }
            CODE_ECHO_REPLY if opened => self.echo.outstanding = 0,
            CODE_PROTO_REJ | CODE_ECHO_REQ | CODE_ECHO_REPLY | CODE_DISCARD_REQ
            | CODE_IDENTIFICATION | CODE_TIME_REMAINING => {}
            _ => {
                if p.code == CODE_TERM_REQ && self.reason.is_none() {
                    let msg = String::from_utf8_lossy(p.data)
                        .trim_end_matches('\0')
                        .to_string();
                    self.reason = Some(self.peer_terminated_reason(msg));
                }
                if p.code == CODE_CONF_REQ {
                    // e.g. pppd on an LNS: our first request went out before it was running
                    self.lcp.peer_is_up(now);
                }
                let ev = {
                    let mut n = Lcp {
                        o: &mut self.lcp_o,
                        rng: self.rng.as_mut(),
                    };
                    self.lcp.input(now, &p, &mut n)
                };
                self.lcp_event(now, ev);
                if p.code == CODE_TERM_REQ {
                    if self.lcp.state() == State::Stopping {
                        self.phase = Phase::Terminate;
                    } else if !self.lcp_was_open {
                        // the server gave up negotiating (e.g. no common authentication
                        // method): the RFC would keep trying, but it will not answer
                        self.flush();
                        self.finish();
                    }
                }
            }
        }
    }

    fn peer_terminated_reason(&self, msg: String) -> DownReason {
        // Before LCP opened, or after it opened without authentication and before IPCP: pppd
        // drops the Authentication-Protocol option when Nak'd toward a method it cannot do,
        // then ends the link ("peer refused to authenticate").
        let no_auth_agreed =
            !self.lcp_was_open || (self.lcp_o.auth.is_none() && self.ipcp.state() != State::Opened);
        if no_auth_agreed && !self.lcp_o.refused_auth.is_empty() {
            DownReason::AuthMethodRefused {
                offered: self.lcp_o.refused_auth.clone(),
            }
        } else {
            DownReason::PeerTerminated(msg)
        }
    }

    fn auth_frame(&mut self, now: Instant, proto: u16, payload: &[u8]) {
        if !matches!(self.phase, Phase::Authenticate | Phase::Network) {
            return;
        }
        let Ok(p) = CpPacket::parse(payload) else {
            return;
        };
        let r = match self.auth.as_mut() {
            Some(a) => a.input(now, proto, &p, self.rng.as_mut()),
            None => None,
        };
        self.auth_result(now, r);
    }

    fn auth_result(&mut self, now: Instant, r: Option<AuthResult>) {
        let (Some(r), Some(method)) = (r, self.auth.as_ref().map(Authenticatee::method)) else {
            return;
        };
        match r {
            Ok(()) if !self.authenticated => {
                self.authenticated = true;
                self.events.push_back(Event::AuthOk { method });
                self.enter_network(now);
            }
            Ok(()) => {}
            Err(reason) => self.fail(now, reason),
        }
    }

    fn enter_network(&mut self, now: Instant) {
        self.phase = Phase::Network;
        self.ipcp.open(now, &mut self.ipcp_o);
        let ev = self.ipcp.up(now, &mut self.ipcp_o);
        self.ipcp_event(now, ev);
        if self.cfg.ipv6 {
            let mut n = Ipv6cp {
                o: &mut self.ipv6_o,
                rng: self.rng.as_mut(),
            };
            self.ipv6cp.open(now, &mut n);
            let ev = self.ipv6cp.up(now, &mut n);
            self.ipv6cp_event(ev);
        }
        for f in std::mem::take(&mut self.early_ncp) {
            self.handle_frame(now, &f);
        }
    }

    fn lcp_event(&mut self, now: Instant, ev: Option<LayerEvent>) {
        match ev {
            Some(LayerEvent::Up) => {
                self.lcp_was_open = true;
                self.early_ncp.clear();
                self.events.push_back(Event::LcpUp {
                    mru: self.lcp_o.mru,
                    peer_mru: self.lcp_o.peer_mru,
                });
                if !self.cfg.echo_interval.is_zero() {
                    self.echo = Echo {
                        next: Some(now + self.cfg.echo_interval),
                        outstanding: 0,
                    };
                }
                self.authenticated = false;
                match self.lcp_o.auth {
                    Some(method) => {
                        self.phase = Phase::Authenticate;
                        self.events.push_back(Event::AuthStarted { method });
                        let id = self.lcp.alloc_id();
                        self.auth = Some(Authenticatee::start(
                            method,
                            &self.cfg.user,
                            &self.cfg.password,
                            now,
                            self.cfg.restart_timer,
                            self.cfg.max_configure,
                            id,
                        ));
                    }
                    None => {
                        self.auth = None;
                        self.enter_network(now);
                    }
                }
            }
            Some(LayerEvent::Down) => {
                self.echo = Echo::default();
                self.flush();
                self.auth = None;
                self.ipcp.down();
                self.ipv6cp.down();
                self.phase = if self.lcp.state() == State::Closing || self.reason.is_some() {
                    Phase::Terminate
                } else {
                    Phase::Establish
                };
            }
            Some(LayerEvent::Finished) => {
                if self.reason.is_none() {
                    let why = if self.lcp_was_open {
                        "LCP stopped".to_string()
                    } else if !self.lcp_o.refused_auth.is_empty() {
                        self.reason = Some(DownReason::AuthMethodRefused {
                            offered: self.lcp_o.refused_auth.clone(),
                        });
                        String::new()
                    } else {
                        format!(
                            "LCP did not converge after {} Configure-Requests (no answer from the server?)",
                            self.cfg.max_configure
                        )
                    };
                    self.reason
                        .get_or_insert(DownReason::NegotiationFailed(why));
                }
                self.flush();
                self.finish();
            }
            Some(LayerEvent::Started) | None => {}
        }
    }

    fn ipcp_event(&mut self, now: Instant, ev: Option<LayerEvent>) {
        match ev {
            Some(LayerEvent::Up) => {
                let o = &self.ipcp_o;
                if o.local.is_unspecified() {
                    self.fail(
                        now,
                        DownReason::NegotiationFailed("the server assigned no IPv4 address".into()),
                    );
                    return;
                }
                let mtu = self.lcp_o.peer_mru.min(self.lcp_o.mru);
                self.events.push_back(Event::Up {
                    local: o.local,
                    peer: o.peer,
                    dns: o.dns_servers(),
                    mtu,
                });
            }
            Some(LayerEvent::Finished) => {
                self.fail(
                    now,
                    DownReason::NegotiationFailed("IPCP did not converge or was rejected".into()),
                );
            }
            _ => {}
        }
    }

    fn ipv6cp_event(&mut self, ev: Option<LayerEvent>) {
        if ev == Some(LayerEvent::Up) {
            self.events.push_back(Event::Ipv6Up {
                local_iid: self.ipv6_o.local,
                peer_iid: self.ipv6_o.peer,
            });
        }
        // IPV6CP Finished: the server does not do IPv6; the link stays up for IPv4.
    }

    fn echo_timer(&mut self, now: Instant) {
        let Some(next) = self.echo.next else {
            return;
        };
        if now < next || self.lcp.state() != State::Opened {
            return;
        }
        if self.echo.outstanding >= self.cfg.echo_failures.max(1) {
            self.reason.get_or_insert(DownReason::EchoTimeout);
            // one Terminate-Request as a courtesy, then down at once: the peer is gone
            self.lcp.close(now, b"Peer not responding");
            self.flush();
            self.finish();
            return;
        }
        let id = self.lcp.alloc_id();
        let magic = self.lcp_o.magic.unwrap_or(0).to_be_bytes();
        self.lcp.send_raw(CpPacket::emit(CODE_ECHO_REQ, id, &magic));
        self.echo.outstanding += 1;
        self.echo.next = Some(now + self.cfg.echo_interval);
    }

    fn begin_close(&mut self, now: Instant, text: &[u8]) {
        self.phase = Phase::Terminate;
        let ev = self.lcp.close(now, text);
        self.lcp_event(now, ev);
        if matches!(self.lcp.state(), State::Closed | State::Initial) && !self.finished {
            self.flush();
            self.finish();
        }
        self.flush();
    }

    fn fail(&mut self, now: Instant, reason: DownReason) {
        if self.finished {
            return;
        }
        self.reason.get_or_insert(reason);
        self.begin_close(now, b"");
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.phase = Phase::Dead;
        self.echo = Echo::default();
        let reason = self.reason.clone().unwrap_or(DownReason::Closed);
        self.events.push_back(Event::Down { reason });
    }
}
