//! Tests of the TLS module: certificates made with rcgen in temporary
//! directories, handshakes between a rustls client and our server configs
//! over in-memory buffers, and (when the `openssl` CLI exists) interop with
//! `openssl s_client` over loopback TCP.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::Acceptor;
use rustls::{ClientConfig, ClientConnection, Connection, ProtocolVersion, ServerConfig, ServerConnection};

use super::*;

/// A CA, a server certificate for "localhost" signed by it, and a client
/// certificate signed by it, written to a temp dir.
struct Pki {
    dir: tempfile::TempDir,
    ca_der: CertificateDer<'static>,
    cert_path: PathBuf,
    key_path: PathBuf,
    ca_path: PathBuf,
    server_key: KeyPair,
    client_chain: Vec<CertificateDer<'static>>,
    client_key_der: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct subject names: OpenSSL takes subject == issuer for self-signed.
        ca_params.distinguished_name.push(DnType::CommonName, "turnserver-rs test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf = |name: &str, key: &KeyPair| {
            let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.signed_by(key, &ca, &ca_key).unwrap()
        };
        let server_key = KeyPair::generate().unwrap();
        let server = leaf("localhost", &server_key);
        let client_key = KeyPair::generate().unwrap();
        let client = leaf("client", &client_key);

        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("pkey.pem");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&cert_path, format!("{}{}", server.pem(), ca.pem())).unwrap();
        std::fs::write(&key_path, server_key.serialize_pem()).unwrap();
        std::fs::write(&ca_path, ca.pem()).unwrap();
        Pki {
            ca_der: ca.der().clone(),
            client_chain: vec![client.der().clone()],
            client_key_der: client_key.serialize_der(),
            dir,
            cert_path,
            key_path,
            ca_path,
            server_key,
        }
    }

    fn opts(&self) -> TlsOptions {
        TlsOptions {
            cert: Some(self.cert_path.clone()),
            pkey: Some(self.key_path.clone()),
            base_dir: Some(self.dir.path().to_path_buf()),
            ..TlsOptions::default()
        }
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `pki`'s CA, limited to `versions`, offering `alpn`.
fn client(pki: &Pki, versions: &[&'static rustls::SupportedProtocolVersion], alpn: &[&[u8]], with_cert: bool) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let b = ClientConfig::builder_with_provider(provider()).with_protocol_versions(versions).unwrap().with_root_certificates(roots);
    let mut c = if with_cert {
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(pki.client_key_der.clone()));
        b.with_client_auth_cert(pki.client_chain.clone(), key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(c)
}

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// Move everything `from` wants to send into `to`. Errors name the side.
fn pump(from: &mut Connection, to: &mut Connection) -> Result<bool, String> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).map_err(|e| e.to_string())?;
    }
    if buf.is_empty() {
        return Ok(false);
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).map_err(|e| e.to_string())?;
        to.process_new_packets().map_err(|e| e.to_string())?;
    }
    Ok(true)
}

/// Drive both sides until neither has anything left to say.
fn drive(client: &mut Connection, server: &mut Connection) -> Result<(), String> {
    for _ in 0..20 {
        let a = pump(client, server).map_err(|e| format!("server: {e}"))?;
        let b = pump(server, client).map_err(|e| format!("client: {e}"))?;
        if !a && !b {
            break;
        }
    }
    if client.is_handshaking() || server.is_handshaking() {
        return Err("handshake did not complete".into());
    }
    Ok(())
}

/// A full in-memory handshake against one server config.
fn handshake(server_cfg: Arc<ServerConfig>, client_cfg: Arc<ClientConfig>) -> Result<(ClientConnection, ServerConnection), String> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = Connection::Client(ClientConnection::new(client_cfg, name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(server_cfg).unwrap());
    drive(&mut c, &mut s)?;
    match (c, s) {
        (Connection::Client(c), Connection::Server(s)) => Ok((c, s)),
        _ => unreachable!(),
    }
}

