//! Test certificates: a CA and certificates it issues (rcgen), as PEM text, for uploads, for
//! pebble's own HTTPS listener and for the benchmarks.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// A test certificate authority.
pub struct TestCa {
    /// Its certificate (the root a client trusts), PEM.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate issued by a [`TestCa`]: the chain (leaf, then the CA) and the key, PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("a self-signed CA");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names, or IP addresses written as such), valid from a
    /// day ago for a year.
    pub fn issue(&self, names: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().expect("a DNS name")),
            });
        }
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(86400)).into();
        params.not_after = (now + std::time::Duration::from_secs(365 * 86400)).into();
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a signed certificate");
        Issued {
            chain_pem: format!("{}{}", cert.pem(), self.pem),
            key_pem: key.serialize_pem(),
        }
    }
}
