//! A suspended session as the store keeps it, so that a broker restart does not lose the
//! exchanges in flight (MQTT 4.1): the store treats it as opaque bytes. Layout, integers
//! big-endian as in MQTT itself:
//!
//! ```text
//! version u8 (1) | expiry: present u8, seconds u32
//! outbound count u32, each: 0 + length u32 + the PUBLISH as an MQTT 5 packet | 1 + packet id u16
//! inbound QoS 2 count u32, each: packet id u16
//! shares count u32, each: filter length u16 + filter | qos u8 | identifier: present u8, u32
//! ```
//!
//! PUBLISH packets are written with our own MQTT 5 encoder, so every property survives, and
//! read back with the decoder (a damaged state is dropped with a warning, never trusted).

use std::collections::HashSet;
use std::sync::{Arc, PoisonError};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mqbridge_broker_api::{ConnectionId, VirtualHost};

use super::MqttShared;
use super::suspended::{ShareOptions, Suspended, arm_expiry};
use crate::codec::{self, Packet, PacketId, ProtocolVersion, QoS};
use crate::session::{Resend, Unfinished};

const VERSION: u8 = 1;

pub(super) fn encode(session: &Suspended) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(VERSION);
    put_option(&mut out, session.expiry);
    put_len(&mut out, session.unfinished.outbound.len());
    for item in &session.unfinished.outbound {
        match item {
            Resend::Publish(publish) => {
                out.put_u8(0);
                let mut packet = BytesMut::new();
                let publish = Packet::Publish((**publish).clone());
                if codec::encode(&publish, ProtocolVersion::V5, &mut packet).is_err() {
                    tracing::warn!("an in-flight PUBLISH could not be kept");
                }
                put_len(&mut out, packet.len());
                out.put_slice(&packet);
            }
            Resend::Release(id) => {
                out.put_u8(1);
                out.put_u16(id.get());
            }
        }
    }
    put_len(&mut out, session.unfinished.inbound_exactly_once.len());
    for id in &session.unfinished.inbound_exactly_once {
        out.put_u16(*id);
    }
    put_len(&mut out, session.shares.len());
    for share in &session.shares {
        out.put_u16(u16::try_from(share.filter.len()).unwrap_or(u16::MAX));
        out.put_slice(share.filter.as_bytes());
        out.put_u8(share.qos as u8);
        put_option(&mut out, share.identifier);
    }
    out.freeze()
}

/// What [`encode`] wrote: the unfinished exchanges, the shares and the expiry.
type Decoded = (Unfinished, Vec<ShareOptions>, Option<u32>);

fn decode(mut data: Bytes) -> Option<Decoded> {
    if get_u8(&mut data)? != VERSION {
        return None;
    }
    let expiry = get_option(&mut data)?;
    let mut unfinished = Unfinished::default();
    for _ in 0..get_u32(&mut data)? {
        let item = match get_u8(&mut data)? {
            0 => {
                let len = get_u32(&mut data)? as usize;
                let mut packet = BytesMut::from(take(&mut data, len)?.as_ref());
                let max = u32::try_from(len).unwrap_or(u32::MAX);
                match codec::decode(&mut packet, Some(ProtocolVersion::V5), max) {
                    Ok(Some(Packet::Publish(publish))) => Resend::Publish(Box::new(publish)),
                    _ => return None,
                }
            }
            1 => Resend::Release(PacketId::new(get_u16(&mut data)?)?),
            _ => return None,
        };
        unfinished.outbound.push(item);
    }
    let inbound = (0..get_u32(&mut data)?)
        .map(|_| get_u16(&mut data))
        .collect::<Option<HashSet<u16>>>()?;
    unfinished.inbound_exactly_once = inbound;
    let mut shares = Vec::new();
    for _ in 0..get_u32(&mut data)? {
        let len = usize::from(get_u16(&mut data)?);
        let filter = String::from_utf8(take(&mut data, len)?.to_vec()).ok()?;
        let qos = QoS::from_u8(get_u8(&mut data)?)?;
        let identifier = get_option(&mut data)?;
        shares.push(ShareOptions {
            filter,
            qos,
            identifier,
        });
    }
    data.is_empty().then_some((unfinished, shares, expiry))
}

impl MqttShared {
    /// Loads the sessions kept from before a restart as suspended sessions of `vhost`, with
    /// their expiry timers started again (an expiry restarts with the broker).
    pub fn restore_sessions(
        self: &Arc<Self>,
        vhost: &Arc<dyn VirtualHost>,
        kept: Vec<(String, Bytes)>,
    ) {
        for (client_id, state) in kept {
            let Some((unfinished, shares, expiry)) = decode(state) else {
                tracing::warn!(%client_id, "a kept MQTT session state does not read back; dropped");
                vhost.set_session_state(&client_id, None);
                continue;
            };
            for share in &shares {
                if let Some(queue) = super::shared::queue_name(&share.filter) {
                    self.join_share(&queue, &client_id);
                }
            }
            let owner = ConnectionId::next();
            let session = Suspended {
                owner,
                unfinished,
                shares,
                vhost: Arc::clone(vhost),
                expiry,
            };
            let mut suspended = self
                .suspended
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            suspended.insert(client_id.clone(), session);
            drop(suspended);
            if let Some(secs) = expiry {
                arm_expiry(self, &client_id, owner, secs);
            }
        }
    }
}

fn put_len(out: &mut BytesMut, len: usize) {
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

fn put_option(out: &mut BytesMut, value: Option<u32>) {
    match value {
        Some(value) => {
            out.put_u8(1);
            out.put_u32(value);
        }
        None => out.put_u8(0),
    }
}

fn get_u8(data: &mut Bytes) -> Option<u8> {
    (data.remaining() >= 1).then(|| data.get_u8())
}

fn get_u16(data: &mut Bytes) -> Option<u16> {
    (data.remaining() >= 2).then(|| data.get_u16())
}

fn get_u32(data: &mut Bytes) -> Option<u32> {
    (data.remaining() >= 4).then(|| data.get_u32())
}

fn get_option(data: &mut Bytes) -> Option<Option<u32>> {
    match get_u8(data)? {
        0 => Some(None),
        _ => get_u32(data).map(Some),
    }
}

fn take(data: &mut Bytes, len: usize) -> Option<Bytes> {
    (data.remaining() >= len).then(|| data.split_to(len))
}
