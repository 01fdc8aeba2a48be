//! Kernel tests of the processes the kernel admits by itself: `--all` finds
//! a process nobody named, `--cgroup` one in a cgroup the test makes (and
//! below it, and one moved in after attach) and none outside it, and a full
//! traced set evicts the least active, counted. Run as root, one at a time
//! (`cargo xtask test`).
mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::*;
use harness::{
    muxtrace::{final_metrics, json_lines, total},
    proc::Stream,
};
use tracer_common::SyscallKind;
use tracer_model::{Metrics, ProcessMetrics};

/// A copy of a test program under a name of its own (its comm), so the
/// test finds it among every process muxtrace reports.
struct Named {
    _dir: tempfile::TempDir,
    exe: PathBuf,
    name: String,
}

fn named(program: &str, prefix: &str) -> Named {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{prefix}{}", std::process::id());
    let exe = dir.path().join(&name);
    fs::copy(workspace_bin(program), &exe).unwrap();
    Named {
        _dir: dir,
        exe,
        name,
    }
}

/// A syscall-burst copy that has set up and waits for SIGUSR1 to make
/// exactly `counts`.
fn burst_named(program: &Named, counts: &[(SyscallKind, u64)]) -> Proc {
    let mut cmd = Command::new(&program.exe);
    cmd.arg("--wait-signal");
    for (kind, n) in counts {
        cmd.args(["--count", &format!("{}={n}", kind.name())]);
    }
    let p = spawn(&mut cmd);
    p.wait_line("ready ", LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    p
}

/// The process (or the folded entry of exited ones) named `comm`.
fn by_comm<'a>(metrics: &'a Metrics, comm: &str) -> Option<&'a ProcessMetrics> {
    metrics.processes.iter().find(|p| p.comm == comm)
}

/// Exactly `counts` in `p`, and no other kind; `metrics`' losses and map
/// occupancy are shown when not (a busy machine could fill a map).
fn assert_counts(metrics: &Metrics, p: &ProcessMetrics, counts: &[(SyscallKind, u64)]) {
    for (kind, n) in counts {
        let calls = total(p, *kind).map_or(0, |w| w.calls);
        assert_eq!(
            calls, *n,
            "{}: {kind} reported {calls}, made {n}; losses {:?}, map entries {:?}",
            p.comm, metrics.losses, metrics.map_entries
        );
    }
    let made: Vec<SyscallKind> = counts.iter().map(|(k, _)| *k).collect();
    for s in &p.syscalls {
        assert!(
            made.contains(&s.syscall),
            "{}: {} reported, never made",
            p.comm,
            s.syscall
        );
    }
}

