//! The TOML walk: every key checked against the schema, every problem located.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{ImDocument, Item, TableLike, Value};
use zeroize::Zeroizing;

use crate::perms::{check_private_file, read_secret_file};
use crate::proposal::{parse_esp, parse_ike, unknown_group};
use crate::suggest::closest;
use crate::{
    AuthMethod, DhGroup, Diagnostic, Error, Loader, MssClamp, Pfs, Profile, Route, Secret,
    SecretOrigin, validate_interface_name, validate_server,
};

const TOP_KEYS: &[&str] = &[
    "server",
    "reconnect",
    "description",
    "ipsec",
    "l2tp",
    "ppp",
    "network",
];
const IPSEC_KEYS: &[&str] = &[
    "enabled",
    "psk",
    "psk_file",
    "cert",
    "key",
    "ca",
    "remote_id",
    "local_id",
    "ike",
    "esp",
    "pfs",
    "aggressive",
    "force_encap",
    "dpd_interval",
    "ike_lifetime",
    "esp_lifetime",
];
const L2TP_KEYS: &[&str] = &["secret", "secret_file", "hostname", "hello_interval"];
const PPP_KEYS: &[&str] = &[
    "user",
    "password",
    "password_file",
    "auth",
    "mru",
    "echo_interval",
    "echo_failures",
    "request_ip",
    "ipv6",
];
const NETWORK_KEYS: &[&str] = &[
    "interface",
    "default_route",
    "routes",
    "dns",
    "dns_search",
    "mtu",
    "mss_clamp",
];
const SECTIONS: &[(&str, &[&str])] = &[
    ("ipsec", IPSEC_KEYS),
    ("l2tp", L2TP_KEYS),
    ("ppp", PPP_KEYS),
    ("network", NETWORK_KEYS),
];

/// Most entries accepted in a list value.
const MAX_LIST: usize = 64;

/// 1-based line and column (in characters) of byte offset `off` of `text`.
pub(crate) fn line_col(text: &str, off: usize) -> (usize, usize) {
    let mut off = off.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Which secret slot a pending file fills.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Psk,
    L2tpSecret,
    Password,
}

/// A `*_file` secret to read once the text is valid.
#[derive(Debug)]
enum SecretSpec {
    File(PathBuf),
    Credential(String),
}

/// A validated profile whose secret files are not read yet.
#[derive(Debug)]
pub(crate) struct Raw {
    profile: Profile,
    pending: Vec<(Slot, String, SecretSpec)>,
    /// True when the text itself holds a secret (the file must then be private).
    pub(crate) has_inline_secret: bool,
}

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn at(&mut self, span: Option<Range<usize>>, key: &str, message: String, help: Option<String>) {
        let (line, col) = span.map_or((1, 1), |s| line_col(self.text, s.start));
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            col,
            key: key.to_owned(),
            message,
            help,
        });
    }
}

/// One key of a section, with its location.
struct Field<'d> {
    /// Dotted name (`ppp.password`).
    name: String,
    key_span: Option<Range<usize>>,
    item: &'d Item,
}

impl Field<'_> {
    fn span(&self) -> Option<Range<usize>> {
        self.item.span().or_else(|| self.key_span.clone())
    }
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) | Item::Value(Value::InlineTable(_)) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(Value::String(_)) => "a string",
        Item::Value(Value::Integer(_)) => "an integer",
        Item::Value(Value::Float(_)) => "a float",
        Item::Value(Value::Boolean(_)) => "a boolean",
        Item::Value(Value::Datetime(_)) => "a date",
        Item::Value(Value::Array(_)) => "an array",
    }
}

