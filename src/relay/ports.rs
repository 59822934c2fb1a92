//! The relay port range of one relay IP, shared by every relay thread.
//!
//! Taken only on the control path (Allocate, deallocation), never per packet,
//! so a mutex is fine here. Ports are handed out from a rotating cursor so a
//! freed port is not reused at once (a late datagram for the old allocation
//! would reach the new one).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// How long a RESERVATION-TOKEN holds its port (RFC 8656: about 30 s).
pub const RESERVATION_MS: u64 = 30_000;

#[derive(Debug)]
struct Inner {
    min: u16,
    max: u16,
    /// used[p - min]
    used: Vec<bool>,
    cursor: usize,
    free_count: usize,
    /// token → (port, expiry ms)
    reservations: HashMap<u64, (u16, u64)>,
}

/// Ports of one relay IP.
#[derive(Debug)]
pub struct PortPool {
    pub ip: IpAddr,
    inner: Mutex<Inner>,
}

impl PortPool {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        let n = usize::from(max - min) + 1;
        let start = rand::random::<usize>() % n;
        PortPool {
            ip,
            inner: Mutex::new(Inner {
                min,
                max,
                used: vec![false; n],
                cursor: start,
                free_count: n,
                reservations: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent data (each step is a
        // single assignment), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take any free port, trying candidates with `try_bind` until one binds.
    /// Ports that fail to bind (held by another process) stay marked for this
    /// pass and are released again.
    pub fn take_any<T>(&self, now_ms: u64, mut try_bind: impl FnMut(u16) -> Option<T>) -> Option<(u16, T)> {
        let mut g = self.lock();
        g.expire(now_ms);
        let n = g.used.len();
        let mut failed = Vec::new();
        let mut result = None;
        for step in 0..n {
            if g.free_count == 0 {
                break;
            }
            let i = (g.cursor + step) % n;
            if g.used[i] {
                continue;
            }
            let port = g.min + i as u16;
            g.mark(i, true);
            if let Some(t) = try_bind(port) {
                g.cursor = (i + 1) % n;
                result = Some((port, t));
                break;
            }
            failed.push(i);
            if failed.len() >= 64 {
                break;
            }
        }
        for i in failed {
            g.mark(i, false);
        }
        result
    }

    /// Take an even port p (p+1 must be free too when `reserve_next`), binding
    /// with `try_bind`. With `reserve_next`, p+1 is held under a new token.
    pub fn take_even<T>(
        &self,
        now_ms: u64,
        reserve_next: bool,
        mut try_bind: impl FnMut(u16) -> Option<T>,
    ) -> Option<(u16, T, Option<u64>)> {
        let mut g = self.lock();
        g.expire(now_ms);
        let n = g.used.len();
        let mut attempts = 0;
        for step in 0..n {
            let i = (g.cursor + step) % n;
            let port = g.min + i as u16;
            if port % 2 != 0 || g.used[i] {
                continue;
            }
            if reserve_next && (port == g.max || g.used[i + 1]) {
                continue;
            }
            g.mark(i, true);
            if let Some(t) = try_bind(port) {
                g.cursor = (i + 2) % n;
                let token = if reserve_next {
                    g.mark(i + 1, true);
                    let token = loop {
                        let t: u64 = rand::random();
                        if t != 0 && !g.reservations.contains_key(&t) {
                            break t;
                        }
                    };
                    g.reservations.insert(token, (port + 1, now_ms + RESERVATION_MS));
                    Some(token)
                } else {
                    None
                };
                return Some((port, t, token));
            }
            g.mark(i, false);
            attempts += 1;
            if attempts >= 64 {
                break;
            }
        }
        None
    }

    /// Claim the port held under `token`; `None` if unknown or expired. On a
    /// bind failure the port is freed.
    pub fn take_reserved<T>(&self, now_ms: u64, token: u64, try_bind: impl FnOnce(u16) -> Option<T>) -> Option<(u16, T)> {
        let mut g = self.lock();
        g.expire(now_ms);
        let (port, _) = g.reservations.remove(&token)?;
        match try_bind(port) {
            Some(t) => Some((port, t)),
            None => {
                let i = usize::from(port - g.min);
                g.mark(i, false);
                None
            }
        }
    }

    /// Whether this pool holds a reservation for `token`.
    pub fn has_reservation(&self, token: u64) -> bool {
        self.lock().reservations.contains_key(&token)
    }

    /// Return a port to the pool.
    pub fn release(&self, port: u16) {
        let mut g = self.lock();
        if port >= g.min && port <= g.max {
            let i = usize::from(port - g.min);
            g.mark(i, false);
        }
    }

    pub fn free_ports(&self) -> usize {
        self.lock().free_count
    }
}

impl Inner {
    fn mark(&mut self, i: usize, used: bool) {
        if self.used[i] != used {
            self.used[i] = used;
            if used {
                self.free_count -= 1;
            } else {
                self.free_count += 1;
            }
        }
    }

    fn expire(&mut self, now_ms: u64) {
        if self.reservations.is_empty() {
            return;
        }
        let expired: Vec<u64> = self.reservations.iter().filter(|(_, &(_, e))| e <= now_ms).map(|(&t, _)| t).collect();
        for t in expired {
            if let Some((port, _)) = self.reservations.remove(&t) {
                let i = usize::from(port - self.min);
                self.mark(i, false);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool(min: u16, max: u16) -> PortPool {
        PortPool::new("127.0.0.1".parse().unwrap(), min, max)
    }

    #[test]
    fn hands_out_every_port_once_then_none() {
        let p = pool(1000, 1009);
        let mut got: Vec<u16> = (0..10).map(|_| p.take_any(0, Some).unwrap().0).collect();
        got.sort();
        assert_eq!(got, (1000..=1009).collect::<Vec<_>>());
        assert!(p.take_any(0, Some).is_none());
        p.release(1004);
        assert_eq!(p.take_any(0, Some).unwrap().0, 1004);
    }

    #[test]
    fn skips_ports_that_fail_to_bind() {
        let p = pool(1000, 1003);
        let r = p.take_any(0, |port| (port == 1002).then_some(()));
        assert_eq!(r.unwrap().0, 1002);
        assert_eq!(p.free_ports(), 3);
    }

    #[test]
    fn even_port_with_reservation_and_expiry() {
        let p = pool(1000, 1003);
        let (port, _, token) = p.take_even(0, true, Some).unwrap();
        assert_eq!(port % 2, 0);
        let token = token.unwrap();
        assert_eq!(p.free_ports(), 2);
        let (rport, _) = p.take_reserved(10, token, Some).unwrap();
        assert_eq!(rport, port + 1);
        assert!(p.take_reserved(10, token, |_| Some(())).is_none());
        // A reservation not claimed in time comes back to the pool.
        let (_, _, t2) = p.take_even(0, true, Some).unwrap();
        assert_eq!(p.free_ports(), 0);
        assert!(p.take_reserved(RESERVATION_MS + 1, t2.unwrap(), |_| Some(())).is_none());
        assert_eq!(p.free_ports(), 1);
    }
}
