//! CONNECT (or STOMP): version and heart-beat negotiation, login, the virtual host, CONNECTED.

use std::sync::Arc;

use mqbridge_broker_api::{User, VirtualHost};

use super::{Connection, Opened, Violation, supported_versions};
use crate::codec::{Command, Frame, Version};
use crate::session::{negotiate_heart_beat, negotiate_version};

impl Connection {
    /// Handles the first frame, which must be CONNECT or STOMP.
    pub(super) fn on_connect(&mut self, frame: &Frame) -> Result<(), Violation> {
        if !matches!(frame.command, Command::Connect | Command::Stomp) {
            return Err(Violation::new(
                "not connected",
                format!("{} frame before CONNECT", frame.command),
            ));
        }
        let version = negotiate_version(frame.header("accept-version")).ok_or_else(|| {
            Violation::new(
                "unsupported protocol version",
                format!(
                    "none of the versions '{}' is spoken here",
                    frame.header("accept-version").unwrap_or_default()
                ),
            )
            // STOMP 1.2, CONNECT: the ERROR "MUST" list the versions the server speaks.
            .with("version", supported_versions())
        })?;
        // STOMP 1.0 has no heart-beating; a 1.0 client's header means nothing.
        let heart_beat = match version {
            Version::V1_0 => None,
            _ => frame.header("heart-beat"),
        };
        let ours = self.settings.heart_beat_ms;
        let heart_beat = negotiate_heart_beat(heart_beat, (ours, ours)).ok_or_else(|| {
            Violation::new(
                "invalid heart-beat",
                "heart-beat must be two comma-separated numbers of milliseconds",
            )
        })?;
        let user = self.login(frame)?;
        let vhost = self.open_vhost(frame.header("host"), &user)?;
        self.version = Some(version);
        self.configure_decoder(version);
        self.heart_beat = heart_beat;
        self.opened = Some(Opened::new(vhost, user.name.clone()));
        self.send_connected(version, &user);
        tracing::debug!(peer = %self.peer, user = %user.name, version = version.as_str(), "stomp session open");
        Ok(())
    }

    /// The user a CONNECT logs in as. Without `login`, the TLS client certificate's user if
    /// there is one, else the configured anonymous user from loopback only; the broker
    /// enforces its own rules (guest only from loopback) on top.
    fn login(&self, frame: &Frame) -> Result<User, Violation> {
        if frame.header("login").is_none()
            && let Ok(user) = self.broker.authenticate("", "", self.peer.ip())
        {
            // No login: the identity the transport proved (a TLS client certificate's CN, see
            // src/tls.rs) logs in; without one this is refused and the anonymous rule applies.
            return Ok(user);
        }
        let (name, password) = match (frame.header("login"), &self.settings.anonymous) {
            (Some(login), _) => (login, frame.header("passcode").unwrap_or_default()),
            (None, Some((name, password))) if self.peer.ip().is_loopback() => {
                (name.as_str(), password.as_str())
            }
            (None, _) => {
                return Err(Violation::new(
                    "access refused",
                    "CONNECT without login: this broker needs a login and passcode",
                ));
            }
        };
        self.broker
            .authenticate(name, password, self.peer.ip())
            .map_err(|error| {
                tracing::warn!(peer = %self.peer, user = %name, %error, "stomp login refused");
                Violation::new("access refused", error.to_string())
            })
    }

    /// The vhost named by `host`, if the broker has one by that name; else the default vhost.
    /// Clients put the server's host name there unless told otherwise (stomp.py, stompjs) and
    /// ActiveMQ ignores it, so a `host` that names no vhost cannot be an error; one that does
    /// is used, as RabbitMQ does.
    fn open_vhost(
        &self,
        host: Option<&str>,
        user: &User,
    ) -> Result<Arc<dyn VirtualHost>, Violation> {
        if let Some(vhost) = host.and_then(|name| self.broker.vhost(name, user).ok()) {
            return Ok(vhost);
        }
        self.broker
            .vhost(&self.settings.default_vhost, user)
            .map_err(|error| Violation::new("access refused", error.to_string()))
    }

    fn send_connected(&mut self, version: Version, user: &User) {
        let (product, product_version) = self.broker.product();
        let mut connected = Frame::new(Command::Connected)
            .with("session", format!("session-{}", self.id.0))
            .with("server", format!("{product}/{product_version}"))
            .with("user-name", user.name.clone());
        if version != Version::V1_0 {
            let ours = self.settings.heart_beat_ms;
            connected = connected
                .with("version", version.as_str())
                .with("heart-beat", format!("{ours},{ours}"));
        }
        self.send(&connected);
    }
}
