//! Users, permissions, topic permissions, vhosts and definitions over the API, in RabbitMQ's
//! paths and shapes. Only administrators may use them.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::http::{self, ApiError, HttpResponse};
use super::{ApiRequest, Management, auth, declared};
use crate::core::VhostRecord;
use crate::core::access::{PermissionRecord, TopicPermissionRecord, UserRecord, password};
use crate::core::definitions::{Definitions, UserDefinition};
use crate::server::registry::ConnectionInfo;

pub async fn route(
    management: &Management,
    request: &ApiRequest,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    if !auth::is_administrator(management, &request.user) {
        return Err(ApiError::AccessRefused("Not administrator user".to_owned()));
    }
    let access = management.core.access();
    let list = |value: Value| Ok(http::ok(&value));
    match (&request.method, path) {
        (&Method::GET, ["users"]) => list(json!(
            access.users().iter().map(user_json).collect::<Vec<_>>()
        )),
        (&Method::GET, ["users", name]) => {
            list(user_json(&access.user(name).ok_or(ApiError::NotFound)?))
        }
        (&Method::PUT, ["users", name]) => put_user(management, name, &request.body),
        (&Method::DELETE, ["users", name]) => {
            let existed = access.delete_user(name);
            // A deleted user's open connections go too, as in RabbitMQ.
            let reason = format!("user '{name}' was deleted");
            let from = |c: &ConnectionInfo| c.report.user().as_deref() == Some(*name);
            management.registry.close_where(&reason, from);
            gone(existed)
        }
        (&Method::GET, ["users", name, "permissions"]) => {
            let mine = access.permissions().into_iter().filter(|p| p.user == *name);
            list(json!(mine.collect::<Vec<_>>()))
        }
        (&Method::GET, ["permissions"]) => list(json!(access.permissions())),
        (&Method::GET, ["permissions", vhost, user]) => {
            let found = access
                .permissions()
                .into_iter()
                .find(|p| p.vhost == *vhost && p.user == *user);
            list(json!(found.ok_or(ApiError::NotFound)?))
        }
        (&Method::PUT, ["permissions", vhost, user]) => {
            put_permission(management, vhost, user, &request.body)
        }
        (&Method::DELETE, ["permissions", vhost, user]) => {
            gone(access.clear_permission(vhost, user))
        }
        (&Method::GET, ["topic-permissions"]) => list(json!(access.topic_permissions())),
        (&Method::GET, ["topic-permissions", vhost, user]) => {
            let mine = access
                .topic_permissions()
                .into_iter()
                .filter(|p| p.vhost == *vhost && p.user == *user);
            list(json!(mine.collect::<Vec<_>>()))
        }
        (&Method::PUT, ["topic-permissions", vhost, user]) => {
            put_topic_permission(management, vhost, user, &request.body)
        }
        (&Method::DELETE, ["topic-permissions", vhost, user]) => {
            gone(access.clear_topic_permission(vhost, user, None))
        }
        (&Method::PUT, ["vhosts", name]) => put_vhost(management, name, &request.body),
        (&Method::DELETE, ["vhosts", name]) => {
            let existed = management.core.delete_vhost(name).await;
            let reason = format!("vhost '{name}' is deleted");
            let inside = |c: &ConnectionInfo| c.report.vhost().as_deref() == Some(*name);
            management.registry.close_where(&reason, inside);
            gone(existed)
        }
        (_, ["definitions", rest @ ..]) => definitions(management, request, rest),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// 204 if the thing was there to delete, else 404.
fn gone(existed: bool) -> Result<HttpResponse, ApiError> {
    match existed {
        true => Ok(http::empty(StatusCode::NO_CONTENT)),
        false => Err(ApiError::NotFound),
    }
}

fn user_json(user: &UserRecord) -> Value {
    json!({
        "name": user.name,
        "password_hash": user.password_hash,
        "hashing_algorithm": password::HASHING_ALGORITHM,
        "tags": user.tags,
        "limits": {},
    })
}

/// `{"password": ...}` or `{"password_hash": ...}`, and `tags` as a list or RabbitMQ's
/// comma-separated string. Without either password field an existing user keeps theirs.
fn put_user(management: &Management, name: &str, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let mut object = http::object(body)?;
    object.insert("name".to_owned(), Value::String(name.to_owned()));
    object.entry("tags").or_insert_with(|| json!([]));
    let mut definition: UserDefinition = serde_json::from_value(Value::Object(object))
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let access = management.core.access();
    if definition.password.is_none() && definition.password_hash.is_none() {
        definition.password_hash = access.user(name).map(|user| user.password_hash);
    }
    let record = crate::core::definitions::user_record(definition)?;
    Ok(declared(access.put_user(record)))
}

fn put_permission(
    management: &Management,
    vhost: &str,
    user: &str,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let object = http::object(body)?;
    let pattern = |name: &str| http::field_str(&object, name).map(|p| p.unwrap_or("").to_owned());
    let permission = PermissionRecord {
        user: user.to_owned(),
        vhost: existing_vhost(management, vhost)?,
        configure: pattern("configure")?,
        write: pattern("write")?,
        read: pattern("read")?,
    };
    let access = management.core.access();
    let created = !access
        .permissions()
        .iter()
        .any(|p| p.vhost == vhost && p.user == user);
    access.set_permission(permission)?;
    Ok(declared(created))
}

fn put_topic_permission(
    management: &Management,
    vhost: &str,
    user: &str,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let object = http::object(body)?;
    let field = |name: &str| http::field_str(&object, name).map(|p| p.unwrap_or("").to_owned());
    let exchange = field("exchange")?;
    if exchange.is_empty() {
        return Err(ApiError::bad_request("exchange is required"));
    }
    let topic = TopicPermissionRecord {
        user: user.to_owned(),
        vhost: existing_vhost(management, vhost)?,
        exchange,
        write: field("write")?,
        read: field("read")?,
    };
    management.core.access().set_topic_permission(topic)?;
    Ok(declared(true))
}

fn existing_vhost(management: &Management, name: &str) -> Result<String, ApiError> {
    match management.core.vhost_view(name) {
        Some(_) => Ok(name.to_owned()),
        None => Err(ApiError::bad_request(format!(
            "vhost '{name}' does not exist"
        ))),
    }
}

fn put_vhost(management: &Management, name: &str, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let object = http::object(body)?;
    let description = http::field_str(&object, "description")?
        .unwrap_or("")
        .to_owned();
    let tags = match object.get("tags") {
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(tags)) => tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let record = VhostRecord {
        name: name.to_owned(),
        description,
        tags,
    };
    Ok(declared(management.core.put_vhost(record)))
}

/// `/api/definitions[/{vhost}]`: export (GET) and import (POST).
fn definitions(
    management: &Management,
    request: &ApiRequest,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    let vhost = match path {
        [] => None,
        [vhost] => Some(existing_vhost(management, vhost).map_err(|_| ApiError::NotFound)?),
        _ => return Err(ApiError::NotFound),
    };
    match request.method {
        Method::GET => Ok(http::ok(&export(management, vhost.as_deref()))),
        Method::POST => import(management, vhost.as_deref(), &request.body),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// Everything, or (RabbitMQ's per-vhost export) one vhost's topology and policies.
fn export(management: &Management, vhost: Option<&str>) -> Value {
    let mut definitions = management.core.export();
    if let Some(vhost) = vhost {
        definitions = Definitions {
            policies: definitions.policies,
            queues: definitions.queues,
            exchanges: definitions.exchanges,
            bindings: definitions.bindings,
            ..Definitions::default()
        };
        definitions.policies.retain(|p| p.vhost == vhost);
        definitions.queues.retain(|q| q.vhost == vhost);
        definitions.exchanges.retain(|x| x.vhost == vhost);
        definitions.bindings.retain(|b| b.vhost == vhost);
    }
    definitions.rabbit_version = Some(super::RABBITMQ_API_VERSION.to_owned());
    let (product, version) = mqbridge_broker_api::Broker::product(&*management.broker);
    definitions.product_name = Some(product.to_owned());
    definitions.product_version = Some(version.to_owned());
    serde_json::to_value(definitions).unwrap_or(Value::Null)
}

/// Applies a definitions document. Into one vhost, only its topology and policies count, and
/// they go to that vhost whatever vhost they name (so one vhost's export loads into another).
fn import(
    management: &Management,
    vhost: Option<&str>,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let mut definitions: Definitions = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("invalid definitions: {error}")))?;
    if let Some(vhost) = vhost {
        definitions.users.clear();
        definitions.vhosts.clear();
        definitions.permissions.clear();
        definitions.topic_permissions.clear();
        let into = |name: &mut String| vhost.clone_into(name);
        definitions
            .policies
            .iter_mut()
            .for_each(|p| into(&mut p.vhost));
        definitions
            .queues
            .iter_mut()
            .for_each(|q| into(&mut q.vhost));
        definitions
            .exchanges
            .iter_mut()
            .for_each(|x| into(&mut x.vhost));
        definitions
            .bindings
            .iter_mut()
            .for_each(|b| into(&mut b.vhost));
    }
    management.core.import(definitions)?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}
