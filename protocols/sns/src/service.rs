//! The SNS service: the state every request shares, the request path (parse, dispatch,
//! render), and the [`Neighbor`] hook through which the SQS endpoint hands SNS its requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use mqbridge_broker_api::{BoxFuture, Broker, BrokerError, ConnectionId, User, VirtualHost};
use mqbridge_sqs::{Claim, Neighbor, NeighborRequest};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{ErrorKind, SnsError};
use crate::http_client::HttpClient;
use crate::protocol::{self, Protocol, Request, TARGET_PREFIX};
use crate::registry::{SUBSCRIPTION_SCOPE, Subscription, TOPIC_SCOPE, Table, Topic};
use crate::render;
use crate::signing::Signer;

pub const ACCOUNT_ID: &str = "000000000000";
pub const REGION: &str = "us-east-1";
/// Where the signing certificate is served (the `SigningCertURL` path).
pub const CERTIFICATE_PATH: &str = "/SimpleNotificationService-mqbridge.pem";
/// The journal scope and key of the signing key and certificate.
const SIGNER_SCOPE: &str = "sns-signer";

/// How the SNS API is configured.
#[derive(Debug, Clone)]
pub struct SnsSettings {
    /// The virtual host whose exchanges and queues SNS serves (SQS's).
    pub vhost: String,
    /// The broker user that opens the vhost.
    pub user: String,
}

/// The state of the SNS API.
pub struct SnsService {
    pub(crate) vhost: Arc<dyn VirtualHost>,
    /// The broker as clients see it: the vhost opened as a user is held to their permissions.
    pub(crate) users: Arc<dyn Broker>,
    pub(crate) connection: ConnectionId,
    pub(crate) topics: Table<Topic>,
    pub(crate) subscriptions: Table<Subscription>,
    pub(crate) signer: Signer,
    pub(crate) http: HttpClient,
    /// FIFO topics' deduplication ids and sequence numbers.
    pub(crate) fifo: crate::actions::Fifo,
    /// The delivery task of each confirmed subscription, by ARN.
    deliverers: Mutex<HashMap<String, JoinHandle<()>>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// On while a resource alarm blocks publishers.
    publish_blocked: watch::Receiver<bool>,
}

impl SnsService {
    /// Opens the vhost, restores topics, subscriptions and the signing key, and starts the
    /// delivery task of every confirmed subscription.
    /// `broker` opens the vhost for the service's own bookkeeping; `users` opens it as each
    /// request's user, to check their permissions.
    pub fn start(
        broker: &Arc<dyn Broker>,
        users: &Arc<dyn Broker>,
        settings: &SnsSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, BrokerError> {
        let user = User {
            name: settings.user.clone(),
        };
        let vhost = broker.vhost(&settings.vhost, &user)?;
        let signer = restore_signer(vhost.as_ref())?;
        let service = Arc::new(SnsService {
            users: Arc::clone(users),
            topics: Table::restore(Arc::clone(&vhost), TOPIC_SCOPE),
            subscriptions: Table::restore(Arc::clone(&vhost), SUBSCRIPTION_SCOPE),
            vhost,
            connection: ConnectionId::next(),
            signer,
            http: HttpClient::new(),
            fifo: crate::actions::Fifo::default(),
            deliverers: Mutex::new(HashMap::new()),
            shutdown,
            publish_blocked: users.publish_blocked(),
        });
        for subscription in service.subscriptions.values() {
            if subscription.confirmed() {
                service.start_delivery(&subscription);
            }
        }
        Ok(service)
    }

    /// Refuses a publish while a resource alarm is on: HTTP has no socket to stop reading, so
    /// the client is told to back off; subscriptions keep delivering and drain the queues.
    pub(crate) fn admit_publish(&self) -> Result<(), SnsError> {
        if *self.publish_blocked.borrow() {
            return Err(SnsError::throttled());
        }
        Ok(())
    }

    pub fn topic_arn(name: &str) -> String {
        format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}")
    }

    /// The topic an ARN names.
    pub fn topic(&self, arn: &str) -> Result<Topic, SnsError> {
        let name = topic_name(arn)?;
        self.topics.get(name).ok_or_else(SnsError::no_topic)
    }

    pub fn subscription(&self, arn: &str) -> Result<Subscription, SnsError> {
        self.subscriptions
            .get(arn)
            .ok_or_else(SnsError::no_subscription)
    }

    /// Starts (or restarts) the task that moves a confirmed subscription's messages.
    pub(crate) fn start_delivery(self: &Arc<Self>, subscription: &Subscription) {
        let task = tokio::spawn(crate::delivery::run(
            Arc::clone(self),
            subscription.arn.clone(),
        ));
        let mut deliverers = self
            .deliverers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = deliverers.insert(subscription.arn.clone(), task) {
            old.abort();
        }
    }

    pub(crate) fn stop_delivery(&self, arn: &str) {
        let task = self
            .deliverers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(arn);
        if let Some(task) = task {
            task.abort();
        }
    }

