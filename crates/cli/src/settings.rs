//! From a profile and the command-line flags to the profile `connect` uses.

use std::path::Path;

use l2sec_profile::{Loader, MissingSecret, Profile, Secret, SecretOrigin, read_secret_file};
use zeroize::Zeroizing;

use crate::args::{ConnectArgs, Overrides};
use crate::failure::Failure;

/// Loads the profile named by `a` (a name, `--profile`, or none for an ad-hoc `--server`) and
/// applies the flags on top.
pub fn build_profile(a: &ConnectArgs, loader: &Loader) -> Result<Profile, Failure> {
    let mut p = match (&a.name, &a.profile) {
        (_, Some(path)) => loader.load(path).map_err(Failure::profile)?,
        (Some(name), None) => {
            let path = l2sec_profile::find(name).map_err(Failure::profile)?;
            loader.load(&path).map_err(Failure::profile)?
        }
        (None, None) => {
            let server = a.overrides.server.clone().ok_or_else(|| {
                Failure::usage(
                    "connect: no profile; give a profile NAME, --profile PATH or --server HOST",
                )
            })?;
            Profile::new("ad-hoc", server)
        }
    };
    apply_overrides(&mut p, &a.overrides, loader.euid)?;
    Ok(p)
}

/// Applies the flags that were given; lists (`--route`) add to the profile's, `--ike`/`--esp`
/// replace it.
pub fn apply_overrides(p: &mut Profile, o: &Overrides, euid: u32) -> Result<(), Failure> {
    if let Some(s) = &o.server {
        p.server.clone_from(s);
    }
    if let Some(psk) = &o.psk {
        if psk.is_empty() {
            return Err(Failure::usage(
                "--psk is empty; give the key or use --psk-file",
            ));
        }
        p.ipsec.psk = Some(Secret::new(
            Zeroizing::new(psk.clone()),
            SecretOrigin::Given,
        ));
        p.ipsec.cert = None;
        p.ipsec.key = None;
    }
    if let Some(f) = &o.psk_file {
        p.ipsec.psk = Some(secret_from_file(f, euid)?);
        p.ipsec.cert = None;
        p.ipsec.key = None;
    }
    if let Some(u) = &o.user {
        if u.is_empty() {
            return Err(Failure::usage("--user is empty; give the PPP user name"));
        }
        p.ppp.user = Some(u.clone());
    }
    if let Some(f) = &o.password_file {
        p.ppp.password = Some(secret_from_file(f, euid)?);
    }
    if o.no_ipsec {
        p.ipsec.enabled = false;
        p.ipsec.psk = None;
    }
    if !o.ike.is_empty() {
        p.ipsec.ike.clone_from(&o.ike);
    }
    if !o.esp.is_empty() {
        p.ipsec.esp.clone_from(&o.esp);
    }
    if let Some(i) = &o.interface {
        p.network.interface = Some(i.clone());
    }
    for r in &o.route {
        if !p.network.routes.contains(r) {
            p.network.routes.push(*r);
        }
    }
    if o.no_default_route {
        p.network.default_route = false;
    }
    if o.no_dns {
        p.network.dns = false;
    }
    Ok(())
}

fn secret_from_file(f: &Path, euid: u32) -> Result<Secret, Failure> {
    let v = read_secret_file(f, euid, true).map_err(Failure::profile)?;
    Ok(Secret::new(v, SecretOrigin::File(f.to_path_buf())))
}

/// `--reconnect`/`--no-reconnect` win, then the profile, then the default: yes under systemd,
/// no otherwise.
#[must_use]
pub fn decide_reconnect(o: &Overrides, profile: Option<bool>, under_systemd: bool) -> bool {
    if o.reconnect {
        true
    } else if o.no_reconnect {
        false
    } else {
        profile.unwrap_or(under_systemd)
    }
}

/// Asks a question (prompt, hidden input) and returns the answer.
pub type Ask<'a> = &'a mut dyn FnMut(&str, bool) -> std::io::Result<String>;

