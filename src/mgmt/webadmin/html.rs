//! The page frame and form helpers. Every value shown goes through
//! [`escape`]; every form that changes something carries the session's CSRF
//! token. No scripts: plain forms and links, so the pages work everywhere
//! and the Content-Security-Policy can forbid scripts entirely.

use super::auth::{Admin, Session};
use super::http::escape;

const STYLE: &str = "body{font-family:sans-serif;margin:0;color:#222}\
header{background:#234;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}\
header a{color:#fff;text-decoration:none}header b{margin-right:16px}\
header form{margin-left:auto}main{padding:16px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;font-size:14px}\
th{background:#eee}.msg{background:#ffd;border:1px solid #cc8;padding:6px;margin:8px 0}\
form.inline{display:inline;margin:0}fieldset{margin:12px 0;max-width:760px}input{margin:2px}";

/// A full page: header with navigation (when logged on), then `body`.
pub fn page(title: &str, session: Option<&Session>, msg: Option<&str>, body: &str) -> String {
    let mut s = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{} - TURN Server</title><style>{STYLE}</style></head><body><header><b>TURN Server</b>",
        escape(title)
    );
    if let Some(sess) = session {
        for (href, label) in [("/home", "Home"), ("/pc", "Configuration"), ("/ps", "Sessions"), ("/us", "Users"), ("/ss", "Secrets"), ("/os", "Origins"), ("/ro", "Realm options"), ("/oauth", "oAuth keys")] {
            if matches!(href, "/pc" | "/oauth") && !sess.admin.is_superuser() {
                continue;
            }
            s.push_str(&format!("<a href=\"{href}\">{label}</a>"));
        }
        s.push_str(&format!(
            "<form method=\"post\" action=\"/logout\">{}{} <input type=\"submit\" value=\"Log out\"></form>",
            csrf_field(sess),
            admin_label(&sess.admin)
        ));
    }
    s.push_str("</header><main>");
    s.push_str(&format!("<h2>{}</h2>", escape(title)));
    if let Some(m) = msg.filter(|m| !m.is_empty()) {
        s.push_str(&format!("<div class=\"msg\">{}</div>", escape(m)));
    }
    s.push_str(body);
    s.push_str("</main></body></html>");
    s
}

fn admin_label(a: &Admin) -> String {
    if a.is_superuser() {
        format!("{} (superuser)", escape(&a.name))
    } else {
        format!("{} (realm {})", escape(&a.name), escape(&a.realm))
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(sess: &Session) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(&sess.csrf))
}

/// A one-button POST form with hidden fields.
pub fn button(sess: &Session, action: &str, label: &str, fields: &[(&str, &str)]) -> String {
    let mut s = format!("<form class=\"inline\" method=\"post\" action=\"{}\">{}", escape(action), csrf_field(sess));
    for (k, v) in fields {
        s.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)));
    }
    s.push_str(&format!("<input type=\"submit\" value=\"{}\"></form>", escape(label)));
    s
}

/// A table with a header row; cells are already HTML.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in headers {
        s.push_str(&format!("<th>{}</th>", escape(h)));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            s.push_str(&format!("<td>{c}</td>"));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// A text input.
pub fn input(name: &str, label: &str, value: &str, kind: &str) -> String {
    format!(
        "<label>{} <input type=\"{kind}\" name=\"{}\" value=\"{}\"></label> ",
        escape(label),
        escape(name),
        escape(value)
    )
}

/// The realm input of a form: editable for a superuser, fixed for a realm admin.
pub fn realm_input(sess: &Session, default: &str) -> String {
    if sess.admin.is_superuser() {
        input("realm", "Realm", default, "text")
    } else {
        format!("Realm <b>{}</b> ", escape(&sess.admin.realm))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::auth::Sessions;
    use super::*;

    #[test]
    fn values_are_escaped_and_forms_carry_the_token() {
        let s = Sessions::default();
        let now = std::time::Instant::now();
        let id = s.create(Admin { name: "<b>x</b>".into(), realm: "r\"".into() }, now);
        let sess = s.get(&id, now).unwrap();
        let p = page("T<", Some(&sess), Some("<script>"), &button(&sess, "/cs", "Cancel", &[("sid", "1\"><x")]));
        assert!(!p.contains("<script>"));
        assert!(!p.contains("<b>x</b>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.contains("value=\"1&quot;&gt;&lt;x\""));
        assert!(p.contains(&format!("name=\"csrf\" value=\"{}\"", sess.csrf)));
        // Realm admins get no configuration or oAuth key link.
        assert!(!p.contains("href=\"/pc\""));
        assert!(!p.contains("href=\"/oauth\""));
    }
}
