//! The per-thread TURN/STUN server state machine.
//!
//! One [`Server`] lives on one relay thread and owns that thread's allocations.
//! Call order for the I/O layer:
//! 1. for each datagram from a client: [`Server::handle_client_datagram`];
//!    for each datagram from a peer on a relay socket: [`Server::handle_peer_datagram`];
//! 2. send everything queued in the [`Outputs`] and clear it;
//! 3. sleep until [`Server::next_timeout`] or the next datagram, then call
//!    [`Server::handle_timeouts`].
//!
//! Methods live in their own files: `binding.rs`, `allocate.rs`,
//! `permission.rs` (CreatePermission, ChannelBind) and `data.rs`
//! (Send/Data indications, ChannelData).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use slab::Slab;

use super::allocation::Allocation;
use super::credentials::{AuthMode, Credentials};
use super::dbauth::{HashLookup, KeyCheck};
use super::nonce::{NonceCheck, NonceGen};
use super::oauth::OauthOutcome;
use super::rfc8489::{self, Offer};
use crate::stun::integrity::MacKey;
use crate::stun::rfc8489::encode_algorithms;
use super::output::{Dest, Outputs, RelayId, Transport};
use super::peer_policy::PeerPolicy;
use super::provider::{Family, RelayProvider};
use super::quota::Quotas;
use super::redirect::AlternateServers;
use super::time::Now;
use super::timers::Timers;
use crate::config::AddressFamilyDefault;
use crate::stun::{AttrType, ChannelData, Class, ErrorCode, Message, MessageBuilder, MessageType, Method, ParseError, TransactionId};

/// Settings of the core, shared read-only by every relay thread.
#[derive(Clone)]
pub struct CoreConfig {
    pub credentials: Credentials,
    pub nonce: NonceGen,
    pub peers: PeerPolicy,
    /// `--max-allocate-lifetime` (3600).
    pub max_allocate_lifetime: u32,
    /// `--permission-lifetime` (300).
    pub permission_lifetime: u32,
    /// `--channel-lifetime` (600).
    pub channel_lifetime: u32,
    /// `--fingerprint`: FINGERPRINT on every answer.
    pub fingerprint: bool,
    /// SOFTWARE value, when `--software-attribute`.
    pub software: Option<String>,
    /// `--stun-backward-compatibility`: MAPPED-ADDRESS in Binding answers.
    pub stun_backward_compatibility: bool,
    /// `--rfc3489-compatibility`: answer cookie-less Binding requests.
    pub rfc3489_compatibility: bool,
    /// Accept channel numbers 0x4000-0x7FFF (RFC 5766); false: 0x4000-0x4FFF.
    pub rfc5766_channel_numbers: bool,
    pub drop_invalid_packets_log: bool,
    pub no_udp_relay: bool,
    /// `--no-tcp-relay`: RFC 6062 TCP allocations get 442.
    pub no_tcp_relay: bool,
    pub stun_only: bool,
    pub no_stun: bool,
    pub secure_stun: bool,
    pub default_family: AddressFamilyDefault,
    /// `-v`: per-request log lines.
    pub verbose: bool,
    /// `--log-binding`: with `-v`, Binding requests get a log line too (they
    /// are the bulk of a busy server's requests, so coturn leaves them out).
    pub log_binding: bool,
    /// `--include-reason-string`: error answers carry the detailed reason.
    pub include_reason_string: bool,
    /// `--user-quota` / `--total-quota`, shared by all threads.
    pub quotas: Arc<Quotas>,
    /// `--multiplex-peer-max-peers`: peer endpoints one allocation may hold on a
    /// shared relay socket.
    pub multiplex_max_peers: usize,
    /// `--external-ip` is set: dual allocations get 508 as in coturn.
    pub external_ip: bool,
    /// RFC 5780 (`--rfc5780` with two listening IPs of a family): each
    /// listener address mapped to its OTHER-ADDRESS (the next listening IP of
    /// the family, on the other port of the primary/alternate pair). `None`:
    /// RFC 5780 is off and CHANGE-REQUEST gets 420. A listener missing from
    /// the map (an aux server) answers plain Binding.
    pub rfc5780: Option<HashMap<SocketAddr, SocketAddr>>,
    /// Where to send Allocate requests instead (300 Try Alternate).
    pub alternates: AlternateServers,
    /// A user database is configured: unknown users and realm secrets are
    /// asked for (see `dbauth`).
    pub userdb: bool,
    /// The database's dynamic state (peer ranges, origins, realm options).
    pub dynamic: Option<Arc<super::dynamic::SharedSnapshot>>,
    /// Queue allocation life-cycle reports (`--redis-statsdb`).
    pub allocation_events: bool,
    /// `--max-bps`: default bytes per second of a session, each direction
    /// (0: unlimited; a realm's `max-bps` option overrides it).
    pub max_bps: u64,
    /// `--bps-capacity`: the server-wide budget sessions draw from.
    pub bps_capacity: Arc<super::bandwidth::BpsCapacity>,
    /// `--unauthorized-ratelimit`: the shared 401 limiter (UDP only).
    pub unauth_limiter: Option<Arc<super::ratelimit::UnauthLimiter>>,
    /// `--check-origin-consistency`: every request of a session carries the
    /// ORIGIN its Allocate had (441 otherwise).
    pub check_origin_consistency: bool,
    /// `--server-relay`: no permission needed to relay from a peer (the
    /// server talks to its own back ends; non-standard and dangerous).
    pub server_relay: bool,
    /// Count finished sessions' traffic per user as well as per realm
    /// (`--prometheus-username-labels`; REST usernames make it unbounded).
    pub traffic_by_user: bool,
    /// Drain mode (SIGUSR1, CLI `drain`): new Allocates are refused (403),
    /// existing sessions carry on. Shared by every thread and kept across
    /// reloads.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Where each thread's session counter starts (session ids are the
    /// thread's index x 10^15 plus the counter). The daemon picks a random
    /// start below 2^40 per process, so servers of a fleet that share one
    /// Redis stats DB do not publish two allocations under one key; 0 in
    /// tests and tools, as coturn.
    pub session_id_start: u64,
    /// `--mobility` (RFC 8016): MOBILITY-TICKET is honoured (405 otherwise).
    pub mobility: bool,
    /// Seals the mobility tickets; one per process, kept across reloads so
    /// tickets stay valid.
    pub ticket_key: Arc<super::mobility::TicketKey>,
    /// `--rfc8489-auth` (ours): challenges carry the RFC 8489 nonce cookie and
    /// PASSWORD-ALGORITHMS (SHA-256, MD5), so RFC 8489 clients can use
    /// SHA-256 keys. MESSAGE-INTEGRITY-SHA256 and USERHASH are accepted either way.
    pub rfc8489: bool,
    /// `--oauth` (RFC 7635): tokens accepted, THIRD-PARTY-AUTHORIZATION in 401s.
    pub oauth: bool,
    /// `--server-name` (default: the realm): the token's associated data and
    /// the THIRD-PARTY-AUTHORIZATION value.
    pub oauth_server_name: String,
}

