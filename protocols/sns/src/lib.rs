//! The Amazon SNS API adapter: an SNS topic is an exchange of the same name, and each
//! subscription delivers what reaches that exchange to an SQS queue or an HTTP endpoint.
//!
//! Served on the SQS listener's port; the SQS crate's HTTP front hands SNS requests here.

pub mod filter;
pub mod http_client;
pub mod signing;
