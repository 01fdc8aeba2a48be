//! What muxtrace adds to one syscall, side by side in one run: a tight loop
//! of zero-timeout `poll` and `epoll_wait` (raw syscalls, nothing to wait
//! for) with no tracer, with muxtrace attached to another process (what every
//! untraced process on the machine pays: the kernel's syscall-tracepoint slow
//! path and our in-kernel filter), and with muxtrace tracing this process
//! with every probe on — and, for scale, with empty bpftrace probes on the
//! same enter/exit tracepoints of this process: what the tracepoint
//! mechanism costs before any measuring, the floor under every tool built on
//! it. Needs root for the attached cases (and bpftrace for the floor);
//! without them they are skipped with a sentence.
//!
//! `cargo xtask bench` runs this and quotes the differences in its report.
use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion};

const MUXTRACE: &str = env!("CARGO_BIN_EXE_muxtrace");

/// A child stopped by pid (SIGINT, then SIGKILL) when dropped.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// muxtrace on `pid`, once it says it has attached.
fn attach(pid: u32) -> Option<Stopped> {
    let mut child = Command::new(MUXTRACE)
        .args(["--pid", &pid.to_string(), "--json", "--interval", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let stderr = child.stderr.take()?;
    let guard = Stopped(child);
    let mut said = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.ok()?;
        if line.contains("muxtrace: attached") {
            return Some(guard);
        }
        said.push_str(&line);
        said.push('\n');
    }
    eprintln!("syscall_cost: muxtrace did not attach: {}", said.trim());
    None
}

/// Empty bpftrace probes on this process's poll and epoll_wait, attached.
fn empty_probes(pid: u32) -> Option<Stopped> {
    let script = format!(
        "tracepoint:syscalls:sys_enter_poll, tracepoint:syscalls:sys_enter_epoll_wait, \
         tracepoint:syscalls:sys_exit_poll, tracepoint:syscalls:sys_exit_epoll_wait \
         /pid == {pid}/ {{ }}"
    );
    let mut child = Command::new("bpftrace")
        .args(["-e", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| eprintln!("syscall_cost: no bpftrace, so no floor measured: {e}"))
        .ok()?;
    let stdout = child.stdout.take()?;
    let guard = Stopped(child);
    for line in BufReader::new(stdout).lines() {
        // "Attaching 4 probes..." comes just before the attach itself.
        if line.ok()?.contains("Attaching") {
            std::thread::sleep(Duration::from_secs(1));
            return Some(guard);
        }
    }
    eprintln!("syscall_cost: bpftrace did not attach, so no floor measured");
    None
}

fn poll_zero() {
    let mut pfd = libc::pollfd {
        fd: 0,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::syscall(libc::SYS_poll, &mut pfd, 1, 0) };
}

fn epoll_wait_zero(epfd: i32) {
    let mut events: [libc::epoll_event; 8] = unsafe { std::mem::zeroed() };
    // SAFETY: a valid buffer of 8 events.
    unsafe { libc::syscall(libc::SYS_epoll_wait, epfd, events.as_mut_ptr(), 8, 0) };
}

fn syscall_cost(c: &mut Criterion) {
    // An epoll set with one idle pipe: epoll_wait returns 0 at once.
    let mut pipe = [0i32; 2];
    // SAFETY: plain fd syscalls on our own descriptors.
    let epfd = unsafe {
        libc::pipe(pipe.as_mut_ptr());
        let epfd = libc::epoll_create1(0);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, pipe[0], &mut ev);
        epfd
    };
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("syscall_cost: not root, so only the untraced case runs (muxtrace needs root)");
    }
    let mut bystander = Command::new("sleep")
        .arg("3600")
        .spawn()
        .expect("start sleep");
    let bystander_pid = bystander.id();

    let mut group = c.benchmark_group("syscall_cost");
    let me = std::process::id();
    let cases: [(&str, Option<u32>); 4] = [
        ("untraced", None),
        ("other_process_traced", Some(bystander_pid)),
        ("traced", Some(me)),
        ("empty_bpftrace_probes", Some(me)),
    ];
    for (case, target) in cases {
        let _tracer = match target {
            None => None,
            Some(_) if !root => continue,
            Some(pid) if case == "empty_bpftrace_probes" => match empty_probes(pid) {
                Some(t) => Some(t),
                None => continue,
            },
            Some(pid) => match attach(pid) {
                Some(t) => Some(t),
                None => continue,
            },
        };
        group.bench_function(format!("poll/{case}"), |b| b.iter(poll_zero));
        group.bench_function(format!("epoll_wait/{case}"), |b| {
            b.iter(|| epoll_wait_zero(epfd))
        });
    }
    group.finish();
    let _ = bystander.kill();
    let _ = bystander.wait();
}

criterion_group!(benches, syscall_cost);
criterion_main!(benches);
