//! RFC 8016 mobility (`--mobility`): an allocation that survives a change of
//! the client's address.
//!
//! An Allocate with a zero-length MOBILITY-TICKET asks for a ticket; the
//! success answer carries one. From a new 5-tuple the client sends a Refresh
//! with that ticket: the server checks that the same user signed it (441
//! otherwise), moves the allocation there and answers with a fresh ticket
//! (each ticket resumes once). An unknown or retired ticket gets 437, any
//! ticket while mobility is off 405.
//!
//! Make before break (as coturn 4.15): after the Refresh the allocation still
//! sends to, and accepts from, the old 5-tuple; the client's first packet
//! from the new one completes the move and the old 5-tuple is forgotten. A
//! client that probes a new path therefore loses nothing if it stays on the
//! old one.
//!
//! Tickets are opaque and unforgeable: one AES-128 block, under a key drawn
//! at start-up and shared by all threads, holding the owning thread, a ticket
//! number and a fixed check value, written as 32 hex digits (coturn's client
//! keeps at most 32 bytes and treats them as text). The owning thread matters
//! because listener sockets are per-thread (SO_REUSEPORT hashes each 5-tuple
//! to one of them), so the Refresh from the new address may land on another
//! thread: that thread opens the ticket and hands the request to the owner
//! (the I/O layer takes [`Server::take_forward`]), the way RFC 6062
//! ConnectionBind is handed over by its CONNECTION-ID.

use std::collections::HashMap;
use std::net::SocketAddr;

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;
use rand::RngCore;

use super::output::{Dest, Outputs, Transport};
use super::provider::RelayProvider;
use super::server::{Reply, Server};
use super::tcp_relay::TcpAction;
use super::time::Now;
use crate::stun::{AttrType, ErrorCode, Message, TransactionId};

/// The check value in the second half of a ticket's block.
const CHECK: [u8; 8] = *b"rfc8016t";
/// Ticket numbers are 48-bit.
const ID_MASK: u64 = (1 << 48) - 1;

/// The key tickets are sealed with (random per process, kept across reloads).
pub struct TicketKey {
    cipher: Aes128,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    pub fn random() -> Self {
        let mut key = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut key);
        TicketKey { cipher: Aes128::new(&key.into()) }
    }

    /// The ticket of number `id` owned by `thread`: 32 lowercase hex digits.
    pub fn seal(&self, thread: u32, id: u64) -> String {
        let mut block = [0u8; 16];
        block[..2].copy_from_slice(&(thread as u16).to_be_bytes());
        block[2..8].copy_from_slice(&(id & ID_MASK).to_be_bytes()[2..]);
        block[8..].copy_from_slice(&CHECK);
        let mut b = block.into();
        self.cipher.encrypt_block(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// (owning thread, ticket number) of a ticket this process issued.
    pub fn open(&self, ticket: &[u8]) -> Option<(u32, u64)> {
        if ticket.len() != 32 {
            return None;
        }
        let mut block = [0u8; 16];
        for (i, pair) in ticket.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            block[i] = u8::from_str_radix(s, 16).ok()?;
        }
        let mut b = block.into();
        self.cipher.decrypt_block(&mut b);
        if b[8..] != CHECK {
            return None;
        }
        let thread = u32::from(u16::from_be_bytes([b[0], b[1]]));
        let mut id = [0u8; 8];
        id[2..].copy_from_slice(&b[2..8]);
        Some((thread, u64::from_be_bytes(id)))
    }
}

impl Default for TicketKey {
    fn default() -> Self {
        Self::random()
    }
}

/// The mobility state of one allocation.
#[derive(Debug, Clone)]
pub struct MobileState {
    /// The number of the ticket the client holds.
    pub ticket: u64,
    /// The ticket the last resume retired and that Refresh's transaction: a
    /// retransmission of it gets the same success again.
    pub previous: Option<(u64, TransactionId)>,
    /// A move in progress: the new 5-tuple, taken over on its first packet.
    pub pending: Option<(Transport, SocketAddr, SocketAddr)>,
}

/// The mobility tables of one thread.
#[derive(Debug, Default)]
pub(crate) struct Mobility {
    /// Ticket number → allocation slot (the tickets clients hold).
    tickets: HashMap<u64, usize>,
    /// Retired ticket number → slot (for retransmitted resumes).
    previous: HashMap<u64, usize>,
    next_id: u64,
    /// Allocations with a move in progress (skip the check when none).
    pending: usize,
    /// A request to hand to the thread owning its ticket (UDP).
    forward: Option<u32>,
}

impl Server {
    /// Allocate: a MOBILITY-TICKET asks for a ticket (true). It must be
    /// empty (400) and mobility on (405).
    pub(crate) fn wants_ticket(&self, msg: &Message) -> Result<bool, ErrorCode> {
        match msg.get(AttrType::MOBILITY_TICKET) {
            None => Ok(false),
            Some(_) if !self.cfg.mobility => Err(ErrorCode::METHOD_NOT_ALLOWED),
            Some(v) if !v.is_empty() => Err(ErrorCode::BAD_REQUEST),
            Some(_) => Ok(true),
        }
    }

