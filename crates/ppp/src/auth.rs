//! The authenticatee side of PAP (RFC 1334), CHAP-MD5 (RFC 1994), MS-CHAPv1 (RFC 2433) and
//! MS-CHAPv2 (RFC 2759).

use std::time::{Duration, Instant};

use l2sec_crypto::Rng;
use zeroize::Zeroizing;

use crate::mschap;
use crate::types::{AuthMethod, DownReason};
use crate::wire::{CpPacket, PROTO_CHAP, PROTO_PAP};

/// PAP Authenticate-Request.
pub const PAP_REQ: u8 = 1;
/// PAP Authenticate-Ack.
pub const PAP_ACK: u8 = 2;
/// PAP Authenticate-Nak.
pub const PAP_NAK: u8 = 3;
/// CHAP Challenge.
pub const CHAP_CHALLENGE: u8 = 1;
/// CHAP Response.
pub const CHAP_RESPONSE: u8 = 2;
/// CHAP Success.
pub const CHAP_SUCCESS: u8 = 3;
/// CHAP Failure.
pub const CHAP_FAILURE: u8 = 4;

/// How an authentication exchange ended.
pub type AuthResult = Result<(), DownReason>;

struct LastResponse {
    id: u8,
    challenge: Vec<u8>,
    packet: Vec<u8>,
    expect: Option<[u8; 20]>,
    answered: bool,
}

/// One authentication run as the authenticatee.
pub struct Authenticatee {
    method: AuthMethod,
    user: String,
    password: Zeroizing<String>,
    restart: Duration,
    tries_left: u32,
    retransmit: Option<Instant>,
    give_up: Option<Instant>,
    pap: Option<(u8, Vec<u8>)>,
    last: Option<LastResponse>,
    done: bool,
    tx: Vec<(u16, Vec<u8>)>,
}

impl Authenticatee {
    /// Starts `method`; PAP sends its first Authenticate-Request at once.
    pub fn start(
        method: AuthMethod,
        user: &str,
        password: &Zeroizing<String>,
        now: Instant,
        restart: Duration,
        tries: u32,
        first_id: u8,
    ) -> Self {
        let mut a = Self {
            method,
            user: user.to_owned(),
            password: password.clone(),
            restart,
            tries_left: tries.max(1),
            retransmit: None,
            give_up: Some(now + restart * tries.max(1)),
            pap: None,
            last: None,
            done: false,
            tx: Vec::new(),
        };
        if method == AuthMethod::Pap {
            let u = &user.as_bytes()[..user.len().min(255)];
            let p = &password.as_bytes()[..password.len().min(255)];
            let mut data = Vec::with_capacity(2 + u.len() + p.len());
            data.push(u.len() as u8);
            data.extend_from_slice(u);
            data.push(p.len() as u8);
            data.extend_from_slice(p);
            let pkt = CpPacket::emit(PAP_REQ, first_id, &data);
            a.pap = Some((first_id, pkt));
            a.send_pap(now);
        }
        a
    }

    /// Method in use.
    #[must_use]
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// Frames to send: (protocol, control packet).
    pub fn take_tx(&mut self) -> Vec<(u16, Vec<u8>)> {
        std::mem::take(&mut self.tx)
    }

