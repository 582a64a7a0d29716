//! The command line as an operator uses it: `check` (exit 0 with a summary,
//! exit 1 with every error and its line), `explain` (decision and the exact
//! upstream request, key redacted), and `run` refusing a bad policy with
//! exit 64 before it binds anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Output;

use common::daemon::run_once as run;

const KEY: &str = "sk_live_cli_7d1e0f";

fn policy_with_key(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let key = dir.join("key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    let text = format!(
        "version: 1
server:
  listen: 127.0.0.1:0
destinations:
  shipper:
    host: api.shipper.example
    credential:
      secret: file:{}
    routes:
      - methods: [POST]
        path: /v1/shipments
        body:
          allow:
            - order_id
            - shipping.postcode
{extra}",
        key.display()
    );
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_accepts_a_good_policy_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy_with_key(dir.path(), "      - methods: [GET]\n        path: /v1/shipments/*\n");
    let out = run(&["check", p.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("shipper → api.shipper.example:443"), "{t}");
    assert!(t.contains("GET /v1/shipments/*: body forwarded unchanged"), "{t}");
    assert!(!t.contains(KEY));
}

#[test]
fn check_lists_every_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy_with_key(dir.path(), "  other:\n    host: bad_host!\n    tunel: true\n");
    let out = run(&["check", p.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    // serde stops at the first unknown key; that one error carries its line.
    assert!(t.contains("line 18") && t.contains("tunel"), "{t}");

    let p = policy_with_key(
        dir.path(),
        "  other:\n    host: bad_host!\n  third:\n    host: x.example\n    connect_to: nowhere\n",
    );
    let out = run(&["check", p.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("2 error(s)"), "{t}");
    assert!(t.contains("line 17: destinations.other.host"), "{t}");
    assert!(t.contains("line 20: destinations.third.connect_to"), "{t}");
}

#[test]
fn explain_shows_the_filtered_request_with_the_key_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy_with_key(dir.path(), "");
    let body = br#"{"order_id":7,"billing":{"email":"a@b.example"},"shipping":{"postcode":"69003","phone":"+33"}}"#;
    let out = run(
        &[
            "explain",
            "--policy",
            p.to_str().unwrap(),
            "--method",
            "POST",
            "--url",
            "http://api.shipper.example/v1/shipments?x=1",
            "--body",
            "-",
            "-H",
            "X-Api-Key: client-copy",
        ],
        Some(body),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("decision: allow"), "{t}");
    assert!(t.contains("POST https://api.shipper.example/v1/shipments?x=1"), "{t}");
    assert!(t.contains("x-api-key: <redacted>"), "{t}");
    assert!(t.contains("removed fields: billing, shipping.phone"), "{t}");
    assert!(t.contains("removed 1 credential header(s)"), "{t}");
    assert!(t.contains(r#"{"order_id":7,"shipping":{"postcode":"69003"}}"#), "{t}");
    assert!(
        !t.contains(KEY) && !t.contains("client-copy") && !t.contains("a@b.example"),
        "{t}"
    );
}

#[test]
fn explain_says_why_a_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy_with_key(dir.path(), "");
    let cases: &[(&str, &str, &str)] = &[
        ("unknown host", "http://evil.example/", "destination_not_allowed"),
        ("unknown route", "http://api.shipper.example/v2/x", "route_not_allowed"),
        (
            "encoded slash",
            "http://api.shipper.example/v1%2fshipments",
            "bad_request",
        ),
    ];
    for (name, url, reason) in cases {
        let out = run(
            &[
                "explain",
                "--policy",
                p.to_str().unwrap(),
                "--method",
                "POST",
                "--url",
                url,
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(text(&out).contains(reason), "{name}: {}", text(&out));
    }
}

#[test]
fn run_refuses_a_bad_policy_with_exit_64_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    // The listen port is taken by us: if run bound before validating, it would fail differently.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(
        &p,
        format!("version: 1\nserver:\n  listen: {}\ndestinations:\n  a:\n    host: x.example\n    credential:\n      secret: env:EG_CLI_TEST_UNSET\n", taken.local_addr().unwrap()),
    )
    .unwrap();
    let out = run(&["run", "--policy", p.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("EG_CLI_TEST_UNSET is not set"), "{t}");
    assert!(!t.contains("Address already in use"), "{t}");
}
