//! Classifying the first bytes of a TCP connection.
//!
//! coturn accepts TLS, plain STUN/TURN, HTTP and (with `--tcp-proxy-port`) the
//! PROXY protocol on the same listening port, so the I/O layer has to look at
//! the first bytes before it knows whether to start a TLS handshake. This
//! module only classifies; it never consumes bytes.

/// What the first bytes of a stream look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// A TLS handshake record (`0x16 0x03 0x00..=0x04`).
    Tls,
    /// A STUN message: first two bits `00` and, once eight bytes are in, either
    /// the RFC 5389 magic cookie or (RFC 3489 clients, which coturn still
    /// serves) a length that is a multiple of four.
    Stun,
    /// A TURN ChannelData message: first two bits `01` (channels 0x4000-0x7FFF)
    /// and not the start of an HTTP method or `PROXY `.
    ChannelData,
    /// An HTTP request line (`GET `, `POST `, ...).
    Http,
    /// PROXY protocol version 1 (`PROXY ` text header).
    ProxyV1,
    /// PROXY protocol version 2 (12-byte binary signature).
    ProxyV2,
    /// Too few bytes to decide; read more and call again.
    NeedMore,
    /// None of the above.
    Unknown,
}

/// The PROXY protocol v2 signature.
const PROXY_V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The PROXY protocol v1 prefix.
const PROXY_V1_PREFIX: &[u8] = b"PROXY ";
/// HTTP methods coturn answers on its TURN ports (all of RFC 9110 plus PATCH).
const HTTP_METHODS: &[&[u8]] = &[
    b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"TRACE ", b"PATCH ",
];
/// STUN magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// How `first` relates to a fixed `token`: a full match, a prefix of it
/// (more bytes needed), or neither.
fn prefix_state(first: &[u8], token: &[u8]) -> Option<bool> {
    let n = first.len().min(token.len());
    if first[..n] != token[..n] {
        return None;
    }
    Some(first.len() >= token.len())
}

