//! Binding requests: RFC 5389 and, when asked for, classic RFC 3489.

use std::net::SocketAddr;

use super::output::{Dest, Outputs, Transport};
use super::server::{Reply, Server};
use super::time::Now;
use crate::stun::{AttrType, Class, ErrorCode, Message, MessageBuilder, MessageType, Method};

impl Server {
    pub(crate) fn binding(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) {
        if self.cfg.no_stun {
            return;
        }
        // Without RFC 5780 the NAT-discovery attributes are not understood: 420,
        // as coturn answers.
        let unsupported: Vec<u16> = [AttrType::CHANGE_REQUEST, AttrType::RESPONSE_PORT]
            .into_iter()
            .filter(|&t| msg.get(t).is_some())
            .collect();
        if !unsupported.is_empty() {
            self.error(out, reply, ErrorCode::UNKNOWN_ATTRIBUTE, None, |b| {
                b.add_unknown_attributes(&unsupported);
            });
            return;
        }
        let key = if self.cfg.secure_stun {
            match self.authenticate(now, msg, reply, out) {
                Some(auth) => auth.key,
                None => return,
            }
        } else {
            None
        };
        let Dest::Client { to: client, .. } = reply.dest else { return };
        let backward = self.cfg.stun_backward_compatibility;
        self.success(out, reply, key.as_ref().map(|k| &k[..]), |b| {
            b.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, client);
            if backward {
                b.add_address(AttrType::MAPPED_ADDRESS, client);
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
        b.add_address(AttrType::CHANGED_ADDRESS, local);
        let range = b.finish();
        out.push(Dest::Client { transport, local, to: from }, range);
    }
}
