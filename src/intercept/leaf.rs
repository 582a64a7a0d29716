//! Leaf certificates for intercepted hosts: minted on first use, valid for a
//! day (backdated a few minutes for clock skew), kept in a bounded cache and
//! minted anew once half their life is gone, so no client ever sees one expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::InterceptCa;
use crate::policy::Destination;

/// How long a leaf is valid.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How far back a leaf's validity starts: a client clock a little behind still accepts it.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// A cached leaf is replaced once less than this much of it is left.
const RENEW_BEFORE: Duration = Duration::from_secs(12 * 3600);
/// At most this many hosts' leaves are kept.
pub const CACHE_MAX: usize = 1024;

/// Leave to mint for one host: only a CONNECT that the policy decided to
/// intercept can make one, so the CA never signs for a host the proxy was not
/// told to intercept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    host: String,
}

impl Grant {
    /// The grant for `host`, when `dest` is an `intercept: true` destination
    /// that matches it; `None` for anything else.
    pub(crate) fn for_decided(dest: &Destination, host: &str) -> Option<Grant> {
        (dest.intercept && !dest.tunnel && dest.host.matches(host)).then(|| Grant { host: host.to_owned() })
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Why no leaf: the CA's name constraints do not permit the host, or signing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintError {
    NotPermitted,
    Signing,
}

#[derive(Default)]
pub(super) struct Cache {
    leaves: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    config: Arc<rustls::ServerConfig>,
    not_after: SystemTime,
}

impl Cache {
    pub(super) fn len(&self) -> usize {
        self.leaves.lock().map_or(0, |m| m.len())
    }

    /// The config for the grant's host at `now`: the cached one while it has
    /// more than `RENEW_BEFORE` left, a newly minted one otherwise.
    pub(super) fn get_or_mint(
        &self,
        ca: &InterceptCa,
        grant: &Grant,
        now: SystemTime,
    ) -> Result<Arc<rustls::ServerConfig>, MintError> {
        if !ca.permits(&grant.host) {
            return Err(MintError::NotPermitted);
        }
        let cached = self
            .leaves
            .lock()
            .ok()
            .and_then(|m| m.get(&grant.host).and_then(fresh(now)));
        if let Some(config) = cached {
            return Ok(config);
        }
        let (config, not_after) = mint(ca, &grant.host, now)?;
        if let Ok(mut m) = self.leaves.lock() {
            if m.len() >= CACHE_MAX && !m.contains_key(&grant.host) {
                evict(&mut m, now);
            }
            m.insert(
                grant.host.clone(),
                Entry {
                    config: config.clone(),
                    not_after,
                },
            );
        }
        Ok(config)
    }
}

/// The entry's config while it has enough life left.
fn fresh(now: SystemTime) -> impl Fn(&Entry) -> Option<Arc<rustls::ServerConfig>> {
    move |e| (e.not_after > now + RENEW_BEFORE).then(|| e.config.clone())
}

/// Room for one more: expiring entries go first, then the one closest to its end.
fn evict(m: &mut HashMap<String, Entry>, now: SystemTime) {
    m.retain(|_, e| e.not_after > now + RENEW_BEFORE);
    if m.len() >= CACHE_MAX {
        let oldest = m.iter().min_by_key(|(_, e)| e.not_after).map(|(h, _)| h.clone());
        if let Some(h) = oldest {
            m.remove(&h);
        }
    }
}

/// A new P-256 leaf for `host`, signed by the CA, as a TLS server config
/// offering HTTP/1.1.
fn mint(ca: &InterceptCa, host: &str, now: SystemTime) -> Result<(Arc<rustls::ServerConfig>, SystemTime), MintError> {
    let not_after = (now + LEAF_LIFETIME).min(ca.not_after);
    let mut params = CertificateParams::default();
    let name = host.to_owned().try_into().map_err(|_| MintError::Signing)?;
    params.subject_alt_names = vec![SanType::DnsName(name)];
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, host);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = (now - BACKDATE).into();
    params.not_after = not_after.into();
    params.serial_number = Some(SerialNumber::from_slice(&serial()?));
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|_| MintError::Signing)?;
    let cert = params
        .signed_by(&key, &ca.issuer, &ca.key)
        .map_err(|_| MintError::Signing)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = rustls::crypto::ring::sign::any_ecdsa_type(&der).map_err(|_| MintError::Signing)?;
    let certified = CertifiedKey::new(vec![CertificateDer::from(cert.der().to_vec())], signer);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| MintError::Signing)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneLeaf(Arc::new(certified))));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), not_after))
}

/// 16 random bytes, the top bit clear so the serial is a positive integer.
fn serial() -> Result<[u8; 16], MintError> {
    let mut s = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut s).map_err(|_| MintError::Signing)?;
    s[0] = (s[0] & 0x7f).max(1);
    Ok(s)
}

/// The one leaf a host's config serves, whatever the client asks: the SNI was checked before.
#[derive(Debug)]
struct OneLeaf(Arc<CertifiedKey>);

impl ResolvesServerCert for OneLeaf {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
pub(super) fn mint_at(
    ca: &InterceptCa,
    grant: &Grant,
    now: SystemTime,
) -> Result<Arc<rustls::ServerConfig>, MintError> {
    ca.leaves.get_or_mint(ca, grant, now)
}

#[cfg(test)]
pub(super) fn grant_for_test(host: &str) -> Grant {
    Grant { host: host.to_owned() }
}
