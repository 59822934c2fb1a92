//! The second half of turnadmin: check what a command needs (coturn's
//! order and messages), then run it against the user database and print
//! what coturn prints.
//!
//! Listings are sorted the way coturn's SQL drivers order them (by realm,
//! then name/value/origin/option), so the output is the same whatever the
//! backend returns (coturn's Redis driver prints in `KEYS` order, which is
//! arbitrary). Lines are coturn's; only `-G` differs by backend.

use std::io::Write;
use std::path::PathBuf;

use super::args::{Command, DbChoice, Invocation};
use super::{hash, origin, usage_error, EXIT_FAILURE};
use crate::userdb::{AdminUser, DbError, DbSpec, UserDb};

/// Where coturn 4.6.1 looks for its SQLite file when no database option is
/// given, in its order of preference.
pub const DEFAULT_SQLITE_PATHS: [&str; 3] = [
    "/var/db/turndb",
    "/usr/local/var/db/turndb",
    "/var/lib/turn/turndb",
];

/// The default database: the first of [`DEFAULT_SQLITE_PATHS`] that exists,
/// else the first whose directory exists, else the Debian path.
pub fn default_sqlite_path() -> PathBuf {
    let candidates = DEFAULT_SQLITE_PATHS.map(PathBuf::from);
    candidates
        .iter()
        .find(|p| p.is_file())
        .or_else(|| {
            candidates
                .iter()
                .find(|p| p.parent().is_some_and(|d| d.is_dir()))
        })
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_PATHS[2]))
}

/// A reason to stop before touching the database, worded as coturn words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    User,
    Password,
    Realm,
    Origin,
    RealmOption,
}

impl Missing {
    pub fn message(self) -> &'static str {
        match self {
            Missing::User => "The operation cannot be completed: the user must be set.",
            Missing::Password => "The operation cannot be completed: the password must be set.",
            Missing::Realm => "The operation cannot be completed: the realm must be set.",
            Missing::Origin => "The operation cannot be completed: the origin must be set.",
            Missing::RealmOption => {
                "The operation cannot be completed: a realm option must be set."
            }
        }
    }
}

