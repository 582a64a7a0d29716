//! What framing a request head declares, read as hyper reads it (with
//! `httparse`), refusing every head two parsers could frame differently.

use super::{SizeLine, State, MAX_HEADERS, REFUSED_MARKER};

/// Reads a head as hyper does. `Ok((None, _))`: not whole yet; `Ok((Some(len),
/// next))`: the head's length and the state its framing leads to; `Err`: refused.
pub(super) fn head_framing(buf: &[u8]) -> Result<(Option<usize>, State), ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok((None, State::Head)),
        Err(_) => return Err(()),
    };
    let next = framing_of(&req)?;
    Ok((Some(len), next))
}

/// The framing a parsed head declares, or `Err` when it is ambiguous: both
/// `Content-Length` and `Transfer-Encoding`, either twice, a length that is
/// not plain digits, either spelled with `_`, a coding other than exactly `chunked`, chunked in
/// HTTP/1.0, an HTTP/1.1 head without exactly one `Host`, a CONNECT with a body.
fn framing_of(req: &httparse::Request<'_, '_>) -> Result<State, ()> {
    let http11 = req.version == Some(1);
    let connect = req.method == Some("CONNECT");
    let target = req.path.ok_or(())?;
    // hyper refuses a target `http::Uri` cannot read with a bare 400: refuse it here, in JSON.
    http::Uri::try_from(target).map_err(|_| ())?;
    let (mut length, mut lengths, mut codings, mut hosts) = (0u64, 0, 0, 0);
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let framing = is_name(name, b"content-length") || is_name(name, b"transfer-encoding");
        // hyper frames only by the exact names; a server behind CGI reads `_` as `-`.
        // Alone, `Content_Length: N` would make the guard and hyper disagree on
        // where the next head starts: refused, whatever else the head holds.
        if framing && name.contains(&b'_') {
            return Err(());
        }
        if is_name(name, b"content-length") {
            lengths += 1;
            length = digits(h.value).ok_or(())?;
        } else if is_name(name, b"transfer-encoding") {
            codings += 1;
            if !h.value.eq_ignore_ascii_case(b"chunked") {
                return Err(());
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(REFUSED_MARKER.as_bytes()) {
            return Err(());
        }
    }
    let ambiguous = lengths > 1 || codings > 1 || (lengths > 0 && codings > 0);
    let bad_host = hosts > 1 || (http11 && hosts == 0);
    if ambiguous || bad_host || (codings > 0 && !http11) {
        return Err(());
    }
    Ok(match (connect, codings > 0, length) {
        (true, false, 0) => State::Connect,
        (true, _, _) => return Err(()),
        (false, true, _) => State::ChunkSize(SizeLine::START),
        (false, false, 0) => State::Head,
        (false, false, n) => State::Body(n),
    })
}

/// `name` is `want` (lower-case), case-blind, also when spelled with `_` for
/// `-`: a server behind PHP or CGI reads those as the same header.
fn is_name(name: &[u8], want: &[u8]) -> bool {
    name.len() == want.len()
        && name
            .iter()
            .zip(want)
            .all(|(&a, &w)| a.to_ascii_lowercase() == w || (a == b'_' && w == b'-'))
}

/// `1*DIGIT` without sign, blanks or list, and no overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
            .flatten()
    })
}
