//! Limits and policy on a virtual clock: `--max-bps`, BANDWIDTH and
//! `--bps-capacity`, the 401 rate limit, `--check-origin-consistency`,
//! `--server-relay`, the server's own addresses as peers, and the size of
//! unauthenticated answers (amplification).

use std::sync::Arc;

use proptest::prelude::*;

use super::util::*;
use super::{peer_msg, refresh_msg, send_indication};
use crate::core::bandwidth::BpsCapacity;
use crate::core::peer_policy::{IpRange, OwnAddresses};
use crate::core::ratelimit::UnauthLimiter;
use crate::core::{CoreConfig, Dest, RelayId, Transport};
use crate::stun::{AttrType, ChannelData, Message, MessageBuilder, MessageType, Method, TransactionId};

const PEER: &str = "203.0.113.5:7000";

/// Bind channel 0x4001 to PEER.
fn with_channel(h: &mut Harness, c: &mut TestClient) -> RelayId {
    let (_, relay) = allocate(h, c);
    let m = peer_msg(c, Method::CHANNEL_BIND, PEER, Some(0x4001));
    assert_eq!(code_of(&h.request(c, m)), 0);
    relay
}

/// Offer `per_ms` datagrams of `size` bytes every millisecond for `ms`
/// milliseconds, through `send`; the payload bytes that were let through.
fn offer(h: &mut Harness, ms: u64, per_ms: usize, size: usize, mut send: impl FnMut(&mut Harness) -> usize) -> u64 {
    let mut passed = 0u64;
    for _ in 0..ms {
        h.now = h.now.plus_ms(1);
        for _ in 0..per_ms {
            passed += (send(h) * size) as u64;
        }
    }
    let _ = h;
    passed
}

#[test]
fn max_bps_holds_each_direction_separately() {
    let mut cfg = long_term_config();
    cfg.max_bps = 20_000;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    let relay = with_channel(&mut h, &mut c);
    let mut frame = Vec::new();
    ChannelData::encode(0x4001, &[7u8; 200], false, &mut frame);
    // Client → peer: 200 KB/s offered for 3 s, 20 KB/s allowed plus the
    // 100 ms burst.
    let up = offer(&mut h, 3000, 1, 200, |h| h.from_client(c.addr, &frame).len());
    assert!((60_000..=62_000).contains(&up), "client → peer passed {up} bytes");
    // Peer → client has its own bucket, full again.
    let down = offer(&mut h, 3000, 1, 200, |h| h.from_peer(relay, addr(PEER), &[9u8; 200]).len());
    assert!((60_000..=62_000).contains(&down), "peer → client passed {down} bytes");
    let a = h.server.allocation(c.addr, h.local).unwrap();
    assert!(a.dropped_over_limit.0 > 2_000 && a.dropped_over_limit.1 > 2_000, "{:?}", a.dropped_over_limit);
    assert_eq!(h.server.stats.dropped_over_bps, a.dropped_over_limit.0 + a.dropped_over_limit.1);
    // Under the limit nothing is lost: 10 KB/s for 2 s.
    let before = a.dropped_over_limit;
    let sent = offer(&mut h, 2000, 1, 10, |h| h.from_client(c.addr, &{
        let mut f = Vec::new();
        ChannelData::encode(0x4001, &[1u8; 10], false, &mut f);
        f
    }).len());
    assert_eq!(sent, 20_000);
    assert_eq!(h.server.allocation(c.addr, h.local).unwrap().dropped_over_limit, before);
}

#[test]
fn send_indications_count_against_max_bps() {
    let mut cfg = long_term_config();
    cfg.max_bps = 10_000;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    let m = peer_msg(&mut c, Method::CREATE_PERMISSION, PEER, None);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let ind = send_indication(PEER, &[3u8; 100]);
    let up = offer(&mut h, 2000, 1, 100, |h| h.from_client(c.addr, &ind).len());
    assert!((20_000..=21_600).contains(&up), "{up}");
}

