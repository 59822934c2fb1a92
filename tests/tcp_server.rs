//! Black-box tests of TURN over TCP: framing, padded ChannelData, allocation
//! lifetime tied to the connection, PROXY protocol, idle-connection floods.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::turn_tcp::{code, Got, TcpClient};
use common::TestServer;
use turnserver::stun::{AttrType, ChannelData, Class, Message, Method};

fn server(extra: &[&str]) -> TestServer {
    let mut flags = vec!["--lt-cred-mech", "--user=user:pass", "--realm=example.org", "--allow-loopback-peers"];
    flags.extend_from_slice(extra);
    TestServer::start(&flags)
}

fn allocate_and_bind(c: &mut TcpClient, peer: SocketAddr) {
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 0);
    let a = c.request(Method::CHANNEL_BIND, |b| {
        b.add_u32(AttrType::CHANNEL_NUMBER, 0x4002 << 16);
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    });
    assert_eq!(code(&a), 0);
}

#[test]
fn turn_over_tcp_with_padded_channel_data_and_indications() {
    let s = server(&[]);
    let peer = common::echo_peer();
    let mut c = TcpClient::connect(s.addr());
    let a = c.request(Method::BINDING, |_| {});
    let mapped = Message::parse(&a).unwrap().xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap();
    assert_eq!(mapped, c.s.local_addr().unwrap());
    allocate_and_bind(&mut c, peer);
    // Odd sizes exercise the padding both ways; several frames per write
    // exercise the framing.
    let mut burst = Vec::new();
    for len in 1..=9usize {
        let mut f = Vec::new();
        ChannelData::encode(0x4002, &vec![len as u8; len], true, &mut f);
        burst.extend_from_slice(&f);
    }
    c.s.write_all(&burst).unwrap();
    let mut lens = Vec::new();
    for _ in 1..=9 {
        match c.recv() {
            Got::Channel(0x4002, d) => lens.push(d.len()),
            _ => panic!("expected ChannelData on channel 0x4002"),
        }
    }
    lens.sort();
    assert_eq!(lens, (1..=9).collect::<Vec<_>>());
    // Send indication → Data indication (permission exists through the channel).
    let ind = c.build(Method::SEND, Class::Indication, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        b.add_raw(AttrType::DATA, b"indication");
    });
    c.s.write_all(&ind).unwrap();
    // The echo comes back as ChannelData, since the peer has a channel.
    match c.recv() {
        Got::Channel(0x4002, d) => assert_eq!(d, b"indication"),
        _ => panic!("expected ChannelData"),
    }
}

#[test]
fn closing_the_connection_deletes_the_allocation() {
    let s = server(&[]);
    let peer = common::echo_peer();
    let mut c = TcpClient::connect(s.addr());
    allocate_and_bind(&mut c, peer);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.log().contains("reason: TCP connection closed by client") {
        assert!(Instant::now() < deadline, "allocation not released:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn garbage_on_tcp_closes_only_that_connection() {
    let s = server(&[]);
    let mut bad = TcpStream::connect(s.addr()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    bad.write_all(b"\xff\xff\xff\xffnot stun at all").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(bad.read(&mut buf).unwrap_or(0), 0, "server must close a non-STUN stream");
    let mut c = TcpClient::connect(s.addr());
    let a = c.request(Method::BINDING, |_| {});
    assert_eq!(code(&a), 0);
}

#[test]
fn proxy_protocol_header_sets_the_client_address() {
    let ports = common::PortBlock::claim();
    let proxy_port = ports.spare_port(1);
    drop(ports);
    let _server = server(&[&format!("--tcp-proxy-port={proxy_port}")]);
    for header in [
        b"PROXY TCP4 203.0.113.9 127.0.0.1 40123 3478\r\n".to_vec(),
        {
            // v2, PROXY, TCP4: 203.0.113.10:40124 -> 127.0.0.1:3478
            let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            h.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C, 203, 0, 113, 10, 127, 0, 0, 1]);
            h.extend_from_slice(&40124u16.to_be_bytes());
            h.extend_from_slice(&3478u16.to_be_bytes());
            h
        },
    ] {
        let mut c = TcpClient::connect(SocketAddr::from(([127, 0, 0, 1], proxy_port)));
        c.s.write_all(&header).unwrap();
        let a = c.request(Method::BINDING, |_| {});
        let mapped = Message::parse(&a).unwrap().xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap();
        assert!(mapped.ip().to_string().starts_with("203.0.113."), "mapped {mapped}");
        assert!(mapped.port() == 40123 || mapped.port() == 40124);
    }
}

#[test]
fn a_thousand_idle_connections_do_not_stop_service() {
    let s = server(&["--relay-threads=2"]);
    let idle: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(s.addr()).unwrap()).collect();
    let peer = common::echo_peer();
    let mut c = TcpClient::connect(s.addr());
    allocate_and_bind(&mut c, peer);
    let mut f = Vec::new();
    ChannelData::encode(0x4002, b"still served", true, &mut f);
    c.s.write_all(&f).unwrap();
    match c.recv() {
        Got::Channel(_, d) => assert_eq!(d, b"still served"),
        _ => panic!("expected ChannelData"),
    }
    // The UDP side is served too.
    assert!(common::stun_probe(s.addr(), Duration::from_secs(2)));
    drop(idle);
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A TCP client that stops reading while its peer keeps sending: the server
/// drops what does not fit the connection's bounded queue instead of growing
/// (coturn #1289), and keeps serving others.
#[test]
fn a_slow_tcp_reader_does_not_grow_server_memory() {
    let s = server(&[]);
    let blaster = UdpSocket::bind("127.0.0.1:0").unwrap();
    let blaster_addr = blaster.local_addr().unwrap();
    let mut c = TcpClient::connect(s.addr());
    c.s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    // Allocate and bind a channel to the blaster, then never read again.
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 0);
    let relayed = Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    let a = c.request(Method::CHANNEL_BIND, |b| {
        b.add_u32(AttrType::CHANNEL_NUMBER, 0x4003 << 16);
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, blaster_addr);
    });
    assert_eq!(code(&a), 0);
    let pid = s.pid().unwrap();
    let before = rss_kb(pid);
    let payload = vec![0x5au8; 1000];
    // 100 MB towards a client that reads nothing (bounded in count and time).
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..100_000u32 {
        let _ = blaster.send_to(&payload, relayed);
        if i % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(1));
            assert!(Instant::now() < deadline, "blast took too long");
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kb(pid);
    assert!(after < before + 8 * 1024, "RSS grew from {before} kB to {after} kB");
    // Another client is still served.
    let mut other = TcpClient::connect(s.addr());
    let a = other.request(Method::BINDING, |_| {});
    assert_eq!(code(&a), 0);
    drop(c);
}
