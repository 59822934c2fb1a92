//! What a scrape reports: the relay threads' reports (see
//! [`crate::relay::control`]) summed into metric families. coturn's names and
//! labels come first, so existing dashboards keep working; the families
//! coturn lacks follow (allocation rate, authentication failures by reason,
//! receive batch sizes, fast-path switches and fallbacks, connections,
//! drain state). docs/monitoring.md lists every one.
//!
//! Unlike coturn, which adds a session's traffic to the counters when the
//! session ends (coturn #1205), the traffic counters include what live
//! sessions relayed so far: each relay thread keeps the totals of finished
//! sessions and adds its live allocations' usage when asked.

use std::collections::BTreeMap;

use super::text::{Family, Kind};
use crate::core::admin::Traffic;
use crate::core::ratelimit::LimiterStats;
use crate::core::{AuthFailure, ServerStats, Transport};
use crate::relay::control::ThreadReport;
use crate::relay::udp::{UdpStats, RECV_HIST_BOUNDS};

/// Everything one scrape looks at.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The reports of the threads that answered in time.
    pub reports: Vec<ThreadReport>,
    /// Relay threads configured.
    pub threads: usize,
    /// Traffic is counted per user (`--prometheus-username-labels`).
    pub by_user: bool,
    /// The 401 limiter's table (`--unauthorized-ratelimit`).
    pub limiter: Option<LimiterStats>,
    pub draining: bool,
    pub uptime_secs: u64,
}

/// Sums over every thread that answered.
#[derive(Default)]
struct Totals {
    stats: ServerStats,
    udp: UdpStats,
    allocations: [u64; 4],
    traffic: BTreeMap<(String, String), Traffic>,
    connections: u64,
    dtls_sessions: u64,
    recvmmsg: bool,
    sendmmsg: bool,
    gso: bool,
}

const TRANSPORTS: [Transport; 4] = [Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Dtls];

fn totals(reports: &[ThreadReport]) -> Totals {
    let mut t = Totals::default();
    for (i, r) in reports.iter().enumerate() {
        add_stats(&mut t.stats, &r.stats);
        t.udp.merge(&r.udp);
        for (transport, n) in &r.allocations {
            if let Some(k) = TRANSPORTS.iter().position(|x| x == transport) {
                t.allocations[k] += *n as u64;
            }
        }
        for (key, tr) in &r.traffic {
            t.traffic.entry(key.clone()).or_default().add(tr.client, tr.peer);
        }
        t.connections += r.connections as u64;
        t.dtls_sessions += r.dtls_sessions as u64;
        // The switches are process-wide; a thread that saw one go off wins.
        if i == 0 {
            (t.recvmmsg, t.sendmmsg, t.gso) = (r.recvmmsg, r.sendmmsg, r.gso);
        } else {
            t.recvmmsg &= r.recvmmsg;
            t.sendmmsg &= r.sendmmsg;
            t.gso &= r.gso;
        }
    }
    t
}

fn add_stats(sum: &mut ServerStats, s: &ServerStats) {
    sum.allocations_created += s.allocations_created;
    sum.allocations_deleted += s.allocations_deleted;
    sum.dropped_invalid += s.dropped_invalid;
    sum.unauthorized += s.unauthorized;
    sum.unauthorized_dropped += s.unauthorized_dropped;
    sum.dropped_over_bps += s.dropped_over_bps;
    for (a, b) in sum.auth_failures.iter_mut().zip(s.auth_failures.iter()) {
        *a += b;
    }
    sum.binding_requests += s.binding_requests;
    sum.binding_responses += s.binding_responses;
    sum.binding_errors += s.binding_errors;
    sum.refused_draining += s.refused_draining;
    sum.packets_processed += s.packets_processed;
    sum.packets_dropped += s.packets_dropped;
}

/// The `realm` (and `user`) labels of a traffic total.
fn traffic_labels(realm: &str, user: &str, by_user: bool) -> Vec<(&'static str, String)> {
    let mut l = vec![("realm", realm.to_string())];
    if by_user {
        l.push(("user", user.to_string()));
    }
    l
}

