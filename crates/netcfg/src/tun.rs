//! The TUN device.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::Error;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags in the union.
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    pad: [u8; 22],
}

/// True when Linux accepts `name` as an interface name.
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// A TUN device (`IFF_TUN | IFF_NO_PI`, non-blocking): one IP packet per read or write.
///
/// The device exists as long as this value lives (it is not persistent).
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name` through `/dev/net/tun`.
    ///
    /// # Errors
    /// [`Error::Permission`] without `CAP_NET_ADMIN`, [`Error::InvalidName`], or
    /// [`Error::Io`] when `/dev/net/tun` is missing (no `tun` module) or busy.
    pub fn create(name: &str) -> Result<Tun, Error> {
        if !valid_ifname(name) {
            return Err(Error::InvalidName(name.to_owned()));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => Error::Permission {
                    what: "opening /dev/net/tun".into(),
                },
                _ => Error::io("opening /dev/net/tun (is the tun module loaded?)", e),
            })?;
        let mut req = IfReqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: `file` is an open /dev/net/tun descriptor and `req` is a live, properly
        // initialised `struct ifreq`-compatible buffer (40 bytes) that TUNSETIFF reads and
        // writes back within its bounds.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETIFF,
                std::ptr::addr_of_mut!(req),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => Error::Permission {
                    what: format!("creating TUN device {name}"),
                },
                _ => Error::io(format!("creating TUN device {name}"), e),
            });
        }
        let len = req
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(req.name.len());
        let name = String::from_utf8_lossy(&req.name[..len]).into_owned();
        Ok(Tun { file, name })
    }

    /// The interface name the kernel gave the device.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one IP packet; `WouldBlock` when none is queued.
    ///
    /// # Errors
    /// Any I/O error of the descriptor.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one IP packet.
    ///
    /// # Errors
    /// Any I/O error of the descriptor (`WouldBlock` when the queue is full).
    pub fn write(&self, pkt: &[u8]) -> io::Result<usize> {
        (&self.file).write(pkt)
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        assert!(valid_ifname("l2sec0"));
        assert!(valid_ifname("a23456789012345"));
        assert!(!valid_ifname("a234567890123456"));
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "tab\t"] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn invalid_name_is_rejected_before_any_syscall() {
        assert!(matches!(
            Tun::create("no/slash"),
            Err(Error::InvalidName(_))
        ));
    }
}
