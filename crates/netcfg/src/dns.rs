//! DNS: systemd-resolved (via `resolvectl`), resolvconf, or `/etc/resolv.conf` written in place.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{DnsMode, Error};

/// The file resolvers read.
pub(crate) const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Largest resolv.conf we read.
const MAX_RESOLV_CONF: u64 = 1 << 20;
/// How long a helper program may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
/// glibc reads at most three nameservers.
const MAX_NAMESERVERS: usize = 3;
/// Search domains kept in resolv.conf.
const MAX_SEARCH: usize = 6;

/// Where DNS settings were installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsBackend {
    /// systemd-resolved per-link settings.
    Resolved,
    /// A resolvconf record.
    Resolvconf,
    /// `/etc/resolv.conf` rewritten in place.
    File,
    /// DNS was left alone.
    None,
}

/// Finds an executable in `PATH` (and the usual sbin directories).
pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(tool))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs a helper program with a timeout, feeding `stdin`; returns its standard output.
pub(crate) fn run_tool(
    tool: &'static str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<String, Error> {
    let exe = which(tool).ok_or(Error::Command {
        tool,
        msg: "not installed".into(),
    })?;
    let cmd_err = |msg: String| Error::Command { tool, msg };
    let mut child = Command::new(exe)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| cmd_err(e.to_string()))?;
    if let (Some(data), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(data)
            .map_err(|e| cmd_err(format!("writing its input: {e}")))?;
    }
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| cmd_err(e.to_string()))? {
            Some(s) => break s,
            None if start.elapsed() > TOOL_TIMEOUT => {
                // Ends only the child we started, by its PID.
                let _ = child.kill();
                let _ = child.wait();
                return Err(cmd_err(format!("timed out after {TOOL_TIMEOUT:?}")));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.by_ref().take(1 << 20).read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(1 << 16).read_to_string(&mut err);
    }
    if status.success() {
        Ok(out)
    } else {
        Err(cmd_err(format!(
            "{} ({status}): {}",
            args.join(" "),
            err.trim()
        )))
    }
}

/// True when resolv.conf sends queries to systemd-resolved's stub listener.
pub(crate) fn points_at_resolved_stub(resolv_conf: &[u8]) -> bool {
    String::from_utf8_lossy(resolv_conf).lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some("nameserver") && matches!(w.next(), Some("127.0.0.53" | "127.0.0.54"))
    })
}

/// True when `path` is a mount point of its own (a bind mount, as in containers and under
/// `ip netns exec`), judged from `/proc/self/mountinfo`.
pub(crate) fn is_mount_point(mountinfo: &str, path: &str) -> bool {
    mountinfo
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(path))
}

/// Picks the backend; `resolved_answers` is asked only when the stub is configured.
pub(crate) fn choose(
    mode: DnsMode,
    stub: bool,
    resolved_answers: impl FnOnce() -> bool,
    resolvconf_installed: bool,
    resolv_conf_bind_mounted: bool,
) -> DnsBackend {
    match mode {
        DnsMode::Off => DnsBackend::None,
        DnsMode::Resolved => DnsBackend::Resolved,
        DnsMode::Resolvconf => DnsBackend::Resolvconf,
        DnsMode::File => DnsBackend::File,
        DnsMode::Auto => {
            if stub && resolved_answers() {
                DnsBackend::Resolved
            } else if resolvconf_installed && !resolv_conf_bind_mounted {
                DnsBackend::Resolvconf
            } else {
                DnsBackend::File
            }
        }
    }
}

/// Decides the backend for this host.
pub(crate) fn detect(mode: DnsMode, ifname: &str) -> DnsBackend {
    let stub = read_limited(Path::new(RESOLV_CONF))
        .map(|c| points_at_resolved_stub(&c))
        .unwrap_or(false);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    choose(
        mode,
        stub,
        || resolved_knows_link(ifname),
        which("resolvconf").is_some(),
        is_mount_point(&mountinfo, RESOLV_CONF),
    )
}

