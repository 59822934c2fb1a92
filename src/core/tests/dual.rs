//! RFC 6156 address families and RFC 8656 dual allocations
//! (ADDITIONAL-ADDRESS-FAMILY / ADDRESS-ERROR-CODE).

use std::net::SocketAddr;

use super::util::*;
use crate::config::AddressFamilyDefault;
use crate::core::{Dest, RelayId};
use crate::stun::{AttrType, ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const V4_PEER: &str = "203.0.113.5:7000";
const V6_PEER: &str = "[2001:db8:1::5]:7000";

fn v6_harness() -> Harness {
    let mut h = Harness::new(long_term_config());
    h.relays.v6 = true;
    h
}

/// Get the 401 so later requests are signed.
fn challenge(h: &mut Harness, c: &mut TestClient) {
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(c, m)), 401);
}

fn dual_allocate_msg(c: &mut TestClient, extra: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    c.allocate_msg(|b| {
        b.add_raw(AttrType::ADDITIONAL_ADDRESS_FAMILY, &[2, 0, 0, 0]);
        extra(b);
    })
}

fn relayed(answer: &[u8]) -> Vec<SocketAddr> {
    let m = Message::parse(answer).unwrap();
    m.xor_addresses(AttrType::XOR_RELAYED_ADDRESS).into_iter().map(|r| r.unwrap()).collect()
}

/// ADDRESS-ERROR-CODE as (family byte, error code).
fn address_error(answer: &[u8]) -> Option<(u8, u16)> {
    let m = Message::parse(answer).unwrap();
    m.get(AttrType::ADDRESS_ERROR_CODE).map(|v| (v[0], u16::from(v[2] & 7) * 100 + u16::from(v[3])))
}

fn relay_id(h: &Harness, a: SocketAddr) -> RelayId {
    RelayId(*h.relays.open.iter().find(|(_, &x)| x == a).map(|(id, _)| id).unwrap())
}

fn request_peers(h: &mut Harness, c: &mut TestClient, method: Method, peers: &[&str], channel: Option<u16>) -> u16 {
    let tid = c.tid();
    let peers: Vec<SocketAddr> = peers.iter().map(|p| addr(p)).collect();
    let m = c.build(method, tid, |b| {
        if let Some(ch) = channel {
            b.add_u32(AttrType::CHANNEL_NUMBER, u32::from(ch) << 16);
        }
        for p in peers {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, p);
        }
    });
    code_of(&h.request(c, m))
}

fn send_indication(peer: &str, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId([3; 12]));
    b.add_xor_address(AttrType::XOR_PEER_ADDRESS, addr(peer));
    b.add_raw(AttrType::DATA, data);
    let r = b.finish();
    buf[r].to_vec()
}

fn refresh_msg(c: &mut TestClient, lifetime: Option<u32>, family: Option<u8>) -> Vec<u8> {
    let tid = c.tid();
    c.build(Method::REFRESH, tid, |b| {
        if let Some(l) = lifetime {
            b.add_u32(AttrType::LIFETIME, l);
        }
        if let Some(f) = family {
            b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[f, 0, 0, 0]);
        }
    })
}

/// A dual allocation; returns (IPv4 relay, IPv6 relay).
fn dual(h: &mut Harness, c: &mut TestClient) -> (SocketAddr, SocketAddr) {
    challenge(h, c);
    let m = dual_allocate_msg(c, |_| {});
    let a = h.request(c, m);
    assert_eq!(code_of(&a), 0);
    let r = relayed(&a);
    assert_eq!(r.len(), 2, "two XOR-RELAYED-ADDRESS");
    (r[0], r[1])
}

// ----- RFC 6156 -----

