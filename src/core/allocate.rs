//! Allocate and Refresh (RFC 8656 7, RFC 6156 for the address family).

use super::allocation::{Allocation, Usage};
use super::output::{Dest, Outputs};
use super::provider::{Family, PortRequest, RelayError, RelayProvider, RelayRequest};
use super::server::{Reply, Server, DEFAULT_LIFETIME};
use super::time::Now;
use crate::config::AddressFamilyDefault;
use crate::stun::{AttrType, ErrorCode, Message};

/// REQUESTED-TRANSPORT value for UDP.
const PROTO_UDP: u8 = 17;

impl Server {
    /// Lifetime to grant for a requested LIFETIME: absent or 0 → 600; below 600
    /// raised to 600; above `--max-allocate-lifetime` lowered to it (coturn).
    pub(crate) fn grant_lifetime(&self, requested: Option<u32>) -> u32 {
        let want = match requested {
            None | Some(0) => DEFAULT_LIFETIME,
            Some(l) => l.max(DEFAULT_LIFETIME),
        };
        want.min(self.cfg.max_allocate_lifetime.max(1))
    }

    pub(crate) fn allocate(&mut self, now: Now, msg: &Message, reply: Reply, relays: &mut dyn RelayProvider, out: &mut Outputs) {
        // coturn: an existing allocation with another transaction is 437 even
        // when redirecting; otherwise the redirect comes before authentication.
        if let Dest::Client { transport, local, to } = reply.dest {
            let other_tid = self
                .by_client
                .get(&(transport, to, local))
                .and_then(|&s| self.allocs.get(s))
                .is_some_and(|a| a.allocate_tid != reply.tid);
            if !other_tid && !self.cfg.alternates.is_empty() && self.try_redirect(reply, out) {
                return;
            }
        }
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let key = auth.key;
        let k = key.as_ref().map(|k| &k[..]);
        let Dest::Client { transport, local, to: client } = reply.dest else { return };

        if let Some(&slot) = self.by_client.get(&(transport, client, local)) {
            // A retransmitted Allocate gets the same answer; anything else 437.
            let same = self.allocs.get(slot).is_some_and(|a| a.allocate_tid == reply.tid);
            if same {
                self.allocate_success(slot, now, reply, out);
            } else {
                self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH, k, |_| {});
            }
            return;
        }

        match msg.requested_transport() {
            Some(Ok(PROTO_UDP)) if !self.cfg.no_udp_relay => {}
            Some(Ok(_)) => return self.error(out, reply, ErrorCode::UNSUPPORTED_TRANSPORT, k, |_| {}),
            _ => return self.error(out, reply, ErrorCode::BAD_REQUEST, k, |_| {}),
        }

