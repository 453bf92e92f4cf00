//! Which addresses a host process may reach on behalf of a sandbox's user: the same rules the
//! sandbox's firewall applies (see `local/firewall.rs`, which is built from the ranges here),
//! for work that has to run outside the sandbox (host-side git clones, a gateway's outbound
//! requests) and would otherwise reach what the sandbox cannot: the host itself, private
//! networks, link-local (cloud metadata at 169.254.169.254).
//!
//! Checking a name once and then letting another component resolve it again is not enough (DNS
//! rebinding), so [`EgressPolicy::resolve`] returns the checked addresses for the caller to
//! *pin*: connect to exactly those, and follow no redirect to another host.
//!
//! Knows nothing of den: an allow-list entry is a host (and optional port) an operator trusts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::spec::NetworkPolicy;

/// IPv4 ranges no sandbox reaches: (network, prefix length, what it is).
pub(crate) const FORBIDDEN_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "a 'this network' address"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "a private address (10/8)"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "a shared (carrier NAT) address",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "a loopback address"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "a link-local address (cloud metadata lives there)",
    ),
    (
        Ipv4Addr::new(172, 16, 0, 0),
        12,
        "a private address (172.16/12)",
    ),
    (
        Ipv4Addr::new(192, 168, 0, 0),
        16,
        "a private address (192.168/16)",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "a multicast address"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "a reserved address"),
];

/// IPv6 ranges no sandbox reaches. IPv4-mapped addresses (`::ffff:0:0/96`) are listed for the
/// firewall; the checks here unwrap them and judge the IPv4 address inside.
pub(crate) const FORBIDDEN_V6: &[(Ipv6Addr, u8, &str)] = &[
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        127,
        "a loopback or unspecified address",
    ),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        "an IPv4-mapped address",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "a private (unique local) address",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "a link-local address",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "a multicast address",
    ),
];

/// Names that mean this machine whatever DNS says.
const LOCAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
];

/// Why a destination is refused. Messages say what the destination is and that an operator can
/// allow-list it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressRefusal {
    #[error(
        "{host} is {range} ({address}); sandboxes cannot reach it, so den does not either unless an admin allow-lists the host"
    )]
    Forbidden {
        host: String,
        address: IpAddr,
        range: &'static str,
    },
    #[error(
        "{host} names this machine; sandboxes cannot reach it, so den does not either unless an admin allow-lists the host"
    )]
    LocalName { host: String },
    #[error("the sandbox network policy is `none`, and {host} is not allow-listed")]
    NetworkOff { host: String },
    #[error("cannot resolve {host}: {reason}")]
    Unresolvable { host: String, reason: String },
}

/// A host an operator trusts despite the rules (an internal git server): `host` or
/// `host:port`, IPv6 addresses in brackets (`[fd00::1]:8443`). Without a port, every port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    fn matches(&self, host: &str, port: u16) -> bool {
        self.host == normalize_host(host) && self.port.is_none_or(|p| p == port)
    }
}

impl FromStr for AllowedHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not `host` or `host:port`");
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(bad)?;
            inside.parse::<Ipv6Addr>().map_err(|_| bad())?;
            match after {
                "" => (inside, None),
                _ => (inside, Some(after.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = port
            .map(|p| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad))
            .transpose()?;
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !valid {
            return Err(bad());
        }
        Ok(Self {
            host: normalize_host(host),
            port,
        })
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(&host),
        }
    }
}

/// The rules for one destination: the sandbox network policy plus an operator's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    pub network: NetworkPolicy,
    pub allowed_hosts: Vec<AllowedHost>,
}

impl EgressPolicy {
    pub fn is_allow_listed(&self, host: &str, port: u16) -> bool {
        self.allowed_hosts.iter().any(|a| a.matches(host, port))
    }

