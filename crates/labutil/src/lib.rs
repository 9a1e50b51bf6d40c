//! Helpers for tests that run against the project's lab (`lab/l2sec-lab up`).
//!
//! Lab tests run only when `L2SEC_LAB=1`; otherwise they say so and return early. A test enters
//! a lab network namespace for its own thread with [`enter_netns`]: sockets created afterwards
//! on that thread live in the namespace.
#![forbid(unsafe_code)]

use std::fs::File;
use std::net::Ipv4Addr;

/// Addresses, names and credentials of the project's lab (see `lab/README.md`).
pub mod topo {
    use super::Ipv4Addr;

    /// SoftEther server namespace.
    pub const SE_SRV_NS: &str = "l2s-se-srv";
    /// SoftEther client namespace.
    pub const SE_CLI_NS: &str = "l2s-se-cli";
    /// Namespace of the LAN host behind SoftEther.
    pub const SE_LAN_NS: &str = "l2s-se-lan";
    /// SoftEther server address.
    pub const SE_SRV: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    /// SoftEther client address.
    pub const SE_CLI: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    /// Gateway inside the SoftEther tunnel (SecureNAT).
    pub const SE_GW: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
    /// LAN host behind SoftEther.
    pub const SE_LAN_HOST: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 250);
    /// SoftEther IPsec pre-shared key.
    pub const SE_PSK: &str = "l2sec-lab-psk";
    /// SoftEther hub name.
    pub const SE_HUB: &str = "LAB";

    /// l2tpns server namespace.
    pub const L2_SRV_NS: &str = "l2s-l2-srv";
    /// l2tpns client namespace.
    pub const L2_CLI_NS: &str = "l2s-l2-cli";
    /// l2tpns server address (UDP 1701).
    pub const L2_SRV: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 1);
    /// l2tpns client address.
    pub const L2_CLI: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 2);
    /// Gateway reachable through an l2tpns tunnel.
    pub const L2_GW: Ipv4Addr = Ipv4Addr::new(198, 19, 22, 1);
    /// Address RADIUS assigns to [`USER_FIXED`].
    pub const L2_FIXED_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 20, 99);

    /// xl2tpd server namespace.
    pub const XL_SRV_NS: &str = "l2s-xl-srv";
    /// xl2tpd client namespace.
    pub const XL_CLI_NS: &str = "l2s-xl-cli";
    /// xl2tpd server address.
    pub const XL_SRV: Ipv4Addr = Ipv4Addr::new(198, 18, 30, 1);
    /// xl2tpd client address.
    pub const XL_CLI: Ipv4Addr = Ipv4Addr::new(198, 18, 30, 2);
    /// L2TP tunnel secret configured in xl2tpd.
    pub const XL_SECRET: &str = "l2sec-lab-secret";

    /// strongSwan server namespace.
    pub const SS_SRV_NS: &str = "l2s-ss-srv";
    /// strongSwan client namespace.
    pub const SS_CLI_NS: &str = "l2s-ss-cli";
    /// strongSwan server address.
    pub const SS_SRV: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 1);
    /// strongSwan client address.
    pub const SS_CLI: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 2);
    /// strongSwan pre-shared key.
    pub const SS_PSK: &str = "l2sec-lab-psk";

    /// Namespace of the Linux server VM (libreswan + xl2tpd + pppd) and its bridge.
    pub const LX_SRV_NS: &str = "l2s-lx-srv";
    /// Linux server address (the VM's eth0).
    pub const LX_SRV: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 1);
    /// Client namespace for libreswan's `encapsulation=yes` conn (ESP in UDP 4500, no NAT).
    pub const LX_CLI_NS: &str = "l2s-lx-cli";
    /// Client namespace for the `encapsulation=auto` conn: raw ESP (IP protocol 50).
    pub const LX_RAW_NS: &str = "l2s-lx-raw";
    /// Client namespace whose address may reach xl2tpd without IPsec (plain L2TP).
    pub const LX_CLEAR_NS: &str = "l2s-lx-clr";
    /// Client namespace served by the LNS that requires CHAP-MD5.
    pub const LX_MD5_NS: &str = "l2s-lx-md5";
    /// Client namespace served by the LNS that requires PAP.
    pub const LX_PAP_NS: &str = "l2s-lx-pap";
    /// Client namespace for the aggressive-mode conn.
    pub const LX_AGGR_NS: &str = "l2s-lx-agr";
    /// Client namespace for the conn whose ESP SA the server rekeys (90 s lifetime).
    pub const LX_REKEY_NS: &str = "l2s-lx-rky";
    /// pppd's address on the server side of every PPP link.
    pub const LX_PPP_SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 40, 1);
    /// The two DNS servers pppd hands out.
    pub const LX_PPP_DNS: [Ipv4Addr; 2] = [
        Ipv4Addr::new(198, 19, 40, 53),
        Ipv4Addr::new(198, 19, 40, 54),
    ];

    /// PPP user with a pool address (all servers).
    pub const USER: &str = "alice";
    /// Password of [`USER`].
    pub const PASSWORD: &str = "alice-pass";
    /// l2tpns RADIUS user with a fixed address.
    pub const USER_FIXED: &str = "fixed";
    /// Password of [`USER_FIXED`].
    pub const PASSWORD_FIXED: &str = "fixed-pass";
}

/// True when lab tests should run (`L2SEC_LAB=1`).
#[must_use]
pub fn lab_enabled() -> bool {
    std::env::var("L2SEC_LAB").is_ok_and(|v| v == "1")
}

/// Returns true and prints nothing when the lab is enabled; prints why the test is skipped and
/// returns false otherwise.
#[must_use]
pub fn require_lab(test: &str) -> bool {
    if lab_enabled() {
        true
    } else {
        eprintln!("{test}: lab test skipped (run `lab/l2sec-lab up` and set L2SEC_LAB=1)");
        false
    }
}

/// Moves the calling thread into the named network namespace (`/run/netns/NAME`).
///
/// # Errors
/// When the namespace does not exist or `setns` is not permitted.
pub fn enter_netns(name: &str) -> std::io::Result<()> {
    let f = File::open(format!("/run/netns/{name}"))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}

/// Credentials the Linux server lab drew for this run (`$LAB_STATE/linux/lab.env`).
#[derive(Debug, Clone)]
pub struct LinuxLab {
    /// IPsec pre-shared key.
    pub psk: String,
    /// PPP user.
    pub user: String,
    /// PPP password.
    pub password: String,
    /// File where the VM's TCP sink (port 5001) writes `<bytes> <sha256>` of each connection.
    pub sink: std::path::PathBuf,
}

impl LinuxLab {
    /// Reads the credentials of the running Linux server lab.
    ///
    /// # Errors
    /// When the lab is not up (no `lab.env`) or the file lacks a value.
    pub fn load() -> std::io::Result<Self> {
        let state = std::env::var("LAB_STATE").unwrap_or_else(|_| "/tmp/l2sec-lab".into());
        let text = std::fs::read_to_string(format!("{state}/linux/lab.env"))?;
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("lab.env lacks {key}"),
                    )
                })
        };
        Ok(Self {
            psk: get("LX_PSK")?,
            user: get("LX_USER")?,
            password: get("LX_PASS")?,
            sink: get("LX_SINK")?.into(),
        })
    }
}
