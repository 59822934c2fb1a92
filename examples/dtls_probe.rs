//! DTLS 1.2 server spike: checks candidate DTLS stacks against OpenSSL clients.
//!
//! ```text
//! cargo run --example dtls_probe --features dtls-probe-webrtc -- webrtc PORT [CERT.der KEY.pem]
//! cargo run --example dtls_probe -- openssl PORT [CERT.pem KEY.pem]
//! ```
//!
//! Both modes answer every datagram of application data the same way: a STUN
//! Binding request gets a success with XOR-MAPPED-ADDRESS, any other STUN
//! request gets a 401 with REALM and NONCE (what a TURN server says to an
//! unauthenticated Allocate), anything else is echoed back. Each step is
//! logged on stderr so a run against `openssl s_client -dtls1_2` or
//! `turnutils_uclient -S` shows how far the peer got.

use std::net::SocketAddr;

use turnserver::stun::attr::AttrType;
use turnserver::stun::builder::MessageBuilder;
use turnserver::stun::message::{Class, Message, MessageType, Method};

/// The reply the probe sends for one decrypted application datagram.
fn answer(data: &[u8], peer: SocketAddr) -> Vec<u8> {
    if !Message::is_stun(data) {
        eprintln!("probe: {peer}: app data {} bytes (not STUN), echoing", data.len());
        return data.to_vec();
    }
    let msg = match Message::parse(data) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("probe: {peer}: bad STUN ({e}), echoing");
            return data.to_vec();
        }
    };
    let user = if msg.get(AttrType::USERNAME).is_some() { " with USERNAME (client read our 401)" } else { "" };
    eprintln!("probe: {peer}: STUN {} {:?} over DTLS{user}", msg.method().name(), msg.class());
    let mut out = Vec::new();
    if msg.method() == Method::BINDING {
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Method::BINDING, Class::Success), msg.transaction_id());
        b.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, peer);
        b.finish();
    } else {
        let mut b = MessageBuilder::new(&mut out, MessageType::new(msg.method(), Class::Error), msg.transaction_id());
        b.add_error_code(401, "Unauthorized");
        b.add_raw(AttrType::REALM, b"probe.realm");
        b.add_raw(AttrType::NONCE, b"0123456789abcdef");
        b.finish();
    }
    out
}

fn usage() -> ! {
    eprintln!("usage: dtls_probe (webrtc|openssl) PORT [CERT KEY]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        usage();
    }
    let port: u16 = args[2].parse().unwrap_or_else(|_| usage());
    let files = if args.len() >= 5 { Some((args[3].clone(), args[4].clone())) } else { None };
    match args[1].as_str() {
        "webrtc" => webrtc_mode(port, files),
        "openssl" => openssl_mode(port, files),
        _ => usage(),
    }
}

// ------------------------------------------------------- candidate A: webrtc-dtls

#[cfg(not(feature = "dtls-probe-webrtc"))]
fn webrtc_mode(_port: u16, _files: Option<(String, String)>) {
    eprintln!("probe: rebuild with --features dtls-probe-webrtc for the webrtc-dtls mode");
    std::process::exit(2)
}

#[cfg(feature = "dtls-probe-webrtc")]
fn webrtc_mode(port: u16, files: Option<(String, String)>) {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("probe: tokio runtime: {e}");
            std::process::exit(1)
        }
    };
    if let Err(e) = rt.block_on(webrtc_serve(port, files)) {
        eprintln!("probe: webrtc-dtls server failed: {e}");
        std::process::exit(1)
    }
}

#[cfg(feature = "dtls-probe-webrtc")]
async fn webrtc_serve(port: u16, files: Option<(String, String)>) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use webrtc_dtls::config::{Config, ExtendedMasterSecretType};
    use webrtc_dtls::crypto::{Certificate, CryptoPrivateKey};
    use webrtc_dtls::listener::listen;
    use webrtc_util::conn::Listener;

    let certificate = match files {
        None => Certificate::generate_self_signed(vec!["localhost".to_owned()])?,
        Some((cert_der, key_pem)) => {
            // An externally made certificate (e.g. `openssl req -newkey rsa:2048`):
            // DER certificate + PKCS#8 PEM key, the key parsed by rcgen (ring).
            let der = std::fs::read(cert_der)?;
            let key_pem = std::fs::read_to_string(key_pem)?;
            let kp = rcgen::KeyPair::from_pem(&key_pem)?;
            Certificate {
                certificate: vec![der.into()],
                private_key: CryptoPrivateKey::from_key_pair(&kp)?,
            }
        }
    };
    let cfg = Config {
        certificates: vec![certificate],
        extended_master_secret: ExtendedMasterSecretType::Request,
        ..Default::default()
    };
    let listener = Arc::new(listen(format!("127.0.0.1:{port}"), cfg).await?);
    eprintln!("probe: webrtc-dtls listening on 127.0.0.1:{port}");
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // A failed handshake surfaces here; keep serving.
                eprintln!("probe: accept/handshake failed: {e}");
                continue;
            }
        };
        eprintln!("probe: {peer}: DTLS handshake complete (webrtc-dtls)");
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                match conn.recv(&mut buf).await {
                    Ok(n) => {
                        let reply = answer(&buf[..n], peer);
                        if let Err(e) = conn.send(&reply).await {
                            eprintln!("probe: {peer}: send: {e}");
                            break;
                        }
                    }
                    Err(e) => {
                        eprintln!("probe: {peer}: closed: {e}");
                        break;
                    }
                }
            }
        });
    }
}

