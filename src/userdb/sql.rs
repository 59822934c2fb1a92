//! coturn's SQL user database on SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! This module owns three things: turning coturn's connection strings into
//! sqlx connection options, coturn's table layout ([`SCHEMA_SQL`] and the
//! SQLite variant that coturn creates by itself), and the statements behind
//! every [`UserDb`](super::UserDb) method.
//!
//! Each backend gets a small pool (at most [`MAX_CONNECTIONS`]) whose acquire
//! timeout is the connection string's `connect_timeout` (default
//! [`DEFAULT_CONNECT_TIMEOUT`]), so a database that is down answers with
//! [`DbError::Backend`] after a few seconds instead of hanging. PostgreSQL
//! and MySQL pools connect lazily: a server that is down at start still gives
//! a usable handle, and the pool reconnects once the database is back.
//!
//! All values travel as bound parameters; the only text assembled at run time
//! is table and column names chosen from constants in this file, and the `?` →
//! `$n` placeholder rewrite for PostgreSQL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use super::*;

/// coturn's `turndb/schema.sql`, as operators load it into PostgreSQL or
/// MySQL/MariaDB (`psql -f`, `mysql <`). Statements are separated by `;`.
pub const SCHEMA_SQL: &str = "\
CREATE TABLE turnusers_lt (
    realm varchar(127) default '',
    name varchar(512),
    hmackey char(128),
    PRIMARY KEY (realm,name)
);

CREATE TABLE turn_secret (
    realm varchar(127) default '',
    value varchar(256),
    primary key (realm,value)
);

CREATE TABLE allowed_peer_ip (
    realm varchar(127) default '',
    ip_range varchar(256),
    primary key (realm,ip_range)
);

CREATE TABLE denied_peer_ip (
    realm varchar(127) default '',
    ip_range varchar(256),
    primary key (realm,ip_range)
);

CREATE TABLE turn_origin_to_realm (
    origin varchar(127),
    realm varchar(127),
    primary key (origin)
);

CREATE TABLE turn_realm_option (
    realm varchar(127) default '',
    opt varchar(32),
    value varchar(128),
    primary key (realm,opt)
);

CREATE TABLE oauth_key (
    kid varchar(128),
    ikm_key varchar(256),
    timestamp bigint default 0,
    lifetime integer default 0,
    as_rs_alg varchar(64) default '',
    realm varchar(127),
    primary key (kid)
);

CREATE TABLE admin_user (
    name varchar(32),
    realm varchar(127),
    password varchar(127),
    primary key (name)
);
";

/// The tables exactly as coturn (and its `turnadmin`) create them in a new
/// SQLite file, so `sqlite3 FILE .schema` reads the same whichever program
/// created the file. (Differs from [`SCHEMA_SQL`] in `turn_secret.value`
/// length and the `oauth_key.realm` default, as coturn's SQLite driver does.)
const SQLITE_TABLES: [&str; 8] = [
    "CREATE TABLE turnusers_lt ( realm varchar(127) default '', name varchar(512), hmackey char(128), PRIMARY KEY (realm,name))",
    "CREATE TABLE turn_secret (realm varchar(127) default '', value varchar(127), primary key (realm,value))",
    "CREATE TABLE allowed_peer_ip (realm varchar(127) default '', ip_range varchar(256), primary key (realm,ip_range))",
    "CREATE TABLE denied_peer_ip (realm varchar(127) default '', ip_range varchar(256), primary key (realm,ip_range))",
    "CREATE TABLE turn_origin_to_realm (origin varchar(127),realm varchar(127),primary key (origin))",
    "CREATE TABLE turn_realm_option (realm varchar(127) default '',\topt varchar(32),\tvalue varchar(128),\tprimary key (realm,opt))",
    "CREATE TABLE oauth_key (kid varchar(128),ikm_key varchar(256),timestamp bigint default 0,lifetime integer default 0,as_rs_alg varchar(64) default '',realm varchar(127) default '',primary key (kid))",
    "CREATE TABLE admin_user (name varchar(32), realm varchar(127), password varchar(127), primary key (name))",
];

/// Pool size per backend: the database service is one task doing short
/// lookups, a few connections are plenty.
pub const MAX_CONNECTIONS: u32 = 4;
/// Acquire timeout when the connection string names no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for one statement once a connection is held (MySQL's
/// `read_timeout` overrides it), so a database that stops answering mid-query
/// cannot stall the database service forever.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long SQLite waits for a lock held by another process (`turnadmin`).
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// A connected SQL user database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlDb {
    pool: Pool,
    query_timeout: Duration,
    /// The pool's acquire timeout, for error messages.
    connect_timeout: Duration,
}

/// Runs `$body` with `$p` bound to whichever concrete pool this is; the body
/// is compiled once per backend, so it can use the concrete row types.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
            Pool::Mysql($p) => $body,
        }
    };
}

/// Reads column `i` of a row as text; NULL reads as "" (coturn treats a NULL
/// realm as the empty realm), binary columns are taken as UTF-8.
macro_rules! text_col {
    ($row:expr, $i:expr) => {
        match $row.try_get::<Option<String>, usize>($i) {
            Ok(v) => Ok(v.unwrap_or_default()),
            Err(e) => match $row.try_get::<Option<Vec<u8>>, usize>($i) {
                Ok(v) => Ok(String::from_utf8_lossy(&v.unwrap_or_default()).into_owned()),
                Err(_) => Err(e),
            },
        }
    };
}

