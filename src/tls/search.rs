//! Finding `--cert`, `--pkey`, `--CA-file` and `--dh-file` the way coturn
//! finds them: through the same directories as the config file.

use std::path::{Path, PathBuf};

use crate::config::file::search_candidates;

/// coturn's certificate file name when `--cert` is absent.
pub const DEFAULT_CERT: &str = "turn_server_cert.pem";
/// coturn's private key file name when `--pkey` is absent.
pub const DEFAULT_PKEY: &str = "turn_server_pkey.pem";

/// The directory of the running executable; coturn also tries the system
/// directories (`etc/`, ...) below it.
fn exec_dir() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

/// Resolve a file name through the config-file search path: absolute and `~`
/// names as given, otherwise `./`, `./turnserver/`, `./coturn/`, `./etc/`,
/// `./etc/turnserver/`, `./etc/coturn/`, `../etc/` (+ subdirs) relative to
/// `cwd`, then `/etc/`, `/etc/turnserver/`, `/etc/coturn/`, `/usr/local/etc/`
/// (+ subdirs), each also below the executable's directory. Returns the first
/// existing regular file.
pub fn resolve_path(name: &Path, cwd: &Path) -> Option<PathBuf> {
    resolve_path_in(name, cwd, exec_dir().as_deref())
}

/// [`resolve_path`] with an explicit executable directory (for tests).
pub fn resolve_path_in(name: &Path, cwd: &Path, exec_dir: Option<&Path>) -> Option<PathBuf> {
    match name.to_str() {
        Some(s) => search_candidates(s, cwd, exec_dir).into_iter().find(|p| p.is_file()),
        // A name that is not UTF-8 cannot be one of coturn's; take it literally.
        None => {
            let p = if name.is_absolute() { name.to_path_buf() } else { cwd.join(name) };
            p.is_file().then_some(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let base = dir.path().join("work");
        std::fs::create_dir_all(base.join("etc/coturn"))?;
        std::fs::create_dir_all(dir.path().join("etc/turnserver"))?;
        let name = "tls-search-test-cert-7f3a.pem";
        assert_eq!(resolve_path_in(Path::new(name), &base, None), None);
        std::fs::write(dir.path().join("etc/turnserver").join(name), "x")?;
        let found = resolve_path_in(Path::new(name), &base, None);
        assert_eq!(found, Some(base.join("../etc/turnserver/").join(name)));
        // A closer directory wins.
        std::fs::write(base.join("etc/coturn").join(name), "x")?;
        assert_eq!(resolve_path_in(Path::new(name), &base, None), Some(base.join("./etc/coturn/").join(name)));
        std::fs::write(base.join(name), "x")?;
        assert_eq!(resolve_path(Path::new(name), &base), Some(base.join("./").join(name)));
        // Absolute names are used as they are.
        let abs = base.join(name);
        assert_eq!(resolve_path(&abs, Path::new("/nonexistent")), Some(abs));
        // Directories do not count.
        assert_eq!(resolve_path_in(Path::new("etc"), &base, None), None);
        Ok(())
    }
}
