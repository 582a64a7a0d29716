//! Value validation (`schema:` on a route body) through the real binary:
//! PHP's cURL and curl send orders; a body that fails its schema after
//! filtering is `invalid_value` (422) and never reaches the upstream; the
//! audit line names the field path and keyword, never the value; `check`
//! and `run` refuse a bad schema naming its file (an external `$ref`
//! included); a schema file change reloads, a broken one keeps the old policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::daemon::{write_by_rename, BIN};
use common::*;

const HOST: &str = "api.shipper.test";
const KEY: &str = "sk_live_schema_tests_5e1d2c3b4a";
/// A value no log line may ever hold.
const MARKER: &str = "ZZ-POSTCODE-MARKER-4711";

/// Postcodes are five digits, SKUs at most 8 characters, `order_id` a positive integer and required.
const SCHEMA_V1: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["order_id"],
  "additionalProperties": false,
  "properties": {
    "order_id": {"type": "integer", "minimum": 1},
    "shipping": {
      "type": "object",
      "properties": {"postcode": {"type": "string", "pattern": "^[0-9]{5}$"}, "country": {"enum": ["DE", "AT"]}}
    },
    "items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string", "maxLength": 8}}}}
  }
}"#;

/// The same, but postcodes may hold letters (UK style).
const SCHEMA_V2: &str = r#"{
  "type": "object",
  "properties": {"shipping": {"properties": {"postcode": {"type": "string", "maxLength": 30}}}}
}"#;

fn policy(up: &Upstream, ca: &TestCa, key: &Path, schema: &str) -> String {
    let allow = ["order_id", "shipping.postcode", "shipping.country", "items[].sku"];
    PolicyBuilder::new()
        .listen_any()
        .dest(
            Dest::new("shipper", HOST)
                .upstream(up, ca)
                .credential("X-API-KEY", key)
                .route(Route::post("/v1/shipments").allow(&allow).body("schema", schema))
                .route(
                    Route::post("/v1/trial")
                        .mode("report")
                        .allow(&allow)
                        .body("schema", schema),
                ),
        )
        .yaml()
}

/// A policy directory: `policy.yaml` naming `schemas/shipment.json` relatively.
struct Setup {
    ca: TestCa,
    up: Upstream,
    dir: tempfile::TempDir,
    key: tempfile::NamedTempFile,
}

impl Setup {
    async fn new(schema_text: &str) -> Setup {
        let ca = TestCa::new();
        let up = Upstream::start(&ca, &[HOST]).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(dir.path().join("schemas/shipment.json"), schema_text).unwrap();
        let key = secret_file(KEY);
        let s = Setup { ca, up, dir, key };
        std::fs::write(s.policy_path(), s.policy_text("schemas/shipment.json")).unwrap();
        s
    }

    fn policy_text(&self, schema: &str) -> String {
        policy(&self.up, &self.ca, self.key.path(), schema)
    }

    fn policy_path(&self) -> std::path::PathBuf {
        self.dir.path().join("policy.yaml")
    }

    fn schema_path(&self) -> std::path::PathBuf {
        self.dir.path().join("schemas/shipment.json")
    }
}

fn order(postcode: &str) -> String {
    serde_json::json!({
        "order_id": 1042,
        "customer": {"email": "erika.mustermann@example.org"},
        "shipping": {"postcode": postcode, "country": "DE", "city": "Koeln"},
        "items": [{"sku": "MUG-RED", "price": "9.90"}],
    })
    .to_string()
}

