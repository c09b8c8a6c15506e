//! Configuration: embedded defaults, then a TOML file, then `MQBRIDGE_*` environment variables,
//! then command-line flags; each layer overrides the one before.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

use crate::core::limits;

/// The broker's settings after all layers are merged.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    /// AMQP 0-9-1 port; 0 picks a free port (tests).
    pub amqp_port: u16,
    /// MQTT 3.1/3.1.1/5 port; 0 picks a free port (tests).
    pub mqtt_port: u16,
    /// Largest MQTT packet accepted from a logged-in client, in bytes.
    pub mqtt_max_packet_size: u32,
    /// MQTT clients without a username may connect from loopback as the default user.
    pub mqtt_anonymous: bool,
    /// Longest MQTT keep alive granted, in seconds: a v5 client asking for more (or for none)
    /// is told this one in CONNACK; a 3.x client asking for more is refused (Mosquitto's
    /// `max_keepalive`).
    pub mqtt_max_keep_alive: u16,
    /// Seconds between `$SYS/broker/...` updates (Mosquitto's `sys_interval`).
    pub mqtt_sys_interval: u16,
    /// STOMP 1.0/1.1/1.2 port; 0 picks a free port (tests).
    pub stomp_port: u16,
    /// Largest STOMP frame (headers and body) accepted from a logged-in client, in bytes.
    pub stomp_max_frame_size: u32,
    /// STOMP heart-beat period the broker offers both ways, in milliseconds (0 disables).
    pub stomp_heartbeat_ms: u64,
    /// STOMP clients without a login may connect from loopback as the default user.
    pub stomp_anonymous: bool,
    /// MQTT and STOMP over WebSocket (paths `/ws` and `/mqtt`); 0 picks a free port (tests).
    pub ws_port: u16,
    /// Amazon SQS API over HTTP (AWS JSON 1.0 and Query); 0 picks a free port (tests).
    pub sqs_port: u16,
    /// The management HTTP API (RabbitMQ's paths) and `/metrics`; 0 picks a free port (tests).
    pub management_port: u16,
    /// SigV4 access keys of the SQS API, each acting as a broker user. Empty is dev mode: any
    /// credentials are accepted, from loopback peers only.
    pub aws_access_keys: Vec<AwsAccessKey>,
    /// Browser origins (`https://app.example`) allowed to open a WebSocket; empty allows all.
    pub ws_allowed_origins: Vec<String>,
    /// Largest WebSocket message (and frame) accepted from a client, in bytes.
    pub ws_max_message_size: usize,
    /// PEM certificate chain of the TLS listeners; they start only with a key as well.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates for client certificates: when set, TLS clients must present one
    /// signed by them, and its subject CN logs them in.
    pub tls_client_ca_file: Option<PathBuf>,
    /// AMQP 0-9-1 over TLS; 0 picks a free port (tests).
    pub amqps_port: u16,
    /// MQTT over TLS.
    pub mqtts_port: u16,
    /// STOMP over TLS.
    pub stomps_port: u16,
    /// MQTT and STOMP over WebSocket over TLS.
    pub wss_port: u16,
    pub data_dir: PathBuf,
    /// 0: publishers are told "stored" only after `fdatasync` (the default). N: after the
    /// write to the OS, with an `fdatasync` at least every N milliseconds.
    pub fsync_interval_ms: u64,
    /// Size at which the journal starts a new segment file.
    pub journal_segment_bytes: u64,
    /// The user a fresh data directory starts with (an administrator with every permission
    /// on the default vhost); later starts keep the stored users.
    pub default_user: String,
    pub default_pass: String,
    /// Users who may connect only from loopback addresses.
    pub loopback_users: Vec<String>,
    /// Definitions (RabbitMQ's JSON format) applied at every start, after the stored ones.
    pub definitions_file: Option<PathBuf>,
    /// Heartbeat interval the broker proposes to AMQP clients, in seconds (0 disables).
    pub heartbeat_secs: u16,
    /// Largest AMQP frame the broker accepts and proposes, in bytes.
    pub frame_max: u32,
    /// Most channels per AMQP connection.
    pub channel_max: u16,
    /// Most client connections at once, over all protocols.
    pub max_connections: usize,
    /// Message bytes held in memory above which publishers are blocked.
    pub memory_high_watermark_bytes: u64,
    /// Free bytes on the data directory's filesystem below which publishers are blocked
    /// (RabbitMQ's `disk_free_limit`).
    pub disk_free_limit_bytes: u64,
    /// How long shutdown waits for connections to close before exiting anyway.
    pub shutdown_grace_secs: u64,
    /// Milliseconds between the management API's samples for message rates (RabbitMQ's
    /// `collect_statistics_interval`).
    pub collect_statistics_interval_ms: u64,
    /// How long a write to a client may wait with the socket taking no byte before the
    /// connection is closed as a slow consumer, in milliseconds (RabbitMQ's
    /// `tcp_listen_options.send_timeout` with `send_timeout_close`).
    pub send_timeout_ms: u64,
    /// Most connections at once from one peer IP address, over all listeners; 0 for no limit.
    pub max_connections_per_address: usize,
    /// How long a client has for each of its TLS handshake, its WebSocket upgrade, its
    /// protocol's login and (SQS/SNS, management) each HTTP request head, in milliseconds (RabbitMQ's
    /// `handshake_timeout`).
    pub handshake_timeout_ms: u64,
    /// Queues over all vhosts; a declaration of a new one past it is refused.
    pub max_queues: usize,
    /// Bindings over all vhosts (MQTT, STOMP and SNS subscriptions included).
    pub max_bindings: usize,
    /// Consumers of one queue at once.
    pub max_consumers_per_queue: usize,
    /// Unsettled deliveries per consumer, whatever prefetch it asked for (0 included).
    pub max_unacked_per_consumer: u32,
}

