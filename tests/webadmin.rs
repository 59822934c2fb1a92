//! The HTTPS web admin (`--web-admin`) and HTTP on the TURN ports
//! (`--acme-redirect`, `--respond-http-unsupported`,
//! `--web-admin-listen-on-workers`), through the real binary.
//!
//! Each test starts its own server with a private SQLite user database
//! (admin users and the TURN user written with our `turnadmin`), a
//! self-signed certificate (openssl CLI) and free ports from a PortBlock.
//! HTTPS requests go through `curl -k` (one request, explicit cookies, no
//! redirects followed), so every status and header is checked as sent.
//! The browser test drives headless Chromium over its DevTools protocol on a
//! pipe (`--remote-debugging-pipe`: NUL-separated JSON on fds 3 and 4), so no
//! debugging port is opened; it logs on, sees a live TURN session on /ps,
//! takes a screenshot, cancels the session, and the client's Refresh then
//! gets 437. oAuth keys are added, listed and deleted by a superuser and
//! checked in the SQLite file with `sqlite3`. Everything on loopback; every
//! wait is bounded.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::turn_udp::UdpTurn;
use common::{repo_root, require_tool, run_cmd, self_signed_cert, server_bin, stun_probe, terminate, PortBlock};

const ADMIN: &str = "boss";
const ADMIN_PASS: &str = "b0ss-pass";
const RADMIN: &str = "ralph";
const RADMIN_PASS: &str = "ralph-pass";
const RADMIN_REALM: &str = "other.org";

fn turnadmin(args: &[&str]) {
    let bin = server_bin().with_file_name("turnadmin");
    let out = run_cmd(&bin, args, Duration::from_secs(20));
    assert!(out.success(), "turnadmin {args:?} failed: {}", out.describe());
}

struct Server {
    ports: PortBlock,
    dir: tempfile::TempDir,
    child: Child,
    log_path: PathBuf,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let ports = PortBlock::claim();
        let dir = tempfile::Builder::new().prefix("turnserver-webadmin-").tempdir().unwrap();
        let db = dir.path().join("turndb.sqlite");
        let dbs = db.to_str().unwrap();
        turnadmin(&["-A", "-b", dbs, "-u", ADMIN, "-p", ADMIN_PASS]);
        turnadmin(&["-A", "-b", dbs, "-u", RADMIN, "-p", RADMIN_PASS, "-r", RADMIN_REALM]);
        turnadmin(&["-a", "-b", dbs, "-u", "user", "-p", "pass", "-r", "example.org"]);
        let (cert, key) = self_signed_cert(dir.path());
        let log_path = dir.path().join("server.log");
        let mut args: Vec<String> = vec![
            "-n".into(),
            "--listening-ip=127.0.0.1".into(),
            format!("--listening-port={}", ports.listen_port()),
            format!("--tls-listening-port={}", ports.spare_port(1)),
            "--relay-ip=127.0.0.1".into(),
            format!("--min-port={}", ports.min_relay_port()),
            format!("--max-port={}", ports.max_relay_port()),
            "--log-file=stdout".into(),
            "--simple-log".into(),
            "--no-dtls".into(),
            "--no-cli".into(),
            format!("--pidfile={}", dir.path().join("pid").display()),
            format!("--userdb={dbs}"),
            format!("--cert={}", cert.display()),
            format!("--pkey={}", key.display()),
            "--lt-cred-mech".into(),
            "--realm=example.org".into(),
            "--allow-loopback-peers".into(),
            "--web-admin".into(),
            "--web-admin-ip=127.0.0.1".into(),
            format!("--web-admin-port={}", ports.spare_port(0)),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = File::create(&log_path).unwrap();
        let child = Command::new(server_bin())
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut s = Server { ports, dir, child, log_path };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("server exited ({st}):\n{}", s.log());
            }
            if stun_probe(s.turn_addr(), Duration::from_millis(300)) && TcpStream::connect(s.web_addr()).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "server not ready:\n{}", s.log());
        }
        s
    }

    fn turn_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.listen_port()))
    }

    fn web_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.spare_port(0)))
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.web_addr())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn db(&self) -> String {
        self.dir.path().join("turndb.sqlite").display().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(3));
    }
}

