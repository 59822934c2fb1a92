//! RFC 7635 tokens seen from the core: an allocation made with one token
//! takes a fresh token (under another kid) on Refresh, as coturn's
//! `turnutils_uclient -J` sends one with every Allocate and Refresh, and the
//! requests after it name the new kid and sign with the new mac_key.

use std::net::SocketAddr;

use super::util::*;
use crate::core::dbauth::{CredentialQuery, DbAnswer};
use crate::core::dynamic::{SharedSnapshot, Snapshot};
use crate::core::oauth::{OauthKey, OauthKeyRow, Token};
use crate::core::CoreConfig;
use crate::stun::integrity::MacKey;
use crate::stun::{AttrType, Class, MessageBuilder, MessageType, Method, TransactionId};

const SERVER_NAME: &str = "turn.example.org";

fn key_row(kid: &str, byte: u8) -> OauthKeyRow {
    use base64::Engine;
    OauthKeyRow {
        kid: kid.into(),
        ikm_key: base64::engine::general_purpose::STANDARD.encode([byte; 32]),
        timestamp: 0,
        lifetime: 0,
        as_rs_alg: "A256GCM".into(),
        realm: String::new(),
    }
}

fn oauth_harness() -> Harness {
    let mut cfg: CoreConfig = long_term_config();
    let shared = std::sync::Arc::new(SharedSnapshot::default());
    shared.replace(Snapshot::default());
    cfg.userdb = true;
    cfg.dynamic = Some(shared);
    cfg.oauth = true;
    cfg.oauth_server_name = SERVER_NAME.into();
    let mut h = Harness::new(cfg);
    for (kid, byte) in [("north", 1u8), ("union", 2u8)] {
        let q = CredentialQuery::OauthKey { kid: kid.into() };
        h.server.provide_credentials(q, DbAnswer::OauthKey(Some(key_row(kid, byte))), h.now);
    }
    h
}

/// A request under `kid`, signed with `mac`; with a token when `token`.
#[allow(clippy::too_many_arguments)]
fn request(
    c: &mut TestClient,
    method: Method,
    kid: &str,
    mac: &MacKey,
    token: Option<&[u8]>,
    attrs: impl FnOnce(&mut MessageBuilder),
) -> Vec<u8> {
    let tid: TransactionId = c.tid();
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid);
    attrs(&mut b);
    b.add_raw(AttrType::USERNAME, kid.as_bytes());
    b.add_raw(AttrType::REALM, c.realm.clone().unwrap_or_default().as_bytes());
    b.add_raw(AttrType::NONCE, c.nonce.clone().unwrap_or_default().as_bytes());
    if let Some(t) = token {
        b.add_raw(AttrType::ACCESS_TOKEN, t);
    }
    b.add_integrity(mac);
    let range = b.finish();
    buf[range].to_vec()
}

/// A token for `kid` carrying a fresh `mac` (20 bytes, as uclient makes).
fn token(h: &Harness, kid: &str, byte: u8, mac_byte: u8) -> (Vec<u8>, MacKey) {
    let key = OauthKey::from_row(&key_row(kid, byte)).expect("key row");
    let mac = MacKey::from_slice(&[mac_byte; 20]).expect("mac");
    let t = Token { mac_key: mac, timestamp: h.now.unix << 16, lifetime: 3600 };
    (key.encrypt(SERVER_NAME, [9; 12], &t), mac)
}

/// The code of a request the core does not take as an oAuth session
/// request: it goes to the long-term check, which asks the database for the
/// kid as a user name; the database knows no such user.
fn long_term_answer(h: &mut Harness, c: &mut TestClient, m: Vec<u8>) -> u16 {
    let out = h.from_client(c.addr, &m);
    if let Some((_, a)) = out.first() {
        return code_of(a);
    }
    let queries = std::mem::take(&mut h.out.credential_queries);
    assert!(matches!(queries.as_slice(), [CredentialQuery::UserKey { .. }]), "{queries:?}");
    for q in queries {
        h.server.provide_credentials(q, DbAnswer::Key(None), h.now);
    }
    code_of(&h.request(c, m))
}

#[test]
fn refresh_with_a_token_under_another_kid_rekeys_the_allocation() {
    let mut h = oauth_harness();
    let mut c = TestClient::new("10.0.0.7:4000");
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let udp = |b: &mut MessageBuilder| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    };
    let (t1, mac1) = token(&h, "north", 1, 0xa1);
    let m = request(&mut c, Method::ALLOCATE, "north", &mac1, Some(&t1), udp);
    assert_eq!(code_of(&h.request(&mut c, m)), 0, "Allocate with a token");
    let peer: SocketAddr = addr("192.0.2.9:7000");
    let perm = |b: &mut MessageBuilder| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    };
    let m = request(&mut c, Method::CREATE_PERMISSION, "north", &mac1, None, perm);
    assert_eq!(code_of(&h.request(&mut c, m)), 0, "CreatePermission under the Allocate's kid and key");

    // Refresh with a new token under another kid: accepted, and it re-keys.
    let (t2, mac2) = token(&h, "union", 2, 0xb2);
    let lifetime = |b: &mut MessageBuilder| {
        b.add_u32(AttrType::LIFETIME, 600);
    };
    let m = request(&mut c, Method::REFRESH, "union", &mac2, Some(&t2), lifetime);
    assert_eq!(code_of(&h.request(&mut c, m)), 0, "Refresh with another kid's token");
    let m = request(&mut c, Method::CREATE_PERMISSION, "union", &mac2, None, perm);
    assert_eq!(code_of(&h.request(&mut c, m)), 0, "the new kid and key sign what follows");
    // The old key no longer does, nor does a kid no token named.
    let m = request(&mut c, Method::CREATE_PERMISSION, "north", &mac1, None, perm);
    assert_eq!(long_term_answer(&mut h, &mut c, m), 401, "the replaced key");
    // The allocation keeps its first kid (quotas and logs).
    let a = h.server.allocations().next().expect("allocation");
    assert_eq!(a.username, "north");
}

#[test]
fn another_clients_token_cannot_take_over_an_allocation_without_its_key() {
    let mut h = oauth_harness();
    let mut c = TestClient::new("10.0.0.8:4000");
    let m = c.allocate_msg(|_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let (t1, mac1) = token(&h, "north", 1, 0xa1);
    let m = request(&mut c, Method::ALLOCATE, "north", &mac1, Some(&t1), |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code_of(&h.request(&mut c, m)), 0);
    // A request naming "union" without a token and signed with some key is
    // not an oAuth session request: the long-term check refuses it.
    let stray = MacKey::from_slice(&[0xcc; 20]).expect("mac");
    let m = request(&mut c, Method::REFRESH, "union", &stray, None, |_| {});
    assert_eq!(long_term_answer(&mut h, &mut c, m), 401);
    // Nor can a token of another kid that does not decrypt.
    let (bad, mac) = token(&h, "union", 7, 0xdd);
    let m = request(&mut c, Method::REFRESH, "union", &mac, Some(&bad), |_| {});
    assert_eq!(code_of(&h.request(&mut c, m)), 401);
    let a = h.server.allocations().next().expect("allocation");
    assert_eq!(a.key.as_deref(), Some(&mac1[..]), "the allocation keeps its key");
}
