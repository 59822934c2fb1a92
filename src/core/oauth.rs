//! RFC 7635 third-party authorization (`--oauth`): the ACCESS-TOKEN format and
//! its decryption with an `oauth_key` row, in coturn's layout so tokens made
//! by coturn's tools (`turnutils_oauth`, `turnutils_uclient -J`) and by
//! authorization servers written for coturn work unchanged.
//!
//! Token (RFC 7635 appendix B, AEAD variant as coturn implements it):
//! `nonce length (16 bits) | nonce | AEAD ciphertext | tag (16 bytes)`; the
//! plaintext is `mac_key length (16 bits) | mac_key | timestamp (64 bits:
//! 48 bits of unix seconds, 16 bits of 1/65536 s) | lifetime (32 bits, s)`;
//! the associated data is the server name (`--server-name`, default the
//! realm). The AES key is the key row's `ikm_key` (base64), its first 16
//! (A128GCM) or 32 (A256GCM) bytes. The token's `mac_key` signs the STUN
//! messages (MESSAGE-INTEGRITY with USERNAME = kid).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use base64::Engine as _;

use crate::stun::integrity::MacKey;

/// AS-RS encryption algorithm of a key row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsRsAlg {
    A128Gcm,
    A256Gcm,
}

impl AsRsAlg {
    /// coturn's names; an empty `as_rs_alg` column means A256GCM (coturn's default).
    pub fn parse(s: &str) -> Option<AsRsAlg> {
        match s.trim() {
            "A256GCM" | "" => Some(AsRsAlg::A256Gcm),
            "A128GCM" => Some(AsRsAlg::A128Gcm),
            _ => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            AsRsAlg::A128Gcm => 16,
            AsRsAlg::A256Gcm => 32,
        }
    }
}

/// One `oauth_key` row as stored (all text, like the database gives it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OauthKeyRow {
    pub kid: String,
    /// base64 of the input key material.
    pub ikm_key: String,
    /// Unix seconds the key becomes valid (0: always).
    pub timestamp: u64,
    /// Seconds the key stays valid after `timestamp` (0: unlimited).
    pub lifetime: u32,
    /// `A256GCM` or `A128GCM`.
    pub as_rs_alg: String,
    /// Realm of the users of this key ('' = default realm).
    pub realm: String,
}

/// A key row made usable.
#[derive(Clone, PartialEq, Eq)]
pub struct OauthKey {
    pub kid: String,
    alg: AsRsAlg,
    key: Vec<u8>,
    timestamp: u64,
    lifetime: u32,
    pub realm: String,
}

impl std::fmt::Debug for OauthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthKey").field("kid", &self.kid).field("alg", &self.alg).field("realm", &self.realm).finish()
    }
}

impl OauthKey {
    /// Error text is for the log (a bad row is the operator's to fix).
    pub fn from_row(row: &OauthKeyRow) -> Result<OauthKey, String> {
        let alg = AsRsAlg::parse(&row.as_rs_alg)
            .ok_or_else(|| format!("oauth key <{}>: unsupported as_rs_alg '{}'", row.kid, row.as_rs_alg))?;
        let ikm = base64::engine::general_purpose::STANDARD
            .decode(row.ikm_key.trim())
            .map_err(|e| format!("oauth key <{}>: ikm_key is not base64: {e}", row.kid))?;
        let key = ikm
            .get(..alg.key_len())
            .ok_or_else(|| format!("oauth key <{}>: ikm_key shorter than {} bytes", row.kid, alg.key_len()))?
            .to_vec();
        Ok(OauthKey { kid: row.kid.clone(), alg, key, timestamp: row.timestamp, lifetime: row.lifetime, realm: row.realm.clone() })
    }

    /// Whether the key itself is valid at `now_unix`.
    pub fn valid_at(&self, now_unix: u64) -> bool {
        now_unix >= self.timestamp && (self.lifetime == 0 || now_unix < self.timestamp + u64::from(self.lifetime))
    }

    /// Decrypt and parse an ACCESS-TOKEN value.
    pub fn decrypt(&self, server_name: &str, token: &[u8]) -> Result<Token, TokenError> {
        let nlen = usize::from(u16::from_be_bytes([*token.first().ok_or(TokenError::Malformed)?, *token.get(1).ok_or(TokenError::Malformed)?]));
        if nlen != 12 {
            // AES-GCM here takes 96-bit nonces only (what coturn's tools make).
            return Err(TokenError::Malformed);
        }
        let nonce = token.get(2..2 + nlen).ok_or(TokenError::Malformed)?;
        let sealed = token.get(2 + nlen..).ok_or(TokenError::Malformed)?;
        let payload = Payload { msg: sealed, aad: server_name.as_bytes() };
        let nonce = Nonce::from_slice(nonce);
        let plain = match self.alg {
            AsRsAlg::A128Gcm => Aes128Gcm::new_from_slice(&self.key).map_err(|_| TokenError::Decrypt)?.decrypt(nonce, payload),
            AsRsAlg::A256Gcm => Aes256Gcm::new_from_slice(&self.key).map_err(|_| TokenError::Decrypt)?.decrypt(nonce, payload),
        }
        .map_err(|_| TokenError::Decrypt)?;
        Token::parse(&plain)
    }

