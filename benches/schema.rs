//! The cost `schema:` adds to a request: reading the filtered body as JSON
//! and validating it, on the 2.4 KB WooCommerce order (filtered by the allow
//! list of `hot_path`) and on a 256 KiB batch of orders, next to the field
//! filter alone for scale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use egress_guard::json_filter::{self, FieldPath, FieldRules, ListMode};

const ORDER: &[u8] = include_bytes!("fixtures/order.json");

const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["order_id", "shipping"],
  "properties": {
    "order_id": {"type": "integer", "minimum": 1},
    "shipping": {
      "type": "object",
      "properties": {
        "first_name": {"type": "string", "maxLength": 100},
        "last_name": {"type": "string", "maxLength": 100},
        "address_1": {"type": "string", "maxLength": 200},
        "city": {"type": "string", "maxLength": 100},
        "postcode": {"type": "string", "pattern": "^[0-9A-Za-z -]{3,10}$"},
        "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
      }
    },
    "line_items": {
      "type": "array", "maxItems": 500,
      "items": {"type": "object", "properties": {"sku": {"type": "string", "maxLength": 64}, "quantity": {"type": "integer", "minimum": 1}}}
    }
  }
}"#;

const ALLOW: &[&str] = &[
    "order_id",
    "shipping.first_name",
    "shipping.last_name",
    "shipping.address_1",
    "shipping.city",
    "shipping.postcode",
    "shipping.country",
    "line_items[].sku",
    "line_items[].quantity",
];

fn validate(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("order.json");
    std::fs::write(&path, SCHEMA).unwrap();
    let schema = egress_guard::policy::schema::load(path).unwrap();
    let allow = FieldRules::new(
        ListMode::Allow,
        ALLOW.iter().map(|p| FieldPath::parse(p).unwrap()).collect(),
    );
    let mut filtered = Vec::new();
    json_filter::filter(ORDER, &allow, false, &mut filtered).unwrap();
    let one: serde_json::Value = serde_json::from_slice(&filtered).unwrap();
    schema.check(&one).unwrap();
    let batch_schema = {
        let p = dir.path().join("batch.json");
        std::fs::write(
            &p,
            format!(r#"{{"properties":{{"orders":{{"type":"array","items":{SCHEMA}}}}}}}"#),
        )
        .unwrap();
        egress_guard::policy::schema::load(p).unwrap()
    };
    let mut batch = b"{\"orders\":[".to_vec();
    while batch.len() + filtered.len() < 256 * 1024 {
        if batch.len() > 11 {
            batch.push(b',');
        }
        batch.extend_from_slice(&filtered);
    }
    batch.extend_from_slice(b"]}");

    let mut out = Vec::new();
    let mut g = c.benchmark_group("schema");
    g.throughput(Throughput::Bytes(ORDER.len() as u64));
    g.bench_function("filter_only_order_2k", |b| {
        b.iter(|| json_filter::filter(black_box(ORDER), &allow, false, &mut out).unwrap())
    });
    g.throughput(Throughput::Bytes(filtered.len() as u64));
    g.bench_function("parse_and_validate_filtered_order", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&filtered)).unwrap();
            schema.check(&v).unwrap()
        })
    });
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("parse_and_validate_batch_256k", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&batch)).unwrap();
            batch_schema.check(&v).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
