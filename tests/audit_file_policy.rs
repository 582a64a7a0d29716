//! The audit file's policy keys through `egress-guard check`: a file without
//! a key, a key without a file, a relative path, a short key and a tiny
//! rotation size are each an error with its key named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;

const AUDIT_KEY: &str = "audit-key-0123456789abcdef0123456789";

#[test]
fn audit_keys_are_checked_with_the_policy() {
    let short = secret_file("too-short");
    let good = secret_file(AUDIT_KEY);
    let k = |f: &tempfile::NamedTempFile| format!("file:{}", path_str(f.path()));
    type Server = Vec<(&'static str, String)>;
    let cases: &[(&str, Server, &str)] = &[
        (
            "file without key",
            vec![("audit_file", "/tmp/a.jsonl".into())],
            "needs `audit_key`",
        ),
        ("key without file", vec![("audit_key", k(&good))], "needs `audit_file`"),
        (
            "relative path",
            vec![("audit_file", "a.jsonl".into()), ("audit_key", k(&good))],
            "absolute",
        ),
        (
            "short key",
            vec![("audit_file", "/tmp/a.jsonl".into()), ("audit_key", k(&short))],
            "at least 16 bytes",
        ),
        (
            "tiny rotation",
            vec![
                ("audit_file", "/tmp/a.jsonl".into()),
                ("audit_key", k(&good)),
                ("audit_max_bytes", "100".into()),
            ],
            "at least",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, server, want) in cases {
        let mut p = PolicyBuilder::new();
        for (key, v) in server {
            p = p.server(key, v);
        }
        let file = dir.path().join("p.yaml");
        p.write(&file);
        let out = Command::new(daemon::BIN).arg("check").arg(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}
