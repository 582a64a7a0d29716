//! Every refusal the proxy gives, and the one function that turns a reason
//! into an answer. Reasons are grouped by who failed: the client (4xx), the
//! policy (403/422/429) or the upstream (502/504). Nothing internal is told.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::vocab::Reason;

/// How each reason is answered.
impl Reason {
    pub const fn status(self) -> StatusCode {
        match self {
            Reason::BadRequest | Reason::MalformedBody => StatusCode::BAD_REQUEST,
            Reason::ProxyAuthRequired => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Reason::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Reason::DestinationNotAllowed
            | Reason::RouteNotAllowed
            | Reason::PlainHttpRefused
            | Reason::TunnelNotAllowed
            | Reason::AddressNotAllowed => StatusCode::FORBIDDEN,
            Reason::FieldNotAllowed | Reason::SensitiveValue => StatusCode::UNPROCESSABLE_ENTITY,
            Reason::InvalidValue => StatusCode::UNPROCESSABLE_ENTITY,
            Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Reason::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Reason::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Reason::CredentialUnavailable => StatusCode::BAD_GATEWAY,
        }
    }

    /// A hint for the PHP developer where the code alone does not say what to do.
    const fn hint(self) -> Option<&'static str> {
        match self {
            Reason::TunnelNotAllowed => {
                Some("use the http:// URL: the proxy upgrades it to verified HTTPS and adds the credential; or ask for this host to be intercepted")
            }
            _ => None,
        }
    }
}

/// The refusal for `reason`: JSON body, reason header, request id.
/// `retry_after` is in whole seconds (for `rate_limited`).
pub fn refusal(reason: Reason, request_id: &str, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body_text(reason, request_id))));
    *resp.status_mut() = reason.status();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("x-egress-guard-reason", HeaderValue::from_static(reason.code()));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if reason == Reason::ProxyAuthRequired {
        h.insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"egress-guard\""),
        );
    }
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    resp
}

fn body_text(reason: Reason, request_id: &str) -> String {
    let mut body = format!("{{\"error\":\"{}\",\"request_id\":\"{}\"", reason.code(), request_id);
    if let Some(h) = reason.hint() {
        body.push_str(",\"hint\":\"");
        body.push_str(h);
        body.push('"');
    }
    body.push_str("}\n");
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn refusal_shape() {
        let resp = refusal(Reason::TunnelNotAllowed, "r-1", None);
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()["x-egress-guard-reason"], "tunnel_not_allowed");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "tunnel_not_allowed");
        assert_eq!(v["request_id"], "r-1");
        assert!(v["hint"].as_str().unwrap().contains("http://"));
    }

    #[test]
    fn auth_challenge_and_retry_after() {
        let r = refusal(Reason::ProxyAuthRequired, "r", None);
        assert_eq!(r.status(), 407);
        assert_eq!(r.headers()[header::PROXY_AUTHENTICATE], "Basic realm=\"egress-guard\"");
        let r = refusal(Reason::RateLimited, "r", Some(0));
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
