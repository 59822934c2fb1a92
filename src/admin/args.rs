//! Command-line grammar of `turnadmin`, read the way coturn's binary reads it.
//!
//! coturn parses with glibc `getopt_long`, so the accepted spellings and the
//! error lines are glibc's: short clusters (`-kua`), `--name=value` or
//! `--name value`, unique prefixes of long names (`--userd`), arguments
//! permuted so options may follow operands, `--` ending the options. This
//! module reproduces that grammar and those messages without libc, and turns
//! the options into an [`Invocation`]. Nothing here touches a file or a
//! database.

use std::fmt;

/// One option of the table, whatever spelling selected it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `-P`: print a `$5$` hash of `-p`.
    GenPassword,
    /// `-E`: AES-128 encryption of `-p` with the `-f` key.
    GenPasswordAes,
    /// `-k`: print the long-term key.
    PrintKey,
    /// `-a`: add or update a long-term user.
    Add,
    /// `-d`: delete a long-term user.
    Delete,
    /// `-l`: list long-term users.
    List,
    /// `-A`: add or update an admin user.
    AddAdmin,
    /// `-D`: delete an admin user.
    DeleteAdmin,
    /// `-L`: list admin users.
    ListAdmin,
    /// `-s`: add a REST secret.
    SetSecret,
    /// `-S`: list REST secrets.
    ShowSecret,
    /// `-X`: delete a REST secret.
    DeleteSecret,
    /// `--delete-all-secrets`.
    DeleteAllSecrets,
    /// `-O`: add an origin-to-realm row.
    AddOrigin,
    /// `-R`: delete an origin-to-realm row.
    DelOrigin,
    /// `-I`: list origins.
    ListOrigins,
    /// `-g`: set realm options.
    SetRealmOption,
    /// `-G`: list realm options.
    ListRealmOptions,
    /// `-b`: SQLite file.
    Sqlite,
    /// `-e`: PostgreSQL connection string.
    Postgres,
    /// `-M`: MySQL connection string.
    Mysql,
    /// `-J`: MongoDB URI (never supported here).
    Mongo,
    /// `-N`: Redis connection string.
    Redis,
    /// `-u`.
    User,
    /// `-r`.
    Realm,
    /// `-p`.
    Password,
    /// `-o`.
    Origin,
    /// `-x`: write a new AES key file.
    KeyPath,
    /// `-f`: read the AES key file.
    FileKeyPath,
    /// `-v`: decrypt a base64 AES-encrypted password.
    Verify,
    /// `--max-bps`.
    MaxBps,
    /// `--total-quota`.
    TotalQuota,
    /// `--user-quota`.
    UserQuota,
    /// `-h ARG` / `--help`.
    Help,
    /// `-H`, `-K`, `-Y`: in coturn's option string but without a meaning in
    /// turnadmin; coturn answers them with the usage text.
    Unused,
}

/// Short options: letter, takes an argument, meaning. Same letters and
/// argument rules as coturn 4.6.1 (`-h` takes an argument there too).
const SHORT: &[(char, bool, Key)] = &[
    ('P', false, Key::GenPassword),
    ('E', false, Key::GenPasswordAes),
    ('g', false, Key::SetRealmOption),
    ('G', false, Key::ListRealmOptions),
    ('O', false, Key::AddOrigin),
    ('R', false, Key::DelOrigin),
    ('I', false, Key::ListOrigins),
    ('H', false, Key::Unused),
    ('K', false, Key::Unused),
    ('Y', false, Key::Unused),
    ('l', false, Key::List),
    ('L', false, Key::ListAdmin),
    ('k', false, Key::PrintKey),
    ('a', false, Key::Add),
    ('A', false, Key::AddAdmin),
    ('D', false, Key::DeleteAdmin),
    ('S', false, Key::ShowSecret),
    ('d', false, Key::Delete),
    ('b', true, Key::Sqlite),
    ('e', true, Key::Postgres),
    ('M', true, Key::Mysql),
    ('J', true, Key::Mongo),
    ('N', true, Key::Redis),
    ('u', true, Key::User),
    ('r', true, Key::Realm),
    ('p', true, Key::Password),
    ('s', true, Key::SetSecret),
    ('X', true, Key::DeleteSecret),
    ('o', true, Key::Origin),
    ('h', true, Key::Help),
    ('x', true, Key::KeyPath),
    ('v', true, Key::Verify),
    ('f', true, Key::FileKeyPath),
];

