//! Arbitrary forwarding headers: no panic; an untrusted peer is always its own client, and a
//! trusted peer with no forwarding information is its own client.
#![no_main]
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use finsec_ratelimit::client_ip::{ForwardedHeader, TrustedProxies};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line picks the peer and header kind; every further line is one header value.
    let mut lines = text.lines();
    let selector = lines.next().unwrap_or_default();
    let values: Vec<&str> = lines.collect();
    let header = if selector.contains('F') {
        ForwardedHeader::Forwarded
    } else {
        ForwardedHeader::XForwardedFor
    };
    let name = match header {
        ForwardedHeader::Forwarded => "forwarded",
        _ => "x-forwarded-for",
    };
    let proxies = TrustedProxies::parse(["10.0.0.0/8", "fd00::/8", "192.0.2.1"])
        .expect("valid proxy list")
        .with_header(header);
    let untrusted = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let headers = || values.iter().map(|v| (name, *v));
    assert_eq!(proxies.client_ip(untrusted, headers()), untrusted);

    for peer in [
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
    ] {
        let got = proxies.client_ip(peer, headers());
        // Without any header value, a trusted peer is its own client.
        if values.iter().all(|v| v.trim().is_empty()) {
            assert_eq!(got, peer);
        }
        // The walk is deterministic.
        assert_eq!(got, proxies.client_ip(peer, headers()));
    }
});
