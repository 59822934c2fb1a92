//! The I/O half of RFC 6062 TCP relays on a relay thread: accepting peers on
//! TCP relay listeners, connecting to peers for Connect, pairing a client data
//! connection with its peer data connection and piping bytes between them,
//! and moving a client connection to the thread that owns its CONNECTION-ID.
//!
//! Piping is flow-controlled end to end: bytes read from one side wait in its
//! bounded input buffer until the other side's bounded out queue takes them;
//! when both are full the side stops reading ("stalled") and the kernel's TCP
//! window pushes back on the sender. Reading resumes when the other side
//! drains. Nothing grows without bound, and nothing is dropped.

use std::io;
use std::sync::{Arc, Mutex};

use mio::{Interest, Token, Waker};

use super::{RelayThread, CONN_BASE};
use crate::core::bandwidth::StreamBudget;
use crate::core::{Now, RelayId, TcpAction};
use crate::relay::provider::{TCP_RELAY_ID_FLAG, TCP_RELAY_TOKEN_BASE};
use crate::relay::sockets;
use crate::relay::tcp::{Conn, Pipe, ReadOutcome};

/// A client connection handed to another thread, with the ConnectionBind
/// request that named that thread.
pub struct Handoff {
    conn: Conn,
    frame: Vec<u8>,
}

/// Where other threads leave connections (and, for RFC 8016 mobility, UDP
/// datagrams: see `mobility.rs`) for a thread.
pub struct Mailbox {
    queue: Mutex<Vec<Handoff>>,
    pub(super) datagrams: Mutex<Vec<super::mobility::Forwarded>>,
    pub(super) waker: Arc<Waker>,
}

impl Mailbox {
    pub fn new(waker: Arc<Waker>) -> Self {
        Mailbox { queue: Mutex::new(Vec::new()), datagrams: Mutex::new(Vec::new()), waker }
    }

    fn post(&self, h: Handoff) -> bool {
        match self.queue.lock() {
            Ok(mut q) => q.push(h),
            Err(_) => return false,
        }
        self.waker.wake().is_ok()
    }

    fn take(&self) -> Vec<Handoff> {
        match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => Vec::new(),
        }
    }
}

/// Outcome of a non-blocking connect, once the socket is writable.
enum Connect {
    Pending,
    Done,
    Failed(io::Error),
}

fn connect_state(stream: &mio::net::TcpStream) -> Connect {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Connect::Failed(e),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Connect::Done,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Connect::Pending,
        Err(e) => Connect::Failed(e),
    }
}

impl RelayThread {
    /// The mailboxes of every thread (this one's at its index).
    pub fn set_mailboxes(&mut self, mailboxes: Arc<Vec<Mailbox>>) {
        self.mailboxes = Some(mailboxes);
    }

    /// Carry out what the core decided for TCP relays. Answers it queues
    /// meanwhile (447, ConnectionAttempt) are sent by the caller's flush.
    pub(super) fn apply_tcp_actions(&mut self, now: Now) {
        let mut actions = std::mem::take(&mut self.tcp_actions);
        for _ in 0..8 {
            self.server.take_tcp_actions(&mut actions);
            if actions.is_empty() {
                break;
            }
            for a in actions.drain(..) {
                match a {
                    TcpAction::ConnectPeer { conn, from, peer, .. } => self.connect_peer(now, conn, from, peer),
                    TcpAction::BindData { conn, local, client, bps, .. } => self.bind_data(now, conn, local, client, bps),
                    TcpAction::Close { conn } => {
                        if let Some(k) = self.tcp_pipes.remove(&conn) {
                            self.close_conn(k, "TCP relay connection closed");
                        }
                    }
                    TcpAction::Handoff { thread, local, client, .. } => self.hand_off(thread, local, client),
                }
            }
        }
        self.tcp_actions = actions;
    }