impl CoreConfig {
    /// A configuration for tests and tools: no auth, coturn's lifetimes.
    pub fn new(credentials: Credentials, nonce: NonceGen) -> Self {
        CoreConfig {
            credentials,
            nonce,
            peers: PeerPolicy::default(),
            max_allocate_lifetime: 3600,
            permission_lifetime: 300,
            channel_lifetime: 600,
            fingerprint: false,
            software: None,
            stun_backward_compatibility: false,
            rfc3489_compatibility: false,
            rfc5766_channel_numbers: true,
            drop_invalid_packets_log: false,
            no_udp_relay: false,
            no_tcp_relay: false,
            stun_only: false,
            no_stun: false,
            secure_stun: false,
            default_family: AddressFamilyDefault::Ipv4,
            verbose: false,
            log_binding: false,
            include_reason_string: false,
            quotas: Arc::new(Quotas::default()),
            multiplex_max_peers: 256,
            external_ip: false,
            rfc5780: None,
            alternates: AlternateServers::default(),
            userdb: false,
            dynamic: None,
            allocation_events: false,
            max_bps: 0,
            bps_capacity: Arc::new(super::bandwidth::BpsCapacity::default()),
            unauth_limiter: None,
            check_origin_consistency: false,
            server_relay: false,
            traffic_by_user: false,
            draining: Arc::default(),
            session_id_start: 0,
            mobility: false,
            ticket_key: Arc::default(),
            rfc8489: false,
            oauth: false,
            oauth_server_name: String::new(),
        }
    }
}

/// Default allocation lifetime and the floor for requested ones (coturn).
pub const DEFAULT_LIFETIME: u32 = 600;

/// Who signed a request that passed authentication.
#[derive(Debug, Clone)]
pub(crate) struct AuthInfo {
    pub username: String,
    pub realm: String,
    pub key: Option<MacKey>,
    /// Unix time the credentials end (an oAuth token's lifetime): caps the
    /// allocation lifetime. `None`: no limit.
    pub expires_unix: Option<u64>,
}

impl AuthInfo {
    /// `lifetime` capped by the credentials' end (at least 1 s while valid).
    pub(crate) fn cap_lifetime(&self, lifetime: u32, now: Now) -> u32 {
        match self.expires_unix {
            Some(e) => lifetime.min(u32::try_from(e.saturating_sub(now.unix)).unwrap_or(u32::MAX).max(1)),
            None => lifetime,
        }
    }
}

/// How to answer one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply {
    pub dest: Dest,
    pub method: Method,
    pub tid: TransactionId,
    pub fingerprint: bool,
    /// The request carried MESSAGE-INTEGRITY-SHA256: sign the answer with it
    /// too (RFC 8489 9.2.4), else with MESSAGE-INTEGRITY.
    pub sha256: bool,
}

