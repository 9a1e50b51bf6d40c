//! The crate's error type.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

/// Everything that can go wrong while changing or restoring the host configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operation needs `CAP_NET_ADMIN`.
    #[error("{what} needs CAP_NET_ADMIN: run l2sec as root or grant it the capability")]
    Permission {
        /// What was attempted.
        what: String,
    },
    /// No network interface of that name (or index) exists.
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    /// An interface name that Linux does not accept.
    #[error("invalid interface name {0:?} (1 to 15 bytes, no '/', ':' or whitespace)")]
    InvalidName(String),
    /// A netlink request failed.
    #[error("netlink: {op}: {source}")]
    Netlink {
        /// The request, e.g. `add route 0.0.0.0/1`.
        op: String,
        /// The errno the kernel answered.
        source: io::Error,
    },
    /// The kernel answered something that could not be decoded.
    #[error("netlink: malformed reply to {0}")]
    Protocol(String),
    /// A local I/O operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The restore journal could not be read or written.
    #[error("restore journal {path}: {msg}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// The kernel has no route to the VPN server outside the tunnel.
    #[error("no route to the vpn server {0} outside the tunnel")]
    NoRouteToServer(IpAddr),
    /// Another live l2sec process owns the interface's journal.
    #[error("interface {ifname} is configured by another l2sec process (pid {pid})")]
    Busy {
        /// The interface.
        ifname: String,
        /// The process holding it.
        pid: u32,
    },
    /// A helper (`nft`, `resolvconf`, or systemd-resolved over D-Bus) failed.
    #[error("{tool} failed: {msg}")]
    Command {
        /// The program.
        tool: &'static str,
        /// Its exit status and standard error.
        msg: String,
    },
    /// A prefix such as `198.19.0.0/16` could not be parsed.
    #[error("invalid prefix {0:?}")]
    InvalidPrefix(String),
    /// The configuration asks for something impossible.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Some undo steps failed; they stay in the journal for `l2sec cleanup`.
    #[error("restore incomplete: {failed} step(s) failed, first: {first}")]
    RestoreIncomplete {
        /// How many steps failed.
        failed: usize,
        /// The first failure.
        first: String,
    },
}

impl Error {
    /// Maps an error of a netlink request: `EPERM` (the kernel's answer without
    /// `CAP_NET_ADMIN`) becomes [`Error::Permission`].
    pub(crate) fn netlink(op: impl Into<String>, source: io::Error) -> Error {
        let op = op.into();
        match source.raw_os_error() {
            Some(libc::EPERM) => Error::Permission { what: op },
            _ => Error::Netlink { op, source },
        }
    }

    /// A local I/O error with context.
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            op: op.into(),
            source,
        }
    }
}
