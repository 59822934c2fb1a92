//! HAProxy PROXY protocol headers (v1 text, v2 binary) for `--tcp-proxy-port`.
//!
//! Behind a TCP load balancer every connection comes from the balancer; the
//! PROXY header it sends first carries the real client address, which TURN
//! needs (XOR-MAPPED-ADDRESS, permissions, logs, per-IP quotas). This module
//! only parses a header at the start of a buffer; the connection code reads
//! until [`parse`] stops asking for more, takes the address, and hands the
//! bytes after `header_len` to the stream decoder.
//!
//! Parsing is incremental in the simplest way: call [`parse`] again on the
//! whole buffer when more bytes arrive. A prefix of a valid header always
//! answers [`ProxyParse::NeedMore`], never `Invalid`, so a header split across
//! reads is never rejected; bytes that cannot start a header are rejected as
//! soon as they are seen.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// v1 headers are at most 107 bytes including the CRLF (the longest TCP6 line).
pub const V1_MAX_LEN: usize = 107;
/// The longest v2 header: 16 fixed bytes and a 16-bit length of what follows.
pub const V2_MAX_LEN: usize = V2_FIXED_LEN + u16::MAX as usize;
/// The longest header of either version: a reader that can hold this many
/// bytes never fails for want of space.
pub const MAX_HEADER_LEN: usize = V2_MAX_LEN;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/protocol, length.
const V2_FIXED_LEN: usize = 16;
/// Address block sizes for v2 AF_INET, AF_INET6 and AF_UNIX.
const V2_INET_LEN: usize = 4 + 4 + 2 + 2;
const V2_INET6_LEN: usize = 16 + 16 + 2 + 2;
const V2_UNIX_LEN: usize = 108 + 108;

/// The outcome of looking for a PROXY header at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyParse {
    /// The buffer is a prefix of a possible header; read more and call again.
    NeedMore,
    /// A complete header of `header_len` bytes. The addresses are `None` when
    /// the header carries none the server can use (v2 LOCAL, i.e. a health
    /// check; v1 UNKNOWN; v2 UNSPEC or AF_UNIX): the caller then keeps the
    /// real connection addresses, as the specification asks.
    Done { header_len: usize, source: Option<SocketAddr>, destination: Option<SocketAddr> },
    /// Not a PROXY header, or a malformed one: close the connection (a port
    /// configured for PROXY must not fall back to trusting the peer address).
    Invalid(&'static str),
}

/// Parse a PROXY protocol header (v1 or v2) at the start of `buf`.
pub fn parse(buf: &[u8]) -> ProxyParse {
    match buf.first() {
        None => ProxyParse::NeedMore,
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => ProxyParse::Invalid("no PROXY protocol signature"),
    }
}

/// True when `buf` and `sig` agree on their common length.
fn agrees(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf.get(..n) == sig.get(..n)
}

fn parse_v1(buf: &[u8]) -> ProxyParse {
    if !agrees(buf, V1_PREFIX) {
        return ProxyParse::Invalid("bad v1 signature");
    }
    // The CR must leave room for its LF within the 107 bytes.
    let window = buf.get(..buf.len().min(V1_MAX_LEN - 1)).unwrap_or(buf);
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if buf.len() >= V1_MAX_LEN - 1 {
            ProxyParse::Invalid("v1 header longer than 107 bytes")
        } else {
            ProxyParse::NeedMore
        };
    };
    if buf.get(cr) == Some(&b'\n') {
        return ProxyParse::Invalid("v1 LF without CR");
    }
    match buf.get(cr + 1) {
        None => return ProxyParse::NeedMore,
        Some(b'\n') => {}
        Some(_) => return ProxyParse::Invalid("v1 CR not followed by LF"),
    }
    let Some(line) = buf.get(V1_PREFIX.len()..cr) else {
        return ProxyParse::Invalid("v1 header truncated");
    };
    let header_len = cr + 2;
    // UNKNOWN may be followed by anything up to the CRLF, which is ignored.
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return ProxyParse::Done { header_len, source: None, destination: None };
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return ProxyParse::Invalid("v1 header not ASCII");
    };
    let mut fields = line.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return ProxyParse::Invalid("v1 header needs exactly protocol, two addresses and two ports");
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => match (src.parse::<Ipv4Addr>(), dst.parse::<Ipv4Addr>()) {
            (Ok(s), Ok(d)) => (s.into(), d.into()),
            _ => return ProxyParse::Invalid("v1 bad IPv4 address"),
        },
        "TCP6" => match (src.parse::<Ipv6Addr>(), dst.parse::<Ipv6Addr>()) {
            (Ok(s), Ok(d)) => (s.into(), d.into()),
            _ => return ProxyParse::Invalid("v1 bad IPv6 address"),
        },
        _ => return ProxyParse::Invalid("v1 unknown protocol"),
    };
    let (Some(sport), Some(dport)) = (v1_port(sport), v1_port(dport)) else {
        return ProxyParse::Invalid("v1 bad port");
    };
    ProxyParse::Done {
        header_len,
        source: Some(SocketAddr::new(src, sport)),
        destination: Some(SocketAddr::new(dst, dport)),
    }
}

