//! Settings that change while the server runs, in one place. SIGHUP re-reads
//! the command line and configuration file; the telnet CLI toggles (`tc`) and
//! changes (`cc`) single options and edits the alternate-server lists; drain
//! and stop requests come from SIGUSR1, the CLI and the web admin. Every
//! change ends in a fresh [`CoreConfig`] posted to each relay thread, built
//! from the previous one so that shared state (quota counts, the bandwidth
//! budget, the nonce secret, the 401 limiter, the database snapshot, drain)
//! carries over.
//!
//! What a reload changes (documented in docs/operations.md): peer lists,
//! users and REST secrets, realm, quotas, `max-bps`, `bps-capacity`,
//! alternate servers, lifetimes, STUN switches, relay switches, loopback and
//! multicast peers, fingerprint and SOFTWARE, the log level, and the TLS
//! certificate. Listeners, ports, relay addresses, threads and databases
//! need a restart; a reload that changes them says so in the log.

use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::{self, Command, Config};
use crate::core::peer_policy::IpRange;
use crate::core::quota::QuotaLimits;
use crate::core::CoreConfig;
use crate::logging::{LogHandle, LogOptions};
use crate::relay::control::Management;
use crate::tls::ReloadableTls;

/// What the daemon's main loop is asked to do by the management surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonRequest {
    /// Stop now (CLI `stop`, SIGTERM).
    Stop,
    /// Drain: refuse new allocations, exit once few enough are left.
    Drain,
    /// A signal arrived (the signal thread's wake-up).
    Signal,
}

/// A toggle of the CLI's `tc`.
pub const TOGGLES: &[&str] =
    &["stun-only", "no-stun", "secure-stun", "no-udp-relay", "no-tcp-relay", "no-multicast-peers", "allow-loopback-peers", "mobility"];

/// A value of the CLI's `cc`.
pub const CHANGEABLE: &[&str] = &["total-quota", "user-quota", "max-bps", "bps-capacity", "cli-max-output-sessions"];

/// Which alternate-server list (`aas`, `atas`, `atcpas`, `audpas` and their
/// `d` twins in the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AltList {
    General,
    Tls,
    Tcp,
    Udp,
}

impl AltList {
    fn default_port(self) -> u16 {
        match self {
            AltList::Tls => 5349,
            _ => 3478,
        }
    }
}

struct State {
    cfg: Config,
    core: Arc<CoreConfig>,
}

/// The running server's changeable settings and the handles to apply them.
pub struct Runtime {
    /// The command line the server started with, re-read on SIGHUP.
    argv: Vec<String>,
    /// The configuration file found at start (an absolute path), read again
    /// by that path on SIGHUP: after `-o` the working directory is `/`, where
    /// a relative `-c` name would no longer be found.
    config_file: Option<std::path::PathBuf>,
    state: Mutex<State>,
    management: Management,
    log: Arc<LogHandle>,
    tls: Option<Arc<ReloadableTls>>,
    dtls: Option<crate::dtls::DtlsServer>,
    /// Peers denied because they are our database hosts (added at start,
    /// kept over reloads).
    db_denied: Vec<IpRange>,
    requests: Mutex<Sender<DaemonRequest>>,
    started: Instant,
}

