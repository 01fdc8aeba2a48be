//! Faults, load and odd input against the real binary: each outcome asserted.
mod common;

use std::{process::Command, time::Duration};

use common::*;
use harness::muxtrace as mj;
use tracer_common::SyscallKind;

fn hardship(args: &[&str]) -> Proc {
    ready("hardship", args)
}

/// The summary's losses line, less the kernel's gaps (`is_kernel_gap`).
fn losses(summary: &str) -> String {
    let line = summary
        .lines()
        .find(|l| l.starts_with("lost or unmeasured:"))
        .unwrap_or("");
    let ours: Vec<&str> = line
        .split_whitespace()
        .filter(|kv| !kv.split_once('=').is_some_and(|(k, _)| is_kernel_gap(k)))
        .collect();
    if ours.len() <= 3 {
        // Only the label ("lost or unmeasured:") was left.
        String::new()
    } else {
        ours.join(" ")
    }
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

/// A thread that execs from a non-leader thread leaves its old tid, where
/// its slot was, to whatever task the kernel gives it next: here another
/// process, asked for by that pid. Its calls are not the target's, nor
/// counted as lost.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_tid_left_by_an_exec_from_a_thread_names_another_process_cleanly() {
    let target = hardship(&["threadexec", "3", "--linger", "4000"]);
    let pid = target.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--summary"]);
    target.signal(libc::SIGUSR1);
    let line = target
        .wait_line("thread ", LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let tid: u32 = line
        .trim()
        .trim_start_matches("thread ")
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let mut reused = None;
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (tid - 1).to_string())
            .expect("write ns_last_pid (needs root)");
        let candidate = burst(&["--all", "0", "--count", "select=50"]);
        if candidate.pid() == tid {
            reused = Some(candidate);
            break;
        }
    }
    let other = reused.expect("could not get the thread's tid back in 50 tries");
    other.signal(libc::SIGUSR1);
    let _ = finish(other, LONG);
    let (stdout, _) = finish_ok(mt);
    let table = parse_summary(&stdout);
    let rows = &table[&target.pid()];
    // The thread's 3, and the new image's: Rust's runtime polls fds 0–2 as
    // it starts.
    assert_eq!(rows["poll"].0, 4, "{stdout}");
    assert_eq!(rows["epoll_pwait2"].0, 3, "{stdout}");
    assert!(
        !rows.contains_key("select"),
        "the other process's selects were charged to the target:\n{stdout}"
    );
    assert_eq!(losses(&stdout), "", "{stdout}");
}

/// A main thread that ends alone leaves a zombie in /proc/PID/stat and an
/// empty /proc/PID/fd while the process runs on in its other threads: it is
/// neither refused, nor taken as exited, nor shown without its fds.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_process_whose_main_thread_ended_is_traced_until_its_last_thread_ends() {
    let k = 5;
    let target = hardship(&["leaderexit", &k.to_string(), "--linger", "1500"]);
    let pid = target.pid();
    let mt = muxtrace(&["--pid", &pid.to_string(), "--json", "--interval", "200ms"]);
    target.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    let lines = mj::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let last = &lines.last().expect("no JSON line").metrics;
    let traced = mj::process(last, pid).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        mj::total(traced, SyscallKind::Poll).map(|w| w.calls),
        Some(k),
        "{stdout}"
    );
    // Both ends of the socketpair, in the survivor's epoll fd, while it ran.
    let seen_interest = lines
        .iter()
        .filter_map(|l| mj::process(&l.metrics, pid).ok())
        .any(|p| p.alive && p.epoll_interest.values().any(|&n| n == 2));
    let seen_sockets = lines
        .iter()
        .filter_map(|l| mj::process(&l.metrics, pid).ok())
        .any(|p| p.alive && p.fd_classes.get("socket") == Some(&2));
    assert!(seen_interest && seen_sockets, "{stdout}");
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

