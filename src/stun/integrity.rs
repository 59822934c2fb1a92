//! Keys and checksums: long-term key derivation, HMACs, FINGERPRINT CRC.

/// FINGERPRINT xor constant.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Long-term credential key: MD5(username ":" realm ":" password), each part
/// SASLprep'd first where SASLprep succeeds (RFC 5389 15.4). 16 bytes.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    todo!()
}

/// RFC 8489 SHA-256 long-term key: SHA-256(username ":" realm ":" password).
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    todo!()
}

/// Short-term key: SASLprep(password) bytes.
pub fn short_term_key(password: &str) -> Vec<u8> {
    todo!()
}

pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    todo!()
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    todo!()
}

/// CRC-32 of `data` xor [`FINGERPRINT_XOR`].
pub fn fingerprint(data: &[u8]) -> u32 {
    todo!()
}

/// Constant-time equality of two byte strings (length leaks, content does not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    todo!()
}
