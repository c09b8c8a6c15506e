//! The journal: segment files `{seq:020}.journal` in `<data_dir>/journal`, appended by one
//! writer thread.
//!
//! Group commit: callers push records into a shared list and return; the writer takes the
//! whole list, writes it with one `pwrite` behind a Batch record, makes it durable with one
//! `fdatasync`, and then finishes every waiting confirm. While it syncs, the next batch gathers,
//! so the more publishers there are, the more messages share each sync.
//!
//! A segment that reaches its size limit is closed and a new one starts with a copy of every
//! definition. Segments are deleted oldest first once none of their messages is live; an
//! oldest segment that is less than half live has its live messages copied to the current
//! segment first (compaction), so that one old message never pins a whole file.
//!
//! A failed write (a full disk) is undone (the file is cut back), the alarm blocks publishers,
//! and the writer retries until it succeeds; nothing already written is touched.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec::{self, BATCH_RECORD_LEN};
use super::ledger::Ledger;
use super::recovery::{self, Recovered, StoreError};
use super::{Durable, Record, Store};

pub const SEGMENT_SUFFIX: &str = ".journal";
/// How long the writer waits before retrying a failed write.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// When the journal makes writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every write, before anyone is told "stored" (the default).
    Always,
    /// Tell publishers "stored" once written to the OS, and sync at most this often. A
    /// process crash loses nothing; a power failure loses up to this much.
    Every(Duration),
}

#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// A segment is closed once it is this large.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_bytes: 64 << 20,
            fsync: FsyncPolicy::Always,
        }
    }
}

/// Reports the disk alarm (true while writes fail) to whoever blocks publishers.
pub type Alarm = Box<dyn Fn(bool) + Send>;

/// What the writer has done since the journal opened (metrics). Updated once per batch.
#[derive(Debug, Default)]
pub struct JournalStats {
    fsyncs: AtomicU64,
    bytes_written: AtomicU64,
}

impl JournalStats {
    /// `fdatasync` calls that succeeded.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Bytes written to segment files.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    fn synced(&self) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Journal {
    shared: Arc<Shared>,
    stats: Arc<JournalStats>,
    next_id: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The data directory's lock, held until the journal is closed.
    lock: Mutex<Option<File>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    records: Vec<(Record, Option<Durable>)>,
    closing: bool,
}

