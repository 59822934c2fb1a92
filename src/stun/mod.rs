//! STUN/TURN message codec (RFC 5389/8489, 5766/8656, 6156, 5780, 6062, 8016).
//!
//! Parsing borrows the datagram ([`Message`]); building writes into a caller's
//! `Vec<u8>` ([`MessageBuilder`]). Nothing here does I/O or reads a clock.

pub mod attr;
pub mod builder;
pub mod channel_data;
pub mod integrity;
pub mod message;
pub mod rfc8489;
pub mod saslprep;
pub mod stream;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_vectors;

pub use attr::{AttrType, ErrorCode};
pub use builder::MessageBuilder;
pub use channel_data::ChannelData;
pub use message::{Class, Message, MessageType, Method, ParseError, TransactionId, MAGIC_COOKIE};
