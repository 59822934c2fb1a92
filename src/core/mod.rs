//! The protocol core: everything between "a datagram arrived" and "send these
//! bytes there", with no sockets, no threads and no clock reads. The I/O layer
//! ([`crate::relay`]) passes the time in and carries the outputs out.

pub mod credentials;
pub mod nonce;
pub mod peer_policy;
