//! `/api/policies`: list, show, set and clear policies, in RabbitMQ's paths and shapes.
//! Listings follow the vhosts a user may see; setting and clearing take an administrator, or
//! a `policymaker` with permissions in the vhost, as in RabbitMQ.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::http::{self, ApiError, HttpResponse};
use super::{ApiRequest, Management, auth, declared};
use crate::core::policy::PolicyRecord;

pub fn route(
    management: &Management,
    request: &ApiRequest,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    let columns = request.query.get("columns");
    let listing = |vhost: Option<&str>| -> Result<HttpResponse, ApiError> {
        let views = management.views(vhost, &request.user)?;
        let policies: Vec<PolicyRecord> = views.iter().flat_map(|v| v.policies()).collect();
        Ok(http::ok(&http::select_columns(json!(policies), columns)))
    };
    match (&request.method, path) {
        (&Method::GET, []) => listing(None),
        (&Method::GET, [vhost]) => listing(Some(vhost)),
        (&Method::GET, [vhost, name]) => {
            let view = management.views(Some(vhost), &request.user)?;
            let found = view
                .iter()
                .flat_map(|v| v.policies())
                .find(|p| p.name == *name);
            Ok(http::ok(&json!(found.ok_or(ApiError::NotFound)?)))
        }
        (&Method::PUT, [vhost, name]) => put(management, request, vhost, name),
        (&Method::DELETE, [vhost, name]) => {
            may_change(management, request, vhost)?;
            match management.core.clear_policy(vhost, name) {
                true => Ok(http::empty(StatusCode::NO_CONTENT)),
                false => Err(ApiError::NotFound),
            }
        }
        (_, [] | [_] | [_, _]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

/// `{"pattern": ..., "definition": {...}, "priority": 0, "apply-to": "queues"}`.
fn put(
    management: &Management,
    request: &ApiRequest,
    vhost: &str,
    name: &str,
) -> Result<HttpResponse, ApiError> {
    may_change(management, request, vhost)?;
    let body = http::object(&request.body)?;
    let pattern = http::field_str(&body, "pattern")?
        .ok_or_else(|| ApiError::bad_request("pattern is required"))?;
    let definition = match body.get("definition") {
        Some(Value::Object(definition)) => definition.clone(),
        Some(_) => return Err(ApiError::bad_request("definition must be an object")),
        None => return Err(ApiError::bad_request("definition is required")),
    };
    let record = PolicyRecord {
        vhost: vhost.to_owned(),
        name: name.to_owned(),
        pattern: pattern.to_owned(),
        apply_to: http::field_str(&body, "apply-to")?
            .unwrap_or("all")
            .to_owned(),
        definition,
        priority: priority(body.get("priority"))?,
    };
    let created = management
        .core
        .put_policy(record)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(declared(created))
}

/// A number, or a string holding one (rabbitmqadmin sends `priority=1` as a string).
fn priority(value: Option<&Value>) -> Result<i64, ApiError> {
    match value {
        None => Some(0),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| ApiError::bad_request("priority must be an integer"))
}

/// 404 for a vhost that does not exist; 401 unless the user is an administrator, or a
/// policymaker with permissions in the vhost.
fn may_change(management: &Management, request: &ApiRequest, vhost: &str) -> Result<(), ApiError> {
    management
        .core
        .vhost_view(vhost)
        .ok_or(ApiError::NotFound)?;
    let user = &request.user;
    let allowed = auth::is_administrator(management, user)
        || (auth::has_tag(management, user, auth::POLICYMAKER)
            && management.core.access().grant(&user.name, vhost).is_ok());
    match allowed {
        true => Ok(()),
        false => Err(ApiError::AccessRefused(format!(
            "user '{}' may not change policies in vhost '{vhost}'",
            user.name
        ))),
    }
}
