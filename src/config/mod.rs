//! Configuration: one option table serves the command line and `turnserver.conf`
//! (a config line becomes `--key=value` for the same parser), producing one
//! validated [`Config`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub(crate) mod apply;
pub mod cli;
pub mod file;
pub mod options;
pub mod usage;
mod validate;

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

/// Default of `--udp-coalesce-us`.
pub const DEFAULT_UDP_COALESCE_US: u32 = 1000;

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
    /// `--udp-recvmmsg`: batch receive (Linux; on by default).
    pub udp_recvmmsg: bool,
    /// `--udp-recvmmsg-log`: per-thread receive batching stats every 10 s.
    pub udp_recvmmsg_log: bool,
    /// `--udp-sendmmsg-log`: per-thread send batching / GSO stats every 10 s.
    pub udp_sendmmsg_log: bool,
    /// `--udp-gso`: UDP segmentation offload for egress batches. On by default
    /// here where the kernel supports it (coturn makes it opt-in).
    pub udp_gso: bool,
    /// `--multiplex-peer`: one shared relay socket per thread and family.
    pub multiplex_peer: bool,
    /// `--multiplex-peer-port` (3480): thread i uses base+2i (IPv4), base+2i+1 (IPv6).
    pub multiplex_peer_port: u16,
    /// `--multiplex-peer-max-peers` (256): peer endpoints per allocation.
    pub multiplex_peer_max_peers: u32,
    /// TLS: `--cert`, `--pkey`, `--pkey-pwd`, `--CA-file`, `--cipher-list`,
    /// `--ec-curve-name`, `--dh-file` (paths as given; resolved like the
    /// config file), and the version switches.
    pub cert: Option<PathBuf>,
    pub pkey: Option<PathBuf>,
    pub pkey_pwd: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cipher_list: Option<String>,
    pub ec_curve_name: Option<String>,
    pub dh_file: Option<PathBuf>,
    pub dh566: bool,
    pub dh1066: bool,
    pub tlsv1: bool,
    pub tlsv1_1: bool,
    pub no_tlsv1_2: bool,
    /// `--raw-public-keys`: RFC 7250 raw public keys for TLS clients asking.
    pub raw_public_keys: bool,
    /// `--listening-device` / `--relay-device`: SO_BINDTODEVICE for listener /
    /// relay sockets (Linux, root).
    pub listening_device: Option<String>,
    pub relay_device: Option<String>,
    /// `--tcp-proxy-port`: extra TCP port whose connections start with an
    /// HAProxy PROXY protocol header naming the client.
    pub tcp_proxy_port: Option<u16>,
    /// `--udp-coalesce-us` (ours, not coturn's): after a relay-thread round
    /// that read only a few datagrams, wait this many microseconds before
    /// reading again so the next round is a batch. 0 turns it off.
    pub udp_coalesce_us: u32,

    // --- authentication ---
    pub lt_cred_mech: bool,
    pub no_auth: bool,
    /// `--user` values as given (`name:password` or `name:0x<hex>`), in order.
    pub users: Vec<String>,
    pub realm: String,
    pub use_auth_secret: bool,
    pub static_auth_secrets: Vec<String>,
    pub rest_api_separator: char,
    /// `--rest-api-hmac` (ours): false = HMAC-SHA1 (coturn), true = HMAC-SHA256.
    pub rest_api_hmac_sha256: bool,
    /// `--rfc8489-auth` (ours): advertise RFC 8489 password algorithms.
    pub rfc8489_auth: bool,
    /// `--stale-nonce`: seconds, 0 = never. Default 600.
    pub stale_nonce: u32,
    pub stateless_nonce_secret: Option<String>,
    pub secure_stun: bool,
    /// `--stateless-nonce` (coturn 4.17 default: on). Forced on by
    /// `--stateless-nonce-secret`.
    pub stateless_nonce: bool,

    // --- user database ---
    /// `--userdb` / `--psql-userdb` / `--mysql-userdb` / `--redis-userdb`
    /// (the last one given wins, as in coturn). The MySQL string is as given
    /// (its password still encrypted when `secret_key_file` is set).
    pub userdb: Option<crate::userdb::DbSpec>,
    /// `--redis-statsdb`: coturn's Redis connection string for allocation reports.
    pub redis_statsdb: Option<String>,
    /// `--secret-key-file`: AES key for an encrypted MySQL password.
    pub secret_key_file: Option<PathBuf>,
    pub no_dynamic_ip_list: bool,
    pub no_dynamic_realms: bool,
    pub no_auth_pings: bool,

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
    /// `--rfc5780`: NAT behaviour discovery (needs two listening IPs of a family).
    pub rfc5780: bool,
    /// `--alternate-server` (UDP/TCP; default port 3478), in the given order;
    /// a repeated entry counts once per occurrence (its weight).
    pub alternate_servers: Vec<SocketAddr>,
    /// `--tls-alternate-server` (TLS/DTLS; default port 5349).
    pub tls_alternate_servers: Vec<SocketAddr>,
    /// `--udp-alternate-server`: for UDP clients, instead of `alternate_servers`.
    pub udp_alternate_servers: Vec<SocketAddr>,
    /// `--tcp-alternate-server`: for TCP clients, instead of `alternate_servers`.
    pub tcp_alternate_servers: Vec<SocketAddr>,
    /// `--aux-server`: extra listener endpoints (no RFC 5780 on them).
    pub aux_servers: Vec<SocketAddr>,
    /// `--udp-self-balance`: redirect UDP Allocates over `aux_servers`.
    pub udp_self_balance: bool,
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

    // --- process ---
    /// `--proc-user` / `--proc-group`: names checked while parsing.
    pub proc_user: Option<String>,
    pub proc_group: Option<String>,
    /// `--drain-min-allocations`: drain ends (the process exits) at this many.
    pub drain_min_allocations: u32,
    /// `--syslog-facility` as given (`LOG_LOCAL1`...), `None`: LOG_USER.
    pub syslog_facility: Option<String>,
    /// `--log-binding`: log Binding requests in verbose mode.
    pub log_binding: bool,
    /// `--mongo-userdb` as given: accepted while parsing so configs read,
    /// refused at start (no MongoDB backend).
    pub mongo_userdb: Option<String>,

    // --- telnet CLI ---
    /// `--cli`: 4.17 keeps the CLI off unless asked for.
    pub cli: bool,
    pub cli_ip: IpAddr,
    pub cli_port: u16,
    /// Plain text or a `$5$` hash; empty disables the CLI.
    pub cli_password: String,
    pub cli_max_output_sessions: u32,

    // --- Prometheus ---
    pub prometheus: bool,
    pub prometheus_port: u16,
    /// `None`: every address.
    pub prometheus_address: Option<IpAddr>,
    pub prometheus_path: String,
    pub prometheus_username_labels: bool,
    pub prometheus_tls: bool,
    pub prometheus_cert: Option<PathBuf>,
    pub prometheus_key: Option<PathBuf>,

    // --- web admin and HTTP on TURN ports ---
    pub web_admin: bool,
    pub web_admin_ip: IpAddr,
    pub web_admin_port: u16,
    pub web_admin_listen_on_workers: bool,
    /// `--acme-redirect` URL prefix, "" when off.
    pub acme_redirect: String,
    pub respond_http_unsupported: bool,

    // --- protocol extensions ---
    /// `--mobility` (RFC 8016).
    pub mobility: bool,
    /// `--oauth` (RFC 7635) and `--server-name`.
    pub oauth: bool,
    pub server_name: Option<String>,

    /// Options accepted but whose feature is not implemented yet, as `--name`,
    /// each logged once at startup as "not supported yet".
    pub unsupported: Vec<String>,
    /// Raw `(name, value)` of every unsupported option occurrence, in order
    /// (`name` without `--`; value "" when none). For features added later
    /// (`cert`, `pkey`, databases...).
    pub unsupported_values: Vec<(String, String)>,
    /// `--user-quota` / `--total-quota` (parsed; feature not implemented yet).
    pub user_quota: u32,
    pub total_quota: u32,
    /// `--max-bps` / `--bps-capacity` in bytes/s, 0 = unlimited.
    pub max_bps: u64,
    pub bps_capacity: u64,
    /// `--server-relay` (no permissions needed; dangerous).
    pub server_relay: bool,
    /// `--unauthorized-ratelimit` and its `-rps` (default 10).
    pub unauthorized_ratelimit: bool,
    pub unauthorized_ratelimit_rps: u32,
    /// `--check-origin-consistency`.
    pub check_origin_consistency: bool,
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

