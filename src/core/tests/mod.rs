//! Deterministic tests of the core on a virtual clock.

#![allow(clippy::unwrap_used)]

mod admin;
mod dual;
mod mobility;
mod fuzz;
mod multiplex;
mod rfc5780;
mod userdb;
mod tcp_relay;
mod events;
mod security;
mod oauth;
mod rfc8489;
mod util;

use util::*;

use crate::core::credentials::{rest_password, AuthMode, Credentials};
use crate::core::nonce::NonceGen;
use crate::core::{CoreConfig, Dest};
use crate::stun::{AttrType, ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

fn peer_msg(c: &mut TestClient, method: Method, peer: &str, channel: Option<u16>) -> Vec<u8> {
    let tid = c.tid();
    let peer = addr(peer);
    c.build(method, tid, |b| {
        if let Some(ch) = channel {
            b.add_u32(AttrType::CHANNEL_NUMBER, u32::from(ch) << 16);
        }
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    })
}

fn refresh_msg(c: &mut TestClient, lifetime: Option<u32>) -> Vec<u8> {
    let tid = c.tid();
    c.build(Method::REFRESH, tid, |b| {
        if let Some(l) = lifetime {
            b.add_u32(AttrType::LIFETIME, l);
        }
    })
}

fn send_indication(peer: &str, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId([3; 12]));
    b.add_xor_address(AttrType::XOR_PEER_ADDRESS, addr(peer));
    b.add_raw(AttrType::DATA, data);
    let r = b.finish();
    buf[r].to_vec()
}

#[test]
fn unauthenticated_allocate_gets_401_and_creates_no_state() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 401);
    let msg = Message::parse(&a).unwrap();
    assert_eq!(msg.str_attr(AttrType::REALM).unwrap().unwrap(), REALM);
    assert_eq!(msg.str_attr(AttrType::NONCE).unwrap().unwrap().len(), 24);
    assert!(msg.get(AttrType::MESSAGE_INTEGRITY).is_none());
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty());
}

#[test]
fn allocate_succeeds_and_retransmission_gets_same_answer() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|_| {});
    let a1 = h.request(&mut c, m.clone());
    assert_eq!(code_of(&a1), 0);
    let msg = Message::parse(&a1).unwrap();
    assert!(msg.check_integrity(&crate::stun::integrity::long_term_key(USER, REALM, PASS)));
    assert_eq!(msg.u32_attr(AttrType::LIFETIME).unwrap().unwrap(), 600);
    assert_eq!(msg.xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap(), c.addr);
    let a2 = h.request(&mut c, m);
    assert_eq!(a1, a2, "a retransmitted Allocate gets the same answer");
    assert_eq!(h.server.allocation_count(), 1);
    // A new Allocate on the same 5-tuple is a mismatch.
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 437);
}

#[test]
fn wrong_password_gets_401_without_hint() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    c.pass = "wrong".into();
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 401);
    let reason = Message::parse(&a).unwrap().error_code().unwrap().unwrap().1.to_string();
    assert_eq!(reason, "Unauthorized");
    // Unknown user: same answer.
    let mut c2 = TestClient::new("198.51.100.8:40000");
    c2.user = "mallory".into();
    let m = c2.allocate_msg(|_| {});
    h.request(&mut c2, m);
    let m = c2.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c2, m)), 401);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn stale_and_foreign_nonces_get_438() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    h.advance(601);
    let m = c.allocate_msg(|_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 438);
    // The 438 carried a fresh nonce: the retry works.
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // A nonce issued to another address is not accepted.
    let mut other = TestClient::new("198.51.100.9:1234");
    other.nonce = c.nonce.clone();
    other.realm = c.realm.clone();
    let m = other.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut other, m)), 438);
}

#[test]
fn lifetimes_follow_coturn() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|b| {
        b.add_u32(AttrType::LIFETIME, 100);
    });
    let a = h.request(&mut c, m);
    assert_eq!(Message::parse(&a).unwrap().u32_attr(AttrType::LIFETIME).unwrap().unwrap(), 600);
    let m = refresh_msg(&mut c, Some(5000));
    let a = h.request(&mut c, m);
    assert_eq!(Message::parse(&a).unwrap().u32_attr(AttrType::LIFETIME).unwrap().unwrap(), 3600);
    let m = refresh_msg(&mut c, None);
    let a = h.request(&mut c, m);
    assert_eq!(Message::parse(&a).unwrap().u32_attr(AttrType::LIFETIME).unwrap().unwrap(), 600);
}

