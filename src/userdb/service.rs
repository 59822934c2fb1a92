//! The database service: one thread with its own tokio runtime that owns the
//! [`UserDb`] handle.
//!
//! * Relay threads submit [`CredentialQuery`]s through a bounded queue with
//!   `try_send` ([`DbClient::submit`]); a full queue is an immediate failure
//!   for the caller, never a wait. Answers come back on the submitting
//!   thread's own channel, followed by a wake of its `mio::Waker`.
//! * Every [`RELOAD_INTERVAL`] it re-reads the dynamic tables (peer ranges,
//!   ORIGIN → realm, realm options) into the shared [`Snapshot`]; a failed
//!   reload keeps the last good snapshot.
//! * A database that is down answers [`DbAnswer::Failed`] quickly (each query
//!   has a [`QUERY_TIMEOUT`]); the outage is logged once, when it starts and
//!   when it ends; an initial connection that failed is retried with backoff.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use mio::Waker;
use tokio::sync::mpsc as tmpsc;

use super::{DbError, DbSpec, PeerList, UserDb};
use crate::core::credentials::parse_key_hex;
use crate::core::dbauth::{CredentialQuery, DbAnswer};
use crate::core::dynamic::{normalize_origin, RealmLimits, SharedSnapshot, Snapshot};
use crate::core::peer_policy::IpRange;

/// Pending queries the service accepts before `submit` starts failing.
pub const QUEUE_DEPTH: usize = 1024;
/// The longest a credential query may take before it is answered `Failed`.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the dynamic tables are re-read (coturn re-reads them periodically).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// Reconnect backoff after a failed initial connection: first and largest wait.
/// A USERHASH that matches no known user re-reads the realm's user names at
/// most this often: random hashes from unauthenticated clients must not turn
/// into one table scan each.
const USERHASH_REFRESH: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the service loads besides credentials.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub spec: DbSpec,
    /// `--no-dynamic-ip-list`
    pub no_dynamic_ip_list: bool,
    /// `--no-dynamic-realms`
    pub no_dynamic_realms: bool,
    /// `--no-auth-pings`: no keep-alive pings when nothing else is read.
    pub no_auth_pings: bool,
    pub reload_interval: Duration,
}

/// One query and where its answer goes.
struct Job {
    query: CredentialQuery,
    reply: Reply,
}

/// A relay thread's answer channel and waker.
#[derive(Clone)]
struct Reply {
    tx: mpsc::Sender<(CredentialQuery, DbAnswer)>,
    waker: Arc<Waker>,
}

