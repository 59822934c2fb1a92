//! The telnet CLI (`--cli`) against the real binary: login (plain and `$5$`
//! passwords, five wrong tries, telnet negotiation), `ps`/`psp`/`pu` on live
//! TURN sessions, `cs` ending one (the client's next Refresh gets 437),
//! `tc`/`cc` changing what clients see, `aas` redirecting with 300,
//! `drain` (403, then exit once drained), `stop`, `lr`, the client limit,
//! and coturn 4.17's handling of `--cli` with an empty password.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::turn_udp::{UdpTurn, LT_FLAGS};
use common::*;
use turnserver::stun::{AttrType, Message};

const PASSWORD: &str = "cli-secret";
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A telnet-ish client: writes lines, reads until an expected ending.
struct Cli {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Cli {
    fn connect(port: u16) -> Cli {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                    return Cli { stream, pending: Vec::new() };
                }
                Err(e) if Instant::now() > deadline => panic!("cannot connect to the CLI on {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Reads until what arrived ends with `ending`; returns it all (lossy
    /// UTF-8) and panics with what came when it does not within 10 s.
    fn read_until_end(&mut self, ending: &str) -> String {
        String::from_utf8_lossy(&self.read_bytes_until_end(ending)).into_owned()
    }

    /// As [`Cli::read_until_end`], but the raw bytes (telnet commands are
    /// not UTF-8).
    fn read_bytes_until_end(&mut self, ending: &str) -> Vec<u8> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            if self.pending.ends_with(ending.as_bytes()) {
                return std::mem::take(&mut self.pending);
            }
            assert!(Instant::now() < deadline, "no {ending:?} within {READ_TIMEOUT:?}; got {:?}", String::from_utf8_lossy(&self.pending));
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("connection closed; got {:?}", String::from_utf8_lossy(&self.pending)),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    /// Reads until the server closes the connection; returns what came.
    fn read_to_close(&mut self) -> String {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "connection still open; got {:?}", String::from_utf8_lossy(&self.pending));
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned()
    }

