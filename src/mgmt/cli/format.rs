//! The CLI's texts, laid out as coturn's telnet CLI prints them (checked
//! against coturn 4.6.1's output and 4.17's source): the greeting, the help,
//! `ps`, `pu`, `pc` with its `(*)` toggleable / `(**)` changeable markers.
//! Lines end in `\n` here; [`super::telnet::encode`] makes them CR LF.
//! Pure functions of their inputs, so the layout is unit-tested.

use std::fmt::Write as _;

use crate::config::Config;
use crate::core::admin::SessionInfo;
use crate::core::Transport;
use crate::userdb::DbSpec;

/// The prompt.
pub const PROMPT: &str = "> ";
/// Asked before every password try.
pub const PASSWORD_PROMPT: &str = "Enter password: \n";

/// The first two lines of the greeting and of the help.
pub fn banner() -> String {
    format!("TURN Server\nturnserver-rs-{}\n", crate::VERSION)
}

/// What a new connection sees.
pub fn greeting() -> String {
    format!("{}\nType '?' for help\n{PASSWORD_PROMPT}", banner())
}

const HELP: &[&str] = &[
    "",
    "  ?, h, help - print this text",
    "",
    "  quit, q, exit, bye - end CLI session",
    "",
    "  stop, shutdown, halt - shutdown TURN Server",
    "",
    "  drain - stop taking new allocations; shut down once few enough are left",
    "",
    "  pc - print configuration",
    "",
    "  sr <realm> - set CLI session realm",
    "",
    "  ur - unset CLI session realm",
    "",
    "  so <origin> - set CLI session origin",
    "",
    "  uo - unset CLI session origin",
    "",
    "  tc <param-name> - toggle a configuration parameter",
    "     (see pc command output for togglable param names)",
    "",
    "  cc <param-name> <param-value> - change a configuration parameter",
    "     (see pc command output for changeable param names)",
    "",
    "  ps [username] - print sessions, with optional exact user match",
    "",
    "  psp <usernamestr> - print sessions, with partial user string match",
    "",
    "  pu [udp|tcp|dtls|tls]- print current users",
    "",
    "  lr - log reset",
    "",
    "  aas ip[:port] - add an alternate server reference",
    "  das ip[:port] - delete an alternate server reference",
    "  atas ip[:port] - add a TLS alternate server reference",
    "  dtas ip[:port] - delete a TLS alternate server reference",
    "  atcpas ip[:port] - add a TCP alternate server reference",
    "  dtcpas ip[:port] - delete a TCP alternate server reference",
    "  audpas ip[:port] - add a UDP alternate server reference",
    "  dudpas ip[:port] - delete a UDP alternate server reference",
    "",
    "  cs <session-id> - cancel session, forcefully",
    "",
];

/// `?`: the banner, then the command list.
pub fn help() -> String {
    let mut s = banner();
    for line in HELP {
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn on_off(v: bool) -> &'static str {
    if v {
        "ON"
    } else {
        "OFF"
    }
}

/// A `pc` marker: 0 none, 1 `(*)` toggleable, 2 `(**)` changeable.
fn mark(kind: u8) -> &'static str {
    match kind {
        1 => " (*)",
        2 => " (**)",
        _ => "",
    }
}

fn flag(s: &mut String, name: &str, v: bool, kind: u8) {
    let _ = writeln!(s, "  {name}: {}{}", on_off(v), mark(kind));
}

fn num(s: &mut String, name: &str, v: u64, kind: u8) {
    let _ = writeln!(s, "  {name}: {v}{}", mark(kind));
}

fn text(s: &mut String, name: &str, v: &str, kind: u8) {
    let v = if v.is_empty() { "empty" } else { v };
    let _ = writeln!(s, "  {name}: {v}{}", mark(kind));
}

/// The per-session filter set with `sr` / `so`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub realm: Option<String>,
    pub origin: Option<String>,
}

impl Filter {
    fn admits(&self, s: &SessionInfo) -> bool {
        self.realm.as_deref().is_none_or(|r| r == s.realm) && self.origin.as_deref().is_none_or(|o| o == s.origin)
    }

