//! Binding requests: RFC 5389 and, when asked for, classic RFC 3489.

use std::net::SocketAddr;

use super::output::{Dest, Outputs, Transport};
use super::server::{Reply, Server};
use super::time::Now;
use crate::stun::{AttrType, Class, ErrorCode, Message, MessageBuilder, MessageType, Method};

/// Largest PADDING value of a padded answer (coturn: the MTU, 1500 when
/// unknown).
const PADDING_LEN: usize = 1500;

/// What a padded answer carries besides its PADDING value, at most: header,
/// XOR-MAPPED-, MAPPED-, RESPONSE-ORIGIN and OTHER-ADDRESS for IPv6, SOFTWARE,
/// the PADDING header and FINGERPRINT, rounded up. Taken off the request's
/// own padding so the answer is never larger than the request: coturn pads
/// every answer to 1500 bytes, which makes a 28-byte spoofed request a 54x
/// amplifier; here a client that wants a 1500-byte answer sends 1500 bytes.
const PADDED_ANSWER_OVERHEAD: usize = 200;

impl Server {
    /// A Binding request. With RFC 5780 on, the answer also says which local
    /// address answered (RESPONSE-ORIGIN) and which one a client should probe
    /// next (OTHER-ADDRESS), and honours CHANGE-REQUEST, RESPONSE-PORT and
    /// PADDING the way coturn does: the answer leaves from the changed local
    /// address and/or goes to the requested port of the client's IP.
    /// RESPONSE-PORT and PADDING can make the server send 1.5 KB to another
    /// port of a (possibly spoofed) source IP for a 20-byte request, which is
    /// one reason RFC 5780 stays off unless asked for (coturn >= 4.7 too).
    pub(crate) fn binding(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) {
        if self.cfg.no_stun {
            return;
        }
        let Dest::Client { transport, local, to: client } = reply.dest else { return };
        self.stats.binding_requests += 1;
        let rfc5780 = self.cfg.rfc5780.is_some();
        let bad = |s: &mut Self, out: &mut Outputs| {
            s.stats.binding_errors += 1;
            s.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed CHANGE-REQUEST or RFC 5780 request"), None, |_| {})
        };

        // An all-zero CHANGE-REQUEST is accepted by every server (some STUN
        // clients always send one); only real change flags need RFC 5780.
        let (change_ip, change_port) = match msg.change_request() {
            None => (false, false),
            Some(Ok(flags)) => flags,
            Some(Err(_)) => return bad(self, out),
        };
        if change_ip || change_port {
            if !rfc5780 {
                self.stats.binding_errors += 1;
                self.error(out, reply, ErrorCode::UNKNOWN_ATTRIBUTE.because("Unknown attribute: TURN server was configured without RFC 5780 support"), None, |b| {
                    b.add_unknown_attributes(&[AttrType::CHANGE_REQUEST]);
                });
                return;
            }
            // A stream cannot answer from another address.
            if transport != Transport::Udp {
                return bad(self, out);
            }
        }
        let padding_attr = msg.get(AttrType::PADDING);
        let padding = padding_attr.is_some();
        let pad_len = padding_attr.map_or(0, |p| (p.len().min(PADDING_LEN) + 20).saturating_sub(PADDED_ANSWER_OVERHEAD) & !3);
        let response_port = match msg.get(AttrType::RESPONSE_PORT) {
            None => None,
            Some(v) => match v {
                [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
                _ => return bad(self, out),
            },
        };
        // coturn: PADDING and RESPONSE-PORT exclude each other; PADDING only
        // makes sense on datagrams, RESPONSE-PORT only on plain UDP.
        if padding && response_port.is_some() {
            return bad(self, out);
        }
        if padding && !matches!(transport, Transport::Udp | Transport::Dtls) {
            return bad(self, out);
        }
        if response_port.is_some() && transport != Transport::Udp {
            return bad(self, out);
        }

        let key = if self.cfg.secure_stun {
            match self.authenticate(now, msg, reply, out) {
                Some(auth) => auth.key,
                None => {
                    self.stats.binding_errors += 1;
                    return;
                }
            }
        } else {
            None
        };

        let other = self.cfg.rfc5780.as_ref().and_then(|m| m.get(&local).copied());
        let mut answer = reply;
        let mut origin = local;
        if let Some(other) = other {
            if change_ip {
                let port = if change_port { other.port() } else { local.port() };
                origin = SocketAddr::new(other.ip(), port);
            } else if change_port {
                origin.set_port(other.port());
            }
            let mut to = client;
            if let Some(p) = response_port {
                to.set_port(p);
            }
            answer.dest = Dest::Client { transport, local: origin, to };
        }
        let backward = self.cfg.stun_backward_compatibility;
        self.stats.binding_responses += 1;
        if self.cfg.verbose && self.cfg.log_binding {
            tracing::info!("{client}: incoming packet BINDING processed, success (local {local}, {transport:?})");
        }
        self.success(out, answer, key.as_ref().map(|k| &k[..]), |b| {
            b.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, client);
            if backward {
                b.add_address(AttrType::MAPPED_ADDRESS, client);
            }
            if let Some(other) = other {
                b.add_address(AttrType::RESPONSE_ORIGIN, origin);
                b.add_address(AttrType::OTHER_ADDRESS, other);
                if padding && pad_len > 0 {
                    // Large answers tell the client whether large (fragmented)
                    // datagrams get through; see PADDED_ANSWER_OVERHEAD.
                    b.add_raw(AttrType::PADDING, &[0u8; PADDING_LEN][..pad_len]);
                }
            }
        });
    }

    /// A cookie-less RFC 3489 Binding request (`--rfc3489-compatibility`):
    /// answered with MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS as classic
    /// clients expect.
    pub(crate) fn classic_binding(&mut self, transport: Transport, local: SocketAddr, from: SocketAddr, data: &[u8], out: &mut Outputs) {
        let Ok(msg) = Message::parse_rfc3489(data) else { return };
        if msg.method() != Method::BINDING || msg.class() != Class::Request || self.cfg.no_stun {
            return;
        }
        let Some(cookie_word) = data.get(4..8).and_then(|w| <[u8; 4]>::try_from(w).ok()) else { return };
        let mut b = MessageBuilder::new_rfc3489(
            &mut out.buf,
            MessageType::new(Method::BINDING, Class::Success),
            cookie_word,
            msg.transaction_id(),
        );
        b.add_address(AttrType::MAPPED_ADDRESS, from);
        b.add_address(AttrType::SOURCE_ADDRESS, local);
        // With RFC 5780 the other address is real; without it coturn names
        // the local address, which tells a classic client "no change possible".
        let changed = self.cfg.rfc5780.as_ref().and_then(|m| m.get(&local).copied()).unwrap_or(local);
        b.add_address(AttrType::CHANGED_ADDRESS, changed);
        let range = b.finish();
        out.push(Dest::Client { transport, local, to: from }, range);
    }
}
