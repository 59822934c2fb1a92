//! The STUN/ChannelData codec on arbitrary bytes: datagram parsing, every
//! typed getter, the integrity and fingerprint checks, and the TCP stream
//! decoder fed the same bytes in chunks whose sizes come from the input.
//!
//! Beyond "never panics", the stream decoder is checked against the input: each
//! frame it returns must be exactly the bytes at the current stream offset.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use turnserver::stun::integrity::long_term_key;
use turnserver::stun::stream::{Frame, StreamDecoder, MAX_FRAME_LEN};
use turnserver::stun::{AttrType, ChannelData, Message};

/// Attribute types whose typed getters are tried on every parsed message.
const ADDRESS_ATTRS: [u16; 6] = [
    AttrType::XOR_MAPPED_ADDRESS,
    AttrType::XOR_PEER_ADDRESS,
    AttrType::XOR_RELAYED_ADDRESS,
    AttrType::MAPPED_ADDRESS,
    AttrType::ALTERNATE_SERVER,
    AttrType::OTHER_ADDRESS,
];

/// The RFC 5769 2.4 long-term key (user "マトリックス", realm "example.org",
/// password "The\u{ad}M\u{aa}tr\u{2168}"), derived once.
fn rfc5769_long_term_key() -> &'static [u8; 16] {
    static KEY: OnceLock<[u8; 16]> = OnceLock::new();
    KEY.get_or_init(|| long_term_key("\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}", "example.org", "The\u{ad}M\u{aa}tr\u{2168}"))
}

fn exercise(m: &Message<'_>) {
    let _ = (m.msg_type(), m.method().name(), m.class(), m.transaction_id(), m.has_cookie());
    let mut n = 0usize;
    for (typ, value) in m.attributes() {
        assert!(value.len() <= m.raw().len(), "attribute {typ:#06x} longer than the message");
        assert_eq!(m.get(typ).is_some(), true);
        n += 1;
    }
    assert!(n * 4 <= m.raw().len(), "more attributes than the message can hold");
    let _ = m.unknown_comprehension_required();
    for a in ADDRESS_ATTRS {
        let _ = m.xor_address(a);
        let _ = m.xor_addresses(a);
        let _ = m.address(a);
    }
    for a in [AttrType::USERNAME, AttrType::REALM, AttrType::NONCE, AttrType::SOFTWARE] {
        let _ = m.str_attr(a);
    }
    let _ = m.u32_attr(AttrType::LIFETIME);
    let _ = m.error_code();
    let _ = m.channel_number();
    let _ = m.requested_transport();
    let _ = m.address_family(AttrType::REQUESTED_ADDRESS_FAMILY);
    let _ = m.even_port();
    let _ = m.reservation_token();
    let _ = m.change_request();
    // RFC 5769 keys: the short-term password of 2.1-2.3 and the long-term
    // user of 2.4, so the vectors in the corpus take the "matches" branch.
    let _ = m.check_integrity(b"VOkJxbRl1RmTxUk/WvJxBt");
    let _ = m.check_integrity(rfc5769_long_term_key());
    let _ = m.check_integrity_sha256(b"VOkJxbRl1RmTxUk/WvJxBt");
    let _ = m.check_fingerprint();
}

/// Feed `data` to a stream decoder in chunks; sizes cycle through `sizes`.
/// Alternates between `extend` and `spare`/`commit` so both paths are used.
fn stream(data: &[u8], sizes: &[u8], max_buffer: usize) {
    let mut dec = StreamDecoder::new(max_buffer);
    let mut fed = 0usize;
    // Offset in `data` of the first byte not yet returned as a frame.
    let mut consumed = 0usize;
    let mut step = 0usize;
    while fed < data.len() {
        let size = usize::from(sizes.get(step % sizes.len().max(1)).copied().unwrap_or(0)) * 7 + 1;
        let chunk = &data[fed..data.len().min(fed + size)];
        let accepted = if step % 2 == 0 {
            match dec.extend(chunk) {
                Ok(()) => chunk.len(),
                Err(_) => 0,
            }
        } else {
            let spare = dec.spare(chunk.len());
            let n = spare.len();
            spare.copy_from_slice(&chunk[..n]);
            dec.commit(n);
            n
        };
        fed += accepted;
        step += 1;
        assert!(dec.buffered() <= max_buffer, "decoder holds more than its bound");
        loop {
            match dec.next_frame() {
                Ok(Some(Frame::Stun(raw))) => {
                    assert_eq!(raw, &data[consumed..consumed + raw.len()], "STUN frame differs from the stream");
                    consumed += raw.len();
                    let _ = Message::parse(raw);
                }
                Ok(Some(Frame::ChannelData { channel, data: payload })) => {
                    let hdr = &data[consumed..consumed + 4];
                    assert_eq!(u16::from_be_bytes([hdr[0], hdr[1]]), channel);
                    assert_eq!(payload, &data[consumed + 4..consumed + 4 + payload.len()]);
                    consumed += 4 + ((payload.len() + 3) & !3);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert_eq!(dec.buffered(), fed - consumed, "decoder lost or invented bytes");
        if accepted == 0 {
            // Full and no frame to take: a real connection would be closed.
            return;
        }
        dec.shrink_if_idle();
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        assert_eq!(m.raw().len() % 4, 0);
        exercise(&m);
    }
    if let Ok(m) = Message::parse_rfc3489(data) {
        exercise(&m);
    }
    let _ = Message::is_stun(data);
    if let Some(cd) = ChannelData::parse(data) {
        assert!((0x4000..=0x7FFF).contains(&cd.channel));
        assert_eq!(cd.data, &data[4..4 + cd.data.len()]);
    }
    // The first bytes choose the chunk sizes and the bound, the rest is the stream.
    if let Some((&n, rest)) = data.split_first() {
        let n = usize::from(n % 8) + 1;
        let (sizes, bytes) = rest.split_at(n.min(rest.len()));
        let bound = if sizes.first().is_some_and(|b| b & 1 == 1) { 96 } else { MAX_FRAME_LEN };
        stream(bytes, sizes, bound);
    }
});