/// Counters of one thread, aggregated by the I/O layer for stats.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerStats {
    pub allocations_created: u64,
    pub allocations_deleted: u64,
    pub dropped_invalid: u64,
    pub unauthorized: u64,
    /// 401s not sent because of `--unauthorized-ratelimit`.
    pub unauthorized_dropped: u64,
    /// Relayed datagrams dropped for going over a session's `max-bps`.
    pub dropped_over_bps: u64,
    /// Authentication failures by reason (see [`AuthFailure`]).
    pub auth_failures: [u64; AuthFailure::ALL.len()],
    /// Binding requests answered with success / with an error.
    pub binding_requests: u64,
    pub binding_responses: u64,
    pub binding_errors: u64,
    /// Allocates refused because the server is draining.
    pub refused_draining: u64,
    /// Datagrams (or framed stream messages) from clients and peers handed
    /// to the core.
    pub packets_processed: u64,
    /// Of those, the ones neither answered nor relayed (junk, no allocation,
    /// permission or channel, over `max-bps`, a suppressed 401, an ignored
    /// indication or answer).
    pub packets_dropped: u64,
}

/// Why a signed request was not accepted (a plain 401 challenge to a request
/// without MESSAGE-INTEGRITY is not a failure: it is how every client starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// USERNAME, REALM or NONCE missing from a signed request (400).
    MissingAttributes,
    /// The NONCE is expired or not ours (438).
    StaleNonce,
    /// No such user (or a REALM the user is not in).
    UnknownUser,
    /// The user exists but MESSAGE-INTEGRITY does not verify.
    WrongIntegrity,
    /// A TURN REST API username whose timestamp has passed.
    Expired,
    /// The user database failed or timed out (500).
    Database,
    /// RFC 8489 PASSWORD-ALGORITHM(S) missing, altered or not offered (400).
    PasswordAlgorithm,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 7] = [
        AuthFailure::MissingAttributes,
        AuthFailure::StaleNonce,
        AuthFailure::UnknownUser,
        AuthFailure::WrongIntegrity,
        AuthFailure::Expired,
        AuthFailure::Database,
        AuthFailure::PasswordAlgorithm,
    ];

    /// The `reason` label of the metric.
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::MissingAttributes => "missing_attributes",
            AuthFailure::StaleNonce => "stale_nonce",
            AuthFailure::UnknownUser => "unknown_user",
            AuthFailure::WrongIntegrity => "wrong_integrity",
            AuthFailure::Expired => "expired",
            AuthFailure::Database => "database_error",
            AuthFailure::PasswordAlgorithm => "password_algorithm",
        }
    }
}

impl ServerStats {
    pub(crate) fn auth_failed(&mut self, why: AuthFailure) {
        self.auth_failures[why as usize] += 1;
    }
}

/// What a packet may leave behind: transmits and database lookups.
#[inline]
fn out_marks(out: &Outputs) -> (usize, usize) {
    (out.transmits.len(), out.credential_queries.len())
}

pub struct Server {
    pub(crate) cfg: Arc<CoreConfig>,
    pub(crate) thread_index: u32,
    pub(crate) next_session: u64,
    pub(crate) allocs: Slab<Allocation>,
    /// (transport, client, listener address) → allocation slot.
    pub(crate) by_client: HashMap<(Transport, SocketAddr, SocketAddr), usize>,
    /// relay socket → allocation slot (per-allocation relay sockets).
    pub(crate) by_relay: HashMap<RelayId, usize>,
    /// (shared relay, exact peer address) → allocation slot (`--multiplex-peer`).
    pub(crate) by_peer: HashMap<(RelayId, SocketAddr), usize>,
    /// (shared relay, permitted peer IP) → slots holding a permission for it, so
    /// a peer's first datagram (an ICE check) finds its allocation.
    pub(crate) perm_owners: HashMap<(RelayId, IpAddr), Vec<usize>>,
    pub(crate) timers: Timers,
    /// Round-robin position in the alternate-server list (per thread, as coturn).
    pub(crate) alt_counter: usize,
    /// Database answers recently provided (see `dbauth`).
    pub(crate) db_answers: super::dbauth::AnswerCache,
    /// oAuth token expiries per 5-tuple (see `oauth`).
    pub(crate) token_sessions: super::oauth::TokenSessions,
    /// RFC 6062 TCP relay connections.
    pub(crate) tcp: super::tcp_relay::TcpRelays,
    /// Allocation reports waiting for the I/O layer (only with `allocation_events`).
    pub(crate) events: Vec<super::events::AllocEvent>,
    /// Traffic of sessions that ended, by realm (and user), for the metrics.
    pub(crate) finished_traffic: HashMap<super::admin::TrafficKey, super::admin::Traffic>,
    /// RFC 8016 tickets and moves in progress.
    pub(crate) mobility: super::mobility::Mobility,
    pub stats: ServerStats,
}

