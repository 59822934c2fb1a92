//! One allocation: its relay, lifetime, permissions and channel bindings.
//!
//! Permissions and channels live in small vectors: a WebRTC allocation holds a
//! handful of each, and a linear scan over a few entries beats hashing. Expired
//! entries are swept when the allocation's timer fires (see [`super::timers`]).

use std::net::{IpAddr, SocketAddr};

use super::output::RelayId;
use super::peer_policy::canonical;
use super::provider::Family;
use crate::stun::TransactionId;

/// A channel binding: number ↔ peer transport address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub number: u16,
    pub peer: SocketAddr,
    pub expires_ms: u64,
}

/// The relay of the other address family in a dual allocation (RFC 8656
/// ADDITIONAL-ADDRESS-FAMILY): kept apart from the primary relay so the
/// single-family case pays only one `Option` check on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondRelay {
    pub id: RelayId,
    pub local: SocketAddr,
    pub advertised: SocketAddr,
    pub family: Family,
}

/// The family a dual allocation could not get (ADDRESS-ERROR-CODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressError {
    /// The attribute type to answer with (RFC or coturn draft codepoint).
    pub attr: u16,
    pub family: Family,
    pub code: crate::stun::ErrorCode,
}

/// Packet and byte counters for one direction pair, as coturn's `usage:` lines
/// print them (rp/rb = received, sp/sb = sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub rp: u64,
    pub rb: u64,
    pub sp: u64,
    pub sb: u64,
}

#[derive(Debug, Clone)]
pub struct Allocation {
    /// coturn-style 18-digit session id.
    pub session_id: u64,
    pub client: SocketAddr,
    /// The listener address the client talks to.
    pub local: SocketAddr,
    /// How the client reaches us.
    pub transport: super::output::Transport,
    pub relay: RelayId,
    pub relay_local: SocketAddr,
    pub relay_advertised: SocketAddr,
    pub family: Family,
    pub username: String,
    pub realm: String,
    /// The long-term key the allocation was authenticated with (signs answers).
    pub key: Option<crate::stun::integrity::MacKey>,
    pub expires_ms: u64,
    /// When the Allocate succeeded (process clock, ms), for the admin views.
    pub created_ms: u64,
    pub lifetime_secs: u32,
    /// The Allocate transaction, so a retransmission gets the same answer.
    pub allocate_tid: TransactionId,
    pub reservation_token: Option<u64>,
    /// (peer IP canonicalised, expiry)
    pub permissions: Vec<(IpAddr, u64)>,
    pub channels: Vec<Channel>,
    /// Client side (from/to the client).
    pub client_usage: Usage,
    /// Peer side (from/to peers).
    pub peer_usage: Usage,
    /// The deadline the allocation's timer entry is armed for.
    pub timer_at: u64,
    /// The relay is a shared multiplex socket.
    pub shared: bool,
    /// Peer endpoints registered for demultiplexing (shared relays only).
    pub peer_addrs: Vec<SocketAddr>,
    /// The IPv6 relay of a dual allocation (same sharing as the primary one).
    pub second: Option<SecondRelay>,
    /// The family a dual allocation could not get and why (ADDRESS-ERROR-CODE),
    /// kept so a retransmitted Allocate gets the same answer.
    pub address_error: Option<AddressError>,
    /// An RFC 6062 TCP allocation: the relay is a listening TCP socket and
    /// peers are reached through Connect / ConnectionAttempt, not datagrams.
    pub tcp: bool,
    /// Packets counted at the last stats report (`--redis-statsdb`).
    pub reported_packets: u64,
    /// `--max-bps` / BANDWIDTH: the session's rate in each direction (`None`:
    /// unlimited). Its rate is also what the session holds of `--bps-capacity`.
    pub limit: Option<super::bandwidth::SessionLimit>,
    /// Datagrams dropped for going over `limit`, (from client, to client).
    pub dropped_over_limit: (u64, u64),
    /// The client sent BANDWIDTH: the answer tells it the granted rate.
    pub report_bandwidth: bool,
    /// The ORIGIN of the Allocate, for `--check-origin-consistency`.
    pub origin: Option<Box<str>>,
    /// RFC 8016: the allocation's ticket and a move in progress (`None`:
    /// the client asked for no ticket).
    pub mobile: Option<Box<super::mobility::MobileState>>,
}

