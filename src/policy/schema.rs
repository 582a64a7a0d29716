//! `schema:` files: the JSON Schema 2020-12 document a route's filtered body
//! must satisfy. Compiled when the policy loads, with nothing fetched (an
//! external `$ref` is a load error) and linear-time regular expressions; a
//! failure is told by field path and keyword only, never by value.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The only dialect: a schema that names another one is refused, not read
/// by rules its author did not write it for.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// A schema is policy, not data: a path mistyped onto a dump or a log must
/// not make the proxy read it whole.
const MAX_SCHEMA_BYTES: u64 = 1 << 20;
/// Compiled size of one `pattern` (the `regex` crate's bound): patterns run
/// on client values, so they are linear-time and bounded in memory.
const MAX_PATTERN_BYTES: usize = 1 << 22;

/// A compiled schema file.
pub struct Schema {
    /// The file, resolved against the policy's directory (the reloader watches it).
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, folded into the policy hash.
    digest: Vec<u8>,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a body does not satisfy its schema, in words safe to log: where
/// (the policy's field-path notation) and which keyword. Never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `shipping.postcode`, `items[].sku`; `(body)` for the whole body.
    pub path: String,
    pub keyword: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.keyword)
    }
}

/// Where `spec` points: relative paths are read from `dir`, the policy
/// file's directory (the current one for a policy given as text).
pub fn resolve(spec: &str, dir: Option<&Path>) -> PathBuf {
    match dir {
        Some(d) if Path::new(spec).is_relative() => d.join(spec),
        _ => PathBuf::from(spec),
    }
}

/// Reads and compiles the schema at `path`. Errors name the file.
pub fn load(path: PathBuf) -> Result<Schema, String> {
    let shown = path.display().to_string();
    let bytes = read_bounded(&path).map_err(|e| format!("schema file {shown}: {e}"))?;
    let validator = compile(&bytes).map_err(|e| format!("schema file {shown}: {e}"))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref().to_vec();
    Ok(Schema {
        path,
        digest,
        validator,
    })
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {}", e.kind()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SCHEMA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {}", e.kind()))?;
    if bytes.len() as u64 > MAX_SCHEMA_BYTES {
        return Err(format!("larger than {MAX_SCHEMA_BYTES} bytes"));
    }
    Ok(bytes)
}

/// The schema's text → a validator. Duplicate keys (serde would keep the
/// last silently) and other dialects are refused; nothing is fetched.
fn compile(bytes: &[u8]) -> Result<jsonschema::Validator, String> {
    let plain = crate::json_filter::FieldRules::new(crate::json_filter::ListMode::Deny, Vec::new());
    if let Err(e) = crate::json_filter::filter(bytes, &plain, false, &mut Vec::new()) {
        return Err(format!("not a JSON document the proxy accepts: {e}"));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !(value.is_object() || value.is_boolean()) {
        return Err("a schema is a JSON object or a boolean".to_owned());
    }
    match value.get("$schema") {
        None => {}
        Some(Value::String(s)) if s.trim_end_matches('#') == DRAFT_2020_12 => {}
        Some(_) => {
            return Err(format!(
                "only JSON Schema 2020-12 is supported (`$schema`: {DRAFT_2020_12})"
            ))
        }
    }
    let patterns = jsonschema::PatternOptions::regex().size_limit(MAX_PATTERN_BYTES);
    jsonschema::draft202012::options()
        .offline()
        .with_pattern_options(patterns)
        .build(&value)
        .map_err(|e| match e.kind() {
            jsonschema::error::ValidationErrorKind::Referencing(_) => {
                format!("{e} (the proxy fetches no external `$ref`: put the definitions under `$defs` in this file)")
            }
            _ => e.to_string(),
        })
}

impl Schema {
    /// The file's digest, for the policy hash.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// Checks a parsed body; the first failure, in safe words.
    pub fn check(&self, body: &Value) -> Result<(), Violation> {
        if self.validator.is_valid(body) {
            return Ok(());
        }
        let Err(e) = self.validator.validate(body) else {
            return Ok(());
        };
        let mut path = field_path(body, e.instance_path().as_str());
        // `required` fails on the object that lacks the field: name the field,
        // which the schema (the policy), not the client, spells.
        if let jsonschema::error::ValidationErrorKind::Required {
            property: Value::String(p),
        } = e.kind()
        {
            path = join(&path, p);
        }
        Err(Violation {
            path: crate::telemetry::audit::loggable_name(&path).into_owned(),
            keyword: e.kind().keyword().to_owned(),
        })
    }
}

/// A JSON pointer into `body` in the policy's notation: keys joined by `.`,
/// an array element as `[]` after its array's name (walking the body tells
/// an index from a key that looks like a number).
fn field_path(body: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut at = Some(body);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match at {
            Some(Value::Array(items)) => {
                out.push_str("[]");
                at = seg.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            Some(Value::Object(map)) => {
                at = map.get(&seg);
                out = join(&out, &seg);
            }
            _ => {
                at = None;
                out = join(&out, &seg);
            }
        }
    }
    if out.is_empty() {
        out.push_str("(body)");
    }
    out
}

fn join(path: &str, key: &str) -> String {
    match path {
        "" | "(body)" => key.to_owned(),
        p => format!("{p}.{key}"),
    }
}

/// Every `schema:` file a policy's routes use, in policy order.
pub fn every(destinations: &[std::sync::Arc<super::Destination>]) -> impl Iterator<Item = &Schema> {
    destinations
        .iter()
        .flat_map(|d| d.routes.iter().flatten())
        .filter_map(|r| r.body.as_ref()?.schema.as_ref())
}

/// The policy hash with every schema file's content folded in: a schema
/// change is a policy change, and the logs must be able to tell.
pub fn fold_hash<'a>(text_hash: String, schemas: impl Iterator<Item = &'a Schema>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut any = false;
    for s in schemas {
        any = true;
        ctx.update(s.path.as_os_str().as_encoded_bytes());
        ctx.update(&[0]);
        ctx.update(&s.digest);
    }
    if !any {
        return text_hash;
    }
    ctx.update(text_hash.as_bytes());
    let digest = ctx.finish();
    digest.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
