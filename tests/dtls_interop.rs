//! DTLS interop: a small DTLS server built on `turnserver::dtls` (one thread,
//! one UDP socket, sessions by peer: the relay loop's shape) against OpenSSL
//! clients: `openssl s_client -dtls1_2` (handshake + echo, RSA and ECDSA
//! certificates) and coturn's `turnutils_uclient -S` (DTLS handshake, then a
//! STUN Allocate answered with a 401 that the client must decrypt and act on).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use turnserver::dtls::{generate_self_signed, DtlsServer, DtlsSession, KeyKind};
use turnserver::stun::attr::AttrType;
use turnserver::stun::builder::MessageBuilder;
use turnserver::stun::message::{Class, Message, MessageType, Method};

fn require_tool(name: &str, package: &str) -> PathBuf {
    let dirs = std::env::var("PATH").unwrap_or_default();
    for dir in dirs.split(':').chain(["/usr/bin", "/usr/local/bin"]) {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("external tool `{name}` not found (Debian package {package}): run ./scripts/test.sh once as root to install the test dependencies");
}

/// What the test server saw.
#[derive(Debug, PartialEq)]
enum Event {
    Handshake { version: String, cipher: String },
    AppData(Vec<u8>),
    Stun { method: &'static str, has_username: bool },
}

struct EchoServer {
    port: u16,
    stop: Arc<AtomicBool>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Binds 127.0.0.1:0 and serves until dropped (or 60 s, whichever first).
    fn start(kind: KeyKind) -> EchoServer {
        let (cert, key) = generate_self_signed(kind).expect("self-signed certificate");
        let server = DtlsServer::new(&cert, &key).expect("DtlsServer");
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let port = sock.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = channel();
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || serve(server, sock, stop2, tx));
        EchoServer { port, stop, events, thread: Some(thread) }
    }

    /// Waits (bounded) for an event matching `pred`; returns everything seen.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&Event) -> bool) -> (bool, Vec<Event>) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(ev) => {
                    let hit = pred(&ev);
                    seen.push(ev);
                    if hit {
                        return (true, seen);
                    }
                }
                Err(_) => break,
            }
        }
        (false, seen)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// STUN Binding -> success with XOR-MAPPED-ADDRESS; other STUN requests -> 401
/// with REALM and NONCE; anything else is echoed.
fn answer(data: &[u8], peer: SocketAddr, tx: &Sender<Event>) -> Vec<u8> {
    let Ok(msg) = Message::parse(data) else {
        let _ = tx.send(Event::AppData(data.to_vec()));
        return data.to_vec();
    };
    let _ = tx.send(Event::Stun {
        method: msg.method().name(),
        has_username: msg.get(AttrType::USERNAME).is_some(),
    });
    let mut out = Vec::new();
    if msg.method() == Method::BINDING {
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Method::BINDING, Class::Success), msg.transaction_id());
        b.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, peer);
        b.finish();
    } else {
        let mut b = MessageBuilder::new(&mut out, MessageType::new(msg.method(), Class::Error), msg.transaction_id());
        b.add_error_code(401, "Unauthorized");
        b.add_raw(AttrType::REALM, b"dtls.test");
        b.add_raw(AttrType::NONCE, b"0123456789abcdef");
        b.finish();
    }
    out
}

