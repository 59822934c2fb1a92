//! Limits and policy through the real binary over UDP on loopback:
//! `--max-bps` holding a flow in each direction, `--bps-capacity`,
//! `--unauthorized-ratelimit`, the server's own listener refused as a peer,
//! `--stun-only` / `--no-stun` / `--secure-stun`, `--check-origin-consistency`
//! and `--server-relay`. Every wait is bounded; traffic stays small.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::turn_udp::{build_request, code, new_tid, udp_transport, UdpTurn, LT_FLAGS};
use common::TestServer;
use turnserver::stun::{AttrType, ChannelData, Message, Method};

fn lt_server(extra: &[&str]) -> TestServer {
    let mut flags = LT_FLAGS.to_vec();
    flags.extend_from_slice(extra);
    TestServer::start(&flags)
}

fn peer_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s
}

/// Send `size`-byte datagrams made by `make` through `send` at `rate` bytes
/// per second for `secs`, paced against the clock.
fn paced(rate: u64, size: usize, secs: f64, mut send: impl FnMut()) {
    let interval = Duration::from_secs_f64(size as f64 / rate as f64);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut next = start;
    while next < end {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        send();
        next += interval;
    }
}

/// Bytes of payload `sock` receives until nothing came for 300 ms (at most
/// `limit`), with `payload_of` extracting the payload from a datagram.
fn drain(sock: &UdpSocket, limit: Duration, payload_of: impl Fn(&[u8]) -> usize) -> u64 {
    let mut buf = vec![0u8; 2048];
    let mut got = 0u64;
    let deadline = Instant::now() + limit;
    let mut last = Instant::now();
    while Instant::now() < deadline && last.elapsed() < Duration::from_millis(300) {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            got += payload_of(&buf[..n]) as u64;
            last = Instant::now();
        }
    }
    got
}

#[test]
fn max_bps_holds_a_flow_to_within_ten_percent_each_way() {
    const LIMIT: u64 = 40_000;
    const SECS: f64 = 3.0;
    let s = lt_server(&["--max-bps=40000"]);
    let peer = peer_socket();
    let peer_addr = peer.local_addr().unwrap();
    let mut c = UdpTurn::new(s.addr());
    let relay = c.allocate().unwrap();
    assert_eq!(c.bind_channel(0x4000, peer_addr), 0);
    c.sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();

    // Client → peer at three times the limit. The peer reads in its own
    // thread so its socket buffer never drops anything.
    let reader = std::thread::spawn(move || {
        let got = drain(&peer, Duration::from_secs(10), |d| d.len());
        (peer, got)
    });
    let mut frame = Vec::new();
    ChannelData::encode(0x4000, &[0x5a; 1000], false, &mut frame);
    paced(3 * LIMIT, 1000, SECS, || {
        c.sock.send_to(&frame, s.addr()).unwrap();
    });
    let (peer, up) = reader.join().unwrap();
    let expect = LIMIT as f64 * SECS;
    let ratio = up as f64 / expect;
    assert!((0.9..=1.1).contains(&ratio), "client → peer: {up} bytes in {SECS} s, {ratio:.3} of the limit");

    // Peer → client, same offer; the client counts ChannelData payload.
    let client_sock = c.sock.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        drain(&client_sock, Duration::from_secs(10), |d| ChannelData::parse(d).map_or(0, |cd| cd.data.len()))
    });
    let data = vec![0xa5u8; 1000];
    paced(3 * LIMIT, 1000, SECS, || {
        peer.send_to(&data, relay).unwrap();
    });
    let down = reader.join().unwrap();
    let ratio = down as f64 / expect;
    eprintln!("max-bps {LIMIT}: client → peer {up} B, peer → client {down} B in {SECS} s ({:.3} / {ratio:.3} of the limit)", up as f64 / expect);
    assert!((0.9..=1.1).contains(&ratio), "peer → client: {down} bytes in {SECS} s, {ratio:.3} of the limit");
}

#[test]
fn bandwidth_request_and_bps_capacity() {
    let s = lt_server(&["--max-bps=10000", "--bps-capacity=25000"]);
    let mut clients: Vec<UdpTurn> = (0..4).map(|_| UdpTurn::new(s.addr())).collect();
    let results: Vec<Result<SocketAddr, u16>> = clients.iter_mut().map(|c| c.allocate()).collect();
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(results[3], Err(486), "capacity spent");
    // A client asking for less gets what it asked for, told in BANDWIDTH.
    assert_eq!(clients[0].refresh(0), 0);
    let mut d = UdpTurn::new(s.addr());
    let a = d
        .request(Method::ALLOCATE, |b| {
            udp_transport(b);
            b.add_u32(AttrType::BANDWIDTH, 20);
        })
        .unwrap();
    assert_eq!(code(&a), 0);
    let bw = Message::parse(&a).unwrap().u32_attr(AttrType::BANDWIDTH).unwrap().unwrap();
    assert_eq!(bw, 20, "20 x 128 B/s granted");
    // 10000 + 5000 + 2560 of 25000 granted: the fourth client fits now.
    assert!(clients[3].allocate().is_ok());
}

/// Unsigned Allocates sent in one burst from `sock`; how many got an answer.
fn burst_of_unsigned_allocates(sock: &UdpSocket, server: SocketAddr, n: usize) -> usize {
    for _ in 0..n {
        let m = build_request(Method::ALLOCATE, new_tid(), None, udp_transport);
        sock.send_to(&m, server).unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 1500];
    let mut answers = 0;
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        assert_eq!(code(&buf[..len]), 401);
        answers += 1;
    }
    answers
}

