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
    dropped: u64,
}

/// Interval lines waiting for a slow reader before new ones are dropped.
const JSON_QUEUE: usize = 64;

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
        }
    }

    /// Interval lines dropped so far for a reader that did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// One JSON object per line: `{"type": "interval"|"final", …Metrics}`.
    /// `wait` queues it even when the reader is behind (the final line).
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
        let delivered = match wait {
            true => queue.send(text).is_ok(),
            false => match queue.try_send(text) {
                Err(std::sync::mpsc::TrySendError::Full(_)) => {
                    self.dropped += 1;
                    true
                }
                sent => sent.is_ok(),
            },
        };
        match delivered {
            true => Ok(()),
            // The writer stopped: its error says why.
            false => self.finish(),
        }
    }

    /// Writes what is queued and reports the writer's error, if any.
    pub fn finish(&mut self) -> Result<()> {
        self.queue = None;
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let result = writer
            .join()
            .unwrap_or_else(|_| Err(UserError::runtime("the JSON writer thread failed")));
        if self.dropped > 0 {
            eprintln!(
                "muxtrace: {} JSON interval lines were dropped: stdout did not keep up",
                self.dropped
            );
        }
        result
    }
}

/// The `losses` entry for interval lines a slow stdout reader missed.
pub const JSON_LINES_DROPPED: &str = "json_lines_dropped";

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(UserError::runtime(format!("cannot write to stdout: {e}"))),
    }
}
