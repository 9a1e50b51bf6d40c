//! One connection attempt: IKE -> ESP -> L2TP -> PPP -> host, and the data path, in one task.
//!
//! Every protocol machine is sans-IO; this module owns the sockets and the TUN device and moves
//! bytes between them. The loop is: flush what the machines want to send, act on their events,
//! then wait for the first of socket input, TUN input, a timer or a stop request.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use l2sec_esp::{Encapsulation, Sa, SaPair, SealJob, Udp4500};
use l2sec_ike::{IkePort, Initiator};
use l2sec_l2tp::{Lac, SessionHandle};
use l2sec_ppp::{Link, Packet};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::UdpSocket;
use tracing::{debug, info, trace, warn};

use crate::api::{ConnectError, ErrorKind, Stage, UpInfo};
use crate::host::HostState;
use crate::plan::Plan;
use crate::{Ctx, Stop};

mod batch;
mod offload;
#[cfg(test)]
mod tuntest;

use batch::{RxBatch, TxBatch};

/// L2TP's UDP port.
const L2TP_PORT: u16 = 1701;
/// Room kept in front of a packet read from the TUN device for ESP + UDP + L2TP + PPP headers.
const HEADROOM: usize = 96;
/// Room after it for the ESP trailer (padding, pad length, next header, ICV).
const TAILROOM: usize = 64;
/// Largest IP packet we read from the TUN device.
const MAX_PACKET: usize = 65535;
/// How long a stage may take before we give up on an attempt.
const STAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an orderly teardown may take in all.
const CLOSE_BUDGET: Duration = Duration::from_millis(2800);
/// How long the previous ESP SA stays valid for inbound packets after a rekey.
const REKEY_GRACE: Duration = Duration::from_secs(30);
/// How often the byte counters of `l2sec status` are refreshed.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Packets handled per wake-up of one source before the loop looks at the others.
const BATCH: usize = batch::CAP;
/// Bytes in each slot of the data path's batches: a whole packet of the largest TUN MTU with
/// room for our headers (outbound), or the largest datagram a socket can deliver (inbound).
/// Slots are large but only the bytes of real packets are ever touched.
const SLOT: usize = (HEADROOM + MAX_PACKET + TAILROOM).next_multiple_of(256);
/// TUN reads, or segments of TCP super-packets with offload, handled per wake-up (several
/// batches).
const TUN_BUDGET: usize = 4 * BATCH;

/// How an attempt ended without an error.
pub(crate) enum Ended {
    /// The user asked to disconnect; teardown is done.
    Requested,
}

/// The IPsec part of a connection.
struct Ipsec {
    init: Initiator,
    s500: UdpSocket,
    s4500: UdpSocket,
    raw: Option<AsyncFd<socket2::Socket>>,
    esp: Option<SaPair>,
    encap: Encapsulation,
    ike_proposal: Option<String>,
    esp_proposal: Option<String>,
    retire_at: Option<Instant>,
    closed: bool,
}

/// Where the teardown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Waiting for PPP to terminate.
    Ppp,
    /// Waiting for the StopCCN to be acknowledged.
    L2tp,
    /// Waiting for IKE deletes to go out.
    Ike,
}

pub(crate) struct Conn<'a> {
    ctx: &'a mut Ctx,
    host: &'a mut HostState,
    plan: &'a Plan,
    server: IpAddr,
    ipsec: Option<Ipsec>,
    /// Plain L2TP socket (IPsec disabled).
    plain: Option<UdpSocket>,
    /// Where the LNS sends from (it may move off 1701 after SCCRP).
    l2tp_peer_port: u16,
    lac: Lac,
    session: Option<SessionHandle>,
    ppp: Link,
    stage: Stage,
    stage_deadline: Instant,
    closing: Option<(Closing, Instant, Instant)>,
    up: bool,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Datagrams received by one `recvmmsg` (allocated on first use).
    rxb: RxBatch,
    /// Data packets read from the TUN device in one wake-up, framed, waiting to be sealed and
    /// sent with one `sendmmsg` (allocated when the link comes up).
    txb: Option<TxBatch>,
    /// The data socket (UDP 4500, or plain L2TP) takes UDP GSO messages.
    gso: bool,
    /// The TUN device hands over TCP super-packets and partial checksums (see
    /// [`l2sec_netcfg::Tun::enable_offload`]); they are read into `tun_buf`.
    tun_offload: bool,
    tun_buf: Vec<u8>,
    /// Joins the TCP segments of one receive batch for the TUN device (when it has a
    /// virtio-net header); flushed at the end of every batch.
    gro: Option<offload::Gro>,
    next_status: Instant,
    /// Link-local addresses (ours, the server's) once IPV6CP is open.
    ipv6: Option<(std::net::Ipv6Addr, std::net::Ipv6Addr)>,
}

fn ioerr(stage: Stage, what: &str, e: &io::Error) -> ConnectError {
    let kind = if e.kind() == io::ErrorKind::PermissionDenied {
        ErrorKind::Host
    } else {
        ErrorKind::Remote
    };
    let mut err = ConnectError::new(stage, kind, format!("{what}: {e}"));
    if e.kind() == io::ErrorKind::PermissionDenied {
        err = err.with_hint(
            "run l2sec as root or give it CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE",
        );
    }
    err
}

/// Binds UDP `port` if free (servers expect 500/4500 from clients), else an ephemeral port.
async fn bind_udp(local: IpAddr, port: u16, peer: SocketAddr) -> io::Result<UdpSocket> {
    let sock = match UdpSocket::bind(SocketAddr::new(local, port)).await {
        Ok(s) => s,
        Err(e) => {
            debug!("cannot bind UDP {port} ({e}); using an ephemeral port");
            UdpSocket::bind(SocketAddr::new(local, 0)).await?
        }
    };
    sock.connect(peer).await?;
    Ok(sock)
}

/// Gives a data socket large buffers ([`batch::size_buffers`]); a refusal only costs speed.
fn buffers(sock: &impl std::os::fd::AsFd, what: &str) {
    match batch::size_buffers(sock) {
        Ok(n) => debug!("{what} socket: receive buffer {n} bytes"),
        Err(e) => debug!("{what} socket: cannot enlarge the buffers: {e}"),
    }
}

/// The local address the kernel would use to reach `server`.
async fn source_for(server: IpAddr) -> io::Result<IpAddr> {
    let any: IpAddr = if server.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let probe = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    probe.connect(SocketAddr::new(server, 500)).await?;
    Ok(probe.local_addr()?.ip())
}

