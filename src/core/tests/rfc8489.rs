//! RFC 8489 security features in the core: the advertised nonce cookie and
//! PASSWORD-ALGORITHMS, SHA-256 keys with MESSAGE-INTEGRITY-SHA256, the
//! downgrade checks, USERHASH, MD5-only users, SHA-256 REST passwords, and
//! RFC 5389 (SHA-1) clients unchanged.

use std::sync::Arc;

use super::util::*;
use crate::core::credentials::{rest_password_with, AuthMode, Credentials, RestHmac};
use crate::core::dbauth::{CredentialQuery, DbAnswer};
use crate::core::dynamic::{SharedSnapshot, Snapshot};
use crate::core::nonce::NonceGen;
use crate::core::CoreConfig;
use crate::stun::integrity::{long_term_key, long_term_key_sha256};
use crate::stun::rfc8489::{encode_algorithm, encode_algorithms, userhash, PasswordAlgorithm};
use crate::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method};

use PasswordAlgorithm::{Md5, Sha256};

fn config() -> CoreConfig {
    let mut cfg = long_term_config();
    cfg.credentials.sha256_users.insert(USER.into(), long_term_key_sha256(USER, REALM, PASS));
    cfg.rfc8489 = true;
    cfg
}

/// What an RFC 8489 client does after a 401: echo PASSWORD-ALGORITHMS, pick
/// one, identify by USERNAME or USERHASH, sign with MESSAGE-INTEGRITY-SHA256.
struct Rfc8489Client {
    c: TestClient,
    algs: Vec<u8>,
    alg: Option<PasswordAlgorithm>,
    userhash: bool,
    /// Key override (a client that knows only the MD5 key).
    key: Option<Vec<u8>>,
}

impl Rfc8489Client {
    fn new(addr: &str) -> Self {
        Rfc8489Client { c: TestClient::new(addr), algs: Vec::new(), alg: Some(Sha256), userhash: false, key: None }
    }

    fn learn(&mut self, answer: &[u8]) {
        self.c.learn(answer);
        if let Some(v) = Message::parse(answer).unwrap().get(AttrType::PASSWORD_ALGORITHMS) {
            self.algs = v.to_vec();
        }
    }

    fn key(&self) -> Vec<u8> {
        if let Some(k) = &self.key {
            return k.clone();
        }
        match self.alg {
            Some(Sha256) => long_term_key_sha256(&self.c.user, REALM, &self.c.pass).to_vec(),
            _ => long_term_key(&self.c.user, REALM, &self.c.pass).to_vec(),
        }
    }

    fn request(&mut self, method: Method, extra: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let tid = self.c.tid();
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid);
        extra(&mut b);
        if let Some(n) = self.c.nonce.clone() {
            if self.userhash {
                b.add_raw(AttrType::USERHASH, &userhash(&self.c.user, REALM));
            } else {
                b.add_raw(AttrType::USERNAME, self.c.user.as_bytes());
            }
            b.add_raw(AttrType::REALM, REALM.as_bytes());
            b.add_raw(AttrType::NONCE, n.as_bytes());
            if let Some(a) = self.alg {
                b.add_raw(AttrType::PASSWORD_ALGORITHMS, &self.algs);
                b.add_raw(AttrType::PASSWORD_ALGORITHM, &encode_algorithm(a));
            }
            b.add_integrity_sha256(&self.key());
        }
        let r = b.finish();
        buf[r].to_vec()
    }

    fn allocate(&mut self) -> Vec<u8> {
        self.request(Method::ALLOCATE, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        })
    }

    fn send(&mut self, h: &mut Harness, msg: Vec<u8>) -> Vec<u8> {
        let a = h.request(&mut self.c, msg);
        self.learn(&a);
        a
    }
}

