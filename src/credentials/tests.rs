use super::fetch::{is_b64token, parse, Outcome};
use std::time::Duration;

#[test]
fn token_answers() {
    let cases: &[(&str, &str, Option<u64>)] = &[
        (
            "plain",
            r#"{"access_token":"A21AAF.x-y_z~","token_type":"Bearer","expires_in":3600}"#,
            Some(3600),
        ),
        (
            "type case-blind",
            r#"{"access_token":"abc","token_type":"bEaReR","expires_in":60}"#,
            Some(60),
        ),
        (
            "expires as string",
            r#"{"access_token":"abc","token_type":"bearer","expires_in":"120"}"#,
            Some(120),
        ),
        (
            "no expires: default",
            r#"{"access_token":"abc","token_type":"bearer"}"#,
            Some(300),
        ),
        (
            "long capped to a day",
            r#"{"access_token":"abc","token_type":"bearer","expires_in":999999999}"#,
            Some(86_400),
        ),
        (
            "padding",
            r#"{"access_token":"ab+/c==","token_type":"bearer"}"#,
            Some(300),
        ),
        ("mac type", r#"{"access_token":"abc","token_type":"mac"}"#, None),
        ("no type", r#"{"access_token":"abc"}"#, None),
        (
            "crlf in token",
            r#"{"access_token":"abc\r\nX-Evil: 1","token_type":"bearer"}"#,
            None,
        ),
        (
            "space in token",
            r#"{"access_token":"a b","token_type":"bearer"}"#,
            None,
        ),
        (
            "nul in token",
            r#"{"access_token":"a\u0000b","token_type":"bearer"}"#,
            None,
        ),
        ("non-ascii", r#"{"access_token":"a\u00e9","token_type":"bearer"}"#, None),
        ("empty token", r#"{"access_token":"","token_type":"bearer"}"#, None),
        ("only padding", r#"{"access_token":"==","token_type":"bearer"}"#, None),
        (
            "padding inside",
            r#"{"access_token":"a=b","token_type":"bearer"}"#,
            None,
        ),
        (
            "negative expiry",
            r#"{"access_token":"abc","token_type":"bearer","expires_in":-5}"#,
            None,
        ),
        (
            "fractional expiry",
            r#"{"access_token":"abc","token_type":"bearer","expires_in":1.5}"#,
            None,
        ),
        ("token a number", r#"{"access_token":12,"token_type":"bearer"}"#, None),
        ("not json", "access_token=abc&token_type=bearer", None),
    ];
    for (name, body, want) in cases {
        let got = parse(body.as_bytes());
        match (got, want) {
            (Ok(f), Some(secs)) => {
                assert_eq!(f.lifetime, Duration::from_secs(*secs), "{name}");
                assert!(f.value.is_sensitive(), "{name}");
                assert!(f.value.as_bytes().starts_with(b"Bearer "), "{name}");
            }
            (Err(o), None) => assert_eq!(o, Outcome::BadResponse, "{name}"),
            (Ok(_), None) => panic!("{name}: accepted"),
            (Err(o), Some(_)) => panic!("{name}: refused as {o:?}"),
        }
    }
}

#[test]
fn token_alphabet_bounds() {
    assert!(is_b64token(&vec![b'a'; 8192]));
    assert!(!is_b64token(&vec![b'a'; 8193]));
}
