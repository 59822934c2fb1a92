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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::integrity::{long_term_key, long_term_key_sha256};
    use crate::stun::message::{Class, Message, Method};
    use crate::stun::test_vectors::*;

    const TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    /// The RFC 5769 vectors 2.1-2.3 pad one attribute with 0x20 bytes instead of
    /// zeros. The builder always writes zeros; to reproduce the vectors byte for
    /// byte (the HMAC and CRC cover padding) the test overwrites the `n` padding
    /// bytes just written before the next attribute is added.
    fn space_pad_last(b: &mut MessageBuilder<'_>, n: usize) {
        let len = b.out.len();
        b.out[len - n..].fill(0x20);
    }

    #[test]
    fn rfc5769_sample_request_reencodes() {
        let expected = hex(RFC5769_REQUEST);
        let mut out = Vec::new();
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Method::BINDING, Class::Request), TransactionId(TID));
        b.add_raw(AttrType::SOFTWARE, b"STUN test client");
        b.add_u32(AttrType::PRIORITY, 0x6e0001ff);
        b.add_u64(AttrType::ICE_CONTROLLED, 0x932ff9b151263b36);
        b.add_raw(AttrType::USERNAME, b"evtj:h6vY");
        space_pad_last(&mut b, 3);
        b.add_integrity(SHORT_TERM_PASSWORD.as_bytes());
        b.add_fingerprint();
        let r = b.finish();
        assert_eq!(&out[r], &expected[..]);
    }

    #[test]
    fn rfc5769_responses_reencode() {
        for (vector, addr) in [
            (RFC5769_IPV4_RESPONSE, "192.0.2.1:32853"),
            (RFC5769_IPV6_RESPONSE, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
        ] {
            let expected = hex(vector);
            let mut out = Vec::new();
            let t = MessageType::new(Method::BINDING, Class::Success);
            let mut b = MessageBuilder::new(&mut out, t, TransactionId(TID));
            b.add_raw(AttrType::SOFTWARE, b"test vector");
            space_pad_last(&mut b, 1);
            b.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, addr.parse().expect("literal"));
            b.add_integrity(SHORT_TERM_PASSWORD.as_bytes());
            b.add_fingerprint();
            let r = b.finish();
            assert_eq!(&out[r], &expected[..], "{addr}");
        }
    }

    #[test]
    fn rfc5769_long_term_request_reencodes() {
        // Zero padding in this vector, so the builder output is exact as is.
        let expected = hex(RFC5769_LONG_TERM_REQUEST);
        let mut out = vec![1, 2, 3]; // existing content is kept
        let tid = TransactionId([0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e]);
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Method::BINDING, Class::Request), tid);
        b.add_raw(AttrType::USERNAME, LT_USERNAME.as_bytes())
            .add_raw(AttrType::NONCE, LT_NONCE.as_bytes())
            .add_raw(AttrType::REALM, LT_REALM.as_bytes())
            .add_integrity(&long_term_key(LT_USERNAME, LT_REALM, LT_PASSWORD));
        let r = b.finish();
        assert_eq!(r, 3..3 + expected.len());
        assert_eq!(&out[..3], &[1, 2, 3]);
        assert_eq!(&out[r], &expected[..]);
    }

    #[test]
    fn rfc8489_b1_reencodes() {
        let expected = hex(RFC8489_B1);
        let mut out = Vec::new();
        let tid = TransactionId([0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e]);
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Method::BINDING, Class::Request), tid);
        let userhash = hex("4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704");
        b.add_raw(AttrType::USERHASH, &userhash)
            .add_raw(AttrType::NONCE, b"obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
            .add_raw(AttrType::REALM, LT_REALM.as_bytes())
            .add_u32(AttrType::PASSWORD_ALGORITHM, 0x0002_0000)
            .add_integrity_sha256(&long_term_key_sha256(LT_USERNAME, LT_REALM, LT_PASSWORD));
        let r = b.finish();
        assert_eq!(&out[r], &expected[..]);
    }

    #[test]
    fn several_messages_share_a_buffer() {
        let mut out = Vec::new();
        let t = MessageType::new(Method::ALLOCATE, Class::Error);
        let r1 = {
            let mut b = MessageBuilder::new(&mut out, t, TransactionId([1; 12]));
            b.add_error_code(437, "Allocation Mismatch").add_fingerprint();
            b.finish()
        };
        let r2 = {
            let mut b = MessageBuilder::new(&mut out, t, TransactionId([2; 12]));
            b.add_error_code(420, "Unknown Attribute").add_unknown_attributes(&[0x7f01, 0x0031, 0x0032]);
            b.add_integrity(b"key");
            b.finish()
        };
        assert_eq!(r1.end, r2.start);
        assert_eq!(r2.end, out.len());
        let m1 = Message::parse(&out[r1]).expect("m1");
        assert_eq!(m1.error_code(), Some(Ok((437, "Allocation Mismatch"))));
        assert_eq!(m1.check_fingerprint(), Some(true));
        let m2 = Message::parse(&out[r2.clone()]).expect("m2");
        assert_eq!(m2.error_code(), Some(Ok((420, "Unknown Attribute"))));
        assert_eq!(m2.get(AttrType::UNKNOWN_ATTRIBUTES), Some(&[0x7f, 0x01, 0x00, 0x31, 0x00, 0x32][..]));
        assert!(m2.check_integrity(b"key"));
        // ERROR-CODE wire format: 2 zero bytes, class, number, reason.
        let ec = m2.get(AttrType::ERROR_CODE).expect("present");
        assert_eq!(&ec[..4], &[0, 0, 4, 20]);
        // Padding bytes are zero (UNKNOWN-ATTRIBUTES is 6 bytes, padded to 8).
        let raw = &out[r2];
        let ua = raw.windows(4).position(|w| w == [0x00, 0x0a, 0x00, 0x06]).expect("UA header");
        assert_eq!(&raw[ua + 10..ua + 12], &[0, 0]);
    }

    #[test]
    fn header_length_kept_current() {
        let mut out = Vec::new();
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Method::SEND, Class::Indication), TransactionId([9; 12]));
        b.add_raw(AttrType::DATA, b"x");
        assert_eq!(&b.out[2..4], &[0, 8]);
        b.add_u32(AttrType::LIFETIME, 600);
        assert_eq!(&b.out[2..4], &[0, 16]);
        assert_eq!(b.transaction_id(), TransactionId([9; 12]));
        let r = b.finish();
        assert!(Message::is_stun(&out[r]));
    }

    #[test]
    fn rfc3489_builder() {
        let mut out = Vec::new();
        let t = MessageType::new(Method::BINDING, Class::Success);
        let mut b = MessageBuilder::new_rfc3489(&mut out, t, [1, 2, 3, 4], TransactionId([5; 12]));
        b.add_address(AttrType::MAPPED_ADDRESS, "10.0.0.1:3478".parse().expect("literal"));
        b.add_address(AttrType::SOURCE_ADDRESS, "[::1]:9".parse().expect("literal"));
        let r = b.finish();
        let m = Message::parse_rfc3489(&out[r]).expect("parses");
        assert!(!m.has_cookie());
        assert_eq!(m.address(AttrType::MAPPED_ADDRESS), Some(Ok("10.0.0.1:3478".parse().expect("literal"))));
        assert_eq!(m.address(AttrType::SOURCE_ADDRESS), Some(Ok("[::1]:9".parse().expect("literal"))));
    }

    #[test]
    fn sha256_integrity_roundtrip_and_truncation() {
        let mut out = Vec::new();
        let t = MessageType::new(Method::ALLOCATE, Class::Request);
        let mut b = MessageBuilder::new(&mut out, t, TransactionId([7; 12]));
        b.add_u32(AttrType::REQUESTED_TRANSPORT, 17 << 24)
            .add_integrity(b"k1")
            .add_integrity_sha256(b"k1")
            .add_fingerprint();
        let r = b.finish();
        let raw = out[r].to_vec();
        let m = Message::parse(&raw).expect("parses");
        assert!(m.check_integrity(b"k1"));
        assert!(m.check_integrity_sha256(b"k1"));
        assert!(!m.check_integrity_sha256(b"k2"));
        assert_eq!(m.check_fingerprint(), Some(true));
        assert_eq!(m.requested_transport(), Some(Ok(17)));

        // Truncated (16-byte) MESSAGE-INTEGRITY-SHA256, RFC 8489 14.6.
        let mut out = Vec::new();
        let mut b = MessageBuilder::new(&mut out, t, TransactionId([7; 12]));
        b.add_u32(AttrType::LIFETIME, 0);
        let body = b.body_len();
        b.set_len(body + 20);
        let mac = hmac_sha256(b"k1", &[&b.out[..]]);
        b.add_raw(AttrType::MESSAGE_INTEGRITY_SHA256, &mac[..16]);
        let r = b.finish();
        let m = Message::parse(&out[r.clone()]).expect("parses");
        assert!(m.check_integrity_sha256(b"k1"));
        assert!(!m.check_integrity_sha256(b"k2"));
        // Flipping a MAC byte fails.
        let mut bad = out[r].to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        assert!(!Message::parse(&bad).expect("parses").check_integrity_sha256(b"k1"));
    }
}
