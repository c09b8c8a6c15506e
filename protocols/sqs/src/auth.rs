//! Who a request acts as. Two modes, chosen by whether access keys are configured:
//!
//! - Dev mode (no keys, the default): any credentials or none are accepted, from loopback peers
//!   only, and the request acts as the listener's default user.
//! - Keys: every request, from any peer, must be signed (SigV4, [`crate::sigv4`]) with a
//!   configured key, and acts as the broker user that key maps to. A key of a loopback-only
//!   user is refused from other peers, as that user's password would be.
//!
//! Checking happens in two steps so that a request with no credentials, an unknown key or a
//! stale date is refused before its body is read; the signature itself covers the body.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::{ErrorKind, SqsError};
use crate::sigv4::{Authorization, Request, SignatureError};

/// One configured access key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The broker user requests signed with this key act as.
    pub user: String,
    /// The user may connect from loopback peers only (the broker's `loopback_users`).
    pub loopback_only: bool,
}

/// The secret stays out of logs.
impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("user", &self.user)
            .field("loopback_only", &self.loopback_only)
            .finish_non_exhaustive()
    }
}

/// The listener's authentication policy.
#[derive(Debug)]
pub(crate) struct Authenticator {
    /// By access key id; empty in dev mode.
    keys: HashMap<String, AccessKey>,
    default_user: String,
}

/// A request that passed the checks that need no body.
#[derive(Debug)]
pub(crate) enum Admission<'a> {
    /// Dev mode: acts as the default user, nothing left to check.
    Anyone(&'a str),
    /// Keys mode: the signature is still to be checked against the body.
    Signed {
        key: &'a AccessKey,
        authorization: Box<Authorization>,
    },
}

impl Authenticator {
    pub(crate) fn new(keys: &[AccessKey], default_user: &str) -> Self {
        Authenticator {
            keys: keys
                .iter()
                .map(|key| (key.access_key_id.clone(), key.clone()))
                .collect(),
            default_user: default_user.to_owned(),
        }
    }

    /// Checks the peer, the presence and form of the credentials, the key and the clock.
    /// `now_secs` is Unix seconds.
    pub(crate) fn admit(
        &self,
        peer: IpAddr,
        request: &Request,
        now_secs: u64,
    ) -> Result<Admission<'_>, SqsError> {
        let loopback = peer.to_canonical().is_loopback();
        if self.keys.is_empty() {
            if !loopback {
                return Err(SqsError::new(
                    ErrorKind::AccessDenied,
                    "Only loopback clients are accepted until SigV4 keys are configured.",
                ));
            }
            return Ok(Admission::Anyone(&self.default_user));
        }
        let authorization = Authorization::parse(request)?;
        let key = self
            .keys
            .get(authorization.access_key_id())
            .ok_or(SignatureError::UnknownAccessKey)?;
        if key.loopback_only && !loopback {
            return Err(SqsError::new(
                ErrorKind::AccessDenied,
                format!("User '{}' can only connect via localhost.", key.user),
            ));
        }
        authorization.check_time(now_secs)?;
        Ok(Admission::Signed {
            key,
            authorization: Box::new(authorization),
        })
    }
}

impl Admission<'_> {
    /// Verifies the signature over the whole request; returns the user the request acts as.
    pub(crate) fn verify(self, request: &Request, body: &[u8]) -> Result<Caller, SqsError> {
        match self {
            Admission::Anyone(user) => Ok(Caller {
                user: user.to_owned(),
                sender: None,
            }),
            Admission::Signed { key, authorization } => {
                authorization.verify(request, body, &key.secret_access_key)?;
                Ok(Caller {
                    user: key.user.clone(),
                    sender: Some(key.user.clone()),
                })
            }
        }
    }
}

/// Who a request acts as, once verified.
#[derive(Debug)]
pub(crate) struct Caller {
    /// The broker user whose rights the request uses.
    pub user: String,
    /// Who its messages say sent them (`user_id`, SenderId): the key's user; none in dev mode,
    /// where any key will do.
    pub sender: Option<String>,
}

impl From<SignatureError> for SqsError {
    fn from(error: SignatureError) -> Self {
        let kind = match error {
            SignatureError::Missing => ErrorKind::MissingAuthenticationToken,
            SignatureError::Incomplete(_) => ErrorKind::IncompleteSignature,
            SignatureError::UnknownAccessKey => ErrorKind::InvalidClientTokenId,
            // AWS answers a stale or future date with SignatureDoesNotMatch as well.
            _ => ErrorKind::SignatureDoesNotMatch,
        };
        SqsError::new(kind, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::{Credentials, format_amz_date, sign};

    const NOW: u64 = 1_700_000_000;
    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn key(user: &str, loopback_only: bool) -> AccessKey {
        AccessKey {
            access_key_id: "AKID".to_owned(),
            secret_access_key: "secret".to_owned(),
            user: user.to_owned(),
            loopback_only,
        }
    }

    /// Admits and verifies a request signed with `secret`.
    fn check(
        authenticator: &Authenticator,
        peer: IpAddr,
        secret: &str,
    ) -> Result<String, SqsError> {
        let date = format_amz_date(NOW);
        let headers = [("host", "localhost:9324"), ("x-amz-date", date.as_str())];
        let unsigned = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
        };
        let credentials = Credentials {
            access_key_id: "AKID",
            secret_access_key: secret,
            region: "us-east-1",
            service: "sqs",
        };
        let authorization = sign(&unsigned, b"{}", &credentials, &date);
        let mut signed = headers.to_vec();
        signed.push(("authorization", authorization.as_str()));
        let request = Request {
            headers: &signed,
            ..unsigned
        };
        authenticator
            .admit(peer, &request, NOW)?
            .verify(&request, b"{}")
            .map(|caller| caller.user)
    }

    #[test]
    fn dev_mode_accepts_anything_from_loopback_only() {
        let dev = Authenticator::new(&[], "guest");
        assert_eq!(check(&dev, LOOPBACK, "anything").as_deref(), Ok("guest"));
        let remote = check(&dev, REMOTE, "anything").expect_err("remote");
        assert_eq!(remote.kind, ErrorKind::AccessDenied);
    }

    #[test]
    fn with_keys_the_signature_decides_and_names_the_user() {
        let keys = Authenticator::new(&[key("app", false)], "guest");
        assert_eq!(check(&keys, REMOTE, "secret").as_deref(), Ok("app"));
        let wrong = check(&keys, LOOPBACK, "other").expect_err("wrong secret");
        assert_eq!(wrong.kind, ErrorKind::SignatureDoesNotMatch);
        let guest = Authenticator::new(&[key("guest", true)], "guest");
        assert_eq!(check(&guest, LOOPBACK, "secret").as_deref(), Ok("guest"));
        let remote = check(&guest, REMOTE, "secret").expect_err("loopback only");
        assert_eq!(remote.kind, ErrorKind::AccessDenied);
    }

    #[test]
    fn signature_errors_map_to_awss_codes() {
        let code = |error: SignatureError| SqsError::from(error).kind.query_code();
        assert_eq!(code(SignatureError::Missing), "MissingAuthenticationToken");
        assert_eq!(
            code(SignatureError::UnknownAccessKey),
            "InvalidClientTokenId"
        );
        assert_eq!(code(SignatureError::Mismatch), "SignatureDoesNotMatch");
        assert_eq!(
            code(SignatureError::Incomplete(String::new())),
            "IncompleteSignature"
        );
        assert_eq!(ErrorKind::InvalidClientTokenId.status(), 403);
        assert_eq!(ErrorKind::IncompleteSignature.status(), 400);
    }
}
