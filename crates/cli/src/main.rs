//! The l2sec command: connect, status, disconnect, profiles, cleanup.

mod args;
mod failure;
mod output;
mod privs;
mod settings;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use l2sec_engine::{Options, control};
use l2sec_profile::{Loader, MissingSecret, Profile, Secret, SecretOrigin};
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use crate::args::{Cli, Command, ConnectArgs, ProfileCmd};
use crate::failure::{EXIT_HOST, EXIT_LOST, Failure};
use crate::output::Human;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // --help and --version print on stdout and succeed; usage errors exit 1.
            return ExitCode::from(if e.use_stderr() {
                failure::EXIT_USAGE
            } else {
                0
            });
        }
    };
    init_tracing(cli.verbose);
    match dispatch(cli) {
        Ok(()) => ExitCode::from(failure::EXIT_OK),
        Err(f) => {
            for line in f.message.lines() {
                eprintln!("l2sec: {line}");
            }
            ExitCode::from(f.code)
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::new(v),
        // Without -v, warnings reach the user as events (printed once), not as log lines.
        // netlink-packet-route warns about every attribute newer than itself (harmless kernel
        // additions): keep it to errors unless asked for trace output.
        _ => EnvFilter::new(match verbose {
            0 => "error",
            1 => "info,netlink_packet_route=error",
            2 => "debug,netlink_packet_route=error",
            _ => "trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Writes to stdout, ignoring a closed pipe (`l2sec ... | head`).
fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// One thread runs the engine, the event printer, signals and the control socket: every
/// packet wakes the thread that handles it, with no hand-over between threads (a
/// multi-threaded runtime cost a futex wake and a context switch per network event).
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    let socket = cli.socket.clone();
    match cli.command {
        Command::Connect(a) => connect(*a, socket, cli.verbose),
        Command::Status { json } => status(socket, json),
        Command::Disconnect => disconnect(socket),
        Command::Profile(p) => profile(p),
        Command::Cleanup { journal_dir } => cleanup(&journal_dir),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "l2sec", &mut buf);
            out(&String::from_utf8_lossy(&buf));
            Ok(())
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut buf)
                .map_err(|e| Failure::internal(format!("man page: {e}")))?;
            out(&String::from_utf8_lossy(&buf));
            Ok(())
        }
    }
}

fn connect(a: ConnectArgs, socket: Option<PathBuf>, verbose: u8) -> Result<(), Failure> {
    let loader = Loader::from_env();
    let json = a.json;
    let result = (|| {
        let mut p = settings::build_profile(&a, &loader)?;
        // Profile errors first, then privileges, before any prompt.
        privs::require_net_admin()?;
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let mut ask = settings::terminal_prompt;
        let ask: Option<settings::Ask<'_>> = if interactive { Some(&mut ask) } else { None };
        settings::fill_missing(&mut p, ask)?;
        if a.overrides.psk.is_some() {
            eprintln!(
                "warning: --psk is visible to other users in the process list; prefer --psk-file"
            );
        }
        let under_systemd = std::env::var_os("INVOCATION_ID").is_some();
        let reconnect = settings::decide_reconnect(&a.overrides, p.reconnect, under_systemd);
        Ok(Options {
            profile: p,
            reconnect,
            control_socket: socket,
            notify_systemd: std::env::var_os("NOTIFY_SOCKET").is_some(),
        })
    })();
    let opts = match result {
        Ok(o) => o,
        Err(f) => {
            if json {
                out(&format!("{}\n", output::json_failure(&f, None)));
            }
            return Err(f);
        }
    };
    // Secrets are read; drop capabilities before the runtime starts threads.
    privs::drop_to_needed()?;
    let spinner = !json && verbose == 0 && std::io::stderr().is_terminal();
    let rt = runtime()?;
    let res = rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(signals(stop_tx, json));
        let engine = l2sec_engine::run(opts, tx, stop_rx);
        let (res, ()) = tokio::join!(engine, render(rx, json, spinner));
        res
    });
    // Do not wait for the signal task.
    rt.shutdown_background();
    match res {
        Ok(()) => Ok(()),
        Err(e) => {
            let f = Failure::connect(&e);
            if json {
                out(&format!("{}\n", output::json_failure(&f, Some(&e))));
            }
            Err(f)
        }
    }
}

/// Prints events until the engine drops its sender.
async fn render(mut rx: mpsc::UnboundedReceiver<l2sec_engine::Event>, json: bool, spinner: bool) {
    let mut human = Human::new(spinner);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                if json {
                    out(&format!("{}\n", output::json_line(&ev)));
                } else {
                    eprint!("{}", human.event(&ev, Instant::now()));
                }
            }
            _ = tick.tick(), if spinner => eprint!("{}", human.tick(Instant::now())),
        }
    }
    eprint!("{}", human.finish());
}

