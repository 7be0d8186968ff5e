//! The client's address, resolved once per request.
//!
//! The client is the TCP peer unless the peer is a `--trusted-proxy`; then `X-Forwarded-For`
//! is read from the right, skipping trusted proxies (see [`finsec_ratelimit::client_ip`]).
//! Without `--trusted-proxy`, forwarding headers are ignored, so a client cannot pick its own
//! address. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 address it maps.
//!
//! The result goes into the request's extensions as [`ClientAddr`], for every layer and
//! handler after this one (rate limits, RBAC address conditions, a later audit layer), so
//! that they all agree on who the client is.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use finsec_ratelimit::TrustedProxies;

/// The client's address (in the request extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address a request from `peer` with `headers` comes from; an unknown peer is
    /// `0.0.0.0` (one shared bucket, so such requests are still limited).
    pub fn resolve(
        proxies: &TrustedProxies,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Self {
        let Some(peer) = peer else {
            return Self(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        };
        let ip = proxies.client_ip(
            peer,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        );
        Self(ip.to_canonical())
    }

    /// The address.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

/// Middleware for [`axum::middleware::from_fn_with_state`] (state: the trusted proxies):
/// puts the [`ClientAddr`] of the request into its extensions.
pub async fn client_addr(
    axum::extract::State(proxies): axum::extract::State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let addr = ClientAddr::resolve(&proxies, peer, request.headers());
    request.extensions_mut().insert(addr);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    #[test]
    fn addresses_are_resolved_through_trusted_proxies_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.1".parse().unwrap(),
        );
        let none = TrustedProxies::none();
        let proxy = TrustedProxies::parse(["127.0.0.1/32"]).unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            ClientAddr::resolve(&none, Some(local), &headers).ip(),
            local
        );
        assert_eq!(
            ClientAddr::resolve(&proxy, Some(local), &headers).ip(),
            "203.0.113.1".parse::<IpAddr>().unwrap()
        );
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            ClientAddr::resolve(&none, Some(mapped), &HeaderMap::new()).ip(),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            ClientAddr::resolve(&none, None, &headers).ip(),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }
}
