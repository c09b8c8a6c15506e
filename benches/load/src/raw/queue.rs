//! The control connection: declares the run's queue before the clients start and deletes it
//! after they stop.
//!
//! Runs on the scenario task, outside the measured window.

use amq_protocol::protocol::{AMQPClass, channel, queue};
use amq_protocol::types::FieldTable;
use anyhow::bail;

use super::connection::Connection;

/// AMQP reply code for "not found", which `queue.delete` may return once auto-delete has
/// already removed the queue.
const REPLY_NOT_FOUND: u16 = 404;

/// A connection used only to declare and delete the benchmark queue.
#[derive(Debug)]
pub struct Control {
    connection: Connection,
}

impl Control {
    /// Opens the control connection.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            connection: Connection::open(url).await?,
        })
    }

    /// Declares the run's queue: not exclusive (other connections consume from it). A
    /// transient queue is auto-deleted when its last consumer goes, so a crashed run leaves
    /// nothing behind; a durable one is not (it may be filled with no consumer at all), and
    /// the caller deletes it.
    pub async fn declare_queue(&mut self, name: &str, durable: bool) -> anyhow::Result<()> {
        let declare = queue::Declare {
            queue: name.into(),
            passive: false,
            durable,
            exclusive: false,
            auto_delete: !durable,
            nowait: false,
            arguments: FieldTable::default(),
        };
        match self
            .connection
            .call(AMQPClass::Queue(queue::AMQPMethod::Declare(declare)))
            .await?
        {
            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)) => Ok(()),
            other => bail!("expected queue.declare-ok, got {other:?}"),
        }
    }

    /// Deletes the queue; a queue already removed by auto-delete counts as deleted.
    pub async fn delete_queue(&mut self, name: &str) -> anyhow::Result<()> {
        let delete = queue::Delete {
            queue: name.into(),
            if_unused: false,
            if_empty: false,
            nowait: false,
        };
        let writer = &mut self.connection.writer;
        writer.push_method(AMQPClass::Queue(queue::AMQPMethod::Delete(delete)))?;
        writer.flush().await?;
        loop {
            // Read raw methods: a channel.close here is an answer, not a failure.
            match self.connection.reader.take()? {
                Some(super::connection::Inbound::Method(_, method)) => match method {
                    AMQPClass::Queue(queue::AMQPMethod::DeleteOk(_)) => return Ok(()),
                    AMQPClass::Channel(channel::AMQPMethod::Close(close))
                        if close.reply_code == REPLY_NOT_FOUND =>
                    {
                        return self.acknowledge_channel_close().await;
                    }
                    other => super::connection::fail_if_closed(&other)?,
                },
                Some(_) => {}
                None => self.connection.reader.fill().await?,
            }
        }
    }

    async fn acknowledge_channel_close(&mut self) -> anyhow::Result<()> {
        let close_ok = channel::AMQPMethod::CloseOk(channel::CloseOk {});
        self.connection
            .writer
            .push_method(AMQPClass::Channel(close_ok))?;
        self.connection.writer.flush().await
    }

    /// Closes the control connection.
    pub async fn close(self) -> anyhow::Result<()> {
        self.connection.close().await
    }
}
