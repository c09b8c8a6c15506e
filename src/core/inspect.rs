//! What the management API and the metrics may read of the core: the vhosts, snapshots of
//! their definitions with each queue's counters, and the resource alarms. Everything here is
//! a copy; nothing holds a lock after it returns. Changes go through the `VirtualHost` trait,
//! like any protocol's, never through here.

use std::sync::{Arc, PoisonError};

use mqbridge_broker_api::{BindingSpec, ConnectionId, ExchangeSpec, QueueSpec};

use super::Core;
pub use super::memory::Alarms;
use super::policy::PolicyRecord;
pub use super::queue::{ConsumerInfo, MessageEvents, QueueCounts};
use super::vhost::VHost;

/// A queue as listed: its declaration, its exclusive owner, its counters.
#[derive(Debug, Clone)]
pub struct QueueSnapshot {
    pub spec: QueueSpec,
    /// The connection an exclusive queue belongs to.
    pub owner: Option<ConnectionId>,
    pub counts: QueueCounts,
    /// The policy that applies to it.
    pub policy: Option<String>,
}

/// Read access to one vhost.
#[derive(Debug, Clone)]
pub struct VHostView(Arc<VHost>);

impl VHostView {
    pub fn name(&self) -> &str {
        mqbridge_broker_api::VirtualHost::name(&*self.0)
    }

    pub fn queues(&self) -> Vec<QueueSnapshot> {
        self.0.queue_snapshots()
    }

    pub fn queue(&self, name: &str) -> Option<QueueSnapshot> {
        self.0.queue_snapshot(name)
    }

    pub fn exchanges(&self) -> Vec<ExchangeSpec> {
        self.0.exchange_specs()
    }

    pub fn exchange(&self, name: &str) -> Option<ExchangeSpec> {
        self.0.exchange_spec(name)
    }

    pub fn bindings(&self) -> Vec<BindingSpec> {
        self.0.binding_specs()
    }

    pub fn message_totals(&self) -> MessageEvents {
        self.0.message_totals()
    }

    /// Every queue's consumers, by queue name (asks each queue with consumers).
    pub async fn consumers(&self) -> Vec<(String, ConsumerInfo)> {
        self.0.consumers().await
    }

    pub fn policies(&self) -> Vec<PolicyRecord> {
        self.0.policy_records()
    }
}

impl Core {
    /// Every vhost, by name.
    pub fn vhost_views(&self) -> Vec<VHostView> {
        let vhosts = self.vhosts.read().unwrap_or_else(PoisonError::into_inner);
        let mut views: Vec<VHostView> = vhosts
            .values()
            .map(|(_, v)| VHostView(Arc::clone(v)))
            .collect();
        views.sort_by(|a, b| a.name().cmp(b.name()));
        views
    }

    pub fn vhost_view(&self, name: &str) -> Option<VHostView> {
        let vhosts = self.vhosts.read().unwrap_or_else(PoisonError::into_inner);
        vhosts.get(name).map(|(_, v)| VHostView(Arc::clone(v)))
    }

    /// Which resource alarms are on.
    pub fn alarms(&self) -> Alarms {
        self.gauge.alarms()
    }
}
