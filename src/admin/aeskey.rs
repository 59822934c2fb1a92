//! coturn's AES key files and encrypted MySQL passwords (`turnadmin -E`,
//! `-x`, `-f`, `--verify`; `turnserver --secret-key-file`).
//!
//! A key file holds 16 random characters from `[0-9A-Za-z]`, no newline;
//! its first 16 bytes are the AES-128 key. A password is encrypted with
//! AES-128 in CTR mode, all-zero initial counter block, 128-bit big-endian
//! counter, no padding, and printed as standard base64 — the same bytes as
//! `openssl enc -aes-128-ctr -iv 0`. Observed against coturn 4.6.1.

use std::io;
use std::path::Path;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use base64::Engine;
use rand::Rng;

/// Length of a key in bytes (and characters in a key file).
pub const KEY_LEN: usize = 16;

const KEY_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be opened (coturn's wording).
    #[error("No such file like {0}")]
    Missing(String),
    /// The file is empty (coturn's wording).
    #[error("ERROR: Secret-Key file is empty")]
    Empty,
    /// Fewer than 16 bytes (coturn's wording).
    #[error("ERROR: Secret-Key length is not enough")]
    Short,
}

/// A fresh random key in coturn's key-file alphabet.
pub fn generate_key() -> [u8; KEY_LEN] {
    let mut rng = rand::thread_rng();
    let mut k = [0u8; KEY_LEN];
    for b in &mut k {
        *b = KEY_CHARS[rng.gen_range(0..KEY_CHARS.len())];
    }
    k
}

/// Writes a new key file at `path` (created or truncated).
pub fn write_key_file(path: &Path) -> io::Result<[u8; KEY_LEN]> {
    let key = generate_key();
    std::fs::write(path, key)?;
    Ok(key)
}

/// Reads the key: the file's first 16 bytes.
pub fn read_key_file(path: &Path) -> Result<[u8; KEY_LEN], KeyFileError> {
    let data =
        std::fs::read(path).map_err(|_| KeyFileError::Missing(path.display().to_string()))?;
    if data.is_empty() {
        return Err(KeyFileError::Empty);
    }
    data.get(..KEY_LEN)
        .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok())
        .ok_or(KeyFileError::Short)
}

/// AES-128-CTR with a zero initial counter; encrypts and decrypts alike.
pub fn ctr_apply(key: &[u8; KEY_LEN], data: &[u8]) -> Vec<u8> {
    let cipher = Aes128::new(key.into());
    let mut counter: u128 = 0;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(16) {
        let mut block = aes::Block::from(counter.to_be_bytes());
        cipher.encrypt_block(&mut block);
        out.extend(chunk.iter().zip(block.iter()).map(|(d, k)| d ^ k));
        counter = counter.wrapping_add(1);
    }
    out
}

/// What `turnadmin -E` prints for `password` (without the newline).
pub fn encrypt_password(key: &[u8; KEY_LEN], password: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(ctr_apply(key, password))
}

/// The plain password behind `encoded`; `None` when it is not base64.
pub fn decrypt_password(key: &[u8; KEY_LEN], encoded: &str) -> Option<Vec<u8>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    Some(ctr_apply(key, &raw))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::*;

    /// A key file written by coturn 4.6.1's `turnadmin -E -x`.
    const COTURN_KEY: &[u8; 16] = b"s0565ytuYQ7PY8tH";

    #[test]
    fn decrypts_coturn_output() {
        // `turnadmin -E -f <key> -p mypass` printed these with that key.
        assert_eq!(
            decrypt_password(COTURN_KEY, "FUYwKO95").as_deref(),
            Some(&b"mypass"[..])
        );
        let other: &[u8; 16] = b"0123456789abcdef";
        assert_eq!(encrypt_password(other, b"mypass"), "ZuJluzg3");
        // Three counter blocks, made by coturn with key file `5rk4bPrGa3U4a51n`.
        let k: &[u8; 16] = b"5rk4bPrGa3U4a51n";
        assert_eq!(
            decrypt_password(k, "8Jw3P4PR").as_deref(),
            Some(&b"mypass"[..])
        );
        assert_eq!(
            decrypt_password(
                k,
                "/MUqK5PKMDEwT6QsH4jW4PpWDlrhkNp5zPb1EqfcsGA92jx1r9eP8A=="
            )
            .as_deref(),
            Some(&b"a much longer password of 40 characters!"[..])
        );
    }

    #[test]
    fn encrypts_like_coturn() {
        assert_eq!(encrypt_password(COTURN_KEY, b"mypass"), "FUYwKO95");
    }

    #[test]
    fn long_passwords_cross_blocks() {
        let key = generate_key();
        let pw = b"a much longer password of 40 characters!";
        let enc = encrypt_password(&key, pw);
        assert_eq!(decrypt_password(&key, &enc).as_deref(), Some(&pw[..]));
        // CTR: ciphertext is as long as the text.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&enc)
            .unwrap();
        assert_eq!(raw.len(), pw.len());
        // Counter block 1 differs from block 0 (not ECB of a constant).
        assert_ne!(
            ctr_apply(&key, &[0; 32])[..16],
            ctr_apply(&key, &[0; 32])[16..]
        );
    }

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = write_key_file(&path).unwrap();
        assert!(key.iter().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(std::fs::read(&path).unwrap(), key);
        assert_eq!(read_key_file(&path).unwrap(), key);
        let enc = encrypt_password(&key, b"mysqlpw");
        assert_eq!(decrypt_password(&key, &enc).unwrap(), b"mysqlpw");
    }

    #[test]
    fn key_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        assert_eq!(
            read_key_file(&missing).unwrap_err().to_string(),
            format!("No such file like {}", missing.display())
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(read_key_file(&empty), Err(KeyFileError::Empty)));
        let short = dir.path().join("short");
        std::fs::write(&short, b"abc\n").unwrap();
        assert!(matches!(read_key_file(&short), Err(KeyFileError::Short)));
        let long = dir.path().join("long");
        std::fs::write(&long, b"0123456789abcdefXYZ").unwrap();
        assert_eq!(&read_key_file(&long).unwrap(), b"0123456789abcdef");
    }

    #[test]
    fn bad_base64_is_none() {
        assert_eq!(decrypt_password(COTURN_KEY, "!!!"), None);
    }
}
