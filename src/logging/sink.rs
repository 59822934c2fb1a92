//! The log file: coturn's naming (`<stem>_<YYYY-MM-DD>.log`, or
//! `turn_<pid>_<date>.log` in the first writable default directory), daily
//! rollover at local midnight, and reopen-on-SIGHUP for logrotate.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::NaiveDate;

/// Directories tried, in order, for the automatic log file (coturn's list;
/// the empty path stands for the current directory).
pub fn default_auto_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from("/var/log/turnserver"),
        PathBuf::from("/var/log"),
        PathBuf::from("/var/tmp"),
        PathBuf::from("/tmp"),
        PathBuf::new(),
    ]
}

/// How the file name is derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNaming {
    /// `--simple-log`: the exact path, never renamed (logrotate does that).
    Exact(PathBuf),
    /// The path as given; the date is inserted and changes at local midnight.
    Daily(PathBuf),
}

impl FileNaming {
    /// The file to write to on `date`.
    pub fn path_for(&self, date: NaiveDate) -> PathBuf {
        match self {
            FileNaming::Exact(p) => p.clone(),
            FileNaming::Daily(base) => dated_path(base, date),
        }
    }
}

/// coturn's dated name: the extension (default `.log`) moves after the date,
/// and `_` joins stem and date unless the stem already ends in `_`, `-` or a
/// directory separator. `x.log` → `x_2026-11-24.log`, `x` → `x_2026-11-24.log`,
/// `/var/log/turn_42_` → `/var/log/turn_42_2026-11-24.log`.
pub fn dated_path(base: &Path, date: NaiveDate) -> PathBuf {
    let date = date.format("%Y-%m-%d").to_string();
    let Some(raw) = base.to_str() else {
        // Non-UTF-8 path: keep the original bytes and just append, rather
        // than mangle them through a lossy conversion.
        let mut s: OsString = base.as_os_str().to_owned();
        s.push(format!("_{date}.log"));
        return PathBuf::from(s);
    };
    // Only a dot in the last component starts an extension; a lone dot
    // (`x.`) is not one, as in coturn.
    let last_sep = raw.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (stem, ext) = match raw[last_sep..].rfind('.') {
        Some(i) if raw.len() - (last_sep + i) >= 2 => (&raw[..last_sep + i], &raw[last_sep + i..]),
        Some(i) => (&raw[..last_sep + i], ".log"),
        None => (raw, ".log"),
    };
    let joiner = match stem.chars().last() {
        None | Some('/') | Some('_') | Some('-') => "",
        Some(_) => "_",
    };
    PathBuf::from(format!("{stem}{joiner}{date}{ext}"))
}

