//! In-process tests: an OpenSSL DTLS client over the same datagram pipe.

use super::*;

struct Client {
    stream: SslStream<DatagramPipe>,
}

impl Client {
    fn new() -> Client {
        let mut b = SslContext::builder(SslMethod::dtls()).expect("ctx");
        b.set_verify(SslVerifyMode::NONE);
        b.set_options(SslOptions::NO_QUERY_MTU);
        let mut ssl = Ssl::new(&b.build()).expect("ssl");
        ssl.set_connect_state();
        ssl.set_mtu(1200).expect("mtu");
        Client { stream: SslStream::new(ssl, DatagramPipe::default()).expect("stream") }
    }

    /// Feed datagrams from the server, step the handshake, return datagrams to the server.
    fn step(&mut self, from_server: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        self.stream.get_mut().incoming.extend(from_server);
        match self.stream.do_handshake() {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::WANT_READ => {}
            Err(e) => panic!("client handshake: {e}"),
        }
        self.stream.get_mut().outgoing.drain(..).collect()
    }

    fn done(&self) -> bool {
        self.stream.ssl().is_init_finished()
    }
}

fn addr() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("addr")
}

/// Runs a full handshake; returns (client, session, first server datagrams).
fn handshake(kind: KeyKind, config: &DtlsConfig) -> (Client, DtlsSession, Vec<Vec<u8>>) {
    let (cert, key) = generate_self_signed(kind).expect("cert");
    let server = DtlsServer::with_config(&cert, &key, config).expect("server");
    let mut client = Client::new();
    let mut to_server = client.step(Vec::new());
    assert!(looks_like_dtls_handshake(&to_server[0]));
    let mut session = server.accept(addr()).expect("accept");
    let now = Instant::now();
    let mut first = None;
    for _ in 0..10 {
        let mut out = Vec::new();
        let mut app = Vec::new();
        for d in to_server.drain(..) {
            session.handle_datagram(now, &d, &mut out, &mut app).expect("server datagram");
        }
        assert!(app.is_empty());
        if first.is_none() {
            first = Some(out.clone());
        }
        to_server = client.step(out);
        if client.done() && session.is_established() {
            break;
        }
    }
    assert!(client.done(), "client finished");
    assert!(session.is_established(), "server finished");
    (client, session, first.unwrap_or_default())
}

fn echo_roundtrip(client: &mut Client, session: &mut DtlsSession) {
    client.stream.ssl_write(b"ping over dtls").expect("client write");
    let records: Vec<Vec<u8>> = client.stream.get_mut().outgoing.drain(..).collect();
    let (mut out, mut app) = (Vec::new(), Vec::new());
    for r in &records {
        session.handle_datagram(Instant::now(), r, &mut out, &mut app).expect("app datagram");
    }
    assert_eq!(app, vec![b"ping over dtls".to_vec()]);
    session.send(b"pong", &mut out).expect("send");
    assert_eq!(out.len(), 1);
    client.stream.get_mut().incoming.extend(out);
    let mut buf = [0u8; 64];
    let n = client.stream.ssl_read(&mut buf).expect("client read");
    assert_eq!(&buf[..n], b"pong");
}

#[test]
fn rsa_handshake_cookie_and_echo() {
    let (mut client, mut session, first) = handshake(KeyKind::Rsa2048, &DtlsConfig::default());
    // The first answer to a cookie-less ClientHello is one small HelloVerifyRequest
    // (handshake type 3): no certificate flight to an unverified source.
    assert_eq!(first.len(), 1);
    assert_eq!(first[0][0], 22);
    assert_eq!(first[0][13], 3, "HelloVerifyRequest");
    assert!(first[0].len() < 100, "HVR is {} bytes", first[0].len());
    assert_eq!(session.version(), "DTLSv1.2");
    assert!(session.cipher().is_some_and(|c| c.contains("RSA")), "{:?}", session.cipher());
    echo_roundtrip(&mut client, &mut session);
}

#[test]
fn ecdsa_handshake_and_echo() {
    let (mut client, mut session, _) = handshake(KeyKind::EcdsaP256, &DtlsConfig::default());
    assert!(session.cipher().is_some_and(|c| c.contains("ECDSA")), "{:?}", session.cipher());
    echo_roundtrip(&mut client, &mut session);
}

#[test]
fn handshake_flights_respect_mtu() {
    let config = DtlsConfig { mtu: 400, ..DtlsConfig::default() };
    let (cert, key) = generate_self_signed(KeyKind::Rsa2048).expect("cert");
    let server = DtlsServer::with_config(&cert, &key, &config).expect("server");
    let mut client = Client::new();
    let mut session = server.accept(addr()).expect("accept");
    let mut to_server = client.step(Vec::new());
    let mut largest = 0;
    for _ in 0..10 {
        let (mut out, mut app) = (Vec::new(), Vec::new());
        for d in to_server.drain(..) {
            session.handle_datagram(Instant::now(), &d, &mut out, &mut app).expect("datagram");
        }
        largest = out.iter().map(Vec::len).max().unwrap_or(0).max(largest);
        to_server = client.step(out);
        if session.is_established() && client.done() {
            break;
        }
    }
    assert!(session.is_established());
    assert!(largest <= 400, "largest server datagram {largest} > MTU 400");
}

