//! Start-up: replay every segment in order and rebuild what the broker had.
//!
//! A record that does not read back (short, bad checksum, does not parse) is a torn write when
//! it lies in the last write of the last segment: the writer starts a write only after the
//! previous one is on disk, and acknowledges nothing of a write before its `fdatasync`, so that
//! write was never acknowledged and is dropped whole (the file is truncated where it began).
//! Anywhere else it is corruption of data that was acknowledged, and start-up stops with the
//! file and offset; nothing is skipped silently.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mqbridge_broker_api::{BindingSpec, ExchangeSpec, Message, QueueSpec};

use super::Record;
use super::codec::{self, BATCH_RECORD_LEN, HEADER_LEN, RECORD_MAX};
use super::ledger::Ledger;

/// Why the store cannot open.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: corrupt record at offset {offset}; the journal cannot be replayed past it \
         (restore the data directory from a backup, or move this file away to lose what it holds)"
    )]
    Corrupt { path: PathBuf, offset: u64 },
    #[error(
        "{path} is locked: another mqbridge is using this data directory (stop it, or give this \
         one its own --data-dir)"
    )]
    Locked { path: PathBuf },
}

impl StoreError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What the broker had when it stopped.
#[derive(Debug, Default)]
pub struct Recovered {
    pub exchanges: Vec<(String, ExchangeSpec)>,
    pub queues: Vec<RecoveredQueue>,
    pub bindings: Vec<(String, BindingSpec)>,
    /// Retained MQTT messages: vhost, topic name, message.
    pub retained: Vec<(String, String, Arc<Message>)>,
    /// MQTT persistent sessions' own state: vhost, client id, the adapter's encoding.
    pub sessions: Vec<(String, String, bytes::Bytes)>,
    /// Adapters' metadata: vhost, scope, key, the adapter's encoding.
    pub metadata: Vec<(String, String, String, bytes::Bytes)>,
}

/// A durable queue and its persistent messages, oldest first.
#[derive(Debug)]
pub struct RecoveredQueue {
    pub vhost: String,
    pub id: u64,
    pub spec: QueueSpec,
    /// Message id, message, and whether it was delivered before.
    pub messages: Vec<(u64, Arc<Message>, bool)>,
}

/// The result of a replay: the broker's state, the journal's own, and where to continue.
pub(super) struct Replayed {
    pub recovered: Recovered,
    pub ledger: Ledger,
    /// The segment to append to and its length, if any segment exists.
    pub tail: Option<(u64, u64)>,
    pub max_id: u64,
}

/// The segment files in `dir`, oldest first.
pub(super) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let path = entry.map_err(StoreError::io(dir))?.path();
        let seq = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(super::journal::SEGMENT_SUFFIX))
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(seq) = seq {
            found.push((seq, path));
        }
    }
    found.sort_unstable();
    Ok(found)
}

pub(super) fn replay(dir: &Path) -> Result<Replayed, StoreError> {
    let files = segments(dir)?;
    let mut replay = Replay::default();
    let count = files.len();
    for (index, (seq, path)) in files.iter().enumerate() {
        let length = replay.segment(*seq, path, index + 1 == count)?;
        replay.tail = Some((*seq, length));
        tracing::info!(
            segment = %path.display(),
            done = index + 1,
            of = count,
            messages = replay.live_messages(),
            "journal replayed"
        );
    }
    Ok(replay.finish())
}

#[derive(Default)]
struct Replay {
    ledger: Ledger,
    /// The contents of live messages, by queue then id.
    contents: BTreeMap<u64, BTreeMap<u64, Arc<Message>>>,
    tail: Option<(u64, u64)>,
    max_id: u64,
}

impl Replay {
    /// Replays one segment; returns its length after any torn tail is cut off.
    fn segment(&mut self, seq: u64, path: &Path, last: bool) -> Result<u64, StoreError> {
        let data = fs::read(path).map_err(StoreError::io(path))?;
        let mut offset = 0;
        // The current write's extent: [start, end).
        let mut batch = (0, 0);
        while offset < data.len() {
            let Some((record, len)) = read_at(&data, offset) else {
                let torn = last && torn_at(&data, offset, batch);
                if !torn {
                    return Err(StoreError::Corrupt {
                        path: path.to_owned(),
                        offset: offset as u64,
                    });
                }
                let cut = if batch.0 <= offset && offset < batch.1 {
                    batch.0
                } else {
                    offset
                };
                return truncate(path, cut, data.len());
            };
            if let Record::Batch { len: batch_len } = record {
                let end = usize::try_from(batch_len).map_or(usize::MAX, |l| offset + len + l);
                batch = (offset, end);
            }
            self.apply(record, seq, offset as u64, len);
            offset += len;
        }
        Ok(data.len() as u64)
    }

