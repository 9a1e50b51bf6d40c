//! DNS: systemd-resolved (per-link settings over D-Bus), resolvconf, or `/etc/resolv.conf`
//! written in place.

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

/// Decides the backend for this host and the TUN device `ifname` of index `ifindex`.
pub(crate) fn detect(mode: DnsMode, ifindex: u32, ifname: &str) -> DnsBackend {
    let stub = read_limited(Path::new(RESOLV_CONF))
        .map(|c| points_at_resolved_stub(&c))
        .unwrap_or(false);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    choose(
        mode,
        stub,
        || resolved_answers(ifindex, ifname),
        which("resolvconf").is_some(),
        is_mount_point(&mountinfo, RESOLV_CONF),
    )
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

/// systemd-resolved's bus name.
const RESOLVE1: &str = "org.freedesktop.resolve1";
/// Its manager object.
const RESOLVE1_PATH: &str = "/org/freedesktop/resolve1";
/// Its manager interface (`SetLinkDNS`, `SetLinkDomains`, `SetLinkDefaultRoute`, `RevertLink`).
const RESOLVE1_MANAGER: &str = "org.freedesktop.resolve1.Manager";
/// resolved's error for an interface index it does not know.
const NO_SUCH_LINK: &str = "org.freedesktop.resolve1.NoSuchLink";
/// How long resolved may take to notice a device that was just created (it learns of links
/// from rtnetlink, after we do).
const LINK_WAIT: Duration = Duration::from_secs(2);
/// The comm of systemd-resolved's process (the kernel keeps 15 bytes).
const RESOLVED_COMM: &str = "systemd-resolve";

/// The D-Bus error name of a failed call, if the peer answered with one.
fn bus_error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str().to_owned()),
        zbus::Error::FDO(f) => Some(zbus::DBusError::name(f.as_ref()).as_str().to_owned()),
        _ => None,
    }
}

/// What to do about a failed call to systemd-resolved, from its D-Bus error name (`None`: no
/// answer from the bus at all).
fn resolved_hint(error_name: Option<&str>) -> &'static str {
    match error_name {
        None => {
            "the system bus (/run/dbus/system_bus_socket) does not answer: start dbus, or \
             set `dns = false` (--no-dns) to leave DNS alone"
        }
        Some(NO_SUCH_LINK) => {
            "systemd-resolved does not see the interface (gone, or resolved runs in another \
             network namespace): set `dns = false` (--no-dns) to leave DNS alone"
        }
        Some(
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner"
            | "org.freedesktop.DBus.Error.NoReply",
        ) => {
            "systemd-resolved is not running: start it (systemctl start systemd-resolved), or \
             set `dns = false` (--no-dns) to leave DNS alone"
        }
        Some(
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ) => "systemd-resolved refused: run l2sec as root or with CAP_NET_ADMIN",
        Some(_) => "set `dns = false` (--no-dns) to leave DNS alone",
    }
}

/// A failed step of the systemd-resolved backend as the crate's error.
fn resolved_error(step: &str, ifname: &str, ifindex: u32, e: &zbus::Error) -> Error {
    let name = bus_error_name(e);
    Error::Command {
        tool: "systemd-resolved",
        msg: format!(
            "{step} for {ifname} (ifindex {ifindex}) over D-Bus: {e}; {}",
            resolved_hint(name.as_deref())
        ),
    }
}

/// The `a(iay)` argument of `SetLinkDNS`: address family and address bytes.
fn link_dns(dns: &[IpAddr]) -> Vec<(i32, Vec<u8>)> {
    dns.iter()
        .map(|a| match a {
            IpAddr::V4(v4) => (libc::AF_INET, v4.octets().to_vec()),
            IpAddr::V6(v6) => (libc::AF_INET6, v6.octets().to_vec()),
        })
        .collect()
}

/// The `a(sb)` argument of `SetLinkDomains` (name, routing-only): the search domains, plus the
/// root routing domain `~.` with a full tunnel so every query goes to the tunnel's servers.
fn link_domains(search: &[String], full: bool) -> Vec<(String, bool)> {
    let root = full.then(|| (".".to_owned(), true));
    root.into_iter()
        .chain(search.iter().map(|d| (d.clone(), false)))
        .collect()
}

