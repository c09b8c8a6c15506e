//! The memory alarm: message bytes held by all queues, against a high watermark. Crossing it
//! blocks publishers on every protocol (AMQP `connection.blocked`) while consumers drain;
//! falling back under it releases them. Queues report once per batch, not per message.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::watch;

#[derive(Debug)]
pub struct MemoryGauge {
    used: AtomicI64,
    high_watermark: i64,
    alarm: AtomicBool,
    blocked: watch::Sender<bool>,
}

impl MemoryGauge {
    pub fn new(high_watermark_bytes: u64) -> Self {
        MemoryGauge {
            used: AtomicI64::new(0),
            high_watermark: i64::try_from(high_watermark_bytes).unwrap_or(i64::MAX),
            alarm: AtomicBool::new(false),
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
            self.blocked.send_replace(over);
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
}
