//! Black-box tests of the `turnadmin` binary: coturn's output formats and
//! exit codes, and databases shared both ways with coturn's own
//! `/usr/bin/turnadmin` (those parts are skipped, with a note, when coturn
//! is not installed). SQLite databases are files in a temp dir; PostgreSQL
//! and MariaDB are throwaway servers (`common::dbservers`).

#![allow(clippy::unwrap_used)] // test fixtures: a panic is the failure report

mod common;

use std::path::Path;
use std::process::Command;

use common::dbservers::{MariaDb, PgServer};
use common::redis_server::RedisServer;

const OURS: &str = env!("CARGO_BIN_EXE_turnadmin");
const COTURN: &str = "/usr/bin/turnadmin";

struct Outcome {
    code: i32,
    out: String,
    err: String,
}

/// Runs `bin args` under `timeout` in `dir` (coturn writes a log file into
/// its working directory when it cannot use /var/log).
fn run_in(dir: &Path, bin: &str, args: &[&str]) -> Outcome {
    let o = Command::new("timeout")
        .arg("20")
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run timeout");
    Outcome {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ours(dir: &Path, args: &[&str]) -> Outcome {
    run_in(dir, OURS, args)
}

/// coturn's answer with its log lines (`<uptime>: : ...`) removed and its
/// program name replaced by ours, or `None` when coturn is not installed.
fn coturn(dir: &Path, args: &[&str]) -> Option<Outcome> {
    if !Path::new(COTURN).exists() {
        eprintln!("note: {COTURN} not installed; coturn comparison skipped");
        return None;
    }
    let mut o = run_in(dir, COTURN, args);
    o.out = o
        .out
        .lines()
        .filter(|l| !is_coturn_log_line(l))
        .map(|l| format!("{l}\n"))
        .collect();
    o.err = o.err.replace(COTURN, OURS);
    Some(o)
}

fn is_coturn_log_line(l: &str) -> bool {
    l.split_once(": : ")
        .is_some_and(|(t, _)| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
}

/// Runs a write command with our binary and insists it succeeded silently.
fn ours_ok(dir: &Path, args: &[&str]) {
    let o = ours(dir, args);
    assert_eq!(
        (o.code, o.out.as_str(), o.err.as_str()),
        (0, "", ""),
        "turnadmin {args:?}"
    );
}

fn coturn_ok(dir: &Path, args: &[&str]) {
    if let Some(o) = coturn(dir, args) {
        assert_eq!(
            (o.code, o.out.as_str(), o.err.as_str()),
            (0, "", ""),
            "coturn turnadmin {args:?}"
        );
    }
}

fn listing(o: Outcome) -> String {
    assert_eq!(
        (o.code, o.err.as_str()),
        (0, ""),
        "listing failed: {}",
        o.out
    );
    o.out
}

#[test]
fn print_key_vector() {
    let dir = tempfile::tempdir().unwrap();
    let o = ours(
        dir.path(),
        &[
            "-k",
            "-u",
            "ninefingers",
            "-r",
            "north.gov",
            "-p",
            "youhavetoberealistic",
        ],
    );
    assert_eq!(
        (o.code, o.out.as_str(), o.err.as_str()),
        (0, "0xbc807ee29df3c9ffa736523fb2c4e8ee\n", "")
    );
}

/// Lines that never touch a database: usage, grammar errors, missing
/// pieces. Same stdout, stderr and exit status as coturn.
#[test]
fn errors_and_usage_match_coturn() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let db = db.to_str().unwrap();
    let lines: &[&[&str]] = &[
        &[],
        &["--help"],
        &["-h", "x"],
        &["-h"],
        &["-Q"],
        &["--bogus"],
        &["--bogus=1"],
        &["--key=3"],
        &["--user"],
        &["--max-bps"],
        &["--del"],
        &["--u"],
        &["-l", "-r"],
        &["-s"],
        &["-v"],
        &["-H"],
        &["-P"],
        &["-P", "-u", "x"],
        &["-E"],
        &["-k"],
        &["-k", "-u", "a"],
        &["-k", "-r", "b", "-p", "c"],
        &["-k", "-u", "a", "-r", "b", "-p", "c", "extra"],
        &["-k", "-u", "a", "-p", "b", "--", "extra"],
        &["-u", "a", "-r", "b", "-p", "c"],
        &["-a", "-b", db],
        &["-a", "-b", db, "-u", "alice"],
        &["-a", "-b", db, "-u", "alice", "-p", "secret"],
        &["-a", "-b", db, "-u", "x", "-r", "y", "-p", ""],
        &["-d", "-b", db, "-u", "alice"],
        &["-A", "-b", db],
        &["-A", "-b", db, "-u", "admin"],
        &["-D", "-b", db],
        &["-s", "x", "-b", db],
        &["-X", "x", "-b", db],
        &["--delete-all-secrets", "-b", db],
        &["-O", "-b", db],
        &["-O", "-b", db, "-o", "https://a.b"],
        &["-R", "-b", db],
        &["-g", "-b", db],
        &["-g", "-b", db, "-r", "r"],
        &["-g", "-b", db, "-r", "r", "--user-quota", "-5"],
        &["-g", "-b", db, "-r", "r", "--max-bps", "-1"],
    ];
    let mut compared = 0;
    for line in lines {
        let mine = ours(dir.path(), line);
        assert!(
            mine.code == 0 || mine.code == 255,
            "{line:?}: {}",
            mine.code
        );
        let Some(theirs) = coturn(dir.path(), line) else {
            continue;
        };
        assert_eq!(mine.code, theirs.code, "exit status of {line:?}");
        assert_eq!(mine.out, theirs.out, "stdout of {line:?}");
        assert_eq!(mine.err, theirs.err, "stderr of {line:?}");
        compared += 1;
    }
    assert!(compared == 0 || compared == lines.len());
    // None of these created a database.
    assert!(!Path::new(db).exists());
}

#[test]
fn password_hash_verifies_and_has_coturns_shape() {
    let dir = tempfile::tempdir().unwrap();
    let o = ours(dir.path(), &["-P", "-p", "qwerty"]);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let h = o.out.trim_end();
    assert!(turnserver::admin::hash::verify_password(h, "qwerty"), "{h}");
    assert_eq!(h.len(), 84);
    // And coturn's hash verifies with our code.
    if let Some(c) = coturn(dir.path(), &["-P", "-p", "qwerty"]) {
        assert!(turnserver::admin::hash::verify_password(
            c.out.trim_end(),
            "qwerty"
        ));
    }
}

#[test]
fn aes_key_files_interoperate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ours_ok(d, &["-E", "-x", "ours.key"]);
    let key = std::fs::read(d.join("ours.key")).unwrap();
    assert_eq!(key.len(), 16);
    assert!(key.iter().all(u8::is_ascii_alphanumeric));

    let enc = ours(d, &["-E", "-f", "ours.key", "-p", "mysqlpass"]);
    assert_eq!((enc.code, enc.err.as_str()), (0, ""));
    let enc = enc.out.trim_end().to_string();
    let dec = ours(d, &["--verify", &enc, "-f", "ours.key"]);
    assert_eq!((dec.code, dec.out.as_str()), (0, "mysqlpass\n"));

    let Some(_) = coturn(d, &["--help"]) else {
        return;
    };
    // coturn encrypts the same way with our key, and decrypts ours (it wants -f first).
    let c = coturn(d, &["-E", "-f", "ours.key", "-p", "mysqlpass"]).unwrap();
    assert_eq!((c.code, c.out.trim_end()), (0, enc.as_str()));
    let c = coturn(d, &["-f", "ours.key", "-v", &enc]).unwrap();
    assert_eq!((c.code, c.out.as_str()), (0, "mysqlpass\n"));
    // A key and a password encrypted by coturn, decrypted by us.
    coturn_ok(d, &["-E", "-x", "coturn.key"]);
    let c = coturn(d, &["-E", "-f", "coturn.key", "-p", "another secret"]).unwrap();
    let dec = ours(d, &["-v", c.out.trim_end(), "-f", "coturn.key"]);
    assert_eq!((dec.code, dec.out.as_str()), (0, "another secret\n"));
}

/// Every DB command of ours against a fresh SQLite file, output in coturn's
/// format.
#[test]
fn commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let b = ["-b", "t.db"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        b.iter().copied().chain(extra.iter().copied()).collect()
    };

    ours_ok(d, &with(&["-a", "-u", "zed", "-r", "a.org", "-p", "x"]));
    ours_ok(d, &with(&["-a", "-u", "alice", "-r", "z.org", "-p", "x"]));
    ours_ok(d, &with(&["-a", "-u", "bob", "-r", "a.org", "-p", "x"]));
    assert_eq!(
        listing(ours(d, &with(&["-l"]))),
        "bob[a.org]\nzed[a.org]\nalice[z.org]\n"
    );
    assert_eq!(
        listing(ours(d, &with(&["-l", "-r", "z.org"]))),
        "alice[z.org]\n"
    );
    ours_ok(d, &with(&["-d", "-u", "zed", "-r", "a.org"]));
    ours_ok(d, &with(&["-d", "-u", "nobody", "-r", "a.org"]));
    assert_eq!(
        listing(ours(d, &with(&["--list"]))),
        "bob[a.org]\nalice[z.org]\n"
    );

    ours_ok(d, &with(&["-s", "zz", "-r", "a.org"]));
    ours_ok(d, &with(&["--set-secret=aa", "-r", "z.org"]));
    ours_ok(d, &with(&["-s", "bb", "-r", "a.org"]));
    ours_ok(d, &with(&["-s", "bb", "-r", "a.org"]));
    assert_eq!(
        listing(ours(d, &with(&["-S"]))),
        "bb[a.org]\nzz[a.org]\naa[z.org]\n"
    );
    ours_ok(d, &with(&["-X", "zz", "-r", "a.org"]));
    assert_eq!(
        listing(ours(d, &with(&["-S", "-r", "a.org"]))),
        "bb[a.org]\n"
    );
    ours_ok(d, &with(&["--delete-all-secrets", "-r", "a.org"]));
    assert_eq!(listing(ours(d, &with(&["-S"]))), "aa[z.org]\n");

    ours_ok(
        d,
        &with(&["-O", "-o", "https://app.example.org", "-r", "example.org"]),
    );
    ours_ok(
        d,
        &with(&[
            "-O",
            "-o",
            "HTTP://App.Example.ORG/x?y",
            "-r",
            "example.org",
        ]),
    );
    ours_ok(
        d,
        &with(&["--add-origin", "--origin=X.ORG", "--realm=other.org"]),
    );
    assert_eq!(
        listing(ours(d, &with(&["-I"]))),
        "http://app.example.org:80 ==>> example.org\nhttps://app.example.org:443 ==>> example.org\nX.ORG ==>> other.org\n"
    );
    ours_ok(d, &with(&["-R", "-o", "http://APP.example.org"]));
    assert_eq!(
        listing(ours(d, &with(&["--list-origins", "-r", "example.org"]))),
        "https://app.example.org:443 ==>> example.org\n"
    );

    ours_ok(
        d,
        &with(&[
            "-g",
            "-r",
            "z.org",
            "--user-quota",
            "1",
            "--max-bps",
            "2",
            "--total-quota",
            "3",
        ]),
    );
    ours_ok(
        d,
        &with(&[
            "-g",
            "-r",
            "a.org",
            "--max-bps",
            "64000",
            "--user-quota",
            "12abc",
        ]),
    );
    assert_eq!(
        listing(ours(d, &with(&["-G"]))),
        "max-bps[a.org]=64000\nuser-quota[a.org]=12\nmax-bps[z.org]=2\ntotal-quota[z.org]=3\nuser-quota[z.org]=1\n"
    );
    ours_ok(d, &with(&["-g", "-r", "z.org", "--max-bps", "0"]));
    assert_eq!(
        listing(ours(d, &with(&["-G", "-r", "z.org"]))),
        "total-quota[z.org]=3\nuser-quota[z.org]=1\n"
    );

    ours_ok(d, &with(&["-A", "-u", "zadm", "-p", "x"]));
    ours_ok(d, &with(&["-A", "-u", "aadm", "-r", "z.org", "-p", "x"]));
    ours_ok(d, &with(&["-A", "-u", "badm", "-r", "a.org", "-p", "x"]));
    assert_eq!(
        listing(ours(d, &with(&["-L"]))),
        "zadm\nbadm[a.org]\naadm[z.org]\n"
    );
    // -A then -l still lists admins, as coturn.
    assert_eq!(
        listing(ours(d, &with(&["-A", "-l"]))),
        "zadm\nbadm[a.org]\naadm[z.org]\n"
    );
    ours_ok(d, &with(&["-D", "-u", "badm"]));
    assert_eq!(listing(ours(d, &with(&["-L"]))), "zadm\naadm[z.org]\n");
}

