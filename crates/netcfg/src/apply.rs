//! Applying a [`HostConfig`], and undoing it from the journal.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use crate::dns::{self, DnsBackend, RESOLV_CONF};
use crate::journal::{self, Entry, Journal};
use crate::nl::{AddrSpec, Netlink, RouteSpec, TABLE_MAIN};
use crate::tun::valid_ifname;
use crate::{Error, HostConfig, IpNet, RoutePlan, mss};

/// The MTU of the path the kernel would use to reach `dst` now: the route's `mtu` metric, or
/// else the output interface's MTU (pass it to [`crate::mtu_for`]).
///
/// # Errors
/// [`Error::NoRouteToServer`] when `dst` is unreachable; netlink failures.
pub fn path_mtu(dst: IpAddr) -> Result<u16, Error> {
    let mut nl = Netlink::open()?;
    let found = nl.route_get(dst)?.ok_or(Error::NoRouteToServer(dst))?;
    let mtu = match found.mtu {
        Some(m) if m > 0 => m,
        _ => {
            nl.link_state(found.oif)?
                .ok_or_else(|| Error::NoSuchInterface(format!("#{}", found.oif)))?
                .1
                .mtu
        }
    };
    Ok(u16::try_from(mtu).unwrap_or(u16::MAX))
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Journals processed.
    pub journals: usize,
    /// Changes undone.
    pub undone: usize,
    /// Things worth telling the user (a file changed by someone else meanwhile, ...).
    pub warnings: Vec<String>,
}

impl std::fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} change(s) undone from {} journal(s)",
            self.undone, self.journals
        )?;
        for w in &self.warnings {
            write!(f, "; {w}")?;
        }
        Ok(())
    }
}

/// The host changes of one connection; restores them when dropped.
#[derive(Debug)]
pub struct Applied {
    journal: Option<Journal>,
    ifname: String,
    ifindex: u32,
    server: IpAddr,
    server_route: bool,
    backend: DnsBackend,
    warnings: Vec<String>,
}

/// Why the step sequence stopped early.
enum Stop {
    /// The test budget of changes is used up (crash tests).
    Budget,
    /// A real error.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// The state shared by the steps of one `apply`.
struct Ctx {
    nl: Netlink,
    journal: Journal,
    budget: Option<usize>,
}

impl Ctx {
    /// Journals `e` before its change is made.
    fn record(&mut self, e: Entry) -> Result<(), Stop> {
        match &mut self.budget {
            Some(0) => return Err(Stop::Budget),
            Some(n) => *n -= 1,
            None => {}
        }
        self.journal.push(e)?;
        Ok(())
    }

    /// Adds a route, journaled; an identical route already present stays someone else's.
    fn add_route(&mut self, r: RouteSpec) -> Result<bool, Stop> {
        self.record(Entry::Route(r.clone()))?;
        match self.nl.route_add(&r) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.journal.pop()?;
                Ok(false)
            }
            Err(e) => Err(Error::netlink(format!("add route {}", r.dst), e).into()),
        }
    }
}

/// True for errno values that mean "already gone".
fn gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ESRCH)
            | Some(libc::ENOENT)
            | Some(libc::ENODEV)
            | Some(libc::EADDRNOTAVAIL)
            | Some(libc::ENXIO)
    )
}

/// The host route to the VPN server through whatever carries it now (the original gateway).
fn server_route(nl: &mut Netlink, server: IpAddr, tun_index: u32) -> Result<RouteSpec, Error> {
    let found = nl
        .route_get(server)?
        .ok_or(Error::NoRouteToServer(server))?;
    if found.oif == tun_index {
        return Err(Error::NoRouteToServer(server));
    }
    Ok(RouteSpec {
        dst: IpNet::host(server),
        gateway: found.gateway,
        oif: found.oif,
        table: TABLE_MAIN,
    })
}

