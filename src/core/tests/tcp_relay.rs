//! RFC 6062 TCP relays: Allocate with REQUESTED-TRANSPORT TCP, Connect,
//! ConnectionBind, ConnectionAttempt, their timeouts and clean-up.

use std::net::SocketAddr;
use std::sync::Arc;

use super::util::*;
use crate::core::tcp_relay::{owner_thread, BIND_TIMEOUT_MS, CONNECT_TIMEOUT_MS};
use crate::core::{Dest, RelayId, Server, TcpAction, Transport};
use crate::stun::{AttrType, Class, Message, MessageBuilder, Method};

const PEER: &str = "203.0.113.5:7000";

fn tcp_harness() -> Harness {
    let mut cfg = long_term_config();
    // The harness's listener is the server's own address.
    cfg.peers.own = crate::core::peer_policy::OwnAddresses {
        listeners: vec![addr("192.0.2.1:3478")],
        ips: vec![addr("192.0.2.1:0").ip()],
        relay_ports: (49152, 65535),
    };
    let mut h = Harness::new(cfg);
    h.transport = Transport::Tcp;
    h
}

fn tcp_allocate_msg(c: &mut TestClient, extra: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let tid = c.tid();
    c.build(Method::ALLOCATE, tid, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
        extra(b);
    })
}

/// A TCP allocation (with the 401 round); its relay address and id.
fn tcp_allocate(h: &mut Harness, c: &mut TestClient) -> (SocketAddr, RelayId) {
    if c.nonce.is_none() {
        let m = tcp_allocate_msg(c, |_| {});
        assert_eq!(code_of(&h.request(c, m)), 401);
    }
    let m = tcp_allocate_msg(c, |_| {});
    let a = h.request(c, m);
    assert_eq!(code_of(&a), 0, "TCP allocate failed");
    assert!(h.relays.last_request.expect("relay asked").tcp, "the relay must be a TCP one");
    let relayed = Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    let id = *h.relays.open.iter().find(|(_, &a)| a == relayed).map(|(id, _)| id).unwrap();
    (relayed, RelayId(id))
}

fn peer_request(c: &mut TestClient, method: Method, peer: &str) -> Vec<u8> {
    let tid = c.tid();
    let peer = addr(peer);
    c.build(method, tid, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    })
}

fn bind_msg(c: &mut TestClient, id: u32) -> Vec<u8> {
    let tid = c.tid();
    c.build(Method::CONNECTION_BIND, tid, |b| {
        b.add_u32(AttrType::CONNECTION_ID, id);
    })
}

/// A new connection of the same user, challenged once (nonces are per address).
fn data_client(h: &mut Harness, a: &str) -> TestClient {
    let mut d = TestClient::new(a);
    let m = bind_msg(&mut d, 1);
    assert_eq!(code_of(&h.request(&mut d, m)), 401);
    d
}

fn actions(h: &mut Harness) -> Vec<TcpAction> {
    let mut v = Vec::new();
    h.server.take_tcp_actions(&mut v);
    v
}

fn connection_id(answer: &[u8]) -> u32 {
    Message::parse(answer).unwrap().u32_attr(AttrType::CONNECTION_ID).expect("CONNECTION-ID").unwrap()
}

/// Connect to PEER and let the I/O layer report success; the CONNECTION-ID.
fn connect_ok(h: &mut Harness, c: &mut TestClient) -> u32 {
    let m = peer_request(c, Method::CONNECT, PEER);
    assert!(h.from_client(c.addr, &m).is_empty(), "no answer before the connect completes");
    let conn = match actions(h).as_slice() {
        [TcpAction::ConnectPeer { conn, peer, .. }] => {
            assert_eq!(*peer, addr(PEER));
            *conn
        }
        other => panic!("expected one ConnectPeer, got {other:?}"),
    };
    h.out.clear();
    h.server.tcp_peer_connected(h.now, conn, true, &mut h.out);
    assert_eq!(h.out.transmits.len(), 1);
    let answer = h.out.bytes(&h.out.transmits[0]).to_vec();
    assert_eq!(code_of(&answer), 0);
    assert_eq!(connection_id(&answer), conn);
    conn
}

