//! Kernel tests in a pid namespace the test makes (`unshare --fork --pid
//! --mount-proc`), muxtrace running inside it as in a container: the pids
//! given and shown are the namespace's, the counts exact. Run as root, one
//! at a time (`cargo xtask test`).
mod common;

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::*;
use harness::muxtrace::{json_lines, process, total, LineKind};
use tracer_common::SyscallKind;
use tracer_model::Metrics;

/// A pid namespace with its own /proc. Its init (pid 1) is a `sleep`, so the
/// namespace outlives the programs under test (the init's death would kill
/// muxtrace in it before its last line); `unshare --kill-child` ties the init
/// to the unshare process, so stopping that by pid ends the namespace and
/// everything in it.
struct Namespace {
    unshare: Proc,
    /// The init's pid on the host, for nsenter.
    init: u32,
}

impl Namespace {
    /// Starts `sh -c script` as pid 2 of a new namespace (its output is the
    /// unshare's), with `args` as $1….
    fn start(script: &str, args: &[&str]) -> Namespace {
        let unshare = spawn(
            Command::new("unshare")
                .args(["--fork", "--pid", "--mount-proc", "--kill-child"])
                .args([
                    "sh",
                    "-c",
                    &format!("sh -c '{script}' sh \"$@\" & exec sleep 600"),
                ])
                .arg("sh")
                .args(args),
        );
        let init = eventually("the namespace's init", LONG, || {
            children(unshare.pid()).into_iter().next()
        });
        Namespace { unshare, init }
    }

    /// Runs `args` inside the namespace, as `docker exec` would.
    fn enter(&self, args: &[&str]) -> Proc {
        harness::start_muxtrace(
            Path::new("nsenter"),
            &[
                &["--target", &self.init.to_string(), "--pid", "--mount", "--"],
                args,
            ]
            .concat(),
        )
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The host pid of the namespace's `ns_pid`.
    fn host_pid(&self, ns_pid: u32) -> u32 {
        let ns = fs::read_link(format!("/proc/{}/ns/pid", self.init)).unwrap();
        eventually(&format!("the host pid of pid {ns_pid}"), LONG, || {
            fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let nspid: Vec<u32> = status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))?
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let same_ns = fs::read_link(format!("/proc/{pid}/ns/pid")).ok()? == ns;
                (same_ns && nspid.last() == Some(&ns_pid)).then_some(pid)
            })
        })
    }

    /// The pid a program in the namespace printed in its `ready PID` line.
    fn ready_pid(&self) -> u32 {
        let line = self
            .unshare
            .wait_line("ready ", LONG)
            .unwrap_or_else(|e| panic!("{e:#}"));
        line.trim_start_matches("ready ").trim().parse().unwrap()
    }
}

/// A process's children, from /proc.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn burst_bin() -> String {
    workspace_bin("syscall-burst").display().to_string()
}

