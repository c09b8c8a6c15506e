//! The MQTT 3.1, 3.1.1 and 5.0 adapter: Mosquitto clients and IoT devices talk to mqbridge
//! through this crate, on the same queues and topics as every other protocol.
//!
//! Layout (the same parts as every adapter):
//! - [`codec`]: bytes <-> packets for all three versions, sans-IO.
//! - [`topic`]: topic names and filters, and their mapping onto `amq.topic` routing keys.
//! - [`session`]: one session's subscriptions and packet identifiers, free of I/O.
//! - [`translate`]: PUBLISH <-> the core's `Message`.
//! - `connection`: the task that owns the socket and drives the rest, and the parking lot
//!   where idle connections on plain TCP wait without one.
//! - [`sys`]: `$SYS/broker/...` statistics, published by their own task.
//!
//! The entry point is [`serve`], called by the listener per socket with the listener's
//! [`MqttShared`] state.

pub mod codec;
mod connection;
pub mod session;
pub mod sys;
pub mod topic;
pub mod translate;

pub use connection::{MqttSettings, MqttShared, Parking, ParkingLot, serve, serve_parking};
pub use sys::{MessageTotals, publish_statistics};
