//! Which peer addresses a relay may talk to: `--allowed-peer-ip`,
//! `--denied-peer-ip`, loopback and multicast switches, and coturn 4.17's fixed
//! denials. IPv4-mapped (and IPv4-compatible) IPv6 addresses are canonicalised
//! to IPv4 before every check, so one address cannot slip through in another form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An inclusive address range, `ip` or `ip-ip` (no CIDR, as coturn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub start: IpAddr,
    pub end: IpAddr,
}

impl FromStr for IpRange {
    type Err = String;
    /// Parse `ip` or `ip-ip` (whitespace around the parts trimmed; both ends of
    /// one family; start <= end). Error text names the bad value.
    ///
    /// Ends are kept as written; [`IpRange::contains`] does the canonicalising,
    /// so `::ffff:10.0.0.1-::ffff:10.0.0.9` and `10.0.0.1-10.0.0.9` behave alike.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty IP range".to_string());
        }
        let parse = |part: &str| -> Result<IpAddr, String> {
            part.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("bad IP range '{t}': '{}' is not an IP address", part.trim()))
        };
        let (start, end) = match t.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let ip = parse(t)?;
                (ip, ip)
            }
        };
        if start.is_ipv4() != end.is_ipv4() {
            return Err(format!(
                "bad IP range '{t}': both ends must be of the same address family"
            ));
        }
        if start > end {
            return Err(format!("bad IP range '{t}': start is after end"));
        }
        Ok(IpRange { start, end })
    }
}

impl IpRange {
    /// True when any equivalent spelling of `ip` lies in the range: the
    /// canonical form, and for an IPv4 address also its IPv4-mapped and
    /// IPv4-compatible IPv6 forms. So an IPv4 range catches `::ffff:a.b.c.d`,
    /// and a range written in mapped form catches plain IPv4, whichever form a
    /// client puts in XOR-PEER-ADDRESS.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let c = canonical(ip);
        let within =
            |x: IpAddr| x.is_ipv4() == self.start.is_ipv4() && self.start <= x && x <= self.end;
        match c {
            IpAddr::V6(_) => within(c),
            IpAddr::V4(v4) => {
                within(c)
                    || within(IpAddr::V6(v4.to_ipv6_mapped()))
                    // 0.0.0.0 and 0.0.0.1 have no compatible form (:: and ::1 are their own addresses).
                    || (u32::from(v4) > 1 && within(IpAddr::V6(v4.to_ipv6_compatible())))
            }
        }
    }
}

/// Why a peer was refused (for coturn's log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// 0.0.0.0 or ::
    Unspecified,
    /// 127/8 or ::1 without `--allow-loopback-peers`
    Loopback,
    /// multicast with `--no-multicast-peers`
    Multicast,
    /// 169.254/16, fe80::/10, fc00::/7, fec0::/10 (always)
    LinkLocalOrPrivateV6,
    /// a `--denied-peer-ip` range
    DeniedRange(IpRange),
    /// one of the server's own listening, relay or external addresses
    OwnAddress,
}

#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    pub allow_loopback: bool,
    pub no_multicast: bool,
    pub allowed: Vec<IpRange>,
    pub denied: Vec<IpRange>,
    /// The server's own addresses, refused as peers unless an allowed range
    /// names them (see [`OwnAddresses`]).
    pub own: OwnAddresses,
}

/// The server's own transport addresses. A client must not use the relay to
/// reach the server itself: not its listeners (a TURN session relayed into
/// the server's own ports loops, and hides the real source from per-IP
/// limits), and not other services on its listening, relay or external IPs
/// (a database or admin port bound to an internal address). Ports of the
/// relay range stay reachable: that is another allocation, and two clients
/// of one server talking relay to relay is ordinary WebRTC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAddresses {
    /// Every listening transport address (wildcard ones expanded by the
    /// daemon; an unspecified IP left here matches any own IP on that port).
    pub listeners: Vec<SocketAddr>,
    /// Listening, relay and external (public and private) IPs.
    pub ips: Vec<IpAddr>,
    /// `--min-port`..=`--max-port`.
    pub relay_ports: (u16, u16),
}

