//! The validated policy: what the proxy enforces, in a form that cannot be
//! invalid. `load_file`/`load_str` parse (`raw`), then compile (`compile`);
//! every later module reads only these types.

pub mod audit_file;
mod compile;
mod credential;
mod errors;
mod intercept;
pub mod key_age;
pub mod locate;
pub mod query;
pub mod raw;
mod routes;
pub mod schema;
pub mod secret;
mod shared_limits;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method};

use crate::json_filter::FieldRules;
use crate::upstream::Upstream;
pub use compile::{compile, compile_in, compile_with, PolicyError, PolicyErrors};
pub use raw::{Mode, OnViolation, PlainHttp};
pub use raw::{OnUnavailable, Scope};
pub use secret::{Secret, Source};
pub use shared_limits::SharedLimits;

/// The repo's policy.yaml, built in: `run` serves it when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../policy.yaml");

/// A compiled policy. Immutable: a reload builds a new one.
#[derive(Debug)]
pub struct Policy {
    pub server: Server,
    pub defaults: Defaults,
    pub destinations: Vec<Arc<Destination>>,
    /// Anomaly thresholds (`monitor:`), defaults filled in.
    pub monitor: crate::vocab::Thresholds,
    /// First 12 hex digits of the SHA-256 of the policy text.
    pub hash: String,
    /// The proxy's own side its dialers share (own addresses, open connections).
    pub side: Arc<crate::upstream::ProxySide>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub listen: Option<SocketAddr>,
    pub unix_socket: Option<PathBuf>,
    pub admin: Option<SocketAddr>,
    pub client_token: Option<ClientToken>,
    /// `audit_file`, `audit_key`, `audit_max_bytes`: the hash-chained audit file.
    pub audit: Option<audit_file::AuditFileConfig>,
    /// `intercept_ca`: the CA that signs leaves for `intercept: true` destinations.
    pub intercept_ca: Option<Arc<crate::intercept::InterceptCa>>,
    /// `shared_limits`: the Redis through which `scope: fleet` limits are shared.
    pub shared_limits: Option<SharedLimits>,
}

impl Server {
    /// Whether `other` differs in a key read only at start (the listeners, the
    /// audit file, the fleet store). `client_token` and `intercept_ca` are read
    /// per request from the current policy, so a reload applies them at once.
    pub fn differs_at_start(&self, other: &Server) -> bool {
        (
            &self.listen,
            &self.unix_socket,
            &self.admin,
            &self.audit,
            &self.shared_limits,
        ) != (
            &other.listen,
            &other.unix_socket,
            &other.admin,
            &other.audit,
            &other.shared_limits,
        )
    }
}

/// The token clients present as the Basic password. Compared in constant time.
#[derive(Clone)]
pub struct ClientToken(pub Secret);