    /// coturn's "  Total sessions[ for realm R][ and for origin O]: N".
    fn totals(&self, n: usize) -> String {
        let mut t = String::from("  Total sessions");
        match (&self.realm, &self.origin) {
            (Some(r), Some(o)) => {
                let _ = write!(t, " for realm {r} and for origin {o}");
            }
            (Some(r), None) => {
                let _ = write!(t, " for realm {r}");
            }
            (None, Some(o)) => {
                let _ = write!(t, " for origin {o}");
            }
            (None, None) => {}
        }
        let _ = writeln!(t, ": {n}");
        t
    }
}

/// The client transport as `ps` names it.
fn protocol(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
        Transport::Dtls => "DTLS",
    }
}

/// `ps [user]` / `psp <substr>`: the sessions that pass the filter and the
/// user match, at most `max` of them printed, all of them counted.
pub fn sessions(list: &[SessionInfo], filter: &Filter, user: &str, exact: bool, max: u32, fingerprints: bool) -> String {
    let mut s = String::new();
    let mut counter: usize = 0;
    for si in list.iter().filter(|si| filter.admits(si)) {
        if !user.is_empty() && !(if exact { si.username == user } else { si.username.contains(user) }) {
            continue;
        }
        if counter < max as usize {
            session(&mut s, counter + 1, si, fingerprints);
        }
        counter += 1;
    }
    s.push('\n');
    let truncated = counter > max as usize;
    if truncated {
        s.push_str("...\n\n");
    }
    s.push_str(&filter.totals(counter));
    s.push('\n');
    if truncated {
        s.push_str("  Warning: too many output sessions, more than the\n");
        s.push_str("  current value of cli-max-output-sessions CLI parameter.\n");
        s.push_str("  Refine your request or increase cli-max-output-sessions value.\n\n");
    }
    s
}

fn session(s: &mut String, n: usize, si: &SessionInfo, fingerprints: bool) {
    let _ = writeln!(s, "\n    {n}) id={:018}, user <{}>:", si.session_id, si.username);
    if !si.realm.is_empty() {
        let _ = writeln!(s, "      realm: {}", si.realm);
    }
    if !si.origin.is_empty() {
        let _ = writeln!(s, "      origin: {}", si.origin);
    }
    let _ = writeln!(s, "      started {} secs ago", si.age_secs);
    let _ = writeln!(s, "      expiring in {} secs", si.expires_in_secs);
    let relay = if si.tcp_relay { "TCP" } else { "UDP" };
    let _ = writeln!(s, "      client protocol {}, relay protocol {relay}", protocol(si.transport));
    let _ = writeln!(s, "      client addr {}, server addr {}", si.client, si.server);
    for r in &si.relays {
        let _ = writeln!(s, "      relay addr {r}");
    }
    let _ = writeln!(s, "      fingerprints enforced: {}", on_off(fingerprints));
    if si.max_bps > 0 {
        let _ = writeln!(s, "      Max throughput: {} bytes per second", si.max_bps);
    }
    let c = si.client_usage;
    let _ = writeln!(s, "      usage: rp={}, rb={}, sp={}, sb={}", c.rp, c.rb, c.sp, c.sb);
    let p = si.peer_usage;
    let _ = writeln!(s, "      peer usage: rp={}, rb={}, sp={}, sb={}", p.rp, p.rb, p.sp, p.sb);
    if si.channels > 0 {
        let _ = writeln!(s, "      channels: {}", si.channels);
    }
    if !si.peers.is_empty() {
        s.push_str("      peers:\n");
        for p in &si.peers {
            let _ = writeln!(s, "          {p}");
        }
    }
}

/// Whether `t` is the transport `pu` was asked for ("" = any). An unknown
/// name matches nothing, as in coturn.
fn transport_matches(name: &str, t: Transport) -> bool {
    match name.to_ascii_lowercase().as_str() {
        "" => true,
        "udp" => t == Transport::Udp,
        "tcp" => t == Transport::Tcp,
        "tls" => t == Transport::Tls,
        "dtls" => t == Transport::Dtls,
        _ => false,
    }
}

