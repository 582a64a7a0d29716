//! What the audit file costs per request: on the request's path, building
//! the record's JSON (`serialise`); on the writer thread, sealing it into the
//! chain (`seal`: HMAC-SHA256 and the copy) and the whole writer (`writer`:
//! queue, seal, write, fsync once a second, amortised over 10 000 records).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use egress_guard::policy::audit_file::{AuditFileConfig, AuditKey};
use egress_guard::policy::secret::Secret;
use egress_guard::telemetry::audit_file::chain::{ChainKey, GENESIS};
use egress_guard::telemetry::audit_file::records::{self, Request};
use egress_guard::telemetry::audit_file::AuditFile;

/// A filtered shipment, as the e2e benchmark's requests leave it.
fn record() -> Vec<u8> {
    Request {
        record: "request",
        ts: records::now(),
        request_id: "3f2a9c1e0000a1b2",
        policy_generation: 3,
        policy_hash: "9b1e0c77d2aa",
        destination: "shipper",
        host: "-",
        method: "POST",
        path: "/v1/shipments",
        decision: "allow",
        reason: "-",
        would_refuse: "-",
        status: 201,
        removed_fields: "billing,customer_note,meta_data,line_items[].name,line_items[].price".into(),
        invalid_value: "-",
        removed_query: String::new(),
        client_credentials: 0,
        bytes_in: 2431,
        bytes_out: 87,
        upgraded: true,
        intercepted: false,
        complete: true,
        latency_ms: 1.734,
    }
    .encode()
}

const KEY: &[u8] = b"bench-audit-key-0123456789abcdef";

fn per_line(c: &mut Criterion) {
    let mut g = c.benchmark_group("audit_file");
    g.throughput(Throughput::Elements(1));
    g.bench_function("serialise", |b| b.iter(|| black_box(record())));
    let key = ChainKey::new(KEY);
    let rec = record();
    let mut out = Vec::with_capacity(1024);
    g.bench_function("seal", |b| {
        b.iter(|| {
            out.clear();
            black_box(key.seal(&GENESIS, black_box(&rec), &mut out))
        })
    });
    g.finish();
}

fn writer(c: &mut Criterion) {
    const N: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuditFileConfig {
        path: dir.path().join("audit.jsonl"),
        key: AuditKey(Secret::new(zeroize::Zeroizing::new(KEY.to_vec())).unwrap()),
        max_bytes: 1 << 40,
    };
    let rec = record();
    let mut g = c.benchmark_group("audit_file");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("writer_10k", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(&cfg.path);
            let file = AuditFile::start(&cfg, Default::default()).unwrap();
            for _ in 0..N {
                file.append(rec.clone());
            }
            file.close();
        })
    });
    g.finish();
}

criterion_group!(benches, per_line, writer);
criterion_main!(benches);
