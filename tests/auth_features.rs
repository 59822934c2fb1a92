//! RFC 8489 security features and RFC 7635 oAuth through the real binary.
//!
//! RFC 8489: no third-party client speaks PASSWORD-ALGORITHM / USERHASH /
//! MESSAGE-INTEGRITY-SHA256, so a small client on the crate's codec does.
//! oAuth: coturn's `turnutils_uclient -J` (its built-in keys "north",
//! "union", "oldempire", seeded as `oauth_key` rows) and tokens made by
//! coturn's `turnutils_oauth`.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use turnserver::core::oauth::{OauthKey, OauthKeyRow};
use turnserver::stun::integrity::{long_term_key, long_term_key_sha256};
use turnserver::stun::rfc8489::{encode_algorithm, userhash, PasswordAlgorithm};
use turnserver::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const UCLIENT_TIMEOUT: Duration = Duration::from_secs(90);
const SERVER_NAME: &str = "blackdow.carleon.gov";
/// `turnutils_uclient -J`'s built-in keys (coturn's mainuclient.c).
const UCLIENT_KEYS: [(&str, &str, &str, &str); 3] = [
    ("north", "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEK", "A256GCM", "crinna.org"),
    ("union", "MTIzNDU2Nzg5MDEyMzQ1Ngo=", "A128GCM", "north.gov"),
    ("oldempire", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIK", "A256GCM", ""),
];

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn db_file(server: &TestServer) -> PathBuf {
    server.dir.path().join("turndb.sqlite")
}

fn sqlite(db: &Path, sql: &str) {
    let bin = require_tool("sqlite3");
    let out = run_cmd(&bin, &[db.display().to_string(), sql.to_string()], Duration::from_secs(30));
    assert!(out.success(), "sqlite3 {sql}: {}", out.describe());
}

fn seed_keys(db: &Path, keys: &[(&str, &str, &str, &str)]) {
    for (kid, ikm, alg, realm) in keys {
        sqlite(
            db,
            &format!(
                "insert or replace into oauth_key (kid,ikm_key,timestamp,lifetime,as_rs_alg,realm) values ('{kid}','{ikm}',0,0,'{alg}','{realm}')"
            ),
        );
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn code(a: &[u8]) -> u16 {
    let m = Message::parse(a).unwrap();
    match m.class() {
        Class::Success => 0,
        _ => m.error_code().unwrap().unwrap().0,
    }
}

/// One UDP socket, requests retransmitted every 500 ms for up to 10 s.
struct Udp {
    sock: UdpSocket,
    server: SocketAddr,
    n: u32,
}

impl Udp {
    fn new(server: SocketAddr) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        Udp { sock, server, n: 0 }
    }

    fn build(&mut self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        self.n += 1;
        let mut t = [0x6bu8; 12];
        t[..4].copy_from_slice(&self.n.to_be_bytes());
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), TransactionId(t));
        attrs(&mut b);
        let r = b.finish();
        buf[r].to_vec()
    }

    fn transact(&mut self, msg: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 2048];
        while Instant::now() < deadline {
            self.sock.send_to(msg, self.server).unwrap();
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                let Ok((n, _)) = self.sock.recv_from(&mut buf) else { break };
                if n >= 20 && buf[8..20] == msg[8..20] {
                    return buf[..n].to_vec();
                }
            }
        }
        panic!("no answer from {} within 10 s", self.server);
    }
}

fn allocate_attrs(b: &mut MessageBuilder) {
    b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
}

// ------------------------------------------------------------- RFC 8489

