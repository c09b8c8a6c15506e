//! The STOMP 1.0, 1.1 and 1.2 adapter: stomp.py, stompjs and JMS-era clients talk to mqbridge
//! through this crate, on the same queues and topics as every other protocol.
//!
//! Layout (the same parts as every adapter):
//! - [`codec`]: bytes <-> frames for all three versions, sans-IO.
//! - [`destination`]: `/queue/`, `/topic/`, `/exchange/`, ... and what they mean in the core.
//! - [`session`]: negotiation, deliveries awaiting ACK, transactions, receipts; free of I/O.
//! - [`translate`]: SEND <-> the core's `Message` -> MESSAGE.
//! - `connection`: the task that owns the socket and drives the rest.
//!
//! The entry point is [`serve`], called by the listener per socket.

pub mod codec;
mod connection;
pub mod destination;
pub mod session;
pub mod translate;

pub use connection::{PREFETCH_DEFAULT, StompSettings, serve};
