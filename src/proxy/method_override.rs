//! `_method` parameters: Laravel, Symfony, Rack and Express's method-override
//! run the method a `_method` query or form parameter names instead of the
//! request's own. One naming a method the matched route does not allow is
//! `route_not_allowed`. Names are read the way PHP reads them (decoded, `.`
//! and spaces as `_`, case-blind here to fail closed).

use http::{header, HeaderMap, Method};

use crate::policy::Mode;
use crate::proxy::decide::{Decision, Verdict};
use crate::vocab::Reason;

/// The methods a `_method` parameter may name on this decision's route, or
/// `None` when any method is allowed there (no routes, or a route for every method).
fn allowed<'p>(decision: &Decision<'p>) -> Option<&'p [Method]> {
    decision.route.and_then(|r| r.methods.as_deref())
}

/// True when the route (or its destination) is in report mode.
fn report(decision: &Decision<'_>) -> bool {
    decision.route.is_some_and(|r| r.mode == Mode::Report)
        || decision.destination.is_some_and(|d| d.mode == Mode::Report)
}

/// Turns an allowed decision into `route_not_allowed` (a would-refuse in report
/// mode, which also keeps the credential out) when the query overrides the method.
pub fn check_query(decision: &mut Decision<'_>, method: &Method, query: Option<&str>) {
    let (Some(allowed), Some(query)) = (allowed(decision), query) else {
        return;
    };
    if decision.verdict != Verdict::Allow || overrides_allowed(query.as_bytes(), method, allowed) {
        return;
    }
    if report(decision) {
        decision.would_refuse = Some(Reason::RouteNotAllowed);
    } else {
        decision.verdict = Verdict::Refuse(Reason::RouteNotAllowed);
    }
}

/// A form body to scan for `_method` once buffered: only when the route limits
/// methods and the body is urlencoded or multipart.
pub struct FormCheck<'p> {
    allowed: &'p [Method],
    method: Method,
    multipart: bool,
    report: bool,
    credential: Option<http::HeaderName>,
}

impl<'p> FormCheck<'p> {
    pub fn new(decision: &Decision<'p>, method: &Method, headers: &HeaderMap) -> Option<FormCheck<'p>> {
        let allowed = allowed(decision)?;
        let kind = form_kind(headers)?;
        Some(FormCheck {
            allowed,
            method: method.clone(),
            multipart: kind == FormKind::Multipart,
            report: report(decision),
            credential: decision
                .destination
                .and_then(|d| d.credential.as_ref())
                .map(|c| c.header.clone()),
        })
    }

    /// Refuses a body that overrides the method; in report mode notes it and
    /// takes the (already injected) credential back out, as for any route refusal.
    pub fn check(&self, body: &[u8], headers: &mut HeaderMap, would_refuse: &mut Option<Reason>) -> Result<(), Reason> {
        let ok = if self.multipart {
            !multipart_names_method(body)
        } else {
            overrides_allowed(body, &self.method, self.allowed)
        };
        if ok {
            return Ok(());
        }
        if !self.report {
            return Err(Reason::RouteNotAllowed);
        }
        *would_refuse = Some(Reason::RouteNotAllowed);
        if let Some(h) = &self.credential {
            headers.remove(h);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormKind {
    Urlencoded,
    Multipart,
}

/// The form kind any `Content-Type` header names (PHP fills `$_POST` from either).
fn form_kind(headers: &HeaderMap) -> Option<FormKind> {
    headers.get_all(header::CONTENT_TYPE).iter().find_map(|v| {
        let essence = v.as_bytes().split(|&b| b == b';').next()?.trim_ascii();
        if essence.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
            Some(FormKind::Urlencoded)
        } else if essence.eq_ignore_ascii_case(b"multipart/form-data") {
            Some(FormKind::Multipart)
        } else {
            None
        }
    })
}

/// True when every `_method` pair in an urlencoded string names `method` itself
/// or one of `allowed`. Pairs split on `&` and on `;` (older Rack).
fn overrides_allowed(form: &[u8], method: &Method, allowed: &[Method]) -> bool {
    form.split(|&b| b == b'&' || b == b';').all(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let name = kv.next().unwrap_or_default();
        let value = kv.next().unwrap_or_default();
        !is_method_name(&decode(name)) || value_allowed(&decode(value), method, allowed)
    })
}

/// `_method` as PHP registers it (leading spaces dropped, `.` and space read
/// as `_`, cut at `[` for array forms or at NUL), or with the spaces kept and
/// read as `_`; compared case-blind to fail closed.
fn is_method_name(name: &[u8]) -> bool {
    let canonical = |name: &[u8]| {
        let base = name.split(|&b| b == b'[' || b == 0).next().unwrap_or_default();
        base.len() == 7
            && base
                .iter()
                .map(|&b| {
                    if b == b'.' || b == b' ' {
                        b'_'
                    } else {
                        b.to_ascii_lowercase()
                    }
                })
                .eq(b"_method".iter().copied())
    };
    canonical(name) || canonical(name.trim_ascii_start())
}

/// An empty value overrides nothing; any other must upper-case to an allowed method.
fn value_allowed(value: &[u8], method: &Method, allowed: &[Method]) -> bool {
    let value = value.trim_ascii();
    if value.is_empty() {
        return true;
    }
    Method::from_bytes(&value.to_ascii_uppercase()).is_ok_and(|m| m == *method || allowed.contains(&m))
}

/// Form decoding: `+` is a space, `%XX` a byte; a malformed escape stays as written (as PHP keeps it).
fn decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let hex = |j: usize| s.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A multipart body with a part named like `_method` (any `name=`/`name*=`
/// parameter, quoted or not, found anywhere: a lenient parser upstream must not
/// find one this scan missed). Its value is not parsed: such a part is refused.
fn multipart_names_method(body: &[u8]) -> bool {
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = find(lower.get(from..).unwrap_or_default(), b"name") {
        let start = from + at + 4;
        from = start;
        let rest = lower.get(start..).unwrap_or_default();
        let rest = rest.strip_prefix(b"*").unwrap_or(rest).trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"=") else { continue };
        let rest = rest.trim_ascii_start();
        let rest = rest.strip_prefix(b"utf-8''").unwrap_or(rest);
        let rest = rest
            .strip_prefix(b"\"")
            .or_else(|| rest.strip_prefix(b"'"))
            .unwrap_or(rest);
        let end = rest
            .iter()
            .position(|&b| matches!(b, b'"' | b'\'' | b';' | b'\r' | b'\n'))
            .unwrap_or(rest.len());
        let name: Vec<u8> = rest
            .get(..end)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|&b| b != b'\\')
            .collect();
        if is_method_name(&decode(&name)) {
            return true;
        }
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[path = "method_override_tests.rs"]
mod tests;
