//! Connection profiles of l2sec: the TOML schema, its validation and secret loading.
//!
//! A profile is a TOML file. Every key is checked: an unknown key, a value of the wrong type or an
//! impossible combination is reported as `file:line:col: message; fix`, one line per problem.
//!
//! ```toml
//! server = "vpn.example.com"     # name or address, re-resolved on every reconnect
//! reconnect = false              # default: false on a terminal, true under systemd
//! description = "Office"
//!
//! [ipsec]                        # `enabled = false` = plain L2TP, only when stated
//! psk_file = "office.psk"        # or psk = "...", or psk_file = "cred:psk", or cert/key/ca
//! ike = ["aes256-sha1-modp2048"] # optional; the engine's default offer otherwise
//! esp = ["aes256-sha1"]
//!
//! [ppp]
//! user = "alice"
//! password_file = "office.pass" # or password = "..."; missing: prompt on a terminal
//!
//! [network]
//! routes = ["198.19.0.0/16"]
//! default_route = false
//! ```
//!
//! Secrets:
//! - `psk`, `[l2tp] secret` and `[ppp] password` hold a secret inline; a profile doing so must
//!   not be readable by group or others and must belong to the current user or root.
//! - `psk_file`, `secret_file` and `password_file` name a file read at load time (relative paths
//!   are relative to the profile's directory); the file must pass the same check. A trailing
//!   newline is removed.
//! - `cred:NAME` instead of a path reads `$CREDENTIALS_DIRECTORY/NAME`, the credential passed by
//!   systemd (`LoadCredential=` / `LoadCredentialEncrypted=`); systemd already makes that directory
//!   private to the service, so no mode check is made there.
//! - `[ipsec] key` (the private key of a certificate) is checked the same way but read by the
//!   engine.
//!
//! Profiles are searched by name in `~/.config/l2sec/profiles` then `/etc/l2sec/profiles`
//! (`$L2SEC_PROFILE_PATH`, a `:`-separated list of directories, replaces both); see [`find`] and
//! [`list`].
#![forbid(unsafe_code)]

mod duration;
mod parse;
mod perms;
mod proposal;
mod render;
mod search;
mod suggest;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

pub use duration::parse_duration;
pub use l2sec_crypto::{CipherAlg, DhGroup, HashAlg, IntegAlg};
pub use l2sec_ike::{EspProposal, IkeProposal};
pub use perms::{check_private_mode, read_secret_file};
pub use proposal::{parse_esp, parse_ike};
pub use search::{ProfileEntry, find, find_in, list, list_in, search_path, search_path_from};

/// Largest profile or secret file read (bytes): anything larger is refused.
pub const MAX_FILE_LEN: u64 = 256 * 1024;

/// Errors of loading, validating and finding profiles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_FILE_LEN`].
    #[error("{} is too large ({len} bytes, at most {max}); is it the right file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A path that must name a regular file names something else.
    #[error("{} is not a regular file; name a file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The profile is not valid; one diagnostic per problem.
    #[error("{}", join_lines(diagnostics))]
    Invalid {
        /// The problems found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
    /// A file holding a secret is readable by group or others.
    #[error(
        "{what} {} holds a secret and is readable by others (mode {mode:04o}); run: chmod 600 {}",
        path.display(),
        path.display()
    )]
    Permissions {
        /// "profile" or "secret file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file holding a secret belongs to another user.
    #[error(
        "{what} {} holds a secret and belongs to uid {owner}, not to you (uid {euid}) or root; run: chown {euid} {}",
        path.display(),
        path.display()
    )]
    Owner {
        /// "profile" or "secret file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The current effective user.
        euid: u32,
    },
    /// No profile of that name exists in the search path.
    #[error(
        "profile `{name}` not found in {}; run `l2sec profile list` or pass --profile PATH",
        display_dirs(searched)
    )]
    NotFound {
        /// The name searched.
        name: String,
        /// The directories searched.
        searched: Vec<PathBuf>,
    },
    /// A secret file named by the profile could not be read.
    #[error("`{key}`: cannot read {}: {source}; put the secret in that file (chmod 600) or fix the path", path.display())]
    SecretFile {
        /// The key naming the file (`ipsec.psk_file`).
        key: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `cred:NAME` secret was named but systemd passed no credentials.
    #[error(
        "{key} = \"cred:{name}\" needs $CREDENTIALS_DIRECTORY; pass it with LoadCredential={name}:/path in the unit"
    )]
    NoCredentials {
        /// The key naming the credential.
        key: String,
        /// The credential name.
        name: String,
    },
}

fn join_lines(d: &[Diagnostic]) -> String {
    let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "an empty search path".to_owned();
    }
    let v: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    v.join(", ")
}

