//! coturn's Redis user database (`--redis-userdb`, `turnadmin -N`).
//!
//! Owns the parsing of coturn's Redis connection string (shared with the
//! stats database in [`super::statsdb`]) and the key layout of
//! `turndb/schema.userdb.redis`:
//!
//! | key | type |
//! |---|---|
//! | `turn/realm/<realm>/user/<user>/key` | string, hex key |
//! | `turn/realm/<realm>/secret` | set |
//! | `turn/realm/<realm>/allowed-peer-ip`, `.../denied-peer-ip` | set |
//! | `turn/realm/<realm>/max-bps`, `total-quota`, `user-quota` | string |
//! | `turn/origin/<origin>` | string, realm |
//! | `turn/admin_user/<name>` | hash: `password`, `realm` |
//!
//! The connection is made lazily and kept by a [`ConnectionManager`], which
//! reconnects by itself. A Redis that is down when [`RedisDb::connect`] runs
//! still gives a handle; every call then fails with [`DbError::Backend`] within
//! a bounded time (connect timeout plus a small margin) until Redis answers,
//! and works again without any action from the caller once it does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, ConnectionInfo, FromRedisValue, RedisConnectionInfo};

use super::{AdminUser, DbError, DbResult, PeerList, PeerRange, RealmOption};

/// Redis's own default port.
pub const DEFAULT_PORT: u16 = 6379;
/// Connect timeout when the connection string has no `connect_timeout=`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// What a single call may take beyond the connect timeout before it fails.
const CALL_MARGIN: Duration = Duration::from_secs(2);
/// Keys asked for per SCAN round trip.
const SCAN_COUNT: usize = 1000;

/// The realm options coturn keeps in Redis (`turnadmin -g`).
pub const REALM_OPTIONS: [&str; 3] = ["max-bps", "total-quota", "user-quota"];

/// TLS settings of a connection string (`tls=true ca= capath= cert= clientkey= sni=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSpec {
    /// PEM file with the CA certificate(s) to trust instead of the system store.
    pub ca: Option<PathBuf>,
    /// Directory whose `*.pem`/`*.crt` files are trusted CA certificates.
    pub capath: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `clientkey`.
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs `cert`.
    pub clientkey: Option<PathBuf>,
    /// Server name asked for; the TLS library always sends the host, so a
    /// different value only produces a warning.
    pub sni: Option<String>,
}

/// A parsed coturn Redis connection string such as
/// `ip=127.0.0.1 dbname=2 password=pw port=6379 connect_timeout=30`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSpec {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub user: Option<String>,
    pub password: Option<String>,
    pub connect_timeout: Duration,
    pub tls: Option<TlsSpec>,
}

fn bad(msg: impl Into<String>) -> DbError {
    DbError::BadSpec(msg.into())
}

fn parse_bool(key: &str, v: &str) -> DbResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(format!("redis `{key}={v}`: expected true or false"))),
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

