//! Field-path grammar of the policy file (`items[].sku`, `*.email`, `[].id`) and the trie
//! the paths compile into, so the JSON filter can match every key in a single pass.

/// One step of a path: a literal key, `*` (any key) or `[]` (every array element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(Box<[u8]>),
    Any,
    Each,
}

/// A parsed policy path; `as_str` gives back the text it came from, for logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segs: Vec<Segment>,
}

impl FieldPath {
    /// Parses a policy path; rejects empty segments, stray brackets and whitespace.
    pub fn parse(s: &str) -> Result<FieldPath, String> {
        if s.is_empty() {
            return Err("empty field path".to_owned());
        }
        let mut segs = Vec::new();
        for (i, part) in s.split('.').enumerate() {
            parse_segment(part, i == 0, &mut segs)?;
        }
        Ok(FieldPath {
            text: s.to_owned(),
            segs,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn parse_segment(part: &str, first: bool, segs: &mut Vec<Segment>) -> Result<(), String> {
    let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
    match name {
        // A bare `[]` only makes sense at the start (top-level array); `a.[]` is a typo.
        "" if !first || rest.is_empty() => return Err("empty path segment".to_owned()),
        "" => {}
        "*" => segs.push(Segment::Any),
        _ => {
            if let Some(c) = name.chars().find(|c| bad_key_char(*c)) {
                return Err(format!("invalid character {c:?} in path"));
            }
            segs.push(Segment::Key(name.as_bytes().into()));
        }
    }
    while !rest.is_empty() {
        rest = rest
            .strip_prefix("[]")
            .ok_or_else(|| "stray '[' or ']' in path".to_owned())?;
        segs.push(Segment::Each);
    }
    Ok(())
}

fn bad_key_char(c: char) -> bool {
    // `*` inside a key would look like a glob that does not exist; reject it to avoid surprises.
    c.is_whitespace() || c.is_control() || matches!(c, '[' | ']' | '*')
}

/// Trie node; children are kept in small vectors because policies list few paths.
#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    pub(super) terminal: bool,
    pub(super) keys: Vec<(Box<[u8]>, usize)>,
    pub(super) any: Option<usize>,
    pub(super) each: Option<usize>,
}

impl Node {
    pub(super) fn key(&self, k: &[u8]) -> Option<usize> {
        self.keys.iter().find(|(n, _)| **n == *k).map(|(_, c)| *c)
    }

    /// Whether an object at this node can lead anywhere (used to decide "on the way").
    pub(super) fn has_key_children(&self) -> bool {
        !self.keys.is_empty() || self.any.is_some()
    }
}

/// All policy paths merged; node 0 is the document root.
#[derive(Debug, Clone)]
pub(super) struct Trie {
    nodes: Vec<Node>,
    /// A deny list: keys are stored folded and matched with `fold::matches`,
    /// and containers are read the lenient way (see `member_children`).
    fold: bool,
}

impl Trie {
    /// `fold`: match keys the deny-list way (see `fold`); otherwise byte for byte.
    pub(super) fn build(paths: &[FieldPath], fold: bool) -> Trie {
        let mut trie = Trie {
            nodes: vec![Node::default()],
            fold,
        };
        for p in paths {
            let mut cur = 0;
            for seg in &p.segs {
                let folded;
                let seg = match seg {
                    Segment::Key(k) if fold => {
                        folded = Segment::Key(super::fold::fold_name(k));
                        &folded
                    }
                    _ => seg,
                };
                cur = trie.child_or_insert(cur, seg);
            }
            if let Some(n) = trie.nodes.get_mut(cur) {
                n.terminal = true;
            }
        }
        trie
    }

    pub(super) fn node(&self, id: usize) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Where an object member named `k` leads. A deny list also reads `[]` as
    /// every member of an object: PHP's `json_decode(.., true)` and a JavaScript
    /// `for..in` walk `{"0": {..}}` exactly like `[{..}]`, so spelling an array
    /// as an object must not carry a denied field past the list. (An allow list
    /// needs no such reading: what it does not name is removed either way.)
    pub(super) fn member_children(&self, node: &Node, k: &[u8]) -> [Option<usize>; 3] {
        let each = if self.fold { node.each } else { None };
        [self.key_child(node, k), node.any, each]
    }

    /// Where an array element leads; a deny list also reads `*` as any index,
    /// the array's keys to PHP.
    pub(super) fn element_children(&self, node: &Node) -> [Option<usize>; 2] {
        [node.each, if self.fold { node.any } else { None }]
    }

    /// Whether an object at `node` can lead to a listed path.
    pub(super) fn object_leads(&self, node: &Node) -> bool {
        node.has_key_children() || (self.fold && node.each.is_some())
    }

    /// The child of `node` for the decoded body key `k`, if the policy names it.
    pub(super) fn key_child(&self, node: &Node, k: &[u8]) -> Option<usize> {
        if !self.fold {
            return node.key(k);
        }
        node.keys
            .iter()
            .find(|(n, _)| super::fold::matches(k, n))
            .map(|(_, c)| *c)
    }

    fn child_or_insert(&mut self, cur: usize, seg: &Segment) -> usize {
        let fresh = self.nodes.len();
        let Some(node) = self.nodes.get_mut(cur) else {
            return cur;
        };
        let existing = match seg {
            Segment::Any => node.any,
            Segment::Each => node.each,
            Segment::Key(k) => node.key(k),
        };
        if let Some(c) = existing {
            return c;
        }
        match seg {
            Segment::Any => node.any = Some(fresh),
            Segment::Each => node.each = Some(fresh),
            Segment::Key(k) => node.keys.push((k.clone(), fresh)),
        }
        self.nodes.push(Node::default());
        fresh
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::{FieldPath, Segment, Trie};

    fn key(s: &str) -> Segment {
        Segment::Key(s.as_bytes().into())
    }

    #[test]
    fn valid_paths() {
        let cases: Vec<(&str, Vec<Segment>)> = vec![
            ("order_id", vec![key("order_id")]),
            ("shipping.postcode", vec![key("shipping"), key("postcode")]),
            ("items[].sku", vec![key("items"), Segment::Each, key("sku")]),
            (
                "items[].meta.*",
                vec![key("items"), Segment::Each, key("meta"), Segment::Any],
            ),
            ("*.email", vec![Segment::Any, key("email")]),
            ("[].sku", vec![Segment::Each, key("sku")]),
            ("[]", vec![Segment::Each]),
            ("a[][]", vec![key("a"), Segment::Each, Segment::Each]),
            ("*[]", vec![Segment::Any, Segment::Each]),
            ("é", vec![key("é")]),
            (
                "line_items[].meta_data[].key",
                vec![
                    key("line_items"),
                    Segment::Each,
                    key("meta_data"),
                    Segment::Each,
                    key("key"),
                ],
            ),
        ];
        for (text, want) in cases {
            let p = FieldPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.segs, want, "{text}");
            assert_eq!(p.as_str(), text);
        }
    }

    #[test]
    fn invalid_paths() {
        for text in [
            "", ".", "a.", ".a", "a..b", "a[", "a]", "a[x]", "a[]b", "a.[]", "a b", " a", "a\t", "a*", "*a", "[", "]",
            "[]]", "a.[].b", "\u{1}",
        ] {
            assert!(FieldPath::parse(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn trie_merges_shared_prefixes() {
        let paths: Vec<FieldPath> = ["a.b", "a.c", "a.b", "*.d", "a[].e"]
            .iter()
            .map(|p| FieldPath::parse(p).unwrap())
            .collect();
        let t = Trie::build(&paths, false);
        let root = t.node(0).unwrap();
        let a = t.node(root.key(b"a").unwrap()).unwrap();
        assert_eq!(a.keys.len(), 2);
        assert!(a.each.is_some());
        assert!(root.any.is_some());
        assert!(t.node(a.key(b"b").unwrap()).unwrap().terminal);
        assert!(!root.terminal);
    }
}
