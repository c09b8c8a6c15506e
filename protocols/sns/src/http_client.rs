//! Outbound deliveries to `http` and `https` subscription endpoints: one POST per call, on a
//! connection of its own, bounded in time as a whole.
//!
//! Connections are not pooled: endpoints are arbitrary hosts, deliveries to one endpoint are
//! spaced by the retry policy, and a fresh connection keeps a slow or broken endpoint from
//! holding state between attempts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// SNS posts its JSON documents as plain text.
const SNS_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// How much of a response body is read before the connection is dropped: only the status
/// matters, and an endpoint must not be able to make the broker read without end.
const RESPONSE_BODY_LIMIT: usize = 64 * 1024;

/// Why a delivery attempt failed before a status code came back.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("invalid endpoint URL: {0}")]
    InvalidUrl(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("no response within the delivery timeout")]
    Timeout,
    #[error("HTTP exchange failed: {0}")]
    Http(String),
}

/// Client for endpoint deliveries; the TLS configuration is built once and shared.
#[derive(Clone)]
pub struct HttpClient {
    tls: TlsConnector,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    /// A client that trusts the operating system's root certificates.
    ///
    /// # Panics
    ///
    /// Never in practice: the aws-lc-rs provider supports rustls's default protocol versions.
    pub fn new() -> HttpClient {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "could not load some native root certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            tracing::debug!(
                added,
                ignored,
                "skipped unparsable native root certificates"
            );
        }
        // The provider is named rather than taken from the process default, which is ambiguous
        // (and panics) when more than one rustls provider is compiled in.
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        HttpClient::with_tls_config(Arc::new(config))
    }

    /// A client with its own TLS configuration, e.g. to trust a private CA.
    pub fn with_tls_config(config: Arc<ClientConfig>) -> HttpClient {
        HttpClient {
            tls: TlsConnector::from(config),
        }
    }

    /// POSTs `body` with `headers` to `url` and returns the response status. `timeout` bounds
    /// the whole exchange: DNS, connect, TLS, request and response.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<u16, DeliveryError> {
        let target = Target::parse(url).map_err(DeliveryError::InvalidUrl)?;
        let request = target.request(headers, body)?;
        tokio::time::timeout(timeout, self.exchange(&target, request))
            .await
            .map_err(|_| DeliveryError::Timeout)?
    }

    async fn exchange(
        &self,
        target: &Target,
        request: Request<Full<Bytes>>,
    ) -> Result<u16, DeliveryError> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| DeliveryError::Connect(e.to_string()))?;
        // Small requests: send the whole POST at once rather than wait on Nagle.
        let _ = tcp.set_nodelay(true);
        match &target.tls_name {
            None => send(TokioIo::new(tcp), request).await,
            Some(name) => {
                let tls = self
                    .tls
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| DeliveryError::Tls(e.to_string()))?;
                send(TokioIo::new(tls), request).await
            }
        }
    }
}

/// Sends one request on a fresh connection and returns the response status.
async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<u16, DeliveryError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| DeliveryError::Http(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http)?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        drain(response.into_body()).await;
        // Dropping `sender` here lets `connection` finish.
        Ok(status)
    };
    // The connection is driven in this task rather than spawned, so that a caller's timeout
    // dropping this future also closes the socket. Its own outcome adds nothing: a failure
    // before the response reaches `send_request` as an error.
    let (status, _connection) = tokio::join!(exchange, connection);
    status
}

/// Reads and drops up to [`RESPONSE_BODY_LIMIT`] bytes of a response body. A body that
/// breaks off does not change the delivery's outcome: the status is already known.
async fn drain(mut body: hyper::body::Incoming) {
    let mut read = 0;
    while read < RESPONSE_BODY_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) | None => break,
        }
    }
}

/// Validates an endpoint URL at Subscribe time: its scheme must be the subscription's
/// protocol (`http` or `https`) and it must name a host. Errors are AWS's messages.
pub fn check_endpoint(protocol: &str, endpoint: &str) -> Result<(), String> {
    let target = Target::parse(endpoint).map_err(|_| "Invalid parameter: Endpoint".to_owned())?;
    let scheme = if target.tls_name.is_some() {
        "https"
    } else {
        "http"
    };
    if scheme != protocol {
        return Err("Invalid parameter: Endpoint must match the specified protocol".to_owned());
    }
    Ok(())
}

