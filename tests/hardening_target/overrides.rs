//! Method overrides: the headers never reach the upstream, and a `_method`
//! naming a method the route does not allow is `route_not_allowed`.

use super::*;

const ORDERS: &str = "http://api.partner.example/v1/orders";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_headers_are_removed() {
    let fx = fixture().await;
    let headers = [
        ("X-HTTP-Method-Override", "DELETE"),
        ("x_http_method_override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X_Method_Override", "DELETE"),
        ("x-method-override", "DELETE"),
    ];
    let resp = fx.proxy.send(&absolute("POST", ORDERS, &headers, b"{}")).await;
    assert_eq!(resp.status, 200, "{}", resp.head);
    let got = fx.up.single();
    for (name, _) in headers {
        assert!(
            got.header(name).is_none(),
            "{name} reached the upstream: {:?}",
            got.headers
        );
    }
    assert!(got.headers.iter().all(|(_, v)| v != "DELETE"), "{:?}", got.headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_parameters_naming_a_disallowed_method_are_refused() {
    let fx = fixture().await;
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let multipart = [("Content-Type", "multipart/form-data; boundary=XyZ")];
    let part = b"--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--XyZ--\r\n";
    let chunked = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Transfer-Encoding", "chunked"),
    ];
    // (case, request): every one on the POST-only route /v1/orders.
    let rows: Vec<(&str, Vec<u8>)> = vec![
        ("query", absolute("POST", &format!("{ORDERS}?_method=DELETE"), &[], b"")),
        (
            "query lower value",
            absolute("POST", &format!("{ORDERS}?a=1&_method=delete"), &[], b""),
        ),
        (
            "query encoded name",
            absolute("POST", &format!("{ORDERS}?%5Fmethod=DELETE"), &[], b""),
        ),
        (
            "query upper name",
            absolute("POST", &format!("{ORDERS}?_METHOD=PUT"), &[], b""),
        ),
        (
            "query dot name (PHP)",
            absolute("POST", &format!("{ORDERS}?.method=DELETE"), &[], b""),
        ),
        (
            "query array",
            absolute("POST", &format!("{ORDERS}?_method[]=DELETE"), &[], b""),
        ),
        (
            "query semicolon",
            absolute("POST", &format!("{ORDERS}?a=1;_method=DELETE"), &[], b""),
        ),
        ("form body", absolute("POST", ORDERS, &form, b"a=1&_method=DELETE")),
        (
            "form body plus name",
            absolute("POST", ORDERS, &form, b"a=1&+method=PATCH"),
        ),
        (
            "chunked form body",
            absolute("POST", ORDERS, &chunked, b"e\r\n_method=DELETE\r\n0\r\n\r\n"),
        ),
        ("multipart body", absolute("POST", ORDERS, &multipart, part)),
    ];
    for (what, raw) in &rows {
        let resp = fx.proxy.send(raw).await;
        assert_refusal(&resp, 403, "route_not_allowed", what);
    }
    assert_eq!(fx.up.count(), 0, "{:#?}", fx.up.requests());

    // Allowed methods and lookalike names pass, bodies unchanged.
    let items = "http://api.partner.example/v1/items";
    let fine: Vec<(&str, Vec<u8>)> = vec![
        (
            "override to the request's method",
            absolute("POST", &format!("{ORDERS}?_method=POST"), &[], b""),
        ),
        (
            "override to an allowed method",
            absolute("POST", &format!("{items}?_method=PUT"), &[], b""),
        ),
        (
            "lookalike name",
            absolute("POST", &format!("{ORDERS}?shipping_method=DELETE"), &[], b""),
        ),
        (
            "form without override",
            absolute("POST", ORDERS, &form, b"shipping_method=express&a=1"),
        ),
    ];
    for (i, (what, raw)) in fine.iter().enumerate() {
        let resp = fx.proxy.send(raw).await;
        assert_eq!(resp.status, 200, "{what}: {}\n{}", resp.head, resp.text());
        assert_eq!(fx.up.count(), i + 1, "{what}");
    }
    let form_req = fx.up.requests().pop().unwrap();
    assert_eq!(form_req.body, b"shipping_method=express&a=1");
    assert_eq!(form_req.header_values("x-api-key"), vec![KEY.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_passes_an_override_without_the_key() {
    let fx = fixture().await;
    let trial = "http://api.partner.example/v1/trial";
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    for raw in [
        absolute("POST", &format!("{trial}?_method=DELETE"), &[], b""),
        absolute("POST", trial, &form, b"_method=DELETE"),
    ] {
        assert_eq!(fx.proxy.send(&raw).await.status, 200);
    }
    for got in fx.up.wait_for(2).await {
        assert!(
            got.header("x-api-key").is_none(),
            "report mode injected the key: {got:?}"
        );
    }
}
