#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! Field filtering (deny mode, escaped keys, huge numbers), report mode,
//! and credential binding: exactly one injected key, only after a matched
//! route and only to its destination.
mod common;

use common::shipper::*;
use common::*;
use serde_json::json;

// ---------------------------------------------------------------------------
// Invariant 4: field filtering
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_mode_removes_listed_fields_and_keeps_the_rest() {
    let fx = Fixture::new(Opts::default()).await;
    let order = woo_order();
    let resp = fx
        .send(&post_json("http://api.shipper.test/v1/customers", &order.to_string()))
        .await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let mut want = order.clone();
    want.as_object_mut().unwrap().remove("email");
    let billing = want["billing"].as_object_mut().unwrap();
    billing.remove("email");
    billing.remove("phone");
    for m in want["meta_data"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("value");
    }
    for li in want["line_items"].as_array_mut().unwrap() {
        li.as_object_mut().unwrap().remove("price");
    }
    let got = fx.up.single();
    assert_eq!(got.json(), want);
    let text = String::from_utf8_lossy(&got.body);
    for gone in [
        "erika.mustermann@example.org",
        "+49 30 1234567",
        "203.0.113.9",
        "DE123456789",
        "9.90",
    ] {
        assert!(!text.contains(gone), "deny mode let {gone:?} through");
    }
    assert_eq!(got.header_values("x-api-key"), vec![KEY.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_escaped_keys_are_filtered_like_plain_ones() {
    let fx = Fixture::new(Opts::default()).await;
    let cust = "http://api.shipper.test/v1/customers";
    let body = r#"{"\u0065mail":"erika.mustermann@example.org","name":"E","billing":{"ph\u006Fne":"+49 30 1234567","city":"Koeln"}}"#;
    let resp = fx.send(&post_json(cust, body)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    let v = got.json();
    assert!(v.get("email").is_none(), "escaped `email` passed: {v}");
    assert!(v["billing"].get("phone").is_none(), "escaped `phone` passed: {v}");
    assert_eq!(v["name"], "E");
    assert_eq!(v["billing"]["city"], "Koeln");
    assert_no_personal_data(&got.body, "escaped keys");
    // Allow mode: an escaped key outside the list is removed too.
    let resp = fx
        .send(&post_json(
            SHIP,
            r#"{"order_id":3,"\u0062illing":{"email":"erika.mustermann@example.org"}}"#,
        ))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(last(&fx.up, 2).await.json(), json!({"order_id": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_pass_verbatim() {
    let fx = Fixture::new(Opts::default()).await;
    let cust = "http://api.shipper.test/v1/customers";
    let body = r#"{"id":123456789012345678901234567890,"total":0.1000000000000000055511151231257827,"big":1e400,"neg":-0.0,"email":"erika.mustermann@example.org"}"#;
    let resp = fx.send(&post_json(cust, body)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    let text = String::from_utf8_lossy(&got.body);
    for lit in [
        "123456789012345678901234567890",
        "0.1000000000000000055511151231257827",
        "1e400",
        "-0.0",
    ] {
        assert!(text.contains(lit), "number {lit} not passed verbatim: {text}");
    }
    assert!(!text.contains("erika"), "the denied field was removed: {text}");
    // Allow mode keeps a huge number it allows, verbatim.
    let resp = fx
        .send(&post_json(
            SHIP,
            r#"{"order_id":98765432109876543210987654321,"customer_note":"x"}"#,
        ))
        .await;
    assert_eq!(resp.status, 200);
    let got = last(&fx.up, 2).await;
    assert_eq!(
        String::from_utf8_lossy(&got.body).replace(' ', ""),
        r#"{"order_id":98765432109876543210987654321}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_passes_the_body_unchanged() {
    let fx = Fixture::new(Opts {
        shipper_mode: Some("report"),
        ..Opts::default()
    })
    .await;
    let body = woo_order().to_string();
    let resp = fx.send(&post_json(SHIP, &body)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    assert_eq!(got.body, body.as_bytes(), "report mode sends the body byte for byte");
    assert_eq!(
        got.header_values("x-api-key"),
        vec![KEY.to_owned()],
        "the route matched: key injected"
    );
    // What enforce mode would refuse passes too.
    let resp = fx
        .send(&post_json(
            "http://api.shipper.test/v1/strict",
            r#"{"order_id":1,"email":"a@b.example"}"#,
        ))
        .await;
    assert_eq!(resp.status, 200, "report mode does not reject");
    assert_eq!(last(&fx.up, 2).await.body, br#"{"order_id":1,"email":"a@b.example"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_route_only() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &["api.report.test"]).await;
    let secret = secret_file("sk_report_1234567890abcdef");
    let proxy = Proxy::start_policy(
        &PolicyBuilder::new().dest(
            Dest::new("rep", "api.report.test")
                .upstream(&up, &ca)
                .secret(secret.path())
                .route(Route::post("/v1/orders").mode("report").allow(&["order_id"])),
        ),
    )
    .await;
    let body = r#"{"order_id":1,"billing":{"email":"a@b.example"}}"#;
    let resp = proxy.send(&post_json("http://api.report.test/v1/orders", body)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(up.single().body, body.as_bytes());
    // The route's report mode does not open other routes.
    let resp = proxy.send(&post_json("http://api.report.test/v1/other", body)).await;
    assert_refusal(&resp, 403, "route_not_allowed", "unlisted route beside a report route");
    assert_eq!(up.count(), 1);
}

// ---------------------------------------------------------------------------
// Invariant 6: credential binding
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_copies_of_the_credential_header_are_replaced_by_exactly_one() {
    let fx = Fixture::new(Opts::default()).await;
    let headers: &[(&str, &str)] = &[
        ("Content-Type", "application/json"),
        ("X-API-KEY", "client-upper"),
        ("x_api_key", "client-underscore"),
        ("X-Api-Key", "client-dup-1"),
        ("X-Api-Key", "client-dup-2"),
        ("X_API-Key", "client-mixed"),
        ("Connection", "X-API-KEY"),
    ];
    let resp = fx.send(&absolute("POST", SHIP, headers, br#"{"order_id":1}"#)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    let creds: Vec<_> = got
        .headers
        .iter()
        .filter(|(k, _)| k.replace('_', "-").eq_ignore_ascii_case("x-api-key"))
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(
        creds,
        vec![KEY.to_owned()],
        "exactly one credential header, the injected one: {:#?}",
        got.headers
    );
    assert!(
        !got.headers.iter().any(|(_, v)| v.starts_with("client-")),
        "a client value got through: {:#?}",
        got.headers
    );
    assert!(got.header("connection").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_header_cannot_drop_the_injected_key() {
    let fx = Fixture::new(Opts::default()).await;
    for conn in ["X-API-KEY", "x-api-key, keep-alive", "close, X_API_KEY"] {
        let resp = fx
            .send(&absolute(
                "GET",
                "http://api.shipper.test/v1/shipments/1",
                &[("Connection", conn)],
                b"",
            ))
            .await;
        assert_eq!(resp.status, 200, "{conn}");
    }
    for r in fx.up.wait_for(3).await {
        assert_eq!(r.header_values("x-api-key"), vec![KEY.to_owned()], "{:#?}", r.headers);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_only_after_a_matched_route_and_only_to_its_destination() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST, "api.report.test", "api.open.test"]).await;
    let other_secret = secret_file("sk_report_00112233445566778899");
    let extra = vec![
        Dest::new("reporter", "api.report.test")
            .upstream(&up, &ca)
            .mode("report")
            .secret(other_secret.path())
            .route(Route::post("/v1/shipments")),
        Dest::new("open", "api.open.test").upstream(&up, &ca),
    ];
    let fx = Fixture::with_upstream(ca, up, Opts::extra(extra)).await;
    // Report-mode destination, route matches: its own key.
    let r = fx
        .send(&post_json("http://api.report.test/v1/shipments", r#"{"a":1}"#))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        last(&fx.up, 1).await.header_values("x-api-key"),
        vec!["sk_report_00112233445566778899".to_owned()]
    );
    // Report-mode destination, route does not match: passes, without any key; the client's copy removed.
    let r = fx
        .send(&absolute(
            "POST",
            "http://api.report.test/v1/other",
            &[("X-API-KEY", "client-sent"), ("Content-Type", "application/json")],
            b"{}",
        ))
        .await;
    assert_eq!(r.status, 200, "report mode lets the unmatched route pass");
    let got = last(&fx.up, 2).await;
    assert!(
        got.header_values("x-api-key").is_empty(),
        "no key on an unmatched route: {:#?}",
        got.headers
    );
    // The shipper key goes nowhere but the shipper.
    assert_eq!(fx.send(&post_json(SHIP, r#"{"order_id":1}"#)).await.status, 200);
    assert_eq!(
        fx.send(&absolute("GET", "http://api.open.test/v1/shipments", &[], b""))
            .await
            .status,
        200
    );
    assert_eq!(
        fx.send(&absolute("GET", "http://api.report.test/v1/shipments", &[], b""))
            .await
            .status,
        200
    );
    let all = fx.up.wait_for(5).await;
    for r in &all {
        let carries = r.headers.iter().any(|(_, v)| v.contains(KEY)) || String::from_utf8_lossy(&r.body).contains(KEY);
        assert_eq!(
            carries,
            r.sni.as_deref() == Some(HOST),
            "shipper key only to the shipper: {} {:?}",
            r.target,
            r.sni
        );
    }
}
