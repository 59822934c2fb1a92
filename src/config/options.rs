//! The single option table. It drives the command-line parser, the
//! `turnserver.conf` reader (a file line `key value` is handled exactly like
//! `--key=value`), the `-h` text and the example configuration file.
//!
//! Rows are kept in coturn's order (its long-option table / sample config),
//! with options added by newer coturn releases placed next to their relatives.

/// How an option takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// Never takes a value (`-n`, `-h`).
    None,
    /// Needs a value: `--name value`, `--name=value`, `-x value`, `-xvalue`.
    Required,
    /// A boolean flag: bare = true; on the command line a value only with `=`.
    OptionalBool,
    /// An optional non-boolean value (only with `=` on the command line);
    /// bare means the option's documented default (`--stale-nonce` = 600).
    OptionalValue,
    /// Optional value that is ignored: any occurrence turns the feature on
    /// (`--prometheus=false` still enables it, as in coturn).
    OptionalIgnored,
}

/// Whether the feature behind an option works in this release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Parsed and acted upon.
    Yes,
    /// Accepted (value validated where cheap) but the feature is not there yet;
    /// recorded in `Config::unsupported`.
    No,
    /// An old coturn key kept so existing configs still start; a no-op
    /// (possibly with a warning), never reported as unsupported.
    Legacy,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    /// Long name without the leading `--`; also the config-file key.
    pub long: &'static str,
    /// Short form, if any.
    pub short: Option<char>,
    /// Value handling of the long form (and of the short form, see `short_arg`).
    pub arg: ArgKind,
    /// The short form needs a value even though the long one is optional
    /// (`-K`, as in coturn's getopt string).
    pub short_needs_value: bool,
    /// Repeating the option accumulates values instead of replacing.
    pub list: bool,
    /// `--long` is accepted on the command line.
    pub cli_long: bool,
    /// The long name is accepted as a key in the configuration file.
    pub config_key: bool,
    pub support: Support,
    /// Placeholder for the value in the usage text (`<port>`), "" for flags.
    pub meta: &'static str,
    /// One-line description for `-h`.
    pub help: &'static str,
}

impl OptSpec {
    /// Whether the short form consumes a value.
    pub fn short_takes_value(&self) -> bool {
        self.short_needs_value || self.arg == ArgKind::Required
    }
}

use ArgKind::{None as N, OptionalBool as B, OptionalIgnored as I, OptionalValue as V, Required as R};
use Support::{Legacy as L, Yes as Y};

/// Normal row: long form on the CLI and as a config key.
const fn o(
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    list: bool,
    support: Support,
    meta: &'static str,
    help: &'static str,
) -> OptSpec {
    OptSpec {
        long,
        short,
        arg,
        short_needs_value: false,
        list,
        cli_long: true,
        config_key: true,
        support,
        meta,
        help,
    }
}

/// Command-line-only row (no config key).
const fn cli_only(
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    cli_long: bool,
    meta: &'static str,
    help: &'static str,
) -> OptSpec {
    OptSpec {
        long,
        short,
        arg,
        short_needs_value: false,
        list: false,
        cli_long,
        config_key: false,
        support: Y,
        meta,
        help,
    }
}

/// Config-file-only legacy row (the long form was removed from coturn's CLI).
const fn file_only(long: &'static str, meta: &'static str, help: &'static str) -> OptSpec {
    OptSpec {
        long,
        short: None,
        arg: B,
        short_needs_value: false,
        list: false,
        cli_long: false,
        config_key: true,
        support: L,
        meta,
        help,
    }
}

const fn k_row() -> OptSpec {
    OptSpec {
        long: "keep-address-family",
        short: Some('K'),
        arg: B,
        short_needs_value: true,
        list: false,
        cli_long: true,
        config_key: true,
        support: Y,
        meta: "",
        help: "Deprecated alias of --allocation-default-address-family=keep (-K needs a value: -K 1).",
    }
}

