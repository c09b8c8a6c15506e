//! The journal against a real directory: what is appended comes back after a reopen; torn
//! tails are cut, corruption is refused, the lock holds, and space is reclaimed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use mqbridge_broker_api::{Headers, Message, QueueSpec};
use tokio::sync::oneshot;

use super::journal::segment_path;
use super::{Durable, Journal, JournalOptions, Record, Recovered, Store, StoreError};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "mqbridge-store-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &Path, options: JournalOptions) -> Result<(Arc<Journal>, Recovered), StoreError> {
    Journal::open(dir, options, Box::new(|_| {}))
}

fn queue(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.to_owned(),
        durable: true,
        exclusive: false,
        auto_delete: false,
        arguments: Headers::new(),
    }
}

fn message(body: &str) -> Arc<Message> {
    Arc::new(Message {
        routing_key: "q".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        ..Message::default()
    })
}

/// Appends and waits until the record is durable.
fn append_durably(store: &Journal, record: Record) {
    let (sender, stored) = oneshot::channel();
    store.append(record, Some(Durable::Notify(sender)));
    assert_eq!(stored.blocking_recv(), Ok(true));
}

fn enqueue(queue: u64, id: u64, body: &str) -> Record {
    Record::Enqueue {
        queue,
        id,
        delivered: false,
        message: message(body),
    }
}

