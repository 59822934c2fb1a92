//! Linux: `recvmmsg`/`recvmsg` with packet info, `sendmmsg`, UDP GSO
//! (`sendmsg` with a `UDP_SEGMENT` control message) and `sendto`.
//!
//! Every syscall goes through the [`Sys`] trait so tests can make the kernel
//! "refuse" a feature (ENOSYS, EINVAL, EIO, partial counts) on real sockets.
//! Message headers are rebuilt on the stack for each call (cheap next to the
//! syscall) so no raw pointer outlives a call and [`RecvBatch`] stays `Send`.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;

use super::{gso_run, Received, UdpCaps, UdpStats, BATCH, MAX_GSO_SEGMENTS, MIN_MMSG};

/// `UDP_SEGMENT` (linux/udp.h), stable kernel ABI since 4.18; defined here
/// because not every libc target exports it.
const UDP_SEGMENT: libc::c_int = 103;
/// Control buffer per message: room for UDP_SEGMENT plus IPv4 and IPv6
/// packet info on send (24 + 32 + 40 bytes on 64-bit), and on receive for
/// packet info plus TOS/traffic class and TTL/hop limit (at most 40 + 24 + 24).
const CMSG_CAP: usize = 128;

/// A control-message buffer aligned as `cmsghdr` requires.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CmsgBuf([u8; CMSG_CAP]);

impl CmsgBuf {
    const fn new() -> Self {
        CmsgBuf([0; CMSG_CAP])
    }
}

// ---------------------------------------------------------------------------
// Syscall layer

/// The syscalls used here. The real one is [`LibcSys`]; tests wrap it to
/// inject failures. Results follow `io::Result`: `Err` carries errno.
///
/// # Safety
/// For the `unsafe` methods the caller guarantees that the header(s) are
/// initialised and that every pointer in them (name, iovecs, control) is valid
/// for the call, for writing on receive.
pub(super) trait Sys {
    unsafe fn recvmmsg(&self, fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> io::Result<usize>;
    unsafe fn recvmsg(&self, fd: RawFd, msg: *mut libc::msghdr) -> io::Result<usize>;
    unsafe fn sendmmsg(&self, fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> io::Result<usize>;
    unsafe fn sendmsg(&self, fd: RawFd, msg: *const libc::msghdr) -> io::Result<usize>;
    fn sendto(&self, fd: RawFd, data: &[u8], to: &RawAddr) -> io::Result<usize>;
}

/// The kernel.
pub(super) struct LibcSys;

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl Sys for LibcSys {
    unsafe fn recvmmsg(&self, fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> io::Result<usize> {
        // SAFETY: the caller guarantees `msgs[..n]` are valid headers; no timeout.
        cvt(unsafe { libc::recvmmsg(fd, msgs, n as _, libc::MSG_DONTWAIT, ptr::null_mut()) } as isize)
    }

    unsafe fn recvmsg(&self, fd: RawFd, msg: *mut libc::msghdr) -> io::Result<usize> {
        // SAFETY: the caller guarantees `msg` is a valid header.
        cvt(unsafe { libc::recvmsg(fd, msg, libc::MSG_DONTWAIT) })
    }

    unsafe fn sendmmsg(&self, fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> io::Result<usize> {
        // SAFETY: the caller guarantees `msgs[..n]` are valid headers.
        cvt(unsafe { libc::sendmmsg(fd, msgs, n as _, libc::MSG_DONTWAIT) } as isize)
    }

    unsafe fn sendmsg(&self, fd: RawFd, msg: *const libc::msghdr) -> io::Result<usize> {
        // SAFETY: the caller guarantees `msg` is a valid header.
        cvt(unsafe { libc::sendmsg(fd, msg, libc::MSG_DONTWAIT) })
    }

    fn sendto(&self, fd: RawFd, data: &[u8], to: &RawAddr) -> io::Result<usize> {
        // SAFETY: `data` is a live slice and `to` a complete sockaddr of `to.len()` bytes.
        cvt(unsafe { libc::sendto(fd, data.as_ptr().cast(), data.len(), libc::MSG_DONTWAIT, to.as_ptr(), to.len()) })
    }
}

// ---------------------------------------------------------------------------
// Addresses and control messages

/// A socket address in kernel form, built without `unsafe`.
pub(super) enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    fn new(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => RawAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => RawAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            RawAddr::V4(a) => (a as *const libc::sockaddr_in).cast(),
            RawAddr::V6(a) => (a as *const libc::sockaddr_in6).cast(),
        }
    }

    fn len(&self) -> libc::socklen_t {
        (match self {
            RawAddr::V4(_) => mem::size_of::<libc::sockaddr_in>(),
            RawAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>(),
        }) as libc::socklen_t
    }
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain integers; all-zero is a valid value.
    unsafe { mem::zeroed() }
}

fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is integers and raw pointers; all-zero (null pointers) is valid.
    unsafe { mem::zeroed() }
}

/// The address the kernel wrote into `s` (`len` bytes), if it is IPv4/IPv6.
fn from_storage(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match s.ss_family as libc::c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage (larger and at least as
            // aligned as sockaddr_in) holds a sockaddr_in, fully written.
            let a: libc::sockaddr_in = unsafe { ptr::read((s as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a: libc::sockaddr_in6 = unsafe { ptr::read((s as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), u32::from_be(a.sin6_flowinfo), a.sin6_scope_id)))
        }
        _ => None,
    }
}

/// Appends control messages to a [`CmsgBuf`].
struct CmsgWriter<'a> {
    buf: &'a mut CmsgBuf,
    len: usize,
}

impl<'a> CmsgWriter<'a> {
    fn new(buf: &'a mut CmsgBuf) -> Self {
        CmsgWriter { buf, len: 0 }
    }

