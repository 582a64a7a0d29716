//! `egress-guard check FILE`: validates a policy the way `run` would (secrets
//! read included) and prints a one-screen summary, or every error with its line.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::policy::raw::Scan;
use crate::policy::{self, Destination, HostPattern, Mode, Policy, Route};

pub fn run(file: &Path) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match policy::load_file(file) {
        Ok(p) => {
            let _ = out.write_all(summary(&p).as_bytes());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}: {} error(s)", file.display(), errors.0.len());
            for e in &errors.0 {
                let _ = writeln!(err, "  {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The summary `check` prints: what passes where, and what is forwarded unfiltered.
pub fn summary(p: &Policy) -> String {
    let mut s = format!(
        "policy ok (hash {}), plain_http: {}, max body {} bytes\n",
        p.hash, p.defaults.plain_http, p.defaults.max_body_bytes
    );
    if let Some(l) = p.server.listen {
        s.push_str(&format!("listen {l}"));
    }
    if let Some(u) = &p.server.unix_socket {
        s.push_str(&format!(", unix socket {}", u.display()));
    }
    if p.server.client_token.is_some() {
        s.push_str(", client token required");
    }
    if let Some(a) = p.server.admin {
        s.push_str(&format!(", admin {a}"));
    }
    if let Some(f) = &p.server.shared_limits {
        // Never the URL: it may hold a password.
        let (prefix, fallback) = (&f.key_prefix, f.on_unavailable);
        s.push_str(&format!(
            ", fleet limits on Redis (keys {prefix}*, on_unavailable: {fallback})"
        ));
    }
    if let Some(a) = &p.server.audit {
        s.push_str(&format!(
            "\naudit file {} (chained, key read; rotated past {} bytes)",
            a.path.display(),
            a.max_bytes
        ));
    }
    s.push_str(&format!(
        "\nanomaly window {}s\n{} destination(s):\n",
        p.monitor.window.as_secs(),
        p.destinations.len()
    ));
    for d in &p.destinations {
        s.push_str(&destination_summary(d));
    }
    s.push_str(&super::ca::check_notes(p));
    s
}

fn destination_summary(d: &Destination) -> String {
    let host = match &d.host {
        HostPattern::Exact(h) => h.clone(),
        HostPattern::Suffix(sfx) => format!("*{sfx}"),
    };
    let mut s = format!("  {} → {}:{}", d.name, host, d.port);
    if let Some(a) = d.connect_to {
        s.push_str(&format!(" via {a}"));
    }
    if d.mode == Mode::Report {
        s.push_str(&format!(" [mode: {}]", d.mode));
    }
    if d.tunnel {
        s.push_str(" [CONNECT tunnel allowed: no injection, no filtering]");
    }
    if d.intercept {
        s.push_str(" [intercepted: https:// requests decrypted with the local CA, then filtered]");
    }
    s.push('\n');
    if let Some(r) = &d.rate_limit {
        s.push_str(&format!("    rate limit {}/s, burst {}", r.per_second, r.burst));
        if let Some(b) = r.bytes_per_minute {
            s.push_str(&format!(", {b} body bytes per minute"));
        }
        if r.scope == crate::policy::Scope::Fleet {
            s.push_str(", shared by the fleet");
        }
        s.push('\n');
    }
    if let Some(c) = &d.credential {
        s.push_str(&credential_summary(c));
    }
    match &d.routes {
        None => s.push_str("    every method and path; bodies forwarded unchanged\n"),
        Some(routes) => {
            for r in routes {
                s.push_str(&route_summary(r));
            }
        }
    }
    s
}

/// What the credential injects, named by its sources only (never a value),
/// and the age of the secret that `rotate_every` watches.
fn credential_summary(c: &crate::policy::Credential) -> String {
    let others = |i: usize| {
        c.more_sources
            .get(i)
            .map_or_else(|| "?".to_owned(), ToString::to_string)
    };
    let (what, aged) = if let Some(o) = &c.oauth2 {
        let at = o.token_uri.authority().map_or("?", |a| a.as_str());
        let what = format!(
            "Authorization: Bearer (OAuth2 client credentials at {at}, client id from {}, client secret from {})",
            others(0),
            c.source
        );
        (what, "client secret ")
    } else if c.header == http::header::AUTHORIZATION && !c.more_sources.is_empty() {
        let what = format!(
            "Authorization: Basic (username from {}, password from {})",
            others(0),
            c.source
        );
        (what, "password ")
    } else {
        (format!("{} from {}", c.header, c.source), "")
    };
    let age = c.key_age.describe(std::time::SystemTime::now());
    format!("    injects {what}\n    {aged}{age}\n")
}

/// One route's line: methods, path, what happens to the body, in the policy's words.
fn route_summary(r: &Route) -> String {
    let methods = r.methods.as_ref().map_or("any".to_owned(), |ms| {
        ms.iter().map(http::Method::as_str).collect::<Vec<_>>().join(",")
    });
    let body = match &r.body {
        None => "body forwarded unchanged".to_owned(),
        Some(b) => {
            let scan = if b.scan_cards {
                format!(", scan: {}", Scan::CardNumber)
            } else {
                String::new()
            };
            let schema = b
                .schema
                .as_ref()
                .map_or(String::new(), |s| format!(", schema: {}", s.path.display()));
            format!(
                "body filtered ({}, on_violation: {}{scan}{schema})",
                b.mode, b.on_violation
            )
        }
    };
    // Said only when set: a route without `query` passes its query string unchanged.
    let body = match &r.query {
        None => body,
        Some(q) => format!(
            "{body}; query filtered ({}, on_violation: {}{})",
            q.mode,
            q.on_violation,
            if q.scan_cards {
                format!(", scan: {}", Scan::CardNumber)
            } else {
                String::new()
            }
        ),
    };
    let report = if r.mode == Mode::Report {
        format!(" [mode: {}]", r.mode)
    } else {
        String::new()
    };
    format!("    {methods} {}: {body}{report}\n", r.path.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every policy value `check` prints is spelt as the policy file spells it.
    #[test]
    fn summary_speaks_the_policy_words() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k-123").unwrap();
        let text = format!(
            "version: 1\ndefaults:\n  plain_http: refuse\ndestinations:\n  shop:\n    host: api.shop.example\n    mode: report\n    credential:\n      secret: file:{}\n    routes:\n      - methods: [POST]\n        path: /v1/orders\n        mode: report\n        body:\n          deny: [billing]\n          on_violation: reject\n          scan: [card_number]\n",
            key.display()
        );
        let s = summary(&policy::compile(&text).unwrap());
        let cases = [
            ("plain_http", "plain_http: refuse,".to_owned()),
            ("destination mode", "api.shop.example:443 [mode: report]".to_owned()),
            (
                "secret source",
                format!("injects x-api-key from file:{}\n", key.display()),
            ),
            (
                "body, on_violation, scan, route mode",
                "POST /v1/orders: body filtered (deny, on_violation: reject, scan: card_number) [mode: report]"
                    .to_owned(),
            ),
        ];
        for (name, want) in cases {
            assert!(s.contains(&want), "{name}: {want:?} not in\n{s}");
        }
    }
}
