//! getopt_long-like splitting of argv into option occurrences.
//!
//! - `--name=value`; `--name value` only for options that require a value;
//!   optional values only with `=` (`--stale-nonce` alone = default).
//! - unique prefixes of long names are accepted (`--listening-po=1`).
//! - short options: `-p 3478`, `-p3478`, bundled flags `-vf`; `-p=3478`
//!   warns (as coturn does) and the `=` is dropped.
//! - `--` ends the options; other non-option words are reported, not fatal.

use super::options::{self, ArgKind, LongMatch, OptSpec};

/// One option found on the command line.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub spec: &'static OptSpec,
    /// `None` when no value was attached (flags, bare optional options).
    pub value: Option<String>,
}

/// The command line, split.
#[derive(Debug, Default)]
pub struct Parsed {
    pub occurrences: Vec<Occurrence>,
    pub warnings: Vec<String>,
}

/// Split `args` (argv without argv\[0\]); `prog` names the program in errors.
/// An `Err` is getopt's complaint (unknown option, missing value, ...).
pub fn tokenize(prog: &str, args: &[String]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            for rest in &args[i..] {
                out.warnings.push(format!("CONFIG: Unknown argument: {rest}"));
            }
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let spec = match options::by_cli_long(name) {
                LongMatch::Found(s) => s,
                LongMatch::Ambiguous(c) => {
                    let list: Vec<String> = c.iter().map(|n| format!("'--{n}'")).collect();
                    return Err(format!(
                        "{prog}: option '--{name}' is ambiguous; possibilities: {}",
                        list.join(" ")
                    ));
                }
                LongMatch::Unknown => return Err(format!("{prog}: unrecognized option '--{name}'")),
            };
            let value = match spec.arg {
                ArgKind::None => {
                    if attached.is_some() {
                        return Err(format!("{prog}: option '--{}' doesn't allow an argument", spec.long));
                    }
                    None
                }
                ArgKind::Required => match attached {
                    Some(v) => Some(v),
                    None => {
                        let Some(next) = args.get(i) else {
                            return Err(format!("{prog}: option '--{}' requires an argument", spec.long));
                        };
                        i += 1;
                        Some(next.clone())
                    }
                },
                ArgKind::OptionalBool | ArgKind::OptionalValue | ArgKind::OptionalIgnored => attached,
            };
            out.occurrences.push(Occurrence { spec, value });
            continue;
        }
        if arg.len() > 1 && arg.starts_with('-') {
            let chars: Vec<char> = arg[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some(spec) = options::by_short(c) else {
                    return Err(format!("{prog}: invalid option -- '{c}'"));
                };
                if !spec.short_takes_value() {
                    out.occurrences.push(Occurrence { spec, value: None });
                    continue;
                }
                let mut value: String = if j < chars.len() {
                    let v: String = chars[j..].iter().collect();
                    j = chars.len();
                    v
                } else {
                    let Some(next) = args.get(i) else {
                        return Err(format!("{prog}: option requires an argument -- '{c}'"));
                    };
                    i += 1;
                    next.clone()
                };
                if let Some(stripped) = value.strip_prefix('=') {
                    out.warnings.push(format!(
                        "WARNING: option -{c} is possibly used incorrectly. The short form of the option \
                         must be used as this: -{c} <value>, no 'equals' sign may be used, that sign is \
                         used only with long form options (like --user=<username>)."
                    ));
                    value = stripped.to_string();
                }
                out.occurrences.push(Occurrence { spec, value: Some(value) });
            }
            continue;
        }
        out.warnings.push(format!("CONFIG: Unknown argument: {arg}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(args: &[&str]) -> Result<Vec<(String, Option<String>)>, String> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokenize("turnserver", &v)
            .map(|p| p.occurrences.into_iter().map(|o| (o.spec.long.to_string(), o.value)).collect())
    }

    fn one(name: &str, v: Option<&str>) -> (String, Option<String>) {
        (name.to_string(), v.map(str::to_string))
    }

    #[test]
    fn long_forms() {
        assert_eq!(t(&["--listening-port=1"]), Ok(vec![one("listening-port", Some("1"))]));
        assert_eq!(t(&["--listening-port", "1"]), Ok(vec![one("listening-port", Some("1"))]));
        assert_eq!(t(&["--realm", "-x"]), Ok(vec![one("realm", Some("-x"))]));
        assert_eq!(t(&["--pidfile="]), Ok(vec![one("pidfile", Some(""))]));
    }

    #[test]
    fn optional_values_only_with_equals() {
        let r = t(&["--stale-nonce", "--fingerprint=false"]);
        assert_eq!(r, Ok(vec![one("stale-nonce", None), one("fingerprint", Some("false"))]));
        let v: Vec<String> = ["--stale-nonce", "300"].iter().map(|s| s.to_string()).collect();
        let p = tokenize("turnserver", &v).map_err(|e| e.to_string());
        assert!(p.is_ok_and(|p| p.occurrences.len() == 1 && p.warnings.len() == 1));
    }

    #[test]
    fn short_forms() {
        assert_eq!(t(&["-p", "3478"]), Ok(vec![one("listening-port", Some("3478"))]));
        assert_eq!(t(&["-p3478"]), Ok(vec![one("listening-port", Some("3478"))]));
        assert_eq!(
            t(&["-vf"]),
            Ok(vec![one("verbose", None), one("fingerprint", None)])
        );
        assert_eq!(
            t(&["-vm4"]),
            Ok(vec![one("verbose", None), one("relay-threads", Some("4"))])
        );
        assert_eq!(t(&["-K", "1"]), Ok(vec![one("keep-address-family", Some("1"))]));
        assert_eq!(t(&["-b", "x.db"]), Ok(vec![one("userdb", Some("x.db"))]));
    }

    #[test]
    fn short_with_equals_warns() {
        let v: Vec<String> = ["-p=3478"].iter().map(|s| s.to_string()).collect();
        let p = tokenize("turnserver", &v);
        assert!(p.as_ref().is_ok_and(|p| p.warnings.len() == 1
            && p.occurrences[0].value.as_deref() == Some("3478")));
    }

    #[test]
    fn errors() {
        assert_eq!(t(&["--bogus"]), Err("turnserver: unrecognized option '--bogus'".into()));
        assert_eq!(t(&["-Y"]), Err("turnserver: invalid option -- 'Y'".into()));
        assert_eq!(t(&["-p"]), Err("turnserver: option requires an argument -- 'p'".into()));
        assert_eq!(t(&["-K"]), Err("turnserver: option requires an argument -- 'K'".into()));
        assert_eq!(t(&["--realm"]), Err("turnserver: option '--realm' requires an argument".into()));
        assert!(t(&["--no"]).is_err_and(|e| e.contains("ambiguous")));
        assert!(t(&["--no-tlsv1"]).is_err());
        assert!(t(&["--no-tlsv1_1"]).is_err());
    }

    #[test]
    fn double_dash_ends_options() {
        let v: Vec<String> = ["-v", "--", "-f"].iter().map(|s| s.to_string()).collect();
        let p = tokenize("turnserver", &v);
        assert!(p.is_ok_and(|p| p.occurrences.len() == 1 && p.warnings.len() == 1));
    }
}
