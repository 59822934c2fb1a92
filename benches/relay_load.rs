//! `relay_load`: a TURN-over-UDP load driver for our server and for coturn.
//!
//! It owns the whole experiment: optionally starts the server (and stops it by
//! PID afterwards), runs UDP echo peers, allocates N sessions (each its own UDP
//! socket, 401 dance, Allocate, ChannelBind or CreatePermission), drives
//! ChannelData or Send indications through them at a fixed rate or flat out
//! with a bounded in-flight window, and reports relayed packets per second
//! (echo-peer rx + client rx, as tools/perf counts them), round trips per
//! second, loss, latency and the server's CPU per million relayed packets.
//!
//! It speaks plain TURN (RFC 8656 over UDP, long-term credentials), so it runs
//! against coturn as well. Everything is bounded: a watchdog ends the process
//! at an overall deadline (stopping the server it started), every blocking read
//! has a timeout, and all traffic stays on 127.0.0.1.
//!
//! Run `cargo bench --bench relay_load -- --help` for the options.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket as MioUdp;
use mio::{Events, Interest, Poll, Token};
use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{AttrType, ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const USAGE: &str = "\
relay_load: TURN/UDP load driver (our turnserver or coturn)

  cargo bench --bench relay_load -- [options]

Server (default: start target/release/turnserver of this crate):
  --start-server PATH    spawn PATH -n --listening-ip=127.0.0.1 --listening-port=P ... (see docs/performance.md)
  --server-flags \"...\"   extra flags for the spawned server (split on whitespace)
  --port P               listening port of the spawned server (default: first free of 13478..13577)
  --min-port N --max-port N   relay range of the spawned server (default 14000..15999)
  --server ADDR          use a running server instead (no spawn)
  --server-pid PID       with --server: read CPU/RSS of this process
Load:
  --sessions N           allocations, each on its own UDP socket (default 1)
  --rate PPS             packets per second per session (default: flat out)
  --flat-out             send as fast as the in-flight window allows (default)
  --window N             frames in flight per session (default 256/sessions, at least 8)
  --duration SECS        measured window (default 5; soak default 600)
  --warmup SECS          traffic before the window opens (default 1)
  --size BYTES           application payload per frame, 8..=1400 (default 100)
  --send-indications     Send/Data indications instead of ChannelData
  --threads N            client threads (default 1)
  --peers N              echo peer sockets (default 1; session i uses peer i mod N)
  --peer-threads N       echo threads (default 1)
  --peer ADDR            use an external echo peer (no own peers; relayed = 2 x round trips)
  --user U --password P --realm R   credentials (default load / loadpass / load.test)
  --label NAME           label for the RESULT line (default: ours, coturn or external)
  --refresh SECS         Refresh + ChannelBind/CreatePermission period (default 120)
  --soak                 long run: print a SOAK line every report interval (sessions, sent,
                         received, loss over the interval, server RSS)
  --report-every SECS    soak report interval (default 10)
  --quiet                only the RESULT line
";

// ---------------------------------------------------------------- options

#[derive(Debug, Clone)]
struct Opts {
    server: Option<SocketAddr>,
    server_pid: Option<u32>,
    start_server: Option<String>,
    server_flags: Vec<String>,
    port: Option<u16>,
    min_port: u16,
    max_port: u16,
    sessions: usize,
    rate: Option<f64>,
    window: Option<u32>,
    duration: f64,
    warmup: f64,
    size: usize,
    send_indications: bool,
    threads: usize,
    peers: usize,
    peer_threads: usize,
    peer: Option<SocketAddr>,
    user: String,
    password: String,
    realm: String,
    label: Option<String>,
    soak: bool,
    report_every: f64,
    quiet: bool,
    refresh: f64,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        server: None,
        server_pid: None,
        start_server: None,
        server_flags: Vec::new(),
        port: None,
        min_port: 14000,
        max_port: 15999,
        sessions: 1,
        rate: None,
        window: None,
        duration: 0.0,
        warmup: 1.0,
        size: 100,
        send_indications: false,
        threads: 1,
        peers: 1,
        peer_threads: 1,
        peer: None,
        user: "load".into(),
        password: "loadpass".into(),
        realm: "load.test".into(),
        label: None,
        soak: false,
        report_every: 10.0,
        quiet: false,
        refresh: 120.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        // Accept both `--key value` and `--key=value`.
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: bad value '{v}'"))
        }
        match key.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--server" => o.server = Some(num("--server", val("--server")?)?),
            "--server-pid" => o.server_pid = Some(num("--server-pid", val("--server-pid")?)?),
            "--start-server" => o.start_server = Some(val("--start-server")?),
            "--server-flags" => o.server_flags.extend(val("--server-flags")?.split_whitespace().map(String::from)),
            "--port" => o.port = Some(num("--port", val("--port")?)?),
            "--min-port" => o.min_port = num("--min-port", val("--min-port")?)?,
            "--max-port" => o.max_port = num("--max-port", val("--max-port")?)?,
            "--sessions" => o.sessions = num("--sessions", val("--sessions")?)?,
            "--rate" => o.rate = Some(num("--rate", val("--rate")?)?),
            "--flat-out" => o.rate = None,
            "--window" => o.window = Some(num("--window", val("--window")?)?),
            "--duration" => o.duration = num("--duration", val("--duration")?)?,
            "--warmup" => o.warmup = num("--warmup", val("--warmup")?)?,
            "--size" => o.size = num("--size", val("--size")?)?,
            "--send-indications" => o.send_indications = true,
            "--threads" => o.threads = num("--threads", val("--threads")?)?,
            "--peers" => o.peers = num("--peers", val("--peers")?)?,
            "--peer-threads" => o.peer_threads = num("--peer-threads", val("--peer-threads")?)?,
            "--peer" => o.peer = Some(num("--peer", val("--peer")?)?),
            "--user" => o.user = val("--user")?,
            "--password" => o.password = val("--password")?,
            "--realm" => o.realm = val("--realm")?,
            "--label" => o.label = Some(val("--label")?),
            "--soak" => o.soak = true,
            "--report-every" => o.report_every = num("--report-every", val("--report-every")?)?,
            "--refresh" => o.refresh = num("--refresh", val("--refresh")?)?,
            "--quiet" => o.quiet = true,
            other => return Err(format!("unknown option '{other}' (try --help)")),
        }
    }
    if o.duration <= 0.0 {
        o.duration = if o.soak { 600.0 } else { 5.0 };
    }
    let checks = [
        (o.sessions >= 1 && o.sessions <= 10_000, "--sessions must be 1..=10000"),
        (o.size >= 8 && o.size <= 1400, "--size must be 8..=1400"),
        (o.threads >= 1 && o.threads <= 64, "--threads must be 1..=64"),
        (o.peers >= 1 && o.peers <= 10_000, "--peers must be 1..=10000"),
        (o.peer_threads >= 1 && o.peer_threads <= 64, "--peer-threads must be 1..=64"),
        (o.duration <= 86_400.0, "--duration at most 86400"),
        (o.warmup >= 0.0 && o.warmup <= 60.0, "--warmup must be 0..=60"),
        (o.rate.is_none_or(|r| r > 0.0 && r <= 1e6), "--rate must be in (0, 1e6]"),
        (o.window.is_none_or(|w| (1..=65_536).contains(&w)), "--window must be 1..=65536"),
        (o.refresh >= 1.0 && o.refresh <= 250.0, "--refresh must be 1..=250 (permissions last 300 s)"),
        (o.min_port <= o.max_port, "--min-port above --max-port"),
        (o.report_every >= 0.5 && o.report_every <= 3600.0, "--report-every must be 0.5..=3600"),
        (o.server.is_none() || o.start_server.is_none(), "--server and --start-server exclude each other"),
    ];
    for (ok, msg) in checks {
        if !ok {
            return Err(msg.to_string());
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------- /proc readers

/// utime+stime of `pid` in seconds (all threads), from /proc/PID/stat.
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces: skip past ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Some((ut + st) as f64 / hz)
}

/// A `kB` field (VmRSS, VmHWM) of /proc/PID/status.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

// ---------------------------------------------------------------- server process

/// A server this driver started; stopped (by its PID only) on drop.
struct SpawnedServer {
    child: Child,
    log: std::path::PathBuf,
}

impl SpawnedServer {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill() on the PID of our own child, which has not been reaped
        // (try_wait above returned None), so the PID cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill(); // SIGKILL, same PID
        let _ = self.child.wait();
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn port_free(port: u16) -> bool {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn spawn_server(o: &Opts, path: &str, dir: &std::path::Path) -> Result<(SpawnedServer, SocketAddr), String> {
    let port = match o.port {
        Some(p) => p,
        None => (13478..13578).find(|&p| port_free(p)).ok_or("no free listening port in 13478..13577")?,
    };
    if !port_free(port) {
        return Err(format!("port {port} is busy"));
    }
    let log = dir.join("server.log");
    let logf = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
    let logf2 = logf.try_clone().map_err(|e| format!("log file: {e}"))?;
    let mut cmd = Command::new(path);
    cmd.arg("-n")
        .arg("--listening-ip=127.0.0.1")
        .arg(format!("--listening-port={port}"))
        .arg("--relay-ip=127.0.0.1")
        .arg(format!("--min-port={}", o.min_port))
        .arg(format!("--max-port={}", o.max_port))
        .arg("--allow-loopback-peers")
        .arg("--lt-cred-mech")
        .arg(format!("--user={}:{}", o.user, o.password))
        .arg(format!("--realm={}", o.realm))
        .args(["--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout", "--simple-log"])
        .arg(format!("--pidfile={}", dir.join("server.pid").display()))
        // coturn 4.6.1 otherwise opens the system's database; ours ignores it.
        .arg(format!("--userdb={}", dir.join("userdb.sqlite").display()))
        .args(&o.server_flags)
        .stdin(Stdio::null())
        .stdout(Stdio::from(logf))
        .stderr(Stdio::from(logf2));
    let child = cmd.spawn().map_err(|e| format!("cannot start {path}: {e}"))?;
    let mut srv = SpawnedServer { child, log };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // Ready once a Binding request gets an answer (10 s limit).
    let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    probe.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    let until = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1500];
    while Instant::now() < until {
        if let Ok(Some(st)) = srv.child.try_wait() {
            return Err(format!("server exited at start ({st}); log: {}", tail(&srv.log)));
        }
        let tid = TransactionId(rand_tid());
        let mut req = Vec::new();
        let r = MessageBuilder::new(&mut req, MessageType::new(Method::BINDING, Class::Request), tid).finish();
        let _ = probe.send_to(&req[r], addr);
        if let Ok((n, _)) = probe.recv_from(&mut buf) {
            if Message::parse(&buf[..n]).is_ok_and(|m| m.transaction_id() == tid) {
                return Ok((srv, addr));
            }
        }
    }
    let t = tail(&srv.log);
    srv.stop();
    Err(format!("server did not answer a Binding request within 10 s; log: {t}"))
}

fn tail(p: &std::path::Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

// ---------------------------------------------------------------- small helpers

fn rand_tid() -> [u8; 12] {
    let mut t = [0u8; 12];
    rand::Rng::fill(&mut rand::thread_rng(), &mut t[..]);
    t
}

/// Latency histogram: 1 µs buckets below 10 ms, 100 µs buckets below 1 s.
struct Hist {
    fine: Vec<u64>,
    coarse: Vec<u64>,
    over: u64,
    count: u64,
}

impl Hist {
    fn new() -> Self {
        Hist { fine: vec![0; 10_000], coarse: vec![0; 10_000], over: 0, count: 0 }
    }
    fn record(&mut self, us: u64) {
        self.count += 1;
        if us < 10_000 {
            self.fine[us as usize] += 1;
        } else if us < 1_000_000 {
            self.coarse[(us / 100) as usize] += 1;
        } else {
            self.over += 1;
        }
    }
    fn merge(&mut self, o: &Hist) {
        self.fine.iter_mut().zip(&o.fine).for_each(|(a, b)| *a += b);
        self.coarse.iter_mut().zip(&o.coarse).for_each(|(a, b)| *a += b);
        self.over += o.over;
        self.count += o.count;
    }
    /// The q-quantile in µs (upper edge of its bucket), None when empty.
    fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.fine.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(i as u64 + 1);
            }
        }
        for (i, c) in self.coarse.iter().enumerate().skip(100) {
            seen += c;
            if seen >= target {
                return Some((i as u64 + 1) * 100);
            }
        }
        Some(1_000_000)
    }
}

