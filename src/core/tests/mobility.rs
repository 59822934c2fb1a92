//! RFC 8016 mobility: tickets, resumes from a new 5-tuple, make-before-break.

use super::*;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::core::{Outputs, RelayId, Server, Transport};

const PEER: &str = "203.0.113.5:7000";

fn mobile_config() -> CoreConfig {
    let mut cfg = long_term_config();
    cfg.mobility = true;
    if let AuthMode::LongTerm { users } = &mut cfg.credentials.mode {
        users.insert("bob".into(), crate::stun::integrity::long_term_key("bob", REALM, "bobpass"));
    }
    cfg
}

fn ticket_of(answer: &[u8]) -> Option<String> {
    let m = Message::parse(answer).unwrap();
    m.get(AttrType::MOBILITY_TICKET).map(|t| String::from_utf8(t.to_vec()).unwrap())
}

/// Allocate with an empty MOBILITY-TICKET (after the 401), add a permission
/// for PEER; the ticket and the relay.
fn mobile_allocation(h: &mut Harness, c: &mut TestClient) -> (String, RelayId) {
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::MOBILITY_TICKET, &[]);
    });
    assert_eq!(code_of(&h.request(c, m)), 401);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::MOBILITY_TICKET, &[]);
    });
    let a = h.request(c, m);
    assert_eq!(code_of(&a), 0);
    let ticket = ticket_of(&a).expect("a ticket in the Allocate success");
    let relayed = Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    let id = *h.relays.open.iter().find(|(_, &a)| a == relayed).map(|(id, _)| id).unwrap();
    let m = peer_msg(c, Method::CREATE_PERMISSION, PEER, None);
    assert_eq!(code_of(&h.request(c, m)), 0);
    (ticket, RelayId(id))
}

fn mobile_refresh(c: &mut TestClient, tid: TransactionId, ticket: &str) -> Vec<u8> {
    c.build(Method::REFRESH, tid, |b| {
        b.add_raw(AttrType::MOBILITY_TICKET, ticket.as_bytes());
    })
}

/// Signed Refresh with `ticket` from `c` (401 dance first: the nonce is bound
/// to the client address); the answer.
fn resume(h: &mut Harness, c: &mut TestClient, ticket: &str) -> Vec<u8> {
    if c.nonce.is_none() {
        let tid = c.tid();
        let m = mobile_refresh(c, tid, ticket);
        assert_eq!(code_of(&h.request(c, m)), 401);
    }
    let tid = c.tid();
    let m = mobile_refresh(c, tid, ticket);
    h.request(c, m)
}

/// Where peer data for the allocation of `relay` goes now.
fn peer_data_goes_to(h: &mut Harness, relay: RelayId) -> SocketAddr {
    let out = h.from_peer(relay, addr(PEER), b"hello");
    assert_eq!(out.len(), 1, "peer data relayed once");
    match out[0].0 {
        Dest::Client { to, .. } => to,
        d => panic!("peer data went to {d:?}"),
    }
}

#[test]
fn allocate_gets_a_ticket_only_when_asking_and_enabled() {
    let mut h = Harness::new(mobile_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (ticket, _) = mobile_allocation(&mut h, &mut c);
    assert_eq!(ticket.len(), 32);
    assert!(ticket.bytes().all(|b| b.is_ascii_hexdigit()));
    // Without the attribute: no ticket.
    let mut c2 = TestClient::new("198.51.100.8:40000");
    allocate(&mut h, &mut c2);
    let a = h.server.allocation(c2.addr, h.local).unwrap();
    assert!(a.mobile.is_none());
    // A non-empty ticket in an Allocate: 400.
    let mut c3 = TestClient::new("198.51.100.9:40000");
    let m = c3.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c3, m)), 401);
    let m = c3.allocate_msg(|b| {
        b.add_raw(AttrType::MOBILITY_TICKET, b"x");
    });
    assert_eq!(code_of(&h.request(&mut c3, m)), 400);
}

