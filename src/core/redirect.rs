//! ALTERNATE-SERVER redirection (RFC 8656 6.2, coturn's `--alternate-server`
//! family): an Allocate may be answered with 300 Try Alternate naming another
//! server, chosen round robin from the list that applies to the client's
//! transport.

use std::net::SocketAddr;

use super::output::{Dest, Outputs, Transport};
use super::server::{Reply, Server};
use crate::stun::{AttrType, ErrorCode};

/// The configured alternate servers. A repeated entry is listed once per
/// occurrence, which is how an operator weights a server.
#[derive(Debug, Clone, Default)]
pub struct AlternateServers {
    /// `--alternate-server`: every transport without a list of its own.
    pub general: Vec<SocketAddr>,
    /// `--tls-alternate-server`: TLS and DTLS clients.
    pub tls: Vec<SocketAddr>,
    /// `--udp-alternate-server`: UDP clients.
    pub udp: Vec<SocketAddr>,
    /// `--tcp-alternate-server`: plain TCP clients.
    pub tcp: Vec<SocketAddr>,
    /// `--aux-server` when `--udp-self-balance` is on (else empty): UDP and
    /// DTLS clients are spread over these first.
    pub self_balance: Vec<SocketAddr>,
}

impl AlternateServers {
    /// No redirection configured at all.
    pub fn is_empty(&self) -> bool {
        self.general.is_empty() && self.tls.is_empty() && self.udp.is_empty() && self.tcp.is_empty() && self.self_balance.is_empty()
    }

    /// The list for a client on `transport`: a transport's own list takes
    /// precedence over the general one; self-balancing over the aux servers
    /// comes before both for datagram clients (as coturn orders them).
    pub fn list_for(&self, transport: Transport) -> &[SocketAddr] {
        let own: &[SocketAddr] = match transport {
            Transport::Udp | Transport::Dtls if !self.self_balance.is_empty() => return &self.self_balance,
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
            Transport::Tls | Transport::Dtls => &self.tls,
        };
        if own.is_empty() {
            &self.general
        } else {
            own
        }
    }
}

impl Server {
    /// Answer an Allocate with 300 when an alternate server of the listener's
    /// address family is configured for the client's transport; true when
    /// the request is answered. coturn redirects before authentication, so the
    /// 300 carries no REALM, NONCE or MESSAGE-INTEGRITY and costs no state.
    pub(crate) fn try_redirect(&mut self, reply: Reply, out: &mut Outputs) -> bool {
        let Dest::Client { transport, local, .. } = reply.dest else { return false };
        let cfg = std::sync::Arc::clone(&self.cfg);
        let list = cfg.alternates.list_for(transport);
        let Some(target) = pick(list, local, &mut self.alt_counter) else { return false };
        self.error(out, reply, ErrorCode::TRY_ALTERNATE, None, |b| {
            b.add_address(AttrType::ALTERNATE_SERVER, target);
        });
        true
    }
}

/// The next entry of `list` in round-robin order whose family is that of
/// `local`, advancing `counter` past every entry looked at. `None` when no
/// entry has that family, or when `local` itself is listed: a server that is
/// its own alternate would send clients in circles.
pub(crate) fn pick(list: &[SocketAddr], local: SocketAddr, counter: &mut usize) -> Option<SocketAddr> {
    if list.contains(&local) {
        return None;
    }
    for _ in 0..list.len() {
        if *counter >= list.len() {
            *counter = 0;
        }
        let candidate = list.get(*counter).copied();
        *counter += 1;
        if let Some(c) = candidate {
            if c.is_ipv4() == local.is_ipv4() {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn round_robin_with_weights_and_family_filter() {
        let list = [a("10.0.0.1:3478"), a("[2001:db8::1]:3478"), a("10.0.0.2:3478"), a("10.0.0.1:3478")];
        let mut c = 0;
        let got: Vec<_> = (0..6).map(|_| pick(&list, a("192.0.2.1:3478"), &mut c).unwrap()).collect();
        assert_eq!(
            got,
            [a("10.0.0.1:3478"), a("10.0.0.2:3478"), a("10.0.0.1:3478"), a("10.0.0.1:3478"), a("10.0.0.2:3478"), a("10.0.0.1:3478")]
        );
        let mut c = 0;
        assert_eq!(pick(&list, a("[2001:db8::9]:3478"), &mut c), Some(a("[2001:db8::1]:3478")));
        assert_eq!(pick(&list, a("[2001:db8::9]:3478"), &mut c), Some(a("[2001:db8::1]:3478")));
        // No entry of the family: no redirect.
        let mut c = 0;
        assert_eq!(pick(&[a("10.0.0.1:3478")], a("[::1]:3478"), &mut c), None);
        assert_eq!(pick(&[], a("10.0.0.1:3478"), &mut c), None);
        // Listing ourselves stops redirection.
        assert_eq!(pick(&list, a("10.0.0.2:3478"), &mut c), None);
    }

    #[test]
    fn per_transport_lists_take_precedence() {
        let mut s = AlternateServers { general: vec![a("10.0.0.1:3478")], ..Default::default() };
        for t in [Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Dtls] {
            assert_eq!(s.list_for(t), &[a("10.0.0.1:3478")]);
        }
        s.udp = vec![a("10.0.0.2:3478")];
        s.tcp = vec![a("10.0.0.3:3478")];
        s.tls = vec![a("10.0.0.4:5349")];
        assert_eq!(s.list_for(Transport::Udp), &[a("10.0.0.2:3478")]);
        assert_eq!(s.list_for(Transport::Tcp), &[a("10.0.0.3:3478")]);
        assert_eq!(s.list_for(Transport::Tls), &[a("10.0.0.4:5349")]);
        assert_eq!(s.list_for(Transport::Dtls), &[a("10.0.0.4:5349")]);
        s.self_balance = vec![a("10.0.0.5:33478")];
        assert_eq!(s.list_for(Transport::Udp), &[a("10.0.0.5:33478")]);
        assert_eq!(s.list_for(Transport::Dtls), &[a("10.0.0.5:33478")]);
        assert_eq!(s.list_for(Transport::Tcp), &[a("10.0.0.3:3478")]);
    }
}
