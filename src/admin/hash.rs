//! coturn's `$5$` password hashes for web-admin and CLI passwords.
//!
//! Format: `$5$` + 16 hex digits (an 8-byte random salt) + `$` + 64 hex
//! digits of SHA-256(salt bytes ‖ password). Checked against hashes made by
//! coturn 4.6.1's `turnadmin -P`. (Despite the prefix this is not crypt(3)'s
//! SHA-256 scheme.)

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes `password` with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut salt);
    hash_with_salt(&salt, password)
}

/// Hashes `password` with the given salt (deterministic; for tests and
/// verification).
pub fn hash_with_salt(salt: &[u8], password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    format!("$5${}${}", hex(salt), hex(&h.finalize()))
}

/// Whether `password` matches `stored`: a `$5$` hash, or (as coturn
/// accepts) a plain-text password. Compared in constant time.
pub fn verify_password(stored: &str, password: &str) -> bool {
    let expected = match stored.strip_prefix("$5$").and_then(|r| r.split_once('$')) {
        Some((salt_hex, _)) => match unhex(salt_hex) {
            Some(salt) => hash_with_salt(&salt, password),
            None => return false,
        },
        None => password.to_string(),
    };
    crate::stun::integrity::ct_eq(expected.as_bytes(), stored.as_bytes())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::*;

    /// Made by coturn 4.6.1: `turnadmin -P -p qwerty`.
    const COTURN_QWERTY: &str =
        "$5$841acc0ee0acddc1$8f13fa9e9dc4c324d9168c34927fb7987094974980d0a0c76077ebb7e0fd053d";
    /// Made by coturn 4.6.1: `turnadmin -P -p ''`.
    const COTURN_EMPTY: &str =
        "$5$dbdfc61c4dc7cb26$851d46c5a6f008f37a6c876a1827ddeaa3b76d28615d7434a02f5d774bc6c597";

    #[test]
    fn coturn_hashes_verify() {
        assert!(verify_password(COTURN_QWERTY, "qwerty"));
        assert!(!verify_password(COTURN_QWERTY, "qwertz"));
        assert!(!verify_password(COTURN_QWERTY, ""));
        assert!(verify_password(COTURN_EMPTY, ""));
        assert!(!verify_password(COTURN_EMPTY, "x"));
    }

    #[test]
    fn same_salt_gives_coturns_hash() {
        let salt = [0x84, 0x1a, 0xcc, 0x0e, 0xe0, 0xac, 0xdd, 0xc1];
        assert_eq!(hash_with_salt(&salt, "qwerty"), COTURN_QWERTY);
    }

    #[test]
    fn fresh_hashes_have_coturns_shape_and_verify() {
        let a = hash_password("adminpw");
        let b = hash_password("adminpw");
        assert_ne!(a, b, "salt must be random");
        assert_eq!(a.len(), 3 + 16 + 1 + 64);
        assert!(a.starts_with("$5$"));
        assert_eq!(a.as_bytes()[19], b'$');
        assert!(a[3..19]
            .bytes()
            .chain(a[20..].bytes())
            .all(|c| c.is_ascii_hexdigit()));
        assert!(verify_password(&a, "adminpw"));
        assert!(!verify_password(&a, "adminpW"));
    }

    #[test]
    fn plain_text_and_malformed() {
        assert!(verify_password("secret", "secret"));
        assert!(!verify_password("secret", "secre"));
        assert!(!verify_password("$5$zz$00", "x"));
        assert!(!verify_password("$5$abc", "x"));
    }
}
