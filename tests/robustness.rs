//! Robustness of the `turnserver` binary under abuse (issue 7): floods of
//! malformed datagrams and of spoofed sources, allocation churn, relay port
//! and descriptor exhaustion, and a short soak of the load driver.
//!
//! Every test starts its own server on loopback, measures the server's RSS
//! (`VmRSS`) and CPU time from /proc at the points the issue names and asserts
//! the bounds. Traffic is bounded (a fixed number of datagrams or
//! cycles) and every wait has a timeout. The figures each test prints
//! (`ROBUSTNESS ...` lines, see `--nocapture`) are recorded in
//! docs/reliability.md.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::turn_tcp::TcpClient;
use common::turn_udp::{self, build_request, code, new_tid, nonce_of, rss_kb, send_batch, udp_transport, UdpTurn, LT_FLAGS};
use common::{PortBlock, TestServer};
use turnserver::stun::{AttrType, ChannelData, Message, MessageBuilder, Method};

fn lt_server(extra: &[&str]) -> TestServer {
    let mut flags: Vec<&str> = LT_FLAGS.to_vec();
    flags.extend_from_slice(extra);
    TestServer::start(&flags)
}

fn pid(s: &TestServer) -> u32 {
    s.pid().unwrap()
}

/// Asserts the server process is still running.
fn assert_alive(s: &TestServer) {
    let p = pid(s);
    let state = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
    let st = state.rfind(')').and_then(|i| state[i + 1..].split_whitespace().next()).unwrap_or("gone").to_string();
    assert!(st != "Z" && st != "gone", "server {p} is not running (state {st}):\n{}", s.log_tail(40));
}

// ------------------------------------------------------------------ invalid flood

/// 256 malformed datagrams of the kinds a fuzzer or a broken client sends:
/// random bytes, truncated headers, lengths that lie, bad cookies, attribute
/// lengths past the end, ChannelData that claims more than it carries.
fn junk_templates() -> Vec<Vec<u8>> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..256)
        .map(|i| {
            let r = rnd();
            match i % 6 {
                // Random bytes, 1..200 long.
                0 => (0..1 + r % 200).map(|_| rnd() as u8).collect(),
                // A STUN-looking header cut short.
                1 => {
                    let mut d = vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42];
                    d.truncate(1 + (r % 8) as usize);
                    d
                }
                // A Binding request whose length field claims more than is there.
                2 => {
                    let mut d = vec![0x00, 0x01, 0x01, 0x00, 0x21, 0x12, 0xA4, 0x42];
                    d.extend((0..12).map(|_| rnd() as u8));
                    d.extend([0x00, 0x06, 0x00, 0x04, b'u', b's']);
                    d
                }
                // A wrong magic cookie.
                3 => {
                    let mut d = vec![0x00, 0x03, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF];
                    d.extend((0..12).map(|_| rnd() as u8));
                    d
                }
                // An Allocate whose attribute length runs past the message.
                4 => {
                    let mut d = vec![0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42];
                    d.extend((0..12).map(|_| rnd() as u8));
                    d.extend([0x00, 0x19, 0x00, 0xF0, 17, 0, 0, 0]);
                    d
                }
                // ChannelData on an unbound channel claiming 1000 bytes.
                _ => {
                    let mut d = vec![0x40, (r % 256) as u8, 0x03, 0xE8];
                    d.extend((0..(r % 64)).map(|_| rnd() as u8));
                    d
                }
            }
        })
        .collect()
}

/// What the good client saw while the flood ran.
#[derive(Default, Debug)]
struct ProbeStats {
    probes: u64,
    failures: u64,
    max_latency: Duration,
}

