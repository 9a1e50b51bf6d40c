//! The TUN device.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
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
/// Where the kernel has it (always, since Linux 2.6.27), the device is opened with
/// `IFF_VNET_HDR`: each packet crosses the descriptor behind a `struct virtio_net_hdr`
/// ([`Tun::VNET_HDR_LEN`] bytes) that [`Tun::read`] and [`Tun::write`] strip and add. That is
/// what lets [`Tun::enable_offload`] hand the reader TCP super-packets of up to 64 KiB.
///
/// The device exists as long as this value lives (it is not persistent).
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    vnet: bool,
}

/// `TUN_F_*` offloads the reader takes over: checksums and TCP segmentation (IPv4, IPv6).
const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

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
            flags: 0,
            pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        let mut rc = -1;
        let mut vnet = false;
        for flags in [
            libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR,
            libc::IFF_TUN | libc::IFF_NO_PI,
        ] {
            req.flags = flags as libc::c_short;
            // SAFETY: `file` is an open /dev/net/tun descriptor and `req` is a live, properly
            // initialised `struct ifreq`-compatible buffer (40 bytes) that TUNSETIFF reads and
            // writes back within its bounds.
            rc = unsafe {
                libc::ioctl(
                    file.as_raw_fd(),
                    libc::TUNSETIFF,
                    std::ptr::addr_of_mut!(req),
                )
            };
            vnet = flags & libc::IFF_VNET_HDR != 0;
            // Only a kernel without IFF_VNET_HDR answers EINVAL to it; other errors stand.
            if rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                break;
            }
        }
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
        Ok(Tun { file, name, vnet })
    }

    /// Length of the `struct virtio_net_hdr` in front of each packet (see [`Tun::read_vnet`]).
    pub const VNET_HDR_LEN: usize = 10;

    /// True when packets cross the descriptor behind a virtio-net header (`IFF_VNET_HDR`), the
    /// condition for [`Tun::enable_offload`].
    #[must_use]
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet
    }

    /// Lets the kernel hand this device TCP packets of up to 64 KiB (TSO, IPv4 and IPv6) and
    /// packets whose checksum is left to compute (`TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`): the
    /// local TCP stack then segments nothing and the reader reads one packet where it read
    /// dozens. From then on, read with [`Tun::read_vnet`] and finish each packet as its
    /// virtio-net header says (segment it, complete its checksum).
    ///
    /// # Errors
    /// `Unsupported` without a virtio-net header; the ioctl's error otherwise.
    pub fn enable_offload(&self) -> io::Result<()> {
        if !self.vnet {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TUN device without IFF_VNET_HDR",
            ));
        }
        // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned long of TUN_F_*
        // flags) on an open /dev/net/tun descriptor attached to a device; no memory is passed.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(OFFLOADS),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads one packet into `buf` and its virtio-net header into `hdr` (all zero without
    /// `IFF_VNET_HDR`). Returns the packet's length, which exceeds `buf.len()` when it did not
    /// fit (the rest is lost). The header's layout is `struct virtio_net_hdr` in native byte
    /// order: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
    ///
    /// # Errors
    /// Any I/O error of the descriptor (`WouldBlock` when none is queued).
    pub fn read_vnet(
        &self,
        hdr: &mut [u8; Self::VNET_HDR_LEN],
        buf: &mut [u8],
    ) -> io::Result<usize> {
        if !self.vnet {
            *hdr = [0; Self::VNET_HDR_LEN];
            return (&self.file).read(buf);
        }
        let n = (&self.file).read_vectored(&mut [IoSliceMut::new(hdr), IoSliceMut::new(buf)])?;
        n.checked_sub(Self::VNET_HDR_LEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "short TUN read"))
    }

    /// Reads one IP packet; `WouldBlock` when none is queued. Returns its length, which
    /// exceeds `buf.len()` when it did not fit (the rest is lost). After
    /// [`Tun::enable_offload`], use [`Tun::read_vnet`]: this drops what the header says.
    ///
    /// # Errors
    /// Any I/O error of the descriptor.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut hdr = [0; Self::VNET_HDR_LEN];
        self.read_vnet(&mut hdr, buf)
    }

    /// Writes one IP packet (behind an all-zero virtio-net header when the device has one:
    /// no offload, the kernel checks the checksums).
    ///
    /// # Errors
    /// Any I/O error of the descriptor (`WouldBlock` when the queue is full).
    pub fn write(&self, pkt: &[u8]) -> io::Result<usize> {
        if !self.vnet {
            return (&self.file).write(pkt);
        }
        self.write_vnet(&[0; Self::VNET_HDR_LEN], pkt)
    }

    /// Writes one packet behind the virtio-net header `hdr` (layout as in [`Tun::read_vnet`]),
    /// e.g. a TCP super-packet of coalesced segments (`VIRTIO_NET_HDR_GSO_TCPV4`/`TCPV6` with
    /// its segment size, checksum left partial) that the local stack takes in one piece.
    /// Returns the packet bytes written.
    ///
    /// # Errors
    /// `Unsupported` without a virtio-net header; any I/O error of the descriptor
    /// (`WouldBlock` when the queue is full, `EINVAL` for a header the kernel refuses).
    pub fn write_vnet(&self, hdr: &[u8; Self::VNET_HDR_LEN], pkt: &[u8]) -> io::Result<usize> {
        if !self.vnet {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TUN device without IFF_VNET_HDR",
            ));
        }
        let n = (&self.file).write_vectored(&[IoSlice::new(hdr), IoSlice::new(pkt)])?;
        Ok(n.saturating_sub(Self::VNET_HDR_LEN))
    }

    /// The interface name the kernel gave the device.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
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
