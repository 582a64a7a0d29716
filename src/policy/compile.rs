//! Raw policy → validated [`Policy`]. Every mistake is collected with its key
//! path and line, so `check` can list them all in one go.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::errors::Errors;
pub use super::errors::{PolicyError, PolicyErrors};
use super::locate::Step;
use super::raw::{self, RawDestination, RawPolicy};
use super::routes::compile_routes;
use super::*;
use crate::upstream::{ProxySide, TrustRoots, Upstream};

pub(super) fn key(k: &str) -> Step {
    Step::Key(k.to_owned())
}

pub(super) fn at(base: &[Step], more: &[Step]) -> Vec<Step> {
    base.iter().chain(more).cloned().collect()
}

/// Parses and validates a policy text, secrets read included. Its dialers
/// share a proxy side of their own (a reload passes the one in force instead).
pub fn compile(text: &str) -> Result<Policy, PolicyErrors> {
    compile_with(text, &Arc::default())
}

/// `compile`, the dialers sharing `side`: the addresses the proxy serves on
/// and its open-connection count carry over from the policy being replaced.
pub fn compile_with(text: &str, side: &Arc<ProxySide>) -> Result<Policy, PolicyErrors> {
    compile_in(text, None, side)
}

/// `compile_with` for a policy read from a file in `dir`: relative paths in
/// it (`schema:` files) are read from there, not from the current directory.
pub fn compile_in(text: &str, dir: Option<&std::path::Path>, side: &Arc<ProxySide>) -> Result<Policy, PolicyErrors> {
    let raw: RawPolicy = raw::parse(text)?;
    let mut errs = Errors {
        text,
        list: Vec::new(),
        dir,
    };
    if raw.version != 1 {
        errs.push(&[key("version")], "only version 1 is known");
    }
    let server = compile_server(&raw.server, &mut errs);
    let defaults = compile_defaults(&raw.defaults, &mut errs);
    let roots = TrustRoots::system().map_err(|e| errs.push(&[], e)).ok();
    let out = roots.as_ref().map(|r| (r, side));
    let mut destinations: Vec<Destination> = Vec::new();
    for (name, d) in &raw.destinations {
        let path = [key("destinations"), key(name)];
        if let Some(dest) = compile_destination(name, d, &defaults, out, &path, &mut errs) {
            destinations.push(dest);
        }
    }
    check_overlaps(&destinations, &mut errs);
    super::intercept::check_destinations(&raw, server.intercept_ca.is_some(), &mut errs);
    super::shared_limits::check_scopes(&server, &destinations, &mut errs);
    // Exact hosts before wildcards, longer suffixes before shorter: the most
    // specific destination wins, whatever order the file lists them in.
    destinations.sort_by_key(|d| match &d.host {
        HostPattern::Exact(_) => (0, 0),
        HostPattern::Suffix(s) => (1, usize::MAX - s.len()),
    });
    let destinations: Vec<Arc<Destination>> = destinations
        .into_iter()
        .enumerate()
        .map(|(index, d)| Arc::new(Destination { index, ..d }))
        .collect();
    let monitor = compile_monitor(&raw.monitor, &mut errs);
    if !errs.list.is_empty() {
        return Err(PolicyErrors(errs.list));
    }
    let hash = super::schema::fold_hash(short_hash(text), super::schema::every(&destinations));
    Ok(Policy {
        server,
        defaults,
        destinations,
        monitor,
        hash,
        side: side.clone(),
    })
}

fn short_hash(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn parse_addr(s: Option<&str>, path: &[Step], errs: &mut Errors) -> Option<SocketAddr> {
    let s = s?;
    match s.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(path, "expected an address like 127.0.0.1:3128 or [::1]:3128");
            None
        }
    }
}

fn compile_server(raw: &raw::RawServer, errs: &mut Errors) -> Server {
    let listen = parse_addr(
        Some(raw.listen.as_deref().unwrap_or("127.0.0.1:3128")),
        &[key("server"), key("listen")],
        errs,
    );
    let admin = parse_addr(raw.admin.as_deref(), &[key("server"), key("admin")], errs);
    let unix_socket = raw.unix_socket.as_ref().and_then(|p| {
        if p.starts_with('/') {
            Some(std::path::PathBuf::from(p))
        } else {
            errs.push(&[key("server"), key("unix_socket")], "needs an absolute path");
            None
        }
    });
    let client_token = raw.client_token.as_ref().and_then(|spec| {
        let path = [key("server"), key("client_token")];
        match Source::parse(spec).and_then(|s| s.read()) {
            Ok(secret) => Some(ClientToken(secret)),
            Err(e) => {
                errs.push(&path, e);
                None
            }
        }
    });
    let audit = super::audit_file::compile(raw, errs);
    Server {
        listen,
        unix_socket,
        admin,
        client_token,
        audit,
        intercept_ca: super::intercept::compile_ca(raw.intercept_ca.as_ref(), errs),
        shared_limits: super::shared_limits::compile(raw.shared_limits.as_ref(), errs),
    }
}