/// Long options in coturn's table order (the order glibc lists candidates
/// of an ambiguous prefix in). Two differences from 4.6.1, both fixes:
/// `--list-origins` takes no argument (4.6.1 declares one by mistake, so
/// `--list-origins --db=x` swallows the database option there), and
/// `--list-realm-options` (the spelling coturn's documentation uses) is
/// accepted next to 4.6.1's `--list-realm-option`.
const LONG: &[(&str, bool, Key)] = &[
    ("generate-encrypted-password", false, Key::GenPassword),
    (
        "generate-encrypted-password-aes",
        false,
        Key::GenPasswordAes,
    ),
    ("key", false, Key::PrintKey),
    ("add", false, Key::Add),
    ("delete", false, Key::Delete),
    ("list", false, Key::List),
    ("list-admin", false, Key::ListAdmin),
    ("set-secret", true, Key::SetSecret),
    ("show-secret", false, Key::ShowSecret),
    ("delete-secret", true, Key::DeleteSecret),
    ("delete-all-secrets", false, Key::DeleteAllSecrets),
    ("add-admin", false, Key::AddAdmin),
    ("delete-admin", false, Key::DeleteAdmin),
    ("userdb", true, Key::Sqlite),
    ("db", true, Key::Sqlite),
    ("psql-userdb", true, Key::Postgres),
    ("sql-userdb", true, Key::Postgres),
    ("mysql-userdb", true, Key::Mysql),
    ("mongo-userdb", true, Key::Mongo),
    ("redis-userdb", true, Key::Redis),
    ("user", true, Key::User),
    ("realm", true, Key::Realm),
    ("password", true, Key::Password),
    ("key-path", true, Key::KeyPath),
    ("file-key-path", true, Key::FileKeyPath),
    ("verify", true, Key::Verify),
    ("add-origin", false, Key::AddOrigin),
    ("del-origin", false, Key::DelOrigin),
    ("list-origins", false, Key::ListOrigins),
    ("set-realm-option", false, Key::SetRealmOption),
    ("list-realm-option", false, Key::ListRealmOptions),
    ("list-realm-options", false, Key::ListRealmOptions),
    ("user-quota", true, Key::UserQuota),
    ("total-quota", true, Key::TotalQuota),
    ("max-bps", true, Key::MaxBps),
    ("origin", true, Key::Origin),
    ("help", false, Key::Help),
];

/// A grammar error, displayed exactly as glibc's `getopt_long` prints it
/// (without the program name, which [`GetoptError::line`] adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// A short letter not in the table.
    InvalidShort(char),
    /// A short option that needs an argument was last.
    ShortNeedsArg(char),
    /// `--text` matches no long option (text as typed, `=value` included).
    Unrecognized(String),
    /// `--name=value` for an option without an argument.
    NoArgAllowed(&'static str),
    /// `--name` last, for an option with an argument.
    LongNeedsArg(&'static str),
    /// A prefix matching several different options.
    Ambiguous(String, Vec<&'static str>),
}

impl GetoptError {
    /// The line glibc writes to stderr, `prog` being `argv[0]`.
    pub fn line(&self, prog: &str) -> String {
        format!("{prog}: {self}")
    }
}

impl fmt::Display for GetoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetoptError::InvalidShort(c) => write!(f, "invalid option -- '{c}'"),
            GetoptError::ShortNeedsArg(c) => write!(f, "option requires an argument -- '{c}'"),
            GetoptError::Unrecognized(s) => write!(f, "unrecognized option '--{s}'"),
            GetoptError::NoArgAllowed(n) => write!(f, "option '--{n}' doesn't allow an argument"),
            GetoptError::LongNeedsArg(n) => write!(f, "option '--{n}' requires an argument"),
            GetoptError::Ambiguous(s, names) => {
                write!(f, "option '--{s}' is ambiguous; possibilities:")?;
                for n in names {
                    write!(f, " '--{n}'")?;
                }
                Ok(())
            }
        }
    }
}

/// One item of the command line in the order it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An option and its argument when it takes one.
    Opt(Key, Option<String>),
    /// An operand (turnadmin takes none; any operand means usage).
    Operand(String),
    /// A grammar error; scanning goes on after it, as getopt does.
    Error(GetoptError),
}

