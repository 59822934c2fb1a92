//! The daemon shell: turns a parsed [`Config`] into a running server, prints
//! coturn's startup lines, waits for signals and shuts down cleanly. The
//! binary is a thin wrapper around [`run`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{anyhow, Context};

use crate::config::{self, Command, Config};
use crate::core::credentials::{parse_user_sha256, parse_user_spec, AuthMode, Credentials, RestHmac};
use crate::core::nonce::NonceGen;
use crate::core::peer_policy::{IpRange, OwnAddresses, PeerPolicy};
use crate::core::quota::Quotas;
use crate::core::{AlternateServers, CoreConfig};
use crate::logging::{self, LogOptions};
use crate::relay::{self, sockets, RelayPlan};
use crate::tls::{ReloadableTls, TlsOptions};
use crate::userdb::service::{self, DbService, ServiceOptions};
use crate::userdb::{secret_key, DbSpec};
use crate::mgmt::runtime::{DaemonRequest, Runtime};
use crate::mgmt::systemd::Notifier;
use crate::{process, VERSION};

/// Range of the random start of the session counters: far below the 10^15
/// per thread, so an id still names its thread.
const SESSION_ID_SPREAD: u64 = 1 << 40;

/// Exit code for fatal start-up errors (coturn exits with 1 or -1 for these).
const EXIT_FATAL: i32 = 1;

/// Run the server with this argv; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let cfg = match config::parse_args(args) {
        Ok(Command::Print(text)) => {
            println!("{text}");
            return 0;
        }
        Ok(Command::Run(cfg)) => cfg,
        Err(e) => {
            eprintln!("{}", e.message);
            return e.exit_code;
        }
    };
    // The log is opened before daemonising so relative paths resolve against
    // the directory the operator started us in.
    let facility = match cfg.syslog_facility.as_deref() {
        None => libc::LOG_USER,
        Some(name) => match logging::syslog::facility_from_name(name) {
            Some(f) => f,
            None => {
                eprintln!("Wrong syslog facility: {name}");
                return config::ConfigError::EXIT_CODE;
            }
        },
    };
    let log = match logging::init_with_syslog_facility(&LogOptions::from_config(&cfg), facility) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("Cannot open log: {e:#}");
            return EXIT_FATAL;
        }
    };
    if cfg.daemon {
        if let Err(e) = process::daemonize() {
            tracing::error!("Cannot start daemon process: {e}");
            return EXIT_FATAL;
        }
    }
    match serve(args, &cfg, &log) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{e:#}");
            EXIT_FATAL
        }
    }
}

