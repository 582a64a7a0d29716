//! A certificate authority made in the test (rcgen), leaf certificates it
//! signs as rustls server configs, and secret files as an operator writes them.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority made for one test; its PEM lives in a temp file
/// that a policy's `ca_file` (or curl's `--cacert`) can name.
pub struct TestCa {
    key: KeyPair,
    cert: rcgen::Certificate,
    pem_file: tempfile::NamedTempFile,
}

impl TestCa {
    pub fn new() -> TestCa {
        TestCa::named("egress-guard test CA")
    }

    /// Path of the CA certificate in PEM, for `ca_file` and `--cacert`.
    pub fn pem_path(&self) -> String {
        self.pem_file.path().to_str().unwrap().to_owned()
    }

    /// A leaf certificate for `names`, signed by this CA, as a rustls server
    /// config. `h2` also offers HTTP/2 by ALPN (HTTP/1.1 is always offered).
    pub fn server_config(&self, names: &[&str], h2: bool) -> Arc<rustls::ServerConfig> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "egress-guard test upstream");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&leaf_key, &self.cert, &self.key).unwrap();
        let chain = vec![CertificateDer::from(leaf.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        cfg.alpn_protocols = if h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Arc::new(cfg)
    }
}

impl TestCa {
    /// A CA whose subject is `cn`: CAs that share one bundle need names of
    /// their own (OpenSSL picks an issuer by name, then fails on the signature).
    pub fn named(cn: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let mut pem_file = tempfile::Builder::new()
            .prefix("test-ca-")
            .suffix(".pem")
            .tempfile()
            .unwrap();
        pem_file.write_all(cert.pem().as_bytes()).unwrap();
        pem_file.flush().unwrap();
        TestCa { key, cert, pem_file }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// A secret file as an operator writes it (`echo KEY > file`: one trailing newline).
pub fn secret_file(value: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().prefix("secret-").tempfile().unwrap();
    writeln!(f, "{value}").unwrap();
    f.flush().unwrap();
    f
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}
