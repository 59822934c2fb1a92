//! RFC 5780 Binding attributes and ALTERNATE-SERVER redirection.

use std::collections::HashMap;

use super::util::*;
use crate::core::{AlternateServers, CoreConfig, Dest, Transport};
use crate::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const A: &str = "192.0.2.1:3478";
const A_ALT: &str = "192.0.2.1:3479";
const B: &str = "192.0.2.2:3478";
const B_ALT: &str = "192.0.2.2:3479";

/// Two IPs with the primary and alternate ports, as the daemon builds it.
fn rfc5780_config() -> CoreConfig {
    let mut cfg = long_term_config();
    let mut m = HashMap::new();
    m.insert(addr(A), addr(B_ALT));
    m.insert(addr(A_ALT), addr(B));
    m.insert(addr(B), addr(A_ALT));
    m.insert(addr(B_ALT), addr(A));
    cfg.rfc5780 = Some(m);
    cfg
}

fn binding(attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), TransactionId([5; 12]));
    attrs(&mut b);
    let r = b.finish();
    buf[r].to_vec()
}

fn one(out: Vec<(Dest, Vec<u8>)>) -> (Dest, Vec<u8>) {
    assert_eq!(out.len(), 1, "expected one answer");
    out.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn code(bytes: &[u8]) -> u16 {
    code_of(bytes)
}

#[test]
fn binding_carries_response_origin_and_other_address() {
    let mut h = Harness::new(rfc5780_config());
    let c = addr("198.51.100.7:40000");
    for (local, other) in [(A, B_ALT), (A_ALT, B), (B_ALT, A)] {
        h.local = addr(local);
        let (dest, bytes) = one(h.from_client(c, &binding(|_| {})));
        assert_eq!(dest, Dest::Client { transport: Transport::Udp, local: addr(local), to: c });
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap(), c);
        assert_eq!(m.address(AttrType::RESPONSE_ORIGIN).unwrap().unwrap(), addr(local));
        assert_eq!(m.address(AttrType::OTHER_ADDRESS).unwrap().unwrap(), addr(other));
    }
    // A listener outside the map (an aux server) answers plain Binding.
    h.local = addr("192.0.2.1:33478");
    let (_, bytes) = one(h.from_client(c, &binding(|_| {})));
    let m = Message::parse(&bytes).unwrap();
    assert!(m.get(AttrType::RESPONSE_ORIGIN).is_none() && m.get(AttrType::OTHER_ADDRESS).is_none());
}

#[test]
fn without_rfc5780_no_origin_attributes_and_change_request_gets_420() {
    let mut h = Harness::new(long_term_config());
    let c = addr("198.51.100.7:40000");
    let (_, bytes) = one(h.from_client(c, &binding(|_| {})));
    let m = Message::parse(&bytes).unwrap();
    assert!(m.get(AttrType::RESPONSE_ORIGIN).is_none() && m.get(AttrType::OTHER_ADDRESS).is_none());
    for flags in [2u32, 4, 6] {
        let (_, bytes) = one(h.from_client(c, &binding(|b| {
            b.add_u32(AttrType::CHANGE_REQUEST, flags);
        })));
        assert_eq!(code(&bytes), 420);
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.get(AttrType::UNKNOWN_ATTRIBUTES).unwrap(), &[0x00, 0x03][..]);
    }
    // An empty CHANGE-REQUEST (no flags) is fine: some clients always send one.
    let (_, bytes) = one(h.from_client(c, &binding(|b| {
        b.add_u32(AttrType::CHANGE_REQUEST, 0);
    })));
    assert_eq!(code(&bytes), 0);
    // RESPONSE-PORT and PADDING are ignored, as coturn does.
    let (dest, bytes) = one(h.from_client(c, &binding(|b| {
        b.add_u32(AttrType::RESPONSE_PORT, 5000 << 16);
    })));
    assert_eq!(code(&bytes), 0);
    assert_eq!(dest, Dest::Client { transport: Transport::Udp, local: h.local, to: c });
}

