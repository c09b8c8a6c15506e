//! The AMQP 0-9-1 connection state machine: which frame may come next, per connection phase and
//! per channel. Frames in; complete commands (a method, with its content when it carries one)
//! or protocol violations out. It never awaits and owns no socket; `connection.rs` drives it.
//!
//! ```text
//!  connection:  Start --start-ok--> Tune --tune-ok--> Open --open--> Running
//!  channel:     (absent) --channel.open--> Open --channel.close--> (absent)
//!               Open --(we send channel.close)--> Closing --close-ok--> (absent)
//!  content:     Idle --basic.publish--> Header --header--> Body* --last body--> Idle
//! ```
//!
//! Deviation: `basic.publish` is the only content-carrying method a client sends, so it is the
//! only one assembled; any other method never expects content.

use std::collections::HashMap;

use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection};
use bytes::Bytes;
use mqbridge_broker_api::own_body;

use crate::codec::{Frame, reply_code};

/// RabbitMQ's default `max_message_size`: a body larger than this is refused before any of
/// it is buffered.
pub const MESSAGE_SIZE_MAX: u64 = 128 * 1024 * 1024;

/// A complete command from the client.
// Values live for one dispatch on the connection's stack; boxing would cost an allocation per
// frame for no memory saved.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Inbound {
    Method {
        channel: u16,
        method: AMQPClass,
        content: Option<Content>,
    },
    Heartbeat,
}

/// A published message's properties and body.
#[derive(Debug)]
pub struct Content {
    pub properties: BasicProperties,
    pub body: Bytes,
}

/// A protocol violation, with what goes on the wire. `channel` is set for a channel-level
/// (soft) error, which closes only that channel; otherwise the whole connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub text: String,
    pub class_id: u16,
    pub method_id: u16,
    pub channel: Option<u16>,
}

impl Violation {
    pub fn connection(code: u16, text: impl Into<String>) -> Self {
        Violation {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
            channel: None,
        }
    }

    pub fn channel(channel: u16, code: u16, text: impl Into<String>) -> Self {
        Violation {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
            channel: Some(channel),
        }
    }

    /// Names the method that caused the error, as `connection.close`/`channel.close` carry it.
    pub fn during(mut self, method: &AMQPClass) -> Self {
        self.class_id = method.get_amqp_class_id();
        self.method_id = method.get_amqp_method_id();
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Tune,
    Open,
    Running,
}

// One per open channel; a box per channel would save little and cost a pointer chase on every
// frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum ChannelState {
    Open(Assembly),
    /// We sent `channel.close`; everything but `close`/`close-ok` is dropped until close-ok.
    Closing,
}

#[allow(clippy::large_enum_variant)] // See `ChannelState`.
#[derive(Debug)]
enum Assembly {
    Idle,
    Header(AMQPClass),
    Body {
        method: AMQPClass,
        properties: BasicProperties,
        remaining: u64,
        body: Body,
    },
}

/// A body in one frame arrives as a zero-copy slice of the read buffer and is kept so only when
/// it is large (`own_body` says why); a body split over several frames is copied into one
/// buffer, sized exactly when it is finished, since the queue holds it as long as it is queued.
#[derive(Debug)]
enum Body {
    Empty,
    One(Bytes),
    Many(Vec<u8>),
}

impl Body {
    fn push(self, part: Bytes) -> Body {
        match self {
            Body::Empty => Body::One(part),
            Body::One(first) => Body::Many([&first[..], &part[..]].concat()),
            Body::Many(mut all) => {
                all.extend_from_slice(&part);
                Body::Many(all)
            }
        }
    }

    fn finish(self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(body) => own_body(&body),
            Body::Many(mut all) => {
                all.shrink_to_fit();
                Bytes::from(all)
            }
        }
    }
}

/// The frame rules of one connection.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    channel_max: u16,
    channels: HashMap<u16, ChannelState>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            phase: Phase::Start,
            channel_max: u16::MAX,
            channels: HashMap::new(),
        }
    }
}

