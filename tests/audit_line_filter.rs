//! The audit line is written straight into the log buffer, past tracing's
//! formatter: `EGRESS_GUARD_LOG` must still turn its target off, and the
//! line must still be there (and parse) when it is on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::daemon::{closed_port_sync, Spawn};
use common::{Dest, PolicyBuilder};

#[test]
fn the_log_filter_still_governs_the_audit_target() {
    // name, EGRESS_GUARD_LOG, audit line expected
    let rows: &[(&str, &str, bool)] = &[
        ("info", "info", true),
        ("audit target off", "info,egress_guard::audit=off", false),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let to = format!("127.0.0.1:{}", closed_port_sync());
    PolicyBuilder::new()
        .server("listen", "127.0.0.1:0")
        .dest(Dest::new("crm", "crm.test").connect_to(&to))
        .write(&path);
    for (name, filter, expected) in rows {
        let mut p = Spawn::new(&path).log(filter).start();
        let (_, reason) = p.get("http://nowhere.test/x");
        assert_eq!(reason, "destination_not_allowed", "{name}");
        p.term();
        p.wait_exit();
        let out = p.drained_output();
        let lines: Vec<&str> = out.lines().filter(|l| l.contains("\"message\":\"request\"")).collect();
        assert_eq!(!lines.is_empty(), *expected, "{name}:\n{out}");
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["target"], "egress_guard::audit", "{name}: {l}");
            assert_eq!(v["reason"], "destination_not_allowed", "{name}: {l}");
        }
    }
}
