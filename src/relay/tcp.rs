//! TCP client connections of one relay thread (RFC 8656 over TCP; TLS later
//! wraps the same path).
//!
//! A connection is framed by [`StreamDecoder`] (STUN messages and padded
//! ChannelData back to back) and written through a bounded
//! [`StreamEncoderQueue`]: a client that reads slowly loses relayed frames
//! instead of growing the server's memory (coturn #1289). Connections that
//! never allocate are closed after `--max-allocate-timeout`, and a per-thread
//! cap bounds how many unauthenticated ones may be open.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use crate::core::Transport;
use crate::stun::stream::{Frame, FrameError, StreamDecoder, StreamEncoderQueue, MAX_FRAME_LEN};
use crate::tls::{sniff, Sniff, TlsConfigs};

/// What carries the STUN stream of a connection.
pub enum Layer {
    /// Nothing decided yet: the first bytes tell plain STUN from TLS.
    Sniff,
    Plain,
    /// A TLS ClientHello is being read (ALPN picks the configuration).
    TlsAccepting(Box<rustls::server::Acceptor>),
    Tls(Box<rustls::ServerConnection>),
}

/// Bytes a connection may buffer in each direction.
pub const CONN_BUFFER: usize = MAX_FRAME_LEN + 16 * 1024;
/// Bytes read per readiness event before yielding to other sockets.
const READ_BUDGET: usize = 256 * 1024;

/// One accepted TCP connection.
pub struct Conn {
    pub stream: TcpStream,
    /// The client address (taken from a PROXY protocol header when present).
    pub peer: SocketAddr,
    /// The listener address it connected to.
    pub local: SocketAddr,
    pub transport: Transport,
    pub decoder: StreamDecoder,
    pub outq: StreamEncoderQueue,
    /// Monotonic ms of the accept.
    pub accepted_ms: u64,
    /// An allocation was made over this connection.
    pub allocated: bool,
    /// WRITABLE interest is registered (the out queue did not drain).
    pub want_write: bool,
    /// The listener expects a PROXY protocol header first.
    pub proxy_pending: bool,
    pub layer: Layer,
    /// Set once the connection carries RFC 6062 data instead of STUN.
    pub pipe: Option<Pipe>,
    /// Whether the stream is HTTP (see [`crate::relay::http_port`]).
    pub http: HttpState,
    /// An answer is queued that ends the connection once written.
    pub close_after_write: bool,
}

/// Is the (decrypted) stream HTTP? Decided once from its first bytes, so the
/// STUN framing of established connections never looks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpState {
    /// Not decided yet (TLS: the first decrypted bytes decide).
    Unknown,
    Http,
    No,
}

/// The RFC 6062 side of a connection: bytes read from it go, unframed, to its
/// partner's out queue. A peer data connection has no partner until the
/// client binds it; until then it buffers what the peer sends (bounded).
#[derive(Debug, Clone, Copy)]
pub struct Pipe {
    /// The CONNECTION-ID.
    pub conn: u32,
    /// The connection to or from the peer (not the client's).
    pub peer_side: bool,
    /// The other connection's slab key, once bound.
    pub partner: Option<usize>,
    /// A Connect is in progress (the socket is not connected yet).
    pub connecting: bool,
    /// Reading stopped because the partner's queue was full; resume when it drains.
    pub stalled: bool,
    /// `max-bps`: what reading this side may take (None: unlimited).
    pub budget: Option<crate::core::bandwidth::StreamBudget>,
}