/// SIGINT/SIGTERM: orderly disconnect; a second one exits at once.
async fn signals(stop: watch::Sender<bool>, json: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers; Ctrl-C will not disconnect cleanly");
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        count += 1;
        if count == 1 {
            if !json {
                // Clears a spinner line on a terminal; elsewhere (the journal under systemd) the
                // escape sequence would turn the line into binary data.
                let clear = if std::io::stderr().is_terminal() {
                    "\r\x1b[2K"
                } else {
                    ""
                };
                eprintln!("{clear}disconnecting (again to force)");
            }
            let _ = stop.send(true);
        } else {
            eprintln!(
                "l2sec: forced exit: the host may keep routes or DNS of the tunnel; run: l2sec cleanup"
            );
            std::process::exit(i32::from(EXIT_HOST));
        }
    }
}

fn socket_path(socket: Option<PathBuf>) -> PathBuf {
    socket.unwrap_or_else(control::default_socket_path)
}

fn not_running(path: &Path, e: &std::io::Error) -> Option<Failure> {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound | K::ConnectionRefused => Some(Failure {
            code: EXIT_LOST,
            message: format!(
                "no connection is running (no control socket at {})",
                path.display()
            ),
        }),
        K::PermissionDenied => Some(Failure::usage(format!(
            "control socket {}: permission denied; run as the user that connected (or root)",
            path.display()
        ))),
        _ => None,
    }
}

fn status(socket: Option<PathBuf>, json: bool) -> Result<(), Failure> {
    let path = socket_path(socket);
    let rt = runtime()?;
    match rt.block_on(control::status(&path)) {
        Ok(s) => {
            if json {
                let v = serde_json::to_string(&s).map_err(|e| Failure::internal(e.to_string()))?;
                out(&format!("{v}\n"));
            } else {
                out(&status_text(&s));
            }
            Ok(())
        }
        Err(e) => {
            let f = not_running(&path, &e).unwrap_or_else(|| {
                Failure::internal(format!("control socket {}: {e}", path.display()))
            });
            if json && f.code == EXIT_LOST {
                out("{\"state\":\"not_running\"}\n");
            }
            Err(f)
        }
    }
}

