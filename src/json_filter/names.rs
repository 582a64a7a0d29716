//! Normalised field names ("items[].price", "billing.email") for logs and anomaly
//! detection: building the name of the value being parsed, and the bounded, deduplicated,
//! log-safe lists of names (`removed`, `fields`) handed back to the caller.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Most names kept in `FilterOutcome::removed`.
pub(super) const MAX_REMOVED: usize = 32;
/// Most names kept in `FilterOutcome::fields`.
pub(super) const MAX_FIELDS: usize = 128;
/// Longest name, in bytes; longer ones are cut on a char boundary.
pub(super) const MAX_NAME_LEN: usize = 64;

/// Sets `path` to the name of a child of the container whose own name is `path[..parent_len]`:
/// `key` (decoded) joined with '.', or "[]" for an array element.
pub(super) fn build(path: &mut Vec<u8>, parent_len: usize, key: Option<&[u8]>) {
    path.truncate(parent_len);
    match key {
        Some(k) => {
            if !path.is_empty() {
                path.push(b'.');
            }
            path.extend_from_slice(k);
        }
        None => path.extend_from_slice(b"[]"),
    }
}

/// Writes the log form of `path` to `name`: control characters shown as '?', cut to
/// `MAX_NAME_LEN` bytes on a char boundary.
fn sanitise(path: &[u8], name: &mut String) {
    name.clear();
    // Common case: short printable ASCII is already in log form.
    if path.len() <= MAX_NAME_LEN && path.iter().all(|b| (0x20..0x7f).contains(b)) {
        if let Ok(s) = std::str::from_utf8(path) {
            name.push_str(s);
            return;
        }
    }
    // Only the head can reach the output: each char gives at least one byte and takes at most
    // four, so a char cut by this bound is never one that would still fit. Looking at the whole
    // path instead would cost O(path) per name, quadratic under a long key with many children.
    let head = path.get(..MAX_NAME_LEN * 4).unwrap_or(path);
    for c in String::from_utf8_lossy(head).chars() {
        let c = if c.is_control() { '?' } else { c };
        if name.len() + c.len_utf8() > MAX_NAME_LEN {
            break;
        }
        name.push(c);
    }
}

/// Appends the log form of `path` to `removed` unless already there or the list is full.
pub(super) fn record_removed(removed: &mut Vec<String>, path: &[u8], name: &mut String) {
    if removed.len() >= MAX_REMOVED {
        return;
    }
    sanitise(path, name);
    if !removed.contains(name) {
        removed.push(name.clone());
    }
}

/// Appends the log form of `path` to `fields` unless already there or the list is full.
pub(super) fn record_field(fields: &mut Vec<String>, seen: &mut Seen, path: &[u8], name: &mut String) {
    if fields.len() >= MAX_FIELDS {
        return;
    }
    sanitise(path, name);
    let h = seen.hasher.hash_one(name.as_str());
    let dup = match seen.first.get(&h) {
        Some(&i) if fields.get(i) == Some(name) => true,
        // Two names with one 64-bit hash: vanishingly rare, and bounded by MAX_FIELDS.
        Some(_) => fields.contains(name),
        None => false,
    };
    if !dup {
        seen.first.entry(h).or_insert(fields.len());
        fields.push(name.clone());
    }
}

/// Hashes of the names already in `fields` (with the index of one of them), so a body with
/// many keys costs one hash per key rather than a scan of the list.
#[derive(Default)]
pub(super) struct Seen {
    hasher: RandomState,
    first: HashMap<u64, usize>,
}

impl Seen {
    pub(super) fn clear(&mut self) {
        self.first.clear();
    }
}
