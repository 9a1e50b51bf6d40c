//! Batched datagram I/O for the data path: many datagrams per system call, no allocation per
//! packet.
//!
//! - [`TxBatch`] holds the datagrams sealed during one drain of the TUN device in preallocated
//!   slots and sends them, in order, with one `sendmmsg(2)`. On a UDP socket where the kernel
//!   supports UDP GSO (`UDP_SEGMENT`, Linux 4.18), each run of same-size datagrams goes out as
//!   one message that the kernel splits: one trip through the stack instead of one a datagram.
//! - [`RxBatch`] receives up to [`CAP`] datagrams with one `recvmmsg(2)` into preallocated
//!   slots.
//!
//! Errors follow the single-datagram path that came before: a full socket buffer (`EAGAIN`)
//! drops what is left of the batch, as a router would (TCP and L2TP recover). Any other error
//! is retried once (it may be a pending ECONNREFUSED left by an ICMP message, which the failed
//! call reported and cleared), then drops the datagram (or GSO run) it concerns; the rest
//! still goes out, in order. A kernel or device that refuses GSO gets single datagrams.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};

use tokio::io::Interest;

/// Datagrams per batch, and so per system call.
pub(super) const CAP: usize = 64;

/// Segments in one GSO message (the kernel's `UDP_MAX_SEGMENTS`: 64 since Linux 4.18).
const GSO_MAX_SEGMENTS: usize = 64;
/// UDP payload bytes in one GSO message: what fits one IP datagram (IPv6 header, the larger).
const GSO_MAX_BYTES: usize = 65535 - 40 - 8;

/// One message of a `sendmmsg` call: `count` queued datagrams from index `first`, sent as one
/// GSO message of `segment`-byte segments when `count > 1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct OutMsg {
    first: usize,
    count: usize,
    segment: u16,
}

/// A socket the batches can use. The async runtime's sockets run each call under their
/// readiness tracking (a `WouldBlock` clears the readiness, so the next wait is real).
pub(super) trait BatchFd {
    /// One non-blocking `sendmmsg`: message `m` of `msgs` gathers the datagrams
    /// `queued[m.first..m.first + m.count]` (ranges of `buf`); returns how many messages went.
    fn send_mmsg(
        &self,
        buf: &[u8],
        queued: &[Range<usize>],
        msgs: &[OutMsg],
        dest: Option<SocketAddr>,
    ) -> io::Result<usize>;

    /// One non-blocking `recvmmsg` into the `slot_len`-byte slots of `buf` (see
    /// [`RxBatch::recv`]).
    fn recv_mmsg(
        &self,
        buf: &mut [u8],
        slot_len: usize,
        meta: &mut RxMeta,
        from: bool,
    ) -> io::Result<usize>;
}

/// A descriptor the batches can make system calls on: `io` runs one non-blocking call under
/// the descriptor's readiness tracking, where it has one.
pub(super) trait ReadyFd {
    /// Runs `call` on the descriptor (`interest`: what the call waits for).
    fn io<R>(
        &self,
        interest: Interest,
        call: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R>;
}

impl ReadyFd for tokio::net::UdpSocket {
    fn io<R>(
        &self,
        interest: Interest,
        call: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.try_io(interest, || call(self.as_fd()))
    }
}

impl ReadyFd for tokio::io::unix::AsyncFd<socket2::Socket> {
    fn io<R>(
        &self,
        interest: Interest,
        call: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        self.try_io(interest, |s| call(s.as_fd()))
    }
}

#[cfg(test)]
impl ReadyFd for std::net::UdpSocket {
    fn io<R>(
        &self,
        _interest: Interest,
        call: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        call(self.as_fd())
    }
}

impl<T: ReadyFd> BatchFd for T {
    fn send_mmsg(
        &self,
        buf: &[u8],
        queued: &[Range<usize>],
        msgs: &[OutMsg],
        dest: Option<SocketAddr>,
    ) -> io::Result<usize> {
        self.io(Interest::WRITABLE, |fd| {
            sys::sendmmsg(fd, buf, queued, msgs, dest)
        })
    }

    fn recv_mmsg(
        &self,
        buf: &mut [u8],
        slot_len: usize,
        meta: &mut RxMeta,
        from: bool,
    ) -> io::Result<usize> {
        self.io(Interest::READABLE, |fd| {
            sys::recvmmsg(fd, buf, slot_len, meta, from)
        })
    }
}

/// What one [`TxBatch::send`] did.
#[derive(Debug, Default)]
pub(super) struct Sent {
    /// Datagrams handed to the kernel.
    pub(super) sent: usize,
    /// Datagrams dropped because the socket buffer was full.
    pub(super) full: usize,
    /// Datagrams dropped because of another error (after one retry).
    pub(super) failed: usize,
    /// The last error other than a full buffer.
    pub(super) error: Option<io::Error>,
    /// Set when the kernel refused GSO for good on this socket (the caller turns it off).
    pub(super) gso_refused: Option<io::Error>,
    /// System calls made.
    pub(super) calls: usize,
}

/// Datagrams waiting to be sent, each built in place in its own preallocated slot.
pub(super) struct TxBatch {
    buf: Vec<u8>,
    slot_len: usize,
    /// Absolute ranges in `buf` of the queued datagrams, in sending order.
    queued: Vec<Range<usize>>,
}

impl TxBatch {
    /// A batch of [`CAP`] slots of `slot_len` bytes each.
    pub(super) fn new(slot_len: usize) -> TxBatch {
        TxBatch {
            buf: vec![0; CAP * slot_len],
            slot_len,
            queued: Vec::with_capacity(CAP),
        }
    }

