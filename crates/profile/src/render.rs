//! The profile as TOML, secrets replaced by where they come from (for `l2sec profile show`).

use std::fmt::Write as _;
use std::time::Duration;

use crate::duration::format_duration;
use crate::{MssClamp, Pfs, Profile, Secret, SecretOrigin};

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list<T: ToString>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(|x| quote(&x.to_string())).collect();
    format!("[{}]", items.join(", "))
}

struct W(String);

impl W {
    fn kv(&mut self, k: &str, v: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{k} = {v}");
    }
    fn s(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.kv(k, quote(v));
        }
    }
    fn d(&mut self, k: &str, v: Option<Duration>) {
        if let Some(v) = v {
            self.kv(k, quote(&format_duration(v)));
        }
    }
    fn secret(&mut self, k: &str, v: Option<&Secret>) {
        let Some(v) = v else { return };
        match v.origin() {
            SecretOrigin::File(p) => self.kv(&format!("{k}_file"), quote(&p.display().to_string())),
            SecretOrigin::Credential(n) => {
                self.kv(&format!("{k}_file"), quote(&format!("cred:{n}")))
            }
            o => {
                let _ = writeln!(self.0, "# {k} = (redacted, {o})");
            }
        }
    }
}

pub(crate) fn render(p: &Profile) -> String {
    let mut w = W(String::new());
    if let Some(src) = &p.source {
        let _ = writeln!(w.0, "# {}", src.display());
    }
    w.s("description", p.description.as_deref());
    w.s("server", Some(&p.server));
    if let Some(r) = p.reconnect {
        w.kv("reconnect", r);
    }

    let ip = &p.ipsec;
    w.0.push_str("\n[ipsec]\n");
    w.kv("enabled", ip.enabled);
    if ip.enabled {
        w.secret("psk", ip.psk.as_ref());
        for (k, v) in [("cert", &ip.cert), ("key", &ip.key), ("ca", &ip.ca)] {
            w.s(k, v.as_ref().map(|p| p.display().to_string()).as_deref());
        }
        w.s("remote_id", ip.remote_id.as_deref());
        w.s("local_id", ip.local_id.as_deref());
        if !ip.ike.is_empty() {
            w.kv("ike", list(&ip.ike));
        }
        if !ip.esp.is_empty() {
            w.kv("esp", list(&ip.esp));
        }
        match ip.pfs {
            Pfs::Off => w.kv("pfs", false),
            Pfs::Phase1Group => w.kv("pfs", true),
            Pfs::Group(g) => w.kv("pfs", quote(g.name())),
        }
        w.kv("aggressive", ip.aggressive);
        w.kv("force_encap", ip.force_encap);
        w.d("dpd_interval", ip.dpd_interval);
        w.d("ike_lifetime", ip.ike_lifetime);
        w.d("esp_lifetime", ip.esp_lifetime);
    }

    let l = &p.l2tp;
    if l.secret.is_some() || l.hostname.is_some() || l.hello_interval.is_some() {
        w.0.push_str("\n[l2tp]\n");
        w.secret("secret", l.secret.as_ref());
        w.s("hostname", l.hostname.as_deref());
        w.d("hello_interval", l.hello_interval);
    }

    let pp = &p.ppp;
    w.0.push_str("\n[ppp]\n");
    w.s("user", pp.user.as_deref());
    w.secret("password", pp.password.as_ref());
    if !pp.auth.is_empty() {
        w.kv("auth", list(&pp.auth));
    }
    if let Some(m) = pp.mru {
        w.kv("mru", m);
    }
    w.d("echo_interval", pp.echo_interval);
    if let Some(n) = pp.echo_failures {
        w.kv("echo_failures", n);
    }
    w.s(
        "request_ip",
        pp.request_ip.map(|a| a.to_string()).as_deref(),
    );
    w.kv("ipv6", pp.ipv6);

    let n = &p.network;
    w.0.push_str("\n[network]\n");
    w.s("interface", n.interface.as_deref());
    w.kv("default_route", n.default_route);
    if !n.routes.is_empty() {
        w.kv("routes", list(&n.routes));
    }
    w.kv("dns", n.dns);
    if !n.dns_search.is_empty() {
        w.kv("dns_search", list(&n.dns_search));
    }
    if let Some(m) = n.mtu {
        w.kv("mtu", m);
    }
    match n.mss_clamp {
        MssClamp::Auto => w.kv("mss_clamp", true),
        MssClamp::Off => w.kv("mss_clamp", false),
        MssClamp::Value(v) => w.kv("mss_clamp", v),
    }
    w.0
}
