//! The standard shipper fixture of the proxy_* tests: one CA, a recording
//! upstream for `api.shipper.test` (and the other test names), a `file:`
//! secret, and the in-process proxy on the standard policy with overrides.

use std::path::Path;

use serde_json::{json, Value};

use super::{assert_refusal, secret_file, Dest, PolicyBuilder, Proxy, RawResponse, Recorded, Route, TestCa, Upstream};

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
    /// Extra destinations after `shipper`.
    pub extra: Vec<Dest>,
    /// `server:` entries.
    pub server: Vec<(&'static str, String)>,
    /// Whole-destination `mode:` for `shipper`.
    pub shipper_mode: Option<&'static str>,
}

impl Opts {
    /// Only extra destinations after `shipper`, everything else as by default.
    pub fn extra(extra: Vec<Dest>) -> Opts {
        Opts {
            extra,
            ..Opts::default()
        }
    }
}

/// The standard test policy: `shipper` with its five routes, test defaults, then `opts`.
pub fn policy_yaml(up: &Upstream, ca: &TestCa, secret: &Path, opts: &Opts) -> String {
    let mut p = PolicyBuilder::new()
        .defaults("request_timeout_ms", 5000)
        .defaults("connect_timeout_ms", 2000)
        .defaults("max_body_bytes", 1048576);
    for (k, v) in &opts.defaults {
        p = p.defaults(k, v);
    }
    for (k, v) in &opts.server {
        p = p.server(k, v);
    }
    let mut shipper = Dest::new("shipper", HOST).upstream(up, ca);
    if let Some(m) = opts.shipper_mode {
        shipper = shipper.mode(m);
    }
    let shipments = [
        "order_id",
        "shipping.postcode",
        "shipping.country",
        "line_items[].sku",
        "line_items[].quantity",
    ];
    let customers = [
        "email",
        "billing.email",
        "billing.phone",
        "meta_data[].value",
        "line_items[].price",
    ];
    shipper = shipper
        .credential("X-API-KEY", secret)
        .route(
            Route::post("/v1/shipments")
                .allow(&shipments)
                .body("on_violation", "strip")
                .scan(&["card_number"]),
        )
        .route(
            Route::post("/v1/strict")
                .allow(&["order_id", "status"])
                .body("on_violation", "reject"),
        )
        .route(Route::new(&["POST", "PUT"], "/v1/customers").deny(&customers))
        .route(Route::get("/v1/shipments/*"))
        .route(Route::post("/v1/raw"));
    p = p.dest(shipper);
    for d in &opts.extra {
        p = p.dest(d.clone());
    }
    p.yaml()
}

impl Fixture {
    pub async fn new(opts: Opts) -> Fixture {
        let ca = TestCa::new();
        let up = Upstream::start(&ca, &[HOST, "api.other.test", "api.report.test", "api.open.test"]).await;
        Fixture::with_upstream(ca, up, opts).await
    }

    pub async fn with_upstream(ca: TestCa, up: Upstream, opts: Opts) -> Fixture {
        let secret = secret_file(KEY);
        let yaml = policy_yaml(&up, &ca, secret.path(), &opts);
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
