//! Forwarding one plain-HTTP-to-the-proxy request as verified HTTPS: decide,
//! apply the body policy, clean and inject headers, send with a deadline, and
//! stream the answer back scrubbed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::decode;
use super::method_override::FormCheck;
use super::plan::{plan, Go};
use super::request_body::{BodyFate, Capped, TooLarge};
use super::response_body::{self, ScrubbedBody};
use super::{headers, target, Refused};
use crate::policy::{Destination, Mode, Route};
use crate::proxy::body_policy;
use crate::proxy::decide::Scheme;
use crate::scrub::Scrubber;
use crate::store::Snapshot;
use crate::telemetry::audit::Audit;
use crate::upstream::{ConnectError, OutBody};
use crate::vocab::Reason;

pub async fn forward(
    req: Request<Incoming>,
    snap: &Snapshot,
    audit: &mut Audit,
    inside: Option<&super::Inside>,
) -> Result<Response<ScrubbedBody<Incoming>>, Refused> {
    let (mut parts, body) = req.into_parts();
    let timeout = Duration::from_millis(snap.policy.defaults.request_timeout_ms);
    // The whole body must be in by then, counted from the moment the head was read.
    let body_deadline = tokio::time::Instant::now() + timeout;
    let mut target = target::parse(&parts.method, &parts.uri, &parts.headers).map_err(|_| Reason::BadRequest)?;
    if let Some(inside) = inside {
        target = inside.bind(target, &parts.uri)?;
    }
    // Planned before `outbound` edits the headers: a `Connection`-named type must not hide a form.
    let plan = plan(&snap.policy, &parts.method, &target, &parts.headers, None);
    note_decision(audit, &target, &plan.decision);
    audit.removed_query = plan.query.removed;
    if let Some(q) = plan.query.replaced {
        target.query = (!q.is_empty()).then_some(q);
    }
    let Go {
        dest,
        declared,
        report,
        form,
    } = plan.go?;
    let decision = plan.decision;
    let max = snap.policy.defaults.max_body_bytes;
    let limits = snap.limits_of(dest.index);
    limit(crate::fleet::check_request(snap, dest).await, report, audit)?;
    let supplied = headers::outbound(&mut parts.headers, dest.credential.as_ref(), decision.route_matched());
    audit.client_credentials = supplied;
    audit.bytes_in = declared.unwrap_or(0);
    // A byte budget needs the size before anything is sent: buffer bodies of unknown length.
    let budget = limits.filter(|l| l.has_byte_budget());
    let buffer = (budget.is_some() && declared.is_none()) || form.is_some();
    let bound = BodyBound {
        max,
        deadline: body_deadline,
        fate: Arc::default(),
    };
    let (out_body, size) = prepare_body(body, decision.route, &mut parts.headers, &bound, buffer, form, audit).await?;
    let bytes = size.or(declared).unwrap_or(0);
    limit(crate::fleet::check_bytes(snap, dest, bytes).await, report, audit)?;
    let token = super::bearer::bearer(snap, dest, &mut parts.headers).await?;
    parts.uri = upstream_uri(&target, dest)?;
    parts.version = Version::HTTP_11;
    let resp = send(dest, Request::from_parts(parts, out_body), timeout, &bound.fate, audit).await?;
    let forms = super::bearer::after(snap, dest, token, resp.status());
    answer(resp, dest, forms, timeout).await
}

/// Sends with the request's deadline. A body that failed on the client's
/// side fails the send too: the client's fault comes first.
async fn send(
    dest: &Destination,
    req: Request<OutBody>,
    timeout: Duration,
    fate: &BodyFate,
    audit: &mut Audit,
) -> Result<Response<Incoming>, Refused> {
    let started = std::time::Instant::now();
    let resp = match tokio::time::timeout(timeout, dest.upstream.client.request(req)).await {
        Err(_) => return Err(fate.blame(true).unwrap_or(Reason::UpstreamTimeout).into()),
        Ok(Err(e)) => return Err(fate.blame(false).unwrap_or_else(|| classify_error(&e)).into()),
        Ok(Ok(resp)) => resp,
    };
    audit.upstream_latency = Some(started.elapsed());
    Ok(resp)
}

/// Writes what the decision says into the audit record.
fn note_decision(a: &mut Audit, target: &target::Target, decision: &crate::proxy::decide::Decision<'_>) {
    a.path = crate::telemetry::audit::loggable_path(&target.path, decision.route.map(|r| &r.path));
    a.destination = decision.destination.map(|d| d.name.clone());
    a.route = decision.route.map(|r| r.index);
    a.would_refuse = decision.would_refuse;
    a.upgraded = target.scheme == Scheme::Http;
    if decision.destination.is_none() {
        a.host = Some(target.host.to_string());
    }
}

/// A limiter's verdict: a 429 with `Retry-After`, or in report mode a note.
pub(super) fn limit(verdict: Option<Result<(), u64>>, report: bool, audit: &mut Audit) -> Result<(), Refused> {
    let Some(Err(retry)) = verdict else { return Ok(()) };
    if report {
        audit.would_refuse = Some(Reason::RateLimited);
        return Ok(());
    }
    Err(Refused {
        reason: Reason::RateLimited,
        retry_after: Some(retry),
    })
}

/// How much of the client's body may come, and by when; what became of it.
#[derive(Debug, Clone)]
struct BodyBound {
    max: u64,
    deadline: tokio::time::Instant,
    fate: Arc<BodyFate>,
}