fn bandwidth_of(answer: &[u8]) -> Option<u32> {
    Message::parse(answer).unwrap().u32_attr(AttrType::BANDWIDTH).map(|r| r.unwrap())
}

#[test]
fn bandwidth_attribute_is_held_to_max_bps_and_reported() {
    let mut cfg = long_term_config();
    cfg.max_bps = 64_000;
    let mut h = Harness::new(cfg);
    // A lower request is granted as asked (units of 128 B/s) and reported.
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let m = c.allocate_msg(|b| {
        b.add_u32(AttrType::BANDWIDTH, 100);
    });
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert_eq!(bandwidth_of(&a), Some(100));
    assert_eq!(h.server.allocation(c.addr, h.local).unwrap().limit.unwrap().bps(), 12_800);
    // A higher one is held to max-bps.
    let mut d = TestClient::new("198.51.100.7:40001");
    d.nonce = c.nonce.clone();
    d.realm = c.realm.clone();
    let m = d.allocate_msg(|b| {
        b.add_u32(AttrType::BANDWIDTH, 1_000_000);
    });
    let a = h.request(&mut d, m);
    assert_eq!(bandwidth_of(&a), Some(500));
    assert_eq!(h.server.allocation(d.addr, h.local).unwrap().limit.unwrap().bps(), 64_000);
    // No BANDWIDTH asked: max-bps applies, and the answer carries no
    // BANDWIDTH (a comprehension-required attribute the client never used).
    let mut e = TestClient::new("198.51.100.7:40002");
    e.nonce = c.nonce.clone();
    e.realm = c.realm.clone();
    let m = e.allocate_msg(|_| {});
    let a = h.request(&mut e, m);
    assert_eq!(bandwidth_of(&a), None);
    assert_eq!(h.server.allocation(e.addr, h.local).unwrap().limit.unwrap().bps(), 64_000);
}

#[test]
fn no_limit_means_unlimited() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    with_channel(&mut h, &mut c);
    assert!(h.server.allocation(c.addr, h.local).unwrap().limit.is_none());
    let mut frame = Vec::new();
    ChannelData::encode(0x4001, &[7u8; 1000], false, &mut frame);
    let up = offer(&mut h, 100, 10, 1000, |h| h.from_client(c.addr, &frame).len());
    assert_eq!(up, 1_000_000);
}

#[test]
fn bps_capacity_grants_until_spent_then_486_and_refills() {
    let mut cfg = long_term_config();
    cfg.max_bps = 10_000;
    cfg.bps_capacity = Arc::new(BpsCapacity::new(25_000));
    let cap = Arc::clone(&cfg.bps_capacity);
    let mut h = Harness::new(cfg);
    let mut clients: Vec<TestClient> = (0..4).map(|i| TestClient::new(&format!("198.51.100.{}:4000", 10 + i))).collect();
    let mut codes = Vec::new();
    for c in clients.iter_mut() {
        let m = c.allocate_msg(|_| {});
        assert_eq!(code_of(&h.request(c, m)), 401);
        let m = c.allocate_msg(|_| {});
        codes.push(code_of(&h.request(c, m)));
    }
    assert_eq!(codes, vec![0, 0, 0, 486]);
    let rates: Vec<u64> = clients[..3].iter().map(|c| h.server.allocation(c.addr, h.local).unwrap().limit.unwrap().bps()).collect();
    assert_eq!(rates, vec![10_000, 10_000, 5_000]);
    assert_eq!(cap.granted(), 25_000);
    // Deleting one gives its share back; the fourth client gets in.
    let m = refresh_msg(&mut clients[0], Some(0));
    assert_eq!(code_of(&h.request(&mut clients[0], m)), 0);
    assert_eq!(cap.granted(), 15_000);
    let m = clients[3].allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut clients[3], m)), 0);
    assert_eq!(cap.granted(), 25_000);
    // Expiry gives everything back.
    h.advance(3600);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(cap.granted(), 0);
}

