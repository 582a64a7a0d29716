use super::*;
use proptest::prelude::*;

/// What an authority parses to: (host, port), or `None` for a refusal.
type Want = Option<(&'static str, Option<u16>)>;

/// (case, authority, expected).
const CASES: &[(&str, &str, Want)] = &[
    ("name", "api.partner.example", Some(("api.partner.example", None))),
    (
        "name with port",
        "api.partner.example:8443",
        Some(("api.partner.example", Some(8443))),
    ),
    (
        "upper case folded",
        "API.Partner.EXAMPLE",
        Some(("api.partner.example", None)),
    ),
    ("trailing dot trimmed", "a.example.", Some(("a.example", None))),
    (
        "trailing dot and port",
        "a.example.:443",
        Some(("a.example", Some(443))),
    ),
    ("single label", "localhost", Some(("localhost", None))),
    (
        "digit-led label",
        "1password.example",
        Some(("1password.example", None)),
    ),
    ("inner hyphens", "a--b.x-y.example", Some(("a--b.x-y.example", None))),
    (
        "63-char label",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
        Some((
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
            None,
        )),
    ),
    (
        "64-char label",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
        None,
    ),
    ("ipv4", "192.0.2.7", Some(("192.0.2.7", None))),
    ("ipv4 with port", "192.0.2.7:8080", Some(("192.0.2.7", Some(8080)))),
    ("ipv6", "[2001:db8::1]", Some(("2001:db8::1", None))),
    (
        "ipv6 canonical",
        "[2001:DB8:0:0::1]:443",
        Some(("2001:db8::1", Some(443))),
    ),
    ("ipv6 mapped v4", "[::ffff:192.0.2.7]", Some(("::ffff:192.0.2.7", None))),
    // The attack: a second colon smuggles another host in front of an allowed suffix.
    ("two colons", "attacker.example:x.partner.example:80", None),
    ("two colons no port", "attacker.example:x.partner.example", None),
    ("colon then suffix", "attacker.example:.partner.example", None),
    ("port then name", "attacker.example:80.partner.example", None),
    ("two ports", "a.example:80:80", None),
    ("empty port", "a.example:", None),
    ("plus port", "a.example:+80", None),
    ("minus port", "a.example:-80", None),
    ("leading zero port", "a.example:080", None),
    ("zero port", "a.example:0", None),
    ("port too big", "a.example:65536", None),
    ("port six digits", "a.example:000443", None),
    ("port with space", "a.example: 80", None),
    ("hex port", "a.example:0x50", None),
    ("userinfo", "user@a.example", None),
    ("userinfo with colon", "user:pw@a.example", None),
    ("userinfo to suffix", "attacker.example@x.partner.example", None),
    ("percent-encoded dot", "attacker%2eexample", None),
    ("percent-encoded colon", "attacker.example%3a.partner.example", None),
    ("percent-encoded at", "a%40x.partner.example", None),
    ("underscore", "a_b.example", None),
    ("space", "a b.example", None),
    ("tab", "a\tb.example", None),
    ("backslash", "attacker.example\\.partner.example", None),
    ("slash", "attacker.example/.partner.example", None),
    ("question mark", "attacker.example?.partner.example", None),
    ("hash", "attacker.example#.partner.example", None),
    ("semicolon", "attacker.example;.partner.example", None),
    ("comma", "a.example,b.example", None),
    ("nul", "a.example\0.partner.example", None),
    ("non-ascii", "b\u{fc}cher.example", None),
    ("fullwidth dot", "attacker\u{ff0e}example", None),
    ("empty", "", None),
    ("only dot", ".", None),
    ("only port", ":443", None),
    ("leading dot", ".a.example", None),
    ("empty label", "a..example", None),
    ("two trailing dots", "a.example..", None),
    ("leading hyphen", "-a.example", None),
    ("trailing hyphen", "a-.example", None),
    ("octal ipv4", "0177.0.0.1", None),
    ("short ipv4", "127.1", None),
    ("hex ipv4", "0x7f.0.0.1", None),
    ("hex last label", "a.example.0x1", None),
    ("decimal ipv4", "2130706433", None),
    ("numeric last label", "partner.example.123", None),
    ("five-part ipv4", "1.2.3.4.5", None),
    ("ipv4 octet over 255", "1.2.3.256", None),
    ("bare ipv6", "2001:db8::1", None),
    ("ipv6 zone", "[fe80::1%25eth0]", None),
    ("ipv6 future", "[v1.x]", None),
    ("ipv6 unclosed", "[::1", None),
    ("ipv6 trailing junk", "[::1]x", None),
    ("ipv6 double bracket", "[::1]]:80", None),
    ("ipv6 empty port", "[::1]:", None),
    ("ipv6 two ports", "[::1]:80:80", None),
    ("bracketed name", "[a.example]", None),
];

#[test]
fn authorities() {
    for (name, input, want) in CASES {
        let got = parse_authority(input).ok();
        let got = got.as_ref().map(|(h, p)| (h.as_str(), *p));
        assert_eq!(got, *want, "case {name}: {input:?}");
    }
}

#[test]
fn name_length_bound() {
    let label = "a".repeat(63);
    let ok = format!("{label}.{label}.{label}.{}", "a".repeat(61));
    assert_eq!(ok.len(), 253);
    assert!(Host::parse(&ok).is_ok());
    assert!(Host::parse(&format!("{ok}.")).is_ok(), "a trailing dot is not counted");
    assert_eq!(Host::parse(&format!("{ok}a")), Err(BadHost));
}

#[test]
fn uri_host_brackets_v6_only() {
    assert_eq!(Host::parse("[::1]").map(|h| h.uri_host()), Ok("[::1]".to_owned()));
    assert_eq!(
        Host::parse("A.example").map(|h| h.uri_host()),
        Ok("a.example".to_owned())
    );
}

proptest! {
    /// Whatever parses is canonical and reads back the same through `http::Uri`,
    /// the type hyper's pool, hyper-rustls' SNI and the dialer take the host from.
    #[test]
    fn parsed_hosts_round_trip_through_uri(s in "[a-zA-Z0-9.:\\[\\]_%@-]{0,40}") {
        if let Ok((host, port)) = parse_authority(&s) {
            let uri_host = host.uri_host();
            let authority = match port {
                Some(p) => format!("{uri_host}:{p}"),
                None => uri_host.clone(),
            };
            let uri: http::Uri = format!("https://{authority}/").parse().expect("a valid host makes a valid URI");
            prop_assert_eq!(uri.host(), Some(uri_host.as_str()));
            prop_assert_eq!(uri.port_u16(), port);
            prop_assert_eq!(Host::parse(&uri_host), Ok(host));
        }
    }
}
