//! Which page answers which request, and the gate in front of them: only
//! `/logon` is open; everything else needs a live session, every POST needs
//! the session's CSRF token, `/pc`, `/toggle`, `/update` and the oAuth key
//! pages (`/oauth`, `/oauth/add`, `/oauth/del`) are for superusers, and a
//! realm admin only sees and changes their own realm.
//! A POST that changes something answers 303 back to its page with a message
//! (so reloading the page does not repeat the change).

use std::net::SocketAddr;
use std::time::Instant;

use base64::Engine as _;

use super::auth::{self, Admin, Session};
use super::html::{button, csrf_field, input, page, realm_input, table};
use super::http::{escape, field, percent_encode, Request, Response};
use super::App;
use crate::config::Config;
use crate::core::oauth::{OauthKey, OauthKeyRow};
use crate::mgmt::runtime::{CHANGEABLE, TOGGLES};

/// Realm options an admin may set (coturn's `turn_realm_option` names).
const REALM_OPTIONS: &[&str] = &["max-bps", "total-quota", "user-quota"];
/// Sessions listed at most on /ps.
const MAX_LISTED: usize = 1000;

pub fn handle(app: &App, req: &Request, peer: SocketAddr) -> Response {
    let now = Instant::now();
    let sid = req.cookie(auth::COOKIE).unwrap_or("");
    let session = if sid.is_empty() { None } else { app.sessions.get(sid, now) };
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    if !get && req.method != "POST" {
        return Response::error(405);
    }
    match (get, req.path.as_str()) {
        (true, "/") => return Response::redirect(if session.is_some() { "/home" } else { "/logon" }),
        (true, "/logon") if session.is_some() => return Response::redirect("/home"),
        (true, "/logon") => return Response::html(200, logon_page(req.param("msg"))),
        (false, "/logon") => return logon(app, req, peer, now),
        _ => {}
    }
    let Some(sess) = session else {
        return if get { Response::redirect("/logon") } else { Response::error(403) };
    };
    if get {
        return match pages(app, &sess, req) {
            Some(body) => Response::html(200, body),
            None => Response::error(404),
        };
    }
    let form = req.form();
    if !auth::csrf_ok(&sess, field(&form, "csrf")) {
        tracing::warn!("web admin: POST {} from {peer} without a valid CSRF token refused", req.path);
        return Response::html(403, page("Forbidden", None, Some("The form's CSRF token is missing or wrong; reload the page."), ""));
    }
    if req.path == "/logout" {
        app.sessions.remove(sid);
        tracing::info!("web admin: {} logged out", sess.admin.name);
        return Response::redirect("/logon").with_header("Set-Cookie", &auth::clear_cookie_header());
    }
    let f = |k: &str| field(&form, k).unwrap_or("").trim().to_string();
    let (back, outcome) = match req.path.as_str() {
        "/toggle" => ("/pc", superuser(&sess).and_then(|()| toggle(app, &f("opt")))),
        "/update" => ("/pc", superuser(&sess).and_then(|()| update(app, &f("opt"), &f("value")))),
        "/cs" => ("/ps", cancel(app, &sess.admin, &f("sid"))),
        "/us/add" => ("/us", add_user(app, &sess.admin, &f("realm"), &f("name"), field(&form, "password").unwrap_or(""))),
        "/us/del" => ("/us", del_user(app, &sess.admin, &f("realm"), &f("name"))),
        "/ss/add" => ("/ss", secret(app, &sess.admin, &f("realm"), &f("secret"), true)),
        "/ss/del" => ("/ss", secret(app, &sess.admin, &f("realm"), &f("secret"), false)),
        "/os/add" => ("/os", add_origin(app, &sess.admin, &f("realm"), &f("origin"))),
        "/os/del" => ("/os", del_origin(app, &sess.admin, &f("origin"))),
        "/ro/set" => ("/ro", realm_option(app, &sess.admin, &f("realm"), &f("opt"), &f("value"))),
        "/oauth/add" => ("/oauth", superuser(&sess).and_then(|()| add_oauth_key(app, &form))),
        "/oauth/del" => ("/oauth", superuser(&sess).and_then(|()| del_oauth_key(app, &f("kid")))),
        _ => return Response::error(404),
    };
    let msg = match outcome {
        Ok(m) => {
            tracing::info!("web admin: {}: {m}", sess.admin.name);
            m
        }
        Err(e) => format!("Error: {e}"),
    };
    Response::redirect(&format!("{back}?msg={}", percent_encode(&msg)))
}

