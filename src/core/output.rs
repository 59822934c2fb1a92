//! What the core hands back to the I/O layer: datagrams to send, in one arena.

use std::net::SocketAddr;
use std::ops::Range;

/// Identifies one relay socket of the I/O layer (opaque to the core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayId(pub u32);

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Dtls,
}

impl Transport {
    /// A byte stream (TCP, TLS): ChannelData is padded to 4 bytes.
    pub fn is_stream(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// coturn's name for the type in logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS/TCP",
            Transport::Dtls => "DTLS",
        }
    }
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// To a client over `transport`, from the listener address `local` it used.
    Client { transport: Transport, local: SocketAddr, to: SocketAddr },
    /// To a peer, from the relay socket `relay`.
    Peer { relay: RelayId, to: SocketAddr },
}

/// One datagram: its destination and its bytes' range in [`Outputs::buf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dest: Dest,
    pub range: Range<usize>,
    /// TOS / traffic class to send with. The core leaves 0 (the default); the
    /// I/O layer copies the incoming datagram's mark onto relayed data.
    pub tos: u8,
}

/// Datagrams produced while handling a batch of input. The I/O layer drains it
/// after each receive batch (so sends can be batched per socket) and clears it.
#[derive(Debug, Default)]
pub struct Outputs {
    pub buf: Vec<u8>,
    pub transmits: Vec<Transmit>,
    /// Database lookups a request is waiting for (see `core::dbauth`). The
    /// I/O layer takes them right after the call that queued them, parks that
    /// request and re-runs it once the answers are provided.
    pub credential_queries: Vec<super::dbauth::CredentialQuery>,
}

impl Outputs {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.transmits.clear();
        self.credential_queries.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty()
    }

    /// Record that `range` of the arena goes to `dest`.
    pub fn push(&mut self, dest: Dest, range: Range<usize>) {
        self.transmits.push(Transmit { dest, range, tos: 0 });
    }

    /// Copy `data` into the arena and queue it for `dest`.
    pub fn push_copy(&mut self, dest: Dest, data: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        let end = self.buf.len();
        self.push(dest, start..end);
    }

    /// The bytes of one transmit.
    pub fn bytes(&self, t: &Transmit) -> &[u8] {
        &self.buf[t.range.clone()]
    }
}
