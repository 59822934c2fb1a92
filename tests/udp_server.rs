//! Black-box tests of the `turnserver` binary over UDP on loopback, driven by
//! a small client built on the crate's codec: Binding options, the whole TURN
//! flow with a real UDP echo peer, threads, junk input, pid file, logs and
//! shutdown time.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{PortBlock, TestServer};
use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{AttrType, ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const REALM: &str = "example.org";

struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    user: String,
    pass: String,
    nonce: Option<String>,
    n: u32,
}

impl Client {
    fn new(server: SocketAddr) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Client { sock, server, user: "user".into(), pass: "pass".into(), nonce: None, n: 0 }
    }

    fn tid(&mut self) -> TransactionId {
        self.n += 1;
        let mut t = [0x42u8; 12];
        t[..4].copy_from_slice(&self.n.to_be_bytes());
        TransactionId(t)
    }

    fn build(&mut self, method: Method, class: Class, sign: bool, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let tid = self.tid();
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, class), tid);
        attrs(&mut b);
        if sign {
            if let Some(n) = self.nonce.clone() {
                b.add_raw(AttrType::USERNAME, self.user.as_bytes());
                b.add_raw(AttrType::REALM, REALM.as_bytes());
                b.add_raw(AttrType::NONCE, n.as_bytes());
                b.add_integrity(&long_term_key(&self.user, REALM, &self.pass));
            }
        }
        let r = b.finish();
        buf[r].to_vec()
    }

    fn recv(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let (n, _) = self.sock.recv_from(&mut buf).expect("answer from server");
        buf.truncate(n);
        buf
    }

    /// Send a request and wait for the answer with the same transaction id.
    fn transact(&mut self, msg: &[u8]) -> Vec<u8> {
        self.sock.send_to(msg, self.server).unwrap();
        loop {
            let a = self.recv();
            if a.len() >= 20 && a[8..20] == msg[8..20] {
                if let Ok(m) = Message::parse(&a) {
                    if let Some(Ok(n)) = m.str_attr(AttrType::NONCE) {
                        self.nonce = Some(n.to_string());
                    }
                }
                return a;
            }
        }
    }

    fn request(&mut self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let m = self.build(method, Class::Request, true, attrs);
        self.transact(&m)
    }

    /// ChannelBind `channel` to `peer`; the answer's error code (0 = success).
    fn bind_channel(&mut self, channel: u16, peer: SocketAddr) -> u16 {
        let a = self.request(Method::CHANNEL_BIND, |b| {
            b.add_u32(AttrType::CHANNEL_NUMBER, u32::from(channel) << 16);
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        });
        code(&a)
    }

    fn allocate(&mut self) -> SocketAddr {
        let a = self.request(Method::ALLOCATE, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        if code(&a) == 401 {
            let a = self.request(Method::ALLOCATE, |b| {
                b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            });
            assert_eq!(code(&a), 0, "allocate");
            return Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap();
        }
        assert_eq!(code(&a), 0, "allocate");
        Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap()
    }
}

fn code(a: &[u8]) -> u16 {
    let m = Message::parse(a).unwrap();
    match m.class() {
        Class::Success => 0,
        _ => m.error_code().unwrap().unwrap().0,
    }
}

fn lt_server(extra: &[&str]) -> TestServer {
    let mut flags = vec!["--lt-cred-mech", "--user=user:pass", "--realm=example.org", "--allow-loopback-peers"];
    flags.extend_from_slice(extra);
    TestServer::start(&flags)
}

#[test]
fn binding_default_answer_is_xor_mapped_only() {
    let s = lt_server(&[]);
    let mut c = Client::new(s.addr());
    let m = c.build(Method::BINDING, Class::Request, false, |_| {});
    let a = c.transact(&m);
    let msg = Message::parse(&a).unwrap();
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.xor_address(AttrType::XOR_MAPPED_ADDRESS).unwrap().unwrap(), c.sock.local_addr().unwrap());
    assert!(msg.get(AttrType::MAPPED_ADDRESS).is_none());
    assert!(msg.get(AttrType::SOFTWARE).is_none());
    assert!(msg.get(AttrType::FINGERPRINT).is_none());
}

