//! SASLprep (RFC 4013) of usernames, realms and passwords.

use std::borrow::Cow;

/// SASLprep `s`; on a prohibited character or a bidi violation return `s`
/// unchanged (coturn also falls back to the raw string).
///
/// Pure-ASCII printable strings are returned borrowed without calling into the
/// stringprep tables: SASLprep maps none of them (the only ASCII characters it
/// touches are controls, which make it fail, and then the raw string is used
/// anyway), so the fast path gives the same result.
pub fn saslprep(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Cow::Borrowed(s);
    }
    match stringprep::saslprep(s) {
        Ok(prepped) => prepped,
        Err(_) => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5769_password() {
        assert_eq!(saslprep("The\u{00AD}M\u{00AA}tr\u{2168}"), "TheMatrIX");
    }

    #[test]
    fn ascii_unchanged() {
        assert!(matches!(saslprep("user:1 ~"), Cow::Borrowed("user:1 ~")));
    }

    #[test]
    fn rfc4013_examples() {
        // RFC 4013 section 3 examples.
        assert_eq!(saslprep("I\u{00AD}X"), "IX");
        assert_eq!(saslprep("\u{00AA}"), "a");
        assert_eq!(saslprep("\u{2168}"), "IX");
        // Non-ASCII space maps to ASCII space.
        assert_eq!(saslprep("a\u{00A0}b"), "a b");
    }

    #[test]
    fn failure_falls_back_to_raw() {
        // U+0007 is a prohibited control character; bidi violation: RandALCat
        // followed by LCat.
        assert_eq!(saslprep("a\u{0007}b"), "a\u{0007}b");
        assert_eq!(saslprep("\u{0627}1"), "\u{0627}1");
    }

    #[test]
    fn japanese_username_unaffected() {
        let u = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
        assert_eq!(saslprep(u), u);
    }
}
