//! RFC 8489 long-term credential security features, decided without state:
//! which PASSWORD-ALGORITHMS a challenge offers, the nonce that proves the
//! offer (the nonce cookie plus a MAC over the offered list), and the
//! negotiation and downgrade checks of RFC 8489 9.2.4.
//!
//! The server stays stateless before authentication: the offered list is not
//! remembered but bound into the nonce's MAC (see [`NonceGen::issue_tagged`]),
//! so a PASSWORD-ALGORITHMS echoed by the client is compared with the list
//! the nonce proves was sent, and an attacker who rewrites the list in the
//! 401 (a downgrade) is caught.

use std::net::SocketAddr;

use super::nonce::{NonceCheck, NonceGen};
use crate::stun::rfc8489::{
    encode_algorithms, nonce_cookie, parse_algorithm, split_nonce_cookie, PasswordAlgorithm, FEATURE_PASSWORD_ALGORITHMS,
    FEATURE_USERNAME_ANONYMITY,
};
use crate::stun::{AttrType, Message};

/// The PASSWORD-ALGORITHMS list one challenge offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The default: SHA-256 first (preferred), then MD5.
    Both,
    /// To a user whose only key is an MD5 one (`--user name:0x..`, a 32-hex
    /// `hmackey` row) after it asked for SHA-256.
    Md5Only,
    /// To a user whose only key is a SHA-256 one (a 64-hex `hmackey` row).
    Sha256Only,
}

impl Offer {
    pub const ALL: [Offer; 3] = [Offer::Both, Offer::Md5Only, Offer::Sha256Only];

    pub fn list(self) -> &'static [PasswordAlgorithm] {
        match self {
            Offer::Both => &[PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5],
            Offer::Md5Only => &[PasswordAlgorithm::Md5],
            Offer::Sha256Only => &[PasswordAlgorithm::Sha256],
        }
    }

    /// The offer that leaves a user with only `alg` keys.
    pub fn only(alg: PasswordAlgorithm) -> Offer {
        match alg {
            PasswordAlgorithm::Md5 => Offer::Md5Only,
            PasswordAlgorithm::Sha256 => Offer::Sha256Only,
        }
    }

    /// What the nonce MAC covers besides address and time.
    fn tag(self) -> &'static [u8] {
        match self {
            Offer::Both => b"|rfc8489|0002,0001",
            Offer::Md5Only => b"|rfc8489|0001",
            Offer::Sha256Only => b"|rfc8489|0002",
        }
    }
}

/// The feature bits this server announces: password algorithms and username
/// anonymity (USERHASH).
pub const FEATURES: u32 = FEATURE_PASSWORD_ALGORITHMS | FEATURE_USERNAME_ANONYMITY;

/// A nonce carrying the cookie and proving `offer` for `client`:
/// "obMatJos2" + 4 chars of features + the 24-hex stateless nonce.
pub fn issue_nonce(gen: &NonceGen, client: SocketAddr, now_unix: u64, offer: Offer) -> String {
    let mut n = nonce_cookie(FEATURES);
    n.push_str(&gen.issue_tagged(client, now_unix, offer.tag()));
    n
}

/// Check a received nonce: a cookie nonce proves which list was offered
/// (`Some`), a plain one is a legacy (coturn-format) nonce (`None`).
pub fn check_nonce(gen: &NonceGen, nonce: &str, client: SocketAddr, now_unix: u64) -> (NonceCheck, Option<Offer>) {
    match split_nonce_cookie(nonce) {
        Some((features, rest)) if features == FEATURES => {
            for offer in Offer::ALL {
                match gen.check_tagged(rest, client, now_unix, offer.tag()) {
                    NonceCheck::Invalid => continue,
                    c => return (c, Some(offer)),
                }
            }
            (NonceCheck::Invalid, None)
        }
        Some(_) => (NonceCheck::Invalid, None),
        None => (gen.check(nonce, client, now_unix), None),
    }
}

/// RFC 8489 9.2.4: the password algorithm of a request. Neither
/// PASSWORD-ALGORITHM nor PASSWORD-ALGORITHMS: MD5 (every RFC 5389 client).
/// Otherwise both must be present, PASSWORD-ALGORITHMS must equal what the
/// nonce proves was offered, and PASSWORD-ALGORITHM must be one of them;
/// anything else is a 400 (the reason is for the log).
pub fn negotiate(msg: &Message, offer: Option<Offer>) -> Result<PasswordAlgorithm, &'static str> {
    let (alg, algs) = (msg.get(AttrType::PASSWORD_ALGORITHM), msg.get(AttrType::PASSWORD_ALGORITHMS));
    match (alg, algs) {
        (None, None) => Ok(PasswordAlgorithm::Md5),
        (Some(_), None) | (None, Some(_)) => Err("PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS must come together"),
        (Some(alg), Some(algs)) => {
            let Some(offer) = offer else { return Err("PASSWORD-ALGORITHMS without an RFC 8489 nonce") };
            if algs != encode_algorithms(offer.list()).as_slice() {
                return Err("PASSWORD-ALGORITHMS differs from the list sent (downgrade?)");
            }
            let chosen = parse_algorithm(alg).and_then(PasswordAlgorithm::from_number);
            match chosen {
                Some(a) if offer.list().contains(&a) => Ok(a),
                _ => Err("PASSWORD-ALGORITHM is not one of PASSWORD-ALGORITHMS"),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn c() -> SocketAddr {
        "192.0.2.1:4000".parse().unwrap()
    }

    #[test]
    fn nonce_proves_offer() {
        let g = NonceGen::new(Some("k"), 600);
        for offer in Offer::ALL {
            let n = issue_nonce(&g, c(), T0, offer);
            assert!(n.starts_with("obMatJos2wAAA"));
            assert_eq!(n.len(), 13 + 24);
            assert_eq!(check_nonce(&g, &n, c(), T0), (NonceCheck::Valid, Some(offer)));
            assert_eq!(check_nonce(&g, &n, c(), T0 + 600), (NonceCheck::Stale, Some(offer)));
        }
        // Legacy nonces still check; another feature set on our MAC does not.
        let plain = g.issue(c(), T0);
        assert_eq!(check_nonce(&g, &plain, c(), T0), (NonceCheck::Valid, None));
        let n = issue_nonce(&g, c(), T0, Offer::Both);
        let forged = format!("obMatJos2AAAA{}", &n[13..]);
        assert_eq!(check_nonce(&g, &forged, c(), T0).0, NonceCheck::Invalid);
        assert_eq!(check_nonce(&g, &n[..30], c(), T0).0, NonceCheck::Invalid);
    }
}
