//! The Prometheus exporter (`--prometheus`): an HTTP (or, with
//! `--prometheus-tls`, HTTPS) endpoint on `--prometheus-address`:
//! `--prometheus-port` (9641) whose `--prometheus-path` (`/metrics`) answers
//! with the metrics in the text format; `/` answers `ok`.
//!
//! It runs on threads of its own: one accepts, one per connection (at most
//! [`MAX_CONNECTIONS`]) reads the request and answers. A scrape asks every
//! relay thread for its report through [`crate::relay::control::Management`]
//! and sums them, so counting costs the relay threads nothing between
//! scrapes beyond incrementing their own integers. The socket is bound and
//! the certificate read in [`start`], before the daemon drops privileges.
//!
//! - [`text`]: the text format (escaping, histograms).
//! - [`collect`]: which metrics, from which counters.
//! - [`http`]: the small HTTP/1.1 server (routes, limits).

pub mod collect;
pub mod http;
pub mod text;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use rustls::ServerConfig;

use crate::config::Config;
use crate::mgmt::runtime::Runtime;
use crate::relay::control::REPLY_TIMEOUT;

/// Connections served at once; more are closed at once (a scraper retries).
pub const MAX_CONNECTIONS: usize = 8;
/// How long a connection may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Start the exporter when the configuration asks for it. A port that cannot
/// be bound or a certificate that cannot be read stops the server.
pub fn start(cfg: &Config, runtime: &Arc<Runtime>) -> anyhow::Result<()> {
    if !cfg.prometheus {
        tracing::info!("prometheus collector disabled, not started");
        return Ok(());
    }
    let tls = if cfg.prometheus_tls { Some(tls_config(cfg)?) } else { None };
    let listener = bind(cfg)?;
    let local = listener.local_addr().context("prometheus exporter: local address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("prometheus exporter server will listen on {local} ({scheme}, scrape path {})", cfg.prometheus_path);
    let runtime = Arc::clone(runtime);
    std::thread::Builder::new()
        .name("prometheus".into())
        .spawn(move || accept_loop(listener, runtime, tls))
        .context("cannot start the prometheus exporter thread")?;
    tracing::info!("prometheus collector started successfully");
    Ok(())
}

/// Bind the listener: the given address, or every address (IPv6 dual-stack
/// when the host has IPv6, else IPv4), as coturn.
fn bind(cfg: &Config) -> anyhow::Result<TcpListener> {
    let port = cfg.prometheus_port;
    let bound = match cfg.prometheus_address {
        Some(ip) => TcpListener::bind(SocketAddr::new(ip, port)).map_err(|e| (SocketAddr::new(ip, port), e)),
        None => TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)).or_else(|e6| {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            match e6.raw_os_error() {
                Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) => TcpListener::bind(v4).map_err(|e| (v4, e)),
                _ => Err((SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port), e6)),
            }
        }),
    };
    bound.map_err(|(addr, e)| anyhow!("could not start prometheus collector: cannot listen on {addr}: {e} (see --prometheus-address, --prometheus-port)"))
}

/// The HTTPS configuration: `--prometheus-cert`/`--prometheus-key`, else
/// `--cert`/`--pkey` (with `--pkey-pwd`, `--cipher-list`, the TLS version
/// flags); no client certificates, no ALPN.
fn tls_config(cfg: &Config) -> anyhow::Result<Arc<ServerConfig>> {
    let mut opts = crate::daemon::tls_options(cfg);
    opts.cert = cfg.prometheus_cert.clone().or_else(|| cfg.cert.clone());
    opts.pkey = cfg.prometheus_key.clone().or_else(|| cfg.pkey.clone());
    if cfg.prometheus_key.is_some() {
        // The passphrase belongs to --pkey; a separate key is expected unencrypted.
        opts.pkey_pwd = None;
    }
    opts.ca_file = None;
    opts.alpn = false;
    let (config, warnings) = crate::tls::build_server_config(&opts).map_err(|e| anyhow!("prometheus TLS: {e}"))?;
    for w in warnings {
        tracing::warn!("prometheus TLS: {w}");
    }
    Ok(config)
}

/// Frees a connection slot when the connection's thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept_loop(listener: TcpListener, runtime: Arc<Runtime>, tls: Option<Arc<ServerConfig>>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: do not spin.
                tracing::warn!("prometheus exporter: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::Relaxed);
            continue; // dropping the stream closes it
        }
        let slot = Slot(Arc::clone(&active));
        let runtime = Arc::clone(&runtime);
        let tls = tls.clone();
        let spawned = std::thread::Builder::new().name("prometheus-conn".into()).spawn(move || {
            let _slot = slot;
            if let Err(e) = handle(stream, &runtime, tls) {
                tracing::debug!("prometheus exporter: connection ended: {e}");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("prometheus exporter: cannot start a connection thread: {e}");
        }
    }
}

fn handle(stream: TcpStream, runtime: &Runtime, tls: Option<Arc<ServerConfig>>) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let path = runtime.config().prometheus_path;
    let scrape = || (scrape(runtime), text::CONTENT_TYPE);
    match tls {
        None => {
            let mut s = stream;
            http::serve(&mut s, &path, scrape)?;
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
            let mut s = rustls::StreamOwned::new(conn, stream);
            http::serve(&mut s, &path, scrape)?;
            s.conn.send_close_notify();
            s.flush()?;
        }
    }
    Ok(())
}

/// The text of one scrape.
pub fn scrape(runtime: &Runtime) -> String {
    let management = runtime.management();
    let core = runtime.core();
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let snap = collect::Snapshot {
        reports: management.reports(false, REPLY_TIMEOUT),
        threads: management.threads(),
        by_user: core.traffic_by_user,
        limiter: core.unauth_limiter.as_ref().map(|l| l.stats(unix)),
        draining: management.draining(),
        uptime_secs: runtime.uptime_secs(),
    };
    text::render(&collect::families(&snap))
}