        let token = match msg.reservation_token() {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST, k, |_| {}),
        };
        let even = match msg.even_port() {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST, k, |_| {}),
        };
        let requested_family = match msg.address_family(AttrType::REQUESTED_ADDRESS_FAMILY) {
            None => None,
            Some(Ok(1)) => Some(Family::V4),
            Some(Ok(2)) => Some(Family::V6),
            Some(Ok(_)) => return self.error(out, reply, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, k, |_| {}),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST, k, |_| {}),
        };
        // RESERVATION-TOKEN excludes EVEN-PORT (RFC 8656) and REQUESTED-ADDRESS-FAMILY (RFC 6156).
        if token.is_some() && (even.is_some() || requested_family.is_some()) {
            return self.error(out, reply, ErrorCode::BAD_REQUEST, k, |_| {});
        }
        let lifetime_req = match msg.u32_attr(AttrType::LIFETIME) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST, k, |_| {}),
        };

        // One shared relay socket per thread cannot give port pairs (coturn: 508).
        if relays.multiplexed() && (even.is_some() || token.is_some()) {
            return self.error(out, reply, ErrorCode::INSUFFICIENT_CAPACITY, k, |_| {});
        }
        let family = requested_family.unwrap_or(match self.cfg.default_family {
            AddressFamilyDefault::Ipv4 => Family::V4,
            AddressFamilyDefault::Ipv6 => Family::V6,
            AddressFamilyDefault::Keep => Family::of(client.ip()),
        });
        if token.is_none() && !relays.supports(family) {
            return self.error(out, reply, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, k, |_| {});
        }
        let port = match (token, even) {
            (Some(t), _) => PortRequest::Reserved(t),
            (None, Some(r)) => PortRequest::Even { reserve_next: r },
            (None, None) => PortRequest::Any,
        };
        if !self.cfg.quotas.try_acquire(&auth.username) {
            tracing::info!("Allocation quota reached for user <{}>", auth.username);
            return self.error(out, reply, ErrorCode::ALLOCATION_QUOTA_REACHED, k, |_| {});
        }
        let req = RelayRequest { family, port, dont_fragment: msg.get(AttrType::DONT_FRAGMENT).is_some(), client };
        let bound = relays.bind_relay(req);
        if bound.is_err() {
            self.cfg.quotas.release(&auth.username);
        }
        let binding = match bound {
            Ok(b) => b,
            Err(RelayError::FamilyNotSupported) => {
                return self.error(out, reply, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, k, |_| {})
            }
            Err(e) => {
                tracing::error!("{}: {e}", family.label());
                return self.error(out, reply, ErrorCode::INSUFFICIENT_CAPACITY, k, |_| {});
            }
        };

        let lifetime = self.grant_lifetime(lifetime_req);
        let session_id = self.new_session_id();
        let expires_ms = now.ms + u64::from(lifetime) * 1000;
        let alloc = Allocation {
            session_id,
            client,
            local,
            transport,
            relay: binding.id,
            relay_local: binding.local,
            relay_advertised: binding.advertised,
            family: Family::of(binding.local.ip()),
            username: auth.username,
            realm: auth.realm,
            key,
            expires_ms,
            lifetime_secs: lifetime,
            allocate_tid: reply.tid,
            reservation_token: binding.reservation_token,
            permissions: Vec::new(),
            channels: Vec::new(),
            client_usage: Usage::default(),
            peer_usage: Usage::default(),
            timer_at: expires_ms,
            shared: binding.shared,
            peer_addrs: Vec::new(),
        };
        tracing::info!("{}. Local relay addr: {}", alloc.family.label(), binding.local);
        tracing::info!(
            "session {session_id:018}: new, realm=<{}>, username=<{}>, lifetime={lifetime}",
            alloc.realm,
            alloc.username
        );
        let slot = self.allocs.insert(alloc);
        self.by_client.insert((transport, client, local), slot);
        if !binding.shared {
            self.by_relay.insert(binding.id, slot);
        }
        self.timers.arm(expires_ms, slot);
        self.stats.allocations_created += 1;
        self.allocate_success(slot, now, reply, out);
    }

    fn allocate_success(&mut self, slot: usize, now: Now, reply: Reply, out: &mut Outputs) {
        let Some(a) = self.allocs.get(slot) else { return };
        let remaining = a.expires_ms.saturating_sub(now.ms) / 1000;
        let (relay, client, token, key) = (a.relay_advertised, a.client, a.reservation_token, a.key);
        if self.cfg.verbose {
            tracing::info!(
                "session {:018}: realm <{}> user <{}>: incoming packet ALLOCATE processed, success",
                a.session_id,
                a.realm,
                a.username
            );
        }
        self.success(out, reply, key.as_ref().map(|k| &k[..]), |b| {
            b.add_xor_address(AttrType::XOR_RELAYED_ADDRESS, relay);
            b.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, client);
            b.add_u32(AttrType::LIFETIME, remaining as u32);
            if let Some(t) = token {
                b.add_u64(AttrType::RESERVATION_TOKEN, t);
            }
        });
    }

    pub(crate) fn refresh(&mut self, now: Now, msg: &Message, reply: Reply, relays: &mut dyn RelayProvider, out: &mut Outputs) {
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let k = auth.key.as_ref().map(|k| &k[..]);
        let Dest::Client { transport, local, to: client } = reply.dest else { return };
        let Some(&slot) = self.by_client.get(&(transport, client, local)) else {
            return self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH, k, |_| {});
        };
        if !self.same_user(slot, &auth.username) {
            return self.error(out, reply, ErrorCode::WRONG_CREDENTIALS, k, |_| {});
        }
        let requested = match msg.u32_attr(AttrType::LIFETIME) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST, k, |_| {}),
        };
        if let Some(Ok(f)) = msg.address_family(AttrType::REQUESTED_ADDRESS_FAMILY) {
            let fam = if f == 1 { Family::V4 } else { Family::V6 };
            if self.allocs.get(slot).is_some_and(|a| a.family != fam) {
                return self.error(out, reply, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, k, |_| {});
            }
        }
        if requested == Some(0) {
            self.success(out, reply, k, |b| {
                b.add_u32(AttrType::LIFETIME, 0);
            });
            self.remove_allocation(slot, relays, "allocation deleted by client (refresh with zero lifetime)");
            return;
        }
        let lifetime = self.grant_lifetime(requested);
        if let Some(a) = self.allocs.get_mut(slot) {
            a.expires_ms = now.ms + u64::from(lifetime) * 1000;
            a.lifetime_secs = lifetime;
            tracing::info!(
                "session {:018}: refreshed, realm=<{}>, username=<{}>, lifetime={lifetime}",
                a.session_id,
                a.realm,
                a.username
            );
        }
        self.rearm(slot);
        self.success(out, reply, k, |b| {
            b.add_u32(AttrType::LIFETIME, lifetime);
        });
    }

    /// Requests on an allocation must come from the user that made it (441).
    pub(crate) fn same_user(&self, slot: usize, username: &str) -> bool {
        match self.allocs.get(slot) {
            Some(a) => a.key.is_none() || a.username == username,
            None => false,
        }
    }
}
