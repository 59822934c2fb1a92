//! Logging through `tracing`, formatted as coturn 4.17 prints its lines:
//! `2026-08-07T12:00:00.123+0000 INFO msg` (one record per line, level one of
//! DEBUG/INFO/WARNING/ERROR), to the file, stdout or syslog that `--log-file`,
//! `--simple-log`, `--no-stdout-log` and `--syslog` select.
//!
//! Verbosity: INFO, WARNING and ERROR records are always emitted (subject to
//! `--log-min-level`); DEBUG (and TRACE, printed as DEBUG) only with `-V`.
//! `-v` does not change the filter: it decides whether callers emit their
//! per-session INFO lines at all, which they check with [`verbose()`].
//!
//! The pieces are separate so they can be tested without installing the
//! global subscriber: [`format`] (line formatting), [`sink`] (the file, its
//! naming, rollover and reopen), [`syslog`], and [`CoturnLayer`] (filtering
//! and dispatch), which [`init`] puts together.

pub mod format;
pub mod sink;
pub mod syslog;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use chrono::Local;
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::config::{Config, LogLevel, LogTarget};

pub use format::{
    format_line, level_from_tracing, level_name, TimestampFormat, DEFAULT_TIMESTAMP_FORMAT,
};
pub use sink::{dated_path, default_auto_dirs, open_auto, FileNaming, LogSink};

/// Everything the log setup needs, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub target: LogTarget,
    pub simple_log: bool,
    pub no_stdout_log: bool,
    pub syslog: bool,
    pub min_level: LogLevel,
    pub verbose: bool,
    pub very_verbose: bool,
    /// strftime format; `%f` = milliseconds (coturn 4.17 default `%FT%T.%f%z`).
    pub timestamp_format: String,
}

impl LogOptions {
    /// coturn 4.17 always prints the ISO-8601 prefix (`--new-log-timestamp`
    /// defaults on there), so only the format is taken; an empty format means
    /// the 4.17 default.
    pub fn from_config(cfg: &Config) -> Self {
        let timestamp_format = if cfg.new_log_timestamp_format.is_empty() {
            DEFAULT_TIMESTAMP_FORMAT.to_string()
        } else {
            cfg.new_log_timestamp_format.clone()
        };
        LogOptions {
            target: cfg.log_file.clone(),
            simple_log: cfg.simple_log,
            no_stdout_log: cfg.no_stdout_log,
            syslog: cfg.syslog,
            min_level: cfg.log_min_level,
            verbose: cfg.verbose || cfg.very_verbose,
            very_verbose: cfg.very_verbose,
            timestamp_format,
        }
    }

    /// The most verbose `tracing` level that passes: DEBUG/TRACE only with
    /// `-V` and `--log-min-level=debug`, otherwise `--log-min-level` capped
    /// at INFO.
    pub fn level_filter(&self) -> LevelFilter {
        match self.min_level {
            LogLevel::Debug if self.very_verbose => LevelFilter::TRACE,
            LogLevel::Debug | LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warning => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        }
    }
}

static VERBOSE: AtomicBool = AtomicBool::new(false);
static VERY_VERBOSE: AtomicBool = AtomicBool::new(false);

/// `-v` (or `-V`) was given: callers emit per-session INFO lines. Set by
/// [`init`]; false before.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// `-V` was given. Set by [`init`]; false before.
pub fn very_verbose() -> bool {
    VERY_VERBOSE.load(Ordering::Relaxed)
}

/// Where formatted records go.
#[derive(Debug)]
pub struct Outputs {
    pub timestamp: TimestampFormat,
    pub file: Option<LogSink>,
    pub stdout: bool,
    pub syslog: Option<syslog::Syslog>,
}

