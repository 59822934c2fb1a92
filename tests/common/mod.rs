//! Shared harness for the integration tests.
//!
//! * [`TestServer`] starts the server binary (`TURNSERVER_BIN`, or the
//!   `turnserver` binary cargo built for this package) on loopback with
//!   coturn-style flags, waits until it answers a STUN Binding request and
//!   stops it by PID (SIGTERM, then SIGKILL after 3 s) when dropped.
//! * [`PortBlock`] hands out a block of ports that no other test, in this or
//!   any other test process on the machine, uses at the same time.
//! * [`run_cmd`] / [`Background`] run external tools with a hard timeout.
//!
//! # Ports
//!
//! Every server gets its own block of [`BLOCK_SIZE`] consecutive ports:
//!
//! | offset | use |
//! |---|---|
//! | +0, +1 | TURN listening port P (and P+1, coturn's alternative port) |
//! | +2, +3 | echo peer (`turnutils_peer -p` binds PORT and PORT+1) |
//! | +4 .. +9 | free for clients that need a fixed local port |
//! | +10 .. +199 | relay range (`--min-port`/`--max-port`), 190 ports |
//!
//! Blocks are taken from the ports *below* the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 here), starting at
//! 10000, so that the kernel never hands one of them out as the local port of
//! some client socket while a test runs. If the ephemeral range starts too low
//! to leave room, blocks come from 40000-60000 instead. A block is claimed by
//! taking an exclusive `flock` on `$TMPDIR/turnserver-rs-test-ports/<base>.lock`
//! (held until the block is dropped), so parallel test threads and concurrent
//! `cargo test` processes never share a block; the first block tried is derived
//! from the process id and a global counter, and the listening/peer ports of a
//! block are checked to be bindable (UDP and TCP) before it is used.

#![allow(dead_code)]

pub mod dbservers;
pub mod redis_server;
pub mod signed_client;
pub mod turn_tcp;
pub mod turn_udp;
pub mod userdb_suite;

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BLOCK_SIZE: u16 = 200;
/// Offset of the first relay port in a block.
pub const RELAY_OFFSET: u16 = 10;
/// How long a server gets to answer its first Binding request.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server gets to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

static BLOCK_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Root of this package (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The server binary under test: `$TURNSERVER_BIN` if set (relative paths are
/// taken from the package root), else the `turnserver` binary of this package.
pub fn server_bin() -> PathBuf {
    match std::env::var_os("TURNSERVER_BIN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                repo_root().join(p)
            }
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_turnserver")),
    }
}

/// `(major, minor)` when `--version` of the server under test prints a coturn
/// 4.x version (e.g. Debian's coturn prints `4.6.1`). Used only to leave out
/// flags that old coturn releases reject; see [`ServerOptions::newer_flag`].
pub fn server_coturn_version() -> Option<(u32, u32)> {
    let out = run_cmd(&server_bin(), &["--version"], Duration::from_secs(5));
    let text = out.stdout.trim().to_string();
    let mut it = text.split('.');
    let major: u32 = it.next()?.trim().parse().ok()?;
    let minor: u32 = it.next()?.trim().parse().ok()?;
    (major == 4).then_some((major, minor))
}

/// Fails the test with a clear message when an external tool is missing.
pub fn require_tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "external tool `{name}` not found: run ./scripts/test.sh once (as root) to install \
         the test dependencies (Debian packages coturn and stun-client)"
    );
}

// ------------------------------------------------------------------ ports

