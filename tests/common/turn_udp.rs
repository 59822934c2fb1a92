//! A TURN-over-UDP client for black-box tests (long-term credentials
//! `user`/`pass` in realm `example.org`, retransmitting like a real client),
//! plus what the robustness tests measure the server with: RSS, CPU time and
//! open descriptors from /proc, and a `sendmmsg` batch sender for floods.

#![allow(clippy::unwrap_used)] // test helper: a failed call is the test failure

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use turnserver::stun::integrity::long_term_key;
use turnserver::stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

pub const USER: &str = "user";
pub const PASS: &str = "pass";
pub const REALM: &str = "example.org";

/// Server flags for long-term credentials with [`USER`]/[`PASS`]/[`REALM`]
/// and loopback peers allowed.
pub const LT_FLAGS: [&str; 4] = ["--lt-cred-mech", "--user=user:pass", "--realm=example.org", "--allow-loopback-peers"];

/// A fresh transaction id: unique within the process, different across runs.
pub fn new_tid() -> TransactionId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u32)
        .unwrap_or(0)
        ^ std::process::id();
    let mut t = [0u8; 12];
    t[..8].copy_from_slice(&n.to_be_bytes());
    t[8..].copy_from_slice(&seed.to_be_bytes());
    TransactionId(t)
}

/// Builds a request; signed with the long-term key when `nonce` is given.
pub fn build_request(method: Method, tid: TransactionId, nonce: Option<&str>, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid);
    attrs(&mut b);
    if let Some(n) = nonce {
        b.add_raw(AttrType::USERNAME, USER.as_bytes());
        b.add_raw(AttrType::REALM, REALM.as_bytes());
        b.add_raw(AttrType::NONCE, n.as_bytes());
        b.add_integrity(&long_term_key(USER, REALM, PASS));
    }
    let r = b.finish();
    buf[r].to_vec()
}

/// REQUESTED-TRANSPORT UDP, for Allocate.
pub fn udp_transport(b: &mut MessageBuilder) {
    b.add_raw(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
}

/// 0 for a success answer, else the ERROR-CODE (999 when there is none).
pub fn code(a: &[u8]) -> u16 {
    let Ok(m) = Message::parse(a) else { return 999 };
    match m.class() {
        Class::Success => 0,
        _ => m.error_code().and_then(|r| r.ok()).map_or(999, |e| e.0),
    }
}

/// The NONCE of an answer, if any.
pub fn nonce_of(a: &[u8]) -> Option<String> {
    let m = Message::parse(a).ok()?;
    m.str_attr(AttrType::NONCE).and_then(|r| r.ok()).map(str::to_string)
}

/// One client socket talking to one server.
pub struct UdpTurn {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub nonce: Option<String>,
}

impl UdpTurn {
    /// A client on 127.0.0.1 with an ephemeral port.
    pub fn new(server: SocketAddr) -> Self {
        Self::bind(server, "127.0.0.1".parse().unwrap())
    }

    /// A client on `ip` (any 127/8 address is local on Linux).
    pub fn bind(server: SocketAddr, ip: IpAddr) -> Self {
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        UdpTurn { sock, server, nonce: None }
    }

    /// Sends `msg` and waits for the answer with its transaction id,
    /// retransmitting every `rto` until `timeout`; remembers a NONCE.
    pub fn transact_rto(&mut self, msg: &[u8], rto: Duration, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            self.sock.send_to(msg, self.server).ok()?;
            let resend = (now + rto).min(deadline);
            loop {
                let left = resend.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock.set_read_timeout(Some(left)).unwrap();
                let Ok((n, _)) = self.sock.recv_from(&mut buf) else { break };
                if n >= 20 && buf[8..20] == msg[8..20] {
                    if let Some(nc) = nonce_of(&buf[..n]) {
                        self.nonce = Some(nc);
                    }
                    return Some(buf[..n].to_vec());
                }
            }
        }
    }

    /// [`Self::transact_rto`] with a 250 ms retransmit and a 3 s limit.
    pub fn transact(&mut self, msg: &[u8]) -> Option<Vec<u8>> {
        self.transact_rto(msg, Duration::from_millis(250), Duration::from_secs(3))
    }

    /// A signed request (unsigned while no nonce is known); a 401 or 438
    /// that brings a nonce is answered once more with it.
    pub fn request(&mut self, method: Method, attrs: impl Fn(&mut MessageBuilder)) -> Option<Vec<u8>> {
        let m = build_request(method, new_tid(), self.nonce.as_deref(), &attrs);
        let a = self.transact(&m)?;
        if matches!(code(&a), 401 | 438) && nonce_of(&a).is_some() {
            let m = build_request(method, new_tid(), self.nonce.as_deref(), &attrs);
            return self.transact(&m);
        }
        Some(a)
    }

    /// Allocate (UDP): the relayed address, or the error code (998 = no answer).
    pub fn allocate(&mut self) -> Result<SocketAddr, u16> {
        let a = self.request(Method::ALLOCATE, udp_transport).ok_or(998u16)?;
        match code(&a) {
            0 => Ok(Message::parse(&a).unwrap().xor_address(AttrType::XOR_RELAYED_ADDRESS).unwrap().unwrap()),
            c => Err(c),
        }
    }

    /// Refresh with `lifetime` (0 deletes): the answer's code (998 = no answer).
    pub fn refresh(&mut self, lifetime: u32) -> u16 {
        self.request(Method::REFRESH, |b| {
            b.add_u32(AttrType::LIFETIME, lifetime);
        }).map_or(998, |a| code(&a))
    }

    /// ChannelBind: the answer's code (998 = no answer).
    pub fn bind_channel(&mut self, channel: u16, peer: SocketAddr) -> u16 {
        self.request(Method::CHANNEL_BIND, |b| {
            b.add_u32(AttrType::CHANNEL_NUMBER, u32::from(channel) << 16);
            b.add_xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .map_or(998, |a| code(&a))
    }
}

// ------------------------------------------------------------------ /proc

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of `pid` in kB.
pub fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:").unwrap_or_else(|| panic!("no VmRSS for pid {pid}"))
}

/// utime + stime of `pid` (all threads) in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: fields start after the last ')'.
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 1..].split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// Number of open descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

// ------------------------------------------------------------------ sendmmsg

/// Sends every datagram of `payloads` to `to` with as few `sendmmsg` calls as
/// the kernel allows; returns how many went out (a full socket buffer or an
/// error ends the batch early).
pub fn send_batch(sock: &UdpSocket, to: SocketAddr, payloads: &[&[u8]]) -> usize {
    let SocketAddr::V4(v4) = to else { panic!("send_batch: IPv4 only") };
    // SAFETY: an all-zero sockaddr_in is valid; the fields are set below.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = v4.port().to_be();
    sa.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
    let mut iovs: Vec<libc::iovec> =
        payloads.iter().map(|p| libc::iovec { iov_base: p.as_ptr() as *mut libc::c_void, iov_len: p.len() }).collect();
    let mut hdrs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: an all-zero msghdr is valid; the used fields are set.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = &mut sa as *mut libc::sockaddr_in as *mut libc::c_void;
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iov as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let mut done = 0usize;
    while done < hdrs.len() {
        // SAFETY: hdrs[done..] point at iovecs and a sockaddr that outlive the
        // call; the payload buffers are borrowed for the whole function.
        let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs[done..].as_mut_ptr(), (hdrs.len() - done) as libc::c_uint, 0) };
        if r <= 0 {
            break;
        }
        done += r as usize;
    }
    done
}