    fn push<T: Copy>(&mut self, level: libc::c_int, ty: libc::c_int, value: T) {
        let data_len = mem::size_of::<T>() as libc::c_uint;
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
        let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(data_len) as usize, libc::CMSG_LEN(data_len)) };
        // Only fixed, small messages are pushed; overflowing is a bug here.
        assert!(self.len + space <= CMSG_CAP, "control buffer too small");
        let at = self.buf.0.as_mut_ptr().wrapping_add(self.len).cast::<libc::cmsghdr>();
        // SAFETY: `at` lies in the buffer with `space` bytes after it, and is
        // aligned for cmsghdr (the buffer is 8-aligned and every previous
        // message took a multiple of the cmsg alignment). The data goes at
        // CMSG_DATA, inside the same `space` bytes; written unaligned.
        unsafe {
            let mut h: libc::cmsghdr = mem::zeroed();
            h.cmsg_len = cmsg_len as _;
            h.cmsg_level = level;
            h.cmsg_type = ty;
            ptr::write(at, h);
            ptr::write_unaligned(libc::CMSG_DATA(at).cast::<T>(), value);
        }
        self.len += space;
    }

    /// Source address for the datagram (`IP_PKTINFO` / `IPV6_PKTINFO`).
    fn push_src(&mut self, src: IpAddr) {
        match src {
            IpAddr::V4(ip) => self.push(
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                },
            ),
            IpAddr::V6(ip) => self.push(
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                libc::in6_pktinfo { ipi6_addr: libc::in6_addr { s6_addr: ip.octets() }, ipi6_ifindex: 0 },
            ),
        }
    }
}

/// What a received header's control messages say: destination IP (packet
/// info), TOS / traffic class, TTL / hop limit.
#[derive(Debug, Clone, Copy, Default)]
struct Ancillary {
    dst: Option<IpAddr>,
    tos: Option<u8>,
    ttl: Option<u8>,
}

