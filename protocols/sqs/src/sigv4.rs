//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): verifying a request's signature, and signing
//! one (for tests and tools). Sans-IO: the caller hands in the request's parts, the clock and
//! the secret; nothing here reads a socket or the system time.
//!
//! ```text
//! Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/<service>/aws4_request,
//!                SignedHeaders=host;x-amz-date, Signature=<64 hex digits>
//! X-Amz-Date:    <yyyymmdd>T<hhmmss>Z
//!   or, presigned, in the query string: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
//!   X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature
//!
//! canonical request = method \n canonical URI \n canonical query \n canonical headers \n
//!                     signed headers \n hex(sha256(payload))
//! string to sign    = AWS4-HMAC-SHA256 \n X-Amz-Date \n scope \n hex(sha256(canonical request))
//! signing key       = HMAC("AWS4" + secret, date) -> region -> service -> "aws4_request"
//! signature         = hex(HMAC(signing key, string to sign))
//! ```
//!
//! The canonical URI is the path as received, dot segments removed, URI-encoded once more
//! (every service but S3 signs the encoded path encoded again). The payload hash is the body's,
//! unless `x-amz-content-sha256` says `UNSIGNED-PAYLOAD`.
//!
//! Deviations: the `Date` header is not accepted in place of `X-Amz-Date` (every SDK sends the
//! latter); the credential's region and service are not checked, so a client configured for
//! any region reaches us; session tokens are only signed headers, not checked.

mod canonical;
mod date;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use canonical::{canonical_request, decode_hex, hex, percent_decode, query_pairs};
pub use date::format_amz_date;
use date::parse_amz_date;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last part of every credential scope.
const TERMINATOR: &str = "aws4_request";
/// AWS's rule: a request signed more than 15 minutes before or after the server's clock is
/// refused, which bounds how long a captured request can be replayed.
pub const CLOCK_SKEW_MAX_SECS: u64 = 15 * 60;
/// The longest `X-Amz-Expires` AWS accepts on a presigned request: seven days.
const PRESIGNED_EXPIRES_MAX_SECS: u64 = 7 * 24 * 60 * 60;

type HmacSha256 = Hmac<Sha256>;

/// A request as the signature sees it: everything but the body.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header names in any case; a repeated header appears once per value.
    pub headers: &'a [(&'a str, &'a str)],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Why a request's signature was not accepted. The texts are AWS's where AWS has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Request is missing Authentication Token")]
    Missing,
    /// The authentication is there but malformed or incomplete.
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    )]
    Mismatch,
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '{scope}' != '{date}', from '{amz_date}'."
    )]
    ScopeDate {
        scope: String,
        date: String,
        amz_date: String,
    },
    /// Signed too long ago. `window` is AWS's `15 min.`, or the presigned `X-Amz-Expires`.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {window}.)")]
    Expired {
        signed: String,
        earliest: String,
        now: String,
        window: String,
    },
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 15 min.)")]
    NotYetCurrent {
        signed: String,
        latest: String,
        now: String,
    },
}

/// Where the signature travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Header,
    /// Presigned: valid for `expires_secs` after `X-Amz-Date`.
    Query {
        expires_secs: u64,
    },
}

/// A request's parsed (not yet verified) authentication.
#[derive(Debug, Clone)]
pub struct Authorization {
    access_key_id: String,
    /// `yyyymmdd/region/service/aws4_request`.
    scope: String,
    scope_date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    signed_at_secs: u64,
    placement: Placement,
}