fn logon_page(msg: Option<&str>) -> String {
    let form = format!(
        "<form method=\"post\" action=\"/logon\"><fieldset><legend>Administrator logon</legend>{}<br>{}<br>\
         <input type=\"submit\" value=\"Log on\"></fieldset></form>",
        input("uname", "Name", "", "text"),
        input("pwd", "Password", "", "password")
    );
    page("Logon", None, msg, &form)
}

/// Check a name and password against `admin_user`, throttled per source IP.
fn logon(app: &App, req: &Request, peer: SocketAddr, now: Instant) -> Response {
    let ip = peer.ip();
    let fail = |msg: &str| Response::redirect(&format!("/logon?msg={}", percent_encode(msg)));
    if !app.throttle.allowed(ip, now) {
        tracing::warn!("web admin: logon from {ip} refused: too many failed attempts");
        return fail("Too many failed logons from your address; try again later.");
    }
    let form = req.form();
    let name = field(&form, "uname").unwrap_or("").trim().to_string();
    let pwd = field(&form, "pwd").unwrap_or("").to_string();
    if name.is_empty() || pwd.is_empty() {
        return fail("Name and password are required.");
    }
    let user = match app.db.call(|db| {
        let n = name.clone();
        async move { db.get_admin_user(&n).await }
    }) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("web admin: logon check failed: {e}");
            return fail("The user database cannot be read now.");
        }
    };
    let ok = user.as_ref().is_some_and(|u| crate::admin::hash::verify_password(&u.password, &pwd));
    let Some(user) = user.filter(|_| ok) else {
        app.throttle.failed(ip, now);
        tracing::warn!("web admin: failed logon for {name:?} from {ip}");
        return fail("Wrong name or password.");
    };
    app.throttle.succeeded(ip);
    let admin = Admin { name: user.name, realm: user.realm };
    tracing::info!("web admin: {} logged on from {ip}{}", admin.name, if admin.is_superuser() { " (superuser)".to_string() } else { format!(" (realm {})", admin.realm) });
    let id = app.sessions.create(admin, now);
    Response::redirect("/home").with_header("Set-Cookie", &auth::cookie_header(&id))
}

fn superuser(sess: &Session) -> Result<(), String> {
    if sess.admin.is_superuser() {
        Ok(())
    } else {
        Err("only a superuser may change the configuration".into())
    }
}

/// The realm a request acts on: a realm admin's own (any other is refused);
/// for a superuser the one given, else the server's default realm.
fn target_realm(admin: &Admin, given: &str, cfg: &Config) -> Result<String, String> {
    if !admin.is_superuser() {
        if !given.is_empty() && given != admin.realm {
            return Err(format!("realm {given} is not yours"));
        }
        return Ok(admin.realm.clone());
    }
    let realm = if given.is_empty() { cfg.realm.clone() } else { given.to_string() };
    if realm.is_empty() {
        return Err("a realm is required".into());
    }
    Ok(realm)
}

/// Names, secrets and origins: printable, bounded.
fn check_text(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("{what} is required"));
    }
    if v.len() > 512 || v.chars().any(char::is_control) {
        return Err(format!("{what} is too long or has control characters"));
    }
    Ok(())
}

/// The realm filter of a list page: realm admins always see their own.
fn list_realm(admin: &Admin, req: &Request) -> Option<String> {
    if admin.is_superuser() {
        req.param("realm").filter(|r| !r.is_empty()).map(str::to_string)
    } else {
        Some(admin.realm.clone())
    }
}