impl SqlDb {
    /// Opens the database named by `spec` (a [`DbSpec::Redis`] is `BadSpec`).
    ///
    /// SQLite: the file and coturn's tables are created when missing; an
    /// existing file is used as it is. PostgreSQL and MySQL: nothing is
    /// created and nothing is contacted yet, so this succeeds while the
    /// server is down; the first query reports it.
    pub async fn connect(spec: &DbSpec) -> DbResult<SqlDb> {
        match spec {
            DbSpec::Sqlite(path) => Self::connect_sqlite(path).await,
            DbSpec::Postgres(s) => {
                let (opts, timeout) = parse_postgres(s)?;
                let pool = PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(opts);
                Ok(SqlDb {
                    pool: Pool::Postgres(pool),
                    query_timeout: DEFAULT_QUERY_TIMEOUT,
                    connect_timeout: timeout,
                })
            }
            DbSpec::Mysql(s) => {
                let spec = parse_mysql(s)?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(spec.connect_timeout)
                    .connect_lazy_with(spec.options);
                Ok(SqlDb {
                    pool: Pool::Mysql(pool),
                    query_timeout: spec.read_timeout.unwrap_or(DEFAULT_QUERY_TIMEOUT),
                    connect_timeout: spec.connect_timeout,
                })
            }
            DbSpec::Redis(_) => Err(DbError::BadSpec(
                "a Redis connection string is not an SQL database".into(),
            )),
        }
    }

