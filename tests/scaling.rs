//! Scaling out (docs/scaling.md): servers of one fleet, the real binary
//! twice, sharing what the document tells operators to share: a PostgreSQL
//! user database (a user added with coturn's own `turnadmin`), one
//! `--stateless-nonce-secret`, one Redis stats DB, or one TURN REST secret.
//!
//! * A client challenged by one server is accepted by the other with that
//!   nonce, both ways, as a load balancer that moves a client between nodes
//!   needs; a node with another nonce secret answers 438.
//! * Allocations on both nodes appear in the stats DB, each under its own key.
//! * Drain (SIGUSR1) of one node while a client relays through it: new
//!   Allocates there get 403, the client keeps relaying until it deletes its
//!   allocation, a new client allocates on the other node meanwhile, and the
//!   drained node exits once its last allocation is gone.
//! * A TURN REST username/password computed once works on every node.
//!
//! Every wait is bounded; servers and databases are stopped by PID on drop.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::dbservers::PgServer;
use common::redis_server::RedisServer;
use common::signed_client::{exited, signal, wait_for, SignedClient};
use common::*;
use hmac::{Hmac, Mac};

const REALM: &str = "example.org";
const NONCE_SECRET: &str = "fleet-nonce-secret-1";

/// The flags every node of the fleet shares, after the harness's own.
fn node_flags(extra: &[String]) -> Vec<String> {
    let mut f: Vec<String> = [
        "--lt-cred-mech",
        "--realm=example.org",
        // The echo peer lives on 127.0.0.1, which is also the databases' host
        // (denied as a peer unless allowed).
        "--allow-loopback-peers",
        "--allowed-peer-ip=127.0.0.1",
        "--relay-threads=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    f.extend(extra.iter().cloned());
    f
}

fn start_node(flags: &[String]) -> TestServer {
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestServer::start(&refs)
}

/// Status keys of the stats DB and their values.
fn status_entries(redis: &RedisServer) -> Vec<(String, String)> {
    let out = redis.cli(&["--scan", "--pattern", "turn/*allocation/*/status"]);
    assert!(out.success(), "redis-cli --scan: {}", out.describe());
    out.stdout
        .lines()
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            let v = redis.cli(&["GET", k.trim()]);
            (k.trim().to_string(), v.stdout.trim().to_string())
        })
        .collect()
}

/// The status entry of an allocation that `node` holds for `client`.
fn entry_for(entries: &[(String, String)], node: &TestServer, client: SocketAddr) -> Option<(String, String)> {
    let local = format!("local=127.0.0.1:{},", node.port());
    let remote = format!("remote={client},");
    entries.iter().find(|(_, v)| v.contains(&local) && v.contains(&remote)).cloned()
}

