//! Process-level chores: pid file, open-file limit, daemonising, dropping
//! privileges.

use std::ffi::{CStr, CString};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where coturn looks for a place for `turnserver.pid` when the requested pid
/// file cannot be written (the empty path is the current directory).
pub fn default_pidfile_fallbacks() -> Vec<PathBuf> {
    ["/var/run", "/var/spool", "/var", "/var/tmp", "/tmp", ""]
        .iter()
        .map(|d| Path::new(d).join("turnserver.pid"))
        .collect()
}

/// Write our pid to `path`, falling back as coturn does to `turnserver.pid` in
/// /var/run, /var/spool, /var, /var/tmp, /tmp and the current directory. Logs
/// `pid file created: <path>` and returns the path used; `None` if `path` is
/// `None` (pid file disabled) or every place failed (logged as an error).
pub fn write_pidfile(path: Option<&Path>) -> Option<PathBuf> {
    write_pidfile_with_fallbacks(path?, &default_pidfile_fallbacks())
}

/// [`write_pidfile`] with an explicit fallback list (tests use a temp dir).
/// Candidates equal to `path` are not tried twice.
pub fn write_pidfile_with_fallbacks(path: &Path, fallbacks: &[PathBuf]) -> Option<PathBuf> {
    let pid = std::process::id();
    let mut tried: Vec<&Path> = Vec::new();
    for candidate in std::iter::once(path).chain(fallbacks.iter().map(PathBuf::as_path)) {
        if candidate.as_os_str().is_empty() || tried.contains(&candidate) {
            continue;
        }
        tried.push(candidate);
        match write_pid(candidate, pid) {
            Ok(()) => {
                tracing::info!("pid file created: {}", candidate.display());
                return Some(candidate.to_path_buf());
            }
            Err(e) => {
                // Only the requested location is worth an error line; the
                // fallbacks failing is summarised below.
                if candidate == path {
                    tracing::error!("Cannot create pid file: {}: {}", candidate.display(), e);
                }
            }
        }
    }
    tracing::error!("Cannot create pid file in any of the default locations");
    None
}

fn write_pid(path: &Path, pid: u32) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    writeln!(f, "{pid}")?;
    f.flush()
}

/// Remove the pid file written by [`write_pidfile`] (errors ignored).
pub fn remove_pidfile(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Raise RLIMIT_NOFILE's soft limit to the hard limit; return the new soft limit.
///
/// Every relayed allocation holds sockets, so coturn starts by asking for all
/// the descriptors it may have. When the hard limit is "unlimited" the kernel
/// refuses it for NOFILE; then `/proc/sys/fs/nr_open` (Linux) is tried. On
/// any failure the current soft limit stays and is returned.
pub fn raise_nofile_limit() -> u64 {
    let Some(mut lim) = get_nofile() else {
        return 0;
    };
    if lim.rlim_cur < lim.rlim_max {
        let wanted = lim.rlim_max;
        lim.rlim_cur = wanted;
        if !set_nofile(&lim) && wanted == libc::RLIM_INFINITY {
            if let Some(nr_open) = read_nr_open() {
                lim.rlim_cur = nr_open;
                let _ = set_nofile(&lim);
            }
        }
    }
    get_nofile().map(|l| rlim_u64(l.rlim_cur)).unwrap_or(0)
}

/// `rlim_t` is `u64` on the usual targets but not on every libc.
#[allow(clippy::unnecessary_cast)]
fn rlim_u64(v: libc::rlim_t) -> u64 {
    v as u64
}

fn get_nofile() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the rlimit we pass by pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim)
}

fn set_nofile(lim: &libc::rlimit) -> bool {
    // SAFETY: setrlimit only reads the rlimit we pass by pointer.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) == 0 }
}

