//! Channel modes: transactions (`tx.*`) and publisher confirms (`confirm.select` and the acks
//! that answer it).

use amq_protocol::protocol::{AMQPClass, basic, confirm, tx};
use mqbridge_broker_api::Settlement;

use super::messages::settle_grouped;
use super::{Channel, ConfirmMode, Transaction, server_only};
use crate::connection::{Ctx, Output};
use crate::session::Violation;

impl Channel {
    pub(super) async fn transaction(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        method: tx::AMQPMethod,
    ) -> Result<(), Violation> {
        use tx::AMQPMethod as M;
        let reply = match method {
            M::Select(_) if self.confirm.is_some() => {
                return Err(self.precondition("cannot switch from confirm to tx mode"));
            }
            M::Select(_) => {
                self.tx.get_or_insert_with(Transaction::default);
                M::SelectOk(tx::SelectOk {})
            }
            M::Commit(_) | M::Rollback(_) if self.tx.is_none() => {
                return Err(self.precondition("channel is not transactional"));
            }
            M::Commit(_) => {
                let work = self.tx.replace(Transaction::default()).unwrap_or_default();
                self.commit(ctx, out, work).await?;
                M::CommitOk(tx::CommitOk {})
            }
            M::Rollback(_) => {
                self.restore_settled();
                M::RollbackOk(tx::RollbackOk {})
            }
            _ => return Err(server_only()),
        };
        out.method(self.id, AMQPClass::Tx(reply));
        Ok(())
    }

    pub(super) async fn commit(
        &mut self,
        ctx: &mut Ctx,
        out: &mut Output,
        work: Transaction,
    ) -> Result<(), Violation> {
        let mut result = Ok(());
        for (publish, content) in work.publishes {
            result = result.and(self.publish(ctx, out, publish, content).await);
        }
        for (taken, settlement) in work.settles {
            if settlement == Settlement::Ack {
                ctx.acknowledged(taken.len());
            }
            settle_grouped(taken.into_values().collect(), settlement).await;
        }
        result
    }

    /// Ends the transaction's work undone: its publishes are dropped and the deliveries it
    /// settled are unsettled again.
    pub(super) fn restore_settled(&mut self) {
        let work = self.tx.replace(Transaction::default()).unwrap_or_default();
        for (taken, _) in work.settles {
            self.unacked.extend(taken);
        }
    }

    pub(super) fn confirm_select(
        &mut self,
        out: &mut Output,
        select: confirm::Select,
    ) -> Result<(), Violation> {
        if self.tx.is_some() {
            return Err(self.precondition("cannot switch from tx to confirm mode"));
        }
        self.confirm.get_or_insert_with(ConfirmMode::default);
        if !select.nowait {
            out.method(
                self.id,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }

    /// Writes finished confirms for this channel. Runs of acks below every outstanding sequence
    /// number collapse into one `multiple` ack, which is what keeps confirm traffic small.
    pub fn confirmed(&mut self, out: &mut Output, done: &mut Vec<(u64, bool)>) {
        let Some(mode) = &mut self.confirm else {
            return;
        };
        done.retain(|(seq, _)| mode.outstanding.remove(seq));
        done.sort_unstable();
        let floor = mode.outstanding.first().copied().unwrap_or(u64::MAX);
        let mut pending_multiple: Option<u64> = None;
        for &(seq, accepted) in done.iter() {
            if accepted && seq < floor {
                pending_multiple = Some(seq);
                continue;
            }
            let method = match accepted {
                true => basic::AMQPMethod::Ack(basic::Ack {
                    delivery_tag: seq,
                    multiple: false,
                }),
                false => basic::AMQPMethod::Nack(basic::Nack {
                    delivery_tag: seq,
                    multiple: false,
                    requeue: false,
                }),
            };
            out.method(self.id, AMQPClass::Basic(method));
        }
        if let Some(seq) = pending_multiple {
            let ack = basic::Ack {
                delivery_tag: seq,
                multiple: true,
            };
            out.method(self.id, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)));
        }
    }
}