fn pages(app: &App, sess: &Session, req: &Request) -> Option<String> {
    let msg = req.param("msg");
    let body = match req.path.as_str() {
        "/home" => return Some(page("Home", Some(sess), msg, &home(app, &sess.admin))),
        "/pc" => {
            if !sess.admin.is_superuser() {
                return Some(page("Configuration", Some(sess), Some("Only a superuser sees the configuration."), ""));
            }
            config_page(app, sess)
        }
        "/ps" => sessions_page(app, sess, req),
        "/us" => users_page(app, sess, req),
        "/ss" => secrets_page(app, sess, req),
        "/os" => origins_page(app, sess, req),
        "/ro" => realm_options_page(app, sess, req),
        "/oauth" => {
            if !sess.admin.is_superuser() {
                return Some(page("oAuth keys", Some(sess), Some("Only a superuser sees the oAuth keys."), ""));
            }
            oauth_page(app, sess)
        }
        _ => return None,
    };
    let title = match req.path.as_str() {
        "/pc" => "Configuration",
        "/oauth" => "oAuth keys",
        "/ps" => "Sessions",
        "/us" => "Users",
        "/ss" => "Shared secrets",
        "/os" => "Origins",
        _ => "Realm options",
    };
    Some(page(title, Some(sess), msg, &body))
}

fn home(app: &App, admin: &Admin) -> String {
    let cfg = app.runtime.config();
    let m = app.runtime.management();
    let sessions = m.sessions();
    let mine = sessions.iter().filter(|s| admin.may_see(&s.realm)).count();
    let rows = vec![
        vec!["Version".into(), escape(env!("CARGO_PKG_VERSION"))],
        vec!["Server name".into(), escape(cfg.server_name.as_deref().unwrap_or(""))],
        vec!["Default realm".into(), escape(&cfg.realm)],
        vec!["Uptime (s)".into(), app.runtime.uptime_secs().to_string()],
        vec![if admin.is_superuser() { "Sessions" } else { "Sessions in your realm" }.into(), mine.to_string()],
        vec!["Draining".into(), if m.draining() { "yes" } else { "no" }.into()],
        vec!["User database".into(), if app.db.configured() { "configured" } else { "none" }.into()],
    ];
    table(&["", ""], &rows)
}

fn toggle_value(cfg: &Config, name: &str) -> bool {
    match name {
        "stun-only" => cfg.stun_only,
        "no-stun" => cfg.no_stun,
        "secure-stun" => cfg.secure_stun,
        "no-udp-relay" => cfg.no_udp_relay,
        "no-tcp-relay" => cfg.no_tcp_relay,
        "no-multicast-peers" => cfg.no_multicast_peers,
        "allow-loopback-peers" => cfg.allow_loopback_peers,
        "mobility" => cfg.mobility,
        _ => false,
    }
}

fn changeable_value(cfg: &Config, name: &str) -> String {
    match name {
        "total-quota" => cfg.total_quota.to_string(),
        "user-quota" => cfg.user_quota.to_string(),
        "max-bps" => cfg.max_bps.to_string(),
        "bps-capacity" => cfg.bps_capacity.to_string(),
        "cli-max-output-sessions" => cfg.cli_max_output_sessions.to_string(),
        _ => String::new(),
    }
}