    /// Bytes in each slot.
    pub(super) fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Queued datagrams.
    pub(super) fn len(&self) -> usize {
        self.queued.len()
    }

    /// True when no slot is free: send before building another datagram.
    pub(super) fn is_full(&self) -> bool {
        self.queued.len() == CAP
    }

    /// The free slot the next datagram is built in.
    ///
    /// # Panics
    /// When the batch is full.
    pub(super) fn next_slot(&mut self) -> &mut [u8] {
        assert!(!self.is_full(), "TxBatch::next_slot on a full batch");
        let start = self.queued.len() * self.slot_len;
        &mut self.buf[start..start + self.slot_len]
    }

    /// The queued datagrams, in order: each one's bytes and its range (absolute in the batch),
    /// which the caller may shorten after rewriting the bytes in place (sealing).
    pub(super) fn queued_mut(
        &mut self,
    ) -> impl Iterator<Item = (&mut [u8], &mut Range<usize>)> + '_ {
        let slot_len = self.slot_len;
        self.buf
            .chunks_exact_mut(slot_len)
            .zip(self.queued.iter_mut())
            .enumerate()
            .map(move |(k, (slot, r))| {
                let base = k * slot_len;
                (&mut slot[r.start - base..r.end - base], r)
            })
    }

    /// Drops what is queued.
    pub(super) fn clear(&mut self) {
        self.queued.clear();
    }

    /// Queues bytes `range` of the slot last returned by [`TxBatch::next_slot`].
    pub(super) fn push(&mut self, range: Range<usize>) {
        assert!(!self.is_full() && range.start <= range.end && range.end <= self.slot_len);
        let base = self.queued.len() * self.slot_len;
        self.queued.push(base + range.start..base + range.end);
    }

