//! The coturn-compatible configuration parser: `turnserver.conf` contents and
//! a command line, both from the input. Every outcome (a configuration, text
//! to print, an error) is fine; a panic or a hang is not.
//!
//! Input: the file contents, then optionally a NUL byte followed by the
//! command-line arguments separated by NUL bytes.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use turnserver::config::file::{parse_contents, split_line};
use turnserver::config::{parse_args_in, Command};

/// One config file per fuzzing process, rewritten for each input.
fn conf_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("turnserver-fuzz-{}.conf", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let (file, args) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };

    let text = String::from_utf8_lossy(file);
    for line in parse_contents(&text) {
        // The key may be empty ("=value"): the parser then warns about a bad line.
        assert!(!line.key.contains([' ', '\t', '=']), "the key ends at the first separator");
        assert_eq!(split_line(&line.text).map(|(_, k, v)| (k, v)), Some((line.key.clone(), line.value.clone())));
    }

    let path = conf_path();
    if std::fs::write(path, file).is_err() {
        return;
    }
    let mut argv = vec!["turnserver".to_string(), "-c".to_string(), path.to_string_lossy().into_owned()];
    // `-c` from the input could name any file (/dev/zero...): the parser
    // reads only ours. Everything else goes through as given.
    argv.extend(
        args.split(|&b| b == 0)
            .filter(|a| !args.is_empty() && !(a.starts_with(b"-c") && !a.starts_with(b"--")))
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );
    let dir = std::env::temp_dir();
    match parse_args_in(&argv, &dir, None) {
        Ok(Command::Run(cfg)) => {
            // What the daemon does next with a configuration must not panic either.
            let _ = turnserver::daemon::core_config(&cfg);
        }
        Ok(Command::Print(_)) | Err(_) => {}
    }
});
