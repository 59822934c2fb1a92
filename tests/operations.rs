//! Operating the server (docs/operations.md), through the real binary:
//!
//! * SIGHUP re-reads `turnserver.conf`: a new `user-quota` and
//!   `denied-peer-ip` apply to the next request while an existing allocation
//!   carries on; a changed `listening-port` is logged as needing a restart; a
//!   broken file keeps the running configuration.
//! * SIGUSR1 drains: new Allocates get 403, existing allocations relay, the
//!   process exits once `--drain-min-allocations` or fewer remain.
//! * systemd's notify protocol on a socket the test binds: READY=1 once the
//!   listener answers, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 on
//!   SIGHUP, STOPPING=1 on SIGTERM.
//! * `--proc-user=nobody` (as root): the process runs as nobody and still
//!   allocates relay ports.
//! * `--syslog-facility`: a known facility is accepted, a wrong one refused.
//! * Log file names: `--log-file=x.log` is `x_<date>.log`, `--simple-log`
//!   keeps `x.log`; SIGHUP reopens it after logrotate moved it.
//!
//! Every wait is bounded; servers are stopped by PID.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::signed_client::{exited, signal, wait_for, SignedClient};
use common::*;

// ------------------------------------------------------------ harness

/// A server started with exactly the arguments a test gives (TestServer
/// always adds `-n`, which would keep the configuration file from being read).
struct Daemon {
    ports: PortBlock,
    dir: tempfile::TempDir,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn new() -> Daemon {
        let dir = tempfile::Builder::new().prefix("turnserver-ops-").tempdir().unwrap();
        Daemon { ports: PortBlock::claim(), log_path: dir.path().join("server.log"), dir, child: None }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.listen_port()))
    }

    /// The harness's usual settings as `turnserver.conf` lines.
    fn base_lines(&self) -> Vec<String> {
        vec![
            "listening-ip=127.0.0.1".into(),
            format!("listening-port={}", self.ports.listen_port()),
            "relay-ip=127.0.0.1".into(),
            format!("min-port={}", self.ports.min_relay_port()),
            format!("max-port={}", self.ports.max_relay_port()),
            format!("pidfile={}", self.dir.path().join("pid").display()),
            "no-tls".into(),
            "no-dtls".into(),
            "no-cli".into(),
            format!("userdb={}", self.dir.path().join("turndb.sqlite").display()),
            "lt-cred-mech".into(),
            "user=user:pass".into(),
            "realm=example.org".into(),
            "allow-loopback-peers".into(),
            "relay-threads=1".into(),
        ]
    }

    /// The same as command-line flags, after `-n`.
    fn base_flags(&self) -> Vec<String> {
        std::iter::once("-n".to_string()).chain(self.base_lines().into_iter().map(|l| format!("--{l}"))).collect()
    }

    fn spawn(&mut self, args: &[String], envs: &[(&str, &str)]) {
        let log = File::create(&self.log_path).unwrap();
        let mut cmd = Command::new(server_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap());
    }

    /// Spawn and wait (10 s at most) until the listener answers a Binding.
    fn start(&mut self, args: &[String], envs: &[(&str, &str)]) {
        self.spawn(args, envs);
        let deadline = Instant::now() + READY_TIMEOUT;
        while !stun_probe(self.addr(), Duration::from_millis(300)) {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited at start ({st}): {args:?}\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "server not ready: {args:?}\n{}", self.log());
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// The exit status, waiting up to `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.as_mut()?.try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGHUP, then wait for the `n`-th "configuration reloaded" or
    /// "reload failed" line.
    fn hup(&self) {
        let before = self.count("configuration reloaded") + self.count("reload failed");
        signal(self.pid(), libc::SIGHUP);
        let done = wait_for(Duration::from_secs(5), || self.count("configuration reloaded") + self.count("reload failed") > before);
        assert!(done, "no reload line after SIGHUP\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, STOP_GRACE);
        }
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
    }
}

/// A UDP echo peer on `ip` (any 127/8 address), in a thread that ends 30 s
/// after the last datagram.
fn echo_on(ip: &str) -> SocketAddr {
    let s = UdpSocket::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
    let addr = s.local_addr().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    addr
}

