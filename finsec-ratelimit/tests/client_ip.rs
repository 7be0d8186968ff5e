//! The client-IP extractor against spoofed and malformed forwarding headers.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

use std::net::IpAddr;

use finsec_ratelimit::client_ip::{ForwardedHeader, TrustedProxies};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn proxies() -> TrustedProxies {
    TrustedProxies::parse(["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.10"]).unwrap()
}

#[test]
fn untrusted_peer_ignores_forwarding_headers() {
    let t = proxies();
    let got = t.client_ip(
        ip("198.51.100.7"),
        [("X-Forwarded-For", "1.2.3.4"), ("Forwarded", "for=5.6.7.8")],
    );
    assert_eq!(got, ip("198.51.100.7"));
    let none = TrustedProxies::none();
    assert_eq!(
        none.client_ip(ip("10.0.0.1"), [("x-forwarded-for", "1.2.3.4")]),
        ip("10.0.0.1")
    );
}

#[test]
fn leftmost_attacker_entry_is_ignored() {
    let t = proxies();
    // The client sent "6.6.6.6"; our proxy appended the address it saw.
    let got = t.client_ip(
        ip("10.0.0.2"),
        [("x-forwarded-for", "6.6.6.6, 203.0.113.9")],
    );
    assert_eq!(got, ip("203.0.113.9"));
    // Naming a trusted proxy on the left does not help the attacker.
    let got = t.client_ip(
        ip("10.0.0.2"),
        [("x-forwarded-for", "6.6.6.6, 10.9.9.9, 203.0.113.9")],
    );
    assert_eq!(got, ip("203.0.113.9"));
}

#[test]
fn chains_of_proxies_and_header_instances() {
    let t = proxies();
    let got = t.client_ip(
        ip("192.0.2.10"),
        [
            ("X-Forwarded-For", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.1.1.1 , 10.2.2.2"),
        ],
    );
    assert_eq!(got, ip("203.0.113.9"));
    // Everything trusted: the request came from inside; the left-most trusted hop is it.
    let got = t.client_ip(ip("10.0.0.2"), [("x-forwarded-for", "10.3.3.3, 10.4.4.4")]);
    assert_eq!(got, ip("10.3.3.3"));
    // No header at all.
    let got = t.client_ip(ip("10.0.0.2"), Vec::<(&str, &str)>::new());
    assert_eq!(got, ip("10.0.0.2"));
}

#[test]
fn ipv6_and_ports() {
    let t = proxies();
    let got = t.client_ip(
        ip("2001:db8:ffff::1"),
        [("x-forwarded-for", "[2001:db8:1::5]:443, 2001:db8:ffff::2")],
    );
    assert_eq!(got, ip("2001:db8:1::5"));
    let got = t.client_ip(ip("10.0.0.1"), [("x-forwarded-for", "203.0.113.9:51000")]);
    assert_eq!(got, ip("203.0.113.9"));
}

#[test]
fn ipv4_mapped_addresses_are_normalised() {
    let t = proxies();
    // A mapped peer is matched against the IPv4 trusted network.
    let got = t.client_ip(
        ip("::ffff:10.0.0.1"),
        [("x-forwarded-for", "::ffff:203.0.113.9")],
    );
    assert_eq!(got, ip("203.0.113.9"));
    assert_eq!(
        TrustedProxies::none().client_ip(ip("::ffff:198.51.100.1"), Vec::<(&str, &str)>::new()),
        ip("198.51.100.1")
    );
}

#[test]
fn garbage_stops_the_walk_at_the_last_trusted_hop() {
    let t = proxies();
    for garbage in ["not-an-ip", "1.2.3", "unknown", "fe80::1%eth0", "300.1.1.1"] {
        let got = t.client_ip(
            ip("10.0.0.2"),
            [("x-forwarded-for", format!("6.6.6.6, {garbage}, 10.5.5.5"))],
        );
        assert_eq!(got, ip("10.5.5.5"), "{garbage}");
    }
    let got = t.client_ip(ip("10.0.0.2"), [("x-forwarded-for", &b"\xff\xfe"[..])]);
    assert_eq!(got, ip("10.0.0.2"));
    // Empty list elements are not entries.
    let got = t.client_ip(ip("10.0.0.2"), [("x-forwarded-for", "203.0.113.9,, ,")]);
    assert_eq!(got, ip("203.0.113.9"));
}

#[test]
fn forwarded_header() {
    let t = proxies().with_header(ForwardedHeader::Forwarded);
    let got = t.client_ip(
        ip("10.0.0.2"),
        [(
            "Forwarded",
            r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.7.7.7;by=10.0.0.2"#,
        )],
    );
    assert_eq!(got, ip("2001:db8:cafe::17"));
    // Obfuscated and unknown identifiers stop the walk.
    for hop in ["for=unknown", "for=_hidden", "proto=http"] {
        let got = t.client_ip(
            ip("10.0.0.2"),
            [("forwarded", format!("for=6.6.6.6, {hop}, for=10.8.8.8"))],
        );
        assert_eq!(got, ip("10.8.8.8"), "{hop}");
    }
    // An unterminated quote swallows the rest of the value: nothing in it can be placed, so
    // the result is the peer itself.
    let got = t.client_ip(
        ip("10.0.0.2"),
        [("forwarded", "for=6.6.6.6, for=\"bad, for=10.8.8.8")],
    );
    assert_eq!(got, ip("10.0.0.2"));
    // Only the configured header is read: XFF is ignored here, Forwarded under the default.
    let both = [("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")];
    assert_eq!(t.client_ip(ip("10.0.0.2"), both), ip("2.2.2.2"));
    assert_eq!(proxies().client_ip(ip("10.0.0.2"), both), ip("1.1.1.1"));
}

#[test]
fn bad_trusted_proxy_entries_are_config_errors() {
    let err = TrustedProxies::parse(["10.0.0.0/8", "10.0.0.0/33"]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("trusted_proxies[1]"), "{text}");
    assert!(TrustedProxies::parse(["example.com"]).is_err());
    let t = TrustedProxies::parse(["10.1.2.3/8"]).unwrap();
    assert!(t.contains(ip("10.200.0.1")), "host bits are dropped");
}
