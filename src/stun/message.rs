//! STUN message header and attribute walk over a borrowed datagram.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::attr::{is_known, AttrType};
use super::integrity::{ct_eq, hmac_sha1, hmac_sha256, FINGERPRINT_XOR};

/// The magic cookie of RFC 5389.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// A STUN method (12 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Method = Method(0x001);
    pub const ALLOCATE: Method = Method(0x003);
    pub const REFRESH: Method = Method(0x004);
    pub const SEND: Method = Method(0x006);
    pub const DATA: Method = Method(0x007);
    pub const CREATE_PERMISSION: Method = Method(0x008);
    pub const CHANNEL_BIND: Method = Method(0x009);
    pub const CONNECT: Method = Method(0x00A);
    pub const CONNECTION_BIND: Method = Method(0x00B);
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);

    /// coturn's upper-case name for logs (`ALLOCATE`, `CHANNEL_BIND`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Method::BINDING => "BINDING",
            Method::ALLOCATE => "ALLOCATE",
            Method::REFRESH => "REFRESH",
            Method::SEND => "SEND",
            Method::DATA => "DATA",
            Method::CREATE_PERMISSION => "CREATE_PERMISSION",
            Method::CHANNEL_BIND => "CHANNEL_BIND",
            Method::CONNECT => "CONNECT",
            Method::CONNECTION_BIND => "CONNECTION_BIND",
            Method::CONNECTION_ATTEMPT => "CONNECTION_ATTEMPT",
            _ => "UNKNOWN",
        }
    }
}

/// The class bits of a message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// Method + class, as encoded in the first 16 bits of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    pub method: Method,
    pub class: Class,
}

impl MessageType {
    pub const fn new(method: Method, class: Class) -> Self {
        MessageType { method, class }
    }
    /// Encode to the 14-bit wire value (top two bits zero).
    pub fn to_u16(self) -> u16 {
        // The 12 method bits M11..M0 are split around the class bits C1 (bit 8)
        // and C0 (bit 4): M0-M3 at bits 0-3, M4-M6 at bits 5-7, M7-M11 at bits 9-13.
        let m = self.method.0 & 0x0FFF;
        let (c0, c1) = match self.class {
            Class::Request => (0, 0),
            Class::Indication => (1, 0),
            Class::Success => (0, 1),
            Class::Error => (1, 1),
        };
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | (c0 << 4) | (c1 << 8)
    }
    /// Decode a wire value; `None` when either of the top two bits is set.
    pub fn from_u16(v: u16) -> Option<Self> {
        if v & 0xC000 != 0 {
            return None;
        }
        let method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2);
        let class = match ((v >> 4) & 1, (v >> 8) & 1) {
            (0, 0) => Class::Request,
            (1, 0) => Class::Indication,
            (0, _) => Class::Success,
            _ => Class::Error,
        };
        Some(MessageType { method: Method(method), class })
    }
}

/// The 96-bit transaction id (RFC 3489 messages: the last 12 of the 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

/// Why a datagram is not a well-formed STUN message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than the 20-byte header or than its length field says.
    #[error("truncated message")]
    Truncated,
    /// The first two bits are not zero.
    #[error("not a STUN message")]
    NotStun,
    /// The length field is not a multiple of 4 or disagrees with the datagram size.
    #[error("bad length")]
    BadLength,
    /// The magic cookie is missing (and RFC 3489 parsing was not asked for).
    #[error("no magic cookie")]
    NoCookie,
    /// An attribute runs past the end of the message.
    #[error("attribute overflows message")]
    BadAttribute,
    /// An attribute follows FINGERPRINT. (Other attributes after
    /// MESSAGE-INTEGRITY(-SHA256) are not an error: they are ignored, i.e. not
    /// recorded, per RFC 5389 15.4; see [`Message`].)
    #[error("attribute after integrity/fingerprint")]
    AttributeOrder,
}

/// A parsed STUN message borrowing its datagram.
///
/// The attribute walk is done once at parse time; accessors look attributes up
/// in the recorded list. Unknown attributes are kept and reachable through
/// [`Message::attributes`].
///
/// Attribute ordering policy (RFC 5389 15.4 / RFC 8489 14.5-14.7):
/// - anything after FINGERPRINT makes the message invalid ([`ParseError::AttributeOrder`]);
/// - after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are
///   recorded; after MESSAGE-INTEGRITY-SHA256 only FINGERPRINT is. Other attributes
///   that follow an integrity attribute are still walked (they must be well formed)
///   but are *not recorded*, so no accessor can ever return data that the
///   integrity check did not cover (the RFC says such attributes MUST be ignored).
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    msg_type: MessageType,
    tid: TransactionId,
    /// true when the message carries the RFC 5389 magic cookie.
    has_cookie: bool,
    /// Every recorded attribute in order (see [`AttrList`]).
    attrs: AttrList,
}