/// Build the core's settings from the configuration.
pub fn core_config(cfg: &Config) -> anyhow::Result<CoreConfig> {
    let realm = cfg.realm.clone();
    // RFC 8489 SHA-256 keys of the users given with a password.
    let sha256_users: std::collections::HashMap<String, [u8; 32]> =
        cfg.users.iter().filter_map(|spec| parse_user_sha256(spec, &realm)).collect();
    let rest_hmac = if cfg.rest_api_hmac_sha256 { RestHmac::Sha256 } else { RestHmac::Sha1 };
    let mode = if cfg.use_auth_secret || !cfg.static_auth_secrets.is_empty() {
        AuthMode::RestSecret { secrets: cfg.static_auth_secrets.clone(), separator: cfg.rest_api_separator }
    } else if cfg.lt_cred_mech || !cfg.users.is_empty() {
        let mut users = std::collections::HashMap::new();
        for spec in &cfg.users {
            let (name, key) = parse_user_spec(spec, &realm).map_err(|e| anyhow!("Wrong user account: {e}"))?;
            users.insert(name, key);
        }
        AuthMode::LongTerm { users }
    } else {
        AuthMode::NoAuth
    };
    let parse_ranges = |list: &[String]| -> anyhow::Result<Vec<IpRange>> {
        list.iter().map(|s| s.parse::<IpRange>().map_err(|e| anyhow!("{e}"))).collect()
    };
    let peers = PeerPolicy {
        allow_loopback: cfg.allow_loopback_peers,
        no_multicast: cfg.no_multicast_peers,
        allowed: parse_ranges(&cfg.allowed_peer_ips)?,
        denied: parse_ranges(&cfg.denied_peer_ips)?,
        own: OwnAddresses::default(),
    };
    let mut core = CoreConfig::new(
        Credentials { mode, realm, sha256_users, rest_hmac },
        NonceGen::new(cfg.stateless_nonce_secret.as_deref(), cfg.stale_nonce),
    );
    core.peers = peers;
    core.max_allocate_lifetime = cfg.max_allocate_lifetime;
    core.permission_lifetime = cfg.permission_lifetime;
    core.channel_lifetime = cfg.channel_lifetime;
    core.fingerprint = cfg.fingerprint;
    core.software = cfg.software_attribute.then(|| format!("turnserver-rs-{VERSION}"));
    core.stun_backward_compatibility = cfg.stun_backward_compatibility;
    core.rfc3489_compatibility = cfg.rfc3489_compatibility;
    core.rfc5766_channel_numbers = cfg.rfc5766_channel_numbers;
    core.drop_invalid_packets_log = cfg.drop_invalid_packets_log;
    core.no_udp_relay = cfg.no_udp_relay;
    core.no_tcp_relay = cfg.no_tcp_relay;
    core.stun_only = cfg.stun_only;
    core.no_stun = cfg.no_stun;
    core.secure_stun = cfg.secure_stun;
    core.rfc8489 = cfg.rfc8489_auth;
    core.oauth = cfg.oauth;
    core.oauth_server_name = cfg.server_name.clone().unwrap_or_else(|| cfg.realm.clone());
    core.default_family = cfg.allocation_default_address_family;
    core.verbose = cfg.verbose || cfg.very_verbose;
    core.log_binding = cfg.log_binding;
    core.include_reason_string = cfg.include_reason_string;
    core.quotas = Arc::new(Quotas::new(cfg.user_quota, cfg.total_quota));
    core.max_bps = cfg.max_bps;
    core.bps_capacity = Arc::new(crate::core::bandwidth::BpsCapacity::new(cfg.bps_capacity));
    core.unauth_limiter = cfg
        .unauthorized_ratelimit
        .then(|| Arc::new(crate::core::ratelimit::UnauthLimiter::new(cfg.unauthorized_ratelimit_rps)));
    core.check_origin_consistency = cfg.check_origin_consistency;
    core.server_relay = cfg.server_relay;
    core.mobility = cfg.mobility;
    core.multiplex_max_peers = cfg.multiplex_peer_max_peers as usize;
    core.external_ip = !cfg.external_ips.is_empty();
    core.alternates = AlternateServers {
        general: cfg.alternate_servers.clone(),
        tls: cfg.tls_alternate_servers.clone(),
        udp: cfg.udp_alternate_servers.clone(),
        tcp: cfg.tcp_alternate_servers.clone(),
        self_balance: if cfg.udp_self_balance { cfg.aux_servers.clone() } else { Vec::new() },
    };
    Ok(core)
}

/// The listener IPs: `--listening-ip`, or every local address.
pub fn listen_ips(cfg: &Config, local_addrs: &[IpAddr]) -> Vec<IpAddr> {
    if cfg.listening_ips.is_empty() {
        local_addrs.to_vec()
    } else {
        cfg.listening_ips.clone()
    }
}

/// `--alt-listening-port` and `--alt-tls-listening-port`, 0 meaning the
/// primary port + 1.
pub fn alt_ports(cfg: &Config) -> (u16, u16) {
    let alt = |given: u16, base: u16| if given == 0 { base.wrapping_add(1) } else { given };
    (alt(cfg.alt_listening_port, cfg.listening_port), alt(cfg.alt_tls_listening_port, cfg.tls_listening_port))
}

/// The RFC 5780 address map for [`CoreConfig::rfc5780`]: every listener
/// address (IP x primary/alternate, plain and TLS ports) to its OTHER-ADDRESS,
/// the next listening IP of its family on the other port of its pair. `None`
/// when `--rfc5780` is off or fewer than two specific listening IPs exist:
/// CHANGE-REQUEST needs a second IP to answer from.
pub fn rfc5780_partners(cfg: &Config, listen_ips: &[IpAddr]) -> Option<HashMap<SocketAddr, SocketAddr>> {
    if !cfg.rfc5780 {
        return None;
    }
    let ips: Vec<IpAddr> = listen_ips.iter().copied().filter(|ip| !ip.is_unspecified()).collect();
    if ips.len() < 2 {
        return None;
    }
    let (alt, alt_tls) = alt_ports(cfg);
    let pairs = [(cfg.listening_port, alt), (cfg.tls_listening_port, alt_tls)];
    let mut map = HashMap::new();
    for (i, &ip) in ips.iter().enumerate() {
        // coturn's choice: the next IP of the same family after this one, wrapping.
        let partner = (1..ips.len()).map(|k| ips[(i + k) % ips.len()]).find(|o| o.is_ipv4() == ip.is_ipv4() && *o != ip);
        let Some(partner) = partner else { continue };
        for (p, a) in pairs {
            map.insert(SocketAddr::new(ip, p), SocketAddr::new(partner, a));
            map.insert(SocketAddr::new(ip, a), SocketAddr::new(partner, p));
        }
    }
    (!map.is_empty()).then_some(map)
}

