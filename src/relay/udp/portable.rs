//! Portable fallback (non-Linux Unix): the same API as `linux.rs` over
//! `recv_from`/`send_to`, one datagram per syscall. No packet info (`dst` is
//! always `None`, `src_ip` is ignored), no truncation flag (a datagram longer
//! than the slot is cut silently), no batching capabilities.
//!
//! Also compiled on Linux under `cfg(test)` so it stays tested.

#![cfg_attr(all(target_os = "linux", test), allow(dead_code))]

use std::io;
use std::mem::ManuallyDrop;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{FromRawFd, RawFd};

use super::{Received, UdpCaps, UdpStats, BATCH};

/// Borrow `fd` as a std socket without taking ownership (never closed here).
fn borrow(fd: RawFd) -> ManuallyDrop<UdpSocket> {
    // SAFETY: the caller owns an open UDP socket `fd` for the duration of the
    // call; ManuallyDrop keeps us from closing it.
    ManuallyDrop::new(unsafe { UdpSocket::from_raw_fd(fd) })
}

/// Packet info is not supported here: a no-op, so `Received::dst` stays `None`.
pub fn enable_pktinfo(_fd: RawFd, _v6: bool) -> io::Result<()> {
    Ok(())
}

/// TOS/TTL reporting is not supported here: a no-op, so `Received::tos` and
/// `Received::ttl` stay `None` and relayed datagrams keep the default marks.
pub fn enable_tos_ttl(_fd: RawFd, _v6: bool) -> io::Result<()> {
    Ok(())
}

/// Not supported here (see [`enable_tos_ttl`]).
pub fn set_tos(_fd: RawFd, _v6: bool, _tos: u8) -> io::Result<()> {
    Ok(())
}

/// Per-thread receive scratch: [`BATCH`] slots of `slot_size` bytes.
#[derive(Debug)]
pub struct RecvBatch {
    slot_size: usize,
    buf: Vec<u8>,
    meta: Vec<(usize, SocketAddr)>,
}

impl RecvBatch {
    pub fn new(slot_size: usize) -> Self {
        let slot_size = slot_size.max(1);
        RecvBatch { slot_size, buf: vec![0; slot_size * BATCH], meta: Vec::with_capacity(BATCH) }
    }

    /// Receive up to [`BATCH`] datagrams with `recv_from`; 0 when none waits.
    pub fn recv(&mut self, fd: RawFd, _caps: &UdpCaps, stats: &mut UdpStats) -> io::Result<usize> {
        self.meta.clear();
        let sock = borrow(fd);
        let slot = self.slot_size;
        while self.meta.len() < BATCH {
            let i = self.meta.len();
            match sock.recv_from(&mut self.buf[i * slot..(i + 1) * slot]) {
                Ok((n, from)) => {
                    stats.recvmsg_calls += 1;
                    self.meta.push((n.min(slot), from));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) if i > 0 => break,
                Err(e) => return Err(e),
            }
        }
        let n = self.meta.len();
        if n == 0 {
            stats.recv_wouldblock += 1;
        } else {
            stats.record_recv(n);
        }
        Ok(n)
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Datagram `i` of the last receive; panics if `i >= self.len()`.
    pub fn get(&self, i: usize) -> Received<'_> {
        let (len, from) = self.meta[i];
        let start = i * self.slot_size;
        Received { data: &self.buf[start..start + len], from, dst: None, truncated: false, tos: None, ttl: None }
    }

    pub fn iter(&self) -> impl Iterator<Item = Received<'_>> + '_ {
        (0..self.meta.len()).map(move |i| self.get(i))
    }
}

/// Send each datagram with `send_to`; returns how many were sent. A full
/// buffer drops the rest, a per-destination error drops that datagram.
pub fn send_batch(
    fd: RawFd,
    datagrams: &[(SocketAddr, &[u8])],
    _src_ip: Option<IpAddr>,
    _caps: &UdpCaps,
    stats: &mut UdpStats,
) -> usize {
    if datagrams.is_empty() {
        return 0;
    }
    stats.send_batches += 1;
    let sock = borrow(fd);
    let mut sent = 0;
    let mut i = 0;
    while i < datagrams.len() {
        let (to, p) = datagrams[i];
        match sock.send_to(p, to) {
            Ok(_) => {
                stats.sendto_calls += 1;
                sent += 1;
                i += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stats.dropped += (datagrams.len() - i) as u64;
                break;
            }
            Err(_) => {
                stats.dropped += 1;
                i += 1;
            }
        }
    }
    stats.sent += sent as u64;
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    #[test]
    fn portable_round_trip() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("addr");
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10 + i as usize]).collect();
        let d: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, &p[..])).collect();
        let caps = UdpCaps::fixed(false, false, false);
        let mut st = UdpStats::default();
        assert_eq!(send_batch(tx.as_raw_fd(), &d, None, &caps, &mut st), 40);
        let mut b = RecvBatch::new(2048);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.len() < 40 && Instant::now() < deadline {
            match b.recv(rx.as_raw_fd(), &caps, &mut st) {
                Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                Ok(_) => got.extend(b.iter().map(|r| (r.data.to_vec(), r.from))),
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert_eq!(got.len(), 40);
        for (i, (data, from)) in got.iter().enumerate() {
            assert_eq!(data, &payloads[i]);
            assert_eq!(*from, tx.local_addr().expect("addr"));
        }
        assert_eq!(st.sent, 40);
        assert_eq!(st.recv_packets, 40);
    }
}
