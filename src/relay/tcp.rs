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
        }
    }

    /// Read what the socket has (up to the budget) into the decoder.
    pub fn read(&mut self) -> ReadOutcome {
        let mut total = 0;
        while total < READ_BUDGET {
            let spare = self.decoder.spare(16 * 1024);
            if spare.is_empty() {
                // Full: the caller takes frames out, then reads again.
                return ReadOutcome::Open { budget_left: false };
            }
            match self.stream.read(spare) {
                Ok(0) => return ReadOutcome::Close("connection closed by client"),
                Ok(n) => {
                    self.decoder.commit(n);
                    total += n;
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