#[test]
fn tcp_allocate_rules() {
    // Over UDP: 400 (RFC 6062 5.1).
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.1:5000");
    let m = tcp_allocate_msg(&mut c, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let m = tcp_allocate_msg(&mut c, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 400);

    // Over TCP: a TCP relay, with the relay address from the TCP provider.
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    let (relayed, _) = tcp_allocate(&mut h, &mut c);
    assert!(h.relays.open.values().any(|&a| a == relayed));

    // DONT-FRAGMENT, EVEN-PORT, RESERVATION-TOKEN and a dual request: 400.
    let extras: [fn(&mut MessageBuilder); 4] = [
        |b| {
        b.add_raw(AttrType::DONT_FRAGMENT, &[]);
    },
        |b| {
        b.add_raw(AttrType::EVEN_PORT, &[0]);
    },
        |b| {
        b.add_u64(AttrType::RESERVATION_TOKEN, 7);
    },
        |b| {
        b.add_raw(AttrType::ADDITIONAL_ADDRESS_FAMILY, &[2, 0, 0, 0]);
    },
    ];
    for (i, extra) in extras.into_iter().enumerate() {
        let mut c = TestClient::new(&format!("198.51.100.2:{}", 6000 + i));
        let m = tcp_allocate_msg(&mut c, |_| {});
        assert_eq!(code_of(&h.request(&mut c, m)), 401);
        let m = tcp_allocate_msg(&mut c, extra);
        assert_eq!(code_of(&h.request(&mut c, m)), 400, "case {i}");
    }

    // --no-tcp-relay: 442; --no-udp-relay leaves TCP relays alone.
    let mut cfg = long_term_config();
    cfg.no_tcp_relay = true;
    let mut h = Harness::new(cfg);
    h.transport = Transport::Tcp;
    let mut c = TestClient::new("198.51.100.1:5000");
    let m = tcp_allocate_msg(&mut c, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let m = tcp_allocate_msg(&mut c, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 442);
    let mut cfg = long_term_config();
    cfg.no_udp_relay = true;
    let mut h = Harness::new(cfg);
    h.transport = Transport::Tcp;
    let mut c = TestClient::new("198.51.100.1:5000");
    tcp_allocate(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    let mut c2 = TestClient::new("198.51.100.1:5001");
    let m2 = c2.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c2, m2)), 401);
    let m2 = c2.allocate_msg(|_| {});
    drop(m);
    assert_eq!(code_of(&h.request(&mut c2, m2)), 442, "UDP relay refused with --no-udp-relay");
}

#[test]
fn active_connect_then_bind() {
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    let (relayed, relay) = tcp_allocate(&mut h, &mut c);
    let m = peer_request(&mut c, Method::CONNECT, PEER);
    assert!(h.from_client(c.addr, &m).is_empty());
    let acts = actions(&mut h);
    let [TcpAction::ConnectPeer { conn, relay: r, from, peer }] = acts.as_slice() else { panic!("{acts:?}") };
    assert_eq!((*r, *from, *peer), (relay, relayed, addr(PEER)));
    assert_eq!(owner_thread(*conn), 0);
    let conn = *conn;

    // A second Connect to the same peer while the first is pending: 446.
    let m = peer_request(&mut c, Method::CONNECT, PEER);
    assert_eq!(code_of(&h.request(&mut c, m)), 446);

    h.out.clear();
    h.server.tcp_peer_connected(h.now, conn, true, &mut h.out);
    let t = h.out.transmits[0].clone();
    assert_eq!(t.dest, Dest::Client { transport: Transport::Tcp, local: h.local, to: c.addr });
    let answer = h.out.bytes(&t).to_vec();
    let msg = Message::parse(&answer).unwrap();
    assert_eq!((msg.method(), msg.class()), (Method::CONNECT, Class::Success));
    assert_eq!(connection_id(&answer), conn);

    // The data connection: a fresh connection from the client binds it.
    let mut d = data_client(&mut h, "198.51.100.1:5002");
    let m = bind_msg(&mut d, conn);
    let answer = h.request(&mut d, m);
    assert_eq!(code_of(&answer), 0);
    assert_eq!(
        actions(&mut h),
        vec![TcpAction::BindData { conn, transport: Transport::Tcp, local: h.local, client: d.addr, bps: 0 }]
    );
    // Bound once only.
    let mut d2 = data_client(&mut h, "198.51.100.1:5003");
    let m = bind_msg(&mut d2, conn);
    assert_eq!(code_of(&h.request(&mut d2, m)), 400);
    // Still connected to that peer: 446 again.
    let m = peer_request(&mut c, Method::CONNECT, PEER);
    assert_eq!(code_of(&h.request(&mut c, m)), 446);
    // A bound connection has no deadline: time passes, nothing closes.
    h.advance(BIND_TIMEOUT_MS / 1000 + 5);
    assert!(actions(&mut h).is_empty());
    assert_eq!(h.server.tcp_connection_count(), 1);
    // Either side closing lets a new Connect to the peer through.
    h.server.tcp_closed(conn);
    connect_ok(&mut h, &mut c);
}