impl Ctx<'_> {
    fn wrong_type(&mut self, f: &Field<'_>, expected: &str, example: &str) {
        let msg = format!(
            "`{}` must be {expected}, found {}",
            f.name,
            type_name(f.item)
        );
        self.at(
            f.span(),
            &f.name,
            msg,
            Some(format!("write it like {example}")),
        );
    }

    fn invalid(&mut self, f: &Field<'_>, msg: String) {
        let span = f.span();
        self.at(span, &f.name, format!("`{}`: {msg}", f.name), None);
    }

    fn string(&mut self, f: &Field<'_>, example: &str) -> Option<String> {
        match f.item.as_str() {
            Some("") => {
                self.at(
                    f.span(),
                    &f.name,
                    format!("`{}` is empty", f.name),
                    Some(format!("write it like {example} or remove the key")),
                );
                None
            }
            Some(s) if s.chars().any(char::is_control) => {
                self.invalid(f, "control characters are not allowed".into());
                None
            }
            Some(s) => Some(s.to_owned()),
            None => {
                self.wrong_type(f, "a string", example);
                None
            }
        }
    }

    fn boolean(&mut self, f: &Field<'_>) -> Option<bool> {
        let b = f.item.as_bool();
        if b.is_none() {
            self.wrong_type(f, "true or false", &format!("{} = true", leaf(&f.name)));
        }
        b
    }

    fn integer(&mut self, f: &Field<'_>, range: Range<i64>, example: &str) -> Option<i64> {
        match f.item.as_integer() {
            Some(n) if range.contains(&n) => Some(n),
            Some(n) => {
                let msg = format!(
                    "`{}` = {n} is out of range ({} to {})",
                    f.name,
                    range.start,
                    range.end - 1
                );
                self.at(
                    f.span(),
                    &f.name,
                    msg,
                    Some(format!("write it like {example}")),
                );
                None
            }
            None => {
                self.wrong_type(f, "an integer", example);
                None
            }
        }
    }

    /// A duration of at least `min` seconds, or zero when `zero_ok` (= off).
    fn duration(&mut self, f: &Field<'_>, min: u64, zero_ok: bool) -> Option<Duration> {
        let d = match f.item.as_value() {
            Some(Value::Integer(n)) => {
                let n = *n.value();
                match u64::try_from(n) {
                    Ok(n) => crate::duration::parse_duration(&n.to_string()),
                    Err(_) => Err(format!("{n} is negative")),
                }
            }
            Some(Value::String(s)) => crate::duration::parse_duration(s.value()),
            _ => {
                self.wrong_type(
                    f,
                    "a duration",
                    &format!("{} = \"30s\" or {} = 30", leaf(&f.name), leaf(&f.name)),
                );
                return None;
            }
        };
        match d {
            Ok(d) if d.is_zero() && zero_ok => Some(d),
            Ok(d) if d.as_secs() >= min => Some(d),
            Ok(_) => {
                let off = if zero_ok { " (0 turns it off)" } else { "" };
                self.invalid(f, format!("must be at least {min} seconds{off}"));
                None
            }
            Err(e) => {
                self.invalid(f, e);
                None
            }
        }
    }

    /// An array of strings, each converted by `conv`; the whole key is dropped on any error.
    fn list<T>(
        &mut self,
        f: &Field<'_>,
        example: &str,
        mut conv: impl FnMut(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let Some(arr) = f.item.as_array() else {
            self.wrong_type(f, "an array of strings", example);
            return None;
        };
        if arr.len() > MAX_LIST {
            self.invalid(f, format!("at most {MAX_LIST} entries"));
            return None;
        }
        let mut out = Vec::with_capacity(arr.len());
        let mut ok = true;
        for v in arr.iter() {
            let span = v.span().or_else(|| f.span());
            match v.as_str() {
                Some(s) => match conv(s) {
                    Ok(t) => out.push(t),
                    Err(e) => {
                        self.at(span, &f.name, format!("`{}`: {e}", f.name), None);
                        ok = false;
                    }
                },
                None => {
                    let msg = format!("`{}` entries must be strings", f.name);
                    self.at(span, &f.name, msg, Some(format!("write it like {example}")));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn unknown_key(&mut self, f: &Field<'_>, section: Option<&str>, known: &[&str]) {
        let k = leaf(&f.name);
        let place = section.map_or_else(|| "at the top level".to_owned(), |s| format!("in [{s}]"));
        let (line, _) = f
            .key_span
            .clone()
            .map_or((1, 1), |s| line_col(self.text, s.start));
        let msg = format!("unknown key `{k}` {place} at line {line}");
        let home = SECTIONS
            .iter()
            .find(|(s, keys)| Some(*s) != section && keys.contains(&k));
        let help = if let Some(s) = closest(k, known) {
            Some(format!("did you mean `{s}`?"))
        } else if let Some((s, _)) = home {
            Some(format!("`{k}` belongs in [{s}]"))
        } else if section.is_none() && k == "kill_switch" {
            Some("kill_switch is not supported yet".into())
        } else {
            Some(format!("known keys: {}", known.join(", ")))
        };
        self.at(f.key_span.clone(), &f.name, msg, help);
    }
}

fn leaf(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn fields<'d>(table: &'d dyn TableLike, prefix: &str) -> Vec<Field<'d>> {
    table
        .iter()
        .map(|(k, item)| {
            let key_span = table.get_key_value(k).and_then(|(key, _)| key.span());
            let name = if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}.{k}")
            };
            Field {
                name,
                key_span,
                item,
            }
        })
        .collect()
}

/// A secret given inline or through a file; the inline and file keys are exclusive.
#[derive(Default)]
struct SecretKeys {
    inline: Option<(String, Zeroizing<String>)>,
    file: Option<(String, SecretSpec)>,
}

impl Ctx<'_> {
    fn secret_inline(&mut self, f: &Field<'_>, dst: &mut SecretKeys) {
        match f.item.as_str() {
            Some("") => self.at(
                f.span(),
                &f.name,
                format!("`{}` is empty", f.name),
                Some("write the secret or remove the key".into()),
            ),
            Some(s) => dst.inline = Some((f.name.clone(), Zeroizing::new(s.to_owned()))),
            None => self.wrong_type(
                f,
                "a string",
                &format!("{}_file = \"/path/to/file\"", leaf(&f.name)),
            ),
        }
    }

    fn secret_file(&mut self, f: &Field<'_>, dst: &mut SecretKeys) {
        let Some(s) = self.string(f, "\"/etc/l2sec/office.secret\" or \"cred:NAME\"") else {
            return;
        };
        let spec = if let Some(name) = s.strip_prefix("cred:") {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                self.invalid(f, format!("`{s}` is not a valid credential name; write \"cred:NAME\" with NAME as in LoadCredential=NAME:..."));
                return;
            }
            SecretSpec::Credential(name.to_owned())
        } else {
            SecretSpec::File(PathBuf::from(s))
        };
        dst.file = Some((f.name.clone(), spec));
    }

    /// Checks that at most one of inline/file is given and records the result.
    fn secret_done(
        &mut self,
        keys: SecretKeys,
        slot: Slot,
        raw: &mut Raw,
        spans: &[(String, Option<Range<usize>>)],
    ) -> Option<Secret> {
        match (keys.inline, keys.file) {
            (Some((a, _)), Some((b, _))) => {
                let span = spans
                    .iter()
                    .find(|(n, _)| *n == b)
                    .and_then(|(_, s)| s.clone());
                self.at(
                    span,
                    &b,
                    format!("both `{a}` and `{b}` are set"),
                    Some(format!(
                        "keep only one of `{}` and `{}`",
                        leaf(&a),
                        leaf(&b)
                    )),
                );
                None
            }
            (Some((_, v)), None) => {
                raw.has_inline_secret = true;
                Some(Secret::new(v, SecretOrigin::Inline))
            }
            (None, Some((name, spec))) => {
                raw.pending.push((slot, name, spec));
                None
            }
            (None, None) => None,
        }
    }
}

