//! The telnet management CLI (`--cli`), coturn's operator console: list
//! sessions (`ps`, `psp`, `pu`), end one (`cs`), toggle and change settings
//! (`tc`, `cc`), edit the alternate-server lists, reopen the log, drain or
//! stop the server. The commands and their output follow coturn's CLI; the
//! differences are listed in docs/operations-cli.md.
//!
//! coturn 4.17 keeps the CLI off unless `--cli` is given, and a CLI without
//! a password is refused: with an empty `--cli-password` coturn logs a
//! CONFIG ERROR and runs without the CLI, and so do we.
//!
//! The listener is bound in [`start`], before privileges are dropped, so a
//! port that cannot be bound stops the server with a clear error. Clients are
//! served on their own threads, never on relay threads: at most
//! [`MAX_CLIENTS`] at a time, each with idle timeouts and a bounded line
//! length (see [`session`] and [`telnet`]).

mod command;
mod format;
mod session;
mod telnet;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Config;
use crate::mgmt::runtime::Runtime;

/// Simultaneous CLI connections; one more is told so and closed.
pub const MAX_CLIENTS: usize = 16;

/// coturn's message for `--cli` with an empty password.
pub const EMPTY_PASSWORD: &str =
    "CONFIG ERROR: Empty cli-password, and so telnet cli interface is disabled! Please set a non empty cli-password!";

/// Start the CLI when the configuration asks for it: bind the listener and
/// serve it on a thread of its own.
pub fn start(cfg: &Config, runtime: &Arc<Runtime>) -> anyhow::Result<()> {
    if !cfg.cli {
        return Ok(());
    }
    if cfg.cli_password.is_empty() {
        tracing::error!("{EMPTY_PASSWORD}");
        return Ok(());
    }
    let addr = SocketAddr::new(cfg.cli_ip, cfg.cli_port);
    let listener = TcpListener::bind(addr).with_context(|| format!("Cannot bind CLI listener socket to addr {addr}"))?;
    let fam = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    tracing::info!("{fam}. CLI listener opened on : {addr}");
    let runtime = Arc::clone(runtime);
    let password = cfg.cli_password.clone();
    std::thread::Builder::new()
        .name("cli".into())
        .spawn(move || accept_loop(listener, runtime, password))
        .context("cannot start the CLI thread")?;
    Ok(())
}

/// Counts live connections; the guard gives the slot back when the
/// connection's thread ends.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Option<Slot> {
        let taken = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_CLIENTS).then_some(n + 1));
        taken.ok().map(|_| Slot(Arc::clone(count)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_loop(listener: TcpListener, runtime: Arc<Runtime>, password: String) {
    let live = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!("CLI accept failed: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let Some(slot) = Slot::take(&live) else {
            refuse(stream, peer);
            continue;
        };
        let session = session::Session::new(Arc::clone(&runtime), peer, password.clone());
        let spawned = std::thread::Builder::new().name("cli-session".into()).spawn(move || {
            let _slot = slot;
            session.run(stream);
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start a CLI session thread: {e}");
        }
    }
}

fn refuse(mut stream: TcpStream, peer: SocketAddr) {
    use std::io::Write as _;
    tracing::warn!("CLI: too many sessions ({MAX_CLIENTS}), refusing {peer}");
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(b"Too many CLI sessions, try again later\r\n");
}
