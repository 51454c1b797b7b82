//! Which addresses webhook deliveries may reach. Without the operator's say-so
//! (`webhook_allowed_networks`), hooks reach only the public internet: loopback, private,
//! shared (CGNAT), link-local (the cloud metadata service at 169.254.169.254), unspecified,
//! multicast, broadcast, documentation and other reserved addresses — in their IPv4-mapped
//! and other IPv4-embedding IPv6 forms too — and this server's own addresses are refused.
//!
//! The policy is asked twice: when a hook's URL is set ([`TargetPolicy`], resolving the
//! host), and when a delivery connects — [`CheckedResolver`] resolves each name once, checks
//! every address and hands the client only checked ones, and the transport checks IP-literal
//! URLs (which bypass the resolver) itself. A name that resolves elsewhere at delivery time
//! (DNS rebinding) is refused then.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::hooks::TargetPolicy;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::Url;

/// The end of every refusal: what is refused, and who can allow it.
const HOW_TO_ALLOW: &str = "webhooks may not reach loopback, private, link-local or reserved \
     addresses, nor this server's own, unless the operator allows the network \
     (webhook_allowed_networks)";

/// The longest a hook's host may take to resolve when the hook is created.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the operator allows, and what this server listens on.
#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    allowed: Vec<IpNet>,
    /// The listen address; unspecified (`0.0.0.0`, `::`) means every address of this machine.
    own: IpAddr,
}

/// Why a delivery was refused before anything was sent.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl StdError for Refused {}

/// The ranges refused unless allowed, with what they are.
fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [([u8; 4], u8, &str); 16] = [
        ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([172, 16, 0, 0], 12, "a private address"),
        (
            [192, 0, 0, 0],
            24,
            "a reserved (IETF protocol assignments) address",
        ),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a reserved (6to4 relay) address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([255, 255, 255, 255], 32, "the broadcast address"),
        ([240, 0, 0, 0], 4, "a reserved address"),
    ];
    RANGES
        .iter()
        .find(|(net, len, _)| {
            Ipv4Net::new(Ipv4Addr::from(*net), *len).is_ok_and(|n| n.contains(&ip))
        })
        .map(|(_, _, what)| *what)
}

/// IPv6 ranges refused unless allowed, with what they are (IPv4-embedding ranges are
/// handled before: their IPv4 address decides).
fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    const RANGES: [(u128, u8, &str); 14] = [
        (0, 128, "an unspecified address"),
        (1, 128, "a loopback address"),
        (0, 96, "a reserved (IPv4-compatible) address"),
        (
            0x0064_ff9b_0001 << 80,
            48,
            "a reserved (local-use NAT64) address",
        ),
        (0x0100 << 112, 64, "a reserved (discard-only) address"),
        (0x2001_0000 << 96, 32, "a reserved (Teredo) address"),
        (0x2001_0002 << 96, 48, "a benchmarking address"),
        (0x2001_0010 << 96, 28, "a reserved (ORCHID) address"),
        (0x2001_0020 << 96, 28, "a reserved (ORCHIDv2) address"),
        (0x2001_0db8 << 96, 32, "a documentation address"),
        (0x3fff << 112, 20, "a documentation address"),
        (0xfc00 << 112, 7, "a private (unique local) address"),
        (0xfe80 << 112, 10, "a link-local address"),
        (0xfec0 << 112, 10, "a site-local address"),
    ];
    if ip.segments()[0] & 0xff00 == 0xff00 {
        return Some("a multicast address");
    }
    RANGES
        .iter()
        .find(|(net, len, _)| {
            Ipv6Net::new(Ipv6Addr::from(*net), *len).is_ok_and(|n| n.contains(&ip))
        })
        .map(|(_, _, what)| *what)
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(ip);
    if bits >> 32 == 0x0064_ff9b << 64 {
        return Some(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// What kind of refused address `ip` is, if it is one.
fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

/// The URL's host when it is an IP address (the URL parser has normalized forms such as
/// `2130706433` or `0x7f.1` to `127.0.0.1`).
fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// Whether `ip` is an address of this machine: only a local address can be bound.
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

impl NetworkPolicy {
    /// Allows `allowed` on top of the public internet; `listen` is this server's address.
    pub fn new(allowed: Vec<IpNet>, listen: SocketAddr) -> Self {
        NetworkPolicy {
            allowed,
            own: listen.ip().to_canonical(),
        }
    }

    /// Why `ip` may not be reached, if it may not.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        self.refused_as(ip)
            .map(|kind| format!("{ip} is {kind}; {HOW_TO_ALLOW}"))
    }

    /// What `ip` is, when hooks may not reach it: "a loopback address".
    fn refused_as(&self, ip: IpAddr) -> Option<&'static str> {
        let canonical = ip.to_canonical();
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return None;
        }
        if let Some(kind) = refused_kind(ip) {
            return Some(kind);
        }
        let own = if self.own.is_unspecified() {
            is_local(canonical)
        } else {
            canonical == self.own
        };
        own.then_some("one of this server's own addresses")
    }

    /// Resolves `host` once and checks every address: all of them, a [`Refused`] naming a
    /// refused one, or the resolver's error.
    pub async fn resolve_checked(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
        self.check_all(host, &addrs)?;
        Ok(addrs)
    }

    /// `Err` naming the first refused address of `addrs` (what `host` resolved to).
    fn check_all(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), Refused> {
        for addr in addrs {
            let ip = addr.ip();
            if let Some(kind) = self.refused_as(ip) {
                return Err(Refused(format!(
                    "{host} resolves to {ip}, {kind}; {HOW_TO_ALLOW}"
                )));
            }
        }
        if addrs.is_empty() {
            return Err(Refused(format!("{host} resolves to no address")));
        }
        Ok(())
    }

    /// Checks a URL's host when it is an IP address (the resolver never sees those); names
    /// are left to [`CheckedResolver`].
    pub fn check_literal(&self, url: &Url) -> Result<(), Refused> {
        let Some(ip) = literal_ip(url) else {
            return Ok(());
        };
        match self.refusal(ip) {
            Some(why) => Err(Refused(why)),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl TargetPolicy for NetworkPolicy {
    async fn check(&self, url: &str) -> Result<(), String> {
        let parsed = Url::parse(url).map_err(|e| format!("it is not a valid URL ({e})"))?;
        self.check_literal(&parsed).map_err(|r| r.0)?;
        let (None, Some(host), Some(port)) = (
            literal_ip(&parsed),
            parsed.host_str(),
            parsed.port_or_known_default(),
        ) else {
            return Ok(());
        };
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                self.check_all(host, &addrs).map_err(|r| r.0)
            }
            // A name that does not resolve (yet) reaches nothing; each delivery checks again.
            Ok(Err(_)) | Err(_) => Ok(()),
        }
    }
}

