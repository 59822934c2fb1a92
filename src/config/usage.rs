//! The `-h` text, generated from the option table.

use super::options::{self, ArgKind, OptSpec, Support};

fn left_column(spec: &OptSpec) -> String {
    let mut s = String::from(" ");
    let short_only = options::is_short_only(spec);
    match (spec.short, short_only) {
        (Some(c), true) => s.push_str(&format!("-{c}")),
        (Some(c), false) => s.push_str(&format!("-{c}, --{}", spec.long)),
        (None, _) => s.push_str(&format!("    --{}", spec.long)),
    }
    if !spec.meta.is_empty() {
        match spec.arg {
            ArgKind::OptionalValue => s.push_str(spec.meta),
            _ => {
                s.push(' ');
                s.push_str(spec.meta);
            }
        }
    }
    s
}

/// Usage text: one line per option, in the table's (coturn's) order.
pub fn usage_text() -> String {
    let mut out = String::new();
    out.push_str("Usage: turnserver [options]\n");
    out.push_str("Options (every long option is also a turnserver.conf key, written without the leading --):\n");
    let rows: Vec<(String, &OptSpec)> = options::all()
        .filter(|s| s.cli_long || options::is_short_only(s))
        .map(|s| (left_column(s), s))
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 2;
    for (left, spec) in rows {
        let mut help = spec.help.to_string();
        if spec.support == Support::No {
            help.push_str(" [not supported yet]");
        }
        out.push_str(&format!("{left:<width$}{help}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lists_every_cli_option() {
        let u = usage_text();
        for s in options::all() {
            if s.cli_long {
                assert!(u.contains(&format!("--{} ", s.long)) || u.contains(&format!("--{}[", s.long))
                    || u.contains(&format!("--{}\n", s.long)), "{}", s.long);
            }
        }
        assert!(u.contains(" -c <file>"));
        assert!(u.contains(" -n "));
        assert!(u.contains(" -h "));
        assert!(u.contains("-p, --listening-port <port>"));
        assert!(u.contains("--stale-nonce[=<seconds>]"));
        assert!(!u.contains("--no-tlsv1 "));
    }
}
