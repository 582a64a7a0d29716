//! Named, table-driven cases for `filter` and `filter_collect`: policy semantics, encoding
//! tricks, limits, card detection and field names, each pinned to an exact expected output.

use super::{filter, filter_collect, BodyError, FieldPath, FieldRules, ListMode, MAX_DEPTH};

fn rules(mode: ListMode, paths: &[&str]) -> FieldRules {
    FieldRules::new(mode, paths.iter().map(|p| FieldPath::parse(p).unwrap()).collect())
}

fn run(mode: ListMode, paths: &[&str], input: &str) -> Result<(String, Vec<String>), BodyError> {
    let mut out = Vec::new();
    let o = filter(input.as_bytes(), &rules(mode, paths), false, &mut out)?;
    Ok((String::from_utf8(out).unwrap(), o.removed))
}

use ListMode::{Allow, Deny};

/// (name, mode, paths, input, expected output, expected removed names)
type Case = (
    &'static str,
    ListMode,
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static [&'static str],
);

#[rustfmt::skip]
const FILTER_CASES: &[Case] = &[
    ("deny top key", Deny, &["b"], r#"{"a":1,"b":2,"c":3}"#, r#"{"a":1,"c":3}"#, &["b"]),
    ("deny first key commas", Deny, &["a"], r#"{ "a" : 1 , "b" : 2 }"#, r#"{"b":2}"#, &["a"]),
    ("deny last key commas", Deny, &["b"], r#"{"a":1,"b":2}"#, r#"{"a":1}"#, &["b"]),
    ("deny all keys", Deny, &["a", "b"], r#"{"a":1,"b":2}"#, "{}", &["a", "b"]),
    ("deny nested", Deny, &["billing.email"], r#"{"billing":{"email":"x@y","zip":"1"},"email":"k"}"#,
        r#"{"billing":{"zip":"1"},"email":"k"}"#, &["billing.email"]),
    ("deny subtree", Deny, &["billing"], r#"{"billing":{"email":"x"},"id":1}"#, r#"{"id":1}"#, &["billing"]),
    ("deny star", Deny, &["*.email"], r#"{"a":{"email":1,"x":2},"b":{"email":3},"email":4}"#,
        r#"{"a":{"x":2},"b":{},"email":4}"#, &["a.email", "b.email"]),
    ("deny array elems", Deny, &["items[].price"], r#"{"items":[{"sku":"a","price":1},{"price":2},3]}"#,
        r#"{"items":[{"sku":"a"},{},3]}"#, &["items[].price"]),
    ("deny whole array", Deny, &["items[]"], r#"{"items":[1,2],"x":0}"#, r#"{"items":[],"x":0}"#, &["items[]"]),
    ("deny top array", Deny, &["[].sku"], r#"[{"sku":1,"n":2},{"sku":3}]"#, r#"[{"n":2},{}]"#, &["[].sku"]),
    ("deny escaped key", Deny, &["email"], r#"{"\u0065mail":"x","a":1}"#, r#"{"a":1}"#, &["email"]),
    ("deny escaped slash key", Deny, &["a/b"], r#"{"a\/b":1,"c":2}"#, r#"{"c":2}"#, &["a/b"]),
    ("deny path on scalar", Deny, &["a.b"], r#"{"a":5}"#, r#"{"a":5}"#, &[]),
    ("deny no paths identity", Deny, &[], "{\"a\" : [1, {\"b\":null}],\n\"c\":\"\\n\"}",
        r#"{"a":[1,{"b":null}],"c":"\n"}"#, &[]),
    ("deny nested arrays", Deny, &["m[][].x"], r#"{"m":[[{"x":1,"y":2}],[]]}"#, r#"{"m":[[{"y":2}],[]]}"#, &["m[][].x"]),
    ("allow top key", Allow, &["a"], r#"{"a":{"deep":[1]},"b":2}"#, r#"{"a":{"deep":[1]}}"#, &["b"]),
    ("allow nested", Allow, &["shipping.postcode"], r#"{"shipping":{"postcode":"AB1","street":"x"},"id":1}"#,
        r#"{"shipping":{"postcode":"AB1"}}"#, &["shipping.street", "id"]),
    ("allow not on way", Allow, &["shipping.postcode"], r#"{"shipping":"str"}"#, "{}", &["shipping"]),
    ("allow way but empty", Allow, &["shipping.postcode"], r#"{"shipping":{"x":1}}"#, r#"{"shipping":{}}"#,
        &["shipping.x"]),
    ("allow array elems", Allow, &["items[].sku"], r#"{"items":[{"sku":"a","price":1},7,{"price":2}]}"#,
        r#"{"items":[{"sku":"a"},{}]}"#, &["items[].price", "items[]"]),
    ("allow star", Allow, &["items[].meta.*"], r#"{"items":[{"meta":{"a":1,"b":[2]},"x":0}]}"#,
        r#"{"items":[{"meta":{"a":1,"b":[2]}}]}"#, &["items[].x"]),
    ("allow star email", Allow, &["*.email"], r#"{"a":{"email":1,"x":2},"email":3}"#,
        r#"{"a":{"email":1}}"#, &["a.x", "email"]),
    ("allow escaped key kept", Allow, &["email"], r#"{"\u0065mail":"x","b":1}"#, r#"{"\u0065mail":"x"}"#, &["b"]),
    ("allow lookalike not kept", Allow, &["email"], r#"{"emai\u006c2":"x"}"#, "{}", &["email2"]),
    ("allow top array", Allow, &["[].sku"], r#"[{"sku":1,"n":2},"s"]"#, r#"[{"sku":1}]"#, &["[].n", "[]"]),
    ("allow obj rule on array", Allow, &["a"], r#"[1,2]"#, "[]", &["[]"]),
    ("allow array rule on obj", Allow, &["[].a"], r#"{"a":1}"#, "{}", &["a"]),
    ("allow nothing", Allow, &[], r#"{"a":1}"#, "{}", &["a"]),
    ("top scalar allow", Allow, &["a"], r#" "s" "#, r#""s""#, &[]),
    ("top scalar deny", Deny, &["a"], "12", "12", &[]),
    ("huge numbers verbatim", Deny, &["x"], r#"[1e400,123456789012345678901234567890,-0.0E-0]"#,
        r#"[1e400,123456789012345678901234567890,-0.0E-0]"#, &[]),
    ("escapes kept verbatim", Deny, &[], r#"["\u00e9\ud83d\ude00\"\\\/"]"#, r#"["\u00e9\ud83d\ude00\"\\\/"]"#, &[]),
    ("utf8 kept", Deny, &[], "{\"é\":\"日本\"}", "{\"é\":\"日本\"}", &[]),
    ("prefix path keeps all", Allow, &["a", "a.b"], r#"{"a":{"b":1,"c":2}}"#, r#"{"a":{"b":1,"c":2}}"#, &[]),
    // Deny lists fold case (and lookalikes an upstream binder folds); allow lists are exact.
    ("deny title case", Deny, &["customer_note"], r#"{"Customer_Note":"x","id":1}"#, r#"{"id":1}"#, &["Customer_Note"]),
    ("deny upper case", Deny, &["customer_note"], r#"{"CUSTOMER_NOTE":"x","id":1}"#, r#"{"id":1}"#, &["CUSTOMER_NOTE"]),
    ("deny escaped upper", Deny, &["customer_note"], r#"{"\u0043ustomer_note":"x","id":1}"#, r#"{"id":1}"#,
        &["Customer_note"]),
    ("deny policy upper", Deny, &["Billing.EMAIL"], r#"{"billing":{"Email":"x","zip":1}}"#, r#"{"billing":{"zip":1}}"#,
        &["billing.Email"]),
    ("deny long s", Deny, &["customer_note"], r#"{"cu\u017ftomer_note":"x","id":1}"#, r#"{"id":1}"#,
        &["cu\u{17f}tomer_note"]),
    ("deny kelvin raw", Deny, &["kind"], "{\"\u{212A}ind\":1,\"id\":1}", r#"{"id":1}"#, &["\u{212A}ind"]),
    ("deny fullwidth", Deny, &["email"], r#"{"\uff45mail":"x","id":1}"#, r#"{"id":1}"#, &["\u{ff45}mail"]),
    ("deny case under star", Deny, &["*.email"], r#"{"a":{"EMAIL":1,"x":2}}"#, r#"{"a":{"x":2}}"#, &["a.EMAIL"]),
    ("deny case in array path", Deny, &["items[].price"], r#"{"ITEMS":[{"Price":1,"sku":2}]}"#,
        r#"{"ITEMS":[{"sku":2}]}"#, &["ITEMS[].Price"]),
    // PHP and JavaScript walk an object like an array: a deny list reads `[]` as every
    // member of an object too, and `*` as every element of an array.
    ("deny array spelled as object", Deny, &["line_items[].meta_data"],
        r#"{"line_items":{"0":{"meta_data":1,"sku":"a"}}}"#, r#"{"line_items":{"0":{"sku":"a"}}}"#,
        &["line_items.0.meta_data"]),
    ("deny whole array spelled as object", Deny, &["items[]"], r#"{"items":{"a":1},"x":0}"#,
        r#"{"items":{},"x":0}"#, &["items.a"]),
    ("deny star over array", Deny, &["*.email"], r#"[{"email":1,"x":2}]"#, r#"[{"x":2}]"#, &["[].email"]),
    ("allow array spelled as object", Allow, &["items[].sku"], r#"{"items":{"0":{"sku":"a"}}}"#, "{}",
        &["items"]),
    ("allow is exact", Allow, &["email"], r#"{"email":"a","Email":"b","EMAIL":"c"}"#, r#"{"email":"a"}"#,
        &["Email", "EMAIL"]),
];

#[test]
fn filter_cases() {
    let cases = FILTER_CASES;
    for (name, mode, paths, input, want, removed) in cases {
        let got = run(*mode, paths, input).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got.0, *want, "{name}: output");
        assert_eq!(got.1, *removed, "{name}: removed");
    }
}

#[rustfmt::skip]
const ERROR_CASES: &[(&str, &[u8], BodyError)] = &[
    ("empty", b"", BodyError::Malformed),
    ("only ws", b"  \n", BodyError::Malformed),
    ("trailing garbage", b"{} x", BodyError::Malformed),
    ("two values", b"1 2", BodyError::Malformed),
    ("bom", b"\xEF\xBB\xBF{}", BodyError::Malformed),
    ("trailing comma obj", br#"{"a":1,}"#, BodyError::Malformed),
    ("trailing comma arr", b"[1,]", BodyError::Malformed),
    ("leading comma", b"[,1]", BodyError::Malformed),
    ("double comma", b"[1,,2]", BodyError::Malformed),
    ("missing colon", br#"{"a" 1}"#, BodyError::Malformed),
    ("unquoted key", b"{a:1}", BodyError::Malformed),
    ("unclosed", br#"{"a":[1"#, BodyError::Malformed),
    ("mismatched close", b"[1}", BodyError::Malformed),
    ("leading zero", b"01", BodyError::Malformed),
    ("bare minus", b"-", BodyError::Malformed),
    ("dot no digit", b"1.", BodyError::Malformed),
    ("exp no digit", b"1e+", BodyError::Malformed),
    ("bad literal", b"tru", BodyError::Malformed),
    ("bad escape", br#"["\x"]"#, BodyError::Malformed),
    ("short unicode", br#"["\u00"]"#, BodyError::Malformed),
    ("lone high surrogate", br#"["\ud800"]"#, BodyError::Malformed),
    ("lone low surrogate", br#"["\udc00"]"#, BodyError::Malformed),
    ("high then non-low", br#"["\ud800\u0041"]"#, BodyError::Malformed),
    ("raw control", b"[\"a\x01\"]", BodyError::Malformed),
    ("raw newline", b"[\"a\nb\"]", BodyError::Malformed),
    ("invalid utf8", b"[\"\xff\"]", BodyError::Malformed),
    ("overlong utf8", b"[\"\xc0\xaf\"]", BodyError::Malformed),
    ("invalid utf8 in dropped", b"{\"drop\":\"\xff\"}", BodyError::Malformed),
    ("dup plain", br#"{"a":1,"a":2}"#, BodyError::DuplicateKey),
    ("dup escaped", br#"{"email":1,"\u0065mail":2}"#, BodyError::DuplicateKey),
    ("dup both escaped", br#"{"\u0061":1,"\u0061":2}"#, BodyError::DuplicateKey),
    ("dup in dropped subtree", br#"{"drop":{"x":1,"x":2}}"#, BodyError::DuplicateKey),
    ("dup deep in array", br#"[[{"k":{"a":1,"\u0061":1}}]]"#, BodyError::DuplicateKey),
    ("same key other objects ok?", br#"{"a":{"a":1},"b":{"a":1},"a":0}"#, BodyError::DuplicateKey),
    // A control character in a name, raw or escaped, whatever the policy says of it.
    ("nul escaped in key", br#"{"customer_note\u0000":1}"#, BodyError::Malformed),
    ("nul escaped first", br#"{"\u0000customer_note":1}"#, BodyError::Malformed),
    ("c0 escaped in key", br#"{"a\u001fb":1}"#, BodyError::Malformed),
    ("newline escaped in key", br#"{"a\nb":1}"#, BodyError::Malformed),
    ("tab escaped in key", br#"{"a\tb":1}"#, BodyError::Malformed),
    ("del raw in key", b"{\"a\x7f\":1}", BodyError::Malformed),
    ("del escaped in key", br#"{"a\u007f":1}"#, BodyError::Malformed),
    ("c1 raw in key", b"{\"a\xc2\x85\":1}", BodyError::Malformed),
    ("c1 escaped in key", br#"{"a\u0085":1}"#, BodyError::Malformed),
    ("control key in dropped subtree", br#"{"drop":{"a\u0000":1}}"#, BodyError::Malformed),
];

#[test]
fn error_cases() {
    let cases = ERROR_CASES;
    for paths in [&["drop"][..], &[]] {
        for mode in [Allow, Deny] {
            for (name, input, want) in cases {
                let r = rules(mode, paths);
                let mut out = b"stale".to_vec();
                let got = filter(input, &r, true, &mut out);
                assert_eq!(got.err(), Some(*want), "{name} ({mode:?} {paths:?})");
                assert!(out.is_empty(), "{name}: output must be cleared on error");
            }
        }
    }
}

#[test]
fn duplicate_detection_many_keys() {
    // Past the linear-scan threshold the hashed path must still catch duplicates.
    let keys: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    let ok = format!("{{{}}}", keys.join(","));
    assert!(run(Deny, &[], &ok).is_ok());
    for dup in ["k0", "k17", "k39", "k\\u0033\\u0039"] {
        let bad = format!("{{{},\"{dup}\":1}}", keys.join(","));
        assert_eq!(run(Deny, &[], &bad).err(), Some(BodyError::DuplicateKey), "{dup}");
    }
    // Sibling objects reuse the key stack; their keys must not leak into each other.
    let siblings = format!("[{ok},{ok}]");
    assert!(run(Allow, &["[].k3"], &siblings).is_ok());
}

#[test]
fn depth_limit_both_sides() {
    let nest = |n: usize, open: &str, close: &str| format!("{}1{}", open.repeat(n), close.repeat(n));
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let ok = nest(MAX_DEPTH, open, close);
        assert_eq!(run(Deny, &[], &ok).unwrap().0, ok, "depth {MAX_DEPTH} passes");
        let deep = nest(MAX_DEPTH + 1, open, close);
        for mode in [Allow, Deny] {
            assert_eq!(run(mode, &["a"], &deep).err(), Some(BodyError::TooDeep));
        }
    }
    // Must not recurse: a megabyte of '[' is rejected without touching the stack.
    assert_eq!(run(Deny, &[], &"[".repeat(1 << 20)).err(), Some(BodyError::TooDeep));
}

#[test]
fn removed_names_are_bounded() {
    let body: Vec<String> = (0..50).map(|i| format!("\"{i:02}{}\":1", "x".repeat(100))).collect();
    let (out, removed) = run(Allow, &["keep"], &format!("{{{},\"keep\":2}}", body.join(","))).unwrap();
    assert_eq!(out, r#"{"keep":2}"#);
    assert_eq!(removed.len(), 32);
    assert!(removed.iter().all(|n| n.len() == 64));
    // Truncation lands on a char boundary for multi-byte keys.
    let (_, removed) = run(Deny, &["*"], &format!("{{\"{}\":1}}", "é".repeat(40))).unwrap();
    assert_eq!(removed, vec!["é".repeat(32)]);
    // Repeated removals of the same path are logged once.
    let (_, removed) = run(Deny, &["[].p"], r#"[{"p":1},{"p":2},{"p":3}]"#).unwrap();
    assert_eq!(removed, vec!["[].p"]);
}

fn card(mode: ListMode, paths: &[&str], input: &str) -> bool {
    let mut out = Vec::new();
    filter(input.as_bytes(), &rules(mode, paths), true, &mut out)
        .unwrap()
        .card_found
}

#[test]
fn card_cases() {
    #[rustfmt::skip]
    let cases: &[(&str, ListMode, &[&str], &str, bool)] = &[
        ("string plain", Deny, &[], r#"{"c":"4111111111111111"}"#, true),
        ("number", Deny, &[], r#"{"c":4111111111111111}"#, true),
        ("grouped spaces", Deny, &[], r#"["4111 1111 1111 1111"]"#, true),
        ("grouped dashes", Deny, &[], r#"["4111-1111-1111-1111"]"#, true),
        ("amex", Deny, &[], r#""378282246310005""#, true),
        ("escaped digits", Deny, &[], r#"["\u0034111111111111111"]"#, true),
        ("luhn invalid", Deny, &[], r#"["4111111111111112"]"#, false),
        ("12 digits", Deny, &[], r#"[411111111113]"#, false),
        ("20 digits", Deny, &[], r#"["41111111111111111113"]"#, false),
        ("key is scanned", Deny, &[], r#"{"4111111111111111":1}"#, true),
        ("escaped key is scanned", Deny, &[], r#"{"\u0034111 1111 1111 1111":1}"#, true),
        ("removed key not scanned", Deny, &["*"], r#"{"4111111111111111":1}"#, false),
        ("key under allowed subtree", Allow, &["meta"], r#"{"meta":{"4111-1111-1111-1111":1}}"#, true),
        ("free text", Deny, &[], r#"{"note":"Karte: 4111 1111 1111 1111, danke"}"#, true),
        ("dotted groups", Deny, &[], r#"["4111.1111.1111.1111"]"#, true),
        ("escaped separator", Deny, &[], r#"["4111\u00201111\u00201111\u00201111"]"#, true),
        ("fullwidth digits", Deny, &[], r#"["\uff14\uff11\uff11\uff11111111111111"]"#, true),
        ("number exponent", Deny, &[], r#"[4.111111111111111e15]"#, true),
        ("number negative exponent", Deny, &[], r#"[41111111111111110E-1]"#, true),
        ("literal not scanned", Deny, &[], r#"[true,false,null]"#, false),
        ("removed by deny", Deny, &["c"], r#"{"c":"4111111111111111","d":1}"#, false),
        ("removed by allow", Allow, &["d"], r#"{"c":"4111111111111111","d":1}"#, false),
        ("kept by allow", Allow, &["c"], r#"{"c":{"n":"4111111111111111"},"d":1}"#, true),
        ("kept in array", Allow, &["a[].n"], r#"{"a":[{"n":4111111111111111}]}"#, true),
        ("float with .0", Deny, &[], r#"[4111111111111111.0]"#, true),
        ("small floats", Deny, &[], r#"[184.7,29.489999999999998,1e400]"#, false),
    ];
    for (name, mode, paths, input, want) in cases {
        assert_eq!(card(*mode, paths, input), *want, "{name}");
    }
    let mut out = Vec::new();
    let o = filter(br#"["4111111111111111"]"#, &rules(Deny, &[]), false, &mut out).unwrap();
    assert!(!o.card_found, "scan disabled");
}

#[test]
fn buffers_reused_after_error() {
    // Per-thread buffers are recycled; a failed call must not leak keys or frames into the next.
    let deep_dup = r#"{"a":{"b":{"k":1,"k":2}}}"#;
    assert_eq!(run(Deny, &[], deep_dup).err(), Some(BodyError::DuplicateKey));
    assert_eq!(
        run(Deny, &["a.b.k"], r#"{"a":{"b":{"k":1}}}"#).unwrap().0,
        r#"{"a":{"b":{}}}"#
    );
    assert_eq!(run(Allow, &["k"], r#"{"k":1}"#).unwrap().0, r#"{"k":1}"#);
}

/// Runs `filter_collect`, checking it agrees with `filter` on everything but `fields`.
fn fields(mode: ListMode, paths: &[&str], input: &str) -> Vec<String> {
    let r = rules(mode, paths);
    let (mut out, mut plain_out) = (Vec::new(), Vec::new());
    let o = filter_collect(input.as_bytes(), &r, true, &mut out).unwrap();
    let plain = filter(input.as_bytes(), &r, true, &mut plain_out).unwrap();
    assert_eq!(out, plain_out, "{input}: output");
    assert_eq!(o.removed, plain.removed, "{input}: removed");
    assert_eq!(o.card_found, plain.card_found, "{input}: card_found");
    assert!(plain.fields.is_empty(), "{input}: filter must not collect");
    o.fields
}

/// (name, mode, paths, input, expected field names)
type FieldsCase<'a> = (&'a str, ListMode, &'a [&'a str], &'a str, &'a [&'a str]);

#[test]
fn field_name_cases() {
    #[rustfmt::skip]
    let cases: &[FieldsCase] = &[
        ("nested objects", Deny, &[], r#"{"a":{"b":{"c":1}},"d":2}"#, &["a", "a.b", "a.b.c", "d"]),
        ("arrays as []", Deny, &[], r#"{"items":[{"sku":1,"price":2},{"sku":3}],"m":[[{"x":1}]]}"#,
            &["items", "items[].sku", "items[].price", "m", "m[][].x"]),
        ("top array", Deny, &[], r#"[{"a":1},[{"b":2}],3]"#, &["[].a", "[][].b"]),
        ("no keys no names", Deny, &[], r#"[1,[2,"x"],[]]"#, &[]),
        ("top scalar", Deny, &[], r#""s""#, &[]),
        ("empty containers", Deny, &[], r#"{"a":{},"b":[]}"#, &["a", "b"]),
        ("unicode escapes decoded", Deny, &[], r#"{"\u0065mail":1,"caf\u00e9":{"\ud83d\ude00":2}}"#,
            &["email", "café", "café.😀"]),
        ("raw utf8 key", Deny, &[], "{\"日本\":{\"é\":1}}", &["日本", "日本.é"]),
        ("escaped slash and quote", Deny, &[], r#"{"a\/b":1,"q\"":2}"#, &["a/b", "q\""]),
        ("dedup first-seen order", Deny, &[], r#"[{"p":1},{"q":2,"p":3},{"r":4,"q":5}]"#,
            &["[].p", "[].q", "[].r"]),
        ("same key other parents", Deny, &[], r#"{"a":{"id":1},"b":{"id":2},"id":3}"#,
            &["a", "a.id", "b", "b.id", "id"]),
        ("allow: keys under removed subtree", Allow, &["id"],
            r#"{"billing":{"email":"x","addr":{"zip":1}},"id":1}"#,
            &["billing", "billing.email", "billing.addr", "billing.addr.zip", "id"]),
        ("deny: keys under removed subtree", Deny, &["billing"], r#"{"billing":{"email":"x"},"n":[{"k":1}]}"#,
            &["billing", "billing.email", "n", "n[].k"]),
        ("allow: keys under kept subtree", Allow, &["a"], r#"{"a":{"b":[{"c":1}]},"z":0}"#,
            &["a", "a.b", "a.b[].c", "z"]),
        ("filtered array elems", Allow, &["items[].sku"], r#"{"items":[{"sku":"a","price":1},{"x":{"y":2}}]}"#,
            &["items", "items[].sku", "items[].price", "items[].x", "items[].x.y"]),
        ("array under removed", Allow, &["k"], r#"{"d":[[{"a":1}],{"b":2}],"k":1}"#,
            &["d", "d[][].a", "d[].b", "k"]),
        // Same join as `removed`: an empty key adds no '.', so "" then "a" (not ".a").
        ("empty key", Deny, &[], r#"{"":{"a":1},"a":2}"#, &["", "a"]),
    ];
    for (name, mode, paths, input, want) in cases {
        assert_eq!(fields(*mode, paths, input), *want, "{name}");
    }
}

#[test]
fn field_names_are_bounded() {
    // At most 128 names, first-seen; later keys (even nested ones) are not listed.
    let keys: Vec<String> = (0..200).map(|i| format!("\"k{i:03}\":{{\"n\":1}}")).collect();
    let got = fields(Deny, &[], &format!("{{{}}}", keys.join(",")));
    assert_eq!(got.len(), 128);
    assert_eq!(got.first().map(String::as_str), Some("k000"));
    assert_eq!(got.get(1).map(String::as_str), Some("k000.n"));
    assert_eq!(got.last().map(String::as_str), Some("k063.n"));
    // Cut to 64 bytes on a char boundary; names equal after the cut are listed once.
    let long = "x".repeat(100);
    let got = fields(Deny, &[], &format!(r#"{{"{long}":{{"a":1,"b":2}},"y":1}}"#));
    assert_eq!(got, vec!["x".repeat(64), "y".to_owned()]);
    let got = fields(Deny, &["*"], &format!(r#"{{"{}":{{"a":1}}}}"#, "é".repeat(40)));
    assert_eq!(got, vec!["é".repeat(32)]);
    let got = fields(Deny, &[], &format!(r#"{{"{}":{{"ab":1}}}}"#, "y".repeat(62)));
    assert_eq!(got, vec!["y".repeat(62), format!("{}.a", "y".repeat(62))]);
    // A long key above many children: names stay cut, removed and fields both bounded.
    let big = format!(
        r#"{{"{}":[{}]}}"#,
        "z".repeat(100_000),
        vec![r#"{"p":1}"#; 2000].join(",")
    );
    assert_eq!(fields(Deny, &["*[].p"], &big), vec!["z".repeat(64)]);
}

#[test]
fn field_names_not_left_over() {
    // Per-thread buffers hold the dedup set; it must not leak into the next call.
    assert_eq!(fields(Deny, &[], r#"{"a":1}"#), ["a"]);
    assert_eq!(fields(Deny, &[], r#"{"a":1}"#), ["a"]);
    let r = rules(Deny, &[]);
    let mut out = Vec::new();
    assert_eq!(
        filter_collect(br#"{"b":1,"b":2}"#, &r, false, &mut out).err(),
        Some(BodyError::DuplicateKey)
    );
    assert_eq!(fields(Deny, &[], r#"{"b":{"a":1}}"#), ["b", "b.a"]);
}
