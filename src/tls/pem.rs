//! Reading PEM certificates and private keys, including encrypted keys.
//!
//! coturn hands `--cert`, `--pkey` and `--pkey-pwd` to OpenSSL, which reads
//! every PEM form OpenSSL ever wrote. Operators carry those files over, so
//! this module accepts:
//! - `CERTIFICATE` blocks (the chain, leaf first);
//! - `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1);
//! - `ENCRYPTED PRIVATE KEY` (PKCS#8 with PBES2 or the PBES1 DES variants),
//!   decrypted with `--pkey-pwd`;
//! - legacy OpenSSL "traditional" encryption (`Proc-Type: 4,ENCRYPTED` and
//!   `DEK-Info` headers on an RSA or EC key), as written by `openssl genrsa
//!   -des3` and OpenSSL 1.x tools, for AES-128/192/256-CBC, DES-EDE3-CBC and
//!   DES-CBC. Anything else gets an error telling how to convert the file.
//!
//! The PEM parser is our own because it has to see the RFC 1421 headers that
//! carry the legacy encryption parameters.

use std::path::Path;

use base64::Engine as _;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use super::TlsError;

/// One `-----BEGIN label-----` ... `-----END label-----` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PemBlock {
    pub label: String,
    /// RFC 1421 headers (`Proc-Type`, `DEK-Info`), in file order.
    pub headers: Vec<(String, String)>,
    pub der: Vec<u8>,
}

impl PemBlock {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Split PEM text into blocks. Text outside blocks is ignored (OpenSSL allows
/// comments and `openssl x509 -text` output around them).
pub(crate) fn parse_pem(text: &str) -> Result<Vec<PemBlock>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim).enumerate();
    while let Some((_, line)) = lines.next() {
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut headers = Vec::new();
        let mut body = String::new();
        let mut in_headers = true;
        let mut closed = false;
        for (n, line) in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.starts_with("-----") {
                return Err(format!("line {}: unexpected '{line}' inside the {label} block", n + 1));
            }
            if in_headers {
                if line.is_empty() {
                    in_headers = false;
                    continue;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if !k.is_empty() && !k.contains(' ') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                        continue;
                    }
                }
                in_headers = false;
            }
            body.push_str(line);
        }
        if !closed {
            return Err(format!("the {label} block has no '{end}' line"));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("the {label} block is not valid base64: {e}"))?;
        blocks.push(PemBlock { label: label.to_string(), headers, der });
    }
    Ok(blocks)
}

/// Read a file and split it into PEM blocks; errors name the file and its role.
pub(crate) fn read_pem_file(what: &'static str, path: &Path) -> Result<Vec<PemBlock>, TlsError> {
    let bytes = std::fs::read(path)
        .map_err(|source| TlsError::Read { what, path: path.to_path_buf(), source })?;
    let text = String::from_utf8(bytes).map_err(|_| TlsError::BadPem {
        what,
        path: path.to_path_buf(),
        reason: "not a text (PEM) file; DER files must be converted with `openssl x509 -inform der` \
                 or `openssl pkey -inform der`"
            .into(),
    })?;
    parse_pem(&text).map_err(|reason| TlsError::BadPem { what, path: path.to_path_buf(), reason })
}

/// All `CERTIFICATE` blocks of a file, in order.
pub(crate) fn certificates(blocks: &[PemBlock]) -> Vec<CertificateDer<'static>> {
    blocks
        .iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.der.clone()))
        .collect()
}

/// Read the certificate chain of `path`.
pub(crate) fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = certificates(&read_pem_file("certificate", path)?);
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(chain)
}

/// Read the first private key of `path`, decrypting it with `password` if it
/// is encrypted. A password given for a plain key is ignored, as OpenSSL does.
pub(crate) fn load_private_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let blocks = read_pem_file("private key", path)?;
    let p = || path.to_path_buf();
    for block in &blocks {
        let encrypted = block
            .header("Proc-Type")
            .is_some_and(|v| v.replace(' ', "").eq_ignore_ascii_case("4,ENCRYPTED"));
        match block.label.as_str() {
            "PRIVATE KEY" => return Ok(PrivatePkcs8KeyDer::from(block.der.clone()).into()),
            "ENCRYPTED PRIVATE KEY" => {
                let pwd = password.ok_or_else(|| TlsError::PasswordRequired { path: p() })?;
                return decrypt_pkcs8(path, &block.der, pwd);
            }
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                let der = if encrypted {
                    let pwd = password.ok_or_else(|| TlsError::PasswordRequired { path: p() })?;
                    decrypt_legacy(path, block, pwd)?
                } else {
                    block.der.clone()
                };
                return Ok(if block.label == "RSA PRIVATE KEY" {
                    PrivatePkcs1KeyDer::from(der).into()
                } else {
                    PrivateSec1KeyDer::from(der).into()
                });
            }
            "DSA PRIVATE KEY" => {
                return Err(TlsError::UnsupportedKey {
                    path: p(),
                    detail: "DSA keys are not supported by rustls; use an RSA, ECDSA or Ed25519 key".into(),
                })
            }
            _ => {}
        }
    }
    Err(TlsError::NoPrivateKey { path: p() })
}

