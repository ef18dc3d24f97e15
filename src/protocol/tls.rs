//! AutoMTLS as go-plugin does it: a fresh self-signed server certificate per process, and the
//! client certificate Terraform passes in PLUGIN_CLIENT_CERT really verified.
//!
//! Terraform's client certificate is an ECDSA P-521 CA certificate. rustls' default verifier
//! (webpki) rejects a CA certificate used as an end entity, so the generic path cannot work; the
//! verifier here pins the exact certificate from the environment (byte-for-byte DER) and checks
//! the TLS handshake signature with aws-lc-rs, which supports P-521/SHA-512. Optional client auth
//! would let any local process talk to the provider, so it is not an option.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("PLUGIN_CLIENT_CERT holds no PEM certificate")]
    NoClientCert,
    #[error("could not read PLUGIN_CLIENT_CERT: {0}")]
    BadClientCert(String),
    #[error("could not create the server certificate: {0}")]
    Cert(String),
    #[error("TLS configuration failed: {0}")]
    Config(String),
}

/// The server's certificate and key.
pub struct ServerIdentity {
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl ServerIdentity {
    /// A self-signed certificate valid for `localhost`, as the Go client verifies the server
    /// against exactly this certificate with server name `localhost`.
    pub fn generate() -> Result<ServerIdentity, TlsSetupError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| TlsSetupError::Cert(e.to_string()))?;
        let mut p = CertificateParams::new(vec!["localhost".to_string()])
            .map_err(|e| TlsSetupError::Cert(e.to_string()))?;
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.distinguished_name.push(DnType::OrganizationName, "paved");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyCertSign,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::seconds(30);
        p.not_after = now + time::Duration::days(365 * 30);
        let cert = p
            .self_signed(&key)
            .map_err(|e| TlsSetupError::Cert(e.to_string()))?;
        Ok(ServerIdentity {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// The handshake's certificate field: raw DER, standard base64 without padding.
    pub fn handshake_field(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&self.cert_der)
    }
}

/// Parses the first certificate of a PEM bundle to DER.
pub fn client_cert_der(pem: &str) -> Result<Vec<u8>, TlsSetupError> {
    let mut rd = std::io::BufReader::new(pem.as_bytes());
    let first = rustls_pemfile::certs(&mut rd).next();
    match first {
        Some(Ok(c)) => Ok(c.to_vec()),
        Some(Err(e)) => Err(TlsSetupError::BadClientCert(e.to_string())),
        None => Err(TlsSetupError::NoClientCert),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Accepts exactly one client certificate and checks the handshake was signed by its key.
#[derive(Debug)]
pub struct PinnedClientVerifier {
    expected: Vec<u8>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientVerifier {
    pub fn new(expected_der: Vec<u8>) -> PinnedClientVerifier {
        PinnedClientVerifier {
            expected: expected_der,
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        if end_entity.as_ref() == self.expected.as_slice() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(TlsError::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// rustls server config for the plugin: TLS 1.2+, ALPN h2, mandatory pinned client cert.
pub fn server_config(
    id: &ServerIdentity,
    client_der: Vec<u8>,
) -> Result<rustls::ServerConfig, TlsSetupError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(PinnedClientVerifier::new(client_der)))
        .with_single_cert(vec![CertificateDer::from(id.cert_der.clone())], key)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_field_has_no_padding_and_decodes_to_der() {
        use base64::Engine;
        let id = ServerIdentity::generate().unwrap();
        let f = id.handshake_field();
        assert!(!f.ends_with('='));
        let der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&f)
            .unwrap();
        assert_eq!(der, id.cert_der);
        assert!(server_config(&id, der).is_ok());
    }

    #[test]
    fn verifier_pins_the_exact_certificate() {
        let a = ServerIdentity::generate().unwrap();
        let b = ServerIdentity::generate().unwrap();
        let v = PinnedClientVerifier::new(a.cert_der.clone());
        let now = UnixTime::now();
        assert!(v
            .verify_client_cert(&CertificateDer::from(a.cert_der.clone()), &[], now)
            .is_ok());
        assert!(v
            .verify_client_cert(&CertificateDer::from(b.cert_der.clone()), &[], now)
            .is_err());
        assert!(v.client_auth_mandatory());
        assert!(v
            .supported_verify_schemes()
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        assert!(matches!(
            client_cert_der("nope"),
            Err(TlsSetupError::NoClientCert)
        ));
    }
}
