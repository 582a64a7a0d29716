//! Fleet-wide limits on a real `redis-server` (started here on a free port,
//! no persistence, killed at the end): two proxy processes sharing it admit
//! together what one would; Redis killed or frozen (SIGSTOP) mid-run, every
//! answer still comes within a bound and `on_unavailable` decides; fleet
//! limiting resumes when Redis is back. Admitted requests go to a closed port
//! (502 `upstream_unavailable`), refused ones get 429 `rate_limited`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "fleet_limits/support.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use common::daemon::closed_port_sync as free_port;
use common::{Daemon, Dest, PolicyBuilder, DEADLINE};
use support::*;

#[test]
fn two_proxies_on_one_redis_admit_together_what_one_would() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let pre = prefix("share");
    // A generous wait for Redis here: this test is about sharing, not outages.
    let a = proxy(dir.path(), "a", &redis.url(), &pre, "refuse", 1000);
    let b = proxy(dir.path(), "b", &redis.url(), &pre, "refuse", 1000);
    let started = Instant::now();
    let answers: Vec<(usize, Answer)> = (0..4 * BURST)
        .map(|i| (i % 2, ask(if i % 2 == 0 { &a } else { &b })))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    for (_, ans) in &answers {
        assert!(
            ans.admitted() || ans.limited(),
            "each answer is admitted or rate_limited: {ans:?}"
        );
    }
    let admitted = answers.iter().filter(|(_, a)| a.admitted()).count();
    // GCRA at 1/s with burst 5: at most the burst plus what elapsed refilled.
    let most = BURST + elapsed.floor() as usize + 1;
    assert!(
        (BURST..=most).contains(&admitted),
        "together they admitted {admitted} in {elapsed:.2}s; one proxy alone would admit {BURST} to {most}: {answers:?}"
    );
    for who in 0..2 {
        assert!(
            answers.iter().any(|(w, a)| *w == who && a.admitted())
                && answers.iter().any(|(w, a)| *w == who && a.limited()),
            "proxy {who} admitted some and was refused some: {answers:?}"
        );
    }
    // The shared state is one key per limit, and it expires.
    let ttl = redis.pttl(&format!("{pre}shipper"));
    assert!(
        ttl > 0 && ttl <= (BURST as i64 + 1) * 1000 + 1,
        "the key expires: PTTL {ttl}"
    );
    assert_eq!(metric(&a, "egress_guard_shared_limit_errors_total"), 0.0);
    assert_eq!(metric(&a, "egress_guard_shared_limits_up"), 1.0);
}

#[test]
fn two_proxies_share_one_byte_budget() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let pre = prefix("bytes");
    // 1000 bytes a minute (about 17 a second back): three 300-byte bodies fit, a fourth does not.
    let limit = "{per_second: 100, burst: 100, bytes_per_minute: 1000, scope: fleet}";
    let a = proxy_with(dir.path(), "a", &redis.url(), &pre, "refuse", 1000, limit);
    let b = proxy_with(dir.path(), "b", &redis.url(), &pre, "refuse", 1000, limit);
    let body = "x".repeat(300);
    let answers: Vec<Answer> = [&a, &b, &a, &b].iter().map(|p| post(p, &body)).collect();
    let admitted: Vec<bool> = answers.iter().map(Answer::admitted).collect();
    assert_eq!(admitted, [true, true, true, false], "{answers:?}");
    assert!(answers[3].limited(), "{answers:?}");
    let ttl = redis.pttl(&format!("{pre}shipper:bytes"));
    assert!(ttl > 0 && ttl <= 60_001, "the byte budget's key expires: PTTL {ttl}");
}

/// How Redis fails in a row of the outage table.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill,
    Stop,
}

/// Redis fails after the proxy used it; every answer still comes within
/// `BOUND`, `on_unavailable` decides, one WARN is logged; then Redis comes
/// back and the fleet store decides again, after one INFO.
fn outage(fault: Fault, on_unavailable: &str) {
    let what = format!("{fault:?}, on_unavailable: {on_unavailable}");
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let pre = prefix(&format!("{fault:?}-{on_unavailable}"));
    // 250 ms rather than the default 50: on a loaded test machine Redis may
    // be slow before the fault too; a frozen Redis still costs under BOUND.
    let p = proxy(dir.path(), "p", &redis.url(), &pre, on_unavailable, 250);
    let key = format!("{pre}shipper");
    let start = Instant::now();
    while !(ask(&p).admitted() && redis.pttl(&key) > 0) {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: the fleet store never decided a request"
        );
    }
    // Checks that fell back before the fault (a slow machine) spent the local burst.
    let spent = metric(&p, "egress_guard_shared_limit_errors_total") as usize;
    let (lost_before, back_before) = (p.count_lines(is_lost), p.count_lines(is_back));

    let redis = match fault {
        Fault::Kill => Later::Dead(redis.kill()),
        Fault::Stop => {
            redis.signal("-STOP");
            Later::Frozen(redis)
        }
    };
    // First a few at once (they meet the fault together), then one after another.
    let mut answers: Vec<Answer> = std::thread::scope(|s| {
        let asks: Vec<_> = (0..4).map(|_| s.spawn(|| ask(&p))).collect();
        asks.into_iter().map(|h| h.join().unwrap()).collect()
    });
    answers.extend((0..2 * BURST).map(|_| ask(&p)));
    for a in &answers {
        assert!(a.took < BOUND, "{what}: an answer took {:?}: {answers:?}", a.took);
    }
    let admitted = answers.iter().filter(|a| a.admitted()).count();
    match on_unavailable {
        // This host's own limiter, fresh: its burst, then refusals.
        "local" => assert!(
            (BURST.saturating_sub(spent)..BURST + 3).contains(&admitted) && answers.last().is_some_and(Answer::limited),
            "{what}: the host's own limit applies: {answers:?}"
        ),
        _ => assert!(
            answers.iter().all(Answer::limited),
            "{what}: every request refused: {answers:?}"
        ),
    }
    assert!(
        metric(&p, "egress_guard_shared_limit_errors_total") >= 1.0,
        "{what}: errors counted"
    );
    assert_eq!(metric(&p, "egress_guard_shared_limits_up"), 0.0, "{what}");

    let redis = redis.recover();
    p.wait_count(back_before + 1, is_back, &what);
    // Back: the fleet store decides again. Its key, removed now, comes back.
    assert!(redis.try_cmd(&format!("DEL {key}")).is_some());
    let start = Instant::now();
    while redis.pttl(&key) <= 0 {
        let a = ask(&p);
        assert!(a.took < BOUND, "{what}: after recovery an answer took {:?}", a.took);
        assert!(start.elapsed() < DEADLINE, "{what}: fleet limiting did not resume");
    }
    assert_eq!(
        p.count_lines(is_lost),
        lost_before + 1,
        "{what}: one WARN per outage, not one per request"
    );
    assert_eq!(p.count_lines(is_back), back_before + 1, "{what}: one INFO when back");
    assert_eq!(metric(&p, "egress_guard_shared_limits_up"), 1.0, "{what}");
}

