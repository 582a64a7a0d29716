//! An independent model of how hyper 1's HTTP/1 server reads a request stream: httparse
//! for each head (hyper's own parser, default config, 100 headers), then hyper's body
//! framing rules and chunked decoder, request after request, as long as hyper would keep
//! the connection. It lists every head hyper would parse, with its framing headers.

/// Bytes hyper buffers at most while reading a head (its default `max_buf_size`).
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// hyper's limit on a request-target.
const MAX_URI_LEN: usize = u16::MAX as usize - 1;
/// hyper's `DEFAULT_MAX_HEADERS`, also its limit on trailer lines.
const MAX_HEADERS: usize = 100;
/// hyper's `CHUNKED_EXTENSIONS_LIMIT` and `TRAILER_LIMIT`.
const EXTENSIONS_LIMIT: u64 = 1024 * 16;
const TRAILER_LIMIT: usize = 1024 * 16;

/// One request head as httparse read it: where it starts and the framing headers' raw values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub offset: usize,
    pub content_length: Vec<Vec<u8>>,
    pub transfer_encoding: Vec<Vec<u8>>,
    /// Both kinds in header order (`true` for Transfer-Encoding): hyper's verdict depends on it.
    order: Vec<(bool, Vec<u8>)>,
}

impl Head {
    /// The Content-Length values hyper (or a peer reading lists) would see, split on `,`.
    pub fn lengths(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for v in &self.content_length {
            for part in v.split(|&b| b == b',') {
                if let Some(n) = digits(part.trim_ascii()) {
                    out.push(n);
                }
            }
        }
        out
    }
}

/// Every head hyper's server would parse from `stream`, in order.
pub fn heads(stream: &[u8]) -> Vec<Head> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rest) = stream.get(pos..).filter(|r| !r.is_empty()) {
        let Some((len, head, http11, method_ok, uri_ok, connection)) = parse_head(rest) else {
            break;
        };
        out.push(Head {
            offset: pos,
            ..head.clone()
        });
        if !(method_ok && uri_ok) {
            break;
        }
        let Some(framing) = framing(&head, http11) else { break };
        pos += len;
        let body = match framing {
            Framing::Length(n) => usize::try_from(n).ok().filter(|&n| n <= stream.len() - pos),
            Framing::Chunked => chunked_len(stream.get(pos..).unwrap_or_default()),
        };
        let Some(body) = body else { break };
        pos += body;
        let both = !head.content_length.is_empty() && !head.transfer_encoding.is_empty();
        let keep_alive = keep_alive(http11, &connection) && !both;
        if !keep_alive {
            break;
        }
    }
    out
}

type Parsed = (usize, Head, bool, bool, bool, Vec<Vec<u8>>);

/// One head: its length, framing headers, HTTP/1.1 or not, whether hyper accepts its
/// method and target, and its Connection values. `None`: incomplete or refused by httparse.
fn parse_head(buf: &[u8]) -> Option<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        _ => return None,
    };
    let method_ok = http::Method::from_bytes(req.method?.as_bytes()).is_ok();
    let path = req.path?;
    let uri_ok = path.len() <= MAX_URI_LEN && http::Uri::try_from(path.as_bytes()).is_ok();
    let http11 = req.version? == 1;
    let mut head = Head {
        offset: 0,
        content_length: Vec::new(),
        transfer_encoding: Vec::new(),
        order: Vec::new(),
    };
    let mut connection = Vec::new();
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length.push(h.value.to_vec());
            head.order.push((false, h.value.to_vec()));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.transfer_encoding.push(h.value.to_vec());
            head.order.push((true, h.value.to_vec()));
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection.push(h.value.to_vec());
        }
    }
    Some((len, head, http11, method_ok, uri_ok, connection))
}

enum Framing {
    Length(u64),
    Chunked,
}