#[test]
fn challenge_advertises_cookie_and_algorithms() {
    let mut h = Harness::new(config());
    let mut c = Rfc8489Client::new("198.51.100.7:40000");
    let m = c.allocate();
    let a = c.send(&mut h, m);
    assert_eq!(code_of(&a), 401);
    let msg = Message::parse(&a).unwrap();
    let nonce = msg.str_attr(AttrType::NONCE).unwrap().unwrap();
    assert!(nonce.starts_with("obMatJos2wAAA"), "{nonce}");
    assert_eq!(nonce.len(), 13 + 24);
    assert_eq!(msg.get(AttrType::PASSWORD_ALGORITHMS).unwrap(), [0, 2, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn features_off_by_default_keep_coturn_challenge() {
    let mut cfg = config();
    cfg.rfc8489 = false;
    let mut h = Harness::new(cfg);
    let mut c = Rfc8489Client::new("198.51.100.7:40000");
    let m = c.allocate();
    let msg_bytes = c.send(&mut h, m);
    let msg = Message::parse(&msg_bytes).unwrap();
    assert_eq!(msg.str_attr(AttrType::NONCE).unwrap().unwrap().len(), 24);
    assert!(msg.get(AttrType::PASSWORD_ALGORITHMS).is_none());
    // Without an offer a PASSWORD-ALGORITHM is refused (RFC 8489 9.2.4).
    let m = c.allocate();
    assert_eq!(code_of(&c.send(&mut h, m)), 400);
    // MESSAGE-INTEGRITY-SHA256 with the MD5 key (no PASSWORD-ALGORITHM) works.
    c.alg = None;
    let m = c.allocate();
    let a = c.send(&mut h, m);
    assert_eq!(code_of(&a), 0);
    let md5 = long_term_key(USER, REALM, PASS);
    assert!(Message::parse(&a).unwrap().check_integrity_sha256(&md5));
}

#[test]
fn sha256_client_allocates_and_is_answered_with_sha256() {
    let mut h = Harness::new(config());
    let mut c = Rfc8489Client::new("198.51.100.7:40000");
    let m = c.allocate();
    c.send(&mut h, m);
    let m = c.allocate();
    let a = c.send(&mut h, m);
    assert_eq!(code_of(&a), 0);
    let msg = Message::parse(&a).unwrap();
    let key = long_term_key_sha256(USER, REALM, PASS);
    assert!(msg.check_integrity_sha256(&key), "answer signed with the SHA-256 key");
    assert!(msg.get(AttrType::MESSAGE_INTEGRITY).is_none(), "no SHA-1 integrity in the answer");
    let alloc = h.server.allocations().next().unwrap();
    assert_eq!(alloc.username, USER);
    // Refresh with the same key: success, MESSAGE-INTEGRITY-SHA256 again.
    let m = c.request(Method::REFRESH, |b| {
        b.add_u32(AttrType::LIFETIME, 600);
    });
    let a = c.send(&mut h, m);
    assert_eq!(code_of(&a), 0);
    assert!(Message::parse(&a).unwrap().check_integrity_sha256(&key));
    // The MD5 key does not verify under PASSWORD-ALGORITHM SHA-256.
    c.key = Some(long_term_key(USER, REALM, PASS).to_vec());
    let m = c.request(Method::REFRESH, |b| {
        b.add_u32(AttrType::LIFETIME, 600);
    });
    assert_eq!(code_of(&c.send(&mut h, m)), 401);
}

#[test]
fn sha1_client_unchanged_when_features_on() {
    let mut h = Harness::new(config());
    let mut c = TestClient::new("198.51.100.7:40000");
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let m = c.allocate_msg(|_| {});
    let a = h.request(&mut c, m);
    assert_eq!(code_of(&a), 0);
    let msg = Message::parse(&a).unwrap();
    assert!(msg.check_integrity(&long_term_key(USER, REALM, PASS)));
    assert!(msg.get(AttrType::MESSAGE_INTEGRITY_SHA256).is_none());
}

#[test]
fn downgrade_attempts_get_400() {
    let mut h = Harness::new(config());
    let mut c = Rfc8489Client::new("198.51.100.7:40000");
    let m = c.allocate();
    c.send(&mut h, m);
    let offered = c.algs.clone();
    // A man in the middle removed SHA-256 from the list: the echo differs.
    c.algs = encode_algorithms(&[Md5]);
    c.alg = Some(Md5);
    let m = c.allocate();
    assert_eq!(code_of(&c.send(&mut h, m)), 400);
    // Reordered list: also not what was sent.
    c.algs = encode_algorithms(&[Md5, Sha256]);
    let m = c.allocate();
    assert_eq!(code_of(&c.send(&mut h, m)), 400);
    // PASSWORD-ALGORITHM naming an algorithm not offered (0x0003).
    c.algs = offered.clone();
    let m = {
        let tid = c.c.tid();
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), tid);
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        b.add_raw(AttrType::USERNAME, USER.as_bytes());
        b.add_raw(AttrType::REALM, REALM.as_bytes());
        b.add_raw(AttrType::NONCE, c.c.nonce.clone().unwrap().as_bytes());
        b.add_raw(AttrType::PASSWORD_ALGORITHMS, &offered);
        b.add_raw(AttrType::PASSWORD_ALGORITHM, &[0, 3, 0, 0]);
        b.add_integrity_sha256(&long_term_key_sha256(USER, REALM, PASS));
        let r = b.finish();
        buf[r].to_vec()
    };
    assert_eq!(code_of(&h.request(&mut c.c, m)), 400);
    // PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS.
    let m = {
        let tid = c.c.tid();
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), tid);
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        b.add_raw(AttrType::USERNAME, USER.as_bytes());
        b.add_raw(AttrType::REALM, REALM.as_bytes());
        b.add_raw(AttrType::NONCE, c.c.nonce.clone().unwrap().as_bytes());
        b.add_raw(AttrType::PASSWORD_ALGORITHM, &encode_algorithm(Sha256));
        b.add_integrity_sha256(&long_term_key_sha256(USER, REALM, PASS));
        let r = b.finish();
        buf[r].to_vec()
    };
    assert_eq!(code_of(&h.request(&mut c.c, m)), 400);
    // A rewritten feature field in the nonce: not ours, 438 with a fresh one.
    let n = c.c.nonce.clone().unwrap();
    c.c.nonce = Some(format!("obMatJos2AAAA{}", &n[13..]));
    c.alg = Some(Sha256);
    let m = c.allocate();
    assert_eq!(code_of(&c.send(&mut h, m)), 438);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.stats.auth_failures[crate::core::AuthFailure::PasswordAlgorithm as usize], 4);
    // The honest retry works.
    let m = c.allocate();
    assert_eq!(code_of(&c.send(&mut h, m)), 0);
}

