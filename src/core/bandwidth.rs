//! Bandwidth limits: `--max-bps` per session, `--bps-capacity` for the whole
//! server, and the client's BANDWIDTH attribute within them.
//!
//! As in coturn, a session's limit applies to each direction separately
//! (client → peers and peers → client) and counts relayed payload bytes. A
//! datagram over the limit is dropped, which is what a congested link would
//! do to it: TURN carries datagrams, and the application's own congestion
//! control (RTP, SCTP) sees the loss and slows down.
//!
//! The per-session buckets are plain fields of the allocation, touched only
//! by the thread owning it. The server-wide budget is one atomic counter,
//! touched when an allocation starts or ends, never per packet.

use std::sync::atomic::{AtomicU64, Ordering};

/// How long a burst the bucket absorbs, in milliseconds of the rate. Short
/// enough that a flow measured over a few seconds stays within a few percent
/// of the limit, long enough to pass a frame burst of a video key frame.
const BURST_MS: u64 = 100;

/// The smallest bucket: one full-size datagram must always fit, however low
/// the rate, or a low limit would block every large packet forever.
const MIN_BURST_BYTES: u64 = 1600;

/// The bytes a full bucket holds at `rate` bytes per second.
fn burst_bytes(rate: u64) -> u64 {
    (rate.saturating_mul(BURST_MS) / 1000).max(MIN_BURST_BYTES)
}

/// A token bucket counting bytes, refilled from the core's millisecond clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Bytes per second.
    rate: u64,
    /// Bucket size, bytes × 1000 (tokens are kept in milli-bytes so the
    /// refill of one millisecond is exact: `rate` milli-bytes per ms).
    cap: u64,
    tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket for `rate` bytes per second (`rate` > 0).
    pub fn new(rate: u64, now_ms: u64) -> Self {
        let cap = burst_bytes(rate).saturating_mul(1000);
        TokenBucket { rate, cap, tokens: cap, last_ms: now_ms }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Take `len` bytes if the bucket holds them; false means drop.
    pub fn take(&mut self, now_ms: u64, len: usize) -> bool {
        if now_ms > self.last_ms {
            let refill = (now_ms - self.last_ms).saturating_mul(self.rate);
            self.tokens = self.tokens.saturating_add(refill).min(self.cap);
            self.last_ms = now_ms;
        }
        let need = (len as u64).saturating_mul(1000);
        if self.tokens >= need {
            self.tokens -= need;
            true
        } else {
            false
        }
    }
}

/// A byte budget for a stream (an RFC 6062 TCP relay pipe): reads are
/// charged after the fact, so the budget may go into debt by one read, and
/// the reader pauses until the debt is paid back. TCP flow control then holds
/// the sender to the rate, and nothing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBudget {
    rate: u64,
    /// Milli-bytes; negative while in debt.
    tokens: i64,
    cap: i64,
    last_ms: u64,
}

impl StreamBudget {
    /// A full budget for `rate` bytes per second (`rate` > 0).
    pub fn new(rate: u64, now_ms: u64) -> Self {
        let cap = i64::try_from(burst_bytes(rate).saturating_mul(1000)).unwrap_or(i64::MAX);
        StreamBudget { rate, tokens: cap, cap, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: u64) {
        if now_ms > self.last_ms {
            let add = i64::try_from((now_ms - self.last_ms).saturating_mul(self.rate)).unwrap_or(i64::MAX);
            self.tokens = self.tokens.saturating_add(add).min(self.cap);
            self.last_ms = now_ms;
        }
    }

    /// Milliseconds to wait before reading again (0: read now).
    pub fn wait_ms(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        if self.tokens > 0 {
            return 0;
        }
        let rate = i64::try_from(self.rate.max(1)).unwrap_or(i64::MAX);
        // Enough to get back above zero.
        u64::try_from((1 - self.tokens) / rate + 1).unwrap_or(1)
    }

    /// Charge `len` bytes that were read.
    pub fn charge(&mut self, now_ms: u64, len: usize) {
        self.refill(now_ms);
        let cost = i64::try_from(len).unwrap_or(i64::MAX).saturating_mul(1000);
        self.tokens = self.tokens.saturating_sub(cost);
    }
}

/// The two directions of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    /// Client → peers.
    pub from_client: TokenBucket,
    /// Peers → client.
    pub to_client: TokenBucket,
}