/// Every 20 ms: a Binding transaction and a ChannelData round trip through
/// the allocation, each retransmitted every 100 ms and failed after 2 s.
fn good_client(mut c: UdpTurn, stop: Arc<AtomicBool>) -> ProbeStats {
    let mut st = ProbeStats::default();
    let limit = Duration::from_secs(2);
    let rto = Duration::from_millis(100);
    let mut buf = vec![0u8; 2048];
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        // Binding.
        let m = build_request(Method::BINDING, new_tid(), None, |_| {});
        let t0 = Instant::now();
        match c.transact_rto(&m, rto, limit) {
            Some(a) if code(&a) == 0 => st.max_latency = st.max_latency.max(t0.elapsed()),
            _ => st.failures += 1,
        }
        st.probes += 1;
        // ChannelData round trip through the echo peer.
        let payload = format!("probe-{i}");
        let mut f = Vec::new();
        ChannelData::encode(0x4000, payload.as_bytes(), false, &mut f);
        let t0 = Instant::now();
        let mut ok = false;
        'round: while t0.elapsed() < limit {
            c.sock.send_to(&f, c.server).unwrap();
            let resend = Instant::now() + rto;
            while Instant::now() < resend {
                c.sock.set_read_timeout(Some(resend.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)))).unwrap();
                let Ok((n, _)) = c.sock.recv_from(&mut buf) else { break };
                if ChannelData::parse(&buf[..n]).is_some_and(|cd| cd.data == payload.as_bytes()) {
                    ok = true;
                    break 'round;
                }
            }
        }
        if ok {
            st.max_latency = st.max_latency.max(t0.elapsed());
        } else {
            st.failures += 1;
        }
        st.probes += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    st
}

#[test]
fn invalid_flood_keeps_service_and_memory() {
    const TOTAL: usize = 1_000_000;
    // Paced so the flood leaves CPU for the server on a 2-core machine.
    const PPS: f64 = 200_000.0;
    const BATCH: usize = 64;
    let s = lt_server(&[]);
    let peer = common::echo_peer();
    let mut good = UdpTurn::new(s.addr());
    good.allocate().expect("allocate before the flood");
    assert_eq!(good.bind_channel(0x4000, peer), 0);
    let warm = Arc::new(AtomicBool::new(false));
    let w2 = warm.clone();
    let warm_client = UdpTurn { sock: good.sock.try_clone().unwrap(), server: s.addr(), nonce: good.nonce.clone() };
    // A short warm-up of the same probes, so "before" includes their buffers.
    let h = std::thread::spawn(move || good_client(warm_client, w2));
    std::thread::sleep(Duration::from_millis(300));
    warm.store(true, Ordering::Relaxed);
    assert_eq!(h.join().unwrap().failures, 0);
    let rss_before = rss_kb(pid(&s));

    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let prober = std::thread::spawn(move || good_client(good, stop2));

    let junk = junk_templates();
    let socks: Vec<UdpSocket> = (0..4).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    let start = Instant::now();
    let (mut offered, mut sent) = (0usize, 0usize);
    let mut k = 0usize;
    while offered < TOTAL {
        let n = BATCH.min(TOTAL - offered);
        let batch: Vec<&[u8]> = (0..n).map(|j| junk[(k + j) % junk.len()].as_slice()).collect();
        k += n;
        sent += send_batch(&socks[(offered / BATCH) % socks.len()], s.addr(), &batch);
        offered += n;
        let due = start + Duration::from_secs_f64(offered as f64 / PPS);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        assert!(start.elapsed() < Duration::from_secs(40), "flood too slow: {offered} datagrams in 40 s");
    }
    let flood_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let probes = prober.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_alive(&s);
    let rss_after = rss_kb(pid(&s));
    println!(
        "ROBUSTNESS invalid_flood datagrams={sent} secs={flood_secs:.2} rate_pps={:.0} probes={} probe_failures={} \
         max_probe_latency_ms={} rss_before_kb={rss_before} rss_after_kb={rss_after}",
        sent as f64 / flood_secs,
        probes.probes,
        probes.failures,
        probes.max_latency.as_millis()
    );
    assert_eq!(sent, TOTAL, "the kernel took fewer datagrams than offered");
    assert!(probes.probes >= 20, "too few probes during the flood: {probes:?}");
    assert_eq!(probes.failures, 0, "the good client went unanswered during the flood: {probes:?}");
    assert!(rss_after.abs_diff(rss_before) <= 1024, "RSS {rss_before} kB -> {rss_after} kB after the flood");
    // Still serving after it.
    let mut c = UdpTurn::new(s.addr());
    assert!(c.allocate().is_ok());
}