async fn readable_udp(s: Option<&UdpSocket>) -> io::Result<()> {
    match s {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

// The readiness stays set until a read returns `WouldBlock` (the handlers read through
// `try_io`): a source with more queued than one batch is served again on the next turn.
async fn readable_raw(s: Option<&AsyncFd<socket2::Socket>>) -> io::Result<()> {
    match s {
        Some(s) => s.readable().await.map(drop),
        None => std::future::pending().await,
    }
}

async fn readable_tun(t: Option<&AsyncFd<l2sec_netcfg::Tun>>) -> io::Result<()> {
    match t {
        Some(t) => t.readable().await.map(drop),
        None => std::future::pending().await,
    }
}

impl<'a> Conn<'a> {
    /// Resolves nothing: `server` is already an address. Opens the sockets and starts IKE (or
    /// L2TP directly when IPsec is off).
    pub(crate) async fn start(
        ctx: &'a mut Ctx,
        host: &'a mut HostState,
        plan: &'a Plan,
        server: IpAddr,
    ) -> Result<Conn<'a>, ConnectError> {
        let now = Instant::now();
        let local = source_for(server)
            .await
            .map_err(|e| ioerr(Stage::Resolving, &format!("no route to {server}"), &e))?;
        let lac = Lac::new(plan.l2tp.clone(), Box::new(l2sec_crypto::OsRng), now);
        let ppp = Link::new(plan.ppp.clone(), Box::new(l2sec_crypto::OsRng), now);
        let mut conn = Conn {
            ctx,
            host,
            plan,
            server,
            ipsec: None,
            plain: None,
            l2tp_peer_port: L2TP_PORT,
            lac,
            session: None,
            ppp,
            stage: Stage::Resolving,
            stage_deadline: now + STAGE_TIMEOUT,
            closing: None,
            up: false,
            rx: vec![0; HEADROOM + MAX_PACKET + TAILROOM],
            tx: vec![0; HEADROOM + MAX_PACKET + TAILROOM],
            rxb: RxBatch::default(),
            txb: None,
            gso: false,
            tun_offload: false,
            tun_buf: Vec::new(),
            gro: None,
            next_status: now + STATUS_INTERVAL,
            ipv6: None,
        };
        match &plan.ike {
            Some(ike) => {
                let s500 = bind_udp(local, 500, SocketAddr::new(server, 500))
                    .await
                    .map_err(|e| ioerr(Stage::IkePhase1, "cannot open the IKE socket", &e))?;
                let s4500 = bind_udp(local, 4500, SocketAddr::new(server, 4500))
                    .await
                    .map_err(|e| ioerr(Stage::IkePhase1, "cannot open the NAT-T socket", &e))?;
                buffers(&s4500, "NAT-T");
                conn.gso = batch::gso_supported(&s4500);
                if !batch::enable_gro(&s4500) {
                    debug!("UDP GRO is not available on the NAT-T socket");
                }
                let l500 = s500
                    .local_addr()
                    .map_err(|e| ioerr(Stage::IkePhase1, "socket", &e))?;
                let l4500 = s4500
                    .local_addr()
                    .map_err(|e| ioerr(Stage::IkePhase1, "socket", &e))?;
                let init = Initiator::new(
                    ike.clone(),
                    l500,
                    SocketAddr::new(server, 500),
                    (l4500.port(), 4500),
                    Box::new(l2sec_crypto::OsRng),
                    now,
                )
                .map_err(|e| {
                    let hint = e.hint().map(str::to_string);
                    let mut c =
                        ConnectError::new(Stage::IkePhase1, ErrorKind::Config, e.to_string());
                    c.hint = hint;
                    c
                })?;
                conn.ipsec = Some(Ipsec {
                    init,
                    s500,
                    s4500,
                    raw: None,
                    esp: None,
                    encap: Encapsulation::Udp {
                        local_port: l4500.port(),
                        remote_port: 4500,
                    },
                    ike_proposal: None,
                    esp_proposal: None,
                    retire_at: None,
                    closed: false,
                });
                conn.enter(Stage::IkePhase1, format!("{local} -> {server}"));
            }
            None => {
                let sock = match UdpSocket::bind(SocketAddr::new(local, L2TP_PORT)).await {
                    Ok(s) => s,
                    Err(_) => UdpSocket::bind(SocketAddr::new(local, 0))
                        .await
                        .map_err(|e| ioerr(Stage::L2tpTunnel, "cannot open the L2TP socket", &e))?,
                };
                buffers(&sock, "L2TP");
                conn.gso = batch::gso_supported(&sock);
                if !batch::enable_gro(&sock) {
                    debug!("UDP GRO is not available on the L2TP socket");
                }
                conn.plain = Some(sock);
                conn.enter(
                    Stage::L2tpTunnel,
                    format!("plain L2TP (no IPsec) {local} -> {server}"),
                );
                conn.lac.connect(now);
            }
        }
        Ok(conn)
    }

    /// Moves to `stage`; reports it when there is something to say.
    fn enter(&mut self, stage: Stage, detail: String) {
        self.stage = stage;
        self.stage_deadline = Instant::now() + STAGE_TIMEOUT;
        if !detail.is_empty() {
            self.ctx.stage(stage, detail);
        }
    }

    fn fail(&self, kind: ErrorKind, cause: impl Into<String>) -> ConnectError {
        ConnectError::new(self.stage, kind, cause)
    }

    /// Runs the connection until it fails or the user stops it. After a failure past IKE (a
    /// refused password, a PPP or host error) the server still gets an orderly goodbye (CDN,
    /// StopCCN, IKE delete) within the close budget, unless the failure is that it is gone:
    /// an LNS left with a half-open tunnel (xl2tpd retrying its CDN for half a minute) would
    /// otherwise hand the next connection from the same address and port to the old tunnel.
    pub(crate) async fn run(mut self, stop: &mut Stop) -> Result<Ended, ConnectError> {
        match self.run_loop(stop).await {
            Err(e)
                if self.closing.is_none() && e.kind != ErrorKind::Lost && self.l2tp_started() =>
            {
                debug!("saying goodbye to the server after: {e}");
                self.begin_close(Instant::now(), false);
                // until the goodbye is acknowledged or its budget runs out; errors now are moot
                let _ = self.run_loop(stop).await;
                Err(e)
            }
            other => other,
        }
    }

    /// True once the L2TP tunnel has been asked for (there is something to close).
    fn l2tp_started(&self) -> bool {
        !matches!(
            self.stage,
            Stage::Setup | Stage::Resolving | Stage::IkePhase1 | Stage::QuickMode
        )
    }

    async fn run_loop(&mut self, stop: &mut Stop) -> Result<Ended, ConnectError> {
        loop {
            let now = Instant::now();
            self.flush(now).await?;
            self.process_events(now)?;
            // Events can queue more output (e.g. SessionUp -> LCP Configure-Request).
            self.flush(now).await?;
            if let Some(end) = self.check_closing(now) {
                return Ok(end);
            }
            if now >= self.next_status {
                self.ctx.sync_counters();
                self.next_status = now + STATUS_INTERVAL;
            }
            self.esp_events();
            let deadline = self.next_deadline().min(self.next_status);
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            let (s500, s4500) = match &self.ipsec {
                Some(i) => (Some(&i.s500), Some(&i.s4500)),
                None => (None, None),
            };
            let raw = self.ipsec.as_ref().and_then(|i| i.raw.as_ref());
            let tun = if self.up { self.host.tun() } else { None };
            tokio::select! {
                biased;
                () = stop.requested() => {
                    if self.closing.is_none() {
                        self.begin_close(Instant::now(), true);
                    }
                }
                r = readable_udp(s4500) => { r.map_err(|e| ioerr(self.stage, "NAT-T socket", &e))?; self.on_udp4500()?; }
                r = readable_raw(raw) => { r.map_err(|e| ioerr(self.stage, "ESP socket", &e))?; self.on_raw_esp()?; }
                r = readable_udp(s500) => { r.map_err(|e| ioerr(self.stage, "IKE socket", &e))?; self.on_udp500()?; }
                r = readable_udp(self.plain.as_ref()) => { r.map_err(|e| ioerr(self.stage, "L2TP socket", &e))?; self.on_plain_l2tp()?; }
                r = readable_tun(tun) => { r.map_err(|e| ioerr(self.stage, "TUN device", &e))?; self.on_tun()?; }
                () = sleep => { self.on_timeout(Instant::now())?; }
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut d = if self.up {
            Instant::now() + Duration::from_secs(3600)
        } else {
            self.stage_deadline
        };
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                d = d.min(t);
            }
        };
        if let Some(i) = &self.ipsec {
            take(i.init.poll_timeout());
            take(i.retire_at);
        }
        take(self.lac.poll_timeout());
        take(self.ppp.poll_timeout());
        take(self.closing.map(|(_, step, _)| step));
        d
    }

    fn on_timeout(&mut self, now: Instant) -> Result<(), ConnectError> {
        if let Some(i) = &mut self.ipsec {
            i.init.handle_timeout(now);
            if i.retire_at.is_some_and(|t| t <= now) {
                i.retire_at = None;
                if let Some(p) = &mut i.esp {
                    p.retire_previous();
                }
            }
        }
        self.lac.handle_timeout(now);
        self.ppp.handle_timeout(now);
        if let Some((step, step_deadline, _)) = self.closing {
            if step_deadline <= now {
                self.advance_close(step, now);
            }
        } else if !self.up && now >= self.stage_deadline {
            return Err(self.fail(
                ErrorKind::Remote,
                format!("no progress for {} s", STAGE_TIMEOUT.as_secs()),
            ));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- teardown

    /// Starts the orderly teardown; `announce` reports the teardown stage (not after a
    /// failure, whose error line is what the user needs to see).
    fn begin_close(&mut self, now: Instant, announce: bool) {
        if announce {
            self.ctx.stage(Stage::Teardown, "disconnecting".into());
        }
        let end = now + CLOSE_BUDGET;
        if self.session.is_some() && self.ppp.phase() != l2sec_ppp::Phase::Dead {
            self.ppp.close(now);
            self.closing = Some((Closing::Ppp, now + Duration::from_millis(1000), end));
        } else {
            self.advance_close(Closing::Ppp, now);
            if let Some((s, t, _)) = self.closing {
                self.closing = Some((s, t, end));
            }
        }
    }

    fn advance_close(&mut self, from: Closing, now: Instant) {
        let end = self.closing.map_or(now + CLOSE_BUDGET, |c| c.2);
        match from {
            Closing::Ppp => {
                self.lac.close(now);
                self.closing = Some((
                    Closing::L2tp,
                    (now + Duration::from_millis(1200)).min(end),
                    end,
                ));
            }
            Closing::L2tp => {
                if let Some(i) = &mut self.ipsec {
                    i.init.close(now);
                    self.closing = Some((
                        Closing::Ike,
                        (now + Duration::from_millis(500)).min(end),
                        end,
                    ));
                } else {
                    self.closing = Some((Closing::Ike, now, end));
                }
            }
            Closing::Ike => {
                if let Some(i) = &mut self.ipsec {
                    i.closed = true;
                }
                self.closing = Some((Closing::Ike, now, end));
            }
        }
    }

    fn check_closing(&mut self, now: Instant) -> Option<Ended> {
        let (step, _, end) = self.closing?;
        let ike_done = self.ipsec.as_ref().is_none_or(|i| i.closed);
        if (step == Closing::Ike && ike_done) || now >= end {
            return Some(Ended::Requested);
        }
        None
    }

    // ---------------------------------------------------------------- events

    fn process_events(&mut self, now: Instant) -> Result<(), ConnectError> {
        self.ike_events(now)?;
        self.l2tp_events(now)?;
        self.ppp_events(now)
    }

    /// Volume and sequence-number limits of the ESP SAs.
    fn esp_events(&mut self) {
        let Some(i) = &mut self.ipsec else { return };
        let Some(pair) = &mut i.esp else { return };
        while let Some(ev) = pair.poll_event() {
            match ev {
                l2sec_esp::Event::RekeyNeeded { spi_out }
                | l2sec_esp::Event::HardLimit { spi_out } => {
                    info!("ESP SA {spi_out:#010x} reached its volume limit: rekeying");
                    i.init.rekey_child(Instant::now());
                }
                other => debug!("ESP event {other:?}"),
            }
        }
    }

    fn ike_events(&mut self, now: Instant) -> Result<(), ConnectError> {
        loop {
            let Some(i) = &mut self.ipsec else {
                return Ok(());
            };
            let Some(ev) = i.init.poll_event() else {
                return Ok(());
            };
            match ev {
                l2sec_ike::Event::Phase1Done { proposal, nat, .. } => {
                    i.ike_proposal = Some(proposal.clone());
                    let nat_s = if nat.local_behind_nat || nat.remote_behind_nat {
                        ", NAT detected"
                    } else if nat.encap {
                        ", UDP encapsulation"
                    } else {
                        ""
                    };
                    // A legacy choice arrives separately, as the IKE machine's own warning.
                    self.ctx
                        .stage(Stage::IkePhase1, format!("{proposal}{nat_s}"));
                    self.enter(Stage::QuickMode, "ESP transport mode, UDP/1701".into());
                }
                l2sec_ike::Event::ChildSaReady { sa, proposal, .. } => {
                    let encap = sa.encap;
                    let new =
                        Sa::new(&sa, self.plan.policy, &mut l2sec_crypto::OsRng).map_err(|e| {
                            self.fail(ErrorKind::Remote, format!("cannot install the ESP SA: {e}"))
                        })?;
                    let i = self.ipsec.as_mut().expect("ipsec present");
                    i.esp_proposal = Some(proposal.clone());
                    i.encap = encap;
                    let first = i.esp.is_none();
                    if let Some(pair) = &mut i.esp {
                        pair.install(new);
                        i.retire_at = Some(now + REKEY_GRACE);
                        info!("ESP SA rekeyed ({proposal})");
                    } else {
                        i.esp = Some(SaPair::new(new));
                    }
                    if encap == Encapsulation::Raw && i.raw.is_none() {
                        i.raw = Some(open_raw_esp(self.server).map_err(|e| {
                            ioerr(
                                Stage::QuickMode,
                                "cannot open a raw ESP socket (protocol 50)",
                                &e,
                            )
                            .with_hint(
                                "give l2sec CAP_NET_RAW, or set force_encap = true in [ipsec]",
                            )
                        })?);
                    }
                    if first {
                        let how = match encap {
                            Encapsulation::Raw => "raw ESP (IP protocol 50)",
                            Encapsulation::Udp { .. } => "ESP in UDP 4500",
                        };
                        self.ctx
                            .stage(Stage::QuickMode, format!("{proposal}, {how}"));
                        self.enter(Stage::L2tpTunnel, "SCCRQ".into());
                        self.lac.connect(now);
                    }
                }
                l2sec_ike::Event::ChildSaDeleted { inbound_spi } => {
                    // The previous SA after a rekey, or the current one (IKE then negotiates a
                    // new one; if the server is gone, DPD and the quick mode timeout say so).
                    if let Some(p) = &mut i.esp {
                        if p.previous().is_some_and(|o| o.spi_in() == inbound_spi) {
                            p.retire_previous();
                        } else if p.current().spi_in() == inbound_spi {
                            info!(
                                "the server deleted the ESP SA {inbound_spi:#010x}; waiting for a new one"
                            );
                        }
                    }
                }
                l2sec_ike::Event::Warning(w) => self.ctx.warn(w),
                l2sec_ike::Event::Failed(e) => {
                    if self.closing.is_some() {
                        i.closed = true;
                        continue;
                    }
                    let stage = if i.ike_proposal.is_some() && i.esp.is_none() {
                        Stage::QuickMode
                    } else if i.esp.is_some() {
                        self.stage
                    } else {
                        Stage::IkePhase1
                    };
                    let kind = if i.esp.is_some() {
                        ErrorKind::Lost
                    } else if matches!(
                        e,
                        l2sec_ike::Error::AuthenticationFailed
                            | l2sec_ike::Error::WrongPsk
                            | l2sec_ike::Error::PskRejectedSilently
                            | l2sec_ike::Error::BadSignature
                            | l2sec_ike::Error::Certificate(_)
                            | l2sec_ike::Error::IdentityMismatch { .. }
                    ) {
                        ErrorKind::Auth
                    } else {
                        ErrorKind::Remote
                    };
                    let mut c = ConnectError::new(stage, kind, e.to_string());
                    c.hint = e.hint().map(str::to_string);
                    return Err(c);
                }
                l2sec_ike::Event::Closed => i.closed = true,
                other => debug!("IKE event {other:?}"),
            }
        }
    }

    fn l2tp_events(&mut self, now: Instant) -> Result<(), ConnectError> {
        while let Some(ev) = self.lac.poll_event() {
            match ev {
                l2sec_l2tp::Event::TunnelUp {
                    peer_host_name,
                    peer_vendor,
                    ..
                } => {
                    let vendor = peer_vendor.map(|v| format!(", {v}")).unwrap_or_default();
                    self.ctx
                        .stage(Stage::L2tpTunnel, format!("LNS {peer_host_name}{vendor}"));
                    if self.closing.is_none() {
                        self.enter(Stage::L2tpCall, "ICRQ".into());
                        let h = self
                            .lac
                            .open_session(now)
                            .map_err(|e| self.fail(ErrorKind::Remote, e.to_string()))?;
                        self.session = Some(h);
                    }
                }
                l2sec_l2tp::Event::SessionUp { session } => {
                    self.session = Some(session);
                    self.ctx.stage(Stage::L2tpCall, "call established".into());
                    self.enter(Stage::Lcp, "Configure-Request".into());
                    self.ppp.open(now);
                }
                l2sec_l2tp::Event::SessionDown { reason, .. } => {
                    if self.closing.is_some() {
                        continue;
                    }
                    if reason.is_authentication_failure() || self.stage == Stage::Authentication {
                        // l2tpns answers bad credentials with a CDN only: let PPP say so.
                        self.ppp.lower_layer_down(now);
                        self.ppp_events(now)?;
                    }
                    let kind = if self.up {
                        ErrorKind::Lost
                    } else {
                        ErrorKind::Remote
                    };
                    return Err(self.fail(kind, reason.to_string()));
                }
                l2sec_l2tp::Event::TunnelDown { reason } => {
                    if self.closing.is_some() {
                        self.advance_close(Closing::L2tp, now);
                        continue;
                    }
                    let kind = if self.up {
                        ErrorKind::Lost
                    } else {
                        ErrorKind::Remote
                    };
                    return Err(self.fail(kind, reason.to_string()));
                }
                l2sec_l2tp::Event::TunnelClosed => {
                    if matches!(self.closing, Some((Closing::L2tp, _, _))) {
                        self.advance_close(Closing::L2tp, now);
                    }
                }
                other => debug!("L2TP event {other:?}"),
            }
        }
        Ok(())
    }

    fn ppp_events(&mut self, now: Instant) -> Result<(), ConnectError> {
        while let Some(ev) = self.ppp.poll_event() {
            match ev {
                l2sec_ppp::Event::LcpUp { mru, peer_mru } => {
                    self.ctx
                        .stage(Stage::Lcp, format!("MRU {mru}, peer MRU {peer_mru}"));
                    self.enter(Stage::Authentication, String::new());
                }
                l2sec_ppp::Event::AuthStarted { method } => {
                    if let Some(h) = self.session {
                        self.lac
                            .set_session_phase(h, l2sec_l2tp::Phase::Authentication);
                    }
                    self.enter(Stage::Authentication, format!("{method}"));
                }
                l2sec_ppp::Event::AuthOk { method } => {
                    if let Some(h) = self.session {
                        self.lac.set_session_phase(h, l2sec_l2tp::Phase::Network);
                    }
                    self.ctx
                        .stage(Stage::Authentication, format!("{method} accepted"));
                    self.enter(Stage::Ipcp, String::new());
                }
                l2sec_ppp::Event::Ipv6Up {
                    local_iid,
                    peer_iid,
                } => {
                    let ll = |iid: [u8; 8]| {
                        let mut b = [0u8; 16];
                        b[0] = 0xfe;
                        b[1] = 0x80;
                        b[8..].copy_from_slice(&iid);
                        std::net::Ipv6Addr::from(b)
                    };
                    self.ipv6 = Some((ll(local_iid), ll(peer_iid)));
                    if self.up {
                        debug!(
                            "IPV6CP opened after IPCP: link-local addresses apply on the next reconnect"
                        );
                    }
                }
                l2sec_ppp::Event::Up {
                    local,
                    peer,
                    dns,
                    mtu,
                } => {
                    self.on_ppp_up(local, peer, dns, mtu)?;
                }
                l2sec_ppp::Event::Down { reason } => {
                    if let Some((Closing::Ppp, _, _)) = self.closing {
                        self.advance_close(Closing::Ppp, now);
                        continue;
                    }
                    if self.closing.is_some() {
                        continue;
                    }
                    let auth = matches!(
                        reason,
                        l2sec_ppp::DownReason::AuthFailed { .. }
                            | l2sec_ppp::DownReason::AuthResponseMismatch
                            | l2sec_ppp::DownReason::AuthMethodRefused { .. }
                            | l2sec_ppp::DownReason::AuthTimeout
                    );
                    let kind = if auth {
                        ErrorKind::Auth
                    } else if self.up {
                        ErrorKind::Lost
                    } else {
                        ErrorKind::Remote
                    };
                    let mut c = self.fail(kind, reason.to_string()).with_hint(reason.hint());
                    if auth {
                        c.stage = Stage::Authentication;
                    }
                    return Err(c);
                }
                other => debug!("PPP event {other:?}"),
            }
        }
        Ok(())
    }

    fn on_ppp_up(
        &mut self,
        local: Ipv4Addr,
        peer: Ipv4Addr,
        dns: Vec<Ipv4Addr>,
        ppp_mtu: u16,
    ) -> Result<(), ConnectError> {
        self.ctx
            .stage(Stage::Ipcp, format!("address {local}, peer {peer}"));
        self.enter(Stage::Host, String::new());
        let mtu = self.tunnel_mtu(ppp_mtu);
        // Servers often hand out the same address as primary and secondary DNS.
        let mut unique: Vec<IpAddr> = Vec::with_capacity(dns.len());
        for d in dns.into_iter().map(IpAddr::V4) {
            if !unique.contains(&d) {
                unique.push(d);
            }
        }
        let dns = unique;
        self.host
            .configure(
                self.plan,
                self.server,
                &crate::host::LinkAddrs {
                    local,
                    peer,
                    ipv6: self.ipv6,
                    dns: dns.clone(),
                    mtu,
                },
            )
            .map_err(|e| {
                ConnectError::new(Stage::Host, ErrorKind::Host, e.to_string())
                    .with_hint("run as root (CAP_NET_ADMIN), or `l2sec cleanup` if a previous run left changes behind")
            })?;
        for w in self.host.warnings() {
            self.ctx.warn(w);
        }
        // Before any application traffic: TCP decides on TSO when a connection starts.
        if let Some(tun) = self.host.tun() {
            match tun.get_ref().enable_offload() {
                Ok(()) => self.tun_offload = true,
                Err(e) => debug!("TUN offload unavailable: {e}"),
            }
            if tun.get_ref().has_vnet_hdr() {
                self.gro = Some(offload::Gro::new());
            }
        }
        self.up = true;
        self.stage = Stage::Up;
        let (ike, esp) = match &self.ipsec {
            Some(i) => (i.ike_proposal.clone(), i.esp_proposal.clone()),
            None => (None, None),
        };
        let info = UpInfo {
            interface: self.host.ifname().to_string(),
            local,
            peer,
            dns,
            mtu,
            elapsed: self.ctx.elapsed(),
            ike,
            esp,
        };
        self.ctx.up(info);
        Ok(())
    }

    /// MTU of the TUN device: what fits in the path MTU after all our headers at their largest
    /// (ESP padding included), no more than the PPP MTU, or the profile's value.
    fn tunnel_mtu(&self, ppp_mtu: u16) -> u16 {
        if let Some(m) = self.plan.mtu {
            return m.min(ppp_mtu);
        }
        let l2tp = self.session.map_or(12, |h| self.lac.data_header_len(h));
        let outer_ip = if self.server.is_ipv4() { 20 } else { 40 };
        let mut overhead = outer_ip + l2tp + 4; // outer IP + L2TP + PPP
        match &self.ipsec {
            Some(i) => {
                if let Some(p) = &i.esp {
                    let sa = p.current();
                    overhead += l2sec_esp::udp::HEADER_LEN + sa.header_len() + sa.max_trailer_len();
                }
                if matches!(i.encap, Encapsulation::Udp { .. }) {
                    overhead += 8;
                }
            }
            None => overhead += 8, // UDP
        }
        let path = l2sec_netcfg::path_mtu(self.server).unwrap_or(1500);
        l2sec_netcfg::mtu_for(overhead, path).min(ppp_mtu)
    }

    // ---------------------------------------------------------------- output

    async fn flush(&mut self, now: Instant) -> Result<(), ConnectError> {
        // IKE
        while let Some(t) = self.ipsec.as_mut().and_then(|i| i.init.poll_transmit(now)) {
            let i = self.ipsec.as_ref().expect("ipsec present");
            let r = match t.port {
                IkePort::Ike => i.s500.send(&t.data).await,
                IkePort::NatT if t.keepalive => i.s4500.send(&t.data).await,
                IkePort::NatT => {
                    let mut m = Vec::with_capacity(4 + t.data.len());
                    m.extend_from_slice(&l2sec_esp::NON_ESP_MARKER);
                    m.extend_from_slice(&t.data);
                    i.s4500.send(&m).await
                }
            };
            if let Err(e) = r {
                debug!("IKE send failed: {e}");
            }
        }
        // L2TP control
        while let Some(msg) = self.lac.poll_transmit(now) {
            let off = HEADROOM;
            self.tx[off..off + msg.len()].copy_from_slice(&msg);
            self.send_l2tp(off, msg.len())?;
        }
        // PPP control
        while let Some(frame) = self.ppp.poll_transmit(now) {
            let Some(h) = self.session else { break };
            let l2h = self.lac.data_header_len(h);
            let off = HEADROOM;
            self.tx[off + l2h..off + l2h + frame.len()].copy_from_slice(&frame);
            let len = self
                .lac
                .write_data_header(h, &mut self.tx[off..off + l2h + frame.len()], frame.len())
                .map_err(|e| self.fail(ErrorKind::Internal, e.to_string()))?;
            self.send_l2tp(off, len)?;
        }
        Ok(())
    }

    /// Sends the L2TP datagram at `tx[off..off + len]`: over ESP when IPsec is on, else plain UDP.
    /// A full socket buffer drops it (L2TP and TCP recover), as a router would.
    fn send_l2tp(&mut self, off: usize, len: usize) -> Result<(), ConnectError> {
        let Some(how) = out_kind(self.ipsec.as_ref(), self.plain.is_some()) else {
            return Ok(());
        };
        let range = seal_l2tp(
            &mut self.tx,
            off,
            len,
            self.ipsec.as_mut(),
            self.l2tp_peer_port,
        )
        .map_err(|e| self.fail(ErrorKind::Internal, e))?;
        let packet = &self.tx[range];
        let res = match how {
            Out::Udp4500 => self.ipsec.as_ref().map(|i| i.s4500.try_send(packet)),
            Out::Raw => self
                .ipsec
                .as_ref()
                .and_then(|i| i.raw.as_ref())
                .map(|r| r.get_ref().send(packet)),
            Out::Plain => self
                .plain
                .as_ref()
                .map(|s| s.try_send_to(packet, SocketAddr::new(self.server, self.l2tp_peer_port))),
        };
        match res {
            Some(Ok(_)) | None => {}
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                trace!("send buffer full: dropped")
            }
            Some(Err(e)) => debug!("send failed: {e}"),
        }
        Ok(())
    }

    /// Seals the datagrams of `txb` and sends them in order with one `sendmmsg` (UDP GSO where
    /// the socket takes it) over the data socket `how`. What does not fit the socket buffer is
    /// dropped, as [`Conn::send_l2tp`] does.
    fn send_batch(&mut self, txb: &mut TxBatch, how: Out) -> Result<(), ConnectError> {
        if let Err(e) = self.seal_queued(txb) {
            return Err(self.fail(ErrorKind::Internal, e));
        }
        let sent = match how {
            Out::Udp4500 => self
                .ipsec
                .as_ref()
                .map(|i| txb.send(&i.s4500, None, self.gso)),
            Out::Raw => self
                .ipsec
                .as_ref()
                .and_then(|i| i.raw.as_ref())
                .map(|r| txb.send(r, None, false)),
            Out::Plain => self.plain.as_ref().map(|s| {
                txb.send(
                    s,
                    Some(SocketAddr::new(self.server, self.l2tp_peer_port)),
                    self.gso,
                )
            }),
        };
        let Some(sent) = sent else {
            return Ok(());
        };
        if sent.full > 0 {
            trace!("send buffer full: dropped {} datagrams", sent.full);
        }
        if let Some(e) = sent.error {
            debug!("send failed: {e} ({} datagrams dropped)", sent.failed);
        }
        if let Some(e) = sent.gso_refused {
            debug!("UDP GSO refused ({e}): sending datagram by datagram");
            self.gso = false;
        }
        Ok(())
    }

    /// Seals the datagrams framed into `txb` (see [`Conn::frame_data`]) with the current SA.
    /// Without an SA (plain L2TP) they are final already.
    fn seal_queued(&mut self, txb: &mut TxBatch) -> Result<(), String> {
        match self.ipsec.as_mut().and_then(|i| i.esp.as_mut()) {
            Some(pair) => seal_batch(pair.current_mut(), txb).map_err(|e| format!("ESP seal: {e}")),
            None => Ok(()),
        }
    }

    // ---------------------------------------------------------------- input

    fn on_udp500(&mut self) -> Result<(), ConnectError> {
        let Some(i) = &mut self.ipsec else {
            return Ok(());
        };
        for _ in 0..BATCH {
            match i.s500.try_recv(&mut self.rx) {
                Ok(n) => i
                    .init
                    .handle_datagram(Instant::now(), IkePort::Ike, &self.rx[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!("IKE socket: {e}");
                    break;
                }
            }
        }
        Ok(())
    }

    /// UDP 4500: up to one batch of datagrams (one `recvmmsg`): ESP, IKE, keepalives.
    fn on_udp4500(&mut self) -> Result<(), ConnectError> {
        self.drain(
            "NAT-T socket",
            |c, rxb| c.ipsec.as_ref().map(|i| rxb.recv(&i.s4500, false)),
            |c, d, _| c.on_udp4500_datagram(d),
        )
    }

    /// Receives one batch with `recv` (`None`: no such socket) and hands each datagram and its
    /// sender to `each`, then flushes what the TUN writer coalesced. Socket errors such as an
    /// ICMP port unreachable (the server may be restarting) are logged and skipped.
    fn drain(
        &mut self,
        what: &str,
        recv: impl FnOnce(&Self, &mut RxBatch) -> Option<io::Result<usize>>,
        mut each: impl FnMut(&mut Self, &mut [u8], Option<SocketAddr>) -> Result<(), ConnectError>,
    ) -> Result<(), ConnectError> {
        let mut rxb = take_rxb(&mut self.rxb);
        let res = match recv(self, &mut rxb) {
            None => Ok(()),
            Some(Ok(_)) => rxb.for_each(|d, from| each(self, d, from)),
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Some(Err(e)) => {
                debug!("{what}: {e}");
                Ok(())
            }
        };
        self.rxb = rxb;
        self.flush_gro();
        res
    }

    fn on_udp4500_datagram(&mut self, d: &mut [u8]) -> Result<(), ConnectError> {
        match l2sec_esp::classify_udp4500(d) {
            Ok(Udp4500::Keepalive) => Ok(()),
            Ok(Udp4500::Ike(_)) => {
                if let Some(i) = &mut self.ipsec {
                    i.init
                        .handle_datagram(Instant::now(), IkePort::NatT, &d[4..]);
                }
                Ok(())
            }
            Ok(Udp4500::Esp(_)) => self.on_esp(d),
            Err(e) => {
                trace!("UDP 4500: {e}");
                Ok(())
            }
        }
    }

    /// Raw ESP (IP protocol 50): up to one batch of packets (one `recvmmsg`).
    fn on_raw_esp(&mut self) -> Result<(), ConnectError> {
        self.drain(
            "raw ESP socket",
            |c, rxb| {
                let raw = c.ipsec.as_ref().and_then(|i| i.raw.as_ref())?;
                Some(rxb.recv(raw, false))
            },
            |c, d, _| match l2sec_esp::strip_ipv4_header(d) {
                Ok(r) => c.on_esp(&mut d[r]),
                Err(_) => Ok(()),
            },
        )
    }

    /// One ESP packet.
    fn on_esp(&mut self, packet: &mut [u8]) -> Result<(), ConnectError> {
        let Some(i) = &mut self.ipsec else {
            return Ok(());
        };
        let Some(pair) = &mut i.esp else {
            return Ok(());
        };
        let opened = match pair.open(packet) {
            Ok(o) => o,
            Err(e) => {
                trace!("ESP packet dropped: {e}");
                return Ok(());
            }
        };
        if opened.next_header != 17 {
            return Ok(());
        }
        let payload = &packet[opened.payload];
        let inner = match l2sec_esp::udp::parse(payload, l2sec_esp::udp::ChecksumCheck::Ignore) {
            Ok(u) => u,
            Err(e) => {
                trace!("inner UDP dropped: {e}");
                return Ok(());
            }
        };
        if inner.dst_port != L2TP_PORT {
            return Ok(());
        }
        self.l2tp_peer_port = inner.src_port;
        self.ctx.bytes_in += payload.len() as u64;
        self.on_l2tp(&payload[inner.payload])
    }

    /// Plain L2TP (no IPsec): up to one batch of datagrams (one `recvmmsg`).
    fn on_plain_l2tp(&mut self) -> Result<(), ConnectError> {
        self.drain(
            "L2TP socket",
            |c, rxb| c.plain.as_ref().map(|s| rxb.recv(s, true)),
            |c, d, from| match from {
                Some(from) if from.ip() == c.server => {
                    c.l2tp_peer_port = from.port();
                    c.ctx.bytes_in += d.len() as u64;
                    c.on_l2tp(d)
                }
                _ => Ok(()),
            },
        )
    }

    /// An L2TP datagram: control messages go to the LAC, data frames to PPP, IP packets to the
    /// TUN device.
    fn on_l2tp(&mut self, datagram: &[u8]) -> Result<(), ConnectError> {
        let now = Instant::now();
        let Some(frame) = self.lac.handle_datagram(now, datagram) else {
            return Ok(());
        };
        let packet = self.ppp.handle_frame(now, frame.payload);
        let ip = match packet {
            Some(Packet::Ipv4(p) | Packet::Ipv6(p)) => p,
            _ => return Ok(()),
        };
        let Some(tun) = self.host.tun() else {
            return Ok(());
        };
        let tun = tun.get_ref();
        match &mut self.gro {
            Some(gro) => gro.push(ip, &mut |h, p| tun_write(tun, h, p)),
            None => tun_write(tun, &[0; l2sec_netcfg::Tun::VNET_HDR_LEN], ip),
        }
        Ok(())
    }

    /// Writes what the coalescer still holds to the TUN device: at the end of every batch.
    fn flush_gro(&mut self) {
        if let (Some(gro), Some(tun)) = (&mut self.gro, self.host.tun()) {
            let tun = tun.get_ref();
            gro.flush(&mut |h, p| tun_write(tun, h, p));
        }
    }

    /// The TUN device: reads up to one batch of IP packets (with offload, up to
    /// [`TUN_BUDGET`] segments of TCP super-packets), frames each in its own slot of the send
    /// batch, and seals and sends them with one `sendmmsg` a batch.
    fn on_tun(&mut self) -> Result<(), ConnectError> {
        let mut txb = self.txb.take().unwrap_or_else(|| TxBatch::new(SLOT));
        let how = out_kind(self.ipsec.as_ref(), self.plain.is_some());
        let mut res = if self.tun_offload {
            self.read_tun_offload(&mut txb, how)
        } else {
            self.read_tun(&mut txb, how)
        };
        if res.is_ok() && txb.len() > 0 {
            if let Some(how) = how {
                res = self.send_batch(&mut txb, how);
            }
        }
        // Nothing framed but unsealed may stay queued.
        txb.clear();
        self.txb = Some(txb);
        res
    }

    /// Fills `txb` from the TUN device without offload: one packet a read, each read straight
    /// into its slot; at most one batch, fewer when the device runs dry. Without a session
    /// or an SA to send with (`how` is `None`), packets are read and dropped.
    fn read_tun(&mut self, txb: &mut TxBatch, how: Option<Out>) -> Result<(), ConnectError> {
        let room = txb.slot_len() - TAILROOM;
        for _ in 0..BATCH {
            if txb.is_full() {
                break;
            }
            let Some(tun) = self.host.tun() else {
                return Ok(());
            };
            let slot = txb.next_slot();
            let n = match tun.try_io(Interest::READABLE, |t| t.read(&mut slot[HEADROOM..room])) {
                Ok(0) => break,
                // The kernel reports a packet's full length even when it did not fit.
                Ok(n) if n > room - HEADROOM => continue,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ioerr(Stage::Up, "TUN device", &e)),
            };
            if how.is_none() {
                continue;
            }
            if let Some(range) = self.frame_data(slot, n)? {
                txb.push(range);
            }
        }
        Ok(())
    }

    /// Fills `txb` from the TUN device with offload on: each read may bring a TCP
    /// super-packet, split here into segments of its MSS, each built in its own slot; the
    /// batch is sent whenever it fills. Stops after [`TUN_BUDGET`] segments or when the
    /// device runs dry.
    fn read_tun_offload(
        &mut self,
        txb: &mut TxBatch,
        how: Option<Out>,
    ) -> Result<(), ConnectError> {
        let mut big = std::mem::take(&mut self.tun_buf);
        if big.len() < MAX_PACKET {
            big = vec![0; MAX_PACKET];
        }
        let res = self.read_tun_offload_into(txb, how, &mut big);
        self.tun_buf = big;
        res
    }

    fn read_tun_offload_into(
        &mut self,
        txb: &mut TxBatch,
        how: Option<Out>,
        big: &mut [u8],
    ) -> Result<(), ConnectError> {
        let room = txb.slot_len() - TAILROOM - HEADROOM;
        let mut budget = TUN_BUDGET;
        while budget > 0 {
            let Some(tun) = self.host.tun() else {
                return Ok(());
            };
            let mut vh = [0u8; l2sec_netcfg::Tun::VNET_HDR_LEN];
            let r = tun.try_io(Interest::READABLE, |t| t.read_vnet(&mut vh, big));
            budget -= 1;
            let n = match r {
                Ok(0) => break,
                // The kernel reports a packet's full length even when it did not fit.
                Ok(n) if n > big.len() => continue,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ioerr(Stage::Up, "TUN device", &e)),
            };
            let Some(how) = how else { continue };
            let vh = offload::VnetHdr::parse(&vh);
            let pkt = &mut big[..n];
            if !vh.is_gso() {
                if let Err(e) = offload::complete_checksum(&vh, pkt) {
                    debug!("TUN packet dropped: {e}");
                    continue;
                }
                if txb.is_full() {
                    self.send_batch(txb, how)?;
                }
                if n > room {
                    continue;
                }
                let slot = txb.next_slot();
                slot[HEADROOM..HEADROOM + n].copy_from_slice(pkt);
                if let Some(range) = self.frame_data(slot, n)? {
                    txb.push(range);
                }
                continue;
            }
            let segs = match offload::Segments::new(&vh, pkt) {
                Ok(s) if s.max_len() <= room => s,
                Ok(_) => {
                    debug!("TUN super-packet dropped: segments larger than a slot");
                    continue;
                }
                Err(e) => {
                    debug!("TUN super-packet dropped: {e}");
                    continue;
                }
            };
            budget = budget.saturating_sub(segs.count() - 1);
            for k in 0..segs.count() {
                if txb.is_full() {
                    self.send_batch(txb, how)?;
                }
                let slot = txb.next_slot();
                let len = segs.write(k, &mut slot[HEADROOM..]);
                if let Some(range) = self.frame_data(slot, len)? {
                    txb.push(range);
                }
            }
        }
        Ok(())
    }

    /// Frames the IP packet at `slot[HEADROOM..HEADROOM + n]` for the session (PPP, L2TP and,
    /// with IPsec, inner UDP headers in front). Returns the range of `slot` to queue, or `None`
    /// when the packet is not sent (no session, IPv6 while IPV6CP is closed, not IP). With
    /// IPsec the range spans the ESP packet to be, trailer room included: the batch is sealed
    /// just before it is sent ([`Conn::seal_queued`]).
    fn frame_data(
        &mut self,
        slot: &mut [u8],
        n: usize,
    ) -> Result<Option<std::ops::Range<usize>>, ConnectError> {
        let Some(h) = self.session else {
            return Ok(None);
        };
        let v6 = match slot[HEADROOM] >> 4 {
            4 => false,
            6 if self.ipv6.is_some() => true,
            _ => return Ok(None), // not IP, or IPv6 while IPV6CP is not open
        };
        let mut hdr = [0u8; 8];
        let ph = self.ppp.write_ip_header(&mut hdr, v6);
        if ph == 0 {
            return Ok(None);
        }
        let l2h = self.lac.data_header_len(h);
        let off = HEADROOM - ph - l2h;
        slot[HEADROOM - ph..HEADROOM].copy_from_slice(&hdr[..ph]);
        let len = match self
            .lac
            .write_data_header(h, &mut slot[off..HEADROOM + n], ph + n)
        {
            Ok(l) => l,
            Err(e) => {
                warn!("L2TP data header: {e}");
                return Ok(None);
            }
        };
        let range = match self.ipsec.as_ref().and_then(|i| i.esp.as_ref()) {
            Some(pair) => esp_frame(slot, off, len, pair.current(), self.l2tp_peer_port),
            None => off..off + len,
        };
        self.ctx.bytes_out += n as u64;
        Ok(Some(range))
    }
}

/// Writes one packet to the TUN device behind virtio-net header `hdr` (all zero: a plain
/// packet). A full queue drops it, as a router would.
fn tun_write(tun: &l2sec_netcfg::Tun, hdr: &[u8; l2sec_netcfg::Tun::VNET_HDR_LEN], pkt: &[u8]) {
    let r = if hdr.iter().all(|&b| b == 0) {
        tun.write(pkt)
    } else {
        tun.write_vnet(hdr, pkt)
    };
    match r {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => debug!("TUN write: {e}"),
    }
}

/// Takes the receive batch out of `slot` (allocating it on first use) so that its datagrams
/// can be handled with `&mut Conn`; put it back afterwards.
fn take_rxb(slot: &mut RxBatch) -> RxBatch {
    let rxb = std::mem::take(slot);
    if rxb.is_placeholder() {
        RxBatch::new(SLOT, batch::CAP)
    } else {
        rxb
    }
}

/// Which socket takes a sealed datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// UDP 4500 (ESP in UDP).
    Udp4500,
    /// Raw IP protocol 50.
    Raw,
    /// Plain L2TP over UDP (no IPsec).
    Plain,
}

