//! RFC 5780 NAT behaviour discovery and ALTERNATE-SERVER redirection, checked
//! with coturn's own tools (Debian package `coturn`):
//!
//! * `turnutils_natdiscovery -m -f` and `turnutils_stunclient` against a server
//!   listening on 127.0.0.1 and 127.0.0.2 (both loopback, no setup needed);
//! * `turnutils_uclient` against a server whose `--alternate-server` names a
//!   second server: uclient follows the 300 and relays through the second one.
//!
//! Expected outputs were learnt from coturn 4.6.1 with two listening IPs (it
//! turns RFC 5780 on by itself and rejects `--rfc5780`). Run against coturn
//! with `TURNSERVER_BIN=/usr/bin/turnserver cargo test --release --test rfc5780`.

mod common;

use common::*;
use std::time::Duration;

const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// `--rfc5780` for servers that know it (ours, coturn >= 4.7); coturn 4.6.1
/// enables RFC 5780 by itself with two listening IPs and refuses the flag.
fn rfc5780_flags() -> Vec<&'static str> {
    let mut f = vec!["--listening-ip=127.0.0.2"];
    if !matches!(server_coturn_version(), Some((4, minor)) if minor < 7) {
        f.push("--rfc5780");
    }
    f
}

fn run_tool(name: &str, args: &[String]) -> CmdOutput {
    let bin = require_tool(name);
    let out = run_cmd(&bin, args, TOOL_TIMEOUT);
    assert!(!out.timed_out, "{name} {args:?} did not finish within {TOOL_TIMEOUT:?}\n{}", out.describe());
    out
}

#[test]
fn natdiscovery_finds_endpoint_independent_mapping_and_filtering() {
    let server = TestServer::start(&rfc5780_flags());
    let p = server.port();
    let out = run_tool("turnutils_natdiscovery", &["-m".into(), "-f".into(), "-p".into(), p.to_string(), "127.0.0.1".into()]);
    let text = out.all();
    let ctx = || format!("{}\n--- server log ---\n{}", out.describe(), server.log_tail(40));
    // Mapping: the first answer names the primary address and the other IP on
    // the alternate port; the second request, sent to that other IP, gets the
    // same mapped address back.
    for want in [
        "-= Mapping Behavior Discovery =-",
        "RFC 5780 response 1",
        &format!("Response origin: : 127.0.0.1:{p}"),
        &format!("Other addr: : 127.0.0.2:{}", p + 1),
        "RFC 5780 response 2",
        &format!("Response origin: : 127.0.0.2:{p}"),
        "NAT with Endpoint Independent Mapping!",
        "-= Filtering Behavior Discovery =-",
        "RFC 5780 response 4",
        // CHANGE-REQUEST (IP and port): the answer leaves from the other IP's
        // alternate port.
        &format!("Response origin: : 127.0.0.2:{}", p + 1),
        "NAT with Endpoint Independent Filtering!",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{}", ctx());
    }
    assert!(!text.contains("error"), "{}", ctx());
}

#[test]
fn stunclient_gets_three_rfc5780_answers() {
    let server = TestServer::start(&rfc5780_flags());
    let p = server.port();
    let out = run_tool("turnutils_stunclient", &["-p".into(), p.to_string(), "127.0.0.1".into()]);
    let text = out.all();
    let ctx = || format!("{}\n--- server log ---\n{}", out.describe(), server.log_tail(40));
    for want in [
        "RFC 5780 response 1",
        &format!("Response origin: : 127.0.0.1:{p}"),
        &format!("Other addr: : 127.0.0.2:{}", p + 1),
        "RFC 5780 response 2",
        "RFC 5780 response 3",
        &format!("Response origin: : 127.0.0.2:{}", p + 1),
        "UDP reflexive addr: 127.0.0.1:",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{}", ctx());
    }
    assert!(!text.contains("error"), "{}", ctx());
}

#[test]
fn without_rfc5780_change_request_is_refused() {
    // Our default (coturn >= 4.7): off even with two IPs.
    if server_coturn_version().is_some() {
        return;
    }
    let server = TestServer::start(&["--listening-ip=127.0.0.2"]);
    let p = server.port();
    let out = run_tool("turnutils_stunclient", &["-p".into(), p.to_string(), "127.0.0.1".into()]);
    let text = out.all();
    assert!(!text.contains("Other addr"), "{}", out.describe());
    assert!(text.contains("UDP reflexive addr: 127.0.0.1:"), "{}", out.describe());
}

