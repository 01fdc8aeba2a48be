//! Faults, load and odd input against the real binary: each outcome asserted.
mod common;

use std::{process::Command, time::Duration};

use common::*;

fn hardship(args: &[&str]) -> Proc {
    ready("hardship", args)
}

fn losses(summary: &str) -> String {
    summary
        .lines()
        .find(|l| l.starts_with("lost or unmeasured:"))
        .unwrap_or("")
        .to_owned()
}

fn loss(summary: &str, name: &str) -> u64 {
    losses(summary)
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_target_that_execs_is_still_traced() {
    let target = hardship(&["exec", "5"]);
    let pid = target.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--summary"]);
    target.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    let table = parse_summary(&stdout);
    assert_eq!(table[&target.pid()]["epoll_pwait2"].0, 5, "{stdout}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_reused_pid_is_not_taken_for_the_exited_process() {
    let keeper = burst(&[]);
    let first = burst(&["--all", "0", "--count", "select=2"]);
    let (keeper_pid, first_pid) = (keeper.pid().to_string(), first.pid().to_string());
    let mt = muxtrace(&["--pid", &keeper_pid, "--pid", &first_pid, "--summary"]);
    first.signal(libc::SIGUSR1);
    let _ = finish(first, LONG);
    // Ask the kernel for the same pid again (ns_last_pid), retrying if another
    // fork on the machine takes it first.
    let mut reused = None;
    for _ in 0..50 {
        std::fs::write(
            "/proc/sys/kernel/ns_last_pid",
            (first_pid.parse::<u32>().unwrap() - 1).to_string(),
        )
        .expect("write ns_last_pid (needs root)");
        let candidate = burst(&["--all", "0", "--count", "select=50"]);
        if candidate.pid().to_string() == first_pid {
            reused = Some(candidate);
            break;
        }
    }
    let second = reused.expect("could not get the same pid back in 50 tries");
    second.signal(libc::SIGUSR1);
    let _ = finish(second, LONG);
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let table = parse_summary(&stdout);
    let first_pid: u32 = first_pid.parse().unwrap();
    assert_eq!(
        table[&first_pid]["select"].0, 2,
        "the new process's 50 selects were attributed:\n{stdout}"
    );
    drop(keeper);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn two_instances_on_one_pid_do_not_disturb_each_other() {
    let target = burst(&["--all", "0", "--count", "poll=11", "--count", "read=4"]);
    let pid = target.pid().to_string();
    let first = muxtrace(&["--pid", &pid, "--summary"]);
    let second = muxtrace(&["--pid", &pid, "--summary"]);
    first.signal(libc::SIGINT);
    finish_ok(first);
    target.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(second);
    let table = parse_summary(&stdout);
    assert_eq!(table[&target.pid()]["poll"].0, 11, "{stdout}");
    assert_eq!(table[&target.pid()]["read"].0, 4, "{stdout}");
    assert_detached();
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_thousand_threads_overflow_a_small_thread_map_visibly() {
    let (threads, each) = (1000u64, 3u64);
    let target = hardship(&["threads", &threads.to_string(), &each.to_string()]);
    let pid = target.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--summary", "--max-threads", "256"]);
    target.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    let counted = parse_summary(&stdout)[&target.pid()]["poll"].0;
    let lost = loss(&stdout, "thread_map_full");
    assert!(lost > 0, "overflow not shown:\n{stdout}");
    assert!(
        counted <= 256 * each,
        "more threads measured than slots:\n{stdout}"
    );
    assert_eq!(
        counted + lost,
        threads * each,
        "calls neither counted nor lost:\n{stdout}"
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn churning_threads_keep_the_thread_map_bounded() {
    let n = 3000u64;
    let target = hardship(&["churn", &n.to_string()]);
    let pid = target.pid().to_string();
    // 64 slots for 3,000 threads: exited threads must give theirs back.
    let mt = muxtrace(&["--pid", &pid, "--summary", "--max-threads", "64"]);
    target.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    assert_eq!(
        parse_summary(&stdout)[&target.pid()]["poll"].0,
        n,
        "{stdout}"
    );
    assert_eq!(losses(&stdout), "", "{stdout}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn garbage_pointers_and_huge_sizes_are_counted_not_fatal() {
    let target = hardship(&["garbage"]);
    let pid = target.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--summary"]);
    target.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    let rows = &parse_summary(&stdout)[&target.pid()];
    assert_eq!(
        rows["select"],
        (2, 1),
        "bad set → EFAULT; huge n → fine:\n{stdout}"
    );
    assert_eq!(rows["pselect6"], (1, 1), "{stdout}");
    assert_eq!(rows["ppoll"], (1, 1), "{stdout}");
    assert_eq!(
        rows["poll"],
        (8, 1),
        "the 7 good polls after the bad one:\n{stdout}"
    );
    // The refused poll watched nothing: the good ones watch 1 fd each.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("poll ") && l.split_whitespace().nth(5) == Some("1.0")),
        "{stdout}"
    );
    assert_eq!(loss(&stdout, "user_read_failed"), 3, "{stdout}");
    assert_eq!(loss(&stdout, "select_truncated"), 1, "{stdout}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn json_and_prometheus_stay_valid_with_an_odd_comm() {
    let target = hardship(&["name", "5", "--linger", "3000"]);
    let pid = target.pid().to_string();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mt = muxtrace(&[
        "--pid",
        &pid,
        "--json",
        "--interval",
        "300ms",
        "--prometheus",
        &addr,
    ]);
    target.signal(libc::SIGUSR1);
    // Scrape while the process lives.
    let metrics = eventually("a poll series", Duration::from_secs(20), || {
        http_get(port, "/metrics").filter(|t| t.contains("syscall=\"poll\""))
    });
    let line = metrics
        .lines()
        .find(|l| l.starts_with("muxtrace_syscalls_total{") && l.contains("syscall=\"poll\""))
        .expect("poll counter");
    assert!(line.contains("comm=\"a\\\"b?c\u{fffd}\""), "{line}");
    for l in metrics.lines() {
        assert!(
            l.starts_with('#') || l.starts_with("muxtrace_"),
            "broken line {l:?}"
        );
    }
    let (stdout, _) = finish_ok(mt);
    let mut seen = false;
    for l in harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}")) {
        for p in &l.metrics.processes {
            if p.pid == target.pid() {
                assert_eq!(p.comm, "a\"b?c\u{fffd}");
                seen = true;
            }
        }
    }
    assert!(seen, "{stdout}");
}

/// A reader that stops reading (a paused pager) costs JSON lines, counted,
/// never the session: Ctrl-C still ends it and detaches the probes while
/// stdout is still full.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_stalled_stdout_reader_costs_counted_lines_not_the_session() {
    use std::io::Read;
    let target = hardship(&["name", "1", "--linger", "30000"]);
    let mut mt = Proc::spawn_with_unread_stdout(
        Command::new(MUXTRACE)
            .args(["--pid", &target.pid().to_string(), "--json"])
            .args(["--interval", "10ms"]),
    )
    .expect("spawn muxtrace");
    // Hundreds of ~1 KiB lines: more than the pipe and the queue hold.
    std::thread::sleep(Duration::from_secs(4));
    assert!(mt.is_running(), "muxtrace ended early");
    mt.signal(libc::SIGINT);
    let still_loaded = wait_no_programs_loaded();
    let mut stdout = String::new();
    mt.take_unread_stdout()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = mt.wait_exit(LONG).unwrap();
    mt.wait_output_closed();
    let stderr = mt.stderr();
    assert!(
        still_loaded.is_empty(),
        "probes still attached while stdout was stalled: {still_loaded:?}"
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    let last = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let dropped = last.losses.get("json_lines_dropped").copied().unwrap_or(0);
    assert!(dropped > 0, "nothing counted as dropped: {:?}", last.losses);
    assert!(
        stderr.contains(&format!("{dropped} JSON interval lines were dropped")),
        "{stderr}"
    );
}
