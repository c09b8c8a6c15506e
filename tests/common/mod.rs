//! Shared test harness: the real broker on an ephemeral loopback port, and lapin connections
//! to it.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties};
use mqbridge::{Config, RunningServer, Server};

/// Upper bound for any single wait in a test, so a broken broker fails the test instead of
/// hanging it.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Broker {
    pub server: RunningServer,
    _data: TempDir,
}

impl Broker {
    pub async fn start() -> Broker {
        Broker::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Broker {
        let data = TempDir::new();
        let mut config = Config {
            amqp_port: 0,
            data_dir: data.0.clone(),
            heartbeat_secs: 0,
            ..Config::default()
        };
        adjust(&mut config);
        let server = Server::start(config).await.expect("broker starts");
        Broker {
            server,
            _data: data,
        }
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.server.amqp_addr)
    }

    pub async fn connect(&self) -> Connection {
        let properties = ConnectionProperties::default();
        tokio::time::timeout(WAIT, Connection::connect(&self.amqp_url(), properties))
            .await
            .expect("connect in time")
            .expect("connect")
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let connection = self.connect().await;
        let channel = connection.create_channel().await.expect("channel");
        (connection, channel)
    }
}

/// A data directory removed when the test ends.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mqbridge-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Awaits a future with the test-wide bound.
pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("finished in time")
}