impl RedisSpec {
    /// Parses coturn's `key=value key=value` string. Keys are case-insensitive;
    /// `ip`/`host`/`addr`, `dbname`/`db`, `user`, `password`, `port`,
    /// `connect_timeout` (seconds), `tls`, `ca`, `capath`, `cert`, `clientkey`,
    /// `sni`, `verify`. Anything else, or a malformed value, is
    /// [`DbError::BadSpec`]. Defaults: `127.0.0.1`, port 6379, db 0.
    pub fn parse(spec: &str) -> DbResult<RedisSpec> {
        let mut out = RedisSpec {
            host: "127.0.0.1".to_string(),
            port: DEFAULT_PORT,
            db: 0,
            user: None,
            password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
        };
        let mut tls_on = false;
        let mut verify = true;
        let mut tls = TlsSpec::default();
        for token in spec.split_whitespace() {
            let Some((key, value)) = token.split_once('=') else {
                return Err(bad(format!(
                    "redis connection string: `{token}` is not key=value"
                )));
            };
            let key_lc = key.to_ascii_lowercase();
            match key_lc.as_str() {
                "ip" | "host" | "addr" => {
                    out.host = non_empty(value)
                        .ok_or_else(|| bad(format!("redis `{key}=`: empty host")))?;
                }
                "dbname" | "db" => {
                    out.db = value
                        .parse::<i64>()
                        .ok()
                        .filter(|d| *d >= 0)
                        .ok_or_else(|| {
                            bad(format!("redis `{key}={value}`: not a database number"))
                        })?;
                }
                "user" => out.user = non_empty(value),
                "password" => out.password = non_empty(value),
                "port" => {
                    out.port = value
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| bad(format!("redis `port={value}`: not a port number")))?;
                }
                "connect_timeout" => {
                    let secs = value.parse::<u64>().map_err(|_| {
                        bad(format!(
                            "redis `connect_timeout={value}`: not a number of seconds"
                        ))
                    })?;
                    // 0 means "library default" for coturn; keep ours bounded.
                    out.connect_timeout = if secs == 0 {
                        DEFAULT_CONNECT_TIMEOUT
                    } else {
                        Duration::from_secs(secs.min(3600))
                    };
                }
                "tls" => tls_on = parse_bool(key, value)?,
                "verify" => verify = parse_bool(key, value)?,
                "ca" => tls.ca = non_empty(value).map(PathBuf::from),
                "capath" => tls.capath = non_empty(value).map(PathBuf::from),
                "cert" => tls.cert = non_empty(value).map(PathBuf::from),
                "clientkey" => tls.clientkey = non_empty(value).map(PathBuf::from),
                "sni" => tls.sni = non_empty(value),
                _ => {
                    return Err(bad(format!(
                        "redis connection string: unknown parameter `{key}`"
                    )))
                }
            }
        }
        if tls_on {
            if !verify {
                return Err(bad(
                    "redis `verify=false` is not supported: give the server's CA with `ca=` instead",
                ));
            }
            if tls.cert.is_some() != tls.clientkey.is_some() {
                return Err(bad("redis TLS: `cert=` and `clientkey=` go together"));
            }
            out.tls = Some(tls);
        } else if tls != TlsSpec::default() {
            tracing::warn!(
                "redis connection string has TLS parameters but no tls=true; ignoring them"
            );
        }
        Ok(out)
    }

    /// `host:port/db` for log lines (never the password).
    pub fn describe(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}:{}/{}", self.host, self.port, self.db)
    }

    /// A redis client for this spec; reads the TLS files (an unreadable file is
    /// [`DbError::BadSpec`]). Does not connect.
    pub fn client(&self) -> DbResult<Client> {
        let redis = RedisConnectionInfo {
            db: self.db,
            username: self.user.clone(),
            password: self.password.clone(),
            ..Default::default()
        };
        let Some(tls) = &self.tls else {
            let info = ConnectionInfo {
                addr: ConnectionAddr::Tcp(self.host.clone(), self.port),
                redis,
            };
            return Client::open(info).map_err(|e| bad(format!("redis: {e}")));
        };
        if let Some(sni) = &tls.sni {
            if sni != &self.host {
                tracing::warn!(
                    "redis TLS: sni={sni} ignored, the server name sent is the host {}",
                    self.host
                );
            }
        }
        let mut roots = Vec::new();
        if let Some(ca) = &tls.ca {
            roots.extend(read_file(ca)?);
            roots.push(b'\n');
        }
        if let Some(dir) = &tls.capath {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| bad(format!("redis TLS capath {}: {e}", dir.display())))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("pem" | "crt")))
                .collect();
            files.sort();
            for f in files {
                roots.extend(read_file(&f)?);
                roots.push(b'\n');
            }
        }
        let client_tls = match (&tls.cert, &tls.clientkey) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read_file(cert)?,
                client_key: read_file(key)?,
            }),
            _ => None,
        };
        let info = ConnectionInfo {
            addr: ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            },
            redis,
        };
        let certs = redis::TlsCertificates {
            client_tls,
            root_cert: (!roots.is_empty()).then_some(roots),
        };
        Client::build_with_tls(info, certs).map_err(|e| bad(format!("redis TLS: {e}")))
    }

    /// The bound on one call: connect timeout plus a margin.
    pub fn call_timeout(&self) -> Duration {
        self.connect_timeout + CALL_MARGIN
    }
}

fn read_file(p: &Path) -> DbResult<Vec<u8>> {
    std::fs::read(p).map_err(|e| bad(format!("redis TLS file {}: {e}", p.display())))
}