/// A handshake where the server reads the ClientHello first and picks the
/// config with [`TlsConfigs::for_client_hello`], as the I/O layer will.
/// Also returns the raw ClientHello bytes.
fn handshake_accepting(configs: &TlsConfigs, client_cfg: Arc<ClientConfig>) -> Result<(ClientConnection, ServerConnection, Vec<u8>), String> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(client_cfg, name).unwrap();
    let mut hello = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut hello).unwrap();
    }
    let mut acceptor = Acceptor::default();
    acceptor.read_tls(&mut &hello[..]).unwrap();
    let accepted = acceptor.accept().map_err(|(e, _)| e.to_string())?.ok_or("ClientHello incomplete")?;
    let cfg = configs.for_client_hello(&accepted.client_hello());
    let s = accepted.into_connection(cfg).map_err(|(e, _)| e.to_string())?;
    let mut c = Connection::Client(c);
    let mut s = Connection::Server(s);
    drive(&mut c, &mut s)?;
    match (c, s) {
        (Connection::Client(c), Connection::Server(s)) => Ok((c, s, hello)),
        _ => unreachable!(),
    }
}

#[test]
fn valid_cert_and_key_negotiate_tls13_and_alpn() {
    let pki = Pki::new();
    let (cfg, warnings) = build_server_config(&pki.opts()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let (c, s) = handshake(cfg.clone(), client(&pki, BOTH, &[b"stun.turn"], false)).unwrap();
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(c.alpn_protocol(), Some(&b"stun.turn"[..]));
    assert_eq!(s.alpn_protocol(), Some(&b"stun.turn"[..]));
    // No ALPN offered: none negotiated.
    let (c, _) = handshake(cfg, client(&pki, BOTH, &[], false)).unwrap();
    assert_eq!(c.alpn_protocol(), None);
}

#[test]
fn tls12_is_allowed_by_default() {
    let pki = Pki::new();
    let (cfg, _) = build_server_config(&pki.opts()).unwrap();
    let (c, _) = handshake(cfg, client(&pki, TLS12, &[b"stun.nat-discovery"], false)).unwrap();
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(c.alpn_protocol(), Some(&b"stun.nat-discovery"[..]));
}

#[test]
fn no_tlsv1_2_means_tls13_only() {
    let pki = Pki::new();
    let opts = TlsOptions { no_tlsv1_2: true, ..pki.opts() };
    let (cfg, _) = build_server_config(&opts).unwrap();
    let err = handshake(cfg.clone(), client(&pki, TLS12, &[], false)).unwrap_err();
    assert!(err.contains("server:"), "{err}");
    let (c, _) = handshake(cfg, client(&pki, BOTH, &[], false)).unwrap();
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));
}

#[test]
fn tls10_and_tls11_are_refused() {
    let pki = Pki::new();
    for (opts, flag) in [
        (TlsOptions { tlsv1: true, ..pki.opts() }, "--tlsv1 "),
        (TlsOptions { tlsv1_1: true, ..pki.opts() }, "--tlsv1_1 "),
    ] {
        let err = build_server_config(&opts).unwrap_err();
        assert!(matches!(err, TlsError::UnsupportedVersion { .. }));
        let msg = err.to_string();
        assert!(msg.contains("rustls supports neither TLS 1.0 nor TLS 1.1"), "{msg}");
        assert!(msg.starts_with(flag), "{msg}");
    }
}

#[test]
fn key_mismatch_names_both_files() {
    let pki = Pki::new();
    let other = KeyPair::generate().unwrap();
    let wrong = pki.write("other.pem", other.serialize_pem());
    let err = build_server_config(&TlsOptions { pkey: Some(wrong.clone()), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&wrong.display().to_string()) && msg.contains(&pki.cert_path.display().to_string()), "{msg}");
}