fn write_conf(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

// ------------------------------------------------------------ (a) SIGHUP

#[test]
fn sighup_reloads_the_configuration_file_without_dropping_allocations() {
    let mut d = Daemon::new();
    let conf = d.dir.path().join("turnserver.conf");
    let base = d.base_lines();
    write_conf(&conf, &base);
    let args: Vec<String> =
        ["-c", conf.to_str().unwrap(), "--log-file=stdout", "--simple-log"].iter().map(|s| s.to_string()).collect();
    d.start(&args, &[]);
    assert!(d.log().contains("Config file found:"), "{}", d.log());
    let peer2 = echo_on("127.0.0.2");
    let peer3 = echo_on("127.0.0.3");

    // Before: no quota, 127.0.0.2 allowed (shown by a client that leaves again).
    let mut probe = SignedClient::new(d.addr(), "user", "pass");
    assert_eq!(probe.allocate(), 0);
    assert_eq!(probe.permission(peer2), 0);
    assert_eq!(probe.refresh(0), 0);
    let mut c1 = SignedClient::new(d.addr(), "user", "pass");
    assert_eq!(c1.allocate(), 0);
    assert_eq!(c1.permission(peer3), 0);
    assert!(c1.relay_echo(peer3, b"before reload"));

    // The file now limits the user to one allocation and denies 127.0.0.2.
    let mut v2 = base.clone();
    v2.push("user-quota=1".into());
    v2.push("denied-peer-ip=127.0.0.2".into());
    write_conf(&conf, &v2);
    d.hup();
    assert!(d.log().contains("configuration reloaded"), "{}", d.log());
    let mut c2 = SignedClient::new(d.addr(), "user", "pass");
    assert_eq!(c2.allocate(), 486, "the reloaded user-quota applies to a new Allocate");
    assert_eq!(c1.permission(peer2), 403, "the reloaded denied-peer-ip applies to a new permission");
    // The allocation from before the reload lives on.
    assert!(c1.relay_echo(peer3, b"after reload"), "existing allocation relays after SIGHUP");
    assert_eq!(c1.refresh(600), 0);
    println!("SIGHUP: user-quota=1 -> 486, denied-peer-ip -> 403, existing allocation relays");

    // A new listening port needs a restart: said so, the old port serves on.
    let mut v3: Vec<String> = v2.iter().filter(|l| !l.starts_with("listening-port=")).cloned().collect();
    v3.push(format!("listening-port={}", d.ports.spare_port(0)));
    write_conf(&conf, &v3);
    d.hup();
    assert!(
        d.log().contains("reload: a change of listening-port takes effect only after a restart"),
        "{}",
        d.log()
    );
    assert!(stun_probe(d.addr(), Duration::from_secs(2)), "old port still answers");

    // A broken file is refused as a whole; the running settings stay.
    let mut v4 = v2.clone();
    v4.push("min-port=60000".into());
    v4.push("max-port=50000".into());
    write_conf(&conf, &v4);
    d.hup();
    assert!(d.log().contains("reload failed, keeping the running configuration"), "{}", d.log());
    assert!(c1.relay_echo(peer3, b"after a failed reload"));
    let mut c3 = SignedClient::new(d.addr(), "user", "pass");
    assert_eq!(c3.allocate(), 486, "the quota of the last good reload still holds");
    // A file that went away (a half-done deployment) is not "no settings":
    // the reload is refused and the running configuration stays.
    let moved = d.dir.path().join("turnserver.conf.moved");
    std::fs::rename(&conf, &moved).unwrap();
    d.hup();
    assert!(d.log().contains("cannot read the configuration file"), "{}", d.log());
    assert_eq!(c3.allocate(), 486, "settings kept while the file is missing");
    std::fs::rename(&moved, &conf).unwrap();
    // Lift the quota again: the next Allocate passes.
    write_conf(&conf, &base);
    d.hup();
    assert_eq!(c3.allocate(), 0, "quota lifted by the next reload");
    assert_eq!(c3.refresh(0), 0);
    assert_eq!(c1.refresh(0), 0);
}

// ------------------------------------------------------------ (b) drain

#[test]
fn sigusr1_drains_until_drain_min_allocations_remain() {
    let mut d = Daemon::new();
    let mut args = d.base_flags();
    args.extend(["--log-file=stdout", "--simple-log", "--drain-min-allocations=1"].map(String::from));
    d.start(&args, &[]);
    assert!(!d.log().contains("--drain-min-allocations is not supported"), "{}", d.log());
    let peer = echo_on("127.0.0.2");
    let mut c1 = SignedClient::new(d.addr(), "user", "pass");
    let mut c2 = SignedClient::new(d.addr(), "user", "pass");
    for c in [&mut c1, &mut c2] {
        assert_eq!(c.allocate(), 0);
        assert_eq!(c.permission(peer), 0);
    }
    signal(d.pid(), libc::SIGUSR1);
    assert!(wait_for(Duration::from_secs(5), || d.log().contains("Drain mode: no new allocations; exiting when 1 or fewer remain")), "{}", d.log());
    let mut late = SignedClient::new(d.addr(), "user", "pass");
    assert_eq!(late.allocate(), 403, "new Allocate while draining");
    for round in 0..5 {
        assert!(c1.relay_echo(peer, format!("c1 {round}").as_bytes()));
        assert!(c2.relay_echo(peer, format!("c2 {round}").as_bytes()));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!exited(d.pid()), "exited with two allocations left");
    // One goes: one left = --drain-min-allocations, the process ends.
    assert_eq!(c1.refresh(0), 0);
    let st = d.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| panic!("no exit after drain\n{}", d.log()));
    assert!(st.success(), "drain exit status {st}");
    assert!(d.log().contains("Drain complete: 1 allocation(s) left, stopping"), "{}", d.log());
    println!("drain: 403 for new, 5 relay rounds on both, exit {st} at 1 allocation left");
}

