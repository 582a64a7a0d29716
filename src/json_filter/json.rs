//! Single-pass JSON validator and field filter: walks the bytes once with an explicit
//! stack (no recursion, so hostile nesting cannot blow the stack), matches keys against
//! the policy trie and writes the kept tokens straight to the output buffer. On request it
//! also names every key it walks past, kept or not.

use super::buffers::Buffers;
use super::cardscan::{looks_like_card, number_looks_like_card};
use super::keys::{KeyRef, ObjKeys};
use super::lex::{decode_into, scan_number, scan_string};
use super::names;
use super::{BodyError, FieldRules, FilterOutcome, ListMode, MAX_DEPTH};

const M: BodyError = BodyError::Malformed;

/// What happens to a value: copied out, validated only, or descended into with the trie.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Keep,
    Drop,
    Filter,
}

/// What kind of scalar a value is, for the card scan.
#[derive(Clone, Copy)]
enum Scalar {
    /// A string; `esc`: it holds escapes, so it is decoded before scanning.
    Str {
        esc: bool,
    },
    Num,
    /// `true`, `false`, `null`.
    Lit,
}

#[derive(Clone, Copy)]
struct Key {
    raw: (usize, usize),
    decoded: KeyRef,
}

pub(super) struct Frame {
    obj: bool,
    act: Act,
    /// Range in `sets` of the trie nodes matching this container (Filter only).
    set: (usize, usize),
    members: usize,
    wrote: bool,
    /// Duplicate-key state (objects only; arrays carry an unused, empty one).
    keys: ObjKeys,
    /// Length of this container's own name at the head of `path` (0 when names are unused).
    name_len: usize,
}

struct Filter<'a> {
    inp: &'a [u8],
    pos: usize,
    rules: &'a FieldRules,
    scan: bool,
    /// Fill `outcome.fields`: every value then carries its name, not only removed ones.
    collect: bool,
    out: &'a mut Vec<u8>,
    b: Buffers,
    outcome: FilterOutcome,
}

pub(super) fn run(
    inp: &[u8],
    rules: &FieldRules,
    scan: bool,
    collect: bool,
    out: &mut Vec<u8>,
) -> Result<FilterOutcome, BodyError> {
    out.clear();
    let mut f = Filter {
        inp,
        pos: 0,
        rules,
        scan,
        collect,
        out,
        b: Buffers::take(),
        outcome: FilterOutcome::default(),
    };
    f.b.sets.push(0);
    let result = f.document();
    if result.is_err() {
        // Never leave a half-filtered body around for a caller to forward by mistake.
        f.out.clear();
    }
    f.b.recycle();
    result.map(|()| f.outcome)
}

