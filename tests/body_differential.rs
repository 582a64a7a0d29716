#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! Differential tests of the body filter against the parsers upstreams really use: PHP's
//! `json_decode`, Python's `json`, and Express's body-parser. Thousands of mutated
//! WooCommerce orders (fixed seed) go through the filter in process; whatever it would
//! forward is parsed by one process of each, and no parser may show a field the policy
//! removes (read the way a lenient binder reads names), a card number, or a value the
//! filter did not see. Then a few requests through the real proxy to a real Express
//! upstream over TLS. Needs `npm ci` in tests/parsers (`.ci/run` does it).

#[path = "body_differential/check.rs"]
mod check;
mod common;
#[path = "body_differential/doc.rs"]
mod doc;
#[path = "body_differential/gen.rs"]
mod gen;
#[path = "body_differential/node.rs"]
mod node;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use check::{flatten, pattern, reference_card, segs, under, violations, Seg, ALLOW, DENY};
use common::{Dest, PolicyBuilder, Route};
use egress_guard::policy::{self, BodyPolicy, Mode};
use gen::{Doc, Rng};
use http::{header, HeaderMap, HeaderValue};
use serde_json::{json, Value};

const ORDER: &[u8] = include_bytes!("../benches/fixtures/order.json");
const CASES: usize = 4000;
const SEED: u64 = 0x0000_E61E_55B0_D1E5;

/// tests/parsers with Express installed from its lock file (once per run, when
/// missing), so `cargo test` works on a fresh clone.
pub fn parsers_dir() -> PathBuf {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parsers");
    INSTALLED.call_once(|| {
        if !dir.join("node_modules/express").is_dir() {
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&dir)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "`npm ci` in {} failed: node and npm are needed",
                dir.display()
            );
        }
    });
    dir
}

/// The routes of a policy holding one deny-list and one allow-list body policy.
/// `express`, when given, is where the destination connects.
pub fn policy_yaml(express: Option<&node::Express>) -> String {
    let mut shop = Dest::new("shop", "api.node.test");
    if let Some(e) = express {
        shop = e.destination(shop);
    }
    let shop = shop
        .route(Route::post("/deny").deny(DENY).scan(&["card_number"]))
        .route(Route::post("/allow").allow(ALLOW).scan(&["card_number"]));
    PolicyBuilder::new().dest(shop).yaml()
}

fn route_policy(p: &policy::Policy, deny: bool) -> &BodyPolicy {
    let routes = p.destinations[0].routes.as_ref().unwrap();
    routes[usize::from(!deny)].body.as_ref().unwrap()
}

/// Feeds every line to one `cmd` process and returns its answer lines, one per input.
fn batch(cmd: &str, args: &[&str], lines: &[String]) -> Vec<Value> {
    let mut child = Command::new(cmd)
        .args(args)
        .current_dir(parsers_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd} must be installed: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success(), "{cmd} failed");
    assert_eq!(out.len(), lines.len(), "{cmd}: one answer per body");
    out
}

#[test]
fn mutated_orders_read_alike_by_php_python_and_express() {
    let order = Doc::from_value(&serde_json::from_slice(ORDER).unwrap());
    let policy = policy::compile(&policy_yaml(None)).unwrap();
    let mut rng = Rng::new(SEED);
    let (mut forwarded, mut refused) = (Vec::new(), std::collections::BTreeMap::<String, usize>::new());
    for i in 0..CASES {
        let case = gen::case(&order, &mut rng, i % 2 == 0);
        let mut headers = HeaderMap::new();
        if let Some(ct) = &case.ct {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        let bp = route_policy(&policy, case.deny);
        match egress_guard::proxy::body_policy::apply(bp, Mode::Enforce, &headers, &case.body) {
            Ok(o) => {
                let sent = o.replaced.unwrap_or_else(|| case.body.clone());
                forwarded.push((case, sent));
            }
            Err(r) => *refused.entry(format!("{r:?}")).or_default() += 1,
        }
    }
    let lines: Vec<String> = forwarded
        .iter()
        .map(|(c, sent)| json!({"ct": c.ct, "b": base64::engine::general_purpose::STANDARD.encode(sent)}).to_string())
        .collect();
    let readers = [
        ("php", batch("php", &["parse_batch.php"], &lines)),
        ("python", batch("python3", &["parse_batch.py"], &lines)),
        ("express", batch("node", &["parse_batch.js"], &lines)),
    ];
    let (mut failures, mut kinds) = (Vec::new(), std::collections::BTreeMap::<String, usize>::new());
    let mut parsed_ok = [0usize; 3];
    for (i, (case, sent)) in forwarded.iter().enumerate() {
        let view: Value = match serde_json::from_slice(sent) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("[{}] forwarded body is not JSON: {e}", case.label));
                continue;
            }
        };
        let mut filter_view = Vec::new();
        flatten(&view, &mut Vec::new(), &mut filter_view);
        for (r, (name, answers)) in readers.iter().enumerate() {
            let Some(nodes) = answers[i].get("ok").and_then(Value::as_array) else {
                continue;
            };
            parsed_ok[r] += 1;
            for v in violations(nodes, &filter_view, case.deny) {
                let body: String = String::from_utf8_lossy(sent).chars().take(300).collect();
                *kinds.entry(format!("{name} [{}]", case.label)).or_default() += 1;
                failures.push(format!(
                    "[{}] {name}: {v}\n  ct {:?}\n  body {body}...",
                    case.label, case.ct
                ));
            }
        }
    }
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for (name, answers) in &readers {
        for a in answers.iter().filter_map(|a| a.get("err")) {
            *errors.entry(format!("{name}: {a}")).or_default() += 1;
        }
    }
    println!("{CASES} cases: {} forwarded, refused {refused:?}; parsed by php/python/express: {parsed_ok:?}; parser errors {errors:?}", forwarded.len());
    assert!(
        failures.is_empty(),
        "{} violations; by parser and mutation: {kinds:#?}\nfirst ones:\n{}",
        failures.len(),
        failures.iter().take(6).cloned().collect::<Vec<_>>().join("\n")
    );
    // The run is not vacuous: many bodies got through, and every parser read most of them.
    assert!(forwarded.len() > CASES / 5, "too few bodies forwarded");
    // Express skips types express.json() does not take (vnd.api+json, a tab in the type).
    for (n, (name, _)) in parsed_ok.iter().zip(&readers) {
        let skipped = errors.get(&format!("{name}: \"skipped\"")).copied().unwrap_or(0);
        assert!(
            (n + skipped) * 10 > forwarded.len() * 9,
            "{name} read only {n} of {} bodies",
            forwarded.len()
        );
    }
}

