//! Undoing an answer's gzip or deflate coding so the scrubber sees plain
//! bytes, in bounded steps: each step inflates at most [`STEP`] bytes whatever
//! the ratio, and the gzip header is skipped, never stored.

use bytes::{Buf, Bytes};
use flate2::{Crc, Decompress, FlushDecompress, Status};
use http::{header, HeaderMap};

/// Most bytes one decoding step produces.
pub const STEP: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// The zlib format, as `deflate` means in HTTP.
    Deflate,
}

/// The answer's codings are not ones the proxy can undo: unknown, stacked,
/// or not text. Its body could carry a secret past the scrubber.
#[derive(Debug, thiserror::Error)]
#[error("answer coding the proxy cannot undo")]
pub struct Unreadable;

/// The answer's body is not valid in its coding (or ended early).
#[derive(Debug, thiserror::Error)]
#[error("answer body does not decode")]
pub struct Corrupt;

/// The one coding to undo, read from every `Content-Encoding` header and
/// comma list, then every `Transfer-Encoding` coding but `chunked` (applied
/// after them). `identity` is no coding; more than one coding is refused.
pub fn coding(headers: &HeaderMap) -> Result<Option<Coding>, Unreadable> {
    let mut found = None;
    let lists = [
        (header::CONTENT_ENCODING, "identity"),
        (header::TRANSFER_ENCODING, "chunked"),
    ];
    for (name, neutral) in lists {
        for value in headers.get_all(name) {
            let text = value.to_str().map_err(|_| Unreadable)?;
            for c in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let c = if c.eq_ignore_ascii_case(neutral) || c.eq_ignore_ascii_case("identity") {
                    continue;
                } else if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") {
                    Coding::Gzip
                } else if c.eq_ignore_ascii_case("deflate") {
                    Coding::Deflate
                } else {
                    return Err(Unreadable);
                };
                if found.replace(c).is_some() {
                    return Err(Unreadable);
                }
            }
        }
    }
    Ok(found)
}

/// What one step gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// Every byte fed so far is used: feed the next piece (or end the input).
    NeedInput,
    /// The coded stream ended and was verified.
    Done,
}

/// Where in the coded stream the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// gzip's fixed 10 header bytes; `flags` kept from the fourth.
    Fixed {
        got: usize,
        flags: u8,
    },
    /// The optional header parts, each skipped byte by byte.
    ExtraLen {
        got: usize,
        len: usize,
        flags: u8,
    },
    Skip {
        left: usize,
        flags: u8,
    },
    ZeroEnded {
        flags: u8,
    },
    Body,
    /// gzip's CRC-32 and size, little-endian.
    Trailer {
        got: usize,
        crc: u32,
        size: u32,
    },
    Done,
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED: u8 = 0xE0;

/// A streaming decoder fed one upstream frame at a time.
pub struct Decoder {
    coding: Coding,
    inflate: Decompress,
    crc: Crc,
    stage: Stage,
    input: Bytes,
    ended: bool,
    seen: bool,
    out: Box<[u8]>,
}

impl Decoder {
    pub fn new(coding: Coding) -> Decoder {
        let (inflate, stage) = match coding {
            Coding::Gzip => (Decompress::new(false), Stage::Fixed { got: 0, flags: 0 }),
            Coding::Deflate => (Decompress::new(true), Stage::Body),
        };
        Decoder {
            coding,
            inflate,
            crc: Crc::new(),
            stage,
            input: Bytes::new(),
            ended: false,
            seen: false,
            out: vec![0u8; STEP].into_boxed_slice(),
        }
    }

    /// The next piece of coded input; call when a step asked for it.
    pub fn feed(&mut self, data: Bytes) {
        self.seen |= !data.is_empty();
        self.input = if self.input.is_empty() {
            data
        } else {
            Bytes::from([self.input.as_ref(), data.as_ref()].concat())
        };
    }

    /// No more input will come: the stream must end with what was fed.
    pub fn end_input(&mut self) {
        self.ended = true;
    }

    /// Decodes at most [`STEP`] bytes.
    pub fn step(&mut self) -> Result<Step, Corrupt> {
        loop {
            match self.stage {
                Stage::Done if self.input.is_empty() => return Ok(Step::Done),
                // Bytes after the end: a second member or junk the client would read differently.
                Stage::Done => return Err(Corrupt),
                Stage::Body => {
                    if let Some(step) = self.inflate_step()? {
                        return Ok(step);
                    }
                }
                _ if self.input.is_empty() => return self.need_input(),
                _ => {
                    let b = self.input.get_u8();
                    self.stage = self.frame_byte(b)?;
                }
            }
        }
    }