/// A database written by our turnadmin reads the same through coturn's.
#[test]
fn coturn_reads_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if coturn(d, &["--help"]).is_none() {
        return;
    }
    let b = ["-b", "ours.db"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        b.iter().copied().chain(extra.iter().copied()).collect()
    };
    ours_ok(
        d,
        &with(&["-a", "-u", "alice", "-r", "example.org", "-p", "secret"]),
    );
    ours_ok(
        d,
        &with(&[
            "-a",
            "-u",
            "ninefingers",
            "-r",
            "north.gov",
            "-p",
            "youhavetoberealistic",
        ]),
    );
    ours_ok(d, &with(&["-s", "mysecret", "-r", "example.org"]));
    ours_ok(d, &with(&["-s", "s2", "-r", "north.gov"]));
    ours_ok(
        d,
        &with(&["-O", "-o", "https://app.example.org", "-r", "example.org"]),
    );
    ours_ok(d, &with(&["-O", "-o", "FTP://F.org/x", "-r", "north.gov"]));
    ours_ok(
        d,
        &with(&[
            "-g",
            "-r",
            "example.org",
            "--max-bps",
            "64000",
            "--user-quota",
            "10",
        ]),
    );
    ours_ok(d, &with(&["-g", "-r", "north.gov", "--total-quota", "5"]));
    ours_ok(d, &with(&["-A", "-u", "admin", "-p", "adminpw"]));
    ours_ok(
        d,
        &with(&["-A", "-u", "radm", "-r", "example.org", "-p", "pw2"]),
    );

    let expected = [
        ("-l", "alice[example.org]\nninefingers[north.gov]\n"),
        ("-S", "mysecret[example.org]\ns2[north.gov]\n"),
        (
            "-I",
            "https://app.example.org:443 ==>> example.org\nftp://f.org:21 ==>> north.gov\n",
        ),
        (
            "-G",
            "max-bps[example.org]=64000\nuser-quota[example.org]=10\ntotal-quota[north.gov]=5\n",
        ),
        ("-L", "admin\nradm[example.org]\n"),
    ];
    for (cmd, want) in expected {
        let theirs = listing(coturn(d, &with(&[cmd])).unwrap());
        assert_eq!(theirs, want, "coturn turnadmin {cmd}");
        assert_eq!(listing(ours(d, &with(&[cmd]))), want, "turnadmin {cmd}");
    }
    // coturn can delete what we wrote.
    coturn_ok(d, &with(&["-d", "-u", "alice", "-r", "example.org"]));
    coturn_ok(d, &with(&["-R", "-o", "https://app.example.org"]));
    assert_eq!(listing(ours(d, &with(&["-l"]))), "ninefingers[north.gov]\n");
    assert_eq!(
        listing(ours(d, &with(&["-I"]))),
        "ftp://f.org:21 ==>> north.gov\n"
    );
}