/// Send `n` Allocates from `c`; how many got any answer.
fn answered_allocates(h: &mut Harness, c: &mut TestClient, n: usize) -> usize {
    (0..n)
        .filter(|_| {
            let m = c.allocate_msg(|_| {});
            !h.from_client(c.addr, &m).is_empty()
        })
        .count()
}

#[test]
fn unauthorized_ratelimit_caps_401s_per_source_ip_over_udp() {
    let mut cfg = long_term_config();
    cfg.unauth_limiter = Some(Arc::new(UnauthLimiter::new(3)));
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    assert_eq!(answered_allocates(&mut h, &mut c, 10), 3);
    assert_eq!(h.server.stats.unauthorized_dropped, 7);
    // Another port of the same IP shares the count; another IP has its own.
    let mut same_ip = TestClient::new("198.51.100.7:40001");
    let m = same_ip.allocate_msg(|_| {});
    assert!(h.from_client(same_ip.addr, &m).is_empty());
    let mut other = TestClient::new("198.51.100.8:40000");
    let m = other.allocate_msg(|_| {});
    assert_eq!(h.from_client(other.addr, &m).len(), 1);
    // Wrong passwords are 401s too.
    let mut guesser = TestClient::new("198.51.100.9:40000");
    let m = guesser.allocate_msg(|_| {});
    h.request(&mut guesser, m);
    guesser.pass = "guess".into();
    assert_eq!(answered_allocates(&mut h, &mut guesser, 5), 2);
    // The next second the source is answered again, and a right password
    // was never limited (only 401s count).
    h.now = h.now.plus_secs(1);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // Streams are not limited (their source cannot be spoofed).
    h.transport = Transport::Tcp;
    let mut t = TestClient::new("198.51.100.7:40002");
    assert_eq!(answered_allocates(&mut h, &mut t, 10), 10);
}

#[test]
fn origin_consistency_refuses_requests_with_another_origin() {
    for check in [false, true] {
        let mut cfg = long_term_config();
        cfg.check_origin_consistency = check;
        let mut h = Harness::new(cfg);
        let mut c = TestClient::new("198.51.100.7:40000");
        let origin = |b: &mut MessageBuilder, o: &str| {
            b.add_raw(AttrType::ORIGIN, o.as_bytes());
        };
        let m = c.allocate_msg(|b| origin(b, "https://a.example"));
        assert_eq!(code_of(&h.request(&mut c, m)), 401);
        let m = c.allocate_msg(|b| origin(b, "https://a.example"));
        assert_eq!(code_of(&h.request(&mut c, m)), 0);
        let expect = if check { 441 } else { 0 };
        // Same origin: fine either way.
        let tid = c.tid();
        let m = c.build(Method::REFRESH, tid, |b| origin(b, "https://a.example"));
        assert_eq!(code_of(&h.request(&mut c, m)), 0);
        // Another origin, or none, on Refresh, CreatePermission, ChannelBind.
        let tid = c.tid();
        let m = c.build(Method::REFRESH, tid, |b| origin(b, "https://evil.example"));
        assert_eq!(code_of(&h.request(&mut c, m)), expect);
        let m = refresh_msg(&mut c, Some(600));
        assert_eq!(code_of(&h.request(&mut c, m)), expect);
        let tid = c.tid();
        let m = c.build(Method::CREATE_PERMISSION, tid, |b| {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, addr(PEER));
            origin(b, "https://evil.example");
        });
        assert_eq!(code_of(&h.request(&mut c, m)), expect);
        let m = peer_msg(&mut c, Method::CHANNEL_BIND, PEER, Some(0x4001));
        assert_eq!(code_of(&h.request(&mut c, m)), expect);
        let tid = c.tid();
        let m = c.build(Method::CREATE_PERMISSION, tid, |b| {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, addr(PEER));
            origin(b, "https://a.example");
        });
        assert_eq!(code_of(&h.request(&mut c, m)), 0);
    }
}

