//! STUB until the filter lands.
#[derive(Debug)]
pub struct FieldPath(String);
impl FieldPath {
    pub fn parse(s: &str) -> Result<FieldPath, String> {
        Ok(FieldPath(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Allow,
    Deny,
}
#[derive(Debug)]
pub struct FieldRules {
    pub mode: Mode,
    pub paths: Vec<FieldPath>,
}
impl FieldRules {
    pub fn new(mode: Mode, paths: Vec<FieldPath>) -> FieldRules {
        FieldRules { mode, paths }
    }
}
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    Malformed,
    DuplicateKey,
    TooDeep,
}
#[derive(Debug, Default)]
pub struct FilterOutcome {
    pub removed: Vec<String>,
    pub card_found: bool,
}
pub fn filter(
    input: &[u8],
    _rules: &FieldRules,
    _scan: bool,
    out: &mut Vec<u8>,
) -> Result<FilterOutcome, BodyError> {
    out.clear();
    out.extend_from_slice(input);
    Ok(FilterOutcome::default())
}
