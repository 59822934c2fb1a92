//! The protocol core fed a sequence of datagrams from clients and peers, on a
//! virtual clock, with a fake relay provider.
//!
//! The server runs a realistic long-term-credential configuration (parsed from
//! a command line by the real parser). The input is a list of steps:
//!
//! ```text
//! flags u8 | delay u8 | length u16 (big endian) | bytes
//! flags: bits 0-1  endpoint: client source (client side) or peer address (peer side)
//!        bit  2    peer side (the datagram arrives on a relay socket)
//!        bit  3    sign: put the last NONCE the server gave this source into a
//!                  24-byte NONCE attribute and fix up MESSAGE-INTEGRITY (user
//!                  alice) and FINGERPRINT, so mutated requests still authenticate
//!        bit  4    client over TCP instead of UDP
//!        bit  5    run the timers after the datagram
//!        bits 6-7  peer side: which open relay socket receives it
//! delay: the clock advances first, by delay*10 ms below 128, else (delay-128)*5 s
//! ```
//!
//! Invariants checked: no allocation belongs to a source that never sent a
//! message with alice's valid MESSAGE-INTEGRITY; answers to clients are STUN or
//! ChannelData; nothing is sent from a relay socket that is not open; after
//! shutdown every relay socket is released.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use turnserver::config::{parse_args_in, Command, Config};
use turnserver::core::{
    Dest, Family, Now, Outputs, PortRequest, RelayBinding, RelayError, RelayId, RelayProvider, RelayRequest, Server,
    Transport,
};
use turnserver::stun::integrity::{fingerprint, hmac_sha1, long_term_key};
use turnserver::stun::{AttrType, ChannelData, Message};

const USER: &str = "alice";
const PASS: &str = "secret";
const REALM: &str = "example.org";

/// Client sources: two ports of one IPv4 host, another IPv4 host, an IPv6 host.
const CLIENTS: [&str; 4] = ["192.0.2.10:40000", "192.0.2.10:40001", "192.0.2.11:50000", "[2001:db8::10]:40000"];
/// Peers, as the seeds' XOR-PEER-ADDRESS name them (127.0.0.1:34783 is where
/// turnutils_peer listened during the capture).
const PEERS: [&str; 4] = ["198.51.100.20:5000", "198.51.100.21:6000", "[2001:db8::20]:5000", "127.0.0.1:34783"];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("bad address {s}: {e}"))
}

/// The configuration every run starts from, parsed once.
fn config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        let argv: Vec<String> = [
            "turnserver",
            "-n",
            "--lt-cred-mech",
            "--realm=example.org",
            "--user=alice:secret",
            "--user=bob:0x7d5d6c1ea4a4e0e8d4b0a5d7c24b2d1a",
            "--stateless-nonce-secret=fuzz-nonce-secret",
            "--allow-loopback-peers",
            "--no-cli",
            "--denied-peer-ip=198.51.100.99",
            "--user-quota=3",
            "--total-quota=6",
            "--max-allocate-lifetime=1200",
            "--channel-lifetime=600",
            "--permission-lifetime=300",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match parse_args_in(&argv, std::path::Path::new("/nonexistent"), None) {
            Ok(Command::Run(c)) => *c,
            other => panic!("fuzz configuration rejected: {other:?}"),
        }
    })
}

fn alice_key() -> &'static [u8; 16] {
    static KEY: OnceLock<[u8; 16]> = OnceLock::new();
    KEY.get_or_init(|| long_term_key(USER, REALM, PASS))
}

/// Relay sockets that are entries in a map.
#[derive(Default)]
struct FakeRelays {
    next_id: u32,
    next_port: u16,
    open: BTreeMap<u32, SocketAddr>,
    reservations: BTreeMap<u64, u16>,
}

impl RelayProvider for FakeRelays {
    fn bind_relay(&mut self, req: RelayRequest) -> Result<RelayBinding, RelayError> {
        if self.open.len() >= 16 {
            return Err(RelayError::NoPorts);
        }
        let ip: IpAddr = match req.family {
            Family::V4 => IpAddr::from([10, 0, 0, 1]),
            Family::V6 => IpAddr::from([0x2001, 0xdb8, 1, 0, 0, 0, 0, 1]),
        };
        let port = match req.port {
            PortRequest::Any => {
                self.next_port = self.next_port.wrapping_add(1);
                self.next_port
            }
            PortRequest::Even { reserve_next } => {
                self.next_port = (self.next_port | 1).wrapping_add(1);
                let p = self.next_port;
                self.next_port = p.wrapping_add(1);
                if reserve_next {
                    self.reservations.insert(0x5EED_0000 + u64::from(p), p.wrapping_add(1));
                }
                p
            }
            PortRequest::Reserved(t) => self.reservations.remove(&t).ok_or(RelayError::BadToken)?,
        };
        let token = match req.port {
            PortRequest::Even { reserve_next: true } => Some(0x5EED_0000 + u64::from(port)),
            _ => None,
        };
        let local = SocketAddr::new(ip, 49152 + port % 16000);
        self.next_id += 1;
        self.open.insert(self.next_id, local);
        Ok(RelayBinding { id: RelayId(self.next_id), local, advertised: local, reservation_token: token, shared: false })
    }

    fn release_relay(&mut self, id: RelayId) {
        assert!(self.open.remove(&id.0).is_some(), "relay {id:?} released twice or never bound");
    }

    fn supports(&self, _family: Family) -> bool {
        true
    }
}