impl Session {
    /// Whether the handshake is complete.
    pub fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// Records the negotiated channel limit (after tune-ok).
    pub fn set_channel_max(&mut self, channel_max: u16) {
        self.channel_max = channel_max;
    }

    /// Marks a channel as closing because we sent `channel.close`.
    pub fn closing(&mut self, channel: u16) {
        self.channels.insert(channel, ChannelState::Closing);
    }

    /// Channels that are open, for cleanup.
    pub fn open_channels(&self) -> Vec<u16> {
        self.channels.keys().copied().collect()
    }

    pub fn handle(&mut self, frame: Frame) -> Result<Option<Inbound>, Violation> {
        match frame {
            Frame::Heartbeat { channel: 0 } => Ok(Some(Inbound::Heartbeat)),
            // [AMQP 0-9-1 §4.2.7] "A peer that receives an invalid heartbeat frame MUST raise a
            // connection exception with reply code 501 (frame error)."
            Frame::Heartbeat { channel } => Err(Violation::connection(
                reply_code::FRAME_ERROR,
                format!("heartbeat frame on channel {channel}; heartbeats use channel 0"),
            )),
            Frame::Method { channel: 0, method } => self.connection_method(method),
            _ if self.phase != Phase::Running => Err(Violation::connection(
                reply_code::COMMAND_INVALID,
                "channel frame received before the connection was open",
            )),
            Frame::Method { channel, method } => self.channel_method(channel, method),
            Frame::Header {
                channel,
                class_id,
                body_size,
                properties,
            } => self.header(channel, class_id, body_size, properties),
            Frame::Body { channel, payload } => self.body(channel, payload),
        }
    }

    fn connection_method(&mut self, method: AMQPClass) -> Result<Option<Inbound>, Violation> {
        use connection::AMQPMethod as M;
        let AMQPClass::Connection(m) = &method else {
            return Err(Violation::connection(
                reply_code::COMMAND_INVALID,
                "only connection methods may use channel 0",
            )
            .during(&method));
        };
        let next = match (self.phase, m) {
            (Phase::Start, M::StartOk(_)) => Phase::Tune,
            (Phase::Tune, M::TuneOk(_)) => Phase::Open,
            (Phase::Open, M::Open(_)) => Phase::Running,
            (_, M::Close(_) | M::CloseOk(_)) => self.phase,
            (Phase::Running, M::UpdateSecret(_) | M::Blocked(_) | M::Unblocked(_)) => self.phase,
            (phase, _) => {
                let expected = match phase {
                    Phase::Start => "connection.start-ok",
                    Phase::Tune => "connection.tune-ok",
                    Phase::Open => "connection.open",
                    Phase::Running => "a connection method a client may send",
                };
                return Err(Violation::connection(
                    reply_code::COMMAND_INVALID,
                    format!("expected {expected}"),
                )
                .during(&method));
            }
        };
        self.phase = next;
        Ok(Some(Inbound::Method {
            channel: 0,
            method,
            content: None,
        }))
    }

