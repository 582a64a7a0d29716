//! The standard shipper fixture of the proxy_* tests: one CA, a recording
//! upstream for `api.shipper.test` (and the other test names), a `file:`
//! secret, and the in-process proxy on the standard policy with overrides.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{assert_refusal, secret_file, Proxy, RawResponse, Recorded, TestCa, Upstream};

pub const HOST: &str = "api.shipper.test";
pub const KEY: &str = "sk_test_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
pub const SHIP: &str = "http://api.shipper.test/v1/shipments";

/// One CA, one recording upstream for `api.shipper.test` (and the other
/// test names), a secret file, and the proxy on a policy built by `policy`.
pub struct Fixture {
    pub ca: TestCa,
    pub up: Upstream,
    pub secret: tempfile::NamedTempFile,
    pub proxy: Proxy,
}

/// Overrides for the standard test policy.
#[derive(Default)]
pub struct Opts {
    /// `defaults:` entries replacing the test defaults.
    pub defaults: Vec<(&'static str, String)>,
    /// Extra destinations, YAML indented by four spaces under `destinations:`.
    pub extra: String,
    /// A `server:` section body (indented by two spaces).
    pub server: String,
    /// Whole-destination `mode:` for `shipper`.
    pub shipper_mode: Option<&'static str>,
}

pub fn policy_yaml(up: &Upstream, ca: &TestCa, secret: &str, opts: &Opts) -> String {
    let mut defaults: BTreeMap<&str, String> = BTreeMap::new();
    defaults.insert("request_timeout_ms", "5000".into());
    defaults.insert("connect_timeout_ms", "2000".into());
    defaults.insert("max_body_bytes", "1048576".into());
    for (k, v) in &opts.defaults {
        defaults.insert(k, v.clone());
    }
    let defaults: String = defaults.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect();
    let server = if opts.server.is_empty() {
        String::new()
    } else {
        format!("server:\n{}\n", opts.server)
    };
    let mode = opts
        .shipper_mode
        .map(|m| format!("    mode: {m}\n"))
        .unwrap_or_default();
    let up = up.connect_to();
    let ca = ca.pem_path();
    let extra = &opts.extra;
    format!(
        r#"version: 1
{server}defaults:
{defaults}destinations:
  shipper:
    host: {HOST}
    connect_to: {up}
    ca_file: {ca}
{mode}    credential:
      header: X-API-KEY
      secret: file:{secret}
    routes:
      - methods: [POST]
        path: /v1/shipments
        body:
          allow: [order_id, shipping.postcode, shipping.country, "line_items[].sku", "line_items[].quantity"]
          on_violation: strip
          scan: [card_number]
      - methods: [POST]
        path: /v1/strict
        body:
          allow: [order_id, status]
          on_violation: reject
      - methods: [POST, PUT]
        path: /v1/customers
        body:
          deny: [email, billing.email, billing.phone, "meta_data[].value", "line_items[].price"]
      - methods: [GET]
        path: /v1/shipments/*
      - methods: [POST]
        path: /v1/raw
{extra}"#
    )
}

impl Fixture {
    pub async fn new(opts: Opts) -> Fixture {
        let ca = TestCa::new();
        let up = Upstream::start(&ca, &[HOST, "api.other.test", "api.report.test", "api.open.test"]).await;
        Fixture::with_upstream(ca, up, opts).await
    }

    pub async fn with_upstream(ca: TestCa, up: Upstream, opts: Opts) -> Fixture {
        let secret = secret_file(KEY);
        let yaml = policy_yaml(&up, &ca, secret.path().to_str().unwrap(), &opts);
        let proxy = Proxy::start(&yaml).await;
        Fixture { ca, up, secret, proxy }
    }

    pub async fn send(&self, raw: &[u8]) -> RawResponse {
        self.proxy.send(raw).await
    }

    /// A refusal that must leave the upstream untouched.
    pub async fn refused(&self, raw: &[u8], status: u16, reason: &str, what: &str) {
        let before = self.up.count();
        let resp = self.send(raw).await;
        assert_refusal(&resp, status, reason, what);
        assert_eq!(
            self.up.count(),
            before,
            "{what}: the upstream recorded a refused request"
        );
        assert!(!resp.text().contains(KEY), "{what}: the secret is in a refusal");
    }
}

/// Waits until the upstream has `n` requests and returns the last one.
pub async fn last(up: &Upstream, n: usize) -> Recorded {
    up.wait_for(n).await.pop().unwrap()
}

pub fn woo_order() -> Value {
    json!({
        "order_id": 1042,
        "status": "processing",
        "currency": "EUR",
        "customer_note": "Bitte beim Nachbarn abgeben",
        "billing": {
            "first_name": "Erika", "last_name": "Mustermann", "company": "",
            "email": "erika.mustermann@example.org", "phone": "+49 30 1234567",
            "address_1": "Heidestrasse 17", "city": "Koeln", "postcode": "51147", "country": "DE"
        },
        "shipping": {
            "first_name": "Erika", "last_name": "Mustermann",
            "address_1": "Heidestrasse 17", "city": "Koeln", "postcode": "51147", "country": "DE"
        },
        "line_items": [
            {"id": 11, "sku": "MUG-RED", "name": "Tasse rot", "quantity": 2, "price": "9.90",
             "meta_data": [{"key": "engraving", "value": "Fuer Max"}]},
            {"id": 12, "sku": "TEE-M", "name": "T-Shirt M", "quantity": 1, "price": "19.00"}
        ],
        "meta_data": [
            {"id": 7, "key": "_customer_ip_address", "value": "203.0.113.9"},
            {"id": 8, "key": "_billing_vat_id", "value": "DE123456789"}
        ]
    })
}

pub fn assert_no_personal_data(body: &[u8], what: &str) {
    let text = String::from_utf8_lossy(body);
    for pii in [
        "erika.mustermann@example.org",
        "+49 30 1234567",
        "203.0.113.9",
        "DE123456789",
        "Heidestrasse",
        "Erika",
    ] {
        assert!(!text.contains(pii), "{what}: upstream received {pii:?}: {text}");
    }
}