#[test]
fn server_relay_needs_no_permission_but_keeps_the_peer_policy() {
    let mut cfg = long_term_config();
    cfg.server_relay = true;
    cfg.peers.denied = vec!["203.0.113.66".parse::<IpRange>().unwrap()];
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    let (_, relay) = allocate(&mut h, &mut c);
    // Peer → client without any permission.
    let out = h.from_peer(relay, addr(PEER), b"from the back end");
    assert_eq!(out.len(), 1);
    // Client → peer by Send without a permission...
    let out = h.from_client(c.addr, &send_indication(PEER, b"hi"));
    assert_eq!(out, vec![(Dest::Peer { relay, to: addr(PEER) }, b"hi".to_vec())]);
    // ...but not to a denied peer, nor to a fixed denial.
    assert!(h.from_client(c.addr, &send_indication("203.0.113.66:7000", b"hi")).is_empty());
    assert!(h.from_client(c.addr, &send_indication("169.254.169.254:80", b"hi")).is_empty());
}

fn own_config() -> CoreConfig {
    let mut cfg = long_term_config();
    cfg.peers.own = OwnAddresses {
        listeners: vec![addr("192.0.2.1:3478"), addr("192.0.2.1:5349"), addr("0.0.0.0:3479")],
        ips: vec![addr("192.0.2.1:0").ip(), addr("10.0.0.5:0").ip(), addr("203.0.113.1:0").ip()],
        relay_ports: (49152, 65535),
    };
    cfg
}

#[test]
fn the_servers_own_addresses_are_refused_as_peers() {
    let mut h = Harness::new(own_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (_, relay) = allocate(&mut h, &mut c);
    let perm = |h: &mut Harness, c: &mut TestClient, peer: &str| {
        let m = peer_msg(c, Method::CREATE_PERMISSION, peer, None);
        code_of(&h.request(c, m))
    };
    // Listeners, in every spelling of their address.
    assert_eq!(perm(&mut h, &mut c, "192.0.2.1:3478"), 403);
    assert_eq!(perm(&mut h, &mut c, "[::ffff:192.0.2.1]:5349"), 403);
    assert_eq!(perm(&mut h, &mut c, "10.0.0.5:3479"), 403, "wildcard listener on an own IP");
    // Other services on listening, relay (private) and external IPs.
    assert_eq!(perm(&mut h, &mut c, "10.0.0.5:5432"), 403);
    assert_eq!(perm(&mut h, &mut c, "203.0.113.1:6379"), 403);
    // A relay port is another allocation: relay to relay stays possible.
    assert_eq!(perm(&mut h, &mut c, "203.0.113.1:50000"), 0);
    // ChannelBind checks the port too.
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.1:22", Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, m)), 403);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.1:50001", Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // The permission for 203.0.113.1 covers the IP, but a Send to a non-relay
    // port of it is still dropped; to a relay port it goes.
    assert!(h.from_client(c.addr, &send_indication("203.0.113.1:22", b"x")).is_empty());
    let out = h.from_client(c.addr, &send_indication("203.0.113.1:50002", b"x"));
    assert_eq!(out, vec![(Dest::Peer { relay, to: addr("203.0.113.1:50002") }, b"x".to_vec())]);
}

#[test]
fn an_allowed_range_overrides_the_own_address_refusal() {
    let mut cfg = own_config();
    cfg.peers.allowed = vec!["10.0.0.5".parse::<IpRange>().unwrap()];
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    let m = peer_msg(&mut c, Method::CREATE_PERMISSION, "10.0.0.5:5432", None);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let m = peer_msg(&mut c, Method::CREATE_PERMISSION, "203.0.113.1:5432", None);
    assert_eq!(code_of(&h.request(&mut c, m)), 403);
}

#[test]
fn loopback_listeners_stay_refused_with_allow_loopback_peers() {
    let mut cfg = long_term_config();
    assert!(cfg.peers.allow_loopback);
    cfg.peers.own = OwnAddresses {
        listeners: vec![addr("127.0.0.1:3478")],
        ips: vec![addr("127.0.0.1:0").ip()],
        relay_ports: (49152, 65535),
    };
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    let m = peer_msg(&mut c, Method::CREATE_PERMISSION, "127.0.0.1:3478", None);
    assert_eq!(code_of(&h.request(&mut c, m)), 403);
    // The operator allowed loopback peers: a test peer on another port is fine.
    let m = peer_msg(&mut c, Method::CREATE_PERMISSION, "127.0.0.1:9000", None);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
}

/// The largest unauthenticated answer allowed, when the request is smaller.
const ANSWER_BOUND: usize = 256;

/// Requests an unauthenticated (possibly spoofed) source can send, in many
/// shapes; none carries a valid MESSAGE-INTEGRITY.
fn unauthenticated_requests() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut c = TestClient::new("198.51.100.7:40000");
    for m in [Method::BINDING, Method::ALLOCATE, Method::REFRESH, Method::CREATE_PERMISSION, Method::CHANNEL_BIND, Method::CONNECT, Method::CONNECTION_BIND] {
        let tid = c.tid();
        v.push(c.build(m, tid, |_| {}));
    }
    // Unknown comprehension-required attributes: 420 lists them.
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::BINDING, crate::stun::Class::Request), TransactionId([1; 12]));
    for t in 0x0030..0x0060u16 {
        b.add_raw(t, &[]);
    }
    let r = b.finish();
    v.push(buf[r].to_vec());
    // Wrong credentials and a stale nonce.
    let mut w = TestClient::new("198.51.100.7:40000");
    w.nonce = Some("0".repeat(40));
    w.realm = Some("x".repeat(120));
    w.user = "u".repeat(200);
    v.push(w.allocate_msg(|_| {}));
    // Binding with every RFC 5780 attribute.
    let tid = c.tid();
    v.push(c.build(Method::BINDING, tid, |b| {
        b.add_u32(AttrType::CHANGE_REQUEST, 6);
        b.add_raw(AttrType::PADDING, &[0; 4]);
    }));
    v
}