#[test]
fn requested_family_crosses_client_family() {
    let mut h = v6_harness();
    // IPv4 client, IPv6 relay.
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert!(relayed(&a)[0].is_ipv6());
    assert_eq!(request_peers(&mut h, &mut c, Method::CREATE_PERMISSION, &[V4_PEER], None), 443);
    assert_eq!(request_peers(&mut h, &mut c, Method::CREATE_PERMISSION, &[V6_PEER], None), 0);
    // Refresh naming the other family: 443; naming its own: fine.
    let m = refresh_msg(&mut c, Some(600), Some(1));
    assert_eq!(code_of(&h.request(&mut c, m)), 443);
    let m = refresh_msg(&mut c, Some(600), Some(2));
    assert_eq!(code_of(&h.request(&mut c, m)), 0);

    // IPv6 client, IPv4 relay.
    let mut c = TestClient::new("[2001:db8:2::7]:40000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[1, 0, 0, 0]);
    });
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert!(relayed(&a)[0].is_ipv4());
    assert_eq!(request_peers(&mut h, &mut c, Method::CHANNEL_BIND, &[V6_PEER], Some(0x4000)), 443);
}

#[test]
fn default_family_follows_the_option() {
    for (default, client, v6) in [
        (AddressFamilyDefault::Ipv4, "[2001:db8:2::7]:40000", false),
        (AddressFamilyDefault::Ipv6, "198.51.100.7:40000", true),
        (AddressFamilyDefault::Keep, "[2001:db8:2::7]:40000", true),
        (AddressFamilyDefault::Keep, "198.51.100.7:40000", false),
    ] {
        let mut cfg = long_term_config();
        cfg.default_family = default;
        let mut h = Harness::new(cfg);
        h.relays.v6 = true;
        let mut c = TestClient::new(client);
        let (r, _) = allocate(&mut h, &mut c);
        assert_eq!(r.is_ipv6(), v6, "{default:?} {client}");
    }
    // An IPv6 default without an IPv6 relay address: 440.
    let mut cfg = long_term_config();
    cfg.default_family = AddressFamilyDefault::Ipv6;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 440);
}

