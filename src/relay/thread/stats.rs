//! Forwarding the core's allocation reports to the Redis stats database
//! (`--redis-statsdb`), in coturn's terms. The sink only queues (and drops
//! when full), so a slow or absent Redis never holds up a relay thread.

use crate::core::{AllocEvent, AllocInfo, Server, Transport};
use crate::userdb::statsdb::{AllocationRef, AllocationStatus, StatsEvent, StatsSink, TrafficCounters};

/// How often allocations that relayed something report their counters.
const TRAFFIC_INTERVAL_MS: u64 = 5_000;

pub struct StatsReporter {
    sink: StatsSink,
    events: Vec<AllocEvent>,
    next_traffic_ms: u64,
}

impl StatsReporter {
    pub fn new(sink: StatsSink) -> Self {
        StatsReporter { sink, events: Vec::new(), next_traffic_ms: 0 }
    }

    /// Send what the core queued; every few seconds, traffic counters too.
    pub fn forward(&mut self, server: &mut Server, now_ms: u64) {
        if now_ms >= self.next_traffic_ms {
            server.report_traffic();
            self.next_traffic_ms = now_ms + TRAFFIC_INTERVAL_MS;
        }
        server.take_events(&mut self.events);
        for e in self.events.drain(..) {
            for s in to_stats(e) {
                self.sink.send(s);
            }
        }
    }
}

fn alloc_ref(a: &AllocInfo) -> AllocationRef {
    AllocationRef { realm: a.realm.clone(), user: a.username.clone(), id: AllocationRef::format_id(a.session_id) }
}

fn status(a: &AllocInfo, lifetime: u32) -> AllocationStatus {
    let transport = match a.transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
        Transport::Dtls => "DTLS",
    };
    AllocationStatus {
        lifetime: u64::from(lifetime),
        transport: transport.to_string(),
        local: a.local,
        remote: a.client,
        ssl: "NONE".into(),
        cipher: "NONE".into(),
    }
}

fn counters(u: crate::core::allocation::Usage) -> TrafficCounters {
    TrafficCounters { rcvp: u.rp, rcvb: u.rb, sentp: u.sp, sentb: u.sb }
}

/// One core report as stats-database events (traffic: client and peer side).
fn to_stats(e: AllocEvent) -> Vec<StatsEvent> {
    match e {
        AllocEvent::New { alloc, lifetime } => vec![StatsEvent::New { status: status(&alloc, lifetime), alloc: alloc_ref(&alloc) }],
        AllocEvent::Refreshed { alloc, lifetime } => {
            vec![StatsEvent::Refreshed { status: status(&alloc, lifetime), alloc: alloc_ref(&alloc) }]
        }
        AllocEvent::Traffic { alloc, client, peer } => vec![
            StatsEvent::Traffic { alloc: alloc_ref(&alloc), peer: false, counters: counters(client) },
            StatsEvent::Traffic { alloc: alloc_ref(&alloc), peer: true, counters: counters(peer) },
        ],
        AllocEvent::Deleted { alloc, client, peer } => {
            vec![StatsEvent::Deleted { alloc: alloc_ref(&alloc), total: counters(client), peer_total: counters(peer) }]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::allocation::Usage;

    fn info() -> AllocInfo {
        AllocInfo {
            session_id: 7,
            realm: "example.org".into(),
            username: "alice".into(),
            transport: Transport::Tls,
            local: "127.0.0.1:5349".parse().expect("addr"),
            client: "127.0.0.1:40000".parse().expect("addr"),
        }
    }

    #[test]
    fn reports_map_to_coturn_fields() {
        let ev = to_stats(AllocEvent::New { alloc: info(), lifetime: 600 });
        let [StatsEvent::New { alloc, status }] = ev.as_slice() else { panic!("{ev:?}") };
        assert_eq!(alloc.base_key(), "turn/realm/example.org/user/alice/allocation/000000000000000007");
        assert_eq!((status.lifetime, status.transport.as_str()), (600, "TLS"));
        let u = Usage { rp: 1, rb: 2, sp: 3, sb: 4 };
        let ev = to_stats(AllocEvent::Traffic { alloc: info(), client: u, peer: Usage::default() });
        assert_eq!(ev.len(), 2);
        let StatsEvent::Traffic { counters, peer: false, .. } = &ev[0] else { panic!("{ev:?}") };
        assert_eq!(counters.payload(), "rcvp=1, rcvb=2, sentp=3, sentb=4");
        let ev = to_stats(AllocEvent::Deleted { alloc: info(), client: u, peer: u });
        assert!(matches!(ev.as_slice(), [StatsEvent::Deleted { .. }]));
    }
}
