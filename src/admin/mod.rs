//! `turnadmin`: coturn's administration tool, same commands, output and exit
//! codes (observed against coturn 4.6.1's `/usr/bin/turnadmin`).
//!
//! The command line is read twice, as coturn does:
//! 1. [`keyfile_pass`] looks only at `-P`, `-E`, `-x`, `-f`, `-v` and `-p`.
//!    These act as soon as they have what they need and end the program,
//!    whatever else is on the line (`-P -p x -Q` prints a hash).
//! 2. [`args::parse`] reads everything strictly: the first grammar error
//!    prints glibc's message and the usage (exit 255); `--help` prints the
//!    usage on stdout (exit 0); then [`commands`] checks what the command
//!    needs, in coturn's order and words, and runs it against the database.
//!
//! Deliberate differences from coturn 4.6.1, each where coturn misbehaves:
//! `-E`/`--verify` without a readable key file fail (exit 255) instead of
//! using uninitialised memory as the key, `-x` into an unwritable place
//! fails instead of crashing, database errors exit 255 instead of 0,
//! `--list-origins` takes no argument, and `-k` prints the key even after
//! `-A`/`-D`/`-L`.

pub mod aeskey;
pub mod args;
pub mod commands;
pub mod hash;
pub mod origin;

use std::io::Write;
use std::path::Path;

use args::{Key, Parsed, Token};

/// Exit status of every failure, as coturn's `exit(-1)`.
pub const EXIT_FAILURE: i32 = 255;

/// Runs turnadmin with `argv` (program name first), writing to the given
/// streams; returns the exit status.
pub fn run(argv: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let prog = argv.first().map(String::as_str).unwrap_or("turnadmin");
    let tokens = args::tokenize(argv.get(1..).unwrap_or_default());
    if let Some(code) = keyfile_pass(&tokens, out, err) {
        return code;
    }
    match args::parse(&tokens) {
        Parsed::Help => {
            let _ = out.write_all(args::USAGE.as_bytes());
            0
        }
        Parsed::Error(e) => {
            let _ = writeln!(err, "{}", e.line(prog));
            usage_error(err)
        }
        Parsed::Run(inv) => commands::execute(&inv, out, err),
    }
}

/// Prints the usage to `err` and returns the failure status.
pub(crate) fn usage_error(err: &mut dyn Write) -> i32 {
    let _ = err.write_all(args::USAGE.as_bytes());
    EXIT_FAILURE
}

/// The first pass: `-x` writes a key file, `-P` with `-p` prints a `$5$`
/// hash, `-E` with `-f` and `-p` prints the encrypted password, `-v` with
/// `-f` prints the decrypted one. Each acts as soon as its last piece
/// arrives, in line order (`-P` before `-E` when both wait for `-p`).
/// Grammar errors and operands are ignored here. `None`: nothing to do,
/// go on to the second pass.
fn keyfile_pass(tokens: &[Token], out: &mut dyn Write, err: &mut dyn Write) -> Option<i32> {
    let mut want_hash = false;
    let mut want_aes = false;
    let mut password: Option<&str> = None;
    let mut key: Option<Result<[u8; aeskey::KEY_LEN], aeskey::KeyFileError>> = None;
    let mut verify: Option<&str> = None;

    for t in tokens {
        let Token::Opt(k, v) = t else { continue };
        let v = v.as_deref().unwrap_or("");
        match k {
            Key::KeyPath => return Some(write_key(Path::new(v), err)),
            Key::GenPassword => want_hash = true,
            Key::GenPasswordAes => want_aes = true,
            Key::Password => password = Some(v),
            Key::FileKeyPath => key = Some(aeskey::read_key_file(Path::new(v))),
            Key::Verify => verify = Some(v),
            _ => continue,
        }
        if let (true, Some(p)) = (want_hash, password) {
            let _ = writeln!(out, "{}", hash::hash_password(p));
            return Some(0);
        }
        if let Some(Ok(k)) = &key {
            if let Some(b64) = verify {
                let plain = aeskey::decrypt_password(k, b64).unwrap_or_default();
                let _ = out.write_all(&plain);
                let _ = out.write_all(b"\n");
                return Some(0);
            }
            if let (true, Some(p)) = (want_aes, password) {
                let _ = writeln!(out, "{}", aeskey::encrypt_password(k, p.as_bytes()));
                return Some(0);
            }
        }
    }

    // Something asked for the key and it is not there.
    if verify.is_some() || (want_aes && password.is_some()) {
        match key {
            Some(Err(e @ aeskey::KeyFileError::Missing(_))) => {
                let _ = writeln!(out, "{e}");
            }
            Some(Err(e)) => {
                let _ = writeln!(err, "{e}");
            }
            _ => {
                let _ = writeln!(
                    err,
                    "The operation cannot be completed: the key file (-f, --file-key-path) must be set."
                );
            }
        }
        return Some(EXIT_FAILURE);
    }
    None
}