    fn need_input(&mut self) -> Result<Step, Corrupt> {
        if !self.ended {
            Ok(Step::NeedInput)
        } else if !self.seen {
            // No body at all (HEAD, 204, 304): nothing to decode.
            self.stage = Stage::Done;
            Ok(Step::Done)
        } else {
            Err(Corrupt)
        }
    }

    /// One inflate call; `None` when it only consumed input (or just ended) and the loop goes on.
    fn inflate_step(&mut self) -> Result<Option<Step>, Corrupt> {
        let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
        let status = self
            .inflate
            .decompress(&self.input, &mut self.out, FlushDecompress::None)
            .map_err(|_| Corrupt)?;
        let used = usize::try_from(self.inflate.total_in() - in0).unwrap_or(usize::MAX);
        let made = usize::try_from(self.inflate.total_out() - out0).unwrap_or(usize::MAX);
        self.input.advance(used.min(self.input.len()));
        let data = Bytes::copy_from_slice(self.out.get(..made).unwrap_or_default());
        self.crc.update(&data);
        if status == Status::StreamEnd {
            self.stage = match self.coding {
                Coding::Gzip => Stage::Trailer {
                    got: 0,
                    crc: 0,
                    size: 0,
                },
                Coding::Deflate => Stage::Done,
            };
        }
        if made > 0 {
            return Ok(Some(Step::Data(data)));
        }
        if used == 0 && status != Status::StreamEnd {
            return self.need_input().map(Some);
        }
        Ok(None)
    }

    /// The gzip framing around the deflate data, one byte at a time (RFC 1952).
    fn frame_byte(&self, b: u8) -> Result<Stage, Corrupt> {
        let next = match self.stage {
            Stage::Fixed { got, flags } => fixed_byte(got, flags, b)?,
            Stage::ExtraLen { got: 0, flags, .. } => Stage::ExtraLen {
                got: 1,
                len: usize::from(b),
                flags,
            },
            Stage::ExtraLen { len, flags, .. } => skip(len | usize::from(b) << 8, flags & !FEXTRA),
            Stage::Skip { left, flags } => skip(left.saturating_sub(1), flags),
            Stage::ZeroEnded { flags } if b != 0 => Stage::ZeroEnded { flags },
            Stage::ZeroEnded { flags } => after_fixed(flags),
            Stage::Trailer { got, crc, size } => self.trailer_byte(got, crc, size, b)?,
            Stage::Body | Stage::Done => return Err(Corrupt),
        };
        Ok(next)
    }

    /// CRC-32 then size of the decoded data, little-endian; checked at the last byte.
    fn trailer_byte(&self, got: usize, crc: u32, size: u32, b: u8) -> Result<Stage, Corrupt> {
        let (crc, size) = if got < 4 {
            (crc | u32::from(b) << (8 * got), size)
        } else {
            (crc, size | u32::from(b) << (8 * (got - 4)))
        };
        if got < 7 {
            Ok(Stage::Trailer {
                got: got + 1,
                crc,
                size,
            })
        } else if crc == self.crc.sum() && size == self.crc.amount() {
            Ok(Stage::Done)
        } else {
            Err(Corrupt)
        }
    }
}

/// The fixed header: magic, method deflate, flags without reserved bits; the
/// time, extra flags and OS bytes are not looked at.
fn fixed_byte(got: usize, flags: u8, b: u8) -> Result<Stage, Corrupt> {
    let ok = match got {
        0 => b == 0x1f,
        1 => b == 0x8b,
        2 => b == 8,
        3 => b & RESERVED == 0,
        _ => true,
    };
    if !ok {
        return Err(Corrupt);
    }
    let flags = if got == 3 { b } else { flags };
    Ok(match got {
        9 => after_fixed(flags),
        _ => Stage::Fixed { got: got + 1, flags },
    })
}

/// The next optional header part `flags` still announces, in RFC order.
fn after_fixed(flags: u8) -> Stage {
    if flags & FEXTRA != 0 {
        Stage::ExtraLen { got: 0, len: 0, flags }
    } else if flags & FNAME != 0 {
        Stage::ZeroEnded { flags: flags & !FNAME }
    } else if flags & FCOMMENT != 0 {
        Stage::ZeroEnded {
            flags: flags & !FCOMMENT,
        }
    } else if flags & FHCRC != 0 {
        skip(2, flags & !FHCRC)
    } else {
        Stage::Body
    }
}

fn skip(left: usize, flags: u8) -> Stage {
    if left == 0 {
        after_fixed(flags)
    } else {
        Stage::Skip { left, flags }
    }
}

#[cfg(test)]
mod tests;