/// One validation problem, located in the profile's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The profile's path as given (or a label such as `<command line>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// The dotted key concerned (`ppp.password`), empty for syntax errors.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, if known.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(h) = &self.help {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

/// Where a secret came from (shown instead of the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretOrigin {
    /// Written in the profile.
    Inline,
    /// Read from this file.
    File(PathBuf),
    /// Read from the systemd credential of this name.
    Credential(String),
    /// Typed at a prompt.
    Prompt,
    /// Given on the command line or by the caller.
    Given,
}

impl fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretOrigin::Inline => f.write_str("inline"),
            SecretOrigin::File(p) => write!(f, "file {}", p.display()),
            SecretOrigin::Credential(n) => write!(f, "credential {n}"),
            SecretOrigin::Prompt => f.write_str("prompt"),
            SecretOrigin::Given => f.write_str("given"),
        }
    }
}

/// A secret (PSK, password, tunnel secret): zeroed on drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: Zeroizing<String>,
    origin: SecretOrigin,
}

impl Secret {
    /// Wraps `value`, remembering where it came from.
    #[must_use]
    pub fn new(value: Zeroizing<String>, origin: SecretOrigin) -> Self {
        Secret { value, origin }
    }

    /// The secret itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where the secret came from.
    #[must_use]
    pub fn origin(&self) -> &SecretOrigin {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted>, {})", self.origin)
    }
}

/// A complete, validated profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Profile name: the file stem, or what the caller chose for an ad-hoc profile.
    pub name: String,
    /// The file it was loaded from, if any.
    pub source: Option<PathBuf>,
    /// `description`: free text.
    pub description: Option<String>,
    /// `server`: host name or address, resolved on every (re)connect.
    pub server: String,
    /// `reconnect`: `None` when the profile does not say (the caller decides).
    pub reconnect: Option<bool>,
    /// `[ipsec]`.
    pub ipsec: Ipsec,
    /// `[l2tp]`.
    pub l2tp: L2tp,
    /// `[ppp]`.
    pub ppp: Ppp,
    /// `[network]`.
    pub network: Network,
}

impl Profile {
    /// A profile for `server` with every other setting at its default (IPsec on, no credentials).
    #[must_use]
    pub fn new(name: impl Into<String>, server: impl Into<String>) -> Self {
        Profile {
            name: name.into(),
            source: None,
            description: None,
            server: server.into(),
            reconnect: None,
            ipsec: Ipsec::default(),
            l2tp: L2tp::default(),
            ppp: Ppp::default(),
            network: Network::default(),
        }
    }

    /// Reads, validates and checks `path` (mode and owner when it holds a secret), then reads the
    /// secret files it names. Uses `$CREDENTIALS_DIRECTORY` for `cred:` secrets.
    pub fn load(path: &Path) -> Result<Profile, Error> {
        Loader::from_env().load(path)
    }

    /// Parses and validates `text` as if read from `origin` (used in messages and to resolve
    /// relative paths), reading the secret files it names. No mode check of `origin` itself.
    pub fn parse(text: &str, origin: &Path) -> Result<Profile, Error> {
        Loader::from_env().parse(text, origin)
    }

    /// Checks that the profile can be used as is: the server is set and every needed credential is
    /// present except a PPP password or PSK that the caller may prompt for.
    /// Returns the list of missing settings that can still be prompted for.
    pub fn missing_secrets(&self) -> Vec<MissingSecret> {
        let mut v = Vec::new();
        if self.ipsec.enabled && self.ipsec.psk.is_none() && self.ipsec.cert.is_none() {
            v.push(MissingSecret::Psk);
        }
        if self.ppp.password.is_none() {
            v.push(MissingSecret::Password);
        }
        v
    }

    /// Renders the profile as TOML with secrets replaced by where they come from.
    #[must_use]
    pub fn render_redacted(&self) -> String {
        render::render(self)
    }
}

/// A secret that a profile may leave out, to be asked on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingSecret {
    /// `[ipsec] psk` (IPsec on, no certificate).
    Psk,
    /// `[ppp] password`.
    Password,
}

/// Loads profiles with an explicit environment (credentials directory, current user).
#[derive(Debug, Clone)]
pub struct Loader {
    /// `$CREDENTIALS_DIRECTORY`, for `cred:NAME` secrets.
    pub credentials_dir: Option<PathBuf>,
    /// The effective uid a secret-holding file may belong to (besides root).
    pub euid: u32,
}

impl Loader {
    /// Takes `$CREDENTIALS_DIRECTORY` and the effective uid of this process.
    #[must_use]
    pub fn from_env() -> Self {
        Loader {
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            euid: nix::unistd::geteuid().as_raw(),
        }
    }