/// True when systemd-resolved answers on the bus and sees our link under the same name (so it
/// runs in our network namespace).
fn resolved_knows_link(ifname: &str) -> bool {
    run_tool("resolvectl", &["status", ifname], None).is_ok_and(|out| {
        out.lines()
            .next()
            .is_some_and(|l| l.trim().ends_with(&format!("({ifname})")))
    })
}

/// Reads a file of at most 1 MiB.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    let f =
        fs::File::open(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut v = Vec::new();
    f.take(MAX_RESOLV_CONF + 1)
        .read_to_end(&mut v)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if v.len() as u64 > MAX_RESOLV_CONF {
        return Err(Error::Config(format!("{} is too large", path.display())));
    }
    Ok(v)
}

/// Overwrites a file in place (same inode: works on bind mounts where rename gives EBUSY).
pub(crate) fn write_in_place(path: &Path, content: &[u8]) -> Result<(), Error> {
    let err = |e| Error::io(format!("writing {}", path.display()), e);
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(content).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Checks a search domain before it goes into a configuration file.
pub(crate) fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// A resolvconf record / resolv.conf fragment with our servers and domains only.
pub(crate) fn render_fragment(dns: &[IpAddr], search: &[String]) -> Vec<u8> {
    let mut s = String::new();
    for d in dns.iter().take(MAX_NAMESERVERS) {
        s.push_str(&format!("nameserver {d}\n"));
    }
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    s.into_bytes()
}

/// The new resolv.conf: our servers first; with `keep_old_servers` (split tunnel) the old ones
/// follow up to glibc's limit of three. Old search domains follow ours; old `options` stay.
pub(crate) fn render_resolv_conf(
    old: &[u8],
    ifname: &str,
    dns: &[IpAddr],
    search: &[String],
    keep_old_servers: bool,
) -> Vec<u8> {
    let old = String::from_utf8_lossy(old);
    let mut servers: Vec<String> = dns.iter().map(ToString::to_string).collect();
    let mut domains: Vec<String> = search.to_vec();
    let mut options = Vec::new();
    for line in old.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") if keep_old_servers => {
                if let Some(a) = w.next() {
                    if !servers.iter().any(|s| s == a) {
                        servers.push(a.to_owned());
                    }
                }
            }
            Some("search") | Some("domain") => {
                for d in w {
                    if !domains.iter().any(|x| x == d) {
                        domains.push(d.to_owned());
                    }
                }
            }
            Some("options") => options.push(line.trim().to_owned()),
            _ => {}
        }
    }
    servers.truncate(MAX_NAMESERVERS);
    domains.truncate(MAX_SEARCH);
    let mut s = format!(
        "# Generated by l2sec for {ifname}; the previous file is restored on disconnect.\n"
    );
    for a in &servers {
        s.push_str(&format!("nameserver {a}\n"));
    }
    if !domains.is_empty() {
        s.push_str(&format!("search {}\n", domains.join(" ")));
    }
    for o in options {
        s.push_str(&o);
        s.push('\n');
    }
    s.into_bytes()
}

/// Applies per-link DNS in systemd-resolved.
pub(crate) fn resolved_apply(
    ifname: &str,
    dns: &[IpAddr],
    search: &[String],
    full: bool,
) -> Result<(), Error> {
    let servers: Vec<String> = dns.iter().map(ToString::to_string).collect();
    let mut args = vec!["dns", ifname];
    args.extend(servers.iter().map(String::as_str));
    run_tool("resolvectl", &args, None)?;
    let mut args = vec!["domain", ifname];
    if full {
        args.push("~.");
    }
    args.extend(search.iter().map(String::as_str));
    if args.len() > 2 {
        run_tool("resolvectl", &args, None)?;
    }
    if full {
        // Older systemd lacks default-route; "~." alone already routes all queries here.
        let _ = run_tool("resolvectl", &["default-route", ifname, "true"], None);
    }
    Ok(())
}