fn assert_small_answers(h: &mut Harness, from: &str, req: &[u8]) {
    let out = h.from_client(addr(from), req);
    assert!(out.len() <= 1, "{} datagrams for one request", out.len());
    if let Some((_, bytes)) = out.first() {
        assert!(bytes.len() <= ANSWER_BOUND.max(req.len()), "{}-byte answer to a {}-byte request", bytes.len(), req.len());
    }
}

fn amplification_configs() -> Vec<CoreConfig> {
    let mut rfc5780 = long_term_config();
    let mut map = std::collections::HashMap::new();
    map.insert(addr("192.0.2.1:3478"), addr("192.0.2.2:3479"));
    rfc5780.rfc5780 = Some(map);
    rfc5780.software = Some("turnserver-rs-0.0.0-with-a-long-software-name".into());
    rfc5780.fingerprint = true;
    rfc5780.stun_backward_compatibility = true;
    let mut alt = long_term_config();
    alt.alternates.general = vec![addr("[2001:db8::1]:3478"), addr("192.0.2.9:3478")];
    vec![long_term_config(), rfc5780, alt]
}

#[test]
fn unauthenticated_answers_are_single_and_small() {
    for cfg in amplification_configs() {
        let mut h = Harness::new(cfg);
        for req in unauthenticated_requests() {
            assert_small_answers(&mut h, "198.51.100.7:40000", &req);
        }
        assert_eq!(h.server.allocation_count(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Mutated unauthenticated requests never get more than one answer, nor
    /// one larger than the bound (or than the request itself).
    #[test]
    fn mutated_requests_never_amplify(
        pick in 0usize..10,
        cfg_pick in 0usize..3,
        flips in proptest::collection::vec((0usize..2048, any::<u8>()), 0..8),
    ) {
        let reqs = unauthenticated_requests();
        let mut req = reqs[pick % reqs.len()].clone();
        for (at, v) in flips {
            let i = at % req.len();
            req[i] ^= v;
        }
        let cfg = amplification_configs().swap_remove(cfg_pick);
        let mut h = Harness::new(cfg);
        assert_small_answers(&mut h, "198.51.100.7:40000", &req);
        prop_assert_eq!(h.server.allocation_count(), 0);
    }
}
