//! Applying one option occurrence (from the command line or a file line) to
//! the configuration being built.

use std::net::{IpAddr, SocketAddr};

use super::options::{ArgKind, OptSpec, Support};
use super::{AddressFamilyDefault, Config, ConfigError, LogLevel, LogTarget};

/// The configuration under construction plus the bookkeeping coturn keeps
/// while reading options (which credential switches were seen, etc.).
pub(crate) struct Builder {
    pub cfg: Config,
    /// `-a` in force (also set by the REST API options, as in coturn).
    pub use_lt: bool,
    /// `-a`/`--lt-cred-mech` was given (true).
    pub use_ltc: bool,
    /// `--use-auth-secret` / `--static-auth-secret` was given.
    pub use_tltc: bool,
    /// `-z`/`--no-auth` in force.
    pub anon: bool,
    /// The single-form `--external-ip` already seen.
    pub external_single: Option<IpAddr>,
    pub server_relay: bool,
    /// `--cli` in force (4.17: the telnet CLI is off unless asked for).
    pub cli: bool,
    /// No non-empty `--cli-password` seen.
    pub cli_password_empty: bool,
}

/// coturn's boolean words: empty = true; first char 0/n/N/f/F false,
/// y/Y/t/T or 1-9 true; whole word on/On/ON or off/Off/OFF; anything else fatal.
pub fn parse_bool(value: Option<&str>) -> Result<bool, ConfigError> {
    let v = value.unwrap_or("");
    let Some(first) = v.chars().next() else {
        return Ok(true);
    };
    match first {
        '0' | 'n' | 'N' | 'f' | 'F' => return Ok(false),
        'y' | 'Y' | 't' | 'T' | '1'..='9' => return Ok(true),
        _ => {}
    }
    match v {
        "off" | "Off" | "OFF" => Ok(false),
        "on" | "On" | "ON" => Ok(true),
        _ => Err(ConfigError::fatal(format!(
            "Unknown boolean value: {v}. You can use on/off, yes/no, 1/0, true/false."
        ))),
    }
}

/// C `atoi`-like leniency for options whose feature is not implemented:
/// leading blanks, optional sign, digits; garbage gives 0 (coturn's behaviour).
fn atoi(v: &str) -> i64 {
    let t = v.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(10) else { break };
        n = n.saturating_mul(10).saturating_add(i64::from(d));
    }
    if neg {
        -n
    } else {
        n
    }
}

fn bad_value(name: &str, value: &str, what: &str) -> ConfigError {
    ConfigError::fatal(format!("CONFIG ERROR: wrong value of --{name}: '{value}' ({what})"))
}

fn port(name: &str, value: &str) -> Result<u16, ConfigError> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|_| bad_value(name, value, "must be a port number 0-65535"))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| bad_value(name, value, "must be a non-negative integer"))
}

/// Optional numeric value: bare (or empty) means the documented default.
fn number_or<T: std::str::FromStr>(name: &str, value: Option<&str>, default: T) -> Result<T, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => number(name, v),
    }
}

/// An IP literal; `[v6]` brackets are tolerated.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let t = s.trim();
    let t = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(t);
    t.parse().ok()
}

/// A server address `ip`, `ip:port`, `[v6]` or `[v6]:port` (a bare IPv6
/// literal is an address without port); `default_port` when none is given.
pub fn parse_server_addr(s: &str, default_port: u16) -> Option<SocketAddr> {
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Some(a);
    }
    if let Some(ip) = parse_ip(t) {
        return Some(SocketAddr::new(ip, default_port));
    }
    let (host, port) = t.rsplit_once(':')?;
    let ip: IpAddr = host.parse().ok()?;
    // `v4:port` only: an unbracketed v6 with a port is ambiguous.
    if !ip.is_ipv4() {
        return None;
    }
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

fn server_addr(name: &str, value: &str, default_port: u16) -> Result<SocketAddr, ConfigError> {
    parse_server_addr(value, default_port).ok_or_else(|| bad_value(name, value, "must be ip[:port] or [ipv6]:port"))
}

