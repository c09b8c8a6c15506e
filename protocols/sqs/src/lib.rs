//! The Amazon SQS API adapter: boto3, the aws CLI and every AWS SDK reach mqbridge's queues
//! through this crate, over HTTP, in both of SQS's wire protocols.
//!
//! Layout (the adapter parts, in HTTP's shape):
//! - [`protocol`]: HTTP request -> action and parameters, for AWS JSON 1.0 and Query (sans-IO).
//! - [`render`]: results and errors -> JSON bodies or Query XML, exactly as AWS shapes them.
//! - [`params`]: typed access to parameters; [`error`]: [`SqsError`] and AWS's error codes.
//! - [`attributes`]: message attributes and the MD5 digests SDKs verify.
//! - [`translate`]: SQS messages <-> the core's `Message` (the mapping table in ARCHITECTURE.md).
//! - [`registry`]: SQS queue metadata (attributes, tags, timestamps), journaled as metadata.
//! - [`delay`]: DelaySeconds, through a durable holding queue per queue.
//! - [`fifo`]: FIFO queues: message groups (the core's), deduplication, sequence numbers.
//! - [`attempts`]: FIFO receives replayed by ReceiveRequestAttemptId; [`recent`]: the
//!   five-minute table both FIFO tables use.
//! - [`leases`]: visibility timeouts as leases on unsettled deliveries; receipt handles.
//! - [`move_tasks`]: dead-letter queue redrive (message move tasks); [`policy`]: the queue
//!   Policy documents AddPermission and RemovePermission write.
//! - `actions`: one module per group of actions: parse, call the core, map errors.
//! - [`sigv4`]: AWS Signature Version 4, verified and signed (sans-IO); [`auth`]: who a
//!   request acts as (dev mode, or configured access keys); `authorize`: which of that user's
//!   permissions each action needs.
//! - [`service`]: the shared state and dispatch; `connection`: the HTTP connection task;
//!   [`neighbor`]: the hook through which SNS answers its requests on the same endpoint.
//!
//! The entry points are [`SqsService::start`] (once per broker) and [`serve`] (per socket).
//! An SQS queue `q` is the core's durable queue `q` in the configured vhost.

mod actions;
pub mod attempts;
pub mod attributes;
pub mod auth;
mod authorize;
mod connection;
pub mod delay;
pub mod error;
pub mod fifo;
pub mod hex;
pub mod leases;
pub mod move_tasks;
pub mod neighbor;
pub mod params;
pub mod policy;
pub mod protocol;
pub mod recent;
pub mod registry;
pub mod render;
pub mod service;
pub mod sigv4;
pub mod translate;

pub use auth::AccessKey;
pub use connection::{response, serve, serve_reporting};
pub use error::{ErrorKind, SqsError};
pub use neighbor::{Claim, Neighbor, NeighborRequest};
pub use service::{REQUEST_SIZE_MAX_DEFAULT, SqsService, SqsSettings};
