//! The flow clock: how long the broker held the flood's publishers blocked.
//!
//! Each publisher's confirm reader reports the broker's `connection.blocked` and
//! `connection.unblocked` (RabbitMQ's extension, announced by the client's `connection.blocked`
//! capability). The clock counts the time at least one publisher was blocked, so overlapping
//! blocks of several publishers count once. A `std::sync::Mutex` guards it; it is locked once
//! per notification, never across an `.await`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct FlowState {
    /// Publishers blocked right now.
    blocked: usize,
    /// When `blocked` last went from 0 to 1.
    since: Option<Instant>,
    /// Closed intervals with at least one publisher blocked.
    total: Duration,
    /// `connection.blocked` notifications received, over all publishers.
    events: u64,
}

/// Shared by every publisher of the flood.
#[derive(Debug, Default)]
pub struct FlowClock {
    state: Mutex<FlowState>,
}

impl FlowClock {
    /// One publisher was told it is blocked.
    pub fn blocked(&self) {
        let mut state = self.lock();
        if state.blocked == 0 {
            state.since = Some(Instant::now());
        }
        state.blocked += 1;
        state.events += 1;
    }

    /// One publisher that was blocked is unblocked (or has gone).
    pub fn unblocked(&self) {
        let mut state = self.lock();
        state.blocked = state.blocked.saturating_sub(1);
        if state.blocked == 0
            && let Some(since) = state.since.take()
        {
            state.total += since.elapsed();
        }
    }

    /// Time with at least one publisher blocked, up to now.
    pub fn blocked_time(&self) -> Duration {
        let state = self.lock();
        state.total + state.since.map_or(Duration::ZERO, |since| since.elapsed())
    }

    pub fn is_blocked(&self) -> bool {
        self.lock().blocked > 0
    }

    pub fn events(&self) -> u64 {
        self.lock().events
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlowState> {
        // A panic elsewhere cannot leave the counts half-updated; keep counting.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_blocks_count_once() {
        let clock = FlowClock::default();
        assert!(!clock.is_blocked());
        clock.blocked();
        clock.blocked();
        clock.unblocked();
        assert!(clock.is_blocked(), "one publisher is still blocked");
        let while_blocked = clock.blocked_time();
        clock.unblocked();
        assert!(!clock.is_blocked());
        let after = clock.blocked_time();
        assert!(after >= while_blocked);
        assert_eq!(
            clock.blocked_time(),
            after,
            "the clock stops when nobody is blocked"
        );
        assert_eq!(clock.events(), 2);
    }
}