/// Parses and validates the text; secret files are recorded, not read.
pub(crate) fn parse_raw(text: &str, file: &str) -> Result<Raw, Error> {
    let mut cx = Ctx {
        text,
        file,
        diags: Vec::new(),
    };
    let doc = match ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let msg = e.message().trim().replace('\n', " ");
            cx.at(e.span(), "", format!("invalid TOML: {msg}"), None);
            return Err(Error::Invalid {
                diagnostics: cx.diags,
            });
        }
    };
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("profile");
    let mut raw = Raw {
        profile: Profile::new(stem, ""),
        pending: Vec::new(),
        has_inline_secret: false,
    };
    let mut server_seen = false;

    for f in fields(doc.as_table(), "") {
        match f.name.as_str() {
            "server" => {
                server_seen = true;
                if let Some(s) = cx.string(&f, "\"vpn.example.com\"") {
                    match validate_server(&s) {
                        Ok(()) => raw.profile.server = s,
                        Err(e) => cx.invalid(&f, e),
                    }
                }
            }
            "reconnect" => raw.profile.reconnect = cx.boolean(&f),
            "description" => raw.profile.description = cx.string(&f, "\"Office VPN\""),
            "ipsec" | "l2tp" | "ppp" | "network" => {
                let Some(t) = f.item.as_table_like() else {
                    let msg = format!("`{}` must be a section", f.name);
                    cx.at(
                        f.span(),
                        &f.name,
                        msg,
                        Some(format!("write [{}] on its own line, then its keys", f.name)),
                    );
                    continue;
                };
                let sub = fields(t, &f.name);
                match f.name.as_str() {
                    "ipsec" => ipsec(&mut cx, &sub, &mut raw),
                    "l2tp" => l2tp(&mut cx, &sub, &mut raw),
                    "ppp" => ppp(&mut cx, &sub, &mut raw),
                    _ => network(&mut cx, &sub, &mut raw),
                }
            }
            _ => cx.unknown_key(&f, None, TOP_KEYS),
        }
    }
    if !server_seen {
        cx.at(
            None,
            "server",
            "missing `server`".into(),
            Some("add server = \"vpn.example.com\" at the top".into()),
        );
    }
    if cx.diags.is_empty() {
        Ok(raw)
    } else {
        cx.diags.sort_by_key(|d| (d.line, d.col));
        Err(Error::Invalid {
            diagnostics: cx.diags,
        })
    }
}