fn read_nr_open() -> Option<libc::rlim_t> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Detach from the terminal (`--daemon`): fork, setsid, fork, chdir("/"),
/// stdin/stdout/stderr to /dev/null. Returns in the daemon process only.
///
/// Must run before any thread is started (only the calling thread survives a
/// fork) and before the pid file is written (the pid changes). Note that
/// relative paths used afterwards resolve against `/`.
pub fn daemonize() -> anyhow::Result<()> {
    fork_and_exit_parent()?;
    // SAFETY: setsid has no arguments; after the fork we are not a process
    // group leader, so it can only fail for reasons reported via errno.
    if unsafe { libc::setsid() } < 0 {
        return Err(anyhow::anyhow!(
            "setsid failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    // The second fork makes sure the daemon is not a session leader, so it
    // can never reacquire a controlling terminal.
    fork_and_exit_parent()?;
    std::env::set_current_dir("/").map_err(|e| anyhow::anyhow!("chdir(\"/\") failed: {e}"))?;
    redirect_stdio_to_devnull()
}

fn fork_and_exit_parent() -> anyhow::Result<()> {
    // Push out buffered output so the parent's exit does not lose it and the
    // child does not print it twice.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fork is called while the process is single-threaded (see
    // `daemonize`), so the child has a consistent copy of all state.
    match unsafe { libc::fork() } {
        -1 => Err(anyhow::anyhow!(
            "fork failed: {}",
            std::io::Error::last_os_error()
        )),
        // SAFETY: _exit ends the parent immediately without running atexit
        // handlers or destructors that belong to the child now.
        0 => Ok(()),
        _ => unsafe { libc::_exit(0) },
    }
}

fn redirect_stdio_to_devnull() -> anyhow::Result<()> {
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| anyhow::anyhow!("cannot open /dev/null: {e}"))?;
    use std::os::fd::AsRawFd as _;
    for target in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: both descriptors are valid: `devnull` is open for the
        // duration of the loop and 0/1/2 are ours to replace.
        if unsafe { libc::dup2(devnull.as_raw_fd(), target) } < 0 {
            return Err(anyhow::anyhow!(
                "dup2 to fd {target} failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// `--proc-group` / `--proc-user`: switch to the group, then the user, after
/// sockets are bound and certificates read. Names may also be numeric ids.
/// Unknown names are an error (coturn treats them as fatal). When running as
/// root, supplementary groups are reset too (to the user's groups, or just
/// `group`), and a user without `group` takes the user's primary group, so
/// neither root's group memberships nor gid 0 survive the drop.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> anyhow::Result<()> {
    let user = user.filter(|u| !u.is_empty());
    let group = group.filter(|g| !g.is_empty());
    let pw = user
        .map(|u| lookup_user(u).ok_or_else(|| anyhow::anyhow!("Unknown user name: {u}")))
        .transpose()?;
    let gid = group
        .map(|g| lookup_group(g).ok_or_else(|| anyhow::anyhow!("Unknown group name: {g}")))
        .transpose()?;

    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let gid = if root { gid.or(pw.as_ref().map(|p| p.gid)) } else { gid };
    if root {
        match (&pw, gid) {
            (Some(p), _) => {
                let g = gid.unwrap_or(p.gid);
                let name = CString::new(p.name.as_str())
                    .map_err(|_| anyhow::anyhow!("Unknown user name: {}", p.name))?;
                // SAFETY: `name` is a valid C string for the call; initgroups
                // reads the group database and sets our supplementary groups.
                if unsafe { libc::initgroups(name.as_ptr(), g) } != 0 {
                    return Err(anyhow::anyhow!(
                        "Cannot set supplementary groups for user {}: {}",
                        p.name,
                        std::io::Error::last_os_error()
                    ));
                }
            }
            (None, Some(g)) => {
                // SAFETY: the list is one gid on the stack, alive for the call.
                if unsafe { libc::setgroups(1, &g) } != 0 {
                    return Err(anyhow::anyhow!(
                        "Cannot set supplementary groups: {}",
                        std::io::Error::last_os_error()
                    ));
                }
            }
            (None, None) => {}
        }
    }
    if let Some(g) = gid {
        // SAFETY: setgid takes a plain id.
        if unsafe { libc::setgid(g) } != 0 {
            return Err(anyhow::anyhow!(
                "Cannot set group id to {g}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    if let Some(p) = &pw {
        // SAFETY: setuid takes a plain id. Done last: afterwards we could no
        // longer change the group.
        if unsafe { libc::setuid(p.uid) } != 0 {
            return Err(anyhow::anyhow!(
                "Cannot set user id to {} ({}): {}",
                p.uid,
                p.name,
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The real user and group ids of the process (for the log after a drop).
pub fn current_ids() -> (libc::uid_t, libc::gid_t) {
    // SAFETY: getuid and getgid have no preconditions.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// The parts of a passwd entry we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Look a user up by name, or by numeric uid when no such name exists.
pub fn lookup_user(name: &str) -> Option<UserEntry> {
    let cname = CString::new(name).ok()?;
    // SAFETY: getpwnam_r writes the entry into `pwd` and its strings into
    // `buf`, both owned here and sized by `buf.len()`.
    let by_name = with_buffer(
        |buf, res: &mut *mut libc::passwd, pwd: &mut libc::passwd| unsafe {
            libc::getpwnam_r(cname.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), res)
        },
    );
    if let Some(e) = by_name {
        return Some(e);
    }
    let uid: libc::uid_t = name.parse().ok()?;
    // SAFETY: as above, with getpwuid_r.
    with_buffer(
        |buf, res: &mut *mut libc::passwd, pwd: &mut libc::passwd| unsafe {
            libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), res)
        },
    )
}

fn with_buffer(
    mut call: impl FnMut(
        &mut Vec<libc::c_char>,
        &mut *mut libc::passwd,
        &mut libc::passwd,
    ) -> libc::c_int,
) -> Option<UserEntry> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: passwd is plain data; all-zero is a valid (empty) value
        // that the lookup overwrites.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut buf, &mut res, &mut pwd);
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || res.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points into `buf`, NUL-terminated.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Some(UserEntry {
            name,
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        });
    }
}

/// Look a group up by name, or by numeric gid when no such name exists.
pub fn lookup_group(name: &str) -> Option<libc::gid_t> {
    let cname = CString::new(name).ok()?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: group is plain data; all-zero is a valid value to overwrite.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: getgrnam_r writes into `grp` and `buf`, both owned here and
        // sized by `buf.len()`.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc == 0 && !res.is_null() {
            return Some(grp.gr_gid);
        }
        // Numeric ids are accepted as-is: they need no database entry.
        return name.parse().ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_pid(p: &Path) -> String {
        std::fs::read_to_string(p).expect("read pid file")
    }

    #[test]
    fn pidfile_written_where_asked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("t.pid");
        let got = write_pidfile_with_fallbacks(&p, &[]);
        assert_eq!(got.as_deref(), Some(p.as_path()));
        assert_eq!(read_pid(&p), format!("{}\n", std::process::id()));
        remove_pidfile(&p);
        assert!(!p.exists());
        remove_pidfile(&p); // second removal is harmless
    }

    #[test]
    fn pidfile_falls_back_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bad = tmp.path().join("no/such/dir/t.pid");
        let missing = tmp.path().join("missing/turnserver.pid");
        let good = tmp.path().join("turnserver.pid");
        let later = tmp.path().join("later.pid");
        let got = write_pidfile_with_fallbacks(&bad, &[missing, good.clone(), later.clone()]);
        assert_eq!(got.as_deref(), Some(good.as_path()));
        assert!(good.exists() && !later.exists());
        remove_pidfile(&good);
    }

    #[test]
    fn pidfile_all_fail_and_disabled() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bad = tmp.path().join("no/t.pid");
        assert_eq!(
            write_pidfile_with_fallbacks(&bad, &[tmp.path().join("x/y.pid")]),
            None
        );
        assert_eq!(write_pidfile(None), None);
    }

    #[test]
    fn nofile_limit_not_lowered() {
        let before = rlim_u64(get_nofile().expect("getrlimit").rlim_cur);
        let after = raise_nofile_limit();
        assert!(after >= before, "{after} < {before}");
        assert_eq!(after, rlim_u64(get_nofile().expect("getrlimit").rlim_cur));
    }

    #[test]
    fn unknown_names_are_errors() {
        let e =
            drop_privileges(Some("no-such-user-turnserver-rs"), None).expect_err("unknown user");
        assert_eq!(
            e.to_string(),
            "Unknown user name: no-such-user-turnserver-rs"
        );
        let e =
            drop_privileges(None, Some("no-such-group-turnserver-rs")).expect_err("unknown group");
        assert_eq!(
            e.to_string(),
            "Unknown group name: no-such-group-turnserver-rs"
        );
        drop_privileges(None, None).expect("nothing to do");
    }

    #[test]
    fn lookups() {
        let root = lookup_user("root").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_user("0").map(|u| u.name), Some("root".to_string()));
        assert_eq!(lookup_group("12345"), Some(12345));
        assert!(lookup_group("root").is_some() || lookup_group("wheel").is_some());
    }

    #[test]
    fn drop_to_self_is_noop_success() {
        // Switching to the ids we already have is allowed for any user.
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        if uid == 0 {
            // As root this would really change groups of the test process.
            return;
        }
        drop_privileges(Some(&uid.to_string()), Some(&gid.to_string())).expect("drop to self");
    }
}
