//! Stateless NONCE (coturn 4.17 default): the nonce carries its issue time and an
//! HMAC over the client address, so a 401 challenge creates no per-source state.
//!
//! Format: 24 lowercase hex characters = 8 hex of the issue time (unix seconds,
//! u32) followed by the first 16 hex (8 bytes) of
//! HMAC-SHA256(key, "<client ip:port>" || "|" || "<8-hex ts>"), where
//! key = SHA-256("coturn-stateless-nonce-v1" || secret). Servers in a fleet that
//! share `--stateless-nonce-secret` accept each other's nonces.

use std::net::SocketAddr;

/// What a received NONCE is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued by us (or a fleet peer) for this client and still fresh.
    Valid,
    /// Ours, but older than the stale-nonce lifetime: answer 438 with a fresh one.
    Stale,
    /// Not ours, malformed, for another address, or issued in the future beyond
    /// 5 s of skew: answer 438 with a fresh one too.
    Invalid,
}

/// Issues and checks nonces. Cheap to clone; one per relay thread is fine.
#[derive(Clone)]
pub struct NonceGen {
    key: [u8; 32],
    /// Lifetime in seconds; 0 = never stale.
    stale_secs: u32,
}

impl NonceGen {
    /// `secret`: the `--stateless-nonce-secret`, or `None` for a random per-process one.
    /// `stale_secs`: `--stale-nonce` value (600 default, 0 = never).
    pub fn new(secret: Option<&str>, stale_secs: u32) -> Self {
        todo!()
    }

    /// A fresh nonce for `client` at `now_unix`.
    pub fn issue(&self, client: SocketAddr, now_unix: u64) -> String {
        todo!()
    }

    pub fn check(&self, nonce: &str, client: SocketAddr, now_unix: u64) -> NonceCheck {
        todo!()
    }
}
