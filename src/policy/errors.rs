//! Policy mistakes: each with its key path and the line it is on, all of
//! them collected so that `check` lists every one in one go.

use std::fmt;

use super::locate::{line_of, Step};

/// One mistake in a policy: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (Some(l), false) => write!(f, "line {l}: {}: {}", self.key, self.message),
            (Some(l), true) => write!(f, "line {l}: {}", self.message),
            (None, false) => write!(f, "{}: {}", self.key, self.message),
            (None, true) => f.write_str(&self.message),
        }
    }
}

/// Every mistake found in one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Collects errors against the text they came from.
pub(super) struct Errors<'a> {
    pub(super) text: &'a str,
    pub(super) list: Vec<PolicyError>,
    /// The policy file's directory: relative `schema:` paths are read from it.
    pub(super) dir: Option<&'a std::path::Path>,
}

impl Errors<'_> {
    pub(super) fn push(&mut self, path: &[Step], message: impl Into<String>) {
        let key = path
            .iter()
            .map(|s| match s {
                Step::Key(k) => format!(".{k}"),
                Step::Index(i) => format!("[{i}]"),
            })
            .collect::<String>()
            .trim_start_matches('.')
            .to_owned();
        self.list.push(PolicyError {
            line: line_of(self.text, path),
            key,
            message: message.into(),
        });
    }
}