    /// See [`Profile::load`].
    pub fn load(&self, path: &Path) -> Result<Profile, Error> {
        let bytes = perms::read_bounded(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let off = e.valid_up_to();
            let valid = std::str::from_utf8(&bytes[..off]).unwrap_or_default();
            let (line, col) = parse::line_col(valid, off);
            Error::Invalid {
                diagnostics: vec![Diagnostic {
                    file: path.display().to_string(),
                    line,
                    col,
                    key: String::new(),
                    message: "the file is not UTF-8".into(),
                    help: Some("save it as UTF-8 text".into()),
                }],
            }
        })?;
        let raw = parse::parse_raw(text, &path.display().to_string())?;
        if raw.has_inline_secret {
            perms::check_private_file(path, "profile", self.euid)?;
        }
        parse::resolve(raw, path, self)
    }

    /// See [`Profile::parse`].
    pub fn parse(&self, text: &str, origin: &Path) -> Result<Profile, Error> {
        let raw = parse::parse_raw(text, &origin.display().to_string())?;
        parse::resolve(raw, origin, self)
    }
}

/// `[ipsec]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipsec {
    /// `enabled` (default true). `false` = plain L2TP without IPsec.
    pub enabled: bool,
    /// `psk` / `psk_file`: the pre-shared key.
    pub psk: Option<Secret>,
    /// `cert`: our certificate (PEM or DER), for RSA-signature authentication.
    pub cert: Option<PathBuf>,
    /// `key`: the private key of `cert` (checked for mode 0600, read by the engine).
    pub key: Option<PathBuf>,
    /// `ca`: the CA certificate(s) the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// `remote_id`: the identity the server must present (address, FQDN or DN).
    pub remote_id: Option<String>,
    /// `local_id`: our identity (default: our address, or the certificate's DN).
    pub local_id: Option<String>,
    /// `ike`: phase 1 proposals in preference order; empty = the engine's default offer.
    pub ike: Vec<IkeProposal>,
    /// `esp`: phase 2 proposals in preference order; empty = the engine's default offer.
    pub esp: Vec<EspProposal>,
    /// `pfs`: perfect forward secrecy in quick mode (default: none).
    pub pfs: Pfs,
    /// `aggressive` (default false): use aggressive mode (weaker, opt-in).
    pub aggressive: bool,
    /// `force_encap` (default false): use UDP encapsulation even without NAT.
    pub force_encap: bool,
    /// `dpd_interval`: dead peer detection interval; `None` = engine default, zero = off.
    pub dpd_interval: Option<Duration>,
    /// `ike_lifetime`: phase 1 SA lifetime; `None` = engine default.
    pub ike_lifetime: Option<Duration>,
    /// `esp_lifetime`: phase 2 SA lifetime; `None` = engine default.
    pub esp_lifetime: Option<Duration>,
}

impl Default for Ipsec {
    fn default() -> Self {
        Ipsec {
            enabled: true,
            psk: None,
            cert: None,
            key: None,
            ca: None,
            remote_id: None,
            local_id: None,
            ike: Vec::new(),
            esp: Vec::new(),
            pfs: Pfs::Off,
            aggressive: false,
            force_encap: false,
            dpd_interval: None,
            ike_lifetime: None,
            esp_lifetime: None,
        }
    }
}

/// Perfect forward secrecy for quick mode (`[ipsec] pfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pfs {
    /// `pfs = false` (the default).
    #[default]
    Off,
    /// `pfs = true`: the group negotiated in phase 1.
    Phase1Group,
    /// `pfs = "modp2048"`: this group.
    Group(DhGroup),
}

/// `[l2tp]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct L2tp {
    /// `secret` / `secret_file`: the tunnel authentication secret (rarely used).
    pub secret: Option<Secret>,
    /// `hostname`: the Host Name AVP we send (default: the engine's).
    pub hostname: Option<String>,
    /// `hello_interval`: L2TP HELLO keepalive interval; `None` = engine default, zero = off.
    pub hello_interval: Option<Duration>,
}

/// A PPP authentication protocol (`[ppp] auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `"mschapv2"`: MS-CHAP version 2 (RFC 2759).
    MsChapV2,
    /// `"chap"`: CHAP with MD5 (RFC 1994).
    Chap,
    /// `"pap"`: PAP (RFC 1334), the password in clear inside the tunnel.
    Pap,
}