/// Eight threads alive at once, each folded into the process's exited
/// threads at its exit; after the process's exit its final line still
/// has them (the kernel's entry is read once more, then dropped).
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn exited_threads_are_counted_and_their_entry_goes_with_the_process() {
    let target = hardship(&["threads", "8", "3", "--linger", "1200"]);
    let pid = target.pid();
    let mt = muxtrace(&["--pid", &pid.to_string(), "--json", "--interval", "200ms"]);
    target.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    let lines = mj::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}: {stdout}"));
    // While it lingers: its eight threads gone, 24 polls between them.
    let lingering = lines
        .iter()
        .rev()
        .filter_map(|l| mj::process(&l.metrics, pid).ok())
        .find_map(|p| p.exited_threads.clone())
        .unwrap_or_else(|| panic!("no line with its exited threads: {stdout}"));
    assert_eq!(
        (lingering.threads, lingering.calls),
        (8, 24),
        "{lingering:?}"
    );
    let last = &lines.last().expect("a final line").metrics;
    let at_exit = mj::process(last, pid).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!at_exit.alive);
    assert_eq!(at_exit.exited_threads.as_ref(), Some(&lingering));
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

/// The programs find a thread by the address of its saved registers, the
/// top of its kernel stack, which the kernel hands to a new task once the
/// thread is gone, and each CPU remembers the last traced thread it ran a
/// call of. Here the target's threads come and go, then it sleeps (not
/// traced) while another process churns threads on the same CPUs, on the
/// stacks the target's left: not one of its calls is the target's.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_dead_threads_stack_taken_by_another_process_is_not_taken_for_it() {
    let n = 200u64;
    let target = hardship(&["churn", &n.to_string(), "--linger", "20000"]);
    let bystander = hardship(&["churn", "3000"]);
    let pid = target.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--summary"]);
    target.signal(libc::SIGUSR1);
    // Its churn is over once its one thread sleeps (glibc's nanosleep is
    // clock_nanosleep, syscall 230).
    let deadline = std::time::Instant::now() + LONG;
    while !std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .is_ok_and(|s| s.starts_with("230 "))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the target never finished its threads"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bystander.signal(libc::SIGUSR1);
    let _ = finish(bystander, LONG);
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let table = parse_summary(&stdout);
    assert_eq!(table[&target.pid()]["poll"].0, n, "{stdout}");
    assert_eq!(losses(&stdout), "", "{stdout}");
    // Each of its threads folded in once at its exit, none of the
    // bystander's; its main thread made no traced call.
    assert!(
        stdout.replace('\n', " ").contains(&format!(
            "threads: {n} exited since attach, {n} of the calls above"
        )),
        "{stdout}"
    );
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
    // The bad set, sigmask pair and timeout: each read at the call's
    // entry, before the kernel refuses it. The bad poll's nfds is over its
    // RLIMIT_NOFILE, which the kernel refuses: its array is not read.
    assert_eq!(loss(&stdout, "user_read_failed"), 3, "{stdout}");
    assert_eq!(loss(&stdout, "select_truncated"), 1, "{stdout}");
    assert_eq!(loss(&stdout, "poll_truncated"), 0, "{stdout}");
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
    // Hundreds of ~3 KiB lines: more than the pipe and the queue (64
    // lines) hold. A busy machine makes fewer (missed ticks are skipped), so
    // first the pipe fills, then the queue has 3 s to.
    let pipe = mt.take_unread_stdout().unwrap();
    eventually("a full stdout pipe", Duration::from_secs(30), || {
        use std::os::fd::AsRawFd as _;
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD into a local int.
        unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut pending) };
        (pending >= 32 * 1024).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(mt.is_running(), "muxtrace ended early");
    mt.signal(libc::SIGINT);
    let still_loaded = wait_no_programs_loaded();
    let mut stdout = String::new();
    { pipe }.read_to_string(&mut stdout).unwrap();
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

/// A reader that goes away (`| head -1`, a consumer that died) ends the
/// session: nothing written from then on would be read, so the probes are
/// detached and muxtrace exits 0 at once, saying why, where it used to
/// trace on for ever into EPIPE. The interval is long on purpose: muxtrace
/// notices the closed pipe itself, not at its next line.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_stdout_reader_that_exits_ends_the_session() {
    let target = steady();
    let mut mt = Proc::spawn_with_unread_stdout(
        Command::new(MUXTRACE)
            .args(["--pid", &target.pid().to_string(), "--json"])
            .args(["--interval", "30s"]),
    )
    .expect("spawn muxtrace");
    let pipe = mt.take_unread_stdout().unwrap();
    mt.wait_line(
        harness::muxtrace::ATTACHED,
        harness::muxtrace::ATTACH_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    drop(pipe);
    let closed = std::time::Instant::now();
    let status = mt.wait_exit(LONG).unwrap();
    let took = closed.elapsed();
    mt.wait_output_closed();
    let stderr = mt.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "{took:?} to notice, with 30 s to the next line: {stderr}"
    );
    assert!(
        stderr.contains("stdout's reader went away: tracing stopped"),
        "{stderr}"
    );
    assert!(!stderr.contains("did not keep up"), "{stderr}");
    let still_loaded = wait_no_programs_loaded();
    assert!(still_loaded.is_empty(), "left loaded: {still_loaded:?}");
}

