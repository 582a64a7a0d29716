//! `egress-guard check FILE`: validates a policy the way `run` would (secrets
//! read included) and prints a one-screen summary, or every error with its line.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::policy::{self, Destination, HostPattern, Mode, Policy, Source};

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
        "policy ok (hash {}), plain http: {:?}, max body {} bytes\n",
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
    s.push_str(&format!(
        "\nanomaly window {}s\n{} destination(s):\n",
        p.monitor.window.as_secs(),
        p.destinations.len()
    ));
    for d in &p.destinations {
        s.push_str(&destination_summary(d));
    }
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
        s.push_str(" [report only]");
    }
    if d.tunnel {
        s.push_str(" [CONNECT tunnel allowed: no injection, no filtering]");
    }
    s.push('\n');
    if let Some(r) = &d.rate_limit {
        s.push_str(&format!("    rate limit {}/s, burst {}", r.per_second, r.burst));
        if let Some(b) = r.bytes_per_minute {
            s.push_str(&format!(", {b} body bytes per minute"));
        }
        s.push('\n');
    }
    if let Some(c) = &d.credential {
        let from = match &c.source {
            Source::Env(n) => format!("env {n}"),
            Source::File(p) => format!("file {}", p.display()),
            Source::Credential(n) => format!("systemd credential {n}"),
        };
        s.push_str(&format!("    injects {} from {from}\n", c.header));
    }
    match &d.routes {
        None => s.push_str("    every method and path; bodies forwarded unchanged\n"),
        Some(routes) => {
            for r in routes {
                let methods = r.methods.as_ref().map_or("any".to_owned(), |ms| {
                    ms.iter().map(http::Method::as_str).collect::<Vec<_>>().join(",")
                });
                let body = match &r.body {
                    None => "body forwarded unchanged".to_owned(),
                    Some(b) => format!(
                        "body filtered ({:?}, on violation {:?}{})",
                        b.mode,
                        b.on_violation,
                        if b.scan_cards { ", card numbers refused" } else { "" }
                    ),
                };
                let report = if r.mode == Mode::Report { " [report only]" } else { "" };
                s.push_str(&format!("    {methods} {}: {body}{report}\n", r.path.text));
            }
        }
    }
    s
}