// ------------------------------------------------------------ (c) systemd

struct NotifySocket {
    sock: UnixDatagram,
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        NotifySocket { sock, _dir: dir, path }
    }

    /// The next datagram that contains `want`, within `limit`; every
    /// datagram read on the way is appended to `seen`.
    fn expect(&self, want: &str, limit: Duration, seen: &mut Vec<(Instant, String)>) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            let n = self.sock.recv(&mut buf).ok()?;
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push((Instant::now(), msg.clone()));
            if msg.lines().any(|l| l == want) {
                return Some(msg);
            }
        }
    }
}

#[test]
fn systemd_notify_ready_watchdog_reloading_stopping() {
    let notify = NotifySocket::bind();
    let mut d = Daemon::new();
    let mut args = d.base_flags();
    args.extend(["--log-file=stdout", "--simple-log"].map(String::from));
    let t0 = Instant::now();
    // 1 s watchdog: the server pings every 0.5 s.
    d.spawn(&args, &[("NOTIFY_SOCKET", notify.path.to_str().unwrap()), ("WATCHDOG_USEC", "1000000")]);
    let mut seen = Vec::new();
    let ready = notify.expect("READY=1", Duration::from_secs(10), &mut seen).unwrap_or_else(|| panic!("no READY=1: {seen:?}\n{}", d.log()));
    // Ready means serving: the listener answers at once.
    assert!(stun_probe(d.addr(), Duration::from_millis(500)), "READY=1 before the listener answers");
    assert!(ready.contains(&format!("MAINPID={}", d.pid())), "{ready}");
    assert!(ready.lines().any(|l| l.starts_with("STATUS=serving")), "{ready}");
    println!("READY=1 after {:?}: {ready:?}", t0.elapsed());

    let w0 = Instant::now();
    for _ in 0..3 {
        notify.expect("WATCHDOG=1", Duration::from_secs(3), &mut seen).unwrap_or_else(|| panic!("no WATCHDOG=1: {seen:?}"));
    }
    let per = w0.elapsed() / 3;
    assert!(per <= Duration::from_millis(900), "watchdog every {per:?}, want about 500 ms");
    println!("WATCHDOG=1 about every {per:?}");

    signal(d.pid(), libc::SIGHUP);
    let reloading = notify.expect("RELOADING=1", Duration::from_secs(5), &mut seen).unwrap_or_else(|| panic!("no RELOADING=1: {seen:?}"));
    // systemd >= 253 pairs a reload with the monotonic time it started.
    let usec = reloading.lines().find_map(|l| l.strip_prefix("MONOTONIC_USEC=")).and_then(|v| v.parse::<u64>().ok());
    assert!(usec.is_some_and(|u| u > 0), "RELOADING=1 without MONOTONIC_USEC: {reloading:?}");
    notify.expect("READY=1", Duration::from_secs(5), &mut seen).unwrap_or_else(|| panic!("no READY=1 after reload: {seen:?}"));

    signal(d.pid(), libc::SIGTERM);
    notify.expect("STOPPING=1", Duration::from_secs(5), &mut seen).unwrap_or_else(|| panic!("no STOPPING=1: {seen:?}"));
    let st = d.wait_exit(Duration::from_secs(5)).expect("exit after SIGTERM");
    assert!(st.success(), "{st}");
    // Without NOTIFY_SOCKET nothing is sent and the server runs as usual
    // (every other test); with a relative name the variable is ignored.
    let mut d2 = Daemon::new();
    let mut args = d2.base_flags();
    args.extend(["--log-file=stdout", "--simple-log"].map(String::from));
    d2.start(&args, &[("NOTIFY_SOCKET", "relative-name")]);
}