/// Buffers and filters a body a body policy applies to (or, with `buffer`,
/// any body, to learn its size or scan a form for `_method`); streams any
/// other. Returns the body to send and, when it was buffered, its size. A
/// body not whole by the deadline is `request_timeout`; one that cannot be
/// read (broken chunks) `bad_request`.
async fn prepare_body(
    body: Incoming,
    route: Option<&Route>,
    headers: &mut HeaderMap,
    bound: &BodyBound,
    buffer: bool,
    form: Option<FormCheck<'_>>,
    audit: &mut Audit,
) -> Result<(OutBody, Option<u64>), Refused> {
    let policy = route.and_then(|r| r.body.as_ref().map(|b| (b, r.mode)));
    if policy.is_none() && !buffer {
        let capped = Capped::new(body, bound.max, bound.deadline, bound.fate.clone());
        // Head and a small body in one upstream write: one TLS record.
        let primed = crate::upstream::prime::prime(capped).await;
        let primed = primed.map_err(|_| bound.fate.blame(false).unwrap_or(Reason::BadRequest))?;
        return Ok((primed.boxed(), None));
    }
    let limit = usize::try_from(bound.max).unwrap_or(usize::MAX);
    let collected = tokio::time::timeout_at(bound.deadline, Limited::new(body, limit).collect());
    let bytes = match collected.await {
        Err(_) => return Err(Reason::RequestTimeout.into()),
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(Reason::BodyTooLarge.into())
        }
        Ok(Err(_)) => return Err(Reason::BadRequest.into()),
    };
    bound.fate.set_done();
    let out = match policy {
        Some((bp, mode)) => filtered(bp, mode, headers, bytes, audit)?,
        None => bytes,
    };
    if let Some(f) = form {
        let mut would_refuse = None;
        f.check(&out, headers, &mut would_refuse)?;
        if would_refuse.is_some() {
            audit.would_refuse = would_refuse;
        }
    }
    audit.bytes_in = out.len() as u64;
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from(out.len()));
    let size = out.len() as u64;
    Ok((Full::new(out).map_err(|never| match never {}).boxed(), Some(size)))
}

/// The body policy applied, its findings noted for the audit line and metrics.
fn filtered(
    bp: &crate::policy::BodyPolicy,
    mode: Mode,
    headers: &HeaderMap,
    bytes: Bytes,
    audit: &mut Audit,
) -> Result<Bytes, Refused> {
    let mut invalid = None;
    let applied = body_policy::apply_noting(bp, mode, headers, &bytes, &mut invalid);
    audit.invalid_value = invalid;
    let outcome = applied?;
    audit.field_labels = outcome.removed.iter().map(|r| bp.field_label(r)).collect();
    audit.removed = outcome.removed;
    audit.fields = outcome.fields;
    if mode == Mode::Report && outcome.would_refuse.is_some() {
        audit.would_refuse = outcome.would_refuse;
    }
    Ok(outcome.replaced.map_or(bytes, Bytes::from))
}

/// `https://host[:port]/normalised-path[?query]`, built from the decided host
/// and port: the path the policy checked is the path sent, and the host the
/// policy matched is, read back from the URI, the host hyper's pool, the TLS
/// SNI, the dialer and the `Host` header take. Any difference fails closed.
fn upstream_uri(target: &target::Target, dest: &Destination) -> Result<Uri, Refused> {
    let host = target.host.uri_host();
    let port = (dest.port != 443).then_some(dest.port);
    let authority = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let mut pq = target.path.clone();
    if let Some(q) = &target.query {
        pq.push('?');
        pq.push_str(q);
    }
    let uri = Uri::builder()
        .scheme("https")
        .authority(authority)
        .path_and_query(pq)
        .build()
        .map_err(|_| Reason::BadRequest)?;
    if uri.host() != Some(host.as_str()) || uri.port_u16() != port || uri.path() != target.path {
        return Err(Reason::BadRequest.into());
    }
    Ok(uri)
}

/// Which party failed, read from the error's source chain.
fn classify_error(e: &(dyn std::error::Error + 'static)) -> Reason {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(c) = err.downcast_ref::<ConnectError>() {
            return c.reason();
        }
        if err.downcast_ref::<TooLarge>().is_some() {
            return Reason::BodyTooLarge;
        }
        cur = err.source();
    }
    Reason::UpstreamUnavailable
}

/// The upstream's answer, made safe for the client: a coding the scrubber
/// could not see through undone (or the answer refused), every form of the
/// secret masked in headers and body, and a decoded body's first bytes read
/// before the head goes out, so a body that does not decode gets a 502.
async fn answer(
    resp: Response<Incoming>,
    dest: &Destination,
    token_forms: Option<Arc<crate::scrub::Forms>>,
    stall: Duration,
) -> Result<Response<ScrubbedBody<Incoming>>, Refused> {
    let (mut parts, body) = resp.into_parts();
    // Forms are derived once per policy (per token for OAuth2): no copy of the key per answer.
    let forms = token_forms.or_else(|| dest.credential.as_ref().map(|c| c.forms.clone()));
    let mut decoder = None;
    if forms.is_some() {
        if let Some(coding) = decode::coding(&parts.headers).map_err(|_| Reason::UpstreamUnavailable)? {
            decoder = Some(decode::Decoder::new(coding));
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
        }
    }
    headers::inbound(&mut parts.headers, forms.as_deref());
    parts.version = Version::HTTP_11;
    let decoding = decoder.is_some();
    let mut body = ScrubbedBody::new(body, forms.map(Scrubber::new), decoder, stall);
    if decoding {
        body.prime().await.map_err(|e| response_body::refusal_reason(&e))?;
    }
    Ok(Response::from_parts(parts, body))
}
