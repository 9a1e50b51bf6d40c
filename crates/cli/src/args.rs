//! Command-line syntax (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use l2sec_profile::{EspProposal, IkeProposal, Route, parse_esp, parse_ike};

/// Exit codes, shown in `--help` and the man page.
pub const EXIT_CODES: &str = "\
Exit status:
  0  connected and disconnected by the user (Ctrl-C, SIGTERM, `l2sec disconnect`), or success
  1  usage or profile error
  2  connect failed: the server refused or did not answer
  3  connection lost and not reconnecting (`status`: no connection is running)
  4  host configuration failed (TUN, addresses, routes, DNS; `cleanup` failed)
  5  internal error
  6  authentication failed: the PSK, certificate, user name or password was refused";

/// L2TP/IPsec VPN client that runs entirely in userspace.
#[derive(Debug, Parser)]
#[command(name = "l2sec", version, about, propagate_version = true)]
#[command(after_long_help = EXIT_CODES)]
pub struct Cli {
    /// More logging on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Control socket of the running connection.
    #[arg(long, global = true, value_name = "PATH", env = "L2SEC_CONTROL_SOCKET")]
    pub socket: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect in the foreground until Ctrl-C, SIGTERM or `l2sec disconnect`.
    #[command(after_long_help = EXIT_CODES)]
    Connect(Box<ConnectArgs>),
    /// Show the state of the running connection.
    Status {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Ask the running connection to disconnect and wait until it has.
    Disconnect,
    /// List, show and check profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Undo host changes (routes, DNS, interface) left by a crashed connection.
    Cleanup {
        /// Directory of restore journals.
        #[arg(
            long,
            value_name = "DIR",
            env = "L2SEC_JOURNAL_DIR",
            default_value = "/run/l2sec"
        )]
        journal_dir: PathBuf,
    },
    /// Print a shell completion script on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(hide = true)]
    Man,
}

/// `l2sec profile ...`.
#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// List the profiles of the search path.
    List,
    /// Show a profile as loaded, secrets redacted.
    Show {
        /// Profile name or path.
        profile: String,
    },
    /// Check profiles as `connect` would, without touching the network.
    Check {
        /// Profile names or paths.
        #[arg(required = true)]
        profiles: Vec<String>,
    },
}

/// `l2sec connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Profile name, searched in ~/.config/l2sec/profiles and /etc/l2sec/profiles
    /// ($L2SEC_PROFILE_PATH replaces both).
    #[arg(conflicts_with = "profile", required_unless_present_any = ["profile", "server"])]
    pub name: Option<String>,

    /// Profile file.
    #[arg(long, value_name = "PATH")]
    pub profile: Option<PathBuf>,

    /// One JSON object per event on stdout instead of progress lines.
    #[arg(long)]
    pub json: bool,

    /// Settings given here override the profile's (or make up an ad-hoc profile with --server).
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Flags that make up or override a profile.
#[derive(Debug, Default, Args)]
pub struct Overrides {
    /// Server name or address (without a profile: an ad-hoc connection).
    #[arg(long, value_name = "HOST", value_parser = parse_server, help_heading = "Profile settings")]
    pub server: Option<String>,

    /// IPsec pre-shared key (visible to other users in the process list: prefer --psk-file).
    #[arg(
        long,
        value_name = "PSK",
        conflicts_with = "psk_file",
        help_heading = "Profile settings"
    )]
    pub psk: Option<String>,

    /// File holding the IPsec pre-shared key (mode 0600).
    #[arg(long, value_name = "FILE", help_heading = "Profile settings")]
    pub psk_file: Option<PathBuf>,

    /// PPP user name.
    #[arg(long, value_name = "USER", help_heading = "Profile settings")]
    pub user: Option<String>,

    /// File holding the PPP password (mode 0600); without one you are asked on a terminal.
    #[arg(long, value_name = "FILE", help_heading = "Profile settings")]
    pub password_file: Option<PathBuf>,

    /// Plain L2TP without IPsec (unencrypted: for ISP links, not for a VPN).
    #[arg(long, conflicts_with_all = ["psk", "psk_file", "ike", "esp"], help_heading = "Profile settings")]
    pub no_ipsec: bool,

    /// IKE proposal, repeatable, e.g. aes256-sha1-modp2048.
    #[arg(long, value_name = "PROPOSAL", value_parser = parse_ike, help_heading = "Profile settings")]
    pub ike: Vec<IkeProposal>,

    /// ESP proposal, repeatable, e.g. aes256-sha1.
    #[arg(long, value_name = "PROPOSAL", value_parser = parse_esp, help_heading = "Profile settings")]
    pub esp: Vec<EspProposal>,

    /// TUN interface name.
    #[arg(long, value_name = "NAME", value_parser = parse_ifname, help_heading = "Profile settings")]
    pub interface: Option<String>,

    /// Network to route through the tunnel, repeatable, e.g. 198.19.0.0/16.
    #[arg(long, value_name = "NET", value_parser = Route::parse, help_heading = "Profile settings")]
    pub route: Vec<Route>,

    /// Keep the default route outside the tunnel.
    #[arg(long, help_heading = "Profile settings")]
    pub no_default_route: bool,

    /// Leave DNS alone.
    #[arg(long, help_heading = "Profile settings")]
    pub no_dns: bool,

    /// Reconnect with backoff after a loss (default: no on a terminal, yes under systemd).
    #[arg(
        long,
        conflicts_with = "no_reconnect",
        help_heading = "Profile settings"
    )]
    pub reconnect: bool,

    /// Do not reconnect after a loss.
    #[arg(long, help_heading = "Profile settings")]
    pub no_reconnect: bool,
}