/// Read the control messages of a received header.
fn parse_ancillary(hdr: &libc::msghdr) -> Ancillary {
    let mut anc = Ancillary::default();
    if hdr.msg_control.is_null() || hdr.msg_controllen == 0 {
        return anc;
    }
    let mut dst = None;
    // SAFETY: msg_control/msg_controllen describe the buffer the kernel filled
    // (controllen was updated to the bytes written); CMSG_FIRSTHDR/NXTHDR
    // return only headers that lie wholly inside it.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !c.is_null() {
        // SAFETY: `c` points to a complete cmsghdr inside the buffer (above).
        let h: libc::cmsghdr = unsafe { ptr::read_unaligned(c) };
        let data_len = |n: usize| {
            // SAFETY: pure arithmetic.
            (h.cmsg_len as usize) >= unsafe { libc::CMSG_LEN(n as libc::c_uint) } as usize
        };
        // IP_TOS arrives as one byte; IP_TTL, IPV6_TCLASS and IPV6_HOPLIMIT as an int.
        let small = |c: *const libc::cmsghdr, as_byte: bool| -> Option<u8> {
            if as_byte && data_len(1) {
                // SAFETY: the length check shows at least one data byte.
                Some(unsafe { ptr::read_unaligned(libc::CMSG_DATA(c)) })
            } else if data_len(mem::size_of::<libc::c_int>()) {
                // SAFETY: the length check shows an int follows the header.
                let v: libc::c_int = unsafe { ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                u8::try_from(v).ok()
            } else {
                None
            }
        };
        if h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TOS {
            anc.tos = small(c, true);
        } else if h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TTL {
            anc.ttl = small(c, false);
        } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_TCLASS {
            anc.tos = small(c, false);
        } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT {
            anc.ttl = small(c, false);
        } else if h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_PKTINFO && data_len(mem::size_of::<libc::in_pktinfo>()) {
            // SAFETY: the length check shows an in_pktinfo follows the header.
            let info: libc::in_pktinfo = unsafe { ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            dst = Some(IpAddr::V4(Ipv4Addr::from(info.ipi_addr.s_addr.to_ne_bytes())));
        } else if h.cmsg_level == libc::IPPROTO_IPV6
            && h.cmsg_type == libc::IPV6_PKTINFO
            && data_len(mem::size_of::<libc::in6_pktinfo>())
        {
            // SAFETY: the length check shows an in6_pktinfo follows the header.
            let info: libc::in6_pktinfo = unsafe { ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            // IPv6 info wins over IPv4 info on a dual-stack socket: it matches `from`'s family.
            dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        c = unsafe { libc::CMSG_NXTHDR(hdr, c) };
    }
    anc.dst = dst;
    anc
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: an int option value and its exact size; the kernel checks `fd`.
    let r = unsafe {
        libc::setsockopt(fd, level, opt, (&val as *const libc::c_int).cast(), mem::size_of::<libc::c_int>() as libc::socklen_t)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ask the kernel to report each datagram's destination IP (so [`Received::dst`]
/// is filled): `IP_PKTINFO` on IPv4 sockets, `IPV6_RECVPKTINFO` on IPv6 ones.
pub fn enable_pktinfo(fd: RawFd, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// Ask the kernel to report each datagram's TOS / traffic class and TTL / hop
/// limit ([`Received::tos`], [`Received::ttl`]), so relayed datagrams can carry
/// the sender's DiffServ and ECN marks (RFC 8656 14).
pub fn enable_tos_ttl(fd: RawFd, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1)?;
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 1)?;
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)
    }
}

/// Set the TOS / traffic class of datagrams sent from now on through `fd`.
pub fn set_tos(fd: RawFd, v6: bool, tos: u8) -> io::Result<()> {
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, libc::c_int::from(tos))
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TOS, libc::c_int::from(tos))
    }
}

/// Whether the kernel accepts `UDP_SEGMENT` (tried on a throwaway socket).
pub(super) fn probe_gso() -> io::Result<()> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .or_else(|_| socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)))?;
    setsockopt_int(s.as_raw_fd(), libc::SOL_UDP, UDP_SEGMENT, super::MAX_GSO_SEGMENT_V6 as libc::c_int)
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Receive

#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Index of the slot the data is in.
    slot: usize,
    len: usize,
    from: SocketAddr,
    dst: Option<IpAddr>,
    truncated: bool,
    tos: Option<u8>,
    ttl: Option<u8>,
}

/// Per-thread receive scratch: [`BATCH`] slots of `slot_size` bytes, with
/// room for each datagram's source and control messages.
pub struct RecvBatch {
    slot_size: usize,
    buf: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    ctrl: Vec<CmsgBuf>,
    meta: Vec<Meta>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").field("slot_size", &self.slot_size).field("len", &self.meta.len()).finish()
    }
}