    /// Sends the queued datagrams in order over `sock` (to `dest` when it is not connected)
    /// and empties the batch. With `gso`, runs of same-size datagrams go out as GSO messages.
    pub(super) fn send(
        &mut self,
        sock: &impl BatchFd,
        dest: Option<SocketAddr>,
        gso: bool,
    ) -> Sent {
        let mut out = Sent::default();
        let mut gso = gso;
        let n = self.queued.len();
        let mut i = 0;
        // After EINVAL/EMSGSIZE on a GSO message, its datagrams (those before this index) are
        // retried one by one.
        let mut split_until = 0;
        // Another error is retried once: it may be a pending one (ECONNREFUSED from an earlier
        // ICMP message) that the failed call reported and cleared.
        let mut retried = false;
        while i < n {
            let mut msgs = [OutMsg::default(); CAP];
            let mut nm = 0;
            let mut j = i;
            while j < n {
                let count = if gso && j >= split_until {
                    gso_run(&self.queued[j..])
                } else {
                    1
                };
                let segment = u16::try_from(self.queued[j].len()).unwrap_or(u16::MAX);
                msgs[nm] = OutMsg {
                    first: j,
                    count,
                    segment,
                };
                nm += 1;
                j += count;
            }
            let msgs = &msgs[..nm];
            out.calls += 1;
            let r = sock.send_mmsg(&self.buf, &self.queued, msgs, dest);
            match r {
                Ok(k) if k > 0 => {
                    let done = &msgs[..k.min(nm)];
                    let last = done[done.len() - 1];
                    out.sent += done.iter().map(|m| m.count).sum::<usize>();
                    i = last.first + last.count;
                    retried = false;
                }
                Ok(_) => {
                    // sendmmsg never sends nothing without an error; do not spin if it does.
                    out.failed += n - i;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    out.full += n - i;
                    break;
                }
                Err(e) => {
                    let m = msgs[0];
                    if m.count > 1 {
                        match e.raw_os_error() {
                            // No checksum offload on the route's device, or no GSO at all.
                            Some(libc::EIO | libc::EOPNOTSUPP | libc::ENOPROTOOPT) => {
                                gso = false;
                                out.gso_refused = Some(e);
                                continue;
                            }
                            // Segment larger than the path MTU allows, or too many segments.
                            Some(libc::EINVAL | libc::EMSGSIZE) => {
                                split_until = m.first + m.count;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    if !retried {
                        retried = true;
                        continue;
                    }
                    out.failed += m.count;
                    out.error = Some(e);
                    i = m.first + m.count;
                    retried = false;
                }
            }
        }
        self.queued.clear();
        out
    }
}

/// How many of `queued` (at least one) go out as one GSO message: same-size datagrams, the
/// last one possibly shorter, within the kernel's limits.
fn gso_run(queued: &[Range<usize>]) -> usize {
    let segment = queued[0].len();
    let mut count = 1;
    let mut total = segment;
    for r in &queued[1..] {
        let len = r.len();
        if count == GSO_MAX_SEGMENTS || len > segment || total + len > GSO_MAX_BYTES {
            break;
        }
        count += 1;
        total += len;
        if len < segment {
            break;
        }
    }
    count
}

/// What `recvmmsg` reported for each message of a batch.
#[derive(Debug, Clone)]
pub(super) struct RxMeta {
    /// Bytes received (0 for a message that did not fit its slot).
    lens: [usize; CAP],
    /// Segment size of a message the kernel coalesced from several datagrams (UDP GRO), else 0.
    segs: [usize; CAP],
    /// Sender of each message, when asked for.
    from: [Option<SocketAddr>; CAP],
}

impl Default for RxMeta {
    fn default() -> RxMeta {
        RxMeta {
            lens: [0; CAP],
            segs: [0; CAP],
            from: [None; CAP],
        }
    }
}

/// Datagrams received by one `recvmmsg`, each message in its own preallocated slot. On a
/// socket with UDP GRO on (see [`enable_gro`]) one message may hold a run of datagrams from
/// the same sender, all of one size but the last; [`RxBatch::for_each`] splits them again.
pub(super) struct RxBatch {
    buf: Vec<u8>,
    slot_len: usize,
    meta: RxMeta,
    n: usize,
}

impl Default for RxBatch {
    /// An empty placeholder without slots (no allocation); [`RxBatch::new`] makes a usable one.
    fn default() -> RxBatch {
        RxBatch {
            buf: Vec::new(),
            slot_len: 0,
            meta: RxMeta::default(),
            n: 0,
        }
    }
}

impl RxBatch {
    /// A batch of `slots` (at most [`CAP`]) slots of `slot_len` bytes each. Memory the kernel
    /// never writes is never touched: large slots cost address space, not resident memory.
    pub(super) fn new(slot_len: usize, slots: usize) -> RxBatch {
        RxBatch {
            buf: vec![0; slots.min(CAP) * slot_len],
            slot_len,
            ..RxBatch::default()
        }
    }

    /// True for the placeholder of [`RxBatch::default`].
    pub(super) fn is_placeholder(&self) -> bool {
        self.slot_len == 0
    }

    /// Receives up to one message a slot; returns how many (at least one) or the error of the
    /// first (`WouldBlock` when none is queued). With `from`, records each sender. A message
    /// longer than a slot is dropped.
    pub(super) fn recv(&mut self, sock: &impl BatchFd, from: bool) -> io::Result<usize> {
        self.n = 0;
        let r = sock.recv_mmsg(&mut self.buf, self.slot_len, &mut self.meta, from)?;
        self.n = r;
        Ok(r)
    }

    /// Calls `f` on each datagram of the last [`RxBatch::recv`], in order, with its sender;
    /// stops at the first error. A dropped (truncated) message yields nothing.
    pub(super) fn for_each<E>(
        &mut self,
        mut f: impl FnMut(&mut [u8], Option<SocketAddr>) -> Result<(), E>,
    ) -> Result<(), E> {
        for (i, slot) in self
            .buf
            .chunks_exact_mut(self.slot_len)
            .take(self.n)
            .enumerate()
        {
            let msg = &mut slot[..self.meta.lens[i]];
            let from = self.meta.from[i];
            match self.meta.segs[i] {
                0 => {
                    if !msg.is_empty() {
                        f(msg, from)?;
                    }
                }
                seg => {
                    for d in msg.chunks_mut(seg) {
                        f(d, from)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The system calls, with the only unsafe code of the data path.
// The batch calls are FFI: recvmmsg/sendmmsg take arrays of C structures holding raw pointers
// into our buffers. unsafe_code is allowed in this module only, and every block says why it
// is sound.
#[allow(unsafe_code)]
mod sys {
    use std::io;
    use std::mem::{MaybeUninit, size_of};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::ops::Range;
    use std::os::fd::{AsRawFd, BorrowedFd};

    use super::{CAP, OutMsg, RxMeta};

    /// Room for one `cmsghdr` carrying a `u16` (`CMSG_SPACE(2)` is 24 on 64-bit Linux), aligned
    /// for `cmsghdr`.
    #[repr(C, align(8))]
    #[derive(Clone, Copy)]
    struct CmsgBuf([u8; 32]);

    /// `struct sockaddr_storage` as the kernel fills it, zeroed.
    fn zeroed_storage() -> libc::sockaddr_storage {
        // SAFETY: sockaddr_storage is plain old data (integers and byte arrays); all-zero is a
        // valid value (family AF_UNSPEC).
        unsafe { MaybeUninit::<libc::sockaddr_storage>::zeroed().assume_init() }
    }

    /// An all-zero `mmsghdr`: null pointers and zero lengths, filled in by the callers.
    fn zeroed_mmsghdr() -> libc::mmsghdr {
        // SAFETY: mmsghdr is a C struct of integers and raw pointers; all-zero (null pointers,
        // zero lengths) is a valid value.
        unsafe { MaybeUninit::<libc::mmsghdr>::zeroed().assume_init() }
    }

    /// Reads the socket address the kernel wrote into `st` (`len` bytes).
    fn read_sockaddr(st: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        match i32::from(st.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, which is smaller
                // than sockaddr_storage and no more aligned; the kernel wrote `len` bytes.
                let sin = unsafe { &*std::ptr::from_ref(st).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    u32::from_be(sin.sin_addr.s_addr).into(),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*std::ptr::from_ref(st).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    sin6.sin6_addr.s6_addr.into(),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// One `sendmmsg(2)` of `msgs` (at most [`CAP`]); each message gathers its datagrams'
    /// ranges of `buf` (taken from `queued`) and, when it has more than one, carries a
    /// `UDP_SEGMENT` control message. Returns the number of messages sent.
    pub(super) fn sendmmsg(
        fd: BorrowedFd<'_>,
        buf: &[u8],
        queued: &[Range<usize>],
        msgs: &[OutMsg],
        dest: Option<SocketAddr>,
    ) -> io::Result<usize> {
        assert!(msgs.len() <= CAP && queued.len() <= CAP);
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; CAP];
        for (v, r) in iov.iter_mut().zip(queued) {
            let part = &buf[r.clone()]; // bounds-checked: every iovec lies inside `buf`
            v.iov_base = part.as_ptr().cast_mut().cast();
            v.iov_len = part.len();
        }
        let name = dest.map(socket2::SockAddr::from);
        let mut cmsgs = [CmsgBuf([0; 32]); CAP];
        let mut hdrs = [zeroed_mmsghdr(); CAP];
        for ((h, m), c) in hdrs.iter_mut().zip(msgs).zip(cmsgs.iter_mut()) {
            assert!(m.count >= 1 && m.first + m.count <= queued.len());
            let h = &mut h.msg_hdr;
            h.msg_iov = iov[m.first..].as_mut_ptr();
            h.msg_iovlen = m.count as _;
            if let Some(name) = &name {
                // The kernel only reads the name of a message it sends.
                h.msg_name = name.as_ptr().cast_mut().cast();
                h.msg_namelen = name.len();
            }
            if m.count > 1 {
                // SAFETY: CMSG_SPACE is a pure computation.
                let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
                assert!(space <= c.0.len());
                h.msg_control = c.0.as_mut_ptr().cast();
                h.msg_controllen = space as _;
                // SAFETY: `h` describes a control buffer of `space` bytes (live, aligned for
                // cmsghdr), so CMSG_FIRSTHDR returns a pointer to its start, with room for
                // a cmsghdr and CMSG_LEN(2) bytes; CMSG_DATA points inside it. The data is
                // written unaligned.
                unsafe {
                    let cm = libc::CMSG_FIRSTHDR(h);
                    (*cm).cmsg_level = libc::SOL_UDP;
                    (*cm).cmsg_type = libc::UDP_SEGMENT;
                    (*cm).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<u16>(), m.segment);
                }
            }
        }
        // SAFETY: `hdrs[..msgs.len()]` are initialised mmsghdrs whose iovecs point into `buf`
        // (borrowed for this call, only read by the kernel), whose names point at `name` (a
        // socket address of the length given, only read) and whose control buffers point into
        // `cmsgs`; all live on this stack frame until the call returns. The kernel writes only
        // `msg_len` of each header.
        let rc = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                msgs.len() as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }

    /// One `recvmmsg(2)` of up to [`CAP`] messages into consecutive `slot_len`-byte slots of
    /// `buf`; records in `meta` each length (0 for a truncated message), each GRO segment size
    /// and, with `from`, each sender. Returns the number of messages.
    pub(super) fn recvmmsg(
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        slot_len: usize,
        meta: &mut RxMeta,
        from: bool,
    ) -> io::Result<usize> {
        let slots = (buf.len() / slot_len.max(1)).min(CAP);
        if slots == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no receive slots",
            ));
        }
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; CAP];
        for (v, chunk) in iov.iter_mut().zip(buf.chunks_exact_mut(slot_len)) {
            v.iov_base = chunk.as_mut_ptr().cast();
            v.iov_len = chunk.len();
        }
        let mut names = [zeroed_storage(); CAP];
        let mut cmsgs = [CmsgBuf([0; 32]); CAP];
        let mut hdrs = [zeroed_mmsghdr(); CAP];
        for (((h, v), name), c) in hdrs
            .iter_mut()
            .zip(iov.iter_mut())
            .zip(names.iter_mut())
            .zip(cmsgs.iter_mut())
        {
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = c.0.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = c.0.len() as _;
            if from {
                h.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as _;
            }
        }
        // SAFETY: `hdrs[..slots]` are initialised mmsghdrs, each with one iovec covering its
        // own `slot_len` bytes of `buf` (exclusively borrowed for this call), a control buffer
        // in `cmsgs` and, when senders are wanted, a name buffer in `names`, each of the size
        // given; everything lives on this frame or in `buf` until the call returns. A null
        // timeout is allowed.
        let rc = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                slots as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = rc as usize;
        for (k, h) in hdrs[..n].iter().enumerate() {
            let truncated = h.msg_hdr.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
            meta.lens[k] = if truncated {
                0
            } else {
                (h.msg_len as usize).min(slot_len)
            };
            meta.segs[k] = gro_segment(&h.msg_hdr);
            meta.from[k] = if from {
                read_sockaddr(&names[k], h.msg_hdr.msg_namelen)
            } else {
                None
            };
        }
        Ok(n)
    }

    /// The segment size of a `UDP_GRO` control message in `h`, or 0 without one.
    fn gro_segment(h: &libc::msghdr) -> usize {
        if h.msg_control.is_null() {
            return 0;
        }
        // SAFETY: `h` is a msghdr the kernel filled: its control buffer (live, aligned for
        // cmsghdr) holds `msg_controllen` bytes of well-formed control messages, which
        // CMSG_FIRSTHDR (null when too short for one header) and CMSG_NXTHDR walk within
        // those bounds; a UDP_GRO message carries an int, read unaligned.
        unsafe {
            let mut cm = libc::CMSG_FIRSTHDR(h);
            while !cm.is_null() {
                if (*cm).cmsg_level == libc::SOL_UDP
                    && (*cm).cmsg_type == libc::UDP_GRO
                    && (*cm).cmsg_len as usize
                        >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
                {
                    let seg = std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast::<libc::c_int>());
                    return usize::try_from(seg).unwrap_or(0);
                }
                cm = libc::CMSG_NXTHDR(h, cm);
            }
        }
        0
    }

    /// Sets `SO_RCVBUFFORCE` and `SO_SNDBUFFORCE` (past `net.core.rmem_max`/`wmem_max`;
    /// needs CAP_NET_ADMIN) to `bytes`; false if the kernel refuses either.
    pub(super) fn force_buffers(fd: BorrowedFd<'_>, bytes: libc::c_int) -> bool {
        [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE]
            .into_iter()
            .all(|opt| {
                // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `bytes`, a live c_int.
                let rc = unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_SOCKET,
                        opt,
                        std::ptr::from_ref(&bytes).cast(),
                        size_of::<libc::c_int>() as libc::socklen_t,
                    )
                };
                rc == 0
            })
    }

    /// Turns UDP GRO (`UDP_GRO`, Linux 5.0) on; false if the kernel refuses it.
    pub(super) fn enable_gro(fd: BorrowedFd<'_>) -> bool {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `one`, a live c_int.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_GRO,
                std::ptr::from_ref(&one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    /// True when the kernel knows UDP GSO (`UDP_SEGMENT`) on this socket.
    pub(super) fn gso_supported(fd: BorrowedFd<'_>) -> bool {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`, a live c_int, and updates
        // `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_SEGMENT,
                std::ptr::from_mut(&mut v).cast(),
                &mut len,
            )
        };
        rc == 0
    }
}

/// The receive and send buffers of the data sockets: about 30 ms at 1 Gbit/s. With the
/// kernel's default (208 KiB) a burst from the server overflowed the receive buffer while the
/// engine was writing to the TUN device (up to 2,000 drops in a 256 MiB download in the lab,
/// each a TCP retransmission and out-of-order work for the application's stack).
pub(super) const SOCKET_BUFFER: usize = 4 << 20;

/// Sets a data socket's receive and send buffers to [`SOCKET_BUFFER`]: forced past the
/// system limits where we may (CAP_NET_ADMIN, which connecting needs anyway), else as large
/// as `net.core.rmem_max`/`wmem_max` allow. Returns the receive buffer the kernel granted
/// (it reports twice the bytes asked for, its bookkeeping included).
pub(super) fn size_buffers(sock: &impl AsFd) -> io::Result<usize> {
    let s = socket2::SockRef::from(sock);
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    if !sys::force_buffers(sock.as_fd(), SOCKET_BUFFER as libc::c_int) {
        s.set_recv_buffer_size(SOCKET_BUFFER)?;
        s.set_send_buffer_size(SOCKET_BUFFER)?;
    }
    s.recv_buffer_size()
}

/// Asks the kernel to coalesce runs of datagrams from one sender into one message (UDP GRO,
/// Linux 5.0 and later): fewer, larger receives. Each message then says its segment size and
/// [`RxBatch::for_each`] splits it. Returns false where the kernel does not know it.
pub(super) fn enable_gro(sock: &impl AsFd) -> bool {
    sys::enable_gro(sock.as_fd())
}

/// True when the kernel knows UDP GSO (`UDP_SEGMENT`) on this socket (Linux 4.18 and later).
pub(super) fn gso_supported(sock: &impl AsFd) -> bool {
    sys::gso_supported(sock.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    /// Payload of datagram `i`: its number, then bytes that depend on it.
    fn datagram(i: u32, len: usize) -> Vec<u8> {
        let mut d: Vec<u8> = (0..len)
            .map(|k| (k as u32 ^ i.wrapping_mul(31)) as u8)
            .collect();
        d[..4].copy_from_slice(&i.to_be_bytes());
        d
    }

    /// Queues datagram `i` of `len` bytes at an odd offset of its slot, as the data path does.
    fn queue(b: &mut TxBatch, i: u32, len: usize) {
        let d = datagram(i, len);
        b.next_slot()[37..37 + len].copy_from_slice(&d);
        b.push(37..37 + len);
    }

    /// What the mock socket does on one call.
    enum Act {
        /// Takes up to this many messages.
        Take(usize),
        /// Fails with this errno.
        Fail(i32),
    }

    /// A socket that follows a script (then takes everything) and records each datagram as
    /// the kernel would put it on the wire (GSO messages split into their segments).
    #[derive(Default)]
    struct Mock {
        script: RefCell<VecDeque<Act>>,
        wire: RefCell<Vec<Vec<u8>>>,
        /// Datagrams per message, per call.
        calls: RefCell<Vec<Vec<usize>>>,
    }

    impl Mock {
        fn with(script: Vec<Act>) -> Mock {
            Mock {
                script: RefCell::new(script.into()),
                ..Mock::default()
            }
        }

        /// Numbers of the datagrams on the wire, checking each one's content.
        fn numbers(&self) -> Vec<u32> {
            self.wire
                .borrow()
                .iter()
                .map(|d| {
                    let i = u32::from_be_bytes(d[..4].try_into().unwrap());
                    assert_eq!(*d, datagram(i, d.len()), "datagram {i} corrupted");
                    i
                })
                .collect()
        }
    }

    impl BatchFd for Mock {
        fn send_mmsg(
            &self,
            buf: &[u8],
            queued: &[Range<usize>],
            msgs: &[OutMsg],
            _dest: Option<SocketAddr>,
        ) -> io::Result<usize> {
            self.calls
                .borrow_mut()
                .push(msgs.iter().map(|m| m.count).collect());
            let take = match self.script.borrow_mut().pop_front() {
                Some(Act::Fail(e)) => return Err(io::Error::from_raw_os_error(e)),
                Some(Act::Take(k)) => k.min(msgs.len()),
                None => msgs.len(),
            };
            for m in &msgs[..take] {
                let parts = &queued[m.first..m.first + m.count];
                if m.count > 1 {
                    // All segments `segment` bytes but the last, which may be shorter.
                    let seg = usize::from(m.segment);
                    for (k, r) in parts.iter().enumerate() {
                        assert!(r.len() == seg || (k + 1 == parts.len() && r.len() < seg));
                    }
                }
                for r in parts {
                    self.wire.borrow_mut().push(buf[r.clone()].to_vec());
                }
            }
            Ok(take)
        }

        fn recv_mmsg(
            &self,
            _buf: &mut [u8],
            _slot_len: usize,
            _meta: &mut RxMeta,
            _from: bool,
        ) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// A batch of `n` datagrams: runs of equal sizes with shorter ones between.
    fn mixed(n: u32) -> TxBatch {
        let mut b = TxBatch::new(2048);
        for i in 0..n {
            let len = match i % 10 {
                3 => 200,
                7 => 1000,
                _ => 1400,
            };
            queue(&mut b, i, len);
        }
        b
    }

    #[test]
    fn gso_runs_follow_the_kernel_rules() {
        let runs = |sizes: &[usize]| {
            let mut at = 0;
            let q: Vec<Range<usize>> = sizes
                .iter()
                .map(|&s| {
                    at += 4096;
                    at..at + s
                })
                .collect();
            gso_run(&q)
        };
        assert_eq!(runs(&[100]), 1);
        assert_eq!(
            runs(&[100, 100, 100, 50, 100]),
            4,
            "a shorter one ends the run"
        );
        assert_eq!(runs(&[100, 200]), 1, "a longer one starts another");
        assert_eq!(runs(&[100; 70]), GSO_MAX_SEGMENTS);
        assert_eq!(runs(&[1400; 60]), 46, "at most 64 KiB");
    }

    #[test]
    fn everything_goes_in_order_with_or_without_gso() {
        for gso in [false, true] {
            let mut b = mixed(CAP as u32);
            let m = Mock::default();
            let s = b.send(&m, None, gso);
            assert_eq!((s.sent, s.full, s.failed, s.calls), (CAP, 0, 0, 1));
            assert_eq!(m.numbers(), (0..CAP as u32).collect::<Vec<_>>());
            let msgs = m.calls.borrow()[0].len();
            if gso {
                assert!(msgs < CAP / 2, "{msgs} messages: runs not joined");
            } else {
                assert_eq!(msgs, CAP);
            }
            assert_eq!(b.len(), 0);
        }
    }

    #[test]
    fn a_partial_send_continues_where_it_stopped() {
        for gso in [false, true] {
            let mut b = mixed(40);
            let m = Mock::with(vec![Act::Take(2), Act::Take(1)]);
            let s = b.send(&m, None, gso);
            assert_eq!((s.sent, s.full, s.failed), (40, 0, 0));
            assert_eq!(m.numbers(), (0..40).collect::<Vec<_>>(), "gso {gso}");
        }
    }

    #[test]
    fn a_full_buffer_drops_the_rest_of_the_batch() {
        let mut b = mixed(30);
        let m = Mock::with(vec![Act::Take(3), Act::Fail(libc::EAGAIN)]);
        let s = b.send(&m, None, false);
        assert_eq!((s.sent, s.full, s.failed), (3, 27, 0));
        assert_eq!(m.numbers(), vec![0, 1, 2]);
        assert_eq!(b.len(), 0, "the batch is empty afterwards");
        // The next batch goes out normally.
        queue(&mut b, 99, 100);
        assert_eq!(b.send(&m, None, false).sent, 1);
        assert_eq!(m.numbers(), vec![0, 1, 2, 99]);
    }

    #[test]
    fn an_error_is_retried_once_then_drops_only_its_message() {
        // A pending error (e.g. ECONNREFUSED after an ICMP message) fails one call only.
        let mut b = mixed(20);
        let m = Mock::with(vec![Act::Fail(libc::ECONNREFUSED)]);
        let s = b.send(&m, None, true);
        assert_eq!((s.sent, s.failed), (20, 0));
        assert!(s.error.is_none());
        assert_eq!(m.numbers(), (0..20).collect::<Vec<_>>());
        // A lasting one drops the message it concerns; the rest still goes, in order.
        let mut b = mixed(20);
        let m = Mock::with(vec![
            Act::Fail(libc::ENETUNREACH),
            Act::Fail(libc::ENETUNREACH),
        ]);
        let s = b.send(&m, None, false);
        assert_eq!((s.sent, s.failed), (19, 1));
        assert_eq!(s.error.unwrap().raw_os_error(), Some(libc::ENETUNREACH));
        assert_eq!(m.numbers(), (1..20).collect::<Vec<_>>());
    }

    #[test]
    fn gso_errors_fall_back_to_single_datagrams() {
        // EIO (no checksum offload): GSO off for the rest, nothing lost.
        let mut b = mixed(20);
        let m = Mock::with(vec![Act::Fail(libc::EIO)]);
        let s = b.send(&m, None, true);
        assert_eq!((s.sent, s.failed), (20, 0));
        assert!(s.gso_refused.is_some());
        assert_eq!(m.numbers(), (0..20).collect::<Vec<_>>());
        assert!(m.calls.borrow()[1].iter().all(|&c| c == 1));
        // EINVAL on one run: that run goes one by one, later runs still joined.
        let mut b = mixed(20);
        let m = Mock::with(vec![Act::Fail(libc::EINVAL)]);
        let s = b.send(&m, None, true);
        assert_eq!((s.sent, s.failed), (20, 0));
        assert!(s.gso_refused.is_none());
        assert_eq!(m.numbers(), (0..20).collect::<Vec<_>>());
        let second = &m.calls.borrow()[1];
        let first_run = m.calls.borrow()[0][0];
        assert!(second[..first_run].iter().all(|&c| c == 1));
        assert!(second[first_run..].iter().any(|&c| c > 1));
    }

    /// Room for the largest UDP datagram, as the engine's slots have.
    const SLOT_FOR_TESTS: usize = 65536;

    /// A receiver on 127.0.0.1 with room for a few batches, and a sender connected to it.
    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        rx.set_recv_buffer_size(4 << 20).unwrap();
        rx.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let rx: UdpSocket = rx.into();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        tx.set_nonblocking(true).unwrap();
        (tx, rx)
    }

    /// Receives until `n` datagrams came (or 5 s passed); returns their numbers and how many
    /// messages carried them.
    fn receive_msgs(rx: &UdpSocket, rb: &mut RxBatch, n: usize) -> (Vec<u32>, usize) {
        let mut got = Vec::new();
        let mut msgs = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < n && Instant::now() < deadline {
            match rb.recv(rx, false) {
                Ok(k) => {
                    msgs += k;
                    rb.for_each(|d, _| {
                        let num = u32::from_be_bytes(d[..4].try_into().unwrap());
                        assert_eq!(d, datagram(num, d.len()).as_slice(), "datagram {num}");
                        got.push(num);
                        Ok::<_, ()>(())
                    })
                    .unwrap();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
        (got, msgs)
    }

    /// Receives until `n` datagrams came (or 5 s passed); returns their numbers.
    fn receive(rx: &UdpSocket, rb: &mut RxBatch, n: usize) -> Vec<u32> {
        receive_msgs(rx, rb, n).0
    }

    #[test]
    fn udp_batches_arrive_complete_and_in_order() {
        for gso in [false, true] {
            let (tx, rx) = pair();
            let gso = gso && gso_supported(&tx);
            let mut rb = RxBatch::new(2048, CAP);
            let mut next = 0u32;
            let mut calls = 0;
            for _ in 0..5 {
                let mut b = mixed(0);
                for _ in 0..CAP {
                    let len = [1400, 1400, 1400, 200, 1400, 1400, 1400, 1000, 1400, 1400]
                        [next as usize % 10];
                    queue(&mut b, next, len);
                    next += 1;
                }
                let s = b.send(&tx, None, gso);
                assert_eq!(
                    (s.sent, s.full, s.failed),
                    (CAP, 0, 0),
                    "gso {gso}: {:?}",
                    s.error
                );
                calls += s.calls;
            }
            assert_eq!(calls, 5, "one system call a batch");
            let got = receive(&rx, &mut rb, next as usize);
            assert_eq!(
                got,
                (0..next).collect::<Vec<_>>(),
                "gso {gso}: lost, duplicated or reordered"
            );
        }
    }

    #[test]
    fn recv_reports_senders_and_drops_what_does_not_fit() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        a.send_to(&datagram(1, 40), to).unwrap();
        b.send_to(&datagram(2, 100), to).unwrap();
        a.send_to(&datagram(3, 64), to).unwrap();
        let mut rb = RxBatch::new(64, CAP);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rb.recv(&rx, true).unwrap(), 3);
        let mut seen = Vec::new();
        rb.for_each(|d, from| {
            seen.push((d.to_vec(), from));
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (datagram(1, 40), Some(a.local_addr().unwrap())),
                (datagram(3, 64), Some(a.local_addr().unwrap())),
            ],
            "the 100-byte datagram did not fit its slot: dropped"
        );
        assert_eq!(
            rb.recv(&rx, true).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn data_sockets_get_large_buffers() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = socket2::SockRef::from(&s).recv_buffer_size().unwrap();
        let got = size_buffers(&s).unwrap();
        let send = socket2::SockRef::from(&s).send_buffer_size().unwrap();
        let forced = sys::force_buffers(s.as_fd(), 1 << 20);
        if forced {
            // Root (CAP_NET_ADMIN): both sizes as asked, past the system limits.
            assert!(
                got >= SOCKET_BUFFER && send >= SOCKET_BUFFER,
                "{got} {send}"
            );
        } else {
            assert!(got >= before, "{got} < {before}");
        }
    }

    #[test]
    fn gro_messages_are_split_into_their_datagrams() {
        let (tx, rx) = pair();
        if !gso_supported(&tx) || !enable_gro(&rx) {
            eprintln!("skipped: this kernel lacks UDP GSO or GRO");
            return;
        }
        // Over loopback a GSO message reaches a GRO socket whole, as one message of equal
        // segments and a shorter last one, exactly what GRO on a NIC delivers.
        let mut b = TxBatch::new(2048);
        for (i, len) in [1400, 1400, 1400, 1400, 700, 1400, 1400, 300]
            .into_iter()
            .enumerate()
        {
            queue(&mut b, i as u32, len);
        }
        let s = b.send(&tx, None, true);
        assert_eq!((s.sent, s.failed), (8, 0), "{:?}", s.error);
        let mut rb = RxBatch::new(SLOT_FOR_TESTS, 4);
        let (got, msgs) = receive_msgs(&rx, &mut rb, 8);
        assert_eq!(
            got,
            (0..8).collect::<Vec<_>>(),
            "lost, duplicated or reordered"
        );
        assert_eq!(msgs, 2, "two GSO runs, two messages");
    }

    #[test]
    fn a_refused_send_is_retried_not_lost() {
        let (tx, rx) = pair();
        let to = rx.local_addr().unwrap();
        drop(rx);
        // Nobody listens: the ICMP port unreachable leaves ECONNREFUSED on the socket.
        tx.send(&datagram(0, 10)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let rx = UdpSocket::bind(to).unwrap();
        rx.set_nonblocking(true).unwrap();
        let mut b = TxBatch::new(256);
        for i in 1..=5 {
            queue(&mut b, i, 100);
        }
        let s = b.send(&tx, None, false);
        assert_eq!((s.sent, s.failed), (5, 0), "{:?}", s.error);
        assert_eq!(
            s.calls, 2,
            "the first call reports the pending ECONNREFUSED"
        );
        let mut rb = RxBatch::new(2048, CAP);
        assert_eq!(receive(&rx, &mut rb, 5), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn sends_to_an_address_from_an_unconnected_socket() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = TxBatch::new(2048);
        for i in 0..10 {
            queue(&mut b, i, 1000);
        }
        let s = b.send(&tx, Some(rx.local_addr().unwrap()), gso_supported(&tx));
        assert_eq!(s.sent, 10, "{:?}", s.error);
        let mut rb = RxBatch::new(2048, CAP);
        assert_eq!(receive(&rx, &mut rb, 10), (0..10).collect::<Vec<_>>());
    }
}