/// Counters shared between the worker threads and the main thread.
#[derive(Default)]
struct Shared {
    stop_send: AtomicBool,
    stop_all: AtomicBool,
    go: AtomicBool,
    measuring: AtomicBool,
    setup_done: AtomicUsize,
    allocs_ok: AtomicUsize,
    sent: AtomicU64,
    recv: AtomicU64,
    peer_rx: AtomicU64,
    window_resets: AtomicU64,
    refresh_errors: AtomicU64,
    refresh_ok: AtomicU64,
    send_errors: AtomicU64,
}

// ---------------------------------------------------------------- echo peers

fn start_peers(o: &Opts, sh: &Arc<Shared>) -> Result<(Vec<SocketAddr>, Vec<thread::JoinHandle<()>>), String> {
    let mut socks = Vec::new();
    for _ in 0..o.peers {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("peer bind: {e}"))?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        socks.push(s);
    }
    let addrs: Vec<SocketAddr> = socks.iter().filter_map(|s| s.local_addr().ok()).collect();
    if addrs.len() != socks.len() {
        return Err("peer local_addr failed".into());
    }
    let mut groups: Vec<Vec<UdpSocket>> = (0..o.peer_threads).map(|_| Vec::new()).collect();
    for (i, s) in socks.into_iter().enumerate() {
        groups[i % o.peer_threads].push(s);
    }
    let mut handles = Vec::new();
    for g in groups.into_iter().filter(|g| !g.is_empty()) {
        let sh = sh.clone();
        handles.push(thread::spawn(move || {
            if let Err(e) = echo_loop(g, &sh) {
                eprintln!("echo peer thread failed: {e}");
            }
        }));
    }
    Ok((addrs, handles))
}

