//! `egress-guard explain`: one request through the policy without sending it.
//! Prints the decision and the exact request that would go upstream, with the
//! secret shown as `<redacted>`. Exit 0 when the request would pass, 1 when it
//! would be refused, 64 when the policy is invalid, 2 on unusable input.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::policy::{self, Policy, Route};
use crate::proxy::body_policy;
use crate::proxy::method_override::FormCheck;
use crate::proxy::plan::plan;
use crate::proxy::{headers, target};
use crate::vocab::Reason;

pub fn run(policy_path: &Path, method: &str, url: &str, body: Option<&str>, raw_headers: &[String]) -> ExitCode {
    let policy = match policy::load_file(policy_path) {
        Ok(p) => p,
        Err(errors) => {
            let _ = writeln!(std::io::stderr(), "{errors}");
            return ExitCode::from(64);
        }
    };
    let input = match read_input(method, url, body, raw_headers) {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "explain: {e}");
            return ExitCode::from(2);
        }
    };
    let (text, allowed) = explain(&policy, input);
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One request to explain.
pub struct Input {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

fn read_input(method: &str, url: &str, body: Option<&str>, raw_headers: &[String]) -> Result<Input, String> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| "not a method")?;
    let uri: Uri = url.parse().map_err(|_| "not a URL")?;
    let mut headers = HeaderMap::new();
    for h in raw_headers {
        let (n, v) = h.split_once(':').ok_or("a header is `Name: value`")?;
        let name = HeaderName::from_bytes(n.trim().as_bytes()).map_err(|_| "bad header name")?;
        let value = HeaderValue::from_str(v.trim()).map_err(|_| "bad header value")?;
        headers.append(name, value);
    }
    let body = match body {
        None => Vec::new(),
        Some("-") => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| format!("stdin: {}", e.kind()))?;
            b
        }
        Some(path) => std::fs::read(path).map_err(|e| format!("{path}: {}", e.kind()))?,
    };
    if !body.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(Input {
        method,
        uri,
        headers,
        body,
    })
}

/// The explanation text and whether the request would pass.
pub fn explain(policy: &Policy, mut input: Input) -> (String, bool) {
    let refused = |r: Reason, why: &str| {
        (
            format!(
                "decision: refuse\nreason: {} ({})\n{why}",
                r.code(),
                r.status().as_u16()
            ),
            false,
        )
    };
    let Ok(t) = target::parse(&input.method, &input.uri, &input.headers) else {
        return refused(Reason::BadRequest, "the URL or its path cannot be read safely\n");
    };
    // The same plan `run` serves by: decision, `_method` in the query, body size, form check.
    let plan = plan(policy, &input.method, &t, &input.headers, Some(input.body.len() as u64));
    let d = plan.decision;
    let query_note = if plan.query.removed.is_empty() {
        String::new()
    } else {
        format!("removed query parameters: {}\n", plan.query.removed.join(", "))
    };
    let Some(dest) = d.destination else {
        return refused(Reason::DestinationNotAllowed, "no destination names this host\n");
    };
    let go = match plan.go {
        Ok(go) => go,
        Err(r) => return refused(r, &format!("destination: {}\n{query_note}", dest.name)),
    };
    let mut text = format!("decision: allow\ndestination: {}\n", dest.name);
    match d.route {
        Some(r) => text.push_str(&format!("route: #{} {}\n", r.index, r.path.text)),
        None if dest.routes.is_none() => text.push_str("route: every method and path\n"),
        None => {}
    }
    if let Some(w) = d.would_refuse {
        text.push_str(&format!("report mode: enforcement would refuse with {}\n", w.code()));
    }
    let mut invalid = None;
    text.push_str(&query_note);
    let body = match d.route {
        Some(route) => match apply_body(route, &input.headers, input.body, &mut text, &mut invalid) {
            Ok(b) => b,
            Err(r) => {
                let why = invalid.map(|i| format!("invalid value: {i}\n")).unwrap_or_default();
                return refused(r, &format!("destination: {}\n{why}", dest.name));
            }
        },
        None => input.body,
    };
    let supplied = headers::outbound(&mut input.headers, dest.credential.as_ref(), d.route_matched());
    // As `run` does: after the credential went in, so report mode can take it back out.
    if let Err(r) = check_form(go.form.as_ref(), &body, &mut input.headers, &mut text) {
        return refused(r, &format!("destination: {}\n", dest.name));
    }
    if supplied > 0 {
        text.push_str(&format!("removed {supplied} credential header(s) the client sent\n"));
    }
    let port = if dest.port == 443 {
        String::new()
    } else {
        format!(":{}", dest.port)
    };
    // As `run` sends it: the query policy's kept parameters, or none left at all.
    let query = match plan.query.replaced {
        Some(q) if q.is_empty() => String::new(),
        Some(q) => format!("?{q}"),
        None => t.query.map(|q| format!("?{q}")).unwrap_or_default(),
    };
    text.push_str(&format!(
        "\n{} https://{}{port}{}{query}\n",
        input.method, t.host, t.path
    ));
    render_request(&input.headers, &body, &mut text);
    (text, true)
}

/// A form's `_method`, checked as `run` checks it; a report-mode finding goes to `text`.
fn check_form(
    form: Option<&FormCheck<'_>>,
    body: &[u8],
    headers: &mut HeaderMap,
    text: &mut String,
) -> Result<(), Reason> {
    let Some(form) = form else { return Ok(()) };
    let mut would_refuse = None;
    form.check(body, headers, &mut would_refuse)?;
    if let Some(w) = would_refuse {
        text.push_str(&format!("report mode: enforcement would refuse with {}\n", w.code()));
    }
    Ok(())
}

/// The route's body policy, as `run` applies it; findings go to `text`,
/// where the body fails the route's `schema` to `invalid`.
fn apply_body(
    route: &Route,
    headers: &HeaderMap,
    body: Vec<u8>,
    text: &mut String,
    invalid: &mut Option<String>,
) -> Result<Vec<u8>, Reason> {
    let Some(bp) = &route.body else { return Ok(body) };
    let o = body_policy::apply_noting(bp, route.mode, headers, &body, invalid)?;
    if let Some(i) = invalid {
        text.push_str(&format!("invalid value: {i}\n"));
    }
    if !o.removed.is_empty() {
        text.push_str(&format!("removed fields: {}\n", o.removed.join(", ")));
    }
    if let Some(w) = o.would_refuse {
        text.push_str(&format!("report mode: enforcement would refuse with {}\n", w.code()));
    }
    Ok(o.replaced.unwrap_or(body))
}

/// Headers and body as they would go upstream; a sensitive value (the key) as `<redacted>`.
fn render_request(headers: &HeaderMap, body: &[u8], text: &mut String) {
    for (name, value) in headers {
        let shown = if value.is_sensitive() {
            "<redacted>".to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        text.push_str(&format!("{name}: {shown}\n"));
    }
    if !body.is_empty() {
        text.push_str(&format!(
            "content-length: {}\n\n{}\n",
            body.len(),
            String::from_utf8_lossy(body)
        ));
    }
}
