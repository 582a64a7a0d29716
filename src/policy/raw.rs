//! The policy file exactly as written: serde structs that refuse unknown keys.
//! Nothing here is trusted yet; `compile` turns it into a [`super::Policy`].
//! The only module that reads YAML: `serde_yaml` is deprecated upstream, and its
//! maintained forks with the same API (`yaml_serde`, `serde_norway`) need a change here only.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::errors::{PolicyError, PolicyErrors};

/// Reads the policy text; a YAML or shape mistake comes back with its line.
pub fn parse(text: &str) -> Result<RawPolicy, PolicyErrors> {
    serde_yaml::from_str(text).map_err(|e| {
        PolicyErrors(vec![PolicyError {
            line: e.location().map(|l| l.line()),
            key: String::new(),
            message: e.to_string(),
        }])
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub version: u32,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default, deserialize_with = "unique_names")]
    pub destinations: BTreeMap<String, RawDestination>,
    #[serde(default)]
    pub monitor: RawMonitor,
}

/// A map whose keys must be unique. serde fills a map by overwriting, so a
/// destination written twice would silently lose its first block: an error,
/// like any other key the proxy would otherwise ignore.
fn unique_names<'de, D, V>(de: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of destination names")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, value)) = map.next_entry::<String, V>()? {
                if out.contains_key(&name) {
                    return Err(serde::de::Error::custom(format!("destination `{name}` is named twice")));
                }
                out.insert(name, value);
            }
            Ok(out)
        }
    }
    de.deserialize_map(Unique(std::marker::PhantomData))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub unix_socket: Option<String>,
    pub admin: Option<String>,
    pub client_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub plain_http: Option<PlainHttp>,
    pub max_body_bytes: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlainHttp {
    Upgrade,
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Enforce,
    Report,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub host: String,
    pub port: Option<u16>,
    pub connect_to: Option<String>,
    pub ca_file: Option<String>,
    pub credential: Option<RawCredential>,
    pub rate_limit: Option<RawRateLimit>,
    pub routes: Option<Vec<RawRoute>>,
    #[serde(default)]
    pub tunnel: bool,
    pub mode: Option<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: f64,
    pub burst: Option<u32>,
    pub bytes_per_minute: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub methods: Option<Vec<String>>,
    pub path: String,
    pub body: Option<RawBody>,
    pub mode: Option<Mode>,
    pub query: Option<RawQuery>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBody {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub on_violation: Option<OnViolation>,
    #[serde(default)]
    pub scan: Vec<Scan>,
}

/// A route's `query:` block: the same keys as `body`, for query-string parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub on_violation: Option<OnViolation>,
    #[serde(default)]
    pub scan: Vec<Scan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnViolation {
    Strip,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scan {
    CardNumber,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub window_seconds: Option<u64>,
    pub warmup_windows: Option<u32>,
    pub spike_factor: Option<f64>,
    pub spike_min_requests: Option<u64>,
    pub refusal_burst: Option<u64>,
    pub unknown_destinations: Option<u64>,
    pub auth_failures: Option<u64>,
    pub body_factor: Option<f64>,
    pub body_min_bytes: Option<u64>,
    pub body_warmup: Option<u64>,
    pub field_warmup: Option<u64>,
    pub max_fields_per_route: Option<usize>,
}

/// Gives each enum the policy file's spelling of its values (`yaml_name`, and
/// `Display` with it), so `check` and `explain` speak the policy's words, not Rust's.
/// The match is exhaustive, and `words_are_the_serde_names` keeps it in step with serde.
macro_rules! policy_words {
    ($($ty:ident { $($variant:ident => $word:literal),+ $(,)? })+) => {$(
        impl $ty {
            /// This value as the policy file writes it.
            pub const fn yaml_name(self) -> &'static str {
                match self {
                    $($ty::$variant => $word),+
                }
            }

            #[cfg(test)]
            const EVERY: &'static [$ty] = &[$($ty::$variant),+];
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.yaml_name())
            }
        }
    )+};
}

policy_words! {
    PlainHttp { Upgrade => "upgrade", Refuse => "refuse" }
    Mode { Enforce => "enforce", Report => "report" }
    OnViolation { Strip => "strip", Reject => "reject" }
    Scan { CardNumber => "card_number" }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every printed word reads back, through serde, as the value it names.
    #[test]
    fn words_are_the_serde_names() {
        fn check<T: std::fmt::Display + PartialEq + std::fmt::Debug + serde::de::DeserializeOwned>(every: &[T]) {
            for v in every {
                let back: T = serde_yaml::from_str(&v.to_string()).unwrap();
                assert_eq!(&back, v, "{v}");
            }
        }
        check(PlainHttp::EVERY);
        check(Mode::EVERY);
        check(OnViolation::EVERY);
        check(Scan::EVERY);
    }
}
