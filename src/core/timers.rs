//! One deadline structure per relay thread: a min-heap of (deadline, slot).
//!
//! Entries are never removed early; an allocation remembers the deadline it is
//! armed for (`Allocation::timer_at`) and an entry that no longer matches is
//! skipped when popped. That keeps re-arming O(log n) with no search; the
//! owner calls [`Timers::compact`] when it drops entries (an allocation
//! deleted long before its deadline), so stale entries cannot pile up until
//! they come due (up to the allocation lifetime, i.e. without bound under
//! allocate/delete churn).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Timers {
    pub fn arm(&mut self, deadline_ms: u64, slot: usize) {
        self.heap.push(Reverse((deadline_ms, slot)));
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((d, _))| *d)
    }

    /// Pop one entry due at or before `now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<(u64, usize)> {
        match self.heap.peek() {
            Some(Reverse((d, _))) if *d <= now_ms => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// When more than half of the entries (and more than a few) are stale
    /// by `live`, drops the stale ones. Amortised O(1) per armed entry: after
    /// a compaction at least as many new entries must be armed as are live
    /// before the next one.
    pub fn compact(&mut self, live: impl Fn(u64, usize) -> bool, live_count: usize) {
        if self.heap.len() <= 64 || self.heap.len() <= 2 * live_count {
            return;
        }
        self.heap.retain(|Reverse((d, s))| live(*d, *s));
        if self.heap.capacity() > 4 * self.heap.len().max(64) {
            self.heap.shrink_to(2 * self.heap.len().max(64));
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut t = Timers::default();
        t.arm(300, 1);
        t.arm(100, 2);
        t.arm(200, 3);
        assert_eq!(t.next(), Some(100));
        assert_eq!(t.pop_due(50), None);
        assert_eq!(t.pop_due(250), Some((100, 2)));
        assert_eq!(t.pop_due(250), Some((200, 3)));
        assert_eq!(t.pop_due(250), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn compact_drops_stale_entries_once_they_dominate() {
        let mut t = Timers::default();
        for slot in 0..1000 {
            t.arm(600_000 + slot as u64, slot);
        }
        // Few stale entries: nothing happens.
        t.compact(|_, s| s >= 10, 990);
        assert_eq!(t.len(), 1000);
        // All but 10 stale (deleted long before their deadline): dropped.
        t.compact(|_, s| s < 10, 10);
        assert_eq!(t.len(), 10);
        assert_eq!(t.pop_due(u64::MAX), Some((600_000, 0)));
    }
}
