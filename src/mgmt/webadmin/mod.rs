//! The HTTPS web admin (`--web-admin`), coturn's page set for watching and
//! steering a running server: sessions (with cancel), users, REST secrets,
//! origins, realm options and the configuration (toggles and changeable
//! values), for administrators of the database's `admin_user` table
//! (superusers, or realm admins who see only their realm).
//!
//! It runs on its own threads: one accepts on `--web-admin-ip:port`
//! (default 127.0.0.1:8080) and, with `--web-admin-listen-on-workers`, takes
//! HTTPS connections the relay threads found on the TURN ports; each
//! connection is served on a short-lived thread (a bounded number at once),
//! one request per connection, with read/write timeouts. HTTPS only: without
//! TLS (`--no-tls`, or no certificate) it is refused, as coturn does.

mod auth;
mod db;
mod html;
mod http;
mod routes;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{anyhow, Context};

use crate::config::Config;
use crate::mgmt::runtime::Runtime;
use crate::relay::http_port::{self, HandedConn};
use crate::tls::ReloadableTls;

/// Connections served at once; more wait in the kernel's backlog (or, from
/// the TURN ports, are closed).
const MAX_ACTIVE: usize = 16;
/// A client gets this long to send its request and take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What every request handler shares.
pub struct App {
    runtime: Arc<Runtime>,
    db: db::Db,
    sessions: auth::Sessions,
    throttle: auth::Throttle,
}

/// Start it when the configuration asks for it. Binding fails loudly; a
/// web admin without TLS is refused with an error in the log.
pub fn start(cfg: &Config, runtime: &Arc<Runtime>) -> anyhow::Result<()> {
    if !cfg.web_admin {
        return Ok(());
    }
    let tls = match (cfg.no_tls, runtime.tls()) {
        (false, Some(tls)) => tls,
        _ => {
            tracing::error!("web admin not started: it is HTTPS only and TLS is off (--no-tls, or no certificate)");
            return Ok(());
        }
    };
    let addr = SocketAddr::new(cfg.web_admin_ip, cfg.web_admin_port);
    let listener = TcpListener::bind(addr).with_context(|| format!("Cannot bind the web admin to {addr}"))?;
    let spec = crate::daemon::userdb_spec(cfg)?;
    if spec.is_none() {
        tracing::warn!("web admin: no user database is configured, so no admin_user can log on");
    }
    let app = Arc::new(App {
        runtime: Arc::clone(runtime),
        db: db::Db::new(spec).map_err(|e| anyhow!("web admin database runtime: {e}"))?,
        sessions: auth::Sessions::default(),
        throttle: auth::Throttle::default(),
    });
    let active = Arc::new(AtomicUsize::new(0));
    if cfg.web_admin_listen_on_workers {
        let (tx, rx) = mpsc::sync_channel::<HandedConn>(MAX_ACTIVE);
        if http_port::register_web_admin(tx) {
            let (app, tls_active) = (Arc::clone(&app), Arc::clone(&active));
            std::thread::Builder::new()
                .name("web-admin-workers".into())
                .spawn(move || {
                    for c in rx {
                        serve_handed(c, &app, &tls_active);
                    }
                })
                .context("Cannot start the web admin thread")?;
            tracing::info!("web admin also answers HTTPS on the TURN TCP/TLS ports");
        }
    }
    let app2 = Arc::clone(&app);
    std::thread::Builder::new()
        .name("web-admin".into())
        .spawn(move || accept_loop(listener, &tls, &app2, &active))
        .context("Cannot start the web admin thread")?;
    tracing::info!("web admin listening on https://{addr}/");
    Ok(())
}

fn accept_loop(listener: TcpListener, tls: &Arc<ReloadableTls>, app: &Arc<App>, active: &Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("web admin accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else { continue };
        // A fresh config per connection picks up certificate reloads.
        let cfg = tls.configs().for_alpn(None);
        let Ok(conn) = rustls::ServerConnection::new(cfg) else { continue };
        spawn_served(stream, peer, Box::new(conn), Vec::new(), app, active);
    }
}

fn serve_handed(c: HandedConn, app: &Arc<App>, active: &Arc<AtomicUsize>) {
    if c.stream.set_nonblocking(false).is_err() {
        return;
    }
    spawn_served(c.stream, c.peer, c.tls, c.plaintext, app, active);
}

/// Serve one connection on its own thread, unless too many are being served.
fn spawn_served(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Box<rustls::ServerConnection>,
    prefix: Vec<u8>,
    app: &Arc<App>,
    active: &Arc<AtomicUsize>,
) {
    if active.fetch_add(1, Ordering::AcqRel) >= MAX_ACTIVE {
        active.fetch_sub(1, Ordering::AcqRel);
        tracing::debug!("web admin busy: connection from {peer} closed");
        return;
    }
    let (app, active2) = (Arc::clone(app), Arc::clone(active));
    let spawned = std::thread::Builder::new().name("web-admin-conn".into()).spawn(move || {
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let mut s = rustls::StreamOwned::new(*tls, stream);
        serve(&mut s, peer, &prefix, &app);
        s.conn.send_close_notify();
        let _ = s.flush();
        active2.fetch_sub(1, Ordering::AcqRel);
    });
    if spawned.is_err() {
        active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One request, one answer.
fn serve(s: &mut (impl Read + Write), peer: SocketAddr, prefix: &[u8], app: &App) {
    let resp = match http::read_request(s, prefix) {
        Ok(req) => routes::handle(app, &req, peer),
        Err(http::ReadError::Gone) => return,
        Err(http::ReadError::Bad(status)) => http::Response::error(status),
    };
    let _ = s.write_all(&resp.to_bytes());
}
