//! Login by client certificate: on a connection whose client presented a certificate the
//! broker trusts, the certificate's CN is the user, without a password.
//!
//! The adapters log in through `Broker::authenticate` with what the client sent, so the
//! certificate's name reaches them by wrapping the broker for that one connection: a login as
//! the CN (or with an empty username, as SASL EXTERNAL-style clients send) succeeds on the
//! certificate's strength, and any other username is checked by password as usual. RabbitMQ
//! does the same with `auth_mechanisms = EXTERNAL` and `ssl_cert_login_from = common_name`.
//!
//! The loopback-only rule still applies: a certificate for `guest` does not let `guest` in from
//! another host.

use std::net::IpAddr;
use std::sync::Arc;

use mqbridge_broker_api::{Broker, BrokerError, User, VirtualHost};
use tokio::sync::watch;

/// The broker as one certificate-authenticated connection sees it.
pub struct CertificateLogin {
    broker: Arc<dyn Broker>,
    name: String,
    loopback_only: bool,
}

impl CertificateLogin {
    /// Wraps `broker` for a connection whose certificate names `name`.
    pub fn wrap(
        broker: Arc<dyn Broker>,
        name: String,
        loopback_users: &[String],
    ) -> Arc<dyn Broker> {
        let loopback_only = loopback_users.contains(&name);
        Arc::new(CertificateLogin {
            broker,
            name,
            loopback_only,
        })
    }
}

impl Broker for CertificateLogin {
    fn authenticate(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<User, BrokerError> {
        if !username.is_empty() && username != self.name {
            return self.broker.authenticate(username, password, peer);
        }
        if self.loopback_only && !peer.is_loopback() {
            return Err(BrokerError::AccessRefused(format!(
                "user '{}' can only connect via localhost",
                self.name
            )));
        }
        Ok(User {
            name: self.name.clone(),
        })
    }

    fn vhost(&self, name: &str, user: &User) -> Result<Arc<dyn VirtualHost>, BrokerError> {
        self.broker.vhost(name, user)
    }

    fn publish_blocked(&self) -> watch::Receiver<bool> {
        self.broker.publish_blocked()
    }

    fn report(&self) -> Option<Arc<mqbridge_broker_api::ConnectionReport>> {
        self.broker.report()
    }

    fn product(&self) -> (&str, &str) {
        self.broker.product()
    }
}
