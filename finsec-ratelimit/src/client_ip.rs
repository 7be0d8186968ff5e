//! The client's IP address, taken from forwarding headers only when they can be trusted.
//!
//! Behind a load balancer or reverse proxy, the TCP peer of the application is the proxy, and
//! the client's address arrives in a forwarding header (`X-Forwarded-For`, or RFC 7239
//! `Forwarded`). Anyone can send such a header, so its content is only as trustworthy as the
//! hop that wrote it:
//!
//! - If the direct peer is **not** a configured trusted proxy, every forwarding header is
//!   ignored and the peer's address is the client's address.
//! - If it is, the header is read **from the right** (each proxy appends the address it received
//!   the request from). Entries naming trusted proxies are skipped; the first (right-most)
//!   address that is not a trusted proxy is the client. Everything to its left was written by
//!   that client or by hops nobody vouches for, so it is never used: the left-most entry of
//!   `X-Forwarded-For` is attacker-chosen.
//! - If every entry is a trusted proxy, the request came from inside the trusted network and
//!   the left-most (last examined) trusted address is returned.
//! - An entry that cannot be read stops the walk: `unknown`, an obfuscated identifier
//!   (`_hidden`), an element without `for=`, or anything that is not an IP address. The result
//!   is then the last trusted hop, the proxy that wrote that entry, because no address further
//!   left can be attributed to anyone. Clients a proxy cannot identify therefore share that
//!   proxy's limit, which is the conservative choice for rate limiting.
//!
//! **Which header.** Only one header is read, the one the trusted proxies are configured to
//! write ([`ForwardedHeader`], `X-Forwarded-For` by default); if a request carries both, the
//! other is ignored. Choosing the header per request would let a client pick the one its
//! proxies do not maintain and so name any address it likes. All instances of the configured
//! header are read, in order, as one comma-separated list (RFC 9110 §5.3).
//!
//! Addresses are normalised: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4
//! address, both when matching trusted proxies and in the result, so one client cannot appear
//! under two keys. Ports (`192.0.2.1:4711`, `[2001:db8::1]:4711`) are dropped.
//!
//! This module has no HTTP dependency: headers are given as `(name, value)` pairs, so it works
//! with `http::HeaderMap`, or any other header representation.
//!
//! ```
//! use std::net::IpAddr;
//! use finsec_ratelimit::client_ip::TrustedProxies;
//!
//! let proxies = TrustedProxies::parse(["10.0.0.0/8"])?;
//! let peer: IpAddr = "10.0.0.7".parse().unwrap();
//! let headers = [("x-forwarded-for", "198.51.100.1, 203.0.113.9")];
//! // 198.51.100.1 was written by the client itself; 203.0.113.9 by our proxy.
//! assert_eq!(proxies.client_ip(peer, headers), "203.0.113.9".parse::<IpAddr>().unwrap());
//! # Ok::<(), finsec_ratelimit::Error>(())
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::error::{Error, Result};

/// Which forwarding header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most cloud load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name in lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// The proxies whose forwarding headers are believed, and which header they write.
///
/// The default trusts nobody, so forwarding headers are ignored and the peer address is used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedProxies")
            .field(
                "nets",
                &self
                    .nets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("header", &self.header)
            .finish()
    }
}