#[test]
fn binding_options_add_mapped_software_fingerprint() {
    let s = lt_server(&["--stun-backward-compatibility", "--software-attribute", "--fingerprint"]);
    let mut c = Client::new(s.addr());
    let m = c.build(Method::BINDING, Class::Request, false, |_| {});
    let a = c.transact(&m);
    let msg = Message::parse(&a).unwrap();
    assert_eq!(msg.address(AttrType::MAPPED_ADDRESS).unwrap().unwrap(), c.sock.local_addr().unwrap());
    assert!(msg.str_attr(AttrType::SOFTWARE).unwrap().unwrap().starts_with("turnserver-rs"));
    assert_eq!(msg.check_fingerprint(), Some(true));
}

#[test]
fn turn_flow_with_channels_and_indications_through_real_sockets() {
    let s = lt_server(&["-v"]);
    let peer = common::echo_peer();
    let mut c = Client::new(s.addr());
    let relayed = c.allocate();
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    assert!(relayed.port() >= s.ports.min_relay_port() && relayed.port() <= s.ports.max_relay_port());

    // Send indication needs a permission.
    let a = c.request(Method::CREATE_PERMISSION, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    });
    assert_eq!(code(&a), 0);
    let ind = c.build(Method::SEND, Class::Indication, false, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        b.add_raw(AttrType::DATA, b"via-send");
    });
    c.sock.send_to(&ind, s.addr()).unwrap();
    let d = c.recv();
    let m = Message::parse(&d).unwrap();
    assert_eq!((m.method(), m.class()), (Method::DATA, Class::Indication));
    assert_eq!(m.get(AttrType::DATA).unwrap(), b"via-send");
    assert_eq!(m.xor_address(AttrType::XOR_PEER_ADDRESS).unwrap().unwrap(), peer);

    // Channel both ways.
    assert_eq!(c.bind_channel(0x4001, peer), 0);
    for i in 0..50u32 {
        let mut f = Vec::new();
        let payload = format!("frame-{i}");
        ChannelData::encode(0x4001, payload.as_bytes(), false, &mut f);
        c.sock.send_to(&f, s.addr()).unwrap();
        let back = c.recv();
        let cd = ChannelData::parse(&back).unwrap();
        assert_eq!((cd.channel, cd.data), (0x4001, payload.as_bytes()));
    }

    // A denied peer: 403 (multicast with --no-multicast-peers is not set here;
    // link-local is always denied).
    let a = c.request(Method::CREATE_PERMISSION, |b| {
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, "169.254.0.9:9".parse().unwrap());
    });
    assert_eq!(code(&a), 403);

    // Refresh 0 deletes; the log has coturn's session lines.
    let a = c.request(Method::REFRESH, |b| {
        b.add_u32(AttrType::LIFETIME, 0);
    });
    assert_eq!(code(&a), 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.log().contains("closed (2nd stage)") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = s.log();
    for needle in ["Local relay addr: 127.0.0.1:", ": new, realm=<example.org>, username=<user>, lifetime=600", "usage: realm=<example.org>, username=<user>, rp=", "closed (2nd stage), user <user> realm <example.org>", "delete: realm=<example.org>, username=<user>"] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
    // coturn 4.17's line shape: ISO timestamp with ms and zone, then the level.
    let line = log.lines().find(|l| l.contains(": new, realm=")).unwrap();
    let mut parts = line.splitn(3, ' ');
    let ts = parts.next().unwrap();
    assert!(ts.len() >= 28 && ts.contains('T') && ts.contains('.') && ts.contains('+'), "timestamp {ts}");
    assert_eq!(parts.next().unwrap(), "INFO");
}

#[test]
fn wrong_password_is_refused() {
    let s = lt_server(&[]);
    let mut c = Client::new(s.addr());
    c.pass = "nope".into();
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 401);
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 401);
}

#[test]
fn many_clients_over_several_threads_each_keep_their_session() {
    let s = lt_server(&["--relay-threads=4"]);
    let peer = common::echo_peer();
    let mut clients: Vec<Client> = (0..24).map(|_| Client::new(s.addr())).collect();
    for c in clients.iter_mut() {
        c.allocate();
        assert_eq!(c.bind_channel(0x4000, peer), 0);
    }
    for round in 0..5 {
        for c in clients.iter_mut() {
            let mut f = Vec::new();
            ChannelData::encode(0x4000, format!("r{round}").as_bytes(), false, &mut f);
            c.sock.send_to(&f, s.addr()).unwrap();
            let cd_bytes = c.recv();
            assert_eq!(ChannelData::parse(&cd_bytes).unwrap().data, format!("r{round}").as_bytes());
        }
    }
}

