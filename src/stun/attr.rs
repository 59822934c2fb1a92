//! Attribute type numbers, error codes and their reason phrases.

/// Attribute type numbers used by STUN and TURN (and the RFCs this server speaks).
pub struct AttrType;

impl AttrType {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const RESPONSE_ADDRESS: u16 = 0x0002;
    pub const CHANGE_REQUEST: u16 = 0x0003;
    pub const SOURCE_ADDRESS: u16 = 0x0004;
    pub const CHANGED_ADDRESS: u16 = 0x0005;
    pub const USERNAME: u16 = 0x0006;
    pub const PASSWORD: u16 = 0x0007;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const REFLECTED_FROM: u16 = 0x000B;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const BANDWIDTH: u16 = 0x0010;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const ACCESS_TOKEN: u16 = 0x001B;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const PADDING: u16 = 0x0026;
    pub const RESPONSE_PORT: u16 = 0x0027;
    pub const CONNECTION_ID: u16 = 0x002A;
    pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
    pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
    /// ADDITIONAL-ADDRESS-FAMILY at its pre-RFC draft codepoint, which coturn
    /// and its `turnutils_uclient -Z` still use.
    pub const ADDITIONAL_ADDRESS_FAMILY_DRAFT: u16 = 0x8032;
    /// ADDRESS-ERROR-CODE at coturn's draft codepoint (answers to draft requests).
    pub const ADDRESS_ERROR_CODE_DRAFT: u16 = 0x8033;
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    pub const ICMP: u16 = 0x8004;
    pub const SOFTWARE: u16 = 0x8022;
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    pub const TRANSACTION_TRANSMIT_COUNTER: u16 = 0x8025;
    pub const CACHE_TIMEOUT: u16 = 0x8027;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
    pub const RESPONSE_ORIGIN: u16 = 0x802B;
    pub const OTHER_ADDRESS: u16 = 0x802C;
    pub const ECN_CHECK: u16 = 0x802D;
    pub const THIRD_PARTY_AUTHORIZATION: u16 = 0x802E;
    pub const ORIGIN: u16 = 0x802F;
    pub const MOBILITY_TICKET: u16 = 0x8030;
}

/// Whether this attribute type is one the server understands (so a
/// comprehension-required one that is not gets 420). Every constant of
/// [`AttrType`] counts as known: the codec can at least carry each of them, and
/// whether a request may use one is the protocol core's decision, not 420's.
pub fn is_known(attr: u16) -> bool {
    matches!(
        attr,
        AttrType::MAPPED_ADDRESS
            | AttrType::RESPONSE_ADDRESS
            | AttrType::CHANGE_REQUEST
            | AttrType::SOURCE_ADDRESS
            | AttrType::CHANGED_ADDRESS
            | AttrType::USERNAME
            | AttrType::PASSWORD
            | AttrType::MESSAGE_INTEGRITY
            | AttrType::ERROR_CODE
            | AttrType::UNKNOWN_ATTRIBUTES
            | AttrType::REFLECTED_FROM
            | AttrType::CHANNEL_NUMBER
            | AttrType::LIFETIME
            | AttrType::BANDWIDTH
            | AttrType::XOR_PEER_ADDRESS
            | AttrType::DATA
            | AttrType::REALM
            | AttrType::NONCE
            | AttrType::XOR_RELAYED_ADDRESS
            | AttrType::REQUESTED_ADDRESS_FAMILY
            | AttrType::EVEN_PORT
            | AttrType::REQUESTED_TRANSPORT
            | AttrType::DONT_FRAGMENT
            | AttrType::ACCESS_TOKEN
            | AttrType::MESSAGE_INTEGRITY_SHA256
            | AttrType::PASSWORD_ALGORITHM
            | AttrType::USERHASH
            | AttrType::XOR_MAPPED_ADDRESS
            | AttrType::RESERVATION_TOKEN
            | AttrType::PRIORITY
            | AttrType::USE_CANDIDATE
            | AttrType::PADDING
            | AttrType::RESPONSE_PORT
            | AttrType::CONNECTION_ID
            | AttrType::ADDITIONAL_ADDRESS_FAMILY
            | AttrType::ADDRESS_ERROR_CODE
            | AttrType::ADDITIONAL_ADDRESS_FAMILY_DRAFT
            | AttrType::ADDRESS_ERROR_CODE_DRAFT
            | AttrType::PASSWORD_ALGORITHMS
            | AttrType::ALTERNATE_DOMAIN
            | AttrType::ICMP
            | AttrType::SOFTWARE
            | AttrType::ALTERNATE_SERVER
            | AttrType::TRANSACTION_TRANSMIT_COUNTER
            | AttrType::CACHE_TIMEOUT
            | AttrType::FINGERPRINT
            | AttrType::ICE_CONTROLLED
            | AttrType::ICE_CONTROLLING
            | AttrType::RESPONSE_ORIGIN
            | AttrType::OTHER_ADDRESS
            | AttrType::ECN_CHECK
            | AttrType::THIRD_PARTY_AUTHORIZATION
            | AttrType::ORIGIN
            | AttrType::MOBILITY_TICKET
    )
}