    fn connect_peer(&mut self, now: Now, conn: u32, from: std::net::SocketAddr, peer: std::net::SocketAddr) {
        let stream = match sockets::tcp_relay_connect(from, peer) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!("TCP relay connection {from} -> {peer} failed: {e}");
                self.server.tcp_peer_connected(now, conn, false, &mut self.out);
                return;
            }
        };
        let mut stream = mio::net::TcpStream::from_std(stream);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self.poll.registry().register(&mut stream, Token(CONN_BASE + key), interest).is_err() {
            self.server.tcp_peer_connected(now, conn, false, &mut self.out);
            return;
        }
        let mut c = Conn::peer_data(stream, peer, from, now.ms, conn, true);
        c.want_write = true;
        entry.insert(c);
        self.tcp_pipes.insert(conn, key);
    }

    /// Pair the client connection (`local`, `client`) with peer data
    /// connection `conn`; what either buffered starts flowing.
    fn bind_data(&mut self, now: Now, conn: u32, local: std::net::SocketAddr, client: std::net::SocketAddr, bps: u64) {
        let data = self.by_conn.get(&(local, client)).copied();
        let peer = self.tcp_pipes.get(&conn).copied();
        let (Some(d), Some(p)) = (data, peer) else {
            // One side went away between the answer and now.
            self.server.tcp_closed(conn);
            if let Some(p) = peer {
                self.tcp_pipes.remove(&conn);
                self.close_conn(p, "client data connection gone");
            }
            if let Some(d) = data {
                self.close_conn(d, "peer data connection gone");
            }
            return;
        };
        self.by_conn.remove(&(local, client));
        // `max-bps` holds each direction: what is read from the client and
        // what is read from the peer.
        let budget = (bps > 0).then(|| StreamBudget::new(bps, now.ms));
        if let Some(c) = self.conns.get_mut(d) {
            c.pipe = Some(Pipe { conn, peer_side: false, partner: Some(p), connecting: false, stalled: false, budget });
        }
        if let Some(Some(pipe)) = self.conns.get_mut(p).map(|c| c.pipe.as_mut()) {
            pipe.partner = Some(d);
            pipe.budget = budget;
        }
        tracing::debug!("TCP relay connection {conn:#010x}: bound to client data connection {client}");
        // Bytes that came behind the ConnectionBind, and what the peer sent
        // while waiting, flow now; then both sides read on.
        self.pump(d, p);
        self.pump(p, d);
        self.pending.push(Token(CONN_BASE + d));
        self.pending.push(Token(CONN_BASE + p));
    }

    /// Move the connection (`local`, `client`) and the request just handled
    /// to the thread owning its CONNECTION-ID.
    fn hand_off(&mut self, thread: u32, local: std::net::SocketAddr, client: std::net::SocketAddr) {
        let Some(&key) = self.by_conn.get(&(local, client)) else { return };
        let target = thread as usize;
        let mailboxes = match &self.mailboxes {
            Some(m) if target < m.len() && thread != self.index => Arc::clone(m),
            _ => {
                self.close_conn(key, "ConnectionBind with an unknown CONNECTION-ID");
                return;
            }
        };
        self.by_conn.remove(&(local, client));
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let frame = self.frame.clone();
        if !mailboxes[target].post(Handoff { conn, frame }) {
            tracing::warn!("relay thread {}: cannot hand a connection to thread {thread}", self.index);
        }
    }

    /// Take the connections other threads handed over: register them here
    /// and handle the request that brought them.
    pub(super) fn drain_mailbox(&mut self, now: Now) {
        let Some(mailboxes) = self.mailboxes.clone() else { return };
        let Some(mine) = mailboxes.get(self.index as usize) else { return };
        self.take_forwarded(now, mine);
        for Handoff { mut conn, frame } in mine.take() {
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if self.poll.registry().register(&mut conn.stream, Token(CONN_BASE + key), Interest::READABLE).is_err() {
                continue;
            }
            conn.want_write = false;
            let (transport, local, peer) = (conn.transport, conn.local, conn.peer);
            entry.insert(conn);
            self.by_conn.insert((local, peer), key);
            self.server.handle_client_datagram(now, transport, local, peer, &frame, &mut self.relays, &mut self.out);
            self.flush();
            self.update_interest(key);
            // Whatever the client sent after the request.
            self.pending.push(Token(CONN_BASE + key));
        }
    }

    /// Peers connecting to TCP relay listener `key` (up to a budget).
    pub(super) fn accept_tcp_relay(&mut self, now: Now, key: usize) -> (usize, bool) {
        let relay = RelayId(TCP_RELAY_ID_FLAG | key as u32);
        for n in 0..64 {
            let Some(t) = self.relays.tcp.get(key) else { return (n, false) };
            let local = t.local;
            match t.listener.accept() {
                Ok((mut stream, from)) => {
                    let _ = stream.set_nodelay(true);
                    self.accept_ok();
                    let Some(conn) = self.server.tcp_peer_incoming(now, relay, from, &mut self.out) else {
                        tracing::info!("TCP relay {local}: connection from {from} refused (no permission)");
                        continue;
                    };
                    let entry = self.conns.vacant_entry();
                    let ck = entry.key();
                    if self.poll.registry().register(&mut stream, Token(CONN_BASE + ck), Interest::READABLE).is_err() {
                        self.server.tcp_closed(conn);
                        continue;
                    }
                    entry.insert(Conn::peer_data(stream, from, local, now.ms, conn, false));
                    self.tcp_pipes.insert(conn, ck);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (n, false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE: retried after a pause, like the listeners.
                    self.accept_failed(Token(TCP_RELAY_TOKEN_BASE + key), "TCP relay", local, &e);
                    return (n, false);
                }
            }
        }
        (64, true)
    }

    /// Move what `from` buffered into `to`'s queue and write it; closes both
    /// on a write error.
    fn pump(&mut self, from: usize, to: usize) {
        let Some((a, b)) = self.conns.get2_mut(from, to) else { return };
        if a.decoder.buffered() == 0 || b.pipe.is_some_and(|p| p.connecting) {
            return;
        }
        if a.transfer_to(b) == 0 {
            return;
        }
        match b.write() {
            Ok(()) => self.update_interest(to),
            Err(why) => self.close_conn(to, why),
        }
    }

    /// A piped connection is ready: finish a connect, write, pull from the
    /// partner, read and push to the partner.
    pub(super) fn pipe_ready(&mut self, now: Now, key: usize) -> (usize, bool) {
        let Some(c) = self.conns.get_mut(key) else { return (0, false) };
        let Some(pipe) = c.pipe else { return (0, false) };
        if pipe.connecting {
            match connect_state(&c.stream) {
                Connect::Pending => return (0, false),
                Connect::Failed(e) => {
                    tracing::info!("TCP relay connection {} -> {} failed: {e}", c.local, c.peer);
                    self.tcp_pipes.remove(&pipe.conn);
                    self.server.tcp_peer_connected(now, pipe.conn, false, &mut self.out);
                    self.close_conn(key, "connect failed");
                    self.flush();
                    return (0, false);
                }
                Connect::Done => {
                    if let Some(p) = c.pipe.as_mut() {
                        p.connecting = false;
                    }
                    self.server.tcp_peer_connected(now, pipe.conn, true, &mut self.out);
                    self.update_interest(key);
                    self.flush();
                }
            }
        }
        // Write what is queued for this side; then take more from the partner,
        // waking it if it had stopped reading for lack of room here.
        let Some(c) = self.conns.get_mut(key) else { return (0, false) };
        if c.has_pending_output() {
            if let Err(why) = c.write() {
                self.close_conn(key, why);
                return (0, false);
            }
            self.update_interest(key);
        }
        if let Some(partner) = pipe.partner {
            self.pump(partner, key);
            if let Some(Some(pp)) = self.conns.get_mut(partner).map(|c| c.pipe.as_mut()) {
                if pp.stalled {
                    pp.stalled = false;
                    self.pending.push(Token(CONN_BASE + partner));
                }
            }
        }
        // Over `max-bps`: read nothing until the budget allows; the kernel's
        // buffers fill and TCP flow control slows the sender.
        if let Some(Some(p)) = self.conns.get_mut(key).map(|c| c.pipe.as_mut()) {
            if let Some(b) = p.budget.as_mut() {
                let wait = b.wait_ms(now.ms);
                if wait > 0 {
                    self.wake_later(Token(CONN_BASE + key), now.ms + wait);
                    return (0, false);
                }
            }
        }
        // Read this side into its buffer and pass it on.
        let cfgs = self.tls.as_ref().map(|t| t.configs());
        let Some(c) = self.conns.get_mut(key) else { return (0, false) };
        if c.decoder.spare(1).is_empty() {
            if let Some(Some(p)) = self.conns.get_mut(key).map(|c| c.pipe.as_mut()) {
                p.stalled = true;
            }
            return (0, false);
        }
        let before = c.decoder.buffered();
        let outcome = c.read(cfgs.as_deref());
        let read = c.decoder.buffered().saturating_sub(before);
        if let Some(b) = c.pipe.as_mut().and_then(|p| p.budget.as_mut()) {
            b.charge(now.ms, read);
        }
        let partner = self.conns.get(key).and_then(|c| c.pipe).and_then(|p| p.partner);
        if let Some(partner) = partner {
            self.pump(key, partner);
        }
        match outcome {
            ReadOutcome::Close(why) => {
                // What could be passed on was; the pair ends together.
                self.close_conn(key, why);
                (usize::from(read > 0), false)
            }
            ReadOutcome::Open { budget_left } => {
                let full = self.conns.get_mut(key).is_some_and(|c| c.decoder.spare(1).is_empty());
                if full {
                    if let Some(Some(p)) = self.conns.get_mut(key).map(|c| c.pipe.as_mut()) {
                        p.stalled = true;
                    }
                    return (usize::from(read > 0), false);
                }
                (usize::from(read > 0), !budget_left)
            }
        }
    }
}
