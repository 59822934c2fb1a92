//! Property tests: the parsers never panic on any input, builder output
//! round-trips through the parser, and typed accessors never panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::attr::AttrType;
use super::builder::MessageBuilder;
use super::channel_data::ChannelData;
use super::message::{Class, Message, MessageType, Method, TransactionId};

/// Call every accessor; the results do not matter, only that nothing panics.
fn exercise(m: &Message<'_>) {
    let _ = (m.raw(), m.msg_type(), m.method().name(), m.class(), m.transaction_id(), m.has_cookie());
    for (t, v) in m.attributes() {
        let _ = (m.get(t), v.len());
        let _ = m.xor_address(t);
        let _ = m.xor_addresses(t);
        let _ = m.address(t);
        let _ = m.u32_attr(t);
        let _ = m.str_attr(t);
        let _ = m.address_family(t);
    }
    let _ = m.unknown_comprehension_required();
    let _ = m.error_code();
    let _ = m.channel_number();
    let _ = m.requested_transport();
    let _ = m.even_port();
    let _ = m.reservation_token();
    let _ = m.change_request();
    let _ = m.check_integrity(b"key");
    let _ = m.check_integrity_sha256(b"key");
    let _ = m.check_fingerprint();
}

fn parse_everything(bytes: &[u8]) {
    let _ = Message::is_stun(bytes);
    if let Ok(m) = Message::parse(bytes) {
        assert!(m.has_cookie());
        exercise(&m);
    }
    if let Ok(m) = Message::parse_rfc3489(bytes) {
        exercise(&m);
    }
    let _ = ChannelData::is_channel_data(bytes);
    if let Some(cd) = ChannelData::parse(bytes) {
        assert!((0x4000..=0x7FFF).contains(&cd.channel));
    }
}

const METHODS: [Method; 10] = [
    Method::BINDING,
    Method::ALLOCATE,
    Method::REFRESH,
    Method::SEND,
    Method::DATA,
    Method::CREATE_PERMISSION,
    Method::CHANNEL_BIND,
    Method::CONNECT,
    Method::CONNECTION_BIND,
    Method::CONNECTION_ATTEMPT,
];
const CLASSES: [Class; 4] = [Class::Request, Class::Indication, Class::Success, Class::Error];

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), p)),
    ]
}

/// A realistic valid message of the given method/class with typical TURN attributes.
fn valid_message(method: Method, class: Class, tid: [u8; 12], peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = MessageBuilder::new(&mut out, MessageType::new(method, class), TransactionId(tid));
    b.add_raw(AttrType::USERNAME, b"alice")
        .add_raw(AttrType::REALM, b"example.org")
        .add_raw(AttrType::NONCE, b"0123456789abcdef")
        .add_xor_address(AttrType::XOR_PEER_ADDRESS, peer)
        .add_u32(AttrType::CHANNEL_NUMBER, 0x4001_0000)
        .add_u32(AttrType::LIFETIME, 600)
        .add_u32(AttrType::REQUESTED_TRANSPORT, 17 << 24)
        .add_raw(AttrType::DATA, data)
        .add_error_code(438, "Stale Nonce")
        .add_u64(AttrType::RESERVATION_TOKEN, 42)
        .add_integrity(b"key")
        .add_integrity_sha256(b"key")
        .add_fingerprint();
    b.finish();
    out
}

/// An attribute to feed the builder.
#[derive(Debug, Clone)]
enum Attr {
    Raw(u16, Vec<u8>),
    Xor(u16, SocketAddr),
    Plain(u16, SocketAddr),
    U32(u16, u32),
    U64(u16, u64),
    Error(u16, String),
}