    /// Next timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        match (self.retransmit, self.give_up) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn send_pap(&mut self, now: Instant) {
        if let Some((_, pkt)) = &self.pap {
            self.tx.push((PROTO_PAP, pkt.clone()));
            self.tries_left = self.tries_left.saturating_sub(1);
            self.retransmit = (self.tries_left > 0).then(|| now + self.restart);
        }
    }

    /// Timer expiry: PAP retransmission, or the overall give-up.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<AuthResult> {
        if self.done {
            return None;
        }
        if self.give_up.is_some_and(|g| now >= g) {
            self.done = true;
            return Some(Err(DownReason::AuthTimeout));
        }
        if self.retransmit.is_some_and(|r| now >= r) {
            if self.pap.is_some() {
                self.send_pap(now);
            } else if let Some(l) = self.last.as_ref().filter(|l| !l.answered) {
                // RFC 1994 4.1: an authenticator answers a repeated Response with the same
                // Success/Failure, which recovers a lost Success on the unreliable data channel
                self.tx.push((PROTO_CHAP, l.packet.clone()));
                self.retransmit = Some(now + self.restart);
            } else {
                self.retransmit = None;
            }
        }
        None
    }

    /// A PAP or CHAP packet from the authenticator.
    pub fn input(
        &mut self,
        now: Instant,
        protocol: u16,
        pkt: &CpPacket<'_>,
        rng: &mut dyn Rng,
    ) -> Option<AuthResult> {
        match (protocol, self.method) {
            (PROTO_PAP, AuthMethod::Pap) => self.pap_input(pkt),
            (PROTO_CHAP, AuthMethod::Chap | AuthMethod::MsChapV1 | AuthMethod::MsChapV2) => {
                self.chap_input(now, pkt, rng)
            }
            _ => None,
        }
    }

    fn finish(&mut self, r: AuthResult) -> Option<AuthResult> {
        self.done = true;
        self.retransmit = None;
        self.give_up = None;
        Some(r)
    }

    fn pap_input(&mut self, pkt: &CpPacket<'_>) -> Option<AuthResult> {
        let id = self.pap.as_ref()?.0;
        if self.done || pkt.id != id {
            return None;
        }
        let message = pkt
            .data
            .split_first()
            .map(|(&n, rest)| {
                String::from_utf8_lossy(&rest[..rest.len().min(usize::from(n))]).into_owned()
            })
            .unwrap_or_default();
        match pkt.code {
            PAP_ACK => self.finish(Ok(())),
            PAP_NAK => self.finish(Err(DownReason::AuthFailed {
                method: AuthMethod::Pap,
                message,
            })),
            _ => None,
        }
    }

    fn chap_input(
        &mut self,
        now: Instant,
        pkt: &CpPacket<'_>,
        rng: &mut dyn Rng,
    ) -> Option<AuthResult> {
        match pkt.code {
            CHAP_CHALLENGE => {
                self.challenge(now, pkt, rng);
                None
            }
            CHAP_SUCCESS | CHAP_FAILURE => {
                let last = self.last.as_mut()?;
                if pkt.id != last.id || last.answered {
                    return None;
                }
                last.answered = true;
                let expect = last.expect;
                let message = String::from_utf8_lossy(pkt.data)
                    .trim_end_matches('\0')
                    .to_string();
                if pkt.code == CHAP_FAILURE {
                    return self.finish(Err(DownReason::AuthFailed {
                        method: self.method,
                        message,
                    }));
                }
                if let Some(expect) = expect {
                    if mschap::parse_authenticator_response(pkt.data) != Some(expect) {
                        return self.finish(Err(DownReason::AuthResponseMismatch));
                    }
                }
                self.finish(Ok(()))
            }
            _ => None,
        }
    }

    fn challenge(&mut self, now: Instant, pkt: &CpPacket<'_>, rng: &mut dyn Rng) {
        let Some((&size, rest)) = pkt.data.split_first() else {
            return;
        };
        let Some(challenge) = rest.get(..usize::from(size)) else {
            return;
        };
        if let Some(l) = &self.last {
            if l.id == pkt.id && l.challenge == challenge && !l.answered {
                // retransmitted challenge: the same answer again
                self.tx.push((PROTO_CHAP, l.packet.clone()));
                return;
            }
        }
        let pw = self.password.as_str();
        let mut expect = None;
        let value: Zeroizing<Vec<u8>> = match self.method {
            AuthMethod::Chap => {
                if challenge.is_empty() {
                    return;
                }
                Zeroizing::new(mschap::chap_md5_response(pkt.id, pw.as_bytes(), challenge).to_vec())
            }
            AuthMethod::MsChapV2 => {
                let Ok(auth) = <[u8; 16]>::try_from(challenge) else {
                    return;
                };
                let mut peer = [0u8; 16];
                rng.fill(&mut peer);
                let nt = mschap::generate_nt_response(&auth, &peer, &self.user, pw);
                expect = Some(mschap::authenticator_response(
                    pw, &nt, &peer, &auth, &self.user,
                ));
                let mut v = Vec::with_capacity(49);
                v.extend_from_slice(&peer);
                v.extend_from_slice(&[0; 8]);
                v.extend_from_slice(&nt);
                v.push(0);
                Zeroizing::new(v)
            }
            AuthMethod::MsChapV1 => {
                let Ok(ch) = <[u8; 8]>::try_from(challenge) else {
                    return;
                };
                let mut v = vec![0u8; 24];
                v.extend_from_slice(&mschap::mschapv1_nt_response(&ch, pw));
                v.push(1);
                Zeroizing::new(v)
            }
            AuthMethod::Pap => return,
        };
        let name = &self.user.as_bytes()[..self.user.len().min(1000)];
        let mut data = Vec::with_capacity(1 + value.len() + name.len());
        data.push(value.len() as u8);
        data.extend_from_slice(&value);
        data.extend_from_slice(name);
        let packet = CpPacket::emit(CHAP_RESPONSE, pkt.id, &data);
        self.tx.push((PROTO_CHAP, packet.clone()));
        self.retransmit = Some(now + self.restart);
        if self.done {
            // a re-challenge on an established link (RFC 1994 allows it) gets a fresh time limit
            self.done = false;
            self.give_up = Some(now + self.restart * self.tries_left.max(1));
        }
        self.last = Some(LastResponse {
            id: pkt.id,
            challenge: challenge.to_vec(),
            packet,
            expect,
            answered: false,
        });
    }
}

impl std::fmt::Debug for Authenticatee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticatee")
            .field("method", &self.method)
            .field("user", &self.user)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
