//! Hot-path codec benchmarks: ChannelData, Send/Data indications, Allocate
//! request parse + integrity check, Allocate success build with integrity and
//! fingerprint.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use turnserver::stun::attr::AttrType;
use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

const TID: TransactionId = TransactionId([0x5a; 12]);
const PAYLOAD_LEN: usize = 160; // a typical 20 ms Opus/RTP packet

fn peer() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 7], 49152))
}

fn channel_data(c: &mut Criterion) {
    let payload = vec![0xA5u8; PAYLOAD_LEN];
    let mut frame = Vec::new();
    ChannelData::encode(0x4001, &payload, false, &mut frame);
    let mut g = c.benchmark_group("channel_data");
    g.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    g.bench_function("parse", |b| b.iter(|| ChannelData::parse(black_box(&frame)).map(|cd| cd.data.len())));
    let mut out = Vec::with_capacity(2048);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            ChannelData::encode(black_box(0x4001), black_box(&payload), true, &mut out)
        })
    });
    g.finish();
}

fn build_indication(method: Method, payload: &[u8], out: &mut Vec<u8>) -> std::ops::Range<usize> {
    let mut b = MessageBuilder::new(out, MessageType::new(method, Class::Indication), TID);
    b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer()).add_raw(AttrType::DATA, payload);
    b.finish()
}

fn indications(c: &mut Criterion) {
    let payload = vec![0xA5u8; PAYLOAD_LEN];
    let mut g = c.benchmark_group("indication");
    g.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    for (name, method) in [("send", Method::SEND), ("data", Method::DATA)] {
        let mut msg = Vec::new();
        build_indication(method, &payload, &mut msg);
        g.bench_function(format!("{name}_parse"), |b| {
            b.iter(|| {
                let m = Message::parse(black_box(&msg)).ok()?;
                let peer = m.xor_address(AttrType::XOR_PEER_ADDRESS)?.ok()?;
                Some((peer, m.get(AttrType::DATA)?.len()))
            })
        });
        let mut out = Vec::with_capacity(2048);
        g.bench_function(format!("{name}_build"), |b| {
            b.iter(|| {
                out.clear();
                build_indication(method, black_box(&payload), &mut out)
            })
        });
    }
    g.finish();
}

fn allocate(c: &mut Criterion) {
    let key = long_term_key("alice", "example.org", "secret");
    let mut req = Vec::new();
    {
        let mut b = MessageBuilder::new(&mut req, MessageType::new(Method::ALLOCATE, Class::Request), TID);
        b.add_u32(AttrType::REQUESTED_TRANSPORT, 17 << 24)
            .add_u32(AttrType::LIFETIME, 600)
            .add_raw(AttrType::USERNAME, b"alice")
            .add_raw(AttrType::REALM, b"example.org")
            .add_raw(AttrType::NONCE, b"4c8a7bd1e2f3a4b5c6d7e8f9")
            .add_raw(AttrType::SOFTWARE, b"bench client 1.0")
            .add_integrity(&key)
            .add_fingerprint();
        b.finish();
    }
    let mut g = c.benchmark_group("allocate");
    g.bench_function("request_parse_check_integrity", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&req)).ok()?;
            let _user = m.str_attr(AttrType::USERNAME)?.ok()?;
            let _transport = m.requested_transport()?.ok()?;
            Some(m.check_fingerprint() == Some(true) && m.check_integrity(black_box(&key)))
        })
    });
    g.bench_function("long_term_key", |b| {
        b.iter(|| long_term_key(black_box("alice"), black_box("example.org"), black_box("secret")))
    });
    let mut out = Vec::with_capacity(2048);
    let relayed = SocketAddr::from(([203, 0, 113, 5], 50000));
    let mapped = SocketAddr::from(([192, 0, 2, 1], 32853));
    g.bench_function("success_build_integrity_fingerprint", |b| {
        b.iter(|| {
            out.clear();
            let mut m = MessageBuilder::new(&mut out, MessageType::new(Method::ALLOCATE, Class::Success), TID);
            m.add_xor_address(AttrType::XOR_RELAYED_ADDRESS, black_box(relayed))
                .add_xor_address(AttrType::XOR_MAPPED_ADDRESS, black_box(mapped))
                .add_u32(AttrType::LIFETIME, 600)
                .add_raw(AttrType::SOFTWARE, b"Coturn-4.6.2 'Gorst'")
                .add_integrity(black_box(&key))
                .add_fingerprint();
            m.finish()
        })
    });
    g.finish();
}

criterion_group!(benches, channel_data, indications, allocate);
criterion_main!(benches);
