//! User databases: coturn's SQL schema (SQLite, PostgreSQL, MySQL/MariaDB) and
//! its Redis key layout, behind one [`UserDb`] handle.
//!
//! Everything here is async and runs on the database service's own tokio
//! runtime, never on a relay thread. The relay threads only see answers.
//! `turnadmin` uses the same handle for its writes.
//!
//! Values are stored exactly as coturn stores them (hex keys, `$5$` admin
//! password hashes, origins as `scheme://host:port`), so a database written by
//! coturn's `turnadmin` reads back here unchanged and the reverse.

use std::path::PathBuf;

pub mod redis;
pub mod secret_key;
pub mod service;
pub mod sql;
pub mod statsdb;

/// Which database, as the operator named it on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbSpec {
    /// `--userdb`/`--db`/`-b FILE`.
    Sqlite(PathBuf),
    /// `--psql-userdb`/`--sql-userdb`/`-e`: libpq keyword string or `postgresql://` URI.
    Postgres(String),
    /// `--mysql-userdb`/`-M`: coturn's `host= dbname= user= password= port= ...` string.
    Mysql(String),
    /// `--redis-userdb`/`-N`: coturn's `ip= dbname= password= port= ...` string.
    Redis(String),
}

/// Errors talk about the database, never about the request that caused them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string cannot be understood (operator error; fatal at start).
    #[error("bad database connection string: {0}")]
    BadSpec(String),
    /// The database is unreachable or answered with an error (transient).
    #[error("database error: {0}")]
    Backend(String),
}

pub type DbResult<T> = Result<T, DbError>;

/// A realm option row (`turn_realm_option`): `max-bps`, `total-quota`, `user-quota`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmOption {
    pub realm: String,
    pub opt: String,
    pub value: String,
}

/// One row of `allowed_peer_ip` / `denied_peer_ip`: `ip` or `ip-ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRange {
    pub realm: String,
    pub range: String,
}

/// Which peer list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerList {
    Allowed,
    Denied,
}

/// A web-admin user (`admin_user`); `realm` empty = superuser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    pub name: String,
    pub realm: String,
    /// `$5$<salt hex>$<sha256 hex>` or plain text, as stored.
    pub password: String,
}

/// Connected database of any backend. Cheap to clone (pools inside).
#[derive(Clone)]
pub enum UserDb {
    Sql(sql::SqlDb),
    Redis(redis::RedisDb),
}

/// Forwards each method to the backend with the same name and signature.
macro_rules! forward {
    ($( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        $(
            $(#[$m])*
            pub async fn $name(&self $(, $arg: $ty)*) -> DbResult<$ret> {
                match self {
                    UserDb::Sql(db) => db.$name($($arg),*).await,
                    UserDb::Redis(db) => db.$name($($arg),*).await,
                }
            }
        )*
    };
}

impl UserDb {
    /// Connects (and for SQLite creates the file and coturn's tables when missing).
    /// A bad spec is `BadSpec`; an unreachable server is `Backend` (callers at
    /// start log it and keep retrying; the server still starts).
    pub async fn connect(spec: &DbSpec) -> DbResult<UserDb> {
        match spec {
            DbSpec::Sqlite(_) | DbSpec::Postgres(_) | DbSpec::Mysql(_) => {
                Ok(UserDb::Sql(sql::SqlDb::connect(spec).await?))
            }
            DbSpec::Redis(s) => Ok(UserDb::Redis(redis::RedisDb::connect(s).await?)),
        }
    }

    forward! {
        /// Cheap round trip used for health checks and reconnect probing.
        fn ping(&self) -> ();

        // --- read by the server ---
        /// `turnusers_lt.hmackey` for (realm, name): lowercase hex of the 16-byte
        /// key (coturn may store longer keys for SHA-256 realms; returned as stored).
        fn get_user_key(&self, realm: &str, name: &str) -> Option<String>;
        /// REST secrets (`turn_secret.value`) of a realm, in storage order.
        fn get_secrets(&self, realm: &str) -> Vec<String>;
        /// Every row of one peer list, all realms.
        fn list_peer_ranges(&self, list: PeerList) -> Vec<PeerRange>;
        /// `turn_origin_to_realm` rows as (origin, realm); `realm` filters when given.
        fn list_origins(&self, realm: Option<&str>) -> Vec<(String, String)>;
        /// `turn_realm_option` rows; `realm` filters when given.
        fn list_realm_options(&self, realm: Option<&str>) -> Vec<RealmOption>;
        /// `admin_user` row by name.
        fn get_admin_user(&self, name: &str) -> Option<AdminUser>;
        /// `oauth_key` row by kid (RFC 7635 keys).
        fn get_oauth_key(&self, kid: &str) -> Option<crate::core::oauth::OauthKeyRow>;

        // --- written by turnadmin ---
        /// Insert or replace the user's key (hex string as stored).
        fn set_user_key(&self, realm: &str, name: &str, hmackey: &str) -> ();
        fn delete_user(&self, realm: &str, name: &str) -> ();
        /// (name, realm) pairs; `realm` filters when given.
        fn list_users(&self, realm: Option<&str>) -> Vec<(String, String)>;
        fn add_secret(&self, realm: &str, value: &str) -> ();
        fn delete_secret(&self, realm: &str, value: &str) -> ();
        fn delete_all_secrets(&self, realm: &str) -> ();
        /// (value, realm) pairs; `realm` filters when given.
        fn list_secrets(&self, realm: Option<&str>) -> Vec<(String, String)>;
        /// Origin must already be normalised by the caller.
        fn add_origin(&self, origin: &str, realm: &str) -> ();
        fn delete_origin(&self, origin: &str) -> ();
        /// Value "0" removes the option (coturn's turnadmin -g semantics).
        fn set_realm_option(&self, realm: &str, opt: &str, value: &str) -> ();
        fn add_peer_range(&self, list: PeerList, realm: &str, range: &str) -> ();
        fn delete_peer_range(&self, list: PeerList, realm: &str, range: &str) -> ();
        /// Insert or replace; the password is stored as given (already hashed).
        fn set_admin_user(&self, user: &AdminUser) -> ();
        fn delete_admin_user(&self, name: &str) -> ();
        /// Insert or replace an `oauth_key` row.
        fn set_oauth_key(&self, row: &crate::core::oauth::OauthKeyRow) -> ();
        fn delete_oauth_key(&self, kid: &str) -> ();
        /// Every `oauth_key` row, ordered by kid.
        fn list_oauth_keys(&self) -> Vec<crate::core::oauth::OauthKeyRow>;
        fn list_admin_users(&self) -> Vec<AdminUser>;
    }
}