fn echo_loop(socks: Vec<UdpSocket>, sh: &Shared) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut socks: Vec<MioUdp> = socks.into_iter().map(MioUdp::from_std).collect();
    for (i, s) in socks.iter_mut().enumerate() {
        poll.registry().register(s, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 65_536];
    while !sh.stop_all.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        let mut rx = 0u64;
        for ev in events.iter() {
            let Some(s) = socks.get(ev.token().0) else { continue };
            // Edge-triggered: drain; bounded so one busy socket cannot starve the rest.
            for _ in 0..10_000 {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        rx += 1;
                        let _ = s.send_to(&buf[..n], from);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
            // A socket left readable after the bound gets no new edge: re-arm.
            let _ = poll.registry().reregister(&mut socks[ev.token().0], ev.token(), Interest::READABLE);
        }
        if rx > 0 {
            sh.peer_rx.fetch_add(rx, Ordering::Relaxed);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- TURN client

/// Long-term credential state learned from a 401/438.
#[derive(Clone)]
struct Auth {
    user: String,
    password: String,
    realm: String,
    nonce: String,
    key: [u8; 16],
}

impl Auth {
    fn learn(&mut self, m: &Message<'_>) {
        if let Some(Ok(r)) = m.str_attr(AttrType::REALM) {
            if r != self.realm {
                self.realm = r.to_string();
                self.key = long_term_key(&self.user, &self.realm, &self.password);
            }
        }
        if let Some(Ok(n)) = m.str_attr(AttrType::NONCE) {
            self.nonce = n.to_string();
        }
    }
}

/// Build a request; signed when a nonce is known.
fn request(method: Method, tid: TransactionId, auth: &Auth, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid);
    attrs(&mut b);
    if !auth.nonce.is_empty() {
        b.add_raw(AttrType::USERNAME, auth.user.as_bytes());
        b.add_raw(AttrType::REALM, auth.realm.as_bytes());
        b.add_raw(AttrType::NONCE, auth.nonce.as_bytes());
        b.add_integrity(&auth.key);
    }
    let r = b.finish();
    buf.truncate(r.end);
    buf
}

/// Send a request built by `build` and wait for its answer, retransmitting
/// (4 tries, 500 ms apart). Handles 401/438 by learning the nonce and sending
/// again (at most twice). Returns the answer's class, error code and raw bytes.
fn transact(
    sock: &UdpSocket,
    auth: &mut Auth,
    build: &dyn Fn(TransactionId, &Auth) -> Vec<u8>,
) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 2048];
    for _challenge in 0..3 {
        let tid = TransactionId(rand_tid());
        let req = build(tid, auth);
        let mut answer = None;
        'tries: for _try in 0..4 {
            sock.send(&req).map_err(|e| format!("send: {e}"))?;
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        if let Ok(m) = Message::parse(&buf[..n]) {
                            if m.transaction_id() == tid && matches!(m.class(), Class::Success | Class::Error) {
                                answer = Some(buf[..n].to_vec());
                                break 'tries;
                            }
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
        }
        let raw = answer.ok_or("no answer after 4 tries")?;
        let m = Message::parse(&raw).map_err(|e| format!("answer: {e}"))?;
        if m.class() == Class::Success {
            return Ok(raw);
        }
        let code = m.error_code().and_then(|r| r.ok()).map(|(c, _)| c).unwrap_or(0);
        if code == 401 || code == 438 {
            let had_nonce = !auth.nonce.is_empty() && code == 401;
            auth.learn(&m);
            if had_nonce {
                return Err("401 with credentials (wrong user/password/realm?)".into());
            }
            continue;
        }
        return Err(format!("error {code}"));
    }
    Err("too many challenges".into())
}