/// A database written by coturn's turnadmin lists identically through ours.
#[test]
fn we_read_what_coturn_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if coturn(d, &["--help"]).is_none() {
        return;
    }
    let b = ["-b", "coturn.db"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        b.iter().copied().chain(extra.iter().copied()).collect()
    };
    coturn_ok(
        d,
        &with(&["-a", "-u", "alice", "-r", "example.org", "-p", "secret"]),
    );
    coturn_ok(d, &with(&["-a", "-u", "bob", "-r", "other.org", "-p", "x"]));
    coturn_ok(d, &with(&["-s", "mysecret", "-r", "example.org"]));
    coturn_ok(d, &with(&["-s", "s3", "-r", "example.org"]));
    coturn_ok(
        d,
        &with(&["-O", "-o", "HTTPS://App.Example.org", "-r", "example.org"]),
    );
    coturn_ok(d, &with(&["-O", "-o", "x.org", "-r", "other.org"]));
    coturn_ok(d, &with(&["-O", "-o", "https://[::1]", "-r", "other.org"]));
    coturn_ok(
        d,
        &with(&[
            "-g",
            "-r",
            "example.org",
            "--max-bps",
            "64000",
            "--user-quota",
            "10",
        ]),
    );
    coturn_ok(d, &with(&["-A", "-u", "admin", "-p", "adminpw"]));
    coturn_ok(
        d,
        &with(&["-A", "-u", "radm", "-r", "example.org", "-p", "pw2"]),
    );

    for cmd in ["-l", "-S", "-I", "-G", "-L"] {
        let theirs = listing(coturn(d, &with(&[cmd])).unwrap());
        assert!(!theirs.is_empty(), "coturn listed nothing for {cmd}");
        assert_eq!(listing(ours(d, &with(&[cmd]))), theirs, "turnadmin {cmd}");
        for realm in ["example.org", "other.org"] {
            let theirs = listing(coturn(d, &with(&[cmd, "-r", realm])).unwrap());
            assert_eq!(
                listing(ours(d, &with(&[cmd, "-r", realm]))),
                theirs,
                "turnadmin {cmd} -r {realm}"
            );
        }
    }
    // The key coturn stored is the one we compute for the same user.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt
        .block_on(turnserver::userdb::UserDb::connect(
            &turnserver::userdb::DbSpec::Sqlite(d.join("coturn.db")),
        ))
        .unwrap();
    let key = rt
        .block_on(db.get_user_key("example.org", "alice"))
        .unwrap();
    let ours_k = ours(
        d,
        &["-k", "-u", "alice", "-r", "example.org", "-p", "secret"],
    );
    assert_eq!(
        Some(ours_k.out.trim_end().trim_start_matches("0x").to_string()),
        key
    );
    // coturn's admin hashes verify with our code.
    let admin = rt.block_on(db.get_admin_user("radm")).unwrap().unwrap();
    assert_eq!(admin.realm, "example.org");
    assert!(turnserver::admin::hash::verify_password(
        &admin.password,
        "pw2"
    ));
    // And our turnadmin edits coturn's file.
    ours_ok(d, &with(&["-d", "-u", "bob", "-r", "other.org"]));
    ours_ok(d, &with(&["-R", "-o", "https://app.example.org"]));
    assert_eq!(
        listing(coturn(d, &with(&["-l"])).unwrap()),
        "alice[example.org]\n"
    );
    assert_eq!(
        listing(coturn(d, &with(&["-I", "-r", "example.org"])).unwrap()),
        ""
    );
}