    fn send(&mut self, line: &str) {
        self.stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// The greeting, then the password; the prompt must follow.
    fn login(port: u16, password: &str) -> Cli {
        let mut c = Cli::connect(port);
        let greeting = c.read_until_end("Enter password: \r\n");
        assert!(greeting.starts_with("TURN Server\r\nturnserver-rs-"), "{greeting:?}");
        assert!(greeting.contains("\r\n\r\nType '?' for help\r\n"), "{greeting:?}");
        c.send(password);
        assert_eq!(c.read_until_end("> "), "> ");
        c
    }

    /// One command; its output up to and including the prompt (a command
    /// with nothing to say answers with the bare prompt).
    fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.read_until_end("> ")
    }
}

/// A port for the CLI: from a port block of its own, so parallel tests
/// never share it.
fn cli_port() -> (PortBlock, u16) {
    let block = PortBlock::claim();
    let port = block.spare_port(0);
    (block, port)
}

fn start(port: u16, password: &str, extra: &[&str]) -> TestServer {
    let mut flags: Vec<String> = LT_FLAGS.iter().map(|s| s.to_string()).collect();
    flags.extend(["--cli".to_string(), format!("--cli-port={port}"), format!("--cli-password={password}")]);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestServer::start(&refs)
}

/// The id of the first session in `ps` output.
fn first_id(ps: &str) -> u64 {
    let at = ps.find("id=").unwrap_or_else(|| panic!("no session in {ps:?}"));
    ps[at + 3..].split(',').next().unwrap().parse().unwrap()
}

fn wait_log(server: &TestServer, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains(needle) {
        assert!(Instant::now() < deadline, "{needle:?} not in the log:\n{}", server.log_tail(30));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sessions_listed_and_cancelled() {
    let (_block, port) = cli_port();
    let server = start(port, PASSWORD, &[]);
    wait_log(&server, &format!("IPv4. CLI listener opened on : 127.0.0.1:{port}"));
    let mut turn = UdpTurn::new(server.addr());
    let relay = turn.allocate().expect("allocate");
    let client = turn.sock.local_addr().unwrap();

    let mut cli = Cli::login(port, PASSWORD);
    wait_log(&server, "IPv4. CLI authentication success: 127.0.0.1:");
    let help = cli.cmd("?");
    for needle in ["TURN Server\r\n", "  ps [username] - print sessions", "  cs <session-id> - cancel session", "  drain - "] {
        assert!(help.contains(needle), "{needle:?} missing from help:\n{help}");
    }

    let ps = cli.cmd("ps");
    println!("ps:\n{ps}");
    for needle in [
        "    1) id=".to_string(),
        ", user <user>:\r\n".to_string(),
        "      realm: example.org\r\n".to_string(),
        "      client protocol UDP, relay protocol UDP\r\n".to_string(),
        format!("      client addr {client}, server addr {}\r\n", server.addr()),
        format!("      relay addr {relay}\r\n"),
        "  Total sessions: 1\r\n".to_string(),
    ] {
        assert!(ps.contains(&needle), "{needle:?} missing from ps:\n{ps}");
    }
    let id = first_id(&ps);
    assert!(id >= 1_000_000_000_000_000, "coturn-style id: {id}");
    assert!(cli.cmd("ps user").contains("  Total sessions: 1\r\n"));
    assert!(cli.cmd("ps use").contains("  Total sessions: 0\r\n"), "ps matches exactly");
    assert!(cli.cmd("psp use").contains("  Total sessions: 1\r\n"), "psp matches a part");

    let pu = cli.cmd("pu");
    assert_eq!(pu, "\r\n    user: <user>, 1 sessions\r\n\r\n  Total sessions: 1\r\n\r\n> ");
    assert!(cli.cmd("pu udp").contains("    user: <user>, 1 sessions\r\n"));
    assert_eq!(cli.cmd("pu tcp"), "\r\n  Total sessions: 0\r\n\r\n> ");

    // The session realm filters ps and pu; ur lifts it.
    assert_eq!(cli.cmd("sr other.org"), "> ");
    assert_eq!(cli.cmd("ps"), "\r\n  Total sessions for realm other.org: 0\r\n\r\n> ");
    assert!(cli.cmd("pc").contains("  CLI session realm: other.org\r\n"));
    assert_eq!(cli.cmd("ur"), "> ");
    assert_eq!(cli.cmd("so https://nowhere.example"), "> ");
    assert!(cli.cmd("ps").contains("  Total sessions for origin https://nowhere.example: 0\r\n"));
    assert_eq!(cli.cmd("uo"), "> ");

    let pc = cli.cmd("pc");
    for needle in [
        "  stun-only: OFF (*)\r\n",
        "  allow-loopback-peers: ON (*)\r\n",
        "  Default user-quota: 0 (**)\r\n",
        "  cli-max-output-sessions: 256 (**)\r\n",
        "  total-current-allocs: 1\r\n",
        "  Default realm: example.org\r\n",
        &format!("  listener-port: {}\r\n", server.port()),
        "  (Note 2: parameters with (**) are changeable)\r\n",
    ] {
        assert!(pc.contains(needle), "{needle:?} missing from pc:\n{pc}");
    }

    assert_eq!(cli.cmd("lr"), "  log reset done\r\n> ");
    assert_eq!(cli.cmd("xyz"), "Unknown command\r\n\r\n> ");
    assert_eq!(cli.cmd("cs 12345"), "  Error: no session 12345\r\n> ");

    // cs ends the session: the client's next Refresh finds no allocation.
    assert_eq!(cli.cmd(&format!("cs {id}")), "> ");
    assert_eq!(turn.refresh(600), 437, "Refresh after cs");
    assert!(cli.cmd("ps").contains("  Total sessions: 0\r\n"));

    cli.send("quit");
    assert_eq!(cli.read_to_close(), "Bye !\r\n");
}

#[test]
fn five_wrong_passwords_close_the_connection() {
    let (_block, port) = cli_port();
    let server = start(port, PASSWORD, &[]);
    let mut cli = Cli::connect(port);
    cli.read_until_end("Enter password: \r\n");
    // A telnet client's opening negotiation is refused and otherwise ignored.
    cli.stream.write_all(&[255, 253, 1, 255, 251, 31]).unwrap();
    for i in 1..=4 {
        cli.send(&format!("wrong{i}"));
        let answer = cli.read_bytes_until_end("Enter password: \r\n");
        if i == 1 {
            assert_eq!(answer, b"\xff\xfc\x01\xff\xfe\x1fEnter password: \r\n", "{answer:?}");
        } else {
            assert_eq!(answer, b"Enter password: \r\n");
        }
    }
    cli.send("wrong5");
    assert_eq!(cli.read_to_close(), "", "closed after the fifth wrong password");
    wait_log(&server, "IPv4. CLI authentication error: 127.0.0.1:");

    // Nothing is locked: a new connection logs in.
    let mut cli = Cli::login(port, PASSWORD);
    assert!(cli.cmd("pu").contains("  Total sessions: 0\r\n"));
}

#[test]
fn hashed_password_from_turnadmin() {
    let out = run_cmd(std::path::Path::new(env!("CARGO_BIN_EXE_turnadmin")), &["-P", "-p", PASSWORD], Duration::from_secs(10));
    assert!(out.success(), "{}", out.describe());
    let hash = out.stdout.trim().to_string();
    assert!(hash.starts_with("$5$"), "{hash}");
    let (_block, port) = cli_port();
    let _server = start(port, &hash, &[]);
    // The hash itself is not the password.
    let mut cli = Cli::connect(port);
    cli.read_until_end("Enter password: \r\n");
    cli.send(&hash);
    assert_eq!(cli.read_until_end("Enter password: \r\n"), "Enter password: \r\n");
    cli.send(PASSWORD);
    assert_eq!(cli.read_until_end("> "), "> ");
    assert!(cli.cmd("pc").contains("  total-current-allocs: 0\r\n"));
}

#[test]
fn empty_password_runs_without_cli() {
    // coturn 4.17: --cli with an empty password logs a CONFIG ERROR and the
    // server runs without the CLI.
    let (_block, port) = cli_port();
    let mut server = TestServer::start(&["--cli", &format!("--cli-port={port}"), "--cli-password="]);
    wait_log(&server, "CONFIG ERROR: Empty cli-password, and so telnet cli interface is disabled! Please set a non empty cli-password!");
    assert!(
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)).is_err(),
        "nothing listens on the CLI port"
    );
    assert!(stun_probe(server.addr(), Duration::from_secs(2)), "the server still answers");
    assert!(server.wait_exit(Duration::from_millis(300)).is_none());
}

#[test]
fn cli_port_in_use_is_a_startup_error() {
    let (block, port) = cli_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "-n".to_string(),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={}", block.listen_port()),
        "--relay-ip=127.0.0.1".into(),
        format!("--min-port={}", block.min_relay_port()),
        format!("--max-port={}", block.max_relay_port()),
        "--log-file=stdout".into(),
        format!("--pidfile={}", dir.path().join("pid").display()),
        format!("--userdb={}", dir.path().join("db.sqlite").display()),
        "--no-tls".into(),
        "--no-dtls".into(),
        "--cli".into(),
        format!("--cli-port={port}"),
        format!("--cli-password={PASSWORD}"),
    ];
    let out = run_cmd(&server_bin(), &args, Duration::from_secs(10));
    assert!(!out.timed_out && !out.success(), "{}", out.describe());
    assert!(out.all().contains(&format!("Cannot bind CLI listener socket to addr 127.0.0.1:{port}")), "{}", out.describe());
}