impl OwnAddresses {
    /// True when `peer` is one of the server's own addresses. With
    /// `allow_loopback` the operator has opted in to peers on this host over
    /// loopback, so only the listeners themselves stay refused there.
    pub fn contains(&self, peer: SocketAddr, allow_loopback: bool) -> bool {
        let ip = canonical(peer.ip());
        let port = peer.port();
        let own_ip = self.ips.iter().any(|&o| canonical(o) == ip);
        let listener = self.listeners.iter().any(|l| {
            l.port() == port && {
                let lip = canonical(l.ip());
                lip == ip || (lip.is_unspecified() && (own_ip || ip.is_loopback()))
            }
        });
        if listener {
            return true;
        }
        let in_relay_range = (self.relay_ports.0..=self.relay_ports.1).contains(&port);
        own_ip && !in_relay_range && !(allow_loopback && ip.is_loopback())
    }
}

impl PeerPolicy {
    /// `Ok(())` when the (canonicalised) address may be a peer. The unspecified
    /// address and the fixed link-local/ULA/site-local denials are never
    /// overridable; past those, an allowed range beats loopback, multicast and
    /// every denied range.
    pub fn check(&self, ip: IpAddr) -> Result<(), Denial> {
        let ip = canonical(ip);
        if ip.is_unspecified() {
            return Err(Denial::Unspecified);
        }
        if is_fixed_denial(ip) {
            return Err(Denial::LinkLocalOrPrivateV6);
        }
        if self.allowed.iter().any(|r| r.contains(ip)) {
            return Ok(());
        }
        if !self.allow_loopback && ip.is_loopback() {
            return Err(Denial::Loopback);
        }
        if self.no_multicast && is_multicast_like(ip) {
            return Err(Denial::Multicast);
        }
        if let Some(r) = self.denied.iter().find(|r| r.contains(ip)) {
            return Err(Denial::DeniedRange(*r));
        }
        Ok(())
    }

    /// [`Self::check`] for a transport address, adding the refusal of the
    /// server's own addresses (which an allowed range overrides too).
    pub fn check_addr(&self, peer: SocketAddr) -> Result<(), Denial> {
        self.check(peer.ip())?;
        if self.refuses_own(peer) {
            return Err(Denial::OwnAddress);
        }
        Ok(())
    }

    /// True when `peer` is one of the server's own addresses and no allowed
    /// range names it. Send indications carry their port in every packet, and
    /// a permission covers a whole IP, so they are checked one by one.
    #[inline]
    pub fn refuses_own(&self, peer: SocketAddr) -> bool {
        !(self.own.ips.is_empty() && self.own.listeners.is_empty())
            && self.own.contains(peer, self.allow_loopback)
            && !self.allowed.iter().any(|r| r.contains(peer.ip()))
    }
}

/// coturn ≥ 4.13.1's non-overridable denials: 169.254/16, fe80::/10, fc00::/7,
/// fec0::/10 (cloud metadata services and link-scoped neighbours live there).
fn is_fixed_denial(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 169 && o[1] == 254
        }
        IpAddr::V6(v6) => {
            let s0 = v6.segments()[0];
            (s0 & 0xffc0) == 0xfe80 || (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfec0
        }
    }
}

/// What `--no-multicast-peers` refuses: as coturn, every IPv4 address from
/// 224.0.0.0 up (multicast, the reserved 240/4 and broadcast), and ff00::/8.
fn is_multicast_like(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] >= 224,
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// IPv4-mapped / IPv4-compatible IPv6 → IPv4; others unchanged.
/// `::ffff:a.b.c.d` (mapped) and `::a.b.c.d` (compatible, deprecated but still
/// routable by some stacks) both reach the IPv4 host, so they are judged as it.
/// `::` and `::1` are their own IPv6 addresses and are left alone.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6_embedded_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
    }
}

