//! Another AWS API served on the SQS endpoint. SNS shares port 9324 with SQS, as on the
//! emulators users know; the HTTP connection, the body bound and authentication stay here, and
//! a request the neighbor claims is answered by it, in its own shapes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use mqbridge_broker_api::BoxFuture;

/// One request for the neighbor, authenticated and with its body read.
#[derive(Debug)]
pub struct NeighborRequest<'a> {
    /// `X-Amz-Target`, for the JSON protocol.
    pub target: Option<&'a str>,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a Bytes,
    /// The request's `Host` header, for the URLs the answer hands out.
    pub host: &'a str,
    /// The broker user the request acts as.
    pub user: &'a str,
    /// The id every response carries as `x-amzn-RequestId`.
    pub request_id: &'a str,
}

/// The facts a neighbor uses to claim a request.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub target: Option<&'a str>,
    /// The service named in the SigV4 credential scope, when the request is signed.
    pub signed_for: Option<&'a str>,
    pub query: &'a [u8],
    pub body: &'a [u8],
}

pub trait Neighbor: Send + Sync + 'static {
    /// Answers requests that need no credentials (SNS: its signing certificate and the links
    /// it sends to subscribers), before authentication. `None` leaves the request to the
    /// usual path.
    fn public(
        &self,
        method: &str,
        path: &str,
        query: &str,
        host: &str,
        request_id: &str,
    ) -> Option<BoxFuture<'_, Response<Full<Bytes>>>>;

    /// Whether an authenticated request is the neighbor's rather than SQS's.
    fn claims(&self, claim: Claim<'_>) -> bool;

    fn handle<'a>(&'a self, request: NeighborRequest<'a>) -> BoxFuture<'a, Response<Full<Bytes>>>;
}

/// The service a SigV4 credential names: `Credential=<key>/<date>/<region>/<service>/aws4_request`
/// in the Authorization header, or `X-Amz-Credential` in a presigned URL's query.
pub fn signed_service<'a>(authorization: Option<&'a str>, query: &'a str) -> Option<&'a str> {
    let credential = match authorization {
        Some(header) => header.split("Credential=").nth(1)?,
        None => query
            .split('&')
            .find_map(|pair| pair.strip_prefix("X-Amz-Credential="))?,
    };
    // Presigned URLs percent-encode the slashes.
    let mut parts = credential.split(['/', ',']).flat_map(|p| p.split("%2F"));
    parts.nth(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_scope_names_the_service() {
        let header = "AWS4-HMAC-SHA256 Credential=AK/20261203/us-east-1/sns/aws4_request, \
                      SignedHeaders=host, Signature=00";
        assert_eq!(signed_service(Some(header), ""), Some("sns"));
        let query = "Action=X&X-Amz-Credential=AK%2F20261203%2Fus-east-1%2Fsqs%2Faws4_request";
        assert_eq!(signed_service(None, query), Some("sqs"));
        assert_eq!(signed_service(None, "Action=X"), None);
    }
}
