//! Micro-benchmarks of the per-request work: route decision, path
//! normalisation, the JSON field filter on a 2.4 KB WooCommerce order (and the
//! form filter on the same order as a form), the card scan, and secret scrubbing of a streamed answer. Each reports throughput.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use egress_guard::json_filter::{self, FieldPath, FieldRules, ListMode};
use egress_guard::proxy::decide::{decide, Ask, Scheme};
use egress_guard::proxy::pathnorm;
use egress_guard::{policy, scrub};
use http::Method;

const ORDER: &[u8] = include_bytes!("fixtures/order.json");
/// The same order as PHP's `http_build_query` writes it (bracket notation, 3.2 KB).
const ORDER_FORM: &[u8] = include_bytes!("fixtures/order.form");

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

fn rules(mode: ListMode, paths: &[&str]) -> FieldRules {
    FieldRules::new(mode, paths.iter().map(|p| FieldPath::parse(p).unwrap()).collect())
}

/// `{"orders":[order, order, ...]}` of about `size` bytes.
fn batch(size: usize) -> Vec<u8> {
    let mut doc = b"{\"orders\":[".to_vec();
    while doc.len() + ORDER.len() < size {
        if doc.len() > 11 {
            doc.push(b',');
        }
        doc.extend_from_slice(ORDER);
    }
    doc.extend_from_slice(b"]}");
    doc
}

fn filter(c: &mut Criterion) {
    let allow = rules(ListMode::Allow, ALLOW);
    let deny = rules(
        ListMode::Deny,
        &["billing.email", "billing.phone", "customer_note", "customer_ip_address"],
    );
    let batch_allow: Vec<String> = ALLOW.iter().map(|p| format!("orders[].{p}")).collect();
    let batch_allow = rules(
        ListMode::Allow,
        &batch_allow.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let batch_deny = rules(
        ListMode::Deny,
        &[
            "orders[].billing.email",
            "orders[].billing.phone",
            "orders[].customer_note",
        ],
    );
    let mut out = Vec::new();
    let mut g = c.benchmark_group("json_filter");
    g.throughput(Throughput::Bytes(ORDER.len() as u64));
    g.bench_function("allow_order_2k", |b| {
        b.iter(|| json_filter::filter(black_box(ORDER), &allow, false, &mut out).unwrap())
    });
    g.bench_function("deny_order_2k", |b| {
        b.iter(|| json_filter::filter(black_box(ORDER), &deny, false, &mut out).unwrap())
    });
    g.bench_function("allow_order_2k_card_scan", |b| {
        b.iter(|| json_filter::filter(black_box(ORDER), &allow, true, &mut out).unwrap())
    });
    // Deny keeps nearly everything, so every value and key of the order is scanned.
    g.bench_function("deny_order_2k_card_scan", |b| {
        b.iter(|| json_filter::filter(black_box(ORDER), &deny, true, &mut out).unwrap())
    });
    for (name, size) in [("64k", 64 * 1024), ("1m", 1024 * 1024)] {
        let doc = batch(size);
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_function(format!("allow_{name}"), |b| {
            b.iter(|| json_filter::filter(black_box(&doc), &batch_allow, false, &mut out).unwrap())
        });
        g.bench_function(format!("deny_{name}"), |b| {
            b.iter(|| json_filter::filter(black_box(&doc), &batch_deny, false, &mut out).unwrap())
        });
    }
    g.finish();
}

/// The form filter on the same order and the same lists as `json_filter`.
fn form_filter(c: &mut Criterion) {
    let allow = rules(ListMode::Allow, ALLOW);
    let deny = rules(
        ListMode::Deny,
        &["billing.email", "billing.phone", "customer_note", "customer_ip_address"],
    );
    let mut out = Vec::new();
    let mut g = c.benchmark_group("form_filter");
    g.throughput(Throughput::Bytes(ORDER_FORM.len() as u64));
    g.bench_function("allow_order_3k", |b| {
        b.iter(|| json_filter::filter_form(black_box(ORDER_FORM), &allow, false, false, &mut out).unwrap())
    });
    g.bench_function("deny_order_3k", |b| {
        b.iter(|| json_filter::filter_form(black_box(ORDER_FORM), &deny, false, false, &mut out).unwrap())
    });
    g.bench_function("allow_order_3k_card_scan", |b| {
        b.iter(|| json_filter::filter_form(black_box(ORDER_FORM), &allow, true, false, &mut out).unwrap())
    });
    g.finish();
}

fn card_scan(c: &mut Criterion) {
    let values: [&[u8]; 4] = [
        b"4111 1111 1111 1111",
        b"4111-1111-1111-1112",
        b"FR40303265045",
        b"Lyon",
    ];
    let mut g = c.benchmark_group("card_scan");
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("four_values", |b| {
        b.iter(|| {
            values
                .iter()
                .filter(|v| json_filter::looks_like_card(black_box(v)))
                .count()
        })
    });
    let note: &[u8] = b"Bitte beim Nachbarn Nr. 12 abgeben, Tel. 0171 2345678, Rechnung 2026-11-26 an Firma.";
    g.throughput(Throughput::Bytes(note.len() as u64));
    g.bench_function("free_text_note", |b| {
        b.iter(|| json_filter::looks_like_card(black_box(note)))
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
    let secret = Bytes::from_static(b"sk_live_4f9a8b7c6d5e");
    // Derived once per policy, as the proxy does.
    let forms = std::sync::Arc::new(scrub::Forms::new([secret.as_ref()]));
    let chunk = Bytes::from(ORDER.repeat(6)); // ~16 KB, as hyper hands frames over
    let mut g = c.benchmark_group("scrub");
    g.throughput(Throughput::Bytes(chunk.len() as u64 * 4));
    g.bench_function("stream_4x16k", |b| {
        b.iter(|| {
            let mut s = scrub::Scrubber::new(forms.clone());
            for _ in 0..4 {
                black_box(s.push(chunk.clone()));
            }
            s.finish()
        })
    });
    g.finish();
}

criterion_group!(benches, filter, card_scan, routing, scrubbing, form_filter);
criterion_main!(benches);