#[test]
fn junk_does_not_stop_service() {
    let s = lt_server(&[]);
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = 0x1234_5678u32;
    for i in 0..20_000u32 {
        rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let len = (rng % 300) as usize;
        let mut d: Vec<u8> = (0..len).map(|j| (rng >> (j % 24)) as u8 ^ i as u8).collect();
        if i % 3 == 0 && d.len() >= 20 {
            // STUN-looking header with garbage after it.
            d[0] = 0;
            d[1] = 1;
            d[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
        }
        let _ = junk.send_to(&d, s.addr());
    }
    let mut c = Client::new(s.addr());
    c.allocate();
}

#[test]
fn sigterm_stops_within_a_second_and_removes_pidfile() {
    let mut s = lt_server(&[]);
    let pidfile = s.dir.path().join("pid");
    let written = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(written.trim(), s.pid().unwrap().to_string());
    let mut c = Client::new(s.addr());
    c.allocate();
    let t0 = Instant::now();
    let status = s.stop().unwrap();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    assert!(status.success(), "exit status {status}");
    assert!(!pidfile.exists());
    assert!(s.log().contains("reason: server shutdown"));
}

#[test]
fn bad_configuration_exits_before_listening() {
    let ports = PortBlock::claim();
    let bin = common::server_bin();
    let port = format!("--listening-port={}", ports.listen_port());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
    };
    let (code_az, _) = run(&["-n", "-a", "-z", &port, "--listening-ip=127.0.0.1"]);
    assert_ne!(code_az, Some(0));
    let (code_unknown, _) = run(&["-n", "--no-such-option", &port]);
    assert_eq!(code_unknown, Some(255));
    let (code_range, msg) = run(&["-n", "--denied-peer-ip=10.0.0.300", &port, "--listening-ip=127.0.0.1"]);
    assert_ne!(code_range, Some(0), "{msg}");
    assert!(UdpSocket::bind(("127.0.0.1", ports.listen_port())).is_ok(), "nothing may listen after a fatal error");
    let (v, out) = run(&["--version"]);
    assert_eq!(v, Some(0));
    assert_eq!(out.trim(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn user_and_total_quota_answer_486() {
    let s = lt_server(&["--user-quota=2", "--total-quota=3", "--user=other:pw", "--relay-threads=2"]);
    let mut users: Vec<Client> = (0..3).map(|_| Client::new(s.addr())).collect();
    users[0].allocate();
    users[1].allocate();
    let a = users[2].request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    let a = if code(&a) == 401 {
        users[2].request(Method::ALLOCATE, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        })
    } else {
        a
    };
    assert_eq!(code(&a), 486, "user quota");
    let mut o1 = Client::new(s.addr());
    o1.user = "other".into();
    o1.pass = "pw".into();
    o1.allocate();
    let mut o2 = Client::new(s.addr());
    o2.user = "other".into();
    o2.pass = "pw".into();
    let a = o2.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 401);
    let a = o2.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 486, "total quota");
}

/// The same relay flow with every fast path switched off (the portable path)
/// and with everything on, including UDP GSO for bursts to one destination.
#[test]
fn relay_flow_with_fast_paths_on_and_off() {
    for flags in [&["--udp-recvmmsg=false", "--udp-gso=false"][..], &["--udp-recvmmsg", "--udp-gso", "--udp-sendmmsg-log"][..]] {
        let s = lt_server(flags);
        let peer = common::echo_peer();
        let mut c = Client::new(s.addr());
        c.allocate();
        assert_eq!(c.bind_channel(0x4000, peer), 0);
        // Bursts of equal-sized frames: the echo comes back as a burst to one
        // client, which the server may send as one GSO batch.
        for burst in 0..20u32 {
            for i in 0..16u32 {
                let mut f = Vec::new();
                ChannelData::encode(0x4000, format!("b{burst:03}-{i:03}").as_bytes(), false, &mut f);
                c.sock.send_to(&f, s.addr()).unwrap();
            }
            let mut got = Vec::new();
            for _ in 0..16 {
                let d = c.recv();
                got.push(String::from_utf8(ChannelData::parse(&d).unwrap().data.to_vec()).unwrap());
            }
            got.sort();
            let want: Vec<String> = (0..16).map(|i| format!("b{burst:03}-{i:03}")).collect();
            assert_eq!(got, want, "flags {flags:?}");
        }
        assert!(s.log().contains("UDP fast path: recvmmsg"), "{}", s.log());
    }
}

