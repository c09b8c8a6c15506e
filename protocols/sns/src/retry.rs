//! HTTP delivery retries, by the `healthyRetryPolicy` of a DeliveryPolicy: the subscription's
//! own, else the topic's `http.defaultHealthyRetryPolicy`, else AWS's defaults (3 retries, 20 s
//! apart).
//!
//! ```json
//! {"healthyRetryPolicy": {"numRetries": 3, "numNoDelayRetries": 0, "minDelayTarget": 20,
//!                         "maxDelayTarget": 20, "backoffFunction": "linear"}}
//! ```
//! After the no-delay retries, delays grow from `minDelayTarget` to `maxDelayTarget` seconds,
//! linearly (the other backoff functions are read as linear).

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub no_delay_retries: u32,
    pub min_delay_secs: u64,
    pub max_delay_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            no_delay_retries: 0,
            min_delay_secs: 20,
            max_delay_secs: 20,
        }
    }
}

/// AWS's bound on numRetries for HTTP endpoints.
const RETRIES_MAX: u64 = 100;
/// AWS's bound on the delay targets, in seconds.
const DELAY_MAX_SECS: u64 = 3600;

impl RetryPolicy {
    pub fn of(subscription: Option<&str>, topic: Option<&str>) -> Self {
        let parse = |text: Option<&str>| text.and_then(|t| serde_json::from_str::<Value>(t).ok());
        let chosen = parse(subscription)
            .and_then(|p| p.get("healthyRetryPolicy").cloned())
            .or_else(|| {
                parse(topic).and_then(|p| p.get("http")?.get("defaultHealthyRetryPolicy").cloned())
            });
        chosen.map_or_else(Self::default, |p| Self::from_json(&p))
    }

    fn from_json(policy: &Value) -> Self {
        let defaults = Self::default();
        let number = |name: &str, default: u64, max: u64| {
            policy
                .get(name)
                .and_then(Value::as_u64)
                .map_or(default, |n| n.min(max))
        };
        let min = number("minDelayTarget", defaults.min_delay_secs, DELAY_MAX_SECS);
        RetryPolicy {
            retries: u32::try_from(number("numRetries", 3, RETRIES_MAX)).unwrap_or(3),
            no_delay_retries: u32::try_from(number("numNoDelayRetries", 0, RETRIES_MAX))
                .unwrap_or(0),
            min_delay_secs: min,
            max_delay_secs: number("maxDelayTarget", defaults.max_delay_secs, DELAY_MAX_SECS)
                .max(min),
        }
    }

    /// The wait before attempt `attempt` (0 is the first try, which never waits).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        if attempt == 0 || attempt <= self.no_delay_retries {
            return Duration::ZERO;
        }
        let delayed = self.retries.saturating_sub(self.no_delay_retries).max(1);
        let step = attempt - self.no_delay_retries - 1;
        let spread = self.max_delay_secs - self.min_delay_secs;
        let secs = if delayed <= 1 {
            self.min_delay_secs
        } else {
            self.min_delay_secs + spread * u64::from(step) / u64::from(delayed - 1)
        };
        Duration::from_secs(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_linearly_after_the_immediate_retries() {
        let policy = RetryPolicy::of(
            Some(
                r#"{"healthyRetryPolicy": {"numRetries": 4, "numNoDelayRetries": 1,
                     "minDelayTarget": 1, "maxDelayTarget": 5}}"#,
            ),
            None,
        );
        let delays: Vec<u64> = (0..=4).map(|a| policy.delay_before(a).as_secs()).collect();
        assert_eq!(delays, [0, 0, 1, 3, 5]);
    }

    #[test]
    fn the_topic_policy_applies_when_the_subscription_has_none() {
        let topic = r#"{"http": {"defaultHealthyRetryPolicy": {"numRetries": 1, "minDelayTarget": 2, "maxDelayTarget": 2}}}"#;
        let policy = RetryPolicy::of(None, Some(topic));
        assert_eq!(policy.retries, 1);
        assert_eq!(policy.delay_before(1), Duration::from_secs(2));
        assert_eq!(
            RetryPolicy::of(Some("not json"), None),
            RetryPolicy::default()
        );
    }
}