/// A database operation, fully checked and ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Print this line; no database.
    Print(String),
    /// Nothing to do (`-s ''`, as coturn).
    Nothing,
    ListUsers(Option<String>),
    ListAdmins,
    ListSecrets(Option<String>),
    ListOrigins(Option<String>),
    ListRealmOptions(Option<String>),
    /// Replace the realm's secret (coturn deletes it first, then inserts).
    SetSecret {
        realm: String,
        secret: String,
    },
    DeleteSecret {
        realm: String,
        secret: String,
    },
    DeleteAllSecrets {
        realm: String,
    },
    AddOrigin {
        origin: String,
        realm: String,
    },
    DelOrigin {
        origin: String,
    },
    /// (option, value) pairs; value "0" removes the option.
    SetRealmOptions {
        realm: String,
        options: Vec<(&'static str, String)>,
    },
    SetUserKey {
        realm: String,
        user: String,
        hmackey: String,
    },
    DeleteUser {
        realm: String,
        user: String,
    },
    SetAdmin(AdminUser),
    DeleteAdmin {
        user: String,
    },
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Turns the parsed command line into an [`Action`], or says what is
/// missing (the checks and their order are coturn's).
pub fn plan(inv: &Invocation, command: Command) -> Result<Action, Missing> {
    let realm = non_empty(&inv.realm);
    let realm_filter = realm.map(str::to_string);
    let need_realm = || realm.map(str::to_string).ok_or(Missing::Realm);
    match command {
        Command::List if inv.admin => return Ok(Action::ListAdmins),
        Command::List => return Ok(Action::ListUsers(realm_filter)),
        Command::ListOrigins => return Ok(Action::ListOrigins(realm_filter)),
        Command::ShowSecret => return Ok(Action::ListSecrets(realm_filter)),
        Command::ListRealmOptions => return Ok(Action::ListRealmOptions(realm_filter)),
        Command::SetSecret => {
            let Some(secret) = non_empty(&inv.secret) else {
                return Ok(Action::Nothing);
            };
            return Ok(Action::SetSecret {
                realm: need_realm()?,
                secret: secret.to_string(),
            });
        }
        Command::DelSecret => {
            let realm = need_realm()?;
            return Ok(match non_empty(&inv.secret) {
                Some(s) => Action::DeleteSecret {
                    realm,
                    secret: s.to_string(),
                },
                None => Action::DeleteAllSecrets { realm },
            });
        }
        Command::AddOrigin => {
            let o = non_empty(&inv.origin).ok_or(Missing::Origin)?;
            return Ok(Action::AddOrigin {
                origin: origin::canonical_origin(o),
                realm: need_realm()?,
            });
        }
        Command::DelOrigin => {
            let o = non_empty(&inv.origin).ok_or(Missing::Origin)?;
            return Ok(Action::DelOrigin {
                origin: origin::canonical_origin(o),
            });
        }
        Command::SetRealmOption => {
            let realm = need_realm()?;
            let mut options = Vec::new();
            // coturn keeps --max-bps in an unsigned 64-bit field: a negative
            // atoi value other than -1 (= not given) wraps around.
            if inv.max_bps != -1 {
                options.push(("max-bps", (i64::from(inv.max_bps) as u64).to_string()));
            }
            if inv.user_quota >= 0 {
                options.push(("user-quota", inv.user_quota.to_string()));
            }
            if inv.total_quota >= 0 {
                options.push(("total-quota", inv.total_quota.to_string()));
            }
            if options.is_empty() {
                return Err(Missing::RealmOption);
            }
            return Ok(Action::SetRealmOptions { realm, options });
        }
        Command::PrintKey | Command::Update | Command::Delete => {}
    }

    let user = non_empty(&inv.user).ok_or(Missing::User)?.to_string();
    if command == Command::PrintKey {
        let password = non_empty(&inv.password).ok_or(Missing::Password)?;
        let key = crate::stun::integrity::long_term_key(&user, realm.unwrap_or(""), password);
        return Ok(Action::Print(format!("0x{}", hash::hex(&key))));
    }
    if inv.admin {
        return Ok(match command {
            Command::Delete => Action::DeleteAdmin { user },
            _ => {
                let password = non_empty(&inv.password).ok_or(Missing::Password)?;
                Action::SetAdmin(AdminUser {
                    name: user,
                    realm: realm.unwrap_or("").to_string(),
                    password: hash::hash_password(password),
                })
            }
        });
    }
    if command == Command::Delete {
        return Ok(Action::DeleteUser {
            realm: need_realm()?,
            user,
        });
    }
    let password = non_empty(&inv.password).ok_or(Missing::Password)?;
    let realm = need_realm()?;
    let hmackey = hash::hex(&crate::stun::integrity::long_term_key(
        &user, &realm, password,
    ));
    Ok(Action::SetUserKey {
        realm,
        user,
        hmackey,
    })
}

/// The database named on the command line, or coturn's default SQLite file.
pub fn db_spec(choice: &Option<DbChoice>) -> Result<DbSpec, &'static str> {
    Ok(match choice {
        None => DbSpec::Sqlite(default_sqlite_path()),
        Some(DbChoice::Sqlite(p)) => DbSpec::Sqlite(PathBuf::from(p)),
        Some(DbChoice::Postgres(s)) => DbSpec::Postgres(s.clone()),
        Some(DbChoice::Mysql(s)) => DbSpec::Mysql(s.clone()),
        Some(DbChoice::Redis(s)) => DbSpec::Redis(s.clone()),
        Some(DbChoice::Mongo(_)) => {
            return Err(
                "The operation cannot be completed: MongoDB is not supported (--mongo-userdb).",
            )
        }
    })
}

/// Checks and runs a parsed command line; returns the exit status.
pub fn execute(inv: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let command = match inv.command {
        Some(c) if !inv.has_operand && !inv.unused_letter => c,
        _ => return usage_error(err),
    };
    let action = match plan(inv, command) {
        Ok(a) => a,
        Err(m) => {
            let _ = writeln!(err, "{}", m.message());
            return EXIT_FAILURE;
        }
    };
    match action {
        Action::Print(line) => {
            let _ = writeln!(out, "{line}");
            return 0;
        }
        Action::Nothing => return 0,
        _ => {}
    }
    let spec = match db_spec(&inv.db) {
        Ok(s) => s,
        Err(m) => {
            let _ = writeln!(err, "{m}");
            return EXIT_FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "ERROR: cannot start the database runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let db = UserDb::connect(&spec)
            .await
            .map_err(|e| (describe(&spec), e))?;
        let lines = run_action(&db, action)
            .await
            .map_err(|e| (describe(&spec), e))?;
        Ok::<_, (String, DbError)>(lines)
    });
    match result {
        Ok(lines) => {
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            0
        }
        Err((what, e)) => {
            let _ = writeln!(err, "ERROR: {what}: {e}");
            EXIT_FAILURE
        }
    }
}

/// Names the database in an error line without printing a password.
fn describe(spec: &DbSpec) -> String {
    match spec {
        DbSpec::Sqlite(p) => format!("SQLite DB <{}>", p.display()),
        DbSpec::Postgres(_) => "PostgreSQL DB".to_string(),
        DbSpec::Mysql(_) => "MySQL DB".to_string(),
        DbSpec::Redis(_) => "Redis DB".to_string(),
    }
}