/// Redis as the fault left it, until `recover`.
enum Later {
    Dead(u16),
    Frozen(Redis),
}

impl Later {
    fn recover(self) -> Redis {
        match self {
            Later::Dead(port) => Redis::start_on(port),
            Later::Frozen(r) => {
                r.signal("-CONT");
                r
            }
        }
    }
}

#[test]
fn redis_killed_with_on_unavailable_local() {
    outage(Fault::Kill, "local");
}

#[test]
fn redis_killed_with_on_unavailable_refuse() {
    outage(Fault::Kill, "refuse");
}

#[test]
fn redis_frozen_with_on_unavailable_local() {
    outage(Fault::Stop, "local");
}

#[test]
fn redis_frozen_with_on_unavailable_refuse() {
    outage(Fault::Stop, "refuse");
}

#[test]
fn redis_down_at_start_the_proxy_serves_and_connects_when_it_comes() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let pre = prefix("late");
    let url = format!("redis://127.0.0.1:{port}/0");
    let yaml = PolicyBuilder::new()
        .listen_any()
        .server(
            "shared_limits",
            &format!("{{redis: \"{url}\", key_prefix: \"{pre}\", on_unavailable: refuse}}"),
        )
        .dest(
            Dest::new("shipper", "shipper.example")
                .connect_to(&format!("127.0.0.1:{}", free_port()))
                .set("rate_limit", "{per_second: 1, burst: 5, scope: fleet}"),
        )
        .yaml();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, yaml).unwrap();
    let p = Daemon::spawn(&path);
    p.wait_line(|l| l.contains("\"level\":\"WARN\"") && l.contains("fleet store unavailable"));
    let a = ask(&p);
    assert!(
        a.limited() && a.took < BOUND,
        "refused at once while Redis is down: {a:?}"
    );
    let redis = Redis::start_on(port);
    p.wait_line(is_back);
    // Admitted once the fleet store answers (a check that timed out on a busy machine is refused: ask again).
    let start = Instant::now();
    while !(ask(&p).admitted() && redis.pttl(&format!("{pre}shipper")) > 0) {
        assert!(start.elapsed() < DEADLINE, "never admitted by the fleet store");
    }
}

#[test]
fn a_password_from_a_secret_file_never_reaches_logs_or_metrics() {
    const PASSWORD: &str = "pw-5ecret-7e5t";
    let port = free_port();
    let redis = Redis::start_with(port, &["--requirepass", PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("redis-url");
    std::fs::write(&url_file, format!("redis://:{PASSWORD}@127.0.0.1:{port}/0\n")).unwrap();
    let source = format!("file:{}", url_file.display());
    let p = proxy(dir.path(), "p", &source, &prefix("pw"), "local", 50);
    assert!(ask(&p).admitted());
    drop(redis);
    let a = ask(&p);
    assert!(a.admitted() && a.took < BOUND, "{a:?}");
    p.wait_line(is_lost);
    let (metrics, _) = http_get(&p.admin().to_string(), "/metrics", "localhost");
    for (what, text) in [("log", p.lines().join("\n")), ("metrics", metrics)] {
        assert!(!text.contains(PASSWORD), "the password is in the {what}:\n{text}");
        assert!(!text.contains("redis://"), "the URL is in the {what}:\n{text}");
    }
}

#[test]
fn a_unix_socket_url_works() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("redis.sock");
    let sock_arg = sock.display().to_string();
    // Port 0: no TCP listener at all; the socket is the only way in.
    let redis_dir = tempfile::tempdir().unwrap();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--unixsocket",
            &sock_arg,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(redis_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let redis = Redis {
        child,
        port: 0,
        _dir: redis_dir,
    };
    let start = Instant::now();
    while !sock.exists() {
        assert!(start.elapsed() < DEADLINE, "redis-server did not make its socket");
        std::thread::yield_now();
    }
    let url = format!("unix://{sock_arg}");
    let a = proxy(dir.path(), "a", &url, &prefix("unix"), "refuse", 1000);
    let b = proxy(dir.path(), "b", &url, &prefix("unix"), "refuse", 1000);
    let admitted = (0..2 * BURST)
        .filter(|i| ask(if i % 2 == 0 { &a } else { &b }).admitted())
        .count();
    drop(redis);
    assert!(
        (BURST..BURST + 3).contains(&admitted),
        "shared over the socket: {admitted} admitted"
    );
}