/// `l2sec status` as text.
fn status_text(s: &control::StatusReply) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(t, "profile     {}", s.profile);
    let _ = writeln!(t, "server      {}", s.server);
    let _ = writeln!(t, "state       {}", s.state);
    let _ = writeln!(t, "pid         {}", s.pid);
    if let Some(u) = &s.up {
        let _ = writeln!(
            t,
            "interface   {}  {} peer {}  MTU {}",
            u.interface, u.local, u.peer, u.mtu
        );
        if !u.dns.is_empty() {
            let _ = writeln!(t, "dns         {}", u.dns.join(", "));
        }
        if let (Some(i), Some(e)) = (&u.ike, &u.esp) {
            let _ = writeln!(t, "ipsec       {i} / {e}");
        }
    }
    let _ = writeln!(
        t,
        "traffic     {} in, {} out",
        bytes(s.bytes_in),
        bytes(s.bytes_out)
    );
    if s.reconnects > 0 {
        let _ = writeln!(t, "reconnects  {}", s.reconnects);
    }
    t
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn disconnect(socket: Option<PathBuf>) -> Result<(), Failure> {
    let path = socket_path(socket);
    let rt = runtime()?;
    rt.block_on(async {
        if let Err(e) = control::disconnect(&path).await {
            return match not_running(&path, &e) {
                // Nothing to disconnect: the wanted state already holds.
                Some(f) if f.code == EXIT_LOST => {
                    eprintln!("l2sec: {}", f.message);
                    Ok(())
                }
                Some(f) => Err(f),
                None => Err(Failure::internal(format!(
                    "control socket {}: {e}",
                    path.display()
                ))),
            };
        }
        // Wait for the teardown to finish (the control socket goes away last).
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if control::status(&path).await.is_err() {
                eprintln!("disconnected");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("l2sec: disconnect requested; the connection is still tearing down");
        Ok(())
    })
}

fn profile(cmd: ProfileCmd) -> Result<(), Failure> {
    match cmd {
        ProfileCmd::List => {
            let dirs = l2sec_profile::search_path();
            let list = l2sec_profile::list_in(&dirs);
            if list.is_empty() {
                let d: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                eprintln!(
                    "no profiles in {}; put NAME.toml there (see the examples) or use connect --profile PATH",
                    d.join(", ")
                );
            }
            let width = list.iter().map(|e| e.name.len()).max().unwrap_or(0);
            let mut t = String::new();
            for e in &list {
                let hidden = if e.shadowed {
                    "  (hidden by the one above)"
                } else {
                    ""
                };
                t.push_str(&format!(
                    "{:width$}  {}{hidden}\n",
                    e.name,
                    e.path.display()
                ));
            }
            out(&t);
            Ok(())
        }
        ProfileCmd::Show { profile } => {
            let p = load_named(&profile)?;
            out(&p.render_redacted());
            Ok(())
        }
        ProfileCmd::Check { profiles } => {
            let mut failed = 0;
            for name in &profiles {
                match check_one(name) {
                    Ok(lines) => {
                        for l in lines {
                            out(&format!("{l}\n"));
                        }
                    }
                    Err(f) => {
                        failed += 1;
                        for line in f.message.lines() {
                            eprintln!("l2sec: {name}: {line}");
                        }
                    }
                }
            }
            if failed > 0 {
                return Err(Failure::usage(format!(
                    "{failed} of {} profiles have problems",
                    profiles.len()
                )));
            }
            Ok(())
        }
    }
}

/// Finds by name (or path) and loads a profile.
fn load_named(name: &str) -> Result<Profile, Failure> {
    let path = l2sec_profile::find(name).map_err(Failure::profile)?;
    Loader::from_env().load(&path).map_err(Failure::profile)
}

/// Checks one profile as `connect` would; returns the lines to print.
fn check_one(name: &str) -> Result<Vec<String>, Failure> {
    let mut p = load_named(name)?;
    let mut lines = Vec::new();
    let asked =
        |what: &str| format!("{name}: note: {what} will be asked on the terminal at connect");
    // What connect would prompt for is not a problem: check the rest with stand-ins.
    if p.ppp.user.is_none() {
        lines.push(asked("the PPP user name"));
        p.ppp.user = Some("user".into());
    }
    for m in p.missing_secrets() {
        let s = Some(Secret::new(
            Zeroizing::new("stand-in".into()),
            SecretOrigin::Given,
        ));
        match m {
            MissingSecret::Psk => {
                lines.push(asked("the IPsec pre-shared key"));
                p.ipsec.psk = s;
            }
            _ => {
                lines.push(asked("the PPP password"));
                p.ppp.password = s;
            }
        }
    }
    let warnings = l2sec_engine::check_profile(&p).map_err(|e| Failure::connect(&e))?;
    for w in warnings {
        lines.push(format!("{name}: warning: {w}"));
    }
    lines.insert(0, format!("{name}: ok"));
    Ok(lines)
}

fn cleanup(dir: &Path) -> Result<(), Failure> {
    if !l2sec_netcfg::has_leftover(dir) {
        out(&format!("nothing to clean up in {}\n", dir.display()));
        return Ok(());
    }
    match l2sec_netcfg::cleanup(dir) {
        Ok(r) => {
            out(&format!(
                "restored {} change(s) from {} journal(s)\n",
                r.undone, r.journals
            ));
            for w in r.warnings {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        Err(e) => Err(Failure {
            code: EXIT_HOST,
            message: format!(
                "cleanup: {e}; fix the cause and run `l2sec cleanup` again (the journal in {} is kept)",
                dir.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_as_text() {
        let s = control::StatusReply {
            profile: "office".into(),
            server: "vpn.example.com".into(),
            state: "up".into(),
            pid: 42,
            up: Some(control::UpStatus {
                interface: "l2sec0".into(),
                local: "198.19.0.10".into(),
                peer: "198.19.0.1".into(),
                dns: vec!["198.19.0.1".into()],
                mtu: 1400,
                ike: Some("aes256-sha1-modp2048".into()),
                esp: Some("aes256-sha1".into()),
            }),
            bytes_in: 1536,
            bytes_out: 10,
            reconnects: 1,
        };
        let t = status_text(&s);
        assert!(t.contains("state       up\n"), "{t}");
        assert!(
            t.contains("interface   l2sec0  198.19.0.10 peer 198.19.0.1  MTU 1400\n"),
            "{t}"
        );
        assert!(
            t.contains("ipsec       aes256-sha1-modp2048 / aes256-sha1\n"),
            "{t}"
        );
        assert!(t.contains("traffic     1.5 KiB in, 10 B out\n"), "{t}");
        assert!(t.contains("reconnects  1\n"), "{t}");
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024 * 1024 * 3), "3.0 MiB");
    }

    #[test]
    fn not_running_kinds() {
        let p = Path::new("/run/l2sec/control.sock");
        let f = not_running(p, &std::io::Error::from(std::io::ErrorKind::NotFound)).unwrap();
        assert_eq!(f.code, EXIT_LOST);
        assert!(f.message.contains("no connection is running"));
        let f = not_running(
            p,
            &std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        )
        .unwrap();
        assert_eq!(f.code, failure::EXIT_USAGE);
        assert!(not_running(p, &std::io::Error::other("x")).is_none());
    }
}
