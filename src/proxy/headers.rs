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
}
