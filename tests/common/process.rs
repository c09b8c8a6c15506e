//! The real `mqbridge` binary as a child process on loopback, for tests that must kill it with
//! SIGKILL (an in-process broker cannot be killed without killing the test).
//!
//! The broker logs to stdout and reports fatal errors on stderr; both are read line by line on
//! two threads into one log, which the test waits on ("broker started") and searches (recovery
//! messages, errors). Ports are picked by binding port 0 and releasing it, so another process
//! may take one before the broker binds it; `start` then tries again with new ports.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest wait for a start-up or an exit: a debug build replaying a few MB of journal on a
/// loaded 2-core machine takes well under a second; this leaves room for a slow disk.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Start-up attempts before giving up: only a lost race for a released port is retried.
const START_ATTEMPTS: usize = 5;

/// The line the broker logs once every listener is bound (src/server.rs).
const STARTED: &str = "broker started";

/// Marks the lines the broker wrote on stderr (where a failed start-up says why).
pub const STDERR: &str = "[stderr] ";

/// Every line the broker wrote on stdout or stderr, ANSI colours removed.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// One running broker process.
pub struct BrokerProcess {
    child: Child,
    log: Arc<Log>,
    pub amqp: SocketAddr,
    pub mqtt: SocketAddr,
}

impl BrokerProcess {
    /// Starts the broker on `data_dir` with `extra` flags and waits until it listens.
    /// Panics with the broker's output if it exits for another reason than a taken port.
    pub fn start(data_dir: &Path, extra: &[&str]) -> BrokerProcess {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut broker = BrokerProcess::spawn(data_dir, extra, free_ports());
            match broker.wait_for_start() {
                Ok(()) => return broker,
                Err(output) if output.contains("in use") => last = output,
                Err(output) => panic!("the broker did not start:\n{output}"),
            }
        }
        panic!("the broker found no free ports in {START_ATTEMPTS} attempts; the last:\n{last}");
    }

    /// Starts the broker on `data_dir` and expects it to exit; returns its status and output.
    pub fn start_and_fail(data_dir: &Path, extra: &[&str]) -> (ExitStatus, String) {
        let mut broker = BrokerProcess::spawn(data_dir, extra, free_ports());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = broker.child.try_wait().expect("try_wait") {
                // The reader threads may still be copying the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status, broker.output());
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not exit:\n{}",
                broker.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(data_dir: &Path, extra: &[&str], ports: [u16; 3]) -> BrokerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqbridge"))
            .args(["--bind", "127.0.0.1", "--data-dir"])
            .arg(data_dir)
            .args(["--amqp-port", &ports[0].to_string()])
            .args(["--mqtt-port", &ports[1].to_string()])
            .args(["--stomp-port", &ports[2].to_string()])
            .args(extra)
            // Listeners these tests do not use get any free port instead of their fixed
            // default, so that brokers running side by side do not collide. Environment
            // variables, because a flag the binary does not know would stop it.
            .env("MQBRIDGE_WS_PORT", "0")
            .env("MQBRIDGE_SQS_PORT", "0")
            .env("MQBRIDGE_MANAGEMENT_PORT", "0")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mqbridge");
        let log = Arc::new(Log::default());
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        read_lines(stdout, "", &log);
        read_lines(stderr, STDERR, &log);
        let address = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        BrokerProcess {
            child,
            log,
            amqp: address(ports[0]),
            mqtt: address(ports[1]),
        }
    }

    /// Waits for the start line; on exit or timeout returns the output so far.
    fn wait_for_start(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.wait_for_line(STARTED, Duration::from_millis(50)) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("exited with {status}:\n{}", self.output()));
            }
        }
        let _ = self.child.kill();
        Err(format!("did not start in time:\n{}", self.output()))
    }

    /// Whether a line containing `needle` was logged, waiting up to `timeout` for it.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut lines = self
            .log
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if lines.iter().any(|line| line.contains(needle)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            lines = self
                .log
                .grew
                .wait_timeout(lines, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Everything the broker has written so far.
    pub fn output(&self) -> String {
        let lines = self
            .log
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        lines.join("\n")
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.amqp)
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash or the OOM killer.
    pub fn kill(mut self) -> String {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        self.output()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // A failing test must not leave a broker behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three distinct ports free at the time of asking.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind port 0"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local addr").port();
    [port(0), port(1), port(2)]
}

/// Copies `stream` into `log` line by line, each after `prefix`, on a thread that ends with
/// the process.
fn read_lines(stream: impl Read + Send + 'static, prefix: &'static str, log: &Arc<Log>) {
    let log = Arc::clone(log);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut lines = log.lines.lock().unwrap_or_else(PoisonError::into_inner);
            lines.push(format!("{prefix}{}", strip_ansi(&line)));
            log.grew.notify_all();
        }
    });
}

/// Removes terminal colour sequences (`ESC [ ... m`), in case NO_COLOR is not honoured.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}
