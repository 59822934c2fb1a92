//! One relay thread: its poll, its listener sockets (one SO_REUSEPORT socket
//! per listening address), its relay sockets and its [`Server`].
//!
//! The loop works in batches: it drains ready sockets (up to a budget each),
//! feeding every datagram to the core, and sends what the core queued once per
//! batch, so the send side can be batched per socket.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use super::provider::{RelayAddressing, ThreadRelays, RELAY_TOKEN_BASE};
use crate::core::{CoreConfig, Dest, Now, Outputs, RelayId, Server};

/// The waker's token.
pub const WAKER_TOKEN: Token = Token(usize::MAX - 1);
/// Datagrams read from one socket before moving to the next ready one.
const DRAIN_BUDGET: usize = 64;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// The process clock all threads share, so `Now::ms` agrees across threads.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock { origin: Instant::now() }
    }
    pub fn now(&self) -> Now {
        let ms = self.origin.elapsed().as_millis() as u64;
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Now::new(ms, unix)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

struct Listener {
    socket: UdpSocket,
    local: SocketAddr,
}

/// Everything a relay thread starts with.
pub struct ThreadSetup {
    pub index: u32,
    pub core: Arc<CoreConfig>,
    pub addressing: Arc<RelayAddressing>,
    pub listeners: Vec<std::net::UdpSocket>,
    pub clock: Clock,
    pub stop: Arc<AtomicBool>,
}

/// A thread prepared but not yet running (so the caller can collect wakers
/// before spawning).
pub struct RelayThread {
    poll: Poll,
    waker: Arc<Waker>,
    server: Server,
    relays: ThreadRelays,
    listeners: Vec<Listener>,
    by_local: HashMap<SocketAddr, usize>,
    clock: Clock,
    stop: Arc<AtomicBool>,
    out: Outputs,
    /// Sockets that still had data when their budget ran out.
    pending: Vec<Token>,
}

impl RelayThread {
    pub fn new(setup: ThreadSetup) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let mut listeners = Vec::new();
        let mut by_local = HashMap::new();
        for (i, std_sock) in setup.listeners.into_iter().enumerate() {
            let local = std_sock.local_addr()?;
            let mut socket = UdpSocket::from_std(std_sock);
            poll.registry().register(&mut socket, Token(i), Interest::READABLE)?;
            by_local.insert(local, i);
            listeners.push(Listener { socket, local });
        }
        let relays = ThreadRelays::new(poll.registry().try_clone()?, setup.addressing);
        Ok(RelayThread {
            poll,
            waker,
            server: Server::new(setup.core, setup.index),
            relays,
            listeners,
            by_local,
            clock: setup.clock,
            stop: setup.stop,
            out: Outputs::default(),
            pending: Vec::new(),
        })
    }

    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Run until the stop flag is set (and the waker woken).
    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let timeout = if !self.pending.is_empty() {
                Some(Duration::ZERO)
            } else {
                let now = self.clock.now().ms;
                let next = self.server.next_timeout().map(|d| d.saturating_sub(now)).unwrap_or(1000);
                Some(Duration::from_millis(next.min(1000)))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("relay thread {}: poll failed: {e}", self.server_index());
                    break;
                }
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let mut ready: Vec<Token> = std::mem::take(&mut self.pending);
            ready.extend(events.iter().map(|e| e.token()).filter(|&t| t != WAKER_TOKEN));
            ready.sort_unstable();
            ready.dedup();
            let now = self.clock.now();
            self.relays.now_ms = now.ms;
            for token in ready {
                let more = if token.0 >= RELAY_TOKEN_BASE {
                    self.drain_relay(now, token, &mut buf)
                } else {
                    self.drain_listener(now, token.0, &mut buf)
                };
                if more {
                    self.pending.push(token);
                }
            }
            self.flush();
            self.server.handle_timeouts(self.clock.now(), &mut self.relays);
        }
        self.server.shutdown(&mut self.relays);
    }

    fn server_index(&self) -> u32 {
        self.server.thread_index()
    }

    /// Read up to the budget from a listener; true if it may have more.
    fn drain_listener(&mut self, now: Now, i: usize, buf: &mut [u8]) -> bool {
        for _ in 0..DRAIN_BUDGET {
            let Some(l) = self.listeners.get(i) else { return false };
            match l.socket.recv_from(buf) {
                Ok((n, from)) => {
                    let local = l.local;
                    self.server.handle_client_datagram(now, local, from, &buf[..n], &mut self.relays, &mut self.out);
                    if self.out.transmits.len() >= 64 {
                        self.flush();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }

    fn drain_relay(&mut self, now: Now, token: Token, buf: &mut [u8]) -> bool {
        let key = token.0 - RELAY_TOKEN_BASE;
        for _ in 0..DRAIN_BUDGET {
            let Some(s) = self.relays.sockets.get(key) else { return false };
            match s.socket.recv_from(buf) {
                Ok((n, from)) => {
                    self.server.handle_peer_datagram(now, RelayId(key as u32), from, &buf[..n], &mut self.out);
                    if self.out.transmits.len() >= 64 {
                        self.flush();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }

    /// Send everything the core queued. A full socket buffer drops the
    /// datagram, as UDP would.
    fn flush(&mut self) {
        for t in &self.out.transmits {
            let data = &self.out.buf[t.range.clone()];
            let _ = match t.dest {
                Dest::Client { local, to } => match self.by_local.get(&local).and_then(|&i| self.listeners.get(i)) {
                    Some(l) => l.socket.send_to(data, to),
                    None => continue,
                },
                Dest::Peer { relay, to } => match self.relays.sockets.get(relay.0 as usize) {
                    Some(s) => s.socket.send_to(data, to),
                    None => continue,
                },
            };
        }
        self.out.clear();
    }
}