#[test]
fn rfc8489_sha256_client_and_sha1_client_through_the_binary() {
    let server = TestServer::start(&["--lt-cred-mech", "--user=alice:secret", "--realm=example.org", "--rfc8489-auth"]);
    let mut c = Udp::new(server.addr());
    let m = c.build(Method::ALLOCATE, allocate_attrs);
    let a = c.transact(&m);
    assert_eq!(code(&a), 401);
    let msg = Message::parse(&a).unwrap();
    let nonce = msg.str_attr(AttrType::NONCE).unwrap().unwrap().to_string();
    assert!(nonce.starts_with("obMatJos2wAAA"), "{nonce}");
    let algs = msg.get(AttrType::PASSWORD_ALGORITHMS).unwrap().to_vec();
    assert_eq!(algs, [0, 2, 0, 0, 0, 1, 0, 0]);
    // SHA-256 with USERHASH.
    let key = long_term_key_sha256("alice", "example.org", "secret");
    let m = c.build(Method::ALLOCATE, |b| {
        allocate_attrs(b);
        b.add_raw(AttrType::USERHASH, &userhash("alice", "example.org"));
        b.add_raw(AttrType::REALM, b"example.org");
        b.add_raw(AttrType::NONCE, nonce.as_bytes());
        b.add_raw(AttrType::PASSWORD_ALGORITHMS, &algs);
        b.add_raw(AttrType::PASSWORD_ALGORITHM, &encode_algorithm(PasswordAlgorithm::Sha256));
        b.add_integrity_sha256(&key);
    });
    let a = c.transact(&m);
    assert_eq!(code(&a), 0, "{}", server.log_tail(20));
    let msg = Message::parse(&a).unwrap();
    assert!(msg.check_integrity_sha256(&key));
    assert!(msg.get(AttrType::MESSAGE_INTEGRITY).is_none());
    // Downgrade: an echo of a shortened list is refused.
    let mut d = Udp::new(server.addr());
    let m = d.build(Method::ALLOCATE, allocate_attrs);
    let a = d.transact(&m);
    let nonce = Message::parse(&a).unwrap().str_attr(AttrType::NONCE).unwrap().unwrap().to_string();
    let m = d.build(Method::ALLOCATE, |b| {
        allocate_attrs(b);
        b.add_raw(AttrType::USERNAME, b"alice");
        b.add_raw(AttrType::REALM, b"example.org");
        b.add_raw(AttrType::NONCE, nonce.as_bytes());
        b.add_raw(AttrType::PASSWORD_ALGORITHMS, &[0, 1, 0, 0]);
        b.add_raw(AttrType::PASSWORD_ALGORITHM, &encode_algorithm(PasswordAlgorithm::Md5));
        b.add_integrity_sha256(&long_term_key("alice", "example.org", "secret"));
    });
    assert_eq!(code(&d.transact(&m)), 400);
    // An RFC 5389 client (SHA-1, MD5 key) with the same nonce: unchanged.
    let m = d.build(Method::ALLOCATE, |b| {
        allocate_attrs(b);
        b.add_raw(AttrType::USERNAME, b"alice");
        b.add_raw(AttrType::REALM, b"example.org");
        b.add_raw(AttrType::NONCE, nonce.as_bytes());
        b.add_integrity(&long_term_key("alice", "example.org", "secret"));
    });
    let a = d.transact(&m);
    assert_eq!(code(&a), 0);
    assert!(Message::parse(&a).unwrap().check_integrity(&long_term_key("alice", "example.org", "secret")));
}

/// USERHASH of a user that only the database knows, added by coturn's own
/// `turnadmin` (an MD5 key): the server hashes the realm's names to find it.
#[test]
fn userhash_of_a_database_user_through_the_binary() {
    let server = TestServer::start(&["--lt-cred-mech", "--realm=example.org", "--rfc8489-auth"]);
    let turnadmin = require_tool("turnadmin");
    let db = db_file(&server);
    let out = run_cmd(
        &turnadmin,
        &s(&["-a", "-b", &db.display().to_string(), "-u", "bob", "-r", "example.org", "-p", "bobpass"]),
        Duration::from_secs(30),
    );
    assert!(out.success(), "{}", out.describe());
    let mut c = Udp::new(server.addr());
    let m = c.build(Method::ALLOCATE, allocate_attrs);
    let a = c.transact(&m);
    assert_eq!(code(&a), 401);
    let msg = Message::parse(&a).unwrap();
    let nonce = msg.str_attr(AttrType::NONCE).unwrap().unwrap().to_string();
    let algs = msg.get(AttrType::PASSWORD_ALGORITHMS).unwrap().to_vec();
    let request = |c: &mut Udp, who: &str, key: &[u8]| {
        let m = c.build(Method::ALLOCATE, |b| {
            allocate_attrs(b);
            b.add_raw(AttrType::USERHASH, &userhash(who, "example.org"));
            b.add_raw(AttrType::REALM, b"example.org");
            b.add_raw(AttrType::NONCE, nonce.as_bytes());
            b.add_raw(AttrType::PASSWORD_ALGORITHMS, &algs);
            b.add_raw(AttrType::PASSWORD_ALGORITHM, &encode_algorithm(PasswordAlgorithm::Md5));
            b.add_integrity_sha256(key);
        });
        c.transact(&m)
    };
    // The hash of nobody first: 401.
    let mut other = Udp::new(server.addr());
    assert_eq!(code(&request(&mut other, "mallory", &long_term_key("mallory", "example.org", "x"))), 401);
    let key = long_term_key("bob", "example.org", "bobpass");
    let a = request(&mut c, "bob", &key);
    assert_eq!(code(&a), 0, "{}", server.log_tail(20));
    assert!(Message::parse(&a).unwrap().check_integrity_sha256(&key));
    assert!(server.log().contains("username=<bob>"), "{}", server.log_tail(20));
}