    async fn connect_sqlite(path: &Path) -> DbResult<SqlDb> {
        if path.as_os_str().is_empty() {
            return Err(DbError::BadSpec("empty SQLite file name".into()));
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(DEFAULT_CONNECT_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|e| {
                DbError::Backend(format!("SQLite: cannot open {}: {e}", path.display()))
            })?;
        let db = SqlDb {
            pool: Pool::Sqlite(pool),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        };
        db.create_schema().await?;
        Ok(db)
    }

    /// Creates coturn's tables that do not exist yet (existing ones are left
    /// alone). Done automatically for SQLite; for PostgreSQL and MySQL it is
    /// the programmatic equivalent of loading `schema.sql` by hand, used by
    /// tests and available to tools. The connected user needs CREATE rights.
    pub async fn create_schema(&self) -> DbResult<()> {
        let statements: Vec<String> = match self.pool {
            Pool::Sqlite(_) => SQLITE_TABLES.iter().map(|s| if_not_exists(s)).collect(),
            _ => schema_statements().map(|s| if_not_exists(&s)).collect(),
        };
        for s in statements {
            self.exec_raw(&s, &[]).await?;
        }
        Ok(())
    }

    fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::Mysql(_) => Dialect::Mysql,
        }
    }

    fn backend_error(&self, e: impl std::fmt::Display) -> DbError {
        DbError::Backend(format!("{}: {e}", self.dialect().name()))
    }

    /// Runs a statement written with `?` placeholders, binding `args` in order.
    /// Returns the number of affected rows.
    async fn exec(&self, sql: &str, args: &[&str]) -> DbResult<u64> {
        let sql = self.dialect().placeholders(sql);
        self.exec_raw(&sql, args).await
    }

    async fn exec_raw(&self, sql: &str, args: &[&str]) -> DbResult<u64> {
        let once = || async {
            with_pool!(&self.pool, p => {
                let mut q = sqlx::query(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.execute(p).await.map(|r| r.rows_affected())
            })
        };
        self.retrying(once).await
    }

    /// Runs a query written with `?` placeholders and returns `ncols` text
    /// columns of every row.
    async fn rows(&self, sql: &str, args: &[&str], ncols: usize) -> DbResult<Vec<Vec<String>>> {
        let sql = self.dialect().placeholders(sql);
        let sql = sql.as_str();
        let once = || async {
            with_pool!(&self.pool, p => {
                let mut q = sqlx::query(sql);
                for a in args {
                    q = q.bind(*a);
                }
                match q.fetch_all(p).await {
                    Ok(rows) => rows
                        .iter()
                        .map(|r| (0..ncols).map(|i| text_col!(r, i)).collect::<Result<Vec<String>, sqlx::Error>>())
                        .collect::<Result<Vec<Vec<String>>, sqlx::Error>>(),
                    Err(e) => Err(e),
                }
            })
        };
        self.retrying(once).await
    }

    /// One attempt, and a second one when the first failed because the
    /// connection it used had died (database restarted): the pool then opens
    /// a fresh connection. Every statement here is idempotent, so a repeated
    /// write does no harm.
    async fn retrying<T, F, Fut>(&self, once: F) -> DbResult<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let mut retried = false;
        loop {
            match tokio::time::timeout(self.query_timeout, once()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if !retried && connection_lost(&e) => {
                    tracing::debug!(error = %e, "database connection lost, retrying once");
                    retried = true;
                }
                Ok(Err(sqlx::Error::PoolTimedOut)) => {
                    return Err(self.backend_error(format_args!(
                        "no connection within {} s (database down or unreachable?)",
                        self.connect_timeout.as_secs()
                    )))
                }
                Ok(Err(e)) => return Err(self.backend_error(e)),
                Err(_) => {
                    return Err(self.backend_error(format_args!(
                        "no answer within {} s",
                        self.query_timeout.as_secs()
                    )))
                }
            }
        }
    }

    fn pairs(rows: Vec<Vec<String>>) -> Vec<(String, String)> {
        rows.into_iter()
            .filter_map(|mut r| {
                let b = r.pop()?;
                let a = r.pop()?;
                Some((a, b))
            })
            .collect()
    }

    /// Cheap round trip used for health checks and reconnect probing.
    pub async fn ping(&self) -> DbResult<()> {
        self.rows("select 1", &[], 0).await.map(|_| ())
    }

    pub async fn get_user_key(&self, realm: &str, name: &str) -> DbResult<Option<String>> {
        let rows = self
            .rows(
                "select hmackey from turnusers_lt where name=? and realm=?",
                &[name, realm],
                1,
            )
            .await?;
        // `char(128)` is blank-padded by PostgreSQL.
        Ok(rows
            .into_iter()
            .next()
            .and_then(|mut r| r.pop())
            .map(|k| k.trim_end().to_string()))
    }

    pub async fn get_secrets(&self, realm: &str) -> DbResult<Vec<String>> {
        let rows = self
            .rows("select value from turn_secret where realm=?", &[realm], 1)
            .await?;
        Ok(rows.into_iter().filter_map(|mut r| r.pop()).collect())
    }

    pub async fn list_peer_ranges(&self, list: PeerList) -> DbResult<Vec<PeerRange>> {
        let sql = format!(
            "select realm,ip_range from {} order by realm,ip_range",
            peer_table(list)
        );
        let rows = self.rows(&sql, &[], 2).await?;
        Ok(Self::pairs(rows)
            .into_iter()
            .map(|(realm, range)| PeerRange { realm, range })
            .collect())
    }

    pub async fn list_origins(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        let rows = match realm {
            Some(r) => {
                self.rows(
                    "select origin,realm from turn_origin_to_realm where realm=? order by realm,origin",
                    &[r],
                    2,
                )
                .await?
            }
            None => {
                self.rows(
                    "select origin,realm from turn_origin_to_realm order by realm,origin",
                    &[],
                    2,
                )
                .await?
            }
        };
        Ok(Self::pairs(rows))
    }

    pub async fn list_realm_options(&self, realm: Option<&str>) -> DbResult<Vec<RealmOption>> {
        let rows = match realm {
            Some(r) => {
                self.rows(
                    "select realm,opt,value from turn_realm_option where realm=? order by realm,opt",
                    &[r],
                    3,
                )
                .await?
            }
            None => {
                self.rows(
                    "select realm,opt,value from turn_realm_option order by realm,opt",
                    &[],
                    3,
                )
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .filter_map(|mut r| {
                let value = r.pop()?;
                let opt = r.pop()?;
                let realm = r.pop()?;
                Some(RealmOption { realm, opt, value })
            })
            .collect())
    }

    pub async fn get_admin_user(&self, name: &str) -> DbResult<Option<AdminUser>> {
        let rows = self
            .rows(
                "select name,realm,password from admin_user where name=?",
                &[name],
                3,
            )
            .await?;
        Ok(rows.into_iter().next().and_then(admin_from_row))
    }

    /// coturn's `select ikm_key,timestamp,lifetime,as_rs_alg,realm from oauth_key
    /// where kid=?`, the numbers read as text.
    pub async fn get_oauth_key(&self, kid: &str) -> DbResult<Option<crate::core::oauth::OauthKeyRow>> {
        let text = self.dialect().text_type();
        let sql = format!(
            "select ikm_key,cast(timestamp as {text}),cast(lifetime as {text}),as_rs_alg,realm from oauth_key where kid=?"
        );
        let rows = self.rows(&sql, &[kid], 5).await?;
        Ok(rows.into_iter().next().map(|r| oauth_from_row(kid, &r)))
    }

    /// Every `oauth_key` row, ordered by kid.
    pub async fn list_oauth_keys(&self) -> DbResult<Vec<crate::core::oauth::OauthKeyRow>> {
        let sql = format!(
            "select kid,ikm_key,cast(timestamp as {t}),cast(lifetime as {t}),as_rs_alg,realm from oauth_key order by kid",
            t = self.dialect().text_type()
        );
        let rows = self.rows(&sql, &[], 6).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let (kid, rest) = r.split_first()?;
                Some(oauth_from_row(kid.trim_end(), rest))
            })
            .collect())
    }

    /// Insert or replace a key row.
    pub async fn set_oauth_key(&self, row: &crate::core::oauth::OauthKeyRow) -> DbResult<()> {
        let (big, int) = match self.dialect() {
            Dialect::Mysql => ("signed", "signed"),
            Dialect::Sqlite | Dialect::Postgres => ("bigint", "integer"),
        };
        self.exec("delete from oauth_key where kid=?", &[&row.kid]).await?;
        let sql = format!(
            "insert into oauth_key (kid,ikm_key,timestamp,lifetime,as_rs_alg,realm) values (?,?,cast(? as {big}),cast(? as {int}),?,?)"
        );
        let (ts, lt) = (row.timestamp.to_string(), row.lifetime.to_string());
        self.exec(&sql, &[&row.kid, &row.ikm_key, &ts, &lt, &row.as_rs_alg, &row.realm]).await.map(|_| ())
    }

    pub async fn delete_oauth_key(&self, kid: &str) -> DbResult<()> {
        self.exec("delete from oauth_key where kid=?", &[kid]).await.map(|_| ())
    }

    pub async fn set_user_key(&self, realm: &str, name: &str, hmackey: &str) -> DbResult<()> {
        let sql = self
            .dialect()
            .upsert("turnusers_lt", &["realm", "name"], &["hmackey"]);
        self.exec(&sql, &[realm, name, hmackey]).await.map(|_| ())
    }

    pub async fn delete_user(&self, realm: &str, name: &str) -> DbResult<()> {
        self.exec(
            "delete from turnusers_lt where name=? and realm=?",
            &[name, realm],
        )
        .await
        .map(|_| ())
    }

    pub async fn list_users(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        let rows = match realm {
            Some(r) => {
                self.rows(
                    "select name,realm from turnusers_lt where realm=? order by realm,name",
                    &[r],
                    2,
                )
                .await?
            }
            None => {
                self.rows(
                    "select name,realm from turnusers_lt order by realm,name",
                    &[],
                    2,
                )
                .await?
            }
        };
        Ok(Self::pairs(rows))
    }

    pub async fn add_secret(&self, realm: &str, value: &str) -> DbResult<()> {
        let sql = self
            .dialect()
            .insert_new("turn_secret", &["realm", "value"]);
        self.exec(&sql, &[realm, value]).await.map(|_| ())
    }

    pub async fn delete_secret(&self, realm: &str, value: &str) -> DbResult<()> {
        self.exec(
            "delete from turn_secret where value=? and realm=?",
            &[value, realm],
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_all_secrets(&self, realm: &str) -> DbResult<()> {
        self.exec("delete from turn_secret where realm=?", &[realm])
            .await
            .map(|_| ())
    }

    pub async fn list_secrets(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        let rows = match realm {
            Some(r) => {
                self.rows(
                    "select value,realm from turn_secret where realm=? order by realm,value",
                    &[r],
                    2,
                )
                .await?
            }
            None => {
                self.rows(
                    "select value,realm from turn_secret order by realm,value",
                    &[],
                    2,
                )
                .await?
            }
        };
        Ok(Self::pairs(rows))
    }

    pub async fn add_origin(&self, origin: &str, realm: &str) -> DbResult<()> {
        let sql = self
            .dialect()
            .upsert("turn_origin_to_realm", &["origin"], &["realm"]);
        self.exec(&sql, &[origin, realm]).await.map(|_| ())
    }

    pub async fn delete_origin(&self, origin: &str) -> DbResult<()> {
        self.exec("delete from turn_origin_to_realm where origin=?", &[origin])
            .await
            .map(|_| ())
    }

    pub async fn set_realm_option(&self, realm: &str, opt: &str, value: &str) -> DbResult<()> {
        if value.trim() == "0" {
            return self
                .exec(
                    "delete from turn_realm_option where realm=? and opt=?",
                    &[realm, opt],
                )
                .await
                .map(|_| ());
        }
        let sql = self
            .dialect()
            .upsert("turn_realm_option", &["realm", "opt"], &["value"]);
        self.exec(&sql, &[realm, opt, value]).await.map(|_| ())
    }

    pub async fn add_peer_range(&self, list: PeerList, realm: &str, range: &str) -> DbResult<()> {
        let sql = self
            .dialect()
            .insert_new(peer_table(list), &["realm", "ip_range"]);
        self.exec(&sql, &[realm, range]).await.map(|_| ())
    }

    pub async fn delete_peer_range(
        &self,
        list: PeerList,
        realm: &str,
        range: &str,
    ) -> DbResult<()> {
        let sql = format!(
            "delete from {} where realm=? and ip_range=?",
            peer_table(list)
        );
        self.exec(&sql, &[realm, range]).await.map(|_| ())
    }

    pub async fn set_admin_user(&self, user: &AdminUser) -> DbResult<()> {
        let sql = self
            .dialect()
            .upsert("admin_user", &["name"], &["realm", "password"]);
        self.exec(&sql, &[&user.name, &user.realm, &user.password])
            .await
            .map(|_| ())
    }

    pub async fn delete_admin_user(&self, name: &str) -> DbResult<()> {
        self.exec("delete from admin_user where name=?", &[name])
            .await
            .map(|_| ())
    }

    pub async fn list_admin_users(&self) -> DbResult<Vec<AdminUser>> {
        let rows = self
            .rows(
                "select name,realm,password from admin_user order by name",
                &[],
                3,
            )
            .await?;
        Ok(rows.into_iter().filter_map(admin_from_row).collect())
    }
}

/// An `oauth_key` row from the columns `ikm_key, timestamp, lifetime,
/// as_rs_alg, realm` (as text; `char` columns may come blank-padded).
/// Missing or unparsable numbers count as 0, as coturn.
fn oauth_from_row(kid: &str, cols: &[String]) -> crate::core::oauth::OauthKeyRow {
    let col = |i: usize| cols.get(i).map(|s| s.trim_end().to_string()).unwrap_or_default();
    crate::core::oauth::OauthKeyRow {
        kid: kid.to_string(),
        ikm_key: col(0),
        timestamp: col(1).trim().parse().unwrap_or(0),
        lifetime: col(2).trim().parse().unwrap_or(0),
        as_rs_alg: col(3),
        realm: col(4),
    }
}

fn admin_from_row(mut r: Vec<String>) -> Option<AdminUser> {
    let password = r.pop()?;
    let realm = r.pop()?;
    let name = r.pop()?;
    Some(AdminUser {
        name,
        realm,
        password,
    })
}

fn peer_table(list: PeerList) -> &'static str {
    match list {
        PeerList::Allowed => "allowed_peer_ip",
        PeerList::Denied => "denied_peer_ip",
    }
}

