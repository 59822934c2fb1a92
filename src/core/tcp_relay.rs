//! RFC 6062 TCP relays: Connect, ConnectionBind and ConnectionAttempt.
//!
//! A TCP allocation's relayed address is a listening TCP socket. Each TCP
//! connection between that address and a peer ("peer data connection") is
//! named by a CONNECTION-ID and, once the client binds a fresh connection to it
//! with ConnectionBind ("client data connection"), the I/O layer pipes bytes
//! between the two without the core seeing them.
//!
//! The core decides; the I/O layer acts. Decisions that need the I/O layer
//! (open a TCP connection, pair two connections, close one, move a connection
//! to another thread) are queued as [`TcpAction`]s and taken with
//! [`Server::take_tcp_actions`]. Results come back through
//! [`Server::tcp_peer_connected`], [`Server::tcp_peer_incoming`] and
//! [`Server::tcp_closed`].
//!
//! A CONNECTION-ID carries the index of the thread that owns it in its top
//! byte: a ConnectionBind arriving on another thread's listener is handed to
//! the owner ([`TcpAction::Handoff`]), once per data connection.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::output::{Dest, Outputs, RelayId, Transport};
use super::server::{Reply, Server};
use super::time::Now;
use super::timers::Timers;
use crate::stun::{AttrType, Class, ErrorCode, Message, MessageBuilder, MessageType, Method, TransactionId};

/// How long a Connect may take before 447 (RFC 6062 5.2: at least 30 s).
pub const CONNECT_TIMEOUT_MS: u64 = 30_000;
/// How long a peer data connection waits for its ConnectionBind (RFC 6062).
pub const BIND_TIMEOUT_MS: u64 = 30_000;

/// Bits of a CONNECTION-ID below the owning thread's index.
const THREAD_SHIFT: u32 = 24;
const SEQ_MASK: u32 = (1 << THREAD_SHIFT) - 1;

/// The thread that owns a CONNECTION-ID.
pub fn owner_thread(connection_id: u32) -> u32 {
    connection_id >> THREAD_SHIFT
}

/// What the I/O layer must do for TCP relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpAction {
    /// Open a TCP connection from the relay address `from` (the allocation's
    /// TCP relay `relay`) to `peer`, then report with `tcp_peer_connected`.
    ConnectPeer { conn: u32, relay: RelayId, from: SocketAddr, peer: SocketAddr },
    /// The client connection (`transport`, `local`, `client`) is now the
    /// client data connection of `conn`: after the queued ConnectionBind
    /// answer, its bytes go to the peer and back, unframed.
    /// `bps`: the allocation's `max-bps` rate for each direction of the
    /// pipe (0: unlimited).
    BindData { conn: u32, transport: Transport, local: SocketAddr, client: SocketAddr, bps: u64 },
    /// Close the peer data connection `conn` and its client data connection.
    Close { conn: u32 },
    /// A ConnectionBind for a connection another thread owns arrived on the
    /// client connection (`transport`, `local`, `client`): move that
    /// connection, with the request, to `thread`.
    Handoff { thread: u32, transport: Transport, local: SocketAddr, client: SocketAddr },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Connect sent to the I/O layer; answer `reply` when it reports.
    Connecting { reply: Reply },
    /// Connected (or accepted); waiting for the client's ConnectionBind.
    Waiting,
    /// Paired with a client data connection; the I/O layer pipes it.
    Bound,
}

#[derive(Debug, Clone, Copy)]
struct TcpConnection {
    slot: usize,
    peer: SocketAddr,
    state: State,
    /// When Connecting or Waiting ends by timeout.
    deadline_ms: u64,
}

/// The TCP relay connections of one thread.
#[derive(Debug, Default)]
pub struct TcpRelays {
    conns: HashMap<u32, TcpConnection>,
    seq: u32,
    pub(super) actions: Vec<TcpAction>,
    /// Connect and ConnectionBind deadlines by CONNECTION-ID; an entry whose
    /// connection is gone, bound or re-armed is skipped when it comes due.
    timers: Timers,
}

