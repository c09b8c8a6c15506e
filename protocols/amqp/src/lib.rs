//! The AMQP 0-9-1 adapter: RabbitMQ clients talk to mqbridge through this crate.
//!
//! Layout (the same three parts as every adapter):
//! - [`codec`]: bytes <-> frames, sans-IO.
//! - [`session`]: which frame may come next; content assembly; protocol violations.
//! - [`translate`]: frames <-> the core's `Message`, properties, headers and errors.
//! - `handshake`: connection.start/tune contents and credentials.
//! - `channel`: one channel's commands turned into broker calls (`channel/messages.rs` is the
//!   hot path: publish, deliver, settle; `channel/modes.rs` holds tx and confirms).
//! - `connection`: the task that owns the socket and drives the rest (`connection/opening.rs`
//!   holds the handshake steps).
//!
//! The only entry point is [`serve`]; the listener in the `mqbridge` crate calls it per socket.

mod channel;
pub mod codec;
mod connection;
mod handshake;
pub mod session;
pub mod translate;

pub use connection::{AmqpSettings, serve};
