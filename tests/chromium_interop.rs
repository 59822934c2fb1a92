//! Interop with a real WebRTC stack: headless Chromium (Debian `chromium`)
//! relays a data channel through the server over TURN/UDP, TURN/TCP and
//! TURN/TLS (`turns:`), with `iceTransportPolicy: 'relay'`, and getStats()
//! must show relay candidates on both ends.
//!
//! Chromium gathers no candidates at all when loopback is its only interface,
//! so the test makes its own network namespace with a veth pair whose two ends
//! both live inside it (private 10.x addresses that exist nowhere else), and
//! runs the server and Chromium inside it with `ip netns exec`. No packet
//! leaves the namespace. The namespace is deleted and every process stopped by
//! PID when the test ends, also when it fails (Drop guards).
//!
//! Needs root (to create the namespace): the test fails, with a message
//! saying so, when it is not root or `ip netns add` is refused. CI runs
//! scripts/test.sh as root, which installs `chromium` and `iproute2`.
//!
//! The page (tests/web/relay_test.html, opened as a file:// URL with the TURN
//! URLs in its query string) runs on load and prints its report with
//! console.log; Chromium writes console messages to stderr with
//! `--enable-logging=stderr`, which the test reads until the page says
//! `TRS_DONE`, in real time (no virtual time, which would distort the ICE and
//! SCTP timers). Chromium is then stopped by PID.
//!
//! The server's certificate is self-signed; Chromium is told to accept
//! exactly that key with `--ignore-certificate-errors-spki-list=<sha256 of
//! the SPKI, base64>` (without it the TURN/TLS handshake fails with
//! net_error -202, CERT_AUTHORITY_INVALID). Nothing is installed system-wide.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{self, File};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{require_tool, run_cmd, server_bin};

/// Ports inside the private namespace: nothing else listens there, so fixed
/// ports are safe even when several copies of this test run at once.
const TURN_PORT: u16 = 3478;
const TLS_PORT: u16 = 5349;
const MIN_RELAY: u16 = 49152;
const MAX_RELAY: u16 = 49252;
const USER: &str = "webrtc";
const PASS: &str = "s3cret-pass";
const REALM: &str = "example.org";

/// How long the server gets to open its listeners.
const SERVER_READY: Duration = Duration::from_secs(15);
/// How long Chromium gets to start and run the whole page (three URLs; the
/// page itself gives each step 15 s).
const CHROMIUM_BUDGET: Duration = Duration::from_secs(120);
/// Every `ip` command.
const IP_TIMEOUT: Duration = Duration::from_secs(15);

/// Prefix of the namespaces this test makes: `trs-chr-<pid>-<n>`.
const NS_PREFIX: &str = "trs-chr-";

static NS_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn ip_tool() -> PathBuf {
    require_tool("ip")
}

fn chromium_tool() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "Chromium not found (/usr/bin/chromium): run ./scripts/test.sh once as root, which \
         installs the Debian package `chromium`"
    );
}

/// Runs `ip ARGS...`, panicking with its output on failure.
fn ip(args: &[&str]) {
    let out = run_cmd(&ip_tool(), args, IP_TIMEOUT);
    assert!(out.success(), "`ip {}` failed: {}", args.join(" "), out.describe());
}

// ------------------------------------------------------------------ namespace

/// A network namespace of this test, deleted on drop.
struct NetNs {
    name: String,
    /// The server's address (first end of the veth pair).
    server_ip: String,
    /// The second end's address (Chromium's other interface).
    peer_ip: String,
}

impl NetNs {
    fn create() -> NetNs {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert!(
            euid == 0,
            "chromium_interop needs root to create a network namespace (`ip netns add`), \
             but runs as uid {euid}: run it as root (CI runs ./scripts/test.sh as root)"
        );
        remove_stale_namespaces();
        let pid = std::process::id();
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{NS_PREFIX}{pid}-{n}");
        // The addresses exist only inside this namespace, so any private
        // subnet would do; derive one from the pid anyway, for readable logs.
        let (x, y) = (100 + (pid % 100) as u8, ((pid / 100) % 250) as u8 + n as u8 % 5);
        let server_ip = format!("10.{x}.{y}.1");
        let peer_ip = format!("10.{x}.{y}.2");

        let out = run_cmd(&ip_tool(), &["netns", "add", &name], IP_TIMEOUT);
        assert!(
            out.success(),
            "`ip netns add {name}` failed: this test needs the privileges to create network \
             namespaces (root with CAP_SYS_ADMIN; CI runs ./scripts/test.sh as root): {}",
            out.describe()
        );
        // From here on the guard deletes the namespace, whatever fails next.
        let ns = NetNs { name, server_ip, peer_ip };
        let (a, b) = ("trsv0", "trsv1");
        ns.exec_ip(&["link", "set", "lo", "up"]);
        // Created inside the namespace: both ends live there and nowhere else.
        ns.exec_ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        ns.exec_ip(&["addr", "add", &format!("{}/24", ns.server_ip), "dev", a]);
        ns.exec_ip(&["addr", "add", &format!("{}/24", ns.peer_ip), "dev", b]);
        ns.exec_ip(&["link", "set", a, "up"]);
        ns.exec_ip(&["link", "set", b, "up"]);
        ns
    }

