//! RFC 8016 mobility through the real binary, driven by coturn's
//! `turnutils_uclient -M`: each client allocates with an empty
//! MOBILITY-TICKET, then reopens its socket on a new source port (closing the
//! old one or not, at random) and sends a Refresh with the ticket twice (the
//! second is a retransmission and must get the same success), then relays
//! ChannelData through `turnutils_peer` from the new port. With two relay
//! threads, several clients' new 5-tuples land on the thread that does not
//! own their allocation, so the hand-over between threads is exercised too.
//! uclient exits with failure when the Refresh is refused ("Cannot complete
//! Refresh" or an error answer), and its counters show whether every
//! message came back.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

#[test]
fn uclient_mobility_moves_to_a_new_port_and_keeps_relaying() {
    let server = TestServer::start(&[
        "--lt-cred-mech",
        "--user=user:pass",
        "--realm=example.org",
        "--allow-loopback-peers",
        "--mobility",
        "--relay-threads=2",
    ]);
    let _peer = start_turnutils_peer(&["127.0.0.1"], server.ports.peer_port());
    let bin = require_tool("turnutils_uclient");
    let args: Vec<String> = [
        "-M", "-u", "user", "-w", "pass", "-m", "4", "-c", "-n", "30", "-l", "120", "-e", "127.0.0.1", "-r",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([server.ports.peer_port().to_string(), "-p".into(), server.port().to_string(), "127.0.0.1".into()])
    .collect();
    let out = run_cmd(&bin, &args, Duration::from_secs(90));
    assert!(!out.timed_out, "uclient -M did not finish\n{}", out.describe());
    assert!(out.success(), "uclient -M failed\n{}", out.describe());
    let stats = parse_uclient(&out.all()).unwrap_or_else(|| panic!("no uclient counters\n{}", out.describe()));
    assert!(stats.send_msgs >= 100, "{stats:?}\n{}", out.describe());
    assert_eq!(stats.recv_msgs, stats.send_msgs, "{stats:?}\n{}", out.describe());
    assert_eq!(stats.lost, 0, "{stats:?}");
}

#[test]
fn uclient_mobility_against_a_server_without_it_fails() {
    let server = TestServer::start(&["--lt-cred-mech", "--user=user:pass", "--realm=example.org", "--allow-loopback-peers"]);
    let _peer = start_turnutils_peer(&["127.0.0.1"], server.ports.peer_port());
    let bin = require_tool("turnutils_uclient");
    let args: Vec<String> = ["-M", "-u", "user", "-w", "pass", "-c", "-n", "5", "-e", "127.0.0.1", "-r"]
        .iter()
        .map(|s| s.to_string())
        .chain([server.ports.peer_port().to_string(), "-p".into(), server.port().to_string(), "127.0.0.1".into()])
        .collect();
    let out = run_cmd(&bin, &args, Duration::from_secs(60));
    assert!(!out.timed_out, "{}", out.describe());
    // The Allocate with a ticket gets 405: uclient gives up.
    assert!(out.all().contains("405"), "no 405 seen\n{}", out.describe());
}

/// A DTLS client (OpenSSL, blocking, one connected UDP socket per session).
struct DtlsClient {
    stream: openssl::ssl::SslStream<Connected>,
}

/// A connected UDP socket as a datagram stream for OpenSSL.
struct Connected(std::net::UdpSocket);

impl std::io::Read for Connected {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.recv(buf)
    }
}

impl std::io::Write for Connected {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl DtlsClient {
    fn connect(server: std::net::SocketAddr) -> DtlsClient {
        use openssl::ssl::{Ssl, SslContext, SslMethod, SslVerifyMode};
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.connect(server).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut ctx = SslContext::builder(SslMethod::dtls()).expect("ctx");
        ctx.set_verify(SslVerifyMode::NONE);
        let mut ssl = Ssl::new(&ctx.build()).expect("ssl");
        ssl.set_mtu(1200).expect("mtu");
        let mut stream = openssl::ssl::SslStream::new(ssl, Connected(sock)).expect("stream");
        stream.connect().expect("DTLS handshake");
        DtlsClient { stream }
    }

    /// Send one message; the first answer with its transaction id.
    fn transact(&mut self, msg: &[u8]) -> Vec<u8> {
        use std::io::Write;
        self.stream.write_all(msg).expect("DTLS write");
        self.recv_matching(|m| m.len() >= 20 && m[8..20] == msg[8..20])
    }

    fn recv_matching(&mut self, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        use std::io::Read;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 2048];
        loop {
            assert!(std::time::Instant::now() < deadline, "no answer over DTLS within 5 s");
            let n = self.stream.read(&mut buf).expect("DTLS read");
            if want(&buf[..n]) {
                return buf[..n].to_vec();
            }
        }
    }
}

