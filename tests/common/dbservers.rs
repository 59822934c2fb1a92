//! PostgreSQL and MariaDB servers started by the tests on free loopback ports
//! in temporary folders, stopped by PID.
//!
//! Each server lives in its own temp dir (data, unix socket, log) and listens
//! on 127.0.0.1 at a port of a claimed [`PortBlock`], so parallel tests never
//! meet. Both get a database `coturn`, a user `turn` with a password, and
//! coturn's tables ([`SCHEMA_SQL`]). Both daemons refuse to run as root, so
//! when the tests run as root (CI) they run as the `postgres` / `mysql` users
//! created by the Debian packages, and their temp dir is handed over to them.
//! `stop()` / `start_again()` restart the same server on the same port for
//! the "database down" cases; dropping the server stops it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use turnserver::userdb::sql::SCHEMA_SQL;

use super::{run_cmd, PortBlock};

/// How long a database server gets to start or to stop.
pub const DB_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The database every server offers.
pub const DB_NAME: &str = "coturn";
/// The non-superuser every server offers.
pub const DB_USER: &str = "turn";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program` to be run as `user` when we are root, directly otherwise.
/// setpriv execs in place, so the child's PID is the daemon's PID.
fn command_as(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", user, "--regid", user, "--init-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A temp dir for a server's files. As root the daemon runs as another user
/// that must be able to reach it, so it goes under /tmp (world-searchable)
/// whatever TMPDIR says.
fn server_dir(prefix: &str) -> tempfile::TempDir {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    if is_root() && Path::new("/tmp").is_dir() {
        b.tempdir_in("/tmp").expect("temp dir in /tmp")
    } else {
        b.tempdir().expect("temp dir")
    }
}

fn chown_to(user: &str, dir: &Path) {
    if is_root() {
        let out = run_cmd(
            Path::new("chown"),
            &[
                "-R".to_string(),
                format!("{user}:{user}"),
                dir.display().to_string(),
            ],
            Duration::from_secs(10),
        );
        assert!(
            out.success(),
            "chown {user} {}: {}",
            dir.display(),
            out.describe()
        );
    }
}

/// Sends `sig` to the child's PID and waits up to `grace` for it to exit,
/// then SIGKILL. Always reaps.
fn stop_child(child: &mut Child, sig: libc::c_int, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: signalling the PID of a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn log_file(path: &Path) -> (Stdio, Stdio) {
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("server log file");
    let f2 = f.try_clone().expect("dup log file");
    (Stdio::from(f), Stdio::from(f2))
}

fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

/// Polls `ready` every 100 ms until it says yes, the child exits, or
/// [`DB_START_TIMEOUT`] passes (then panics with the log).
fn wait_ready(what: &str, child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + DB_START_TIMEOUT;
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited during start ({st}):\n{}", read_log(log));
        }
        if Instant::now() > deadline {
            panic!(
                "{what} not ready within {DB_START_TIMEOUT:?}:\n{}",
                read_log(log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Percent-encodes everything but unreserved characters (for URIs).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------ PostgreSQL

/// Directory of the newest installed PostgreSQL server binaries.
pub fn pg_bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql missing)")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|(_, d)| d)
        .expect("no /usr/lib/postgresql/*/bin/postgres")
}

/// A throwaway PostgreSQL server (see the module docs).
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    _ports: PortBlock,
    child: Option<Child>,
}

impl PgServer {
    /// The password of [`DB_USER`]; it has a blank and a quote on purpose,
    /// so the keyword form needs quoting and the URI form percent-encoding.
    pub const PASSWORD: &'static str = "s3cret pw'x";

    /// initdb, start, create [`DB_USER`] / [`DB_NAME`] and load coturn's schema.
    pub fn start() -> PgServer {
        let dir = server_dir("turnserver-pg-");
        let ports = PortBlock::claim();
        let mut pg = PgServer {
            bin: pg_bin_dir(),
            port: ports.spare_port(0),
            _ports: ports,
            dir,
            child: None,
        };
        chown_to("postgres", pg.dir.path());
        let log = pg.log_path();
        let (o, e) = log_file(&log);
        let mut initdb = command_as("postgres", &pg.bin.join("initdb"));
        initdb
            .args(["-D"])
            .arg(pg.data_dir())
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
            ])
            .current_dir(pg.dir.path())
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e);
        let mut child = initdb.spawn().expect("run initdb");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if Instant::now() > deadline {
                stop_child(&mut child, libc::SIGTERM, Duration::from_secs(2));
                panic!("initdb timed out:\n{}", read_log(&log));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "initdb failed:\n{}", read_log(&log));
        pg.start_again();
        let pw = Self::PASSWORD.replace('\'', "''");
        pg.psql(
            "postgres",
            "postgres",
            &format!("CREATE ROLE {DB_USER} LOGIN PASSWORD '{pw}'"),
        );
        pg.psql(
            "postgres",
            "postgres",
            &format!("CREATE DATABASE {DB_NAME} OWNER {DB_USER}"),
        );
        pg.psql(DB_USER, DB_NAME, SCHEMA_SQL);
        pg
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the server writes its messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs SQL through psql over the unix socket (trusted) as `user`.
    pub fn psql(&self, user: &str, db: &str, sql: &str) -> String {
        let out = run_cmd(
            &self.bin.join("psql"),
            &[
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &self.dir.path().display().to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                user,
                "-d",
                db,
                "-c",
                sql,
            ],
            Duration::from_secs(30),
        );
        assert!(out.success(), "psql {sql:?}: {}", out.describe());
        out.stdout
    }

    /// Directory of the server's unix socket (`host=` of a socket connection).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// libpq keyword form, password quoted, short connect timeout.
    pub fn conninfo(&self) -> String {
        let pw = Self::PASSWORD.replace('\\', "\\\\").replace('\'', "\\'");
        format!(
            "host=127.0.0.1 port={} dbname={DB_NAME} user={DB_USER} password='{pw}' connect_timeout=3 sslmode=disable",
            self.port
        )
    }

    /// `postgresql://` URI form of the same.
    pub fn uri(&self) -> String {
        format!(
            "postgresql://{DB_USER}:{}@127.0.0.1:{}/{DB_NAME}?sslmode=disable&connect_timeout=3",
            percent_encode(Self::PASSWORD),
            self.port
        )
    }

    /// Fast shutdown (SIGINT to the postmaster's PID), waiting for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, libc::SIGINT, DB_START_TIMEOUT);
        }
    }

    /// Starts the server again on the same data dir and port; waits until it
    /// accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "PostgreSQL is running already");
        let log = self.log_path();
        let (o, e) = log_file(&log);
        let mut cmd = command_as("postgres", &self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=30",
            ])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e);
        let mut child = cmd.spawn().expect("start postgres");
        let psql = self.bin.join("psql");
        let sock = self.dir.path().display().to_string();
        let port = self.port.to_string();
        wait_ready("postgres", &mut child, &log, || {
            run_cmd(
                &psql,
                &[
                    "-X", "-At", "-h", &sock, "-p", &port, "-U", "postgres", "-d", "postgres",
                    "-c", "select 1",
                ],
                Duration::from_secs(5),
            )
            .success()
        });
        self.child = Some(child);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------ MariaDB

