//! Tests of the profile schema: every key, defaults, messages, modes, secret files.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn loader(creds: Option<PathBuf>) -> Loader {
    Loader {
        credentials_dir: creds,
        euid: nix::unistd::geteuid().as_raw(),
    }
}

fn parse(text: &str) -> Result<Profile, Error> {
    loader(None).parse(text, Path::new("/p/test.toml"))
}

fn diags(text: &str) -> Vec<Diagnostic> {
    match parse(text) {
        Err(Error::Invalid { diagnostics }) => diagnostics,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn one_error(text: &str) -> String {
    let d = diags(text);
    assert_eq!(d.len(), 1, "{d:?}");
    d[0].to_string()
}

fn write_file(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(content.as_bytes()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn defaults() {
    let p = parse("server = \"vpn.example.com\"").unwrap();
    assert_eq!(p.name, "test");
    assert_eq!(p.server, "vpn.example.com");
    assert_eq!(p.reconnect, None);
    assert_eq!(p.description, None);
    assert_eq!(p.source.as_deref(), Some(Path::new("/p/test.toml")));
    let mut expected = Profile::new("test", "vpn.example.com");
    expected.source = Some("/p/test.toml".into());
    assert_eq!(p, expected);
    assert!(p.ipsec.enabled);
    assert_eq!(p.ipsec.pfs, Pfs::Off);
    assert!(!p.ipsec.aggressive && !p.ipsec.force_encap);
    assert!(p.ipsec.ike.is_empty() && p.ipsec.esp.is_empty());
    assert!(p.ppp.auth.is_empty(), "not listed: the default applies");
    assert_eq!(p.ppp.auth_methods(true), vec![AuthMethod::MsChapV2]);
    assert_eq!(
        p.ppp.auth_methods(false),
        vec![AuthMethod::MsChapV2, AuthMethod::Chap, AuthMethod::Pap]
    );
    assert!(!p.ppp.ipv6);
    assert!(p.network.default_route && p.network.dns);
    assert_eq!(p.network.mss_clamp, MssClamp::Auto);
    assert_eq!(
        p.missing_secrets(),
        vec![MissingSecret::Psk, MissingSecret::Password]
    );
}

const FULL: &str = r#"
server = "198.18.0.1"
reconnect = true
description = "Office"

[ipsec]
enabled = true
psk = "inline-psk"
remote_id = "vpn.example.com"
local_id = "alice@example.com"
ike = ["aes256-sha256-modp2048", "3des-sha1-modp1024"]
esp = ["aes256-sha1", "aes128gcm16"]
pfs = "modp2048"
aggressive = true
force_encap = true
dpd_interval = "30s"
ike_lifetime = "8h"
esp_lifetime = 3600

[l2tp]
secret = "tunnel-secret"
hostname = "laptop"
hello_interval = "1m"

[ppp]
user = "alice"
password = "alice-pass"
auth = ["pap", "mschapv2"]
mru = 1400
echo_interval = 10
echo_failures = 4
request_ip = "198.19.0.10"
ipv6 = true

[network]
interface = "vpn0"
default_route = false
routes = ["198.19.0.0/16", "10.1.2.3"]
dns = false
dns_search = ["corp.example.com"]
mtu = 1380
mss_clamp = 1300
"#;

#[test]
fn every_key() {
    let p = parse(FULL).unwrap();
    assert_eq!(p.server, "198.18.0.1");
    assert_eq!(p.reconnect, Some(true));
    assert_eq!(p.description.as_deref(), Some("Office"));
    let ip = &p.ipsec;
    assert!(ip.enabled);
    assert_eq!(ip.psk.as_ref().unwrap().expose(), "inline-psk");
    assert_eq!(ip.psk.as_ref().unwrap().origin(), &SecretOrigin::Inline);
    assert_eq!(ip.remote_id.as_deref(), Some("vpn.example.com"));
    assert_eq!(ip.local_id.as_deref(), Some("alice@example.com"));
    let ike: Vec<String> = ip.ike.iter().map(ToString::to_string).collect();
    assert_eq!(ike, ["aes256-sha256-modp2048", "3des-sha1-modp1024"]);
    let esp: Vec<String> = ip.esp.iter().map(ToString::to_string).collect();
    assert_eq!(esp, ["aes256-sha1", "aes128gcm16"]);
    assert_eq!(ip.pfs, Pfs::Group(DhGroup::Modp2048));
    assert!(ip.aggressive && ip.force_encap);
    assert_eq!(ip.dpd_interval, Some(Duration::from_secs(30)));
    assert_eq!(ip.ike_lifetime, Some(Duration::from_secs(28800)));
    assert_eq!(ip.esp_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(p.l2tp.secret.as_ref().unwrap().expose(), "tunnel-secret");
    assert_eq!(p.l2tp.hostname.as_deref(), Some("laptop"));
    assert_eq!(p.l2tp.hello_interval, Some(Duration::from_secs(60)));
    let pp = &p.ppp;
    assert_eq!(pp.user.as_deref(), Some("alice"));
    assert_eq!(pp.password.as_ref().unwrap().expose(), "alice-pass");
    assert_eq!(pp.auth, vec![AuthMethod::Pap, AuthMethod::MsChapV2]);
    assert_eq!(pp.mru, Some(1400));
    assert_eq!(pp.echo_interval, Some(Duration::from_secs(10)));
    assert_eq!(pp.echo_failures, Some(4));
    assert_eq!(pp.request_ip, Some(Ipv4Addr::new(198, 19, 0, 10)));
    assert!(pp.ipv6);
    let n = &p.network;
    assert_eq!(n.interface.as_deref(), Some("vpn0"));
    assert!(!n.default_route && !n.dns);
    assert_eq!(
        n.routes,
        vec![
            Route {
                addr: Ipv4Addr::new(198, 19, 0, 0),
                prefix: 16
            },
            Route {
                addr: Ipv4Addr::new(10, 1, 2, 3),
                prefix: 32
            }
        ]
    );
    assert_eq!(n.dns_search, vec!["corp.example.com".to_owned()]);
    assert_eq!(n.mtu, Some(1380));
    assert_eq!(n.mss_clamp, MssClamp::Value(1300));
    assert!(p.missing_secrets().is_empty());
}

#[test]
fn debug_never_shows_secrets() {
    let p = parse(FULL).unwrap();
    let dbg = format!("{p:?}");
    for s in ["inline-psk", "tunnel-secret", "alice-pass"] {
        assert!(!dbg.contains(s), "{s} leaked in {dbg}");
    }
    assert!(dbg.contains("redacted"));
    let shown = p.render_redacted();
    for s in ["inline-psk", "tunnel-secret", "alice-pass"] {
        assert!(!shown.contains(s), "{s} leaked in {shown}");
    }
}

#[test]
fn pfs_and_mss_forms() {
    let p = parse("server = \"a\"\n[ipsec]\npfs = true\n[network]\nmss_clamp = false").unwrap();
    assert_eq!(p.ipsec.pfs, Pfs::Phase1Group);
    assert_eq!(p.network.mss_clamp, MssClamp::Off);
    let p = parse("server = \"a\"\n[ipsec]\npfs = false\n[network]\nmss_clamp = true").unwrap();
    assert_eq!(p.ipsec.pfs, Pfs::Off);
    assert_eq!(p.network.mss_clamp, MssClamp::Auto);
    let e = one_error("server = \"a\"\n[ipsec]\npfs = \"modp2049\"");
    assert!(e.contains("did you mean `modp2048`"), "{e}");
}

#[test]
fn dotted_and_inline_tables() {
    let p = parse("server = \"a\"\nppp.user = \"bob\"\nnetwork = { dns = false }").unwrap();
    assert_eq!(p.ppp.user.as_deref(), Some("bob"));
    assert!(!p.network.dns);
}

#[test]
fn unknown_key_names_line_and_suggestion() {
    let text = "server = \"a\"\n\n[ppp]\nuser = \"alice\"\n\n\npasword = \"x\"\n";
    let e = one_error(text);
    assert_eq!(
        e,
        "/p/test.toml:7:1: unknown key `pasword` in [ppp] at line 7; did you mean `password`?"
    );
    let d = diags(text);
    assert_eq!(
        (d[0].line, d[0].col, d[0].key.as_str()),
        (7, 1, "ppp.pasword")
    );
}

#[test]
fn unknown_key_in_wrong_section_and_top() {
    let e = one_error("server = \"a\"\n[ppp]\nroutes = []");
    assert!(e.contains("unknown key `routes` in [ppp]"), "{e}");
    assert!(e.contains("belongs in [network]"), "{e}");
    let e = one_error("sever = \"a\"\nserver = \"b\"");
    assert!(
        e.starts_with("/p/test.toml:1:1: unknown key `sever` at the top level"),
        "{e}"
    );
    assert!(e.contains("did you mean `server`?"), "{e}");
    let e = one_error("server = \"a\"\n[ipsek]\n");
    assert!(e.contains("did you mean `ipsec`?"), "{e}");
    let e = one_error("server = \"a\"\nxyzzy = 1");
    assert!(e.contains("known keys:"), "{e}");
}

#[test]
fn several_errors_one_line_each_in_order() {
    let d = diags("server = 5\n[ppp]\nmru = 10\n[network]\nmtu = \"big\"\n");
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d[0].line, 1);
    assert!(
        d[0].to_string()
            .contains("`server` must be a string, found an integer")
    );
    assert_eq!((d[1].line, d[1].col), (3, 7));
    assert!(d[1].to_string().contains("out of range (128 to 16384)"));
    assert_eq!(d[2].line, 5);
    for x in &d {
        assert!(!x.to_string().contains('\n'));
    }
}

#[test]
fn syntax_error_is_located() {
    let e = one_error("server = \"a\"\n[ppp\nuser = 1");
    assert!(e.starts_with("/p/test.toml:2:"), "{e}");
    assert!(e.contains("invalid TOML"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn missing_server() {
    let e = one_error("[ppp]\nuser = \"a\"");
    assert!(
        e.contains("missing `server`") && e.contains("add server ="),
        "{e}"
    );
    assert!(one_error("server = \"https://vpn.example.com/\"").contains("without scheme"));
    assert!(one_error("server = \"vpn.example.com:500\"").contains("without a port"));
    assert!(parse("server = \"2001:db8::1\"").is_ok());
}

#[test]
fn value_errors() {
    let cases: &[(&str, &str)] = &[
        ("[ipsec]\nike = [\"aes256-sha1\"]", "cipher-hash-group"),
        ("[ipsec]\nesp = [\"aes256-sha1-modp2048\"]", "pfs"),
        (
            "[ipsec]\nike = \"aes256-sha1-modp2048\"",
            "must be an array of strings",
        ),
        ("[ipsec]\nike = [1]", "entries must be strings"),
        ("[ipsec]\ndpd_interval = \"5x\"", "invalid duration"),
        ("[ipsec]\nike_lifetime = 10", "at least 60 seconds"),
        ("[ipsec]\nesp_lifetime = -1", "negative"),
        ("[ipsec]\naggressive = \"yes\"", "must be true or false"),
        ("[ppp]\nauth = [\"mschap2\"]", "did you mean `mschapv2`"),
        ("[ppp]\nauth = []", "empty list"),
        ("[ppp]\nauth = [\"pap\", \"pap\"]", "listed twice"),
        ("[ppp]\nrequest_ip = \"1.2.3\"", "not an IPv4 address"),
        ("[ppp]\nuser = \"\"", "is empty"),
        ("[ppp]\necho_failures = 0", "out of range"),
        (
            "[network]\nroutes = [\"198.19.0.1/16\"]",
            "did you mean \"198.19.0.0/16\"?",
        ),
        ("[network]\nroutes = [\"198.19.0.0/33\"]", "prefix length"),
        (
            "[network]\ninterface = \"a-very-long-interface\"",
            "1 to 15",
        ),
        ("[network]\ninterface = \"a/b\"", "refuses"),
        ("[network]\nmtu = 100", "out of range"),
        (
            "[network]\ndns_search = [\"1.2.3.4\"]",
            "an address, not a domain",
        ),
        ("[network]\nmss_clamp = \"auto\"", "true, false or an MSS"),
        ("ppp = 5", "must be a section"),
        ("[l2tp]\nhostname = \"h\u{e9}\"", "ASCII"),
        ("reconnect = 1", "true or false"),
    ];
    for (body, want) in cases {
        let text = format!("server = \"a\"\n{body}\n");
        let e = one_error(&text);
        assert!(e.contains(want), "{body}: {e}");
        assert!(e.starts_with("/p/test.toml:"), "{e}");
    }
}

#[test]
fn exclusive_and_dependent_keys() {
    let e = one_error("server = \"a\"\n[ppp]\npassword = \"x\"\npassword_file = \"f\"");
    assert!(
        e.contains("both `ppp.password` and `ppp.password_file`"),
        "{e}"
    );
    assert!(e.starts_with("/p/test.toml:4:1"), "{e}");
    let e = one_error("server = \"a\"\n[ipsec]\npsk = \"x\"\ncert = \"c\"\nkey = \"k\"");
    assert!(e.contains("both a PSK and a certificate"), "{e}");
    let e = one_error("server = \"a\"\n[ipsec]\ncert = \"c\"");
    assert!(e.contains("`ipsec.key` is not"), "{e}");
    let e = one_error("server = \"a\"\n[ipsec]\nenabled = false\npsk = \"x\"");
    assert!(
        e.contains("no effect: IPsec is off (enabled = false at line 3)"),
        "{e}"
    );
    let e = one_error("server = \"a\"\n[l2tp]\nsecret = \"\"");
    assert!(e.contains("is empty"), "{e}");
    let e = one_error("server = \"a\"\n[ipsec]\npsk_file = \"cred:\"");
    assert!(e.contains("credential name"), "{e}");
}

#[test]
fn plain_l2tp_needs_no_psk() {
    let p = parse("server = \"a\"\n[ipsec]\nenabled = false\n[ppp]\nuser = \"u\"").unwrap();
    assert!(!p.ipsec.enabled);
    assert_eq!(p.missing_secrets(), vec![MissingSecret::Password]);
}

#[test]
fn secret_files_relative_and_absolute() {
    let d = tempfile::tempdir().unwrap();
    write_file(d.path(), "psk", "file-psk\n", 0o600);
    let abs = write_file(d.path(), "pass", "file-pass\n", 0o400);
    write_file(d.path(), "l2tp", "tsecret", 0o600);
    let text = format!(
        "server = \"a\"\n[ipsec]\npsk_file = \"psk\"\n[l2tp]\nsecret_file = \"l2tp\"\n[ppp]\npassword_file = \"{}\"\n",
        abs.display()
    );
    let prof = write_file(d.path(), "office.toml", &text, 0o644);
    let p = loader(None).load(&prof).unwrap();
    assert_eq!(p.name, "office");
    assert_eq!(p.ipsec.psk.as_ref().unwrap().expose(), "file-psk");
    assert_eq!(
        p.ipsec.psk.as_ref().unwrap().origin(),
        &SecretOrigin::File(d.path().join("psk"))
    );
    assert_eq!(p.ppp.password.as_ref().unwrap().expose(), "file-pass");
    assert_eq!(p.l2tp.secret.as_ref().unwrap().expose(), "tsecret");
    let shown = p.render_redacted();
    assert!(shown.contains("psk_file = "), "{shown}");
    assert!(!shown.contains("file-psk"));
}

#[test]
fn secret_file_must_be_private() {
    let d = tempfile::tempdir().unwrap();
    let psk = write_file(d.path(), "psk", "file-psk\n", 0o644);
    let prof = write_file(
        d.path(),
        "o.toml",
        "server = \"a\"\n[ipsec]\npsk_file = \"psk\"\n",
        0o644,
    );
    let e = loader(None).load(&prof).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "secret file {} holds a secret and is readable by others (mode 0644); run: chmod 600 {}",
            psk.display(),
            psk.display()
        )
    );
    let prof = write_file(
        d.path(),
        "m.toml",
        "server = \"a\"\n[ipsec]\npsk_file = \"missing\"\n",
        0o644,
    );
    let e = loader(None).load(&prof).unwrap_err();
    assert!(
        matches!(&e, Error::SecretFile { key, .. } if key == "ipsec.psk_file"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("put the secret in that file (chmod 600)"),
        "{e}"
    );
}

#[test]
fn profile_with_inline_secret_must_be_private() {
    let d = tempfile::tempdir().unwrap();
    let prof = write_file(
        d.path(),
        "o.toml",
        "server = \"a\"\n[ppp]\npassword = \"pw\"\n",
        0o644,
    );
    let e = loader(None).load(&prof).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "profile {} holds a secret and is readable by others (mode 0644); run: chmod 600 {}",
            prof.display(),
            prof.display()
        )
    );
    std::fs::set_permissions(&prof, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        loader(None)
            .load(&prof)
            .unwrap()
            .ppp
            .password
            .unwrap()
            .expose(),
        "pw"
    );
    // Without a secret, a world-readable profile is fine.
    let prof = write_file(
        d.path(),
        "n.toml",
        "server = \"a\"\n[ppp]\nuser = \"u\"\n",
        0o644,
    );
    assert!(loader(None).load(&prof).is_ok());
}

#[test]
fn credentials_from_systemd() {
    let creds = tempfile::tempdir().unwrap();
    // systemd makes the directory private; the file mode itself is not checked.
    write_file(creds.path(), "psk", "cred-psk", 0o444);
    let text = "server = \"a\"\n[ipsec]\npsk_file = \"cred:psk\"\n";
    let p = loader(Some(creds.path().into()))
        .parse(text, Path::new("/p/x.toml"))
        .unwrap();
    assert_eq!(p.ipsec.psk.as_ref().unwrap().expose(), "cred-psk");
    assert_eq!(
        p.ipsec.psk.as_ref().unwrap().origin(),
        &SecretOrigin::Credential("psk".into())
    );
    assert!(p.render_redacted().contains("psk_file = \"cred:psk\""));
    let e = loader(None)
        .parse(text, Path::new("/p/x.toml"))
        .unwrap_err();
    assert!(matches!(e, Error::NoCredentials { .. }), "{e}");
    assert!(e.to_string().contains("LoadCredential=psk:"), "{e}");
}

#[test]
fn certificate_files() {
    let d = tempfile::tempdir().unwrap();
    write_file(d.path(), "c.pem", "cert", 0o644);
    write_file(d.path(), "ca.pem", "ca", 0o644);
    let key = write_file(d.path(), "k.pem", "key", 0o644);
    let text = "server = \"a\"\n[ipsec]\ncert = \"c.pem\"\nkey = \"k.pem\"\nca = \"ca.pem\"\nremote_id = \"CN=vpn\"\n";
    let prof = write_file(d.path(), "c.toml", text, 0o644);
    let e = loader(None).load(&prof).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Permissions {
                what: "private key",
                ..
            }
        ),
        "{e}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = loader(None).load(&prof).unwrap();
    assert_eq!(
        p.ipsec.cert.as_deref(),
        Some(d.path().join("c.pem").as_path())
    );
    assert_eq!(p.ipsec.key.as_deref(), Some(key.as_path()));
    assert_eq!(
        p.ipsec.ca.as_deref(),
        Some(d.path().join("ca.pem").as_path())
    );
    assert_eq!(p.missing_secrets(), vec![MissingSecret::Password]);
    std::fs::remove_file(d.path().join("ca.pem")).unwrap();
    assert!(matches!(loader(None).load(&prof), Err(Error::Io { .. })));
}

#[test]
fn non_utf8_profile() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.toml");
    std::fs::write(&p, b"server = \"a\"\n\xff").unwrap();
    let e = loader(None).load(&p).unwrap_err();
    assert!(e.to_string().contains(":2:1: the file is not UTF-8"), "{e}");
}

#[test]
fn render_round_trips_without_inline_secrets() {
    let text = FULL
        .replace("psk = \"inline-psk\"\n", "")
        .replace("secret = \"tunnel-secret\"\n", "")
        .replace("password = \"alice-pass\"\n", "");
    let p = parse(&text).unwrap();
    let again = parse(&p.render_redacted()).unwrap();
    assert_eq!(p, again, "{}", p.render_redacted());
}

#[test]
fn route_parse() {
    assert_eq!(Route::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
    assert_eq!(Route::parse("10.0.0.0/8").unwrap().prefix, 8);
    assert!(Route::parse("10.0.0.0/x").is_err());
    assert!(Route::parse("banana").is_err());
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(parse::line_col("ab\ncd", 4), (2, 2));
    assert_eq!(parse::line_col("\u{e9}x", 2), (1, 2));
    assert_eq!(parse::line_col("\u{e9}x", 1), (1, 1));
    assert_eq!(parse::line_col("ab", 99), (1, 3));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn arbitrary_toml_never_panics(
        keys in proptest::collection::vec(
            ("(server|reconnect|description|ipsec|ppp|l2tp|network|psk|user|mtu|routes|ike|esp|pfs|auth|mru|dns|x)",
             prop_oneof![
                Just("1".to_owned()), Just("-1".to_owned()), Just("true".to_owned()),
                Just("\"8h\"".to_owned()), Just("[\"a\", 1]".to_owned()), Just("{ a = 1 }".to_owned()),
                Just("[\"aes256-sha1-modp2048\"]".to_owned()), Just("1.5".to_owned()),
                "\"[a-z0-9./:-]{0,12}\"".prop_map(|s| s),
             ]),
            0..8),
        sections in proptest::collection::vec("(ipsec|ppp|l2tp|network|x)", 0..4),
    ) {
        let mut text = String::new();
        for (i, (k, v)) in keys.iter().enumerate() {
            if let Some(s) = sections.get(i) {
                text.push_str(&format!("[{s}]\n"));
            }
            text.push_str(&format!("{k} = {v}\n"));
        }
        match parse(&text) {
            Ok(p) => prop_assert!(!p.server.is_empty()),
            Err(Error::Invalid { diagnostics }) => {
                prop_assert!(!diagnostics.is_empty());
                for d in diagnostics {
                    prop_assert!(d.line >= 1 && d.col >= 1);
                    prop_assert!(!d.to_string().contains('\n'));
                }
            }
            Err(_) => {}
        }
    }
}
