//! A guard in front of the HTTP/1 parser against request smuggling. It reads
//! every request head with httparse, as hyper does, refuses a head whose
//! framing is ambiguous or that it cannot read, and follows every body (a
//! length, or chunks with a strict grammar) so it always knows where the next
//! head starts. It never stops looking: what it cannot follow, it refuses.

mod head;

use head::head_framing;

/// Longest request head; a longer one is refused, never passed unread.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header lines in a head (hyper's own bound).
const MAX_HEADERS: usize = 100;
/// Longest chunk extension, per chunk line; real clients send none.
const MAX_CHUNK_EXT: usize = 1024;
/// Most bytes in a trailer section (hyper's own bound).
const MAX_TRAILERS: usize = 16 * 1024;
/// A head buffer larger than this is freed once its head has passed.
pub const KEEP_CAPACITY: usize = 8 * 1024;
/// Longest chunk size: 16 hex digits fill a u64.
const MAX_SIZE_DIGITS: u8 = 16;

/// The header the guard's stand-in request carries (see [`REFUSED_HEAD`]);
/// a client head that carries it is refused, so only the guard can send it.
pub const REFUSED_MARKER: &str = "x-egress-guard-refused";

/// What the parser gets instead of a refused head: a request the handler
/// answers with the JSON `bad_request`, in order after the answers to the
/// requests before it, and that closes the connection.
pub const REFUSED_HEAD: &[u8] =
    b"GET / HTTP/1.1\r\nhost: egress-guard.invalid\r\nx-egress-guard-refused: 1\r\nconnection: close\r\n\r\n";

/// The outcome of feeding bytes to the [`Scanner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every byte was read; what may pass is in `out`.
    Done,
    /// A CONNECT head ended with `rest` bytes of the input after it, which
    /// the caller holds until the handler says whether they are a tunnel.
    Connect { rest: usize },
    /// A head was refused; nothing of it went to `out`.
    RefusedHead,
    /// A body broke its framing; `out` holds what came before the fault.
    RefusedBody,
}

/// The verdict of the simple [`Scanner::scan`] interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    Ok,
    /// A head or a body the guard refuses.
    Smuggling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Head,
    Body(u64),
    ChunkSize(SizeLine),
    ChunkData(u64),
    /// The CRLF after chunk data: `true` once the CR was read.
    ChunkEnd(bool),
    /// The trailer section, and how many bytes of it were read.
    Trailers(TrailerPhase, usize),
    /// After a CONNECT head, until the handler decides.
    Connect,
    /// An accepted CONNECT: the rest of the connection is the tunnel's.
    Tunnel,
    /// Something was refused: nothing more passes.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SizeLine {
    size: u64,
    digits: u8,
    phase: SizePhase,
    ext: usize,
}

