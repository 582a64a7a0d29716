#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! A decompression bomb against the real binary (issue 8, class 7; invariant
//! 9): an HTTP/1.1 upstream serves 256 MiB of zeros as about 256 KiB of gzip
//! in one piece, two clients read it all through the proxy at once, and the
//! proxy's peak resident memory (VmHWM) stays far below what one decoded
//! frame used to take.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{describe, path_str, secret_file, Recorded, Reply, TestCa, Upstream, DEADLINE};

const BIN: &str = env!("CARGO_BIN_EXE_egress-guard");
const HOST: &str = "api.shipper.test";
const MIB: usize = 1 << 20;
const ZEROS: usize = 256 * MIB;
/// Peak resident memory allowed for the whole proxy process.
const LIMIT_KIB: u64 = 64 * 1024;

/// gzip of `ZEROS` zero bytes, built without compressing them all: one
/// byte-aligned run of deflate blocks for 1 MiB of zeros (which refers only
/// to zeros), repeated, then an empty final block; CRCs combined.
fn bomb() -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut run = Vec::with_capacity(64 * 1024);
    c.compress_vec(&vec![0u8; MIB], &mut run, flate2::FlushCompress::Sync)
        .unwrap();
    assert_eq!(c.total_in() as usize, MIB, "one call took the whole MiB");
    let mut crc_mib = flate2::Crc::new();
    crc_mib.update(&vec![0u8; MIB]);
    let mut crc = flate2::Crc::new();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..ZEROS / MIB {
        out.extend_from_slice(&run);
        crc.combine(&crc_mib);
    }
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(ZEROS as u32).to_le_bytes());
    out
}

/// The proxy's peak resident set, from /proc.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The real binary on `policy`; its stderr lines collected.
struct Proc {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn start(policy: &std::path::Path) -> (Proc, String) {
        let mut child = Command::new(BIN)
            .args(["run", "--policy", &path_str(policy)])
            .env("EGRESS_GUARD_LOG", "info")
            .env_remove("RUST_LOG")
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
        let p = Proc { child, lines };
        let listening = p.wait_line(|l| l.contains("\"message\":\"proxy listening\""));
        p.wait_line(|l| l.contains("\"message\":\"ready\""));
        let v: serde_json::Value = serde_json::from_str(&listening).unwrap();
        let addr = v["listen"].as_str().unwrap().to_owned();
        (p, addr)
    }

    fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no such log line:\n{}",
                self.lines.lock().unwrap().join("\n")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_decoded_in_bounded_memory() {
    let gz = Arc::new(bomb());
    assert!(gz.len() < 2 * MIB, "the bomb is small on the wire: {}", gz.len());
    let ca = TestCa::new();
    let body = gz.clone();
    let handler: common::Handler = Arc::new(move |_: &Recorded| {
        Reply::chunks(200, "application/octet-stream", vec![body.to_vec()]).header("content-encoding", "gzip")
    });
    // HTTP/1.1 so the proxy reads the compressed body in large frames.
    let up = Upstream::start_with(ca.server_config(&[HOST], false), handler).await;
    let key = secret_file("sk_live_bomb_0123456789abcdef");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nserver:\n  listen: 127.0.0.1:0\n  admin: 127.0.0.1:0\n\
             defaults:\n  request_timeout_ms: 60000\ndestinations:\n  shipper:\n    host: {HOST}\n\
             \x20   connect_to: {}\n    ca_file: {}\n    credential:\n      secret: file:{}\n",
            up.connect_to(),
            ca.pem_path(),
            path_str(key.path())
        ),
    )
    .unwrap();
    let (proc, addr) = tokio::task::spawn_blocking(move || Proc::start(&policy)).await.unwrap();
    let before = vm_hwm_kib(proc.child.id());

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let addr = addr.clone();
            tokio::task::spawn_blocking(move || {
                Command::new("curl")
                    .args(["-sS", "--max-time", "300", "-x", &addr, "-o", "/dev/null"])
                    .args(["-w", "%{http_code} %{size_download}", &format!("http://{HOST}/bomb")])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for r in readers {
        let out = r.await.unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("200 {ZEROS}"),
            "every decoded byte arrived: {}",
            describe(&out)
        );
    }
    let peak = vm_hwm_kib(proc.child.id());
    println!("proxy peak RSS {peak} KiB (at start {before} KiB)");
    assert!(
        peak < LIMIT_KIB,
        "the proxy's peak RSS was {peak} KiB (at start {before} KiB), limit {LIMIT_KIB} KiB"
    );
    let audit = proc.wait_line(|l| l.contains("\"bytes_out\":268435456"));
    assert!(audit.contains("\"complete\":true"), "{audit}");
}
