//! Issue 8, class 14: reloads do not starve. While another file in the
//! policy's directory changes every 10 ms, a renamed-in policy and a SIGHUP
//! each take effect within a bound; a watched file that never goes quiet
//! still reloads within the debounce's maximum wait; a `file:` secret in
//! another directory is watched too. The noise writer is load, not a wait:
//! every wait here is for a condition, with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::daemon::{closed_port_sync as closed_port, write_by_rename};
use common::policy::closed_dests as policy_text;
use common::Daemon;

/// How long a change may take to apply: the debounce's maximum wait (1 s)
/// plus compiling the policy, with room for a loaded machine.
const BOUND: Duration = Duration::from_secs(5);

/// Rewrites `file` every 10 ms until dropped; with fixed `content`, by
/// rename-over, so a reader never sees it half written.
struct Noise {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Noise {
    fn start(file: PathBuf, content: &'static str) -> Noise {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                if content.is_empty() {
                    std::fs::write(&file, format!("line {n}\n")).unwrap();
                } else {
                    write_by_rename(&file, content);
                }
                n += 1;
                // The pace of the load (a write every 10 ms, as a busy log would),
                // not a wait: the tests wait for their conditions with deadlines.
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Noise {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Noise {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reloaded(generation: u64) -> impl Fn(&str) -> bool {
    let want = format!("\"policy_generation\":{generation}");
    move |l: &str| l.contains("policy reloaded") && l.contains(&want)
}

/// The proxy on a policy allowing `alpha`, with `shop.log` beside the policy rewritten every 10 ms.
fn noisy_proxy(dir: &Path, port: u16) -> (Daemon, Noise) {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, policy_text(&["alpha"], port, None)).unwrap();
    let p = Daemon::spawn(&path);
    (p, Noise::start(dir.join("shop.log"), ""))
}

#[test]
fn sighup_reloads_at_once_while_a_neighbour_file_keeps_changing() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _noise) = noisy_proxy(dir.path(), closed_port());
    p.signal("-HUP");
    p.wait_line_within(BOUND, reloaded(2));
}

#[test]
fn a_renamed_policy_applies_while_a_neighbour_file_keeps_changing() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let (p, _noise) = noisy_proxy(dir.path(), port);
    write_by_rename(
        &dir.path().join("policy.yaml"),
        &policy_text(&["alpha", "beta"], port, None),
    );
    p.wait_reason_within("beta.example", "upstream_unavailable", BOUND);
    p.signal("-HUP");
    p.wait_line_within(BOUND, reloaded(3));
    // One reload for the rename, one for SIGHUP: the neighbour's changes caused none.
    assert_eq!(p.count_lines(|l| l.contains("policy reloaded")), 2);
}

#[test]
fn a_watched_file_that_never_goes_quiet_still_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("key");
    std::fs::write(&secret, "k-1\n").unwrap();
    let path = dir.path().join("policy.yaml");
    let port = closed_port();
    std::fs::write(&path, policy_text(&["alpha"], port, Some(&secret))).unwrap();
    let p = Daemon::spawn(&path);
    // The secret lives in another directory: a change to it alone reloads.
    std::fs::write(&secret, "k-2\n").unwrap();
    p.wait_line_within(BOUND, reloaded(2));
    // Rewritten every 10 ms, the secret never goes quiet: the maximum wait still lets reloads through.
    let _noise = Noise::start(secret.clone(), "k-3\n");
    write_by_rename(&path, &policy_text(&["alpha", "beta"], port, Some(&secret)));
    p.wait_reason_within("beta.example", "upstream_unavailable", BOUND);
}

/// A reload that changes `client_token` applies at once (it is read per
/// request), so it must not be reported as waiting for a restart; a change to
/// a listener does wait, and says so.
#[test]
fn only_keys_read_at_start_are_reported_as_waiting_for_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let path = dir.path().join("policy.yaml");
    let token = dir.path().join("client-token");
    std::fs::write(&token, "first-token-value\n").unwrap();
    let with = |extra: Option<(&str, &str)>| {
        let mut p = common::policy::PolicyBuilder::new()
            .server("listen", "127.0.0.1:0")
            .server("client_token", &format!("file:{}", token.display()));
        if let Some((k, v)) = extra {
            p = p.server(k, v);
        }
        p.dest(common::policy::Dest::new("alpha", "alpha.example").connect_to(&format!("127.0.0.1:{port}")))
            .yaml()
    };
    std::fs::write(&path, with(None)).unwrap();
    let p = Daemon::spawn(&path);
    let restart = |l: &str| l.contains("next restart");
    // The token's file changes: a reload, and no restart warning.
    write_by_rename(&token, "second-token-value\n");
    p.signal("-HUP");
    p.wait_line_within(BOUND, reloaded(2));
    assert_eq!(p.count_lines(restart), 0, "a client_token change applies at once");
    // An admin listener appears: that one waits for a restart, and is told.
    write_by_rename(&path, &with(Some(("admin", "127.0.0.1:0"))));
    p.signal("-HUP");
    p.wait_line_within(BOUND, restart);
}