/// One traffic direction's four families (`prefix` + rcvp/rcvb/sentp/sentb),
/// labelled by realm[, user], and the four unlabelled totals.
fn traffic_families(out: &mut Vec<Family>, t: &Totals, by_user: bool, peer: bool) {
    type Pick = fn(&Traffic) -> [u64; 4];
    let (names, totals, pick): ([&'static str; 4], [&'static str; 4], Pick) = if peer {
        (
            ["turn_traffic_peer_rcvp", "turn_traffic_peer_rcvb", "turn_traffic_peer_sentp", "turn_traffic_peer_sentb"],
            [
                "turn_total_traffic_peer_rcvp",
                "turn_total_traffic_peer_rcvb",
                "turn_total_traffic_peer_sentp",
                "turn_total_traffic_peer_sentb",
            ],
            |x| [x.peer.rp, x.peer.rb, x.peer.sp, x.peer.sb],
        )
    } else {
        (
            ["turn_traffic_rcvp", "turn_traffic_rcvb", "turn_traffic_sentp", "turn_traffic_sentb"],
            ["turn_total_traffic_rcvp", "turn_total_traffic_rcvb", "turn_total_traffic_sentp", "turn_total_traffic_sentb"],
            |x| [x.client.rp, x.client.rb, x.client.sp, x.client.sb],
        )
    };
    let helps: [&'static str; 4] = if peer {
        [
            "Packets received from peers, by realm (finished and live sessions)",
            "Bytes received from peers, by realm (finished and live sessions)",
            "Packets sent to peers, by realm (finished and live sessions)",
            "Bytes sent to peers, by realm (finished and live sessions)",
        ]
    } else {
        [
            "Packets received from clients, by realm (finished and live sessions)",
            "Bytes received from clients, by realm (finished and live sessions)",
            "Packets sent to clients, by realm (finished and live sessions)",
            "Bytes sent to clients, by realm (finished and live sessions)",
        ]
    };
    let total_helps: [&'static str; 4] = if peer {
        ["Packets received from peers", "Bytes received from peers", "Packets sent to peers", "Bytes sent to peers"]
    } else {
        ["Packets received from clients", "Bytes received from clients", "Packets sent to clients", "Bytes sent to clients"]
    };
    let mut sums = [0u64; 4];
    for i in 0..4 {
        let mut f = Family::new(names[i], Kind::Counter, helps[i]);
        for ((realm, user), tr) in &t.traffic {
            let v = pick(tr)[i];
            f = f.with(traffic_labels(realm, user, by_user), v);
            sums[i] += v;
        }
        out.push(f);
    }
    for i in 0..4 {
        out.push(Family::single(totals[i], Kind::Counter, total_helps[i], sums[i]));
    }
}