/// `SetLinkDefaultRoute`: on with a full tunnel; off with a split tunnel that has search domains
/// (only they go to the tunnel's servers); untouched otherwise (resolved then uses the link for
/// all queries alongside the others, as the resolv.conf backend does).
fn link_default_route(search: &[String], full: bool) -> Option<bool> {
    if full {
        Some(true)
    } else if search.is_empty() {
        None
    } else {
        Some(false)
    }
}

/// True, false, or unknown (`None`): `pid` runs in our network namespace and is resolved.
fn same_netns(pid: u32) -> Option<bool> {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if comm.trim_end() != RESOLVED_COMM {
        // a PID of another PID namespace (the bus daemon's view), or a reused one
        return None;
    }
    let ours = fs::read_link("/proc/self/ns/net").ok()?;
    // needs ptrace access to resolved: true for root, not under a capability-bounded unit
    let theirs = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    Some(ours == theirs)
}

/// A connection to systemd-resolved on the system bus, for one interface.
pub(crate) struct Resolved {
    bus: zbus::blocking::Connection,
    ifname: String,
    ifindex: u32,
    /// The `i` argument every `SetLink*` method takes.
    arg: i32,
}

impl Resolved {
    /// Connects to the system bus (`$DBUS_SYSTEM_BUS_ADDRESS` or the standard socket) and
    /// refuses a resolved that provably runs in another network namespace: there the same
    /// ifindex names another interface.
    fn open(ifindex: u32, ifname: &str) -> Result<Resolved, Error> {
        let fail = |step: &str, e: &zbus::Error| resolved_error(step, ifname, ifindex, e);
        let arg = i32::try_from(ifindex)
            .map_err(|_| Error::NoSuchInterface(format!("{ifname} (ifindex {ifindex})")))?;
        let bus = zbus::blocking::connection::Builder::system()
            .and_then(|b| b.method_timeout(TOOL_TIMEOUT).build())
            .map_err(|e| fail("connecting to the system bus", &e))?;
        let r = Resolved {
            bus,
            ifname: ifname.to_owned(),
            ifindex,
            arg,
        };
        let pid: u32 = r
            .bus
            .call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus"),
                "GetConnectionUnixProcessID",
                &RESOLVE1,
            )
            .and_then(|m| m.body().deserialize())
            .map_err(|e| fail("looking up org.freedesktop.resolve1", &e))?;
        if same_netns(pid) == Some(false) {
            return Err(Error::Command {
                tool: "systemd-resolved",
                msg: format!(
                    "it runs in another network namespace than {ifname} (pid {pid}): \
                     set `dns = false` (--no-dns) to leave DNS alone"
                ),
            });
        }
        Ok(r)
    }

    /// Calls a manager method with the interface index first.
    fn call<B>(&self, method: &str, args: &B) -> Result<(), zbus::Error>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.bus
            .call_method(
                Some(RESOLVE1),
                RESOLVE1_PATH,
                Some(RESOLVE1_MANAGER),
                method,
                args,
            )
            .map(drop)
    }

    /// Waits until resolved knows the interface (a device created a moment ago may not be
    /// known yet).
    fn wait_for_link(&self) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            match self.call("GetLink", &self.arg) {
                Ok(()) => return Ok(()),
                Err(e)
                    if bus_error_name(&e).as_deref() == Some(NO_SUCH_LINK)
                        && start.elapsed() < LINK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(self.error("GetLink", &e)),
            }
        }
    }

    /// A failed step for this interface as the crate's error.
    fn error(&self, step: &str, e: &zbus::Error) -> Error {
        resolved_error(step, &self.ifname, self.ifindex, e)
    }

    /// Connects for an interface that resolved knows (waiting a moment for a new device).
    /// Changes nothing.
    ///
    /// # Errors
    /// [`Error::Command`] naming the failed step and what to do.
    pub(crate) fn for_link(ifindex: u32, ifname: &str) -> Result<Resolved, Error> {
        let r = Resolved::open(ifindex, ifname)?;
        r.wait_for_link()?;
        Ok(r)
    }

    /// Gives the interface its DNS servers, search domains and (full tunnel) the `~.` routing
    /// domain.
    ///
    /// # Errors
    /// [`Error::Command`] naming the method that failed and what to do.
    pub(crate) fn apply(&self, dns: &[IpAddr], search: &[String], full: bool) -> Result<(), Error> {
        self.call("SetLinkDNS", &(self.arg, link_dns(dns)))
            .map_err(|e| self.error("SetLinkDNS", &e))?;
        self.call("SetLinkDomains", &(self.arg, link_domains(search, full)))
            .map_err(|e| self.error("SetLinkDomains", &e))?;
        if let Some(on) = link_default_route(search, full) {
            match self.call("SetLinkDefaultRoute", &(self.arg, on)) {
                Ok(()) => {}
                // systemd before 240: "~." alone already routes every query to the link
                Err(e)
                    if bus_error_name(&e).as_deref()
                        == Some("org.freedesktop.DBus.Error.UnknownMethod") =>
                {
                    tracing::debug!(error = %e, "systemd-resolved has no SetLinkDefaultRoute");
                }
                Err(e) => return Err(self.error("SetLinkDefaultRoute", &e)),
            }
        }
        Ok(())
    }
}