    /// What the host alone decides, before any lookup: an address literal in a forbidden range
    /// (in any spelling: `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`), a name meaning this
    /// machine, or any host under network policy `none`. Allow-listed hosts pass.
    pub fn check_host(&self, host: &str, port: u16) -> Result<(), EgressRefusal> {
        if self.is_allow_listed(host, port) {
            return Ok(());
        }
        let name = normalize_host(host);
        if self.network == NetworkPolicy::None {
            return Err(EgressRefusal::NetworkOff { host: name });
        }
        if let Some(address) = ip_literal(&name) {
            return self.check_address(host, port, address);
        }
        if LOCAL_NAMES.contains(&name.as_str()) || name.ends_with(".localhost") {
            return Err(EgressRefusal::LocalName { host: name });
        }
        Ok(())
    }

    /// Whether `host:port` may be reached at `address` (one of the host's addresses).
    pub fn check_address(
        &self,
        host: &str,
        port: u16,
        address: IpAddr,
    ) -> Result<(), EgressRefusal> {
        if self.is_allow_listed(host, port) {
            return Ok(());
        }
        if self.network == NetworkPolicy::None {
            return Err(EgressRefusal::NetworkOff {
                host: normalize_host(host),
            });
        }
        let range = forbidden_range(address).or_else(|| {
            host_addresses()
                .contains(&unwrap_mapped(address))
                .then_some("an address of this host")
        });
        match range {
            Some(range) => Err(EgressRefusal::Forbidden {
                host: normalize_host(host),
                address,
                range,
            }),
            None => Ok(()),
        }
    }

    /// Resolves `host` and checks every address it has (one forbidden address refuses the host:
    /// a name mixing public and private addresses is refused rather than half-trusted). The
    /// caller must connect only to the returned addresses.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, EgressRefusal> {
        self.check_host(host, port)?;
        let name = normalize_host(host);
        if let Some(address) = ip_literal(&name) {
            return Ok(vec![address]);
        }
        let unresolvable = |reason: String| EgressRefusal::Unresolvable {
            host: name.clone(),
            reason,
        };
        let found: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|err| unresolvable(err.to_string()))?
            .map(|a| a.ip())
            .collect();
        if found.is_empty() {
            return Err(unresolvable("no addresses".to_owned()));
        }
        for address in &found {
            self.check_address(host, port, *address)?;
        }
        Ok(found)
    }
}

/// The forbidden range `address` falls in, if any (IPv4-mapped and IPv4-compatible IPv6
/// addresses are judged by the IPv4 address inside).
pub fn forbidden_range(address: IpAddr) -> Option<&'static str> {
    match unwrap_mapped(address) {
        IpAddr::V4(v4) => FORBIDDEN_V4
            .iter()
            .find(|(net, len, _)| {
                prefix_matches(u32::from(v4).into(), u32::from(*net).into(), 32, *len)
            })
            .map(|(_, _, what)| *what),
        IpAddr::V6(v6) => FORBIDDEN_V6
            .iter()
            .find(|(net, len, _)| prefix_matches(u128::from(v6), u128::from(*net), 128, *len))
            .map(|(_, _, what)| *what),
    }
}

fn prefix_matches(address: u128, network: u128, bits: u32, len: u8) -> bool {
    let shift = bits - u32::from(len);
    (address >> shift) == (network >> shift)
}

/// `::ffff:a.b.c.d` and `::a.b.c.d` (but not `::` or `::1`) as the IPv4 address they carry.
fn unwrap_mapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let bits = u128::from(v6);
            if bits >> 32 == 0 && bits > 1 {
                return IpAddr::V4(Ipv4Addr::from(bits as u32));
            }
            address
        }
        v4 => v4,
    }
}

/// Lowercase, without IPv6 brackets or a trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// An address literal in any form resolvers and URL parsers accept: IPv6, dotted IPv4, and
/// the inet_aton forms (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let host = normalize_host(host);
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Some(IpAddr::V6(v6));
    }
    let parts: Vec<u64> = host
        .split('.')
        .map(|part| {
            let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (part, 10)
            };
            if digits.is_empty() && radix == 16 {
                return Some(0);
            }
            u64::from_str_radix(digits, radix).ok()
        })
        .collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if parts.len() > 4 || leading.iter().any(|p| *p > 255) || *last >= 1 << (8 * (5 - parts.len()))
    {
        return None;
    }
    let mut value = *last;
    for (i, part) in leading.iter().enumerate() {
        value |= part << (8 * (3 - i));
    }
    Some(IpAddr::V4(Ipv4Addr::from(u32::try_from(value).ok()?)))
}

