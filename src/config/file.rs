//! `turnserver.conf`: locating the file and splitting its lines.
//!
//! A line is `key`, `key=value`, `key value` or `key = value`: the key ends at
//! the first space, tab or `=`, and the whole run of those characters is the
//! separator. Only whole lines starting with `#` are comments. A value that
//! starts with `"` loses that quote and one trailing `"`.

use std::path::{Path, PathBuf};

/// Directories searched for a relative config file name, in order.
pub const SEARCH_DIRS: &[&str] = &[
    "./",
    "./turnserver/",
    "./coturn/",
    "./etc/",
    "./etc/turnserver/",
    "./etc/coturn/",
    "../etc/",
    "../etc/turnserver/",
    "../etc/coturn/",
    "/etc/",
    "/etc/turnserver/",
    "/etc/coturn/",
    "/usr/local/etc/",
    "/usr/local/etc/turnserver/",
    "/usr/local/etc/coturn/",
];

/// One meaningful line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// The line without leading blanks and trailing whitespace.
    pub text: String,
    pub key: String,
    /// Always present (a bare key has an empty value, as in coturn).
    pub value: String,
}

/// Split one raw line. `None` for blank lines and comments.
pub fn split_line(raw: &str) -> Option<(String, String, String)> {
    let text = raw.trim_start_matches([' ', '\t']).trim_end();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let is_sep = |c: char| c == ' ' || c == '\t' || c == '=';
    let (key, rest) = match text.find(is_sep) {
        Some(i) => (&text[..i], text[i..].trim_start_matches(is_sep)),
        None => (text, ""),
    };
    let value = match rest.strip_prefix('"') {
        Some(inner) => {
            let inner = inner.trim_end();
            inner.strip_suffix('"').unwrap_or(inner)
        }
        None => rest,
    };
    Some((text.to_string(), key.to_string(), value.to_string()))
}

/// Split a whole file's contents into meaningful lines.
pub fn parse_contents(contents: &str) -> Vec<Line> {
    contents
        .lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            split_line(raw).map(|(text, key, value)| Line { number: i + 1, text, key, value })
        })
        .collect()
}

/// Every path tried for `name`, in order: absolute (or `~`) names as given;
/// otherwise each search directory relative to `cwd`, and the non-relative
/// ones (`/etc/`...) also under the executable's directory.
pub fn search_candidates(name: &str, cwd: &Path, exec_dir: Option<&Path>) -> Vec<PathBuf> {
    if name.starts_with('/') {
        return vec![PathBuf::from(name)];
    }
    if let Some(rest) = name.strip_prefix('~') {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
        return match (home, rest.strip_prefix('/')) {
            (Some(h), Some(tail)) => vec![PathBuf::from(h).join(tail)],
            (Some(h), None) if rest.is_empty() => vec![PathBuf::from(h)],
            _ => vec![PathBuf::from(name)],
        };
    }
    let mut out = Vec::new();
    for dir in SEARCH_DIRS {
        if dir.starts_with('.') {
            out.push(cwd.join(dir).join(name));
        } else {
            out.push(Path::new(dir).join(name));
            if let Some(ed) = exec_dir {
                out.push(ed.join(dir.trim_start_matches('/')).join(name));
            }
        }
    }
    out
}