// ------------------------------------------------------- candidate B: openssl

/// Candidate B through the library module: one thread, one socket, a map of
/// sessions by peer address: the same shape a relay thread's loop would have.
fn openssl_mode(port: u16, files: Option<(String, String)>) {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    use turnserver::dtls::{generate_self_signed, DtlsServer, DtlsSession, KeyKind};

    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("probe: {what}: {e}");
        std::process::exit(1)
    };
    let (cert, key) = match files {
        Some((c, k)) => (
            std::fs::read(&c).unwrap_or_else(|e| fail(&c, &e)),
            std::fs::read(&k).unwrap_or_else(|e| fail(&k, &e)),
        ),
        None => generate_self_signed(KeyKind::Rsa2048).unwrap_or_else(|e| fail("certificate", &e)),
    };
    let server = DtlsServer::new(&cert, &key).unwrap_or_else(|e| fail("DtlsServer", &e));
    let sock = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap_or_else(|e| fail("bind", &e));
    eprintln!("probe: openssl DTLS listening on 127.0.0.1:{port}");
    let mut sessions: HashMap<SocketAddr, DtlsSession> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let (mut out, mut app) = (Vec::new(), Vec::new());
    loop {
        // Next timer among sessions bounds the wait (a real loop uses its timer wheel).
        let now = Instant::now();
        let wait = sessions
            .values()
            .filter_map(|s| s.poll_timeout())
            .min()
            .map(|t| t.saturating_duration_since(now).max(Duration::from_millis(1)))
            .unwrap_or(Duration::from_secs(1));
        let _ = sock.set_read_timeout(Some(wait));
        let now_or_peer = match sock.recv_from(&mut buf) {
            Ok((n, peer)) => Some((n, peer)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => None,
            Err(e) => fail("recv", &e),
        };
        let now = Instant::now();
        if let Some((n, peer)) = now_or_peer {
            let data = &buf[..n];
            let mut fresh = false;
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry(peer) {
                // Stateless cookie exchange: no state until the peer returns our cookie.
                match server.accept_datagram(now, peer, data, &mut out) {
                    Ok(Some(s)) => {
                        eprintln!("probe: {peer}: cookie verified, session created");
                        slot.insert(s);
                        fresh = true;
                    }
                    Ok(None) => eprintln!("probe: {peer}: {n} bytes, answered {} datagram(s), no state kept", out.len()),
                    Err(e) => eprintln!("probe: {peer}: {e}"),
                }
            }
            let mut dead = false;
            if let Some(s) = sessions.get_mut(&peer) {
                let was = s.is_established() && !fresh;
                if fresh {
                    // accept_datagram already consumed this datagram.
                } else if let Err(e) = s.handle_datagram(now, data, &mut out, &mut app) {
                    eprintln!("probe: {peer}: {e}");
                    dead = true;
                }
                if !was && s.is_established() {
                    eprintln!(
                        "probe: {peer}: DTLS handshake complete (openssl) {} {}",
                        s.version(),
                        s.cipher().unwrap_or("?")
                    );
                }
                for m in app.drain(..) {
                    let reply = answer(&m, peer);
                    if let Err(e) = s.send(&reply, &mut out) {
                        eprintln!("probe: {peer}: send: {e}");
                    }
                }
            }
            for d in out.drain(..) {
                let _ = sock.send_to(&d, peer);
            }
            if dead {
                sessions.remove(&peer);
            }
        }
        let mut dead = Vec::new();
        for (peer, s) in sessions.iter_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                if let Err(e) = s.handle_timeout(now, &mut out) {
                    eprintln!("probe: {peer}: {e}");
                    dead.push(*peer);
                }
                for d in out.drain(..) {
                    let _ = sock.send_to(&d, *peer);
                }
            }
        }
        for p in dead {
            sessions.remove(&p);
        }
    }
}
