//! Allocation quotas (`--user-quota`, `--total-quota`): counts shared by every
//! relay thread. Touched only when an allocation is created or removed, never
//! per packet, so a small mutex is fine.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_user: HashMap<String, u32>,
}

/// Quota limits (0 = unlimited) and the current counts.
#[derive(Debug, Default)]
pub struct Quotas {
    pub user_quota: u32,
    pub total_quota: u32,
    counts: Mutex<Counts>,
}

impl Quotas {
    pub fn new(user_quota: u32, total_quota: u32) -> Self {
        Quotas { user_quota, total_quota, counts: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Each update is a pair of counter writes; a poisoned lock still holds
        // usable counts.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one more allocation for `user`; false (486) when a limit is reached.
    pub fn try_acquire(&self, user: &str) -> bool {
        let mut c = self.lock();
        if self.total_quota > 0 && c.total >= self.total_quota {
            return false;
        }
        let n = c.per_user.get(user).copied().unwrap_or(0);
        if self.user_quota > 0 && n >= self.user_quota {
            return false;
        }
        c.total += 1;
        *c.per_user.entry(user.to_string()).or_insert(0) += 1;
        true
    }

    pub fn release(&self, user: &str) {
        let mut c = self.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_user.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                c.per_user.remove(user);
            }
        }
    }

    pub fn total(&self) -> u32 {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_at_exactly_the_quota() {
        let q = Quotas::new(2, 3);
        assert!(q.try_acquire("a"));
        assert!(q.try_acquire("a"));
        assert!(!q.try_acquire("a"), "user quota 2");
        assert!(q.try_acquire("b"));
        assert!(!q.try_acquire("c"), "total quota 3");
        q.release("a");
        assert!(q.try_acquire("c"));
        assert_eq!(q.total(), 3);
    }

    #[test]
    fn unlimited_by_default() {
        let q = Quotas::default();
        for _ in 0..1000 {
            assert!(q.try_acquire("x"));
        }
        for _ in 0..1000 {
            q.release("x");
        }
        assert_eq!(q.total(), 0);
    }
}
