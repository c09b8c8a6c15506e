//! The Amazon SNS API adapter: an SNS topic is an exchange of the same name, and each
//! subscription delivers what reaches that exchange to an SQS queue or an HTTP endpoint.
//!
//! Served on the SQS listener's port; the SQS crate's HTTP front hands SNS requests here
//! through [`SnsNeighbor`].
//!
//! Layout:
//! - [`protocol`], [`params`], [`render`], [`error`]: Query and JSON requests in, XML or JSON
//!   answers and AWS's errors out (sans-IO).
//! - [`registry`]: topics and subscriptions, journaled as metadata.
//! - `actions`: one module per group of actions.
//! - [`delivery`]: one task per confirmed subscription, from its queue to the subscriber;
//!   [`filter`]: filter policies; [`retry`]: HTTP retry policies; [`http_client`]: outbound
//!   POSTs.
//! - [`envelope`], [`headers`]: what subscribers get and what a publish carries;
//!   [`signing`]: the signatures on it.
//! - [`service`]: the shared state, dispatch, and the [`SnsNeighbor`] hook.

mod actions;
mod authorize;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod filter;
pub mod headers;
pub mod http_client;
pub mod params;
pub mod protocol;
pub mod registry;
pub mod render;
pub mod retry;
pub mod service;
pub mod signing;

pub use service::{SnsNeighbor, SnsService, SnsSettings};