#[test]
fn uclient_still_works_with_rfc8489_features_on() {
    let server = TestServer::start(&["--lt-cred-mech", "--user=user:pass", "--realm=example.org", "--allow-loopback-peers", "--rfc8489-auth"]);
    let _peer = start_turnutils_peer(&["127.0.0.1"], server.ports.peer_port());
    let bin = require_tool("turnutils_uclient");
    let mut args = s(&["-u", "user", "-w", "pass", "-e", "127.0.0.1", "-r", &server.ports.peer_port().to_string(), "-n", "20", "-m", "1", "-l", "120"]);
    args.extend(["-p".to_string(), server.port().to_string(), "127.0.0.1".to_string()]);
    let out = run_cmd(&bin, &args, UCLIENT_TIMEOUT);
    let st = parse_uclient(&out.all()).unwrap_or_else(|| panic!("{}\n{}", out.describe(), server.log_tail(30)));
    assert!(st.send_msgs >= 20 && st.recv_msgs == st.send_msgs && st.lost == 0, "{st:?}");
}

// ------------------------------------------------------------- oAuth

fn oauth_server() -> TestServer {
    TestServer::start(&[
        "--lt-cred-mech",
        "--user=user:pass",
        "--realm=north.gov",
        "--allow-loopback-peers",
        "--oauth",
        &format!("--server-name={SERVER_NAME}"),
    ])
}

#[test]
fn uclient_oauth_allocates_and_relays() {
    let server = oauth_server();
    seed_keys(&db_file(&server), &UCLIENT_KEYS);
    let _peer = start_turnutils_peer(&["127.0.0.1"], server.ports.peer_port());
    let bin = require_tool("turnutils_uclient");
    // uclient -J picks one of its three kids at random per connection: a few
    // runs cover more than one of them.
    for run in 0..3 {
        let mut args = s(&["-J", "-e", "127.0.0.1", "-r", &server.ports.peer_port().to_string(), "-n", "20", "-m", "2", "-l", "120"]);
        args.extend(["-p".to_string(), server.port().to_string(), "127.0.0.1".to_string()]);
        let out = run_cmd(&bin, &args, UCLIENT_TIMEOUT);
        assert!(!out.timed_out, "{}", out.describe());
        let st = parse_uclient(&out.all())
            .unwrap_or_else(|| panic!("run {run}: no counters\n{}\n--- server ---\n{}", out.describe(), server.log_tail(40)));
        assert!(
            st.send_msgs >= 40 && st.recv_msgs == st.send_msgs && st.lost == 0,
            "run {run}: {st:?}\n{}\n{}",
            out.describe(),
            server.log_tail(40)
        );
        println!("run {run}: sent {} received {}", st.send_msgs, st.recv_msgs);
    }
    let log = server.log();
    let realms: Vec<&str> = ["crinna.org", "north.gov"].into_iter().filter(|r| log.contains(&format!("realm=<{r}>"))).collect();
    println!("allocation realms seen: {realms:?}");
    assert!(!realms.is_empty(), "sessions carry the key's realm\n{}", server.log_tail(40));
}

#[test]
fn uclient_oauth_with_wrong_keys_is_refused() {
    let server = oauth_server();
    // Same kids, other key material: no token decrypts.
    let wrong = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
    seed_keys(
        &db_file(&server),
        &[("north", wrong, "A256GCM", "crinna.org"), ("union", wrong, "A128GCM", "north.gov"), ("oldempire", wrong, "A256GCM", "")],
    );
    let bin = require_tool("turnutils_uclient");
    let mut args = s(&["-J", "-e", "127.0.0.1", "-r", &server.ports.peer_port().to_string(), "-n", "5", "-m", "1", "-l", "120"]);
    args.extend(["-p".to_string(), server.port().to_string(), "127.0.0.1".to_string()]);
    let out = run_cmd(&bin, &args, UCLIENT_TIMEOUT);
    let relayed = parse_uclient(&out.all()).map(|s| s.recv_msgs).unwrap_or(0);
    assert_eq!(relayed, 0, "{}", out.describe());
    assert!(server.log().contains("token refused"), "{}", server.log_tail(30));
}