#[test]
fn refresh_zero_deletes_and_frees_the_relay() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    assert_eq!(h.relays.open.len(), 1);
    let m = refresh_msg(&mut c, Some(0));
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty());
    let m = refresh_msg(&mut c, Some(600));
    assert_eq!(code_of(&h.request(&mut c, m)), 437);
    // The same source port can allocate again at once (no 437 on reuse).
    allocate(&mut h, &mut c);
}

#[test]
fn allocation_expires_and_frees_the_relay() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    h.advance(599);
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(2);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty());
    assert!(h.server.next_timeout().is_none() || h.server.timers.len() <= 1);
}

#[test]
fn send_indication_needs_permission_and_data_comes_back() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (_, relay) = allocate(&mut h, &mut c);
    let peer = "203.0.113.5:7000";
    // No permission yet: dropped.
    assert!(h.from_client(c.addr, &send_indication(peer, b"hello")).is_empty());
    let m = peer_msg(&mut c, Method::CREATE_PERMISSION, peer, None);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let out = h.from_client(c.addr, &send_indication(peer, b"hello"));
    assert_eq!(out, vec![(Dest::Peer { relay, to: addr(peer) }, b"hello".to_vec())]);
    // Peer answers from another port of the same IP: Data indication.
    let out = h.from_peer(relay, addr("203.0.113.5:7001"), b"world");
    assert_eq!(out.len(), 1);
    let m = Message::parse(&out[0].1).unwrap();
    assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
    assert_eq!(m.get(AttrType::DATA).unwrap(), b"world");
    assert_eq!(m.xor_address(AttrType::XOR_PEER_ADDRESS).unwrap().unwrap(), addr("203.0.113.5:7001"));
    // A peer without permission is dropped.
    assert!(h.from_peer(relay, addr("203.0.113.6:7000"), b"x").is_empty());
    // Permission expires after 300 s.
    h.advance(301);
    assert!(h.from_peer(relay, addr(peer), b"late").is_empty());
    assert!(h.server.allocation(c.addr, h.local).unwrap().permissions.is_empty());
}

#[test]
fn channels_relay_both_ways_and_reject_rebinding() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (_, relay) = allocate(&mut h, &mut c);
    let peer = "203.0.113.5:7000";
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, peer, Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let mut frame = Vec::new();
    ChannelData::encode(0x4001, b"ping", false, &mut frame);
    let out = h.from_client(c.addr, &frame);
    assert_eq!(out, vec![(Dest::Peer { relay, to: addr(peer) }, b"ping".to_vec())]);
    let out = h.from_peer(relay, addr(peer), b"pong");
    let cd = ChannelData::parse(&out[0].1).unwrap();
    assert_eq!((cd.channel, cd.data), (0x4001, &b"pong"[..]));
    // Same number, other peer: 400. Same peer, other number: 400. Refresh: ok.
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.6:7000", Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, peer, Some(0x4002));
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, peer, Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // Unbound channel: dropped.
    let mut other = Vec::new();
    ChannelData::encode(0x4003, b"x", false, &mut other);
    assert!(h.from_client(c.addr, &other).is_empty());
    // Channel expires after 600 s.
    let m = refresh_msg(&mut c, Some(3600));
    h.request(&mut c, m);
    h.advance(601);
    assert!(h.from_client(c.addr, &frame).is_empty());
    assert!(h.server.allocation(c.addr, h.local).unwrap().channels.is_empty());
}

#[test]
fn channel_number_ranges() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.5:7000", Some(0x6000));
    assert_eq!(code_of(&h.request(&mut c, m)), 0, "RFC 5766 numbers accepted by default");
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.5:7001", Some(0x3FFF));
    assert_eq!(code_of(&h.request(&mut c, m)), 400);

    let mut cfg = long_term_config();
    cfg.rfc5766_channel_numbers = false;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.5:7000", Some(0x5000));
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.5:7000", Some(0x4FFF));
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
}

