//! Batched UDP I/O for the relay threads: the only place with syscall `unsafe`.
//!
//! A relay thread owns non-blocking UDP sockets and works in drains: it reads
//! every ready socket, feeds the datagrams to the core, then flushes what the
//! core queued. This module makes both ends of a drain batched:
//!
//! - [`RecvBatch::recv`] reads up to [`BATCH`] datagrams in one `recvmmsg`
//!   (or a loop of `recvmsg` when that is off or unavailable), recording the
//!   source, the destination IP (packet info, see [`enable_pktinfo`]) and
//!   truncation for each.
//! - [`send_batch`] sends the datagrams queued for one socket: runs to one
//!   destination with equal sizes go out as one UDP GSO `sendmsg`, the rest
//!   through `sendmmsg` in chunks of [`BATCH`], and groups smaller than
//!   [`MIN_MMSG`] through plain `sendto`.
//!
//! Capabilities live in a process-wide [`UdpCaps`]: switches from the
//! configuration, downgraded at run time when the kernel refuses a feature
//! (one warning, then off for every thread, and the call that hit the error is
//! completed through the fallback so no datagram is lost). Counters live in a
//! per-thread [`UdpStats`], so the hot path touches no shared cache line.
//!
//! Linux gets the batched syscalls (`linux.rs`); elsewhere `portable.rs` gives
//! the same API over `recv_from`/`send_to`.
//!
//! # Wiring into a relay thread
//! - At start: one `Arc<UdpCaps>` for the process (`UdpCaps::new(recvmmsg, gso)`),
//!   and per thread one `RecvBatch::new(65536)` and one `UdpStats`.
//! - Listeners bound to a wildcard: `enable_pktinfo(fd, v6)` once, then reply
//!   with `src_ip = Received::dst` so answers leave from the address used.
//! - Drain: `while let Ok(n @ 1..) = batch.recv(fd, &caps, &mut stats)` and
//!   handle `batch.get(i)` for `i in 0..n` (`Ok(0)` = socket empty).
//! - Flush: group the queued transmits by socket fd (and source IP), keeping
//!   their order, and call `send_batch` once per group; datagrams to one
//!   destination that are adjacent in a group can share a GSO send.
//! - Every 10 s with `--udp-recvmmsg-log` / `--udp-sendmmsg-log`: log
//!   `stats.recv_log_line(i)` / `stats.send_log_line(i)`.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{enable_pktinfo, enable_tos_ttl, send_batch, set_tos, RecvBatch};

// The portable path is also compiled (and tested) on Linux under `cfg(test)`.
#[cfg(any(not(target_os = "linux"), test))]
mod portable;
#[cfg(not(target_os = "linux"))]
pub use portable::{enable_pktinfo, enable_tos_ttl, send_batch, set_tos, RecvBatch};

/// Datagrams per receive call and per `sendmmsg` chunk.
pub const BATCH: usize = 32;
/// Below this many datagrams for one socket (outside a GSO run), plain
/// `sendto` is used: coturn's threshold, where `sendmmsg` stops paying off.
pub const MIN_MMSG: usize = 4;
/// Most segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 on
/// older kernels).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Largest GSO segment to an IPv4 destination: a 1500-byte MTU minus IPv4 and
/// UDP headers, so the segments fit the common path MTU.
pub const MAX_GSO_SEGMENT_V4: usize = 1472;
/// Largest GSO segment to an IPv6 destination (1500 − 40 − 8).
pub const MAX_GSO_SEGMENT_V6: usize = 1452;
/// Most payload bytes in one GSO send: the whole super-datagram must still fit
/// one IP packet's 16-bit length before segmentation.
pub const MAX_GSO_BYTES: usize = 65_000;

/// One received datagram, borrowed from a [`RecvBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The payload (at most the slot size; see `truncated`).
    pub data: &'a [u8],
    /// Where it came from.
    pub from: SocketAddr,
    /// The local IP it was sent to, when packet info is enabled on the socket
    /// (needed to answer from the same address on a wildcard listener).
    pub dst: Option<IpAddr>,
    /// The datagram was longer than the slot and was cut (MSG_TRUNC).
    pub truncated: bool,
    /// The IPv4 TOS / IPv6 traffic class byte (DiffServ + ECN), when enabled
    /// on the socket with [`enable_tos_ttl`].
    pub tos: Option<u8>,
    /// The IPv4 TTL / IPv6 hop limit, when enabled with [`enable_tos_ttl`].
    pub ttl: Option<u8>,
}