/// `turnutils_oauth -e` with the "north" key; the base64 token.
fn turnutils_token(mac_b64: &str, ts: u64, lifetime: u32) -> String {
    let bin = require_tool("turnutils_oauth");
    let (kid, ikm, alg, _) = UCLIENT_KEYS[0];
    let args = s(&[
        "-e", "-i", SERVER_NAME, "-j", kid, "-k", ikm, "-l", "1", "-m", "2000000000", "-n", alg, "-p", mac_b64,
        "-q", &(ts << 16).to_string(), "-r", &lifetime.to_string(),
    ]);
    let out = run_cmd(&bin, &args, Duration::from_secs(30));
    assert!(out.success(), "{}", out.describe());
    let text = out.all();
    let line = text.lines().find(|l| l.contains("access_token")).unwrap_or_else(|| panic!("{text}"));
    line.split('"').nth(3).unwrap().to_string()
}

#[test]
fn turnutils_oauth_tokens_decrypt_and_cap_the_lifetime() {
    let mac: Vec<u8> = (1u8..=20).collect();
    let mac_b64 = base64::engine::general_purpose::STANDARD.encode(&mac);
    let now = now_unix();
    let tok = base64::engine::general_purpose::STANDARD.decode(turnutils_token(&mac_b64, now, 300)).unwrap();
    // Decrypted by our code: the fields turnutils_oauth was given.
    let (kid, ikm, alg, realm) = UCLIENT_KEYS[0];
    let row = OauthKeyRow { kid: kid.into(), ikm_key: ikm.into(), as_rs_alg: alg.into(), realm: realm.into(), ..Default::default() };
    let t = OauthKey::from_row(&row).unwrap().decrypt(SERVER_NAME, &tok).unwrap();
    assert_eq!(&t.mac_key[..], &mac[..]);
    assert_eq!((t.issued_unix(), t.lifetime), (now, 300));

    let server = oauth_server();
    seed_keys(&db_file(&server), &UCLIENT_KEYS);
    let signed = |c: &mut Udp, nonce: &str, token: &[u8]| {
        c.build(Method::ALLOCATE, |b| {
            allocate_attrs(b);
            b.add_raw(AttrType::USERNAME, kid.as_bytes());
            b.add_raw(AttrType::REALM, b"north.gov");
            b.add_raw(AttrType::NONCE, nonce.as_bytes());
            b.add_raw(AttrType::ACCESS_TOKEN, token);
            b.add_integrity(&mac);
        })
    };
    let mut c = Udp::new(server.addr());
    let m = c.build(Method::ALLOCATE, allocate_attrs);
    let a = c.transact(&m);
    assert_eq!(code(&a), 401);
    let msg = Message::parse(&a).unwrap();
    assert_eq!(msg.get(AttrType::THIRD_PARTY_AUTHORIZATION).unwrap(), SERVER_NAME.as_bytes());
    let nonce = msg.str_attr(AttrType::NONCE).unwrap().unwrap().to_string();
    // Valid token: allocated, lifetime capped at the token's 300 s (asked 600).
    let m = signed(&mut c, &nonce, &tok);
    let mut a = c.transact(&m);
    if code(&a) == 401 {
        // The key row may still be on its way from the database: once more.
        std::thread::sleep(Duration::from_millis(500));
        let m = signed(&mut c, &nonce, &tok);
        a = c.transact(&m);
    }
    assert_eq!(code(&a), 0, "{}", server.log_tail(30));
    let msg = Message::parse(&a).unwrap();
    assert!(msg.check_integrity(&mac));
    let lifetime = msg.u32_attr(AttrType::LIFETIME).unwrap().unwrap();
    assert!((200..=300).contains(&lifetime), "lifetime {lifetime}");
    println!("allocation lifetime with a 300 s token: {lifetime}");
    assert!(server.log().contains("realm=<crinna.org>"), "{}", server.log_tail(30));

    // Expired token (issued 2 h ago, valid 1 h): 401.
    let old = base64::engine::general_purpose::STANDARD.decode(turnutils_token(&mac_b64, now - 7200, 3600)).unwrap();
    let mut d = Udp::new(server.addr());
    let m = d.build(Method::ALLOCATE, allocate_attrs);
    let nonce = Message::parse(&d.transact(&m)).unwrap().str_attr(AttrType::NONCE).unwrap().unwrap().to_string();
    let m = signed(&mut d, &nonce, &old);
    assert_eq!(code(&d.transact(&m)), 401);
    assert!(server.log().contains("token expired"), "{}", server.log_tail(30));
}