impl Allocation {
    /// The relay that talks to peers of `family`, if the allocation has one:
    /// a peer is only reachable through a relay of its own family (RFC 8656).
    #[inline]
    pub fn relay_for(&self, family: Family) -> Option<RelayId> {
        if self.family == family {
            return Some(self.relay);
        }
        match self.second {
            Some(s) if s.family == family => Some(s.id),
            _ => None,
        }
    }

    /// The relay for a peer address (see [`Allocation::relay_for`]).
    #[inline]
    pub fn relay_for_peer(&self, peer: SocketAddr) -> Option<RelayId> {
        self.relay_for(Family::of(peer.ip()))
    }

    /// Take `len` payload bytes from the client → peers budget; false: over
    /// `max-bps`, drop the datagram.
    #[inline]
    pub fn within_limit_from_client(&mut self, now_ms: u64, len: usize) -> bool {
        self.within_limit(now_ms, len, false)
    }

    /// As [`Self::within_limit_from_client`], for peers → client.
    #[inline]
    pub fn within_limit_to_client(&mut self, now_ms: u64, len: usize) -> bool {
        self.within_limit(now_ms, len, true)
    }

    #[inline]
    fn within_limit(&mut self, now_ms: u64, len: usize, to_client: bool) -> bool {
        let Some(l) = &mut self.limit else { return true };
        let (bucket, dropped) = if to_client {
            (&mut l.to_client, &mut self.dropped_over_limit.1)
        } else {
            (&mut l.from_client, &mut self.dropped_over_limit.0)
        };
        if bucket.take(now_ms, len) {
            return true;
        }
        *dropped += 1;
        false
    }

    pub fn has_permission(&self, ip: IpAddr, now_ms: u64) -> bool {
        let ip = canonical(ip);
        self.permissions.iter().any(|&(p, exp)| p == ip && exp > now_ms)
    }

    /// Install or refresh a permission until `expires_ms`; true when the IP
    /// had no permission entry before.
    pub fn add_permission(&mut self, ip: IpAddr, expires_ms: u64) -> bool {
        let ip = canonical(ip);
        match self.permissions.iter_mut().find(|(p, _)| *p == ip) {
            Some(entry) => {
                entry.1 = entry.1.max(expires_ms);
                false
            }
            None => {
                self.permissions.push((ip, expires_ms));
                true
            }
        }
    }

    pub fn channel_by_number(&self, number: u16, now_ms: u64) -> Option<&Channel> {
        self.channels.iter().find(|c| c.number == number && c.expires_ms > now_ms)
    }

    pub fn channel_by_peer(&self, peer: SocketAddr, now_ms: u64) -> Option<&Channel> {
        self.channels.iter().find(|c| c.peer == peer && c.expires_ms > now_ms)
    }

    /// Drop expired permissions and channels; the IPs whose permission ended
    /// are appended to `expired`. Returns how many entries were removed.
    pub fn sweep(&mut self, now_ms: u64, expired: &mut Vec<IpAddr>) -> usize {
        let before = self.permissions.len() + self.channels.len();
        expired.extend(self.permissions.iter().filter(|&&(_, exp)| exp <= now_ms).map(|&(ip, _)| ip));
        self.permissions.retain(|&(_, exp)| exp > now_ms);
        self.channels.retain(|c| c.expires_ms > now_ms);
        if self.permissions.capacity() > 8 && self.permissions.len() < self.permissions.capacity() / 4 {
            self.permissions.shrink_to_fit();
        }
        if self.channels.capacity() > 8 && self.channels.len() < self.channels.capacity() / 4 {
            self.channels.shrink_to_fit();
        }
        before - self.permissions.len() - self.channels.len()
    }

    /// The earliest moment something in this allocation expires.
    pub fn next_deadline(&self) -> u64 {
        let mut d = self.expires_ms;
        for &(_, exp) in &self.permissions {
            d = d.min(exp);
        }
        for c in &self.channels {
            d = d.min(c.expires_ms);
        }
        d
    }
}
