//! Table tests for policy compilation: every mistake is found, with its line.

use super::*;

const BASE: &str = "version: 1
destinations:
  shipper:
    host: api.shipper.example
    credential:
      secret: env:EG_COMPILE_TEST_KEY
    routes:
      - methods: [POST]
        path: /v1/shipments
        body:
          allow: [order_id, 'items[].sku']
";

/// A `file:` secret the repo ships, so no test sets an environment variable
/// (`set_var` races with every other thread reading the environment).
const KEY_FILE: &str = concat!("file:", env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unit-test-key");

/// `BASE` with its secret read from `KEY_FILE`.
fn base() -> String {
    BASE.replace("env:EG_COMPILE_TEST_KEY", KEY_FILE)
}

#[test]
fn the_base_policy_compiles() {
    let p = compile(&base()).unwrap();
    assert_eq!(p.destinations.len(), 1);
    assert_eq!(p.hash.len(), 12);
    let d = &p.destinations[0];
    assert_eq!(d.credential.as_ref().unwrap().header.as_str(), "x-api-key");
    assert!(d.credential.as_ref().unwrap().value.is_sensitive());
}

#[test]
fn mistakes_are_reported_with_their_line() {
    let base = base();
    // name, replace this, with this, expected line, a word the message holds
    let cases: &[(&str, &str, &str, Option<usize>, &str)] = &[
        (
            "unknown top key",
            "version: 1\n",
            "version: 1\nextra: 1\n",
            Some(2),
            "unknown field",
        ),
        (
            "unknown nested key",
            "    host: api",
            "    hots: x\n    host: api",
            Some(4),
            "unknown field",
        ),
        ("bad version", "version: 1", "version: 2", Some(1), "version"),
        (
            "bad host",
            "host: api.shipper.example",
            "host: api_shipper!",
            Some(4),
            "host",
        ),
        ("bad method", "methods: [POST]", "methods: [CONNECT]", Some(8), "method"),
        (
            "bad path glob",
            "path: /v1/shipments",
            "path: v1",
            Some(9),
            "starts with",
        ),
        (
            "bad field path",
            "allow: [order_id, 'items[].sku']",
            "allow: [order_id, \"items[\"]",
            Some(11),
            "field path",
        ),
        (
            "allow and deny",
            "allow: [order_id, 'items[].sku']",
            "allow: [a]\n          deny: [b]",
            Some(10),
            "exactly one",
        ),
        (
            "missing env secret",
            KEY_FILE,
            "env:EG_COMPILE_TEST_MISSING",
            Some(6),
            "not set",
        ),
        ("bad secret kind", KEY_FILE, "vault:x", Some(6), "secret"),
        (
            "reserved header",
            "      secret:",
            "      header: Host\n      secret:",
            Some(6),
            "header",
        ),
        (
            "tunnel with credential",
            "    routes:",
            "    tunnel: true\n    routes:",
            Some(7),
            "tunnel",
        ),
        (
            "destination named twice",
            "destinations:\n",
            "destinations:\n  shipper:\n    host: other.example\n",
            Some(3),
            "named twice",
        ),
        (
            "bad on_violation",
            "allow: [order_id, 'items[].sku']",
            "allow: [a]\n          on_violation: ignore",
            Some(12),
            "unknown variant",
        ),
    ];
    for (name, from, to, line, word) in cases {
        assert!(base.contains(from), "{name}: case does not apply");
        let errs = compile(&base.replacen(from, to, 1)).expect_err(name);
        let e = &errs.0[0];
        assert_eq!(e.line, *line, "{name}: {e}");
        assert!(e.to_string().contains(word), "{name}: {e}");
    }
}

#[test]
fn every_error_is_listed() {
    let text = BASE
        .replace("api.shipper.example", "bad host")
        .replace("EG_COMPILE_TEST_KEY", "EG_COMPILE_TEST_NOPE");
    let errs = compile(&text).unwrap_err();
    assert_eq!(errs.0.len(), 2, "{errs}");
}

#[test]
fn secrets_never_appear_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "sk_live_SECRET\n\nmore").unwrap();
    let text = BASE.replace("env:EG_COMPILE_TEST_KEY", &format!("file:{}", key.display()));
    let errs = compile(&text).unwrap_err();
    assert!(!format!("{errs} {errs:?}").contains("sk_live_SECRET"));
    assert!(errs.to_string().contains("control character"));
}

#[test]
fn secret_file_with_one_newline_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "sk_live_1\n").unwrap();
    let text = BASE.replace("env:EG_COMPILE_TEST_KEY", &format!("file:{}", key.display()));
    let p = compile(&text).unwrap();
    assert_eq!(
        p.destinations[0].credential.as_ref().unwrap().value.as_bytes(),
        b"sk_live_1"
    );
}

#[test]
fn most_specific_destination_wins() {
    let text = "version: 1
destinations:
  wide: {host: \"*.example\"}
  narrow: {host: \"*.api.example\"}
  exact: {host: a.api.example}
";
    let p = compile(text).unwrap();
    let find = |h: &str| p.find_destination(h).map(|d| d.name.as_str());
    assert_eq!(find("a.api.example"), Some("exact"));
    assert_eq!(find("b.api.example"), Some("narrow"));
    assert_eq!(find("b.example"), Some("wide"));
}