/// hyper's request body framing, header by header as `role.rs` applies RFC 9112 §6.3;
/// `None` where hyper answers 400 and closes. A Content-Length before Transfer-Encoding is
/// dropped, one after it ignored: the very ambiguity the guard exists to refuse.
fn framing(head: &Head, http11: bool) -> Option<Framing> {
    let (mut te, mut chunked, mut length) = (false, false, None);
    for (is_te, value) in &head.order {
        if *is_te {
            if !http11 {
                return None;
            }
            te = true;
            length = None;
            chunked = is_chunked(value);
        } else if !te {
            let n = digits(value)?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    match (te, chunked) {
        (true, true) => Some(Framing::Chunked),
        (true, false) => None,
        _ => Some(Framing::Length(length.unwrap_or(0))),
    }
}

/// hyper's `is_chunked_`: the value is visible ASCII and its last coding is `chunked`.
fn is_chunked(value: &[u8]) -> bool {
    let visible = value.iter().all(|&b| b == b'\t' || (32..127).contains(&b));
    let text = std::str::from_utf8(value).ok().filter(|_| visible);
    text.and_then(|t| t.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

fn keep_alive(http11: bool, connection: &[Vec<u8>]) -> bool {
    let has = |needle: &str| {
        connection
            .iter()
            .any(|v| std::str::from_utf8(v).is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(needle))))
    };
    if has("close") {
        return false;
    }
    http11 || has("keep-alive")
}

/// hyper's `from_digits`: ASCII digits only, no sign, no space, no overflow.
fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Length of a chunked body as hyper's `ChunkedState` decodes it, trailers and final CRLF
/// included; `None` when it is incomplete or hyper refuses it (the connection then ends).
pub fn chunked_len(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let (size, after) = chunk_size_line(buf, i)?;
        i = after;
        if size == 0 {
            return trailers_end(buf, i);
        }
        let size = usize::try_from(size).ok()?;
        i = i.checked_add(size).filter(|&e| e <= buf.len())?;
        if buf.get(i..i + 2)? != b"\r\n" {
            return None;
        }
        i += 2;
    }
}

/// `HEX [LWS] [;ext] CRLF`: the size and the index after the LF.
fn chunk_size_line(buf: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let mut size: u64 = 0;
    let first = *buf.get(i)?;
    char::from(first).to_digit(16)?;
    let mut state = 0; // 0 digits, 1 LWS, 2 extension
    let mut ext = 0u64;
    loop {
        let b = *buf.get(i)?;
        i += 1;
        match (state, b) {
            (0, _) if char::from(b).is_ascii_hexdigit() => {
                let d = u64::from(char::from(b).to_digit(16)?);
                size = size.checked_mul(16)?.checked_add(d)?;
            }
            (0 | 1, b'\t' | b' ') => state = 1,
            (0 | 1, b';') => state = 2,
            (_, b'\r') => return (buf.get(i) == Some(&b'\n')).then_some((size, i + 1)),
            (2, b'\n') => return None,
            (2, _) => {
                ext += 1;
                if ext >= EXTENSIONS_LIMIT {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// After the last chunk: trailer lines up to an empty line, read as hyper's decoder does
/// (each line ends at CR, which must be followed by LF), then checked by httparse.
fn trailers_end(buf: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    let mut lines = 0;
    loop {
        if buf.get(i..i + 2)? == b"\r\n" {
            break;
        }
        let cr = buf.get(i..)?.iter().position(|&b| b == b'\r')? + i;
        if buf.get(cr + 1)? != &b'\n' {
            return None;
        }
        lines += 1;
        if lines > MAX_HEADERS || cr + 2 - start > TRAILER_LIMIT {
            return None;
        }
        i = cr + 2;
    }
    let end = i + 2;
    if lines > 0 {
        let mut headers = vec![httparse::EMPTY_HEADER; lines];
        match httparse::parse_headers(buf.get(start..end)?, &mut headers) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_heads_and_bodies() {
        let s = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloPOST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
        let h = heads(s);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h[1].transfer_encoding, vec![b"chunked".to_vec()]);
    }

    #[test]
    fn bare_lf_heads_are_heads() {
        let h = heads(b"POST / HTTP/1.1\nContent-Length: 1\nTransfer-Encoding: chunked\n\n0\r\n\r\n");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].lengths(), vec![1]);
    }

    #[test]
    fn stops_where_hyper_stops() {
        // HTTP/1.0 closes; a bad chunk size ends the connection; differing lengths are a 400.
        assert_eq!(heads(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n").len(), 1);
        assert_eq!(
            heads(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\nGET / HTTP/1.1\r\n\r\n").len(),
            1
        );
        assert_eq!(
            heads(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxGET / HTTP/1.1\r\n\r\n").len(),
            1
        );
        assert_eq!(
            heads(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n").len(),
            1
        );
    }

    #[test]
    fn chunked_lengths() {
        assert_eq!(chunked_len(b"0\r\n\r\n"), Some(5));
        assert_eq!(chunked_len(b"1 ;a\r\nx\r\n0\r\n\r\nrest"), Some(14));
        assert_eq!(chunked_len(b"1\nx\r\n0\r\n\r\n"), None, "bare LF after size");
        assert_eq!(chunked_len(b"fffffffffffffffff\r\n"), None, "overflow");
        assert_eq!(chunked_len(b"0\r\nA: b\r\n\r\n"), Some(11));
        assert_eq!(chunked_len(b"0\r\nbad line\r\n\r\n"), None, "trailer httparse refuses");
    }
}
