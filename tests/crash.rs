//! Crash tests: the real `mqbridge` binary is killed with SIGKILL while clients publish and
//! consume, restarted on the same data directory, and checked against what the clients were
//! told. (tests/durability.rs covers graceful restarts in-process.)
//!
//! What the broker promises, and so what is checked:
//! - A publish confirmed over AMQP (or PUBACKed over MQTT QoS 1) is on disk: after any crash it
//!   is in its queue, unless a consumer acknowledged it.
//! - An acknowledged message may come back after a crash (an ack is not confirmed in AMQP), but
//!   not once its removal is behind a later confirmed publish in the journal: the journal is one
//!   ordered log, so syncing the later record synced the removal too.
//! - Nothing is invented and no message is twice in a queue.
//! - Durable exchanges, queues and bindings are back once a confirmed publish followed them
//!   (declarations are not waited for; see src/core/vhost/durable.rs).
//! - A torn last write is cut off at start-up; damage anywhere else stops start-up with the
//!   file and offset.

#[path = "common/process.rs"]
mod process;

#[path = "crash/amqp.rs"]
mod amqp;

#[path = "crash/journal.rs"]
mod journal;

#[path = "crash/mqtt.rs"]
mod mqtt;

use std::time::Duration;

use process::BrokerProcess;
use rand::Rng;

/// Kill/restart cycles of the AMQP test; with the MQTT test's the run has well over 20.
const AMQP_CYCLES: u64 = 20;
/// Kill/restart cycles of the MQTT test.
const MQTT_CYCLES: u64 = 8;
/// The kill lands this long after the clients start, drawn uniformly: from before the first
/// confirm to well into steady publishing, so every phase of a write gets hit.
const KILL_AFTER_MS: std::ops::Range<u64> = 5..300;
/// A small segment size, so that a few hundred KiB of messages span several segments and
/// rolling, definitions snapshots and reclaiming are crossed by the kills too.
const SEGMENT_BYTES: &str = "65536";

/// A data directory removed when the test ends.
struct DataDir(std::path::PathBuf);

impl DataDir {
    fn new(test: &str) -> DataDir {
        let path =
            std::env::temp_dir().join(format!("mqbridge-crash-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("data dir");
        DataDir(path)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_kill_delay() -> Duration {
    Duration::from_millis(rand::rng().random_range(KILL_AFTER_MS))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_amqp_messages_and_definitions_survive_kill_9() {
    let data = DataDir::new("amqp");
    let args = ["--journal-segment-bytes", SEGMENT_BYTES];
    let mut broker = BrokerProcess::start(&data.0, &args);
    let mut model = amqp::Model::shared();
    amqp::define_main(&broker.amqp_url()).await;
    for cycle in 0..AMQP_CYCLES {
        let workload = amqp::Workload::spawn(&broker.amqp_url(), cycle, &model);
        tokio::time::sleep(random_kill_delay()).await;
        broker.kill();
        workload.finish().await;
        broker = BrokerProcess::start(&data.0, &args);
        model = amqp::verify(&broker, cycle, model).await;
    }
    amqp::assert_made_progress(&model);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubacked_mqtt_qos1_messages_survive_kill_9_in_a_persistent_session() {
    let data = DataDir::new("mqtt");
    let mut broker = BrokerProcess::start(&data.0, &[]);
    mqtt::subscribe_persistent(broker.mqtt).await;
    let mut model = mqtt::Model::default();
    for _ in 0..MQTT_CYCLES {
        let publisher = tokio::spawn(mqtt::publish_until_killed(broker.mqtt, model.next_id));
        tokio::time::sleep(random_kill_delay()).await;
        broker.kill();
        model.absorb(publisher.await.expect("publisher task"));
        broker = BrokerProcess::start(&data.0, &[]);
        mqtt::verify(broker.mqtt, &mut model).await;
    }
    assert!(
        model.pubacked_total > 0,
        "no PUBACK in any cycle: the test checked nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_write_is_cut_off_and_confirmed_messages_stay() {
    let data = DataDir::new("torn");
    let mut broker = BrokerProcess::start(&data.0, &[]);
    let mut model = amqp::Model::shared();
    amqp::define_main(&broker.amqp_url()).await;
    for (cycle, tear) in journal::Tear::ALL.into_iter().enumerate() {
        let workload = amqp::Workload::spawn(&broker.amqp_url(), cycle as u64, &model);
        // Heavy publishing: kill once confirms flow, so the last segment has many writes.
        tokio::time::sleep(Duration::from_millis(300) + random_kill_delay()).await;
        broker.kill();
        workload.finish().await;
        let segment = journal::last_segment(&data.0);
        let appended = tear.apply(&segment);
        broker = BrokerProcess::start(&data.0, &[]);
        assert!(
            broker.wait_for_line("torn", Duration::from_secs(1)),
            "{tear:?}: {appended} bytes appended, but start-up did not report a torn write:\n{}",
            broker.output()
        );
        model = amqp::verify(&broker, cycle as u64, model).await;
    }
    amqp::assert_made_progress(&model);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_older_segment_stops_start_up_naming_file_and_offset() {
    let data = DataDir::new("corrupt");
    let args = ["--journal-segment-bytes", SEGMENT_BYTES];
    let broker = BrokerProcess::start(&data.0, &args);
    amqp::define_main(&broker.amqp_url()).await;
    amqp::publish_confirmed(&broker.amqp_url(), 400, 1024).await;
    broker.kill();
    let segments = journal::segments(&data.0);
    assert!(
        segments.len() >= 3,
        "expected several segments, got {segments:?}"
    );
    let victim = &segments[1];
    let record = journal::flip_byte_in_middle(victim);

    let (status, output) = BrokerProcess::start_and_fail(&data.0, &args);
    assert!(
        !status.success(),
        "the broker started on a corrupt journal:\n{output}"
    );
    let expected = format!("{}: corrupt record at offset {record}", victim.display());
    let said = output
        .lines()
        .any(|line| line.starts_with(process::STDERR) && line.contains(&expected));
    assert!(said, "expected `{expected}` on stderr in:\n{output}");
}
