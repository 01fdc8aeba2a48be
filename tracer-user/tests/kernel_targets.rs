//! Kernel tests: real probes on real processes; the counts muxtrace reports
//! are checked against what the test programs did. Run as root, one at a
//! time (`cargo xtask test`).
mod common;

use std::process::Command;

use common::*;

fn count_args(counts: &[(&str, u64)]) -> Vec<String> {
    counts
        .iter()
        .flat_map(|(n, c)| ["--count".to_owned(), format!("{n}={c}")])
        .collect()
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn exact_counts_for_the_traced_process_and_none_for_the_untraced_one() {
    assert!(
        wait_no_programs_loaded().is_empty(),
        "programs of ours loaded before the test"
    );
    let counts: Vec<(&str, u64)> = burst_counts(5)
        .into_iter()
        .map(|(k, n)| (k.name(), n))
        .collect();
    let args = count_args(&counts);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let traced = burst(&args);
    let untraced = burst(&args);
    let pid = traced.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--summary"]);
    traced.signal(libc::SIGUSR1);
    untraced.signal(libc::SIGUSR1);
    // The target exiting ends the run with the table and exit 0.
    let (stdout, _) = finish_ok(mt);
    let table = parse_summary(&stdout);
    let rows = &table[&traced.pid()];
    for (name, n) in &counts {
        let (calls, _) = rows.get(*name).copied().unwrap_or_default();
        assert_eq!(calls, *n, "{name}: reported {calls}, made {n}\n{stdout}");
    }
    // accept4 on a listener with nothing pending fails every time (EAGAIN).
    assert_eq!(rows["accept4"].1, rows["accept4"].0);
    assert!(
        !table.contains_key(&untraced.pid()),
        "untraced pid reported:\n{stdout}"
    );
    assert!(stdout.contains("exited"), "{stdout}");
    assert_detached();
}

fn stops_on_signal(sig: i32) {
    let target = burst(&[]);
    let pid = target.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--summary"]);
    assert!(!tracer_user::loaded_program_ids().is_empty());
    mt.signal(sig);
    let (stdout, stderr) = finish_ok(mt);
    assert!(stdout.contains(&format!("pid {pid}")), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_detached();
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn sigint_ends_the_run_with_the_table_and_detaches() {
    stops_on_signal(libc::SIGINT);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn sigterm_ends_the_run_with_the_table_and_detaches() {
    stops_on_signal(libc::SIGTERM);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn sighup_ends_the_run_with_the_table_and_detaches() {
    stops_on_signal(libc::SIGHUP);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn duration_ends_the_run_and_detaches() {
    let target = burst(&[]);
    let pid = target.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--duration", "300ms", "--summary"]);
    let (stdout, _) = finish_ok(mt);
    assert!(stdout.contains(&format!("pid {pid}")), "{stdout}");
    assert_detached();
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn comm_picks_up_a_process_started_after_attach() {
    // A uniquely named copy of the test program, so nothing else matches.
    let dir = tempfile::tempdir().unwrap();
    let name = format!("mxc{}", std::process::id());
    let exe = dir.path().join(&name);
    std::fs::copy(workspace_bin("syscall-burst"), &exe).unwrap();
    // At info level muxtrace says when it starts tracing a process: the
    // burst is released only once it has, or a quick burst could exit and be
    // reaped between two of muxtrace's polls for new processes, nameless.
    let mt = spawn(
        Command::new(MUXTRACE)
            .args(["--comm", &name, "--summary"])
            .env("RUST_LOG", "info"),
    );
    mt.wait_line(harness::muxtrace::ATTACHED, LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let started = spawn(Command::new(&exe).args([
        "--wait-signal",
        "--count",
        "epoll_pwait2=7",
        "--count",
        "sendmsg=9",
    ]));
    started
        .wait_line("ready ", LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    mt.wait_line(&format!("now tracing pid {}", started.pid()), LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    started.signal(libc::SIGUSR1);
    let _ = finish(started, LONG);
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let table = parse_summary(&stdout);
    let rows = table
        .get(&started_pid(&stdout, &name))
        .expect("process by name in the table");
    // Setup makes none of these, so the counts are exactly the burst's.
    assert_eq!(rows["epoll_pwait2"].0, 7, "{stdout}");
    assert_eq!(rows["sendmsg"].0, 9, "{stdout}");
}

fn started_pid(summary: &str, name: &str) -> u32 {
    summary
        .lines()
        .find(|l| l.starts_with("pid ") && l.contains(name))
        .and_then(|l| l[4..].split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no pid line for {name} in:\n{summary}"))
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn launched_command_is_traced_from_its_first_syscall() {
    let burst_bin = workspace_bin("syscall-burst");
    let mut cmd = Command::new(MUXTRACE);
    cmd.args(["--summary", "--"]).arg(&burst_bin).args([
        "--all",
        "0",
        "--count",
        "epoll_wait=1",
        "--count",
        "ppoll=2",
    ]);
    let mt = spawn(&mut cmd);
    let (stdout, _) = finish_ok(mt);
    let table = parse_summary(&stdout);
    assert_eq!(table.len(), 1, "{stdout}");
    let rows = table.values().next().unwrap();
    assert_eq!(
        rows["epoll_wait"].0, 1,
        "the first epoll_wait is counted:\n{stdout}"
    );
    assert_eq!(rows["ppoll"].0, 2, "{stdout}");
    // Setup's one epoll_ctl (the program's own, before the burst) is seen too.
    assert_eq!(rows["epoll_ctl"].0, 1, "{stdout}");
    assert_detached();
}

/// Runs a syscall-burst that forks and makes its calls in the child; returns
/// the parent's pid and muxtrace's summary.
fn fork_burst(follow: bool) -> (u32, String) {
    let parent = burst(&[
        "--fork",
        "--all",
        "0",
        "--count",
        "recvfrom=6",
        "--count",
        "select=4",
    ]);
    let pid = parent.pid().to_string();
    let mut args = vec!["--pid", &pid, "--summary"];
    if follow {
        args.push("--follow");
    }
    let mt = muxtrace(&args);
    parent.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    (parent.pid(), stdout)
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn follow_counts_a_forked_child() {
    let (parent, stdout) = fork_burst(true);
    let table = parse_summary(&stdout);
    let children: Vec<_> = table.iter().filter(|(pid, _)| **pid != parent).collect();
    assert_eq!(children.len(), 1, "{stdout}");
    let rows = children[0].1;
    assert_eq!(rows["recvfrom"].0, 6, "{stdout}");
    assert_eq!(rows["select"].0, 4, "{stdout}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn without_follow_a_forked_child_is_not_counted() {
    let (parent, stdout) = fork_burst(false);
    let table = parse_summary(&stdout);
    assert!(table.keys().all(|pid| *pid == parent), "{stdout}");
    let rows = table.get(&parent).cloned().unwrap_or_default();
    assert!(!rows.contains_key("recvfrom"), "{stdout}");
}

/// `--follow` of a process muxtrace descends from (the shell it runs in;
/// here the test) takes that process's children, but never muxtrace itself.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn follow_of_an_ancestor_never_traces_muxtrace_itself() {
    let test_pid = std::process::id().to_string();
    let mt = muxtrace(&[
        "--pid",
        &test_pid,
        "--follow",
        "--json",
        "--interval",
        "200ms",
        "--duration",
        "1s",
    ]);
    let own_pid = mt.pid();
    let (stdout, _) = finish_ok(mt);
    let lines = harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!lines.is_empty(), "{stdout}");
    for line in lines {
        let pids: Vec<u32> = line.metrics.processes.iter().map(|p| p.pid).collect();
        assert!(pids.contains(&std::process::id()), "{stdout}");
        assert!(!pids.contains(&own_pid), "muxtrace traced itself: {pids:?}");
    }
    assert_detached();
}

/// A wait that began before attach and has not returned counts no call
/// yet (as strace -c counts it): the process's entry says its thread is
/// blocked in it, as /proc shows, instead of reading as one that made
/// none.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_wait_begun_before_attach_is_said_to_be_blocked() {
    // One poll that times out after 30 s, entered before the attach.
    let lab = ready("waitlab", &["sleep", "30000"]);
    lab.signal(libc::SIGUSR1);
    let syscall = format!("/proc/{}/syscall", lab.pid());
    eventually("the waitlab blocked in poll", LONG, || {
        let line = std::fs::read_to_string(&syscall).ok()?;
        (line.split_whitespace().next()? == libc::SYS_poll.to_string()).then_some(())
    });
    let pid = lab.pid().to_string();
    let mt = muxtrace(&[
        "--pid",
        &pid,
        "--json",
        "--interval",
        "300ms",
        "--duration",
        "1s",
    ]);
    let (stdout, _) = finish_ok(mt);
    let m = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = harness::muxtrace::process(&m, lab.pid()).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(p.total.calls, 0, "{p:#?}");
    assert_eq!(
        p.blocked_in,
        std::collections::BTreeMap::from([("poll".to_owned(), 1)]),
        "{p:#?}"
    );
    assert!(
        p.verdict
            .ends_with("1 thread is blocked in poll: a call counts when it returns"),
        "{}",
        p.verdict
    );
}

/// A launched command that execs another program and ends before
/// muxtrace's next look at it is named by the program it ended as (the
/// kernel's exit record), not the one muxtrace started.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_launched_command_is_named_by_the_program_it_ended_as() {
    for _ in 0..3 {
        let mt =
            spawn(Command::new(MUXTRACE).args(["--summary", "--", "sh", "-c", "exec /bin/true"]));
        let (stdout, _) = finish_ok(mt);
        let pid = started_pid(&stdout, "");
        assert!(
            stdout.contains(&format!("pid {pid} (true, exited)")),
            "{stdout}"
        );
    }
    assert_detached();
}

/// `--comm kthreadd` traces no kernel thread (`--pid 2` is refused): the
/// summary says nobody was traced.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn comm_never_picks_a_kernel_thread() {
    let mt =
        spawn(Command::new(MUXTRACE).args(["--comm", "kthreadd", "--summary", "--duration", "1s"]));
    let (stdout, stderr) = finish_ok(mt);
    assert!(!stderr.contains("(kthreadd)"), "{stderr}");
    assert!(stdout.starts_with("no process was traced in"), "{stdout}");
    assert_detached();
}