/// Large enough that old segments are few, small enough that reclaiming one is cheap.
const JOURNAL_SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// Mosquitto's `max_keepalive` default: the largest value the protocol can carry.
const MQTT_MAX_KEEP_ALIVE_DEFAULT: u16 = u16::MAX;
/// RabbitMQ's `collect_statistics_interval` default.
const COLLECT_STATISTICS_INTERVAL_MS_DEFAULT: u64 = 5000;
/// Mosquitto's `sys_interval` default.
const MQTT_SYS_INTERVAL_DEFAULT: u16 = 10;
/// RabbitMQ's default heartbeat proposal.
const HEARTBEAT_SECS_DEFAULT: u16 = 60;
/// Bounds what one MQTT client can make us buffer; Mosquitto and RabbitMQ allow more (256 MiB)
/// on request, and so does the config key.
const MQTT_MAX_PACKET_SIZE_DEFAULT: u32 = 16 * 1024 * 1024;
/// Bounds what one STOMP client can make us buffer per frame (RabbitMQ's
/// `stomp.max_frame_size` is 4 MiB; ours matches the MQTT packet limit).
const STOMP_MAX_FRAME_SIZE_DEFAULT: u32 = 16 * 1024 * 1024;
/// The heart-beat we offer both ways, which is a floor: a client asking for slower beats gets
/// them, one asking for faster gets one a second (RabbitMQ follows the client alone; the floor
/// keeps a client from asking for a beat every millisecond).
const STOMP_HEARTBEAT_MS_DEFAULT: u64 = 1_000;
/// As large as the MQTT packets and STOMP frames we accept by default, so that a WebSocket
/// carries whatever the plain ports do.
const WS_MAX_MESSAGE_SIZE_DEFAULT: usize = 16 * 1024 * 1024;
/// RabbitMQ's default `frame_max`: large enough for batching, small enough to interleave.
const FRAME_MAX_DEFAULT: u32 = 131_072;
/// RabbitMQ's default `channel_max`.
const CHANNEL_MAX_DEFAULT: u16 = 2047;
/// A cap that protects file descriptors and memory before the OS limit does.
const MAX_CONNECTIONS_DEFAULT: usize = 65_536;
/// Fraction of physical memory that queued messages may use, as RabbitMQ's
/// `vm_memory_high_watermark` (0.4 of RAM, of which message bodies are the bulk).
const MEMORY_FRACTION_DEFAULT: f64 = 0.4;
/// RabbitMQ's `disk_free_limit` default, 50 MB.
const DISK_FREE_LIMIT_BYTES_DEFAULT: u64 = 50_000_000;
/// Used when physical memory cannot be read.
const MEMORY_FALLBACK_BYTES: u64 = 1 << 30;
/// Long enough for clients to answer connection.close, short enough for service managers.
const SHUTDOWN_GRACE_SECS_DEFAULT: u64 = 5;
/// RabbitMQ's `tcp_listen_options.send_timeout`: long enough for a client paused by a GC or a
/// congested link, short enough that a client that stopped reading loses its deliveries to
/// the other consumers within seconds.
const SEND_TIMEOUT_MS_DEFAULT: u64 = 15_000;
/// Generous for NAT gateways and test runners sharing one address, small against the global
/// `max_connections`, so one host cannot take every slot.
const MAX_CONNECTIONS_PER_ADDRESS_DEFAULT: usize = 4_096;
/// RabbitMQ's `handshake_timeout`.
const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 10_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            amqp_port: 5672,
            mqtt_port: 1883,
            mqtt_max_packet_size: MQTT_MAX_PACKET_SIZE_DEFAULT,
            mqtt_anonymous: true,
            mqtt_max_keep_alive: MQTT_MAX_KEEP_ALIVE_DEFAULT,
            mqtt_sys_interval: MQTT_SYS_INTERVAL_DEFAULT,
            stomp_port: 61613,
            stomp_max_frame_size: STOMP_MAX_FRAME_SIZE_DEFAULT,
            stomp_heartbeat_ms: STOMP_HEARTBEAT_MS_DEFAULT,
            stomp_anonymous: true,
            ws_port: 15675,
            sqs_port: 9324,
            management_port: 15672,
            aws_access_keys: Vec::new(),
            ws_allowed_origins: Vec::new(),
            ws_max_message_size: WS_MAX_MESSAGE_SIZE_DEFAULT,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            amqps_port: 5671,
            mqtts_port: 8883,
            stomps_port: 61614,
            wss_port: 15676,
            data_dir: PathBuf::from("./data"),
            fsync_interval_ms: 0,
            journal_segment_bytes: JOURNAL_SEGMENT_BYTES_DEFAULT,
            default_user: "guest".to_owned(),
            default_pass: "guest".to_owned(),
            loopback_users: vec!["guest".to_owned()],
            definitions_file: None,
            heartbeat_secs: HEARTBEAT_SECS_DEFAULT,
            frame_max: FRAME_MAX_DEFAULT,
            channel_max: CHANNEL_MAX_DEFAULT,
            max_connections: MAX_CONNECTIONS_DEFAULT,
            memory_high_watermark_bytes: default_memory_watermark(),
            disk_free_limit_bytes: DISK_FREE_LIMIT_BYTES_DEFAULT,
            shutdown_grace_secs: SHUTDOWN_GRACE_SECS_DEFAULT,
            collect_statistics_interval_ms: COLLECT_STATISTICS_INTERVAL_MS_DEFAULT,
            send_timeout_ms: SEND_TIMEOUT_MS_DEFAULT,
            max_connections_per_address: MAX_CONNECTIONS_PER_ADDRESS_DEFAULT,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS_DEFAULT,
            max_queues: limits::MAX_QUEUES_DEFAULT,
            max_bindings: limits::MAX_BINDINGS_DEFAULT,
            max_consumers_per_queue: limits::MAX_CONSUMERS_PER_QUEUE_DEFAULT,
            max_unacked_per_consumer: limits::MAX_UNACKED_PER_CONSUMER_DEFAULT,
        }
    }
}

