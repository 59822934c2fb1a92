//! Who is logged on to the web admin, and who may try.
//!
//! A logon makes a session: a random 256-bit id sent as an `HttpOnly;
//! Secure; SameSite=Strict` cookie, and a second random token that every form
//! carries (CSRF): a POST is only acted on when its `csrf` field matches the
//! session's token. Sessions expire when idle. Failed logons are counted per
//! source IP in a bounded table; past the limit that IP is refused (even with
//! the right password) until its window ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// The session cookie's name.
pub const COOKIE: &str = "turn_admin_session";
/// Idle time after which a session ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// Sessions kept at most (the oldest goes first).
pub const MAX_SESSIONS: usize = 256;
/// Failed logons allowed per IP within [`THROTTLE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);
/// IPs tracked at most by the throttle.
pub const MAX_TRACKED_IPS: usize = 4096;

/// A logged-on administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub name: String,
    /// Empty for a superuser; else the only realm this admin sees.
    pub realm: String,
}

impl Admin {
    pub fn is_superuser(&self) -> bool {
        self.realm.is_empty()
    }

    /// May this admin see or change things of `realm`?
    pub fn may_see(&self, realm: &str) -> bool {
        self.is_superuser() || self.realm == realm
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub admin: Admin,
    pub csrf: String,
    last_used: Instant,
}

/// The live sessions.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    crate::admin::hash::hex(&b)
}

impl Sessions {
    /// Start a session; returns its id (the cookie value).
    pub fn create(&self, admin: Admin, now: Instant) -> String {
        let id = random_token();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| now.saturating_duration_since(s.last_used) < SESSION_IDLE);
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) else { break };
            map.remove(&oldest);
        }
        map.insert(id.clone(), Session { admin, csrf: random_token(), last_used: now });
        id
    }

    /// The session of a cookie value, refreshed; None when unknown or idle too long.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get_mut(id)?;
        if now.saturating_duration_since(s.last_used) >= SESSION_IDLE {
            map.remove(id);
            return None;
        }
        s.last_used = now;
        Some(s.clone())
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// Does the form's token match the session's? (Constant time.)
pub fn csrf_ok(session: &Session, token: Option<&str>) -> bool {
    token.is_some_and(|t| crate::stun::integrity::ct_eq(t.as_bytes(), session.csrf.as_bytes()))
}

/// The `Set-Cookie` value for a session id.
pub fn cookie_header(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie_header() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

struct Failures {
    count: u32,
    since: Instant,
}

/// Failed logons per source IP.
#[derive(Default)]
pub struct Throttle {
    map: Mutex<HashMap<IpAddr, Failures>>,
}

impl Throttle {
    /// May `ip` try to log on now?
    pub fn allowed(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&ip) {
            Some(f) => f.count < MAX_FAILURES || now.saturating_duration_since(f.since) >= THROTTLE_WINDOW,
            None => true,
        }
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(&ip) && map.len() >= MAX_TRACKED_IPS {
            map.retain(|_, f| now.saturating_duration_since(f.since) < THROTTLE_WINDOW);
            if map.len() >= MAX_TRACKED_IPS {
                // Still full of fresh entries: forget the oldest one.
                if let Some(oldest) = map.iter().min_by_key(|(_, f)| f.since).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let f = map.entry(ip).or_insert(Failures { count: 0, since: now });
        if now.saturating_duration_since(f.since) >= THROTTLE_WINDOW {
            *f = Failures { count: 0, since: now };
        }
        f.count += 1;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&ip);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn admin(realm: &str) -> Admin {
        Admin { name: "a".into(), realm: realm.into() }
    }

    #[test]
    fn sessions_expire_when_idle_and_are_bounded() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let id = s.create(admin(""), t0);
        assert_eq!(id.len(), 64);
        let got = s.get(&id, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(got.admin, admin(""));
        assert!(s.get("nope", t0).is_none());
        // Used at +60 s, so alive until +60 s + idle.
        assert!(s.get(&id, t0 + SESSION_IDLE).is_some());
        assert!(s.get(&id, t0 + SESSION_IDLE * 3).is_none());
        for i in 0..MAX_SESSIONS + 10 {
            s.create(admin(""), t0 + Duration::from_millis(i as u64));
        }
        assert!(s.map.lock().unwrap().len() <= MAX_SESSIONS);
        let id = s.create(admin("r"), t0);
        s.remove(&id);
        assert!(s.get(&id, t0).is_none());
    }

    #[test]
    fn csrf_token_must_match() {
        let s = Sessions::default();
        let now = Instant::now();
        let id = s.create(admin(""), now);
        let sess = s.get(&id, now).unwrap();
        assert!(csrf_ok(&sess, Some(&sess.csrf)));
        assert!(!csrf_ok(&sess, None));
        assert!(!csrf_ok(&sess, Some("")));
        assert!(!csrf_ok(&sess, Some(&id)));
        assert_ne!(sess.csrf, id);
    }

    #[test]
    fn cookie_is_locked_down() {
        let c = cookie_header("abc");
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(clear_cookie_header().contains("Max-Age=0"));
    }

    #[test]
    fn throttle_blocks_after_failures_then_forgives() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(t.allowed(ip, t0));
            t.failed(ip, t0);
        }
        assert!(!t.allowed(ip, t0 + Duration::from_secs(1)));
        assert!(t.allowed(other, t0));
        assert!(t.allowed(ip, t0 + THROTTLE_WINDOW));
        t.failed(ip, t0 + THROTTLE_WINDOW);
        assert!(t.allowed(ip, t0 + THROTTLE_WINDOW));
        t.succeeded(ip);
        assert!(t.allowed(ip, t0));
    }

    #[test]
    fn throttle_table_is_bounded() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_IPS as u32 + 100) {
            t.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(t.len() <= MAX_TRACKED_IPS);
    }

    #[test]
    fn realm_admins_see_only_their_realm() {
        assert!(admin("").may_see("x"));
        assert!(admin("x").may_see("x"));
        assert!(!admin("x").may_see("y"));
        assert!(!admin("x").may_see(""));
    }
}
