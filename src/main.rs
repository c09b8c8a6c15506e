//! The `mqbridge` binary: load the configuration, start the broker, reload its TLS certificates
//! on SIGHUP, stop it on SIGINT/SIGTERM. `mqbridge ctl ...` instead administers a running
//! broker (src/ctl.rs).

use clap::Parser;
use mqbridge::config::{Cli, Command};
use mqbridge::{Config, RunningServer, Server};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: a message is allocated on the worker that read it
/// and freed on the one that delivered it, which glibc's per-thread arenas handle poorly (about
/// a fifth more CPU per message in the SQS and MQTT benchmarks, docs/BENCHMARKS.md). Version 2
/// returns freed pages to the OS after 10 ms (version 3 waits a second, which lifted the
/// overload benchmark's peak RSS past its limit), and `no_thp` keeps it from asking for
/// transparent huge pages, which added 13 MiB to an idle broker's RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let mut cli = Cli::parse();
    if let Some(Command::Ctl(ctl)) = cli.command.take() {
        return mqbridge::ctl::run(ctl);
    }
    let config = Config::load(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
        wait_for_signal(&server).await?;
        server.shutdown().await;
        Ok(())
    })
}

/// Returns on SIGINT or SIGTERM; reloads the TLS files on each SIGHUP meanwhile (the habit of
/// nginx and Mosquitto, and what certificate renewal tools signal).
async fn wait_for_signal(server: &RunningServer) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            result = tokio::signal::ctrl_c() => return Ok(result?),
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => match server.reload_tls() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded"),
                Err(error) => tracing::error!("SIGHUP: TLS reload failed, keeping the current certificates: {error:#}"),
            },
        }
    }
}
