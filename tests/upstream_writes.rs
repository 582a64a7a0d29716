//! A streamed body's first frame is awaited before the request goes upstream
//! (so head and a small body leave in one TLS record): whatever way the
//! client's bytes arrive, with the head, after it, in pieces, or larger than
//! a record, what the upstream receives is the body, whole, with its length.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

const HOST: &str = "api.shipper.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_arrives_whole_however_it_is_sent() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST]).await;
    let secret = secret_file("sk_writes_key_0123456789");
    let proxy = Proxy::start_policy(
        &PolicyBuilder::new().dest(
            Dest::new("shipper", HOST)
                .upstream(&up, &ca)
                .credential("X-API-KEY", secret.path())
                .route(Route::post("/v1/raw")),
        ),
    )
    .await;
    let small = br#"{"order_id":42}"#.to_vec();
    let large: Vec<u8> = (0..40 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    // (name, body, where the client splits its bytes: 0 = all in one write)
    let rows: &[(&str, &[u8], usize)] = &[
        ("small, with its head", &small, 0),
        ("small, after its head", &small, usize::MAX),
        ("small, in two pieces", &small, 5),
        ("empty", b"", 0),
        ("larger than a record, after its head", &large, usize::MAX),
        ("larger than a record, in two pieces", &large, 1000),
    ];
    for (i, (what, body, split)) in rows.iter().enumerate() {
        let len = body.len().to_string();
        let whole = raw_request(
            "POST",
            &format!("http://{HOST}/v1/raw"),
            &[
                ("Host", HOST),
                ("Content-Type", "application/json"),
                ("Content-Length", &len),
            ],
            body,
        );
        let head_len = whole.len() - body.len();
        let cut = match *split {
            0 => whole.len(),
            usize::MAX => head_len,
            n => head_len + n,
        };
        let mut c = RawConn::tcp(proxy.addr).await;
        c.send(&whole[..cut]).await;
        if cut < whole.len() {
            c.send(&whole[cut..]).await;
        }
        let resp = c.response().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(resp.status, 200, "{what}: {}", resp.text());
        let got = up.wait_for(i + 1).await.pop().unwrap();
        assert_eq!(got.body, *body, "{what}: the body the upstream received");
        assert_eq!(got.header("content-length").as_deref(), Some(len.as_str()), "{what}");
        assert_eq!(
            got.header("x-api-key").as_deref(),
            Some("sk_writes_key_0123456789"),
            "{what}"
        );
    }
}