#[test]
fn missing_and_malformed_files() {
    let pki = Pki::new();
    let err = build_server_config(&TlsOptions { cert: Some("no-such-cert-file.pem".into()), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::NotFound { default_name: false, .. }));
    assert!(!err.is_missing_default());
    let msg = err.to_string();
    assert!(msg.starts_with("cannot find certificate file no-such-cert-file.pem"), "{msg}");

    // Relative names resolve through the search path from the base dir.
    std::fs::create_dir_all(pki.dir.path().join("etc/coturn")).unwrap();
    std::fs::copy(&pki.cert_path, pki.dir.path().join("etc/coturn/rel-cert.pem")).unwrap();
    let opts = TlsOptions { cert: Some("rel-cert.pem".into()), ..pki.opts() };
    assert!(build_server_config(&opts).is_ok());

    // coturn's defaults, absent: the caller may run without TLS.
    if resolve_path(Path::new(DEFAULT_CERT), pki.dir.path()).is_none() {
        let err = build_server_config(&TlsOptions { cert: None, ..pki.opts() }).unwrap_err();
        assert!(err.is_missing_default(), "{err}");
        assert!(err.to_string().contains("turn_server_cert.pem"));
    }

    let junk = pki.write("junk.pem", "hello\n");
    let err = build_server_config(&TlsOptions { cert: Some(junk.clone()), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    assert!(err.to_string().contains(&junk.display().to_string()));
    let err = build_server_config(&TlsOptions { pkey: Some(junk), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");

    let broken = pki.write("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    let err = build_server_config(&TlsOptions { cert: Some(broken), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::BadPem { .. }), "{err}");

    let binary = pki.write("cert.der", [0x30u8, 0x82, 0xff, 0xfe, 0x80]);
    let err = build_server_config(&TlsOptions { cert: Some(binary), ..pki.opts() }).unwrap_err();
    assert!(err.to_string().contains("not a text (PEM) file"), "{err}");

    // A certificate block that is not a certificate.
    let bogus = pki.write("bogus.pem", "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n");
    let err = build_server_config(&TlsOptions { cert: Some(bogus), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::InvalidCertificate { .. }), "{err}");

    // Cert and key in the same file works, as with OpenSSL.
    let both = pki.write("both.pem", format!("{}{}", std::fs::read_to_string(&pki.cert_path).unwrap(), pki.server_key.serialize_pem()));
    assert!(build_server_config(&TlsOptions { cert: Some(both.clone()), pkey: Some(both), ..pki.opts() }).is_ok());
}

/// PEM text of the server key as a PBES2 (PBKDF2-SHA256, AES-256-CBC)
/// encrypted PKCS#8 block.
fn encrypted_pkcs8(pki: &Pki, password: &str) -> String {
    let der = pki.server_key.serialize_der();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7u8; 16]).unwrap();
    let doc = info.encrypt_with_params(params, password).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_bytes());
    let mut out = String::from("-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END ENCRYPTED PRIVATE KEY-----\n");
    out
}

#[test]
fn encrypted_pkcs8_key() {
    let pki = Pki::new();
    let enc = pki.write("enc.pem", encrypted_pkcs8(&pki, "s3cret"));
    let opts = TlsOptions { pkey: Some(enc.clone()), pkey_pwd: Some("s3cret".into()), ..pki.opts() };
    let (cfg, _) = build_server_config(&opts).unwrap();
    handshake(cfg, client(&pki, BOTH, &[], false)).unwrap();

    let err = build_server_config(&TlsOptions { pkey_pwd: Some("wrong".into()), ..opts.clone() }).unwrap_err();
    assert!(matches!(err, TlsError::WrongPassword { .. }), "{err}");
    assert!(err.to_string().contains("wrong --pkey-pwd") && err.to_string().contains(&enc.display().to_string()));

    let err = build_server_config(&TlsOptions { pkey_pwd: None, ..opts }).unwrap_err();
    assert!(matches!(err, TlsError::PasswordRequired { .. }), "{err}");
    assert!(err.to_string().contains("--pkey-pwd"));
}

#[test]
fn unsupported_legacy_encryption_explains_conversion() {
    let pki = Pki::new();
    let p = pki.write(
        "legacy.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: CAMELLIA-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAECAw==\n-----END RSA PRIVATE KEY-----\n",
    );
    let err = build_server_config(&TlsOptions { pkey: Some(p), pkey_pwd: Some("x".into()), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::UnsupportedKey { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("CAMELLIA-256-CBC") && msg.contains("openssl pkcs8 -topk8"), "{msg}");
}

fn have_openssl() -> bool {
    std::process::Command::new("openssl")
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Keys in OpenSSL's traditional encrypted PEM (`Proc-Type: 4,ENCRYPTED`), as
/// old coturn setups have them, load with the right password only.
#[test]
fn legacy_encrypted_keys_from_openssl() {
    if !have_openssl() {
        eprintln!("openssl CLI not found; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(d, &["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "ec.pem"]);
    openssl(d, &["ec", "-in", "ec.pem", "-aes128", "-passout", "pass:secret", "-out", "ec_aes.pem"]);
    openssl(d, &["ec", "-in", "ec.pem", "-des3", "-passout", "pass:secret", "-out", "ec_des3.pem"]);
    openssl(d, &["genrsa", "-traditional", "-aes256", "-passout", "pass:secret", "-out", "rsa_aes.pem", "2048"]);
    openssl(d, &["pkcs8", "-topk8", "-v2", "aes-128-cbc", "-in", "ec.pem", "-passout", "pass:secret", "-out", "ec_pk8.pem"]);
    let ring = rustls::crypto::ring::default_provider();
    for f in ["ec_aes.pem", "ec_des3.pem", "rsa_aes.pem", "ec_pk8.pem"] {
        let text = std::fs::read_to_string(d.join(f)).unwrap();
        if f != "ec_pk8.pem" {
            assert!(text.contains("Proc-Type: 4,ENCRYPTED"), "{f}: {text}");
        }
        let key = pem::load_private_key(&d.join(f), Some("secret")).unwrap_or_else(|e| panic!("{f}: {e}"));
        ring.key_provider.load_private_key(key).unwrap_or_else(|e| panic!("{f}: {e}"));
        let err = pem::load_private_key(&d.join(f), Some("wrong")).unwrap_err();
        assert!(matches!(err, TlsError::WrongPassword { .. }), "{f}: {err}");
    }
    // Full config with an RSA certificate and legacy key.
    openssl(d, &["req", "-x509", "-key", "rsa_aes.pem", "-passin", "pass:secret", "-subj", "/CN=localhost", "-days", "2", "-out", "rsa_cert.pem"]);
    let opts = TlsOptions {
        cert: Some(d.join("rsa_cert.pem")),
        pkey: Some(d.join("rsa_aes.pem")),
        pkey_pwd: Some("secret".into()),
        ..TlsOptions::default()
    };
    build_server_config(&opts).unwrap();
}

#[test]
fn cipher_list_and_curve_reach_the_handshake() {
    let pki = Pki::new();
    let opts = TlsOptions {
        cipher_list: Some("ECDHE-ECDSA-AES128-GCM-SHA256:RC4-SHA".into()),
        ec_curve_name: Some("secp384r1".into()),
        ..pki.opts()
    };
    let (cfg, warnings) = build_server_config(&opts).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("RC4-SHA"));
    let (c, _) = handshake(cfg.clone(), client(&pki, TLS12, &[], false)).unwrap();
    assert_eq!(c.negotiated_cipher_suite().map(|s| s.suite()), Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256));
    assert_eq!(c.negotiated_key_exchange_group().map(|g| g.name()), Some(rustls::NamedGroup::secp384r1));
    // TLS 1.3 keeps its suites; the client's X25519 key share gets a retry.
    let (c, _) = handshake(cfg, client(&pki, BOTH, &[], false)).unwrap();
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(c.negotiated_key_exchange_group().map(|g| g.name()), Some(rustls::NamedGroup::secp384r1));

    // Only RSA suites with an ECDSA certificate: TLS 1.2 cannot succeed.
    let opts = TlsOptions { cipher_list: Some("aRSA".into()), ..pki.opts() };
    let (cfg, _) = build_server_config(&opts).unwrap();
    assert!(handshake(cfg, client(&pki, TLS12, &[], false)).is_err());

    // TLS 1.3 only and every TLS 1.3 suite excluded: refused with context.
    let opts = TlsOptions { no_tlsv1_2: true, cipher_list: Some("HIGH:!TLS_AES_128_GCM_SHA256:!TLS_AES_256_GCM_SHA384:!TLS_CHACHA20_POLY1305_SHA256".into()), ..pki.opts() };
    let err = build_server_config(&opts).unwrap_err();
    assert!(matches!(err, TlsError::Config { .. }), "{err}");
}

#[test]
fn dh_options_warn() {
    let pki = Pki::new();
    let opts = TlsOptions { dh566: true, dh_file: Some("dh.pem".into()), ..pki.opts() };
    let (_, w) = build_server_config(&opts).unwrap();
    assert_eq!(w, vec!["dh566, dh-file: not used: rustls has no finite-field DH (key exchange is ECDHE only)".to_string()]);
}

#[test]
fn ca_file_requires_client_certificates() {
    let pki = Pki::new();
    let opts = TlsOptions { ca_file: Some(pki.ca_path.clone()), ..pki.opts() };
    let (cfg, _) = build_server_config(&opts).unwrap();
    let err = handshake(cfg.clone(), client(&pki, BOTH, &[], false)).unwrap_err();
    assert!(err.contains("server:"), "{err}");
    let (_, s) = handshake(cfg.clone(), client(&pki, TLS12, &[], true)).unwrap();
    assert_eq!(s.peer_certificates().map(|c| c.len()), Some(1));
    handshake(cfg, client(&pki, BOTH, &[], true)).unwrap();

    // A client certificate from another CA is rejected.
    let other = Pki::new();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(other.client_key_der.clone()));
    let foreign = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(BOTH)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(other.client_chain.clone(), key)
        .unwrap();
    let (cfg, _) = build_server_config(&opts).unwrap();
    assert!(handshake(cfg, Arc::new(foreign)).is_err());

    let junk = pki.write("ca-junk.pem", "nothing here\n");
    let err = build_server_config(&TlsOptions { ca_file: Some(junk), ..pki.opts() }).unwrap_err();
    assert!(matches!(err, TlsError::InvalidCa { .. }), "{err}");
    let err = build_server_config(&TlsOptions { ca_file: Some("missing-ca.pem".into()), ..pki.opts() }).unwrap_err();
    assert!(err.to_string().starts_with("cannot find CA file missing-ca.pem"), "{err}");
}

#[test]
fn alpn_is_chosen_in_client_order_and_never_fails_the_handshake() {
    let pki = Pki::new();
    let (configs, _) = build_configs(&pki.opts()).unwrap();
    let offer: &[&[u8]] = &[b"h2", b"stun.nat-discovery", b"stun.turn"];
    let (c, _, _) = handshake_accepting(&configs, client(&pki, BOTH, offer, false)).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"stun.nat-discovery"[..]));
    let (c, _, _) = handshake_accepting(&configs, client(&pki, BOTH, &[b"http/1.1"], false)).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
    // Unknown protocols only: coturn carries on without ALPN...
    let (c, _, _) = handshake_accepting(&configs, client(&pki, BOTH, &[b"h2"], false)).unwrap();
    assert_eq!(c.alpn_protocol(), None);
    // ...while rustls with the combined config aborts (documented difference).
    assert!(handshake(configs.combined(), client(&pki, BOTH, &[b"h2"], false)).is_err());
    // The combined config picks in server order.
    let (c, _) = handshake(configs.combined(), client(&pki, BOTH, offer, false)).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"stun.turn"[..]));

    assert_eq!(choose_alpn([&b"x"[..], b"stun.turn", b"http/1.1"]), Some(Alpn::StunTurn));
    assert_eq!(choose_alpn(std::iter::empty()), None);

    // ALPN off: nothing negotiated whatever the client offers.
    let (configs, _) = build_configs(&TlsOptions { alpn: false, ..pki.opts() }).unwrap();
    let (c, _, _) = handshake_accepting(&configs, client(&pki, BOTH, &[b"stun.turn"], false)).unwrap();
    assert_eq!(c.alpn_protocol(), None);
    let (c, _) = handshake(configs.combined(), client(&pki, BOTH, &[b"stun.turn"], false)).unwrap();
    assert_eq!(c.alpn_protocol(), None);
}

