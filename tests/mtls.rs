//! AutoMTLS as Terraform performs it: a P-521 CA certificate as the client certificate. The
//! server must accept exactly that certificate (signature really checked) and refuse others.

use paved::protocol::tls::{self, ServerIdentity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client certificate shaped like go-plugin's: ECDSA P-521, CA=true, SAN localhost.
fn terraform_like_client_cert() -> (Vec<u8>, Vec<u8>, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut p = CertificateParams::new(vec!["localhost".into()]).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = p.self_signed(&key).unwrap();
    (cert.der().to_vec(), key.serialize_der(), cert.pem())
}

/// The Go client trusts exactly the server certificate from the handshake line.
#[derive(Debug)]
struct PinServer(Vec<u8>);
impl ServerCertVerifier for PinServer {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if ee.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("unexpected server cert".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Presents a certificate with whatever key it is given (rustls' own builder refuses a
/// mismatched pair, which is exactly what an attacker would try).
#[derive(Debug)]
struct AnyPair(Arc<rustls::sign::CertifiedKey>);
impl rustls::client::ResolvesClientCert for AnyPair {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// Runs one TLS connection; returns whether the server accepted it and echoed a byte.
async fn connect(
    server_expects_pem: &str,
    client_der: Vec<u8>,
    client_key: Vec<u8>,
    tls12: bool,
) -> bool {
    let id = ServerIdentity::generate().unwrap();
    let server_der = id.cert_der.clone();
    let cfg = tls::server_config(&id, tls::client_cert_der(server_expects_pem).unwrap()).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match acceptor.accept(tcp).await {
            Ok(mut s) => {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.is_ok()
                    && s.write_all(&b).await.is_ok()
                    && s.flush().await.is_ok()
            }
            Err(_) => false,
        }
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut ccfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(PinServer(server_der)))
    .with_client_cert_resolver(Arc::new(AnyPair(Arc::new(
        rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(client_der)],
            rustls::crypto::aws_lc_rs::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
                PrivatePkcs8KeyDer::from(client_key),
            ))
            .unwrap(),
        ),
    ))));
    ccfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client_ok = async {
        let mut s = tokio_rustls::TlsConnector::from(Arc::new(ccfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .ok()?;
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        s.write_all(b"x").await.ok()?;
        s.flush().await.ok()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.ok()?;
        Some(())
    }
    .await
    .is_some();
    let server_ok = server.await.unwrap();
    client_ok && server_ok
}

#[tokio::test]
async fn accepts_terraforms_p521_ca_client_certificate() {
    let (der, key, pem) = terraform_like_client_cert();
    assert!(
        connect(&pem, der.clone(), key.clone(), false).await,
        "TLS 1.3"
    );
    assert!(connect(&pem, der, key, true).await, "TLS 1.2");
}

#[tokio::test]
async fn refuses_any_other_client_certificate() {
    let (_, _, expected_pem) = terraform_like_client_cert();
    let (other_der, other_key, _) = terraform_like_client_cert();
    assert!(!connect(&expected_pem, other_der.clone(), other_key.clone(), false).await);
    assert!(!connect(&expected_pem, other_der, other_key, true).await);
}

#[tokio::test]
async fn refuses_the_right_certificate_with_the_wrong_key() {
    // Presenting the pinned certificate without its private key must fail the signature check.
    let (der, _, pem) = terraform_like_client_cert();
    let (_, wrong_key, _) = terraform_like_client_cert();
    assert!(!connect(&pem, der.clone(), wrong_key.clone(), false).await);
    assert!(!connect(&pem, der, wrong_key, true).await);
}