/// The ephemeral port range of the kernel (`ip_local_port_range`).
pub fn ephemeral_range() -> (u16, u16) {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// The ports blocks are taken from: `[start, end)`.
fn block_region() -> (u16, u16) {
    let (eph_lo, eph_hi) = ephemeral_range();
    let start = 10000u16;
    if eph_lo >= start + 20 * BLOCK_SIZE {
        (start, eph_lo)
    } else if eph_hi < 40000 {
        (40000, 60000)
    } else {
        // No room outside the ephemeral range: use 40000-60000 anyway; the
        // bind checks below still keep us off busy listening ports.
        (40000, 60000)
    }
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A claimed block of [`BLOCK_SIZE`] ports (see the module docs).
pub struct PortBlock {
    pub base: u16,
    _lock: File,
}

impl PortBlock {
    /// Claims a free block; panics if none can be had within 10 s.
    pub fn claim() -> PortBlock {
        let (start, end) = block_region();
        let nblocks = ((end - start) / BLOCK_SIZE) as usize;
        assert!(nblocks > 0, "no port block region");
        let lock_dir = std::env::temp_dir().join("turnserver-rs-test-ports");
        fs::create_dir_all(&lock_dir).expect("create port lock dir");
        let first = (std::process::id() as usize).wrapping_mul(7)
            + BLOCK_COUNTER.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut attempt = 0usize;
        loop {
            let idx = (first + attempt) % nblocks;
            attempt += 1;
            let base = start + idx as u16 * BLOCK_SIZE;
            let path = lock_dir.join(format!("{base}.lock"));
            if let Ok(f) = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
            {
                // SAFETY: flock on a file descriptor we own.
                let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                if r == 0 && (0..RELAY_OFFSET).all(|o| udp_free(base + o) && tcp_free(base + o)) {
                    return PortBlock { base, _lock: f };
                }
            }
            if Instant::now() > deadline {
                panic!("could not claim a free block of {BLOCK_SIZE} ports in {start}..{end}");
            }
            if attempt % nblocks == 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// TURN listening port P (P+1 is kept free too).
    pub fn listen_port(&self) -> u16 {
        self.base
    }
    /// Port for an echo peer (PORT and PORT+1 are reserved for it).
    pub fn peer_port(&self) -> u16 {
        self.base + 2
    }
    /// One of the ports +4..+9 for a client that needs a fixed local port.
    pub fn spare_port(&self, i: u16) -> u16 {
        assert!(i < 6);
        self.base + 4 + i
    }
    pub fn min_relay_port(&self) -> u16 {
        self.base + RELAY_OFFSET
    }
    pub fn max_relay_port(&self) -> u16 {
        self.base + BLOCK_SIZE - 1
    }
}

// ------------------------------------------------------------------ STUN probe

/// A hand-built 20-byte STUN Binding request (RFC 5389 header, no attributes).
pub fn binding_request() -> ([u8; 20], [u8; 12]) {
    let mut txid = [0u8; 12];
    static REQ_COUNTER: AtomicUsize = AtomicUsize::new(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seed = now
        ^ ((std::process::id() as u64) << 32)
        ^ (REQ_COUNTER.fetch_add(1, Ordering::Relaxed) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut x = seed | 1;
    for b in txid.iter_mut() {
        // xorshift; only needs to differ between requests
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut req = [0u8; 20];
    req[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
    req[2..4].copy_from_slice(&0u16.to_be_bytes());
    req[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    req[8..20].copy_from_slice(&txid);
    (req, txid)
}

/// Sends Binding requests to `addr` over UDP until any datagram comes back or
/// `timeout` passes. Returns whether an answer came.
pub fn stun_probe(addr: SocketAddr, timeout: Duration) -> bool {
    let sock = match UdpSocket::bind("127.0.0.1:0") {
        Ok(s) => s,
        Err(_) => return false,
    };
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let (req, _) = binding_request();
        let _ = sock.send_to(&req, addr);
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == addr && n >= 20 {
                return true;
            }
        }
    }
    false
}

// ------------------------------------------------------------------ server

/// Options for [`TestServer::start_with`].
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// Extra flags, appended after the harness's own.
    pub flags: Vec<String>,
    /// Flags that only newer coturn releases (>= 4.16) know: passed to our
    /// server and to coturn >= 4.16, left out for older coturn binaries that
    /// would refuse to start ("unrecognized option").
    pub newer_flags: Vec<String>,
}

impl ServerOptions {
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.flags.extend(flags.iter().map(|s| s.to_string()));
        self
    }
    pub fn newer_flag(mut self, flag: &str) -> Self {
        self.newer_flags.push(flag.to_string());
        self
    }
}

/// A running server. Dropping it stops it (SIGTERM, SIGKILL after 3 s).
pub struct TestServer {
    pub ports: PortBlock,
    pub dir: tempfile::TempDir,
    pub log_path: PathBuf,
    pub args: Vec<String>,
    child: Option<Child>,
}

impl TestServer {
    /// Starts the server with the harness flags plus `flags`.
    pub fn start(flags: &[&str]) -> TestServer {
        Self::start_with(ServerOptions::default().flags(flags))
    }

    pub fn start_with(opts: ServerOptions) -> TestServer {
        let bin = server_bin();
        assert!(
            bin.is_file(),
            "server binary {} not found (build it with `cargo build --release --bins` \
             or set TURNSERVER_BIN)",
            bin.display()
        );
        let ports = PortBlock::claim();
        let dir = tempfile::Builder::new()
            .prefix("turnserver-test-")
            .tempdir()
            .expect("temp dir");
        let log_path = dir.path().join("server.log");
        let mut args: Vec<String> = vec![
            "-n".into(),
            "--listening-ip=127.0.0.1".into(),
            format!("--listening-port={}", ports.listen_port()),
            "--relay-ip=127.0.0.1".into(),
            format!("--min-port={}", ports.min_relay_port()),
            format!("--max-port={}", ports.max_relay_port()),
            "--log-file=stdout".into(),
            "--simple-log".into(),
            format!("--pidfile={}", dir.path().join("pid").display()),
            "--no-tls".into(),
            "--no-dtls".into(),
            // No telnet CLI on the fixed port 5766 (parallel servers would
            // fight over it), and a private SQLite user DB instead of the
            // system-wide default path.
            "--no-cli".into(),
            format!("--userdb={}", dir.path().join("turndb.sqlite").display()),
        ];
        args.extend(opts.flags.iter().cloned());
        if !opts.newer_flags.is_empty() {
            let old_coturn = matches!(server_coturn_version(), Some((4, minor)) if minor < 16);
            if !old_coturn {
                args.extend(opts.newer_flags.iter().cloned());
            }
        }
        let log = File::create(&log_path).expect("create server log");
        let log2 = log.try_clone().expect("dup server log");
        let child = Command::new(&bin)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = TestServer {
            ports,
            dir,
            log_path,
            args,
            child: Some(child),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let addr = self.addr();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "server exited before it was ready ({status}); args: {:?}\n--- log ---\n{}",
                        self.args,
                        self.log()
                    );
                }
            }
            if stun_probe(addr, Duration::from_millis(500)) {
                return;
            }
            // --no-stun ignores Binding: the TCP listener answering will do.
            if self.args.iter().any(|a| a == "--no-stun")
                && std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "server did not answer a STUN Binding request on {addr} within {:?}; \
                     args: {:?}\n--- log ---\n{}",
                    READY_TIMEOUT,
                    self.args,
                    self.log()
                );
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.ports.listen_port()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Everything the server wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            s = String::from_utf8_lossy(&bytes).into_owned();
        }
        s
    }

    /// The last `n` lines of the server log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits up to `timeout` for the server to exit by itself (CLI `stop`,
    /// drain); its exit status, or `None` while it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after [`STOP_GRACE`]) and
    /// returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        Some(terminate(&mut child, STOP_GRACE))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- server args: {:?}\n--- last server log lines ({}):\n{}",
                self.args,
                self.log_path.display(),
                self.log_tail(60)
            );
        }
    }
}

