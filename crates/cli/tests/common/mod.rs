//! Helpers shared by the end-to-end tests: the `l2sec` binary in a lab namespace, scratch
//! profiles, host snapshots, figures and a TCP transfer with an integrity check.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The servers are shared: one end-to-end test at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// The binary under test: this build's, or `L2SEC_BIN` (e.g. a release build for figures).
pub fn bin() -> String {
    std::env::var("L2SEC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_l2sec").to_string())
}

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn netns(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("run ip netns exec")
}

pub fn netns_ok(ns: &str, args: &[&str]) -> String {
    let o = netns(ns, args);
    assert!(
        o.status.success(),
        "{args:?} in {ns} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Everything l2sec may change in a namespace, as text: addresses, links, routes, DNS.
pub fn snapshot(ns: &str) -> String {
    let mut s = String::new();
    for args in [
        &["ip", "-d", "addr"][..],
        &["ip", "route", "show", "table", "all"][..],
        &["ip", "-6", "route", "show", "table", "all"][..],
        &["ip", "rule"][..],
        &["cat", "/etc/resolv.conf"][..],
    ] {
        s.push_str(&format!("$ {}\n", args.join(" ")));
        s.push_str(&netns_ok(ns, args));
    }
    s
}

/// A scratch directory with profiles and secrets (mode 0600) and the client's runtime paths.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn profile(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(&format!("{name}.toml"));
        std::fs::write(&p, text).expect("write profile");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p
    }

    pub fn control(&self) -> PathBuf {
        self.path("control.sock")
    }
}

/// A running `l2sec connect --json` in a namespace.
pub struct Client {
    pub child: Child,
    pub events: mpsc::Receiver<Value>,
    pub stderr: std::sync::Arc<Mutex<String>>,
    pub started: Instant,
}

pub fn connect(ns: &str, scratch: &Scratch, profile: &Path, extra: &[&str]) -> Client {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            &bin(),
            "connect",
            "--json",
            "--profile",
        ])
        .arg(profile)
        .args(extra)
        .env("L2SEC_CONTROL_SOCKET", scratch.control())
        .env("L2SEC_JOURNAL_DIR", scratch.path("journal"))
        .env("RUST_LOG", "l2sec=debug,l2sec_engine=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn l2sec");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let stderr = std::sync::Arc::new(Mutex::new(String::new()));
    let err = child.stderr.take().expect("stderr");
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    Client {
        child,
        events: rx,
        stderr,
        started: Instant::now(),
    }
}

impl Client {
    /// Waits for the `up` event; panics with the client's output if it does not come.
    pub fn wait_up(&mut self, timeout: Duration) -> Value {
        self.wait_up_events(timeout).0
    }

    /// Waits for the `up` event; returns it and the events before it.
    pub fn wait_up_events(&mut self, timeout: Duration) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v["event"] == "up" => return (v, seen),
                Ok(v) => {
                    eprintln!("event: {v}");
                    seen.push(v);
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no `up` within {timeout:?}; client stderr:\n{}",
                        self.stderr.lock().unwrap()
                    );
                }
            }
        }
    }

    /// Waits for the process to exit; returns its exit code and the time it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> (i32, Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return (st.code().unwrap_or(-1), t0.elapsed());
            }
            if t0.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "client did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn disconnect(ns: &str, scratch: &Scratch) {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, &bin(), "disconnect"])
        .env("L2SEC_CONTROL_SOCKET", scratch.control())
        .output()
        .expect("run l2sec disconnect");
    assert!(
        o.status.success(),
        "l2sec disconnect failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The end of a good connection: `status --json` says up, `disconnect` ends the client with
/// exit 0 within 4 s, and the namespace is exactly as `before`.
pub fn status_disconnect_restored(ns: &str, scratch: &Scratch, c: &mut Client, before: &str) {
    let status = Command::new("ip")
        .args(["netns", "exec", ns, &bin(), "status", "--json"])
        .env("L2SEC_CONTROL_SOCKET", scratch.control())
        .output()
        .unwrap();
    assert!(status.status.success());
    let st: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(st["state"], "up");
    disconnect(ns, scratch);
    let (code, took) = c.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "stderr:\n{}", c.stderr());
    assert!(took < Duration::from_secs(4), "teardown took {took:?}");
    assert_eq!(snapshot(ns), before, "host not restored");
}