#[test]
fn toggles_and_changes_take_effect() {
    let (_block, port) = cli_port();
    let server = start(port, PASSWORD, &[]);
    let mut cli = Cli::login(port, PASSWORD);

    // cc user-quota 1: a second allocation of the same user gets 486.
    assert_eq!(cli.cmd("cc user-quota 1"), "  user-quota: 1 (**)\r\n> ");
    let mut first = UdpTurn::new(server.addr());
    first.allocate().expect("first allocation");
    let mut second = UdpTurn::new(server.addr());
    assert_eq!(second.allocate(), Err(486), "user quota 1");
    assert_eq!(cli.cmd("cc user-quota 0"), "  user-quota: 0 (**)\r\n> ");
    second.allocate().expect("quota lifted");
    assert!(cli.cmd("pc").contains("  Default user-quota: 0 (**)\r\n"));

    assert_eq!(cli.cmd("cc bogus 2"), "\r\n  Error: unknown or constant parameter: bogus 2.\r\n\r\n> ");
    assert!(cli.cmd("cc max-bps lots").starts_with("  Error: "), "a value that is not a number is refused");
    assert_eq!(cli.cmd("cc cli-max-output-sessions 1"), "  cli-max-output-sessions: 1 (**)\r\n> ");
    let ps = cli.cmd("ps");
    assert_eq!(ps.matches(") id=").count(), 1, "{ps}");
    assert!(ps.contains("\r\n...\r\n\r\n  Total sessions: 2\r\n\r\n  Warning: too many output sessions"), "{ps}");

    // tc stun-only: Allocate goes unanswered (a new client times out).
    assert_eq!(cli.cmd("tc stun-only"), "  stun-only: ON\r\n> ");
    let mut third = UdpTurn::new(server.addr());
    assert_eq!(third.allocate(), Err(998), "no answer to Allocate with stun-only");
    assert!(stun_probe(server.addr(), Duration::from_secs(2)), "Binding still answered");
    assert_eq!(cli.cmd("tc stun-only"), "  stun-only: OFF\r\n> ");
    third.allocate().expect("allocate after stun-only is off again");

    let err = cli.cmd("tc bogus");
    assert!(err.starts_with("\r\n  Error: unknown or constant parameter: bogus.\r\n  You can toggle only the following parameters:\r\n"), "{err}");
    assert!(err.contains("  stun-only: OFF\r\n") && err.contains("  mobility: OFF\r\n"), "{err}");
}