impl Runtime {
    #[allow(clippy::too_many_arguments)] // each is one part the runtime owns
    pub fn new(
        argv: Vec<String>,
        cfg: Config,
        core: Arc<CoreConfig>,
        management: Management,
        log: Arc<LogHandle>,
        tls: Option<Arc<ReloadableTls>>,
        dtls: Option<crate::dtls::DtlsServer>,
        requests: Sender<DaemonRequest>,
    ) -> Self {
        let static_denied: Vec<IpRange> = cfg.denied_peer_ips.iter().filter_map(|s| s.parse().ok()).collect();
        let db_denied = core.peers.denied.iter().filter(|r| !static_denied.contains(r)).copied().collect();
        Runtime {
            argv,
            config_file: cfg.config_file.clone(),
            state: Mutex::new(State { cfg, core }),
            management,
            log,
            tls,
            dtls,
            db_denied,
            requests: Mutex::new(requests),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn management(&self) -> &Management {
        &self.management
    }

    /// The configuration in force (with run-time changes applied).
    pub fn config(&self) -> Config {
        self.lock().cfg.clone()
    }

    /// The core settings in force.
    pub fn core(&self) -> Arc<CoreConfig> {
        Arc::clone(&self.lock().core)
    }

    /// The TLS configuration when TLS is on (the web admin serves HTTPS with it).
    pub fn tls(&self) -> Option<Arc<ReloadableTls>> {
        self.tls.clone()
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Ask the main loop to stop the server.
    pub fn request_stop(&self) {
        self.request(DaemonRequest::Stop);
    }

    /// Enter drain mode: no new allocations; the process exits once
    /// `--drain-min-allocations` or fewer remain.
    pub fn drain(&self) {
        self.management.set_draining(true);
        self.request(DaemonRequest::Drain);
    }

    fn request(&self, r: DaemonRequest) {
        if let Ok(tx) = self.requests.lock() {
            let _ = tx.send(r);
        }
    }

    /// Reopen the log file (SIGHUP, CLI `lr`).
    pub fn reopen_log(&self) {
        self.log.reopen();
    }

    /// Re-read the certificate and key for TLS and DTLS: new connections and
    /// handshakes use them, existing ones keep theirs; a failed reload keeps
    /// the old certificate.
    pub fn reload_tls(&self) {
        let cfg = self.config();
        if let Some(tls) = &self.tls {
            match tls.reload(&crate::daemon::tls_options(&cfg)) {
                Ok(warnings) => {
                    for w in warnings {
                        tracing::warn!("{w}");
                    }
                    tracing::info!("TLS certificate reloaded");
                }
                Err(e) => tracing::error!("TLS certificate reload failed, keeping the old one: {e}"),
            }
        }
        if let Some(dtls) = &self.dtls {
            let loaded = crate::daemon::dtls_material(&cfg).and_then(|m| {
                let (cert, key) = m.ok_or_else(|| anyhow::anyhow!("certificate or key not found"))?;
                dtls.reload(&cert, &key).map_err(|e| anyhow::anyhow!("{e}"))
            });
            match loaded {
                Ok(()) => tracing::info!("DTLS certificate reloaded"),
                Err(e) => tracing::error!("DTLS certificate reload failed, keeping the old one: {e:#}"),
            }
        }
    }

    /// SIGHUP: read the command line and configuration file again and apply
    /// what can change at run time. Returns the options that need a restart
    /// to take effect (already logged).
    pub fn reload(&self) -> Result<Vec<&'static str>, String> {
        let mut argv = self.argv.clone();
        let file = self.config_file.as_ref().and_then(|f| f.to_str());
        if let Some(f) = file {
            // The last -c names the file.
            argv.extend(["-c".to_string(), f.to_string()]);
        }
        let new = match config::parse_args(&argv) {
            Ok(Command::Run(c)) => *c,
            Ok(Command::Print(_)) => return Err("the command line no longer starts a server".into()),
            Err(e) => return Err(e.message),
        };
        // A file that went missing would silently leave only the defaults
        // and the command line (no users, no realm): refuse that instead.
        if let (Some(f), None) = (file, &new.config_file) {
            return Err(format!("cannot read the configuration file {f}"));
        }
        let restart = needs_restart(&self.lock().cfg, &new);
        for name in &restart {
            tracing::warn!("reload: a change of {name} takes effect only after a restart");
        }
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        self.apply(new)?;
        self.log.set_verbosity(&LogOptions::from_config(&self.config()));
        self.reload_tls();
        tracing::info!("configuration reloaded");
        Ok(restart)
    }

    /// `tc NAME`: flip a boolean option; returns its new value.
    pub fn toggle(&self, name: &str) -> Result<bool, String> {
        let mut cfg = self.config();
        let field = match name {
            "stun-only" => &mut cfg.stun_only,
            "no-stun" => &mut cfg.no_stun,
            "secure-stun" => &mut cfg.secure_stun,
            "no-udp-relay" => &mut cfg.no_udp_relay,
            "no-tcp-relay" => &mut cfg.no_tcp_relay,
            "no-multicast-peers" => &mut cfg.no_multicast_peers,
            "allow-loopback-peers" => &mut cfg.allow_loopback_peers,
            "mobility" => &mut cfg.mobility,
            _ => return Err(format!("unknown toggle: {name}")),
        };
        *field = !*field;
        let value = *field;
        if cfg.no_udp_relay && cfg.no_tcp_relay {
            return Err("no-udp-relay and no-tcp-relay cannot both be on".into());
        }
        self.apply(cfg)?;
        tracing::info!("option {name} is now {}", if value { "on" } else { "off" });
        Ok(value)
    }

    /// `cc NAME VALUE`: change a numeric option.
    pub fn change(&self, name: &str, value: &str) -> Result<(), String> {
        let n: u64 = value.trim().parse().map_err(|_| format!("{name}: not a number: {value}"))?;
        let as_u32 = || u32::try_from(n).map_err(|_| format!("{name}: too large: {value}"));
        let mut cfg = self.config();
        match name {
            "total-quota" => cfg.total_quota = as_u32()?,
            "user-quota" => cfg.user_quota = as_u32()?,
            "max-bps" => cfg.max_bps = n,
            "bps-capacity" => cfg.bps_capacity = n,
            "cli-max-output-sessions" => cfg.cli_max_output_sessions = as_u32()?,
            _ => return Err(format!("unknown option: {name}")),
        }
        self.apply(cfg)?;
        tracing::info!("option {name} changed to {n}");
        Ok(())
    }

    /// Add `ip[:port]` to an alternate-server list.
    pub fn add_alternate(&self, list: AltList, addr: &str) -> Result<SocketAddr, String> {
        let a = parse_server(addr, list.default_port())?;
        let mut cfg = self.config();
        alt_list(&mut cfg, list).push(a);
        self.apply(cfg)?;
        Ok(a)
    }

    /// Remove `ip[:port]` from an alternate-server list (every copy).
    pub fn remove_alternate(&self, list: AltList, addr: &str) -> Result<SocketAddr, String> {
        let a = parse_server(addr, list.default_port())?;
        let mut cfg = self.config();
        let l = alt_list(&mut cfg, list);
        let before = l.len();
        l.retain(|x| *x != a);
        if l.len() == before {
            return Err(format!("{a} is not in the list"));
        }
        self.apply(cfg)?;
        Ok(a)
    }

    /// Build the core settings for `cfg` on top of the ones in force and post
    /// them to every relay thread.
    fn apply(&self, cfg: Config) -> Result<(), String> {
        let mut st = self.lock();
        let core = rebuild_core(&st.core, &cfg, &self.db_denied).map_err(|e| format!("{e:#}"))?;
        let core = Arc::new(core);
        self.management.reconfigure(Arc::clone(&core));
        st.cfg = cfg;
        st.core = core;
        Ok(())
    }
}

fn alt_list(cfg: &mut Config, list: AltList) -> &mut Vec<SocketAddr> {
    match list {
        AltList::General => &mut cfg.alternate_servers,
        AltList::Tls => &mut cfg.tls_alternate_servers,
        AltList::Tcp => &mut cfg.tcp_alternate_servers,
        AltList::Udp => &mut cfg.udp_alternate_servers,
    }
}

/// `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address.
fn parse_server(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    match config::apply::parse_ip(s) {
        Some(ip) => Ok(SocketAddr::new(ip, default_port)),
        None => Err(format!("wrong address: {s}")),
    }
}

/// The core settings for `cfg`, keeping what must survive a change: the
/// nonce secret (outstanding nonces stay valid unless the configured secret
/// changed), quota counts and the bandwidth budget (with new limits), the 401
/// limiter's table, the database snapshot, our own addresses, RFC 5780, the
/// database hosts denied as peers, and drain mode.
pub fn rebuild_core(old: &CoreConfig, cfg: &Config, db_denied: &[IpRange]) -> anyhow::Result<CoreConfig> {
    let mut core = crate::daemon::core_config(cfg)?;
    if cfg.stateless_nonce_secret.is_none() || old.nonce.same_secret(&core.nonce) {
        core.nonce = old.nonce.with_stale(cfg.stale_nonce);
    }
    old.quotas.set_defaults(QuotaLimits { user_quota: cfg.user_quota, total_quota: cfg.total_quota });
    core.quotas = Arc::clone(&old.quotas);
    old.bps_capacity.set_capacity(cfg.bps_capacity);
    core.bps_capacity = Arc::clone(&old.bps_capacity);
    if let (Some(old_l), Some(new_l)) = (&old.unauth_limiter, &core.unauth_limiter) {
        if old_l.rps() == new_l.rps() {
            core.unauth_limiter = Some(Arc::clone(old_l));
        }
    }
    core.userdb = old.userdb;
    core.dynamic = old.dynamic.clone();
    core.allocation_events = old.allocation_events;
    core.peers.own = old.peers.own.clone();
    for r in db_denied {
        if !core.peers.denied.contains(r) {
            core.peers.denied.push(*r);
        }
    }
    core.rfc5780 = old.rfc5780.clone();
    core.draining = Arc::clone(&old.draining);
    core.ticket_key = Arc::clone(&old.ticket_key);
    core.traffic_by_user = old.traffic_by_user;
    core.session_id_start = old.session_id_start;
    Ok(core)
}

/// Options whose change a reload cannot apply.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            v.push(name);
        }
    };
    check(old.listening_ips != new.listening_ips, "listening-ip");
    check(old.listening_port != new.listening_port, "listening-port");
    check(old.tls_listening_port != new.tls_listening_port, "tls-listening-port");
    check(old.relay_ips != new.relay_ips, "relay-ip");
    check(old.external_ips != new.external_ips, "external-ip");
    check((old.min_port, old.max_port) != (new.min_port, new.max_port), "min-port/max-port");
    check(old.relay_threads != new.relay_threads, "relay-threads");
    check((old.no_udp, old.no_tcp, old.no_tls, old.dtls) != (new.no_udp, new.no_tcp, new.no_tls, new.dtls), "listeners");
    check(old.userdb != new.userdb, "userdb");
    check(old.redis_statsdb != new.redis_statsdb, "redis-statsdb");
    check(old.log_file != new.log_file, "log-file");
    check((old.cli, old.cli_ip, old.cli_port) != (new.cli, new.cli_ip, new.cli_port), "cli");
    check(
        (old.prometheus, old.prometheus_port, old.prometheus_address) != (new.prometheus, new.prometheus_port, new.prometheus_address),
        "prometheus",
    );
    check(old.rfc5780 != new.rfc5780, "rfc5780");
    v
}