    fn channel_method(&mut self, id: u16, method: AMQPClass) -> Result<Option<Inbound>, Violation> {
        let is_open = matches!(&method, AMQPClass::Channel(channel::AMQPMethod::Open(_)));
        let is_close = matches!(&method, AMQPClass::Channel(channel::AMQPMethod::Close(_)));
        let is_close_ok = matches!(&method, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)));
        if matches!(method, AMQPClass::Connection(_)) {
            return Err(Violation::connection(
                reply_code::COMMAND_INVALID,
                "connection methods must use channel 0",
            )
            .during(&method));
        }
        let Some(state) = self.channels.get_mut(&id) else {
            if !is_open {
                return Err(Violation::connection(
                    reply_code::CHANNEL_ERROR,
                    format!("expected 'channel.open' on channel {id}"),
                )
                .during(&method));
            }
            if id > self.channel_max {
                return Err(Violation::connection(
                    reply_code::NOT_ALLOWED,
                    format!(
                        "channel {id} is above the negotiated channel_max {}",
                        self.channel_max
                    ),
                )
                .during(&method));
            }
            self.channels.insert(id, ChannelState::Open(Assembly::Idle));
            return Ok(Some(Inbound::Method {
                channel: id,
                method,
                content: None,
            }));
        };
        match state {
            ChannelState::Closing if is_close || is_close_ok => {
                if is_close_ok {
                    self.channels.remove(&id);
                }
                Ok(Some(Inbound::Method {
                    channel: id,
                    method,
                    content: None,
                }))
            }
            ChannelState::Closing => Ok(None),
            ChannelState::Open(_) if is_open => Err(Violation::connection(
                reply_code::CHANNEL_ERROR,
                format!("second 'channel.open' seen on channel {id}"),
            )
            .during(&method)),
            ChannelState::Open(Assembly::Idle) => {
                if matches!(&method, AMQPClass::Basic(basic::AMQPMethod::Publish(_))) {
                    *state = ChannelState::Open(Assembly::Header(method));
                    return Ok(None);
                }
                if is_close {
                    self.channels.remove(&id);
                }
                Ok(Some(Inbound::Method {
                    channel: id,
                    method,
                    content: None,
                }))
            }
            ChannelState::Open(_) => Err(unexpected("a method", id).during(&method)),
        }
    }

    fn header(
        &mut self,
        id: u16,
        class_id: u16,
        body_size: u64,
        properties: BasicProperties,
    ) -> Result<Option<Inbound>, Violation> {
        let state = self.channels.get_mut(&id).ok_or_else(|| no_channel(id))?;
        let ChannelState::Open(assembly) = state else {
            return Ok(None);
        };
        let Assembly::Header(_) = assembly else {
            return Err(unexpected("a content header", id));
        };
        let Assembly::Header(method) = std::mem::replace(assembly, Assembly::Idle) else {
            return Err(unexpected("a content header", id));
        };
        if class_id != method.get_amqp_class_id() {
            return Err(Violation::connection(
                reply_code::UNEXPECTED_FRAME,
                format!("content header for class {class_id} follows a method of class 60"),
            ));
        }
        if body_size > MESSAGE_SIZE_MAX {
            // The channel closes, so the body frames that follow are dropped unread.
            *state = ChannelState::Closing;
            return Err(Violation::channel(
                id,
                reply_code::PRECONDITION_FAILED,
                format!(
                    "message size {body_size} is larger than configured max size {MESSAGE_SIZE_MAX}"
                ),
            )
            .during(&method));
        }
        if body_size == 0 {
            let content = Content {
                properties,
                body: Bytes::new(),
            };
            return Ok(Some(Inbound::Method {
                channel: id,
                method,
                content: Some(content),
            }));
        }
        *assembly = Assembly::Body {
            method,
            properties,
            remaining: body_size,
            body: Body::Empty,
        };
        Ok(None)
    }

    fn body(&mut self, id: u16, payload: Bytes) -> Result<Option<Inbound>, Violation> {
        let state = self.channels.get_mut(&id).ok_or_else(|| no_channel(id))?;
        let ChannelState::Open(assembly) = state else {
            return Ok(None);
        };
        let Assembly::Body { remaining, .. } = assembly else {
            return Err(unexpected("a content body", id));
        };
        let size = payload.len() as u64;
        if size > *remaining {
            return Err(Violation::connection(
                reply_code::FRAME_ERROR,
                format!("content body on channel {id} is longer than its header declared"),
            ));
        }
        *remaining -= size;
        if *remaining > 0 {
            if let Assembly::Body { body, .. } = assembly {
                *body = std::mem::replace(body, Body::Empty).push(payload);
            }
            return Ok(None);
        }
        let Assembly::Body {
            method,
            properties,
            body,
            ..
        } = std::mem::replace(assembly, Assembly::Idle)
        else {
            return Err(unexpected("a content body", id));
        };
        let content = Content {
            properties,
            body: body.push(payload).finish(),
        };
        Ok(Some(Inbound::Method {
            channel: id,
            method,
            content: Some(content),
        }))
    }
}

