//! The RFC 1661 section 4 option-negotiation automaton, shared by LCP, IPCP and IPV6CP.
//!
//! The automaton owns the state, the restart timer and counter, the identifiers and the
//! Max-Failure count; what the options mean is left to a [`Negotiator`]. Packets to send are
//! queued (as control packets without the PPP protocol field) and drained with
//! [`Fsm::pop_tx`]. Not implemented: the "restart" and "passive" options of section 4.1.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::wire::{
    CODE_CODE_REJ, CODE_CONF_ACK, CODE_CONF_NAK, CODE_CONF_REJ, CODE_CONF_REQ, CODE_TERM_ACK,
    CODE_TERM_REQ, CpPacket,
};

/// The ten states of RFC 1661 section 4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open issued, lower layer still down.
    Starting,
    /// 2: lower layer up, no Open.
    Closed,
    /// 3: negotiation ended (finished or refused), waiting for Down or a Configure-Request.
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent (or received) without Close.
    Stopping,
    /// 6: Configure-Request sent.
    ReqSent,
    /// 7: Configure-Ack received, none sent.
    AckRcvd,
    /// 8: Configure-Ack sent, none received.
    AckSent,
    /// 9: both Configure-Acks exchanged.
    Opened,
}

/// This-Layer-Up/Down/Started/Finished: what the owner of the automaton must act upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// tlu: the layer is open.
    Up,
    /// tld: the layer left Opened.
    Down,
    /// tls: the layer needs the lower layer.
    Started,
    /// tlf: the layer no longer needs the lower layer (negotiation ended).
    Finished,
}

/// The answer to a peer's Configure-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every option is acceptable: send Configure-Ack echoing the request.
    Ack,
    /// Send Configure-Nak with these options (wire form).
    Nak(Vec<u8>),
    /// Send Configure-Reject with these options (wire form, copied from the request).
    Reject(Vec<u8>),
    /// The request is malformed: drop it.
    Discard,
}

/// The option logic of one control protocol.
pub trait Negotiator {
    /// Options (wire form) of our next Configure-Request.
    fn request(&mut self) -> Vec<u8>;
    /// Judges the peer's Configure-Request; with `allow_nak` false (Max-Failure reached), options
    /// that would be Nak'd must be rejected instead.
    fn check_request(&mut self, options: &[u8], allow_nak: bool) -> Verdict;
    /// Our request was acknowledged (the options are exactly what we sent).
    fn ack_received(&mut self, _options: &[u8]) {}
    /// The peer Nak'd our request with these options.
    fn nak_received(&mut self, options: &[u8]);
    /// The peer rejected these options of our request.
    fn reject_received(&mut self, options: &[u8]);
    /// A new negotiation starts (tls): forget what the previous one learned.
    fn reset(&mut self) {}
}

/// Timer and counter settings (RFC 1661 section 4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Restart timer.
    pub restart: Duration,
    /// Max-Terminate: Terminate-Requests sent before giving up.
    pub max_terminate: u32,
    /// Max-Configure: Configure-Requests sent before giving up.
    pub max_configure: u32,
    /// Max-Failure: Configure-Naks sent before options are rejected instead.
    pub max_failure: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            restart: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
        }
    }
}

/// How soon an unanswered Configure-Request is sent again once the peer is heard from.
pub const EARLY_RETRANSMIT: Duration = Duration::from_millis(500);

/// The automaton of one control protocol.
#[derive(Debug)]
pub struct Fsm {
    state: State,
    params: Params,
    restart_count: u32,
    deadline: Option<Instant>,
    next_id: u8,
    req_id: u8,
    req: Vec<u8>,
    req_answered: bool,
    /// Our request was sent again early once in this negotiation (see [`Fsm::peer_is_up`]).
    early_resent: bool,
    failures: u32,
    term_data: Vec<u8>,
    tx: VecDeque<Vec<u8>>,
}

