//! What `connect` prints: progress lines (a spinner on a terminal) or JSON events.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use l2sec_engine::{ConnectError, Event, Stage, UpInfo};

use crate::failure::Failure;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Erase the terminal line and return to its start.
const CLEAR: &str = "\r\x1b[2K";

/// `"  1.23s  IKE phase 1  aes256-sha1-modp2048"`.
#[must_use]
pub fn stage_line(stage: Stage, detail: &str, elapsed: Duration) -> String {
    let mut s = format!("{:>6.2}s  {stage}", elapsed.as_secs_f64());
    if !detail.is_empty() {
        let _ = write!(s, "  {detail}");
    }
    s
}

/// `"  2.34s  up  l2sec0 198.19.0.10 peer 198.19.0.1  DNS 198.19.0.1  MTU 1400  aes256-sha1-modp2048 / aes256-sha1"`.
#[must_use]
pub fn up_line(u: &UpInfo) -> String {
    let mut s = format!(
        "{:>6.2}s  up  {} {} peer {}",
        u.elapsed.as_secs_f64(),
        u.interface,
        u.local,
        u.peer
    );
    if !u.dns.is_empty() {
        let dns: Vec<String> = u.dns.iter().map(ToString::to_string).collect();
        let _ = write!(s, "  DNS {}", dns.join(", "));
    }
    let _ = write!(s, "  MTU {}", u.mtu);
    match (&u.ike, &u.esp) {
        (Some(i), Some(e)) => {
            let _ = write!(s, "  {i} / {e}");
        }
        (None, None) => s.push_str("  (no IPsec)"),
        (i, e) => {
            let _ = write!(s, "  {}", i.as_deref().or(e.as_deref()).unwrap_or_default());
        }
    }
    s
}

/// `"connection lost: ...; reconnecting in 2.0s (attempt 3)"`.
#[must_use]
pub fn reconnect_line(attempt: u32, delay: Duration, error: &ConnectError) -> String {
    format!(
        "connection lost: {error}; reconnecting in {:.1}s (attempt {attempt})",
        delay.as_secs_f64()
    )
}

/// One event as one JSON object (no newline).
#[must_use]
pub fn json_line(ev: &Event) -> String {
    serde_json::to_string(ev).unwrap_or_else(|e| {
        serde_json::json!({ "event": "error", "cause": format!("cannot encode event: {e}") })
            .to_string()
    })
}

/// The final failure as a JSON event: the engine's error fields plus `exit_code`.
#[must_use]
pub fn json_failure(f: &Failure, e: Option<&ConnectError>) -> String {
    let mut v = match e.map(serde_json::to_value) {
        Some(Ok(v)) => v,
        _ => {
            serde_json::json!({ "stage": "setup", "cause": f.message, "hint": null, "kind": "config" })
        }
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("event".into(), "error".into());
        o.insert("exit_code".into(), f.code.into());
    }
    v.to_string()
}

struct Current {
    stage: Stage,
    detail: String,
    base: Duration,
    since: Instant,
}

/// Turns events into text for stderr: plain lines, or on a terminal one spinner line per stage
/// that becomes a plain line when the next stage starts.
pub struct Human {
    tty: bool,
    current: Option<Current>,
    frame: usize,
}

impl Human {
    /// A renderer; `tty` turns on the spinner.
    #[must_use]
    pub fn new(tty: bool) -> Self {
        Human {
            tty,
            current: None,
            frame: 0,
        }
    }

    fn spinner(&mut self, now: Instant) -> String {
        let Some(c) = &self.current else {
            return String::new();
        };
        let f = FRAMES[self.frame % FRAMES.len()];
        let t = c.base + now.saturating_duration_since(c.since);
        let line = stage_line(c.stage, &c.detail, t);
        format!("{CLEAR}{f}{}", line.get(1..).unwrap_or_default())
    }