/// Where a delivery goes, from an endpoint URL.
#[derive(Debug)]
struct Target {
    /// Host for connecting: a DNS name or an IP address, IPv6 without brackets.
    host: String,
    port: u16,
    /// `Host` header value: the URL's host and, if it had one, its port.
    authority: String,
    path_and_query: String,
    /// The name the certificate must match, for `https` only.
    tls_name: Option<ServerName<'static>>,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        let tls = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => false,
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => true,
            _ => return Err(format!("{url:?}: scheme must be http or https")),
        };
        let bracketed = uri.host().unwrap_or_default();
        let host = bracketed.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        // `Uri::port_u16` reads an out-of-range port as no port at all, which would send the
        // delivery to port 80 or 443; so the port text after the host is checked here.
        let authority = uri.authority().map_or("", |a| a.as_str());
        let host_and_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, rest)| rest);
        let port = match host_and_port
            .strip_prefix(bracketed)
            .and_then(|p| p.strip_prefix(':'))
        {
            Some(port) => port.parse().map_err(|_| format!("{url:?}: invalid port"))?,
            None if tls => 443,
            None => 80,
        };
        let authority = match uri.port() {
            Some(_) => format!("{bracketed}:{port}"),
            None => bracketed.to_owned(),
        };
        let tls_name = if tls {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| format!("{url:?}: host is not a valid TLS name: {e}"))?;
            Some(name)
        } else {
            None
        };
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        // `Uri` accepts "http://host?q", whose request target must still start with '/'.
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query.to_owned()
        } else {
            format!("/{path_and_query}")
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            authority,
            path_and_query,
            tls_name,
        })
    }

    /// The POST for this target. Caller headers replace the defaults of the same name, so a
    /// caller may set its own `Content-Type`.
    fn request(
        &self,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, DeliveryError> {
        let invalid = |e: &dyn std::fmt::Display| DeliveryError::Http(e.to_string());
        let mut request = Request::post(self.path_and_query.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, SNS_CONTENT_TYPE)
            .body(Full::new(body))
            .map_err(|e| invalid(&e))?;
        for (name, value) in headers {
            let name = HeaderName::try_from(*name).map_err(|e| invalid(&e))?;
            let value = HeaderValue::try_from(*value).map_err(|e| invalid(&e))?;
            request.headers_mut().insert(name, value);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// A request as a test server saw it.
    #[derive(Debug)]
    struct Received {
        request_line: String,
        /// Header names lowercased.
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Reads one HTTP/1.1 request with a Content-Length body.
    async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> Received {
        let mut buffer = Vec::new();
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed inside the request head");
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buffer[..head_end].to_vec()).expect("utf-8 head");
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().expect("content-length"));
        let mut body = buffer[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "connection closed inside the body");
            body.extend_from_slice(&chunk[..n]);
        }
        Received {
            request_line,
            headers,
            body,
        }
    }

    /// Answers one request with `status_line` and a short body, and hands back the request.
    async fn answer(
        stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
        status_line: &str,
    ) -> Received {
        let received = read_request(stream).await;
        let response = format!("HTTP/1.1 {status_line}\r\nContent-Length: 2\r\n\r\nok");
        stream.write_all(response.as_bytes()).await.expect("write");
        stream.flush().await.expect("flush");
        received
    }

    /// A plain-HTTP server on 127.0.0.1 that answers one request.
    async fn serve_once(status_line: &'static str) -> (SocketAddr, JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            answer(&mut stream, status_line).await
        });
        (addr, server)
    }

    #[tokio::test]
    async fn post_sends_method_path_headers_and_body() {
        let (addr, server) = serve_once("200 OK").await;
        let url = format!("http://{addr}/hooks/sns?topic=orders&x=1");
        let headers = [
            ("x-amz-sns-message-type", "Notification"),
            ("x-amz-sns-message-id", "m-1"),
        ];
        let body = Bytes::from_static(b"{\"Type\":\"Notification\"}");
        let client = HttpClient::new();
        let status = client
            .post(&url, &headers, body.clone(), TIMEOUT)
            .await
            .expect("post");
        assert_eq!(status, 200);
        let received = server.await.expect("server");
        assert_eq!(
            received.request_line,
            "POST /hooks/sns?topic=orders&x=1 HTTP/1.1"
        );
        assert_eq!(received.header("host"), Some(addr.to_string().as_str()));
        assert_eq!(
            received.header("content-type"),
            Some("text/plain; charset=UTF-8")
        );
        assert_eq!(
            received.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(
            received.header("x-amz-sns-message-type"),
            Some("Notification")
        );
        assert_eq!(received.header("x-amz-sns-message-id"), Some("m-1"));
        assert_eq!(received.body, body);
    }

    #[tokio::test]
    async fn post_returns_error_statuses_as_statuses() {
        let (addr, server) = serve_once("500 Internal Server Error").await;
        let status = HttpClient::new()
            .post(
                &format!("http://{addr}"),
                &[],
                Bytes::from_static(b"x"),
                TIMEOUT,
            )
            .await
            .expect("post");
        assert_eq!(status, 500);
        // A URL without a path is posted to "/".
        assert_eq!(
            server.await.expect("server").request_line,
            "POST / HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn caller_headers_replace_defaults() {
        let (addr, server) = serve_once("204 No Content").await;
        let headers = [("Content-Type", "application/json")];
        let status = HttpClient::new()
            .post(
                &format!("http://{addr}/"),
                &headers,
                Bytes::from_static(b"{}"),
                TIMEOUT,
            )
            .await
            .expect("post");
        assert_eq!(status, 204);
        let received = server.await.expect("server");
        let content_types: Vec<_> = received
            .headers
            .iter()
            .filter(|(n, _)| n == "content-type")
            .collect();
        assert_eq!(content_types.len(), 1);
        assert_eq!(received.header("content-type"), Some("application/json"));
    }

    #[tokio::test]
    async fn large_response_bodies_are_cut_short() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
            // Announces far more than the client reads; the client must not wait for it.
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let chunk = vec![b'a'; 16 * 1024];
            while stream.write_all(&chunk).await.is_ok() {}
        });
        let status = HttpClient::new()
            .post(&format!("http://{addr}/"), &[], Bytes::new(), TIMEOUT)
            .await
            .expect("post");
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let result = HttpClient::new()
            .post(&format!("http://{addr}/"), &[], Bytes::new(), TIMEOUT)
            .await;
        assert!(
            matches!(result, Err(DeliveryError::Connect(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn silent_server_is_a_timeout_within_the_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
            // Keeps the connection open without answering, until the client gives up.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        });
        let started = std::time::Instant::now();
        let bound = Duration::from_millis(300);
        let result = HttpClient::new()
            .post(&format!("http://{addr}/"), &[], Bytes::new(), bound)
            .await;
        assert!(matches!(result, Err(DeliveryError::Timeout)), "{result:?}");
        assert!(
            started.elapsed() < bound + Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // The client closed its socket when it gave up, which ends the server's read.
        tokio::time::timeout(TIMEOUT, server)
            .await
            .expect("socket closed")
            .expect("server");
    }

    #[tokio::test]
    async fn bad_urls_are_invalid_url_errors() {
        let client = HttpClient::new();
        for url in [
            "",
            "not a url",
            "example.com/path",
            "ftp://example.com/",
            "http://",
            "http:///path",
            "http://:8080/",
            "https://[::1",
            "http://exa mple.com/",
            "http://example.com:99999/",
            "http://example.com/\u{7f}",
        ] {
            let result = client.post(url, &[], Bytes::new(), TIMEOUT).await;
            assert!(
                matches!(result, Err(DeliveryError::InvalidUrl(_))),
                "{url:?}: {result:?}"
            );
        }
    }

    #[test]
    fn targets_keep_port_path_and_query() {
        let target = Target::parse("https://example.com:8443/a/b?c=d&e").expect("parse");
        assert_eq!((target.host.as_str(), target.port), ("example.com", 8443));
        assert_eq!(target.authority, "example.com:8443");
        assert_eq!(target.path_and_query, "/a/b?c=d&e");
        assert!(target.tls_name.is_some());
        let target = Target::parse("http://[::1]/x").expect("parse");
        assert_eq!((target.host.as_str(), target.port), ("::1", 80));
        assert_eq!(target.authority, "[::1]");
        let target = Target::parse("https://example.com?q=1").expect("parse");
        assert_eq!(
            (target.port, target.path_and_query.as_str()),
            (443, "/?q=1")
        );
    }

    #[test]
    fn check_endpoint_requires_matching_scheme_and_host() {
        assert_eq!(check_endpoint("http", "http://example.com/hook"), Ok(()));
        assert_eq!(
            check_endpoint("https", "https://example.com:8443/hook?a=b"),
            Ok(())
        );
        assert_eq!(check_endpoint("http", "HTTP://example.com/"), Ok(()));
        let mismatch =
            Err("Invalid parameter: Endpoint must match the specified protocol".to_owned());
        assert_eq!(check_endpoint("http", "https://example.com/"), mismatch);
        assert_eq!(check_endpoint("https", "http://example.com/"), mismatch);
        assert_eq!(check_endpoint("sqs", "http://example.com/"), mismatch);
        let invalid = Err("Invalid parameter: Endpoint".to_owned());
        for endpoint in [
            "",
            "example.com",
            "ftp://example.com/",
            "http://",
            "https:///x",
            "http://a b/",
        ] {
            assert_eq!(check_endpoint("http", endpoint), invalid, "{endpoint:?}");
        }
    }

    mod tls {
        use super::*;
        use tokio_rustls::TlsAcceptor;
        use tokio_rustls::rustls::ServerConfig;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        fn provider() -> Arc<tokio_rustls::rustls::crypto::CryptoProvider> {
            Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider())
        }

        /// An HTTPS server for "localhost" answering one request, and a client that trusts it.
        async fn serve_once_tls() -> (SocketAddr, JoinHandle<Option<Received>>, HttpClient) {
            let key = rcgen::KeyPair::generate().expect("key");
            let params =
                rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
            let certificate: CertificateDer<'static> =
                params.self_signed(&key).expect("certificate").der().clone();
            let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            let server_config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![certificate.clone()], private)
                .expect("server config");
            let mut roots = RootCertStore::empty();
            roots.add(certificate).expect("root");
            let client_config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let acceptor = TlsAcceptor::from(Arc::new(server_config));
            let server = tokio::spawn(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                // A client that rejects the certificate ends the handshake here.
                let mut stream = acceptor.accept(stream).await.ok()?;
                Some(answer(&mut stream, "200 OK").await)
            });
            (
                addr,
                server,
                HttpClient::with_tls_config(Arc::new(client_config)),
            )
        }

        #[tokio::test]
        async fn https_post_reaches_a_trusted_server() {
            let (addr, server, client) = serve_once_tls().await;
            let url = format!("https://localhost:{}/secure?x=1", addr.port());
            let body = Bytes::from_static(b"signed document");
            let status = client
                .post(&url, &[], body.clone(), TIMEOUT)
                .await
                .expect("post");
            assert_eq!(status, 200);
            let received = server.await.expect("server").expect("handshake");
            assert_eq!(received.request_line, "POST /secure?x=1 HTTP/1.1");
            let host = format!("localhost:{}", addr.port());
            assert_eq!(received.header("host"), Some(host.as_str()));
            assert_eq!(received.body, body);
        }

        #[tokio::test]
        async fn untrusted_certificate_is_a_tls_error() {
            let (addr, server, _) = serve_once_tls().await;
            let url = format!("https://localhost:{}/", addr.port());
            let result = HttpClient::new()
                .post(&url, &[], Bytes::new(), TIMEOUT)
                .await;
            assert!(matches!(result, Err(DeliveryError::Tls(_))), "{result:?}");
            assert!(server.await.expect("server").is_none());
        }
    }
}
