//! The resource alarms: message bytes held by all queues against a high watermark, and the
//! disk alarm. The disk alarm has two causes kept apart here: the data directory's free space
//! under its low watermark (`super::disk` measures it) and the store failing to write (a
//! journal write error). Outside they are one `disk` alarm, on while either cause is.
//!
//! Any alarm blocks publishers on every protocol (AMQP `connection.blocked`, MQTT and STOMP
//! sockets not read, SQS/SNS throttling errors) while consumers drain; clearing all of them
//! releases publishers. Queues report memory once per batch, not per message.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use tokio::sync::watch;

/// The resource alarms at one moment (management, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarms {
    /// Queued message bytes are over the high watermark.
    pub memory: bool,
    /// Free disk space is under its low watermark, or the store cannot write.
    pub disk: bool,
    pub used_bytes: u64,
    pub high_watermark_bytes: u64,
    /// Free bytes on the data directory's filesystem at the last check; `None` until one
    /// succeeds.
    pub disk_free_bytes: Option<u64>,
    pub disk_free_limit_bytes: u64,
}

/// `disk_free` before the first successful check.
const DISK_FREE_UNKNOWN: u64 = u64::MAX;

#[derive(Debug)]
pub struct MemoryGauge {
    used: AtomicI64,
    high_watermark: i64,
    alarm: AtomicBool,
    /// The store cannot write.
    disk_write_alarm: AtomicBool,
    /// Free disk space is under `disk_free_limit`.
    disk_free_alarm: AtomicBool,
    disk_free: AtomicU64,
    disk_free_limit: u64,
    blocked: watch::Sender<bool>,
}

impl MemoryGauge {
    pub fn new(high_watermark_bytes: u64) -> Self {
        MemoryGauge {
            used: AtomicI64::new(0),
            high_watermark: i64::try_from(high_watermark_bytes).unwrap_or(i64::MAX),
            alarm: AtomicBool::new(false),
            disk_write_alarm: AtomicBool::new(false),
            disk_free_alarm: AtomicBool::new(false),
            disk_free: AtomicU64::new(DISK_FREE_UNKNOWN),
            disk_free_limit: 0,
            blocked: watch::Sender::new(false),
        }
    }

    /// The free disk space below which publishers are blocked (0, the default here, never
    /// blocks them).
    #[must_use]
    pub fn with_disk_free_limit(mut self, bytes: u64) -> Self {
        self.disk_free_limit = bytes;
        self
    }

    /// Adds (or with a negative delta, removes) accounted bytes.
    pub fn adjust(&self, delta: i64) {
        if delta == 0 {
            return;
        }
        let used = self.used.fetch_add(delta, Ordering::Relaxed) + delta;
        let over = used > self.high_watermark;
        // Only the transition touches the watch channel, so the common case is one atomic add.
        if self.alarm.load(Ordering::Relaxed) != over
            && self
                .alarm
                .compare_exchange(!over, over, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.publish();
            if over {
                tracing::warn!(
                    used,
                    high_watermark = self.high_watermark,
                    "memory alarm set"
                );
            } else {
                tracing::info!(used, "memory alarm cleared");
            }
        }
    }

    /// Set while the store cannot write. Clearing it leaves a free-space alarm in place.
    pub fn set_disk_alarm(&self, on: bool) {
        self.disk_write_alarm.store(on, Ordering::Release);
        self.publish();
    }

    /// Records a measurement of the data directory's free space; the free-space alarm is on
    /// while it is under the limit. Runs on the disk watch task.
    pub fn set_disk_free(&self, free_bytes: u64) {
        self.disk_free.store(free_bytes, Ordering::Relaxed);
        let low = free_bytes < self.disk_free_limit;
        if self.disk_free_alarm.swap(low, Ordering::AcqRel) == low {
            return;
        }
        self.publish();
        if low {
            tracing::warn!(
                free_bytes,
                limit = self.disk_free_limit,
                "free disk space alarm set"
            );
        } else {
            tracing::info!(free_bytes, "free disk space alarm cleared");
        }
    }

    fn disk_alarm(&self) -> bool {
        self.disk_write_alarm.load(Ordering::Acquire)
            || self.disk_free_alarm.load(Ordering::Acquire)
    }

    fn publish(&self) {
        let blocked = self.alarm.load(Ordering::Acquire) || self.disk_alarm();
        self.blocked.send_if_modified(|current| {
            let changed = *current != blocked;
            *current = blocked;
            changed
        });
    }

    /// The alarms and the bytes accounted, as of now.
    pub fn alarms(&self) -> Alarms {
        Alarms {
            memory: self.alarm.load(Ordering::Acquire),
            disk: self.disk_alarm(),
            used_bytes: u64::try_from(self.used.load(Ordering::Relaxed)).unwrap_or(0),
            high_watermark_bytes: u64::try_from(self.high_watermark).unwrap_or(0),
            disk_free_bytes: Some(self.disk_free.load(Ordering::Relaxed))
                .filter(|&free| free != DISK_FREE_UNKNOWN),
            disk_free_limit_bytes: self.disk_free_limit,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.blocked.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_follows_the_watermark() {
        let gauge = MemoryGauge::new(100);
        let alarm = gauge.subscribe();
        gauge.adjust(60);
        assert!(!*alarm.borrow());
        gauge.adjust(60);
        assert!(*alarm.borrow());
        gauge.adjust(-30);
        assert!(!*alarm.borrow());
    }

    #[test]
    fn the_disk_alarm_blocks_until_both_alarms_clear() {
        let gauge = MemoryGauge::new(100);
        let alarm = gauge.subscribe();
        gauge.set_disk_alarm(true);
        assert!(*alarm.borrow());
        gauge.adjust(200);
        gauge.set_disk_alarm(false);
        assert!(*alarm.borrow(), "memory is still over");
        gauge.adjust(-200);
        assert!(!*alarm.borrow());
    }

    #[test]
    fn free_space_and_write_failures_are_one_disk_alarm_cleared_when_both_clear() {
        let gauge = MemoryGauge::new(100).with_disk_free_limit(1000);
        let alarm = gauge.subscribe();
        assert_eq!(gauge.alarms().disk_free_bytes, None);
        gauge.set_disk_free(999);
        assert!(*alarm.borrow() && gauge.alarms().disk);
        gauge.set_disk_alarm(true);
        gauge.set_disk_alarm(false);
        assert!(gauge.alarms().disk, "free space is still low");
        gauge.set_disk_alarm(true);
        gauge.set_disk_free(1000);
        assert!(*alarm.borrow(), "the store still cannot write");
        gauge.set_disk_alarm(false);
        assert!(!*alarm.borrow() && !gauge.alarms().disk);
        assert_eq!(gauge.alarms().disk_free_bytes, Some(1000));
        assert_eq!(gauge.alarms().disk_free_limit_bytes, 1000);
    }
}
