//! The l2sec engine: the only async crate. It resolves the server, opens the sockets and the
//! TUN device, drives the sans-IO machines (IKE -> ESP -> L2TP -> PPP), configures the host
//! through `l2sec-netcfg`, reports progress as [`Event`]s, reconnects when asked, and tears
//! everything down in order.

mod api;
mod conn;
pub mod control;
mod host;
mod plan;
mod sdnotify;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

pub use api::{ConnectError, ErrorKind, Event, Options, Profile, Stage, UpInfo};
pub use plan::check_profile;

/// Shared state of one `run`: where events go and what `status` reports.
pub(crate) struct Ctx {
    events: mpsc::UnboundedSender<Event>,
    status: watch::Sender<control::StatusReply>,
    start: Instant,
    notify: bool,
    /// Bytes of tunnel payload received.
    pub(crate) bytes_in: u64,
    /// Bytes of tunnel payload sent.
    pub(crate) bytes_out: u64,
}

impl Ctx {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn stage(&self, stage: Stage, detail: String) {
        info!("{stage}: {detail}");
        self.status.send_modify(|s| s.set_stage(stage));
        if self.notify {
            sdnotify::notify(&format!("STATUS={stage} {detail}"));
        }
        let _ = self.events.send(Event::Stage {
            stage,
            detail,
            elapsed: self.elapsed(),
        });
    }

    fn warn(&self, msg: String) {
        warn!("{msg}");
        let _ = self.events.send(Event::Warning { message: msg });
    }

    fn up(&self, info: UpInfo) {
        let (bi, bo) = (self.bytes_in, self.bytes_out);
        self.status.send_modify(|s| {
            s.set_stage(Stage::Up);
            s.up = Some((&info).into());
            s.bytes_in = bi;
            s.bytes_out = bo;
        });
        if self.notify {
            sdnotify::notify(&format!(
                "READY=1\nSTATUS=up: {} on {}",
                info.local, info.interface
            ));
        }
        let _ = self.events.send(Event::Up(info));
    }

    /// Between attempts: `status` says "reconnecting", systemd's STATUS= names the cause and
    /// the wait (`systemctl status` shows it), and the event goes out.
    fn reconnecting(&self, attempt: u32, delay: Duration, error: ConnectError) {
        self.status.send_modify(|s| {
            s.state = RECONNECTING.to_owned();
            s.up = None;
            s.reconnects += 1;
        });
        if self.notify {
            sdnotify::notify(&reconnecting_status(attempt, delay, &error));
        }
        let _ = self.events.send(Event::Reconnecting {
            attempt,
            delay,
            error,
        });
    }

    fn sync_counters(&self) {
        let (bi, bo) = (self.bytes_in, self.bytes_out);
        self.status.send_modify(|s| {
            s.bytes_in = bi;
            s.bytes_out = bo;
        });
    }
}

/// A stop request: the shutdown watch (signals) or `disconnect` on the control socket.
pub(crate) struct Stop {
    shutdown: watch::Receiver<bool>,
    disconnect: mpsc::Receiver<()>,
    fired: bool,
}

impl Stop {
    /// Resolves once when a stop is requested; pends forever afterwards.
    pub(crate) async fn requested(&mut self) {
        if self.fired {
            return std::future::pending().await;
        }
        if *self.shutdown.borrow() {
            self.fired = true;
            return;
        }
        tokio::select! {
            r = self.shutdown.wait_for(|v| *v) => {
                if r.is_err() {
                    // The sender is gone: nobody can ask us to stop through it any more.
                    return std::future::pending().await;
                }
            }
            _ = self.disconnect.recv() => {}
        }
        self.fired = true;
    }

    fn is_fired(&self) -> bool {
        self.fired || *self.shutdown.borrow()
    }
}

/// The `state` that `status` reports while waiting to reconnect.
pub const RECONNECTING: &str = "reconnecting";

/// The sd_notify line while waiting to reconnect, e.g.
/// `STATUS=reconnecting in 4s (attempt 2): IKE phase 1: no answer from 198.18.0.1`.
fn reconnecting_status(attempt: u32, delay: Duration, error: &ConnectError) -> String {
    format!(
        "STATUS={RECONNECTING} in {}s (attempt {attempt}): {error}",
        delay.as_secs()
    )
}

/// Backoff before reconnect attempt `n` (from 1): 2, 4, 8, ... seconds, at most 60.
fn backoff(n: u32) -> Duration {
    Duration::from_secs((1u64 << n.min(6)).min(60))
}

async fn resolve(server: &str) -> Result<IpAddr, ConnectError> {
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs = tokio::net::lookup_host((server, 500)).await.map_err(|e| {
        ConnectError::new(
            Stage::Resolving,
            ErrorKind::Remote,
            format!("cannot resolve {server}: {e}"),
        )
        .with_hint("check the server name in the profile and the host's DNS")
    })?;
    let mut v6 = None;
    for a in addrs {
        if a.is_ipv4() {
            return Ok(a.ip());
        }
        v6.get_or_insert(a.ip());
    }
    v6.ok_or_else(|| {
        ConnectError::new(
            Stage::Resolving,
            ErrorKind::Remote,
            format!("{server} has no address"),
        )
    })
}

