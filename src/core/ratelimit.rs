//! `--unauthorized-ratelimit`: at most `--unauthorized-ratelimit-rps` 401
//! answers per second to one source IP over UDP. Beyond that the request is
//! dropped unanswered, so a spoofed flood cannot turn the server into a 401
//! cannon aimed at a victim, and a password guesser gets few tries a second.
//!
//! The counts live in a fixed table of atomic words shared by every relay
//! thread: no allocation per source, no lock, and a bounded memory cost
//! whatever the number of sources. Each word packs a tag (high bits of the
//! IP's hash), the second it counts and the count. Two IPs hashing to the same
//! slot in the same second take turns resetting it (a collision, counted):
//! they then get somewhat more 401s than the limit, never fewer.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::peer_policy::canonical;

/// Slots in the table: 64 K × 8 bytes = 512 KiB, fixed at start.
pub const SLOTS: usize = 1 << 16;

const COUNT_BITS: u32 = 16;
const SECOND_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const SECOND_MASK: u64 = (1 << SECOND_BITS) - 1;

/// What the limiter says about one 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
}

/// Table load and collisions (coturn's `turn_ratelimit_*` metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterStats {
    pub collisions: u64,
    pub occupied: usize,
    pub total: usize,
}

pub struct UnauthLimiter {
    rps: u64,
    slots: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    collisions: AtomicU64,
}

impl std::fmt::Debug for UnauthLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnauthLimiter").field("rps", &self.rps).finish_non_exhaustive()
    }
}

impl UnauthLimiter {
    /// 401s allowed per source IP and second.
    pub fn rps(&self) -> u64 {
        self.rps
    }

    /// A limiter allowing `rps` 401s per second per source IP (0 is taken as 1).
    pub fn new(rps: u32) -> Self {
        UnauthLimiter {
            rps: u64::from(rps.max(1)),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            collisions: AtomicU64::new(0),
        }
    }

    fn slot_and_tag(&self, ip: IpAddr) -> (usize, u64) {
        let v = self.hasher.hash_one(canonical(ip));
        // Low bits pick the slot, high bits tag it; a tag of 0 marks an empty
        // slot, so tags are forced non-zero.
        let slot = (v as usize) & (SLOTS - 1);
        let tag = (v >> (COUNT_BITS + SECOND_BITS)) | 1;
        (slot, tag)
    }

    /// Count one 401 for `ip` at `unix_secs`: `Send` while under the limit.
    pub fn check(&self, ip: IpAddr, unix_secs: u64) -> Verdict {
        let (slot, tag) = self.slot_and_tag(ip);
        let sec = unix_secs & SECOND_MASK;
        let cell = &self.slots[slot];
        let mut cur = cell.load(Ordering::Relaxed);
        loop {
            let (ctag, csec, count) = unpack(cur);
            let next = if ctag == tag && csec == sec {
                if count >= self.rps {
                    return Verdict::Drop;
                }
                pack(tag, sec, count + 1)
            } else {
                if ctag != 0 && ctag != tag && csec == sec {
                    self.collisions.fetch_add(1, Ordering::Relaxed);
                }
                pack(tag, sec, 1)
            };
            match cell.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Verdict::Send,
                Err(now) => cur = now,
            }
        }
    }

    /// Collisions so far and how many slots count something this second
    /// (a scan of the table: for metrics, not the packet path).
    pub fn stats(&self, unix_secs: u64) -> LimiterStats {
        let sec = unix_secs & SECOND_MASK;
        let occupied = self
            .slots
            .iter()
            .filter(|c| {
                let (tag, csec, _) = unpack(c.load(Ordering::Relaxed));
                tag != 0 && csec == sec
            })
            .count();
        LimiterStats { collisions: self.collisions.load(Ordering::Relaxed), occupied, total: SLOTS }
    }
}

fn pack(tag: u64, sec: u64, count: u64) -> u64 {
    (tag << (COUNT_BITS + SECOND_BITS)) | (sec << COUNT_BITS) | count.min(COUNT_MASK)
}

fn unpack(v: u64) -> (u64, u64, u64) {
    (v >> (COUNT_BITS + SECOND_BITS), (v >> COUNT_BITS) & SECOND_MASK, v & COUNT_MASK)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_each_source_per_second() {
        let l = UnauthLimiter::new(3);
        let a = ip("198.51.100.1");
        let b = ip("198.51.100.2");
        let sent = (0..10).filter(|_| l.check(a, 100) == Verdict::Send).count();
        assert_eq!(sent, 3);
        // Another source has its own count.
        assert_eq!(l.check(b, 100), Verdict::Send);
        // The next second starts over.
        let sent = (0..10).filter(|_| l.check(a, 101) == Verdict::Send).count();
        assert_eq!(sent, 3);
    }

    #[test]
    fn mapped_ipv6_counts_as_its_ipv4() {
        let l = UnauthLimiter::new(2);
        assert_eq!(l.check(ip("192.0.2.9"), 7), Verdict::Send);
        assert_eq!(l.check(ip("::ffff:192.0.2.9"), 7), Verdict::Send);
        assert_eq!(l.check(ip("192.0.2.9"), 7), Verdict::Drop);
    }

    #[test]
    fn many_sources_cost_no_memory_and_each_gets_its_quota() {
        let l = UnauthLimiter::new(1);
        // 100 000 distinct sources in one second: every first 401 is sent
        // (a collision resets a slot, it never makes a source lose its turn).
        let mut sent = 0;
        for i in 0..100_000u32 {
            let v4 = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            if l.check(IpAddr::V4(v4), 42) == Verdict::Send {
                sent += 1;
            }
        }
        assert_eq!(sent, 100_000);
        let s = l.stats(42);
        assert_eq!(s.total, SLOTS);
        assert!(s.occupied <= SLOTS && s.occupied > SLOTS / 2, "{s:?}");
        assert!(s.collisions > 0);
    }

    #[test]
    fn threads_share_one_count() {
        let l = std::sync::Arc::new(UnauthLimiter::new(1000));
        let a = ip("203.0.113.77");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || (0..1000).filter(|_| l.check(a, 9) == Verdict::Send).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }
}