/// Listener and relay addresses, ports and thread count.
pub fn relay_plan(cfg: &Config, local_addrs: &[IpAddr], tls_on: bool, dtls_on: bool) -> anyhow::Result<RelayPlan> {
    let listen_ips = listen_ips(cfg, local_addrs);
    let rfc5780 = rfc5780_partners(cfg, &listen_ips).is_some();
    let (alt, alt_tls) = alt_ports(cfg);
    let relay_ips: Vec<IpAddr> = if !cfg.relay_ips.is_empty() {
        cfg.relay_ips.clone()
    } else {
        let specific: Vec<IpAddr> = listen_ips.iter().copied().filter(|ip| !ip.is_unspecified()).collect();
        if specific.is_empty() {
            // Wildcard listeners only: relay on every local address.
            local_addrs.to_vec()
        } else {
            specific
        }
    };
    if relay_ips.is_empty() {
        return Err(anyhow!("You must specify the relay address(es)"));
    }
    let mut udp_listeners = Vec::new();
    let mut tcp_listeners = Vec::new();
    let mut proxy_listeners = Vec::new();
    for &ip in &listen_ips {
        if !cfg.no_udp {
            udp_listeners.push(SocketAddr::new(ip, cfg.listening_port));
        }
        if !cfg.no_tcp {
            tcp_listeners.push(SocketAddr::new(ip, cfg.listening_port));
        }
        if let Some(p) = cfg.tcp_proxy_port {
            proxy_listeners.push(SocketAddr::new(ip, p));
        }
    }
    // RFC 5780: the alternate port on every listening IP, so CHANGE-REQUEST
    // answers have a socket to leave from and OTHER-ADDRESS is reachable.
    // An extra address that is already a listener (say the alternate port
    // equals the TLS port) is not bound twice.
    let extra: Vec<SocketAddr> = if rfc5780 { listen_ips.iter().map(|&ip| SocketAddr::new(ip, alt)).collect() } else { Vec::new() };
    for &a in extra.iter().chain(&cfg.aux_servers) {
        if !cfg.no_udp {
            push_new(&mut udp_listeners, a);
        }
        if !cfg.no_tcp {
            push_new(&mut tcp_listeners, a);
        }
    }
    if udp_listeners.is_empty() && tcp_listeners.is_empty() && proxy_listeners.is_empty() {
        return Err(anyhow!("You must specify at least one listener: UDP and TCP listeners are both disabled"));
    }
    let tls_ports: &[u16] = if rfc5780 { &[cfg.tls_listening_port, alt_tls] } else { &[cfg.tls_listening_port] };
    if dtls_on && !cfg.no_udp {
        for &ip in &listen_ips {
            for &p in tls_ports {
                udp_listeners.push(SocketAddr::new(ip, p));
            }
        }
    }
    let tls_listeners = if cfg.no_tls || !tls_on {
        Vec::new()
    } else {
        listen_ips.iter().flat_map(|&ip| tls_ports.iter().map(move |&p| SocketAddr::new(ip, p))).collect()
    };
    Ok(RelayPlan {
        stats_sink: None,
        tls_listeners,
        udp_listeners,
        tcp_listeners,
        proxy_listeners,
        // coturn: a session without an allocation lives max-allocate-timeout,
        // but only 3 s on a STUN-only server (nothing to allocate there).
        conn_timeout_secs: if cfg.stun_only { 3 } else { cfg.max_allocate_timeout },
        relay_ips,
        external: cfg.external_ips.clone(),
        min_port: cfg.min_port,
        max_port: cfg.max_port,
        threads: relay::thread_count(cfg.relay_threads, cfg.cpus),
        sock_buf_size: cfg.sock_buf_size,
        udp_recvmmsg: cfg.udp_recvmmsg,
        udp_gso: cfg.udp_gso,
        udp_recvmmsg_log: cfg.udp_recvmmsg_log,
        udp_sendmmsg_log: cfg.udp_sendmmsg_log,
        multiplex_port: cfg.multiplex_peer.then_some(cfg.multiplex_peer_port),
        coalesce_us: cfg.udp_coalesce_us,
        http: crate::relay::http_port::HttpPortOptions {
            acme_redirect: cfg.acme_redirect.clone(),
            respond_unsupported: cfg.respond_http_unsupported,
            web_admin: cfg.web_admin && cfg.web_admin_listen_on_workers && !cfg.no_tls,
        },
    })
}

