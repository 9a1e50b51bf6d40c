//! Reliable delivery of control messages (RFC 2661 section 5.8 and appendix A): Ns/Nr,
//! the peer's receive window, slow start and congestion avoidance, retransmission with
//! exponential backoff, and in-order delivery with duplicate suppression.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Offset of Ns in a control message header.
const NS_AT: usize = 8;
/// Offset of Nr in a control message header.
const NR_AT: usize = 10;

/// Where an incoming control message stands in the sequence space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rx {
    /// In order: process it now (then drain [`Reliable::pop_buffered`]).
    Deliver,
    /// Already processed; acknowledged again.
    Duplicate,
    /// Ahead of a gap; kept until the gap is filled.
    Buffered,
    /// Outside our receive window: dropped.
    Dropped,
    /// A ZLB: it only acknowledged.
    Ack,
}

/// The retransmission budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted {
    /// Retransmissions made before giving up.
    pub retransmits: u32,
}

#[derive(Debug)]
struct Pending {
    ns: u16,
    bytes: Vec<u8>,
    /// Sent in the current round (cleared by a timeout so it is sent again).
    sent: bool,
    /// Sent at least once (only such messages can be acknowledged).
    ever: bool,
}

/// Sender and receiver state of one control connection.
#[derive(Debug)]
pub(crate) struct Reliable {
    next_ns: u16,
    expected: u16,
    unacked: VecDeque<Pending>,
    peer_rws: u16,
    local_rws: u16,
    cwnd: u16,
    ssthresh: u16,
    ca_acks: u16,
    buffered: Vec<(u16, Vec<u8>)>,
    ack_pending: bool,
    base: Duration,
    cap: Duration,
    rto: Duration,
    max_retransmits: u32,
    retries: u32,
    deadline: Option<Instant>,
    /// Total retransmissions made (for statistics and tests).
    pub(crate) retransmissions: u64,
}

/// True when `a` comes before `b` in the 16-bit sequence space.
pub(crate) fn seq_lt(a: u16, b: u16) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < 0x8000
}

impl Reliable {
    /// A fresh connection; the peer's window is 4 until it tells us otherwise.
    pub(crate) fn new(local_rws: u16, base: Duration, cap: Duration, max_retransmits: u32) -> Self {
        Reliable {
            next_ns: 0,
            expected: 0,
            unacked: VecDeque::new(),
            peer_rws: 4,
            local_rws: local_rws.max(1),
            cwnd: 1,
            ssthresh: 4,
            ca_acks: 0,
            buffered: Vec::new(),
            ack_pending: false,
            base,
            cap: cap.max(base),
            rto: base,
            max_retransmits,
            retries: 0,
            deadline: None,
            retransmissions: 0,
        }
    }

    /// Sets the peer's receive window (Receive Window Size AVP; absent means 4).
    pub(crate) fn set_peer_window(&mut self, rws: u16) {
        self.peer_rws = rws.max(1);
        self.ssthresh = self.peer_rws;
        self.cwnd = self.cwnd.min(self.peer_rws);
    }

    /// Ns for the next message and the Nr we acknowledge with.
    pub(crate) fn ns_nr(&self) -> (u16, u16) {
        (self.next_ns, self.expected)
    }

    /// Queues a control message whose header already holds [`Self::ns_nr`]'s Ns.
    pub(crate) fn push(&mut self, mut bytes: Vec<u8>) {
        let ns = self.next_ns;
        if let Some(b) = bytes.get_mut(NS_AT..NS_AT + 2) {
            b.copy_from_slice(&ns.to_be_bytes());
        }
        self.next_ns = self.next_ns.wrapping_add(1);
        self.unacked.push_back(Pending {
            ns,
            bytes,
            sent: false,
            ever: false,
        });
    }

