//! Configuration: one option table serves the command line and `turnserver.conf`
//! (a config line becomes `--key=value` for the same parser), producing one
//! validated [`Config`].

use std::net::IpAddr;
use std::path::PathBuf;

/// Where logs go (`--log-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// No `--log-file`: coturn's automatic `turn_<pid>_<date>.log` in the first
    /// writable of /var/log/turnserver, /var/log, /var/tmp, /tmp, cwd.
    Auto,
    /// `stdout` or `-`.
    Stdout,
    /// `syslog`.
    Syslog,
    /// A path (becomes `<stem>_<date>.log` with daily rollover unless `--simple-log`).
    File(PathBuf),
}

/// `--log-min-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// `--allocation-default-address-family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamilyDefault {
    Ipv4,
    Ipv6,
    Keep,
}

/// The validated configuration. Field names follow the long option names.
/// Every option of coturn is accepted by the parser; the ones whose feature is
/// not implemented yet are kept in [`Config::unsupported`] and logged once at start.
#[derive(Debug, Clone)]
pub struct Config {
    // --- listeners and relay addressing ---
    pub listening_port: u16,
    pub tls_listening_port: u16,
    pub alt_listening_port: u16,
    pub alt_tls_listening_port: u16,
    /// Empty = every local address (the binary discovers them).
    pub listening_ips: Vec<IpAddr>,
    /// Empty = derived (listening IPs if given, else automatic).
    pub relay_ips: Vec<IpAddr>,
    /// `--external-ip`: (public, optional private). The single `ip` form has `None`.
    pub external_ips: Vec<(IpAddr, Option<IpAddr>)>,
    pub min_port: u16,
    pub max_port: u16,
    pub no_udp: bool,
    pub no_tcp: bool,
    pub no_tls: bool,
    pub dtls: bool,
    pub no_udp_relay: bool,
    pub no_tcp_relay: bool,
    pub allocation_default_address_family: AddressFamilyDefault,

    // --- threads ---
    /// `--relay-threads`/`-m`; `None` = CPU count (or `--cpus`).
    pub relay_threads: Option<usize>,
    pub cpus: Option<usize>,
    pub sock_buf_size: usize,

    // --- authentication ---
    pub lt_cred_mech: bool,
    pub no_auth: bool,
    /// `--user` values as given (`name:password` or `name:0x<hex>`), in order.
    pub users: Vec<String>,
    pub realm: String,
    pub use_auth_secret: bool,
    pub static_auth_secrets: Vec<String>,
    pub rest_api_separator: char,
    /// `--stale-nonce`: seconds, 0 = never. Default 600.
    pub stale_nonce: u32,
    pub stateless_nonce_secret: Option<String>,
    pub secure_stun: bool,

    // --- lifetimes ---
    pub max_allocate_lifetime: u32,
    pub channel_lifetime: u32,
    pub permission_lifetime: u32,
    pub max_allocate_timeout: u32,

    // --- peers ---
    pub allow_loopback_peers: bool,
    pub no_multicast_peers: bool,
    /// Raw `ip`/`ip-ip` strings, validated at parse time (malformed is fatal).
    pub allowed_peer_ips: Vec<String>,
    pub denied_peer_ips: Vec<String>,

    // --- STUN behaviour ---
    pub fingerprint: bool,
    pub software_attribute: bool,
    pub stun_backward_compatibility: bool,
    pub rfc3489_compatibility: bool,
    /// `--rfc5766-channel-numbers`: accept 0x4000-0x7FFF. Our default: true.
    pub rfc5766_channel_numbers: bool,
    pub drop_invalid_packets: bool,
    pub drop_invalid_packets_log: bool,
    pub stun_only: bool,
    pub no_stun: bool,
    pub include_reason_string: bool,

    // --- logging and process ---
    pub log_file: LogTarget,
    pub simple_log: bool,
    pub no_stdout_log: bool,
    pub syslog: bool,
    pub verbose: bool,
    pub very_verbose: bool,
    pub log_min_level: LogLevel,
    pub new_log_timestamp: bool,
    pub new_log_timestamp_format: String,
    /// `--pidfile`; `None` when given empty (no pid file).
    pub pidfile: Option<PathBuf>,
    pub daemon: bool,

    /// Options accepted but whose feature is not implemented yet, as `--name`,
    /// each logged once at startup as "not supported yet".
    pub unsupported: Vec<String>,
    /// Non-fatal messages produced while parsing (e.g. `Bad configuration format: <line>`),
    /// printed once logging is up.
    pub warnings: Vec<String>,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// What the process should do after parsing the command line.
#[derive(Debug)]
pub enum Command {
    /// Serve with this configuration.
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (`--version`, `-h`).
    Print(String),
}

/// A fatal configuration problem: print `message` (coturn's wording) to stderr
/// and exit with `exit_code`, before any listener is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    pub exit_code: i32,
}

/// Parse argv (including argv[0]) and the config file it points to.
pub fn parse_args(args: &[String]) -> Result<Command, ConfigError> {
    todo!()
}

/// coturn's defaults, with nothing given on the command line or in a file.
impl Default for Config {
    fn default() -> Self {
        todo!()
    }
}
