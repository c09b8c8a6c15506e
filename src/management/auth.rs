//! Who a management request acts as: HTTP basic credentials checked against the broker's
//! users (with the peer's address, so a loopback-only user stays loopback-only), then the
//! user's right to use the management API.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use mqbridge_broker_api::{Broker, User};

use super::http::ApiError;

/// The management tags a user holds, in RabbitMQ's words.
pub const ADMINISTRATOR: &str = "administrator";

/// Checks the request's `Authorization: Basic` credentials.
pub fn authenticate(
    broker: &dyn Broker,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<User, ApiError> {
    let refused = || ApiError::NotAuthorized("Login failed".to_owned());
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    let (scheme, encoded) = header.split_once(' ').ok_or_else(refused)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(refused());
    }
    let decoded = BASE64.decode(encoded.trim()).map_err(|_| refused())?;
    let decoded = String::from_utf8(decoded).map_err(|_| refused())?;
    // RFC 7617: the user-id cannot contain a colon; the password may.
    let (username, password) = decoded.split_once(':').ok_or_else(refused)?;
    let user = broker
        .authenticate(username, password, peer)
        .map_err(|error| {
            tracing::info!(user = username, %peer, %error, "management login refused");
            refused()
        })?;
    if tags(&user).is_empty() {
        return Err(ApiError::NotAuthorized("Not management user".to_owned()));
    }
    Ok(user)
}

/// The management tags of `user`. This is where tags are checked: until the core keeps tags
/// per user, every broker user is an administrator (the one configured user is the broker's
/// owner).
pub fn tags(_user: &User) -> Vec<&'static str> {
    vec![ADMINISTRATOR]
}