impl Config {
    /// The resource limits the core enforces (their defaults say why they are what they are).
    pub fn limits(&self) -> limits::Limits {
        limits::Limits {
            max_queues: self.max_queues,
            max_bindings: self.max_bindings,
            max_consumers_per_queue: self.max_consumers_per_queue,
            max_unacked_per_consumer: self.max_unacked_per_consumer,
        }
    }
}

fn default_memory_watermark() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
    match total_kib {
        Some(kib) => (kib as f64 * 1024.0 * MEMORY_FRACTION_DEFAULT) as u64,
        None => MEMORY_FALLBACK_BYTES,
    }
}

/// Command line and environment. Every flag is optional so that unset ones fall through to the
/// file and the defaults.
#[derive(Debug, Parser, Default)]
#[command(
    name = "mqbridge",
    version,
    about = "One broker for AMQP, MQTT, STOMP, WebSocket and SQS/SNS"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "MQBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    /// Without a command the broker runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Administers a running broker through its management API.
    Ctl(crate::ctl::Ctl),
}

/// The settable keys, shared by the file (snake_case keys) and the flags/environment.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address every listener binds to.
    #[arg(long, env = "MQBRIDGE_BIND")]
    pub bind: Option<IpAddr>,
    /// AMQP 0-9-1 port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_AMQP_PORT")]
    pub amqp_port: Option<u16>,
    /// MQTT port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_MQTT_PORT")]
    pub mqtt_port: Option<u16>,
    /// Largest MQTT packet from a logged-in client, bytes.
    #[arg(long, env = "MQBRIDGE_MQTT_MAX_PACKET_SIZE")]
    pub mqtt_max_packet_size: Option<u32>,
    /// Let MQTT clients without a username connect from loopback as the default user.
    #[arg(long, env = "MQBRIDGE_MQTT_ANONYMOUS")]
    pub mqtt_anonymous: Option<bool>,
    /// Longest MQTT keep alive granted, seconds.
    #[arg(long, env = "MQBRIDGE_MQTT_MAX_KEEP_ALIVE")]
    pub mqtt_max_keep_alive: Option<u16>,
    /// Seconds between MQTT `$SYS/broker/...` updates.
    #[arg(long, env = "MQBRIDGE_MQTT_SYS_INTERVAL", value_parser = clap::value_parser!(u16).range(1..))]
    pub mqtt_sys_interval: Option<u16>,
    /// STOMP port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_STOMP_PORT")]
    pub stomp_port: Option<u16>,
    /// Largest STOMP frame from a logged-in client, bytes.
    #[arg(long, env = "MQBRIDGE_STOMP_MAX_FRAME_SIZE")]
    pub stomp_max_frame_size: Option<u32>,
    /// STOMP heart-beat offered both ways, milliseconds (0 = none).
    #[arg(long, env = "MQBRIDGE_STOMP_HEARTBEAT_MS")]
    pub stomp_heartbeat_ms: Option<u64>,
    /// Let STOMP clients without a login connect from loopback as the default user.
    #[arg(long, env = "MQBRIDGE_STOMP_ANONYMOUS")]
    pub stomp_anonymous: Option<bool>,
    /// MQTT and STOMP over WebSocket port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_WS_PORT")]
    pub ws_port: Option<u16>,
    /// Amazon SQS API port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_SQS_PORT")]
    pub sqs_port: Option<u16>,
    /// Management HTTP API and /metrics port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_MANAGEMENT_PORT")]
    pub management_port: Option<u16>,
    /// SQS access keys as ACCESS_KEY_ID:SECRET:USER (comma-separated); none = dev mode.
    #[arg(
        long,
        env = "MQBRIDGE_AWS_ACCESS_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub aws_access_keys: Option<Vec<AwsAccessKey>>,
    /// Browser origins allowed to open a WebSocket (comma-separated; empty allows all).
    #[arg(long, env = "MQBRIDGE_WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub ws_allowed_origins: Option<Vec<String>>,
    /// Largest WebSocket message from a client, bytes.
    #[arg(long, env = "MQBRIDGE_WS_MAX_MESSAGE_SIZE")]
    pub ws_max_message_size: Option<usize>,
    /// PEM certificate chain; with --tls-key-file, starts the TLS listeners.
    #[arg(long, env = "MQBRIDGE_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for --tls-cert-file.
    #[arg(long, env = "MQBRIDGE_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates; TLS clients must then present a certificate, whose CN logs them in.
    #[arg(long, env = "MQBRIDGE_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// AMQPS port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_AMQPS_PORT")]
    pub amqps_port: Option<u16>,
    /// MQTTS port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_MQTTS_PORT")]
    pub mqtts_port: Option<u16>,
    /// STOMP over TLS port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_STOMPS_PORT")]
    pub stomps_port: Option<u16>,
    /// WebSocket over TLS port (0 = any free port).
    #[arg(long, env = "MQBRIDGE_WSS_PORT")]
    pub wss_port: Option<u16>,
    /// Directory for the broker's data.
    #[arg(long, env = "MQBRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// 0: confirm publishes after fdatasync; N: after the write, syncing every N ms.
    #[arg(long, env = "MQBRIDGE_FSYNC_INTERVAL_MS")]
    pub fsync_interval_ms: Option<u64>,
    /// Size of a journal segment file, bytes.
    #[arg(long, env = "MQBRIDGE_JOURNAL_SEGMENT_BYTES")]
    pub journal_segment_bytes: Option<u64>,
    /// Name of the user a fresh data directory starts with.
    #[arg(long, env = "MQBRIDGE_DEFAULT_USER")]
    pub default_user: Option<String>,
    /// Password of the user a fresh data directory starts with.
    #[arg(long, env = "MQBRIDGE_DEFAULT_PASS", hide_env_values = true)]
    pub default_pass: Option<String>,
    /// Users allowed to connect only from loopback (comma-separated; empty for none).
    #[arg(long, env = "MQBRIDGE_LOOPBACK_USERS", value_delimiter = ',')]
    pub loopback_users: Option<Vec<String>>,
    /// Definitions file (RabbitMQ's JSON export format) applied at start-up.
    #[arg(long, env = "MQBRIDGE_DEFINITIONS_FILE")]
    pub definitions_file: Option<PathBuf>,
    /// AMQP heartbeat proposed to clients, seconds.
    #[arg(long, env = "MQBRIDGE_HEARTBEAT_SECS")]
    pub heartbeat_secs: Option<u16>,
    /// Largest AMQP frame, bytes.
    #[arg(long, env = "MQBRIDGE_FRAME_MAX")]
    pub frame_max: Option<u32>,
    /// Most channels per AMQP connection.
    #[arg(long, env = "MQBRIDGE_CHANNEL_MAX")]
    pub channel_max: Option<u16>,
    /// Most client connections at once.
    #[arg(long, env = "MQBRIDGE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Queued message bytes above which publishers are blocked.
    #[arg(long, env = "MQBRIDGE_MEMORY_HIGH_WATERMARK_BYTES")]
    pub memory_high_watermark_bytes: Option<u64>,
    /// Free disk space on the data directory's filesystem below which publishers are blocked.
    #[arg(long, env = "MQBRIDGE_DISK_FREE_LIMIT_BYTES")]
    pub disk_free_limit_bytes: Option<u64>,
    /// Seconds shutdown waits for connections to close.
    #[arg(long, env = "MQBRIDGE_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Milliseconds between samples for the management API's message rates.
    #[arg(long, env = "MQBRIDGE_COLLECT_STATISTICS_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(100..))]
    pub collect_statistics_interval_ms: Option<u64>,
    /// Milliseconds a write to a client may wait for the socket before it is closed.
    #[arg(long, env = "MQBRIDGE_SEND_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub send_timeout_ms: Option<u64>,
    /// Most connections at once from one IP address (0 = no limit).
    #[arg(long, env = "MQBRIDGE_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Milliseconds a client has for each handshake step (TLS, WebSocket, login).
    #[arg(long, env = "MQBRIDGE_HANDSHAKE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout_ms: Option<u64>,
    /// Most queues over all vhosts.
    #[arg(long, env = "MQBRIDGE_MAX_QUEUES")]
    pub max_queues: Option<usize>,
    /// Most bindings (subscriptions included) over all vhosts.
    #[arg(long, env = "MQBRIDGE_MAX_BINDINGS")]
    pub max_bindings: Option<usize>,
    /// Most consumers of one queue.
    #[arg(long, env = "MQBRIDGE_MAX_CONSUMERS_PER_QUEUE")]
    pub max_consumers_per_queue: Option<usize>,
    /// Most unsettled deliveries per consumer, whatever its prefetch.
    #[arg(long, env = "MQBRIDGE_MAX_UNACKED_PER_CONSUMER", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_unacked_per_consumer: Option<u32>,
}

