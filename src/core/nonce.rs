//! Stateless NONCE (coturn 4.17 default): the nonce carries its issue time and an
//! HMAC over the client's IP address, so a 401 challenge creates no per-source
//! state.
//!
//! Format: 24 lowercase hex characters = 8 hex of the issue time (unix seconds,
//! u32) followed by the first 16 hex (8 bytes) of
//! HMAC-SHA256(key, "<client ip>" || "|" || "<8-hex ts>"), where
//! key = SHA-256("coturn-stateless-nonce-v1" || secret). Servers in a fleet that
//! share `--stateless-nonce-secret` accept each other's nonces.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Domain-separation prefix of the key derivation (coturn's exact string, so a
/// mixed fleet of coturn and turnserver-rs sharing one secret interoperates).
const KEY_PREFIX: &[u8] = b"coturn-stateless-nonce-v1";

/// Length of a stateless nonce: 8 hex of time + 16 hex of MAC.
pub const NONCE_LEN: usize = 24;

/// How far in the future an issue time may lie (clock skew between fleet members).
pub const MAX_FUTURE_SKEW_SECS: i64 = 5;

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

impl std::fmt::Debug for NonceGen {
    /// The key is a secret: never print it (configs and states get logged).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceGen")
            .field("key", &"<redacted>")
            .field("stale_secs", &self.stale_secs)
            .finish()
    }
}