/// One HTTPS answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The session cookie a logon set.
    fn cookie(&self) -> Option<String> {
        let c = self.header("set-cookie")?;
        Some(c.split(';').next()?.to_string())
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let i = self.body.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no csrf field in {}", self.body)) + 19;
        self.body[i..i + 64].to_string()
    }
}

/// `curl -k`: one request, no redirects followed. `form` makes it a POST.
fn https(url: &str, cookie: Option<&str>, form: Option<&[(&str, &str)]>, source_ip: Option<&str>) -> Answer {
    let curl = require_tool("curl");
    let mut args: Vec<String> = vec!["-k".into(), "-s".into(), "-i".into(), "--max-time".into(), "10".into()];
    if let Some(c) = cookie {
        args.push("-H".into());
        args.push(format!("Cookie: {c}"));
    }
    if let Some(ip) = source_ip {
        args.push("--interface".into());
        args.push(ip.into());
    }
    if let Some(fields) = form {
        args.push("-X".into());
        args.push("POST".into());
        // An empty form still is a POST with a (empty) body.
        args.push("--data-raw".into());
        args.push(String::new());
        for (k, v) in fields {
            args.push("--data-urlencode".into());
            args.push(format!("{k}={v}"));
        }
    }
    args.push(url.into());
    let out = run_cmd(&curl, &args, Duration::from_secs(15));
    if !out.success() {
        // Refused, closed or reset: status 0, the test decides.
        return Answer { status: 0, headers: Vec::new(), body: out.describe() };
    }
    let text = out.stdout.clone();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Answer { status, headers, body: body.to_string() }
}

fn logon(s: &Server, user: &str, pass: &str, ip: Option<&str>) -> Answer {
    https(&s.url("/logon"), None, Some(&[("uname", user), ("pwd", pass)]), ip)
}

/// Log on and return the session cookie.
fn session(s: &Server, user: &str, pass: &str) -> String {
    let a = logon(s, user, pass, None);
    assert_eq!(a.status, 303, "{a:?}\n{}", s.log());
    assert_eq!(a.header("location"), Some("/home"));
    a.cookie().unwrap()
}

