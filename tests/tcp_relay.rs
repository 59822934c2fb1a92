//! Black-box tests of RFC 6062 TCP relays: coturn's `turnutils_uclient -T`
//! (client to client through two TCP relays, over TCP, TLS and IPv6), and a
//! raw client driving Connect, ConnectionAttempt and ConnectionBind against
//! real TCP peers: bytes both ways, flow control, and connections that end
//! together.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::turn_tcp::{code, Got, TcpClient};
use common::{parse_uclient, require_tool, run_cmd, CmdOutput, TestServer};
use turnserver::stun::{AttrType, Class, Message, Method};

const LT_FLAGS: &[&str] = &["--lt-cred-mech", "--user=user:pass", "--realm=example.org", "--allow-loopback-peers"];
const UCLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// `turnutils_uclient -T` (implies -t -y -c: pairs of clients connect to each
/// other's TCP relays) with `args`, checking every message came back.
fn uclient_tcp_relay(args: &[&str], port: u16, host: &str, clients: u64) -> CmdOutput {
    let bin = require_tool("turnutils_uclient");
    let mut all: Vec<String> = ["-T", "-n", "20", "-l", "120", "-u", "user", "-w", "pass"].iter().map(|s| s.to_string()).collect();
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["-p".to_string(), port.to_string(), host.to_string()]);
    let out = run_cmd(&bin, &all, UCLIENT_TIMEOUT);
    assert!(!out.timed_out, "uclient {all:?} timed out\n{}", out.describe());
    let stats = parse_uclient(&out.all()).unwrap_or_else(|| panic!("no uclient counters for {all:?}\n{}", out.describe()));
    assert!(out.success(), "uclient {all:?} failed\n{}", out.describe());
    assert_eq!(stats.send_msgs, 20 * clients, "{all:?}: {stats:?}\n{}", out.describe());
    assert_eq!(stats.recv_msgs, stats.send_msgs, "{all:?}: not all relayed: {stats:?}\n{}", out.describe());
    assert_eq!(stats.lost, 0, "{all:?}: {stats:?}");
    out
}

/// Two relay threads, so data connections often land on a thread other than
/// the one owning their CONNECTION-ID and must be handed over.
#[test]
fn uclient_tcp_relay_client_to_client() {
    let mut flags = LT_FLAGS.to_vec();
    flags.push("--relay-threads=2");
    let server = TestServer::start(&flags);
    uclient_tcp_relay(&["-m", "4"], server.port(), "127.0.0.1", 4);
    let log = server.log();
    assert!(log.contains("Local relay addr"), "{log}");
}

#[test]
fn uclient_tcp_relay_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = common::self_signed_cert(dir.path());
    let ports = common::PortBlock::claim();
    let tls_port = ports.spare_port(3);
    drop(ports);
    let cert_flag = format!("--cert={}", cert.display());
    let key_flag = format!("--pkey={}", key.display());
    let tls_flag = format!("--tls-listening-port={tls_port}");
    let mut flags = LT_FLAGS.to_vec();
    flags.extend(["--no-tls=false", "--relay-threads=2", &cert_flag, &key_flag, &tls_flag]);
    let server = TestServer::start(&flags);
    let out = uclient_tcp_relay(&["-S", "-m", "2"], tls_port, "127.0.0.1", 2);
    let all = out.all();
    assert!(all.contains("method=TLSv1.3") || all.contains("method=TLSv1.2"), "no TLS 1.2/1.3 session\n{}", out.describe());
    assert!(!all.contains("method=TLSv1.1"), "{}", out.describe());
    drop(server);
}

#[test]
fn uclient_tcp_relay_over_ipv6() {
    let mut flags = LT_FLAGS.to_vec();
    flags.extend(["--listening-ip=::1", "--relay-ip=::1"]);
    let server = TestServer::start(&flags);
    uclient_tcp_relay(&["-x", "-m", "2"], server.port(), "::1", 2);
    let log = server.log();
    assert!(log.contains("IPv6. Local relay addr: [::1]:"), "no IPv6 TCP relay\n{log}");
}

// ------------------------------------------------------------ raw client

fn tcp_allocate(c: &mut TcpClient) -> SocketAddr {
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
    });
    assert_eq!(code(&a), 0, "TCP allocate failed");
    Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap()
}

fn permit(c: &mut TcpClient, peer: SocketAddr) {
    let a = c.request(Method::CREATE_PERMISSION, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    });
    assert_eq!(code(&a), 0);
}

