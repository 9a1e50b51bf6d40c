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
/// leaving or entering `ifname` (forwarded and locally sent) to fit `mtu`.
pub(crate) fn script(ifname: &str, mtu: u16) -> String {
    let v4 = mtu.saturating_sub(40);
    let v6 = mtu.saturating_sub(60);
    let mut rules = String::new();
    for dir in ["oifname", "iifname"] {
        for (proto, mss) in [("ipv4", v4), ("ipv6", v6)] {
            rules.push_str(&format!(
                "    {dir} \"{ifname}\" meta nfproto {proto} tcp flags & (syn|rst) == syn \
                 tcp option maxseg size > {mss} tcp option maxseg size set {mss}\n"
            ));
        }
    }
    let out: String =
        rules
            .lines()
            .filter(|l| l.contains("oifname"))
            .fold(String::new(), |mut acc, l| {
                acc.push_str(l);
                acc.push('\n');
                acc
            });
    format!(
        "add table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n  \
           chain forward {{\n    type filter hook forward priority mangle; policy accept;\n{rules}  }}\n  \
           chain output {{\n    type filter hook output priority mangle; policy accept;\n{out}  }}\n\
         }}\n"
    )
}

/// Installs the table.
pub(crate) fn install(ifname: &str, mtu: u16) -> Result<(), Error> {
    run_tool("nft", &["-f", "-"], Some(script(ifname, mtu).as_bytes())).map(drop)
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
        let s = script("l2sec0", 1400);
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
}