/// What reading a connection produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// More may be readable later (WouldBlock or budget).
    Open { budget_left: bool },
    /// EOF, an error, or a stream that cannot be STUN: close it.
    Close(&'static str),
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr, local: SocketAddr, accepted_ms: u64, proxy: bool) -> Self {
        Conn {
            stream,
            peer,
            local,
            transport: Transport::Tcp,
            decoder: StreamDecoder::new(CONN_BUFFER),
            outq: StreamEncoderQueue::new(CONN_BUFFER),
            accepted_ms,
            allocated: false,
            want_write: false,
            proxy_pending: proxy,
            layer: Layer::Sniff,
            pipe: None,
            http: HttpState::Unknown,
            close_after_write: false,
        }
    }

    /// A peer data connection of TCP relay connection `conn` (plain bytes).
    pub fn peer_data(stream: TcpStream, peer: SocketAddr, relay: SocketAddr, now_ms: u64, conn: u32, connecting: bool) -> Self {
        let mut c = Conn::new(stream, peer, relay, now_ms, false);
        c.layer = Layer::Plain;
        c.http = HttpState::No;
        c.pipe = Some(Pipe { conn, peer_side: true, partner: None, connecting, stalled: false, budget: None });
        c
    }

    /// Move buffered input to `to`'s out queue, as much as fits; bytes moved.
    pub fn transfer_to(&mut self, to: &mut Conn) -> usize {
        let n = to.outq.push_some(self.decoder.peek());
        self.decoder.skip(n);
        n
    }

    /// Output is waiting: queued frames, or TLS records to send.
    pub fn has_pending_output(&self) -> bool {
        !self.outq.is_empty() || matches!(&self.layer, Layer::Tls(t) if t.wants_write())
    }

    /// Decide plain or TLS from the first buffered bytes (after any PROXY
    /// header). `Ok(false)` = need more bytes. With TLS, the buffered bytes
    /// move into the TLS acceptor.
    pub fn sniff(&mut self, tls: Option<&TlsConfigs>) -> Result<bool, &'static str> {
        match sniff(self.decoder.peek()) {
            Sniff::NeedMore => Ok(false),
            Sniff::Stun | Sniff::ChannelData => {
                self.layer = Layer::Plain;
                self.http = HttpState::No;
                Ok(true)
            }
            Sniff::Tls => {
                let Some(cfgs) = tls else { return Err("TLS connection but TLS is not configured") };
                let bytes = self.decoder.peek().to_vec();
                self.decoder.skip(bytes.len());
                self.layer = Layer::TlsAccepting(Box::default());
                self.transport = Transport::Tls;
                self.feed_tls(&bytes, cfgs)?;
                Ok(true)
            }
            Sniff::Http => {
                // Answered (or closed) by the relay thread's HTTP step.
                self.layer = Layer::Plain;
                self.http = HttpState::Http;
                Ok(true)
            }
            Sniff::ProxyV1 | Sniff::ProxyV2 | Sniff::Unknown => Err("not a STUN/TURN or TLS stream"),
        }
    }

    /// Feed received TLS records; decrypted data goes to the frame decoder.
    pub fn feed_tls(&mut self, mut data: &[u8], cfgs: &TlsConfigs) -> Result<(), &'static str> {
        while !data.is_empty() {
            match &mut self.layer {
                Layer::TlsAccepting(acc) => {
                    acc.read_tls(&mut data).map_err(|_| "TLS read failed")?;
                    match acc.accept() {
                        Ok(None) => {}
                        Ok(Some(accepted)) => {
                            let cfg = cfgs.for_client_hello(&accepted.client_hello());
                            match accepted.into_connection(cfg) {
                                Ok(conn) => self.layer = Layer::Tls(Box::new(conn)),
                                Err(_) => return Err("TLS handshake failed"),
                            }
                        }
                        Err(_) => return Err("bad TLS ClientHello"),
                    }
                }
                Layer::Tls(conn) => {
                    conn.read_tls(&mut data).map_err(|_| "TLS read failed")?;
                }
                Layer::Sniff | Layer::Plain => return Err("not a TLS connection"),
            }
            if let Layer::Tls(conn) = &mut self.layer {
                conn.process_new_packets().map_err(|_| "TLS error")?;
                loop {
                    let spare = self.decoder.spare(16 * 1024);
                    if spare.is_empty() {
                        break;
                    }
                    match conn.reader().read(spare) {
                        Ok(0) => return Err("TLS connection closed by client"),
                        Ok(n) => self.decoder.commit(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => return Err("TLS error"),
                    }
                }
            }
        }
        Ok(())
    }

    /// Read what the socket has (up to the budget): plain bytes into the
    /// decoder, TLS records through rustls into it.
    pub fn read(&mut self, tls: Option<&TlsConfigs>) -> ReadOutcome {
        let mut total = 0;
        let mut raw = [0u8; 16 * 1024];
        while total < READ_BUDGET {
            let is_tls = matches!(self.layer, Layer::TlsAccepting(_) | Layer::Tls(_));
            let res = if is_tls {
                // rustls buffers what it cannot process yet; don't outrun the decoder.
                if self.decoder.spare(1).is_empty() {
                    return ReadOutcome::Open { budget_left: false };
                }
                self.stream.read(&mut raw)
            } else {
                let spare = self.decoder.spare(16 * 1024);
                if spare.is_empty() {
                    // Full: the caller takes frames out, then reads again.
                    return ReadOutcome::Open { budget_left: false };
                }
                self.stream.read(spare)
            };
            match res {
                Ok(0) => return ReadOutcome::Close("connection closed by client"),
                Ok(n) => {
                    total += n;
                    if is_tls {
                        let Some(cfgs) = tls else { return ReadOutcome::Close("TLS is not configured") };
                        if let Err(why) = self.feed_tls(&raw[..n], cfgs) {
                            return ReadOutcome::Close(why);
                        }
                    } else {
                        self.decoder.commit(n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Open { budget_left: true },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Close("connection error"),
            }
        }
        ReadOutcome::Open { budget_left: false }
    }

    /// Copy the next frame (as the bytes the core expects: a STUN message, or
    /// a ChannelData frame without its stream padding) into `scratch`.
    pub fn next_frame(&mut self, scratch: &mut Vec<u8>) -> Result<bool, FrameError> {
        scratch.clear();
        match self.decoder.next_frame()? {
            None => Ok(false),
            Some(Frame::Stun(bytes)) => {
                scratch.extend_from_slice(bytes);
                Ok(true)
            }
            Some(Frame::ChannelData { channel, data }) => {
                crate::stun::ChannelData::encode(channel, data, false, scratch);
                Ok(true)
            }
        }
    }

    /// Write as much of the out queue as the socket takes. `Err` = close.
    pub fn write(&mut self) -> Result<(), &'static str> {
        if let Layer::Tls(conn) = &mut self.layer {
            loop {
                // Plaintext into rustls (it bounds its own buffer), records out.
                while !self.outq.is_empty() {
                    let (a, _) = self.outq.as_slices();
                    match conn.writer().write(a) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => self.outq.consume(n),
                    }
                }
                if !conn.wants_write() {
                    return Ok(());
                }
                match conn.write_tls(&mut self.stream) {
                    Ok(0) => return Err("connection closed"),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err("connection error"),
                }
            }
        }
        if matches!(self.layer, Layer::TlsAccepting(_)) {
            return Ok(());
        }
        while !self.outq.is_empty() {
            let (a, b) = self.outq.as_slices();
            let res = if b.is_empty() {
                self.stream.write(a)
            } else {
                self.stream.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
            };
            match res {
                Ok(0) => return Err("connection closed"),
                Ok(n) => self.outq.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err("connection error"),
            }
        }
        Ok(())
    }
}