/// Every option coturn's `turnserver` knows (4.6.1 through 4.17), plus the
/// command-line-only `-c`, `-n`, `-h` and `--version`.
pub static OPTIONS: &[OptSpec] = &[
    // ---- listeners, ports, transports ----
    o("listening-device", Some('d'), R, false, Y, "<device>", "Bind the listener sockets to this network interface (Linux, needs root)."),
    o("listening-port", Some('p'), R, false, Y, "<port>", "UDP and TCP listener port for STUN/TURN. Default 3478."),
    o("tls-listening-port", None, R, false, Y, "<port>", "TLS (and DTLS) listener port; plain TCP/UDP is accepted there too. Default 5349."),
    o("alt-listening-port", None, R, false, Y, "<port>", "Alternate listener port for RFC 5780 CHANGE-REQUEST. Default 0 = listening port + 1."),
    o("alt-tls-listening-port", None, R, false, Y, "<port>", "Alternate TLS/DTLS listener port. Default 0 = TLS listening port + 1."),
    o("tcp-proxy-port", None, R, false, Y, "<port>", "Extra TCP port expecting a HAProxy PROXY-protocol header from a load balancer."),
    o("listening-ip", Some('L'), R, true, Y, "<ip>", "Listener address; repeat for several. Default: every local IPv4 and IPv6 address."),
    o("aux-server", None, R, true, Y, "<ip:port>", "Extra listener endpoint (ip:port or [ipv6]:port) without RFC 5780 support; repeatable."),
    o("udp-self-balance", None, B, false, Y, "", "Spread UDP Allocate requests over the aux servers with 300 ALTERNATE-SERVER."),
    o("relay-device", Some('i'), R, false, Y, "<device>", "Bind the relay sockets to this network interface."),
    o("relay-ip", Some('E'), R, true, Y, "<ip>", "Relay address; repeat for several. Default: the listener addresses, else automatic."),
    o("external-ip", Some('X'), R, true, Y, "<public[/private]>", "Public address behind NAT: `ip` (once) or `public/private` pairs (repeatable)."),
    o("relay-threads", Some('m'), R, false, Y, "<n>", "Number of relay threads. Default: number of CPUs; 0 = a single thread."),
    o("cpus", None, R, false, Y, "<n>", "Override the detected CPU count (useful in containers)."),
    o("sock-buf-size", None, R, false, Y, "<bytes>", "Socket receive/send buffer size for UDP listener and client sockets. Default 2097152."),
    o("udp-recvmmsg", None, B, false, Y, "", "Batch-receive UDP datagrams with recvmmsg. Default on (Linux); =false turns it off."),
    o("udp-recvmmsg-log", None, B, false, Y, "", "Log recvmmsg batching statistics every 10 seconds."),
    o("udp-sendmmsg-log", None, B, false, Y, "", "Log sendmmsg/GSO batching statistics every 10 seconds."),
    o("udp-gso", None, B, false, Y, "", "Use UDP segmentation offload (UDP_SEGMENT) for egress batches. Default on where the kernel supports it; =false turns it off."),
    o("udp-coalesce-us", None, R, false, Y, "<microseconds>", "Longest wait a relay thread takes after a thin round so busy trickles of datagrams are handled in batches (ours; not in coturn). Default 1000; 0 = off."),
    o("multiplex-peer", None, I, false, Y, "", "One shared relay socket pair per thread, demultiplexed by peer address (value ignored)."),
    o("multiplex-peer-port", None, R, false, Y, "<port>", "Base port of the shared multiplex relay sockets. Default 3480."),
    o("multiplex-peer-max-peers", None, R, false, Y, "<n>", "Peer endpoints allowed per allocation in multiplex mode. Default 256."),
    o("min-port", None, R, false, Y, "<port>", "Lowest relay port. Default 49152."),
    o("max-port", None, R, false, Y, "<port>", "Highest relay port. Default 65535."),
    // ---- authentication ----
    o("lt-cred-mech", Some('a'), B, false, Y, "", "Use the long-term credential mechanism (username/password)."),
    o("no-auth", Some('z'), B, false, Y, "", "Allow anonymous TURN access (the default when no credentials are configured)."),
    o("user", Some('u'), R, true, Y, "<name:password>", "A long-term user: name:password or name:0x<32 hex digits key>; repeatable."),
    o("userdb", Some('b'), R, false, Y, "<file>", "SQLite user database file."),
    o("db", Some('b'), R, false, Y, "<file>", "Same as --userdb."),
    o("psql-userdb", Some('e'), R, false, Y, "<conninfo>", "PostgreSQL user database connection string."),
    o("sql-userdb", Some('e'), R, false, Y, "<conninfo>", "Same as --psql-userdb."),
    o("mysql-userdb", Some('M'), R, false, Y, "<conninfo>", "MySQL user database connection string."),
    o("secret-key-file", None, R, false, Y, "<file>", "AES key file used to decrypt an encrypted MySQL password."),
    o("mongo-userdb", Some('J'), R, false, Y, "<uri>", "MongoDB user database URI."),
    o("redis-userdb", Some('N'), R, false, Y, "<conninfo>", "Redis user database connection string."),
    o("redis-statsdb", Some('O'), R, false, Y, "<conninfo>", "Redis database for allocation status and traffic events."),
    o("prometheus", None, I, false, Y, "", "Enable the Prometheus metrics exporter (value ignored)."),
    o("prometheus-port", None, R, false, Y, "<port>", "Prometheus exporter port. Default 9641."),
    o("prometheus-address", None, R, false, Y, "<ip>", "Prometheus exporter bind address. Default: any."),
    o("prometheus-path", None, R, false, Y, "<path>", "Prometheus scrape path. Default /metrics."),
    o("prometheus-username-labels", None, I, false, Y, "", "Add a user label to traffic metrics (value ignored)."),
    o("prometheus-tls", None, B, false, Y, "", "Serve the Prometheus exporter over HTTPS (implies --prometheus)."),
    o("prometheus-cert", None, R, false, Y, "<file>", "Certificate for the HTTPS exporter. Default: --cert."),
    o("prometheus-key", None, R, false, Y, "<file>", "Private key for the HTTPS exporter. Default: --pkey."),
    o("use-auth-secret", None, I, false, Y, "", "TURN REST API: time-limited credentials from a shared secret (value ignored)."),
    o("static-auth-secret", None, R, true, Y, "<secret>", "Shared secret for the TURN REST API; repeatable; implies --use-auth-secret."),
    o("no-auth-pings", None, I, false, Y, "", "Do not ping the dynamic-secret database periodically (value ignored)."),
    o("no-dynamic-ip-list", None, I, false, Y, "", "Do not load allowed/denied peer ranges from the database (value ignored)."),
    o("no-dynamic-realms", None, I, false, Y, "", "Do not load origin/realm settings from the database (value ignored)."),
    o("realm", Some('r'), R, false, Y, "<realm>", "Default realm. Default: empty (the host's domain name)."),
    o("server-name", None, R, false, Y, "<name>", "Server name for third-party authorization (oAuth). Default: the realm."),
    o("oauth", None, B, false, Y, "", "Enable RFC 7635 third-party (oAuth) authorization."),
    o("rest-api-separator", Some('C'), R, false, Y, "<char>", "Separator between timestamp and user id in REST API usernames. Default ':'."),
    o("rest-api-hmac", None, R, false, Y, "<sha1|sha256>", "HMAC of TURN REST API passwords: sha1 (coturn's, default) or sha256 = base64(HMAC-SHA256(secret, username)) (ours; coturn issue #2062)."),
    o("rfc8489-auth", None, B, false, Y, "", "Offer RFC 8489 security features in 401 challenges: nonce cookie, PASSWORD-ALGORITHMS SHA-256/MD5, USERHASH (ours; not in coturn). Default off."),
    o("secure-stun", None, B, false, Y, "", "Require authentication for STUN Binding requests."),
    o("stale-nonce", None, V, false, Y, "[=<seconds>]", "Nonce lifetime in seconds; 0 = never expires. Default (and bare flag) 600."),
    o("stateless-nonce", None, B, false, Y, "", "Stateless HMAC-protected nonces (no per-client state before authentication). Default on."),
    o("stateless-nonce-secret", None, R, false, Y, "<secret>", "Key for stateless nonces, shared across a fleet. Default: random per process."),
    o("unauthorized-ratelimit", None, B, false, Y, "", "Limit the rate of 401 responses per source IP (UDP)."),
    o("unauthorized-ratelimit-rps", None, R, false, Y, "<n>", "Allowed 401 responses per source IP per second. Default 10."),
    o("check-origin-consistency", None, B, false, Y, "", "All requests of a session must carry the same ORIGIN."),
    // ---- quotas, bandwidth, timers ----
    o("user-quota", Some('q'), R, false, Y, "<n>", "Concurrent allocations per user. Default 0 = unlimited."),
    o("total-quota", Some('Q'), R, false, Y, "<n>", "Concurrent allocations for the whole server. Default 0 = unlimited."),
    o("max-bps", Some('s'), R, false, Y, "<bytes/s>", "Per-session bandwidth limit in bytes per second. Default 0 = unlimited."),
    o("bps-capacity", Some('B'), R, false, Y, "<bytes/s>", "Whole-server bandwidth budget in bytes per second; needs --max-bps."),
    o("max-allocate-lifetime", None, V, false, Y, "[=<seconds>]", "Longest allocation lifetime granted. Default 3600."),
    o("channel-lifetime", None, V, false, Y, "[=<seconds>]", "Channel binding lifetime. Default 600."),
    o("permission-lifetime", None, V, false, Y, "[=<seconds>]", "Permission lifetime. Default 300."),
    o("max-allocate-timeout", None, R, false, Y, "<seconds>", "How long a new session may live without an allocation. Default 60."),
    o("drain-min-allocations", None, R, false, Y, "<n>", "In drain mode, exit once allocations drop to this number. Default 0."),
    // ---- logging and verbosity ----
    o("verbose", Some('v'), B, false, Y, "", "Verbose logging: per-session lines."),
    o("Verbose", Some('V'), B, false, Y, "", "Very verbose (debug) logging."),
    o("daemon", Some('o'), B, false, Y, "", "Run in the background as a daemon."),
    // ---- STUN attributes ----
    o("no-software-attribute", None, B, false, Y, "", "Deprecated: do not send the SOFTWARE attribute (the default)."),
    o("software-attribute", None, B, false, Y, "", "Send the SOFTWARE attribute in responses."),
    o("prod", None, B, false, L, "", "Old alias of --no-software-attribute; accepted and ignored."),
    o("fingerprint", Some('f'), B, false, Y, "", "Always add FINGERPRINT to responses (otherwise only when the request had one)."),
    // ---- transports on/off ----
    o("no-udp", None, B, false, Y, "", "Do not start UDP client listeners."),
    o("no-tcp", None, B, false, Y, "", "Do not start TCP client listeners."),
    o("no-tls", None, B, false, Y, "", "Do not start TLS client listeners."),
    o("no-dtls", None, B, false, Y, "", "Deprecated: do not start DTLS listeners (the default); --no-dtls=false enables them."),
    o("dtls", None, B, false, Y, "", "Start DTLS client listeners."),
    o("no-udp-relay", None, B, false, Y, "", "Refuse UDP relay endpoints (only RFC 6062 TCP relays)."),
    o("no-tcp-relay", None, B, false, Y, "", "Refuse RFC 6062 TCP relay endpoints."),
    // ---- STUN/TURN behaviour ----
    o("stun-only", Some('S'), B, false, Y, "", "STUN only: ignore TURN requests."),
    o("no-stun", None, B, false, Y, "", "TURN only: ignore STUN Binding requests."),
    // ---- TLS ----
    o("cert", None, R, false, Y, "<file>", "TLS certificate (chain) in PEM. Default turn_server_cert.pem."),
    o("raw-public-keys", None, B, false, Y, "", "Use RFC 7250 raw public keys for TLS (to clients that ask; others get the certificate)."),
    o("pkey", None, R, false, Y, "<file>", "TLS private key in PEM. Default turn_server_pkey.pem."),
    o("pkey-pwd", None, R, false, Y, "<password>", "Passphrase of the private key."),
    // ---- logging ----
    o("log-file", Some('l'), R, false, Y, "<path>", "Log file; `stdout` or `-` for standard output, `syslog` for syslog."),
    o("no-stdout-log", None, B, false, Y, "", "Do not copy log lines to standard output."),
    o("syslog", None, B, false, Y, "", "Send all log output to syslog."),
    o("syslog-facility", None, R, false, Y, "<facility>", "Syslog facility, e.g. LOG_LOCAL1."),
    o("simple-log", None, B, false, Y, "", "Use the log file name as given: no date suffix, no daily rollover."),
    o("new-log-timestamp", None, B, false, Y, "", "ISO-8601 timestamps on log lines. Default on."),
    o("new-log-timestamp-format", None, R, false, Y, "<format>", "strftime format of log timestamps (%f = milliseconds). Default %FT%T.%f%z."),
    o("log-min-level", None, R, false, Y, "<level>", "Lowest level logged: debug, info, warning or error. Default debug."),
    o("log-binding", None, B, false, Y, "", "Log STUN Binding requests in verbose mode."),
    o("drop-invalid-packets", None, B, false, Y, "", "Discard datagrams that are neither STUN nor ChannelData early. Default on."),
    o("drop-invalid-packets-log", None, B, false, Y, "", "Log the discarded invalid datagrams."),
    // ---- redirection ----
    o("alternate-server", None, R, true, Y, "<ip[:port]>", "Redirect Allocate requests (UDP/TCP) to this server with 300; repeatable."),
    o("tls-alternate-server", None, R, true, Y, "<ip[:port]>", "Same for TLS/DTLS; repeatable."),
    o("udp-alternate-server", None, R, true, Y, "<ip[:port]>", "Alternate servers for UDP only; repeatable."),
    o("tcp-alternate-server", None, R, true, Y, "<ip[:port]>", "Alternate servers for TCP only; repeatable."),
    // ---- peers ----
    o("no-multicast-peers", None, B, false, Y, "", "Refuse multicast peer addresses."),
    o("allow-loopback-peers", None, B, false, Y, "", "Allow loopback peer addresses (unsafe in production)."),
    o("allowed-peer-ip", None, R, true, Y, "<ip[-ip]>", "Peer address or range always allowed (beats any deny); repeatable."),
    o("denied-peer-ip", None, R, true, Y, "<ip[-ip]>", "Peer address or range refused; repeatable."),
    // ---- TLS details ----
    o("cipher-list", None, R, false, Y, "<ciphers>", "OpenSSL cipher list. Default DEFAULT."),
    // ---- process ----
    o("pidfile", None, R, false, Y, "<file>", "PID file; empty value = none. Default /var/run/turnserver.pid."),
    o("CA-file", None, R, false, Y, "<file>", "CA bundle used to verify client certificates."),
    o("dh-file", None, R, false, Y, "<file>", "Diffie-Hellman parameters in PEM."),
    o("proc-user", None, R, false, Y, "<user>", "Switch to this user after binding sockets."),
    o("proc-group", None, R, false, Y, "<group>", "Switch to this group after binding sockets."),
    o("mobility", None, B, false, Y, "", "RFC 8016 mobility (MOBILITY-TICKET)."),
    // ---- management ----
    o("cli", None, B, false, Y, "", "Enable the telnet management CLI."),
    o("no-cli", None, B, false, Y, "", "Disable the telnet management CLI (the default)."),
    o("cli-ip", None, R, false, Y, "<ip>", "CLI listener address. Default 127.0.0.1."),
    o("cli-port", None, R, false, Y, "<port>", "CLI listener port. Default 5766."),
    o("cli-password", None, R, false, Y, "<password>", "CLI password, plain or $5$ hash; empty disables the CLI."),
    o("web-admin", None, B, false, Y, "", "Enable the HTTPS web administration interface."),
    o("web-admin-ip", None, R, false, Y, "<ip>", "Web admin listener address. Default 127.0.0.1."),
    o("web-admin-port", None, R, false, Y, "<port>", "Web admin listener port. Default 8080."),
    o("web-admin-listen-on-workers", None, B, false, Y, "", "Also serve the web admin on the TURN TCP ports."),
    o("server-relay", None, B, false, Y, "", "No permission checks on relay ingress (non-standard, dangerous)."),
    o("cli-max-output-sessions", None, R, false, Y, "<n>", "Maximum sessions printed by the CLI `ps` command. Default 256."),
    o("ec-curve-name", None, R, false, Y, "<curve>", "ECDH curve name for TLS. Default automatic."),
    o("dh566", None, B, false, Y, "", "Use the built-in 566-bit DH parameters."),
    o("dh1066", None, B, false, Y, "", "Use the built-in 1066-bit DH parameters."),
    o("ne", None, R, false, L, "<1|2|3>", "Old network engine selector; accepted and ignored."),
    file_only("no-tlsv1", "", "Old: disable TLS 1.0 (already off by default). Config-file only; ignored."),
    file_only("no-tlsv1_1", "", "Old: disable TLS 1.1 (already off by default). Config-file only; ignored."),
    o("tlsv1", None, B, false, Y, "", "Allow TLS 1.0 as the minimum version."),
    o("tlsv1_1", None, B, false, Y, "", "Allow TLS 1.1 as the minimum version."),
    o("no-tlsv1_2", None, B, false, Y, "", "Require TLS 1.3."),
    o("no-sslv2", None, B, false, L, "", "Old: SSLv2 is never used; accepted and ignored."),
    o("no-sslv3", None, B, false, L, "", "Old: SSLv3 is never used; accepted and ignored."),
    k_row(),
    o("allocation-default-address-family", Some('A'), R, false, Y, "<ipv4|ipv6|keep>", "Relay family when the client requests none. Default ipv4."),
    o("acme-redirect", None, R, false, Y, "<url>", "Redirect ACME http-01 challenges on TURN TCP ports to <url><token>."),
    o("rfc5780", None, I, false, Y, "", "Enable RFC 5780 NAT behaviour discovery (value ignored)."),
    o("no-rfc5780", None, B, false, L, "", "Old: RFC 5780 is off unless --rfc5780; accepted and ignored."),
    o("stun-backward-compatibility", None, B, false, Y, "", "Also send MAPPED-ADDRESS in Binding responses."),
    o("no-stun-backward-compatibility", None, B, false, L, "", "Old: MAPPED-ADDRESS is off by default now; accepted and ignored."),
    o("response-origin-only-with-rfc5780", None, B, false, L, "", "Old: RESPONSE-ORIGIN is only sent with RFC 5780 now; accepted and ignored."),
    o("rfc3489-compatibility", None, B, false, Y, "", "Answer classic RFC 3489 Binding requests without magic cookie."),
    o("rfc5766-channel-numbers", None, B, false, Y, "", "Accept channel numbers 0x4000-0x7FFF (=false: only 0x4000-0x4FFF). Default on."),
    o("include-reason-string", None, B, false, Y, "", "Put detailed reason phrases into error responses."),
    o("respond-http-unsupported", None, B, false, Y, "", "Answer HTTP on non-HTTP ports with 400 instead of closing."),
    o("secret-ts-exp-time", None, R, false, L, "<seconds>", "Old REST API option; accepted and ignored."),
    // ---- command line only ----
    cli_only("c", Some('c'), R, false, "<file>", "Configuration file. Default turnserver.conf, searched in the usual directories."),
    cli_only("n", Some('n'), N, false, "", "Do not read any configuration file."),
    cli_only("version", None, I, true, "", "Print the version and exit."),
    cli_only("h", Some('h'), N, false, "", "Print this help and exit."),
];

