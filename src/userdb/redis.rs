//! Placeholder for the redis backend; replaced by the real implementation.
#![allow(unused_variables)]

use super::*;

#[derive(Clone)]
pub struct RedisDb;

fn missing<T>() -> DbResult<T> {
    Err(DbError::Backend("redis backend not built yet".into()))
}

impl RedisDb {
    pub async fn connect(spec: &str) -> DbResult<RedisDb> {
        missing()
    }
    pub async fn ping(&self) -> DbResult<()> {
        missing()
    }
    pub async fn get_user_key(&self, realm: &str, name: &str) -> DbResult<Option<String>> {
        missing()
    }
    pub async fn get_secrets(&self, realm: &str) -> DbResult<Vec<String>> {
        missing()
    }
    pub async fn list_peer_ranges(&self, list: PeerList) -> DbResult<Vec<PeerRange>> {
        missing()
    }
    pub async fn list_origins(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        missing()
    }
    pub async fn list_realm_options(&self, realm: Option<&str>) -> DbResult<Vec<RealmOption>> {
        missing()
    }
    pub async fn get_admin_user(&self, name: &str) -> DbResult<Option<AdminUser>> {
        missing()
    }
    pub async fn set_user_key(&self, realm: &str, name: &str, hmackey: &str) -> DbResult<()> {
        missing()
    }
    pub async fn delete_user(&self, realm: &str, name: &str) -> DbResult<()> {
        missing()
    }
    pub async fn list_users(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        missing()
    }
    pub async fn add_secret(&self, realm: &str, value: &str) -> DbResult<()> {
        missing()
    }
    pub async fn delete_secret(&self, realm: &str, value: &str) -> DbResult<()> {
        missing()
    }
    pub async fn delete_all_secrets(&self, realm: &str) -> DbResult<()> {
        missing()
    }
    pub async fn list_secrets(&self, realm: Option<&str>) -> DbResult<Vec<(String, String)>> {
        missing()
    }
    pub async fn add_origin(&self, origin: &str, realm: &str) -> DbResult<()> {
        missing()
    }
    pub async fn delete_origin(&self, origin: &str) -> DbResult<()> {
        missing()
    }
    pub async fn set_realm_option(&self, realm: &str, opt: &str, value: &str) -> DbResult<()> {
        missing()
    }
    pub async fn add_peer_range(&self, list: PeerList, realm: &str, range: &str) -> DbResult<()> {
        missing()
    }
    pub async fn delete_peer_range(&self, list: PeerList, realm: &str, range: &str) -> DbResult<()> {
        missing()
    }
    pub async fn set_admin_user(&self, user: &AdminUser) -> DbResult<()> {
        missing()
    }
    pub async fn delete_admin_user(&self, name: &str) -> DbResult<()> {
        missing()
    }
    pub async fn list_admin_users(&self) -> DbResult<Vec<AdminUser>> {
        missing()
    }
}
