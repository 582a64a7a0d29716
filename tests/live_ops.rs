//! Live operations against the real binary: reload by rename, in place and
//! on SIGHUP; invalid policies refused while the old one serves; sd_notify
//! messages; socket activation through systemd-socket-activate; graceful
//! shutdown with a tunnel in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_egress-guard");
const DEADLINE: Duration = Duration::from_secs(15);

/// A running proxy process and everything it logged.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    addr: String,
}

impl Proc {
    fn start(policy: &Path, envs: &[(&str, &str)]) -> Proc {
        Self::start_cmd(
            Command::new(BIN).args(["run", "--policy", policy.to_str().unwrap()]),
            envs,
        )
    }

    fn start_cmd(cmd: &mut Command, envs: &[(&str, &str)]) -> Proc {
        let mut child = cmd
            .envs(envs.iter().copied())
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
        let line = p.wait_line(|l| l.contains("proxy listening"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        p.addr = v["listen"].as_str().unwrap_or_default().to_owned();
        p.wait_line(|l| l.contains("\"message\":\"ready\""));
        p
    }

    fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no such log line; got:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::yield_now();
        }
    }

    fn count_lines(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| pred(l)).count()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < DEADLINE, "the proxy did not exit");
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

/// Sends one request through the proxy; returns the reason header ("-" for none) and status.
fn reason_for(addr: &str, url_host: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET http://{url_host}/ HTTP/1.1\r\nHost: {url_host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
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

fn wait_reason(addr: &str, host: &str, want: &str) {
    let start = Instant::now();
    loop {
        let (_, got) = reason_for(addr, host);
        if got == want {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{host}: still {got}, want {want}");
        std::thread::yield_now();
    }
}

/// A destination whose upstream port is closed: allowed, so it answers 502.
fn dest(name: &str, closed: u16) -> String {
    format!("  {name}:\n    host: {name}.example\n    connect_to: 127.0.0.1:{closed}\n")
}

fn policy_text(dests: &[&str], closed: u16) -> String {
    let mut t = String::from("version: 1\nserver:\n  listen: 127.0.0.1:0\ndestinations:\n");
    for d in dests {
        t.push_str(&dest(d, closed));
    }
    t
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn reload_by_rename_and_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let port = closed_port();
    std::fs::write(&path, policy_text(&["alpha"], port)).unwrap();
    let p = Proc::start(&path, &[]);
    assert_eq!(reason_for(&p.addr, "beta.example").1, "destination_not_allowed");
    assert_eq!(reason_for(&p.addr, "alpha.example").1, "upstream_unavailable");

    write_by_rename(&path, &policy_text(&["alpha", "beta"], port));
    wait_reason(&p.addr, "beta.example", "upstream_unavailable");

    std::fs::write(&path, policy_text(&["beta"], port)).unwrap();
    wait_reason(&p.addr, "alpha.example", "destination_not_allowed");
    assert_eq!(reason_for(&p.addr, "beta.example").1, "upstream_unavailable");
    let audit = p.wait_line(|l| l.contains("\"message\":\"request\"") && l.contains("\"policy_generation\":3"));
    assert!(audit.contains("policy_hash"), "{audit}");
    // Every line, not only audit lines, names the policy in force.
    for line in p.lines.lock().unwrap().iter() {
        assert!(
            line.contains("\"policy_generation\":") && line.contains("\"policy_hash\":\""),
            "{line}"
        );
    }
}

#[test]
fn an_invalid_policy_is_refused_and_the_old_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let port = closed_port();
    let good = policy_text(&["alpha"], port);
    std::fs::write(&path, &good).unwrap();
    let p = Proc::start(&path, &[]);
    let bad: [(&str, String); 3] = [
        ("invalid yaml", "version: 1\ndestinations: [oops\n".to_owned()),
        ("unknown key", good.replace("    host:", "    hots: x\n    host:")),
        (
            "missing secret",
            format!(
                "{good}    credential:\n      secret: file:{}\n",
                dir.path().join("nokey").display()
            ),
        ),
    ];
    for (i, (name, text)) in bad.iter().enumerate() {
        write_by_rename(&path, text);
        let start = Instant::now();
        while p.count_lines(|l| l.contains("reload refused")) <= i {
            assert!(
                start.elapsed() < DEADLINE,
                "{name}: no refusal logged:\n{}",
                p.lines.lock().unwrap().join("\n")
            );
            std::thread::yield_now();
        }
        assert_eq!(reason_for(&p.addr, "alpha.example").1, "upstream_unavailable", "{name}");
    }
    let refused = p.wait_line(|l| l.contains("reload refused") && l.contains("nokey"));
    assert!(refused.contains("\"line\":"), "{refused}");
}

#[test]
fn sd_notify_ready_reload_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy_text(&["alpha"], closed_port())).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut p = Proc::start(&path, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    assert!(recv().starts_with("READY=1"));
    p.signal("-HUP");
    let reloading = recv();
    assert!(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{reloading}");
    assert!(recv().starts_with("READY=1"));
    p.wait_line(|l| l.contains("policy reloaded") && l.contains("\"policy_generation\":2"));
    p.signal("-TERM");
    assert_eq!(recv(), "STOPPING=1");
    assert!(p.wait_exit().success());
}

#[test]
fn socket_activation_serves_tcp_and_unix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy_text(&["alpha"], closed_port())).unwrap();
    let port = closed_port();
    let unix = dir.path().join("proxy.sock");
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.args(["-l", &format!("127.0.0.1:{port}"), "-l", unix.to_str().unwrap()])
        .args([BIN, "run", "--policy", path.to_str().unwrap()]);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // systemd-socket-activate says where it listens, then starts the proxy on the first connection.
    for _ in 0..2 {
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.starts_with("Listening on"), "{line}");
    }
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(reason_for(&addr, "evil.example").1, "destination_not_allowed");
    let mut s = std::os::unix::net::UnixStream::connect(&unix).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: alpha.example\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.contains("x-egress-guard-reason: upstream_unavailable"), "{resp}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigterm_lets_a_tunnel_finish_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = echo.accept().unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let path = dir.path().join("policy.yaml");
    let text = format!(
        "version: 1\nserver:\n  listen: 127.0.0.1:0\ndestinations:\n  updates:\n    host: updates.example\n    tunnel: true\n    connect_to: 127.0.0.1:{echo_port}\n"
    );
    std::fs::write(&path, text).unwrap();
    let mut p = Proc::start(&path, &[]);
    let mut t = TcpStream::connect(&p.addr).unwrap();
    t.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        t,
        "CONNECT updates.example:443 HTTP/1.1\r\nHost: updates.example:443\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 256];
    let n = t.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    p.signal("-TERM");
    p.wait_line(|l| l.contains("shutting down"));
    assert!(TcpStream::connect(&p.addr).is_err(), "new connections must be refused");
    t.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    t.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    drop(t);
    assert!(p.wait_exit().success());
}
