//! Helpers for the kernel tests: start real processes, stop them by pid,
//! run muxtrace and read what it reports.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

pub const MUXTRACE: &str = env!("CARGO_BIN_EXE_muxtrace");

/// A binary of the workspace built next to this test (testprogs, demo-servers).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` (cargo xtask test does)",
        path.display()
    );
    path
}

/// A child process stopped by pid when the guard drops, so a failing test
/// leaves nothing running.
pub struct Proc {
    pub child: Child,
    pub pid: u32,
    stderr_lines: Option<mpsc::Receiver<String>>,
    stderr_seen: Vec<String>,
    /// Read on a thread from the start: a child that writes more than a pipe
    /// holds (JSON lines) must never block on a test that reads late.
    stdout_lines: Option<mpsc::Receiver<String>>,
}

/// Forwards `from`'s lines to a channel, on its own thread.
fn line_reader(from: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut line = Vec::new();
        // Bytes, not `lines()`: one invalid UTF-8 byte must not stop the reader.
        while matches!(from.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
            line.clear();
        }
    });
    rx
}

/// Everything `rx` still brings, until its writer closes or stays quiet for
/// `idle` (a grandchild may keep the pipe open).
fn drain(rx: &mpsc::Receiver<String>, idle: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(idle) {
        lines.push(line);
    }
    lines
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let stderr = line_reader(child.stderr.take().expect("stderr"));
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        Proc {
            child,
            pid,
            stderr_lines: Some(stderr),
            stderr_seen: Vec::new(),
            stdout_lines: Some(stdout),
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        let rx = self.stderr_lines.as_ref().expect("stderr reader");
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {timeout:?}; saw: {:#?}",
                    self.stderr_seen
                ),
            }
        }
    }

    /// Reads the first stdout line (test programs print `ready PID` there).
    pub fn first_stdout_line(&mut self) -> String {
        let rx = self.stdout_lines.as_ref().expect("stdout reader");
        rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.pid as i32, sig) };
    }

    /// Waits for exit and returns (code, stdout, all of stderr).
    pub fn finish(mut self, timeout: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                self.signal(libc::SIGKILL);
                let _ = self.child.wait();
                panic!("pid {} did not exit within {timeout:?}", self.pid);
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        if let Some(rx) = self.stdout_lines.take() {
            for line in drain(&rx, Duration::from_secs(2)) {
                stdout.push_str(&line);
                stdout.push('\n');
            }
        }
        let mut stderr = self.stderr_seen.join("\n");
        if let Some(rx) = self.stderr_lines.take() {
            for line in drain(&rx, Duration::from_millis(500)) {
                stderr.push('\n');
                stderr.push_str(&line);
            }
        }
        (status.code(), stdout, stderr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A syscall-burst waiting for SIGUSR1, with its pid.
pub fn burst(args: &[&str]) -> Proc {
    let mut p = Proc::spawn(
        Command::new(workspace_bin("syscall-burst"))
            .arg("--wait-signal")
            .args(args),
    );
    let line = p.first_stdout_line();
    assert!(line.starts_with("ready "), "syscall-burst said {line:?}");
    p
}

/// Starts muxtrace and waits until it has attached.
pub fn muxtrace(args: &[&str]) -> Proc {
    let mut p = Proc::spawn(Command::new(MUXTRACE).args(args));
    p.wait_stderr("muxtrace: attached", Duration::from_secs(30));
    p
}

/// Per pid, per syscall: (calls, errors), parsed from the summary table.
pub type Table = BTreeMap<u32, BTreeMap<String, (u64, u64)>>;

pub fn parse_summary(text: &str) -> Table {
    let mut table = Table::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pid ") {
            let pid: u32 = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
                .expect("pid");
            table.entry(pid).or_default();
            current = Some(pid);
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        // syscall, calls, errors, …
        if cols.len() < 3 || !NAMES.contains(&cols[0]) {
            continue;
        }
        // Verdict lines can start with a syscall name too; rows have numbers.
        if let (Ok(calls), Ok(errors), Some(pid)) =
            (cols[1].parse::<u64>(), cols[2].parse::<u64>(), current)
        {
            table
                .entry(pid)
                .or_default()
                .insert(cols[0].to_owned(), (calls, errors));
        }
    }
    table
}

/// Our programs still loaded in the kernel, waiting out the kernel's
/// deferred release after the last fd closes.
pub fn wait_no_programs_loaded() -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ids = tracer_user::loaded_program_ids();
        if ids.is_empty() || Instant::now() > deadline {
            return ids;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

pub const NAMES: [&str; 15] = [
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "accept4",
    "recvfrom",
    "recvmsg",
    "read",
    "sendto",
    "sendmsg",
    "write",
];

/// Runs muxtrace with `--json` on a waitlab scenario and returns the final
/// JSON object's entry for the waitlab process.
pub fn waitlab_metrics(args: &[&str]) -> serde_json::Value {
    let mut lab = Proc::spawn(Command::new(workspace_bin("waitlab")).args(args));
    let line = lab.first_stdout_line();
    assert!(line.starts_with("ready "), "waitlab said {line:?}");
    let pid = lab.pid.to_string();
    let mt = muxtrace(&["--pid", &pid, "--json", "--interval", "10s"]);
    lab.signal(libc::SIGUSR1);
    let (code, stdout, stderr) = mt.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let last = stdout.lines().last().expect("a final JSON line");
    let value: serde_json::Value = serde_json::from_str(last).expect("valid JSON");
    assert_eq!(value["type"], "final");
    let process = value["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"] == lab.pid)
        .unwrap_or_else(|| panic!("waitlab pid missing in {last}"))
        .clone();
    process
}

/// The `total` window of one syscall in a process's metrics.
pub fn syscall_total<'a>(process: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    process["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .find(|s| s["syscall"] == name)
        .map(|s| &s["total"])
        .unwrap_or_else(|| panic!("no {name} in {process}"))
}
