//! The `l2sec` binary end to end, without a network: usage, profiles, exit codes, output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn l2sec(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_l2sec"));
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
        .env_remove("L2SEC_CONTROL_SOCKET");
    c.env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("INVOCATION_ID")
        .env_remove("NOTIFY_SOCKET");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles")
}

/// The values of `NAME_file = "..."` lines that are not commented out.
fn secret_files(profile: &str) -> Vec<String> {
    profile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            if !(k.ends_with("_file") || k == "key") {
                return None;
            }
            let v = v.trim().strip_prefix('"')?;
            Some(v[..v.find('"')?].to_owned())
        })
        .collect()
}

fn private(path: &Path, content: &[u8]) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A CA and a client certificate made with openssl, if it is installed.
fn make_certs(dir: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Example CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=alice",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
        "-days",
        "2",
    ])
}

#[test]
fn help_documents_exit_codes() {
    let o = l2sec(&["--help"], &[]);
    assert!(o.status.success());
    let s = text(&o.stdout);
    assert!(
        s.contains("Exit status:")
            && s.contains("2  connect failed")
            && s.contains("6  authentication failed"),
        "{s}"
    );
    let o = l2sec(&["connect", "--help"], &[]);
    assert!(text(&o.stdout).contains("--psk-file"));
}

#[test]
fn usage_error_exits_1() {
    let o = l2sec(&["connect"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let o = l2sec(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn example_profiles_check() {
    let examples: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("lab-"))
        .collect();
    assert!(examples.len() >= 8, "{examples:?}");
    for src in examples {
        let name = src.file_stem().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read_to_string(&src).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join(src.file_name().unwrap());
        std::fs::write(&dst, &body).unwrap();
        if name == "certificate" && !make_certs(dir.path()) {
            eprintln!("openssl missing: certificate.toml not checked");
            continue;
        }
        for f in secret_files(&body) {
            let p = dir.path().join(&f);
            if !p.exists() {
                private(&p, b"placeholder-secret\n");
            } else {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        let o = l2sec(&["profile", "check", dst.to_str().unwrap()], &[]);
        let out = text(&o.stdout);
        assert!(o.status.success(), "{name}: {out}{}", text(&o.stderr));
        assert!(
            out.starts_with(&format!("{}: ok", dst.display())),
            "{name}: {out}"
        );
    }
}

#[test]
fn profile_check_reports_problems_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "server = \"vpn.example.com\"\n[ppp]\nuser = \"u\"\npasword = \"x\"\n",
    )
    .unwrap();
    let o = l2sec(&["profile", "check", p.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(":4:1: unknown key `pasword` in [ppp] at line 4; did you mean `password`?"),
        "{err}"
    );
}

#[test]
fn list_show_by_name_without_leaking_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("office.toml");
    private(
        &p,
        b"server = \"vpn.example.com\"\n[ipsec]\npsk = \"top-secret-psk\"\n[ppp]\nuser = \"u\"\n",
    );
    let env = [("L2SEC_PROFILE_PATH", dir.path())];
    let o = l2sec(&["profile", "list"], &env);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).starts_with("office  "),
        "{}",
        text(&o.stdout)
    );
    let o = l2sec(&["profile", "show", "office"], &env);
    let s = text(&o.stdout);
    assert!(
        o.status.success() && s.contains("server = \"vpn.example.com\""),
        "{s}"
    );
    assert!(!s.contains("top-secret-psk"), "{s}");
    let o = l2sec(&["profile", "check", "office"], &env);
    let s = text(&o.stdout);
    assert!(
        s.contains("office: note: the PPP password will be asked"),
        "{s}"
    );
    // A profile holding a secret readable by others is refused with the fix.
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = l2sec(&["profile", "show", "office"], &env);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("(mode 0644); run: chmod 600"),
        "{}",
        text(&o.stderr)
    );
    let o = l2sec(&["profile", "show", "nope"], &env);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn headless_connect_without_password_fails_before_connecting() {
    let o = l2sec(
        &[
            "connect",
            "--server",
            "198.18.0.1",
            "--no-ipsec",
            "--user",
            "alice",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim(),
        "l2sec: ppp: no password: set password_file in [ppp] or run on a terminal"
    );
    let o = l2sec(
        &[
            "connect",
            "--json",
            "--server",
            "198.18.0.1",
            "--no-ipsec",
            "--user",
            "alice",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(v["event"], "error");
    assert_eq!(v["exit_code"], 1);
}

#[test]
fn status_and_disconnect_without_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("control.sock");
    let o = l2sec(&["status", "--socket", sock.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stderr).contains("no connection is running"));
    let o = l2sec(
        &["status", "--json", "--socket", sock.to_str().unwrap()],
        &[],
    );
    assert_eq!(text(&o.stdout).trim(), "{\"state\":\"not_running\"}");
    let o = l2sec(&["disconnect", "--socket", sock.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn cleanup_with_nothing_left() {
    let dir = tempfile::tempdir().unwrap();
    let o = l2sec(
        &["cleanup", "--journal-dir", dir.path().to_str().unwrap()],
        &[],
    );
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("nothing to clean up"));
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let o = l2sec(&["completions", shell], &[]);
        assert!(o.status.success());
        assert!(text(&o.stdout).contains("l2sec"), "{shell}");
    }
    let o = l2sec(&["man"], &[]);
    assert!(o.status.success());
    let s = text(&o.stdout);
    assert!(s.contains(".TH l2sec") && s.contains("Exit status"), "{s}");
}
