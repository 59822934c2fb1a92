//! CreatePermission and ChannelBind (RFC 8656 9 and 12).

use std::net::SocketAddr;

use super::allocation::Channel;
use super::refusal::peer_refused;
use super::output::{Dest, Outputs};
use super::peer_policy::Denial;
use super::server::{Reply, Server};
use super::time::Now;
use crate::stun::{AttrType, ErrorCode, Message};

/// Outcome of checking one XOR-PEER-ADDRESS against an allocation.
enum PeerCheck {
    Ok,
    /// Answer with this code.
    Reject(ErrorCode),
}

impl Server {
    /// The allocation needs a relay of the peer's family (443; a dual
    /// allocation has both) and the peer policy must allow it (403).
    fn check_peer(&self, slot: usize, peer: SocketAddr) -> PeerCheck {
        let Some(a) = self.allocs.get(slot) else { return PeerCheck::Reject(ErrorCode::ALLOCATION_MISMATCH) };
        if a.relay_for_peer(peer).is_none() {
            return PeerCheck::Reject(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        // The database's ranges for the allocation's realm join the static
        // lists: an allowed range (static or dynamic) beats every denial
        // except the fixed ones, as in coturn.
        let dynamic = self.dynamic_peer_verdict(&a.realm, peer.ip());
        let static_allowed = self.cfg.peers.allowed.iter().any(|r| r.contains(peer.ip()));
        let denial = match (self.cfg.peers.check_addr(peer), dynamic) {
            (Err(d @ (Denial::Unspecified | Denial::LinkLocalOrPrivateV6)), _) => Some(format!("{d:?}")),
            (Err(_), Some(Ok(()))) => None,
            (Err(d), _) => Some(format!("{d:?}")),
            (Ok(()), Some(Err(range))) if !static_allowed => Some(format!("database range {range:?}")),
            (Ok(()), _) => None,
        };
        if let Some(denial) = denial {
            tracing::info!(
                "session {:018}: A peer IP {} denied ({denial})",
                a.session_id,
                peer.ip()
            );
            return PeerCheck::Reject(ErrorCode::FORBIDDEN);
        }
        PeerCheck::Ok
    }

    /// The allocation slot of this request's 5-tuple, checking the user; on
    /// failure the 437/441 answer is queued.
    pub(crate) fn request_slot(&self, msg: &Message, reply: Reply, username: &str, key: Option<&[u8]>, out: &mut Outputs) -> Option<usize> {
        let Dest::Client { transport, local, to } = reply.dest else { return None };
        let Some(&slot) = self.by_client.get(&(transport, to, local)) else {
            self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH.because("No allocation on this 5-tuple"), key, |_| {});
            return None;
        };
        if !self.same_user(slot, username) || !self.same_origin(slot, msg) {
            self.error(out, reply, ErrorCode::WRONG_CREDENTIALS.because("Wrong credentials: the allocation belongs to another user or origin"), key, |_| {});
            return None;
        }
        Some(slot)
    }

    /// [`Self::check_peer`] as a `Result`, for Connect.
    pub(crate) fn peer_allowed(&self, slot: usize, peer: SocketAddr) -> Result<(), ErrorCode> {
        match self.check_peer(slot, peer) {
            PeerCheck::Ok => Ok(()),
            PeerCheck::Reject(code) => Err(code),
        }
    }

    pub(crate) fn create_permission(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) {
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let k = auth.key.as_ref().map(|k| &k[..]);
        let Some(slot) = self.request_slot(msg, reply, &auth.username, k, out) else { return };
        let mut peers = Vec::new();
        for p in msg.xor_addresses(AttrType::XOR_PEER_ADDRESS) {
            match p {
                Ok(p) => peers.push(p),
                Err(_) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed XOR-PEER-ADDRESS"), k, |_| {}),
            }
        }
        if peers.is_empty() {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Missing XOR-PEER-ADDRESS"), k, |_| {});
        }
        // All or nothing: check every peer before installing any.
        for &p in &peers {
            if let PeerCheck::Reject(code) = self.check_peer(slot, p) {
                return self.error(out, reply, peer_refused(code), k, |_| {});
            }
        }
        let expires = now.ms + u64::from(self.cfg.permission_lifetime) * 1000;
        let mut new_ips = Vec::new();
        if let Some(a) = self.allocs.get_mut(slot) {
            for p in &peers {
                if a.add_permission(p.ip(), expires) {
                    new_ips.push(p.ip());
                }
            }
            if self.cfg.verbose {
                for p in &peers {
                    tracing::info!("session {:018}: peer {} lifetime updated: {}", a.session_id, p.ip(), self.cfg.permission_lifetime);
                }
            }
        }
        for ip in new_ips {
            self.note_peer_ip(slot, ip);
        }
        self.rearm(slot);
        self.success(out, reply, k, |_| {});
    }

    pub(crate) fn channel_bind(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) {
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let k = auth.key.as_ref().map(|k| &k[..]);
        let Some(slot) = self.request_slot(msg, reply, &auth.username, k, out) else { return };
        // A TCP allocation has no datagrams to put in channels (RFC 6062).
        if self.allocs.get(slot).is_some_and(|a| a.tcp) {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("A TCP allocation has no channels"), k, |_| {});
        }
        let max = if self.cfg.rfc5766_channel_numbers { 0x7FFF } else { 0x4FFF };
        let number = match msg.channel_number() {
            Some(Ok(n)) if (0x4000..=max).contains(&n) => n,
            _ => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Wrong channel number"), k, |_| {}),
        };
        let peer = match msg.xor_address(AttrType::XOR_PEER_ADDRESS) {
            Some(Ok(p)) => p,
            _ => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Missing or malformed XOR-PEER-ADDRESS"), k, |_| {}),
        };
        if let PeerCheck::Reject(code) = self.check_peer(slot, peer) {
            return self.error(out, reply, peer_refused(code), k, |_| {});
        }
        let chan_expires = now.ms + u64::from(self.cfg.channel_lifetime) * 1000;
        // A number bound to another peer, or a peer bound to another number, is
        // a 400 (RFC 8656 12.2) while the binding lives.
        let clash = self.allocs.get(slot).is_some_and(|a| {
            a.channels.iter().any(|c| c.expires_ms > now.ms && ((c.number == number) != (c.peer == peer)))
        });
        if clash {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Channel number or peer already bound otherwise"), k, |_| {});
        }
        // On a shared relay the peer endpoint must be free on this thread.
        if !self.register_peer(slot, peer) {
            return self.error(out, reply, ErrorCode::INSUFFICIENT_CAPACITY.because("Peer endpoint already in use on the shared relay"), k, |_| {});
        }
        let Some(a) = self.allocs.get_mut(slot) else { return };
        match a.channels.iter_mut().find(|c| c.number == number && c.peer == peer) {
            Some(c) => c.expires_ms = chan_expires,
            None => {
                // An expired binding of this number or peer may be reused now.
                a.channels.retain(|c| c.number != number && c.peer != peer);
                a.channels.push(Channel { number, peer, expires_ms: chan_expires });
            }
        }
        let new_ip = a.add_permission(peer.ip(), chan_expires);
        if self.cfg.verbose {
            tracing::info!(
                "session {:018}: realm <{}> user <{}>: incoming packet CHANNEL_BIND processed, success",
                a.session_id,
                a.realm,
                a.username
            );
        }
        if new_ip {
            self.note_peer_ip(slot, peer.ip());
        }
        self.rearm(slot);
        self.success(out, reply, k, |_| {});
    }
}
