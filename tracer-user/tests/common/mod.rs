//! What the tests of the real binary share: muxtrace and the test programs
//! started through `harness` (stopped by pid, never leaked), muxtrace's
//! summary table and JSON read back, and whether our programs are still
//! loaded in the kernel.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

pub use harness::{EchoServer, Proc};
use tracer_common::{Stat, SyscallKind};
use tracer_model::{ProcessMetrics, Window};

pub const MUXTRACE: &str = env!("CARGO_BIN_EXE_muxtrace");

/// The kinds syscall-burst makes: the first kinds, in order — every one but
/// io_uring's, whose calls need a ring (uringlab's tests count those).
pub const BURST_KINDS: usize = 22;

/// Distinct counts per syscall for syscall-burst, so a call attributed to
/// the wrong syscall or process shows; `base` tells two bursts apart.
pub fn burst_counts(base: u64) -> Vec<(SyscallKind, u64)> {
    SyscallKind::ALL[..BURST_KINDS]
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, base + 3 * i as u64))
        .collect()
}

/// A binary of the workspace built next to this test (testprogs, demo-servers).
pub fn workspace_bin(name: &str) -> PathBuf {
    harness::target_bin(name).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Starts `cmd`, its output read from the start.
pub fn spawn(cmd: &mut Command) -> Proc {
    Proc::spawn(cmd).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A test program (testprogs) that has set up and printed `ready PID`.
pub fn ready(name: &str, args: &[&str]) -> Proc {
    let p = spawn(Command::new(workspace_bin(name)).args(args));
    p.wait_line("ready ", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    p
}

/// A syscall-burst waiting for SIGUSR1.
pub fn burst(args: &[&str]) -> Proc {
    let mut all = vec!["--wait-signal"];
    all.extend(args);
    ready("syscall-burst", &all)
}

/// Starts muxtrace and waits until it has attached.
pub fn muxtrace(args: &[&str]) -> Proc {
    harness::start_muxtrace(Path::new(MUXTRACE), args).unwrap_or_else(|e| panic!("{e:#}"))
}

/// An echo-epoll server on a free loopback port.
pub fn echo_server() -> EchoServer {
    EchoServer::start(&workspace_bin("echo-epoll"), &[], None).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Waits for the exit (killing the process after `timeout`) and returns
/// (code, all of stdout, all of stderr).
pub fn finish(p: Proc, timeout: Duration) -> (Option<i32>, String, String) {
    let done = p.finish(timeout).unwrap_or_else(|e| panic!("{e:#}"));
    (done.code(), done.stdout, done.stderr)
}

/// How long a test waits for muxtrace or a test program to end.
pub const LONG: Duration = Duration::from_secs(90);

/// Waits for a clean exit, code 0, and returns (stdout, stderr).
pub fn finish_ok(p: Proc) -> (String, String) {
    let (code, stdout, stderr) = finish(p, LONG);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    (stdout, stderr)
}

/// None of our programs is left loaded once muxtrace has ended.
pub fn assert_detached() {
    assert_eq!(
        wait_no_programs_loaded(),
        Vec::<u32>::new(),
        "programs left loaded"
    );
}

/// `f`'s first `Some`, asked every 200 ms; fails after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// loadgen in the background: `conns` connections at `rate` messages/s
/// against `addr`, for a minute.
pub fn background_load(addr: &str, conns: u32, rate: u32) -> Proc {
    spawn(Command::new(workspace_bin("loadgen")).args([
        "--addr",
        addr,
        "--conns",
        &conns.to_string(),
        "--size",
        "64",
        "--rate",
        &rate.to_string(),
        "--duration",
        "60s",
    ]))
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
        // Folded totals ("NAME: 3 exited processes, folded: …") are pid 0,
        // as in the JSON.
        if line.contains(" exited process") && line.contains(", folded: ") {
            table.entry(0).or_default();
            current = Some(0);
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        // syscall, calls, errors, …
        if cols.len() < 3 || SyscallKind::from_name(cols[0]).is_none() {
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

/// Runs muxtrace with `--json` on a waitlab scenario and returns the final
/// line's metrics of the waitlab process.
pub fn waitlab_metrics(args: &[&str]) -> ProcessMetrics {
    let (pid, lines) = waitlab_lines(args, "10s");
    let last = &lines.last().expect("a final line").metrics;
    harness::muxtrace::process(last, pid)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .clone()
}

/// The waitlab's pid and every `--json` line muxtrace printed over its
/// scenario, the final line last.
pub fn waitlab_lines(args: &[&str], interval: &str) -> (u32, Vec<harness::muxtrace::JsonLine>) {
    waitlab_lines_with(args, interval, &[])
}

/// [`waitlab_lines`] with more muxtrace flags.
pub fn waitlab_lines_with(
    args: &[&str],
    interval: &str,
    flags: &[&str],
) -> (u32, Vec<harness::muxtrace::JsonLine>) {
    let lab = ready("waitlab", args);
    let pid = lab.pid().to_string();
    let mut all = vec!["--pid", &pid, "--json", "--interval", interval];
    all.extend(flags);
    let mt = harness::muxtrace::start_muxtrace(Path::new(MUXTRACE), &all)
        .unwrap_or_else(|e| panic!("{e:#}"));
    lab.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    let lines = harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        lines
            .last()
            .is_some_and(|l| l.kind == harness::muxtrace::LineKind::Final),
        "no final line: {stdout}"
    );
    (lab.pid(), lines)
}

/// The run-so-far window of one syscall in a process's metrics.
pub fn syscall_total(process: &ProcessMetrics, kind: SyscallKind) -> &Window {
    harness::muxtrace::total(process, kind).unwrap_or_else(|| panic!("no {kind} in {process:#?}"))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A query string's value, percent-encoded (for Prometheus's query API).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body of `GET path` on a loopback port, when the answer is a 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A real Prometheus scraping `target` every second, its data in a
/// temporary directory; stopped by pid when dropped.
pub struct Prometheus {
    _dir: tempfile::TempDir,
    _proc: Proc,
    pub port: u16,
}

impl Prometheus {
    pub fn scraping(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: muxtrace\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let proc = spawn(Command::new("prometheus").args([
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ]));
        Prometheus {
            _dir: dir,
            _proc: proc,
            port,
        }
    }

    /// The first sample's value of an instant query, once it has one.
    pub fn value(&self, query: &str) -> Option<f64> {
        let body = http_get(
            self.port,
            &format!("/api/v1/query?query={}", url_encode(query)),
        )?;
        let v: serde_json::Value = serde_json::from_str(&body).expect("query API JSON");
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
    }
}

/// The kernel's own gaps, counted among the losses but not ours: switch-ins
/// and wakeups it never reported (see `Stat::is_kernel_gap`). A test can
/// neither provoke nor prevent one.
pub fn is_kernel_gap(loss: &str) -> bool {
    Stat::named(loss).is_some_and(Stat::is_kernel_gap)
}

/// The gap a loop's off-CPU share misses: a switch-in never reported.
pub const SWITCH_IN_GAP: &str = Stat::SwitchInUnseen.name();

/// The gap a call's wakeup count misses: a wakeup never reported.
pub const WAKEUP_GAP: &str = Stat::WakeupUnseen.name();

/// `losses` less the kernel's gaps: what a test asserts is empty.
pub fn our_losses(losses: &std::collections::BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    losses
        .iter()
        .filter(|(name, _)| !is_kernel_gap(name))
        .map(|(name, n)| (name.as_str(), *n))
        .collect()
}

/// A copy of the kernel's BTF in which the string `name` (a tracepoint's
/// typedef, a kfunc) has its first letter changed to `x`: a kernel without
/// it, as far as muxtrace can tell (same length, so every offset holds).
pub fn btf_without_name(name: &str) -> tempfile::NamedTempFile {
    let mut data = std::fs::read("/sys/kernel/btf/vmlinux").expect("the kernel's BTF");
    let wanted = format!("\0{name}\0");
    let at = data
        .windows(wanted.len())
        .position(|w| w == wanted.as_bytes())
        .unwrap_or_else(|| panic!("{name} in the kernel's BTF strings"));
    data[at + 1] = b'x';
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), data).unwrap();
    file
}

/// A thread's CPU time as the scheduler counts it, ns: the first field of
/// `/proc/PID/task/TID/schedstat`, what `top` shows.
pub fn scheduler_cpu_ns(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/schedstat"))
        .unwrap_or_else(|e| panic!("schedstat of {pid}: {e}"));
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("schedstat of {pid}: {text:?}"))
}

/// Every thread of `pid` onto `cpu` (`taskset -a -p`).
pub fn pin_to_cpu(pid: u32, cpu: u32) {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset runs");
    assert!(status.success(), "taskset -p {pid}: {status}");
}

/// A loop's iterations, the on-CPU part of its waits and its run-queue
/// delays, since attach, are `scheduler_ns` (its main thread's schedstat
/// over the run) within 8 %: the scheduler charges a thread woken on an
/// idle CPU from the wakeup, so the delays belong in the sum.
pub fn assert_cpu_adds_up(p: &ProcessMetrics, scheduler_ns: u64) {
    let waits = p
        .syscalls
        .iter()
        .filter(|s| s.syscall.is_wait())
        .map(|s| s.total.on_cpu_ns)
        .sum::<u64>();
    let on_cpu = (p.total.iteration_ns + waits) as f64;
    let queued = p.total.runq_ns as f64;
    let scheduler = scheduler_ns as f64;
    println!(
        "{}: scheduler {:.1} ms; muxtrace on-CPU {:.1} ms + run queue {:.1} ms = {:.1} ms",
        p.comm,
        scheduler / 1e6,
        on_cpu / 1e6,
        queued / 1e6,
        (on_cpu + queued) / 1e6
    );
    assert!(
        (on_cpu + queued - scheduler).abs() <= 0.08 * scheduler,
        "{}: scheduler {scheduler} ns; muxtrace on-CPU {on_cpu} + run queue {queued} ns \
         ({} iterations, {} run-queue delays)",
        p.comm,
        p.total.iterations,
        p.total.runq_delays
    );
}

/// Where the cgroup v2 hierarchy is mounted (on a hybrid host, below
/// /sys/fs/cgroup).
pub fn cgroup2_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            (after.split_whitespace().next()? == "cgroup2")
                .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .expect("a cgroup v2 mount")
}
