//! One deadline structure per relay thread: a min-heap of (deadline, slot).
//!
//! Entries are never removed early; an allocation remembers the deadline it is
//! armed for (`Allocation::timer_at`) and an entry that no longer matches is
//! skipped when popped. That keeps re-arming O(log n) with no search.

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
}