#[test]
fn disabled_mobility_answers_405() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let m = c.allocate_msg(|b| {
        b.add_raw(AttrType::MOBILITY_TICKET, &[]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 405);
    assert_eq!(h.server.allocation_count(), 0);
    let tid = c.tid();
    let m = mobile_refresh(&mut c, tid, "00112233445566778899aabbccddeeff");
    assert_eq!(code_of(&h.request(&mut c, m)), 405);
}

#[test]
fn resume_moves_the_allocation_and_keeps_the_old_path_until_the_new_one_speaks() {
    let mut h = Harness::new(mobile_config());
    let mut old = TestClient::new("198.51.100.7:40000");
    let (ticket, relay) = mobile_allocation(&mut h, &mut old);
    assert_eq!(peer_data_goes_to(&mut h, relay), old.addr);

    let mut new = TestClient::new("198.51.100.99:41000");
    let a = resume(&mut h, &mut new, &ticket);
    assert_eq!(code_of(&a), 0, "resume from the new address");
    let ticket2 = ticket_of(&a).expect("a new ticket");
    assert_ne!(ticket2, ticket, "each resume gives a new ticket");
    assert_eq!(h.server.allocation_count(), 1);

    // Make before break: the old 5-tuple still gets and sends data.
    assert_eq!(peer_data_goes_to(&mut h, relay), old.addr);
    let out = h.from_client(old.addr, &send_indication(PEER, b"from old"));
    assert_eq!(out.len(), 1, "old path still relays");
    assert!(matches!(out[0].0, Dest::Peer { .. }));

    // The first packet from the new 5-tuple completes the move.
    let out = h.from_client(new.addr, &send_indication(PEER, b"from new"));
    assert_eq!(out.len(), 1, "new path relays");
    assert_eq!(out[0].1, b"from new");
    assert_eq!(peer_data_goes_to(&mut h, relay), new.addr);
    let out = h.from_client(old.addr, &send_indication(PEER, b"stale"));
    assert!(out.is_empty(), "the old 5-tuple is forgotten");
    assert!(h.server.allocation(old.addr, h.local).is_none());
    assert!(h.server.allocation(new.addr, h.local).is_some());

    // A plain Refresh from the new address works; the old ticket is spent.
    let m = refresh_msg(&mut new, Some(600));
    assert_eq!(code_of(&h.request(&mut new, m)), 0);
    let mut third = TestClient::new("198.51.100.100:42000");
    assert_eq!(code_of(&resume(&mut h, &mut third, &ticket)), 437);
    // The new ticket moves it again.
    assert_eq!(code_of(&resume(&mut h, &mut third, &ticket2)), 0);
}

#[test]
fn retransmitted_resume_gets_the_same_success() {
    let mut h = Harness::new(mobile_config());
    let mut old = TestClient::new("198.51.100.7:40000");
    let (ticket, _) = mobile_allocation(&mut h, &mut old);
    let mut new = TestClient::new("198.51.100.99:41000");
    let tid = new.tid();
    let m = mobile_refresh(&mut new, tid, &ticket);
    assert_eq!(code_of(&h.request(&mut new, m)), 401);
    let tid = new.tid();
    let m = mobile_refresh(&mut new, tid, &ticket);
    let first = h.request(&mut new, m.clone());
    assert_eq!(code_of(&first), 0);
    // turnutils_uclient -M sends the request twice: same answer, same ticket.
    let second = h.request(&mut new, m);
    assert_eq!(code_of(&second), 0);
    assert_eq!(ticket_of(&first), ticket_of(&second));
    // The retired ticket with another transaction: 437.
    let tid = new.tid();
    let m = mobile_refresh(&mut new, tid, &ticket);
    assert_eq!(code_of(&h.request(&mut new, m)), 437);
}

#[test]
fn another_user_cannot_take_the_allocation() {
    let mut h = Harness::new(mobile_config());
    let mut alice = TestClient::new("198.51.100.7:40000");
    let (ticket, relay) = mobile_allocation(&mut h, &mut alice);
    let mut bob = TestClient::new("198.51.100.66:40000");
    bob.user = "bob".into();
    bob.pass = "bobpass".into();
    assert_eq!(code_of(&resume(&mut h, &mut bob, &ticket)), 441);
    // Nothing moved, and the ticket still works for alice.
    assert_eq!(peer_data_goes_to(&mut h, relay), alice.addr);
    assert!(h.server.allocation(bob.addr, h.local).is_none());
    let mut moved = TestClient::new("198.51.100.67:40000");
    assert_eq!(code_of(&resume(&mut h, &mut moved, &ticket)), 0);
}

#[test]
fn unknown_forged_and_expired_tickets_get_437() {
    let mut h = Harness::new(mobile_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (ticket, _) = mobile_allocation(&mut h, &mut c);
    let mut new = TestClient::new("198.51.100.99:41000");
    assert_eq!(code_of(&resume(&mut h, &mut new, "00112233445566778899aabbccddeeff")), 437);
    assert_eq!(code_of(&resume(&mut h, &mut new, "short")), 437);
    // A ticket sealed by another process (another key).
    let foreign = crate::core::mobility::TicketKey::random().seal(0, 1);
    assert_eq!(code_of(&resume(&mut h, &mut new, &foreign)), 437);
    // The allocation expired: its ticket died with it.
    h.advance(601);
    assert_eq!(h.server.allocation_count(), 0);
    let mut late = TestClient::new("198.51.100.98:41000");
    assert_eq!(code_of(&resume(&mut h, &mut late, &ticket)), 437);
}

#[test]
fn a_ticket_of_another_thread_is_handed_to_it() {
    let mut h = Harness::new(mobile_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (ticket, relay) = mobile_allocation(&mut h, &mut c);
    // Thread 1 of the same process gets the resume: no answer, hand over.
    let mut other = Server::new(Arc::clone(&h.server.cfg), 1);
    let mut new = TestClient::new("198.51.100.99:41000");
    new.nonce = c.nonce.clone();
    new.realm = c.realm.clone();
    let tid = new.tid();
    let m = mobile_refresh(&mut new, tid, &ticket);
    let mut out = Outputs::default();
    other.handle_client_datagram(h.now, Transport::Udp, h.local, new.addr, &m, &mut h.relays, &mut out);
    assert!(out.transmits.is_empty(), "the other thread does not answer");
    assert_eq!(other.take_forward(), Some(0));
    assert_eq!(other.take_forward(), None);
    // The owner answers it (438 first: the nonce was issued to the old address).
    let a = h.request(&mut new, m);
    assert_eq!(code_of(&a), 438);
    let a = resume(&mut h, &mut new, &ticket);
    assert_eq!(code_of(&a), 0);
    h.from_client(new.addr, &send_indication(PEER, b"x"));
    assert_eq!(peer_data_goes_to(&mut h, relay), new.addr);
}

#[test]
fn zero_lifetime_resume_deletes_and_tcp_close_of_old_connection_completes_the_move() {
    let mut h = Harness::new(mobile_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (ticket, _) = mobile_allocation(&mut h, &mut c);
    let mut new = TestClient::new("198.51.100.99:41000");
    let tid = new.tid();
    let m = mobile_refresh(&mut new, tid, &ticket);
    assert_eq!(code_of(&h.request(&mut new, m)), 401);
    let tid = new.tid();
    let m = new.build(Method::REFRESH, tid, |b| {
        b.add_raw(AttrType::MOBILITY_TICKET, ticket.as_bytes());
        b.add_u32(AttrType::LIFETIME, 0);
    });
    assert_eq!(code_of(&h.request(&mut new, m)), 0);
    assert_eq!(h.server.allocation_count(), 0);

    // Over TCP: the old connection closing while a move waits completes it.
    let mut h = Harness::new(mobile_config());
    h.transport = Transport::Tcp;
    let mut c = TestClient::new("198.51.100.7:40000");
    let (ticket, relay) = mobile_allocation(&mut h, &mut c);
    let mut new = TestClient::new("198.51.100.99:41000");
    assert_eq!(code_of(&resume(&mut h, &mut new, &ticket)), 0);
    h.server.client_closed(Transport::Tcp, h.local, c.addr, &mut h.relays);
    assert_eq!(h.server.allocation_count(), 1);
    assert_eq!(peer_data_goes_to(&mut h, relay), new.addr);
}

#[test]
fn a_closed_connection_keeps_a_mobile_allocation_for_its_ticket() {
    let mut h = Harness::new(mobile_config());
    h.transport = Transport::Dtls;
    let mut c = TestClient::new("198.51.100.7:40000");
    let (ticket, relay) = mobile_allocation(&mut h, &mut c);
    // The DTLS session (or TCP connection) ends before any move.
    h.server.client_closed(Transport::Dtls, h.local, c.addr, &mut h.relays);
    assert_eq!(h.server.allocation_count(), 1, "kept for the ticket");
    assert!(h.server.allocation_on(Transport::Dtls, c.addr, h.local).is_none(), "detached from the closed session");
    // A new session resumes it and gets the peer's data.
    let mut new = TestClient::new("198.51.100.99:41000");
    assert_eq!(code_of(&resume(&mut h, &mut new, &ticket)), 0);
    let m = peer_msg(&mut new, Method::CREATE_PERMISSION, PEER, None);
    assert_eq!(code_of(&h.request(&mut new, m)), 0);
    assert_eq!(peer_data_goes_to(&mut h, relay), new.addr);
    // Without a ticket a closed connection still ends its allocation.
    let mut plain = TestClient::new("198.51.100.8:40000");
    allocate(&mut h, &mut plain);
    assert_eq!(h.server.allocation_count(), 2);
    h.server.client_closed(Transport::Dtls, h.local, plain.addr, &mut h.relays);
    assert_eq!(h.server.allocation_count(), 1);
    // The kept allocation still ends when its lifetime does.
    h.advance(3700);
    assert_eq!(h.server.allocation_count(), 0);
}