/// Connects with the profile in `opts` and stays connected until `shutdown` turns true, a
/// `disconnect` arrives on the control socket, or the connection fails (and, with
/// `opts.reconnect`, keeps trying). The host is restored before this returns.
///
/// # Errors
/// The first failure that ends the connection, as one [`ConnectError`].
pub async fn run(
    opts: Options,
    events: mpsc::UnboundedSender<Event>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let plan = plan::Plan::from_profile(&opts.profile)?;
    let (status_tx, status_rx) = watch::channel(control::StatusReply {
        profile: opts.profile.name.clone(),
        server: plan.server.clone(),
        state: Stage::Setup.to_string(),
        pid: std::process::id(),
        ..Default::default()
    });
    let (disc_tx, disc_rx) = mpsc::channel(1);
    let sock_path = opts
        .control_socket
        .clone()
        .unwrap_or_else(control::default_socket_path);
    let _control = control::serve(&sock_path, status_rx, disc_tx)
        .await
        .map_err(|e| {
            let mut c = ConnectError::new(
                Stage::Setup,
                ErrorKind::Config,
                format!("control socket {}: {e}", sock_path.display()),
            );
            if e.kind() == std::io::ErrorKind::AddrInUse {
                c = c.with_hint("run `l2sec disconnect` first, or `l2sec status` to see it");
            }
            c
        })?;
    let mut ctx = Ctx {
        events,
        status: status_tx,
        start: Instant::now(),
        notify: opts.notify_systemd,
        bytes_in: 0,
        bytes_out: 0,
    };
    for w in &plan.warnings {
        ctx.warn(w.clone());
    }
    let mut stop = Stop {
        shutdown,
        disconnect: disc_rx,
        fired: false,
    };
    let mut host = host::HostState::new(&plan);
    if let Some(report) = host.cleanup_leftover() {
        ctx.warn(report);
    }
    let mut attempt = 0u32;
    let mut last_server: Option<IpAddr> = None;
    let result = loop {
        ctx.start = Instant::now();
        ctx.stage(Stage::Resolving, plan.server.clone());
        // A name that no longer resolves on a reconnect (the DNS server may be behind the dead
        // tunnel) falls back to the address that worked before.
        let resolved = match (resolve(&plan.server).await, last_server) {
            (Ok(ip), _) => Ok(ip),
            (Err(e), Some(ip)) => {
                ctx.warn(format!("{}; using the previous address {ip}", e.cause));
                Ok(ip)
            }
            (Err(e), None) => Err(e),
        };
        if let Ok(ip) = resolved {
            last_server = Some(ip);
        }
        let outcome = match resolved {
            Ok(server) => match conn::Conn::start(&mut ctx, &mut host, &plan, server).await {
                Ok(c) => c.run(&mut stop).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        ctx.sync_counters();
        match outcome {
            Ok(conn::Ended::Requested) => break Ok(()),
            Err(e) => {
                let retry = opts.reconnect
                    && !stop.is_fired()
                    && matches!(e.kind, ErrorKind::Lost | ErrorKind::Remote);
                if !retry {
                    break Err(e);
                }
                attempt = if ctx.elapsed() > Duration::from_secs(120) {
                    1
                } else {
                    attempt + 1
                };
                let delay = backoff(attempt);
                ctx.reconnecting(attempt, delay, e);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.requested() => break Ok(()),
                }
            }
        }
    };
    let restored = host.restore();
    if ctx.notify {
        sdnotify::notify("STOPPING=1");
    }
    let _ = ctx.events.send(Event::Disconnected);
    match (result, restored) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(ConnectError::new(Stage::Teardown, ErrorKind::Host, e)
            .with_hint("run `l2sec cleanup` to retry restoring the host")),
        (Ok(()), Ok(())) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(6), Duration::from_secs(60));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }

    #[test]
    fn reconnecting_status_names_wait_attempt_and_cause() {
        let e = ConnectError::new(Stage::Lcp, ErrorKind::Lost, "no echo reply");
        assert_eq!(
            reconnecting_status(2, backoff(2), &e),
            "STATUS=reconnecting in 4s (attempt 2): PPP LCP: no echo reply"
        );
    }

    #[test]
    fn reconnecting_shows_in_status_and_events() {
        let (status, rx) = watch::channel(control::StatusReply {
            state: Stage::Up.to_string(),
            ..Default::default()
        });
        let (events, mut ev_rx) = mpsc::unbounded_channel();
        let ctx = Ctx {
            events,
            status,
            start: Instant::now(),
            notify: false,
            bytes_in: 0,
            bytes_out: 0,
        };
        let e = ConnectError::new(Stage::Lcp, ErrorKind::Lost, "no echo reply");
        ctx.reconnecting(3, backoff(3), e);
        let s = rx.borrow().clone();
        assert_eq!(s.state, "reconnecting");
        assert_eq!(s.reconnects, 1);
        assert!(s.up.is_none());
        match ev_rx.try_recv() {
            Ok(Event::Reconnecting { attempt, delay, .. }) => {
                assert_eq!((attempt, delay), (3, Duration::from_secs(8)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_is_one_line_with_hint() {
        let e = ConnectError::new(
            Stage::IkePhase1,
            ErrorKind::Remote,
            "no answer from 198.18.0.1",
        )
        .with_hint("check the server address");
        assert_eq!(
            e.to_string(),
            "IKE phase 1: no answer from 198.18.0.1 — check the server address"
        );
        assert!(!e.to_string().contains('\n'));
    }
}