fn attr_strategy() -> impl Strategy<Value = Attr> {
    // Types other than the integrity/fingerprint ones, which have ordering rules.
    let typ = any::<u16>().prop_filter("not MI/MI256/FP", |t| {
        ![AttrType::MESSAGE_INTEGRITY, AttrType::MESSAGE_INTEGRITY_SHA256, AttrType::FINGERPRINT].contains(t)
    });
    prop_oneof![
        (typ.clone(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(t, v)| Attr::Raw(t, v)),
        (typ.clone(), socket_addr()).prop_map(|(t, a)| Attr::Xor(t, a)),
        (typ.clone(), socket_addr()).prop_map(|(t, a)| Attr::Plain(t, a)),
        (typ.clone(), any::<u32>()).prop_map(|(t, v)| Attr::U32(t, v)),
        (typ, any::<u64>()).prop_map(|(t, v)| Attr::U64(t, v)),
        (300u16..700, "[a-zA-Z \u{e9}]{0,20}").prop_map(|(c, r)| Attr::Error(c, r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        parse_everything(&bytes);
    }

    /// Arbitrary bytes behind a plausible header, so the attribute walk is reached.
    #[test]
    fn arbitrary_body_never_panics(
        ty in 0u16..0x4000,
        cookie in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut raw = ty.to_be_bytes().to_vec();
        let len = body.len() & !3;
        raw.extend_from_slice(&(len as u16).to_be_bytes());
        raw.extend_from_slice(if cookie { &[0x21, 0x12, 0xA4, 0x42] } else { &[1, 2, 3, 4] });
        raw.extend_from_slice(&[7; 12]);
        raw.extend_from_slice(&body[..len]);
        parse_everything(&raw);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        mi in 0usize..METHODS.len(),
        ci in 0usize..CLASSES.len(),
        tid in any::<[u8; 12]>(),
        peer in socket_addr(),
        data in proptest::collection::vec(any::<u8>(), 0..100),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..4),
    ) {
        let raw = valid_message(METHODS[mi], CLASSES[ci], tid, peer, &data);
        let m = Message::parse(&raw).expect("builder output parses");
        prop_assert!(m.check_integrity(b"key"));
        prop_assert!(m.check_integrity_sha256(b"key"));
        prop_assert_eq!(m.check_fingerprint(), Some(true));
        prop_assert_eq!(m.xor_address(AttrType::XOR_PEER_ADDRESS), Some(Ok(peer)));
        exercise(&m);
        // Every truncation point.
        let n = cut.index(raw.len() + 1);
        parse_everything(&raw[..n]);
        // Bit flips.
        let mut bad = raw.clone();
        for (at, bit) in &flips {
            let i = at.index(bad.len());
            bad[i] ^= 1 << bit;
        }
        parse_everything(&bad);
        if !flips.is_empty() && bad != raw {
            if let Ok(m) = Message::parse(&bad) {
                // A change anywhere is caught by the fingerprint or the MACs.
                prop_assert!(m.check_fingerprint() != Some(true) || !m.check_integrity(b"key"));
            }
        }
        parse_everything(&bad[..n.min(bad.len())]);
    }

    #[test]
    fn builder_parse_roundtrip(
        ty in 0u16..0x4000,
        tid in any::<[u8; 12]>(),
        attrs in proptest::collection::vec(attr_strategy(), 0..20),
        integrity in any::<bool>(),
        fingerprint in any::<bool>(),
        prefix in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mt = MessageType::from_u16(ty).expect("14-bit");
        let mut out = prefix.clone();
        let mut b = MessageBuilder::new(&mut out, mt, TransactionId(tid));
        for a in &attrs {
            match a {
                Attr::Raw(t, v) => b.add_raw(*t, v),
                Attr::Xor(t, a) => b.add_xor_address(*t, *a),
                Attr::Plain(t, a) => b.add_address(*t, *a),
                Attr::U32(t, v) => b.add_u32(*t, *v),
                Attr::U64(t, v) => b.add_u64(*t, *v),
                Attr::Error(c, r) => b.add_error_code(*c, r),
            };
        }
        if integrity {
            b.add_integrity(b"secret");
        }
        if fingerprint {
            b.add_fingerprint();
        }
        let r = b.finish();
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(r.clone(), prefix.len()..out.len());
        let raw = &out[r];
        prop_assert!(Message::is_stun(raw));
        let m = Message::parse(raw).expect("builder output parses");
        prop_assert_eq!(m.msg_type(), mt);
        prop_assert_eq!(m.transaction_id(), TransactionId(tid));
        let got: Vec<(u16, &[u8])> = m.attributes().collect();
        let extra = integrity as usize + fingerprint as usize;
        prop_assert_eq!(got.len(), attrs.len() + extra);
        for (a, (t, v)) in attrs.iter().zip(&got) {
            match a {
                Attr::Raw(at, av) => {
                    prop_assert_eq!(*at, *t);
                    prop_assert_eq!(&av[..], *v);
                }
                Attr::Xor(at, addr) => {
                    prop_assert_eq!(*at, *t);
                    prop_assert_eq!(m.xor_addresses(*at).into_iter().any(|x| x == Ok(*addr)), true);
                }
                Attr::Plain(at, addr) => {
                    prop_assert_eq!(*at, *t);
                    prop_assert_eq!(m.address(*at).is_some(), true);
                    let v6 = addr.is_ipv6();
                    prop_assert_eq!(v.len(), if v6 { 20 } else { 8 });
                }
                Attr::U32(at, x) => {
                    prop_assert_eq!(*at, *t);
                    prop_assert_eq!(*v, &x.to_be_bytes()[..]);
                }
                Attr::U64(at, x) => {
                    prop_assert_eq!(*at, *t);
                    prop_assert_eq!(*v, &x.to_be_bytes()[..]);
                }
                Attr::Error(c, reason) => {
                    prop_assert_eq!(*t, AttrType::ERROR_CODE);
                    prop_assert_eq!(&v[..4], &[0, 0, (c / 100) as u8, (c % 100) as u8]);
                    prop_assert_eq!(&v[4..], reason.as_bytes());
                }
            }
        }
        if let Some(Attr::Error(c, reason)) = attrs.iter().find(|a| matches!(a, Attr::Error(..)))
            .filter(|_| !attrs.iter().any(|a| matches!(a, Attr::Raw(AttrType::ERROR_CODE, _)
                | Attr::U32(AttrType::ERROR_CODE, _) | Attr::U64(AttrType::ERROR_CODE, _)
                | Attr::Xor(AttrType::ERROR_CODE, _) | Attr::Plain(AttrType::ERROR_CODE, _))))
        {
            if (300..700).contains(c) {
                prop_assert_eq!(m.error_code(), Some(Ok((*c, reason.as_str()))));
            }
        }
        prop_assert_eq!(m.check_integrity(b"secret"), integrity);
        prop_assert_eq!(m.check_fingerprint(), if fingerprint { Some(true) } else { None });
        exercise(&m);
    }

    /// Every typed accessor on a random value of every known attribute type.
    #[test]
    fn typed_accessors_never_panic(
        ti in any::<prop::sample::Index>(),
        value in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        const TYPES: [u16; 20] = [
            AttrType::MAPPED_ADDRESS, AttrType::CHANGE_REQUEST, AttrType::USERNAME,
            AttrType::MESSAGE_INTEGRITY, AttrType::ERROR_CODE, AttrType::CHANNEL_NUMBER,
            AttrType::LIFETIME, AttrType::XOR_PEER_ADDRESS, AttrType::REALM, AttrType::NONCE,
            AttrType::XOR_RELAYED_ADDRESS, AttrType::REQUESTED_ADDRESS_FAMILY, AttrType::EVEN_PORT,
            AttrType::REQUESTED_TRANSPORT, AttrType::MESSAGE_INTEGRITY_SHA256,
            AttrType::XOR_MAPPED_ADDRESS, AttrType::RESERVATION_TOKEN, AttrType::CONNECTION_ID,
            AttrType::ADDITIONAL_ADDRESS_FAMILY, AttrType::FINGERPRINT,
        ];
        let t = TYPES[ti.index(TYPES.len())];
        let mut out = Vec::new();
        let mut b = MessageBuilder::new(&mut out, MessageType::new(Method::ALLOCATE, Class::Request), TransactionId([3; 12]));
        b.add_raw(t, &value);
        let r = b.finish();
        let m = Message::parse(&out[r]).expect("parses");
        prop_assert_eq!(m.get(t), Some(&value[..]));
        exercise(&m);
        let _ = (m.error_code(), m.channel_number(), m.even_port(), m.reservation_token(), m.change_request());
    }

    #[test]
    fn channel_data_roundtrip(channel in 0x4000u16..=0x7FFF, data in proptest::collection::vec(any::<u8>(), 0..300), pad in any::<bool>()) {
        let mut out = vec![0xEE];
        let r = ChannelData::encode(channel, &data, pad, &mut out);
        prop_assert_eq!(r.start, 1);
        if pad { prop_assert_eq!(r.len() % 4, 0); }
        prop_assert!(ChannelData::is_channel_data(&out[r.clone()]));
        let cd = ChannelData::parse(&out[r]).expect("parses");
        prop_assert_eq!(cd.channel, channel);
        prop_assert_eq!(cd.data, &data[..]);
    }
}