/// One allocation in the run phase.
struct Session {
    sock: MioUdp,
    auth: Auth,
    peer: SocketAddr,
    /// Frame to send; the send timestamp is patched in at `ts_at`.
    frame: Vec<u8>,
    ts_at: usize,
    inflight: u32,
    next_send: Instant,
    last_rx: Instant,
    last_refresh: Instant,
    refresh_pending: bool,
}

const CHANNEL: u16 = 0x4000;

fn setup_session(o: &Opts, server: SocketAddr, peer: SocketAddr) -> Result<Session, String> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    sock.connect(server).map_err(|e| format!("connect: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
    let mut auth = Auth {
        user: o.user.clone(),
        password: o.password.clone(),
        realm: o.realm.clone(),
        nonce: String::new(),
        key: long_term_key(&o.user, &o.realm, &o.password),
    };
    let raw = transact(&sock, &mut auth, &|tid, a| {
        request(Method::ALLOCATE, tid, a, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        })
    })
    .map_err(|e| format!("Allocate: {e}"))?;
    let m = Message::parse(&raw).map_err(|e| format!("Allocate answer: {e}"))?;
    match m.xor_address(AttrType::XOR_RELAYED_ADDRESS) {
        Some(Ok(_)) => {}
        _ => return Err("Allocate answer without XOR-RELAYED-ADDRESS".into()),
    }
    bind_peer(&sock, &mut auth, peer, o.send_indications)?;
    let (frame, ts_at) = build_frame(o, peer);
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let now = Instant::now();
    Ok(Session {
        sock: MioUdp::from_std(sock),
        auth,
        peer,
        frame,
        ts_at,
        inflight: 0,
        next_send: now,
        last_rx: now,
        last_refresh: now,
        refresh_pending: false,
    })
}

/// ChannelBind (or CreatePermission for indications) to `peer`.
fn bind_peer(sock: &UdpSocket, auth: &mut Auth, peer: SocketAddr, indications: bool) -> Result<(), String> {
    let what = if indications { "CreatePermission" } else { "ChannelBind" };
    transact(sock, auth, &|tid, a| perm_request(tid, a, peer, indications)).map_err(|e| format!("{what}: {e}"))?;
    Ok(())
}