fn no_channel(id: u16) -> Violation {
    Violation::connection(
        reply_code::CHANNEL_ERROR,
        format!("channel {id} is not open"),
    )
}

/// [AMQP 0-9-1 §4.2.6] content frames must follow their method without interleaving on the
/// same channel; anything else is 505 UNEXPECTED_FRAME.
fn unexpected(what: &str, channel: u16) -> Violation {
    Violation::connection(
        reply_code::UNEXPECTED_FRAME,
        format!(
            "{what} arrived on channel {channel} out of order (content frames must follow their method)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::connection::{Open, StartOk, TuneOk};

    fn running() -> Session {
        let mut session = Session::default();
        for method in [
            connection::AMQPMethod::StartOk(StartOk::default()),
            connection::AMQPMethod::TuneOk(TuneOk::default()),
            connection::AMQPMethod::Open(Open::default()),
        ] {
            let frame = Frame::Method {
                channel: 0,
                method: AMQPClass::Connection(method),
            };
            session.handle(frame).expect("handshake step");
        }
        assert!(session.is_running());
        session
    }

    fn open(session: &mut Session, id: u16) {
        let method = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
        session
            .handle(Frame::Method {
                channel: id,
                method,
            })
            .expect("open");
    }

    fn publish() -> Frame {
        let method = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish::default()));
        Frame::Method { channel: 1, method }
    }

    fn header(size: u64) -> Frame {
        Frame::Header {
            channel: 1,
            class_id: 60,
            body_size: size,
            properties: BasicProperties::default(),
        }
    }

    #[test]
    fn publish_assembles_split_body() {
        let mut session = running();
        open(&mut session, 1);
        assert!(session.handle(publish()).expect("publish").is_none());
        assert!(session.handle(header(6)).expect("header").is_none());
        let first = Frame::Body {
            channel: 1,
            payload: Bytes::from_static(b"abc"),
        };
        assert!(session.handle(first).expect("body").is_none());
        let last = Frame::Body {
            channel: 1,
            payload: Bytes::from_static(b"def"),
        };
        let Some(Inbound::Method {
            content: Some(content),
            ..
        }) = session.handle(last).expect("body")
        else {
            panic!("expected a complete publish");
        };
        assert_eq!(&content.body[..], b"abcdef");
    }

    #[test]
    fn body_before_header_is_unexpected_frame() {
        let mut session = running();
        open(&mut session, 1);
        let body = Frame::Body {
            channel: 1,
            payload: Bytes::from_static(b"x"),
        };
        let violation = session.handle(body).expect_err("out of order");
        assert_eq!(violation.code, reply_code::UNEXPECTED_FRAME);
        assert_eq!(violation.channel, None);
    }

    #[test]
    fn method_on_unopened_channel_is_channel_error() {
        let mut session = running();
        let violation = session.handle(publish()).expect_err("not open");
        assert_eq!(violation.code, reply_code::CHANNEL_ERROR);
    }

    #[test]
    fn oversize_message_closes_only_the_channel() {
        let mut session = running();
        open(&mut session, 1);
        session.handle(publish()).expect("publish");
        let violation = session
            .handle(header(MESSAGE_SIZE_MAX + 1))
            .expect_err("too big");
        assert_eq!(violation.code, reply_code::PRECONDITION_FAILED);
        assert_eq!(violation.channel, Some(1));
        let body = Frame::Body {
            channel: 1,
            payload: Bytes::from_static(b"x"),
        };
        assert!(
            session
                .handle(body)
                .expect("dropped while closing")
                .is_none()
        );
    }

    #[test]
    fn channel_frames_before_open_are_refused() {
        let mut session = Session::default();
        let violation = session.handle(publish()).expect_err("handshake first");
        assert_eq!(violation.code, reply_code::COMMAND_INVALID);
    }
}
