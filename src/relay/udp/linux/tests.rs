//! Real loopback sockets, with a syscall layer that can make the kernel
//! "refuse" a feature, to check every fallback loses and duplicates nothing.

use super::*;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Wraps the kernel; each `Some` field forces that syscall's answer.
#[derive(Default)]
struct FaultSys {
    /// Every recvmmsg fails with this errno.
    recvmmsg_err: Option<i32>,
    /// Every sendmsg fails with this errno.
    sendmsg_err: Option<i32>,
    /// Every sendmmsg fails with this errno.
    sendmmsg_err: Option<i32>,
    /// The next sendmmsg fails with this errno (then cleared).
    sendmmsg_err_once: Cell<Option<i32>>,
    /// Pass at most this many messages to the real sendmmsg (a partial send).
    sendmmsg_max: Option<usize>,
    recvmmsg_calls: Cell<usize>,
    recvmsg_calls: Cell<usize>,
    sendmmsg_calls: Cell<usize>,
    sendmsg_calls: Cell<usize>,
    sendto_calls: Cell<usize>,
}

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

impl Sys for FaultSys {
    unsafe fn recvmmsg(&self, fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> io::Result<usize> {
        bump(&self.recvmmsg_calls);
        if let Some(e) = self.recvmmsg_err {
            return Err(err(e));
        }
        // SAFETY: forwarded from our caller's guarantee.
        unsafe { LibcSys.recvmmsg(fd, msgs, n) }
    }

    unsafe fn recvmsg(&self, fd: RawFd, msg: *mut libc::msghdr) -> io::Result<usize> {
        bump(&self.recvmsg_calls);
        // SAFETY: forwarded.
        unsafe { LibcSys.recvmsg(fd, msg) }
    }

    unsafe fn sendmmsg(&self, fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> io::Result<usize> {
        bump(&self.sendmmsg_calls);
        if let Some(e) = self.sendmmsg_err.or(self.sendmmsg_err_once.take()) {
            return Err(err(e));
        }
        let n = self.sendmmsg_max.map_or(n, |m| n.min(m));
        // SAFETY: forwarded (a prefix of the caller's headers).
        unsafe { LibcSys.sendmmsg(fd, msgs, n) }
    }

    unsafe fn sendmsg(&self, fd: RawFd, msg: *const libc::msghdr) -> io::Result<usize> {
        bump(&self.sendmsg_calls);
        if let Some(e) = self.sendmsg_err {
            return Err(err(e));
        }
        // SAFETY: forwarded.
        unsafe { LibcSys.sendmsg(fd, msg) }
    }

    fn sendto(&self, fd: RawFd, data: &[u8], to: &RawAddr) -> io::Result<usize> {
        bump(&self.sendto_calls);
        LibcSys.sendto(fd, data, to)
    }
}

fn bind(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).expect("bind loopback");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

fn pair() -> (UdpSocket, UdpSocket, SocketAddr) {
    let rx = bind("127.0.0.1:0");
    let tx = bind("127.0.0.1:0");
    let to = rx.local_addr().expect("addr");
    (tx, rx, to)
}

/// A payload of `len` bytes carrying `seq` in its first 4 bytes.
fn payload(seq: u32, len: usize) -> Vec<u8> {
    let mut p = vec![(seq % 251) as u8; len.max(4)];
    p[..4].copy_from_slice(&seq.to_be_bytes());
    p.truncate(len.max(4));
    p
}

/// Everything `rx` receives until `want` datagrams arrived plus a short quiet
/// period (to catch duplicates), or 2 s passed. Returns (data, from).
fn drain(rx: &UdpSocket, want: usize, sys: &impl Sys, caps: &UdpCaps, stats: &mut UdpStats) -> Vec<(Vec<u8>, SocketAddr, Option<IpAddr>)> {
    let mut b = RecvBatch::new(65_536);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut quiet_until: Option<Instant> = None;
    loop {
        let n = b.recv_with(sys, rx.as_raw_fd(), caps, stats).expect("recv");
        got.extend(b.iter().map(|r| {
            assert!(!r.truncated);
            (r.data.to_vec(), r.from, r.dst)
        }));
        let now = Instant::now();
        if got.len() >= want && quiet_until.is_none() {
            quiet_until = Some(now + Duration::from_millis(30));
        }
        if now > deadline || quiet_until.is_some_and(|q| now > q) {
            break;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

/// Each of `sent` arrived exactly once (as a multiset), from `from`.
fn assert_exactly_once(got: &[(Vec<u8>, SocketAddr, Option<IpAddr>)], sent: &[Vec<u8>]) {
    let mut want: HashMap<&[u8], usize> = HashMap::new();
    for p in sent {
        *want.entry(&p[..]).or_default() += 1;
    }
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for (p, _, _) in got {
        *seen.entry(&p[..]).or_default() += 1;
    }
    assert_eq!(got.len(), sent.len(), "datagram count");
    assert_eq!(seen, want, "each datagram exactly once");
}

fn batch_of(to: SocketAddr, payloads: &[Vec<u8>]) -> Vec<(SocketAddr, &[u8])> {
    payloads.iter().map(|p| (to, &p[..])).collect()
}

// --------------------------------------------------------------------------
// Receive

#[test]
fn recvmmsg_reads_batches_in_order() {
    let (tx, rx, to) = pair();
    let payloads: Vec<Vec<u8>> = (0..40).map(|i| payload(i, 20 + i as usize)).collect();
    for p in &payloads {
        tx.send_to(p, to).expect("send");
    }
    let caps = UdpCaps::fixed(true, true, false);
    let mut st = UdpStats::default();
    let mut b = RecvBatch::new(2048);
    let sys = FaultSys::default();
    assert_eq!(b.recv_with(&sys, rx.as_raw_fd(), &caps, &mut st).expect("recv"), 32);
    let from = tx.local_addr().expect("addr");
    for (i, r) in b.iter().enumerate() {
        assert_eq!(r.data, &payloads[i][..]);
        assert_eq!(r.from, from);
        assert_eq!(r.dst, None, "pktinfo not enabled");
        assert!(!r.truncated);
    }
    assert_eq!(b.recv_with(&sys, rx.as_raw_fd(), &caps, &mut st).expect("recv"), 8);
    assert_eq!(b.get(7).data, &payloads[39][..]);
    assert_eq!(b.recv_with(&sys, rx.as_raw_fd(), &caps, &mut st).expect("recv"), 0);
    assert_eq!(sys.recvmmsg_calls.get(), 3);
    assert_eq!(sys.recvmsg_calls.get(), 0);
    assert_eq!(st.recvmmsg_calls, 2);
    assert_eq!(st.recv_packets, 40);
    assert_eq!(st.recv_hist, [0, 0, 0, 1, 0, 1]);
    assert_eq!(st.recv_wouldblock, 1);
}

#[test]
fn recvmsg_loop_when_recvmmsg_off() {
    let (tx, rx, to) = pair();
    let payloads: Vec<Vec<u8>> = (0..5).map(|i| payload(i, 100)).collect();
    for p in &payloads {
        tx.send_to(p, to).expect("send");
    }
    let caps = UdpCaps::fixed(false, true, false);
    let mut st = UdpStats::default();
    let sys = FaultSys::default();
    let mut b = RecvBatch::new(2048);
    assert_eq!(b.recv_with(&sys, rx.as_raw_fd(), &caps, &mut st).expect("recv"), 5);
    assert_eq!(sys.recvmmsg_calls.get(), 0);
    assert_eq!(sys.recvmsg_calls.get(), 6, "5 datagrams + the EAGAIN");
    assert_eq!(st.recv_hist, [0, 0, 0, 1, 0, 0]);
    assert_eq!(b.get(4).data, &payloads[4][..]);
}

#[test]
fn recvmmsg_unsupported_falls_back_without_loss() {
    for code in [libc::ENOSYS, libc::EINVAL] {
        let (tx, rx, to) = pair();
        let payloads: Vec<Vec<u8>> = (0..50).map(|i| payload(i, 64)).collect();
        for p in &payloads {
            tx.send_to(p, to).expect("send");
        }
        let caps = UdpCaps::fixed(true, true, false);
        let sys = FaultSys { recvmmsg_err: Some(code), ..Default::default() };
        let mut st = UdpStats::default();
        let got = drain(&rx, 50, &sys, &caps, &mut st);
        assert_exactly_once(&got, &payloads);
        assert!(!caps.recvmmsg_enabled(), "sticky off after errno {code}");
        assert_eq!(sys.recvmmsg_calls.get(), 1, "tried once, then never again");
        assert_eq!(st.fallbacks, 1);
        assert_eq!(st.recvmmsg_calls, 0);
        assert_eq!(st.recv_packets, 50);
    }
}

#[test]
fn recv_other_errors_are_returned() {
    let (_tx, rx, _to) = pair();
    let caps = UdpCaps::fixed(true, true, false);
    let sys = FaultSys { recvmmsg_err: Some(libc::EBADF), ..Default::default() };
    let mut st = UdpStats::default();
    let mut b = RecvBatch::new(64);
    let e = b.recv_with(&sys, rx.as_raw_fd(), &caps, &mut st).expect_err("EBADF");
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    assert!(caps.recvmmsg_enabled(), "a non-capability error does not disable recvmmsg");
}

#[test]
fn truncation_is_flagged() {
    for mmsg in [true, false] {
        let (tx, rx, to) = pair();
        tx.send_to(&[7u8; 100], to).expect("send");
        tx.send_to(&[8u8; 10], to).expect("send");
        let caps = UdpCaps::fixed(mmsg, true, false);
        let mut st = UdpStats::default();
        let mut b = RecvBatch::new(64);
        assert_eq!(b.recv(rx.as_raw_fd(), &caps, &mut st).expect("recv"), 2);
        let r = b.get(0);
        assert!(r.truncated);
        assert_eq!(r.data, &[7u8; 64][..]);
        let r = b.get(1);
        assert!(!r.truncated);
        assert_eq!(r.data, &[8u8; 10][..]);
        assert_eq!(st.recv_truncated, 1);
    }
}

#[test]
fn pktinfo_reports_destination_and_sets_source() {
    // A wildcard listener, reached on two loopback addresses.
    let rx = bind("0.0.0.0:0");
    enable_pktinfo(rx.as_raw_fd(), false).expect("IP_PKTINFO");
    let port = rx.local_addr().expect("addr").port();
    let client = bind("127.0.0.1:0");
    let mut st = UdpStats::default();
    let targets: [IpAddr; 2] = [Ipv4Addr::new(127, 0, 0, 1).into(), Ipv4Addr::new(127, 0, 0, 2).into()];
    for (i, ip) in targets.iter().enumerate() {
        client.send_to(&payload(i as u32, 30), SocketAddr::new(*ip, port)).expect("send");
    }
    for mmsg in [true, false] {
        let caps_r = UdpCaps::fixed(mmsg, true, false);
        if !mmsg {
            for (i, ip) in targets.iter().enumerate() {
                client.send_to(&payload(i as u32, 30), SocketAddr::new(*ip, port)).expect("send");
            }
        }
        let got = drain(&rx, 2, &LibcSys, &caps_r, &mut st);
        let dsts: Vec<Option<IpAddr>> = got.iter().map(|g| g.2).collect();
        assert_eq!(dsts, vec![Some(targets[0]), Some(targets[1])], "recvmmsg={mmsg}");
    }
    // Replies leave from the address the client used: single, sendmmsg, GSO.
    let me = client.local_addr().expect("addr");
    for (n, gso) in [(1usize, false), (6, false), (6, GsoProbe::get())] {
        let caps = UdpCaps::fixed(true, true, gso);
        let ps: Vec<Vec<u8>> = (0..n as u32).map(|i| payload(i, 40)).collect();
        let sent = send_batch(rx.as_raw_fd(), &batch_of(me, &ps), Some(targets[1]), &caps, &mut st);
        assert_eq!(sent, n);
        let got = drain(&client, n, &LibcSys, &caps, &mut st);
        assert_exactly_once(&got, &ps);
        for g in &got {
            assert_eq!(g.1, SocketAddr::new(targets[1], port), "source address from IP_PKTINFO");
        }
    }
}

#[test]
fn ipv6_pktinfo_when_available() {
    let Ok(rx) = UdpSocket::bind("[::1]:0") else { return };
    let Ok(tx) = UdpSocket::bind("[::1]:0") else { return };
    rx.set_nonblocking(true).expect("nonblocking");
    tx.set_nonblocking(true).expect("nonblocking");
    enable_pktinfo(rx.as_raw_fd(), true).expect("IPV6_RECVPKTINFO");
    let to = rx.local_addr().expect("addr");
    let caps = UdpCaps::fixed(true, true, GsoProbe::get());
    let mut st = UdpStats::default();
    let ps: Vec<Vec<u8>> = (0..10).map(|i| payload(i, 500)).collect();
    assert_eq!(send_batch(tx.as_raw_fd(), &batch_of(to, &ps), Some(Ipv6Addr::LOCALHOST.into()), &caps, &mut st), 10);
    let got = drain(&rx, 10, &LibcSys, &caps, &mut st);
    assert_exactly_once(&got, &ps);
    for g in &got {
        assert_eq!(g.1, tx.local_addr().expect("addr"));
        assert_eq!(g.2, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }
}

// --------------------------------------------------------------------------
// Send

/// Whether this kernel does GSO (tests of the real GSO path skip otherwise).
struct GsoProbe;
impl GsoProbe {
    fn get() -> bool {
        probe_gso().is_ok()
    }
}

#[test]
fn small_groups_use_sendto() {
    let (tx, rx, to) = pair();
    let ps: Vec<Vec<u8>> = (0..3).map(|i| payload(i, 50)).collect();
    let caps = UdpCaps::fixed(true, true, false);
    let sys = FaultSys::default();
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 3);
    assert_eq!((sys.sendto_calls.get(), sys.sendmmsg_calls.get()), (3, 0));
    let got = drain(&rx, 3, &LibcSys, &caps, &mut st);
    assert_exactly_once(&got, &ps);
    assert_eq!(st.sendto_calls, 3);
}

#[test]
fn sendmmsg_chunks_of_32_in_order() {
    let (tx, rx, to) = pair();
    let ps: Vec<Vec<u8>> = (0..70).map(|i| payload(i, 10 + i as usize)).collect();
    let caps = UdpCaps::fixed(true, true, false);
    let sys = FaultSys::default();
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 70);
    assert_eq!(sys.sendmmsg_calls.get(), 3, "32 + 32 + 6");
    let got = drain(&rx, 70, &LibcSys, &caps, &mut st);
    let datas: Vec<Vec<u8>> = got.into_iter().map(|g| g.0).collect();
    assert_eq!(datas, ps, "loopback keeps order");
    assert_eq!((st.sendmmsg_calls, st.sendmmsg_datagrams, st.sent, st.dropped), (3, 70, 70, 0));
}

#[test]
fn partial_sendmmsg_resumes_without_duplicates() {
    let (tx, rx, to) = pair();
    let ps: Vec<Vec<u8>> = (0..40).map(|i| payload(i, 80)).collect();
    let caps = UdpCaps::fixed(true, true, false);
    let sys = FaultSys { sendmmsg_max: Some(7), ..Default::default() };
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 40);
    assert_eq!(sys.sendmmsg_calls.get(), 6, "40 = 5 × 7 + 5");
    let got = drain(&rx, 40, &LibcSys, &caps, &mut st);
    assert_exactly_once(&got, &ps);
    let datas: Vec<Vec<u8>> = got.into_iter().map(|g| g.0).collect();
    assert_eq!(datas, ps);
}

#[test]
fn sendmmsg_hard_error_drops_one() {
    let (tx, rx, to) = pair();
    let ps: Vec<Vec<u8>> = (0..10).map(|i| payload(i, 80)).collect();
    let caps = UdpCaps::fixed(true, true, false);
    let sys = FaultSys { sendmmsg_err_once: Cell::new(Some(libc::EPERM)), ..Default::default() };
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 9);
    assert_eq!(st.dropped, 1);
    let got = drain(&rx, 9, &LibcSys, &caps, &mut st);
    assert_exactly_once(&got, &ps[1..]);
    assert!(caps.sendmmsg_enabled());
}

#[test]
fn sendmmsg_full_buffer_drops_the_rest() {
    let (tx, _rx, to) = pair();
    let ps: Vec<Vec<u8>> = (0..10).map(|i| payload(i, 80)).collect();
    let caps = UdpCaps::fixed(true, true, false);
    let sys = FaultSys { sendmmsg_err: Some(libc::EAGAIN), ..Default::default() };
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 0);
    assert_eq!((st.dropped, sys.sendmmsg_calls.get()), (10, 1));
}

#[test]
fn sendmmsg_enosys_falls_back_to_sendto() {
    let (tx, rx, to) = pair();
    let ps: Vec<Vec<u8>> = (0..20).map(|i| payload(i, 80)).collect();
    let caps = UdpCaps::fixed(true, true, false);
    let sys = FaultSys { sendmmsg_err: Some(libc::ENOSYS), ..Default::default() };
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 20);
    assert!(!caps.sendmmsg_enabled());
    assert_eq!((sys.sendmmsg_calls.get(), sys.sendto_calls.get()), (1, 20));
    // Second batch: straight to sendto.
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 20);
    assert_eq!(sys.sendmmsg_calls.get(), 1);
    let got = drain(&rx, 40, &LibcSys, &caps, &mut st);
    let twice: Vec<Vec<u8>> = ps.iter().chain(ps.iter()).cloned().collect();
    assert_exactly_once(&got, &twice);
    assert_eq!(st.fallbacks, 1);
}