impl SessionLimit {
    pub fn new(bps: u64, now_ms: u64) -> Self {
        SessionLimit { from_client: TokenBucket::new(bps, now_ms), to_client: TokenBucket::new(bps, now_ms) }
    }

    pub fn bps(&self) -> u64 {
        self.from_client.rate()
    }
}

/// `--bps-capacity`: the bytes per second all sessions together may be
/// granted. Sessions take their share when they start and give it back when
/// they end, as coturn does.
#[derive(Debug, Default)]
pub struct BpsCapacity {
    /// 0: no server-wide limit. An atomic so the CLI (`cc bps-capacity`) and
    /// SIGHUP can change it; sessions keep what they were granted.
    capacity: AtomicU64,
    granted: AtomicU64,
}

impl BpsCapacity {
    pub fn new(capacity: u64) -> Self {
        BpsCapacity { capacity: AtomicU64::new(capacity), granted: AtomicU64::new(0) }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Relaxed)
    }

    /// A new server-wide budget for sessions that start from now on.
    pub fn set_capacity(&self, capacity: u64) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    /// Bytes per second currently granted to sessions.
    pub fn granted(&self) -> u64 {
        self.granted.load(Ordering::Relaxed)
    }

    /// Grant up to `bps` (> 0): all of it while the budget has room, what is
    /// left when it has less, and `None` when nothing is left (486).
    pub fn grant(&self, bps: u64) -> Option<u64> {
        let capacity = self.capacity();
        if capacity == 0 {
            // Counted all the same, so a budget set later at run time starts
            // from what sessions really hold.
            self.granted.fetch_add(bps, Ordering::AcqRel);
            return Some(bps);
        }
        let mut cur = self.granted.load(Ordering::Relaxed);
        loop {
            let room = capacity.saturating_sub(cur);
            if room == 0 {
                return None;
            }
            let give = bps.min(room);
            match self.granted.compare_exchange_weak(cur, cur + give, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(give),
                Err(now) => cur = now,
            }
        }
    }

    /// Give back what [`Self::grant`] gave.
    pub fn release(&self, bps: u64) {
        if bps == 0 {
            return;
        }
        let mut cur = self.granted.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_sub(bps);
            match self.granted.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }
}

/// BANDWIDTH (0x0010, from the TURN drafts) carries a rate in units of 128
/// bytes per second, about a kilobit; coturn reads and writes it so.
pub fn bandwidth_attr_to_bps(value: u32) -> u64 {
    u64::from(value) << 7
}

/// The BANDWIDTH value for a rate in bytes per second (rounded up so a
/// granted rate is never reported lower than it is; saturating).
pub fn bps_to_bandwidth_attr(bps: u64) -> u32 {
    u32::try_from(bps.div_ceil(128)).unwrap_or(u32::MAX)
}