#[test]
fn userhash_identifies_a_static_user() {
    let mut h = Harness::new(config());
    let mut c = Rfc8489Client::new("198.51.100.7:40000");
    c.userhash = true;
    let m = c.allocate();
    c.send(&mut h, m);
    let m = c.allocate();
    assert_eq!(code_of(&c.send(&mut h, m)), 0);
    assert_eq!(h.server.allocations().next().unwrap().username, USER);
    // The hash of nobody: 401.
    let mut d = Rfc8489Client::new("198.51.100.8:40000");
    d.userhash = true;
    d.c.user = "mallory".into();
    let m = d.allocate();
    d.send(&mut h, m);
    let m = d.allocate();
    assert_eq!(code_of(&d.send(&mut h, m)), 401);
}

#[test]
fn userhash_identifies_a_database_user() {
    let mut cfg = config();
    let shared = Arc::new(SharedSnapshot::default());
    shared.replace(Snapshot::default());
    cfg.userdb = true;
    cfg.dynamic = Some(shared);
    let mut h = Harness::new(cfg);
    let mut c = Rfc8489Client::new("198.51.100.9:40000");
    c.userhash = true;
    c.c.user = "dbuser".into();
    c.c.pass = "dbpass".into();
    let m = c.allocate();
    c.send(&mut h, m);
    // The hash is resolved by the database first, then the user's key.
    let m = c.allocate();
    assert!(h.from_client(c.c.addr, &m).is_empty(), "parked while the database answers");
    let hash = userhash("dbuser", REALM);
    let q = CredentialQuery::UserHash { realm: REALM.into(), hash };
    assert_eq!(std::mem::take(&mut h.out.credential_queries), vec![q.clone()]);
    h.server.provide_credentials(q, DbAnswer::UserName(Some("dbuser".into())), h.now);
    assert!(h.from_client(c.c.addr, &m).is_empty());
    let q = CredentialQuery::UserKey { realm: REALM.into(), username: "dbuser".into() };
    assert_eq!(std::mem::take(&mut h.out.credential_queries), vec![q.clone()]);
    h.server.provide_credentials(q, DbAnswer::Sha256Key(long_term_key_sha256("dbuser", REALM, "dbpass")), h.now);
    assert_eq!(code_of(&c.send(&mut h, m)), 0);
    assert_eq!(h.server.allocations().next().unwrap().username, "dbuser");
    // A hash the database does not know: 401; a failing database: 500.
    let mut d = Rfc8489Client::new("198.51.100.10:40000");
    d.userhash = true;
    d.c.user = "mallory".into();
    let m = d.allocate();
    d.send(&mut h, m);
    let m = d.allocate();
    assert!(h.from_client(d.c.addr, &m).is_empty());
    let q = CredentialQuery::UserHash { realm: REALM.into(), hash: userhash("mallory", REALM) };
    h.server.provide_credentials(q.clone(), DbAnswer::UserName(None), h.now);
    assert_eq!(code_of(&d.send(&mut h, m.clone())), 401);
    let m = d.allocate();
    h.server.provide_credentials(q, DbAnswer::Failed, h.now);
    assert_eq!(code_of(&d.send(&mut h, m)), 500);
}

