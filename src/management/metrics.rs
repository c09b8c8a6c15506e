//! Prometheus text format (version 0.0.4), in RabbitMQ's metric names where RabbitMQ has one.
//!
//! - `/metrics`: broker-wide figures, as RabbitMQ's aggregated endpoint (port 15692 there; on
//!   the management port here): connections (and ours per protocol), queues, consumers,
//!   messages ready and unacknowledged, message totals, alarms, resident memory, journal
//!   syncs and bytes.
//! - `/metrics/detailed`: one sample per queue, labelled `vhost` and `queue`, under RabbitMQ's
//!   `rabbitmq_detailed_` names. Separate, as there, because its size grows with the queues.
//!
//! Queue message totals are broker-wide: queues count what they accept, deliver and have
//! acknowledged, and do not know which protocol a publisher or consumer speaks. The
//! connections count by protocol what their clients published, were sent and acknowledged
//! (`mqbridge_protocol_messages_*_total`: AMQP, MQTT, STOMP, the WebSocket listener's, and
//! SQS's requests; SNS requests are not counted there).

use std::collections::BTreeMap;
use std::fmt::Write;

use mqbridge_broker_api::MessageCounts;

use super::Management;
use super::http::{self, ApiError, HttpResponse};
use super::overview::Totals;
use crate::server::registry::{ConnectionInfo, protocol_of};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn render(management: &Management, path: &[String]) -> Result<HttpResponse, ApiError> {
    let mut out = String::new();
    match path {
        [] => aggregated(management, &mut out),
        [detailed] if detailed == "detailed" => per_queue(management, &mut out),
        _ => return Err(ApiError::NotFound),
    }
    Ok(http::text(CONTENT_TYPE, out))
}

/// Writes one metric family: its HELP, TYPE and samples (label text, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help, &[(String::new(), value)]);
}

fn aggregated(management: &Management, out: &mut String) {
    let connections = management.registry.list();
    single(
        out,
        "rabbitmq_connections",
        "gauge",
        "Connections currently open",
        connections.len() as u64,
    );
    let channels = connections
        .iter()
        .map(|c| c.report.channels().len())
        .sum::<usize>();
    single(
        out,
        "rabbitmq_channels",
        "gauge",
        "AMQP channels currently open",
        channels as u64,
    );
    listener_figures(management, &connections, out);
    let totals = management.registry.message_totals();
    let published: fn(&MessageCounts) -> u64 = |counts| counts.published;
    let delivered: fn(&MessageCounts) -> u64 = |counts| counts.delivered;
    let acknowledged: fn(&MessageCounts) -> u64 = |counts| counts.acknowledged;
    for (name, help, count) in [
        (
            "mqbridge_protocol_messages_published_total",
            "Messages clients published, by protocol",
            published,
        ),
        (
            "mqbridge_protocol_messages_delivered_total",
            "Messages sent to clients, by protocol",
            delivered,
        ),
        (
            "mqbridge_protocol_messages_acknowledged_total",
            "Deliveries clients acknowledged, by protocol",
            acknowledged,
        ),
    ] {
        let samples: Vec<(String, u64)> = totals
            .iter()
            .map(|(protocol, counts)| (format!("{{protocol=\"{protocol}\"}}"), count(counts)))
            .collect();
        family(out, name, "counter", help, &samples);
    }
    for (name, kind, help, value) in figures(management) {
        single(out, name, kind, help, value);
    }
}

/// Open connections by listener, and how many of them are parked.
fn listener_figures(management: &Management, connections: &[ConnectionInfo], out: &mut String) {
    let mut by_listener: BTreeMap<&str, u64> = management
        .listeners
        .iter()
        .map(|&(listener, _)| (listener, 0))
        .collect();
    for connection in connections {
        *by_listener.entry(connection.origin().listener).or_default() += 1;
    }
    let samples: Vec<(String, u64)> = by_listener
        .iter()
        .map(|(listener, count)| {
            let protocol = protocol_of(listener);
            let labels = format!("{{listener=\"{listener}\",protocol=\"{protocol}\"}}");
            (labels, *count)
        })
        .collect();
    let help = "Connections currently open, by listener";
    family(out, "mqbridge_connections", "gauge", help, &samples);
    let parked = connections.iter().filter(|c| c.report.parked()).count();
    let help = "Idle connections waiting without a task of their own (MQTT's parking lot)";
    single(
        out,
        "mqbridge_connections_parked",
        "gauge",
        help,
        parked as u64,
    );
}

