//! TCP keepalive on every accepted socket, so that the kernel finds peers that vanished
//! without a FIN or RST (a host powered off, a NAT entry dropped) on connections whose
//! protocol has no heartbeat of its own: AMQP with heartbeat 0, MQTT with keep alive 0, STOMP
//! with heart-beat 0,0, and idle SQS keep-alive connections. Once the probes go unanswered,
//! the next read fails and the adapter ends the connection as for any I/O error.
//!
//! With the values below a dead peer is noticed within `IDLE + INTERVAL * PROBES` = 2 minutes
//! of silence, instead of Linux's default of more than two hours.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Silence before the first probe: long enough that a healthy idle connection costs one
/// packet a minute each way.
pub const IDLE: Duration = Duration::from_secs(60);
/// Time between unanswered probes.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes after which the kernel resets the connection.
pub const PROBES: u32 = 6;

/// Turns keepalive on for `stream` with the broker's timings.
pub fn enable(stream: &TcpStream) -> io::Result<()> {
    let keepalive = TcpKeepalive::new()
        .with_time(IDLE)
        .with_interval(INTERVAL)
        .with_retries(PROBES);
    SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_accepted_socket_probes_with_the_broker_timings() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (_client, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        let (stream, _) = accepted.expect("accept");
        enable(&stream).expect("keepalive set");
        let socket = SockRef::from(&stream);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"), IDLE);
        assert_eq!(
            socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
            INTERVAL
        );
        assert_eq!(socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"), PROBES);
    }
}