/// `pu [proto]`: users with their session counts, in order of first seen.
pub fn users(list: &[SessionInfo], filter: &Filter, proto: &str) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let mut total = 0;
    for si in list.iter().filter(|si| filter.admits(si) && transport_matches(proto, si.transport)) {
        total += 1;
        match counts.iter_mut().find(|(u, _)| *u == si.username) {
            Some(e) => e.1 += 1,
            None => counts.push((&si.username, 1)),
        }
    }
    let mut s = String::from("\n");
    if !counts.is_empty() {
        for (u, n) in &counts {
            let _ = writeln!(s, "    user: <{u}>, {n} sessions");
        }
        s.push('\n');
    }
    s.push_str(&filter.totals(total));
    s.push('\n');
    s
}

/// The current value of a `tc` toggle.
pub fn toggle_value(cfg: &Config, name: &str) -> Option<bool> {
    Some(match name {
        "stun-only" => cfg.stun_only,
        "no-stun" => cfg.no_stun,
        "secure-stun" => cfg.secure_stun,
        "no-udp-relay" => cfg.no_udp_relay,
        "no-tcp-relay" => cfg.no_tcp_relay,
        "no-multicast-peers" => cfg.no_multicast_peers,
        "allow-loopback-peers" => cfg.allow_loopback_peers,
        "mobility" => cfg.mobility,
        _ => return None,
    })
}

/// `tc` success: the new value.
pub fn toggled(name: &str, value: bool) -> String {
    let mut s = String::new();
    flag(&mut s, name, value, 0);
    s
}

/// `tc` with a name that is not a toggle: the error and every toggle.
pub fn toggle_error(cfg: &Config, name: &str) -> String {
    let mut s = format!("\n  Error: unknown or constant parameter: {name}.\n  You can toggle only the following parameters:\n\n");
    for t in crate::mgmt::runtime::TOGGLES {
        flag(&mut s, t, toggle_value(cfg, t).unwrap_or(false), 0);
    }
    s.push('\n');
    s
}

/// The current value of a `cc` parameter.
pub fn change_value(cfg: &Config, name: &str) -> Option<u64> {
    Some(match name {
        "total-quota" => u64::from(cfg.total_quota),
        "user-quota" => u64::from(cfg.user_quota),
        "max-bps" => cfg.max_bps,
        "bps-capacity" => cfg.bps_capacity,
        "cli-max-output-sessions" => u64::from(cfg.cli_max_output_sessions),
        _ => return None,
    })
}

/// `cc` success: the new value.
pub fn changed(name: &str, value: u64) -> String {
    let mut s = String::new();
    num(&mut s, name, value, 2);
    s
}

/// `cc` with an unknown name: coturn repeats what followed `cc`.
pub fn change_error(rest: &str) -> String {
    format!("\n  Error: unknown or constant parameter: {rest}.\n\n")
}

/// What `pc` needs besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct ConfigContext {
    pub filter: Filter,
    pub allocations: usize,
    pub bps_allocated: u64,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
    pub relay_threads: usize,
}

/// The user database as `pc` names it: (type, location). A password in a
/// connection string is not shown.
fn db(spec: &Option<DbSpec>) -> (&'static str, String) {
    match spec {
        None => ("none", "none".into()),
        Some(DbSpec::Sqlite(p)) => ("SQLite", p.display().to_string()),
        Some(DbSpec::Postgres(c)) => ("Postgres", hide_password(c)),
        Some(DbSpec::Mysql(c)) => ("MySQL/MariaDB", hide_password(c)),
        Some(DbSpec::Redis(c)) => ("redis", hide_password(c)),
    }
}

/// `password=secret` -> `password=***` in keyword connection strings, and
/// `user:secret@` -> `user:***@` in URIs.
fn hide_password(conn: &str) -> String {
    let words: Vec<String> = conn
        .split(' ')
        .map(|w| match w.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => w.to_string(),
        })
        .collect();
    let joined = words.join(" ");
    if let (Some(scheme), Some(at)) = (joined.find("://"), joined.find('@')) {
        let creds = &joined[scheme + 3..at];
        if let Some(colon) = creds.find(':') {
            return format!("{}:***{}", &joined[..scheme + 3 + colon], &joined[at..]);
        }
    }
    joined
}

