//! Every change l2sec makes to the host, and the way back.
//!
//! - [`Tun`] creates the TUN device (`IFF_TUN | IFF_NO_PI`, non-blocking).
//! - [`Applied::apply`] configures it from a [`HostConfig`]: MTU, point-to-point addresses, link up,
//!   routes (full tunnel with a host route to the server and two `/1` routes, or split), DNS
//!   (systemd-resolved, resolvconf or `/etc/resolv.conf` written in place) and TCP MSS clamping
//!   (an nftables table `inet l2sec`).
//! - A restore journal (JSON, fsynced) is written *before* every change; [`Applied::restore`],
//!   the guard's `Drop`, or [`cleanup`] after a crash undo the changes in reverse order.
//!
//! Everything is synchronous and talks rtnetlink directly, and to systemd-resolved over D-Bus;
//! the only subprocesses are `nft` and `resolvconf`. Only `CAP_NET_ADMIN` is needed; without it the errors say so.
//! Works inside a network namespace.

mod apply;
mod dns;
mod error;
mod journal;
mod mss;
mod net;
mod nl;
#[allow(unsafe_code)]
// TUNSETIFF/TUNSETOFFLOAD ioctls and vnet-header reads and writes; each use has a SAFETY comment.
mod tun;

#[cfg(test)]
mod nstest;

pub use apply::{Applied, RestoreReport, cleanup, has_leftover, path_mtu};
pub use dns::DnsBackend;
pub use error::Error;
pub use net::{
    DnsMode, EspOverhead, HostConfig, IpNet, MssClamp, RoutePlan, mtu_for, tunnel_overhead,
};
pub use tun::Tun;