impl Authorization {
    /// Reads the request's authentication: the `Authorization` header, else presigned query
    /// parameters. Checks its form only.
    pub fn parse(request: &Request) -> Result<Authorization, SignatureError> {
        if let Some(header) = request.header("authorization") {
            return parse_header(header, request);
        }
        let presigned = query_pairs(request.query).any(|(name, _)| name == b"X-Amz-Algorithm");
        if presigned {
            return parse_presigned(request);
        }
        Err(SignatureError::Missing)
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Refuses a request signed too far from `now_secs` (Unix seconds), or a presigned one
    /// past its expiry.
    pub fn check_time(&self, now_secs: u64) -> Result<(), SignatureError> {
        let signed = self.signed_at_secs;
        if signed > now_secs.saturating_add(CLOCK_SKEW_MAX_SECS) {
            return Err(SignatureError::NotYetCurrent {
                signed: self.amz_date.clone(),
                latest: format_amz_date(now_secs + CLOCK_SKEW_MAX_SECS),
                now: format_amz_date(now_secs),
            });
        }
        let (window_secs, window) = match self.placement {
            Placement::Header => (CLOCK_SKEW_MAX_SECS, "15 min".to_owned()),
            Placement::Query { expires_secs } => (expires_secs, format!("{expires_secs} sec")),
        };
        if signed.saturating_add(window_secs) < now_secs {
            return Err(SignatureError::Expired {
                signed: self.amz_date.clone(),
                earliest: format_amz_date(now_secs - window_secs),
                now: format_amz_date(now_secs),
                window,
            });
        }
        Ok(())
    }

    /// Recomputes the signature with `secret_access_key` and compares it in constant time.
    pub fn verify(
        &self,
        request: &Request,
        body: &[u8],
        secret_access_key: &str,
    ) -> Result<(), SignatureError> {
        let presigned = matches!(self.placement, Placement::Query { .. });
        let canonical = canonical_request(request, body, &self.signed_headers, presigned);
        let to_sign = string_to_sign(&self.amz_date, &self.scope, &canonical);
        let key = signing_key(
            secret_access_key,
            &self.scope_date,
            &self.region,
            &self.service,
        );
        let provided = decode_hex(&self.signature).ok_or(SignatureError::Mismatch)?;
        let mut mac = new_mac(&key);
        mac.update(to_sign.as_bytes());
        mac.verify_slice(&provided)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// Parses, checks the clock and verifies in one step; `secret_for` looks a secret key up by
/// access key id. Returns the access key id the request was signed with.
/// A name as one URL path segment: everything outside `A-Za-z0-9-_.~` percent-encoded, `/`
/// included, the way AWS encodes URIs. Queue URLs name their queue so.
pub fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    canonical::uri_encode(name.as_bytes(), true, &mut out);
    out
}

/// The inverse of [`encode_segment`]; a stray `%` stays as it is.
pub fn decode_segment(segment: &str) -> String {
    String::from_utf8_lossy(&percent_decode(segment.as_bytes())).into_owned()
}

pub fn verify<'s>(
    request: &Request,
    body: &[u8],
    now_secs: u64,
    secret_for: impl FnOnce(&str) -> Option<&'s str>,
) -> Result<String, SignatureError> {
    let authorization = Authorization::parse(request)?;
    let secret =
        secret_for(&authorization.access_key_id).ok_or(SignatureError::UnknownAccessKey)?;
    authorization.check_time(now_secs)?;
    authorization.verify(request, body, secret)?;
    Ok(authorization.access_key_id)
}

/// What a client signs with.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The `Authorization` header value for `request`, signing every header it has (which must
/// include `host` and `x-amz-date: amz_date`), as an SDK does.
pub fn sign(request: &Request, body: &[u8], credentials: &Credentials, amz_date: &str) -> String {
    let mut names: Vec<String> = request
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!(
        "{date}/{}/{}/{TERMINATOR}",
        credentials.region, credentials.service
    );
    let canonical = canonical_request(request, body, &names, false);
    let to_sign = string_to_sign(amz_date, &scope, &canonical);
    let key = signing_key(
        credentials.secret_access_key,
        date,
        credentials.region,
        credentials.service,
    );
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        credentials.access_key_id,
        names.join(";")
    )
}

