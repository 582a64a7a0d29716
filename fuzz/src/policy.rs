//! The policy compiler (`egress_guard::policy::compile`) on arbitrary YAML text.
//!
//! Properties: no panic; compiling is deterministic (the same text compiles again to the
//! same policy, or the same errors); no secret the policy reads shows in its errors or in
//! the compiled policy's `Debug` (invariant 1); an injected credential value holds no
//! control character (docs/policy.md, "Secrets"). Secrets and CA files are read only from a fixture
//! folder this target writes: an input naming any other file is skipped, so the fuzzer
//! never reads the machine's files nor blocks on `/dev/stdin`.

use std::path::{Component, Path};
use std::sync::Once;

use egress_guard::policy::raw::RawPolicy;
use egress_guard::policy::{self, Policy, Source};

/// The fixture folder; seeds name files in it (`file:/tmp/egress-guard-fuzz/key`).
pub const FIXTURES: &str = "/tmp/egress-guard-fuzz";

/// Every secret value a policy can read here: none may show in an error or a `Debug`.
const SECRETS: &[&str] = &[
    "fuzz-file-secret-4f1c9a",
    "fuzz-env-secret-7d2e0b",
    "fuzz-cred-secret-93ab51",
];

pub fn check(data: &[u8]) {
    static SETUP: Once = Once::new();
    SETUP.call_once(setup);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !only_fixture_files(text) {
        return;
    }
    let first = policy::compile(text);
    let second = policy::compile(text);
    let shown = match (&first, &second) {
        (Ok(a), Ok(b)) => {
            check_policy(a);
            let (a, b) = (format!("{a:?}"), format!("{b:?}"));
            assert_eq!(a, b, "policy: the same text compiled twice differs");
            a
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "policy: the same text gives different errors");
            a.to_string()
        }
        _ => panic!("policy: the same text compiled once and failed once"),
    };
    for secret in SECRETS {
        if shown.contains(secret) && !text_yields(text, secret) {
            panic!("policy: a secret value shows in the policy's errors or Debug output");
        }
    }
}

fn check_policy(p: &Policy) {
    for d in &p.destinations {
        if let Some(c) = &d.credential {
            assert!(
                !c.value.as_bytes().iter().any(|b| b.is_ascii_control()),
                "policy: destination {:?} injects a credential holding a control character",
                d.name
            );
        }
    }
}

/// Whether the text itself can spell `secret` (literally, or through YAML escapes): then an
/// error quoting the text is no leak.
fn text_yields(text: &str, secret: &str) -> bool {
    text.contains(secret)
        || serde_yaml::from_str::<serde_yaml::Value>(text)
            .ok()
            .and_then(|v| serde_yaml::to_string(&v).ok())
            .is_some_and(|s| s.contains(secret))
}

/// The files the policy would read all lie in the fixture folder (or it reads none).
fn only_fixture_files(text: &str) -> bool {
    let Ok(raw) = serde_yaml::from_str::<RawPolicy>(text) else {
        return true; // compile stops at the same parse error, before reading anything
    };
    let in_fixtures = |p: &Path| p.starts_with(FIXTURES) && !p.components().any(|c| c == Component::ParentDir);
    let secret_ok = |spec: &str| match Source::parse(spec) {
        Ok(Source::File(p)) => in_fixtures(&p),
        _ => true, // env and credential names stay in the environment and fixture folder
    };
    let file_ok = |f: &str| in_fixtures(Path::new(f));
    // Keys that open files the secrets' rules do not cover (the audit file is
    // opened only by `run`, but its key is read; schemas are read relative to
    // the policy): such inputs are left out rather than read from anywhere.
    let server = &raw.server;
    if server.audit_file.is_some() || server.intercept_ca.is_some() {
        return false;
    }
    let creds_ok = |c: &egress_guard::policy::raw::RawCredential| {
        c.secret.as_deref().is_none_or(secret_ok)
            && c.basic
                .as_ref()
                .is_none_or(|b| secret_ok(&b.username) && secret_ok(&b.password))
            && c.oauth2.as_ref().is_none_or(|o| {
                secret_ok(&o.client_id) && secret_ok(&o.client_secret) && o.ca_file.as_deref().is_none_or(file_ok)
            })
    };
    server.client_token.as_deref().is_none_or(secret_ok)
        && server.audit_key.as_deref().is_none_or(secret_ok)
        && server.shared_limits.as_ref().is_none_or(|l| secret_ok(&l.redis))
        && raw.destinations.values().all(|d| {
            d.ca_file.as_deref().is_none_or(file_ok)
                && d.credential.as_ref().is_none_or(creds_ok)
                && d.routes
                    .iter()
                    .flatten()
                    .all(|r| r.body.as_ref().is_none_or(|b| b.schema.is_none()))
        })
}

/// Writes the fixture files and sets the environment the seeds' secrets name.
fn setup() {
    let dir = Path::new(FIXTURES);
    let _ = std::fs::create_dir_all(dir);
    let files: &[(&str, &[u8])] = &[
        ("key", b"fuzz-file-secret-4f1c9a\n"),
        ("key-crlf", b"fuzz-file-secret-4f1c9a\r\n"),
        ("key-tab", b"fuzz-file-secret-4f1c9a\tx"),
        ("key-two-lines", b"fuzz-file-secret-4f1c9a\nfuzz-file-secret-4f1c9a\n"),
        ("cred", b"fuzz-cred-secret-93ab51"),
        ("empty", b""),
        (
            "bad.pem",
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        ),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(*bytes) {
            let _ = std::fs::write(&path, bytes);
        }
    }
    // A real CA certificate, when the system has one, for a `ca_file` that parses.
    let mut pems: Vec<_> = std::fs::read_dir("/etc/ssl/certs")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    pems.sort();
    if let Some(ca) = pems.first() {
        let _ = std::fs::copy(ca, dir.join("ca.pem"));
    }
    std::env::set_var("EG_FUZZ_KEY", "fuzz-env-secret-7d2e0b");
    std::env::set_var("EG_FUZZ_KEY_CTL", "fuzz-env-secret-7d2e0b\u{1}");
    std::env::set_var("CREDENTIALS_DIRECTORY", FIXTURES);
}
