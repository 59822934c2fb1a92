//! Allocation life-cycle reports for the Redis stats database
//! (`--redis-statsdb`): what coturn publishes, as plain values. The core
//! queues them only when asked to ([`CoreConfig::allocation_events`]); the
//! I/O layer drains them with [`Server::take_events`] and forwards them
//! without waiting.
//!
//! [`CoreConfig::allocation_events`]: super::CoreConfig::allocation_events

use std::net::SocketAddr;

use super::allocation::{Allocation, Usage};
use super::output::Transport;
use super::server::Server;

/// Who and where an allocation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocInfo {
    pub session_id: u64,
    pub realm: String,
    pub username: String,
    pub transport: Transport,
    /// The server address the client reached.
    pub local: SocketAddr,
    pub client: SocketAddr,
}

impl AllocInfo {
    fn of(a: &Allocation) -> Self {
        AllocInfo {
            session_id: a.session_id,
            realm: a.realm.clone(),
            username: a.username.clone(),
            transport: a.transport,
            local: a.local,
            client: a.client,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocEvent {
    New { alloc: AllocInfo, lifetime: u32 },
    Refreshed { alloc: AllocInfo, lifetime: u32 },
    /// Counters so far (client side, peer side), for allocations that moved
    /// packets since the last report.
    Traffic { alloc: AllocInfo, client: Usage, peer: Usage },
    Deleted { alloc: AllocInfo, client: Usage, peer: Usage },
}

impl Server {
    /// Move the queued reports into `into`.
    pub fn take_events(&mut self, into: &mut Vec<AllocEvent>) {
        into.append(&mut self.events);
    }

    pub(crate) fn event_new(&mut self, slot: usize, refreshed: bool) {
        if !self.cfg.allocation_events {
            return;
        }
        let Some(a) = self.allocs.get(slot) else { return };
        let (alloc, lifetime) = (AllocInfo::of(a), a.lifetime_secs);
        self.events.push(if refreshed { AllocEvent::Refreshed { alloc, lifetime } } else { AllocEvent::New { alloc, lifetime } });
    }

    pub(crate) fn event_deleted(&mut self, a: &Allocation) {
        if self.cfg.allocation_events {
            self.events.push(AllocEvent::Deleted { alloc: AllocInfo::of(a), client: a.client_usage, peer: a.peer_usage });
        }
    }

    /// Queue a traffic report for every allocation that relayed something
    /// since the last call (the I/O layer calls this every few seconds).
    pub fn report_traffic(&mut self) {
        if !self.cfg.allocation_events {
            return;
        }
        for (_, a) in self.allocs.iter_mut() {
            let packets = a.client_usage.rp + a.client_usage.sp + a.peer_usage.rp + a.peer_usage.sp;
            if packets != a.reported_packets {
                a.reported_packets = packets;
                self.events.push(AllocEvent::Traffic { alloc: AllocInfo::of(a), client: a.client_usage, peer: a.peer_usage });
            }
        }
    }
}