/// The first candidate that is an existing regular file.
pub fn find_config_file(name: &str, cwd: &Path, exec_dir: Option<&Path>) -> Option<PathBuf> {
    search_candidates(name, cwd, exec_dir).into_iter().find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(raw: &str) -> Option<(String, String)> {
        split_line(raw).map(|(_, k, v)| (k, v))
    }

    fn kv(k: &str, v: &str) -> Option<(String, String)> {
        Some((k.to_string(), v.to_string()))
    }

    #[test]
    fn separators() {
        assert_eq!(s("listening-port=3478"), kv("listening-port", "3478"));
        assert_eq!(s("listening-port 3478"), kv("listening-port", "3478"));
        assert_eq!(s("listening-port = 3478"), kv("listening-port", "3478"));
        assert_eq!(s("listening-port\t=\t3478"), kv("listening-port", "3478"));
        assert_eq!(s("listening-port==3478"), kv("listening-port", "3478"));
        assert_eq!(s("user=bob:pa=ss"), kv("user", "bob:pa=ss"));
        assert_eq!(s("user bob:pa ss"), kv("user", "bob:pa ss"));
    }

    #[test]
    fn bare_keys_and_blanks() {
        assert_eq!(s("fingerprint"), kv("fingerprint", ""));
        assert_eq!(s("   fingerprint   "), kv("fingerprint", ""));
        assert_eq!(s("\tverbose\r"), kv("verbose", ""));
        assert_eq!(s("pidfile="), kv("pidfile", ""));
        assert_eq!(s(""), None);
        assert_eq!(s("   \t "), None);
    }

    #[test]
    fn comments_only_whole_lines() {
        assert_eq!(s("# a comment"), None);
        assert_eq!(s("   #listening-port=1"), None);
        assert_eq!(s("realm=example.org # not a comment"), kv("realm", "example.org # not a comment"));
        assert_eq!(s("cli-password=$5$ab#cd"), kv("cli-password", "$5$ab#cd"));
    }

    #[test]
    fn quotes() {
        assert_eq!(s("pidfile=\"/var/tmp/turnserver.pid\""), kv("pidfile", "/var/tmp/turnserver.pid"));
        assert_eq!(s("realm=\"example.org\"   "), kv("realm", "example.org"));
        assert_eq!(s("realm=\"example.org"), kv("realm", "example.org"));
        assert_eq!(s("realm=\"\"x\"\""), kv("realm", "\"x\""));
        assert_eq!(s("realm='example.org'"), kv("realm", "'example.org'"));
        assert_eq!(s("realm=exa\"mple\""), kv("realm", "exa\"mple\""));
    }

    #[test]
    fn text_is_trimmed_line() {
        let (text, _, _) = split_line("  realm=x;  \n").unwrap_or_default();
        assert_eq!(text, "realm=x;");
    }

    #[test]
    fn line_numbers() {
        let lines = parse_contents("# c\n\nsyslog\nrealm=x\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].number, 3);
        assert_eq!(lines[1].key, "realm");
    }

    #[test]
    fn candidates_order() {
        let c = search_candidates("turnserver.conf", Path::new("/base"), Some(Path::new("/opt/bin")));
        let c: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(c[0], "/base/./turnserver.conf");
        assert_eq!(c[1], "/base/./turnserver/turnserver.conf");
        assert_eq!(c[2], "/base/./coturn/turnserver.conf");
        assert_eq!(c[3], "/base/./etc/turnserver.conf");
        assert_eq!(c[6], "/base/../etc/turnserver.conf");
        assert_eq!(c[9], "/etc/turnserver.conf");
        assert_eq!(c[10], "/opt/bin/etc/turnserver.conf");
        assert_eq!(c[11], "/etc/turnserver/turnserver.conf");
        assert!(c.contains(&"/usr/local/etc/coturn/turnserver.conf".to_string()));
        assert_eq!(
            search_candidates("/x/y.conf", Path::new("/base"), None),
            vec![PathBuf::from("/x/y.conf")]
        );
    }

    #[test]
    fn find_in_subdirs() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let base = dir.path().join("work");
        std::fs::create_dir_all(base.join("etc/coturn"))?;
        std::fs::create_dir_all(dir.path().join("etc/turnserver"))?;
        std::fs::write(base.join("etc/coturn/a.conf"), "syslog\n")?;
        std::fs::write(dir.path().join("etc/turnserver/b.conf"), "syslog\n")?;
        let a = find_config_file("a.conf", &base, None);
        assert_eq!(a, Some(base.join("./etc/coturn/").join("a.conf")));
        let b = find_config_file("b.conf", &base, None);
        assert_eq!(b, Some(base.join("../etc/turnserver/").join("b.conf")));
        assert_eq!(find_config_file("nope-xyz-123.conf", &base, None), None);
        // Relative name with a sub directory.
        assert!(find_config_file("etc/coturn/a.conf", &base, None).is_some());
        Ok(())
    }
}
