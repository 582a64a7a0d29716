use super::*;

const SHIPMENT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["order_id"],
  "properties": {
    "order_id": {"type": "integer", "minimum": 1},
    "shipping": {
      "type": "object",
      "properties": {"postcode": {"type": "string", "pattern": "^[0-9]{5}$"}}
    },
    "items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string", "maxLength": 8}}}}
  }
}"#;

fn schema(text: &str) -> Result<Schema, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, text).unwrap();
    load(path)
}

fn check(s: &Schema, body: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(body).unwrap();
    s.check(&v).map_err(|e| e.to_string())
}

#[test]
fn violations_name_path_and_keyword_never_the_value() {
    let s = schema(SHIPMENT).unwrap();
    let cases: &[(&str, &str, Result<(), &str>)] = &[
        ("valid", r#"{"order_id":1,"shipping":{"postcode":"12345"}}"#, Ok(())),
        (
            "pattern",
            r#"{"order_id":1,"shipping":{"postcode":"SECRET-VALUE"}}"#,
            Err("shipping.postcode: pattern"),
        ),
        ("type at root", r#"[1]"#, Err("(body): type")),
        (
            "required names the field",
            r#"{"shipping":{}}"#,
            Err("order_id: required"),
        ),
        ("minimum", r#"{"order_id":0}"#, Err("order_id: minimum")),
        (
            "array index is []",
            r#"{"order_id":1,"items":[{"sku":"a"},{"sku":"TOO-LONG-SKU"}]}"#,
            Err("items[].sku: maxLength"),
        ),
        ("big number read exactly", r#"{"order_id":1e400}"#, Ok(())),
    ];
    for (name, body, want) in cases {
        let got = check(&s, body);
        assert_eq!(
            got.as_ref().map_err(String::as_str),
            want.as_ref().map_err(|e| *e),
            "{name}"
        );
        if let Err(text) = got {
            assert!(!text.contains("SECRET") && !text.contains("TOO-LONG"), "{name}: {text}");
        }
    }
}

#[test]
fn a_key_that_looks_like_a_value_is_not_logged() {
    let s = schema(r#"{"additionalProperties": {"type": "integer"}}"#).unwrap();
    let got = check(&s, r#"{"jane@example.org":"x"}"#).unwrap_err();
    assert_eq!(got, "(value-like): type");
}

#[test]
fn a_numeric_key_is_a_key_not_an_index() {
    let s = schema(r#"{"properties": {"m": {"additionalProperties": {"type": "integer"}}}}"#).unwrap();
    assert_eq!(check(&s, r#"{"m":{"7":"x"}}"#).unwrap_err(), "m.7: type");
}

#[test]
fn bad_schemas_are_refused_at_load() {
    let cases: &[(&str, &str, &str)] = &[
        ("not json", "{", "not a JSON document"),
        ("duplicate key", r#"{"type":"object","type":"string"}"#, "duplicate"),
        ("not a schema value", "[]", "object or a boolean"),
        ("unknown type", r#"{"type":"strin"}"#, "strin"),
        (
            "other dialect",
            r#"{"$schema":"http://json-schema.org/draft-07/schema#"}"#,
            "2020-12",
        ),
        (
            "remote ref",
            r#"{"$ref":"https://schemas.example/x.json"}"#,
            "schemas.example",
        ),
        ("file ref", r#"{"$ref":"other.json"}"#, "other.json"),
        ("file uri ref", r#"{"$ref":"file:///etc/passwd"}"#, "passwd"),
        ("lookaround pattern", r#"{"pattern":"^(?=a)"}"#, "regex"),
    ];
    for (name, text, needle) in cases {
        let e = schema(text).expect_err(name);
        assert!(e.starts_with("schema file /"), "{name}: {e}");
        assert!(
            e.to_ascii_lowercase().contains(&needle.to_ascii_lowercase()),
            "{name}: {e}"
        );
    }
}

#[test]
fn a_reference_loop_ends() {
    // A schema that refers to itself without consuming the body: refused or bounded, never a hang.
    let text = r##"{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}"##;
    // jsonschema 0.60 compiles it and lets any body through: the loop constrains nothing.
    if let Ok(s) = schema(text) {
        assert_eq!(check(&s, r#"{"x":1}"#), Ok(()));
    }
}

#[test]
fn local_refs_work() {
    let s =
        schema(r##"{"$defs":{"pc":{"type":"string","pattern":"^[0-9]+$"}},"properties":{"p":{"$ref":"#/$defs/pc"}}}"##)
            .unwrap();
    assert!(check(&s, r#"{"p":"123"}"#).is_ok());
    assert_eq!(check(&s, r#"{"p":"x"}"#).unwrap_err(), "p: pattern");
}

#[test]
fn patterns_run_in_linear_time() {
    // Catastrophic for a backtracking engine; linear for the one the proxy uses.
    let s = schema(r#"{"properties":{"p":{"type":"string","pattern":"^(a+)+$"}}}"#).unwrap();
    let body = format!(r#"{{"p":"{}!"}}"#, "a".repeat(50_000));
    let started = std::time::Instant::now();
    assert_eq!(check(&s, &body).unwrap_err(), "p: pattern");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn relative_paths_follow_the_policy_directory() {
    let dir = Path::new("/etc/egress-guard");
    assert_eq!(resolve("schemas/x.json", Some(dir)), dir.join("schemas/x.json"));
    assert_eq!(resolve("/srv/x.json", Some(dir)), PathBuf::from("/srv/x.json"));
    assert_eq!(resolve("x.json", None), PathBuf::from("x.json"));
}

#[test]
fn the_hash_changes_with_a_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, r#"{"type":"object"}"#).unwrap();
    let a = load(path.clone()).unwrap();
    std::fs::write(&path, r#"{"type":"array"}"#).unwrap();
    let b = load(path).unwrap();
    let base = "0123456789ab".to_owned();
    assert_eq!(fold_hash(base.clone(), std::iter::empty()), base);
    let ha = fold_hash(base.clone(), std::iter::once(&a));
    let hb = fold_hash(base.clone(), std::iter::once(&b));
    assert_ne!(ha, base);
    assert_ne!(ha, hb);
    assert_eq!(ha.len(), 12);
}