/// A process that makes a poll every 10 ms until it is stopped.
fn steady() -> Proc {
    hardship(&["steady", "10"])
}

/// muxtrace `--json` on `pid`, its stdout a pipe of one page that nobody
/// reads; returns once it has attached and the pipe is full, with the read
/// end (held, never read: closing it would end the writes with EPIPE) and
/// when "attached" was seen.
fn json_into_a_full_pipe(
    pid: u32,
    extra: &[&str],
) -> (Proc, std::process::ChildStdout, std::time::Instant) {
    use std::os::fd::AsRawFd as _;
    let mut mt = Proc::spawn_with_unread_stdout(
        Command::new(MUXTRACE)
            .args(["--pid", &pid.to_string(), "--json", "--interval", "100ms"])
            .args(extra),
    )
    .expect("spawn muxtrace");
    let pipe = mt.take_unread_stdout().unwrap();
    // SAFETY: fcntl on a pipe fd we own; the smallest size is one page.
    let size = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size >= 4096,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    mt.wait_line(
        harness::muxtrace::ATTACHED,
        harness::muxtrace::ATTACH_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let attached = std::time::Instant::now();
    eventually("a full stdout pipe", Duration::from_secs(20), || {
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD into a local int.
        unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut pending) };
        // The writer blocks once the next line no longer fits.
        (pending as usize >= size as usize / 2).then_some(())
    });
    (mt, pipe, attached)
}

/// A reader that reads only after muxtrace has exited (a pipe into a
/// program that is busy, or stopped) finds whole JSON lines: the line
/// being written when the pipe filled used to be left cut off. The lines
/// that never went out are counted on stderr.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_pipe_read_after_the_exit_holds_whole_json_lines_only() {
    use std::io::Read;
    let target = steady();
    let (mut mt, pipe, _) = json_into_a_full_pipe(target.pid(), &[]);
    std::thread::sleep(Duration::from_secs(1));
    mt.signal(libc::SIGINT);
    let status = mt.wait_exit(Duration::from_secs(10));
    mt.wait_output_closed();
    let stderr = mt.stderr();
    assert_eq!(status.unwrap().code(), Some(0), "{stderr}");
    let mut stdout = String::new();
    { pipe }.read_to_string(&mut stdout).unwrap();
    assert!(stdout.ends_with('\n'), "a line was cut off: {stdout:?}");
    let lines = harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!lines.is_empty());
    assert_eq!(lines.len(), stdout.lines().count());
    let unwritten: u64 = match stderr.contains("the final JSON line was not written") {
        true => 1,
        false => stderr
            .split("the last ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no count of the lines not written: {stderr}")),
    };
    assert!(unwritten >= 1, "{stderr}");
}

/// SIGTERM while `--json` writes into a pipe nobody reads: muxtrace used to
/// wait for the reader for ever; now it ends within a second, exit 0,
/// saying the last lines were not written.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn sigterm_ends_muxtrace_within_a_second_while_its_json_pipe_is_full() {
    let target = steady();
    let (mut mt, pipe, _) = json_into_a_full_pipe(target.pid(), &[]);
    // Several more intervals against the full pipe.
    std::thread::sleep(Duration::from_secs(2));
    assert!(mt.is_running(), "{}", mt.stderr());
    let sent = std::time::Instant::now();
    mt.signal(libc::SIGTERM);
    let status = mt.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    mt.wait_output_closed();
    let stderr = mt.stderr();
    let status = status.unwrap_or_else(|e| panic!("{e:#}\n{stderr}"));
    assert!(took <= Duration::from_secs(1), "SIGTERM took {took:?}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stdout was not read in time; the last ")
            && stderr.contains("JSON lines, the final one among them, were not written"),
        "{stderr}"
    );
    assert_detached();
    drop(pipe);
}