/// STUN error codes the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const TRY_ALTERNATE: ErrorCode = ErrorCode(300);
    pub const BAD_REQUEST: ErrorCode = ErrorCode(400);
    pub const UNAUTHORIZED: ErrorCode = ErrorCode(401);
    pub const FORBIDDEN: ErrorCode = ErrorCode(403);
    pub const NOT_FOUND: ErrorCode = ErrorCode(404);
    pub const METHOD_NOT_ALLOWED: ErrorCode = ErrorCode(405);
    pub const UNKNOWN_ATTRIBUTE: ErrorCode = ErrorCode(420);
    pub const ALLOCATION_MISMATCH: ErrorCode = ErrorCode(437);
    pub const STALE_NONCE: ErrorCode = ErrorCode(438);
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: ErrorCode = ErrorCode(440);
    pub const WRONG_CREDENTIALS: ErrorCode = ErrorCode(441);
    pub const UNSUPPORTED_TRANSPORT: ErrorCode = ErrorCode(442);
    pub const PEER_ADDRESS_FAMILY_MISMATCH: ErrorCode = ErrorCode(443);
    pub const CONNECTION_ALREADY_EXISTS: ErrorCode = ErrorCode(446);
    pub const CONNECTION_TIMEOUT: ErrorCode = ErrorCode(447);
    pub const ALLOCATION_QUOTA_REACHED: ErrorCode = ErrorCode(486);
    pub const ROLE_CONFLICT: ErrorCode = ErrorCode(487);
    pub const SERVER_ERROR: ErrorCode = ErrorCode(500);
    pub const INSUFFICIENT_CAPACITY: ErrorCode = ErrorCode(508);

    /// The reason phrase coturn sends for this code (e.g. 401 "Unauthorized",
    /// 437 "Allocation Mismatch", 438 "Stale Nonce", 508 "Insufficient Capacity").
    pub fn reason(self) -> &'static str {
        match self.0 {
            300 => "Try Alternate",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            420 => "Unknown Attribute",
            437 => "Allocation Mismatch",
            438 => "Stale Nonce",
            440 => "Address Family not Supported",
            441 => "Wrong Credentials",
            442 => "Unsupported Transport Protocol",
            443 => "Peer Address Family Mismatch",
            446 => "Connection Already Exists",
            447 => "Connection Timeout or Failure",
            486 => "Allocation Quota Reached",
            487 => "Role Conflict",
            500 => "Server Error",
            508 => "Insufficient Capacity",
            _ => "Unknown error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_attributes() {
        for t in [
            AttrType::MAPPED_ADDRESS,
            AttrType::XOR_PEER_ADDRESS,
            AttrType::MESSAGE_INTEGRITY_SHA256,
            AttrType::CONNECTION_ID,
            AttrType::ADDITIONAL_ADDRESS_FAMILY,
            AttrType::MOBILITY_TICKET,
            AttrType::FINGERPRINT,
        ] {
            assert!(is_known(t), "{t:#x}");
        }
        for t in [0x0000, 0x0011, 0x0021, 0x0028, 0x7FFF, 0x8031, 0xFFFF] {
            assert!(!is_known(t), "{t:#x}");
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(ErrorCode::UNAUTHORIZED.reason(), "Unauthorized");
        assert_eq!(ErrorCode::ALLOCATION_MISMATCH.reason(), "Allocation Mismatch");
        assert_eq!(ErrorCode::STALE_NONCE.reason(), "Stale Nonce");
        assert_eq!(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED.reason(), "Address Family not Supported");
        assert_eq!(ErrorCode::CONNECTION_TIMEOUT.reason(), "Connection Timeout or Failure");
        assert_eq!(ErrorCode::INSUFFICIENT_CAPACITY.reason(), "Insufficient Capacity");
        assert_eq!(ErrorCode(499).reason(), "Unknown error");
    }
}
