//! A child process held by a guard: its output read line by line from the
//! moment it starts, and the process stopped by its pid — never by name —
//! when the guard drops, however the caller ends.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader, Read},
    path::Path,
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// How long a stopped process may take to exit after its signal before it
/// is killed.
pub const GRACE: Duration = Duration::from_secs(10);

/// After the process exits, how long its output may stay open (a grandchild
/// can inherit the pipes) before [`Proc::finish`] stops waiting for it.
const OUTPUT_LINGER: Duration = Duration::from_secs(2);

/// Has the child sent SIGTERM when the thread that started it ends, which
/// is also when its whole process is killed (a test run or a bench cut
/// short by a timeout's SIGKILL): the guard's drop never runs then, and
/// servers, load and tracers would be left running. SIGTERM, not SIGKILL,
/// so a tracer still detaches and a server stops its own children.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe and allocate nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the prctl: no signal will come.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("its parent has exited"));
            }
            Ok(())
        });
    }
}

/// Which of a child's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A running child. Its stdout and stderr are read on two threads from the
/// start and kept as lines; dropping the guard stops the process
/// ([`Proc::stop`]) if it still runs.
pub struct Proc {
    child: Child,
    name: String,
    output: Arc<Output>,
    /// Stdout left unread on purpose ([`Proc::spawn_with_unread_stdout`]).
    unread_stdout: Option<ChildStdout>,
    /// Set once the process has been waited for: from then on its pid may
    /// be someone else's and is never signalled.
    reaped: bool,
}

/// What a finished process left: its exit status and all its output.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// Every stdout line, each ended by `\n`.
    pub stdout: String,
    /// Every stderr line, each ended by `\n`.
    pub stderr: String,
}