    fn apply(&mut self, record: Record, segment: u64, offset: u64, len: usize) {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.ledger.apply(&record, segment, offset, len);
        match record {
            Record::DeclareQueue { id, .. } => {
                self.max_id = self.max_id.max(id);
                self.contents.entry(id).or_default();
            }
            Record::DeleteQueue { id } => {
                self.contents.remove(&id);
            }
            Record::Enqueue {
                queue, id, message, ..
            } => {
                self.max_id = self.max_id.max(id);
                if let Some(messages) = self.contents.get_mut(&queue) {
                    messages.insert(id, message);
                }
            }
            Record::Remove { queue, id } => {
                if let Some(messages) = self.contents.get_mut(&queue) {
                    messages.remove(&id);
                }
            }
            _ => {}
        }
    }

    fn live_messages(&self) -> usize {
        self.contents.values().map(BTreeMap::len).sum()
    }

    fn finish(mut self) -> Replayed {
        let ledger = self.ledger;
        let mut recovered = Recovered {
            exchanges: ledger
                .exchanges
                .iter()
                .map(|((vhost, _), spec)| (vhost.clone(), spec.clone()))
                .collect(),
            bindings: ledger.bindings.clone(),
            retained: ledger
                .retained
                .iter()
                .map(|((vhost, topic), message)| {
                    (vhost.clone(), topic.clone(), Arc::clone(message))
                })
                .collect(),
            queues: Vec::new(),
            sessions: ledger
                .sessions
                .iter()
                .map(|((vhost, client), state)| (vhost.clone(), client.clone(), state.clone()))
                .collect(),
            metadata: ledger
                .metadata
                .iter()
                .map(|((vhost, scope, key), value)| {
                    (vhost.clone(), scope.clone(), key.clone(), value.clone())
                })
                .collect(),
        };
        for (id, (vhost, spec)) in &ledger.queues {
            let stored = self.contents.remove(id).unwrap_or_default();
            let locations = ledger.messages.get(id);
            let messages = stored
                .into_iter()
                .map(|(message_id, message)| {
                    let delivered = locations
                        .and_then(|l| l.get(&message_id))
                        .is_some_and(|l| l.delivered);
                    (message_id, message, delivered)
                })
                .collect();
            recovered.queues.push(RecoveredQueue {
                vhost: vhost.clone(),
                id: *id,
                spec: spec.clone(),
                messages,
            });
        }
        Replayed {
            recovered,
            ledger,
            tail: self.tail,
            max_id: self.max_id,
        }
    }
}

/// The record at `offset` and its length, header included, if it reads back intact.
fn read_at(data: &[u8], offset: usize) -> Option<(Record, usize)> {
    let header = data.get(offset..offset.checked_add(HEADER_LEN)?)?;
    let length = u32::from_le_bytes(header.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header.get(4..)?.try_into().ok()?);
    if length > RECORD_MAX {
        return None;
    }
    let start = offset + HEADER_LEN;
    let body = data.get(start..start.checked_add(length)?)?;
    if codec::crc32c(body) != crc {
        return None;
    }
    let record = codec::decode(body).ok()?;
    Some((record, HEADER_LEN + length))
}

/// Whether a record that does not read back at `offset` of the last segment is a torn write.
/// Inside the current write: torn if that write runs to the end of the file (nothing was
/// written after it, so it was never completed). Between writes (the write's own first
/// record is damaged): torn unless a later write's first record follows.
fn torn_at(data: &[u8], offset: usize, batch: (usize, usize)) -> bool {
    if batch.0 <= offset && offset < batch.1 {
        return batch.1 >= data.len();
    }
    // A batch record's length field is fixed, so only offsets that start with it are worth
    // checking; a damaged tail of any size is scanned quickly.
    let batch_body = u32::try_from(BATCH_RECORD_LEN - HEADER_LEN).unwrap_or(0);
    let last_start = data.len().saturating_sub(BATCH_RECORD_LEN);
    let later = (offset + 1..=last_start).any(|at| {
        data.get(at..at + 4) == Some(&batch_body.to_le_bytes()[..])
            && matches!(read_at(data, at), Some((Record::Batch { .. }, _)))
    });
    !later
}

fn truncate(path: &Path, at: usize, length: usize) -> Result<u64, StoreError> {
    tracing::warn!(
        segment = %path.display(),
        offset = at,
        dropped_bytes = length - at,
        "the last write before the stop was torn (never acknowledged); truncating it"
    );
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(StoreError::io(path))?;
    file.set_len(at as u64).map_err(StoreError::io(path))?;
    file.sync_all().map_err(StoreError::io(path))?;
    Ok(at as u64)
}