    /// Ends the spinner line, leaving the stage's plain line.
    pub fn finish(&mut self) -> String {
        match self.current.take() {
            Some(c) if self.tty => format!("{CLEAR}{}\n", stage_line(c.stage, &c.detail, c.base)),
            _ => String::new(),
        }
    }

    /// The text to print for `ev`.
    pub fn event(&mut self, ev: &Event, now: Instant) -> String {
        let mut out = String::new();
        match ev {
            Event::Stage {
                stage,
                detail,
                elapsed,
            } => {
                out.push_str(&self.finish());
                if self.tty {
                    self.current = Some(Current {
                        stage: *stage,
                        detail: detail.clone(),
                        base: *elapsed,
                        since: now,
                    });
                    out.push_str(&self.spinner(now));
                } else {
                    out.push_str(&stage_line(*stage, detail, *elapsed));
                    out.push('\n');
                }
            }
            Event::Up(u) => {
                out.push_str(&self.finish());
                out.push_str(&up_line(u));
                out.push('\n');
            }
            Event::Warning { message: w } => {
                if self.tty && self.current.is_some() {
                    out.push_str(CLEAR);
                }
                let _ = writeln!(out, "warning: {w}");
                out.push_str(&self.spinner(now));
            }
            Event::Reconnecting {
                attempt,
                delay,
                error,
            } => {
                out.push_str(&self.finish());
                out.push_str(&reconnect_line(*attempt, *delay, error));
                out.push('\n');
            }
            Event::Disconnected => {
                out.push_str(&self.finish());
                out.push_str("disconnected\n");
            }
            other => {
                out.push_str(&self.finish());
                let _ = writeln!(out, "{other:?}");
            }
        }
        out
    }

    /// Redraws the spinner (on a terminal, while a stage runs).
    pub fn tick(&mut self, now: Instant) -> String {
        if !self.tty || self.current.is_none() {
            return String::new();
        }
        self.frame = self.frame.wrapping_add(1);
        self.spinner(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2sec_engine::ErrorKind;
    use std::net::{IpAddr, Ipv4Addr};

    fn up() -> UpInfo {
        UpInfo {
            interface: "l2sec0".into(),
            local: Ipv4Addr::new(198, 19, 0, 10),
            peer: Ipv4Addr::new(198, 19, 0, 1),
            dns: vec![IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1))],
            mtu: 1400,
            elapsed: Duration::from_millis(2340),
            ike: Some("aes256-sha1-modp2048".into()),
            esp: Some("aes256-sha1".into()),
        }
    }

    #[test]
    fn stage_and_up_lines() {
        assert_eq!(
            stage_line(
                Stage::IkePhase1,
                "aes256-sha1-modp2048",
                Duration::from_millis(1234)
            ),
            "  1.23s  IKE phase 1  aes256-sha1-modp2048"
        );
        assert_eq!(
            stage_line(Stage::Lcp, "", Duration::from_secs(12)),
            " 12.00s  PPP LCP"
        );
        assert_eq!(
            up_line(&up()),
            "  2.34s  up  l2sec0 198.19.0.10 peer 198.19.0.1  DNS 198.19.0.1  MTU 1400  aes256-sha1-modp2048 / aes256-sha1"
        );
        let mut u = up();
        u.ike = None;
        u.esp = None;
        u.dns.clear();
        assert_eq!(
            up_line(&u),
            "  2.34s  up  l2sec0 198.19.0.10 peer 198.19.0.1  MTU 1400  (no IPsec)"
        );
    }

