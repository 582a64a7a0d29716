//! Compiling `server.intercept_ca` and the `intercept: true` destinations:
//! the CA loaded (its key file private), and interception refused where it
//! cannot hold (no CA, together with `tunnel: true`, an IP-address host).

use std::sync::Arc;

use super::compile::key;
use super::errors::Errors;
use super::raw::{RawInterceptCa, RawPolicy};
use super::Source;
use crate::intercept::{InterceptCa, LoadError};

pub(super) fn compile_ca(raw: Option<&RawInterceptCa>, errs: &mut Errors) -> Option<Arc<InterceptCa>> {
    let raw = raw?;
    let at = |k: &str| [key("server"), key("intercept_ca"), key(k)];
    if !raw.cert.starts_with('/') {
        errs.push(&at("cert"), "needs an absolute path");
        return None;
    }
    let source = Source::parse(&raw.key).map_err(|e| errs.push(&at("key"), e)).ok()?;
    match InterceptCa::load(std::path::Path::new(&raw.cert), &source) {
        Ok(ca) => Some(Arc::new(ca)),
        Err(LoadError::Cert(m)) => {
            errs.push(&at("cert"), m);
            None
        }
        Err(LoadError::Key(m)) => {
            errs.push(&at("key"), m);
            None
        }
    }
}

/// Every `intercept: true` destination needs the CA, a host name, and no `tunnel: true`.
pub(super) fn check_destinations(raw: &RawPolicy, have_ca: bool, errs: &mut Errors) {
    for (name, d) in raw.destinations.iter().filter(|(_, d)| d.intercept) {
        let path = [key("destinations"), key(name), key("intercept")];
        if !have_ca {
            errs.push(
                &path,
                "interception needs `server.intercept_ca` (make one with `egress-guard ca init`)",
            );
        }
        if d.tunnel {
            errs.push(
                &path,
                "a destination is either intercepted or a blind tunnel, not both: remove `tunnel: true`",
            );
        }
        let host = d.host.trim_start_matches("*.").trim_end_matches('.');
        if host.parse::<std::net::IpAddr>().is_ok() {
            errs.push(&path, "interception needs a host name: a certificate is minted for it");
        }
    }
}
