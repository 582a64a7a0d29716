//! `egress-guard ca init`: makes the local interception CA, name-constrained
//! to the policy's `intercept: true` hosts and any `--permit` host; and the
//! note `check` prints when an intercepted host falls outside the CA's constraints.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::intercept::init;
use crate::policy::{HostPattern, Policy};

/// Writes `ca.pem` and `ca.key` into `dir`; exit 1 with one line on any error.
pub fn init(dir: &Path, policy: Option<&Path>, permit: &[String], force: bool) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let mut hosts: Vec<String> = permit.to_vec();
    if let Some(p) = policy {
        match intercept_hosts(p) {
            Ok(h) => hosts.extend(h),
            Err(e) => {
                let _ = writeln!(err, "egress-guard ca init: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let made =
        init::permitted_names(hosts.iter().map(String::as_str)).and_then(|names| init::write(dir, &names, force));
    match made {
        Ok(m) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "CA certificate: {}\nCA key (mode 0600): {}\npermitted host names (and their subdomains): {}\n\
                 next: trust {} in the clients (CURLOPT_CAINFO, update-ca-certificates) and name both files in server.intercept_ca",
                m.cert.display(),
                m.key.display(),
                m.permitted.join(", "),
                m.cert.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "egress-guard ca init: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The hosts of the `intercept: true` destinations, read from the policy's
/// YAML alone: the CA it names may not exist yet.
fn intercept_hosts(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    let raw = crate::policy::raw::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(raw
        .destinations
        .values()
        .filter(|d| d.intercept)
        .map(|d| d.host.clone())
        .collect())
}

/// `check`'s lines on interception: what the CA permits, and a warning for
/// each intercepted host it may not vouch for (the proxy refuses to intercept
/// those), or for a CA without name constraints at all.
pub fn check_notes(p: &Policy) -> String {
    let Some(ca) = &p.server.intercept_ca else {
        return String::new();
    };
    let mut s = String::new();
    if ca.permitted().is_none() {
        s.push_str("warning: server.intercept_ca has no X.509 name constraints: the proxy mints no certificate with it (make one with `egress-guard ca init`)\n");
        return s;
    }
    if let Some(names) = ca.permitted() {
        s.push_str(&format!("interception CA permits: {}\n", names.join(", ")));
    }
    for d in p.destinations.iter().filter(|d| d.intercept) {
        if !ca.permits_pattern(&d.host) {
            let host = match &d.host {
                HostPattern::Exact(h) => h.clone(),
                HostPattern::Suffix(sfx) => format!("*{sfx}"),
            };
            s.push_str(&format!(
                "warning: destination `{}`: {host} is outside the interception CA's name constraints: its CONNECTs will be refused (run `egress-guard ca init --force` with this host)\n",
                d.name
            ));
        }
    }
    s
}