/// An SQS access key and the broker user it acts as. In TOML:
/// `aws_access_keys = [{ access_key_id = "...", secret_access_key = "...", user = "..." }]`;
/// on the command line and in the environment: `ACCESS_KEY_ID:SECRET:USER`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsAccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub user: String,
}

/// The secret stays out of logs and error messages.
impl std::fmt::Debug for AwsAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsAccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for AwsAccessKey {
    type Err = String;

    /// `ACCESS_KEY_ID:SECRET:USER`. AWS secrets never contain `:`; a user name may.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(secret), Some(user))
                if !id.is_empty() && !secret.is_empty() && !user.is_empty() =>
            {
                Ok(AwsAccessKey {
                    access_key_id: id.to_owned(),
                    secret_access_key: secret.to_owned(),
                    user: user.to_owned(),
                })
            }
            _ => Err("expected ACCESS_KEY_ID:SECRET:USER".to_owned()),
        }
    }
}

impl Settings {
    /// Applies the keys that are set on top of `config`. The macro destructures `Settings`
    /// completely, so a key added to `Settings` but not applied here does not compile. `into`
    /// lets a set key fill an optional one (a file path).
    fn apply(self, config: &mut Config) {
        macro_rules! apply {
            ($($field:ident),* $(,)?) => {
                let Settings { $($field),* } = self;
                $( if let Some(value) = $field { config.$field = value.into(); } )*
            };
        }
        apply!(
            bind,
            amqp_port,
            mqtt_port,
            mqtt_max_packet_size,
            mqtt_anonymous,
            mqtt_max_keep_alive,
            mqtt_sys_interval,
            stomp_port,
            stomp_max_frame_size,
            stomp_heartbeat_ms,
            stomp_anonymous,
            ws_port,
            sqs_port,
            management_port,
            aws_access_keys,
            ws_allowed_origins,
            ws_max_message_size,
            tls_cert_file,
            tls_key_file,
            tls_client_ca_file,
            amqps_port,
            mqtts_port,
            stomps_port,
            wss_port,
            data_dir,
            fsync_interval_ms,
            journal_segment_bytes,
            default_user,
            default_pass,
            loopback_users,
            definitions_file,
            heartbeat_secs,
            frame_max,
            channel_max,
            max_connections,
            memory_high_watermark_bytes,
            disk_free_limit_bytes,
            shutdown_grace_secs,
            collect_statistics_interval_ms,
            send_timeout_ms,
            max_connections_per_address,
            handshake_timeout_ms,
            max_queues,
            max_bindings,
            max_consumers_per_queue,
            max_unacked_per_consumer,
        );
    }
}