fn parse_header(header: &str, request: &Request) -> Result<Authorization, SignatureError> {
    let (algorithm, fields) = header.split_once(' ').unwrap_or((header, ""));
    if algorithm != ALGORITHM {
        return Err(SignatureError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }
    let field = |name: &str| {
        fields
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    let (credential, signed_headers, signature) = (
        field("Credential"),
        field("SignedHeaders"),
        field("Signature"),
    );
    let missing: Vec<String> = [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ]
    .iter()
    .filter(|(_, value)| value.is_none())
    .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
    .collect();
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(SignatureError::Incomplete(missing.join(" ")));
    };
    let amz_date = request.header("x-amz-date").ok_or_else(|| {
        SignatureError::Incomplete(
            "Authorization header requires existence of a 'X-Amz-Date' header.".to_owned(),
        )
    })?;
    let parts = Parts {
        credential: &credential,
        signed_headers: &signed_headers,
        signature: &signature,
        amz_date,
    };
    parts.into_authorization(Placement::Header)
}

fn parse_presigned(request: &Request) -> Result<Authorization, SignatureError> {
    let value = |name: &str| {
        query_pairs(request.query)
            .find(|(key, _)| *key == name.as_bytes())
            .map(|(_, value)| String::from_utf8_lossy(&percent_decode(value)).into_owned())
    };
    let algorithm = value("X-Amz-Algorithm").unwrap_or_default();
    if algorithm != ALGORITHM {
        return Err(SignatureError::Incomplete(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}', not '{algorithm}'."
        )));
    }
    let (Some(credential), Some(amz_date), Some(expires), Some(signed_headers), Some(signature)) = (
        value("X-Amz-Credential"),
        value("X-Amz-Date"),
        value("X-Amz-Expires"),
        value("X-Amz-SignedHeaders"),
        value("X-Amz-Signature"),
    ) else {
        return Err(SignatureError::Incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
             'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. \
             Re-examine the query-string parameters."
                .to_owned(),
        ));
    };
    let expires_secs = expires
        .parse::<u64>()
        .ok()
        .filter(|secs| *secs <= PRESIGNED_EXPIRES_MAX_SECS)
        .ok_or_else(|| {
            SignatureError::Incomplete(format!(
                "X-Amz-Expires must be a number of seconds of at most \
                 {PRESIGNED_EXPIRES_MAX_SECS}, not '{expires}'."
            ))
        })?;
    let parts = Parts {
        credential: &credential,
        signed_headers: &signed_headers,
        signature: &signature,
        amz_date: &amz_date,
    };
    parts.into_authorization(Placement::Query { expires_secs })
}

/// The pieces both placements carry, as text.
struct Parts<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
    amz_date: &'a str,
}

impl Parts<'_> {
    fn into_authorization(self, placement: Placement) -> Result<Authorization, SignatureError> {
        // The key id comes first and cannot contain '/'; the scope is the last four parts.
        let mut pieces = self.credential.rsplitn(5, '/');
        let (Some(terminator), Some(service), Some(region), Some(scope_date), Some(key_id)) = (
            pieces.next(),
            pieces.next(),
            pieces.next(),
            pieces.next(),
            pieces.next(),
        ) else {
            return Err(SignatureError::Incomplete(format!(
                "Credential '{}' is not of the form <key id>/<date>/<region>/<service>/{TERMINATOR}.",
                self.credential
            )));
        };
        if terminator != TERMINATOR {
            return Err(SignatureError::Incomplete(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not \
                 '{terminator}'."
            )));
        }
        let signed_at_secs = parse_amz_date(self.amz_date).ok_or_else(|| {
            SignatureError::Incomplete(format!(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not \
                 '{}'.",
                self.amz_date
            ))
        })?;
        let date = self.amz_date.get(..8).unwrap_or_default();
        if scope_date != date {
            return Err(SignatureError::ScopeDate {
                scope: scope_date.to_owned(),
                date: date.to_owned(),
                amz_date: self.amz_date.to_owned(),
            });
        }
        let signed_headers: Vec<String> = self
            .signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        // Without the host in the signature a request could be replayed to another endpoint.
        if !signed_headers.iter().any(|name| name == "host") {
            return Err(SignatureError::Incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned(),
            ));
        }
        Ok(Authorization {
            access_key_id: key_id.to_owned(),
            scope: format!("{scope_date}/{region}/{service}/{TERMINATOR}"),
            scope_date: scope_date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature: self.signature.to_owned(),
            amz_date: self.amz_date.to_owned(),
            signed_at_secs,
            placement,
        })
    }
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let digest = hex(&Sha256::digest(canonical_request.as_bytes()));
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{digest}")
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let key = hmac(&key, region.as_bytes());
    let key = hmac(&key, service.as_bytes());
    hmac(&key, TERMINATOR.as_bytes())
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of every length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests;
