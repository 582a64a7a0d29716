//! Walks a chain line by line: what `egress-guard audit verify` runs over
//! whole files, and what the proxy runs over a file's last line at start.
//! The first line that does not verify ends the walk, with its number and why.

use super::chain::{open, Chain, ChainKey, GENESIS};
use super::records::head;

/// Where a walk stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub line: u64,
    pub why: String,
}

/// A line that verified.
pub struct Checked {
    /// Its own chain.
    pub chain: Chain,
    /// The chain it links to.
    pub from: Chain,
    /// Its `record` member.
    pub kind: String,
}

/// Checks one line (without its `\n`) after `prev` (the chain before it, if
/// any); `first` says it is line 1 of its file.
pub fn check_line(key: &ChainKey, prev: Option<Chain>, line: &[u8], first: bool) -> Result<Checked, String> {
    let opened = open(line)?;
    let h = head(&opened.record)?;
    let from = match h.record.as_str() {
        "file_start" => {
            if !first {
                return Err("a file_start record that is not the first line of its file".into());
            }
            let stated = h
                .prev_chain
                .as_deref()
                .and_then(Chain::parse)
                .ok_or("a file_start record without a valid prev_chain")?;
            if prev.is_some_and(|p| p != stated) {
                return Err("does not continue the previous file: its prev_chain is not that file's last chain".into());
            }
            stated
        }
        "chain_break" => GENESIS,
        _ => prev.ok_or(
            "the first line of a file must be a file_start or chain_break record (lines removed from the start?)",
        )?,
    };
    if key.link(&from, &opened.record) != opened.chain {
        return Err(
            "chain mismatch: this line was changed, or a line before it removed or moved, or it was written with another key"
                .into(),
        );
    }
    Ok(Checked {
        chain: opened.chain,
        from,
        kind: h.record,
    })
}

/// Something a walk accepted but a reader must hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub line: u64,
    pub text: String,
}

/// A walk over one or more files given in chain order.
pub struct Walk<'k> {
    key: &'k ChainKey,
    allow_breaks: bool,
    prev: Option<Chain>,
    pub records: u64,
    pub notes: Vec<Note>,
    /// A chain shipped elsewhere earlier (`--anchor`): it must turn up.
    anchor: Option<Chain>,
    pub anchor_seen: bool,
}

impl<'k> Walk<'k> {
    pub fn new(key: &'k ChainKey, allow_breaks: bool) -> Walk<'k> {
        Walk {
            key,
            allow_breaks,
            prev: None,
            records: 0,
            notes: Vec::new(),
            anchor: None,
            anchor_seen: false,
        }
    }

    /// The walk must meet a line whose chain is `anchor` (a head logged earlier).
    pub fn anchored(mut self, anchor: Chain) -> Walk<'k> {
        self.anchor = Some(anchor);
        self
    }

    /// The chain of the last line that verified.
    pub fn head(&self) -> Option<Chain> {
        self.prev
    }

    /// Walks one file's bytes; the next file must continue where it ends.
    pub fn file(&mut self, bytes: &[u8]) -> Result<(), Bad> {
        let body = match bytes.strip_suffix(b"\n") {
            Some(b) => b,
            None if bytes.is_empty() => return Ok(()),
            None => bytes,
        };
        let total = body.split(|b| *b == b'\n').count() as u64;
        let mut damaged: Option<Bad> = None;
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            let n = i as u64 + 1;
            let partial = n == total && !bytes.ends_with(b"\n");
            let checked = match partial {
                true => Err("partial last line (no newline: the write was cut)".to_owned()),
                false => check_line(self.key, self.prev, line, n == 1),
            };
            match checked {
                Ok(c) => self.accept(n, &c, damaged.take())?,
                Err(why) => {
                    if let Some(d) = damaged {
                        return Err(d);
                    }
                    if !self.allow_breaks {
                        return Err(Bad { line: n, why });
                    }
                    // Accepted only if a chain_break follows at once.
                    damaged = Some(Bad { line: n, why });
                    self.prev = None;
                }
            }
        }
        damaged.map_or(Ok(()), Err)
    }

    fn accept(&mut self, n: u64, c: &Checked, damaged: Option<Bad>) -> Result<(), Bad> {
        let kind = c.kind.as_str();
        if kind == "chain_break" {
            if !self.allow_breaks {
                return Err(Bad {
                    line: n,
                    why: "chain_break: the proxy found the line before it damaged when it started \
                          (--allow-breaks accepts a break and checks on)"
                        .into(),
                });
            }
            let text = match damaged {
                Some(d) => format!("chain_break: line {} was damaged ({})", d.line, d.why),
                None => "chain_break (the damaged line before it is not in the file)".to_owned(),
            };
            self.notes.push(Note { line: n, text });
        } else if let Some(d) = damaged {
            return Err(d);
        } else if kind == "gap" {
            self.notes.push(Note {
                line: n,
                text: "gap: records were lost before this line (see its `dropped`)".into(),
            });
        }
        if kind == "file_start" && self.prev.is_none() && c.from != GENESIS {
            self.notes.push(Note {
                line: n,
                text: "continues the chain of an earlier file (give it first to check the link)".into(),
            });
        }
        self.prev = Some(c.chain);
        self.records += 1;
        self.anchor_seen |= self.anchor == Some(c.chain);
        Ok(())
    }
}
