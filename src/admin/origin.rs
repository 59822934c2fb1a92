//! Canonical form of an ORIGIN value, as coturn stores and looks it up.
//!
//! coturn parses the origin as a strict RFC 3986 URI (libevent's
//! `evhttp_uri_parse`). When it has a scheme and a non-empty host, the
//! result is `scheme://host:port` in lower case, the port being the given
//! one, or when none (or 0) is given the scheme's default from a fixed
//! table; user info, path, query and fragment are dropped. A scheme without
//! a default port gives `scheme://host`. Anything else — no scheme, no
//! host, a malformed URI — is stored exactly as typed, case included.
//! Results are cut to 127 bytes (coturn's origin buffer).

use std::net::Ipv6Addr;

/// coturn's `STUN_MAX_ORIGIN_SIZE`.
const MAX_ORIGIN: usize = 127;

const SUB_DELIMS: &[u8] = b"!$&'()*+,;=";

/// The default port coturn assumes for `scheme` (lower case), or `None`.
pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "ftp" => 21,
        "svn" => 3690,
        "ssh" | "svn+ssh" => 22,
        "sip" => 5060,
        "sips" => 5061,
        "http" => 80,
        "https" => 443,
        "ldap" => 389,
        "ldaps" => 636,
        "turn" | "stun" => 3478,
        "turns" | "stuns" => 5349,
        "telnet" => 23,
        "radius" => 1645,
        _ => return None,
    })
}

/// The origin as coturn's turnadmin stores it and its server looks it up.
pub fn canonical_origin(origin: &str) -> String {
    let out = match parse(origin) {
        Some(u) if !u.host.is_empty() => {
            let scheme = u.scheme.to_ascii_lowercase();
            let port = u.port.filter(|p| *p > 0).or_else(|| default_port(&scheme));
            let rest = match port {
                Some(p) => format!("{}:{p}", u.host),
                None => u.host.to_string(),
            };
            format!("{scheme}://{}", rest.to_ascii_lowercase())
        }
        _ => origin.to_string(),
    };
    truncate(out, MAX_ORIGIN)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The parts of an absolute URI with an authority that matter here.
struct Uri<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

/// Strict parse of `scheme://authority[path][?query][#fragment]`; `None`
/// when there is no scheme, no `//`, or any part breaks RFC 3986.
fn parse(s: &str) -> Option<Uri<'_>> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let mut sb = scheme.bytes();
    if !sb.next()?.is_ascii_alphabetic()
        || !sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let after = s[colon + 1..].strip_prefix("//")?;
    let auth_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, tail) = after.split_at(auth_end);
    let (host, port) = parse_authority(authority)?;
    if !tail_ok(tail) {
        return None;
    }
    Some(Uri { scheme, host, port })
}

/// `[userinfo@]host[:port]` → (host, port). An empty port is no port; a
/// port above 65535 is an error.
fn parse_authority(a: &str) -> Option<(&str, Option<u16>)> {
    let hostport = match a.split_once('@') {
        Some((userinfo, hp)) => {
            if !chars_ok(userinfo, b":") {
                return None;
            }
            hp
        }
        None => a,
    };
    // The port is the run of digits at the end, if a colon precedes it.
    let digits = hostport
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .count();
    let split = hostport.len() - digits;
    let (host, port) = if split > 0 && hostport.as_bytes()[split - 1] == b':' {
        let p = &hostport[split..];
        let port = if p.is_empty() {
            None
        } else {
            let v: u32 = p.bytes().try_fold(0u32, |acc, b| {
                let v = acc * 10 + u32::from(b - b'0');
                (v <= 65535).then_some(v)
            })?;
            Some(u16::try_from(v).ok()?)
        };
        (&hostport[..split - 1], port)
    } else {
        (hostport, None)
    };
    let host_ok = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').is_some_and(bracket_ok),
        None => chars_ok(host, b""),
    };
    host_ok.then_some((host, port))
}

/// Inside `[...]`: an IPv6 address or an IPvFuture literal.
fn bracket_ok(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('v') {
        let Some((ver, addr)) = rest.split_once('.') else {
            return false;
        };
        return !ver.is_empty()
            && ver.bytes().all(|b| b.is_ascii_hexdigit())
            && !addr.is_empty()
            && addr
                .bytes()
                .all(|b| unreserved(b) || SUB_DELIMS.contains(&b) || b == b':');
    }
    s.parse::<Ipv6Addr>().is_ok()
}