/// `--duration 3s` into the same never-read pipe ends on time.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn duration_ends_muxtrace_on_time_while_its_json_pipe_is_full() {
    let target = steady();
    let (mut mt, pipe, attached) = json_into_a_full_pipe(target.pid(), &["--duration", "3s"]);
    let status = mt.wait_exit(Duration::from_secs(10));
    // Attaching is not counted: the time from "attached" to the exit.
    let took = attached.elapsed();
    mt.wait_output_closed();
    let stderr = mt.stderr();
    let status = status.unwrap_or_else(|e| panic!("{e:#}\n{stderr}"));
    assert!(
        took <= Duration::from_secs(4),
        "--duration 3s ended {took:?} after attaching"
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the final one among them, were not written"),
        "{stderr}"
    );
    drop(pipe);
}

/// SIGSTOP for 3 s, then SIGCONT: the figures resume with one interval
/// that covers the stop (and the calls made during it), not a burst of
/// replayed intervals a few microseconds long.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_stopped_muxtrace_resumes_with_one_long_interval_not_a_burst() {
    let target = steady();
    let pid = target.pid();
    let mt = muxtrace(&["--pid", &pid.to_string(), "--json", "--interval", "100ms"]);
    eventually("five intervals", Duration::from_secs(20), || {
        (mt.lines(harness::Stream::Stdout).len() >= 5).then_some(())
    });
    mt.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(3));
    mt.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(1500));
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let lines = harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let intervals: Vec<_> = lines
        .iter()
        .filter(|l| l.kind == harness::LineKind::Interval)
        .map(|l| &l.metrics)
        .collect();
    let summary: Vec<String> = intervals
        .iter()
        .map(|m| format!("{:.3}", m.interval_s))
        .collect();
    let long: Vec<usize> = (0..intervals.len())
        .filter(|&i| intervals[i].interval_s > 1.0)
        .collect();
    assert_eq!(long.len(), 1, "one interval covers the stop: {summary:?}");
    let gap = intervals[long[0]];
    assert!(
        (2.9..5.0).contains(&gap.interval_s),
        "the stop was 3 s: {summary:?}"
    );
    let during = process(gap, pid).interval.calls;
    assert!(
        during >= 100,
        "the 3 s of 10 ms polls are counted in it: {during}"
    );
    let after = &intervals[long[0] + 1..];
    let short = after.iter().filter(|m| m.interval_s < 0.05).count();
    assert!(short <= 1, "replayed intervals after the stop: {summary:?}");
    assert!(after.len() >= 5, "{summary:?}");
    for pair in intervals.windows(2) {
        assert!(pair[1].elapsed_s > pair[0].elapsed_s, "{summary:?}");
    }
}

fn process(m: &tracer_model::Metrics, pid: u32) -> &tracer_model::ProcessMetrics {
    harness::muxtrace::process(m, pid).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The `muxtrace_process_alive` line of `pid` with this comm, if any.
fn alive_line<'a>(metrics: &'a str, pid: u32, comm: &str) -> Option<&'a str> {
    let prefix = format!("muxtrace_process_alive{{pid=\"{pid}\",comm=\"{comm}\",");
    metrics.lines().find(|l| l.starts_with(&prefix))
}