#[test]
fn denied_peers_get_403() {
    let mut cfg = long_term_config();
    cfg.peers.allow_loopback = false;
    cfg.peers.denied = vec!["203.0.113.0-203.0.113.255".parse().unwrap()];
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    for peer in ["127.0.0.1:9", "203.0.113.9:9", "169.254.1.1:9", "0.0.0.0:9"] {
        let m = peer_msg(&mut c, Method::CREATE_PERMISSION, peer, None);
        assert_eq!(code_of(&h.request(&mut c, m)), 403, "{peer}");
        let m = peer_msg(&mut c, Method::CHANNEL_BIND, peer, Some(0x4000));
        assert_eq!(code_of(&h.request(&mut c, m)), 403, "{peer}");
    }
    let m = peer_msg(&mut c, Method::CREATE_PERMISSION, "[2001:db8::1]:9", None);
    assert_eq!(code_of(&h.request(&mut c, m)), 443, "family mismatch");
}

#[test]
fn other_user_on_allocation_gets_441() {
    let mut cfg = long_term_config();
    if let AuthMode::LongTerm { users } = &mut cfg.credentials.mode {
        users.insert("bob".into(), crate::stun::integrity::long_term_key("bob", REALM, "pw"));
    }
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    c.user = "bob".into();
    c.pass = "pw".into();
    let m = refresh_msg(&mut c, Some(600));
    assert_eq!(code_of(&h.request(&mut c, m)), 441);
}

#[test]
fn rest_api_credentials_and_expiry() {
    let cfg = CoreConfig::new(
        Credentials::new(AuthMode::RestSecret { secrets: vec!["old".into(), "s3cret".into()], separator: ':' }, REALM.into()),
        NonceGen::new(None, 600),
    );
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    c.user = format!("{}:alice", h.now.unix + 3600);
    c.pass = rest_password("s3cret", &c.user);
    allocate(&mut h, &mut c);
    let mut late = TestClient::new("198.51.100.8:40000");
    late.user = format!("{}:alice", h.now.unix - 1);
    late.pass = rest_password("s3cret", &late.user);
    let m = late.allocate_msg(|_| {});
    h.request(&mut late, m);
    let m = late.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut late, m)), 401);
}

#[test]
fn no_auth_allocates_without_integrity() {
    let cfg = CoreConfig::new(Credentials::new(AuthMode::NoAuth, String::new()), NonceGen::new(None, 600));
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    assert!(Message::parse(&a).unwrap().get(AttrType::MESSAGE_INTEGRITY).is_none());
}

#[test]
fn transport_family_and_capacity_errors() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let tid = c.tid();
    let m = c.build(Method::ALLOCATE, tid, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[99, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 442, "neither UDP nor TCP");
    let tid = c.tid();
    let m = c.build(Method::ALLOCATE, tid, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 400, "TCP relay over UDP (RFC 6062 5.1)");
    let tid = c.tid();
    let m = c.build(Method::ALLOCATE, tid, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 400, "no REQUESTED-TRANSPORT");
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 440);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::REQUESTED_ADDRESS_FAMILY, &[3, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 440);
    h.relays.exhausted = true;
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 508);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn even_port_with_reservation_token() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::EVEN_PORT, &[0x80]);
    });
    let a = h.request(&mut c, m);
    let msg = Message::parse(&a).unwrap();
    let relayed = msg.xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    assert_eq!(relayed.port() % 2, 0);
    let token = msg.reservation_token().unwrap().unwrap();
    let mut rtcp = TestClient::new("198.51.100.7:40001");
    rtcp.nonce = None;
    let m = rtcp.allocate_msg(|_| {});
    h.request(&mut rtcp, m);
    let m = rtcp.allocate_msg(|b| {
        b.add_u64(AttrType::RESERVATION_TOKEN, token);
    });
    let a = h.request(&mut rtcp, m);
    let r2 = Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    assert_eq!(r2.port(), relayed.port() + 1);
    // EVEN-PORT with RESERVATION-TOKEN is a 400.
    let mut third = TestClient::new("198.51.100.7:40002");
    let m = third.allocate_msg(|_| {});
    h.request(&mut third, m);
    let m = third.allocate_msg(|b| {
        b.add_raw(AttrType::EVEN_PORT, &[0]);
        b.add_u64(AttrType::RESERVATION_TOKEN, 1);
    });
    assert_eq!(code_of(&h.request(&mut third, m)), 400);
}