#[test]
fn database_errors_fail() {
    let dir = tempfile::tempdir().unwrap();
    let o = ours(dir.path(), &["-l", "-b", "/nonexistent/dir/turndb"]);
    assert_eq!((o.code, o.out.as_str()), (255, ""));
    assert!(
        o.err
            .starts_with("ERROR: SQLite DB </nonexistent/dir/turndb>"),
        "{}",
        o.err
    );
    let o = ours(dir.path(), &["-l", "--mongo-userdb", "mongodb://localhost"]);
    assert_eq!(o.code, 255);
    assert!(o.err.contains("MongoDB is not supported"), "{}", o.err);
}

/// One PostgreSQL or MariaDB database written by both tools: each lists
/// every row, whoever wrote it, in the same lines.
fn shared_server_db(selector: &str, conn: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if coturn(d, &["--help"]).is_none() {
        return;
    }
    let with = |extra: &[&'static str]| -> Vec<&str> {
        [selector, conn]
            .into_iter()
            .chain(extra.iter().copied())
            .collect()
    };
    ours_ok(
        d,
        &with(&["-a", "-u", "alice", "-r", "example.org", "-p", "secret"]),
    );
    ours_ok(d, &with(&["-s", "mysecret", "-r", "example.org"]));
    ours_ok(
        d,
        &with(&["-O", "-o", "HTTPS://App.example.org", "-r", "example.org"]),
    );
    ours_ok(
        d,
        &with(&[
            "-g",
            "-r",
            "example.org",
            "--max-bps",
            "64000",
            "--user-quota",
            "10",
        ]),
    );
    ours_ok(d, &with(&["-A", "-u", "admin", "-p", "adminpw"]));
    coturn_ok(d, &with(&["-a", "-u", "bob", "-r", "other.org", "-p", "x"]));
    coturn_ok(d, &with(&["-s", "s2", "-r", "other.org"]));
    coturn_ok(d, &with(&["-O", "-o", "http://x.org", "-r", "other.org"]));
    coturn_ok(d, &with(&["-g", "-r", "other.org", "--total-quota", "5"]));
    coturn_ok(
        d,
        &with(&["-A", "-u", "radm", "-r", "other.org", "-p", "pw"]),
    );

    let expected = [
        ("-l", "alice[example.org]\nbob[other.org]\n"),
        ("-S", "mysecret[example.org]\ns2[other.org]\n"),
        (
            "-I",
            "https://app.example.org:443 ==>> example.org\nhttp://x.org:80 ==>> other.org\n",
        ),
        (
            "-G",
            "max-bps[example.org]=64000\nuser-quota[example.org]=10\ntotal-quota[other.org]=5\n",
        ),
        ("-L", "admin\nradm[other.org]\n"),
    ];
    for (cmd, want) in expected {
        assert_eq!(listing(ours(d, &with(&[cmd]))), want, "turnadmin {cmd}");
        assert_eq!(
            listing(coturn(d, &with(&[cmd])).unwrap()),
            want,
            "coturn turnadmin {cmd}"
        );
    }
    // Zero removes an option, whichever tool sets it (coturn's SQL drivers
    // delete the row for 0 on PostgreSQL and MySQL).
    ours_ok(d, &with(&["-g", "-r", "example.org", "--max-bps", "0"]));
    coturn_ok(d, &with(&["-g", "-r", "other.org", "--total-quota", "0"]));
    let want = "user-quota[example.org]=10\n";
    assert_eq!(listing(ours(d, &with(&["-G"]))), want);
    assert_eq!(listing(coturn(d, &with(&["-G"])).unwrap()), want);
    // Each deletes what the other wrote.
    ours_ok(d, &with(&["-d", "-u", "bob", "-r", "other.org"]));
    coturn_ok(d, &with(&["-D", "-u", "admin"]));
    assert_eq!(
        listing(coturn(d, &with(&["-l"])).unwrap()),
        "alice[example.org]\n"
    );
    assert_eq!(listing(ours(d, &with(&["-L"]))), "radm[other.org]\n");
}