/// Asks on the terminal for what the profile leaves out (user, PSK, password); without a terminal
/// (`ask` is `None`) each is an error naming the setting to add.
pub fn fill_missing(p: &mut Profile, mut ask: Option<Ask<'_>>) -> Result<(), Failure> {
    if p.ppp.user.is_none() {
        let Some(ask) = ask.as_deref_mut() else {
            return Err(Failure::usage(
                "ppp: no user: set user in [ppp] or pass --user",
            ));
        };
        let u = ask(&format!("User name for {}: ", p.server), false).map_err(Failure::prompt)?;
        let u = u.trim();
        if u.is_empty() {
            return Err(Failure::usage("ppp: no user given"));
        }
        p.ppp.user = Some(u.to_owned());
    }
    for m in p.missing_secrets() {
        let (prompt, headless) = match m {
            MissingSecret::Psk => (
                format!("IPsec pre-shared key for {}: ", p.server),
                "IPsec: no pre-shared key: set psk_file in [ipsec] (or pass --psk-file) or run on a terminal",
            ),
            _ => (
                format!(
                    "Password of {} on {}: ",
                    p.ppp.user.as_deref().unwrap_or("?"),
                    p.server
                ),
                "ppp: no password: set password_file in [ppp] or run on a terminal",
            ),
        };
        let Some(ask) = ask.as_deref_mut() else {
            return Err(Failure::usage(headless));
        };
        let v = Zeroizing::new(ask(&prompt, true).map_err(Failure::prompt)?);
        if v.is_empty() {
            return Err(Failure::usage("nothing entered; connection cancelled"));
        }
        let s = Some(Secret::new(v, SecretOrigin::Prompt));
        match m {
            MissingSecret::Psk => p.ipsec.psk = s,
            _ => p.ppp.password = s,
        }
    }
    Ok(())
}

