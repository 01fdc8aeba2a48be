//! `--json`: one JSON object per interval and a final one, written to stdout
//! from a thread of its own so that a reader who stops reading can never
//! stall tracing.

use std::io::Write as _;

use tracer_model::Metrics;

use crate::error::{Result, UserError};

/// JSON lines leave on their own thread: a reader that stops reading (a
/// paused pager, a full pipe) must not stall the loop, its map reads or its
/// signal handling. Interval lines that find the queue full are dropped and
/// counted in the next line's `losses`.
pub struct JsonOut {
    queue: Option<std::sync::mpsc::SyncSender<String>>,
    writer: Option<std::thread::JoinHandle<Result<()>>>,
    /// Interval lines dropped for a reader that did not keep up.
    dropped: u64,
    /// The final line found no room in time.
    final_lost: bool,
}

/// Interval lines waiting for a slow reader before new ones are dropped.
const JSON_QUEUE: usize = 64;

/// How long the final line waits for room, then the writer for the reader:
/// a reader that never reads must not keep muxtrace running (a signal ends a
/// session within a second), while one that is only slow gets every line.
const FINAL_LINE_BUDGET: std::time::Duration = std::time::Duration::from_millis(600);
const FLUSH_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

impl JsonOut {
    pub fn start() -> JsonOut {
        let (queue, lines) = std::sync::mpsc::sync_channel::<String>(JSON_QUEUE);
        let writer = std::thread::spawn(move || {
            for line in lines {
                write_stdout(&line)?;
            }
            Ok(())
        });
        JsonOut {
            queue: Some(queue),
            writer: Some(writer),
            dropped: 0,
            final_lost: false,
        }
    }

    /// Interval lines dropped so far for a reader that did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// One JSON object per line: `{"type": "interval"|"final", …Metrics}`.
    /// `wait` gives a reader that is behind a moment to make room (the
    /// final line), but never longer than [`FINAL_LINE_BUDGET`].
    pub fn send(&mut self, kind: &str, metrics: &Metrics, wait: bool) -> Result<()> {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(flatten)]
            metrics: &'a Metrics,
        }
        let mut text = serde_json::to_string(&Line { kind, metrics })
            .map_err(|e| UserError::runtime(format!("cannot encode JSON: {e}")))?;
        text.push('\n');
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + FINAL_LINE_BUDGET;
        let delivered = loop {
            match queue.try_send(text) {
                Ok(()) => break true,
                Err(std::sync::mpsc::TrySendError::Full(back)) => {
                    if !wait {
                        self.dropped += 1;
                        break true;
                    }
                    if std::time::Instant::now() >= deadline {
                        self.final_lost = true;
                        break true;
                    }
                    text = back;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => break false,
            }
        };
        match delivered {
            true => Ok(()),
            // The writer stopped: its error says why.
            false => self.finish(),
        }
    }

    /// Lets the writer take what is queued, for at most [`FLUSH_BUDGET`], and
    /// reports its error, if any. A reader that never reads is left behind:
    /// the process exits with the lines still queued, and says so.
    pub fn finish(&mut self) -> Result<()> {
        self.queue = None;
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + FLUSH_BUDGET;
        while !writer.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if self.dropped > 0 {
            eprintln!(
                "muxtrace: {} JSON interval lines were dropped: stdout did not keep up",
                self.dropped
            );
        }
        if self.final_lost || !writer.is_finished() {
            eprintln!("muxtrace: stdout is not being read; the last JSON lines were not written");
        }
        if !writer.is_finished() {
            return Ok(());
        }
        writer
            .join()
            .unwrap_or_else(|_| Err(UserError::runtime("the JSON writer thread failed")))
    }
}

/// The `losses` entry for interval lines a slow stdout reader missed.
pub const JSON_LINES_DROPPED: &str = "json_lines_dropped";

/// Whether stdout is a pipe or socket whose reader has gone: the kernel
/// flags a pipe's write end with no reader left (POLLERR) and a socket whose
/// peer closed (POLLHUP) at once, where a write would only say so at the next
/// interval's line, or, for the summary, at the very end. A terminal, a file
/// or /dev/null never reads as gone.
pub fn stdout_reader_gone() -> bool {
    let mut out = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a timeout of 0: poll only reads the state.
    let ready = unsafe { libc::poll(&mut out, 1, 0) };
    ready == 1 && out.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(UserError::runtime(format!("cannot write to stdout: {e}"))),
    }
}