// ------------------------------------------------------------ (d) proc-user

fn status_ids(pid: u32, field: &str) -> Vec<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect()
}

#[test]
fn proc_user_drops_root_and_still_allocates() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: --proc-user needs root to switch users (not root here)");
        return;
    }
    let out = run_cmd(Path::new("/usr/bin/id"), &["-u", "nobody"], Duration::from_secs(5));
    let nobody: u32 = out.stdout.trim().parse().unwrap();
    let out = run_cmd(Path::new("/usr/bin/id"), &["-g", "nobody"], Duration::from_secs(5));
    let nobody_gid: u32 = out.stdout.trim().parse().unwrap();
    let mut d = Daemon::new();
    // The SQLite user database is opened after the switch: its directory
    // belongs to the service user, as /var/lib/turnserver would.
    std::os::unix::fs::chown(d.dir.path(), Some(nobody), Some(nobody_gid)).unwrap();
    let mut args = d.base_flags();
    args.extend(["--log-file=stdout", "--simple-log", "--proc-user=nobody"].map(String::from));
    d.start(&args, &[]);
    let line = format!("Running as user nobody group (the user's) (uid {nobody}, gid {nobody_gid})");
    assert!(wait_for(Duration::from_secs(5), || d.log().contains(&line)), "{}", d.log());
    assert!(!d.log().contains("--proc-user is not supported"), "{}", d.log());
    let uids = status_ids(d.pid(), "Uid:");
    let gids = status_ids(d.pid(), "Gid:");
    assert_eq!(uids, vec![nobody; 4], "real, effective, saved, fs uid");
    assert_eq!(gids, vec![nobody_gid; 4], "real, effective, saved, fs gid");
    let groups = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let groups = groups.lines().find(|l| l.starts_with("Groups:")).unwrap_or_default().to_string();
    assert!(!groups.split_whitespace().any(|g| g == "0"), "root's group kept: {groups}");
    // Relay ports are opened after the drop: an allocation still works.
    let peer = echo_on("127.0.0.2");
    let mut c = SignedClient::new(d.addr(), "user", "pass");
    assert_eq!(c.allocate(), 0, "{}", d.log());
    assert_eq!(c.permission(peer), 0);
    assert!(c.relay_echo(peer, b"as nobody"));
    assert_eq!(c.refresh(0), 0);
    assert!(!d.log().contains("Cannot open SQLite DB connection"), "{}", d.log());
    println!("--proc-user=nobody: Uid {uids:?} Gid {gids:?} {groups}, allocation relayed");
}

// ------------------------------------------------------------ (e) syslog

#[test]
fn syslog_facility_known_accepted_unknown_refused() {
    let mut d = Daemon::new();
    let mut args = d.base_flags();
    args.extend(["--log-file=stdout", "--simple-log", "--syslog-facility=LOG_LOCAL1"].map(String::from));
    d.start(&args, &[]);
    assert!(!d.log().contains("--syslog-facility is not supported"), "{}", d.log());

    let d2 = Daemon::new();
    let mut args = d2.base_flags();
    args.extend(["--log-file=stdout", "--simple-log", "--syslog-facility=LOG_NOSUCH"].map(String::from));
    let out = run_cmd(&server_bin(), &args, Duration::from_secs(10));
    assert!(!out.timed_out, "a wrong facility must stop the start: {}", out.describe());
    assert_eq!(out.code(), Some(255), "{}", out.describe());
    assert!(out.all().contains("Wrong syslog facility: LOG_NOSUCH"), "{}", out.describe());
    // The same from the configuration file.
    let conf = d2.dir.path().join("bad.conf");
    let mut lines = d2.base_lines();
    lines.push("syslog-facility=local9".into());
    write_conf(&conf, &lines);
    let out = run_cmd(&server_bin(), &["-c", conf.to_str().unwrap(), "--log-file=stdout"], Duration::from_secs(10));
    assert_eq!(out.code(), Some(255), "{}", out.describe());
    assert!(out.all().contains("Wrong syslog facility: local9"), "{}", out.describe());
}

