//! Credentials from the user database, without blocking the core.
//!
//! When static credentials do not know a user (or REST API secrets of a realm
//! live in `turn_secret`), [`Server::authenticate`] cannot answer at once: it
//! queues a [`CredentialQuery`] in [`Outputs::credential_queries`] and answers
//! nothing. The I/O layer parks the request, asks the database service, hands
//! the answer back with [`Server::provide_credentials`] and feeds the parked
//! request to [`Server::handle_client_datagram`] again, which now finds the
//! answer in a small per-thread cache (kept [`ANSWER_TTL_MS`]).
//!
//! Requests on an existing allocation signed with the allocation's key are
//! accepted without any database round trip, so relaying and refreshes go on
//! while the database is down (coturn keeps the session key the same way).

use std::collections::HashMap;

use super::credentials::{rest_expiry, rest_key, AuthMode, KeyLookup};
use super::dynamic::Snapshot;
use super::output::{Dest, Outputs};
use super::quota::QuotaLimits;
use super::server::{AuthInfo, Reply, Server};
use super::time::Now;
use crate::stun::integrity::MacKey;
use crate::stun::rfc8489::PasswordAlgorithm;
use crate::stun::{AttrType, Message};

/// How long a database answer stays usable on its thread.
pub const ANSWER_TTL_MS: u64 = 2_000;
/// Cached answers per thread before expired ones are dropped (and, if still
/// full, all of them).
const CACHE_MAX: usize = 4096;

/// What the core needs from the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialQuery {
    /// `turnusers_lt.hmackey` of (realm, user).
    UserKey { realm: String, username: String },
    /// `turn_secret` values of a realm.
    RealmSecrets { realm: String },
    /// The `oauth_key` row of a kid (RFC 7635).
    OauthKey { kid: String },
    /// The user of a realm whose RFC 8489 USERHASH, SHA-256(name ":" realm),
    /// is `hash`.
    UserHash { realm: String, hash: [u8; 32] },
}

/// The database's answer to a [`CredentialQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbAnswer {
    /// The user's MD5 key; `None` when there is no such user (401).
    Key(Option<[u8; 16]>),
    /// The user's RFC 8489 SHA-256 key (a 64-hex-digit `hmackey`): usable
    /// only with PASSWORD-ALGORITHM SHA-256.
    Sha256Key([u8; 32]),
    /// The realm's REST secrets (possibly none).
    Secrets(Vec<String>),
    /// The kid's key row; `None` when there is no such kid (401).
    OauthKey(Option<super::oauth::OauthKeyRow>),
    /// The user a USERHASH stands for; `None` when no user of the realm has it.
    UserName(Option<String>),
    /// The database failed or timed out: 500, a temporary error.
    Failed,
}

/// The per-thread answer cache.
#[derive(Debug, Default)]
pub(crate) struct AnswerCache {
    entries: HashMap<CredentialQuery, (DbAnswer, u64)>,
}

impl AnswerCache {
    pub(crate) fn get(&self, q: &CredentialQuery, now_ms: u64) -> Option<&DbAnswer> {
        self.entries.get(q).filter(|(_, until)| *until > now_ms).map(|(a, _)| a)
    }

    fn put(&mut self, q: CredentialQuery, a: DbAnswer, now_ms: u64) {
        if self.entries.len() >= CACHE_MAX {
            self.entries.retain(|_, (_, until)| *until > now_ms);
            if self.entries.len() >= CACHE_MAX {
                self.entries.clear();
            }
        }
        self.entries.insert(q, (a, now_ms + ANSWER_TTL_MS));
    }
}

/// The outcome of resolving a USERHASH against the user database.
#[derive(Debug)]
pub(crate) enum HashLookup {
    Found(String),
    /// Asked the database; answer nothing now.
    Pending,
    /// No user of the realm has this hash (401).
    Unknown,
    /// The database failed (500).
    Failed,
}