/// Every family of a scrape, in a fixed order.
pub fn families(s: &Snapshot) -> Vec<Family> {
    let t = totals(&s.reports);
    let st = &t.stats;
    let mut out = Vec::with_capacity(64);

    // ---- coturn's metrics, coturn's names.
    out.push(Family::single("stun_binding_request", Kind::Counter, "STUN Binding requests received", st.binding_requests));
    out.push(Family::single("stun_binding_response", Kind::Counter, "STUN Binding success answers sent", st.binding_responses));
    out.push(Family::single("stun_binding_error", Kind::Counter, "STUN Binding error answers sent", st.binding_errors));
    traffic_families(&mut out, &t, s.by_user, false);
    traffic_families(&mut out, &t, s.by_user, true);
    let mut allocs = Family::new("turn_total_allocations", Kind::Gauge, "Current allocations by client transport");
    for (k, transport) in TRANSPORTS.iter().enumerate() {
        allocs = allocs.with(vec![("type", transport.label().to_string())], t.allocations[k]);
    }
    out.push(allocs);
    out.push(Family::single("turn_packet_processed", Kind::Counter, "Packets from clients and peers processed", st.packets_processed));
    out.push(Family::single(
        "turn_packet_dropped",
        Kind::Counter,
        "Packets from clients and peers dropped (neither answered nor relayed)",
        st.packets_dropped,
    ));
    out.push(Family::single(
        "turn_udp_recvmmsg_calls",
        Kind::Counter,
        "recvmmsg calls that returned at least one datagram",
        t.udp.recvmmsg_calls,
    ));
    out.push(Family::single("turn_udp_recvmmsg_packets", Kind::Counter, "UDP datagrams received (by recvmmsg, or recvmsg when it is off)", t.udp.recv_packets));
    out.push(Family::single("turn_udp_sendmmsg_flushes", Kind::Counter, "UDP egress batches flushed", t.udp.send_batches));
    out.push(Family::single("turn_udp_sendmmsg_datagrams", Kind::Counter, "UDP datagrams sent by the egress batches", t.udp.sent));
    out.push(Family::single("turn_udp_sendmmsg_gso_datagrams", Kind::Counter, "UDP datagrams sent as GSO segments", t.udp.gso_datagrams));
    out.push(Family::single(
        "turn_unauthenticated_401_requests",
        Kind::Counter,
        "Requests answered or due a 401/438 challenge",
        st.unauthorized + st.unauthorized_dropped,
    ));
    out.push(Family::single("turn_unauthenticated_401_responses", Kind::Counter, "401/438 challenges sent", st.unauthorized));
    out.push(Family::single(
        "turn_unauthenticated_401_dropped_responses",
        Kind::Counter,
        "UDP 401 challenges not sent because of --unauthorized-ratelimit",
        st.unauthorized_dropped,
    ));
    let lim = s.limiter.as_ref();
    out.push(Family::single(
        "turn_ratelimit_hash_collisions",
        Kind::Counter,
        "401 limiter: source IPs that found their slot held by another IP",
        lim.map_or(0, |l| l.collisions),
    ));
    out.push(Family::single(
        "turn_ratelimit_occupied_buckets",
        Kind::Gauge,
        "401 limiter: slots in use this second",
        lim.map_or(0, |l| l.occupied as u64),
    ));
    out.push(Family::single("turn_ratelimit_total_buckets", Kind::Gauge, "401 limiter: slots in the table", lim.map_or(0, |l| l.total as u64)));

    // ---- ours.
    out.push(Family::single(
        "turn_allocations_created_total",
        Kind::Counter,
        "Allocations created (rate() of it is the allocation rate)",
        st.allocations_created,
    ));
    out.push(Family::single("turn_allocations_deleted_total", Kind::Counter, "Allocations ended (refresh 0, expiry, cancel)", st.allocations_deleted));
    out.push(Family::single(
        "turn_allocations_refused_draining_total",
        Kind::Counter,
        "Allocate requests refused (403) because the server is draining",
        st.refused_draining,
    ));
    let mut auth = Family::new("turn_auth_failures_total", Kind::Counter, "Signed requests refused, by reason");
    for why in AuthFailure::ALL {
        auth = auth.with(vec![("reason", why.label().to_string())], st.auth_failures[why as usize]);
    }
    out.push(auth);
    out.push(Family::single(
        "turn_dropped_invalid_packets_total",
        Kind::Counter,
        "Client packets dropped as neither STUN nor ChannelData (or with a bad FINGERPRINT)",
        st.dropped_invalid,
    ));
    out.push(Family::single(
        "turn_dropped_over_bps_total",
        Kind::Counter,
        "Relayed packets dropped for exceeding a session's max-bps",
        st.dropped_over_bps,
    ));
    out.push(Family::histogram(
        "turn_udp_recv_batch_size",
        "Datagrams returned per UDP receive call",
        &RECV_HIST_BOUNDS,
        &t.udp.recv_hist,
        t.udp.recv_packets,
    ));
    out.push(Family::single("turn_udp_recvmsg_calls_total", Kind::Counter, "Single-datagram receive calls (recvmmsg off)", t.udp.recvmsg_calls));
    out.push(Family::single("turn_udp_sendmmsg_calls_total", Kind::Counter, "sendmmsg calls", t.udp.sendmmsg_calls));
    out.push(Family::single("turn_udp_gso_sends_total", Kind::Counter, "GSO sends (one call, several datagrams)", t.udp.gso_sends));
    out.push(Family::single("turn_udp_sendto_calls_total", Kind::Counter, "Single-datagram sends", t.udp.sendto_calls));
    out.push(Family::single(
        "turn_udp_send_dropped_total",
        Kind::Counter,
        "UDP datagrams the kernel refused (full socket buffer or an error)",
        t.udp.dropped,
    ));
    out.push(Family::single("turn_udp_recv_truncated_total", Kind::Counter, "UDP datagrams cut to the receive buffer", t.udp.recv_truncated));
    out.push(Family::single(
        "turn_udp_fallbacks_total",
        Kind::Counter,
        "Times a relay thread found a batched UDP call refused and fell back",
        t.udp.fallbacks,
    ));
    out.push(
        Family::new("turn_udp_fast_path_enabled", Kind::Gauge, "Batched UDP features in use (1) or off (0)")
            .with(vec![("feature", "recvmmsg".into())], u64::from(t.recvmmsg))
            .with(vec![("feature", "sendmmsg".into())], u64::from(t.sendmmsg))
            .with(vec![("feature", "gso".into())], u64::from(t.gso)),
    );
    out.push(Family::single("turn_connections", Kind::Gauge, "Open TCP and TLS client connections", t.connections));
    out.push(Family::single("turn_dtls_sessions", Kind::Gauge, "DTLS sessions", t.dtls_sessions));
    out.push(Family::single("turn_draining", Kind::Gauge, "1 while the server drains (new allocations refused)", u64::from(s.draining)));
    out.push(Family::single("turn_relay_threads", Kind::Gauge, "Relay threads", s.threads as u64));
    out.push(Family::single(
        "turn_relay_threads_reporting",
        Kind::Gauge,
        "Relay threads that answered this scrape in time (the counters cover only these)",
        s.reports.len() as u64,
    ));
    out.push(Family::single("turn_uptime_seconds", Kind::Gauge, "Seconds since the server started", s.uptime_secs));
    out
}

