//! The exporter's HTTP/1.1: one request per connection, answered and closed.
//! Scrapes come every few seconds at most, so nothing here is fast, only
//! bounded: the request head is at most [`MAX_HEAD`] bytes, a body (only
//! ever read to be discarded) at most [`MAX_BODY`], and the caller puts
//! read and write timeouts on the socket.
//!
//! Answers as coturn 4.17: a method other than GET is 405 `method not
//! allowed` (checked first), the scrape path is 200 with the metrics, `/` is
//! 200 `ok` (a health check), anything else is 404 `not found`.

use std::io::{self, Read, Write};

/// Longest request line plus headers we read.
pub const MAX_HEAD: usize = 8192;
/// Longest request body we read (and discard) so the answer is not lost to a
/// reset when the socket closes with unread data.
pub const MAX_BODY: usize = 65536;

/// What a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Health,
    NotFound,
    MethodNotAllowed,
    BadRequest,
    HeadTooLarge,
}

/// The route for `method` and `target` (query string ignored).
pub fn route(method: &str, target: &str, metrics_path: &str) -> Route {
    if method != "GET" {
        return Route::MethodNotAllowed;
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == metrics_path {
        Route::Metrics
    } else if path == "/" {
        Route::Health
    } else {
        Route::NotFound
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    method: String,
    target: String,
    content_length: usize,
    /// Body bytes read along with the head.
    body_read: usize,
}

/// Why no route could be chosen from the bytes read.
enum HeadError {
    Bad,
    TooLarge,
    /// The peer closed or timed out before a whole head: nothing to answer.
    Gone,
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
}

fn read_head<R: Read>(r: &mut R) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(end) = find_end(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match r.read(&mut chunk) {
            Ok(0) => return Err(if buf.is_empty() { HeadError::Gone } else { HeadError::Bad }),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadError::Gone),
        }
    };
    if end > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Bad)?;
    let mut lines = text.lines();
    let mut parts = lines.next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(HeadError::Bad);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HeadError::Bad);
    }
    let mut content_length = 0;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().map_err(|_| HeadError::Bad)?;
            }
        }
    }
    Ok(Head { method: method.to_string(), target: target.to_string(), content_length, body_read: buf.len() - end })
}

/// Read and drop what is left of a small body.
fn discard_body<R: Read>(r: &mut R, mut left: usize) {
    let mut chunk = [0u8; 4096];
    while left > 0 {
        match r.read(&mut chunk[..left.min(4096)]) {
            Ok(0) | Err(_) => return,
            Ok(n) => left -= n,
        }
    }
}

fn status_line(route: Route) -> &'static str {
    match route {
        Route::Metrics | Route::Health => "200 OK",
        Route::NotFound => "404 Not Found",
        Route::MethodNotAllowed => "405 Method Not Allowed",
        Route::BadRequest => "400 Bad Request",
        Route::HeadTooLarge => "431 Request Header Fields Too Large",
    }
}

/// Write a whole answer (the connection closes after it).
fn write_answer<W: Write>(w: &mut W, route: Route, content_type: &str, body: &[u8]) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status_line(route),
        body.len()
    );
    if route == Route::MethodNotAllowed {
        head.push_str("Allow: GET\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Serve one request on `s`: `metrics_path` is the scrape path, `scrape`
/// produces the metrics (called only for a scrape). Returns the route taken,
/// `None` when the peer went away before sending a request.
pub fn serve<S: Read + Write>(s: &mut S, metrics_path: &str, scrape: impl FnOnce() -> (String, &'static str)) -> io::Result<Option<Route>> {
    let route = match read_head(s) {
        Ok(head) => {
            if head.content_length > head.body_read && head.content_length <= MAX_BODY {
                discard_body(s, head.content_length - head.body_read);
            }
            route(&head.method, &head.target, metrics_path)
        }
        Err(HeadError::Gone) => return Ok(None),
        Err(HeadError::Bad) => Route::BadRequest,
        Err(HeadError::TooLarge) => Route::HeadTooLarge,
    };
    match route {
        Route::Metrics => {
            let (body, content_type) = scrape();
            write_answer(s, route, content_type, body.as_bytes())?;
        }
        Route::Health => write_answer(s, route, "text/plain", b"ok")?,
        Route::NotFound => write_answer(s, route, "text/plain", b"not found")?,
        Route::MethodNotAllowed => write_answer(s, route, "text/plain", b"method not allowed")?,
        Route::BadRequest => write_answer(s, route, "text/plain", b"bad request")?,
        Route::HeadTooLarge => write_answer(s, route, "text/plain", b"request header too large")?,
    }
    Ok(Some(route))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection: reads from `input`, collects what is written.
    struct Duplex {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn exchange(request: &[u8]) -> (Option<Route>, String) {
        let mut d = Duplex { input: io::Cursor::new(request.to_vec()), output: Vec::new() };
        let r = serve(&mut d, "/metrics", || ("m 1\n".to_string(), "text/plain; version=0.0.4")).expect("served");
        (r, String::from_utf8(d.output).expect("UTF-8 answer"))
    }

    #[test]
    fn routes_as_coturn() {
        assert_eq!(route("GET", "/metrics", "/metrics"), Route::Metrics);
        assert_eq!(route("GET", "/metrics?x=1", "/metrics"), Route::Metrics);
        assert_eq!(route("GET", "/", "/metrics"), Route::Health);
        assert_eq!(route("GET", "/metricsx", "/metrics"), Route::NotFound);
        assert_eq!(route("POST", "/metrics", "/metrics"), Route::MethodNotAllowed);
        assert_eq!(route("HEAD", "/", "/metrics"), Route::MethodNotAllowed);
        // A scrape path of "/" takes precedence over the health check.
        assert_eq!(route("GET", "/", "/"), Route::Metrics);
    }

    #[test]
    fn answers() {
        let (r, out) = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r, Some(Route::Metrics));
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Type: text/plain; version=0.0.4\r\n"), "{out}");
        assert!(out.contains("Content-Length: 4\r\n") && out.ends_with("\r\n\r\nm 1\n"), "{out}");
        let (_, out) = exchange(b"GET / HTTP/1.0\n\n");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nok"), "{out}");
        let (_, out) = exchange(b"GET /nope HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n") && out.ends_with("not found"), "{out}");
        let (_, out) = exchange(b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert!(out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n") && out.contains("Allow: GET\r\n"), "{out}");
    }

    #[test]
    fn bad_and_oversized_requests() {
        assert!(exchange(b"GET\r\n\r\n").1.starts_with("HTTP/1.1 400 "));
        assert!(exchange(b"GET / SPDY/3\r\n\r\n").1.starts_with("HTTP/1.1 400 "));
        assert!(exchange(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").1.starts_with("HTTP/1.1 400 "));
        assert!(exchange(b"\xff\xfe / HTTP/1.1\r\n\r\n").1.starts_with("HTTP/1.1 400 "));
        // Incomplete head, then EOF.
        assert!(exchange(b"GET / HTTP/1.1\r\nHost").1.starts_with("HTTP/1.1 400 "));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert!(exchange(&big).1.starts_with("HTTP/1.1 431 "));
        // Nothing sent at all: nothing answered.
        assert_eq!(exchange(b""), (None, String::new()));
    }
}
