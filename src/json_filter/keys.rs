//! Decoded-key storage for the open objects and the duplicate-key check. Keys without
//! escapes stay borrowed from the input, so the common case allocates nothing per key.

use super::fold::has_control;
use super::lex::decode_into;
use super::BodyError;
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Above this many keys an object's duplicate check switches from a linear scan to hashing.
const HASH_AFTER: usize = 16;

/// A decoded key: a range of the input when it has no escapes, else of the arena.
#[derive(Clone, Copy)]
pub(super) enum KeyRef {
    Input(usize, usize),
    Arena(usize, usize),
}

/// The set holds keyed SipHash outputs already: hashing them again would
/// only spend time, so its hasher passes the `u64` through.
type PrehashedSet = HashSet<u64, BuildHasherDefault<Prehashed>>;

#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this keeps the trait's contract all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Per-object state: where its keys start in the shared stack, and its hash set once big.
pub(super) struct ObjKeys {
    refs_start: usize,
    arena_start: usize,
    hashed: Option<PrehashedSet>,
}

/// Keys of all open objects, as one stack shared by the nesting levels.
#[derive(Default)]
pub(super) struct Keys {
    refs: Vec<KeyRef>,
    arena: Vec<u8>,
    hasher: Option<RandomState>,
}

impl Keys {
    pub(super) fn open(&self) -> ObjKeys {
        ObjKeys {
            refs_start: self.refs.len(),
            arena_start: self.arena.len(),
            hashed: None,
        }
    }

    pub(super) fn clear(&mut self) {
        self.refs.clear();
        self.arena.clear();
    }

    /// Bytes held, to decide whether these buffers are worth keeping for the next call.
    pub(super) fn capacity(&self) -> usize {
        self.arena.capacity() + self.refs.capacity() * std::mem::size_of::<KeyRef>()
    }

    pub(super) fn close(&mut self, o: &ObjKeys) {
        self.refs.truncate(o.refs_start);
        self.arena.truncate(o.arena_start);
    }

    /// Decoded form of the raw key `inp[start..end]` (quotes included). A key holding a
    /// control character, raw or escaped (`\u0000`), is malformed.
    pub(super) fn decode(&mut self, inp: &[u8], (start, end): (usize, usize), esc: bool) -> Result<KeyRef, BodyError> {
        let k = if esc {
            let a = self.arena.len();
            let content = inp.get(start + 1..end - 1).ok_or(BodyError::Malformed)?;
            decode_into(content, &mut self.arena)?;
            KeyRef::Arena(a, self.arena.len())
        } else {
            KeyRef::Input(start + 1, end - 1)
        };
        if has_control(key_bytes(inp, &self.arena, k)) {
            return Err(BodyError::Malformed);
        }
        Ok(k)
    }

    pub(super) fn bytes<'k>(&'k self, inp: &'k [u8], k: KeyRef) -> &'k [u8] {
        key_bytes(inp, &self.arena, k)
    }

    /// Adds `k` to the innermost object `o`, failing if an equal decoded key is already there.
    pub(super) fn insert(&mut self, inp: &[u8], o: &mut ObjKeys, k: KeyRef) -> Result<(), BodyError> {
        let Keys { refs, arena, hasher } = self;
        let kb = key_bytes(inp, arena, k);
        let siblings = refs.get(o.refs_start..).unwrap_or(&[]);
        let same = |s: &KeyRef| key_bytes(inp, arena, *s) == kb;
        if let Some(set) = o.hashed.as_mut() {
            let hasher = hasher.get_or_insert_with(RandomState::new);
            // A hash hit is only a hint; confirm with a real comparison.
            if !set.insert(hasher.hash_one(kb)) && siblings.iter().any(same) {
                return Err(BodyError::DuplicateKey);
            }
        } else {
            if siblings.iter().any(same) {
                return Err(BodyError::DuplicateKey);
            }
            if siblings.len() >= HASH_AFTER {
                // Random keys per filter call keep crafted collisions from degrading to O(n^2).
                let hasher = hasher.get_or_insert_with(RandomState::new);
                let all = siblings.iter().map(|s| key_bytes(inp, arena, *s));
                o.hashed = Some(all.chain([kb]).map(|b| hasher.hash_one(b)).collect());
            }
        }
        refs.push(k);
        Ok(())
    }
}

fn key_bytes<'k>(inp: &'k [u8], arena: &'k [u8], k: KeyRef) -> &'k [u8] {
    match k {
        KeyRef::Input(a, b) => inp.get(a..b),
        KeyRef::Arena(a, b) => arena.get(a..b),
    }
    .unwrap_or(&[])
}