fn bodies(recovered: &Recovered, name: &str) -> Vec<String> {
    let queue = recovered.queues.iter().find(|q| q.spec.name == name);
    let messages = queue.map(|q| q.messages.as_slice()).unwrap_or_default();
    messages
        .iter()
        .map(|(_, m, _)| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

#[test]
fn definitions_and_live_messages_come_back() {
    let dir = Dir::new("basic");
    let (store, recovered) = open(&dir.0, JournalOptions::default()).expect("open");
    assert!(recovered.queues.is_empty());
    let declare = |id, name: &str| Record::DeclareQueue {
        vhost: "/".into(),
        id,
        spec: queue(name),
    };
    store.append(declare(1, "orders"), None);
    store.append(declare(2, "gone"), None);
    store.append(enqueue(1, 10, "first"), None);
    store.append(enqueue(1, 11, "acked"), None);
    store.append(enqueue(1, 12, "third"), None);
    store.append(Record::Remove { queue: 1, id: 11 }, None);
    store.append(Record::Delivered { queue: 1, id: 12 }, None);
    store.append(enqueue(2, 13, "with its queue"), None);
    append_durably(&store, Record::DeleteQueue { id: 2 });
    drop(store);

    let (store, recovered) = open(&dir.0, JournalOptions::default()).expect("reopen");
    assert_eq!(recovered.queues.len(), 1);
    assert_eq!(bodies(&recovered, "orders"), ["first", "third"]);
    let delivered: Vec<bool> = recovered.queues[0].messages.iter().map(|m| m.2).collect();
    assert_eq!(delivered, [false, true]);
    assert!(store.next_id() > 13, "ids are never reused");
}

#[test]
fn many_threads_share_fsyncs_and_all_are_told() {
    let dir = Dir::new("group");
    let (store, _) = open(&dir.0, JournalOptions::default()).expect("open");
    store.append(
        Record::DeclareQueue {
            vhost: "/".into(),
            id: 1,
            spec: queue("q"),
        },
        None,
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..50 {
                    append_durably(&store, enqueue(1, 100 + t * 50 + i, "m"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    drop(store);
    let (_, recovered) = open(&dir.0, JournalOptions::default()).expect("reopen");
    assert_eq!(bodies(&recovered, "q").len(), 400);
}

#[test]
fn a_second_journal_on_the_same_directory_is_refused() {
    let dir = Dir::new("lock");
    let (_store, _) = open(&dir.0, JournalOptions::default()).expect("open");
    let second = open(&dir.0, JournalOptions::default());
    assert!(
        matches!(second, Err(StoreError::Locked { .. })),
        "{second:?}"
    );
}

/// A journal with one queue and two durable messages, closed.
fn journal_with_two_messages(dir: &Path) {
    let (store, _) = open(dir, JournalOptions::default()).expect("open");
    store.append(
        Record::DeclareQueue {
            vhost: "/".into(),
            id: 1,
            spec: queue("q"),
        },
        None,
    );
    append_durably(&store, enqueue(1, 2, "one"));
    append_durably(&store, enqueue(1, 3, "two"));
}

#[test]
fn a_torn_last_write_is_cut_off() {
    let dir = Dir::new("torn");
    journal_with_two_messages(&dir.0);
    // A crash in the middle of a third write: its batch record promises more than arrived.
    let path = segment_path(&dir.0, 0);
    let intact = std::fs::metadata(&path).expect("segment").len();
    let mut batch = Vec::new();
    super::codec::encode(&Record::Batch { len: 4096 }, &mut batch);
    super::codec::encode(&enqueue(1, 4, "three"), &mut batch);
    batch.truncate(batch.len() - 3);
    append_bytes(&path, &batch);

    let (_, recovered) = open(&dir.0, JournalOptions::default()).expect("reopen");
    assert_eq!(bodies(&recovered, "q"), ["one", "two"]);
    assert_eq!(std::fs::metadata(&path).expect("segment").len(), intact);
}

#[test]
fn zeros_at_the_tail_are_a_torn_write_too() {
    let dir = Dir::new("zeros");
    journal_with_two_messages(&dir.0);
    append_bytes(&segment_path(&dir.0, 0), &[0; 100]);
    let (_, recovered) = open(&dir.0, JournalOptions::default()).expect("reopen");
    assert_eq!(bodies(&recovered, "q"), ["one", "two"]);
}

#[test]
fn a_damaged_acknowledged_record_stops_start_up_with_file_and_offset() {
    let dir = Dir::new("corrupt");
    journal_with_two_messages(&dir.0);
    let path = segment_path(&dir.0, 0);
    let mut data = std::fs::read(&path).expect("segment");
    // Flip a byte of "one", which a later write follows: acknowledged data, not a torn tail.
    let at = data
        .windows(3)
        .position(|w| w == b"one")
        .expect("the first body");
    data[at] ^= 0xff;
    std::fs::write(&path, &data).expect("write");
    match open(&dir.0, JournalOptions::default()) {
        Err(StoreError::Corrupt { path: bad, offset }) => {
            assert_eq!(bad, path);
            assert!(offset > 0 && (offset as usize) < at);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn segments_are_deleted_or_compacted_once_their_messages_are_gone() {
    let dir = Dir::new("reclaim");
    let options = JournalOptions {
        segment_bytes: 4096,
        ..JournalOptions::default()
    };
    let (store, _) = open(&dir.0, options.clone()).expect("open");
    store.append(
        Record::DeclareQueue {
            vhost: "/".into(),
            id: 1,
            spec: queue("q"),
        },
        None,
    );
    let body = "x".repeat(200);
    append_durably(&store, enqueue(1, 2, "kept"));
    for id in 3..500 {
        store.append(enqueue(1, id, &body), None);
        append_durably(&store, Record::Remove { queue: 1, id });
    }
    let files = std::fs::read_dir(&dir.0).expect("dir").count();
    assert!(files < 6, "{files} files: old segments were not reclaimed");
    drop(store);
    let (_, recovered) = open(&dir.0, options).expect("reopen");
    assert_eq!(bodies(&recovered, "q"), ["kept"]);
}

/// Adapters' metadata is kept per key, latest wins, forgotten on `None`, and survives the
/// snapshot each new segment starts with.
#[test]
fn metadata_survives_segment_rolls_with_the_latest_value() {
    let dir = Dir::new("metadata");
    let options = JournalOptions {
        segment_bytes: 4096,
        ..JournalOptions::default()
    };
    let metadata = |key: &str, value: Option<&'static str>| Record::Metadata {
        vhost: "/".into(),
        scope: "sqs-queue".into(),
        key: key.into(),
        value: value.map(|v| Bytes::from_static(v.as_bytes())),
    };
    let (store, _) = open(&dir.0, options.clone()).expect("open");
    store.append(metadata("a", Some("first")), None);
    store.append(metadata("b", Some("gone")), None);
    store.append(metadata("a", Some("second")), None);
    append_durably(&store, metadata("b", None));
    // Enough traffic to roll past several segments, whose first records are snapshots.
    let body = "x".repeat(200);
    for id in 3..200 {
        store.append(enqueue(1, id, &body), None);
        append_durably(&store, Record::Remove { queue: 1, id });
    }
    drop(store);
    let (_, recovered) = open(&dir.0, options).expect("reopen");
    let kept: Vec<(String, String, String, Bytes)> = recovered.metadata;
    assert_eq!(
        kept,
        [(
            "/".to_owned(),
            "sqs-queue".to_owned(),
            "a".to_owned(),
            Bytes::from_static(b"second")
        )]
    );
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("segment");
    file.write_all(bytes).expect("append");
}

#[test]
fn a_full_disk_raises_the_alarm_and_confirms_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = Dir::new("full");
    let alarm = Arc::new(AtomicBool::new(false));
    let raised = Arc::clone(&alarm);
    let options = JournalOptions {
        segment_bytes: 1,
        ..JournalOptions::default()
    };
    let on_alarm = Box::new(move |on| raised.store(on, Ordering::SeqCst));
    let (store, _) = Journal::open(&dir.0, options, on_alarm).expect("open");
    // The next segment is /dev/full: every write to it fails with ENOSPC. (Made after the
    // replay, which would otherwise read /dev/full's endless zeros.)
    std::os::unix::fs::symlink("/dev/full", segment_path(&dir.0, 1)).expect("symlink");
    // Stored in segment 0, after which the journal moves to the full one.
    append_durably(&store, Record::Snapshot);
    let (sender, mut stored) = oneshot::channel();
    store.append(Record::Snapshot, Some(Durable::Notify(sender)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !alarm.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the alarm was never raised"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        stored.try_recv().is_err(),
        "nothing is confirmed while writes fail"
    );
    store.close();
    assert_eq!(
        stored.blocking_recv(),
        Ok(false),
        "closing says: not stored"
    );
}
