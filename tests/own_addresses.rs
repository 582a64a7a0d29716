//! The proxy knows where it serves however its sockets came: bound from the
//! policy or handed over by systemd socket activation. Its dialers refuse a
//! DNS answer naming one of those addresses (unit-tested in upstream::dial,
//! since only a public address would show it); here, that the activated path
//! records them at all (it never did before).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::daemon::{closed_port_sync as closed_port, get_via};
use common::Spawn;

#[test]
fn socket_activation_records_the_activated_address_as_the_proxys_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, common::policy::closed_dests(&["alpha"], closed_port(), None)).unwrap();
    let listen = format!("127.0.0.1:{}", closed_port());
    let wrapper = ["systemd-socket-activate", "-l", &listen];
    let p = Spawn::wrapped(&wrapper, &path).no_wait().start();
    p.wait_count(1, |l| l.starts_with("Listening on"), "systemd-socket-activate");
    // systemd-socket-activate starts the proxy on the first connection.
    assert_eq!(get_via(&listen, "http://evil.example/").1, "destination_not_allowed");
    let line = p.wait_line(|l| l.contains("upstreams may not be the proxy itself"));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["own_addresses"], "127.0.0.1", "{line}");
    assert_eq!(v["every_local_address"], false, "{line}");
}