/// Find the automatic log file: `turn_<pid>_<date>.log` in the first of
/// `dirs` where it can be opened for appending. Returns the naming (so later
/// rollovers stay in that directory), the path and the open file.
pub fn open_auto(
    dirs: &[PathBuf],
    pid: u32,
    date: NaiveDate,
) -> io::Result<(FileNaming, PathBuf, File)> {
    let mut last_err = io::Error::new(io::ErrorKind::NotFound, "no log directory candidates");
    for dir in dirs {
        let naming = FileNaming::Daily(dir.join(format!("turn_{pid}_")));
        let path = naming.path_for(date);
        match open_append(&path) {
            Ok(f) => return Ok((naming, path, f)),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[derive(Debug)]
struct State {
    naming: FileNaming,
    path: PathBuf,
    date: NaiveDate,
    out: BufWriter<File>,
}

/// A log file shared by all threads. Each line is written and flushed under
/// the lock, so lines never interleave and `tail -f` sees them at once;
/// logging is off the relay fast path, so the lock and syscall are fine.
#[derive(Debug)]
pub struct LogSink {
    state: Mutex<State>,
}

impl LogSink {
    /// Open (append, create) the file for `date` under `naming`.
    pub fn open(naming: FileNaming, date: NaiveDate) -> io::Result<Self> {
        let path = naming.path_for(date);
        let file = open_append(&path)?;
        Ok(Self::from_parts(naming, path, date, file))
    }

    /// Wrap an already opened file (from [`open_auto`]).
    pub fn from_parts(naming: FileNaming, path: PathBuf, date: NaiveDate, file: File) -> Self {
        LogSink {
            state: Mutex::new(State {
                naming,
                path,
                date,
                out: BufWriter::new(file),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves at worst a partial line; keep
        // logging rather than propagate the poison.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write one formatted line (with its `\n`) and flush. `today` is the
    /// local date of the record: when it differs from the open file's date a
    /// daily-named file rolls over to the new name first.
    pub fn write_line(&self, line: &str, today: NaiveDate) -> io::Result<()> {
        let mut st = self.lock();
        if st.date != today {
            st.date = today;
            if matches!(st.naming, FileNaming::Daily(_)) {
                // If the new file cannot be opened, keep writing to the old
                // one: a misnamed line beats a lost one.
                let _ = reopen_locked(&mut st);
            }
        }
        st.out.write_all(line.as_bytes())?;
        st.out.flush()
    }

    /// Close and reopen the current file by name (SIGHUP after logrotate
    /// moved it away). On failure the old file stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        let mut st = self.lock();
        reopen_locked(&mut st)
    }

    /// The path of the file currently written.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }
}

fn reopen_locked(st: &mut State) -> io::Result<()> {
    let _ = st.out.flush();
    let path = st.naming.path_for(st.date);
    let file = open_append(&path)?;
    st.out = BufWriter::new(file);
    st.path = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn dated_names() {
        let date = d(2026, 11, 24);
        assert_eq!(
            dated_path(Path::new("x.log"), date),
            PathBuf::from("x_2026-11-24.log")
        );
        assert_eq!(
            dated_path(Path::new("x"), date),
            PathBuf::from("x_2026-11-24.log")
        );
        assert_eq!(
            dated_path(Path::new("/a/b.c/x.txt"), date),
            PathBuf::from("/a/b.c/x_2026-11-24.txt")
        );
        assert_eq!(
            dated_path(Path::new("/a/b.c/x"), date),
            PathBuf::from("/a/b.c/x_2026-11-24.log")
        );
        assert_eq!(
            dated_path(Path::new("x."), date),
            PathBuf::from("x_2026-11-24.log")
        );
        assert_eq!(
            dated_path(Path::new("/var/log/turn_42_"), date),
            PathBuf::from("/var/log/turn_42_2026-11-24.log")
        );
        assert_eq!(
            dated_path(Path::new("logs/"), date),
            PathBuf::from("logs/2026-11-24.log")
        );
        assert_eq!(
            dated_path(Path::new("turn-"), date),
            PathBuf::from("turn-2026-11-24.log")
        );
    }

    #[test]
    fn simple_log_keeps_exact_path() {
        let n = FileNaming::Exact(PathBuf::from("/var/log/x.log"));
        assert_eq!(n.path_for(d(2026, 11, 24)), PathBuf::from("/var/log/x.log"));
    }

    #[test]
    fn auto_dir_fallback_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("does-not-exist");
        // A regular file where a directory is expected fails even for root.
        let not_a_dir = tmp.path().join("file");
        std::fs::write(&not_a_dir, b"").expect("write");
        let good = tmp.path().join("good");
        let later = tmp.path().join("later");
        std::fs::create_dir(&good).expect("mkdir");
        std::fs::create_dir(&later).expect("mkdir");
        let dirs = vec![missing, not_a_dir, good.clone(), later];
        let (naming, path, _f) = open_auto(&dirs, 4242, d(2026, 11, 24)).expect("open");
        assert_eq!(path, good.join("turn_4242_2026-11-24.log"));
        assert_eq!(naming, FileNaming::Daily(good.join("turn_4242_")));
        assert!(path.exists());

        let err = open_auto(&dirs[..2], 1, d(2026, 11, 24));
        assert!(err.is_err());
    }

    #[test]
    fn write_flushes_each_line_and_rolls_over() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().join("x.log");
        let sink = LogSink::open(FileNaming::Daily(base), d(2026, 11, 24)).expect("open");
        let first = tmp.path().join("x_2026-11-24.log");
        assert_eq!(sink.path(), first);
        sink.write_line("one\n", d(2026, 11, 24)).expect("write");
        assert_eq!(std::fs::read_to_string(&first).expect("read"), "one\n");
        sink.write_line("two\n", d(2026, 11, 25)).expect("write");
        let second = tmp.path().join("x_2026-11-25.log");
        assert_eq!(sink.path(), second);
        assert_eq!(std::fs::read_to_string(&second).expect("read"), "two\n");
        assert_eq!(std::fs::read_to_string(&first).expect("read"), "one\n");
    }

    #[test]
    fn exact_file_does_not_roll_over() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("turn.log");
        let sink = LogSink::open(FileNaming::Exact(p.clone()), d(2026, 11, 24)).expect("open");
        sink.write_line("a\n", d(2026, 11, 24)).expect("write");
        sink.write_line("b\n", d(2026, 11, 25)).expect("write");
        assert_eq!(sink.path(), p);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "a\nb\n");
    }

    #[test]
    fn reopen_after_logrotate_move() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("turn.log");
        let date = d(2026, 11, 24);
        let sink = LogSink::open(FileNaming::Exact(p.clone()), date).expect("open");
        sink.write_line("before\n", date).expect("write");
        let rotated = tmp.path().join("turn.log.1");
        std::fs::rename(&p, &rotated).expect("rename");
        // Without reopen the old (moved) file still receives lines.
        sink.write_line("still old\n", date).expect("write");
        sink.reopen().expect("reopen");
        sink.write_line("after\n", date).expect("write");
        assert_eq!(
            std::fs::read_to_string(&rotated).expect("read"),
            "before\nstill old\n"
        );
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "after\n");
    }

    #[test]
    fn failed_reopen_keeps_old_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("sub");
        std::fs::create_dir(&dir).expect("mkdir");
        let p = dir.join("turn.log");
        let date = d(2026, 11, 24);
        let sink = LogSink::open(FileNaming::Exact(p.clone()), date).expect("open");
        let moved = tmp.path().join("moved");
        std::fs::rename(&dir, &moved).expect("rename dir");
        assert!(sink.reopen().is_err());
        sink.write_line("kept\n", date).expect("write");
        assert_eq!(
            std::fs::read_to_string(moved.join("turn.log")).expect("read"),
            "kept\n"
        );
    }
}
