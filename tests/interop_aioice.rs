//! Interop with aioice (Python, <https://pypi.org/project/aioice/>) as a
//! third-party TURN client. The Python side is `tests/py/aioice_turn.py`; it
//! runs with `<repo>/.venv/bin/python`, which `./scripts/test.sh` creates
//! (`python3 -m venv .venv` + `pip install aioice`). A missing venv fails the
//! tests instead of skipping them.
//!
//! The script prints one JSON object as its last line; these tests assert on
//! it (no JSON crate: the keys are printed with `sort_keys` and fixed spacing).

mod common;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

const LT_FLAGS: &[&str] = &[
    "--lt-cred-mech",
    "--user=user:pass",
    "--realm=example.org",
    "--allow-loopback-peers",
];

fn venv_python() -> PathBuf {
    let py = repo_root().join(".venv/bin/python");
    assert!(
        py.is_file(),
        "{} not found: run ./scripts/test.sh once to create the Python venv with aioice",
        py.display()
    );
    let check = run_cmd(&py, &["-c", "import aioice"], Duration::from_secs(30));
    assert!(
        check.success(),
        "aioice is not importable from {}: run ./scripts/test.sh to install it\n{}",
        py.display(),
        check.describe()
    );
    py
}

/// Runs the script for `case` against `server` and returns (output, last JSON line).
fn run_aioice(server: &TestServer, case: &str, extra: &[&str]) -> (CmdOutput, String) {
    let py = venv_python();
    let script = repo_root().join("tests/py/aioice_turn.py");
    let server_arg = format!("127.0.0.1:{}", server.port());
    let mut args: Vec<String> = vec![
        script.display().to_string(),
        case.into(),
        "--server".into(),
        server_arg,
        "--timeout".into(),
        "45".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    // The script bounds itself at 45 s; this is the backstop.
    let out = run_cmd_env(
        &py,
        &args,
        &[("PYTHONDONTWRITEBYTECODE", "1")],
        None,
        Duration::from_secs(70),
    );
    assert!(!out.timed_out, "aioice script hung\n{}", out.describe());
    let json = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "no JSON result line from the aioice script\n{}",
                out.describe()
            )
        })
        .to_string();
    (out, json)
}

fn assert_json_has(json: &str, needle: &str, out: &CmdOutput) {
    assert!(
        json.contains(needle),
        "aioice result lacks `{needle}`:\n{json}\n{}",
        out.describe()
    );
}

/// `create_turn_endpoint` over UDP with long-term credentials: 5 datagrams
/// through the relay to a UDP echo server, all echoed, and the echo server
/// saw only the relayed address as source.
#[test]
fn aioice_turn_endpoint_udp_echo_through_relay() {
    let server = TestServer::start(LT_FLAGS);
    let (out, json) = run_aioice(
        &server,
        "endpoint",
        &[
            "--username",
            "user",
            "--password",
            "pass",
            "--transport",
            "udp",
        ],
    );
    assert_json_has(&json, "\"ok\": true", &out);
    assert_json_has(&json, "\"echoed\": 5", &out);
    assert_json_has(&json, "\"via_relay\": true", &out);
    assert!(out.success(), "{}", out.describe());
}

/// The same over TCP to the server (UDP relay).
#[test]
fn aioice_turn_endpoint_tcp_to_server_echo_through_relay() {
    let server = TestServer::start(LT_FLAGS);
    let (out, json) = run_aioice(
        &server,
        "endpoint",
        &[
            "--username",
            "user",
            "--password",
            "pass",
            "--transport",
            "tcp",
        ],
    );
    assert_json_has(&json, "\"ok\": true", &out);
    assert_json_has(&json, "\"via_relay\": true", &out);
}

/// A wrong password makes the allocation fail with 401.
#[test]
fn aioice_turn_endpoint_wrong_password_gets_401() {
    let server = TestServer::start(LT_FLAGS);
    let (out, json) = run_aioice(
        &server,
        "endpoint",
        &[
            "--username",
            "user",
            "--password",
            "wrong",
            "--timeout",
            "20",
        ],
    );
    assert_json_has(&json, "\"ok\": false", &out);
    assert_json_has(&json, "401", &out);
    assert!(!out.success());
}

/// Two ICE agents (controlling / controlled) with relay candidates only
/// connect through the TURN server and exchange a message each way.
#[test]
fn aioice_ice_connection_relay_only_candidates() {
    let server = TestServer::start(LT_FLAGS);
    let (out, json) = run_aioice(
        &server,
        "ice",
        &["--username", "user", "--password", "pass"],
    );
    assert_json_has(&json, "\"ok\": true", &out);
    assert_json_has(&json, "\"relay_only\": true", &out);
    assert_json_has(&json, "\"b_received\": \"ping from controlling\"", &out);
    assert_json_has(&json, "\"a_received\": \"pong from controlled\"", &out);
}

/// TLS to the server (`turns:`), UDP relay.
#[test]
fn aioice_turn_endpoint_tls_to_server_echo_through_relay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = common::self_signed_cert(dir.path());
    let cert_flag = format!("--cert={}", cert.display());
    let key_flag = format!("--pkey={}", key.display());
    let ports = common::PortBlock::claim();
    let tls_flag = format!("--tls-listening-port={}", ports.spare_port(3));
    drop(ports);
    let mut flags: Vec<&str> = LT_FLAGS.to_vec();
    flags.extend(["--no-tls=false", &cert_flag, &key_flag, &tls_flag]);
    let server = TestServer::start(&flags);
    let (out, json) = run_aioice(&server, "endpoint", &["--username", "user", "--password", "pass", "--transport", "tcp", "--tls"]);
    assert_json_has(&json, "\"ok\": true", &out);
    assert_json_has(&json, "\"via_relay\": true", &out);
}
