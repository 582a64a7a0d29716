//! Header hygiene on the way out and on the way back: hop-by-hop headers and
//! whatever `Connection` names are dropped, every client copy of the
//! credential header is removed before the proxy's own goes in, and an
//! upstream answer never carries an injected secret back.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::policy::Credential;
use crate::scrub;

/// Hop-by-hop headers (RFC 9110 §7.6.1) and proxy-only ones.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that Symfony, Laravel, Rack and Express's method-override read as
/// the method to run: a POST-only route would run a DELETE. Never forwarded.
const METHOD_OVERRIDE: &[&str] = &["x-http-method-override", "x-http-method", "x-method-override"];

/// True when `name`, read the way PHP and CGI read it (case-blind, `_` as
/// `-`), is the credential header `cred` (lower-case).
pub fn same_header(name: &str, cred: &str) -> bool {
    name.len() == cred.len()
        && name.bytes().zip(cred.bytes()).all(|(a, b)| {
            let a = if a == b'_' { b'-' } else { a.to_ascii_lowercase() };
            a == b
        })
}

/// Removes hop-by-hop headers and the ones `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(*n);
    }
}

/// Prepares the client's headers for the upstream. Returns how many copies
/// of the credential header the client sent (an anomaly, and removed).
pub fn outbound(headers: &mut HeaderMap, cred: Option<&Credential>, inject: bool) -> usize {
    strip_hop_by_hop(headers);
    headers.remove(header::HOST);
    // The proxy answers `100-continue` to the client itself and sends the
    // upstream a complete body; an upstream waiting to say "continue" would only stall.
    headers.remove(header::EXPECT);
    remove_spellings(headers, METHOD_OVERRIDE);
    let mut supplied = 0;
    if let Some(c) = cred {
        let victims: Vec<HeaderName> = headers
            .keys()
            .filter(|k| same_header(k.as_str(), c.header.as_str()))
            .cloned()
            .collect();
        for k in victims {
            supplied += headers.get_all(&k).iter().count();
            headers.remove(&k);
        }
        // Answers must come back in a form the scrubber can read.
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if inject {
            headers.insert(c.header.clone(), c.value.clone());
        }
    }
    supplied
}

/// Removes every header that reads as one of `names` (lower-case) to PHP or CGI.
fn remove_spellings(headers: &mut HeaderMap, names: &[&str]) {
    let victims: Vec<HeaderName> = headers
        .keys()
        .filter(|k| names.iter().any(|n| same_header(k.as_str(), n)))
        .cloned()
        .collect();
    for k in victims {
        headers.remove(&k);
    }
}

/// Cleans an upstream answer's headers; replaces every form of the secrets in their values.
pub fn inbound(headers: &mut HeaderMap, forms: Option<&scrub::Forms>) {
    strip_hop_by_hop(headers);
    let Some(forms) = forms else { return };
    for value in headers.values_mut() {
        if let Some(clean) = scrub::scrub_all(value.as_bytes(), forms) {
            if let Ok(v) = HeaderValue::from_bytes(&clean) {
                *value = v;
            } else {
                *value = HeaderValue::from_static("");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_spellings() {
        let cases: &[(&str, bool)] = &[
            ("x-api-key", true),
            ("X-API-KEY", true),
            ("x_api_key", true),
            ("X_Api-Key", true),
            ("x-api-keys", false),
            ("x-api", false),
        ];
        for (name, want) in cases {
            assert_eq!(same_header(name, "x-api-key"), *want, "{name}");
        }
    }

    #[test]
    fn connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-trace"));
        h.insert("x-trace", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("5"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    use proptest::prelude::*;

    const PROXY_KEY: &str = "proxy-secret-value";

    fn credential() -> Credential {
        let secret =
            crate::policy::secret::Secret::new(zeroize::Zeroizing::new(PROXY_KEY.as_bytes().to_vec())).unwrap();
        Credential {
            header: HeaderName::from_static("x-api-key"),
            value: HeaderValue::from_static(PROXY_KEY),
            forms: std::sync::Arc::new(crate::scrub::Forms::new([secret.bytes().as_ref()])),
            secret,
            source: crate::policy::secret::Source::Env("K".to_owned()),
            oauth2: None,
            more_sources: Vec::new(),
            key_age: Default::default(),
        }
    }

    /// Names a hostile client might send: credential spellings, hop-by-hop
    /// headers, method overrides and harmless ones.
    fn header_name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "x-api-key",
            "X-API-KEY",
            "x_api_key",
            "X_Api_Key",
            "x-api_key",
            "x_API-key",
            "x-api-keys",
            "api-key",
            "connection",
            "Connection",
            "keep-alive",
            "te",
            "trailer",
            "upgrade",
            "proxy-connection",
            "proxy-authorization",
            "transfer-encoding",
            "x-http-method-override",
            "X_HTTP_METHOD",
            "x-method-override",
            "X-Http-Method-Override",
            "accept",
            "content-type",
            "x-trace",
        ])
    }

    /// Values: `Connection` lists naming the credential (to drop the proxy's own copy) or others.
    fn header_value() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "client-copy",
            "x-api-key",
            "X-API-KEY, close",
            "x_api_key",
            "close, x-trace",
            "keep-alive",
            "1",
        ])
    }

    proptest! {
        /// Invariant 6: whatever the client sends, no client copy of the credential
        /// header survives, and when injecting exactly the proxy's value is there.
        #[test]
        fn credential_is_only_ever_the_proxys(
            sent in prop::collection::vec((header_name(), header_value()), 0..24),
            inject in any::<bool>(),
        ) {
            let mut h = HeaderMap::new();
            for (k, v) in &sent {
                h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_static(v));
            }
            let cred = credential();
            outbound(&mut h, Some(&cred), inject);
            let copies: Vec<_> = h.iter().filter(|(k, _)| same_header(k.as_str(), "x-api-key")).collect();
            if inject {
                prop_assert_eq!(copies.len(), 1, "{:?}", h);
                prop_assert_eq!(copies.first().map(|(k, v)| (k.as_str(), v.as_bytes())),
                    Some(("x-api-key", PROXY_KEY.as_bytes())));
            } else {
                prop_assert!(copies.is_empty(), "{:?}", h);
            }
            for (k, _) in &h {
                let k = k.as_str();
                prop_assert!(!HOP_BY_HOP.contains(&k), "hop-by-hop {} left", k);
                prop_assert!(!METHOD_OVERRIDE.iter().any(|m| same_header(k, m)), "override {} left", k);
            }
        }
    }
}
