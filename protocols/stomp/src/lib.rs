//! The STOMP 1.0, 1.1 and 1.2 adapter: stomp.py, stompjs and JMS-era clients talk to mqbridge
//! through this crate, on the same queues and topics as every other protocol.
//!
//! Layout (the same parts as every adapter):
//! - [`codec`]: bytes <-> frames for all three versions, sans-IO.
pub mod codec;
