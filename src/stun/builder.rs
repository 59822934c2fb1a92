//! Building STUN messages into a caller's buffer.

use std::net::SocketAddr;

use super::message::{MessageType, TransactionId};

/// Writes one STUN message into `out` (appending after whatever `out` already
/// holds, so several messages can share one arena). The header length field is
/// kept current after every attribute, so [`MessageBuilder::finish`] only returns
/// the range.
pub struct MessageBuilder<'b> {
    out: &'b mut Vec<u8>,
    start: usize,
    tid: TransactionId,
}

impl<'b> MessageBuilder<'b> {
    /// Start a message with the magic cookie.
    pub fn new(out: &'b mut Vec<u8>, msg_type: MessageType, tid: TransactionId) -> Self {
        todo!()
    }

    /// Start an RFC 3489 (cookie-less) message; `cookie_word` is the 4 bytes that
    /// stood where the cookie would (first 4 bytes of the client's 16-byte tid).
    pub fn new_rfc3489(out: &'b mut Vec<u8>, msg_type: MessageType, cookie_word: [u8; 4], tid: TransactionId) -> Self {
        todo!()
    }

    /// Append a raw attribute (value padded to 4 bytes with zeros).
    pub fn add_raw(&mut self, attr: u16, value: &[u8]) -> &mut Self {
        todo!()
    }

    /// XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS.
    pub fn add_xor_address(&mut self, attr: u16, addr: SocketAddr) -> &mut Self {
        todo!()
    }

    /// MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, ALTERNATE-SERVER.
    pub fn add_address(&mut self, attr: u16, addr: SocketAddr) -> &mut Self {
        todo!()
    }

    pub fn add_u32(&mut self, attr: u16, v: u32) -> &mut Self {
        todo!()
    }

    pub fn add_u64(&mut self, attr: u16, v: u64) -> &mut Self {
        todo!()
    }

    /// ERROR-CODE with class/number split and the reason phrase.
    pub fn add_error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        todo!()
    }

    /// UNKNOWN-ATTRIBUTES listing the given types.
    pub fn add_unknown_attributes(&mut self, attrs: &[u16]) -> &mut Self {
        todo!()
    }

    /// MESSAGE-INTEGRITY: HMAC-SHA1 with `key` over the message so far with the
    /// length field counting the integrity attribute.
    pub fn add_integrity(&mut self, key: &[u8]) -> &mut Self {
        todo!()
    }

    /// MESSAGE-INTEGRITY-SHA256 (full 32 bytes).
    pub fn add_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        todo!()
    }

    /// FINGERPRINT: CRC-32 of the message so far (length counting it) xor 0x5354554e.
    pub fn add_fingerprint(&mut self) -> &mut Self {
        todo!()
    }

    /// The transaction id this message was started with.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Byte range of the finished message inside `out`.
    pub fn finish(self) -> std::ops::Range<usize> {
        todo!()
    }
}