/// One recorded attribute: its type and where its value lies in the datagram.
///
/// The offset is a `u32` because a stream-framed message may be up to
/// 20 + 65535 bytes long, so value offsets do not always fit in 16 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AttrRef {
    typ: u16,
    len: u16,
    off: u32,
}

/// How many attributes are stored inline before spilling to the heap. Typical
/// TURN requests carry 4-8 attributes, so the hot path never allocates.
const INLINE_ATTRS: usize = 12;

/// A small-vector of attribute references: the first [`INLINE_ATTRS`] live in
/// the struct, the rest in a `Vec` that is only allocated when needed.
/// `Vec::new()` does not allocate, so parsing ordinary messages is heap-free.
#[derive(Debug, Clone)]
struct AttrList {
    inline: [AttrRef; INLINE_ATTRS],
    inline_len: u8,
    spill: Vec<AttrRef>,
}

impl AttrList {
    fn new() -> Self {
        AttrList { inline: [AttrRef::default(); INLINE_ATTRS], inline_len: 0, spill: Vec::new() }
    }

    fn push(&mut self, a: AttrRef) {
        let n = self.inline_len as usize;
        if let Some(slot) = self.inline.get_mut(n) {
            *slot = a;
            self.inline_len += 1;
        } else {
            self.spill.push(a);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &AttrRef> + '_ {
        let n = (self.inline_len as usize).min(INLINE_ATTRS);
        self.inline[..n].iter().chain(self.spill.iter())
    }
}

/// Size of the STUN header.
const HEADER_LEN: usize = 20;

/// Round up to the next multiple of 4 (attribute padding).
#[inline]
fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

#[inline]
fn be16(raw: &[u8], at: usize) -> Option<u16> {
    match raw.get(at..at + 2) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

#[inline]
fn be32(raw: &[u8], at: usize) -> Option<u32> {
    match raw.get(at..at + 4) {
        Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

impl<'a> Message<'a> {
    /// Parse an RFC 5389 message (the magic cookie is required).
    pub fn parse(raw: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Self::parse_inner(raw, true)
    }

    /// Parse, accepting also cookie-less RFC 3489 messages (`has_cookie() == false`).
    pub fn parse_rfc3489(raw: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Self::parse_inner(raw, false)
    }

    /// Shared parser. Length policy: a datagram shorter than `20 + length`
    /// is [`ParseError::Truncated`]; one longer (trailing bytes) is
    /// [`ParseError::BadLength`], as is a length that is not a multiple of 4.
    fn parse_inner(raw: &'a [u8], require_cookie: bool) -> Result<Message<'a>, ParseError> {
        if raw.len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let type_word = be16(raw, 0).ok_or(ParseError::Truncated)?;
        let msg_type = MessageType::from_u16(type_word).ok_or(ParseError::NotStun)?;
        let length = be16(raw, 2).ok_or(ParseError::Truncated)? as usize;
        if length % 4 != 0 {
            return Err(ParseError::BadLength);
        }
        let end = HEADER_LEN + length;
        if raw.len() < end {
            return Err(ParseError::Truncated);
        }
        if raw.len() > end {
            return Err(ParseError::BadLength);
        }
        let has_cookie = be32(raw, 4) == Some(MAGIC_COOKIE);
        if require_cookie && !has_cookie {
            return Err(ParseError::NoCookie);
        }
        let mut tid = [0u8; 12];
        tid.copy_from_slice(raw.get(8..HEADER_LEN).ok_or(ParseError::Truncated)?);

        let mut attrs = AttrList::new();
        let mut off = HEADER_LEN;
        let mut seen_mi = false;
        let mut seen_mi256 = false;
        let mut seen_fp = false;
        while off < end {
            if seen_fp {
                return Err(ParseError::AttributeOrder);
            }
            let typ = be16(raw, off).ok_or(ParseError::BadAttribute)?;
            let len = be16(raw, off + 2).ok_or(ParseError::BadAttribute)?;
            let value_off = off + 4;
            let value_end = value_off + len as usize;
            if value_end > end {
                return Err(ParseError::BadAttribute);
            }
            let record = match typ {
                AttrType::FINGERPRINT => {
                    seen_fp = true;
                    true
                }
                AttrType::MESSAGE_INTEGRITY_SHA256 if !seen_mi256 => {
                    seen_mi256 = true;
                    true
                }
                AttrType::MESSAGE_INTEGRITY if !seen_mi && !seen_mi256 => {
                    seen_mi = true;
                    true
                }
                // Ignored per RFC 5389 15.4: not covered by the integrity check.
                _ => !(seen_mi || seen_mi256),
            };
            if record {
                // value_off < end <= 65555, so it fits in a u32.
                attrs.push(AttrRef { typ, len, off: value_off as u32 });
            }
            // `end` and `off` are both multiples of 4 from the start, so the
            // padded end never passes `end` once `value_end <= end`.
            off = value_off + pad4(len as usize);
        }
        Ok(Message { raw, msg_type, tid: TransactionId(tid), has_cookie, attrs })
    }

    /// Quick check that `raw` looks like a STUN message with the magic cookie
    /// (first two bits zero, cookie at bytes 4..8, length consistent).
    pub fn is_stun(raw: &[u8]) -> bool {
        match (raw.first(), be16(raw, 2), be32(raw, 4)) {
            (Some(b0), Some(len), Some(cookie)) => {
                b0 & 0xC0 == 0
                    && cookie == MAGIC_COOKIE
                    && len % 4 == 0
                    && raw.len() == HEADER_LEN + len as usize
            }
            _ => false,
        }
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    pub fn msg_type(&self) -> MessageType {
        self.msg_type
    }
    pub fn method(&self) -> Method {
        self.msg_type.method
    }
    pub fn class(&self) -> Class {
        self.msg_type.class
    }
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }
    pub fn has_cookie(&self) -> bool {
        self.has_cookie
    }

    /// The value slice of a recorded attribute (offsets were validated at parse
    /// time; `get` keeps this panic-free regardless).
    #[inline]
    fn value_of(&self, a: &AttrRef) -> &'a [u8] {
        let start = a.off as usize;
        self.raw.get(start..start + a.len as usize).unwrap_or(&[])
    }

    /// The first recorded attribute of this type.
    fn find(&self, attr: u16) -> Option<&AttrRef> {
        self.attrs.iter().find(|a| a.typ == attr)
    }

    /// Every attribute as (type, value) in message order, unknown ones included.
    pub fn attributes(&self) -> impl Iterator<Item = (u16, &'a [u8])> + '_ {
        self.attrs.iter().map(move |a| (a.typ, self.value_of(a)))
    }

    /// The value of the first attribute of this type.
    pub fn get(&self, attr: u16) -> Option<&'a [u8]> {
        self.find(attr).map(|a| self.value_of(a))
    }

    /// Comprehension-required attribute types (< 0x8000) that this codebase does
    /// not know (see [`crate::stun::attr::is_known`]), for 420 UNKNOWN-ATTRIBUTES.
    /// Each type is listed once, in order of first appearance.
    pub fn unknown_comprehension_required(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for a in self.attrs.iter() {
            if a.typ < 0x8000 && !is_known(a.typ) && !out.contains(&a.typ) {
                out.push(a.typ);
            }
        }
        out
    }

    /// Decode an XOR-encoded address attribute (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
    /// XOR-RELAYED-ADDRESS). `None` if absent; `Some(Err)` if malformed.
    pub fn xor_address(&self, attr: u16) -> Option<Result<SocketAddr, ParseError>> {
        self.get(attr).map(|v| decode_address(v, Some(&self.tid)))
    }

    /// Every XOR-PEER-ADDRESS (CreatePermission may carry several).
    pub fn xor_addresses(&self, attr: u16) -> Vec<Result<SocketAddr, ParseError>> {
        self.attrs
            .iter()
            .filter(|a| a.typ == attr)
            .map(|a| decode_address(self.value_of(a), Some(&self.tid)))
            .collect()
    }

    /// Decode a plain address attribute (MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS,
    /// ALTERNATE-SERVER, ...).
    pub fn address(&self, attr: u16) -> Option<Result<SocketAddr, ParseError>> {
        self.get(attr).map(|v| decode_address(v, None))
    }

    /// A 32-bit attribute (LIFETIME, CHANNEL-NUMBER's raw value, CONNECTION-ID, ...).
    /// `Some(Err)` when the value is not 4 bytes.
    pub fn u32_attr(&self, attr: u16) -> Option<Result<u32, ParseError>> {
        self.get(attr).map(value_u32)
    }

    /// A UTF-8 text attribute (USERNAME, REALM, NONCE, SOFTWARE, ORIGIN).
    /// `Some(Err)` when not valid UTF-8.
    pub fn str_attr(&self, attr: u16) -> Option<Result<&'a str, ParseError>> {
        self.get(attr).map(|v| std::str::from_utf8(v).map_err(|_| ParseError::BadAttribute))
    }

    /// ERROR-CODE as (code, reason). Malformed when shorter than 4 bytes, when the
    /// class is outside 3..=6, the number above 99, or the reason not UTF-8.
    pub fn error_code(&self) -> Option<Result<(u16, &'a str), ParseError>> {
        self.get(AttrType::ERROR_CODE).map(|v| match v {
            [_, _, class, number, reason @ ..] => {
                let class = class & 0x07;
                if !(3..=6).contains(&class) || *number > 99 {
                    return Err(ParseError::BadAttribute);
                }
                let reason = std::str::from_utf8(reason).map_err(|_| ParseError::BadAttribute)?;
                Ok((class as u16 * 100 + *number as u16, reason))
            }
            _ => Err(ParseError::BadAttribute),
        })
    }

    /// CHANNEL-NUMBER's channel (the top 16 bits of the value).
    pub fn channel_number(&self) -> Option<Result<u16, ParseError>> {
        self.u32_attr(AttrType::CHANNEL_NUMBER).map(|r| r.map(|v| (v >> 16) as u16))
    }

    /// REQUESTED-TRANSPORT protocol number (17 = UDP, 6 = TCP).
    pub fn requested_transport(&self) -> Option<Result<u8, ParseError>> {
        self.u32_attr(AttrType::REQUESTED_TRANSPORT).map(|r| r.map(|v| (v >> 24) as u8))
    }

    /// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY value (1 = IPv4, 2 = IPv6).
    pub fn address_family(&self, attr: u16) -> Option<Result<u8, ParseError>> {
        self.u32_attr(attr).map(|r| r.map(|v| (v >> 24) as u8))
    }

    /// EVEN-PORT's R bit. The RFC value is 1 byte; up to 4 is tolerated since
    /// some clients send a padded 4-byte value.
    pub fn even_port(&self) -> Option<Result<bool, ParseError>> {
        self.get(AttrType::EVEN_PORT).map(|v| match v {
            [first, ..] if v.len() <= 4 => Ok(first & 0x80 != 0),
            _ => Err(ParseError::BadAttribute),
        })
    }

    /// RESERVATION-TOKEN (8 bytes).
    pub fn reservation_token(&self) -> Option<Result<u64, ParseError>> {
        self.get(AttrType::RESERVATION_TOKEN).map(|v| {
            <[u8; 8]>::try_from(v).map(u64::from_be_bytes).map_err(|_| ParseError::BadAttribute)
        })
    }

    /// CHANGE-REQUEST flags as (change_ip, change_port).
    pub fn change_request(&self) -> Option<Result<(bool, bool), ParseError>> {
        self.u32_attr(AttrType::CHANGE_REQUEST).map(|r| r.map(|v| (v & 0x4 != 0, v & 0x2 != 0)))
    }

    /// Header (first 4 bytes) with the length field replaced by `len`, for
    /// integrity and fingerprint computations.
    fn header_with_len(&self, len: usize) -> [u8; 4] {
        let (t0, t1) = match self.raw {
            [a, b, ..] => (*a, *b),
            _ => (0, 0),
        };
        let l = (len.min(u16::MAX as usize) as u16).to_be_bytes();
        [t0, t1, l[0], l[1]]
    }

    /// The bytes between the length field and the header of the attribute
    /// whose value starts at `value_off` (cookie, tid, earlier attributes).
    fn body_before(&self, value_off: usize) -> &'a [u8] {
        self.raw.get(4..value_off.saturating_sub(4)).unwrap_or(&[])
    }

    /// Verify MESSAGE-INTEGRITY (HMAC-SHA1) with `key`: the HMAC covers the message
    /// up to the attribute with the header length adjusted to end after it
    /// (RFC 5389 15.4). `false` when absent or wrong. Constant-time compare.
    pub fn check_integrity(&self, key: &[u8]) -> bool {
        let Some(a) = self.find(AttrType::MESSAGE_INTEGRITY) else { return false };
        if a.len != 20 {
            return false;
        }
        let value_off = a.off as usize;
        // Length as if MI were the last attribute: from after the header to after MI.
        let hdr = self.header_with_len(value_off + 20 - HEADER_LEN);
        let mac = hmac_sha1(key, &[&hdr, self.body_before(value_off)]);
        ct_eq(&mac, self.value_of(a))
    }

    /// Verify MESSAGE-INTEGRITY-SHA256 (RFC 8489 14.6, 32-byte or truncated HMAC).
    /// The value must be 16..=32 bytes and a multiple of 4.
    pub fn check_integrity_sha256(&self, key: &[u8]) -> bool {
        let Some(a) = self.find(AttrType::MESSAGE_INTEGRITY_SHA256) else { return false };
        let len = a.len as usize;
        if !(16..=32).contains(&len) || len % 4 != 0 {
            return false;
        }
        let value_off = a.off as usize;
        let hdr = self.header_with_len(value_off + len - HEADER_LEN);
        let mac = hmac_sha256(key, &[&hdr, self.body_before(value_off)]);
        match mac.get(..len) {
            Some(prefix) => ct_eq(prefix, self.value_of(a)),
            None => false,
        }
    }

    /// Whether the request carries an integrity attribute of either kind.
    pub fn has_integrity(&self) -> bool {
        self.find(AttrType::MESSAGE_INTEGRITY).is_some() || self.find(AttrType::MESSAGE_INTEGRITY_SHA256).is_some()
    }

    /// Verify the integrity the sender chose (RFC 8489 9.2.4): MESSAGE-INTEGRITY-SHA256
    /// when present, else MESSAGE-INTEGRITY.
    pub fn check_any_integrity(&self, key: &[u8]) -> bool {
        if self.find(AttrType::MESSAGE_INTEGRITY_SHA256).is_some() {
            self.check_integrity_sha256(key)
        } else {
            self.check_integrity(key)
        }
    }

    /// `None` when there is no FINGERPRINT; else whether it matches.
    pub fn check_fingerprint(&self) -> Option<bool> {
        let a = self.find(AttrType::FINGERPRINT)?;
        if a.len != 4 {
            return Some(false);
        }
        let value_off = a.off as usize;
        let hdr = self.header_with_len(value_off + 4 - HEADER_LEN);
        let mut h = crc32fast::Hasher::new();
        h.update(&hdr);
        h.update(self.body_before(value_off));
        let expected = h.finalize() ^ FINGERPRINT_XOR;
        Some(be32(self.value_of(a), 0) == Some(expected))
    }
}

/// The 4-byte big-endian value of a 32-bit attribute.
fn value_u32(v: &[u8]) -> Result<u32, ParseError> {
    <[u8; 4]>::try_from(v).map(u32::from_be_bytes).map_err(|_| ParseError::BadAttribute)
}

/// Decode a (XOR-)address value: reserved byte, family (1 = IPv4, 2 = IPv6),
/// port, address. With `xor = Some(tid)` the port is xored with the top of the
/// magic cookie and the address with cookie (IPv4) or cookie || tid (IPv6).
/// Classic RFC 3489 messages have no cookie; the constant cookie is used anyway,
/// as XOR attributes only exist from RFC 5389 on.
fn decode_address(v: &[u8], xor: Option<&TransactionId>) -> Result<SocketAddr, ParseError> {
    let mut mask = [0u8; 16];
    if let Some(tid) = xor {
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&tid.0);
    }
    match v {
        [_, 0x01, p0, p1, a @ ..] if a.len() == 4 => {
            let port = u16::from_be_bytes([p0 ^ mask[0], p1 ^ mask[1]]);
            let mut ip = [0u8; 4];
            for ((o, b), m) in ip.iter_mut().zip(a).zip(&mask) {
                *o = b ^ m;
            }
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        [_, 0x02, p0, p1, a @ ..] if a.len() == 16 => {
            let port = u16::from_be_bytes([p0 ^ mask[0], p1 ^ mask[1]]);
            let mut ip = [0u8; 16];
            for ((o, b), m) in ip.iter_mut().zip(a).zip(&mask) {
                *o = b ^ m;
            }
            Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => Err(ParseError::BadAttribute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::integrity::{long_term_key, long_term_key_sha256, short_term_key};
    use crate::stun::test_vectors::*;
    use sha2::{Digest, Sha256};

    const TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    fn flip(raw: &[u8], at: usize) -> Vec<u8> {
        let mut v = raw.to_vec();
        v[at] ^= 0x01;
        v
    }

    #[test]
    fn message_type_encoding() {
        let cases = [
            (Method::BINDING, Class::Request, 0x0001),
            (Method::BINDING, Class::Success, 0x0101),
            (Method::BINDING, Class::Error, 0x0111),
            (Method::SEND, Class::Indication, 0x0016),
            (Method::DATA, Class::Indication, 0x0017),
            (Method::ALLOCATE, Class::Request, 0x0003),
            (Method::ALLOCATE, Class::Success, 0x0103),
            (Method::ALLOCATE, Class::Error, 0x0113),
            (Method::REFRESH, Class::Request, 0x0004),
            (Method::CHANNEL_BIND, Class::Request, 0x0009),
            (Method::CONNECTION_ATTEMPT, Class::Indication, 0x001C),
            (Method(0xFFF), Class::Error, 0x3FFF),
            (Method(0x080), Class::Request, 0x0200),
        ];
        for (m, c, wire) in cases {
            let t = MessageType::new(m, c);
            assert_eq!(t.to_u16(), wire, "{m:?} {c:?}");
            assert_eq!(MessageType::from_u16(wire), Some(t));
        }
        for v in 0..=0x3FFFu16 {
            let t = MessageType::from_u16(v).expect("top bits clear");
            assert_eq!(t.to_u16(), v);
        }
        assert_eq!(MessageType::from_u16(0x4001), None);
        assert_eq!(MessageType::from_u16(0x8001), None);
    }

    #[test]
    fn method_names() {
        assert_eq!(Method::ALLOCATE.name(), "ALLOCATE");
        assert_eq!(Method::CHANNEL_BIND.name(), "CHANNEL_BIND");
        assert_eq!(Method::CONNECTION_ATTEMPT.name(), "CONNECTION_ATTEMPT");
        assert_eq!(Method(0x0FF).name(), "UNKNOWN");
    }

    #[test]
    fn rfc5769_sample_request() {
        let raw = hex(RFC5769_REQUEST);
        assert_eq!(raw.len(), 108);
        assert!(Message::is_stun(&raw));
        let m = Message::parse(&raw).expect("parses");
        assert_eq!(m.method(), Method::BINDING);
        assert_eq!(m.class(), Class::Request);
        assert_eq!(m.transaction_id(), TransactionId(TID));
        assert!(m.has_cookie());
        assert_eq!(m.str_attr(AttrType::SOFTWARE), Some(Ok("STUN test client")));
        assert_eq!(m.str_attr(AttrType::USERNAME), Some(Ok("evtj:h6vY")));
        assert_eq!(m.u32_attr(AttrType::PRIORITY), Some(Ok(0x6e0001ff)));
        assert_eq!(m.get(AttrType::ICE_CONTROLLED), Some(&hex("93 2f f9 b1 51 26 3b 36")[..]));
        let types: Vec<u16> = m.attributes().map(|(t, _)| t).collect();
        assert_eq!(
            types,
            [
                AttrType::SOFTWARE,
                AttrType::PRIORITY,
                AttrType::ICE_CONTROLLED,
                AttrType::USERNAME,
                AttrType::MESSAGE_INTEGRITY,
                AttrType::FINGERPRINT
            ]
        );
        assert!(m.unknown_comprehension_required().is_empty());
        let key = short_term_key(SHORT_TERM_PASSWORD);
        assert!(m.check_integrity(&key));
        assert!(!m.check_integrity(b"VOkJxbRl1RmTxUk/WvJxBT"));
        assert!(!m.check_integrity_sha256(&key));
        assert_eq!(m.check_fingerprint(), Some(true));
    }

    #[test]
    fn rfc5769_ipv4_response() {
        let raw = hex(RFC5769_IPV4_RESPONSE);
        let m = Message::parse(&raw).expect("parses");
        assert_eq!(m.msg_type(), MessageType::new(Method::BINDING, Class::Success));
        assert_eq!(m.str_attr(AttrType::SOFTWARE), Some(Ok("test vector")));
        let addr: SocketAddr = "192.0.2.1:32853".parse().expect("literal");
        assert_eq!(m.xor_address(AttrType::XOR_MAPPED_ADDRESS), Some(Ok(addr)));
        assert_eq!(m.xor_addresses(AttrType::XOR_MAPPED_ADDRESS), vec![Ok(addr)]);
        assert!(m.check_integrity(SHORT_TERM_PASSWORD.as_bytes()));
        assert_eq!(m.check_fingerprint(), Some(true));
    }

    #[test]
    fn rfc5769_ipv6_response() {
        let raw = hex(RFC5769_IPV6_RESPONSE);
        let m = Message::parse(&raw).expect("parses");
        assert_eq!(m.str_attr(AttrType::SOFTWARE), Some(Ok("test vector")));
        let addr: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().expect("literal");
        assert_eq!(m.xor_address(AttrType::XOR_MAPPED_ADDRESS), Some(Ok(addr)));
        assert!(m.check_integrity(SHORT_TERM_PASSWORD.as_bytes()));
        assert_eq!(m.check_fingerprint(), Some(true));
    }

    #[test]
    fn rfc5769_long_term_request() {
        let raw = hex(RFC5769_LONG_TERM_REQUEST);
        let m = Message::parse(&raw).expect("parses");
        assert_eq!(m.transaction_id().0, hex("78 ad 34 33 c6 ad 72 c0 29 da 41 2e")[..]);
        assert_eq!(m.str_attr(AttrType::USERNAME), Some(Ok(LT_USERNAME)));
        assert_eq!(m.str_attr(AttrType::NONCE), Some(Ok(LT_NONCE)));
        assert_eq!(m.str_attr(AttrType::REALM), Some(Ok(LT_REALM)));
        let key = long_term_key(LT_USERNAME, LT_REALM, LT_PASSWORD);
        assert!(m.check_integrity(&key));
        assert!(!m.check_integrity(&long_term_key(LT_USERNAME, LT_REALM, "TheMatrix")));
        assert_eq!(m.check_fingerprint(), None);
    }

    #[test]
    fn rfc8489_b1_sha256_userhash() {
        let raw = hex(RFC8489_B1);
        let m = Message::parse(&raw).expect("parses");
        // USERHASH = SHA-256(username ":" realm).
        let userhash: [u8; 32] = Sha256::digest(format!("{LT_USERNAME}:{LT_REALM}").as_bytes()).into();
        assert_eq!(m.get(AttrType::USERHASH), Some(&userhash[..]));
        assert_eq!(m.str_attr(AttrType::NONCE), Some(Ok("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")));
        assert_eq!(m.get(AttrType::PASSWORD_ALGORITHM), Some(&[0, 2, 0, 0][..]));
        let key = long_term_key_sha256(LT_USERNAME, LT_REALM, LT_PASSWORD);
        assert!(m.check_integrity_sha256(&key));
        assert!(!m.check_integrity_sha256(&long_term_key(LT_USERNAME, LT_REALM, LT_PASSWORD)));
        assert!(!m.check_integrity(&key));
    }

    #[test]
    fn negatives_flipped_bytes() {
        let key = SHORT_TERM_PASSWORD.as_bytes();
        for vector in [RFC5769_REQUEST, RFC5769_IPV4_RESPONSE, RFC5769_IPV6_RESPONSE] {
            let raw = hex(vector);
            let mi_end = raw.len() - 8;
            // Any flipped byte before FINGERPRINT (header length/type excluded,
            // they change the parse) breaks the fingerprint; before MI, integrity too.
            for at in 4..mi_end {
                let bad = flip(&raw, at);
                let Ok(m) = Message::parse(&bad) else { continue };
                assert_eq!(m.check_fingerprint(), Some(false), "byte {at}");
                assert!(!m.check_integrity(key), "byte {at}");
            }
            // A flipped FINGERPRINT value byte fails only the fingerprint.
            let bad = flip(&raw, raw.len() - 1);
            let m = Message::parse(&bad).expect("still parses");
            assert_eq!(m.check_fingerprint(), Some(false));
            assert!(m.check_integrity(key));
            assert!(!m.check_integrity(b"wrong key"));
        }
    }

    #[test]
    fn length_and_header_errors() {
        let raw = hex(RFC5769_IPV4_RESPONSE);
        assert_eq!(Message::parse(&raw[..19]).err(), Some(ParseError::Truncated));
        assert_eq!(Message::parse(&raw[..raw.len() - 4]).err(), Some(ParseError::Truncated));
        let mut longer = raw.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Message::parse(&longer).err(), Some(ParseError::BadLength));
        assert!(!Message::is_stun(&longer));
        let mut odd = raw.clone();
        odd[3] = 0x3d;
        assert_eq!(Message::parse(&odd).err(), Some(ParseError::BadLength));
        let mut notstun = raw.clone();
        notstun[0] |= 0x80;
        assert_eq!(Message::parse(&notstun).err(), Some(ParseError::NotStun));
        let mut nocookie = raw.clone();
        nocookie[4] = 0;
        assert_eq!(Message::parse(&nocookie).err(), Some(ParseError::NoCookie));
        let m = Message::parse_rfc3489(&nocookie).expect("classic STUN accepted");
        assert!(!m.has_cookie());
        assert_eq!(m.transaction_id(), TransactionId(TID));
        assert!(Message::parse_rfc3489(&raw).expect("parses").has_cookie());
        // Attribute overflowing the message.
        let bad_attr = hex("00 01 00 08 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae 00 06 00 05 61 62 63 64");
        assert_eq!(Message::parse(&bad_attr).err(), Some(ParseError::BadAttribute));
        // Truncated attribute header (2 bytes of body can't happen: body is a
        // multiple of 4; a 4-byte header announcing 1 byte with no room).
        let bad_attr = hex("00 01 00 04 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae 00 06 00 01");
        assert_eq!(Message::parse(&bad_attr).err(), Some(ParseError::BadAttribute));
    }

    #[test]
    fn classic_rfc3489_message() {
        // Binding request with a 16-byte transaction id and CHANGE-REQUEST (ip+port).
        let raw = hex("00 01 00 08 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 00 03 00 04 00 00 00 06");
        assert!(!Message::is_stun(&raw));
        assert_eq!(Message::parse(&raw).err(), Some(ParseError::NoCookie));
        let m = Message::parse_rfc3489(&raw).expect("classic");
        assert!(!m.has_cookie());
        assert_eq!(m.transaction_id().0, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(m.change_request(), Some(Ok((true, true))));
    }

    #[test]
    fn attribute_order_policy() {
        let hdr = "00 01 00 00 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae";
        let mut raw = hex(hdr);
        let push = |raw: &mut Vec<u8>, s: &str| {
            raw.extend(hex(s));
            let len = (raw.len() - 20) as u16;
            raw[2..4].copy_from_slice(&len.to_be_bytes());
        };
        push(&mut raw, "00 06 00 04 75 73 65 72"); // USERNAME "user"
        push(&mut raw, "00 08 00 14 00000000 00000000 00000000 00000000 00000000"); // MI
        push(&mut raw, "00 14 00 04 72 65 61 6c"); // REALM after MI: ignored
        push(&mut raw, "00 1c 00 20 0000000000000000000000000000000000000000000000000000000000000000");
        push(&mut raw, "00 06 00 04 65 76 69 6c"); // USERNAME after MI-SHA256: ignored
        push(&mut raw, "80 28 00 04 00 00 00 00"); // FINGERPRINT
        let m = Message::parse(&raw).expect("parses");
        let types: Vec<u16> = m.attributes().map(|(t, _)| t).collect();
        assert_eq!(
            types,
            [
                AttrType::USERNAME,
                AttrType::MESSAGE_INTEGRITY,
                AttrType::MESSAGE_INTEGRITY_SHA256,
                AttrType::FINGERPRINT
            ]
        );
        assert_eq!(m.get(AttrType::REALM), None);
        assert_eq!(m.str_attr(AttrType::USERNAME), Some(Ok("user")));
        push(&mut raw, "00 14 00 00"); // anything after FINGERPRINT
        assert_eq!(Message::parse(&raw).err(), Some(ParseError::AttributeOrder));
    }

    #[test]
    fn accessors_on_malformed_values() {
        let raw = hex(
            "00 01 00 38 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             00 0d 00 03 00 00 01 00
             00 12 00 08 00 03 00 00 00 00 00 00
             00 09 00 04 00 00 02 63
             00 06 00 02 ff fe 00 00
             00 0c 00 04 40 01 00 00
             00 19 00 04 11 00 00 00
             7f ff 00 00",
        );
        let m = Message::parse(&raw).expect("parses");
        assert_eq!(m.u32_attr(AttrType::LIFETIME), Some(Err(ParseError::BadAttribute)));
        assert_eq!(m.xor_address(AttrType::XOR_PEER_ADDRESS), Some(Err(ParseError::BadAttribute)));
        assert_eq!(m.error_code(), Some(Err(ParseError::BadAttribute)));
        assert_eq!(m.str_attr(AttrType::USERNAME), Some(Err(ParseError::BadAttribute)));
        assert_eq!(m.channel_number(), Some(Ok(0x4001)));
        assert_eq!(m.requested_transport(), Some(Ok(17)));
        assert_eq!(m.unknown_comprehension_required(), vec![0x7fff]);
        assert_eq!(m.even_port(), None);
        assert_eq!(m.reservation_token(), None);
        assert_eq!(m.address(AttrType::MAPPED_ADDRESS), None);
        assert!(!m.check_integrity(b"k"));
        assert_eq!(m.check_fingerprint(), None);
    }

    #[test]
    fn many_attributes_spill() {
        // More attributes than the inline capacity.
        let mut raw = hex("00 01 00 00 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae");
        for i in 0..40u16 {
            raw.extend_from_slice(&[0x7f, 0x00, 0x00, 0x02]);
            raw.extend_from_slice(&i.to_be_bytes());
            raw.extend_from_slice(&[0, 0]);
        }
        let len = (raw.len() - 20) as u16;
        raw[2..4].copy_from_slice(&len.to_be_bytes());
        let m = Message::parse(&raw).expect("parses");
        let vals: Vec<u16> = m.attributes().map(|(_, v)| u16::from_be_bytes([v[0], v[1]])).collect();
        assert_eq!(vals, (0..40).collect::<Vec<u16>>());
        assert_eq!(m.unknown_comprehension_required(), vec![0x7f00]);
    }
}
