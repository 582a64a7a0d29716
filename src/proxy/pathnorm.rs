//! Canonical form of HTTP request paths, so that route rules cannot be bypassed
//! with encodings, dot segments or repeated slashes. Anything ambiguous is
//! rejected rather than guessed at. The `url` crate was considered and not used: it
//! resolves paths one lenient (WHATWG) way, `\` as `/` and `%2e` as a dot, where this
//! module must refuse whatever an upstream's parser could read differently.

/// The path was refused; deliberately carries no copy of the (attacker-controlled) input.
#[derive(Debug, PartialEq, Eq)]
pub struct PathError;

/// Longest input accepted, in bytes; bounds the work done per request.
const MAX_LEN: usize = 8192;

/// Normalises an HTTP request path (no query: the caller splits it off) for route matching.
pub fn normalise(path: &str) -> Result<String, PathError> {
    if path.len() > MAX_LEN || !path.starts_with('/') {
        return Err(PathError);
    }
    // Decode before resolving dots, so `%2e%2e` cannot smuggle a `..` past the resolver.
    let decoded = decode(path)?;
    resolve(&decoded)
}

/// Decodes escapes of unreserved characters, upper-cases the hex of all other
/// escapes and rejects characters that different parsers disagree about.
fn decode(path: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len());
    // The bytes of the current run of escapes: once decoded they must be UTF-8,
    // or an overlong `%C0%AE` could read as `.` to a lenient decoder.
    let mut run: Vec<u8> = Vec::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let byte = hex_pair(chars.next(), chars.next())?;
            if byte == b'%' && double_encoded(chars.clone()) {
                return Err(PathError);
            }
            run.push(byte);
            push_escaped(&mut out, byte)?;
            continue;
        }
        utf8_run(&mut run)?;
        if is_forbidden_raw(c) {
            return Err(PathError);
        }
        out.push(c);
    }
    utf8_run(&mut run)?;
    Ok(out)
}

/// Checks and clears one run of escaped bytes.
fn utf8_run(run: &mut Vec<u8>) -> Result<(), PathError> {
    let ok = std::str::from_utf8(run).is_ok();
    run.clear();
    if ok {
        Ok(())
    } else {
        Err(PathError)
    }
}

/// After `%25`: whether the next two characters are themselves the escape of a
/// character a second decoding (a proxy passing `$uri` on, a framework decoding
/// again) would turn into a separator, a dot, a parameter, NUL or another escape.
fn double_encoded(mut rest: impl Iterator<Item = char>) -> bool {
    let byte = hex_pair(rest.next(), rest.next());
    matches!(byte, Ok(b'.' | b'/' | b'\\' | b';' | b'%' | 0))
}

/// Parses the two characters after a `%`; a missing or non-hex one is malformed.
fn hex_pair(hi: Option<char>, lo: Option<char>) -> Result<u8, PathError> {
    let hi = hi.and_then(|c| c.to_digit(16)).ok_or(PathError)?;
    let lo = lo.and_then(|c| c.to_digit(16)).ok_or(PathError)?;
    // Cannot overflow (both are < 16); checked ops keep that provable to the linter.
    let value = hi.checked_mul(16).and_then(|h| h.checked_add(lo));
    value.and_then(|v| u8::try_from(v).ok()).ok_or(PathError)
}

/// Emits one decoded escape in canonical form.
fn push_escaped(out: &mut String, byte: u8) -> Result<(), PathError> {
    match byte {
        // An encoded separator or NUL means different things to different
        // backends (some decode it, some split on it), so refuse it outright.
        b'/' | b'\\' | 0 => Err(PathError),
        b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
            out.push(char::from(b));
            Ok(())
        }
        b => {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            // Both lookups are in range (a nibble is < 16); the fallback never fires.
            out.push(char::from(*HEX.get(usize::from(b >> 4)).unwrap_or(&b'0')));
            out.push(char::from(*HEX.get(usize::from(b & 0x0F)).unwrap_or(&b'0')));
            Ok(())
        }
    }
}

/// Raw characters that are never legitimate in a path we forward: controls,
/// whitespace, backslash (a separator on some servers) and `#` (a fragment).
fn is_forbidden_raw(c: char) -> bool {
    c.is_control() || c.is_whitespace() || c == '\\' || c == '#'
}

