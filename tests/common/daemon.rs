//! The real binary as a child process: the one way tests start it (`run
//! --policy`, optionally under a wrapper such as systemd-socket-activate),
//! capture its stdout and stderr line by line, wait (bounded) for readiness
//! and for log lines, send it signals, and read its peak memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{path_str, DEADLINE};

pub const BIN: &str = env!("CARGO_BIN_EXE_egress-guard");

/// A stream of the child, kept line by line, with a flag set at end of stream.
#[derive(Default)]
pub struct Captured {
    pub lines: Mutex<Vec<String>>,
    done: AtomicBool,
}

impl Captured {
    fn start(mut stream: impl Read + Send + 'static) -> Arc<Captured> {
        let cap = Arc::new(Captured::default());
        let sink = cap.clone();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                all.extend_from_slice(&buf[..n]);
                while let Some(i) = all.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = all.drain(..=i).collect();
                    sink.push(String::from_utf8_lossy(&line).trim_end().to_owned());
                }
            }
            if !all.is_empty() {
                sink.push(String::from_utf8_lossy(&all).into_owned());
            }
            sink.done.store(true, Ordering::Release);
        });
        cap
    }

    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }

    pub fn find(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.lines.lock().unwrap().iter().find(|l| pred(l)).cloned()
    }

    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| pred(l)).count()
    }

    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// How to start the binary; `Daemon::spawn` is the common case.
pub struct Spawn {
    cmd: Command,
    ready: bool,
}

impl Spawn {
    /// `run --policy POLICY` with `EGRESS_GUARD_LOG=info` and no `RUST_LOG`.
    pub fn new(policy: &Path) -> Spawn {
        Spawn::wrapped(&[], policy)
    }

    /// The same command after `wrapper` (program and its arguments).
    pub fn wrapped(wrapper: &[&str], policy: &Path) -> Spawn {
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(["run", "--policy", &path_str(policy)])
            .env("EGRESS_GUARD_LOG", "info")
            .env_remove("RUST_LOG");
        Spawn { cmd, ready: true }
    }

    pub fn env(mut self, key: &str, value: &str) -> Spawn {
        self.cmd.env(key, value);
        self
    }

    /// `EGRESS_GUARD_LOG` level.
    pub fn log(self, level: &str) -> Spawn {
        self.env("EGRESS_GUARD_LOG", level)
    }

    /// Do not wait for "ready" (a wrapper starts the proxy later).
    pub fn no_wait(mut self) -> Spawn {
        self.ready = false;
        self
    }

    pub fn start(mut self) -> Daemon {
        let mut child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Captured::start(child.stdout.take().unwrap());
        let err = Captured::start(child.stderr.take().unwrap());
        let mut d = Daemon {
            child,
            out,
            err,
            addr: String::new(),
        };
        if self.ready {
            d.wait_ready();
        }
        d
    }
}

/// A running proxy process and everything it wrote. Killed when dropped.
pub struct Daemon {
    child: Child,
    /// stdout, line by line.
    pub out: Arc<Captured>,
    /// stderr (the log), line by line.
    pub err: Arc<Captured>,
    /// The proxy's TCP address, from its "proxy listening" line.
    pub addr: String,
}

impl Daemon {
    /// `run --policy POLICY`, waiting (bounded) until it logs "ready".
    pub fn spawn(policy: &Path) -> Daemon {
        Spawn::new(policy).start()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while self.err.find(|l| l.contains("\"message\":\"ready\"")).is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("the proxy exited ({s}) before it was ready:\n{}", self.err.text());
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the proxy did not get ready:\n{}",
                self.err.text()
            );
            std::thread::yield_now();
        }
        self.addr = self.field("\"message\":\"proxy listening\"", "listen");
    }

    /// The string `key` of the first log line containing `needle`.
    pub fn field(&self, needle: &str, key: &str) -> String {
        let line = self.wait_line(|l| l.contains(needle));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v[key].as_str().unwrap_or_default().to_owned()
    }

    /// The admin listener's address, from its "admin listening" line.
    pub fn admin(&self) -> std::net::SocketAddr {
        self.field("\"message\":\"admin listening\"", "admin").parse().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line so far.
    pub fn lines(&self) -> Vec<String> {
        self.err.lines.lock().unwrap().clone()
    }

    /// The first stderr line matching `pred`, waiting at most `DEADLINE`.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        self.wait_line_within(DEADLINE, pred)
    }

    /// The first stderr line matching `pred`, waiting at most `within`.
    pub fn wait_line_within(&self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.err.find(&pred) {
                return l;
            }
            assert!(
                start.elapsed() < within,
                "no such log line within {within:?}; got:\n{}",
                self.err.text()
            );
            std::thread::yield_now();
        }
    }

    /// Waits (bounded) until at least `n` stderr lines match `pred`.
    pub fn wait_count(&self, n: usize, pred: impl Fn(&str) -> bool, what: &str) {
        let start = Instant::now();
        while self.err.count(&pred) < n {
            assert!(
                start.elapsed() < DEADLINE,
                "{what}: fewer than {n} such log lines:\n{}",
                self.err.text()
            );
            std::thread::yield_now();
        }
    }

    pub fn count_lines(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.err.count(pred)
    }

    /// Sends `sig` as `kill` spells it ("-HUP", "-TERM").
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    pub fn hup(&self) {
        self.signal("-HUP");
    }

    pub fn term(&self) {
        self.signal("-TERM");
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < DEADLINE, "the proxy did not exit");
            std::thread::yield_now();
        }
    }

    /// Waits (bounded) until stdout and stderr reached end of stream; both, joined.
    pub fn drained_output(&self) -> String {
        let start = Instant::now();
        while !(self.out.done() && self.err.done()) {
            assert!(start.elapsed() < DEADLINE, "stdout/stderr did not reach end of stream");
            std::thread::yield_now();
        }
        format!("{}\n{}", self.out.text(), self.err.text())
    }

    /// The process's peak resident set in KiB (VmHWM, from /proc).
    pub fn vm_hwm_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// One GET through the proxy: the status and the reason header ("-" for none).
    pub fn get(&self, url: &str) -> (u16, String) {
        get_via(&self.addr, url)
    }

    /// Asks until `host` gets the refusal reason `want`, at most `DEADLINE`.
    pub fn wait_reason(&self, host: &str, want: &str) {
        self.wait_reason_within(host, want, DEADLINE);
    }

    /// Asks until `host` gets the refusal reason `want`, at most `within`.
    pub fn wait_reason_within(&self, host: &str, want: &str, within: Duration) {
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

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One blocking GET in absolute form to the proxy at `addr`: the status and
/// the reason header ("-" for none).
pub fn get_via(addr: &str, url: &str) -> (u16, String) {
    let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
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

/// Writes `text` to a temp file beside `path`, then renames it over `path`.
pub fn write_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port_sync() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the binary once (`check`, `explain`, a `run` that must fail) with
/// `stdin` fed and closed; its output, waiting at most `DEADLINE`.
pub fn run_once(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        input.write_all(data).unwrap();
    }
    drop(input);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.unwrap(),
        Err(_) => panic!("egress-guard {args:?} did not finish within {DEADLINE:?}"),
    }
}
