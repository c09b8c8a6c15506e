//! A map that remembers each entry for a fixed time (and at most so many entries, oldest
//! forgotten first): SQS's five-minute tables of FIFO deduplication ids and receive attempts.
//! Not synchronised; its owners keep it behind a `std::sync::Mutex`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Recent<V> {
    entries: HashMap<String, (Instant, V)>,
    /// Keys by the time they were written, oldest first, for forgetting.
    order: VecDeque<(Instant, String)>,
    window: Duration,
    capacity: usize,
}

impl<V> Recent<V> {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Recent {
            entries: HashMap::new(),
            order: VecDeque::new(),
            window,
            capacity,
        }
    }

    /// The value written under `key` less than the window ago.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<&V> {
        self.forget_expired(now);
        self.entries.get(key).map(|(_, value)| value)
    }

    /// Writes `value` under `key`, replacing what was there.
    pub fn insert(&mut self, key: String, value: V, now: Instant) {
        self.forget_expired(now);
        while self.entries.len() >= self.capacity && self.forget_oldest() {}
        self.order.push_back((now, key.clone()));
        self.entries.insert(key, (now, value));
    }

    /// Forgets `key` if its value passes `test`.
    pub fn remove_if(&mut self, key: &str, test: impl FnOnce(&V) -> bool) {
        if self.entries.get(key).is_some_and(|(_, value)| test(value)) {
            self.entries.remove(key);
        }
    }

    /// Keeps only the entries whose key passes `keep`.
    pub fn retain_keys(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|key, _| keep(key));
    }

    fn forget_expired(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.window)
        {
            self.forget_oldest();
        }
    }

    /// Forgets the oldest write; `false` when there is none.
    fn forget_oldest(&mut self) -> bool {
        let Some((at, key)) = self.order.pop_front() else {
            return false;
        };
        // A key written again later keeps its newer value.
        if self
            .entries
            .get(&key)
            .is_some_and(|(written, _)| *written == at)
        {
            self.entries.remove(&key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_oldest_make_room() {
        let start = Instant::now();
        let mut recent = Recent::new(Duration::from_secs(10), 2);
        recent.insert("a".into(), 1, start);
        recent.insert("b".into(), 2, start + Duration::from_secs(1));
        recent.insert("c".into(), 3, start + Duration::from_secs(2));
        let now = start + Duration::from_secs(3);
        assert_eq!(recent.get("a", now), None, "forgotten to make room");
        assert_eq!(recent.get("c", now), Some(&3));
        assert_eq!(recent.get("b", start + Duration::from_secs(11)), None);
        assert_eq!(recent.get("c", start + Duration::from_secs(11)), Some(&3));
        recent.remove_if("c", |v| *v == 3);
        assert_eq!(recent.get("c", start + Duration::from_secs(11)), None);
    }
}
