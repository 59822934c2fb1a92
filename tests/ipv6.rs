//! IPv6 (RFC 6156) and dual allocations (RFC 8656 ADDITIONAL-ADDRESS-FAMILY)
//! with coturn's `turnutils_uclient` / `turnutils_peer` over 127.0.0.1 and ::1.
//!
//! The server listens and relays on both loopback addresses; the echo peer
//! listens on both too. Each case parses uclient's final counters and requires
//! every message back with no loss, as `interop_uclient.rs` does.
//!
//! Observed with coturn 4.6.1 (`TURNSERVER_BIN=/usr/bin/turnserver cargo test
//! --release --test ipv6`): an IPv6 peer makes uclient ask for an IPv6 relay
//! by itself; `-Z` sends ADDITIONAL-ADDRESS-FAMILY at the draft codepoint
//! 0x8032 together with a plain EVEN-PORT, implies `-c` (so `-n 10` sends 10
//! messages, not 20), and prints both relayed addresses with `-v`.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;

const FLAGS: &[&str] = &[
    "--listening-ip=::1",
    "--relay-ip=::1",
    "--lt-cred-mech",
    "--user=user:pass",
    "--realm=example.org",
    "--allow-loopback-peers",
];

const UCLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// `turnutils_peer` echoing on 127.0.0.1 and ::1 at the block's peer port.
fn start_peer(server: &TestServer) -> Background {
    common::start_turnutils_peer(&["127.0.0.1", "::1"], server.ports.peer_port())
}

/// Runs `turnutils_uclient -v -u user -w pass -r PEERPORT -n 10 -l 120 <args> -p P <server_ip>`
/// and checks a clean run with exactly `expect_msgs` messages, all echoed.
fn run_case(server: &TestServer, args: &[&str], server_ip: &str, expect_msgs: u64) -> CmdOutput {
    run_case_on(server, server.port(), args, server_ip, expect_msgs)
}

/// [`run_case`] against another port of the server (its TLS/DTLS port).
fn run_case_on(server: &TestServer, port: u16, args: &[&str], server_ip: &str, expect_msgs: u64) -> CmdOutput {
    let bin = require_tool("turnutils_uclient");
    let mut all: Vec<String> = ["-v", "-u", "user", "-w", "pass", "-n", "10", "-l", "120", "-r"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.push(server.ports.peer_port().to_string());
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["-p".to_string(), port.to_string(), server_ip.to_string()]);
    let out = run_cmd(&bin, &all, UCLIENT_TIMEOUT);
    assert!(!out.timed_out, "turnutils_uclient {all:?} timed out\n{}", out.describe());
    let stats = parse_uclient(&out.all())
        .unwrap_or_else(|| panic!("no final uclient counters for {all:?}\n{}\n{}", out.describe(), server.log_tail(40)));
    assert!(out.success(), "uclient {all:?} failed\n{}", out.describe());
    assert_eq!(stats.send_msgs, expect_msgs, "{all:?}: {stats:?}\n{}", out.describe());
    assert_eq!(stats.recv_msgs, stats.send_msgs, "{all:?}: not all relayed: {stats:?}\n{}", out.describe());
    assert_eq!(stats.lost, 0, "{all:?}: loss {stats:?}\n{}", out.describe());
    out
}

/// The relayed addresses uclient reports (`IPv6. Received relay addr: ::1:P`).
fn relay_families(out: &CmdOutput) -> (bool, bool) {
    let text = out.all();
    (text.contains("IPv4. Received relay addr"), text.contains("IPv6. Received relay addr"))
}

#[test]
fn ipv4_client_gets_ipv6_relay_for_ipv6_peer() {
    let server = TestServer::start(FLAGS);
    let _peer = start_peer(&server);
    // -x: REQUESTED-ADDRESS-FAMILY IPv6 from an IPv4 client.
    let out = run_case(&server, &["-x", "-e", "::1"], "127.0.0.1", 20);
    assert_eq!(relay_families(&out), (false, true), "{}", out.describe());
}

#[test]
fn ipv4_relay_requested_explicitly() {
    let server = TestServer::start(FLAGS);
    let _peer = start_peer(&server);
    let out = run_case(&server, &["-X", "-e", "127.0.0.1"], "127.0.0.1", 20);
    assert_eq!(relay_families(&out), (true, false), "{}", out.describe());
}

#[test]
fn ipv6_client_over_udp_with_ipv6_peer() {
    let server = TestServer::start(FLAGS);
    let _peer = start_peer(&server);
    let out = run_case(&server, &["-e", "::1"], "::1", 20);
    assert_eq!(relay_families(&out), (false, true), "{}", out.describe());
}