impl RecvBatch {
    /// Scratch for [`BATCH`] datagrams of up to `slot_size` bytes (65536 means
    /// nothing is ever truncated). The memory is zero-allocated, so pages that
    /// are never written do not count in RSS.
    pub fn new(slot_size: usize) -> Self {
        let slot_size = slot_size.max(1);
        RecvBatch {
            slot_size,
            buf: vec![0; slot_size * BATCH],
            names: vec![zeroed_storage(); BATCH],
            ctrl: vec![CmsgBuf::new(); BATCH],
            meta: Vec::with_capacity(BATCH),
        }
    }

    /// Receive up to [`BATCH`] datagrams from non-blocking `fd`: one `recvmmsg`
    /// when enabled, else `recvmsg` until the socket is empty or the batch
    /// full. Returns how many; read them with [`RecvBatch::get`]. `Ok(0)`
    /// means the socket is empty (EAGAIN), which is what an edge-triggered
    /// poll needs; a count below [`BATCH`] almost always means so too, but
    /// only 0 proves it. If `recvmmsg` turns out to be unsupported it is
    /// disabled process-wide (one warning) and this call uses `recvmsg`.
    /// Other errors are returned (a datagram already read is never lost: the
    /// error then waits for the next call).
    pub fn recv(&mut self, fd: RawFd, caps: &UdpCaps, stats: &mut UdpStats) -> io::Result<usize> {
        self.recv_with(&LibcSys, fd, caps, stats)
    }

