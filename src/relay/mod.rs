//! The I/O layer: per-core relay threads, each owning its sockets and sessions.
//!
//! [`RelayPlan`] turns the configuration into concrete addresses; [`start`]
//! binds every socket (so bind errors surface before the server reports ready)
//! and spawns one thread per relay thread.

pub mod control;
pub mod http_port;
pub mod ports;
pub mod provider;
pub mod proxy_protocol;
pub mod sockets;
pub mod tcp;
pub mod thread;
pub mod udp;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use mio::Waker;

use crate::core::CoreConfig;
use ports::PortPool;
use provider::RelayAddressing;
use thread::{Clock, FastPath, RelayThread, ThreadSetup};

/// Concrete addresses and counts derived from the configuration.
#[derive(Debug, Clone)]
pub struct RelayPlan {
    /// UDP listener addresses (ip:port); each thread binds one socket per entry.
    pub udp_listeners: Vec<SocketAddr>,
    /// TCP listener addresses; each thread binds one SO_REUSEPORT socket per entry.
    pub tcp_listeners: Vec<SocketAddr>,
    /// `--tcp-proxy-port` listeners (a PROXY protocol header comes first).
    pub proxy_listeners: Vec<SocketAddr>,
    /// `--max-allocate-timeout` in seconds (connections that never allocate).
    pub conn_timeout_secs: u32,
    /// TLS listener addresses (`--tls-listening-port`); TLS is also sniffed on
    /// the plain TCP listeners.
    pub tls_listeners: Vec<SocketAddr>,
    pub relay_ips: Vec<IpAddr>,
    pub external: Vec<(IpAddr, Option<IpAddr>)>,
    pub min_port: u16,
    pub max_port: u16,
    pub threads: usize,
    pub sock_buf_size: usize,
    /// `--udp-recvmmsg`, `--udp-gso`, and their stats logs.
    pub udp_recvmmsg: bool,
    pub udp_gso: bool,
    pub udp_recvmmsg_log: bool,
    pub udp_sendmmsg_log: bool,
    /// `--multiplex-peer-port` when `--multiplex-peer` is on.
    pub multiplex_port: Option<u16>,
    /// `--udp-coalesce-us` in microseconds (0 = off).
    pub coalesce_us: u32,
    /// `--redis-statsdb`: where allocation reports go.
    pub stats_sink: Option<crate::userdb::statsdb::StatsSink>,
    /// HTTP on the TCP listeners: `--acme-redirect`,
    /// `--respond-http-unsupported`, `--web-admin-listen-on-workers`.
    pub http: http_port::HttpPortOptions,
}