fn config_page(app: &App, sess: &Session) -> String {
    let cfg = app.runtime.config();
    let ips = |v: &[std::net::IpAddr]| escape(&v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
    let yes = |b: bool| if b { "on" } else { "off" }.to_string();
    let info = vec![
        vec!["listening-ip".into(), ips(&cfg.listening_ips)],
        vec!["listening-port".into(), cfg.listening_port.to_string()],
        vec!["tls-listening-port".into(), cfg.tls_listening_port.to_string()],
        vec!["relay-ip".into(), ips(&cfg.relay_ips)],
        vec!["min-port / max-port".into(), format!("{} / {}", cfg.min_port, cfg.max_port)],
        vec!["realm".into(), escape(&cfg.realm)],
        vec!["lt-cred-mech".into(), yes(cfg.lt_cred_mech)],
        vec!["use-auth-secret".into(), yes(cfg.use_auth_secret)],
        vec!["no-auth".into(), yes(cfg.no_auth)],
        vec!["no-udp / no-tcp / no-tls / dtls".into(), format!("{} / {} / {} / {}", yes(cfg.no_udp), yes(cfg.no_tcp), yes(cfg.no_tls), yes(cfg.dtls))],
        vec!["fingerprint".into(), yes(cfg.fingerprint)],
        vec!["stale-nonce".into(), cfg.stale_nonce.to_string()],
        vec!["max-allocate-lifetime".into(), cfg.max_allocate_lifetime.to_string()],
        vec!["channel-lifetime".into(), cfg.channel_lifetime.to_string()],
        vec!["permission-lifetime".into(), cfg.permission_lifetime.to_string()],
    ];
    let mut s = table(&["Option", "Value"], &info);
    s.push_str("<h3>Toggles</h3>");
    let rows: Vec<Vec<String>> = TOGGLES
        .iter()
        .map(|t| vec![escape(t), yes(toggle_value(&cfg, t)), button(sess, "/toggle", "Toggle", &[("opt", t)])])
        .collect();
    s.push_str(&table(&["Option", "Value", ""], &rows));
    s.push_str("<h3>Values</h3>");
    let rows: Vec<Vec<String>> = CHANGEABLE
        .iter()
        .map(|c| {
            let form = format!(
                "<form class=\"inline\" method=\"post\" action=\"/update\">{}<input type=\"hidden\" name=\"opt\" value=\"{}\">\
                 <input type=\"text\" name=\"value\" value=\"{}\" size=\"12\"> <input type=\"submit\" value=\"Set\"></form>",
                csrf_field(sess),
                escape(c),
                escape(&changeable_value(&cfg, c))
            );
            vec![escape(c), form]
        })
        .collect();
    s.push_str(&table(&["Option", "Value"], &rows));
    s
}

fn toggle(app: &App, opt: &str) -> Result<String, String> {
    let on = app.runtime.toggle(opt)?;
    Ok(format!("{opt} is now {}", if on { "on" } else { "off" }))
}

fn update(app: &App, opt: &str, value: &str) -> Result<String, String> {
    app.runtime.change(opt, value)?;
    Ok(format!("{opt} set to {value}"))
}

fn human_bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} B"),
        10_000..=9_999_999 => format!("{} KB", n / 1000),
        _ => format!("{} MB", n / 1_000_000),
    }
}

fn sessions_page(app: &App, sess: &Session, req: &Request) -> String {
    let realm = list_realm(&sess.admin, req);
    let user = req.param("user").unwrap_or("").trim().to_string();
    let all = app.runtime.management().sessions();
    let shown: Vec<_> = all
        .iter()
        .filter(|s| sess.admin.may_see(&s.realm))
        .filter(|s| realm.as_deref().is_none_or(|r| s.realm == r))
        .filter(|s| user.is_empty() || s.username == user)
        .collect();
    let mut s = String::from("<form method=\"get\" action=\"/ps\">");
    if sess.admin.is_superuser() {
        s.push_str(&input("realm", "Realm", realm.as_deref().unwrap_or(""), "text"));
    }
    s.push_str(&input("user", "User", &user, "text"));
    s.push_str("<input type=\"submit\" value=\"Filter\"></form>");
    s.push_str(&format!("<p>{} session(s)</p>", shown.len()));
    let rows: Vec<Vec<String>> = shown
        .iter()
        .take(MAX_LISTED)
        .map(|x| {
            let relays = x.relays.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" ");
            let peers = x.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ");
            let id = x.session_id.to_string();
            vec![
                escape(&id),
                escape(&x.username),
                escape(&x.realm),
                escape(&x.origin),
                format!("{}{}", x.transport.label(), if x.tcp_relay { " (TCP relay)" } else { "" }),
                escape(&x.client.to_string()),
                escape(&relays),
                format!("{} s", x.age_secs),
                format!("{} s", x.expires_in_secs),
                format!("{} / {}", human_bytes(x.client_usage.rb), human_bytes(x.client_usage.sb)),
                escape(&peers),
                button(sess, "/cs", "Cancel", &[("sid", &id)]),
            ]
        })
        .collect();
    s.push_str(&table(&["Id", "User", "Realm", "Origin", "Transport", "Client", "Relay", "Age", "Expires in", "Client rx / tx", "Peers", ""], &rows));
    s
}

fn cancel(app: &App, admin: &Admin, sid: &str) -> Result<String, String> {
    let id: u64 = sid.parse().map_err(|_| format!("not a session id: {sid}"))?;
    let m = app.runtime.management();
    let found = m.sessions().into_iter().find(|s| s.session_id == id);
    match found {
        Some(s) if admin.may_see(&s.realm) => {
            if m.cancel(id) {
                Ok(format!("session {id} cancelled"))
            } else {
                Err(format!("session {id} is gone"))
            }
        }
        _ => Err(format!("no session {id}")),
    }
}