#[test]
fn unauthorized_ratelimit_caps_401s_per_source_ip() {
    let s = lt_server(&["--unauthorized-ratelimit", "--unauthorized-ratelimit-rps=5"]);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let answered = burst_of_unsigned_allocates(&a, s.addr(), 40);
    // The burst may straddle a second boundary: at most two seconds' worth.
    assert!((1..=10).contains(&answered), "{answered} of 40 answered");
    // Another port of the same IP shares the budget; another IP has its own.
    let other_ip = UdpSocket::bind("127.0.0.2:0").unwrap();
    assert!(burst_of_unsigned_allocates(&other_ip, s.addr(), 3) == 3);
    // An authenticated client from the limited IP is still served.
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = UdpTurn::new(s.addr());
    assert!(c.allocate().is_ok());

    // Without the option every request is answered.
    let plain = lt_server(&[]);
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(burst_of_unsigned_allocates(&b, plain.addr(), 40), 40);
}

#[test]
fn the_servers_own_listener_is_refused_as_a_peer() {
    let s = lt_server(&[]);
    let peer = peer_socket();
    let mut c = UdpTurn::new(s.addr());
    c.allocate().unwrap();
    let perm = |c: &mut UdpTurn, p: SocketAddr| {
        c.request(Method::CREATE_PERMISSION, |b| {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, p);
        }).map(|a| code(&a))
    };
    assert_eq!(perm(&mut c, s.addr()), Some(403), "the listener itself");
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", s.addr().port()).parse().unwrap();
    assert_eq!(c.bind_channel(0x4001, s.addr()), 403);
    // The IPv4-mapped spelling of the listener is the same address. The
    // allocation is IPv4, so a v6 peer would be 443; the mapped form is
    // canonicalised first and refused as the listener.
    assert_eq!(perm(&mut c, mapped), Some(403));
    // A loopback peer elsewhere is fine (--allow-loopback-peers).
    assert_eq!(perm(&mut c, peer.local_addr().unwrap()), Some(0));
    // With an allowed range naming it, the listener is reachable.
    let open = lt_server(&["--allowed-peer-ip=127.0.0.1"]);
    let mut c = UdpTurn::new(open.addr());
    c.allocate().unwrap();
    assert_eq!(perm(&mut c, open.addr()), Some(0));
}

/// A Binding request's answer code, or None when nothing came within 700 ms.
fn binding(c: &mut UdpTurn, signed: bool) -> Option<u16> {
    let nonce = if signed { c.nonce.clone() } else { None };
    let m = build_request(Method::BINDING, new_tid(), nonce.as_deref(), |_| {});
    c.transact_rto(&m, Duration::from_millis(200), Duration::from_millis(700)).map(|a| code(&a))
}

#[test]
fn stun_only_no_stun_and_secure_stun() {
    let s = lt_server(&["--stun-only"]);
    let mut c = UdpTurn::new(s.addr());
    assert_eq!(binding(&mut c, false), Some(0));
    let m = build_request(Method::ALLOCATE, new_tid(), None, udp_transport);
    assert_eq!(c.transact_rto(&m, Duration::from_millis(200), Duration::from_millis(700)), None, "TURN ignored");

    let s = lt_server(&["--no-stun"]);
    let mut c = UdpTurn::new(s.addr());
    assert_eq!(binding(&mut c, false), None, "Binding ignored");
    assert!(c.allocate().is_ok());

    let s = lt_server(&["--secure-stun"]);
    let mut c = UdpTurn::new(s.addr());
    assert_eq!(binding(&mut c, false), Some(401));
    assert!(c.nonce.is_some());
    assert_eq!(binding(&mut c, true), Some(0));
}

#[test]
fn check_origin_consistency_and_server_relay() {
    let s = lt_server(&["--check-origin-consistency"]);
    let mut c = UdpTurn::new(s.addr());
    let a = c
        .request(Method::ALLOCATE, |b| {
            udp_transport(b);
            b.add_raw(AttrType::ORIGIN, b"https://app.example");
        })
        .unwrap();
    assert_eq!(code(&a), 0);
    let refresh = |c: &mut UdpTurn, origin: &[u8]| {
        c.request(Method::REFRESH, |b| {
            b.add_u32(AttrType::LIFETIME, 600);
            b.add_raw(AttrType::ORIGIN, origin);
        })
        .map(|a| code(&a))
    };
    assert_eq!(refresh(&mut c, b"https://app.example"), Some(0));
    assert_eq!(refresh(&mut c, b"https://other.example"), Some(441));

    // --server-relay: a peer reaches the client without any permission.
    let s = lt_server(&["--server-relay"]);
    let mut c = UdpTurn::new(s.addr());
    let relay = c.allocate().unwrap();
    let peer = peer_socket();
    peer.send_to(b"from a back end", relay).unwrap();
    c.sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = c.sock.recv_from(&mut buf).expect("Data indication without a permission");
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(m.method(), Method::DATA);
    assert_eq!(m.get(AttrType::DATA).unwrap(), b"from a back end");
}

/// `--stun-only`: a TCP connection that cannot allocate anything is closed
/// after coturn's 3 s, not `--max-allocate-timeout`'s 60.
#[test]
fn stun_only_closes_idle_tcp_connections_after_three_seconds() {
    use std::io::{Read, Write};
    let s = lt_server(&["--stun-only"]);
    let mut t = std::net::TcpStream::connect(s.addr()).unwrap();
    let m = build_request(Method::BINDING, new_tid(), None, |_| {});
    t.write_all(&m).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 512];
    let n = t.read(&mut buf).unwrap();
    assert_eq!(code(&buf[..n]), 0, "Binding answered over TCP");
    let closed = loop {
        match t.read(&mut buf) {
            Ok(0) | Err(_) => break start.elapsed(),
            Ok(_) => {}
        }
    };
    assert!(closed >= Duration::from_millis(2500) && closed <= Duration::from_millis(5500), "closed after {closed:?}");
}