impl SizeLine {
    const START: SizeLine = SizeLine {
        size: 0,
        digits: 0,
        phase: SizePhase::Digits,
        ext: 0,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizePhase {
    Digits,
    /// Blanks after the digits; no more digits may follow.
    Blank,
    Extension,
    Lf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrailerPhase {
    LineStart,
    Line,
    LineLf,
    EndLf,
}

/// Follows request framing across reads on one connection. Its memory is
/// one head at most ([`MAX_HEAD`]); bodies pass through without a copy kept.
#[derive(Debug, Default)]
pub struct Scanner {
    state: State,
    head: Vec<u8>,
}

impl Scanner {
    /// Feeds the next bytes read from the client; appends what may pass to
    /// `out`. Heads are held back until they are whole and accepted.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Step {
        while !input.is_empty() {
            let used = match self.state {
                State::Refused => return Step::RefusedHead,
                State::Connect => return Step::Connect { rest: input.len() },
                State::Tunnel => {
                    out.extend_from_slice(input);
                    input.len()
                }
                State::Head => match self.head_bytes(input, out) {
                    Ok(used) => used,
                    Err(()) => {
                        self.refuse();
                        return Step::RefusedHead;
                    }
                },
                State::Body(left) | State::ChunkData(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    out.extend_from_slice(input.get(..n).unwrap_or_default());
                    self.after_data(left - n as u64);
                    n
                }
                _ => {
                    let n = self.framing_bytes(input);
                    out.extend_from_slice(input.get(..n).unwrap_or_default());
                    if self.state == State::Refused {
                        return Step::RefusedBody;
                    }
                    n
                }
            };
            input = input.get(used..).unwrap_or_default();
            if self.state == State::Connect {
                return Step::Connect { rest: input.len() };
            }
        }
        Step::Done
    }

    /// The handler accepted the CONNECT: what follows is the tunnel's.
    pub fn tunnel(&mut self) {
        if self.state == State::Connect {
            self.state = State::Tunnel;
        }
    }

    /// The handler refused the CONNECT: the connection goes on with a new head.
    pub fn connect_refused(&mut self) {
        if self.state == State::Connect {
            self.state = State::Head;
        }
    }

    /// Feeds bytes and says whether the guard refused anything. A CONNECT
    /// is taken as refused, so the bytes after it are read as heads: the
    /// strictest reading, for tests and fuzzing without a handler.
    pub fn scan(&mut self, mut input: &[u8]) -> Scan {
        let mut out = Vec::new();
        loop {
            out.clear();
            match self.feed(input, &mut out) {
                Step::Done => return Scan::Ok,
                Step::RefusedHead | Step::RefusedBody => return Scan::Smuggling,
                Step::Connect { rest } => {
                    self.connect_refused();
                    input = input.get(input.len() - rest..).unwrap_or_default();
                }
            }
        }
    }

    fn refuse(&mut self) {
        self.state = State::Refused;
        self.head = Vec::new();
    }

    fn after_data(&mut self, left: u64) {
        self.state = match (self.state, left) {
            (State::Body(_), 0) => State::Head,
            (State::Body(_), n) => State::Body(n),
            (_, 0) => State::ChunkEnd(false),
            (_, n) => State::ChunkData(n),
        };
    }

    /// Takes head bytes from `input`; returns how many it used.
    fn head_bytes(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ()> {
        let skipped = self.empty_lines(input, out)?;
        let input = input.get(skipped..).unwrap_or_default();
        if input.is_empty() {
            return Ok(skipped);
        }
        let before = self.head.len();
        let room = MAX_HEAD.saturating_sub(before);
        // Only the head is copied and parsed: the body that came in the same
        // read stays in `input` for the body states (copying it here and
        // scanning it for the empty line cost more than the head itself).
        let end = head_end(self.head.as_slice(), input);
        let take = end.unwrap_or(input.len()).min(room);
        self.head.extend_from_slice(input.get(..take).unwrap_or(input));
        let taken = self.head.len() - before;
        // Parse only once the head can be whole: an empty line was seen.
        let ended = end.is_some_and(|e| e <= room);
        let (len, next) = if ended {
            head_framing(&self.head)?
        } else {
            (None, State::Head)
        };
        let Some(len) = len else {
            return if self.head.len() >= MAX_HEAD {
                Err(())
            } else {
                Ok(skipped + taken)
            };
        };
        let used = len.checked_sub(before).ok_or(())?;
        out.extend_from_slice(self.head.get(..len).unwrap_or_default());
        self.head.clear();
        // An idle connection keeps no large head's buffer.
        if self.head.capacity() > KEEP_CAPACITY {
            self.head = Vec::new();
        }
        self.state = next;
        Ok(skipped + used)
    }

    /// Empty lines before a request line pass at once, as httparse skips
    /// them (CRLF or a bare LF; a CR without LF is refused). Returns how
    /// many bytes they took; a CR at the end of the input waits in `head`.
    fn empty_lines(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ()> {
        let mut used = 0;
        for &b in input {
            match (self.head.as_slice(), b) {
                ([], b'\n') | (b"\r", b'\n') => {
                    out.extend_from_slice(&self.head);
                    out.push(b'\n');
                    self.head.clear();
                }
                ([], b'\r') => self.head.push(b'\r'),
                (b"\r", _) => return Err(()),
                _ => break,
            }
            used += 1;
        }
        Ok(used)
    }

    /// Chunk lines and trailers, byte by byte; returns how many bytes it
    /// used (all up to the fault when it refuses, or to the start of data).
    fn framing_bytes(&mut self, input: &[u8]) -> usize {
        for (i, &b) in input.iter().enumerate() {
            self.state = match self.state {
                State::ChunkSize(line) => size_byte(line, b),
                State::ChunkEnd(false) if b == b'\r' => State::ChunkEnd(true),
                State::ChunkEnd(true) if b == b'\n' => State::ChunkSize(SizeLine::START),
                State::Trailers(phase, read) => trailer_byte(phase, read, b),
                _ => State::Refused,
            };
            match self.state {
                State::Refused => return i,
                State::ChunkData(_) | State::Head => return i + 1,
                _ => {}
            }
        }
        input.len()
    }
}

/// One byte of a chunk-size line: `1*HEXDIG *(SP / HTAB) [";" ext] CRLF`,
/// as hyper reads it, with the size checked for overflow and the
/// extension bounded.
fn size_byte(mut line: SizeLine, b: u8) -> State {
    let hex = (b as char).to_digit(16);
    match (line.phase, b, hex) {
        (SizePhase::Digits, _, Some(d)) if line.digits < MAX_SIZE_DIGITS => {
            line.digits += 1;
            line.size = (line.size << 4) | u64::from(d);
        }
        (SizePhase::Digits, b' ' | b'\t', _) if line.digits > 0 => line.phase = SizePhase::Blank,
        (SizePhase::Blank, b' ' | b'\t', _) => {}
        (SizePhase::Digits | SizePhase::Blank, b';', _) if line.digits > 0 => line.phase = SizePhase::Extension,
        (SizePhase::Digits | SizePhase::Blank | SizePhase::Extension, b'\r', _) if line.digits > 0 => {
            line.phase = SizePhase::Lf;
        }
        (SizePhase::Extension, _, _) if (b == b'\t' || !b.is_ascii_control()) && line.ext < MAX_CHUNK_EXT => {
            line.ext += 1;
        }
        (SizePhase::Lf, b'\n', _) if line.size == 0 => return State::Trailers(TrailerPhase::LineStart, 0),
        (SizePhase::Lf, b'\n', _) => return State::ChunkData(line.size),
        _ => return State::Refused,
    }
    State::ChunkSize(line)
}

/// One byte of the trailer section after the last chunk: lines ending in
/// CRLF, then an empty line. Bare LF and lone CR are refused.
fn trailer_byte(phase: TrailerPhase, read: usize, b: u8) -> State {
    if read >= MAX_TRAILERS {
        return State::Refused;
    }
    let phase = match (phase, b) {
        (TrailerPhase::LineStart, b'\r') => TrailerPhase::EndLf,
        (TrailerPhase::EndLf, b'\n') => return State::Head,
        (TrailerPhase::Line, b'\r') => TrailerPhase::LineLf,
        (TrailerPhase::LineLf, b'\n') => TrailerPhase::LineStart,
        (TrailerPhase::LineStart | TrailerPhase::Line, b) if b != b'\n' => TrailerPhase::Line,
        _ => return State::Refused,
    };
    State::Trailers(phase, read + 1)
}

/// How many bytes of `input` complete the head begun in `held`: up to and
/// including the LF of the first empty line (`\n\n` or `\n\r\n`, as httparse
/// ends a head), or `None` when `input` holds no such end yet.
fn head_end(held: &[u8], input: &[u8]) -> Option<usize> {
    let before = |i: usize, back: usize| -> Option<u8> {
        match i.checked_sub(back) {
            Some(j) => input.get(j).copied(),
            None => held.len().checked_sub(back - i).and_then(|j| held.get(j).copied()),
        }
    };
    input
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .find_map(|(i, _)| {
            let ended = before(i, 1) == Some(b'\n') || (before(i, 1) == Some(b'\r') && before(i, 2) == Some(b'\n'));
            ended.then_some(i + 1)
        })
}

#[cfg(test)]
mod tests;
