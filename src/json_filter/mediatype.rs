//! A strict reading of one `Content-Type` value (RFC 9110 media type) for bodies a policy
//! filters: the body must be UTF-8, so the only charset accepted is `utf-8`; and wherever
//! two parsers could read the parameters differently, the value is refused, not guessed.

/// What a body policy can filter. `Other` is refused by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `application/json` or `application/<anything>+json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    Other,
}

/// Why a value was refused. Carries nothing from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a well-formed `type/subtype *(; name=value)` under this module's strict rules.
    Malformed,
    /// The same parameter twice (parsers differ on which one wins).
    Duplicate,
    /// A charset other than `utf-8` (`utf8`, `utf-7`, `latin1`...).
    Charset,
}

/// Reads one `Content-Type` value. Accepts `type/subtype` followed by `;`-separated
/// `name=value` parameters with optional spaces or tabs around the `;` only. A value is a
/// token or a quoted string holding no backslash (no quoted-pairs to unescape), no `;`,
/// `,`, `=` or `"`, so a parser that splits naively on `;` and `=` reads the same
/// parameters. `charset`, if present, must be `utf-8` (any case, optionally quoted), and
/// the word "charset" may appear nowhere else (so a lax `charset=` search cannot find a
/// second one). Empty parameters, duplicates and non-ASCII bytes are refused.
pub fn parse(value: &[u8]) -> Result<Kind, Invalid> {
    let value = value.trim_ascii();
    let essence_end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let essence = value.get(..essence_end).unwrap_or(&[]).trim_ascii_end();
    let kind = essence_kind(essence)?;
    let mut rest = value.get(essence_end..).unwrap_or(&[]);
    let mut names: Vec<&[u8]> = Vec::new();
    let mut charset_params = 0;
    while let Some(after) = rest.strip_prefix(b";") {
        let (name, val, next) = parameter(skip_ows(after))?;
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(Invalid::Duplicate);
        }
        names.push(name);
        if name.eq_ignore_ascii_case(b"charset") {
            charset_params += 1;
            let unquoted = val
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(val);
            if !unquoted.eq_ignore_ascii_case(b"utf-8") {
                return Err(Invalid::Charset);
            }
        }
        rest = skip_ows(next);
    }
    if !rest.is_empty() {
        return Err(Invalid::Malformed);
    }
    if count_charset(value) != charset_params {
        return Err(Invalid::Charset);
    }
    Ok(kind)
}

fn essence_kind(essence: &[u8]) -> Result<Kind, Invalid> {
    let slash = essence.iter().position(|&b| b == b'/').ok_or(Invalid::Malformed)?;
    let (ty, sub) = (
        essence.get(..slash).unwrap_or(&[]),
        essence.get(slash + 1..).unwrap_or(&[]),
    );
    if !is_token(ty) || !is_token(sub) {
        return Err(Invalid::Malformed);
    }
    if !ty.eq_ignore_ascii_case(b"application") {
        return Ok(Kind::Other);
    }
    let json_suffix = sub.len() > 5
        && sub
            .get(sub.len() - 5..)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"+json"));
    Ok(if sub.eq_ignore_ascii_case(b"json") || json_suffix {
        Kind::Json
    } else if sub.eq_ignore_ascii_case(b"x-www-form-urlencoded") {
        Kind::Form
    } else {
        Kind::Other
    })
}

/// One parameter: name, raw value (quotes included), and what follows it.
type Param<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// `name=value` at the start of `s`.
fn parameter(s: &[u8]) -> Result<Param<'_>, Invalid> {
    let name_len = s.iter().position(|&b| !is_tchar(b)).unwrap_or(s.len());
    let (name, rest) = s.split_at(name_len);
    // No space around '=': body-parser's `content-type` allows it, RFC 9110 does not.
    let rest = rest.strip_prefix(b"=").ok_or(Invalid::Malformed)?;
    if name.is_empty() {
        return Err(Invalid::Malformed);
    }
    let val_len = match rest.first() {
        Some(b'"') => {
            let close = rest
                .get(1..)
                .and_then(|r| r.iter().position(|&b| b == b'"'))
                .ok_or(Invalid::Malformed)?;
            let inner = rest.get(1..=close).unwrap_or(&[]);
            if !inner.iter().all(|&b| quoted_safe(b)) {
                return Err(Invalid::Malformed);
            }
            close + 2
        }
        _ => rest.iter().position(|&b| !is_tchar(b)).unwrap_or(rest.len()),
    };
    if val_len == 0 {
        return Err(Invalid::Malformed);
    }
    let (val, next) = rest.split_at(val_len);
    Ok((name, val, next))
}

