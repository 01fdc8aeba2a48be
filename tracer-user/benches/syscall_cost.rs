//! What muxtrace adds to one syscall, side by side in one run: a tight loop
//! of zero-timeout `poll` and `epoll_wait` (raw syscalls, nothing to wait
//! for) with no tracer; with the floor, empty programs alone on the two raw
//! syscall tracepoints muxtrace's programs sit on (the kernel's tracepoint
//! slow path and one dispatch each way, which no program there avoids);
//! with muxtrace attached to another process (what every untraced process
//! on the machine pays: the floor and our in-kernel filter); and with
//! muxtrace tracing this process with every probe on. For scale, empty
//! bpftrace probes on the same calls (bpftrace attaches through the
//! perf-event tracepoints). Needs root for the attached cases (and
//! bpftrace for its two); without them they are skipped with a sentence.
//!
//! Two more cases: muxtrace `--cgroup` on an empty cgroup of its own (what
//! a process outside a traced cgroup pays) and `--all` (this process
//! admitted at its first wait, like every waiting process on the machine).
//!
//! With `MUXTRACE_BASELINE=/path/to/muxtrace`, that build traces this
//! process too, in its own case: a change's cost, before and after, in one run.
//!
//! Each case also times `getpid`, a syscall muxtrace never measures: what
//! every other call on the machine pays, against the same floor.
//!
//! `cargo xtask bench` runs this and quotes the differences in its report.
use std::{path::Path, process::Command, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion};
use harness::{muxtrace::json_on, Proc};

const MUXTRACE: &str = env!("CARGO_BIN_EXE_muxtrace");

/// What a case has attached, detached when it is dropped.
enum Tracer {
    Process { _held: Proc },
    Programs { _held: tracer_user::EmptyPrograms },
}

/// muxtrace (this build's, or `exe`) on `pid`, once it says it has attached.
fn attach(exe: &Path, pid: u32) -> Option<Proc> {
    json_on(exe, pid, "1s")
        .map_err(|e| eprintln!("syscall_cost: {e:#}"))
        .ok()
}

/// muxtrace started with `args`, once it says it has attached.
fn attach_with(args: &[&str]) -> Option<Proc> {
    harness::start_muxtrace(Path::new(MUXTRACE), args)
        .map_err(|e| eprintln!("syscall_cost: {e:#}"))
        .ok()
}

/// A cgroup v2 of the bench's own with nothing in it, removed on drop.
struct EmptyCgroup {
    dir: std::path::PathBuf,
}

impl EmptyCgroup {
    fn create() -> Option<EmptyCgroup> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = info.lines().find_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            (after.split_whitespace().next()? == "cgroup2")
                .then(|| before.split_whitespace().nth(4))?
        })?;
        let dir = Path::new(mount).join(format!("muxtrace-bench-{}", std::process::id()));
        std::fs::create_dir(&dir)
            .map_err(|e| eprintln!("syscall_cost: cannot make a cgroup: {e}"))
            .ok()?;
        Some(EmptyCgroup { dir })
    }
}

impl Drop for EmptyCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Empty bpftrace probes on this process's poll and epoll_wait, attached.
fn empty_probes(pid: u32) -> Option<Proc> {
    empty_bpftrace(&format!(
        "tracepoint:syscalls:sys_enter_poll, tracepoint:syscalls:sys_enter_epoll_wait, \
         tracepoint:syscalls:sys_exit_poll, tracepoint:syscalls:sys_exit_epoll_wait \
         /pid == {pid}/ {{ }}"
    ))
}

/// Empty bpftrace probes on every syscall's entry and exit (the raw
/// syscall tracepoints muxtrace also sits on): the floor for a syscall
/// muxtrace never measures, such as getpid.
fn empty_raw_probes() -> Option<Proc> {
    empty_bpftrace("tracepoint:raw_syscalls:sys_enter, tracepoint:raw_syscalls:sys_exit { }")
}