impl Server {
    pub fn new(cfg: Arc<CoreConfig>, thread_index: u32) -> Self {
        let next_session = cfg.session_id_start;
        Server {
            cfg,
            thread_index,
            next_session,
            allocs: Slab::new(),
            by_client: HashMap::new(),
            by_relay: HashMap::new(),
            by_peer: HashMap::new(),
            perm_owners: HashMap::new(),
            timers: Timers::default(),
            alt_counter: 0,
            db_answers: Default::default(),
            token_sessions: Default::default(),
            tcp: Default::default(),
            events: Vec::new(),
            finished_traffic: HashMap::new(),
            mobility: Default::default(),
            stats: ServerStats::default(),
        }
    }

    pub fn thread_index(&self) -> u32 {
        self.thread_index
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    pub fn allocation_count(&self) -> usize {
        self.allocs.len()
    }

    /// The allocation of a UDP 5-tuple, if any (for tests and admin views).
    pub fn allocation(&self, client: SocketAddr, local: SocketAddr) -> Option<&Allocation> {
        self.allocation_on(Transport::Udp, client, local)
    }

    /// The allocation of a 5-tuple on any transport.
    pub fn allocation_on(&self, transport: Transport, client: SocketAddr, local: SocketAddr) -> Option<&Allocation> {
        self.by_client.get(&(transport, client, local)).and_then(|&s| self.allocs.get(s))
    }

    /// A stream client's connection closed: its allocation goes with it
    /// (RFC 8656: the allocation lives as long as the control connection).
    pub fn client_closed(&mut self, transport: Transport, local: SocketAddr, client: SocketAddr, relays: &mut dyn RelayProvider) {
        if self.mobile_closed(transport, local, client) {
            return;
        }
        if let Some(&slot) = self.by_client.get(&(transport, client, local)) {
            self.remove_allocation(slot, relays, "TCP connection closed by client");
        }
    }

    pub fn allocations(&self) -> impl Iterator<Item = &Allocation> {
        self.allocs.iter().map(|(_, a)| a)
    }

    /// A datagram (or, on a stream, one framed message) from a client arrived
    /// over `transport` on listener address `local`.
    // The entry point takes a datagram's whole context; bundling it into a
    // struct would only add a construction per packet on the hot path.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_client_datagram(
        &mut self,
        now: Now,
        transport: Transport,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
        relays: &mut dyn RelayProvider,
        out: &mut Outputs,
    ) {
        let before = out_marks(out);
        self.client_datagram(now, transport, local, from, data, relays, out);
        self.count_packet(before, out);
    }

