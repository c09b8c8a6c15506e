//! mqbridge: one broker for AMQP 0-9-1, MQTT, STOMP, WebSocket and the SQS/SNS APIs.
//!
//! Layout:
//! - [`config`]: defaults, TOML file, `MQBRIDGE_*` environment and flags, merged in that order.
//! - [`server`]: listeners, the connection cap, graceful shutdown.
//! - [`tls`]: certificates for the TLS listeners, client-certificate login, reload.
//! - `core`: the broker model behind `mqbridge_broker_api` (users, vhosts, exchanges,
//!   bindings, queues). It knows no wire protocol.
//! - [`store`]: the journal that keeps durable definitions and persistent messages.
//! - [`ctl`]: `mqbridge ctl`, the command line client of the management API.
//! - `management`: the management HTTP API (RabbitMQ's paths) and the Prometheus `/metrics`.
//!
//! The protocol adapters live in `protocols/*`; this crate wires them to listeners.

pub mod config;
mod core;
pub mod ctl;
mod management;
pub mod server;
pub mod store;
pub mod tls;

pub use config::Config;
pub use server::{RunningServer, Server};
