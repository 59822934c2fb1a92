//! Allocation reports for the stats database: queued only when enabled, one
//! per life-cycle step, traffic only when something moved.

use super::util::*;
use crate::core::{AllocEvent, Transport};
use crate::stun::{AttrType, Method};

fn events(h: &mut Harness) -> Vec<AllocEvent> {
    let mut v = Vec::new();
    h.server.take_events(&mut v);
    v
}

#[test]
fn allocation_life_cycle_is_reported_when_enabled() {
    let mut cfg = long_term_config();
    cfg.allocation_events = true;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.1:5000");
    let (_, relay) = allocate(&mut h, &mut c);
    let ev = events(&mut h);
    let [AllocEvent::New { alloc, lifetime: 600 }] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!((alloc.username.as_str(), alloc.realm.as_str()), (USER, REALM));
    assert_eq!((alloc.transport, alloc.client, alloc.local), (Transport::Udp, c.addr, h.local));
    let sid = alloc.session_id;

    // Nothing moved: no traffic report.
    h.server.report_traffic();
    assert!(events(&mut h).is_empty());
    // A permission and a peer datagram: one report, then quiet again.
    let tid = c.tid();
    let peer = addr("203.0.113.5:7000");
    let m = c.build(Method::CREATE_PERMISSION, tid, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    h.from_peer(relay, peer, b"hello");
    h.server.report_traffic();
    let ev = events(&mut h);
    let [AllocEvent::Traffic { peer: p, .. }] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!((p.rp, p.rb), (1, 5));
    h.server.report_traffic();
    assert!(events(&mut h).is_empty());

    let tid = c.tid();
    let m = c.build(Method::REFRESH, tid, |b| {
        b.add_u32(AttrType::LIFETIME, 1200);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let ev = events(&mut h);
    assert!(matches!(ev.as_slice(), [AllocEvent::Refreshed { lifetime: 1200, .. }]), "{ev:?}");

    let tid = c.tid();
    let m = c.build(Method::REFRESH, tid, |b| {
        b.add_u32(AttrType::LIFETIME, 0);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let ev = events(&mut h);
    let [AllocEvent::Deleted { alloc, peer: p, client: cl }] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!(alloc.session_id, sid);
    assert_eq!((p.rp, cl.sp), (1, 1));
}

#[test]
fn nothing_is_queued_when_disabled() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.1:5000");
    allocate(&mut h, &mut c);
    h.server.report_traffic();
    h.advance(4000);
    assert!(events(&mut h).is_empty());
}