    /// Handles the sequence numbers of an incoming message (or ZLB) of `data`.
    pub(crate) fn on_packet(
        &mut self,
        now: Instant,
        ns: u16,
        nr: u16,
        zlb: bool,
        data: &[u8],
    ) -> Rx {
        self.on_ack(now, nr);
        if zlb {
            return Rx::Ack;
        }
        self.ack_pending = true;
        let ahead = ns.wrapping_sub(self.expected);
        if ahead == 0 {
            self.expected = self.expected.wrapping_add(1);
            Rx::Deliver
        } else if ahead >= 0x8000 {
            Rx::Duplicate
        } else if ahead < self.local_rws {
            if !self.buffered.iter().any(|(n, _)| *n == ns) {
                self.buffered.push((ns, data.to_vec()));
            }
            Rx::Buffered
        } else {
            Rx::Dropped
        }
    }

    /// The next buffered message that has become in order, if any.
    pub(crate) fn pop_buffered(&mut self) -> Option<Vec<u8>> {
        let i = self
            .buffered
            .iter()
            .position(|(n, _)| *n == self.expected)?;
        self.expected = self.expected.wrapping_add(1);
        Some(self.buffered.swap_remove(i).1)
    }

    fn on_ack(&mut self, now: Instant, nr: u16) {
        let Some(first) = self.unacked.front() else {
            return;
        };
        let count = usize::from(nr.wrapping_sub(first.ns));
        let sent = self.unacked.iter().take_while(|p| p.ever).count();
        if count == 0 || count > sent {
            return;
        }
        for _ in 0..count {
            self.unacked.pop_front();
            if self.cwnd < self.ssthresh {
                self.cwnd += 1;
            } else {
                self.ca_acks += 1;
                if self.ca_acks >= self.cwnd {
                    self.ca_acks = 0;
                    self.cwnd = (self.cwnd + 1).min(self.peer_rws);
                }
            }
        }
        self.cwnd = self.cwnd.min(self.peer_rws);
        self.retries = 0;
        self.rto = self.base;
        self.deadline = if self.unacked.iter().any(|p| p.ever) {
            Some(now + self.rto)
        } else {
            None
        };
    }