#[test]
fn postgresql_shared_with_coturn() {
    let pg = PgServer::start();
    shared_server_db("-e", &pg.conninfo());
}

#[test]
fn mariadb_shared_with_coturn() {
    let my = MariaDb::start();
    shared_server_db("-M", &my.conninfo());
}

/// A Redis user database written by both tools. coturn prints Redis rows in
/// `KEYS` order, so lines are compared as sorted sets; `-G` has coturn's
/// Redis format.
#[test]
fn redis_shared_with_coturn() {
    let redis = RedisServer::start();
    let conn = format!("ip=127.0.0.1 port={} dbname=3", redis.port());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if coturn(d, &["--help"]).is_none() {
        return;
    }
    let with = |extra: &[&'static str]| -> Vec<&str> {
        ["-N", conn.as_str()]
            .into_iter()
            .chain(extra.iter().copied())
            .collect()
    };
    let sorted = |s: String| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    ours_ok(
        d,
        &with(&["-a", "-u", "alice", "-r", "example.org", "-p", "secret"]),
    );
    ours_ok(d, &with(&["-s", "mysecret", "-r", "example.org"]));
    ours_ok(
        d,
        &with(&["-O", "-o", "HTTPS://App.example.org", "-r", "example.org"]),
    );
    ours_ok(d, &with(&["-g", "-r", "example.org", "--max-bps", "64000"]));
    ours_ok(d, &with(&["-A", "-u", "admin", "-p", "adminpw"]));
    coturn_ok(d, &with(&["-a", "-u", "bob", "-r", "other.org", "-p", "x"]));
    coturn_ok(d, &with(&["-s", "s2", "-r", "other.org"]));
    coturn_ok(d, &with(&["-O", "-o", "http://x.org", "-r", "other.org"]));
    coturn_ok(d, &with(&["-g", "-r", "other.org", "--total-quota", "5"]));
    coturn_ok(
        d,
        &with(&["-A", "-u", "radm", "-r", "other.org", "-p", "pw"]),
    );
    for cmd in ["-l", "-S", "-I", "-G", "-L"] {
        let mine = listing(ours(d, &with(&[cmd])));
        let theirs = listing(coturn(d, &with(&[cmd])).unwrap());
        assert_eq!(mine.lines().count(), 2, "turnadmin {cmd}: {mine}");
        assert_eq!(sorted(mine), sorted(theirs), "turnadmin {cmd}");
    }
    assert_eq!(
        listing(ours(d, &with(&["-G"]))),
        "example.org/max-bps = 64000\nother.org/total-quota = 5\n"
    );
}