#[test]
fn connect_failure_and_timeout_answer_447() {
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    tcp_allocate(&mut h, &mut c);
    let m = peer_request(&mut c, Method::CONNECT, PEER);
    h.from_client(c.addr, &m);
    let [TcpAction::ConnectPeer { conn, .. }] = actions(&mut h)[..] else { panic!() };
    h.out.clear();
    h.server.tcp_peer_connected(h.now, conn, false, &mut h.out);
    assert_eq!(code_of(h.out.bytes(&h.out.transmits[0])), 447);
    assert_eq!(actions(&mut h), vec![TcpAction::Close { conn }]);
    assert_eq!(h.server.tcp_connection_count(), 0);

    // No outcome within 30 s: 447 from the timer.
    let m = peer_request(&mut c, Method::CONNECT, PEER);
    h.from_client(c.addr, &m);
    let [TcpAction::ConnectPeer { conn, .. }] = actions(&mut h)[..] else { panic!() };
    let deadline = h.server.next_timeout().unwrap();
    assert!(deadline <= h.now.ms + CONNECT_TIMEOUT_MS);
    h.now = h.now.plus_secs(CONNECT_TIMEOUT_MS / 1000 - 1);
    h.out.clear();
    h.server.handle_tcp_timeouts(h.now, &mut h.out);
    assert!(h.out.transmits.is_empty(), "not yet");
    h.now = h.now.plus_secs(1);
    h.server.handle_tcp_timeouts(h.now, &mut h.out);
    assert_eq!(code_of(h.out.bytes(&h.out.transmits[0])), 447);
    assert_eq!(actions(&mut h), vec![TcpAction::Close { conn }]);
    // A late success report is ignored.
    h.out.clear();
    h.server.tcp_peer_connected(h.now, conn, true, &mut h.out);
    assert!(h.out.transmits.is_empty());
}

