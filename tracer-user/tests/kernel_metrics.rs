//! Kernel tests of the full measurement: each figure checked against what a
//! waitlab scenario really did (see testprogs/src/bin/waitlab.rs).
mod common;

use std::process::Command;

use common::*;
use tracer_common::SyscallKind::*;
use tracer_model::ProcessMetrics;

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn select_counts_set_bits_not_n() {
    // 10 watched fds at 700, 702, … 718: n = 719, watched = 10, 3 ready.
    let p = waitlab_metrics(&["select", "10", "3", "5"]);
    let s = syscall_total(&p, Select);
    assert_eq!(s.calls, 5);
    assert_eq!(s.watched_avg, 10.0, "{s:?}");
    assert_eq!(s.size_arg_avg, 719.0, "n is reported separately: {s:?}");
    assert_eq!(s.ready, 5 * 3, "{s:?}");
    assert_eq!(s.scanned, 5 * 10, "{s:?}");
    // One non-NULL set of ⌈719/64⌉·8 = 96 bytes in and out, and the
    // 16-byte timeval in; a zero timeout is not written back.
    assert_eq!(s.bookkeeping_in_bytes, 5 * (96 + 16), "{s:?}");
    assert_eq!(s.bookkeeping_out_bytes, 5 * 96, "{s:?}");
    assert_eq!(s.zero_timeouts, 5, "{s:?}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn poll_watches_nfds_and_copies_pollfds() {
    let p = waitlab_metrics(&["poll", "40", "7", "6"]);
    let s = syscall_total(&p, Poll);
    assert_eq!(s.calls, 6);
    assert_eq!(s.watched_avg, 40.0, "{s:?}");
    assert_eq!(s.ready, 6 * 7, "{s:?}");
    assert_eq!(s.ready_avg, 7.0, "{s:?}");
    assert_eq!(s.bookkeeping_in_bytes, 6 * 8 * 40, "{s:?}");
    assert_eq!(s.bookkeeping_out_bytes, 6 * 2 * 40, "{s:?}");
    assert!((s.efficiency - 7.0 / 40.0).abs() < 1e-9, "{s:?}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn poll_watches_the_entries_that_name_an_fd() {
    // 100 fds and 100 unused entries (fd -1) between them: four reads of
    // the array, the last one short.
    let p = waitlab_metrics(&["pollgaps", "100", "7", "100", "3"]);
    let s = syscall_total(&p, Poll);
    assert_eq!(s.calls, 3);
    assert_eq!((s.watched_avg, s.size_arg_avg), (100.0, 200.0), "{s:?}");
    assert_eq!((s.ready, s.scanned), (3 * 7, 3 * 100), "{s:?}");
    // The kernel copies every entry in and every revents back.
    assert_eq!(s.bookkeeping_in_bytes, 3 * 8 * 200, "{s:?}");
    assert_eq!(s.bookkeeping_out_bytes, 3 * 2 * 200, "{s:?}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_poll_of_thousands_of_entries_is_read_whole() {
    // 5,002 entries: 2,002 fds each followed by a free one (fd -1), then
    // 998 fds, so every run of 64 holds fds, the last (short) one too. The
    // first run is read inline, the other 78 in a bpf_loop (an unrolled
    // loop stopped at 1,024 entries and counted the rest).
    let (pid, lines) = waitlab_lines(&["pollgaps", "3000", "1", "2002", "1"], "10s");
    let last = &lines.last().expect("a final line").metrics;
    let p = harness::muxtrace::process(last, pid).unwrap_or_else(|e| panic!("{e:#}"));
    let s = syscall_total(p, Poll);
    assert_eq!((s.calls, s.ready, s.size_arg), (1, 1, 5002), "{s:?}");
    assert_eq!(s.watched, 3000, "{s:?}");
    assert_eq!(our_losses(&last.losses), [], "{:?}", last.losses);
}

/// Three threads poll sets of their own (10, 20 and 30 fds, all ready),
/// 50 times each: each thread's watched and ready are its own polls', the
/// interval's watched per wait its set, and the threads add up to the
/// process's figures.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn each_thread_s_watched_fds_are_its_own_poll_s() {
    const ROUNDS: u64 = 50;
    let (pid, lines) = waitlab_lines(&["pollthreads", "3", "50", "--linger", "1000"], "200ms");
    let mut seen = std::collections::BTreeMap::new();
    for line in &lines {
        let Ok(p) = harness::muxtrace::process(&line.metrics, pid) else {
            continue;
        };
        // A reading may come while a thread polls: its figures so far.
        for t in p.threads.iter().filter(|t| t.wait_calls > 0) {
            assert_eq!(t.watched_waits, t.wait_calls, "{t:?}");
            let set = t.watched / t.wait_calls;
            assert!([10, 20, 30].contains(&set), "{t:?}");
            let so_far = set * t.wait_calls;
            assert_eq!((t.watched, t.ready), (so_far, so_far), "{t:?}");
            // The interval it polled in gives its set per wait.
            if let Some(per_wait) = t.watched_per_wait {
                assert_eq!(per_wait, set as f64, "{t:?}");
                seen.insert(t.tid, set);
            }
        }
    }
    let mut sets: Vec<u64> = seen.values().copied().collect();
    sets.sort_unstable();
    assert_eq!(sets, [10, 20, 30], "{seen:?}");
    // They exited before the process: its final line has them summed.
    let last = &lines.last().expect("a final line").metrics;
    let p = harness::muxtrace::process(last, pid).unwrap_or_else(|e| panic!("{e:#}"));
    let exited = p.exited_threads.as_ref().expect("exited threads");
    let polls = syscall_total(p, Poll);
    assert_eq!(exited.watched_waits, 3 * ROUNDS, "{exited:?}");
    assert_eq!((exited.watched, exited.ready), (60 * ROUNDS, 60 * ROUNDS));
    assert_eq!((polls.watched, polls.ready), (60 * ROUNDS, 60 * ROUNDS));
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn epoll_interest_set_follows_add_and_del() {
    // 100 ADD, 40 DEL → 60 registered; 5 of them ready. The lab lingers so
    // that /proc/PID/fdinfo is read at least once while the set exists.
    let (pid, lines) = waitlab_lines(
        &["epoll", "100", "40", "5", "4", "--linger", "1500"],
        "300ms",
    );
    let process = |line: &harness::muxtrace::JsonLine| {
        harness::muxtrace::process(&line.metrics, pid)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .clone()
    };
    let p = process(lines.last().unwrap());
    let w = syscall_total(&p, EpollWait);
    assert_eq!(w.calls, 4);
    assert_eq!(w.watched_avg, 60.0, "{w:?}");
    assert_eq!(w.size_arg_avg, 64.0, "maxevents: {w:?}");
    assert_eq!(w.ready, 4 * 5, "{w:?}");
    assert_eq!(w.scanned, 4 * 5, "epoll examines only ready fds: {w:?}");
    assert_eq!(w.bookkeeping_in_bytes, 0, "{w:?}");
    assert_eq!(w.bookkeeping_out_bytes, 4 * 5 * 12, "{w:?}");
    let c = syscall_total(&p, EpollCtl);
    assert_eq!(c.calls, 140);
    // ADD copies one 12-byte epoll_event in; DEL copies none.
    assert_eq!(c.bookkeeping_in_bytes, 100 * 12, "{c:?}");
    let listed: Vec<_> = lines[..lines.len() - 1]
        .iter()
        .map(|l| process(l).epoll_interest)
        .collect();
    assert!(
        listed.iter().any(|sets| sets.values().any(|&n| n == 60)),
        "fdinfo never listed the 60: {listed:?}"
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn payload_bytes_equal_what_was_sent() {
    let p = waitlab_metrics(&["payload", "1000", "8"]);
    let send = syscall_total(&p, Sendto);
    let recv = syscall_total(&p, Recvfrom);
    assert_eq!(send.payload_bytes, 8000, "{send:?}");
    assert_eq!(recv.payload_bytes, 8000, "{recv:?}");
    assert_eq!(recv.receives_with_data, 8, "{recv:?}");
    // The socketpair existed before muxtrace attached: classed from /proc.
    assert_eq!(send.payload_socket_bytes, 8000, "{send:?}");
}

/// A splice from a socket receives (haproxy's splice-response read it as
/// sent, and its bytes twice over); one into a socket sends. Both move
/// socket bytes that never cross user space.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_splice_from_a_socket_is_received_and_one_into_a_socket_sent() {
    let p = waitlab_metrics(&["splice", "3000", "5"]);
    let recv = syscall_total(&p, SpliceRecv);
    let send = syscall_total(&p, Splice);
    for (w, what) in [(recv, "received"), (send, "sent")] {
        assert_eq!((w.calls, w.errors), (5, 0), "{what}: {w:?}");
        assert_eq!(w.payload_socket_bytes, 15_000, "{what}: {w:?}");
        assert_eq!(w.zero_copy_bytes, 15_000, "{what}: {w:?}");
    }
    assert!(SpliceRecv.is_receive() && Splice.sends_payload());
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn reads_and_writes_at_an_offset_are_file_payload() {
    let p = waitlab_metrics(&["positional", "3000", "4"]);
    for (kind, calls, bytes) in [
        (Pwrite64, 4, 4 * 3000),
        (Pread64, 4, 4 * 3000),
        (Pwritev, 1, 3000),
        (Preadv, 1, 3000),
        (Pwritev2, 1, 3000),
        (Preadv2, 1, 3000),
    ] {
        let s = syscall_total(&p, kind);
        assert_eq!((s.calls, s.errors), (calls, 0), "{kind}: {s:?}");
        assert_eq!(s.payload_bytes, bytes, "{kind}: {s:?}");
        assert_eq!(s.payload_file_bytes, bytes, "{kind}: {s:?}");
        assert_eq!(s.payload_socket_bytes, 0, "{kind}: {s:?}");
    }
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_sleeping_wait_is_off_cpu() {
    let (pid, lines) = waitlab_lines(&["sleep", "200"], "10s");
    let s = syscall_total(final_process(&lines, pid), Poll);
    assert_eq!(s.calls, 1);
    assert_eq!(s.timeouts, 1, "{s:?}");
    assert!(s.wall_ns >= 200_000_000, "{s:?}");
    // The one call bounds its window both ways (a zeroed slot in the
    // kernel once read as a minimum of 0).
    assert!(s.wall_min_ns >= 200_000_000, "{s:?}");
    assert_eq!(s.wall_min_ns, s.wall_max_ns, "{s:?}");
    assert!(
        s.off_cpu_ns as f64 >= 0.95 * s.wall_ns as f64,
        "off-CPU {} of wall {}: {s:?}",
        s.off_cpu_ns,
        s.wall_ns
    );
    // Its timer woke it; the kernel, rarely, does not report such a wakeup
    // (bpftrace misses the same ones), and muxtrace counts that it did not.
    assert_eq!(
        s.sched_wakeups + unseen_wakeups(&lines),
        1,
        "{s:?}: losses {:?}",
        lines.last().map(|l| &l.metrics.losses)
    );
}

/// Each sleep blocks once and only its timer wakes it: every wakeup is
/// counted, or counted as one the kernel never reported, never both.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn every_blocking_sleep_has_its_wakeup_counted() {
    const SLEEPS: u64 = 500;
    let (pid, lines) = waitlab_lines(&["sleep", "2", &SLEEPS.to_string()], "10s");
    let s = syscall_total(final_process(&lines, pid), Poll);
    assert_eq!((s.calls, s.timeouts), (SLEEPS, SLEEPS), "{s:?}");
    let unseen = unseen_wakeups(&lines);
    eprintln!("{} wakeups counted, {unseen} unseen", s.sched_wakeups);
    assert_eq!(s.sched_wakeups + unseen, SLEEPS, "{s:?}");
    // The kernel's gap is rare (about one sleep in 1,000 here): a count
    // far short of the sleeps is ours.
    assert!(s.sched_wakeups >= SLEEPS * 95 / 100, "{s:?}");
}

/// The process as the final line has it.
fn final_process(lines: &[harness::muxtrace::JsonLine], pid: u32) -> &ProcessMetrics {
    let last = &lines.last().expect("a final line").metrics;
    harness::muxtrace::process(last, pid).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The run's wakeups the kernel never reported, from the final line.
fn unseen_wakeups(lines: &[harness::muxtrace::JsonLine]) -> u64 {
    let last = &lines.last().expect("a final line").metrics;
    last.losses.get(WAKEUP_GAP).copied().unwrap_or(0)
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_busy_zero_timeout_loop_is_on_cpu() {
    let p = waitlab_metrics(&["busy", "20000"]);
    let s = syscall_total(&p, Poll);
    assert_eq!(s.calls, 20000);
    assert_eq!(s.zero_timeouts, 20000, "{s:?}");
    assert!(
        s.on_cpu_share > 0.9,
        "on-CPU share {}: {s:?}",
        s.on_cpu_share
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn eintr_is_counted_as_such() {
    let p = waitlab_metrics(&["eintr"]);
    for kind in [Poll, EpollWait] {
        let s = syscall_total(&p, kind);
        assert_eq!(s.calls, 1, "{s:?}");
        assert_eq!(s.eintr, 1, "{kind}: {s:?}");
        assert_eq!(s.errors, 1, "{s:?}");
        assert_eq!(s.infinite_timeouts, 1, "{s:?}");
    }
}

/// select, pselect6 and ppoll write the time left over a non-zero timeout
/// on every return, interrupted ones included (the program reads it back);
/// select's sets only when it returns a count, ppoll's revents also when
/// interrupted.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn the_time_left_is_copied_out_interrupted_or_not() {
    let lab = ready("waitlab", &["timeleft"]);
    let pid = lab.pid().to_string();
    let mt = muxtrace(&["--pid", &pid, "--json", "--interval", "10s"]);
    lab.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    let left: Vec<u64> = lab
        .wait_line("time left", LONG)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // Each interrupted call wrote back what was left of its 10 s, the
    // expired select 0.
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(
        left[..3].iter().all(|&us| us > 0 && us < 10_000_000),
        "{left:?}"
    );
    assert_eq!(left[3], 0, "{left:?}");
    let m = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = harness::muxtrace::process(&m, lab.pid()).unwrap_or_else(|e| panic!("{e:#}"));
    // The idle fd's set is one 8-byte word (n = idle + 1 ≤ 64).
    let select = syscall_total(p, Select);
    assert_eq!(
        (select.calls, select.eintr, select.timeouts),
        (2, 1, 1),
        "{select:?}"
    );
    assert_eq!(select.bookkeeping_out_bytes, 16 + (8 + 16), "{select:?}");
    let pselect = syscall_total(p, Pselect6);
    assert_eq!((pselect.calls, pselect.eintr), (1, 1), "{pselect:?}");
    assert_eq!(pselect.bookkeeping_out_bytes, 16, "{pselect:?}");
    let ppoll = syscall_total(p, Ppoll);
    assert_eq!((ppoll.calls, ppoll.eintr), (1, 1), "{ppoll:?}");
    assert_eq!(ppoll.bookkeeping_out_bytes, 2 + 16, "{ppoll:?}");
}

/// An eventfd's 8 bytes wake a loop (tokio's and libuv's wakers): copied
/// as the loop's bookkeeping, in on the write and out on the read, and no
/// payload — a helper's tokio server read 18,526 such writes as file bytes.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn an_eventfd_s_bytes_are_bookkeeping_not_payload() {
    const ROUNDS: u64 = 25;
    let p = waitlab_metrics(&["eventfd", &ROUNDS.to_string()]);
    let write = syscall_total(&p, Write);
    let read = syscall_total(&p, Read);
    assert_eq!((write.calls, read.calls), (ROUNDS, ROUNDS));
    assert_eq!(
        (write.bookkeeping_in_bytes, write.payload_bytes),
        (8 * ROUNDS, 0),
        "{write:?}"
    );
    assert_eq!(
        (read.bookkeeping_out_bytes, read.payload_bytes),
        (8 * ROUNDS, 0),
        "{read:?}"
    );
    assert_eq!(
        (p.total.file_read_bytes, p.total.file_written_bytes),
        (0, 0),
        "{:?}",
        p.total
    );
}

/// A wakeup is empty when the data it reported was gone by the thread's
/// first receive: another thread took it. One that found a connection is
/// not, though the first read of it finds nothing yet: on a Go server 13
/// of 34 empty wakeups were such reads.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn an_empty_wakeup_is_data_taken_before_the_first_receive() {
    const EMPTY: u64 = 12;
    const ACCEPTED: u64 = 7;
    let p = waitlab_metrics(&["wakeups", &EMPTY.to_string(), &ACCEPTED.to_string()]);
    let recv = syscall_total(&p, Recvfrom);
    // Each empty round: the thief's recvfrom and the loop's; then one per
    // connection. All but the thief's fail EAGAIN.
    assert_eq!(recv.calls, 2 * EMPTY + ACCEPTED, "{recv:?}");
    assert_eq!(recv.eagain, EMPTY + ACCEPTED, "{recv:?}");
    assert_eq!(recv.empty_wakeups, EMPTY, "{recv:?}");
    let accept = syscall_total(&p, Accept4);
    assert_eq!((accept.calls, accept.errors), (ACCEPTED, 0), "{accept:?}");
}

/// Three threads asleep on one level-triggered epoll fd: a byte wakes the
/// first, whose wait wakes the next, and so on — a herd, every time the
/// wakeups fall within 50 µs of each other. Two threads that take turns
/// at the wait under a lock (tokio's poller) are never both asleep in it:
/// no herd, however close their wakeups.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_herd_needs_threads_asleep_in_the_wait_together() {
    const ROUNDS: u64 = 20;
    let p = waitlab_metrics(&["herd", "3", &ROUNDS.to_string()]);
    let w = syscall_total(&p, EpollWait);
    assert_eq!((w.calls, w.ready), (3 * ROUNDS, 3 * ROUNDS), "{w:?}");
    // Each round wakes two after the first; a slow wakeup may fall out.
    assert!(
        (1..=2 * ROUNDS).contains(&w.herd_wakeups),
        "{} herd wakeups: {w:?}",
        w.herd_wakeups
    );
    const HANDOFFS: u64 = 3_000;
    let p = waitlab_metrics(&["handoff", &HANDOFFS.to_string()]);
    let w = syscall_total(&p, EpollWait);
    assert_eq!(w.calls, HANDOFFS, "{w:?}");
    assert_eq!(w.herd_wakeups, 0, "{w:?}");
}

/// A read a signal cuts short returns EINTR to the program when the
/// handler lacks SA_RESTART, and is restarted unseen when it has it: the
/// program made one read in the second case, where the kernel ran one per
/// alarm and one more. strace -c counts each cut-short part as an error and
/// a call; so does muxtrace, and says which were seen.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_restarted_call_is_no_eintr() {
    const ALARMS: u64 = 5;
    for (sa_restart, eintr, restarted) in [(1, 0, ALARMS), (0, ALARMS, 0)] {
        let p = waitlab_metrics(&["restart", &ALARMS.to_string(), &sa_restart.to_string()]);
        let read = syscall_total(&p, Read);
        assert_eq!(
            (read.calls, read.errors, read.eintr, read.restarted),
            (ALARMS + 1, ALARMS, eintr, restarted),
            "SA_RESTART {sa_restart}: {read:?}"
        );
        assert_eq!(read.payload_bytes, 1, "{read:?}");
        // The last handler's write.
        assert_eq!(syscall_total(&p, Write).calls, 1);
    }
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn ebadf_is_counted_as_such() {
    let p = waitlab_metrics(&["ebadf"]);
    for kind in [EpollWait, Select] {
        let s = syscall_total(&p, kind);
        assert_eq!(s.ebadf, 1, "{kind}: {s:?}");
    }
}

/// A kind's mean wall time, estimated for its untimed calls from the timed
/// ones, lies between the fastest and the slowest timed call.
fn assert_mean_within_timed(kind: tracer_common::SyscallKind, w: &tracer_model::Window) {
    let mean = w.wall_ns as f64 / w.calls as f64;
    assert!(
        (w.wall_min_ns as f64..=w.wall_max_ns as f64).contains(&mean),
        "{kind}: the estimated mean {mean} ns outside the timed calls' range: {w:?}"
    );
}

/// `--time-every 8`: the calls timed one in eight, and the loop iterations
/// with the waits that end them; every count and byte still exact, and the
/// wall time of the calls not timed estimated from those that were (so the
/// mean per call lies between the fastest and the slowest timed one), the
/// iterations' time likewise. Without the flag every call is timed.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn time_every_times_one_call_in_n_and_keeps_every_count() {
    const ROUNDS: u64 = 8_000;
    let rounds = ROUNDS.to_string();
    for every in [8u32, 1] {
        let flag = every.to_string();
        let flags: &[&str] = if every == 1 {
            &[]
        } else {
            &["--time-every", &flag]
        };
        let (pid, lines) = waitlab_lines_with(&["echoloop", &rounds], "10s", flags);
        let last = &lines.last().expect("a final line").metrics;
        assert_eq!(last.time_every, every);
        let p = harness::muxtrace::process(last, pid).unwrap_or_else(|e| panic!("{e:#}"));
        let poll = syscall_total(p, Poll);
        assert_eq!((poll.calls, poll.ready), (ROUNDS, ROUNDS), "{poll:?}");
        assert_eq!(poll.watched, ROUNDS, "{poll:?}");
        // Every wait after the first ends an iteration, timed or not.
        assert_eq!(poll.iterations, ROUNDS - 1, "{poll:?}");
        let expected = ROUNDS / u64::from(every);
        if every == 1 {
            assert_eq!(poll.timed_calls, ROUNDS, "{poll:?}");
            assert_eq!(poll.timed_iterations, ROUNDS - 1, "{poll:?}");
        }
        // A timed iteration's wait is timed with it; a wait after an
        // untimed iteration is not.
        assert!(
            poll.timed_iterations.abs_diff(expected) <= expected / 10
                && poll.timed_calls.abs_diff(poll.timed_iterations) <= 1,
            "poll: {} timed, {} timed iterations of {}, expected ~{expected}",
            poll.timed_calls,
            poll.timed_iterations,
            poll.iterations
        );
        assert_mean_within_timed(Poll, poll);
        let iteration = poll.iteration_ns as f64 / poll.iterations as f64;
        assert!(
            iteration > 0.0 && iteration <= poll.iteration_max_ns as f64,
            "poll: the estimated mean iteration {iteration} ns: {poll:?}"
        );
        assert!(
            (iteration - poll.iteration_avg_ns).abs() <= iteration / 100.0,
            "poll: the timed iterations' mean {} against the estimate's {iteration}",
            poll.iteration_avg_ns
        );
        for kind in [Sendto, Recvfrom] {
            let w = syscall_total(p, kind);
            assert_eq!(w.calls, ROUNDS, "{kind}: {w:?}");
            assert_eq!(w.payload_bytes, 16 * ROUNDS, "{kind}: {w:?}");
            // 1,000 expected at one in eight; the random gaps keep it
            // within ±10 % here (a standard deviation is about 2 %).
            if every == 1 {
                assert_eq!(w.timed_calls, w.calls, "{kind}: {w:?}");
            }
            assert!(
                w.timed_calls.abs_diff(expected) <= expected / 10,
                "{kind}: {} timed of {}, expected ~{expected}",
                w.timed_calls,
                w.calls
            );
            assert_mean_within_timed(kind, w);
            assert!(w.on_cpu_ns <= w.wall_ns, "{kind}: {w:?}");
        }
    }
}

/// Where the kernel has no `bpf_rdonly_cast`, the programs read an fd's
/// file, inode and eventpoll with the probe-read helper instead of typed
/// loads: the same figures, against the same truth as the tests above.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn without_typed_reads_the_figures_are_the_same() {
    let btf = btf_without_name("bpf_rdonly_cast");
    let told = "kernel objects are read with the probe-read helper";

    // The epoll set's size, from the eventpoll's reference count.
    let lab = ready("waitlab", &["epoll", "100", "40", "5", "4"]);
    let pid = lab.pid().to_string();
    let mt = harness::Proc::spawn(
        Command::new(MUXTRACE)
            .env("MUXTRACE_BTF", btf.path())
            .args(["-v", "--pid", &pid, "--json", "--interval", "10s"]),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    mt.wait_line(
        harness::muxtrace::ATTACHED,
        harness::muxtrace::ATTACH_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    lab.signal(libc::SIGUSR1);
    let (stdout, stderr) = finish_ok(mt);
    assert!(stderr.contains(told), "{stderr}");
    let m = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = harness::muxtrace::process(&m, lab.pid()).unwrap_or_else(|e| panic!("{e:#}"));
    let w = syscall_total(p, EpollWait);
    assert_eq!((w.calls, w.watched_avg), (4, 60.0), "{w:?}");

    // Socket or file, from the fd's inode: a started syscall-burst reads a
    // byte from a socket 14 times; the loader and glibc read files first.
    let mt = harness::Proc::spawn(
        Command::new(MUXTRACE)
            .env("MUXTRACE_BTF", btf.path())
            .args(["-v", "--json", "--"])
            .arg(workspace_bin("syscall-burst")),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let (stdout, stderr) = finish_ok(mt);
    assert!(stderr.contains(told), "{stderr}");
    let m = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let burst = m
        .processes
        .iter()
        .find(|p| p.comm == "syscall-burst")
        .unwrap_or_else(|| panic!("no syscall-burst in {:?}", m.processes));
    let read = syscall_total(burst, Read);
    assert_eq!(read.payload_socket_bytes, 14, "{read:?}");
    assert!(read.payload_file_bytes > 0, "{read:?}");
    // 17 bytes to the socket; what it prints goes to a pipe.
    let write = syscall_total(burst, Write);
    assert_eq!(write.payload_socket_bytes, 17, "{write:?}");
}

/// Stops `pid` (SIGSTOP), waits until it is stopped, and lets it go on.
fn stop_and_continue(pid: u32) {
    let kill = |sig| {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(pid as i32, sig) };
    };
    kill(libc::SIGSTOP);
    eventually("the stop", std::time::Duration::from_secs(10), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        (state == 'T').then_some(())
    });
    kill(libc::SIGCONT);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_poll_resumed_after_a_stop_is_counted_with_what_it_found_ready() {
    const POLL: i64 = 7;
    const RESTART_SYSCALL: i64 = 219;
    const NANOSLEEPS: [i64; 2] = [35, 230];
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fifo = dir.path().join("fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let lab = ready(
        "waitlab",
        &["stopped", fifo.to_str().unwrap(), "--linger", "1500"],
    );
    let pid = lab.pid();
    let pid_arg = pid.to_string();
    let mt = muxtrace(&["--pid", &pid_arg, "--json", "--interval", "10s"]);
    lab.signal(libc::SIGUSR1);
    let wait = std::time::Duration::from_secs(20);
    let blocked = |nrs: &[i64], what: &str| {
        eventually(what, wait, || {
            harness::procfs::blocked_in(pid).filter(|nr| nrs.contains(nr))
        })
    };
    blocked(&[POLL], "the poll");
    // The stop cuts the poll short; the kernel resumes it as restart_syscall.
    stop_and_continue(pid);
    blocked(&[RESTART_SYSCALL], "the poll resumed");
    std::fs::write(&fifo, b"x").expect("write to the FIFO");
    lab.wait_line("poll returned 1", wait)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // A poll a handler cut short leaves its restart function behind until
    // the handler returns; then a nanosleep resumed the same way is no
    // poll.
    blocked(&NANOSLEEPS, "the linger");
    stop_and_continue(pid);
    blocked(&[RESTART_SYSCALL], "the linger resumed");
    // Every call returned: muxtrace ends with the lab.
    let (stdout, _) = finish_ok(mt);
    let lines = harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let last = &lines.last().expect("a final line").metrics;
    let p = harness::muxtrace::process(last, pid).unwrap_or_else(|e| panic!("{e:#}"));
    let s = syscall_total(p, Poll);
    // The poll the stop cut short, restarted unseen; its resumption, which
    // found the FIFO ready; and the one the handler cut, which returned
    // EINTR.
    assert_eq!(
        (s.calls, s.errors, s.eintr, s.restarted),
        (3, 2, 1, 1),
        "{s:?}"
    );
    assert_eq!((s.ready, s.useful_wakeups), (1, 1), "{s:?}");
    assert_eq!(s.infinite_timeouts, 3, "{s:?}");
    assert_eq!(our_losses(&last.losses), [], "{:?}", last.losses);
}