/// The `msg` a POST redirected back with, decoded.
fn redirect_msg(a: &Answer) -> String {
    assert_eq!(a.status, 303, "{a:?}");
    let loc = a.header("location").unwrap_or("");
    let enc = loc.split_once("msg=").map(|(_, m)| m).unwrap_or("");
    let mut out = Vec::new();
    let b = enc.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&enc[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn logon_csrf_pages_and_throttle() {
    let s = Server::start(&[]);
    // Nothing but /logon without a session.
    let a = https(&s.url("/home"), None, None, None);
    assert_eq!((a.status, a.header("location")), (303, Some("/logon")));
    assert_eq!(https(&s.url("/us/add"), None, Some(&[("name", "x")]), None).status, 403);
    let a = https(&s.url("/logon"), None, None, None);
    assert_eq!(a.status, 200);
    assert!(a.body.contains("name=\"pwd\""));
    assert!(a.header("content-security-policy").unwrap().contains("default-src 'none'"));

    // Wrong password: back to the logon page, no cookie.
    let a = logon(&s, ADMIN, "wrong", None);
    assert_eq!(a.status, 303);
    assert!(a.cookie().is_none());
    assert!(redirect_msg(&a).contains("Wrong name or password"));

    // Right password: a locked-down session cookie.
    let a = logon(&s, ADMIN, ADMIN_PASS, None);
    assert_eq!(a.status, 303, "{a:?}");
    let set = a.header("set-cookie").unwrap();
    for part in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = a.cookie().unwrap();
    let home = https(&s.url("/home"), Some(&cookie), None, None);
    assert_eq!(home.status, 200);
    assert!(home.body.contains("boss (superuser)"), "{}", home.body);

    // CSRF: a POST without the token, or with a wrong one, changes nothing.
    let pc = https(&s.url("/pc"), Some(&cookie), None, None);
    assert!(pc.body.contains("mobility</td><td>off"), "{}", pc.body);
    let csrf = pc.csrf();
    assert_eq!(https(&s.url("/toggle"), Some(&cookie), Some(&[("opt", "mobility")]), None).status, 403);
    let wrong = "0".repeat(64);
    assert_eq!(https(&s.url("/toggle"), Some(&cookie), Some(&[("opt", "mobility"), ("csrf", &wrong)]), None).status, 403);
    assert!(https(&s.url("/pc"), Some(&cookie), None, None).body.contains("mobility</td><td>off"));
    let a = https(&s.url("/toggle"), Some(&cookie), Some(&[("opt", "mobility"), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "mobility is now on");
    assert!(https(&s.url("/pc"), Some(&cookie), None, None).body.contains("mobility</td><td>on"));
    let a = https(&s.url("/update"), Some(&cookie), Some(&[("opt", "user-quota"), ("value", "7"), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "user-quota set to 7");

    // Users, secrets, origins and realm options, written to the database.
    let a = https(&s.url("/us/add"), Some(&cookie), Some(&[("realm", "example.org"), ("name", "web<user>"), ("password", "pw1"), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "user web<user> added to realm example.org");
    let us = https(&s.url("/us"), Some(&cookie), None, None);
    assert!(us.body.contains("web&lt;user&gt;"), "escaped name listed: {}", us.body);
    assert!(!us.body.contains("web<user>"));
    let listed = run_cmd(&server_bin().with_file_name("turnadmin"), &["-l", "-b", &s.db()], Duration::from_secs(20));
    assert!(listed.stdout.contains("web<user>"), "{}", listed.describe());
    let a = https(&s.url("/ss/add"), Some(&cookie), Some(&[("realm", "example.org"), ("secret", "s3cr3t"), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "secret added to realm example.org");
    assert!(https(&s.url("/ss"), Some(&cookie), None, None).body.contains("s3cr3t"));
    let a = https(&s.url("/os/add"), Some(&cookie), Some(&[("realm", RADMIN_REALM), ("origin", "HTTPS://Web.Example"), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "origin https://web.example:443 added to realm other.org");
    let a = https(&s.url("/ro/set"), Some(&cookie), Some(&[("realm", "example.org"), ("opt", "max-bps"), ("value", "64000"), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "max-bps of realm example.org set to 64000");
    assert!(https(&s.url("/ro"), Some(&cookie), None, None).body.contains("<td>max-bps</td><td>64000</td>"));
    let a = https(&s.url("/us/del"), Some(&cookie), Some(&[("realm", "example.org"), ("name", "web<user>"), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "user web<user> deleted from realm example.org");

    // A realm admin: own realm only, no configuration.
    let mut client = UdpTurn::new(s.turn_addr());
    client.allocate().unwrap();
    let ps = https(&s.url("/ps"), Some(&cookie), None, None);
    assert!(ps.body.contains("<p>1 session(s)</p>"), "{}", ps.body);
    let rcookie = session(&s, RADMIN, RADMIN_PASS);
    let rps = https(&s.url("/ps"), Some(&rcookie), None, None);
    assert!(rps.body.contains("<p>0 session(s)</p>"), "{}", rps.body);
    assert!(!https(&s.url("/home"), Some(&rcookie), None, None).body.contains("href=\"/pc\""));
    let rcsrf = rps.csrf();
    let sid = ps.body.split("<tr><td>").nth(1).unwrap().split('<').next().unwrap().to_string();
    let a = https(&s.url("/cs"), Some(&rcookie), Some(&[("sid", &sid), ("csrf", &rcsrf)]), None);
    assert_eq!(redirect_msg(&a), format!("Error: no session {sid}"));
    assert_eq!(client.refresh(600), 0, "the realm admin could not cancel another realm's session");
    let a = https(&s.url("/toggle"), Some(&rcookie), Some(&[("opt", "mobility"), ("csrf", &rcsrf)]), None);
    assert!(redirect_msg(&a).contains("only a superuser"));
    let a = https(&s.url("/us/add"), Some(&rcookie), Some(&[("realm", "example.org"), ("name", "x"), ("password", "y"), ("csrf", &rcsrf)]), None);
    assert_eq!(redirect_msg(&a), "Error: realm example.org is not yours");
    let ros = https(&s.url("/os"), Some(&rcookie), None, None);
    assert!(ros.body.contains("https://web.example:443"), "{}", ros.body);
    assert!(!https(&s.url("/ss"), Some(&rcookie), None, None).body.contains("s3cr3t"));
    // The other admin's token does not work with this session.
    let a = https(&s.url("/us/add"), Some(&rcookie), Some(&[("name", "x"), ("password", "y"), ("csrf", &csrf)]), None);
    assert_eq!(a.status, 403);

    // Logout ends the session.
    let a = https(&s.url("/logout"), Some(&rcookie), Some(&[("csrf", &rcsrf)]), None);
    assert_eq!((a.status, a.header("location")), (303, Some("/logon")));
    assert_eq!(https(&s.url("/home"), Some(&rcookie), None, None).status, 303);

    // Throttle: five failures from 127.0.0.7 lock that address out, even
    // with the right password; 127.0.0.1 is not affected.
    for _ in 0..5 {
        assert!(redirect_msg(&logon(&s, ADMIN, "nope", Some("127.0.0.7"))).contains("Wrong"));
    }
    let a = logon(&s, ADMIN, ADMIN_PASS, Some("127.0.0.7"));
    assert!(a.cookie().is_none());
    assert!(redirect_msg(&a).contains("Too many failed logons"), "{a:?}");
    assert!(logon(&s, ADMIN, ADMIN_PASS, None).cookie().is_some());
    assert!(s.log().contains("logon from 127.0.0.7 refused: too many failed attempts"));
}

/// The `oauth_key` rows of the server's SQLite file, as `sqlite3` prints them.
fn sqlite_oauth_rows(s: &Server) -> String {
    let out = run_cmd(
        &require_tool("sqlite3"),
        &[s.db().as_str(), "select kid,ikm_key,timestamp,lifetime,as_rs_alg,realm from oauth_key order by kid"],
        Duration::from_secs(10),
    );
    assert!(out.success(), "sqlite3: {}", out.describe());
    out.stdout
}

#[test]
fn oauth_keys_superuser_only() {
    let s = Server::start(&[]);
    let ikm = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="; // 32 bytes
    let kid = "north<1>";
    let cookie = session(&s, ADMIN, ADMIN_PASS);
    assert!(https(&s.url("/home"), Some(&cookie), None, None).body.contains("href=\"/oauth\""));
    let page = https(&s.url("/oauth"), Some(&cookie), None, None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"ikm_key\"") && page.body.contains("<option value=\"A128GCM\">"), "{}", page.body);
    let csrf = page.csrf();
    let add = |fields: &[(&str, &str)]| {
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        redirect_msg(&https(&s.url("/oauth/add"), Some(&cookie), Some(&all), None))
    };

    // Bad input: a message on the page, nothing stored.
    let form = |kid: &'static str, ikm: &'static str, ts: &'static str, lt: &'static str, alg: &'static str| {
        [("kid", kid), ("ikm_key", ikm), ("timestamp", ts), ("lifetime", lt), ("as_rs_alg", alg), ("realm", "example.org")]
    };
    assert_eq!(add(&form("k", "%%%", "0", "0", "A256GCM")), "Error: ikm_key is not valid base64");
    assert_eq!(add(&form("k", "MTIzNDU2Nzg5MDEyMzQ1Ng==", "0", "0", "A256GCM")), "Error: ikm_key decodes to 16 bytes; A256GCM needs at least 32");
    assert!(add(&form("k", ikm, "-1", "0", "A256GCM")).starts_with("Error: timestamp must be a whole number"));
    assert!(add(&form("k", ikm, "0", "x", "A256GCM")).starts_with("Error: lifetime must be a whole number"));
    assert_eq!(add(&form("k", ikm, "0", "0", "A512GCM")), "Error: as_rs_alg must be A256GCM or A128GCM, not A512GCM");
    assert_eq!(add(&form("", ikm, "0", "0", "A256GCM")), "Error: kid is required");
    assert_eq!(sqlite_oauth_rows(&s), "", "nothing stored from bad input");

    // A good key: listed (escaped) and in the database.
    assert_eq!(add(&[("kid", kid), ("ikm_key", ikm), ("timestamp", "0"), ("lifetime", "3600"), ("as_rs_alg", "A256GCM"), ("realm", "example.org")]), "oAuth key north<1> added");
    let list = https(&s.url("/oauth"), Some(&cookie), None, None);
    assert!(
        list.body.contains(&format!("<tr><td>north&lt;1&gt;</td><td>{ikm}</td><td>0</td><td>3600</td><td>A256GCM</td><td>example.org</td>")),
        "key listed: {}",
        list.body
    );
    assert!(!list.body.contains("north<1>"), "kid escaped: {}", list.body);
    assert_eq!(sqlite_oauth_rows(&s), format!("north<1>|{ikm}|0|3600|A256GCM|example.org\n"));

    // A realm admin: no menu entry, no list, no changes.
    let rcookie = session(&s, RADMIN, RADMIN_PASS);
    let rhome = https(&s.url("/home"), Some(&rcookie), None, None);
    assert!(!rhome.body.contains("href=\"/oauth\""), "{}", rhome.body);
    let rcsrf = rhome.csrf();
    let rpage = https(&s.url("/oauth"), Some(&rcookie), None, None);
    assert!(rpage.body.contains("Only a superuser sees the oAuth keys."), "{}", rpage.body);
    assert!(!rpage.body.contains("north&lt;1&gt;") && !rpage.body.contains(ikm), "{}", rpage.body);
    let a = https(&s.url("/oauth/del"), Some(&rcookie), Some(&[("kid", kid), ("csrf", &rcsrf)]), None);
    assert_eq!(redirect_msg(&a), "Error: only a superuser may change the configuration");
    let a = https(
        &s.url("/oauth/add"),
        Some(&rcookie),
        Some(&[("kid", "theirs"), ("ikm_key", ikm), ("timestamp", "0"), ("lifetime", "0"), ("as_rs_alg", "A256GCM"), ("realm", RADMIN_REALM), ("csrf", &rcsrf)]),
        None,
    );
    assert_eq!(redirect_msg(&a), "Error: only a superuser may change the configuration");
    assert_eq!(sqlite_oauth_rows(&s), format!("north<1>|{ikm}|0|3600|A256GCM|example.org\n"), "the realm admin changed nothing");

    // The superuser deletes it with the row's button.
    let a = https(&s.url("/oauth/del"), Some(&cookie), Some(&[("kid", kid), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "oAuth key north<1> deleted");
    assert_eq!(sqlite_oauth_rows(&s), "");
    assert!(!https(&s.url("/oauth"), Some(&cookie), None, None).body.contains("north&lt;1&gt;"));
    let a = https(&s.url("/oauth/del"), Some(&cookie), Some(&[("kid", kid), ("csrf", &csrf)]), None);
    assert_eq!(redirect_msg(&a), "Error: no oAuth key north<1>");
    assert!(s.log().contains("web admin: boss: oAuth key north<1> added"), "{}", s.log());
}

#[test]
fn oversized_and_garbage_requests_get_errors() {
    let s = Server::start(&[]);
    let big = "a".repeat(100 * 1024);
    // 413 (the server answers before reading the body; curl may see the
    // reset of the unread rest instead, status 0): never a logon attempt.
    let a = https(&s.url("/logon"), None, Some(&[("uname", &big)]), None);
    assert!(a.status == 413 || a.status == 0, "{a:?}");
    assert!(!s.log().contains("failed logon"), "{}", s.log());
    let a = https(&s.url("/nowhere"), None, None, None);
    assert_eq!(a.status, 303);
    let cookie = session(&s, ADMIN, ADMIN_PASS);
    assert_eq!(https(&s.url("/nowhere"), Some(&cookie), None, None).status, 404);
    // Plain HTTP on the HTTPS port: no answer, and the server stays up.
    let mut t = TcpStream::connect(s.web_addr()).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = t.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
    assert_eq!(https(&s.url("/home"), Some(&cookie), None, None).status, 200);
}

/// Send raw bytes to the TURN port, read until it closes.
fn raw_exchange(addr: SocketAddr, req: &[u8]) -> String {
    let mut t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(req).unwrap();
    let mut buf = Vec::new();
    let _ = t.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn http_on_the_turn_port() {
    let s = Server::start(&["--acme-redirect=https://acme.example.net/.well-known/acme-challenge/", "--respond-http-unsupported", "--web-admin-listen-on-workers"]);
    let turn = s.turn_addr();
    let token = "aBc-_0123456789xYz";
    let a = raw_exchange(turn, format!("GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    assert!(a.starts_with("HTTP/1.1 301 Moved Permanently\r\n"), "{a}");
    assert!(a.contains(&format!("\r\nLocation: https://acme.example.net/.well-known/acme-challenge/{token}\r\n")), "{a}");
    let a = raw_exchange(turn, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(a.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{a}");
    // The same request in pieces.
    let mut t = TcpStream::connect(turn).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(b"GE").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    t.write_all(b"T / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    t.write_all(b"\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = t.read_to_end(&mut buf);
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"));

    // STUN over TCP on the same port still works.
    let mut c = common::turn_tcp::TcpClient::connect(turn);
    let m = c.build(turnserver::stun::Method::BINDING, turnserver::stun::Class::Request, |_| {});
    c.s.write_all(&m).unwrap();
    match c.recv() {
        common::turn_tcp::Got::Stun(r) => assert_eq!(common::turn_tcp::code(&r), 0),
        common::turn_tcp::Got::Channel(..) => panic!("ChannelData instead of a Binding answer"),
    }
    // HTTPS on the TURN port goes to the web admin (TLS is sniffed there too).
    let a = https(&format!("https://{turn}/logon"), None, None, None);
    assert_eq!(a.status, 200, "{a:?}\n{}", s.log());
    assert!(a.body.contains("Administrator logon"));
    let a = https(&format!("https://{turn}/logon"), None, Some(&[("uname", ADMIN), ("pwd", ADMIN_PASS)]), None);
    assert_eq!(a.status, 303);
    assert!(a.cookie().is_some());
    // And an allocation over TLS on the same port.
    let uclient = require_tool("turnutils_uclient");
    let out = run_cmd(
        &uclient,
        &["-t", "-S", "-y", "-n", "2", "-m", "1", "-l", "120", "-u", "user", "-w", "pass", "-p", &turn.port().to_string(), "127.0.0.1"],
        Duration::from_secs(60),
    );
    let st = common::parse_uclient(&out.all()).unwrap_or_else(|| panic!("uclient: {}", out.describe()));
    assert!(out.all().contains("method=TLSv1."), "not TLS: {}", out.describe());
    assert!(st.recv_msgs > 0, "TURN over TLS relayed nothing: {}", out.describe());

    // Without the options: HTTP is closed without an answer (coturn's default).
    let plain = Server::start(&[]);
    assert_eq!(raw_exchange(plain.turn_addr(), b"GET /.well-known/acme-challenge/abcdefghijkl HTTP/1.1\r\n\r\n"), "");
    assert_eq!(https(&format!("https://{}/logon", plain.turn_addr()), None, None, None).status, 0);
}

// ------------------------------------------------------------------ Chromium

/// Headless Chromium driven over `--remote-debugging-pipe`.
struct Browser {
    child: Child,
    to: File,
    from: BufReader<File>,
    next_id: u64,
    session: String,
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl Browser {
    fn start(profile: &Path) -> Browser {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("Chromium not found (/usr/bin/chromium): scripts/test.sh installs the Debian package");
        let (cmd_r, cmd_w) = pipe();
        let (ev_r, ev_w) = pipe();
        let (in_fd, out_fd) = (cmd_r.as_raw_fd(), ev_w.as_raw_fd());
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
            "--window-size=1400,900",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(profile.with_extension("log")).unwrap()));
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(in_fd, libc::F_DUPFD, 10);
                let b = libc::fcntl(out_fd, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop((cmd_r, ev_w));
        let mut b = Browser { child, to: cmd_w, from: BufReader::new(ev_r), next_id: 0, session: String::new() };
        // The first page may take a moment to exist.
        let mut page = None;
        for _ in 0..50 {
            let targets = b.call("Target.getTargets", "{}", false);
            page = targets["targetInfos"].as_array().and_then(|a| a.iter().find(|t| t["type"] == "page").cloned());
            if page.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let page = page.expect("a page target");
        let attached = b.call("Target.attachToTarget", &format!("{{\"targetId\":{},\"flatten\":true}}", page["targetId"]), false);
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b
    }

    /// Send a command and wait (bounded) for its result.
    fn call(&mut self, method: &str, params: &str, in_page: bool) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let session = if in_page { format!(",\"sessionId\":{}", json_str(&self.session)) } else { String::new() };
        let msg = format!("{{\"id\":{id},\"method\":\"{method}\",\"params\":{params}{session}}}\0");
        self.to.write_all(msg.as_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("chromium exited ({st})");
            }
            let mut buf = Vec::new();
            // Chromium answers every command, so this read ends.
            self.from.read_until(0, &mut buf).unwrap();
            buf.pop();
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            if v["id"] == id {
                if v.get("error").is_some() && method == "Runtime.evaluate" {
                    // The page is between two documents: try again later.
                    return serde_json::Value::Null;
                }
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    fn eval(&mut self, js: &str) -> serde_json::Value {
        let r = self.call("Runtime.evaluate", &format!("{{\"expression\":{},\"returnByValue\":true}}", json_str(js)), true);
        r["result"]["value"].clone()
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", &format!("{{\"url\":{}}}", json_str(url)), true);
    }

    /// Poll `js` (a boolean expression) until true.
    fn wait_for(&mut self, js: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.eval(js) == serde_json::Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; page: {}", self.eval("document.body ? document.body.innerText : ''"));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", "{\"format\":\"png\"}", true);
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(3));
    }
}

#[test]
fn chromium_logs_on_sees_and_cancels_a_session() {
    let s = Server::start(&[]);
    let mut client = UdpTurn::new(s.turn_addr());
    let relay = client.allocate().unwrap();
    let mut b = Browser::start(&s.dir.path().join("chromium-profile"));
    b.navigate(&s.url("/logon"));
    b.wait_for("!!document.querySelector('input[name=pwd]')", "the logon form");
    b.eval(&format!(
        "document.querySelector('input[name=uname]').value = {}; document.querySelector('input[name=pwd]').value = {}; \
         document.querySelector('form').submit(); true",
        json_str(ADMIN),
        json_str(ADMIN_PASS)
    ));
    b.wait_for("location.pathname === '/home' && document.body.innerText.includes('superuser')", "the home page after logon");
    b.navigate(&s.url("/ps"));
    b.wait_for("location.pathname === '/ps' && document.body.innerText.includes('1 session(s)')", "the session list");
    let text = b.eval("document.body.innerText").as_str().unwrap().to_string();
    assert!(text.contains(&relay.to_string()), "relay address {relay} not listed:\n{text}");
    assert!(text.contains("example.org") && text.contains("UDP"), "{text}");
    let shot_dir = repo_root().join("target").join("test-artifacts");
    std::fs::create_dir_all(&shot_dir).unwrap();
    b.screenshot(&shot_dir.join("webadmin_sessions.png"));
    b.eval("document.querySelector('input[type=submit][value=Cancel]').form.submit(); true");
    b.wait_for("location.pathname === '/ps' && document.body.innerText.includes('cancelled') && document.body.innerText.includes('0 session(s)')", "the cancel");
    assert_eq!(client.refresh(600), 437, "the cancelled allocation still answers Refresh");
    assert!(s.log().contains("web admin: boss: session"), "{}", s.log());
    // The cookie the browser holds is HttpOnly: page scripts cannot read it.
    assert_eq!(b.eval("document.cookie"), serde_json::Value::String(String::new()));
}
