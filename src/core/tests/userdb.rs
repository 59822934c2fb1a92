//! The user database seen from the core: credential queries and answers,
//! the session-key shortcut, and what the database snapshot adds (realm
//! quotas, ORIGIN realms, dynamic peer ranges).

use std::sync::Arc;

use super::util::*;
use super::{peer_msg, refresh_msg};
use crate::core::credentials::{long_term_key, rest_password, AuthMode, Credentials};
use crate::core::dbauth::{CredentialQuery, DbAnswer, ANSWER_TTL_MS};
use crate::core::dynamic::{RealmLimits, SharedSnapshot, Snapshot};
use crate::core::nonce::NonceGen;
use crate::core::CoreConfig;
use crate::stun::{AttrType, Message, Method};

fn with_db(mut cfg: CoreConfig, snap: Snapshot) -> (Harness, Arc<SharedSnapshot>) {
    let shared = Arc::new(SharedSnapshot::default());
    shared.replace(snap);
    cfg.userdb = true;
    cfg.dynamic = Some(Arc::clone(&shared));
    (Harness::new(cfg), shared)
}

fn db_client(addr: &str) -> TestClient {
    let mut c = TestClient::new(addr);
    c.user = "dbuser".into();
    c.pass = "dbpass".into();
    c
}

/// Send a request the core must park: nothing answered, the queries returned.
fn pending(h: &mut Harness, c: &TestClient, msg: &[u8]) -> Vec<CredentialQuery> {
    let out = h.from_client(c.addr, msg);
    assert!(out.is_empty(), "a waiting request is not answered: {out:?}");
    std::mem::take(&mut h.out.credential_queries)
}

fn user_query(realm: &str) -> CredentialQuery {
    CredentialQuery::UserKey { realm: realm.into(), username: "dbuser".into() }
}

fn challenge(h: &mut Harness, c: &mut TestClient) {
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(c, m)), 401);
}

