//! Per-packet cost of the protocol core, without sockets: one `Server` with a
//! fake relay provider, allocations made through the real Allocate path, and
//! each relay direction timed on its own.
//!
//! Groups:
//! - `relay/*`: ChannelData client→peer, peer→client as ChannelData, Send
//!   indication → peer, peer → Data indication (100-byte payload, one
//!   allocation with a channel bound).
//! - `allocate/*`: the full 401 + signed Allocate exchange from a new client
//!   address, with 1 and with 1000 other allocations present. Only the two
//!   `handle_client_datagram` calls are timed; building the client's requests
//!   and deleting the allocation afterwards (Refresh LIFETIME 0) are not.
//!
//! `cargo bench --bench core_path` (criterion 0.5; add `-- relay` to filter).

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use turnserver::core::credentials::{AuthMode, Credentials};
use turnserver::core::nonce::NonceGen;
use turnserver::core::{Transport, 
    CoreConfig, Dest, Family, Now, Outputs, PortRequest, RelayBinding, RelayError, RelayId, RelayProvider, RelayRequest, Server,
};
use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{AttrType, ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const REALM: &str = "bench.test";
const USER: &str = "bench";
const PASS: &str = "benchpass";
const PAYLOAD: usize = 100;
const CHANNEL: u16 = 0x4000;

/// Relay sockets that are only map entries.
#[derive(Default)]
struct FakeRelays {
    next_port: u16,
    next_id: u32,
    open: BTreeMap<u32, SocketAddr>,
}

impl RelayProvider for FakeRelays {
    fn bind_relay(&mut self, req: RelayRequest) -> Result<RelayBinding, RelayError> {
        if req.family != Family::V4 || matches!(req.port, PortRequest::Reserved(_)) {
            return Err(RelayError::FamilyNotSupported);
        }
        // Ports cycle through 10000..=59999; ids never repeat.
        self.next_port = if (10_000..59_999).contains(&self.next_port) { self.next_port + 1 } else { 10_000 };
        self.next_id += 1;
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)), self.next_port);
        self.open.insert(self.next_id, local);
        Ok(RelayBinding { id: RelayId(self.next_id), local, advertised: local, reservation_token: None, shared: false })
    }

    fn release_relay(&mut self, id: RelayId) {
        self.open.remove(&id.0);
    }

    fn supports(&self, family: Family) -> bool {
        family == Family::V4
    }
}

/// The server side of the bench: one core thread, its relays and a fixed clock.
struct Bed {
    server: Server,
    relays: FakeRelays,
    now: Now,
    local: SocketAddr,
    out: Outputs,
    clients: u32,
}

/// A client's long-term credential state (learned from a 401).
struct Client {
    addr: SocketAddr,
    realm: String,
    nonce: String,
    key: [u8; 16],
    tid: u32,
}

impl Bed {
    fn new() -> Self {
        let mut users = HashMap::new();
        users.insert(USER.to_string(), turnserver::core::credentials::long_term_key(USER, REALM, PASS));
        let cfg = CoreConfig::new(
            Credentials::new(AuthMode::LongTerm { users }, REALM.into()),
            NonceGen::new(Some("bench-secret"), 600),
        );
        Bed {
            server: Server::new(Arc::new(cfg), 0),
            relays: FakeRelays::default(),
            now: Now::new(1_000, 1_700_000_000),
            local: "192.0.2.1:3478".parse().expect("literal"),
            out: Outputs::default(),
            clients: 0,
        }
    }

    /// A client address not used before (198.18.0.0/15, benchmarking range).
    fn new_client(&mut self) -> Client {
        self.clients += 1;
        let n = self.clients;
        let ip = Ipv4Addr::new(198, 18 + ((n >> 24) & 1) as u8, (n >> 16) as u8, (n >> 8) as u8);
        let port = 1024 + (n & 0xFF) as u16;
        Client { addr: SocketAddr::new(IpAddr::V4(ip), port), realm: String::new(), nonce: String::new(), key: [0; 16], tid: 0 }
    }