#[test]
fn sniff_real_client_hello() {
    let pki = Pki::new();
    let (configs, _) = build_configs(&pki.opts()).unwrap();
    for versions in [BOTH, TLS12] {
        let (_, _, hello) = handshake_accepting(&configs, client(&pki, versions, &[b"stun.turn"], false)).unwrap();
        assert!(hello.len() > 50);
        assert_eq!(sniff(&hello), Sniff::Tls);
        assert_eq!(sniff(&hello[..3]), Sniff::Tls);
        assert_eq!(sniff(&hello[..1]), Sniff::NeedMore);
    }
}

#[test]
fn reload_swaps_config_and_keeps_old_on_error() {
    let a = Pki::new();
    let b = Pki::new();
    let (holder, _) = ReloadableTls::from_options(&a.opts()).unwrap();
    let old = holder.current();
    let old_set = holder.configs();
    assert!(Arc::ptr_eq(&old, &holder.current()));

    holder.reload(&b.opts()).unwrap();
    let new = holder.current();
    assert!(!Arc::ptr_eq(&old, &new));
    // New connections get B's certificate; a connection that took A's config
    // before the reload still completes with it.
    handshake(new, client(&b, BOTH, &[], false)).unwrap();
    assert!(handshake(holder.current(), client(&a, BOTH, &[], false)).is_err());
    handshake(old, client(&a, BOTH, &[], false)).unwrap();
    handshake_accepting(&old_set, client(&a, BOTH, &[b"stun.turn"], false)).unwrap();

    // A failed reload leaves the current config in place.
    let before = holder.current();
    let bad = TlsOptions { pkey: Some(a.key_path.clone()), ..b.opts() };
    assert!(matches!(holder.reload(&bad), Err(TlsError::KeyMismatch { .. })));
    assert!(Arc::ptr_eq(&before, &holder.current()));
}