// ------------------------------------------------------------------ spoofed sources

/// The `i`-th spoofed source: 127.(base + i / 65536).(i / 256 % 256).(i % 256).
fn spoofed_ip(base: u8, i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, base + (i >> 16) as u8, (i >> 8) as u8, i as u8))
}

#[derive(Default, Debug)]
struct SpoofStats {
    binding_ok: u64,
    unauthorized: u64,
    other: u64,
}

/// From each of `n` addresses (a socket bound there, at most `window` open at
/// once, `rate` new sources per second): one Binding request and one
/// unauthenticated Allocate, answers read without waiting for each.
fn spoof_sources(server: SocketAddr, base: u8, n: u32, window: usize, rate: f64) -> SpoofStats {
    let start = Instant::now();
    let mut st = SpoofStats::default();
    let mut open: VecDeque<UdpSocket> = VecDeque::with_capacity(window + 1);
    let mut buf = [0u8; 1500];
    let tally = |st: &mut SpoofStats, sock: &UdpSocket, buf: &mut [u8]| {
        while let Ok(len) = sock.recv(buf) {
            let Ok(m) = Message::parse(&buf[..len]) else {
                st.other += 1;
                continue;
            };
            match (m.method(), code(&buf[..len])) {
                (Method::BINDING, 0) => st.binding_ok += 1,
                (Method::ALLOCATE, 401) => st.unauthorized += 1,
                _ => st.other += 1,
            }
        }
    };
    for i in 0..n {
        let sock = UdpSocket::bind(SocketAddr::new(spoofed_ip(base, i), 0)).unwrap();
        sock.set_nonblocking(true).unwrap();
        sock.connect(server).unwrap();
        let b = build_request(Method::BINDING, new_tid(), None, |_| {});
        let a = build_request(Method::ALLOCATE, new_tid(), None, udp_transport);
        let _ = sock.send(&b);
        let _ = sock.send(&a);
        open.push_back(sock);
        if open.len() > window {
            let old = open.pop_front().unwrap();
            tally(&mut st, &old, &mut buf);
        }
        if i % 64 == 63 {
            let due = start + Duration::from_secs_f64(f64::from(i + 1) / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for sock in open {
        tally(&mut st, &sock, &mut buf);
    }
    st
}

#[test]
fn spoofed_source_flood_creates_no_state() {
    const SOURCES: u32 = 100_000;
    const RELAY_PORTS: u16 = 20;
    // 1,024 sockets open at once, each for ~40 ms: answers have time to come.
    const WINDOW: usize = 1024;
    const RATE: f64 = 25_000.0;
    raise_nofile(WINDOW as u64 + 1024);
    let block = PortBlock::claim();
    let (lo, hi) = (block.min_relay_port(), block.min_relay_port() + RELAY_PORTS - 1);
    drop(block);
    let min = format!("--min-port={lo}");
    let max = format!("--max-port={hi}");
    let s = lt_server(&[&min, &max]);
    // Warm-up: the answer paths' buffers exist before "before" is taken.
    let warm = spoof_sources(s.addr(), 100, 2_000, WINDOW, RATE);
    assert!(warm.unauthorized > 0, "{warm:?}");
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kb(pid(&s));

    let start = Instant::now();
    let st = spoof_sources(s.addr(), 10, SOURCES, WINDOW, RATE);
    let secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    assert_alive(&s);
    let rss_after = rss_kb(pid(&s));
    println!(
        "ROBUSTNESS spoofed_flood sources={SOURCES} requests={} secs={secs:.2} rate_rps={:.0} binding_ok={} \
         unauthorized_401={} other={} rss_before_kb={rss_before} rss_after_kb={rss_after}",
        2 * SOURCES,
        2.0 * SOURCES as f64 / secs,
        st.binding_ok,
        st.unauthorized,
        st.other
    );
    assert_eq!(st.other, 0, "unexpected answers to unauthenticated requests: {st:?}");
    // Answers go missing only when a socket buffer overflows or the answer
    // comes after its socket was closed; most must arrive.
    assert!(st.unauthorized + st.binding_ok >= u64::from(SOURCES), "most requests went unanswered: {st:?}");
    assert!(rss_after < rss_before + 1024, "RSS grew {rss_before} kB -> {rss_after} kB");
    // No allocation was made for any of them...
    assert!(!s.log().contains(": new, realm="), "an allocation before authentication:\n{}", s.log_tail(20));
    // ...and none holds a relay port: every port of the range can still be
    // allocated by authenticated clients from fresh addresses.
    let mut clients = Vec::new();
    for i in 0..u32::from(RELAY_PORTS) {
        let mut c = UdpTurn::bind(s.addr(), spoofed_ip(20, i + 1));
        let r = c.allocate();
        assert!(r.is_ok(), "authenticated allocation {i} of {RELAY_PORTS} after the flood: {r:?}");
        clients.push(c);
    }
    assert_eq!(s.log().matches(": new, realm=").count(), usize::from(RELAY_PORTS));
}

// ------------------------------------------------------------------ churn

/// One churn client: allocate, delete (Refresh 0), again, on the same
/// socket for `PORT_REUSE` cycles, then on a new one.
struct ChurnSlot {
    sock: mio::net::UdpSocket,
    nonce: Option<String>,
    allocating: bool,
    msg: Vec<u8>,
    sent_at: Instant,
    cycles_here: u32,
}

#[derive(Default, Debug)]
struct ChurnStats {
    cycles: u64,
    mismatch_437: u64,
    errors: u64,
    retransmits: u64,
    sockets: u64,
    last_error: Option<u16>,
}

impl ChurnSlot {
    fn new(poll: &mio::Poll, token: usize) -> ChurnSlot {
        let mut sock = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry().register(&mut sock, mio::Token(token), mio::Interest::READABLE).unwrap();
        ChurnSlot { sock, nonce: None, allocating: true, msg: Vec::new(), sent_at: Instant::now(), cycles_here: 0 }
    }

    fn send(&mut self, server: SocketAddr) {
        let method = if self.allocating { Method::ALLOCATE } else { Method::REFRESH };
        let allocating = self.allocating;
        self.msg = build_request(method, new_tid(), self.nonce.as_deref(), |b: &mut MessageBuilder| {
            if allocating {
                udp_transport(b);
            } else {
                b.add_u32(AttrType::LIFETIME, 0);
            }
        });
        self.sent_at = Instant::now();
        let _ = self.sock.send_to(&self.msg, server);
    }
}

#[test]
fn allocation_churn_reuses_ports_without_437_or_growth() {
    const CYCLES: u64 = 200_000;
    const SLOTS: usize = 32;
    const PORT_REUSE: u32 = 100;
    const RTO: Duration = Duration::from_millis(500);
    let s = lt_server(&[]);
    let server = s.addr();
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(256);
    let mut slots: Vec<ChurnSlot> = (0..SLOTS).map(|t| ChurnSlot::new(&poll, t)).collect();
    let mut st = ChurnStats { sockets: SLOTS as u64, ..Default::default() };
    for sl in slots.iter_mut() {
        sl.send(server);
    }
    let start = Instant::now();
    let mut rss_10k = None;
    let mut rss_trace = Vec::new();
    let mut secs_10k = 0.0;
    let mut buf = [0u8; 2048];
    let mut in_flight = SLOTS;
    while in_flight > 0 {
        assert!(start.elapsed() < Duration::from_secs(150), "churn too slow: {st:?}");
        poll.poll(&mut events, Some(Duration::from_millis(50))).unwrap();
        for ev in events.iter() {
            let t = ev.token().0;
            loop {
                let sl = &mut slots[t];
                let Ok((n, _)) = sl.sock.recv_from(&mut buf) else { break };
                if n < 20 || buf[8..20] != sl.msg[8..20] {
                    continue; // a late answer to a retransmission
                }
                let c = code(&buf[..n]);
                if let Some(nc) = nonce_of(&buf[..n]) {
                    sl.nonce = Some(nc);
                }
                let mut next = true;
                match (sl.allocating, c) {
                    (true, 0) => sl.allocating = false,
                    (_, 401 | 438) => {} // (new) nonce: the same request again
                    (true, 437) => {
                        st.mismatch_437 += 1;
                        st.last_error = Some(437);
                        sl.allocating = false; // clean up and carry on
                    }
                    // A retransmitted Refresh 0 may find the allocation gone.
                    (false, 0 | 437) => {
                        st.cycles += 1;
                        sl.cycles_here += 1;
                        sl.allocating = true;
                        if st.cycles % 20_000 == 0 {
                            rss_trace.push(format!("{}k:{}", st.cycles / 1000, rss_kb(pid(&s))));
                        }
                        if st.cycles == 10_000 {
                            std::thread::sleep(Duration::from_millis(200));
                            rss_10k = Some(rss_kb(pid(&s)));
                            secs_10k = start.elapsed().as_secs_f64();
                        }
                        if st.cycles + in_flight as u64 > CYCLES {
                            in_flight -= 1;
                            next = false;
                        } else if sl.cycles_here >= PORT_REUSE {
                            // A fresh source port now and then.
                            let _ = poll.registry().deregister(&mut sl.sock);
                            *sl = ChurnSlot::new(&poll, t);
                            st.sockets += 1;
                        }
                    }
                    (_, e) => {
                        st.errors += 1;
                        st.last_error = Some(e);
                        if st.errors > 100 {
                            panic!("too many errors in churn: {st:?}\n{}", s.log_tail(20));
                        }
                    }
                }
                if next {
                    slots[t].send(server);
                } else {
                    slots[t].msg.clear();
                    break;
                }
            }
        }
        for sl in slots.iter_mut().filter(|sl| !sl.msg.is_empty() && sl.sent_at.elapsed() >= RTO) {
            st.retransmits += 1;
            sl.sent_at = Instant::now();
            let _ = sl.sock.send_to(&sl.msg, server);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    assert_alive(&s);
    let rss_end = rss_kb(pid(&s));
    let rss_10k = rss_10k.unwrap();
    println!(
        "ROBUSTNESS churn cycles={} secs={secs:.2} cycles_ps={:.0} sockets={} retransmits={} errors={} mismatch_437={} \
         rss_after_10k_kb={rss_10k} (at {secs_10k:.1} s) rss_end_kb={rss_end} rss_trace_kb={}",
        st.cycles,
        st.cycles as f64 / secs,
        st.sockets,
        st.retransmits,
        st.errors,
        st.mismatch_437,
        rss_trace.join(",")
    );
    assert_eq!(st.cycles, CYCLES);
    assert_eq!(st.mismatch_437, 0, "437 on reuse of a 5-tuple: {st:?}");
    assert_eq!(st.errors, 0, "{st:?}");
    assert!(
        (rss_end as f64) <= rss_10k as f64 * 1.05,
        "RSS {rss_10k} kB after 10,000 cycles, {rss_end} kB after {CYCLES}"
    );
}

// ------------------------------------------------------------------ port exhaustion

#[test]
fn port_exhaustion_gives_508_and_ports_come_back() {
    const PORTS: u16 = 100;
    let block = PortBlock::claim();
    let (lo, hi) = (block.min_relay_port(), block.min_relay_port() + PORTS - 1);
    drop(block);
    let min = format!("--min-port={lo}");
    let max = format!("--max-port={hi}");
    let s = lt_server(&[&min, &max]);
    let start = Instant::now();
    let mut clients: Vec<UdpTurn> = Vec::new();
    let mut ports = std::collections::HashSet::new();
    for i in 0..PORTS {
        let mut c = UdpTurn::new(s.addr());
        let relayed = c.allocate().unwrap_or_else(|e| panic!("allocation {i} of {PORTS}: error {e}"));
        assert!((lo..=hi).contains(&relayed.port()), "relay port {relayed} outside {lo}..={hi}");
        assert!(ports.insert(relayed.port()), "relay port {relayed} handed out twice");
        clients.push(c);
    }
    let mut extra = UdpTurn::new(s.addr());
    assert_eq!(extra.allocate(), Err(508), "allocation {} of a {PORTS}-port range", PORTS + 1);
    // Ending 10 allocations gives 10 ports back, and no more.
    for c in clients.iter_mut().take(10) {
        assert_eq!(c.refresh(0), 0);
    }
    clients.drain(..10);
    for i in 0..10 {
        let mut c = UdpTurn::new(s.addr());
        assert!(c.allocate().is_ok(), "allocation {i} after freeing 10 ports");
        clients.push(c);
    }
    let mut extra = UdpTurn::new(s.addr());
    assert_eq!(extra.allocate(), Err(508));
    // All of them back.
    for c in clients.iter_mut() {
        assert_eq!(c.refresh(0), 0);
    }
    clients.clear();
    for i in 0..PORTS {
        let mut c = UdpTurn::new(s.addr());
        assert!(c.allocate().is_ok(), "allocation {i} after freeing every port");
        clients.push(c);
    }
    println!("ROBUSTNESS port_exhaustion ports={PORTS} secs={:.2}", start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------ descriptor exhaustion

/// A TCP connection that sent a Binding request; `answered` once it got one.
fn tcp_binding(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut t = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
    let m = build_request(Method::BINDING, new_tid(), None, |_| {});
    t.write_all(&m).unwrap();
    (t, m)
}

/// Waits up to `timeout` for the Binding answer on `t`.
fn tcp_answered(t: &mut TcpStream, req: &[u8], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        t.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)))).unwrap();
        match t.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.len() >= 20 && got[8..20] == req[8..20] {
            return true;
        }
    }
    false
}

/// Raises this process's soft RLIMIT_NOFILE to at least `want` (within the hard limit).
fn raise_nofile(want: u64) {
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn set_nofile(pid: u32, limit: u64) {
    let r = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: prlimit on our own child's PID with a valid rlimit.
    let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, &r, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn descriptor_exhaustion_no_busy_loop_and_recovery() {
    const HEADROOM: usize = 16;
    let s = lt_server(&["--relay-threads=1"]);
    let p = pid(&s);
    let addr = s.addr();
    // Room for HEADROOM more descriptors than the server has now.
    let base = turn_udp::open_fds(p);
    set_nofile(p, (base + HEADROOM) as u64);

    let mut accepted = Vec::new();
    let mut queued = Vec::new();
    for _ in 0..(HEADROOM + 20) {
        let (mut t, m) = tcp_binding(addr);
        if tcp_answered(&mut t, &m, Duration::from_millis(400)) {
            accepted.push(t);
        } else {
            queued.push((t, m));
            if queued.len() >= 4 {
                break;
            }
        }
    }
    assert!(queued.len() >= 4, "accept never failed: {} connections served", accepted.len());
    assert!(accepted.len() + 4 >= HEADROOM - 4, "only {} connections were served", accepted.len());
    // A UDP allocation needs a descriptor too: refused cleanly (508), no hang.
    let mut u = UdpTurn::new(addr);
    let udp_at_limit = u.allocate();
    assert!(matches!(udp_at_limit, Err(508) | Err(486) | Err(500)), "UDP allocate at the limit: {udp_at_limit:?}");

    // Saturated: the server must not spin.
    let c0 = turn_udp::cpu_secs(p);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = (turn_udp::cpu_secs(p) - c0) / t0.elapsed().as_secs_f64();
    let warnings = s.log().lines().filter(|l| l.contains("accept on") && l.contains("failed")).count();

    // Descriptors free up: the queued connections are served without any
    // new connection arriving, then new clients allocate.
    let served = accepted.len();
    drop(accepted);
    let t1 = Instant::now();
    for (i, (t, m)) in queued.iter_mut().enumerate() {
        assert!(tcp_answered(t, m, Duration::from_secs(5)), "queued connection {i} not served after descriptors freed");
    }
    let resumed = t1.elapsed();
    let mut tc = TcpClient::connect(addr);
    let a = tc.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(common::turn_tcp::code(&a), 0, "TCP allocate after recovery");
    assert!(u.allocate().is_ok(), "UDP allocate after recovery");
    println!(
        "ROBUSTNESS fd_exhaustion base_fds={base} limit={} served_before_limit={} queued={} udp_allocate_at_limit={udp_at_limit:?} \
         cpu_while_saturated={:.1}% accept_warnings={warnings} resumed_ms={}",
        base + HEADROOM,
        served,
        queued.len(),
        cpu * 100.0,
        resumed.as_millis()
    );
    assert!(cpu < 0.20, "server used {:.0}% of a core while out of descriptors", cpu * 100.0);
    assert!(warnings <= 2, "{warnings} accept warnings: one per episode expected\n{}", s.log_tail(20));
}

// ------------------------------------------------------------------ soak

/// The `relay_load` bench executable: `RELAY_LOAD_BIN` (scripts/test.sh
/// sets it from cargo's build messages), else the newest one in
/// target/release/deps, else built by cargo here. A nested `cargo build`
/// from inside `cargo test` can see a different environment and rebuild the
/// whole crate, so it is the last resort.
fn relay_load_exe() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("RELAY_LOAD_BIN").map(std::path::PathBuf::from) {
        if p.is_file() {
            return p;
        }
    }
    let deps = common::repo_root().join("target/release/deps");
    let newest = std::fs::read_dir(&deps).ok().and_then(|d| {
        d.filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with("relay_load-") && !name.contains('.')
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .map(|(_, p)| p)
    });
    if let Some(p) = newest {
        return p;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| option_env!("CARGO").unwrap_or("cargo").to_string());
    let out = common::run_cmd_env(
        std::path::Path::new(&cargo),
        // The same build as scripts/test.sh's `cargo build --release --benches`,
        // so after it this is a no-op (a narrower selection could resolve
        // features differently and rebuild the crate).
        &["build", "--release", "--benches", "--message-format=json"],
        &[],
        Some(&common::repo_root()),
        Duration::from_secs(1200),
    );
    assert!(out.success(), "cargo build --bench relay_load failed:\n{}", out.stderr);
    out.stdout
        .lines()
        .filter(|l| l.contains("\"name\":\"relay_load\""))
        .find_map(|l| {
            let i = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let j = l[i..].find('"')?;
            Some(std::path::PathBuf::from(&l[i..i + j]))
        })
        .expect("no relay_load executable in cargo's output")
}

/// `key=value` of a driver line.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.trim_end_matches('s').parse().ok())
}

#[test]
fn soak_short_form() {
    let exe = relay_load_exe();
    let block = PortBlock::claim();
    let args: Vec<String> = vec![
        "--start-server".into(),
        common::server_bin().display().to_string(),
        "--port".into(),
        block.listen_port().to_string(),
        "--min-port".into(),
        block.min_relay_port().to_string(),
        "--max-port".into(),
        block.max_relay_port().to_string(),
        "--soak".into(),
        "--sessions=20".into(),
        "--rate=50".into(),
        "--duration=15".into(),
        "--report-every=5".into(),
        "--warmup=1".into(),
    ];
    let out = common::run_cmd(&exe, &args, Duration::from_secs(90));
    drop(block);
    assert!(out.success(), "relay_load --soak failed: {}", out.describe());
    let soak: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("SOAK ")).collect();
    let result = out.stdout.lines().find(|l| l.starts_with("RESULT ")).expect("no RESULT line");
    for l in &soak {
        println!("ROBUSTNESS soak {l}");
    }
    println!("ROBUSTNESS soak {result}");
    assert!(soak.len() >= 4, "expected SOAK lines at 0, 5, 10, 15 s:\n{}", out.stdout);
    assert!(soak.iter().all(|l| field(l, "sessions") == Some(20.0)), "{}", out.stdout);
    let rss: Vec<f64> = soak.iter().map(|l| field(l, "server_rss_kb").unwrap()).collect();
    let loss = field(result, "loss_pct").unwrap();
    // Loopback drops nothing at 1,000 packets/s; the only losses are frames
    // still in flight when the driver stops counting (well under a second of
    // traffic), so 0.5 % (75 of 15,000) already means something is wrong.
    assert!(loss <= 0.5, "loss {loss} % in the soak:\n{}", out.stdout);
    // A steady load must not grow the server: at most 512 kB over the run.
    let (first, last) = (rss[0], *rss.last().unwrap());
    assert!(last - first <= 512.0, "server RSS {first} kB -> {last} kB during the soak:\n{}", out.stdout);
}
