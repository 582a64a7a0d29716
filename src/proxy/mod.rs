//! One request through the proxy: take a policy snapshot, authenticate the
//! client, read the target, then tunnel (`tunnel`) or forward (`forward`).
//! Every refusal goes through `refusal::refusal` and every request writes one
//! audit line.

mod bearer;
pub mod body_policy;
pub mod decide;
mod decode;
mod forward;
pub(crate) mod headers;
pub mod host;
mod intercept;
pub(crate) mod method_override;
pub mod pathnorm;
pub(crate) mod plan;
pub(crate) mod query_policy;
pub(crate) mod refusal;
mod request_body;
mod response_body;
pub mod target;
mod tunnel;
pub mod value_check;

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::policy::ClientToken;
use crate::store::PolicyStore;
use crate::telemetry::audit::Audit;
use crate::upstream::BoxError;
use crate::vocab::Reason;

pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// What every request on one client connection shares.
pub struct Conn {
    pub store: Arc<PolicyStore>,
    /// Unix-socket clients are authorised by the socket's file mode.
    pub via_unix: bool,
    /// Tunnels are tracked with the connections and cut when the grace period ends.
    pub tasks: TaskTracker,
    pub hard_stop: CancellationToken,
    /// Cancelled when shutdown starts: an intercepted tunnel's inner connection then finishes gracefully.
    pub draining: CancellationToken,
    /// Set on the connection inside an intercepted tunnel: which CONNECT it came from.
    pub intercepted: Option<Arc<Inside>>,
}

pub use intercept::Inside;

/// A refusal on its way out: the reason and, for 429, the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: Reason,
    pub retry_after: Option<u64>,
}

impl From<Reason> for Refused {
    fn from(reason: Reason) -> Refused {
        Refused {
            reason,
            retry_after: None,
        }
    }
}

/// One request, start to end. The handler owns the request's audit record:
/// a refusal finishes it here; an answer's body or a tunnel, which outlive
/// the handler, take it along and finish it when they end.
pub async fn handle(req: Request<Incoming>, conn: Arc<Conn>) -> Result<Response<ProxyBody>, Infallible> {
    let snap = conn.store.load();
    let mut audit = Audit::new(&snap, &conn.store.telemetry, req.method().as_str());
    let inside = conn.intercepted.as_deref();
    audit.intercepted = inside.is_some();
    let result = match &snap.policy.server.client_token {
        // Inside an intercepted tunnel the client authenticated at its CONNECT.
        Some(token) if !conn.via_unix && inside.is_none() && !authorized(req.headers(), token) => {
            Err(Reason::ProxyAuthRequired.into())
        }
        _ if req.method() == Method::CONNECT && inside.is_some() => Err(Reason::BadRequest.into()),
        _ if req.method() == Method::CONNECT => tunnel::tunnel(req, &snap, &mut audit).await.map(Proceed::Tunnel),
        _ => forward::forward(req, &snap, &mut audit, inside)
            .await
            .map(Proceed::Answer),
    };
    Ok(match result {
        Ok(Proceed::Answer(resp)) => {
            audit.allowed(resp.status().as_u16());
            resp.map(|mut body| {
                body.attach(audit);
                body.boxed()
            })
        }
        Ok(Proceed::Tunnel(open)) => open.start(audit, &conn),
        Err(refused) => {
            let resp = refusal::refusal(refused.reason, &audit.request_id, refused.retry_after);
            audit.refused(refused.reason, resp.status().as_u16());
            audit.finish();
            resp.map(|b| b.map_err(|never| match never {}).boxed())
        }
    })
}

/// What an allowed request goes on to: an answer streaming back, or a tunnel.
// Built once per request and matched at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Proceed {
    Answer(Response<response_body::ScrubbedBody<Incoming>>),
    Tunnel(tunnel::Open),
}

/// `Proxy-Authorization: Basic base64(any-user:token)`, compared in constant time.
fn authorized(headers: &HeaderMap, token: &ClientToken) -> bool {
    let want = token.0.bytes();
    headers.get_all(header::PROXY_AUTHORIZATION).iter().any(|v| {
        let Some(encoded) = v.as_bytes().strip_prefix(b"Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()) else {
            return false;
        };
        let decoded = zeroize::Zeroizing::new(decoded);
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        // `subtle` keeps the comparison free of early exits the optimiser could add back.
        let given = decoded.get(colon + 1..).unwrap_or_default();
        bool::from(subtle::ConstantTimeEq::ct_eq(given, want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::secret::Secret;
    use http::HeaderValue;

    #[test]
    fn proxy_authorization() {
        let token = ClientToken(Secret::new(zeroize::Zeroizing::new(b"s3cret".to_vec())).unwrap());
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let cases: Vec<(&str, Option<String>, bool)> = vec![
            (
                "right token any user",
                Some(format!("Basic {}", b64("shop:s3cret"))),
                true,
            ),
            ("empty user", Some(format!("Basic {}", b64(":s3cret"))), true),
            ("wrong token", Some(format!("Basic {}", b64("shop:s3creT"))), false),
            ("token as user", Some(format!("Basic {}", b64("s3cret:"))), false),
            ("no colon", Some(format!("Basic {}", b64("s3cret"))), false),
            ("bearer", Some("Bearer s3cret".to_owned()), false),
            ("garbage", Some("Basic !!!".to_owned()), false),
            ("missing", None, false),
        ];
        for (name, value, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(v) = value {
                h.insert(header::PROXY_AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
            }
            assert_eq!(authorized(&h, &token), want, "{name}");
        }
    }
}
