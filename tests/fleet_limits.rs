//! Fleet-wide limits on a real `redis-server` (started here on a free port,
//! no persistence, killed at the end): two proxy processes sharing it admit
//! together what one would; Redis killed or frozen (SIGSTOP) mid-run, every
//! answer still comes within a bound and `on_unavailable` decides; fleet
//! limiting resumes when Redis is back. Admitted requests go to a closed port
//! (502 `upstream_unavailable`), refused ones get 429 `rate_limited`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::closed_port_sync as free_port;
use common::{Daemon, Dest, Exposition, PolicyBuilder, DEADLINE};

/// No answer may take longer than this while Redis is dead or frozen: the
/// proxy waits 50 ms for Redis; the rest is room for a loaded test machine.
const BOUND: Duration = Duration::from_secs(1);

/// A `redis-server` of our own; SIGCONT then SIGKILL when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        Redis::start_on(free_port())
    }

    fn start_on(port: u16) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (Debian: apt-get install redis-server)");
        let r = Redis { child, port, _dir: dir };
        let start = Instant::now();
        while r.try_cmd("PING").as_deref() != Some("+PONG") {
            assert!(start.elapsed() < DEADLINE, "redis-server did not answer PING");
            std::thread::yield_now();
        }
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// One inline command; the first line of the answer.
    fn try_cmd(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(DEADLINE)).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }

    /// `PTTL key` in milliseconds (-2: no such key).
    fn pttl(&self, key: &str) -> i64 {
        let got = self.try_cmd(&format!("PTTL {key}")).unwrap();
        got.trim_start_matches(':').parse().unwrap()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} redis-server");
    }

    fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // Only a child not yet reaped: its pid is still ours to signal.
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-CONT", &self.child.id().to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One answer through a proxy, and how long it took.
#[derive(Debug)]
struct Answer {
    status: u16,
    reason: String,
    retry_after: Option<u64>,
    took: Duration,
}

impl Answer {
    fn admitted(&self) -> bool {
        self.status == 502 && self.reason == "upstream_unavailable"
    }

    fn limited(&self) -> bool {
        self.status == 429 && self.reason == "rate_limited" && self.retry_after.is_some_and(|s| s >= 1)
    }
}

fn http_get(addr: &str, target: &str, host: &str) -> (String, Duration) {
    http(addr, "GET", target, host, "")
}

fn http(addr: &str, method: &str, target: &str, host: &str, body: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let len = body.len();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    (resp, started.elapsed())
}

fn ask(proxy: &Daemon) -> Answer {
    post(proxy, "")
}

/// A POST with `body` (empty: a request with no body).
fn post(proxy: &Daemon, body: &str) -> Answer {
    let method = if body.is_empty() { "GET" } else { "POST" };
    let (resp, took) = http(
        &proxy.addr,
        method,
        "http://shipper.example/v1/rates",
        "shipper.example",
        body,
    );
    let header = |name: &str| {
        resp.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    Answer {
        status: resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0),
        reason: header("x-egress-guard-reason:").unwrap_or_else(|| "-".into()),
        retry_after: header("retry-after:").and_then(|v| v.parse().ok()),
        took,
    }
}

fn metric(proxy: &Daemon, name: &str) -> f64 {
    let (resp, _) = http_get(&proxy.admin().to_string(), "/metrics", "localhost");
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Exposition::parse(body).get(name).unwrap_or(-1.0)
}

/// A proxy whose `shipper` has `per_second: 1, burst: BURST, scope: fleet` on `redis`.
fn proxy(dir: &Path, name: &str, redis_url: &str, prefix: &str, on_unavailable: &str, timeout_ms: u64) -> Daemon {
    let limit = format!("{{per_second: 1, burst: {BURST}, scope: fleet}}");
    proxy_with(dir, name, redis_url, prefix, on_unavailable, timeout_ms, &limit)
}

fn proxy_with(
    dir: &Path,
    name: &str,
    redis_url: &str,
    prefix: &str,
    on_unavailable: &str,
    timeout_ms: u64,
    limit: &str,
) -> Daemon {
    let shared =
        format!("{{redis: \"{redis_url}\", key_prefix: \"{prefix}\", on_unavailable: {on_unavailable}, timeout_ms: {timeout_ms}}}");
    let yaml = PolicyBuilder::new()
        .listen_any()
        .server("shared_limits", &shared)
        .dest(
            Dest::new("shipper", "shipper.example")
                .connect_to(&format!("127.0.0.1:{}", free_port()))
                .set("rate_limit", limit),
        )
        .yaml();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let p = Daemon::spawn(&path);
    p.wait_line(|l| l.contains("fleet store connected"));
    p
}

const BURST: usize = 5;

fn is_lost(l: &str) -> bool {
    l.contains("\"level\":\"WARN\"") && l.contains("fleet store lost")
}

fn is_back(l: &str) -> bool {
    l.contains("\"level\":\"INFO\"") && l.contains("fleet store back")
}

/// A unique key prefix, so tests sharing nothing still never share keys.
fn prefix(test: &str) -> String {
    format!("eg-test:{test}:{}:", std::process::id())
}

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
    let p = proxy(dir.path(), "p", &redis.url(), &pre, on_unavailable, 50);
    let key = format!("{pre}shipper");
    assert!(ask(&p).admitted(), "{what}: a first request passes");
    assert!(redis.pttl(&key) > 0, "{what}: the fleet store decided it");

    let redis = match fault {
        Fault::Kill => Later::Dead(redis.kill()),
        Fault::Stop => {
            redis.signal("-STOP");
            Later::Frozen(redis)
        }
    };
    let answers: Vec<Answer> = (0..2 * BURST).map(|_| ask(&p)).collect();
    for a in &answers {
        assert!(a.took < BOUND, "{what}: an answer took {:?}: {answers:?}", a.took);
    }
    let admitted = answers.iter().filter(|a| a.admitted()).count();
    match on_unavailable {
        // This host's own limiter, fresh: its burst, then refusals.
        "local" => assert!(
            (BURST..BURST + 3).contains(&admitted) && answers.last().is_some_and(Answer::limited),
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
    p.wait_line(is_back);
    let start = Instant::now();
    // Back: the fleet store decides again (its key reappears; a restarted Redis starts empty).
    while redis.pttl(&key) <= 0 {
        let a = ask(&p);
        assert!(a.took < BOUND, "{what}: after recovery an answer took {:?}", a.took);
        assert!(start.elapsed() < DEADLINE, "{what}: fleet limiting did not resume");
    }
    assert_eq!(
        p.count_lines(is_lost),
        1,
        "{what}: one WARN per outage, not one per request"
    );
    assert_eq!(p.count_lines(is_back), 1, "{what}: one INFO when back");
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
    assert!(ask(&p).admitted(), "admitted once the fleet store answers");
    assert!(redis.pttl(&format!("{pre}shipper")) > 0);
}
