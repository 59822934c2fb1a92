//! The relay sockets of one thread: the I/O side of [`RelayProvider`].

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mio::net::{TcpListener, UdpSocket};
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::ports::PortPool;
use super::sockets;
use crate::core::{Family, PortRequest, RelayBinding, RelayError, RelayId, RelayProvider, RelayRequest};

/// mio tokens at and above this value are relay sockets (token - base = slab key).
pub const RELAY_TOKEN_BASE: usize = 1 << 20;
/// mio tokens at and above this value are RFC 6062 TCP relay listeners.
pub const TCP_RELAY_TOKEN_BASE: usize = 1 << 40;
/// [`RelayId`]s with this bit set name TCP relay listeners (slab key below it).
pub const TCP_RELAY_ID_FLAG: u32 = 1 << 31;

/// How relay addresses are chosen and advertised; shared by all threads.
#[derive(Debug)]
pub struct RelayAddressing {
    pub pools: Vec<Arc<PortPool>>,
    /// `--external-ip` pairs (public, private); a `None` private applies to
    /// every non-loopback relay IP of that family.
    pub external: Vec<(IpAddr, Option<IpAddr>)>,
    pub sock_buf_size: usize,
    /// Round-robin cursor over relay IPs of a family.
    rr: AtomicUsize,
}

impl RelayAddressing {
    pub fn new(pools: Vec<Arc<PortPool>>, external: Vec<(IpAddr, Option<IpAddr>)>, sock_buf_size: usize) -> Self {
        RelayAddressing { pools, external, sock_buf_size, rr: AtomicUsize::new(0) }
    }

    /// The address to put in XOR-RELAYED-ADDRESS for a relay bound to `local`.
    pub fn advertise(&self, local: SocketAddr) -> SocketAddr {
        let ip = local.ip();
        for &(public, private) in &self.external {
            match private {
                Some(p) if p == ip => return SocketAddr::new(public, local.port()),
                None if Family::of(public) == Family::of(ip) && !ip.is_loopback() => {
                    return SocketAddr::new(public, local.port())
                }
                _ => {}
            }
        }
        local
    }

    /// The pool to use for a client: the relay IP equal to the listener address
    /// it reached when that is a relay IP, else round robin over the family.
    fn pick(&self, family: Family, prefer: IpAddr) -> Option<&Arc<PortPool>> {
        if let Some(p) = self.pools.iter().find(|p| p.ip == prefer) {
            return Some(p);
        }
        let of_family: Vec<&Arc<PortPool>> = self.pools.iter().filter(|p| Family::of(p.ip) == family).collect();
        if of_family.is_empty() {
            return None;
        }
        let i = self.rr.fetch_add(1, Ordering::Relaxed) % of_family.len();
        Some(of_family[i])
    }

    pub fn supports(&self, family: Family) -> bool {
        self.pools.iter().any(|p| Family::of(p.ip) == family)
    }
}

pub struct RelaySocket {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    /// TOS the socket currently sends with (cached to skip setsockopt).
    pub tos: u8,
    pool: Arc<PortPool>,
}

/// The listening socket of an RFC 6062 TCP allocation.
pub struct TcpRelay {
    pub listener: TcpListener,
    pub local: SocketAddr,
    pool: Arc<PortPool>,
}

/// One thread's relay sockets, registered in that thread's poll.
pub struct ThreadRelays {
    pub sockets: Slab<RelaySocket>,
    pub tcp: Slab<TcpRelay>,
    registry: Registry,
    addressing: Arc<RelayAddressing>,
    /// Monotonic ms, set by the loop before each batch (reservation expiry).
    pub now_ms: u64,
    /// `--multiplex-peer`: this thread's shared relay socket per relay IP.
    shared: Vec<(IpAddr, RelayId)>,
}

impl ThreadRelays {
    pub fn new(registry: Registry, addressing: Arc<RelayAddressing>) -> Self {
        ThreadRelays { sockets: Slab::new(), tcp: Slab::new(), registry, addressing, now_ms: 0, shared: Vec::new() }
    }