/// Where L2TP datagrams go now, or `None` when there is nothing to send them with yet (no SA:
/// they are dropped, L2TP retransmits).
fn out_kind(ipsec: Option<&Ipsec>, plain: bool) -> Option<Out> {
    match ipsec {
        None => plain.then_some(Out::Plain),
        Some(i) => {
            i.esp.as_ref()?;
            Some(match i.encap {
                Encapsulation::Udp { .. } => Out::Udp4500,
                Encapsulation::Raw => Out::Raw,
            })
        }
    }
}

/// Wraps the L2TP datagram at `tx[off..off + len]` for the wire: inner UDP header and ESP
/// (sealed in place) when IPsec is on. Returns the range to send (see [`out_kind`] for the
/// socket); call it only when [`out_kind`] is `Some`.
fn seal_l2tp(
    tx: &mut [u8],
    off: usize,
    len: usize,
    ipsec: Option<&mut Ipsec>,
    peer_port: u16,
) -> Result<std::ops::Range<usize>, String> {
    let Some(pair) = ipsec.and_then(|i| i.esp.as_mut()) else {
        return Ok(off..off + len);
    };
    let sa = pair.current_mut();
    let r = esp_frame(tx, off, len, sa, peer_port);
    let payload = r.len() - sa.header_len() - sa.max_trailer_len();
    let n = sa
        .seal(&mut tx[r.clone()], payload, l2sec_esp::NEXT_HEADER_UDP)
        .map_err(|e| format!("ESP seal: {e}"))?;
    Ok(r.start..r.start + n)
}

