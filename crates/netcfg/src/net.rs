//! Configuration types: prefixes, the host configuration, MTU arithmetic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::Error;

/// An IPv4 or IPv6 prefix such as `198.19.0.0/16`; host bits are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

impl IpNet {
    /// A prefix of `len` bits; host bits of `addr` are cleared.
    ///
    /// # Errors
    /// [`Error::InvalidPrefix`] when `len` exceeds 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, len: u8) -> Result<IpNet, Error> {
        let addr = match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            _ => return Err(Error::InvalidPrefix(format!("{addr}/{len}"))),
        };
        Ok(IpNet { addr, len })
    }

    /// The host prefix (`/32` or `/128`) of one address.
    #[must_use]
    pub fn host(addr: IpAddr) -> IpNet {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, len }
    }

    /// The network address.
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for an IPv4 prefix.
    #[must_use]
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True when `ip` lies inside this prefix (always false across address families).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        IpNet::new(ip, self.len).is_ok_and(|n| n.addr == self.addr)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpNet {
    type Err = Error;

    /// Parses `ADDR/LEN`, or a bare address as a host prefix.
    fn from_str(s: &str) -> Result<IpNet, Error> {
        let bad = || Error::InvalidPrefix(s.to_owned());
        match s.split_once('/') {
            Some((a, l)) => {
                let addr: IpAddr = a.parse().map_err(|_| bad())?;
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let len: u8 = l.parse().map_err(|_| bad())?;
                IpNet::new(addr, len).map_err(|_| bad())
            }
            None => Ok(IpNet::host(s.parse().map_err(|_| bad())?)),
        }
    }
}

impl serde::Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which traffic goes through the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePlan {
    /// All IPv4 traffic: a host route to the server via the original gateway, then `0.0.0.0/1`
    /// and `128.0.0.0/1` through the tunnel (the original default route stays in place).
    Full,
    /// Only these prefixes go through the tunnel (plus a host route to the server via the
    /// original gateway when one of them contains the server).
    Split(Vec<IpNet>),
    /// No routes besides the point-to-point peer.
    None,
}

/// How DNS servers are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsMode {
    /// systemd-resolved when `/etc/resolv.conf` points at its stub and it answers for our link,
    /// otherwise resolvconf when installed and `/etc/resolv.conf` is not a bind mount,
    /// otherwise `/etc/resolv.conf` itself.
    #[default]
    Auto,
    /// systemd-resolved per-link DNS (over D-Bus).
    Resolved,
    /// The `resolvconf` program.
    Resolvconf,
    /// `/etc/resolv.conf`, rewritten in place and restored byte for byte.
    File,
    /// Leave DNS alone.
    Off,
}

/// TCP MSS clamping on the tunnel (an nftables table `inet l2sec`, needs `nft`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MssClamp {
    /// When the MTU is below 1500: MSS = MTU − 40 for IPv4, MTU − 60 for IPv6.
    #[default]
    Auto,
    /// No clamping.
    Off,
    /// At any MTU: this MSS for IPv4, 20 less for IPv6 (whose header is 20 bytes longer).
    Fixed(u16),
}

impl MssClamp {
    /// The (IPv4, IPv6) MSS to clamp to on a tunnel of MTU `mtu`; `None` when nothing is clamped.
    #[must_use]
    pub fn mss(self, mtu: u16) -> Option<(u16, u16)> {
        match self {
            MssClamp::Auto if mtu < 1500 => Some((mtu.saturating_sub(40), mtu.saturating_sub(60))),
            MssClamp::Auto | MssClamp::Off => None,
            MssClamp::Fixed(v4) => Some((v4, v4.saturating_sub(20))),
        }
    }
}

/// Everything [`crate::Applied::apply`] changes on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The TUN device, which must already exist (see [`crate::Tun::create`]).
    pub ifname: String,
    /// Our IPv4 address (from IPCP).
    pub local: Ipv4Addr,
    /// The peer's IPv4 address (from IPCP).
    pub peer: Ipv4Addr,
    /// IPv6 link-local addresses from IPV6CP: (ours, peer's).
    pub prefix6: Option<(Ipv6Addr, Ipv6Addr)>,
    /// The TUN MTU (see [`mtu_for`]).
    pub mtu: u16,
    /// Public address of the VPN server: gets a host route via the original gateway.
    pub server: IpAddr,
    /// Routes through the tunnel.
    pub routes: RoutePlan,
    /// DNS servers; empty leaves DNS alone.
    pub dns: Vec<IpAddr>,
    /// DNS search domains.
    pub search: Vec<String>,
    /// How to install DNS.
    pub dns_mode: DnsMode,
    /// TCP MSS clamping through the tunnel.
    pub mss_clamp: MssClamp,
    /// Directory of restore journals (normally [`HostConfig::DEFAULT_JOURNAL_DIR`]).
    pub journal_dir: PathBuf,
}

impl HostConfig {
    /// The default TUN name.
    pub const DEFAULT_IFNAME: &'static str = "l2sec0";
    /// The default journal directory.
    pub const DEFAULT_JOURNAL_DIR: &'static str = "/run/l2sec";
}