    /// Count one packet for `turn_packet_processed`/`turn_packet_dropped`:
    /// dropped when it left nothing to send and no database lookup behind.
    /// Two length reads per packet, on counters this thread owns.
    #[inline]
    fn count_packet(&mut self, before: (usize, usize), out: &Outputs) {
        self.stats.packets_processed += 1;
        if out_marks(out) == before {
            self.stats.packets_dropped += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn client_datagram(
        &mut self,
        now: Now,
        transport: Transport,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
        relays: &mut dyn RelayProvider,
        out: &mut Outputs,
    ) {
        self.complete_move(transport, local, from);
        if ChannelData::is_channel_data(data) {
            self.client_channel_data(now, transport, local, from, data, out);
            return;
        }
        let msg = match Message::parse(data) {
            Ok(m) => m,
            Err(ParseError::NoCookie) if self.cfg.rfc3489_compatibility => {
                self.classic_binding(transport, local, from, data, out);
                return;
            }
            Err(e) => {
                self.drop_invalid(from, &e.to_string());
                return;
            }
        };
        // A FINGERPRINT that does not match means the datagram is not what it
        // claims to be: drop it without an answer (RFC 5389 7.3).
        if msg.check_fingerprint() == Some(false) {
            self.drop_invalid(from, "bad FINGERPRINT");
            return;
        }
        let reply = Reply {
            dest: Dest::Client { transport, local, to: from },
            method: msg.method(),
            tid: msg.transaction_id(),
            fingerprint: self.cfg.fingerprint || msg.get(AttrType::FINGERPRINT).is_some(),
            sha256: msg.get(AttrType::MESSAGE_INTEGRITY_SHA256).is_some(),
        };
        match msg.class() {
            Class::Request => {
                let unknown = msg.unknown_comprehension_required();
                if !unknown.is_empty() {
                    self.error(out, reply, ErrorCode::UNKNOWN_ATTRIBUTE.because("Unknown comprehension-required attribute"), None, |b| {
                        b.add_unknown_attributes(&unknown);
                    });
                    return;
                }
                match msg.method() {
                    Method::BINDING => self.binding(now, &msg, reply, out),
                    _ if self.cfg.stun_only => {}
                    Method::ALLOCATE => self.allocate(now, &msg, reply, relays, out),
                    Method::REFRESH => self.refresh(now, &msg, reply, relays, out),
                    Method::CREATE_PERMISSION => self.create_permission(now, &msg, reply, out),
                    Method::CHANNEL_BIND => self.channel_bind(now, &msg, reply, out),
                    Method::CONNECT => self.connect(now, &msg, reply, out),
                    Method::CONNECTION_BIND => self.connection_bind(now, &msg, reply, out),
                    _ => self.error(out, reply, ErrorCode::BAD_REQUEST.because("Unknown or unsupported method"), None, |_| {}),
                }
            }
            Class::Indication => {
                if msg.method() == Method::SEND && !self.cfg.stun_only {
                    self.send_indication(now, transport, local, from, &msg, out);
                }
            }
            // Answers sent to a server are not ours to handle.
            Class::Success | Class::Error => {}
        }
    }

    /// A datagram from `from` arrived on relay socket `relay`.
    pub fn handle_peer_datagram(&mut self, now: Now, relay: RelayId, from: SocketAddr, data: &[u8], out: &mut Outputs) {
        let before = out_marks(out);
        self.peer_data(now, relay, from, data, out);
        self.count_packet(before, out);
    }

    /// The earliest time [`Server::handle_timeouts`] has work to do.
    pub fn next_timeout(&self) -> Option<u64> {
        match (self.timers.next(), self.tcp_next_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expire allocations, permissions and channels that are due.
    pub fn handle_timeouts(&mut self, now: Now, relays: &mut dyn RelayProvider) {
        while let Some((deadline, slot)) = self.timers.pop_due(now.ms) {
            let Some(a) = self.allocs.get_mut(slot) else { continue };
            if a.timer_at != deadline {
                continue; // superseded entry
            }
            if a.expires_ms <= now.ms {
                self.remove_allocation(slot, relays, "allocation timeout");
                continue;
            }
            let mut expired = Vec::new();
            a.sweep(now.ms, &mut expired);
            let next = a.next_deadline();
            a.timer_at = next;
            self.timers.arm(next, slot);
            if a.shared && !expired.is_empty() {
                self.forget_peer_ips(slot, &expired);
            }
        }
    }

    /// Remove every allocation (server shutdown).
    pub fn shutdown(&mut self, relays: &mut dyn RelayProvider) {
        let slots: Vec<usize> = self.allocs.iter().map(|(s, _)| s).collect();
        for s in slots {
            self.remove_allocation(s, relays, "server shutdown");
        }
    }

    /// Re-arm the allocation's timer if its next deadline moved earlier.
    pub(crate) fn rearm(&mut self, slot: usize) {
        if let Some(a) = self.allocs.get_mut(slot) {
            let next = a.next_deadline();
            if next != a.timer_at {
                a.timer_at = next;
                self.timers.arm(next, slot);
            }
        }
    }

    pub(crate) fn remove_allocation(&mut self, slot: usize, relays: &mut dyn RelayProvider, reason: &str) {
        if !self.allocs.contains(slot) {
            return;
        }
        if self.allocs[slot].shared {
            let ips: Vec<IpAddr> = self.allocs[slot].permissions.iter().map(|&(ip, _)| ip).collect();
            self.forget_peer_ips(slot, &ips);
        }
        if self.allocs[slot].tcp {
            self.close_tcp_of(slot);
        }
        let a = self.allocs.remove(slot);
        // Its timer entry stays in the heap until due (up to the lifetime):
        // drop stale entries once they outnumber the live allocations.
        let allocs = &self.allocs;
        self.timers.compact(|d, s| allocs.get(s).is_some_and(|x| x.timer_at == d), allocs.len());
        self.event_deleted(&a);
        self.by_client.remove(&(a.transport, a.client, a.local));
        self.forget_mobile(&a);
        if !a.shared {
            self.by_relay.remove(&a.relay);
            if let Some(s) = a.second {
                self.by_relay.remove(&s.id);
            }
        }
        relays.release_relay(a.relay);
        if let Some(s) = a.second {
            relays.release_relay(s.id);
        }
        self.cfg.quotas.release(&a.realm, &a.username);
        if let Some(l) = &a.limit {
            self.cfg.bps_capacity.release(l.bps());
        }
        self.stats.allocations_deleted += 1;
        let key = self.traffic_key(&a.realm, &a.username);
        self.finished_traffic.entry(key).or_default().add(a.client_usage, a.peer_usage);
        let sid = a.session_id;
        let (c, p) = (a.client_usage, a.peer_usage);
        tracing::info!(
            "session {sid:018}: usage: realm=<{}>, username=<{}>, rp={}, rb={}, sp={}, sb={}",
            a.realm, a.username, c.rp, c.rb, c.sp, c.sb
        );
        tracing::info!(
            "session {sid:018}: peer usage: realm=<{}>, username=<{}>, rp={}, rb={}, sp={}, sb={}",
            a.realm, a.username, p.rp, p.rb, p.sp, p.sb
        );
        tracing::info!(
            "session {sid:018}: closed (2nd stage), user <{}> realm <{}> origin <{}>, local {}, remote {}, reason: {reason}",
            a.username, a.realm, a.origin.as_deref().unwrap_or(""), a.local, a.client
        );
        tracing::info!("session {sid:018}: delete: realm=<{}>, username=<{}>", a.realm, a.username);
    }

    /// Note a new permission IP of a shared-relay allocation in the first-contact index.
    pub(crate) fn note_peer_ip(&mut self, slot: usize, ip: IpAddr) {
        let Some(a) = self.allocs.get(slot) else { return };
        // The family of the address as sent picks the relay (canonical forms
        // may turn IPv4-compatible IPv6 addresses into IPv4).
        let family = Family::of(ip);
        let ip = super::peer_policy::canonical(ip);
        if a.shared {
            let Some(relay) = a.relay_for(family) else { return };
            let owners = self.perm_owners.entry((relay, ip)).or_default();
            if !owners.contains(&slot) {
                owners.push(slot);
            }
        }
    }

    /// Permissions for `ips` ended: drop them from the first-contact index and
    /// drop the allocation's registered endpoints on those IPs.
    fn forget_peer_ips(&mut self, slot: usize, ips: &[IpAddr]) {
        let Some(a) = self.allocs.get_mut(slot) else { return };
        // Canonical IPs do not tell which relay noted them: look under both.
        let relays = [Some(a.relay), a.second.map(|s| s.id)];
        for &ip in ips {
            for relay in relays.into_iter().flatten() {
                if let Some(owners) = self.perm_owners.get_mut(&(relay, ip)) {
                    owners.retain(|&s| s != slot);
                    if owners.is_empty() {
                        self.perm_owners.remove(&(relay, ip));
                    }
                }
            }
        }
        let by_peer = &mut self.by_peer;
        let (fam, relay, second) = (a.family, a.relay, a.second);
        let a_relay = |p: &SocketAddr| {
            let f = Family::of(p.ip());
            if f == fam {
                Some(relay)
            } else {
                second.filter(|s| s.family == f).map(|s| s.id)
            }
        };
        a.peer_addrs.retain(|p| {
            let gone = ips.contains(&super::peer_policy::canonical(p.ip()));
            if gone {
                if let Some(relay) = a_relay(p) {
                    by_peer.remove(&(relay, *p));
                }
            }
            !gone
        });
    }

    /// On a shared relay, make datagrams from `peer` reach allocation `slot`.
    /// False when another allocation of this thread holds that endpoint or this
    /// one is at `--multiplex-peer-max-peers`. Always true for own relays.
    pub(crate) fn register_peer(&mut self, slot: usize, peer: SocketAddr) -> bool {
        let max = self.cfg.multiplex_max_peers;
        let Some(a) = self.allocs.get_mut(slot) else { return false };
        if !a.shared {
            return true;
        }
        let Some(relay) = a.relay_for_peer(peer) else { return false };
        match self.by_peer.get(&(relay, peer)) {
            Some(&s) => s == slot,
            None if a.peer_addrs.len() >= max => false,
            None => {
                self.by_peer.insert((relay, peer), slot);
                a.peer_addrs.push(peer);
                true
            }
        }
    }

    pub(crate) fn new_session_id(&mut self) -> u64 {
        self.next_session += 1;
        (u64::from(self.thread_index) + 1) * 1_000_000_000_000_000 + self.next_session
    }

    fn drop_invalid(&mut self, from: SocketAddr, why: &str) {
        self.stats.dropped_invalid += 1;
        if self.cfg.drop_invalid_packets_log {
            tracing::info!("dropping invalid packet from {from}: {why}");
        }
    }

    // ----- answers -----

    /// Write a success answer: `attrs`, then SOFTWARE, MESSAGE-INTEGRITY (when
    /// `key`), FINGERPRINT (when asked).
    pub(crate) fn success(&self, out: &mut Outputs, reply: Reply, key: Option<&[u8]>, attrs: impl FnOnce(&mut MessageBuilder)) {
        self.answer(out, reply, Class::Success, key, attrs);
    }

    /// Write an error answer with ERROR-CODE first.
    /// An error answer: `refusal` is an [`ErrorCode`] (standard phrase) or
    /// `code.because("...")`, whose detail is sent only with
    /// `--include-reason-string` and logged always.
    pub(crate) fn error(
        &self,
        out: &mut Outputs,
        reply: Reply,
        refusal: impl Into<super::refusal::Refusal>,
        key: Option<&[u8]>,
        attrs: impl FnOnce(&mut MessageBuilder),
    ) {
        let refusal = refusal.into();
        let code = refusal.code;
        if self.cfg.verbose {
            tracing::info!("incoming packet {} processed, error {}: {}", reply.method.name(), code.0, refusal.why);
        }
        self.answer(out, reply, Class::Error, key, |b| {
            b.add_error_code(code.0, refusal.phrase(self.cfg.include_reason_string));
            attrs(b);
        });
    }

    fn answer(&self, out: &mut Outputs, reply: Reply, class: Class, key: Option<&[u8]>, attrs: impl FnOnce(&mut MessageBuilder)) {
        let mut b = MessageBuilder::new(&mut out.buf, MessageType::new(reply.method, class), reply.tid);
        attrs(&mut b);
        if let Some(sw) = &self.cfg.software {
            b.add_raw(AttrType::SOFTWARE, sw.as_bytes());
        }
        match key {
            Some(k) if reply.sha256 => {
                b.add_integrity_sha256(k);
            }
            Some(k) => {
                b.add_integrity(k);
            }
            None => {}
        }
        if reply.fingerprint {
            b.add_fingerprint();
        }
        let range = b.finish();
        out.push(reply.dest, range);
    }

    // ----- authentication -----

    /// Check a request's long-term credentials. On failure the answer (400,
    /// 401, 438, or 500 when the user database failed) is already queued and
    /// `None` returned; `None` with nothing queued but a credential query in
    /// `out` means the request waits for the database. Creates no state.
    pub(crate) fn authenticate(&mut self, now: Now, msg: &Message, reply: Reply, out: &mut Outputs) -> Option<AuthInfo> {
        let cfg = Arc::clone(&self.cfg);
        if let AuthMode::NoAuth = cfg.credentials.mode {
            let username = match msg.str_attr(AttrType::USERNAME) {
                Some(Ok(u)) => u.to_string(),
                _ => String::new(),
            };
            return Some(AuthInfo { username, realm: cfg.credentials.realm.clone(), key: None, expires_unix: None });
        }
        let client = match reply.dest {
            Dest::Client { to, .. } => to,
            Dest::Peer { to, .. } => to,
        };
        let expected_realm = if cfg.userdb { self.realm_for(msg) } else { cfg.credentials.realm.clone() };
        if !msg.has_integrity() {
            self.challenge(now, client, ErrorCode::UNAUTHORIZED, &expected_realm, Offer::Both, reply, out);
            return None;
        }
        let fields = (msg.str_attr(AttrType::REALM), msg.str_attr(AttrType::NONCE));
        let (realm, nonce) = match fields {
            (Some(Ok(r)), Some(Ok(n))) if msg.get(AttrType::USERNAME).is_some() || msg.get(AttrType::USERHASH).is_some() => (r, n),
            _ => {
                self.stats.auth_failed(AuthFailure::MissingAttributes);
                self.error(out, reply, ErrorCode::BAD_REQUEST.because("Missing USERNAME, REALM or NONCE"), None, |_| {});
                return None;
            }
        };
        let (nonce_check, offer) = rfc8489::check_nonce(&cfg.nonce, nonce, client, now.unix);
        match nonce_check {
            NonceCheck::Valid => {}
            NonceCheck::Stale | NonceCheck::Invalid => {
                self.stats.auth_failed(AuthFailure::StaleNonce);
                self.challenge(now, client, ErrorCode::STALE_NONCE, &expected_realm, Offer::Both, reply, out);
                return None;
            }
        }
        if cfg.oauth {
            match self.oauth_authenticate(now, msg, reply, out) {
                OauthOutcome::NotOauth => {}
                OauthOutcome::Verified(info) => return Some(info),
                OauthOutcome::Pending => return None,
                OauthOutcome::Failed => {
                    self.stats.auth_failed(AuthFailure::Database);
                    tracing::error!("check_stun_auth: cannot get the oauth key: user database error");
                    self.error(out, reply, ErrorCode::SERVER_ERROR.because("Cannot get the oAuth key: user database error"), None, |_| {});
                    return None;
                }
                OauthOutcome::Refused(why) => {
                    self.stats.auth_failed(AuthFailure::UnknownUser);
                    tracing::info!("check_stun_auth: {why}");
                    self.challenge(now, client, ErrorCode::UNAUTHORIZED, &expected_realm, Offer::Both, reply, out);
                    return None;
                }
            }
        }
        let alg = match rfc8489::negotiate(msg, offer) {
            Ok(a) => a,
            Err(why) => {
                self.stats.auth_failed(AuthFailure::PasswordAlgorithm);
                tracing::info!("check_stun_auth: realm <{realm}>: {why}");
                self.error(out, reply, ErrorCode::BAD_REQUEST.because("Unsupported PASSWORD-ALGORITHM"), None, |_| {});
                return None;
            }
        };
        // USERNAME, else USERHASH resolved against the static users, then
        // the user database's.
        let username: String = match (msg.str_attr(AttrType::USERNAME), msg.get(AttrType::USERHASH)) {
            (Some(Ok(u)), _) => u.to_string(),
            (None, Some(hash)) => match cfg.credentials.user_by_hash(hash, realm) {
                Some(u) => u,
                None => match self.db_user_by_hash(now, hash, realm, out) {
                    HashLookup::Found(u) => u,
                    HashLookup::Pending => return None,
                    HashLookup::Failed => {
                        self.stats.auth_failed(AuthFailure::Database);
                        tracing::error!("check_stun_auth: Cannot resolve USERHASH in realm <{realm}>: user database error");
                        self.error(out, reply, ErrorCode::SERVER_ERROR.because("Cannot resolve USERHASH: user database error"), None, |_| {});
                        return None;
                    }
                    HashLookup::Unknown => {
                        self.stats.auth_failed(AuthFailure::UnknownUser);
                        tracing::error!("check_stun_auth: USERHASH of no known user in realm <{realm}>");
                        self.challenge(now, client, ErrorCode::UNAUTHORIZED, &expected_realm, Offer::Both, reply, out);
                        return None;
                    }
                },
            },
            _ => {
                self.stats.auth_failed(AuthFailure::MissingAttributes);
                self.error(out, reply, ErrorCode::BAD_REQUEST.because("Missing USERNAME"), None, |_| {});
                return None;
            }
        };
        let username = username.as_str();
        if cfg.userdb {
            if let Some(info) = self.session_key_auth(msg, reply, username, realm) {
                return Some(info);
            }
        }
        // With a database the ORIGIN picks the realm; a REALM naming another
        // one is unknown there (the static lookup refuses it the same way).
        let check = if cfg.userdb && realm != expected_realm {
            KeyCheck::Unknown
        } else {
            self.check_keys(now, msg, username, realm, alg, out)
        };
        let mut offer = Offer::Both;
        match check {
            KeyCheck::Verified(key) => {
                return Some(AuthInfo { username: username.to_string(), realm: realm.to_string(), key: Some(key), expires_unix: None });
            }
            KeyCheck::OnlyAlgorithm(only) => {
                // RFC 8489 9.2.4: the user cannot be verified with the chosen
                // algorithm; a new challenge offers only the one it has.
                self.stats.auth_failed(AuthFailure::PasswordAlgorithm);
                tracing::info!(
                    "check_stun_auth: user <{username}> realm <{realm}>: no {} key, only {}",
                    alg.name(),
                    only.name()
                );
                offer = Offer::only(only);
            }
            KeyCheck::WrongIntegrity => {
                self.stats.auth_failed(AuthFailure::WrongIntegrity);
                tracing::info!("check_stun_auth: user <{username}> realm <{realm}>: wrong message integrity");
            }
            KeyCheck::Expired => {
                self.stats.auth_failed(AuthFailure::Expired);
                tracing::info!("check_stun_auth: user <{username}>: REST API credentials expired");
            }
            KeyCheck::Unknown => {
                self.stats.auth_failed(AuthFailure::UnknownUser);
                tracing::error!("check_stun_auth: Cannot find credentials of user <{username}>");
            }
            KeyCheck::Failed => {
                self.stats.auth_failed(AuthFailure::Database);
                tracing::error!("check_stun_auth: Cannot get credentials of user <{username}> realm <{realm}>: user database error");
                self.error(out, reply, ErrorCode::SERVER_ERROR.because("Cannot get the user's key: user database error"), None, |_| {});
                return None;
            }
            KeyCheck::Pending => return None,
        }
        self.challenge(now, client, ErrorCode::UNAUTHORIZED, &expected_realm, offer, reply, out);
        None
    }

    /// 401 or 438 with REALM and a fresh NONCE.
    /// With `--rfc8489-auth` the nonce carries the RFC 8489 cookie and proves
    /// `offer`, which PASSWORD-ALGORITHMS lists.
    #[allow(clippy::too_many_arguments)]
    fn challenge(&mut self, now: Now, client: SocketAddr, code: ErrorCode, realm: &str, offer: Offer, reply: Reply, out: &mut Outputs) {
        if code == ErrorCode::UNAUTHORIZED {
            if let (Some(limiter), Dest::Client { transport: super::output::Transport::Udp, .. }) =
                (&self.cfg.unauth_limiter, reply.dest)
            {
                if limiter.check(client.ip(), now.unix) == super::ratelimit::Verdict::Drop {
                    self.stats.unauthorized_dropped += 1;
                    return;
                }
            }
        }
        self.stats.unauthorized += 1;
        let rfc8489 = self.cfg.rfc8489;
        let server_name = self.cfg.oauth.then(|| self.cfg.oauth_server_name.clone());
        let nonce = if rfc8489 {
            rfc8489::issue_nonce(&self.cfg.nonce, client, now.unix, offer)
        } else {
            self.cfg.nonce.issue(client, now.unix)
        };
        self.error(out, reply, code, None, |b| {
            b.add_raw(AttrType::REALM, realm.as_bytes());
            b.add_raw(AttrType::NONCE, nonce.as_bytes());
            if rfc8489 {
                b.add_raw(AttrType::PASSWORD_ALGORITHMS, &encode_algorithms(offer.list()));
            }
            if let Some(name) = &server_name {
                b.add_raw(AttrType::THIRD_PARTY_AUTHORIZATION, name.as_bytes());
            }
        });
    }
}
