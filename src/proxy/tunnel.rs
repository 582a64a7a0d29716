//! CONNECT tunnels: only to `tunnel: true` destinations, which carry no
//! credential and no body policy. The client hears 200 only once the policy
//! allowed it and the upstream TCP connection is up.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{target, Conn, ProxyBody, Refused};
use crate::policy::Mode;
use crate::proxy::decide::{decide, Verdict};
use crate::store::Snapshot;
use crate::telemetry::audit::Audit;
use crate::upstream::{ConnectError, Counted};
use crate::vocab::Reason;
use tokio_util::sync::CancellationToken;

/// Decides a CONNECT and dials the upstream; the client hears 200 once the
/// handler `start`s the returned tunnel.
pub async fn tunnel(req: Request<Incoming>, snap: &Snapshot, audit: &mut Audit) -> Result<Open, Refused> {
    let target = target::parse(req.method(), req.uri(), req.headers()).map_err(|_| Reason::BadRequest)?;
    let decision = decide(&snap.policy, &target.ask(req.method()));
    audit.path = format!("{}:{}", target.host, target.port.unwrap_or(0));
    audit.destination = decision.destination.map(|d| d.name.clone());
    if decision.destination.is_none() {
        audit.host = Some(target.host.to_string());
    }
    if let Verdict::Refuse(reason) = decision.verdict {
        return Err(reason.into());
    }
    let dest = decision.destination.ok_or(Reason::DestinationNotAllowed)?;
    if dest.intercept {
        // Each request inside is decided, limited and audited on its own.
        let tls = super::intercept::prepare(&target, dest, snap, audit)?;
        return Ok(Open {
            req,
            way: Way::Intercept(tls),
        });
    }
    // A tunnel is a request like any other to the destination's limiter.
    let verdict = crate::fleet::check_request(snap, dest).await;
    super::forward::limit(verdict, dest.mode == Mode::Report, audit)?;
    let port = target.port.unwrap_or(dest.port);
    let upstream = dest
        .upstream
        .dialer
        .dial(target.host.as_str(), port)
        .await
        .map_err(ConnectError::reason)?;
    Ok(Open {
        req,
        way: Way::Blind(upstream),
    })
}

/// An allowed tunnel: a blind one whose upstream connection is up, or an intercepted one.
pub struct Open {
    req: Request<Incoming>,
    way: Way,
}

enum Way {
    Blind(Counted),
    Intercept(super::intercept::Tls),
}

impl Open {
    /// Answers 200 and relays in the background; the relay finishes `audit`.
    pub fn start(self, mut audit: Audit, conn: &Conn) -> Response<ProxyBody> {
        audit.allowed(200);
        match self.way {
            Way::Blind(upstream) => {
                conn.tasks
                    .spawn(relay(self.req, upstream, audit, conn.hard_stop.clone()));
            }
            Way::Intercept(tls) => {
                conn.tasks.spawn(tls.serve(self.req, audit, conn));
            }
        }
        let mut resp = Response::new(Empty::<Bytes>::new().map_err(|never| match never {}).boxed());
        *resp.status_mut() = StatusCode::OK;
        resp
    }
}

/// Copies bytes both ways once the client's connection is handed over,
/// until either side closes or the shutdown grace period is over.
async fn relay(req: Request<Incoming>, mut upstream: Counted, mut audit: Audit, hard_stop: CancellationToken) {
    let Ok(upgraded) = hyper::upgrade::on(req).await else {
        audit.complete = false;
        audit.finish();
        return;
    };
    let mut client = TokioIo::new(upgraded);
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match copied {
            Ok((up, down)) => {
                audit.bytes_in = up;
                audit.bytes_out = down;
            }
            Err(_) => audit.complete = false,
        },
        () = hard_stop.cancelled() => audit.complete = false,
    }
    audit.finish();
}
