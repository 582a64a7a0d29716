//! A real Express upstream over HTTPS on 127.0.0.1 (tests/parsers/upstream.js), with a
//! certificate for `api.node.test` from a CA made here, and curl through the proxy to it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::Value;

pub const HOST: &str = "api.node.test";

pub struct Express {
    child: Child,
    pub port: u16,
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Express {
    pub fn start() -> Express {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "differential test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![HOST.to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        let mut child = Command::new("node")
            .arg("upstream.js")
            .current_dir(super::parsers_dir())
            .env("CERT", dir.path().join("cert.pem"))
            .env("KEY", dir.path().join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node must be installed");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(crate::common::DEADLINE)
            .expect("Express upstream did not start in time");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .expect("PORT line");
        Express {
            child,
            port,
            ca_file,
            _dir: dir,
        }
    }

    /// The lines of a policy's destination that point it at this upstream.
    /// `d` connecting to this server and trusting its CA.
    pub fn destination(&self, d: crate::common::Dest) -> crate::common::Dest {
        d.connect_to(&format!("127.0.0.1:{}", self.port))
            .set("ca_file", &self.ca_file.display().to_string())
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What came back from one POST through the proxy.
pub struct Answer {
    pub status: u16,
    pub reason: Option<String>,
    pub body: Value,
}

/// POSTs `body` with `ct` (none: curl sends no Content-Type) to `path` through the proxy.
pub async fn post(proxy: &str, path: &str, ct: Option<&str>, body: &[u8]) -> Answer {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    let data = format!("@{}", file.path().display());
    let header = format!("Content-Type: {}", ct.unwrap_or(""));
    let url = format!("http://{HOST}{path}");
    let out = crate::common::curl(&["-i", "-x", proxy, "-H", &header, "--data-binary", &data, &url]).await;
    assert!(out.status.success(), "curl failed: {}", crate::common::describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let reason = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("x-egress-guard-reason:")
            .map(|r| r.trim().to_owned())
    });
    Answer {
        status,
        reason,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}