/// A decimal port 0..=65535. `u16::from_str` alone would accept a leading `+`.
fn v1_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_v2(buf: &[u8]) -> ProxyParse {
    if !agrees(buf, &V2_SIGNATURE) {
        return ProxyParse::Invalid("bad v2 signature");
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return ProxyParse::NeedMore;
    };
    if ver_cmd >> 4 != 2 {
        return ProxyParse::Invalid("v2 unsupported version");
    }
    let is_proxy = match ver_cmd & 0x0F {
        0x0 => false,
        0x1 => true,
        _ => return ProxyParse::Invalid("v2 unknown command"),
    };
    let Some(&fam) = buf.get(13) else {
        return ProxyParse::NeedMore;
    };
    // LOCAL ignores the family byte entirely; under PROXY only the defined
    // combinations are allowed (the spec asks receivers to reject the rest).
    let addr_len = if !is_proxy {
        0
    } else {
        match fam {
            0x00 => 0,
            0x11 | 0x12 => V2_INET_LEN,
            0x21 | 0x22 => V2_INET6_LEN,
            0x31 | 0x32 => V2_UNIX_LEN,
            _ => return ProxyParse::Invalid("v2 unknown address family or protocol"),
        }
    };
    let Some(&[l0, l1]) = buf.get(14..16).and_then(|s| s.first_chunk::<2>()) else {
        return ProxyParse::NeedMore;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if len < addr_len {
        return ProxyParse::Invalid("v2 length shorter than the address block");
    }
    let header_len = V2_FIXED_LEN + len;
    let Some(body) = buf.get(V2_FIXED_LEN..header_len) else {
        return ProxyParse::NeedMore;
    };
    if !is_proxy || fam == 0x00 {
        return ProxyParse::Done { header_len, source: None, destination: None };
    }
    let (addrs, tlvs) = body.split_at(addr_len);
    if !tlvs_well_formed(tlvs) {
        return ProxyParse::Invalid("v2 TLV overflows the header");
    }
    let (source, destination) = match fam >> 4 {
        0x1 => match inet_pair::<4>(addrs) {
            Some((s, d, sp, dp)) => {
                (SocketAddr::new(Ipv4Addr::from(s).into(), sp), SocketAddr::new(Ipv4Addr::from(d).into(), dp))
            }
            None => return ProxyParse::Invalid("v2 IPv4 block truncated"),
        },
        0x2 => match inet_pair::<16>(addrs) {
            Some((s, d, sp, dp)) => {
                (SocketAddr::new(Ipv6Addr::from(s).into(), sp), SocketAddr::new(Ipv6Addr::from(d).into(), dp))
            }
            None => return ProxyParse::Invalid("v2 IPv6 block truncated"),
        },
        // AF_UNIX paths are no use as a TURN client address.
        _ => return ProxyParse::Done { header_len, source: None, destination: None },
    };
    ProxyParse::Done { header_len, source: Some(source), destination: Some(destination) }
}

/// Source address, destination address, source port, destination port, each
/// `N` address bytes, in v2 order.
fn inet_pair<const N: usize>(b: &[u8]) -> Option<([u8; N], [u8; N], u16, u16)> {
    let (src, rest) = b.split_first_chunk::<N>()?;
    let (dst, rest) = rest.split_first_chunk::<N>()?;
    let (&[s0, s1], rest) = rest.split_first_chunk::<2>()?;
    let (&[d0, d1], _) = rest.split_first_chunk::<2>()?;
    Some((*src, *dst, u16::from_be_bytes([s0, s1]), u16::from_be_bytes([d0, d1])))
}

/// TLVs (type, 16-bit length, value) must tile the rest of the header exactly.
/// Their content is not needed here (ALPN, authority, SSL details), but a TLV
/// running past the announced length means the sender and we disagree on where
/// the stream starts, which is not safe to guess.
fn tlvs_well_formed(mut tlvs: &[u8]) -> bool {
    while !tlvs.is_empty() {
        let Some((&[_, l0, l1], rest)) = tlvs.split_first_chunk::<3>() else {
            return false;
        };
        let Some(next) = rest.get(usize::from(u16::from_be_bytes([l0, l1]))..) else {
            return false;
        };
        tlvs = next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn done(header_len: usize, source: Option<&str>, destination: Option<&str>) -> ProxyParse {
        ProxyParse::Done { header_len, source: source.map(sa), destination: destination.map(sa) }
    }

    /// Build a v2 header: command (low nibble), family byte, address block, TLVs.
    fn v2(cmd: u8, fam: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(fam);
        h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    fn v2_addrs(src: SocketAddr, dst: SocketAddr) -> (u8, Vec<u8>) {
        let mut b = Vec::new();
        let fam = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                b.extend_from_slice(&s.octets());
                b.extend_from_slice(&d.octets());
                0x11
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                b.extend_from_slice(&s.octets());
                b.extend_from_slice(&d.octets());
                0x21
            }
            _ => panic!("mixed families"),
        };
        b.extend_from_slice(&src.port().to_be_bytes());
        b.extend_from_slice(&dst.port().to_be_bytes());
        (fam, b)
    }

    /// Every strict prefix needs more; the whole header (with stream bytes
    /// after it) parses to `expected`, whose header_len is the header length.
    fn check_valid(header: &[u8], expected: ProxyParse) {
        assert_eq!(expected_len(expected), Some(header.len()));
        for i in 0..header.len() {
            assert_eq!(parse(&header[..i]), ProxyParse::NeedMore, "prefix {i} of {header:?}");
        }
        assert_eq!(parse(header), expected);
        let mut with_stream = header.to_vec();
        with_stream.extend_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, b'\r', b'\n']);
        assert_eq!(parse(&with_stream), expected, "bytes after the header are not read");
    }

    fn expected_len(p: ProxyParse) -> Option<usize> {
        match p {
            ProxyParse::Done { header_len, .. } => Some(header_len),
            _ => None,
        }
    }

    fn is_invalid(p: ProxyParse) -> bool {
        matches!(p, ProxyParse::Invalid(_))
    }

    #[test]
    fn v1_tcp4() {
        let h = b"PROXY TCP4 192.168.0.1 10.0.0.2 56324 3478\r\n";
        check_valid(h, done(h.len(), Some("192.168.0.1:56324"), Some("10.0.0.2:3478")));
    }

    #[test]
    fn v1_tcp6() {
        let h = b"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
        check_valid(h, done(h.len(), Some("[2001:db8::1]:0"), Some("[::1]:65535")));
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let h = format!("PROXY TCP6 {a} {a} 65535 65535\r\n");
        check_valid(h.as_bytes(), done(h.len(), Some(&format!("[{a}]:65535")), Some(&format!("[{a}]:65535"))));
    }

    #[test]
    fn v1_unknown() {
        let h = b"PROXY UNKNOWN\r\n";
        check_valid(h, done(h.len(), None, None));
        let h = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        check_valid(h, done(h.len(), None, None));
        // The longest allowed line is exactly 107 bytes (UNKNOWN with the
        // longest TCP6 fields, as the spec sizes it).
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let h = format!("PROXY UNKNOWN {a} {a} 65535 65535\r\n");
        assert_eq!(h.len(), V1_MAX_LEN);
        check_valid(h.as_bytes(), done(V1_MAX_LEN, None, None));
    }

    #[test]
    fn v1_malformed() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 8a\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY \r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY\tTCP4",
            b"PROXz",
            b"GET / HTTP/1.1\r\n",
            b"\x00\x01\x00\x00",
        ];
        for h in bad {
            assert!(is_invalid(parse(h)), "{:?}", String::from_utf8_lossy(h));
        }
        // No CRLF within 107 bytes.
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'a'; 200]].concat();
        assert_eq!(parse(&long[..105]), ProxyParse::NeedMore);
        assert!(is_invalid(parse(&long[..106])), "a CR at 106 would leave no room for its LF");
        assert!(is_invalid(parse(&long)));
        let mut just_over = long[..106].to_vec();
        just_over.extend_from_slice(b"\r\n");
        assert!(is_invalid(parse(&just_over)), "108-byte line");
    }

    #[test]
    fn v2_tcp4() {
        let (fam, a) = v2_addrs(sa("203.0.113.7:40000"), sa("198.51.100.1:3478"));
        let h = v2(1, fam, &a, &[]);
        assert_eq!(h.len(), 28);
        check_valid(&h, done(28, Some("203.0.113.7:40000"), Some("198.51.100.1:3478")));
    }

    #[test]
    fn v2_tcp6_and_udp() {
        let (fam, a) = v2_addrs(sa("[2001:db8::7]:1"), sa("[2001:db8::1]:3478"));
        let h = v2(1, fam, &a, &[]);
        check_valid(&h, done(52, Some("[2001:db8::7]:1"), Some("[2001:db8::1]:3478")));
        let h = v2(1, 0x22, &a, &[]);
        check_valid(&h, done(52, Some("[2001:db8::7]:1"), Some("[2001:db8::1]:3478")));
        let (_, a4) = v2_addrs(sa("1.2.3.4:5"), sa("6.7.8.9:10"));
        let h = v2(1, 0x12, &a4, &[]);
        check_valid(&h, done(28, Some("1.2.3.4:5"), Some("6.7.8.9:10")));
    }

    #[test]
    fn v2_local_unspec_unix() {
        // LOCAL: health check, no addresses, family byte ignored, body skipped.
        check_valid(&v2(0, 0x00, &[], &[]), done(16, None, None));
        check_valid(&v2(0, 0xFF, &[1, 2, 3], &[]), done(19, None, None));
        let (fam, a) = v2_addrs(sa("1.2.3.4:5"), sa("6.7.8.9:10"));
        check_valid(&v2(0, fam, &a, &[]), done(28, None, None));
        // PROXY with UNSPEC: addresses unknown, anything in the body skipped.
        check_valid(&v2(1, 0x00, &[], &[9, 9, 9, 9]), done(20, None, None));
        // AF_UNIX: valid, but no IP address to report.
        check_valid(&v2(1, 0x31, &[b'/'; V2_UNIX_LEN], &[]), done(16 + V2_UNIX_LEN, None, None));
    }

    #[test]
    fn v2_with_tlvs() {
        let (fam, a) = v2_addrs(sa("1.2.3.4:5"), sa("6.7.8.9:10"));
        // ALPN "turn", an empty NOOP, and a 2-byte NOOP.
        let tlvs = [&[0x01, 0x00, 0x04][..], b"turn", &[0x04, 0x00, 0x00], &[0x04, 0x00, 0x02, 0, 0]].concat();
        let h = v2(1, fam, &a, &tlvs);
        check_valid(&h, done(h.len(), Some("1.2.3.4:5"), Some("6.7.8.9:10")));
    }

    #[test]
    fn v2_malformed() {
        let (fam, a) = v2_addrs(sa("1.2.3.4:5"), sa("6.7.8.9:10"));
        let good = v2(1, fam, &a, &[]);
        let mut wrong_sig = good.clone();
        wrong_sig[10] = b'X';
        assert!(is_invalid(parse(&wrong_sig)));
        assert!(is_invalid(parse(&wrong_sig[..11])), "rejected as soon as the signature differs");
        let mut v1_version = good.clone();
        v1_version[12] = 0x11;
        assert!(is_invalid(parse(&v1_version)));
        assert!(is_invalid(parse(&v1_version[..13])));
        let mut bad_cmd = good.clone();
        bad_cmd[12] = 0x22;
        assert!(is_invalid(parse(&bad_cmd)));
        for bad_fam in [0x10, 0x13, 0x01, 0x41, 0x23] {
            let mut h = good.clone();
            h[13] = bad_fam;
            assert!(is_invalid(parse(&h)), "family {bad_fam:#x}");
        }
        // Length too short for the address block (IPv4 needs 12, IPv6 36).
        let short = v2(1, 0x11, &a[..8], &[]);
        assert!(is_invalid(parse(&short)));
        assert!(is_invalid(parse(&short[..16])), "rejected from the length field alone");
        assert!(is_invalid(parse(&v2(1, 0x21, &a, &[]))));
        // TLV longer than what is left of the header.
        assert!(is_invalid(parse(&v2(1, fam, &a, &[0x01, 0x00, 0x05, b'a']))));
        assert!(is_invalid(parse(&v2(1, fam, &a, &[0x01, 0x00]))), "TLV header cut short");
    }

    #[test]
    fn v2_largest_length_needs_more_until_complete() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x20, 0x00, 0xFF, 0xFF]);
        assert_eq!(parse(&h), ProxyParse::NeedMore);
        h.resize(MAX_HEADER_LEN - 1, 0);
        assert_eq!(parse(&h), ProxyParse::NeedMore);
        h.push(0);
        assert_eq!(parse(&h), done(MAX_HEADER_LEN, None, None));
    }

    fn arb_addr_pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u16>(), any::<u16>()).prop_map(|(s, d, sp, dp)| (
                SocketAddr::new(Ipv4Addr::from(s).into(), sp),
                SocketAddr::new(Ipv4Addr::from(d).into(), dp)
            )),
            (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u16>(), any::<u16>()).prop_map(|(s, d, sp, dp)| (
                SocketAddr::new(Ipv6Addr::from(s).into(), sp),
                SocketAddr::new(Ipv6Addr::from(d).into(), dp)
            )),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_after_a_signature(v2_sig in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut b = if v2_sig { V2_SIGNATURE.to_vec() } else { V1_PREFIX.to_vec() };
            b.extend_from_slice(&tail);
            if let ProxyParse::Done { header_len, .. } = parse(&b) {
                prop_assert!(header_len <= b.len());
            }
        }

        #[test]
        fn generated_headers_round_trip((src, dst) in arb_addr_pair(), tlv in proptest::collection::vec(any::<u8>(), 0..40)) {
            let expected = |len| ProxyParse::Done { header_len: len, source: Some(src), destination: Some(dst) };
            let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
            let v1 = format!("PROXY {proto} {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port());
            prop_assert!(v1.len() <= V1_MAX_LEN);
            for i in 0..v1.len() {
                prop_assert_eq!(parse(&v1.as_bytes()[..i]), ProxyParse::NeedMore);
            }
            prop_assert_eq!(parse(v1.as_bytes()), expected(v1.len()));
            let (fam, a) = v2_addrs(src, dst);
            let tlvs = [&[0xE0, 0x00, tlv.len() as u8][..], &tlv].concat();
            let h = v2(1, fam, &a, &tlvs);
            for i in 0..h.len() {
                prop_assert_eq!(parse(&h[..i]), ProxyParse::NeedMore);
            }
            prop_assert_eq!(parse(&h), expected(h.len()));
        }
    }
}