fn spans(sub: &[Field<'_>]) -> Vec<(String, Option<Range<usize>>)> {
    sub.iter()
        .map(|f| (f.name.clone(), f.key_span.clone()))
        .collect()
}

fn ipsec(cx: &mut Ctx<'_>, sub: &[Field<'_>], raw: &mut Raw) {
    let mut psk = SecretKeys::default();
    let mut enabled_field = None;
    let mut set_while_off: Vec<&Field<'_>> = Vec::new();
    for f in sub {
        let ip = &mut raw.profile.ipsec;
        let k = leaf(&f.name);
        if k != "enabled" && IPSEC_KEYS.contains(&k) {
            set_while_off.push(f);
        }
        match k {
            "enabled" => {
                enabled_field = Some(f);
                if let Some(b) = cx.boolean(f) {
                    ip.enabled = b;
                }
            }
            "psk" => cx.secret_inline(f, &mut psk),
            "psk_file" => cx.secret_file(f, &mut psk),
            "cert" => ip.cert = cx.string(f, "\"/etc/l2sec/client.pem\"").map(PathBuf::from),
            "key" => ip.key = cx.string(f, "\"/etc/l2sec/client.key\"").map(PathBuf::from),
            "ca" => ip.ca = cx.string(f, "\"/etc/l2sec/ca.pem\"").map(PathBuf::from),
            "remote_id" => {
                ip.remote_id = cx.string(f, "\"vpn.example.com\" or \"CN=vpn, O=Example\"")
            }
            "local_id" => ip.local_id = cx.string(f, "\"alice@example.com\""),
            "ike" => {
                if let Some(v) = cx.list(f, "ike = [\"aes256-sha1-modp2048\"]", parse_ike) {
                    ip.ike = v;
                }
            }
            "esp" => {
                if let Some(v) = cx.list(f, "esp = [\"aes256-sha1\"]", parse_esp) {
                    ip.esp = v;
                }
            }
            "pfs" => match f.item.as_value() {
                Some(Value::Boolean(b)) => {
                    ip.pfs = if *b.value() {
                        Pfs::Phase1Group
                    } else {
                        Pfs::Off
                    }
                }
                Some(Value::String(s)) => match DhGroup::from_name(s.value()) {
                    Some(g) => ip.pfs = Pfs::Group(g),
                    None => cx.invalid(f, unknown_group(s.value())),
                },
                _ => cx.wrong_type(
                    f,
                    "false, true (the phase 1 group) or a group name",
                    "pfs = \"modp2048\"",
                ),
            },
            "aggressive" => ip.aggressive = cx.boolean(f).unwrap_or(ip.aggressive),
            "force_encap" => ip.force_encap = cx.boolean(f).unwrap_or(ip.force_encap),
            "dpd_interval" => ip.dpd_interval = cx.duration(f, 1, true),
            "ike_lifetime" => ip.ike_lifetime = cx.duration(f, 60, false),
            "esp_lifetime" => ip.esp_lifetime = cx.duration(f, 60, false),
            _ => cx.unknown_key(f, Some("ipsec"), IPSEC_KEYS),
        }
    }
    let sp = spans(sub);
    raw.profile.ipsec.psk = cx.secret_done(psk, Slot::Psk, raw, &sp);
    let has_psk =
        raw.profile.ipsec.psk.is_some() || raw.pending.iter().any(|p| matches!(p.0, Slot::Psk));
    let ip = &raw.profile.ipsec;
    let find = |k: &str| sub.iter().find(|f| leaf(&f.name) == k);
    if !ip.enabled {
        for f in set_while_off {
            let en = enabled_field.and_then(Field::span);
            let (line, _) = en.map_or((0, 0), |s| line_col(cx.text, s.start));
            let msg = format!(
                "`{}` has no effect: IPsec is off (enabled = false at line {line})",
                f.name
            );
            cx.at(
                f.key_span.clone(),
                &f.name,
                msg,
                Some("remove the key, or remove enabled = false".into()),
            );
        }
        return;
    }
    if has_psk && ip.cert.is_some() {
        let f = find("cert");
        cx.at(
            f.and_then(|f| f.key_span.clone()),
            "ipsec.cert",
            "both a PSK and a certificate are set".into(),
            Some("keep either psk/psk_file or cert/key".into()),
        );
    }
    if ip.cert.is_some() != ip.key.is_some() {
        let (have, miss) = if ip.cert.is_some() {
            ("cert", "key")
        } else {
            ("key", "cert")
        };
        let f = find(have);
        cx.at(
            f.and_then(|f| f.key_span.clone()),
            &format!("ipsec.{have}"),
            format!("`ipsec.{have}` is set but `ipsec.{miss}` is not"),
            Some(format!("add {miss} = \"/path/to/file\" in [ipsec]")),
        );
    }
    if ip.ca.is_some() && ip.cert.is_none() && has_psk {
        let f = find("ca");
        cx.at(
            f.and_then(|f| f.key_span.clone()),
            "ipsec.ca",
            "`ipsec.ca` is only used with certificates".into(),
            Some("remove it, or set cert and key instead of the PSK".into()),
        );
    }
}

