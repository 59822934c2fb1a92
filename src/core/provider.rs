//! The one synchronous boundary from the core to the I/O layer: relay sockets.
//!
//! Allocate needs the relay address in its answer, so the core asks for a relay
//! socket through [`RelayProvider`] and gets the bound address back at once. The
//! I/O layer implements it with real sockets; tests implement it with a fake.

use std::net::{IpAddr, SocketAddr};

use super::output::RelayId;

/// Address family of a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
    /// coturn's log prefix ("IPv4" / "IPv6").
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// What kind of relay port to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    /// Any port of the range.
    Any,
    /// An even port; with `reserve_next` the next (odd) port is held for a later
    /// Allocate that presents the returned reservation token.
    Even { reserve_next: bool },
    /// The port held for this RESERVATION-TOKEN.
    Reserved(u64),
}

/// A relay socket request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayRequest {
    pub family: Family,
    pub port: PortRequest,
    /// DONT-FRAGMENT was in the Allocate: set DF on the relay socket.
    pub dont_fragment: bool,
    /// The client's address (so the I/O layer may pick a relay IP to match).
    pub client: SocketAddr,
    /// An RFC 6062 TCP relay: a listening TCP socket instead of a UDP one.
    pub tcp: bool,
}

/// A bound relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayBinding {
    pub id: RelayId,
    /// The address the socket is bound to (local relay address).
    pub local: SocketAddr,
    /// The address to advertise in XOR-RELAYED-ADDRESS (`--external-ip` applied).
    pub advertised: SocketAddr,
    /// Set when `PortRequest::Even { reserve_next: true }` reserved port+1.
    pub reservation_token: Option<u64>,
    /// The socket is this thread's shared multiplex relay (`--multiplex-peer`):
    /// peers are told apart by their exact address, not by the socket.
    pub shared: bool,
}

/// Why no relay socket could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// No relay address of that family is configured (440).
    #[error("no relay address of the requested family")]
    FamilyNotSupported,
    /// The port range is exhausted, or binding failed (508).
    #[error("cannot allocate a relay port")]
    NoPorts,
    /// The reservation token is unknown or expired (508 as coturn).
    #[error("unknown reservation token")]
    BadToken,
}

pub trait RelayProvider {
    fn bind_relay(&mut self, req: RelayRequest) -> Result<RelayBinding, RelayError>;
    /// Close the relay socket and return its port to the pool.
    fn release_relay(&mut self, id: RelayId);
    /// Families for which a relay address exists.
    fn supports(&self, family: Family) -> bool;
    /// Relays are shared multiplex sockets (EVEN-PORT cannot be honoured: 508).
    fn multiplexed(&self) -> bool {
        false
    }
}