#[cfg(test)]
mod tests {
    use super::super::text::render;
    use super::*;
    use crate::core::allocation::Usage;

    fn report(thread: u32) -> ThreadReport {
        let mut r = ThreadReport {
            thread,
            allocations: vec![(Transport::Udp, 2), (Transport::Tcp, 0), (Transport::Tls, 1), (Transport::Dtls, 0)],
            recvmmsg: true,
            sendmmsg: true,
            ..Default::default()
        };
        r.stats.allocations_created = 5;
        r.stats.auth_failures[AuthFailure::WrongIntegrity as usize] = 3;
        r.stats.unauthorized = 4;
        r.stats.unauthorized_dropped = 1;
        r.udp.recv_hist = [1, 0, 1, 0, 0, 0];
        r.udp.recv_packets = 4;
        let mut t = Traffic::default();
        t.add(Usage { rp: 10, rb: 1000, sp: 9, sb: 900 }, Usage { rp: 1, rb: 2, sp: 3, sb: 4 });
        r.traffic.insert(("example.org".into(), "alice".into()), t);
        r
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next())
    }

    #[test]
    fn sums_threads() {
        let snap = Snapshot { reports: vec![report(0), report(1)], threads: 2, ..Default::default() };
        let text = render(&families(&snap));
        assert_eq!(line(&text, "turn_total_allocations{type=\"UDP\"}"), Some("4"));
        assert_eq!(line(&text, "turn_total_allocations{type=\"TLS/TCP\"}"), Some("2"));
        assert_eq!(line(&text, "turn_total_allocations{type=\"DTLS\"}"), Some("0"));
        assert_eq!(line(&text, "turn_allocations_created_total "), Some("10"));
        assert_eq!(line(&text, "turn_auth_failures_total{reason=\"wrong_integrity\"}"), Some("6"));
        assert_eq!(line(&text, "turn_auth_failures_total{reason=\"stale_nonce\"}"), Some("0"));
        assert_eq!(line(&text, "turn_unauthenticated_401_requests "), Some("10"));
        assert_eq!(line(&text, "turn_unauthenticated_401_dropped_responses "), Some("2"));
        assert_eq!(line(&text, "turn_udp_recv_batch_size_bucket{le=\"4\"}"), Some("4"));
        assert_eq!(line(&text, "turn_udp_recv_batch_size_sum "), Some("8"));
        assert_eq!(line(&text, "turn_udp_fast_path_enabled{feature=\"gso\"}"), Some("0"));
        assert_eq!(line(&text, "turn_udp_fast_path_enabled{feature=\"sendmmsg\"}"), Some("1"));
        assert_eq!(line(&text, "turn_relay_threads_reporting "), Some("2"));
    }

    #[test]
    fn traffic_labels_follow_the_user_switch() {
        let snap = Snapshot { reports: vec![report(0), report(1)], threads: 2, ..Default::default() };
        let text = render(&families(&snap));
        assert_eq!(line(&text, "turn_traffic_rcvb{realm=\"example.org\"}"), Some("2000"));
        assert_eq!(line(&text, "turn_traffic_peer_sentb{realm=\"example.org\"}"), Some("8"));
        assert_eq!(line(&text, "turn_total_traffic_sentp "), Some("18"));
        assert!(!text.contains("user=\""), "{text}");
        let snap = Snapshot { reports: vec![report(0)], threads: 1, by_user: true, ..Default::default() };
        let text = render(&families(&snap));
        assert_eq!(line(&text, "turn_traffic_rcvp{realm=\"example.org\",user=\"alice\"}"), Some("10"));
    }

    #[test]
    fn no_reports_still_lists_every_family() {
        let with = families(&Snapshot { reports: vec![report(0)], threads: 1, ..Default::default() });
        let without = families(&Snapshot { threads: 1, ..Default::default() });
        let names = |f: &[Family]| f.iter().map(|x| x.name).collect::<Vec<_>>();
        assert_eq!(names(&with), names(&without));
        let mut sorted = names(&with);
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), with.len(), "a family name appears twice");
    }
}