#[test]
fn binding_answers_and_options() {
    let mut h = Harness::new(long_term_config());
    let c = TestClient::new("198.51.100.7:40000");
    let req = |attrs: &dyn Fn(&mut MessageBuilder), fp: bool| {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), TransactionId([9; 12]));
        attrs(&mut b);
        if fp {
            b.add_fingerprint();
        }
        let r = b.finish();
        buf[r].to_vec()
    };
    let out = h.from_client(c.addr, &req(&|_| {}, false));
    let m = Message::parse(&out[0].1).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap(), c.addr);
    assert!(m.get(AttrType::MAPPED_ADDRESS).is_none());
    assert!(m.get(AttrType::SOFTWARE).is_none());
    assert!(m.get(AttrType::FINGERPRINT).is_none());
    // FINGERPRINT echoed when the request had one.
    let out = h.from_client(c.addr, &req(&|_| {}, true));
    assert_eq!(Message::parse(&out[0].1).unwrap().check_fingerprint(), Some(true));
    // A corrupted FINGERPRINT: silently dropped.
    let mut bad = req(&|_| {}, true);
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(h.from_client(c.addr, &bad).is_empty());
    // Unknown comprehension-required attribute: 420 listing it.
    let out = h.from_client(c.addr, &req(&|b| {
        b.add_raw(0x0077, b"abcd");
    }, false));
    let m = Message::parse(&out[0].1).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().0, 420);
    assert_eq!(m.get(AttrType::UNKNOWN_ATTRIBUTES).unwrap(), &[0x00, 0x77][..]);
    // Unknown comprehension-optional attribute: ignored.
    let out = h.from_client(c.addr, &req(&|b| {
        b.add_raw(0xC0FE, b"abcd");
    }, false));
    assert_eq!(Message::parse(&out[0].1).unwrap().class(), Class::Success);
    // CHANGE-REQUEST without RFC 5780: 420.
    let out = h.from_client(c.addr, &req(&|b| {
        b.add_u32(AttrType::CHANGE_REQUEST, 6);
    }, false));
    assert_eq!(Message::parse(&out[0].1).unwrap().error_code().unwrap().unwrap().0, 420);
    // An indication gets no answer; junk gets no answer.
    let mut ind = Vec::new();
    let b = MessageBuilder::new(&mut ind, MessageType::new(Method::BINDING, Class::Indication), TransactionId([1; 12]));
    let r = b.finish();
    assert!(h.from_client(c.addr, &ind[r]).is_empty());
    assert!(h.from_client(c.addr, b"\xff\xffGET / HTTP/1.1").is_empty());
    assert_eq!(h.server.allocation_count(), 0);

    let mut cfg = long_term_config();
    cfg.stun_backward_compatibility = true;
    cfg.software = Some("sw".into());
    cfg.fingerprint = true;
    let mut h = Harness::new(cfg);
    let out = h.from_client(c.addr, &req(&|_| {}, false));
    let m = Message::parse(&out[0].1).unwrap();
    assert_eq!(m.address(AttrType::MAPPED_ADDRESS).unwrap().unwrap(), c.addr);
    assert_eq!(m.str_attr(AttrType::SOFTWARE).unwrap().unwrap(), "sw");
    assert_eq!(m.check_fingerprint(), Some(true));
}

#[test]
fn classic_rfc3489_binding_only_when_enabled() {
    // A cookie-less Binding request with a 16-byte transaction id.
    let mut req = vec![0x00, 0x01, 0x00, 0x00];
    req.extend_from_slice(&[0x55; 16]);
    let mut h = Harness::new(long_term_config());
    let from = addr("198.51.100.7:40000");
    assert!(h.from_client(from, &req).is_empty());
    let mut cfg = long_term_config();
    cfg.rfc3489_compatibility = true;
    let mut h = Harness::new(cfg);
    let out = h.from_client(from, &req);
    assert_eq!(out.len(), 1);
    let m = Message::parse_rfc3489(&out[0].1).unwrap();
    assert!(!m.has_cookie());
    assert_eq!(&out[0].1[4..20], &[0x55; 16][..]);
    assert_eq!(m.address(AttrType::MAPPED_ADDRESS).unwrap().unwrap(), from);
}

