//! The resource alarms: message bytes held by all queues against a high watermark, and the
//! store's disk alarm (a journal write failing, e.g. a full disk). Either blocks publishers on
//! every protocol (AMQP `connection.blocked`) while consumers drain; clearing both releases
//! them. Queues report memory once per batch, not per message.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::watch;

/// The resource alarms at one moment (management, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarms {
    /// Queued message bytes are over the high watermark.
    pub memory: bool,
    /// The store cannot write.
    pub disk: bool,
    pub used_bytes: u64,
    pub high_watermark_bytes: u64,
}

#[derive(Debug)]
pub struct MemoryGauge {
    used: AtomicI64,
    high_watermark: i64,
    alarm: AtomicBool,
    disk_alarm: AtomicBool,
    blocked: watch::Sender<bool>,
}

impl MemoryGauge {
    pub fn new(high_watermark_bytes: u64) -> Self {
        MemoryGauge {
            used: AtomicI64::new(0),
            high_watermark: i64::try_from(high_watermark_bytes).unwrap_or(i64::MAX),
            alarm: AtomicBool::new(false),
            disk_alarm: AtomicBool::new(false),
            blocked: watch::Sender::new(false),
        }
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

    /// Set while the store cannot write.
    pub fn set_disk_alarm(&self, on: bool) {
        self.disk_alarm.store(on, Ordering::Release);
        self.publish();
    }

    fn publish(&self) {
        let blocked = self.alarm.load(Ordering::Acquire) || self.disk_alarm.load(Ordering::Acquire);
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
            disk: self.disk_alarm.load(Ordering::Acquire),
            used_bytes: u64::try_from(self.used.load(Ordering::Relaxed)).unwrap_or(0),
            high_watermark_bytes: u64::try_from(self.high_watermark).unwrap_or(0),
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
}
