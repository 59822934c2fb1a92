//! The SQL user databases: the shared suite on SQLite, PostgreSQL and
//! MariaDB, coturn's SQLite layout both ways with coturn's own `turnadmin`,
//! both PostgreSQL connection-string forms, and a database server that goes
//! down and comes back under a live handle.
//!
//! Run with `cargo test --release --test userdb_sql`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use turnserver::userdb::{AdminUser, DbError, DbSpec, PeerList, RealmOption, UserDb};

use common::dbservers::{MariaDb, PgServer};
use common::userdb_suite::run_suite;
use common::{require_tool, run_cmd_env};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Bounds every async step of a test.
async fn within<T>(what: &str, secs: u64, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {secs} s"),
    }
}

async fn connect(spec: &DbSpec) -> UserDb {
    match within("connect", 30, UserDb::connect(spec)).await {
        Ok(db) => db,
        Err(e) => panic!("connect {spec:?}: {e}"),
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs coturn's turnadmin with `args`, in `dir` (it writes a log file in
/// its working directory or /var/log), and returns its stdout.
fn turnadmin(dir: &Path, args: &[&str]) -> String {
    let bin = require_tool("turnadmin");
    let out = run_cmd_env(&bin, args, &[], Some(dir), Duration::from_secs(20));
    assert!(out.success(), "turnadmin {args:?}: {}", out.describe());
    out.stdout
}

fn sqlite_schema(file: &Path) -> String {
    let bin = require_tool("sqlite3");
    let out = run_cmd_env(
        &bin,
        &[file.display().to_string(), ".schema".to_string()],
        &[],
        None,
        Duration::from_secs(10),
    );
    assert!(out.success(), "sqlite3 .schema: {}", out.describe());
    out.stdout
}

// ------------------------------------------------------------------ SQLite

#[test]
fn sqlite_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("turndb");
    runtime().block_on(async {
        let db = connect(&DbSpec::Sqlite(file.clone())).await;
        within("suite", 60, run_suite(&db)).await;
    });
}

#[test]
fn sqlite_file_created_with_coturns_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = dir.path().join("ours.db");
    assert!(!ours.exists());
    runtime().block_on(async {
        let db = connect(&DbSpec::Sqlite(ours.clone())).await;
        within("ping", 10, db.ping()).await.expect("ping");
    });
    assert!(ours.exists(), "the SQLite file was created");
    let schema = sqlite_schema(&ours);
    for table in [
        "turnusers_lt",
        "turn_secret",
        "allowed_peer_ip",
        "denied_peer_ip",
        "turn_origin_to_realm",
        "turn_realm_option",
        "oauth_key",
        "admin_user",
    ] {
        assert!(
            schema.contains(&format!("CREATE TABLE {table} ")),
            "table {table} missing from:\n{schema}"
        );
    }
    // coturn's own turnadmin creates a fresh file the same way.
    let theirs = dir.path().join("theirs.db");
    turnadmin(
        dir.path(),
        &[
            "-a",
            "-b",
            &theirs.display().to_string(),
            "-u",
            "x",
            "-r",
            "y",
            "-p",
            "z",
        ],
    );
    assert_eq!(
        schema,
        sqlite_schema(&theirs),
        "our new SQLite file has exactly the tables turnadmin creates"
    );
    // Opening an existing file again changes nothing.
    runtime().block_on(async {
        let db = connect(&DbSpec::Sqlite(theirs.clone())).await;
        within("list", 10, db.list_users(None)).await.expect("list");
    });
    assert_eq!(
        schema,
        sqlite_schema(&theirs),
        "existing file left as it was"
    );
}

