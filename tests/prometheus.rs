//! The Prometheus exporter (`--prometheus`) of the real binary: real TURN
//! allocations and relayed traffic over UDP on loopback, then scrapes parsed
//! by the reference Prometheus text-format parser (Python's
//! `prometheus_client.parser`, in `<repo>/.venv`, installed by
//! scripts/test.sh). Checks coturn's names and labels, that traffic counters
//! move while the allocation is still open, allocations by transport,
//! authentication failures by reason, the HTTP answers (`/` = ok, 404, 405),
//! `--prometheus-path`, `--prometheus-username-labels`, HTTPS, and the
//! startup log lines and errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::turn_udp::{build_request, code, new_tid, udp_transport, UdpTurn, LT_FLAGS, REALM, USER};
use common::{echo_peer, repo_root, run_cmd, self_signed_cert, server_bin, PortBlock, TestServer};
use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{AttrType, ChannelData, Class, MessageBuilder, MessageType, Method};

fn venv_python() -> PathBuf {
    let py = repo_root().join(".venv/bin/python");
    assert!(py.is_file(), "{} not found: run ./scripts/test.sh once to create the Python venv", py.display());
    let check = run_cmd(&py, &["-c", "import prometheus_client.parser"], Duration::from_secs(30));
    assert!(
        check.success(),
        "prometheus_client is not importable from {}: run ./scripts/test.sh to install it\n{}",
        py.display(),
        check.describe()
    );
    py
}

/// Parses a scrape (or fetches one over HTTPS first) with the reference
/// parser and prints one line per family (`# name type`) and per sample
/// (`name{sorted labels}\tvalue`). A parse error fails the script.
const PARSER: &str = r##"
import sys, ssl, urllib.request
from prometheus_client.parser import text_string_to_metric_families
src = sys.argv[1]
if src.startswith("https://"):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(src, context=ctx, timeout=10) as r:
        if r.status != 200:
            sys.exit("status %d" % r.status)
        print("content-type\t" + r.headers.get("Content-Type", ""))
        text = r.read().decode("utf-8")
else:
    text = open(src, encoding="utf-8").read()
for fam in text_string_to_metric_families(text):
    print("# %s %s" % (fam.name, fam.type))
    for s in fam.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        print("%s{%s}\t%r" % (s.name, labels, s.value))
"##;

/// A parsed scrape: sample `name{labels}` (labels sorted, `{}` when none) →
/// value, and family name → type.
#[derive(Debug, Default)]
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
    content_type: Option<String>,
}

impl Scrape {
    /// The value of sample `key`. The parser reports a counter's samples with
    /// a `_total` suffix even when the text (coturn's names) has none, so
    /// `name{..}` also finds `name_total{..}`.
    fn get(&self, key: &str) -> f64 {
        let (name, labels) = key.split_at(key.find('{').unwrap_or(key.len()));
        let alt = format!("{name}_total{labels}");
        *self
            .samples
            .get(key)
            .or_else(|| self.samples.get(&alt))
            .unwrap_or_else(|| panic!("{key} missing from the scrape: {:#?}", self.samples.keys().collect::<Vec<_>>()))
    }
}

fn parse_output(out: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            s.types.insert(name.to_string(), ty.to_string());
        } else if let Some(ct) = line.strip_prefix("content-type\t") {
            s.content_type = Some(ct.to_string());
        } else if let Some((k, v)) = line.split_once('\t') {
            s.samples.insert(k.to_string(), v.parse().unwrap());
        }
    }
    s
}

/// Runs the reference parser on `text`.
fn parse(text: &str) -> Scrape {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scrape.txt");
    std::fs::write(&file, text).unwrap();
    let out = run_cmd(&py, &["-c", PARSER, file.to_str().unwrap()], Duration::from_secs(30));
    assert!(out.success(), "the Prometheus parser refused the scrape: {}\n--- scrape ---\n{text}", out.describe());
    parse_output(&out.stdout)
}

/// One HTTP/1.1 exchange: (status, headers, body).
fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
}

