//! systemd's notification protocol (`Type=notify`, `WatchdogSec=`), spoken
//! directly: one datagram per state change to the unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). Without
//! that variable every call is a no-op, so the server runs the same under
//! systemd, a container runtime or a shell.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The notification socket of the service manager, if it gave us one.
pub struct Notifier {
    socket: UnixDatagram,
    target: Target,
}

enum Target {
    Path(std::path::PathBuf),
    #[cfg(target_os = "linux")]
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; `None` when it is unset or unusable.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        Self::to(name.to_str()?)
    }

    /// A notifier for the socket `name` (a path or `@abstract`).
    pub fn to(name: &str) -> Option<Notifier> {
        let target = match name.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            Some(abs) => Target::Abstract(abs.as_bytes().to_vec()),
            #[cfg(not(target_os = "linux"))]
            Some(_) => return None,
            None if name.starts_with('/') => Target::Path(name.into()),
            None => return None,
        };
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notifier { socket, target })
    }

    /// Send one state string such as `READY=1`.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        match &self.target {
            Target::Path(p) => self.socket.send_to(state.as_bytes(), p).map(|_| ()),
            #[cfg(target_os = "linux")]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                self.socket.send_to_addr(state.as_bytes(), &addr).map(|_| ())
            }
        }
    }

    /// `READY=1` with a status line and our pid (systemd wants MAINPID when
    /// the process that notifies is not the one it started, as after `-o`).
    pub fn ready(&self, status: &str) {
        let _ = self.notify(&format!("READY=1\nSTATUS={status}\nMAINPID={}", std::process::id()));
    }

    pub fn status(&self, status: &str) {
        let _ = self.notify(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        let _ = self.notify("STOPPING=1");
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`: systemd 253 and later tie a
    /// reload to that timestamp and, without it, may not see the reload
    /// finish (`Type=notify-reload`).
    pub fn reloading(&self) {
        let _ = self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    pub fn watchdog(&self) {
        let _ = self.notify("WATCHDOG=1");
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares with.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass by pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000
}

/// How often to send `WATCHDOG=1`: half the interval systemd set in
/// `WATCHDOG_USEC` (for this process, when `WATCHDOG_PID` names one).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str().and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let n = Notifier::to(path.to_str().unwrap()).unwrap();
        n.ready("serving");
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(msg.starts_with("READY=1\nSTATUS=serving\nMAINPID="), "{msg}");
        n.stopping();
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
        n.reloading();
        let len = rx.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        let usec: u64 = msg.strip_prefix("RELOADING=1\nMONOTONIC_USEC=").unwrap().parse().unwrap();
        assert!(usec > 0, "{msg}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("turnserver-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Notifier::to(&format!("@{name}")).unwrap().watchdog();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn relative_names_are_refused() {
        assert!(Notifier::to("notify.sock").is_none());
    }
}
