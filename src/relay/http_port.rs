//! HTTP arriving on a TURN TCP/TLS listener port.
//!
//! coturn shares its TURN ports with three HTTP uses: `--acme-redirect`
//! (answer `GET /.well-known/acme-challenge/<token>` with a 301 to
//! `<URL><token>`, so a certificate can be renewed without a web server on
//! port 80), `--web-admin-listen-on-workers` (HTTPS requests go to the web
//! admin) and `--respond-http-unsupported` (anything else gets a 400 instead of
//! a silent close). The relay thread only looks at a connection's first bytes
//! once ([`crate::tls::sniff`]), so STUN framing pays nothing for this; the
//! decision on the request head is made here, without I/O.

use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;
use std::sync::OnceLock;

/// What the operator asked for HTTP on the TURN ports.
#[derive(Debug, Clone, Default)]
pub struct HttpPortOptions {
    /// `--acme-redirect` URL prefix; empty = off.
    pub acme_redirect: String,
    /// `--respond-http-unsupported`.
    pub respond_unsupported: bool,
    /// `--web-admin-listen-on-workers` (and the web admin is on).
    pub web_admin: bool,
}

/// The most a request head may take before it is given up on.
pub const MAX_HEAD: usize = 4096;

/// What to do with an HTTP request on a TURN port.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpAction {
    /// The head is not complete yet.
    NeedMore,
    /// Send these bytes, then close.
    Respond(Vec<u8>),
    /// Give the connection to the web admin.
    HandOff,
    /// Close without an answer (coturn's default).
    Close,
}

/// Decide from the buffered bytes. `over_tls`: the request came inside TLS
/// (the web admin only speaks HTTPS).
pub fn decide(buf: &[u8], opts: &HttpPortOptions, over_tls: bool) -> HttpAction {
    let Some(end) = find_head_end(buf) else {
        return if buf.len() >= MAX_HEAD { unsupported(opts) } else { HttpAction::NeedMore };
    };
    let head = &buf[..end];
    if !opts.acme_redirect.is_empty() {
        if let Some(token) = acme_token(head) {
            return HttpAction::Respond(redirect(&opts.acme_redirect, token));
        }
    }
    if opts.web_admin && over_tls {
        return HttpAction::HandOff;
    }
    unsupported(opts)
}

fn unsupported(opts: &HttpPortOptions) -> HttpAction {
    if opts.respond_unsupported {
        let body = "<html><head><title>400 Bad Request</title></head><body><h1>400 Bad Request</h1>\
                    <p>This is a TURN server port.</p></body></html>";
        HttpAction::Respond(response("400 Bad Request", &[], body))
    } else {
        HttpAction::Close
    }
}

/// Where the head ends (after the blank line), if it is in `buf`.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

const ACME_PREFIX: &[u8] = b"GET /.well-known/acme-challenge/";

/// The challenge token of an ACME http-01 request line. As coturn: the
/// token is 10 to 99 characters of the base64url alphabet and the line ends
/// in `HTTP/1.x`; anything else is not redirected.
fn acme_token(head: &[u8]) -> Option<&str> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let rest = head[..line_end].strip_prefix(ACME_PREFIX)?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let (token, version) = rest.split_at(sp);
    if !(10..=99).contains(&token.len()) || !version.starts_with(b" HTTP/1.") {
        return None;
    }
    if !token.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    std::str::from_utf8(token).ok()
}

fn redirect(url: &str, token: &str) -> Vec<u8> {
    let body = "<html><head><title>301 Moved Permanently</title></head><body><h1>301 Moved Permanently</h1></body></html>";
    response("301 Moved Permanently", &[("Location", &format!("{url}{token}"))], body)
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

/// A TLS connection handed from a relay thread to the web admin: the socket
/// (switched to blocking by the receiver), its TLS state, and the plaintext
/// already read from it.
pub struct HandedConn {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    pub tls: Box<rustls::ServerConnection>,
    pub plaintext: Vec<u8>,
}

static WEB_ADMIN: OnceLock<SyncSender<HandedConn>> = OnceLock::new();

/// The web admin registers its queue here when it starts (once per process).
pub fn register_web_admin(tx: SyncSender<HandedConn>) -> bool {
    WEB_ADMIN.set(tx).is_ok()
}

/// Hand a connection to the web admin; gives it back when there is none or
/// its queue is full (the relay thread then closes it).
pub fn hand_off(conn: HandedConn) -> Result<(), HandedConn> {
    let Some(tx) = WEB_ADMIN.get() else { return Err(conn) };
    tx.try_send(conn).map_err(|e| match e {
        std::sync::mpsc::TrySendError::Full(c) | std::sync::mpsc::TrySendError::Disconnected(c) => c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(acme: &str, unsupported: bool, web: bool) -> HttpPortOptions {
        HttpPortOptions { acme_redirect: acme.into(), respond_unsupported: unsupported, web_admin: web }
    }

    fn text(a: HttpAction) -> String {
        match a {
            HttpAction::Respond(b) => String::from_utf8_lossy(&b).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn acme_challenge_is_redirected() {
        let req = b"GET /.well-known/acme-challenge/AbC-_123456789xyz HTTP/1.1\r\nHost: x\r\n\r\n";
        let t = text(decide(req, &opts("https://acme.example/c/", false, false), false));
        assert!(t.starts_with("HTTP/1.1 301 Moved Permanently\r\n"), "{t}");
        assert!(t.contains("\r\nLocation: https://acme.example/c/AbC-_123456789xyz\r\n"), "{t}");
        assert!(t.contains("Connection: close"));
    }

    #[test]
    fn bad_tokens_are_not_redirected() {
        let o = opts("https://acme.example/", false, false);
        for req in [
            &b"GET /.well-known/acme-challenge/short HTTP/1.1\r\n\r\n"[..],
            b"GET /.well-known/acme-challenge/abcdefghijk%2F.. HTTP/1.1\r\n\r\n",
            b"GET /.well-known/acme-challenge/abcdefghijklmnop FTP/1.1\r\n\r\n",
            b"POST /.well-known/acme-challenge/abcdefghijklmnop HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(decide(req, &o, false), HttpAction::Close, "{}", String::from_utf8_lossy(req));
        }
    }

    #[test]
    fn other_http_is_closed_or_400() {
        let req = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(decide(req, &opts("", false, false), false), HttpAction::Close);
        assert!(text(decide(req, &opts("", true, false), false)).starts_with("HTTP/1.1 400 Bad Request\r\n"));
        // Without acme-redirect a challenge is just HTTP.
        let acme = b"GET /.well-known/acme-challenge/abcdefghijklmnop HTTP/1.1\r\n\r\n";
        assert!(text(decide(acme, &opts("", true, false), false)).contains("400"));
    }

    #[test]
    fn web_admin_only_over_tls() {
        let req = b"GET /home HTTP/1.1\r\n\r\n";
        assert_eq!(decide(req, &opts("", false, true), true), HttpAction::HandOff);
        assert_eq!(decide(req, &opts("", false, true), false), HttpAction::Close);
    }

    #[test]
    fn incomplete_and_oversized_heads() {
        assert_eq!(decide(b"GET / HTTP/1.1\r\nHost:", &opts("", true, false), false), HttpAction::NeedMore);
        let big = vec![b'a'; MAX_HEAD];
        assert!(text(decide(&big, &opts("", true, false), false)).contains("400"));
        assert_eq!(decide(&big, &opts("", false, false), false), HttpAction::Close);
    }
}