/// A process that execs takes the new program's name (`exe`: it execs
/// /proc/self/exe) in the JSON lines and the Prometheus labels, while it
/// runs; before the exec it had its own.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_target_that_execs_shows_its_new_name() {
    let target = hardship(&["exec", "5", "--linger", "4000"]);
    let pid = target.pid();
    let port = free_port();
    let mt = muxtrace(&[
        "--pid",
        &pid.to_string(),
        "--json",
        "--interval",
        "200ms",
        "--prometheus",
        &format!("127.0.0.1:{port}"),
    ]);
    eventually("the old name at /metrics", Duration::from_secs(20), || {
        http_get(port, "/metrics").filter(|t| alive_line(t, pid, "hardship").is_some())
    });
    eventually(
        "a JSON line before the exec",
        Duration::from_secs(20),
        || (!mt.lines(harness::Stream::Stdout).is_empty()).then_some(()),
    );
    target.signal(libc::SIGUSR1);
    let text = eventually(
        "the new name's calls at /metrics",
        Duration::from_secs(20),
        || {
            http_get(port, "/metrics").filter(|t| {
                t.contains(&format!(
                    "muxtrace_syscalls_total{{pid=\"{pid}\",comm=\"exe\",syscall=\"epoll_pwait2\"}} 5"
                ))
            })
        },
    );
    let alive = alive_line(&text, pid, "exe").unwrap_or_else(|| panic!("{text}"));
    assert!(alive.ends_with(" 1"), "{alive}");
    assert!(alive_line(&text, pid, "hardship").is_none(), "{text}");
    let (stdout, _) = finish_ok(mt);
    let lines = harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let names: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| {
            let p = process(&l.metrics, pid);
            (p.comm.as_str(), p.alive)
        })
        .collect();
    assert_eq!(names.first(), Some(&("hardship", true)), "{names:?}");
    assert!(names.contains(&("exe", true)), "{names:?}");
    let last = names.last().unwrap();
    assert_eq!(last.0, "exe", "{names:?}");
}

/// Whether `pid` holds a BPF object (map, program, link or BTF) yet.
fn holds_bpf_object(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|t| {
            let t = t.to_string_lossy();
            t.starts_with("anon_inode:bpf") || t.starts_with("anon_inode:btf")
        })
}

/// A process that exits — and is reaped, so /proc forgets it — after
/// muxtrace checked its pid but before muxtrace attached: it keeps the name
/// it had (not `?`), the attach line says it exited rather than claim it
/// is traced, it is marked exited, and muxtrace ends as it does when its
/// targets exit.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_process_that_exits_during_attach_keeps_its_name() {
    let mut target = burst(&[]);
    let pid = target.pid();
    let mut mt = spawn(Command::new(MUXTRACE).args([
        "--pid",
        &pid.to_string(),
        "--json",
        "--interval",
        "10s",
    ]));
    // muxtrace resolves the pid, then loads its programs; the first BPF
    // object it holds means loading has begun.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !holds_bpf_object(mt.pid()) {
        assert!(mt.is_running(), "muxtrace ended: {}", mt.stderr());
        assert!(
            std::time::Instant::now() < deadline,
            "muxtrace never loaded"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    target.signal(libc::SIGKILL);
    target.wait_exit(LONG).unwrap();
    assert!(
        !mt.stderr().contains(harness::muxtrace::ATTACHED),
        "muxtrace attached before the target was gone; the test proves nothing"
    );
    let attached = mt
        .wait_line(
            harness::muxtrace::ATTACHED,
            harness::muxtrace::ATTACH_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        attached.contains(&format!(
            "tracing {pid} (syscall-burst, exited while muxtrace attached)"
        )),
        "{attached}"
    );
    let (stdout, stderr) = finish_ok(mt);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = process(&last, pid);
    assert_eq!(p.comm, "syscall-burst", "{stdout}");
    assert!(!p.alive, "{stdout}");
}

/// muxtrace's peak resident set so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib * 1024
}