/// True when the error means the connection itself is gone (I/O failure or
/// PostgreSQL's "server shutting down" class 57P), not that the statement
/// was refused.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("57P")),
        _ => false,
    }
}

/// The statements of [`SCHEMA_SQL`], one per `;`, without surrounding blanks.
pub fn schema_statements() -> impl Iterator<Item = String> {
    SCHEMA_SQL
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn if_not_exists(create: &str) -> String {
    match create.strip_prefix("CREATE TABLE ") {
        Some(rest) => format!("CREATE TABLE IF NOT EXISTS {rest}"),
        None => create.to_string(),
    }
}

/// The SQL dialect differences this module cares about: placeholders,
/// casts to text and the insert-or-replace / insert-if-absent forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
            Dialect::Mysql => "MySQL",
        }
    }

    /// The type a number is cast to so it reads back as text.
    fn text_type(self) -> &'static str {
        match self {
            Dialect::Mysql => "char",
            Dialect::Sqlite | Dialect::Postgres => "text",
        }
    }

    /// Rewrites `?` placeholders to `$1, $2, …` for PostgreSQL. Statements
    /// here never contain a literal `?` in a string.
    fn placeholders(self, sql: &str) -> String {
        if self != Dialect::Postgres {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// `insert into table (keys, vals) values (?, …)` replacing the row with
    /// the same key. Table and column names come from this file only.
    fn upsert(self, table: &str, keys: &[&str], vals: &[&str]) -> String {
        let cols: Vec<&str> = keys.iter().chain(vals).copied().collect();
        let marks = vec!["?"; cols.len()].join(",");
        let cols_s = cols.join(",");
        match self {
            Dialect::Sqlite => {
                format!("insert or replace into {table} ({cols_s}) values ({marks})")
            }
            Dialect::Postgres => {
                let set: Vec<String> = vals.iter().map(|v| format!("{v}=excluded.{v}")).collect();
                format!(
                    "insert into {table} ({cols_s}) values ({marks}) on conflict ({}) do update set {}",
                    keys.join(","),
                    set.join(",")
                )
            }
            Dialect::Mysql => {
                let set: Vec<String> = vals.iter().map(|v| format!("{v}=values({v})")).collect();
                format!(
                    "insert into {table} ({cols_s}) values ({marks}) on duplicate key update {}",
                    set.join(",")
                )
            }
        }
    }

    /// `insert into table (cols) values (?, …)` that does nothing when the
    /// row exists already (every column is part of the key).
    fn insert_new(self, table: &str, cols: &[&str]) -> String {
        let marks = vec!["?"; cols.len()].join(",");
        let cols_s = cols.join(",");
        match self {
            Dialect::Sqlite => format!("insert or ignore into {table} ({cols_s}) values ({marks})"),
            Dialect::Postgres => {
                format!("insert into {table} ({cols_s}) values ({marks}) on conflict do nothing")
            }
            Dialect::Mysql => {
                let first = cols.first().copied().unwrap_or("realm");
                format!(
                    "insert into {table} ({cols_s}) values ({marks}) on duplicate key update {first}={first}"
                )
            }
        }
    }
}

// ------------------------------------------------------------------ connection strings

fn bad(msg: impl Into<String>) -> DbError {
    DbError::BadSpec(msg.into())
}

fn timeout_secs(key: &str, v: &str) -> DbResult<Option<Duration>> {
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| bad(format!("{key}={v}: not a number of seconds")))?;
    Ok((n > 0).then(|| Duration::from_secs(n)))
}