/// Escapes Redis glob characters so a name matches only itself in SCAN MATCH.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every key matching `pattern`, each once, in sorted order.
pub(crate) async fn scan_keys<C>(con: &mut C, pattern: &str) -> redis::RedisResult<Vec<String>>
where
    C: redis::aio::ConnectionLike + Send,
{
    let mut keys = BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(con)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys.into_iter().collect());
        }
        cursor = next;
    }
}

// ------------------------------------------------------------------ key layout

fn user_key(realm: &str, name: &str) -> String {
    format!("turn/realm/{realm}/user/{name}/key")
}

fn secret_key(realm: &str) -> String {
    format!("turn/realm/{realm}/secret")
}

fn peer_suffix(list: PeerList) -> &'static str {
    match list {
        PeerList::Allowed => "allowed-peer-ip",
        PeerList::Denied => "denied-peer-ip",
    }
}

fn peer_key(list: PeerList, realm: &str) -> String {
    format!("turn/realm/{realm}/{}", peer_suffix(list))
}

fn option_key(realm: &str, opt: &str) -> String {
    format!("turn/realm/{realm}/{opt}")
}

fn origin_key(origin: &str) -> String {
    format!("turn/origin/{origin}")
}

fn oauth_key(kid: &str) -> String {
    format!("turn/oauth/kid/{kid}")
}

/// An `oauth_key` row from its Redis hash (`None` when the hash is empty,
/// i.e. no such kid). Missing or unparsable numbers count as 0, as coturn.
fn oauth_from_hash(kid: &str, h: HashMap<String, String>) -> Option<crate::core::oauth::OauthKeyRow> {
    if h.is_empty() {
        return None;
    }
    let field = |k: &str| h.get(k).cloned().unwrap_or_default();
    Some(crate::core::oauth::OauthKeyRow {
        kid: kid.to_string(),
        ikm_key: field("ikm_key"),
        timestamp: field("timestamp").trim().parse().unwrap_or(0),
        lifetime: field("lifetime").trim().parse().unwrap_or(0),
        as_rs_alg: field("as_rs_alg"),
        realm: field("realm"),
    })
}

fn admin_key(name: &str) -> String {
    format!("turn/admin_user/{name}")
}

/// The `<realm>` of `turn/realm/<realm>/<suffix>`.
fn realm_of<'a>(key: &'a str, suffix: &str) -> Option<&'a str> {
    key.strip_prefix("turn/realm/")?
        .strip_suffix(suffix)?
        .strip_suffix('/')
}

/// `(realm, name)` of `turn/realm/<realm>/user/<name>/key`.
fn parse_user_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("turn/realm/")?
        .strip_suffix("/key")?
        .split_once("/user/")
}

fn realm_pattern(realm: Option<&str>) -> String {
    realm.map(glob_escape).unwrap_or_else(|| "*".to_string())
}

// ------------------------------------------------------------------ handle

struct Inner {
    spec: RedisSpec,
    client: Client,
    /// Created on first use; `None` again after a call timed out, so a stuck
    /// connection is replaced instead of waited on.
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
}

/// A Redis user database. Cheap to clone (one shared connection inside).
#[derive(Clone)]
pub struct RedisDb {
    inner: Arc<Inner>,
}

fn backend(what: &str, e: redis::RedisError) -> DbError {
    DbError::Backend(format!("redis {what}: {e}"))
}

impl RedisDb {
    /// Parses the connection string and tries one connection. A bad string is
    /// [`DbError::BadSpec`]; a Redis that does not answer yet is only logged:
    /// the handle connects on the first call that finds it up.
    pub async fn connect(spec: &str) -> DbResult<RedisDb> {
        let spec = RedisSpec::parse(spec)?;
        let client = spec.client()?;
        let db = RedisDb {
            inner: Arc::new(Inner {
                spec,
                client,
                manager: tokio::sync::Mutex::new(None),
            }),
        };
        if let Err(e) = db.ping().await {
            tracing::warn!(
                "redis user database {} not reachable yet ({e}); will retry on use",
                db.inner.spec.describe()
            );
        }
        Ok(db)
    }

