//! `--json`: one JSON object per interval and a final one, written to stdout
//! from a thread of its own so that a reader who stops reading can never
//! stall tracing, and into a pipe only whole, so one who reads later never
//! finds a line cut off.

use std::{
    io::Write as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
};

use tracer_model::Metrics;

use crate::error::{Result, UserError};

/// JSON lines leave on their own thread: a reader that stops reading (a
/// paused pager, a full pipe) must not stall the loop, its map reads or its
/// signal handling. Interval lines that find the queue full are dropped and
/// counted in the next line's `losses`.
pub struct JsonOut {
    queue: Option<std::sync::mpsc::SyncSender<String>>,
    writer: Option<std::thread::JoinHandle<Result<()>>>,
    /// Lines handed to the writer, and how many it wrote whole.
    queued: u64,
    written: Arc<AtomicU64>,
    /// Tells a writer waiting for room in the pipe to give up.
    stop: Arc<AtomicBool>,
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
/// Neither a line written nor a byte read from the pipe for this long
/// while flushing: the reader has stopped, and the flush budget is not
/// waited out for it. Only the final line's wait for a place in a full
/// queue takes its whole budget: a paused reader (a pager) may resume for
/// it.
const READER_STALLED: std::time::Duration = std::time::Duration::from_millis(150);

/// Whether the reader made progress within [`READER_STALLED`]: a line
/// written, or bytes read from the pipe (a slow reader of long lines may
/// take longer than that over one).
struct Progress<'a> {
    written: &'a AtomicU64,
    unread: fn() -> Option<usize>,
    seen: (u64, Option<usize>),
    at: std::time::Instant,
}