/// `--multiplex-peer`: allocations of a thread share its relay port; peers
/// are told apart by address; EVEN-PORT gets 508.
#[test]
fn multiplex_peer_shares_the_thread_relay_socket() {
    let ports = PortBlock::claim();
    let base = ports.spare_port(0);
    drop(ports);
    let s = lt_server(&["--multiplex-peer", &format!("--multiplex-peer-port={base}"), "--relay-threads=2"]);
    assert!(s.log().contains("Multiplex relay socket of thread 0: 127.0.0.1:"), "{}", s.log());
    let mut clients: Vec<Client> = (0..8).map(|_| Client::new(s.addr())).collect();
    let mut relays = Vec::new();
    for c in clients.iter_mut() {
        relays.push(c.allocate());
    }
    for r in &relays {
        assert!(r.port() == base || r.port() == base + 2, "relay {r} is not a thread's shared port");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let peer = common::echo_peer();
        assert_eq!(c.bind_channel(0x4000, peer), 0, "client {i}");
    }
    for round in 0..10 {
        for (i, c) in clients.iter_mut().enumerate() {
            let payload = format!("c{i}-r{round}");
            let mut f = Vec::new();
            ChannelData::encode(0x4000, payload.as_bytes(), false, &mut f);
            c.sock.send_to(&f, s.addr()).unwrap();
            let d = c.recv();
            assert_eq!(ChannelData::parse(&d).unwrap().data, payload.as_bytes());
        }
    }
    let mut c = Client::new(s.addr());
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code(&a), 401);
    let a = c.request(Method::ALLOCATE, |b| {
        b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        b.add_raw(AttrType::EVEN_PORT, &[0x80]);
    });
    assert_eq!(code(&a), 508);
}