impl AuthMethod {
    /// The name used in profiles.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::MsChapV2 => "mschapv2",
            AuthMethod::Chap => "chap",
            AuthMethod::Pap => "pap",
        }
    }

    /// Parses a profile name.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "mschapv2" => Some(AuthMethod::MsChapV2),
            "chap" => Some(AuthMethod::Chap),
            "pap" => Some(AuthMethod::Pap),
            _ => None,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[ppp]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ppp {
    /// `user`: the PPP user name.
    pub user: Option<String>,
    /// `password` / `password_file`.
    pub password: Option<Secret>,
    /// `auth`: the protocols accepted when the server asks, in preference order; empty =
    /// the default of [`Ppp::auth_methods`].
    pub auth: Vec<AuthMethod>,
    /// `mru`: the MRU we ask for; `None` = engine default.
    pub mru: Option<u16>,
    /// `echo_interval`: LCP echo interval; `None` = engine default, zero = off.
    pub echo_interval: Option<Duration>,
    /// `echo_failures`: unanswered echoes before the link is declared lost; `None` = default.
    pub echo_failures: Option<u32>,
    /// `request_ip`: the address we ask for in IPCP (default: whatever the server gives).
    pub request_ip: Option<Ipv4Addr>,
    /// `ipv6` (default false): negotiate IPV6CP too.
    pub ipv6: bool,
}

impl Ppp {
    /// The methods to accept: `auth` when the profile lists them; otherwise MS-CHAPv2 only
    /// over IPsec (it also proves the server knows the password; CHAP-MD5 and PAP only when
    /// listed, as Windows and NetworkManager do), and MS-CHAPv2, CHAP-MD5 and PAP for plain
    /// L2TP, where ISPs mostly use the latter two.
    #[must_use]
    pub fn auth_methods(&self, ipsec: bool) -> Vec<AuthMethod> {
        if !self.auth.is_empty() {
            self.auth.clone()
        } else if ipsec {
            vec![AuthMethod::MsChapV2]
        } else {
            vec![AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap]
        }
    }
}

/// An IPv4 route through the tunnel (`[network] routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// Network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Route {
    /// Parses `a.b.c.d/n` or a bare address (= /32). Host bits must be zero; the error text
    /// suggests the corrected network.
    pub fn parse(s: &str) -> Result<Route, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a.trim().parse().map_err(|_| {
            format!("`{s}` is not an IPv4 network; write it like \"198.19.0.0/16\"")
        })?;
        let prefix = match p {
            None => 32,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= 32 => n,
                _ => {
                    return Err(format!(
                        "`{s}` has an invalid prefix length; use 0 to 32, like \"198.19.0.0/16\""
                    ));
                }
            },
        };
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        let net = u32::from(addr) & mask;
        if net != u32::from(addr) {
            return Err(format!(
                "`{s}` has host bits set; did you mean \"{}/{prefix}\"?",
                Ipv4Addr::from(net)
            ));
        }
        Ok(Route { addr, prefix })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// TCP MSS clamping on the tunnel (`[network] mss_clamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MssClamp {
    /// `mss_clamp = true` (the default): derive the MSS from the tunnel MTU.
    #[default]
    Auto,
    /// `mss_clamp = false`.
    Off,
    /// `mss_clamp = 1360`: this MSS for IPv4 and 20 less for IPv6, whatever the MTU.
    Value(u16),
}

/// `[network]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// `interface`: TUN device name (default: the engine's, e.g. `l2sec0`).
    pub interface: Option<String>,
    /// `default_route` (default true): send all traffic through the tunnel.
    pub default_route: bool,
    /// `routes`: networks routed through the tunnel (besides or instead of the default route).
    pub routes: Vec<Route>,
    /// `dns` (default true): use the DNS servers the server gives.
    pub dns: bool,
    /// `dns_search`: search domains to install with them.
    pub dns_search: Vec<String>,
    /// `mtu`: tunnel MTU; `None` = derived from the path and PPP.
    pub mtu: Option<u16>,
    /// `mss_clamp`.
    pub mss_clamp: MssClamp,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            interface: None,
            default_route: true,
            routes: Vec::new(),
            dns: true,
            dns_search: Vec::new(),
            mtu: None,
            mss_clamp: MssClamp::Auto,
        }
    }
}

/// Checks a TUN interface name: 1 to 15 bytes, no `/`, whitespace, `:` or `%`, not `.`/`..`.
pub fn validate_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "interface name `{name}` must have 1 to 15 characters, like \"l2sec0\""
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "interface name `{name}` holds a character Linux refuses; use letters, digits, - and _"
        ));
    }
    Ok(())
}

/// Checks a server name: an IPv4/IPv6 address or a DNS name (labels of letters, digits, `-`, `_`).
pub fn validate_server(s: &str) -> Result<(), String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let host = s.strip_suffix('.').unwrap_or(s);
    if host.is_empty() || host.len() > 253 {
        return Err(format!(
            "server `{s}` is not a host name or address; write it like \"vpn.example.com\""
        ));
    }
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            let hint = if s.contains("://") || s.contains('/') {
                "give only the host name, without scheme or path"
            } else if s.contains(':') {
                "give the host without a port (IKE uses 500/4500)"
            } else {
                "write it like \"vpn.example.com\""
            };
            return Err(format!(
                "server `{s}` is not a host name or address; {hint}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
