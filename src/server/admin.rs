//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (a policy is loaded and the listeners serve). It is
//! its own socket: nothing on the proxy port reaches it.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::store::PolicyStore;

pub async fn handle(req: Request<Incoming>, store: Arc<PolicyStore>) -> Result<Response<Full<Bytes>>, Infallible> {
    let t = &store.telemetry;
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            crate::telemetry::key_age::refresh(&store);
            (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                t.metrics.render(store.load().policy.side.open_connections()),
            )
        }
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        (&Method::GET, "/readyz") if t.ready.load(Ordering::Acquire) => {
            let snap = store.load();
            let text = format!("ready generation={} hash={}\n", snap.generation, snap.policy.hash);
            (StatusCode::OK, "text/plain", text)
        }
        (&Method::GET, "/readyz") => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "starting\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}