impl PartialEq for ClientToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.bytes() == other.0.bytes()
    }
}
impl Eq for ClientToken {}
impl std::fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientToken(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub plain_http: PlainHttp,
    pub max_body_bytes: u64,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.shop.example`: stores `.shop.example`; matches one or more labels before it.
    Suffix(String),
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

#[derive(Debug)]
pub struct Destination {
    /// Position in `Policy::destinations` (and in a snapshot's limiters).
    pub index: usize,
    pub name: String,
    pub host: HostPattern,
    pub port: u16,
    pub connect_to: Option<SocketAddr>,
    pub credential: Option<Credential>,
    pub rate_limit: Option<RateLimit>,
    /// `None`: every method and path.
    pub routes: Option<Vec<Route>>,
    pub tunnel: bool,
    pub mode: Mode,
    pub upstream: Upstream,
    /// `intercept: true`: a CONNECT is answered with our own TLS and each request inside forwarded.
    pub intercept: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    pub bytes_per_minute: Option<u64>,
    /// `host` (this proxy alone) or `fleet` (shared through `server.shared_limits`).
    pub scope: Scope,
}

#[derive(Debug)]
pub struct Credential {
    /// Lower-case; compared to client headers with `_` read as `-`.
    pub header: HeaderName,
    /// Prefix and secret, marked sensitive; shares the wiped buffer.
    pub value: HeaderValue,
    /// The bare secret.
    pub secret: Secret,
    /// Every spelling of the secret scrubbed from answers, derived once (wiped on drop).
    pub forms: std::sync::Arc<crate::scrub::Forms>,
    pub source: Source,
    /// `oauth2:`: the token endpoint; `value` is then a placeholder each
    /// request replaces with the token (see `credentials`).
    pub oauth2: Option<Arc<crate::credentials::OAuth2>>,
    /// The other secret sources the credential read (`username`, `client_id`):
    /// their files are watched like `source`'s.
    pub more_sources: Vec<Source>,
    /// `rotate_every` and when the secret's file last changed.
    pub key_age: key_age::KeyAge,
}

#[derive(Debug)]
pub struct Route {
    pub index: usize,
    /// `None`: any method.
    pub methods: Option<Vec<Method>>,
    pub path: PathGlob,
    pub body: Option<BodyPolicy>,
    pub mode: Mode,
    /// `None`: the query string passes unchanged.
    pub query: Option<query::QueryPolicy>,
}

#[derive(Debug)]
pub struct BodyPolicy {
    pub mode: crate::json_filter::ListMode,
    /// The field paths as the policy writes them (metric labels).
    pub paths: Vec<String>,
    pub rules: FieldRules,
    pub on_violation: OnViolation,
    pub scan_cards: bool,
    /// `schema:`: what the filtered body must satisfy.
    pub schema: Option<schema::Schema>,
}

/// A route path: `*` is one segment, `**` (last) any rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    pub text: String,
    segments: Vec<GlobSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobSegment {
    Literal(String),
    One,
    Rest,
}

impl PathGlob {
    pub fn parse(text: &str) -> Result<PathGlob, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("a route path starts with `/`".to_owned());
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "*" => GlobSegment::One,
                "**" if i + 1 == parts.len() => GlobSegment::Rest,
                "**" => return Err("`**` may only end a route path".to_owned()),
                "." | ".." => return Err("a route path holds no `.` or `..` segment".to_owned()),
                p if p.contains('*') => return Err("`*` stands for a whole segment".to_owned()),
                p if p.contains('%') || p.contains('?') || p.contains('#') => {
                    return Err("a route path holds no `%`, `?` or `#`".to_owned())
                }
                p => GlobSegment::Literal(p.to_owned()),
            });
        }
        if rest.contains("//") {
            return Err("a route path holds no empty segment".to_owned());
        }
        Ok(PathGlob {
            text: text.to_owned(),
            segments,
        })
    }

    /// `path` is normalised (see `pathnorm`) and has no query.
    pub fn matches(&self, path: &str) -> bool {
        let mut parts = path.strip_prefix('/').unwrap_or(path).split('/');
        for seg in &self.segments {
            match seg {
                GlobSegment::Rest => return true,
                GlobSegment::One => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                GlobSegment::Literal(l) => match parts.next() {
                    Some(p) if p == l => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

impl BodyPolicy {
    /// The metric label for a removed field: its deny-list path when the
    /// policy names it (deny lists ignore ASCII case, so `Customer_Note` counts
    /// as `customer_note`), otherwise "(other)" (client-made names never become labels).
    pub fn field_label(&self, removed: &str) -> String {
        match self.paths.iter().find(|p| p.eq_ignore_ascii_case(removed)) {
            Some(p) if self.mode == crate::json_filter::ListMode::Deny => p.clone(),
            _ => "(other)".to_owned(),
        }
    }
}

impl Policy {
    pub fn find_destination(&self, host: &str) -> Option<&Arc<Destination>> {
        self.destinations.iter().find(|d| d.host.matches(host))
    }
}

impl Destination {
    /// The route that allows `method` on `path`, first match wins.
    pub fn find_route(&self, method: &Method, path: &str) -> Option<&Route> {
        self.routes
            .as_ref()?
            .iter()
            .find(|r| r.methods.as_ref().is_none_or(|ms| ms.contains(method)) && r.path.matches(path))
    }
}

/// Reads and compiles a policy file.
pub fn load_file(path: &std::path::Path) -> Result<Policy, PolicyErrors> {
    load_file_with(path, &Arc::default())
}

/// `load_file`, the dialers sharing `side` (see `compile_with`).
pub fn load_file_with(path: &std::path::Path, side: &Arc<crate::upstream::ProxySide>) -> Result<Policy, PolicyErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        PolicyErrors(vec![PolicyError {
            line: None,
            key: String::new(),
            message: format!("cannot read {}: {}", path.display(), e.kind()),
        }])
    })?;
    compile_in(&text, path.parent(), side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_globs() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("literal", "/v1/shipments", "/v1/shipments", true),
            ("literal other", "/v1/shipments", "/v1/shipment", false),
            ("literal longer", "/v1/shipments", "/v1/shipments/1", false),
            ("star one", "/v1/shipments/*", "/v1/shipments/42", true),
            ("star not two", "/v1/shipments/*", "/v1/shipments/42/x", false),
            ("star not empty", "/v1/shipments/*", "/v1/shipments/", false),
            ("rest", "/v1/**", "/v1/a/b/c", true),
            ("rest zero", "/v1/**", "/v1", true),
            ("rest other", "/v1/**", "/v2/a", false),
            ("root", "/", "/", true),
            ("trailing slash differs", "/v1/x", "/v1/x/", false),
        ];
        for (name, glob, path, want) in cases {
            assert_eq!(PathGlob::parse(glob).unwrap().matches(path), *want, "{name}");
        }
    }

    #[test]
    fn bad_globs() {
        for g in ["v1", "/a/**/b", "/a/b*", "/a/../b", "/a//b", "/a%2f"] {
            assert!(PathGlob::parse(g).is_err(), "{g}");
        }
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::Exact("api.shop.example".into());
        let suffix = HostPattern::Suffix(".shop.example".into());
        assert!(exact.matches("api.shop.example"));
        assert!(!exact.matches("x.api.shop.example"));
        assert!(suffix.matches("api.shop.example"));
        assert!(suffix.matches("a.b.shop.example"));
        assert!(!suffix.matches("shop.example"));
        assert!(!suffix.matches("evilshop.example"));
    }
}