/// PKCS#8 `EncryptedPrivateKeyInfo` (PBES2 with PBKDF2 or scrypt and AES-CBC,
/// or PBES1 DES) to a plain PKCS#8 key.
fn decrypt_pkcs8(path: &Path, der: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der).map_err(|e| TlsError::UnsupportedKey {
        path: path.to_path_buf(),
        detail: format!(
            "cannot parse the ENCRYPTED PRIVATE KEY block ({e}); only PKCS#5 v2 (PBES2) encryption \
             with PBKDF2 or scrypt and AES-CBC or DES-EDE3-CBC is supported"
        ),
    })?;
    let unsupported = |detail: String| TlsError::UnsupportedKey { path: path.to_path_buf(), detail };
    let doc = info.decrypt(password).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::NoPbes1CryptSupport) => {
            unsupported("the key uses PKCS#5 v1.5 (PBES1) encryption, which is not supported".into())
        }
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm { oid }) => {
            unsupported(format!("the key is encrypted with an unsupported algorithm ({oid})"))
        }
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::AlgorithmParametersInvalid { oid }) => {
            unsupported(format!("the key's encryption parameters for {oid} are invalid"))
        }
        // A failing decryption (bad padding) is a wrong password.
        _ => TlsError::WrongPassword { path: path.to_path_buf() },
    })?;
    // Decrypting with a wrong password can still yield valid padding by chance;
    // the result must then at least parse as PKCS#8.
    pkcs8::PrivateKeyInfo::try_from(doc.as_bytes())
        .map_err(|_| TlsError::WrongPassword { path: path.to_path_buf() })?;
    Ok(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec()).into())
}

/// OpenSSL's `EVP_BytesToKey` with MD5, one iteration: the key derivation of
/// traditional encrypted PEM (the salt is the first 8 bytes of the IV).
pub(crate) fn evp_bytes_to_key_md5(password: &[u8], salt: &[u8], key_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(key_len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < key_len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(password);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(key_len);
    out
}

/// Decrypt a traditional `Proc-Type: 4,ENCRYPTED` block.
fn decrypt_legacy(path: &Path, block: &PemBlock, password: &str) -> Result<Vec<u8>, TlsError> {
    let unsupported = |detail: String| TlsError::UnsupportedKey { path: path.to_path_buf(), detail };
    let dek = block
        .header("DEK-Info")
        .ok_or_else(|| unsupported("the key has 'Proc-Type: 4,ENCRYPTED' but no DEK-Info header".into()))?;
    let (alg, iv_hex) = dek
        .split_once(',')
        .ok_or_else(|| unsupported(format!("malformed DEK-Info header '{dek}'")))?;
    let iv = decode_hex(iv_hex.trim()).ok_or_else(|| unsupported(format!("malformed IV in DEK-Info '{dek}'")))?;
    let alg = alg.trim().to_ascii_uppercase();
    let (key_len, iv_len) = match alg.as_str() {
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        "DES-EDE3-CBC" => (24, 8),
        "DES-CBC" => (8, 8),
        _ => return Err(unsupported(format!("legacy PEM encryption '{alg}' is not supported"))),
    };
    if iv.len() != iv_len {
        return Err(unsupported(format!("DEK-Info IV has {} bytes, {alg} needs {iv_len}", iv.len())));
    }
    let key = evp_bytes_to_key_md5(password.as_bytes(), &iv[..8], key_len);
    let wrong = || TlsError::WrongPassword { path: path.to_path_buf() };
    let plain = match alg.as_str() {
        "AES-128-CBC" => cbc_decrypt::<aes::Aes128>(&key, &iv, &block.der),
        "AES-192-CBC" => cbc_decrypt::<aes::Aes192>(&key, &iv, &block.der),
        "AES-256-CBC" => cbc_decrypt::<aes::Aes256>(&key, &iv, &block.der),
        "DES-EDE3-CBC" => cbc_decrypt::<des::TdesEde3>(&key, &iv, &block.der),
        _ => cbc_decrypt::<des::Des>(&key, &iv, &block.der),
    }
    .ok_or_else(wrong)?;
    // A wrong password passes the padding check about once in 256 tries; the
    // plaintext must at least start like a DER SEQUENCE.
    if plain.first() != Some(&0x30) {
        return Err(wrong());
    }
    Ok(plain)
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>>
where
    C: cbc::cipher::BlockCipher + cbc::cipher::BlockDecrypt + cbc::cipher::KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(data).ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// The conversion hint appended to unsupported-key errors.
pub(crate) fn convert_hint(path: &Path) -> String {
    format!(
        "convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in {0} -out {0}.pk8` \
         (or `-nocrypt` instead of `-v2 aes-256-cbc` for an unencrypted key) and point --pkey at the result",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // `openssl enc -des-ede3-cbc -P -S 0102030405060708 -pass pass:secret -md md5`
        let k = evp_bytes_to_key_md5(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 24);
        assert_eq!(k, decode_hex("C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144").unwrap_or_default());
    }

    #[test]
    fn pem_headers_and_garbage() {
        let text = "junk before\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                    DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAEC\nAw==\n\
                    -----END RSA PRIVATE KEY-----\ntrailer\n";
        let b = parse_pem(text).unwrap_or_default();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].label, "RSA PRIVATE KEY");
        assert_eq!(b[0].headers.len(), 2);
        assert_eq!(b[0].der, vec![0, 1, 2, 3]);
        assert!(parse_pem("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(parse_pem("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
        assert!(parse_pem("-----BEGIN X-----\nAAAA\n-----BEGIN Y-----\n").is_err());
    }
}