fn l2tp(cx: &mut Ctx<'_>, sub: &[Field<'_>], raw: &mut Raw) {
    let mut secret = SecretKeys::default();
    for f in sub {
        match leaf(&f.name) {
            "secret" => cx.secret_inline(f, &mut secret),
            "secret_file" => cx.secret_file(f, &mut secret),
            "hostname" => {
                if let Some(h) = cx.string(f, "\"laptop\"") {
                    if h.len() > 255 || !h.is_ascii() {
                        cx.invalid(f, "must be at most 255 ASCII characters".into());
                    } else {
                        raw.profile.l2tp.hostname = Some(h);
                    }
                }
            }
            "hello_interval" => raw.profile.l2tp.hello_interval = cx.duration(f, 1, true),
            _ => cx.unknown_key(f, Some("l2tp"), L2TP_KEYS),
        }
    }
    let sp = spans(sub);
    raw.profile.l2tp.secret = cx.secret_done(secret, Slot::L2tpSecret, raw, &sp);
}

fn ppp(cx: &mut Ctx<'_>, sub: &[Field<'_>], raw: &mut Raw) {
    let mut password = SecretKeys::default();
    for f in sub {
        let p = &mut raw.profile.ppp;
        match leaf(&f.name) {
            "user" => {
                if let Some(u) = cx.string(f, "\"alice\"") {
                    if u.len() > 255 {
                        cx.invalid(f, "must be at most 255 bytes".into());
                    } else {
                        p.user = Some(u);
                    }
                }
            }
            "password" => cx.secret_inline(f, &mut password),
            "password_file" => cx.secret_file(f, &mut password),
            "auth" => {
                let known = ["mschapv2", "chap", "pap"];
                let conv = |s: &str| {
                    AuthMethod::from_name(s).ok_or_else(|| match closest(s, &known) {
                        Some(c) => format!("unknown method `{s}`; did you mean `{c}`?"),
                        None => format!("unknown method `{s}`; use mschapv2, chap or pap"),
                    })
                };
                if let Some(v) = cx.list(f, "auth = [\"mschapv2\", \"pap\"]", conv) {
                    if v.is_empty() {
                        cx.invalid(
                            f,
                            "empty list; name at least one of mschapv2, chap, pap".into(),
                        );
                    } else if (1..v.len()).any(|i| v[..i].contains(&v[i])) {
                        cx.invalid(f, "a method is listed twice; list each once".into());
                    } else {
                        p.auth = v;
                    }
                }
            }
            "mru" => {
                p.mru = cx
                    .integer(f, 128..16385, "mru = 1400")
                    .and_then(|n| u16::try_from(n).ok())
            }
            "echo_interval" => p.echo_interval = cx.duration(f, 1, true),
            "echo_failures" => {
                p.echo_failures = cx
                    .integer(f, 1..1001, "echo_failures = 5")
                    .and_then(|n| u32::try_from(n).ok())
            }
            "request_ip" => {
                if let Some(s) = cx.string(f, "\"198.19.0.10\"") {
                    match s.parse::<Ipv4Addr>() {
                        Ok(a) => p.request_ip = Some(a),
                        Err(_) => cx.invalid(
                            f,
                            format!("`{s}` is not an IPv4 address; write it like \"198.19.0.10\""),
                        ),
                    }
                }
            }
            "ipv6" => p.ipv6 = cx.boolean(f).unwrap_or(p.ipv6),
            _ => cx.unknown_key(f, Some("ppp"), PPP_KEYS),
        }
    }
    let sp = spans(sub);
    raw.profile.ppp.password = cx.secret_done(password, Slot::Password, raw, &sp);
}

