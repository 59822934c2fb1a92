//! Interop with coturn's own client tools (Debian package `coturn`):
//! `turnutils_uclient` relaying through our server to `turnutils_peer`,
//! `turnutils_stunclient`, and the classic RFC 3489 `stun` client (Debian
//! package `stun-client`).
//!
//! uclient exits 0 even when every packet is lost, so each case parses its
//! final counters (`start_mclient: tot_send_msgs=N, tot_recv_msgs=M` and
//! `Total lost packets K (x%)`) and requires N > 0, M == N and K == 0: on
//! loopback with 20 ms pacing and 100-200 messages there is no reason for a
//! correct relay to lose anything.
//!
//! Run against another server binary with e.g.
//! `TURNSERVER_BIN=/usr/bin/turnserver cargo test --release --test interop_uclient`.

mod common;

use common::*;
use std::time::Duration;

const LT_FLAGS: &[&str] = &[
    "--lt-cred-mech",
    "--user=user:pass",
    "--realm=example.org",
    "--allow-loopback-peers",
];

const UCLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// Starts `turnutils_peer` on the server's peer port and waits until it echoes.
fn start_peer(server: &TestServer) -> Background {
    common::start_turnutils_peer(&["127.0.0.1"], server.ports.peer_port())
}

/// Runs uclient with `args` followed by `-p P 127.0.0.1`.
fn run_uclient(server: &TestServer, args: &[String]) -> CmdOutput {
    let bin = require_tool("turnutils_uclient");
    let mut all: Vec<String> = args.to_vec();
    all.extend([
        "-p".to_string(),
        server.port().to_string(),
        "127.0.0.1".into(),
    ]);
    let out = run_cmd(&bin, &all, UCLIENT_TIMEOUT);
    assert!(
        !out.timed_out,
        "turnutils_uclient {all:?} did not finish within {UCLIENT_TIMEOUT:?}\n{}",
        out.describe()
    );
    out
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Asserts a clean run: exit 0, at least `min_sent` messages, all echoed back.
fn assert_all_relayed(out: &CmdOutput, min_sent: u64) -> UclientStats {
    let stats = parse_uclient(&out.all())
        .unwrap_or_else(|| panic!("no final uclient counters in output\n{}", out.describe()));
    assert!(
        out.success(),
        "uclient exited with failure\n{}",
        out.describe()
    );
    assert!(
        stats.send_msgs >= min_sent,
        "uclient sent {} messages, expected at least {min_sent}: {stats:?}\n{}",
        stats.send_msgs,
        out.describe()
    );
    assert_eq!(
        stats.recv_msgs,
        stats.send_msgs,
        "not every message came back through the relay: {stats:?}\n{}",
        out.describe()
    );
    assert_eq!(
        stats.lost,
        0,
        "uclient reports lost packets: {stats:?}\n{}",
        out.describe()
    );
    assert!(stats.lost_pct == 0.0, "loss {stats:?}");
    stats
}

/// The usual peer-echo case: `-e 127.0.0.1 -r PEERPORT -n 50 -l 120` + `extra`.
fn peer_echo_case(server_flags: &[&str], extra: &[&str], min_sent: u64) -> UclientStats {
    let server = TestServer::start(server_flags);
    let _peer = start_peer(&server);
    let mut args = s(&["-e", "127.0.0.1", "-r"]);
    args.push(server.ports.peer_port().to_string());
    args.extend(s(&["-n", "50", "-l", "120"]));
    args.extend(s(extra));
    let out = run_uclient(&server, &args);
    assert_all_relayed(&out, min_sent)
}

// ---------------------------------------------------------------------------

#[test]
fn uclient_parser_reads_coturn_461_summary() {
    let sample = "6: : start_mclient: msz=2, tot_send_msgs=63, tot_recv_msgs=63, tot_send_bytes ~ 7560, tot_recv_bytes ~ 7560\n\
                  6: : start_mclient: tot_send_msgs=100, tot_recv_msgs=98\n\
                  6: : start_mclient: tot_send_bytes ~ 12000, tot_recv_bytes ~ 12000\n\
                  6: : Total transmit time is 6\n\
                  6: : Total lost packets 2 (2.000000%), total send dropped 0 (0.000000%)\n";
    let st = parse_uclient(sample).expect("parse");
    assert_eq!((st.send_msgs, st.recv_msgs, st.lost), (100, 98, 2));
    assert!((st.lost_pct - 2.0).abs() < 1e-9);
    assert!(parse_uclient("0: : ERROR: Cannot complete Allocation\n").is_none());
}

/// Default mode: ChannelData, 2 clients, each with an RTP+RTCP allocation pair
/// (EVEN-PORT + RESERVATION-TOKEN), long-term credentials.
#[test]
fn uclient_channeldata_rtp_rtcp_pairs_long_term_auth() {
    peer_echo_case(LT_FLAGS, &["-u", "user", "-w", "pass", "-m", "2"], 100);
}

/// `-c`: one allocation per client (no RTCP / EVEN-PORT).
#[test]
fn uclient_channeldata_no_rtcp_long_term_auth() {
    peer_echo_case(
        LT_FLAGS,
        &["-u", "user", "-w", "pass", "-m", "2", "-c"],
        100,
    );
}

/// `-s`: Send/Data indications (with CreatePermission) instead of ChannelData.
#[test]
fn uclient_send_indications_long_term_auth() {
    peer_echo_case(
        LT_FLAGS,
        &["-u", "user", "-w", "pass", "-m", "2", "-s"],
        100,
    );
}

/// `-y`: client to client, the relays send to each other; no peer process.
#[test]
fn uclient_client_to_client_between_relays() {
    let server = TestServer::start(LT_FLAGS);
    let args = s(&[
        "-u", "user", "-w", "pass", "-n", "50", "-m", "3", "-l", "120", "-y",
    ]);
    let out = run_uclient(&server, &args);
    assert_all_relayed(&out, 150);
}

/// `-g` (DONT-FRAGMENT in Allocate) and `-D` (padded ChannelData over UDP).
#[test]
fn uclient_dont_fragment_and_padded_channeldata() {
    peer_echo_case(
        LT_FLAGS,
        &["-u", "user", "-w", "pass", "-m", "2", "-g", "-D"],
        100,
    );
}

/// `-t`: TCP between client and server (UDP relay), ChannelData framing on TCP.
#[test]
fn uclient_tcp_to_server_long_term_auth() {
    peer_echo_case(
        LT_FLAGS,
        &["-u", "user", "-w", "pass", "-m", "2", "-c", "-t"],
        100,
    );
}

/// TURN REST API: `-W secret -u alice` makes username `<expiry>:alice` and
/// password base64(HMAC-SHA1(secret, username)).
#[test]
fn uclient_rest_api_shared_secret() {
    peer_echo_case(
        &[
            "--use-auth-secret",
            "--static-auth-secret=s3cret",
            "--realm=example.org",
            "--allow-loopback-peers",
        ],
        &["-W", "s3cret", "-u", "alice", "-m", "2"],
        100,
    );
}

/// What coturn 4.6.1's uclient does when the Allocate never succeeds (e.g. the
/// server keeps answering 401): it prints `ERROR: Cannot complete Allocation`
/// and exits with 255, without any counters.
fn assert_allocation_refused(out: &CmdOutput) {
    assert!(
        !out.success(),
        "uclient succeeded although its credentials are wrong\n{}",
        out.describe()
    );
    assert!(
        out.all().contains("Cannot complete Allocation"),
        "expected `Cannot complete Allocation` from uclient\n{}",
        out.describe()
    );
    if let Some(st) = parse_uclient(&out.all()) {
        assert_eq!(
            st.recv_msgs, 0,
            "data relayed without valid credentials: {st:?}"
        );
    }
}

#[test]
fn uclient_wrong_password_is_refused() {
    let server = TestServer::start(LT_FLAGS);
    let _peer = start_peer(&server);
    let mut args = s(&["-u", "user", "-w", "wrong", "-e", "127.0.0.1", "-r"]);
    args.push(server.ports.peer_port().to_string());
    args.extend(s(&["-n", "10", "-m", "1", "-l", "120"]));
    let out = run_uclient(&server, &args);
    assert_allocation_refused(&out);
}

#[test]
fn uclient_unknown_user_is_refused() {
    let server = TestServer::start(LT_FLAGS);
    let mut args = s(&["-u", "nobody", "-w", "pass", "-e", "127.0.0.1", "-r"]);
    args.push(server.ports.peer_port().to_string());
    args.extend(s(&["-n", "10", "-m", "1", "-l", "120"]));
    let out = run_uclient(&server, &args);
    assert_allocation_refused(&out);
}

#[test]
fn uclient_rest_api_wrong_secret_is_refused() {
    let server = TestServer::start(&[
        "--use-auth-secret",
        "--static-auth-secret=s3cret",
        "--realm=example.org",
        "--allow-loopback-peers",
    ]);
    let mut args = s(&[
        "-W",
        "not-the-secret",
        "-u",
        "alice",
        "-e",
        "127.0.0.1",
        "-r",
    ]);
    args.push(server.ports.peer_port().to_string());
    args.extend(s(&["-n", "10", "-m", "1", "-l", "120"]));
    let out = run_uclient(&server, &args);
    assert_allocation_refused(&out);
}

/// `--no-auth`: uclient without `-u`/`-w` allocates and relays.
#[test]
fn uclient_no_auth_server_without_credentials() {
    peer_echo_case(&["--no-auth", "--allow-loopback-peers"], &["-m", "2"], 100);
}

/// Without `--allow-loopback-peers`, a loopback peer is denied (403 to
/// CreatePermission/ChannelBind), so uclient stops with an error and nothing
/// comes back.
#[test]
fn uclient_loopback_peer_denied_by_default() {
    let server = TestServer::start(&["--lt-cred-mech", "--user=user:pass", "--realm=example.org"]);
    let _peer = start_peer(&server);
    let mut args = s(&["-u", "user", "-w", "pass", "-e", "127.0.0.1", "-r"]);
    args.push(server.ports.peer_port().to_string());
    args.extend(s(&["-n", "10", "-m", "1", "-c", "-l", "120"]));
    let out = run_uclient(&server, &args);
    let relayed = parse_uclient(&out.all())
        .map(|st| st.recv_msgs)
        .unwrap_or(0);
    assert_eq!(
        relayed,
        0,
        "loopback peer reachable without --allow-loopback-peers\n{}",
        out.describe()
    );
    // coturn 4.6.1: `channel bind: error 403 (Forbidden IP)`, exit 255.
    assert!(
        !out.success() && out.all().contains("403"),
        "expected uclient to fail with a 403 to its ChannelBind\n{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// STUN clients

/// `turnutils_stunclient -p P 127.0.0.1` prints `UDP reflexive addr: 127.0.0.1:<port>`.
#[test]
fn stunclient_reports_udp_reflexive_address() {
    let server = TestServer::start(&[]);
    let bin = require_tool("turnutils_stunclient");
    let out = run_cmd(
        &bin,
        &["-p", &server.port().to_string(), "127.0.0.1"],
        Duration::from_secs(30),
    );
    assert!(
        out.success(),
        "turnutils_stunclient failed\n{}",
        out.describe()
    );
    let text = out.all();
    let line = text
        .lines()
        .find(|l| l.contains("UDP reflexive addr: "))
        .unwrap_or_else(|| panic!("no `UDP reflexive addr:` line\n{}", out.describe()));
    let addr = line
        .split("UDP reflexive addr: ")
        .nth(1)
        .unwrap_or("")
        .trim();
    let (ip, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("bad reflexive address {addr:?}"));
    assert_eq!(ip, "127.0.0.1", "reflexive address {addr}");
    let port: u16 = port.parse().expect("reflexive port");
    assert_ne!(port, 0);
}

/// The classic RFC 3489 client (`stun` from Debian's stun-client) sends
/// cookie-less Binding requests. Its exit code is its NAT classification:
/// 0x1c (28) means "Blocked or could not reach STUN server"; test 1 alone
/// (`stun HOST:PORT 1 -v`) exits 0 and prints the MAPPED-ADDRESS it got.
/// coturn 4.6.1 answers RFC 3489 requests by default; newer coturn and our
/// server need `--rfc3489-compatibility` (left out for coturn < 4.16, which
/// rejects the flag).
#[test]
fn classic_rfc3489_stun_client_gets_mapped_address() {
    let server =
        TestServer::start_with(ServerOptions::default().newer_flag("--rfc3489-compatibility"));
    let bin = require_tool("stun");
    let target = format!("127.0.0.1:{}", server.port());
    let src = server.ports.spare_port(0).to_string();

    // Test 1 only: one Binding request, verbose.
    let out = run_cmd(
        &bin,
        &[target.as_str(), "1", "-v", "-p", &src],
        Duration::from_secs(30),
    );
    let text = out.all();
    assert!(
        text.contains("MappedAddress = 127.0.0.1:"),
        "no MAPPED-ADDRESS in the answer to an RFC 3489 Binding request\n{}",
        out.describe()
    );
    assert_eq!(
        out.code(),
        Some(0),
        "stun test 1 failed\n{}",
        out.describe()
    );

    // Full classification run: must not conclude that the server is unreachable.
    let out = run_cmd(
        &bin,
        &[target.as_str(), "-p", &src],
        Duration::from_secs(60),
    );
    assert!(
        !out.timed_out && !out.all().contains("Blocked") && out.code() != Some(0x1c),
        "classic stun client could not reach the server\n{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// Harness self-checks (no server needed)

/// `run_cmd` kills a command that outlives its timeout, by PID, promptly.
#[test]
fn harness_run_cmd_kills_command_at_timeout() {
    let out = run_cmd(
        std::path::Path::new("/bin/sleep"),
        &["30"],
        Duration::from_millis(300),
    );
    assert!(out.timed_out && out.status.is_none(), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
    let out = run_cmd(
        std::path::Path::new("/bin/sh"),
        &["-c", "echo hi; echo err >&2; exit 3"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(3));
    assert_eq!(out.stdout, "hi\n");
    assert_eq!(out.stderr, "err\n");
}

/// Port blocks claimed at the same time never overlap, and the relay range
/// stays inside the block.
#[test]
fn harness_port_blocks_are_disjoint() {
    let blocks: Vec<PortBlock> = (0..4).map(|_| PortBlock::claim()).collect();
    for (i, a) in blocks.iter().enumerate() {
        assert!(a.listen_port() < a.peer_port() && a.peer_port() + 1 < a.min_relay_port());
        assert!(a.min_relay_port() < a.max_relay_port());
        assert_eq!(a.max_relay_port(), a.base + BLOCK_SIZE - 1);
        for b in &blocks[i + 1..] {
            assert!(
                a.base.abs_diff(b.base) >= BLOCK_SIZE,
                "{} vs {}",
                a.base,
                b.base
            );
        }
    }
}

/// The readiness probe gets no answer from a port nobody serves (and returns
/// within its time limit).
#[test]
fn harness_stun_probe_times_out_on_silent_port() {
    let block = PortBlock::claim();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], block.spare_port(5)));
    let t = std::time::Instant::now();
    assert!(!stun_probe(addr, Duration::from_millis(500)));
    assert!(t.elapsed() < Duration::from_secs(3));
}

/// `-t -S`: TLS over TCP to the server, sniffed on the plain listening port
/// and on the TLS port; every message relayed, and TLS 1.3 negotiated.
#[test]
fn uclient_tls_to_server_on_plain_and_tls_ports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = common::self_signed_cert(dir.path());
    let ports = common::PortBlock::claim();
    let tls_port = ports.spare_port(2);
    drop(ports);
    let cert_flag = format!("--cert={}", cert.display());
    let key_flag = format!("--pkey={}", key.display());
    let tls_flag = format!("--tls-listening-port={tls_port}");
    let mut flags: Vec<&str> = LT_FLAGS.to_vec();
    flags.extend(["--no-tls=false", &cert_flag, &key_flag, &tls_flag]);
    let server = TestServer::start(&flags);
    let _peer = start_peer(&server);
    for port in [server.port(), tls_port] {
        let mut args = s(&["-e", "127.0.0.1", "-r"]);
        args.push(server.ports.peer_port().to_string());
        args.extend(s(&["-n", "30", "-l", "120", "-u", "user", "-w", "pass", "-m", "2", "-c", "-t", "-S", "-p"]));
        args.push(port.to_string());
        args.push("127.0.0.1".into());
        let bin = require_tool("turnutils_uclient");
        let out = run_cmd(&bin, &args, UCLIENT_TIMEOUT);
        let all = out.all();
        assert!(all.contains("method=TLSv1.3") || all.contains("method=TLSv1.2"), "no TLS 1.2/1.3 session on port {port}\n{}", out.describe());
        assert!(!all.contains("method=TLSv1.1") && !all.contains("method=TLSv1 "), "an old TLS version was accepted\n{}", out.describe());
        assert_all_relayed(&out, 60);
    }
}

/// `-S` over UDP: DTLS 1.2 to the server (`--dtls`, OpenSSL on both sides),
/// every message relayed.
#[test]
fn uclient_dtls_to_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = common::self_signed_cert(dir.path());
    let ports = common::PortBlock::claim();
    let tls_port = ports.spare_port(5);
    drop(ports);
    let cert_flag = format!("--cert={}", cert.display());
    let key_flag = format!("--pkey={}", key.display());
    let tls_flag = format!("--tls-listening-port={tls_port}");
    let mut flags: Vec<&str> = LT_FLAGS.to_vec();
    flags.extend(["--dtls", &cert_flag, &key_flag, &tls_flag]);
    let server = TestServer::start(&flags);
    let _peer = start_peer(&server);
    let mut args = s(&["-e", "127.0.0.1", "-r"]);
    args.push(server.ports.peer_port().to_string());
    args.extend(s(&["-n", "30", "-l", "120", "-u", "user", "-w", "pass", "-m", "2", "-c", "-S", "-p"]));
    args.push(tls_port.to_string());
    args.push("127.0.0.1".into());
    let bin = require_tool("turnutils_uclient");
    let out = run_cmd(&bin, &args, UCLIENT_TIMEOUT);
    assert!(out.all().contains("method=DTLSv1.2"), "no DTLS 1.2 session\n{}", out.describe());
    assert_all_relayed(&out, 60);
    assert!(server.log().contains("DTLS 1.2 supported"));
}
