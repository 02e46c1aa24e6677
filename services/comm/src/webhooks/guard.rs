//! The SSRF guard: webhook URLs are the agency's input, so a request may only reach a public
//! address. The HTTP client resolves names through [`GuardedResolver`], which drops every
//! refused address before the connector sees the list, so the checked address is the one
//! connected to (no second resolution a DNS rebinding could change). IP-literal URLs never reach a
//! resolver and are checked by [`AddressPolicy::check_url`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which addresses webhooks may reach: every public one, plus an allowlist from configuration
/// (tests and on-premises receivers).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address} is {class}")]
pub struct Refused {
    /// The address.
    pub address: IpAddr,
    /// Which refused range it is in.
    pub class: &'static str,
}

impl AddressPolicy {
    /// Allows `allow` (CIDRs such as `127.0.0.1/32`, or single addresses) besides public
    /// addresses.
    pub fn new(allow: &[String]) -> Result<Self, String> {
        let allow = allow
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an address nor a CIDR"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    /// Whether `address` may be connected to.
    pub fn check(&self, address: IpAddr) -> Result<(), Refused> {
        if self.allow.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        match refused_class(address) {
            Some(class) => Err(Refused { address, class }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP literal; names are checked when resolved.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        let host = url.host_str().unwrap_or_default();
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(address) => self.check(address),
            Err(_) => Ok(()),
        }
    }

    /// Resolves `host` and returns the allowed addresses, or why there is none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let found: Vec<SocketAddr> =
            tokio::net::lookup_host((host, port)).await.map_err(|e| format!("{host} does not resolve: {e}"))?.collect();
        let mut refused = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check(a.ip()) {
                Ok(()) => true,
                Err(why) => {
                    refused = Some(why);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed),
            (true, Some(why)) => Err(format!("{host} resolves to {why}")),
            (true, None) => Err(format!("{host} has no address")),
        }
    }
}

/// The refused range `address` falls in, if any.
fn refused_class(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => {
            // An IPv4-mapped or NAT64 address reaches an IPv4 host: refused whatever it maps to,
            // so no spelling of a private address slips through.
            if v6.to_ipv4_mapped().is_some() {
                return Some("an IPv4-mapped address");
            }
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return Some("a NAT64 address");
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if segments[0] & 0xfe00 == 0xfc00 {
                // fc00::/7 holds the cloud metadata addresses (fd00:ec2::254) too.
                Some("a private (unique local) address")
            } else if segments[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
                Some("an IPv4-compatible address")
            } else {
                None
            }
        }
    }
}

fn v4_class(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = v4.octets();
    if v4.is_loopback() {
        Some("a loopback address")
    } else if v4.is_private() {
        Some("a private address")
    } else if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else if v4.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (CGNAT) address")
    } else if a == 0 || v4.is_broadcast() || v4.is_multicast() || a >= 240 {
        Some("a reserved address")
    } else if a == 192 && b == 0 && v4.octets()[2] == 0 {
        Some("an IETF protocol address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking address")
    } else {
        None
    }
}

/// A reqwest resolver that returns only the addresses [`AddressPolicy`] allows.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<AddressPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let allowed =
                policy.resolve(name.as_str(), 0).await.map_err(Box::<dyn std::error::Error + Send + Sync>::from)?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &AddressPolicy, address: &str) -> bool {
        policy.check(address.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))).is_err()
    }

    #[test]
    fn every_internal_range_is_refused() {
        let policy = AddressPolicy::default();
        for address in [
            "127.0.0.1",
            "127.10.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(refused(&policy, address), "{address} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = AddressPolicy::default();
        for address in ["8.8.8.8", "93.184.216.34", "100.128.0.1", "172.32.0.1", "2606:4700::1111"] {
            assert!(!refused(&policy, address), "{address} should pass");
        }
    }

    #[test]
    fn the_allowlist_opens_exactly_its_ranges() {
        let policy = AddressPolicy::new(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap_or_default();
        assert!(!refused(&policy, "127.0.0.1"));
        assert!(!refused(&policy, "10.200.0.1"));
        assert!(refused(&policy, "127.0.0.2"));
        assert!(refused(&policy, "192.168.0.1"));
        assert!(AddressPolicy::new(&["not-an-address".into()]).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_unless_allowed() {
        let closed = AddressPolicy::default();
        let error = closed.resolve("localhost", 80).await.err().unwrap_or_default();
        assert!(error.contains("loopback"), "{error}");
        let open = AddressPolicy::new(&["127.0.0.0/8".into(), "::1".into()]).unwrap_or_default();
        assert!(open.resolve("localhost", 80).await.is_ok_and(|a| !a.is_empty()));
    }
}