    fn feed(&mut self, from: SocketAddr, data: &[u8]) {
        self.out.clear();
        self.server.handle_client_datagram(self.now, Transport::Udp, self.local, from, data, &mut self.relays, &mut self.out);
    }

    /// The single answer to the last request, as owned bytes.
    fn answer(&self) -> Option<Vec<u8>> {
        let t = self.out.transmits.first()?;
        matches!(t.dest, Dest::Client { .. }).then(|| self.out.bytes(t).to_vec())
    }

    /// Allocate with the 401 dance; returns the client and its relay id.
    fn allocate(&mut self) -> (Client, RelayId) {
        let mut c = self.new_client();
        let m = c.request(Method::ALLOCATE, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        self.feed(c.addr, &m);
        c.learn(&self.answer().expect("401 answer"));
        let m = c.request(Method::ALLOCATE, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        self.feed(c.addr, &m);
        let a = self.answer().expect("allocate answer");
        let msg = Message::parse(&a).expect("allocate answer parses");
        assert_eq!(msg.class(), Class::Success, "allocate failed");
        let relayed = msg.xor_address(AttrType::XOR_RELAYED_ADDRESS).expect("relayed").expect("ok");
        let id = self.relays.open.iter().find(|(_, &a)| a == relayed).map(|(&id, _)| id).expect("relay open");
        (c, RelayId(id))
    }

    /// ChannelBind `peer` to CHANNEL for client `c` (also installs the permission).
    fn channel_bind(&mut self, c: &mut Client, peer: SocketAddr) {
        let m = c.request(Method::CHANNEL_BIND, |b| {
            let [hi, lo] = CHANNEL.to_be_bytes();
            b.add_raw(AttrType::CHANNEL_NUMBER, &[hi, lo, 0, 0]);
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        });
        self.feed(c.addr, &m);
        let a = self.answer().expect("channel bind answer");
        assert_eq!(Message::parse(&a).expect("parses").class(), Class::Success, "ChannelBind failed");
    }

    fn deallocate(&mut self, c: &mut Client) {
        let m = c.request(Method::REFRESH, |b| {
            b.add_u32(AttrType::LIFETIME, 0);
        });
        self.feed(c.addr, &m);
    }
}

impl Client {
    fn learn(&mut self, answer: &[u8]) {
        let m = Message::parse(answer).expect("answer parses");
        if let Some(Ok(r)) = m.str_attr(AttrType::REALM) {
            self.realm = r.to_string();
            self.key = long_term_key(USER, r, PASS);
        }
        if let Some(Ok(n)) = m.str_attr(AttrType::NONCE) {
            self.nonce = n.to_string();
        }
    }

    fn request(&mut self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        self.tid += 1;
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&self.tid.to_be_bytes());
        if let IpAddr::V4(ip) = self.addr.ip() {
            t[4..8].copy_from_slice(&ip.octets());
        }
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), TransactionId(t));
        attrs(&mut b);
        if !self.nonce.is_empty() {
            b.add_raw(AttrType::USERNAME, USER.as_bytes());
            b.add_raw(AttrType::REALM, self.realm.as_bytes());
            b.add_raw(AttrType::NONCE, self.nonce.as_bytes());
            b.add_integrity(&self.key);
        }
        let r = b.finish();
        buf.truncate(r.end);
        buf
    }
}

