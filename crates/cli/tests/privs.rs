//! `l2sec connect` without CAP_NET_ADMIN: one clear line and exit 4, before any prompt.

use std::process::{Command, Output, Stdio};

const MESSAGE: &str = "l2sec: connect needs CAP_NET_ADMIN: run it as root (sudo) or grant it with setcap/AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW";

/// True when this process may use CAP_NET_ADMIN (bit 12 of CapPrm in /proc/self/status).
fn have_net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let prm = status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .unwrap()
        .trim();
    u64::from_str_radix(prm, 16).unwrap() & (1 << 12) != 0
}

/// Runs `l2sec ARGS` with no capabilities: as nobody through setpriv when this process has
/// them, else directly.
fn unprivileged(args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_l2sec");
    let mut c = if have_net_admin() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            bin,
        ]);
        c
    } else {
        Command::new(bin)
    };
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
        .env_remove("INVOCATION_ID")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("L2SEC_CONTROL_SOCKET");
    c.output()
        .expect("run l2sec (setpriv from util-linux is needed as root)")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn connect_without_cap_net_admin_says_so() {
    // No password and no terminal: with the capability this fails later (exit 1, "no
    // password"); the capability check comes first, before any prompt.
    let args = [
        "connect",
        "--server",
        "198.18.0.1",
        "--no-ipsec",
        "--user",
        "alice",
    ];
    let o = unprivileged(&args);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o), format!("{MESSAGE}\n"));
    assert!(o.stdout.is_empty());

    let mut json = args.to_vec();
    json.insert(1, "--json");
    let o = unprivileged(&json);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(v["exit_code"], 4);
}

#[test]
fn profile_errors_come_before_the_privilege_check() {
    let o = unprivileged(&["connect", "--profile", "/nonexistent/l2sec-test.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("CAP_NET_ADMIN"), "{}", stderr(&o));
}

#[test]
fn other_commands_need_no_privileges() {
    let o = unprivileged(&["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("l2sec "));
    let o = unprivileged(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
