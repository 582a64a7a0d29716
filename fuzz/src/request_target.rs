//! Target and `Host` parsing (`egress_guard::proxy::target::parse`) with path
//! normalisation (`egress_guard::proxy::pathnorm::normalise`), fed request heads the way hyper
//! builds them (httparse, then `Method`, `Uri` and `HeaderMap`).
//!
//! Properties (docs/policy.md: `bad_request`; "Request bodies and names, strictly"; issue 8, class 1
//! and 3): a target that parses has a host that is a reg-name or an IP literal, with no `:`
//! unless it is an IPv6 literal; host and port round-trip through `http::Uri` and through
//! the proxy's own authority parser unchanged; the path is normalised (starts with `/`, no
//! empty segment, idempotent) and holds no `.` or `..` segment, even with `;` params cut.

use egress_guard::proxy::host;
use egress_guard::proxy::pathnorm;
use egress_guard::proxy::target::{self, Target};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

pub fn check(data: &[u8]) {
    let Some((method, uri, headers)) = request(data) else {
        return;
    };
    let Ok(t) = target::parse(&method, &uri, &headers) else {
        return;
    };
    check_host(&t);
    if method != Method::CONNECT {
        check_path(&t.path);
    }
}

/// The head as hyper hands it to the proxy; `None` where hyper itself refuses it.
fn request(data: &[u8]) -> Option<(Method, Uri, HeaderMap)> {
    let mut raw = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut raw);
    match req.parse(data) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let uri = Uri::try_from(req.path?.as_bytes()).ok()?;
    let mut headers = HeaderMap::new();
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    Some((method, uri, headers))
}

fn check_host(t: &Target) {
    let host = t.host.as_str();
    let ipv6 = host.parse::<std::net::Ipv6Addr>().is_ok();
    assert!(!host.is_empty(), "request_target: empty host");
    assert!(
        ipv6 || !host.contains(':'),
        "request_target: host {host:?} holds a ':' and is no IPv6 literal"
    );
    assert!(
        ipv6 || host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
        "request_target: host {host:?} is neither a reg-name nor an IP literal"
    );
    assert_ne!(t.port, Some(0), "request_target: port 0");
    let port = t.port.unwrap_or(443);
    let authority = if ipv6 {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // The upstream URI, SNI and Host header are built from these parts: they must read back
    // as the same place, or the decision and the connection name different hosts.
    let uri: Uri = format!("https://{authority}/")
        .parse()
        .unwrap_or_else(|e| panic!("request_target: host {host:?} port {port} do not make a URI: {e}"));
    let uri_host = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']'));
    assert_eq!(uri_host, Some(host), "request_target: host changed through http::Uri");
    assert_eq!(
        uri.port_u16(),
        Some(port),
        "request_target: port changed through http::Uri"
    );
    let again = host::parse_authority(&authority)
        .map(|(h, p)| (h.as_str().to_owned(), p))
        .map_err(|_| "refused");
    assert_eq!(
        again,
        Ok((host.to_owned(), Some(port))),
        "request_target: {authority:?} does not parse back to the same host and port"
    );
}

fn check_path(path: &str) {
    assert!(
        path.starts_with('/'),
        "request_target: path {path:?} does not start with '/'"
    );
    assert!(
        !path.contains("//"),
        "request_target: path {path:?} holds an empty segment"
    );
    assert_eq!(
        pathnorm::normalise(path).as_deref(),
        Ok(path),
        "request_target: normalising path {path:?} again changes it"
    );
    for seg in path.split('/').skip(1) {
        let bare = seg.split(';').next().unwrap_or(seg);
        assert!(
            bare != "." && bare != "..",
            "request_target: path {path:?} holds the dot segment {seg:?} (Tomcat and Spring cut ';' params)"
        );
    }
}