/// `pc`: the configuration in force.
pub fn config(cfg: &Config, ctx: &ConfigContext) -> String {
    let mut s = String::from("\n");
    let p = &mut s;
    flag(p, "verbose", cfg.verbose || cfg.very_verbose, 0);
    flag(p, "daemon process", cfg.daemon, 0);
    flag(p, "stale-nonce", cfg.stale_nonce > 0, 0);
    flag(p, "stun-only", cfg.stun_only, 1);
    flag(p, "no-stun", cfg.no_stun, 1);
    flag(p, "secure-stun", cfg.secure_stun, 1);
    flag(p, "do-not-use-config-file", cfg.config_file.is_none(), 0);
    flag(p, "RFC5780 support", cfg.rfc5780, 0);
    num(p, "net engine version", 3, 0);
    text(p, "net engine", "UDP thread per CPU core", 0);
    num(p, "relay threads", ctx.relay_threads as u64, 0);
    flag(p, "enforce fingerprints", cfg.fingerprint, 0);
    flag(p, "mobility", cfg.mobility, 1);
    flag(p, "udp-self-balance", cfg.udp_self_balance, 0);
    text(p, "pidfile", &cfg.pidfile.as_ref().map(|x| x.display().to_string()).unwrap_or_default(), 0);
    num(p, "process user ID", u64::from(ctx.uid), 0);
    num(p, "process group ID", u64::from(ctx.gid), 0);
    text(p, "process dir", &ctx.cwd, 0);
    p.push('\n');

    text(p, "cipher-list", cfg.cipher_list.as_deref().unwrap_or("DEFAULT"), 0);
    text(p, "ec-curve-name", cfg.ec_curve_name.as_deref().unwrap_or(""), 0);
    match &cfg.dh_file {
        Some(f) => text(p, "dh-file", &f.display().to_string(), 0),
        None => num(p, "DH-key-length", if cfg.dh566 { 566 } else if cfg.dh1066 { 1066 } else { 2066 }, 0),
    }
    let path = |x: &Option<std::path::PathBuf>, default: &str| x.as_ref().map_or(default.to_string(), |x| x.display().to_string());
    text(p, "Certificate Authority file", &path(&cfg.ca_file, ""), 0);
    text(p, "Certificate file", &path(&cfg.cert, crate::tls::DEFAULT_CERT), 0);
    text(p, "Private Key file", &path(&cfg.pkey, crate::tls::DEFAULT_PKEY), 0);
    for ip in &cfg.listening_ips {
        text(p, "Listener addr", &ip.to_string(), 0);
    }
    if let Some(d) = &cfg.listening_device {
        text(p, "listener-ifname", d, 0);
    }
    flag(p, "no-udp", cfg.no_udp, 0);
    flag(p, "no-tcp", cfg.no_tcp, 0);
    flag(p, "no-dtls", !cfg.dtls, 0);
    flag(p, "no-tls", cfg.no_tls, 0);
    flag(p, "TLSv1.0", cfg.tlsv1 && !cfg.no_tls, 0);
    flag(p, "TLSv1.1", cfg.tlsv1_1 && !cfg.no_tls, 0);
    flag(p, "TLSv1.2", !cfg.no_tlsv1_2 && !cfg.no_tls, 0);
    num(p, "listener-port", u64::from(cfg.listening_port), 0);
    num(p, "tls-listener-port", u64::from(cfg.tls_listening_port), 0);
    num(p, "alt-listener-port", u64::from(cfg.alt_listening_port), 0);
    num(p, "alt-tls-listener-port", u64::from(cfg.alt_tls_listening_port), 0);
    for (public, private) in &cfg.external_ips {
        let v = match private {
            Some(pr) => format!("{public}/{pr}"),
            None => public.to_string(),
        };
        text(p, "External public IP", &v, 0);
    }
    p.push('\n');

    for (name, list) in [
        ("Aux server", &cfg.aux_servers),
        ("Alternate server", &cfg.alternate_servers),
        ("TLS alternate server", &cfg.tls_alternate_servers),
        ("TCP alternate server", &cfg.tcp_alternate_servers),
        ("UDP alternate server", &cfg.udp_alternate_servers),
    ] {
        for a in list {
            text(p, name, &a.to_string(), 0);
        }
    }
    p.push('\n');

    for ip in &cfg.relay_ips {
        text(p, "Relay addr", &ip.to_string(), 0);
    }
    if let Some(d) = &cfg.relay_device {
        text(p, "relay-ifname", d, 0);
    }
    flag(p, "server-relay", cfg.server_relay, 0);
    flag(p, "no-udp-relay", cfg.no_udp_relay, 1);
    flag(p, "no-tcp-relay", cfg.no_tcp_relay, 1);
    num(p, "min-port", u64::from(cfg.min_port), 0);
    num(p, "max-port", u64::from(cfg.max_port), 0);
    for r in &cfg.allowed_peer_ips {
        text(p, "Whitelist IP (static)", r, 0);
    }
    for r in &cfg.denied_peer_ips {
        text(p, "Blacklist IP (static)", r, 0);
    }
    flag(p, "no-multicast-peers", cfg.no_multicast_peers, 1);
    flag(p, "allow-loopback-peers", cfg.allow_loopback_peers, 1);
    p.push('\n');

    let (db_type, db_where) = db(&cfg.userdb);
    text(p, "DB type", db_type, 0);
    text(p, "DB", &db_where, 0);
    if let Some(r) = &cfg.redis_statsdb {
        text(p, "Redis Statistics DB", &hide_password(r), 0);
    }
    p.push('\n');

    if !cfg.realm.is_empty() {
        text(p, "Default realm", &cfg.realm, 0);
    }
    text(p, "CLI session realm", ctx.filter.realm.as_deref().unwrap_or(&cfg.realm), 0);
    if let Some(o) = &ctx.filter.origin {
        text(p, "CLI session origin", o, 0);
    }
    if cfg.no_auth {
        flag(p, "Anonymous credentials", true, 0);
    } else {
        flag(p, "Long-term authorization mechanism", true, 0);
    }
    flag(p, "TURN REST API support", cfg.use_auth_secret, 0);
    if cfg.use_auth_secret {
        num(p, "TURN REST API separator ASCII number", u64::from(u32::from(cfg.rest_api_separator)), 0);
    }
    p.push('\n');

    num(p, "total-current-allocs", ctx.allocations as u64, 0);
    p.push('\n');

    num(p, "Default total-quota", u64::from(cfg.total_quota), 2);
    num(p, "Default user-quota", u64::from(cfg.user_quota), 2);
    num(p, "Total server bps-capacity", cfg.bps_capacity, 2);
    num(p, "Allocated bps-capacity", ctx.bps_allocated, 0);
    num(p, "Default max-bps", cfg.max_bps, 2);
    p.push('\n');

    num(p, "cli-max-output-sessions", u64::from(cfg.cli_max_output_sessions), 2);
    p.push_str("\n  (Note 1: parameters with (*) are toggleable)\n\n  (Note 2: parameters with (**) are changeable)\n\n");
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::core::allocation::Usage;

    fn info(id: u64, user: &str, realm: &str, transport: Transport) -> SessionInfo {
        SessionInfo {
            session_id: id,
            username: user.into(),
            realm: realm.into(),
            origin: String::new(),
            transport,
            tcp_relay: false,
            client: "127.0.0.1:36093".parse().unwrap(),
            server: "127.0.0.1:3478".parse().unwrap(),
            relays: vec!["127.0.0.1:40090".parse().unwrap()],
            age_secs: 7,
            expires_in_secs: 593,
            lifetime_secs: 600,
            client_usage: Usage { rp: 7, rb: 744, sp: 6, sb: 548 },
            peer_usage: Usage::default(),
            peers: vec!["127.0.0.1".parse().unwrap()],
            channels: 0,
            max_bps: 0,
        }
    }

    fn cfg() -> Config {
        let argv: Vec<String> = ["turnserver", "-n", "--realm=example.org", "--max-bps=3000"].iter().map(|s| s.to_string()).collect();
        match crate::config::parse_args(&argv) {
            Ok(crate::config::Command::Run(c)) => *c,
            _ => panic!("config"),
        }
    }

    #[test]
    fn greeting_and_help() {
        let g = greeting();
        assert!(g.starts_with("TURN Server\nturnserver-rs-"));
        assert!(g.ends_with("\n\nType '?' for help\nEnter password: \n"));
        let h = help();
        assert!(h.starts_with("TURN Server\n"));
        for cmd in ["  ?, h, help", "  pc - ", "  drain - ", "  atcpas ip", "  dudpas ip", "  cs <session-id>"] {
            assert!(h.contains(cmd), "{cmd} missing from help");
        }
    }

    #[test]
    fn ps_lists_a_session_like_coturn() {
        let list = vec![info(1_000_000_000_000_003, "alice", "example.org", Transport::Udp)];
        let out = sessions(&list, &Filter::default(), "", true, 256, true);
        let expected = "\n    1) id=001000000000000003, user <alice>:\n      realm: example.org\n      started 7 secs ago\n      \
                        expiring in 593 secs\n      client protocol UDP, relay protocol UDP\n      client addr 127.0.0.1:36093, \
                        server addr 127.0.0.1:3478\n      relay addr 127.0.0.1:40090\n      fingerprints enforced: ON\n      \
                        usage: rp=7, rb=744, sp=6, sb=548\n      peer usage: rp=0, rb=0, sp=0, sb=0\n      peers:\n          \
                        127.0.0.1\n\n  Total sessions: 1\n\n";
        assert_eq!(out, expected);
        // Short ids are zero-padded to 18 digits.
        let out = sessions(&[info(3, "bob", "", Transport::Tcp)], &Filter::default(), "", true, 256, false);
        assert!(out.contains("    1) id=000000000000000003, user <bob>:\n      started"), "{out}");
        assert!(out.contains("client protocol TCP, relay protocol UDP"));
    }

    #[test]
    fn ps_filters_by_user_realm_and_origin() {
        let mut b = info(2, "bob", "other.org", Transport::Udp);
        b.origin = "https://b.example".into();
        let list = vec![info(1, "alice", "example.org", Transport::Udp), b, info(3, "alicia", "example.org", Transport::Tls)];
        let none = Filter::default();
        assert!(sessions(&list, &none, "ali", true, 256, false).ends_with("  Total sessions: 0\n\n"));
        assert!(sessions(&list, &none, "ali", false, 256, false).ends_with("  Total sessions: 2\n\n"));
        assert!(sessions(&list, &none, "alice", true, 256, false).ends_with("  Total sessions: 1\n\n"));
        let realm = Filter { realm: Some("other.org".into()), origin: None };
        let out = sessions(&list, &realm, "", true, 256, false);
        assert!(out.contains("user <bob>") && out.contains("      origin: https://b.example\n"));
        assert!(out.ends_with("  Total sessions for realm other.org: 1\n\n"));
        let origin = Filter { realm: None, origin: Some("https://b.example".into()) };
        assert!(sessions(&list, &origin, "", true, 256, false).ends_with("  Total sessions for origin https://b.example: 1\n\n"));
        let both = Filter { realm: Some("example.org".into()), origin: Some("x".into()) };
        assert!(sessions(&list, &both, "", true, 256, false)
            .ends_with("  Total sessions for realm example.org and for origin x: 0\n\n"));
    }

    #[test]
    fn ps_stops_printing_at_the_limit_but_counts_all() {
        let list: Vec<SessionInfo> = (1..=3).map(|i| info(i, "u", "r", Transport::Udp)).collect();
        let out = sessions(&list, &Filter::default(), "", true, 2, false);
        assert_eq!(out.matches(") id=").count(), 2);
        assert!(out.contains("\n...\n\n  Total sessions: 3\n\n  Warning: too many output sessions"));
    }

    #[test]
    fn pu_counts_users_per_transport() {
        let list = vec![
            info(1, "alice", "r", Transport::Udp),
            info(2, "bob", "r", Transport::Tls),
            info(3, "alice", "r", Transport::Udp),
        ];
        let f = Filter::default();
        assert_eq!(users(&list, &f, ""), "\n    user: <alice>, 2 sessions\n    user: <bob>, 1 sessions\n\n  Total sessions: 3\n\n");
        assert_eq!(users(&list, &f, "TLS"), "\n    user: <bob>, 1 sessions\n\n  Total sessions: 1\n\n");
        assert_eq!(users(&list, &f, "dtls"), "\n  Total sessions: 0\n\n");
        assert_eq!(users(&list, &f, "bogus"), "\n  Total sessions: 0\n\n");
        let realm = Filter { realm: Some("foo".into()), origin: None };
        assert_eq!(users(&list, &realm, ""), "\n  Total sessions for realm foo: 0\n\n");
    }

    #[test]
    fn toggle_and_change_texts() {
        let c = cfg();
        assert_eq!(toggled("stun-only", true), "  stun-only: ON\n");
        let e = toggle_error(&c, "bogus");
        assert!(e.starts_with("\n  Error: unknown or constant parameter: bogus.\n  You can toggle only the following parameters:\n\n"));
        assert!(e.contains("  stun-only: OFF\n") && e.contains("  mobility: OFF\n") && e.ends_with("\n\n"));
        assert_eq!(changed("user-quota", 1), "  user-quota: 1 (**)\n");
        assert_eq!(change_error("bogus 2"), "\n  Error: unknown or constant parameter: bogus 2.\n\n");
        assert_eq!(change_value(&c, "max-bps"), Some(3000));
        assert_eq!(change_value(&c, "bogus"), None);
        for t in crate::mgmt::runtime::TOGGLES {
            assert!(toggle_value(&c, t).is_some(), "{t}");
        }
        for n in crate::mgmt::runtime::CHANGEABLE {
            assert!(change_value(&c, n).is_some(), "{n}");
        }
    }

    #[test]
    fn pc_marks_toggles_and_changeables() {
        let c = cfg();
        let ctx = ConfigContext { allocations: 5, cwd: "/tmp".into(), ..Default::default() };
        let out = config(&c, &ctx);
        for t in crate::mgmt::runtime::TOGGLES {
            assert!(out.contains(&format!("  {t}: OFF (*)\n")), "{t} not marked toggleable:\n{out}");
        }
        for line in [
            "  Default total-quota: 0 (**)\n",
            "  Default user-quota: 0 (**)\n",
            "  Total server bps-capacity: 0 (**)\n",
            "  Default max-bps: 3000 (**)\n",
            "  cli-max-output-sessions: 256 (**)\n",
            "  total-current-allocs: 5\n",
            "  Default realm: example.org\n",
            "  CLI session realm: example.org\n",
            "  do-not-use-config-file: ON\n",
            "  process dir: /tmp\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in:\n{out}");
        }
        assert!(out.ends_with("  (Note 1: parameters with (*) are toggleable)\n\n  (Note 2: parameters with (**) are changeable)\n\n"));
        let ctx = ConfigContext { filter: Filter { realm: Some("r2".into()), origin: Some("o".into()) }, ..Default::default() };
        let out = config(&c, &ctx);
        assert!(out.contains("  CLI session realm: r2\n  CLI session origin: o\n"));
    }

    #[test]
    fn database_passwords_are_hidden() {
        assert_eq!(hide_password("host=db dbname=turn user=t password=s3cret"), "host=db dbname=turn user=t password=***");
        assert_eq!(hide_password("postgresql://turn:s3cret@db/turn"), "postgresql://turn:***@db/turn");
        assert_eq!(hide_password("ip=127.0.0.1 dbname=0"), "ip=127.0.0.1 dbname=0");
    }
}