/// Path, query and fragment characters (RFC 3986 `pchar`, plus `/`, and
/// `?` after the path).
fn tail_ok(tail: &str) -> bool {
    let (before_frag, frag) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    let (path, query) = match before_frag.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_frag, None),
    };
    chars_ok(path, b":@/")
        && query.is_none_or(|q| chars_ok(q, b":@/?"))
        && frag.is_none_or(|f| chars_ok(f, b":@/?"))
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// Every character unreserved, a sub-delimiter, in `extra`, or a `%XX` escape.
fn chars_ok(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if unreserved(c) || SUB_DELIMS.contains(&c) || extra.contains(&c) {
            i += 1;
        } else if c == b'%'
            && b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 3;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::canonical_origin as c;

    /// Input → what coturn 4.6.1's `turnadmin -O` stored (observed).
    #[test]
    fn matches_coturn() {
        let cases = [
            ("https://app.example.org", "https://app.example.org:443"),
            ("HTTP://App.Example.ORG", "http://app.example.org:80"),
            ("http://x.org:8080/path/a", "http://x.org:8080"),
            ("HTTPS://A.B:443/", "https://a.b:443"),
            ("https://a.b?q=1", "https://a.b:443"),
            ("https://a.b#f", "https://a.b:443"),
            ("Https://Mixed.case/path?x", "https://mixed.case:443"),
            ("https://[::1]", "https://[::1]:443"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            ("http://u:p@h.org", "http://h.org:80"),
            ("https://user@h", "https://h:443"),
            ("HTTPS://H.ORG:443@x", "https://x:443"),
            ("http://h:0", "http://h:80"),
            ("http://h.org:", "http://h.org:80"),
            ("https://H.ORG:0443", "https://h.org:443"),
            ("https://h:65535", "https://h:65535"),
            ("http://1.2.3.4", "http://1.2.3.4:80"),
            ("http://h_o.org", "http://h_o.org:80"),
            ("http://h.org..", "http://h.org..:80"),
            ("ftp://f.org", "ftp://f.org:21"),
            ("telnet://t", "telnet://t:23"),
            ("ssh://s", "ssh://s:22"),
            ("ldap://l", "ldap://l:389"),
            // No default port for the scheme: no port, still lower case.
            ("FOO://BAR", "foo://bar"),
            ("WS://W.S/x", "ws://w.s"),
            ("wss://w.s", "wss://w.s"),
            ("irc://i", "irc://i"),
            ("domain://d", "domain://d"),
            ("smtp://h", "smtp://h"),
            ("ht-tp://h", "ht-tp://h"),
            ("h+t.tp://h", "h+t.tp://h"),
            // Not parsed: stored as typed.
            ("X.ORG", "X.ORG"),
            ("x.org", "x.org"),
            ("http://", "http://"),
            ("nothing:", "nothing:"),
            ("http:/h", "http:/h"),
            ("1http://h", "1http://h"),
            ("http://h:abc", "http://h:abc"),
            ("https://h:65536", "https://h:65536"),
            ("http://h.org:-1", "http://h.org:-1"),
            ("https://h.org:+5", "https://h.org:+5"),
            ("http://h.org:80:90", "http://h.org:80:90"),
            ("http://[::1", "http://[::1"),
            ("http://h.org/%zz", "http://h.org/%zz"),
            ("http://a b", "http://a b"),
        ];
        for (input, want) in cases {
            assert_eq!(c(input), want, "input {input:?}");
        }
    }

    #[test]
    fn coturns_default_port_table() {
        for (scheme, port) in [
            ("svn", 3690),
            ("sip", 5060),
            ("sips", 5061),
            ("turn", 3478),
            ("stun", 3478),
            ("turns", 5349),
            ("stuns", 5349),
            ("ldaps", 636),
            ("radius", 1645),
            ("svn+ssh", 22),
        ] {
            assert_eq!(c(&format!("{scheme}://H")), format!("{scheme}://h:{port}"));
        }
    }

    #[test]
    fn ipvfuture_and_bad_brackets() {
        assert_eq!(c("http://[v1.fe:x]"), "http://[v1.fe:x]:80");
        assert_eq!(c("http://[zz]"), "http://[zz]");
        assert_eq!(c("http://[v.x]"), "http://[v.x]");
    }

    #[test]
    fn idempotent_and_bounded() {
        for o in [
            "https://app.example.org",
            "FOO://BAR",
            "X.ORG",
            "http://[::1]:9",
        ] {
            assert_eq!(c(&c(o)), c(o));
        }
        let long = format!("https://{}.org", "a".repeat(200));
        assert_eq!(c(&long).len(), 127);
        let raw = "é".repeat(100);
        assert!(c(&raw).len() <= 127);
    }
}