fn relay_paths(c: &mut Criterion) {
    let mut bed = Bed::new();
    let (mut client, relay) = bed.allocate();
    let chan_peer: SocketAddr = "203.0.113.5:7000".parse().expect("literal");
    // Same IP (so the permission covers it) but no channel: Data indications.
    let ind_peer: SocketAddr = "203.0.113.5:7001".parse().expect("literal");
    bed.channel_bind(&mut client, chan_peer);
    let payload = vec![0x5Au8; PAYLOAD];

    let mut frame = Vec::new();
    ChannelData::encode(CHANNEL, &payload, false, &mut frame);
    let mut send_ind = Vec::new();
    {
        let mut b = MessageBuilder::new(&mut send_ind, MessageType::new(Method::SEND, Class::Indication), TransactionId([9; 12]));
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, ind_peer);
        b.add_raw(AttrType::DATA, &payload);
        let r = b.finish();
        send_ind.truncate(r.end);
    }

    // Check each path does what it is named for before timing it.
    let expect = |bed: &Bed, peer_side: bool, what: &str| {
        assert_eq!(bed.out.transmits.len(), 1, "{what}: expected one datagram out");
        let t = &bed.out.transmits[0];
        assert_eq!(matches!(t.dest, Dest::Peer { .. }), peer_side, "{what}: wrong destination");
    };
    bed.feed(client.addr, &frame);
    expect(&bed, true, "ChannelData to peer");
    bed.feed(client.addr, &send_ind);
    expect(&bed, true, "Send indication to peer");
    bed.out.clear();
    bed.server.handle_peer_datagram(bed.now, relay, chan_peer, &payload, &mut bed.out);
    expect(&bed, false, "peer to ChannelData");
    assert!(ChannelData::is_channel_data(bed.out.bytes(&bed.out.transmits[0])));
    bed.out.clear();
    bed.server.handle_peer_datagram(bed.now, relay, ind_peer, &payload, &mut bed.out);
    expect(&bed, false, "peer to Data indication");

    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    let (now, local, from) = (bed.now, bed.local, client.addr);
    g.bench_function("channel_data_client_to_peer", |b| {
        b.iter(|| {
            bed.out.clear();
            bed.server.handle_client_datagram(now, Transport::Udp, local, from, black_box(&frame), &mut bed.relays, &mut bed.out);
        })
    });
    g.bench_function("peer_to_client_channel_data", |b| {
        b.iter(|| {
            bed.out.clear();
            bed.server.handle_peer_datagram(now, relay, chan_peer, black_box(&payload), &mut bed.out);
        })
    });
    g.bench_function("send_indication_to_peer", |b| {
        b.iter(|| {
            bed.out.clear();
            bed.server.handle_client_datagram(now, Transport::Udp, local, from, black_box(&send_ind), &mut bed.relays, &mut bed.out);
        })
    });
    g.bench_function("peer_to_client_data_indication", |b| {
        b.iter(|| {
            bed.out.clear();
            bed.server.handle_peer_datagram(now, relay, ind_peer, black_box(&payload), &mut bed.out);
        })
    });
    g.finish();
}

fn allocate_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("allocate");
    g.throughput(Throughput::Elements(1));
    for present in [1usize, 1000] {
        let mut bed = Bed::new();
        let peer: SocketAddr = "203.0.113.5:7000".parse().expect("literal");
        for _ in 0..present {
            let (mut cl, _) = bed.allocate();
            bed.channel_bind(&mut cl, peer);
        }
        assert_eq!(bed.server.allocation_count(), present);
        g.bench_with_input(BenchmarkId::new("401_then_allocate", present), &present, |b, _| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let mut cl = bed.new_client();
                    let first = cl.request(Method::ALLOCATE, |m| {
                        m.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
                    });
                    let t0 = Instant::now();
                    bed.feed(cl.addr, black_box(&first));
                    timed += t0.elapsed();
                    let Some(challenge) = bed.answer() else { panic!("no 401") };
                    cl.learn(&challenge);
                    let signed = cl.request(Method::ALLOCATE, |m| {
                        m.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
                    });
                    let t1 = Instant::now();
                    bed.feed(cl.addr, black_box(&signed));
                    timed += t1.elapsed();
                    // Keep the count at `present + 1` at most: delete it, untimed.
                    bed.deallocate(&mut cl);
                }
                timed
            })
        });
        assert_eq!(bed.server.allocation_count(), present, "allocations were not freed");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = relay_paths, allocate_path
}
criterion_main!(benches);