fn compile_monitor(raw: &raw::RawMonitor, errs: &mut Errors) -> crate::vocab::Thresholds {
    let d = crate::vocab::Thresholds::default();
    let t = crate::vocab::Thresholds {
        window: raw.window_seconds.map_or(d.window, std::time::Duration::from_secs),
        warmup_windows: raw.warmup_windows.unwrap_or(d.warmup_windows),
        spike_factor: raw.spike_factor.unwrap_or(d.spike_factor),
        spike_min_requests: raw.spike_min_requests.unwrap_or(d.spike_min_requests),
        refusal_burst: raw.refusal_burst.unwrap_or(d.refusal_burst),
        unknown_destinations: raw.unknown_destinations.unwrap_or(d.unknown_destinations),
        auth_failures: raw.auth_failures.unwrap_or(d.auth_failures),
        body_factor: raw.body_factor.unwrap_or(d.body_factor),
        body_min_bytes: raw.body_min_bytes.unwrap_or(d.body_min_bytes),
        body_warmup: raw.body_warmup.unwrap_or(d.body_warmup),
        field_warmup: raw.field_warmup.unwrap_or(d.field_warmup),
        max_fields_per_route: raw.max_fields_per_route.unwrap_or(d.max_fields_per_route).min(4096),
    };
    if t.window.is_zero() || t.window > std::time::Duration::from_secs(86_400) {
        errs.push(&[key("monitor"), key("window_seconds")], "must be 1 to 86400");
    }
    for (name, f) in [("spike_factor", t.spike_factor), ("body_factor", t.body_factor)] {
        if !(f.is_finite() && f > 1.0) {
            errs.push(&[key("monitor"), key(name)], "must be a number above 1");
        }
    }
    t
}

fn compile_defaults(raw: &raw::RawDefaults, errs: &mut Errors) -> Defaults {
    let d = Defaults {
        plain_http: raw.plain_http.unwrap_or(PlainHttp::Upgrade),
        max_body_bytes: raw.max_body_bytes.unwrap_or(1_048_576),
        connect_timeout_ms: raw.connect_timeout_ms.unwrap_or(5_000),
        request_timeout_ms: raw.request_timeout_ms.unwrap_or(30_000),
    };
    for (name, v) in [
        ("max_body_bytes", d.max_body_bytes),
        ("connect_timeout_ms", d.connect_timeout_ms),
        ("request_timeout_ms", d.request_timeout_ms),
    ] {
        if v == 0 {
            errs.push(&[key("defaults"), key(name)], "must be greater than 0");
        }
    }
    d
}

fn compile_host(host: &str) -> Result<HostPattern, String> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let (pattern, name) = match h.strip_prefix("*.") {
        Some(rest) => (HostPattern::Suffix(format!(".{rest}")), rest.to_owned()),
        None => (HostPattern::Exact(h.clone()), h.clone()),
    };
    let valid_label =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let is_ip = name.parse::<std::net::IpAddr>().is_ok();
    if name.is_empty() || name.len() > 253 || !(is_ip || name.split('.').all(valid_label)) {
        return Err("expected a host name like api.shipper.example or *.shipper.example".to_owned());
    }
    if is_ip && matches!(pattern, HostPattern::Suffix(_)) {
        return Err("a wildcard needs a domain name".to_owned());
    }
    Ok(pattern)
}

fn compile_destination(
    name: &str,
    d: &RawDestination,
    defaults: &Defaults,
    roots: Option<(&TrustRoots, &Arc<ProxySide>)>,
    path: &[Step],
    errs: &mut Errors,
) -> Option<Destination> {
    let before = errs.list.len();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        errs.push(path, "a destination name uses letters, digits, `_` and `-` only");
    }
    let host = compile_host(&d.host)
        .map_err(|e| errs.push(&at(path, &[key("host")]), e))
        .ok();
    let port = d.port.unwrap_or(443);
    if port == 0 {
        errs.push(&at(path, &[key("port")]), "must be 1 to 65535");
    }
    let connect_to = parse_addr(d.connect_to.as_deref(), &at(path, &[key("connect_to")]), errs);
    let credential = d
        .credential
        .as_ref()
        .and_then(|c| compile_credential(c, roots, defaults, &at(path, &[key("credential")]), errs));
    let rate_limit = d
        .rate_limit
        .as_ref()
        .and_then(|r| compile_rate_limit(r, &at(path, &[key("rate_limit")]), errs));
    let mode = d.mode.unwrap_or(Mode::Enforce);
    let routes = d.routes.as_ref().map(|rs| compile_routes(rs, mode, path, errs));
    if d.tunnel && (credential.is_some() || routes.iter().flatten().any(|r| r.body.is_some() || r.query.is_some())) {
        errs.push(
            &at(path, &[key("tunnel")]),
            "a tunnel cannot carry a credential or a body policy: the proxy cannot see inside it",
        );
    }
    // Building the client reads `ca_file`; without trust roots there is nothing to build on.
    let upstream = roots.and_then(|out| upstream(out, d, connect_to, defaults, path, errs));
    if errs.list.len() != before {
        return None;
    }
    Some(Destination {
        index: 0,
        name: name.to_owned(),
        host: host?,
        port,
        connect_to,
        credential,
        rate_limit,
        routes,
        tunnel: d.tunnel,
        mode,
        upstream: upstream?,
        intercept: d.intercept,
    })
}

