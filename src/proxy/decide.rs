//! The pure decision: given a policy and what a request asks for, where may
//! it go and why not. No I/O, no clock: table tests drive it case by case.

use std::sync::Arc;

use http::Method;

use crate::policy::{Destination, Mode, PlainHttp, Policy, Route};
use crate::vocab::Reason;

/// How the client asked to reach the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://` (absolute-form) or origin-form on the unix socket: upgraded to HTTPS.
    Http,
    /// `https://` in absolute-form: already meant as HTTPS.
    Https,
    /// `CONNECT host:port`: an opaque tunnel.
    Connect,
}

/// What a request asks for, after parsing and path normalisation.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub method: &'a Method,
    pub scheme: Scheme,
    /// Lower-case, no trailing dot, no port.
    pub host: &'a str,
    pub port: Option<u16>,
    /// Normalised, without query.
    pub path: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Refuse(Reason),
}

/// A decision and everything that explains it.
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    pub verdict: Verdict,
    pub destination: Option<&'p Arc<Destination>>,
    /// The route that matched; `None` when the destination lists no routes.
    pub route: Option<&'p Route>,
    /// A refusal that `mode: report` let pass; logged as such.
    pub would_refuse: Option<Reason>,
}

impl Decision<'_> {
    /// True when the credential may be injected: only after a route (or the
    /// destination's every-route default) really matched.
    pub fn route_matched(&self) -> bool {
        self.verdict == Verdict::Allow
            && self.would_refuse != Some(Reason::RouteNotAllowed)
            && self
                .destination
                .is_some_and(|d| d.routes.is_none() || self.route.is_some())
    }
}

pub fn decide<'p>(policy: &'p Policy, ask: &Ask<'_>) -> Decision<'p> {
    let refuse = |reason, destination| Decision {
        verdict: Verdict::Refuse(reason),
        destination,
        route: None,
        would_refuse: None,
    };
    let Some(dest) = policy.find_destination(ask.host) else {
        return refuse(Reason::DestinationNotAllowed, None);
    };
    if !port_allowed(dest, ask) {
        return refuse(Reason::DestinationNotAllowed, Some(dest));
    }
    if ask.scheme == Scheme::Connect {
        // A tunnel hides everything the other checks need: never in report mode.
        // Intercepted: every request inside comes back here as its own ask.
        if !dest.tunnel && !dest.intercept {
            return refuse(Reason::TunnelNotAllowed, Some(dest));
        }
        return Decision {
            verdict: Verdict::Allow,
            destination: Some(dest),
            route: None,
            would_refuse: None,
        };
    }
    let report = dest.mode == Mode::Report;
    let mut would_refuse = None;
    if ask.scheme == Scheme::Http && policy.defaults.plain_http == PlainHttp::Refuse {
        if !report {
            return refuse(Reason::PlainHttpRefused, Some(dest));
        }
        would_refuse = Some(Reason::PlainHttpRefused);
    }
    let route = dest.find_route(ask.method, ask.path);
    if dest.routes.is_some() && route.is_none() {
        if !report {
            return refuse(Reason::RouteNotAllowed, Some(dest));
        }
        would_refuse = Some(Reason::RouteNotAllowed);
    }
    Decision {
        verdict: Verdict::Allow,
        destination: Some(dest),
        route,
        would_refuse,
    }
}

/// The port a client names must be the destination's, or the default of the
/// scheme it used (an `http://` URL on port 80 is upgraded to the HTTPS port).
fn port_allowed(dest: &Destination, ask: &Ask<'_>) -> bool {
    match (ask.scheme, ask.port) {
        (_, None) => ask.scheme != Scheme::Connect,
        (_, Some(p)) if p == dest.port => true,
        (Scheme::Http, Some(80)) | (Scheme::Https, Some(443)) => true,
        _ => false,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
