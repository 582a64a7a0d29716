//! `PolicyBuilder`: the policy YAML for the shapes tests use (destinations
//! with connect_to, ca_file, a `file:` secret, routes with body rules, mode,
//! rate limit, tunnel; a server section; defaults), so no test hand-writes
//! indentation. Secrets are always `file:` (never `env:`: `set_var` races).

use std::fmt::Write as _;
use std::path::Path;

use super::{path_str, TestCa, Upstream};

/// A whole policy file.
#[derive(Default, Clone)]
pub struct PolicyBuilder {
    server: Vec<String>,
    defaults: Vec<(String, String)>,
    dests: Vec<Dest>,
}

impl PolicyBuilder {
    pub fn new() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// A `server:` entry, e.g. `("listen", "127.0.0.1:0")`.
    pub fn server(mut self, key: &str, value: &str) -> PolicyBuilder {
        self.server.push(format!("{key}: {value}"));
        self
    }

    /// `server: listen` and `admin` on port 0, as the real binary needs.
    pub fn listen_any(self) -> PolicyBuilder {
        self.server("listen", "127.0.0.1:0").server("admin", "127.0.0.1:0")
    }

    /// A `defaults:` entry; a later one for the same key replaces it.
    pub fn defaults(mut self, key: &str, value: impl ToString) -> PolicyBuilder {
        self.defaults.retain(|(k, _)| k != key);
        self.defaults.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn dest(mut self, d: Dest) -> PolicyBuilder {
        self.dests.push(d);
        self
    }

    pub fn yaml(&self) -> String {
        let mut out = String::from("version: 1\n");
        if !self.server.is_empty() {
            out.push_str("server:\n");
            for l in &self.server {
                let _ = writeln!(out, "  {l}");
            }
        }
        if !self.defaults.is_empty() {
            out.push_str("defaults:\n");
            for (k, v) in &self.defaults {
                let _ = writeln!(out, "  {k}: {v}");
            }
        }
        out.push_str("destinations:\n");
        for d in &self.dests {
            d.write(&mut out);
        }
        out
    }

    /// Writes the YAML to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.yaml()).unwrap();
    }
}

/// One destination.
#[derive(Clone)]
pub struct Dest {
    name: String,
    lines: Vec<String>,
    routes: Vec<Route>,
}

impl Dest {
    pub fn new(name: &str, host: &str) -> Dest {
        Dest {
            name: name.to_owned(),
            lines: vec![format!("host: {host}")],
            routes: Vec::new(),
        }
    }

    /// Any `key: value` line of the destination.
    pub fn set(mut self, key: &str, value: &str) -> Dest {
        self.lines.push(format!("{key}: {value}"));
        self
    }

    pub fn connect_to(self, addr: &str) -> Dest {
        self.set("connect_to", addr)
    }

    /// `connect_to` the recording upstream and trust the test CA.
    pub fn upstream(self, up: &Upstream, ca: &TestCa) -> Dest {
        self.connect_to(&up.connect_to()).set("ca_file", &ca.pem_path())
    }

    /// `credential: secret: file:PATH` (header left to the default).
    pub fn secret(mut self, path: &Path) -> Dest {
        self.lines
            .push(format!("credential:\n  secret: file:{}", path_str(path)));
        self
    }

    /// `credential:` with `header` and `secret: file:PATH`.
    pub fn credential(mut self, header: &str, path: &Path) -> Dest {
        self.lines.push(format!(
            "credential:\n  header: {header}\n  secret: file:{}",
            path_str(path)
        ));
        self
    }

    pub fn mode(self, mode: &str) -> Dest {
        self.set("mode", mode)
    }

    /// `rate_limit: {per_second: N, burst: M}`.
    pub fn rate_limit(self, per_second: u32, burst: u32) -> Dest {
        self.set("rate_limit", &format!("{{per_second: {per_second}, burst: {burst}}}"))
    }

    pub fn tunnel(self) -> Dest {
        self.set("tunnel", "true")
    }

    pub fn route(mut self, r: Route) -> Dest {
        self.routes.push(r);
        self
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "  {}:", self.name);
        for l in &self.lines {
            for part in l.split('\n') {
                let _ = writeln!(out, "    {part}");
            }
        }
        if !self.routes.is_empty() {
            out.push_str("    routes:\n");
            for r in &self.routes {
                r.write(out);
            }
        }
    }
}

/// One route: methods, a path pattern, and body rules.
#[derive(Clone)]
pub struct Route {
    methods: Vec<String>,
    path: String,
    lines: Vec<String>,
    body: Vec<String>,
    query: Vec<String>,
}

impl Route {
    pub fn new(methods: &[&str], path: &str) -> Route {
        Route {
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            path: path.to_owned(),
            lines: Vec::new(),
            body: Vec::new(),
            query: Vec::new(),
        }
    }

    pub fn get(path: &str) -> Route {
        Route::new(&["GET"], path)
    }

    pub fn post(path: &str) -> Route {
        Route::new(&["POST"], path)
    }

    /// The route's own `mode:`.
    pub fn mode(mut self, mode: &str) -> Route {
        self.lines.push(format!("mode: {mode}"));
        self
    }

    fn list(mut self, key: &str, fields: &[&str]) -> Route {
        let quoted: Vec<String> = fields.iter().map(|f| format!("{f:?}")).collect();
        self.body.push(format!("{key}: [{}]", quoted.join(", ")));
        self
    }

    /// `body: allow: [...]` (fields quoted).
    pub fn allow(self, fields: &[&str]) -> Route {
        self.list("allow", fields)
    }

    /// `body: deny: [...]`.
    pub fn deny(self, fields: &[&str]) -> Route {
        self.list("deny", fields)
    }

    /// `body: scan: [...]`.
    pub fn scan(self, kinds: &[&str]) -> Route {
        self.list("scan", kinds)
    }

    /// Any other `body:` entry, e.g. `("on_violation", "reject")`.
    pub fn body(mut self, key: &str, value: &str) -> Route {
        self.body.push(format!("{key}: {value}"));
        self
    }

    /// One `query:` entry, written as given, e.g. `("allow", "[limit, email]")`.
    pub fn query(mut self, key: &str, value: &str) -> Route {
        self.query.push(format!("{key}: {value}"));
        self
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "      - methods: [{}]", self.methods.join(", "));
        let _ = writeln!(out, "        path: {}", self.path);
        for l in &self.lines {
            let _ = writeln!(out, "        {l}");
        }
        if !self.body.is_empty() {
            out.push_str("        body:\n");
            for l in &self.body {
                let _ = writeln!(out, "          {l}");
            }
        }
        if !self.query.is_empty() {
            out.push_str("        query:\n");
            for l in &self.query {
                let _ = writeln!(out, "          {l}");
            }
        }
    }
}

/// Destinations `NAME` at host `NAME.example`, each allowed but pointed at
/// the closed port `closed` (so each answers 502 `upstream_unavailable`),
/// optionally with a `file:` secret; served on `listen: 127.0.0.1:0`.
pub fn closed_dests(names: &[&str], closed: u16, secret: Option<&Path>) -> String {
    let to = format!("127.0.0.1:{closed}");
    let mut p = PolicyBuilder::new().server("listen", "127.0.0.1:0");
    for n in names {
        let mut d = Dest::new(n, &format!("{n}.example")).connect_to(&to);
        if let Some(s) = secret {
            d = d.secret(s);
        }
        p = p.dest(d);
    }
    p.yaml()
}
