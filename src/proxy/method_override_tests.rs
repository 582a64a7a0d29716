use super::*;

fn allows(query: &str) -> bool {
    overrides_allowed(query.as_bytes(), &Method::POST, &[Method::POST, Method::PUT])
}

#[test]
fn query_overrides() {
    // (case, query or form, allowed on a POST+PUT route reached by POST)
    let cases: &[(&str, &str, bool)] = &[
        ("no override", "a=1&b=2", true),
        ("empty", "", true),
        ("override to an allowed method", "_method=PUT", true),
        ("override to the request's method", "_method=post", true),
        ("empty value", "_method=", true),
        ("no value", "_method", true),
        ("delete", "_method=DELETE", false),
        ("lower-case value", "_method=delete", false),
        ("padded value", "_method=%20DELETE%20", false),
        ("plus-padded value", "_method=+DELETE", false),
        ("encoded value", "_method=%44ELETE", false),
        ("not a method at all", "_method=DE%00LETE", false),
        ("upper-case name", "_METHOD=DELETE", false),
        ("mixed-case name", "_Method=DELETE", false),
        ("encoded underscore", "%5Fmethod=DELETE", false),
        ("encoded name", "%5f%6d%65%74%68%6f%64=DELETE", false),
        ("dot for underscore (PHP)", ".method=DELETE", false),
        ("space for underscore", "%20method=DELETE", false),
        ("plus for underscore", "+method=DELETE", false),
        (
            "encoded underscore after spaces (PHP trims)",
            "%20%5Fmethod=DELETE",
            false,
        ),
        ("leading spaces dropped (PHP)", "++_method=DELETE", false),
        ("array form", "_method[]=DELETE", false),
        ("keyed array form", "_method[x]=DELETE", false),
        ("nul-cut name", "_method%00junk=DELETE", false),
        ("second pair", "a=1&_method=DELETE", false),
        ("allowed then denied", "_method=PUT&_method=DELETE", false),
        ("semicolon separator (Rack)", "a=1;_method=DELETE", false),
        ("other name", "x_method=DELETE", true),
        ("longer name", "_methods=DELETE", true),
        ("value with equals", "_method=PUT=x", false),
        ("malformed escape kept", "_method=%ZZ", false),
    ];
    for (name, q, want) in cases {
        assert_eq!(allows(q), *want, "case {name}: {q:?}");
    }
}

#[test]
fn multipart_parts() {
    let part = |disposition: &str| format!("--b\r\n{disposition}\r\n\r\nDELETE\r\n--b--\r\n");
    let cases: &[(&str, &str, bool)] = &[
        ("plain field", r#"Content-Disposition: form-data; name="order""#, false),
        ("quoted", r#"Content-Disposition: form-data; name="_method""#, true),
        ("unquoted", "Content-Disposition: form-data; name=_method", true),
        ("single quotes", "Content-Disposition: form-data; name='_method'", true),
        (
            "spaces around =",
            r#"content-disposition: form-data; NAME = "_METHOD""#,
            true,
        ),
        (
            "rfc 2231",
            "Content-Disposition: form-data; name*=utf-8''%5Fmethod",
            true,
        ),
        ("dot (PHP)", r#"Content-Disposition: form-data; name=".method""#, true),
        (
            "backslash escape",
            r#"Content-Disposition: form-data; name="\_method""#,
            true,
        ),
        ("array", r#"Content-Disposition: form-data; name="_method[]""#, true),
        (
            "file named so",
            r#"Content-Disposition: form-data; name="f"; filename="_method""#,
            true,
        ),
        (
            "other name",
            r#"Content-Disposition: form-data; name="shipping_method""#,
            false,
        ),
    ];
    for (name, disposition, want) in cases {
        assert_eq!(
            multipart_names_method(part(disposition).as_bytes()),
            *want,
            "case {name}"
        );
    }
}

#[test]
fn form_kinds() {
    let kind = |ct: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, http::HeaderValue::from_str(ct).unwrap());
        form_kind(&h)
    };
    assert_eq!(kind("application/x-www-form-urlencoded"), Some(FormKind::Urlencoded));
    assert_eq!(
        kind("Application/X-WWW-Form-URLEncoded ; charset=utf-8"),
        Some(FormKind::Urlencoded)
    );
    assert_eq!(kind("multipart/form-data; boundary=b"), Some(FormKind::Multipart));
    assert_eq!(kind("application/json"), None);
}