/// SIGTERM to the child's PID, wait up to `grace`, then SIGKILL and reap.
pub fn terminate(child: &mut Child, grace: Duration) -> ExitStatus {
    if let Ok(Some(st)) = child.try_wait() {
        return st;
    }
    // SAFETY: signalling the PID of a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill(); // SIGKILL to the same PID
    child.wait().expect("wait for killed child")
}

// ------------------------------------------------------------------ external commands

/// Output of [`run_cmd`].
#[derive(Debug)]
pub struct CmdOutput {
    /// `None` when the command had to be killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl CmdOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
    pub fn success(&self) -> bool {
        self.status.map(|s| s.success()).unwrap_or(false)
    }
    /// stdout followed by stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    pub fn describe(&self) -> String {
        format!(
            "status={:?} timed_out={} elapsed={:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.timed_out, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `program args...` with stdin closed, capturing stdout and stderr
/// (through temp files, so a chatty tool never blocks on a full pipe). After
/// `timeout` the process gets SIGTERM, then SIGKILL 1 s later, by its PID.
pub fn run_cmd<S: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[S],
    timeout: Duration,
) -> CmdOutput {
    run_cmd_env(program, args, &[], None, timeout)
}

/// [`run_cmd`] with extra environment variables and an optional working dir.
pub fn run_cmd_env<S: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[S],
    envs: &[(&str, &str)],
    cwd: Option<&Path>,
    timeout: Duration,
) -> CmdOutput {
    let dir = tempfile::Builder::new()
        .prefix("turnserver-cmd-")
        .tempdir()
        .expect("temp dir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = File::create(&out_path).expect("stdout file");
    let err = File::create(&err_path).expect("stderr file");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    if let Some(c) = cwd {
        cmd.current_dir(c);
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let deadline = start + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => panic!("wait for {}: {e}", program.display()),
        }
        if Instant::now() >= deadline {
            timed_out = true;
            terminate(&mut child, Duration::from_secs(1));
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    CmdOutput {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
        timed_out,
        elapsed: start.elapsed(),
    }
}

/// A background helper process (e.g. an echo peer), stopped by PID on drop.
pub struct Background {
    pub name: String,
    child: Option<Child>,
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Background {
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(program: &Path, args: &[S]) -> Background {
        let dir = tempfile::Builder::new()
            .prefix("turnserver-bg-")
            .tempdir()
            .expect("temp dir");
        let log_path = dir.path().join("output.log");
        let log = File::create(&log_path).expect("log file");
        let log2 = log.try_clone().expect("dup log");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Background {
            name: program.display().to_string(),
            child: Some(child),
            log_path,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// Panics if the process has exited already.
    pub fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("{} exited early ({st}):\n{}", self.name, self.log());
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(2));
        }
    }
}

/// Waits until a UDP echo service on 127.0.0.1:`port` echoes a datagram.
pub fn wait_udp_echo(port: u16, timeout: Duration) -> bool {
    wait_echo(SocketAddr::from(([127, 0, 0, 1], port)), timeout)
}

/// Waits until a UDP echo service at `addr` (IPv4 or IPv6 loopback) echoes a datagram.
pub fn wait_echo(addr: SocketAddr, timeout: Duration) -> bool {
    let bind = if addr.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" };
    let Ok(sock) = UdpSocket::bind(bind) else { return false };
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 256];
    let probe = b"turnserver-rs echo probe";
    while Instant::now() < deadline {
        let _ = sock.send_to(probe, addr);
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == addr && &buf[..n] == probe {
                return true;
            }
        }
    }
    false
}

