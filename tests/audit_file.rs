//! The hash-chained audit file, with the real binary: what a workload leaves
//! in it verifies; each kind of tampering is caught at its line; the chain
//! goes on across a restart and a rotation; a damaged tail gives a
//! `chain_break`; a wrong key fails; the file holds no key and no personal
//! value; SIGTERM leaves every answered request in the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::shipper::{policy_yaml, woo_order, Opts, HOST, KEY, SHIP};
use common::*;
use egress_guard::telemetry::audit_file::chain::{open, Chain, ChainKey};

const AUDIT_KEY: &str = "audit-key-0123456789abcdef0123456789";

/// A recording upstream, the shipper policy with an audit file, the files.
struct Env {
    // Kept alive for the proxy: the upstream's CA, the upstream, the API key file.
    _ca: TestCa,
    _up: Upstream,
    _secret: tempfile::NamedTempFile,
    audit_key: tempfile::NamedTempFile,
    dir: tempfile::TempDir,
    policy: PathBuf,
    audit: PathBuf,
}

impl Env {
    async fn new(max_bytes: Option<u64>) -> Env {
        let ca = TestCa::new();
        let up = Upstream::start(&ca, &[HOST]).await;
        let secret = secret_file(KEY);
        let audit_key = secret_file(AUDIT_KEY);
        let dir = tempfile::tempdir().unwrap();
        let (policy, audit) = (dir.path().join("policy.yaml"), dir.path().join("audit.jsonl"));
        let mut server = vec![
            ("listen", "127.0.0.1:0".to_owned()),
            ("admin", "127.0.0.1:0".to_owned()),
            ("audit_file", path_str(&audit)),
            ("audit_key", format!("file:{}", path_str(audit_key.path()))),
        ];
        if let Some(m) = max_bytes {
            server.push(("audit_max_bytes", m.to_string()));
        }
        let opts = Opts {
            server,
            ..Opts::default()
        };
        std::fs::write(&policy, policy_yaml(&up, &ca, secret.path(), &opts)).unwrap();
        Env {
            _ca: ca,
            _up: up,
            _secret: secret,
            audit_key,
            dir,
            policy,
            audit,
        }
    }

    fn start(&self) -> Daemon {
        Daemon::spawn(&self.policy)
    }

    /// `audit verify FILES --policy POLICY` plus `extra` arguments.
    fn verify(&self, files: &[&Path], extra: &[&str]) -> Output {
        let mut cmd = Command::new(daemon::BIN);
        cmd.args(["audit", "verify"]).args(files).args(extra);
        if !extra.contains(&"--key") {
            cmd.arg("--policy").arg(&self.policy);
        }
        cmd.output().unwrap()
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.audit)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// SIGTERM and a clean exit: the file is complete after this.
fn stop(mut d: Daemon) {
    d.term();
    assert!(d.wait_exit().success(), "{}", d.err.text());
}

/// Allowed, filtered, refused and unknown-destination requests; their request ids.
async fn workload(d: &Daemon) -> Vec<String> {
    let addr = d.addr.parse().unwrap();
    let order = woo_order().to_string();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("filtered", post_json(SHIP, &order), 200),
        (
            "value in path",
            absolute("GET", &format!("{SHIP}/erika.mustermann@example.org"), &[], b""),
            200,
        ),
        ("strict", post_json("http://api.shipper.test/v1/strict", &order), 422),
        ("route", absolute("DELETE", SHIP, &[], b""), 403),
        ("unknown", absolute("GET", "http://api.elsewhere.test/x", &[], b""), 403),
    ];
    let mut ids = Vec::new();
    for (name, raw, status) in cases {
        let r = send_to(addr, &raw).await;
        assert_eq!(r.status, status, "{name}: {}", r.text());
        ids.push(request_id(&r));
    }
    ids
}

/// The request id of a refusal (its body carries it); "" for an allowed answer.
fn request_id(r: &RawResponse) -> String {
    match r.status {
        400.. => r.json()["request_id"].as_str().unwrap().to_owned(),
        _ => String::new(),
    }
}

fn fails_at(out: &Output, file: &Path, line: usize, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: verify should fail: {err}");
    let want = format!("{}:{line}: ", file.display());
    assert!(err.starts_with(&want), "{what}: want {want}...; got {err}");
}