    /// Give the allocation in `slot` a new ticket, retiring the one it had
    /// (remembered with `tid`, the Refresh that retired it).
    pub(crate) fn issue_ticket(&mut self, slot: usize, tid: Option<TransactionId>) {
        let m = &mut self.mobility;
        m.next_id = (m.next_id + 1) & ID_MASK;
        let id = m.next_id;
        m.tickets.insert(id, slot);
        let Some(a) = self.allocs.get_mut(slot) else { return };
        match &mut a.mobile {
            None => a.mobile = Some(Box::new(MobileState { ticket: id, previous: None, pending: None })),
            Some(s) => {
                let old = std::mem::replace(&mut s.ticket, id);
                m.tickets.remove(&old);
                if let Some((p, _)) = s.previous.take() {
                    m.previous.remove(&p);
                }
                if let Some(tid) = tid {
                    s.previous = Some((old, tid));
                    m.previous.insert(old, slot);
                }
            }
        }
    }

    /// The ticket string of the allocation in `slot`, if it is mobile.
    pub(crate) fn ticket_of(&self, slot: usize) -> Option<String> {
        let a = self.allocs.get(slot)?;
        a.mobile.as_ref().map(|s| self.cfg.ticket_key.seal(self.thread_index, s.ticket))
    }

    /// The thread that should handle the request just passed to
    /// [`Server::handle_client_datagram`] instead of this one (a UDP resume
    /// whose allocation lives there). The I/O layer hands the datagram over,
    /// and sends that 5-tuple's later datagrams the same way.
    pub fn take_forward(&mut self) -> Option<u32> {
        self.mobility.forward.take()
    }

    /// Before handling a packet: when it comes from the new 5-tuple of a move
    /// in progress, the move completes and the old 5-tuple is dropped.
    #[inline]
    pub(crate) fn complete_move(&mut self, transport: Transport, local: SocketAddr, from: SocketAddr) {
        if self.mobility.pending == 0 {
            return;
        }
        let key = (transport, from, local);
        let Some(&slot) = self.by_client.get(&key) else { return };
        let Some(a) = self.allocs.get_mut(slot) else { return };
        let Some(s) = a.mobile.as_mut() else { return };
        if s.pending != Some(key) {
            return;
        }
        s.pending = None;
        self.mobility.pending -= 1;
        let old = (a.transport, a.client, a.local);
        self.by_client.remove(&old);
        a.transport = transport;
        a.client = from;
        a.local = local;
        tracing::info!("session {:018}: moved from {} to {from} (mobility)", a.session_id, old.1);
    }

    /// A stream connection closed: true when mobility took care of it (the
    /// old connection of a move in progress: the move completes; or the new
    /// one: the move is called off), so the allocation must not be removed.
    pub(crate) fn mobile_closed(&mut self, transport: Transport, local: SocketAddr, client: SocketAddr) -> bool {
        let key = (transport, client, local);
        let Some(&slot) = self.by_client.get(&key) else { return false };
        let Some(a) = self.allocs.get_mut(slot) else { return false };
        if a.tcp {
            return false; // an RFC 6062 allocation lives and dies with its connection
        }
        let Some(s) = a.mobile.as_mut() else { return false };
        let Some(new) = s.pending else {
            // The allocation's own connection closed before any move: the
            // client holds a ticket and may come back from a new address
            // (a network change breaks TCP and DTLS sessions), so the
            // allocation waits, detached, until its lifetime ends.
            self.by_client.remove(&key);
            tracing::info!(
                "session {:018}: connection from {client} closed; kept for a resume with its mobility ticket",
                a.session_id
            );
            return true;
        };
        if new == key {
            s.pending = None;
            self.mobility.pending -= 1;
            self.by_client.remove(&key);
        } else {
            self.complete_move(new.0, new.2, new.1);
        }
        true
    }

    /// An allocation is gone: forget its tickets and its move in progress.
    pub(crate) fn forget_mobile(&mut self, a: &super::allocation::Allocation) {
        let Some(s) = &a.mobile else { return };
        self.mobility.tickets.remove(&s.ticket);
        if let Some((p, _)) = s.previous {
            self.mobility.previous.remove(&p);
        }
        if let Some(key) = s.pending {
            self.mobility.pending -= 1;
            self.by_client.remove(&key);
        }
    }