/// Interop with a real OpenSSL client over loopback TCP.
mod openssl_interop {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Serve one TLS connection on `listener` with ALPN chosen like coturn,
    /// returning the negotiated version or the handshake error.
    fn serve_one(listener: TcpListener, configs: TlsConfigs) -> std::thread::JoinHandle<Result<ProtocolVersion, String>> {
        std::thread::spawn(move || {
            // Never block for good: the client may fail before connecting.
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut sock = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => return Err(e.to_string()),
                }
            };
            sock.set_nonblocking(false).map_err(|e| e.to_string())?;
            sock.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            sock.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            let mut acceptor = Acceptor::default();
            let accepted = loop {
                if acceptor.read_tls(&mut sock).map_err(|e| e.to_string())? == 0 {
                    return Err("client closed before its ClientHello".into());
                }
                if let Some(a) = acceptor.accept().map_err(|(e, _)| e.to_string())? {
                    break a;
                }
            };
            let cfg = configs.for_client_hello(&accepted.client_hello());
            let mut conn = accepted.into_connection(cfg).map_err(|(e, mut alert)| {
                let _ = alert.write_all(&mut sock);
                e.to_string()
            })?;
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
            }
            let version = conn.protocol_version().ok_or("no version")?;
            // Let the client finish (it closes when stdin is at EOF).
            let mut buf = [0u8; 1024];
            let mut stream = rustls::Stream::new(&mut conn, &mut sock);
            let _ = stream.read(&mut buf);
            conn.send_close_notify();
            let _ = conn.complete_io(&mut sock);
            Ok(version)
        })
    }

    /// Run `openssl s_client` against `port` with `extra` flags, stdin closed,
    /// for at most 10 s; returns (success, stdout+stderr).
    fn s_client(port: u16, extra: &[&str]) -> (bool, String) {
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new("openssl")
            // Not -brief: OpenSSL 3.0's brief output omits the ALPN result.
            .args(["s_client", "-connect", &addr, "-servername", "localhost"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut out);
        }
        (status.is_some_and(|s| s.success()), out)
    }

    fn run(configs: &TlsConfigs, extra: &[&str]) -> (Result<ProtocolVersion, String>, bool, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = serve_one(listener, configs.clone());
        let (ok, out) = s_client(port, extra);
        let res = server.join().unwrap();
        (res, ok, out)
    }

    #[test]
    fn openssl_s_client() {
        if !have_openssl() {
            eprintln!("openssl CLI not found; skipping");
            return;
        }
        let pki = Pki::new();
        let (configs, _) = build_configs(&pki.opts()).unwrap();

        let ca = pki.ca_path.display().to_string();
        let (res, ok, out) = run(&configs, &["-alpn", "stun.turn", "-CAfile", &ca, "-verify_return_error"]);
        assert!(ok, "{out}");
        assert_eq!(res, Ok(ProtocolVersion::TLSv1_3), "{out}");
        assert!(out.contains("New, TLSv1.3,"), "{out}");
        // The chain in --cert reaches the client and verifies against the CA.
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(out.contains("ALPN protocol: stun.turn"), "{out}");

        let (res, ok, out) = run(&configs, &["-tls1_2", "-alpn", "h2,stun.nat-discovery"]);
        assert!(ok, "{out}");
        assert_eq!(res, Ok(ProtocolVersion::TLSv1_2), "{out}");
        assert!(out.contains("New, TLSv1.2,"), "{out}");
        assert!(out.contains("ALPN protocol: stun.nat-discovery"), "{out}");

        let (res, ok, out) = run(&configs, &["-tls1_1"]);
        assert!(!ok, "{out}");
        assert!(res.is_err(), "{out}");
        assert!(!out.contains("New, TLSv1.1,"), "{out}");
    }
}
