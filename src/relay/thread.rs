//! One relay thread: its poll, its listener sockets (one SO_REUSEPORT socket
//! per listening address), its relay sockets and its [`Server`].
//!
//! The loop works in drains: it reads every ready socket in batches
//! (`recvmmsg`, see [`super::udp`]), feeding each datagram to the core, then
//! sends what the core queued, grouped per socket and per destination so
//! `sendmmsg` and UDP GSO can carry many datagrams per syscall.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

mod control;
mod http;
mod mobility;
mod stats;
mod tcp_relay;
pub use tcp_relay::Mailbox;

use super::provider::{RelayAddressing, ThreadRelays, RELAY_TOKEN_BASE, TCP_RELAY_TOKEN_BASE};
use super::tcp::{Conn, ReadOutcome};
use super::udp::{self, RecvBatch, UdpCaps, UdpStats};
use crate::core::{CoreConfig, Dest, Now, Outputs, RelayId, Server, TcpAction, Transport};

/// Requests parked while the user database answers.
mod db;

/// The waker's token.
pub const WAKER_TOKEN: Token = Token(usize::MAX - 1);
/// Tokens: UDP listeners below this, then TCP listeners.
const TCP_LISTENER_BASE: usize = 1 << 16;
/// Tokens of TCP connections start here (relay sockets start at RELAY_TOKEN_BASE).
const CONN_BASE: usize = 1 << 17;
/// Connections per thread that have not allocated yet; past this the oldest
/// such connection is closed to make room (a flood of idle connections cannot
/// lock out real clients).
const MAX_UNALLOCATED_CONNS: usize = 4096;
/// Datagrams read from one socket before moving to the next ready one.
const DRAIN_BUDGET: usize = 2 * udp::BATCH;
/// Receive slot size: the largest UDP payload, so nothing is truncated.
const SLOT_SIZE: usize = 65_536;
/// Queued datagrams that trigger a flush in the middle of a drain.
const FLUSH_AT: usize = 256;
/// Interval of the `--udp-recvmmsg-log` / `--udp-sendmmsg-log` lines.
const STATS_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// After an accept failure other than WouldBlock (EMFILE, ENFILE, ENOBUFS):
/// how long before the listener is tried again. Epoll is edge-triggered, so
/// the connections still queued would otherwise wait for the next new one.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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
    /// Bound to 0.0.0.0 / ::: the local address of each datagram comes from
    /// packet info, and answers name their source address.
    wildcard: bool,
    /// TOS the socket currently sends with (cached to skip setsockopt).
    tos: u8,
}

/// A DTLS session and what the thread tracks about it.
struct DtlsEntry {
    session: crate::dtls::DtlsSession,
    listener: usize,
    created_ms: u64,
    allocated: bool,
}

/// Which socket a queued datagram leaves through (for its TOS cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Via {
    Listener(usize),
    Relay(usize),
}

/// Take a PROXY protocol header from the front of a connection's stream:
/// `Ok(true)` when the header was consumed (the client address is now the
/// one it names), `Ok(false)` when more bytes are needed.
fn take_proxy_header(c: &mut Conn) -> Result<bool, &'static str> {
    use super::proxy_protocol::{parse, ProxyParse};
    let (done, len, source) = match parse(c.decoder.peek()) {
        ProxyParse::NeedMore => return Ok(false),
        ProxyParse::Invalid(why) => return Err(why),
        ProxyParse::Done { header_len, source, .. } => (true, header_len, source),
    };
    if done {
        c.decoder.skip(len);
        if let Some(src) = source {
            c.peer = src;
        }
        c.proxy_pending = false;
    }
    Ok(done)
}