/// Runs `action`; returns the lines to print, formatted and ordered as
/// coturn prints them.
pub async fn run_action(db: &UserDb, action: Action) -> Result<Vec<String>, DbError> {
    Ok(match action {
        Action::Print(line) => vec![line],
        Action::Nothing => Vec::new(),
        Action::ListUsers(realm) => {
            let mut rows = db.list_users(realm.as_deref()).await?;
            rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
            rows.into_iter()
                .map(|(name, realm)| bracketed(&name, &realm))
                .collect()
        }
        Action::ListAdmins => {
            let mut rows = db.list_admin_users().await?;
            rows.sort_by(|a, b| (&a.realm, &a.name).cmp(&(&b.realm, &b.name)));
            rows.into_iter()
                .map(|a| bracketed(&a.name, &a.realm))
                .collect()
        }
        Action::ListSecrets(realm) => {
            let mut rows = db.list_secrets(realm.as_deref()).await?;
            rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
            rows.into_iter()
                .map(|(value, realm)| format!("{value}[{realm}]"))
                .collect()
        }
        Action::ListOrigins(realm) => {
            let mut rows = db.list_origins(realm.as_deref()).await?;
            rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
            rows.into_iter()
                .map(|(origin, realm)| format!("{origin} ==>> {realm}"))
                .collect()
        }
        Action::ListRealmOptions(realm) => {
            let mut rows = db.list_realm_options(realm.as_deref()).await?;
            rows.sort_by(|a, b| (&a.realm, &a.opt).cmp(&(&b.realm, &b.opt)));
            let redis = matches!(db, UserDb::Redis(_));
            rows.iter().map(|o| realm_option_line(redis, o)).collect()
        }
        Action::SetSecret { realm, secret } => {
            db.delete_secret(&realm, &secret).await?;
            db.add_secret(&realm, &secret).await?;
            Vec::new()
        }
        Action::DeleteSecret { realm, secret } => {
            db.delete_secret(&realm, &secret).await?;
            Vec::new()
        }
        Action::DeleteAllSecrets { realm } => {
            db.delete_all_secrets(&realm).await?;
            Vec::new()
        }
        Action::AddOrigin { origin, realm } => {
            db.add_origin(&origin, &realm).await?;
            Vec::new()
        }
        Action::DelOrigin { origin } => {
            db.delete_origin(&origin).await?;
            Vec::new()
        }
        Action::SetRealmOptions { realm, options } => {
            for (opt, value) in options {
                db.set_realm_option(&realm, opt, &value).await?;
            }
            Vec::new()
        }
        Action::SetUserKey {
            realm,
            user,
            hmackey,
        } => {
            db.set_user_key(&realm, &user, &hmackey).await?;
            Vec::new()
        }
        Action::DeleteUser { realm, user } => {
            db.delete_user(&realm, &user).await?;
            Vec::new()
        }
        Action::SetAdmin(admin) => {
            db.set_admin_user(&admin).await?;
            Vec::new()
        }
        Action::DeleteAdmin { user } => {
            db.delete_admin_user(&user).await?;
            Vec::new()
        }
    })
}

/// One line of `-G`: coturn prints `opt[realm]=value` from SQL databases
/// but the key's tail, `realm/opt = value`, from Redis.
fn realm_option_line(redis: bool, o: &crate::userdb::RealmOption) -> String {
    if redis {
        format!("{}/{} = {}", o.realm, o.opt, o.value)
    } else {
        format!("{}[{}]={}", o.opt, o.realm, o.value)
    }
}

