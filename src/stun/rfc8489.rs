//! RFC 8489 security features on the wire: the PASSWORD-ALGORITHM(S) values,
//! USERHASH, and the nonce cookie that tells a client which features the
//! server offers. Pure encoding; what the server decides lives in
//! `core::security`.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::saslprep::saslprep;

/// RFC 8489 9.2: a NONCE starting with this cookie carries the security
/// feature set in the next four characters.
pub const NONCE_COOKIE: &str = "obMatJos2";
/// Length of the cookie plus the base64 of the 24 feature bits.
pub const NONCE_COOKIE_LEN: usize = 13;

/// Feature bit 0 (the leftmost of the 24, RFC 8489 18.1 figure): password algorithms.
pub const FEATURE_PASSWORD_ALGORITHMS: u32 = 1 << 23;
/// Feature bit 1: username anonymity (USERHASH).
pub const FEATURE_USERNAME_ANONYMITY: u32 = 1 << 22;

/// The nonce cookie prefix for a 24-bit feature set: "obMatJos2" + 4 base64 chars.
pub fn nonce_cookie(features: u32) -> String {
    let b = features.to_be_bytes();
    let mut s = String::with_capacity(NONCE_COOKIE_LEN);
    s.push_str(NONCE_COOKIE);
    base64::engine::general_purpose::STANDARD.encode_string(&b[1..4], &mut s);
    s
}

/// Split a received nonce into its feature bits and the rest, when it starts
/// with a well-formed cookie; `None` otherwise (a legacy nonce).
pub fn split_nonce_cookie(nonce: &str) -> Option<(u32, &str)> {
    let rest = nonce.strip_prefix(NONCE_COOKIE)?;
    let (feat, tail) = (rest.get(..4)?, rest.get(4..)?);
    let bytes = base64::engine::general_purpose::STANDARD.decode(feat).ok()?;
    let b: [u8; 3] = bytes.try_into().ok()?;
    Some((u32::from_be_bytes([0, b[0], b[1], b[2]]), tail))
}

/// RFC 8489 18.5 password algorithms (those this server knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordAlgorithm {
    /// 0x0001: key = MD5(username ":" realm ":" password), the RFC 5389 key.
    Md5,
    /// 0x0002: key = SHA-256(username ":" realm ":" password).
    Sha256,
}

impl PasswordAlgorithm {
    pub fn number(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
        }
    }

    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            0x0001 => Some(PasswordAlgorithm::Md5),
            0x0002 => Some(PasswordAlgorithm::Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PasswordAlgorithm::Md5 => "MD5",
            PasswordAlgorithm::Sha256 => "SHA-256",
        }
    }
}