#[test]
fn ipv6_client_over_udp_with_ipv4_relay() {
    let server = TestServer::start(FLAGS);
    let _peer = start_peer(&server);
    let out = run_case(&server, &["-X", "-e", "127.0.0.1"], "::1", 20);
    assert_eq!(relay_families(&out), (true, false), "{}", out.describe());
}

#[test]
fn ipv6_client_over_tcp_with_ipv6_peer() {
    let server = TestServer::start(FLAGS);
    let _peer = start_peer(&server);
    let out = run_case(&server, &["-t", "-e", "::1"], "::1", 20);
    assert_eq!(relay_families(&out), (false, true), "{}", out.describe());
}

/// `-S` over UDP to ::1: DTLS 1.2 from an IPv6 client, IPv6 relay and peer.
#[test]
fn ipv6_client_over_dtls_with_ipv6_peer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = common::self_signed_cert(dir.path());
    let ports = common::PortBlock::claim();
    let tls_port = ports.spare_port(4);
    drop(ports);
    let cert_flag = format!("--cert={}", cert.display());
    let key_flag = format!("--pkey={}", key.display());
    let tls_flag = format!("--tls-listening-port={tls_port}");
    let mut flags = FLAGS.to_vec();
    flags.extend(["--dtls", &cert_flag, &key_flag, &tls_flag]);
    let server = TestServer::start(&flags);
    let _peer = start_peer(&server);
    let out = run_case_on(&server, tls_port, &["-S", "-e", "::1"], "::1", 20);
    assert!(out.all().contains("method=DTLSv1.2"), "no DTLS 1.2 session\n{}", out.describe());
    assert_eq!(relay_families(&out), (false, true), "{}", out.describe());
}

#[test]
fn dual_allocation_relays_to_either_family() {
    let server = TestServer::start(FLAGS);
    let _peer = start_peer(&server);
    // -Z implies -c: 10 messages. uclient prints the IPv6 relay only when it
    // uses it (IPv6 peer).
    let out = run_case(&server, &["-Z", "-e", "127.0.0.1"], "127.0.0.1", 10);
    assert!(relay_families(&out).0, "{}", out.describe());
    let out = run_case(&server, &["-Z", "-e", "::1"], "127.0.0.1", 10);
    assert_eq!(relay_families(&out), (true, true), "{}", out.describe());
}

#[test]
fn dual_allocation_over_tcp() {
    let server = TestServer::start(FLAGS);
    let _peer = start_peer(&server);
    let out = run_case(&server, &["-t", "-Z", "-e", "::1"], "127.0.0.1", 10);
    assert_eq!(relay_families(&out), (true, true), "{}", out.describe());
}

#[test]
fn dual_allocation_without_ipv6_relay_still_relays_ipv4() {
    // Only the harness's IPv4 relay address: the IPv6 half fails with
    // ADDRESS-ERROR-CODE and the IPv4 half works.
    let server = TestServer::start(&[
        "--lt-cred-mech",
        "--user=user:pass",
        "--realm=example.org",
        "--allow-loopback-peers",
    ]);
    let bin = require_tool("turnutils_peer");
    let port = server.ports.peer_port();
    let _peer = Background::spawn(&bin, &["-L", "127.0.0.1", "-p", &port.to_string()]);
    assert!(wait_echo(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(10)));
    let out = run_case(&server, &["-Z", "-e", "127.0.0.1"], "127.0.0.1", 10);
    assert_eq!(relay_families(&out), (true, false), "{}", out.describe());
}

#[test]
fn ipv6_relay_without_ipv6_relay_address_is_440() {
    // Only the harness's IPv4 relay address: REQUESTED-ADDRESS-FAMILY IPv6 gets 440.
    let server = TestServer::start(&[
        "--listening-ip=::1",
        "--lt-cred-mech",
        "--user=user:pass",
        "--realm=example.org",
        "--allow-loopback-peers",
    ]);
    let bin = require_tool("turnutils_uclient");
    let port = server.port().to_string();
    let peer_port = server.ports.peer_port().to_string();
    for server_ip in ["127.0.0.1", "::1"] {
        let args = ["-x", "-e", "::1", "-r", &peer_port, "-n", "3", "-u", "user", "-w", "pass", "-p", &port, server_ip];
        let out = run_cmd(&bin, &args, Duration::from_secs(30));
        assert!(
            out.all().contains("error 440"),
            "expected 440 for {args:?}\n{}\n{}",
            out.describe(),
            server.log_tail(20)
        );
    }
}