/// Per-packet cost of the ESP suite, for [`tunnel_overhead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspOverhead {
    /// IV length (16 for AES-CBC, 8 for 3DES-CBC and AES-GCM).
    pub iv_len: usize,
    /// Cipher block size the payload is padded to (16 AES-CBC, 8 3DES, 4 for GCM).
    pub block_len: usize,
    /// Integrity check value length (12 for HMAC-SHA1-96, 16 for GCM-16, ...).
    pub icv_len: usize,
}

/// PPP header as sent: address/control (`FF 03`) and a two-byte protocol field.
const PPP_HEADER: usize = 4;
/// L2TP data header, worst case: flags, length, tunnel, session, Ns/Nr.
const L2TP_HEADER_MAX: usize = 12;
/// UDP header (L2TP over UDP 1701, and NAT-T encapsulation).
const UDP_HEADER: usize = 8;
/// ESP header: SPI and sequence number.
const ESP_HEADER: usize = 8;
/// ESP trailer: pad length and next header.
const ESP_TRAILER: usize = 2;

/// Worst-case bytes added to one inner IP packet: outer IP, NAT-T UDP, ESP (header, IV, padding,
/// trailer, ICV), UDP, L2TP and PPP.
#[must_use]
pub fn tunnel_overhead(esp: EspOverhead, nat_t: bool, outer_ipv6: bool) -> usize {
    let ip = if outer_ipv6 { 40 } else { 20 };
    let natt = if nat_t { UDP_HEADER } else { 0 };
    let pad = esp.block_len.max(1) - 1;
    ip + natt
        + ESP_HEADER
        + esp.iv_len
        + pad
        + ESP_TRAILER
        + esp.icv_len
        + UDP_HEADER
        + L2TP_HEADER_MAX
        + PPP_HEADER
}

/// The tunnel MTU for a path MTU and a per-packet overhead, kept within 576..=1500 (the IPv4
/// minimum datagram every host accepts, and the PPP default MRU).
#[must_use]
pub fn mtu_for(overhead: usize, path_mtu: u16) -> u16 {
    let m = usize::from(path_mtu).saturating_sub(overhead);
    u16::try_from(m.clamp(576, 1500)).unwrap_or(1500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mss_clamp_values() {
        // Auto: from the MTU, only below 1500.
        assert_eq!(MssClamp::Auto.mss(1400), Some((1360, 1340)));
        assert_eq!(MssClamp::Auto.mss(1500), None);
        assert_eq!(MssClamp::Off.mss(1400), None);
        // A stated value: IPv4 as given, IPv6 20 less, whatever the MTU.
        assert_eq!(MssClamp::Fixed(1360).mss(1500), Some((1360, 1340)));
        assert_eq!(MssClamp::Fixed(1200).mss(1400), Some((1200, 1180)));
        assert_eq!(MssClamp::Fixed(536).mss(9000), Some((536, 516)));
    }

    #[test]
    fn ipnet_parse_display_and_mask() {
        let n: IpNet = "198.19.1.7/16".parse().unwrap();
        assert_eq!(n.to_string(), "198.19.0.0/16");
        assert!(n.contains("198.19.255.1".parse().unwrap()));
        assert!(!n.contains("198.18.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let h: IpNet = "198.18.0.1".parse().unwrap();
        assert_eq!(h.prefix_len(), 32);
        let z: IpNet = "10.1.2.3/0".parse().unwrap();
        assert_eq!(z.to_string(), "0.0.0.0/0");
        let v6: IpNet = "2001:db8:1::5/48".parse().unwrap();
        assert_eq!(v6.to_string(), "2001:db8:1::/48");
        assert_eq!(
            "8000::/1".parse::<IpNet>().unwrap().addr(),
            "8000::".parse::<IpAddr>().unwrap()
        );
        for bad in [
            "",
            "1.2.3.4/33",
            "::/129",
            "1.2.3/8",
            "1.2.3.4/",
            "1.2.3.4/+1",
            "x/1",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipnet_serde_roundtrip() {
        let n: IpNet = "128.0.0.0/1".parse().unwrap();
        let j = serde_json::to_string(&n).unwrap();
        assert_eq!(j, "\"128.0.0.0/1\"");
        assert_eq!(serde_json::from_str::<IpNet>(&j).unwrap(), n);
    }

    #[test]
    fn overhead_aes_cbc_sha1_natt() {
        // 20 IP + 8 NAT-T + 8 ESP + 16 IV + 15 pad + 2 trailer + 12 ICV + 8 UDP + 12 L2TP + 4 PPP
        let o = EspOverhead {
            iv_len: 16,
            block_len: 16,
            icv_len: 12,
        };
        assert_eq!(tunnel_overhead(o, true, false), 105);
        assert_eq!(tunnel_overhead(o, false, true), 117);
        assert_eq!(mtu_for(105, 1500), 1395);
        // every packet of that MTU fits: ciphertext = roundup(inner + 24 + 2, 16)
        let inner = 1395usize;
        let ct = (inner + 8 + 12 + 4 + 2).div_ceil(16) * 16;
        assert!(20 + 8 + 8 + 16 + ct + 12 <= 1500);
    }

    #[test]
    fn mtu_clamps() {
        assert_eq!(mtu_for(100, 9000), 1500);
        assert_eq!(mtu_for(100, 600), 576);
        assert_eq!(mtu_for(2000, 1500), 576);
    }
}