/// The addresses a client may not relay to (see [`OwnAddresses`]): every
/// listener, wildcard ones expanded to the host's addresses and loopback, and
/// every listening, relay and external IP.
pub fn own_addresses(plan: &RelayPlan, locals: &[IpAddr]) -> OwnAddresses {
    let loopback = [IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)];
    let mut own = OwnAddresses { relay_ports: (plan.min_port, plan.max_port), ..Default::default() };
    let all = plan.udp_listeners.iter().chain(&plan.tcp_listeners).chain(&plan.tls_listeners).chain(&plan.proxy_listeners);
    for l in all {
        if l.ip().is_unspecified() {
            let same_family = |ip: &&IpAddr| ip.is_ipv4() == l.ip().is_ipv4();
            for &ip in locals.iter().chain(&loopback).filter(same_family) {
                push_new(&mut own.listeners, SocketAddr::new(ip, l.port()));
            }
            push_new(&mut own.listeners, *l);
        } else {
            push_new(&mut own.listeners, *l);
            push_new(&mut own.ips, l.ip());
        }
    }
    for &ip in &plan.relay_ips {
        if ip.is_unspecified() {
            for &l in locals {
                push_new(&mut own.ips, l);
            }
        } else {
            push_new(&mut own.ips, ip);
        }
    }
    for &(public, private) in &plan.external {
        push_new(&mut own.ips, public);
        if let Some(p) = private {
            push_new(&mut own.ips, p);
        }
    }
    own
}

/// Append `v` unless `list` already holds it (address lists stay short).
fn push_new<T: PartialEq>(list: &mut Vec<T>, v: T) {
    if !list.contains(&v) {
        list.push(v);
    }
}