    async fn answer(
        self: &Arc<Self>,
        request: Request,
        host: &str,
        user: Option<&str>,
        request_id: &str,
    ) -> Response<Full<Bytes>> {
        let context = Context {
            host: host.to_owned(),
        };
        let authorized = user.map_or(Ok(()), |user| {
            crate::authorize::check(self, user, &request.action, &request.params)
        });
        let result = match authorized {
            Ok(()) => {
                crate::actions::dispatch(self, &request.action, &request.params, &context).await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(value) => {
                let (body, content_type) = match request.protocol {
                    Protocol::Json => (value.to_string().into_bytes(), render::JSON_CONTENT_TYPE),
                    Protocol::Query => (
                        render::xml_result(&request.action, &value, request_id),
                        render::XML_CONTENT_TYPE,
                    ),
                };
                mqbridge_sqs::response(StatusCode::OK, body, content_type, request_id)
            }
            Err(error) => failure(request.protocol, &error, request_id),
        }
    }
}

/// Per-request facts the actions need besides the parameters.
#[derive(Debug, Clone)]
pub struct Context {
    /// The request's `Host`, the base of the URLs handed out.
    pub host: String,
}

/// The topic name in a topic ARN (`arn:aws:sns:<region>:<account>:<name>`).
pub fn topic_name(arn: &str) -> Result<&str, SnsError> {
    let mut parts = arn.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.nth(2),
        parts.next(),
    ) {
        (Some("arn"), Some(_), Some("sns"), Some(name), None) if !name.is_empty() => Ok(name),
        _ => Err(SnsError::invalid("TopicArn")),
    }
}

fn restore_signer(vhost: &dyn VirtualHost) -> Result<Signer, BrokerError> {
    let stored = vhost.take_metadata(SIGNER_SCOPE);
    // The store keeps metadata through its snapshots; it is written once, when made.
    if let Some(signer) = stored
        .iter()
        .find_map(|(_, bytes)| Signer::from_bytes(bytes).ok())
    {
        return Ok(signer);
    }
    let signer = Signer::generate()
        .map_err(|e| BrokerError::Unavailable(format!("SNS signing key: {e}")))?;
    vhost.set_metadata(SIGNER_SCOPE, "key", Some(Bytes::from(signer.to_bytes())));
    Ok(signer)
}

fn failure(protocol: Protocol, error: &SnsError, request_id: &str) -> Response<Full<Bytes>> {
    if error.kind == ErrorKind::Internal {
        tracing::warn!(%error, "SNS request failed");
    } else {
        tracing::debug!(%error, "SNS request refused");
    }
    let status = StatusCode::from_u16(error.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = match protocol {
        Protocol::Json => mqbridge_sqs::response(
            status,
            render::json_error(error),
            render::JSON_CONTENT_TYPE,
            request_id,
        ),
        Protocol::Query => mqbridge_sqs::response(
            status,
            render::xml_error(error, request_id),
            render::XML_CONTENT_TYPE,
            request_id,
        ),
    };
    if let Ok(value) = hyper::header::HeaderValue::from_str(&render::query_error_header(error)) {
        response.headers_mut().insert(
            hyper::header::HeaderName::from_static("x-amzn-query-error"),
            value,
        );
    }
    response
}

/// The SNS side of the shared endpoint. Holds the service in an `Arc` so that actions can
/// start delivery tasks.
pub struct SnsNeighbor(pub Arc<SnsService>);

impl Neighbor for SnsNeighbor {
    fn public(
        &self,
        method: &str,
        path: &str,
        query: &str,
        host: &str,
        request_id: &str,
    ) -> Option<BoxFuture<'_, Response<Full<Bytes>>>> {
        if method != "GET" {
            return None;
        }
        if path == CERTIFICATE_PATH {
            let pem = self.0.signer.certificate_pem().as_bytes().to_vec();
            let answer =
                mqbridge_sqs::response(StatusCode::OK, pem, "application/x-pem-file", request_id);
            return Some(Box::pin(std::future::ready(answer)));
        }
        // The links subscribers get (SubscribeURL, UnsubscribeURL) work without credentials,
        // as on AWS: the token or the subscription ARN is the capability.
        let request = protocol::parse_query(query.as_bytes(), b"").ok()?;
        if !matches!(
            request.action.as_str(),
            "ConfirmSubscription" | "Unsubscribe"
        ) {
            return None;
        }
        let host = host.to_owned();
        let request_id = request_id.to_owned();
        Some(Box::pin(async move {
            // No user: the link is the capability, as on AWS.
            self.0.answer(request, &host, None, &request_id).await
        }))
    }

    fn claims(&self, claim: Claim<'_>) -> bool {
        if let Some(target) = claim.target {
            return target.starts_with(TARGET_PREFIX);
        }
        match claim.signed_for {
            Some(service) => service == "sns",
            None => protocol::is_query_for_sns(claim.query, claim.body),
        }
    }

    fn handle<'a>(&'a self, request: NeighborRequest<'a>) -> BoxFuture<'a, Response<Full<Bytes>>> {
        Box::pin(async move {
            let parsed = match request.target {
                Some(target) => protocol::parse_json(target, request.body),
                None => protocol::parse_query(request.query.as_bytes(), request.body),
            };
            match parsed {
                Ok(parsed) => {
                    self.0
                        .answer(parsed, request.host, Some(request.user), request.request_id)
                        .await
                }
                Err(error) => {
                    let protocol = if request.target.is_some() {
                        Protocol::Json
                    } else {
                        Protocol::Query
                    };
                    failure(protocol, &error, request.request_id)
                }
            }
        })
    }
}