/// `--follow` over 20,000 short-lived children, more than the kernel's
/// stats map holds (16,384): each exited child is folded into one entry of
/// its name and freed in the kernel and in muxtrace, so every poll of every
/// child is counted, nothing is lost, and muxtrace stays under 64 MiB. It
/// used to keep every child (34 KB each: 554 MB after 16,000) and, once the
/// map was full, lose every new child's calls.
#[test]
#[ignore = "needs root: loads eBPF programs"]
/// Every poll is counted, or — when the children outrun the readings that
/// fold them (muxtrace starved of CPU, say) and the aggregate map fills —
/// counted as lost: nothing goes missing unaccounted.
fn twenty_thousand_followed_children_are_folded_and_every_poll_is_accounted_for() {
    const CHILDREN: u64 = 20_000;
    const POLLS: u64 = 3;
    let target = hardship(&[
        "children",
        &CHILDREN.to_string(),
        &POLLS.to_string(),
        "--linger",
        "600000",
    ]);
    let pid = target.pid();
    let mt = muxtrace(&[
        "--pid",
        &pid.to_string(),
        "--follow",
        "--json",
        "--interval",
        "200ms",
    ]);
    let polls = |m: &tracer_model::Metrics| -> u64 {
        m.processes
            .iter()
            .filter_map(|p| harness::muxtrace::total(p, tracer_common::SyscallKind::Poll))
            .map(|w| w.calls)
            .sum()
    };
    let lost = |m: &tracer_model::Metrics| m.losses.get("stats_map_full").copied().unwrap_or(0);
    // Attaching has a peak of its own (the kernel's BTF parsed): the
    // children's share is what grows beyond it.
    let attached_rss = peak_rss(mt.pid());
    let started = std::time::Instant::now();
    target.signal(libc::SIGUSR1);
    // What the last reading said, for the failure message.
    let mut seen = String::from("no reading yet");
    let done = harness::procfs::poll_until("every child's polls", Duration::from_secs(300), || {
        let text = mt.stdout();
        let last = text
            .lines()
            .last()?
            .parse::<harness::muxtrace::JsonLine>()
            .ok()?;
        seen = format!(
            "{} polls in {} entries; losses {:?}; the parent has {} children left",
            polls(&last.metrics),
            last.metrics.processes.len(),
            last.metrics.losses,
            harness::procfs::children(pid).len()
        );
        (polls(&last.metrics) + lost(&last.metrics) >= CHILDREN * POLLS).then_some(())
    });
    if let Err(e) = done {
        mt.signal(libc::SIGINT);
        let (_, stderr) = finish_ok(mt);
        panic!("{e:#}: {seen}; muxtrace said: {stderr}");
    }
    let took = started.elapsed();
    let rss = peak_rss(mt.pid());
    eprintln!(
        "{CHILDREN} children in {took:.1?}; muxtrace's peak RSS {:.1} MiB ({:.1} MiB once attached)",
        rss as f64 / (1024.0 * 1024.0),
        attached_rss as f64 / (1024.0 * 1024.0)
    );
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let m = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let (counted, lost) = (polls(&m), lost(&m));
    eprintln!(
        "{counted} polls counted, {lost} counted as lost; losses {:?}",
        m.losses
    );
    assert_eq!(counted + lost, CHILDREN * POLLS, "losses: {:?}", m.losses);
    // The kernel's unreported switch-ins and wakeups are not ours.
    assert!(
        m.losses
            .keys()
            .all(|k| k == "stats_map_full" || is_kernel_gap(k)),
        "losses: {:?}",
        m.losses
    );
    let mut entries: Vec<(u32, &str, u64)> = m
        .processes
        .iter()
        .map(|p| (p.pid, p.comm.as_str(), p.folded))
        .collect();
    entries.sort();
    // A child whose every poll was lost left no aggregate to fold.
    let children = if lost == 0 {
        CHILDREN
    } else {
        entries.first().map_or(0, |e| e.2)
    };
    assert!(
        children >= counted.div_ceil(POLLS) && children <= CHILDREN,
        "{children} children folded for {counted} polls"
    );
    assert_eq!(
        entries,
        [(0, "hardship", children), (pid, "hardship", 0)],
        "the parent, and every child folded into one entry"
    );
    // Bounded by the aggregate map, not by the children: a full map read
    // is held three times at most (the maps' copy, this reading, the last),
    // beyond what muxtrace held once attached, and the allocator may keep
    // the pages of freed copies until it trims them: nine full maps.
    // Runs read attached + 34..=55 MiB against 3 maps' 51 (2026-12-04),
    // and once +77 (4.5 maps) on a machine busy compiling, the children
    // taking 5.3 s where they take 2.6; a fresh-clone CI run beside a
    // build read +88 (5.2 maps, 2026-12-05), and the build before this
    // change, side by side with it, read +49, +53 and +78 where it read
    // +49, +53 and +63. On 2026-12-06 the machine read more for builds old
    // and new alike: 1464019 and 1981b48 side by side, five runs each,
    // +91..+108 and +81..+117 (a fresh-clone CI run +121, 7.1 maps). A leak
    // per child would be 20,000 aggregates, ten full maps beyond these.
    let full_map = u64::from(tracer_common::MAX_STATS_KEYS)
        * std::mem::size_of::<tracer_common::SyscallStats>() as u64;
    let bound = attached_rss + 9 * full_map;
    assert!(
        rss < bound,
        "muxtrace's peak RSS {} MiB, over {} MiB ({} MiB once attached)",
        rss >> 20,
        bound >> 20,
        attached_rss >> 20
    );
}
