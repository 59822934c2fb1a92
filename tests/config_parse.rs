//! Command line + turnserver.conf parsing, checked against coturn's behaviour.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use turnserver::config::{
    parse_args, parse_args_in, AddressFamilyDefault, Command, Config, ConfigError, LogLevel, LogTarget,
};

fn argv(a: &[&str]) -> Vec<String> {
    std::iter::once("turnserver").chain(a.iter().copied()).map(String::from).collect()
}

fn run(a: &[&str]) -> Config {
    match parse_args(&argv(a)) {
        Ok(Command::Run(c)) => *c,
        Ok(Command::Print(t)) => panic!("expected a configuration, got text: {t}"),
        Err(e) => panic!("expected a configuration for {a:?}, got error: {}", e.message),
    }
}

fn fail(a: &[&str]) -> ConfigError {
    match parse_args(&argv(a)) {
        Err(e) => e,
        Ok(other) => panic!("expected an error for {a:?}, got {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    match s.parse() {
        Ok(i) => i,
        Err(e) => panic!("bad test ip {s}: {e}"),
    }
}

/// A config file in its own temp dir; keep the dir alive while using the path.
struct Conf {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Conf {
    fn new(contents: &str) -> Conf {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("turnserver.conf");
        if let Err(e) = std::fs::write(&path, contents) {
            panic!("write: {e}");
        }
        Conf { _dir: dir, path }
    }
    fn p(&self) -> &str {
        self.path.to_str().unwrap_or_default()
    }
}

fn with_file(contents: &str, extra: &[&str]) -> Config {
    let c = Conf::new(contents);
    let mut a = vec!["-c", c.p()];
    a.extend_from_slice(extra);
    run(&a)
}

fn file_err(contents: &str, extra: &[&str]) -> ConfigError {
    let c = Conf::new(contents);
    let mut a = vec!["-c", c.p()];
    a.extend_from_slice(extra);
    fail(&a)
}

fn has_warning(c: &Config, needle: &str) -> usize {
    c.warnings.iter().filter(|w| w.contains(needle)).count()
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults() {
    let c = run(&["-n"]);
    assert_eq!(c.listening_port, 3478);
    assert_eq!(c.tls_listening_port, 5349);
    assert_eq!(c.alt_listening_port, 0);
    assert_eq!(c.alt_tls_listening_port, 0);
    assert!(c.listening_ips.is_empty() && c.relay_ips.is_empty() && c.external_ips.is_empty());
    assert_eq!((c.min_port, c.max_port), (49152, 65535));
    assert!(!c.no_udp && !c.no_tcp && !c.no_tls && !c.dtls && !c.no_udp_relay && !c.no_tcp_relay);
    assert_eq!(c.allocation_default_address_family, AddressFamilyDefault::Ipv4);
    assert_eq!(c.relay_threads, None);
    assert_eq!(c.cpus, None);
    assert_eq!(c.sock_buf_size, 2_097_152);
    assert!(!c.lt_cred_mech && c.no_auth && !c.use_auth_secret);
    assert!(c.users.is_empty() && c.static_auth_secrets.is_empty());
    assert_eq!(c.realm, "");
    assert_eq!(c.rest_api_separator, ':');
    assert_eq!(c.stale_nonce, 600);
    assert!(c.stateless_nonce);
    assert_eq!(c.stateless_nonce_secret, None);
    assert!(!c.secure_stun);
    assert_eq!(c.max_allocate_lifetime, 3600);
    assert_eq!(c.channel_lifetime, 600);
    assert_eq!(c.permission_lifetime, 300);
    assert_eq!(c.max_allocate_timeout, 60);
    assert!(!c.allow_loopback_peers && !c.no_multicast_peers);
    assert!(c.allowed_peer_ips.is_empty() && c.denied_peer_ips.is_empty());
    assert!(!c.fingerprint && !c.software_attribute && !c.stun_backward_compatibility);
    assert!(!c.rfc3489_compatibility);
    assert!(c.rfc5766_channel_numbers, "project decision: full 0x4000-0x7FFF by default");
    assert!(c.drop_invalid_packets && !c.drop_invalid_packets_log);
    assert!(!c.stun_only && !c.no_stun && !c.include_reason_string);
    assert_eq!(c.log_file, LogTarget::Auto);
    assert!(!c.simple_log && !c.no_stdout_log && !c.syslog && !c.verbose && !c.very_verbose);
    assert_eq!(c.log_min_level, LogLevel::Debug);
    assert!(c.new_log_timestamp);
    assert_eq!(c.new_log_timestamp_format, "%FT%T.%f%z");
    assert_eq!(c.pidfile, Some(PathBuf::from("/var/run/turnserver.pid")));
    assert!(!c.daemon);
    assert_eq!((c.user_quota, c.total_quota, c.max_bps, c.bps_capacity), (0, 0, 0, 0));
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.config_file, None);
}

#[test]
fn default_impl_matches_empty_command_line() {
    let d = Config::default();
    let c = run(&["-n"]);
    assert_eq!(format!("{d:?}"), format!("{c:?}"));
}

// ---------------------------------------------------------------- command line forms

#[test]
fn long_short_and_equals_forms() {
    assert_eq!(run(&["-n", "--listening-port=1000"]).listening_port, 1000);
    assert_eq!(run(&["-n", "--listening-port", "1001"]).listening_port, 1001);
    assert_eq!(run(&["-n", "-p", "1002"]).listening_port, 1002);
    assert_eq!(run(&["-n", "-p1003"]).listening_port, 1003);
    assert_eq!(run(&["-n", "--listening-po=1004"]).listening_port, 1004, "getopt prefix");
    let c = run(&["-n", "-L", "127.0.0.1", "--listening-ip=::1", "-E", "10.0.0.1", "-X", "1.2.3.4"]);
    assert_eq!(c.listening_ips, vec![ip("127.0.0.1"), ip("::1")]);
    assert_eq!(c.relay_ips, vec![ip("10.0.0.1")]);
    assert_eq!(c.external_ips, vec![(ip("1.2.3.4"), None)]);
    let c = run(&["-n", "-vf", "-m", "4", "-o", "-r", "example.org", "-C", "#", "-l", "stdout"]);
    assert!(c.verbose && c.fingerprint && c.daemon);
    assert_eq!(c.relay_threads, Some(4));
    assert_eq!(c.realm, "example.org");
    assert_eq!(c.rest_api_separator, '#');
    assert_eq!(c.log_file, LogTarget::Stdout);
}

#[test]
fn short_option_with_equals_warns_and_still_works() {
    let c = run(&["-n", "-p=3479"]);
    assert_eq!(c.listening_port, 3479);
    assert_eq!(has_warning(&c, "option -p is possibly used incorrectly"), 1);
}

#[test]
fn optional_values_only_with_equals() {
    assert_eq!(run(&["-n", "--stale-nonce"]).stale_nonce, 600);
    assert_eq!(run(&["-n", "--stale-nonce=0"]).stale_nonce, 0);
    assert_eq!(run(&["-n", "--stale-nonce=1200"]).stale_nonce, 1200);
    // `--stale-nonce 300`: 300 is not the option's value (coturn: unknown argument).
    let c = run(&["-n", "--stale-nonce", "300"]);
    assert_eq!(c.stale_nonce, 600);
    assert_eq!(has_warning(&c, "CONFIG: Unknown argument: 300"), 1);
    let c = run(&["-n", "--max-allocate-lifetime", "--channel-lifetime", "--permission-lifetime"]);
    assert_eq!((c.max_allocate_lifetime, c.channel_lifetime, c.permission_lifetime), (3600, 600, 300));
    let c = run(&["-n", "--max-allocate-lifetime=100", "--channel-lifetime=200", "--permission-lifetime=50"]);
    assert_eq!((c.max_allocate_lifetime, c.channel_lifetime, c.permission_lifetime), (100, 200, 50));
    assert_eq!(fail(&["-n", "--stale-nonce=abc"]).exit_code, 255);
}

#[test]
fn bool_words() {
    let c = run(&["-n", "--fingerprint=yes", "--no-udp=1", "--no-tcp=On", "--no-tls=t", "--syslog=9"]);
    assert!(c.fingerprint && c.no_udp && c.no_tcp && c.no_tls && c.syslog);
    let c = run(&["-n", "--fingerprint", "--fingerprint=off", "--drop-invalid-packets=No",
        "--rfc5766-channel-numbers=false", "--new-log-timestamp=0", "--stateless-nonce=F"]);
    assert!(!c.fingerprint && !c.drop_invalid_packets && !c.rfc5766_channel_numbers);
    assert!(!c.new_log_timestamp && !c.stateless_nonce);
    let e = fail(&["-n", "--fingerprint=maybe"]);
    assert_eq!(e.exit_code, 255);
    assert!(e.message.contains("Unknown boolean value: maybe"), "{}", e.message);
    let e = file_err("no-multicast-peers=enabled\n", &[]);
    assert_eq!(e.exit_code, 255);
}

#[test]
fn value_ignoring_keys_turn_the_feature_on() {
    let c = run(&["-n", "--use-auth-secret=false", "--realm=r", "--prometheus=false", "--rfc5780=0"]);
    assert!(c.use_auth_secret && c.lt_cred_mech);
    assert!(c.prometheus, "--prometheus=false still turns the exporter on");
    assert!(!c.unsupported.contains(&"--prometheus".to_string()));
    assert!(c.rfc5780, "--rfc5780=0 still turns RFC 5780 on");
    assert!(!c.unsupported.contains(&"--rfc5780".to_string()));
}

#[test]
fn verbose_levels() {
    let c = run(&["-n", "-V", "--verbose=false"]);
    assert!(c.very_verbose && c.verbose, "-V is not undone by --verbose=false");
    let c = run(&["-n", "-v", "--verbose=0"]);
    assert!(!c.verbose && !c.very_verbose);
}

#[test]
fn logging_options() {
    assert_eq!(run(&["-n", "--log-file=-"]).log_file, LogTarget::Stdout);
    assert_eq!(run(&["-n", "--log-file", "syslog"]).log_file, LogTarget::Syslog);
    assert_eq!(run(&["-n", "-l", "/tmp/t.log"]).log_file, LogTarget::File("/tmp/t.log".into()));
    let c = run(&["-n", "--simple-log", "--no-stdout-log", "--log-min-level=WARNING",
        "--new-log-timestamp-format=%FT%T%z", "--drop-invalid-packets-log"]);
    assert!(c.simple_log && c.no_stdout_log && c.drop_invalid_packets_log);
    assert_eq!(c.log_min_level, LogLevel::Warning);
    assert_eq!(c.new_log_timestamp_format, "%FT%T%z");
    assert_eq!(fail(&["-n", "--log-min-level=loud"]).exit_code, 255);
    assert_eq!(run(&["-n", "--pidfile="]).pidfile, None);
    assert_eq!(run(&["-n", "--pidfile", "/tmp/x.pid"]).pidfile, Some("/tmp/x.pid".into()));
}

#[test]
fn threads_and_buffers() {
    let c = run(&["-n", "--relay-threads=0", "--cpus=3", "--sock-buf-size=65536"]);
    assert_eq!(c.relay_threads, Some(0));
    assert_eq!(c.cpus, Some(3));
    assert_eq!(c.sock_buf_size, 65536);
    let c = run(&["-n", "-m", "500"]);
    assert_eq!(c.relay_threads, Some(128));
    assert_eq!(has_warning(&c, "max number of relay threads is 128"), 1);
    assert_eq!(fail(&["-n", "-m", "many"]).exit_code, 255);
}

#[test]
fn dtls_switches() {
    let c = run(&["-n", "--no-dtls"]);
    assert!(!c.dtls && c.unsupported.is_empty());
    let c = run(&["-n", "--no-dtls=false"]);
    assert!(c.dtls && c.unsupported.is_empty());
    let c = run(&["-n", "--dtls"]);
    assert!(c.dtls && c.unsupported.is_empty());
}

#[test]
fn user_database_options() {
    use turnserver::userdb::DbSpec;
    let c = run(&["-a", "-r", "r", "--redis-userdb", "ip=1", "--redis-userdb=ip=2"]);
    assert_eq!(c.userdb, Some(DbSpec::Redis("ip=2".into())));
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    let c = run(&["-a", "-r", "r", "-b", "/tmp/x.db", "--no-dynamic-ip-list", "--no-dynamic-realms=false", "--no-auth-pings"]);
    assert_eq!(c.userdb, Some(DbSpec::Sqlite("/tmp/x.db".into())));
    // coturn ignores the values of these switches: any occurrence turns them on.
    assert!(c.no_dynamic_ip_list && c.no_dynamic_realms && c.no_auth_pings);
    let c = run(&["-a", "-r", "r", "-e", "host=db dbname=coturn", "--sql-userdb=host=db2"]);
    assert_eq!(c.userdb, Some(DbSpec::Postgres("host=db2".into())));
    let c = run(&["-a", "-r", "r", "-M", "host=db password=x", "--secret-key-file=/k"]);
    assert_eq!(c.userdb, Some(DbSpec::Mysql("host=db password=x".into())));
    assert_eq!(c.secret_key_file.as_deref(), Some(std::path::Path::new("/k")));
    assert!(c.lt_cred_mech);
    // A database alone does not turn authentication on (as coturn); it warns.
    let c = run(&["-b", "/tmp/x.db"]);
    assert!(c.no_auth);
    assert!(c.warnings.iter().any(|w| w.contains("user database is configured")), "{:?}", c.warnings);
}

#[test]
fn every_option_is_implemented() {
    let c = run(&["-n", "--raw-public-keys", "--include-reason-string", "--redis-statsdb=ip=3", "--mobility=false", "-S",
        "--total-quota=10", "-A", "ipv6", "--cli", "--cert=/a.pem", "--mongo-userdb=ip=2", "--log-binding"]);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    assert!(c.unsupported_values.is_empty(), "{:?}", c.unsupported_values);
    assert!(c.raw_public_keys && c.include_reason_string && c.log_binding);
    // Accepted while parsing; the server refuses it at start.
    assert_eq!(c.mongo_userdb.as_deref(), Some("ip=2"));
    assert!(c.cli);
    assert_eq!(c.redis_statsdb.as_deref(), Some("ip=3"));
    assert_eq!(c.cert.as_deref(), Some(std::path::Path::new("/a.pem")));
    assert!(c.stun_only && c.total_quota == 10);
    assert_eq!(c.allocation_default_address_family, AddressFamilyDefault::Ipv6);
    let c = run(&["-n", "--raw-public-keys=no", "--include-reason-string=false"]);
    assert!(!c.raw_public_keys && !c.include_reason_string);
    let c = run(&["-n", "-K", "1"]);
    assert_eq!(c.allocation_default_address_family, AddressFamilyDefault::Keep);
    // No row of the option table is left "not supported yet".
    let left: Vec<&str> = turnserver::config::options::all()
        .filter(|s| s.support == turnserver::config::options::Support::No)
        .map(|s| s.long)
        .collect();
    assert!(left.is_empty(), "options still not supported: {left:?}");
}

#[test]
fn implemented_options_are_not_unsupported() {
    let c = run(&["-n", "-p", "3478", "--tls-listening-port=5349", "--alt-listening-port=3479",
        "--alt-tls-listening-port=5350", "-L", "127.0.0.1", "-E", "127.0.0.1", "-X", "1.2.3.4",
        "--min-port=50000", "--max-port=50100", "--no-udp", "--no-tcp", "--no-tls", "--no-dtls",
        "-m", "2", "--cpus=2", "--sock-buf-size=1000", "-a", "-u", "a:b", "-r", "x", "-C", ":",
        "--stale-nonce=10", "--stateless-nonce", "--stateless-nonce-secret=s",
        "--max-allocate-lifetime=1", "--channel-lifetime=1", "--permission-lifetime=1",
        "--allow-loopback-peers", "--no-multicast-peers", "--allowed-peer-ip=1.1.1.1",
        "--denied-peer-ip=2.2.2.2", "-f", "--software-attribute", "--no-software-attribute",
        "--stun-backward-compatibility", "--rfc3489-compatibility", "--rfc5766-channel-numbers",
        "--drop-invalid-packets", "--drop-invalid-packets-log", "-l", "stdout", "--simple-log",
        "--no-stdout-log", "--syslog", "-v", "-V", "--log-min-level=info", "--new-log-timestamp",
        "--new-log-timestamp-format=%T", "--pidfile=", "--no-tcp-relay", "--no-cli", "--prod",
        "--no-sslv2", "--no-sslv3", "--no-rfc5780", "--response-origin-only-with-rfc5780", "--ne=3"]);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    let c = run(&["-n", "--use-auth-secret", "--static-auth-secret=s", "--rest-api-separator=-", "-o"]);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
}

// ---------------------------------------------------------------- special commands

#[test]
fn version_and_help() {
    match parse_args(&argv(&["--version"])) {
        Ok(Command::Print(t)) => assert_eq!(t, turnserver::VERSION),
        other => panic!("{other:?}"),
    }
    // Even with other (bad) options around, as coturn's first pass does.
    match parse_args(&argv(&["--bogus", "-h"])) {
        Ok(Command::Print(t)) => {
            assert!(t.contains("--listening-port"));
            assert!(t.contains("--static-auth-secret"));
            assert!(t.contains("-c <file>"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_cli_option_exits_255_with_usage() {
    let e = fail(&["-n", "--no-such-option"]);
    assert_eq!(e.exit_code, 255);
    assert!(e.message.contains("unrecognized option '--no-such-option'"), "{}", e.message);
    assert!(e.message.contains("Usage: turnserver"), "usage expected");
    assert_eq!(fail(&["-n", "-Y"]).exit_code, 255);
    assert_eq!(fail(&["-n", "--realm"]).exit_code, 255, "missing value");
    assert_eq!(fail(&["-n", "-K"]).exit_code, 255, "-K needs a value");
    // Removed from coturn's command line in 4.7.0.
    assert_eq!(fail(&["-n", "--no-tlsv1"]).exit_code, 255);
    assert_eq!(fail(&["-n", "--no-tlsv1_1"]).exit_code, 255);
}

// ---------------------------------------------------------------- config file

#[test]
fn missing_config_file_warns_and_continues() {
    let c = run(&["-c", "/nonexistent-dir-xyz/turnserver.conf", "-p", "4000"]);
    assert_eq!(c.listening_port, 4000);
    assert_eq!(
        c.warnings,
        vec!["Cannot find config file: /nonexistent-dir-xyz/turnserver.conf. Default and command-line settings will be used."]
    );
    assert_eq!(c.config_file, None);
}

#[test]
fn config_file_absolute_path() {
    let f = Conf::new("listening-port=4001\n");
    let c = run(&["-c", f.p()]);
    assert_eq!(c.listening_port, 4001);
    assert_eq!(c.config_file.as_deref(), Some(f.path.as_path()));
    assert!(c.warnings.is_empty());
}

#[test]
fn config_file_relative_name_searched_from_base_dir() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let base = dir.path().join("run");
    let etc = base.join("etc").join("coturn");
    if let Err(e) = std::fs::create_dir_all(&etc) {
        panic!("{e}");
    }
    if let Err(e) = std::fs::write(etc.join("my-test-turn.conf"), "realm=searched.example\n") {
        panic!("{e}");
    }
    let run_in = |name: &str, b: &Path| match parse_args_in(&argv(&["-c", name]), b, None) {
        Ok(Command::Run(c)) => *c,
        other => panic!("{other:?}"),
    };
    let c = run_in("my-test-turn.conf", &base);
    assert_eq!(c.realm, "searched.example");
    assert!(c.config_file.is_some_and(|p| p.ends_with("etc/coturn/my-test-turn.conf")));
    // ../etc/ from a sibling directory.
    let sib = dir.path().join("bin");
    let _ = std::fs::create_dir_all(&sib);
    let _ = std::fs::create_dir_all(dir.path().join("etc"));
    let _ = std::fs::write(dir.path().join("etc/other-test-turn.conf"), "realm=up.example\n");
    assert_eq!(run_in("other-test-turn.conf", &sib).realm, "up.example");
    // Not found anywhere.
    let c = run_in("no-such-turn-xyz.conf", &base);
    assert_eq!(has_warning(&c, "Cannot find config file: no-such-turn-xyz.conf."), 1);
}

#[test]
fn no_config_flag_wins() {
    let f = Conf::new("listening-port=4002\n");
    let c = run(&["-c", f.p(), "-n"]);
    assert_eq!(c.listening_port, 3478);
    assert!(c.warnings.is_empty() && c.config_file.is_none());
}

#[test]
fn line_syntax_comments_quotes() {
    let c = with_file(
        "# comment\n   # indented comment\n\nlistening-port 4003\nrealm = \"example.org\"\n\
         \tpidfile=\"/var/tmp/turnserver.pid\"   \nstatic-auth-secret=abc#def\nfingerprint\n\
         cli-password=$5$79a3$81df\n",
        &[],
    );
    assert_eq!(c.listening_port, 4003);
    assert_eq!(c.realm, "example.org");
    assert_eq!(c.pidfile, Some("/var/tmp/turnserver.pid".into()));
    assert_eq!(c.static_auth_secrets, vec!["abc#def"]);
    assert!(c.fingerprint && c.use_auth_secret);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    assert_eq!(c.cli_password, "$5$79a3$81df");
}

#[test]
fn unknown_key_and_semicolon_warnings_once() {
    let c = with_file("no-loopback-peers\nlisten-port=3478\nrealm=example.org;\n", &[]);
    assert_eq!(c.warnings.iter().filter(|w| *w == "Bad configuration format: no-loopback-peers").count(), 1);
    assert_eq!(c.warnings.iter().filter(|w| *w == "Bad configuration format: listen-port").count(), 1);
    assert_eq!(
        has_warning(&c, "Check config! The following line ends with semicolon: \"realm=example.org;\""),
        1
    );
    assert_eq!(c.realm, "example.org;", "the semicolon stays part of the value");
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    // CLI-only options are not config keys.
    let c = with_file("version\nn\n", &[]);
    assert_eq!(has_warning(&c, "Bad configuration format"), 2);
}

#[test]
fn lists_accumulate_and_last_scalar_wins() {
    let c = with_file(
        "listening-ip=10.0.0.1\nlistening-ip=10.0.0.2\nrelay-ip=10.0.0.3\nrelay-ip=10.0.0.4\n\
         external-ip=1.1.1.1/10.0.0.1\nexternal-ip=2.2.2.2/10.0.0.2\nstatic-auth-secret=a\nstatic-auth-secret=b\n\
         allowed-peer-ip=10.1.0.1\ndenied-peer-ip=10.0.0.0-10.255.255.255\ndenied-peer-ip=::1\n\
         alternate-server=1.2.3.4\nalternate-server=1.2.3.5\nrealm=a\nrealm=b\nlistening-port=1\nlistening-port=2\n",
        &[],
    );
    assert_eq!(c.listening_ips, vec![ip("10.0.0.1"), ip("10.0.0.2")]);
    assert_eq!(c.relay_ips, vec![ip("10.0.0.3"), ip("10.0.0.4")]);
    assert_eq!(c.external_ips, vec![(ip("1.1.1.1"), Some(ip("10.0.0.1"))), (ip("2.2.2.2"), Some(ip("10.0.0.2")))]);
    assert_eq!(c.static_auth_secrets, vec!["a", "b"]);
    // The private part of each external-ip mapping is allowed as a peer, as in coturn.
    assert_eq!(c.allowed_peer_ips, vec!["10.0.0.1", "10.0.0.2", "10.1.0.1"]);
    assert_eq!(c.denied_peer_ips, vec!["10.0.0.0-10.255.255.255", "::1"]);
    assert_eq!(c.realm, "b");
    assert_eq!(c.listening_port, 2);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    assert_eq!(c.alternate_servers, vec![sa("1.2.3.4:3478"), sa("1.2.3.5:3478")]);
}

fn sa(s: &str) -> std::net::SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn alternate_server_forms_and_default_ports() {
    let c = run(&[
        "-n", "--alternate-server=10.0.0.1", "--alternate-server=10.0.0.2:5678", "--alternate-server=[2001:db8::1]:3479",
        "--alternate-server=2001:db8::2", "--tls-alternate-server=10.0.0.3", "--udp-alternate-server=10.0.0.4:1",
        "--tcp-alternate-server=[::1]", "--aux-server=127.0.0.1:33478", "--udp-self-balance",
    ]);
    assert_eq!(
        c.alternate_servers,
        vec![sa("10.0.0.1:3478"), sa("10.0.0.2:5678"), sa("[2001:db8::1]:3479"), sa("[2001:db8::2]:3478")]
    );
    assert_eq!(c.tls_alternate_servers, vec![sa("10.0.0.3:5349")]);
    assert_eq!(c.udp_alternate_servers, vec![sa("10.0.0.4:1")]);
    assert_eq!(c.tcp_alternate_servers, vec![sa("[::1]:3478")]);
    assert_eq!(c.aux_servers, vec![sa("127.0.0.1:33478")]);
    assert!(c.udp_self_balance);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    let e = match parse_args(&argv(&["-n", "--alternate-server=host.example"])) {
        Err(e) => e,
        Ok(_) => panic!("a host name is not an address"),
    };
    assert!(e.message.contains("alternate-server"), "{}", e.message);
}

#[test]
fn command_line_overrides_file_and_appends_lists() {
    let c = with_file(
        "listening-port=33478\nrealm=file.org\nlistening-ip=10.0.0.1\nfingerprint\nlog-file=/var/log/t.log\n",
        &["--listening-port=33479", "-L", "10.0.0.2", "--fingerprint=false", "--log-file=stdout"],
    );
    assert_eq!(c.listening_port, 33479);
    assert_eq!(c.realm, "file.org");
    assert_eq!(c.listening_ips, vec![ip("10.0.0.1"), ip("10.0.0.2")]);
    assert!(!c.fingerprint);
    assert_eq!(c.log_file, LogTarget::Stdout);
}

#[test]
fn users_file_first_then_cli_in_order() {
    let c = with_file("user=f1:p\nrealm=x\nuser=f2:p\n", &["-u", "c1:p", "--user=c2:p", "-a"]);
    assert_eq!(c.users, vec!["f1:p", "f2:p", "c1:p", "c2:p"]);
    assert!(c.lt_cred_mech && !c.no_auth);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

// ---------------------------------------------------------------- sanity checks

#[test]
fn fatal_sanity_errors() {
    let e = fail(&["-n", "-a", "-z", "-r", "x"]);
    assert_eq!(e, ConfigError { message: "CONFIG ERROR: -a and -z options cannot be used together.".into(), exit_code: 255 });
    let e = fail(&["-n", "-az"]);
    assert_eq!(e.exit_code, 255);
    // REST API mode is long-term auth too.
    assert_eq!(fail(&["-n", "--static-auth-secret=s", "--no-auth"]).exit_code, 255);

    let e = fail(&["-n", "--no-udp-relay", "--no-tcp-relay"]);
    assert_eq!(e.message, "CONFIG ERROR: --no-udp-relay and --no-tcp-relay options cannot be used together.");
    assert_eq!(e.exit_code, 255);

    let e = fail(&["-n", "--bps-capacity=1000000"]);
    assert_eq!(
        e.message,
        "CONFIG ERROR: If you set the --bps-capacity option, then you must set --max-bps options, too."
    );
    assert!(run(&["-n", "--bps-capacity=1000000", "-s", "64000"]).bps_capacity == 1_000_000);

    for bad in ["192.168.0.0/16", "10.0.0.9-10.0.0.1", "10.0.0.1-::1", "host.example", ""] {
        let e = fail(&["-n", &format!("--denied-peer-ip={bad}")]);
        assert_eq!(e.exit_code, 255, "{bad}");
        assert!(e.message.contains("--denied-peer-ip"), "{}", e.message);
        assert_eq!(fail(&["-n", &format!("--allowed-peer-ip={bad}")]).exit_code, 255);
    }
    assert_eq!(file_err("denied-peer-ip=10.0.0.0/8\n", &[]).exit_code, 255);

    assert_eq!(fail(&["-n", "-L", "1.2.3"]).exit_code, 255);
    assert_eq!(fail(&["-n", "--relay-ip=eth0"]).exit_code, 255);
    let e = fail(&["-n", "-X", "not-an-ip"]);
    assert_eq!(e.message, "-X : Wrong address format: not-an-ip");
    assert_eq!(fail(&["-n", "-X", "1.2.3.4/x"]).exit_code, 255);

    for p in ["70000", "-1", "abc", ""] {
        assert_eq!(fail(&["-n", &format!("--listening-port={p}")]).exit_code, 255, "{p}");
        assert_eq!(fail(&["-n", &format!("--min-port={p}")]).exit_code, 255, "{p}");
    }
    assert_eq!(fail(&["-n", "--tls-listening-port=65536"]).exit_code, 255);
    let e = fail(&["-n", "--min-port=60000", "--max-port=50000"]);
    assert!(e.message.contains("--min-port (60000)"), "{}", e.message);
    assert_eq!(run(&["-n", "--min-port=50000", "--max-port=50000"]).min_port, 50000);

    // As coturn: a second single external IP is reported and ignored.
    let c = run(&["-n", "-X", "1.2.3.4", "-X", "5.6.7.8"]);
    assert_eq!(c.external_ips, vec![(ip("1.2.3.4"), None)]);
    assert_eq!(has_warning(&c, "You cannot define external IP more than once in the configuration"), 1);
    let c = with_file("external-ip=1.2.3.4\n", &["--external-ip=5.6.7.8"]);
    assert_eq!(c.external_ips, vec![(ip("1.2.3.4"), None)]);
    // The same address twice is harmless.
    assert_eq!(run(&["-n", "-X", "1.2.3.4", "-X", "1.2.3.4"]).external_ips.len(), 1);
}

#[test]
fn start_up_refusals_checked_while_parsing() {
    // coturn resolves --proc-user / --proc-group while reading options.
    let e = fail(&["-n", "--proc-user=no-such-user-turnserver-rs"]);
    assert_eq!(e, ConfigError { message: "Unknown user name: no-such-user-turnserver-rs".into(), exit_code: 255 });
    let e = file_err("proc-group=no-such-group-turnserver-rs\n", &[]);
    assert_eq!(e, ConfigError { message: "Unknown group name: no-such-group-turnserver-rs".into(), exit_code: 255 });
    run(&["-n", "--proc-user=root", "--proc-group=0"]);

    // Loopback peers are refused while a CLI without password is on (4.17:
    // only with --cli); a password or no CLI makes them acceptable.
    let e = fail(&["-n", "--cli", "--allow-loopback-peers"]);
    assert_eq!(e.message, "CONFIG ERROR: allow_loopback_peers and empty cli password cannot be used together.");
    assert_eq!(e.exit_code, 255);
    assert_eq!(file_err("cli\nallow-loopback-peers\n", &[]).exit_code, 255);
    assert!(run(&["-n", "--cli", "--cli-password=pw", "--allow-loopback-peers"]).allow_loopback_peers);
    assert!(run(&["-n", "--allow-loopback-peers"]).allow_loopback_peers);

    // A user line that gives no key is refused when users are used at all.
    let e = fail(&["-n", "-a", "-r", "example.org", "--user=bob"]);
    assert!(e.message.starts_with("Wrong user account: bad user 'bob'"), "{}", e.message);
    assert_eq!(e.exit_code, 255);
    let e = file_err("user=bob:0xZZ\n", &["-r", "example.org"]);
    assert!(e.message.contains("key after 0x must be exactly 32 hex digits"), "{}", e.message);
    // Ignored (as coturn) under the REST API or -z: no refusal.
    run(&["-n", "--static-auth-secret=s", "--user=bob"]);
    run(&["-n", "-z", "--user=bob"]);
}

#[test]
fn auth_warnings() {
    let c = run(&["-n", "-a"]);
    assert!(c.lt_cred_mech);
    assert_eq!(has_warning(&c, "did not specify the default realm option (-r option)"), 1);

    let c = run(&["-n", "-u", "bob:secret", "-r", "example.org"]);
    assert!(c.lt_cred_mech && !c.no_auth);
    assert_eq!(has_warning(&c, "I am turning --lt-cred-mech ON for you"), 1);

    let c = run(&["-n", "--static-auth-secret=s", "-r", "example.org"]);
    assert!(c.use_auth_secret && c.lt_cred_mech && !c.no_auth);
    assert_eq!(c.static_auth_secrets, vec!["s"]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let c = run(&["-n", "--use-auth-secret", "--static-auth-secret=s", "-r", "x", "-u", "bob:p"]);
    assert_eq!(has_warning(&c, "--user accounts are ignored"), 1);

    let c = run(&["-n", "-a", "--use-auth-secret", "-r", "x"]);
    assert_eq!(has_warning(&c, "You specified --lt-cred-mech and --use-auth-secret in the same time"), 1);

    let c = run(&["-n", "-z", "-u", "bob:p"]);
    assert!(!c.lt_cred_mech && c.no_auth);
    assert_eq!(has_warning(&c, "User accounts will be ignored"), 1);

    let c = run(&["-n", "--allow-loopback-peers"]);
    assert_eq!(has_warning(&c, "allow_loopback_peers opens a possible security vulnerability"), 1);
}

#[test]
fn legacy_tls_keys_in_file_warn_but_run() {
    let c = with_file("no-tlsv1\nno-tlsv1_1\nno-sslv2\nno-sslv3\nprod\nne=3\nsecret-ts-exp-time=100\nkeep-address-family\n", &[]);
    assert_eq!(has_warning(&c, "Option no-tlsv1 is obsolete"), 1);
    assert_eq!(has_warning(&c, "Option no-tlsv1_1 is obsolete"), 1);
    assert_eq!(has_warning(&c, "secret-ts-exp-time is obsolete"), 1);
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    assert_eq!(c.allocation_default_address_family, turnserver::config::AddressFamilyDefault::Keep);
}

// ---------------------------------------------------------------- real configs

#[test]
fn debian_stock_config() {
    let debian = "\
# Coturn TURN SERVER configuration file
#
#listening-port=3478
#tls-listening-port=5349
#listening-ip=172.17.19.101
#lt-cred-mech
#realm=mycompany.org
# Option to redirect all log output into system log (syslog).
syslog

# This flag means that no RFC5780 support.
no-rfc5780

# Disable handling old STUN Binding requests
no-stun-backward-compatibility

# Only send RESPONSE-ORIGIN attribute in binding response if RFC5780 is enabled.
response-origin-only-with-rfc5780
";
    let c = with_file(debian, &["--pidfile="]);
    assert!(c.syslog);
    assert!(!c.stun_backward_compatibility && !c.software_attribute);
    assert_eq!(c.pidfile, None);
    assert!(c.no_auth && !c.lt_cred_mech);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(has_warning(&c, "no-stun-backward-compatibility is obsolete"), 1);
}

#[test]
fn webrtc_production_config() {
    let conf = "\
listening-port=3478
tls-listening-port=5349
listening-ip=10.0.0.5
relay-ip=10.0.0.5
external-ip=203.0.113.10/10.0.0.5
min-port=49152
max-port=65535
fingerprint
lt-cred-mech
use-auth-secret
static-auth-secret=f00dcafe0123456789
realm=turn.example.com
total-quota=100
stale-nonce=600
cert=/etc/letsencrypt/live/turn.example.com/fullchain.pem
pkey=/etc/letsencrypt/live/turn.example.com/privkey.pem
cipher-list=\"ECDHE-RSA-AES256-GCM-SHA512:DHE-RSA-AES256-GCM-SHA512\"
no-tlsv1
no-tlsv1_1
dh-file=/etc/coturn/dhp.pem
no-multicast-peers
no-cli
no-tcp-relay
denied-peer-ip=0.0.0.0-0.255.255.255
denied-peer-ip=10.0.0.0-10.255.255.255
denied-peer-ip=100.64.0.0-100.127.255.255
denied-peer-ip=127.0.0.0-127.255.255.255
denied-peer-ip=169.254.0.0-169.254.255.255
denied-peer-ip=172.16.0.0-172.31.255.255
denied-peer-ip=192.168.0.0-192.168.255.255
denied-peer-ip=::1
denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff
allowed-peer-ip=10.0.0.5
log-file=/var/log/turnserver/turn.log
simple-log
verbose
pidfile=\"/var/run/turnserver.pid\"
";
    let c = with_file(conf, &["--log-file=stdout"]);
    assert_eq!((c.listening_port, c.tls_listening_port), (3478, 5349));
    assert_eq!(c.listening_ips, vec![ip("10.0.0.5")]);
    assert_eq!(c.external_ips, vec![(ip("203.0.113.10"), Some(ip("10.0.0.5")))]);
    assert!(c.fingerprint && c.lt_cred_mech && c.use_auth_secret && !c.no_auth);
    assert_eq!(c.static_auth_secrets, vec!["f00dcafe0123456789"]);
    assert_eq!(c.realm, "turn.example.com");
    assert_eq!(c.total_quota, 100);
    assert_eq!(c.stale_nonce, 600);
    assert!(c.no_multicast_peers && c.no_tcp_relay && !c.no_udp_relay);
    assert_eq!(c.denied_peer_ips.len(), 9);
    assert_eq!(c.allowed_peer_ips, vec!["10.0.0.5"]);
    assert_eq!(c.log_file, LogTarget::Stdout);
    assert!(c.simple_log && c.verbose);
    assert_eq!(c.pidfile, Some("/var/run/turnserver.pid".into()));
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    assert!(c.cert.is_some() && c.pkey.is_some() && c.cipher_list.is_some() && c.dh_file.is_some());
    // lt-cred-mech + use-auth-secret mix, and the two removed TLS keys.
    assert_eq!(has_warning(&c, "in the same time"), 1);
    assert_eq!(has_warning(&c, "is obsolete"), 2);
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
}

// ---------------------------------------------------------------- example file

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("turnserver.conf.example")
}

#[test]
fn example_file_parses_without_warnings() {
    let p = example_path();
    let c = run(&["-c", p.to_str().unwrap_or_default()]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(c.unsupported.is_empty());
    assert_eq!(c.config_file.as_deref(), Some(p.as_path()));
}

#[test]
fn example_file_every_option_uncommented_parses() {
    let text = match std::fs::read_to_string(example_path()) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut count = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix('#') else { continue };
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        count += 1;
        let key: String = rest.chars().take_while(|c| !matches!(c, '=' | ' ' | '\t')).collect();
        seen.insert(key.clone());
        let mut modified: Vec<&str> = lines.clone();
        modified[i] = rest;
        // bps-capacity needs max-bps (coturn's sanity check); give it one.
        let extra: &[&str] = if key == "bps-capacity" { &["--max-bps=1"] } else { &[] };
        let f = Conf::new(&modified.join("\n"));
        let mut a = vec!["-c", f.p()];
        a.extend_from_slice(extra);
        match parse_args(&argv(&a)) {
            Ok(Command::Run(c)) => {
                assert_eq!(has_warning(&c, "Bad configuration format"), 0, "line {}: {rest}", i + 1);
                assert_eq!(has_warning(&c, "semicolon"), 0, "line {}: {rest}", i + 1);
            }
            // The sample's `turnserver` account need not exist here; coturn
            // refuses unknown names at start-up too.
            Err(e) if (key == "proc-user" || key == "proc-group") && e.message.starts_with("Unknown ") => {
                assert_eq!(e.exit_code, 255);
            }
            other => panic!("line {} `{rest}` does not parse: {other:?}", i + 1),
        }
    }
    assert!(count > 150, "only {count} option lines");
    // Every config key of the table is documented.
    for spec in turnserver::config::options::all().filter(|s| s.config_key) {
        assert!(seen.contains(spec.long), "{} is not in turnserver.conf.example", spec.long);
    }
}

/// The "[not supported yet]" marks of the example file follow the option table,
/// so the documentation cannot drift from what the server does.
#[test]
fn example_file_marks_match_the_option_table() {
    let text = std::fs::read_to_string(example_path()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix('#') else { continue };
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let key: String = rest.chars().take_while(|c| !matches!(c, '=' | ' ' | '\t')).collect();
        let Some(spec) = turnserver::config::options::by_config_key(&key) else { continue };
        // Skip earlier example lines of the same option, then take its comment.
        let mut end = i;
        while end > 0 && lines[end - 1].strip_prefix('#').is_some_and(|r| r.starts_with(|c: char| c.is_ascii_alphabetic())) {
            end -= 1;
        }
        let mut j = end;
        while j > 0 && lines[j - 1].starts_with("# ") {
            j -= 1;
        }
        let para: String = lines[j..end].iter().map(|x| x.trim_start_matches('#').trim()).collect::<Vec<_>>().join(" ");
        let marked = para.contains("[not supported yet]");
        let unsupported = spec.support == turnserver::config::options::Support::No;
        assert_eq!(marked, unsupported, "{key}: example says unsupported={marked}, table says {unsupported}");
        checked += 1;
    }
    assert!(checked > 150);
}