/// A throwaway MariaDB server (see the module docs).
pub struct MariaDb {
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    port: u16,
    _ports: PortBlock,
    child: Option<Child>,
}

impl MariaDb {
    /// The password of [`DB_USER`] (coturn's format has no quoting).
    pub const PASSWORD: &'static str = "turn-pw_4";

    /// mariadb-install-db, start, create [`DB_USER`] / [`DB_NAME`] and load
    /// coturn's schema.
    pub fn start() -> MariaDb {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with extra `mariadbd` options (kept for
    /// [`start_again`](Self::start_again)), e.g. `--ssl-cert=…`.
    pub fn start_with(extra_args: &[String]) -> MariaDb {
        let dir = server_dir("turnserver-my-");
        let ports = PortBlock::claim();
        let mut db = MariaDb {
            extra_args: extra_args.to_vec(),
            port: ports.spare_port(0),
            _ports: ports,
            dir,
            child: None,
        };
        chown_to("mysql", db.dir.path());
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", db.data_dir().display()),
            "--auth-root-authentication-method=normal".to_string(),
            "--skip-test-db".to_string(),
        ];
        if is_root() {
            args.push("--user=mysql".to_string());
        }
        let out = run_cmd(
            Path::new("mariadb-install-db"),
            &args,
            Duration::from_secs(120),
        );
        assert!(out.success(), "mariadb-install-db: {}", out.describe());
        db.start_again();
        let pw = Self::PASSWORD;
        db.sql(
            None,
            &format!(
                "CREATE DATABASE {DB_NAME}; \
                 CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{pw}'; \
                 CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY '{pw}'; \
                 GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1'; \
                 GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'localhost';"
            ),
        );
        db.sql(Some(DB_NAME), SCHEMA_SQL);
        db
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's unix socket (`host=` of a socket connection).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// Where the server writes its messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mariadb.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn client_args(&self) -> Vec<String> {
        vec![
            "--no-defaults".to_string(),
            format!("--socket={}", self.socket().display()),
            "-uroot".to_string(),
        ]
    }

    /// Runs SQL as the server's root user over the unix socket.
    pub fn sql(&self, db: Option<&str>, sql: &str) -> String {
        let mut args = self.client_args();
        args.push("-N".to_string());
        if let Some(d) = db {
            args.push(d.to_string());
        }
        args.push("-e".to_string());
        args.push(sql.to_string());
        let out = run_cmd(Path::new("mariadb"), &args, Duration::from_secs(30));
        assert!(out.success(), "mariadb {sql:?}: {}", out.describe());
        out.stdout
    }

    /// coturn's `--mysql-userdb` format over TCP, short connect timeout.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={DB_NAME} user={DB_USER} password={} connect_timeout=3",
            self.port,
            Self::PASSWORD
        )
    }

    /// SIGTERM to mariadbd's PID (clean shutdown), waiting for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, libc::SIGTERM, DB_START_TIMEOUT);
        }
    }

    /// Starts mariadbd again on the same data dir and port; waits until it
    /// accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "MariaDB is running already");
        let log = self.log_path();
        let (o, e) = log_file(&log);
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.data_dir().display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=0",
                "--skip-name-resolve",
            ])
            .args(&self.extra_args);
        if is_root() {
            cmd.arg("--user=mysql");
        }
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e);
        let mut child = cmd.spawn().expect("start mariadbd");
        let mut args = self.client_args();
        args.extend(["-e".to_string(), "select 1".to_string()]);
        wait_ready("mariadbd", &mut child, &log, || {
            run_cmd(Path::new("mariadb"), &args, Duration::from_secs(5)).success()
        });
        self.child = Some(child);
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}