/// (name, route, Content-Type, body, status, reason)
type Refusal<'a> = (&'a str, &'a str, &'a str, &'a [u8], u16, &'a str);

/// A few requests through the real proxy to a real Express upstream over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_proxy_to_express() {
    let up = node::Express::start();
    let proxy = common::Proxy::start(&policy_yaml(Some(&up))).await;
    let url = proxy.url();
    let utf7 = br#"{"order_id":1,"note":"x+ACIALA-+ACI-customer+AF8-note+ACI-:+ACI-LEAK"}"#;
    #[rustfmt::skip]
    let refused: &[Refusal] = &[
        ("utf-7 smuggle", "/deny", "application/json; charset=utf-7", utf7, 415, "unsupported_media_type"),
        ("utf-7 with spaces around =", "/deny", "application/json; charset = utf-7", utf7, 415, "unsupported_media_type"),
        ("utf-7 after utf-8", "/deny", "application/json; charset=utf-8; charset=utf-7", utf7, 415, "unsupported_media_type"),
        ("card in free text", "/deny", "application/json", br#"{"note":"Karte: 4111 1111 1111 1111, danke"}"#, 422, "sensitive_value"),
        ("card as exponent", "/deny", "application/json", br#"{"amount":4.111111111111111e15}"#, 422, "sensitive_value"),
        ("nul in a denied name", "/deny", "application/json", br#"{"customer_note\u0000":"x"}"#, 400, "malformed_body"),
        ("bom", "/deny", "application/json", b"\xEF\xBB\xBF{\"order_id\":1}", 400, "malformed_body"),
    ];
    for (name, path, ct, body, status, reason) in refused {
        let a = node::post(&url, path, Some(ct), body).await;
        assert_eq!(
            (a.status, a.reason.as_deref()),
            (*status, Some(*reason)),
            "{name}: {}",
            a.body
        );
    }
    // Respelled denied names reach Express without the field; the order itself does.
    let respelled = br#"{"order_id":7,"Customer_Note":"a","CUSTOMER_NOTE":"b","cu\u017ftomer_note":"c","\u0043ustomer_note":"d","billing":{"EMAIL":"e","city":"Lyon"}}"#;
    let a = node::post(&url, "/deny", Some("application/json"), respelled).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let nodes = a.body["parsed"].as_array().unwrap();
    let paths: Vec<String> = nodes.iter().map(|n| n[0].to_string()).collect();
    assert_eq!(
        paths,
        ["[]", "[\"order_id\"]", "[\"billing\"]", "[\"billing\",\"city\"]"],
        "what Express parsed"
    );
    // A handful of generated mutations: Express never shows what the policy removes.
    let order = Doc::from_value(&serde_json::from_slice(ORDER).unwrap());
    let mut rng = Rng::new(SEED ^ 0xE7);
    let (mut sent, mut through) = (0, 0);
    while sent < 24 {
        let case = gen::case(&order, &mut rng, sent % 2 == 0);
        sent += 1;
        let path = if case.deny { "/deny" } else { "/allow" };
        let a = node::post(&url, path, case.ct.as_deref(), &case.body).await;
        let Some(nodes) = a.body.get("parsed").and_then(Value::as_array) else {
            continue;
        };
        through += 1;
        for n in nodes {
            let at = segs(&n[0], case.deny);
            let pats: Vec<Vec<Seg>> = if case.deny { DENY } else { ALLOW }
                .iter()
                .map(|p| pattern(p, case.deny))
                .collect();
            let removed = if case.deny {
                pats.iter().any(|p| under(p, &at))
            } else {
                !at.is_empty() && !pats.iter().any(|p| under(p, &at) || under(&at, p))
            };
            assert!(!removed, "[{}] Express shows {}", case.label, n[0]);
            assert!(
                !reference_card(n[2].as_str().unwrap()),
                "[{}] Express shows a card at {}",
                case.label,
                n[0]
            );
        }
    }
    assert!(through > 0, "no generated body reached Express");
}