fn skip_ows(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(s.len());
    s.get(n..).unwrap_or(&[])
}

/// Case-insensitive occurrences of "charset" anywhere in the value.
fn count_charset(value: &[u8]) -> usize {
    value.windows(7).filter(|w| w.eq_ignore_ascii_case(b"charset")).count()
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// RFC 9110 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Inside quotes: printable ASCII and space, minus what a naive splitter would act on.
fn quoted_safe(b: u8) -> bool {
    (b == b' ' || b.is_ascii_graphic()) && !b"\\\";,=".contains(&b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{parse, Invalid, Kind};

    #[test]
    fn table() {
        use Invalid::{Charset, Duplicate, Malformed};
        #[rustfmt::skip]
        let cases: &[(&str, &str, Result<Kind, Invalid>)] = &[
            ("json", "application/json", Ok(Kind::Json)),
            ("case", "Application/JSON", Ok(Kind::Json)),
            ("suffix", "application/vnd.api+json", Ok(Kind::Json)),
            ("charset", "application/json; charset=utf-8", Ok(Kind::Json)),
            ("charset upper, no space", "application/json;charset=UTF-8", Ok(Kind::Json)),
            ("charset quoted", "application/json; charset=\"utf-8\"", Ok(Kind::Json)),
            ("name case", "application/json; CharSet=utf-8", Ok(Kind::Json)),
            ("ows around ;", "application/json ;\tcharset=utf-8 ", Ok(Kind::Json)),
            ("other param", "application/vnd.api+json; ext=\"https://x.example/ext\"", Ok(Kind::Json)),
            ("form", "application/x-www-form-urlencoded; charset=utf-8", Ok(Kind::Form)),
            ("text", "text/plain", Ok(Kind::Other)),
            ("multipart", "multipart/form-data; boundary=xyz", Ok(Kind::Other)),
            ("bare +json", "application/+json", Ok(Kind::Other)),
            ("utf-7", "application/json; charset=utf-7", Err(Charset)),
            ("utf-7 quoted", "application/json; charset=\"UTF-7\"", Err(Charset)),
            ("utf8 without dash", "application/json; charset=utf8", Err(Charset)),
            ("latin1", "application/json; charset=iso-8859-1", Err(Charset)),
            ("utf-16", "application/json; charset=utf-16", Err(Charset)),
            ("empty charset quotes", "application/json; charset=\"\"", Err(Charset)),
            ("duplicate charset", "application/json; charset=utf-8; charset=utf-8", Err(Duplicate)),
            ("duplicate charset case", "application/json; charset=utf-8; CHARSET=utf-7", Err(Duplicate)),
            ("duplicate other", "application/json; a=1; A=2", Err(Duplicate)),
            ("charset hidden in quotes", "application/json; x=\"charset\"", Err(Charset)),
            ("charset in a name", "application/json; x-charset=utf-7", Err(Charset)),
            ("semicolon in quotes", "application/json; x=\"a; charset=utf-7\"", Err(Malformed)),
            ("backslash in quotes", "application/json; charset=\"utf\\-8\"", Err(Malformed)),
            ("unclosed quote", "application/json; charset=\"utf-8", Err(Malformed)),
            ("space before =", "application/json; charset =utf-7", Err(Malformed)),
            ("space after =", "application/json; charset= utf-8", Err(Malformed)),
            ("empty parameter", "application/json;", Err(Malformed)),
            ("double ;", "application/json;; charset=utf-8", Err(Malformed)),
            ("no value", "application/json; charset", Err(Malformed)),
            ("empty value", "application/json; charset=", Err(Malformed)),
            ("junk after value", "application/json; charset=utf-8 x", Err(Malformed)),
            ("comma list", "application/json, text/plain", Err(Malformed)),
            ("comma after param", "application/json; charset=utf-8, text/plain", Err(Malformed)),
            ("no subtype", "application", Err(Malformed)),
            ("empty", "", Err(Malformed)),
            ("space in essence", "application/ json", Err(Malformed)),
            ("non-ascii", "application/json; x=\"\u{e9}\"", Err(Malformed)),
        ];
        for (name, ct, want) in cases {
            assert_eq!(parse(ct.as_bytes()), *want, "case {name}: {ct:?}");
        }
    }
}
