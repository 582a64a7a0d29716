#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! `egress-guard ca init` read back with openssl (CA:TRUE, critical name
//! constraints for exactly the intercepted hosts, no IP address), the key's
//! mode, the refusal to overwrite; the policy's refusals around
//! `intercept_ca` and `intercept: true`; and `check`'s warning for a host
//! outside the CA's constraints.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::daemon::run_once;
use common::{describe, path_str, Dest, PolicyBuilder};

fn openssl_text(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &path_str(cert)])
        .output()
        .expect("openssl must be installed");
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A policy naming the CA in `dir`, with `hosts` intercepted.
fn policy(dir: &Path, hosts: &[&str]) -> std::path::PathBuf {
    let ca = format!(
        "{{cert: {}, key: \"file:{}\"}}",
        path_str(&dir.join("ca.pem")),
        path_str(&dir.join("ca.key"))
    );
    let mut p = PolicyBuilder::new().server("intercept_ca", &ca);
    for (i, h) in hosts.iter().enumerate() {
        p = p.dest(Dest::new(&format!("d{i}"), &format!("\"{h}\"")).set("intercept", "true"));
    }
    let path = dir.join("policy.yaml");
    p.write(&path);
    path
}

#[test]
fn ca_init_makes_a_name_constrained_ca_with_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let pol = policy(dir.path(), &["api.payments.example", "*.shipper.example"]);
    let args = [
        "ca",
        "init",
        "--dir",
        &path_str(&ca_dir),
        "--policy",
        &path_str(&pol),
        "--permit",
        "erp.example",
    ];
    let out = run_once(&args, None);
    assert!(out.status.success(), "{}", describe(&out));
    let text = openssl_text(&ca_dir.join("ca.pem"));
    let want = [
        ("CA:TRUE", "CA:TRUE, pathlen:0"),
        ("critical constraints", "X509v3 Name Constraints: critical"),
        ("policy host", "DNS:api.payments.example"),
        ("wildcard's domain", "DNS:shipper.example"),
        ("--permit host", "DNS:erp.example"),
        ("no IPv4", "IP:0.0.0.0/0.0.0.0"),
        ("P-256", "NIST CURVE: P-256"),
    ];
    for (what, needle) in want {
        assert!(text.contains(needle), "{what}: {needle:?} not in\n{text}");
    }
    assert_eq!(text.matches("DNS:").count(), 3, "only the intercepted hosts:\n{text}");
    assert_eq!(mode(&ca_dir.join("ca.key")), 0o600);
    assert_eq!(mode(&ca_dir.join("ca.pem")), 0o644);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("PRIVATE"),
        "the key is not printed"
    );
}

#[test]
fn ca_init_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path());
    assert!(run_once(&["ca", "init", "--dir", &d, "--permit", "a.example"], None)
        .status
        .success());
    let before = std::fs::read(dir.path().join("ca.key")).unwrap();
    let again = run_once(&["ca", "init", "--dir", &d, "--permit", "a.example"], None);
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        describe(&again)
    );
    assert_eq!(
        std::fs::read(dir.path().join("ca.key")).unwrap(),
        before,
        "the key was kept"
    );
    let forced = run_once(&["ca", "init", "--dir", &d, "--permit", "a.example", "--force"], None);
    assert!(forced.status.success(), "{}", describe(&forced));
    assert_ne!(
        std::fs::read(dir.path().join("ca.key")).unwrap(),
        before,
        "--force replaced it"
    );
    assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
}

#[test]
fn ca_init_refuses_what_it_cannot_constrain() {
    let cases: [(&str, &[&str]); 3] = [
        ("nothing to permit", &[]),
        ("an IP address", &["--permit", "10.0.0.5"]),
        ("not a host name", &["--permit", "bad_name.example"]),
    ];
    for (what, extra) in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = path_str(dir.path());
        let mut args = vec!["ca", "init", "--dir", &d];
        args.extend_from_slice(extra);
        let out = run_once(&args, None);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", describe(&out));
        assert!(!dir.path().join("ca.key").exists(), "{what}: a key was written");
    }
}

#[test]
fn check_warns_about_a_host_outside_the_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path());
    assert!(
        run_once(&["ca", "init", "--dir", &d, "--permit", "api.payments.example"], None)
            .status
            .success()
    );
    let pol = policy(dir.path(), &["api.payments.example", "api.erp.example"]);
    let out = run_once(&["check", &path_str(&pol)], None);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: destination `d1`: api.erp.example is outside the interception CA's name constraints"),
        "{text}"
    );
    assert!(!text.contains("`d0`: api.payments.example is outside"), "{text}");
}

#[test]
fn the_policy_refuses_interception_it_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path());
    assert!(run_once(&["ca", "init", "--dir", &d, "--permit", "a.example"], None)
        .status
        .success());
    let (cert, key) = (
        path_str(&dir.path().join("ca.pem")),
        path_str(&dir.path().join("ca.key")),
    );
    let other = tempfile::tempdir().unwrap();
    let od = path_str(other.path());
    assert!(run_once(&["ca", "init", "--dir", &od, "--permit", "a.example"], None)
        .status
        .success());
    let open_key = other.path().join("open.key");
    std::fs::copy(dir.path().join("ca.key"), &open_key).unwrap();
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let ca = |k: &str| format!("server:\n  intercept_ca: {{cert: {cert}, key: \"file:{k}\"}}\n");
    let dest = |extra: &str| format!("destinations:\n  a:\n    host: a.example\n    intercept: true\n{extra}");
    let cases = [
        (
            "no CA",
            format!("version: 1\n{}", dest("")),
            "needs `server.intercept_ca`",
        ),
        (
            "also a tunnel",
            format!("version: 1\n{}{}", ca(&key), dest("    tunnel: true\n")),
            "not both",
        ),
        (
            "key readable by group",
            format!("version: 1\n{}{}", ca(&path_str(&open_key)), dest("")),
            "readable by group or others",
        ),
        (
            "key of another CA",
            format!(
                "version: 1\n{}{}",
                ca(&path_str(&other.path().join("ca.key"))),
                dest("")
            ),
            "does not belong to the certificate",
        ),
        (
            "an IP address host",
            format!(
                "version: 1\n{}destinations:\n  a:\n    host: 10.0.0.5\n    intercept: true\n",
                ca(&key)
            ),
            "needs a host name",
        ),
    ];
    let key_pem = std::fs::read_to_string(dir.path().join("ca.key")).unwrap();
    for (what, yaml, want) in cases {
        let err = egress_guard::policy::compile(&yaml).expect_err(what).to_string();
        assert!(err.contains(want), "{what}: {want:?} not in {err}");
        for l in key_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!err.contains(l), "{what}: the error holds the key");
        }
    }
    let fine = format!("version: 1\n{}{}", ca(&key), dest(""));
    assert!(
        egress_guard::policy::compile(&fine).is_ok(),
        "the CA's own key, mode 0600"
    );
}