impl Filter<'_> {
    fn document(&mut self) -> Result<(), BodyError> {
        self.ws();
        self.value(None)?;
        while let Some(top) = self.b.frames.last() {
            let (obj, first) = (top.obj, top.members == 0);
            self.ws();
            let b = self.peek()?;
            if b == if obj { b'}' } else { b']' } {
                self.pos += 1;
                self.close();
                continue;
            }
            if !first {
                if b != b',' {
                    return Err(M);
                }
                self.pos += 1;
                self.ws();
            }
            self.member(obj)?;
        }
        self.ws();
        if self.pos == self.inp.len() {
            Ok(())
        } else {
            Err(M)
        }
    }

    fn member(&mut self, obj: bool) -> Result<(), BodyError> {
        if let Some(f) = self.b.frames.last_mut() {
            f.members += 1;
            if f.act == Act::Filter {
                self.b.sets.truncate(f.set.1);
            }
        }
        if !obj {
            return self.value(None);
        }
        if self.peek()? != b'"' {
            return Err(M);
        }
        let (start, end, esc) = self.string()?;
        let decoded = self.b.keys.decode(self.inp, (start, end), esc)?;
        let Some(f) = self.b.frames.last_mut() else {
            return Err(M);
        };
        self.b.keys.insert(self.inp, &mut f.keys, decoded)?;
        self.ws();
        if self.peek()? != b':' {
            return Err(M);
        }
        self.pos += 1;
        self.ws();
        let raw = (start, end);
        self.value(Some(Key { raw, decoded }))
    }

    fn value(&mut self, key: Option<Key>) -> Result<(), BodyError> {
        let b = self.peek()?;
        let (act, set) = self.resolve(b, key.map(|k| k.decoded));
        if let Some(parent) = self.b.frames.last() {
            let removed = parent.act == Act::Filter && act == Act::Drop;
            if self.collect || (parent.act == Act::Filter && act != Act::Keep) {
                let key = key.map(|k| self.b.keys.bytes(self.inp, k.decoded));
                names::build(&mut self.b.path, parent.name_len, key);
            }
            if removed {
                names::record_removed(&mut self.outcome.removed, &self.b.path, &mut self.b.name);
            }
            if self.collect && key.is_some() {
                let (fields, seen) = (&mut self.outcome.fields, &mut self.b.seen);
                names::record_field(fields, seen, &self.b.path, &mut self.b.name);
            }
        }
        if act != Act::Drop {
            self.emit_prefix(key);
        }
        match b {
            b'{' | b'[' => self.open(b == b'{', act, set),
            b'"' => {
                let (s, e, esc) = self.string()?;
                self.scalar(act, s, e, Scalar::Str { esc })
            }
            b'-' | b'0'..=b'9' => {
                let (s, e) = self.number()?;
                self.scalar(act, s, e, Scalar::Num)
            }
            b't' => self.literal(act, b"true"),
            b'f' => self.literal(act, b"false"),
            b'n' => self.literal(act, b"null"),
            _ => Err(M),
        }
    }

    /// Decides the fate of the value about to start with byte `b` from the parent's state.
    fn resolve(&mut self, b: u8, key: Option<KeyRef>) -> (Act, (usize, usize)) {
        let (obj, set) = match self.b.frames.last() {
            None => return self.classify((0, 1), b, true),
            Some(f) if f.act != Act::Filter => return (f.act, (0, 0)),
            Some(f) => (f.obj, f.set),
        };
        let p = match key {
            Some(k) if obj => self.key_children(set, k),
            _ => set,
        };
        self.classify(p, b, false)
    }

    fn classify(&mut self, p: (usize, usize), b: u8, top: bool) -> (Act, (usize, usize)) {
        let allow = self.rules.mode == ListMode::Allow;
        let rules: &FieldRules = self.rules;
        let nodes = self.b.sets.get(p.0..p.1).unwrap_or(&[]);
        let mut nodes = nodes.iter().filter_map(|&n| rules.trie.node(n));
        if nodes.clone().any(|n| n.terminal) {
            return (if allow { Act::Keep } else { Act::Drop }, p);
        }
        // Not on the way to any listed path: allow removes it, deny lets it through whole.
        let miss = if allow { Act::Drop } else { Act::Keep };
        match b {
            b'{' if top || nodes.any(|n| rules.trie.object_leads(n)) => (Act::Filter, p),
            b'[' => {
                let start = self.b.sets.len();
                for i in p.0..p.1 {
                    let Some(node) = self.b.sets.get(i).and_then(|&n| rules.trie.node(n)) else {
                        continue;
                    };
                    for c in rules.trie.element_children(node).into_iter().flatten() {
                        self.push_unique(start, c);
                    }
                }
                let e = (start, self.b.sets.len());
                (if top || e.0 != e.1 { Act::Filter } else { miss }, e)
            }
            _ if top => (if b == b'{' { Act::Filter } else { Act::Keep }, p),
            _ => (miss, p),
        }
    }

    fn key_children(&mut self, set: (usize, usize), k: KeyRef) -> (usize, usize) {
        let start = self.b.sets.len();
        let rules: &FieldRules = self.rules;
        for i in set.0..set.1 {
            let Some(node) = self.b.sets.get(i).and_then(|&n| rules.trie.node(n)) else {
                continue;
            };
            let kb = self.b.keys.bytes(self.inp, k);
            for c in rules.trie.member_children(node, kb).into_iter().flatten() {
                self.push_unique(start, c);
            }
        }
        (start, self.b.sets.len())
    }

    fn push_unique(&mut self, start: usize, c: usize) {
        if !self.b.sets.get(start..).is_some_and(|s| s.contains(&c)) {
            self.b.sets.push(c);
        }
    }

    fn emit_prefix(&mut self, key: Option<Key>) {
        let Some(parent) = self.b.frames.last_mut() else {
            return;
        };
        if parent.wrote {
            self.out.push(b',');
        }
        parent.wrote = true;
        if let Some(k) = key {
            // Original spelling (escapes included) is forwarded; only the decision used the decoded form.
            self.out
                .extend_from_slice(self.inp.get(k.raw.0..k.raw.1).unwrap_or(&[]));
            self.out.push(b':');
            // A forwarded key is as visible upstream as a value: scan it too.
            if self.scan && !self.outcome.card_found {
                self.outcome.card_found = looks_like_card(self.b.keys.bytes(self.inp, k.decoded));
            }
        }
    }

    fn open(&mut self, obj: bool, act: Act, set: (usize, usize)) -> Result<(), BodyError> {
        if self.b.frames.len() >= MAX_DEPTH {
            return Err(BodyError::TooDeep);
        }
        self.pos += 1;
        if act != Act::Drop {
            self.out.push(if obj { b'{' } else { b'[' });
        }
        let name_len = if act == Act::Filter || self.collect {
            self.b.path.len()
        } else {
            0
        };
        self.b.frames.push(Frame {
            obj,
            act,
            set,
            members: 0,
            wrote: false,
            keys: self.b.keys.open(),
            name_len,
        });
        Ok(())
    }

    fn close(&mut self) {
        let Some(f) = self.b.frames.pop() else {
            return;
        };
        if f.act != Act::Drop {
            self.out.push(if f.obj { b'}' } else { b']' });
        }
        self.b.keys.close(&f.keys);
    }

    /// Copies a kept scalar out and scans it.
    fn scalar(&mut self, act: Act, s: usize, e: usize, kind: Scalar) -> Result<(), BodyError> {
        if act == Act::Drop {
            return Ok(());
        }
        let raw = self.inp.get(s..e).ok_or(M)?;
        self.out.extend_from_slice(raw);
        if !self.scan || self.outcome.card_found {
            return Ok(());
        }
        self.outcome.card_found = match kind {
            Scalar::Lit => false,
            // By value: `4.111111111111111e15` is the same card to any upstream.
            Scalar::Num => number_looks_like_card(raw),
            Scalar::Str { esc } => {
                let content = raw.get(1..raw.len().saturating_sub(1)).unwrap_or(&[]);
                if esc {
                    // Decode so "\u0034111..." cannot smuggle a card number past the scan.
                    self.b.scratch.clear();
                    decode_into(content, &mut self.b.scratch)?;
                    looks_like_card(&self.b.scratch)
                } else {
                    looks_like_card(content)
                }
            }
        };
        Ok(())
    }

    fn literal(&mut self, act: Act, word: &[u8]) -> Result<(), BodyError> {
        let end = self.pos + word.len();
        if self.inp.get(self.pos..end) != Some(word) {
            return Err(M);
        }
        let start = std::mem::replace(&mut self.pos, end);
        self.scalar(act, start, end, Scalar::Lit)
    }

    /// Scans the string at `pos`; returns (start, end after the closing quote, has escapes).
    fn string(&mut self) -> Result<(usize, usize, bool), BodyError> {
        let start = self.pos;
        let (end, esc) = scan_string(self.inp, start)?;
        self.pos = end;
        Ok((start, end, esc))
    }

    fn number(&mut self) -> Result<(usize, usize), BodyError> {
        let start = self.pos;
        self.pos = scan_number(self.inp, start)?;
        Ok((start, self.pos))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.inp.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Result<u8, BodyError> {
        self.inp.get(self.pos).copied().ok_or(M)
    }
}
