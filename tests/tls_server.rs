//! TLS listeners checked with OpenSSL's own client: versions, ALPN, and a
//! stalled handshake that must not stop anyone else.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{require_tool, run_cmd, PortBlock, TestServer};

fn tls_server(dir: &std::path::Path) -> (TestServer, u16) {
    tls_server_with(dir, &[])
}

fn tls_server_with(dir: &std::path::Path, extra: &[&str]) -> (TestServer, u16) {
    let (cert, key) = common::self_signed_cert(dir);
    let ports = PortBlock::claim();
    let tls_port = ports.spare_port(4);
    drop(ports);
    let mut args = vec![
        "--lt-cred-mech".to_string(),
        "--user=user:pass".to_string(),
        "--realm=example.org".to_string(),
        "--no-tls=false".to_string(),
        format!("--cert={}", cert.display()),
        format!("--pkey={}", key.display()),
        format!("--tls-listening-port={tls_port}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = TestServer::start(&refs);
    (s, tls_port)
}

fn s_client(port: u16, extra: &[&str]) -> String {
    let openssl = require_tool("openssl");
    let connect = format!("127.0.0.1:{port}");
    // Not -brief: only the full report names the negotiated ALPN protocol.
    let mut args = vec!["s_client", "-connect", &connect];
    args.extend_from_slice(extra);
    // s_client reads stdin; run_cmd gives it none, so it ends after the handshake.
    run_cmd(&openssl, &args, Duration::from_secs(15)).all()
}

#[test]
fn tls13_by_default_tls12_allowed_tls11_refused_and_alpn_stun_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (s, port) = tls_server(dir.path());
    let out = s_client(port, &["-alpn", "stun.turn"]);
    assert!(out.contains("New, TLSv1.3, Cipher is"), "{out}");
    assert!(out.contains("ALPN protocol: stun.turn"), "{out}");
    let out = s_client(port, &["-tls1_2", "-alpn", "stun.nat-discovery,stun.turn"]);
    assert!(out.contains("New, TLSv1.2, Cipher is"), "{out}");
    assert!(out.contains("ALPN protocol: stun.nat-discovery"), "the client's first choice wins: {out}");
    // A client offering only an unknown protocol still connects (as coturn), without ALPN.
    let out = s_client(port, &["-alpn", "h2"]);
    assert!(out.contains("New, TLSv1.3, Cipher is") && out.contains("No ALPN negotiated"), "{out}");
    let out = s_client(port, &["-tls1_1"]);
    assert!(!out.contains("Cipher is TLS") && !out.contains("New, TLSv1.1"), "TLS 1.1 must be refused: {out}");
    // TLS is sniffed on the plain port too.
    let out = s_client(s.port(), &[]);
    assert!(out.contains("New, TLSv1.3, Cipher is"), "{out}");
}

#[test]
fn a_stalled_handshake_does_not_block_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, port) = tls_server(dir.path());
    // Half a ClientHello, then silence.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]).unwrap();
    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    let out = s_client(port, &["-alpn", "stun.turn"]);
    assert!(out.contains("New, TLSv1.3, Cipher is"), "{out}");
    drop(idle);
    drop(stalled);
}

#[test]
fn sigusr2_reloads_the_certificate_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (s, port) = tls_server(dir.path());
    let before = s_client(port, &[]);
    assert!(before.contains("CN = localhost"), "{before}");
    // Replace the files the server was started with by a certificate for another name.
    let openssl = require_tool("openssl");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = run_cmd(
        &openssl,
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=reloaded.example",
          "-keyout", key.to_str().unwrap(), "-out", cert.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.success(), "{}", out.describe());
    // SAFETY: a signal to the server process this test started, by its PID.
    unsafe {
        libc::kill(s.pid().unwrap() as i32, libc::SIGUSR2);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !s.log().contains("TLS certificate reloaded") {
        assert!(std::time::Instant::now() < deadline, "no reload:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = s_client(port, &[]);
    assert!(after.contains("CN = reloaded.example"), "{after}");
}

/// A rustls client that takes only the server's raw public key (RFC 7250)
/// and checks it is `expected` (the SubjectPublicKeyInfo of the key file).
#[derive(Debug)]
struct RawKeyVerifier {
    expected: Vec<u8>,
    seen: std::sync::Mutex<Option<Vec<u8>>>,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for RawKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(end_entity.to_vec());
        if end_entity.as_ref() == self.expected.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the expected raw public key".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("raw public keys need TLS 1.3".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(cert.as_ref());
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

#[test]
fn raw_public_keys_to_clients_that_ask_certificate_to_others() {
    use std::io::Read;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let (s, port) = tls_server_with(dir.path(), &["--raw-public-keys"]);
    // The key's SubjectPublicKeyInfo, as OpenSSL writes it.
    let openssl = require_tool("openssl");
    let spki_path = dir.path().join("spki.der");
    let key = dir.path().join("key.pem");
    let out = run_cmd(
        &openssl,
        &["pkey", "-in", key.to_str().unwrap(), "-pubout", "-outform", "DER", "-out", spki_path.to_str().unwrap()],
        Duration::from_secs(15),
    );
    assert!(out.success(), "{}", out.describe());
    let expected = std::fs::read(&spki_path).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(RawKeyVerifier { expected: expected.clone(), seen: Default::default(), provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    // A STUN Binding request over the raw-key TLS session.
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(&[7u8; 12]);
    tls.write_all(&req).unwrap();
    let mut head = [0u8; 20];
    tls.read_exact(&mut head).unwrap();
    assert_eq!(&head[..2], &[0x01, 0x01], "Binding success over TLS with a raw public key");
    assert_eq!(&head[8..20], &[7u8; 12], "same transaction");
    assert_eq!(verifier.seen.lock().unwrap().as_deref(), Some(expected.as_slice()), "the server sent its raw key");
    assert_eq!(tls.conn.peer_certificates().map(|c| c.len()), Some(1));

    // A client that knows nothing of raw keys still gets the certificate.
    let out = s_client(port, &[]);
    assert!(out.contains("New, TLSv1.3, Cipher is") && out.contains("CN = localhost"), "{out}");
    assert!(s.log().contains("RFC 7250 raw public keys supported"), "{}", s.log_tail(20));
}