/// Writes the inner UDP header (L2TP port to the LNS's) in front of the L2TP datagram at
/// `tx[off..off + len]` and returns the span of the ESP packet to be sealed there by `sa`: its
/// header room, the UDP datagram and room for the largest trailer.
fn esp_frame(
    tx: &mut [u8],
    off: usize,
    len: usize,
    sa: &Sa,
    peer_port: u16,
) -> std::ops::Range<usize> {
    let udp_off = off - l2sec_esp::udp::HEADER_LEN;
    l2sec_esp::udp::write_header(
        &mut tx[udp_off..],
        L2TP_PORT,
        peer_port,
        len,
        l2sec_esp::udp::Checksum::Zero,
    );
    let esp_off = udp_off - sa.header_len();
    esp_off..off + len + sa.max_trailer_len()
}

/// Seals every datagram queued in `txb`, each framed by [`esp_frame`] for `sa` (its range spans
/// header room, the UDP datagram and trailer room), with one [`Sa::seal_many`]: with AES-CBC
/// their blocks go through the cipher together. Each range is cut to the sealed packet. On an
/// error the batch is emptied: nothing unsealed may be sent.
fn seal_batch(sa: &mut Sa, txb: &mut TxBatch) -> Result<(), l2sec_esp::Error> {
    let room = sa.header_len() + sa.max_trailer_len();
    let mut lens = [0usize; batch::CAP];
    let res = {
        let mut jobs: [SealJob<'_>; batch::CAP] = std::array::from_fn(|_| SealJob::default());
        let mut n = 0;
        // A batch holds at most CAP datagrams: every one gets a job.
        for (bytes, _) in txb.queued_mut() {
            jobs[n] = SealJob {
                payload_len: bytes.len().saturating_sub(room),
                buf: bytes,
                next_header: l2sec_esp::NEXT_HEADER_UDP,
                len: 0,
            };
            n += 1;
        }
        let res = sa.seal_many(&mut jobs[..n]);
        for (len, job) in lens.iter_mut().zip(&jobs[..n]) {
            *len = job.len;
        }
        res
    };
    if res.is_err() {
        txb.clear();
        return res;
    }
    for ((_, range), len) in txb.queued_mut().zip(lens) {
        range.end = range.start + len;
    }
    Ok(())
}

/// A raw IPv4 protocol-50 socket connected to the server.
fn open_raw_esp(server: IpAddr) -> io::Result<AsyncFd<socket2::Socket>> {
    let domain = if server.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(
        domain,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(50)),
    )?;
    s.set_nonblocking(true)?;
    s.connect(&SocketAddr::new(server, 0).into())?;
    buffers(&s, "ESP");
    debug!("raw ESP socket fd {}", s.as_raw_fd());
    // SAFETY: the socket owns its descriptor, which stays open and is not replaced while the
    // AsyncFd holds it (the AsyncFd owns the socket).
    #[allow(unsafe_code)]
    let fd = unsafe { AsyncFd::register(s)? };
    Ok(fd)
}