#[test]
fn sqlite_reads_what_coturn_turnadmin_wrote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("turndb");
    let f = file.display().to_string();
    let d = dir.path();
    turnadmin(
        d,
        &[
            "-a",
            "-b",
            &f,
            "-u",
            "alice",
            "-r",
            "example.org",
            "-p",
            "secret",
        ],
    );
    turnadmin(
        d,
        &["-a", "-b", &f, "-u", "bob", "-r", "other.org", "-p", "pw2"],
    );
    turnadmin(d, &["-s", "mysecret", "-b", &f, "-r", "example.org"]);
    turnadmin(
        d,
        &[
            "-O",
            "-b",
            &f,
            "-o",
            "https://app.example.org",
            "-r",
            "example.org",
        ],
    );
    turnadmin(
        d,
        &[
            "-g",
            "-b",
            &f,
            "-r",
            "example.org",
            "--max-bps",
            "64000",
            "--user-quota",
            "10",
        ],
    );
    turnadmin(d, &["-A", "-b", &f, "-u", "admin", "-p", "adminpw"]);
    let printed = turnadmin(
        d,
        &["-k", "-u", "alice", "-r", "example.org", "-p", "secret"],
    );
    let expected_key = md5_hex("alice:example.org:secret");
    assert!(
        printed.contains(&format!("0x{expected_key}")),
        "turnadmin -k agrees with MD5(user:realm:password): {printed}"
    );

    runtime().block_on(async {
        let db = connect(&DbSpec::Sqlite(file.clone())).await;
        assert_eq!(
            within("key", 10, db.get_user_key("example.org", "alice"))
                .await
                .expect("key"),
            Some(expected_key.clone()),
            "hmackey written by turnadmin -a"
        );
        assert_eq!(
            within("key", 10, db.get_user_key("other.org", "bob"))
                .await
                .expect("key"),
            Some(md5_hex("bob:other.org:pw2"))
        );
        assert_eq!(
            within("users", 10, db.list_users(None))
                .await
                .expect("users"),
            vec![
                ("alice".to_string(), "example.org".to_string()),
                ("bob".to_string(), "other.org".to_string())
            ]
        );
        assert_eq!(
            within("secrets", 10, db.get_secrets("example.org"))
                .await
                .expect("secrets"),
            vec!["mysecret".to_string()],
            "secret written by turnadmin -s"
        );
        assert_eq!(
            within("origins", 10, db.list_origins(None))
                .await
                .expect("origins"),
            vec![(
                "https://app.example.org:443".to_string(),
                "example.org".to_string()
            )],
            "origin written by turnadmin -O (normalised with the port)"
        );
        assert_eq!(
            within("options", 10, db.list_realm_options(Some("example.org")))
                .await
                .expect("options"),
            vec![
                RealmOption {
                    realm: "example.org".into(),
                    opt: "max-bps".into(),
                    value: "64000".into()
                },
                RealmOption {
                    realm: "example.org".into(),
                    opt: "user-quota".into(),
                    value: "10".into()
                },
            ],
            "realm options written by turnadmin -g"
        );
        let admin = within("admin", 10, db.get_admin_user("admin"))
            .await
            .expect("admin")
            .expect("admin written by turnadmin -A");
        assert_eq!(admin.name, "admin");
        assert_eq!(admin.realm, "", "admin without -r is a superuser");
        let parts: Vec<&str> = admin.password.split('$').collect();
        assert!(
            parts.len() == 4
                && parts[1] == "5"
                && parts[2].len() == 16
                && parts[3].len() == 64
                && parts[2..]
                    .iter()
                    .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit())),
            "admin password stored as $5$<16 hex>$<64 hex>: {}",
            admin.password
        );
    });
}

