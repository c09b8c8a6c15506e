//! Who a management request acts as: HTTP basic credentials checked against the broker's
//! users (with the peer's address, so a loopback-only user stays loopback-only), then the
//! user's right to use the management API: one of RabbitMQ's management tags
//! (administrator, management, monitoring, policymaker). Users, permissions, vhosts and
//! definitions need administrator; policies administrator or policymaker; the rest is open to any management user, and changes go
//! through the vhost opened as that user, so they are held to the user's permissions.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use mqbridge_broker_api::{Broker, User};

use super::Management;
use super::http::ApiError;
use crate::core::Core;

pub use crate::core::access::ADMINISTRATOR;

/// Checks the request's `Authorization: Basic` credentials.
pub fn authenticate(
    core: &Core,
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
    if !is_management_user(core, &user) {
        return Err(ApiError::NotAuthorized("Not management user".to_owned()));
    }
    Ok(user)
}

/// The tag that lets a user set policies in the vhosts they have permissions in.
pub const POLICYMAKER: &str = "policymaker";

/// Tags that open the management API, RabbitMQ's.
const MANAGEMENT_TAGS: &[&str] = &[ADMINISTRATOR, "management", "monitoring", POLICYMAKER];

fn is_management_user(core: &Core, user: &User) -> bool {
    core.access().user(&user.name).is_some_and(|record| {
        record
            .tags
            .iter()
            .any(|tag| MANAGEMENT_TAGS.contains(&tag.as_str()))
    })
}

/// Whether the user (as stored now) has `tag`.
pub fn has_tag(management: &Management, user: &User, tag: &str) -> bool {
    management
        .core
        .access()
        .user(&user.name)
        .is_some_and(|record| record.tags.iter().any(|t| t == tag))
}

/// Administrators and monitoring users see every vhost in listings; others only their own.
pub fn sees_every_vhost(management: &Management, user: &User) -> bool {
    has_tag(management, user, ADMINISTRATOR) || has_tag(management, user, "monitoring")
}

/// Users, permissions, vhosts and definitions are the administrators'.
pub fn is_administrator(management: &Management, user: &User) -> bool {
    has_tag(management, user, ADMINISTRATOR)
}
