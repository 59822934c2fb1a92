//! `--syslog` / `--log-file=syslog`: records go to the system logger through
//! libc's openlog/syslog, which timestamps them itself.

use std::ffi::CString;

use crate::config::LogLevel;

/// The ident passed to openlog. It must outlive every syslog() call (libc
/// keeps the pointer), hence a static.
static IDENT: &std::ffi::CStr = c"turnserver";

/// Map a coturn level to a syslog priority.
pub fn priority(level: LogLevel) -> libc::c_int {
    match level {
        LogLevel::Debug => libc::LOG_DEBUG,
        LogLevel::Info => libc::LOG_INFO,
        LogLevel::Warning => libc::LOG_WARNING,
        LogLevel::Error => libc::LOG_ERR,
    }
}

/// Parse a `--syslog-facility` value such as `LOG_LOCAL1` (case-insensitive,
/// `LOG_` optional). Unknown names give `None`; callers keep LOG_USER.
pub fn facility_from_name(name: &str) -> Option<libc::c_int> {
    let upper = name.trim().to_ascii_uppercase();
    let short = upper.strip_prefix("LOG_").unwrap_or(&upper);
    Some(match short {
        "USER" => libc::LOG_USER,
        "DAEMON" => libc::LOG_DAEMON,
        "AUTH" => libc::LOG_AUTH,
        "AUTHPRIV" => libc::LOG_AUTHPRIV,
        "LOCAL0" => libc::LOG_LOCAL0,
        "LOCAL1" => libc::LOG_LOCAL1,
        "LOCAL2" => libc::LOG_LOCAL2,
        "LOCAL3" => libc::LOG_LOCAL3,
        "LOCAL4" => libc::LOG_LOCAL4,
        "LOCAL5" => libc::LOG_LOCAL5,
        "LOCAL6" => libc::LOG_LOCAL6,
        "LOCAL7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

/// An open connection to syslog. Only one per process makes sense: openlog
/// state is global in libc.
#[derive(Debug)]
pub struct Syslog {
    _private: (),
}

impl Syslog {
    /// Call openlog with ident `turnserver`, the pid in every record and
    /// `facility` (LOG_USER unless `--syslog-facility`).
    pub fn open(facility: libc::c_int) -> Self {
        // SAFETY: IDENT is a 'static NUL-terminated string, as openlog needs
        // since it stores the pointer; the other arguments are plain ints.
        unsafe { libc::openlog(IDENT.as_ptr(), libc::LOG_PID | libc::LOG_NDELAY, facility) };
        Syslog { _private: () }
    }

    /// Send one record. NUL bytes (which C strings cannot carry) become spaces.
    pub fn send(&self, level: LogLevel, msg: &str) {
        let cmsg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the format is a static "%s" and its single argument is a
        // valid NUL-terminated string alive for the call, so syslog reads
        // nothing it should not.
        unsafe { libc::syslog(priority(level), c"%s".as_ptr(), cmsg.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(priority(LogLevel::Debug), libc::LOG_DEBUG);
        assert_eq!(priority(LogLevel::Info), libc::LOG_INFO);
        assert_eq!(priority(LogLevel::Warning), libc::LOG_WARNING);
        assert_eq!(priority(LogLevel::Error), libc::LOG_ERR);
    }

    #[test]
    fn facilities() {
        assert_eq!(facility_from_name("LOG_LOCAL1"), Some(libc::LOG_LOCAL1));
        assert_eq!(facility_from_name("local7"), Some(libc::LOG_LOCAL7));
        assert_eq!(facility_from_name("LOG_USER"), Some(libc::LOG_USER));
        assert_eq!(facility_from_name("bogus"), None);
        assert_eq!(facility_from_name(""), None);
    }
}
