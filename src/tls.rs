//! TLS on the broker's listeners (AMQPS, MQTTS, STOMP over TLS, WSS): the certificate and key
//! from PEM files, optional client certificates (mTLS), and reloading both on SIGHUP.
//!
//! What it owns: the rustls `ServerConfig` behind a lock, swapped whole on reload, so a
//! handshake in progress keeps the configuration it started with and the next one sees the new
//! certificate. What it does not: the protocols; a TLS listener hands the decrypted stream to
//! the same adapter `serve` as its plain twin.
//!
//! A failed handshake (a plain-text client on a TLS port, an untrusted client certificate, a
//! client that never finishes) is logged and closes that connection only; it runs on the
//! connection's own task.
//!
//! Locks: `config` is a `std::sync::RwLock` held only to clone or replace an `Arc`.

mod login;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};
use tokio_rustls::server::TlsStream;

pub use login::CertificateLogin;

/// Where the PEM files are; read at start and on every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Trust anchors for client certificates; when set, every client must present one.
    pub client_ca: Option<PathBuf>,
}

/// The TLS side of every TLS listener.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

/// A connection past its TLS handshake.
pub struct Accepted<S> {
    pub stream: TlsStream<S>,
    /// The client certificate's subject CN, when the client presented one.
    pub identity: Option<String>,
}

impl Tls {
    /// Reads the files; an error names the file at fault, so the broker refuses to start.
    pub fn load(files: TlsFiles) -> anyhow::Result<Arc<Tls>> {
        let config = server_config(&files)?;
        Ok(Arc::new(Tls {
            files,
            config: RwLock::new(Arc::new(config)),
        }))
    }

    /// Reads the files again and uses them for the next handshakes. On error the current
    /// configuration stays, so a half-written certificate does not take the ports down.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = Arc::new(server_config(&self.files)?);
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// Runs the server handshake on `stream`; `None` (after logging why) if it failed or did
    /// not finish within `timeout` (`handshake_timeout_ms`), so a silent or stalled client
    /// cannot hold a connection slot.
    pub async fn accept<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Option<Accepted<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner));
        let handshake = TlsAcceptor::from(config).accept(stream);
        let stream = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::info!(%peer, %error, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::info!(%peer, "TLS handshake timed out");
                return None;
            }
        };
        let identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(common_name);
        Some(Accepted { stream, identity })
    }
}

fn server_config(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("no private key in {}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(path)? {
                roots
                    .add(certificate)
                    .with_context(|| format!("bad CA certificate in {}", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .with_context(|| format!("unusable client CA file {}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .with_context(|| format!("{} does not match its key", files.cert.display()))
}

fn certificates(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", path.display());
    Ok(chain)
}

/// The subject's first common name (RabbitMQ's `ssl_cert_login_from = common_name`).
fn common_name(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_owned)
}
