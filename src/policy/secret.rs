//! Secret sources (`env:`, `file:`, `credential:`) and the wiped memory that holds them.
//! A secret lives in one `Bytes` whose owner zeroes it when the last request
//! and the last policy that share it are gone.

use std::path::PathBuf;

use bytes::Bytes;
use zeroize::Zeroizing;

/// Where a secret comes from, as the policy names it (safe to print).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env(String),
    File(PathBuf),
    Credential(String),
}

impl Source {
    pub fn parse(spec: &str) -> Result<Source, String> {
        let (kind, rest) = spec
            .split_once(':')
            .ok_or_else(|| "a secret is `env:NAME`, `file:/path` or `credential:NAME`".to_owned())?;
        if rest.is_empty() {
            return Err(format!("`{kind}:` needs a name after the colon"));
        }
        match kind {
            "env" => Ok(Source::Env(rest.to_owned())),
            "file" if rest.starts_with('/') => Ok(Source::File(PathBuf::from(rest))),
            "file" => Err("`file:` needs an absolute path".to_owned()),
            "credential" if !rest.contains('/') && rest != "." && rest != ".." => {
                Ok(Source::Credential(rest.to_owned()))
            }
            "credential" => Err("`credential:` takes a plain name (systemd LoadCredential=)".to_owned()),
            _ => Err("a secret is `env:NAME`, `file:/path` or `credential:NAME`".to_owned()),
        }
    }

    /// Reads the secret. Errors name the source, never its content.
    pub fn read(&self) -> Result<Secret, String> {
        let raw: Zeroizing<Vec<u8>> = match self {
            Source::Env(name) => match std::env::var_os(name) {
                Some(v) => Zeroizing::new(v.into_encoded_bytes()),
                None => return Err(format!("environment variable {name} is not set")),
            },
            Source::File(path) => read_file(path)?,
            Source::Credential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!("credential:{name}: CREDENTIALS_DIRECTORY is not set (systemd LoadCredential=)")
                })?;
                read_file(&PathBuf::from(dir).join(name))?
            }
        };
        Secret::new(raw)
    }
}

/// The source as the policy writes it (`env:NAME`, `file:/path`, `credential:NAME`).
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env(name) => write!(f, "env:{name}"),
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::Credential(name) => write!(f, "credential:{name}"),
        }
    }
}

fn read_file(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>, String> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot read secret file {}: {}", path.display(), e.kind()))
}

/// A secret value. Debug prints nothing of it.
#[derive(Clone)]
pub struct Secret(Bytes);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Trims one trailing newline (files written with `echo`), refuses any
    /// other control character: it would let a key split a header.
    pub fn new(mut raw: Zeroizing<Vec<u8>>) -> Result<Secret, String> {
        if raw.last() == Some(&b'\n') {
            raw.pop();
            if raw.last() == Some(&b'\r') {
                raw.pop();
            }
        }
        if raw.is_empty() {
            return Err("secret is empty".to_owned());
        }
        if raw.iter().any(|b| b.is_ascii_control()) {
            return Err("secret holds a control character (CR, LF, tab, ...)".to_owned());
        }
        Ok(Secret(Bytes::from_owner(raw)))
    }

    /// Prefix and secret in one wiped buffer, shared by every request that injects it.
    pub fn with_prefix(&self, prefix: &str) -> Secret {
        let mut v = Zeroizing::new(Vec::with_capacity(prefix.len() + self.0.len()));
        v.extend_from_slice(prefix.as_bytes());
        v.extend_from_slice(&self.0);
        Secret(Bytes::from_owner(v))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_parsing() {
        let cases: &[(&str, &str, bool)] = &[
            ("env", "env:SHIPPER_KEY", true),
            ("file absolute", "file:/etc/k", true),
            ("file relative", "file:k", false),
            ("credential", "credential:shipper", true),
            ("credential traversal", "credential:../x", false),
            ("unknown kind", "vault:x", false),
            ("no kind", "plainsecret", false),
            ("empty name", "env:", false),
        ];
        for (name, spec, ok) in cases {
            assert_eq!(Source::parse(spec).is_ok(), *ok, "{name}");
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn secret_values() {
        let cases: &[(&str, &[u8], Option<&[u8]>)] = &[
            ("plain", b"k1", Some(b"k1")),
            ("one trailing newline trimmed", b"k1\n", Some(b"k1")),
            ("crlf trimmed", b"k1\r\n", Some(b"k1")),
            ("two newlines refused", b"k1\n\n", None),
            ("inner newline refused", b"k\n1", None),
            ("tab refused", b"k\t1", None),
            ("empty refused", b"\n", None),
        ];
        for (name, raw, want) in cases {
            let got = Secret::new(Zeroizing::new(raw.to_vec())).ok();
            assert_eq!(got.as_ref().map(|s| s.bytes().as_ref()), *want, "{name}");
        }
    }

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new(Zeroizing::new(b"topsecret".to_vec())).unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
