//! Message rates, RabbitMQ's `*_details.rate` (messages per second): how much each counter
//! grew over the last sampling interval (RabbitMQ's `collect_statistics_interval`, 5 s by
//! default). One task takes the broker's, each vhost's and each queue's totals every interval
//! and keeps the last two samples of each; a listing reads the rate from them and never waits
//! for a sample. A queue deleted and declared again starts from zero, and its first interval
//! reads as rate 0 rather than negative.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::core::Core;
use crate::core::inspect::MessageEvents;

/// What a rate is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Broker,
    Vhost(String),
    Queue { vhost: String, name: String },
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    events: MessageEvents,
}

#[derive(Debug, Default)]
pub struct Rates {
    /// The previous and the latest sample of each subject.
    samples: Mutex<HashMap<Subject, (Option<Sample>, Sample)>>,
}

impl Rates {
    /// Takes one sample of everything; subjects that are gone are forgotten.
    fn sample(&self, core: &Core) {
        let at = Instant::now();
        let mut taken = vec![(Subject::Broker, MessageEvents::default())];
        for view in core.vhost_views() {
            let totals = view.message_totals();
            add(&mut taken[0].1, totals);
            taken.push((Subject::Vhost(view.name().to_owned()), totals));
            for queue in view.queues() {
                let subject = Subject::Queue {
                    vhost: view.name().to_owned(),
                    name: queue.spec.name,
                };
                taken.push((subject, queue.counts.events));
            }
        }
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::with_capacity(taken.len());
        for (subject, events) in taken {
            let previous = samples.remove(&subject).map(|(_, latest)| latest);
            next.insert(subject, (previous, Sample { at, events }));
        }
        *samples = next;
    }

    /// The `message_stats` object: the totals, and their rates over the last interval.
    pub fn message_stats(&self, subject: &Subject, events: MessageEvents) -> Value {
        let [publish, deliver_get, ack] = self.of(subject);
        json!({
            "publish": events.published,
            "publish_details": {"rate": publish},
            "deliver_get": events.delivered,
            "deliver_get_details": {"rate": deliver_get},
            "ack": events.acknowledged,
            "ack_details": {"rate": ack},
        })
    }

    /// Published, delivered and acknowledged per second; zeros until two samples exist.
    fn of(&self, subject: &Subject) -> [f64; 3] {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((Some(before), after)) = samples.get(subject) else {
            return [0.0; 3];
        };
        let seconds = after.at.duration_since(before.at).as_secs_f64();
        if seconds <= 0.0 {
            return [0.0; 3];
        }
        let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
        let (a, b) = (before.events, after.events);
        [
            rate(a.published, b.published),
            rate(a.delivered, b.delivered),
            rate(a.acknowledged, b.acknowledged),
        ]
    }
}

fn add(total: &mut MessageEvents, events: MessageEvents) {
    total.published += events.published;
    total.delivered += events.delivered;
    total.acknowledged += events.acknowledged;
}

/// Samples every `interval` until shutdown. Runs on its own task.
pub fn spawn(
    rates: Arc<Rates>,
    core: Arc<Core>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => rates.sample(&core),
                _ = shutdown.changed() => return,
            }
        }
    })
}
