//! The management surface of the core: drain, session views, cancel,
//! traffic totals, auth-failure counters and settings swapped at run time.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::util::*;
use super::{peer_msg, refresh_msg};
use crate::core::{AuthFailure, Transport};
use crate::stun::{ChannelData, Method};

#[test]
fn drain_refuses_new_allocations_and_keeps_the_old_ones() {
    let cfg = long_term_config();
    let draining = Arc::clone(&cfg.draining);
    let mut h = Harness::new(cfg);
    let mut old = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut old);
    let retransmit = old.allocate_msg(|_| {});
    draining.store(true, Ordering::Relaxed);
    // A new client is challenged as usual, then refused.
    let mut new = TestClient::new("198.51.100.8:40000");
    let m = new.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut new, m)), 401);
    let m = new.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut new, m)), 403);
    assert_eq!(h.server.stats.refused_draining, 1);
    // The existing session refreshes and keeps its permissions working.
    let m = refresh_msg(&mut old, Some(600));
    assert_eq!(code_of(&h.request(&mut old, m)), 0);
    let m = peer_msg(&mut old, Method::CREATE_PERMISSION, "203.0.113.5:9000", None);
    assert_eq!(code_of(&h.request(&mut old, m)), 0);
    // An Allocate on an existing 5-tuple is not a new session: 437 as before.
    assert_eq!(code_of(&h.request(&mut old, retransmit)), 437);
    assert_eq!(h.server.allocation_count(), 1);
    draining.store(false, Ordering::Relaxed);
    allocate(&mut h, &mut new);
}

#[test]
fn sessions_describe_allocations_and_cancel_ends_them() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (relayed, _) = allocate(&mut h, &mut c);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.5:9000", Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    h.advance(7);
    let s = h.server.sessions(h.now.ms);
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!((s.username.as_str(), s.realm.as_str()), (USER, REALM));
    assert_eq!((s.client, s.server, s.relays.clone()), (c.addr, h.local, vec![relayed]));
    assert_eq!(s.transport, Transport::Udp);
    assert_eq!(s.age_secs, 7);
    assert_eq!(s.expires_in_secs, 600 - 7);
    assert_eq!(s.channels, 1);
    assert_eq!(s.peers, vec!["203.0.113.5".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(crate::core::admin::session_thread(s.session_id), Some(0));

    assert_eq!(h.server.cancel_session(s.session_id + 1, &mut h.relays), None);
    assert_eq!(h.server.cancel_session(s.session_id, &mut h.relays), Some((Transport::Udp, h.local, c.addr)));
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.relays.open.is_empty(), "the relay port is released");
    // The client finds out at its next Refresh.
    let m = refresh_msg(&mut c, Some(600));
    assert_eq!(code_of(&h.request(&mut c, m)), 437);
}

#[test]
fn traffic_totals_are_live_and_survive_the_session() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let (_, relay) = allocate(&mut h, &mut c);
    let m = peer_msg(&mut c, Method::CHANNEL_BIND, "203.0.113.5:9000", Some(0x4001));
    h.request(&mut c, m);
    let mut frame = Vec::new();
    ChannelData::encode(0x4001, &[1u8; 100], false, &mut frame);
    let baseline = h.server.traffic_totals()[&(REALM.to_string(), String::new())];
    assert_eq!(h.from_client(c.addr, &frame).len(), 1);
    assert_eq!(h.from_peer(relay, addr("203.0.113.5:9000"), &[2u8; 50]).len(), 1);
    let live = h.server.traffic_totals()[&(REALM.to_string(), String::new())];
    assert_eq!(live.peer.sp - baseline.peer.sp, 1, "counted while the session is open");
    assert_eq!(live.peer.sb - baseline.peer.sb, 100);
    assert_eq!(live.peer.rp - baseline.peer.rp, 1);
    assert_eq!(live.peer.rb - baseline.peer.rb, 50);
    let m = refresh_msg(&mut c, Some(0));
    h.request(&mut c, m);
    let after = h.server.traffic_totals()[&(REALM.to_string(), String::new())];
    assert_eq!(h.server.allocation_count(), 0);
    assert!(after.client.rp >= live.client.rp && after.client.rb >= live.client.rb);
    assert_eq!((after.peer.sb, after.peer.rb), (live.peer.sb, live.peer.rb), "totals do not drop when the session ends");
}

#[test]
fn traffic_by_user_only_when_asked() {
    let mut cfg = long_term_config();
    cfg.traffic_by_user = true;
    let mut h = Harness::new(cfg);
    let mut c = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut c);
    let totals = h.server.traffic_totals();
    assert!(totals.contains_key(&(REALM.to_string(), USER.to_string())), "{totals:?}");
}

#[test]
fn auth_failures_are_counted_by_reason() {
    let mut h = Harness::new(long_term_config());
    let mut c = TestClient::new("198.51.100.7:40000");
    c.pass = "wrong".into();
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let mut u = TestClient::new("198.51.100.8:40000");
    u.user = "mallory".into();
    let m = u.allocate_msg(|_| {});
    h.request(&mut u, m);
    let m = u.allocate_msg(|_| {});
    h.request(&mut u, m);
    let f = h.server.stats.auth_failures;
    assert_eq!(f[AuthFailure::WrongIntegrity as usize], 1);
    assert_eq!(f[AuthFailure::UnknownUser as usize], 1);
    assert_eq!(f[AuthFailure::StaleNonce as usize], 0);
    assert_eq!(AuthFailure::ALL.iter().map(|r| r.label()).collect::<Vec<_>>().len(), f.len());
}

#[test]
fn settings_swapped_at_run_time_apply_to_the_next_request() {
    let cfg = long_term_config();
    let mut h = Harness::new(cfg.clone());
    let mut a = TestClient::new("198.51.100.7:40000");
    allocate(&mut h, &mut a);
    let mut stricter = cfg.clone();
    stricter.no_udp_relay = true;
    h.server.set_config(Arc::new(stricter));
    let mut b = TestClient::new("198.51.100.7:40001");
    let m = b.allocate_msg(|_| {});
    h.request(&mut b, m);
    let m = b.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut b, m)), 442, "no-udp-relay is in force");
    // Quota limits change in place: the count of the running session stays.
    cfg.quotas.set_defaults(crate::core::quota::QuotaLimits { user_quota: 1, total_quota: 0 });
    h.server.set_config(Arc::new(cfg));
    let m = b.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut b, m)), 486, "the new user quota counts the old session");
    // The session from before keeps working under the new settings.
    let m = refresh_msg(&mut a, Some(600));
    assert_eq!(code_of(&h.request(&mut a, m)), 0);
}
