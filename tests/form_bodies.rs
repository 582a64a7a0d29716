#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! Form bodies (`application/x-www-form-urlencoded`) under a body policy, through the real
//! proxy to a recording TLS upstream: PHP's cURL with `http_build_query` bodies (the
//! Stripe-style example in examples/php included), raw sockets for bytes cURL would not
//! send. What the upstream received is the judge: kept pairs byte for byte, in order.

mod common;

use common::{
    absolute, assert_refusal, describe, php, secret_file, Dest, PolicyBuilder, Proxy, Route, TestCa, Upstream,
};
use serde_json::Value;

const HOST: &str = "api.pay.test";
const KEY: &str = "sk_test_forms_0123456789abcdef";

struct Fixture {
    _ca: TestCa,
    up: Upstream,
    _secret: tempfile::NamedTempFile,
    proxy: Proxy,
}

impl Fixture {
    async fn new() -> Fixture {
        let ca = TestCa::new();
        let up = Upstream::start(&ca, &[HOST]).await;
        let secret = secret_file(KEY);
        let credential = format!(
            "\n  header: Authorization\n  prefix: \"Bearer \"\n  secret: file:{}",
            secret.path().display()
        );
        let intents = [
            "amount",
            "currency",
            "customer",
            "description",
            "payment_method_types",
            "metadata.order_id",
        ];
        let dest = Dest::new("stripe", HOST)
            .upstream(&up, &ca)
            .set("credential", &credential)
            .route(
                Route::post("/v1/payment_intents")
                    .allow(&intents)
                    .body("on_violation", "strip")
                    .scan(&["card_number"]),
            )
            .route(
                Route::post("/v1/customers")
                    .deny(&["email", "phone", "address.*", "metadata.note", "items[].price"])
                    .scan(&["card_number"]),
            )
            .route(
                Route::post("/v1/strict")
                    .allow(&["amount"])
                    .body("on_violation", "reject"),
            )
            .route(Route::new(&["POST", "PUT"], "/v1/charges").allow(&["amount", "_method"]));
        let proxy = Proxy::start_policy(&PolicyBuilder::new().dest(dest)).await;
        Fixture {
            _ca: ca,
            up,
            _secret: secret,
            proxy,
        }
    }

    /// A form POST over a raw socket; the upstream's copy when it got one.
    async fn post(&self, path: &str, ct: &str, body: &[u8]) -> (common::RawResponse, Option<Vec<u8>>) {
        let before = self.up.count();
        let raw = absolute("POST", &format!("http://{HOST}{path}"), &[("Content-Type", ct)], body);
        let resp = self.proxy.send(&raw).await;
        let got = if resp.status == 200 {
            Some(self.up.wait_for(before + 1).await.pop().unwrap().body)
        } else {
            assert_eq!(self.up.count(), before, "a refused body reached the upstream");
            None
        };
        (resp, got)
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

/// The Stripe-style example, run as shipped, with PHP's cURL through CURLOPT_PROXY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_example_payment_intent() {
    let fx = Fixture::new().await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/php/stripe-payment-intent.php");
    let out = php(
        &script,
        &[
            ("EGRESS_GUARD_PROXY", &fx.proxy.url()),
            ("STRIPE_API_BASE", &format!("http://{HOST}")),
        ],
    )
    .await;
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let result: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("no JSON ({e}): {}", describe(&out)));
    assert_eq!(result["status"], 200, "{}", describe(&out));
    let got = fx.up.single();
    assert_eq!(got.target, "/v1/payment_intents");
    assert_eq!(got.header_values("authorization"), vec![format!("Bearer {KEY}")]);
    assert_eq!(
        got.header("content-type").as_deref(),
        Some(FORM),
        "PHP's cURL sends a string body as a form"
    );
    let sent = result["sent"].as_str().unwrap();
    // Kept pairs exactly as PHP wrote them, in PHP's order.
    let want: Vec<&str> = sent
        .split('&')
        .filter(|p| {
            !p.starts_with("receipt_email=")
                && !p.starts_with("metadata%5Bemail")
                && !p.starts_with("metadata%5Border_note")
        })
        .collect();
    assert_eq!(String::from_utf8_lossy(&got.body), want.join("&"));
    assert!(got
        .body
        .starts_with(b"amount=4990&currency=eur&customer=cus_Q8x1042&payment_method_types%5B0%5D=card"));
    let text = String::from_utf8_lossy(&got.body);
    for personal in ["erika", "example.org", "Fuer", "klingeln", "email"] {
        assert!(!text.contains(personal), "{personal:?} left the shop: {text}");
    }
}