/// Collapses empty segments and resolves `.` and `..` (RFC 3986 5.2.4 style),
/// except that climbing above the root is an error instead of being clamped.
fn resolve(decoded: &str) -> Result<String, PathError> {
    let mut stack: Vec<&str> = Vec::new();
    // The leading `/` yields an empty first piece; skip it.
    let mut segments = decoded.split('/').skip(1).peekable();
    let mut trailing_slash = false;
    while let Some(seg) = segments.next() {
        let is_last = segments.peek().is_none();
        if parameter_hides_dot(seg) {
            return Err(PathError);
        }
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop().ok_or(PathError)?;
            }
            s => stack.push(s),
        }
        // `/a/`, `/a/.` and `/a/b/..` all name a directory: keep the slash.
        trailing_slash = is_last && matches!(seg, "" | "." | "..");
    }
    let mut out = String::with_capacity(decoded.len());
    for seg in &stack {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// True for a segment that Tomcat, Spring or Jetty, which cut path parameters
/// (`;` to the end of the segment) before resolving dots, would read as `.`,
/// `..` or an empty segment: `..;`, `.;jsessionid=x`, `%2e%2e;x`, `;x`. The
/// segment is already decoded, so an escaped `;` is matched in its canonical `%3B`.
fn parameter_hides_dot(seg: &str) -> bool {
    let cut = [seg.find(';'), seg.find("%3B")].into_iter().flatten().min();
    cut.and_then(|i| seg.get(..i))
        .is_some_and(|name| matches!(name, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (case name, input, expected output or `None` for an error).
    const CASES: &[(&str, &str, Option<&str>)] = &[
        ("root", "/", Some("/")),
        ("plain", "/v1/models", Some("/v1/models")),
        ("empty", "", None),
        ("no leading slash", "v1/x", None),
        ("star form", "*", None),
        ("decode upper alpha", "/%41%42", Some("/AB")),
        ("decode tilde lower hex", "/%7e", Some("/~")),
        ("decode digit dash underscore", "/%31%2D%5F", Some("/1-_")),
        ("reserved stays, hex upper", "/a%3ab", Some("/a%3Ab")),
        ("space escape stays", "/a%20b", Some("/a%20b")),
        ("percent escape stays", "/%25", Some("/%25")),
        ("utf8 escape stays upper", "/%c3%a9", Some("/%C3%A9")),
        ("encoded slash lower", "/a%2fb", None),
        ("encoded slash upper", "/a%2Fb", None),
        ("encoded backslash", "/a%5cb", None),
        ("encoded backslash upper", "/a%5Cb", None),
        ("encoded nul", "/a%00", None),
        ("malformed non-hex", "/%G1", None),
        ("malformed short", "/%4", None),
        ("malformed bare", "/a%", None),
        ("malformed non-ascii", "/%é1", None),
        ("raw control", "/a\u{1}b", None),
        ("raw del", "/a\u{7f}", None),
        ("raw nul", "/a\0", None),
        ("raw backslash", "/a\\b", None),
        ("raw hash", "/a#b", None),
        ("raw space", "/a b", None),
        ("raw tab", "/a\tb", None),
        ("raw newline", "/a\nb", None),
        ("raw nbsp", "/a\u{a0}b", None),
        ("raw non-ascii ok", "/caf\u{e9}", Some("/caf\u{e9}")),
        ("double slash", "//a//b", Some("/a/b")),
        ("only slashes", "///", Some("/")),
        ("dot segment", "/a/./b", Some("/a/b")),
        ("dotdot segment", "/a/b/../c", Some("/a/c")),
        ("dotdot to root", "/a/..", Some("/")),
        ("dotdot trailing", "/a/b/..", Some("/a/")),
        ("dot trailing", "/a/.", Some("/a/")),
        ("dotdot above root", "/..", None),
        ("dotdot above root later", "/a/../..", None),
        ("dotdot above root via slashes", "//..//a", None),
        ("encoded dotdot", "/a/%2e%2E/b", Some("/b")),
        ("encoded dotdot above root", "/%2e%2e", None),
        ("encoded dot", "/a/%2e/b", Some("/a/b")),
        ("mixed dot", "/a/.%2e/b", Some("/b")),
        ("three dots is a name", "/.../a", Some("/.../a")),
        ("dotfile is a name", "/.well-known/x", Some("/.well-known/x")),
        ("trailing slash kept", "/v1/x/", Some("/v1/x/")),
        ("trailing double slash", "/v1/x//", Some("/v1/x/")),
        ("query chars pass", "/a;b=c", Some("/a;b=c")),
        ("parameter on a name", "/v1/x;jsessionid=1", Some("/v1/x;jsessionid=1")),
        ("empty parameter on a name", "/v1/x;", Some("/v1/x;")),
        ("dotdot param", "/v1/x/..;/admin", None),
        ("dotdot param value", "/v1/x/..;x=1/admin", None),
        ("dot param", "/v1/.;jsessionid=x/admin", None),
        ("encoded dotdot param", "/v1/x/%2e%2e;x/admin", None),
        ("mixed case encoded dotdot param", "/v1/x/%2E%2e;/admin", None),
        ("half encoded dotdot param", "/v1/x/.%2e;/admin", None),
        ("encoded dot param", "/v1/%2e;/admin", None),
        ("dotdot encoded semicolon", "/v1/x/..%3b/admin", None),
        ("dotdot encoded semicolon upper", "/v1/x/..%3B/admin", None),
        ("trailing dotdot param", "/v1/x/..;", None),
        ("empty segment param", "/v1/;x/admin", None),
        ("bare semicolon segment", "/v1/;/admin", None),
        ("three dots param is a name", "/v1/...;x", Some("/v1/...;x")),
        ("double encoded dot", "/v1/%252e%252e/admin", None),
        ("double encoded slash", "/v1/a%252fb", None),
        ("double encoded backslash", "/v1/a%255cb", None),
        ("double encoded semicolon", "/v1/..%253b/admin", None),
        ("double encoded nul", "/v1/a%2500", None),
        ("triple encoded", "/v1/%25252e", None),
        ("double encoded space stays", "/v1/a%2520b", Some("/v1/a%2520b")),
        ("percent at end stays", "/v1/a%25", Some("/v1/a%25")),
        ("overlong dot", "/v1/%c0%ae%c0%ae/admin", None),
        ("lone continuation byte", "/v1/%80", None),
        ("truncated utf8", "/v1/%c3", None),
        ("utf8 then ascii escape", "/v1/%c3%41", None),
        ("utf8 split by raw char", "/v1/%c3a%a9", None),
        ("encoded fullwidth dot stays", "/v1/%ef%bc%8e", Some("/v1/%EF%BC%8E")),
    ];

    #[test]
    fn table() {
        let cases = CASES;
        for (name, input, want) in cases {
            let got = normalise(input);
            assert_eq!(got, want.map(str::to_owned).ok_or(PathError), "case {name}");
        }
    }

    #[test]
    fn length_limit() {
        let ok = format!("/{}", "a".repeat(MAX_LEN - 1));
        assert_eq!(normalise(&ok).map(|s| s.len()), Ok(MAX_LEN));
        let long = format!("/{}", "a".repeat(MAX_LEN));
        assert_eq!(normalise(&long), Err(PathError));
    }

    fn path_strategy() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "/", "/", ".", "..", "a", "b", "%2e", "%2E", "%41", "%7e", "%20", "%3a", "~",
        ]);
        prop::collection::vec(token, 0..20).prop_map(|t| format!("/{}", t.concat()))
    }

    fn check_canonical(out: &str) {
        assert!(out.starts_with('/'), "{out:?}");
        assert!(!out.contains("//"), "{out:?}");
        assert!(!out.contains("/./"), "{out:?}");
        assert!(!out.contains("/../"), "{out:?}");
        assert!(!out.ends_with("/."), "{out:?}");
        assert!(!out.ends_with("/.."), "{out:?}");
        assert_eq!(normalise(out).as_deref(), Ok(out), "not idempotent");
    }

    proptest! {
        #[test]
        fn canonical_and_idempotent(p in path_strategy()) {
            if let Ok(out) = normalise(&p) {
                check_canonical(&out);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(p in ".{0,64}") {
            if let Ok(out) = normalise(&p) {
                check_canonical(&out);
            }
        }
    }
}