#[test]
fn md5_only_user_is_offered_md5_only() {
    // A user given as `name:0x<md5 key>`: no SHA-256 key.
    let mut cfg = config();
    cfg.credentials.sha256_users.clear();
    let mut h = Harness::new(cfg);
    let mut c = Rfc8489Client::new("198.51.100.7:40000");
    let m = c.allocate();
    c.send(&mut h, m);
    let m = c.allocate();
    let a = c.send(&mut h, m);
    assert_eq!(code_of(&a), 401);
    assert_eq!(Message::parse(&a).unwrap().get(AttrType::PASSWORD_ALGORITHMS).unwrap(), encode_algorithms(&[Md5]));
    // The client follows the new offer: MD5 key, still MESSAGE-INTEGRITY-SHA256.
    c.alg = Some(Md5);
    let m = c.allocate();
    let a = c.send(&mut h, m);
    assert_eq!(code_of(&a), 0);
    assert!(Message::parse(&a).unwrap().check_integrity_sha256(&long_term_key(USER, REALM, PASS)));
}

#[test]
fn rest_api_sha256_hmac() {
    let mut creds =
        Credentials::new(AuthMode::RestSecret { secrets: vec!["s3cret".into()], separator: ':' }, REALM.into());
    creds.rest_hmac = RestHmac::Sha256;
    let mut cfg = CoreConfig::new(creds, NonceGen::new(Some("k"), 600));
    cfg.rfc8489 = true;
    let mut h = Harness::new(cfg);
    let user = format!("{}:bob", 1_700_000_000 + 3600);
    // A SHA-1 REST password is refused under --rest-api-hmac=sha256.
    let mut c = TestClient::new("198.51.100.7:40000");
    c.user = user.clone();
    c.pass = rest_password_with(RestHmac::Sha1, "s3cret", &user);
    let m = c.allocate_msg(|_| {});
    h.request(&mut c, m);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    // The SHA-256 one works, with SHA-1 MESSAGE-INTEGRITY ...
    c.pass = rest_password_with(RestHmac::Sha256, "s3cret", &user);
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // ... and as an RFC 8489 client with the SHA-256 key.
    let mut d = Rfc8489Client::new("198.51.100.8:40000");
    d.c.user = user.clone();
    d.c.pass = rest_password_with(RestHmac::Sha256, "s3cret", &user);
    let m = d.allocate();
    d.send(&mut h, m);
    let m = d.allocate();
    assert_eq!(code_of(&d.send(&mut h, m)), 0);
}

#[test]
fn database_sha256_key_serves_sha256_clients_only() {
    let mut cfg = config();
    cfg.userdb = true;
    let shared = Arc::new(SharedSnapshot::default());
    shared.replace(Snapshot::default());
    cfg.dynamic = Some(shared);
    let mut h = Harness::new(cfg);
    let q = CredentialQuery::UserKey { realm: REALM.into(), username: "dbuser".into() };
    let answer = DbAnswer::Sha256Key(long_term_key_sha256("dbuser", REALM, "dbpass"));
    // RFC 8489 client.
    let mut c = Rfc8489Client::new("198.51.100.7:40000");
    c.c.user = "dbuser".into();
    c.c.pass = "dbpass".into();
    let m = c.allocate();
    c.send(&mut h, m);
    let m = c.allocate();
    assert!(h.from_client(c.c.addr, &m).is_empty(), "waits for the database");
    assert_eq!(std::mem::take(&mut h.out.credential_queries), vec![q.clone()]);
    h.server.provide_credentials(q.clone(), answer.clone(), h.now);
    assert_eq!(code_of(&c.send(&mut h, m)), 0);
    // RFC 5389 client of the same user: 401 (it cannot use a SHA-256 key).
    let mut d = TestClient::new("198.51.100.8:40000");
    d.user = "dbuser".into();
    d.pass = "dbpass".into();
    let m = d.allocate_msg(|_| {});
    h.request(&mut d, m);
    let m = d.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut d, m)), 401);
    // An MD5 row asked for SHA-256: a 401 offering MD5 only.
    let mut e = Rfc8489Client::new("198.51.100.9:40000");
    e.c.user = "dbuser".into();
    e.c.pass = "dbpass".into();
    h.server.provide_credentials(q, DbAnswer::Key(Some(long_term_key("dbuser", REALM, "dbpass"))), h.now);
    let m = e.allocate();
    e.send(&mut h, m);
    let m = e.allocate();
    let a = e.send(&mut h, m);
    assert_eq!(code_of(&a), 401);
    assert_eq!(Message::parse(&a).unwrap().get(AttrType::PASSWORD_ALGORITHMS).unwrap(), encode_algorithms(&[Md5]));
}