/// True when systemd-resolved answers on the system bus, runs in our network namespace as far
/// as we can tell, and knows our interface.
fn resolved_answers(ifindex: u32, ifname: &str) -> bool {
    match Resolved::for_link(ifindex, ifname) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "not using systemd-resolved");
            false
        }
    }
}

/// Drops every per-link setting of the interface in systemd-resolved. An interface resolved no
/// longer knows is no failure: its settings went with it.
pub(crate) fn resolved_revert(ifindex: u32, ifname: &str) -> Result<(), Error> {
    let r = Resolved::open(ifindex, ifname)?;
    match r.call("RevertLink", &r.arg) {
        Ok(()) => Ok(()),
        Err(e) if bus_error_name(&e).as_deref() == Some(NO_SUCH_LINK) => Ok(()),
        Err(e) => Err(r.error("RevertLink", &e)),
    }
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
    fn resolved_link_arguments() {
        let dns: Vec<IpAddr> = vec![
            "198.19.0.53".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ];
        let servers = link_dns(&dns);
        assert_eq!(servers[0], (libc::AF_INET, vec![198, 19, 0, 53]));
        assert_eq!(servers[1].0, libc::AF_INET6);
        assert_eq!(servers[1].1.len(), 16);
        assert_eq!(servers[1].1[..4], [0x20, 0x01, 0x0d, 0xb8]);
        let search = vec!["corp.example".to_owned()];
        assert_eq!(
            link_domains(&search, true),
            vec![(".".to_owned(), true), ("corp.example".to_owned(), false)]
        );
        assert_eq!(
            link_domains(&search, false),
            vec![("corp.example".to_owned(), false)]
        );
        assert!(link_domains(&[], false).is_empty());
        assert_eq!(link_default_route(&search, true), Some(true));
        assert_eq!(link_default_route(&[], true), Some(true));
        assert_eq!(link_default_route(&search, false), Some(false));
        assert_eq!(link_default_route(&[], false), None);
    }

    #[test]
    fn resolved_errors_say_what_to_do() {
        assert!(resolved_hint(None).contains("start dbus"));
        assert!(resolved_hint(Some(NO_SUCH_LINK)).contains("another network namespace"));
        assert!(
            resolved_hint(Some("org.freedesktop.DBus.Error.ServiceUnknown"))
                .contains("systemctl start systemd-resolved")
        );
        assert!(
            resolved_hint(Some("org.freedesktop.DBus.Error.AccessDenied"))
                .contains("CAP_NET_ADMIN")
        );
        let e = resolved_error(
            "SetLinkDNS",
            "l2sec0",
            7,
            &zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::from(
                std::io::ErrorKind::NotFound,
            ))),
        );
        let text = e.to_string();
        assert!(
            text.starts_with(
                "systemd-resolved failed: SetLinkDNS for l2sec0 (ifindex 7) over D-Bus:"
            ),
            "{text}"
        );
        assert!(text.contains("start dbus"), "{text}");
        // no process of ours is systemd-resolved
        assert_eq!(same_netns(std::process::id()), None);
    }

    #[test]
    fn missing_tool_is_reported() {
        let e = run_tool("l2sec-no-such-tool", &[], None).unwrap_err();
        assert!(e.to_string().contains("not installed"), "{e}");
    }
}
