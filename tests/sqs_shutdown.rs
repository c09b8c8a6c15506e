//! Shutdown with SQS clients connected: a long poll in progress ends at once rather than
//! holding the broker for up to 20 seconds, and the broker stops within its grace period.

mod common;

use std::time::{Duration, Instant};

use common::sqs::{client, create_queue};
use common::{Broker, within};

#[tokio::test]
async fn a_long_poll_does_not_hold_up_shutdown() {
    let broker = Broker::start().await;
    let sqs = client(&broker);
    let url = create_queue(&sqs, "stopping").await;
    let poll = tokio::spawn(async move {
        sqs.receive_message()
            .queue_url(&url)
            .wait_time_seconds(20)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    within(broker.shutdown()).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The poll ends too, with an answer or an error, but not after 20 seconds.
    let _ = within(poll).await;
}