#[test]
fn unknown_user_waits_for_the_database_then_allocates() {
    let (mut h, _) = with_db(long_term_config(), Snapshot::default());
    let mut c = db_client("10.0.0.1:5000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    assert_eq!(pending(&mut h, &c, &m), vec![user_query(REALM)]);
    h.server.provide_credentials(user_query(REALM), DbAnswer::Key(Some(long_term_key("dbuser", REALM, "dbpass"))), h.now);
    // The parked request, handled again, now succeeds.
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    let a = h.server.allocations().next().unwrap();
    assert_eq!((a.username.as_str(), a.realm.as_str()), ("dbuser", REALM));
}

#[test]
fn static_users_never_ask_the_database() {
    let (mut h, _) = with_db(long_term_config(), Snapshot::default());
    let mut c = TestClient::new("10.0.0.1:5000");
    allocate(&mut h, &mut c);
    assert!(h.out.credential_queries.is_empty());
}

#[test]
fn database_answers_no_user_or_wrong_key_401() {
    let (mut h, _) = with_db(long_term_config(), Snapshot::default());
    let mut c = db_client("10.0.0.1:5000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    pending(&mut h, &c, &m);
    h.server.provide_credentials(user_query(REALM), DbAnswer::Key(None), h.now);
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    // A key that does not match the password: 401 too.
    h.advance(3);
    let m = c.allocate_msg(|_| {});
    pending(&mut h, &c, &m);
    h.server.provide_credentials(user_query(REALM), DbAnswer::Key(Some(long_term_key("dbuser", REALM, "other"))), h.now);
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn database_failure_is_500_and_answers_expire() {
    let (mut h, _) = with_db(long_term_config(), Snapshot::default());
    let mut c = db_client("10.0.0.1:5000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    pending(&mut h, &c, &m);
    h.server.provide_credentials(user_query(REALM), DbAnswer::Failed, h.now);
    assert_eq!(code_of(&h.request(&mut c, m.clone())), 500);
    // Within the answer's lifetime a retransmission gets the same answer...
    assert_eq!(code_of(&h.request(&mut c, m.clone())), 500);
    // ...after it the database is asked again.
    h.now = h.now.plus_ms(ANSWER_TTL_MS);
    assert_eq!(pending(&mut h, &c, &m), vec![user_query(REALM)]);
}

#[test]
fn existing_allocation_needs_no_database_round_trip() {
    let (mut h, _) = with_db(long_term_config(), Snapshot::default());
    let mut c = db_client("10.0.0.1:5000");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    pending(&mut h, &c, &m);
    h.server.provide_credentials(user_query(REALM), DbAnswer::Key(Some(long_term_key("dbuser", REALM, "dbpass"))), h.now);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // The cached answer is long gone and the database is "down": refreshes,
    // permissions and channels go on with the allocation's key.
    h.advance(60);
    let r = refresh_msg(&mut c, Some(600));
    assert_eq!(code_of(&h.request(&mut c, r)), 0);
    assert!(h.out.credential_queries.is_empty());
    let p = peer_msg(&mut c, Method::CREATE_PERMISSION, "198.51.100.7:9000", None);
    assert_eq!(code_of(&h.request(&mut c, p)), 0);
    let b = peer_msg(&mut c, Method::CHANNEL_BIND, "198.51.100.7:9000", Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, b)), 0);
    // Another client of the same user on a new 5-tuple still has to ask.
    let mut c2 = db_client("10.0.0.2:5000");
    challenge(&mut h, &mut c2);
    let m = c2.allocate_msg(|_| {});
    assert_eq!(pending(&mut h, &c2, &m), vec![user_query(REALM)]);
    h.server.provide_credentials(user_query(REALM), DbAnswer::Failed, h.now);
    assert_eq!(code_of(&h.request(&mut c2, m)), 500);
}

fn rest_config(static_secrets: &[&str]) -> CoreConfig {
    let mut cfg = CoreConfig::new(
        Credentials::new(
            AuthMode::RestSecret { secrets: static_secrets.iter().map(|s| s.to_string()).collect(), separator: ':' },
            REALM.into(),
        ),
        NonceGen::new(Some("test-secret"), 600),
    );
    cfg.peers.allow_loopback = true;
    cfg
}

fn rest_client(addr: &str, h: &Harness, secret: &str) -> TestClient {
    let mut c = TestClient::new(addr);
    c.user = format!("{}:alice", h.now.unix + 3600);
    c.pass = rest_password(secret, &c.user);
    c
}

#[test]
fn rest_secrets_from_the_database_join_the_static_ones() {
    let (mut h, _) = with_db(rest_config(&["static"]), Snapshot::default());
    // A static secret verifies without a query.
    let mut c = rest_client("10.0.0.1:5000", &h, "static");
    allocate(&mut h, &mut c);
    // A secret only the database has.
    let mut c = rest_client("10.0.0.2:5000", &h, "fromdb");
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    let q = CredentialQuery::RealmSecrets { realm: REALM.into() };
    assert_eq!(pending(&mut h, &c, &m), vec![q.clone()]);
    h.server.provide_credentials(q, DbAnswer::Secrets(vec!["other".into(), "fromdb".into()]), h.now);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // An expired REST username is refused without asking.
    let mut c = TestClient::new("10.0.0.3:5000");
    c.user = format!("{}:bob", h.now.unix - 1);
    c.pass = rest_password("fromdb", &c.user);
    challenge(&mut h, &mut c);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    assert!(h.out.credential_queries.is_empty());
}

#[test]
fn realm_user_quota_from_the_database() {
    let mut snap = Snapshot::default();
    snap.realms.insert(REALM.into(), RealmLimits { user_quota: Some(1), total_quota: None, max_bps: Some(64000) });
    let (mut h, shared) = with_db(long_term_config(), snap);
    let mut c1 = TestClient::new("10.0.0.1:5000");
    allocate(&mut h, &mut c1);
    let mut c2 = TestClient::new("10.0.0.2:5000");
    challenge(&mut h, &mut c2);
    let m = c2.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c2, m)), 486);
    // The option removed (next reload): the second allocation succeeds.
    shared.replace(Snapshot::default());
    let m = c2.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c2, m)), 0);
}