/// `name[realm]`, or just `name` for an empty realm (coturn's admin list).
fn bracketed(name: &str, realm: &str) -> String {
    if realm.is_empty() {
        name.to_string()
    } else {
        format!("{name}[{realm}]")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::*;
    use crate::admin::args::{parse, tokenize, Parsed};

    fn inv(line: &[&str]) -> Invocation {
        let v: Vec<String> = line.iter().map(|s| s.to_string()).collect();
        match parse(&tokenize(&v)) {
            Parsed::Run(i) => i,
            other => panic!("{other:?}"),
        }
    }

    fn plan_line(line: &[&str]) -> Result<Action, Missing> {
        let i = inv(line);
        plan(&i, i.command.expect("a command"))
    }

    #[test]
    fn requirement_order_is_coturns() {
        use Missing::*;
        assert_eq!(plan_line(&["-a"]), Err(User));
        assert_eq!(plan_line(&["-a", "-u", "alice"]), Err(Password));
        assert_eq!(plan_line(&["-a", "-u", "alice", "-p", "s"]), Err(Realm));
        assert_eq!(
            plan_line(&["-a", "-u", "x", "-r", "y", "-p", ""]),
            Err(Password)
        );
        assert_eq!(plan_line(&["-d", "-u", "alice"]), Err(Realm));
        assert_eq!(plan_line(&["-A"]), Err(User));
        assert_eq!(plan_line(&["-A", "-u", "admin"]), Err(Password));
        assert_eq!(plan_line(&["-D"]), Err(User));
        assert_eq!(plan_line(&["-s", "x"]), Err(Realm));
        assert_eq!(plan_line(&["-X", "x"]), Err(Realm));
        assert_eq!(plan_line(&["--delete-all-secrets"]), Err(Realm));
        assert_eq!(plan_line(&["-O"]), Err(Origin));
        assert_eq!(plan_line(&["-O", "-r", "r"]), Err(Origin));
        assert_eq!(plan_line(&["-O", "-o", "http://a"]), Err(Realm));
        assert_eq!(plan_line(&["-R"]), Err(Origin));
        assert_eq!(plan_line(&["-g", "--max-bps", "1"]), Err(Realm));
        assert_eq!(plan_line(&["-g", "-r", "r"]), Err(RealmOption));
        assert_eq!(
            plan_line(&["-g", "-r", "r", "--user-quota", "-5"]),
            Err(RealmOption)
        );
        assert_eq!(
            plan_line(&["-g", "-r", "r", "--max-bps", "-1"]),
            Err(RealmOption)
        );
        assert_eq!(
            RealmOption.message(),
            "The operation cannot be completed: a realm option must be set."
        );
    }

    #[test]
    fn plans() {
        assert_eq!(
            plan_line(&[
                "-a",
                "-u",
                "ninefingers",
                "-r",
                "north.gov",
                "-p",
                "youhavetoberealistic"
            ]),
            Ok(Action::SetUserKey {
                realm: "north.gov".into(),
                user: "ninefingers".into(),
                hmackey: "bc807ee29df3c9ffa736523fb2c4e8ee".into()
            })
        );
        assert_eq!(plan_line(&["-s", ""]), Ok(Action::Nothing));
        assert_eq!(
            plan_line(&["-X", "", "-r", "r"]),
            Ok(Action::DeleteAllSecrets { realm: "r".into() })
        );
        assert_eq!(
            plan_line(&["-O", "-o", "HTTPS://App.Example.org/x", "-r", "e"]),
            Ok(Action::AddOrigin {
                origin: "https://app.example.org:443".into(),
                realm: "e".into()
            })
        );
        assert_eq!(
            plan_line(&["-R", "-o", "http://a"]),
            Ok(Action::DelOrigin {
                origin: "http://a:80".into()
            })
        );
        assert_eq!(
            plan_line(&[
                "-g",
                "-r",
                "r",
                "--max-bps",
                "64000",
                "--user-quota",
                "10",
                "--total-quota",
                "0"
            ]),
            Ok(Action::SetRealmOptions {
                realm: "r".into(),
                options: vec![
                    ("max-bps", "64000".into()),
                    ("user-quota", "10".into()),
                    ("total-quota", "0".into())
                ]
            })
        );
        assert_eq!(
            plan_line(&["-g", "-r", "r", "--max-bps", "-5"]),
            Ok(Action::SetRealmOptions {
                realm: "r".into(),
                options: vec![("max-bps", "18446744073709551611".into())]
            })
        );
        assert_eq!(plan_line(&["-l", "-r", ""]), Ok(Action::ListUsers(None)));
        assert_eq!(plan_line(&["-A", "-l", "-r", "x"]), Ok(Action::ListAdmins));
        assert_eq!(
            plan_line(&["-D", "-u", "adm"]),
            Ok(Action::DeleteAdmin { user: "adm".into() })
        );
        match plan_line(&["-A", "-u", "adm", "-p", "pw", "-r", "e"]) {
            Ok(Action::SetAdmin(a)) => {
                assert_eq!((a.name.as_str(), a.realm.as_str()), ("adm", "e"));
                assert!(hash::verify_password(&a.password, "pw"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mongo_is_refused_and_default_is_sqlite() {
        assert!(db_spec(&Some(DbChoice::Mongo("mongodb://x".into()))).is_err());
        assert!(matches!(db_spec(&None), Ok(DbSpec::Sqlite(p)) if p.ends_with("turndb")));
        assert_eq!(
            db_spec(&Some(DbChoice::Redis("ip=1.2.3.4".into()))),
            Ok(DbSpec::Redis("ip=1.2.3.4".into()))
        );
    }

    #[test]
    fn realm_option_lines_per_backend() {
        let o = crate::userdb::RealmOption {
            realm: "example.org".into(),
            opt: "max-bps".into(),
            value: "64000".into(),
        };
        assert_eq!(realm_option_line(false, &o), "max-bps[example.org]=64000");
        assert_eq!(realm_option_line(true, &o), "example.org/max-bps = 64000");
    }

    #[test]
    fn admin_lines() {
        assert_eq!(bracketed("admin", ""), "admin");
        assert_eq!(bracketed("radm", "example.org"), "radm[example.org]");
    }
}
