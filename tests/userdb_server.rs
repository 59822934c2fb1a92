//! The server with a user database, black-box: the real binary, coturn's own
//! `turnadmin` writing the database while the server runs, and clients
//! (`turnutils_uclient`, or a small client on the crate's codec) checking that
//! the server picks the changes up: users, REST secrets, realm quotas,
//! ORIGIN → realm, dynamic peer denials, and a PostgreSQL outage.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::dbservers::{MariaDb, PgServer};
use common::*;
use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const REALM: &str = "example.org";
/// Longer than the server's reload interval (5 s), with slack for a busy host.
const RELOAD_WAIT: Duration = Duration::from_secs(15);
const UCLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The SQLite file the test harness hands every server (`--userdb`).
fn db_file(server: &TestServer) -> PathBuf {
    server.dir.path().join("turndb.sqlite")
}

/// Run coturn's `turnadmin` against the SQLite file.
fn turnadmin(db: &Path, args: &[&str]) {
    let bin = require_tool("turnadmin");
    let mut all = s(args);
    all.extend(["-b".to_string(), db.display().to_string()]);
    let out = run_cmd(&bin, &all, Duration::from_secs(30));
    assert!(out.success(), "turnadmin {all:?}: {}", out.describe());
}

fn sqlite(db: &Path, sql: &str) {
    let bin = require_tool("sqlite3");
    let out = run_cmd(&bin, &[db.display().to_string(), sql.to_string()], Duration::from_secs(30));
    assert!(out.success(), "sqlite3 {sql}: {}", out.describe());
}

/// `turnutils_peer` on the server's peer port.
fn start_peer(server: &TestServer) -> Background {
    common::start_turnutils_peer(&["127.0.0.1"], server.ports.peer_port())
}

/// uclient relaying 20 messages to the peer with `auth` credentials flags;
/// the (sent, received) counters, or `None` when it could not allocate.
fn uclient(server: &TestServer, auth: &[&str]) -> (CmdOutput, Option<UclientStats>) {
    let bin = require_tool("turnutils_uclient");
    let mut args = s(auth);
    args.extend(s(&["-e", "127.0.0.1", "-r", &server.ports.peer_port().to_string(), "-n", "20", "-m", "1", "-l", "120"]));
    args.extend(["-p".to_string(), server.port().to_string(), "127.0.0.1".to_string()]);
    let out = run_cmd(&bin, &args, UCLIENT_TIMEOUT);
    assert!(!out.timed_out, "uclient {args:?} timed out\n{}", out.describe());
    let stats = parse_uclient(&out.all());
    (out, stats)
}

fn assert_relayed(out: &CmdOutput, stats: Option<UclientStats>, server: &TestServer) {
    let st = stats.unwrap_or_else(|| panic!("no uclient counters\n{}\n--- server ---\n{}", out.describe(), server.log_tail(40)));
    assert!(st.send_msgs >= 20 && st.recv_msgs == st.send_msgs && st.lost == 0, "{st:?}\n{}\n--- server ---\n{}", out.describe(), server.log_tail(40));
}

fn assert_refused(out: &CmdOutput, stats: Option<UclientStats>) {
    let relayed = stats.map(|s| s.recv_msgs).unwrap_or(0);
    assert_eq!(relayed, 0, "a refused client relayed data\n{}", out.describe());
}

// ------------------------------------------------------------ codec client

struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    user: String,
    pass: String,
    realm: Option<String>,
    nonce: Option<String>,
    origin: Option<String>,
    n: u32,
}

