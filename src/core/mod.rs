//! The protocol core: everything between "a datagram arrived" and "send these
//! bytes there", with no sockets, no threads and no clock reads. The I/O layer
//! ([`crate::relay`]) passes the time in and carries the outputs out.

pub mod admin;
pub mod bandwidth;
pub mod credentials;
pub mod dbauth;
pub mod dynamic;
pub mod mobility;
pub mod nonce;
pub mod oauth;
pub mod peer_policy;
pub mod allocation;
pub mod output;
pub mod provider;
pub mod quota;
pub mod ratelimit;
pub mod rfc8489;
pub mod server;
pub mod time;
pub mod timers;

mod allocate;
mod binding;
mod data;
pub mod events;
mod permission;
pub mod redirect;
mod refusal;
pub mod tcp_relay;

pub use output::{Dest, Outputs, RelayId, Transmit, Transport};
pub use provider::{Family, PortRequest, RelayBinding, RelayError, RelayProvider, RelayRequest};
pub use redirect::AlternateServers;
pub use server::{AuthFailure, CoreConfig, Server, ServerStats};
pub use events::{AllocEvent, AllocInfo};
pub use tcp_relay::TcpAction;
pub use time::Now;

#[cfg(test)]
mod tests;
