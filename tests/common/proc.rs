//! The real binary as a child process, for tests that watch its log lines
//! (reloads, audit lines): start it on a policy file, wait (bounded) for a
//! line, send it signals, ask it for a refusal reason over a raw socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_egress-guard");

/// A running proxy process and everything it logged.
pub struct Proc {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub addr: String,
}

impl Proc {
    /// Starts `run --policy POLICY` and waits until it is ready.
    pub fn start(policy: &Path) -> Proc {
        let mut child = Command::new(BIN)
            .args(["run", "--policy", policy.to_str().unwrap()])
            .env("EGRESS_GUARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut p = Proc {
            child,
            lines,
            addr: String::new(),
        };
        let line = p.wait_line(Duration::from_secs(15), |l| l.contains("proxy listening"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        p.addr = v["listen"].as_str().unwrap_or_default().to_owned();
        p.wait_line(Duration::from_secs(15), |l| l.contains("\"message\":\"ready\""));
        p
    }

    /// The first line matching `pred`, waiting at most `within` for it.
    pub fn wait_line(&self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                start.elapsed() < within,
                "no such log line within {within:?}; got:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::yield_now();
        }
    }

    pub fn count_lines(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| pred(l)).count()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// One GET through the proxy: the status and the reason header ("-" for none).
    pub fn get(&self, url: &str) -> (u16, String) {
        let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(s, "GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        let status = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let reason = resp
            .lines()
            .find_map(|l| l.strip_prefix("x-egress-guard-reason: "))
            .unwrap_or("-")
            .to_owned();
        (status, reason)
    }

    /// Asks until `host` gets the refusal reason `want`, at most `within`.
    pub fn wait_reason(&self, host: &str, want: &str, within: Duration) {
        let start = Instant::now();
        loop {
            let (_, got) = self.get(&format!("http://{host}/"));
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < within,
                "{host}: still {got} after {within:?}, want {want}"
            );
            std::thread::yield_now();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