impl Fsm {
    /// A new automaton in the Initial state; `first_id` is the identifier of its first packet.
    #[must_use]
    pub fn new(params: Params, first_id: u8) -> Self {
        Self {
            state: State::Initial,
            params,
            restart_count: 0,
            deadline: None,
            next_id: first_id,
            req_id: 0,
            req: Vec::new(),
            req_answered: true,
            early_resent: false,
            failures: 0,
            term_data: Vec::new(),
            tx: VecDeque::new(),
        }
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    /// When the restart timer fires, if it runs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Next queued control packet (code, id, length, data).
    pub fn pop_tx(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    /// Allocates a fresh identifier (also used for LCP Echo-Requests).
    pub fn alloc_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// The peer has just shown it is listening (its first Configure-Request arrived) while our
    /// own request is still unanswered: once per negotiation, shorten the restart timer to
    /// [`EARLY_RETRANSMIT`]. Our first request often goes out before the peer's side is ready
    /// (an LNS starts pppd at ICCN and the request is lost) and would otherwise cost a whole
    /// restart interval (3 s); a peer that did get it answers well within that time, so the
    /// usual crossing of both first requests costs nothing.
    pub fn peer_is_up(&mut self, now: Instant) {
        if self.early_resent
            || self.req_answered
            || !matches!(self.state, State::ReqSent | State::AckSent)
        {
            return;
        }
        self.early_resent = true;
        let early = now + EARLY_RETRANSMIT;
        self.deadline = Some(self.deadline.map_or(early, |d| d.min(early)));
    }

    /// Queues a packet outside the automaton (echo, Protocol-Reject).
    pub fn send_raw(&mut self, packet: Vec<u8>) {
        self.tx.push_back(packet);
    }

    fn irc(&mut self, terminate: bool) {
        self.early_resent = false;
        self.restart_count = if terminate {
            self.params.max_terminate
        } else {
            self.params.max_configure
        };
    }

    fn zrc(&mut self, now: Instant) {
        self.restart_count = 0;
        self.deadline = Some(now + self.params.restart);
    }

    fn scr(&mut self, now: Instant, neg: &mut dyn Negotiator) {
        self.req = neg.request();
        self.req_id = self.alloc_id();
        self.req_answered = false;
        self.tx
            .push_back(CpPacket::emit(CODE_CONF_REQ, self.req_id, &self.req));
        self.restart_count = self.restart_count.saturating_sub(1);
        self.deadline = Some(now + self.params.restart);
    }

    fn str(&mut self, now: Instant) {
        let id = self.alloc_id();
        self.tx
            .push_back(CpPacket::emit(CODE_TERM_REQ, id, &self.term_data));
        self.restart_count = self.restart_count.saturating_sub(1);
        self.deadline = Some(now + self.params.restart);
    }

    fn sta(&mut self, id: u8) {
        self.tx.push_back(CpPacket::emit(CODE_TERM_ACK, id, &[]));
    }

    fn sca(&mut self, id: u8, options: &[u8]) {
        self.failures = 0;
        self.tx
            .push_back(CpPacket::emit(CODE_CONF_ACK, id, options));
    }

    fn scn(&mut self, id: u8, verdict: &Verdict) {
        match verdict {
            Verdict::Nak(o) => {
                self.failures = self.failures.saturating_add(1);
                self.tx.push_back(CpPacket::emit(CODE_CONF_NAK, id, o));
            }
            Verdict::Reject(o) => self.tx.push_back(CpPacket::emit(CODE_CONF_REJ, id, o)),
            Verdict::Ack | Verdict::Discard => {}
        }
    }

    fn goto(&mut self, state: State) {
        self.state = state;
        if !matches!(
            state,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        ) {
            self.deadline = None;
        }
    }

    /// Up: the lower layer is ready.
    pub fn up(&mut self, now: Instant, neg: &mut dyn Negotiator) -> Option<LayerEvent> {
        match self.state {
            State::Initial => self.goto(State::Closed),
            State::Starting => {
                self.irc(false);
                self.failures = 0;
                self.scr(now, neg);
                self.goto(State::ReqSent);
            }
            _ => {}
        }
        None
    }

    /// Down: the lower layer is gone.
    pub fn down(&mut self) -> Option<LayerEvent> {
        let (next, ev) = match self.state {
            State::Closed | State::Closing => (State::Initial, None),
            State::Stopped => (State::Starting, Some(LayerEvent::Started)),
            State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                (State::Starting, None)
            }
            State::Opened => (State::Starting, Some(LayerEvent::Down)),
            s @ (State::Initial | State::Starting) => (s, None),
        };
        self.goto(next);
        ev
    }

    /// Open: administrative open.
    pub fn open(&mut self, now: Instant, neg: &mut dyn Negotiator) -> Option<LayerEvent> {
        match self.state {
            State::Initial => {
                neg.reset();
                self.goto(State::Starting);
                Some(LayerEvent::Started)
            }
            State::Closed => {
                neg.reset();
                self.irc(false);
                self.failures = 0;
                self.scr(now, neg);
                self.goto(State::ReqSent);
                None
            }
            State::Closing => {
                self.goto(State::Stopping);
                None
            }
            _ => None,
        }
    }

    /// Close: administrative close; `reason` goes into the Terminate-Request.
    pub fn close(&mut self, now: Instant, reason: &[u8]) -> Option<LayerEvent> {
        self.term_data = reason.to_vec();
        match self.state {
            State::Starting => {
                self.goto(State::Initial);
                Some(LayerEvent::Finished)
            }
            State::Stopped => {
                self.goto(State::Closed);
                None
            }
            State::Stopping => {
                self.goto(State::Closing);
                None
            }
            State::ReqSent | State::AckRcvd | State::AckSent | State::Opened => {
                let ev = (self.state == State::Opened).then_some(LayerEvent::Down);
                self.irc(true);
                self.str(now);
                self.goto(State::Closing);
                ev
            }
            State::Initial | State::Closed | State::Closing => None,
        }
    }

    /// Fires TO+ or TO- when the restart timer has expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant, neg: &mut dyn Negotiator) -> Option<LayerEvent> {
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return None,
        }
        self.deadline = None;
        if self.restart_count > 0 {
            match self.state {
                State::Closing | State::Stopping => self.str(now),
                State::ReqSent | State::AckRcvd => {
                    self.scr(now, neg);
                    self.goto(State::ReqSent);
                }
                State::AckSent => self.scr(now, neg),
                _ => {}
            }
            None
        } else {
            match self.state {
                State::Closing => {
                    self.goto(State::Closed);
                    Some(LayerEvent::Finished)
                }
                State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                    self.goto(State::Stopped);
                    Some(LayerEvent::Finished)
                }
                _ => None,
            }
        }
    }

    /// Handles one received control packet (codes 1 to 7; anything else is RUC).
    pub fn input(
        &mut self,
        now: Instant,
        pkt: &CpPacket<'_>,
        neg: &mut dyn Negotiator,
    ) -> Option<LayerEvent> {
        if matches!(self.state, State::Initial | State::Starting) {
            return None;
        }
        match pkt.code {
            CODE_CONF_REQ => self.rcr(now, pkt, neg),
            CODE_CONF_ACK => self.rca(now, pkt, neg),
            CODE_CONF_NAK | CODE_CONF_REJ => self.rcn(now, pkt, neg),
            CODE_TERM_REQ => self.rtr(now, pkt.id),
            CODE_TERM_ACK => self.rta(now, neg),
            CODE_CODE_REJ => {
                let code = *pkt.data.first()?;
                self.rxj(now, !(CODE_CONF_REQ..=CODE_CODE_REJ).contains(&code))
            }
            _ => {
                self.scj(pkt);
                None
            }
        }
    }

    /// Sends a Code-Reject carrying (the start of) `pkt`; valid in states 2 to 9.
    pub fn scj(&mut self, pkt: &CpPacket<'_>) {
        if matches!(self.state, State::Initial | State::Starting) {
            return;
        }
        let mut body = pkt.to_vec();
        body.truncate(1400);
        let id = self.alloc_id();
        self.tx.push_back(CpPacket::emit(CODE_CODE_REJ, id, &body));
    }

    fn rcr(
        &mut self,
        now: Instant,
        pkt: &CpPacket<'_>,
        neg: &mut dyn Negotiator,
    ) -> Option<LayerEvent> {
        match self.state {
            State::Closed => {
                self.sta(pkt.id);
                return None;
            }
            State::Closing | State::Stopping | State::Initial | State::Starting => return None,
            _ => {}
        }
        let allow_nak = self.failures < self.params.max_failure;
        let verdict = neg.check_request(pkt.data, allow_nak);
        if verdict == Verdict::Discard {
            return None;
        }
        let good = verdict == Verdict::Ack;
        let mut ev = None;
        match self.state {
            State::Stopped => {
                self.irc(false);
                self.scr(now, neg);
            }
            State::Opened => {
                ev = Some(LayerEvent::Down);
                self.scr(now, neg);
            }
            _ => {}
        }
        if good {
            self.sca(pkt.id, pkt.data);
        } else {
            self.scn(pkt.id, &verdict);
        }
        let next = match (self.state, good) {
            (State::AckRcvd, true) => {
                ev = Some(LayerEvent::Up);
                State::Opened
            }
            (State::AckRcvd, false) => State::AckRcvd,
            (_, true) => State::AckSent,
            (_, false) => State::ReqSent,
        };
        self.goto(next);
        ev
    }

    fn answer_matches(&mut self, pkt: &CpPacket<'_>) -> bool {
        if self.req_answered || pkt.id != self.req_id {
            return false;
        }
        if pkt.code == CODE_CONF_ACK && pkt.data != self.req.as_slice() {
            return false;
        }
        self.req_answered = true;
        true
    }

    fn rca(
        &mut self,
        now: Instant,
        pkt: &CpPacket<'_>,
        neg: &mut dyn Negotiator,
    ) -> Option<LayerEvent> {
        if !self.answer_matches(pkt) {
            return None;
        }
        match self.state {
            State::Closed | State::Stopped => self.sta(pkt.id),
            State::ReqSent => {
                neg.ack_received(pkt.data);
                self.irc(false);
                self.goto(State::AckRcvd);
            }
            State::AckRcvd => {
                self.scr(now, neg);
                self.goto(State::ReqSent);
            }
            State::AckSent => {
                neg.ack_received(pkt.data);
                self.irc(false);
                self.goto(State::Opened);
                return Some(LayerEvent::Up);
            }
            State::Opened => {
                self.scr(now, neg);
                self.goto(State::ReqSent);
                return Some(LayerEvent::Down);
            }
            _ => {}
        }
        None
    }

    fn rcn(
        &mut self,
        now: Instant,
        pkt: &CpPacket<'_>,
        neg: &mut dyn Negotiator,
    ) -> Option<LayerEvent> {
        if !self.answer_matches(pkt) {
            return None;
        }
        if matches!(self.state, State::Closed | State::Stopped) {
            self.sta(pkt.id);
            return None;
        }
        if matches!(self.state, State::Closing | State::Stopping) {
            return None;
        }
        if pkt.code == CODE_CONF_NAK {
            neg.nak_received(pkt.data);
        } else {
            neg.reject_received(pkt.data);
        }
        match self.state {
            State::ReqSent => {
                self.irc(false);
                self.scr(now, neg);
            }
            State::AckRcvd => {
                self.scr(now, neg);
                self.goto(State::ReqSent);
            }
            State::AckSent => {
                self.irc(false);
                self.scr(now, neg);
            }
            State::Opened => {
                self.scr(now, neg);
                self.goto(State::ReqSent);
                return Some(LayerEvent::Down);
            }
            _ => {}
        }
        None
    }

    fn rtr(&mut self, now: Instant, id: u8) -> Option<LayerEvent> {
        match self.state {
            State::Closed | State::Stopped | State::Closing | State::Stopping => self.sta(id),
            State::ReqSent | State::AckRcvd | State::AckSent => {
                self.sta(id);
                self.goto(State::ReqSent);
            }
            State::Opened => {
                self.zrc(now);
                self.sta(id);
                self.goto(State::Stopping);
                return Some(LayerEvent::Down);
            }
            State::Initial | State::Starting => {}
        }
        None
    }

    fn rta(&mut self, now: Instant, neg: &mut dyn Negotiator) -> Option<LayerEvent> {
        match self.state {
            State::Closing => {
                self.goto(State::Closed);
                Some(LayerEvent::Finished)
            }
            State::Stopping => {
                self.goto(State::Stopped);
                Some(LayerEvent::Finished)
            }
            State::AckRcvd => {
                self.goto(State::ReqSent);
                None
            }
            State::Opened => {
                self.scr(now, neg);
                self.goto(State::ReqSent);
                Some(LayerEvent::Down)
            }
            _ => None,
        }
    }

    /// RXJ+ (`acceptable`) or RXJ-: a Code-Reject or Protocol-Reject was received.
    pub fn rxj(&mut self, now: Instant, acceptable: bool) -> Option<LayerEvent> {
        if acceptable {
            if self.state == State::AckRcvd {
                self.goto(State::ReqSent);
            }
            return None;
        }
        match self.state {
            State::Closed | State::Closing => {
                self.goto(State::Closed);
                Some(LayerEvent::Finished)
            }
            State::Stopped | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.goto(State::Stopped);
                Some(LayerEvent::Finished)
            }
            State::Opened => {
                self.irc(true);
                self.str(now);
                self.goto(State::Stopping);
                Some(LayerEvent::Down)
            }
            State::Initial | State::Starting => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Test negotiator: asks for option 1; acks a peer's option 1, naks option 2.
    pub(crate) struct TestNeg;

    impl Negotiator for TestNeg {
        fn request(&mut self) -> Vec<u8> {
            vec![1, 2]
        }
        fn check_request(&mut self, options: &[u8], allow_nak: bool) -> Verdict {
            match options {
                [1, 2] => Verdict::Ack,
                [2, 2] if allow_nak => Verdict::Nak(vec![2, 3, 0]),
                _ => Verdict::Reject(options.to_vec()),
            }
        }
        fn nak_received(&mut self, _options: &[u8]) {}
        fn reject_received(&mut self, _options: &[u8]) {}
    }

    /// RFC 1661 section 4.1, verbatim (two halves joined; RXR lives in the LCP layer).
    const TABLE: &str = "
 Up   |    2     irc,scr/6     -         -         -         -       -         -         -           -
 Down |    -         -         0       tls/1       0         1       1         1         1         tld/1
 Open |  tls/1       1     irc,scr/6     3r        5r        5r      6         7         8           9r
 Close|    0       tlf/0       2         2         4         4   irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
  TO+ |    -         -         -         -       str/4     str/5   scr/6     scr/6     scr/8         -
  TO- |    -         -         -         -       tlf/2     tlf/3   tlf/3p    tlf/3p    tlf/3p        -
 RCR+ |    -         -       sta/2 irc,scr,sca/8   4         5     sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
 RCR- |    -         -       sta/2 irc,scr,scn/6   4         5     scn/6     scn/7     scn/6   tld,scr,scn/6
 RCA  |    -         -       sta/2     sta/3       4         5     irc/7     scr/6x  irc,tlu/9   tld,scr/6x
 RCN  |    -         -       sta/2     sta/3       4         5   irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
 RTR  |    -         -       sta/2     sta/3     sta/4     sta/5   sta/6     sta/6     sta/6   tld,zrc,sta/5
 RTA  |    -         -         2         3       tlf/2     tlf/3     6         6         8       tld,scr/6
 RUC  |    -         -       scj/2     scj/3     scj/4     scj/5   scj/6     scj/7     scj/8       scj/9
 RXJ+ |    -         -         2         3         4         5       6         6         8           9
 RXJ- |    -         -       tlf/2     tlf/3     tlf/2     tlf/3   tlf/3     tlf/3     tlf/3   tld,irc,str/5
";

    const STATES: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    fn fsm_in(state: State, t0: Instant, restart_count: u32) -> Fsm {
        let mut f = Fsm::new(Params::default(), 100);
        f.state = state;
        f.req_id = 42;
        f.req = vec![1, 2];
        f.req_answered = false;
        f.restart_count = restart_count;
        if matches!(
            state,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        ) {
            f.deadline = Some(t0 + Duration::from_secs(3));
        }
        f
    }

    #[test]
    fn unanswered_request_is_resent_early_once_when_the_peer_speaks() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::ReqSent, t0, 9);
        let t1 = t0 + Duration::from_millis(100);
        f.peer_is_up(t1);
        assert_eq!(f.pop_tx(), None, "nothing at once: the peer may answer");
        assert_eq!(f.poll_timeout(), Some(t1 + EARLY_RETRANSMIT));
        let mut neg = TestNeg;
        let t2 = t1 + EARLY_RETRANSMIT;
        f.handle_timeout(t2, &mut neg);
        let p = f.pop_tx().expect("retransmitted");
        assert_eq!(p[0], CODE_CONF_REQ);
        assert_eq!(f.poll_timeout(), Some(t2 + Duration::from_secs(3)));
        f.peer_is_up(t2);
        assert_eq!(
            f.poll_timeout(),
            Some(t2 + Duration::from_secs(3)),
            "once per negotiation"
        );
        // answered, or in another state: the timer stays
        let mut f = fsm_in(State::AckRcvd, t0, 9);
        f.peer_is_up(t1);
        assert_eq!(f.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        let mut f = fsm_in(State::AckSent, t0, 9);
        f.req_answered = true;
        f.peer_is_up(t1);
        assert_eq!(f.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn rfc1661_transition_table() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        let p = Params::default();
        let mut checked = 0;
        for line in TABLE.lines().filter(|l| l.contains('|')) {
            let (event, cells) = line.split_once('|').unwrap();
            let event = event.trim();
            let cells: Vec<&str> = cells.split_whitespace().collect();
            assert_eq!(cells.len(), 10, "{event}");
            for (col, cell) in cells.iter().enumerate() {
                let from = STATES[col];
                let count = if event == "TO-" { 0 } else { 2 };
                let mut f = fsm_in(from, t0, count);
                let mut neg = TestNeg;
                let ev = match event {
                    "Up" => f.up(later, &mut neg),
                    "Down" => f.down(),
                    "Open" => f.open(later, &mut neg),
                    "Close" => f.close(later, b"bye"),
                    "TO+" | "TO-" => f.handle_timeout(later, &mut neg),
                    "RCR+" => f.input(
                        later,
                        &CpPacket {
                            code: 1,
                            id: 7,
                            data: &[1, 2],
                        },
                        &mut neg,
                    ),
                    "RCR-" => f.input(
                        later,
                        &CpPacket {
                            code: 1,
                            id: 7,
                            data: &[2, 2],
                        },
                        &mut neg,
                    ),
                    "RCA" => f.input(
                        later,
                        &CpPacket {
                            code: 2,
                            id: 42,
                            data: &[1, 2],
                        },
                        &mut neg,
                    ),
                    "RCN" => f.input(
                        later,
                        &CpPacket {
                            code: 3,
                            id: 42,
                            data: &[1, 2],
                        },
                        &mut neg,
                    ),
                    "RTR" => f.input(
                        later,
                        &CpPacket {
                            code: 5,
                            id: 8,
                            data: &[],
                        },
                        &mut neg,
                    ),
                    "RTA" => f.input(
                        later,
                        &CpPacket {
                            code: 6,
                            id: 9,
                            data: &[],
                        },
                        &mut neg,
                    ),
                    "RUC" => f.input(
                        later,
                        &CpPacket {
                            code: 0x30,
                            id: 9,
                            data: &[],
                        },
                        &mut neg,
                    ),
                    "RXJ+" => f.input(
                        later,
                        &CpPacket {
                            code: 7,
                            id: 9,
                            data: &[9, 1, 0, 4],
                        },
                        &mut neg,
                    ),
                    "RXJ-" => f.input(
                        later,
                        &CpPacket {
                            code: 7,
                            id: 9,
                            data: &[1, 1, 0, 4],
                        },
                        &mut neg,
                    ),
                    other => panic!("unknown event {other}"),
                };
                let sent: Vec<u8> = std::iter::from_fn(|| f.pop_tx()).map(|p| p[0]).collect();
                let ctx = format!("{event} in {from:?} ({cell})");
                if *cell == "-" {
                    assert_eq!(f.state(), from, "{ctx}");
                    assert_eq!(ev, None, "{ctx}");
                    assert!(sent.is_empty(), "{ctx}: sent {sent:?}");
                    checked += 1;
                    continue;
                }
                let (actions, target) = cell.rsplit_once('/').unwrap_or(("", cell));
                let target: usize = target.trim_end_matches(['r', 'p', 'x']).parse().unwrap();
                assert_eq!(f.state(), STATES[target], "{ctx}");
                let mut want_codes = Vec::new();
                let mut want_ev = None;
                let mut sends_after_irc = None::<u32>;
                let mut zrc = false;
                for a in actions.split(',').filter(|a| !a.is_empty()) {
                    match a {
                        "tlu" => want_ev = Some(LayerEvent::Up),
                        "tld" => want_ev = Some(LayerEvent::Down),
                        "tls" => want_ev = Some(LayerEvent::Started),
                        "tlf" => want_ev = Some(LayerEvent::Finished),
                        "irc" => sends_after_irc = Some(0),
                        "zrc" => zrc = true,
                        "scr" | "str" | "sca" | "scn" | "sta" | "scj" => {
                            let code = match a {
                                "scr" => 1,
                                "sca" => 2,
                                "scn" => 3,
                                "str" => 5,
                                "sta" => 6,
                                _ => 7,
                            };
                            want_codes.push(code);
                            if matches!(a, "scr" | "str") {
                                if let Some(n) = sends_after_irc.as_mut() {
                                    *n += 1;
                                }
                            }
                        }
                        other => panic!("unknown action {other}"),
                    }
                }
                assert_eq!(ev, want_ev, "{ctx}");
                let mut sorted_sent = sent.clone();
                sorted_sent.sort_unstable();
                want_codes.sort_unstable();
                assert_eq!(sorted_sent, want_codes, "{ctx}");
                if let Some(n) = sends_after_irc {
                    let max = if matches!(f.state(), State::Closing | State::Stopping) {
                        p.max_terminate
                    } else {
                        p.max_configure
                    };
                    assert_eq!(f.restart_count, max - n, "{ctx}");
                }
                if zrc {
                    assert_eq!(f.restart_count, 0, "{ctx}");
                    assert_eq!(f.poll_timeout(), Some(later + p.restart), "{ctx}");
                }
                let timer_runs = matches!(
                    f.state(),
                    State::Closing
                        | State::Stopping
                        | State::ReqSent
                        | State::AckRcvd
                        | State::AckSent
                );
                assert_eq!(f.poll_timeout().is_some(), timer_runs, "{ctx}: timer");
                checked += 1;
            }
        }
        assert_eq!(checked, 150);
    }

    #[test]
    fn ack_must_match_request_and_duplicates_are_ignored() {
        let t0 = Instant::now();
        let mut f = Fsm::new(Params::default(), 1);
        let mut neg = TestNeg;
        f.up(t0, &mut neg);
        f.open(t0, &mut neg);
        assert_eq!(f.state(), State::ReqSent);
        let req = f.pop_tx().unwrap();
        let id = req[1];
        // wrong id, wrong content: ignored
        f.input(
            t0,
            &CpPacket {
                code: 2,
                id: id.wrapping_add(1),
                data: &[1, 2],
            },
            &mut neg,
        );
        f.input(
            t0,
            &CpPacket {
                code: 2,
                id,
                data: &[1, 3],
            },
            &mut neg,
        );
        assert_eq!(f.state(), State::ReqSent);
        f.input(
            t0,
            &CpPacket {
                code: 2,
                id,
                data: &[1, 2],
            },
            &mut neg,
        );
        assert_eq!(f.state(), State::AckRcvd);
        // a duplicate of the same Ack must not bounce us back to Req-Sent
        f.input(
            t0,
            &CpPacket {
                code: 2,
                id,
                data: &[1, 2],
            },
            &mut neg,
        );
        assert_eq!(f.state(), State::AckRcvd);
        let ev = f.input(
            t0,
            &CpPacket {
                code: 1,
                id: 5,
                data: &[1, 2],
            },
            &mut neg,
        );
        assert_eq!(ev, Some(LayerEvent::Up));
        assert_eq!(f.state(), State::Opened);
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn max_configure_then_finished() {
        let t0 = Instant::now();
        let params = Params {
            max_configure: 3,
            ..Params::default()
        };
        let mut f = Fsm::new(params, 1);
        let mut neg = TestNeg;
        f.open(t0, &mut neg);
        f.up(t0, &mut neg);
        let mut now = t0;
        let mut reqs = 0;
        let mut fin = None;
        for _ in 0..10 {
            while f.pop_tx().is_some() {
                reqs += 1;
            }
            let Some(d) = f.poll_timeout() else { break };
            now = d;
            fin = f.handle_timeout(now, &mut neg);
        }
        assert_eq!(reqs, 3);
        assert_eq!(fin, Some(LayerEvent::Finished));
        assert_eq!(f.state(), State::Stopped);
        assert_eq!(now, t0 + params.restart * 3);
    }

    #[test]
    fn max_failure_turns_naks_into_rejects() {
        let t0 = Instant::now();
        let params = Params {
            max_failure: 2,
            ..Params::default()
        };
        let mut f = Fsm::new(params, 1);
        let mut neg = TestNeg;
        f.open(t0, &mut neg);
        f.up(t0, &mut neg);
        f.pop_tx();
        let mut codes = Vec::new();
        for i in 0..4 {
            f.input(
                t0,
                &CpPacket {
                    code: 1,
                    id: i,
                    data: &[2, 2],
                },
                &mut neg,
            );
            codes.push(f.pop_tx().unwrap()[0]);
        }
        assert_eq!(codes, vec![3, 3, 4, 4]);
    }
}
