//! A JSON document as serde_json reads it, keeping every member of an object in order,
//! duplicates included (`serde_json::Value` would keep only the last), and every number
//! as its text (arbitrary precision), so the checker sees what an upstream parser sees.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// serde_json's private map key for an arbitrary-precision number.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Parses one JSON document (RFC 8259, serde_json's reading; no depth limit of its own
/// beyond serde_json's 128).
pub fn parse(bytes: &[u8]) -> Result<Json, serde_json::Error> {
    serde_json::from_slice(bytes)
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.to_string()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.to_string()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
        Ok(Json::Number(n.to_string()))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            if members.is_empty() && k == NUMBER_TOKEN {
                let text: String = map.next_value()?;
                return match map.next_key::<de::IgnoredAny>()? {
                    None => Ok(Json::Number(text)),
                    Some(_) => Err(de::Error::custom("number token with members")),
                };
            }
            members.push((k, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

/// One step from the root to a value: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Calls `f` with the path and value of every value in the document, root first.
pub fn walk(doc: &Json, f: &mut dyn FnMut(&[Step], &Json)) {
    let mut path = Vec::new();
    walk_at(doc, &mut path, f);
}

fn walk_at(v: &Json, path: &mut Vec<Step>, f: &mut dyn FnMut(&[Step], &Json)) {
    f(path, v);
    match v {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk_at(item, path, f);
                path.pop();
            }
        }
        Json::Object(members) => {
            for (k, item) in members {
                path.push(Step::Key(k.clone()));
                walk_at(item, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicates_and_number_text() {
        let doc = parse(br#"{"a":1e400,"a":[12345678901234567890123,-0.5],"b":null}"#).unwrap();
        let Json::Object(m) = doc else { panic!() };
        assert_eq!(m.len(), 3);
        assert!(matches!(&m[0], (k, Json::Number(_)) if k == "a"));
        assert_eq!(
            m[1].1,
            Json::Array(vec![
                Json::Number("12345678901234567890123".into()),
                Json::Number("-0.5".into())
            ])
        );
    }

    #[test]
    fn refuses_lone_surrogates_and_trailing_bytes() {
        assert!(parse(br#"{"a":"\ud800"}"#).is_err());
        assert!(parse(br#"{} x"#).is_err());
    }
}
