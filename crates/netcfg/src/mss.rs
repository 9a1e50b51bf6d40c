//! TCP MSS clamping through an nftables table of our own (`table inet l2sec`), via `nft`.

use crate::Error;
use crate::dns::{run_tool, which};

/// Our nftables table (family inet).
pub(crate) const TABLE: &str = "l2sec";

/// True when the `nft` program is installed.
pub(crate) fn available() -> bool {
    which("nft").is_some()
}

/// The nft script: replaces our table atomically with one that clamps the MSS of TCP SYNs
/// through `ifname` to `v4` (IPv4) and `v6` (IPv6): forwarded ones leaving or entering it, and
/// locally sent ones leaving it.
pub(crate) fn script(ifname: &str, v4: u16, v6: u16) -> String {
    let rules = |dir: &str| {
        [("ipv4", v4), ("ipv6", v6)]
            .map(|(proto, mss)| {
                format!(
                    "    {dir} \"{ifname}\" meta nfproto {proto} tcp flags & (syn|rst) == syn \
                     tcp option maxseg size > {mss} tcp option maxseg size set {mss}\n"
                )
            })
            .concat()
    };
    let (leaving, entering) = (rules("oifname"), rules("iifname"));
    format!(
        "add table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n  \
           chain forward {{\n    type filter hook forward priority mangle; policy accept;\n{leaving}{entering}  }}\n  \
           chain output {{\n    type filter hook output priority mangle; policy accept;\n{leaving}  }}\n\
         }}\n"
    )
}

/// Installs the table, clamping to `v4` (IPv4) and `v6` (IPv6).
pub(crate) fn install(ifname: &str, v4: u16, v6: u16) -> Result<(), Error> {
    run_tool("nft", &["-f", "-"], Some(script(ifname, v4, v6).as_bytes())).map(drop)
}

/// Deletes the table `table`; absent table or absent `nft` is not an error.
pub(crate) fn remove(table: &str) -> Result<(), Error> {
    if !available() {
        return Ok(());
    }
    // "add" first makes the delete succeed when the table is already gone.
    let s = format!("add table inet {table}\ndelete table inet {table}\n");
    run_tool("nft", &["-f", "-"], Some(s.as_bytes())).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_shape() {
        let s = script("l2sec0", 1360, 1340);
        assert!(s.starts_with("add table inet l2sec\ndelete table inet l2sec\n"));
        assert!(s.contains(
            "oifname \"l2sec0\" meta nfproto ipv4 tcp flags & (syn|rst) == syn \
             tcp option maxseg size > 1360 tcp option maxseg size set 1360"
        ));
        assert!(s.contains("iifname \"l2sec0\" meta nfproto ipv6"));
        assert!(s.contains("maxseg size set 1340"));
        assert_eq!(s.matches("hook forward").count(), 1);
        assert_eq!(s.matches("hook output").count(), 1);
        // the output chain clamps only what leaves through the tunnel
        let out = &s[s.find("chain output").unwrap()..];
        assert!(!out.contains("iifname"));
        assert_eq!(out.matches("oifname").count(), 2);
    }

    /// The nft script: replaces our table atomically with one that clamps the MSS of TCP SYNs
    /// leaving or entering `ifname` (forwarded and locally sent) to fit `mtu`.
    #[test]
    fn script_for_a_stated_mss() {
        // `mss_clamp = 1360`: IPv4 1360, IPv6 1340, even on a 1500-byte MTU.
        let (v4, v6) = crate::MssClamp::Fixed(1360).mss(1500).unwrap();
        assert_eq!(
            script("l2sec0", v4, v6),
            r#"add table inet l2sec
delete table inet l2sec
table inet l2sec {
  chain forward {
    type filter hook forward priority mangle; policy accept;
    oifname "l2sec0" meta nfproto ipv4 tcp flags & (syn|rst) == syn tcp option maxseg size > 1360 tcp option maxseg size set 1360
    oifname "l2sec0" meta nfproto ipv6 tcp flags & (syn|rst) == syn tcp option maxseg size > 1340 tcp option maxseg size set 1340
    iifname "l2sec0" meta nfproto ipv4 tcp flags & (syn|rst) == syn tcp option maxseg size > 1360 tcp option maxseg size set 1360
    iifname "l2sec0" meta nfproto ipv6 tcp flags & (syn|rst) == syn tcp option maxseg size > 1340 tcp option maxseg size set 1340
  }
  chain output {
    type filter hook output priority mangle; policy accept;
    oifname "l2sec0" meta nfproto ipv4 tcp flags & (syn|rst) == syn tcp option maxseg size > 1360 tcp option maxseg size set 1360
    oifname "l2sec0" meta nfproto ipv6 tcp flags & (syn|rst) == syn tcp option maxseg size > 1340 tcp option maxseg size set 1340
  }
}
"#
        );
    }
}