/// Splits `args` (without `argv[0]`) into tokens, glibc style.
pub fn tokenize(args: &[String]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            out.extend(args[i..].iter().cloned().map(Token::Operand));
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            out.push(long_token(body, args, &mut i));
        } else if arg.len() > 1 && arg.starts_with('-') {
            short_tokens(&arg[1..], args, &mut i, &mut out);
        } else {
            out.push(Token::Operand(arg.clone()));
        }
    }
    out
}

fn long_token(body: &str, args: &[String], i: &mut usize) -> Token {
    let (name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (body, None),
    };
    let exact: Option<&'static (&'static str, bool, Key)> =
        LONG.iter().find(|(n, _, _)| *n == name);
    let found = match exact {
        Some(e) => e,
        None => {
            let matches: Vec<&'static (&'static str, bool, Key)> = LONG
                .iter()
                .filter(|(n, _, _)| n.starts_with(name))
                .collect();
            let Some(&first) = matches.first() else {
                return Token::Error(GetoptError::Unrecognized(body.to_string()));
            };
            // glibc compares every later match with the first one: a prefix
            // is ambiguous only if some match means something else, and the
            // message names the first match and those that differ from it
            // (aliases of the first are neither an ambiguity nor listed).
            let differs = |m: &(&str, bool, Key)| m.1 != first.1 || m.2 != first.2;
            if matches.iter().any(|m| differs(m)) {
                let names = std::iter::once(first.0)
                    .chain(matches.iter().filter(|m| differs(m)).map(|m| m.0))
                    .collect();
                return Token::Error(GetoptError::Ambiguous(body.to_string(), names));
            }
            first
        }
    };
    let (lname, takes_arg, key) = *found;
    match (takes_arg, inline) {
        (false, Some(_)) => Token::Error(GetoptError::NoArgAllowed(lname)),
        (false, None) => Token::Opt(key, None),
        (true, Some(v)) => Token::Opt(key, Some(v)),
        (true, None) => match args.get(*i) {
            Some(v) => {
                *i += 1;
                Token::Opt(key, Some(v.clone()))
            }
            None => Token::Error(GetoptError::LongNeedsArg(lname)),
        },
    }
}

fn short_tokens(cluster: &str, args: &[String], i: &mut usize, out: &mut Vec<Token>) {
    for (pos, c) in cluster.char_indices() {
        let Some(&(_, takes_arg, key)) = SHORT.iter().find(|(l, _, _)| *l == c) else {
            out.push(Token::Error(GetoptError::InvalidShort(c)));
            continue;
        };
        if !takes_arg {
            out.push(Token::Opt(key, None));
            continue;
        }
        let rest = &cluster[pos + c.len_utf8()..];
        if !rest.is_empty() {
            out.push(Token::Opt(key, Some(rest.to_string())));
        } else if let Some(v) = args.get(*i) {
            *i += 1;
            out.push(Token::Opt(key, Some(v.clone())));
        } else {
            out.push(Token::Error(GetoptError::ShortNeedsArg(c)));
        }
        return;
    }
}

/// The database the operator selected; the last selector on the line wins,
/// as in coturn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbChoice {
    Sqlite(String),
    Postgres(String),
    Mysql(String),
    Mongo(String),
    Redis(String),
}

/// Which table a command works on (coturn's `TURNADMIN_COMMAND_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    PrintKey,
    /// Add or update (`-a`, or `-A` with `admin`).
    Update,
    /// `-d`, or `-D` with `admin`.
    Delete,
    /// `-l`, or `-L` with `admin`.
    List,
    SetSecret,
    ShowSecret,
    /// `-X` or `--delete-all-secrets` (an empty secret deletes them all).
    DelSecret,
    AddOrigin,
    DelOrigin,
    ListOrigins,
    SetRealmOption,
    ListRealmOptions,
}

/// Everything the second pass over the command line collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// The last command letter given.
    pub command: Option<Command>,
    /// Set by any of `-A`, `-D`, `-L` and kept (coturn's `is_admin`), so
    /// `-A -l` lists admin users as it does in coturn.
    pub admin: bool,
    pub db: Option<DbChoice>,
    pub user: Option<String>,
    pub realm: Option<String>,
    pub password: Option<String>,
    pub origin: Option<String>,
    pub secret: Option<String>,
    /// `--max-bps` as coturn's `atoi` reads it; `-1` means not given.
    pub max_bps: i32,
    /// `--total-quota`; negative means not given.
    pub total_quota: i32,
    /// `--user-quota`; negative means not given.
    pub user_quota: i32,
    /// An operand was present (coturn then prints the usage).
    pub has_operand: bool,
    /// `-H`/`-K`/`-Y` was present (coturn then prints the usage).
    pub unused_letter: bool,
}