fn v6_embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    if s[..5] != [0; 5] {
        return None;
    }
    let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s[5] {
        0xffff => Some(v4),
        0 if u32::from(v4) > 1 => Some(v4),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // fixed test inputs: a panic is the failure report
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn range(s: &str) -> IpRange {
        s.parse().unwrap()
    }

    #[test]
    fn parse_single_and_range() {
        assert_eq!(
            range("10.0.0.1"),
            IpRange {
                start: ip("10.0.0.1"),
                end: ip("10.0.0.1")
            }
        );
        assert_eq!(
            range(" 10.0.0.1 - 10.0.0.9 "),
            IpRange {
                start: ip("10.0.0.1"),
                end: ip("10.0.0.9")
            }
        );
        assert_eq!(range("2001:db8::1-2001:db8::ff").end, ip("2001:db8::ff"));
        assert_eq!(range("1.1.1.1-1.1.1.1").start, ip("1.1.1.1"));
    }

    #[test]
    fn parse_errors_name_the_value() {
        for bad in [
            "1.2.3",
            "1.1.1.1-::1",
            "2.2.2.2-1.1.1.1",
            "1.1.1.1-",
            "-1.1.1.1",
            "10.0.0.0/8",
            "a-b",
            "1.1.1.1-2.2.2.2-3.3.3.3",
        ] {
            let e = bad.parse::<IpRange>().unwrap_err();
            assert!(e.contains(bad.trim()), "{bad}: {e}");
        }
        assert!("".parse::<IpRange>().unwrap_err().contains("empty"));
        assert!("   ".parse::<IpRange>().is_err());
    }

    #[test]
    fn contains_bounds_and_family() {
        let r = range("10.0.0.1-10.0.0.9");
        assert!(r.contains(ip("10.0.0.1")));
        assert!(r.contains(ip("10.0.0.9")));
        assert!(!r.contains(ip("10.0.0.10")));
        assert!(!r.contains(ip("10.0.0.0")));
        assert!(!r.contains(ip("2001:db8::1")));
        let r6 = range("2001:db8::1-2001:db8::ff");
        assert!(r6.contains(ip("2001:db8::10")));
        assert!(!r6.contains(ip("10.0.0.5")));
    }

    #[test]
    fn contains_across_spellings() {
        let r = range("10.0.0.1-10.0.0.9");
        assert!(r.contains(ip("::ffff:10.0.0.5")));
        assert!(r.contains(ip("::10.0.0.5")));
        let mapped = range("::ffff:10.0.0.1-::ffff:10.0.0.9");
        assert!(mapped.contains(ip("10.0.0.5")));
        assert!(mapped.contains(ip("::ffff:10.0.0.5")));
        assert!(mapped.contains(ip("::10.0.0.5")));
        assert!(!mapped.contains(ip("10.0.0.10")));
        // :: and ::1 are not IPv4 0.0.0.0 / 0.0.0.1.
        let low = range("0.0.0.0-0.0.0.255");
        assert!(!low.contains(ip("::1")));
        assert!(!low.contains(ip("::")));
        let v6low = range("::-::ffff");
        assert!(!v6low.contains(ip("0.0.0.1")));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonical(ip("::1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonical(ip("::")), ip("::"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
        assert_eq!(canonical(ip("::2")), ip("0.0.0.2"));
        assert_eq!(canonical(ip("::ffff:0.0.0.0")), ip("0.0.0.0"));
        assert_eq!(canonical(ip("2001:db8::1.2.3.4")), ip("2001:db8::1.2.3.4"));
        assert_eq!(canonical(ip("64:ff9b::1.2.3.4")), ip("64:ff9b::1.2.3.4"));
        assert_eq!(canonical(ip("::fffe:1.2.3.4")), ip("::fffe:1.2.3.4"));
        assert_eq!(canonical(ip("1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn unspecified_always_denied() {
        let p = PeerPolicy {
            allowed: vec![
                range("0.0.0.0-255.255.255.255"),
                range("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ],
            allow_loopback: true,
            ..Default::default()
        };
        assert_eq!(p.check(ip("0.0.0.0")), Err(Denial::Unspecified));
        assert_eq!(p.check(ip("::")), Err(Denial::Unspecified));
        assert_eq!(p.check(ip("::ffff:0.0.0.0")), Err(Denial::Unspecified));
    }

    #[test]
    fn fixed_denials_not_overridable() {
        let p = PeerPolicy {
            allowed: vec![
                range("0.0.0.0-255.255.255.255"),
                range("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ],
            ..Default::default()
        };
        for a in [
            "169.254.169.254",
            "169.254.0.0",
            "169.254.255.255",
            "::ffff:169.254.1.1",
            "::169.254.1.1",
            "fe80::1",
            "febf:ffff::1",
            "fc00::1",
            "fdff::1",
            "fec0::1",
            "feff::1",
        ] {
            assert_eq!(p.check(ip(a)), Err(Denial::LinkLocalOrPrivateV6), "{a}");
        }
        let d = PeerPolicy::default();
        for a in [
            "169.253.255.255",
            "169.255.0.0",
            "fe7f::1",
            "fbff::1",
            "2001:db8::1",
        ] {
            assert_eq!(d.check(ip(a)), Ok(()), "{a}");
        }
    }

    #[test]
    fn loopback() {
        let d = PeerPolicy::default();
        for a in [
            "127.0.0.1",
            "127.255.255.254",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
        ] {
            assert_eq!(d.check(ip(a)), Err(Denial::Loopback), "{a}");
        }
        let p = PeerPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        assert_eq!(p.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(p.check(ip("::1")), Ok(()));
    }

    #[test]
    fn multicast_only_when_asked() {
        let d = PeerPolicy::default();
        assert_eq!(d.check(ip("224.0.0.1")), Ok(()));
        assert_eq!(d.check(ip("ff02::1")), Ok(()));
        let p = PeerPolicy {
            no_multicast: true,
            ..Default::default()
        };
        for a in [
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "::ffff:224.0.0.1",
            "ff02::1",
            "ff0e::1",
        ] {
            assert_eq!(p.check(ip(a)), Err(Denial::Multicast), "{a}");
        }
        assert_eq!(p.check(ip("223.255.255.255")), Ok(()));
        assert_eq!(p.check(ip("fe00::1")), Ok(()));
    }

    #[test]
    fn denied_ranges() {
        let r = range("10.0.0.0-10.255.255.255");
        let p = PeerPolicy {
            denied: vec![range("192.168.0.1"), r],
            ..Default::default()
        };
        assert_eq!(p.check(ip("10.1.2.3")), Err(Denial::DeniedRange(r)));
        assert_eq!(p.check(ip("::ffff:10.1.2.3")), Err(Denial::DeniedRange(r)));
        assert_eq!(
            p.check(ip("192.168.0.1")),
            Err(Denial::DeniedRange(range("192.168.0.1")))
        );
        assert_eq!(p.check(ip("192.168.0.2")), Ok(()));
        assert_eq!(p.check(ip("8.8.8.8")), Ok(()));
        // RFC 1918 is not denied by default.
        assert_eq!(PeerPolicy::default().check(ip("10.1.2.3")), Ok(()));
    }

    #[test]
    fn allow_beats_deny_loopback_and_multicast() {
        let p = PeerPolicy {
            no_multicast: true,
            allowed: vec![range("10.0.0.5"), range("127.0.0.1"), range("239.1.1.1")],
            denied: vec![range("10.0.0.0-10.255.255.255")],
            ..Default::default()
        };
        assert_eq!(p.check(ip("10.0.0.5")), Ok(()));
        assert_eq!(p.check(ip("::ffff:10.0.0.5")), Ok(()));
        assert!(matches!(
            p.check(ip("10.0.0.6")),
            Err(Denial::DeniedRange(_))
        ));
        assert_eq!(p.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check(ip("127.0.0.2")), Err(Denial::Loopback));
        assert_eq!(p.check(ip("239.1.1.1")), Ok(()));
        assert_eq!(p.check(ip("239.1.1.2")), Err(Denial::Multicast));
    }

    #[test]
    fn order_loopback_before_multicast_before_denied() {
        let p = PeerPolicy {
            no_multicast: true,
            denied: vec![range("0.0.0.1-255.255.255.255")],
            ..Default::default()
        };
        assert_eq!(p.check(ip("127.0.0.1")), Err(Denial::Loopback));
        assert_eq!(p.check(ip("224.0.0.1")), Err(Denial::Multicast));
        assert!(matches!(
            p.check(ip("8.8.8.8")),
            Err(Denial::DeniedRange(_))
        ));
    }
}
