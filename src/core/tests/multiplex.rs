//! `--multiplex-peer`: allocations of a thread share one relay socket and
//! peers are told apart by their exact address.

use super::util::*;
use crate::core::Dest;
use crate::stun::{AttrType, ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

fn mux_harness(max_peers: usize) -> Harness {
    let mut cfg = long_term_config();
    cfg.multiplex_max_peers = max_peers;
    let mut h = Harness::new(cfg);
    h.relays.multiplex = true;
    h
}

fn bind(h: &mut Harness, c: &mut TestClient, peer: &str, ch: u16) -> u16 {
    let tid = c.tid();
    let peer = addr(peer);
    let m = c.build(Method::CHANNEL_BIND, tid, |b| {
        b.add_u32(AttrType::CHANNEL_NUMBER, u32::from(ch) << 16);
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    });
    code_of(&h.request(c, m))
}

fn permit(h: &mut Harness, c: &mut TestClient, peer: &str) -> u16 {
    let tid = c.tid();
    let peer = addr(peer);
    let m = c.build(Method::CREATE_PERMISSION, tid, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    });
    code_of(&h.request(c, m))
}

fn send(h: &mut Harness, c: &TestClient, peer: &str, data: &[u8]) -> usize {
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId([3; 12]));
    b.add_xor_address(AttrType::XOR_PEER_ADDRESS, addr(peer));
    b.add_raw(AttrType::DATA, data);
    let r = b.finish();
    h.from_client(c.addr, &buf[r]).len()
}

#[test]
fn even_port_is_508_on_a_shared_relay() {
    let mut h = mux_harness(256);
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::EVEN_PORT, &[0x80]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 508);
}

#[test]
fn peers_are_demultiplexed_by_exact_address() {
    let mut h = mux_harness(256);
    let mut a = TestClient::new("198.51.100.7:40000");
    let mut b = TestClient::new("198.51.100.8:40000");
    let (ra, relay) = allocate(&mut h, &mut a);
    let (rb, relay_b) = allocate(&mut h, &mut b);
    assert_eq!((ra, relay), (rb, relay_b), "both share the thread's relay");
    assert_eq!(bind(&mut h, &mut a, "203.0.113.5:7000", 0x4000), 0);
    assert_eq!(bind(&mut h, &mut b, "203.0.113.5:7001", 0x4000), 0);
    // The same endpoint cannot belong to two allocations of one thread.
    assert_eq!(bind(&mut h, &mut b, "203.0.113.5:7000", 0x4001), 508);
    let out = h.from_peer(relay, addr("203.0.113.5:7000"), b"to-a");
    assert_eq!(out[0].0, Dest::Client { transport: crate::core::Transport::Udp, local: h.local, to: a.addr });
    assert_eq!(ChannelData::parse(&out[0].1).unwrap().data, b"to-a");
    let out = h.from_peer(relay, addr("203.0.113.5:7001"), b"to-b");
    assert_eq!(out[0].0, Dest::Client { transport: crate::core::Transport::Udp, local: h.local, to: b.addr });
    // Deleting A frees its endpoint for B.
    let tid = a.tid();
    let m = a.build(Method::REFRESH, tid, |bb| {
        bb.add_u32(AttrType::LIFETIME, 0);
    });
    h.request(&mut a, m);
    assert_eq!(h.server.by_peer.len(), 1, "A's endpoint is gone");
    // B permits that IP (its channel peer), so the endpoint's next datagram is
    // first contact for B, and B may bind it.
    let out = h.from_peer(relay, addr("203.0.113.5:7000"), b"x");
    assert_eq!(out[0].0, Dest::Client { transport: crate::core::Transport::Udp, local: h.local, to: b.addr });
    assert_eq!(bind(&mut h, &mut b, "203.0.113.5:7000", 0x4001), 0);
    assert!(h.server.by_peer.len() == 2);
}

#[test]
fn first_contact_goes_to_the_one_allocation_permitting_the_ip() {
    let mut h = mux_harness(256);
    let mut a = TestClient::new("198.51.100.7:40000");
    let mut b = TestClient::new("198.51.100.8:40000");
    let (_, relay) = allocate(&mut h, &mut a);
    allocate(&mut h, &mut b);
    assert_eq!(permit(&mut h, &mut a, "203.0.113.9:1"), 0);
    // An ICE check from a port the client never sent to.
    let out = h.from_peer(relay, addr("203.0.113.9:5555"), b"check");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Dest::Client { transport: crate::core::Transport::Udp, local: h.local, to: a.addr });
    let m = Message::parse(&out[0].1).unwrap();
    assert_eq!(m.method(), Method::DATA);
    // When two allocations permit the IP, an unknown endpoint is ambiguous: dropped.
    assert_eq!(permit(&mut h, &mut b, "203.0.113.9:1"), 0);
    assert!(h.from_peer(relay, addr("203.0.113.9:6666"), b"?").is_empty());
    // Endpoints already known keep working.
    assert_eq!(h.from_peer(relay, addr("203.0.113.9:5555"), b"again").len(), 1);
    // When the permission expires, the endpoint is forgotten.
    h.advance(301);
    assert!(h.from_peer(relay, addr("203.0.113.9:5555"), b"late").is_empty());
    assert!(h.server.by_peer.is_empty());
    assert!(h.server.perm_owners.is_empty());
}

#[test]
fn peer_cap_per_allocation() {
    let mut h = mux_harness(2);
    let mut a = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut a);
    assert_eq!(permit(&mut h, &mut a, "203.0.113.5:1"), 0);
    assert_eq!(send(&mut h, &a, "203.0.113.5:1", b"1"), 1);
    assert_eq!(send(&mut h, &a, "203.0.113.5:2", b"2"), 1);
    assert_eq!(send(&mut h, &a, "203.0.113.5:3", b"3"), 0, "third endpoint over the cap is dropped");
    assert_eq!(bind(&mut h, &mut a, "203.0.113.5:4", 0x4000), 508);
}