    /// `ip netns exec NS ip ARGS...`
    fn exec_ip(&self, args: &[&str]) {
        let ipt = ip_tool();
        let mut full = vec!["netns", "exec", &self.name, ipt.to_str().unwrap()];
        full.extend_from_slice(args);
        ip(&full);
    }

    /// Whether the server inside answers a STUN Binding request on UDP
    /// `port` and accepts TCP connections on `port` and `tls_port`. The probe
    /// runs on a thread of its own that joins the namespace (setns changes
    /// only the calling thread's network namespace) and then ends.
    fn server_ready(&self, port: u16, tls_port: u16) -> bool {
        let path = format!("/run/netns/{}", self.name);
        let ip: std::net::Ipv4Addr = self.server_ip.parse().unwrap();
        std::thread::spawn(move || {
            let Ok(f) = File::open(&path) else { return false };
            // SAFETY: setns on a namespace fd we opened, on this thread only.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return false;
            }
            let t = Duration::from_millis(300);
            let tcp_ok = |p: u16| std::net::TcpStream::connect_timeout(&(ip, p).into(), t).is_ok();
            common::stun_probe((ip, port).into(), Duration::from_millis(500)) && tcp_ok(port) && tcp_ok(tls_port)
        })
        .join()
        .unwrap_or(false)
    }

    /// A command that runs `program` inside the namespace. `ip netns exec`
    /// execs the program in place, so the child's PID is the program's.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(ip_tool());
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let out = run_cmd(&ip_tool(), &["netns", "del", &self.name], IP_TIMEOUT);
        if !out.success() {
            eprintln!("warning: `ip netns del {}` failed: {}", self.name, out.describe());
        }
    }
}

/// Deletes namespaces `trs-chr-<pid>-<n>` left behind by runs of this test
/// that were killed before their guard could run (their pid is gone).
fn remove_stale_namespaces() {
    let Ok(entries) = fs::read_dir("/run/netns") else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run_cmd(&ip_tool(), &["netns", "del", &name], IP_TIMEOUT);
        }
    }
}

// ------------------------------------------------------------------ processes

