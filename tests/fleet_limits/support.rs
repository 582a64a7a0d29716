//! The fleet-limit tests' tools: a `redis-server` of their own, one request
//! through a proxy timed, the proxy on a fleet-scoped policy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::daemon::closed_port_sync as free_port;
use crate::common::{Daemon, Dest, Exposition, PolicyBuilder, DEADLINE};

/// No answer may take longer than this while Redis is dead or frozen: the
/// proxy waits at most `timeout_ms` (250 ms in the outage tests) for Redis;
/// the rest is room for a loaded test machine.
pub(crate) const BOUND: Duration = Duration::from_secs(1);

/// A `redis-server` of our own; SIGCONT then SIGKILL when dropped.
pub(crate) struct Redis {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) _dir: tempfile::TempDir,
}

impl Redis {
    pub(crate) fn start() -> Redis {
        Redis::start_on(free_port())
    }

    pub(crate) fn start_on(port: u16) -> Redis {
        Redis::start_with(port, &[])
    }

    /// On `port`, with more `redis-server` arguments.
    pub(crate) fn start_with(port: u16, extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (Debian: apt-get install redis-server)");
        let r = Redis { child, port, _dir: dir };
        let start = Instant::now();
        // Without a password PING answers +PONG; with one, NOAUTH: either way it serves.
        while !r
            .try_cmd("PING")
            .is_some_and(|l| l == "+PONG" || l.starts_with("-NOAUTH"))
        {
            assert!(start.elapsed() < DEADLINE, "redis-server did not answer PING");
            std::thread::yield_now();
        }
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// One inline command; the first line of the answer.
    pub(crate) fn try_cmd(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(DEADLINE)).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }

    /// `PTTL key` in milliseconds (-2: no such key).
    pub(crate) fn pttl(&self, key: &str) -> i64 {
        let got = self.try_cmd(&format!("PTTL {key}")).unwrap();
        got.trim_start_matches(':').parse().unwrap()
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} redis-server");
    }

    pub(crate) fn kill(mut self) -> u16 {
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
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) retry_after: Option<u64>,
    pub(crate) took: Duration,
}

impl Answer {
    pub(crate) fn admitted(&self) -> bool {
        self.status == 502 && self.reason == "upstream_unavailable"
    }

    pub(crate) fn limited(&self) -> bool {
        self.status == 429 && self.reason == "rate_limited" && self.retry_after.is_some_and(|s| s >= 1)
    }
}

pub(crate) fn http_get(addr: &str, target: &str, host: &str) -> (String, Duration) {
    http(addr, "GET", target, host, "")
}

pub(crate) fn http(addr: &str, method: &str, target: &str, host: &str, body: &str) -> (String, Duration) {
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

pub(crate) fn ask(proxy: &Daemon) -> Answer {
    post(proxy, "")
}

/// A POST with `body` (empty: a request with no body).
pub(crate) fn post(proxy: &Daemon, body: &str) -> Answer {
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

pub(crate) fn metric(proxy: &Daemon, name: &str) -> f64 {
    let (resp, _) = http_get(&proxy.admin().to_string(), "/metrics", "localhost");
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Exposition::parse(body).get(name).unwrap_or(-1.0)
}

/// A proxy whose `shipper` has `per_second: 1, burst: BURST, scope: fleet` on `redis`.
pub(crate) fn proxy(
    dir: &Path,
    name: &str,
    redis_url: &str,
    prefix: &str,
    on_unavailable: &str,
    timeout_ms: u64,
) -> Daemon {
    let limit = format!("{{per_second: 1, burst: {BURST}, scope: fleet}}");
    proxy_with(dir, name, redis_url, prefix, on_unavailable, timeout_ms, &limit)
}

pub(crate) fn proxy_with(
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

pub(crate) const BURST: usize = 5;

pub(crate) fn is_lost(l: &str) -> bool {
    l.contains("\"level\":\"WARN\"") && l.contains("fleet store lost")
}

pub(crate) fn is_back(l: &str) -> bool {
    l.contains("\"level\":\"INFO\"") && l.contains("fleet store back")
}

/// A unique key prefix, so tests sharing nothing still never share keys.
pub(crate) fn prefix(test: &str) -> String {
    format!("eg-test:{test}:{}:", std::process::id())
}
