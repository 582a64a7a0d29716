//! The field filter for `application/x-www-form-urlencoded` bodies and query strings: each
//! `name=value` pair is matched against the same policy trie as JSON (`metadata[order_id]`
//! is `metadata.order_id`, `items[0][sku]` is `items[].sku`), kept pairs are written back
//! byte for byte in their order, and the strict rules of `formname` refuse what PHP or
//! `qs` could read differently.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::cardscan::looks_like_card;
use super::formname::{self, FormError, Step};
use super::names;
use super::{FieldRules, FilterOutcome, ListMode};

/// Filters `input` (a form body, or a query string without `?`) into `out` (cleared first):
/// the kept pairs joined by `&`, empty pairs dropped. `out` is left empty on error.
/// `collect` fills `FilterOutcome::fields` as `json_filter::filter_collect` does.
pub fn filter_form(
    input: &[u8],
    rules: &FieldRules,
    scan_cards: bool,
    collect: bool,
    out: &mut Vec<u8>,
) -> Result<FilterOutcome, FormError> {
    out.clear();
    let mut f = FormFilter {
        rules,
        scan: scan_cards,
        collect,
        outcome: FilterOutcome::default(),
        seen_names: HashMap::with_capacity_and_hasher(64, BuildHasherDefault::default()),
        steps: Vec::new(),
        ends: Vec::new(),
        name: Vec::new(),
        value: Vec::new(),
        path: Vec::new(),
        log: String::new(),
        seen: names::Seen::default(),
        cur: Vec::new(),
        next: Vec::new(),
    };
    let result = f.run(input, out);
    if result.is_err() {
        out.clear();
    }
    result.map(|()| f.outcome)
}

struct FormFilter<'a> {
    rules: &'a FieldRules,
    scan: bool,
    collect: bool,
    outcome: FilterOutcome,
    /// Hashes of the decoded names (and name prefixes) seen so far: `true` for a container.
    /// Two names with one hash would refuse a body that is fine, never pass one that is not.
    seen_names: HashMap<u64, bool, BuildHasherDefault<Fnv>>,
    steps: Vec<Step>,
    ends: Vec<usize>,
    name: Vec<u8>,
    value: Vec<u8>,
    /// The normalised name being built for logs (`metadata.order_id`, `items[].sku`).
    path: Vec<u8>,
    log: String,
    seen: names::Seen,
    cur: Vec<usize>,
    next: Vec<usize>,
}

impl FormFilter<'_> {
    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), FormError> {
        // Older Rack and Python split pairs on `;` too: a raw one could hide a second pair.
        if input.contains(&b';') {
            return Err(FormError::Malformed);
        }
        for pair in input.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    pair.get(..eq).unwrap_or_default(),
                    pair.get(eq + 1..).unwrap_or_default(),
                ),
                None => (pair, &b""[..]),
            };
            formname::decode(raw_name, &mut self.name)?;
            formname::decode(raw_value, &mut self.value)?;
            formname::parse(&self.name, &mut self.steps, &mut self.ends)?;
            self.check_unique()?;
            if self.collect {
                self.record_fields();
            }
            let (keep, decided_at) = self.keeps();
            if keep {
                if !out.is_empty() {
                    out.push(b'&');
                }
                out.extend_from_slice(pair);
                if self.scan && !self.outcome.card_found {
                    self.outcome.card_found = looks_like_card(&self.name) || looks_like_card(&self.value);
                }
            } else {
                // Named where the policy cut, as the JSON filter names a removed subtree.
                self.build_path(decided_at);
                names::record_removed(&mut self.outcome.removed, &self.path, &mut self.log);
            }
        }
        Ok(())
    }

    /// Refuses a scalar name seen before and a name used as scalar and container. Prefixes
    /// past a `[]` name a fresh element each time, so they are not compared.
    fn check_unique(&mut self) -> Result<(), FormError> {
        for (i, end) in self.ends.iter().enumerate() {
            if self.steps.get(i) == Some(&Step::Append) {
                break;
            }
            let last = i + 1 == self.ends.len();
            let key = fnv(self.name.get(..*end).unwrap_or_default());
            match (self.seen_names.get(&key), last) {
                (Some(false), false) => return Err(FormError::Conflict),
                (Some(true), true) => return Err(FormError::Conflict),
                (Some(false), true) => return Err(FormError::Duplicate),
                (Some(true), false) => {}
                (None, _) => {
                    self.seen_names.insert(key, !last);
                }
            }
        }
        Ok(())
    }

    /// Whether the pair passes, and after how many steps that was decided: walks the trie
    /// as the JSON filter walks a value's keys.
    fn keeps(&mut self) -> (bool, usize) {
        let allow = self.rules.mode == ListMode::Allow;
        let trie = &self.rules.trie;
        self.cur.clear();
        self.cur.push(0);
        for (i, step) in self.steps.iter().enumerate() {
            self.next.clear();
            for node in self.cur.iter().filter_map(|&n| trie.node(n)) {
                let children = match *step {
                    Step::Key(s, e) => trie.member_children(node, self.name.get(s..e).unwrap_or_default()),
                    Step::Index | Step::Append => {
                        let [a, b] = trie.element_children(node);
                        [a, b, None]
                    }
                };
                for c in children.into_iter().flatten() {
                    if !self.next.contains(&c) {
                        self.next.push(c);
                    }
                }
            }
            if self.next.iter().filter_map(|&n| trie.node(n)).any(|n| n.terminal) {
                return (allow, i + 1);
            }
            if self.next.is_empty() {
                return (!allow, i + 1);
            }
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        // A leaf on the way to a listed path but not under one.
        (!allow, self.steps.len())
    }

    /// The log name of the first `n` steps, in `path`.
    fn build_path(&mut self, n: usize) {
        self.path.clear();
        for step in self.steps.iter().take(n) {
            let len = self.path.len();
            match *step {
                Step::Key(s, e) => names::build(&mut self.path, len, self.name.get(s..e)),
                Step::Index | Step::Append => names::build(&mut self.path, len, None),
            }
        }
    }

    /// Every name ending in a key, as the JSON filter collects object keys.
    fn record_fields(&mut self) {
        for n in 1..=self.steps.len() {
            if !matches!(self.steps.get(n - 1), Some(Step::Key(..))) {
                continue;
            }
            self.build_path(n);
            names::record_field(&mut self.outcome.fields, &mut self.seen, &self.path, &mut self.log);
        }
    }
}

/// FNV-1a over a name: the names are hashed once here, so the map only passes the hash on.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The map's hasher: its keys are already hashes.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |h, &b| (h << 8) | u64::from(b));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
#[path = "form_tests.rs"]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