/// A broker-wide figure: name, type, help, value.
type Figure = (&'static str, &'static str, &'static str, u64);

/// The broker-wide figures after the connections.
fn figures(management: &Management) -> Vec<Figure> {
    let mut figures = message_figures(&Totals::of(&management.core.vhost_views()));
    figures.extend(resource_figures(management));
    figures.extend(guard_figures(management));
    figures
}

/// What the per-connection guards did (src/server: the send timeout, the per-address cap).
fn guard_figures(management: &Management) -> Vec<Figure> {
    vec![
        (
            "mqbridge_slow_consumer_disconnects_total",
            "counter",
            "Connections closed because the client read nothing for send_timeout_ms",
            management.registry.slow_consumer_disconnects(),
        ),
        (
            "mqbridge_connections_refused_per_address_total",
            "counter",
            "Connections closed at accept: their address had max_connections_per_address open",
            management.registry.refused_per_address(),
        ),
    ]
}

fn message_figures(totals: &Totals) -> Vec<Figure> {
    vec![
        (
            "rabbitmq_queues",
            "gauge",
            "Queues available",
            totals.queues,
        ),
        (
            "rabbitmq_consumers",
            "gauge",
            "Consumers currently connected",
            totals.consumers,
        ),
        (
            "rabbitmq_queue_messages_ready",
            "gauge",
            "Messages ready to be delivered to consumers",
            totals.ready,
        ),
        (
            "rabbitmq_queue_messages_unacked",
            "gauge",
            "Messages delivered to consumers but not yet acknowledged",
            totals.unacknowledged,
        ),
        (
            "rabbitmq_queue_messages",
            "gauge",
            "Sum of ready and unacknowledged messages",
            totals.ready + totals.unacknowledged,
        ),
        (
            "rabbitmq_global_messages_received_total",
            "counter",
            "Messages accepted by queues",
            totals.events.published,
        ),
        (
            "rabbitmq_global_messages_delivered_total",
            "counter",
            "Messages delivered to consumers and get requests",
            totals.events.delivered,
        ),
        (
            "rabbitmq_global_messages_acknowledged_total",
            "counter",
            "Messages acknowledged by consumers",
            totals.events.acknowledged,
        ),
    ]
}

fn resource_figures(management: &Management) -> Vec<Figure> {
    let alarms = management.core.alarms();
    let stats = management.journal.stats();
    let mut figures = vec![
        (
            "rabbitmq_alarms_memory_used_watermark",
            "gauge",
            "1 while the memory alarm is in effect",
            u64::from(alarms.memory),
        ),
        (
            "rabbitmq_alarms_free_disk_space_watermark",
            "gauge",
            "1 while free disk space is under its limit or the store cannot write",
            u64::from(alarms.disk),
        ),
        (
            "rabbitmq_disk_space_available_limit_bytes",
            "gauge",
            "Free disk space below which publishers are blocked",
            alarms.disk_free_limit_bytes,
        ),
        (
            "rabbitmq_resident_memory_limit_bytes",
            "gauge",
            "Queued message bytes above which publishers are blocked",
            alarms.high_watermark_bytes,
        ),
        (
            "mqbridge_queued_message_bytes",
            "gauge",
            "Message bytes held by queues, counted against the limit",
            alarms.used_bytes,
        ),
        (
            "rabbitmq_io_sync_ops_total",
            "counter",
            "fdatasync calls on the journal",
            stats.fsyncs(),
        ),
        (
            "rabbitmq_io_write_bytes_total",
            "counter",
            "Bytes written to the journal",
            stats.bytes_written(),
        ),
    ];
    if let Some(free) = alarms.disk_free_bytes {
        let help = "Free space on the data directory's filesystem";
        figures.push(("rabbitmq_disk_space_available_bytes", "gauge", help, free));
    }
    if let Some(resident) = resident_memory_bytes() {
        let help = "Resident memory of the broker process";
        figures.push((
            "rabbitmq_process_resident_memory_bytes",
            "gauge",
            help,
            resident,
        ));
    }
    figures
}

fn per_queue(management: &Management, out: &mut String) {
    let mut ready = Vec::new();
    let mut unacked = Vec::new();
    let mut consumers = Vec::new();
    let mut published = Vec::new();
    for view in management.core.vhost_views() {
        for queue in view.queues() {
            let labels = format!(
                "{{vhost=\"{}\",queue=\"{}\"}}",
                escape(view.name()),
                escape(&queue.spec.name)
            );
            let counts = queue.counts;
            ready.push((labels.clone(), u64::from(counts.messages_ready)));
            unacked.push((labels.clone(), u64::from(counts.messages_unacknowledged)));
            consumers.push((labels.clone(), u64::from(counts.consumers)));
            published.push((labels, counts.events.published));
        }
    }
    family(
        out,
        "rabbitmq_detailed_queue_messages_ready",
        "gauge",
        "Messages ready to be delivered to consumers",
        &ready,
    );
    family(
        out,
        "rabbitmq_detailed_queue_messages_unacked",
        "gauge",
        "Messages delivered to consumers but not yet acknowledged",
        &unacked,
    );
    family(
        out,
        "rabbitmq_detailed_queue_consumers",
        "gauge",
        "Consumers on a queue",
        &consumers,
    );
    family(
        out,
        "rabbitmq_detailed_queue_messages_published_total",
        "counter",
        "Messages accepted by a queue since it started",
        &published,
    );
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The process's resident set, from `/proc/self/status` (`VmRSS`, in kB); `None` off Linux.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_family_has_help_type_and_samples() {
        let mut out = String::new();
        family(
            &mut out,
            "x_total",
            "counter",
            "Things",
            &[("{a=\"1\"}".to_owned(), 3)],
        );
        assert_eq!(
            out,
            "# HELP x_total Things\n# TYPE x_total counter\nx_total{a=\"1\"} 3\n"
        );
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        assert!(resident_memory_bytes().is_some_and(|bytes| bytes > 0));
    }
}