/// A new connection bound to `id` with ConnectionBind; afterwards it is a
/// raw pipe. Also returns the pipe bytes read along with the answer.
fn data_connection(server: SocketAddr, id: u32) -> (TcpStream, Vec<u8>) {
    let mut d = TcpClient::connect(server);
    let a = d.request(Method::CONNECTION_BIND, |b| {
        b.add_u32(AttrType::CONNECTION_ID, id);
    });
    assert_eq!(code(&a), 0, "ConnectionBind failed");
    (d.s, d.dec.peek().to_vec())
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn read_exact_timeout(s: &mut TcpStream, n: usize) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// The other end closes: reads end with EOF (or a reset) within the timeout.
fn assert_closed(s: &mut TcpStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{what}: still open ({e})"),
        }
        assert!(Instant::now() < deadline, "{what}: still open");
    }
}

#[test]
fn connect_pipes_bytes_both_ways_with_flow_control() {
    let server = TestServer::start(LT_FLAGS);
    // A small fixed receive buffer on the peer (inherited by the accepted
    // socket) keeps the kernel from soaking up the flow-control test.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.listen(8).unwrap();
    let listener: TcpListener = sock.into();
    let peer_addr = listener.local_addr().unwrap();
    let mut c = TcpClient::connect(server.addr());
    let relayed = tcp_allocate(&mut c);
    permit(&mut c, peer_addr);
    let a = c.request(Method::CONNECT, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer_addr);
    });
    assert_eq!(code(&a), 0, "Connect failed");
    let id = Message::parse(&a).unwrap().u32_attr(AttrType::CONNECTION_ID).unwrap().unwrap();
    let (mut peer, from) = listener.accept().unwrap();
    assert_eq!(from, relayed, "the peer sees the relayed address");
    // Connecting again to the same peer: 446.
    let a = c.request(Method::CONNECT, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer_addr);
    });
    assert_eq!(code(&a), 446);

    // The peer talks first: the server holds it until the bind.
    peer.write_all(b"early bytes").unwrap();
    let (mut data, mut got) = data_connection(server.addr(), id);
    got.extend(read_exact_timeout(&mut data, 11 - got.len()));
    assert_eq!(got, b"early bytes");

    // 48 MB (more than the kernel buffers of both hops hold) client -> peer
    // while the peer does not read for a second: the
    // writer is held back by flow control, then everything arrives intact.
    let up = pattern(48 << 20, 1);
    let mut writer = data.try_clone().unwrap();
    let sent = up.clone();
    let t = std::thread::spawn(move || writer.write_all(&sent).map(|_| ()));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!t.is_finished(), "48 MB went nowhere without the peer reading: not flow-controlled");
    assert_eq!(read_exact_timeout(&mut peer, up.len()), up);
    t.join().unwrap().unwrap();
    // And back.
    let down = pattern(3 << 20, 7);
    let mut pw = peer.try_clone().unwrap();
    let sent = down.clone();
    let t = std::thread::spawn(move || pw.write_all(&sent).map(|_| ()));
    assert_eq!(read_exact_timeout(&mut data, down.len()), down);
    t.join().unwrap().unwrap();

    // The peer closes: the client's data connection follows; the control
    // connection stays usable.
    drop(peer);
    assert_closed(&mut data, "client data connection after the peer closed");
    let a = c.request(Method::REFRESH, |b| {
        b.add_u32(AttrType::LIFETIME, 600);
    });
    assert_eq!(code(&a), 0);
}

#[test]
fn peer_connection_attempt_and_control_close() {
    let server = TestServer::start(&[LT_FLAGS, &["--relay-threads=2"]].concat());
    let mut c = TcpClient::connect(server.addr());
    let relayed = tcp_allocate(&mut c);

    // Without a permission the relay drops the peer.
    let mut stranger = TcpStream::connect_timeout(&relayed, Duration::from_secs(3)).unwrap();
    assert_closed(&mut stranger, "peer without permission");

    permit(&mut c, "127.0.0.1:1".parse().unwrap());
    let mut peer = TcpStream::connect_timeout(&relayed, Duration::from_secs(3)).unwrap();
    let Got::Stun(ind) = c.recv() else { panic!("expected ConnectionAttempt") };
    let ind = Message::parse(&ind).unwrap();
    assert_eq!((ind.method(), ind.class()), (Method::CONNECTION_ATTEMPT, Class::Indication));
    assert_eq!(ind.xor_address(AttrType::XOR_PEER_ADDRESS), Some(Ok(peer.local_addr().unwrap())));
    let id = ind.u32_attr(AttrType::CONNECTION_ID).unwrap().unwrap();

    let (mut data, early) = data_connection(server.addr(), id);
    assert!(early.is_empty());
    data.write_all(b"hello peer").unwrap();
    assert_eq!(read_exact_timeout(&mut peer, 10), b"hello peer");
    peer.write_all(b"hello client").unwrap();
    assert_eq!(read_exact_timeout(&mut data, 12), b"hello client");

    // A second ConnectionBind for the same id is refused.
    let mut again = TcpClient::connect(server.addr());
    let a = again.request(Method::CONNECTION_BIND, |b| {
        b.add_u32(AttrType::CONNECTION_ID, id);
    });
    assert_eq!(code(&a), 400);

    // The control connection ends the allocation and every data connection.
    drop(c);
    assert_closed(&mut data, "client data connection after the control connection closed");
    assert_closed(&mut peer, "peer connection after the control connection closed");
}