/// The outcome of checking a request's keys.
#[derive(Debug)]
pub(crate) enum KeyCheck {
    Verified(MacKey),
    /// The user has keys only for this password algorithm: 401 offering it.
    OnlyAlgorithm(PasswordAlgorithm),
    WrongIntegrity,
    Expired,
    Unknown,
    /// The database failed: answer 500.
    Failed,
    /// A query is queued; answer nothing now.
    Pending,
}

impl Server {
    /// Hand the database's answer to `query` to the core (before re-running
    /// the requests parked for it).
    pub fn provide_credentials(&mut self, query: CredentialQuery, answer: DbAnswer, now: Now) {
        self.db_answers.put(query, answer, now.ms);
    }

    /// The database user a USERHASH (RFC 8489 14.4) stands for: the
    /// database service hashes the realm's user names (the tables store
    /// names, not hashes) and answers the name.
    pub(crate) fn db_user_by_hash(&self, now: Now, hash: &[u8], realm: &str, out: &mut Outputs) -> HashLookup {
        let Ok(hash) = <[u8; 32]>::try_from(hash) else { return HashLookup::Unknown };
        if !self.cfg.userdb {
            return HashLookup::Unknown;
        }
        let query = CredentialQuery::UserHash { realm: realm.to_string(), hash };
        match self.db_answers.get(&query, now.ms) {
            None => {
                out.credential_queries.push(query);
                HashLookup::Pending
            }
            Some(DbAnswer::UserName(Some(name))) => HashLookup::Found(name.clone()),
            Some(DbAnswer::Failed) => HashLookup::Failed,
            Some(_) => HashLookup::Unknown,
        }
    }

    /// The current database snapshot, when a database is configured.
    pub(crate) fn snapshot(&self) -> Option<std::sync::Arc<Snapshot>> {
        self.cfg.dynamic.as_ref().map(|d| d.get())
    }

    /// The realm a request belongs to: its ORIGIN's realm when the database
    /// maps it, else the default realm.
    pub(crate) fn realm_for(&self, msg: &Message) -> String {
        if let (Some(snap), Some(Ok(origin))) = (self.snapshot(), msg.str_attr(AttrType::ORIGIN)) {
            if let Some(r) = snap.realm_of_origin(origin) {
                return r.to_string();
            }
        }
        self.cfg.credentials.realm.clone()
    }

    /// Quota limits of a realm: the database's realm options over the
    /// command-line values.
    pub(crate) fn quota_limits(&self, realm: &str) -> QuotaLimits {
        let mut l = self.cfg.quotas.defaults();
        if let Some(snap) = self.snapshot() {
            let r = snap.limits(realm);
            if let Some(u) = r.user_quota {
                l.user_quota = u;
            }
            if let Some(t) = r.total_quota {
                l.total_quota = t;
            }
        }
        l
    }

    /// A session's default rate in `realm`: the realm's `max-bps` option
    /// from the database, else `--max-bps` (0: unlimited).
    pub(crate) fn max_bps_for(&self, realm: &str) -> u64 {
        self.snapshot().and_then(|snap| snap.limits(realm).max_bps).unwrap_or(self.cfg.max_bps)
    }

    /// The database's ranges on a peer of an allocation in `realm` (`None`:
    /// no database, or no range speaks).
    pub(crate) fn dynamic_peer_verdict(&self, realm: &str, ip: std::net::IpAddr) -> Option<Result<(), super::peer_policy::IpRange>> {
        self.cfg.dynamic.as_ref()?.get().peer_verdict(realm, ip)
    }

    /// A request on this 5-tuple's allocation, by its user, signed with the
    /// allocation's key: accepted without asking anyone.
    pub(crate) fn session_key_auth(&self, msg: &Message, reply: Reply, username: &str, realm: &str) -> Option<AuthInfo> {
        let Dest::Client { transport, local, to } = reply.dest else { return None };
        let a = self.by_client.get(&(transport, to, local)).and_then(|&s| self.allocs.get(s))?;
        let key = a.key?;
        (a.username == username && a.realm == realm && msg.check_any_integrity(&key))
            .then(|| AuthInfo { username: username.to_string(), realm: realm.to_string(), key: Some(key), expires_unix: None })
    }

