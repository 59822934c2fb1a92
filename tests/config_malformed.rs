//! Malformed configuration, end to end (issue 7): every row of [`CASES`]
//! starts the server binary with one bad option, given on the command line or
//! as a `turnserver.conf` line (`-c FILE`), and checks that it prints coturn's
//! message, exits with coturn's code (255) quickly, and never opened a
//! listener: the chosen port never shows up in `/proc/net/{udp,tcp}{,6}`
//! while the process runs, it is bindable afterwards, and the output has no
//! "listener opened" line.
//!
//! A few rows document options coturn accepts despite an odd value; we
//! accept them the same way ([`Expect::Runs`]).
//!
//! With `TURNSERVER_BIN` pointing at coturn (e.g. `/usr/bin/turnserver`), only
//! the rows where coturn 4.6.1 itself refuses ([`Origin::Coturn`]) are run, so
//! the table's claims about coturn can be re-checked.

mod common;

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{server_bin, server_coturn_version, terminate, PortBlock};

/// How the bad option is given.
#[derive(Clone, Copy)]
enum Given {
    /// Extra command-line words, after the harness flags.
    Flags(&'static [&'static str]),
    /// The contents of the configuration file passed with `-c`.
    File(&'static str),
}

/// What must happen.
#[derive(Clone, Copy)]
enum Expect {
    /// Exit with this code before opening anything, printing this fragment.
    Exit(i32, &'static str),
    /// Start normally (the value is accepted, as coturn does), printing this
    /// fragment as a warning.
    Runs(&'static str),
}

/// Where the expected behaviour comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// coturn 4.6.1 does exactly this (message and exit code).
    Coturn,
    /// coturn 4.6.1 accepts it, newer coturn refuses it (per the reference:
    /// malformed peer ranges fatal since 4.11, ports validated 0-65535,
    /// the CLI off unless `--cli`).
    Newer,
    /// coturn accepts it (`atoi` turns garbage into 0, a bad address is only
    /// logged); we refuse it rather than run with a value nobody meant.
    Stricter,
}

struct Case {
    name: &'static str,
    given: Given,
    expect: Expect,
    origin: Origin,
}

const fn case(name: &'static str, given: Given, expect: Expect, origin: Origin) -> Case {
    Case { name, given, expect, origin }
}

use Expect::{Exit, Runs};
use Given::{File, Flags};
use Origin::{Coturn, Newer, Stricter};

const AZ: &str = "CONFIG ERROR: -a and -z options cannot be used together.";
const RELAYS: &str = "CONFIG ERROR: --no-udp-relay and --no-tcp-relay options cannot be used together.";
const BPS: &str = "CONFIG ERROR: If you set the --bps-capacity option, then you must set --max-bps options, too.";
const BOOL: &str = "Unknown boolean value: maybe. You can use on/off, yes/no, 1/0, true/false.";
const LOOPBACK: &str = "CONFIG ERROR: allow_loopback_peers and empty cli password cannot be used together.";

/// The table. Rows with a file line use the same option as the flag row above them.
const CASES: &[Case] = &[
    // ---- coturn's sanity checks ----
    case("a-with-z", Flags(&["-a", "-z"]), Exit(255, AZ), Coturn),
    case("a-with-z (file)", File("lt-cred-mech\nno-auth\n"), Exit(255, AZ), Coturn),
    case("secret-with-z", Flags(&["--static-auth-secret=s", "--no-auth"]), Exit(255, AZ), Coturn),
    case("no-udp-relay+no-tcp-relay", Flags(&["--no-udp-relay", "--no-tcp-relay"]), Exit(255, RELAYS), Coturn),
    case("no-udp-relay+no-tcp-relay (file)", File("no-udp-relay\nno-tcp-relay\n"), Exit(255, RELAYS), Coturn),
    case("bps-capacity without max-bps", Flags(&["--bps-capacity=1000"]), Exit(255, BPS), Coturn),
    case("bps-capacity without max-bps (file)", File("bps-capacity=1000\n"), Exit(255, BPS), Coturn),
    // ---- getopt: unknown options and missing values (usage follows) ----
    case("unknown long option", Flags(&["--bogus-option"]), Exit(255, "unrecognized option '--bogus-option'"), Coturn),
    case("unknown long option usage", Flags(&["--bogus-option"]), Exit(255, "Usage: turnserver [options]"), Coturn),
    case("unknown short option", Flags(&["-Y"]), Exit(255, "invalid option -- 'Y'"), Coturn),
    case("long option without value", Flags(&["--realm"]), Exit(255, "option '--realm' requires an argument"), Coturn),
    case("-p without value", Flags(&["-p"]), Exit(255, "option requires an argument -- 'p'"), Coturn),
    case("-K without value", Flags(&["-K"]), Exit(255, "option requires an argument -- 'K'"), Coturn),
    // ---- values coturn checks while reading options ----
    case("bad boolean", Flags(&["--fingerprint=maybe"]), Exit(255, BOOL), Coturn),
    case("bad boolean (file)", File("fingerprint=maybe\n"), Exit(255, BOOL), Coturn),
    case("bad boolean -v", Flags(&["--verbose=maybe"]), Exit(255, BOOL), Coturn),
    case(
        "unknown proc-user",
        Flags(&["--proc-user=no-such-user-turnserver-rs"]),
        Exit(255, "Unknown user name: no-such-user-turnserver-rs"),
        Coturn,
    ),
    case(
        "unknown proc-user (file)",
        File("proc-user=no-such-user-turnserver-rs\n"),
        Exit(255, "Unknown user name: no-such-user-turnserver-rs"),
        Coturn,
    ),
    case(
        "unknown proc-group",
        Flags(&["--proc-group=no-such-group-turnserver-rs"]),
        Exit(255, "Unknown group name: no-such-group-turnserver-rs"),
        Coturn,
    ),
    case(
        "unknown proc-group (file)",
        File("proc-group=no-such-group-turnserver-rs\n"),
        Exit(255, "Unknown group name: no-such-group-turnserver-rs"),
        Coturn,
    ),
    // ---- newer coturn refuses these (4.6.1 does not) ----
    case(
        "allowed-peer-ip CIDR",
        Flags(&["--allowed-peer-ip=10.0.0.0/8"]),
        Exit(255, "CONFIG ERROR: --allowed-peer-ip: wrong IP address or range format: '10.0.0.0/8'"),
        Newer,
    ),
    case(
        "denied-peer-ip garbage (file)",
        File("denied-peer-ip=garbage\n"),
        Exit(255, "CONFIG ERROR: --denied-peer-ip: wrong IP address or range format: 'garbage'"),
        Newer,
    ),
    case(
        "denied-peer-ip reversed range",
        Flags(&["--denied-peer-ip=10.0.0.9-10.0.0.1"]),
        Exit(255, "CONFIG ERROR: --denied-peer-ip: wrong IP address or range format"),
        Newer,
    ),
    case("loopback peers with a CLI without password", Flags(&["--cli", "--allow-loopback-peers"]), Exit(255, LOOPBACK), Newer),
    case(
        "loopback peers with a CLI without password (file)",
        File("cli\nallow-loopback-peers\n"),
        Exit(255, LOOPBACK),
        Newer,
    ),
    case(
        "min-port out of range",
        Flags(&["--min-port=70000"]),
        Exit(255, "CONFIG ERROR: wrong value of --min-port: '70000'"),
        Newer,
    ),
    case(
        "max-port negative (file)",
        File("max-port=-1\n"),
        Exit(255, "CONFIG ERROR: wrong value of --max-port: '-1'"),
        Newer,
    ),
    // ---- coturn runs with these; we refuse them ----
    case(
        "min-port above max-port",
        Flags(&["--min-port=60000", "--max-port=50000"]),
        Exit(255, "CONFIG ERROR: --min-port (60000) must not be greater than --max-port (50000)."),
        Stricter,
    ),
    case(
        "listening-port garbage",
        Flags(&["--listening-port=abc"]),
        Exit(255, "CONFIG ERROR: wrong value of --listening-port: 'abc'"),
        Stricter,
    ),
    case(
        "listening-port bare (file)",
        File("listening-port\n"),
        Exit(255, "CONFIG ERROR: wrong value of --listening-port: ''"),
        Stricter,
    ),
    case(
        "tls-listening-port too big",
        Flags(&["--tls-listening-port=65536"]),
        Exit(255, "CONFIG ERROR: wrong value of --tls-listening-port: '65536'"),
        Stricter,
    ),
    case(
        "listening-ip not an address",
        Flags(&["--listening-ip=foo"]),
        Exit(255, "CONFIG ERROR: --listening-ip: wrong IP address format: foo"),
        Stricter,
    ),
    case(
        "listening-ip short (file)",
        File("listening-ip=1.2.3\n"),
        Exit(255, "CONFIG ERROR: --listening-ip: wrong IP address format: 1.2.3"),
        Stricter,
    ),
    case(
        "relay-ip device name",
        Flags(&["--relay-ip=eth0"]),
        Exit(255, "CONFIG ERROR: --relay-ip: wrong IP address format: eth0"),
        Stricter,
    ),
    case("external-ip garbage", Flags(&["--external-ip=foo"]), Exit(255, "-X : Wrong address format: foo"), Stricter),
    case(
        "external-ip bad private part (file)",
        File("external-ip=1.2.3.4/bad\n"),
        Exit(255, "-X : Wrong address format: bad"),
        Stricter,
    ),
    case(
        "alternate-server host name",
        Flags(&["--alternate-server=foo"]),
        Exit(255, "CONFIG ERROR: wrong value of --alternate-server: 'foo'"),
        Stricter,
    ),
    case(
        "alternate-server bad port",
        Flags(&["--alternate-server=1.2.3.4:99999"]),
        Exit(255, "CONFIG ERROR: wrong value of --alternate-server: '1.2.3.4:99999'"),
        Stricter,
    ),
    case(
        "tls-alternate-server garbage (file)",
        File("tls-alternate-server=foo\n"),
        Exit(255, "CONFIG ERROR: wrong value of --tls-alternate-server: 'foo'"),
        Stricter,
    ),
    case(
        "aux-server garbage",
        Flags(&["--aux-server=foo"]),
        Exit(255, "CONFIG ERROR: wrong value of --aux-server: 'foo'"),
        Stricter,
    ),
    case(
        "relay-threads garbage",
        Flags(&["-m", "abc"]),
        Exit(255, "CONFIG ERROR: wrong value of --relay-threads: 'abc'"),
        Stricter,
    ),
    case(
        "stale-nonce garbage",
        Flags(&["--stale-nonce=abc"]),
        Exit(255, "CONFIG ERROR: wrong value of --stale-nonce: 'abc'"),
        Stricter,
    ),
    case(
        "channel-lifetime negative (file)",
        File("channel-lifetime=-1\n"),
        Exit(255, "CONFIG ERROR: wrong value of --channel-lifetime: '-1'"),
        Stricter,
    ),
    case(
        "allocation-default-address-family unknown",
        Flags(&["--allocation-default-address-family=ipv5"]),
        Exit(255, "CONFIG ERROR: wrong value of --allocation-default-address-family: 'ipv5'"),
        Stricter,
    ),
    case(
        "user without colon",
        Flags(&["-a", "-r", "example.org", "--user=bob"]),
        Exit(255, "Wrong user account: bad user 'bob'"),
        Stricter,
    ),
    case(
        "user with a bad hex key (file)",
        File("lt-cred-mech\nrealm=example.org\nuser=bob:0xZZ\n"),
        Exit(255, "Wrong user account: bad user 'bob': key after 0x must be exactly 32 hex digits"),
        Stricter,
    ),
    // ---- coturn accepts these with a message; so do we ----
    case(
        "external-ip twice",
        Flags(&["--external-ip=1.2.3.4", "--external-ip=5.6.7.8"]),
        Runs("You cannot define external IP more than once in the configuration"),
        Coturn,
    ),
    case("unknown key (file)", File("bogus-key=1\n"), Runs("Bad configuration format: bogus-key"), Coturn),
    case("stray argument", Flags(&["junkarg"]), Runs("Unknown argument: junkarg"), Coturn),
];

/// Whether something is bound to `port` on any address (IPv4 or IPv6, UDP
/// or TCP), according to `/proc/net`.
fn port_in_proc(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6", "/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        fs::read_to_string(f).unwrap_or_default().lines().skip(1).any(|l| {
            // Field 1 is the local address, `HEXIP:HEXPORT`.
            l.split_whitespace().nth(1).is_some_and(|local| local.ends_with(&want))
        })
    })
}

