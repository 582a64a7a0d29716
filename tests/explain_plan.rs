//! `explain` plans a request with the same function `run` serves by, so the
//! dry run refuses what the proxy refuses: a body over `max_body_bytes` and
//! a form whose `_method` names a method the route does not allow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Dest, PolicyBuilder, Route};
use egress_guard::cli::explain::{explain, Input};
use http::{HeaderMap, HeaderValue, Method};

fn input(path: &str, content_type: Option<&str>, body: &str) -> Input {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
    }
    Input {
        method: Method::POST,
        uri: format!("http://api.shop.example{path}").parse().unwrap(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// (name, path, content type, body, allowed, text expected)
type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, bool, &'a str);

#[test]
fn explain_refuses_what_run_refuses() {
    let yaml = PolicyBuilder::new()
        .defaults("max_body_bytes", 64)
        .dest(
            Dest::new("shop", "api.shop.example")
                .connect_to("127.0.0.1:9")
                .route(Route::post("/v1/forms"))
                .route(Route::post("/v1/reports").mode("report")),
        )
        .yaml();
    let policy = egress_guard::policy::compile(&yaml).unwrap();
    let form = Some("application/x-www-form-urlencoded");
    let big = "x".repeat(65);
    let cases: &[Case] = &[
        ("small body", "/v1/forms", None, "hello", true, "decision: allow"),
        ("body over the bound", "/v1/forms", None, &big, false, "body_too_large"),
        (
            "form keeps its method",
            "/v1/forms",
            form,
            "a=1&_method=POST",
            true,
            "decision: allow",
        ),
        (
            "form overrides the method",
            "/v1/forms",
            form,
            "a=1&_method=DELETE",
            false,
            "route_not_allowed",
        ),
        (
            "report mode notes the override",
            "/v1/reports",
            form,
            "_method=DELETE",
            true,
            "enforcement would refuse with route_not_allowed",
        ),
    ];
    for (name, path, ct, body, allowed, want) in cases {
        let (text, ok) = explain(&policy, input(path, *ct, body));
        assert_eq!(ok, *allowed, "{name}: {text}");
        assert!(text.contains(want), "{name}: {text}");
    }
}
