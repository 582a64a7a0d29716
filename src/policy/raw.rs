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
    pub audit_file: Option<String>,
    pub audit_key: Option<String>,
    pub audit_max_bytes: Option<u64>,
    pub intercept_ca: Option<RawInterceptCa>,
    pub shared_limits: Option<RawSharedLimits>,
}

/// `server.intercept_ca`: the local CA that signs leaves for intercepted hosts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterceptCa {
    pub cert: String,
    pub key: String,
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
    #[serde(default)]
    pub intercept: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub header: Option<String>,
    pub prefix: Option<String>,
    /// Required for the header shape; `basic` and `oauth2` take theirs inside.
    pub secret: Option<String>,
    pub basic: Option<RawBasic>,
    pub oauth2: Option<RawOAuth2>,
    /// `90d`, `12h`: how old the secret may get (see `key_age`); for `basic`
    /// the password's source, for `oauth2` the client secret's.
    pub rotate_every: Option<String>,
}

/// `credential: basic:`: `Authorization: Basic base64(username:password)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    pub username: String,
    pub password: String,
}

/// `credential: oauth2:`: RFC 6749 client credentials; both ids are secret sources.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub client_auth: Option<ClientAuth>,
    pub connect_to: Option<String>,
    pub ca_file: Option<String>,
}

/// How the client authenticates to the token endpoint (RFC 6749 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Body,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: f64,
    pub burst: Option<u32>,
    pub bytes_per_minute: Option<u64>,
    pub scope: Option<Scope>,
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
    /// A JSON Schema 2020-12 file, relative to the policy file's directory.
    pub schema: Option<String>,
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

/// `server.shared_limits`: the Redis that the proxies of a fleet share limits through.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSharedLimits {
    /// `redis://host:port/db`, `unix:///path`, or a secret source holding one.
    pub redis: String,
    pub key_prefix: Option<String>,
    pub on_unavailable: Option<OnUnavailable>,
    pub timeout_ms: Option<u64>,
}

/// Whose limit a destination's `rate_limit` is: this host's, or the fleet's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Host,
    Fleet,
}

/// What a fleet-scoped limit does when the shared store cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    Local,
    Refuse,
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
    ClientAuth { Basic => "basic", Body => "body" }
    Scope { Host => "host", Fleet => "fleet" }
    OnUnavailable { Local => "local", Refuse => "refuse" }
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
        check(ClientAuth::EVERY);
        check(Scope::EVERY);
        check(OnUnavailable::EVERY);
    }
}
