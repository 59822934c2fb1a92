//! Building STUN messages into a caller's buffer.

use std::net::{IpAddr, SocketAddr};

use super::attr::AttrType;
use super::integrity::{hmac_sha1, hmac_sha256, FINGERPRINT_XOR};
use super::message::{MessageType, TransactionId, MAGIC_COOKIE};

/// Header size.
const HEADER_LEN: usize = 20;

/// Writes one STUN message into `out` (appending after whatever `out` already
/// holds, so several messages can share one arena). The header length field is
/// kept current after every attribute, so [`MessageBuilder::finish`] only returns
/// the range.
///
/// Values longer than 65535 bytes, or messages whose body would exceed 65535
/// bytes, cannot be represented; the builder never panics on them (debug builds
/// assert) but truncates the value / saturates the length field, so callers
/// must keep within the limits (any UDP datagram does).
pub struct MessageBuilder<'b> {
    out: &'b mut Vec<u8>,
    start: usize,
    tid: TransactionId,
}

impl<'b> MessageBuilder<'b> {
    /// Start a message with the magic cookie.
    pub fn new(out: &'b mut Vec<u8>, msg_type: MessageType, tid: TransactionId) -> Self {
        Self::new_rfc3489(out, msg_type, MAGIC_COOKIE.to_be_bytes(), tid)
    }

    /// Start an RFC 3489 (cookie-less) message; `cookie_word` is the 4 bytes that
    /// stood where the cookie would (first 4 bytes of the client's 16-byte tid).
    pub fn new_rfc3489(out: &'b mut Vec<u8>, msg_type: MessageType, cookie_word: [u8; 4], tid: TransactionId) -> Self {
        let start = out.len();
        out.reserve(128);
        out.extend_from_slice(&msg_type.to_u16().to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&cookie_word);
        out.extend_from_slice(&tid.0);
        MessageBuilder { out, start, tid }
    }

    /// Write the header length field for a body of `body_len` bytes.
    fn set_len(&mut self, body_len: usize) {
        debug_assert!(body_len <= u16::MAX as usize, "STUN message body over 65535 bytes");
        let l = (body_len.min(u16::MAX as usize) as u16).to_be_bytes();
        if let Some(field) = self.out.get_mut(self.start + 2..self.start + 4) {
            field.copy_from_slice(&l);
        }
    }

    /// Current body length (bytes after the header).
    fn body_len(&self) -> usize {
        self.out.len().saturating_sub(self.start + HEADER_LEN)
    }

    /// Append an attribute whose value is the concatenation of `parts`.
    fn add_parts(&mut self, attr: u16, parts: &[&[u8]]) -> &mut Self {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        debug_assert!(total <= u16::MAX as usize, "attribute value over 65535 bytes");
        let len = total.min(u16::MAX as usize);
        self.out.extend_from_slice(&attr.to_be_bytes());
        self.out.extend_from_slice(&(len as u16).to_be_bytes());
        let mut left = len;
        for p in parts {
            let take = p.len().min(left);
            self.out.extend_from_slice(p.get(..take).unwrap_or(p));
            left -= take;
        }
        let pad = (4 - len % 4) % 4;
        self.out.extend_from_slice(&[0u8; 3][..pad]);
        let body = self.body_len();
        self.set_len(body);
        self
    }

    /// Append a raw attribute (value padded to 4 bytes with zeros).
    pub fn add_raw(&mut self, attr: u16, value: &[u8]) -> &mut Self {
        self.add_parts(attr, &[value])
    }