fn bindable(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// What one run produced.
struct Outcome {
    code: Option<i32>,
    output: String,
    port_seen: bool,
    elapsed: Duration,
    /// The row's ports, still claimed (so nobody else binds them meanwhile).
    ports: PortBlock,
}

/// Start the binary with the harness flags and the row's option; wait up to
/// `limit` for it to exit (watching the port meanwhile), or, for rows that
/// must run, until its listener is up, then stop it by PID.
fn run_case(bin: &Path, c: &Case, coturn: bool, limit: Duration) -> Outcome {
    let ports = PortBlock::claim();
    let port = ports.listen_port();
    let dir = tempfile::Builder::new().prefix("turnserver-malformed-").tempdir().expect("temp dir");
    let mut args: Vec<String> = Vec::new();
    match c.given {
        Flags(_) => args.push("-n".into()),
        File(text) => {
            let conf = dir.path().join("turnserver.conf");
            fs::write(&conf, text).expect("write config");
            args.push("-c".into());
            args.push(conf.display().to_string());
        }
    }
    args.extend([
        "--listening-ip=127.0.0.1".to_string(),
        format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1".to_string(),
        format!("--min-port={}", ports.min_relay_port()),
        format!("--max-port={}", ports.max_relay_port()),
        "--log-file=stdout".to_string(),
        format!("--pidfile={}", dir.path().join("pid").display()),
        "--no-tls".to_string(),
        "--no-dtls".to_string(),
        "--no-cli".to_string(),
    ]);
    if coturn {
        // coturn 4.6.1 opens a SQLite user DB by default; keep it private.
        args.push(format!("--userdb={}", dir.path().join("turndb").display()));
    }
    if let Flags(words) = c.given {
        args.extend(words.iter().map(|w| w.to_string()));
    }
    let out_path = dir.path().join("output");
    let out = fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("dup output file");
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(&args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let must_run = matches!(c.expect, Runs(_));
    let mut port_seen = false;
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        port_seen |= port_in_proc(port);
        if (must_run && port_seen) || start.elapsed() >= limit {
            // Give a running server a moment to flush its start-up lines.
            if must_run {
                std::thread::sleep(Duration::from_millis(200));
            }
            terminate(&mut child, Duration::from_secs(3));
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned();
    Outcome { code, output, port_seen, elapsed: start.elapsed(), ports }
}

/// One row against the binary; `Err` explains a mismatch.
fn check(bin: &Path, c: &Case, coturn: bool) -> Result<Duration, String> {
    let limit = Duration::from_secs(5);
    let o = run_case(bin, c, coturn, limit);
    let show = || format!("--- output ---\n{}", o.output);
    match c.expect {
        Exit(code, msg) => {
            if o.code != Some(code) {
                return Err(format!("exit code {:?} after {:?}, expected {code}\n{}", o.code, o.elapsed, show()));
            }
            if !o.output.contains(msg) {
                return Err(format!("message {msg:?} missing\n{}", show()));
            }
            if o.port_seen {
                return Err(format!("the listening port was bound before exiting\n{}", show()));
            }
            if o.output.contains("listener opened") {
                return Err(format!("a listener was opened\n{}", show()));
            }
            if !bindable(o.ports.listen_port()) {
                return Err(format!("port {} is not bindable after the exit\n{}", o.ports.listen_port(), show()));
            }
        }
        Runs(msg) => {
            if o.code.is_some() {
                return Err(format!("exited with {:?}, expected to run\n{}", o.code, show()));
            }
            if !o.port_seen {
                return Err(format!("no listener within {limit:?}\n{}", show()));
            }
            if !o.output.contains(msg) {
                return Err(format!("message {msg:?} missing\n{}", show()));
            }
        }
    }
    Ok(o.elapsed)
}

#[test]
fn malformed_configuration_table() {
    let bin = server_bin();
    assert!(bin.is_file(), "server binary {} not found (cargo build --release --bins)", bin.display());
    let coturn = server_coturn_version().is_some();
    let rows: Vec<&Case> = CASES.iter().filter(|c| !coturn || c.origin == Coturn).collect();
    // Rows are independent (each has its own port block and directory): run
    // them a few at a time.
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(rows.len().div_ceil(6).max(1))
            .map(|chunk| {
                let bin = &bin;
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for c in chunk {
                        match check(bin, c, coturn) {
                            Ok(t) if matches!(c.expect, Exit(..)) && t > Duration::from_secs(3) => {
                                bad.push(format!("[{}] took {t:?} to exit", c.name))
                            }
                            Ok(_) => {}
                            Err(e) => bad.push(format!("[{}] {e}", c.name)),
                        }
                    }
                    bad
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("row thread")).collect()
    });
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n\n"));
}

#[test]
fn table_is_well_formed() {
    for c in CASES {
        if let Exit(code, msg) = c.expect {
            assert!(code != 0 && !msg.is_empty(), "{}", c.name);
        }
        if let Flags(words) = c.given {
            assert!(!words.is_empty(), "{}", c.name);
        }
    }
    let names: std::collections::HashSet<_> = CASES.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), CASES.len(), "duplicate row names");
}