impl TrustedProxies {
    /// Trusts no proxy: the client is always the direct peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the given networks (a single proxy is a `/32` or `/128`).
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().map(|n| canonical_net(n).trunc()).collect(),
            header: ForwardedHeader::default(),
        }
    }

    /// Parses networks (`10.0.0.0/8`, `2001:db8::/32`) and single addresses (`192.0.2.10`),
    /// as they appear in configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming the entry (`trusted_proxies[i]`) that is neither.
    pub fn parse<I, S>(entries: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let entry = entry.as_ref().trim();
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(Error::Config {
                            path: format!("trusted_proxies[{i}]"),
                            reason: format!(
                                "{entry:?} is neither an IP address nor a CIDR network"
                            ),
                        });
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self::new(nets))
    }

    /// The same proxies, writing another forwarding header.
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The forwarding header that is read.
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` (normalised) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying `headers` (see the
    /// [module docs](self) for the rule). Header names are matched case-insensitively; values
    /// that are not valid UTF-8 count as unreadable entries.
    pub fn client_ip<I, N, V>(&self, peer: IpAddr, headers: I) -> IpAddr
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let wanted = self.header.name();
        let mut entries: Vec<Entry> = Vec::new();
        for (name, value) in headers {
            if !name.as_ref().eq_ignore_ascii_case(wanted) {
                continue;
            }
            match std::str::from_utf8(value.as_ref()) {
                Ok(value) => match self.header {
                    ForwardedHeader::XForwardedFor => parse_x_forwarded_for(value, &mut entries),
                    ForwardedHeader::Forwarded => parse_forwarded(value, &mut entries),
                },
                Err(_) => entries.push(Entry::Unreadable),
            }
        }
        let mut last_trusted = peer;
        for entry in entries.iter().rev() {
            match entry {
                Entry::Addr(ip) if self.contains(*ip) => last_trusted = *ip,
                Entry::Addr(ip) => return *ip,
                Entry::Unreadable => return last_trusted,
            }
        }
        last_trusted
    }
}

/// Normalises an IPv4-mapped IPv6 network into the IPv4 network it covers.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(mapped) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped);
    }
    net
}

/// One hop of a forwarding header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Addr(IpAddr),
    Unreadable,
}

/// Reads one node: an IP address, optionally with a port, IPv6 optionally in brackets.
fn parse_node(node: &str) -> Entry {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Entry::Addr(ip.to_canonical());
    }
    if let Ok(sock) = node.parse::<SocketAddr>() {
        return Entry::Addr(sock.ip().to_canonical());
    }
    if let Some(inner) = node.strip_prefix('[').and_then(|n| n.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<std::net::Ipv6Addr>()
    {
        return Entry::Addr(IpAddr::V6(ip).to_canonical());
    }
    Entry::Unreadable
}

/// `X-Forwarded-For: a, b, c`. Empty list elements are ignored (RFC 9110 §5.6.1).
fn parse_x_forwarded_for(value: &str, out: &mut Vec<Entry>) {
    for part in value.split(',') {
        let part = part.trim_matches([' ', '\t']);
        if !part.is_empty() {
            out.push(parse_node(part));
        }
    }
}

/// RFC 7239 `Forwarded`: elements separated by `,`, pairs by `;`, each `name=value` with a
/// token or quoted-string value. The `for` parameter of each element is its hop; an element
/// without a readable `for` is unreadable.
fn parse_forwarded(value: &str, out: &mut Vec<Entry>) {
    let mut parser = ForwardedParser {
        rest: value.as_bytes(),
    };
    loop {
        parser.skip_ows();
        if parser.rest.is_empty() {
            return;
        }
        if parser.eat(b',') {
            // An empty list element.
            continue;
        }
        let entry = parser.element();
        parser.skip_ows();
        match entry {
            Some(entry) if parser.rest.is_empty() || parser.eat(b',') => out.push(entry),
            _ => {
                // A syntax error: the element boundaries after it cannot be trusted, so the
                // rest of this value is one unreadable entry. The walk from the right stops
                // there; whatever was parsed to its left is never reached.
                out.push(Entry::Unreadable);
                return;
            }
        }
    }
}

struct ForwardedParser<'a> {
    rest: &'a [u8],
}

impl ForwardedParser<'_> {
    fn skip_ows(&mut self) {
        while let [b' ' | b'\t', tail @ ..] = self.rest {
            self.rest = tail;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        match self.rest {
            [first, tail @ ..] if *first == c => {
                self.rest = tail;
                true
            }
            _ => false,
        }
    }

    fn token(&mut self) -> Option<String> {
        let len = self.rest.iter().take_while(|b| is_tchar(**b)).count();
        let (tok, tail) = self.rest.split_at_checked(len)?;
        if tok.is_empty() {
            return None;
        }
        self.rest = tail;
        String::from_utf8(tok.to_vec()).ok()
    }

    fn quoted(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            match self.rest {
                [b'"', tail @ ..] => {
                    self.rest = tail;
                    return String::from_utf8(out).ok();
                }
                [b'\\', c, tail @ ..] => {
                    out.push(*c);
                    self.rest = tail;
                }
                [c, tail @ ..] if *c != b'\\' => {
                    out.push(*c);
                    self.rest = tail;
                }
                _ => return None,
            }
        }
    }

    /// One `pair *( ";" pair )` element; `None` on a syntax error.
    fn element(&mut self) -> Option<Entry> {
        let mut hop = None;
        loop {
            self.skip_ows();
            let name = self.token()?;
            if !self.eat(b'=') {
                return None;
            }
            let value = if self.rest.first() == Some(&b'"') {
                self.quoted()?
            } else {
                self.token()?
            };
            if name.eq_ignore_ascii_case("for") {
                if hop.is_some() {
                    // Two `for` parameters in one element: ambiguous.
                    return None;
                }
                hop = Some(parse_node(&value));
            }
            self.skip_ows();
            if !self.eat(b';') {
                break;
            }
        }
        // `unknown`, obfuscated identifiers (`_abc`) and a missing `for` are all unreadable.
        Some(hop.unwrap_or(Entry::Unreadable))
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fwd(value: &str) -> Vec<Entry> {
        let mut out = Vec::new();
        parse_forwarded(value, &mut out);
        out
    }

    #[test]
    fn forwarded_syntax() {
        assert_eq!(
            fwd(r#"for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=http;by=203.0.113.43"#),
            [
                Entry::Addr(ip("192.0.2.43")),
                Entry::Addr(ip("2001:db8:cafe::17"))
            ]
        );
        assert_eq!(fwd("For=\"192.0.2.1\""), [Entry::Addr(ip("192.0.2.1"))]);
        assert_eq!(fwd("proto=https;for=192.0.2.1:80"), [Entry::Unreadable]);
        assert_eq!(
            fwd("for=unknown, for=_hidden, by=10.0.0.1"),
            [Entry::Unreadable, Entry::Unreadable, Entry::Unreadable]
        );
        assert_eq!(fwd("for=[::1]"), [Entry::Unreadable]);
        assert_eq!(fwd("for=\"unterminated"), [Entry::Unreadable]);
        assert_eq!(fwd("for=1.2.3.4;for=5.6.7.8"), [Entry::Unreadable]);
        assert_eq!(fwd(" , for=1.2.3.4 ,, "), [Entry::Addr(ip("1.2.3.4"))]);
        assert_eq!(
            fwd("for=\"\\[::1\\]\""),
            [Entry::Addr(ip("::1"))],
            "quoted-pair escapes are undone"
        );
    }

    #[test]
    fn nodes() {
        assert_eq!(parse_node("::ffff:192.0.2.1"), Entry::Addr(ip("192.0.2.1")));
        assert_eq!(
            parse_node("[::ffff:192.0.2.1]:8080"),
            Entry::Addr(ip("192.0.2.1"))
        );
        assert_eq!(parse_node("[2001:db8::1]"), Entry::Addr(ip("2001:db8::1")));
        assert_eq!(parse_node("fe80::1%eth0"), Entry::Unreadable);
        assert_eq!(parse_node("example.com"), Entry::Unreadable);
        assert_eq!(parse_node("1.2.3.4.5"), Entry::Unreadable);
    }

    #[test]
    fn mapped_networks_are_normalised() {
        let t = TrustedProxies::parse(["::ffff:10.0.0.0/104"]).unwrap();
        assert_eq!(t.networks(), ["10.0.0.0/8".parse::<IpNet>().unwrap()]);
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("::ffff:10.1.2.3")));
    }
}
