//! Connection-class methods: the handshake steps after the protocol header (start-ok, tune-ok,
//! open) and the connection-level commands a client may send once open (close, update-secret).

use std::collections::HashMap;
use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::AMQPValue;
use mqbridge_broker_api::ConfirmSink;
use tokio::sync::mpsc;

use super::{ClientCapabilities, Connection, Ctx, DELIVERY_SINK_CAPACITY, End};
use crate::codec::reply_code;
use crate::handshake::{self, Tuned};
use crate::session::Violation;
use crate::translate::reply_for;

impl Connection {
    pub(super) async fn connection_method(
        &mut self,
        method: connection::AMQPMethod,
    ) -> Option<End> {
        use connection::AMQPMethod as M;
        let reply = match method {
            M::StartOk(start_ok) => return self.on_start_ok(start_ok),
            M::TuneOk(tune_ok) => return self.on_tune_ok(&tune_ok),
            M::Open(open) => return self.on_open(open),
            M::Close(_) => {
                self.release_all().await;
                // Exclusive queues go before close-ok, as in RabbitMQ, so that a client that
                // saw close-ok never finds them still there. `cleanup` repeats this harmlessly.
                if let Some(ctx) = &self.ctx {
                    ctx.vhost.connection_closed(self.id);
                }
                self.out
                    .method(0, AMQPClass::Connection(M::CloseOk(connection::CloseOk {})));
                self.done = true;
                return None;
            }
            M::UpdateSecret(_) => M::UpdateSecretOk(connection::UpdateSecretOk {}),
            _ => return None,
        };
        self.out.method(0, AMQPClass::Connection(reply));
        None
    }

    pub(super) fn on_start_ok(&mut self, start_ok: connection::StartOk) -> Option<End> {
        let caps = &start_ok.client_properties;
        if let (Some(report), Some(AMQPValue::LongString(name))) =
            (self.broker.report(), caps.inner().get("connection_name"))
        {
            // The name a client gives its connection (pika's, lapin's, the Java client's).
            report.set_client_id(name.to_string());
        }
        self.capabilities = ClientCapabilities {
            consumer_cancel_notify: handshake::client_capability(caps, "consumer_cancel_notify"),
            connection_blocked: handshake::client_capability(caps, "connection.blocked"),
        };
        let mechanism = start_ok.mechanism.as_str();
        let credentials = handshake::credentials(mechanism, start_ok.response.as_bytes());
        let authenticated = credentials.map_err(|text| (reply_code::COMMAND_INVALID, text)).and_then(|(user, pass)| {
            self.broker.authenticate(&user, &pass, self.peer.ip()).map_err(|error| {
                tracing::warn!(peer = %self.peer, user, %error, "amqp login refused");
                let text = format!(
                    "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
                );
                (reply_code::ACCESS_REFUSED, text)
            })
        });
        match authenticated {
            Ok(user) => {
                self.user = Some(user);
                let tune = connection::Tune {
                    channel_max: self.settings.channel_max,
                    frame_max: self.settings.frame_max,
                    heartbeat: self.settings.heartbeat_secs,
                };
                self.out
                    .method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune)));
            }
            // authentication_failure_close: say why, then close without waiting.
            Err((code, text)) => {
                self.write_close(&Violation::connection(code, text));
                self.done = true;
            }
        }
        None
    }

    pub(super) fn on_tune_ok(&mut self, tune_ok: &connection::TuneOk) -> Option<End> {
        let proposed = Tuned {
            channel_max: self.settings.channel_max,
            frame_max: self.settings.frame_max,
            heartbeat_secs: self.settings.heartbeat_secs,
        };
        match handshake::negotiate(proposed, tune_ok) {
            Ok(tuned) => {
                self.session.set_channel_max(tuned.channel_max);
                self.out.frame_max = tuned.frame_max;
                self.heartbeat = (tuned.heartbeat_secs > 0)
                    .then(|| Duration::from_secs(tuned.heartbeat_secs.into()));
            }
            Err(text) => {
                self.close_connection(Violation::connection(reply_code::NOT_ALLOWED, text))
            }
        }
        None
    }

    pub(super) fn on_open(&mut self, open: connection::Open) -> Option<End> {
        let Some(user) = self.user.clone() else {
            self.close_connection(Violation::connection(
                reply_code::COMMAND_INVALID,
                "not authenticated",
            ));
            return None;
        };
        match self.broker.vhost(open.virtual_host.as_str(), &user) {
            Ok(vhost) => {
                let (sink, events) = mpsc::channel(DELIVERY_SINK_CAPACITY);
                self.ctx = Some(Ctx {
                    connection: self.id,
                    user: user.name,
                    vhost,
                    sink,
                    events,
                    deferred: Vec::new(),
                    confirms: ConfirmSink::new(),
                    routes: Vec::new(),
                    consumer_channels: HashMap::new(),
                    report: self.report.clone(),
                    published: false,
                });
                let ok = connection::OpenOk {};
                self.out
                    .method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(ok)));
            }
            Err(error) => {
                let code = reply_for(&error).0.max(reply_code::NOT_ALLOWED);
                self.close_connection(Violation::connection(code, error.to_string()));
            }
        }
        None
    }
}