/// The final counters uclient prints.
#[derive(Debug, Default, Clone, Copy)]
pub struct UclientStats {
    pub send_msgs: u64,
    pub recv_msgs: u64,
    pub lost: u64,
    pub lost_pct: f64,
}

/// Parses `start_mclient: tot_send_msgs=N, tot_recv_msgs=M` (the final line,
/// not the per-second `msz=` progress lines) and `Total lost packets K (x%)`.
pub fn parse_uclient(output: &str) -> Option<UclientStats> {
    let mut stats = UclientStats::default();
    let mut have_totals = false;
    let mut have_lost = false;
    for line in output.lines() {
        if let Some(i) = line.find("start_mclient: tot_send_msgs=") {
            let rest = &line[i + "start_mclient: tot_send_msgs=".len()..];
            let (send, rest) = rest.split_once(',')?;
            let recv = rest.trim().strip_prefix("tot_recv_msgs=")?;
            stats.send_msgs = send.trim().parse().ok()?;
            stats.recv_msgs = recv.trim().parse().ok()?;
            have_totals = true;
        } else if let Some(i) = line.find("Total lost packets ") {
            let rest = &line[i + "Total lost packets ".len()..];
            let (k, rest) = rest.split_once(' ')?;
            stats.lost = k.parse().ok()?;
            let pct = rest.trim_start_matches('(').split('%').next()?;
            stats.lost_pct = pct.parse().ok()?;
            have_lost = true;
        }
    }
    (have_totals && have_lost).then_some(stats)
}

/// A self-signed RSA certificate and key for `localhost` in `dir`, made with
/// the `openssl` command (installed by scripts/test.sh): (cert, key).
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let openssl = require_tool("openssl");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = run_cmd(
        &openssl,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-keyout", key.to_str().unwrap_or_default(), "-out", cert.to_str().unwrap_or_default(),
        ],
        Duration::from_secs(30),
    );
    assert!(out.success(), "openssl req failed: {}", out.describe());
    (cert, key)
}

/// A UDP echo peer on 127.0.0.1 in a thread of its own (it ends 30 s after
/// the last datagram).
pub fn echo_peer() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind echo peer");
    let addr = s.local_addr().expect("echo peer address");
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    addr
}

/// `turnutils_peer` echoing on `ips` at `port` (and port+1), started and
/// checked: it answers on every address within 10 s or the test fails.
pub fn start_turnutils_peer(ips: &[&str], port: u16) -> Background {
    let bin = require_tool("turnutils_peer");
    let mut args: Vec<String> = Vec::new();
    for ip in ips {
        args.extend(["-L".to_string(), ip.to_string()]);
    }
    args.extend(["-p".to_string(), port.to_string()]);
    let mut peer = Background::spawn(&bin, &args);
    for ip in ips {
        let addr = SocketAddr::new(ip.parse().expect("peer ip"), port);
        if !wait_echo(addr, Duration::from_secs(10)) {
            peer.assert_running();
            panic!("turnutils_peer on {addr} does not echo:\n{}", peer.log());
        }
    }
    peer
}