#[test]
fn gso_sends_runs_when_supported() {
    if !GsoProbe::get() {
        eprintln!("kernel without UDP GSO: skipped");
        return;
    }
    let (tx, rx, to) = pair();
    // 100 equal datagrams (the last shorter): 64 + 36 segments.
    let mut ps: Vec<Vec<u8>> = (0..100).map(|i| payload(i, 200)).collect();
    ps[99] = payload(99, 50);
    let caps = UdpCaps::fixed(true, true, true);
    let sys = FaultSys::default();
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 100);
    assert_eq!((sys.sendmsg_calls.get(), sys.sendmmsg_calls.get(), sys.sendto_calls.get()), (2, 0, 0));
    assert_eq!((st.gso_sends, st.gso_datagrams), (2, 100));
    let got = drain(&rx, 100, &LibcSys, &caps, &mut st);
    let datas: Vec<Vec<u8>> = got.into_iter().map(|g| g.0).collect();
    assert_eq!(datas, ps, "segments arrive as separate datagrams, in order");
    assert!(caps.gso_enabled());
}

#[test]
fn gso_refused_falls_back_to_sendmmsg_without_loss() {
    for code in [libc::EIO, libc::EINVAL, libc::ENOPROTOOPT, libc::EOPNOTSUPP] {
        let (tx, rx, to) = pair();
        let ps: Vec<Vec<u8>> = (0..100).map(|i| payload(i, 300)).collect();
        let caps = UdpCaps::fixed(true, true, true);
        let sys = FaultSys { sendmsg_err: Some(code), ..Default::default() };
        let mut st = UdpStats::default();
        assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 100);
        assert!(!caps.gso_enabled(), "GSO off after errno {code}");
        assert_eq!(sys.sendmsg_calls.get(), 1, "one GSO attempt, then sendmmsg");
        assert_eq!(sys.sendmmsg_calls.get(), 4, "100 = 32 + 32 + 32 + 4 (first run 64 via fallback, then 36 plain)");
        assert_eq!((st.gso_sends, st.fallbacks, st.dropped), (0, 1, 0));
        let got = drain(&rx, 100, &LibcSys, &caps, &mut st);
        assert_exactly_once(&got, &ps);
    }
}