impl NonceGen {
    /// `secret`: the `--stateless-nonce-secret`, or `None` for a random per-process one.
    /// `stale_secs`: `--stale-nonce` value (600 default, 0 = never).
    pub fn new(secret: Option<&str>, stale_secs: u32) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_PREFIX);
        match secret {
            Some(s) => h.update(s.as_bytes()),
            None => {
                // A per-process secret: nonces die with the process, which is what
                // an operator who did not configure fleet sharing expects.
                let mut random = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut random);
                h.update(random);
            }
        }
        NonceGen {
            key: h.finalize().into(),
            stale_secs,
        }
    }

    /// The stale-nonce lifetime this generator enforces (0 = never stale).
    /// Whether `other` signs nonces with the same secret (a reload keeps
    /// outstanding nonces valid unless the configured secret changed).
    pub fn same_secret(&self, other: &NonceGen) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.key.ct_eq(&other.key))
    }

    /// The same secret with another lifetime (`--stale-nonce` reloaded).
    pub fn with_stale(&self, stale_secs: u32) -> NonceGen {
        NonceGen { key: self.key, stale_secs }
    }

    pub fn stale_secs(&self) -> u32 {
        self.stale_secs
    }

    /// A fresh nonce for `client` at `now_unix`.
    pub fn issue(&self, client: SocketAddr, now_unix: u64) -> String {
        self.issue_tagged(client, now_unix, b"")
    }

    /// A fresh nonce whose MAC also covers `tag` (what the challenge offered
    /// with it, e.g. the RFC 8489 cookie and PASSWORD-ALGORITHMS list), so
    /// [`NonceGen::check_tagged`] with the same tag is the proof that this
    /// client was offered exactly that. An empty tag gives [`NonceGen::issue`].
    pub fn issue_tagged(&self, client: SocketAddr, now_unix: u64, tag: &[u8]) -> String {
        // The wire format has 32 bits of time; truncation wraps in 2106 and
        // `check` compares times modulo 2^32, so the wrap is harmless.
        let ts = format!("{:08x}", now_unix as u32);
        let mac = self.mac(client, ts.as_bytes(), tag);
        let mut out = String::with_capacity(NONCE_LEN);
        out.push_str(&ts);
        push_hex(&mut out, &mac);
        out
    }

    pub fn check(&self, nonce: &str, client: SocketAddr, now_unix: u64) -> NonceCheck {
        self.check_tagged(nonce, client, now_unix, b"")
    }

    /// Check a nonce issued by [`NonceGen::issue_tagged`] with `tag`.
    pub fn check_tagged(&self, nonce: &str, client: SocketAddr, now_unix: u64, tag: &[u8]) -> NonceCheck {
        let b = nonce.as_bytes();
        // Only what `issue` produces can verify: exactly 24 lowercase hex digits.
        // Checking bytes (not chars) first also makes the slicing below safe for
        // any peer-supplied string.
        if b.len() != NONCE_LEN || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return NonceCheck::Invalid;
        }
        let (ts_hex, mac_hex) = b.split_at(8);
        let mut expected = String::with_capacity(16);
        push_hex(&mut expected, &self.mac(client, ts_hex, tag));
        // Constant time so the MAC cannot be guessed byte by byte from timing.
        if !bool::from(expected.as_bytes().ct_eq(mac_hex)) {
            return NonceCheck::Invalid;
        }
        let ts = match std::str::from_utf8(ts_hex)
            .ok()
            .and_then(|t| u32::from_str_radix(t, 16).ok())
        {
            Some(t) => t,
            None => return NonceCheck::Invalid,
        };
        // Signed age modulo 2^32: correct across the 2106 wrap, ±68 years of range.
        let age = i64::from((now_unix as u32).wrapping_sub(ts) as i32);
        if age < -MAX_FUTURE_SKEW_SECS {
            return NonceCheck::Invalid;
        }
        if self.stale_secs > 0 && age >= i64::from(self.stale_secs) {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }

    /// First 8 bytes of HMAC-SHA256(key, "<ip>|<ts hex>" || tag).
    ///
    /// The IP, not the port: one client keeps several connections to the
    /// server (RFC 6062 control and data connections, each with its own
    /// port) and clients such as turnutils_uclient share one nonce between
    /// them. The port adds nothing against replay from elsewhere, which is
    /// what binding the nonce to the source is for.
    fn mac(&self, client: SocketAddr, ts_hex: &[u8], tag: &[u8]) -> [u8; 8] {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        m.update(client.ip().to_string().as_bytes());
        m.update(b"|");
        m.update(ts_hex);
        m.update(tag);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&full[..8]);
        out
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &x in bytes {
        out.push(HEX[usize::from(x >> 4)] as char);
        out.push(HEX[usize::from(x & 0x0f)] as char);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const T0: u64 = 1_700_000_000;

    #[test]
    fn format_is_24_lowercase_hex_with_time_prefix() {
        let g = NonceGen::new(Some("s"), 600);
        let n = g.issue(addr("192.0.2.1:3478"), T0);
        assert_eq!(n.len(), 24);
        assert!(n.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(&n[..8], format!("{:08x}", T0));
    }

    #[test]
    fn matches_independent_hmac_computation() {
        // Recompute the documented formula by hand, independent of `mac`.
        let g = NonceGen::new(Some("fleet-secret"), 600);
        let c = addr("[2001:db8::1]:5000");
        let mut kh = Sha256::new();
        kh.update(b"coturn-stateless-nonce-v1fleet-secret");
        let key = kh.finalize();
        let ts = format!("{:08x}", T0);
        let mut m = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
        m.update(format!("2001:db8::1|{ts}").as_bytes());
        let d = m.finalize().into_bytes();
        let mut want = ts.clone();
        push_hex(&mut want, &d[..8]);
        assert_eq!(g.issue(c, T0), want);
    }

    #[test]
    fn round_trip_valid() {
        let g = NonceGen::new(None, 600);
        let c = addr("192.0.2.1:40000");
        let n = g.issue(c, T0);
        assert_eq!(g.check(&n, c, T0), NonceCheck::Valid);
        assert_eq!(g.check(&n, c, T0 + 599), NonceCheck::Valid);
    }

    #[test]
    fn other_address_is_invalid() {
        let g = NonceGen::new(Some("k"), 600);
        let n = g.issue(addr("192.0.2.1:40000"), T0);
        // Another port of the same host is the same client (RFC 6062 data
        // connections).
        assert_eq!(
            g.check(&n, addr("192.0.2.1:40001"), T0),
            NonceCheck::Valid
        );
        assert_eq!(
            g.check(&n, addr("192.0.2.2:40000"), T0),
            NonceCheck::Invalid
        );
        assert_eq!(
            g.check(&n, addr("[::ffff:192.0.2.1]:40000"), T0),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn tampered_is_invalid() {
        let g = NonceGen::new(Some("k"), 600);
        let c = addr("192.0.2.1:40000");
        let n = g.issue(c, T0);
        // Flip every position in turn: time and MAC are both covered.
        for i in 0..n.len() {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(b).unwrap();
            assert_eq!(g.check(&t, c, T0), NonceCheck::Invalid, "position {i}");
        }
        // Moving the time forward to dodge staleness breaks the MAC.
        let later = format!("{:08x}{}", T0 + 1000, &n[8..]);
        assert_eq!(g.check(&later, c, T0 + 1000), NonceCheck::Invalid);
    }

    #[test]
    fn malformed_is_invalid() {
        let g = NonceGen::new(Some("k"), 600);
        let c = addr("192.0.2.1:40000");
        let n = g.issue(c, T0);
        assert_eq!(g.check("", c, T0), NonceCheck::Invalid);
        assert_eq!(g.check(&n[..23], c, T0), NonceCheck::Invalid);
        assert_eq!(g.check(&format!("{n}0"), c, T0), NonceCheck::Invalid);
        assert_eq!(g.check(&n.to_uppercase(), c, T0), NonceCheck::Invalid);
        assert_eq!(
            g.check("zzzzzzzzzzzzzzzzzzzzzzzz", c, T0),
            NonceCheck::Invalid
        );
        // 24 bytes but multi-byte UTF-8: must not panic on slicing.
        assert_eq!(g.check("ééééééééééé00", c, T0), NonceCheck::Invalid);
        // A legacy 16-hex nonce is not ours.
        assert_eq!(g.check("0123456789abcdef", c, T0), NonceCheck::Invalid);
    }

    #[test]
    fn stale_boundary() {
        let g = NonceGen::new(Some("k"), 600);
        let c = addr("192.0.2.1:40000");
        let n = g.issue(c, T0);
        assert_eq!(g.check(&n, c, T0 + 599), NonceCheck::Valid);
        assert_eq!(g.check(&n, c, T0 + 600), NonceCheck::Stale);
        assert_eq!(g.check(&n, c, T0 + 100_000), NonceCheck::Stale);
    }

    #[test]
    fn zero_means_never_stale() {
        let g = NonceGen::new(Some("k"), 0);
        let c = addr("192.0.2.1:40000");
        let n = g.issue(c, T0);
        assert_eq!(g.check(&n, c, T0 + 600), NonceCheck::Valid);
        assert_eq!(g.check(&n, c, T0 + 10 * 365 * 86_400), NonceCheck::Valid);
    }

    #[test]
    fn future_skew() {
        let g = NonceGen::new(Some("k"), 600);
        let c = addr("192.0.2.1:40000");
        let n = g.issue(c, T0);
        assert_eq!(g.check(&n, c, T0 - 5), NonceCheck::Valid);
        assert_eq!(g.check(&n, c, T0 - 6), NonceCheck::Invalid);
        assert_eq!(g.check(&n, c, T0 - 100_000), NonceCheck::Invalid);
    }

    #[test]
    fn wraps_at_u32_time() {
        let g = NonceGen::new(Some("k"), 600);
        let c = addr("192.0.2.1:40000");
        let t = u64::from(u32::MAX) - 10;
        let n = g.issue(c, t);
        assert_eq!(g.check(&n, c, t + 20), NonceCheck::Valid);
        assert_eq!(g.check(&n, c, t + 600), NonceCheck::Stale);
    }

    #[test]
    fn fleet_shares_secret() {
        let a = NonceGen::new(Some("shared"), 600);
        let b = NonceGen::new(Some("shared"), 600);
        let other = NonceGen::new(Some("different"), 600);
        let c = addr("[2001:db8::7]:1234");
        let n = a.issue(c, T0);
        assert_eq!(b.check(&n, c, T0 + 1), NonceCheck::Valid);
        assert_eq!(other.check(&n, c, T0 + 1), NonceCheck::Invalid);
    }

    #[test]
    fn random_secrets_differ() {
        let a = NonceGen::new(None, 600);
        let b = NonceGen::new(None, 600);
        let c = addr("192.0.2.1:1");
        assert_eq!(b.check(&a.issue(c, T0), c, T0), NonceCheck::Invalid);
    }

    #[test]
    fn tag_is_covered() {
        let g = NonceGen::new(Some("k"), 600);
        let c = addr("192.0.2.1:40000");
        let n = g.issue_tagged(c, T0, b"sha256,md5");
        assert_eq!(g.check_tagged(&n, c, T0, b"sha256,md5"), NonceCheck::Valid);
        assert_eq!(g.check_tagged(&n, c, T0, b"md5"), NonceCheck::Invalid);
        assert_eq!(g.check(&n, c, T0), NonceCheck::Invalid);
        assert_eq!(g.issue_tagged(c, T0, b""), g.issue(c, T0));
    }

    #[test]
    fn debug_hides_key() {
        let g = NonceGen::new(Some("k"), 600);
        assert!(format!("{g:?}").contains("redacted"));
    }
}