/// Prints a measured figure and, when `L2SEC_FIGURES` names a file (the lab's `test` command
/// sets it), appends it there so the figures show even when test output is captured.
pub fn figure(line: &str) {
    eprintln!("FIGURES {line}");
    if let Some(path) = std::env::var_os("L2SEC_FIGURES") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User and system CPU seconds of a process.
pub fn cpu_secs(pid: u32) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let user = f.get(11)?.parse::<f64>().ok()?;
    let sys = f.get(12)?.parse::<f64>().ok()?;
    Some((user / 100.0, sys / 100.0))
}

/// Sends `count` pings from `ns` to `dst`, `interval` seconds apart; returns how many were
/// answered and ping's output.
pub fn pings_answered(ns: &str, dst: &str, count: u32, interval: &str) -> (u32, String) {
    let out = netns(
        ns,
        &[
            "ping",
            "-n",
            "-q",
            "-i",
            interval,
            "-c",
            &count.to_string(),
            "-W",
            "1",
            dst,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let received = text
        .split(',')
        .find(|p| p.contains("received"))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ping summary: {text}"));
    (received, text)
}

/// Average RTT in ms of `count` pings from `ns` to `dst`.
pub fn ping_avg(ns: &str, dst: &str, count: u32) -> f64 {
    let out = netns_ok(
        ns,
        &[
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "2",
            dst,
        ],
    );
    // rtt min/avg/max/mdev = 0.045/0.061/0.081/0.012 ms
    out.lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no RTT in ping output: {out}"))
}

pub const SINK: &str = r"
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print('ready', flush=True)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest(), flush=True)
";

pub const SOURCE: &str = r"
import hashlib, socket, sys, random
n = int(sys.argv[3]); r = random.Random(1701); h = hashlib.sha256()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
left = n
while left:
    b = r.randbytes(min(left, 65536)); s.sendall(b); h.update(b); left -= len(b)
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
print(n, h.hexdigest(), flush=True)
";

/// Sends `bytes` of TCP data from `cli_ns` to a sink in `sink_ns` at `addr`; returns when the
/// sink confirmed the same length and SHA-256.
pub fn tcp_transfer(cli_ns: &str, sink_ns: &str, addr: &str, bytes: usize) {
    let mut sink = Command::new("ip")
        .args([
            "netns", "exec", sink_ns, "timeout", "150", "python3", "-c", SINK, addr, "5001",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sink");
    let mut lines = BufReader::new(sink.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let sent = netns_ok(
        cli_ns,
        &[
            "timeout",
            "120",
            "python3",
            "-c",
            SOURCE,
            addr,
            "5001",
            &bytes.to_string(),
        ],
    );
    let got = lines.next().unwrap().unwrap();
    let _ = sink.wait();
    assert_eq!(sent.trim(), got.trim(), "data through the tunnel differs");
}

/// A connection that must fail: returns the client's exit code and its stderr, and checks the
/// namespace is untouched.
pub fn expect_failure(ns: &str, profile_text: &str, timeout: Duration) -> (i32, String) {
    let before = snapshot(ns);
    let scratch = Scratch::new();
    let prof = scratch.profile("bad", profile_text);
    let mut c = connect(ns, &scratch, &prof, &[]);
    let (code, _) = c.wait_exit(timeout);
    assert_eq!(snapshot(ns), before, "host changed by a failed connect");
    (code, c.stderr())
}

pub fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("error:") || l.contains("l2sec:"))
        .unwrap_or_default()
        .to_string()
}
