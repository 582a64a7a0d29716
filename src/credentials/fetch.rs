//! One token request: `grant_type=client_credentials` POSTed over verified
//! HTTPS, the answer bounded in time and size, and only a `Bearer` token whose
//! every byte is in RFC 6750's token alphabet accepted (nothing that could
//! split or extend the header it goes into).

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use zeroize::Zeroizing;

use super::OAuth2;
use crate::policy::raw::ClientAuth;
use crate::policy::Secret;

/// A token endpoint's answer is a small JSON object; anything larger is not one.
const MAX_ANSWER: usize = 64 * 1024;
const MAX_TOKEN: usize = 8 * 1024;
/// When the answer gives no `expires_in`, the token is used this long.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// A longer `expires_in` is read as this: a revoked token ages out within a day.
const MAX_LIFETIME: Duration = Duration::from_secs(86_400);

/// How a fetch ended: the `outcome` label of `egress_guard_credential_fetches_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// No connection or no TLS session (DNS, refused, address not allowed, certificate).
    Unreachable,
    Timeout,
    /// The endpoint answered with a status other than 200.
    Refused,
    /// A 200 whose body is not a usable bearer token.
    BadResponse,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::BadResponse => "bad_response",
        }
    }
}

/// A token just obtained.
pub(super) struct Fresh {
    pub token: Secret,
    /// `Bearer <token>`, sensitive, sharing the token's wiped buffer.
    pub value: HeaderValue,
    pub lifetime: Duration,
}

pub(super) async fn fetch(cfg: &OAuth2) -> Result<Fresh, Outcome> {
    match tokio::time::timeout(cfg.timeout, exchange(cfg)).await {
        Ok(r) => r,
        Err(_) => Err(Outcome::Timeout),
    }
}

async fn exchange(cfg: &OAuth2) -> Result<Fresh, Outcome> {
    let req = request(cfg).map_err(|_| Outcome::Unreachable)?;
    let resp = cfg
        .upstream
        .client
        .request(req)
        .await
        .map_err(|_| Outcome::Unreachable)?;
    if resp.status() != http::StatusCode::OK {
        return Err(Outcome::Refused);
    }
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|_| Outcome::BadResponse)?;
    let body = Zeroizing::new(body.to_bytes().to_vec());
    parse(&body)
}

/// The token request; the client secret only ever in wiped buffers.
fn request(cfg: &OAuth2) -> Result<Request<crate::upstream::OutBody>, http::Error> {
    let mut form = Zeroizing::new(b"grant_type=client_credentials".to_vec());
    if let Some(scope) = &cfg.scope {
        form.extend_from_slice(b"&scope=");
        form_encode(scope.as_bytes(), &mut form);
    }
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(cfg.token_uri.clone())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    match cfg.client_auth {
        ClientAuth::Body => {
            form.extend_from_slice(b"&client_id=");
            form_encode(cfg.client_id.bytes(), &mut form);
            form.extend_from_slice(b"&client_secret=");
            form_encode(cfg.client_secret.bytes(), &mut form);
        }
        ClientAuth::Basic => {
            // RFC 6749 2.3.1: each part form-encoded before the Basic encoding.
            let mut pair = Zeroizing::new(Vec::new());
            form_encode(cfg.client_id.bytes(), &mut pair);
            pair.push(b':');
            form_encode(cfg.client_secret.bytes(), &mut pair);
            let mut value = Zeroizing::new(b"Basic ".to_vec());
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_slice()));
            value.extend_from_slice(encoded.as_bytes());
            let mut hv = HeaderValue::from_maybe_shared(Bytes::from_owner(value))?;
            hv.set_sensitive(true);
            builder = builder.header(header::AUTHORIZATION, hv);
        }
    }
    let body = Full::new(Bytes::from_owner(form))
        .map_err(|never| match never {})
        .boxed();
    builder.body(body)
}

/// `application/x-www-form-urlencoded`: unreserved bytes as they are, the rest `%HH`.
fn form_encode(raw: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        }
    }
}

/// The token answer's fields this proxy reads. No `Debug`: it holds the token.
#[derive(serde::Deserialize)]
struct Answer {
    access_token: String,
    token_type: String,
    expires_in: Option<serde_json::Value>,
}

pub(super) fn parse(body: &[u8]) -> Result<Fresh, Outcome> {
    let answer: Answer = serde_json::from_slice(body).map_err(|_| Outcome::BadResponse)?;
    let token = Zeroizing::new(answer.access_token.into_bytes());
    if !answer.token_type.eq_ignore_ascii_case("bearer") || !is_b64token(&token) {
        return Err(Outcome::BadResponse);
    }
    let lifetime = match answer.expires_in {
        None => DEFAULT_LIFETIME,
        Some(v) => lifetime(&v).ok_or(Outcome::BadResponse)?,
    };
    let token = Secret::new(token).map_err(|_| Outcome::BadResponse)?;
    let mut value = HeaderValue::from_maybe_shared(token.with_prefix("Bearer ").bytes().clone())
        .map_err(|_| Outcome::BadResponse)?;
    value.set_sensitive(true);
    Ok(Fresh { token, value, lifetime })
}

/// `expires_in` in seconds: a whole number (some endpoints send it as a string).
fn lifetime(v: &serde_json::Value) -> Option<Duration> {
    let secs = match v {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.parse::<u64>().ok()?,
        _ => return None,
    };
    Some(Duration::from_secs(secs).min(MAX_LIFETIME))
}

/// RFC 6750 2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(super) fn is_b64token(t: &[u8]) -> bool {
    let body_end = t.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let (body, pad) = t.split_at(body_end);
    !body.is_empty()
        && t.len() <= MAX_TOKEN
        && pad.iter().all(|&b| b == b'=')
        && body
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}