/// Two nodes on one PostgreSQL user database, one nonce secret and one Redis
/// stats DB: nonces cross, allocations of both are in the stats DB, and one
/// node drains away without cutting its call.
#[test]
fn fleet_shares_nonces_users_and_stats_and_drains_a_node() {
    let pg = PgServer::start();
    let redis = RedisServer::start();
    // The user, written once into the shared database with coturn's turnadmin.
    let admin = require_tool("turnadmin");
    let conninfo = pg.conninfo();
    let out = run_cmd(&admin, &["-a", "-e", conninfo.as_str(), "-u", "fleetuser", "-r", REALM, "-p", "fleetpw"], Duration::from_secs(30));
    assert!(out.success(), "turnadmin -a -e: {}", out.describe());

    let shared = vec![
        format!("--psql-userdb={conninfo}"),
        format!("--stateless-nonce-secret={NONCE_SECRET}"),
        format!("--redis-statsdb={}", redis.spec()),
    ];
    let a = start_node(&node_flags(&shared));
    let b = start_node(&node_flags(&shared));
    // A server outside the fleet: same user, another nonce secret.
    let outsider = start_node(&node_flags(&[
        "--user=fleetuser:fleetpw".to_string(),
        "--stateless-nonce-secret=another-secret".to_string(),
    ]));
    let echo = echo_peer();

    // Challenged by A, allocated on B with A's nonce (no second 401/438).
    let mut c1 = SignedClient::new(a.addr(), "fleetuser", "fleetpw");
    assert_eq!(c1.challenge(), 401);
    assert_eq!(c1.realm.as_deref(), Some(REALM));
    let nonce_a = c1.nonce.clone().unwrap();
    c1.server = b.addr();
    assert_eq!(c1.allocate_once(), 0, "B refused A's nonce\n--- B ---\n{}", b.log_tail(30));
    println!("nonce issued by A ({nonce_a}) accepted by B: relayed {:?}", c1.relayed);

    // And the reverse: challenged by B, allocated on A.
    let mut c2 = SignedClient::new(b.addr(), "fleetuser", "fleetpw");
    assert_eq!(c2.challenge(), 401);
    let nonce_b = c2.nonce.clone().unwrap();
    c2.server = a.addr();
    assert_eq!(c2.allocate_once(), 0, "A refused B's nonce\n--- A ---\n{}", a.log_tail(30));
    println!("nonce issued by B ({nonce_b}) accepted by A: relayed {:?}", c2.relayed);

    // A nonce of a server with another secret is not ours: 438, new nonce.
    let mut c3 = SignedClient::new(outsider.addr(), "fleetuser", "fleetpw");
    assert_eq!(c3.challenge(), 401);
    let foreign = c3.nonce.clone().unwrap();
    c3.server = a.addr();
    assert_eq!(c3.allocate_once(), 438, "a foreign nonce must not pass");
    assert_ne!(c3.nonce.as_deref(), Some(foreign.as_str()), "438 brings a fresh nonce");
    // ...with which the same client is then served.
    assert_eq!(c3.allocate_once(), 0);
    assert_eq!(c3.refresh(0), 0);

    // Both allocations relay.
    assert_eq!(c1.permission(echo), 0);
    assert_eq!(c2.permission(echo), 0);
    assert!(c1.relay_echo(echo, b"via B"), "relay through B");
    assert!(c2.relay_echo(echo, b"via A"), "relay through A");

    // The stats DB holds both, each under its own key.
    let c1_addr = c1.sock.local_addr().unwrap();
    let c2_addr = c2.sock.local_addr().unwrap();
    let mut entries = Vec::new();
    let both = wait_for(Duration::from_secs(10), || {
        entries = status_entries(&redis);
        entry_for(&entries, &b, c1_addr).is_some() && entry_for(&entries, &a, c2_addr).is_some()
    });
    assert!(both, "allocations of both nodes in the stats DB; got {entries:#?}");
    let (key_b, val_b) = entry_for(&entries, &b, c1_addr).unwrap();
    let (key_a, val_a) = entry_for(&entries, &a, c2_addr).unwrap();
    assert_ne!(key_a, key_b, "two allocations, two keys");
    for k in [&key_a, &key_b] {
        assert!(k.starts_with("turn/realm/example.org/user/fleetuser/allocation/"), "{k}");
    }
    assert!(val_a.starts_with("new lifetime=") && val_a.contains("type=UDP"), "{val_a}");
    println!("stats DB: {key_a} = {val_a}");
    println!("stats DB: {key_b} = {val_b}");

    // ---- drain A while c2 relays through it
    let pid_a = a.pid().unwrap();
    signal(pid_a, libc::SIGUSR1);
    assert!(
        wait_for(Duration::from_secs(5), || a.log().contains("Drain mode")),
        "no drain line\n{}",
        a.log_tail(20)
    );
    let mut late = SignedClient::new(a.addr(), "fleetuser", "fleetpw");
    assert_eq!(late.allocate(), 403, "a draining node refuses new allocations");
    // The call on A carries on for a while; a new client goes to B meanwhile.
    let mut newcomer = SignedClient::new(b.addr(), "fleetuser", "fleetpw");
    assert_eq!(newcomer.allocate(), 0, "B takes the new client");
    assert_eq!(newcomer.permission(echo), 0);
    assert!(newcomer.relay_echo(echo, b"new on B"));
    let t0 = Instant::now();
    let mut rounds = 0;
    while t0.elapsed() < Duration::from_secs(3) {
        assert!(c2.relay_echo(echo, format!("draining {rounds}").as_bytes()), "relay through the draining node, round {rounds}");
        assert!(!exited(pid_a), "A exited while an allocation was left");
        rounds += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(c2.refresh(600), 0, "a draining node still refreshes");
    // The client hangs up: A has nothing left and exits.
    assert_eq!(c2.refresh(0), 0);
    let t1 = Instant::now();
    assert!(wait_for(Duration::from_secs(10), || exited(pid_a)), "A did not exit after its last allocation\n{}", a.log_tail(20));
    println!("drained node: {rounds} relay rounds while draining, exited {:?} after the last allocation", t1.elapsed());
    assert!(a.log().contains("Drain complete: 0 allocation(s) left"), "{}", a.log_tail(20));
    // Its status key is gone; B's stays, and B serves on.
    assert!(
        wait_for(Duration::from_secs(5), || !status_entries(&redis).iter().any(|(k, _)| *k == key_a)),
        "status key of the drained allocation left behind"
    );
    assert!(status_entries(&redis).iter().any(|(k, _)| *k == key_b));
    assert!(c1.relay_echo(echo, b"B after A left"));
    assert_eq!(c1.refresh(0), 0);
    assert_eq!(newcomer.refresh(0), 0);
}

/// `--use-auth-secret --static-auth-secret`: the application server computes
/// a username and password once; every node accepts them.
#[test]
fn rest_credentials_computed_once_work_on_every_node() {
    const SECRET: &str = "fleet-rest-secret";
    let flags = node_flags(&[
        "--use-auth-secret".to_string(),
        format!("--static-auth-secret={SECRET}"),
        format!("--stateless-nonce-secret={NONCE_SECRET}"),
    ]);
    // node_flags asks for --lt-cred-mech; the REST secret takes precedence.
    let a = start_node(&flags);
    let b = start_node(&flags);
    let echo = echo_peer();

    let expiry = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let user = format!("{expiry}:alice");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(user.as_bytes());
    let pass = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());

    for node in [&a, &b] {
        let mut c = SignedClient::new(node.addr(), &user, &pass);
        assert_eq!(c.allocate(), 0, "REST credentials on {}\n{}", node.addr(), node.log_tail(20));
        assert_eq!(c.permission(echo), 0);
        assert!(c.relay_echo(echo, b"rest"));
        assert_eq!(c.refresh(0), 0);
    }
    // Challenged by A, served by B, with the same credentials.
    let mut c = SignedClient::new(a.addr(), &user, &pass);
    assert_eq!(c.challenge(), 401);
    c.server = b.addr();
    assert_eq!(c.allocate_once(), 0);
    assert_eq!(c.refresh(0), 0);
    // A password made with another secret is refused by both.
    for node in [&a, &b] {
        let mut bad = SignedClient::new(node.addr(), &user, "d3Jvbmc=");
        assert_eq!(bad.allocate(), 401);
    }
    // So is an expired username, even with the right password.
    let old = format!("{}:alice", expiry - 7200);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(old.as_bytes());
    let old_pass = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut expired = SignedClient::new(b.addr(), &old, &old_pass);
    assert_eq!(expired.allocate(), 401);
}
