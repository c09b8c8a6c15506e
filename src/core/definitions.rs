//! Definitions in RabbitMQ's JSON format (`rabbitmqctl export_definitions`, the management
//! API's `/api/definitions`): users, vhosts, permissions, topic permissions, exchanges, queues
//! and bindings. Loaded at start-up from `definitions_file` and imported over the management
//! API, so that a RabbitMQ export applies here and ours applies there.
//!
//! Policies are imported and exported; parameters (federation, shovels, limits) are read and
//! ignored with a warning.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mqbridge_broker_api::{
    BindingSpec, BrokerError, ConnectionId, Destination, ExchangeKind, ExchangeSpec, HeaderValue,
    Headers, QueueSpec, User,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use super::access::{PermissionRecord, TopicPermissionRecord, UserRecord, password};
use super::policy::PolicyRecord;
use super::{Core, VhostRecord};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Definitions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    pub users: Vec<UserDefinition>,
    pub vhosts: Vec<VhostDefinition>,
    pub permissions: Vec<PermissionRecord>,
    pub topic_permissions: Vec<TopicPermissionRecord>,
    pub parameters: Vec<Value>,
    pub global_parameters: Vec<Value>,
    pub policies: Vec<PolicyRecord>,
    pub queues: Vec<QueueDefinition>,
    pub exchanges: Vec<ExchangeDefinition>,
    pub bindings: Vec<BindingDefinition>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// A plain password instead of a hash (accepted on import, never exported).
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VhostDefinition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QueueDefinition {
    pub name: String,
    /// Absent in RabbitMQ's per-vhost exports; filled by the importer.
    #[serde(default)]
    pub vhost: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExchangeDefinition {
    pub name: String,
    /// Absent in RabbitMQ's per-vhost exports; filled by the importer.
    #[serde(default)]
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BindingDefinition {
    pub source: String,
    #[serde(default)]
    pub vhost: String,
    pub destination: String,
    pub destination_type: String,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

fn yes() -> bool {
    true
}

/// Tags as a list (RabbitMQ 3.9+) or one comma-separated string (older exports).
fn tags<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Tags::deserialize(deserializer)? {
        Tags::List(list) => list,
        Tags::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A JSON value as a typed value: integers become 64-bit integers (the core compares
/// arguments by value, so an `x-max-length` declared over AMQP as a 32-bit integer is the same
/// argument), other numbers floats, objects tables.
pub fn json_to_value(value: &Value) -> HeaderValue {
    match value {
        Value::Null => HeaderValue::Void,
        Value::Bool(b) => HeaderValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(integer) => HeaderValue::I64(integer),
            None => HeaderValue::F64(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => HeaderValue::String(s.clone()),
        Value::Array(items) => HeaderValue::Array(items.iter().map(json_to_value).collect()),
        Value::Object(map) => HeaderValue::Table(headers(map)),
    }
}

pub fn headers(map: &Map<String, Value>) -> Headers {
    map.iter()
        .map(|(name, value)| (name.clone(), json_to_value(value)))
        .collect()
}

/// A typed value as JSON, as RabbitMQ's management API writes it: numbers as numbers, bytes
/// as a string when they are UTF-8 and else base64, tables as objects, void as null.
pub fn value_to_json(value: &HeaderValue) -> Value {
    let float = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
    match value {
        HeaderValue::Bool(b) => Value::Bool(*b),
        HeaderValue::F32(f) => float(f64::from(*f)),
        HeaderValue::F64(f) => float(*f),
        HeaderValue::Decimal { scale, value } => {
            float(f64::from(*value) / 10f64.powi(i32::from(*scale)))
        }
        HeaderValue::String(s) => Value::String(s.clone()),
        HeaderValue::Bytes(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => Value::String(STANDARD.encode(bytes)),
        },
        HeaderValue::Array(items) => Value::Array(items.iter().map(value_to_json).collect()),
        HeaderValue::Table(table) => Value::Object(json_object(table)),
        HeaderValue::Void => Value::Null,
        integer => integer
            .as_i64()
            .map_or(Value::Null, |n| Value::Number(n.into())),
    }
}

pub fn json_object(headers: &Headers) -> Map<String, Value> {
    headers
        .iter()
        .map(|(name, value)| (name.to_owned(), value_to_json(value)))
        .collect()
}

impl Core {
    /// Everything a definitions document holds: users, vhosts, permissions, and the durable,
    /// non-exclusive topology (the broker's own `amq.` exchanges left out, as RabbitMQ does).
    pub fn export(&self) -> Definitions {
        let mut definitions = self.export_access();
        for view in self.vhost_views() {
            let vhost = view.name().to_owned();
            definitions.policies.extend(view.policies());
            for queue in view.queues() {
                let spec = queue.spec;
                if spec.durable && !spec.exclusive {
                    definitions.queues.push(QueueDefinition {
                        name: spec.name,
                        vhost: vhost.clone(),
                        durable: true,
                        auto_delete: spec.auto_delete,
                        arguments: json_object(&spec.arguments),
                    });
                }
            }
            for x in view.exchanges() {
                if x.durable && !x.name.is_empty() && !x.name.starts_with("amq.") {
                    definitions.exchanges.push(ExchangeDefinition {
                        name: x.name,
                        vhost: vhost.clone(),
                        kind: x.kind.as_str().to_owned(),
                        durable: true,
                        auto_delete: x.auto_delete,
                        internal: x.internal,
                        arguments: json_object(&x.arguments),
                    });
                }
            }
            // A binding is kept with what it connects: not when its queue is transient.
            let kept = |b: &BindingSpec| match &b.destination {
                Destination::Queue(name) => definitions
                    .queues
                    .iter()
                    .any(|q| q.vhost == vhost && q.name == *name),
                Destination::Exchange(_) => true,
            };
            let bindings: Vec<BindingDefinition> = view
                .bindings()
                .into_iter()
                .filter(kept)
                .map(|b| binding_definition(&vhost, b))
                .collect();
            definitions.bindings.extend(bindings);
        }
        definitions
    }

    /// Users, vhosts and permissions as a definitions document.
    fn export_access(&self) -> Definitions {
        let users = self.access.users().into_iter().map(|user| UserDefinition {
            name: user.name,
            password_hash: Some(user.password_hash),
            hashing_algorithm: Some(password::HASHING_ALGORITHM.to_owned()),
            password: None,
            tags: user.tags,
        });
        let vhosts = self.vhost_records().into_iter().map(|v| VhostDefinition {
            name: v.name,
            description: v.description,
            tags: v.tags,
        });
        Definitions {
            users: users.collect(),
            vhosts: vhosts.collect(),
            permissions: self.access.permissions(),
            topic_permissions: self.access.topic_permissions(),
            ..Definitions::default()
        }
    }

    /// Applies a definitions document: vhosts, users, permissions and policies first, then
    /// exchanges, queues and bindings in that order. Stops at the first definition the broker
    /// refuses.
    pub fn import(self: &Arc<Self>, definitions: Definitions) -> Result<(), BrokerError> {
        for vhost in definitions.vhosts {
            self.put_vhost(VhostRecord {
                name: vhost.name,
                description: vhost.description,
                tags: vhost.tags,
            });
        }
        for user in definitions.users {
            self.access.put_user(user_record(user)?);
        }
        for permission in definitions.permissions {
            self.access.set_permission(permission)?;
        }
        for topic in definitions.topic_permissions {
            self.access.set_topic_permission(topic)?;
        }
        for policy in definitions.policies {
            self.put_policy(policy)?;
        }
        if !definitions.parameters.is_empty() || !definitions.global_parameters.is_empty() {
            tracing::warn!("definitions: parameters are not supported; ignored");
        }
        self.import_topology(
            definitions.exchanges,
            definitions.queues,
            definitions.bindings,
        )
    }

    fn import_topology(
        self: &Arc<Self>,
        exchanges: Vec<ExchangeDefinition>,
        queues: Vec<QueueDefinition>,
        bindings: Vec<BindingDefinition>,
    ) -> Result<(), BrokerError> {
        let system = self.system();
        let importer = User {
            name: String::new(),
        };
        let connection = ConnectionId::next();
        for x in exchanges {
            let kind = ExchangeKind::parse(&x.kind).ok_or_else(|| {
                BrokerError::PreconditionFailed(format!("unknown exchange type '{}'", x.kind))
            })?;
            let spec = ExchangeSpec {
                name: x.name,
                kind,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: headers(&x.arguments),
            };
            system
                .vhost(&x.vhost, &importer)?
                .declare_exchange(spec, false)?;
        }
        for q in queues {
            let spec = QueueSpec {
                name: q.name,
                durable: q.durable,
                exclusive: false,
                auto_delete: q.auto_delete,
                arguments: headers(&q.arguments),
            };
            system
                .vhost(&q.vhost, &importer)?
                .declare_queue(spec, false, connection)?;
        }
        for b in bindings {
            let destination = match b.destination_type.as_str() {
                "queue" => Destination::Queue(b.destination),
                "exchange" => Destination::Exchange(b.destination),
                other => {
                    return Err(BrokerError::PreconditionFailed(format!(
                        "unknown destination type '{other}'"
                    )));
                }
            };
            let spec = BindingSpec {
                source: b.source,
                destination,
                routing_key: b.routing_key,
                arguments: headers(&b.arguments),
            };
            system.vhost(&b.vhost, &importer)?.bind(spec, connection)?;
        }
        Ok(())
    }
}

fn binding_definition(vhost: &str, binding: BindingSpec) -> BindingDefinition {
    let (destination, destination_type) = match binding.destination {
        Destination::Queue(name) => (name, "queue"),
        Destination::Exchange(name) => (name, "exchange"),
    };
    BindingDefinition {
        source: binding.source,
        vhost: vhost.to_owned(),
        destination,
        destination_type: destination_type.to_owned(),
        routing_key: binding.routing_key,
        arguments: json_object(&binding.arguments),
    }
}

/// A user definition as a record: a hash of our algorithm, or a plain password to hash.
pub fn user_record(user: UserDefinition) -> Result<UserRecord, BrokerError> {
    let password_hash = match (user.password, user.password_hash) {
        (Some(plain), _) => password::hash(&plain),
        (None, Some(hash)) => {
            let algorithm = user.hashing_algorithm.as_deref();
            let ours = algorithm.is_none_or(|a| a == password::HASHING_ALGORITHM);
            if !ours || !(hash.is_empty() || password::is_valid(&hash)) {
                return Err(BrokerError::PreconditionFailed(format!(
                    "user '{}': only {} password hashes are supported",
                    user.name,
                    password::HASHING_ALGORITHM
                )));
            }
            hash
        }
        (None, None) => String::new(),
    };
    Ok(UserRecord {
        name: user.name,
        password_hash,
        tags: user.tags,
    })
}