impl Client {
    fn new(server: SocketAddr, user: &str, pass: &str) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        Client { sock, server, user: user.into(), pass: pass.into(), realm: None, nonce: None, origin: None, n: 0 }
    }

    fn build(&mut self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        self.n += 1;
        let mut t = [0x5au8; 12];
        t[..4].copy_from_slice(&self.n.to_be_bytes());
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), TransactionId(t));
        attrs(&mut b);
        if let Some(o) = &self.origin {
            b.add_raw(AttrType::ORIGIN, o.as_bytes());
        }
        if let (Some(n), Some(r)) = (self.nonce.clone(), self.realm.clone()) {
            b.add_raw(AttrType::USERNAME, self.user.as_bytes());
            b.add_raw(AttrType::REALM, r.as_bytes());
            b.add_raw(AttrType::NONCE, n.as_bytes());
            b.add_integrity(&long_term_key(&self.user, &r, &self.pass));
        }
        let r = b.finish();
        buf[r].to_vec()
    }

    /// Send (retransmitting every 500 ms, as a UDP client does) until the
    /// answer with the same transaction id arrives; 10 s at most.
    fn transact(&mut self, msg: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 2048];
        while Instant::now() < deadline {
            self.sock.send_to(msg, self.server).unwrap();
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                let Ok((n, _)) = self.sock.recv_from(&mut buf) else { break };
                let a = &buf[..n];
                if a.len() >= 20 && a[8..20] == msg[8..20] {
                    if let Ok(m) = Message::parse(a) {
                        if let Some(Ok(v)) = m.str_attr(AttrType::NONCE) {
                            self.nonce = Some(v.to_string());
                        }
                        if let Some(Ok(v)) = m.str_attr(AttrType::REALM) {
                            self.realm = Some(v.to_string());
                        }
                    }
                    return a.to_vec();
                }
            }
        }
        panic!("no answer from {} within 10 s", self.server);
    }

    fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageBuilder)) -> u16 {
        let m = self.build(method, &attrs);
        let a = self.transact(&m);
        let mut c = code(&a);
        if c == 401 || c == 438 {
            let m = self.build(method, &attrs);
            c = code(&self.transact(&m));
        }
        c
    }

    fn allocate(&mut self) -> u16 {
        self.request(Method::ALLOCATE, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        })
    }

    fn permission(&mut self, peer: SocketAddr) -> u16 {
        self.request(Method::CREATE_PERMISSION, |b| {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
    }
}

fn code(a: &[u8]) -> u16 {
    let m = Message::parse(a).unwrap();
    match m.class() {
        Class::Success => 0,
        _ => m.error_code().unwrap().unwrap().0,
    }
}

/// Retry `f` until it returns `want` or `RELOAD_WAIT` passes; the last value.
fn eventually(want: u16, mut f: impl FnMut() -> u16) -> u16 {
    let deadline = Instant::now() + RELOAD_WAIT;
    loop {
        let got = f();
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn lt_server(extra: &[&str]) -> TestServer {
    let mut flags = vec!["--lt-cred-mech", "--realm=example.org", "--allow-loopback-peers"];
    flags.extend_from_slice(extra);
    TestServer::start(&flags)
}

// ------------------------------------------------------------------ tests

#[test]
fn user_added_by_turnadmin_while_running_can_allocate() {
    let server = lt_server(&[]);
    let _peer = start_peer(&server);
    let (out, stats) = uclient(&server, &["-u", "dbuser", "-w", "dbpass"]);
    assert_refused(&out, stats);
    turnadmin(&db_file(&server), &["-a", "-u", "dbuser", "-r", REALM, "-p", "dbpass"]);
    // Past the negative answer's short cache.
    std::thread::sleep(Duration::from_secs(3));
    let (out, stats) = uclient(&server, &["-u", "dbuser", "-w", "dbpass"]);
    assert_relayed(&out, stats, &server);
    // Over TCP the request waits on its connection and is answered there.
    let (out, stats) = uclient(&server, &["-t", "-u", "dbuser", "-w", "dbpass"]);
    assert_relayed(&out, stats, &server);
    // A wrong password for the database user is still refused.
    let (out, stats) = uclient(&server, &["-u", "dbuser", "-w", "wrong"]);
    assert_refused(&out, stats);
    assert!(server.log().contains("SQLite DB connection success"), "{}", server.log_tail(40));
}

#[test]
fn rest_secret_added_by_turnadmin_works_with_uclient_w() {
    let server = TestServer::start(&["--use-auth-secret", "--realm=example.org", "--allow-loopback-peers"]);
    let _peer = start_peer(&server);
    let (out, stats) = uclient(&server, &["-W", "db-secret", "-u", "alice"]);
    assert_refused(&out, stats);
    turnadmin(&db_file(&server), &["-s", "db-secret", "-r", REALM]);
    std::thread::sleep(Duration::from_secs(3));
    let (out, stats) = uclient(&server, &["-W", "db-secret", "-u", "alice"]);
    assert_relayed(&out, stats, &server);
}

#[test]
fn static_secret_and_database_secret_both_work() {
    let server = TestServer::start(&["--static-auth-secret=static", "--realm=example.org", "--allow-loopback-peers"]);
    let _peer = start_peer(&server);
    turnadmin(&db_file(&server), &["-s", "db-secret", "-r", REALM]);
    let (out, stats) = uclient(&server, &["-W", "static", "-u", "alice"]);
    assert_relayed(&out, stats, &server);
    let (out, stats) = uclient(&server, &["-W", "db-secret", "-u", "bob"]);
    assert_relayed(&out, stats, &server);
}

#[test]
fn realm_user_quota_from_turnadmin_gives_486() {
    let server = lt_server(&["--user=user:pass"]);
    turnadmin(&db_file(&server), &["-g", "-r", REALM, "--user-quota", "1"]);
    let mut first = Client::new(server.addr(), "user", "pass");
    assert_eq!(first.allocate(), 0);
    // The option is read on the next reload; until then the second may pass.
    let mut n = 0;
    let got = eventually(486, || {
        n += 1;
        let mut c = Client::new(server.addr(), "user", "pass");
        // A success before the reload stays allocated: it counts too.
        c.allocate()
    });
    assert_eq!(got, 486, "after {n} tries\n{}", server.log_tail(30));
    // Another user of the realm is not limited by alice's count.
    turnadmin(&db_file(&server), &["-a", "-u", "other", "-r", REALM, "-p", "pw"]);
    let mut other = Client::new(server.addr(), "other", "pw");
    assert_eq!(other.allocate(), 0);
}

#[test]
fn denied_peer_range_in_the_database_takes_effect_after_reload() {
    let server = lt_server(&["--user=user:pass"]);
    let mut c = Client::new(server.addr(), "user", "pass");
    assert_eq!(c.allocate(), 0);
    let peer: SocketAddr = "198.51.100.20:4000".parse().unwrap();
    assert_eq!(c.permission(peer), 0);
    sqlite(&db_file(&server), "insert into denied_peer_ip (realm, ip_range) values ('', '198.51.100.0-198.51.100.255')");
    assert_eq!(eventually(403, || c.permission(peer)), 403, "{}", server.log_tail(30));
    // A realm-specific allow beats it.
    sqlite(&db_file(&server), &format!("insert into allowed_peer_ip (realm, ip_range) values ('{REALM}', '198.51.100.20')"));
    assert_eq!(eventually(0, || c.permission(peer)), 0, "{}", server.log_tail(30));
    // --no-dynamic-ip-list: the tables are not read.
    let server = lt_server(&["--user=user:pass", "--no-dynamic-ip-list"]);
    sqlite(&db_file(&server), "insert into denied_peer_ip (realm, ip_range) values ('', '198.51.100.0-198.51.100.255')");
    std::thread::sleep(Duration::from_secs(7));
    let mut c = Client::new(server.addr(), "user", "pass");
    assert_eq!(c.allocate(), 0);
    assert_eq!(c.permission(peer), 0);
}

#[test]
fn origin_selects_the_realm_of_the_challenge_and_the_key() {
    let server = lt_server(&[]);
    let db = db_file(&server);
    turnadmin(&db, &["-O", "-o", "https://app.example.com", "-r", "tenant.example"]);
    turnadmin(&db, &["-a", "-u", "carol", "-r", "tenant.example", "-p", "tpw"]);
    let mut c = Client::new(server.addr(), "carol", "tpw");
    c.origin = Some("https://app.example.com".into());
    // Wait for the reload to pick the origin up: the challenge names its realm.
    let deadline = Instant::now() + RELOAD_WAIT;
    loop {
        let m = c.build(Method::ALLOCATE, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        c.nonce = None;
        c.realm = None;
        let a = c.transact(&m);
        assert_eq!(code(&a), 401);
        if c.realm.as_deref() == Some("tenant.example") || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(c.realm.as_deref(), Some("tenant.example"), "{}", server.log_tail(30));
    let m = c.build(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&c.transact(&m)), 0, "{}", server.log_tail(30));
    assert!(server.log().contains("realm=<tenant.example>, username=<carol>"), "{}", server.log_tail(30));
    // Without ORIGIN the default realm is offered, where carol is unknown.
    let mut d = Client::new(server.addr(), "carol", "tpw");
    assert_eq!(d.allocate(), 401);
    assert_eq!(d.realm.as_deref(), Some(REALM));
}

/// PostgreSQL stopped mid-test: the existing allocation keeps relaying and
/// refreshing (its key is cached), a new Allocate gets 500; after the
/// database is back, new Allocates succeed.
#[test]
fn postgres_outage_keeps_sessions_and_fails_new_allocations_with_500() {
    let mut pg = PgServer::start();
    let key: String = long_term_key("pguser", REALM, "pgpw").iter().map(|b| format!("{b:02x}")).collect();
    pg.psql(
        common::dbservers::DB_USER,
        common::dbservers::DB_NAME,
        &format!("insert into turnusers_lt (realm, name, hmackey) values ('{REALM}', 'pguser', '{key}')"),
    );
    let conninfo = pg.conninfo();
    let psql_flag = format!("--psql-userdb={conninfo}");
    // The database host (127.0.0.1) is denied as a peer unless allowed.
    let server = lt_server(&[&psql_flag, "--allowed-peer-ip=127.0.0.1"]);
    let echo = echo_peer();
    let mut c = Client::new(server.addr(), "pguser", "pgpw");
    assert_eq!(c.allocate(), 0, "{}", server.log_tail(30));
    assert_eq!(c.permission(echo), 0);
    let relay_echo = |c: &mut Client, tag: &[u8]| -> bool {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId([9; 12]));
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, echo);
        b.add_raw(AttrType::DATA, tag);
        let r = b.finish();
        let ind = buf[r].to_vec();
        let mut rb = vec![0u8; 2048];
        for _ in 0..10 {
            c.sock.send_to(&ind, c.server).unwrap();
            if let Ok((n, _)) = c.sock.recv_from(&mut rb) {
                if let Ok(m) = Message::parse(&rb[..n]) {
                    if m.get(AttrType::DATA) == Some(tag) {
                        return true;
                    }
                }
            }
        }
        false
    };
    assert!(relay_echo(&mut c, b"before"), "relay before the outage");
    pg.stop();
    // Past the short life of the answers the relay threads keep (2 s).
    std::thread::sleep(Duration::from_secs(3));
    // Relaying, refreshes and permissions go on without the database.
    assert!(relay_echo(&mut c, b"during"), "relay during the outage\n{}", server.log_tail(30));
    assert_eq!(c.request(Method::REFRESH, |b| {
        b.add_u32(AttrType::LIFETIME, 600);
    }), 0);
    assert_eq!(c.permission(echo), 0);
    // A new client needs the database: 500 (a temporary error), quickly.
    let mut n = Client::new(server.addr(), "pguser", "pgpw");
    let t0 = Instant::now();
    assert_eq!(n.allocate(), 500, "{}", server.log_tail(30));
    assert!(t0.elapsed() < Duration::from_secs(10), "500 took {:?}", t0.elapsed());
    assert!(server.log().contains("Cannot open PostgreSQL DB connection"), "{}", server.log_tail(30));
    pg.start_again();
    let got = eventually(0, || {
        let mut n = Client::new(server.addr(), "pguser", "pgpw");
        n.allocate()
    });
    assert_eq!(got, 0, "{}", server.log_tail(30));
    assert!(relay_echo(&mut c, b"after"), "relay after the outage");
}

/// `--secret-key-file`: the MySQL password given encrypted by coturn's
/// `turnadmin -E` with a key made by `turnadmin -x`.
#[test]
fn mysql_password_encrypted_with_turnadmin_e() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("aes.key");
    let admin = require_tool("turnadmin");
    let out = run_cmd(&admin, &["-x".to_string(), keyfile.display().to_string()], Duration::from_secs(30));
    assert!(out.success() && keyfile.is_file(), "turnadmin -x: {}", out.describe());
    let out = run_cmd(
        &admin,
        &["-E".to_string(), "-f".to_string(), keyfile.display().to_string(), "-p".to_string(), MariaDb::PASSWORD.to_string()],
        Duration::from_secs(30),
    );
    assert!(out.success(), "turnadmin -E: {}", out.describe());
    let encrypted = out.stdout.trim().to_string();
    assert!(!encrypted.is_empty() && encrypted != MariaDb::PASSWORD);
    let key: String = long_term_key("myuser", REALM, "mypw").iter().map(|b| format!("{b:02x}")).collect();
    db.sql(
        Some(common::dbservers::DB_NAME),
        &format!("insert into turnusers_lt (realm, name, hmackey) values ('{REALM}', 'myuser', '{key}')"),
    );
    let conninfo = db.conninfo().replace(&format!("password={}", MariaDb::PASSWORD), &format!("password={encrypted}"));
    assert!(conninfo.contains(&encrypted));
    let server = lt_server(&[&format!("--mysql-userdb={conninfo}"), &format!("--secret-key-file={}", keyfile.display())]);
    let mut c = Client::new(server.addr(), "myuser", "mypw");
    assert_eq!(c.allocate(), 0, "{}", server.log_tail(30));
    assert!(server.log().contains("MySQL DB connection success"), "{}", server.log_tail(30));
    assert!(!server.log().contains(MariaDb::PASSWORD), "the password must not be logged");
}

/// The other direction of compatibility: a SQLite database written by our
/// `turnadmin` serves coturn's own `turnserver` (Debian package), which
/// authenticates the user and relays for it, and still refuses a wrong
/// password.
#[test]
fn coturn_turnserver_uses_a_database_written_by_our_turnadmin() {
    let coturn = Path::new("/usr/bin/turnserver");
    assert!(coturn.is_file(), "coturn's turnserver (Debian package coturn) is not installed");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("turndb");
    let db_s = db.display().to_string();
    let ours = Path::new(env!("CARGO_BIN_EXE_turnadmin"));
    let out = run_cmd(ours, &s(&["-a", "-b", &db_s, "-u", "carol", "-r", REALM, "-p", "s3cret"]), Duration::from_secs(30));
    assert!(out.success(), "our turnadmin: {}", out.describe());

    let ports = PortBlock::claim();
    let port = ports.listen_port();
    let args = vec![
        "-n".to_string(),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1".into(),
        format!("--min-port={}", ports.min_relay_port()),
        format!("--max-port={}", ports.max_relay_port()),
        "--lt-cred-mech".into(),
        format!("--realm={REALM}"),
        format!("--userdb={db_s}"),
        "--allow-loopback-peers".into(),
        "--no-cli".into(),
        "--no-tls".into(),
        "--no-dtls".into(),
        "--log-file=stdout".into(),
        "--simple-log".into(),
        format!("--pidfile={}", dir.path().join("pid").display()),
    ];
    let mut srv = Background::spawn(coturn, &args);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !stun_probe(addr, Duration::from_millis(300)) {
        srv.assert_running();
        assert!(Instant::now() < deadline, "coturn did not answer\n{}", srv.log());
    }
    let peer_port = ports.peer_port();
    let _peer = Background::spawn(&require_tool("turnutils_peer"), &["-L", "127.0.0.1", "-p", &peer_port.to_string()]);
    assert!(wait_udp_echo(peer_port, Duration::from_secs(10)));
    let run = |pass: &str| {
        let args = s(&["-c", "-n", "20", "-l", "120", "-u", "carol", "-w", pass, "-e", "127.0.0.1", "-r", &peer_port.to_string(), "-p", &port.to_string(), "127.0.0.1"]);
        let out = run_cmd(&require_tool("turnutils_uclient"), &args, UCLIENT_TIMEOUT);
        assert!(!out.timed_out, "{}", out.describe());
        let stats = parse_uclient(&out.all());
        (out, stats)
    };
    let (out, stats) = run("s3cret");
    let st = stats.unwrap_or_else(|| panic!("no uclient counters\n{}\n--- coturn ---\n{}", out.describe(), srv.log()));
    assert!(st.send_msgs >= 20 && st.recv_msgs == st.send_msgs, "{st:?}\n{}", out.describe());
    let (out, stats) = run("wrong");
    assert_refused(&out, stats);
}