/// The destination's way out, its `ca_file` read; its dialer shares `side`.
fn upstream(
    (roots, side): (&TrustRoots, &Arc<ProxySide>),
    d: &RawDestination,
    connect_to: Option<SocketAddr>,
    defaults: &Defaults,
    path: &[Step],
    errs: &mut Errors,
) -> Option<Upstream> {
    let timeout = defaults.connect_timeout_ms;
    Upstream::new(roots, d.ca_file.as_deref(), connect_to, timeout, side)
        .map_err(|e| errs.push(&at(path, &[key("ca_file")]), e))
        .ok()
}

/// Headers the proxy owns or that frame the message: a credential there
/// would be dropped or would break the request.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "content-type",
    "content-encoding",
];

fn compile_credential(
    c: &raw::RawCredential,
    out: Option<(&TrustRoots, &Arc<ProxySide>)>,
    defaults: &Defaults,
    path: &[Step],
    errs: &mut Errors,
) -> Option<Credential> {
    if c.basic.is_some() || c.oauth2.is_some() {
        return super::credential::compile(c, out, defaults, path, errs);
    }
    let Some(secret_spec) = c.secret.as_deref() else {
        errs.push(
            path,
            "a credential needs `secret` (or is a `basic:` or `oauth2:` block)",
        );
        return None;
    };
    let header_text = c.header.as_deref().unwrap_or("X-API-KEY").to_ascii_lowercase();
    let header = match HeaderName::from_bytes(header_text.as_bytes()) {
        Ok(h) if !RESERVED_HEADERS.contains(&h.as_str()) && !header_text.contains('_') => Some(h),
        _ => {
            errs.push(&at(path, &[key("header")]), "not a header name the proxy can inject");
            None
        }
    };
    let prefix = c.prefix.as_deref().unwrap_or("");
    if prefix.bytes().any(|b| b.is_ascii_control()) {
        errs.push(&at(path, &[key("prefix")]), "holds a control character");
    }
    let secret_path = at(path, &[key("secret")]);
    let source = Source::parse(secret_spec)
        .map_err(|e| errs.push(&secret_path, e))
        .ok()?;
    // Before the read: a file replaced in between makes the age too old, never too young.
    let key_age = super::key_age::KeyAge::read(c.rotate_every.as_deref(), &source)
        .map_err(|e| errs.push(&at(path, &[key("rotate_every")]), e))
        .ok()?;
    let secret = source.read().map_err(|e| errs.push(&secret_path, e)).ok()?;
    let full = secret.with_prefix(prefix);
    let mut value = match HeaderValue::from_maybe_shared(full.bytes().clone()) {
        Ok(v) => v,
        Err(_) => {
            errs.push(&secret_path, "the secret is not a valid header value");
            return None;
        }
    };
    value.set_sensitive(true);
    let forms = std::sync::Arc::new(crate::scrub::Forms::new([secret.bytes().as_ref()]));
    Some(Credential {
        header: header?,
        value,
        forms,
        secret,
        source,
        oauth2: None,
        more_sources: Vec::new(),
        key_age,
    })
}

fn compile_rate_limit(r: &raw::RawRateLimit, path: &[Step], errs: &mut Errors) -> Option<RateLimit> {
    if !(r.per_second.is_finite() && r.per_second > 0.0 && r.per_second <= 1_000_000.0) {
        errs.push(
            &at(path, &[key("per_second")]),
            "must be a number above 0 and at most 1000000",
        );
        return None;
    }
    let burst = r.burst.unwrap_or_else(|| (r.per_second.ceil() as u32).max(1));
    if burst == 0 {
        errs.push(&at(path, &[key("burst")]), "must be at least 1");
        return None;
    }
    if r.bytes_per_minute == Some(0) {
        errs.push(&at(path, &[key("bytes_per_minute")]), "must be greater than 0");
        return None;
    }
    Some(RateLimit {
        per_second: r.per_second,
        burst,
        bytes_per_minute: r.bytes_per_minute,
        scope: r.scope.unwrap_or(Scope::Host),
    })
}

fn check_overlaps(dests: &[Destination], errs: &mut Errors) {
    for (i, a) in dests.iter().enumerate() {
        for b in dests.iter().skip(i + 1) {
            if a.host == b.host {
                errs.push(
                    &[key("destinations"), key(&b.name), key("host")],
                    format!("same host as destination `{}`", a.name),
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
