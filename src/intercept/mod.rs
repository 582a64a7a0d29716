//! The local interception CA: loaded from `server.intercept_ca`, it signs
//! short-lived leaves (`leaf`) only for hosts its X.509 name constraints
//! permit and only for a CONNECT the policy decided to intercept (`Grant`).
//! `init` makes a new name-constrained CA for `egress-guard ca init`.

pub mod init;
mod leaf;

use std::sync::Arc;

use rcgen::{GeneralSubtree, KeyPair};
use zeroize::Zeroizing;

use crate::policy::{HostPattern, Source};
pub use leaf::{Grant, MintError};

/// The CA in memory: its certificate, its key (never printed) and the
/// leaves it minted, with the DNS names its name constraints permit.
pub struct InterceptCa {
    cert_der: Vec<u8>,
    /// The CA as rcgen signs with it: subject and key identifier read from the certificate.
    issuer: rcgen::Certificate,
    key: KeyPair,
    /// `None`: the certificate carries no name constraints, so it may mint nothing.
    permitted: Option<Vec<String>>,
    excluded: Vec<String>,
    /// The CA's own end of validity: no leaf outlives it.
    not_after: std::time::SystemTime,
    pub key_source: Source,
    leaves: leaf::Cache,
}

impl std::fmt::Debug for InterceptCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterceptCa")
            .field("permitted", &self.permitted)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Two policies name the same CA when certificate and key source agree.
impl PartialEq for InterceptCa {
    fn eq(&self, other: &Self) -> bool {
        self.cert_der == other.cert_der && self.key_source == other.key_source
    }
}
impl Eq for InterceptCa {}

impl InterceptCa {
    /// Reads the certificate from `cert` and the key from `key`. Errors say
    /// which of the two is wrong, never a byte of the key.
    pub fn load(cert: &std::path::Path, key: &Source) -> Result<InterceptCa, LoadError> {
        let pem = std::fs::read_to_string(cert)
            .map_err(|e| LoadError::Cert(format!("cannot read {}: {}", cert.display(), e.kind())))?;
        let key_pem = read_key(key).map_err(LoadError::Key)?;
        let key_text = std::str::from_utf8(&key_pem).map_err(|_| LoadError::Key("not a PEM private key".into()))?;
        let key_pair = KeyPair::from_pem(key_text).map_err(|_| LoadError::Key("not a PEM private key".into()))?;
        InterceptCa::from_parts(&pem, key_pair, key.clone())
    }

    /// The CA from its certificate's PEM and its key pair.
    pub fn from_parts(cert_pem: &str, key: KeyPair, key_source: Source) -> Result<InterceptCa, LoadError> {
        let bad = |m: &str| LoadError::Cert(m.to_owned());
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|d: rustls_pki_types::CertificateDer<'static>| d.to_vec())
            .map_err(|_| bad("not a PEM certificate"))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|_| bad("not an X.509 certificate"))?;
        if parsed.tbs_certificate.subject_pki.raw != key.public_key_der().as_slice() {
            return Err(LoadError::Key("does not belong to the certificate".into()));
        }
        if !parsed.is_ca() {
            return Err(bad("not a CA certificate (basic constraints CA:TRUE)"));
        }
        let not_after = std::time::SystemTime::from(parsed.validity().not_after.to_datetime());
        let params = rcgen::CertificateParams::from_ca_cert_der(&der.clone().into())
            .map_err(|_| bad("a certificate rcgen cannot sign with"))?;
        let (permitted, excluded) = dns_constraints(params.name_constraints.as_ref());
        let issuer = params
            .self_signed(&key)
            .map_err(|_| bad("cannot sign with this certificate"))?;
        Ok(InterceptCa {
            cert_der: der,
            issuer,
            key,
            permitted,
            excluded,
            not_after,
            key_source,
            leaves: leaf::Cache::default(),
        })
    }

    /// Whether the name constraints let this CA vouch for `host`: a permitted
    /// DNS subtree covers it and no excluded one does. No constraints, no host.
    pub fn permits(&self, host: &str) -> bool {
        let Some(permitted) = &self.permitted else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        permitted.iter().any(|c| within(&host, c)) && !self.excluded.iter().any(|c| within(&host, c))
    }

    /// Whether every host `pattern` matches is permitted (`*.x` needs `x` or wider).
    pub fn permits_pattern(&self, pattern: &HostPattern) -> bool {
        match pattern {
            HostPattern::Exact(h) => self.permits(h),
            HostPattern::Suffix(s) => self.permits(s.trim_start_matches('.')),
        }
    }

    /// The DNS names the constraints permit (for `check`).
    pub fn permitted(&self) -> Option<&[String]> {
        self.permitted.as_deref()
    }

    /// The TLS server config for a granted host: a cached leaf, or a new one.
    pub fn server_config(&self, grant: &Grant) -> Result<Arc<rustls::ServerConfig>, MintError> {
        self.leaves.get_or_mint(self, grant, std::time::SystemTime::now())
    }

    /// How many leaves the cache holds (tests, metrics).
    pub fn cached_leaves(&self) -> usize {
        self.leaves.len()
    }
}

/// RFC 5280 dNSName matching: the name itself or any name below it.
fn within(host: &str, constraint: &str) -> bool {
    let c = constraint.trim_start_matches('.').to_ascii_lowercase();
    !c.is_empty() && (host == c || host.strip_suffix(c.as_str()).is_some_and(|rest| rest.ends_with('.')))
}

fn dns_constraints(nc: Option<&rcgen::NameConstraints>) -> (Option<Vec<String>>, Vec<String>) {
    let dns = |list: &[GeneralSubtree]| -> Vec<String> {
        list.iter()
            .filter_map(|s| match s {
                GeneralSubtree::DnsName(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    };
    match nc {
        Some(nc) if !nc.permitted_subtrees.is_empty() => {
            (Some(dns(&nc.permitted_subtrees)), dns(&nc.excluded_subtrees))
        }
        _ => (None, Vec::new()),
    }
}

/// Why a CA did not load: the certificate or the key (the policy names each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    Cert(String),
    Key(String),
}

/// The key's PEM, from any secret source. A key *file* that its group or
/// others may read is refused: the CA key vouches for every intercepted host.
fn read_key(source: &Source) -> Result<Zeroizing<Vec<u8>>, String> {
    let read = |path: &std::path::Path| -> Result<Zeroizing<Vec<u8>>, String> {
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|e| format!("cannot read key file {}: {}", path.display(), e.kind()))
    };
    match source {
        Source::Env(name) => std::env::var_os(name)
            .map(|v| Zeroizing::new(v.into_encoded_bytes()))
            .ok_or_else(|| format!("environment variable {name} is not set")),
        Source::File(path) => {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| format!("cannot read key file {}: {}", path.display(), e.kind()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "key file {} is readable by group or others: chmod 600 it",
                    path.display()
                ));
            }
            read(path)
        }
        Source::Credential(name) => {
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                format!("credential:{name}: CREDENTIALS_DIRECTORY is not set (systemd LoadCredential=)")
            })?;
            read(&std::path::PathBuf::from(dir).join(name))
        }
    }
}

#[cfg(test)]
mod tests;
