//! What the management surfaces (telnet CLI, Prometheus exporter, web admin)
//! read from one thread's core and do to it: session descriptions, traffic
//! totals by realm (and user), cancelling a session and swapping the
//! settings at run time. Control path only: nothing here runs per packet.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::allocation::{Allocation, Usage};
use super::output::Transport;
use super::provider::RelayProvider;
use super::server::{CoreConfig, Server};

/// One allocation as an operator sees it (`ps` in the CLI, the web admin's
/// session list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// coturn's 18-digit session id: (thread + 1) * 10^15 + counter.
    pub session_id: u64,
    pub username: String,
    pub realm: String,
    /// ORIGIN of the Allocate, "" when none.
    pub origin: String,
    /// Client transport.
    pub transport: Transport,
    /// An RFC 6062 TCP relay (else UDP).
    pub tcp_relay: bool,
    pub client: SocketAddr,
    /// The listener address the client talks to.
    pub server: SocketAddr,
    /// Relay addresses as advertised (two for a dual allocation).
    pub relays: Vec<SocketAddr>,
    /// Seconds since the Allocate.
    pub age_secs: u64,
    /// Seconds until the allocation expires unless refreshed.
    pub expires_in_secs: u64,
    pub lifetime_secs: u32,
    /// What came from and went to the client.
    pub client_usage: Usage,
    /// What came from and went to peers.
    pub peer_usage: Usage,
    /// Peer IPs holding a permission.
    pub peers: Vec<IpAddr>,
    /// Channels bound.
    pub channels: usize,
    /// The session's bandwidth limit in bytes/s (0: none).
    pub max_bps: u64,
}

impl SessionInfo {
    fn of(a: &Allocation, now_ms: u64) -> Self {
        let mut relays = vec![a.relay_advertised];
        if let Some(s) = &a.second {
            relays.push(s.advertised);
        }
        SessionInfo {
            session_id: a.session_id,
            username: a.username.clone(),
            realm: a.realm.clone(),
            origin: a.origin.as_deref().unwrap_or("").to_string(),
            transport: a.transport,
            tcp_relay: a.tcp,
            client: a.client,
            server: a.local,
            relays,
            age_secs: now_ms.saturating_sub(a.created_ms) / 1000,
            expires_in_secs: a.expires_ms.saturating_sub(now_ms) / 1000,
            lifetime_secs: a.lifetime_secs,
            client_usage: a.client_usage,
            peer_usage: a.peer_usage,
            peers: a.permissions.iter().map(|&(ip, _)| ip).collect(),
            channels: a.channels.len(),
            max_bps: a.limit.as_ref().map_or(0, |l| l.bps()),
        }
    }
}

/// Client-side and peer-side traffic of one realm (and user).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub client: Usage,
    pub peer: Usage,
}

impl Traffic {
    pub fn add(&mut self, client: Usage, peer: Usage) {
        for (sum, u) in [(&mut self.client, client), (&mut self.peer, peer)] {
            sum.rp += u.rp;
            sum.rb += u.rb;
            sum.sp += u.sp;
            sum.sb += u.sb;
        }
    }
}

/// (realm, user) of a traffic total; the user is "" unless the core counts
/// per user (`--prometheus-username-labels`).
pub type TrafficKey = (String, String);

impl Server {
    /// Every allocation of this thread.
    pub fn sessions(&self, now_ms: u64) -> Vec<SessionInfo> {
        self.allocs.iter().map(|(_, a)| SessionInfo::of(a, now_ms)).collect()
    }

    /// Traffic by realm (and user): sessions that ended plus what live ones
    /// relayed so far, so the totals only ever grow.
    pub fn traffic_totals(&self) -> HashMap<TrafficKey, Traffic> {
        let mut totals = self.finished_traffic.clone();
        for (_, a) in self.allocs.iter() {
            totals.entry(self.traffic_key(&a.realm, &a.username)).or_default().add(a.client_usage, a.peer_usage);
        }
        totals
    }

    pub(crate) fn traffic_key(&self, realm: &str, user: &str) -> TrafficKey {
        let user = if self.cfg.traffic_by_user { user } else { "" };
        (realm.to_string(), user.to_string())
    }

    /// Allocations of this thread by client transport.
    pub fn allocations_by_transport(&self) -> [(Transport, usize); 4] {
        let mut n = [(Transport::Udp, 0), (Transport::Tcp, 0), (Transport::Tls, 0), (Transport::Dtls, 0)];
        for (_, a) in self.allocs.iter() {
            if let Some(e) = n.iter_mut().find(|(t, _)| *t == a.transport) {
                e.1 += 1;
            }
        }
        n
    }

    /// End the session `session_id` as the CLI's `cs` does. Returns its
    /// client 5-tuple (transport, listener, client) so the I/O layer can close
    /// a TCP/TLS connection too; `None` when no such session is here.
    pub fn cancel_session(
        &mut self,
        session_id: u64,
        relays: &mut dyn RelayProvider,
    ) -> Option<(Transport, SocketAddr, SocketAddr)> {
        let (slot, a) = self.allocs.iter().find(|(_, a)| a.session_id == session_id)?;
        let tuple = (a.transport, a.local, a.client);
        self.remove_allocation(slot, relays, "cancelled by the administrator");
        Some(tuple)
    }

    /// Use new settings from now on (SIGHUP reload, CLI `tc`/`cc`). Sessions
    /// keep what they were granted; the next request sees the new values.
    pub fn set_config(&mut self, cfg: Arc<CoreConfig>) {
        self.cfg = cfg;
    }
}

/// The thread that owns a session id (see [`SessionInfo::session_id`]).
pub fn session_thread(session_id: u64) -> Option<usize> {
    (session_id / 1_000_000_000_000_000).checked_sub(1).map(|t| t as usize)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn session_ids_name_their_thread() {
        assert_eq!(session_thread(1_000_000_000_000_007), Some(0));
        assert_eq!(session_thread(3_000_000_000_000_001), Some(2));
        assert_eq!(session_thread(12), None);
    }

    #[test]
    fn traffic_adds_both_sides() {
        let mut t = Traffic::default();
        t.add(Usage { rp: 1, rb: 10, sp: 2, sb: 20 }, Usage { rp: 3, rb: 30, sp: 4, sb: 40 });
        t.add(Usage { rp: 1, rb: 10, sp: 2, sb: 20 }, Usage::default());
        assert_eq!(t.client, Usage { rp: 2, rb: 20, sp: 4, sb: 40 });
        assert_eq!(t.peer, Usage { rp: 3, rb: 30, sp: 4, sb: 40 });
    }
}