    /// Which key signed the request: static credentials first, then the
    /// database (cached answer, or a query queued in `out`).
    pub(crate) fn check_keys(
        &mut self,
        now: Now,
        msg: &Message,
        username: &str,
        realm: &str,
        alg: PasswordAlgorithm,
        out: &mut Outputs,
    ) -> KeyCheck {
        let cfg = std::sync::Arc::clone(&self.cfg);
        let verify = |keys: &[MacKey]| keys.iter().find(|k| msg.check_any_integrity(k)).copied();
        let stat = cfg.credentials.lookup_alg(username, realm, now.unix, alg);
        if let KeyLookup::Found(keys) = &stat {
            if let Some(k) = verify(keys) {
                return KeyCheck::Verified(k);
            }
        }
        if !cfg.userdb {
            return match stat {
                KeyLookup::Found(_) => KeyCheck::WrongIntegrity,
                KeyLookup::OnlyAlgorithm(a) => KeyCheck::OnlyAlgorithm(a),
                KeyLookup::Expired => KeyCheck::Expired,
                KeyLookup::Unknown => KeyCheck::Unknown,
            };
        }
        let query = match &cfg.credentials.mode {
            AuthMode::NoAuth => return KeyCheck::Unknown,
            // A static user's key is the only key for that name.
            AuthMode::LongTerm { .. } => match stat {
                KeyLookup::Found(_) => return KeyCheck::WrongIntegrity,
                KeyLookup::OnlyAlgorithm(a) => return KeyCheck::OnlyAlgorithm(a),
                _ => CredentialQuery::UserKey { realm: realm.to_string(), username: username.to_string() },
            },
            AuthMode::RestSecret { separator, .. } => {
                if rest_expiry(username, *separator).is_none_or(|e| e < now.unix) {
                    return KeyCheck::Expired;
                }
                CredentialQuery::RealmSecrets { realm: realm.to_string() }
            }
        };
        let one = |k: MacKey| match verify(&[k]) {
            Some(k) => KeyCheck::Verified(k),
            None => KeyCheck::WrongIntegrity,
        };
        match self.db_answers.get(&query, now.ms) {
            None => {
                out.credential_queries.push(query);
                KeyCheck::Pending
            }
            Some(DbAnswer::Failed) => KeyCheck::Failed,
            Some(DbAnswer::Key(Some(k))) => match alg {
                PasswordAlgorithm::Md5 => one(MacKey::from(*k)),
                PasswordAlgorithm::Sha256 => KeyCheck::OnlyAlgorithm(PasswordAlgorithm::Md5),
            },
            Some(DbAnswer::Sha256Key(k)) => match alg {
                PasswordAlgorithm::Sha256 => one(MacKey::from(*k)),
                // An RFC 5389 client (no PASSWORD-ALGORITHM) cannot use a
                // SHA-256 key: as before, the user is unknown to it.
                PasswordAlgorithm::Md5 if msg.get(AttrType::PASSWORD_ALGORITHM).is_none() => KeyCheck::Unknown,
                PasswordAlgorithm::Md5 => KeyCheck::OnlyAlgorithm(PasswordAlgorithm::Sha256),
            },
            Some(DbAnswer::Key(None) | DbAnswer::OauthKey(_) | DbAnswer::UserName(_)) => KeyCheck::Unknown,
            Some(DbAnswer::Secrets(list)) => {
                let keys: Vec<MacKey> =
                    list.iter().map(|s| rest_key(cfg.credentials.rest_hmac, alg, s, username, realm)).collect();
                match verify(&keys) {
                    Some(k) => KeyCheck::Verified(k),
                    None if keys.is_empty() && !matches!(stat, KeyLookup::Found(_)) => KeyCheck::Unknown,
                    None => KeyCheck::WrongIntegrity,
                }
            }
        }
    }
}