fn empty_bpftrace(script: &str) -> Option<Proc> {
    if !harness::procfs::syscall_tracepoints_ready() {
        eprintln!(
            "syscall_cost: tracefs is not mounted at /sys/kernel/tracing and could not be, \
             so bpftrace has no tracepoints to attach to: its case is not measured"
        );
        return None;
    }
    let bpftrace = Proc::spawn(Command::new("bpftrace").args(["-e", script]))
        .map_err(|e| eprintln!("syscall_cost: no bpftrace, so no floor measured: {e:#}"))
        .ok()?;
    // "Attaching 4 probes..." comes just before the attach itself.
    match bpftrace.wait_line("Attaching", Duration::from_secs(60)) {
        Ok(_) => {
            std::thread::sleep(Duration::from_secs(1));
            Some(bpftrace)
        }
        Err(e) => {
            eprintln!("syscall_cost: bpftrace did not attach, so no floor measured: {e:#}");
            None
        }
    }
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

/// One byte out of a connected socket and back in on its peer: the echo
/// servers' calls (socket-only: no fd class to find).
fn sendto_recvfrom(pair: [i32; 2]) {
    let mut byte = 0u8;
    // SAFETY: a one-byte buffer on our own connected sockets.
    unsafe {
        libc::syscall(libc::SYS_sendto, pair[0], &byte, 1, 0, 0, 0usize);
        libc::syscall(libc::SYS_recvfrom, pair[1], &mut byte, 1, 0, 0, 0usize);
    }
}

/// The same by `write` and `read`, as redis and nginx make them: calls
/// that work on any fd, so muxtrace finds the fd's class (socket or not)
/// at each return.
fn write_read(pair: [i32; 2]) {
    let mut byte = 0u8;
    // SAFETY: as above.
    unsafe {
        libc::syscall(libc::SYS_write, pair[0], &byte, 1);
        libc::syscall(libc::SYS_read, pair[1], &mut byte, 1);
    }
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
    let mut sockets = [0i32; 2];
    // SAFETY: socketpair fills the two fds it is given.
    let made =
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sockets.as_mut_ptr()) };
    assert_eq!(made, 0, "socketpair: {}", std::io::Error::last_os_error());
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("syscall_cost: not root, so only the untraced case runs (muxtrace needs root)");
    }
    let bystander = Proc::spawn(Command::new("sleep").arg("3600")).expect("start sleep");
    let bystander_pid = bystander.pid();

    let mut group = c.benchmark_group("syscall_cost");
    let me = std::process::id();
    let mut cases: Vec<(&str, Option<u32>)> = vec![
        ("untraced", None),
        ("other_process_traced", Some(bystander_pid)),
        ("traced", Some(me)),
        ("empty_programs", Some(me)),
        ("empty_bpftrace_probes", Some(me)),
        ("empty_raw_syscall_probes", Some(me)),
    ];
    // Another build of muxtrace (an earlier commit's, say) traced the same
    // way in the same run: a change's cost as a side-by-side difference.
    let baseline = std::env::var_os("MUXTRACE_BASELINE").map(std::path::PathBuf::from);
    if baseline.is_some() {
        cases.insert(3, ("traced_by_baseline", Some(me)));
    }
    cases.push(("outside_the_traced_cgroup", Some(me)));
    cases.push(("admitted_by_all", Some(me)));
    let cgroup = if root { EmptyCgroup::create() } else { None };
    for (case, target) in cases {
        let _tracer = match target {
            None => None,
            Some(_) if !root => continue,
            Some(_) if case == "outside_the_traced_cgroup" => {
                let Some(cgroup) = &cgroup else {
                    continue;
                };
                let dir = cgroup.dir.display().to_string();
                match attach_with(&["--cgroup", &dir, "--json"]) {
                    Some(t) => Some(Tracer::Process { _held: t }),
                    None => continue,
                }
            }
            Some(_) if case == "admitted_by_all" => match attach_with(&["--all", "--json"]) {
                Some(t) => Some(Tracer::Process { _held: t }),
                None => continue,
            },
            Some(pid) if case == "empty_bpftrace_probes" => match empty_probes(pid) {
                Some(t) => Some(Tracer::Process { _held: t }),
                None => continue,
            },
            Some(_) if case == "empty_programs" => match tracer_user::EmptyPrograms::attach() {
                Ok(t) => {
                    std::thread::sleep(Duration::from_secs(1));
                    Some(Tracer::Programs { _held: t })
                }
                Err(e) => {
                    eprintln!("syscall_cost: the empty programs did not attach: {e}");
                    continue;
                }
            },
            Some(_) if case == "empty_raw_syscall_probes" => match empty_raw_probes() {
                Some(t) => Some(Tracer::Process { _held: t }),
                None => continue,
            },
            Some(pid) => match attach(
                match (case, &baseline) {
                    ("traced_by_baseline", Some(exe)) => exe,
                    _ => Path::new(MUXTRACE),
                },
                pid,
            ) {
                Some(t) => Some(Tracer::Process { _held: t }),
                None => continue,
            },
        };
        group.bench_function(format!("poll/{case}"), |b| b.iter(poll_zero));
        group.bench_function(format!("epoll_wait/{case}"), |b| {
            b.iter(|| epoll_wait_zero(epfd))
        });
        // A syscall muxtrace never measures: what every other call on the
        // machine pays for its programs.
        group.bench_function(format!("getpid/{case}"), |b| {
            // SAFETY: getpid has no arguments and cannot fail.
            b.iter(|| unsafe { libc::syscall(libc::SYS_getpid) })
        });
    }
    group.finish();
    if root {
        program_cost(epfd, sockets, bystander_pid, baseline.as_deref());
    }
    drop(bystander);
}