impl Finished {
    /// The exit code; `None` when a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// The lines read so far, shared with the reader threads.
#[derive(Default)]
struct Output {
    lines: Mutex<Lines>,
    changed: Condvar,
}

#[derive(Default)]
struct Lines {
    stdout: Vec<String>,
    stderr: Vec<String>,
    /// Streams whose reader has not yet seen end of file.
    open: usize,
}

impl Lines {
    fn of(&self, stream: Stream) -> &Vec<String> {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        // A reader thread never panics while holding the lock; recover anyway.
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout` for a new line or a closed stream.
    fn wait<'a>(&self, lines: MutexGuard<'a, Lines>, timeout: Duration) -> MutexGuard<'a, Lines> {
        self.changed
            .wait_timeout(lines, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    /// Reads `from` line by line into `stream` until end of file.
    fn read(self: Arc<Self>, from: impl Read + Send + 'static, stream: Stream) {
        self.lock().open += 1;
        thread::spawn(move || {
            let mut from = BufReader::new(from);
            let mut line = Vec::new();
            // Bytes, not `lines()`: one invalid UTF-8 byte must not stop the reader.
            while matches!(from.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                let mut lines = self.lock();
                match stream {
                    Stream::Stdout => lines.stdout.push(text),
                    Stream::Stderr => lines.stderr.push(text),
                }
                drop(lines);
                self.changed.notify_all();
                line.clear();
            }
            self.lock().open -= 1;
            self.changed.notify_all();
        });
    }
}

fn joined(lines: &[String]) -> String {
    let mut s = String::new();
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
    s
}

impl Proc {
    /// Starts `cmd` with stdin from /dev/null and both output streams read
    /// from the start.
    pub fn spawn(cmd: &mut Command) -> Result<Proc> {
        let mut p = Proc::start(cmd)?;
        if let Some(stdout) = p.child.stdout.take() {
            Arc::clone(&p.output).read(stdout, Stream::Stdout);
        }
        Ok(p)
    }

    /// Like [`Proc::spawn`], but nobody reads stdout until
    /// [`Proc::take_unread_stdout`]: a reader that stalls, on purpose.
    pub fn spawn_with_unread_stdout(cmd: &mut Command) -> Result<Proc> {
        let mut p = Proc::start(cmd)?;
        p.unread_stdout = p.child.stdout.take();
        Ok(p)
    }

    fn start(cmd: &mut Command) -> Result<Proc> {
        let name = Path::new(cmd.get_program())
            .file_name()
            .unwrap_or(cmd.get_program())
            .to_string_lossy()
            .into_owned();
        die_with_parent(cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", cmd.get_program().to_string_lossy()))?;
        let output = Arc::new(Output::default());
        if let Some(stderr) = child.stderr.take() {
            Arc::clone(&output).read(stderr, Stream::Stderr);
        }
        Ok(Proc {
            child,
            name,
            output,
            unread_stdout: None,
            reaped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The program's file name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stdout left unread by [`Proc::spawn_with_unread_stdout`].
    pub fn take_unread_stdout(&mut self) -> Option<ChildStdout> {
        self.unread_stdout.take()
    }

    /// Waits for a line containing `needle` on stdout or stderr and returns
    /// it. Lines are never consumed: the first matching line since the start
    /// is the answer, however early it came. Fails when `timeout` passes or
    /// the process closes its output first, quoting what it did say.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut checked = [0usize; 2];
        let mut lines = self.output.lock();
        loop {
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                let all = lines.of(stream);
                if let Some(found) = all[checked[i]..].iter().find(|l| l.contains(needle)) {
                    return Ok(found.clone());
                }
                checked[i] = all.len();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if lines.open == 0 || left.is_zero() {
                let why = match lines.open {
                    0 => "closed its output".to_owned(),
                    _ => format!("went on for {timeout:?}"),
                };
                bail!(
                    "{} {why} without a line containing {needle:?}; stdout:\n{}stderr:\n{}",
                    self.name,
                    joined(tail(&lines.stdout)),
                    joined(tail(&lines.stderr)),
                );
            }
            lines = self.output.wait(lines, left);
        }
    }

    /// The lines of `stream` so far.
    pub fn lines(&self, stream: Stream) -> Vec<String> {
        self.output.lock().of(stream).clone()
    }

    /// Stdout so far, each line ended by `\n`.
    pub fn stdout(&self) -> String {
        joined(self.output.lock().of(Stream::Stdout))
    }

    /// Stderr so far, each line ended by `\n`.
    pub fn stderr(&self) -> String {
        joined(self.output.lock().of(Stream::Stderr))
    }

    /// The exit status, if the process has exited (reaping it).
    fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child.try_wait()?;
        self.reaped |= status.is_some();
        Ok(status)
    }

    /// Whether the process still runs (not yet exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Sends `sig` by pid, unless the process has already been reaped (its
    /// pid may belong to someone else by then). An exited process that is
    /// not yet reaped keeps its pid, so the signal is harmless.
    pub fn signal(&self, sig: i32) {
        if !self.reaped {
            // SAFETY: signalling our own child, which is not reaped yet, by pid.
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) did not exit within {timeout:?}",
                    self.name,
                    self.pid()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout` for the exit (killing the process when it does
    /// not come), then for the output to close, and returns both.
    pub fn finish(mut self, timeout: Duration) -> Result<Finished> {
        let status = match self.wait_exit(timeout) {
            Ok(status) => status,
            Err(e) => {
                let _ = self.stop_within(libc::SIGKILL, GRACE);
                return Err(e.context(format!("stderr:\n{}", self.stderr())));
            }
        };
        self.wait_output_closed();
        let lines = self.output.lock();
        Ok(Finished {
            status,
            stdout: joined(&lines.stdout),
            stderr: joined(&lines.stderr),
        })
    }

    /// Waits, a short while at most, until the readers have taken in all
    /// the output of a process that has exited (a grandchild holding the
    /// pipes open is not waited for).
    pub fn wait_output_closed(&self) {
        let deadline = Instant::now() + OUTPUT_LINGER;
        let mut lines = self.output.lock();
        while lines.open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            lines = self.output.wait(lines, left);
        }
    }

    /// SIGTERM, then as [`Proc::stop_with`].
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `sig` and waits [`GRACE`] for the exit; past it, kills and
    /// reaps the process and fails saying so. A process that has already
    /// exited is only reaped.
    pub fn stop_with(&mut self, sig: i32) -> Result<ExitStatus> {
        self.stop_within(sig, GRACE)
    }

    fn stop_within(&mut self, sig: i32, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        self.signal(sig);
        match self.wait_exit(grace) {
            Ok(status) => Ok(status),
            Err(_) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.reaped = true;
                bail!(
                    "{} (pid {}) did not stop within {grace:?} of signal {sig}; killed",
                    self.name,
                    self.pid()
                )
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The last lines, enough to see why a wait failed.
fn tail(lines: &[String]) -> &[String] {
    &lines[lines.len().saturating_sub(20)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Proc {
        Proc::spawn(Command::new("sh").args(["-c", script])).unwrap()
    }

    fn gone(pid: u32) -> bool {
        // SAFETY: signal 0 only checks that the pid exists.
        unsafe { libc::kill(pid as libc::pid_t, 0) != 0 }
    }

    /// A child whose guard never drops (its starter killed outright) still
    /// ends: SIGTERM when the thread that started it ends.
    #[test]
    fn a_child_outliving_its_starter_gets_sigterm() {
        let pid = thread::spawn(|| {
            let p = Proc::spawn(Command::new("sleep").arg("30")).unwrap();
            let pid = p.pid();
            // No guard, no stop, no wait: as if the process were killed.
            std::mem::forget(p);
            pid
        })
        .join()
        .unwrap();
        let mut status = 0;
        // SAFETY: waits for our own child by its pid; nothing else reaps it.
        let reaped = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        assert_eq!(reaped, pid as libc::pid_t);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM,
            "status {status:#x}"
        );
    }

    #[test]
    fn wait_line_finds_a_line_on_either_stream() {
        let p = sh("echo one; echo two >&2; exec sleep 30");
        assert_eq!(p.wait_line("tw", Duration::from_secs(10)).unwrap(), "two");
        assert_eq!(p.wait_line("on", Duration::from_secs(10)).unwrap(), "one");
        // Lines are not consumed.
        assert_eq!(p.wait_line("two", Duration::from_secs(1)).unwrap(), "two");
    }

    #[test]
    fn wait_line_fails_on_timeout_and_on_closed_output_quoting_the_output() {
        let p = sh("echo hello; exec sleep 30");
        let started = Instant::now();
        let e = p
            .wait_line("absent", Duration::from_millis(300))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(format!("{e:#}").contains("hello"), "{e:#}");
        let p = sh("echo bye");
        let e = p.wait_line("absent", Duration::from_secs(30)).unwrap_err();
        assert!(format!("{e:#}").contains("closed its output"), "{e:#}");
    }

    #[test]
    fn a_chatty_child_never_blocks_on_a_full_pipe() {
        // 4 MiB on each stream, far more than a pipe holds, read by nobody
        // but the guard's threads.
        let p = sh("line=$(printf '%01000d' 0); yes $line | head -n 4000; \
             yes $line | head -n 4000 >&2; echo done");
        let done = p.wait_line("done", Duration::from_secs(60)).unwrap();
        assert_eq!(done, "done");
        let f = p.finish(Duration::from_secs(30)).unwrap();
        assert!(f.status.success());
        assert!(f.stdout.len() > 4_000_000 && f.stderr.len() > 4_000_000);
    }

    #[test]
    fn dropping_the_guard_stops_the_process_by_pid() {
        let p = sh("exec sleep 1000");
        let pid = p.pid();
        assert!(!gone(pid));
        drop(p);
        assert!(gone(pid), "pid {pid} still there");
    }

    #[test]
    fn a_process_that_ignores_the_signal_is_killed_after_the_grace() {
        // An ignored signal stays ignored across exec.
        let mut p = sh("trap '' TERM; echo ready; exec sleep 1000");
        p.wait_line("ready", Duration::from_secs(10)).unwrap();
        let started = Instant::now();
        let e = p
            .stop_within(libc::SIGTERM, Duration::from_millis(300))
            .unwrap_err();
        assert!(format!("{e}").contains("killed"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!p.is_running());
    }

    #[test]
    fn finish_returns_the_code_and_all_output() {
        let p = sh("echo out; echo err >&2; exit 3");
        let f = p.finish(Duration::from_secs(30)).unwrap();
        assert_eq!(f.code(), Some(3));
        assert_eq!(f.stdout, "out\n");
        assert_eq!(f.stderr, "err\n");
    }

    #[test]
    fn finish_kills_a_process_that_does_not_exit_in_time() {
        let p = sh("exec sleep 1000");
        let pid = p.pid();
        assert!(p.finish(Duration::from_millis(200)).is_err());
        assert!(gone(pid));
    }

    #[test]
    fn unread_stdout_stays_unread_until_taken() {
        let mut p =
            Proc::spawn_with_unread_stdout(Command::new("sh").args(["-c", "echo hi"])).unwrap();
        let mut text = String::new();
        p.take_unread_stdout()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hi\n");
        assert!(p.stdout().is_empty());
    }
}