// ------------------------------------------------------------ (f) log files

fn dates_around(t0: chrono::NaiveDate) -> Vec<String> {
    let now = chrono::Local::now().date_naive();
    let mut v = vec![t0.format("%Y-%m-%d").to_string()];
    if now != t0 {
        v.push(now.format("%Y-%m-%d").to_string());
    }
    v
}

#[test]
fn log_file_names_dated_and_simple_and_reopened_on_sighup() {
    // Dated: x.log becomes x_<date>.log, relative to the start directory.
    let today = chrono::Local::now().date_naive();
    let mut d = Daemon::new();
    let mut args = d.base_flags();
    args.push("--log-file=x.log".into());
    d.start(&args, &[]);
    let dir = d.dir.path().to_path_buf();
    let dated = dates_around(today).into_iter().map(|day| dir.join(format!("x_{day}.log"))).find(|p| p.is_file());
    let dated = dated.unwrap_or_else(|| panic!("no x_<date>.log in {:?}", std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect::<Vec<_>>()));
    assert!(!dir.join("x.log").exists(), "x.log without a date");
    assert!(
        wait_for(Duration::from_secs(5), || std::fs::read_to_string(&dated).unwrap_or_default().contains("Total auth threads")),
        "start-up lines in {}",
        dated.display()
    );
    // The auto-named log of the same directory is not used instead.
    assert!(std::fs::read_dir(&dir).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with("turn_")));
    println!("--log-file=x.log wrote {}", dated.display());
    drop(d);

    // --simple-log: exactly x.log; logrotate moves it, SIGHUP reopens it.
    let mut d = Daemon::new();
    let mut args = d.base_flags();
    args.extend(["--log-file=x.log", "--simple-log"].map(String::from));
    d.start(&args, &[]);
    let dir = d.dir.path().to_path_buf();
    let x = dir.join("x.log");
    assert!(wait_for(Duration::from_secs(5), || std::fs::read_to_string(&x).unwrap_or_default().contains("Total auth threads")));
    assert!(std::fs::read_dir(&dir).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with("x_")), "dated file with --simple-log");
    std::fs::rename(&x, dir.join("x.log.1")).unwrap();
    signal(d.pid(), libc::SIGHUP);
    assert!(
        wait_for(Duration::from_secs(5), || std::fs::read_to_string(&x).unwrap_or_default().contains("configuration reloaded")),
        "x.log not reopened after SIGHUP"
    );
    let old = std::fs::read_to_string(dir.join("x.log.1")).unwrap();
    assert!(old.contains("Total auth threads") && !old.contains("configuration reloaded"), "{old}");
    println!("--simple-log: x.log reopened after rename + SIGHUP");
}

// ------------------------------------------------------------ leftover options

/// `--mongo-userdb` is accepted while parsing (so coturn configs read) but
/// the server refuses to start without the database the operator named.
#[test]
fn mongo_userdb_is_refused_at_start_with_a_clear_message() {
    let ports = PortBlock::claim();
    let port = ports.listen_port().to_string();
    let args = ["-n", "-L", "127.0.0.1", "-p", port.as_str(), "--no-tls", "--log-file=stdout", "--mongo-userdb=mongodb://localhost/coturn"];
    let out = run_cmd(&server_bin(), &args, Duration::from_secs(20));
    assert!(!out.timed_out, "the server kept running");
    assert_ne!(out.status.and_then(|s| s.code()), Some(0));
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("--mongo-userdb) is not supported"), "{text}");
}

/// Binding requests are logged with `-v --log-binding`, and not with `-v` alone.
#[test]
fn log_binding_logs_binding_requests_only_when_asked() {
    for (flags, expect) in [(vec!["-v", "--log-binding"], true), (vec!["-v"], false)] {
        let mut s = TestServer::start(&flags);
        assert!(stun_probe(s.addr(), Duration::from_secs(5)), "no Binding answer");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = false;
        while Instant::now() < deadline {
            seen = s.log().contains("incoming packet BINDING processed, success");
            if seen || !expect {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !expect {
            // Give a wrongly logged line time to reach the file.
            std::thread::sleep(Duration::from_millis(300));
            seen = s.log().contains("incoming packet BINDING processed");
        }
        assert_eq!(seen, expect, "flags {flags:?}: {}", s.log_tail(20));
        s.stop();
    }
}
