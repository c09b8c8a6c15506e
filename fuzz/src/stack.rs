//! The broker's stack size, for targets whose code runs on the broker's tokio workers.
//!
//! The broker parses requests on tokio's worker threads, whose stacks are 2 MiB (tokio's
//! default, which `main.rs` keeps); libFuzzer calls a target on the main thread, with 8 MiB.
//! Recursion that fits the one but not the other would pass here and crash the broker, so
//! these targets run their code on a thread with the broker's stack.

use std::sync::{Mutex, OnceLock, PoisonError, mpsc};

/// Tokio's default worker stack size.
pub const BROKER_STACK_SIZE: usize = 2 * 1024 * 1024;

/// A check and its input, for the worker thread.
type Job = (fn(&[u8]), Vec<u8>);

/// The worker: inputs go one way, "done" comes back. One thread for the whole run, since
/// starting a thread per input would cost more than most checks.
struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<()>,
}

static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();

/// Runs `check(input)` on a thread with [`BROKER_STACK_SIZE`] of stack, and waits for it.
pub fn on_broker_stack(input: &[u8], check: fn(&[u8])) {
    let worker = WORKER.get_or_init(start).lock();
    let worker = worker.unwrap_or_else(PoisonError::into_inner);
    worker
        .jobs
        .send((check, input.to_vec()))
        .expect("the worker takes inputs");
    // A panic on the worker has already aborted the process through libfuzzer-sys's hook.
    worker.done.recv().expect("the worker finishes each input");
}

fn start() -> Mutex<Worker> {
    let (jobs, inputs) = mpsc::channel::<Job>();
    let (finished, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("broker-stack".to_owned())
        .stack_size(BROKER_STACK_SIZE)
        .spawn(move || {
            for (check, input) in inputs {
                check(&input);
                let _ = finished.send(());
            }
        })
        .expect("the worker thread starts");
    Mutex::new(Worker { jobs, done })
}