fn passes(out: &Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{what}: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_workload_verifies_and_leaves_no_key_or_personal_value() {
    let env = Env::new(None).await;
    let d = env.start();
    let ids = workload(&d).await;
    let (status, metrics) = admin_get(d.admin(), "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("egress_guard_audit_file_dropped_total 0"), "{metrics}");
    stop(d);
    passes(&env.verify(&[&env.audit], &[]), "intact");
    let key_arg = format!("file:{}", path_str(env.audit_key.path()));
    passes(&env.verify(&[&env.audit], &["--key", &key_arg]), "--key");
    let lines = env.lines();
    assert_eq!(lines.len(), 1 + ids.len(), "a file_start and one line per request");
    assert!(lines[0].starts_with(r#"{"record":"file_start""#), "{}", lines[0]);
    for id in ids.iter().filter(|id| !id.is_empty()) {
        assert!(
            lines.iter().any(|l| l.contains(id.as_str())),
            "request {id} is not in the file"
        );
    }
    let text = lines.join("\n");
    for secret in [
        KEY,
        AUDIT_KEY,
        "erika.mustermann@example.org",
        "Erika",
        "Heidestrasse",
        "203.0.113.9",
        "DE123456789",
    ] {
        assert!(!text.contains(secret), "{secret:?} is in the audit file");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&env.audit).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

/// Rewrites the file with `f` applied to its lines.
fn tamper(src: &Path, dst: &Path, f: impl Fn(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(src)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    f(&mut lines);
    std::fs::write(dst, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// A line the proxy never wrote, chained after `prev_line` under another key.
fn forged(prev_line: &str) -> String {
    let prev: Chain = open(prev_line.as_bytes()).map_err(|e| e.to_owned()).unwrap().chain;
    let mut out = Vec::new();
    let record = br#"{"record":"request","request_id":"forged","destination":"shipper","status":200}"#;
    ChainKey::new(b"not-the-audit-key-but-long-enough")
        .seal(&prev, record, &mut out)
        .unwrap();
    String::from_utf8(out).unwrap().trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tampering_is_caught_at_its_line() {
    let env = Env::new(None).await;
    let d = env.start();
    workload(&d).await;
    stop(d);
    let n = env.lines().len();
    type Edit = Box<dyn Fn(&mut Vec<String>)>;
    let cases: Vec<(&str, Edit, usize)> = vec![
        (
            "a changed byte",
            Box::new(|l| l[2] = l[2].replacen("\"status\":", "\"status\":1", 1)),
            3,
        ),
        ("a removed line", Box::new(|l| drop(l.remove(2))), 3),
        ("two lines swapped", Box::new(|l| l.swap(2, 3)), 3),
        ("the first line removed", Box::new(|l| drop(l.remove(0))), 1),
        (
            "a changed chain",
            Box::new(|l| l[1] = l[1].replacen("\"chain\":\"", "\"chain\":\"0", 1)),
            2,
        ),
        (
            "a forged line appended",
            Box::new(|l| l.push(forged(l.last().unwrap()))),
            n + 1,
        ),
        ("a forged line inserted", Box::new(|l| l.insert(3, forged(&l[2]))), 4),
    ];
    for (name, edit, line) in cases {
        let copy = env.dir.path().join("tampered.jsonl");
        tamper(&env.audit, &copy, edit);
        fails_at(&env.verify(&[&copy], &[]), &copy, line, name);
    }
    // A cut write: the last line without its end.
    let copy = env.dir.path().join("cut.jsonl");
    let bytes = std::fs::read(&env.audit).unwrap();
    std::fs::write(&copy, &bytes[..bytes.len() - 20]).unwrap();
    fails_at(&env.verify(&[&copy], &[]), &copy, n, "a cut last line");
    // The right file under the wrong key.
    let wrong = secret_file("a-wrong-audit-key-of-good-length");
    let arg = format!("file:{}", path_str(wrong.path()));
    fails_at(
        &env.verify(&[&env.audit], &["--key", &arg]),
        &env.audit,
        1,
        "a wrong key",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_goes_on_across_a_restart() {
    let env = Env::new(None).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let d = env.start();
        ids.extend(workload(&d).await);
        stop(d);
    }
    let out = passes(&env.verify(&[&env.audit], &[]), "two runs");
    assert!(!out.contains("note"), "{out}");
    let lines = env.lines();
    assert_eq!(lines.len(), 1 + ids.len(), "one file_start, no break: {lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("chain_break")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_tail_starts_a_new_segment_with_a_chain_break() {
    // (name, how the tail is damaged, reason the chain_break gives)
    type Damage = fn(&Path);
    let cases: &[(&str, Damage, &str)] = &[
        ("truncated mid-line", |p| cut(p, 20), "partial last line"),
        ("last line edited", |p| edit_last(p), "chain mismatch"),
    ];
    for (name, damage, reason) in cases {
        let env = Env::new(None).await;
        let d = env.start();
        workload(&d).await;
        stop(d);
        let before = env.lines().len();
        damage(&env.audit);
        let d = env.start();
        d.wait_line(|l| l.contains("chain_break starts a new segment"));
        let ids = workload(&d).await;
        stop(d);
        let lines = env.lines();
        let brk = &lines[before];
        assert!(
            brk.starts_with(r#"{"record":"chain_break""#) && brk.contains(reason),
            "{name}: {brk}"
        );
        assert!(brk.contains(&format!("\"damaged_line\":{before}")), "{name}: {brk}");
        assert_eq!(lines.len(), before + 1 + ids.len(), "{name}");
        // The damaged line is the first bad one; --allow-breaks accepts it and checks on.
        fails_at(&env.verify(&[&env.audit], &[]), &env.audit, before, name);
        let out = passes(&env.verify(&[&env.audit], &["--allow-breaks"]), name);
        assert!(
            out.contains(&format!(
                ":{}: note: chain_break: line {before} was damaged",
                before + 1
            )),
            "{name}: {out}"
        );
        // A record edited after the break is still caught.
        let copy = env.dir.path().join("after-break.jsonl");
        tamper(&env.audit, &copy, |l| {
            l[before + 2] = l[before + 2].replacen("\"status\":", "\"status\":1", 1)
        });
        fails_at(&env.verify(&[&copy], &["--allow-breaks"]), &copy, before + 3, name);
    }
}

fn cut(p: &Path, n: usize) {
    let bytes = std::fs::read(p).unwrap();
    std::fs::write(p, &bytes[..bytes.len() - n]).unwrap();
}

fn edit_last(p: &Path) {
    tamper(p, p, |l| {
        let last = l.last_mut().unwrap();
        *last = last.replacen("\"status\":", "\"status\":1", 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_cut_from_the_end_show_against_a_logged_anchor() {
    let env = Env::new(None).await;
    let mut d = env.start();
    workload(&d).await;
    d.term();
    assert!(d.wait_exit().success());
    // The head the proxy logged at shutdown, as journald or a log host would keep it.
    let anchor = d.field("\"message\":\"audit chain head\"", "audit_chain");
    passes(&env.verify(&[&env.audit], &["--anchor", &anchor]), "intact, anchored");
    tamper(&env.audit, &env.audit, |l| l.truncate(l.len() - 2));
    // Whole lines cut from the end still verify: the limit the anchor is for.
    passes(&env.verify(&[&env.audit], &[]), "cut, no anchor");
    let out = env.verify(&[&env.audit], &["--anchor", &anchor]);
    assert_eq!(out.status.code(), Some(1), "cut, anchored");
    assert!(String::from_utf8_lossy(&out.stderr).contains("anchored chain is not in the files"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_continues_the_chain_into_the_next_file() {
    let env = Env::new(Some(65536)).await;
    let d = env.start();
    let addr = d.addr.parse().unwrap();
    for _ in 0..400 {
        let r = send_to(addr, &absolute("GET", "http://api.elsewhere.test/x", &[], b"")).await;
        assert_eq!(r.status, 403);
    }
    d.wait_line(|l| l.contains("audit file rotated"));
    stop(d);
    let mut files: Vec<PathBuf> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("audit.jsonl."))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    files.push(env.audit.clone());
    let mut records = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.len() <= 65536, "{f:?} is {} bytes", text.len());
        assert!(text.starts_with(r#"{"record":"file_start""#), "{f:?}");
        records += text.lines().filter(|l| l.contains(r#""record":"request""#)).count();
    }
    assert_eq!(records, 400, "every request in exactly one file");
    let all: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    passes(&env.verify(&all, &[]), "all files in order");
    let alone = passes(&env.verify(&[&env.audit], &[]), "the current file alone");
    assert!(alone.contains("continues the chain of an earlier file"), "{alone}");
    // A rotated file left out (deleted): the next one does not continue.
    let gap: Vec<&Path> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, p)| *p)
        .collect();
    fails_at(&env.verify(&gap, &[]), gap[1], 1, "a missing middle file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_answered_just_before_sigterm_are_in_the_file_after_exit() {
    let env = Env::new(None).await;
    let d = env.start();
    let addr: std::net::SocketAddr = d.addr.parse().unwrap();
    let sends = (0..200).map(|i| {
        tokio::spawn(async move {
            let r = send_to(
                addr,
                &absolute("GET", &format!("http://api.elsewhere.test/{i}"), &[], b""),
            )
            .await;
            r.json()["request_id"].as_str().unwrap().to_owned()
        })
    });
    let mut ids = Vec::new();
    for s in sends.collect::<Vec<_>>() {
        ids.push(s.await.unwrap());
    }
    stop(d);
    let text = std::fs::read_to_string(&env.audit).unwrap();
    for id in &ids {
        assert!(text.contains(&format!("\"request_id\":\"{id}\"")), "{id} is missing");
    }
    passes(&env.verify(&[&env.audit], &[]), "after SIGTERM");
}
