//! The I/O layer: per-core relay threads, each owning its sockets and sessions.