/// The addresses of this machine's interfaces (not only loopback: a service bound to 0.0.0.0
/// answers on every one of them).
#[expect(
    unsafe_code,
    reason = "getifaddrs has no safe wrapper in the enabled nix features"
)]
fn host_addresses() -> Vec<IpAddr> {
    use nix::libc;
    let mut found = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return found;
        }
        let mut cursor = head;
        while let Some(entry) = cursor.as_ref() {
            if let Some(sa) = entry.ifa_addr.as_ref() {
                match i32::from(sa.sa_family) {
                    libc::AF_INET => {
                        let sin = &*entry.ifa_addr.cast::<libc::sockaddr_in>();
                        found.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*entry.ifa_addr.cast::<libc::sockaddr_in6>();
                        found.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cursor = entry.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    found
}

/// The addresses of this machine, for tests that must prove one is refused.
pub fn this_host_addresses() -> Vec<IpAddr> {
    host_addresses()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internet() -> EgressPolicy {
        EgressPolicy::default()
    }

    #[test]
    fn address_literals_in_every_spelling_are_judged_by_what_they_mean() {
        for host in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "127.1",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::127.0.0.1]",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "[::ffff:169.254.169.254]",
            "[fd00::1]",
            "[fe80::1]",
            "0.0.0.0",
            "[::]",
        ] {
            let err = internet().check_host(host, 80).unwrap_err();
            assert!(
                matches!(err, EgressRefusal::Forbidden { .. }),
                "{host}: {err:?}"
            );
        }
        for host in ["8.8.8.8", "172.32.0.1", "[2606:4700::1111]", "example.com"] {
            internet().check_host(host, 443).unwrap();
        }
    }

    #[test]
    fn local_names_are_refused_and_the_allow_list_overrides() {
        for host in ["localhost", "LOCALHOST.", "ip6-localhost", "a.localhost"] {
            assert!(matches!(
                internet().check_host(host, 80),
                Err(EgressRefusal::LocalName { .. })
            ));
        }
        let policy = EgressPolicy {
            network: NetworkPolicy::Internet,
            allowed_hosts: vec![
                "127.0.0.1:8080".parse().unwrap(),
                "git.internal".parse().unwrap(),
            ],
        };
        policy.check_host("127.0.0.1", 8080).unwrap();
        assert!(policy.check_host("127.0.0.1", 8081).is_err());
        policy
            .check_address("git.internal", 22, "10.0.0.5".parse().unwrap())
            .unwrap();
        let off = EgressPolicy {
            network: NetworkPolicy::None,
            ..policy
        };
        assert!(matches!(
            off.check_host("example.com", 443),
            Err(EgressRefusal::NetworkOff { .. })
        ));
        off.check_host("git.internal", 443).unwrap();
    }

    #[test]
    fn allow_list_entries_parse_and_print() {
        for (text, shown) in [
            ("Git.Internal", "git.internal"),
            ("git.internal:8443", "git.internal:8443"),
            ("[fd00::1]:443", "[fd00::1]:443"),
            ("10.0.0.1", "10.0.0.1"),
        ] {
            assert_eq!(text.parse::<AllowedHost>().unwrap().to_string(), shown);
        }
        for bad in [
            "",
            "host:",
            "host:0",
            "host:99999",
            "a b",
            "[fd00::1",
            "http://x",
        ] {
            assert!(bad.parse::<AllowedHost>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn this_hosts_own_addresses_are_refused() {
        for address in host_addresses() {
            assert!(
                internet()
                    .check_address("example.com", 443, address)
                    .is_err(),
                "{address}"
            );
        }
    }
}