    /// The next message to put on the wire (new, or a retransmission), with the current Nr.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let window = usize::from(self.cwnd.min(self.peer_rws));
        let nr = self.expected;
        let p = self.unacked.iter_mut().take(window).find(|p| !p.sent)?;
        p.sent = true;
        p.ever = true;
        if let Some(b) = p.bytes.get_mut(NR_AT..NR_AT + 2) {
            b.copy_from_slice(&nr.to_be_bytes());
        }
        self.ack_pending = false;
        if self.deadline.is_none() {
            self.deadline = Some(now + self.rto);
        }
        Some(p.bytes.clone())
    }

    /// True (once) when the peer is owed an acknowledgement that no message carried.
    pub(crate) fn take_ack(&mut self) -> bool {
        std::mem::take(&mut self.ack_pending)
    }

    /// When the retransmission timer fires.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True when every queued message has been acknowledged.
    pub(crate) fn all_acked(&self) -> bool {
        self.unacked.is_empty()
    }

    /// Fires the retransmission timer if due: collapses the window and resends the oldest
    /// message after an exponentially growing, capped interval.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Result<(), Exhausted> {
        match self.deadline {
            Some(d) if d <= now => {}
            _ => return Ok(()),
        }
        if self.retries >= self.max_retransmits {
            self.deadline = None;
            return Err(Exhausted {
                retransmits: self.retries,
            });
        }
        self.retries += 1;
        self.retransmissions += 1;
        self.ssthresh = (self.cwnd / 2).max(1);
        self.cwnd = 1;
        self.ca_acks = 0;
        for p in &mut self.unacked {
            p.sent = false;
        }
        self.rto = (self.rto * 2).min(self.cap);
        self.deadline = Some(now + self.rto);
        Ok(())
    }

    /// Current congestion window (for tests).
    #[cfg(test)]
    pub(crate) fn cwnd(&self) -> u16 {
        self.cwnd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Vec<u8> {
        vec![0xc8, 0x02, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0]
    }

    fn ns_of(b: &[u8]) -> u16 {
        u16::from_be_bytes([b[8], b[9]])
    }

    #[test]
    fn slow_start_then_congestion_avoidance() {
        let t = Instant::now();
        let mut r = Reliable::new(8, Duration::from_secs(1), Duration::from_secs(8), 5);
        r.set_peer_window(8);
        for _ in 0..20 {
            r.push(msg());
        }
        // cwnd 1: one message in flight.
        assert_eq!(ns_of(&r.poll_transmit(t).unwrap()), 0);
        assert!(r.poll_transmit(t).is_none());
        r.on_packet(t, 0, 1, true, &[]);
        assert_eq!(r.cwnd(), 2);
        assert!(
            r.poll_transmit(t).is_some()
                && r.poll_transmit(t).is_some()
                && r.poll_transmit(t).is_none()
        );
        r.on_packet(t, 0, 3, true, &[]);
        assert_eq!(r.cwnd(), 4);
        // Loss: window collapses to 1 and ssthresh halves.
        for _ in 0..4 {
            r.poll_transmit(t).unwrap();
        }
        r.on_timeout(t + Duration::from_secs(1)).unwrap();
        assert_eq!(r.cwnd(), 1);
        assert_eq!(ns_of(&r.poll_transmit(t).unwrap()), 3);
        assert!(r.poll_transmit(t).is_none());
        r.on_packet(t, 0, 4, true, &[]); // cwnd 2 == ssthresh
        assert_eq!(r.cwnd(), 2);
        r.poll_transmit(t).unwrap();
        r.poll_transmit(t).unwrap();
        r.on_packet(t, 0, 6, true, &[]); // congestion avoidance: +1 per window
        assert_eq!(r.cwnd(), 3);
    }

    #[test]
    fn backoff_doubles_up_to_cap_then_gives_up() {
        let t0 = Instant::now();
        let mut r = Reliable::new(4, Duration::from_secs(1), Duration::from_secs(8), 5);
        r.push(msg());
        r.poll_transmit(t0).unwrap();
        let mut sends = vec![0u64];
        let now = loop {
            let now = r.deadline().unwrap();
            match r.on_timeout(now) {
                Ok(()) => {
                    r.poll_transmit(now).unwrap();
                    sends.push((now - t0).as_secs());
                }
                Err(e) => {
                    assert_eq!(e.retransmits, 5);
                    break now;
                }
            }
        };
        assert_eq!(sends, vec![0, 1, 3, 7, 15, 23]);
        assert_eq!((now - t0).as_secs(), 31);
    }

    #[test]
    fn receive_side_orders_and_deduplicates() {
        let t = Instant::now();
        let mut r = Reliable::new(4, Duration::from_secs(1), Duration::from_secs(8), 5);
        assert_eq!(r.on_packet(t, 1, 0, false, b"one"), Rx::Buffered);
        assert_eq!(r.on_packet(t, 1, 0, false, b"one"), Rx::Buffered);
        assert_eq!(r.on_packet(t, 9, 0, false, b"far"), Rx::Dropped);
        assert_eq!(r.on_packet(t, 0, 0, false, b"zero"), Rx::Deliver);
        assert_eq!(r.pop_buffered().as_deref(), Some(&b"one"[..]));
        assert_eq!(r.pop_buffered(), None);
        assert_eq!(r.on_packet(t, 0, 0, false, b"zero"), Rx::Duplicate);
        assert!(r.take_ack());
        assert!(!r.take_ack());
        assert_eq!(r.ns_nr(), (0, 2));
    }

    #[test]
    fn bogus_acks_are_ignored() {
        let t = Instant::now();
        let mut r = Reliable::new(4, Duration::from_secs(1), Duration::from_secs(8), 5);
        r.push(msg());
        r.push(msg());
        r.poll_transmit(t).unwrap();
        // Acks for a message never sent are ignored.
        r.on_packet(t, 0, 2, true, &[]);
        assert!(!r.all_acked());
        r.on_packet(t, 0, 1, true, &[]);
        r.poll_transmit(t).unwrap();
        r.on_packet(t, 0, 2, true, &[]);
        assert!(r.all_acked());
        assert_eq!(r.deadline(), None);
        assert!(seq_lt(65535, 0) && !seq_lt(0, 65535));
    }
}