#[test]
fn sqlite_written_here_is_read_by_coturn_turnadmin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("turndb");
    let key = md5_hex("alice:example.org:secret");
    runtime().block_on(async {
        let db = connect(&DbSpec::Sqlite(file.clone())).await;
        within("writes", 20, async {
            db.set_user_key("example.org", "alice", &key).await?;
            db.set_user_key("north.gov", "ninefingers", "bc807ee29df3c9ffa736523fb2c4e8ee")
                .await?;
            db.add_secret("example.org", "mysecret").await?;
            db.add_origin("https://app.example.org:443", "example.org").await?;
            db.set_realm_option("example.org", "max-bps", "64000").await?;
            db.set_realm_option("example.org", "user-quota", "10").await?;
            db.add_peer_range(PeerList::Denied, "", "10.0.0.0-10.255.255.255").await?;
            db.set_admin_user(&AdminUser {
                name: "boss".into(),
                realm: String::new(),
                password: "$5$0011223344556677$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            })
            .await
        })
        .await
        .expect("writes");

        // The handle stays open while turnadmin reads (and writes) the file.
        let f = file.display().to_string();
        let d = dir.path();
        let users = turnadmin(d, &["-l", "-b", &f]);
        assert!(users.contains("alice[example.org]"), "turnadmin -l: {users}");
        assert!(users.contains("ninefingers[north.gov]"), "turnadmin -l: {users}");
        let users = turnadmin(d, &["-l", "-b", &f, "-r", "north.gov"]);
        assert!(
            users.contains("ninefingers[north.gov]") && !users.contains("alice"),
            "turnadmin -l -r: {users}"
        );
        let secrets = turnadmin(d, &["-S", "-b", &f]);
        assert!(secrets.contains("mysecret[example.org]"), "turnadmin -S: {secrets}");
        let origins = turnadmin(d, &["-I", "-b", &f]);
        assert!(
            origins.contains("https://app.example.org:443 ==>> example.org"),
            "turnadmin -I: {origins}"
        );
        let opts = turnadmin(d, &["-G", "-b", &f]);
        assert!(
            opts.contains("max-bps[example.org]=64000") && opts.contains("user-quota[example.org]=10"),
            "turnadmin -G: {opts}"
        );
        let admins = turnadmin(d, &["-L", "-b", &f]);
        assert!(admins.contains("boss"), "turnadmin -L: {admins}");

        // turnadmin writes while our pool is open; we see it at once.
        turnadmin(d, &["-d", "-b", &f, "-u", "alice", "-r", "example.org"]);
        // (turnadmin 4.6.1 ignores `--max-bps 0`; it only replaces values.)
        turnadmin(d, &["-g", "-b", &f, "-r", "example.org", "--max-bps", "5"]);
        assert_eq!(
            within("key", 10, db.get_user_key("example.org", "alice")).await.expect("key"),
            None,
            "user deleted by turnadmin -d"
        );
        assert_eq!(
            within("options", 10, db.list_realm_options(None)).await.expect("options"),
            vec![
                RealmOption {
                    realm: "example.org".into(),
                    opt: "max-bps".into(),
                    value: "5".into()
                },
                RealmOption {
                    realm: "example.org".into(),
                    opt: "user-quota".into(),
                    value: "10".into()
                }
            ],
            "turnadmin -g --max-bps 5 replaced the option"
        );
    });
}

#[test]
fn sqlite_waits_for_a_lock_held_by_another_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("turndb");
    let marker = dir.path().join("locked");
    runtime().block_on(async {
        let db = connect(&DbSpec::Sqlite(file.clone())).await;
        // Another process (sqlite3) holds an exclusive lock for 2 s.
        let script = dir.path().join("lock.sql");
        std::fs::write(
            &script,
            format!(
                "BEGIN EXCLUSIVE;\n.shell touch {}\n.shell sleep 2\nCOMMIT;\n",
                marker.display()
            ),
        )
        .expect("script");
        let mut holder = std::process::Command::new(require_tool("sqlite3"))
            .arg(&file)
            .stdin(std::fs::File::open(&script).expect("open script"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start sqlite3");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "sqlite3 never took the lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        let t = Instant::now();
        let r = within("write under lock", 20, db.set_user_key("r", "u", "00ff")).await;
        let waited = t.elapsed();
        common::terminate(&mut holder, Duration::from_secs(5));
        r.expect("the write waits for the lock instead of failing with 'database is locked'");
        assert!(
            waited >= Duration::from_millis(500),
            "the write went through while the file was locked ({waited:?})"
        );
        assert_eq!(
            within("read", 10, db.get_user_key("r", "u"))
                .await
                .expect("read"),
            Some("00ff".to_string())
        );
    });
}

// ------------------------------------------------------------------ PostgreSQL

#[test]
fn postgres_suite_and_both_connection_string_forms() {
    let pg = PgServer::start();
    runtime().block_on(async {
        let kw = connect(&DbSpec::Postgres(pg.conninfo())).await;
        within("suite", 120, run_suite(&kw)).await;

        let uri = connect(&DbSpec::Postgres(pg.uri())).await;
        let key = md5_hex("ninefingers:north.gov:youhavetoberealistic");
        within("write via keyword form", 10, kw.set_user_key("north.gov", "ninefingers", &key))
            .await
            .expect("write");
        assert_eq!(
            within("read via URI form", 10, uri.get_user_key("north.gov", "ninefingers"))
                .await
                .expect("read"),
            Some(key),
            "the URI form reaches the same database as the keyword form (key unpadded despite char(128))"
        );
        let sock = connect(&DbSpec::Postgres(format!(
            "host={} port={} dbname=coturn user=turn",
            pg.socket_dir().display(),
            pg.port()
        )))
        .await;
        assert_eq!(
            within("read via unix socket", 10, sock.list_users(Some("north.gov")))
                .await
                .expect("read"),
            vec![("ninefingers".to_string(), "north.gov".to_string())],
            "host=<directory> connects through the unix socket"
        );
    });
    // What we wrote is in coturn's table, readable with plain SQL.
    let rows = pg.psql(
        "turn",
        "coturn",
        "select name||'|'||realm||'|'||trim(hmackey) from turnusers_lt where name='ninefingers'",
    );
    assert_eq!(
        rows.trim(),
        "ninefingers|north.gov|bc807ee29df3c9ffa736523fb2c4e8ee"
    );
    // coturn's turnadmin (libpq) takes the same keyword string, quoting and
    // all, and lists what we wrote.
    let dir = tempfile::tempdir().expect("temp dir");
    let listed = turnadmin(dir.path(), &["-l", "-e", &pg.conninfo()]);
    assert!(
        listed.contains("ninefingers[north.gov]"),
        "coturn's turnadmin -l -e lists our PostgreSQL user: {listed}"
    );
}

#[test]
fn postgres_down_gives_backend_error_quickly_and_recovers() {
    let mut pg = PgServer::start();
    runtime().block_on(async {
        let db = connect(&DbSpec::Postgres(pg.conninfo())).await;
        within("write", 10, db.set_user_key("r", "u", "00ff"))
            .await
            .expect("write");

        pg.stop();
        let t = Instant::now();
        let r = within("query while down", 30, db.get_user_key("r", "u")).await;
        assert!(
            matches!(&r, Err(DbError::Backend(m)) if m.starts_with("PostgreSQL:")),
            "query with the server down is a Backend error naming the backend, got {r:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the error came after {:?} (connect_timeout=3)",
            t.elapsed()
        );
        // A handle made while the server is down is still a handle.
        let late = connect(&DbSpec::Postgres(pg.conninfo())).await;
        let r = within("ping while down", 30, late.ping()).await;
        assert!(
            matches!(r, Err(DbError::Backend(_))),
            "ping while down: {r:?}"
        );

        pg.start_again();
        assert_eq!(
            within("read after restart", 30, db.get_user_key("r", "u"))
                .await
                .expect("read"),
            Some("00ff".to_string()),
            "the same handle works again once the server is back"
        );
        within("late handle after restart", 30, late.ping())
            .await
            .expect("late ping");
    });
}

// ------------------------------------------------------------------ MariaDB

#[test]
fn mariadb_suite_down_and_back() {
    let mut my = MariaDb::start();
    runtime().block_on(async {
        let db = connect(&DbSpec::Mysql(my.conninfo())).await;
        within("suite", 120, run_suite(&db)).await;

        within("write", 10, db.set_user_key("r", "u", "00ff"))
            .await
            .expect("write");
        let sock = connect(&DbSpec::Mysql(format!(
            "host={} dbname=coturn user=turn password={}",
            my.socket().display(),
            MariaDb::PASSWORD
        )))
        .await;
        assert_eq!(
            within("read via unix socket", 10, sock.get_user_key("r", "u"))
                .await
                .expect("read"),
            Some("00ff".to_string()),
            "host=<socket path> connects through the unix socket"
        );
        my.stop();
        let t = Instant::now();
        let r = within("query while down", 30, db.get_user_key("r", "u")).await;
        assert!(
            matches!(&r, Err(DbError::Backend(m)) if m.starts_with("MySQL:")),
            "query with the server down is a Backend error naming the backend, got {r:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the error came after {:?} (connect_timeout=3)",
            t.elapsed()
        );
        my.start_again();
        assert_eq!(
            within("read after restart", 30, db.get_user_key("r", "u"))
                .await
                .expect("read"),
            Some("00ff".to_string()),
            "the same handle works again once the server is back"
        );
    });
    let rows = my.sql(
        Some("coturn"),
        "select hmackey from turnusers_lt where name='u'",
    );
    assert_eq!(rows.trim(), "00ff");
    let dir = tempfile::tempdir().expect("temp dir");
    let listed = turnadmin(dir.path(), &["-l", "-M", &my.conninfo()]);
    assert!(
        listed.contains("u[r]"),
        "coturn's turnadmin -l -M lists our MySQL user: {listed}"
    );
}

// ------------------------------------------------------------------ bad specs

#[test]
fn bad_connection_strings_are_bad_spec() {
    runtime().block_on(async {
        for spec in [
            DbSpec::Mysql("host=127.0.0.1 dbname=x bogus=1".into()),
            DbSpec::Mysql("host=127.0.0.1 noequals".into()),
            DbSpec::Postgres("host=127.0.0.1 nosuchoption=1".into()),
            DbSpec::Postgres("host=127.0.0.1 password='unterminated".into()),
        ] {
            match within("connect", 10, UserDb::connect(&spec)).await {
                Err(DbError::BadSpec(_)) => {}
                Err(e) => panic!("{spec:?}: expected BadSpec, got {e}"),
                Ok(_) => panic!("{spec:?}: accepted"),
            }
        }
    });
}

// ------------------------------------------------------------------ MySQL TLS

/// A CA and a server certificate it signed, written as PEM files.
fn make_ca_and_server_cert(dir: &Path, name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA cert");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");
    let write = |file: &str, text: String| {
        let p = dir.join(format!("{name}-{file}"));
        std::fs::write(&p, text).expect("write PEM");
        p.display().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
    )
}

#[test]
fn mariadb_tls_with_ca_key() {
    use std::os::unix::fs::PermissionsExt;
    let certs = tempfile::tempdir().expect("temp dir");
    // mariadbd runs as the mysql user and must read the files.
    std::fs::set_permissions(certs.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod cert dir");
    let (ca, cert, key) = make_ca_and_server_cert(certs.path(), "good");
    let (other_ca, _, _) = make_ca_and_server_cert(certs.path(), "other");
    let my = MariaDb::start_with(&[
        format!("--ssl-ca={ca}"),
        format!("--ssl-cert={cert}"),
        format!("--ssl-key={key}"),
    ]);
    my.sql(
        None,
        "CREATE USER 'tlsonly'@'127.0.0.1' IDENTIFIED BY 'tls-pw' REQUIRE SSL; \
         GRANT ALL ON coturn.* TO 'tlsonly'@'127.0.0.1';",
    );
    let base = format!(
        "host=127.0.0.1 port={} dbname=coturn user=tlsonly password=tls-pw connect_timeout=3",
        my.port()
    );
    runtime().block_on(async {
        let db = connect(&DbSpec::Mysql(format!("{base} ca={ca}"))).await;
        within(
            "write over TLS",
            20,
            db.set_user_key("tls.example", "t", "abcd"),
        )
        .await
        .expect("a REQUIRE SSL user works with ca= (TLS, server verified)");
        assert_eq!(
            within("read over TLS", 20, db.get_user_key("tls.example", "t"))
                .await
                .expect("read"),
            Some("abcd".to_string())
        );
        let wrong = connect(&DbSpec::Mysql(format!("{base} ssl-ca={other_ca}"))).await;
        let r = within("wrong CA", 30, wrong.ping()).await;
        assert!(
            matches!(r, Err(DbError::Backend(_))),
            "a server certificate from another CA is refused: {r:?}"
        );
    });
}