fn check_config(cfg: &HostConfig) -> Result<(), Error> {
    if !valid_ifname(&cfg.ifname) {
        return Err(Error::InvalidName(cfg.ifname.clone()));
    }
    if cfg.mtu < 68 {
        return Err(Error::Config(format!("mtu {} is below 68", cfg.mtu)));
    }
    if let Some(bad) = cfg.search.iter().find(|d| !dns::valid_domain(d)) {
        return Err(Error::Config(format!("invalid search domain {bad:?}")));
    }
    Ok(())
}

/// Restores a leftover journal of `ifname` in `dir` whose process is gone.
fn take_over_leftover(dir: &Path, ifname: &str) -> Result<(), Error> {
    let path = journal::path_for(dir, ifname);
    if !path.exists() {
        return Ok(());
    }
    let data = journal::load(&path)?;
    if data.owner_alive() {
        return Err(Error::Busy {
            ifname: ifname.to_owned(),
            pid: data.pid,
        });
    }
    tracing::warn!(journal = %path.display(), "restoring changes left by a previous run");
    restore_journal(Journal::from_disk(path, data)).map(drop)
}

impl Applied {
    /// Configures the existing interface `cfg.ifname`: MTU, addresses, up, routes, DNS, MSS
    /// clamping. Every change is journaled first; on error the changes made so far are undone.
    ///
    /// # Errors
    /// [`Error::Permission`] without `CAP_NET_ADMIN`, [`Error::NoSuchInterface`],
    /// [`Error::NoRouteToServer`], [`Error::Busy`] when another live l2sec owns the interface,
    /// and any netlink, journal or helper-program failure.
    pub fn apply(cfg: &HostConfig) -> Result<Applied, Error> {
        Self::apply_limited(cfg, None)
    }

    /// `apply` that stops after `budget` changes (tests simulate a crash in the middle).
    pub(crate) fn apply_limited(cfg: &HostConfig, budget: Option<usize>) -> Result<Applied, Error> {
        check_config(cfg)?;
        take_over_leftover(&cfg.journal_dir, &cfg.ifname)?;
        let mut nl = Netlink::open()?;
        let ifindex = nl.link_index(&cfg.ifname)?;
        let backend = if cfg.dns.is_empty() {
            DnsBackend::None
        } else {
            dns::detect(cfg.dns_mode, ifindex, &cfg.ifname)
        };
        let journal = Journal::create(&cfg.journal_dir, &cfg.ifname)?;
        let mut ctx = Ctx {
            nl,
            journal,
            budget,
        };
        let mut applied = Applied {
            journal: None,
            ifname: cfg.ifname.clone(),
            ifindex,
            server: cfg.server,
            server_route: false,
            backend,
            warnings: Vec::new(),
        };
        match applied.run(&mut ctx, cfg) {
            Ok(()) | Err(Stop::Budget) => {
                applied.journal = Some(ctx.journal);
                Ok(applied)
            }
            Err(Stop::Failed(e)) => {
                drop(ctx.nl);
                if let Err(undo) = restore_journal(ctx.journal) {
                    tracing::error!(error = %undo, "undoing a failed apply");
                }
                Err(e)
            }
        }
    }

