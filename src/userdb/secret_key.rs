//! `--secret-key-file`: the MySQL password in `--mysql-userdb` given in the
//! encrypted form `turnadmin -E` prints.
//!
//! The format, checked against coturn 4.6.1's `turnadmin -x` / `-E`: the key
//! file holds 16 bytes (the AES-128 key, used as they are; `turnadmin -x`
//! writes 16 printable characters), and the encrypted password is
//! base64(AES-128-CTR(key, counter block starting at zero, password)).

use aes::cipher::{BlockEncrypt, KeyInit};
use base64::Engine as _;

/// Read the key: the first 16 bytes of the file (fewer is an error).
pub fn read_key(path: &std::path::Path) -> Result<[u8; 16], String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read secret key file {}: {e}", path.display()))?;
    data.get(..16)
        .and_then(|k| <[u8; 16]>::try_from(k).ok())
        .ok_or_else(|| format!("secret key file {} holds fewer than 16 bytes", path.display()))
}

/// AES-128-CTR with a zero initial counter (its own inverse).
fn ctr(key: &[u8; 16], data: &mut [u8]) {
    let cipher = aes::Aes128::new(key.into());
    for (i, chunk) in data.chunks_mut(16).enumerate() {
        let mut block = aes::Block::from((i as u128).to_be_bytes());
        cipher.encrypt_block(&mut block);
        for (b, k) in chunk.iter_mut().zip(block.iter()) {
            *b ^= k;
        }
    }
}

/// Decrypt a `turnadmin -E` password.
pub fn decrypt_password(key: &[u8; 16], encrypted: &str) -> Result<String, String> {
    let mut data = base64::engine::general_purpose::STANDARD
        .decode(encrypted.trim())
        .map_err(|_| "encrypted password is not base64".to_string())?;
    ctr(key, &mut data);
    String::from_utf8(data).map_err(|_| "decrypted password is not text (wrong key?)".to_string())
}

/// Encrypt a password the way `turnadmin -E` does.
pub fn encrypt_password(key: &[u8; 16], password: &str) -> String {
    let mut data = password.as_bytes().to_vec();
    ctr(key, &mut data);
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The MySQL connection string with its `password=` value decrypted.
pub fn decrypt_conninfo(key: &[u8; 16], conninfo: &str) -> Result<String, String> {
    conninfo
        .split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("password") => Ok(format!("{k}={}", decrypt_password(key, v)?)),
            _ => Ok(kv.to_string()),
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|v| v.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Produced by coturn 4.6.1: `turnadmin -x key` wrote this key, then
    // `turnadmin -E -f key -p ...` printed the ciphertexts.
    const KEY: &[u8; 16] = b"79sKt514Wl6n4IJ7";

    #[test]
    fn coturn_vectors() {
        assert_eq!(decrypt_password(KEY, "A1cNuZE=").unwrap(), "hello");
        assert_eq!(decrypt_password(KEY, "Ch8NupDaeJJ7H82jZDYriE9VYJ5h0A==").unwrap(), "a-longer-password-1234");
        assert_eq!(encrypt_password(KEY, "hello"), "A1cNuZE=");
    }

    #[test]
    fn conninfo_password_replaced() {
        let c = decrypt_conninfo(KEY, "host=127.0.0.1 dbname=coturn user=turn password=A1cNuZE= port=3306").unwrap();
        assert_eq!(c, "host=127.0.0.1 dbname=coturn user=turn password=hello port=3306");
        assert!(decrypt_conninfo(KEY, "host=h password=!!").is_err());
    }

    #[test]
    fn key_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, b"79sKt514Wl6n4IJ7").unwrap();
        assert_eq!(&read_key(&p).unwrap(), KEY);
        std::fs::write(&p, b"short").unwrap();
        assert!(read_key(&p).is_err());
    }
}