/// coturn's peer range syntax: `ip` or `ip-ip`, same family, start <= end.
pub fn valid_peer_range(s: &str) -> bool {
    let t = s.trim();
    match t.split_once('-') {
        None => parse_ip(t).is_some(),
        Some((a, b)) => match (parse_ip(a), parse_ip(b)) {
            (Some(IpAddr::V4(x)), Some(IpAddr::V4(y))) => x <= y,
            (Some(IpAddr::V6(x)), Some(IpAddr::V6(y))) => x <= y,
            _ => false,
        },
    }
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            cfg: Config::default(),
            use_lt: false,
            use_ltc: false,
            use_tltc: false,
            anon: false,
            external_single: None,
            server_relay: false,
            cli: false,
            cli_password_empty: true,
        }
    }

    pub fn warn(&mut self, msg: String) {
        if !self.cfg.warnings.contains(&msg) {
            self.cfg.warnings.push(msg);
        }
    }

    pub fn mark_unsupported(&mut self, long: &str) {
        let flag = format!("--{long}");
        if !self.cfg.unsupported.contains(&flag) {
            self.cfg.unsupported.push(flag);
        }
    }

    /// Record an occurrence of an option whose feature does not exist yet.
    /// A boolean given as false turns nothing on, so it is not reported.
    fn unsupported(&mut self, spec: &OptSpec, value: Option<&str>) -> Result<(), ConfigError> {
        if spec.arg == ArgKind::OptionalBool && !parse_bool(value)? {
            return Ok(());
        }
        self.mark_unsupported(spec.long);
        self.cfg
            .unsupported_values
            .push((spec.long.to_string(), value.unwrap_or("").to_string()));
        Ok(())
    }

    /// The value of a `Required` option (always present from the parsers).
    fn req<'a>(spec: &OptSpec, value: Option<&'a str>) -> &'a str {
        debug_assert!(spec.arg != ArgKind::Required || value.is_some());
        value.unwrap_or("")
    }

    /// Apply one occurrence (a command-line option or a config-file line).
    pub fn apply(&mut self, spec: &'static OptSpec, value: Option<&str>) -> Result<(), ConfigError> {
        let name = spec.long;
        let v = Self::req(spec, value);
        let cfg = &mut self.cfg;
        match name {
            // ---- listeners ----
            "listening-port" => cfg.listening_port = port(name, v)?,
            "tls-listening-port" => cfg.tls_listening_port = port(name, v)?,
            "alt-listening-port" => cfg.alt_listening_port = port(name, v)?,
            "alt-tls-listening-port" => cfg.alt_tls_listening_port = port(name, v)?,
            "listening-ip" => {
                let ip = parse_ip(v).ok_or_else(|| {
                    ConfigError::fatal(format!("CONFIG ERROR: --listening-ip: wrong IP address format: {v}"))
                })?;
                cfg.listening_ips.push(ip);
            }
            "relay-ip" => {
                let ip = parse_ip(v).ok_or_else(|| {
                    ConfigError::fatal(format!("CONFIG ERROR: --relay-ip: wrong IP address format: {v}"))
                })?;
                cfg.relay_ips.push(ip);
            }
            "external-ip" => self.external_ip(v)?,
            "min-port" => cfg.min_port = port(name, v)?,
            "max-port" => cfg.max_port = port(name, v)?,
            "no-udp" => cfg.no_udp = parse_bool(value)?,
            "no-tcp" => cfg.no_tcp = parse_bool(value)?,
            "no-tls" => cfg.no_tls = parse_bool(value)?,
            "dtls" => cfg.dtls = parse_bool(value)?,
            "no-dtls" => cfg.dtls = !parse_bool(value)?,
            "no-udp-relay" => cfg.no_udp_relay = parse_bool(value)?,
            "no-tcp-relay" => cfg.no_tcp_relay = parse_bool(value)?,

            // ---- UDP fast path ----
            "udp-recvmmsg" => cfg.udp_recvmmsg = parse_bool(value)?,
            "udp-recvmmsg-log" => cfg.udp_recvmmsg_log = parse_bool(value)?,
            "udp-sendmmsg-log" => cfg.udp_sendmmsg_log = parse_bool(value)?,
            "udp-gso" => cfg.udp_gso = parse_bool(value)?,
            // coturn ignores the value: any occurrence turns it on.
            "multiplex-peer" => cfg.multiplex_peer = true,
            "multiplex-peer-port" => {
                let p: u16 = number(name, v)?;
                if !(1..=65000).contains(&p) {
                    return Err(bad_value(name, v, "must be between 1 and 65000"));
                }
                cfg.multiplex_peer_port = p;
            }
            // ---- TLS ----
            "cert" => cfg.cert = Some(v.into()),
            "pkey" => cfg.pkey = Some(v.into()),
            "pkey-pwd" => cfg.pkey_pwd = Some(v.to_string()),
            "CA-file" => cfg.ca_file = Some(v.into()),
            "cipher-list" => cfg.cipher_list = Some(v.to_string()),
            "ec-curve-name" => cfg.ec_curve_name = Some(v.to_string()),
            "dh-file" => cfg.dh_file = Some(v.into()),
            "dh566" => cfg.dh566 = parse_bool(value)?,
            "dh1066" => cfg.dh1066 = parse_bool(value)?,
            "tlsv1" => cfg.tlsv1 = parse_bool(value)?,
            "tlsv1_1" => cfg.tlsv1_1 = parse_bool(value)?,
            "no-tlsv1_2" => cfg.no_tlsv1_2 = parse_bool(value)?,
            "raw-public-keys" => cfg.raw_public_keys = parse_bool(value)?,
            "listening-device" => cfg.listening_device = (!v.is_empty()).then(|| v.to_string()),
            "relay-device" => cfg.relay_device = (!v.is_empty()).then(|| v.to_string()),
            "tcp-proxy-port" => {
                let p = port(name, v)?;
                cfg.tcp_proxy_port = (p != 0).then_some(p);
            }
            "udp-coalesce-us" => {
                let n: u32 = number(name, v)?;
                if n > 10_000 {
                    return Err(bad_value(name, v, "must be between 0 and 10000 microseconds"));
                }
                cfg.udp_coalesce_us = n;
            }
            "multiplex-peer-max-peers" => {
                let n: u32 = number(name, v)?;
                if !(1..=65535).contains(&n) {
                    return Err(bad_value(name, v, "must be between 1 and 65535"));
                }
                cfg.multiplex_peer_max_peers = n;
            }

            // ---- threads ----
            "relay-threads" => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| bad_value(name, v, "must be an integer"))?;
                let n = if n > 128 {
                    self.warn("WARNING: max number of relay threads is 128.".to_string());
                    128
                } else {
                    n.max(0)
                };
                self.cfg.relay_threads = Some(usize::try_from(n).unwrap_or(0));
            }
            "cpus" => {
                let n: usize = number(name, v)?;
                cfg.cpus = if n == 0 { None } else { Some(n) };
            }
            "sock-buf-size" => cfg.sock_buf_size = number(name, v)?,

            // ---- authentication ----
            "lt-cred-mech" => {
                if parse_bool(value)? {
                    self.use_lt = true;
                    self.use_ltc = true;
                } else {
                    self.use_lt = false;
                }
            }
            "no-auth" => self.anon = parse_bool(value)?,
            "user" => cfg.users.push(v.to_string()),
            "realm" => cfg.realm = v.to_string(),
            "use-auth-secret" => {
                cfg.use_auth_secret = true;
                self.use_tltc = true;
                self.use_lt = true;
            }
            "static-auth-secret" => {
                if !v.is_empty() {
                    cfg.static_auth_secrets.push(v.to_string());
                }
                cfg.use_auth_secret = true;
                self.use_tltc = true;
                self.use_lt = true;
            }
            "rest-api-separator" => {
                if let Some(c) = v.chars().next() {
                    cfg.rest_api_separator = c;
                }
            }
            "rest-api-hmac" => {
                cfg.rest_api_hmac_sha256 = match v.to_ascii_lowercase().as_str() {
                    "sha1" | "sha-1" => false,
                    "sha256" | "sha-256" => true,
                    _ => return Err(bad_value(name, v, "must be sha1 or sha256")),
                };
            }
            "rfc8489-auth" => cfg.rfc8489_auth = parse_bool(value)?,
            "stale-nonce" => cfg.stale_nonce = number_or(name, value, 600)?,
            "stateless-nonce" => cfg.stateless_nonce = parse_bool(value)?,
            "stateless-nonce-secret" => {
                if v.is_empty() {
                    cfg.stateless_nonce_secret = None;
                } else {
                    cfg.stateless_nonce_secret = Some(v.to_string());
                    cfg.stateless_nonce = true;
                }
            }

            // ---- user database ----
            "userdb" | "db" => cfg.userdb = Some(crate::userdb::DbSpec::Sqlite(v.into())),
            "psql-userdb" | "sql-userdb" => cfg.userdb = Some(crate::userdb::DbSpec::Postgres(v.to_string())),
            "mysql-userdb" => cfg.userdb = Some(crate::userdb::DbSpec::Mysql(v.to_string())),
            "redis-userdb" => cfg.userdb = Some(crate::userdb::DbSpec::Redis(v.to_string())),
            "redis-statsdb" => cfg.redis_statsdb = (!v.is_empty()).then(|| v.to_string()),
            "secret-key-file" => cfg.secret_key_file = (!v.is_empty()).then(|| v.into()),
            // coturn ignores the values: any occurrence turns them on.
            "no-auth-pings" => cfg.no_auth_pings = true,
            "no-dynamic-ip-list" => cfg.no_dynamic_ip_list = true,
            "no-dynamic-realms" => cfg.no_dynamic_realms = true,

            // ---- lifetimes ----
            "max-allocate-lifetime" => cfg.max_allocate_lifetime = number_or(name, value, 3600)?,
            "channel-lifetime" => cfg.channel_lifetime = number_or(name, value, 600)?,
            "permission-lifetime" => cfg.permission_lifetime = number_or(name, value, 300)?,

            // ---- peers ----
            "allow-loopback-peers" => cfg.allow_loopback_peers = parse_bool(value)?,
            "no-multicast-peers" => cfg.no_multicast_peers = parse_bool(value)?,
            "allowed-peer-ip" | "denied-peer-ip" => {
                if !valid_peer_range(v) {
                    return Err(ConfigError::fatal(format!(
                        "CONFIG ERROR: --{name}: wrong IP address or range format: '{v}' \
                         (expected <ip> or <ip>-<ip> of one address family, no CIDR)"
                    )));
                }
                let list = if name == "allowed-peer-ip" { &mut cfg.allowed_peer_ips } else { &mut cfg.denied_peer_ips };
                let entry = v.trim().to_string();
                if !list.contains(&entry) {
                    list.push(entry);
                }
            }

            // ---- STUN behaviour ----
            "fingerprint" => cfg.fingerprint = parse_bool(value)?,
            "software-attribute" => cfg.software_attribute = parse_bool(value)?,
            "no-software-attribute" | "prod" => cfg.software_attribute = !parse_bool(value)?,
            "stun-backward-compatibility" => cfg.stun_backward_compatibility = parse_bool(value)?,
            "rfc3489-compatibility" => cfg.rfc3489_compatibility = parse_bool(value)?,
            // coturn turns RFC 5780 on for any occurrence, whatever the value.
            "rfc5780" => cfg.rfc5780 = true,
            "alternate-server" => cfg.alternate_servers.push(server_addr(name, v, 3478)?),
            "tls-alternate-server" => cfg.tls_alternate_servers.push(server_addr(name, v, 5349)?),
            "udp-alternate-server" => cfg.udp_alternate_servers.push(server_addr(name, v, 3478)?),
            "tcp-alternate-server" => cfg.tcp_alternate_servers.push(server_addr(name, v, 3478)?),
            "aux-server" => cfg.aux_servers.push(server_addr(name, v, 3478)?),
            "udp-self-balance" => cfg.udp_self_balance = parse_bool(value)?,
            "rfc5766-channel-numbers" => cfg.rfc5766_channel_numbers = parse_bool(value)?,
            "drop-invalid-packets" => cfg.drop_invalid_packets = parse_bool(value)?,
            "drop-invalid-packets-log" => cfg.drop_invalid_packets_log = parse_bool(value)?,

            // ---- logging and process ----
            "log-file" => {
                cfg.log_file = match v {
                    "" => LogTarget::Auto,
                    "stdout" | "-" => LogTarget::Stdout,
                    "syslog" => LogTarget::Syslog,
                    path => LogTarget::File(path.into()),
                }
            }
            "simple-log" => cfg.simple_log = parse_bool(value)?,
            "no-stdout-log" => cfg.no_stdout_log = parse_bool(value)?,
            "syslog" => cfg.syslog = parse_bool(value)?,
            "verbose" => {
                if !cfg.very_verbose {
                    cfg.verbose = parse_bool(value)?;
                } else {
                    parse_bool(value)?;
                }
            }
            "Verbose" => {
                if parse_bool(value)? {
                    cfg.very_verbose = true;
                    cfg.verbose = true;
                }
            }
            "log-min-level" => {
                cfg.log_min_level = match v.trim().to_ascii_lowercase().as_str() {
                    "debug" => LogLevel::Debug,
                    "info" => LogLevel::Info,
                    "warning" | "warn" => LogLevel::Warning,
                    "error" => LogLevel::Error,
                    _ => return Err(bad_value(name, v, "must be debug, info, warning or error")),
                }
            }
            "new-log-timestamp" => cfg.new_log_timestamp = parse_bool(value)?,
            "new-log-timestamp-format" => {
                if !v.is_empty() {
                    cfg.new_log_timestamp_format = v.to_string();
                }
            }
            "pidfile" => cfg.pidfile = if v.is_empty() { None } else { Some(v.into()) },
            "daemon" => cfg.daemon = parse_bool(value)?,
            "no-cli" => {
                parse_bool(value)?;
            }
            "cli" => {
                self.cli = parse_bool(value)?;
                cfg.cli = self.cli;
            }
            "cli-password" => {
                self.cli_password_empty = v.is_empty();
                cfg.cli_password = v.to_string();
            }
            "cli-ip" => {
                cfg.cli_ip = parse_ip(v).ok_or_else(|| bad_value(name, v, "must be an IP address"))?;
            }
            "cli-port" => {
                cfg.cli_port = port(name, v)?;
            }
            "cli-max-output-sessions" => {
                cfg.cli_max_output_sessions = u32::try_from(atoi(v).max(0)).unwrap_or(u32::MAX);
            }
            // coturn: any occurrence enables the exporter, whatever the value.
            "prometheus" => {
                cfg.prometheus = true;
            }
            "prometheus-port" => {
                cfg.prometheus_port = port(name, v)?;
            }
            "prometheus-address" => {
                cfg.prometheus_address = Some(parse_ip(v).ok_or_else(|| bad_value(name, v, "must be an IP address"))?);
            }
            "prometheus-path" => {
                cfg.prometheus_path = v.to_string();
            }
            "prometheus-username-labels" => {
                cfg.prometheus_username_labels = true;
            }
            "prometheus-tls" => {
                cfg.prometheus_tls = parse_bool(value)?;
                if cfg.prometheus_tls {
                    cfg.prometheus = true;
                }
            }
            "prometheus-cert" => {
                cfg.prometheus_cert = Some(v.into());
            }
            "prometheus-key" => {
                cfg.prometheus_key = Some(v.into());
            }
            "web-admin" => {
                cfg.web_admin = parse_bool(value)?;
            }
            "web-admin-ip" => {
                cfg.web_admin_ip = parse_ip(v).ok_or_else(|| bad_value(name, v, "must be an IP address"))?;
            }
            "web-admin-port" => {
                cfg.web_admin_port = port(name, v)?;
            }
            "web-admin-listen-on-workers" => {
                cfg.web_admin_listen_on_workers = parse_bool(value)?;
            }
            "acme-redirect" => {
                cfg.acme_redirect = v.to_string();
            }
            "respond-http-unsupported" => {
                cfg.respond_http_unsupported = parse_bool(value)?;
            }
            "drain-min-allocations" => {
                cfg.drain_min_allocations = u32::try_from(atoi(v).max(0)).unwrap_or(u32::MAX);
            }
            "syslog-facility" => {
                cfg.syslog_facility = (!v.is_empty()).then(|| v.to_string());
            }
            "mongo-userdb" => cfg.mongo_userdb = Some(v.to_string()),
            "log-binding" => {
                cfg.log_binding = parse_bool(value)?;
            }
            "mobility" => {
                cfg.mobility = parse_bool(value)?;
            }
            "oauth" => {
                cfg.oauth = parse_bool(value)?;
            }
            "server-name" => {
                cfg.server_name = Some(v.to_string());
            }
            // coturn resolves the names while reading the options: an unknown
            // one is fatal before anything is opened.
            "proc-user" => {
                if !v.is_empty() && crate::process::lookup_user(v).is_none() {
                    return Err(ConfigError::fatal(format!("Unknown user name: {v}")));
                }
                cfg.proc_user = (!v.is_empty()).then(|| v.to_string());
            }
            "proc-group" => {
                if !v.is_empty() && crate::process::lookup_group(v).is_none() {
                    return Err(ConfigError::fatal(format!("Unknown group name: {v}")));
                }
                cfg.proc_group = (!v.is_empty()).then(|| v.to_string());
            }

            // ---- parsed into typed fields, feature not implemented yet ----
            "stun-only" => {
                cfg.stun_only = parse_bool(value)?;
            }
            "no-stun" => {
                cfg.no_stun = parse_bool(value)?;
            }
            "secure-stun" => {
                cfg.secure_stun = parse_bool(value)?;
            }
            "include-reason-string" => {
                cfg.include_reason_string = parse_bool(value)?;
            }
            "allocation-default-address-family" => {
                match v.trim_start_matches('=') {
                    "ipv4" => cfg.allocation_default_address_family = AddressFamilyDefault::Ipv4,
                    "ipv6" => cfg.allocation_default_address_family = AddressFamilyDefault::Ipv6,
                    "keep" => cfg.allocation_default_address_family = AddressFamilyDefault::Keep,
                    _ => {
                        return Err(bad_value(name, v, "must be ipv4, ipv6 or keep"));
                    }
                }
            }
            "keep-address-family" => {
                if parse_bool(value)? {
                    cfg.allocation_default_address_family = AddressFamilyDefault::Keep;
                }
            }
            "max-allocate-timeout" => {
                cfg.max_allocate_timeout = u32::try_from(atoi(v).max(0)).unwrap_or(u32::MAX);
            }
            "user-quota" => {
                cfg.user_quota = u32::try_from(atoi(v).max(0)).unwrap_or(u32::MAX);
            }
            "total-quota" => {
                cfg.total_quota = u32::try_from(atoi(v).max(0)).unwrap_or(u32::MAX);
            }
            "max-bps" => {
                cfg.max_bps = u64::try_from(atoi(v).max(0)).unwrap_or(0);
            }
            "bps-capacity" => {
                cfg.bps_capacity = u64::try_from(atoi(v).max(0)).unwrap_or(0);
            }
            "server-relay" => {
                self.server_relay = parse_bool(value)?;
                cfg.server_relay = self.server_relay;
            }
            "unauthorized-ratelimit" => {
                cfg.unauthorized_ratelimit = parse_bool(value)?;
            }
            "unauthorized-ratelimit-rps" => {
                // coturn: a value below 1 keeps the default.
                let n = atoi(v);
                if n > 0 {
                    cfg.unauthorized_ratelimit_rps = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "check-origin-consistency" => {
                cfg.check_origin_consistency = parse_bool(value)?;
            }

            // ---- legacy keys ----
            "no-stun-backward-compatibility" => {
                parse_bool(value)?;
                self.warn(
                    "Option no-stun-backward-compatibility is obsolete (removed in coturn 4.7.0): \
                     MAPPED-ADDRESS is only sent with --stun-backward-compatibility. Ignored."
                        .to_string(),
                );
            }
            "no-tlsv1" | "no-tlsv1_1" => {
                parse_bool(value)?;
                let which = if name == "no-tlsv1" { "1.0" } else { "1.1" };
                self.warn(format!(
                    "Option {name} is obsolete (removed in coturn 4.7.0): TLS {which} is disabled \
                     unless explicitly allowed. Ignored."
                ));
            }
            "secret-ts-exp-time" => self.warn(
                "Option secret-ts-exp-time is obsolete: the TURN REST API username carries its own \
                 expiry time. Ignored."
                    .to_string(),
            ),
            "no-rfc5780" | "response-origin-only-with-rfc5780" | "no-sslv2" | "no-sslv3" => {
                parse_bool(value)?;
            }
            "ne" => {}

            // ---- command-line-only rows: handled before parsing ----
            "c" | "n" | "h" | "version" => {}

            _ => match spec.support {
                Support::No => {
                    if spec.arg == ArgKind::OptionalBool {
                        parse_bool(value)?;
                    }
                    self.unsupported(spec, value)?;
                }
                Support::Yes | Support::Legacy => {
                    // Every implemented or legacy row has an arm above; an
                    // unhandled one is a table/parser mismatch, treat it as
                    // not supported rather than silently dropping it.
                    self.unsupported(spec, value)?;
                }
            },
        }
        Ok(())
    }

    fn external_ip(&mut self, v: &str) -> Result<(), ConfigError> {
        let wrong = |s: &str| ConfigError::fatal(format!("-X : Wrong address format: {s}"));
        match v.split_once('/') {
            Some((public, private)) => {
                let p = parse_ip(public).ok_or_else(|| wrong(public))?;
                let q = parse_ip(private).ok_or_else(|| wrong(private))?;
                if !self.cfg.external_ips.contains(&(p, Some(q))) {
                    self.cfg.external_ips.push((p, Some(q)));
                }
                // coturn whitelists the private part of a mapping as a peer.
                let priv_s = q.to_string();
                if !self.cfg.allowed_peer_ips.contains(&priv_s) {
                    self.cfg.allowed_peer_ips.push(priv_s);
                }
            }
            None => {
                let p = parse_ip(v).ok_or_else(|| wrong(v))?;
                match self.external_single {
                    Some(prev) if prev == p => {}
                    // coturn logs this as an error, keeps the first address
                    // and carries on.
                    Some(_) => {
                        self.warn("You cannot define external IP more than once in the configuration".to_string())
                    }
                    None => {
                        self.external_single = Some(p);
                        self.cfg.external_ips.push((p, None));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_words() {
        for t in [None, Some(""), Some("1"), Some("9"), Some("y"), Some("Yes"), Some("t"), Some("True"),
                  Some("on"), Some("On"), Some("ON"), Some("yikes"), Some("2x")] {
            assert_eq!(parse_bool(t), Ok(true), "{t:?}");
        }
        for f in [Some("0"), Some("n"), Some("No"), Some("f"), Some("false"), Some("FALSE"), Some("off"),
                  Some("Off"), Some("OFF"), Some("nope")] {
            assert_eq!(parse_bool(f), Ok(false), "{f:?}");
        }
        for bad in ["oN", "of", "maybe", "enable", "-1", " on"] {
            let e = parse_bool(Some(bad));
            assert!(e.as_ref().is_err_and(|e| e.exit_code == 255 && e.message.contains("Unknown boolean value")), "{bad}");
        }
    }

    #[test]
    fn atoi_like() {
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("  -5"), -5);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi(""), 0);
    }

    #[test]
    fn peer_ranges() {
        assert!(valid_peer_range("10.0.0.0-10.255.255.255"));
        assert!(valid_peer_range("10.0.0.1"));
        assert!(valid_peer_range("::1"));
        assert!(valid_peer_range("fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert!(valid_peer_range(" 172.16.0.0 - 172.31.255.255 "));
        assert!(!valid_peer_range("192.168.0.0/16"));
        assert!(!valid_peer_range("10.0.0.9-10.0.0.1"));
        assert!(!valid_peer_range("10.0.0.1-::1"));
        assert!(!valid_peer_range("example.org"));
        assert!(!valid_peer_range(""));
        assert!(!valid_peer_range("1.2.3.4-"));
    }
}