/// The audit lines of requests refused (or reported) as `invalid_value`.
fn invalid_lines(p: &Daemon) -> Vec<String> {
    p.lines()
        .into_iter()
        .filter(|l| {
            l.contains("\"message\":\"request\"")
                && l.contains("invalid_value\":\"")
                && !l.contains("invalid_value\":\"-\"")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_curl_order_failing_its_schema_is_refused_and_never_sent() {
    let s = Setup::new(SCHEMA_V1).await;
    let p = Daemon::spawn(&s.policy_path());
    let proxy = format!("http://{}", p.addr);
    let script = s.dir.path().join("order.php");
    std::fs::write(&script, PHP_ORDER).unwrap();

    // A valid order: the allow list strips `customer`, `city` and `price`,
    // which `additionalProperties: false` would refuse: the schema judges the filtered body.
    let out = php(&script, &[("PROXY", &proxy), ("BODY", &order("51147"))]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("200 "),
        "{}",
        describe(&out)
    );
    let got = s.up.wait_for(1).await;
    assert_eq!(
        got[0].json(),
        serde_json::json!({"order_id": 1042, "shipping": {"postcode": "51147", "country": "DE"}, "items": [{"sku": "MUG-RED"}]})
    );

    // The same order with a postcode the schema refuses.
    let out = php(&script, &[("PROXY", &proxy), ("BODY", &order(MARKER))]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.starts_with("422 "), "{}", describe(&out));
    assert!(stdout.contains("\"error\":\"invalid_value\""), "{stdout}");
    assert!(!stdout.contains(MARKER), "the answer repeats the value: {stdout}");
    assert_eq!(s.up.count(), 1, "the refused order reached the upstream");

    let line = p.wait_line(|l| l.contains("\"reason\":\"invalid_value\""));
    assert!(
        line.contains("\"invalid_value\":\"shipping.postcode: pattern\""),
        "{line}"
    );
    assert!(line.contains("\"status\":422"), "{line}");
    assert!(
        !p.lines().iter().any(|l| l.contains(MARKER)),
        "a log line holds the value"
    );
}

/// Prints the status and the answer of one JSON POST through `PROXY`.
const PHP_ORDER: &str = r#"<?php
$ch = curl_init('http://api.shipper.test/v1/shipments');
curl_setopt_array($ch, [
    CURLOPT_PROXY => getenv('PROXY'),
    CURLOPT_POST => true,
    CURLOPT_POSTFIELDS => getenv('BODY'),
    CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_TIMEOUT => 10,
]);
$body = curl_exec($ch);
if ($body === false) { fwrite(STDERR, curl_error($ch)); exit(1); }
echo curl_getinfo($ch, CURLINFO_RESPONSE_CODE), ' ', $body;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failing_keyword_is_told_by_path_never_by_value() {
    let s = Setup::new(SCHEMA_V1).await;
    let p = Daemon::spawn(&s.policy_path());
    let addr: SocketAddr = p.addr.parse().unwrap();
    let url = format!("http://{HOST}/v1/shipments");
    // (row, body, the audit line's words); every value holds the marker where it can.
    let rows: &[(&str, String, &str)] = &[
        ("pattern", order(MARKER), "shipping.postcode: pattern"),
        (
            "enum",
            format!(r#"{{"order_id":1,"shipping":{{"country":"{MARKER}"}}}}"#),
            "shipping.country: enum",
        ),
        (
            "array element",
            format!(r#"{{"order_id":1,"items":[{{"sku":"A"}},{{"sku":"{MARKER}"}}]}}"#),
            "items[].sku: maxLength",
        ),
        (
            "required",
            r#"{"shipping":{"postcode":"12345"}}"#.to_owned(),
            "order_id: required",
        ),
        ("type", format!(r#"{{"order_id":"{MARKER}"}}"#), "order_id: type"),
        ("minimum", r#"{"order_id":-1}"#.to_owned(), "order_id: minimum"),
        ("whole body", "[1,2]".to_owned(), "(body): type"),
    ];
    for (i, (name, body, words)) in rows.iter().enumerate() {
        let r = send_to(addr, &post_json(&url, body)).await;
        assert_refusal(&r, 422, "invalid_value", name);
        assert!(!r.text().contains(MARKER), "{name}: the answer holds the value");
        p.wait_count(i + 1, |l| l.contains("\"reason\":\"invalid_value\""), name);
        let lines = invalid_lines(&p);
        let line = lines.last().unwrap();
        assert!(
            line.contains(&format!("\"invalid_value\":\"{words}\"")),
            "{name}: {line}"
        );
    }
    assert_eq!(s.up.count(), 0, "a refused body reached the upstream");
    for l in p.lines() {
        assert!(!l.contains(MARKER), "a log line holds a value: {l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_passes_and_says_what_would_fail() {
    let s = Setup::new(SCHEMA_V1).await;
    let p = Daemon::spawn(&s.policy_path());
    let proxy = p.addr.clone();
    let out = curl(&[
        "-x",
        &proxy,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &order(MARKER),
        &format!("http://{HOST}/v1/trial"),
    ])
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{}", describe(&out));
    assert_eq!(s.up.wait_for(1).await[0].json()["shipping"]["postcode"], MARKER);
    let line = p.wait_line(|l| l.contains("\"would_refuse\":\"invalid_value\""));
    assert!(
        line.contains("\"invalid_value\":\"shipping.postcode: pattern\""),
        "{line}"
    );
    assert!(
        !p.lines().iter().any(|l| l.contains(MARKER)),
        "a log line holds the value"
    );
}

#[test]
fn check_names_the_schema_of_each_route() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("schemas/shipment.json"), SCHEMA_V1).unwrap();
    let path = dir.path().join("policy.yaml");
    let text = PolicyBuilder::new()
        .dest(
            Dest::new("shipper", HOST).route(
                Route::post("/v1/shipments")
                    .allow(&["order_id"])
                    .body("schema", "schemas/shipment.json"),
            ),
        )
        .yaml();
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check", &path_str(&path)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    let want = format!("schema: {})", path_str(&dir.path().join("schemas/shipment.json")));
    assert!(stdout.contains(&want), "{stdout}");
}

/// `check` names the schema file and exits 1 like any bad policy; `run`
/// refuses to start with exit 64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schema_is_refused_naming_its_file() {
    let rows: &[(&str, &str, &str)] = &[
        ("not JSON", "{\"type\": ", "not a JSON document"),
        ("unknown type", r#"{"type": "strin"}"#, "strin"),
        (
            "remote $ref",
            r#"{"$ref": "https://schemas.example/order.json"}"#,
            "external `$ref`",
        ),
        (
            "file $ref",
            r#"{"$ref": "common.json#/$defs/postcode"}"#,
            "external `$ref`",
        ),
        (
            "other dialect",
            r#"{"$schema": "http://json-schema.org/draft-04/schema#"}"#,
            "2020-12",
        ),
    ];
    for (name, text, needle) in rows {
        let s = Setup::new(text).await;
        // The file a relative `$ref` would name exists: it is still not read.
        std::fs::write(s.dir.path().join("schemas/common.json"), r#"{"$defs":{}}"#).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["check", &path_str(&s.policy_path())])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", describe(&out));
        assert!(err.contains("schemas/shipment.json"), "{name}: no file name: {err}");
        assert!(err.contains("routes[0].body.schema"), "{name}: no key: {err}");
        assert!(err.contains(needle), "{name}: {err}");

        let mut run = Spawn::new(&s.policy_path()).no_wait().start();
        assert_eq!(run.wait_exit().code(), Some(64), "{name}: run");
        let log = run.drained_output();
        assert!(log.contains("schemas/shipment.json"), "{name}: run log: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_reloads_and_a_broken_one_keeps_the_old_policy() {
    let s = Setup::new(SCHEMA_V1).await;
    let p = Daemon::spawn(&s.policy_path());
    let addr: SocketAddr = p.addr.parse().unwrap();
    let url = format!("http://{HOST}/v1/shipments");
    let uk = order("SW1A 1AA");
    assert_refusal(&send_to(addr, &post_json(&url, &uk)).await, 422, "invalid_value", "v1");
    let hash_v1 = p.field("\"message\":\"policy loaded\"", "policy_hash");

    // Only the schema file changes, by rename as editors and deploy tools write.
    write_by_rename(&s.schema_path(), SCHEMA_V2);
    let reloaded = p.wait_line(|l| l.contains("policy reloaded") && l.contains("\"policy_generation\":2"));
    assert!(
        !reloaded.contains(&hash_v1),
        "the hash must change with the schema: {reloaded}"
    );
    assert_eq!(send_to(addr, &post_json(&url, &uk)).await.status, 200, "v2 allows it");

    // A broken schema: the reload is refused, v2 keeps serving.
    std::fs::write(s.schema_path(), "{\"type\": 5}").unwrap();
    let refused = p.wait_line(|l| l.contains("reload refused"));
    assert!(refused.contains("schemas/shipment.json"), "{refused}");
    let long = order(&"9".repeat(31));
    assert_refusal(
        &send_to(addr, &post_json(&url, &long)).await,
        422,
        "invalid_value",
        "v2 still",
    );
    assert_eq!(
        send_to(addr, &post_json(&url, &uk)).await.status,
        200,
        "v2 still allows it"
    );
    assert_eq!(p.count_lines(|l| l.contains("policy reloaded")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_failing_field_not_its_value() {
    let s = Setup::new(SCHEMA_V1).await;
    let body = s.dir.path().join("order.json");
    std::fs::write(&body, order(MARKER)).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["explain", "--policy", &path_str(&s.policy_path()), "--method", "POST"])
        .args([
            "--url",
            &format!("http://{HOST}/v1/shipments"),
            "--body",
            &path_str(&body),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text.contains("reason: invalid_value (422)"), "{text}");
    assert!(text.contains("invalid value: shipping.postcode: pattern"), "{text}");
    assert!(!text.contains(MARKER), "{text}");
}