impl Outputs {
    /// Format and emit one record to every output.
    pub fn emit(&self, level: LogLevel, msg: &str) {
        if let Some(sys) = &self.syslog {
            sys.send(level, msg);
        }
        if self.file.is_none() && !self.stdout {
            return;
        }
        let now = Local::now();
        let line = format_line(&self.timestamp, level, msg, &now);
        if let Some(file) = &self.file {
            // Nowhere sensible to report a failing log file (stderr may be
            // /dev/null); the stdout copy, if any, still gets the line.
            let _ = file.write_line(&line, now.date_naive());
        }
        if self.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// The `tracing` layer: a static level threshold (so disabled callsites are
/// switched off once, at registration, and cost a single compare afterwards)
/// and coturn formatting.
///
/// The threshold can change at run time (SIGHUP reload): it is an atomic, and
/// whoever changes it rebuilds tracing's callsite cache.
#[derive(Debug, Clone)]
pub struct CoturnLayer {
    max: Arc<AtomicU8>,
    out: Arc<Outputs>,
}

/// A [`LevelFilter`] as a small number for an atomic, and back.
fn filter_code(f: LevelFilter) -> u8 {
    match f {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 1,
        LevelFilter::WARN => 2,
        LevelFilter::INFO => 3,
        LevelFilter::DEBUG => 4,
        _ => 5,
    }
}

fn filter_of(code: u8) -> LevelFilter {
    match code {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

impl CoturnLayer {
    pub fn new(max: LevelFilter, out: Arc<Outputs>) -> Self {
        CoturnLayer { max: Arc::new(AtomicU8::new(filter_code(max))), out }
    }

    fn max(&self) -> LevelFilter {
        filter_of(self.max.load(Ordering::Relaxed))
    }

    fn passes(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max()
    }
}

impl<S: Subscriber> Layer<S> for CoturnLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.passes(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.passes(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max())
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = format::MessageVisitor::default();
        event.record(&mut visitor);
        self.out.emit(
            level_from_tracing(event.metadata().level()),
            &visitor.finish(),
        );
    }
}

/// Keeps the log writer alive; `reopen` closes and reopens the log file (SIGHUP).
pub struct LogHandle {
    out: Arc<Outputs>,
    max: Arc<AtomicU8>,
}

impl LogHandle {
    /// Apply the verbosity of reloaded options (`-v`, `-V`,
    /// `--log-min-level`); where the log goes stays as it was.
    pub fn set_verbosity(&self, opts: &LogOptions) {
        self.max.store(filter_code(opts.level_filter()), Ordering::Relaxed);
        VERBOSE.store(opts.verbose || opts.very_verbose, Ordering::Relaxed);
        VERY_VERBOSE.store(opts.very_verbose, Ordering::Relaxed);
        tracing::callsite::rebuild_interest_cache();
    }

    /// Reopen the log file by name, so logging continues in a fresh file after
    /// logrotate moved the old one. A failure is logged and the old file kept.
    pub fn reopen(&self) {
        if let Some(file) = &self.out.file {
            if let Err(e) = file.reopen() {
                tracing::error!("Cannot reopen log file {}: {}", file.path().display(), e);
            }
        }
    }

    /// The path of the log file in use, if logging to a file.
    pub fn path(&self) -> Option<std::path::PathBuf> {
        self.out.file.as_ref().map(LogSink::path)
    }
}

/// Build the outputs for `opts` without installing anything. The strings
/// returned are warnings to log once logging is up (file fallbacks, bad
/// timestamp format). `auto_dirs` is the candidate list for the automatic
/// file (normally [`default_auto_dirs`]).
pub fn build_outputs(
    opts: &LogOptions,
    syslog_facility: libc::c_int,
    auto_dirs: &[PathBuf],
) -> (Outputs, Vec<String>) {
    let mut warnings = Vec::new();
    let (timestamp, warn) = TimestampFormat::parse_or_default(&opts.timestamp_format);
    warnings.extend(warn);

    if opts.syslog || opts.target == LogTarget::Syslog {
        // coturn: --syslog sends everything to syslog, no file, no stdout copy.
        let sys = syslog::Syslog::open(syslog_facility);
        return (
            Outputs {
                timestamp,
                file: None,
                stdout: false,
                syslog: Some(sys),
            },
            warnings,
        );
    }

    let today = Local::now().date_naive();
    let pid = std::process::id();
    let open_auto_sink = |warnings: &mut Vec<String>| match open_auto(auto_dirs, pid, today) {
        Ok((naming, path, f)) => Some(LogSink::from_parts(naming, path, today, f)),
        Err(e) => {
            warnings.push(format!(
                "Cannot open a log file in any default directory: {e}; logging to stdout"
            ));
            None
        }
    };
    let file = match &opts.target {
        LogTarget::Stdout | LogTarget::Syslog => None,
        LogTarget::File(path) => {
            let naming = if opts.simple_log {
                FileNaming::Exact(path.clone())
            } else {
                FileNaming::Daily(path.clone())
            };
            let wanted = naming.path_for(today);
            match LogSink::open(naming, today) {
                Ok(s) => Some(s),
                Err(e) => {
                    // Like coturn: an unusable --log-file falls back to the
                    // automatic file, then stdout, rather than stopping.
                    warnings.push(format!(
                        "Cannot open log file for writing: {}: {e}",
                        wanted.display()
                    ));
                    open_auto_sink(&mut warnings)
                }
            }
        }
        LogTarget::Auto => open_auto_sink(&mut warnings),
    };
    // Without a file, stdout is the only place left, whatever --no-stdout-log says.
    let stdout = file.is_none() || !opts.no_stdout_log;
    (
        Outputs {
            timestamp,
            file,
            stdout,
            syslog: None,
        },
        warnings,
    )
}

/// Install the global subscriber. Call once, early.
pub fn init(opts: &LogOptions) -> anyhow::Result<LogHandle> {
    init_with_syslog_facility(opts, libc::LOG_USER)
}

/// [`init`] with a syslog facility (`--syslog-facility`, parsed with
/// [`syslog::facility_from_name`]).
pub fn init_with_syslog_facility(
    opts: &LogOptions,
    facility: libc::c_int,
) -> anyhow::Result<LogHandle> {
    let (outputs, warnings) = build_outputs(opts, facility, &default_auto_dirs());
    let out = Arc::new(outputs);
    let layer = CoturnLayer::new(opts.level_filter(), out.clone());
    let max = Arc::clone(&layer.max);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| anyhow::anyhow!("logging already initialised: {e}"))?;
    VERBOSE.store(opts.verbose || opts.very_verbose, Ordering::Relaxed);
    VERY_VERBOSE.store(opts.very_verbose, Ordering::Relaxed);
    for w in warnings {
        tracing::warn!("{}", w);
    }
    Ok(LogHandle { out, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(target: LogTarget) -> LogOptions {
        LogOptions {
            target,
            simple_log: false,
            no_stdout_log: true,
            syslog: false,
            min_level: LogLevel::Debug,
            verbose: false,
            very_verbose: false,
            timestamp_format: DEFAULT_TIMESTAMP_FORMAT.to_string(),
        }
    }

    /// Run `f` with a scoped subscriber writing to an exact file; return the
    /// file's lines with the timestamp cut off.
    fn capture(o: &LogOptions, f: impl FnOnce()) -> Vec<String> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("t.log");
        let mut o = o.clone();
        o.target = LogTarget::File(path.clone());
        o.simple_log = true;
        let (outputs, warnings) = build_outputs(&o, libc::LOG_USER, &[]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!outputs.stdout);
        let layer = CoturnLayer::new(o.level_filter(), Arc::new(outputs));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        let text = std::fs::read_to_string(&path).expect("read");
        text.lines()
            .map(|l| {
                l.split_once(' ')
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn fields_follow_message() {
        let lines = capture(&opts(LogTarget::Stdout), || {
            tracing::info!("session {} new", 7);
            tracing::warn!(user = "test", lifetime = 600u32, "refreshed");
            tracing::error!(code = 401);
            tracing::info!(reason = ?Some("x"), "dbg");
        });
        assert_eq!(
            lines,
            vec![
                "INFO session 7 new",
                "WARNING refreshed user=test lifetime=600",
                "ERROR code=401",
                "INFO dbg reason=Some(\"x\")",
            ]
        );
    }

    #[test]
    fn debug_needs_very_verbose() {
        let mut o = opts(LogTarget::Stdout);
        let lines = capture(&o, || {
            tracing::debug!("d");
            tracing::trace!("t");
            tracing::info!("i");
        });
        assert_eq!(lines, vec!["INFO i"]);

        o.very_verbose = true;
        let lines = capture(&o, || {
            tracing::debug!("d");
            tracing::trace!("t");
            tracing::info!("i");
        });
        assert_eq!(lines, vec!["DEBUG d", "DEBUG t", "INFO i"]);
    }

    #[test]
    fn min_level_filters() {
        let mut o = opts(LogTarget::Stdout);
        o.very_verbose = true;
        o.min_level = LogLevel::Warning;
        let lines = capture(&o, || {
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        assert_eq!(lines, vec!["WARNING w", "ERROR e"]);
        o.min_level = LogLevel::Error;
        assert_eq!(o.level_filter(), LevelFilter::ERROR);
        o.min_level = LogLevel::Info;
        assert_eq!(o.level_filter(), LevelFilter::INFO);
    }

    #[test]
    fn line_has_timestamp_prefix() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("p.log");
        let mut o = opts(LogTarget::File(path.clone()));
        o.simple_log = true;
        let (outputs, _) = build_outputs(&o, libc::LOG_USER, &[]);
        outputs.emit(LogLevel::Info, "hello");
        let text = std::fs::read_to_string(&path).expect("read");
        let (ts, rest) = text.split_once(' ').expect("space");
        assert_eq!(rest, "INFO hello\n");
        // 2026-08-07T12:00:00.123+0000
        assert_eq!(ts.len(), 28, "{ts}");
        assert_eq!(&ts[10..11], "T");
        assert_eq!(&ts[19..20], ".");
        assert!(ts[20..23].bytes().all(|b| b.is_ascii_digit()), "{ts}");
    }

    #[test]
    fn file_target_is_dated_unless_simple() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let o = opts(LogTarget::File(tmp.path().join("x.log")));
        let (outputs, w) = build_outputs(&o, libc::LOG_USER, &[]);
        assert!(w.is_empty());
        let today = Local::now().date_naive().format("%Y-%m-%d").to_string();
        let path = outputs.file.as_ref().map(LogSink::path);
        assert_eq!(path, Some(tmp.path().join(format!("x_{today}.log"))));
        assert!(!outputs.stdout);
    }

    #[test]
    fn unusable_file_falls_back_to_auto_then_stdout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut o = opts(LogTarget::File(tmp.path().join("missing/dir/x.log")));
        o.simple_log = true;
        let (outputs, w) = build_outputs(&o, libc::LOG_USER, &[tmp.path().to_path_buf()]);
        assert_eq!(w.len(), 1, "{w:?}");
        let p = outputs.file.as_ref().map(LogSink::path).expect("auto file");
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            name.starts_with(&format!("turn_{}_", std::process::id())),
            "{name}"
        );

        let (outputs, w) = build_outputs(&o, libc::LOG_USER, &[]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(outputs.file.is_none());
        assert!(
            outputs.stdout,
            "stdout is the last resort even with --no-stdout-log"
        );
    }

    #[test]
    fn stdout_target_and_copy() {
        let (outputs, _) = build_outputs(&opts(LogTarget::Stdout), libc::LOG_USER, &[]);
        assert!(outputs.file.is_none() && outputs.stdout);
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut o = opts(LogTarget::Auto);
        o.no_stdout_log = false;
        let (outputs, _) = build_outputs(&o, libc::LOG_USER, &[tmp.path().to_path_buf()]);
        assert!(outputs.file.is_some() && outputs.stdout);
    }

    #[test]
    fn handle_reopen_and_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("h.log");
        let mut o = opts(LogTarget::File(path.clone()));
        o.simple_log = true;
        let (outputs, _) = build_outputs(&o, libc::LOG_USER, &[]);
        let handle = LogHandle {
            out: Arc::new(outputs),
            max: Arc::default(),
        };
        assert_eq!(handle.path(), Some(path.clone()));
        handle.out.emit(LogLevel::Info, "one");
        std::fs::rename(&path, tmp.path().join("h.log.1")).expect("rename");
        handle.reopen();
        handle.out.emit(LogLevel::Info, "two");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.ends_with(" INFO two\n") && !text.contains("one"),
            "{text}"
        );
    }
}
