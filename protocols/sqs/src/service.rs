//! The SQS service: the state every request shares, the action dispatch, and the few helpers
//! all actions use (resolving a queue URL, publishing with confirms, queue URLs and ids).
//!
//! Runs on the HTTP connection tasks; each request is handled on its connection's task. Shared
//! state is behind `std::sync::Mutex`es that are never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use mqbridge_broker_api::{
    Broker, BrokerError, ConfirmSink, ConnectionId, Message, QueueHandle, User, VirtualHost,
};
use serde_json::Value;
use tokio::sync::watch;

use crate::actions;
use crate::auth::{AccessKey, Authenticator};
use crate::delay::{Delays, MoverContext};
use crate::error::{ErrorKind, SqsError};
use crate::fifo::Deduplication;
use crate::leases::Leases;
use crate::params::Params;
use crate::registry::{QueueMeta, Registry};

/// The account id in queue URLs and ARNs (the emulators' habit; DESIGN.md "Defaults").
pub const ACCOUNT_ID: &str = "000000000000";
/// The region in ARNs.
pub const REGION: &str = "us-east-1";
/// The SNS adapter's queues (one per subscription) are named so; never SQS queues.
pub const SNS_QUEUE_PREFIX: &str = "sns-subscription.";

/// The largest request body we buffer: a 1 MiB message (AWS's limit) after the worst escaping
/// either protocol applies (form `%XX` and JSON `\uXXXX` both triple a byte), plus room for
/// attributes.
pub const REQUEST_SIZE_MAX_DEFAULT: usize = 4 * 1024 * 1024;

/// How the SQS listener is configured.
#[derive(Debug, Clone)]
pub struct SqsSettings {
    /// The virtual host whose queues SQS serves.
    pub vhost: String,
    /// The broker user that opens the vhost, and that requests act as in dev mode.
    pub user: String,
    /// Largest request body we buffer, in bytes.
    pub request_size_max: usize,
    /// SigV4 access keys; empty is dev mode (see [`crate::auth`]).
    pub access_keys: Vec<AccessKey>,
    /// How long a connection may take to send a request's head, counted from when it may
    /// send one (so a keep-alive connection idle this long is closed too).
    pub header_read_timeout: std::time::Duration,
}

/// Per-request facts the actions need besides the parameters.
#[derive(Debug, Clone)]
pub struct Context {
    /// The request's `Host` header, for the queue URLs we hand out.
    pub host: String,
    /// The broker user the request acts as: its access key's, or the default user's in dev
    /// mode.
    pub user: String,
    /// Who sent the messages of this request, as consumers see it (`user_id`, SQS SenderId):
    /// the access key's user; none in dev mode, where any key will do.
    pub sender: Option<String>,
}

/// The state of the SQS API, shared by every HTTP connection.
pub struct SqsService {
    pub(crate) vhost: Arc<dyn VirtualHost>,
    /// The broker as clients see it: the vhost opened as a user is held to their permissions.
    pub(crate) users: Arc<dyn Broker>,
    /// SQS has no connections; one id stands for the whole API towards the core.
    pub(crate) connection: ConnectionId,
    pub(crate) registry: Registry,
    pub(crate) leases: Arc<Leases>,
    pub(crate) delays: Arc<Delays>,
    pub(crate) deduplication: Deduplication,
    pub(crate) move_tasks: Arc<crate::move_tasks::MoveTasks>,
    /// FIFO receives by ReceiveRequestAttemptId.
    pub(crate) attempts: crate::attempts::Attempts,
    /// `ApproximateFirstReceiveTimestamp` by message id, for messages not yet deleted.
    first_receive: Mutex<HashMap<String, u64>>,
    pub(crate) authenticator: Authenticator,
    pub(crate) settings: SqsSettings,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// On while a resource alarm blocks publishers.
    publish_blocked: watch::Receiver<bool>,
}

/// How many first-receive times we keep before forgetting them all (purged or
/// AMQP-acknowledged messages never delete theirs).
const FIRST_RECEIVE_REMEMBERED_MAX: usize = 1_000_000;

impl SqsService {
    /// Refuses a send while a resource alarm is on. SQS has no socket to stop reading, so the
    /// client is told to back off instead; receives and deletes go on and drain the queues.
    pub(crate) fn admit_send(&self) -> Result<(), SqsError> {
        if *self.publish_blocked.borrow() {
            return Err(SqsError::throttled());
        }
        Ok(())
    }