    #[test]
    fn plain_rendering() {
        let mut h = Human::new(false);
        let now = Instant::now();
        let ev = Event::Stage {
            stage: Stage::Resolving,
            detail: "vpn.example.com".into(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(h.event(&ev, now), "  0.00s  resolving  vpn.example.com\n");
        assert_eq!(h.tick(now), "");
        assert_eq!(
            h.event(
                &Event::Warning {
                    message: "weak".into()
                },
                now
            ),
            "warning: weak\n"
        );
        let e = ConnectError::new(Stage::Lcp, ErrorKind::Lost, "no echo reply");
        let ev = Event::Reconnecting {
            attempt: 2,
            delay: Duration::from_secs(4),
            error: e,
        };
        assert_eq!(
            h.event(&ev, now),
            "connection lost: PPP LCP: no echo reply; reconnecting in 4.0s (attempt 2)\n"
        );
        assert_eq!(h.event(&Event::Disconnected, now), "disconnected\n");
    }

    #[test]
    fn tty_spinner_becomes_plain_line() {
        let mut h = Human::new(true);
        let t0 = Instant::now();
        let ev = Event::Stage {
            stage: Stage::IkePhase1,
            detail: "main mode".into(),
            elapsed: Duration::from_millis(100),
        };
        let s = h.event(&ev, t0);
        assert!(s.starts_with(CLEAR) && !s.ends_with('\n'), "{s:?}");
        assert!(s.contains("⠋ 0.10s  IKE phase 1  main mode"), "{s:?}");
        let s = h.tick(t0 + Duration::from_millis(500));
        assert!(s.contains("⠙ 0.60s  IKE phase 1"), "{s:?}");
        let ev = Event::Stage {
            stage: Stage::QuickMode,
            detail: String::new(),
            elapsed: Duration::from_millis(700),
        };
        let s = h.event(&ev, t0 + Duration::from_millis(600));
        assert!(
            s.starts_with(&format!("{CLEAR}  0.10s  IKE phase 1  main mode\n")),
            "{s:?}"
        );
        let s = h.event(&Event::Up(up()), t0);
        assert!(s.contains("  0.70s  IKE quick mode\n"), "{s:?}");
        assert!(
            s.ends_with("MTU 1400  aes256-sha1-modp2048 / aes256-sha1\n"),
            "{s:?}"
        );
        assert_eq!(h.tick(t0), "");
    }

    #[test]
    fn json_events() {
        let ev = Event::Stage {
            stage: Stage::IkePhase1,
            detail: "x".into(),
            elapsed: Duration::from_millis(1500),
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&ev)).unwrap();
        assert_eq!(v["event"], "stage");
        assert_eq!(v["stage"], "ike_phase1");
        assert_eq!(v["elapsed"], 1.5);
        let v: serde_json::Value = serde_json::from_str(&json_line(&Event::Up(up()))).unwrap();
        assert_eq!(v["event"], "up");
        assert_eq!(v["local"], "198.19.0.10");
        assert!(!json_line(&Event::Disconnected).contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&json_line(&Event::Warning {
            message: "weak".into(),
        }))
        .unwrap();
        assert_eq!(
            (v["event"].as_str(), v["message"].as_str()),
            (Some("warning"), Some("weak"))
        );
        let e = ConnectError::new(Stage::Lcp, ErrorKind::Lost, "gone");
        let ev = Event::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(2),
            error: e,
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&ev)).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["error"]["kind"].as_str()),
            (Some("reconnecting"), Some("lost"))
        );

        let e = ConnectError::new(Stage::Authentication, ErrorKind::Auth, "rejected")
            .with_hint("check the password");
        let f = Failure::connect(&e);
        let v: serde_json::Value = serde_json::from_str(&json_failure(&f, Some(&e))).unwrap();
        assert_eq!(v["event"], "error");
        assert_eq!(v["kind"], "auth");
        assert_eq!(v["exit_code"], 6);
        assert_eq!(v["hint"], "check the password");
        let f = Failure::usage("bad profile");
        let v: serde_json::Value = serde_json::from_str(&json_failure(&f, None)).unwrap();
        assert_eq!(
            (v["cause"].as_str(), v["exit_code"].as_u64()),
            (Some("bad profile"), Some(1))
        );
    }
}