impl Reply {
    fn send(&self, q: CredentialQuery, a: DbAnswer) {
        // A stopped relay thread has dropped its receiver: nothing to do.
        if self.tx.send((q, a)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// The submitting side of the service, cloned into every relay thread.
#[derive(Clone)]
pub struct DbQueue {
    tx: tmpsc::Sender<Job>,
}

/// A relay thread's connection to the service.
pub struct DbClient {
    queue: tmpsc::Sender<Job>,
    reply: Reply,
    answers: mpsc::Receiver<(CredentialQuery, DbAnswer)>,
}

impl DbClient {
    /// The client of the thread woken by `waker`.
    pub fn new(queue: &DbQueue, waker: Arc<Waker>) -> Self {
        let (tx, answers) = mpsc::channel();
        DbClient { queue: queue.tx.clone(), reply: Reply { tx, waker }, answers }
    }

    /// Queue a query without waiting; false when the service is saturated
    /// or gone (the caller answers the request as failed).
    pub fn submit(&self, query: CredentialQuery) -> bool {
        self.queue.try_send(Job { query, reply: self.reply.clone() }).is_ok()
    }

    /// The next answer that arrived, if any.
    pub fn try_recv(&self) -> Option<(CredentialQuery, DbAnswer)> {
        self.answers.try_recv().ok()
    }
}

/// The running service.
pub struct DbService {
    queue: DbQueue,
    snapshot: Arc<SharedSnapshot>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Held while the service must not touch the database yet (until
    /// `--proc-user` has taken effect, so a SQLite file is created by the
    /// service user, not root). Dropping it lets the thread start.
    hold: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DbService {
    /// Start the service thread. Fails only when the thread or runtime cannot
    /// be created; an unreachable database is retried in the background.
    pub fn start(opts: ServiceOptions) -> std::io::Result<DbService> {
        let mut svc = DbService::start_held(opts)?;
        svc.open();
        Ok(svc)
    }

    /// As [`DbService::start`], but the database is first opened on
    /// [`DbService::open`]; queries queue meanwhile.
    pub fn start_held(opts: ServiceOptions) -> std::io::Result<DbService> {
        let (tx, rx) = tmpsc::channel(QUEUE_DEPTH);
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let snapshot = Arc::new(SharedSnapshot::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("userdb").enable_all().build()?;
        let snap = Arc::clone(&snapshot);
        let thread = std::thread::Builder::new().name("userdb".into()).spawn(move || {
            // Returns once the sender is dropped (open, stop, or drop).
            let _ = held.recv();
            let mut stop_rx = stop_rx;
            if !matches!(stop_rx.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)) {
                return; // stopped before it was ever opened
            }
            rt.block_on(run(opts, rx, snap, stop_rx));
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
        Ok(DbService { queue: DbQueue { tx }, snapshot, stop: Some(stop_tx), hold: Some(hold), thread: Some(thread) })
    }

    /// Let the service connect to the database (no-op once open).
    pub fn open(&mut self) {
        self.hold = None;
    }

    pub fn queue(&self) -> DbQueue {
        self.queue.clone()
    }

    pub fn snapshot(&self) -> Arc<SharedSnapshot> {
        Arc::clone(&self.snapshot)
    }

    /// Stop the service and wait for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            // Stop first, so a service never opened leaves at once.
            let _ = s.send(());
        }
        self.hold = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DbService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// coturn's name of the database kind in its log lines.
pub fn kind_name(spec: &DbSpec) -> &'static str {
    match spec {
        DbSpec::Sqlite(_) => "SQLite",
        DbSpec::Postgres(_) => "PostgreSQL",
        DbSpec::Mysql(_) => "MySQL",
        DbSpec::Redis(_) => "Redis",
    }
}

/// The connection string for logs, with any password hidden.
pub fn display_spec(spec: &DbSpec) -> String {
    let s = match spec {
        DbSpec::Sqlite(p) => return p.display().to_string(),
        DbSpec::Postgres(s) | DbSpec::Mysql(s) | DbSpec::Redis(s) => s,
    };
    if let Some((scheme, rest)) = s.split_once("://") {
        // URI: user:password@host
        if let Some((auth, host)) = rest.split_once('@') {
            let user = auth.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
        return s.clone();
    }
    mask_keyword_password(s)
}

/// `key=value ...` with the `password` value replaced by `***`; a quoted
/// value (libpq: `'...'`, with `\'` escapes) is masked whole.
fn mask_keyword_password(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let (key, after) = match rest.split_once('=') {
            Some((k, a)) if !k.contains(char::is_whitespace) => (k.trim(), a.trim_start()),
            _ => {
                out.push_str(rest);
                break;
            }
        };
        // The value: quoted (to the closing quote) or up to whitespace.
        let end = if let Some(q) = after.strip_prefix('\'') {
            let mut esc = false;
            let mut end = after.len();
            for (i, ch) in q.char_indices() {
                match ch {
                    _ if esc => esc = false,
                    '\\' => esc = true,
                    '\'' => {
                        end = i + 2;
                        break;
                    }
                    _ => {}
                }
            }
            end
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        let value = if key.eq_ignore_ascii_case("password") { "***" } else { &after[..end] };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        rest = after[end..].trim_start();
    }
    out
}

/// Tracks whether the database is reachable, logging changes once.
struct Health {
    kind: &'static str,
    shown: String,
    down: AtomicBool,
}

impl Health {
    fn failed(&self, e: &DbError) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::error!("Cannot open {} DB connection: <{}>, runtime error: {e}", self.kind, self.shown);
        }
    }

    fn ok(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("{} DB connection success: {} (connection restored)", self.kind, self.shown);
        }
    }
}

/// USERHASH → user name per realm. The tables store names, not hashes, so
/// the service hashes a realm's names when a hash is first asked for, and
/// again (at most every [`USERHASH_REFRESH`]) when one is not found.
#[derive(Default)]
struct UserHashes {
    realms: std::collections::HashMap<String, RealmHashes>,
}

struct RealmHashes {
    read_at: tokio::time::Instant,
    by_hash: std::collections::HashMap<[u8; 32], String>,
}

/// The user of `realm` whose USERHASH is `hash`, if any.
/// A miss re-reads the names when the last read is `refresh` old.
async fn user_by_hash(
    db: &UserDb,
    realm: &str,
    hash: &[u8; 32],
    index: &tokio::sync::Mutex<UserHashes>,
    refresh: Duration,
) -> Result<Option<String>, DbError> {
    // Held across the read: concurrent misses wait for one scan.
    let mut index = index.lock().await;
    if let Some(r) = index.realms.get(realm) {
        if let Some(name) = r.by_hash.get(hash) {
            return Ok(Some(name.clone()));
        }
        if r.read_at.elapsed() < refresh {
            return Ok(None);
        }
    }
    let users = db.list_users(Some(realm)).await?;
    let by_hash = users
        .into_iter()
        .filter(|(_, r)| r == realm)
        .map(|(name, _)| (crate::stun::rfc8489::userhash(&name, realm), name))
        .collect::<std::collections::HashMap<_, _>>();
    let found = by_hash.get(hash).cloned();
    index.realms.insert(realm.to_string(), RealmHashes { read_at: tokio::time::Instant::now(), by_hash });
    Ok(found)
}

async fn run(opts: ServiceOptions, mut rx: tmpsc::Receiver<Job>, snapshot: Arc<SharedSnapshot>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let health = Arc::new(Health { kind: kind_name(&opts.spec), shown: display_spec(&opts.spec), down: AtomicBool::new(false) });
    let hashes = Arc::new(tokio::sync::Mutex::new(UserHashes::default()));
    let mut db: Option<UserDb> = None;
    let mut backoff = BACKOFF_MIN;
    let mut next_connect = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(opts.reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if db.is_none() && tokio::time::Instant::now() >= next_connect {
            match tokio::time::timeout(QUERY_TIMEOUT, UserDb::connect(&opts.spec)).await {
                Ok(Ok(d)) => {
                    tracing::info!("{} DB connection success: {}", health.kind, health.shown);
                    health.down.store(false, Ordering::Release);
                    backoff = BACKOFF_MIN;
                    reload(&d, &opts, &snapshot, &health).await;
                    db = Some(d);
                }
                Ok(Err(e)) => health.failed(&e),
                Err(_) => health.failed(&DbError::Backend("connection timed out".into())),
            }
            if db.is_none() {
                next_connect = tokio::time::Instant::now() + backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            job = rx.recv() => {
                let Some(job) = job else { break };
                match &db {
                    Some(d) => {
                        let (d, health, hashes) = (d.clone(), Arc::clone(&health), Arc::clone(&hashes));
                        tokio::spawn(async move {
                            let answer = answer(&d, &job.query, &health, &hashes).await;
                            job.reply.send(job.query, answer);
                        });
                    }
                    // Not connected: fail fast; the reconnect runs on its own schedule.
                    None => job.reply.send(job.query, DbAnswer::Failed),
                }
            }
            _ = tick.tick() => {
                if let Some(d) = &db {
                    reload(d, &opts, &snapshot, &health).await;
                }
            }
        }
    }
}

/// Answer one credential query (with the query timeout).
async fn answer(db: &UserDb, q: &CredentialQuery, health: &Health, hashes: &tokio::sync::Mutex<UserHashes>) -> DbAnswer {
    let result = match q {
        CredentialQuery::UserKey { realm, username } => {
            tokio::time::timeout(QUERY_TIMEOUT, db.get_user_key(realm, username)).await.map(|r| r.map(|k| match k {
                Some(k) => user_key(&k, realm, username),
                None => DbAnswer::Key(None),
            }))
        }
        CredentialQuery::RealmSecrets { realm } => {
            tokio::time::timeout(QUERY_TIMEOUT, db.get_secrets(realm)).await.map(|r| r.map(DbAnswer::Secrets))
        }
        CredentialQuery::OauthKey { kid } => {
            tokio::time::timeout(QUERY_TIMEOUT, db.get_oauth_key(kid)).await.map(|r| r.map(DbAnswer::OauthKey))
        }
        CredentialQuery::UserHash { realm, hash } => {
            tokio::time::timeout(QUERY_TIMEOUT, user_by_hash(db, realm, hash, hashes, USERHASH_REFRESH)).await.map(|r| r.map(DbAnswer::UserName))
        }
    };
    match result {
        Ok(Ok(a)) => {
            health.ok();
            a
        }
        Ok(Err(e)) => {
            health.failed(&e);
            DbAnswer::Failed
        }
        Err(_) => {
            health.failed(&DbError::Backend("query timed out".into()));
            DbAnswer::Failed
        }
    }
}

/// A stored `hmackey`: 32 hex digits are an MD5 key, 64 an RFC 8489 SHA-256
/// key (SHA-256(user:realm:password), as coturn stores them for SHA-256
/// realms; usable by clients that choose PASSWORD-ALGORITHM SHA-256). Anything
/// else: the user is treated as unknown, with a log line.
fn user_key(hex: &str, realm: &str, user: &str) -> DbAnswer {
    let hex = hex.trim();
    if let Some(k) = parse_key_hex(hex) {
        return DbAnswer::Key(Some(k));
    }
    if let Some(k) = parse_sha256_hex(hex) {
        return DbAnswer::Sha256Key(k);
    }
    tracing::warn!("user <{user}> realm <{realm}>: stored key is neither a 32-digit (MD5) nor a 64-digit (SHA-256) hex key; ignored");
    DbAnswer::Key(None)
}

/// 32 bytes from 64 hex digits.
fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let (a, b) = (hex.get(..32)?, hex.get(32..)?);
    let (a, b) = (parse_key_hex(a)?, parse_key_hex(b)?);
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&a);
    k[16..].copy_from_slice(&b);
    Some(k)
}

/// Re-read the dynamic tables into a new snapshot; on failure keep the old one.
async fn reload(db: &UserDb, opts: &ServiceOptions, snapshot: &SharedSnapshot, health: &Health) {
    if opts.no_dynamic_ip_list && opts.no_dynamic_realms {
        if !opts.no_auth_pings {
            match tokio::time::timeout(QUERY_TIMEOUT, db.ping()).await {
                Ok(Ok(())) => health.ok(),
                Ok(Err(e)) => health.failed(&e),
                Err(_) => health.failed(&DbError::Backend("ping timed out".into())),
            }
        }
        return;
    }
    match tokio::time::timeout(QUERY_TIMEOUT, load(db, opts)).await {
        Ok(Ok(s)) => {
            health.ok();
            snapshot.replace(s);
        }
        Ok(Err(e)) => health.failed(&e),
        Err(_) => health.failed(&DbError::Backend("reload timed out".into())),
    }
}

/// Read the dynamic tables the options ask for.
pub async fn load(db: &UserDb, opts: &ServiceOptions) -> Result<Snapshot, DbError> {
    let mut s = Snapshot::default();
    if !opts.no_dynamic_ip_list {
        for (list, into) in [(PeerList::Allowed, &mut s.allowed), (PeerList::Denied, &mut s.denied)] {
            for row in db.list_peer_ranges(list).await? {
                match row.range.parse::<IpRange>() {
                    Ok(r) => into.push((row.realm, r)),
                    Err(e) => tracing::debug!("database peer range ignored: {e}"),
                }
            }
        }
    }
    if !opts.no_dynamic_realms {
        for (origin, realm) in db.list_origins(None).await? {
            if let Some(o) = normalize_origin(&origin) {
                s.origins.insert(o, realm);
            }
        }
        for o in db.list_realm_options(None).await? {
            let limits = s.realms.entry(o.realm).or_insert_with(RealmLimits::default);
            let v = o.value.trim();
            match o.opt.as_str() {
                "user-quota" => limits.user_quota = v.parse().ok(),
                "total-quota" => limits.total_quota = v.parse().ok(),
                "max-bps" => limits.max_bps = v.parse().ok(),
                _ => {}
            }
        }
    }
    Ok(s)
}

/// The database server hosts named in a connection string, as IP addresses
/// (hostnames resolved now). coturn >= 4.13.1 denies them as peers so a
/// client cannot reach the database through the relay. SQLite has none.
pub fn db_hosts(spec: &DbSpec) -> Vec<IpAddr> {
    let (s, default_port) = match spec {
        DbSpec::Sqlite(_) => return Vec::new(),
        DbSpec::Postgres(s) => (s.as_str(), 5432),
        DbSpec::Mysql(s) => (s.as_str(), 3306),
        DbSpec::Redis(s) => (s.as_str(), 6379),
    };
    let mut hosts: Vec<String> = Vec::new();
    if let Some((_, rest)) = s.split_once("://") {
        // scheme://[user[:pw]@]host[:port][,host2...][/db][?query]
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let hostlist = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        for h in hostlist.split(',') {
            let h = if let Some(v6) = h.strip_prefix('[') { v6.split(']').next().unwrap_or("") } else { h.split(':').next().unwrap_or("") };
            if !h.is_empty() {
                hosts.push(h.to_string());
            }
        }
        if let Some((_, q)) = rest.split_once('?') {
            for kv in q.split('&') {
                if let Some(("host" | "hostaddr", v)) = kv.split_once('=') {
                    hosts.push(v.to_string());
                }
            }
        }
    } else {
        for kv in s.split_whitespace() {
            if let Some((k, v)) = kv.split_once('=') {
                if matches!(k.to_ascii_lowercase().as_str(), "host" | "hostaddr" | "ip" | "addr") {
                    hosts.extend(v.split(',').map(str::to_string));
                }
            }
        }
    }
    let mut ips = Vec::new();
    for h in hosts {
        // A Unix socket directory is no peer.
        if h.starts_with('/') || h.is_empty() {
            continue;
        }
        let found: Vec<IpAddr> = match h.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(h.as_str(), default_port))
                .map(|it| it.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        for ip in found {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    ips
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hidden_in_logs() {
        let s = display_spec(&DbSpec::Mysql("host=10.0.0.1 dbname=coturn user=turn password=secret".into()));
        assert_eq!(s, "host=10.0.0.1 dbname=coturn user=turn password=***");
        let s = display_spec(&DbSpec::Postgres("host=h password='a b\\'c' user=u".into()));
        assert_eq!(s, "host=h password=*** user=u");
        let s = display_spec(&DbSpec::Postgres("postgresql://turn:secret@db.example:5432/coturn".into()));
        assert_eq!(s, "postgresql://turn:***@db.example:5432/coturn");
    }

    #[test]
    fn database_hosts_found() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(db_hosts(&DbSpec::Mysql("host=10.0.0.7 dbname=c user=u password=p".into())), vec![ip("10.0.0.7")]);
        assert_eq!(db_hosts(&DbSpec::Redis("ip=10.0.0.8 dbname=0".into())), vec![ip("10.0.0.8")]);
        assert_eq!(db_hosts(&DbSpec::Postgres("postgresql://u:p@10.0.0.9:5433/c".into())), vec![ip("10.0.0.9")]);
        assert_eq!(db_hosts(&DbSpec::Postgres("postgresql://u@[2001:db8::5]/c".into())), vec![ip("2001:db8::5")]);
        assert_eq!(db_hosts(&DbSpec::Postgres("host=/var/run/postgresql dbname=c".into())), Vec::<IpAddr>::new());
        assert!(db_hosts(&DbSpec::Sqlite("/tmp/x.db".into())).is_empty());
        // A name is resolved.
        assert!(db_hosts(&DbSpec::Postgres("host=localhost dbname=c".into())).iter().all(|i| i.is_loopback()));
    }

    fn opts(spec: DbSpec) -> ServiceOptions {
        ServiceOptions {
            spec,
            no_dynamic_ip_list: false,
            no_dynamic_realms: false,
            no_auth_pings: false,
            reload_interval: Duration::from_millis(100),
        }
    }

    /// Wait (up to 10 s) for the waker, then take one answer.
    fn answer_of(poll: &mut mio::Poll, client: &DbClient) -> (CredentialQuery, DbAnswer) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut events = mio::Events::with_capacity(4);
        loop {
            if let Some(a) = client.try_recv() {
                return a;
            }
            assert!(std::time::Instant::now() < deadline, "no answer within 10 s");
            poll.poll(&mut events, Some(Duration::from_millis(200))).unwrap();
        }
    }

    #[test]
    fn stored_key_lengths() {
        let md5 = "bc807ee29df3c9ffa736523fb2c4e8ee";
        assert_eq!(user_key(md5, "r", "u"), DbAnswer::Key(parse_key_hex(md5)));
        // SHA-256("ninefingers:north.gov:youhavetoberealistic"), independent (python3 hashlib).
        let sha = "5f5d3d9418276cb0a5d16b0c336ec875c0b6f1d6a65d8aed1f91dd073b800f95";
        assert_eq!(
            user_key(&format!(" {sha} "), "north.gov", "ninefingers"),
            DbAnswer::Sha256Key(crate::stun::integrity::long_term_key_sha256("ninefingers", "north.gov", "youhavetoberealistic"))
        );
        assert_eq!(user_key("abc", "r", "u"), DbAnswer::Key(None));
        assert_eq!(user_key(&"é".repeat(32), "r", "u"), DbAnswer::Key(None));
        assert_eq!(user_key(&format!("{sha}00"), "r", "u"), DbAnswer::Key(None));
    }

    #[test]
    fn service_answers_queries_and_reloads_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let spec = DbSpec::Sqlite(dir.path().join("turndb"));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let db = UserDb::connect(&spec).await.unwrap();
            db.set_user_key("north", "alice", "bc807ee29df3c9ffa736523fb2c4e8ee").await.unwrap();
            db.add_secret("north", "s1").await.unwrap();
            db.add_peer_range(PeerList::Denied, "", "10.9.0.1-10.9.0.9").await.unwrap();
            db.add_origin("https://app.example.org:443", "north").await.unwrap();
            db.set_realm_option("north", "user-quota", "3").await.unwrap();
        });
        let svc = DbService::start(opts(spec)).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(7)).unwrap());
        let client = DbClient::new(&svc.queue(), waker);
        let q = CredentialQuery::UserKey { realm: "north".into(), username: "alice".into() };
        assert!(client.submit(q.clone()));
        let (got_q, a) = answer_of(&mut poll, &client);
        assert_eq!(got_q, q);
        assert_eq!(a, DbAnswer::Key(parse_key_hex("bc807ee29df3c9ffa736523fb2c4e8ee")));
        let q = CredentialQuery::UserKey { realm: "south".into(), username: "alice".into() };
        assert!(client.submit(q));
        assert_eq!(answer_of(&mut poll, &client).1, DbAnswer::Key(None));
        assert!(client.submit(CredentialQuery::RealmSecrets { realm: "north".into() }));
        assert_eq!(answer_of(&mut poll, &client).1, DbAnswer::Secrets(vec!["s1".into()]));
        // USERHASH: the service hashes the realm's names.
        let hash = crate::stun::rfc8489::userhash("alice", "north");
        assert!(client.submit(CredentialQuery::UserHash { realm: "north".into(), hash }));
        assert_eq!(answer_of(&mut poll, &client).1, DbAnswer::UserName(Some("alice".into())));
        assert!(client.submit(CredentialQuery::UserHash { realm: "south".into(), hash }));
        assert_eq!(answer_of(&mut poll, &client).1, DbAnswer::UserName(None), "the hash names the realm too");
        // The snapshot follows the tables.
        let snap = svc.snapshot();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while snap.get().denied.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = snap.get();
        assert_eq!(s.denied.len(), 1);
        assert_eq!(s.realm_of_origin("https://APP.example.org"), Some("north"));
        assert_eq!(s.limits("north").user_quota, Some(3));
        svc.stop();
    }

    #[test]
    fn unreachable_database_fails_fast() {
        // A SQLite file in a directory that does not exist cannot be opened.
        let svc = DbService::start(opts(DbSpec::Sqlite("/nonexistent-dir/x/turndb".into()))).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(7)).unwrap());
        let client = DbClient::new(&svc.queue(), waker);
        let t0 = std::time::Instant::now();
        assert!(client.submit(CredentialQuery::RealmSecrets { realm: "r".into() }));
        assert_eq!(answer_of(&mut poll, &client).1, DbAnswer::Failed);
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        // A stopped service refuses submissions at once.
        svc.stop();
        assert!(!client.submit(CredentialQuery::RealmSecrets { realm: "r".into() }));
    }

    #[test]
    fn userhash_misses_rescan_at_most_every_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let spec = DbSpec::Sqlite(dir.path().join("turndb"));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let db = UserDb::connect(&spec).await.unwrap();
            db.set_user_key("north", "alice", "bc807ee29df3c9ffa736523fb2c4e8ee").await.unwrap();
            let index = tokio::sync::Mutex::new(UserHashes::default());
            let bob = crate::stun::rfc8489::userhash("bob", "north");
            let hour = Duration::from_secs(3600);
            assert_eq!(user_by_hash(&db, "north", &bob, &index, hour).await.unwrap(), None);
            // Bob is added: a miss within the refresh interval does not read again...
            db.set_user_key("north", "bob", "bc807ee29df3c9ffa736523fb2c4e8ee").await.unwrap();
            assert_eq!(user_by_hash(&db, "north", &bob, &index, hour).await.unwrap(), None);
            // ...one after it does.
            assert_eq!(user_by_hash(&db, "north", &bob, &index, Duration::ZERO).await.unwrap(), Some("bob".into()));
            let alice = crate::stun::rfc8489::userhash("alice", "north");
            assert_eq!(user_by_hash(&db, "north", &alice, &index, hour).await.unwrap(), Some("alice".into()));
        });
    }
}