fn network(cx: &mut Ctx<'_>, sub: &[Field<'_>], raw: &mut Raw) {
    for f in sub {
        let n = &mut raw.profile.network;
        match leaf(&f.name) {
            "interface" => {
                if let Some(s) = cx.string(f, "\"l2sec0\"") {
                    match validate_interface_name(&s) {
                        Ok(()) => n.interface = Some(s),
                        Err(e) => cx.invalid(f, e),
                    }
                }
            }
            "default_route" => n.default_route = cx.boolean(f).unwrap_or(n.default_route),
            "routes" => {
                if let Some(v) = cx.list(f, "routes = [\"198.19.0.0/16\"]", Route::parse) {
                    n.routes = v;
                }
            }
            "dns" => n.dns = cx.boolean(f).unwrap_or(n.dns),
            "dns_search" => {
                let conv = |s: &str| {
                    if s.parse::<std::net::IpAddr>().is_ok() {
                        return Err(format!(
                            "`{s}` is an address, not a domain; write it like \"corp.example.com\""
                        ));
                    }
                    validate_server(s).map(|()| s.to_owned()).map_err(|_| {
                        format!("`{s}` is not a domain name; write it like \"corp.example.com\"")
                    })
                };
                if let Some(v) = cx.list(f, "dns_search = [\"corp.example.com\"]", conv) {
                    n.dns_search = v;
                }
            }
            "mtu" => {
                n.mtu = cx
                    .integer(f, 576..9001, "mtu = 1400")
                    .and_then(|v| u16::try_from(v).ok())
            }
            "mss_clamp" => match f.item.as_value() {
                Some(Value::Boolean(b)) => {
                    n.mss_clamp = if *b.value() {
                        MssClamp::Auto
                    } else {
                        MssClamp::Off
                    }
                }
                Some(Value::Integer(_)) => {
                    if let Some(v) = cx
                        .integer(f, 536..8961, "mss_clamp = 1360")
                        .and_then(|v| u16::try_from(v).ok())
                    {
                        n.mss_clamp = MssClamp::Value(v);
                    }
                }
                _ => cx.wrong_type(f, "true, false or an MSS", "mss_clamp = 1360"),
            },
            _ => cx.unknown_key(f, Some("network"), NETWORK_KEYS),
        }
    }
}