fn perm_request(tid: TransactionId, a: &Auth, peer: SocketAddr, indications: bool) -> Vec<u8> {
    if indications {
        request(Method::CREATE_PERMISSION, tid, a, |b| {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
    } else {
        request(Method::CHANNEL_BIND, tid, a, |b| {
            let [hi, lo] = CHANNEL.to_be_bytes();
            b.add_raw(AttrType::CHANNEL_NUMBER, &[hi, lo, 0, 0]);
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
    }
}

/// The data frame (ChannelData or Send indication) and the offset of its
/// payload, whose first 8 bytes carry the send time.
fn build_frame(o: &Opts, peer: SocketAddr) -> (Vec<u8>, usize) {
    let payload = vec![0xA5u8; o.size];
    if o.send_indications {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId(rand_tid()));
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        b.add_raw(AttrType::DATA, &payload);
        let r = b.finish();
        buf.truncate(r.end);
        // DATA is the last attribute: its value starts after the padding.
        let at = buf.len() - ((o.size + 3) & !3);
        (buf, at)
    } else {
        let mut buf = Vec::new();
        ChannelData::encode(CHANNEL, &payload, false, &mut buf);
        (buf, 4)
    }
}

/// The application payload of a frame from the server, if it is data.
fn payload_of(raw: &[u8]) -> Option<&[u8]> {
    if ChannelData::is_channel_data(raw) {
        return ChannelData::parse(raw).map(|c| c.data);
    }
    let m = Message::parse(raw).ok()?;
    if m.class() == Class::Indication && m.method() == Method::DATA {
        return m.get(AttrType::DATA);
    }
    None
}

/// What a client thread hands back.
struct ClientReport {
    hist: Hist,
    failures: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn client_thread(
    o: Arc<Opts>,
    sh: Arc<Shared>,
    server: SocketAddr,
    jobs: Vec<(usize, SocketAddr)>,
    epoch: Instant,
    deadline: Instant,
) -> ClientReport {
    let mut rep = ClientReport { hist: Hist::new(), failures: Vec::new() };
    let mut sessions = Vec::new();
    for (i, peer) in jobs {
        if Instant::now() > deadline {
            rep.failures.push(format!("session {i}: setup deadline"));
            continue;
        }
        match setup_session(&o, server, peer) {
            Ok(s) => {
                sh.allocs_ok.fetch_add(1, Ordering::Relaxed);
                sessions.push(s);
            }
            Err(e) => rep.failures.push(format!("session {i}: {e}")),
        }
    }
    sh.setup_done.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = run_sessions(&o, &sh, &mut sessions, &mut rep.hist, epoch, deadline) {
        rep.failures.push(format!("run: {e}"));
    }
    rep
}

fn run_sessions(
    o: &Opts,
    sh: &Shared,
    sessions: &mut [Session],
    hist: &mut Hist,
    epoch: Instant,
    deadline: Instant,
) -> io::Result<()> {
    // Wait for the start signal.
    while !sh.go.load(Ordering::SeqCst) {
        if sh.stop_all.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(1));
    }
    let mut poll = Poll::new()?;
    for (i, s) in sessions.iter_mut().enumerate() {
        poll.registry().register(&mut s.sock, Token(i), Interest::READABLE)?;
    }
    let n_total = o.sessions.max(1);
    let window = o.window.unwrap_or_else(|| (256 / n_total as u32).max(8));
    let interval = o.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let start = Instant::now();
    // Spread the sessions' first sends over one interval so they don't send in lockstep.
    if let Some(iv) = interval {
        let n = sessions.len().max(1) as f64;
        for (k, s) in sessions.iter_mut().enumerate() {
            s.next_send = start + iv.mul_f64(k as f64 / n);
        }
    }
    // Allocation 600 s, permission 300 s: refresh well before either runs out.
    let refresh_every = Duration::from_secs_f64(o.refresh);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 65_536];
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now > deadline || sh.stop_all.load(Ordering::Relaxed) {
            break;
        }
        let sending = !sh.stop_send.load(Ordering::Relaxed);
        if !sending {
            // Let the last frames come back, then stop.
            let until = *drain_until.get_or_insert(now + Duration::from_millis(300));
            if now > until {
                break;
            }
        }
        let mut sent = 0u64;
        let mut earliest = now + Duration::from_millis(5);
        if sending {
            for s in sessions.iter_mut() {
                // A window that is full with nothing back for 200 ms lost its frames.
                if s.inflight >= window && now.duration_since(s.last_rx) > Duration::from_millis(200) {
                    s.inflight = 0;
                    s.last_rx = now;
                    sh.window_resets.fetch_add(1, Ordering::Relaxed);
                }
                if now.duration_since(s.last_refresh) > refresh_every || s.refresh_pending {
                    s.last_refresh = now;
                    s.refresh_pending = false;
                    send_refreshes(s, o.send_indications);
                }
                loop {
                    if s.inflight >= window {
                        break;
                    }
                    if let Some(iv) = interval {
                        if s.next_send > now {
                            earliest = earliest.min(s.next_send);
                            break;
                        }
                        s.next_send += iv;
                        // More than 100 ms behind: skip the backlog instead of bursting.
                        if now.duration_since(s.next_send) > Duration::from_millis(100) {
                            s.next_send = now + iv;
                        }
                    }
                    let ts = now.duration_since(epoch).as_nanos() as u64;
                    s.frame[s.ts_at..s.ts_at + 8].copy_from_slice(&ts.to_le_bytes());
                    match s.sock.send(&s.frame) {
                        Ok(_) => {
                            s.inflight += 1;
                            sent += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            sh.send_errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    if interval.is_none() && sent >= 4096 {
                        break; // go and read
                    }
                }
            }
        }
        if sent > 0 {
            sh.sent.fetch_add(sent, Ordering::Relaxed);
        }
        let timeout = if interval.is_none() && sending && sessions.iter().any(|s| s.inflight < window) {
            Duration::ZERO
        } else {
            earliest.saturating_duration_since(Instant::now()).min(Duration::from_millis(5))
        };
        poll.poll(&mut events, Some(timeout))?;
        let measuring = sh.measuring.load(Ordering::Relaxed);
        let mut got = 0u64;
        let rx_now = Instant::now();
        let now_ns = rx_now.duration_since(epoch).as_nanos() as u64;
        for ev in events.iter() {
            let Some(s) = sessions.get_mut(ev.token().0) else { continue };
            for _ in 0..10_000 {
                let n = match s.sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                };
                let raw = &buf[..n];
                if let Some(p) = payload_of(raw) {
                    got += 1;
                    s.inflight = s.inflight.saturating_sub(1);
                    s.last_rx = rx_now;
                    if measuring {
                        if let Some(ts) = p.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes) {
                            hist.record(now_ns.saturating_sub(ts) / 1000);
                        }
                    }
                } else if let Ok(m) = Message::parse(raw) {
                    // An answer to a refresh.
                    if m.class() == Class::Success {
                        sh.refresh_ok.fetch_add(1, Ordering::Relaxed);
                    } else if m.class() == Class::Error {
                        let code = m.error_code().and_then(|r| r.ok()).map(|(c, _)| c).unwrap_or(0);
                        if code == 438 || code == 401 {
                            s.auth.learn(&m);
                            s.refresh_pending = true;
                        } else {
                            sh.refresh_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            let t = ev.token();
            let _ = poll.registry().reregister(&mut sessions[t.0].sock, t, Interest::READABLE);
        }
        if got > 0 {
            sh.recv.fetch_add(got, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Refresh the allocation and the channel/permission (answers are handled in
/// the receive loop; a 438 sets `refresh_pending` to try again with the new nonce).
fn send_refreshes(s: &mut Session, indications: bool) {
    let refresh = request(Method::REFRESH, TransactionId(rand_tid()), &s.auth, |b| {
        b.add_u32(AttrType::LIFETIME, 600);
    });
    let _ = s.sock.send(&refresh);
    let perm = perm_request(TransactionId(rand_tid()), &s.auth, s.peer, indications);
    let _ = s.sock.send(&perm);
}

// ---------------------------------------------------------------- main

struct Snap {
    t: Instant,
    sent: u64,
    recv: u64,
    peer_rx: u64,
    server_cpu: Option<f64>,
    self_cpu: Option<f64>,
}

fn snap(sh: &Shared, pid: Option<u32>) -> Snap {
    Snap {
        t: Instant::now(),
        sent: sh.sent.load(Ordering::Relaxed),
        recv: sh.recv.load(Ordering::Relaxed),
        peer_rx: sh.peer_rx.load(Ordering::Relaxed),
        server_cpu: pid.and_then(proc_cpu_secs),
        self_cpu: proc_cpu_secs(std::process::id()),
    }
}

fn main() {
    let o = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("relay_load: {e}");
            std::process::exit(2);
        }
    };
    match run(o) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("relay_load: {e}");
            println!("RESULT error=1");
            std::process::exit(1);
        }
    }
}

fn run(o: Opts) -> Result<(), String> {
    let o = Arc::new(o);
    let say = |s: String| {
        if !o.quiet {
            println!("{s}");
        }
    };
    let dir = tempfile::Builder::new().prefix("relay_load.").tempdir().map_err(|e| format!("tempdir: {e}"))?;

    // Server.
    let mut spawned: Option<SpawnedServer> = None;
    let (server, pid, label) = if let Some(addr) = o.server {
        (addr, o.server_pid, o.label.clone().unwrap_or_else(|| "external".into()))
    } else {
        let path = match &o.start_server {
            Some(p) => p.clone(),
            None => {
                let p = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/turnserver");
                if !std::path::Path::new(p).exists() {
                    println!("relay_load: SKIP ({p} not built; cargo build --release --bin turnserver)");
                    return Ok(());
                }
                p.to_string()
            }
        };
        let guess = if path.contains("/usr/") || path.contains("coturn") { "coturn" } else { "ours" };
        let (srv, addr) = spawn_server(&o, &path, dir.path())?;
        say(format!("server: {path} pid {} on {addr} (relay {}..{})", srv.pid(), o.min_port, o.max_port));
        let pid = srv.pid();
        spawned = Some(srv);
        (addr, Some(pid), o.label.clone().unwrap_or_else(|| guess.into()))
    };

    // Overall deadline: setup budget + warmup + window + drain + slack.
    let setup_budget = Duration::from_secs_f64(10.0 + 0.02 * o.sessions as f64);
    let total = setup_budget + Duration::from_secs_f64(o.warmup + o.duration) + Duration::from_secs(10);
    let epoch = Instant::now();
    let deadline = epoch + total;
    {
        // Watchdog: at the hard deadline (5 s after the workers' own), stop the
        // server we started, by PID, and exit.
        let wpid = spawned.as_ref().map(|s| s.pid());
        let hard = total + Duration::from_secs(5);
        thread::spawn(move || {
            thread::sleep(hard);
            eprintln!("relay_load: overall deadline passed, giving up");
            if let Some(p) = wpid {
                // SAFETY: kill() on the PID of the child we spawned; it is still
                // our unreaped child (main has not returned), so the PID is ours.
                unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
            }
            println!("RESULT error=deadline");
            std::process::exit(3);
        });
    }

    let sh = Arc::new(Shared::default());
    let (peer_addrs, peer_handles) = match o.peer {
        Some(p) => (vec![p], Vec::new()),
        None => start_peers(&o, &sh)?,
    };
    if o.peer.is_none() {
        say(format!("echo peers: {} socket(s) on {} thread(s)", peer_addrs.len(), o.peer_threads));
    }

    // Client threads: session i goes to thread i mod T and peer i mod P.
    let threads = o.threads.min(o.sessions);
    let mut jobs: Vec<Vec<(usize, SocketAddr)>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..o.sessions {
        jobs[i % threads].push((i, peer_addrs[i % peer_addrs.len()]));
    }
    let setup_start = Instant::now();
    let setup_deadline = setup_start + setup_budget;
    let mut handles = Vec::new();
    for j in jobs {
        let (o2, sh2) = (o.clone(), sh.clone());
        handles.push(thread::spawn(move || client_thread(o2, sh2, server, j, epoch, deadline)));
    }
    while sh.setup_done.load(Ordering::SeqCst) < threads && Instant::now() < setup_deadline + Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(10));
    }
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let allocs_ok = sh.allocs_ok.load(Ordering::SeqCst);
    say(format!(
        "setup: {allocs_ok}/{} allocations with {} in {setup_secs:.2} s ({:.0}/s)",
        o.sessions,
        if o.send_indications { "CreatePermission" } else { "ChannelBind" },
        allocs_ok as f64 / setup_secs.max(1e-9)
    ));
    if allocs_ok == 0 {
        sh.stop_all.store(true, Ordering::SeqCst);
        let mut why = String::new();
        for h in handles {
            if let Ok(r) = h.join() {
                if let Some(f) = r.failures.first() {
                    why = f.clone();
                }
            }
        }
        for h in peer_handles {
            let _ = h.join();
        }
        let log = spawned.as_ref().map(|s| tail(&s.log)).unwrap_or_default();
        return Err(format!("no allocation succeeded ({why}); server log: {log}"));
    }

    // Traffic.
    sh.go.store(true, Ordering::SeqCst);
    thread::sleep(Duration::from_secs_f64(o.warmup));
    let a = snap(&sh, pid);
    sh.measuring.store(true, Ordering::SeqCst);
    let window_end = a.t + Duration::from_secs_f64(o.duration);
    let report_every = Duration::from_secs_f64(o.report_every);
    if o.soak {
        let rss = pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
        println!(
            "SOAK t=0s sessions={allocs_ok} sent={} received={} server_rss_kb={}",
            a.sent,
            a.recv,
            rss.map_or("na".into(), |v| v.to_string())
        );
    }
    let mut next_line = a.t + report_every;
    let mut prev = snap(&sh, pid);
    // A soak also reports at the window's end when an interval ends there.
    while Instant::now() < window_end || (o.soak && next_line <= window_end) {
        let now = Instant::now();
        if o.soak && now >= next_line {
            let s = snap(&sh, pid);
            let dt = s.t.duration_since(prev.t).as_secs_f64().max(1e-9);
            let loss = loss_pct(s.sent - prev.sent, s.recv - prev.recv);
            let rss = pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
            println!(
                "SOAK t={:.0}s sessions={allocs_ok} sent={} received={} rt_ps={:.0} loss_pct={loss:.3} server_rss_kb={} window_resets={} refresh_ok={} refresh_errors={}",
                s.t.duration_since(a.t).as_secs_f64(),
                s.sent,
                s.recv,
                (s.recv - prev.recv) as f64 / dt,
                rss.map_or("na".into(), |v| v.to_string()),
                sh.window_resets.load(Ordering::Relaxed),
                sh.refresh_ok.load(Ordering::Relaxed),
                sh.refresh_errors.load(Ordering::Relaxed),
            );
            prev = s;
            next_line += report_every;
        }
        let until = window_end.min(next_line);
        thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(200)));
    }
    let b = snap(&sh, pid);
    sh.measuring.store(false, Ordering::SeqCst);
    let rss_kb = pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
    let hwm_kb = pid.and_then(|p| proc_status_kb(p, "VmHWM:"));
    sh.stop_send.store(true, Ordering::SeqCst);

    let mut hist = Hist::new();
    let mut failures = Vec::new();
    for h in handles {
        match h.join() {
            Ok(r) => {
                hist.merge(&r.hist);
                failures.extend(r.failures);
            }
            Err(_) => failures.push("client thread panicked".into()),
        }
    }
    sh.stop_all.store(true, Ordering::SeqCst);
    for h in peer_handles {
        let _ = h.join();
    }
    let server_alive = spawned.as_mut().map(|s| matches!(s.child.try_wait(), Ok(None)));
    if let Some(mut s) = spawned.take() {
        s.stop();
    }

    // Figures.
    let secs = b.t.duration_since(a.t).as_secs_f64().max(1e-9);
    let d_sent = b.sent - a.sent;
    let d_recv = b.recv - a.recv;
    let d_peer = b.peer_rx - a.peer_rx;
    let relayed = if o.peer.is_some() { 2 * d_recv } else { d_peer + d_recv };
    let relayed_pps = relayed as f64 / secs;
    let total_sent = sh.sent.load(Ordering::Relaxed);
    let total_recv = sh.recv.load(Ordering::Relaxed);
    let loss = loss_pct(total_sent, total_recv);
    let cpu = match (a.server_cpu, b.server_cpu) {
        (Some(x), Some(y)) => Some(y - x),
        _ => None,
    };
    let self_cpu = match (a.self_cpu, b.self_cpu) {
        (Some(x), Some(y)) => Some((y - x) / secs),
        _ => None,
    };
    let fmt = |v: Option<f64>, prec: usize| v.map_or("na".to_string(), |x| format!("{x:.prec$}"));
    let cpu_per_mpkt = cpu.filter(|_| relayed > 0).map(|c| c / (relayed as f64 / 1e6));
    let p50 = hist.quantile(0.50);
    let p99 = hist.quantile(0.99);
    let mode = if o.send_indications { "indication" } else { "channel" };
    let rate = o.rate.map_or("flat".to_string(), |r| format!("{r}"));

    for f in failures.iter().take(5) {
        say(format!("WARNING {f}"));
    }
    if failures.len() > 5 {
        say(format!("WARNING ... and {} more", failures.len() - 5));
    }
    if server_alive == Some(false) {
        say("WARNING the server exited during the run".into());
    }
    let resets = sh.window_resets.load(Ordering::Relaxed);
    say(format!(
        "{label}: {allocs_ok} session(s), {mode}, {} B payload, rate {rate}, window {secs:.2} s",
        o.size
    ));
    say(format!(
        "  relayed {:.1}k pps (both directions), {:.1}k round trips/s, offered {:.1}k/s, loss {loss:.3}% ({} sent, {} received in all)",
        relayed_pps / 1e3,
        d_recv as f64 / secs / 1e3,
        d_sent as f64 / secs / 1e3,
        total_sent,
        total_recv
    ));
    say(format!(
        "  latency p50 {} us, p99 {} us ({} samples)",
        p50.map_or("na".into(), |v| v.to_string()),
        p99.map_or("na".into(), |v| v.to_string()),
        hist.count
    ));
    say(format!(
        "  server cpu {} cores, {} CPU-s per million relayed packets, RSS {} kB (peak {} kB); driver cpu {} cores",
        fmt(cpu.map(|c| c / secs), 3),
        fmt(cpu_per_mpkt, 2),
        rss_kb.map_or("na".into(), |v| v.to_string()),
        hwm_kb.map_or("na".into(), |v| v.to_string()),
        fmt(self_cpu, 3),
    ));
    println!(
        "RESULT label={label} sessions={} allocs={allocs_ok} mode={mode} size={} rate={rate} secs={secs:.2} \
         relayed_pps={relayed_pps:.0} roundtrips_ps={:.0} offered_pps={:.0} loss_pct={loss:.3} \
         lat_p50_us={} lat_p99_us={} server_cpu={} server_cpu_s_per_Mpkt={} server_rss_kb={} \
         driver_cpu={} window_resets={resets} refresh_errors={} setup_allocs_per_s={:.0}",
        o.sessions,
        o.size,
        d_recv as f64 / secs,
        d_sent as f64 / secs,
        p50.map_or("na".into(), |v| v.to_string()),
        p99.map_or("na".into(), |v| v.to_string()),
        fmt(cpu.map(|c| c / secs), 3),
        fmt(cpu_per_mpkt, 2),
        rss_kb.map_or("na".into(), |v| v.to_string()),
        fmt(self_cpu, 3),
        sh.refresh_errors.load(Ordering::Relaxed),
        allocs_ok as f64 / setup_secs.max(1e-9),
    );
    drop(dir);
    Ok(())
}

/// 1 − received/sent in percent, clamped at 0.
fn loss_pct(sent: u64, recv: u64) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    (100.0 * (1.0 - recv as f64 / sent as f64)).max(0.0)
}