impl TcpRelays {
    /// Connections the core tracks (any state).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    fn new_id(&mut self, thread: u32) -> u32 {
        loop {
            self.seq = (self.seq + 1) & SEQ_MASK;
            if self.seq == 0 {
                continue;
            }
            let id = (thread << THREAD_SHIFT) | self.seq;
            if !self.conns.contains_key(&id) {
                return id;
            }
        }
    }

    /// Track `id` with `deadline_ms` (Connecting or Waiting).
    fn insert(&mut self, id: u32, conn: TcpConnection) {
        self.timers.arm(conn.deadline_ms, id as usize);
        self.conns.insert(id, conn);
    }
}

impl Server {
    /// What the I/O layer has to do, in order.
    pub fn take_tcp_actions(&mut self, into: &mut Vec<TcpAction>) {
        into.append(&mut self.tcp.actions);
    }

    /// Actions are waiting for the I/O layer.
    pub fn has_tcp_actions(&self) -> bool {
        !self.tcp.actions.is_empty()
    }

    /// TCP relay connections of this thread (any state).
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.len()
    }

    /// Earliest Connect / ConnectionBind deadline.
    pub(crate) fn tcp_next_timeout(&self) -> Option<u64> {
        self.tcp.timers.next()
    }

    /// Connects that took too long get 447; peer data connections nobody
    /// bound are closed.
    pub fn handle_tcp_timeouts(&mut self, now: Now, out: &mut Outputs) {
        while let Some((deadline, key)) = self.tcp.timers.pop_due(now.ms) {
            let id = key as u32;
            let live = self.tcp.conns.get(&id).is_some_and(|c| !matches!(c.state, State::Bound) && c.deadline_ms == deadline);
            if !live {
                continue; // closed, bound or re-armed since
            }
            let Some(c) = self.tcp.conns.remove(&id) else { continue };
            if let State::Connecting { reply } = c.state {
                let key = self.allocs.get(c.slot).and_then(|a| a.key);
                self.error(out, reply, ErrorCode::CONNECTION_TIMEOUT.because("Connection to the peer timed out"), key.as_ref().map(|k| &k[..]), |_| {});
            }
            tracing::info!("TCP relay connection {id:#010x} to {}: closed, no ConnectionBind in time", c.peer);
            self.tcp.actions.push(TcpAction::Close { conn: id });
        }
    }

    /// The allocation in `slot` is going away: so do its TCP connections.
    pub(crate) fn close_tcp_of(&mut self, slot: usize) {
        let ids: Vec<u32> = self.tcp.conns.iter().filter(|(_, c)| c.slot == slot).map(|(&id, _)| id).collect();
        for id in ids {
            self.tcp.conns.remove(&id);
            self.tcp.actions.push(TcpAction::Close { conn: id });
        }
    }

    /// Connect (RFC 6062 5.2): open a TCP connection from the relay to a peer.
    pub(crate) fn connect(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) {
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let k = auth.key.as_ref().map(|k| &k[..]);
        let Some(slot) = self.request_slot(msg, reply, &auth.username, k, out) else { return };
        let Some(a) = self.allocs.get(slot) else { return };
        if !a.tcp {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Connect needs a TCP allocation"), k, |_| {});
        }
        let (relay, from) = (a.relay, a.relay_local);
        let peer = match msg.xor_address(AttrType::XOR_PEER_ADDRESS) {
            Some(Ok(p)) => p,
            _ => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Missing or malformed XOR-PEER-ADDRESS"), k, |_| {}),
        };
        if let Err(code) = self.peer_allowed(slot, peer) {
            return self.error(out, reply, super::refusal::peer_refused(code), k, |_| {});
        }
        if self.tcp.conns.values().any(|c| c.slot == slot && c.peer == peer) {
            return self.error(out, reply, ErrorCode::CONNECTION_ALREADY_EXISTS.because("Connection to this peer already exists"), k, |_| {});
        }
        let id = self.tcp.new_id(self.thread_index);
        self.tcp.insert(id, TcpConnection { slot, peer, state: State::Connecting { reply }, deadline_ms: now.ms + CONNECT_TIMEOUT_MS });
        self.tcp.actions.push(TcpAction::ConnectPeer { conn: id, relay, from, peer });
    }

    /// The I/O layer's outcome of a [`TcpAction::ConnectPeer`].
    pub fn tcp_peer_connected(&mut self, now: Now, conn: u32, ok: bool, out: &mut Outputs) {
        let Some(c) = self.tcp.conns.get_mut(&conn) else { return };
        let State::Connecting { reply } = c.state else { return };
        let key = self.allocs.get(c.slot).and_then(|a| a.key);
        let k = key.as_ref().map(|k| &k[..]);
        if ok {
            c.state = State::Waiting;
            c.deadline_ms = now.ms + BIND_TIMEOUT_MS;
            self.tcp.timers.arm(c.deadline_ms, conn as usize);
            self.success(out, reply, k, |b| {
                b.add_u32(AttrType::CONNECTION_ID, conn);
            });
        } else {
            let peer = c.peer;
            self.tcp.conns.remove(&conn);
            tracing::info!("TCP relay connection to {peer} failed");
            self.error(out, reply, ErrorCode::CONNECTION_TIMEOUT.because("Connection to the peer failed"), k, |_| {});
            self.tcp.actions.push(TcpAction::Close { conn });
        }
    }

    /// A peer connected to the TCP relay `relay` (RFC 6062 5.3). `Some(id)`:
    /// keep the connection (a ConnectionAttempt went to the client); `None`:
    /// close it (no allocation, or no permission for the peer).
    pub fn tcp_peer_incoming(&mut self, now: Now, relay: RelayId, from: SocketAddr, out: &mut Outputs) -> Option<u32> {
        let &slot = self.by_relay.get(&relay)?;
        let a = self.allocs.get(slot)?;
        if !a.tcp || !a.has_permission(from.ip(), now.ms) {
            return None;
        }
        let dest = Dest::Client { transport: a.transport, local: a.local, to: a.client };
        let id = self.tcp.new_id(self.thread_index);
        self.tcp.insert(id, TcpConnection { slot, peer: from, state: State::Waiting, deadline_ms: now.ms + BIND_TIMEOUT_MS });
        let tid = TransactionId(rand::random());
        let mut b = MessageBuilder::new(&mut out.buf, MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication), tid);
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, from);
        b.add_u32(AttrType::CONNECTION_ID, id);
        if self.cfg.fingerprint {
            b.add_fingerprint();
        }
        let range = b.finish();
        out.push(dest, range);
        Some(id)
    }

    /// Either side of TCP relay connection `conn` closed (or failed): forget it.
    pub fn tcp_closed(&mut self, conn: u32) {
        self.tcp.conns.remove(&conn);
    }

    /// ConnectionBind (RFC 6062 5.4), on a fresh connection from the client.
    pub(crate) fn connection_bind(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) {
        let Dest::Client { transport, local, to: client } = reply.dest else { return };
        let id = match msg.u32_attr(AttrType::CONNECTION_ID) {
            Some(Ok(id)) => id,
            _ => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Missing or malformed CONNECTION-ID"), None, |_| {}),
        };
        // Only streams carry data connections.
        if !transport.is_stream() {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("ConnectionBind needs a TCP or TLS connection"), None, |_| {});
        }
        let owner = owner_thread(id);
        if owner != self.thread_index {
            self.tcp.actions.push(TcpAction::Handoff { thread: owner, transport, local, client });
            return;
        }
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let k = auth.key.as_ref().map(|k| &k[..]);
        // A connection that carries an allocation is a control connection.
        if self.by_client.contains_key(&(transport, client, local)) {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("ConnectionBind on a control connection"), k, |_| {});
        }
        let Some(c) = self.tcp.conns.get(&id).copied() else {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Unknown CONNECTION-ID"), k, |_| {});
        };
        if !matches!(c.state, State::Waiting) {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Connection is not waiting for a ConnectionBind"), k, |_| {});
        }
        if !self.same_user(c.slot, &auth.username) {
            return self.error(out, reply, ErrorCode::WRONG_CREDENTIALS.because("Wrong credentials: the connection belongs to another user"), k, |_| {});
        }
        if let Some(c) = self.tcp.conns.get_mut(&id) {
            c.state = State::Bound;
        }
        let bps = self.allocs.get(c.slot).and_then(|a| a.limit).map_or(0, |l| l.bps());
        self.success(out, reply, k, |_| {});
        self.tcp.actions.push(TcpAction::BindData { conn: id, transport, local, client, bps });
    }
}
