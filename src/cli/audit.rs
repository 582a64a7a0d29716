//! `egress-guard audit verify FILE...`: walks the chain of one audit file or
//! of rotated files given oldest first. Exit 0 when every line verifies, 1
//! with the first bad line (`FILE:LINE: why`), 2 when the key cannot be had.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::policy::audit_file::{read_key, AuditKey};
use crate::telemetry::audit_file::chain::{Chain, ChainKey};
use crate::telemetry::audit_file::verify::Walk;

/// Where the key comes from: a secret source, or the policy's `server.audit_key`.
pub enum KeyFrom<'a> {
    Source(&'a str),
    Policy(&'a Path),
}

/// What `verify` checks besides the chain itself.
pub struct Options<'a> {
    pub allow_breaks: bool,
    /// A chain head logged earlier (`audit chain head`): it must be in the files.
    pub anchor: Option<&'a str>,
}

pub fn verify(files: &[PathBuf], key: KeyFrom<'_>, opts: &Options<'_>) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let key = match load_key(key) {
        Ok(k) => ChainKey::new(k.0.bytes()),
        Err(e) => {
            let _ = writeln!(err, "audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    let mut walk = Walk::new(&key, opts.allow_breaks);
    if let Some(text) = opts.anchor {
        match Chain::parse(text) {
            Some(a) => walk = walk.anchored(a),
            None => {
                let _ = writeln!(err, "audit verify: --anchor takes a chain: 64 lowercase hex digits");
                return ExitCode::from(2);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                let _ = writeln!(err, "{}: cannot read: {}", file.display(), e.kind());
                return ExitCode::FAILURE;
            }
        };
        let before = walk.notes.len();
        let result = walk.file(&bytes);
        for n in walk.notes.get(before..).unwrap_or_default() {
            let _ = writeln!(out, "{}:{}: note: {}", file.display(), n.line, n.text);
        }
        if let Err(bad) = result {
            let _ = writeln!(err, "{}:{}: {}", file.display(), bad.line, bad.why);
            return ExitCode::FAILURE;
        }
    }
    if opts.anchor.is_some() && !walk.anchor_seen {
        let _ = writeln!(
            err,
            "{}: the anchored chain is not in the files: lines were cut from the end, or a file is missing",
            files.last().map(|f| f.display().to_string()).unwrap_or_default()
        );
        return ExitCode::FAILURE;
    }
    let head = walk.head().map_or_else(|| "-".to_owned(), |c| c.as_str().to_owned());
    let _ = writeln!(
        out,
        "ok: {} record(s) in {} file(s), chain intact; head {head}",
        walk.records,
        files.len()
    );
    ExitCode::SUCCESS
}

fn load_key(from: KeyFrom<'_>) -> Result<AuditKey, String> {
    match from {
        KeyFrom::Source(spec) => read_key(spec),
        KeyFrom::Policy(path) => {
            // Only the key is read: the verifier need not hold the destinations' secrets.
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the policy {}: {}", path.display(), e.kind()))?;
            let raw = crate::policy::raw::parse(&text).map_err(|e| {
                format!(
                    "{}: {}",
                    path.display(),
                    e.0.first().map(|e| e.to_string()).unwrap_or_default()
                )
            })?;
            let spec = raw
                .server
                .audit_key
                .ok_or_else(|| format!("{} has no server.audit_key; give --key", path.display()))?;
            read_key(&spec)
        }
    }
}
