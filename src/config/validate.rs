//! Cross-option checks run once everything is applied (coturn's start-up
//! sanity checks), producing the final [`Config`] or a fatal error.

use super::apply::Builder;
use super::{Config, ConfigError};

pub(crate) fn finish(mut b: Builder) -> Result<Config, ConfigError> {
    if b.cfg.min_port > b.cfg.max_port {
        return Err(ConfigError::fatal(format!(
            "CONFIG ERROR: --min-port ({}) must not be greater than --max-port ({}).",
            b.cfg.min_port, b.cfg.max_port
        )));
    }

    if b.cfg.bps_capacity != 0 && b.cfg.max_bps == 0 {
        return Err(ConfigError::fatal(
            "CONFIG ERROR: If you set the --bps-capacity option, then you must set --max-bps options, too.",
        ));
    }

    if b.cfg.no_udp_relay && b.cfg.no_tcp_relay {
        return Err(ConfigError::fatal(
            "CONFIG ERROR: --no-udp-relay and --no-tcp-relay options cannot be used together.",
        ));
    }

    if b.server_relay {
        b.warn("CONFIG: WARNING: --server-relay: NON-STANDARD AND DANGEROUS OPTION.".to_string());
    }

    if b.use_lt && b.anon {
        return Err(ConfigError::fatal("CONFIG ERROR: -a and -z options cannot be used together."));
    }

    if b.use_ltc && b.use_tltc {
        b.warn(
            "CONFIG: You specified --lt-cred-mech and --use-auth-secret in the same time. Be aware that \
             you could not mix the username/password and the shared secret based auth methods. Shared \
             secret overrides username/password based auth method. Check your configuration!"
                .to_string(),
        );
    }

    // coturn refuses loopback peers while a CLI without a password is on
    // (4.17: the CLI is on only with --cli).
    if b.cfg.allow_loopback_peers && b.cli && b.cli_password_empty {
        return Err(ConfigError::fatal(
            "CONFIG ERROR: allow_loopback_peers and empty cli password cannot be used together.",
        ));
    }

    if b.cfg.allow_loopback_peers {
        b.warn(
            "CONFIG: allow_loopback_peers opens a possible security vulnerability. Do not use in production!!"
                .to_string(),
        );
    }

    let has_users = !b.cfg.users.is_empty();
    if !b.use_lt && !b.anon && has_users {
        b.warn(
            "CONFIG: you specified long-term user accounts, (-u option) but you did not specify the \
             long-term credentials option (-a or --lt-cred-mech option). I am turning --lt-cred-mech ON \
             for you, but double-check your configuration."
                .to_string(),
        );
        b.use_lt = true;
    }

    if b.use_lt && b.cfg.realm.is_empty() {
        b.warn(
            "CONFIG: you did specify the long-term credentials usage but you did not specify the default \
             realm option (-r option). Check your configuration."
                .to_string(),
        );
    }

    if b.anon && has_users {
        b.warn(
            "CONFIG: you specified user accounts, (-u option) but you also specified the anonymous user \
             access option (-z or --no-auth option). User accounts will be ignored."
                .to_string(),
        );
        b.use_lt = false;
    }

    if b.use_tltc && has_users {
        b.warn(
            "CONFIG: --user accounts are ignored: the TURN REST API (--use-auth-secret / \
             --static-auth-secret) is in use and only its time-limited credentials are accepted."
                .to_string(),
        );
    }

    // coturn does not turn long-term credentials on for a database alone:
    // without -a (or the REST API options) the server stays anonymous.
    if b.cfg.userdb.is_some() && !b.use_lt {
        b.warn(
            "CONFIG: a user database is configured but neither --lt-cred-mech nor --use-auth-secret is \
             set: authentication is off and the database is not used for credentials."
                .to_string(),
        );
    }

    // A user line that cannot be turned into a key is a configuration
    // error, refused before anything is opened (coturn skips such lines
    // silently; we would rather say so).
    if b.use_lt && !b.use_tltc {
        for spec in &b.cfg.users {
            if let Err(e) = crate::core::credentials::parse_user_spec(spec, &b.cfg.realm) {
                return Err(ConfigError::fatal(format!("Wrong user account: {e}")));
            }
        }
    }

    b.cfg.lt_cred_mech = b.use_lt;
    b.cfg.no_auth = !b.use_lt;
    b.cfg.use_auth_secret = b.use_tltc;
    Ok(b.cfg)
}
