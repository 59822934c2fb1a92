//! The installed global subscriber, end to end: file naming, line format,
//! filtering, pid file log line, reopen after logrotate, single init.
//! One test function because the global subscriber is per process.

use turnserver::config::{LogLevel, LogTarget};
use turnserver::logging::{self, LogOptions};

fn assert_line(line: &str, level: &str, msg: &str) {
    // `2026-08-07T12:00:00.123+0000 INFO msg`
    let (ts, rest) = line.split_once(' ').expect("timestamp");
    assert_eq!(rest, format!("{level} {msg}"), "line {line:?}");
    assert_eq!(ts.len(), 28, "timestamp {ts:?}");
    let b = ts.as_bytes();
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
        assert_eq!(b[i], c, "timestamp {ts:?}");
    }
    assert!(b[23] == b'+' || b[23] == b'-', "timestamp {ts:?}");
}

#[test]
fn global_logging_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions {
        target: LogTarget::File(tmp.path().join("turn.log")),
        simple_log: false,
        no_stdout_log: true,
        syslog: false,
        min_level: LogLevel::Debug,
        verbose: true,
        very_verbose: false,
        timestamp_format: "%FT%T.%f%z".to_string(),
    };
    let handle = logging::init(&opts).expect("init");
    assert!(logging::verbose() && !logging::very_verbose());
    assert!(logging::init(&opts).is_err(), "second init must fail");

    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let path = tmp.path().join(format!("turn_{today}.log"));
    assert_eq!(handle.path(), Some(path.clone()));

    // Disabled levels are off globally, so debug! is a static compare.
    assert!(!tracing::enabled!(tracing::Level::DEBUG));
    assert_eq!(tracing::level_filters::LevelFilter::current(), tracing::level_filters::LevelFilter::INFO);

    tracing::debug!("hidden");
    tracing::info!("session {} new", 1);
    tracing::warn!(peer = "127.0.0.1:9", "denied");
    let pid = tmp.path().join("t.pid");
    let written = turnserver::process::write_pidfile(Some(&pid));
    assert_eq!(written.as_deref(), Some(pid.as_path()));

    let text = std::fs::read_to_string(&path).expect("read log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_line(lines[0], "INFO", "session 1 new");
    assert_line(lines[1], "WARNING", "denied peer=127.0.0.1:9");
    assert_line(lines[2], "INFO", &format!("pid file created: {}", pid.display()));
    turnserver::process::remove_pidfile(&pid);

    // logrotate: move the file away, SIGHUP -> reopen, next line in a new file.
    std::fs::rename(&path, tmp.path().join("rotated.log")).expect("rename");
    handle.reopen();
    tracing::error!("after rotate");
    let text = std::fs::read_to_string(&path).expect("read new log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_line(lines[0], "ERROR", "after rotate");
}
