//! `sqs-send`: K clients, each sending single SendMessage requests one after another to a
//! fresh queue that nobody reads. The figure is answered requests (= messages stored) per
//! second; with one request outstanding per client it is K divided by the mean latency.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::client::{Action, Endpoint, SqsConnection};
use super::wire::{self, Template};
use super::{Limit, Queue, SqsArgs, SqsMeter, measure};
use crate::scenario::{ClientTask, StopSignal, join_all};

/// Arguments of the `sqs-send` scenario.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub common: SqsArgs,
    /// Client tasks, each with its own connection and one request outstanding.
    #[arg(long, default_value_t = 8)]
    pub clients: u32,
    /// Label printed as `scenario=` in the RESULT line.
    #[arg(long, default_value = "sqs-send")]
    pub scenario: String,
}

/// Runs `sqs-send` and prints progress and the `RESULT` line.
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    args.common.check()?;
    let endpoint = Endpoint::parse(&args.common.endpoint)?;
    let meter = Arc::new(SqsMeter::default());
    let queue = Queue::create(&endpoint, &meter).await?;
    eprintln!(
        "{}: {} clients x SendMessage({} B)",
        queue.url, args.clients, args.common.size
    );
    let template = Template::send_one(&queue.url, args.common.size);
    let (stop_clients, stop) = watch::channel(false);
    let clients: Vec<ClientTask> = (0..args.clients)
        .map(|index| {
            let connection = SqsConnection::new(endpoint.clone());
            let client = send(
                index,
                connection,
                template.clone(),
                meter.clone(),
                stop.clone(),
            );
            tokio::spawn(client)
        })
        .collect();
    tokio::time::sleep(args.common.warmup).await;
    let limit = Limit::Duration(args.common.duration);
    let failed = || clients.iter().any(|task| task.is_finished());
    let measured = measure(&meter, limit, args.common.broker_pid, failed).await;
    let _ = stop_clients.send(true);
    let stopped = join_all(clients, "client").await;
    let deleted_queue = queue.delete(&endpoint, &meter).await;
    let window = measured?;
    println!(
        "RESULT scenario={} endpoint={} clients={} size={} {} sent_total={} {}",
        args.scenario,
        args.common.endpoint,
        args.clients,
        args.common.size,
        window.rate_fields(),
        meter.sent.get(),
        window.cpu_fields(),
    );
    stopped?;
    deleted_queue
}

/// One client: a SendMessage at a time until stopped.
async fn send(
    index: u32,
    mut connection: SqsConnection,
    template: Template,
    meter: Arc<SqsMeter>,
    stop: StopSignal,
) -> anyhow::Result<()> {
    let mut sequence = 0;
    while !*stop.borrow() {
        let body = template.render(wire::message_id(index, sequence));
        let answer = connection
            .call(Action::SendMessage, body, Duration::ZERO, &meter)
            .await?;
        wire::message_id_of_answer(&answer).context("SendMessage answer")?;
        sequence += 1;
        meter.sent.add(1);
    }
    Ok(())
}
