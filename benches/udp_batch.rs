//! Loopback cost of one batch of 32 × 100-byte datagrams to one destination,
//! per syscall strategy: `sendto` × 32 vs one `sendmmsg` vs one GSO `sendmsg`,
//! and `recvmsg` × 32 vs one `recvmmsg`. Only the measured direction is
//! timed; the other side (filling or draining the receiver) is not.
//!
//! Run: `cargo bench --bench udp_batch`.

#[cfg(target_os = "linux")]
mod linux {
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use criterion::{Criterion, Throughput};
    use turnserver::relay::udp::{send_batch, RecvBatch, UdpCaps, UdpStats, BATCH};

    const N: usize = 32;
    const LEN: usize = 100;

    fn sockets() -> (UdpSocket, UdpSocket, SocketAddr) {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        tx.set_nonblocking(true).expect("nonblocking");
        let to = rx.local_addr().expect("addr");
        (tx, rx, to)
    }

    /// Read everything waiting on `rx`; returns the count.
    fn drain(rx: &UdpSocket, batch: &mut RecvBatch, caps: &UdpCaps, st: &mut UdpStats) -> usize {
        let mut total = 0;
        while let Ok(n @ 1..) = batch.recv(rx.as_raw_fd(), caps, st) {
            total += n;
        }
        total
    }

    pub fn send(c: &mut Criterion) {
        let mut g = c.benchmark_group("udp_send_32x100B");
        g.throughput(Throughput::Elements(N as u64));
        let payloads: Vec<Vec<u8>> = (0..N).map(|i| vec![i as u8; LEN]).collect();
        let drain_caps = UdpCaps::fixed(true, true, false);
        for (name, caps) in [
            ("sendto_x32", UdpCaps::fixed(false, false, false)),
            ("sendmmsg", UdpCaps::fixed(false, true, false)),
            ("gso", UdpCaps::fixed(false, true, true)),
        ] {
            let (tx, rx, to) = sockets();
            let d: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, &p[..])).collect();
            let mut batch = RecvBatch::new(2048);
            let mut st = UdpStats::default();
            let mut rst = UdpStats::default();
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let sent = send_batch(tx.as_raw_fd(), &d, None, &caps, &mut st);
                        t += start.elapsed();
                        assert_eq!(sent, N);
                        assert_eq!(drain(&rx, &mut batch, &drain_caps, &mut rst), N);
                    }
                    t
                })
            });
            eprintln!("{name}: {}", st.send_log_line(0));
        }
        g.finish();
    }

    pub fn recv(c: &mut Criterion) {
        let mut g = c.benchmark_group("udp_recv_32x100B");
        g.throughput(Throughput::Elements(N as u64));
        let payloads: Vec<Vec<u8>> = (0..N).map(|i| vec![i as u8; LEN]).collect();
        let fill_caps = UdpCaps::fixed(false, true, false);
        for (name, caps) in [("recvmsg_x32", UdpCaps::fixed(false, true, false)), ("recvmmsg", UdpCaps::fixed(true, true, false))] {
            let (tx, rx, to) = sockets();
            let d: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, &p[..])).collect();
            let mut batch = RecvBatch::new(65_536);
            let mut st = UdpStats::default();
            let mut sst = UdpStats::default();
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        assert_eq!(send_batch(tx.as_raw_fd(), &d, None, &fill_caps, &mut sst), N);
                        let start = Instant::now();
                        let n = batch.recv(rx.as_raw_fd(), &caps, &mut st).expect("recv");
                        t += start.elapsed();
                        assert_eq!(n, BATCH.min(N));
                    }
                    t
                })
            });
            eprintln!("{name}: {}", st.recv_log_line(0));
        }
        g.finish();
    }
}

#[cfg(target_os = "linux")]
fn main() {
    let mut c = criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args();
    linux::send(&mut c);
    linux::recv(&mut c);
    c.final_summary();
}

#[cfg(not(target_os = "linux"))]
fn main() {}