/// The unspecified address of `ip`'s family (the key of a wildcard listener).
fn unspecified_like(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// Fast-path switches of the process.
#[derive(Debug, Clone)]
pub struct FastPath {
    pub caps: Arc<UdpCaps>,
    pub recv_log: bool,
    pub send_log: bool,
    /// `--multiplex-peer` base port, when enabled.
    pub multiplex_port: Option<u16>,
    /// `--udp-coalesce-us`: the longest coalescing wait (0 = off); see [`Coalescer`].
    pub coalesce: Duration,
}

/// Interrupt moderation in user space.
///
/// When traffic trickles in (each wake-up finds one or two datagrams), every
/// datagram pays a wake-up, a receive and a send syscall of its own. After
/// such a thin round, waiting a little before polling again lets the next
/// datagrams queue up, so one `recvmmsg`/`sendmmsg` round carries several.
/// The wait is sized from the thread's measured arrival rate to collect about
/// [`Coalescer::TARGET`] datagrams, capped at `max`, and skipped when the rate
/// is too low for the wait to gather at least [`Coalescer::WORTHWHILE`]
/// (an idle or quiet thread never waits) and after full rounds (the queue is
/// already batching). Answers of the round are sent before the wait, so the
/// added latency is at most `max` for datagrams that arrive during it.
#[derive(Debug)]
pub struct Coalescer {
    max: Duration,
    /// Arrival rate estimate, datagrams per microsecond (EWMA).
    rate: f64,
    last: Instant,
    /// The round being accounted followed a wait.
    waited: bool,
    /// Thin rounds to let pass without waiting, after waits that gathered
    /// too little (a ping-pong client: the wait only delays its next request).
    backoff: u32,
    /// Current back-off length; doubles on each fruitless wait.
    backoff_len: u32,
}

impl Coalescer {
    /// Datagrams a coalesced round aims for.
    pub const TARGET: f64 = udp::BATCH as f64;
    /// The least a wait must be expected to gather to be worth its cost.
    pub const WORTHWHILE: f64 = 4.0;
    /// Rounds with at least this many datagrams (a socket's drain budget) are
    /// backlogged: poll again at once.
    pub const FULL_ROUND: usize = DRAIN_BUDGET;
    /// Longest back-off, in rounds, after fruitless waits.
    pub const MAX_BACKOFF: u32 = 256;

    pub fn new(max: Duration) -> Self {
        Coalescer { max, rate: 0.0, last: Instant::now(), waited: false, backoff: 0, backoff_len: 0 }
    }

    /// Account a round of `datagrams` that ended at `now`; the wait to take
    /// before polling again, if any.
    pub fn after_round(&mut self, datagrams: usize, now: Instant) -> Option<Duration> {
        if self.max.is_zero() {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64() * 1e6;
        self.last = now;
        if elapsed > 0.0 {
            let inst = datagrams as f64 / elapsed.max(1.0);
            // Long idle gaps reset the estimate quickly; busy periods smooth it.
            self.rate = 0.7 * self.rate + 0.3 * inst;
        }
        // Judge the previous wait by what it gathered.
        if std::mem::take(&mut self.waited) {
            if (datagrams as f64) < Self::WORTHWHILE {
                self.backoff_len = (self.backoff_len * 2).clamp(1, Self::MAX_BACKOFF);
                self.backoff = self.backoff_len;
            } else {
                self.backoff_len = 0;
            }
        }
        if datagrams == 0 || datagrams >= Self::FULL_ROUND {
            return None;
        }
        if self.backoff > 0 {
            self.backoff -= 1;
            return None;
        }
        let max_us = self.max.as_secs_f64() * 1e6;
        if self.rate * max_us < Self::WORTHWHILE {
            return None;
        }
        let want_us = (Self::TARGET / self.rate).min(max_us);
        self.waited = true;
        Some(Duration::from_micros(want_us as u64))
    }
}

/// Everything a relay thread starts with.
pub struct ThreadSetup {
    pub index: u32,
    /// TCP listener sockets of this thread (SO_REUSEPORT), with whether each
    /// expects a PROXY protocol header.
    pub tcp_listeners: Vec<(std::net::TcpListener, bool)>,
    /// `--max-allocate-timeout`: a connection that has not allocated by then is closed.
    pub conn_timeout: Duration,
    /// TLS configuration (reloadable) when TLS is on.
    pub tls: Option<Arc<crate::tls::ReloadableTls>>,
    /// DTLS server (`--dtls`): DTLS is accepted on every UDP listener, told
    /// apart from STUN by its first byte (RFC 7983).
    pub dtls: Option<crate::dtls::DtlsServer>,
    pub core: Arc<CoreConfig>,
    pub addressing: Arc<RelayAddressing>,
    pub listeners: Vec<std::net::UdpSocket>,
    pub clock: Clock,
    pub stop: Arc<AtomicBool>,
    pub fast: FastPath,
    /// The user database service's queue, when a database is configured.
    pub db: Option<crate::userdb::service::DbQueue>,
    /// `--redis-statsdb`: allocation reports go here (never blocks).
    pub stats_sink: Option<crate::userdb::statsdb::StatsSink>,
    /// HTTP on the TCP listeners (`--acme-redirect` and friends).
    pub http: Arc<crate::relay::http_port::HttpPortOptions>,
}

/// A thread prepared but not yet running (so the caller can collect wakers
/// before spawning).
pub struct RelayThread {
    index: u32,
    poll: Poll,
    waker: Arc<Waker>,
    server: Server,
    relays: ThreadRelays,
    listeners: Vec<Listener>,
    by_local: HashMap<SocketAddr, usize>,
    clock: Clock,
    stop: Arc<AtomicBool>,
    fast: FastPath,
    stats: UdpStats,
    out: Outputs,
    /// Sockets that still had data when their budget ran out.
    pending: Vec<Token>,
    tcp_listeners: Vec<(TcpListener, SocketAddr, bool)>,
    conns: Slab<Conn>,
    /// (listener address, client address) → connection.
    by_conn: HashMap<(SocketAddr, SocketAddr), usize>,
    conn_timeout: Duration,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
    dtls: Option<crate::dtls::DtlsServer>,
    http: Arc<crate::relay::http_port::HttpPortOptions>,
    /// DTLS sessions by (listener address, client address).
    dtls_sessions: HashMap<(SocketAddr, SocketAddr), DtlsEntry>,
    next_dtls_timer: Instant,
    /// Connections with queued output to write after a flush.
    dirty: Vec<usize>,
    frame: Vec<u8>,
    /// Flush scratch: (socket, source IP for wildcard listeners, TOS,
    /// destination, transmit index).
    order: Vec<(Via, Option<std::net::IpAddr>, u8, SocketAddr, u32)>,
    /// Requests waiting for the user database (see `db.rs`).
    db: Option<db::DbWait>,
    /// RFC 6062: CONNECTION-ID → the peer data connection's key.
    tcp_pipes: HashMap<u32, usize>,
    /// Every thread's mailbox, for connections bound on another thread.
    mailboxes: Option<Arc<Vec<Mailbox>>>,
    /// Every thread's management queue (CLI, metrics, reloads).
    control: Option<Arc<Vec<crate::relay::control::ControlBox>>>,
    /// Scratch for the core's TCP relay actions.
    tcp_actions: Vec<TcpAction>,
    /// `--redis-statsdb` reporting.
    stats_out: Option<stats::StatsReporter>,
    /// Tokens to handle again at a set time (process-clock ms): listeners
    /// whose accept failed (see [`ACCEPT_RETRY`]) and TCP relay pipes over
    /// their `max-bps`.
    wake_at: Vec<(u64, Token)>,
    /// An accept failure was logged and no accept has succeeded since: one
    /// warning per episode, not one per failure.
    accept_failing: bool,
    /// RFC 8016: moved client 5-tuples whose allocation lives on another
    /// thread (see `mobility.rs`).
    forwards: HashMap<(SocketAddr, SocketAddr), mobility::Forward>,
}

impl RelayThread {
    pub fn new(setup: ThreadSetup) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let db = setup.db.map(|q| db::DbWait::new(crate::userdb::service::DbClient::new(&q, Arc::clone(&waker))));
        let mut listeners = Vec::new();
        let mut by_local = HashMap::new();
        for (i, std_sock) in setup.listeners.into_iter().enumerate() {
            let local = std_sock.local_addr()?;
            let wildcard = local.ip().is_unspecified();
            if wildcard {
                udp::enable_pktinfo(std_sock.as_raw_fd(), local.is_ipv6())?;
            }
            // Best effort: without it relayed data keeps the default marks.
            let _ = udp::enable_tos_ttl(std_sock.as_raw_fd(), local.is_ipv6());
            let mut socket = UdpSocket::from_std(std_sock);
            poll.registry().register(&mut socket, Token(i), Interest::READABLE)?;
            by_local.insert(local, i);
            listeners.push(Listener { socket, local, wildcard, tos: 0 });
        }
        let mut tcp_listeners = Vec::new();
        for (i, (std_l, proxy)) in setup.tcp_listeners.into_iter().enumerate() {
            let local = std_l.local_addr()?;
            let mut l = TcpListener::from_std(std_l);
            poll.registry().register(&mut l, Token(TCP_LISTENER_BASE + i), Interest::READABLE)?;
            tcp_listeners.push((l, local, proxy));
        }
        let mut relays = ThreadRelays::new(poll.registry().try_clone()?, setup.addressing);
        if let Some(base) = setup.fast.multiplex_port {
            relays.setup_multiplex(setup.index, base);
        }
        Ok(RelayThread {
            index: setup.index,
            poll,
            waker,
            server: Server::new(setup.core, setup.index),
            relays,
            listeners,
            by_local,
            clock: setup.clock,
            stop: setup.stop,
            fast: setup.fast,
            stats: UdpStats::default(),
            out: Outputs::default(),
            pending: Vec::new(),
            tcp_listeners,
            conns: Slab::new(),
            by_conn: HashMap::new(),
            conn_timeout: setup.conn_timeout,
            tls: setup.tls,
            dtls: setup.dtls,
            http: setup.http,
            dtls_sessions: HashMap::new(),
            next_dtls_timer: Instant::now(),
            dirty: Vec::new(),
            frame: Vec::new(),
            order: Vec::new(),
            db,
            tcp_pipes: HashMap::new(),
            mailboxes: None,
            control: None,
            tcp_actions: Vec::new(),
            stats_out: setup.stats_sink.map(stats::StatsReporter::new),
            wake_at: Vec::new(),
            accept_failing: false,
            forwards: HashMap::new(),
        })
    }

    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Run until the stop flag is set (and the waker woken).
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut batch = RecvBatch::new(SLOT_SIZE);
        let mut ready: Vec<Token> = Vec::new();
        let mut next_stats = Instant::now() + STATS_LOG_INTERVAL;
        let mut coalescer = Coalescer::new(self.fast.coalesce);
        let mut next_conn_sweep = 0u64;
        loop {
            let timeout = if !self.pending.is_empty() {
                Duration::ZERO
            } else {
                let now = self.clock.now().ms;
                let next = self.server.next_timeout().map(|d| d.saturating_sub(now)).unwrap_or(1000);
                let next = self.wake_at.iter().map(|&(at, _)| at.saturating_sub(now)).fold(next, u64::min);
                Duration::from_millis(next.min(1000))
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("relay thread {}: poll failed: {e}", self.index);
                    break;
                }
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            ready.clear();
            ready.append(&mut self.pending);
            let mut woken = false;
            for e in events.iter() {
                if e.token() == WAKER_TOKEN {
                    woken = true;
                } else {
                    ready.push(e.token());
                }
            }
            if !self.wake_at.is_empty() {
                let now_ms = self.clock.now().ms;
                self.wake_at.retain(|&(at, token)| {
                    if at <= now_ms {
                        ready.push(token);
                        false
                    } else {
                        true
                    }
                });
            }
            if ready.len() > 1 {
                ready.sort_unstable();
                ready.dedup();
            }
            let now = self.clock.now();
            self.relays.now_ms = now.ms;
            if woken {
                self.drain_mailbox(now);
                self.drain_control(now);
            }
            let mut round = 0;
            for &token in &ready {
                let (read, more) = match token.0 {
                    t if t >= TCP_RELAY_TOKEN_BASE => self.accept_tcp_relay(now, t - TCP_RELAY_TOKEN_BASE),
                    t if !(TCP_LISTENER_BASE..RELAY_TOKEN_BASE).contains(&t) => self.drain(now, token, &mut batch),
                    t if t < CONN_BASE => self.accept(now, t - TCP_LISTENER_BASE),
                    t => self.conn_ready(now, t - CONN_BASE),
                };
                round += read;
                if more {
                    self.pending.push(token);
                }
            }
            self.db_answers(now);
            self.flush();
            let later = self.clock.now();
            self.server.handle_timeouts(later, &mut self.relays);
            self.server.handle_tcp_timeouts(later, &mut self.out);
            if now.ms >= next_conn_sweep {
                self.sweep_conns(now.ms);
                self.sweep_forwards(now.ms);
                next_conn_sweep = now.ms + 1000;
            }
            self.dtls_timers(now);
            // Answers and TCP relay actions the timers and sweeps produced.
            self.flush();
            if let Some(r) = self.stats_out.as_mut() {
                r.forward(&mut self.server, now.ms);
            }
            if let Some(wait) = coalescer.after_round(round, Instant::now()) {
                if self.pending.is_empty() {
                    std::thread::sleep(wait);
                }
            }
            if (self.fast.recv_log || self.fast.send_log) && Instant::now() >= next_stats {
                self.log_stats();
                next_stats = Instant::now() + STATS_LOG_INTERVAL;
            }
        }
        self.server.shutdown(&mut self.relays);
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close_conn(k, "server shutdown");
        }
    }

    /// A DTLS record from a client on listener `li`: the cookie exchange for
    /// new peers, decryption for known ones; decrypted messages go to the core.
    fn dtls_datagram(&mut self, now: Now, li: usize, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        let Some(server) = &self.dtls else { return };
        let mono = Instant::now();
        let mut wire = Vec::new();
        let mut app = Vec::new();
        let key = (local, from);
        let dead = match self.dtls_sessions.get_mut(&key) {
            Some(e) => e.session.handle_datagram(mono, data, &mut wire, &mut app).is_err() || e.session.is_closed(),
            None => {
                if let Ok(Some(session)) = server.accept_datagram(mono, from, data, &mut wire) {
                    self.dtls_sessions.insert(key, DtlsEntry { session, listener: li, created_ms: now.ms, allocated: false });
                }
                false
            }
        };
        self.send_dtls_wire(li, local, from, &wire);
        let moved = self.dtls_plaintext(now, local, from, &app);
        if dead && !moved {
            self.close_dtls(key);
        }
    }

    /// Decrypted messages of the DTLS session (`local`, `from`), to the core. True when a mobility resume moved the session to
    /// the thread owning its allocation (what follows goes there too).
    fn dtls_plaintext(&mut self, now: Now, local: SocketAddr, from: SocketAddr, app: &[Vec<u8>]) -> bool {
        for msg in app {
            self.server.handle_client_datagram(now, Transport::Dtls, local, from, msg, &mut self.relays, &mut self.out);
            self.park_if_waiting(now, Transport::Dtls, local, from, msg);
            if let Some(owner) = self.server.take_forward() {
                if self.hand_over_dtls(now, owner, local, from, msg) {
                    return true;
                }
                self.close_dtls((local, from));
                return false;
            }
        }
        if let Some(e) = self.dtls_sessions.get_mut(&(local, from)) {
            if !e.allocated && !app.is_empty() {
                e.allocated = self.server.allocation_on(Transport::Dtls, from, local).is_some();
            }
        }
        false
    }

    /// Send DTLS records to `to` through listener `li` (from `local`'s IP when
    /// the listener is a wildcard one).
    fn send_dtls_wire(&mut self, li: usize, local: SocketAddr, to: SocketAddr, wire: &[Vec<u8>]) {
        if wire.is_empty() {
            return;
        }
        let Some(l) = self.listeners.get(li) else { return };
        let src = l.wildcard.then_some(local.ip());
        let group: Vec<(SocketAddr, &[u8])> = wire.iter().map(|w| (to, w.as_slice())).collect();
        udp::send_batch(l.socket.as_raw_fd(), &group, src, &self.fast.caps, &mut self.stats);
    }

    fn close_dtls(&mut self, key: (SocketAddr, SocketAddr)) {
        if let Some(mut e) = self.dtls_sessions.remove(&key) {
            let mut wire = Vec::new();
            e.session.close(&mut wire);
            self.send_dtls_wire(e.listener, key.0, key.1, &wire);
            if e.allocated {
                self.server.client_closed(Transport::Dtls, key.0, key.1, &mut self.relays);
            }
        }
    }

    /// DTLS retransmission timers, and sessions that never allocated.
    fn dtls_timers(&mut self, now: Now) {
        let mono = Instant::now();
        if self.dtls_sessions.is_empty() || mono < self.next_dtls_timer {
            return;
        }
        self.next_dtls_timer = mono + Duration::from_millis(100);
        let limit = self.conn_timeout.as_millis() as u64;
        let mut dead = Vec::new();
        let mut sends = Vec::new();
        for (key, e) in self.dtls_sessions.iter_mut() {
            if !e.allocated && now.ms.saturating_sub(e.created_ms) >= limit {
                dead.push(*key);
                continue;
            }
            if e.session.poll_timeout().is_some_and(|t| t <= mono) {
                let mut wire = Vec::new();
                if e.session.handle_timeout(mono, &mut wire).is_err() {
                    dead.push(*key);
                }
                sends.push((e.listener, key.0, key.1, wire));
            }
        }
        for (li, local, to, wire) in sends {
            self.send_dtls_wire(li, local, to, &wire);
        }
        for key in dead {
            self.close_dtls(key);
        }
    }

    /// Accept what a TCP listener has queued (up to a budget).
    fn accept(&mut self, now: Now, i: usize) -> (usize, bool) {
        for n in 0..DRAIN_BUDGET {
            let Some((l, local, proxy)) = self.tcp_listeners.get(i) else { return (n, false) };
            let (local, proxy) = (*local, *proxy);
            match l.accept() {
                Ok((mut stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    self.accept_ok();
                    self.make_room_for_unallocated();
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if self.poll.registry().register(&mut stream, Token(CONN_BASE + key), Interest::READABLE).is_err() {
                        continue;
                    }
                    entry.insert(Conn::new(stream, peer, local, now.ms, proxy));
                    if !proxy {
                        self.by_conn.insert((local, peer), key);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (n, false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE and the like: stop, retry after a pause.
                    self.accept_failed(Token(TCP_LISTENER_BASE + i), "TCP", local, &e);
                    return (n, false);
                }
            }
        }
        (DRAIN_BUDGET, true)
    }

    /// An accept on `token` failed with something other than WouldBlock
    /// (typically EMFILE/ENFILE): the listener is retried after
    /// [`ACCEPT_RETRY`] rather than at once (no busy loop) or never (the
    /// queued connections would get no new edge). Logs once per episode.
    fn accept_failed(&mut self, token: Token, what: &str, local: SocketAddr, e: &io::Error) {
        if !self.accept_failing {
            self.accept_failing = true;
            tracing::warn!("{what} accept on {local} failed: {e}; retrying every {} ms until it works", ACCEPT_RETRY.as_millis());
        }
        let at = self.clock.now().ms + ACCEPT_RETRY.as_millis() as u64;
        self.wake_later(token, at);
    }

    /// Handle `token` again at `at_ms` (once: a token already waiting keeps
    /// its time).
    pub(super) fn wake_later(&mut self, token: Token, at_ms: u64) {
        if !self.wake_at.iter().any(|&(_, t)| t == token) {
            self.wake_at.push((at_ms, token));
        }
    }

    /// An accept succeeded: ends an accept-failure episode.
    fn accept_ok(&mut self) {
        if self.accept_failing {
            self.accept_failing = false;
            tracing::info!("relay thread {}: accepting connections again", self.index);
        }
    }

    /// Close the oldest connection that never allocated when at the cap.
    fn make_room_for_unallocated(&mut self) {
        // Fewer connections than the cap in all: nothing to count.
        if self.conns.len() < MAX_UNALLOCATED_CONNS {
            return;
        }
        let unallocated = self.conns.iter().filter(|(_, c)| !c.allocated && c.pipe.is_none()).count();
        if unallocated < MAX_UNALLOCATED_CONNS {
            return;
        }
        if let Some(k) = self.conns.iter().filter(|(_, c)| !c.allocated && c.pipe.is_none()).min_by_key(|(_, c)| c.accepted_ms).map(|(k, _)| k) {
            self.close_conn(k, "too many connections without an allocation");
        }
    }

    /// A connection is readable and/or writable.
    fn conn_ready(&mut self, now: Now, key: usize) -> (usize, bool) {
        let Some(c) = self.conns.get_mut(key) else { return (0, false) };
        if c.pipe.is_some() {
            return self.pipe_ready(now, key);
        }
        if c.want_write {
            if let Err(why) = c.write() {
                self.close_conn(key, why);
                return (0, false);
            }
            if self.close_if_answered(key) {
                return (0, false);
            }
            self.update_interest(key);
        }
        let cfgs = self.tls.as_ref().map(|t| t.configs());
        let Some(c) = self.conns.get_mut(key) else { return (0, false) };
        let outcome = c.read(cfgs.as_deref());
        let mut frames = 0;
        loop {
            let Some(c) = self.conns.get_mut(key) else { return (frames, false) };
            if !c.proxy_pending && matches!(c.layer, super::tcp::Layer::Sniff) {
                match c.sniff(cfgs.as_deref()) {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(why) => {
                        self.close_conn(key, why);
                        return (frames, false);
                    }
                }
            }
            if c.proxy_pending {
                match take_proxy_header(c) {
                    Ok(true) => {
                        self.by_conn.insert((c.local, c.peer), key);
                    }
                    Ok(false) => break,
                    Err(why) => {
                        self.close_conn(key, why);
                        return (frames, false);
                    }
                }
                continue;
            }
            if c.http != super::tcp::HttpState::No {
                match self.http_step(key) {
                    http::HttpStep::Stun => continue,
                    http::HttpStep::Wait => break,
                    http::HttpStep::Done => return (frames, false),
                }
            }
            match c.next_frame(&mut self.frame) {
                Ok(true) => {
                    frames += 1;
                    let (transport, local, peer) = (c.transport, c.local, c.peer);
                    self.server.handle_client_datagram(now, transport, local, peer, &self.frame, &mut self.relays, &mut self.out);
                    self.park_frame_if_waiting(now, transport, local, peer);
                    if self.server.has_tcp_actions() {
                        // ConnectionBind may turn this connection into a data
                        // connection or move it to another thread: act now,
                        // before reading its next bytes as STUN.
                        self.flush();
                        let same = self.conns.get(key).is_some_and(|c| c.pipe.is_none() && c.local == local && c.peer == peer);
                        if !same {
                            if let (ReadOutcome::Close(why), Some(c)) = (&outcome, self.conns.get(key)) {
                                if c.local == local && c.peer == peer {
                                    self.close_conn(key, why);
                                }
                            }
                            return (frames, false);
                        }
                    }
                    if let Some(c) = self.conns.get_mut(key) {
                        if !c.allocated && self.server.allocation_on(transport, peer, local).is_some() {
                            c.allocated = true;
                        }
                    }
                    if self.out.transmits.len() >= FLUSH_AT {
                        self.flush();
                    }
                }
                Ok(false) => break,
                Err(_) => {
                    self.close_conn(key, "not a STUN/TURN stream");
                    return (frames, false);
                }
            }
        }
        // TLS handshake records (and anything else rustls wants to send).
        if let Some(c) = self.conns.get_mut(key) {
            if c.has_pending_output() {
                if let Err(why) = c.write() {
                    self.close_conn(key, why);
                    return (frames, false);
                }
            }
        }
        self.update_interest(key);
        match outcome {
            ReadOutcome::Open { budget_left } => (frames, !budget_left),
            ReadOutcome::Close(why) => {
                // Answer what was read before closing.
                self.flush();
                self.close_conn(key, why);
                (frames, false)
            }
        }
    }

    /// Register WRITABLE interest while output is queued, drop it after.
    fn update_interest(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else { return };
        let want = c.has_pending_output();
        if want != c.want_write {
            let interest = if want { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            if self.poll.registry().reregister(&mut c.stream, Token(CONN_BASE + key), interest).is_ok() {
                c.want_write = want;
            }
        }
    }

    fn close_conn(&mut self, key: usize, why: &str) {
        if !self.conns.contains(key) {
            return;
        }
        let mut c = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut c.stream);
        if let Some(p) = c.pipe {
            // Either side of a TCP relay connection ends the pair.
            if self.tcp_pipes.get(&p.conn) == Some(&key) {
                self.tcp_pipes.remove(&p.conn);
            }
            self.server.tcp_closed(p.conn);
            if let Some(partner) = p.partner {
                if self.conns.get(partner).and_then(|o| o.pipe).is_some_and(|o| o.conn == p.conn) {
                    // Hand over what this side still had for the partner first.
                    if let Some(other) = self.conns.get_mut(partner) {
                        c.transfer_to(other);
                        let _ = other.write();
                    }
                    self.close_conn(partner, why);
                }
            }
            tracing::debug!("TCP relay connection {:#010x} ({} <-> {}) closed: {why}", p.conn, c.local, c.peer);
            return;
        }
        if self.by_conn.get(&(c.local, c.peer)) == Some(&key) {
            self.by_conn.remove(&(c.local, c.peer));
        }
        if c.allocated {
            self.server.client_closed(c.transport, c.local, c.peer, &mut self.relays);
        }
        tracing::debug!("TCP connection {} -> {} closed: {why}", c.peer, c.local);
    }

    /// Close connections that never allocated within the timeout.
    fn sweep_conns(&mut self, now_ms: u64) {
        let limit = self.conn_timeout.as_millis() as u64;
        let stale: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.allocated && c.pipe.is_none() && now_ms.saturating_sub(c.accepted_ms) >= limit)
            .map(|(k, _)| k)
            .collect();
        for k in stale {
            self.close_conn(k, "no allocation within max-allocate-timeout");
        }
        // An allocation that ended (timeout, refresh 0) leaves its connection
        // open for a new one; count it as unallocated again.
        for (_, c) in self.conns.iter_mut() {
            if c.pipe.is_none() && c.allocated && self.server.allocation_on(c.transport, c.peer, c.local).is_none() {
                c.allocated = false;
                c.accepted_ms = now_ms;
            }
        }
        for (_, c) in self.conns.iter_mut() {
            if c.outq.is_empty() {
                c.decoder.shrink_if_idle();
            }
        }
    }

    /// Read one ready socket in batches, up to the budget. Returns the
    /// datagrams read and whether the socket may hold more.
    fn drain(&mut self, now: Now, token: Token, batch: &mut RecvBatch) -> (usize, bool) {
        let (fd, relay) = if token.0 >= RELAY_TOKEN_BASE {
            let key = token.0 - RELAY_TOKEN_BASE;
            match self.relays.sockets.get(key) {
                Some(s) => (s.socket.as_raw_fd(), Some(RelayId(key as u32))),
                None => return (0, false),
            }
        } else {
            match self.listeners.get(token.0) {
                Some(l) => (l.socket.as_raw_fd(), None),
                None => return (0, false),
            }
        };
        let listener = self.listeners.get(token.0).map(|l| (l.local, l.wildcard));
        let mut read = 0;
        while read < DRAIN_BUDGET {
            let n = match batch.recv(fd, &self.fast.caps, &mut self.stats) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return (read, false),
            };
            for r in batch.iter() {
                if r.truncated {
                    continue;
                }
                let before = self.out.transmits.len();
                let tos = r.tos.unwrap_or(0);
                match (relay, listener) {
                    (Some(id), _) => {
                        self.server.handle_peer_datagram(now, id, r.from, r.data, &mut self.out);
                        // Relayed to the client: carry the peer's DiffServ/ECN marks.
                        for t in &mut self.out.transmits[before..] {
                            t.tos = tos;
                        }
                    }
                    (None, Some((mut local, wildcard))) => {
                        if wildcard {
                            if let Some(dst) = r.dst {
                                local = SocketAddr::new(dst, local.port());
                            }
                        }
                        if self.forward_known(now, local, r.from, r.data) {
                            continue;
                        }
                        if self.dtls.is_some() && crate::dtls::looks_like_dtls(r.data) {
                            self.dtls_datagram(now, token.0, local, r.from, r.data);
                            continue;
                        }
                        self.server.handle_client_datagram(now, Transport::Udp, local, r.from, r.data, &mut self.relays, &mut self.out);
                        self.park_if_waiting(now, Transport::Udp, local, r.from, r.data);
                        if let Some(owner) = self.server.take_forward() {
                            self.forward_new(now, owner, local, r.from, r.data);
                        }
                        // Relayed to a peer: carry the client's marks; answers keep the default.
                        for t in &mut self.out.transmits[before..] {
                            if matches!(t.dest, Dest::Peer { .. }) {
                                t.tos = tos;
                            }
                        }
                    }
                    (None, None) => {}
                }
            }
            read += n;
            if self.out.transmits.len() >= FLUSH_AT {
                self.flush();
            }
            // A short batch means the queue was empty when the kernel looked;
            // a datagram arriving later raises a new edge-triggered event, so
            // the extra EAGAIN read is not needed.
            if n < udp::BATCH {
                return (read, false);
            }
        }
        (read, true)
    }

    /// Send everything the core queued: grouped by socket, and by destination
    /// within a socket (order per destination kept), one `send_batch` per socket.
    fn flush(&mut self) {
        // TCP relay actions can queue answers (447, ConnectionAttempt), and
        // answers can close connections that end allocations: alternate.
        for _ in 0..4 {
            self.flush_transmits();
            if !self.server.has_tcp_actions() {
                return;
            }
            let now = self.clock.now();
            self.apply_tcp_actions(now);
        }
        self.flush_transmits();
    }

    fn flush_transmits(&mut self) {
        if self.out.transmits.is_empty() {
            return;
        }
        self.order.clear();
        let mut dtls_wire = Vec::new();
        for (i, t) in self.out.transmits.iter().enumerate() {
            let entry = match t.dest {
                Dest::Client { transport: Transport::Dtls, local, to } => {
                    if let Some(e) = self.dtls_sessions.get_mut(&(local, to)) {
                        let mut wire = Vec::new();
                        if e.session.send(&self.out.buf[t.range.clone()], &mut wire).is_ok() {
                            dtls_wire.push((e.listener, local, to, wire));
                        }
                    }
                    continue;
                }
                Dest::Client { transport, local, to } if transport.is_stream() => {
                    // Streams keep the order of what the core queued.
                    if let Some(&k) = self.by_conn.get(&(local, to)) {
                        if let Some(c) = self.conns.get_mut(k) {
                            // A full queue drops the frame (UDP semantics).
                            if c.outq.push(&self.out.buf[t.range.clone()]).is_ok() && !self.dirty.contains(&k) {
                                self.dirty.push(k);
                            }
                        }
                    }
                    continue;
                }
                Dest::Client { local, to, .. } => match self.by_local.get(&local) {
                    Some(&l) => (Via::Listener(l), None, t.tos, to, i as u32),
                    // A wildcard listener: send from the address the client used.
                    None => match self.by_local.get(&SocketAddr::new(unspecified_like(local.ip()), local.port())) {
                        Some(&l) => (Via::Listener(l), Some(local.ip()), t.tos, to, i as u32),
                        None => continue,
                    },
                },
                Dest::Peer { relay, to } => (Via::Relay(relay.0 as usize), None, t.tos, to, i as u32),
            };
            self.order.push(entry);
        }
        if self.order.len() > 1 {
            // Stable: datagrams to one destination keep their order, and
            // adjacent equal-sized ones can form a GSO run.
            self.order.sort_by_key(|&(via, src, tos, to, _)| (via, src, tos, to));
        }
        let mut group: Vec<(SocketAddr, &[u8])> = Vec::with_capacity(self.order.len().min(256));
        let mut start = 0;
        while start < self.order.len() {
            let (via, src, tos, _, _) = self.order[start];
            let mut end = start;
            group.clear();
            while end < self.order.len() && (self.order[end].0, self.order[end].1, self.order[end].2) == (via, src, tos) {
                let (_, _, _, to, i) = self.order[end];
                let t = &self.out.transmits[i as usize];
                group.push((to, &self.out.buf[t.range.clone()]));
                end += 1;
            }
            start = end;
            // The socket, with its TOS set to the group's (setsockopt only when it changes).
            let (fd, cached, v6) = match via {
                Via::Listener(l) => match self.listeners.get_mut(l) {
                    Some(l) => (l.socket.as_raw_fd(), &mut l.tos, l.local.is_ipv6()),
                    None => continue,
                },
                Via::Relay(k) => match self.relays.sockets.get_mut(k) {
                    Some(s) => (s.socket.as_raw_fd(), &mut s.tos, s.local.is_ipv6()),
                    None => continue,
                },
            };
            if *cached != tos && udp::set_tos(fd, v6, tos).is_ok() {
                *cached = tos;
            }
            udp::send_batch(fd, &group, src, &self.fast.caps, &mut self.stats);
        }
        drop(group);
        self.out.clear();
        for (li, local, to, wire) in dtls_wire {
            self.send_dtls_wire(li, local, to, &wire);
        }
        for k in std::mem::take(&mut self.dirty) {
            let Some(c) = self.conns.get_mut(k) else { continue };
            match c.write() {
                Ok(()) => self.update_interest(k),
                Err(why) => self.close_conn(k, why),
            }
        }
    }

    fn log_stats(&mut self) {
        let i = self.index as usize;
        if self.fast.recv_log {
            tracing::info!("{}", self.stats.recv_log_line(i));
        }
        if self.fast.send_log {
            tracing::info!("{}", self.stats.send_log_line(i));
        }
        self.stats = UdpStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescer_waits_only_when_it_pays() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_micros(n * 1000);
        // Quiet: one datagram every 10 ms never waits.
        let mut c = Coalescer::new(Duration::from_micros(1000));
        c.last = t0;
        for i in 1..50 {
            assert_eq!(c.after_round(1, ms(10 * i)), None);
        }
        // Busy trickle: 2 datagrams every 100 us (20 per ms) waits, sized to
        // the target batch and capped at the maximum.
        let mut c = Coalescer::new(Duration::from_micros(1000));
        c.last = t0;
        let (mut t, mut pending_wait, mut waits) = (t0, Duration::ZERO, Vec::new());
        for _ in 0..200 {
            // 20 datagrams per ms arrive; a round reads what came in its gap
            // (100 us of processing) plus the wait before it.
            let gap = Duration::from_micros(100) + pending_wait;
            t += gap;
            let n = (gap.as_micros() as usize * 20 / 1000).max(1);
            pending_wait = c.after_round(n, t).unwrap_or(Duration::ZERO);
            if !pending_wait.is_zero() {
                waits.push(pending_wait);
            }
        }
        assert!(waits.len() > 80, "only {} waits", waits.len());
        let w = *waits.last().expect("waits under a busy trickle");
        assert!(w >= Duration::from_micros(900) && w <= Duration::from_micros(1000), "{w:?}");
        // A ping-pong client: every wait gathers one datagram, so waits back
        // off until they are rare.
        let mut c = Coalescer::new(Duration::from_micros(1000));
        c.last = t0;
        let mut t = t0;
        let mut waits = 0;
        for _ in 0..2000 {
            t += Duration::from_micros(80);
            if let Some(w) = c.after_round(1, t) {
                waits += 1;
                t += w;
            }
        }
        assert!(waits < 40, "{waits} fruitless waits");
        // Full rounds never wait; off never waits.
        assert_eq!(c.after_round(Coalescer::FULL_ROUND, ms(10)), None);
        let mut off = Coalescer::new(Duration::ZERO);
        assert_eq!(off.after_round(2, ms(1)), None);
    }
}