/// RFC 8016 over DTLS with our own OpenSSL client (coturn's uclient picks
/// DTLS 1.0 or 1.2 at random per connection and does not retry a failed
/// reconnect, and this server speaks DTLS 1.2 only): allocate with a ticket,
/// then move to new DTLS sessions from new ports, closing the old one first
/// or not, until one landed on the other relay thread and was handed over;
/// the allocation relays through each new session.
#[test]
fn dtls_mobility_hands_the_session_to_the_owning_thread() {
    use turnserver::stun::integrity::long_term_key;
    use turnserver::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId};
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed_cert(dir.path());
    let ports = PortBlock::claim();
    let dtls_port = ports.spare_port(5);
    drop(ports);
    let server = TestServer::start(&[
        "--lt-cred-mech",
        "--user=user:pass",
        "--realm=example.org",
        "--allow-loopback-peers",
        "--mobility",
        "--relay-threads=2",
        "--dtls",
        &format!("--cert={}", cert.display()),
        &format!("--pkey={}", key.display()),
        &format!("--tls-listening-port={dtls_port}"),
    ]);
    let dtls_addr: std::net::SocketAddr = ([127, 0, 0, 1], dtls_port).into();
    let peer = echo_peer();
    let key = long_term_key("user", "example.org", "pass");
    let mut n = 0u32;
    let mut build = |nonce: Option<&str>, method: Method, class: Class, attrs: &dyn Fn(&mut MessageBuilder)| {
        n += 1;
        let mut t = [0x4du8; 12];
        t[..4].copy_from_slice(&n.to_be_bytes());
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, class), TransactionId(t));
        attrs(&mut b);
        if let Some(nonce) = nonce {
            b.add_raw(AttrType::USERNAME, b"user");
            b.add_raw(AttrType::REALM, b"example.org");
            b.add_raw(AttrType::NONCE, nonce.as_bytes());
            b.add_integrity(&key);
        }
        let r = b.finish();
        buf[r].to_vec()
    };
    let code = |a: &[u8]| {
        let m = Message::parse(a).expect("answer");
        match m.class() {
            Class::Success => 0,
            _ => m.error_code().and_then(|r| r.ok()).map(|(c, _)| c).unwrap_or(999),
        }
    };
    let ticket_of = |a: &[u8]| Message::parse(a).expect("answer").get(AttrType::MOBILITY_TICKET).expect("ticket").to_vec();

    let mut c = DtlsClient::connect(dtls_addr);
    let alloc = |b: &mut MessageBuilder| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        b.add_raw(AttrType::MOBILITY_TICKET, &[]);
    };
    let a = c.transact(&build(None, Method::ALLOCATE, Class::Request, &alloc));
    assert_eq!(code(&a), 401);
    let nonce = Message::parse(&a).unwrap().str_attr(AttrType::NONCE).unwrap().unwrap().to_string();
    let a = c.transact(&build(Some(&nonce), Method::ALLOCATE, Class::Request, &alloc));
    assert_eq!(code(&a), 0, "{}", server.log_tail(20));
    let mut ticket = ticket_of(&a);
    let perm = |b: &mut MessageBuilder| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    };
    assert_eq!(code(&c.transact(&build(Some(&nonce), Method::CREATE_PERMISSION, Class::Request, &perm))), 0);

    let mut moves = 0;
    while !server.log().contains("handed to relay thread") {
        assert!(moves < 24, "no move landed on the other relay thread in {moves} moves\n{}", server.log_tail(30));
        moves += 1;
        let mut next = DtlsClient::connect(dtls_addr);
        if moves % 2 == 0 {
            // The old session ends first: the allocation waits for its ticket.
            let _ = c.stream.shutdown();
            drop(c);
            let closed = "kept for a resume with its mobility ticket";
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while server.log().matches(closed).count() < moves / 2 {
                assert!(std::time::Instant::now() < deadline, "{}", server.log_tail(20));
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let t = ticket.clone();
        let refresh = move |b: &mut MessageBuilder| {
            b.add_raw(AttrType::MOBILITY_TICKET, &t);
        };
        let a = next.transact(&build(Some(&nonce), Method::REFRESH, Class::Request, &refresh));
        assert_eq!(code(&a), 0, "move {moves}\n{}", server.log_tail(20));
        ticket = ticket_of(&a);
        // Relayed through the new session: a Send indication to the echo peer
        // comes back as a Data indication.
        let payload = format!("move {moves}");
        let p = payload.clone();
        let send = move |b: &mut MessageBuilder| {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            b.add_raw(AttrType::DATA, p.as_bytes());
        };
        {
            use std::io::Write;
            next.stream.write_all(&build(None, Method::SEND, Class::Indication, &send)).expect("send");
        }
        let data = next.recv_matching(|m| {
            Message::parse(m).is_ok_and(|m| m.method() == Method::DATA && m.get(AttrType::DATA) == Some(payload.as_bytes()))
        });
        assert!(!data.is_empty());
        c = next;
    }
    println!("{moves} moves until one was handed between threads");
    assert!(server.log().contains("(mobility)"), "{}", server.log_tail(20));
}
