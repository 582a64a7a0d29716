#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! A stock WordPress (Debian's package, a throwaway MariaDB, PHP CLI) as the
//! client: `wp_remote_post` with `WP_PROXY_HOST` through the proxy to an
//! `http://` partner URL (key injected, body filtered, what the upstream got
//! is the judge), and the shipped must-use plugin
//! examples/wordpress/egress-guard-ca.php: with it WordPress trusts the local
//! CA, and every other host is verified exactly as before.
mod common;
#[path = "wordpress/site.rs"]
mod site;

use common::shipper::{assert_no_personal_data, woo_order, Fixture, Opts, HOST, KEY};
use common::{TestCa, Upstream};
use serde_json::json;
use site::{Answer, Call, WordPress};

/// `wp_remote_post(url)` from the site, JSON body, the plugin's own idea of
/// an API key in a header (the proxy must replace it).
async fn wp_post(wp: &WordPress, url: &str, body: &str, call: &Call) -> Answer {
    let headers = [
        ("Content-Type", "application/json"),
        ("X-API-KEY", "key-typed-into-a-plugin"),
    ];
    wp.request("POST", url, &headers, body, call).await
}

async fn wp_get(wp: &WordPress, url: &str, call: &Call) -> Answer {
    wp.request("GET", url, &[], "", call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wp_remote_post_through_the_proxy_to_an_http_partner_url() {
    let fx = Fixture::new(Opts::default()).await;
    let wp = WordPress::install().await;
    let call = Call {
        proxy: Some(fx.proxy.addr),
        ..Call::default()
    };
    let url = format!("http://{HOST}/v1/shipments");
    let got = wp_post(&wp, &url, &woo_order().to_string(), &call).await;
    assert_eq!(got.code, Some(200), "{got:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got.body).unwrap(),
        json!({"ok": true})
    );

    let up = fx.up.single();
    assert_eq!(up.method, "POST");
    assert_eq!(up.target, "/v1/shipments");
    assert_eq!(up.sni.as_deref(), Some(HOST), "upgraded to verified HTTPS");
    assert_eq!(
        up.header_values("x-api-key"),
        vec![KEY.to_owned()],
        "only the injected key"
    );
    assert_eq!(
        up.json(),
        json!({
            "order_id": 1042,
            "shipping": {"postcode": "51147", "country": "DE"},
            "line_items": [{"sku": "MUG-RED", "quantity": 2}, {"sku": "TEE-M", "quantity": 1}]
        })
    );
    assert_no_personal_data(&up.body, "wp_remote_post");
    assert!(
        up.header("user-agent").unwrap_or_default().starts_with("WordPress/"),
        "the request came from WordPress's HTTP API: {:?}",
        up.header("user-agent")
    );
}

/// Three HTTPS servers on loopback: one with a leaf from the local CA (what
/// egress-guard mints), one from a CA in the site's bundle, one from a CA
/// nobody trusts, on another host name.
struct Servers {
    local_ca: TestCa,
    base_ca: TestCa,
    local: Upstream,
    base: Upstream,
    rogue: Upstream,
    _rogue_ca: TestCa,
}

async fn servers() -> Servers {
    let local_ca = TestCa::named("egress-guard local CA (test)");
    let base_ca = TestCa::named("a CA in the site's bundle (test)");
    let rogue_ca = TestCa::named("a CA nobody trusts (test)");
    Servers {
        local: Upstream::start(&local_ca, &["127.0.0.1"]).await,
        base: Upstream::start(&base_ca, &["127.0.0.1"]).await,
        rogue: Upstream::start(&rogue_ca, &["localhost"]).await,
        local_ca,
        base_ca,
        _rogue_ca: rogue_ca,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_trusts_the_local_ca_and_verifies_everything_else_as_before() {
    let s = servers().await;
    let wp = WordPress::install().await;
    let local = format!("https://127.0.0.1:{}/v1/ping", s.local.addr.port());
    let base = format!("https://127.0.0.1:{}/v1/ping", s.base.addr.port());
    let rogue = format!("https://localhost:{}/v1/ping", s.rogue.addr.port());
    let plain = Call {
        ca: Some(s.local_ca.pem_path()),
        base_bundle: Some(s.base_ca.pem_path()),
        ..Call::default()
    };
    let with_plugin = Call {
        plugin: true,
        ..plain.clone()
    };
    // (name, call, url, must succeed, upstream whose count must move)
    let rows: [(&str, &Call, &str, bool, &Upstream); 6] = [
        ("no plugin, local CA: untrusted", &plain, &local, false, &s.local),
        ("no plugin, bundle CA: trusted", &plain, &base, true, &s.base),
        ("no plugin, rogue CA: untrusted", &plain, &rogue, false, &s.rogue),
        ("plugin, local CA: trusted", &with_plugin, &local, true, &s.local),
        ("plugin, bundle CA: still trusted", &with_plugin, &base, true, &s.base),
        (
            "plugin, rogue CA: still untrusted",
            &with_plugin,
            &rogue,
            false,
            &s.rogue,
        ),
    ];
    for (name, call, url, ok, up) in rows {
        let before = up.count();
        let got = wp_get(&wp, url, call).await;
        assert_eq!(got.sslverify, json!(true), "{name}: sslverify untouched: {got:?}");
        if ok {
            assert_eq!(got.code, Some(200), "{name}: {got:?}");
            assert_eq!(up.count(), before + 1, "{name}: the server got the request");
        } else {
            let err = got.error.clone().unwrap_or_default();
            assert!(
                got.code.is_none() && err.contains("SSL"),
                "{name}: must fail verification: {got:?}"
            );
            assert_eq!(up.count(), before, "{name}: a request went out unverified");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_bundle_is_cached_by_content_and_holds_no_private_key() {
    let s = servers().await;
    let wp = WordPress::install().await;
    // The CA file names a key by mistake as well: only the certificate may be copied.
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    let cert = std::fs::read_to_string(s.local_ca.pem_path()).unwrap();
    let fake_key =
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
    std::fs::write(&ca_file, format!("{fake_key}{cert}")).unwrap();
    // No base bundle given: the one Debian's WordPress uses by default.
    let call = Call {
        plugin: true,
        ca: Some(ca_file.to_str().unwrap().to_owned()),
        ..Call::default()
    };
    let url = format!("https://127.0.0.1:{}/v1/ping", s.local.addr.port());
    let first = wp_get(&wp, &url, &call).await;
    assert_eq!(first.code, Some(200), "{first:?}");
    let second = wp_get(&wp, &url, &call).await;
    assert_eq!(second.code, Some(200), "{second:?}");
    assert_eq!(
        first.sslcertificates, second.sslcertificates,
        "the cached bundle is reused"
    );

    let bundles = wp.cached_bundles();
    assert_eq!(bundles.len(), 1, "one bundle, no temp file left: {bundles:?}");
    let path = &bundles[0];
    assert_eq!(path.to_str().unwrap(), first.sslcertificates);
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(cert.trim()), "the local CA is in the bundle");
    assert!(
        !text.contains("PRIVATE KEY"),
        "a private key was copied into the bundle"
    );
    let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap();
    assert!(text.starts_with(system.trim_end()), "the base bundle is kept whole");
    let name = path.file_name().unwrap().to_str().unwrap();
    let digest = ring_sha256_hex(text.as_bytes());
    assert_eq!(name, format!("ca-bundle-{digest}.crt"), "named by its content");
}

fn ring_sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