    /// Bind this thread's shared relay sockets: for thread `index`, port
    /// `base + 2*index` on each IPv4 relay address and `base + 2*index + 1` on
    /// each IPv6 one. If any bind fails the thread keeps per-allocation relay
    /// sockets (coturn does the same) and says so once.
    pub fn setup_multiplex(&mut self, index: u32, base: u16) {
        let addressing = Arc::clone(&self.addressing);
        for pool in &addressing.pools {
            let off = 2 * index as usize + usize::from(pool.ip.is_ipv6());
            let Some(port) = u16::try_from(usize::from(base) + off).ok() else {
                tracing::warn!("multiplex-peer init failed for thread {index}: port out of range");
                return self.drop_shared();
            };
            let addr = SocketAddr::new(pool.ip, port);
            let sock = match sockets::udp_relay(addr, addressing.sock_buf_size, false) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("multiplex-peer init failed for thread {index} on {addr}: {e}; using a relay socket per allocation");
                    return self.drop_shared();
                }
            };
            match self.register(sock, Arc::clone(pool)) {
                Some(id) => self.shared.push((pool.ip, id)),
                None => return self.drop_shared(),
            }
        }
        for (ip, id) in &self.shared {
            if let Some(s) = self.sockets.get(id.0 as usize) {
                tracing::info!("{}. Multiplex relay socket of thread {index}: {}", Family::of(*ip).label(), s.local);
            }
        }
    }

    fn drop_shared(&mut self) {
        for (_, id) in std::mem::take(&mut self.shared) {
            if self.sockets.contains(id.0 as usize) {
                let mut s = self.sockets.remove(id.0 as usize);
                let _ = self.registry.deregister(&mut s.socket);
            }
        }
    }

    fn register(&mut self, std_sock: std::net::UdpSocket, pool: Arc<PortPool>) -> Option<RelayId> {
        let local = std_sock.local_addr().ok()?;
        // Best effort: without it relayed data just keeps the default marks.
        let _ = super::udp::enable_tos_ttl(std::os::fd::AsRawFd::as_raw_fd(&std_sock), local.is_ipv6());
        let mut socket = UdpSocket::from_std(std_sock);
        let entry = self.sockets.vacant_entry();
        let key = entry.key();
        self.registry.register(&mut socket, Token(RELAY_TOKEN_BASE + key), Interest::READABLE).ok()?;
        entry.insert(RelaySocket { socket, local, tos: 0, pool });
        Some(RelayId(key as u32))
    }
}

impl ThreadRelays {
    /// A TCP relay listener on a relay address of the requested family.
    fn bind_tcp(&mut self, req: RelayRequest) -> Result<RelayBinding, RelayError> {
        let addressing = Arc::clone(&self.addressing);
        let pool = addressing.pick(req.family, req.client.ip()).ok_or(RelayError::FamilyNotSupported)?;
        let pool = if Family::of(pool.ip) == req.family {
            pool
        } else {
            addressing.pools.iter().find(|p| Family::of(p.ip) == req.family).ok_or(RelayError::FamilyNotSupported)?
        };
        let ip = pool.ip;
        let (port, listener) = pool
            .take_any(self.now_ms, |port| sockets::tcp_relay_listener(SocketAddr::new(ip, port)).ok())
            .ok_or(RelayError::NoPorts)?;
        let local = SocketAddr::new(ip, port);
        let mut listener = TcpListener::from_std(listener);
        let entry = self.tcp.vacant_entry();
        let key = entry.key();
        if key >= TCP_RELAY_ID_FLAG as usize
            || self.registry.register(&mut listener, Token(TCP_RELAY_TOKEN_BASE + key), Interest::READABLE).is_err()
        {
            pool.release(port);
            return Err(RelayError::NoPorts);
        }
        entry.insert(TcpRelay { listener, local, pool: Arc::clone(pool) });
        Ok(RelayBinding {
            id: RelayId(TCP_RELAY_ID_FLAG | key as u32),
            local,
            advertised: addressing.advertise(local),
            reservation_token: None,
            shared: false,
        })
    }

    /// The TCP relay listener behind a relay id, if it is one.
    pub fn tcp_relay(&self, id: RelayId) -> Option<&TcpRelay> {
        if id.0 & TCP_RELAY_ID_FLAG == 0 {
            return None;
        }
        self.tcp.get((id.0 & !TCP_RELAY_ID_FLAG) as usize)
    }
}

