//! Table tests for `decide`: each case names what it checks.

use super::*;
use crate::policy::compile;

const POLICY: &str = r#"
version: 1
defaults: {plain_http: upgrade}
destinations:
  shipper:
    host: api.shipper.example
    credential: {secret: "env:EG_DECIDE_TEST_KEY"}
    routes:
      - {methods: [POST], path: /v1/shipments}
      - {methods: [GET], path: /v1/shipments/*}
  any:
    host: "*.cdn.example"
  tunnel:
    host: updates.example
    tunnel: true
  trial:
    host: new.partner.example
    mode: report
    routes:
      - {methods: [GET], path: /ok}
  custom_port:
    host: gw.example
    port: 8443
"#;

/// `POLICY` with its secret from a file the repo ships: no test sets an
/// environment variable (`set_var` races with every thread reading it).
fn policy_text() -> String {
    let key = concat!("file:", env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unit-test-key");
    POLICY.replace("env:EG_DECIDE_TEST_KEY", key)
}

fn policy() -> Policy {
    compile(&policy_text()).unwrap()
}

#[test]
#[allow(clippy::type_complexity)]
fn decisions() {
    let p = policy();
    let (get, post, del, connect) = (Method::GET, Method::POST, Method::DELETE, Method::CONNECT);
    use Scheme::*;
    // name, method, scheme, host, port, path, verdict, destination, would_refuse
    let cases: &[(
        &str,
        &Method,
        Scheme,
        &str,
        Option<u16>,
        &str,
        Verdict,
        Option<&str>,
        Option<Reason>,
    )] = &[
        (
            "unknown host",
            &get,
            Http,
            "evil.example",
            None,
            "/",
            Verdict::Refuse(Reason::DestinationNotAllowed),
            None,
            None,
        ),
        (
            "route post",
            &post,
            Http,
            "api.shipper.example",
            None,
            "/v1/shipments",
            Verdict::Allow,
            Some("shipper"),
            None,
        ),
        (
            "route get star",
            &get,
            Http,
            "api.shipper.example",
            None,
            "/v1/shipments/9",
            Verdict::Allow,
            Some("shipper"),
            None,
        ),
        (
            "wrong method",
            &del,
            Http,
            "api.shipper.example",
            None,
            "/v1/shipments",
            Verdict::Refuse(Reason::RouteNotAllowed),
            Some("shipper"),
            None,
        ),
        (
            "wrong path",
            &post,
            Http,
            "api.shipper.example",
            None,
            "/v1/other",
            Verdict::Refuse(Reason::RouteNotAllowed),
            Some("shipper"),
            None,
        ),
        (
            "subdomain of exact host",
            &get,
            Http,
            "x.api.shipper.example",
            None,
            "/",
            Verdict::Refuse(Reason::DestinationNotAllowed),
            None,
            None,
        ),
        (
            "wildcard",
            &get,
            Http,
            "img.cdn.example",
            None,
            "/a/b",
            Verdict::Allow,
            Some("any"),
            None,
        ),
        (
            "wildcard apex",
            &get,
            Http,
            "cdn.example",
            None,
            "/",
            Verdict::Refuse(Reason::DestinationNotAllowed),
            None,
            None,
        ),
        (
            "http port 80",
            &get,
            Http,
            "img.cdn.example",
            Some(80),
            "/",
            Verdict::Allow,
            Some("any"),
            None,
        ),
        (
            "http odd port",
            &get,
            Http,
            "img.cdn.example",
            Some(8080),
            "/",
            Verdict::Refuse(Reason::DestinationNotAllowed),
            Some("any"),
            None,
        ),
        (
            "https 443",
            &get,
            Https,
            "img.cdn.example",
            Some(443),
            "/",
            Verdict::Allow,
            Some("any"),
            None,
        ),
        (
            "custom port named",
            &get,
            Http,
            "gw.example",
            Some(8443),
            "/",
            Verdict::Allow,
            Some("custom_port"),
            None,
        ),
        (
            "connect to credential dest",
            &connect,
            Connect,
            "api.shipper.example",
            Some(443),
            "",
            Verdict::Refuse(Reason::TunnelNotAllowed),
            Some("shipper"),
            None,
        ),
        (
            "connect to tunnel dest",
            &connect,
            Connect,
            "updates.example",
            Some(443),
            "",
            Verdict::Allow,
            Some("tunnel"),
            None,
        ),
        (
            "connect other port",
            &connect,
            Connect,
            "updates.example",
            Some(22),
            "",
            Verdict::Refuse(Reason::DestinationNotAllowed),
            Some("tunnel"),
            None,
        ),
        (
            "connect unknown",
            &connect,
            Connect,
            "evil.example",
            Some(443),
            "",
            Verdict::Refuse(Reason::DestinationNotAllowed),
            None,
            None,
        ),
        (
            "report mode passes a refusal",
            &get,
            Http,
            "new.partner.example",
            None,
            "/nope",
            Verdict::Allow,
            Some("trial"),
            Some(Reason::RouteNotAllowed),
        ),
        (
            "report mode matching route",
            &get,
            Http,
            "new.partner.example",
            None,
            "/ok",
            Verdict::Allow,
            Some("trial"),
            None,
        ),
    ];
    for (name, method, scheme, host, port, path, verdict, dest, would) in cases {
        let ask = Ask {
            method,
            scheme: *scheme,
            host,
            port: *port,
            path,
        };
        let d = decide(&p, &ask);
        assert_eq!(d.verdict, *verdict, "{name}: verdict");
        assert_eq!(d.destination.map(|d| d.name.as_str()), *dest, "{name}: destination");
        assert_eq!(d.would_refuse, *would, "{name}: would_refuse");
    }
}

#[test]
fn plain_http_refuse() {
    let p = compile(&policy_text().replace("plain_http: upgrade", "plain_http: refuse")).unwrap();
    let ask = Ask {
        method: &Method::GET,
        scheme: Scheme::Http,
        host: "img.cdn.example",
        port: None,
        path: "/",
    };
    assert_eq!(decide(&p, &ask).verdict, Verdict::Refuse(Reason::PlainHttpRefused));
    let ask = Ask {
        scheme: Scheme::Https,
        ..ask
    };
    assert_eq!(decide(&p, &ask).verdict, Verdict::Allow);
}

#[test]
fn credential_only_after_a_route_matched() {
    let p = policy();
    let cases: &[(&str, &str, &str, bool)] = &[
        ("matched route", "api.shipper.example", "/v1/shipments", true),
        ("report mode, unmatched route", "new.partner.example", "/nope", false),
        ("report mode, matched route", "new.partner.example", "/ok", true),
        ("no routes listed: every path", "img.cdn.example", "/x", true),
    ];
    for (name, host, path, want) in cases {
        let method = if path.starts_with("/v1") {
            Method::POST
        } else {
            Method::GET
        };
        let ask = Ask {
            method: &method,
            scheme: Scheme::Http,
            host,
            port: None,
            path,
        };
        assert_eq!(decide(&p, &ask).route_matched(), *want, "{name}");
    }
}
