//! Error answers and the reason behind them.
//!
//! Every error answer carries its standard reason phrase ("Bad Request")
//! unless `--include-reason-string` asks for the detailed one ("Malformed
//! LIFETIME"): detail helps whoever debugs a client, and tells a scanner a
//! little about the server, so it is opt-in as in coturn. The log line of a
//! refused request names the detailed reason either way.

use crate::stun::ErrorCode;

/// An error code and why the server chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    /// The detailed reason phrase (the standard one when nothing better).
    pub why: &'static str,
}

impl From<ErrorCode> for Refusal {
    fn from(code: ErrorCode) -> Refusal {
        Refusal { code, why: code.reason() }
    }
}

impl ErrorCode {
    /// This code, for the reason `why`.
    pub(crate) const fn because(self, why: &'static str) -> Refusal {
        Refusal { code: self, why }
    }
}

impl Refusal {
    /// The reason phrase sent: detailed with `--include-reason-string`.
    pub(crate) fn phrase(self, include_reason_string: bool) -> &'static str {
        if include_reason_string {
            self.why
        } else {
            self.code.reason()
        }
    }
}

/// A peer refused by the peer policy or the relay's family.
pub(crate) fn peer_refused(code: ErrorCode) -> Refusal {
    match code {
        ErrorCode::FORBIDDEN => code.because("Forbidden IP"),
        ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH => code.because("Peer Address Family Mismatch: no relay of the peer's family"),
        _ => code.into(),
    }
}

/// A relay endpoint that could not be opened.
pub(crate) fn relay_refused(code: ErrorCode) -> Refusal {
    match code {
        ErrorCode::INSUFFICIENT_CAPACITY => code.because("Cannot create a relay endpoint: no free relay port"),
        ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED => code.because("Relay address family not supported"),
        _ => code.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_phrase_unless_asked() {
        let r = ErrorCode::BAD_REQUEST.because("Malformed LIFETIME");
        assert_eq!(r.phrase(false), "Bad Request");
        assert_eq!(r.phrase(true), "Malformed LIFETIME");
        let plain = Refusal::from(ErrorCode::STALE_NONCE);
        assert_eq!((plain.phrase(false), plain.phrase(true)), ("Stale Nonce", "Stale Nonce"));
    }
}
