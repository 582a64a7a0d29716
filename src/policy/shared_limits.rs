//! `server.shared_limits` compiled: where the fleet's shared Redis is (a secret:
//! its URL may carry a password), the prefix of its keys, and what a
//! `scope: fleet` limit does when Redis cannot answer in time.

use std::time::Duration;

use zeroize::Zeroizing;

use super::compile::{at, key};
use super::errors::Errors;
use super::locate::Step;
use super::raw::{OnUnavailable, RawSharedLimits, Scope};
use super::{Destination, Secret, Server, Source};

/// The wait for one Redis answer on the request path, unless the policy says otherwise.
const DEFAULT_TIMEOUT_MS: u64 = 50;
const DEFAULT_PREFIX: &str = "egress-guard:";

#[derive(Clone)]
pub struct SharedLimits {
    /// The Redis URL. Never printed: it may hold a password.
    pub redis: Secret,
    pub key_prefix: String,
    pub on_unavailable: OnUnavailable,
    /// How long a request waits for Redis before `on_unavailable` decides.
    pub timeout: Duration,
}

impl SharedLimits {
    /// The URL as text (checked to be UTF-8 when the policy was compiled).
    pub fn url(&self) -> &str {
        std::str::from_utf8(self.redis.bytes()).unwrap_or_default()
    }
}