/// Drops all per-link settings of `ifname` in systemd-resolved.
pub(crate) fn resolved_revert(ifname: &str) -> Result<(), Error> {
    run_tool("resolvectl", &["revert", ifname], None).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_detection() {
        assert!(points_at_resolved_stub(
            b"# managed\nnameserver 127.0.0.53\noptions edns0 trust-ad\n"
        ));
        assert!(!points_at_resolved_stub(b"nameserver 127.0.0.530\n"));
        assert!(!points_at_resolved_stub(
            b"#nameserver 127.0.0.53\nnameserver 198.18.99.53\n"
        ));
        assert!(!points_at_resolved_stub(b"\xff\xfe"));
    }

    #[test]
    fn mountinfo_parse() {
        let mi = "36 35 98:0 / / rw,relatime - ext4 /dev/root rw\n\
                  612 36 0:44 /netns/x/resolv.conf /etc/resolv.conf rw - tmpfs tmpfs rw\n";
        assert!(is_mount_point(mi, "/etc/resolv.conf"));
        assert!(!is_mount_point(mi, "/etc/hosts"));
    }

    #[test]
    fn backend_choice_policy() {
        use DnsBackend as B;
        let never = || panic!("resolved must not be probed without the stub");
        assert_eq!(choose(DnsMode::Auto, false, never, false, false), B::File);
        assert_eq!(
            choose(DnsMode::Auto, true, || true, true, false),
            B::Resolved
        );
        assert_eq!(
            choose(DnsMode::Auto, true, || false, true, false),
            B::Resolvconf
        );
        assert_eq!(choose(DnsMode::Auto, true, || false, true, true), B::File);
        assert_eq!(
            choose(DnsMode::Auto, false, never, true, false),
            B::Resolvconf
        );
        assert_eq!(choose(DnsMode::Off, true, never, true, false), B::None);
        assert_eq!(choose(DnsMode::File, true, never, true, false), B::File);
        assert_eq!(
            choose(DnsMode::Resolved, false, never, false, true),
            B::Resolved
        );
    }

    #[test]
    fn resolv_conf_full_and_split() {
        let old = b"nameserver 198.18.99.53\nnameserver 198.18.99.54\nsearch lab.example\noptions edns0\n";
        let dns: Vec<IpAddr> = vec!["198.19.0.1".parse().unwrap()];
        let search = vec!["corp.example".to_owned()];
        let full = render_resolv_conf(old, "l2sec0", &dns, &search, false);
        assert_eq!(
            String::from_utf8(full).unwrap(),
            "# Generated by l2sec for l2sec0; the previous file is restored on disconnect.\n\
             nameserver 198.19.0.1\nsearch corp.example lab.example\noptions edns0\n"
        );
        let split = render_resolv_conf(old, "l2sec0", &dns, &[], true);
        assert_eq!(
            String::from_utf8(split).unwrap(),
            "# Generated by l2sec for l2sec0; the previous file is restored on disconnect.\n\
             nameserver 198.19.0.1\nnameserver 198.18.99.53\nnameserver 198.18.99.54\n\
             search lab.example\noptions edns0\n"
        );
    }

    #[test]
    fn fragment_and_domains() {
        let dns: Vec<IpAddr> = vec![
            "198.19.0.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ];
        assert_eq!(
            render_fragment(&dns, &["a.example".into()]),
            b"nameserver 198.19.0.1\nnameserver 2001:db8::1\nsearch a.example\n"
        );
        assert!(valid_domain("corp.example"));
        assert!(!valid_domain("bad domain"));
        assert!(!valid_domain("evil\nnameserver 1.1.1.1"));
        assert!(!valid_domain(""));
    }

    #[test]
    fn write_in_place_keeps_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("resolv.conf");
        fs::write(&p, b"old content that is longer\n").unwrap();
        let ino = fs::metadata(&p).unwrap().ino();
        write_in_place(&p, b"new\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new\n");
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
        assert_eq!(read_limited(&p).unwrap(), b"new\n");
    }

    #[test]
    fn missing_tool_is_reported() {
        let e = run_tool("l2sec-no-such-tool", &[], None).unwrap_err();
        assert!(e.to_string().contains("not installed"), "{e}");
    }
}