/// What the strict pass decided before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run this.
    Run(Invocation),
    /// `--help` / `-h ARG`: usage on stdout, exit 0.
    Help,
    /// A grammar error: its line, then usage on stderr, exit 255.
    Error(GetoptError),
}

/// The strict pass: the first grammar error or help request decides, in
/// command-line order; otherwise the options fill an [`Invocation`].
pub fn parse(tokens: &[Token]) -> Parsed {
    let mut inv = Invocation {
        max_bps: -1,
        total_quota: -1,
        user_quota: -1,
        ..Invocation::default()
    };
    for t in tokens {
        let (key, val) = match t {
            Token::Error(e) => return Parsed::Error(e.clone()),
            Token::Operand(_) => {
                inv.has_operand = true;
                continue;
            }
            Token::Opt(k, v) => (*k, v.clone()),
        };
        let val_or_empty = val.clone().unwrap_or_default();
        match key {
            Key::Help => return Parsed::Help,
            Key::PrintKey => inv.command = Some(Command::PrintKey),
            Key::Add => inv.command = Some(Command::Update),
            Key::Delete => inv.command = Some(Command::Delete),
            Key::List => inv.command = Some(Command::List),
            Key::AddAdmin => {
                inv.command = Some(Command::Update);
                inv.admin = true;
            }
            Key::DeleteAdmin => {
                inv.command = Some(Command::Delete);
                inv.admin = true;
            }
            Key::ListAdmin => {
                inv.command = Some(Command::List);
                inv.admin = true;
            }
            Key::SetSecret => {
                inv.command = Some(Command::SetSecret);
                inv.secret = val;
            }
            Key::ShowSecret => inv.command = Some(Command::ShowSecret),
            Key::DeleteSecret => {
                inv.command = Some(Command::DelSecret);
                inv.secret = val;
            }
            Key::DeleteAllSecrets => {
                inv.command = Some(Command::DelSecret);
                inv.secret = Some(String::new());
            }
            Key::AddOrigin => inv.command = Some(Command::AddOrigin),
            Key::DelOrigin => inv.command = Some(Command::DelOrigin),
            Key::ListOrigins => inv.command = Some(Command::ListOrigins),
            Key::SetRealmOption => inv.command = Some(Command::SetRealmOption),
            Key::ListRealmOptions => inv.command = Some(Command::ListRealmOptions),
            Key::Sqlite => inv.db = Some(DbChoice::Sqlite(val_or_empty)),
            Key::Postgres => inv.db = Some(DbChoice::Postgres(val_or_empty)),
            Key::Mysql => inv.db = Some(DbChoice::Mysql(val_or_empty)),
            Key::Mongo => inv.db = Some(DbChoice::Mongo(val_or_empty)),
            Key::Redis => inv.db = Some(DbChoice::Redis(val_or_empty)),
            Key::User => inv.user = val,
            Key::Realm => inv.realm = val,
            Key::Password => inv.password = val,
            Key::Origin => inv.origin = val,
            Key::MaxBps => inv.max_bps = c_atoi(&val_or_empty),
            Key::TotalQuota => inv.total_quota = c_atoi(&val_or_empty),
            Key::UserQuota => inv.user_quota = c_atoi(&val_or_empty),
            Key::Unused => inv.unused_letter = true,
            // Handled by the first pass (see `super::keyfile_pass`).
            Key::GenPassword
            | Key::GenPasswordAes
            | Key::KeyPath
            | Key::FileKeyPath
            | Key::Verify => {}
        }
    }
    Parsed::Run(inv)
}

/// C `atoi` as glibc implements it (`(int) strtol(s, NULL, 10)`): leading
/// white space, a sign, decimal digits up to the first other character,
/// saturation at the `long` range, then truncation to `int`. coturn reads
/// `--max-bps` and both quotas this way, so `12abc` is 12, `abc` is 0 and
/// `2147483648` becomes negative (= "not given").
pub fn c_atoi(s: &str) -> i32 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
    }
    // Truncation to int, as the C cast does on this platform.
    v as i32
}

