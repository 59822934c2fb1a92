//! Long-term credential decisions: static users (`--user`), the TURN REST API
//! shared secrets (`--static-auth-secret`), and which key(s) may have signed a
//! request. Database lookups come later through the same [`KeyLookup`] answer.

use std::collections::HashMap;

/// The credential mechanism in force.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// `--no-auth`: anonymous TURN; no MESSAGE-INTEGRITY required.
    NoAuth,
    /// `--lt-cred-mech` with static users: username → 16-byte long-term key
    /// (computed with the default realm).
    LongTerm { users: HashMap<String, [u8; 16]> },
    /// `--use-auth-secret`: REST API time-limited credentials. Static users are
    /// not consulted (as coturn).
    RestSecret { secrets: Vec<String>, separator: char },
}

/// Result of asking which keys may have signed a request from `username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// Candidate long-term keys (REST: one per secret, in order). The request is
    /// accepted when its MESSAGE-INTEGRITY verifies with any of them.
    Found(Vec<[u8; 16]>),
    /// REST username whose timestamp is in the past (or unparsable): 401.
    Expired,
    /// No such user: 401.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub mode: AuthMode,
    /// The default realm (`--realm`).
    pub realm: String,
}

impl Credentials {
    /// Keys that may have signed a request with this USERNAME and REALM.
    /// REST: the expiry is the numeric part of `expiry[sep user]` or
    /// `user sep expiry`; valid while expiry >= now_unix; the password is
    /// base64(HMAC-SHA1(secret, username)) and the key MD5(user:realm:password).
    pub fn lookup(&self, username: &str, realm: &str, now_unix: u64) -> KeyLookup {
        todo!()
    }
}

/// Parse a `--user` value: `name:password` or `name:0x<32 hex key>`, giving the
/// username and its long-term key for `realm`. Error text is for the operator.
pub fn parse_user_spec(spec: &str, realm: &str) -> Result<(String, [u8; 16]), String> {
    todo!()
}

/// REST API password for a username: base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &str, username: &str) -> String {
    todo!()
}