    /// Opens the vhost and starts the lease expiry task. `broker` opens it for the service's
    /// own bookkeeping; `users` opens it as each request's user, to check their permissions.
    pub fn start(
        broker: &Arc<dyn Broker>,
        users: &Arc<dyn Broker>,
        settings: SqsSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, BrokerError> {
        let user = User {
            name: settings.user.clone(),
        };
        let vhost = broker.vhost(&settings.vhost, &user)?;
        let leases = Arc::new(Leases::default());
        tokio::spawn(Arc::clone(&leases).run_expiry(shutdown.clone()));
        let connection = ConnectionId::next();
        let registry = Registry::restore(Arc::clone(&vhost), |name| {
            vhost.queue(name, connection).is_ok()
        });
        let service = Arc::new(SqsService {
            users: Arc::clone(users),
            vhost,
            connection,
            registry,
            leases,
            delays: Arc::new(Delays::default()),
            deduplication: Deduplication::default(),
            move_tasks: Arc::default(),
            attempts: crate::attempts::Attempts::default(),
            first_receive: Mutex::new(HashMap::new()),
            authenticator: Authenticator::new(&settings.access_keys, &settings.user),
            settings,
            shutdown,
            publish_blocked: users.publish_blocked(),
        });
        // Delayed messages of the queues kept from before a restart move again at once.
        let names: Vec<String> = service.registry.lock().keys().cloned().collect();
        for name in names {
            service.delays.resume(&service.mover_context(), &name);
        }
        Ok(service)
    }

    /// Runs one action. The result is in the JSON protocol's shape. The batch actions take
    /// their entries out of `params`.
    pub async fn handle(
        &self,
        action: &str,
        params: &mut Params,
        context: &Context,
    ) -> Result<Value, SqsError> {
        crate::authorize::check(self, action, params, context)?;
        actions::dispatch(self, action, params, context).await
    }

    /// The queue's URL. A queue of another protocol may have a name SQS would refuse
    /// (`amq.gen-...`, `mqtt-shared/g/f`): the name is one percent-encoded path segment, so
    /// every queue has a URL that resolves back to it.
    pub fn queue_url(&self, context: &Context, name: &str) -> String {
        let segment = crate::sigv4::encode_segment(name);
        format!("http://{}/{ACCOUNT_ID}/{segment}", context.host)
    }

    pub fn queue_arn(name: &str) -> String {
        format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
    }

    /// The queue a request's `QueueUrl` names. Any URL form resolves by its last path segment
    /// (ours, AWS's `https://sqs.<region>.amazonaws.com/<account>/<name>`, LocalStack's).
    pub fn resolve(&self, params: &Params) -> Result<ResolvedQueue, SqsError> {
        self.resolve_name(&queue_name_of_url(params.required("QueueUrl")?))
    }

    /// The queue named `name`, adopting queues the core has but SQS has not seen (declared by
    /// another protocol, or before a restart).
    pub fn resolve_name(&self, name: &str) -> Result<ResolvedQueue, SqsError> {
        // Holding queues and SNS subscriptions' queues are the broker's own, not SQS queues.
        if name.starts_with(crate::delay::HOLDING_PREFIX) || name.starts_with(SNS_QUEUE_PREFIX) {
            return Err(SqsError::no_queue());
        }
        let handle = match self.vhost.queue(name, self.connection) {
            Ok(handle) => handle,
            Err(BrokerError::NotFound(_)) => {
                self.registry.remove(name);
                return Err(SqsError::no_queue());
            }
            Err(other) => return Err(other.into()),
        };
        // A queue another protocol declared is FIFO by its name (standard names have no `.`).
        let meta = self.registry.adopt(name, || {
            QueueMeta::new(now_ms() / 1000, name.ends_with(".fifo"))
        });
        self.delays.resume(&self.mover_context(), name);
        Ok(ResolvedQueue {
            name: name.to_owned(),
            handle,
            meta,
        })
    }

    /// Publishes `messages` to `queue` and waits for the core's confirms (see
    /// [`publish_confirmed`]).
    pub async fn publish_confirmed(
        &self,
        queue: &Arc<dyn QueueHandle>,
        messages: Vec<Arc<Message>>,
    ) -> Result<Vec<bool>, SqsError> {
        publish_confirmed(queue, messages, &self.shutdown).await
    }

    /// What the delayed-message movers need.
    pub fn mover_context(&self) -> MoverContext {
        MoverContext {
            vhost: Arc::clone(&self.vhost),
            connection: self.connection,
            shutdown: self.shutdown.clone(),
        }
    }

    pub fn note_first_receive(&self, message_id: &str, now_ms: u64) -> u64 {
        let mut map = self
            .first_receive
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= FIRST_RECEIVE_REMEMBERED_MAX {
            map.clear();
        }
        *map.entry(message_id.to_owned()).or_insert(now_ms)
    }

    pub fn forget_first_receive(&self, message_id: &str) {
        self.first_receive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(message_id);
    }
}

/// Publishes `messages` to `queue` and waits until the core has confirmed each (for a durable
/// queue: written and synced). Returns, per message, whether it was accepted.
pub async fn publish_confirmed(
    queue: &Arc<dyn QueueHandle>,
    messages: Vec<Arc<Message>>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<bool>, SqsError> {
    let sink = ConfirmSink::new();
    let count = messages.len();
    for (id, message) in (0u64..).zip(messages) {
        let ticket = sink.tickets(id, 1);
        queue.publish(message, ticket).await;
    }
    let mut accepted = vec![false; count];
    let mut done = Vec::new();
    let mut answered = 0;
    let mut shutdown = shutdown.clone();
    loop {
        sink.drain(&mut done);
        for (id, ok) in done.drain(..) {
            if let Some(slot) = usize::try_from(id).ok().and_then(|i| accepted.get_mut(i)) {
                *slot = ok;
                answered += 1;
            }
        }
        if answered >= count {
            return Ok(accepted);
        }
        tokio::select! {
            () = sink.ready() => {}
            _ = shutdown.changed() => {
                return Err(SqsError::new(
                    ErrorKind::ServiceUnavailable,
                    "The broker is shutting down.",
                ));
            }
        }
    }
}

/// A queue named by a request: the core's handle and SQS's metadata snapshot.
pub struct ResolvedQueue {
    pub name: String,
    pub handle: Arc<dyn QueueHandle>,
    pub meta: Arc<QueueMeta>,
}

/// The queue a URL names: its last path segment, percent-decoded.
pub fn queue_name_of_url(url: &str) -> String {
    let segment = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
    crate::sigv4::decode_segment(segment)
}

pub fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// A random version 4 UUID, as AWS's message and request ids are.
pub fn new_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    crate::hex::uuid(&bytes)
}
