//! Allocate and Refresh (RFC 8656 7, RFC 6156 for the address family).

use super::allocation::{AddressError, Allocation, SecondRelay, Usage};
use super::bandwidth::{bandwidth_attr_to_bps, bps_to_bandwidth_attr, session_rate, SessionLimit};
use super::output::{Dest, Outputs};
use super::refusal::relay_refused;
use super::provider::{Family, PortRequest, RelayError, RelayProvider, RelayRequest};
use super::server::{Reply, Server, DEFAULT_LIFETIME};
use super::time::Now;
use crate::config::AddressFamilyDefault;
use crate::stun::{AttrType, ErrorCode, Message};

/// REQUESTED-TRANSPORT value for UDP.
const PROTO_UDP: u8 = 17;
/// REQUESTED-TRANSPORT value for TCP (RFC 6062).
const PROTO_TCP: u8 = 6;

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
        // Drain: sessions already here carry on (a retransmitted Allocate
        // still gets its answer below); nobody new is taken in.
        if self.cfg.draining.load(std::sync::atomic::Ordering::Relaxed) && !self.by_client.contains_key(&(transport, client, local)) {
            self.stats.refused_draining += 1;
            return self.error(out, reply, ErrorCode::FORBIDDEN.because("Server is draining: no new allocations"), k, |_| {});
        }

        if let Some(&slot) = self.by_client.get(&(transport, client, local)) {
            // A retransmitted Allocate gets the same answer; anything else 437.
            let same = self.allocs.get(slot).is_some_and(|a| a.allocate_tid == reply.tid);
            if same {
                self.allocate_success(slot, now, reply, out);
            } else {
                self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH.because("Mismatched allocation: wrong transaction ID"), k, |_| {});
            }
            return;
        }

        let tcp = match msg.requested_transport() {
            Some(Ok(PROTO_UDP)) if !self.cfg.no_udp_relay => false,
            Some(Ok(PROTO_TCP)) if !self.cfg.no_tcp_relay => true,
            Some(Ok(_)) => return self.error(out, reply, ErrorCode::UNSUPPORTED_TRANSPORT.because("Requested transport is not relayed by this server"), k, |_| {}),
            _ => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Missing or malformed REQUESTED-TRANSPORT"), k, |_| {}),
        };
        // RFC 6062 5.1: a TCP relay needs a TCP or TLS control connection, and
        // DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN mean nothing for it.
        // One TCP relay per allocation: no dual allocation either.
        if tcp
            && (!transport.is_stream()
                || msg.get(AttrType::DONT_FRAGMENT).is_some()
                || msg.get(AttrType::EVEN_PORT).is_some()
                || msg.get(AttrType::RESERVATION_TOKEN).is_some()
                || msg.get(AttrType::ADDITIONAL_ADDRESS_FAMILY).is_some()
                || msg.get(AttrType::ADDITIONAL_ADDRESS_FAMILY_DRAFT).is_some())
        {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("A TCP allocation needs a TCP or TLS connection and takes no DONT-FRAGMENT, EVEN-PORT, RESERVATION-TOKEN or ADDITIONAL-ADDRESS-FAMILY"), k, |_| {});
        }

        let mobile = match self.wants_ticket(msg) {
            Ok(m) => m,
            Err(code) => return self.error(out, reply, code, k, |_| {}),
        };
        let token = match msg.reservation_token() {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed RESERVATION-TOKEN"), k, |_| {}),
        };
        let even = match msg.even_port() {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed EVEN-PORT"), k, |_| {}),
        };
        let requested_family = match msg.address_family(AttrType::REQUESTED_ADDRESS_FAMILY) {
            None => None,
            Some(Ok(1)) => Some(Family::V4),
            Some(Ok(2)) => Some(Family::V6),
            Some(Ok(_)) => return self.error(out, reply, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED.because("Unknown REQUESTED-ADDRESS-FAMILY"), k, |_| {}),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed REQUESTED-ADDRESS-FAMILY"), k, |_| {}),
        };
        // ADDITIONAL-ADDRESS-FAMILY asks for an IPv6 relay next to the IPv4
        // one (RFC 8656 7.2); IPv4 as the additional family makes no sense.
        // coturn's clients send it at the draft codepoint: accept both, and
        // answer ADDRESS-ERROR-CODE at the codepoint family the client used.
        let (additional, error_attr) = match msg.get(AttrType::ADDITIONAL_ADDRESS_FAMILY) {
            Some(_) => (msg.address_family(AttrType::ADDITIONAL_ADDRESS_FAMILY), AttrType::ADDRESS_ERROR_CODE),
            None => (msg.address_family(AttrType::ADDITIONAL_ADDRESS_FAMILY_DRAFT), AttrType::ADDRESS_ERROR_CODE_DRAFT),
        };
        let dual = match additional {
            None => false,
            Some(Ok(2)) => true,
            Some(Ok(1)) | Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("ADDITIONAL-ADDRESS-FAMILY must be IPv6"), k, |_| {}),
            Some(Ok(_)) => return self.error(out, reply, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED.because("Unknown ADDITIONAL-ADDRESS-FAMILY"), k, |_| {}),
        };
        // RESERVATION-TOKEN excludes EVEN-PORT (RFC 8656) and REQUESTED-ADDRESS-FAMILY (RFC 6156).
        if token.is_some() && (even.is_some() || requested_family.is_some()) {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("RESERVATION-TOKEN cannot come with EVEN-PORT or REQUESTED-ADDRESS-FAMILY"), k, |_| {});
        }
        // A dual allocation names its families itself, and a reservation (token,
        // or EVEN-PORT with R) would need one held port per family. A plain
        // EVEN-PORT is honoured on both relays: coturn 4.6.1 accepts it, and
        // `turnutils_uclient -Z` sends it.
        if dual && (token.is_some() || even == Some(true) || requested_family.is_some()) {
            return self.error(out, reply, ErrorCode::BAD_REQUEST.because("A dual allocation takes no RESERVATION-TOKEN, reserving EVEN-PORT or REQUESTED-ADDRESS-FAMILY"), k, |_| {});
        }
        let lifetime_req = match msg.u32_attr(AttrType::LIFETIME) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed LIFETIME"), k, |_| {}),
        };

        // One shared relay socket per thread cannot give port pairs (coturn: 508).
        if relays.multiplexed() && (even.is_some() || token.is_some()) {
            return self.error(out, reply, ErrorCode::INSUFFICIENT_CAPACITY.because("EVEN-PORT and RESERVATION-TOKEN are not available on this server"), k, |_| {});
        }
        // coturn (>= 4.16) refuses dual allocations behind `--external-ip`: one
        // public address cannot stand for relays of two families.
        if dual && self.cfg.external_ip {
            return self.error(out, reply, ErrorCode::INSUFFICIENT_CAPACITY.because("Dual allocations are not available on this server"), k, |_| {});
        }
        let family = if dual {
            Family::V4
        } else {
            requested_family.unwrap_or(match self.cfg.default_family {
                AddressFamilyDefault::Ipv4 => Family::V4,
                AddressFamilyDefault::Ipv6 => Family::V6,
                AddressFamilyDefault::Keep => Family::of(client.ip()),
            })
        };
        // A dual allocation succeeds with whichever family can be had; only a
        // single-family request fails outright when its family is missing.
        if token.is_none() && !dual && !relays.supports(family) {
            return self.error(out, reply, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED.because("Relay address family not supported"), k, |_| {});
        }
        let port = match (token, even) {
            (Some(t), _) => PortRequest::Reserved(t),
            (None, Some(r)) => PortRequest::Even { reserve_next: r },
            (None, None) => PortRequest::Any,
        };
        if !self.cfg.quotas.try_acquire(&auth.realm, &auth.username, self.quota_limits(&auth.realm)) {
            tracing::info!("Allocation quota reached for user <{}>", auth.username);
            return self.error(out, reply, ErrorCode::ALLOCATION_QUOTA_REACHED.because("Allocation quota reached"), k, |_| {});
        }
        // Bandwidth: the client's BANDWIDTH held to the session limit, then
        // drawn from the server-wide budget (486 when it is spent).
        let requested_bw = msg.get(AttrType::BANDWIDTH).and_then(|v| v.get(..4)).map(|b| {
            bandwidth_attr_to_bps(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        });
        let rate = session_rate(requested_bw, self.max_bps_for(&auth.realm));
        let granted = if rate == 0 {
            0
        } else if let Some(g) = self.cfg.bps_capacity.grant(rate) {
            g
        } else {
            self.cfg.quotas.release(&auth.realm, &auth.username);
            tracing::info!("Allocation bandwidth capacity reached for user <{}>", auth.username);
            return self.error(out, reply, ErrorCode::ALLOCATION_QUOTA_REACHED.because("Bandwidth capacity reached"), k, |_| {});
        };
        let dont_fragment = msg.get(AttrType::DONT_FRAGMENT).is_some();
        let mut bind = |family: Family| -> Result<super::provider::RelayBinding, ErrorCode> {
            if !relays.supports(family) && token.is_none() {
                return Err(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED);
            }
            match relays.bind_relay(RelayRequest { family, port, dont_fragment, client, tcp }) {
                Ok(b) => Ok(b),
                Err(RelayError::FamilyNotSupported) => Err(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED),
                Err(e) => {
                    tracing::error!("{}: {e}", family.label());
                    Err(ErrorCode::INSUFFICIENT_CAPACITY)
                }
            }
        };
        let first = bind(family);
        let (binding, second, address_error) = if !dual {
            match first {
                Ok(b) => (b, None, None),
                Err(code) => {
                    self.cfg.quotas.release(&auth.realm, &auth.username);
                    self.cfg.bps_capacity.release(granted);
                    return self.error(out, reply, relay_refused(code), k, |_| {});
                }
            }
        } else {
            match (first, bind(Family::V6)) {
                (Ok(b4), Ok(b6)) => (b4, Some(b6), None),
                (Ok(b4), Err(e6)) => (b4, None, Some(AddressError { attr: error_attr, family: Family::V6, code: e6 })),
                (Err(e4), Ok(b6)) => (b6, None, Some(AddressError { attr: error_attr, family: Family::V4, code: e4 })),
                (Err(e4), Err(_)) => {
                    self.cfg.quotas.release(&auth.realm, &auth.username);
                    self.cfg.bps_capacity.release(granted);
                    return self.error(out, reply, relay_refused(e4), k, |_| {});
                }
            }
        };

        let lifetime = auth.cap_lifetime(self.grant_lifetime(lifetime_req), now);
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
            created_ms: now.ms,
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
            second: second.map(|b| SecondRelay {
                id: b.id,
                local: b.local,
                advertised: b.advertised,
                family: Family::of(b.local.ip()),
            }),
            address_error,
            tcp,
            reported_packets: 0,
            limit: (granted > 0).then(|| SessionLimit::new(granted, now.ms)),
            dropped_over_limit: (0, 0),
            report_bandwidth: requested_bw.is_some() && granted > 0,
            origin: match msg.str_attr(AttrType::ORIGIN) {
                Some(Ok(o)) => Some(o.into()),
                _ => None,
            },
            mobile: None,
        };
        tracing::info!("{}. Local relay addr: {}", alloc.family.label(), binding.local);
        if let Some(s) = &alloc.second {
            tracing::info!("{}. Local relay addr: {}", s.family.label(), s.local);
        }
        tracing::info!(
            "session {session_id:018}: new, realm=<{}>, username=<{}>, lifetime={lifetime}",
            alloc.realm,
            alloc.username
        );
        let slot = self.allocs.insert(alloc);
        self.by_client.insert((transport, client, local), slot);
        if !binding.shared {
            self.by_relay.insert(binding.id, slot);
            if let Some(b) = second {
                self.by_relay.insert(b.id, slot);
            }
        }
        self.timers.arm(expires_ms, slot);
        if mobile {
            self.issue_ticket(slot, None);
        }
        self.stats.allocations_created += 1;
        self.event_new(slot, false);
        self.allocate_success(slot, now, reply, out);
    }

    fn allocate_success(&mut self, slot: usize, now: Now, reply: Reply, out: &mut Outputs) {
        let Some(a) = self.allocs.get(slot) else { return };
        let remaining = a.expires_ms.saturating_sub(now.ms) / 1000;
        let (relay, client, token, key) = (a.relay_advertised, a.client, a.reservation_token, a.key);
        // IPv4 relay first, then IPv6, whichever of them is the primary.
        let (first, second) = match a.second {
            Some(s) if s.family == Family::V4 => (s.advertised, Some(relay)),
            Some(s) => (relay, Some(s.advertised)),
            None => (relay, None),
        };
        let address_error = a.address_error;
        let bandwidth = a.limit.filter(|_| a.report_bandwidth).map(|l| bps_to_bandwidth_attr(l.bps()));
        let ticket = self.ticket_of(slot);
        if self.cfg.verbose {
            tracing::info!(
                "session {:018}: realm <{}> user <{}>: incoming packet ALLOCATE processed, success",
                a.session_id,
                a.realm,
                a.username
            );
        }
        self.success(out, reply, key.as_ref().map(|k| &k[..]), |b| {
            b.add_xor_address(AttrType::XOR_RELAYED_ADDRESS, first);
            if let Some(second) = second {
                b.add_xor_address(AttrType::XOR_RELAYED_ADDRESS, second);
            }
            if let Some(e) = address_error {
                b.add_raw(e.attr, &address_error_value(e.family, e.code));
            }
            b.add_xor_address(AttrType::XOR_MAPPED_ADDRESS, client);
            b.add_u32(AttrType::LIFETIME, remaining as u32);
            if let Some(t) = token {
                b.add_u64(AttrType::RESERVATION_TOKEN, t);
            }
            if let Some(bw) = bandwidth {
                b.add_u32(AttrType::BANDWIDTH, bw);
            }
            if let Some(t) = &ticket {
                b.add_raw(AttrType::MOBILITY_TICKET, t.as_bytes());
            }
        });
    }

    pub(crate) fn refresh(&mut self, now: Now, msg: &Message, reply: Reply, relays: &mut dyn RelayProvider, out: &mut Outputs) {
        if msg.get(AttrType::MOBILITY_TICKET).is_some() {
            return self.mobile_refresh(now, msg, reply, relays, out);
        }
        let Some(auth) = self.authenticate(now, msg, reply, out) else { return };
        let k = auth.key.as_ref().map(|k| &k[..]);
        let Dest::Client { transport, local, to: client } = reply.dest else { return };
        let Some(&slot) = self.by_client.get(&(transport, client, local)) else {
            return self.error(out, reply, ErrorCode::ALLOCATION_MISMATCH.because("No allocation on this 5-tuple"), k, |_| {});
        };
        if !self.same_user(slot, &auth.username) || !self.same_origin(slot, msg) {
            return self.error(out, reply, ErrorCode::WRONG_CREDENTIALS.because("Wrong credentials: the allocation belongs to another user or origin"), k, |_| {});
        }
        let requested = match msg.u32_attr(AttrType::LIFETIME) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(_)) => return self.error(out, reply, ErrorCode::BAD_REQUEST.because("Malformed LIFETIME"), k, |_| {}),
        };
        if let Some(Ok(f)) = msg.address_family(AttrType::REQUESTED_ADDRESS_FAMILY) {
            let fam = if f == 1 { Family::V4 } else { Family::V6 };
            // A dual allocation matches either family, also when its second
            // half could not be allocated: the client refreshes what it asked
            // for (turnutils_uclient -Z names the additional family, and
            // coturn, which reports a placeholder second relay, accepts it).
            let mismatch = |a: &super::allocation::Allocation| {
                a.relay_for(fam).is_none() && a.address_error.is_none_or(|e| e.family != fam)
            };
            if self.allocs.get(slot).is_some_and(mismatch) {
                return self.error(out, reply, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH.because("No relay of the requested address family"), k, |_| {});
            }
        }
        if requested == Some(0) {
            self.success(out, reply, k, |b| {
                b.add_u32(AttrType::LIFETIME, 0);
            });
            self.remove_allocation(slot, relays, "allocation deleted by client (refresh with zero lifetime)");
            return;
        }
        let lifetime = auth.cap_lifetime(self.grant_lifetime(requested), now);
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
        self.event_new(slot, true);
        self.success(out, reply, k, |b| {
            b.add_u32(AttrType::LIFETIME, lifetime);
        });
    }

    /// `--check-origin-consistency`: a request on an allocation carries the
    /// ORIGIN its Allocate had, or none when that had none (441 otherwise, as
    /// coturn). Always true without the option.
    pub(crate) fn same_origin(&self, slot: usize, msg: &Message) -> bool {
        if !self.cfg.check_origin_consistency {
            return true;
        }
        let Some(a) = self.allocs.get(slot) else { return false };
        let origin = match msg.str_attr(AttrType::ORIGIN) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(_)) => return false,
        };
        if origin == a.origin.as_deref() {
            return true;
        }
        tracing::info!(
            "session {:018}: the origin attribute does not match the initial session origin value",
            a.session_id
        );
        false
    }

    /// Requests on an allocation must come from the user that made it (441),
    /// or, on an oAuth allocation, name the kid of the last token verified on
    /// its 5-tuple (the allocation keeps its first kid for quotas and logs).
    pub(crate) fn same_user(&self, slot: usize, username: &str) -> bool {
        match self.allocs.get(slot) {
            Some(a) => {
                a.key.is_none()
                    || a.username == username
                    || self.token_sessions.kid(&(a.transport, a.client, a.local)) == Some(username)
            }
            None => false,
        }
    }
}

/// ADDRESS-ERROR-CODE value (RFC 8656 18.11): family, reserved, then the
/// error class and number and reason as in ERROR-CODE. Tells a dual-allocation
/// client which family it did not get and why.
fn address_error_value(family: Family, code: ErrorCode) -> Vec<u8> {
    let fam = match family {
        Family::V4 => 1,
        Family::V6 => 2,
    };
    let reason = code.reason().as_bytes();
    let mut v = Vec::with_capacity(4 + reason.len());
    v.extend_from_slice(&[fam, 0, (code.0 / 100) as u8, (code.0 % 100) as u8]);
    v.extend_from_slice(reason);
    v
}