/// A process started in its own process group, with stdout+stderr in a file.
/// Dropping it sends SIGTERM to its PID, then SIGKILL to its process group
/// (Chromium's helpers: zygote, renderer, network service) after a grace time.
struct Proc {
    child: Option<Child>,
    log_path: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log_path: PathBuf) -> Proc {
        let log = File::create(&log_path).expect("create log");
        let log2 = log.try_clone().expect("dup log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child: Some(child), log_path }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// `Some(status)` once the process has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id() as libc::pid_t;
        if child.try_wait().ok().flatten().is_none() {
            // SAFETY: signalling the PID of a child we spawned and have not reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The group we created for it (pgid == its pid): whatever helpers it
        // left. ESRCH when none is left is fine.
        // SAFETY: signalling the process group this test created.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------ certificate

/// A self-signed certificate for the server's IP (and a made-up name) and the
/// base64 SHA-256 of its SubjectPublicKeyInfo, for
/// `--ignore-certificate-errors-spki-list`.
fn server_cert(dir: &Path, ip: &str) -> (PathBuf, PathBuf, String) {
    let openssl = require_tool("openssl");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let san = format!("subjectAltName=IP:{ip},DNS:turn.test");
    let out = run_cmd(
        &openssl,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=turn.test",
            "-addext", &san, "-keyout", &s(&key), "-out", &s(&cert),
        ],
        Duration::from_secs(30),
    );
    assert!(out.success(), "openssl req failed: {}", out.describe());
    let pubkey = dir.join("pub.der");
    let hash = dir.join("spki.sha256");
    let steps: [Vec<String>; 2] = [
        vec!["x509".into(), "-in".into(), s(&cert), "-noout".into(), "-pubkey".into(), "-out".into(), s(&dir.join("pub.pem"))],
        vec!["pkey".into(), "-pubin".into(), "-in".into(), s(&dir.join("pub.pem")), "-outform".into(), "der".into(), "-out".into(), s(&pubkey)],
    ];
    for args in &steps {
        let out = run_cmd(&openssl, args, Duration::from_secs(15));
        assert!(out.success(), "openssl {args:?} failed: {}", out.describe());
    }
    let out = run_cmd(&openssl, &["dgst", "-sha256", "-binary", "-out", &s(&hash), &s(&pubkey)], Duration::from_secs(15));
    assert!(out.success(), "openssl dgst failed: {}", out.describe());
    let out = run_cmd(&openssl, &["base64", "-A", "-in", &s(&hash)], Duration::from_secs(15));
    assert!(out.success(), "openssl base64 failed: {}", out.describe());
    let spki = out.stdout.trim().to_string();
    assert_eq!(spki.len(), 44, "unexpected SPKI hash {spki:?}");
    (cert, key, spki)
}

// ------------------------------------------------------------------ page report

/// Percent-encodes a query-string value.
fn pct(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// One `TRS_SUMMARY` line of the page: `key=value` pairs.
#[derive(Debug)]
struct Summary {
    fields: Vec<(String, String)>,
}

impl Summary {
    fn get(&self, k: &str) -> &str {
        self.fields.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

fn summaries(log: &str) -> Vec<Summary> {
    let mut v = Vec::new();
    for line in log.lines() {
        let Some(i) = line.find("TRS_SUMMARY ") else { continue };
        let rest = &line[i + "TRS_SUMMARY ".len()..];
        let rest = rest.split(" END").next().unwrap_or(rest);
        let fields = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        v.push(Summary { fields });
    }
    v
}

// ------------------------------------------------------------------ the test

#[test]
fn chromium_data_channel_relayed_over_udp_tcp_and_tls() {
    let started = Instant::now();
    let chromium = chromium_tool();
    let server = server_bin();
    assert!(server.is_file(), "server binary {} not found (cargo build --release --bins)", server.display());
    let page = common::repo_root().join("tests/web/relay_test.html");
    assert!(page.is_file(), "{} missing", page.display());

    let dir = tempfile::Builder::new().prefix("turnserver-chromium-").tempdir().unwrap();
    // Declared before the processes, so dropped after them: processes are
    // stopped before the namespace is deleted.
    let ns = NetNs::create();
    let ip = ns.server_ip.clone();
    let (cert, key, spki) = server_cert(dir.path(), &ip);

    // ---- server
    let server_log = dir.path().join("server.log");
    let mut cmd = ns.command(&server);
    cmd.current_dir(dir.path()).args([
        "-n".to_string(),
        format!("--listening-ip={ip}"),
        format!("--listening-port={TURN_PORT}"),
        format!("--relay-ip={ip}"),
        format!("--min-port={MIN_RELAY}"),
        format!("--max-port={MAX_RELAY}"),
        "--lt-cred-mech".into(),
        format!("--user={USER}:{PASS}"),
        format!("--realm={REALM}"),
        format!("--cert={}", cert.display()),
        format!("--pkey={}", key.display()),
        format!("--tls-listening-port={TLS_PORT}"),
        "--no-dtls".into(),
        "--log-file=stdout".into(),
        "--simple-log".into(),
        // Verbose: coturn logs sessions and relay addresses only with -v.
        "-v".into(),
        format!("--pidfile={}", dir.path().join("pid").display()),
        "--no-cli".into(),
        format!("--userdb={}", dir.path().join("turndb.sqlite").display()),
    ]);
    let mut srv = Proc::spawn("turnserver", cmd, server_log);
    // Ready once it answers a STUN Binding request over UDP and accepts TCP
    // connections on both ports, probed from inside the namespace.
    let deadline = Instant::now() + SERVER_READY;
    loop {
        if let Some(st) = srv.exited() {
            panic!("server exited before it was ready ({st}):\n{}", srv.log());
        }
        if ns.server_ready(TURN_PORT, TLS_PORT) {
            break;
        }
        assert!(Instant::now() < deadline, "server not ready within {SERVER_READY:?}:\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // ---- Chromium
    let urls = [
        format!("turn:{ip}:{TURN_PORT}?transport=udp"),
        format!("turn:{ip}:{TURN_PORT}?transport=tcp"),
        format!("turns:{ip}:{TLS_PORT}?transport=tcp"),
    ];
    let mut query = format!("user={}&pass={}", pct(USER), pct(PASS));
    for u in &urls {
        query.push_str(&format!("&url={}", pct(u)));
    }
    let page_url = format!("file://{}?{query}", page.display());
    let profile = dir.path().join("chromium-profile");
    fs::create_dir_all(&profile).unwrap();
    let chromium_flags: Vec<String> = vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--user-data-dir={}", profile.display()),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        format!("--ignore-certificate-errors-spki-list={spki}"),
    ];
    let mut cmd = ns.command(&chromium);
    cmd.current_dir(dir.path()).args(&chromium_flags).arg(&page_url);
    let chrome_log = dir.path().join("chromium.log");
    let chrome_started = Instant::now();
    let mut chrome = Proc::spawn("chromium", cmd, chrome_log);
    let deadline = Instant::now() + CHROMIUM_BUDGET;
    let log = loop {
        let log = chrome.log();
        if log.contains("TRS_DONE") {
            break log;
        }
        if let Some(st) = chrome.exited() {
            panic!("chromium exited ({st}) before the page finished:\n{log}\n--- server log ---\n{}", srv.log());
        }
        assert!(
            Instant::now() < deadline,
            "the page did not finish within {CHROMIUM_BUDGET:?}; chromium log:\n{log}\n--- server log ---\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let page_time = chrome_started.elapsed();
    chrome.stop();
    // Let the server log the ends of the six sessions (bounded), then stop it.
    let closed_on = |text: &str, port: u16| {
        text.lines()
            .filter(|l| {
                // Not the readiness probes' connections (no user).
                l.contains(": closed")
                    && l.contains(&format!("user <{USER}>"))
                    && l.contains(&format!("local {ip}:{port},"))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let text = srv.log();
        if closed_on(&text, TURN_PORT) >= 4 && closed_on(&text, TLS_PORT) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    srv.stop();
    let server_text = srv.log();

    let report: Vec<&str> = log.lines().filter(|l| l.contains("TRS_")).collect();
    let context = format!(
        "chromium flags: {chromium_flags:?}\n--- page report ---\n{}\n--- server log ---\n{server_text}",
        report.join("\n")
    );
    let sums = summaries(&log);
    assert_eq!(sums.len(), urls.len(), "one summary per URL expected\n{context}");
    let expected_protocol = ["udp", "tcp", "tls"];
    for ((url, sum), proto) in urls.iter().zip(&sums).zip(expected_protocol) {
        eprintln!("chromium: {url}: {:?}", sum.fields);
        assert_eq!(sum.get("url"), url, "{context}");
        assert_eq!(sum.get("message"), "1", "{url}: message not delivered pc1 -> pc2\n{context}");
        assert_eq!(sum.get("echo"), "1", "{url}: answer not delivered pc2 -> pc1\n{context}");
        assert_eq!(sum.get("pc1"), "relay/relay", "{url}: pc1's selected pair is not relay/relay\n{context}");
        assert_eq!(sum.get("pc2"), "relay/relay", "{url}: pc2's selected pair is not relay/relay\n{context}");
        assert_eq!(
            sum.get("relayProtocol"),
            format!("{proto}/{proto}"),
            "{url}: Chromium did not reach the server over {proto}\n{context}"
        );
        assert_eq!(sum.get("ok"), "1", "{url}\n{context}");
        // The relayed addresses Chromium used are ours.
        for k in ["relay1", "relay2"] {
            let addr = sum.get(k);
            let (host, port) = addr.rsplit_once(':').unwrap_or(("", ""));
            let port: u16 = port.parse().unwrap_or(0);
            assert!(
                host == ip && (MIN_RELAY..=MAX_RELAY).contains(&port),
                "{url}: {k}={addr} is not a relay address of the server\n{context}"
            );
            // Our server logs each relay address it allocates (coturn only
            // with -v).
            assert!(
                !server_text.contains("Local relay addr: ")
                    || server_text.contains(&format!("Local relay addr: {addr}")),
                "{url}: the server did not log relay address {addr}\n{context}"
            );
        }
    }

    // Server side: two allocations (one per peer connection) per URL, with
    // long-term credentials in our realm; the TLS ones end on the TLS port.
    let new_sessions = server_text
        .lines()
        .filter(|l| l.contains(&format!(": new, realm=<{REALM}>, username=<{USER}>")))
        .count();
    assert_eq!(new_sessions, 2 * urls.len(), "allocations in the server log\n{context}");
    assert_eq!(closed_on(&server_text, TURN_PORT), 4, "UDP+TCP sessions on {TURN_PORT}\n{context}");
    assert_eq!(closed_on(&server_text, TLS_PORT), 2, "TLS sessions on {TLS_PORT}\n{context}");

    eprintln!(
        "chromium interop: page ran in {page_time:?}, whole test {:?}; namespace {}",
        started.elapsed(),
        ns.name
    );
    drop(chrome);
    drop(srv);
    drop(ns);
}