/// Classify the first bytes received on a TCP (or TLS-capable) listener.
///
/// Promises: the answer for a given prefix never contradicts the answer for a
/// longer prefix unless it was [`Sniff::NeedMore`]; at most 12 bytes are ever
/// needed to decide.
pub fn sniff(first: &[u8]) -> Sniff {
    let Some(&b0) = first.first() else {
        return Sniff::NeedMore;
    };
    // Text and binary signatures first: 'P', 'G', ... fall in the ChannelData
    // range and the PROXY v2 signature starts with two zero bits like STUN.
    let mut need_more = false;
    match prefix_state(first, PROXY_V2_SIG) {
        Some(true) => return Sniff::ProxyV2,
        Some(false) => need_more = true,
        None => {}
    }
    match prefix_state(first, PROXY_V1_PREFIX) {
        Some(true) => return Sniff::ProxyV1,
        Some(false) => need_more = true,
        None => {}
    }
    for m in HTTP_METHODS {
        match prefix_state(first, m) {
            Some(true) => return Sniff::Http,
            Some(false) => need_more = true,
            None => {}
        }
    }
    if need_more {
        return Sniff::NeedMore;
    }

    if b0 == 0x16 {
        // A TLS record header: content type handshake, legacy version 3.x. A
        // STUN message type 0x16xx is not a defined method, but if a cookie
        // shows up anyway, STUN wins.
        match first.get(1) {
            None => return Sniff::NeedMore,
            Some(0x03) => match first.get(2) {
                None => return Sniff::NeedMore,
                Some(0..=4) => {
                    if first.len() >= 8 && first[4..8] == MAGIC_COOKIE {
                        return Sniff::Stun;
                    }
                    return Sniff::Tls;
                }
                Some(_) => {}
            },
            Some(_) => {}
        }
    }

    match b0 >> 6 {
        0b00 => {
            if first.len() < 8 {
                return Sniff::NeedMore;
            }
            let len = u16::from_be_bytes([first[2], first[3]]);
            if first[4..8] == MAGIC_COOKIE || len % 4 == 0 {
                Sniff::Stun
            } else {
                Sniff::Unknown
            }
        }
        0b01 => Sniff::ChannelData,
        _ => Sniff::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_binding_request() {
        let mut req = vec![0x00, 0x01, 0x00, 0x00];
        req.extend_from_slice(&MAGIC_COOKIE);
        req.extend_from_slice(&[7; 12]);
        assert_eq!(sniff(&req), Sniff::Stun);
        assert_eq!(sniff(&req[..8]), Sniff::Stun);
        for n in 0..8 {
            assert_eq!(sniff(&req[..n]), Sniff::NeedMore, "prefix {n}");
        }
        // RFC 3489 request: no cookie, length multiple of 4.
        let old = [0x00, 0x01, 0x00, 0x08, 1, 2, 3, 4, 0, 0, 0, 0];
        assert_eq!(sniff(&old), Sniff::Stun);
        // Neither cookie nor a plausible length.
        let bad = [0x00, 0x01, 0x00, 0x07, 1, 2, 3, 4];
        assert_eq!(sniff(&bad), Sniff::Unknown);
    }

    #[test]
    fn channel_data() {
        assert_eq!(sniff(&[0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]), Sniff::ChannelData);
        assert_eq!(sniff(&[0x7F, 0xFF]), Sniff::ChannelData);
        // 0x47 is 'G': undecided until the second byte rules out "GET ".
        assert_eq!(sniff(&[0x47]), Sniff::NeedMore);
        assert_eq!(sniff(&[0x47, 0x01, 0x00, 0x00]), Sniff::ChannelData);
        // 0x50 is 'P' (PROXY, POST, PUT, PATCH).
        assert_eq!(sniff(&[0x50, 0x00]), Sniff::ChannelData);
    }

    #[test]
    fn http() {
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniff::Http);
        assert_eq!(sniff(b"GET "), Sniff::Http);
        assert_eq!(sniff(b"GE"), Sniff::NeedMore);
        assert_eq!(sniff(b"POST /x"), Sniff::Http);
        assert_eq!(sniff(b"OPTIONS * HTTP/1.1"), Sniff::Http);
        assert_eq!(sniff(b"PU"), Sniff::NeedMore);
        assert_eq!(sniff(b"GETX"), Sniff::ChannelData);
    }

    #[test]
    fn proxy_protocol() {
        assert_eq!(sniff(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), Sniff::ProxyV1);
        assert_eq!(sniff(b"PROX"), Sniff::NeedMore);
        // "P" alone could be PROXY/POST/PUT/PATCH.
        assert_eq!(sniff(b"P"), Sniff::NeedMore);
        let mut v2 = PROXY_V2_SIG.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C]);
        assert_eq!(sniff(&v2), Sniff::ProxyV2);
        for n in 1..12 {
            assert_eq!(sniff(&v2[..n]), Sniff::NeedMore, "prefix {n}");
        }
        // Diverges from the signature after two bytes: a 0x0D0A STUN-ish type.
        assert_eq!(sniff(b"\r\nXY\x21\x12\xA4\x42"), Sniff::Stun);
    }

    #[test]
    fn tls_record_header() {
        assert_eq!(sniff(&[0x16]), Sniff::NeedMore);
        assert_eq!(sniff(&[0x16, 0x03]), Sniff::NeedMore);
        assert_eq!(sniff(&[0x16, 0x03, 0x01]), Sniff::Tls);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC]), Sniff::Tls);
        // A cookie at bytes 4..8 means STUN after all.
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0x00, 0x21, 0x12, 0xA4, 0x42]), Sniff::Stun);
    }

    #[test]
    fn unknown() {
        assert_eq!(sniff(&[0x80, 0, 0, 0]), Sniff::Unknown);
        assert_eq!(sniff(&[0xFF]), Sniff::Unknown);
    }
}