/// Relay threads number: `-m` if given (0 = one thread), else the CPU count
/// (`--cpus` overrides detection) with coturn's floor of 2 and cap of 128.
pub fn thread_count(relay_threads: Option<usize>, cpus: Option<usize>) -> usize {
    match relay_threads {
        Some(0) => 1,
        Some(n) => n.min(128),
        None => {
            let detected = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            cpus.unwrap_or(detected).clamp(2, 128)
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Running relay threads.
pub struct Running {
    stop: Arc<AtomicBool>,
    wakers: Vec<Arc<Waker>>,
    handles: Vec<JoinHandle<()>>,
    management: control::Management,
}

impl Running {
    /// The handle the CLI, the metrics exporter and the signal handler use.
    pub fn management(&self) -> control::Management {
        self.management.clone()
    }

    /// Ask every thread to stop, and wait for them (each closes its sessions).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for w in &self.wakers {
            let _ = w.wake();
        }
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// Bind every listener socket for every thread, then spawn the threads.
pub fn start(
    plan: &RelayPlan,
    core: Arc<CoreConfig>,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
    dtls: Option<crate::dtls::DtlsServer>,
) -> anyhow::Result<Running> {
    start_with_db(plan, core, tls, dtls, None)
}

/// [`start`], with the user database service's queue for every thread.
pub fn start_with_db(
    plan: &RelayPlan,
    core: Arc<CoreConfig>,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
    dtls: Option<crate::dtls::DtlsServer>,
    db: Option<crate::userdb::service::DbQueue>,
) -> anyhow::Result<Running> {
    let pools = plan.relay_ips.iter().map(|&ip| Arc::new(PortPool::new(ip, plan.min_port, plan.max_port))).collect();
    let addressing = Arc::new(RelayAddressing::new(pools, plan.external.clone(), plan.sock_buf_size));
    for &addr in &plan.udp_listeners {
        sockets::ensure_free(addr, false).with_context(|| format!("Cannot bind UDP listener socket to addr {addr}"))?;
    }
    for &addr in plan.tcp_listeners.iter().chain(&plan.tls_listeners).chain(&plan.proxy_listeners) {
        sockets::ensure_free(addr, true).with_context(|| format!("Cannot bind TCP listener socket to addr {addr}"))?;
    }
    let clock = Clock::new();
    let fast = FastPath {
        caps: udp::UdpCaps::new(plan.udp_recvmmsg, plan.udp_gso),
        recv_log: plan.udp_recvmmsg_log,
        send_log: plan.udp_sendmmsg_log,
        multiplex_port: plan.multiplex_port,
        coalesce: std::time::Duration::from_micros(u64::from(plan.coalesce_us)),
    };
    tracing::info!(
        "UDP fast path: recvmmsg {}, sendmmsg {}, GSO {}, multiplex-peer {}, coalesce {} us",
        on_off(fast.caps.recvmmsg_enabled()),
        on_off(fast.caps.sendmmsg_enabled()),
        on_off(fast.caps.gso_enabled()),
        on_off(fast.multiplex_port.is_some()),
        plan.coalesce_us
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut prepared = Vec::new();
    for index in 0..plan.threads {
        let mut listeners = Vec::new();
        for &addr in &plan.udp_listeners {
            let s = sockets::udp_listener(addr, plan.sock_buf_size)
                .with_context(|| format!("Cannot bind UDP listener socket to addr {addr}"))?;
            listeners.push(s);
        }
        let mut tcp = Vec::new();
        let plain = plan.tcp_listeners.iter().chain(&plan.tls_listeners).map(|a| (a, false));
        for (&addr, proxy) in plain.chain(plan.proxy_listeners.iter().map(|a| (a, true))) {
            let l = sockets::tcp_listener(addr).with_context(|| format!("Cannot bind TCP listener socket to addr {addr}"))?;
            tcp.push((l, proxy));
        }
        let t = RelayThread::new(ThreadSetup {
            tcp_listeners: tcp,
            conn_timeout: std::time::Duration::from_secs(u64::from(plan.conn_timeout_secs.max(1))),
            tls: tls.clone(),
            dtls: dtls.clone(),
            index: index as u32,
            core: Arc::clone(&core),
            addressing: Arc::clone(&addressing),
            listeners,
            clock,
            stop: Arc::clone(&stop),
            fast: fast.clone(),
            db: db.clone(),
            stats_sink: plan.stats_sink.clone(),
            http: Arc::new(plan.http.clone()),
        })?;
        prepared.push(t);
    }
    for addr in &plan.udp_listeners {
        let fam = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
        tracing::info!("{fam}. UDP listener opened on: {addr}");
    }
    for addr in &plan.tcp_listeners {
        let fam = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
        tracing::info!("{fam}. TCP listener opened on : {addr}");
    }
    for addr in &plan.tls_listeners {
        let fam = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
        tracing::info!("{fam}. TLS/TCP listener opened on : {addr}");
    }
    for addr in &plan.proxy_listeners {
        let fam = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
        tracing::info!("{fam}. TCP (PROXY protocol) listener opened on : {addr}");
    }
    // RFC 6062 data connections bound on another thread's listener move to
    // the thread owning their CONNECTION-ID through these.
    let mailboxes: Arc<Vec<thread::Mailbox>> = Arc::new(prepared.iter().map(|t| thread::Mailbox::new(t.waker())).collect());
    let boxes: Arc<Vec<control::ControlBox>> = Arc::new(prepared.iter().map(|t| control::ControlBox::new(t.waker())).collect());
    let management = control::Management::new(Arc::clone(&boxes), Arc::clone(&core.draining));
    let mut wakers = Vec::new();
    let mut handles = Vec::new();
    for (i, mut t) in prepared.into_iter().enumerate() {
        t.set_mailboxes(Arc::clone(&mailboxes));
        t.set_control(Arc::clone(&boxes));
        wakers.push(t.waker());
        let h = std::thread::Builder::new().name(format!("relay-{i}")).spawn(move || t.run())?;
        handles.push(h);
    }
    Ok(Running { stop, wakers, handles, management })
}