    async fn manager(&self) -> DbResult<ConnectionManager> {
        let mut slot = self.inner.manager.lock().await;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let timeout = self.inner.spec.connect_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            // One attempt per call: the caller's next call is the retry, so
            // a failure is reported at once instead of after a backoff.
            .set_number_of_retries(0);
        let m = ConnectionManager::new_with_config(self.inner.client.clone(), config)
            .await
            .map_err(|e| backend(&format!("connect {}", self.inner.spec.describe()), e))?;
        tracing::info!("connected to redis {}", self.inner.spec.describe());
        *slot = Some(m.clone());
        Ok(m)
    }

    /// Runs `op` on the connection, bounded by the call timeout.
    async fn with_con<T, F, Fut>(&self, what: &str, op: F) -> DbResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let call = async {
            let con = self.manager().await?;
            match op(con).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    // Only a reply we could not convert leaves the connection
                    // certainly healthy. After anything else start afresh on
                    // the next call: the manager keeps a failed reconnect
                    // (e.g. LOADING or a changed password) and would repeat it.
                    if e.kind() != redis::ErrorKind::TypeError {
                        *self.inner.manager.lock().await = None;
                    }
                    Err(backend(what, e))
                }
            }
        };
        let limit = self.inner.spec.call_timeout();
        match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => {
                if let Ok(mut slot) = self.inner.manager.try_lock() {
                    *slot = None;
                }
                Err(DbError::Backend(format!(
                    "redis {what}: no answer from {} within {limit:?}",
                    self.inner.spec.describe()
                )))
            }
        }
    }

    async fn query<T: FromRedisValue>(&self, what: &str, cmd: redis::Cmd) -> DbResult<T> {
        self.with_con(
            what,
            |mut con| async move { cmd.query_async(&mut con).await },
        )
        .await
    }

    async fn query_pipe<T: FromRedisValue>(
        &self,
        what: &str,
        pipe: redis::Pipeline,
    ) -> DbResult<T> {
        self.with_con(
            what,
            |mut con| async move { pipe.query_async(&mut con).await },
        )
        .await
    }

    async fn scan(&self, pattern: &str) -> DbResult<Vec<String>> {
        let pattern = pattern.to_string();
        self.with_con("scan", |mut con| async move {
            scan_keys(&mut con, &pattern).await
        })
        .await
    }

    /// SMEMBERS of each key, in one round trip.
    async fn members(&self, keys: &[String]) -> DbResult<Vec<Vec<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("SMEMBERS").arg(k);
        }
        self.query_pipe("smembers", pipe).await
    }

    pub async fn ping(&self) -> DbResult<()> {
        let _: String = self.query("ping", redis::cmd("PING")).await?;
        Ok(())
    }

    pub async fn get_user_key(&self, realm: &str, name: &str) -> DbResult<Option<String>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(user_key(realm, name));
        self.query("get user key", cmd).await
    }

    pub async fn get_secrets(&self, realm: &str) -> DbResult<Vec<String>> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(secret_key(realm));
        let mut v: Vec<String> = self.query("get secrets", cmd).await?;
        v.sort();
        Ok(v)
    }

    pub async fn list_peer_ranges(&self, list: PeerList) -> DbResult<Vec<PeerRange>> {
        let suffix = peer_suffix(list);
        let keys = self.scan(&format!("turn/realm/*/{suffix}")).await?;
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| realm_of(k, suffix).is_some())
            .collect();
        let sets = self.members(&keys).await?;
        let mut out = Vec::new();
        for (k, ranges) in keys.iter().zip(sets) {
            let realm = realm_of(k, suffix).unwrap_or_default();
            let mut ranges = ranges;
            ranges.sort();
            out.extend(ranges.into_iter().map(|range| PeerRange {
                realm: realm.to_string(),
                range,
            }));
        }
        Ok(out)
    }

    pub async fn list_origins(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        let keys = self.scan("turn/origin/*").await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&keys);
        let values: Vec<Option<String>> = self.query("list origins", cmd).await?;
        let mut out: Vec<(String, String)> = keys
            .iter()
            .zip(values)
            .filter_map(|(k, v)| {
                let origin = k.strip_prefix("turn/origin/")?;
                let r = v?;
                realm
                    .is_none_or(|want| want == r)
                    .then(|| (origin.to_string(), r))
            })
            .collect();
        out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        Ok(out)
    }

    pub async fn list_realm_options(&self, realm: Option<&str>) -> DbResult<Vec<RealmOption>> {
        let rp = realm_pattern(realm);
        // (realm, opt) -> value, so the result is ordered by realm then option.
        let mut found: BTreeMap<(String, &'static str), String> = BTreeMap::new();
        for opt in REALM_OPTIONS {
            let keys = self.scan(&format!("turn/realm/{rp}/{opt}")).await?;
            let keys: Vec<String> = keys
                .into_iter()
                .filter(|k| realm_of(k, opt).is_some_and(|r| !r.contains('/')))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let mut cmd = redis::cmd("MGET");
            cmd.arg(&keys);
            let values: Vec<Option<String>> = self.query("list realm options", cmd).await?;
            for (k, v) in keys.iter().zip(values) {
                if let (Some(r), Some(v)) = (realm_of(k, opt), v) {
                    found.insert((r.to_string(), opt), v);
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|((realm, opt), value)| RealmOption {
                realm,
                opt: opt.to_string(),
                value,
            })
            .collect())
    }

    pub async fn get_admin_user(&self, name: &str) -> DbResult<Option<AdminUser>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(admin_key(name));
        let h: HashMap<String, String> = self.query("get admin user", cmd).await?;
        Ok(admin_from_hash(name, h))
    }

    /// `turn/oauth/kid/<kid>` hash (coturn's layout).
    pub async fn get_oauth_key(&self, kid: &str) -> DbResult<Option<crate::core::oauth::OauthKeyRow>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(oauth_key(kid));
        let h: HashMap<String, String> = self.query("get oauth key", cmd).await?;
        Ok(oauth_from_hash(kid, h))
    }

    pub async fn set_oauth_key(&self, row: &crate::core::oauth::OauthKeyRow) -> DbResult<()> {
        let key = oauth_key(&row.kid);
        let mut hset = redis::cmd("HSET");
        hset.arg(&key)
            .arg("ikm_key")
            .arg(&row.ikm_key)
            .arg("timestamp")
            .arg(row.timestamp.to_string())
            .arg("lifetime")
            .arg(row.lifetime.to_string())
            .arg("as_rs_alg")
            .arg(&row.as_rs_alg)
            .arg("realm")
            .arg(&row.realm);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore().add_command(hset).ignore();
        let _: () = self.query_pipe("set oauth key", pipe).await?;
        Ok(())
    }

    /// Every `turn/oauth/kid/<kid>` hash, ordered by kid.
    pub async fn list_oauth_keys(&self) -> DbResult<Vec<crate::core::oauth::OauthKeyRow>> {
        let keys = self.scan("turn/oauth/kid/*").await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HGETALL").arg(k);
        }
        let hashes: Vec<HashMap<String, String>> = self.query_pipe("list oauth keys", pipe).await?;
        let mut out: Vec<crate::core::oauth::OauthKeyRow> = keys
            .iter()
            .zip(hashes)
            .filter_map(|(k, h)| oauth_from_hash(k.strip_prefix("turn/oauth/kid/")?, h))
            .collect();
        out.sort_by(|a, b| a.kid.cmp(&b.kid));
        Ok(out)
    }

    pub async fn delete_oauth_key(&self, kid: &str) -> DbResult<()> {
        self.del("delete oauth key", oauth_key(kid)).await
    }

    pub async fn set_user_key(&self, realm: &str, name: &str, hmackey: &str) -> DbResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(user_key(realm, name)).arg(hmackey);
        let _: () = self.query("set user key", cmd).await?;
        Ok(())
    }

    pub async fn delete_user(&self, realm: &str, name: &str) -> DbResult<()> {
        self.del("delete user", user_key(realm, name)).await
    }

    async fn del(&self, what: &str, key: String) -> DbResult<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        let _: i64 = self.query(what, cmd).await?;
        Ok(())
    }

    pub async fn list_users(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        let keys = self
            .scan(&format!("turn/realm/{}/user/*/key", realm_pattern(realm)))
            .await?;
        let mut out: Vec<(String, String)> = keys
            .iter()
            .filter_map(|k| parse_user_key(k))
            .filter(|(r, _)| realm.is_none_or(|want| want == *r))
            .map(|(r, n)| (n.to_string(), r.to_string()))
            .collect();
        out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        Ok(out)
    }

    pub async fn add_secret(&self, realm: &str, value: &str) -> DbResult<()> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(secret_key(realm)).arg(value);
        let _: i64 = self.query("add secret", cmd).await?;
        Ok(())
    }

    pub async fn delete_secret(&self, realm: &str, value: &str) -> DbResult<()> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(secret_key(realm)).arg(value);
        let _: i64 = self.query("delete secret", cmd).await?;
        Ok(())
    }

    pub async fn delete_all_secrets(&self, realm: &str) -> DbResult<()> {
        self.del("delete secrets", secret_key(realm)).await
    }

    pub async fn list_secrets(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        let keys = self
            .scan(&format!("turn/realm/{}/secret", realm_pattern(realm)))
            .await?;
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| realm_of(k, "secret").is_some_and(|r| !r.contains('/')))
            .collect();
        let sets = self.members(&keys).await?;
        let mut out = Vec::new();
        for (k, mut values) in keys.iter().zip(sets) {
            let r = realm_of(k, "secret").unwrap_or_default();
            values.sort();
            out.extend(values.into_iter().map(|v| (v, r.to_string())));
        }
        Ok(out)
    }

    pub async fn add_origin(&self, origin: &str, realm: &str) -> DbResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(origin_key(origin)).arg(realm);
        let _: () = self.query("add origin", cmd).await?;
        Ok(())
    }

    pub async fn delete_origin(&self, origin: &str) -> DbResult<()> {
        self.del("delete origin", origin_key(origin)).await
    }

    pub async fn set_realm_option(&self, realm: &str, opt: &str, value: &str) -> DbResult<()> {
        if value == "0" {
            return self
                .del("delete realm option", option_key(realm, opt))
                .await;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(option_key(realm, opt)).arg(value);
        let _: () = self.query("set realm option", cmd).await?;
        Ok(())
    }

    pub async fn add_peer_range(&self, list: PeerList, realm: &str, range: &str) -> DbResult<()> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(peer_key(list, realm)).arg(range);
        let _: i64 = self.query("add peer range", cmd).await?;
        Ok(())
    }

    pub async fn delete_peer_range(
        &self,
        list: PeerList,
        realm: &str,
        range: &str,
    ) -> DbResult<()> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(peer_key(list, realm)).arg(range);
        let _: i64 = self.query("delete peer range", cmd).await?;
        Ok(())
    }

    pub async fn set_admin_user(&self, user: &AdminUser) -> DbResult<()> {
        let key = admin_key(&user.name);
        // As turnadmin: a superuser's hash has no `realm` field at all.
        let mut hset = redis::cmd("HSET");
        hset.arg(&key).arg("password").arg(&user.password);
        if !user.realm.is_empty() {
            hset.arg("realm").arg(&user.realm);
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .add_command(hset)
            .ignore();
        let _: () = self.query_pipe("set admin user", pipe).await?;
        Ok(())
    }

    pub async fn delete_admin_user(&self, name: &str) -> DbResult<()> {
        self.del("delete admin user", admin_key(name)).await
    }

    pub async fn list_admin_users(&self) -> DbResult<Vec<AdminUser>> {
        let keys = self.scan("turn/admin_user/*").await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HGETALL").arg(k);
        }
        let hashes: Vec<HashMap<String, String>> =
            self.query_pipe("list admin users", pipe).await?;
        let mut out: Vec<AdminUser> = keys
            .iter()
            .zip(hashes)
            .filter_map(|(k, h)| admin_from_hash(k.strip_prefix("turn/admin_user/")?, h))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// An admin user from its hash; none without a password field.
fn admin_from_hash(name: &str, mut h: HashMap<String, String>) -> Option<AdminUser> {
    let password = h.remove("password")?;
    Some(AdminUser {
        name: name.to_string(),
        realm: h.remove("realm").unwrap_or_default(),
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RedisSpec {
        match RedisSpec::parse(s) {
            Ok(spec) => spec,
            Err(e) => panic!("`{s}` should parse: {e}"),
        }
    }

    fn is_bad(s: &str) -> bool {
        matches!(RedisSpec::parse(s), Err(DbError::BadSpec(_)))
    }

    #[test]
    fn defaults() {
        let s = parse("");
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port, 6379);
        assert_eq!(s.db, 0);
        assert_eq!(s.user, None);
        assert_eq!(s.password, None);
        assert_eq!(s.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(s.tls, None);
    }

    #[test]
    fn full_string_and_aliases() {
        let s = parse("ip=10.0.0.5 dbname=2 user=turn password=pw port=6380 connect_timeout=30");
        assert_eq!(s.host, "10.0.0.5");
        assert_eq!(s.db, 2);
        assert_eq!(s.user.as_deref(), Some("turn"));
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.port, 6380);
        assert_eq!(s.connect_timeout, Duration::from_secs(30));
        assert_eq!(parse("host=redis.local db=7").host, "redis.local");
        assert_eq!(parse("host=redis.local db=7").db, 7);
        assert_eq!(parse("addr=::1").host, "::1");
        assert_eq!(parse("  IP=1.2.3.4   PORT=1  ").port, 1);
        assert_eq!(parse("password=").password, None);
        assert_eq!(
            parse("connect_timeout=0").connect_timeout,
            DEFAULT_CONNECT_TIMEOUT
        );
    }

    #[test]
    fn tls_parameters() {
        let s = parse("ip=r tls=true ca=/etc/ca.pem capath=/etc/cas cert=/c.pem clientkey=/k.pem sni=r verify=true");
        let t = s.tls.clone().expect("tls on");
        assert_eq!(t.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(t.capath, Some(PathBuf::from("/etc/cas")));
        assert_eq!(t.cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(t.clientkey, Some(PathBuf::from("/k.pem")));
        assert_eq!(t.sni.as_deref(), Some("r"));
        assert!(s.describe().starts_with("rediss://r:6379/0"));
        // TLS files without tls=true are ignored.
        assert_eq!(parse("ca=/etc/ca.pem").tls, None);
        assert_eq!(parse("tls=1").tls, Some(TlsSpec::default()));
    }

    #[test]
    fn bad_strings() {
        for s in [
            "ip",
            "ip=",
            "port=0",
            "port=70000",
            "port=abc",
            "dbname=-1",
            "dbname=two",
            "connect_timeout=soon",
            "tls=maybe",
            "passwd=x",
            "ip=1.2.3.4 junk",
            "tls=true verify=false",
            "tls=true cert=/c.pem",
            "tls=true clientkey=/k.pem",
        ] {
            assert!(is_bad(s), "`{s}` must be BadSpec");
        }
    }

    #[test]
    fn unreadable_tls_file_is_bad_spec() {
        let s = parse("tls=true ca=/nonexistent/turnserver-rs/ca.pem");
        assert!(matches!(s.client(), Err(DbError::BadSpec(_))));
    }

    #[test]
    fn key_layout() {
        assert_eq!(
            user_key("example.org", "alice"),
            "turn/realm/example.org/user/alice/key"
        );
        assert_eq!(secret_key("r"), "turn/realm/r/secret");
        assert_eq!(
            peer_key(PeerList::Allowed, "r"),
            "turn/realm/r/allowed-peer-ip"
        );
        assert_eq!(
            peer_key(PeerList::Denied, "r"),
            "turn/realm/r/denied-peer-ip"
        );
        assert_eq!(option_key("r", "max-bps"), "turn/realm/r/max-bps");
        assert_eq!(origin_key("https://a:443"), "turn/origin/https://a:443");
        assert_eq!(admin_key("root"), "turn/admin_user/root");
        assert_eq!(
            parse_user_key("turn/realm/example.org/user/alice/key"),
            Some(("example.org", "alice"))
        );
        assert_eq!(parse_user_key("turn/realm/r/secret"), None);
        assert_eq!(realm_of("turn/realm/r/secret", "secret"), Some("r"));
        assert_eq!(realm_of("turn/realm/r/xsecret", "secret"), None);
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn admin_hash() {
        let mut h = HashMap::new();
        assert_eq!(admin_from_hash("a", h.clone()), None);
        h.insert("password".to_string(), "$5$x$y".to_string());
        let a = admin_from_hash("a", h.clone()).expect("has password");
        assert_eq!(a.realm, "");
        h.insert("realm".to_string(), "r".to_string());
        assert_eq!(
            admin_from_hash("a", h).map(|a| a.realm),
            Some("r".to_string())
        );
    }
}
