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