impl Config {
    /// Merges defaults, the file named by `--config` (if any), environment and flags.
    pub fn load(cli: Cli) -> anyhow::Result<Config> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
            let file: Settings = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
            file.apply(&mut config);
        }
        cli.settings.apply(&mut config);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a configuration file into a directory that is removed when the guard drops.
    fn config_file(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        (dir, path)
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let (_dir, path) = config_file("mqbridge.toml", "amqp_port = 6000\nheartbeat_secs = 5\n");
        let cli = Cli::parse_from([
            "mqbridge",
            "--config",
            path.to_str().expect("utf-8"),
            "--amqp-port",
            "7000",
        ]);
        let config = Config::load(cli).expect("valid");
        assert_eq!(config.amqp_port, 7000);
        assert_eq!(config.heartbeat_secs, 5);
        assert_eq!(config.frame_max, FRAME_MAX_DEFAULT);
    }

    #[test]
    fn every_protocol_port_flag_is_applied() {
        let cli = Cli::parse_from([
            "mqbridge",
            "--amqp-port",
            "7001",
            "--mqtt-port",
            "7002",
            "--mqtt-max-packet-size",
            "4096",
            "--mqtt-anonymous",
            "false",
            "--stomp-port",
            "7003",
            "--stomp-max-frame-size",
            "8192",
            "--stomp-heartbeat-ms",
            "500",
            "--stomp-anonymous",
            "false",
            "--sqs-port",
            "7004",
            "--management-port",
            "7005",
        ]);
        let config = Config::load(cli).expect("valid");
        assert_eq!((config.amqp_port, config.mqtt_port), (7001, 7002));
        assert_eq!(config.mqtt_max_packet_size, 4096);
        assert!(!config.mqtt_anonymous);
        assert_eq!(config.stomp_port, 7003);
        assert_eq!(config.stomp_max_frame_size, 8192);
        assert_eq!(config.stomp_heartbeat_ms, 500);
        assert!(!config.stomp_anonymous);
        assert_eq!(config.sqs_port, 7004);
        assert_eq!(config.management_port, 7005);
    }

    #[test]
    fn websocket_and_tls_keys_come_from_the_file_and_flags() {
        let file = "tls_cert_file = \"/etc/mqbridge/cert.pem\"\nws_allowed_origins = [\"https://a\"]\n\
                    wss_port = 9443\n";
        let (_dir, path) = config_file("tls.toml", file);
        let cli = Cli::parse_from([
            "mqbridge",
            "--config",
            path.to_str().expect("utf-8"),
            "--ws-allowed-origins",
            "https://b,https://c",
            "--tls-key-file",
            "/etc/mqbridge/key.pem",
        ]);
        let config = Config::load(cli).expect("valid");
        assert_eq!(
            config.tls_cert_file,
            Some(PathBuf::from("/etc/mqbridge/cert.pem"))
        );
        assert_eq!(
            config.tls_key_file,
            Some(PathBuf::from("/etc/mqbridge/key.pem"))
        );
        assert_eq!(config.tls_client_ca_file, None);
        assert_eq!(config.ws_allowed_origins, ["https://b", "https://c"]);
        assert_eq!((config.ws_port, config.wss_port), (15675, 9443));
        assert_eq!(config.sqs_port, 9324);
        assert_eq!(
            (config.amqps_port, config.mqtts_port, config.stomps_port),
            (5671, 8883, 61614)
        );
    }

    #[test]
    fn aws_access_keys_come_from_the_file_or_the_flag() {
        let file = "aws_access_keys = [{ access_key_id = \"AKIDFILE\", \
                    secret_access_key = \"s3cr/t+\", user = \"guest\" }]\n";
        let (_dir, path) = config_file("aws.toml", file);
        let cli = Cli::parse_from(["mqbridge", "--config", path.to_str().expect("utf-8")]);
        let config = Config::load(cli).expect("valid");
        let key = |id: &str, secret: &str, user: &str| AwsAccessKey {
            access_key_id: id.to_owned(),
            secret_access_key: secret.to_owned(),
            user: user.to_owned(),
        };
        assert_eq!(
            config.aws_access_keys,
            [key("AKIDFILE", "s3cr/t+", "guest")]
        );
        assert!(
            !format!("{config:?}").contains("s3cr/t+"),
            "secrets stay out of Debug"
        );

        let cli = Cli::parse_from([
            "mqbridge",
            "--config",
            path.to_str().expect("utf-8"),
            "--aws-access-keys",
            "AKID1:one:guest,AKID2:two:app:x",
        ]);
        let config = Config::load(cli).expect("valid");
        assert_eq!(
            config.aws_access_keys,
            [key("AKID1", "one", "guest"), key("AKID2", "two", "app:x")]
        );
        assert!(
            Config::default().aws_access_keys.is_empty(),
            "dev mode by default"
        );
        let bad = Cli::try_parse_from(["mqbridge", "--aws-access-keys", "AKID:secret"]);
        assert!(bad.is_err());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let (_dir, path) = config_file("bad.toml", "amqp_prot = 1\n");
        let cli = Cli::parse_from(["mqbridge", "--config", path.to_str().expect("utf-8")]);
        assert!(Config::load(cli).is_err());
    }
}