fn users_page(app: &App, sess: &Session, req: &Request) -> String {
    let realm = list_realm(&sess.admin, req);
    let mut s = add_form(sess, "/us/add", "Add a user", &[input("name", "Name", "", "text"), input("password", "Password", "", "password")], &app.runtime.config().realm);
    match app.db.call(|db| async move { db.list_users(realm.as_deref()).await }) {
        Ok(users) => {
            let rows: Vec<Vec<String>> = users
                .iter()
                .filter(|(_, r)| sess.admin.may_see(r))
                .map(|(n, r)| vec![escape(n), escape(r), button(sess, "/us/del", "Delete", &[("name", n), ("realm", r)])])
                .collect();
            s.push_str(&table(&["Name", "Realm", ""], &rows));
        }
        Err(e) => s.push_str(&format!("<p>Cannot list users: {}</p>", escape(&e))),
    }
    s
}

fn add_form(sess: &Session, action: &str, legend: &str, fields: &[String], default_realm: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\"><fieldset><legend>{}</legend>{}{}{}<input type=\"submit\" value=\"Add\"></fieldset></form>",
        escape(legend),
        csrf_field(sess),
        realm_input(sess, default_realm),
        fields.concat()
    )
}

fn add_user(app: &App, admin: &Admin, realm: &str, name: &str, password: &str) -> Result<String, String> {
    let realm = target_realm(admin, realm, &app.runtime.config())?;
    check_text("name", name)?;
    if password.is_empty() || password.len() > 512 {
        return Err("a password (at most 512 bytes) is required".into());
    }
    let key = crate::admin::hash::hex(&crate::stun::integrity::long_term_key(name, &realm, password));
    let (r, n) = (realm.clone(), name.to_string());
    app.db.call(|db| async move { db.set_user_key(&r, &n, &key).await })?;
    Ok(format!("user {name} added to realm {realm}"))
}

fn del_user(app: &App, admin: &Admin, realm: &str, name: &str) -> Result<String, String> {
    let realm = target_realm(admin, realm, &app.runtime.config())?;
    check_text("name", name)?;
    let (r, n) = (realm.clone(), name.to_string());
    app.db.call(|db| async move { db.delete_user(&r, &n).await })?;
    Ok(format!("user {name} deleted from realm {realm}"))
}

fn secrets_page(app: &App, sess: &Session, req: &Request) -> String {
    let realm = list_realm(&sess.admin, req);
    let mut s = add_form(sess, "/ss/add", "Add a shared secret", &[input("secret", "Secret", "", "text")], &app.runtime.config().realm);
    match app.db.call(|db| async move { db.list_secrets(realm.as_deref()).await }) {
        Ok(list) => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .filter(|(_, r)| sess.admin.may_see(r))
                .map(|(v, r)| vec![escape(v), escape(r), button(sess, "/ss/del", "Delete", &[("secret", v), ("realm", r)])])
                .collect();
            s.push_str(&table(&["Secret", "Realm", ""], &rows));
        }
        Err(e) => s.push_str(&format!("<p>Cannot list secrets: {}</p>", escape(&e))),
    }
    s
}

fn secret(app: &App, admin: &Admin, realm: &str, value: &str, add: bool) -> Result<String, String> {
    let realm = target_realm(admin, realm, &app.runtime.config())?;
    check_text("secret", value)?;
    let (r, v) = (realm.clone(), value.to_string());
    if add {
        app.db.call(|db| async move { db.add_secret(&r, &v).await })?;
        Ok(format!("secret added to realm {realm}"))
    } else {
        app.db.call(|db| async move { db.delete_secret(&r, &v).await })?;
        Ok(format!("secret deleted from realm {realm}"))
    }
}

fn origins_page(app: &App, sess: &Session, req: &Request) -> String {
    let realm = list_realm(&sess.admin, req);
    let mut s = add_form(sess, "/os/add", "Add an origin", &[input("origin", "Origin", "", "text")], &app.runtime.config().realm);
    match app.db.call(|db| async move { db.list_origins(realm.as_deref()).await }) {
        Ok(list) => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .filter(|(_, r)| sess.admin.may_see(r))
                .map(|(o, r)| vec![escape(o), escape(r), button(sess, "/os/del", "Delete", &[("origin", o)])])
                .collect();
            s.push_str(&table(&["Origin", "Realm", ""], &rows));
        }
        Err(e) => s.push_str(&format!("<p>Cannot list origins: {}</p>", escape(&e))),
    }
    s
}