    /// XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS.
    ///
    /// The port is xored with the top 16 bits of the magic cookie, an IPv4
    /// address with the cookie and an IPv6 address with cookie || transaction id.
    pub fn add_xor_address(&mut self, attr: u16, addr: SocketAddr) -> &mut Self {
        let mut mask = [0u8; 16];
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&self.tid.0);
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        match addr.ip() {
            IpAddr::V4(ip) => {
                let mut a = ip.octets();
                a.iter_mut().zip(&mask).for_each(|(b, m)| *b ^= m);
                self.add_parts(attr, &[&[0, 1], &port.to_be_bytes(), &a])
            }
            IpAddr::V6(ip) => {
                let mut a = ip.octets();
                a.iter_mut().zip(&mask).for_each(|(b, m)| *b ^= m);
                self.add_parts(attr, &[&[0, 2], &port.to_be_bytes(), &a])
            }
        }
    }

    /// MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, ALTERNATE-SERVER.
    pub fn add_address(&mut self, attr: u16, addr: SocketAddr) -> &mut Self {
        let port = addr.port().to_be_bytes();
        match addr.ip() {
            IpAddr::V4(ip) => self.add_parts(attr, &[&[0, 1], &port, &ip.octets()]),
            IpAddr::V6(ip) => self.add_parts(attr, &[&[0, 2], &port, &ip.octets()]),
        }
    }

    pub fn add_u32(&mut self, attr: u16, v: u32) -> &mut Self {
        self.add_parts(attr, &[&v.to_be_bytes()])
    }

    pub fn add_u64(&mut self, attr: u16, v: u64) -> &mut Self {
        self.add_parts(attr, &[&v.to_be_bytes()])
    }

    /// ERROR-CODE with class/number split and the reason phrase.
    /// Value: 2 reserved zero bytes, class (code / 100, low 3 bits), number
    /// (code % 100), then the UTF-8 reason.
    pub fn add_error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        let class = ((code / 100) & 0x07) as u8;
        let number = (code % 100) as u8;
        self.add_parts(AttrType::ERROR_CODE, &[&[0, 0, class, number], reason.as_bytes()])
    }

    /// UNKNOWN-ATTRIBUTES listing the given types (zero-padded when odd, per
    /// RFC 5389; RFC 3489's "repeat one" rule is not used).
    pub fn add_unknown_attributes(&mut self, attrs: &[u16]) -> &mut Self {
        // At most 16383 types fit; more is a caller bug and gets truncated.
        // Rare (420 responses only), so the small allocation is fine.
        let attrs = attrs.get(..16383).unwrap_or(attrs);
        let v: Vec<u8> = attrs.iter().flat_map(|t| t.to_be_bytes()).collect();
        self.add_parts(AttrType::UNKNOWN_ATTRIBUTES, &[&v])
    }

    /// MESSAGE-INTEGRITY: HMAC-SHA1 with `key` over the message so far with the
    /// length field counting the integrity attribute.
    pub fn add_integrity(&mut self, key: &[u8]) -> &mut Self {
        let body = self.body_len();
        self.set_len(body + 24);
        let mac = hmac_sha1(key, &[self.out.get(self.start..).unwrap_or(&[])]);
        self.add_parts(AttrType::MESSAGE_INTEGRITY, &[&mac])
    }

    /// MESSAGE-INTEGRITY-SHA256 (full 32 bytes).
    pub fn add_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        let body = self.body_len();
        self.set_len(body + 36);
        let mac = hmac_sha256(key, &[self.out.get(self.start..).unwrap_or(&[])]);
        self.add_parts(AttrType::MESSAGE_INTEGRITY_SHA256, &[&mac])
    }

    /// FINGERPRINT: CRC-32 of the message so far (length counting it) xor 0x5354554e.
    pub fn add_fingerprint(&mut self) -> &mut Self {
        let body = self.body_len();
        self.set_len(body + 8);
        let crc = crc32fast::hash(self.out.get(self.start..).unwrap_or(&[])) ^ FINGERPRINT_XOR;
        self.add_parts(AttrType::FINGERPRINT, &[&crc.to_be_bytes()])
    }

    /// The transaction id this message was started with.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Byte range of the finished message inside `out`.
    pub fn finish(self) -> std::ops::Range<usize> {
        self.start..self.out.len()
    }
}
