//! Deleting a whole vhost: its queues with their messages, then its exchanges, each removal
//! journaled as a single delete would be.

use std::sync::Arc;

use super::VHost;
use crate::core::queue::QueueRef;

impl VHost {
    /// Deletes every queue (stopping its task and cancelling its consumers, exclusive owners
    /// notwithstanding), every policy and every exchange.
    pub async fn tear_down(&self) {
        let queues: Vec<(String, Arc<QueueRef>)> = self
            .read()
            .queues
            .iter()
            .map(|(name, entry)| (name.clone(), Arc::clone(&entry.handle)))
            .collect();
        for (name, handle) in queues {
            // A queue that went away meanwhile is already gone: nothing more to do.
            let _ = handle.delete(false, false).await;
            self.forget_queue(&name, handle.id);
        }
        self.clear_policies();
        let mut definitions = self.write();
        let exchanges: Vec<String> = definitions.exchanges.keys().cloned().collect();
        for name in exchanges {
            definitions.remove_exchange(&name);
        }
    }
}
