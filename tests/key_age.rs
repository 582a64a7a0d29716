//! Key age: `egress_guard_credential_age_seconds` follows the secret file's
//! modification time (set by the test), the real binary warns with a
//! `credential_overdue` anomaly about an overdue key and not about a fresh
//! one, rotating the file ends it, the warning comes once a day on a clock
//! the test drives, `check` prints each secret's age, and `rotate_every` is
//! read strictly. On `basic:` and `oauth2:` it watches the password and the
//! client secret, and `check` names what they inject without a secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::daemon::BIN;
use common::*;
use egress_guard::clock::Clock;

const DAY: u64 = 24 * 3600;

/// A secret file last changed `days_ago` days ago.
fn aged_secret(value: &str, days_ago: u64) -> tempfile::NamedTempFile {
    let f = secret_file(value);
    set_age(f.path(), days_ago);
    f
}

fn set_age(path: &Path, days_ago: u64) {
    let when = SystemTime::now() - Duration::from_secs(days_ago * DAY);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn credential(path: &Path, rotate_every: &str) -> String {
    format!("{{secret: 'file:{}', rotate_every: {rotate_every}}}", path_str(path))
}

/// `old` (100 days, rotate every 90d: overdue) and `fresh` (10 days, rotate every 30d).
fn policy(old: &Path, fresh: &Path, closed: u16) -> String {
    let to = format!("127.0.0.1:{closed}");
    PolicyBuilder::new()
        .listen_any()
        .dest(
            Dest::new("old", "api.old.test")
                .connect_to(&to)
                .set("credential", &credential(old, "90d")),
        )
        .dest(
            Dest::new("fresh", "api.fresh.test")
                .connect_to(&to)
                .set("credential", &credential(fresh, "30d")),
        )
        .yaml()
}

fn age_of(m: &Exposition, destination: &str) -> f64 {
    let series = format!("egress_guard_credential_age_seconds{{destination=\"{destination}\"}}");
    m.get(&series).unwrap_or_else(|| panic!("no {series}"))
}

fn overdue_count(m: &Exposition) -> f64 {
    m.get("egress_guard_anomalies_total{kind=\"credential_overdue\"}")
        .unwrap_or(0.0)
}

fn assert_near(got: f64, want_days: u64, what: &str) {
    let want = (want_days * DAY) as f64;
    assert!((got - want).abs() < 600.0, "{what}: age {got}, want about {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_ages_and_warns_about_the_overdue_key_only() {
    let old = aged_secret("k-old-0001", 100);
    let fresh = aged_secret("k-fresh-0001", 10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy(old.path(), fresh.path(), daemon::closed_port_sync())).unwrap();
    let p = Daemon::spawn(&path);

    // The ticker looks at start: the overdue key is warned about without a scrape.
    let line = p.wait_line(|l| l.contains("\"kind\":\"credential_overdue\""));
    assert!(line.contains("\"destination\":\"old\""), "{line}");
    assert!(line.contains("rotate_every_seconds=7776000"), "{line}");
    assert!(!line.contains("k-old-0001"), "the key in a log line: {line}");

    let (status, text) = admin_get(p.admin(), "/metrics").await;
    assert_eq!(status, 200);
    let m = Exposition::parse(&text);
    assert_near(age_of(&m, "old"), 100, "old");
    assert_near(age_of(&m, "fresh"), 10, "fresh");
    assert_eq!(
        overdue_count(&m),
        1.0,
        "one warning: the scrape within the day adds none"
    );

    // Rotating the key (a new file content) reloads; its age starts over.
    std::fs::write(old.path(), "k-old-0002\n").unwrap();
    p.wait_line(|l| l.contains("policy reloaded"));
    let (_, text) = admin_get(p.admin(), "/metrics").await;
    let m = Exposition::parse(&text);
    assert!(age_of(&m, "old") < 600.0, "the rotated key is new");
    assert_eq!(overdue_count(&m), 1.0);
    assert_eq!(p.count_lines(|l| l.contains("\"kind\":\"credential_overdue\"")), 1);
    assert!(!p
        .lines()
        .iter()
        .any(|l| l.contains("\"destination\":\"fresh\"") && l.contains("credential_overdue")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_key_is_warned_about_once_a_day_on_a_driven_clock() {
    let old = aged_secret("k-old-0001", 100);
    let fresh = aged_secret("k-fresh-0001", 10);
    let clock = Clock::manual();
    let proxy = Proxy::start_with_clock(&policy(old.path(), fresh.path(), 9), clock.clone()).await;
    let rows: &[(&str, u64, f64)] = &[
        ("first look", 0, 1.0),
        ("same instant", 0, 1.0),
        ("an hour later", 3600, 1.0),
        ("just short of a day", DAY - 3600 - 1, 1.0),
        ("a day after the first", 1, 2.0),
        ("again that day", 12 * 3600, 2.0),
        ("the next day", 12 * 3600, 3.0),
    ];
    for (name, advance, want) in rows {
        clock.advance(Duration::from_secs(*advance));
        assert_eq!(overdue_count(&proxy.metrics().await), *want, "{name}");
    }
}

#[test]
fn check_prints_each_secret_age_and_the_overdue_ones() {
    let old = aged_secret("k-old-0001", 100);
    let fresh = aged_secret("k-fresh-0001", 10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy(old.path(), fresh.path(), 9)).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check", &path_str(&path)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text.contains("key age 100d: OVERDUE, rotate every 90d"), "{text}");
    assert!(text.contains("key age 10d (rotate every 30d)"), "{text}");
    assert!(!text.contains("k-old-0001"), "{text}");
}

/// Secrets of a `basic:` and an `oauth2:` credential. The user name and the
/// client id are older than anything, so an age taken from them would show.
struct TwoPart {
    user: tempfile::NamedTempFile,
    pass: tempfile::NamedTempFile,
    id: tempfile::NamedTempFile,
    secret: tempfile::NamedTempFile,
}

const USER: &str = "shop-user-4711";
const PASS: &str = "pw-basic-9f8e7d6c";
const CLIENT_ID: &str = "client-id-0a0b0c";
const CLIENT_SECRET: &str = "cs-oauth2-5a4b3c2d";

fn two_part() -> TwoPart {
    TwoPart {
        user: aged_secret(USER, 400),
        pass: aged_secret(PASS, 100),
        id: aged_secret(CLIENT_ID, 400),
        secret: aged_secret(CLIENT_SECRET, 10),
    }
}

/// `basic` (password 100 days, rotate every 90d: overdue) and `oauth2`
/// (client secret 10 days, rotate every 30d), both dialing `to`.
fn two_part_policy(t: &TwoPart, to: &str) -> String {
    let basic = format!(
        "{{basic: {{username: 'file:{}', password: 'file:{}'}}, rotate_every: 90d}}",
        path_str(t.user.path()),
        path_str(t.pass.path())
    );
    let oauth2 = format!(
        "{{oauth2: {{token_url: 'https://auth.partner.test:8443/v1/oauth2/token', client_id: 'file:{}', \
         client_secret: 'file:{}', connect_to: '{to}'}}, rotate_every: 30d}}",
        path_str(t.id.path()),
        path_str(t.secret.path())
    );
    PolicyBuilder::new()
        .listen_any()
        .dest(
            Dest::new("basic", "api.basic.test")
                .connect_to(to)
                .set("credential", &basic),
        )
        .dest(
            Dest::new("oauth2", "api.oauth2.test")
                .connect_to(to)
                .set("credential", &oauth2),
        )
        .yaml()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_every_on_basic_and_oauth2_watches_the_password_and_the_client_secret() {
    let t = two_part();
    let clock = Clock::manual();
    let proxy = Proxy::start_with_clock(&two_part_policy(&t, "127.0.0.1:9"), clock).await;
    let m = proxy.metrics().await;
    // (row, destination, the age of the secret rotate_every applies to)
    let rows: &[(&str, &str, u64)] = &[
        ("basic: the password file's age", "basic", 100),
        ("oauth2: the client secret's age", "oauth2", 10),
    ];
    for (name, dest, days) in rows {
        assert_near(age_of(&m, dest), *days, name);
    }
    assert_eq!(overdue_count(&m), 1.0, "only the basic password is overdue");
}

#[test]
fn check_names_what_basic_and_oauth2_inject_without_a_secret() {
    let t = two_part();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, two_part_policy(&t, "127.0.0.1:9")).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check", &path_str(&path)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", describe(&out));
    let (user, pass) = (path_str(t.user.path()), path_str(t.pass.path()));
    let (id, secret) = (path_str(t.id.path()), path_str(t.secret.path()));
    let rows: [(&str, String); 4] = [
        (
            "basic: what is injected",
            format!("injects Authorization: Basic (username from file:{user}, password from file:{pass})\n"),
        ),
        (
            "basic: the password's age",
            "    password key age 100d: OVERDUE, rotate every 90d\n".to_owned(),
        ),
        (
            "oauth2: what is injected",
            format!(
                "injects Authorization: Bearer (OAuth2 client credentials at auth.partner.test:8443, \
                 client id from file:{id}, client secret from file:{secret})\n"
            ),
        ),
        (
            "oauth2: the client secret's age",
            "    client secret key age 10d (rotate every 30d)\n".to_owned(),
        ),
    ];
    for (name, want) in &rows {
        assert!(text.contains(want.as_str()), "{name}: want {want:?} in\n{text}");
    }
    let pair = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{USER}:{PASS}"));
    for value in [USER, PASS, CLIENT_ID, CLIENT_SECRET, pair.as_str()] {
        assert!(
            !describe(&out).contains(value),
            "a secret value in check's output:\n{text}"
        );
    }
}

#[test]
fn rotate_every_is_read_strictly() {
    let key = secret_file("k-0001");
    let rows: &[(&str, &str, &str)] = &[
        ("no unit", &credential(key.path(), "90"), "not a period"),
        ("minutes", &credential(key.path(), "90m"), "not a period"),
        ("words", &credential(key.path(), "'90 days'"), "not a period"),
        ("too long", &credential(key.path(), "4000d"), "ten years"),
        (
            "env secret",
            "{secret: 'env:HOME', rotate_every: 90d}",
            "environment variable has no age",
        ),
    ];
    for (name, cred, needle) in rows {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        let text = PolicyBuilder::new()
            .dest(Dest::new("a", "api.a.test").set("credential", cred))
            .yaml();
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["check", &path_str(&path)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", describe(&out));
        assert!(err.contains("destinations.a.credential.rotate_every"), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
    }
}