fn parse_server(s: &str) -> Result<String, String> {
    l2sec_profile::validate_server(s).map(|()| s.to_owned())
}

fn parse_ifname(s: &str) -> Result<String, String> {
    l2sec_profile::validate_interface_name(s).map(|()| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_in_long_help() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status:"), "{help}");
        assert!(help.contains("4  host configuration failed"));
    }

    #[test]
    fn connect_forms() {
        let c = Cli::try_parse_from(["l2sec", "connect", "office"]).unwrap();
        let Command::Connect(a) = c.command else {
            panic!()
        };
        assert_eq!(a.name.as_deref(), Some("office"));
        let c = Cli::try_parse_from(["l2sec", "-vv", "connect", "--profile", "/x.toml", "--json"])
            .unwrap();
        assert_eq!(c.verbose, 2);
        let Command::Connect(a) = c.command else {
            panic!()
        };
        assert_eq!(a.profile.as_deref(), Some(std::path::Path::new("/x.toml")));
        assert!(a.json);
        // Neither a name, a profile nor a server: usage error.
        assert!(Cli::try_parse_from(["l2sec", "connect"]).is_err());
        assert!(Cli::try_parse_from(["l2sec", "connect", "a", "--profile", "b"]).is_err());
        assert!(
            Cli::try_parse_from([
                "l2sec",
                "connect",
                "--server",
                "h",
                "--psk",
                "x",
                "--psk-file",
                "f"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from(["l2sec", "connect", "a", "--reconnect", "--no-reconnect"])
                .is_err()
        );
    }

    #[test]
    fn ad_hoc_flags_are_validated() {
        let c = Cli::try_parse_from([
            "l2sec",
            "connect",
            "--server",
            "vpn.example.com",
            "--psk-file",
            "/p",
            "--user",
            "u",
            "--ike",
            "aes256-sha1-modp2048",
            "--ike",
            "3des-sha1-modp1024",
            "--esp",
            "aes128-sha1",
            "--route",
            "198.19.0.0/16",
            "--no-default-route",
            "--no-dns",
            "--interface",
            "vpn1",
        ])
        .unwrap();
        let Command::Connect(a) = c.command else {
            panic!()
        };
        let o = a.overrides;
        assert_eq!(o.server.as_deref(), Some("vpn.example.com"));
        assert_eq!(o.ike.len(), 2);
        assert_eq!(o.esp[0].to_string(), "aes128-sha1");
        assert_eq!(o.route[0].to_string(), "198.19.0.0/16");
        assert!(o.no_default_route && o.no_dns);
        for bad in [
            ["--ike", "aes256-sha1"],
            ["--esp", "aes256"],
            ["--route", "198.19.0.1/16"],
            ["--interface", "much-too-long-name"],
            ["--server", "https://x/"],
        ] {
            let mut v = vec!["l2sec", "connect", "--server", "h"];
            v.extend(bad);
            assert!(Cli::try_parse_from(v).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn other_subcommands() {
        assert!(matches!(
            Cli::try_parse_from(["l2sec", "status", "--json"])
                .unwrap()
                .command,
            Command::Status { json: true }
        ));
        assert!(matches!(
            Cli::try_parse_from(["l2sec", "disconnect"])
                .unwrap()
                .command,
            Command::Disconnect
        ));
        assert!(matches!(
            Cli::try_parse_from(["l2sec", "profile", "check", "a", "b"]).unwrap().command,
            Command::Profile(ProfileCmd::Check { profiles }) if profiles.len() == 2
        ));
        assert!(Cli::try_parse_from(["l2sec", "profile", "check"]).is_err());
        let c = Cli::try_parse_from(["l2sec", "cleanup", "--journal-dir", "/tmp/j"]).unwrap();
        assert!(
            matches!(c.command, Command::Cleanup { journal_dir } if journal_dir == std::path::Path::new("/tmp/j"))
        );
        assert!(matches!(
            Cli::try_parse_from(["l2sec", "completions", "bash"])
                .unwrap()
                .command,
            Command::Completions {
                shell: clap_complete::Shell::Bash
            }
        ));
        assert!(matches!(
            Cli::try_parse_from(["l2sec", "man"]).unwrap().command,
            Command::Man
        ));
    }
}
