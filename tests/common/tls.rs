//! A certificate authority made for one test with rcgen: the broker's certificate (for
//! `localhost` and `127.0.0.1`) and client certificates by common name, as PEM files in a temp
//! directory, plus the client-side TLS configurations that trust it.

use std::path::PathBuf;
use std::sync::Arc;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use mqbridge::Config;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

use super::{TempDir, within};

pub struct TestCa {
    pub dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
    pub ca_pem: String,
}

/// A certificate and its private key, PEM-encoded.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let ca_pem = params.self_signed(&key).expect("CA").pem();
        TestCa {
            dir: TempDir::new(),
            issuer: Issuer::new(params, key),
            ca_pem,
        }
    }

    /// The broker's certificate, valid for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> Identity {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "mqbridge");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate whose subject CN is `common_name`.
    pub fn client(&self, common_name: &str) -> Identity {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Identity {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `contents` to a file in the CA's directory.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.0.join(name);
        std::fs::write(&path, contents).expect("write PEM");
        path
    }

    /// Points `config` at a fresh server certificate (and, with `mtls`, at this CA for client
    /// certificates), with every TLS listener on a free port.
    pub fn configure(&self, config: &mut Config, mtls: bool) {
        let server = self.server();
        config.tls_cert_file = Some(self.write("server.pem", &server.cert_pem));
        config.tls_key_file = Some(self.write("server.key", &server.key_pem));
        config.tls_client_ca_file = mtls.then(|| self.write("ca.pem", &self.ca_pem));
        config.amqps_port = 0;
        config.mqtts_port = 0;
        config.stomps_port = 0;
        config.wss_port = 0;
    }

    /// A rustls client trusting this CA, presenting `identity` if given.
    pub fn client_config(&self, identity: Option<&Identity>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA");
        }
        let provider = Arc::new(crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match identity {
            Some(identity) => {
                let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert PEM");
                let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }

    /// lapin's TLS settings trusting this CA, presenting `identity` if given.
    pub fn lapin_config(&self, identity: Option<&Identity>) -> OwnedTLSConfig {
        OwnedTLSConfig {
            identity: identity.map(|identity| OwnedIdentity::PKCS8 {
                pem: identity.cert_pem.clone().into_bytes(),
                key: identity.key_pem.clone().into_bytes(),
            }),
            cert_chain: Some(self.ca_pem.clone()),
        }
    }
}

/// An AMQPS connection as `user` (password `guest`) to `localhost:{port}`.
pub async fn amqps(port: u16, user: &str, tls: OwnedTLSConfig) -> lapin::Result<lapin::Connection> {
    let url = format!("amqps://{user}:guest@localhost:{port}/%2f");
    let runtime = lapin::runtime::default_runtime().expect("runtime");
    let properties = lapin::ConnectionProperties::default();
    within(lapin::Connection::connect_with_config(
        &url, properties, tls, runtime,
    ))
    .await
}

/// Connects to `address` over TLS as a client trusting `config`'s roots.
pub async fn connect(
    address: std::net::SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}
