//! Compiling a destination's routes: methods, path glob, mode, and the body
//! policy (allow or deny field paths, what a violation does, what to scan for).

use http::Method;

use super::compile::{at, key};
use super::errors::Errors;
use super::locate::Step;
use super::raw::{self, RawRoute};
use super::*;
use crate::json_filter::{self, FieldPath};

pub(super) fn compile_routes(rs: &[RawRoute], mode: Mode, path: &[Step], errs: &mut Errors) -> Vec<Route> {
    rs.iter()
        .enumerate()
        .filter_map(|(i, r)| compile_route(i, r, mode, &at(path, &[key("routes"), Step::Index(i)]), errs))
        .collect()
}

fn compile_route(index: usize, r: &RawRoute, dest_mode: Mode, path: &[Step], errs: &mut Errors) -> Option<Route> {
    let before = errs.list.len();
    let methods = r.methods.as_ref().map(|ms| {
        ms.iter()
            .filter_map(|m| match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) if m != Method::CONNECT => Some(m),
                _ => {
                    errs.push(
                        &at(path, &[key("methods")]),
                        format!("`{m}` is not a method a route can allow"),
                    );
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let glob = PathGlob::parse(&r.path)
        .map_err(|e| errs.push(&at(path, &[key("path")]), e))
        .ok();
    let body = r
        .body
        .as_ref()
        .and_then(|b| compile_body(b, &at(path, &[key("body")]), errs));
    let query = r
        .query
        .as_ref()
        .and_then(|q| super::query::compile_query(q, &at(path, &[key("query")]), errs));
    if errs.list.len() != before {
        return None;
    }
    Some(Route {
        index,
        methods,
        path: glob?,
        body,
        mode: r.mode.unwrap_or(dest_mode),
        query,
    })
}

fn compile_body(b: &raw::RawBody, path: &[Step], errs: &mut Errors) -> Option<BodyPolicy> {
    let (mode, list, list_key) = match (&b.allow, &b.deny) {
        (Some(a), None) => (json_filter::ListMode::Allow, a, "allow"),
        (None, Some(d)) => (json_filter::ListMode::Deny, d, "deny"),
        _ => {
            errs.push(path, "a body policy has exactly one of `allow` and `deny`");
            return None;
        }
    };
    let mut paths = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        match FieldPath::parse(p) {
            Ok(fp) => paths.push(fp),
            Err(e) => errs.push(&at(path, &[key(list_key), Step::Index(i)]), format!("field path: {e}")),
        }
    }
    let schema = b.schema.as_deref().map(|spec| {
        super::schema::load(super::schema::resolve(spec, errs.dir))
            .map_err(|e| errs.push(&at(path, &[key("schema")]), e))
    });
    if paths.len() != list.len() || matches!(schema, Some(Err(()))) {
        return None;
    }
    Some(BodyPolicy {
        mode,
        paths: list.clone(),
        rules: json_filter::FieldRules::new(mode, paths),
        on_violation: b.on_violation.unwrap_or(OnViolation::Strip),
        scan_cards: b.scan.contains(&raw::Scan::CardNumber),
        schema: schema.and_then(Result::ok),
    })
}