/// Waits for a test program's exit; it must end by itself.
fn wait_exit(p: Proc) {
    let (code, _, stderr) = finish(p, LONG);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn all_finds_a_process_nobody_named_with_exact_counts_and_never_itself() {
    assert!(
        wait_no_programs_loaded().is_empty(),
        "programs of ours loaded before the test"
    );
    let program = named("syscall-burst", "mxall");
    let counts = burst_counts(5);
    let burst = burst_named(&program, &counts);
    let mt = muxtrace(&["--all", "--json", "--interval", "300ms"]);
    let own_pid = mt.pid();
    burst.signal(libc::SIGUSR1);
    wait_exit(burst);
    // A reading after the exit, so the final figures are the burst's all.
    std::thread::sleep(Duration::from_millis(700));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let last = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = by_comm(&last, &program.name)
        .unwrap_or_else(|| panic!("{} not found by --all:\n{stdout}", program.name));
    // Admitted at its first wait call, its first select: the burst's sends
    // and receives came before it, and the setup's epoll_ctl; from the
    // select on, every count is exactly the burst's.
    let from_first_wait: Vec<(SyscallKind, u64)> = counts
        .iter()
        .copied()
        .filter(|(k, _)| k.is_wait() || k.is_accept() || *k == SyscallKind::EpollCtl)
        .collect();
    assert_eq!(from_first_wait.len(), 10);
    assert_counts(&last, p, &from_first_wait);
    for line in json_lines(&stdout).unwrap() {
        assert!(
            line.metrics
                .processes
                .iter()
                .all(|p| p.pid != own_pid && p.comm != "muxtrace"),
            "muxtrace traced itself"
        );
    }
    assert_detached();
}

/// A cgroup v2 directory the test made, removed when the test ends, also
/// when it fails: whatever is left in it moves to the root cgroup first.
struct TestCgroup {
    mount: PathBuf,
    dir: PathBuf,
}

impl TestCgroup {
    fn create() -> TestCgroup {
        let mount = cgroup2_mount();
        let dir = mount.join(format!("muxtrace-test-{}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TestCgroup { mount, dir }
    }

    /// A cgroup below this one.
    fn child(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        fs::create_dir(&dir).unwrap();
        dir
    }

    /// The path muxtrace is given: below the cgroup v2 mount.
    fn arg(&self) -> String {
        self.dir
            .strip_prefix(&self.mount)
            .unwrap()
            .display()
            .to_string()
    }
}

fn move_into(cgroup: &Path, pid: u32) {
    fs::write(cgroup.join("cgroup.procs"), pid.to_string())
        .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", cgroup.display()));
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // Deepest first: a cgroup with children cannot go.
            let mut dirs = vec![self.dir.clone()];
            let mut i = 0;
            while i < dirs.len() {
                if let Ok(entries) = fs::read_dir(&dirs[i]) {
                    dirs.extend(
                        entries
                            .flatten()
                            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                            .map(|e| e.path()),
                    );
                }
                i += 1;
            }
            for dir in dirs.iter().rev() {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines() {
                    let _ = fs::write(self.mount.join("cgroup.procs"), pid);
                }
                let _ = fs::remove_dir(dir);
            }
            if !self.dir.exists() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.dir.exists() {
            eprintln!("could not remove cgroup {}", self.dir.display());
        }
    }
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn cgroup_counts_its_processes_and_those_below_and_moved_in_later_and_none_outside() {
    let cgroup = TestCgroup::create();
    let sub = cgroup.child("sub");
    let (in_sub, outside, later, later_sub) = (
        named("syscall-burst", "mxsub"),
        named("syscall-burst", "mxout"),
        named("syscall-burst", "mxlate"),
        named("syscall-burst", "mxlsub"),
    );
    let (sub_counts, outside_counts, later_counts, later_sub_counts) = (
        burst_counts(5),
        burst_counts(6),
        burst_counts(7),
        burst_counts(8),
    );
    let in_sub_p = burst_named(&in_sub, &sub_counts);
    move_into(&sub, in_sub_p.pid());
    let outside_p = burst_named(&outside, &outside_counts);
    let mt = muxtrace(&["--cgroup", &cgroup.arg(), "--json", "--interval", "300ms"]);
    // Started after attach, outside, then moved in (and below): the
    // kernel admits them.
    let later_p = burst_named(&later, &later_counts);
    move_into(&cgroup.dir, later_p.pid());
    let later_sub_p = burst_named(&later_sub, &later_sub_counts);
    move_into(&sub, later_sub_p.pid());
    for p in [&in_sub_p, &outside_p, &later_p, &later_sub_p] {
        p.signal(libc::SIGUSR1);
    }
    for p in [in_sub_p, outside_p, later_p, later_sub_p] {
        wait_exit(p);
    }
    std::thread::sleep(Duration::from_millis(700));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let last = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let found = |name: &str| {
        by_comm(&last, name).unwrap_or_else(|| panic!("{name} not in the report:\n{stdout}"))
    };
    assert_counts(&last, found(&in_sub.name), &sub_counts);
    assert_counts(&last, found(&later.name), &later_counts);
    assert_counts(&last, found(&later_sub.name), &later_sub_counts);
    for line in json_lines(&stdout).unwrap() {
        assert!(
            by_comm(&line.metrics, &outside.name).is_none(),
            "a process outside the cgroup was traced:\n{stdout}"
        );
    }
    assert_detached();
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_full_traced_set_evicts_the_least_active_and_counts_them() {
    let cgroup = TestCgroup::create();
    let quiet = named("looplab", "mxq");
    let busy = named("looplab", "mxb");
    // Quiet loops wait 200 ms at a time, busy ones 1 ms; both for 20 s
    // from SIGUSR1.
    let start = |program: &Named, wait_ms: &str| {
        let p = spawn(Command::new(&program.exe).args(["steady", "0", wait_ms, "20"]));
        p.wait_line("ready ", LONG)
            .unwrap_or_else(|e| panic!("{e:#}"));
        move_into(&cgroup.dir, p.pid());
        p.signal(libc::SIGUSR1);
        p
    };
    let quiet_loops = [start(&quiet, "200"), start(&quiet, "200")];
    let mt = muxtrace(&[
        "--cgroup",
        &cgroup.arg(),
        "--max-processes",
        "2",
        "--json",
        "--interval",
        "100ms",
    ]);
    // Readings that show how active the two quiet loops are.
    std::thread::sleep(Duration::from_millis(600));
    let busy_loops = [start(&busy, "1"), start(&busy, "1")];
    // Each busy loop is refused at its calls until a quiet one is evicted:
    // one eviction a reading at most, so on a loaded machine a fixed wait
    // could end the session between the two.
    eventually("two evictions", Duration::from_secs(30), || {
        let stdout = mt.lines(Stream::Stdout).join("\n");
        let last = json_lines(&stdout).ok()?.pop()?;
        (last.metrics.losses.get("evicted") >= Some(&2)).then_some(())
    });
    // A few readings more: the busy loops traced with nothing left to evict.
    std::thread::sleep(Duration::from_millis(500));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let lines = json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    for line in &lines {
        let traced = line.metrics.map_entries.get("traced").copied();
        assert!(traced <= Some(2), "traced set over its bound: {traced:?}");
    }
    let last = &lines.last().expect("a final line").metrics;
    assert_eq!(
        last.losses.get("evicted"),
        Some(&2),
        "four loops for two places: two evicted\n{stdout}"
    );
    assert!(
        last.losses.get("traced_map_full").is_some_and(|n| *n > 0),
        "the busy loops were refused before the evictions: {:?}",
        last.losses
    );
    // The quiet ones went, their figures folded, like exited processes'.
    let q = by_comm(last, &quiet.name).unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!((q.pid, q.folded), (0, 2), "{stdout}");
    assert!(total(q, SyscallKind::EpollWait).is_some_and(|w| w.calls > 0));
    // The busy ones are traced to the end.
    let busy_traced: Vec<&ProcessMetrics> = last
        .processes
        .iter()
        .filter(|p| p.comm == busy.name && p.alive)
        .collect();
    assert_eq!(busy_traced.len(), 2, "{stdout}");
    // The evicted loops' threads left the kernel's slots with them.
    let busy_threads: usize = busy_traced.iter().map(|p| p.threads.len()).sum();
    assert!(busy_threads >= 2, "{stdout}");
    assert_eq!(
        last.map_entries.get("threads").copied(),
        Some(busy_threads as u64),
        "an evicted loop's thread still holds a slot\n{stdout}"
    );
    drop((quiet_loops, busy_loops));
    assert_detached();
}

/// Loops of one name that run a second each: started, moved into `cgroup`
/// when given, waiting for SIGUSR1.
fn short_loops(program: &Named, n: usize, cgroup: Option<&Path>) -> Vec<Proc> {
    (0..n)
        .map(|_| {
            let p = spawn(Command::new(&program.exe).args(["steady", "0", "10", "1"]));
            p.wait_line("ready ", LONG)
                .unwrap_or_else(|e| panic!("{e:#}"));
            if let Some(dir) = cgroup {
                move_into(dir, p.pid());
            }
            p
        })
        .collect()
}

/// Sends each loop its SIGUSR1 and waits for its exit: the seconds from
/// `attached` to each exit, as the test clocked them.
fn run_to_exit(loops: Vec<Proc>, attached: Instant) -> Vec<f64> {
    for p in &loops {
        p.signal(libc::SIGUSR1);
    }
    loops
        .into_iter()
        .map(|p| {
            wait_exit(p);
            attached.elapsed().as_secs_f64()
        })
        .collect()
}

/// Within this of the test's clock: muxtrace starts its clock a little
/// before the test reads its "attached" line, and a loop's exit is seen
/// when it is reaped.
const TRACED_TIME_SLACK_S: f64 = 0.25;

/// Processes that exit early in a long session are traced to their exit:
/// two loops of one name, folded, hold their two times traced summed, and
/// not the session's time twice.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn folded_processes_are_traced_to_their_exits() {
    let cgroup = TestCgroup::create();
    let short = named("looplab", "mxs");
    let loops = short_loops(&short, 2, Some(&cgroup.dir));
    let mt = muxtrace(&["--cgroup", &cgroup.arg(), "--json", "--interval", "200ms"]);
    let mut pids: Vec<u32> = loops.iter().map(Proc::pid).collect();
    let lived: f64 = run_to_exit(loops, Instant::now()).iter().sum();
    // The session goes on well past their exits.
    std::thread::sleep(Duration::from_millis(2500));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let last = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let folded = by_comm(&last, &short.name).unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!((folded.pid, folded.folded), (0, 2), "{stdout}");
    // Named by their pids still.
    let mut listed = folded.folded_pids.clone();
    listed.sort();
    pids.sort();
    assert_eq!(listed, pids, "{stdout}");
    assert!(last.elapsed_s > lived / 2.0 + 2.0, "{}", last.elapsed_s);
    assert!(
        (folded.total.seconds - lived).abs() < 2.0 * TRACED_TIME_SLACK_S,
        "traced {:.3} s in all, where the test clocked {lived:.3}",
        folded.total.seconds
    );
    // Each call counts in one line's interval: in the loop's own lines
    // while it ran, then in the folded row's as it joined it (which held
    // its whole life again). The last lines' intervals, which the final one
    // may span as one, came long after.
    let lines = json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let in_intervals: u64 = lines
        .iter()
        .flat_map(|l| &l.metrics.processes)
        .filter(|p| p.comm == short.name)
        .map(|p| p.interval.calls)
        .sum();
    assert_eq!(
        in_intervals, folded.total.calls,
        "the lines' intervals vs the run's total\n{stdout}"
    );
    assert_detached();
}

/// A process named by pid that exits while another goes on keeps its own
/// time traced, to its exit.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_named_process_that_exits_early_is_traced_to_its_exit() {
    let program = named("looplab", "mxn");
    let short = short_loops(&program, 1, None);
    let long = spawn(Command::new(&program.exe).args(["steady", "0", "10", "30"]));
    long.wait_line("ready ", LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let short_pid = short[0].pid();
    let (a, b) = (short_pid.to_string(), long.pid().to_string());
    let mt = muxtrace(&["--pid", &a, "--pid", &b, "--json", "--interval", "200ms"]);
    long.signal(libc::SIGUSR1);
    let lived = run_to_exit(short, Instant::now())[0];
    std::thread::sleep(Duration::from_millis(2500));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    drop(long);
    let last = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = last
        .processes
        .iter()
        .find(|p| p.pid == short_pid)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(!p.alive);
    assert!(
        (p.total.seconds - lived).abs() < TRACED_TIME_SLACK_S,
        "traced {:.3} s, where the test clocked {lived:.3}",
        p.total.seconds
    );
    assert!(last.elapsed_s > lived + 2.0, "{}", last.elapsed_s);
    assert_detached();
}

/// A process already running when it is moved into the `--cgroup` after
/// attach is traced from the move, not from attach: one still running at
/// the end, and one that exits before it (its time from the kernel's exit
/// record).
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_process_moved_in_after_attach_is_traced_from_its_move() {
    let cgroup = TestCgroup::create();
    let stays = named("looplab", "mxm");
    let leaves = named("looplab", "mxl");
    let stay = spawn(Command::new(&stays.exe).args(["steady", "0", "10", "30"]));
    let leave = spawn(Command::new(&leaves.exe).args(["steady", "0", "10", "30"]));
    for p in [&stay, &leave] {
        p.wait_line("ready ", LONG)
            .unwrap_or_else(|e| panic!("{e:#}"));
        // Both loop, outside the cgroup, from before attach.
        p.signal(libc::SIGUSR1);
    }
    // Readings more often than liveness polls: one between a move and
    // the next poll is likely.
    let mt = muxtrace(&["--cgroup", &cgroup.arg(), "--json", "--interval", "50ms"]);
    let attached = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let moved_at = attached.elapsed().as_secs_f64();
    move_into(&cgroup.dir, stay.pid());
    move_into(&cgroup.dir, leave.pid());
    std::thread::sleep(Duration::from_millis(1000));
    leave.signal(libc::SIGKILL);
    let left_at = attached.elapsed().as_secs_f64();
    drop(leave);
    std::thread::sleep(Duration::from_millis(1500));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    drop(stay);
    // From the first line that shows it, between two liveness polls or not.
    for line in json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}")) {
        if let Some(p) = by_comm(&line.metrics, &stays.name) {
            let since_move = line.metrics.elapsed_s - moved_at;
            assert!(
                p.total.seconds < since_move + TRACED_TIME_SLACK_S,
                "traced {:.3} s at {:.3} s, {since_move:.3} s after its move",
                p.total.seconds,
                line.metrics.elapsed_s
            );
        }
    }
    let last = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let stayed = by_comm(&last, &stays.name).unwrap_or_else(|| panic!("{stdout}"));
    let since_move = last.elapsed_s - moved_at;
    assert!(
        (stayed.total.seconds - since_move).abs() < TRACED_TIME_SLACK_S,
        "traced {:.3} s, where it was in the cgroup for {since_move:.3} of {:.3}",
        stayed.total.seconds,
        last.elapsed_s
    );
    let left = by_comm(&last, &leaves.name).unwrap_or_else(|| panic!("{stdout}"));
    let lived = left_at - moved_at;
    assert!(
        (left.total.seconds - lived).abs() < TRACED_TIME_SLACK_S,
        "traced {:.3} s to its exit, where it was in the cgroup for {lived:.3}",
        left.total.seconds
    );
    assert_detached();
}

/// Under `--all` a process that ran already but waits only later is traced
/// from its first wait (its admission), before which nothing of it was
/// measured.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn all_times_a_process_from_its_first_wait() {
    let program = named("looplab", "mxw");
    let lp = spawn(Command::new(&program.exe).args(["steady", "0", "10", "30"]));
    lp.wait_line("ready ", LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mt = muxtrace(&["--all", "--json", "--interval", "200ms"]);
    let attached = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    // Blocked in sigwaitinfo until now: its loop's first wait admits it.
    lp.signal(libc::SIGUSR1);
    let first_wait_at = attached.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    drop(lp);
    let last = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = by_comm(&last, &program.name).unwrap_or_else(|| panic!("{stdout}"));
    let since_first_wait = last.elapsed_s - first_wait_at;
    assert!(
        (p.total.seconds - since_first_wait).abs() < TRACED_TIME_SLACK_S,
        "traced {:.3} s, where it waited from {first_wait_at:.3} s of {:.3}",
        p.total.seconds,
        last.elapsed_s
    );
    assert_detached();
}
