//! The small HTTP/1.1 subset the web admin speaks: one request per
//! connection, a bounded head and body, urlencoded forms, cookies, and
//! responses that always close. Also the HTML escaping every page uses.
//!
//! Bounded on purpose: the listener is reachable by anyone who can reach the
//! admin port, before any logon.

use std::io::{self, Read};

/// The most a request head (request line and headers) may take.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most a request body may take (the forms are small).
pub const MAX_BODY: usize = 64 * 1024;

/// A parsed request.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request could not be read; the status to answer with, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Closed, timed out, or an I/O error: nothing to answer.
    Gone,
    /// Answer with this status and close.
    Bad(u16),
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A cookie sent with the request.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The urlencoded form fields of a POST body.
    pub fn form(&self) -> Vec<(String, String)> {
        parse_urlencoded(&String::from_utf8_lossy(&self.body))
    }

    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        field(&self.query, name)
    }
}

/// The first value of `name` in decoded fields.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Read one request from `r`, starting with bytes already read (`prefix`).
pub fn read_request(r: &mut impl Read, prefix: &[u8]) -> Result<Request, ReadError> {
    let mut buf = prefix.to_vec();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            // A head read whole in one go is held to the same limit.
            if end + 4 > MAX_HEAD {
                return Err(ReadError::Bad(431));
            }
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(431));
        }
        read_some(r, &mut buf)?;
    };
    let mut req = parse_head(&buf[..head_end])?;
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v.trim().parse::<usize>().map_err(|_| ReadError::Bad(400))?,
    };
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(411));
    }
    if len > MAX_BODY {
        return Err(ReadError::Bad(413));
    }
    let mut body = buf.split_off(head_end);
    while body.len() < len {
        read_some(r, &mut body)?;
    }
    body.truncate(len);
    req.body = body;
    Ok(req)
}

fn read_some(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Err(ReadError::Gone),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Gone),
        }
    }
}

/// Parse the request line and headers.
pub fn parse_head(head: &[u8]) -> Result<Request, ReadError> {
    let text = std::str::from_utf8(head).map_err(|_| ReadError::Bad(400))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(ReadError::Bad(400));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(ReadError::Bad(400));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l.split_once(':').ok_or(ReadError::Bad(400))?;
        if headers.len() >= 64 {
            return Err(ReadError::Bad(431));
        }
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        path: percent_decode(path, false),
        query: parse_urlencoded(query),
        headers,
        body: Vec::new(),
    })
}

/// `a=1&b=x+y%21` into decoded pairs (at most 64 of them).
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .take(64)
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Decode `%XX` (and `+` as space in forms); invalid escapes stay as they are.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `%XX`-encode for a query string value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escape text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A response; always `Connection: close`.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn html(status: u16, body: String) -> Self {
        Response { status, headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())], body }
    }

    /// 303 See Other to `to` (after a POST, so a reload does not resend it).
    pub fn redirect(to: &str) -> Self {
        Response { status: 303, headers: vec![("Location".into(), to.into())], body: String::new() }
    }

    pub fn error(status: u16) -> Self {
        let t = reason(status);
        Response::html(status, format!("<!DOCTYPE html><html><head><title>{status} {t}</title></head><body><h1>{status} {t}</h1></body></html>"))
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// The bytes on the wire, with the security headers every page gets:
    /// no caching, no framing, no scripts, forms only to this origin.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str(
            "Cache-Control: no-store\r\nX-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n\
             Referrer-Policy: no-referrer\r\n\
             Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'\r\n",
        );
        s.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()));
        s.push_str(&self.body);
        s.into_bytes()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_a_form_post() {
        let raw = b"POST /us?realm=a%20b HTTP/1.1\r\nHost: x\r\nCookie: a=1; tsid=abc\r\nContent-Length: 18\r\n\r\nname=bob&pw=x+y%21extra";
        let req = read_request(&mut &raw[..], b"").unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/us");
        assert_eq!(req.param("realm"), Some("a b"));
        assert_eq!(req.cookie("tsid"), Some("abc"));
        assert_eq!(req.cookie("nope"), None);
        let f = req.form();
        assert_eq!(field(&f, "name"), Some("bob"));
        assert_eq!(field(&f, "pw"), Some("x y!"));
        assert_eq!(req.body.len(), 18);
    }

    #[test]
    fn prefix_bytes_count() {
        let req = read_request(&mut &b"Host: x\r\n\r\n"[..], b"GET /home HTTP/1.1\r\n").unwrap();
        assert_eq!(req.path, "/home");
    }

    #[test]
    fn limits_and_garbage() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD + 10));
        assert_eq!(read_request(&mut big.as_bytes(), b"").unwrap_err(), ReadError::Bad(431));
        let body = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert_eq!(read_request(&mut body.as_bytes(), b"").unwrap_err(), ReadError::Bad(413));
        assert_eq!(read_request(&mut &b"GET /\r\n\r\n"[..], b"").unwrap_err(), ReadError::Bad(400));
        assert_eq!(read_request(&mut &b"GET http://x/ HTTP/1.1\r\n\r\n"[..], b"").unwrap_err(), ReadError::Bad(400));
        assert_eq!(read_request(&mut &b"POST / HTTP/1.1\r\nContent-Length: zz\r\n\r\n"[..], b"").unwrap_err(), ReadError::Bad(400));
        // Truncated body: the peer went away.
        assert_eq!(read_request(&mut &b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"[..], b"").unwrap_err(), ReadError::Gone);
        assert_eq!(read_request(&mut &b"GET / HT"[..], b"").unwrap_err(), ReadError::Gone);
    }

    #[test]
    fn decoding_is_lenient_and_safe() {
        assert_eq!(percent_decode("a%2", true), "a%2");
        assert_eq!(percent_decode("%", true), "%");
        assert_eq!(percent_decode("%zz%41", true), "%zzA");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(percent_decode(&percent_encode("x y&z=é"), false), "x y&z=é");
    }

    #[test]
    fn escapes_html() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn responses_close_and_carry_security_headers() {
        let r = String::from_utf8(Response::redirect("/home").with_header("Set-Cookie", "a=b").to_bytes()).unwrap();
        assert!(r.starts_with("HTTP/1.1 303 See Other\r\n"));
        assert!(r.contains("Location: /home\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.contains("Content-Security-Policy: default-src 'none'"));
        assert!(r.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
    }
}