    /// Datagrams from the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Datagram `i` of the last receive; panics if `i >= self.len()`.
    pub fn get(&self, i: usize) -> Received<'_> {
        let m = &self.meta[i];
        let start = m.slot * self.slot_size;
        Received { data: &self.buf[start..start + m.len], from: m.from, dst: m.dst, truncated: m.truncated, tos: m.tos, ttl: m.ttl }
    }

    /// The datagrams of the last receive, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = Received<'_>> + '_ {
        (0..self.meta.len()).map(move |i| self.get(i))
    }

    /// Point `hdr` at slot `i` (payload, name and control buffers).
    fn prepare(&mut self, i: usize, iov: &mut libc::iovec, hdr: &mut libc::msghdr) {
        let slot = self.slot_size;
        iov.iov_base = self.buf[i * slot..(i + 1) * slot].as_mut_ptr().cast();
        iov.iov_len = slot;
        hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
        hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_iov = iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = self.ctrl[i].0.as_mut_ptr().cast();
        hdr.msg_controllen = CMSG_CAP as _;
        hdr.msg_flags = 0;
    }

    /// Record slot `i` after the kernel filled it (`len` bytes, header `hdr`).
    fn record(&mut self, i: usize, len: usize, hdr: &libc::msghdr, stats: &mut UdpStats) {
        let Some(from) = from_storage(&self.names[i], hdr.msg_namelen) else { return };
        let truncated = hdr.msg_flags & libc::MSG_TRUNC != 0;
        if truncated {
            stats.recv_truncated += 1;
        }
        let anc = parse_ancillary(hdr);
        self.meta.push(Meta { slot: i, len: len.min(self.slot_size), from, dst: anc.dst, truncated, tos: anc.tos, ttl: anc.ttl });
    }

    pub(super) fn recv_with<S: Sys>(&mut self, sys: &S, fd: RawFd, caps: &UdpCaps, stats: &mut UdpStats) -> io::Result<usize> {
        self.meta.clear();
        while caps.recvmmsg_enabled() {
            match self.recv_mmsg(sys, fd, stats) {
                Ok(0) => {
                    stats.recv_wouldblock += 1;
                    return Ok(0);
                }
                Ok(_) => {
                    stats.recvmmsg_calls += 1;
                    let n = self.meta.len();
                    if n == 0 {
                        // Only datagrams without an IP source (never seen on a
                        // UDP socket): don't report an empty socket, read on.
                        continue;
                    }
                    stats.record_recv(n);
                    return Ok(n);
                }
                Err(e) if matches!(errno(&e), libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => {
                    caps.disable_recvmmsg(&e);
                    stats.fallbacks += 1;
                }
                Err(e) => return Err(e),
            }
        }
        self.recv_loop(sys, fd, stats)
    }

    /// One `recvmmsg`; returns the kernel's count (`Ok(0)` when the socket
    /// is empty), the usable ones are in `self.meta`.
    fn recv_mmsg<S: Sys>(&mut self, sys: &S, fd: RawFd, stats: &mut UdpStats) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are integers and raw pointers; zero is valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for (i, (iov, h)) in iovs.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            self.prepare(i, iov, &mut h.msg_hdr);
        }
        let n = loop {
            // SAFETY: every header points into this batch's buffers (prepare),
            // which stay borrowed and unmoved for the call.
            match unsafe { sys.recvmmsg(fd, hdrs.as_mut_ptr(), BATCH) } {
                Ok(n) => break n.min(BATCH),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        for (i, h) in hdrs.iter().enumerate().take(n) {
            self.record(i, h.msg_len as usize, &h.msg_hdr, stats);
        }
        Ok(n)
    }

    /// `recvmsg` per datagram until empty or full.
    fn recv_loop<S: Sys>(&mut self, sys: &S, fd: RawFd, stats: &mut UdpStats) -> io::Result<usize> {
        // SAFETY: integers and raw pointers; zero is valid.
        let mut iov: libc::iovec = unsafe { mem::zeroed() };
        let mut hdr = zeroed_msghdr();
        let mut i = 0;
        let mut drained = false;
        while i < BATCH {
            self.prepare(i, &mut iov, &mut hdr);
            // SAFETY: `hdr` points into slot i's buffers and `iov` (prepare).
            match unsafe { sys.recvmsg(fd, &mut hdr) } {
                Ok(len) => {
                    stats.recvmsg_calls += 1;
                    self.record(i, len, &hdr, stats);
                    i += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                // What was read is returned; a persistent error shows again next call.
                Err(_) if i > 0 => break,
                Err(e) => return Err(e),
            }
            // A full batch of unusable datagrams (see recv_with): start over.
            if i == BATCH && self.meta.is_empty() {
                i = 0;
            }
        }
        let n = self.meta.len();
        if n == 0 && drained {
            stats.recv_wouldblock += 1;
        } else if n > 0 {
            stats.record_recv(n);
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Send

/// Send datagrams that all leave through socket `fd`, as efficiently as the
/// kernel allows, and return how many were sent (the rest were dropped, as UDP
/// may: full socket buffer or a per-destination hard error; counted in
/// `stats.dropped`).
///
/// Order is kept. A run of ≥ 2 datagrams to one destination, all the size of
/// the first except a possibly shorter last one (≤ 1472 bytes IPv4 / 1452
/// IPv6, ≤ 64 segments, ≤ 65,000 bytes) goes out as one GSO `sendmsg` when GSO
/// is enabled. The other datagrams go through `sendmmsg` in chunks of
/// [`BATCH`] (a partial send is resumed where the kernel stopped), or one by
/// one through `sendto` when fewer than [`MIN_MMSG`] are left or `sendmmsg`
/// is off. `src_ip` sets the source address of every datagram (packet info),
/// for replies from a wildcard-bound socket.
///
/// If the kernel refuses GSO (EINVAL, ENOPROTOOPT, EOPNOTSUPP, EIO), GSO is
/// disabled process-wide with one warning and the same datagrams are sent
/// through `sendmmsg`; if `sendmmsg` is missing (ENOSYS), likewise to `sendto`.
pub fn send_batch(
    fd: RawFd,
    datagrams: &[(SocketAddr, &[u8])],
    src_ip: Option<IpAddr>,
    caps: &UdpCaps,
    stats: &mut UdpStats,
) -> usize {
    send_batch_with(&LibcSys, fd, datagrams, src_ip, caps, stats)
}

pub(super) fn send_batch_with<S: Sys>(
    sys: &S,
    fd: RawFd,
    d: &[(SocketAddr, &[u8])],
    src: Option<IpAddr>,
    caps: &UdpCaps,
    stats: &mut UdpStats,
) -> usize {
    if d.is_empty() {
        return 0;
    }
    stats.send_batches += 1;
    let mut sent = 0;
    // d[start..i] is waiting for the non-GSO path.
    let mut start = 0;
    let mut i = 0;
    while i < d.len() {
        if caps.gso_enabled() {
            let run = gso_run(&d[i..]);
            if run >= 2 {
                sent += send_plain(sys, fd, &d[start..i], src, caps, stats);
                sent += send_gso(sys, fd, &d[i..i + run], src, caps, stats);
                i += run;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    sent += send_plain(sys, fd, &d[start..], src, caps, stats);
    stats.sent += sent as u64;
    sent
}

fn drop_count(stats: &mut UdpStats, n: usize) {
    stats.dropped += n as u64;
}

/// One GSO `sendmsg` for a run (see [`gso_run`]); falls back to the plain path
/// if the kernel refuses GSO.
fn send_gso<S: Sys>(sys: &S, fd: RawFd, run: &[(SocketAddr, &[u8])], src: Option<IpAddr>, caps: &UdpCaps, stats: &mut UdpStats) -> usize {
    let Some(&(dest, first)) = run.first() else { return 0 };
    debug_assert!(run.len() <= MAX_GSO_SEGMENTS);
    // SAFETY: integers and raw pointers; zero is valid.
    let mut iovs: [libc::iovec; MAX_GSO_SEGMENTS] = unsafe { mem::zeroed() };
    for (iov, (_, p)) in iovs.iter_mut().zip(run) {
        // The kernel only reads from send buffers; the cast to *mut is the C API's.
        iov.iov_base = p.as_ptr() as *mut libc::c_void;
        iov.iov_len = p.len();
    }
    let name = RawAddr::new(&dest);
    let mut ctrl = CmsgBuf::new();
    let mut w = CmsgWriter::new(&mut ctrl);
    w.push::<u16>(libc::SOL_UDP, UDP_SEGMENT, first.len() as u16);
    if let Some(ip) = src {
        w.push_src(ip);
    }
    let ctrl_len = w.len;
    let mut hdr = zeroed_msghdr();
    hdr.msg_name = name.as_ptr() as *mut libc::c_void;
    hdr.msg_namelen = name.len();
    hdr.msg_iov = iovs.as_mut_ptr();
    hdr.msg_iovlen = run.len() as _;
    hdr.msg_control = ctrl.0.as_mut_ptr().cast();
    hdr.msg_controllen = ctrl_len as _;
    loop {
        // SAFETY: name, iovecs (over the caller's slices) and control buffer
        // all live on this frame for the call.
        match unsafe { sys.sendmsg(fd, &hdr) } {
            Ok(_) => {
                stats.gso_sends += 1;
                stats.gso_datagrams += run.len() as u64;
                return run.len();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(errno(&e), libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP | libc::EIO) => {
                caps.disable_gso(&e);
                stats.fallbacks += 1;
                return send_plain(sys, fd, run, src, caps, stats);
            }
            // Segments larger than this route's MTU: GSO cannot split them,
            // but plain sends may still go (fragmented, or refused one by one
            // when DF is set). GSO stays on for other destinations.
            Err(e) if errno(&e) == libc::EMSGSIZE => {
                return send_plain(sys, fd, run, src, caps, stats);
            }
            // Full buffer or a hard error for this destination: the whole run
            // shares both, so it is dropped as one.
            Err(_) => {
                drop_count(stats, run.len());
                return 0;
            }
        }
    }
}

/// `sendmmsg` in chunks, or `sendto` per datagram for small groups.
fn send_plain<S: Sys>(sys: &S, fd: RawFd, d: &[(SocketAddr, &[u8])], src: Option<IpAddr>, caps: &UdpCaps, stats: &mut UdpStats) -> usize {
    if d.is_empty() {
        return 0;
    }
    if d.len() < MIN_MMSG || !caps.sendmmsg_enabled() {
        return send_each(sys, fd, d, src, stats);
    }
    let (mut ctrl, ctrl_len) = src_control(src);
    let mut sent = 0;
    let mut i = 0;
    while i < d.len() {
        let chunk = &d[i..d.len().min(i + BATCH)];
        // Headers point at these arrays; rebuilt per chunk (and after a partial send).
        let mut names: [Option<RawAddr>; BATCH] = [const { None }; BATCH];
        // SAFETY: integers and raw pointers; zero is valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for (k, &(to, p)) in chunk.iter().enumerate() {
            iovs[k].iov_base = p.as_ptr() as *mut libc::c_void;
            iovs[k].iov_len = p.len();
            let name = names[k].insert(RawAddr::new(&to));
            let h = &mut hdrs[k].msg_hdr;
            h.msg_name = name.as_ptr() as *mut libc::c_void;
            h.msg_namelen = name.len();
            h.msg_iov = &mut iovs[k];
            h.msg_iovlen = 1;
            if ctrl_len > 0 {
                h.msg_control = ctrl.0.as_mut_ptr().cast();
                h.msg_controllen = ctrl_len as _;
            }
        }
        // SAFETY: the first chunk.len() headers point at names, iovecs (over
        // the caller's slices) and the control buffer, all live for the call.
        match unsafe { sys.sendmmsg(fd, hdrs.as_mut_ptr(), chunk.len()) } {
            Ok(0) => {
                // Not expected from the kernel; never spin on it.
                drop_count(stats, 1);
                i += 1;
            }
            Ok(k) => {
                let k = k.min(chunk.len());
                stats.sendmmsg_calls += 1;
                stats.sendmmsg_datagrams += k as u64;
                sent += k;
                i += k;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The socket's send buffer is full: everything after would fail too.
                drop_count(stats, d.len() - i);
                return sent;
            }
            Err(e) if errno(&e) == libc::ENOSYS => {
                caps.disable_sendmmsg(&e);
                stats.fallbacks += 1;
                return sent + send_each(sys, fd, &d[i..], src, stats);
            }
            // The first datagram of the chunk failed (e.g. unreachable
            // destination, ENOBUFS): drop it, carry on with the next.
            Err(_) => {
                drop_count(stats, 1);
                i += 1;
            }
        }
    }
    sent
}

/// The control message naming the source address `src` (none: empty).
fn src_control(src: Option<IpAddr>) -> (CmsgBuf, usize) {
    let mut ctrl = CmsgBuf::new();
    let len = match src {
        Some(ip) => {
            let mut w = CmsgWriter::new(&mut ctrl);
            w.push_src(ip);
            w.len
        }
        None => 0,
    };
    (ctrl, len)
}

/// One syscall per datagram: `sendto`, or `sendmsg` when a source is set.
fn send_each<S: Sys>(sys: &S, fd: RawFd, d: &[(SocketAddr, &[u8])], src: Option<IpAddr>, stats: &mut UdpStats) -> usize {
    let (mut ctrl, ctrl_len) = src_control(src);
    let mut sent = 0;
    let mut i = 0;
    while i < d.len() {
        let (to, p) = d[i];
        let name = RawAddr::new(&to);
        let r = if ctrl_len > 0 {
            // SAFETY: integers and raw pointers; zero is valid.
            let mut iov: libc::iovec = unsafe { mem::zeroed() };
            iov.iov_base = p.as_ptr() as *mut libc::c_void;
            iov.iov_len = p.len();
            let mut hdr = zeroed_msghdr();
            hdr.msg_name = name.as_ptr() as *mut libc::c_void;
            hdr.msg_namelen = name.len();
            hdr.msg_iov = &mut iov;
            hdr.msg_iovlen = 1;
            hdr.msg_control = ctrl.0.as_mut_ptr().cast();
            hdr.msg_controllen = ctrl_len as _;
            // SAFETY: name, iov (over `p`) and control live on this frame.
            unsafe { sys.sendmsg(fd, &hdr) }
        } else {
            sys.sendto(fd, p, &name)
        };
        match r {
            Ok(_) => {
                stats.sendto_calls += 1;
                sent += 1;
                i += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                drop_count(stats, d.len() - i);
                return sent;
            }
            Err(_) => {
                drop_count(stats, 1);
                i += 1;
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests;