/// Calls per measurement of [`program_cost`], and measurements per figure.
const PROGRAM_COST_CALLS: u32 = 200_000;
const PROGRAM_COST_REPEATS: usize = 7;
/// With a baseline, the measurements of each figure are spread over this
/// many rounds, alternating the builds (one loop each per round: 7 in all).
const PROGRAM_COST_ROUNDS: usize = 7;

/// The programs' own cost per call, beside the floor on the very same
/// calls: muxtrace's syscall programs and the empty ones are attached at
/// once, the kernel's run-time accounting times both, and what muxtrace's
/// pair spent beyond the empty pair, over the loop's calls, is what
/// muxtrace adds above the floor. Unlike the criterion cases, which run one
/// after another and drift by tens of ns on a shared machine, both sides
/// here share every call. The kernel runs a tracepoint's programs in the
/// order they attached, which moved the figure by up to 11 ns, so each is
/// measured with the empty pair attached before muxtrace and after it, and
/// is the mean of the two orders' medians. The first loop after an attach
/// is not measured: for `poll` it read −108 ns where every later one read
/// +188 (cause not found; with one loop per round, every round read it).
/// Printed, and written as JSON to the file `MUXTRACE_PROGRAM_COST` names
/// (the bench report reads it).
fn program_cost(epfd: i32, sockets: [i32; 2], bystander_pid: u32, baseline: Option<&Path>) {
    let attach_floor = || match tracer_user::EmptyPrograms::attach() {
        Ok(floor) => Some(floor),
        Err(e) => {
            eprintln!("syscall_cost: the empty programs did not attach, so no program cost: {e}");
            None
        }
    };
    let me = std::process::id();
    let mut cases: Vec<(&str, &Path, u32, &[&str])> = vec![
        (
            "other_process_traced",
            Path::new(MUXTRACE),
            bystander_pid,
            &[],
        ),
        ("traced", Path::new(MUXTRACE), me, &[]),
        // The documented sampled mode: one call and one loop iteration in
        // 16 timed, every count exact.
        (
            "traced_time_every_16",
            Path::new(MUXTRACE),
            me,
            &["--time-every", "16"],
        ),
    ];
    // The baseline build on the same calls, in the same rounds: a change's
    // cost by the kernel's own accounting, side by side.
    if let Some(exe) = baseline {
        cases.push(("traced_by_baseline", exe, me, &[]));
    }
    // Each with the syscalls one run of it makes: the figures are per call.
    let calls: [(&str, &dyn Fn(), u32); 5] = [
        ("poll", &poll_zero, 1),
        ("epoll_wait", &|| epoll_wait_zero(epfd), 1),
        ("sendto_recvfrom", &|| sendto_recvfrom(sockets), 2),
        ("write_read", &|| write_read(sockets), 2),
        (
            "getpid",
            &|| {
                // SAFETY: getpid has no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getpid) };
            },
            1,
        ),
    ];
    // By the empty pair's place: [attached first, attached last].
    let mut added: std::collections::BTreeMap<String, [Vec<f64>; 2]> = Default::default();
    // Rounds alternate the builds, so the VM's drift hits both alike.
    let rounds = if baseline.is_some() {
        PROGRAM_COST_ROUNDS
    } else {
        1
    };
    for _ in 0..rounds {
        for (case, exe, pid, extra) in &cases {
            for (place, floor_first) in [true, false].into_iter().enumerate() {
                let floor_before = if floor_first {
                    let Some(floor) = attach_floor() else { return };
                    Some(floor)
                } else {
                    None
                };
                let pid = pid.to_string();
                let args = [&["--pid", &pid, "--json", "--interval", "1s"], *extra].concat();
                let Some(_tracer) = harness::start_muxtrace(exe, &args)
                    .map_err(|e| eprintln!("syscall_cost: {e:#}"))
                    .ok()
                else {
                    continue;
                };
                let floor_after = if floor_first {
                    None
                } else {
                    let Some(floor) = attach_floor() else { return };
                    Some(floor)
                };
                let Ok(_stats) = aya::sys::enable_stats(aya::sys::Stats::RunTime) else {
                    eprintln!(
                        "syscall_cost: the kernel keeps no program run time, so no program cost"
                    );
                    return;
                };
                for (syscall, call, per_run) in calls {
                    for _ in 0..PROGRAM_COST_CALLS {
                        call();
                    }
                    for _ in 0..PROGRAM_COST_REPEATS / rounds {
                        let before = program_run_time_ns();
                        for _ in 0..PROGRAM_COST_CALLS {
                            call();
                        }
                        let after = program_run_time_ns();
                        let spent = |i: usize| after[i].saturating_sub(before[i]) as f64;
                        added.entry(format!("{syscall}/{case}")).or_default()[place]
                            .push((spent(0) - spent(1)) / f64::from(PROGRAM_COST_CALLS * per_run));
                    }
                }
                drop((floor_before, floor_after));
            }
        }
    }
    let median = |runs: &mut Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    let mut figures = serde_json::Map::new();
    for (key, [mut first, mut last]) in added {
        if first.is_empty() || last.is_empty() {
            continue;
        }
        let (first, last) = (median(&mut first), median(&mut last));
        let mean = (first + last) / 2.0;
        println!(
            "syscall_cost/program_cost/{key}: {mean:+.1} ns per call above the empty \
             programs (attached before muxtrace {first:+.1}, after it {last:+.1})"
        );
        figures.insert(key, mean.into());
    }
    if let Some(path) = std::env::var_os("MUXTRACE_PROGRAM_COST") {
        let json = serde_json::Value::Object(figures).to_string();
        if let Err(e) = std::fs::write(&path, json) {
            eprintln!(
                "syscall_cost: cannot write {}: {e}",
                Path::new(&path).display()
            );
        }
    }
}

/// Run time so far (ns, machine-wide) of muxtrace's two syscall programs
/// and of the two empty ones.
fn program_run_time_ns() -> [u64; 2] {
    let mut spent = [0; 2];
    for info in aya::programs::loaded_programs().filter_map(Result::ok) {
        let side = match info.name_as_str() {
            Some("mux_sys_enter" | "mux_sys_exit") => 0,
            Some("floor_sys_enter" | "floor_sys_exit") => 1,
            _ => continue,
        };
        spent[side] += info.run_time().as_nanos() as u64;
    }
    spent
}

criterion_group!(benches, syscall_cost);
criterion_main!(benches);