fn serve(server: DtlsServer, sock: UdpSocket, stop: Arc<AtomicBool>, tx: Sender<Event>) {
    let started = Instant::now();
    let mut sessions: HashMap<SocketAddr, DtlsSession> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let (mut out, mut app) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
        let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
        let got = sock.recv_from(&mut buf).ok();
        let now = Instant::now();
        if let Some((n, peer)) = got {
            let data = &buf[..n];
            let mut dead = false;
            let mut fresh = false;
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry(peer) {
                // Stateless cookie exchange: a session exists only once a cookie came back.
                match server.accept_datagram(now, peer, data, &mut out) {
                    Ok(Some(s)) => {
                        slot.insert(s);
                        fresh = true;
                    }
                    Ok(None) => {}
                    Err(_) => dead = true,
                }
            }
            if let Some(s) = sessions.get_mut(&peer) {
                let was = s.is_established() && !fresh;
                if !fresh {
                    dead = s.handle_datagram(now, data, &mut out, &mut app).is_err();
                }
                if !was && s.is_established() {
                    let _ = tx.send(Event::Handshake {
                        version: s.version().to_string(),
                        cipher: s.cipher().unwrap_or("").to_string(),
                    });
                }
                for m in app.drain(..) {
                    let reply = answer(&m, peer, &tx);
                    let _ = s.send(&reply, &mut out);
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
                if s.handle_timeout(now, &mut out).is_err() {
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

/// A child process killed (by its own handle) when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `openssl s_client -dtls1_2` against the server, sends one line, and
/// returns its stdout up to (and including) the echoed line, or all of it at
/// the deadline.
fn s_client_echo(port: u16, line: &str) -> (bool, String) {
    let openssl = require_tool("openssl", "openssl");
    let mut child = Reaped(
        Command::new(openssl)
            .args(["s_client", "-dtls1_2", "-ign_eof", "-connect", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openssl s_client"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut sent = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(l) => {
                text.push_str(&l);
                text.push('\n');
                // s_client prints "---" blocks; the session summary ends the handshake output.
                if !sent && l.contains("Verify return code") {
                    if let Some(stdin) = child.0.stdin.as_mut() {
                        let _ = writeln!(stdin, "{line}");
                        let _ = stdin.flush();
                    }
                    sent = true;
                } else if sent && l.trim() == line {
                    return (true, text);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    (false, text)
}

fn check_s_client(kind: KeyKind, cipher_part: &str) {
    let server = EchoServer::start(kind);
    let line = "hello over dtls 1.2";
    let (echoed, text) = s_client_echo(server.port, line);
    assert!(text.contains("Protocol  : DTLSv1.2"), "no DTLSv1.2 in s_client output:\n{text}");
    assert!(
        text.lines().any(|l| l.contains("Cipher is ") && l.contains(cipher_part)),
        "expected a {cipher_part} cipher:\n{text}"
    );
    assert!(echoed, "echo of {line:?} not seen:\n{text}");
    let (hit, seen) = server.wait_for(Duration::from_secs(5), |e| matches!(e, Event::AppData(d) if d.starts_with(line.as_bytes())));
    assert!(hit, "server did not see the line: {seen:?}");
    assert!(
        seen.iter().any(|e| matches!(e, Event::Handshake { version, .. } if version == "DTLSv1.2")),
        "{seen:?}"
    );
}

#[test]
fn openssl_s_client_rsa_handshake_and_echo() {
    check_s_client(KeyKind::Rsa2048, "ECDHE-RSA-");
}

#[test]
fn openssl_s_client_ecdsa_handshake_and_echo() {
    check_s_client(KeyKind::EcdsaP256, "ECDHE-ECDSA-");
}

#[test]
fn uclient_dtls_handshake_then_allocate_answered_with_401() {
    let uclient = require_tool("turnutils_uclient", "coturn");
    let server = EchoServer::start(KeyKind::Rsa2048);
    let _child = Reaped(
        Command::new(uclient)
            .args(["-S", "-y", "-n", "1", "-m", "1", "-l", "100", "-u", "user", "-w", "pass", "-p"])
            .arg(server.port.to_string())
            .arg("127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnutils_uclient"),
    );
    // The client's first Allocate has no USERNAME; one with USERNAME proves it
    // decrypted our 401 (REALM, NONCE) and answered over the same DTLS session.
    let (hit, seen) = server.wait_for(Duration::from_secs(20), |e| {
        matches!(e, Event::Stun { method: "ALLOCATE", has_username: true })
    });
    assert!(hit, "no authenticated Allocate after the 401; server saw: {seen:?}");
    assert!(
        seen.iter().any(|e| matches!(e, Event::Handshake { version, .. } if version == "DTLSv1.2")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|e| matches!(e, Event::Stun { method: "ALLOCATE", has_username: false })), "{seen:?}");
}