#[test]
fn requested_family_with_reservation_token_is_400() {
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|b| {
        b.add_u64(AttrType::RESERVATION_TOKEN, 0xABCD_0000);
        b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[1, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
}

// ----- RFC 8656 dual allocation -----

#[test]
fn dual_allocation_binds_both_families() {
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = dual_allocate_msg(&mut c, |_| {});
    let a = h.request(&mut c, m.clone());
    assert_eq!(code_of(&a), 0);
    let r = relayed(&a);
    assert_eq!(r.len(), 2);
    assert!(r[0].is_ipv4() && r[1].is_ipv6(), "IPv4 first: {r:?}");
    assert_eq!(address_error(&a), None);
    assert_eq!(h.relays.open.len(), 2);
    // A retransmission gets the same relays.
    let again = h.request(&mut c, m);
    assert_eq!(relayed(&again), r);
    assert_eq!(h.relays.open.len(), 2);
}

#[test]
fn dual_allocation_partial_failure_reports_address_error_code() {
    // No IPv6 relay address: IPv4 only, ADDRESS-ERROR-CODE IPv6/440.
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = dual_allocate_msg(&mut c, |_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert_eq!(relayed(&a).len(), 1);
    assert!(relayed(&a)[0].is_ipv4());
    assert_eq!(address_error(&a), Some((2, 440)));
    assert_eq!(request_peers(&mut h, &mut c, Method::CREATE_PERMISSION, &[V6_PEER], None), 443);

    // IPv6 ports exhausted: ADDRESS-ERROR-CODE IPv6/508.
    let mut h = v6_harness();
    h.relays.v6_exhausted = true;
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = dual_allocate_msg(&mut c, |_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert_eq!(address_error(&a), Some((2, 508)));
    assert_eq!(h.relays.open.len(), 1);

    // No IPv4 relay address: the IPv6 relay alone, ADDRESS-ERROR-CODE IPv4/440.
    let mut h = v6_harness();
    h.relays.no_v4 = true;
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = dual_allocate_msg(&mut c, |_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert!(relayed(&a)[0].is_ipv6());
    assert_eq!(address_error(&a), Some((1, 440)));

    // Neither family: the allocation fails and holds no quota or relay.
    let mut h = Harness::new(long_term_config());
    h.relays.exhausted = true;
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = dual_allocate_msg(&mut c, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 508);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn dual_allocation_excludes_other_attributes() {
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    type Extra = fn(&mut MessageBuilder);
    let cases: [(&str, Extra); 3] = [
        ("EVEN-PORT with R", |b| {
            b.add_raw(AttrType::EVEN_PORT, &[0x80]);
        }),
        ("RESERVATION-TOKEN", |b| {
            b.add_u64(AttrType::RESERVATION_TOKEN, 0xABCD_0000);
        }),
        ("REQUESTED-ADDRESS-FAMILY", |b| {
            b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[1, 0, 0, 0]);
        }),
    ];
    for (name, extra) in cases {
        let m = dual_allocate_msg(&mut c, extra);
        assert_eq!(code_of(&h.request(&mut c, m)), 400, "{name}");
    }
    // IPv4 is no additional family.
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::ADDITIONAL_ADDRESS_FAMILY, &[1, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty());
}

#[test]
fn dual_allocation_with_external_ip_is_508() {
    let mut cfg = long_term_config();
    cfg.external_ip = true;
    let mut h = Harness::new(cfg);
    h.relays.v6 = true;
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = dual_allocate_msg(&mut c, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 508);
    // A single-family allocation is unaffected.
    allocate(&mut h, &mut c);
}

#[test]
fn dual_allocation_relays_each_family_through_its_own_relay() {
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    let (r4, r6) = dual(&mut h, &mut c);
    let (id4, id6) = (relay_id(&h, r4), relay_id(&h, r6));
    // One CreatePermission installs both families.
    assert_eq!(request_peers(&mut h, &mut c, Method::CREATE_PERMISSION, &[V4_PEER, V6_PEER], None), 0);
    let out = h.from_client(c.addr, &send_indication(V4_PEER, b"four"));
    assert_eq!(out, vec![(Dest::Peer { relay: id4, to: addr(V4_PEER) }, b"four".to_vec())]);
    let out = h.from_client(c.addr, &send_indication(V6_PEER, b"six"));
    assert_eq!(out, vec![(Dest::Peer { relay: id6, to: addr(V6_PEER) }, b"six".to_vec())]);
    // Data from either relay comes back to the client.
    for (relay, peer) in [(id4, V4_PEER), (id6, V6_PEER)] {
        let out = h.from_peer(relay, addr(peer), b"back");
        assert_eq!(out.len(), 1, "{peer}");
        let m = Message::parse(&out[0].1).unwrap();
        assert_eq!(m.xor_address(AttrType::XOR_PEER_ADDRESS).unwrap().unwrap(), addr(peer));
    }
    // Channels: an IPv6 peer's ChannelData leaves by the IPv6 relay.
    assert_eq!(request_peers(&mut h, &mut c, Method::CHANNEL_BIND, &[V6_PEER], Some(0x4001)), 0);
    let mut buf = Vec::new();
    let r = ChannelData::encode(0x4001, b"chan", false, &mut buf);
    let out = h.from_client(c.addr, &buf[r]);
    assert_eq!(out, vec![(Dest::Peer { relay: id6, to: addr(V6_PEER) }, b"chan".to_vec())]);
    let out = h.from_peer(id6, addr(V6_PEER), b"x");
    assert!(ChannelData::is_channel_data(&out[0].1));
    // Refresh naming either family is fine on a dual allocation.
    for f in [1, 2] {
        let m = refresh_msg(&mut c, Some(600), Some(f));
        assert_eq!(code_of(&h.request(&mut c, m)), 0);
    }
}

#[test]
fn dual_allocation_frees_both_relays() {
    // Refresh with lifetime 0.
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    let (r4, r6) = dual(&mut h, &mut c);
    let (id4, id6) = (relay_id(&h, r4), relay_id(&h, r6));
    let m = refresh_msg(&mut c, Some(0), None);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    assert!(h.relays.open.is_empty());
    assert!(h.server.by_relay.is_empty());
    assert!(h.from_peer(id4, addr(V4_PEER), b"x").is_empty());
    assert!(h.from_peer(id6, addr(V6_PEER), b"x").is_empty());

    // Expiry.
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    dual(&mut h, &mut c);
    assert_eq!(h.relays.open.len(), 2);
    h.advance(601);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty());
    assert!(h.server.by_relay.is_empty());

    // Stream close.
    let mut h = v6_harness();
    h.transport = crate::core::Transport::Tcp;
    let mut c = TestClient::new("198.51.100.7:40000");
    dual(&mut h, &mut c);
    h.server.client_closed(h.transport, h.local, c.addr, &mut h.relays);
    assert!(h.relays.open.is_empty());
}

#[test]
fn dual_allocation_on_shared_relays() {
    let mut h = v6_harness();
    h.relays.multiplex = true;
    let mut c = TestClient::new("198.51.100.7:40000");
    let (r4, r6) = dual(&mut h, &mut c);
    assert_eq!((r4, r6), (addr("10.0.0.1:3480"), addr("[2001:db8::1]:3480")));
    assert_eq!(request_peers(&mut h, &mut c, Method::CREATE_PERMISSION, &[V4_PEER, V6_PEER], None), 0);
    // First contact from each peer finds the allocation through its family's relay.
    assert_eq!(h.from_peer(SHARED_RELAY6, addr(V6_PEER), b"six").len(), 1);
    assert_eq!(h.from_peer(SHARED_RELAY, addr(V4_PEER), b"four").len(), 1);
    // A peer on the wrong family's shared relay is not ours.
    assert!(h.from_peer(SHARED_RELAY, addr(V6_PEER), b"no").is_empty());
    let out = h.from_client(c.addr, &send_indication(V6_PEER, b"up"));
    assert_eq!(out, vec![(Dest::Peer { relay: SHARED_RELAY6, to: addr(V6_PEER) }, b"up".to_vec())]);
    // Deleting the allocation drops every demultiplexing entry of both relays.
    let m = refresh_msg(&mut c, Some(0), None);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    assert!(h.server.by_peer.is_empty());
    assert!(h.server.perm_owners.is_empty());
}

#[test]
fn coturn_draft_codepoints_are_accepted() {
    // turnutils_uclient -Z sends ADDITIONAL-ADDRESS-FAMILY as 0x8032.
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::ADDITIONAL_ADDRESS_FAMILY_DRAFT, &[2, 0, 0, 0]);
    });
    let a = h.request(&mut c, m);
    assert_eq!(relayed(&a).len(), 2);
    // A partial failure answers at the draft ADDRESS-ERROR-CODE codepoint.
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::ADDITIONAL_ADDRESS_FAMILY_DRAFT, &[2, 0, 0, 0]);
    });
    let a = h.request(&mut c, m);
    let msg = Message::parse(&a).unwrap();
    assert!(msg.get(AttrType::ADDRESS_ERROR_CODE).is_none());
    let v = msg.get(AttrType::ADDRESS_ERROR_CODE_DRAFT).unwrap();
    assert_eq!((v[0], v[2], v[3]), (2, 4, 40));
}

#[test]
fn dual_allocation_with_plain_even_port_gets_two_even_ports() {
    let mut h = v6_harness();
    let mut c = TestClient::new("198.51.100.7:40000");
    challenge(&mut h, &mut c);
    let m = dual_allocate_msg(&mut c, |b| {
        b.add_raw(AttrType::EVEN_PORT, &[0x00]);
    });
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    let r = relayed(&a);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|a| a.port() % 2 == 0), "{r:?}");
    assert!(h.relays.reservations.is_empty());
}

#[test]
fn refresh_naming_the_family_a_dual_request_could_not_get_is_accepted() {
    let mut h = Harness::new(long_term_config());
    h.relays.v6 = false;
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::ADDITIONAL_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 0, "IPv4 half granted, IPv6 half reported");
    let tid = c.tid();
    let m = c.build(Method::REFRESH, tid, |b| {
        b.add_u32(AttrType::LIFETIME, 600);
        b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
}
