//! The relay thread's side of HTTP on a TURN port: once a connection's first
//! (decrypted) bytes say HTTP, wait for the request head, then answer it,
//! close it, or hand it to the web admin ([`crate::relay::http_port`] decides).

use super::RelayThread;
use crate::relay::http_port::{self, HandedConn, HttpAction};
use crate::relay::tcp::{HttpState, Layer};
use crate::tls::{sniff, Sniff};

/// What the connection loop does after the HTTP step.
pub(super) enum HttpStep {
    /// Not HTTP: go on framing STUN.
    Stun,
    /// Wait for more bytes.
    Wait,
    /// The connection was answered, closed or handed over: stop.
    Done,
}

impl RelayThread {
    /// Only called while `c.http != HttpState::No`.
    pub(super) fn http_step(&mut self, key: usize) -> HttpStep {
        let Some(c) = self.conns.get_mut(key) else { return HttpStep::Done };
        if c.close_after_write {
            // Answered already: ignore anything else the client sends.
            let n = c.decoder.peek().len();
            c.decoder.skip(n);
            return HttpStep::Wait;
        }
        let over_tls = match &c.layer {
            Layer::Tls(_) => true,
            Layer::Plain => false,
            Layer::Sniff | Layer::TlsAccepting(_) => return HttpStep::Wait,
        };
        if c.http == HttpState::Unknown {
            match sniff(c.decoder.peek()) {
                Sniff::NeedMore => return HttpStep::Wait,
                Sniff::Http => c.http = HttpState::Http,
                _ => {
                    c.http = HttpState::No;
                    return HttpStep::Stun;
                }
            }
        }
        match http_port::decide(c.decoder.peek(), &self.http, over_tls) {
            HttpAction::NeedMore => HttpStep::Wait,
            HttpAction::Close => {
                self.close_conn(key, "HTTP on a TURN port");
                HttpStep::Done
            }
            HttpAction::Respond(bytes) => {
                let n = c.decoder.peek().len();
                c.decoder.skip(n);
                c.outq.push_some(&bytes);
                c.close_after_write = true;
                tracing::debug!("HTTP request from {} on TURN port {} answered", c.peer, c.local);
                match c.write() {
                    Ok(()) if c.has_pending_output() => self.update_interest(key),
                    Ok(()) => self.close_conn(key, "HTTP answered"),
                    Err(why) => self.close_conn(key, why),
                }
                HttpStep::Done
            }
            HttpAction::HandOff => {
                self.hand_to_web_admin(key);
                HttpStep::Done
            }
        }
    }

    fn hand_to_web_admin(&mut self, key: usize) {
        let Some(mut c) = self.conns.try_remove(key) else { return };
        let _ = self.poll.registry().deregister(&mut c.stream);
        if self.by_conn.get(&(c.local, c.peer)) == Some(&key) {
            self.by_conn.remove(&(c.local, c.peer));
        }
        let Layer::Tls(tls) = c.layer else { return };
        let stream: std::net::TcpStream = c.stream.into();
        let handed = HandedConn { stream, peer: c.peer, tls, plaintext: c.decoder.peek().to_vec() };
        match http_port::hand_off(handed) {
            Ok(()) => tracing::debug!("HTTPS request from {} on TURN port {} handed to the web admin", c.peer, c.local),
            Err(_) => tracing::debug!("web admin busy or not running: HTTPS connection from {} closed", c.peer),
        }
    }

    /// After a write: an answered HTTP connection closes once drained.
    /// True when the connection is such an answered one (read nothing more).
    pub(super) fn close_if_answered(&mut self, key: usize) -> bool {
        let Some(c) = self.conns.get(key) else { return true };
        if !c.close_after_write {
            return false;
        }
        if c.has_pending_output() {
            self.update_interest(key);
        } else {
            self.close_conn(key, "HTTP answered");
        }
        true
    }
}