#[test]
fn change_request_moves_the_origin() {
    let mut h = Harness::new(rfc5780_config());
    h.local = addr(A);
    let c = addr("198.51.100.7:40000");
    // (change ip, change port) -> expected origin.
    for (flags, origin) in [(4u32, "192.0.2.2:3478"), (2, "192.0.2.1:3479"), (6, B_ALT), (0, A)] {
        let (dest, bytes) = one(h.from_client(c, &binding(|b| {
            b.add_u32(AttrType::CHANGE_REQUEST, flags);
        })));
        assert_eq!(dest, Dest::Client { transport: Transport::Udp, local: addr(origin), to: c }, "flags {flags}");
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.address(AttrType::RESPONSE_ORIGIN).unwrap().unwrap(), addr(origin));
        assert_eq!(m.address(AttrType::OTHER_ADDRESS).unwrap().unwrap(), addr(B_ALT));
        assert_eq!(m.xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap(), c);
    }
    // From the alternate port, "change port" goes back to the primary one.
    h.local = addr(A_ALT);
    let (dest, _) = one(h.from_client(c, &binding(|b| {
        b.add_u32(AttrType::CHANGE_REQUEST, 2);
    })));
    assert_eq!(dest, Dest::Client { transport: Transport::Udp, local: addr(A), to: c });
}

#[test]
fn response_port_redirects_the_answer() {
    let mut h = Harness::new(rfc5780_config());
    h.local = addr(A);
    let c = addr("198.51.100.7:40000");
    let (dest, bytes) = one(h.from_client(c, &binding(|b| {
        b.add_u32(AttrType::RESPONSE_PORT, 5000 << 16);
        b.add_u32(AttrType::CHANGE_REQUEST, 6);
    })));
    assert_eq!(dest, Dest::Client { transport: Transport::Udp, local: addr(B_ALT), to: addr("198.51.100.7:5000") });
    // XOR-MAPPED-ADDRESS still names where the request came from.
    assert_eq!(Message::parse(&bytes).unwrap().xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap(), c);
    // A RESPONSE-PORT too short to hold a port: 400.
    let (_, bytes) = one(h.from_client(c, &binding(|b| {
        b.add_raw(AttrType::RESPONSE_PORT, &[1]);
    })));
    assert_eq!(code(&bytes), 400);
}

#[test]
fn padding_pads_up_to_the_requests_own_size() {
    let mut h = Harness::new(rfc5780_config());
    h.local = addr(A);
    let c = addr("198.51.100.7:40000");
    // A small PADDING gets an unpadded answer: no amplification.
    let (_, bytes) = one(h.from_client(c, &binding(|b| {
        b.add_raw(AttrType::PADDING, &[0; 8]);
    })));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(code(&bytes), 0);
    assert!(m.get(AttrType::PADDING).is_none());
    // A request padded to the MTU gets a padded answer, no larger than it.
    let req = binding(|b| {
        b.add_raw(AttrType::PADDING, &[0; 1500]);
    });
    let (_, bytes) = one(h.from_client(c, &req));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.get(AttrType::PADDING).unwrap().len(), 1320);
    assert!(bytes.len() > 1300 && bytes.len() <= req.len(), "{} vs {}", bytes.len(), req.len());
    // PADDING with RESPONSE-PORT: 400.
    let (_, bytes) = one(h.from_client(c, &binding(|b| {
        b.add_raw(AttrType::PADDING, &[0; 8]);
        b.add_u32(AttrType::RESPONSE_PORT, 5000 << 16);
    })));
    assert_eq!(code(&bytes), 400);
}

#[test]
fn streams_cannot_change_origin_or_port() {
    let mut h = Harness::new(rfc5780_config());
    h.local = addr(A);
    h.transport = Transport::Tcp;
    let c = addr("198.51.100.7:40000");
    for attrs in [
        &(|b: &mut MessageBuilder| {
            b.add_u32(AttrType::CHANGE_REQUEST, 4);
        }) as &dyn Fn(&mut MessageBuilder),
        &|b: &mut MessageBuilder| {
            b.add_u32(AttrType::RESPONSE_PORT, 5000 << 16);
        },
        &|b: &mut MessageBuilder| {
            b.add_raw(AttrType::PADDING, &[0; 4]);
        },
    ] {
        let (dest, bytes) = one(h.from_client(c, &binding(attrs)));
        assert_eq!(code(&bytes), 400);
        assert_eq!(dest, Dest::Client { transport: Transport::Tcp, local: addr(A), to: c });
    }
    // A plain Binding over TCP still reports the addresses.
    let (_, bytes) = one(h.from_client(c, &binding(|_| {})));
    assert_eq!(Message::parse(&bytes).unwrap().address(AttrType::OTHER_ADDRESS).unwrap().unwrap(), addr(B_ALT));
}

