//! What an operator typed, as coturn's CLI reads it: the command word, then
//! its argument (the rest of the line, leading blanks removed). Parsing is
//! separate from running so the grammar can be tested without a server.

use crate::mgmt::runtime::AltList;

/// One command line of an authenticated session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Blank line: just the prompt again.
    Empty,
    Help,
    Quit,
    Stop,
    Drain,
    PrintConfig,
    /// `sr <realm>` / `ur`.
    SetRealm(Option<String>),
    /// `so <origin>` / `uo`.
    SetOrigin(Option<String>),
    /// `tc <name>` (the name may be empty: coturn then lists the toggles).
    Toggle(String),
    /// `cc <name> <value>`; `value` is "" when missing.
    Change { name: String, value: String },
    /// `ps [user]` (exact match, "" = all) and `psp <substr>`.
    Sessions { user: String, exact: bool },
    /// `pu [udp|tcp|dtls|tls]` ("" = every transport).
    Users(String),
    /// `cs <session-id>`.
    Cancel(String),
    LogReset,
    /// `aas`/`atas`/`atcpas`/`audpas` (add) and their `d` twins (delete).
    Alternate { add: bool, list: AltList, addr: String },
    /// coturn 4.13 removed `psd` (dump to a file on the server).
    Removed(&'static str),
    Unknown,
}

/// Parse one line typed after the password.
pub fn parse(line: &str) -> Command {
    let line = line.trim();
    if line.is_empty() {
        return Command::Empty;
    }
    let (word, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line, ""),
    };
    let arg = || rest.to_string();
    match word {
        "?" | "h" | "help" => Command::Help,
        "quit" | "q" | "exit" | "bye" => Command::Quit,
        "stop" | "shutdown" | "halt" => Command::Stop,
        "drain" => Command::Drain,
        "pc" => Command::PrintConfig,
        "sr" if !rest.is_empty() => Command::SetRealm(Some(arg())),
        "ur" => Command::SetRealm(None),
        "so" if !rest.is_empty() => Command::SetOrigin(Some(arg())),
        "uo" => Command::SetOrigin(None),
        "tc" => Command::Toggle(arg()),
        "cc" => {
            let (name, value) = match rest.find([' ', '\t']) {
                Some(i) => (&rest[..i], rest[i..].trim()),
                None => (rest, ""),
            };
            Command::Change { name: name.to_string(), value: value.to_string() }
        }
        // coturn drops a leading '*' (a wildcard some operators type).
        "ps" => Command::Sessions { user: rest.trim_start_matches('*').to_string(), exact: true },
        "psp" => Command::Sessions { user: rest.trim_start_matches('*').to_string(), exact: false },
        "pu" => Command::Users(arg()),
        "cs" if !rest.is_empty() => Command::Cancel(arg()),
        "lr" => Command::LogReset,
        "psd" => Command::Removed("psd"),
        _ => match alternate(word) {
            Some((add, list)) if !rest.is_empty() => Command::Alternate { add, list, addr: arg() },
            _ => Command::Unknown,
        },
    }
}

/// `aas`, `das`, `atas`, `dtas`, `atcpas`, `dtcpas`, `audpas`, `dudpas`.
fn alternate(word: &str) -> Option<(bool, AltList)> {
    let add = match word.as_bytes().first()? {
        b'a' => true,
        b'd' => false,
        _ => return None,
    };
    let list = match &word[1..] {
        "as" => AltList::General,
        "tas" => AltList::Tls,
        "tcpas" => AltList::Tcp,
        "udpas" => AltList::Udp,
        _ => return None,
    };
    Some((add, list))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn words_and_arguments() {
        assert_eq!(parse("  "), Command::Empty);
        assert_eq!(parse("?"), Command::Help);
        assert_eq!(parse("help"), Command::Help);
        assert_eq!(parse("bye"), Command::Quit);
        assert_eq!(parse("halt"), Command::Stop);
        assert_eq!(parse("drain"), Command::Drain);
        assert_eq!(parse("pc"), Command::PrintConfig);
        assert_eq!(parse("sr  example.org "), Command::SetRealm(Some("example.org".into())));
        assert_eq!(parse("ur"), Command::SetRealm(None));
        assert_eq!(parse("so https://a.example"), Command::SetOrigin(Some("https://a.example".into())));
        assert_eq!(parse("uo"), Command::SetOrigin(None));
        assert_eq!(parse("lr"), Command::LogReset);
        assert_eq!(parse("cs 1000000000000000003"), Command::Cancel("1000000000000000003".into()));
    }

    #[test]
    fn missing_arguments() {
        // coturn answers "Unknown command" to these without an argument.
        assert_eq!(parse("sr"), Command::Unknown);
        assert_eq!(parse("so"), Command::Unknown);
        assert_eq!(parse("cs"), Command::Unknown);
        assert_eq!(parse("aas"), Command::Unknown);
        // tc / cc without a name print the parameter error.
        assert_eq!(parse("tc"), Command::Toggle(String::new()));
        assert_eq!(parse("cc"), Command::Change { name: String::new(), value: String::new() });
    }

    #[test]
    fn toggles_and_changes() {
        assert_eq!(parse("tc stun-only"), Command::Toggle("stun-only".into()));
        assert_eq!(parse("cc user-quota 1"), Command::Change { name: "user-quota".into(), value: "1".into() });
        assert_eq!(parse("cc max-bps\t 64000"), Command::Change { name: "max-bps".into(), value: "64000".into() });
        assert_eq!(parse("cc max-bps"), Command::Change { name: "max-bps".into(), value: String::new() });
    }

    #[test]
    fn session_listings() {
        assert_eq!(parse("ps"), Command::Sessions { user: String::new(), exact: true });
        assert_eq!(parse("ps alice"), Command::Sessions { user: "alice".into(), exact: true });
        assert_eq!(parse("ps *"), Command::Sessions { user: String::new(), exact: true });
        assert_eq!(parse("psp ali"), Command::Sessions { user: "ali".into(), exact: false });
        assert_eq!(parse("pu"), Command::Users(String::new()));
        assert_eq!(parse("pu tls"), Command::Users("tls".into()));
        assert_eq!(parse("psd /tmp/x"), Command::Removed("psd"));
    }

    #[test]
    fn alternate_server_commands() {
        let alt = |add, list, addr: &str| Command::Alternate { add, list, addr: addr.into() };
        assert_eq!(parse("aas 1.2.3.4"), alt(true, AltList::General, "1.2.3.4"));
        assert_eq!(parse("das 1.2.3.4:555"), alt(false, AltList::General, "1.2.3.4:555"));
        assert_eq!(parse("atas 1.2.3.4"), alt(true, AltList::Tls, "1.2.3.4"));
        assert_eq!(parse("dtas 1.2.3.4"), alt(false, AltList::Tls, "1.2.3.4"));
        assert_eq!(parse("atcpas [::1]:3478"), alt(true, AltList::Tcp, "[::1]:3478"));
        assert_eq!(parse("dudpas 10.0.0.1"), alt(false, AltList::Udp, "10.0.0.1"));
        assert_eq!(parse("axas 1.2.3.4"), Command::Unknown);
        assert_eq!(parse("xyz"), Command::Unknown);
    }
}