/// A wildcard listener (0.0.0.0) answers from the address the client sent to
/// (packet info), and the session lives on that address.
#[test]
fn wildcard_listener_answers_from_the_address_used() {
    let ports = PortBlock::claim();
    let bin = common::server_bin();
    let dir = tempfile::tempdir().unwrap();
    let port = ports.listen_port();
    let mut child = std::process::Command::new(&bin)
        .args([
            "-n",
            "--listening-ip=0.0.0.0",
            &format!("--listening-port={port}"),
            "--relay-ip=127.0.0.1",
            &format!("--min-port={}", ports.min_relay_port()),
            &format!("--max-port={}", ports.max_relay_port()),
            "--lt-cred-mech",
            "--user=user:pass",
            "--realm=example.org",
            "--allow-loopback-peers",
            "--log-file=stdout",
            "--simple-log",
            "--relay-threads=1",
            &format!("--pidfile={}", dir.path().join("pid").display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let target: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::stun_probe(target, Duration::from_millis(300)) {
        assert!(Instant::now() < deadline, "server not ready on {target}");
    }
    let mut c = Client::new(target);
    let m = c.build(Method::BINDING, Class::Request, false, |_| {});
    c.sock.send_to(&m, target).unwrap();
    let mut buf = [0u8; 1500];
    let (_, from) = c.sock.recv_from(&mut buf).unwrap();
    assert_eq!(from, target, "the answer must come from the address the client used");
    let peer = common::echo_peer();
    c.allocate();
    assert_eq!(c.bind_channel(0x4000, peer), 0);
    let mut f = Vec::new();
    ChannelData::encode(0x4000, b"via-wildcard", false, &mut f);
    c.sock.send_to(&f, target).unwrap();
    let (n, from) = c.sock.recv_from(&mut buf).unwrap();
    assert_eq!(from, target);
    assert_eq!(ChannelData::parse(&buf[..n]).unwrap().data, b"via-wildcard");
    // SAFETY: kill the child we started, by its PID.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}

/// DiffServ/ECN marks of the client's datagrams reach the peer, and the
/// peer's marks reach the client (RFC 8656 14).
#[test]
fn tos_marks_are_relayed_both_ways() {
    use std::os::fd::AsRawFd;
    use turnserver::relay::udp;
    let s = lt_server(&[]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    udp::enable_tos_ttl(peer.as_raw_fd(), false).unwrap();
    let mut c = Client::new(s.addr());
    udp::enable_tos_ttl(c.sock.as_raw_fd(), false).unwrap();
    c.allocate();
    assert_eq!(c.bind_channel(0x4000, peer_addr), 0);
    let caps = udp::UdpCaps::fixed(true, true, false);
    let mut stats = udp::UdpStats::default();
    let recv_one = |sock: &UdpSocket, stats: &mut udp::UdpStats| -> (Vec<u8>, Option<u8>, SocketAddr) {
        sock.set_nonblocking(true).unwrap();
        let mut batch = udp::RecvBatch::new(2048);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let n = batch.recv(sock.as_raw_fd(), &caps, stats).unwrap();
            if n > 0 {
                let r = batch.get(0);
                let out = (r.data.to_vec(), r.tos, r.from);
                sock.set_nonblocking(false).unwrap();
                return out;
            }
            assert!(Instant::now() < deadline, "nothing received");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // Client → peer with EF + ECT(0).
    udp::set_tos(c.sock.as_raw_fd(), false, 0xba).unwrap();
    let mut f = Vec::new();
    ChannelData::encode(0x4000, b"ef", false, &mut f);
    c.sock.send_to(&f, s.addr()).unwrap();
    let (data, tos, relay) = recv_one(&peer, &mut stats);
    assert_eq!((data.as_slice(), tos), (&b"ef"[..], Some(0xba)));
    // Peer → client with AF41.
    udp::set_tos(peer.as_raw_fd(), false, 0x88).unwrap();
    peer.send_to(b"af41", relay).unwrap();
    let (data, tos, _) = recv_one(&c.sock, &mut stats);
    assert_eq!(ChannelData::parse(&data).unwrap().data, b"af41");
    assert_eq!(tos, Some(0x88));
    // Unmarked traffic goes back to the default.
    udp::set_tos(peer.as_raw_fd(), false, 0).unwrap();
    peer.send_to(b"plain", relay).unwrap();
    let (_, tos, _) = recv_one(&c.sock, &mut stats);
    assert_eq!(tos, Some(0));
}

/// A second server on the same port must not silently join the first one's
/// SO_REUSEPORT group: it refuses to start.
#[test]
fn a_second_server_on_the_same_port_refuses_to_start() {
    let s = lt_server(&[]);
    let bin = common::server_bin();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&bin)
        .args([
            "-n",
            "--listening-ip=127.0.0.1",
            &format!("--listening-port={}", s.port()),
            "--relay-ip=127.0.0.1",
            "--log-file=stdout",
            &format!("--pidfile={}", dir.path().join("pid").display()),
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Cannot bind"), "{text}");
    // The first server is unaffected.
    let mut c = Client::new(s.addr());
    c.allocate();
}

/// `--listening-device` / `--relay-device` (SO_BINDTODEVICE): bound to `lo`
/// everything works; an unknown device is reported once and the server still
/// serves (as coturn carries on).
#[test]
fn listening_and_relay_devices() {
    for (dev, warned) in [("lo", false), ("nosuchdev0", true)] {
        let s = lt_server(&[&format!("--listening-device={dev}"), &format!("--relay-device={dev}")]);
        let peer = common::echo_peer();
        let mut c = Client::new(s.addr());
        c.allocate();
        assert_eq!(c.bind_channel(0x4000, peer), 0);
        let mut f = Vec::new();
        ChannelData::encode(0x4000, b"dev", false, &mut f);
        c.sock.send_to(&f, s.addr()).unwrap();
        assert_eq!(ChannelData::parse(&c.recv()).unwrap().data, b"dev");
        let log = s.log();
        assert_eq!(log.matches("Cannot bind socket to device").count(), usize::from(warned), "{dev}: {log}");
        assert!(!log.contains("--listening-device is not supported"), "{log}");
    }
}
