//! Creating the UDP sockets the relay threads own, and finding local addresses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// `--listening-device` / `--relay-device`: set once at start, before any
/// socket is made, and applied to every listener / relay socket.
static DEVICES: OnceLock<(Option<String>, Option<String>)> = OnceLock::new();
static DEVICE_WARNED: AtomicBool = AtomicBool::new(false);

/// Bind listener sockets to `listening` and relay sockets to `relay`
/// (SO_BINDTODEVICE; Linux, needs CAP_NET_RAW). Call once, before binding.
pub fn set_devices(listening: Option<String>, relay: Option<String>) {
    let _ = DEVICES.set((listening, relay));
}

/// Apply the configured device, if any. A refusal (no privilege, unknown
/// device) is logged once and the socket stays unbound to a device, as coturn
/// carries on in that case.
fn bind_device(sock: &Socket, relay: bool) {
    let Some((listening, relay_dev)) = DEVICES.get() else { return };
    let Some(dev) = (if relay { relay_dev } else { listening }) else { return };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = sock.bind_device(Some(dev.as_bytes())) {
        if !DEVICE_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!("Cannot bind socket to device {dev}: {e}");
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (sock, dev);
        if !DEVICE_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!("binding sockets to a device is only supported on Linux");
        }
    }
}

/// A non-blocking UDP listener socket with SO_REUSEPORT, so each relay thread
/// can bind its own socket to the same address and the kernel spreads clients
/// over them by 4-tuple hash (a client always reaches the same thread).
pub fn udp_listener(addr: SocketAddr, buf_size: usize) -> io::Result<std::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    set_buffers(&sock, buf_size);
    bind_device(&sock, false);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Fail when another process already listens on `addr`. Our listeners use
/// SO_REUSEPORT (one socket per thread), which would otherwise let a second
/// server started by mistake join the same port and silently take half of
/// the clients; a probe bound without SO_REUSEPORT conflicts with any holder.
pub fn ensure_free(addr: SocketAddr, tcp: bool) -> io::Result<()> {
    let (ty, proto) = if tcp { (Type::STREAM, Protocol::TCP) } else { (Type::DGRAM, Protocol::UDP) };
    let sock = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    if tcp {
        // A port in TIME_WAIT from our own previous run is not a holder.
        sock.set_reuse_address(true)?;
    }
    sock.bind(&addr.into())
}

/// A non-blocking TCP listener with SO_REUSEPORT: each relay thread listens on
/// its own socket and the kernel spreads new connections over them, so a
/// connection lives on the thread that accepted it.
pub fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    bind_device(&sock, false);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(sock.into())
}

/// A non-blocking relay socket bound to `addr` (no SO_REUSEPORT: the port is ours).
/// An RFC 6062 TCP relay: a listening socket on the relay address. Both it
/// and the sockets of Connect requests ([`tcp_relay_connect`]) bind the same
/// address, so both carry SO_REUSEADDR and SO_REUSEPORT (the port itself is
/// kept exclusive by the port pool).
pub fn tcp_relay_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = tcp_relay_socket(addr)?;
    sock.listen(128)?;
    Ok(sock.into())
}

/// A non-blocking connect from the TCP relay address `from` to `peer`
/// (`EINPROGRESS` is the normal outcome: completion shows as writability).
pub fn tcp_relay_connect(from: SocketAddr, peer: SocketAddr) -> io::Result<std::net::TcpStream> {
    let sock = tcp_relay_socket(from)?;
    match sock.connect(&peer.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(sock.into())
}

fn tcp_relay_socket(addr: SocketAddr) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    bind_device(&sock, true);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}

pub fn udp_relay(addr: SocketAddr, buf_size: usize, dont_fragment: bool) -> io::Result<std::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    set_buffers(&sock, buf_size);
    if dont_fragment {
        set_dont_fragment(&sock, addr.is_ipv6());
    }
    bind_device(&sock, true);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// `--sock-buf-size`: best effort (the kernel caps at rmem_max/wmem_max).
fn set_buffers(sock: &Socket, size: usize) {
    if size > 0 {
        let _ = sock.set_recv_buffer_size(size);
        let _ = sock.set_send_buffer_size(size);
    }
}

/// DONT-FRAGMENT: path-MTU discovery "do" on the relay socket (sets DF).
#[cfg(target_os = "linux")]
fn set_dont_fragment(sock: &Socket, v6: bool) {
    use std::os::fd::AsRawFd;
    let (level, opt, val) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_DO)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DO)
    };
    // SAFETY: setsockopt with a valid fd, an int option value and its size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn set_dont_fragment(_sock: &Socket, _v6: bool) {}

/// Every address configured on a local interface that a listener can bind:
/// IPv4 and global/ULA IPv6 (link-local IPv6 needs a scope id; skipped).
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a linked list we walk read-only and free once.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() {
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                        if (ip.segments()[0] & 0xffc0) != 0xfe80 {
                            out.push(IpAddr::V6(ip));
                        }
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_loopback() {
        assert!(local_addresses().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn two_listeners_share_a_port() {
        let a = udp_listener("127.0.0.1:0".parse().unwrap(), 65536).unwrap();
        let addr = a.local_addr().unwrap();
        let b = udp_listener(addr, 65536).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
    }
}