#[cfg(test)]
mod seal_tests {
    use super::*;
    use l2sec_crypto::{CipherAlg, IntegAlg, Policy, Rng, TestRng};
    use l2sec_esp::{DirectionKeys, SaConfig};
    use zeroize::Zeroizing;

    /// Two ends of one SA: `tx` seals what `rx` opens.
    fn sa_pair(cipher: CipherAlg, integ: Option<IntegAlg>) -> (Sa, Sa) {
        let mut rng = TestRng::new(9);
        let mut key = |n: usize| {
            let mut k = Zeroizing::new(vec![0u8; n]);
            rng.fill(&mut k);
            k
        };
        let out = DirectionKeys {
            spi: 0x1000_0001,
            enc_key: key(cipher.keymat_len()),
            auth_key: key(integ.map_or(0, |i| i.key_len())),
        };
        let back = DirectionKeys {
            spi: 0x2000_0002,
            ..out.clone()
        };
        let cfg = SaConfig {
            cipher,
            integ,
            outbound: out.clone(),
            inbound: back.clone(),
            encap: Encapsulation::Udp {
                local_port: 4500,
                remote_port: 4500,
            },
            nat_oa: None,
            lifetime_secs: None,
            lifetime_kbytes: None,
        };
        let peer = SaConfig {
            outbound: back,
            inbound: out,
            ..cfg.clone()
        };
        let mut rng = TestRng::new(10);
        (
            Sa::new(&cfg, Policy::Legacy, &mut rng).unwrap(),
            Sa::new(&peer, Policy::Legacy, &mut rng).unwrap(),
        )
    }