#[test]
fn connect_failures_and_refusals() {
    let server = TestServer::start(LT_FLAGS);
    let mut c = TcpClient::connect(server.addr());
    tcp_allocate(&mut c);
    // Nobody listens there: 447.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let a = c.request(Method::CONNECT, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, closed);
    });
    assert_eq!(code(&a), 447);
    // ChannelBind makes no sense on a TCP allocation: 400.
    let a = c.request(Method::CHANNEL_BIND, |b| {
        b.add_u32(AttrType::CHANNEL_NUMBER, 0x4000 << 16);
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, closed);
    });
    assert_eq!(code(&a), 400);
    // An unknown CONNECTION-ID: 400.
    let mut d = TcpClient::connect(server.addr());
    let a = d.request(Method::CONNECTION_BIND, |b| {
        b.add_u32(AttrType::CONNECTION_ID, 12345);
    });
    assert_eq!(code(&a), 400);

    // --no-tcp-relay: 442.
    let server = TestServer::start(&[LT_FLAGS, &["--no-tcp-relay"]].concat());
    let mut c = TcpClient::connect(server.addr());
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
    });
    assert_eq!(code(&a), 442);
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 0, "UDP relays still work with --no-tcp-relay");
}

/// Bytes `s` delivers between `from` and `to` after its first byte (reading
/// until `to` or 10 s).
fn bytes_in_window(s: &mut TcpStream, from: Duration, to: Duration) -> u64 {
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut first, mut counted) = (None::<Instant>, 0u64);
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => 0,
        };
        let start = *first.get_or_insert_with(Instant::now);
        let at = start.elapsed();
        if at >= to {
            break;
        }
        if at >= from {
            counted += n as u64;
        }
    }
    counted
}

/// `--max-bps` holds an RFC 6062 pipe in each direction: the reader side is
/// paused when over budget, TCP flow control slows the writer, nothing lost.
#[test]
fn tcp_relay_pipes_are_held_to_max_bps() {
    const RATE: u64 = 1_000_000;
    let server = TestServer::start(&[LT_FLAGS, &["--max-bps=1000000"]].concat());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer_addr = listener.local_addr().unwrap();
    let mut c = TcpClient::connect(server.addr());
    tcp_allocate(&mut c);
    permit(&mut c, peer_addr);
    let a = c.request(Method::CONNECT, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer_addr);
    });
    assert_eq!(code(&a), 0, "Connect failed");
    let id = Message::parse(&a).unwrap().u32_attr(AttrType::CONNECTION_ID).unwrap().unwrap();
    let (peer, _) = listener.accept().unwrap();
    let (data, _) = data_connection(server.addr(), id);
    let window = (Duration::from_millis(500), Duration::from_millis(3500));
    let mut rates = Vec::new();
    for (mut w, mut reader) in [(data.try_clone().unwrap(), peer.try_clone().unwrap()), (peer.try_clone().unwrap(), data.try_clone().unwrap())] {
        let reader = &mut reader;
        // More than 3.5 s worth, so the writer is always ahead of the limit.
        let t = std::thread::spawn(move || {
            let chunk = pattern(64 * 1024, 3);
            for _ in 0..80 {
                if w.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let got = bytes_in_window(reader, window.0, window.1);
        let rate = got as f64 / (window.1 - window.0).as_secs_f64();
        rates.push(rate / RATE as f64);
        // Let the writer finish: drain the rest.
        reader.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(20);
        while !t.is_finished() && Instant::now() < deadline {
            let _ = reader.read(&mut buf);
        }
        while reader.read(&mut buf).is_ok_and(|n| n > 0) {}
        t.join().unwrap();
    }
    eprintln!("TCP relay at --max-bps={RATE}: client -> peer {:.3}, peer -> client {:.3} of the limit", rates[0], rates[1]);
    for r in rates {
        assert!((0.9..=1.1).contains(&r), "{r:.3} of the limit");
    }
}
