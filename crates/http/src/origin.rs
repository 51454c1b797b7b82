//! Where a request comes from and which URL it reached Berth at, believing forwarding headers
//! only from the operator's `trusted_proxies`.
//!
//! Pure: the connection loop ([`crate::connections`]) calls [`Origin::of`] once per request
//! and puts the result in the request's extensions; limits, logs and every absolute URL
//! (challenges, `Location`, API objects) read it from there. An unchecked `Host` header never
//! becomes a URL: without `external_url` or a trusted proxy, the `Host` is used only when it
//! names the address the connection was accepted on (or `localhost` on a loopback address),
//! else that address itself is.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::uri::Authority;
use axum::http::{HeaderMap, Request, header};
use ipnet::IpNet;

/// Addresses and networks whose forwarding headers (`Forwarded`, `X-Forwarded-For`,
/// `X-Forwarded-Proto`, `X-Forwarded-Host`) are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.1`) and networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("`{entry}` is neither an IP address nor a network like 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        !self.0.is_empty() && self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The client and the base URL of one request.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The client's address: the TCP peer, or what a trusted proxy says the client was.
    pub client: SocketAddr,
    /// `https://registry.example` (no trailing slash): the URL clients reach Berth at.
    pub base_url: Arc<str>,
}

impl Origin {
    /// Works out a request's origin. `peer` is the TCP peer, `local` the address the
    /// connection was accepted on, `external_url` the operator's setting (trailing `/`
    /// removed). The scheme of a direct request is `https` when its extensions hold
    /// [`OverTls`]; its host, the `Host` header or else (HTTP/2) the URI's authority.
    pub fn of<B>(
        request: &Request<B>,
        peer: SocketAddr,
        local: SocketAddr,
        trusted: &TrustedProxies,
        external_url: Option<&Arc<str>>,
    ) -> Origin {
        let headers = request.headers();
        let proxied = trusted.contains(peer.ip());
        let client = if proxied {
            forwarded_client(headers, trusted)
                .map(|ip| SocketAddr::new(ip, 0))
                .unwrap_or(peer)
        } else {
            peer
        };
        let base_url = match external_url {
            Some(url) => url.clone(),
            None => Arc::from(
                proxied
                    .then(|| forwarded_base(headers))
                    .flatten()
                    .unwrap_or_else(|| direct_base(request, local)),
            ),
        };
        Origin { client, base_url }
    }
}

/// In the extensions of a request that came over TLS: the connection loop puts it there
/// (only on TLS connections), and [`Origin::of`] makes such a request's URLs `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverTls;

/// The request's [`Origin`], which the connection loop put in its extensions.
impl<S: Sync> axum::extract::FromRequestParts<S> for Origin {
    type Rejection = (axum::http::StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Origin>().cloned().ok_or((
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the router runs outside berth_http::serve, which tells it each request's origin",
        ))
    }
}

impl Origin {
    /// The authority part of the base URL (`registry.example:5000`): the challenge's
    /// `service`.
    pub fn authority(&self) -> &str {
        self.base_url
            .split_once("://")
            .map_or(&*self.base_url, |(_, rest)| rest)
    }
}

/// The client a chain of trusted proxies reports: walking the `Forwarded` (else
/// `X-Forwarded-For`) list from the nearest hop, the first address that is not a trusted
/// proxy; the farthest one when all are.
fn forwarded_client(headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let hops: Vec<IpAddr> = if headers.contains_key(header::FORWARDED) {
        forwarded_elements(headers)
            .filter_map(|pairs| {
                pairs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                    .map(|(_, v)| node_ip(v))
            })
            .collect::<Option<Vec<_>>>()?
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| node_ip(hop.trim()))
            .collect::<Option<Vec<_>>>()?
    };
    let first = *hops.first()?;
    Some(
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !trusted.contains(*ip))
            .unwrap_or(first),
    )
}

/// The base URL a trusted proxy reports (`Forwarded: proto=…;host=…`, else
/// `X-Forwarded-Proto` and `X-Forwarded-Host`), when it names a valid one.
fn forwarded_base(headers: &HeaderMap) -> Option<String> {
    let (mut proto, mut host) = (None, None);
    if let Some(last) = forwarded_elements(headers).last() {
        for (key, value) in last {
            if key.eq_ignore_ascii_case("proto") {
                proto = Some(value);
            } else if key.eq_ignore_ascii_case("host") {
                host = Some(value);
            }
        }
    }
    let last_of = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .next_back()
    };
    let proto = proto.or_else(|| last_of("x-forwarded-proto"));
    let host = host
        .or_else(|| last_of("x-forwarded-host"))
        .or_else(|| header_text(headers, header::HOST.as_str()))?;
    let proto = match proto.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("http") => "http",
        Some("https") => "https",
        Some(_) => return None,
    };
    let host = host.parse::<Authority>().ok()?;
    (!host.as_str().contains('@')).then(|| format!("{proto}://{host}"))
}

