//! Issue 8, class 13: a value a client puts in a path never reaches the log.
//! The real binary's audit lines: under a matched route the path is the
//! route's pattern (what `*` and `**` matched is not told); with no route
//! matched, on a destination without routes, or for an unknown host, each
//! value-like segment is `(value-like)`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::daemon::closed_port_sync;
use common::{Daemon, Dest, PolicyBuilder, Route};

/// Values a client might put in a path.
const VALUES: &[&str] = &[
    "jane.doe@example.org",
    "jane.doe%40example.org",
    "4111111111111111",
    "J%C3%BCrgen",
];

fn policy(closed: u16) -> PolicyBuilder {
    let to = format!("127.0.0.1:{closed}");
    PolicyBuilder::new()
        .server("listen", "127.0.0.1:0")
        .dest(
            Dest::new("crm", "crm.test")
                .connect_to(&to)
                .route(Route::get("/v1/customers/*"))
                .route(Route::get("/v1/files/**")),
        )
        .dest(Dest::new("open", "open.test").connect_to(&to))
}

#[test]
fn path_values_are_logged_as_the_route_pattern_or_masked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    policy(closed_port_sync()).write(&path);
    let p = Daemon::spawn(&path);
    let mut rows: Vec<(String, String, &str)> = Vec::new();
    for v in VALUES {
        rows.extend([
            (
                format!("http://crm.test/v1/customers/{v}"),
                "/v1/customers/*".to_owned(),
                "upstream_unavailable",
            ),
            (
                format!("http://crm.test/v1/files/a/{v}/b"),
                "/v1/files/**".to_owned(),
                "upstream_unavailable",
            ),
            (
                format!("http://crm.test/v1/customers/{v}/notes"),
                "/v1/customers/(value-like)/notes".to_owned(),
                "route_not_allowed",
            ),
            (
                format!("http://open.test/v1/people/{v}"),
                "/v1/people/(value-like)".to_owned(),
                "upstream_unavailable",
            ),
            (
                format!("http://unknown.test/v1/x/{v}"),
                "/v1/x/(value-like)".to_owned(),
                "destination_not_allowed",
            ),
        ]);
    }
    for (i, (url, _, reason)) in rows.iter().enumerate() {
        let (_, got) = p.get(url);
        assert_eq!(got, *reason, "{url}");
        // Each request's audit line is written before the next starts.
        p.wait_count(i + 1, |l| l.contains("\"message\":\"request\""), url);
    }
    let lines = p.lines();
    let audit: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.contains("\"message\":\"request\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for ((url, want, _), line) in rows.iter().zip(&audit) {
        assert_eq!(line["path"], *want, "{url}: {line}");
    }
    for line in &lines {
        for v in VALUES {
            let raw = v.replace("%40", "@");
            assert!(!line.contains(v) && !line.contains(&raw), "{v} logged: {line}");
        }
        assert!(!line.contains("jane.doe"), "a path value logged: {line}");
    }
}
