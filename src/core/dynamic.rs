//! State the user database adds to the core, as a read-only snapshot: per-realm
//! peer ranges (`allowed_peer_ip` / `denied_peer_ip`), the ORIGIN → realm map
//! (`turn_origin_to_realm`) and realm options (`turn_realm_option`).
//!
//! The database service builds a new [`Snapshot`] every few seconds and swaps
//! it into the [`SharedSnapshot`]; relay threads take an `Arc` of the current
//! one only on control paths (Allocate, CreatePermission, ChannelBind and the
//! 401 challenge), never per data packet. The lock is held for an `Arc` clone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::peer_policy::IpRange;

/// Options of one realm from `turn_realm_option` (absent = the command-line value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RealmLimits {
    pub user_quota: Option<u32>,
    pub total_quota: Option<u32>,
    /// `max-bps`: kept for the bandwidth limiter (not enforced yet).
    pub max_bps: Option<u64>,
}

/// One reading of the database's dynamic tables.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// (realm, range); an empty realm applies to every realm (as coturn).
    pub allowed: Vec<(String, IpRange)>,
    pub denied: Vec<(String, IpRange)>,
    /// Normalised origin (see [`normalize_origin`]) → realm.
    pub origins: HashMap<String, String>,
    pub realms: HashMap<String, RealmLimits>,
}

impl Snapshot {
    /// The realm an ORIGIN value selects, if the database maps it.
    pub fn realm_of_origin(&self, origin: &str) -> Option<&str> {
        let key = normalize_origin(origin)?;
        self.origins.get(&key).map(String::as_str)
    }

    /// The database's verdict on a peer for an allocation of `realm`:
    /// `Some(true)` allowed by a range, `Some(false)` denied by one (the
    /// denying range returned for the log), `None` when no range speaks.
    /// An allowed range beats a denied one, as with the static lists.
    pub fn peer_verdict(&self, realm: &str, ip: IpAddr) -> Option<Result<(), IpRange>> {
        let applies = |(r, _): &&(String, IpRange)| r.is_empty() || r == realm;
        if self.allowed.iter().filter(applies).any(|(_, range)| range.contains(ip)) {
            return Some(Ok(()));
        }
        self.denied.iter().filter(applies).find(|(_, range)| range.contains(ip)).map(|(_, r)| Err(*r))
    }

    /// The realm's options (all `None` when the database has none).
    pub fn limits(&self, realm: &str) -> RealmLimits {
        self.realms.get(realm).copied().unwrap_or_default()
    }
}

/// The current snapshot, swapped whole by the database service.
#[derive(Debug, Default)]
pub struct SharedSnapshot {
    current: Mutex<Arc<Snapshot>>,
}

impl SharedSnapshot {
    pub fn get(&self) -> Arc<Snapshot> {
        // A poisoned lock still holds a complete Arc.
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn replace(&self, s: Snapshot) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }
}

/// coturn's stored origin form: lowercase `scheme://host:port`, the port
/// added for http (80) and https (443) when missing, any path dropped.
/// `None` when the value has no `scheme://host`.
pub fn normalize_origin(origin: &str) -> Option<String> {
    let o = origin.trim();
    let (scheme, rest) = o.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let hostport = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Userinfo is not part of an origin.
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    if scheme.is_empty() || hostport.is_empty() {
        return None;
    }
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        // [v6]:port
        let (h, after) = stripped.split_once(']')?;
        (format!("[{h}]"), after.strip_prefix(':').map(str::to_string))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() => p,
        _ => match scheme.as_str() {
            "http" | "ws" => "80".to_string(),
            "https" | "wss" => "443".to_string(),
            _ => return Some(format!("{scheme}://{}", host.to_ascii_lowercase())),
        },
    };
    Some(format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalise_like_turnadmin() {
        assert_eq!(normalize_origin("https://App.Example.org").unwrap(), "https://app.example.org:443");
        assert_eq!(normalize_origin("http://a.b/path?x").unwrap(), "http://a.b:80");
        assert_eq!(normalize_origin("https://a.b:8443").unwrap(), "https://a.b:8443");
        assert_eq!(normalize_origin("https://[2001:db8::1]").unwrap(), "https://[2001:db8::1]:443");
        assert_eq!(normalize_origin("app.example.org"), None);
        assert_eq!(normalize_origin("https://"), None);
    }

    #[test]
    fn peer_verdict_by_realm() {
        let mut s = Snapshot::default();
        s.denied.push((String::new(), "10.0.0.1-10.0.0.9".parse().unwrap()));
        s.denied.push(("north".into(), "10.1.0.1".parse().unwrap()));
        s.allowed.push(("south".into(), "10.0.0.5".parse().unwrap()));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(matches!(s.peer_verdict("north", ip("10.0.0.5")), Some(Err(_))));
        assert_eq!(s.peer_verdict("south", ip("10.0.0.5")), Some(Ok(())));
        assert!(matches!(s.peer_verdict("north", ip("10.1.0.1")), Some(Err(_))));
        assert_eq!(s.peer_verdict("south", ip("10.1.0.1")), None);
        assert_eq!(s.peer_verdict("north", ip("192.0.2.1")), None);
    }

    #[test]
    fn snapshot_swap() {
        let sh = SharedSnapshot::default();
        let old = sh.get();
        let mut s = Snapshot::default();
        s.origins.insert("https://a.b:443".into(), "r".into());
        sh.replace(s);
        assert!(old.origins.is_empty());
        assert_eq!(sh.get().realm_of_origin("https://a.b"), Some("r"));
    }
}