fn count_args(counts: &[(SyscallKind, u64)]) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("--count {}={n}", k.name()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Calls per syscall in a process's run-so-far figures.
fn calls(metrics: &Metrics, pid: u32) -> BTreeMap<SyscallKind, u64> {
    let p = process(metrics, pid).unwrap_or_else(|e| panic!("{e:#}"));
    SyscallKind::ALL
        .iter()
        .filter_map(|k| Some((*k, total(p, *k)?.calls)))
        .collect()
}

fn expected(counts: &[(SyscallKind, u64)]) -> BTreeMap<SyscallKind, u64> {
    counts.iter().copied().collect()
}

/// Checks the calls of a syscall-burst traced from its exec: the burst's
/// own, plus its start-up's — Rust's runtime polls fds 0–2 once, the setup
/// adds one fd to an epoll set, and the dynamic loader reads the libraries
/// (a number this test does not pin: at least the burst's), with a
/// `pread64` or two for their headers; with `--wait-signal` it writes its
/// `ready` line.
fn assert_from_exec(
    seen: &BTreeMap<SyscallKind, u64>,
    made: &[(SyscallKind, u64)],
    ready_line: bool,
    out: &str,
) {
    let mut want = expected(made);
    *want.get_mut(&SyscallKind::Write).unwrap() += u64::from(ready_line);
    *want.get_mut(&SyscallKind::Poll).unwrap() += 1;
    *want.get_mut(&SyscallKind::EpollCtl).unwrap() += 1;
    let reads = want.remove(&SyscallKind::Read).unwrap();
    let mut seen = seen.clone();
    let seen_reads = seen.remove(&SyscallKind::Read).unwrap_or(0);
    seen.remove(&SyscallKind::Pread64);
    assert_eq!(seen, want, "{out}");
    assert!(seen_reads >= reads, "read: {seen_reads} < {reads}\n{out}");
}

/// The metrics of muxtrace's last JSON line (the final one).
fn final_metrics(stdout: &str) -> Metrics {
    let mut lines = json_lines(stdout).unwrap_or_else(|e| panic!("{e:#}\n{stdout}"));
    let last = lines.pop().expect("a JSON line");
    assert_eq!(last.kind, LineKind::Final, "{stdout}");
    last.metrics
}

/// Waits for a `--json` interval line in which `pid` is a live process.
fn wait_shown_alive(mt: &Proc, pid: u32) {
    let deadline = Instant::now() + LONG;
    loop {
        let shown = mt.lines(harness::Stream::Stdout).iter().any(|l| {
            json_lines(l).ok().is_some_and(|lines| {
                lines
                    .iter()
                    .any(|j| process(&j.metrics, pid).is_ok_and(|p| p.alive))
            })
        });
        if shown {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} never shown alive:\n{}\n{}",
            mt.stdout(),
            mt.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `muxtrace --pid 2` inside a container-like namespace (entered with
/// nsenter) traces the namespace's pid 2, not the host's, and shows it as 2.
#[test]
#[ignore = "needs root: loads eBPF programs, makes namespaces"]
fn pid_given_inside_a_namespace_is_the_namespaces() {
    let made = burst_counts(5);
    let ns = Namespace::start(
        &format!("exec {} --wait-signal {}", burst_bin(), count_args(&made)),
        &[],
    );
    let ns_pid = ns.ready_pid();
    assert_eq!(ns_pid, 2, "the init's first child");
    let host_pid = ns.host_pid(ns_pid);
    assert_ne!(host_pid, ns_pid);
    let mt = ns.enter(&[MUXTRACE, "--pid", "2", "--json", "--interval", "200ms"]);
    assert!(
        mt.stderr().contains("tracing 2 (syscall-burst)"),
        "{}",
        mt.stderr()
    );
    wait_shown_alive(&mt, ns_pid);
    // SAFETY: signalling the test's own grandchild by its host pid.
    unsafe { libc::kill(host_pid as i32, libc::SIGUSR1) };
    let (stdout, _) = finish_ok(mt);
    let metrics = final_metrics(&stdout);
    assert_eq!(calls(&metrics, ns_pid), expected(&made), "{stdout}");
    assert_eq!(metrics.processes.len(), 1, "{stdout}");
    assert_eq!(our_losses(&metrics.losses), [], "{:?}", metrics.losses);
    drop(ns);
    assert_detached();
}

/// `unshare -fp --mount-proc muxtrace -- CMD`: muxtrace is the namespace's
/// init, the command a pid of that namespace (not 2: muxtrace's own
/// threads take pids first), counted from its first call.
#[test]
#[ignore = "needs root: loads eBPF programs, makes namespaces"]
fn launched_command_in_a_new_namespace() {
    let made = burst_counts(4);
    let mut cmd = Command::new("unshare");
    cmd.args(["--fork", "--pid", "--mount-proc", "--kill-child", MUXTRACE])
        .args(["--json", "--interval", "200ms", "--", &burst_bin()])
        .args(count_args(&made).split(' '));
    let mt = spawn(&mut cmd);
    let (stdout, stderr) = finish_ok(mt);
    let pid: u32 = stderr
        .split_once("tracing ")
        .and_then(|(_, rest)| rest.split_once(" (syscall-burst)"))
        .and_then(|(pid, _)| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid of syscall-burst in {stderr}"));
    // A pid of the namespace muxtrace is the init of.
    assert!(pid > 1 && pid < 1000, "{stderr}");
    let metrics = final_metrics(&stdout);
    assert_from_exec(&calls(&metrics, pid), &made, false, &stdout);
    assert_eq!(metrics.processes.len(), 1, "{stdout}");
    assert_detached();
}

/// `--comm` inside a namespace traces the namespace's process of that name
/// (shown by its namespace pid), and none of the host's: not one running
/// before muxtrace attached, nor one started after.
#[test]
#[ignore = "needs root: loads eBPF programs, makes namespaces"]
fn comm_inside_a_namespace_sees_only_its_own() {
    let made = burst_counts(6);
    let ns = Namespace::start(
        &format!("exec {} --wait-signal {}", burst_bin(), count_args(&made)),
        &[],
    );
    let ns_pid = ns.ready_pid();
    let host_pid = ns.host_pid(ns_pid);
    let outside = burst_counts(100);
    let outside_args = count_args(&outside);
    let outside_args: Vec<&str> = outside_args.split(' ').collect();
    let before = burst(&outside_args);
    let mt = ns.enter(&[
        MUXTRACE,
        "--comm",
        "syscall-burst",
        "--json",
        "--interval",
        "200ms",
        "--duration",
        "8s",
    ]);
    assert!(
        mt.stderr()
            .contains(&format!("tracing {ns_pid} (syscall-burst)")),
        "{}",
        mt.stderr()
    );
    // A host process of the name exec'd after attach: the kernel sees it.
    let after = burst(&outside_args);
    wait_shown_alive(&mt, ns_pid);
    before.signal(libc::SIGUSR1);
    after.signal(libc::SIGUSR1);
    // SAFETY: signalling the test's own grandchild by its host pid.
    unsafe { libc::kill(host_pid as i32, libc::SIGUSR1) };
    let _ = finish(before, LONG);
    let _ = finish(after, LONG);
    let (stdout, _) = finish_ok(mt);
    let metrics = final_metrics(&stdout);
    // The namespace's burst exited unnamed: its totals are folded by name.
    let ours: Vec<_> = metrics
        .processes
        .iter()
        .filter(|p| p.comm == "syscall-burst")
        .collect();
    assert_eq!(ours.len(), 1, "{stdout}");
    assert_eq!(calls(&metrics, ours[0].pid), expected(&made), "{stdout}");
    assert!(
        metrics.processes.iter().all(|p| p.comm == "syscall-burst"),
        "{stdout}"
    );
    drop(ns);
    assert_detached();
}

/// `--follow` inside a namespace: a child forked after attach is shown by
/// its namespace pid while it runs, and its calls are counted exactly.
#[test]
#[ignore = "needs root: loads eBPF programs, makes namespaces"]
fn follow_inside_a_namespace_names_children_by_namespace_pid() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let gate = gate.to_str().unwrap();
    assert!(Command::new("mkfifo").arg(gate).status().unwrap().success());
    let made = burst_counts(7);
    // pid 2 waits for the test, then starts the burst as its child.
    let ns = Namespace::start(
        &format!(
            "read go < {gate}; {} --wait-signal {}",
            burst_bin(),
            count_args(&made)
        ),
        &[],
    );
    let parent = 2;
    ns.host_pid(parent);
    let mt = ns.enter(&[
        MUXTRACE,
        "--pid",
        "2",
        "--follow",
        "--json",
        "--interval",
        "200ms",
    ]);
    fs::write(gate, "go\n").unwrap();
    let child = ns.ready_pid();
    assert_ne!(child, parent);
    // Its setup's epoll_ctl, a measured call, made its namespace pid known.
    wait_shown_alive(&mt, child);
    let host_child = ns.host_pid(child);
    // SAFETY: signalling the test's own descendant by its host pid.
    unsafe { libc::kill(host_child as i32, libc::SIGUSR1) };
    let (stdout, _) = finish_ok(mt);
    let metrics = final_metrics(&stdout);
    let bursts: Vec<_> = metrics
        .processes
        .iter()
        .filter(|p| p.comm == "syscall-burst")
        .collect();
    assert_eq!(bursts.len(), 1, "{stdout}");
    assert_from_exec(&calls(&metrics, bursts[0].pid), &made, true, &stdout);
    drop(ns);
    assert_detached();
}

/// A pid namespace whose /proc is still the host's (`unshare -fp` without
/// `--mount-proc`) would make every pid muxtrace reads the wrong one: one
/// clear sentence and exit code 2, before anything is loaded.
#[test]
#[ignore = "needs root: makes namespaces"]
fn a_namespace_without_its_own_proc_is_refused() {
    let mut cmd = Command::new("unshare");
    cmd.args(["--fork", "--pid", "--kill-child", MUXTRACE, "--pid", "1"]);
    let (code, _, stderr) = finish(spawn(&mut cmd), LONG);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("/proc shows another namespace's pids"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