/// PASSWORD-ALGORITHMS value (RFC 8489 14.11): each entry is algorithm (16
/// bits), parameter length (16 bits), parameters padded to 4. MD5 and SHA-256
/// have no parameters.
pub fn encode_algorithms(list: &[PasswordAlgorithm]) -> Vec<u8> {
    let mut v = Vec::with_capacity(list.len() * 4);
    for a in list {
        v.extend_from_slice(&a.number().to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
    }
    v
}

/// PASSWORD-ALGORITHM value (RFC 8489 14.12).
pub fn encode_algorithm(a: PasswordAlgorithm) -> [u8; 4] {
    let n = a.number().to_be_bytes();
    [n[0], n[1], 0, 0]
}

/// The algorithm number of a PASSWORD-ALGORITHM value (`None`: malformed,
/// i.e. shorter than 4 bytes or a parameter length that does not fit).
pub fn parse_algorithm(value: &[u8]) -> Option<u16> {
    let n = u16::from_be_bytes([*value.first()?, *value.get(1)?]);
    let plen = usize::from(u16::from_be_bytes([*value.get(2)?, *value.get(3)?]));
    (value.len() >= 4 + plen).then_some(n)
}

/// The algorithm numbers of a PASSWORD-ALGORITHMS value (`None`: malformed).
pub fn parse_algorithms(value: &[u8]) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let n = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
        let plen = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
        if rest.len() < 4 + plen {
            return None;
        }
        out.push(n);
        // Padding after the last entry may be absent; elsewhere it is skipped.
        rest = rest.get(4 + plen.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    Some(out)
}

/// USERHASH (RFC 8489 14.4): SHA-256(username ":" realm), both SASLprep'd like
/// the key derivation.
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(saslprep(username).as_bytes());
    h.update(b":");
    h.update(saslprep(realm).as_bytes());
    h.finalize().into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::stun::integrity::long_term_key_sha256;
    use crate::stun::test_vectors::*;
    use crate::stun::{AttrType, Message};

    #[test]
    fn cookie_round_trip() {
        let c = nonce_cookie(FEATURE_PASSWORD_ALGORITHMS | FEATURE_USERNAME_ANONYMITY);
        assert_eq!(c, "obMatJos2wAAA");
        assert_eq!(c.len(), NONCE_COOKIE_LEN);
        let n = format!("{c}0123");
        assert_eq!(split_nonce_cookie(&n), Some((0xC0_0000, "0123")));
        assert_eq!(split_nonce_cookie("0123456789abcdef"), None);
        assert_eq!(split_nonce_cookie("obMatJos2"), None);
        assert_eq!(split_nonce_cookie("obMatJos2@@@@x"), None);
        // Multi-byte UTF-8 where the feature chars go: no panic.
        assert_eq!(split_nonce_cookie("obMatJos2éé"), None);
    }

    #[test]
    fn algorithms_encoding() {
        let v = encode_algorithms(&[PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5]);
        assert_eq!(v, [0, 2, 0, 0, 0, 1, 0, 0]);
        assert_eq!(parse_algorithms(&v), Some(vec![2, 1]));
        assert_eq!(parse_algorithms(&[]), Some(vec![]));
        assert_eq!(parse_algorithms(&[0, 2, 0]), None);
        // An entry with 2 bytes of parameters padded to 4.
        assert_eq!(parse_algorithms(&[0, 9, 0, 2, 1, 2, 0, 0, 0, 1, 0, 0]), Some(vec![9, 1]));
        assert_eq!(encode_algorithm(PasswordAlgorithm::Sha256), [0, 2, 0, 0]);
        assert_eq!(parse_algorithm(&[0, 2, 0, 0]), Some(2));
        assert_eq!(parse_algorithm(&[0, 2, 0]), None);
        assert_eq!(parse_algorithm(&[0, 2, 0, 4, 1]), None);
    }

    /// RFC 8489 B.1 byte for byte: the USERHASH is SHA-256(username ":" realm)
    /// of the B.1 credentials, PASSWORD-ALGORITHM is SHA-256, the nonce carries
    /// the cookie, and MESSAGE-INTEGRITY-SHA256 verifies with the SHA-256 key
    /// (and not with the MD5 one).
    #[test]
    fn rfc8489_b1_vector() {
        let raw = hex(RFC8489_B1);
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.get(AttrType::USERHASH).unwrap(), &userhash(LT_USERNAME, LT_REALM));
        assert_eq!(parse_algorithm(m.get(AttrType::PASSWORD_ALGORITHM).unwrap()), Some(2));
        let nonce = m.str_attr(AttrType::NONCE).unwrap().unwrap();
        let (_, rest) = split_nonce_cookie(nonce).unwrap();
        assert_eq!(rest, LT_NONCE);
        let key = long_term_key_sha256(LT_USERNAME, LT_REALM, LT_PASSWORD);
        assert!(m.check_integrity_sha256(&key));
        let md5 = crate::stun::integrity::long_term_key(LT_USERNAME, LT_REALM, LT_PASSWORD);
        assert!(!m.check_integrity_sha256(&md5));
    }
}