/// Table: what the upstream receives for each body, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_pairs_byte_for_byte() {
    let fx = Fixture::new().await;
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &str)] = &[
        ("nothing removed keeps the body as sent", "/v1/customers", "name=Max&&city=Bonn&", "name=Max&&city=Bonn&"),
        ("deny top-level", "/v1/customers", "name=Max&email=a%40b.example&city=Bonn", "name=Max&city=Bonn"),
        ("deny folds case", "/v1/customers", "EMAIL=a&Phone=1&name=M", "name=M"),
        ("deny fullwidth", "/v1/customers", "%EF%BD%85mail=a&name=M", "name=M"),
        ("deny nested any", "/v1/customers", "address%5Bcity%5D=Bonn&address[line1]=x&name=M", "name=M"),
        ("deny in metadata", "/v1/customers", "metadata[note]=x&metadata[order_id]=7", "metadata[order_id]=7"),
        ("deny array element field", "/v1/customers", "items[0][sku]=A&items[0][price]=9&items[][price]=1", "items[0][sku]=A"),
        ("deny object spelling of array", "/v1/customers", "items[a][price]=9&name=M", "name=M"),
        ("allow keeps order and spelling", "/v1/payment_intents", "currency=eur&x=1&amount=+100&metadata%5border_id%5d=7", "currency=eur&amount=+100&metadata%5border_id%5d=7"),
        ("allow array", "/v1/payment_intents", "payment_method_types[]=card&payment_method_types[]=sepa", "payment_method_types[]=card&payment_method_types[]=sepa"),
        ("allow drops metadata siblings", "/v1/payment_intents", "metadata[order_id]=7&metadata[email]=e", "metadata[order_id]=7"),
        ("allow case-exact", "/v1/payment_intents", "Amount=1&amount=2", "amount=2"),
        ("charset utf-8", "/v1/customers", "name=J%C3%BCrgen&email=x", "name=J%C3%BCrgen"),
    ];
    for (label, path, body, want) in cases {
        let ct = if label.contains("charset") {
            "application/x-www-form-urlencoded; charset=UTF-8"
        } else {
            FORM
        };
        let (resp, got) = fx.post(path, ct, body.as_bytes()).await;
        assert_eq!(resp.status, 200, "{label}: {}", resp.text());
        let got = got.unwrap();
        assert_eq!(String::from_utf8_lossy(&got), *want, "{label}");
    }
}

/// (name, route, Content-Type, body, status, reason)
type Refusal<'a> = (&'a str, &'a str, &'a str, &'a [u8], u16, &'a str);

/// Table: the strict rules; nothing reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refusals() {
    let fx = Fixture::new().await;
    #[rustfmt::skip]
    let cases: &[Refusal] = &[
        ("bad percent", "/v1/customers", FORM, b"name=%G1", 400, "malformed_body"),
        ("truncated percent", "/v1/customers", FORM, b"name=%4", 400, "malformed_body"),
        ("latin-1 after decoding", "/v1/customers", FORM, b"name=J%FCrgen", 400, "malformed_body"),
        ("raw latin-1 byte", "/v1/customers", FORM, b"name=J\xfcrgen", 400, "malformed_body"),
        ("unbalanced open", "/v1/customers", FORM, b"email[x=a", 400, "malformed_body"),
        ("unbalanced close", "/v1/customers", FORM, b"email]=a", 400, "malformed_body"),
        ("encoded unbalanced", "/v1/customers", FORM, b"email%5Bx=a", 400, "malformed_body"),
        ("php reads dot as underscore", "/v1/customers", FORM, b"e.mail=a", 400, "malformed_body"),
        ("php reads space as underscore", "/v1/customers", FORM, b"e+mail=a", 400, "malformed_body"),
        ("php skips a leading space", "/v1/customers", FORM, b"%20email=a", 400, "malformed_body"),
        ("nul cuts the name in php", "/v1/customers", FORM, b"email%00x=a", 400, "malformed_body"),
        ("raw control in name", "/v1/customers", FORM, b"email\x01=a", 400, "malformed_body"),
        ("no base name", "/v1/customers", FORM, b"[email]=a", 400, "malformed_body"),
        ("tail after brackets", "/v1/customers", FORM, b"address[city]x=a", 400, "malformed_body"),
        ("same scalar twice", "/v1/customers", FORM, b"name=a&name=b", 400, "malformed_body"),
        ("same nested twice, spelled apart", "/v1/customers", FORM, b"a[b]=1&a%5Bb%5D=2", 400, "malformed_body"),
        ("scalar and container", "/v1/customers", FORM, b"address=x&address[city]=y", 400, "malformed_body"),
        ("deeper than qs reads", "/v1/customers", FORM, b"a[1][2][3][4][5][6]=x", 400, "malformed_body"),
        ("raw semicolon", "/v1/customers", FORM, b"name=a;email=b", 400, "malformed_body"),
        ("latin-1 charset", "/v1/customers", "application/x-www-form-urlencoded; charset=iso-8859-1", b"name=a", 415, "unsupported_media_type"),
        ("utf-7 charset", "/v1/customers", "application/x-www-form-urlencoded; charset=utf-7", b"name=a", 415, "unsupported_media_type"),
        ("multipart", "/v1/customers", "multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nM\r\n--x--\r\n", 415, "unsupported_media_type"),
        ("card in a value", "/v1/customers", FORM, b"note=4111+1111+1111+1111", 422, "sensitive_value"),
        ("card in free text", "/v1/customers", FORM, b"note=Karte%3A+4111-1111-1111-1111%2C+danke", 422, "sensitive_value"),
        ("card in a name", "/v1/customers", FORM, b"4111111111111111=x", 422, "sensitive_value"),
        ("reject outside the list", "/v1/strict", FORM, b"amount=1&email=x", 422, "field_not_allowed"),
        ("_method after filtering", "/v1/charges", FORM, b"amount=1&_method=DELETE", 403, "route_not_allowed"),
    ];
    for (label, path, ct, body, status, reason) in cases {
        let (resp, _) = fx.post(path, ct, body).await;
        assert_refusal(&resp, *status, reason, label);
    }
    // A card in a removed field is not sent, so not refused.
    let (resp, got) = fx.post("/v1/customers", FORM, b"email=4111111111111111&name=M").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(got.unwrap(), b"name=M");
}