impl ConfigError {
    /// coturn exits with `exit(-1)`, i.e. status 255, on every configuration error.
    pub const EXIT_CODE: i32 = 255;

    pub(crate) fn fatal(message: impl Into<String>) -> Self {
        ConfigError { message: message.into(), exit_code: Self::EXIT_CODE }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Parse argv (including argv[0]) and the config file it points to.
///
/// Relative `-c` names are searched from the current directory and the
/// executable's directory (see [`file::search_candidates`]).
pub fn parse_args(args: &[String]) -> Result<Command, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let exec_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    parse_args_in(args, &cwd, exec_dir.as_deref())
}

/// [`parse_args`] with an explicit base directory for the config-file search.
pub fn parse_args_in(
    args: &[String],
    cwd: &Path,
    exec_dir: Option<&Path>,
) -> Result<Command, ConfigError> {
    let prog = args.first().map(String::as_str).unwrap_or("turnserver");
    let rest = args.get(1..).unwrap_or(&[]);

    // Pass 0, as coturn: literal -h / --version / -c / -n tokens, before anything else.
    let mut config_name = String::from("turnserver.conf");
    let mut no_config = false;
    let mut warnings = Vec::new();
    for (i, a) in rest.iter().enumerate() {
        match a.as_str() {
            "-h" => return Ok(Command::Print(usage::usage_text())),
            "--version" => return Ok(Command::Print(crate::VERSION.to_string())),
            "-c" => match rest.get(i + 1) {
                Some(v) => config_name = v.clone(),
                None => warnings.push("Wrong usage of -c option".to_string()),
            },
            "-n" => no_config = true,
            _ => {
                if let Some(v) = a.strip_prefix("-c").filter(|v| !v.is_empty() && !a.starts_with("--")) {
                    config_name = v.to_string();
                }
            }
        }
    }

    let cli = cli::tokenize(prog, rest).map_err(|e| {
        ConfigError::fatal(format!("{e}\n\n{}", usage::usage_text()))
    })?;

    let mut b = apply::Builder::new();
    b.cfg.warnings = warnings;

    let mut file_lines = Vec::new();
    if !no_config {
        let found = file::find_config_file(&config_name, cwd, exec_dir)
            .and_then(|p| std::fs::read(&p).ok().map(|bytes| (p, bytes)));
        match found {
            Some((path, bytes)) => {
                let text = String::from_utf8_lossy(&bytes);
                for line in file::parse_contents(&text) {
                    match options::by_config_key(&line.key) {
                        Some(spec) => file_lines.push((spec, line.value.clone(), line.text.clone())),
                        None => b.warn(format!("Bad configuration format: {}", line.key)),
                    }
                    if line.text.ends_with(';') {
                        b.warn(format!(
                            "Check config! The following line ends with semicolon: \"{}\"",
                            line.text
                        ));
                    }
                }
                b.cfg.config_file = Some(path);
            }
            None => b.warn(format!(
                "Cannot find config file: {config_name}. Default and command-line settings will be used."
            )),
        }
    }
    b.cfg.warnings.extend(cli.warnings);

    // coturn's order: file options except `user`, then command-line options
    // except -u (scalars override, lists append), then file users, then CLI users.
    let is_user = |s: &options::OptSpec| s.long == "user";
    for (spec, value, _) in file_lines.iter().filter(|(s, _, _)| !is_user(s)) {
        b.apply(spec, Some(value))?;
    }
    for occ in cli.occurrences.iter().filter(|o| !is_user(o.spec)) {
        b.apply(occ.spec, occ.value.as_deref())?;
    }
    for (spec, value, _) in file_lines.iter().filter(|(s, _, _)| is_user(s)) {
        b.apply(spec, Some(value))?;
    }
    for occ in cli.occurrences.iter().filter(|o| is_user(o.spec)) {
        b.apply(occ.spec, occ.value.as_deref())?;
    }

    let cfg = validate::finish(b)?;
    Ok(Command::Run(Box::new(cfg)))
}

/// coturn's defaults, with nothing given on the command line or in a file.
impl Default for Config {
    fn default() -> Self {
        Config {
            listening_port: 3478,
            tls_listening_port: 5349,
            alt_listening_port: 0,
            alt_tls_listening_port: 0,
            listening_ips: Vec::new(),
            relay_ips: Vec::new(),
            external_ips: Vec::new(),
            min_port: 49152,
            max_port: 65535,
            no_udp: false,
            no_tcp: false,
            no_tls: false,
            dtls: false,
            no_udp_relay: false,
            no_tcp_relay: false,
            allocation_default_address_family: AddressFamilyDefault::Ipv4,
            relay_threads: None,
            cpus: None,
            sock_buf_size: 2_097_152,
            udp_recvmmsg: true,
            udp_recvmmsg_log: false,
            udp_sendmmsg_log: false,
            udp_gso: true,
            multiplex_peer: false,
            multiplex_peer_port: 3480,
            multiplex_peer_max_peers: 256,
            cert: None,
            pkey: None,
            pkey_pwd: None,
            ca_file: None,
            cipher_list: None,
            ec_curve_name: None,
            dh_file: None,
            dh566: false,
            dh1066: false,
            tlsv1: false,
            tlsv1_1: false,
            no_tlsv1_2: false,
            raw_public_keys: false,
            listening_device: None,
            relay_device: None,
            tcp_proxy_port: None,
            udp_coalesce_us: DEFAULT_UDP_COALESCE_US,
            userdb: None,
            redis_statsdb: None,
            secret_key_file: None,
            no_dynamic_ip_list: false,
            no_dynamic_realms: false,
            no_auth_pings: false,
            lt_cred_mech: false,
            no_auth: true,
            users: Vec::new(),
            realm: String::new(),
            use_auth_secret: false,
            static_auth_secrets: Vec::new(),
            rest_api_separator: ':',
            rest_api_hmac_sha256: false,
            rfc8489_auth: false,
            stale_nonce: 600,
            stateless_nonce_secret: None,
            secure_stun: false,
            stateless_nonce: true,
            max_allocate_lifetime: 3600,
            channel_lifetime: 600,
            permission_lifetime: 300,
            max_allocate_timeout: 60,
            allow_loopback_peers: false,
            no_multicast_peers: false,
            allowed_peer_ips: Vec::new(),
            denied_peer_ips: Vec::new(),
            fingerprint: false,
            software_attribute: false,
            stun_backward_compatibility: false,
            rfc3489_compatibility: false,
            rfc5780: false,
            alternate_servers: Vec::new(),
            tls_alternate_servers: Vec::new(),
            udp_alternate_servers: Vec::new(),
            tcp_alternate_servers: Vec::new(),
            aux_servers: Vec::new(),
            udp_self_balance: false,
            rfc5766_channel_numbers: true,
            drop_invalid_packets: true,
            drop_invalid_packets_log: false,
            stun_only: false,
            no_stun: false,
            include_reason_string: false,
            proc_user: None,
            proc_group: None,
            drain_min_allocations: 0,
            syslog_facility: None,
            log_binding: false,
            mongo_userdb: None,
            cli: false,
            cli_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            cli_port: 5766,
            cli_password: String::new(),
            cli_max_output_sessions: 256,
            prometheus: false,
            prometheus_port: 9641,
            prometheus_address: None,
            prometheus_path: "/metrics".to_string(),
            prometheus_username_labels: false,
            prometheus_tls: false,
            prometheus_cert: None,
            prometheus_key: None,
            web_admin: false,
            web_admin_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            web_admin_port: 8080,
            web_admin_listen_on_workers: false,
            acme_redirect: String::new(),
            respond_http_unsupported: false,
            mobility: false,
            oauth: false,
            server_name: None,
            log_file: LogTarget::Auto,
            simple_log: false,
            no_stdout_log: false,
            syslog: false,
            verbose: false,
            very_verbose: false,
            log_min_level: LogLevel::Debug,
            new_log_timestamp: true,
            new_log_timestamp_format: "%FT%T.%f%z".to_string(),
            pidfile: Some(PathBuf::from("/var/run/turnserver.pid")),
            daemon: false,
            unsupported: Vec::new(),
            unsupported_values: Vec::new(),
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            bps_capacity: 0,
            server_relay: false,
            unauthorized_ratelimit: false,
            unauthorized_ratelimit_rps: 10,
            check_origin_consistency: false,
            warnings: Vec::new(),
            config_file: None,
        }
    }
}