#[test]
fn realm_total_quota_from_the_database() {
    let mut snap = Snapshot::default();
    snap.realms.insert(REALM.into(), RealmLimits { user_quota: None, total_quota: Some(1), max_bps: None });
    let (mut h, _) = with_db(long_term_config(), snap);
    allocate(&mut h, &mut TestClient::new("10.0.0.1:5000"));
    let mut c2 = TestClient::new("10.0.0.2:5000");
    challenge(&mut h, &mut c2);
    let m = c2.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c2, m)), 486);
}

#[test]
fn origin_selects_the_realm() {
    let mut snap = Snapshot::default();
    snap.origins.insert("https://app.example.org:443".into(), "tenant.example".into());
    let (mut h, _) = with_db(long_term_config(), snap);
    let mut c = db_client("10.0.0.1:5000");
    let origin = |b: &mut crate::stun::MessageBuilder| {
        b.add_raw(AttrType::ORIGIN, b"https://app.example.org");
    };
    let m = c.allocate_msg(origin);
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 401);
    let realm = Message::parse(&a).unwrap().str_attr(AttrType::REALM).unwrap().unwrap().to_string();
    assert_eq!(realm, "tenant.example");
    let m = c.allocate_msg(origin);
    let q = user_query("tenant.example");
    assert_eq!(pending(&mut h, &c, &m), vec![q.clone()]);
    h.server.provide_credentials(q, DbAnswer::Key(Some(long_term_key("dbuser", "tenant.example", "dbpass"))), h.now);
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    assert_eq!(h.server.allocations().next().unwrap().realm, "tenant.example");
    // Without ORIGIN (or with an unknown one) the default realm is offered.
    let mut c2 = db_client("10.0.0.2:5000");
    let m = c2.allocate_msg(|b| {
        b.add_raw(AttrType::ORIGIN, b"https://elsewhere.example");
    });
    let a = h.request(&mut c2, m);
    assert_eq!(Message::parse(&a).unwrap().str_attr(AttrType::REALM).unwrap().unwrap(), REALM);
}

#[test]
fn dynamic_peer_ranges_apply_per_realm() {
    let mut snap = Snapshot::default();
    snap.denied.push((String::new(), "198.51.100.0-198.51.100.255".parse().unwrap()));
    snap.denied.push(("other.realm".into(), "203.0.113.5".parse().unwrap()));
    snap.allowed.push((REALM.into(), "198.51.100.9".parse().unwrap()));
    let (mut h, shared) = with_db(long_term_config(), snap);
    let mut c = TestClient::new("10.0.0.1:5000");
    allocate(&mut h, &mut c);
    let p = peer_msg(&mut c, Method::CREATE_PERMISSION, "198.51.100.7:9000", None);
    assert_eq!(code_of(&h.request(&mut c, p)), 403);
    let b = peer_msg(&mut c, Method::CHANNEL_BIND, "198.51.100.7:9000", Some(0x4001));
    assert_eq!(code_of(&h.request(&mut c, b)), 403);
    // The realm's allowed range beats the global denial.
    let p = peer_msg(&mut c, Method::CREATE_PERMISSION, "198.51.100.9:9000", None);
    assert_eq!(code_of(&h.request(&mut c, p)), 0);
    // Another realm's denial does not apply.
    let p = peer_msg(&mut c, Method::CREATE_PERMISSION, "203.0.113.5:9000", None);
    assert_eq!(code_of(&h.request(&mut c, p)), 0);
    // A reload without the range lifts the denial.
    shared.replace(Snapshot::default());
    let p = peer_msg(&mut c, Method::CREATE_PERMISSION, "198.51.100.7:9000", None);
    assert_eq!(code_of(&h.request(&mut c, p)), 0);
}
