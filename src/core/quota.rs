//! Allocation quotas (`--user-quota`, `--total-quota`, and the database's
//! per-realm `user-quota` / `total-quota` options): counts shared by every
//! relay thread. Touched only when an allocation is created or removed, never
//! per packet, so a small mutex is fine.
//!
//! As in coturn, counts are kept per realm: `total-quota` limits one realm's
//! allocations and `user-quota` one user of one realm. Without a database
//! every allocation is in the default realm, so the limits are server-wide.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Counts {
    per_realm: HashMap<String, u32>,
    per_user: HashMap<(String, String), u32>,
}

/// The limits that apply to one realm (0 = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    pub user_quota: u32,
    pub total_quota: u32,
}

/// Quota limits from the command line (0 = unlimited) and the current counts.
/// The limits are atomics because the CLI (`cc user-quota`) and SIGHUP change
/// them while allocations are counted.
#[derive(Debug, Default)]
pub struct Quotas {
    user_quota: AtomicU32,
    total_quota: AtomicU32,
    counts: Mutex<Counts>,
}

impl Quotas {
    pub fn new(user_quota: u32, total_quota: u32) -> Self {
        Quotas { user_quota: AtomicU32::new(user_quota), total_quota: AtomicU32::new(total_quota), counts: Mutex::default() }
    }

    /// The command-line limits (what a realm without database options gets).
    pub fn defaults(&self) -> QuotaLimits {
        QuotaLimits {
            user_quota: self.user_quota.load(Ordering::Relaxed),
            total_quota: self.total_quota.load(Ordering::Relaxed),
        }
    }

    /// New default limits; allocations already counted stay.
    pub fn set_defaults(&self, limits: QuotaLimits) {
        self.user_quota.store(limits.user_quota, Ordering::Relaxed);
        self.total_quota.store(limits.total_quota, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Each update is a pair of counter writes; a poisoned lock still holds
        // usable counts.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one more allocation for `user` of `realm`; false (486) when a
    /// limit is reached.
    pub fn try_acquire(&self, realm: &str, user: &str, limits: QuotaLimits) -> bool {
        let mut c = self.lock();
        let total = c.per_realm.get(realm).copied().unwrap_or(0);
        if limits.total_quota > 0 && total >= limits.total_quota {
            return false;
        }
        let key = (realm.to_string(), user.to_string());
        let n = c.per_user.get(&key).copied().unwrap_or(0);
        if limits.user_quota > 0 && n >= limits.user_quota {
            return false;
        }
        *c.per_realm.entry(realm.to_string()).or_insert(0) += 1;
        *c.per_user.entry(key).or_insert(0) += 1;
        true
    }

    pub fn release(&self, realm: &str, user: &str) {
        let mut c = self.lock();
        if let Some(n) = c.per_realm.get_mut(realm) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_realm.remove(realm);
            }
        }
        let key = (realm.to_string(), user.to_string());
        if let Some(n) = c.per_user.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_user.remove(&key);
            }
        }
    }

    /// Allocations counted over all realms.
    pub fn total(&self) -> u32 {
        self.lock().per_realm.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_at_exactly_the_quota() {
        let q = Quotas::new(2, 3);
        let l = q.defaults();
        assert!(q.try_acquire("r", "a", l));
        assert!(q.try_acquire("r", "a", l));
        assert!(!q.try_acquire("r", "a", l), "user quota 2");
        assert!(q.try_acquire("r", "b", l));
        assert!(!q.try_acquire("r", "c", l), "total quota 3");
        q.release("r", "a");
        assert!(q.try_acquire("r", "c", l));
        assert_eq!(q.total(), 3);
    }

    #[test]
    fn realms_count_apart() {
        let q = Quotas::new(0, 0);
        let one = QuotaLimits { user_quota: 1, total_quota: 2 };
        assert!(q.try_acquire("north", "a", one));
        assert!(!q.try_acquire("north", "a", one), "per-realm user quota");
        // The same name in another realm is another user.
        assert!(q.try_acquire("south", "a", one));
        assert!(q.try_acquire("north", "b", one));
        assert!(!q.try_acquire("north", "c", one), "per-realm total");
        assert!(q.try_acquire("south", "c", one));
        q.release("north", "a");
        assert!(q.try_acquire("north", "c", one));
        assert_eq!(q.total(), 4);
    }

    #[test]
    fn unlimited_by_default() {
        let q = Quotas::default();
        for _ in 0..1000 {
            assert!(q.try_acquire("", "x", q.defaults()));
        }
        for _ in 0..1000 {
            q.release("", "x");
        }
        assert_eq!(q.total(), 0);
    }
}
