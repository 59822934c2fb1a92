//! RFC 8016 mobility across relay threads (UDP).
//!
//! Every thread has its own SO_REUSEPORT socket per listening address and the
//! kernel picks the socket by hashing the 5-tuple, so a client that moves to a
//! new address may land on another thread than the one owning its allocation.
//! The core recognises the owner from the ticket in the resuming Refresh
//! ([`crate::core::Server::take_forward`]); this thread then posts the
//! datagram to the owner's mailbox and remembers the 5-tuple, so that all
//! later datagrams from it go the same way. The owner handles them as if they
//! had arrived on its own socket for that address, and answers (and relays
//! peer data) from its own socket for the same address: the client sees the
//! same server address and port either way.
//!
//! An entry is dropped when nothing came from its 5-tuple for longer than an
//! allocation can live (`--max-allocate-lifetime` plus a minute); the table
//! is bounded.
//!
//! DTLS: the resuming Refresh arrives inside a DTLS session this thread just
//! accepted. The session itself moves to the owner with the decrypted
//! Refresh; the records that follow are forwarded like UDP datagrams, and the
//! owner, which now holds the session, decrypts them and encrypts its answers.

use std::net::SocketAddr;

use super::{Mailbox, RelayThread};
use crate::core::{Now, Transport};

/// Remembered 5-tuples per thread, at most.
const MAX_FORWARDS: usize = 65_536;

/// A client datagram handed to the thread owning its allocation.
pub struct Forwarded {
    local: SocketAddr,
    from: SocketAddr,
    data: Vec<u8>,
    /// A DTLS session moving to the owner; `data` is then the decrypted
    /// request that resumed (not a record).
    session: Option<Box<super::DtlsEntry>>,
}

/// Where a moved 5-tuple's datagrams go: the owning thread, and when the last
/// datagram came (process-clock ms).
#[derive(Debug, Clone, Copy)]
pub(super) struct Forward {
    thread: u32,
    used_ms: u64,
}

impl RelayThread {
    /// A client datagram on listener address `local`: when its 5-tuple moved
    /// to an allocation of another thread, hand it there and return true.
    #[inline]
    pub(super) fn forward_known(&mut self, now: Now, local: SocketAddr, from: SocketAddr, data: &[u8]) -> bool {
        if self.forwards.is_empty() {
            return false;
        }
        let Some(f) = self.forwards.get_mut(&(local, from)) else { return false };
        f.used_ms = now.ms;
        let thread = f.thread;
        self.post_datagram(thread, local, from, data);
        true
    }

    /// The core asked for the datagram just handled to go to `thread` (a
    /// resume with that thread's ticket): hand it over and remember the
    /// 5-tuple.
    pub(super) fn forward_new(&mut self, now: Now, thread: u32, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        if !self.post_datagram(thread, local, from, data) {
            return;
        }
        if self.forwards.len() >= MAX_FORWARDS && !self.forwards.contains_key(&(local, from)) {
            // Full: drop what was idle for a minute; when nothing was, the
            // new 5-tuple is not remembered (its Refresh still got through).
            let cutoff = now.ms.saturating_sub(60_000);
            self.forwards.retain(|_, f| f.used_ms >= cutoff);
            if self.forwards.len() >= MAX_FORWARDS {
                tracing::warn!("relay thread {}: too many moved clients to remember", self.index);
                return;
            }
        }
        self.forwards.insert((local, from), Forward { thread, used_ms: now.ms });
    }

    fn post_datagram(&mut self, thread: u32, local: SocketAddr, from: SocketAddr, data: &[u8]) -> bool {
        self.post(thread, Forwarded { local, from, data: data.to_vec(), session: None })
    }

    fn post(&mut self, thread: u32, f: Forwarded) -> bool {
        let Some(boxes) = &self.mailboxes else { return false };
        let Some(target) = boxes.get(thread as usize).filter(|_| thread != self.index) else { return false };
        let queued = match target.datagrams.lock() {
            Ok(mut q) if q.len() < MAX_FORWARDS => {
                q.push(f);
                true
            }
            _ => false,
        };
        queued && target.waker.wake().is_ok()
    }

    /// A DTLS session's decrypted `request` resumed an allocation of
    /// `thread`: move the session there with the request, and forward the
    /// 5-tuple's records after it. False when the session is not here or
    /// cannot be handed over (the caller then closes it).
    pub(super) fn hand_over_dtls(&mut self, now: Now, thread: u32, local: SocketAddr, from: SocketAddr, request: &[u8]) -> bool {
        let Some(entry) = self.dtls_sessions.remove(&(local, from)) else { return false };
        let f = Forwarded { local, from, data: request.to_vec(), session: Some(Box::new(entry)) };
        if !self.post(thread, f) {
            tracing::warn!("relay thread {}: cannot hand a DTLS session to thread {thread}", self.index);
            return false;
        }
        tracing::info!("DTLS session of {from} handed to relay thread {thread} (mobility)");
        self.forwards.insert((local, from), Forward { thread, used_ms: now.ms });
        true
    }

    /// Handle the datagrams other threads handed over.
    pub(super) fn take_forwarded(&mut self, now: Now, mine: &Mailbox) {
        let batch = match mine.datagrams.lock() {
            Ok(mut q) if !q.is_empty() => std::mem::take(&mut *q),
            _ => return,
        };
        for Forwarded { local, from, data, session } in batch {
            if let Some(entry) = session {
                self.dtls_sessions.insert((local, from), *entry);
                self.dtls_plaintext(now, local, from, &[data]);
                continue;
            }
            if let Some(li) = self.dtls_sessions.get(&(local, from)).map(|e| e.listener) {
                // A record of a session moved here.
                self.dtls_datagram(now, li, local, from, &data);
                continue;
            }
            self.server.handle_client_datagram(now, Transport::Udp, local, from, &data, &mut self.relays, &mut self.out);
            self.park_if_waiting(now, Transport::Udp, local, from, &data);
            // A ticket of yet another thread: pass it on (not remembered: the
            // 5-tuple's datagrams arrive at the thread that sent it here).
            if let Some(owner) = self.server.take_forward() {
                self.post_datagram(owner, local, from, &data);
            }
        }
        self.flush();
    }

    /// Forget 5-tuples nothing came from for longer than an allocation lives.
    pub(super) fn sweep_forwards(&mut self, now_ms: u64) {
        if self.forwards.is_empty() {
            return;
        }
        let idle = (u64::from(self.server.config().max_allocate_lifetime) + 60) * 1000;
        self.forwards.retain(|_, f| now_ms.saturating_sub(f.used_ms) <= idle);
    }
}
