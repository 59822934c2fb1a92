//! SASLprep (RFC 4013) of usernames, realms and passwords.

use std::borrow::Cow;

/// SASLprep `s`; on a prohibited character or a bidi violation return `s`
/// unchanged (coturn also falls back to the raw string).
pub fn saslprep(s: &str) -> Cow<'_, str> {
    todo!()
}