#[test]
fn quotas_give_486_at_the_limit_and_free_on_delete() {
    let mut cfg = long_term_config();
    cfg.quotas = std::sync::Arc::new(crate::core::quota::Quotas::new(2, 0));
    let mut h = Harness::new(cfg);
    let mut a = TestClient::new("198.51.100.7:40000");
    let mut b = TestClient::new("198.51.100.7:40001");
    let mut c = TestClient::new("198.51.100.7:40002");
    allocate(&mut h, &mut a);
    allocate(&mut h, &mut b);
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 486);
    let m = refresh_msg(&mut a, Some(0));
    h.request(&mut a, m);
    allocate(&mut h, &mut c);
    // A failed relay bind does not keep the quota taken.
    h.relays.exhausted = true;
    let m = refresh_msg(&mut b, Some(0));
    h.request(&mut b, m);
    let mut d = TestClient::new("198.51.100.7:40003");
    let m = d.allocate_msg(|_| {});
    h.request(&mut d, m);
    let m = d.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut d, m)), 508);
    h.relays.exhausted = false;
    allocate(&mut h, &mut d);
}

#[test]
fn stream_clients_get_padded_channel_data_and_lose_the_allocation_on_close() {
    use crate::core::Transport;
    let mut h = Harness::new(long_term_config());
    h.transport = Transport::Tcp;
    let mut c = TestClient::new("198.51.100.7:40000");
    let (_, relay) = allocate(&mut h, &mut c);
    let peer = "203.0.113.5:7000";
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, peer, Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let out = h.from_peer(relay, addr(peer), b"odd");
    assert_eq!(out[0].0, Dest::Client { transport: Transport::Tcp, local: h.local, to: c.addr });
    assert_eq!(out[0].1.len(), 8, "4-byte header + 3 bytes + 1 byte of padding");
    // The same address over UDP is another 5-tuple: no allocation there.
    assert!(h.server.allocation(c.addr, h.local).is_none());
    assert!(h.server.allocation_on(Transport::Tcp, c.addr, h.local).is_some());
    let local = h.local;
    h.server.client_closed(Transport::Tcp, local, c.addr, &mut h.relays);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty());
}

/// The reason phrase of an error answer.
fn reason_of(answer: &[u8]) -> String {
    let m = Message::parse(answer).expect("answer parses");
    m.error_code().and_then(|r| r.ok()).map(|(_, r)| r.to_string()).expect("error code")
}

#[test]
fn include_reason_string_sends_the_detailed_reason() {
    for (detailed, transport_reason, mismatch_reason, peer_reason) in [
        (false, "Bad Request", "Allocation Mismatch", "Forbidden"),
        (true, "Missing or malformed REQUESTED-TRANSPORT", "Mismatched allocation: wrong transaction ID", "Forbidden IP"),
    ] {
        let mut cfg = long_term_config();
        cfg.include_reason_string = detailed;
        cfg.peers.allow_loopback = false;
        let mut h = Harness::new(cfg);
        let mut c = TestClient::new("198.51.100.9:40000");
        let m = c.allocate_msg(|_| {});
        assert_eq!(code_of(&h.request(&mut c, m)), 401);
        // An Allocate without REQUESTED-TRANSPORT.
        let tid = c.tid();
        let m = c.build(Method::ALLOCATE, tid, |_| {});
        let a = h.request(&mut c, m);
        assert_eq!((code_of(&a), reason_of(&a).as_str()), (400, transport_reason));
        allocate(&mut h, &mut c);
        // Another Allocate on the same 5-tuple.
        let m = c.allocate_msg(|_| {});
        let a = h.request(&mut c, m);
        assert_eq!((code_of(&a), reason_of(&a).as_str()), (437, mismatch_reason));
        // A peer the policy denies (loopback, without --allow-loopback-peers).
        let m = peer_msg(&mut c, Method::CREATE_PERMISSION, "127.0.0.1:9", None);
        let a = h.request(&mut c, m);
        assert_eq!((code_of(&a), reason_of(&a).as_str()), (403, peer_reason));
    }
}