    /// Encrypt a token (the authorization server's side; used by tests and
    /// our own test client).
    pub fn encrypt(&self, server_name: &str, nonce: [u8; 12], token: &Token) -> Vec<u8> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(token.mac_key.len() as u16).to_be_bytes());
        plain.extend_from_slice(&token.mac_key);
        plain.extend_from_slice(&token.timestamp.to_be_bytes());
        plain.extend_from_slice(&token.lifetime.to_be_bytes());
        let payload = Payload { msg: &plain, aad: server_name.as_bytes() };
        let n = Nonce::from_slice(&nonce);
        // The key length is fixed by `from_row`, so these cannot fail.
        #[allow(clippy::expect_used)]
        let sealed = match self.alg {
            AsRsAlg::A128Gcm => Aes128Gcm::new_from_slice(&self.key).expect("16-byte key").encrypt(n, payload),
            AsRsAlg::A256Gcm => Aes256Gcm::new_from_slice(&self.key).expect("32-byte key").encrypt(n, payload),
        }
        .expect("AES-GCM encryption of a short message");
        let mut out = Vec::with_capacity(14 + sealed.len());
        out.extend_from_slice(&12u16.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }
}

/// Why a token is refused (every case is a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    /// Wrong key, wrong server name, or tampered.
    Decrypt,
    Expired,
}

/// The decrypted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub mac_key: MacKey,
    /// 48.16 fixed point unix time of issue.
    pub timestamp: u64,
    /// Seconds.
    pub lifetime: u32,
}

impl Token {
    fn parse(p: &[u8]) -> Result<Token, TokenError> {
        let klen = usize::from(u16::from_be_bytes([*p.first().ok_or(TokenError::Malformed)?, *p.get(1).ok_or(TokenError::Malformed)?]));
        let key = p.get(2..2 + klen).ok_or(TokenError::Malformed)?;
        let rest = p.get(2 + klen..).ok_or(TokenError::Malformed)?;
        if rest.len() < 12 || key.is_empty() {
            return Err(TokenError::Malformed);
        }
        let mac_key = MacKey::from_slice(key).ok_or(TokenError::Malformed)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&rest[..8]);
        let mut lt = [0u8; 4];
        lt.copy_from_slice(&rest[8..12]);
        Ok(Token { mac_key, timestamp: u64::from_be_bytes(ts), lifetime: u32::from_be_bytes(lt) })
    }

    /// Issue time in unix seconds.
    pub fn issued_unix(&self) -> u64 {
        self.timestamp >> 16
    }

    /// Seconds of validity left at `now_unix` (`Err(Expired)` when none);
    /// an issue time more than [`MAX_FUTURE_SKEW_SECS`] ahead is refused too.
    pub fn remaining(&self, now_unix: u64) -> Result<u64, TokenError> {
        let issued = self.issued_unix();
        if issued > now_unix + MAX_FUTURE_SKEW_SECS {
            return Err(TokenError::Expired);
        }
        let end = issued + u64::from(self.lifetime);
        if end <= now_unix {
            return Err(TokenError::Expired);
        }
        Ok(end - now_unix)
    }
}