#[test]
fn gso_hard_error_drops_the_run_only() {
    let (tx, rx, to) = pair();
    let other = bind("127.0.0.1:0");
    let to2 = other.local_addr().expect("addr");
    let ps: Vec<Vec<u8>> = (0..5).map(|i| payload(i, 100)).collect();
    // Five to `to` (a GSO run) then five single datagrams alternating.
    let mut d = batch_of(to, &ps);
    let singles: Vec<Vec<u8>> = (10..15).map(|i| payload(i, 60 + i as usize)).collect();
    d.extend(singles.iter().map(|p| (to2, &p[..])));
    let caps = UdpCaps::fixed(true, true, true);
    let sys = FaultSys { sendmsg_err: Some(libc::ENETUNREACH), ..Default::default() };
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &d, None, &caps, &mut st), 5);
    assert_eq!(st.dropped, 5);
    assert!(caps.gso_enabled(), "not a capability error");
    let got = drain(&other, 5, &LibcSys, &caps, &mut st);
    assert_exactly_once(&got, &singles);
    assert!(drain(&rx, 0, &LibcSys, &caps, &mut st).is_empty());
}

#[test]
fn mixed_batch_keeps_per_destination_order() {
    let gso = GsoProbe::get();
    let (tx, rx1, to1) = pair();
    let rx2 = bind("127.0.0.1:0");
    let to2 = rx2.local_addr().expect("addr");
    // 3 to A, 6 to B (a GSO run), 1 to A, 4 to B of varying size, 20 to A.
    let mut d_owned: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    let mut seq = 0;
    let mut push = |to: SocketAddr, len: usize, d: &mut Vec<(SocketAddr, Vec<u8>)>| {
        d.push((to, payload(seq, len)));
        seq += 1;
    };
    for _ in 0..3 {
        push(to1, 90, &mut d_owned);
    }
    for _ in 0..6 {
        push(to2, 120, &mut d_owned);
    }
    push(to1, 90, &mut d_owned);
    for k in 0..4 {
        push(to2, 50 + 40 * k, &mut d_owned);
    }
    for _ in 0..20 {
        push(to1, 700, &mut d_owned);
    }
    let d: Vec<(SocketAddr, &[u8])> = d_owned.iter().map(|(a, p)| (*a, &p[..])).collect();
    let caps = UdpCaps::fixed(true, true, gso);
    let mut st = UdpStats::default();
    assert_eq!(send_batch(tx.as_raw_fd(), &d, None, &caps, &mut st), d.len());
    if gso {
        // Runs: 3×A (GSO), 6×B (GSO), 1×A + 1×B(50) singles... see gso_run.
        assert!(st.gso_sends >= 3, "{st:?}");
    }
    for (rx, to) in [(&rx1, to1), (&rx2, to2)] {
        let want: Vec<Vec<u8>> = d_owned.iter().filter(|(a, _)| *a == to).map(|(_, p)| p.clone()).collect();
        let got: Vec<Vec<u8>> = drain(rx, want.len(), &LibcSys, &caps, &mut st).into_iter().map(|g| g.0).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn public_recv_with_real_kernel() {
    let (tx, rx, to) = pair();
    let caps = UdpCaps::new(true, true);
    let mut st = UdpStats::default();
    let ps: Vec<Vec<u8>> = (0..32).map(|i| payload(i, 1200)).collect();
    assert_eq!(send_batch(tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 32);
    let mut b = RecvBatch::new(65_536);
    assert_eq!(b.recv(rx.as_raw_fd(), &caps, &mut st).expect("recv"), 32);
    assert_eq!(b.len(), 32);
    assert_eq!(b.get(31).data, &ps[31][..]);
}

#[test]
fn gso_emsgsize_sends_plain_and_keeps_gso() {
    let (tx, rx, to) = pair();
    let ps: Vec<Vec<u8>> = (0..8).map(|i| payload(i, 1400)).collect();
    let caps = UdpCaps::fixed(true, true, true);
    let sys = FaultSys { sendmsg_err: Some(libc::EMSGSIZE), ..Default::default() };
    let mut st = UdpStats::default();
    assert_eq!(send_batch_with(&sys, tx.as_raw_fd(), &batch_of(to, &ps), None, &caps, &mut st), 8);
    assert!(caps.gso_enabled());
    assert_eq!((sys.sendmsg_calls.get(), sys.sendmmsg_calls.get(), st.dropped), (1, 1, 0));
    let got = drain(&rx, 8, &LibcSys, &caps, &mut st);
    assert_exactly_once(&got, &ps);
}

#[test]
fn tos_and_ttl_are_reported_per_datagram_on_both_receive_paths() {
    for recvmmsg in [true, false] {
        let (tx, rx, to) = pair();
        enable_tos_ttl(rx.as_raw_fd(), false).expect("loopback socket");
        let caps = UdpCaps::fixed(recvmmsg, true, false);
        let mut stats = UdpStats::default();
        // Expedited Forwarding (DSCP 46) with ECT(0): 0xb8 | 0x02.
        set_tos(tx.as_raw_fd(), false, 0xba).expect("loopback socket");
        tx.send_to(b"marked", to).expect("loopback socket");
        set_tos(tx.as_raw_fd(), false, 0).expect("loopback socket");
        tx.send_to(b"plain", to).expect("loopback socket");
        let mut batch = RecvBatch::new(2048);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = Vec::new();
        while got.len() < 2 && Instant::now() < deadline {
            let n = batch.recv(rx.as_raw_fd(), &caps, &mut stats).expect("loopback socket");
            got.extend(batch.iter().take(n).map(|r| (r.data.to_vec(), r.tos, r.ttl)));
        }
        assert_eq!(got.len(), 2, "recvmmsg={recvmmsg}");
        assert_eq!(got[0], (b"marked".to_vec(), Some(0xba), Some(64)), "recvmmsg={recvmmsg}");
        assert_eq!(got[1], (b"plain".to_vec(), Some(0), Some(64)), "recvmmsg={recvmmsg}");
    }
}
