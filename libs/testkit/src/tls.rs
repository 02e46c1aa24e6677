//! Throwaway certificate authorities for TLS tests (rcgen): a CA, leaves for 127.0.0.1 signed
//! by it, and their PEM files in a temporary directory removed on drop.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy)]
pub enum Usage {
    /// A server (`serverAuth`).
    Server,
    /// A client (`clientAuth`).
    Client,
}

/// A certificate authority made for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    ///
    /// # Panics
    /// If rcgen cannot generate a key (it does not, with ring).
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-signed");
        Self { cert, key }
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf named `name` for 127.0.0.1 and the DNS name `name`: (certificate PEM, private key
    /// PEM).
    ///
    /// # Panics
    /// As [`TestCa::new`].
    pub fn leaf(&self, name: &str, usage: Usage) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = vec![SanType::IpAddress(Ipv4Addr::LOCALHOST.into())];
        if let Ok(dns) = name.try_into() {
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

/// A temporary directory of PEM files, removed on drop.
pub struct CertDir(PathBuf);

impl Default for CertDir {
    fn default() -> Self {
        Self::new()
    }
}

impl CertDir {
    /// A fresh directory.
    ///
    /// # Panics
    /// If the temporary directory cannot be created.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(crate::unique_prefix("certs"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write PEM");
        path
    }

    /// `name.crt`, `name.key` (a leaf of `issuer`) and `name-ca.crt` (the CA `trusts`).
    pub fn party(&self, name: &str, issuer: &TestCa, usage: Usage, trusts: &TestCa) -> CertFiles {
        let (cert, key) = issuer.leaf(name, usage);
        CertFiles {
            cert: self.write(&format!("{name}.crt"), &cert),
            key: self.write(&format!("{name}.key"), &key),
            ca: self.write(&format!("{name}-ca.crt"), &trusts.pem()),
        }
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One party's files: its certificate and key, and the CA it trusts.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// The CA it trusts (PEM).
    pub ca: PathBuf,
}