/// Clock skew allowed between the authorization server and us.
pub const MAX_FUTURE_SKEW_SECS: u64 = 60;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    fn row(kid: &str, ikm: &str, alg: &str) -> OauthKeyRow {
        OauthKeyRow { kid: kid.into(), ikm_key: ikm.into(), as_rs_alg: alg.into(), ..Default::default() }
    }

    /// Tokens made by coturn's `turnutils_oauth -e -i turn.example.org -j <kid>
    /// -k <ikm> -n <alg> -o MDEyMzQ1Njc4OWFi -p AQIDBAUGBwgJCgsMDQ4PEBESExQ=
    /// -q $((1700000000<<16)) -r 3600` with the keys `turnutils_uclient -J`
    /// has built in ("north": A256GCM, 33-byte ikm; "union": A128GCM, 17-byte ikm).
    const NORTH_TOKEN: &str = "AAwwMTIzNDU2Nzg5YWJ5pnPjvTpp8h3YAIVzdWjtHuVjVv3rk7BmCpxv6k/8y65/FYtn7p1cxVEGs1QNp/GZ6A==";
    const UNION_TOKEN: &str = "AAwwMTIzNDU2Nzg5YWILB3hjh0I3dgXqOEzNvrOXYM3TbRlr+Zvcnt5HdXkM8TKRwpcyRCC4Pm+HlHhmLBJrKA==";
    const NORTH_IKM: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEK";
    const UNION_IKM: &str = "MTIzNDU2Nzg5MDEyMzQ1Ngo=";

    #[test]
    fn decrypts_turnutils_oauth_tokens() {
        for (kid, ikm, alg, tok) in [("north", NORTH_IKM, "A256GCM", NORTH_TOKEN), ("union", UNION_IKM, "A128GCM", UNION_TOKEN)] {
            let key = OauthKey::from_row(&row(kid, ikm, alg)).unwrap();
            let t = key.decrypt("turn.example.org", &b64(tok)).unwrap();
            assert_eq!(&t.mac_key[..], &(1u8..=20).collect::<Vec<u8>>()[..], "{kid}");
            assert_eq!(t.issued_unix(), 1_700_000_000);
            assert_eq!(t.timestamp, 1_700_000_000 << 16);
            assert_eq!(t.lifetime, 3600);
            assert_eq!(t.remaining(1_700_000_100), Ok(3500));
            assert_eq!(t.remaining(1_700_003_600), Err(TokenError::Expired));
            // Our encryption of the same fields is byte for byte theirs.
            assert_eq!(key.encrypt("turn.example.org", *b"0123456789ab", &t), b64(tok), "{kid}");
        }
    }

    #[test]
    fn wrong_key_server_name_or_tampering_is_refused() {
        let north = OauthKey::from_row(&row("north", NORTH_IKM, "A256GCM")).unwrap();
        let other = OauthKey::from_row(&row("x", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIK", "A256GCM")).unwrap();
        let tok = b64(NORTH_TOKEN);
        assert_eq!(other.decrypt("turn.example.org", &tok), Err(TokenError::Decrypt));
        assert_eq!(north.decrypt("other.example.org", &tok), Err(TokenError::Decrypt));
        for i in 0..tok.len() {
            let mut t = tok.clone();
            t[i] ^= 1;
            assert!(north.decrypt("turn.example.org", &t).is_err(), "byte {i}");
        }
        for n in 0..tok.len() {
            assert!(north.decrypt("turn.example.org", &tok[..n]).is_err());
        }
    }

    #[test]
    fn key_rows() {
        assert!(OauthKey::from_row(&row("k", NORTH_IKM, "A512GCM")).is_err());
        assert!(OauthKey::from_row(&row("k", "not base64!", "A256GCM")).is_err());
        assert!(OauthKey::from_row(&row("k", UNION_IKM, "A256GCM")).is_err(), "17 bytes < 32");
        let mut r = row("k", NORTH_IKM, "");
        r.timestamp = 1000;
        r.lifetime = 100;
        let k = OauthKey::from_row(&r).unwrap();
        assert!(!k.valid_at(999) && k.valid_at(1000) && k.valid_at(1099) && !k.valid_at(1100));
        r.lifetime = 0;
        assert!(OauthKey::from_row(&r).unwrap().valid_at(u64::from(u32::MAX)));
    }
}

// ----- the server side: checking a request that carries a token -----

use super::dbauth::{CredentialQuery, DbAnswer};
use super::output::{Dest, Outputs, Transport};
use super::server::{AuthInfo, Reply, Server};
use super::time::Now;
use crate::stun::{AttrType, Message};
use std::net::SocketAddr;

/// The last token verified on each 5-tuple: requests after it (which carry
/// no ACCESS-TOKEN, only the kid and the token's mac_key) keep the token's
/// lifetime cap, and name its kid.
#[derive(Debug, Default)]
pub(crate) struct TokenSessions {
    by_tuple: std::collections::HashMap<(Transport, SocketAddr, SocketAddr), TokenSession>,
}

#[derive(Debug)]
struct TokenSession {
    expires: u64,
    kid: Box<str>,
}

impl TokenSessions {
    /// The kid of the last token verified on this 5-tuple.
    pub(crate) fn kid(&self, tuple: &(Transport, SocketAddr, SocketAddr)) -> Option<&str> {
        self.by_tuple.get(tuple).map(|t| &*t.kid)
    }
}

/// Entries before the ones without an allocation are dropped.
const SESSIONS_MAX: usize = 65_536;

/// What a request's oAuth credentials are worth.
pub(crate) enum OauthOutcome {
    /// No ACCESS-TOKEN and no token session: the long-term mechanism decides.
    NotOauth,
    Verified(AuthInfo),
    /// The kid's key row was asked from the database; answer nothing now.
    Pending,
    /// 401; the text is for the log.
    Refused(String),
    /// The database failed: 500.
    Failed,
}

impl Server {
    /// RFC 7635: USERNAME is the kid; ACCESS-TOKEN, decrypted with the kid's
    /// key, gives the mac_key that must verify the request, and the lifetime
    /// that caps the allocation. The realm is the key row's (the default realm
    /// when the row has none).
    pub(crate) fn oauth_authenticate(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) -> OauthOutcome {
        let Some(Ok(kid)) = msg.str_attr(AttrType::USERNAME) else { return OauthOutcome::NotOauth };
        let Dest::Client { transport, local, to } = reply.dest else { return OauthOutcome::NotOauth };
        let tuple = (transport, to, local);
        let Some(token) = msg.get(AttrType::ACCESS_TOKEN) else {
            return self.oauth_session(now, msg, tuple, kid);
        };
        if !self.cfg.userdb {
            return OauthOutcome::Refused("oAuth keys live in the user database, and none is configured".into());
        }
        let query = CredentialQuery::OauthKey { kid: kid.to_string() };
        let row = match self.db_answers.get(&query, now.ms) {
            None => {
                out.credential_queries.push(query);
                return OauthOutcome::Pending;
            }
            Some(DbAnswer::Failed) => return OauthOutcome::Failed,
            Some(DbAnswer::OauthKey(Some(row))) => row.clone(),
            Some(_) => return OauthOutcome::Refused(format!("no oauth key <{kid}>")),
        };
        let key = match OauthKey::from_row(&row) {
            Ok(k) => k,
            Err(e) => return OauthOutcome::Refused(e),
        };
        if !key.valid_at(now.unix) {
            return OauthOutcome::Refused(format!("oauth key <{kid}> is outside its validity"));
        }
        let t = match key.decrypt(&self.cfg.oauth_server_name, token) {
            Ok(t) => t,
            Err(e) => return OauthOutcome::Refused(format!("oauth key <{kid}>: token refused ({e:?})")),
        };
        let remaining = match t.remaining(now.unix) {
            Ok(r) => r,
            Err(_) => return OauthOutcome::Refused(format!("oauth key <{kid}>: token expired")),
        };
        // coturn (server and turnutils_uclient -J) keys SHA-1 MESSAGE-INTEGRITY
        // with the first 16 bytes of the mac_key (its SHA-1 HMAC key size);
        // the RFC takes the whole mac_key. Both are accepted; the one that
        // verified signs the session.
        let short = t.mac_key.get(..16).and_then(MacKey::from_slice);
        let Some(mac_key) = [Some(t.mac_key), short].into_iter().flatten().find(|k| msg.check_any_integrity(k)) else {
            return OauthOutcome::Refused(format!("oauth key <{kid}>: wrong message integrity"));
        };
        let expires = now.unix + remaining;
        if self.token_sessions.by_tuple.len() >= SESSIONS_MAX {
            let by_client = &self.by_client;
            self.token_sessions.by_tuple.retain(|k, _| by_client.contains_key(k));
        }
        self.token_sessions.by_tuple.insert(tuple, TokenSession { expires, kid: kid.into() });
        // A new token on an allocation re-keys it, kid and all: coturn's
        // clients (turnutils_uclient -J) make a fresh token, often under
        // another kid, for every Allocate and Refresh, and coturn takes it.
        if let Some(a) = self.by_client.get(&tuple).and_then(|&s| self.allocs.get_mut(s)) {
            if a.key.is_some() {
                a.key = Some(mac_key);
            }
        }
        let realm = if row.realm.is_empty() { self.cfg.credentials.realm.clone() } else { row.realm };
        OauthOutcome::Verified(AuthInfo { username: kid.to_string(), realm, key: Some(mac_key), expires_unix: Some(expires) })
    }

    /// A request without ACCESS-TOKEN on the 5-tuple of an allocation made
    /// with a token by this kid, signed with that token's mac_key.
    fn oauth_session(&mut self, now: Now, msg: &Message, tuple: (Transport, SocketAddr, SocketAddr), kid: &str) -> OauthOutcome {
        let Some(session) = self.token_sessions.by_tuple.get(&tuple) else { return OauthOutcome::NotOauth };
        let expires = session.expires;
        let Some(a) = self.by_client.get(&tuple).and_then(|&s| self.allocs.get(s)) else {
            self.token_sessions.by_tuple.remove(&tuple);
            return OauthOutcome::NotOauth;
        };
        let Some(key) = a.key else { return OauthOutcome::NotOauth };
        if *session.kid != *kid || !msg.check_any_integrity(&key) {
            return OauthOutcome::NotOauth;
        }
        if expires <= now.unix {
            return OauthOutcome::Refused(format!("oauth key <{kid}>: token expired"));
        }
        OauthOutcome::Verified(AuthInfo { username: kid.to_string(), realm: a.realm.clone(), key: Some(key), expires_unix: Some(expires) })
    }
}