impl PartialEq for SharedLimits {
    fn eq(&self, o: &Self) -> bool {
        self.redis.bytes() == o.redis.bytes()
            && self.key_prefix == o.key_prefix
            && self.on_unavailable == o.on_unavailable
            && self.timeout == o.timeout
    }
}
impl Eq for SharedLimits {}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits")
            .field("redis", &"<redacted>")
            .field("key_prefix", &self.key_prefix)
            .field("on_unavailable", &self.on_unavailable)
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub(super) fn compile(raw: Option<&RawSharedLimits>, errs: &mut Errors) -> Option<SharedLimits> {
    let raw = raw?;
    let path = [key("server"), key("shared_limits")];
    let before = errs.list.len();
    let redis = redis_url(&raw.redis, &at(&path, &[key("redis")]), errs);
    let key_prefix = raw.key_prefix.clone().unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    if key_prefix.len() > 128 || !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
        errs.push(
            &at(&path, &[key("key_prefix")]),
            "at most 128 visible ASCII characters (no spaces)",
        );
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(1..=1000).contains(&timeout_ms) {
        errs.push(&at(&path, &[key("timeout_ms")]), "must be 1 to 1000");
    }
    if errs.list.len() != before {
        return None;
    }
    Some(SharedLimits {
        redis: redis?,
        key_prefix,
        on_unavailable: raw.on_unavailable.unwrap_or(OnUnavailable::Local),
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// The URL written in the policy, or read from the secret source named there.
/// Error messages never quote the URL.
fn redis_url(spec: &str, path: &[Step], errs: &mut Errors) -> Option<Secret> {
    let from_source = ["env:", "file:", "credential:"].iter().any(|p| spec.starts_with(p));
    let secret = if from_source {
        Source::parse(spec).and_then(|s| s.read())
    } else {
        Secret::new(Zeroizing::new(spec.as_bytes().to_vec()))
    };
    let secret = secret.map_err(|e| errs.push(path, e)).ok()?;
    match check_url(secret.bytes()) {
        Ok(()) => Some(secret),
        Err(e) => {
            errs.push(path, e);
            None
        }
    }
}

fn check_url(bytes: &[u8]) -> Result<(), &'static str> {
    let url = std::str::from_utf8(bytes).map_err(|_| "the Redis URL is not UTF-8")?;
    if url.starts_with("rediss://") || url.starts_with("valkeys://") {
        return Err("TLS to Redis is not built in: use a Redis on the host or its unix socket");
    }
    let known = ["redis://", "valkey://", "unix://", "redis+unix://"];
    if !known.iter().any(|k| url.starts_with(k)) {
        return Err("expected redis://host:port/db or unix:///path (or a secret source holding one)");
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|_| "not a valid Redis URL (redis://[:password@]host:port/db or unix:///path)")
}

/// A `scope: fleet` limit needs a store to share it through.
pub(super) fn check_scopes(server: &Server, destinations: &[Destination], errs: &mut Errors) {
    if server.shared_limits.is_some() {
        return;
    }
    for d in destinations {
        if d.rate_limit.is_some_and(|r| r.scope == Scope::Fleet) {
            errs.push(
                &[key("destinations"), key(&d.name), key("rate_limit"), key("scope")],
                "`scope: fleet` needs `server.shared_limits` (the Redis the fleet shares)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases: &[(&str, &str, bool)] = &[
            ("tcp with db", "redis://127.0.0.1:6379/0", true),
            ("tcp with password", "redis://:pw@127.0.0.1:6379/2", true),
            ("unix socket", "unix:///run/redis/redis.sock", true),
            ("tls refused", "rediss://127.0.0.1:6380/0", false),
            ("http refused", "http://127.0.0.1:6379", false),
            ("bare host refused", "127.0.0.1:6379", false),
            ("bad port", "redis://127.0.0.1:notaport/0", false),
        ];
        for (name, url, ok) in cases {
            assert_eq!(check_url(url.as_bytes()).is_ok(), *ok, "{name}");
        }
    }

    fn policy(server: &str, scope: &str) -> String {
        format!(
            "version: 1\nserver:\n{server}\ndestinations:\n  shipper:\n    host: api.shipper.example\n    \
             rate_limit: {{per_second: 5, burst: 10, scope: {scope}}}\n"
        )
    }

    /// Each mistake with the key it is reported at; the password never in a message.
    #[test]
    fn policy_mistakes() {
        let shared = |extra: &str| format!("  shared_limits: {{redis: 'redis://:hunter2@127.0.0.1:6379/0'{extra}}}");
        let cases: &[(&str, String, &str, Option<&str>)] = &[
            ("fleet and a store", policy(&shared(""), "fleet"), "fleet", None),
            (
                "host needs no store",
                policy("  listen: 127.0.0.1:3128", "host"),
                "host",
                None,
            ),
            (
                "fleet without a store",
                policy("  listen: 127.0.0.1:3128", "fleet"),
                "fleet",
                Some("destinations.shipper.rate_limit.scope"),
            ),
            (
                "bad url",
                policy("  shared_limits: {redis: 'redis://:hunter2@127.0.0.1:x/0'}", "fleet"),
                "fleet",
                Some("server.shared_limits.redis"),
            ),
            (
                "tls url",
                policy(
                    "  shared_limits: {redis: 'rediss://:hunter2@127.0.0.1:6379/0'}",
                    "fleet",
                ),
                "fleet",
                Some("server.shared_limits.redis"),
            ),
            (
                "prefix with a space",
                policy(&shared(", key_prefix: 'a b'"), "fleet"),
                "fleet",
                Some("server.shared_limits.key_prefix"),
            ),
            (
                "timeout too long",
                policy(&shared(", timeout_ms: 5000"), "fleet"),
                "fleet",
                Some("server.shared_limits.timeout_ms"),
            ),
            (
                "unset env source",
                policy("  shared_limits: {redis: 'env:EG_NO_SUCH_REDIS_URL_VAR'}", "fleet"),
                "fleet",
                Some("server.shared_limits.redis"),
            ),
        ];
        for (name, text, scope, want_err) in cases {
            match (crate::policy::compile(text), want_err) {
                (Ok(p), None) => {
                    let limit = p.destinations[0].rate_limit.unwrap();
                    assert_eq!(limit.scope.yaml_name(), *scope, "{name}");
                    let summary = crate::cli::check::summary(&p);
                    assert!(!summary.contains("hunter2"), "{name}: {summary}");
                    assert_eq!(
                        summary.contains("shared by the fleet"),
                        *scope == "fleet",
                        "{name}: {summary}"
                    );
                }
                (Err(e), Some(key)) => {
                    assert!(e.0.iter().any(|e| e.key == *key), "{name}: {e}");
                    assert!(!e.to_string().contains("hunter2"), "{name}: {e}");
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn errors_and_debug_never_show_the_password() {
        let err = check_url(b"redis://:hunter2@127.0.0.1:notaport/0").unwrap_err();
        assert!(!err.contains("hunter2"));
        let s = SharedLimits {
            redis: Secret::new(Zeroizing::new(b"redis://:hunter2@h:1/0".to_vec())).unwrap(),
            key_prefix: "p:".into(),
            on_unavailable: OnUnavailable::Local,
            timeout: Duration::from_millis(50),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
