//! A test harness for the core: a fake relay provider, a virtual clock and a
//! client that builds and signs requests.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::core::credentials::{AuthMode, Credentials};
use crate::core::nonce::NonceGen;
use crate::core::{
    CoreConfig, Dest, Family, Transport, Now, Outputs, PortRequest, RelayBinding, RelayError, RelayId, RelayProvider, RelayRequest, Server,
};
use crate::stun::integrity::long_term_key;
use crate::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

pub const REALM: &str = "example.org";
pub const USER: &str = "alice";
pub const PASS: &str = "secret";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// Relay sockets that exist only as entries in a map.
#[derive(Default)]
pub struct FakeRelays {
    pub next_port: u16,
    pub open: BTreeMap<u32, SocketAddr>,
    pub next_id: u32,
    pub v6: bool,
    pub exhausted: bool,
    pub reservations: BTreeMap<u64, u16>,
    pub last_request: Option<RelayRequest>,
    /// Behave like `--multiplex-peer`: one shared relay socket per family.
    pub multiplex: bool,
    /// No IPv4 relay address (an IPv6-only server).
    pub no_v4: bool,
    /// IPv6 ports are exhausted (IPv4 still binds).
    pub v6_exhausted: bool,
}

/// The shared relay of a multiplexing [`FakeRelays`].
pub const SHARED_RELAY: RelayId = RelayId(9999);
/// The shared IPv6 relay of a multiplexing [`FakeRelays`] with `v6`.
pub const SHARED_RELAY6: RelayId = RelayId(9998);

impl RelayProvider for FakeRelays {
    fn bind_relay(&mut self, req: RelayRequest) -> Result<RelayBinding, RelayError> {
        self.last_request = Some(req);
        if self.exhausted || (self.v6_exhausted && req.family == Family::V6) {
            return Err(RelayError::NoPorts);
        }
        if !self.supports(req.family) {
            return Err(RelayError::FamilyNotSupported);
        }
        if self.multiplex {
            let (id, local) = match req.family {
                Family::V4 => (SHARED_RELAY, addr("10.0.0.1:3480")),
                Family::V6 => (SHARED_RELAY6, addr("[2001:db8::1]:3480")),
            };
            self.open.insert(id.0, local);
            return Ok(RelayBinding { id, local, advertised: local, reservation_token: None, shared: true });
        }
        let ip: IpAddr = match req.family {
            Family::V4 => "10.0.0.1".parse().expect("ip"),
            Family::V6 if self.v6 => "2001:db8::1".parse().expect("ip"),
            Family::V6 => return Err(RelayError::FamilyNotSupported),
        };
        if self.next_port == 0 {
            self.next_port = 50000;
        }
        let (port, token) = match req.port {
            PortRequest::Any => {
                self.next_port += 1;
                (self.next_port, None)
            }
            PortRequest::Even { reserve_next } => {
                self.next_port += 2 - self.next_port % 2;
                let p = self.next_port;
                self.next_port += 1;
                let token = reserve_next.then(|| {
                    self.reservations.insert(0xABCD_0000 + u64::from(p), p + 1);
                    0xABCD_0000 + u64::from(p)
                });
                (p, token)
            }
            PortRequest::Reserved(t) => (self.reservations.remove(&t).ok_or(RelayError::BadToken)?, None),
        };
        let local = SocketAddr::new(ip, port);
        self.next_id += 1;
        self.open.insert(self.next_id, local);
        Ok(RelayBinding { id: RelayId(self.next_id), local, advertised: local, reservation_token: token, shared: false })
    }

    fn release_relay(&mut self, id: RelayId) {
        if id != SHARED_RELAY && id != SHARED_RELAY6 {
            self.open.remove(&id.0);
        }
    }

    fn multiplexed(&self) -> bool {
        self.multiplex
    }

    fn supports(&self, family: Family) -> bool {
        (family == Family::V4 && !self.no_v4) || (family == Family::V6 && self.v6)
    }
}

/// One server thread, its fake relays and a virtual clock.
pub struct Harness {
    pub server: Server,
    pub relays: FakeRelays,
    pub now: Now,
    pub out: Outputs,
    pub local: SocketAddr,
    /// The transport test clients use (UDP unless a test changes it).
    pub transport: Transport,
}

pub fn long_term_config() -> CoreConfig {
    let mut users = std::collections::HashMap::new();
    users.insert(USER.to_string(), long_term_key(USER, REALM, PASS));
    let mut cfg = CoreConfig::new(
        Credentials::new(AuthMode::LongTerm { users }, REALM.into()),
        NonceGen::new(Some("test-secret"), 600),
    );
    cfg.peers.allow_loopback = true;
    cfg
}

impl Harness {
    pub fn new(cfg: CoreConfig) -> Self {
        Harness {
            server: Server::new(Arc::new(cfg), 0),
            relays: FakeRelays::default(),
            now: Now::new(1_000, 1_700_000_000),
            out: Outputs::default(),
            local: addr("192.0.2.1:3478"),
            transport: Transport::Udp,
        }
    }

