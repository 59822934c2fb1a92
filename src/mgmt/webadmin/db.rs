//! The web admin's own connection to the user database: a small tokio
//! runtime of its own (never the relay threads', never the database
//! service's), connected on first use and kept, every call bounded in time.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::userdb::{DbResult, DbSpec, UserDb};

/// How long one database call may take before the page says so.
const DB_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Db {
    rt: tokio::runtime::Runtime,
    spec: Option<DbSpec>,
    conn: Mutex<Option<UserDb>>,
}

impl Db {
    pub fn new(spec: Option<DbSpec>) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("web-admin-db")
            .enable_all()
            .build()?;
        Ok(Db { rt, spec, conn: Mutex::new(None) })
    }

    pub fn configured(&self) -> bool {
        self.spec.is_some()
    }

    fn handle(&self) -> Result<UserDb, String> {
        let Some(spec) = &self.spec else { return Err("no user database is configured".into()) };
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = conn.as_ref() {
            return Ok(db.clone());
        }
        let db = self
            .rt
            .block_on(async { tokio::time::timeout(DB_TIMEOUT, UserDb::connect(spec)).await })
            .map_err(|_| "the user database did not answer in time".to_string())?
            .map_err(|e| e.to_string())?;
        *conn = Some(db.clone());
        Ok(db)
    }

    /// Run one database call (`f` gets a connected handle).
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T, String>
    where
        F: FnOnce(UserDb) -> Fut,
        Fut: Future<Output = DbResult<T>>,
    {
        let db = self.handle()?;
        match self.rt.block_on(async { tokio::time::timeout(DB_TIMEOUT, f(db)).await }) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the user database did not answer in time".into()),
        }
    }
}