/// The rate a new session gets before the server-wide budget: the client's
/// request held to the session limit, or the session limit when the client
/// asks for nothing. 0: unlimited.
pub fn session_rate(requested: Option<u64>, max_bps: u64) -> u64 {
    match (requested, max_bps) {
        (Some(r), 0) => r,
        (Some(0) | None, m) => m,
        (Some(r), m) => r.min(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_passes_the_rate_and_a_short_burst() {
        let mut b = TokenBucket::new(100_000, 0);
        // The burst: 100 ms worth.
        let mut passed = 0;
        while b.take(0, 1000) {
            passed += 1000;
        }
        assert_eq!(passed, 10_000);
        // Then one second of offered load at 4x the rate, in 1 ms steps.
        let mut got = 0u64;
        for ms in 1..=1000u64 {
            for _ in 0..4 {
                if b.take(ms, 100) {
                    got += 100;
                }
            }
        }
        assert!((99_000..=100_000).contains(&got), "{got}");
    }

    #[test]
    fn bucket_always_fits_one_large_datagram() {
        let mut b = TokenBucket::new(10, 0);
        assert!(b.take(0, 1500));
        assert!(!b.take(0, 200));
        // 150 s at 10 B/s refills it.
        assert!(b.take(150_000, 1500));
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let mut b = TokenBucket::new(1000, 5000);
        assert!(b.take(5000, 1600));
        assert!(!b.take(4000, 1));
        assert!(b.take(5001, 1));
    }

    #[test]
    fn stream_budget_pauses_until_the_debt_is_paid() {
        let mut b = StreamBudget::new(10_000, 0);
        assert_eq!(b.wait_ms(0), 0);
        // A 65 KB read: the 1.6 KB burst covered, 63.4 KB of debt = 6.34 s.
        b.charge(0, 65_000);
        let w = b.wait_ms(0);
        assert!((6_335..=6_345).contains(&w), "{w}");
        assert!(b.wait_ms(w - 10) > 0);
        assert_eq!(b.wait_ms(w), 0);
        // Over a long run the average is the rate: 100 reads of 1000 bytes
        // whenever allowed, on a 1 ms clock.
        let mut b = StreamBudget::new(10_000, 0);
        let (mut t, mut bytes) = (0u64, 0u64);
        while bytes < 100_000 {
            t += b.wait_ms(t);
            b.charge(t, 1000);
            bytes += 1000;
        }
        // 100 KB at 10 KB/s, less the 1.6 KB burst: about 9.84 s.
        assert!((9_700..=10_000).contains(&t), "{t}");
    }

    #[test]
    fn capacity_grants_whole_then_partial_then_none() {
        let c = BpsCapacity::new(250);
        assert_eq!(c.grant(100), Some(100));
        assert_eq!(c.grant(100), Some(100));
        assert_eq!(c.grant(100), Some(50));
        assert_eq!(c.grant(100), None);
        c.release(100);
        assert_eq!(c.granted(), 150);
        assert_eq!(c.grant(100), Some(100));
        let unlimited = BpsCapacity::new(0);
        assert_eq!(unlimited.grant(1000), Some(1000));
        unlimited.release(5);
        assert_eq!(unlimited.granted(), 995);
    }

    #[test]
    fn capacity_set_at_run_time_counts_sessions_already_running() {
        let c = BpsCapacity::new(0);
        assert_eq!(c.grant(300), Some(300));
        c.set_capacity(400);
        assert_eq!(c.grant(300), Some(100));
        assert_eq!(c.grant(1), None);
        c.release(300);
        assert_eq!(c.grant(500), Some(300));
    }

    #[test]
    fn session_rate_holds_requests_to_the_limit() {
        assert_eq!(session_rate(None, 0), 0);
        assert_eq!(session_rate(None, 5000), 5000);
        assert_eq!(session_rate(Some(0), 5000), 5000);
        assert_eq!(session_rate(Some(1000), 5000), 1000);
        assert_eq!(session_rate(Some(9000), 5000), 5000);
        assert_eq!(session_rate(Some(9000), 0), 9000);
    }

    #[test]
    fn bandwidth_attribute_units() {
        assert_eq!(bandwidth_attr_to_bps(1), 128);
        assert_eq!(bps_to_bandwidth_attr(128), 1);
        assert_eq!(bps_to_bandwidth_attr(129), 2);
        assert_eq!(bps_to_bandwidth_attr(u64::MAX), u32::MAX);
        assert_eq!(bandwidth_attr_to_bps(u32::MAX), u64::from(u32::MAX) << 7);
    }
}
