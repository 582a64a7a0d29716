//! Request-body inspection for egress-guard: a single-pass JSON field filter (allow or deny
//! lists of field paths) plus a payment-card scan of what is let through and, on request
//! (`filter_collect`), the names of every field in the body, for anomaly detection.
//! `serde_json` was considered and not used: it builds a tree and lets a repeated key
//! win silently, where this single pass borrows keys from the input and refuses
//! duplicates (docs/performance.md, row 5).

mod buffers;
pub mod cardscan;
mod fieldpath;
mod fold;
mod form;
mod formname;
mod json;
mod keys;
mod lex;
pub mod mediatype;
mod names;

// Tests may unwrap: a panic there is a failed test, not an outage.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod proptests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests_adversarial;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use std::fmt;

pub use cardscan::{looks_like_card, number_looks_like_card};
pub use fieldpath::FieldPath;
pub use form::filter_form;
pub use formname::{FormError, MAX_FORM_DEPTH};

/// Whether the listed paths are the only ones kept (`Allow`, keys matched byte for byte)
/// or the ones removed (`Deny`, keys matched the way a lenient binder would: ASCII case
/// ignored and lookalikes folded, see `fold`), so no spelling of a denied name slips by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    Allow,
    Deny,
}

impl ListMode {
    /// The policy key that chose this mode (`body: {allow: [...]}`), for what users read.
    pub const fn yaml_name(self) -> &'static str {
        match self {
            ListMode::Allow => "allow",
            ListMode::Deny => "deny",
        }
    }
}

impl std::fmt::Display for ListMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.yaml_name())
    }
}

/// Compiled field policy: the paths are merged into a trie once, at policy load.
#[derive(Debug, Clone)]
pub struct FieldRules {
    mode: ListMode,
    trie: fieldpath::Trie,
}

impl FieldRules {
    pub fn new(mode: ListMode, paths: Vec<FieldPath>) -> FieldRules {
        FieldRules {
            mode,
            trie: fieldpath::Trie::build(&paths, mode == ListMode::Deny),
        }
    }

    pub fn mode(&self) -> ListMode {
        self.mode
    }
}

/// Nesting bound (objects and arrays together): 64 levels pass, 65 is `TooDeep`.
pub const MAX_DEPTH: usize = 64;

/// Why a body was rejected. Carries no input bytes, so it is safe to log as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    Malformed,
    DuplicateKey,
    TooDeep,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::Malformed => "malformed JSON body",
            BodyError::DuplicateKey => "duplicate key in JSON body",
            BodyError::TooDeep => "JSON body nested too deeply",
        })
    }
}

impl std::error::Error for BodyError {}

#[derive(Debug, Default)]
pub struct FilterOutcome {
    /// Normalised names of removed fields: keys joined by '.', array levels written "[]"
    /// (e.g. "items[].price", "billing.email"), deduplicated, in first-seen order, at most
    /// 32 entries, each at most 64 bytes (cut on a char boundary; control characters in
    /// keys are shown as '?'). These names go to logs; no values ever.
    pub removed: Vec<String>,
    /// true when the output (what is KEPT) holds a string, number or key that looks like
    /// a payment card number, anywhere in it (see `cardscan`; only computed when
    /// scan_cards is true).
    pub card_found: bool,
    /// Normalised names of every key in the input (kept or removed, including keys inside
    /// removed subtrees): keys joined by '.', array levels as "[]" (same normalisation as
    /// `removed`), deduplicated, first-seen order, at most 128 entries of at most 64 bytes
    /// each (same truncation rules as `removed`). Array levels alone are not names: `[1]`
    /// gives none, `{"a":[{"b":1}]}` gives "a" and "a[].b". Empty unless `filter_collect`
    /// was used.
    pub fields: Vec<String>,
}

/// Parses `input` as one JSON value (RFC 8259; UTF-8; whitespace around allowed, trailing
/// garbage = Malformed; a byte-order mark is not whitespace, so it is Malformed too: PHP
/// refuses one, body-parser strips it), writes the filtered, compact document to `out`
/// (cleared first; left empty on error), returns what was removed. A key holding a control
/// character (C0, DEL, C1; raw or escaped) is Malformed.
pub fn filter(
    input: &[u8],
    rules: &FieldRules,
    scan_cards: bool,
    out: &mut Vec<u8>,
) -> Result<FilterOutcome, BodyError> {
    json::run(input, rules, scan_cards, false, out)
}

/// Same as `filter` (same output, `removed` and `card_found`), but also fills `fields` with
/// the name of every key in the body. Still a single pass; `filter` pays nothing for it.
pub fn filter_collect(
    input: &[u8],
    rules: &FieldRules,
    scan_cards: bool,
    out: &mut Vec<u8>,
) -> Result<FilterOutcome, BodyError> {
    json::run(input, rules, scan_cards, true, out)
}
