//! turnserver-rs: a coturn-compatible TURN/STUN server.
//!
//! The crate has three layers with hard boundaries:
//! - [`stun`]: the message codec (parse, build, integrity, fingerprint). No I/O.
//! - [`core`]: the protocol core (nonce, authentication decisions, peer policy,
//!   allocations, permissions, channels, timers). It takes bytes, addresses and a
//!   clock value and returns bytes and actions. No sockets, no threads, no clock reads.
//! - [`relay`], [`config`], [`logging`], [`process`], [`tls`]: the daemon:
//!   configuration, per-core relay threads that own their sockets, logs, process
//!   handling and the rustls configuration for TLS listeners.

pub mod admin;
pub mod config;
pub mod core;
pub mod daemon;
pub mod dtls;
pub mod logging;
pub mod mgmt;
pub mod process;
pub mod relay;
pub mod stun;
pub mod tls;
pub mod userdb;

/// Version printed by `--version` and used in the SOFTWARE attribute.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
