//! Micro-benchmarks of the per-request work: route decision, path
//! normalisation, the JSON field filter on a 2.4 KB WooCommerce order, the
//! card scan, and secret scrubbing of a streamed answer. Each reports throughput.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use egress_guard::body::{self, FieldPath, FieldRules, Mode};
use egress_guard::decide::{decide, Ask, Scheme};
use egress_guard::{pathnorm, policy, scrub};
use http::Method;

const ORDER: &[u8] = include_bytes!("fixtures/order.json");

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

fn rules(mode: Mode, paths: &[&str]) -> FieldRules {
    FieldRules::new(mode, paths.iter().map(|p| FieldPath::parse(p).unwrap()).collect())
}

fn filter(c: &mut Criterion) {
    let mut g = c.benchmark_group("json_filter");
    g.throughput(Throughput::Bytes(ORDER.len() as u64));
    let allow = rules(Mode::Allow, ALLOW);
    let deny = rules(
        Mode::Deny,
        &["billing.email", "billing.phone", "customer_note", "customer_ip_address"],
    );
    let mut out = Vec::with_capacity(ORDER.len());
    g.bench_function("allow_order_2k", |b| {
        b.iter(|| body::filter(black_box(ORDER), &allow, false, &mut out).unwrap())
    });
    g.bench_function("deny_order_2k", |b| {
        b.iter(|| body::filter(black_box(ORDER), &deny, false, &mut out).unwrap())
    });
    g.bench_function("allow_order_2k_card_scan", |b| {
        b.iter(|| body::filter(black_box(ORDER), &allow, true, &mut out).unwrap())
    });
    g.finish();
}

fn routing(c: &mut Criterion) {
    std::env::set_var("SHIPPER_API_KEY", "bench-key");
    std::env::set_var("PAYMENTS_API_KEY", "bench-key-2");
    let p = policy::compile(policy::EMBEDDED_DEFAULT).unwrap();
    let mut g = c.benchmark_group("routing");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decide", |b| {
        b.iter(|| {
            let ask = Ask {
                method: &Method::POST,
                scheme: Scheme::Http,
                host: black_box("api.shipper.example"),
                port: None,
                path: "/v1/shipments",
            };
            decide(&p, &ask).route_matched()
        })
    });
    g.bench_function("normalise_path", |b| {
        b.iter(|| pathnorm::normalise(black_box("/v1/./shipments//%7Eorder/12/../48213")).unwrap())
    });
    g.finish();
}

fn scrubbing(c: &mut Criterion) {
    let secret = zeroize::Zeroizing::new(b"sk_live_4f9a8b7c6d5e".to_vec());
    let chunk = Bytes::from(ORDER.repeat(6)); // ~16 KB, as hyper hands frames over
    let mut g = c.benchmark_group("scrub");
    g.throughput(Throughput::Bytes(chunk.len() as u64 * 4));
    g.bench_function("stream_4x16k", |b| {
        b.iter(|| {
            let mut s = scrub::Scrubber::new(vec![secret.clone()]);
            for _ in 0..4 {
                black_box(s.push(chunk.clone()));
            }
            s.finish()
        })
    });
    g.finish();
}

criterion_group!(benches, filter, routing, scrubbing);
criterion_main!(benches);
