//! TLS listeners checked with OpenSSL's own client: versions, ALPN, and a
//! stalled handshake that must not stop anyone else.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{require_tool, run_cmd, PortBlock, TestServer};

fn tls_server(dir: &std::path::Path) -> (TestServer, u16) {
    let (cert, key) = common::self_signed_cert(dir);
    let ports = PortBlock::claim();
    let tls_port = ports.spare_port(4);
    drop(ports);
    let s = TestServer::start(&[
        "--lt-cred-mech",
        "--user=user:pass",
        "--realm=example.org",
        "--no-tls=false",
        &format!("--cert={}", cert.display()),
        &format!("--pkey={}", key.display()),
        &format!("--tls-listening-port={tls_port}"),
    ]);
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