/// Prompts on the controlling terminal (hidden input for secrets).
pub fn terminal_prompt(prompt: &str, secret: bool) -> std::io::Result<String> {
    if secret {
        rpassword::prompt_password(prompt)
    } else {
        use std::io::Write;
        let mut err = std::io::stderr();
        err.write_all(prompt.as_bytes())?;
        err.flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn connect_args(v: &[&str]) -> ConnectArgs {
        let mut all = vec!["l2sec", "connect"];
        all.extend(v);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Connect(a) => *a,
            _ => unreachable!("connect parses as connect"),
        }
    }

    fn loader() -> Loader {
        Loader {
            credentials_dir: None,
            euid: nix_euid(),
        }
    }

    fn nix_euid() -> u32 {
        use std::os::unix::fs::MetadataExt;
        // The owner of a file we create is our effective uid.
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().metadata().unwrap().uid()
    }

    fn secret(dir: &Path, name: &str, v: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(v.as_bytes())
            .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    #[test]
    fn ad_hoc_profile_from_flags() {
        let d = tempfile::tempdir().unwrap();
        let psk = secret(d.path(), "psk", "k\n");
        let pw = secret(d.path(), "pw", "p\n");
        let a = connect_args(&[
            "--server",
            "198.18.0.1",
            "--psk-file",
            psk.to_str().unwrap(),
            "--user",
            "alice",
            "--password-file",
            pw.to_str().unwrap(),
            "--ike",
            "3des-sha1-modp1024",
            "--esp",
            "3des-sha1",
            "--route",
            "198.19.0.0/16",
            "--no-default-route",
            "--no-dns",
            "--interface",
            "vpn9",
        ]);
        let p = build_profile(&a, &loader()).unwrap();
        assert_eq!(p.name, "ad-hoc");
        assert_eq!(p.server, "198.18.0.1");
        assert!(p.ipsec.enabled);
        assert_eq!(p.ipsec.psk.as_ref().unwrap().expose(), "k");
        assert_eq!(p.ppp.user.as_deref(), Some("alice"));
        assert_eq!(p.ppp.password.as_ref().unwrap().expose(), "p");
        assert_eq!(p.ipsec.ike[0].to_string(), "3des-sha1-modp1024");
        assert_eq!(p.ipsec.esp[0].to_string(), "3des-sha1");
        assert_eq!(p.network.routes[0].to_string(), "198.19.0.0/16");
        assert!(!p.network.default_route && !p.network.dns);
        assert_eq!(p.network.interface.as_deref(), Some("vpn9"));
        assert!(p.missing_secrets().is_empty());
    }

    #[test]
    fn plain_l2tp_and_flags_over_a_profile() {
        let d = tempfile::tempdir().unwrap();
        let prof = d.path().join("isp.toml");
        std::fs::write(&prof, "server = \"isp.example.net\"\nreconnect = true\n[ipsec]\nenabled = false\n[network]\nroutes = [\"10.0.0.0/8\"]\n").unwrap();
        let a = connect_args(&[
            "--profile",
            prof.to_str().unwrap(),
            "--user",
            "bob",
            "--route",
            "10.0.0.0/8",
            "--route",
            "172.16.0.0/12",
        ]);
        let p = build_profile(&a, &loader()).unwrap();
        assert_eq!(p.name, "isp");
        assert!(!p.ipsec.enabled);
        assert_eq!(p.ppp.user.as_deref(), Some("bob"));
        assert_eq!(p.network.routes.len(), 2);
        assert_eq!(p.missing_secrets(), vec![MissingSecret::Password]);
        assert!(decide_reconnect(&a.overrides, p.reconnect, false));
        let a = connect_args(&["--server", "h", "--no-ipsec", "--user", "u"]);
        assert!(!build_profile(&a, &loader()).unwrap().ipsec.enabled);
    }

    #[test]
    fn bad_profile_is_a_usage_failure() {
        let d = tempfile::tempdir().unwrap();
        let prof = d.path().join("bad.toml");
        std::fs::write(&prof, "server = \"h\"\n[ppp]\npasword = \"x\"\n").unwrap();
        let a = connect_args(&["--profile", prof.to_str().unwrap()]);
        let f = build_profile(&a, &loader()).unwrap_err();
        assert_eq!(f.code, crate::failure::EXIT_USAGE);
        assert!(
            f.message.contains("did you mean `password`?"),
            "{}",
            f.message
        );
        let a = connect_args(&["--server", "h", "--psk-file", "/nonexistent/psk"]);
        assert_eq!(
            build_profile(&a, &loader()).unwrap_err().code,
            crate::failure::EXIT_USAGE
        );
    }

    #[test]
    fn reconnect_precedence() {
        let none = Overrides::default();
        assert!(!decide_reconnect(&none, None, false));
        assert!(decide_reconnect(&none, None, true));
        assert!(!decide_reconnect(&none, Some(false), true));
        let yes = Overrides {
            reconnect: true,
            ..Overrides::default()
        };
        assert!(decide_reconnect(&yes, Some(false), false));
        let no = Overrides {
            no_reconnect: true,
            ..Overrides::default()
        };
        assert!(!decide_reconnect(&no, Some(true), true));
    }

    #[test]
    fn headless_missing_secrets_are_errors() {
        let mut p = Profile::new("x", "vpn.example.com");
        let f = fill_missing(&mut p, None).unwrap_err();
        assert_eq!(f.message, "ppp: no user: set user in [ppp] or pass --user");
        p.ppp.user = Some("u".into());
        let f = fill_missing(&mut p, None).unwrap_err();
        assert!(
            f.message.starts_with("IPsec: no pre-shared key"),
            "{}",
            f.message
        );
        p.ipsec.enabled = false;
        let f = fill_missing(&mut p, None).unwrap_err();
        assert_eq!(
            f.message,
            "ppp: no password: set password_file in [ppp] or run on a terminal"
        );
        assert_eq!(f.code, crate::failure::EXIT_USAGE);
    }

    #[test]
    fn prompts_fill_user_psk_and_password() {
        let mut p = Profile::new("x", "vpn.example.com");
        let mut asked = Vec::new();
        let mut ask = |prompt: &str, secret: bool| {
            asked.push((prompt.to_owned(), secret));
            Ok(if secret {
                "s3cret".to_owned()
            } else {
                "alice\n".to_owned()
            })
        };
        fill_missing(&mut p, Some(&mut ask)).unwrap();
        assert_eq!(p.ppp.user.as_deref(), Some("alice"));
        assert_eq!(p.ipsec.psk.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(
            p.ppp.password.as_ref().unwrap().origin(),
            &SecretOrigin::Prompt
        );
        assert_eq!(asked.len(), 3);
        assert_eq!(
            asked[2],
            ("Password of alice on vpn.example.com: ".to_owned(), true)
        );
        let mut p = Profile::new("x", "h");
        p.ppp.user = Some("u".into());
        let mut empty = |_: &str, _: bool| Ok(String::new());
        assert!(fill_missing(&mut p, Some(&mut empty)).is_err());
    }
}