/// Process-wide switches and sticky fallbacks, shared by every relay thread.
///
/// Each switch starts from the configuration and only ever goes from on to
/// off: the first thread that sees the kernel refuse a feature logs one
/// warning and turns it off for everyone.
#[derive(Debug)]
pub struct UdpCaps {
    recvmmsg: AtomicBool,
    sendmmsg: AtomicBool,
    gso: AtomicBool,
}

impl UdpCaps {
    /// From `--udp-recvmmsg` and `--udp-gso`; `sendmmsg` is on. GSO is kept
    /// only if the kernel accepts `UDP_SEGMENT` on a probe socket (a warning
    /// says so when it does not).
    pub fn new(recvmmsg: bool, gso: bool) -> Arc<UdpCaps> {
        Self::with_sendmmsg(recvmmsg, true, gso)
    }

    /// As [`UdpCaps::new`], with `sendmmsg` chosen too (off = `sendto` per
    /// datagram outside GSO runs, as coturn without `--multiplex-peer`).
    pub fn with_sendmmsg(recvmmsg: bool, sendmmsg: bool, gso: bool) -> Arc<UdpCaps> {
        let gso = gso && gso_supported();
        Arc::new(UdpCaps {
            recvmmsg: AtomicBool::new(recvmmsg && cfg!(target_os = "linux")),
            sendmmsg: AtomicBool::new(sendmmsg && cfg!(target_os = "linux")),
            gso: AtomicBool::new(gso),
        })
    }

    /// Exactly these switches, no probing (tests and benches).
    #[doc(hidden)]
    pub fn fixed(recvmmsg: bool, sendmmsg: bool, gso: bool) -> Arc<UdpCaps> {
        Arc::new(UdpCaps {
            recvmmsg: AtomicBool::new(recvmmsg),
            sendmmsg: AtomicBool::new(sendmmsg),
            gso: AtomicBool::new(gso),
        })
    }

    pub fn recvmmsg_enabled(&self) -> bool {
        self.recvmmsg.load(Ordering::Relaxed)
    }

    pub fn sendmmsg_enabled(&self) -> bool {
        self.sendmmsg.load(Ordering::Relaxed)
    }

