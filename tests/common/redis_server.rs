//! redis-server started by the tests on a free loopback port in a temporary
//! folder, stopped by PID.
//!
//! [`RedisServer::start`] runs `/usr/bin/redis-server` without persistence on
//! a port of its own [`PortBlock`](super::PortBlock) and waits (bounded) until
//! it answers PING. [`RedisServer::stop`] / [`RedisServer::start_again`] take
//! it down and bring it back on the same port, for outage tests. Dropping it
//! stops it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{require_tool, run_cmd, terminate, CmdOutput, PortBlock};

/// How long redis-server gets to answer PING after it is started.
pub const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Server side of a TLS-only redis-server (`--tls-port`, plain port off).
#[derive(Clone)]
pub struct RedisTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    /// `--tls-auth-clients yes`: clients must show a certificate signed by `ca`.
    pub auth_clients: bool,
}

pub struct RedisServer {
    ports: PortBlock,
    password: Option<String>,
    tls: Option<RedisTls>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A redis-server without a password.
    pub fn start() -> RedisServer {
        Self::launch(None, None)
    }

    /// A redis-server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::launch(Some(password.to_string()), None)
    }

    /// A redis-server that speaks only TLS on [`RedisServer::port`].
    pub fn start_tls(tls: RedisTls) -> RedisServer {
        Self::launch(None, Some(tls))
    }

    fn launch(password: Option<String>, tls: Option<RedisTls>) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("turnserver-redis-")
            .tempdir()
            .expect("temp dir for redis");
        let mut s = RedisServer {
            ports: PortBlock::claim(),
            password,
            tls,
            dir,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let bin = require_tool("redis-server");
        // A fresh log, so readiness is judged on this run's lines.
        let _ = std::fs::remove_file(self.log_path());
        let port = self.port().to_string();
        let dir = self.dir.path().to_string_lossy().into_owned();
        let log = self.log_path().to_string_lossy().into_owned();
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            &log,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match &self.tls {
            None => args.extend(["--port".to_string(), port]),
            Some(t) => {
                let path = |p: &PathBuf| p.to_string_lossy().into_owned();
                args.extend([
                    "--port".to_string(),
                    "0".to_string(),
                    "--tls-port".to_string(),
                    port,
                    "--tls-cert-file".to_string(),
                    path(&t.cert),
                    "--tls-key-file".to_string(),
                    path(&t.key),
                    "--tls-ca-cert-file".to_string(),
                    path(&t.ca),
                    "--tls-auth-clients".to_string(),
                    (if t.auth_clients { "yes" } else { "no" }).to_string(),
                ]);
            }
        }
        if let Some(pw) = &self.password {
            args.push("--requirepass".to_string());
            args.push(pw.clone());
        }
        let child = Command::new(&bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + REDIS_READY_TIMEOUT;
        loop {
            if self.answers_ping() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("redis-server exited ({st}) at start:\n{}", self.log());
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "redis-server not ready within {REDIS_READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when something on the port answers PING like Redis (`+PONG`, or
    /// `-NOAUTH` when a password is required); for TLS, when it listens and
    /// has logged that it is ready.
    fn answers_ping(&self) -> bool {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port()));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
            return false;
        };
        if self.tls.is_some() {
            // Listening is all a plain probe can see; the log says when it is ready.
            return self.log().contains("Ready to accept connections");
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(n) if n > 0 => buf[0] == b'+' || buf[..n].starts_with(b"-NOAUTH"),
            _ => false,
        }
    }

    pub fn port(&self) -> u16 {
        self.ports.listen_port()
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// coturn's connection string for database 0: `ip=127.0.0.1 port=N dbname=0 [password=..]`.
    pub fn spec(&self) -> String {
        self.spec_db(0)
    }

    /// [`RedisServer::spec`] for another database number.
    pub fn spec_db(&self, db: u32) -> String {
        let mut s = format!("ip=127.0.0.1 port={} dbname={db}", self.port());
        if let Some(pw) = &self.password {
            s.push_str(&format!(" password={pw}"));
        }
        s
    }

    /// `redis://` URL for a test's own redis crate client.
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/0", self.port()),
            None => format!("redis://127.0.0.1:{}/0", self.port()),
        }
    }

    /// Runs `redis-cli` against this server (5 s limit).
    pub fn cli(&self, args: &[&str]) -> CmdOutput {
        let port = self.port().to_string();
        let mut all: Vec<String> = vec!["-h".into(), "127.0.0.1".into(), "-p".into(), port];
        if let Some(pw) = &self.password {
            all.extend([
                "-a".to_string(),
                pw.clone(),
                "--no-auth-warning".to_string(),
            ]);
        }
        all.extend(args.iter().map(|s| s.to_string()));
        run_cmd(&require_tool("redis-cli"), &all, Duration::from_secs(5))
    }

    /// Stops redis-server by PID (SIGTERM, SIGKILL after 3 s). The port stays ours.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(3));
        }
    }

    /// Starts it again on the same port, empty (nothing is persisted).
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
