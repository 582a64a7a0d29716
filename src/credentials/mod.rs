//! OAuth2 client-credentials tokens (RFC 6749 section 4.4): the endpoint's
//! settings a policy compiles (`OAuth2`), and the per-block token cache the
//! store keeps across reloads (`TokenCell`), which fetches once for any number
//! of waiting requests and drops a token an upstream answered 401 to.

mod fetch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::policy::raw::ClientAuth;
use crate::policy::Secret;
use crate::scrub::Forms;
use crate::store::Telemetry;
use crate::upstream::Upstream;
use crate::vocab::Reason;

pub use fetch::Outcome;

/// A token endpoint as one `oauth2:` block names it, its secrets read.
pub struct OAuth2 {
    pub token_uri: http::Uri,
    pub(crate) client_id: Secret,
    pub(crate) client_secret: Secret,
    pub(crate) scope: Option<String>,
    pub(crate) client_auth: ClientAuth,
    /// Same dialer and address checks as a destination's, with the block's
    /// own `connect_to` and `ca_file`.
    pub(crate) upstream: Upstream,
    /// Bounds one whole fetch: connect, send, answer and body.
    pub(crate) timeout: Duration,
    /// Digest of everything that makes a token (secrets included): the
    /// store carries a token over a reload only to a block with the same key.
    pub(crate) key: [u8; 32],
}

impl std::fmt::Debug for OAuth2 {
    // The id, secret and key stay out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2")
            .field("token_uri", &self.token_uri)
            .field("client_auth", &self.client_auth.yaml_name())
            .finish()
    }
}

/// The header a request injects and what the answer's scrubber masks.
#[derive(Clone)]
pub struct Issued {
    /// `Bearer <token>`, marked sensitive.
    pub value: HeaderValue,
    /// The token and the client secret, every spelling (wiped on drop).
    pub forms: Arc<Forms>,
    /// Which token this is, so a 401 drops this one and not a newer one.
    pub serial: u64,
}

struct Token {
    issued: Issued,
    /// Clock time from which the token counts as expired.
    stale_at: Duration,
}

/// One `oauth2:` block's token, shared by every request and by the policies
/// a reload installs while the block stays the same.
pub struct TokenCell {
    pub(crate) key: [u8; 32],
    token: tokio::sync::Mutex<Option<Token>>,
    /// Failed fetches so far: a request that waited through one shares its outcome.
    failures: AtomicU64,
    serials: AtomicU64,
    /// The newest serial an upstream answered 401 to: that token and older
    /// ones are not handed out again. Atomic, so a 401 never waits for a fetch.
    rejected: AtomicU64,
    /// The clock expiry is read on (tests drive it) and the fetch counter.
    telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for TokenCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCell(<redacted>)")
    }
}

/// Refresh this long before `expires_in` ends (a quarter of short lifetimes),
/// so a token is never sent in its last seconds.
const MARGIN: Duration = Duration::from_secs(30);

impl TokenCell {
    pub fn new(key: [u8; 32], telemetry: Arc<Telemetry>) -> TokenCell {
        TokenCell {
            key,
            token: tokio::sync::Mutex::new(None),
            failures: AtomicU64::new(0),
            serials: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            telemetry,
        }
    }

    /// A valid token, fetched if there is none. One fetch at a time: requests
    /// that arrive meanwhile wait for it and share its result, a failure
    /// included; a request that arrives after a failure tries again.
    pub async fn get(&self, cfg: &OAuth2, destination: &str) -> Result<Issued, Reason> {
        let clock = &self.telemetry.clock;
        let failures_seen = self.failures.load(Ordering::Acquire);
        let mut slot = self.token.lock().await;
        let rejected = self.rejected.load(Ordering::Acquire);
        if let Some(t) = slot
            .as_ref()
            .filter(|t| clock.now() < t.stale_at && t.issued.serial > rejected)
        {
            return Ok(t.issued.clone());
        }
        if self.failures.load(Ordering::Acquire) != failures_seen {
            return Err(Reason::CredentialUnavailable);
        }
        // The lifetime counts from the request: the endpoint's clock started before its answer.
        let started = clock.now();
        let result = fetch::fetch(cfg).await;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(o) => *o,
        };
        self.telemetry.metrics.credential_fetch(destination, outcome.as_str());
        let fresh = match result {
            Ok(f) => f,
            Err(o) => {
                tracing::warn!(destination, outcome = o.as_str(), "OAuth2 token fetch failed");
                self.failures.fetch_add(1, Ordering::AcqRel);
                *slot = None;
                return Err(Reason::CredentialUnavailable);
            }
        };
        tracing::debug!(
            destination,
            lifetime_s = fresh.lifetime.as_secs(),
            "OAuth2 token fetched"
        );
        let margin = MARGIN.min(fresh.lifetime / 4);
        let issued = Issued {
            value: fresh.value,
            forms: Arc::new(Forms::new([
                fresh.token.bytes().as_ref(),
                cfg.client_secret.bytes().as_ref(),
            ])),
            serial: self.serials.fetch_add(1, Ordering::AcqRel) + 1,
        };
        *slot = Some(Token {
            issued: issued.clone(),
            stale_at: started.saturating_add(fresh.lifetime).saturating_sub(margin),
        });
        Ok(issued)
    }

    /// An upstream answered 401 to token `serial`: the next request fetches
    /// a fresh one (a newer token, fetched meanwhile, stays).
    pub fn rejected(&self, serial: u64) {
        self.rejected.fetch_max(serial, Ordering::AcqRel);
    }
}

/// The cache key of a block: a digest over each part, length-prefixed so
/// that no two different blocks run together into the same bytes.
pub(crate) fn block_key(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    <[u8; 32]>::try_from(ctx.finish().as_ref()).unwrap_or([0; 32])
}

#[cfg(test)]
mod tests;