/// Scrape `path` over HTTP and parse it.
fn scrape(addr: SocketAddr, path: &str) -> Scrape {
    let (status, head, body) = get(addr, path);
    assert_eq!(status, 200, "{head}\n{body}");
    let mut s = parse(&body);
    s.content_type = head.lines().find_map(|l| l.strip_prefix("Content-Type: ")).map(str::to_string);
    s
}

/// A server with long-term credentials and the exporter on its own port of
/// `extra` (a port block claimed for it), plus `flags`.
fn start(extra: &PortBlock, flags: &[&str]) -> (TestServer, SocketAddr) {
    let port = extra.spare_port(0);
    let mut all: Vec<String> = LT_FLAGS.iter().map(|s| s.to_string()).collect();
    all.extend(["--prometheus".to_string(), format!("--prometheus-port={port}"), "--prometheus-address=127.0.0.1".to_string()]);
    all.extend(flags.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let server = TestServer::start(&refs);
    (server, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// An allocation with a channel to a UDP echo peer.
struct Relayed {
    turn: UdpTurn,
}

const CHANNEL: u16 = 0x4000;

impl Relayed {
    fn open(server: SocketAddr) -> Relayed {
        let mut turn = UdpTurn::new(server);
        turn.allocate().expect("allocate");
        let peer = echo_peer();
        assert_eq!(turn.bind_channel(CHANNEL, peer), 0, "ChannelBind");
        Relayed { turn }
    }

    /// Send `n` ChannelData messages of 100 bytes and wait for their echoes.
    fn echo(&mut self, n: usize) {
        let payload = [7u8; 100];
        let mut frame = Vec::new();
        ChannelData::encode(CHANNEL, &payload, false, &mut frame);
        let mut buf = [0u8; 2048];
        self.turn.sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        for i in 0..n {
            self.turn.sock.send_to(&frame, self.turn.server).unwrap();
            let (len, _) = self.turn.sock.recv_from(&mut buf).unwrap_or_else(|e| panic!("echo {i} not relayed back: {e}"));
            let cd = ChannelData::parse(&buf[..len]).unwrap();
            assert_eq!((cd.channel, cd.data.len()), (CHANNEL, 100));
        }
    }
}

/// An Allocate signed with the wrong password: 401 again.
fn wrong_password(server: SocketAddr) {
    let mut turn = UdpTurn::new(server);
    let first = turn.transact(&build_request(Method::ALLOCATE, new_tid(), None, udp_transport)).unwrap();
    assert_eq!(code(&first), 401);
    let nonce = turn.nonce.clone().unwrap();
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), new_tid());
    udp_transport(&mut b);
    b.add_raw(AttrType::USERNAME, USER.as_bytes());
    b.add_raw(AttrType::REALM, REALM.as_bytes());
    b.add_raw(AttrType::NONCE, nonce.as_bytes());
    b.add_integrity(&long_term_key(USER, REALM, "wrong-password"));
    let r = b.finish();
    let answer = turn.transact(&buf[r]).unwrap();
    assert_eq!(code(&answer), 401, "a wrong password gets another 401");
}

#[test]
fn scrape_shows_live_traffic_allocations_and_auth_failures() {
    let extra = PortBlock::claim();
    let (server, prom) = start(&extra, &[]);
    let log = server.log();
    assert!(log.contains(&format!("prometheus exporter server will listen on {prom}")), "{log}");
    assert!(log.contains("prometheus collector started successfully"), "{log}");

    // Before any traffic: every family is there, with its type.
    let s0 = scrape(prom, "/metrics");
    assert_eq!(s0.content_type.as_deref(), Some("text/plain; version=0.0.4"));
    for (family, ty) in [
        ("turn_total_allocations", "gauge"),
        ("turn_total_traffic_rcvp", "counter"),
        ("turn_total_traffic_peer_sentb", "counter"),
        ("stun_binding_request", "counter"),
        ("turn_packet_processed", "counter"),
        ("turn_udp_recvmmsg_calls", "counter"),
        ("turn_udp_sendmmsg_gso_datagrams", "counter"),
        ("turn_unauthenticated_401_dropped_responses", "counter"),
        ("turn_ratelimit_total_buckets", "gauge"),
        // The parser names a counter family without `_total`.
        ("turn_allocations_created", "counter"),
        ("turn_auth_failures", "counter"),
        ("turn_udp_recv_batch_size", "histogram"),
        ("turn_udp_fast_path_enabled", "gauge"),
        ("turn_draining", "gauge"),
    ] {
        assert_eq!(s0.types.get(family).map(String::as_str), Some(ty), "{family}: {:?}", s0.types);
    }
    for t in ["UDP", "TCP", "TLS/TCP", "DTLS"] {
        assert_eq!(s0.get(&format!("turn_total_allocations{{type=\"{t}\"}}")), 0.0);
    }

    // A live allocation relaying 20 datagrams each way.
    let mut relayed = Relayed::open(server.addr());
    relayed.echo(20);
    let s1 = scrape(prom, "/metrics");
    println!(
        "live: allocations UDP {} rcvp {} sentp {} peer_sentp {} peer_rcvb {} processed {} dropped {}",
        s1.get("turn_total_allocations{type=\"UDP\"}"),
        s1.get("turn_total_traffic_rcvp{}"),
        s1.get("turn_total_traffic_sentp{}"),
        s1.get("turn_total_traffic_peer_sentp{}"),
        s1.get("turn_total_traffic_peer_rcvb{}"),
        s1.get("turn_packet_processed{}"),
        s1.get("turn_packet_dropped{}"),
    );
    assert_eq!(s1.get("turn_total_allocations{type=\"UDP\"}"), 1.0);
    assert_eq!(s1.get("turn_total_allocations{type=\"TCP\"}"), 0.0);
    // Client side: 20 ChannelData in (104 bytes each) and 20 out; peer side:
    // 20 datagrams of 100 bytes each way. Not waiting for the session end.
    assert_eq!(s1.get("turn_traffic_rcvp{realm=\"example.org\"}"), 20.0);
    assert_eq!(s1.get("turn_traffic_rcvb{realm=\"example.org\"}"), 20.0 * 104.0);
    assert_eq!(s1.get("turn_traffic_sentp{realm=\"example.org\"}"), 20.0);
    assert_eq!(s1.get("turn_traffic_peer_sentp{realm=\"example.org\"}"), 20.0);
    assert_eq!(s1.get("turn_traffic_peer_rcvb{realm=\"example.org\"}"), 2000.0);
    assert_eq!(s1.get("turn_total_traffic_peer_rcvp{}"), 20.0);
    assert!(!s1.samples.keys().any(|k| k.contains("user=")), "no user label by default");
    assert!(s1.get("turn_allocations_created_total{}") >= 1.0);
    assert!(s1.get("turn_packet_processed{}") >= 40.0);
    assert!(s1.get("turn_udp_recvmmsg_packets{}") >= 40.0);
    assert!(s1.get("turn_udp_recv_batch_size_count{}") >= 1.0);
    assert_eq!(s1.get("turn_udp_recv_batch_size_sum{}"), s1.get("turn_udp_recvmmsg_packets{}"));
    assert!(s1.get("turn_udp_sendmmsg_datagrams{}") >= 40.0);
    assert!(s1.get("stun_binding_request{}") >= 1.0, "the harness's readiness probe is a Binding");
    assert!(s1.get("turn_unauthenticated_401_responses{}") >= 1.0);

    // More traffic on the same, still open, allocation: the counters move.
    relayed.echo(10);
    let s2 = scrape(prom, "/metrics");
    assert_eq!(s2.get("turn_traffic_rcvp{realm=\"example.org\"}"), 30.0);
    assert_eq!(s2.get("turn_total_traffic_sentp{}"), 30.0);
    assert_eq!(s2.get("turn_total_allocations{type=\"UDP\"}"), 1.0);

    // A wrong password, counted by reason.
    wrong_password(server.addr());
    let s3 = scrape(prom, "/metrics");
    assert_eq!(s3.get("turn_auth_failures_total{reason=\"wrong_integrity\"}"), 1.0);
    assert_eq!(s3.get("turn_auth_failures_total{reason=\"unknown_user\"}"), 0.0);

    // The session ends: the allocation is gone, its traffic stays counted.
    assert_eq!(relayed.turn.refresh(0), 0);
    let s4 = scrape(prom, "/metrics");
    assert_eq!(s4.get("turn_total_allocations{type=\"UDP\"}"), 0.0);
    assert_eq!(s4.get("turn_traffic_rcvp{realm=\"example.org\"}"), 30.0);
    assert!(s4.get("turn_allocations_deleted_total{}") >= 1.0);
}

#[test]
fn http_answers_as_coturn() {
    let extra = PortBlock::claim();
    let (_server, prom) = start(&extra, &[]);
    let (status, head, body) = get(prom, "/");
    assert_eq!((status, body.as_str()), (200, "ok"), "{head}");
    let (status, _, body) = get(prom, "/nope");
    assert_eq!((status, body.as_str()), (404, "not found"));
    let (status, head, body) = http(prom, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!((status, body.as_str()), (405, "method not allowed"), "{head}");
    assert!(head.contains("Allow: GET"), "{head}");
    let (status, _, _) = http(prom, "garbage\r\n\r\n");
    assert_eq!(status, 400);
    // A query string does not change the route.
    assert_eq!(get(prom, "/metrics?x=1").0, 200);
}

#[test]
fn custom_path_and_username_labels() {
    let extra = PortBlock::claim();
    let (server, prom) = start(&extra, &["--prometheus-path=/custom/scrape", "--prometheus-username-labels"]);
    assert_eq!(get(prom, "/metrics").0, 404);
    let mut relayed = Relayed::open(server.addr());
    relayed.echo(5);
    let s = scrape(prom, "/custom/scrape");
    assert_eq!(s.get("turn_traffic_rcvp{realm=\"example.org\",user=\"user\"}"), 5.0);
    assert_eq!(s.get("turn_traffic_peer_rcvp{realm=\"example.org\",user=\"user\"}"), 5.0);
    assert_eq!(s.get("turn_total_traffic_rcvp{}"), 5.0, "the totals have no labels");
}

#[test]
fn https_exporter() {
    let extra = PortBlock::claim();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(dir.path());
    let (server, prom) = start(
        &extra,
        &["--prometheus-tls", &format!("--prometheus-cert={}", cert.display()), &format!("--prometheus-key={}", key.display())],
    );
    assert!(server.log().contains("(https, scrape path /metrics)"), "{}", server.log());
    let py = venv_python();
    let url = format!("https://{prom}/metrics");
    let out = run_cmd(&py, &["-c", PARSER, &url], Duration::from_secs(30));
    assert!(out.success(), "HTTPS scrape failed: {}", out.describe());
    let s = parse_output(&out.stdout);
    assert_eq!(s.content_type.as_deref(), Some("text/plain; version=0.0.4"));
    assert_eq!(s.get("turn_total_allocations{type=\"UDP\"}"), 0.0);
    println!("https scrape: {} samples", s.samples.len());
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut c = TcpStream::connect(prom).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf));
}