fn relative_to(base: Option<&Path>, p: &Path) -> PathBuf {
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    }
}

/// Reads the pending secret files and checks the certificate files exist (the key being private).
pub(crate) fn resolve(mut raw: Raw, origin: &Path, loader: &Loader) -> Result<Profile, Error> {
    let base = origin.parent().filter(|p| !p.as_os_str().is_empty());
    for (slot, key, spec) in std::mem::take(&mut raw.pending) {
        let secret = match spec {
            SecretSpec::File(p) => {
                let path = relative_to(base, &p);
                let v = read_secret_file(&path, loader.euid, true).map_err(|e| match e {
                    Error::Io { path, source } => Error::SecretFile {
                        key: key.clone(),
                        path,
                        source,
                    },
                    e => e,
                })?;
                Secret::new(v, SecretOrigin::File(path))
            }
            SecretSpec::Credential(name) => {
                let Some(dir) = &loader.credentials_dir else {
                    return Err(Error::NoCredentials { key, name });
                };
                let v = read_secret_file(&dir.join(&name), loader.euid, false)?;
                Secret::new(v, SecretOrigin::Credential(name))
            }
        };
        let dst = match slot {
            Slot::Psk => &mut raw.profile.ipsec.psk,
            Slot::L2tpSecret => &mut raw.profile.l2tp.secret,
            Slot::Password => &mut raw.profile.ppp.password,
        };
        *dst = Some(secret);
    }
    let ip = &mut raw.profile.ipsec;
    for p in [&mut ip.cert, &mut ip.ca].into_iter().flatten() {
        *p = relative_to(base, p);
        let meta = std::fs::metadata(&*p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(Error::NotAFile { path: p.clone() });
        }
    }
    if let Some(k) = &mut ip.key {
        *k = relative_to(base, k);
        check_private_file(k, "private key", loader.euid)?;
    }
    raw.profile.source = Some(origin.to_path_buf());
    Ok(raw.profile)
}
