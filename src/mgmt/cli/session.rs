//! One telnet connection: the password, then commands until the operator
//! quits, the connection drops or stays idle too long. Runs on its own
//! thread; everything it changes goes through [`Runtime`], everything it
//! reads from the relay threads through their control queues.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::command::{self, Command};
use super::format::{self, Filter, PROMPT};
use super::telnet::{self, LineReader};
use crate::admin::hash::verify_password;
use crate::mgmt::runtime::{AltList, Runtime};

/// Wrong passwords before the connection is closed (coturn: 5).
pub const PASSWORD_TRIES: usize = 5;
/// How long a connection may stay silent before it has logged in.
pub const LOGIN_IDLE: Duration = Duration::from_secs(60);
/// How long a logged-in connection may stay silent.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A client that does not take our output within this time is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a command asks of the connection afterwards.
#[derive(Debug, PartialEq, Eq)]
enum After {
    Prompt,
    /// Close the connection (the text is already written).
    Close,
}

/// The state of one CLI connection.
pub struct Session {
    runtime: Arc<Runtime>,
    peer: SocketAddr,
    password: String,
    authenticated: bool,
    /// Non-empty lines so far; coturn counts the password tries this way.
    lines: usize,
    filter: Filter,
}

fn family(a: &SocketAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl Session {
    pub fn new(runtime: Arc<Runtime>, peer: SocketAddr, password: String) -> Self {
        Session { runtime, peer, password, authenticated: false, lines: 0, filter: Filter::default() }
    }

    /// Serve the connection until it ends.
    pub fn run(mut self, mut stream: TcpStream) {
        tracing::debug!("{}. CLI connected to: {}", family(&self.peer), self.peer);
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        if send(&mut stream, &format::greeting()).is_err() {
            return;
        }
        let mut reader = LineReader::default();
        let mut buf = [0u8; 2048];
        'conn: loop {
            let idle = if self.authenticated { SESSION_IDLE } else { LOGIN_IDLE };
            let _ = stream.set_read_timeout(Some(idle));
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
                        tracing::info!("{}. CLI session idle too long, closing: {}", family(&self.peer), self.peer);
                    }
                    break;
                }
            };
            let input = reader.feed(&buf[..n]);
            if !input.reply.is_empty() && stream.write_all(&input.reply).is_err() {
                break;
            }
            for line in input.lines {
                let (text, after) = self.line(&line);
                if send(&mut stream, &text).is_err() || after == After::Close {
                    break 'conn;
                }
            }
            if input.overflow {
                let _ = send(&mut stream, "Line too long\n");
                break;
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        tracing::debug!("{}. CLI session disconnected from: {}", family(&self.peer), self.peer);
    }

    /// Answer one line: the text to send, and whether to go on.
    fn line(&mut self, line: &str) -> (String, After) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return (PROMPT.to_string(), After::Prompt);
        }
        self.lines += 1;
        if !self.authenticated {
            return self.login(trimmed);
        }
        let (mut text, after) = self.command(command::parse(trimmed));
        if after == After::Prompt {
            text.push_str(PROMPT);
        }
        (text, after)
    }

    fn login(&mut self, given: &str) -> (String, After) {
        if verify_password(&self.password, given) {
            self.authenticated = true;
            tracing::info!("{}. CLI authentication success: {}", family(&self.peer), self.peer);
            return (PROMPT.to_string(), After::Prompt);
        }
        if self.lines >= PASSWORD_TRIES {
            tracing::info!("{}. CLI authentication error: {}", family(&self.peer), self.peer);
            tracing::error!("CLI authentication error");
            return (String::new(), After::Close);
        }
        (format::PASSWORD_PROMPT.to_string(), After::Prompt)
    }

    fn command(&mut self, cmd: Command) -> (String, After) {
        let rt = &self.runtime;
        let text = match cmd {
            Command::Empty => String::new(),
            Command::Help => format::help(),
            Command::Quit => return ("Bye !\n".into(), After::Close),
            Command::Stop => {
                tracing::info!("{}. Shutdown command received from CLI user: {}", family(&self.peer), self.peer);
                rt.request_stop();
                return ("TURN server is shutting down\n".into(), After::Close);
            }
            Command::Drain => {
                tracing::info!("{}. Drain command received from CLI user: {}", family(&self.peer), self.peer);
                rt.drain();
                "  TURN server is draining: no new allocations\n".into()
            }
            Command::PrintConfig => self.print_config(),
            Command::SetRealm(r) => {
                self.filter.realm = r;
                String::new()
            }
            Command::SetOrigin(o) => {
                self.filter.origin = o;
                String::new()
            }
            Command::Toggle(name) => match rt.toggle(&name) {
                Ok(v) => format::toggled(&name, v),
                Err(_) if format::toggle_value(&rt.config(), &name).is_none() => format::toggle_error(&rt.config(), &name),
                Err(e) => format!("  Error: {e}\n"),
            },
            Command::Change { name, value } => {
                if format::change_value(&rt.config(), &name).is_none() {
                    let rest = if value.is_empty() { name } else { format!("{name} {value}") };
                    format::change_error(&rest)
                } else {
                    match rt.change(&name, &value) {
                        Ok(()) => format::changed(&name, format::change_value(&rt.config(), &name).unwrap_or(0)),
                        Err(e) => format!("  Error: {e}\n"),
                    }
                }
            }
            Command::Sessions { user, exact } => {
                let cfg = rt.config();
                let list = rt.management().sessions();
                format::sessions(&list, &self.filter, &user, exact, cfg.cli_max_output_sessions, cfg.fingerprint)
            }
            Command::Users(proto) => format::users(&rt.management().sessions(), &self.filter, &proto),
            Command::Cancel(id) => match id.trim().parse::<u64>() {
                Ok(n) if rt.management().cancel(n) => {
                    tracing::info!("{}. Session {n} cancelled by CLI user: {}", family(&self.peer), self.peer);
                    String::new()
                }
                Ok(n) => format!("  Error: no session {n}\n"),
                Err(_) => format!("  Error: not a session id: {id}\n"),
            },
            Command::LogReset => {
                rt.reopen_log();
                "  log reset done\n".into()
            }
            Command::Alternate { add, list, addr } => {
                let what = match list {
                    AltList::General => "Alternate server",
                    AltList::Tls => "TLS alternate server",
                    AltList::Tcp => "TCP alternate server",
                    AltList::Udp => "UDP alternate server",
                };
                let done = if add { rt.add_alternate(list, &addr) } else { rt.remove_alternate(list, &addr) };
                match done {
                    Ok(a) => {
                        tracing::info!("{what} {}: {a}", if add { "added" } else { "removed" });
                        String::new()
                    }
                    Err(e) => format!("  Error: {e}\n"),
                }
            }
            Command::Removed(name) => format!("  {name}: this command was removed in coturn 4.13\n\n"),
            Command::Unknown => "Unknown command\n\n".into(),
        };
        (text, After::Prompt)
    }

    fn print_config(&self) -> String {
        let rt = &self.runtime;
        let cfg = rt.config();
        let ctx = format::ConfigContext {
            filter: self.filter.clone(),
            allocations: rt.management().allocation_count(),
            bps_allocated: rt.core().bps_capacity.granted(),
            // SAFETY: getuid/getgid have no preconditions.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            cwd: std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            relay_threads: rt.management().threads(),
        };
        format::config(&cfg, &ctx)
    }
}

fn send(stream: &mut TcpStream, text: &str) -> std::io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    stream.write_all(&telnet::encode(text))
}
