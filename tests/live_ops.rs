//! Live operations against the real binary: reload by rename, in place and
//! on SIGHUP; invalid policies refused while the old one serves; sd_notify
//! messages; socket activation through systemd-socket-activate; graceful
//! shutdown with a tunnel in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;

use common::daemon::{closed_port_sync as closed_port, get_via, write_by_rename};
use common::{Daemon, Dest, PolicyBuilder, Spawn, DEADLINE};

fn policy_text(dests: &[&str], closed: u16) -> String {
    common::policy::closed_dests(dests, closed, None)
}

/// Sends one GET through the proxy: the status and the reason header ("-" for none).
fn reason_for(addr: &str, url_host: &str) -> (u16, String) {
    get_via(addr, &format!("http://{url_host}/"))
}

#[test]
fn reload_by_rename_and_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let port = closed_port();
    std::fs::write(&path, policy_text(&["alpha"], port)).unwrap();
    let p = Daemon::spawn(&path);
    assert_eq!(reason_for(&p.addr, "beta.example").1, "destination_not_allowed");
    assert_eq!(reason_for(&p.addr, "alpha.example").1, "upstream_unavailable");

    write_by_rename(&path, &policy_text(&["alpha", "beta"], port));
    p.wait_reason("beta.example", "upstream_unavailable");

    std::fs::write(&path, policy_text(&["beta"], port)).unwrap();
    p.wait_reason("alpha.example", "destination_not_allowed");
    assert_eq!(reason_for(&p.addr, "beta.example").1, "upstream_unavailable");
    let audit = p.wait_line(|l| l.contains("\"message\":\"request\"") && l.contains("\"policy_generation\":3"));
    assert!(audit.contains("policy_hash"), "{audit}");
    // Every line, not only audit lines, names the policy in force.
    for line in &p.lines() {
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
    let p = Daemon::spawn(&path);
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
        p.wait_count(i + 1, |l| l.contains("reload refused"), name);
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
    let mut p = Spawn::new(&path)
        .env("NOTIFY_SOCKET", sock_path.to_str().unwrap())
        .start();
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
    let listen = format!("127.0.0.1:{port}");
    let wrapper = ["systemd-socket-activate", "-l", &listen, "-l", unix.to_str().unwrap()];
    let p = Spawn::wrapped(&wrapper, &path).no_wait().start();
    // systemd-socket-activate says where it listens, then starts the proxy on the first connection.
    p.wait_count(2, |l| l.starts_with("Listening on"), "systemd-socket-activate");
    for line in &p.lines()[..2] {
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
    PolicyBuilder::new()
        .server("listen", "127.0.0.1:0")
        .dest(
            Dest::new("updates", "updates.example")
                .tunnel()
                .connect_to(&format!("127.0.0.1:{echo_port}")),
        )
        .write(&path);
    let mut p = Daemon::spawn(&path);
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