#[test]
fn rfc5780_with_one_ip_warns_and_stays_off() {
    if server_coturn_version().is_some() {
        return;
    }
    let server = TestServer::start(&["--rfc5780"]);
    let log = server.log();
    assert!(
        log.contains("I cannot support STUN CHANGE_REQUEST functionality because only one IP address is provided"),
        "{log}"
    );
    let out = run_tool("turnutils_stunclient", &["-p".into(), server.port().to_string(), "127.0.0.1".into()]);
    assert!(!out.all().contains("Other addr"), "{}", out.describe());
}

// ----- ALTERNATE-SERVER -----

const LT_FLAGS: &[&str] = &["--lt-cred-mech", "--user=user:pass", "--realm=example.org", "--allow-loopback-peers"];

#[test]
fn uclient_follows_the_300_to_the_alternate_server() {
    let target = TestServer::start(LT_FLAGS);
    let alt = format!("--alternate-server=127.0.0.1:{}", target.port());
    let mut flags = LT_FLAGS.to_vec();
    flags.push(&alt);
    let redirector = TestServer::start(&flags);

    let peer_port = target.ports.peer_port();
    let peer_bin = require_tool("turnutils_peer");
    let mut peer = Background::spawn(&peer_bin, &["-L", "127.0.0.1", "-p", &peer_port.to_string()]);
    if !wait_udp_echo(peer_port, Duration::from_secs(10)) {
        peer.assert_running();
        panic!("turnutils_peer does not echo:\n{}", peer.log());
    }
    let args: Vec<String> = [
        "-u", "user", "-w", "pass", "-e", "127.0.0.1", "-r", &peer_port.to_string(), "-n", "20", "-m", "1", "-l", "100",
        "-p", &redirector.port().to_string(), "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_tool("turnutils_uclient", &args);
    let text = out.all();
    let ctx = || {
        format!(
            "{}\n--- redirector log ---\n{}\n--- target log ---\n{}",
            out.describe(),
            redirector.log_tail(30),
            target.log_tail(30)
        )
    };
    assert!(text.contains("error 300 (Try Alternate)"), "{}", ctx());
    let totals = text
        .lines()
        .filter_map(|l| l.split_once("start_mclient: tot_send_msgs=").map(|(_, r)| r.to_string()))
        .next_back()
        .unwrap_or_else(|| panic!("no totals\n{}", ctx()));
    let (send, recv) = totals.split_once(", tot_recv_msgs=").unwrap_or_else(|| panic!("{totals}"));
    let send: u64 = send.trim().parse().unwrap_or(0);
    let recv: u64 = recv.trim().parse().unwrap_or(u64::MAX);
    assert!(send > 0 && send == recv, "sent {send}, received {recv}\n{}", ctx());
    // The allocations live on the target; the redirector holds none (our log
    // lines; coturn writes them only with -v).
    if server_coturn_version().is_some() {
        return;
    }
    assert!(target.log().contains("session "), "{}", ctx());
    assert!(!redirector.log().contains(": new, realm="), "{}", ctx());
}

#[test]
fn udp_self_balance_redirects_to_the_aux_server() {
    // The aux listener belongs to the same server; once the client is there,
    // the server is its own alternate and allocates instead of redirecting.
    let block = PortBlock::claim();
    let aux_port = block.spare_port(0);
    let aux = format!("--aux-server=127.0.0.1:{aux_port}");
    let mut flags = LT_FLAGS.to_vec();
    flags.extend([aux.as_str(), "--udp-self-balance"]);
    let server = TestServer::start(&flags);
    let peer_port = server.ports.peer_port();
    let peer_bin = require_tool("turnutils_peer");
    let mut peer = Background::spawn(&peer_bin, &["-L", "127.0.0.1", "-p", &peer_port.to_string()]);
    if !wait_udp_echo(peer_port, Duration::from_secs(10)) {
        peer.assert_running();
        panic!("turnutils_peer does not echo:\n{}", peer.log());
    }
    let args: Vec<String> = [
        "-u", "user", "-w", "pass", "-e", "127.0.0.1", "-r", &peer_port.to_string(), "-n", "10", "-m", "1", "-l", "100",
        "-p", &server.port().to_string(), "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_tool("turnutils_uclient", &args);
    let text = out.all();
    let ctx = || format!("{}\n--- server log ---\n{}", out.describe(), server.log_tail(30));
    assert!(text.contains("error 300 (Try Alternate)"), "{}", ctx());
    assert!(text.contains("start_mclient: tot_send_msgs=20, tot_recv_msgs=20"), "{}", ctx());
    if server_coturn_version().is_none() {
        // The sessions were on the aux listener (logged when they close).
        assert!(server.log().contains(&format!("local 127.0.0.1:{aux_port}, remote")), "{}", ctx());
    }
}