/// reqwest's resolver for deliveries: resolves once and returns the addresses only when the
/// policy allows every one, so the client connects only to checked addresses.
pub struct CheckedResolver(pub Arc<NetworkPolicy>);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs = policy.resolve_checked(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> NetworkPolicy {
        NetworkPolicy::new(
            allowed.iter().map(|n| n.parse().unwrap()).collect(),
            "127.0.0.1:5000".parse().unwrap(),
        )
    }

    fn refused(p: &NetworkPolicy, ip: &str) -> bool {
        p.refusal(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn internal_and_reserved_addresses_are_refused_by_default() {
        let p = policy(&[]);
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "2001::1",
        ] {
            assert!(refused(&p, ip), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let p = policy(&[]);
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "140.82.112.3",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(&p, ip), "{ip} should pass");
        }
    }

    #[test]
    fn allowed_networks_open_only_themselves() {
        let p = policy(&["127.0.0.0/8", "10.1.0.0/16"]);
        assert!(!refused(&p, "127.0.0.1"));
        assert!(!refused(&p, "::ffff:127.0.0.1"), "its mapped form too");
        assert!(!refused(&p, "10.1.2.3"));
        assert!(refused(&p, "10.2.0.1"));
        assert!(refused(&p, "169.254.169.254"));
        assert!(refused(&p, "::1"));
    }

    #[test]
    fn refusals_say_what_the_address_is_and_how_to_allow_it() {
        let p = policy(&[]);
        let why = p.refusal("169.254.169.254".parse().unwrap()).unwrap();
        assert!(
            why.starts_with("169.254.169.254 is a link-local address;"),
            "{why}"
        );
        assert!(why.contains("webhook_allowed_networks"), "{why}");
        let why = p.refusal("10.0.0.1".parse().unwrap()).unwrap();
        assert!(why.starts_with("10.0.0.1 is a private address"), "{why}");
    }

    #[test]
    fn the_servers_own_addresses_are_refused() {
        let p = NetworkPolicy::new(Vec::new(), "1.2.3.4:443".parse().unwrap());
        assert!(
            p.refusal("1.2.3.4".parse().unwrap())
                .unwrap()
                .contains("own")
        );
        assert!(!refused(&p, "1.2.3.5"));
        // Listening everywhere: every address of this machine is its own.
        let p = NetworkPolicy::new(Vec::new(), "0.0.0.0:5000".parse().unwrap());
        assert!(!refused(&p, "1.1.1.1"));
    }

    #[tokio::test]
    async fn urls_are_checked_by_their_literal_or_resolved_addresses() {
        let p = policy(&[]);
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://2130706433/hook",
            "http://0x7f.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "http://localhost:9/hook",
        ] {
            let why = p.check(url).await.expect_err(url);
            assert!(
                why.contains("loopback") || why.contains("link-local") || why.contains("private"),
                "{url}: {why}"
            );
        }
        assert!(p.check("https://1.1.1.1/hook").await.is_ok());
        assert!(
            p.check("https://no-such-host.invalid/hook").await.is_ok(),
            "unresolvable names are checked at delivery"
        );
    }
}