impl RelayProvider for ThreadRelays {
    fn bind_relay(&mut self, req: RelayRequest) -> Result<RelayBinding, RelayError> {
        if req.tcp {
            return self.bind_tcp(req);
        }
        if !self.shared.is_empty() {
            let pool = self.addressing.pick(req.family, req.client.ip()).ok_or(RelayError::FamilyNotSupported)?;
            let ip = if Family::of(pool.ip) == req.family {
                pool.ip
            } else {
                self.shared.iter().map(|(ip, _)| *ip).find(|ip| Family::of(*ip) == req.family).ok_or(RelayError::FamilyNotSupported)?
            };
            let &(_, id) = self.shared.iter().find(|(s, _)| *s == ip).ok_or(RelayError::NoPorts)?;
            let local = self.sockets.get(id.0 as usize).map(|s| s.local).ok_or(RelayError::NoPorts)?;
            return Ok(RelayBinding {
                id,
                local,
                advertised: self.addressing.advertise(local),
                reservation_token: None,
                shared: true,
            });
        }
        let buf = self.addressing.sock_buf_size;
        let df = req.dont_fragment;
        let addressing = Arc::clone(&self.addressing);
        let now = self.now_ms;
        let (pool, port, sock, token) = match req.port {
            PortRequest::Reserved(token) => {
                let pool = addressing.pools.iter().find(|p| p.has_reservation(token)).ok_or(RelayError::BadToken)?;
                let ip = pool.ip;
                let (port, sock) = pool
                    .take_reserved(now, token, |port| sockets::udp_relay(SocketAddr::new(ip, port), buf, df).ok())
                    .ok_or(RelayError::NoPorts)?;
                (Arc::clone(pool), port, sock, None)
            }
            other => {
                let pool = addressing.pick(req.family, req.client.ip()).ok_or(RelayError::FamilyNotSupported)?;
                // The preferred pool may be of the client's family but not the
                // requested one: fall back to the family's pools.
                let pool = if Family::of(pool.ip) == req.family {
                    pool
                } else {
                    addressing
                        .pools
                        .iter()
                        .find(|p| Family::of(p.ip) == req.family)
                        .ok_or(RelayError::FamilyNotSupported)?
                };
                let ip = pool.ip;
                let bind = |port: u16| sockets::udp_relay(SocketAddr::new(ip, port), buf, df).ok();
                match other {
                    PortRequest::Even { reserve_next } => {
                        let (port, sock, token) = pool.take_even(now, reserve_next, bind).ok_or(RelayError::NoPorts)?;
                        (Arc::clone(pool), port, sock, token)
                    }
                    _ => {
                        let (port, sock) = pool.take_any(now, bind).ok_or(RelayError::NoPorts)?;
                        (Arc::clone(pool), port, sock, None)
                    }
                }
            }
        };
        let local = SocketAddr::new(pool.ip, port);
        let Some(id) = self.register(sock, Arc::clone(&pool)) else {
            pool.release(port);
            return Err(RelayError::NoPorts);
        };
        Ok(RelayBinding { id, local, advertised: addressing.advertise(local), reservation_token: token, shared: false })
    }

    fn release_relay(&mut self, id: RelayId) {
        if id.0 & TCP_RELAY_ID_FLAG != 0 {
            let key = (id.0 & !TCP_RELAY_ID_FLAG) as usize;
            if self.tcp.contains(key) {
                let mut t = self.tcp.remove(key);
                let _ = self.registry.deregister(&mut t.listener);
                let port = t.local.port();
                drop(t.listener);
                t.pool.release(port);
            }
            return;
        }
        if self.shared.iter().any(|(_, s)| *s == id) {
            return;
        }
        let key = id.0 as usize;
        if self.sockets.contains(key) {
            let mut s = self.sockets.remove(key);
            let _ = self.registry.deregister(&mut s.socket);
            let port = s.local.port();
            drop(s.socket);
            s.pool.release(port);
        }
    }

    fn supports(&self, family: Family) -> bool {
        self.addressing.supports(family)
    }

    fn multiplexed(&self) -> bool {
        !self.shared.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addressing(external: &[(&str, Option<&str>)]) -> RelayAddressing {
        let ext = external.iter().map(|(p, q)| (p.parse().unwrap(), q.map(|q| q.parse().unwrap()))).collect();
        RelayAddressing::new(Vec::new(), ext, 0)
    }

    #[test]
    fn external_ip_single_form_maps_non_loopback_relays_of_its_family() {
        let a = addressing(&[("203.0.113.4", None)]);
        assert_eq!(a.advertise("10.0.0.5:50000".parse().unwrap()), "203.0.113.4:50000".parse().unwrap());
        assert_eq!(a.advertise("127.0.0.1:50000".parse().unwrap()), "127.0.0.1:50000".parse().unwrap());
        assert_eq!(a.advertise("[2001:db8::1]:50000".parse().unwrap()), "[2001:db8::1]:50000".parse().unwrap());
    }

    #[test]
    fn external_ip_pair_form_maps_only_its_private_address() {
        let a = addressing(&[("203.0.113.4", Some("10.0.0.5")), ("2001:db8::99", Some("fd00::5"))]);
        assert_eq!(a.advertise("10.0.0.5:50000".parse().unwrap()), "203.0.113.4:50000".parse().unwrap());
        assert_eq!(a.advertise("10.0.0.6:50000".parse().unwrap()), "10.0.0.6:50000".parse().unwrap());
        assert_eq!(a.advertise("[fd00::5]:1".parse().unwrap()), "[2001:db8::99]:1".parse().unwrap());
    }
}
