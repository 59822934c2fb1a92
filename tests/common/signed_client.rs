//! A TURN-over-UDP client with credentials of the test's choosing (database
//! users, TURN REST usernames), for the fleet and operations tests. Unlike
//! [`super::turn_udp::UdpTurn`] it learns the REALM from the 401, can be
//! pointed at another server between requests (`server`), so a nonce one
//! server issued can be shown to another, and relays through its allocation
//! with Send indications.

#![allow(clippy::unwrap_used)] // test helper: a failed call is the test failure

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method};

use super::turn_udp::{code, new_tid};

/// Answer code for "no answer within the time limit".
pub const NO_ANSWER: u16 = 998;

pub struct SignedClient {
    pub sock: UdpSocket,
    /// Where the next request goes; may change between requests.
    pub server: SocketAddr,
    pub user: String,
    pub pass: String,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    /// The relayed address of the last successful Allocate.
    pub relayed: Option<SocketAddr>,
}

impl SignedClient {
    /// A client on an ephemeral 127.0.0.1 port.
    pub fn new(server: SocketAddr, user: &str, pass: &str) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        SignedClient { sock, server, user: user.into(), pass: pass.into(), realm: None, nonce: None, relayed: None }
    }

    /// A request of `method`; signed once a realm and nonce are known.
    pub fn build(&self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), new_tid());
        attrs(&mut b);
        if let (Some(n), Some(r)) = (&self.nonce, &self.realm) {
            b.add_raw(AttrType::USERNAME, self.user.as_bytes());
            b.add_raw(AttrType::REALM, r.as_bytes());
            b.add_raw(AttrType::NONCE, n.as_bytes());
            b.add_integrity(&long_term_key(&self.user, r, &self.pass));
        }
        let r = b.finish();
        buf[r].to_vec()
    }

    /// Send `msg` to [`Self::server`], retransmitting every 250 ms, until the
    /// answer with its transaction id arrives (3 s at most). Remembers the
    /// NONCE and REALM an answer carries.
    pub fn transact(&mut self, msg: &[u8]) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = vec![0u8; 2048];
        while Instant::now() < deadline {
            self.sock.send_to(msg, self.server).ok()?;
            let resend = (Instant::now() + Duration::from_millis(250)).min(deadline);
            loop {
                let left = resend.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock.set_read_timeout(Some(left)).unwrap();
                let Ok((n, from)) = self.sock.recv_from(&mut buf) else { break };
                let a = &buf[..n];
                if from != self.server || n < 20 || a[8..20] != msg[8..20] {
                    continue;
                }
                if let Ok(m) = Message::parse(a) {
                    if let Some(Ok(v)) = m.str_attr(AttrType::NONCE) {
                        self.nonce = Some(v.to_string());
                    }
                    if let Some(Ok(v)) = m.str_attr(AttrType::REALM) {
                        self.realm = Some(v.to_string());
                    }
                }
                return Some(a.to_vec());
            }
        }
        None
    }

    /// One request as built now (signed or not): its answer code.
    pub fn once(&mut self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> u16 {
        let m = self.build(method, attrs);
        self.transact(&m).map_or(NO_ANSWER, |a| self.note(&a))
    }

    /// A request, answered once more with the new nonce after a 401/438.
    pub fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageBuilder)) -> u16 {
        let c = self.once(method, &attrs);
        if c == 401 || c == 438 {
            return self.once(method, &attrs);
        }
        c
    }

    fn note(&mut self, a: &[u8]) -> u16 {
        let c = code(a);
        if c == 0 {
            if let Ok(m) = Message::parse(a) {
                if let Some(Ok(r)) = m.xor_address(AttrType::XOR_RELAYED_ADDRESS) {
                    self.relayed = Some(r);
                }
            }
        }
        c
    }

    /// An unsigned Allocate: the 401 that brings REALM and NONCE.
    pub fn challenge(&mut self) -> u16 {
        self.nonce = None;
        self.once(Method::ALLOCATE, udp_transport)
    }

    /// Allocate signed with the nonce in hand, without retrying.
    pub fn allocate_once(&mut self) -> u16 {
        self.once(Method::ALLOCATE, udp_transport)
    }

    /// Allocate (challenged first when no nonce is known).
    pub fn allocate(&mut self) -> u16 {
        self.request(Method::ALLOCATE, udp_transport)
    }

    pub fn refresh(&mut self, lifetime: u32) -> u16 {
        self.request(Method::REFRESH, |b| {
            b.add_u32(AttrType::LIFETIME, lifetime);
        })
    }

    pub fn permission(&mut self, peer: SocketAddr) -> u16 {
        self.request(Method::CREATE_PERMISSION, |b| {
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
    }

    /// A Send indication with `tag` to `peer` (an echo peer), until a Data
    /// indication brings `tag` back; false after ten tries of 300 ms.
    pub fn relay_echo(&mut self, peer: SocketAddr, tag: &[u8]) -> bool {
        let mut buf = Vec::new();
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), new_tid());
        b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        b.add_raw(AttrType::DATA, tag);
        let r = b.finish();
        let ind = buf[r].to_vec();
        let mut rb = vec![0u8; 2048];
        for _ in 0..10 {
            if self.sock.send_to(&ind, self.server).is_err() {
                return false;
            }
            let until = Instant::now() + Duration::from_millis(300);
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock.set_read_timeout(Some(left)).unwrap();
                let Ok((n, _)) = self.sock.recv_from(&mut rb) else { break };
                if let Ok(m) = Message::parse(&rb[..n]) {
                    if m.method() == Method::DATA && m.get(AttrType::DATA) == Some(tag) {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// REQUESTED-TRANSPORT UDP.
pub fn udp_transport(b: &mut MessageBuilder) {
    b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
}

/// True once `pid` has exited (gone, or a zombie its parent has not reaped).
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rfind(')').and_then(|i| s[i + 1..].split_whitespace().next()).is_some_and(|st| st == "Z" || st == "X"),
    }
}

/// Wait up to `limit` for `cond`, polling every 100 ms.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Send `sig` to `pid` (a server the test started).
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill with a pid of a child this test spawned and a valid signal.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}