/// All rows.
pub fn all() -> impl Iterator<Item = &'static OptSpec> {
    OPTIONS.iter()
}

/// Rows that only exist as a short option (`-c`, `-n`, `-h`).
pub fn is_short_only(spec: &OptSpec) -> bool {
    !spec.cli_long && !spec.config_key
}

/// Exact lookup by long name (case-sensitive, like coturn: `Verbose` != `verbose`).
pub fn by_long(name: &str) -> Option<&'static OptSpec> {
    all().find(|s| s.long == name)
}

/// Config-file key lookup.
pub fn by_config_key(key: &str) -> Option<&'static OptSpec> {
    by_long(key).filter(|s| s.config_key)
}

/// Short-option lookup (the first row carrying it wins: `-b` = `--userdb`).
pub fn by_short(c: char) -> Option<&'static OptSpec> {
    all().find(|s| s.short == Some(c))
}

/// Result of a command-line long-option lookup.
#[derive(Debug)]
pub enum LongMatch {
    Found(&'static OptSpec),
    Ambiguous(Vec<&'static str>),
    Unknown,
}

/// getopt_long-style lookup: exact name first, then a unique prefix.
pub fn by_cli_long(name: &str) -> LongMatch {
    if name.is_empty() {
        return LongMatch::Unknown;
    }
    if let Some(spec) = all().find(|s| s.long == name && !is_short_only(s)) {
        // A row that exists but is not allowed as a long CLI option (the
        // removed --no-tlsv1*) must not fall back to a prefix match.
        return if spec.cli_long { LongMatch::Found(spec) } else { LongMatch::Unknown };
    }
    let cands: Vec<&'static OptSpec> =
        all().filter(|s| s.cli_long && s.long.len() > 1 && s.long.starts_with(name)).collect();
    match cands.len() {
        0 => LongMatch::Unknown,
        1 => LongMatch::Found(cands[0]),
        _ => LongMatch::Ambiguous(cands.iter().map(|s| s.long).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn long_names_are_unique() {
        let mut seen = HashSet::new();
        for s in all() {
            assert!(seen.insert(s.long), "duplicate option {}", s.long);
        }
    }

    #[test]
    fn short_names_unique_except_aliases() {
        let mut seen: HashSet<char> = HashSet::new();
        for s in all() {
            if let Some(c) = s.short {
                if !seen.insert(c) {
                    assert!(matches!(c, 'b' | 'e'), "short -{c} used twice");
                }
            }
        }
        assert_eq!(by_short('b').map(|s| s.long), Some("userdb"));
        assert_eq!(by_short('e').map(|s| s.long), Some("psql-userdb"));
    }

    #[test]
    fn coturn_short_option_set() {
        // coturn's getopt string: c:d:p:L:E:X:i:m:l:r:u:b:B:e:M:J:N:O:q:Q:s:C:K:A:vVofhznaS
        for c in "cdpLEXimlrubBeMJNOqQsCKA".chars() {
            let s = by_short(c).unwrap_or_else(|| panic!("-{c} missing"));
            assert!(s.short_takes_value(), "-{c} should take a value");
        }
        for c in "vVofhznaS".chars() {
            let s = by_short(c).unwrap_or_else(|| panic!("-{c} missing"));
            assert!(!s.short_takes_value(), "-{c} should be a flag");
        }
    }

    #[test]
    fn every_reference_option_present() {
        let names = [
            "listening-port", "tls-listening-port", "alt-listening-port", "alt-tls-listening-port",
            "listening-ip", "listening-device", "tcp-proxy-port", "aux-server", "udp-self-balance",
            "no-udp", "no-tcp", "no-tls", "dtls", "no-dtls", "relay-ip", "relay-device", "external-ip",
            "min-port", "max-port", "no-udp-relay", "no-tcp-relay", "allocation-default-address-family",
            "keep-address-family", "server-relay", "mobility", "relay-threads", "cpus", "sock-buf-size",
            "udp-recvmmsg", "udp-recvmmsg-log", "udp-sendmmsg-log", "udp-gso", "multiplex-peer",
            "multiplex-peer-port", "multiplex-peer-max-peers", "lt-cred-mech", "no-auth", "user", "realm",
            "use-auth-secret", "static-auth-secret", "rest-api-separator", "secure-stun", "stale-nonce",
            "stateless-nonce", "stateless-nonce-secret", "unauthorized-ratelimit",
            "unauthorized-ratelimit-rps", "oauth", "server-name", "check-origin-consistency",
            "no-auth-pings", "no-dynamic-ip-list", "no-dynamic-realms", "userdb", "db", "psql-userdb",
            "sql-userdb", "mysql-userdb", "secret-key-file", "mongo-userdb", "redis-userdb",
            "redis-statsdb", "user-quota", "total-quota", "max-bps", "bps-capacity",
            "max-allocate-lifetime", "channel-lifetime", "permission-lifetime", "max-allocate-timeout",
            "drain-min-allocations", "denied-peer-ip", "allowed-peer-ip", "no-multicast-peers",
            "allow-loopback-peers", "cert", "pkey", "pkey-pwd", "cipher-list", "CA-file", "ec-curve-name",
            "dh566", "dh1066", "dh-file", "no-tlsv1", "no-tlsv1_1", "tlsv1", "tlsv1_1", "no-tlsv1_2",
            "raw-public-keys", "no-sslv2", "no-sslv3", "log-file", "no-stdout-log", "syslog",
            "syslog-facility", "simple-log", "new-log-timestamp", "new-log-timestamp-format",
            "log-min-level", "verbose", "Verbose", "log-binding", "drop-invalid-packets",
            "drop-invalid-packets-log", "daemon", "pidfile", "proc-user", "proc-group", "cli", "no-cli",
            "cli-ip", "cli-port", "cli-password", "cli-max-output-sessions", "web-admin", "web-admin-ip",
            "web-admin-port", "web-admin-listen-on-workers", "acme-redirect", "respond-http-unsupported",
            "prometheus", "prometheus-port", "prometheus-address", "prometheus-path",
            "prometheus-username-labels", "prometheus-tls", "prometheus-cert", "prometheus-key",
            "alternate-server", "tls-alternate-server", "udp-alternate-server", "tcp-alternate-server",
            "stun-only", "no-stun", "fingerprint", "no-software-attribute", "software-attribute", "prod",
            "rfc5780", "no-rfc5780", "stun-backward-compatibility", "no-stun-backward-compatibility",
            "response-origin-only-with-rfc5780", "rfc3489-compatibility", "rfc5766-channel-numbers",
            "include-reason-string", "ne", "secret-ts-exp-time", "version",
        ];
        for n in names {
            assert!(by_long(n).is_some(), "--{n} missing from the table");
        }
    }

    #[test]
    fn list_options() {
        for n in [
            "listening-ip", "relay-ip", "external-ip", "user", "static-auth-secret", "allowed-peer-ip",
            "denied-peer-ip", "alternate-server", "tls-alternate-server", "udp-alternate-server",
            "tcp-alternate-server", "aux-server",
        ] {
            assert!(by_long(n).is_some_and(|s| s.list), "{n} should be a list");
        }
        assert!(!by_long("realm").is_some_and(|s| s.list));
    }

    #[test]
    fn value_ignoring_options() {
        for n in [
            "prometheus", "rfc5780", "multiplex-peer", "use-auth-secret", "no-auth-pings",
            "no-dynamic-ip-list", "no-dynamic-realms", "prometheus-username-labels",
        ] {
            assert_eq!(by_long(n).map(|s| s.arg), Some(ArgKind::OptionalIgnored), "{n}");
        }
    }

    #[test]
    fn cli_only_rows_are_not_config_keys() {
        for n in ["c", "n", "h", "version"] {
            assert!(by_config_key(n).is_none(), "{n}");
        }
        assert!(by_config_key("no-tlsv1").is_some());
    }

    #[test]
    fn prefix_lookup() {
        assert!(matches!(by_cli_long("listening-po"), LongMatch::Found(s) if s.long == "listening-port"));
        assert!(matches!(by_cli_long("no"), LongMatch::Ambiguous(_)));
        assert!(matches!(by_cli_long("bogus"), LongMatch::Unknown));
        // Removed CLI options never fall back to a prefix match (--no-tlsv1 is a
        // prefix of --no-tlsv1_2).
        assert!(matches!(by_cli_long("no-tlsv1"), LongMatch::Unknown));
        assert!(matches!(by_cli_long("no-tlsv1_1"), LongMatch::Unknown));
        // Short-only pseudo rows are not long options.
        assert!(matches!(by_cli_long("c"), LongMatch::Ambiguous(_)));
        assert!(matches!(by_cli_long("h"), LongMatch::Unknown));
        assert!(matches!(by_cli_long("Verbose"), LongMatch::Found(s) if s.long == "Verbose"));
        assert!(matches!(by_cli_long("verbose"), LongMatch::Found(s) if s.long == "verbose"));
    }
}