// ----- ALTERNATE-SERVER -----

fn redirect_config(alternates: AlternateServers) -> CoreConfig {
    let mut cfg = long_term_config();
    cfg.alternates = alternates;
    cfg
}

fn alternate_of(answer: &[u8]) -> std::net::SocketAddr {
    let m = Message::parse(answer).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().0, 300);
    m.address(AttrType::ALTERNATE_SERVER).unwrap().unwrap()
}

#[test]
fn allocate_is_redirected_round_robin_before_authentication() {
    let list = vec![addr("10.0.0.1:3478"), addr("[2001:db8::1]:3478"), addr("10.0.0.2:4000")];
    let mut h = Harness::new(redirect_config(AlternateServers { general: list, ..Default::default() }));
    let mut c = TestClient::new("198.51.100.7:40000");
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = c.allocate_msg(|_| {});
        let a = h.request(&mut c, m);
        let msg = Message::parse(&a).unwrap();
        // Sent before authentication: no challenge, no integrity.
        assert!(msg.get(AttrType::NONCE).is_none() && msg.get(AttrType::REALM).is_none());
        assert!(msg.get(AttrType::MESSAGE_INTEGRITY).is_none());
        got.push(alternate_of(&a));
    }
    assert_eq!(got, [addr("10.0.0.1:3478"), addr("10.0.0.2:4000"), addr("10.0.0.1:3478")]);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty());
    // Only Allocate is redirected.
    let (_, bytes) = one(h.from_client(c.addr, &binding(|_| {})));
    assert_eq!(code(&bytes), 0);
    let tid = c.tid();
    let m = c.build(Method::REFRESH, tid, |_| {});
    assert_eq!(code(&h.request(&mut c, m)), 401);
}

#[test]
fn no_entry_of_the_family_means_no_redirect() {
    let list = vec![addr("[2001:db8::1]:3478")];
    let mut h = Harness::new(redirect_config(AlternateServers { general: list, ..Default::default() }));
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    assert_eq!(code(&h.request(&mut c, m)), 401);
    allocate(&mut h, &mut c);
    assert_eq!(h.server.allocation_count(), 1);
}

#[test]
fn listing_ourselves_disables_the_redirect() {
    let list = vec![addr("10.0.0.1:3478"), addr(A)];
    let mut h = Harness::new(redirect_config(AlternateServers { general: list, ..Default::default() }));
    h.local = addr(A);
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    assert_eq!(code(&h.request(&mut c, m)), 401);
}

#[test]
fn per_transport_lists_choose_the_target() {
    let alternates = AlternateServers {
        general: vec![addr("10.0.0.1:3478")],
        tcp: vec![addr("10.0.0.3:3478")],
        tls: vec![addr("10.0.0.4:5349")],
        ..Default::default()
    };
    let mut h = Harness::new(redirect_config(alternates));
    let mut c = TestClient::new("198.51.100.7:40000");
    for (t, want) in [
        (Transport::Udp, "10.0.0.1:3478"),
        (Transport::Tcp, "10.0.0.3:3478"),
        (Transport::Tls, "10.0.0.4:5349"),
        (Transport::Dtls, "10.0.0.4:5349"),
    ] {
        h.transport = t;
        let m = c.allocate_msg(|_| {});
        assert_eq!(alternate_of(&h.request(&mut c, m)), addr(want), "{t:?}");
    }
}

#[test]
fn redirect_keeps_fingerprint_and_software() {
    let mut cfg = redirect_config(AlternateServers { general: vec![addr("10.0.0.1:3478")], ..Default::default() });
    cfg.fingerprint = true;
    cfg.software = Some("sw".into());
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    let a = h.request(&mut c, m);
    let msg = Message::parse(&a).unwrap();
    assert_eq!(msg.check_fingerprint(), Some(true));
    assert_eq!(msg.str_attr(AttrType::SOFTWARE).unwrap().unwrap(), "sw");
    assert_eq!(msg.error_code().unwrap().unwrap(), (300, "Try Alternate"));
}
