//! Classifies resolved IP addresses so the proxy refuses to dial internal,
//! special-purpose or IPv4-smuggling addresses (SSRF guard). Unknown special
//! forms are refused: the check fails closed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address may not be dialled without an explicit `connect_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    Cgnat,
    Metadata,
    Multicast,
    Broadcast,
    Documentation,
    Reserved,
    Ipv4Embedded,
}

/// Returns why `ip` is forbidden, or `None` when it is public and OK to dial.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Cloud instance-metadata endpoint; checked before its enclosing link-local range.
const V4_METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// AWS IPv6 instance-metadata endpoint; checked before its enclosing fc00::/7.
const V6_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    use Forbidden::*;
    if ip == V4_METADATA {
        return Some(Metadata);
    }
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Some(Unspecified),
        (127, _, _) => Some(Loopback),
        (10, _, _) | (192, 168, _) => Some(Private),
        (172, 16..=31, _) => Some(Private),
        (169, 254, _) => Some(LinkLocal),
        (100, 64..=127, _) => Some(Cgnat),
        // IETF protocol assignments (192.0.0/24) and benchmarking (198.18/15).
        (192, 0, 0) | (198, 18..=19, _) => Some(Reserved),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some(Documentation),
        (224..=239, _, _) => Some(Multicast),
        // Broadcast sits inside 240/4, so it must be matched first.
        _ if ip == Ipv4Addr::BROADCAST => Some(Broadcast),
        (240..=255, _, _) => Some(Reserved),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    use Forbidden::*;
    if ip == V6_METADATA {
        return Some(Metadata);
    }
    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(Unspecified);
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some(Loopback);
    }
    if embeds_v4(ip) {
        return Some(Ipv4Embedded);
    }
    let s = ip.segments();
    match s {
        [0xfc00..=0xfdff, ..] => Some(Private),
        [0xfe80..=0xfebf, ..] => Some(LinkLocal),
        // Deprecated site-local (RFC 3879): the old private range, treated as such.
        [0xfec0..=0xfeff, ..] => Some(Private),
        [0xff00..=0xffff, ..] => Some(Multicast),
        [0x2001, 0x0db8, ..] => Some(Documentation),
        // RFC 9637 documentation range 3fff::/20.
        [0x3fff, 0x0000..=0x0fff, ..] => Some(Documentation),
        // Discard-only 100::/64 and benchmarking 2001:2::/48.
        [0x0100, 0, 0, 0, ..] | [0x2001, 0x0002, 0, ..] => Some(Reserved),
        [0x2000..=0x3fff, ..] => None,
        // Outside global unicast 2000::/3 nothing is assigned for public hosts
        // (IANA); refuse it rather than wait for the next special prefix.
        _ => Some(Reserved),
    }
}

/// True for every form that carries an IPv4 address inside an IPv6 one; such
/// forms could reach an internal IPv4 target through a translator or the
/// dual-stack socket, so they are refused whatever the embedded address.
fn embeds_v4(ip: Ipv6Addr) -> bool {
    matches!(
        ip.segments(),
        // IPv4-compatible ::/96 (:: and ::1 are handled by the caller).
        [0, 0, 0, 0, 0, 0, _, _]
        // IPv4-mapped ::ffff:0:0/96.
        | [0, 0, 0, 0, 0, 0xffff, _, _]
        // IPv4-translated ::ffff:0:0:0/96 (RFC 2765).
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
        | [0x0064, 0xff9b, 0, 0, 0, 0, _, _]
        | [0x0064, 0xff9b, 0x0001, ..]
        // 6to4 2002::/16 and Teredo 2001::/32.
        | [0x2002, ..]
        | [0x2001, 0x0000, ..]
    )
}

#[cfg(test)]
mod tests {
    use super::Forbidden::*;
    use super::*;

    fn check(cases: &[(&str, &str, Option<Forbidden>)]) {
        for (name, addr, want) in cases {
            let Ok(ip) = addr.parse::<IpAddr>() else {
                panic!("case {name}: bad literal {addr}");
            };
            assert_eq!(classify(ip), *want, "case {name} ({addr})");
        }
    }