    /// Refresh with a MOBILITY-TICKET (RFC 8016 3.4).
    pub(crate) fn mobile_refresh(&mut self, now: Now, msg: &Message, reply: Reply, relays: &mut dyn RelayProvider, out: &mut Outputs) {
        let Dest::Client { transport, local, to: client } = reply.dest else { return };
        let ticket = msg.get(AttrType::MOBILITY_TICKET).unwrap_or_default();
        let opened = if self.cfg.mobility { self.cfg.ticket_key.open(ticket) } else { None };
        if let Some((owner, _)) = opened {
            if owner != self.thread_index {
                match transport {
                    // DTLS: the I/O layer hands the session over with the
                    // datagram, and forwards the 5-tuple's records after it.
                    Transport::Udp | Transport::Dtls => {
                        self.mobility.forward = Some(owner);
                        return;
                    }
                    Transport::Tcp | Transport::Tls => {
                        self.tcp.actions.push(TcpAction::Handoff { thread: owner, transport, local, client });
                        return;
                    }
                }
            }
        }
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let k = auth.key.as_ref().map(|k| &k[..]);
        if !self.cfg.mobility {
            return self.error(out, reply, ErrorCode::METHOD_NOT_ALLOWED.because("Mobility is not enabled on this server"), k, |_| {});
        }
        let found = opened.filter(|&(owner, _)| owner == self.thread_index).and_then(|(_, id)| {
            if let Some(&slot) = self.mobility.tickets.get(&id) {
                return Some((slot, false));
            }
            // The retired ticket of the last resume, retransmitted.
            let &slot = self.mobility.previous.get(&id)?;
            let a = self.allocs.get(slot)?;
            let s = a.mobile.as_ref()?;
            (s.previous == Some((id, reply.tid))).then_some((slot, true))
        });
        let Some((slot, again)) = found else {
            tracing::info!("mobility: unknown ticket from {client}");
            return self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH.because("Unknown mobility ticket"), k, |_| {});
        };
        if !self.same_user(slot, &auth.username) || !self.same_origin(slot, msg) {
            return self.error(out, reply, ErrorCode::WRONG_CREDENTIALS.because("Wrong credentials: the allocation belongs to another user or origin"), k, |_| {});
        }
        let key = (transport, client, local);
        if self.by_client.get(&key).is_some_and(|&s| s != slot) {
            // The new address already holds an allocation of its own.
            return self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH.because("The new address holds an allocation of its own"), k, |_| {});
        }
        let requested = match msg.u32_attr(AttrType::LIFETIME) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed LIFETIME"), k, |_| {}),
        };
        if again {
            let Some(a) = self.allocs.get(slot) else { return };
            let remaining = (a.expires_ms.saturating_sub(now.ms) / 1000) as u32;
            let t = self.ticket_of(slot);
            return self.success(out, reply, k, |b| {
                b.add_u32(AttrType::LIFETIME, remaining);
                if let Some(t) = &t {
                    b.add_raw(AttrType::MOBILITY_TICKET, t.as_bytes());
                }
            });
        }
        if requested == Some(0) {
            self.success(out, reply, k, |b| {
                b.add_u32(AttrType::LIFETIME, 0);
            });
            self.remove_allocation(slot, relays, "allocation deleted by client (refresh with zero lifetime)");
            return;
        }
        let Some(a) = self.allocs.get(slot) else { return };
        let current = (a.transport, a.client, a.local);
        if key != current && transport != a.transport {
            // A move keeps the transport: the relay loop ties stream
            // allocations to their connection.
            return self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH.because("A move keeps the transport"), k, |_| {});
        }
        let lifetime = self.grant_lifetime(requested);
        let earlier = a.mobile.as_ref().and_then(|s| s.pending);
        // A move started earlier to yet another address is superseded.
        if let Some(e) = earlier.filter(|&e| e != key) {
            self.by_client.remove(&e);
            self.mobility.pending -= 1;
            if let Some(s) = self.allocs.get_mut(slot).and_then(|a| a.mobile.as_mut()) {
                s.pending = None;
            }
        }
        let moving = key != current && earlier != Some(key);
        if moving {
            self.by_client.insert(key, slot);
            self.mobility.pending += 1;
        }
        if let Some(a) = self.allocs.get_mut(slot) {
            a.expires_ms = now.ms + u64::from(lifetime) * 1000;
            a.lifetime_secs = lifetime;
            if let (true, Some(s)) = (key != current, a.mobile.as_mut()) {
                s.pending = Some(key);
            }
            tracing::info!(
                "session {:018}: refreshed with a mobility ticket from {client} (was {}), realm=<{}>, username=<{}>, lifetime={lifetime}",
                a.session_id,
                current.1,
                a.realm,
                a.username
            );
        }
        self.issue_ticket(slot, Some(reply.tid));
        self.rearm(slot);
        self.event_new(slot, true);
        let t = self.ticket_of(slot);
        self.success(out, reply, k, |b| {
            b.add_u32(AttrType::LIFETIME, lifetime);
            if let Some(t) = &t {
                b.add_raw(AttrType::MOBILITY_TICKET, t.as_bytes());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_open_only_with_their_key_and_unchanged() {
        let k = TicketKey::random();
        let t = k.seal(3, 0x1234_5678_9abc);
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(k.open(t.as_bytes()), Some((3, 0x1234_5678_9abc)));
        // Another process's key, a flipped digit, a wrong length, non-hex.
        assert_eq!(TicketKey::random().open(t.as_bytes()), None);
        let mut bad = t.clone().into_bytes();
        bad[5] = if bad[5] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.open(&bad), None);
        assert_eq!(k.open(&t.as_bytes()[..30]), None);
        assert_eq!(k.open(b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(k.open(b""), None);
        // Opaque: consecutive numbers give unrelated tickets.
        let t2 = k.seal(3, 0x1234_5678_9abd);
        assert_ne!(t[..16], t2[..16]);
    }
}