fn serve(argv: &[String], cfg: &Config, log: &Arc<logging::LogHandle>) -> anyhow::Result<()> {
    tracing::info!("System cpu num is {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    tracing::info!("turnserver-rs {VERSION}: RFC 3489/5389/5766/5780/6062/6156 STUN/TURN Server");
    if let Some(f) = &cfg.config_file {
        tracing::info!("Config file found: {}", f.display());
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    for opt in &cfg.unsupported {
        tracing::warn!("option {opt} is not supported yet and is ignored");
    }
    if cfg.mongo_userdb.is_some() {
        // Debian's coturn is built without MongoDB too; starting without the
        // user database the operator named would refuse every user.
        return Err(anyhow!(
            "MongoDB user database (--mongo-userdb) is not supported: use --userdb (SQLite), --psql-userdb, --mysql-userdb or --redis-userdb"
        ));
    }
    let mut core = core_config(cfg)?;
    core.traffic_by_user = cfg.prometheus_username_labels;
    // Session ids unique across the servers of a fleet (stats DB keys).
    core.session_id_start = rand::random::<u64>() % SESSION_ID_SPREAD;
    match &core.credentials.mode {
        AuthMode::NoAuth => tracing::info!("Authentication: none (anonymous TURN)"),
        AuthMode::LongTerm { users } => tracing::info!("Authentication: long-term credentials, {} static user(s)", users.len()),
        AuthMode::RestSecret { secrets, .. } => {
            tracing::info!("Authentication: TURN REST API, {} shared secret(s)", secrets.len())
        }
    }
    tracing::info!("Default realm: {}", cfg.realm);
    let mut db = start_userdb(cfg, &mut core)?;
    sockets::set_devices(cfg.listening_device.clone(), cfg.relay_device.clone());
    let tls = tls_setup(cfg)?;
    let dtls = dtls_setup(cfg)?;
    let locals = sockets::local_addresses();
    let mut plan = relay_plan(cfg, &locals, tls.is_some(), dtls.is_some())?;
    core.peers.own = own_addresses(&plan, &locals);
    let stats_rt = start_statsdb(cfg, &mut core, &mut plan)?;
    core.rfc5780 = rfc5780_partners(cfg, &listen_ips(cfg, &locals));
    if cfg.rfc5780 && core.rfc5780.is_none() {
        tracing::warn!("I cannot support STUN CHANGE_REQUEST functionality because only one IP address is provided");
    }
    let mut shown = Vec::new();
    for l in plan.udp_listeners.iter().chain(&plan.tcp_listeners) {
        if !shown.contains(&l.ip()) {
            tracing::info!("Listener address to use: {}", l.ip());
            shown.push(l.ip());
        }
    }
    for r in &plan.relay_ips {
        tracing::info!("Relay address to use: {r}");
    }
    let nofile = process::raise_nofile_limit();
    tracing::info!("Max number of open files/sockets allowed for this process: {nofile}");
    tracing::info!("Due to the open files/sockets limitation, max supported number of TURN Sessions possible is: {} (approximately)", nofile / 2);
    // Written before the listeners answer, so a client that got an answer
    // can rely on the pid file.
    let pidfile = process::write_pidfile(cfg.pidfile.as_deref());
    let db_queue = db.as_ref().map(|d| d.queue());
    let core = Arc::new(core);
    let running = match relay::start_with_db(&plan, Arc::clone(&core), tls.clone(), dtls.clone(), db_queue).context("Cannot start relay threads") {
        Ok(r) => r,
        Err(e) => {
            if let Some(p) = &pidfile {
                process::remove_pidfile(p);
            }
            return Err(e);
        }
    };
    tracing::info!("Total relay threads: {}", plan.threads);
    let (requests, requested) = std::sync::mpsc::channel();
    let runtime = Arc::new(Runtime::new(
        argv.to_vec(),
        cfg.clone(),
        core,
        running.management(),
        Arc::clone(log),
        tls.clone(),
        dtls,
        requests.clone(),
    ));
    let started = start_management(cfg, &runtime).and_then(|()| {
        // Sockets are bound and certificates read: the rest runs unprivileged.
        if cfg.proc_user.is_some() || cfg.proc_group.is_some() {
            process::drop_privileges(cfg.proc_user.as_deref(), cfg.proc_group.as_deref())?;
            let (uid, gid) = process::current_ids();
            tracing::info!(
                "Running as user {} group {} (uid {uid}, gid {gid})",
                cfg.proc_user.as_deref().unwrap_or("(unchanged)"),
                cfg.proc_group.as_deref().unwrap_or(if cfg.proc_user.is_some() { "(the user's)" } else { "(unchanged)" })
            );
        }
        if let Some(d) = db.as_mut() {
            d.open();
        }
        Ok(())
    });
    if let Err(e) = started {
        running.stop();
        if let Some(p) = &pidfile {
            process::remove_pidfile(p);
        }
        return Err(e);
    }
    // coturn's load-test scripts wait for this line.
    tracing::info!("Total auth threads: 0");
    let notifier = Notifier::from_env();
    if let Some(n) = &notifier {
        n.ready(&format!("serving, {} relay threads", plan.threads));
    }
    main_loop(&runtime, requests, requested, notifier.as_ref());
    if let Some(n) = &notifier {
        n.stopping();
    }
    tracing::info!("Terminating: stopping relay threads");
    running.stop();
    if let Some(d) = db {
        d.stop();
    }
    if let Some(rt) = stats_rt {
        // Queued reports get a moment to reach Redis.
        rt.shutdown_timeout(std::time::Duration::from_millis(500));
    }
    if let Some(p) = pidfile {
        process::remove_pidfile(&p);
    }
    tracing::info!("turnserver stopped");
    Ok(())
}

/// `--redis-statsdb`: a small runtime of its own for the Redis writer, the
/// sink handed to the relay threads, and allocation reports turned on in the
/// core. The Redis host is denied as a peer, like the user database's.
fn start_statsdb(cfg: &Config, core: &mut CoreConfig, plan: &mut RelayPlan) -> anyhow::Result<Option<tokio::runtime::Runtime>> {
    let Some(spec) = &cfg.redis_statsdb else { return Ok(None) };
    let db_spec = DbSpec::Redis(spec.clone());
    for ip in service::db_hosts(&db_spec) {
        if !core.peers.denied.iter().any(|r| r.start == ip && r.end == ip) {
            tracing::info!("Database host {ip} is denied as a peer");
            core.peers.denied.push(IpRange { start: ip, end: ip });
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("statsdb")
        .enable_all()
        .build()
        .context("Cannot start the Redis stats DB writer")?;
    let sink = crate::userdb::statsdb::StatsDb::start(spec, rt.handle()).map_err(|e| anyhow!("--redis-statsdb: {e}"))?;
    tracing::info!("Redis statistics database: {}", service::display_spec(&db_spec));
    core.allocation_events = true;
    plan.stats_sink = Some(sink);
    Ok(Some(rt))
}

/// The user database the configuration names, with a MySQL password
/// decrypted when `--secret-key-file` is given.
pub fn userdb_spec(cfg: &Config) -> anyhow::Result<Option<DbSpec>> {
    let Some(spec) = cfg.userdb.clone() else { return Ok(None) };
    let Some(keyfile) = &cfg.secret_key_file else { return Ok(Some(spec)) };
    match spec {
        DbSpec::Mysql(conninfo) => {
            let key = secret_key::read_key(keyfile).map_err(|e| anyhow!("{e}"))?;
            let plain = secret_key::decrypt_conninfo(&key, &conninfo).map_err(|e| anyhow!("--mysql-userdb password: {e}"))?;
            Ok(Some(DbSpec::Mysql(plain)))
        }
        other => {
            tracing::warn!("--secret-key-file only applies to --mysql-userdb; ignored");
            Ok(Some(other))
        }
    }
}

/// Start the user database service when a database is configured and
/// credentials are checked, and point the core at it. The database hosts are
/// denied as peers (coturn >= 4.13.1).
fn start_userdb(cfg: &Config, core: &mut CoreConfig) -> anyhow::Result<Option<DbService>> {
    let Some(spec) = userdb_spec(cfg)? else { return Ok(None) };
    for ip in service::db_hosts(&spec) {
        tracing::info!("Database host {ip} is denied as a peer");
        core.peers.denied.push(IpRange { start: ip, end: ip });
    }
    let kind = service::kind_name(&spec);
    tracing::info!("{kind} user database: {}", service::display_spec(&spec));
    if matches!(core.credentials.mode, AuthMode::NoAuth) {
        tracing::warn!("{kind} user database not used: authentication is off (no -a / --use-auth-secret)");
        return Ok(None);
    }
    // With --proc-user the database is opened after the drop (a SQLite
    // file created now would belong to root and refuse the service user).
    let held = cfg.proc_user.is_some() || cfg.proc_group.is_some();
    let start = if held { DbService::start_held } else { DbService::start };
    let svc = start(ServiceOptions {
        spec,
        no_dynamic_ip_list: cfg.no_dynamic_ip_list,
        no_dynamic_realms: cfg.no_dynamic_realms,
        no_auth_pings: cfg.no_auth_pings,
        reload_interval: service::RELOAD_INTERVAL,
    })
    .context("Cannot start the user database service")?;
    core.userdb = true;
    core.dynamic = Some(svc.snapshot());
    Ok(Some(svc))
}

/// The TLS options of the configuration.
pub fn tls_options(cfg: &Config) -> TlsOptions {
    TlsOptions {
        cert: cfg.cert.clone(),
        pkey: cfg.pkey.clone(),
        pkey_pwd: cfg.pkey_pwd.clone(),
        ca_file: cfg.ca_file.clone(),
        cipher_list: cfg.cipher_list.clone(),
        ec_curve_name: cfg.ec_curve_name.clone(),
        tlsv1: cfg.tlsv1,
        tlsv1_1: cfg.tlsv1_1,
        no_tlsv1_2: cfg.no_tlsv1_2,
        dh566: cfg.dh566,
        dh1066: cfg.dh1066,
        dh_file: cfg.dh_file.clone(),
        raw_public_keys: cfg.raw_public_keys,
        ..TlsOptions::default()
    }
}

/// Load the certificate and key (before any privilege drop). As coturn: with
/// `--no-tls`, or when the default `turn_server_cert.pem`/`turn_server_pkey.pem`
/// are simply absent, TLS stays off with a warning; any other problem with the
/// TLS settings is fatal.
fn tls_setup(cfg: &Config) -> anyhow::Result<Option<Arc<ReloadableTls>>> {
    if cfg.no_tls {
        return Ok(None);
    }
    match ReloadableTls::from_options(&tls_options(cfg)) {
        Ok((tls, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            if !cfg.no_tlsv1_2 {
                tracing::info!("TLS 1.2 supported");
            }
            tracing::info!("TLS 1.3 supported");
            tracing::info!("TURN/STUN ALPN supported");
            if tls.configs().offers_raw_public_keys() {
                tracing::info!("RFC 7250 raw public keys supported (TLS 1.3 clients that ask for them)");
            }
            Ok(Some(Arc::new(tls)))
        }
        Err(e) if e.is_missing_default() => {
            tracing::warn!("{e}: TLS listeners are not started");
            Ok(None)
        }
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// The DTLS server for `--dtls` (coturn 4.17: off by default), from the same
/// certificate and key as TLS. Without a usable certificate DTLS stays off.
fn dtls_setup(cfg: &Config) -> anyhow::Result<Option<crate::dtls::DtlsServer>> {
    if !cfg.dtls {
        return Ok(None);
    }
    let Some((cert, key)) = dtls_material(cfg)? else {
        tracing::warn!("DTLS needs a certificate and key (--cert, --pkey): DTLS listeners are not started");
        return Ok(None);
    };
    let server = crate::dtls::DtlsServer::new(&cert, &key).map_err(|e| anyhow!("DTLS: {e}"))?;
    tracing::info!("DTLS 1.2 supported");
    Ok(Some(server))
}

/// The certificate and private key PEM files DTLS uses (`--cert`, `--pkey`,
/// found as coturn finds them); `None` when the defaults are simply absent.
pub fn dtls_material(cfg: &Config) -> anyhow::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let find = |given: &Option<std::path::PathBuf>, default: &str| -> anyhow::Result<Option<Vec<u8>>> {
        let name = given.clone().unwrap_or_else(|| default.into());
        match crate::tls::resolve_path(&name, &cwd) {
            Some(path) => std::fs::read(&path).map(Some).with_context(|| format!("cannot read {}", path.display())),
            // An explicitly named file must exist; the default may be absent.
            None if given.is_some() => Err(anyhow!("cannot find {}", name.display())),
            None => Ok(None),
        }
    };
    match (find(&cfg.cert, crate::tls::DEFAULT_CERT)?, find(&cfg.pkey, crate::tls::DEFAULT_PKEY)?) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        _ => Ok(None),
    }
}

/// The telnet CLI, the Prometheus exporter and the web admin, each when
/// configured; their listeners are bound before privileges are dropped.
fn start_management(cfg: &Config, runtime: &Arc<Runtime>) -> anyhow::Result<()> {
    crate::mgmt::cli::start(cfg, runtime)?;
    crate::mgmt::prometheus::start(cfg, runtime)?;
    crate::mgmt::webadmin::start(cfg, runtime)?;
    Ok(())
}

/// How often the main loop wakes without a signal: drain checks and the
/// systemd status line.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Run until asked to stop: signals (SIGTERM/SIGINT stop, SIGHUP reopens the
/// log and reloads the configuration and certificate, SIGUSR2 reloads the
/// certificate, SIGUSR1 drains), requests from the management surfaces, the
/// drain condition, and systemd's watchdog.
fn main_loop(
    runtime: &Arc<Runtime>,
    requests: std::sync::mpsc::Sender<DaemonRequest>,
    requested: std::sync::mpsc::Receiver<DaemonRequest>,
    notifier: Option<&Notifier>,
) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    let (sig_tx, sig_rx) = std::sync::mpsc::channel();
    match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2]) {
        Ok(mut signals) => {
            let wake = requests.clone();
            let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
                for sig in signals.forever() {
                    if sig_tx.send(sig).is_err() {
                        break;
                    }
                    // Wake the main loop, which waits on the request channel.
                    let _ = wake.send(DaemonRequest::Signal);
                }
            });
            if let Err(e) = spawned {
                tracing::error!("cannot start the signal thread: {e}");
            }
        }
        Err(e) => tracing::error!("cannot install signal handlers: {e}"),
    }
    drop(requests);
    let watchdog = crate::mgmt::systemd::watchdog_interval();
    let mut next_watchdog = std::time::Instant::now();
    let tick = watchdog.map_or(TICK, |w| w.min(TICK));
    let mut draining = false;
    loop {
        let req = requested.recv_timeout(tick);
        let mut stop = false;
        while let Ok(sig) = sig_rx.try_recv() {
            match sig {
                SIGHUP => {
                    tracing::info!("SIGHUP: reopening the log file, reloading the configuration and the TLS certificate");
                    if let Some(n) = notifier {
                        n.reloading();
                    }
                    runtime.reopen_log();
                    if let Err(e) = runtime.reload() {
                        tracing::error!("reload failed, keeping the running configuration: {e}");
                        runtime.reload_tls();
                    }
                    if let Some(n) = notifier {
                        n.ready("serving");
                    }
                }
                SIGUSR2 => {
                    tracing::info!("SIGUSR2: reloading the TLS certificate");
                    runtime.reload_tls();
                }
                SIGUSR1 => runtime.drain(),
                _ => {
                    tracing::info!("Terminating on signal {sig}");
                    stop = true;
                }
            }
        }
        match req {
            Ok(DaemonRequest::Stop) => stop = true,
            Ok(DaemonRequest::Drain) if !draining => {
                draining = true;
                tracing::info!(
                    "Drain mode: no new allocations; exiting when {} or fewer remain",
                    runtime.config().drain_min_allocations
                );
                if let Some(n) = notifier {
                    n.status("draining");
                }
            }
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            // Every sender gone: nothing can ask us anything any more.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if stop {
            return;
        }
        if draining {
            let left = runtime.management().allocation_count();
            // From the configuration in force: a reload may have changed it.
            let min = runtime.config().drain_min_allocations as usize;
            if left <= min {
                tracing::info!("Drain complete: {left} allocation(s) left, stopping");
                return;
            }
        }
        if let (Some(n), Some(every)) = (notifier, watchdog) {
            let now = std::time::Instant::now();
            if now >= next_watchdog {
                n.watchdog();
                next_watchdog = now + every;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(args: &[&str]) -> Config {
        let argv: Vec<String> = std::iter::once("turnserver").chain(args.iter().copied()).map(String::from).collect();
        match config::parse_args(&argv) {
            Ok(Command::Run(c)) => *c,
            _ => panic!("config {args:?}"),
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc5780_map_pairs_ips_and_ports() {
        let c = cfg(&["-n", "--rfc5780", "-L", "10.0.0.1", "-L", "10.0.0.2", "-L", "2001:db8::1", "-p", "3478"]);
        let m = rfc5780_partners(&c, &c.listening_ips).unwrap();
        assert_eq!(m[&sa("10.0.0.1:3478")], sa("10.0.0.2:3479"));
        assert_eq!(m[&sa("10.0.0.1:3479")], sa("10.0.0.2:3478"));
        assert_eq!(m[&sa("10.0.0.2:3478")], sa("10.0.0.1:3479"));
        assert_eq!(m[&sa("10.0.0.2:5350")], sa("10.0.0.1:5349"));
        // The lone IPv6 address has no partner.
        assert!(!m.contains_key(&sa("[2001:db8::1]:3478")));
        // Alternate ports given explicitly.
        let c = cfg(&["-n", "--rfc5780", "-L", "10.0.0.1", "-L", "10.0.0.2", "--alt-listening-port=4000"]);
        let m = rfc5780_partners(&c, &c.listening_ips).unwrap();
        assert_eq!(m[&sa("10.0.0.1:3478")], sa("10.0.0.2:4000"));
        // Off without the flag or with one IP.
        let c = cfg(&["-n", "-L", "10.0.0.1", "-L", "10.0.0.2"]);
        assert!(rfc5780_partners(&c, &c.listening_ips).is_none());
        let c = cfg(&["-n", "--rfc5780", "-L", "10.0.0.1"]);
        assert!(rfc5780_partners(&c, &c.listening_ips).is_none());
    }

    #[test]
    fn plan_binds_alternate_ports_and_aux_servers() {
        let c = cfg(&["-n", "--rfc5780", "-L", "10.0.0.1", "-L", "10.0.0.2", "--aux-server=10.0.0.1:33478", "--no-tls"]);
        let plan = relay_plan(&c, &[], false, false).unwrap();
        for a in ["10.0.0.1:3478", "10.0.0.2:3478", "10.0.0.1:3479", "10.0.0.2:3479", "10.0.0.1:33478"] {
            assert!(plan.udp_listeners.contains(&sa(a)), "udp {a}");
            assert!(plan.tcp_listeners.contains(&sa(a)), "tcp {a}");
        }
        let c = cfg(&["-n", "-L", "10.0.0.1", "-L", "10.0.0.2", "--no-tls"]);
        let plan = relay_plan(&c, &[], false, false).unwrap();
        assert_eq!(plan.udp_listeners, vec![sa("10.0.0.1:3478"), sa("10.0.0.2:3478")]);
    }

    #[test]
    fn self_balance_uses_the_aux_servers() {
        let c = cfg(&["-n", "--aux-server=10.0.0.9:33478", "--udp-self-balance", "--alternate-server=10.0.0.5"]);
        let core = core_config(&c).unwrap();
        assert_eq!(core.alternates.self_balance, vec![sa("10.0.0.9:33478")]);
        assert_eq!(core.alternates.general, vec![sa("10.0.0.5:3478")]);
        let c = cfg(&["-n", "--aux-server=10.0.0.9:33478"]);
        assert!(core_config(&c).unwrap().alternates.is_empty());
    }
}