impl Journal {
    /// Locks `dir`, replays it, and starts the writer.
    pub fn open(
        dir: &Path,
        options: JournalOptions,
        alarm: Alarm,
    ) -> Result<(Arc<Journal>, Recovered), StoreError> {
        fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(StoreError::io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked { path: lock_path });
        }
        let started = Instant::now();
        let replayed = recovery::replay(dir)?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis(),
            "journal recovered"
        );
        let writer = Writer::start(dir, options, replayed.ledger, replayed.tail, alarm)?;
        let stats = Arc::clone(&writer.stats);
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("mqbridge-journal".into())
                .spawn(move || writer.run(&shared))
                .map_err(StoreError::io(dir))?
        };
        let journal = Journal {
            shared,
            stats,
            next_id: AtomicU64::new(replayed.max_id + 1),
            writer: Mutex::new(Some(thread)),
            lock: Mutex::new(Some(lock)),
        };
        Ok((Arc::new(journal), replayed.recovered))
    }

    /// The writer's counts so far.
    pub fn stats(&self) -> &JournalStats {
        &self.stats
    }

    /// Writes what is pending, stops the writer and releases the data directory. Later
    /// appends are refused (their waiters are told "not stored").
    pub fn close(&self) {
        lock(&self.shared.pending).closing = true;
        self.shared.wake.notify_one();
        let thread = lock(&self.writer).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        lock(&self.lock).take();
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

impl Store for Journal {
    fn append(&self, record: Record, durable: Option<Durable>) {
        let mut pending = lock(&self.shared.pending);
        if pending.closing {
            drop(pending);
            if let Some(durable) = durable {
                durable.finish(false);
            }
            return;
        }
        pending.records.push((record, durable));
        let first = pending.records.len() == 1;
        drop(pending);
        // The writer sleeps only on an empty list, so only the first record needs to wake it.
        if first {
            self.shared.wake.notify_one();
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The pending list stays consistent whatever panicked while holding it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Writer {
    dir: PathBuf,
    options: JournalOptions,
    ledger: Ledger,
    segment: u64,
    file: File,
    len: u64,
    buffer: Vec<u8>,
    /// Offset and length of each record of the batch in `buffer`.
    placed: Vec<(u64, u32)>,
    last_sync: Instant,
    unsynced: bool,
    alarm: Alarm,
    stats: Arc<JournalStats>,
}

impl Writer {
    fn start(
        dir: &Path,
        options: JournalOptions,
        ledger: Ledger,
        tail: Option<(u64, u64)>,
        alarm: Alarm,
    ) -> Result<Writer, StoreError> {
        let (segment, len) = tail.unwrap_or((0, 0));
        let path = segment_path(dir, segment);
        let file = open_segment(&path)?;
        let mut writer = Writer {
            dir: dir.to_owned(),
            options,
            ledger,
            segment,
            file,
            len,
            buffer: Vec::new(),
            placed: Vec::new(),
            last_sync: Instant::now(),
            unsynced: false,
            alarm,
            stats: Arc::default(),
        };
        if tail.is_none() {
            // A new journal starts with its (empty) definitions, like every segment.
            let definitions = writer.ledger.definitions();
            writer
                .write_records(&definitions)
                .map_err(StoreError::io(&path))?;
            sync_dir(dir).map_err(StoreError::io(dir))?;
        }
        Ok(writer)
    }

    fn run(mut self, shared: &Shared) {
        while let Some(batch) = self.take(shared) {
            self.commit(batch, shared);
        }
        if self.unsynced {
            let _ = self.file.sync_data();
        }
    }

    /// The next batch; `None` once closing with nothing left.
    fn take(&mut self, shared: &Shared) -> Option<Vec<(Record, Option<Durable>)>> {
        let mut pending = lock(&shared.pending);
        loop {
            if !pending.records.is_empty() {
                return Some(std::mem::take(&mut pending.records));
            }
            if pending.closing {
                return None;
            }
            match self.options.fsync {
                FsyncPolicy::Every(period) if self.unsynced => {
                    let wait = period.saturating_sub(self.last_sync.elapsed());
                    let (guard, _) = shared
                        .wake
                        .wait_timeout(pending, wait)
                        .unwrap_or_else(PoisonError::into_inner);
                    pending = guard;
                    if pending.records.is_empty() {
                        self.sync_due();
                    }
                }
                _ => {
                    pending = shared
                        .wake
                        .wait(pending)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// Writes a batch (retrying while the disk refuses), then finishes its waiters. A journal
    /// closed while the disk still refuses tells them "not stored".
    fn commit(&mut self, batch: Vec<(Record, Option<Durable>)>, shared: &Shared) {
        let (records, waiters): (Vec<Record>, Vec<Option<Durable>>) = batch.into_iter().unzip();
        let stored = self.write_retrying(&records, shared);
        for waiter in waiters.into_iter().flatten() {
            waiter.finish(stored);
        }
        if stored
            && self.len >= self.options.segment_bytes
            && let Err(error) = self.roll()
        {
            tracing::error!(%error, "cannot start a new journal segment; staying on this one");
        }
    }

    /// Writes `records`, retrying every second with the disk alarm raised while writes fail.
    /// False if the journal closed first.
    fn write_retrying(&mut self, records: &[Record], shared: &Shared) -> bool {
        let mut alarmed = false;
        while let Err(error) = self.write_records(records) {
            if !alarmed {
                tracing::error!(%error, segment = self.segment, "journal write failed; publishers blocked until it succeeds");
                (self.alarm)(true);
                alarmed = true;
            }
            if lock(&shared.pending).closing {
                tracing::error!("journal closed while writes fail; the last batch is not stored");
                return false;
            }
            std::thread::sleep(RETRY_AFTER);
        }
        if alarmed {
            tracing::info!("journal writes succeed again; publishers released");
            (self.alarm)(false);
        }
        true
    }

    /// Writes `records` as one batch and makes it as durable as the policy asks.
    fn write_records(&mut self, records: &[Record]) -> std::io::Result<()> {
        self.encode(records);
        if let Err(error) = self.file.write_all_at(&self.buffer, self.len) {
            // Undo a partial write, so the file ends with the last complete batch.
            let _ = self.file.set_len(self.len);
            return Err(error);
        }
        self.unsynced = true;
        if self.options.fsync == FsyncPolicy::Always {
            if let Err(error) = self.file.sync_data() {
                let _ = self.file.set_len(self.len);
                return Err(error);
            }
            self.stats.synced();
            self.unsynced = false;
            self.last_sync = Instant::now();
        } else {
            self.sync_due();
        }
        for (record, (offset, len)) in records.iter().zip(&self.placed) {
            self.ledger.apply(record, self.segment, *offset, *len);
        }
        let written = self.buffer.len() as u64;
        self.stats
            .bytes_written
            .fetch_add(written, Ordering::Relaxed);
        let header = u32::try_from(BATCH_RECORD_LEN).unwrap_or(u32::MAX);
        let batch = Record::Batch { len: written };
        self.ledger.apply(&batch, self.segment, self.len, header);
        self.len += written;
        Ok(())
    }

    /// Encodes a Batch record and `records` into the buffer, noting where each record goes.
    fn encode(&mut self, records: &[Record]) {
        self.buffer.clear();
        self.placed.clear();
        self.buffer.resize(BATCH_RECORD_LEN, 0);
        for record in records {
            let at = self.buffer.len();
            codec::encode(record, &mut self.buffer);
            let len = u32::try_from(self.buffer.len() - at).unwrap_or(u32::MAX);
            self.placed.push((self.len + at as u64, len));
        }
        let mut header = Vec::with_capacity(BATCH_RECORD_LEN);
        let len = (self.buffer.len() - BATCH_RECORD_LEN) as u64;
        codec::encode(&Record::Batch { len }, &mut header);
        if let Some(slot) = self.buffer.get_mut(..BATCH_RECORD_LEN) {
            slot.copy_from_slice(&header);
        }
    }

    fn sync_due(&mut self) {
        if let FsyncPolicy::Every(period) = self.options.fsync
            && self.unsynced
            && self.last_sync.elapsed() >= period
        {
            if let Err(error) = self.file.sync_data() {
                tracing::error!(%error, "journal sync failed");
                return;
            }
            self.stats.synced();
            self.unsynced = false;
            self.last_sync = Instant::now();
        }
    }

    /// Closes the current segment, starts the next with every definition, and reclaims space.
    fn roll(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.stats.synced();
        let next = self.segment + 1;
        let path = segment_path(&self.dir, next);
        let file = open_segment(&path).map_err(std::io::Error::other)?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.segment = next;
        self.len = 0;
        let definitions = self.ledger.definitions();
        self.write_records(&definitions)?;
        self.reclaim()
    }

    /// Deletes the oldest segments while none of their messages is live, compacting an oldest
    /// segment that is less than half live.
    fn reclaim(&mut self) -> std::io::Result<()> {
        while let Some((&oldest, usage)) = self.ledger.segments.first_key_value() {
            if oldest >= self.segment {
                break;
            }
            if usage.live > 0 {
                if usage.live_bytes * 2 >= usage.bytes {
                    break;
                }
                self.relocate(oldest)?;
                continue;
            }
            let path = segment_path(&self.dir, oldest);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
            self.ledger.segments.remove(&oldest);
            sync_dir(&self.dir)?;
            tracing::debug!(segment = %path.display(), "journal segment deleted");
        }
        Ok(())
    }

    /// Copies the live messages of `segment` to the current one.
    fn relocate(&mut self, segment: u64) -> std::io::Result<()> {
        let data = fs::read(segment_path(&self.dir, segment))?;
        let mut copies = Vec::new();
        for (queue, id, location) in self.ledger.live_in(segment) {
            let start = usize::try_from(location.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(location.len as usize);
            let body = data.get(start + codec::HEADER_LEN..end);
            let Some(Ok(Record::Enqueue { message, .. })) = body.map(codec::decode) else {
                return Err(std::io::Error::other(format!(
                    "segment {segment}: live message {queue}/{id} unreadable at offset {start}"
                )));
            };
            copies.push(Record::Enqueue {
                queue,
                id,
                delivered: location.delivered,
                message,
            });
        }
        tracing::debug!(
            segment,
            messages = copies.len(),
            "journal segment compacted"
        );
        // Applying the copies moves every live location to the current segment.
        self.write_records(&copies)
    }
}

pub(super) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
}

fn open_segment(path: &Path) -> Result<File, StoreError> {
    fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(StoreError::io(path))
}

/// Makes a file's creation or removal durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