/// Walk the attributes of a STUN message: (type, offset of the attribute header, value length).
fn attrs(msg: &[u8]) -> Vec<(u16, usize, usize)> {
    let mut out = Vec::new();
    let mut off = 20;
    while off + 4 <= msg.len() {
        let typ = u16::from_be_bytes([msg[off], msg[off + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[off + 2], msg[off + 3]]));
        if off + 4 + len > msg.len() {
            break;
        }
        out.push((typ, off, len));
        off += 4 + ((len + 3) & !3);
    }
    out
}

/// Make `msg` carry `nonce` and alice's MESSAGE-INTEGRITY (and a correct
/// FINGERPRINT after it), when it has attributes of the right sizes for them.
fn sign(msg: &mut [u8], nonce: Option<&[u8]>) {
    if msg.len() < 20 {
        return;
    }
    let list = attrs(msg);
    if let Some(n) = nonce {
        if let Some(&(_, off, len)) = list.iter().find(|a| a.0 == AttrType::NONCE && a.2 == n.len()) {
            msg[off + 4..off + 4 + len].copy_from_slice(n);
        }
    }
    let saved = [msg[2], msg[3]];
    let patch = |typ: u16, len: usize, msg: &mut [u8]| {
        if let Some(&(_, off, _)) = list.iter().find(|a| a.0 == typ && a.2 == len) {
            let covered = u16::try_from(off + 4 + len - 20).unwrap_or(u16::MAX).to_be_bytes();
            msg[2] = covered[0];
            msg[3] = covered[1];
            if typ == AttrType::MESSAGE_INTEGRITY {
                let mac = hmac_sha1(alice_key(), &[&msg[..off]]);
                msg[off + 4..off + 24].copy_from_slice(&mac);
            } else {
                let crc = fingerprint(&msg[..off]).to_be_bytes();
                msg[off + 4..off + 8].copy_from_slice(&crc);
            }
        }
    };
    patch(AttrType::MESSAGE_INTEGRITY, 20, msg);
    patch(AttrType::FINGERPRINT, 4, msg);
    msg[2] = saved[0];
    msg[3] = saved[1];
}

/// `FUZZ_DEBUG=1`: print what each step did (to check that seeds reach deep state).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("FUZZ_DEBUG").is_some())
}

struct Step<'a> {
    flags: u8,
    delay: u8,
    bytes: &'a [u8],
}

fn steps(mut data: &[u8]) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    while let [flags, delay, l0, l1, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(rest.len());
        out.push(Step { flags: *flags, delay: *delay, bytes: &rest[..len] });
        data = &rest[len..];
        if out.len() >= 64 {
            break;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let core = match turnserver::daemon::core_config(config()) {
        Ok(c) => c,
        Err(e) => panic!("core configuration: {e}"),
    };
    let mut server = Server::new(Arc::new(core), 0);
    let mut relays = FakeRelays::default();
    let mut out = Outputs::default();
    let mut now = Now::new(1_000, 1_700_000_000);
    let mut nonces: [Option<Vec<u8>>; 4] = Default::default();
    // Sources that sent something carrying alice's valid MESSAGE-INTEGRITY.
    let mut authenticated: BTreeSet<SocketAddr> = BTreeSet::new();

    for step in steps(data) {
        now = if step.delay < 128 { now.plus_ms(u64::from(step.delay) * 10) } else { now.plus_secs(u64::from(step.delay - 128) * 5) };
        let who = usize::from(step.flags & 3);
        let mut bytes = step.bytes.to_vec();
        out.clear();
        if step.flags & 4 != 0 {
            let ids: Vec<u32> = relays.open.keys().copied().collect();
            let relay = RelayId(ids.get(usize::from(step.flags >> 6) % ids.len().max(1)).copied().unwrap_or(1));
            server.handle_peer_datagram(now, relay, addr(PEERS[who]), &bytes, &mut out);
        } else {
            if step.flags & 8 != 0 {
                sign(&mut bytes, nonces[who].as_deref());
            }
            let from = addr(CLIENTS[who]);
            if let Ok(m) = Message::parse(&bytes) {
                if m.check_integrity(alice_key()) {
                    authenticated.insert(from);
                }
            }
            let transport = if step.flags & 16 != 0 { Transport::Tcp } else { Transport::Udp };
            let local = if from.is_ipv4() { addr("192.0.2.1:3478") } else { addr("[2001:db8::1]:3478") };
            server.handle_client_datagram(now, transport, local, from, &bytes, &mut relays, &mut out);
        }
        for t in &out.transmits {
            let payload = &out.buf[t.range.clone()];
            match t.dest {
                Dest::Client { to, .. } => {
                    if let Ok(m) = Message::parse(payload) {
                        if let Some(i) = CLIENTS.iter().position(|c| addr(c) == to) {
                            if let Some(n) = m.get(AttrType::NONCE) {
                                nonces[i] = Some(n.to_vec());
                            }
                        }
                    } else {
                        assert!(ChannelData::parse(payload).is_some(), "answer to a client is neither STUN nor ChannelData");
                    }
                }
                Dest::Peer { relay, .. } => {
                    assert!(relays.open.contains_key(&relay.0), "sent from relay {relay:?} that is not open");
                }
            }
        }
        if step.flags & 32 != 0 {
            server.handle_timeouts(now, &mut relays);
        }
        for a in server.allocations() {
            assert!(authenticated.contains(&a.client), "allocation for {} which never authenticated", a.client);
        }
        assert!(server.allocation_count() <= relays.open.len(), "more allocations than relay sockets");
        if debug() {
            eprintln!("step flags={:#04x} len={} -> {} out, {} allocations", step.flags, bytes.len(), out.transmits.len(), server.allocation_count());
        }
    }
    server.shutdown(&mut relays);
    assert_eq!(server.allocation_count(), 0);
    assert!(relays.open.is_empty(), "relay sockets left open after shutdown: {:?}", relays.open);
});