    fn run(&mut self, ctx: &mut Ctx, cfg: &HostConfig) -> Result<(), Stop> {
        let idx = self.ifindex;
        let name = cfg.ifname.as_str();
        let (_, before) = ctx
            .nl
            .link_state(idx)?
            .ok_or_else(|| Error::NoSuchInterface(name.to_owned()))?;
        ctx.record(Entry::Link {
            ifname: name.to_owned(),
            ifindex: idx,
            was_up: before.up,
            mtu: before.mtu,
        })?;
        ctx.nl
            .set_link(idx, None, Some(u32::from(cfg.mtu)))
            .map_err(|e| Error::netlink(format!("set mtu {} on {name}", cfg.mtu), e))?;

        let mut addrs = vec![AddrSpec {
            ifindex: idx,
            local: cfg.local.into(),
            peer: Some(cfg.peer.into()),
            prefix_len: 32,
        }];
        match cfg.prefix6 {
            Some((ours, peer)) if cfg.mtu >= 1280 => addrs.push(AddrSpec {
                ifindex: idx,
                local: ours.into(),
                peer: Some(peer.into()),
                prefix_len: 128,
            }),
            Some(_) => self
                .warnings
                .push(format!("mtu {} is below 1280: no IPv6 on {name}", cfg.mtu)),
            None => {}
        }
        for a in addrs {
            ctx.record(Entry::Addr(a.clone()))?;
            match ctx.nl.addr_add(&a) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => ctx.journal.pop()?,
                // IPv6 disabled on the host (EACCES) or the link: go on without it.
                Err(e) if a.local.is_ipv6() && e.raw_os_error() != Some(libc::EPERM) => {
                    ctx.journal.pop()?;
                    self.warnings
                        .push(format!("no IPv6 address on {name}: {e}"));
                }
                Err(e) => return Err(Error::netlink(format!("add address {}", a.local), e).into()),
            }
        }
        ctx.nl
            .set_link(idx, Some(true), None)
            .map_err(|e| Error::netlink(format!("set {name} up"), e))?;

        if !cfg.dns.is_empty() {
            self.apply_dns(ctx, cfg)?;
        }

        let nets: Vec<IpNet> = match &cfg.routes {
            RoutePlan::Full => vec!["0.0.0.0/1".parse()?, "128.0.0.0/1".parse()?],
            RoutePlan::Split(v) => v.clone(),
            RoutePlan::None => Vec::new(),
        };
        self.add_tunnel_routes(ctx, &nets)?;