#[test]
fn alternate_server_redirects_allocate() {
    let (_block, port) = cli_port();
    let server = start(port, PASSWORD, &[]);
    let mut cli = Cli::login(port, PASSWORD);
    assert_eq!(cli.cmd("aas 127.0.0.2:4478"), "> ");
    wait_log(&server, "Alternate server added: 127.0.0.2:4478");
    assert!(cli.cmd("pc").contains("  Alternate server: 127.0.0.2:4478\r\n"));

    let mut turn = UdpTurn::new(server.addr());
    let answer = turn.request(turnserver::stun::Method::ALLOCATE, common::turn_udp::udp_transport).expect("an answer");
    assert_eq!(common::turn_udp::code(&answer), 300);
    let alt = Message::parse(&answer).unwrap().address(AttrType::ALTERNATE_SERVER).unwrap().unwrap();
    assert_eq!(alt, "127.0.0.2:4478".parse().unwrap());

    assert_eq!(cli.cmd("das 127.0.0.2:4478"), "> ");
    assert!(cli.cmd("das 127.0.0.2:4478").starts_with("  Error: "), "not in the list any more");
    assert!(cli.cmd("aas not-an-address").starts_with("  Error: "));
    turn.allocate().expect("allocate once the alternate server is gone");
}

#[test]
fn drain_refuses_new_allocations_then_exits() {
    let (_block, port) = cli_port();
    let mut server = start(port, PASSWORD, &["--drain-min-allocations=1"]);
    let mut a = UdpTurn::new(server.addr());
    a.allocate().expect("a");
    let mut b = UdpTurn::new(server.addr());
    b.allocate().expect("b");
    let mut cli = Cli::login(port, PASSWORD);
    assert!(cli.cmd("drain").contains("draining"));
    wait_log(&server, "Drain command received from CLI user");
    let mut c = UdpTurn::new(server.addr());
    assert_eq!(c.allocate(), Err(403), "no new allocations while draining");
    assert!(server.wait_exit(Duration::from_millis(1500)).is_none(), "two allocations left: still running");
    assert_eq!(a.refresh(0), 0);
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits once drained to 1 allocation");
    assert!(status.success(), "{status}");
}

#[test]
fn stop_ends_the_process() {
    let (_block, port) = cli_port();
    let mut server = start(port, PASSWORD, &[]);
    let mut cli = Cli::login(port, PASSWORD);
    cli.send("stop");
    assert_eq!(cli.read_to_close(), "TURN server is shutting down\r\n");
    let status = server.wait_exit(Duration::from_secs(10)).expect("the server exits");
    assert!(status.success(), "{status}");
    assert!(server.log().contains("IPv4. Shutdown command received from CLI user: 127.0.0.1:"));
}

#[test]
fn simultaneous_clients_are_bounded() {
    let (_block, port) = cli_port();
    let _server = start(port, PASSWORD, &[]);
    let mut held: Vec<Cli> = (0..16)
        .map(|_| {
            let mut c = Cli::connect(port);
            c.read_until_end("Enter password: \r\n");
            c
        })
        .collect();
    let mut extra = Cli::connect(port);
    assert_eq!(extra.read_to_close(), "Too many CLI sessions, try again later\r\n");
    // A slot comes back when a client leaves.
    let mut gone = held.pop().unwrap();
    gone.send(PASSWORD);
    gone.read_until_end("> ");
    gone.send("q");
    assert_eq!(gone.read_to_close(), "Bye !\r\n");
    drop(gone);
    std::thread::sleep(Duration::from_millis(200));
    let mut again = Cli::login(port, PASSWORD);
    assert!(again.cmd("pu").contains("Total sessions: 0"));
}