    pub fn advance(&mut self, secs: u64) {
        self.now = self.now.plus_secs(secs);
        self.server.handle_timeouts(self.now, &mut self.relays);
    }

    /// Feed a datagram from a client; return what the server queued.
    #[allow(clippy::wrong_self_convention)] // reads as "a datagram from a client"
    pub fn from_client(&mut self, from: SocketAddr, data: &[u8]) -> Vec<(Dest, Vec<u8>)> {
        self.out.clear();
        self.server.handle_client_datagram(self.now, self.transport, self.local, from, data, &mut self.relays, &mut self.out);
        self.take()
    }

    #[allow(clippy::wrong_self_convention)]
    pub fn from_peer(&mut self, relay: RelayId, from: SocketAddr, data: &[u8]) -> Vec<(Dest, Vec<u8>)> {
        self.out.clear();
        self.server.handle_peer_datagram(self.now, relay, from, data, &mut self.out);
        self.take()
    }

    fn take(&mut self) -> Vec<(Dest, Vec<u8>)> {
        self.out.transmits.iter().map(|t| (t.dest, self.out.buf[t.range.clone()].to_vec())).collect()
    }

    /// Send a request and return the single answer to the client.
    pub fn request(&mut self, client: &mut TestClient, msg: Vec<u8>) -> Vec<u8> {
        let out = self.from_client(client.addr, &msg);
        assert_eq!(out.len(), 1, "expected exactly one answer, got {}", out.len());
        let (dest, bytes) = out.into_iter().next().expect("one answer");
        assert_eq!(dest, Dest::Client { transport: self.transport, local: self.local, to: client.addr });
        client.learn(&bytes);
        bytes
    }
}

/// A client that remembers the realm and nonce it was challenged with.
pub struct TestClient {
    pub addr: SocketAddr,
    pub user: String,
    pub pass: String,
    pub nonce: Option<String>,
    pub realm: Option<String>,
    counter: u8,
}

impl TestClient {
    pub fn new(addr_s: &str) -> Self {
        TestClient { addr: addr(addr_s), user: USER.into(), pass: PASS.into(), nonce: None, realm: None, counter: 0 }
    }

    pub fn tid(&mut self) -> TransactionId {
        self.counter = self.counter.wrapping_add(1);
        let mut t = [7u8; 12];
        t[0] = self.counter;
        t[1] = self.addr.port() as u8;
        TransactionId(t)
    }

    /// Pick up REALM/NONCE from a 401/438.
    pub fn learn(&mut self, answer: &[u8]) {
        if let Ok(m) = Message::parse(answer) {
            if let Some(Ok(n)) = m.str_attr(AttrType::NONCE) {
                self.nonce = Some(n.to_string());
            }
            if let Some(Ok(r)) = m.str_attr(AttrType::REALM) {
                self.realm = Some(r.to_string());
            }
        }
    }

    /// Build a request; `attrs` adds the method's attributes; signed when a
    /// nonce is known.
    pub fn build(&mut self, method: Method, tid: TransactionId, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid);
        attrs(&mut b);
        if let (Some(n), Some(r)) = (self.nonce.clone(), self.realm.clone()) {
            b.add_raw(AttrType::USERNAME, self.user.as_bytes());
            b.add_raw(AttrType::REALM, r.as_bytes());
            b.add_raw(AttrType::NONCE, n.as_bytes());
            let key = long_term_key(&self.user, &r, &self.pass);
            b.add_integrity(&key);
        }
        let range = b.finish();
        buf[range].to_vec()
    }

    pub fn allocate_msg(&mut self, extra: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let tid = self.tid();
        self.build(Method::ALLOCATE, tid, |b| {
            b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            extra(b);
        })
    }
}

/// Error code of an answer, or 0 for a success.
pub fn code_of(answer: &[u8]) -> u16 {
    let m = Message::parse(answer).expect("answer parses");
    match m.class() {
        Class::Success => 0,
        Class::Error => m.error_code().and_then(|r| r.ok()).map(|(c, _)| c).expect("error code"),
        c => panic!("unexpected class {c:?}"),
    }
}

/// Allocate with the 401 dance; return the relayed address and the RelayId.
pub fn allocate(h: &mut Harness, c: &mut TestClient) -> (SocketAddr, RelayId) {
    if c.nonce.is_none() {
        let m = c.allocate_msg(|_| {});
        assert_eq!(code_of(&h.request(c, m)), 401);
    }
    let m = c.allocate_msg(|_| {});
    let a = h.request(c, m);
    assert_eq!(code_of(&a), 0, "allocate failed");
    let msg = Message::parse(&a).expect("parse");
    let relayed = msg.xor_address(AttrType::XOR_RELAYED_ADDRESS).expect("relayed").expect("ok");
    let id = *h.relays.open.iter().find(|(_, &a)| a == relayed).map(|(id, _)| id).expect("relay open");
    (relayed, RelayId(id))
}
