//! A minimal AMQP 0-9-1 client for load generation, on `amq-protocol`'s frame codec.
//!
//! Why not a general client: lapin hands every publish to its I/O loop and waits for the write,
//! and spends 10-15 us of CPU per message; on a 2-core machine that starves the broker, and the
//! tool measures lapin (docs/BENCHMARKS.md has the figures). This client encodes the message
//! once, writes it in 64 KiB batches, reads deliveries in 512 KiB chunks and acks with
//! `multiple`: 1.5-3 us of CPU per message, falling as the rate rises and batches fill.
//!
//! It does only what the scenario needs: one channel per connection, PLAIN authentication,
//! no heartbeats, no TLS, no content decoding. Each producer and consumer owns its connection
//! on its own tokio task; nothing is shared between them but the `Meter` counters. The
//! overload scenario (`crate::overload`) builds its own publishers and consumers on
//! `connection`.

pub mod connection;
mod consumer;
mod producer;
mod queue;

pub use consumer::spawn_consumer;
pub use producer::spawn_producer;
pub use queue::Control;
