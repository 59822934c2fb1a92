//! Keys and checksums: long-term key derivation, HMACs, FINGERPRINT CRC.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::saslprep::saslprep;

/// FINGERPRINT xor constant.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Long-term credential key: MD5(username ":" realm ":" password), each part
/// SASLprep'd first where SASLprep succeeds (RFC 5389 15.4). 16 bytes.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(saslprep(username).as_bytes());
    h.update(b":");
    h.update(saslprep(realm).as_bytes());
    h.update(b":");
    h.update(saslprep(password).as_bytes());
    h.finalize().into()
}

/// RFC 8489 SHA-256 long-term key: SHA-256(username ":" realm ":" password).
/// The parts get the same SASLprep treatment as [`long_term_key`] so that both
/// algorithms see the same credentials.
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(saslprep(username).as_bytes());
    h.update(b":");
    h.update(saslprep(realm).as_bytes());
    h.update(b":");
    h.update(saslprep(password).as_bytes());
    h.finalize().into()
}

/// A message-integrity key of any of the lengths the server uses: 16 bytes
/// (MD5 long-term key), 32 bytes (RFC 8489 SHA-256 long-term key) or an
/// RFC 7635 oAuth `mac_key` (up to [`MacKey::MAX`] bytes). `Copy` and on the
/// stack so allocations can keep it; dereferences to the key bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacKey {
    buf: [u8; MacKey::MAX],
    len: u8,
}

impl MacKey {
    /// Longest key kept (an HMAC key longer than the hash block would be hashed
    /// anyway; RFC 7635 mac_keys are 20 to 64 bytes).
    pub const MAX: usize = 64;

    /// `None` when `bytes` is longer than [`MacKey::MAX`].
    pub fn from_slice(bytes: &[u8]) -> Option<MacKey> {
        let mut buf = [0u8; MacKey::MAX];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(MacKey { buf, len: bytes.len() as u8 })
    }
}

impl std::ops::Deref for MacKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl From<[u8; 16]> for MacKey {
    fn from(k: [u8; 16]) -> Self {
        let mut buf = [0u8; MacKey::MAX];
        buf[..16].copy_from_slice(&k);
        MacKey { buf, len: 16 }
    }
}

impl From<[u8; 32]> for MacKey {
    fn from(k: [u8; 32]) -> Self {
        let mut buf = [0u8; MacKey::MAX];
        buf[..32].copy_from_slice(&k);
        MacKey { buf, len: 32 }
    }
}

impl std::fmt::Debug for MacKey {
    /// Keys are secrets: only the length is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MacKey(<{} bytes redacted>)", self.len)
    }
}

/// Short-term key: SASLprep(password) bytes.
pub fn short_term_key(password: &str) -> Vec<u8> {
    saslprep(password).into_owned().into_bytes()
}

/// HMAC-SHA1 of the concatenation of `parts` (so callers can MAC a patched
/// header and the rest of the datagram without copying).
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// CRC-32 of `data` xor [`FINGERPRINT_XOR`].
pub fn fingerprint(data: &[u8]) -> u32 {
    crc32fast::hash(data) ^ FINGERPRINT_XOR
}

/// Constant-time equality of two byte strings (length leaks, content does not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5769_long_term_key() {
        // RFC 5769 2.4: key = MD5("<katakana>:example.org:TheMatrIX"), the
        // password being SASLprep'd from "The<U+00AD>M<U+00AA>tr<U+2168>".
        let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
        let raw = long_term_key(user, "example.org", "The\u{00AD}M\u{00AA}tr\u{2168}");
        let prepped = long_term_key(user, "example.org", "TheMatrIX");
        assert_eq!(raw, prepped);
        let mut h = Md5::new();
        h.update(format!("{user}:example.org:TheMatrIX").as_bytes());
        let direct: [u8; 16] = h.finalize().into();
        assert_eq!(raw, direct);
    }

    #[test]
    fn known_md5_key() {
        // MD5("user:realm:pass") computed independently (coreutils md5sum).
        let k = long_term_key("user", "realm", "pass");
        assert_eq!(hex(&k), "8493fbc53ba582fb4c044c456bdc40eb");
    }

    #[test]
    fn short_term_key_is_prepped_password() {
        assert_eq!(short_term_key("VOkJxbRl1RmTxUk/WvJxBt"), b"VOkJxbRl1RmTxUk/WvJxBt".to_vec());
        assert_eq!(short_term_key("I\u{00AD}X"), b"IX".to_vec());
    }

    #[test]
    fn hmac_parts_concatenate() {
        assert_eq!(hmac_sha1(b"k", &[b"ab", b"cd"]), hmac_sha1(b"k", &[b"abcd"]));
        assert_eq!(hmac_sha256(b"k", &[b"a", b"", b"bcd"]), hmac_sha256(b"k", &[b"abcd"]));
        // RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2 (HMAC-SHA256).
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn fingerprint_is_crc_xor() {
        // CRC-32 of "123456789" is 0xCBF43926.
        assert_eq!(fingerprint(b"123456789"), 0xCBF4_3926 ^ FINGERPRINT_XOR);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
