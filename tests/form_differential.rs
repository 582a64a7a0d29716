#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! The body differential for forms: thousands of mutated form bodies (a WooCommerce order
//! as PHP's `http_build_query` writes it; fixed seed) go through the body policy in
//! process, and whatever it would forward is read by PHP's `parse_str` (the parser that
//! fills `$_POST`) and by Express's extended urlencoded body-parser (`qs`). Neither may show
//! a field the policy removes (names read the way a lenient binder reads them) or a card
//! number. Then a few through the real proxy. Needs `npm ci` in tests/parsers (done once).

#[allow(dead_code)]
#[path = "body_differential/check.rs"]
mod check;
mod common;
#[allow(dead_code)]
#[path = "body_differential/doc.rs"]
mod doc;
#[path = "form_differential/gen.rs"]
mod gen;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use base64::Engine;
use check::{pattern, reference_card, segs, under, under_any_container, Seg, ALLOW, DENY};
use common::{absolute, Dest, PolicyBuilder, Proxy, Route, TestCa, Upstream};
use egress_guard::policy::{self, Mode};
use gen::Rng;
use http::{header, HeaderMap, HeaderValue};
use serde_json::{json, Value};

const CASES: usize = 4000;
const SEED: u64 = 0x0000_F0E1_5B0D_1E5A;

fn policy_yaml(dest: Dest) -> String {
    let d = dest
        .route(Route::post("/deny").deny(DENY).scan(&["card_number"]))
        .route(Route::post("/allow").allow(ALLOW).scan(&["card_number"]));
    PolicyBuilder::new().dest(d).yaml()
}

/// tests/parsers with Express installed from its lock file (once per run, when missing).
fn parsers_dir() -> std::path::PathBuf {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parsers");
    INSTALLED.call_once(|| {
        if !dir.join("node_modules/body-parser").is_dir() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&dir)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "`npm ci` in {} failed",
                dir.display()
            );
        }
    });
    dir
}

/// One reader process (`php parse_form_batch.php`, `node parse_form_batch.js`) for all bodies.
fn batch(cmd: &str, script: &str, bodies: &[&[u8]]) -> Vec<Value> {
    let mut child = Command::new(cmd)
        .arg(script)
        .current_dir(parsers_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd} must be installed: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input: String = bodies
        .iter()
        .map(|b| json!({"b": base64::engine::general_purpose::STANDARD.encode(b)}).to_string() + "\n")
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success(), "{cmd} failed");
    assert_eq!(out.len(), bodies.len(), "{cmd}: one answer per body");
    out
}

/// PHP's `parse_str` and Express's extended urlencoded parser (`qs`) of every body.
fn readers(bodies: &[&[u8]]) -> [(&'static str, Vec<Value>); 2] {
    [
        ("php", batch("php", "parse_form_batch.php", bodies)),
        ("express", batch("node", "parse_form_batch.js", bodies)),
    ]
}

/// What a reader shows that it must not: a removed field or a card number.
fn violations(nodes: &[Value], deny: bool) -> Vec<String> {
    let pats: Vec<Vec<Seg>> = if deny { DENY } else { ALLOW }
        .iter()
        .map(|p| pattern(p, deny))
        .collect();
    let mut bad = Vec::new();
    for n in nodes {
        let (path, text) = (&n[0], n[2].as_str().unwrap_or_default());
        let at = segs(path, deny);
        if deny && pats.iter().any(|p| under_any_container(p, &at)) {
            bad.push(format!("denied field {path} visible"));
        }
        if !deny && !at.is_empty() && !pats.iter().any(|p| under(p, &at) || under(&at, p)) {
            bad.push(format!("field {path} outside the allow list visible"));
        }
        let key_card = path
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k.as_str().is_some_and(reference_card));
        if key_card || reference_card(text) {
            bad.push(format!("card number visible at {path}"));
        }
    }
    bad
}

#[test]
fn mutated_forms_read_by_php_and_express() {
    let policy = policy::compile(&policy_yaml(Dest::new("shop", "api.form.test"))).unwrap();
    let routes = policy.destinations[0].routes.as_ref().unwrap();
    let mut rng = Rng::new(SEED);
    let (mut forwarded, mut refused) = (Vec::new(), std::collections::BTreeMap::<String, usize>::new());
    let mut removed_some = 0;
    for i in 0..CASES {
        let case = gen::case(&mut rng, i % 2 == 0);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(&case.ct).unwrap());
        let bp = routes[usize::from(!case.deny)].body.as_ref().unwrap();
        match egress_guard::proxy::body_policy::apply(bp, Mode::Enforce, &headers, &case.body) {
            Ok(o) => {
                removed_some += usize::from(o.replaced.is_some());
                let sent = o.replaced.unwrap_or_else(|| case.body.clone());
                forwarded.push((case, sent));
            }
            Err(r) => *refused.entry(format!("{r:?}")).or_default() += 1,
        }
    }
    let bodies: Vec<&[u8]> = forwarded.iter().map(|(_, s)| s.as_slice()).collect();
    let mut failures = Vec::new();
    let mut read = [0usize; 2];
    for (r, (name, answers)) in readers(&bodies).iter().enumerate() {
        for ((case, sent), answer) in forwarded.iter().zip(answers) {
            let Some(nodes) = answer["ok"].as_array() else { continue };
            read[r] += 1;
            for v in violations(nodes, case.deny) {
                failures.push(format!(
                    "[{}] {name}: {v}\n  sent {}\n  original {}",
                    case.label,
                    String::from_utf8_lossy(sent),
                    String::from_utf8_lossy(&case.body)
                ));
            }
        }
    }
    println!(
        "{CASES} form cases: {} forwarded ({removed_some} with fields removed), refused {refused:?}; read by php/express: {read:?}",
        forwarded.len()
    );
    assert!(
        failures.is_empty(),
        "{} violations, first ones:\n{}",
        failures.len(),
        failures.iter().take(6).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(forwarded.len() > CASES / 5, "too few bodies forwarded");
    assert!(removed_some > CASES / 10, "too few bodies filtered");
    assert!(
        read.iter().all(|&n| n == forwarded.len()),
        "a reader failed on a forwarded body: {read:?}"
    );
}

/// A few generated bodies through the real proxy: what the upstream receives, read by
/// `parse_str`, holds nothing the policy removes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_proxy() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &["api.form.test"]).await;
    let proxy = Proxy::start(&policy_yaml(Dest::new("shop", "api.form.test").upstream(&up, &ca))).await;
    let mut rng = Rng::new(SEED ^ 0xF0);
    let mut through = 0;
    for i in 0..40 {
        let case = gen::case(&mut rng, i % 2 == 0);
        let path = if case.deny { "/deny" } else { "/allow" };
        let before = up.count();
        let raw = absolute(
            "POST",
            &format!("http://api.form.test{path}"),
            &[("Content-Type", &case.ct)],
            &case.body,
        );
        if proxy.send(&raw).await.status != 200 {
            assert_eq!(up.count(), before, "[{}] refused yet sent", case.label);
            continue;
        }
        through += 1;
        let got = up.wait_for(before + 1).await.pop().unwrap().body;
        for (name, mut answers) in readers(&[&got]) {
            let nodes = answers.pop().unwrap();
            let bad = violations(nodes["ok"].as_array().unwrap(), case.deny);
            assert!(
                bad.is_empty(),
                "[{}] {name}: {bad:?}: {}",
                case.label,
                String::from_utf8_lossy(&got)
            );
        }
    }
    assert!(through > 5, "too few generated bodies reached the upstream");
}