impl<'a> Progress<'a> {
    fn watch(written: &'a AtomicU64, unread: fn() -> Option<usize>) -> Progress<'a> {
        Progress {
            written,
            unread,
            seen: (written.load(Ordering::Relaxed), unread()),
            at: std::time::Instant::now(),
        }
    }

    fn stalled(&mut self) -> bool {
        self.stalled_at(std::time::Instant::now())
    }

    fn stalled_at(&mut self, now: std::time::Instant) -> bool {
        let seen = (self.written.load(Ordering::Relaxed), (self.unread)());
        let read = matches!((self.seen.1, seen.1), (Some(before), Some(after)) if after < before);
        if seen.0 != self.seen.0 || read {
            self.at = now;
        }
        self.seen = seen;
        now.saturating_duration_since(self.at) >= READER_STALLED
    }
}

impl JsonOut {
    pub fn start() -> JsonOut {
        let (queue, lines) = std::sync::mpsc::sync_channel::<String>(JSON_QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, give_up) = (written.clone(), stop.clone());
        let writer = std::thread::spawn(move || {
            for line in lines {
                if !wait_for_room(line.len(), &give_up) {
                    break;
                }
                write_stdout(&line)?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        JsonOut {
            queue: Some(queue),
            writer: Some(writer),
            queued: 0,
            written,
            stop,
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
                Ok(()) => {
                    self.queued += 1;
                    break true;
                }
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

    /// Lets the writer take what is queued, for at most [`FLUSH_BUDGET`] and
    /// while it makes progress, and reports its error, if any. A reader that
    /// never reads is left behind: the process exits with the lines still
    /// queued, and says how many.
    pub fn finish(&mut self) -> Result<()> {
        self.queue = None;
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + FLUSH_BUDGET;
        let mut progress = Progress::watch(&self.written, pipe_unread);
        // The final line found no room in its budget: no wait again.
        while !self.final_lost
            && !writer.is_finished()
            && std::time::Instant::now() < deadline
            && !progress.stalled()
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // A writer waiting for room gives up now, with no line begun.
        self.stop.store(true, Ordering::Relaxed);
        let give_up_by = std::time::Instant::now() + std::time::Duration::from_millis(20);
        while !writer.is_finished() && std::time::Instant::now() < give_up_by {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if self.dropped > 0 {
            eprintln!(
                "muxtrace: {} JSON interval lines were dropped: stdout did not keep up",
                self.dropped
            );
        }
        // The final line is the last one queued, or was never queued.
        let unwritten =
            self.queued - self.written.load(Ordering::Relaxed) + u64::from(self.final_lost);
        match unwritten {
            0 => {}
            1 => eprintln!("muxtrace: stdout was not read in time; the final JSON line was not written"),
            n => eprintln!(
                "muxtrace: stdout was not read in time; the last {n} JSON lines, the final one among them, were not written"
            ),
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

/// Before a line goes into a pipe: waits until the pipe has room for all of
/// it, so the write never blocks half done, and a reader that reads after
/// muxtrace has exited finds whole lines only (a blocked write is cut off
/// at exit). The pipe is enlarged once if a line could never fit. False
/// when told to give up first. Anything but a pipe is written at once.
fn wait_for_room(len: usize, give_up: &AtomicBool) -> bool {
    // From 2 ms, doubling to 64 ms: a reader a moment behind gets its line
    // at once, one stalled for minutes costs 16 checks a second, not 500.
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        match pipe_room(len) {
            None => return true,
            Some(room) if room >= len => return true,
            Some(_) => {}
        }
        if give_up.load(Ordering::Relaxed) {
            return false;
        }
        // A reader gone: the write fails at once with EPIPE.
        if stdout_reader_gone() {
            return true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(64));
    }
}

/// Bytes a write to the pipe on stdout takes without blocking, at least;
/// `None` when stdout is no pipe, or a line of `len` can never fit whole
/// (and writing it at once is all there is to do). The kernel fills a
/// pipe page by page: the unread bytes take at most one page more than
/// they fill (the page being read, the one being written).
fn pipe_room(len: usize) -> Option<usize> {
    let fd = libc::STDOUT_FILENO;
    let unread = pipe_unread()?;
    const PAGE: usize = 4096;
    let pages = |bytes: usize| bytes.div_ceil(PAGE);
    // SAFETY: fcntl on stdout; no pointer is passed.
    let mut size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    if size < 0 {
        return None;
    }
    if (size as usize) < pages(len) * PAGE {
        // SAFETY: as above; the kernel rounds the size up.
        size = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, (pages(len) * PAGE) as libc::c_int) };
        if size < 0 {
            return None;
        }
    }
    let used = match unread {
        0 => 0,
        n => pages(n) + 1,
    };
    Some((size as usize / PAGE).saturating_sub(used) * PAGE)
}

/// Bytes written to the pipe on stdout and not read yet; `None` when stdout
/// is no pipe.
fn pipe_unread() -> Option<usize> {
    let fd = libc::STDOUT_FILENO;
    // SAFETY: fstat into a local struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return None;
    }
    let mut unread: libc::c_int = 0;
    // SAFETY: FIONREAD into a local int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) } != 0 {
        return None;
    }
    Some(unread as usize)
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

#[cfg(test)]
mod tests {
    use std::{sync::atomic::AtomicUsize, time::Duration};

    use super::*;

    static UNREAD: AtomicUsize = AtomicUsize::new(0);

    fn unread() -> Option<usize> {
        Some(UNREAD.load(Ordering::Relaxed))
    }

    /// A reader that finishes no line for longer than the cut-off but keeps
    /// reading from the pipe is slow, not stalled; one that reads nothing is.
    #[test]
    fn a_reader_draining_the_pipe_is_not_stalled() {
        let written = AtomicU64::new(3);
        UNREAD.store(60_000, Ordering::Relaxed);
        let mut progress = Progress::watch(&written, unread);
        let start = progress.at;
        let at = |ms| start + Duration::from_millis(ms);
        for (ms, left) in [(100, 50_000), (200, 40_000), (300, 30_000)] {
            UNREAD.store(left, Ordering::Relaxed);
            assert!(!progress.stalled_at(at(ms)), "{ms} ms, {left} B unread");
        }
        // Nothing read since 300 ms; a line written at 400 is progress.
        assert!(!progress.stalled_at(at(440)));
        written.store(4, Ordering::Relaxed);
        assert!(!progress.stalled_at(at(500)));
        assert!(!progress.stalled_at(at(640)));
        assert!(progress.stalled_at(at(650)));
        // More unread (a line written) without a line counted: no progress.
        UNREAD.store(35_000, Ordering::Relaxed);
        assert!(progress.stalled_at(at(700)));
    }
}
