//! The proxy knows where it serves however its sockets came: bound from the
//! policy or handed over by systemd socket activation. Its dialers refuse a
//! DNS answer naming one of those addresses (unit-tested in upstream::dial);
//! here, that the activated path records them at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_egress-guard");
const DEADLINE: Duration = Duration::from_secs(15);
const MARK: &str = "upstreams may not be the proxy itself";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Reads lines until one holds `what`, within the deadline.
fn line_with(lines: &mpsc::Receiver<String>, what: &str) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(what) => return l,
            Ok(_) => {}
            Err(_) => panic!("no line with {what:?} within {DEADLINE:?}"),
        }
    }
}

#[test]
fn socket_activation_records_the_activated_address_as_the_proxys_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let closed = free_port();
    std::fs::write(
        &path,
        format!(
            "version: 1\nserver:\n  listen: 127.0.0.1:0\ndestinations:\n  alpha:\n    host: alpha.example\n    connect_to: 127.0.0.1:{closed}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new("systemd-socket-activate")
        .args(["-l", &addr])
        .args([BIN, "run", "--policy", path.to_str().unwrap()])
        .env("EGRESS_GUARD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    line_with(&rx, "Listening on");
    // systemd-socket-activate starts the proxy on the first connection.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.contains("destination_not_allowed"), "{resp}");
    let line = line_with(&rx, MARK);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["own_addresses"], "127.0.0.1", "{line}");
    assert_eq!(v["every_local_address"], false, "{line}");
    let _ = child.kill();
    let _ = child.wait();
}