    pub fn gso_enabled(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Turn `recvmmsg` off; warns if this call is the one that turned it off.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn disable_recvmmsg(&self, err: &io::Error) {
        if self.recvmmsg.swap(false, Ordering::Relaxed) {
            tracing::warn!("recvmmsg unavailable ({err}): falling back to recvmsg");
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn disable_sendmmsg(&self, err: &io::Error) {
        if self.sendmmsg.swap(false, Ordering::Relaxed) {
            tracing::warn!("sendmmsg unavailable ({err}): falling back to sendto");
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn disable_gso(&self, err: &io::Error) {
        if self.gso.swap(false, Ordering::Relaxed) {
            tracing::warn!("UDP GSO failed ({err}): disabling UDP_SEGMENT, falling back to sendmmsg");
        }
    }
}

#[cfg(target_os = "linux")]
fn gso_supported() -> bool {
    match linux::probe_gso() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("UDP GSO requested but not supported by the kernel ({e}): disabled");
            false
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn gso_supported() -> bool {
    false
}

/// Upper bounds of the receive batch-size histogram buckets:
/// 1, 2, 3–4, 5–8, 9–16, 17–32.
pub const RECV_HIST_BOUNDS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// Per-thread counters: plain integers, merged for reporting.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UdpStats {
    /// `recvmmsg` calls that returned at least one datagram.
    pub recvmmsg_calls: u64,
    /// `recvmsg` calls that returned a datagram.
    pub recvmsg_calls: u64,
    /// Datagrams received.
    pub recv_packets: u64,
    /// Datagrams per [`RecvBatch::recv`] call, bucketed by [`RECV_HIST_BOUNDS`].
    pub recv_hist: [u64; 6],
    /// Receive calls that found nothing.
    pub recv_wouldblock: u64,
    /// Datagrams cut to the slot size.
    pub recv_truncated: u64,
    /// [`send_batch`] calls with at least one datagram.
    pub send_batches: u64,
    /// `sendmmsg` calls that sent at least one datagram.
    pub sendmmsg_calls: u64,
    /// Datagrams sent through `sendmmsg`.
    pub sendmmsg_datagrams: u64,
    /// GSO `sendmsg` calls that succeeded.
    pub gso_sends: u64,
    /// Datagrams (segments) sent through GSO.
    pub gso_datagrams: u64,
    /// Single-datagram sends (`sendto`, or `sendmsg` with a source address).
    pub sendto_calls: u64,
    /// Datagrams sent by any method.
    pub sent: u64,
    /// Datagrams dropped (full socket buffer or a hard error), as UDP would.
    pub dropped: u64,
    /// Times this thread hit an unsupported feature and fell back.
    pub fallbacks: u64,
}

impl UdpStats {
    /// Add another thread's (or period's) counters.
    pub fn merge(&mut self, o: &UdpStats) {
        self.recvmmsg_calls += o.recvmmsg_calls;
        self.recvmsg_calls += o.recvmsg_calls;
        self.recv_packets += o.recv_packets;
        for (a, b) in self.recv_hist.iter_mut().zip(o.recv_hist.iter()) {
            *a += b;
        }
        self.recv_wouldblock += o.recv_wouldblock;
        self.recv_truncated += o.recv_truncated;
        self.send_batches += o.send_batches;
        self.sendmmsg_calls += o.sendmmsg_calls;
        self.sendmmsg_datagrams += o.sendmmsg_datagrams;
        self.gso_sends += o.gso_sends;
        self.gso_datagrams += o.gso_datagrams;
        self.sendto_calls += o.sendto_calls;
        self.sent += o.sent;
        self.dropped += o.dropped;
        self.fallbacks += o.fallbacks;
    }

    /// Count one receive call that returned `n` ≥ 1 datagrams.
    fn record_recv(&mut self, n: usize) {
        self.recv_packets += n as u64;
        if let Some(b) = RECV_HIST_BOUNDS.iter().position(|&hi| n <= hi) {
            self.recv_hist[b] += 1;
        } else if let Some(last) = self.recv_hist.last_mut() {
            *last += 1;
        }
    }

    /// `--udp-recvmmsg-log` line for one thread.
    pub fn recv_log_line(&self, thread: usize) -> String {
        let calls = self.recvmmsg_calls + self.recvmsg_calls;
        let calls_with_data: u64 = self.recv_hist.iter().sum();
        let avg = if calls_with_data > 0 { self.recv_packets as f64 / calls_with_data as f64 } else { 0.0 };
        let mut s = format!(
            "udp recv thread={thread}: recvmmsg_calls={} recvmsg_calls={} syscalls={calls} packets={} avg_batch={avg:.2} wouldblock={} truncated={} fallbacks={} hist",
            self.recvmmsg_calls, self.recvmsg_calls, self.recv_packets, self.recv_wouldblock, self.recv_truncated, self.fallbacks,
        );
        for (label, n) in ["1", "2", "3-4", "5-8", "9-16", "17-32"].iter().zip(self.recv_hist.iter()) {
            let _ = write!(s, " {label}:{n}");
        }
        s
    }

    /// `--udp-sendmmsg-log` line for one thread.
    pub fn send_log_line(&self, thread: usize) -> String {
        format!(
            "udp send thread={thread}: flushes={} sent={} sendmmsg_calls={} sendmmsg_datagrams={} gso_sends={} gso_datagrams={} sendto_calls={} dropped={} fallbacks={}",
            self.send_batches,
            self.sent,
            self.sendmmsg_calls,
            self.sendmmsg_datagrams,
            self.gso_sends,
            self.gso_datagrams,
            self.sendto_calls,
            self.dropped,
            self.fallbacks,
        )
    }
}

/// Largest GSO segment for a destination.
fn max_gso_segment(dest: &SocketAddr) -> usize {
    if dest.is_ipv4() {
        MAX_GSO_SEGMENT_V4
    } else {
        MAX_GSO_SEGMENT_V6
    }
}

/// How many leading datagrams of `d` can go out as one GSO send: same
/// destination, same size as the first (the last may be shorter, and ends the
/// run), none empty, within the segment-size, segment-count and byte limits.
/// Returns 1 when no run of two or more starts here (0 for an empty slice).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn gso_run(d: &[(SocketAddr, &[u8])]) -> usize {
    let Some(&(dest, first)) = d.first() else { return 0 };
    let seg = first.len();
    if seg == 0 || seg > max_gso_segment(&dest) {
        return 1;
    }
    let mut n = 1;
    let mut total = seg;
    for &(to, p) in &d[1..] {
        if to != dest || p.is_empty() || p.len() > seg || n == MAX_GSO_SEGMENTS || total + p.len() > MAX_GSO_BYTES {
            break;
        }
        n += 1;
        total += p.len();
        if p.len() < seg {
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn gso_run_rules() {
        let p100 = [0u8; 100];
        let p50 = [0u8; 50];
        let big = [0u8; 1473];
        assert_eq!(gso_run(&[]), 0);
        assert_eq!(gso_run(&[(a(1), &p100)]), 1);
        assert_eq!(gso_run(&[(a(1), &p100), (a(1), &p100), (a(2), &p100)]), 2);
        // A shorter datagram ends the run and is included.
        assert_eq!(gso_run(&[(a(1), &p100), (a(1), &p50), (a(1), &p50)]), 2);
        // A longer one is not.
        assert_eq!(gso_run(&[(a(1), &p50), (a(1), &p100)]), 1);
        // Segment too large for a 1500 MTU.
        assert_eq!(gso_run(&[(a(1), &big), (a(1), &big)]), 1);
        // Empty datagrams never join a run.
        assert_eq!(gso_run(&[(a(1), &[][..]), (a(1), &[][..])]), 1);
        assert_eq!(gso_run(&[(a(1), &p100), (a(1), &[][..])]), 1);
        // Segment-count cap.
        let many: Vec<(SocketAddr, &[u8])> = (0..100).map(|_| (a(1), &p100[..])).collect();
        assert_eq!(gso_run(&many), MAX_GSO_SEGMENTS);
        // Byte cap: 1472 × 44 = 64,768 ≤ 65,000 < 1472 × 45.
        let full = [0u8; 1472];
        let many: Vec<(SocketAddr, &[u8])> = (0..60).map(|_| (a(1), &full[..])).collect();
        assert_eq!(gso_run(&many), 44);
    }

    #[test]
    fn stats_merge_and_lines() {
        let mut s = UdpStats::default();
        for n in [1, 2, 3, 4, 5, 9, 17, 32] {
            s.record_recv(n);
        }
        s.recvmmsg_calls = 8;
        assert_eq!(s.recv_hist, [1, 1, 2, 1, 1, 2]);
        assert_eq!(s.recv_packets, 73);
        let mut t = s.clone();
        t.merge(&s);
        assert_eq!(t.recv_hist, [2, 2, 4, 2, 2, 4]);
        assert_eq!(t.recv_packets, 146);
        let line = t.recv_log_line(3);
        assert!(line.contains("thread=3"), "{line}");
        assert!(line.contains("avg_batch=9.12"), "{line}");
        assert!(line.contains("3-4:4 5-8:2 9-16:2 17-32:4"), "{line}");
        t.gso_datagrams = 7;
        assert!(t.send_log_line(0).contains("gso_datagrams=7"));
    }

    #[test]
    fn caps_fallbacks_are_sticky() {
        let caps = UdpCaps::fixed(true, true, true);
        let e = io::Error::from_raw_os_error(libc::ENOSYS);
        caps.disable_recvmmsg(&e);
        caps.disable_recvmmsg(&e);
        caps.disable_gso(&e);
        assert!(!caps.recvmmsg_enabled());
        assert!(!caps.gso_enabled());
        assert!(caps.sendmmsg_enabled());
    }
}
