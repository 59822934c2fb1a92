//! STUN message header and attribute walk over a borrowed datagram.

use std::net::SocketAddr;

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
        todo!()
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
        todo!()
    }
    /// Decode a wire value; `None` when either of the top two bits is set.
    pub fn from_u16(v: u16) -> Option<Self> {
        todo!()
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
    /// An attribute follows FINGERPRINT, or something other than FINGERPRINT follows
    /// MESSAGE-INTEGRITY(-SHA256).
    #[error("attribute after integrity/fingerprint")]
    AttributeOrder,
}

/// A parsed STUN message borrowing its datagram.
///
/// The attribute walk is done once at parse time; accessors look attributes up
/// in the recorded list. Unknown attributes are kept and reachable through
/// [`Message::attributes`].
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    msg_type: MessageType,
    tid: TransactionId,
    /// true when the message carries the RFC 5389 magic cookie.
    has_cookie: bool,
    /// (type, value offset in raw, value length) of each attribute in order.
    attrs: Vec<(u16, u16, u16)>,
}

impl<'a> Message<'a> {
    /// Parse an RFC 5389 message (the magic cookie is required).
    pub fn parse(raw: &'a [u8]) -> Result<Message<'a>, ParseError> {
        todo!()
    }

    /// Parse, accepting also cookie-less RFC 3489 messages (`has_cookie() == false`).
    pub fn parse_rfc3489(raw: &'a [u8]) -> Result<Message<'a>, ParseError> {
        todo!()
    }

    /// Quick check that `raw` looks like a STUN message with the magic cookie
    /// (first two bits zero, cookie at bytes 4..8, length consistent).
    pub fn is_stun(raw: &[u8]) -> bool {
        todo!()
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

    /// Every attribute as (type, value) in message order, unknown ones included.
    pub fn attributes(&self) -> impl Iterator<Item = (u16, &'a [u8])> + '_ {
        self.attrs.iter().map(move |&(t, off, len)| (t, &self.raw[off as usize..off as usize + len as usize]))
    }

    /// The value of the first attribute of this type.
    pub fn get(&self, attr: u16) -> Option<&'a [u8]> {
        self.attributes().find(|(t, _)| *t == attr).map(|(_, v)| v)
    }

    /// Comprehension-required attribute types (< 0x8000) that this codebase does
    /// not know (see [`crate::stun::attr::is_known`]), for 420 UNKNOWN-ATTRIBUTES.
    pub fn unknown_comprehension_required(&self) -> Vec<u16> {
        todo!()
    }

    /// Decode an XOR-encoded address attribute (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
    /// XOR-RELAYED-ADDRESS). `None` if absent; `Some(Err)` if malformed.
    pub fn xor_address(&self, attr: u16) -> Option<Result<SocketAddr, ParseError>> {
        todo!()
    }

    /// Every XOR-PEER-ADDRESS (CreatePermission may carry several).
    pub fn xor_addresses(&self, attr: u16) -> Vec<Result<SocketAddr, ParseError>> {
        todo!()
    }

    /// Decode a plain address attribute (MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS,
    /// ALTERNATE-SERVER, ...).
    pub fn address(&self, attr: u16) -> Option<Result<SocketAddr, ParseError>> {
        todo!()
    }

    /// A 32-bit attribute (LIFETIME, CHANNEL-NUMBER's raw value, CONNECTION-ID, ...).
    /// `Some(Err)` when the value is not 4 bytes.
    pub fn u32_attr(&self, attr: u16) -> Option<Result<u32, ParseError>> {
        todo!()
    }

    /// A UTF-8 text attribute (USERNAME, REALM, NONCE, SOFTWARE, ORIGIN).
    /// `Some(Err)` when not valid UTF-8.
    pub fn str_attr(&self, attr: u16) -> Option<Result<&'a str, ParseError>> {
        todo!()
    }

    /// ERROR-CODE as (code, reason).
    pub fn error_code(&self) -> Option<Result<(u16, &'a str), ParseError>> {
        todo!()
    }

    /// CHANNEL-NUMBER's channel (the top 16 bits of the value).
    pub fn channel_number(&self) -> Option<Result<u16, ParseError>> {
        todo!()
    }

    /// REQUESTED-TRANSPORT protocol number (17 = UDP, 6 = TCP).
    pub fn requested_transport(&self) -> Option<Result<u8, ParseError>> {
        todo!()
    }

    /// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY value (1 = IPv4, 2 = IPv6).
    pub fn address_family(&self, attr: u16) -> Option<Result<u8, ParseError>> {
        todo!()
    }

    /// EVEN-PORT's R bit.
    pub fn even_port(&self) -> Option<Result<bool, ParseError>> {
        todo!()
    }

    /// RESERVATION-TOKEN (8 bytes).
    pub fn reservation_token(&self) -> Option<Result<u64, ParseError>> {
        todo!()
    }

    /// CHANGE-REQUEST flags as (change_ip, change_port).
    pub fn change_request(&self) -> Option<Result<(bool, bool), ParseError>> {
        todo!()
    }

    /// Verify MESSAGE-INTEGRITY (HMAC-SHA1) with `key`: the HMAC covers the message
    /// up to the attribute with the header length adjusted to end after it
    /// (RFC 5389 15.4). `false` when absent or wrong. Constant-time compare.
    pub fn check_integrity(&self, key: &[u8]) -> bool {
        todo!()
    }

    /// Verify MESSAGE-INTEGRITY-SHA256 (RFC 8489 14.6, 32-byte or truncated HMAC).
    pub fn check_integrity_sha256(&self, key: &[u8]) -> bool {
        todo!()
    }

    /// `None` when there is no FINGERPRINT; else whether it matches.
    pub fn check_fingerprint(&self) -> Option<bool> {
        todo!()
    }
}