fn write_key(path: &Path, err: &mut dyn Write) -> i32 {
    match aeskey::write_key_file(path) {
        Ok(_) => 0,
        Err(e) => {
            let _ = writeln!(
                err,
                "ERROR: cannot write the key file {}: {e}",
                path.display()
            );
            EXIT_FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::*;

    fn run_line(line: &[&str]) -> (i32, String, String) {
        let mut argv = vec!["turnadmin".to_string()];
        argv.extend(line.iter().map(|s| s.to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&argv, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn print_key_vector() {
        let (code, out, err) = run_line(&[
            "-k",
            "-u",
            "ninefingers",
            "-r",
            "north.gov",
            "-p",
            "youhavetoberealistic",
        ]);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "0xbc807ee29df3c9ffa736523fb2c4e8ee\n", "")
        );
        // No realm is allowed for -k: MD5("a::c"), as coturn prints it.
        let (code, out, _) = run_line(&["-k", "-u", "a", "-p", "c"]);
        assert_eq!(
            (code, out.as_str()),
            (0, "0xa0203ab238a30b95f6c1becc9ecedad9\n")
        );
    }

    /// Non-ASCII credentials go through RFC 4013 SASLprep (the crate's
    /// `long_term_key`). coturn 4.6.1 instead edits bytes (drops 0xAD, turns
    /// 0xA0 into a space, refuses 0x80-0x9F), which breaks UTF-8: it prints
    /// MD5("\xC3 :r:p") for `à` and refuses `€` or `ā` as "Wrong user name".
    #[test]
    fn print_key_uses_saslprep() {
        let (code, out, _) = run_line(&["-k", "-u", "à", "-r", "r", "-p", "p"]);
        assert_eq!(
            (code, out.as_str()),
            (0, "0xe4750f068a1b3867a2a19306f8161e64\n")
        );
        let soft_hyphen = run_line(&["-k", "-u", "I\u{AD}X", "-r", "r", "-p", "p"]);
        assert_eq!(
            soft_hyphen,
            run_line(&["-k", "-u", "IX", "-r", "r", "-p", "p"])
        );
    }

    #[test]
    fn missing_pieces_are_reported_in_coturns_order() {
        let must =
            |what: &str| format!("The operation cannot be completed: the {what} must be set.\n");
        assert_eq!(run_line(&["-k"]), (255, String::new(), must("user")));
        assert_eq!(
            run_line(&["-k", "-r", "r", "-p", "x"]),
            (255, String::new(), must("user"))
        );
        assert_eq!(
            run_line(&["-k", "-u", "a", "-r", "b"]),
            (255, String::new(), must("password"))
        );
        assert_eq!(
            run_line(&["-k", "-u", "", "-p", "x"]),
            (255, String::new(), must("user"))
        );
    }

    #[test]
    fn usage_cases() {
        let (code, out, err) = run_line(&[]);
        assert_eq!((code, out.as_str()), (255, ""));
        assert_eq!(err, args::USAGE);
        let (code, out, err) = run_line(&["--help"]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, args::USAGE, ""));
        let (code, _, err) = run_line(&["-u", "a", "-r", "b", "-p", "c"]);
        assert_eq!((code, err.as_str()), (255, args::USAGE));
        let (code, _, err) = run_line(&["-k", "-u", "a", "-p", "c", "extra"]);
        assert_eq!((code, err.as_str()), (255, args::USAGE));
        let (code, _, err) = run_line(&["-H"]);
        assert_eq!((code, err.as_str()), (255, args::USAGE));
        let (code, _, err) = run_line(&["-P"]);
        assert_eq!((code, err.as_str()), (255, args::USAGE));
        let (code, _, err) = run_line(&["-Q"]);
        assert_eq!(code, 255);
        assert_eq!(
            err,
            format!("turnadmin: invalid option -- 'Q'\n{}", args::USAGE)
        );
    }

    #[test]
    fn password_hash_pass() {
        for line in [
            &["-P", "-p", "qwerty"][..],
            &["-p", "qwerty", "-P"],
            &["-P", "-p", "qwerty", "-Q"],
            &["-E", "-P", "-p", "qwerty"],
            &["-k", "-P", "-u", "a", "-p", "qwerty"],
        ] {
            let (code, out, err) = run_line(line);
            assert_eq!((code, err.as_str()), (0, ""), "{line:?}");
            let h = out.strip_suffix('\n').unwrap();
            assert!(hash::verify_password(h, "qwerty"), "{line:?}: {h}");
        }
        // An empty password is still a password for -P.
        let (code, out, _) = run_line(&["-P", "-p", ""]);
        assert_eq!(code, 0);
        assert!(hash::verify_password(out.trim_end(), ""));
    }

    #[test]
    fn aes_pass() {
        let dir = tempfile::tempdir().unwrap();
        let kp = dir.path().join("key");
        let kp = kp.to_str().unwrap();
        // -x alone writes a key, whatever else is on the line.
        assert_eq!(
            run_line(&["-x", kp, "-l", "-b", "/nonexistent/db"]),
            (0, String::new(), String::new())
        );
        let key = aeskey::read_key_file(Path::new(kp)).unwrap();
        let (code, out, _) = run_line(&["-E", "-f", kp, "-p", "mypass"]);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            format!("{}\n", aeskey::encrypt_password(&key, b"mypass"))
        );
        // Order of -f and -p does not matter here (coturn's output depends on it).
        assert_eq!(run_line(&["-E", "-p", "mypass", "-f", kp]).1, out);
        let enc = out.trim_end().to_string();
        for line in [&["--verify", &enc, "-f", kp][..], &["-f", kp, "-v", &enc]] {
            assert_eq!(run_line(line), (0, "mypass\n".to_string(), String::new()));
        }
        // Not base64: an empty line, as coturn.
        assert_eq!(
            run_line(&["-f", kp, "-v", "!!!"]),
            (0, "\n".to_string(), String::new())
        );
    }

    #[test]
    fn aes_without_usable_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        let missing = missing.to_str().unwrap();
        let (code, out, _) = run_line(&["-E", "-f", missing, "-p", "x"]);
        assert_eq!((code, out), (255, format!("No such file like {missing}\n")));
        let (code, _, err) = run_line(&["-E", "-p", "x"]);
        assert_eq!(code, 255);
        assert!(err.contains("key file"), "{err}");
        let short = dir.path().join("short");
        std::fs::write(&short, b"abc\n").unwrap();
        let (code, _, err) = run_line(&["-v", "Zm9v", "-f", short.to_str().unwrap()]);
        assert_eq!(
            (code, err.as_str()),
            (255, "ERROR: Secret-Key length is not enough\n")
        );
        // -E without -p is not a command: usage.
        let (code, _, err) = run_line(&["-E", "-f", missing]);
        assert_eq!((code, err.as_str()), (255, args::USAGE));
        // -x into a missing directory fails cleanly.
        let bad = dir.path().join("no/such/dir/key");
        let (code, _, err) = run_line(&["-x", bad.to_str().unwrap()]);
        assert_eq!(code, 255);
        assert!(err.starts_with("ERROR: cannot write the key file"), "{err}");
    }
}
