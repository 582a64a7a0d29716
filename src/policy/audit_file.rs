//! `server.audit_file`, `server.audit_key` and `server.audit_max_bytes`: where
//! the hash-chained audit file goes and the HMAC key of its chain. A file
//! without a key (or a key without a file) is an error, not a silent no-op.

use std::path::PathBuf;

use super::compile::key;
use super::errors::Errors;
use super::raw::RawServer;
use super::secret::{Secret, Source};

/// Rotation size when the policy gives none.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// A rotation size below this would rotate at nearly every batch.
const MIN_MAX_BYTES: u64 = 64 * 1024;
/// An HMAC key shorter than this is guessable offline from the file itself.
const MIN_KEY_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFileConfig {
    pub path: PathBuf,
    pub key: AuditKey,
    pub max_bytes: u64,
}

/// The chain's HMAC key. Debug prints nothing of it.
#[derive(Clone)]
pub struct AuditKey(pub Secret);

impl PartialEq for AuditKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.bytes() == other.0.bytes()
    }
}
impl Eq for AuditKey {}
impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// Reads and checks an audit key from its secret source (`env:`, `file:`, `credential:`).
pub fn read_key(spec: &str) -> Result<AuditKey, String> {
    let secret = Source::parse(spec).and_then(|s| s.read())?;
    if secret.bytes().len() < MIN_KEY_BYTES {
        return Err(format!(
            "the audit key needs at least {MIN_KEY_BYTES} bytes (e.g. `head -c 32 /dev/urandom | base64`)"
        ));
    }
    Ok(AuditKey(secret))
}

pub(super) fn compile(raw: &RawServer, errs: &mut Errors) -> Option<AuditFileConfig> {
    let at = |k: &str| [key("server"), key(k)];
    match (&raw.audit_file, &raw.audit_key) {
        (None, None) => {
            if raw.audit_max_bytes.is_some() {
                errs.push(&at("audit_max_bytes"), "needs `audit_file`");
            }
            return None;
        }
        (Some(_), None) => errs.push(&at("audit_file"), "needs `audit_key` (the chain's HMAC key)"),
        (None, Some(_)) => errs.push(&at("audit_key"), "needs `audit_file`"),
        (Some(_), Some(_)) => {}
    }
    let path = raw.audit_file.as_deref().and_then(|p| {
        let ok = p.starts_with('/') && !p.ends_with('/');
        if !ok {
            errs.push(&at("audit_file"), "needs an absolute file path");
        }
        ok.then(|| PathBuf::from(p))
    });
    let key = raw
        .audit_key
        .as_deref()
        .and_then(|spec| read_key(spec).map_err(|e| errs.push(&at("audit_key"), e)).ok());
    let max_bytes = raw.audit_max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    if max_bytes < MIN_MAX_BYTES {
        errs.push(&at("audit_max_bytes"), format!("at least {MIN_MAX_BYTES}"));
    }
    Some(AuditFileConfig {
        path: path?,
        key: key?,
        max_bytes,
    })
}