/// `http://` and the `Host` header when it names the address the connection was accepted on
/// (or `localhost` on a loopback address); else `http://` and that address.
fn direct_base<B>(request: &Request<B>, local: SocketAddr) -> String {
    let (scheme, default_port) = match request.extensions().get::<OverTls>() {
        Some(OverTls) => ("https", 443),
        None => ("http", 80),
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.trim().parse::<Authority>().ok())
        .or_else(|| request.uri().authority().cloned());
    if let Some(host) = host {
        let port = host.port_u16().unwrap_or(default_port);
        let name = host.host().trim_start_matches('[').trim_end_matches(']');
        let names_local = match name.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical() == local.ip().to_canonical(),
            Err(_) => name.eq_ignore_ascii_case("localhost") && local.ip().is_loopback(),
        };
        if port == local.port() && names_local {
            return format!("{scheme}://{host}");
        }
    }
    format!("{scheme}://{local}")
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The elements of every `Forwarded` header, in order, each as `(key, value)` pairs with
/// quotes removed.
fn forwarded_elements(headers: &HeaderMap) -> impl Iterator<Item = Vec<(String, String)>> + '_ {
    headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
                })
                .collect()
        })
}

/// The address of a forwarding node: `192.0.2.1`, `192.0.2.1:443`, `[2001:db8::1]:443` or
/// `2001:db8::1`. `None` for `unknown` and obfuscated names: the chain cannot be followed.
fn node_ip(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    const LOCAL: &str = "127.0.0.1:5000";

    fn request(pairs: &[(&str, &str)]) -> Request<()> {
        let mut request = Request::new(());
        *request.headers_mut() = headers(pairs);
        request
    }

    fn origin(pairs: &[(&str, &str)], peer: &str, trusted: &[&str]) -> Origin {
        Origin::of(
            &request(pairs),
            peer.parse().unwrap(),
            LOCAL.parse().unwrap(),
            &TrustedProxies::parse(trusted).unwrap(),
            None,
        )
    }

    #[test]
    fn forwarding_headers_of_an_untrusted_peer_are_ignored() {
        let o = origin(
            &[
                ("host", "evil.example"),
                ("x-forwarded-for", "10.9.9.9"),
                ("x-forwarded-host", "evil.example"),
            ],
            "192.0.2.7:4000",
            &[],
        );
        assert_eq!(o.client.ip().to_string(), "192.0.2.7");
        assert_eq!(&*o.base_url, "http://127.0.0.1:5000");
    }

    #[test]
    fn the_host_header_is_used_when_it_names_the_local_address() {
        let o = origin(&[("host", "localhost:5000")], "127.0.0.1:1", &[]);
        assert_eq!(&*o.base_url, "http://localhost:5000");
        let o = origin(&[("host", "127.0.0.1:5000")], "127.0.0.1:1", &[]);
        assert_eq!(&*o.base_url, "http://127.0.0.1:5000");
        let o = origin(&[("host", "localhost:6000")], "127.0.0.1:1", &[]);
        assert_eq!(&*o.base_url, "http://127.0.0.1:5000");
    }

    #[test]
    fn a_request_over_tls_is_https_and_h2_names_its_host_in_the_uri() {
        let over_tls = |mut request: Request<()>| {
            request.extensions_mut().insert(OverTls);
            Origin::of(
                &request,
                "127.0.0.1:1".parse().unwrap(),
                LOCAL.parse().unwrap(),
                &TrustedProxies::default(),
                None,
            )
        };
        let o = over_tls(request(&[("host", "localhost:5000")]));
        assert_eq!(&*o.base_url, "https://localhost:5000");
        let o = over_tls(request(&[("host", "elsewhere.example")]));
        assert_eq!(&*o.base_url, "https://127.0.0.1:5000");
        // HTTP/2 has no Host header: the `:authority` is the URI's.
        let h2 = Request::get("https://localhost:5000/v2/").body(()).unwrap();
        assert_eq!(&*over_tls(h2).base_url, "https://localhost:5000");
    }

    #[test]
    fn a_trusted_chain_is_walked_from_the_nearest_hop() {
        let o = origin(
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.2")],
            "10.0.0.1:1",
            &["10.0.0.0/8"],
        );
        assert_eq!(o.client.ip().to_string(), "203.0.113.5");
        let o = origin(
            &[("forwarded", "for=203.0.113.9;proto=https;host=reg.example")],
            "10.0.0.1:1",
            &["10.0.0.1"],
        );
        assert_eq!(o.client.ip().to_string(), "203.0.113.9");
        assert_eq!(&*o.base_url, "https://reg.example");
        let o = origin(
            &[("forwarded", "for=\"[2001:db8::1]:4711\"")],
            "10.0.0.1:1",
            &["10.0.0.1"],
        );
        assert_eq!(o.client.ip().to_string(), "2001:db8::1");
    }

    #[test]
    fn a_trusted_proxy_gives_the_url() {
        let o = origin(
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "registry.example"),
                ("x-forwarded-for", "203.0.113.5"),
            ],
            "10.0.0.1:1",
            &["10.0.0.1/32"],
        );
        assert_eq!(&*o.base_url, "https://registry.example");
        let bad = origin(
            &[
                ("x-forwarded-proto", "gopher"),
                ("x-forwarded-host", "r.example"),
            ],
            "10.0.0.1:1",
            &["10.0.0.1"],
        );
        assert_eq!(&*bad.base_url, "http://127.0.0.1:5000");
    }

    #[test]
    fn bad_entries_are_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/8", "nope"]).unwrap_err();
        assert!(err.contains("nope"));
    }
}