#[test]
fn connect_errors() {
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    // No allocation on this connection: 437.
    let m = tcp_allocate_msg(&mut c, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let m = peer_request(&mut c, Method::CONNECT, PEER);
    assert_eq!(code_of(&h.request(&mut c, m)), 437);
    tcp_allocate(&mut h, &mut c);
    // No XOR-PEER-ADDRESS: 400.
    let tid = c.tid();
    let m = c.build(Method::CONNECT, tid, |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
    // A denied peer (the unspecified address is always denied): 403.
    let m = peer_request(&mut c, Method::CONNECT, "0.0.0.0:80");
    assert_eq!(code_of(&h.request(&mut c, m)), 403);
    // The server's own address (here its listener): 403.
    let local = h.local.to_string();
    let m = peer_request(&mut c, Method::CONNECT, &local);
    assert_eq!(code_of(&h.request(&mut c, m)), 403);
    // Another family than the relay's: 443.
    let m = peer_request(&mut c, Method::CONNECT, "[2001:db8::5]:80");
    assert_eq!(code_of(&h.request(&mut c, m)), 443);
    // ChannelBind on a TCP allocation: 400; Send indications go nowhere.
    let tid = c.tid();
    let m = c.build(Method::CHANNEL_BIND, tid, |b| {
        b.add_u32(AttrType::CHANNEL_NUMBER, 0x4000 << 16);
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, addr(PEER));
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
    assert!(actions(&mut h).is_empty());

    // Connect on a UDP allocation: 400.
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    allocate(&mut h, &mut c);
    let m = peer_request(&mut c, Method::CONNECT, PEER);
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
}

#[test]
fn passive_connection_needs_permission_and_a_bind_in_time() {
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    let (_, relay) = tcp_allocate(&mut h, &mut c);
    let peer = addr("203.0.113.5:40000");
    h.out.clear();
    assert_eq!(h.server.tcp_peer_incoming(h.now, relay, peer, &mut h.out), None, "no permission yet");
    assert!(h.out.transmits.is_empty());

    let m = peer_request(&mut c, Method::CREATE_PERMISSION, PEER);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    h.out.clear();
    let conn = h.server.tcp_peer_incoming(h.now, relay, peer, &mut h.out).expect("accepted");
    assert_eq!(h.out.transmits.len(), 1);
    let t = h.out.transmits[0].clone();
    assert_eq!(t.dest, Dest::Client { transport: Transport::Tcp, local: h.local, to: c.addr });
    let ind = Message::parse(h.out.bytes(&t)).unwrap();
    assert_eq!((ind.method(), ind.class()), (Method::CONNECTION_ATTEMPT, Class::Indication));
    assert_eq!(ind.xor_address(AttrType::XOR_PEER_ADDRESS), Some(Ok(peer)));
    assert_eq!(ind.u32_attr(AttrType::CONNECTION_ID), Some(Ok(conn)));
    // An unknown relay: closed.
    assert_eq!(h.server.tcp_peer_incoming(h.now, RelayId(4242), peer, &mut h.out), None);

    // Nobody binds it: closed after 30 s.
    h.now = h.now.plus_secs(BIND_TIMEOUT_MS / 1000);
    h.out.clear();
    h.server.handle_tcp_timeouts(h.now, &mut h.out);
    assert!(h.out.transmits.is_empty(), "a passive connection has nobody to answer");
    assert_eq!(actions(&mut h), vec![TcpAction::Close { conn }]);
    // Binding it afterwards: 400.
    let mut d = data_client(&mut h, "198.51.100.1:5002");
    let m = bind_msg(&mut d, conn);
    assert_eq!(code_of(&h.request(&mut d, m)), 400);
}

#[test]
fn connection_bind_errors_and_handoff() {
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    tcp_allocate(&mut h, &mut c);
    let conn = connect_ok(&mut h, &mut c);

    // Another user: 441.
    let mut other = data_client(&mut h, "198.51.100.9:5000");
    other.user = "someone".into();
    let m = bind_msg(&mut other, conn);
    assert_eq!(code_of(&h.request(&mut other, m)), 401, "unknown user is not authenticated");
    // Unknown CONNECTION-ID: 400; none at all: 400; on the control connection: 400.
    let mut d = data_client(&mut h, "198.51.100.1:5002");
    let m = bind_msg(&mut d, conn + 1);
    assert_eq!(code_of(&h.request(&mut d, m)), 400);
    let tid = d.tid();
    let m = d.build(Method::CONNECTION_BIND, tid, |_| {});
    assert_eq!(code_of(&h.request(&mut d, m)), 400);
    let m = bind_msg(&mut c, conn);
    assert_eq!(code_of(&h.request(&mut c, m)), 400);
    // Over UDP: 400.
    h.transport = Transport::Udp;
    let m = bind_msg(&mut d, conn);
    assert_eq!(code_of(&h.request(&mut d, m)), 400);
    h.transport = Transport::Tcp;
    // Owned by thread 3: no answer here, the connection moves there.
    let foreign = (3 << 24) | 1;
    let m = bind_msg(&mut d, foreign);
    assert!(h.from_client(d.addr, &m).is_empty());
    assert_eq!(
        actions(&mut h),
        vec![TcpAction::Handoff { thread: 3, transport: Transport::Tcp, local: h.local, client: d.addr }]
    );
    // The connection is still bindable by the right client.
    let m = bind_msg(&mut d, conn);
    assert_eq!(code_of(&h.request(&mut d, m)), 0);
}

#[test]
fn ids_carry_the_owner_thread() {
    let mut h = tcp_harness();
    h.server = Server::new(Arc::clone(&h.server.cfg), 5);
    let mut c = TestClient::new("198.51.100.1:5000");
    tcp_allocate(&mut h, &mut c);
    let conn = connect_ok(&mut h, &mut c);
    assert_eq!(owner_thread(conn), 5);
}

#[test]
fn allocation_end_closes_its_connections() {
    let mut h = tcp_harness();
    let mut c = TestClient::new("198.51.100.1:5000");
    let (_, relay) = tcp_allocate(&mut h, &mut c);
    let active = connect_ok(&mut h, &mut c);
    let m = peer_request(&mut c, Method::CREATE_PERMISSION, "203.0.113.6:1");
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    h.out.clear();
    let passive = h.server.tcp_peer_incoming(h.now, relay, addr("203.0.113.6:2"), &mut h.out).unwrap();
    let local = h.local;
    h.server.client_closed(Transport::Tcp, local, c.addr, &mut h.relays);
    let mut closed = actions(&mut h);
    closed.sort_by_key(|a| match a {
        TcpAction::Close { conn } => *conn,
        _ => 0,
    });
    let mut want = vec![TcpAction::Close { conn: active }, TcpAction::Close { conn: passive }];
    want.sort_by_key(|a| match a {
        TcpAction::Close { conn } => *conn,
        _ => 0,
    });
    assert_eq!(closed, want);
    assert_eq!(h.server.tcp_connection_count(), 0);
    assert!(!h.relays.open.contains_key(&relay.0), "relay released");
}