fn add_origin(app: &App, admin: &Admin, realm: &str, origin: &str) -> Result<String, String> {
    let realm = target_realm(admin, realm, &app.runtime.config())?;
    check_text("origin", origin)?;
    let o = crate::admin::origin::canonical_origin(origin);
    let (r, o2) = (realm.clone(), o.clone());
    app.db.call(|db| async move { db.add_origin(&o2, &r).await })?;
    Ok(format!("origin {o} added to realm {realm}"))
}

fn del_origin(app: &App, admin: &Admin, origin: &str) -> Result<String, String> {
    check_text("origin", origin)?;
    let o = origin.to_string();
    let owner = app.db.call(|db| async move { db.list_origins(None).await })?.into_iter().find(|(x, _)| *x == o).map(|(_, r)| r);
    match owner {
        Some(r) if admin.may_see(&r) => {
            let o = origin.to_string();
            app.db.call(|db| async move { db.delete_origin(&o).await })?;
            Ok(format!("origin {origin} deleted"))
        }
        _ => Err(format!("no origin {origin}")),
    }
}

fn realm_options_page(app: &App, sess: &Session, req: &Request) -> String {
    let realm = list_realm(&sess.admin, req);
    let opts: String = REALM_OPTIONS.iter().map(|o| format!("<option value=\"{o}\">{o}</option>")).collect();
    let mut s = format!(
        "<form method=\"post\" action=\"/ro/set\"><fieldset><legend>Set a realm option (0 removes it)</legend>{}{}\
         <select name=\"opt\">{opts}</select> {}<input type=\"submit\" value=\"Set\"></fieldset></form>",
        csrf_field(sess),
        realm_input(sess, &app.runtime.config().realm),
        input("value", "Value", "", "text")
    );
    match app.db.call(|db| async move { db.list_realm_options(realm.as_deref()).await }) {
        Ok(list) => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .filter(|o| sess.admin.may_see(&o.realm))
                .map(|o| vec![escape(&o.realm), escape(&o.opt), escape(&o.value)])
                .collect();
            s.push_str(&table(&["Realm", "Option", "Value"], &rows));
        }
        Err(e) => s.push_str(&format!("<p>Cannot list realm options: {}</p>", escape(&e))),
    }
    s
}

fn realm_option(app: &App, admin: &Admin, realm: &str, opt: &str, value: &str) -> Result<String, String> {
    let realm = target_realm(admin, realm, &app.runtime.config())?;
    if !REALM_OPTIONS.contains(&opt) {
        return Err(format!("unknown realm option: {opt}"));
    }
    let n: u64 = value.parse().map_err(|_| format!("{opt}: not a number: {value}"))?;
    let (r, o, v) = (realm.clone(), opt.to_string(), n.to_string());
    app.db.call(|db| async move { db.set_realm_option(&r, &o, &v).await })?;
    Ok(format!("{opt} of realm {realm} set to {n}"))
}

/// The `as_rs_alg` values the add form offers (coturn's two).
const OAUTH_ALGS: &[&str] = &["A256GCM", "A128GCM"];

fn oauth_page(app: &App, sess: &Session) -> String {
    let algs: String = OAUTH_ALGS.iter().map(|a| format!("<option value=\"{a}\">{a}</option>")).collect();
    let mut s = format!(
        "<form method=\"post\" action=\"/oauth/add\"><fieldset><legend>Add an oAuth key</legend>{}{}{}<br>{}{}\
         <label>as_rs_alg <select name=\"as_rs_alg\">{algs}</select></label> {}<input type=\"submit\" value=\"Add\"></fieldset></form>",
        csrf_field(sess),
        input("kid", "kid", "", "text"),
        input("ikm_key", "ikm_key (base64)", "", "text"),
        input("timestamp", "timestamp", "0", "text"),
        input("lifetime", "lifetime", "0", "text"),
        input("realm", "realm", "", "text")
    );
    match app.db.call(|db| async move { db.list_oauth_keys().await }) {
        Ok(keys) => {
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        escape(&k.kid),
                        escape(&k.ikm_key),
                        k.timestamp.to_string(),
                        k.lifetime.to_string(),
                        escape(&k.as_rs_alg),
                        escape(&k.realm),
                        button(sess, "/oauth/del", "Delete", &[("kid", &k.kid)]),
                    ]
                })
                .collect();
            s.push_str(&table(&["kid", "ikm_key", "timestamp", "lifetime", "as_rs_alg", "realm", ""], &rows));
        }
        Err(e) => s.push_str(&format!("<p>Cannot list oAuth keys: {}</p>", escape(&e))),
    }
    s
}