#[test]
fn disabled_by_default_and_bind_failure_is_fatal() {
    let server = TestServer::start(&[]);
    assert!(server.log().contains("prometheus collector disabled, not started"), "{}", server.log());

    // The exporter's port is taken: the server refuses to start and says why.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let ports = PortBlock::claim();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "-n".to_string(),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={}", ports.listen_port()),
        "--relay-ip=127.0.0.1".into(),
        format!("--min-port={}", ports.min_relay_port()),
        format!("--max-port={}", ports.max_relay_port()),
        "--log-file=stdout".into(),
        "--no-tls".into(),
        "--no-cli".into(),
        format!("--pidfile={}", dir.path().join("pid").display()),
        format!("--userdb={}", dir.path().join("db.sqlite").display()),
        "--prometheus".into(),
        "--prometheus-address=127.0.0.1".into(),
        format!("--prometheus-port={port}"),
    ];
    let started = Instant::now();
    let out = run_cmd(&server_bin(), &args, Duration::from_secs(20));
    assert!(!out.timed_out && !out.success(), "the server should stop: {}", out.describe());
    assert!(out.all().contains(&format!("cannot listen on 127.0.0.1:{port}")), "{}", out.describe());
    println!("bind failure reported after {:?}", started.elapsed());
    drop(taken);
}
