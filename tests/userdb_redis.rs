//! The Redis user database and the Redis stats database against a real
//! redis-server (started per test on a free loopback port), plus key-level
//! compatibility with coturn's own `turnadmin -N`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::redis_server::{RedisServer, RedisTls};
use turnserver::userdb::statsdb::{
    AllocationRef, AllocationStatus, StatsDb, StatsSink, TrafficCounters,
};
use turnserver::userdb::{AdminUser, DbError, DbSpec, PeerList, PeerRange, RealmOption, UserDb};

/// Bound on anything a test waits for.
const WAIT: Duration = Duration::from_secs(15);
/// A call against a Redis that is down must fail within this.
const FAIL_FAST: Duration = Duration::from_secs(8);

async fn connect(spec: &str) -> UserDb {
    match UserDb::connect(&DbSpec::Redis(spec.to_string())).await {
        Ok(db) => db,
        Err(e) => panic!("connect {spec}: {e}"),
    }
}

fn ok<T>(r: Result<T, DbError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_write_read_list_delete() {
    let redis = RedisServer::start();
    let db = connect(&redis.spec()).await;
    ok(db.ping().await, "ping");
    assert_eq!(
        ok(db.get_user_key("example.org", "alice").await, "get"),
        None
    );
    ok(
        db.set_user_key("example.org", "alice", "00112233445566778899aabbccddeeff")
            .await,
        "set",
    );
    ok(db.set_user_key("example.org", "bob", "11").await, "set");
    ok(
        db.set_user_key(
            "north.gov",
            "ninefingers",
            "bc807ee29df3c9ffa736523fb2c4e8ee",
        )
        .await,
        "set",
    );
    ok(db.set_user_key("a*b", "star", "22").await, "set");
    assert_eq!(
        ok(db.get_user_key("example.org", "alice").await, "get"),
        Some("00112233445566778899aabbccddeeff".to_string())
    );
    // Stored where coturn looks for it.
    let raw = redis.cli(&["GET", "turn/realm/example.org/user/alice/key"]);
    assert_eq!(
        raw.stdout.trim(),
        "00112233445566778899aabbccddeeff",
        "{}",
        raw.describe()
    );
    // Replace.
    ok(
        db.set_user_key("example.org", "alice", "ff").await,
        "replace",
    );
    assert_eq!(
        ok(db.get_user_key("example.org", "alice").await, "get"),
        Some("ff".into())
    );
    assert_eq!(
        ok(db.list_users(None).await, "list"),
        pairs(&[
            ("star", "a*b"),
            ("alice", "example.org"),
            ("bob", "example.org"),
            ("ninefingers", "north.gov")
        ])
    );
    assert_eq!(
        ok(db.list_users(Some("example.org")).await, "list realm"),
        pairs(&[("alice", "example.org"), ("bob", "example.org")])
    );
    // A realm with glob characters matches only itself.
    assert_eq!(
        ok(db.list_users(Some("a*b")).await, "list glob"),
        pairs(&[("star", "a*b")])
    );
    assert_eq!(ok(db.list_users(Some("a*")).await, "list glob"), vec![]);
    assert_eq!(
        ok(db.list_users(Some("nowhere")).await, "list none"),
        vec![]
    );
    ok(db.delete_user("example.org", "alice").await, "delete");
    ok(
        db.delete_user("example.org", "alice").await,
        "delete again is fine",
    );
    assert_eq!(
        ok(db.get_user_key("example.org", "alice").await, "get"),
        None
    );
    assert_eq!(
        ok(db.list_users(Some("example.org")).await, "list"),
        pairs(&[("bob", "example.org")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets() {
    let redis = RedisServer::start();
    let db = connect(&redis.spec()).await;
    assert!(ok(db.get_secrets("example.org").await, "get").is_empty());
    ok(db.add_secret("example.org", "s2").await, "add");
    ok(db.add_secret("example.org", "s1").await, "add");
    ok(db.add_secret("example.org", "s1").await, "add twice");
    ok(db.add_secret("north.gov", "n1").await, "add");
    assert_eq!(
        ok(db.get_secrets("example.org").await, "get"),
        vec!["s1", "s2"]
    );
    let t = redis.cli(&["TYPE", "turn/realm/example.org/secret"]);
    assert_eq!(t.stdout.trim(), "set");
    assert_eq!(
        ok(db.list_secrets(None).await, "list"),
        pairs(&[
            ("s1", "example.org"),
            ("s2", "example.org"),
            ("n1", "north.gov")
        ])
    );
    assert_eq!(
        ok(db.list_secrets(Some("north.gov")).await, "list realm"),
        pairs(&[("n1", "north.gov")])
    );
    ok(db.delete_secret("example.org", "s2").await, "delete");
    ok(
        db.delete_secret("example.org", "missing").await,
        "delete missing",
    );
    assert_eq!(ok(db.get_secrets("example.org").await, "get"), vec!["s1"]);
    ok(db.delete_all_secrets("example.org").await, "delete all");
    ok(
        db.delete_all_secrets("example.org").await,
        "delete all again",
    );
    assert!(ok(db.get_secrets("example.org").await, "get").is_empty());
    assert_eq!(
        ok(db.list_secrets(None).await, "list"),
        pairs(&[("n1", "north.gov")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_and_realm_options() {
    let redis = RedisServer::start();
    let db = connect(&redis.spec()).await;
    ok(
        db.add_origin("https://app.example.org:443", "example.org")
            .await,
        "add",
    );
    ok(
        db.add_origin("http://b.north.gov:80", "north.gov").await,
        "add",
    );
    ok(
        db.add_origin("http://a.north.gov:80", "north.gov").await,
        "add",
    );
    assert_eq!(
        ok(db.list_origins(None).await, "list"),
        pairs(&[
            ("https://app.example.org:443", "example.org"),
            ("http://a.north.gov:80", "north.gov"),
            ("http://b.north.gov:80", "north.gov"),
        ])
    );
    assert_eq!(
        ok(db.list_origins(Some("example.org")).await, "list realm"),
        pairs(&[("https://app.example.org:443", "example.org")])
    );
    // Re-pointing an origin replaces its realm.
    ok(
        db.add_origin("https://app.example.org:443", "north.gov")
            .await,
        "replace",
    );
    assert!(ok(db.list_origins(Some("example.org")).await, "list").is_empty());
    ok(
        db.delete_origin("https://app.example.org:443").await,
        "delete",
    );
    ok(
        db.delete_origin("https://app.example.org:443").await,
        "delete again",
    );
    assert_eq!(ok(db.list_origins(None).await, "list").len(), 2);

    let opt = |realm: &str, opt: &str, value: &str| RealmOption {
        realm: realm.into(),
        opt: opt.into(),
        value: value.into(),
    };
    ok(
        db.set_realm_option("example.org", "max-bps", "64000").await,
        "set",
    );
    ok(
        db.set_realm_option("example.org", "user-quota", "10").await,
        "set",
    );
    ok(
        db.set_realm_option("example.org", "total-quota", "100")
            .await,
        "set",
    );
    ok(
        db.set_realm_option("north.gov", "max-bps", "1000").await,
        "set",
    );
    let raw = redis.cli(&["GET", "turn/realm/example.org/max-bps"]);
    assert_eq!(raw.stdout.trim(), "64000");
    assert_eq!(
        ok(db.list_realm_options(None).await, "list"),
        vec![
            opt("example.org", "max-bps", "64000"),
            opt("example.org", "total-quota", "100"),
            opt("example.org", "user-quota", "10"),
            opt("north.gov", "max-bps", "1000"),
        ]
    );
    ok(
        db.set_realm_option("example.org", "max-bps", "128000")
            .await,
        "replace",
    );
    ok(
        db.set_realm_option("example.org", "total-quota", "0").await,
        "0 removes",
    );
    ok(
        db.set_realm_option("example.org", "total-quota", "0").await,
        "0 again",
    );
    assert_eq!(
        ok(
            db.list_realm_options(Some("example.org")).await,
            "list realm"
        ),
        vec![
            opt("example.org", "max-bps", "128000"),
            opt("example.org", "user-quota", "10")
        ]
    );
    let raw = redis.cli(&["EXISTS", "turn/realm/example.org/total-quota"]);
    assert_eq!(raw.stdout.trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_ranges() {
    let redis = RedisServer::start();
    let db = connect(&redis.spec()).await;
    let pr = |realm: &str, range: &str| PeerRange {
        realm: realm.into(),
        range: range.into(),
    };
    ok(
        db.add_peer_range(PeerList::Allowed, "r1", "10.0.0.1").await,
        "add",
    );
    ok(
        db.add_peer_range(PeerList::Allowed, "r1", "10.0.0.1").await,
        "add twice",
    );
    ok(
        db.add_peer_range(PeerList::Allowed, "r0", "192.168.0.1-192.168.0.9")
            .await,
        "add",
    );
    ok(
        db.add_peer_range(PeerList::Denied, "r1", "172.16.0.0-172.31.255.255")
            .await,
        "add",
    );
    assert_eq!(
        ok(db.list_peer_ranges(PeerList::Allowed).await, "list"),
        vec![pr("r0", "192.168.0.1-192.168.0.9"), pr("r1", "10.0.0.1")]
    );
    assert_eq!(
        ok(db.list_peer_ranges(PeerList::Denied).await, "list"),
        vec![pr("r1", "172.16.0.0-172.31.255.255")]
    );
    let t = redis.cli(&["SMEMBERS", "turn/realm/r1/denied-peer-ip"]);
    assert_eq!(t.stdout.trim(), "172.16.0.0-172.31.255.255");
    ok(
        db.delete_peer_range(PeerList::Allowed, "r1", "10.0.0.1")
            .await,
        "delete",
    );
    ok(
        db.delete_peer_range(PeerList::Allowed, "r1", "10.0.0.1")
            .await,
        "delete again",
    );
    assert_eq!(
        ok(db.list_peer_ranges(PeerList::Allowed).await, "list"),
        vec![pr("r0", "192.168.0.1-192.168.0.9")]
    );
    assert_eq!(
        ok(db.list_peer_ranges(PeerList::Denied).await, "list").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_users() {
    let redis = RedisServer::start();
    let db = connect(&redis.spec()).await;
    let admin = |name: &str, realm: &str, pw: &str| AdminUser {
        name: name.into(),
        realm: realm.into(),
        password: pw.into(),
    };
    assert_eq!(ok(db.get_admin_user("root").await, "get"), None);
    ok(
        db.set_admin_user(&admin("root", "", "$5$aa$bb")).await,
        "set",
    );
    ok(
        db.set_admin_user(&admin("zed", "example.org", "plain"))
            .await,
        "set",
    );
    ok(
        db.set_admin_user(&admin("amy", "example.org", "pw")).await,
        "set",
    );
    assert_eq!(
        ok(db.get_admin_user("root").await, "get"),
        Some(admin("root", "", "$5$aa$bb"))
    );
    // A superuser hash has no realm field, as turnadmin writes it.
    let raw = redis.cli(&["HEXISTS", "turn/admin_user/root", "realm"]);
    assert_eq!(raw.stdout.trim(), "0");
    assert_eq!(
        ok(db.list_admin_users().await, "list"),
        vec![
            admin("amy", "example.org", "pw"),
            admin("root", "", "$5$aa$bb"),
            admin("zed", "example.org", "plain")
        ]
    );
    // Replacing drops the old realm.
    ok(db.set_admin_user(&admin("zed", "", "new")).await, "replace");
    assert_eq!(
        ok(db.get_admin_user("zed").await, "get"),
        Some(admin("zed", "", "new"))
    );
    ok(db.delete_admin_user("zed").await, "delete");
    ok(db.delete_admin_user("zed").await, "delete again");
    assert_eq!(ok(db.get_admin_user("zed").await, "get"), None);
    assert_eq!(ok(db.list_admin_users().await, "list").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_database_number() {
    let redis = RedisServer::start_with_password("s3cret");
    let db = connect(&redis.spec()).await;
    ok(db.set_user_key("r", "u", "aa").await, "set with password");
    assert_eq!(
        ok(db.get_user_key("r", "u").await, "get"),
        Some("aa".into())
    );

    // Another database number is another keyspace.
    let db5 = connect(&redis.spec_db(5)).await;
    assert_eq!(ok(db5.get_user_key("r", "u").await, "get db5"), None);
    let raw = redis.cli(&["-n", "5", "DBSIZE"]);
    assert_eq!(raw.stdout.trim(), "0");

    // An ACL user (Redis 6+): `user=` and `password=` together.
    let acl = redis.cli(&[
        "ACL", "SETUSER", "turn", "on", ">turnpw", "~turn/*", "+@all",
    ]);
    assert_eq!(acl.stdout.trim(), "OK", "{}", acl.describe());
    let as_user = connect(&format!(
        "ip=127.0.0.1 port={} dbname=0 user=turn password=turnpw",
        redis.port()
    ))
    .await;
    assert_eq!(
        ok(as_user.get_user_key("r", "u").await, "get as ACL user"),
        Some("aa".into())
    );
    let wrong_user = connect(&format!(
        "ip=127.0.0.1 port={} dbname=0 user=turn password=s3cret",
        redis.port()
    ))
    .await;
    assert!(matches!(wrong_user.ping().await, Err(DbError::Backend(_))));

    for spec in [
        format!("ip=127.0.0.1 port={} dbname=0 password=wrong", redis.port()),
        format!("ip=127.0.0.1 port={} dbname=0", redis.port()),
    ] {
        let bad = connect(&spec).await;
        let t = Instant::now();
        match bad.get_user_key("r", "u").await {
            Err(DbError::Backend(_)) => {}
            other => panic!("{spec}: expected Backend error, got {other:?}"),
        }
        assert!(
            t.elapsed() < FAIL_FAST,
            "auth failure took {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn bad_spec_is_rejected() {
    for spec in [
        "port=x",
        "ip=1.2.3.4 nonsense",
        "tls=true verify=false",
        "dbname=-3",
    ] {
        match UserDb::connect(&DbSpec::Redis(spec.to_string())).await {
            Err(DbError::BadSpec(_)) => {}
            Err(e) => panic!("{spec}: wrong error {e}"),
            Ok(_) => panic!("{spec}: accepted"),
        }
    }
}

/// Calls `f` until it succeeds or [`WAIT`] passes.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: still failing: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_fast_and_recovers() {
    let mut redis = RedisServer::start();
    let db = connect(&format!("{} connect_timeout=1", redis.spec())).await;
    ok(db.set_user_key("r", "u", "aa").await, "set");
    redis.stop();
    for _ in 0..3 {
        let t = Instant::now();
        match db.get_user_key("r", "u").await {
            Err(DbError::Backend(_)) => {}
            other => panic!("expected Backend error while down, got {other:?}"),
        }
        assert!(
            t.elapsed() < FAIL_FAST,
            "call while down took {:?}",
            t.elapsed()
        );
    }
    redis.start_again();
    // The same handle works again (the restarted Redis is empty).
    eventually("set after restart", || db.set_user_key("r", "u", "bb")).await;
    assert_eq!(
        ok(db.get_user_key("r", "u").await, "get"),
        Some("bb".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_at_connect_then_up() {
    let mut redis = RedisServer::start();
    let spec = format!("{} connect_timeout=1", redis.spec());
    redis.stop();
    let t = Instant::now();
    let db = connect(&spec).await;
    assert!(
        t.elapsed() < FAIL_FAST,
        "connect while down took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert!(matches!(db.ping().await, Err(DbError::Backend(_))));
    assert!(
        t.elapsed() < FAIL_FAST,
        "ping while down took {:?}",
        t.elapsed()
    );
    redis.start_again();
    eventually("ping after start", || db.ping()).await;
    ok(db.add_secret("r", "x").await, "add");
    assert_eq!(ok(db.get_secrets("r").await, "get"), vec!["x"]);
}

/// A reconnect that fails for a reason other than I/O (here: the password was
/// changed under us) must not stick: once the cause is gone, calls work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_a_failed_reconnect() {
    let redis = RedisServer::start_with_password("pw1");
    let db = connect(&redis.spec()).await;
    ok(db.set_user_key("r", "u", "aa").await, "set");
    let cli = |pw: &str, args: &[&str]| {
        let port = redis.port().to_string();
        let mut all = vec![
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-a",
            pw,
            "--no-auth-warning",
        ];
        all.extend(args);
        let out = common::run_cmd(
            &common::require_tool("redis-cli"),
            &all,
            Duration::from_secs(5),
        );
        assert!(out.success(), "redis-cli {args:?}: {}", out.describe());
        out.stdout
    };
    assert_eq!(
        cli("pw1", &["CONFIG", "SET", "requirepass", "pw2"]).trim(),
        "OK"
    );
    cli("pw2", &["CLIENT", "KILL", "TYPE", "normal"]);
    for _ in 0..3 {
        let t = Instant::now();
        assert!(matches!(
            db.get_user_key("r", "u").await,
            Err(DbError::Backend(_))
        ));
        assert!(t.elapsed() < FAIL_FAST, "call took {:?}", t.elapsed());
    }
    assert_eq!(
        cli("pw2", &["CONFIG", "SET", "requirepass", "pw1"]).trim(),
        "OK"
    );
    let key = eventually("get after the password is back", || {
        db.get_user_key("r", "u")
    })
    .await;
    assert_eq!(key, Some("aa".into()));
}

/// A Redis that accepts connections and never answers must not hang a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // Accepts and holds every connection, reading nothing, until told to stop
    // (or 60 s at most).
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let spec = format!("ip=127.0.0.1 port={port} connect_timeout=1");
    let t = Instant::now();
    let db = connect(&spec).await;
    assert!(t.elapsed() < FAIL_FAST, "connect took {:?}", t.elapsed());
    for _ in 0..2 {
        let t = Instant::now();
        assert!(matches!(
            db.get_user_key("r", "u").await,
            Err(DbError::Backend(_))
        ));
        assert!(t.elapsed() < FAIL_FAST, "call took {:?}", t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    holder.join().expect("holder thread");
}

// ------------------------------------------------------------------ TLS

/// A CA and two leaves it signed (server for 127.0.0.1, client), as PEM files in `dir`.
fn tls_files(dir: &std::path::Path) -> (RedisTls, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write pem");
        p
    };
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct subjects: OpenSSL takes a leaf whose subject equals its issuer
    // for a self-signed certificate.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "turnserver-rs test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let leaf = |names: Vec<String>, ip: bool| {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        if ip {
            params
                .subject_alt_names
                .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        }
        let cert = params.signed_by(&key, &ca, &ca_key).expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()], true);
    let (client_cert, client_key) = leaf(vec!["turnserver-client".into()], false);
    let tls = RedisTls {
        cert: write("server.pem", server_cert),
        key: write("server.key", server_key),
        ca: write("ca.pem", ca.pem()),
        auth_clients: true,
    };
    (
        tls,
        write("client.pem", client_cert),
        write("client.key", client_key),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_ca_and_client_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tls, client_cert, client_key) = tls_files(dir.path());
    let capath = dir.path().join("cas");
    std::fs::create_dir(&capath).expect("capath");
    std::fs::copy(&tls.ca, capath.join("ca.crt")).expect("copy ca");
    let ca = tls.ca.display().to_string();
    let redis = RedisServer::start_tls(tls);
    let base = format!("{} connect_timeout=2 tls=true", redis.spec());
    let mtls = format!(
        "cert={} clientkey={}",
        client_cert.display(),
        client_key.display()
    );
    for spec in [
        format!("{base} ca={ca} {mtls}"),
        format!("{base} capath={} {mtls}", capath.display()),
    ] {
        let db = connect(&spec).await;
        if let Err(e) = db.set_user_key("tls.org", "t", "aa").await {
            panic!("{spec}: {e}\n--- redis log:\n{}", redis.log());
        }
        assert_eq!(
            ok(db.get_user_key("tls.org", "t").await, &spec),
            Some("aa".into())
        );
    }
    // Without a client certificate the server refuses; without our CA we refuse.
    for spec in [format!("{base} ca={ca}"), format!("{base} {mtls}")] {
        let db = connect(&spec).await;
        let t = Instant::now();
        assert!(
            matches!(db.ping().await, Err(DbError::Backend(_))),
            "{spec} must fail"
        );
        assert!(
            t.elapsed() < FAIL_FAST,
            "{spec}: failure took {:?}",
            t.elapsed()
        );
    }
}

// ------------------------------------------------------------------ coturn compatibility

fn turnadmin(redis: &RedisServer, args: &[&str]) -> String {
    let bin = common::require_tool("turnadmin");
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = redis.spec();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-N", spec.as_str()]);
    let out = common::run_cmd_env(&bin, &all, &[], Some(dir.path()), Duration::from_secs(10));
    assert!(out.success(), "turnadmin {args:?}: {}", out.describe());
    out.stdout
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_what_coturn_turnadmin_writes() {
    let redis = RedisServer::start();
    turnadmin(
        &redis,
        &["-a", "-u", "alice", "-r", "example.org", "-p", "secret"],
    );
    turnadmin(&redis, &["-s", "mysecret", "-r", "example.org"]);
    turnadmin(
        &redis,
        &["-O", "-o", "https://app.example.org", "-r", "example.org"],
    );
    turnadmin(
        &redis,
        &[
            "-g",
            "-r",
            "example.org",
            "--max-bps",
            "64000",
            "--user-quota",
            "10",
        ],
    );
    turnadmin(
        &redis,
        &["-A", "-u", "admin", "-p", "adminpw", "-r", "example.org"],
    );
    turnadmin(&redis, &["-A", "-u", "root", "-p", "rootpw"]);

    let db = connect(&redis.spec()).await;
    let key = md5_hex("alice:example.org:secret");
    assert_eq!(
        ok(db.get_user_key("example.org", "alice").await, "get"),
        Some(key)
    );
    assert_eq!(
        ok(db.list_users(None).await, "list"),
        pairs(&[("alice", "example.org")])
    );
    assert_eq!(
        ok(db.get_secrets("example.org").await, "secrets"),
        vec!["mysecret"]
    );
    assert_eq!(
        ok(db.list_origins(None).await, "origins"),
        pairs(&[("https://app.example.org:443", "example.org")])
    );
    let opts: Vec<(String, String)> = ok(db.list_realm_options(None).await, "options")
        .into_iter()
        .map(|o| (format!("{}[{}]", o.opt, o.realm), o.value))
        .collect();
    assert_eq!(
        opts,
        pairs(&[
            ("max-bps[example.org]", "64000"),
            ("user-quota[example.org]", "10")
        ])
    );
    let admin = ok(db.get_admin_user("admin").await, "admin").expect("admin present");
    assert_eq!(admin.realm, "example.org");
    assert!(admin.password.starts_with("$5$"), "{}", admin.password);
    let root = ok(db.get_admin_user("root").await, "root").expect("root present");
    assert_eq!(root.realm, "");
    let names: Vec<String> = ok(db.list_admin_users().await, "admins")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, vec!["admin", "root"]);

    // turnadmin -d removes what it wrote, seen here.
    turnadmin(&redis, &["-d", "-u", "alice", "-r", "example.org"]);
    assert_eq!(
        ok(db.get_user_key("example.org", "alice").await, "get"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_turnadmin_reads_what_we_write() {
    let redis = RedisServer::start();
    let db = connect(&redis.spec()).await;
    ok(
        db.set_user_key("example.org", "alice", &md5_hex("alice:example.org:secret"))
            .await,
        "set",
    );
    ok(
        db.set_user_key(
            "north.gov",
            "ninefingers",
            "bc807ee29df3c9ffa736523fb2c4e8ee",
        )
        .await,
        "set",
    );
    ok(db.add_secret("example.org", "oursecret").await, "secret");
    ok(
        db.add_origin("https://app.example.org:443", "example.org")
            .await,
        "origin",
    );
    ok(
        db.set_realm_option("example.org", "max-bps", "5000").await,
        "option",
    );
    ok(
        db.set_admin_user(&AdminUser {
            name: "boss".into(),
            realm: "example.org".into(),
            password: "$5$aa$bb".into(),
        })
        .await,
        "admin",
    );

    let users: BTreeSet<String> = turnadmin(&redis, &["-l"])
        .lines()
        .map(str::to_string)
        .collect();
    assert!(users.contains("alice[example.org]"), "{users:?}");
    assert!(users.contains("ninefingers[north.gov]"), "{users:?}");
    let filtered = turnadmin(&redis, &["-l", "-r", "north.gov"]);
    assert!(
        filtered.contains("ninefingers[north.gov]") && !filtered.contains("alice"),
        "{filtered}"
    );
    let secrets = turnadmin(&redis, &["-S", "-r", "example.org"]);
    assert!(secrets.contains("oursecret"), "{secrets}");
    let origins = turnadmin(&redis, &["-I"]);
    assert!(
        origins.contains("https://app.example.org:443 ==>> example.org"),
        "{origins}"
    );
    let options = turnadmin(&redis, &["-G"]);
    assert!(
        options.contains("max-bps") && options.contains("5000"),
        "{options}"
    );
    let admins = turnadmin(&redis, &["-L"]);
    assert!(admins.contains("boss[example.org]"), "{admins}");
}

// ------------------------------------------------------------------ stats database

/// A PSUBSCRIBE connection read on its own thread; messages arrive as (channel, payload).
struct Subscriber {
    rx: std::sync::mpsc::Receiver<(String, String)>,
    _thread: std::thread::JoinHandle<()>,
}

impl Subscriber {
    fn start(redis: &RedisServer, pattern: &str) -> Subscriber {
        let client = redis::Client::open(redis.url()).expect("client");
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("subscriber connection");
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let pattern = pattern.to_string();
        let thread = std::thread::spawn(move || {
            let _ = con.set_read_timeout(Some(Duration::from_millis(200)));
            let mut ps = con.as_pubsub();
            if ps.psubscribe(&pattern).is_err() {
                return;
            }
            let _ = ready_tx.send(());
            // Ends when the test drops the receiver or the connection fails.
            loop {
                match ps.get_message() {
                    Ok(msg) => {
                        let payload: String = msg.get_payload().unwrap_or_default();
                        if tx
                            .send((msg.get_channel_name().to_string(), payload))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) if e.is_timeout() => {
                        // Nobody listening any more?
                        if tx.send(("".into(), "".into())).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("psubscribe confirmed");
        Subscriber {
            rx,
            _thread: thread,
        }
    }

    /// The next real message, within [`WAIT`].
    fn next(&self) -> (String, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((c, _)) if c.is_empty() => continue,
                Ok(m) => return m,
                Err(e) => panic!("no pub/sub message within {WAIT:?}: {e}"),
            }
        }
    }
}

fn sync_con(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connection")
}

fn get(con: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stats_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn status(lifetime: u64) -> AllocationStatus {
    AllocationStatus {
        lifetime,
        transport: "UDP".into(),
        local: "127.0.0.1:3478".parse().expect("addr"),
        remote: "127.0.0.1:50123".parse().expect("addr"),
        ssl: "NONE".into(),
        cipher: "NONE".into(),
    }
}

fn alloc(realm: &str, user: &str, id: u64) -> AllocationRef {
    AllocationRef {
        realm: realm.into(),
        user: user.into(),
        id: AllocationRef::format_id(id),
    }
}

#[test]
fn stats_publish_status_and_traffic() {
    let redis = RedisServer::start_with_password("statpw");
    let sub = Subscriber::start(&redis, "turn/realm/*/user/*/allocation/*");
    let rt = stats_runtime();
    let sink: StatsSink = StatsDb::start(&redis.spec(), rt.handle()).expect("start");
    let mut con = sync_con(&redis);
    let a = alloc("example.org", "alice", 7);
    let base = "turn/realm/example.org/user/alice/allocation/000000000000000007";
    let status_key = format!("{base}/status");

    assert!(sink.allocation_new(a.clone(), status(600)));
    let line = "new lifetime=600, type=UDP, local=127.0.0.1:3478, remote=127.0.0.1:50123, ssl=NONE, cipher=NONE";
    assert_eq!(sub.next(), (status_key.clone(), line.to_string()));
    assert_eq!(get(&mut con, &status_key).as_deref(), Some(line));

    assert!(sink.allocation_refreshed(a.clone(), status(300)));
    let (c, m) = sub.next();
    assert_eq!(c, status_key);
    assert!(m.starts_with("refreshed lifetime=300, type=UDP"), "{m}");
    assert_eq!(get(&mut con, &status_key), Some(m));

    let counters = TrafficCounters {
        rcvp: 3,
        rcvb: 300,
        sentp: 4,
        sentb: 400,
    };
    assert!(sink.traffic(a.clone(), false, counters));
    assert_eq!(
        sub.next(),
        (
            format!("{base}/traffic"),
            "rcvp=3, rcvb=300, sentp=4, sentb=400".to_string()
        )
    );
    assert!(sink.traffic(a.clone(), true, counters));
    assert_eq!(sub.next().0, format!("{base}/traffic/peer"));

    assert!(sink.allocation_deleted(a, counters, TrafficCounters::default()));
    assert_eq!(
        sub.next(),
        (
            format!("{base}/total_traffic"),
            "rcvp=3, rcvb=300, sentp=4, sentb=400".to_string()
        )
    );
    assert_eq!(
        sub.next(),
        (
            format!("{base}/total_traffic/peer"),
            "rcvp=0, rcvb=0, sentp=0, sentb=0".to_string()
        )
    );
    assert_eq!(sub.next(), (status_key.clone(), "deleted".to_string()));
    assert_eq!(get(&mut con, &status_key), None);
    assert_eq!(sink.dropped(), 0);
}

#[test]
fn stats_without_realm_and_stale_cleanup() {
    let redis = RedisServer::start();
    let mut con = sync_con(&redis);
    let stale = [
        "turn/realm/example.org/user/old/allocation/000000000000000001/status",
        "turn/user/old/allocation/000000000000000002/status",
    ];
    for k in stale {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("new lifetime=600")
            .query(&mut con)
            .expect("SET");
    }
    let _: () = redis::cmd("SET")
        .arg("turn/realm/example.org/user/bob/key")
        .arg("aa")
        .query(&mut con)
        .expect("SET");
    let sub = Subscriber::start(&redis, "turn/user/*");
    let rt = stats_runtime();
    let sink = StatsDb::start(&redis.spec(), rt.handle()).expect("start");
    wait_until("stale status keys deleted", || {
        stale.iter().all(|k| get(&mut con, k).is_none())
    });
    // Other keys are left alone.
    assert_eq!(
        get(&mut con, "turn/realm/example.org/user/bob/key").as_deref(),
        Some("aa")
    );

    assert!(sink.allocation_new(alloc("", "carol", 9), status(600)));
    let key = "turn/user/carol/allocation/000000000000000009/status";
    let (c, m) = sub.next();
    assert_eq!(c, key);
    assert!(m.starts_with("new lifetime=600"), "{m}");
    // A status written after the start is not cleaned.
    assert!(get(&mut con, key).is_some());
}

#[test]
fn stats_survive_redis_restart() {
    let mut redis = RedisServer::start();
    let rt = stats_runtime();
    let sink =
        StatsDb::start(&format!("{} connect_timeout=1", redis.spec()), rt.handle()).expect("start");
    let mut con = sync_con(&redis);
    sink.allocation_new(alloc("r", "u", 1), status(600));
    let k1 = "turn/realm/r/user/u/allocation/000000000000000001/status";
    wait_until("first status", || get(&mut con, k1).is_some());
    redis.stop();
    // While Redis is down the callers are never blocked.
    let t = Instant::now();
    for i in 0..100 {
        sink.traffic(
            alloc("r", "u", 1),
            false,
            TrafficCounters {
                rcvp: i,
                ..Default::default()
            },
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "sink blocked: {:?}",
        t.elapsed()
    );
    redis.start_again();
    let mut con = sync_con(&redis);
    // Keep reporting until the writer is back (its backoff is at most 5 s).
    let deadline = Instant::now() + WAIT + WAIT;
    for n in 2.. {
        sink.allocation_new(alloc("r", "u", n), status(600));
        std::thread::sleep(Duration::from_millis(300));
        let key = format!(
            "turn/realm/r/user/u/allocation/{}/status",
            AllocationRef::format_id(n)
        );
        if get(&mut con, &key).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "stats writer did not come back");
    }
    // The restarted Redis is empty: nothing older than the restart reappears.
    assert_eq!(get(&mut con, k1), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_backend_suite() {
    let redis = RedisServer::start();
    let db = connect(&redis.spec()).await;
    common::userdb_suite::run_suite(&db).await;
}

/// The server with `--redis-statsdb`: stale status keys of an earlier run are
/// cleaned at start, and a real client's allocation is published as coturn
/// does (new, traffic totals, deleted) under the user's realm.
#[test]
fn server_reports_allocations_to_the_stats_db() {
    use common::{require_tool, run_cmd, Background, TestServer};
    let redis = RedisServer::start();
    let stale = "turn/realm/old.org/user/x/allocation/000000000000000001/status";
    assert!(redis.cli(&["SET", stale, "new lifetime=600"]).success());
    let sub = Subscriber::start(&redis, "turn/realm/*/user/*/allocation/*");
    let spec = format!("--redis-statsdb={}", redis.spec());
    let server = TestServer::start(&[
        "--lt-cred-mech",
        "--user=user:pass",
        "--realm=example.org",
        "--allow-loopback-peers",
        &spec,
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.cli(&["EXISTS", stale]).stdout.trim() != "0" {
        assert!(Instant::now() < deadline, "stale status key not cleaned at start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The Redis host (127.0.0.1) is denied as a peer, as coturn does: the
    // echo peer lives on 127.0.0.2.
    let port = server.ports.peer_port();
    let _peer = Background::spawn(&require_tool("turnutils_peer"), &["-L", "127.0.0.2", "-p", &port.to_string()]);
    assert!(common::wait_echo(format!("127.0.0.2:{port}").parse().expect("addr"), Duration::from_secs(10)));
    let args: Vec<String> = ["-c", "-n", "10", "-l", "100", "-u", "user", "-w", "pass", "-e", "127.0.0.2", "-r"]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string(), "-p".into(), server.port().to_string(), "127.0.0.1".into()])
        .collect();
    let out = run_cmd(&require_tool("turnutils_uclient"), &args, Duration::from_secs(60));
    assert!(out.success(), "{}", out.describe());

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|(_, m): &(String, String)| m == "deleted") {
        assert!(Instant::now() < deadline, "no 'deleted' report; got {seen:?}\n{}", server.log_tail(30));
        seen.push(sub.next());
    }
    let prefix = "turn/realm/example.org/user/user/allocation/";
    let status_key = seen.iter().find(|(_, m)| m == "deleted").map(|(c, _)| c.clone()).unwrap_or_default();
    assert!(status_key.starts_with(prefix) && status_key.ends_with("/status"), "{status_key}");
    let new = seen.iter().find(|(c, m)| *c == status_key && m.starts_with("new lifetime=")).unwrap_or_else(|| panic!("{seen:?}"));
    assert!(new.1.contains("type=UDP") && new.1.contains(&format!("local=127.0.0.1:{}", server.port())), "{new:?}");
    let base = status_key.trim_end_matches("/status");
    let total = seen.iter().find(|(c, _)| *c == format!("{base}/total_traffic")).unwrap_or_else(|| panic!("{seen:?}"));
    assert!(total.1.starts_with("rcvp=") && !total.1.starts_with("rcvp=0,"), "client packets counted: {total:?}");
    assert_eq!(redis.cli(&["EXISTS", &status_key]).stdout.trim(), "0", "status key removed on delete: {seen:?}");
}