/// A non-negative integer form field that fits `max` (the SQL column); an
/// empty field is 0, the form's default.
fn non_negative(what: &str, v: &str, max: u64) -> Result<u64, String> {
    if v.is_empty() {
        return Ok(0);
    }
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("{what} must be a whole number from 0 to {max}, not {v}")),
    }
}

/// The `oauth_key` row the add form describes, checked so the server can
/// use it (`OauthKey::from_row` accepts it) and every backend can store it
/// (coturn's column sizes: kid 128, ikm_key 256, realm 127).
fn oauth_row(kid: &str, ikm_key: &str, timestamp: &str, lifetime: &str, as_rs_alg: &str, realm: &str) -> Result<OauthKeyRow, String> {
    check_text("kid", kid)?;
    if kid.len() > 128 {
        return Err("kid is longer than 128 bytes".into());
    }
    let min = match as_rs_alg {
        "A256GCM" => 32,
        "A128GCM" => 16,
        _ => return Err(format!("as_rs_alg must be A256GCM or A128GCM, not {as_rs_alg}")),
    };
    if ikm_key.is_empty() {
        return Err("ikm_key is required".into());
    }
    if ikm_key.len() > 256 {
        return Err("ikm_key is longer than 256 characters".into());
    }
    let ikm = base64::engine::general_purpose::STANDARD.decode(ikm_key).map_err(|_| "ikm_key is not valid base64".to_string())?;
    if ikm.len() < min {
        return Err(format!("ikm_key decodes to {} bytes; {as_rs_alg} needs at least {min}", ikm.len()));
    }
    let timestamp = non_negative("timestamp", timestamp, i64::MAX as u64)?;
    let lifetime = non_negative("lifetime", lifetime, i32::MAX as u64)?;
    if realm.len() > 127 || realm.chars().any(char::is_control) {
        return Err("realm is too long or has control characters".into());
    }
    let row = OauthKeyRow {
        kid: kid.to_string(),
        ikm_key: ikm_key.to_string(),
        timestamp,
        lifetime: u32::try_from(lifetime).map_err(|_| "lifetime is too large".to_string())?,
        as_rs_alg: as_rs_alg.to_string(),
        realm: realm.to_string(),
    };
    OauthKey::from_row(&row)?;
    Ok(row)
}

fn add_oauth_key(app: &App, form: &[(String, String)]) -> Result<String, String> {
    let f = |k: &str| field(form, k).unwrap_or("").trim();
    let row = oauth_row(f("kid"), f("ikm_key"), f("timestamp"), f("lifetime"), f("as_rs_alg"), f("realm"))?;
    let kid = row.kid.clone();
    let k = kid.clone();
    let existed = app.db.call(|db| async move { db.get_oauth_key(&k).await })?.is_some();
    app.db.call(|db| async move { db.set_oauth_key(&row).await })?;
    Ok(format!("oAuth key {kid} {}", if existed { "replaced" } else { "added" }))
}