/// Splits a libpq keyword/value connection string: `key=value` pairs
/// separated by blanks, blanks allowed around `=`, a value either bare or in
/// single quotes. Inside quotes `\'` and `\\` are escapes (libpq's rule) and
/// a doubled `''` is accepted as one quote too.
pub fn split_libpq_keywords(s: &str) -> DbResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = it.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            it.next();
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.next() != Some('=') {
            return Err(bad(format!("missing \"=\" after \"{key}\"")));
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let mut value = String::new();
        if it.peek() == Some(&'\'') {
            it.next();
            loop {
                match it.next() {
                    None => return Err(bad(format!("unterminated quoted value for \"{key}\""))),
                    Some('\\') => match it.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(bad(format!("unterminated quoted value for \"{key}\"")))
                        }
                    },
                    Some('\'') => {
                        if it.peek() == Some(&'\'') {
                            it.next();
                            value.push('\'');
                        } else {
                            break;
                        }
                    }
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c.is_whitespace() {
                    break;
                }
                it.next();
                if c == '\\' {
                    if let Some(n) = it.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// libpq keywords that are valid but have no counterpart here; they are
/// accepted with a warning rather than refusing a working coturn setting.
const LIBPQ_IGNORED: &[&str] = &[
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "target_session_attrs",
    "load_balance_hosts",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslpassword",
    "sslcertmode",
    "sslnegotiation",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requirepeer",
    "require_auth",
    "channel_binding",
    "client_encoding",
    "fallback_application_name",
    "passfile",
    "service",
    "replication",
];

/// A PostgreSQL connection string (libpq keyword form or `postgresql://` /
/// `postgres://` URI) as sqlx options plus the connect (pool acquire) timeout.
pub fn parse_postgres(spec: &str) -> DbResult<(PgConnectOptions, Duration)> {
    let t = spec.trim();
    if t.starts_with("postgresql://") || t.starts_with("postgres://") {
        return parse_postgres_uri(t);
    }
    let mut opts = PgConnectOptions::new();
    let mut timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut hostaddr: Option<String> = None;
    for (k, v) in split_libpq_keywords(t)? {
        match k.as_str() {
            "host" => {
                if v.contains(',') {
                    return Err(bad(format!("host={v}: several hosts are not supported")));
                }
                opts = if v.starts_with('/') {
                    opts.socket(&v)
                } else {
                    opts.host(&v)
                };
            }
            "hostaddr" => hostaddr = Some(v),
            "port" => {
                let p: u16 = v
                    .parse()
                    .map_err(|_| bad(format!("port={v}: not a port number")))?;
                opts = opts.port(p);
            }
            "dbname" => opts = opts.database(&v),
            "user" => opts = opts.username(&v),
            "password" => opts = opts.password(&v),
            "connect_timeout" => {
                if let Some(d) = timeout_secs("connect_timeout", &v)? {
                    timeout = d;
                }
            }
            "sslmode" => {
                let m = PgSslMode::from_str(&v)
                    .map_err(|_| bad(format!("sslmode={v}: unknown mode")))?;
                opts = opts.ssl_mode(m);
            }
            "sslrootcert" => opts = opts.ssl_root_cert(&v),
            "sslcert" => opts = opts.ssl_client_cert(&v),
            "sslkey" => opts = opts.ssl_client_key(&v),
            "application_name" => opts = opts.application_name(&v),
            "options" => opts = opts.options(parse_pg_options(&v)?),
            k if LIBPQ_IGNORED.contains(&k) => {
                tracing::warn!(
                    key = k,
                    "PostgreSQL connection option not supported, ignored"
                );
            }
            _ => return Err(bad(format!("invalid PostgreSQL connection option \"{k}\""))),
        }
    }
    if let Some(a) = hostaddr {
        // libpq connects to hostaddr and keeps host for TLS names; sqlx has
        // one host, and the address is what must be reached.
        opts = opts.host(&a);
    }
    Ok((opts, timeout))
}

/// libpq's `options` value (`-c key=value`, `-ckey=value`, `--key=value`)
/// as (key, value) pairs.
fn parse_pg_options(v: &str) -> DbResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut words = v.split_whitespace();
    while let Some(w) = words.next() {
        let kv = if w == "-c" {
            words
                .next()
                .ok_or_else(|| bad("options: \"-c\" without a setting"))?
        } else if let Some(r) = w.strip_prefix("--") {
            r
        } else if let Some(r) = w.strip_prefix("-c") {
            r
        } else {
            return Err(bad(format!("options: cannot use \"{w}\"")));
        };
        let (k, val) = kv
            .split_once('=')
            .ok_or_else(|| bad(format!("options: \"{kv}\" is not key=value")))?;
        out.push((k.to_string(), val.to_string()));
    }
    Ok(out)
}

fn parse_postgres_uri(uri: &str) -> DbResult<(PgConnectOptions, Duration)> {
    // sqlx has no connect timeout; take it out of the query string ourselves.
    let mut timeout = DEFAULT_CONNECT_TIMEOUT;
    let cleaned = match uri.split_once('?') {
        Some((base, query)) => {
            let mut kept = Vec::new();
            for part in query.split('&').filter(|p| !p.is_empty()) {
                match part.split_once('=') {
                    Some(("connect_timeout", v)) => {
                        if let Some(d) = timeout_secs("connect_timeout", v)? {
                            timeout = d;
                        }
                    }
                    _ => kept.push(part),
                }
            }
            if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
        None => uri.to_string(),
    };
    let opts =
        PgConnectOptions::from_str(&cleaned).map_err(|e| bad(format!("PostgreSQL URI: {e}")))?;
    Ok((opts, timeout))
}

/// A parsed `--mysql-userdb` string.
#[derive(Debug, Clone)]
pub struct MysqlSpec {
    pub options: MySqlConnectOptions,
    pub connect_timeout: Duration,
    pub read_timeout: Option<Duration>,
}

/// coturn's MySQL connection string: `key=value` words separated by blanks
/// (no quoting; a value runs to the next blank and may contain `=`). Keys and
/// aliases as coturn knows them; any other key is an error, as in coturn.
/// Defaults as coturn: host 127.0.0.1, database "0".
pub fn parse_mysql(spec: &str) -> DbResult<MysqlSpec> {
    let mut host = "127.0.0.1".to_string();
    let mut port: Option<u16> = None;
    let mut dbname = "0".to_string();
    let mut user: Option<String> = None;
    let mut password = String::new();
    let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut read_timeout = None;
    let (mut key, mut cert, mut ca, mut capath, mut cipher) = (None, None, None, None, None);
    for word in spec.split_whitespace() {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| bad(format!("MySQL: \"{word}\" is not key=value")))?;
        let v = v.to_string();
        match k {
            "host" | "ip" | "addr" | "ipaddr" | "hostaddr" => host = v,
            "dbname" | "db" | "database" => dbname = v,
            "user" | "uname" | "name" | "username" => user = Some(v),
            "password" | "pwd" | "passwd" | "secret" => password = v,
            "port" | "p" => {
                let p: u16 = v
                    .parse()
                    .map_err(|_| bad(format!("MySQL: {k}={v}: not a port number")))?;
                port = (p != 0).then_some(p);
            }
            "connect_timeout" | "timeout" => {
                if let Some(d) = timeout_secs(k, &v)? {
                    connect_timeout = d;
                }
            }
            "read_timeout" => read_timeout = timeout_secs(k, &v)?,
            "key" | "ssl-key" => key = Some(v),
            "cert" | "ssl-cert" => cert = Some(v),
            "ca" | "ssl-ca" => ca = Some(v),
            "capath" | "ssl-capath" => capath = Some(v),
            "cipher" | "ssl-cipher" => cipher = Some(v),
            _ => return Err(bad(format!("MySQL: unknown connection string key \"{k}\""))),
        }
    }
    let mut o = MySqlConnectOptions::new();
    o = if host.starts_with('/') {
        o.socket(&host)
    } else {
        o.host(&host)
    };
    if let Some(p) = port {
        o = o.port(p);
    }
    // Like libmysqlclient: no user means the login name of this process.
    let user = user
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".to_string());
    o = o.username(&user).password(&password).database(&dbname);
    let tls =
        key.is_some() || cert.is_some() || ca.is_some() || capath.is_some() || cipher.is_some();
    if tls {
        o = o.ssl_mode(if ca.is_some() {
            MySqlSslMode::VerifyCa
        } else {
            MySqlSslMode::Required
        });
    }
    if let Some(ca) = ca {
        o = o.ssl_ca(ca);
    }
    if let Some(c) = cert {
        o = o.ssl_client_cert(c);
    }
    if let Some(k) = key {
        o = o.ssl_client_key(k);
    }
    if capath.is_some() {
        tracing::warn!("MySQL: capath is not supported (give the CA file with ca=); the server certificate is not verified without ca=");
    }
    if cipher.is_some() {
        tracing::warn!("MySQL: cipher is ignored; the TLS library picks the cipher");
    }
    Ok(MysqlSpec {
        options: o,
        connect_timeout,
        read_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Vec<(String, String)> {
        split_libpq_keywords(s).expect("parses")
    }

    fn p(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn libpq_bare_and_quoted_values() {
        assert_eq!(
            kw("host=127.0.0.1 port=5432 dbname=coturn user=turn password=x"),
            vec![
                p("host", "127.0.0.1"),
                p("port", "5432"),
                p("dbname", "coturn"),
                p("user", "turn"),
                p("password", "x")
            ]
        );
        assert_eq!(
            kw("password='a b\\'c\\\\d' user = 'o''brien'  dbname=''"),
            vec![
                p("password", "a b'c\\d"),
                p("user", "o'brien"),
                p("dbname", "")
            ]
        );
        assert_eq!(kw("   "), vec![]);
    }

    #[test]
    fn libpq_errors() {
        assert!(matches!(
            split_libpq_keywords("host"),
            Err(DbError::BadSpec(_))
        ));
        assert!(matches!(
            split_libpq_keywords("password='open"),
            Err(DbError::BadSpec(_))
        ));
        match parse_postgres("host=x bogus=1") {
            Err(DbError::BadSpec(m)) => assert!(m.contains("bogus"), "{m}"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("bogus key accepted"),
        }
        assert!(matches!(
            parse_postgres("port=abc"),
            Err(DbError::BadSpec(_))
        ));
        assert!(matches!(
            parse_postgres("sslmode=maybe"),
            Err(DbError::BadSpec(_))
        ));
        assert!(matches!(
            parse_postgres("host=a,b"),
            Err(DbError::BadSpec(_))
        ));
    }

    #[test]
    fn postgres_keyword_options() {
        let (o, t) = parse_postgres(
            "host=127.0.0.1 port=6543 dbname=coturn user=turn password='p w' connect_timeout=3 sslmode=disable keepalives=1",
        )
        .expect("parses");
        assert_eq!(o.get_host(), "127.0.0.1");
        assert_eq!(o.get_port(), 6543);
        assert_eq!(o.get_database(), Some("coturn"));
        assert_eq!(o.get_username(), "turn");
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Disable));
        assert_eq!(t, Duration::from_secs(3));

        let (o, t) =
            parse_postgres("host=/run/pg port=5433 options='-c search_path=turn'").expect("parses");
        assert_eq!(
            o.get_socket().map(|p| p.display().to_string()),
            Some("/run/pg".to_string())
        );
        assert_eq!(o.get_options(), Some("-c search_path=turn"));
        assert_eq!(t, DEFAULT_CONNECT_TIMEOUT);

        let (o, _) = parse_postgres("host=db.example hostaddr=10.0.0.5").expect("parses");
        assert_eq!(o.get_host(), "10.0.0.5");
    }

    #[test]
    fn postgres_uri() {
        let (o, t) = parse_postgres(
            "postgresql://turn:secret@127.0.0.1:6000/coturn?sslmode=require&connect_timeout=2",
        )
        .expect("parses");
        assert_eq!(o.get_host(), "127.0.0.1");
        assert_eq!(o.get_port(), 6000);
        assert_eq!(o.get_database(), Some("coturn"));
        assert_eq!(o.get_username(), "turn");
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Require));
        assert_eq!(t, Duration::from_secs(2));
        let (o, t) = parse_postgres("postgres://u@h/d?connect_timeout=0").expect("parses");
        assert_eq!(o.get_host(), "h");
        assert_eq!(t, DEFAULT_CONNECT_TIMEOUT);
        assert!(matches!(
            parse_postgres("postgres://u@h/d?connect_timeout=x"),
            Err(DbError::BadSpec(_))
        ));
    }

    #[test]
    fn mysql_keys_and_aliases() {
        let s = parse_mysql(
            "host=192.0.2.1 dbname=coturn user=turn password=pa=ss port=3307 connect_timeout=4 read_timeout=9",
        )
        .expect("parses");
        assert_eq!(s.options.get_host(), "192.0.2.1");
        assert_eq!(s.options.get_port(), 3307);
        assert_eq!(s.options.get_database(), Some("coturn"));
        assert_eq!(s.options.get_username(), "turn");
        assert_eq!(s.connect_timeout, Duration::from_secs(4));
        assert_eq!(s.read_timeout, Some(Duration::from_secs(9)));
        assert!(matches!(s.options.get_ssl_mode(), MySqlSslMode::Preferred));

        let s = parse_mysql("ip=10.1.1.1 db=x uname=u pwd=p p=0").expect("parses");
        assert_eq!(s.options.get_host(), "10.1.1.1");
        assert_eq!(s.options.get_port(), 3306);
        assert_eq!(s.options.get_database(), Some("x"));
        assert_eq!(s.options.get_username(), "u");

        let s = parse_mysql("user=u").expect("parses");
        assert_eq!(s.options.get_host(), "127.0.0.1", "coturn's default host");
        assert_eq!(
            s.options.get_database(),
            Some("0"),
            "coturn's default dbname"
        );
    }

    #[test]
    fn mysql_ssl_keys() {
        let s = parse_mysql("host=h user=u ca=/etc/ca.pem cert=/etc/c.pem key=/etc/k.pem")
            .expect("parses");
        assert!(matches!(s.options.get_ssl_mode(), MySqlSslMode::VerifyCa));
        let s = parse_mysql("host=h user=u ssl-cert=/etc/c.pem ssl-key=/etc/k.pem cipher=AES")
            .expect("parses");
        assert!(matches!(s.options.get_ssl_mode(), MySqlSslMode::Required));
    }

    #[test]
    fn mysql_bad_keys() {
        match parse_mysql("host=h sslmode=on") {
            Err(DbError::BadSpec(m)) => assert!(m.contains("sslmode"), "{m}"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("unknown key accepted"),
        }
        match parse_mysql("host=h justaword") {
            Err(DbError::BadSpec(m)) => assert!(m.contains("justaword"), "{m}"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("word without = accepted"),
        }
        assert!(matches!(
            parse_mysql("port=99999"),
            Err(DbError::BadSpec(_))
        ));
    }

    #[test]
    fn dialect_statements() {
        assert_eq!(
            Dialect::Postgres.placeholders("select a from t where x=? and y=?"),
            "select a from t where x=$1 and y=$2"
        );
        assert_eq!(Dialect::Mysql.placeholders("x=?"), "x=?");
        assert_eq!(
            Dialect::Postgres.upsert("t", &["k"], &["v"]),
            "insert into t (k,v) values (?,?) on conflict (k) do update set v=excluded.v"
        );
        assert_eq!(
            Dialect::Mysql.upsert("t", &["k"], &["v", "w"]),
            "insert into t (k,v,w) values (?,?,?) on duplicate key update v=values(v),w=values(w)"
        );
        assert_eq!(
            Dialect::Sqlite.insert_new("t", &["a", "b"]),
            "insert or ignore into t (a,b) values (?,?)"
        );
    }

    #[test]
    fn schema_has_the_eight_tables() {
        let names: Vec<String> = schema_statements()
            .map(|s| s.split_whitespace().nth(2).unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "turnusers_lt",
                "turn_secret",
                "allowed_peer_ip",
                "denied_peer_ip",
                "turn_origin_to_realm",
                "turn_realm_option",
                "oauth_key",
                "admin_user"
            ]
        );
        assert!(
            if_not_exists(SQLITE_TABLES[0]).starts_with("CREATE TABLE IF NOT EXISTS turnusers_lt ")
        );
    }
}
