//! Property tests: arbitrary and mutated datagrams never panic the core or
//! leave state behind for unauthenticated sources.

use proptest::prelude::*;

use super::util::*;
use crate::stun::{AttrType, ChannelData, Method};

/// Valid messages of every kind a client sends, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut c = TestClient::new("198.51.100.7:40000");
    c.nonce = Some("00000000000000000000000".into());
    c.realm = Some(REALM.into());
    let mut v = vec![c.allocate_msg(|b| {
        b.add_u32(AttrType::LIFETIME, 700);
        b.add_raw(AttrType::EVEN_PORT, &[0x80]);
        b.add_raw(AttrType::DONT_FRAGMENT, &[]);
    })];
    for m in [Method::CREATE_PERMISSION, Method::CHANNEL_BIND, Method::REFRESH, Method::BINDING] {
        let tid = c.tid();
        v.push(c.build(m, tid, |b| {
            b.add_u32(AttrType::CHANNEL_NUMBER, 0x4000_0000);
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, addr("[2001:db8::5]:99"));
            b.add_u32(AttrType::LIFETIME, 0);
        }));
    }
    let mut cd = Vec::new();
    ChannelData::encode(0x4000, b"payload!", true, &mut cd);
    v.push(cd);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_datagrams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut h = Harness::new(long_term_config());
        let from = addr("198.51.100.7:40000");
        h.from_client(from, &data);
        h.from_peer(crate::core::RelayId(1), from, &data);
        prop_assert_eq!(h.server.allocation_count(), 0);
    }

    #[test]
    fn mutated_messages_never_panic(seed in 0usize..6, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut msgs = seeds();
        let mut m = msgs.swap_remove(seed % msgs.len());
        for (pos, val) in flips {
            let n = m.len();
            m[pos % n] ^= val;
        }
        let keep = if cut % 3 == 0 { cut % (m.len() + 1) } else { m.len() };
        m.truncate(keep);
        let mut h = Harness::new(long_term_config());
        let from = addr("198.51.100.7:40000");
        h.from_client(from, &m);
        prop_assert_eq!(h.server.allocation_count(), 0);
    }

    #[test]
    fn authenticated_sequences_never_panic(ops in proptest::collection::vec((0u8..8, any::<u16>(), any::<u8>()), 1..40)) {
        let mut h = Harness::new(long_term_config());
        let mut c = TestClient::new("198.51.100.7:40000");
        let (_, relay) = allocate(&mut h, &mut c);
        for (op, n, b) in ops {
            let peer = addr(&format!("203.0.113.{}:{}", b, 1000 + (n % 16)));
            match op {
                0 => { let tid = c.tid(); let m = c.build(Method::CHANNEL_BIND, tid, |bb| { bb.add_u32(AttrType::CHANNEL_NUMBER, u32::from(0x4000 | (n & 0x3FFF)) << 16); bb.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer); }); h.from_client(c.addr, &m); }
                1 => { let tid = c.tid(); let m = c.build(Method::CREATE_PERMISSION, tid, |bb| { bb.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer); }); h.from_client(c.addr, &m); }
                2 => { let mut f = Vec::new(); ChannelData::encode(0x4000 | (n & 0x3FFF), &[b; 16], false, &mut f); h.from_client(c.addr, &f); }
                3 => { h.from_peer(relay, peer, &[b; 20]); }
                4 => { h.advance(u64::from(n % 400)); }
                5 => { let tid = c.tid(); let m = c.build(Method::REFRESH, tid, |bb| { bb.add_u32(AttrType::LIFETIME, u32::from(n % 3) * 300); }); h.from_client(c.addr, &m); }
                6 => { let m = c.allocate_msg(|_| {}); h.from_client(c.addr, &m); }
                _ => { h.from_client(c.addr, &[b; 7]); }
            }
        }
        prop_assert!(h.server.allocation_count() <= 1);
        prop_assert_eq!(h.relays.open.len(), h.server.allocation_count());
    }
}