/// coturn's usage text (stdout for `--help`, stderr after an error).
pub const USAGE: &str = "\nUsage: turnadmin [command] [options]\n\nCommands:\n\n\
\t-P, --generate-encrypted-password\tGenerate and print to the standard\n\
\t\t\t\t\toutput an encrypted form of a password\n\
\t\t\t\t\t(for web admin user or CLI). See wiki, README or man\n\
\t\t\t\t\tpages for more detailed description.\n\
\t-k, --key\t\t\tgenerate long-term credential mechanism key for a user\n\
\t-a, --add\t\t\tadd/update a long-term mechanism user\n\
\t-A, --add-admin\t\t\tadd/update a web admin user\n\
\t-d, --delete\t\t\tdelete a long-term mechanism user\n\
\t-D, --delete-admin\t\tdelete an admin user\n\
\t-l, --list\t\t\tlist all long-term mechanism users\n\
\t-L, --list-admin\t\tlist all admin users\n\
\t-s, --set-secret=<value>\tAdd shared secret for TURN REST API\n\
\t-S, --show-secret\t\tShow stored shared secrets for TURN REST API\n\
\t-X, --delete-secret=<value>\tDelete a shared secret\n\
\t    --delete-all-secrets\tDelete all shared secrets for REST API\n\
\t-O, --add-origin\t\tAdd origin-to-realm relation.\n\
\t-R, --del-origin\t\tDelete origin-to-realm relation.\n\
\t-I, --list-origins\t\tList origin-to-realm relations.\n\
\t-g, --set-realm-option\t\tSet realm params: max-bps, total-quota, user-quota.\n\
\t-G, --list-realm-options\tList realm params.\n\
\t-E, --generate-encrypted-password-aes\tGenerate and print to the standard\n\
\t\t\t\t\toutput an encrypted form of password with AES-128\n\
\nOptions with mandatory values:\n\n\
\t-b, --db, --userdb\t\tSQLite database file, default value is /var/db/turndb or\n\
\t\t\t\t\t  /usr/local/var/db/turndb or /var/lib/turn/turndb.\n\
\t-e, --psql-userdb, --sql-userdb\tPostgreSQL user database connection string, if PostgreSQL DB is used.\n\
\t-M, --mysql-userdb\t\tMySQL user database connection string, if MySQL DB is used.\n\
\t-N, --redis-userdb\t\tRedis user database connection string, if Redis DB is used.\n\
\t-u, --user\t\t\tUsername\n\
\t-r, --realm\t\t\tRealm\n\
\t-p, --password\t\t\tPassword\n\
\t-x, --key-path\t\t\tGenerates a 128 bit key into the given path.\n\
\t-f, --file-key-path\t\tContains a 128 bit key in the given path.\n\
\t-v, --verify\t\t\tVerify a given base64 encrypted type password.\n\
\t-o, --origin\t\t\tOrigin\n\
\t--max-bps\t\t\tSet value of realm's max-bps parameter.\n\
\t\t\t\t\tSetting to zero value means removal of the option.\n\
\t--total-quota\t\t\tSet value of realm's total-quota parameter.\n\
\t\t\t\t\tSetting to zero value means removal of the option.\n\
\t--user-quota\t\t\tSet value of realm's user-quota parameter.\n\
\t\t\t\t\tSetting to zero value means removal of the option.\n\
\t-h, --help\t\t\tHelp\n\n";

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::*;

    fn toks(line: &[&str]) -> Vec<Token> {
        let v: Vec<String> = line.iter().map(|s| s.to_string()).collect();
        tokenize(&v)
    }

    fn run(line: &[&str]) -> Invocation {
        match parse(&toks(line)) {
            Parsed::Run(inv) => inv,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn err(line: &[&str]) -> String {
        match parse(&toks(line)) {
            Parsed::Error(e) => e.line("turnadmin"),
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn glibc_error_lines() {
        assert_eq!(err(&["-Q"]), "turnadmin: invalid option -- 'Q'");
        assert_eq!(
            err(&["-h"]),
            "turnadmin: option requires an argument -- 'h'"
        );
        assert_eq!(
            err(&["-l", "-r"]),
            "turnadmin: option requires an argument -- 'r'"
        );
        assert_eq!(
            err(&["--bogus"]),
            "turnadmin: unrecognized option '--bogus'"
        );
        assert_eq!(
            err(&["--bogus=1"]),
            "turnadmin: unrecognized option '--bogus=1'"
        );
        assert_eq!(
            err(&["--key=3"]),
            "turnadmin: option '--key' doesn't allow an argument"
        );
        assert_eq!(
            err(&["--user"]),
            "turnadmin: option '--user' requires an argument"
        );
        assert_eq!(
            err(&["--lis"]),
            "turnadmin: option '--lis' is ambiguous; possibilities: '--list' '--list-admin' \
             '--list-origins' '--list-realm-option' '--list-realm-options'"
        );
        assert_eq!(
            err(&["--del"]),
            "turnadmin: option '--del' is ambiguous; possibilities: '--delete' '--delete-secret' \
             '--delete-all-secrets' '--delete-admin' '--del-origin'"
        );
        assert_eq!(
            err(&["--u"]),
            "turnadmin: option '--u' is ambiguous; possibilities: '--userdb' '--user' '--user-quota'"
        );
    }

    #[test]
    fn first_problem_in_line_order_wins() {
        assert_eq!(parse(&toks(&["--help", "-Q"])), Parsed::Help);
        assert_eq!(
            parse(&toks(&["-Q", "--help"])),
            Parsed::Error(GetoptError::InvalidShort('Q'))
        );
        assert_eq!(parse(&toks(&["-h", "x", "-l"])), Parsed::Help);
        assert_eq!(parse(&toks(&["-hx"])), Parsed::Help);
    }

    #[test]
    fn clusters_attached_values_and_prefixes() {
        let inv = run(&["-kua", "-pb", "--rea=r"]);
        assert_eq!(inv.command, Some(Command::PrintKey));
        assert_eq!(inv.user.as_deref(), Some("a"));
        assert_eq!(inv.password.as_deref(), Some("b"));
        assert_eq!(inv.realm.as_deref(), Some("r"));
        let inv = run(&["--userd", "f.db", "--list-realm-o"]);
        assert_eq!(inv.db, Some(DbChoice::Sqlite("f.db".into())));
        assert_eq!(inv.command, Some(Command::ListRealmOptions));
        // A value may start with a dash.
        let inv = run(&["-a", "-u", "-x", "--password", "-p"]);
        assert_eq!(inv.user.as_deref(), Some("-x"));
        assert_eq!(inv.password.as_deref(), Some("-p"));
    }

    #[test]
    fn operands_are_permuted_and_double_dash_ends_options() {
        let inv = run(&["extra", "-k", "-u", "a"]);
        assert!(inv.has_operand);
        assert_eq!(inv.command, Some(Command::PrintKey));
        let inv = run(&["--", "-k"]);
        assert!(inv.has_operand);
        assert_eq!(inv.command, None);
        let inv = run(&["-k", "--"]);
        assert!(!inv.has_operand);
        assert!(run(&["-k", "-"]).has_operand);
    }

    #[test]
    fn last_command_and_database_win_admin_sticks() {
        let inv = run(&["-k", "-l", "-b", "a", "-e", "host=x"]);
        assert_eq!(inv.command, Some(Command::List));
        assert_eq!(inv.db, Some(DbChoice::Postgres("host=x".into())));
        let inv = run(&["-A", "-l"]);
        assert_eq!(inv.command, Some(Command::List));
        assert!(inv.admin);
        let inv = run(&["--delete-all-secrets"]);
        assert_eq!(inv.command, Some(Command::DelSecret));
        assert_eq!(inv.secret.as_deref(), Some(""));
        assert!(run(&["-H"]).unused_letter);
    }

    #[test]
    fn list_origins_takes_no_argument() {
        let inv = run(&["--list-origins", "--db=x"]);
        assert_eq!(inv.command, Some(Command::ListOrigins));
        assert_eq!(inv.db, Some(DbChoice::Sqlite("x".into())));
    }

    #[test]
    fn atoi_matches_glibc() {
        assert_eq!(c_atoi("64000"), 64000);
        assert_eq!(c_atoi("12abc"), 12);
        assert_eq!(c_atoi("abc"), 0);
        assert_eq!(c_atoi(" +7"), 7);
        assert_eq!(c_atoi("-5"), -5);
        assert_eq!(c_atoi("0x10"), 0);
        assert_eq!(c_atoi("4294967296"), 0);
        assert_eq!(c_atoi("2147483648"), i32::MIN);
        assert_eq!(c_atoi("99999999999999999999999"), -1);
        assert_eq!(c_atoi(""), 0);
    }

    #[test]
    fn quotas_default_to_not_given() {
        let inv = run(&["-g", "--user-quota", "10"]);
        assert_eq!((inv.max_bps, inv.total_quota, inv.user_quota), (-1, -1, 10));
    }
}
