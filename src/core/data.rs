//! The hot path: Send/Data indications and ChannelData in both directions.
//!
//! Each function looks up one allocation, checks the permission or channel,
//! copies the payload once into the output arena and returns. Nothing here
//! allocates except the arena growing.

use std::net::SocketAddr;

use super::output::{Dest, Outputs, RelayId, Transport};
use super::peer_policy::canonical;
use super::server::Server;
use super::time::Now;
use crate::stun::{AttrType, ChannelData, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

impl Server {
    pub(crate) fn client_channel_data(
        &mut self,
        now: Now,
        transport: Transport,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
        out: &mut Outputs,
    ) {
        let Some(cd) = ChannelData::parse(data) else { return };
        let Some(&slot) = self.by_client.get(&(transport, from, local)) else { return };
        let Some(a) = self.allocs.get_mut(slot) else { return };
        let Some(peer) = a.channel_by_number(cd.channel, now.ms).map(|c| c.peer) else { return };
        // ChannelBind only binds peers of a family the allocation has a relay for.
        let Some(relay) = a.relay_for_peer(peer) else { return };
        if !a.within_limit_from_client(now.ms, cd.data.len()) {
            self.stats.dropped_over_bps += 1;
            return;
        }
        a.client_usage.rp += 1;
        a.client_usage.rb += data.len() as u64;
        a.peer_usage.sp += 1;
        a.peer_usage.sb += cd.data.len() as u64;
        out.push_copy(Dest::Peer { relay, to: peer }, cd.data);
    }

    pub(crate) fn send_indication(
        &mut self,
        now: Now,
        transport: Transport,
        local: SocketAddr,
        from: SocketAddr,
        msg: &Message,
        out: &mut Outputs,
    ) {
        let Some(&slot) = self.by_client.get(&(transport, from, local)) else { return };
        let Some(Ok(peer)) = msg.xor_address(AttrType::XOR_PEER_ADDRESS) else { return };
        let Some(payload) = msg.get(AttrType::DATA) else { return };
        let Some(a) = self.allocs.get(slot) else { return };
        if a.tcp {
            return;
        }
        let Some(relay) = a.relay_for_peer(peer) else { return };
        if !a.has_permission(peer.ip(), now.ms) {
            // `--server-relay` needs no permission, but the peer policy still
            // holds (the check a CreatePermission would have made).
            if !self.cfg.server_relay || self.peer_allowed(slot, peer).is_err() {
                return;
            }
        }
        if self.cfg.peers.refuses_own(peer) {
            return;
        }
        if !self.register_peer(slot, peer) {
            return;
        }
        let Some(a) = self.allocs.get_mut(slot) else { return };
        if !a.within_limit_from_client(now.ms, payload.len()) {
            self.stats.dropped_over_bps += 1;
            return;
        }
        a.client_usage.rp += 1;
        a.client_usage.rb += msg.raw().len() as u64;
        a.peer_usage.sp += 1;
        a.peer_usage.sb += payload.len() as u64;
        out.push_copy(Dest::Peer { relay, to: peer }, payload);
    }

    pub(crate) fn peer_data(&mut self, now: Now, relay: RelayId, from: SocketAddr, data: &[u8], out: &mut Outputs) {
        let slot = match self.by_relay.get(&relay) {
            Some(&s) => s,
            None => match self.by_peer.get(&(relay, from)) {
                Some(&s) => s,
                // First datagram from a peer on a shared relay: the one
                // allocation holding a permission for its IP takes it.
                None => match self.perm_owners.get(&(relay, canonical(from.ip()))) {
                    Some(owners) if owners.len() == 1 => {
                        let s = owners[0];
                        if !self.register_peer(s, from) {
                            return;
                        }
                        s
                    }
                    _ => return,
                },
            },
        };
        let fingerprint = self.cfg.fingerprint;
        let server_relay = self.cfg.server_relay;
        let Some(a) = self.allocs.get_mut(slot) else { return };
        if !server_relay && !a.has_permission(from.ip(), now.ms) {
            return;
        }
        if !a.within_limit_to_client(now.ms, data.len()) {
            self.stats.dropped_over_bps += 1;
            return;
        }
        a.peer_usage.rp += 1;
        a.peer_usage.rb += data.len() as u64;
        let dest = Dest::Client { transport: a.transport, local: a.local, to: a.client };
        let range = match a.channel_by_peer(from, now.ms) {
            // Streams need ChannelData padded to 4 bytes (RFC 8656 12.5).
            Some(ch) => ChannelData::encode(ch.number, data, a.transport.is_stream(), &mut out.buf),
            None => {
                let tid = TransactionId(rand::random());
                let mut b = MessageBuilder::new(&mut out.buf, MessageType::new(Method::DATA, Class::Indication), tid);
                b.add_xor_address(AttrType::XOR_PEER_ADDRESS, from);
                b.add_raw(AttrType::DATA, data);
                if fingerprint {
                    b.add_fingerprint();
                }
                b.finish()
            }
        };
        a.client_usage.sp += 1;
        a.client_usage.sb += range.len() as u64;
        out.push(dest, range);
    }
}
