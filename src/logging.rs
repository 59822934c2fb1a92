//! Logging through `tracing`, formatted as coturn 4.17 prints its lines:
//! `2026-08-07T12:00:00.123+0000 INFO msg` (one record per line, level one of
//! DEBUG/INFO/WARNING/ERROR), to the file, stdout or syslog that `--log-file`,
//! `--simple-log`, `--no-stdout-log` and `--syslog` select.

use crate::config::{Config, LogLevel, LogTarget};

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
    pub fn from_config(cfg: &Config) -> Self {
        todo!()
    }
}

/// Keeps the log writer alive; `reopen` closes and reopens the log file (SIGHUP).
pub struct LogHandle {
    _private: (),
}

impl LogHandle {
    pub fn reopen(&self) {
        todo!()
    }
    /// The path of the log file in use, if logging to a file.
    pub fn path(&self) -> Option<std::path::PathBuf> {
        todo!()
    }
}

/// Install the global subscriber. Call once, early.
pub fn init(opts: &LogOptions) -> anyhow::Result<LogHandle> {
    todo!()
}
