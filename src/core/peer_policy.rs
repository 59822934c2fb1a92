//! Which peer addresses a relay may talk to: `--allowed-peer-ip`,
//! `--denied-peer-ip`, loopback and multicast switches, and coturn 4.17's fixed
//! denials. IPv4-mapped (and IPv4-compatible) IPv6 addresses are canonicalised
//! to IPv4 before every check, so one address cannot slip through in another form.

use std::net::IpAddr;
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
    fn from_str(s: &str) -> Result<Self, String> {
        todo!()
    }
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        todo!()
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
}

#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    pub allow_loopback: bool,
    pub no_multicast: bool,
    pub allowed: Vec<IpRange>,
    pub denied: Vec<IpRange>,
}

impl PeerPolicy {
    /// `Ok(())` when the (canonicalised) address may be a peer. The unspecified
    /// address and the fixed link-local/ULA/site-local denials are never
    /// overridable; past those, an allowed range beats loopback, multicast and
    /// every denied range.
    pub fn check(&self, ip: IpAddr) -> Result<(), Denial> {
        todo!()
    }
}

/// IPv4-mapped / IPv4-compatible IPv6 → IPv4; others unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    todo!()
}
