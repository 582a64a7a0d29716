#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! A decompression bomb against the real binary (issue 8, class 7; invariant
//! 9): an HTTP/1.1 upstream serves 256 MiB of zeros as about 256 KiB of gzip
//! in one piece, two clients read it all through the proxy at once, and the
//! proxy's peak resident memory (VmHWM) stays far below what one decoded
//! frame used to take.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{describe, secret_file, Daemon, Dest, PolicyBuilder, Recorded, Reply, TestCa, Upstream};

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
    PolicyBuilder::new()
        .listen_any()
        .defaults("request_timeout_ms", 60000)
        .dest(Dest::new("shipper", HOST).upstream(&up, &ca).secret(key.path()))
        .write(&policy);
    let proc = tokio::task::spawn_blocking(move || Daemon::spawn(&policy))
        .await
        .unwrap();
    let addr = proc.addr.clone();
    let before = proc.vm_hwm_kib();

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
    let peak = proc.vm_hwm_kib();
    println!("proxy peak RSS {peak} KiB (at start {before} KiB)");
    assert!(
        peak < LIMIT_KIB,
        "the proxy's peak RSS was {peak} KiB (at start {before} KiB), limit {LIMIT_KIB} KiB"
    );
    let audit = proc.wait_line(|l| l.contains("\"bytes_out\":268435456"));
    assert!(audit.contains("\"complete\":true"), "{audit}");
}
