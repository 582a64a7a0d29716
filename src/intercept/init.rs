//! A new interception CA: EC P-256, CA:TRUE with no intermediates below it,
//! and critical name constraints that permit only the intercepted host names
//! and no IP address, so even its stolen key vouches for nothing else.
//! The key file is created with mode 0600 and never exists with a wider one.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose,
    NameConstraints, SerialNumber,
};

/// How long a CA made here is valid.
pub const CA_LIFETIME: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// What `ca init` wrote.
#[derive(Debug)]
pub struct Made {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub permitted: Vec<String>,
}

/// The names a CA permits, from host patterns (`*.x` → `x`, which covers its
/// subdomains); each checked as a DNS name. Sorted, without duplicates.
pub fn permitted_names<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for h in hosts {
        let name = h.trim_end_matches('.').trim_start_matches("*.").to_ascii_lowercase();
        let label_ok =
            |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if name.parse::<std::net::IpAddr>().is_ok() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!("`{h}` is not a host name a CA can be constrained to"));
        }
        out.push(name);
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(
            "no host to permit: mark destinations `intercept: true` in the policy or name them with --permit"
                .to_owned(),
        );
    }
    Ok(out)
}

/// The CA's certificate PEM and key, permitting `names` only.
pub fn generate(names: &[String], now: SystemTime) -> Result<(String, KeyPair), String> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| format!("cannot make a key: {e}"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "egress-guard");
    params
        .distinguished_name
        .push(DnType::CommonName, "egress-guard local interception CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut permitted = Vec::new();
    for n in names {
        permitted.push(GeneralSubtree::DnsName(n.clone()));
    }
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        // Constraints hold per name type: without these, an IP address SAN would be unconstrained.
        excluded_subtrees: vec![
            GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])),
            GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
        ],
    });
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + CA_LIFETIME).into();
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .map_err(|_| "no randomness for a serial number".to_owned())?;
    serial[0] = (serial[0] & 0x7f).max(1);
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign the CA: {e}"))?;
    Ok((cert.pem(), key))
}

/// Writes `ca.pem` and `ca.key` into `dir` (made if missing). An existing
/// CA is kept unless `force`: replacing it makes every client that trusts it fail.
pub fn write(dir: &Path, names: &[String], force: bool) -> Result<Made, String> {
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    if !force {
        for p in [&cert_path, &key_path] {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(format!(
                    "{} exists: a CA is already there (--force replaces it, and every client must then trust the new one)",
                    p.display()
                ));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {}", dir.display(), e.kind()))?;
    let (pem, key) = generate(names, SystemTime::now())?;
    let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
    replace(&key_path, key_pem.as_bytes(), 0o600)?;
    replace(&cert_path, pem.as_bytes(), 0o644)?;
    Ok(Made {
        cert: cert_path,
        key: key_path,
        permitted: names.to_vec(),
    })
}

/// Writes `bytes` to a new file beside `path`, created with `mode` (so never
/// readable more widely, even for a moment), then renames it over `path`.
fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let tmp = path.with_extension("tmp-new");
    let _ = std::fs::remove_file(&tmp);
    let fail = |e: std::io::Error| format!("cannot write {}: {}", path.display(), e.kind());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(fail)
}