    const V4: &[(&str, &str, Option<Forbidden>)] = &[
        ("this-net first", "0.0.0.0", Some(Unspecified)),
        ("this-net last", "0.255.255.255", Some(Unspecified)),
        ("this-net after", "1.0.0.0", None),
        ("loopback", "127.0.0.1", Some(Loopback)),
        ("loopback last", "127.255.255.255", Some(Loopback)),
        ("loopback before", "126.255.255.255", None),
        ("loopback after", "128.0.0.0", None),
        ("10/8 in", "10.1.2.3", Some(Private)),
        ("10/8 before", "9.255.255.255", None),
        ("10/8 after", "11.0.0.0", None),
        ("172.16/12 first", "172.16.0.0", Some(Private)),
        ("172.16/12 last", "172.31.255.255", Some(Private)),
        ("172.16/12 before", "172.15.255.255", None),
        ("172.16/12 after", "172.32.0.0", None),
        ("192.168/16 in", "192.168.1.1", Some(Private)),
        ("192.168/16 before", "192.167.255.255", None),
        ("192.168/16 after", "192.169.0.0", None),
        ("link-local", "169.254.1.1", Some(LinkLocal)),
        ("link-local after", "169.255.0.0", None),
        ("link-local before", "169.253.255.255", None),
        ("metadata", "169.254.169.254", Some(Metadata)),
        ("metadata neighbour", "169.254.169.253", Some(LinkLocal)),
        ("cgnat first", "100.64.0.0", Some(Cgnat)),
        ("cgnat last", "100.127.255.255", Some(Cgnat)),
        ("cgnat before", "100.63.255.255", None),
        ("cgnat after", "100.128.0.0", None),
        ("ietf 192.0.0/24", "192.0.0.8", Some(Reserved)),
        ("ietf after", "192.0.1.0", None),
        ("test-net-1", "192.0.2.1", Some(Documentation)),
        ("test-net-1 after", "192.0.3.0", None),
        ("benchmark first", "198.18.0.0", Some(Reserved)),
        ("benchmark last", "198.19.255.255", Some(Reserved)),
        ("benchmark before", "198.17.255.255", None),
        ("benchmark after", "198.20.0.0", None),
        ("test-net-2", "198.51.100.7", Some(Documentation)),
        ("test-net-2 after", "198.51.101.0", None),
        ("test-net-3", "203.0.113.9", Some(Documentation)),
        ("test-net-3 before", "203.0.112.255", None),
        ("multicast first", "224.0.0.1", Some(Multicast)),
        ("multicast last", "239.255.255.255", Some(Multicast)),
        ("multicast before", "223.255.255.255", None),
        ("reserved 240/4", "240.0.0.1", Some(Reserved)),
        ("reserved near broadcast", "255.255.255.254", Some(Reserved)),
        ("broadcast", "255.255.255.255", Some(Broadcast)),
        ("public", "8.8.8.8", None),
        ("public 2", "93.184.216.34", None),
    ];

    #[test]
    fn v4_table() {
        check(V4);
    }

    const V6: &[(&str, &str, Option<Forbidden>)] = &[
        ("unspecified", "::", Some(Unspecified)),
        ("loopback", "::1", Some(Loopback)),
        ("ula first", "fc00::", Some(Private)),
        ("ula last", "fdff:ffff::1", Some(Private)),
        ("ula before", "fbff:ffff::1", Some(Reserved)),
        ("ula after", "fe00::1", Some(Reserved)),
        ("aws metadata", "fd00:ec2::254", Some(Metadata)),
        ("aws metadata neighbour", "fd00:ec2::253", Some(Private)),
        ("link-local", "fe80::1", Some(LinkLocal)),
        ("link-local last", "febf:ffff::1", Some(LinkLocal)),
        ("link-local before", "fe7f::1", Some(Reserved)),
        ("site-local", "fec0::1", Some(Private)),
        ("site-local last", "feff::1", Some(Private)),
        ("multicast", "ff02::1", Some(Multicast)),
        ("multicast global", "ff0e::1", Some(Multicast)),
        ("documentation", "2001:db8::1", Some(Documentation)),
        ("documentation before", "2001:db7::1", None),
        ("documentation after", "2001:db9::1", None),
        ("documentation 3fff::/20", "3fff:fff::1", Some(Documentation)),
        ("documentation 3fff::/20 after", "3fff:1000::1", None),
        ("discard", "100::1", Some(Reserved)),
        ("discard after", "100:0:0:1::1", Some(Reserved)),
        ("benchmark", "2001:2::1", Some(Reserved)),
        ("benchmark after", "2001:2:1::1", None),
        ("mapped public", "::ffff:8.8.8.8", Some(Ipv4Embedded)),
        ("mapped loopback", "::ffff:127.0.0.1", Some(Ipv4Embedded)),
        ("mapped outside", "::fffe:8.8.8.8", Some(Reserved)),
        ("mapped neighbour", "0:0:0:0:1:ffff:808:808", Some(Reserved)),
        ("compatible", "::8.8.8.8", Some(Ipv4Embedded)),
        ("compatible two", "::2", Some(Ipv4Embedded)),
        ("compatible outside", "0:0:0:0:0:1:808:808", Some(Reserved)),
        ("translated", "::ffff:0:8.8.8.8", Some(Ipv4Embedded)),
        ("translated outside", "::ffff:1:808:808", Some(Reserved)),
        ("nat64", "64:ff9b::8.8.8.8", Some(Ipv4Embedded)),
        ("nat64 outside", "64:ff9b:0:0:0:1:808:808", Some(Reserved)),
        ("nat64 local", "64:ff9b:1::a00:1", Some(Ipv4Embedded)),
        ("nat64 local last", "64:ff9b:1:ffff::1", Some(Ipv4Embedded)),
        ("nat64 local after", "64:ff9b:2::1", Some(Reserved)),
        ("6to4", "2002:c000:204::1", Some(Ipv4Embedded)),
        ("6to4 before", "2001:ffff::1", None),
        ("6to4 after", "2003::1", None),
        ("teredo", "2001:0:4136:e378::1", Some(Ipv4Embedded)),
        ("teredo after", "2001:1::1", None),
        ("global unicast first", "2000::1", None),
        ("global unicast last", "3fff:ffff::1", None),
        ("below global unicast", "1fff:ffff::1", Some(Reserved)),
        ("above global unicast", "4000::1", Some(Reserved)),
        ("public", "2606:4700:4700::1111", None),
        ("public 2", "2a00:1450:4001::200e", None),
    ];

    #[test]
    fn v6_table() {
        check(V6);
    }
}