        if let Some((v4, v6)) = cfg.mss_clamp.mss(cfg.mtu) {
            if mss::available() {
                ctx.record(Entry::Nft {
                    table: mss::TABLE.to_owned(),
                })?;
                if let Err(e) = mss::install(name, v4, v6) {
                    self.warnings
                        .push(format!("TCP MSS clamping not installed: {e}"));
                    ctx.journal.pop()?;
                }
            } else {
                self.warnings
                    .push("nft not found: TCP MSS through the tunnel is not clamped".into());
            }
        }
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
        Ok(())
    }

    fn apply_dns(&mut self, ctx: &mut Ctx, cfg: &HostConfig) -> Result<(), Stop> {
        let full = cfg.routes == RoutePlan::Full;
        match self.backend {
            DnsBackend::None => {}
            DnsBackend::File => {
                let path = Path::new(RESOLV_CONF);
                let old = dns::read_limited(path)?;
                let new = dns::render_resolv_conf(&old, &cfg.ifname, &cfg.dns, &cfg.search, !full);
                ctx.record(Entry::File {
                    path: path.to_owned(),
                    old,
                    new: new.clone(),
                })?;
                dns::write_in_place(path, &new)?;
            }
            DnsBackend::Resolvconf => {
                let record = format!("{}.l2sec", cfg.ifname);
                ctx.record(Entry::Resolvconf {
                    record: record.clone(),
                })?;
                let frag = dns::render_fragment(&cfg.dns, &cfg.search);
                dns::run_tool("resolvconf", &["-a", &record], Some(&frag))?;
            }
            DnsBackend::Resolved => {
                // reaching resolved changes nothing: when it fails, nothing is journaled
                let resolved = dns::Resolved::for_link(self.ifindex, &cfg.ifname)?;
                ctx.record(Entry::Resolved {
                    ifname: cfg.ifname.clone(),
                })?;
                resolved.apply(&cfg.dns, &cfg.search, full)?;
            }
        }
        Ok(())
    }

    fn add_tunnel_routes(&mut self, ctx: &mut Ctx, nets: &[IpNet]) -> Result<(), Stop> {
        if !self.server_route && nets.iter().any(|n| n.contains(self.server)) {
            let r = server_route(&mut ctx.nl, self.server, self.ifindex)?;
            ctx.add_route(r)?;
            self.server_route = true;
        }
        for n in nets {
            ctx.add_route(RouteSpec {
                dst: *n,
                gateway: None,
                oif: self.ifindex,
                table: TABLE_MAIN,
            })?;
        }
        Ok(())
    }

    /// Adds routes through the tunnel later (classless static routes pushed by the server);
    /// a route already present is left alone and not journaled.
    ///
    /// # Errors
    /// Netlink or journal failures; routes added before the failure stay journaled.
    pub fn update_routes(&mut self, add: &[IpNet]) -> Result<(), Error> {
        let journal = self
            .journal
            .take()
            .ok_or_else(|| Error::Config("configuration already restored".into()))?;
        let mut ctx = Ctx {
            nl: Netlink::open()?,
            journal,
            budget: None,
        };
        let r = self.add_tunnel_routes(&mut ctx, add);
        self.journal = Some(ctx.journal);
        match r {
            Ok(()) | Err(Stop::Budget) => Ok(()),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    /// The DNS backend in use.
    #[must_use]
    pub fn dns_backend(&self) -> DnsBackend {
        self.backend
    }

    /// The configured interface's index.
    #[must_use]
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Non-fatal problems met while applying (no `nft`, no IPv6 below MTU 1280, ...).
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Undoes every change in reverse order and removes the journal. The TUN device itself is
    /// left to its owner (it disappears when its descriptor closes).
    ///
    /// # Errors
    /// [`Error::RestoreIncomplete`] when some steps failed; they stay journaled for
    /// [`cleanup`].
    pub fn restore(mut self) -> Result<RestoreReport, Error> {
        match self.journal.take() {
            Some(j) => restore_journal(j),
            None => Ok(RestoreReport::default()),
        }
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if let Some(j) = self.journal.take() {
            if let Err(e) = restore_journal(j) {
                tracing::error!(ifname = %self.ifname, error = %e, "restoring host configuration");
            }
        }
    }
}

/// Undoes one entry; `Ok(Some(warning))` for something worth saying.
fn undo(nl: &mut Netlink, e: &Entry) -> Result<Option<String>, Error> {
    match e {
        Entry::Link {
            ifname,
            ifindex,
            was_up,
            mtu,
        } => match nl.link_state(*ifindex)? {
            Some((name, now)) if &name == ifname && (now.up != *was_up || now.mtu != *mtu) => nl
                .set_link(*ifindex, Some(*was_up), Some(*mtu))
                .map(|()| None)
                .or_else(|e| if gone(&e) { Ok(None) } else { Err(e) })
                .map_err(|e| Error::netlink(format!("reset link {ifname}"), e)),
            _ => Ok(None),
        },
        Entry::Addr(a) => match nl.addr_del(a) {
            Ok(()) => Ok(None),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(Error::netlink(format!("delete address {}", a.local), e)),
        },
        Entry::Route(r) => match nl.route_del(r) {
            Ok(()) => Ok(None),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(Error::netlink(format!("delete route {}", r.dst), e)),
        },
        Entry::File { path, old, new } => {
            let now = fs::read(path).ok();
            dns::write_in_place(path, old)?;
            Ok((now.as_deref() != Some(new.as_slice())).then(|| {
                format!(
                    "{} was changed by someone else while connected; restored it anyway",
                    path.display()
                )
            }))
        }
        Entry::Resolved { ifname } => match nl.link_index(ifname) {
            Ok(ifindex) => dns::resolved_revert(ifindex, ifname).map(|()| None),
            Err(Error::NoSuchInterface(_)) => Ok(None),
            Err(e) => Err(e),
        },
        Entry::Resolvconf { record } => {
            dns::run_tool("resolvconf", &["-d", record], None).map(|_| None)
        }
        Entry::Nft { table } => mss::remove(table).map(|()| None),
    }
}

/// Undoes a journal's entries newest first; removes it when all succeeded.
fn restore_journal(mut j: Journal) -> Result<RestoreReport, Error> {
    let mut report = RestoreReport {
        journals: 1,
        ..RestoreReport::default()
    };
    let mut nl = Netlink::open()?;
    let mut failed: Vec<(Entry, Error)> = Vec::new();
    for e in j.entries().iter().rev() {
        match undo(&mut nl, e) {
            Ok(w) => {
                report.undone += 1;
                report.warnings.extend(w);
            }
            Err(err) => failed.push((e.clone(), err)),
        }
    }
    if failed.is_empty() {
        j.remove()?;
        return Ok(report);
    }
    let count = failed.len();
    let first = failed[0].1.to_string();
    let keep: Vec<Entry> = failed.into_iter().rev().map(|(e, _)| e).collect();
    j.set_entries(keep)?;
    Err(Error::RestoreIncomplete {
        failed: count,
        first,
    })
}

/// Journals in `dir`, with their paths.
fn journals(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .filter_map(Result::ok)
        .map(|d| d.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(journal::SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

/// True when `dir` holds a journal of a process that no longer runs (a crash to clean up).
#[must_use]
pub fn has_leftover(journal_dir: &Path) -> bool {
    journals(journal_dir)
        .iter()
        .any(|p| journal::load(p).map_or(true, |d| !d.owner_alive()))
}

/// Restores every journal in `journal_dir` left by a process that no longer runs.
///
/// # Errors
/// [`Error::Journal`] for an unreadable journal (left in place), [`Error::RestoreIncomplete`]
/// when some steps failed (they stay journaled); the other journals are still processed.
pub fn cleanup(journal_dir: &Path) -> Result<RestoreReport, Error> {
    let mut total = RestoreReport::default();
    let mut first_err = None;
    for path in journals(journal_dir) {
        let data = match journal::load(&path) {
            Ok(d) => d,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        if data.owner_alive() {
            continue;
        }
        match restore_journal(Journal::from_disk(path, data)) {
            Ok(r) => {
                total.journals += r.journals;
                total.undone += r.undone;
                total.warnings.extend(r.warnings);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        None => Ok(total),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_display() {
        let r = RestoreReport {
            journals: 1,
            undone: 6,
            warnings: vec!["/etc/resolv.conf was changed".into()],
        };
        assert_eq!(
            r.to_string(),
            "6 change(s) undone from 1 journal(s); /etc/resolv.conf was changed"
        );
    }

    #[test]
    fn cleanup_of_missing_or_empty_dir_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_leftover(&dir.path().join("absent")));
        assert_eq!(
            cleanup(&dir.path().join("absent")).unwrap(),
            RestoreReport::default()
        );
        std::fs::write(dir.path().join("unrelated.txt"), b"x").unwrap();
        assert!(!has_leftover(dir.path()));
    }

    #[test]
    fn unreadable_journal_is_a_leftover_and_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(journal::path_for(dir.path(), "l2sec0"), b"garbage").unwrap();
        assert!(has_leftover(dir.path()));
        assert!(matches!(cleanup(dir.path()), Err(Error::Journal { .. })));
    }

    #[test]
    fn bad_config_is_refused_before_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = HostConfig {
            ifname: "l2sec0".into(),
            local: "198.19.5.2".parse().unwrap(),
            peer: "198.19.5.1".parse().unwrap(),
            prefix6: None,
            mtu: 1400,
            server: "198.18.50.1".parse().unwrap(),
            routes: RoutePlan::Full,
            dns: vec![],
            search: vec!["ok.example".into(), "bad\nnameserver 198.18.0.9".into()],
            dns_mode: crate::DnsMode::File,
            mss_clamp: crate::MssClamp::Off,
            journal_dir: dir.path().join("j"),
        };
        assert!(matches!(Applied::apply(&cfg), Err(Error::Config(_))));
        cfg.search.clear();
        cfg.mtu = 60;
        assert!(matches!(Applied::apply(&cfg), Err(Error::Config(_))));
        cfg.mtu = 1400;
        cfg.ifname = "way-too-long-name0".into();
        assert!(matches!(Applied::apply(&cfg), Err(Error::InvalidName(_))));
        assert!(!dir.path().join("j").exists());
    }
}