#[test]
fn lost_flight_is_retransmitted_on_timeout() {
    let (cert, key) = generate_self_signed(KeyKind::EcdsaP256).expect("cert");
    let server = DtlsServer::new(&cert, &key).expect("server");
    let mut client = Client::new();
    let mut session = server.accept(addr()).expect("accept");
    let t0 = Instant::now();
    let (mut out, mut app) = (Vec::new(), Vec::new());
    // ClientHello -> HVR (no timer: the server keeps no flight for unverified peers).
    for d in client.step(Vec::new()) {
        session.handle_datagram(t0, &d, &mut out, &mut app).expect("hello");
    }
    assert_eq!(session.poll_timeout(), None);
    // ClientHello with cookie -> ServerHello..ServerHelloDone, timer armed; "lose" it.
    let hello2 = client.step(std::mem::take(&mut out));
    for d in hello2 {
        session.handle_datagram(t0, &d, &mut out, &mut app).expect("hello2");
    }
    assert!(!out.is_empty());
    let lost = std::mem::take(&mut out);
    let deadline = session.poll_timeout().expect("timer armed");
    assert!(deadline > t0 && deadline <= t0 + Duration::from_secs(2));
    // OpenSSL's timer runs on the real clock: wait it out.
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(50));
    session.handle_timeout(Instant::now(), &mut out).expect("timeout");
    // Same records (new sequence numbers), possibly packed differently into datagrams.
    let bytes = |v: &Vec<Vec<u8>>| v.iter().map(Vec::len).sum::<usize>();
    assert_eq!(bytes(&out), bytes(&lost), "whole flight retransmitted");
    // The retransmitted flight completes the handshake.
    let mut to_server = client.step(out);
    for _ in 0..5 {
        let mut o = Vec::new();
        for d in to_server.drain(..) {
            session.handle_datagram(Instant::now(), &d, &mut o, &mut app).expect("finish");
        }
        to_server = client.step(o);
        if session.is_established() {
            break;
        }
    }
    assert!(session.is_established());
}

#[test]
fn garbage_and_wrong_state_do_not_panic() {
    let (cert, key) = generate_self_signed(KeyKind::EcdsaP256).expect("cert");
    let server = DtlsServer::new(&cert, &key).expect("server");
    let mut session = server.accept(addr()).expect("accept");
    let (mut out, mut app) = (Vec::new(), Vec::new());
    assert!(matches!(session.send(b"x", &mut out), Err(DtlsError::NotReady)));
    for junk in [&[22u8, 0xFE, 0xFD][..], &[0u8; 40][..], &[22u8; 300][..], &[][..]] {
        // Malformed records are dropped or end the session; never a panic.
        let _ = session.handle_datagram(Instant::now(), junk, &mut out, &mut app);
    }
    assert!(app.is_empty());
}

#[test]
fn bad_pem_and_mismatched_key_are_config_errors() {
    let (cert, _) = generate_self_signed(KeyKind::EcdsaP256).expect("cert");
    let (_, other_key) = generate_self_signed(KeyKind::EcdsaP256).expect("cert");
    assert!(matches!(DtlsServer::new(b"nope", b"nope"), Err(DtlsError::Config(_))));
    assert!(matches!(DtlsServer::new(&cert, &other_key), Err(DtlsError::Config(_))));
}

#[test]
fn demux_helpers() {
    assert!(looks_like_dtls(&[22, 0xFE, 0xFD]));
    assert!(!looks_like_dtls(&[0, 1, 0, 0]));
    assert!(!looks_like_dtls(&[0x40, 0, 0, 4]));
    assert!(!looks_like_dtls(&[]));
    assert!(!looks_like_dtls_handshake(&[23; 20]));
}

#[test]
fn stateless_cookie_front_door() {
    let (cert, key) = generate_self_signed(KeyKind::Rsa2048).expect("cert");
    let server = DtlsServer::new(&cert, &key).expect("server");
    let mut client = Client::new();
    let now = Instant::now();
    let mut out = Vec::new();
    // Cookie-less ClientHello: one small HVR, no session.
    let hello = client.step(Vec::new());
    assert_eq!(hello.len(), 1);
    assert!(server.accept_datagram(now, addr(), &hello[0], &mut out).expect("hvr").is_none());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][13], 3, "HelloVerifyRequest");
    // The same ClientHello from another address does not get a session with this cookie.
    let hello2 = client.step(std::mem::take(&mut out));
    let other: SocketAddr = "127.0.0.1:40001".parse().expect("addr");
    let mut junk = Vec::new();
    assert!(server.accept_datagram(now, other, &hello2[0], &mut junk).expect("other").is_none());
    // From the right address the cookie opens a session, ServerHello flight out.
    let mut session = server.accept_datagram(now, addr(), &hello2[0], &mut out).expect("cookie").expect("session");
    assert!(!out.is_empty());
    assert!(session.poll_timeout().is_some());
    let mut to_server = client.step(std::mem::take(&mut out));
    let mut app = Vec::new();
    for _ in 0..5 {
        let mut o = Vec::new();
        for d in to_server.drain(..) {
            session.handle_datagram(now, &d, &mut o, &mut app).expect("finish");
        }
        to_server = client.step(o);
        if session.is_established() && client.done() {
            break;
        }
    }
    assert!(session.is_established() && client.done());
    echo_roundtrip(&mut client, &mut session);
    // Junk never creates a session.
    assert!(server.accept_datagram(now, addr(), &[22u8; 60], &mut out).expect("junk").is_none());
    assert!(server.accept_datagram(now, addr(), b"not dtls", &mut out).expect("junk").is_none());
}

#[test]
fn thread_model_bounds() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync_clone::<DtlsServer>();
    send::<DtlsSession>();
}
