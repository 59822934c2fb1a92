//! The management plane: what operators use to watch and steer a running
//! server, all outside the relay threads. [`runtime::Runtime`] is the one
//! place that changes settings at run time (SIGHUP, the telnet CLI, the web
//! admin); the surfaces below read the relay threads through
//! [`crate::relay::control::Management`].

pub mod cli;
pub mod prometheus;
pub mod runtime;
pub mod systemd;
pub mod webadmin;
