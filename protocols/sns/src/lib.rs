//! The Amazon SNS API adapter: an SNS topic is an exchange of the same name, and each
//! subscription delivers what reaches that exchange to an SQS queue or an HTTP endpoint.
//!
//! Served on the SQS listener's port; the SQS crate's HTTP front hands SNS requests here.

mod actions;
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
