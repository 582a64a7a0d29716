//! Replaces injected secrets in upstream answers with same-length runs of `*`,
//! in complete byte strings and in streamed bodies whose chunks may split a
//! secret. What counts as the secret is every spelling `forms` derives from
//! it (raw, JSON-escaped, percent-encoded, base64); a byte is masked when any
//! match (overlapping ones included) covers it. `aho-corasick` was considered and not
//! used: its stream search reports no overlapping matches and its automaton keeps
//! copies of the secret that are never wiped, for a handful of short patterns.

mod forms;

use std::sync::Arc;

use bytes::Bytes;
use zeroize::Zeroizing;

pub use forms::Forms;

/// What a masked byte becomes; one byte per byte so lengths never change.
const MASK: u8 = b'*';

/// Sorts `spans` and merges overlapping or touching ones, so the list stays
/// as short as the disjoint stretches it covers.
fn merge(spans: &mut Vec<(usize, usize)>) {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for &(s, e) in spans.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *spans = merged;
}

/// Copies `raw`, masking what `spans` cover of it.
fn apply(raw: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = raw.to_vec();
    for &(start, end) in spans {
        if let Some(span) = out.get_mut(start..end.min(raw.len())) {
            span.fill(MASK);
        }
    }
    out
}

/// Streaming scrubber: feed chunks with [`Scrubber::push`], end with [`Scrubber::finish`].
pub struct Scrubber {
    forms: Arc<Forms>,
    /// Unmasked tail that may be the start of a match; kept raw so that a
    /// longer match overlapping an already-masked one is still recognised.
    held: Zeroizing<Vec<u8>>,
    /// Stretches of `held` already known to be covered by a match.
    held_spans: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Scrubber {
    // Never print secrets or held bytes, which may be a secret prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("forms", &self.forms)
            .field("held", &self.held.len())
            .finish()
    }
}

impl Scrubber {
    /// A scrubber sharing `forms`, which a policy derives once per secret.
    pub fn new(forms: Arc<Forms>) -> Scrubber {
        Scrubber {
            forms,
            held: Zeroizing::new(Vec::new()),
            held_spans: Vec::new(),
        }
    }

    /// What this scrubber replaces (for trailers, scrubbed whole).
    pub fn forms(&self) -> &Forms {
        &self.forms
    }

    /// Feeds one chunk; returns the bytes safe to emit now (may be empty).
    /// Holds back fewer than [`Forms`]' longest match, only from the first
    /// position where a match could still complete.
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let forms = &*self.forms;
        // Fast path: nothing pending and no byte that could begin a match, so
        // the chunk passes through without a copy.
        if self.held.is_empty() && !chunk.iter().any(|&b| forms.may_start(b)) {
            return chunk;
        }
        let mut raw = Zeroizing::new(Vec::with_capacity(self.held.len().saturating_add(chunk.len())));
        raw.extend_from_slice(&self.held);
        raw.extend_from_slice(&chunk);
        let mut spans = std::mem::take(&mut self.held_spans);
        forms.for_each_match(&raw, |start, end| spans.push((start, end)));
        merge(&mut spans);
        // Everything before the first possible partial match is final: any
        // match covering it either lies fully in `raw` (found above) or would
        // make an earlier index a partial match, contradicting minimality.
        let cut = forms.hold_start(&raw).min(raw.len());
        let (ready, rest) = raw.split_at(cut);
        let out = apply(ready, &spans);
        self.held = Zeroizing::new(rest.to_vec());
        spans.retain(|&(_, end)| end > cut);
        for span in &mut spans {
            *span = (span.0.saturating_sub(cut), span.1 - cut);
        }
        self.held_spans = spans;
        Bytes::from(out)
    }

    /// End of stream: returns the held-back rest (scrubbed).
    pub fn finish(&mut self) -> Bytes {
        // No more input can complete a partial match, and complete ones inside
        // the held bytes were already marked when they arrived.
        let out = apply(&self.held, &self.held_spans);
        self.held = Zeroizing::new(Vec::new());
        self.held_spans.clear();
        Bytes::from(out)
    }
}

/// Replaces every form of the secrets in one complete byte string (header
/// values, trailers); returns None when nothing matched (no allocation).
pub fn scrub_all(input: &[u8], forms: &Forms) -> Option<Vec<u8>> {
    // Cheap pre-check; the output copy below is made only on the first hit.
    if !input.iter().any(|&b| forms.may_start(b)) {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    forms.for_each_match(input, |start, end| {
        let buf = out.get_or_insert_with(|| input.to_vec());
        let end = end.min(buf.len());
        if let Some(span) = buf.get_mut(start..end) {
            span.fill(MASK);
        }
    });
    out
}

#[cfg(test)]
mod tests;
