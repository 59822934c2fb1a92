//! Process-level chores: pid file, open-file limit, daemonising.

use std::path::{Path, PathBuf};

/// Write our pid to `path`, falling back as coturn does to `turnserver.pid` in
/// /var/run, /var/spool, /var, /var/tmp, /tmp and the current directory. Logs
/// `pid file created: <path>` and returns the path used; `None` if `path` is
/// `None` (pid file disabled) or every place failed (logged as an error).
pub fn write_pidfile(path: Option<&Path>) -> Option<PathBuf> {
    todo!()
}

/// Remove the pid file written by [`write_pidfile`] (errors ignored).
pub fn remove_pidfile(path: &Path) {
    todo!()
}

/// Raise RLIMIT_NOFILE's soft limit to the hard limit; return the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    todo!()
}

/// Detach from the terminal (`--daemon`): fork, setsid, fork, chdir("/"),
/// stdin/stdout/stderr to /dev/null. Returns in the daemon process only.
pub fn daemonize() -> anyhow::Result<()> {
    todo!()
}
