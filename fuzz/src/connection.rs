//! Whole connections against the real broker: the input is everything a client sends on one
//! connection to one listener of an in-process broker (real core, real journal in a temporary
//! directory), started once per fuzzing process.
//!
//! The broker runs on a current-thread tokio runtime, on its own thread with a tokio worker's
//! stack, so one input runs from start to end without the broker's tasks racing it; its queue
//! tasks and services carry on between inputs whenever the runtime runs again. State (queues,
//! retained messages, sessions) accumulates across inputs, as it would across clients, so a
//! crash may need the inputs before it: when an artifact does not reproduce alone, rerun the
//! corpus that produced it.
//!
//! Each input is bounded in time: the client writes the input in pieces, giving the broker's
//! tasks turns in between and at the end, half-closes, and reads until the broker closes;
//! after [`INPUT_TIME_MAX`] the connection's task is dropped, as if the client vanished. A
//! connection that outlives the bound is not a crash by itself (a broker may wait on a queue's
//! inbox), but it is counted and reported on stderr. A broker task that never yields is
//! caught by libFuzzer's own `-timeout` instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::Duration;

use mqbridge::Config;
use mqbridge::server::fuzzing::{InMemoryBroker, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::stack::BROKER_STACK_SIZE;

/// How long one input's connection may take, from the first octet written to the broker
/// closing its side.
pub const INPUT_TIME_MAX: Duration = Duration::from_secs(2);

/// The in-memory pipe's buffer each way. Smaller than most inputs, so that the broker also
/// sees frames split across reads.
const PIPE_BUFFER: usize = 4096;

/// The input is written in pieces of this size, with the broker given turns in between: a
/// frame split across reads, and a consumer's deliveries arriving between its commands.
const WRITE_CHUNK: usize = 64;

/// Turns the broker gets after each piece of input, and after the last before the client
/// ends the connection.
const SETTLE_BETWEEN_CHUNKS: usize = 8;
const SETTLE_BEFORE_END: usize = 64;

/// Where the client seems to connect from: loopback, so the default `guest` login is allowed.
const PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50000);

/// Set (to anything) to see on stderr what the broker answers; for checking that a seed
/// reaches the state it was written for: `MQBRIDGE_FUZZ_SHOW=1 fuzz/target/.../amqp_connection
/// fuzz/corpus/amqp_connection/seed-publish-get`.
const SHOW_VARIABLE: &str = "MQBRIDGE_FUZZ_SHOW";

/// Report a connection that outlived [`INPUT_TIME_MAX`] once per this many.
const OVERTIME_REPORT_EVERY: u64 = 100;

/// One input for the broker thread.
struct Job {
    listener: Listener,
    input: Vec<u8>,
    ending: Ending,
    done: mpsc::SyncSender<()>,
}

static JOBS: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
static OVERTIME: AtomicU64 = AtomicU64::new(0);

/// The broker's data directory: a fresh one per process under the temporary directory
/// (`TMPDIR`; `fuzz/smoke` points it at memory and removes it afterwards).
fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mqbridge-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The broker thread, started with the first input: it has a tokio worker's stack, so that
/// the broker's recursion is bounded here as in production (see [`crate::stack`]).
fn jobs() -> &'static Mutex<mpsc::Sender<Job>> {
    JOBS.get_or_init(|| {
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("broker".to_owned())
            .stack_size(BROKER_STACK_SIZE)
            .spawn(move || serve_jobs(&receiver))
            .expect("the broker thread starts");
        Mutex::new(sender)
    })
}

fn serve_jobs(jobs: &mpsc::Receiver<Job>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let config = Config {
        data_dir: data_dir(),
        // No timers that outlive an input: heart-beats would only add idle wake-ups.
        heartbeat_secs: 0,
        stomp_heartbeat_ms: 0,
        ..Config::default()
    };
    let broker = {
        let _entered = runtime.enter();
        Arc::new(InMemoryBroker::start(&config).expect("the in-memory broker starts"))
    };
    for job in jobs {
        runtime.block_on(exchange(&broker, job.listener, &job.input, job.ending));
        let _ = job.done.send(());
    }
}

/// Feeds `input` to `listener` as one client connection, half-closes it, and waits (bounded)
/// for the broker to finish with it.
pub fn run(listener: Listener, input: &[u8]) {
    run_ending(listener, input, Ending::HalfClose);
}

/// How the client ends its side of a connection once the input is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Shut down writing at once: the broker reads the end of the stream after the input.
    HalfClose,
    /// Keep writing open until the broker closes (an HTTP request with `Connection: close`),
    /// so that a server which drops in-flight requests on a half-close still answers.
    WaitForServer,
}

/// [`run`], with the client's [`Ending`].
pub fn run_ending(listener: Listener, input: &[u8], ending: Ending) {
    let (done, finished) = mpsc::sync_channel(1);
    let job = Job {
        listener,
        input: input.to_vec(),
        ending,
        done,
    };
    let sent = jobs()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job);
    sent.expect("the broker thread takes inputs");
    finished
        .recv()
        .expect("the broker thread finishes each input");
}

/// One connection, on the broker thread.
async fn exchange(broker: &Arc<InMemoryBroker>, listener: Listener, input: &[u8], ending: Ending) {
    let (client, server) = tokio::io::duplex(PIPE_BUFFER);
    let serving = {
        let broker = Arc::clone(broker);
        tokio::spawn(async move { broker.serve(listener, server, PEER).await })
    };
    let abort = serving.abort_handle();
    let done = async {
        talk(client, input, ending).await;
        serving.await
    };
    match tokio::time::timeout(INPUT_TIME_MAX, done).await {
        Ok(Ok(())) => {}
        // A panic has already aborted the process through libfuzzer-sys's hook.
        Ok(Err(error)) => panic!("the connection task failed: {error}"),
        Err(_) => {
            abort.abort();
            report_overtime();
        }
    }
}

/// Writes `input` and ends as told, while reading (and dropping) whatever the broker sends,
/// until it closes.
async fn talk(client: DuplexStream, input: &[u8], ending: Ending) {
    let (mut reading, mut writing) = tokio::io::split(client);
    let write = async {
        for chunk in input.chunks(WRITE_CHUNK) {
            // The broker may close before it has read everything; that is its right.
            if writing.write_all(chunk).await.is_err() {
                return;
            }
            settle(SETTLE_BETWEEN_CHUNKS).await;
        }
        settle(SETTLE_BEFORE_END).await;
        if ending == Ending::HalfClose {
            let _ = writing.shutdown().await;
        }
    };
    let read = async {
        let show = std::env::var_os(SHOW_VARIABLE).is_some();
        let mut sink = vec![0; PIPE_BUFFER];
        while let Ok(n @ 1..) = reading.read(&mut sink).await {
            if show {
                eprintln!("broker: {}", sink[..n].escape_ascii());
            }
        }
    };
    tokio::join!(write, read);
}

/// Lets the broker's other tasks (queues, services, the connection's own) run `turns` times,
/// so that deliveries, confirms and acknowledgements arrive while the connection is still
/// open, as they would for a client that is not in a hurry. No clock is involved, so runs
/// stay fast and repeatable.
async fn settle(turns: usize) {
    for _ in 0..turns {
        tokio::task::yield_now().await;
    }
}

fn report_overtime() {
    let count = OVERTIME.fetch_add(1, Ordering::Relaxed) + 1;
    if count % OVERTIME_REPORT_EVERY == 1 {
        eprintln!("mqbridge-fuzz: {count} connection(s) outlived {INPUT_TIME_MAX:?} so far");
    }
}