fn del_oauth_key(app: &App, kid: &str) -> Result<String, String> {
    check_text("kid", kid)?;
    let k = kid.to_string();
    if app.db.call(|db| async move { db.get_oauth_key(&k).await })?.is_none() {
        return Err(format!("no oAuth key {kid}"));
    }
    let k = kid.to_string();
    app.db.call(|db| async move { db.delete_oauth_key(&k).await })?;
    Ok(format!("oAuth key {kid} deleted"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn realm_admins_are_held_to_their_realm() {
        let cfg = Config { realm: "default.org".into(), ..Config::default() };
        let ra = Admin { name: "r".into(), realm: "a.org".into() };
        let su = Admin { name: "s".into(), realm: String::new() };
        assert_eq!(target_realm(&ra, "", &cfg).unwrap(), "a.org");
        assert_eq!(target_realm(&ra, "a.org", &cfg).unwrap(), "a.org");
        assert!(target_realm(&ra, "b.org", &cfg).is_err());
        assert_eq!(target_realm(&su, "b.org", &cfg).unwrap(), "b.org");
        assert_eq!(target_realm(&su, "", &cfg).unwrap(), "default.org");
        let no_realm = Config { realm: String::new(), ..Config::default() };
        assert!(target_realm(&su, "", &no_realm).is_err());
    }

    #[test]
    fn text_checks() {
        assert!(check_text("name", "bob").is_ok());
        assert!(check_text("name", "").is_err());
        assert!(check_text("name", "a\nb").is_err());
        assert!(check_text("name", &"x".repeat(600)).is_err());
    }

    #[test]
    fn oauth_key_input_checks() {
        let b32 = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="; // 32 bytes
        let b16 = "MTIzNDU2Nzg5MDEyMzQ1Ng=="; // 16 bytes
        let row = oauth_row("north", b32, "0", "0", "A256GCM", "example.org").unwrap();
        assert_eq!(
            row,
            OauthKeyRow { kid: "north".into(), ikm_key: b32.into(), timestamp: 0, lifetime: 0, as_rs_alg: "A256GCM".into(), realm: "example.org".into() }
        );
        let row = oauth_row("k", b16, "1700000000", "3600", "A128GCM", "").unwrap();
        assert_eq!((row.timestamp, row.lifetime, row.realm.as_str()), (1_700_000_000, 3600, ""));
        // Empty numbers are the form's default, 0.
        let row = oauth_row("k", b32, "", "", "A128GCM", "").unwrap();
        assert_eq!((row.timestamp, row.lifetime), (0, 0));

        let err = |r: Result<OauthKeyRow, String>| r.unwrap_err();
        assert!(err(oauth_row("", b32, "0", "0", "A256GCM", "")).contains("kid is required"));
        assert!(err(oauth_row("a\u{7}b", b32, "0", "0", "A256GCM", "")).contains("control"));
        assert!(err(oauth_row(&"k".repeat(129), b32, "0", "0", "A256GCM", "")).contains("128"));
        assert!(err(oauth_row("k", "", "0", "0", "A256GCM", "")).contains("ikm_key is required"));
        assert!(err(oauth_row("k", "not base64!", "0", "0", "A256GCM", "")).contains("not valid base64"));
        assert!(err(oauth_row("k", "MTIzNDU2Nzg5MDEyMzQ1Ng", "0", "0", "A128GCM", "")).contains("not valid base64"), "padding is required");
        assert!(err(oauth_row("k", b16, "0", "0", "A256GCM", "")).contains("16 bytes; A256GCM needs at least 32"));
        assert!(err(oauth_row("k", "MTIzNDU2Nzg5MDEyMzQ1", "0", "0", "A128GCM", "")).contains("needs at least 16"));
        assert!(err(oauth_row("k", &"QUFB".repeat(65), "0", "0", "A256GCM", "")).contains("256"));
        assert!(err(oauth_row("k", b32, "-1", "0", "A256GCM", "")).contains("timestamp must be a whole number"));
        assert!(err(oauth_row("k", b32, "1.5", "0", "A256GCM", "")).contains("timestamp"));
        assert!(err(oauth_row("k", b32, "99999999999999999999", "0", "A256GCM", "")).contains("timestamp"));
        assert!(err(oauth_row("k", b32, "0", "-5", "A256GCM", "")).contains("lifetime must be a whole number"));
        assert!(err(oauth_row("k", b32, "0", "abc", "A256GCM", "")).contains("lifetime"));
        assert!(err(oauth_row("k", b32, "0", "2147483648", "A256GCM", "")).contains("lifetime"));
        assert!(err(oauth_row("k", b32, "0", "0", "", "")).contains("A256GCM or A128GCM"));
        assert!(err(oauth_row("k", b32, "0", "0", "a256gcm", "")).contains("A256GCM or A128GCM"));
        assert!(err(oauth_row("k", b32, "0", "0", "A256GCM", &"r".repeat(128))).contains("realm"));
        assert!(err(oauth_row("k", b32, "0", "0", "A256GCM", "a\nb")).contains("realm"));
    }
}