    /// A batch framed as the data path frames it and sealed by `seal_batch` opens packet by
    /// packet, in order, with every payload intact: no datagram is left unsealed, whatever the
    /// batch's size (not a multiple of the eight sealed together) and the packets' lengths.
    #[test]
    fn a_sealed_batch_opens_packet_by_packet() {
        for (cipher, integ) in [
            (
                CipherAlg::AesCbc { key_bits: 256 },
                Some(IntegAlg::HmacSha1_96),
            ),
            (
                CipherAlg::AesCbc { key_bits: 128 },
                Some(IntegAlg::HmacSha256_128),
            ),
            (CipherAlg::AesGcm16 { key_bits: 128 }, None),
        ] {
            let (mut tx, mut rx) = sa_pair(cipher, integ);
            let mut txb = TxBatch::new(2048);
            let mut payloads = Vec::new();
            for k in 0..batch::CAP - 3 {
                let len = 40 + (k * 97) % 1400;
                let payload: Vec<u8> = (0..len).map(|i| (i * 7 + k) as u8).collect();
                let slot = txb.next_slot();
                slot[HEADROOM..HEADROOM + len].copy_from_slice(&payload);
                let range = esp_frame(slot, HEADROOM, len, &tx, 1701);
                txb.push(range);
                payloads.push(payload);
            }
            seal_batch(&mut tx, &mut txb).unwrap();
            let mut n = 0;
            for ((pkt, range), want) in txb.queued_mut().zip(&payloads) {
                assert_eq!(pkt.len(), range.len());
                let o = rx
                    .open(pkt)
                    .unwrap_or_else(|e| panic!("{cipher:?} packet {n}: {e}"));
                let udp = &pkt[o.payload];
                assert_eq!(&udp[8..], &want[..], "{cipher:?} packet {n}");
                n += 1;
            }
            assert_eq!(n, payloads.len());
        }
    }
}
