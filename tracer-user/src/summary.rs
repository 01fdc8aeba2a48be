//! The end-of-run table: per process, one row per syscall, like `strace -c`
//! with the costs of waiting added. Fits 100 columns; `--wide` adds the rest.
//!
//! Payload is split by where it went: `socket B` (what a server serves),
//! `file B` (files, pipes, devices: a log, module loading), and with
//! `--wide`, `0-copy B`, the part sendfile/splice moved inside the kernel.

use std::fmt::Write as _;

use tracer_model::{
    blocked_clause,
    format::{bytes, clock_time_utc, duration, short_bytes, thousands},
    untraced_children_clause, Metrics, ProcessMetrics, UringMetrics, Window,
};

/// Renders the table for every process. `idle` lists traced processes that
/// made none of the measured calls, so they are not silently missing.
pub fn render(metrics: &Metrics, idle: &[(u32, String)], wide: bool) -> String {
    let mut out = String::new();
    // A process with no calls seen may have had them all lost to a full
    // map: the table must not read as "it made none".
    let lost: u64 = ["thread_map_full", "stats_map_full", "traced_map_full"]
        .iter()
        .filter_map(|k| metrics.losses.get(*k))
        .sum();
    // `--comm`, `--cgroup` or `--all` that found nobody: said, not left as
    // an empty table.
    if metrics.processes.is_empty() && idle.is_empty() {
        let _ = writeln!(
            out,
            "no process was traced in {:.1} s: none matched the selection, or joined the traced set\n",
            metrics.elapsed_s
        );
    }
    for p in &metrics.processes {
        if p.syscalls.is_empty() {
            let clauses = [
                blocked_clause(&p.blocked_in),
                untraced_children_clause(p.untraced_children, &p.untraced_child_pids),
            ];
            no_calls(&mut out, &who(p), lost, &clauses);
        } else {
            process_table(&mut out, p, wide, metrics);
        }
    }
    for (pid, comm) in idle {
        if !metrics.processes.iter().any(|p| p.pid == *pid) {
            no_calls(&mut out, &format!("pid {pid} ({comm})"), lost, &[]);
        }
    }
    if !metrics.losses.is_empty() {
        let list: Vec<String> = metrics
            .losses
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "lost or unmeasured: {}", list.join(" "));
    }
    if let Some(cost) = &metrics.cost {
        if cost.run_count > 0 {
            let _ = writeln!(
                out,
                "muxtrace's own probes: {:.0} ns per run, {:.2} % of one CPU (sampled over {}; the kernel's accounting of them added {:.0} ns per run while on)",
                cost.ns_per_run,
                // The work over every sample, not the last few the
                // dashboard shows; the sampling's own share is the recent one.
                cost.run_time_ns as f64 / 1e7 / cost.sampled_s.max(f64::MIN_POSITIVE)
                    + cost.accounting_percent,
                // A session of a few ms must not read "over 0.0 s".
                match cost.sampled_s {
                    s if s < 0.1 => format!("{:.0} ms", s * 1e3),
                    s => format!("{s:.1} s"),
                },
                cost.accounting_ns_per_run
            );
        }
    }
    out
}

/// How a process's entry is named: by pid, or, for exited processes
/// muxtrace was not asked for by pid and summed by name (under pid 0), in
/// words.
fn who(p: &ProcessMetrics) -> String {
    match p.folded {
        0 => format!(
            "pid {} ({}{})",
            p.pid,
            p.title.as_deref().unwrap_or(&p.comm),
            if p.alive { "" } else { ", exited" }
        ),
        1 => format!("{}: 1 exited process{}, folded", p.comm, folded_pids(p)),
        n => format!("{}: {n} exited processes{}, folded", p.comm, folded_pids(p)),
    }
}

/// How many folded pids the summary names; the JSON lists more.
const FOLDED_PIDS_SHOWN: usize = 6;

/// ` (pid 27164)`, ` (pids 27164, 27165)`, ` (pids 1, 2, … and 44 more)`: a
/// reload's old workers by pid, as the dashboard lists them.
fn folded_pids(p: &ProcessMetrics) -> String {
    let pids = &p.folded_pids;
    if pids.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = pids
        .iter()
        .take(FOLDED_PIDS_SHOWN)
        .map(u32::to_string)
        .collect();
    let more = p.folded.saturating_sub(shown.len() as u64);
    format!(
        " (pid{} {}{})",
        if p.folded == 1 { "" } else { "s" },
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// `clauses` say why a quiet process may still be the right one (its
/// threads are blocked in a wait that has not returned) or the wrong one
/// (its children do the work).
fn no_calls(out: &mut String, who: &str, lost: u64, clauses: &[Option<String>]) {
    let _ = writeln!(
        out,
        "{who}: no select, poll, epoll or I/O calls seen{}{}\n",
        match lost {
            0 => String::new(),
            n => format!(
                " (a full map lost {} calls of the traced processes: see the losses below)",
                thousands(n)
            ),
        },
        clauses
            .iter()
            .flatten()
            .map(|clause| format!("; {clause}"))
            .collect::<String>(),
    );
}

/// The event loop since attach: its threads' utilisation over the run and
/// in the last interval, iteration times and stalls, and what woken calls
/// waited for.
fn loop_lines(p: &ProcessMetrics, interval_s: f64, stall_threshold_ns: u64) -> Vec<String> {
    let t = &p.total;
    let mut lines = Vec::new();
    if !p.syscalls.iter().any(|s| s.syscall.is_wait()) {
        lines.push(
            "loop: none (no thread waits for readiness: an iteration is undefined)".to_owned(),
        );
    } else {
        let mut line = "loop:".to_owned();
        // Folded or exited processes have no loop thread left to count.
        // Over the run the loop threads together; in the last interval
        // the busiest of them.
        // The one loop thread of a process with many is named: a JVM's
        // selector thread shares its name with a dozen others.
        let the_loop = p.threads.iter().find(|t| t.wait_calls > 0);
        let one_loop = match the_loop {
            Some(t) if p.threads.len() > 1 => format!(" (1 thread: tid {} {})", t.tid, t.name),
            _ => " (1 thread)".to_owned(),
        };
        let (run_threads, last_threads, one) = match p.loop_threads {
            0 => (String::new(), "", String::new()),
            1 => (String::new(), "", one_loop),
            n => (
                format!(" ({n} loop threads together)"),
                " (the busiest)",
                String::new(),
            ),
        };
        let mut busy = Vec::new();
        if let Some(run) = tracer_model::busy_share_since_attach(p) {
            busy.push(format!("{:.1} % over the run{run_threads}", run * 100.0));
        }
        if let Some(last) = p.loop_busy_share {
            busy.push(format!(
                "{:.0} % in the last {interval_s:.1} s{last_threads}",
                last * 100.0
            ));
        }
        if !busy.is_empty() {
            let _ = write!(line, " busy {}{one};", busy.join(", "));
        }
        if t.iterations == 0 {
            line.push_str(" no iteration ended");
        } else {
            let _ = write!(
                line,
                " {} iteration{}, p50 {}, p99 {}, max {}; {} stall{} of {} or more",
                thousands(t.iterations),
                if t.iterations == 1 { "" } else { "s" },
                duration(t.iteration_p50_ns as u64),
                duration(t.iteration_p99_ns as u64),
                duration(t.iteration_max_ns),
                thousands(t.stalls),
                if t.stalls == 1 { "" } else { "s" },
                duration(stall_threshold_ns)
            );
        }
        if t.stalls > 0 {
            let on = t
                .longest_stall_ns
                .saturating_sub(t.longest_stall_off_cpu_ns);
            // Off-CPU time is asleep or preempted: a GC pause on a busy
            // machine is mostly the latter, whatever its futex says.
            let mut preempted = String::new();
            if t.longest_stall_preempted_ns > 0 {
                preempted += &format!(", {} preempted", duration(t.longest_stall_preempted_ns));
            }
            if t.longest_stall_futex_ns > 0 {
                preempted += &format!(", {} in futex", duration(t.longest_stall_futex_ns));
            }
            let _ = write!(
                line,
                ", the longest {} at {} ({} on-CPU{preempted}; calls: {})",
                duration(t.longest_stall_ns),
                clock_time_utc(t.longest_stall_at_s),
                duration(on),
                if t.longest_stall_syscalls.is_empty() {
                    "none traced".to_owned()
                } else {
                    t.longest_stall_syscalls.join(", ")
                }
            );
        }
        lines.push(line);
    }
    if t.runq_delays > 0 {
        let per = |ns: u64| duration(ns / t.runq_delays);
        lines.push(format!(
            "woken: {} calls; wakeup to code {} = run queue {} + exit path {}; run queue p99 {}, max {}",
            thousands(t.runq_delays),
            duration(t.readiness_latency_avg_ns as u64),
            per(t.runq_ns),
            per(t.exit_path_ns),
            duration(t.runq_p99_ns as u64),
            duration(t.runq_max_ns),
        ));
    }
    lines
}

/// Where the stalls of the iterations `--time-every` left untimed come from.
fn untimed_stalls_note(tick_ns: u64, tick_stalls: u64) -> String {
    if tick_ns == 0 {
        return "stalls found among the timed iterations only (the kernel's tick is unknown)"
            .to_owned();
    }
    format!(
        "stalls found in the untimed iterations too, by the kernel's {} tick: {} so far, their \
         lengths known to within a tick (one less than a tick over --stall may be missed)",
        duration(tick_ns),
        thousands(tick_stalls),
    )
}

fn process_table(out: &mut String, p: &ProcessMetrics, wide: bool, metrics: &Metrics) {
    // A folded entry's time is its processes' summed.
    let _ = writeln!(
        out,
        "{}: {} model, {} traced{}",
        who(p),
        p.model.name(),
        // Children that lived milliseconds read "0.0 s" beside their calls.
        duration((p.total.seconds * 1e9) as u64),
        if p.folded > 1 { " in all" } else { "" }
    );
    if metrics.time_every > 1 {
        let note = format!(
            "times sampled (--time-every {}): 1 in {} calls and loop iterations timed; {} of {} \
             calls and {} of {} iterations timed, the seconds and us/call of the rest estimated \
             from them; {}",
            metrics.time_every,
            metrics.time_every,
            thousands(p.total.timed_calls),
            thousands(p.total.calls),
            thousands(p.total.timed_iterations),
            thousands(p.total.iterations),
            untimed_stalls_note(metrics.tick_ns, p.total.tick_stalls),
        );
        for line in wrap(&note, 100) {
            let _ = writeln!(out, "{line}");
        }
    }
    // io_uring_enter/wait is the longest name.
    let name_width = p
        .syscalls
        .iter()
        .map(|s| s.syscall.name().len())
        .max()
        .unwrap_or(0)
        .max(12);
    let mut header = format!(
        "{:<name_width$} {:>8} {:>6} {:>9} {:>7} {:>7} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8}",
        "syscall",
        "calls",
        "errors",
        "seconds",
        "us/call",
        "watched",
        "ready",
        "eff%",
        "cpu%",
        "bkkp/c",
        "socket B",
        "file B"
    );
    if wide {
        let _ = write!(
            header,
            " {:>8} {:>8} {:>6} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>10}",
            "0-copy B",
            "timeouts",
            "EINTR",
            "restart",
            "EAGAIN",
            "EBADF",
            "p50 us",
            "p99 us",
            "off-cpu s",
            "sched-wk",
            "empty-wk",
            "herd",
            "bkkp/ready"
        );
    }
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    let mut rows: Vec<(&str, &Window)> = p
        .syscalls
        .iter()
        .map(|s| (s.syscall.name(), &s.total))
        .collect();
    rows.sort_by(|a, b| b.1.wall_ns.cmp(&a.1.wall_ns).then(a.0.cmp(b.0)));
    for (name, w) in rows {
        // The rings are shared memory: io_uring_enter copies nothing, and
        // the table says 0 rather than leave it blank.
        let shared_rings = name.starts_with("io_uring");
        row(out, name, name_width, shared_rings, w, wide);
    }
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    row(out, "total", name_width, false, &p.total, wide);
    if let Some(u) = &p.uring {
        uring_table(out, u, name_width);
    }
    for line in payload_line(p)
        .iter()
        .chain(&loop_lines(
            p,
            metrics.interval_s,
            metrics.stall_threshold_ns,
        ))
        .chain(loop_sets_line(p).as_ref())
        .chain(exited_threads_line(p).as_ref())
        .flat_map(|l| wrap(l, 100))
    {
        let _ = writeln!(out, "{line}");
    }
    for line in wrap(&p.verdict, 100) {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
}

/// The payload by direction, to the byte: the table's `socket B` adds what
/// was sent and received and rounds it (a helper took nginx's "33.8M" for
/// short of ab's 35,492,000 bytes transferred). `None` without payload.
fn payload_line(p: &ProcessMetrics) -> Option<String> {
    let w = &p.total;
    let (socket_in, socket_out) = (w.socket_received_bytes, w.socket_sent_bytes);
    let (file_in, file_out) = (w.file_read_bytes, w.file_written_bytes);
    let zero_copy = w.zero_copy_bytes;
    let mut parts = Vec::new();
    if socket_in + socket_out > 0 {
        parts.push(format!(
            "sockets {} B sent, {} received",
            thousands(socket_out),
            thousands(socket_in)
        ));
    }
    if file_in + file_out > 0 {
        parts.push(format!(
            "files and pipes {} B read, {} written",
            thousands(file_in),
            thousands(file_out)
        ));
    }
    if zero_copy > 0 {
        parts.push(format!(
            "{} B never crossed user space (sendfile, splice; a proxy's spliced bytes count \
             in and out)",
            thousands(zero_copy)
        ));
    }
    (!parts.is_empty()).then(|| format!("payload: {}", parts.join("; ")))
}

/// How many loops shown by name at most; the rest are counted.
const LOOP_SETS_SHOWN: usize = 6;

/// Each loop thread's own fds per wait, when a process runs several: its
/// table's watched figure is the mean over all their waits (memcached's
/// workers each wait on an epoll of their own; its main thread on the
/// listening socket alone).
fn loop_sets_line(p: &ProcessMetrics) -> Option<String> {
    let mut loops: Vec<_> = p.threads.iter().filter(|t| t.watched_waits > 0).collect();
    if loops.len() < 2 {
        return None;
    }
    loops.sort_by_key(|t| std::cmp::Reverse(t.watched_waits));
    let mut parts: Vec<String> = loops
        .iter()
        .take(LOOP_SETS_SHOWN)
        .map(|t| {
            format!(
                "{} {} {:.1} ({} waits)",
                t.tid,
                t.name,
                t.watched as f64 / t.watched_waits as f64,
                thousands(t.watched_waits)
            )
        })
        .collect();
    if loops.len() > LOOP_SETS_SHOWN {
        parts.push(format!("{} more", loops.len() - LOOP_SETS_SHOWN));
    }
    Some(format!(
        "loop threads, fds watched per wait since attach: {}",
        parts.join(", ")
    ))
}

/// The threads that came and went: a server with a thread per connection
/// made most of its calls in them.
fn exited_threads_line(p: &ProcessMetrics) -> Option<String> {
    let e = p.exited_threads.as_ref()?;
    let live = p.threads.len();
    Some(format!(
        "threads: {} exited since attach, {} of the calls above ({} on a CPU, {} switched out \
         inside them); {live} live",
        thousands(e.threads),
        thousands(e.calls),
        duration(e.on_cpu_ns),
        duration(e.off_cpu_ns),
    ))
}

/// Word-wraps at `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// The io_uring requests: one line of what the syscalls bought and which
/// path requests took, then a row per opcode.
fn uring_table(out: &mut String, u: &UringMetrics, name_width: usize) {
    let t = &u.total;
    let pct = |n: u64| {
        if t.timed == 0 {
            0.0
        } else {
            n as f64 * 100.0 / t.timed as f64
        }
    };
    // Per-enter and per-wait figures only where there were any: a ring
    // reaped by polling alone makes no wait.
    let per_enter = match t.enters {
        0 => "no io_uring_enter".to_owned(),
        _ => format!("{:.1} SQEs per io_uring_enter", t.sqes_per_enter),
    };
    let per_wait = match t.waits {
        0 => "no wait for completions".to_owned(),
        _ => format!(
            "{:.1} CQEs per wait; bookkeeping copied {} per wait",
            t.cqes_per_wait,
            bytes(t.bookkeeping_bytes_per_wait)
        ),
    };
    let _ = writeln!(
        out,
        "io_uring: {} requests ({} by io_uring_enter, {} by the SQ thread without a syscall); {per_enter}; {per_wait}; paths: {:.0} % inline, {:.0} % internal poll, {:.0} % io-wq",
        thousands(t.submitted),
        thousands(t.enter_submitted),
        thousands(t.sqpoll_submitted),
        pct(t.inline),
        pct(t.polled),
        pct(t.punted),
    );
    let header = format!(
        "{:<name_width$} {:>8} {:>8} {:>6} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9}",
        "io_uring op",
        "requests",
        "CQEs",
        "errors",
        "bytes",
        "inline",
        "poll",
        "io-wq",
        "p50 us",
        "p99 us"
    );
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    for op in &u.ops {
        let w = &op.total;
        let _ = writeln!(
            out,
            "{:<name_width$} {:>8} {:>8} {:>6} {:>9} {:>7} {:>7} {:>7} {:>9.1} {:>9.1}",
            op.op,
            w.submitted,
            w.cqes,
            w.errors,
            if w.bytes > 0 {
                short_bytes(w.bytes)
            } else {
                "-".to_owned()
            },
            w.inline,
            w.polled,
            w.punted,
            w.latency_p50_ns / 1e3,
            w.latency_p99_ns / 1e3,
        );
    }
}

/// `v` in at most `width` characters, so that a large figure never pushes
/// the columns after it out from under their headers: with `decimals`
/// decimals, fewer as it grows (an idle server's 100 ms waits are 100208
/// us/call), then in k, M or G.
fn fit(v: f64, width: usize, decimals: usize) -> String {
    for d in (0..=decimals).rev() {
        let text = format!("{v:.d$}");
        if text.len() <= width {
            return text;
        }
    }
    for (unit, scale) in [("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)] {
        let text = format!("{:.1}{unit}", v / scale);
        if text.len() <= width {
            return text;
        }
    }
    format!("{v:.0}")
}

fn row(
    out: &mut String,
    name: &str,
    name_width: usize,
    shared_rings: bool,
    w: &Window,
    wide: bool,
) {
    let waits = w.watched > 0 || w.ready > 0 || w.timeouts > 0 || w.scanned > 0;
    let dash = |v: String| if waits { v } else { "-".to_owned() };
    let per = |v: u64, calls: u64| {
        if calls == 0 {
            0.0
        } else {
            v as f64 / calls as f64
        }
    };
    let per_call = |v: u64| per(v, w.calls);
    let bookkeeping = w.bookkeeping_in_bytes + w.bookkeeping_out_bytes;
    let amount = |v: u64| {
        if v > 0 {
            short_bytes(v)
        } else {
            "-".to_owned()
        }
    };
    let _ = write!(
        out,
        "{:<name_width$} {:>8} {:>6} {:>9} {:>7} {:>7} {:>6} {:>5} {:>5.1} {:>8} {:>8} {:>8}",
        name,
        fit(w.calls as f64, 8, 0),
        fit(w.errors as f64, 6, 0),
        fit(w.wall_ns as f64 / 1e9, 9, 6),
        fit(per(w.wall_ns, w.calls_with_time) / 1e3, 7, 2),
        dash(fit(w.watched_avg, 7, 1)),
        dash(fit(w.ready_avg, 6, 1)),
        // Nothing scanned (an idle epoll loop, a poll of no fds): no share.
        match w.scanned {
            0 => "-".to_owned(),
            _ => dash(format!("{:.1}", w.efficiency * 100.0)),
        },
        w.on_cpu_share * 100.0,
        if bookkeeping > 0 || shared_rings {
            short_bytes(per_call(bookkeeping).round() as u64)
        } else {
            "-".to_owned()
        },
        amount(w.payload_socket_bytes),
        amount(w.payload_file_bytes),
    );
    if wide {
        let _ = write!(
            out,
            " {:>8} {:>8} {:>6} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>10}",
            amount(w.zero_copy_bytes),
            fit(w.timeouts as f64, 8, 0),
            fit(w.eintr as f64, 6, 0),
            fit(w.restarted as f64, 7, 0),
            fit(w.eagain as f64, 7, 0),
            fit(w.ebadf as f64, 6, 0),
            fit(w.wall_p50_ns / 1e3, 9, 1),
            fit(w.wall_p99_ns / 1e3, 9, 1),
            fit(w.off_cpu_ns as f64 / 1e9, 9, 3),
            fit(w.sched_wakeups as f64, 9, 0),
            fit(w.empty_wakeups as f64, 8, 0),
            fit(w.herd_wakeups as f64, 6, 0),
            if w.ready > 0 {
                bytes(w.bookkeeping_bytes_per_ready)
            } else {
                "-".to_owned()
            },
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use tracer_common::{SyscallKind, SyscallStats};

    use super::*;
    use tracer_model::{ProcessInfo, ProcessSnap, Snapshot};

    fn stats(calls: u64, errors: u64, wall_ns: u64) -> SyscallStats {
        SyscallStats {
            calls,
            errors,
            wall_ns,
            ..SyscallStats::ZERO
        }
    }

    fn metrics() -> Metrics {
        let mut syscalls = BTreeMap::new();
        syscalls.insert(SyscallKind::Read, stats(10, 2, 1_000_000));
        let mut poll = stats(4, 0, 3_000_000);
        poll.watched = 4 * 100;
        poll.scanned = 4 * 100;
        poll.ready = 4;
        poll.useful_wakeups = 4;
        poll.bookkeeping_in = 4 * 800;
        poll.bookkeeping_out = 4 * 200;
        syscalls.insert(SyscallKind::Poll, poll);
        let mut snap = Snapshot {
            elapsed: Duration::from_secs(2),
            ..Snapshot::default()
        };
        snap.processes.insert(
            7,
            ProcessSnap {
                info: ProcessInfo {
                    alive: false,
                    ..ProcessSnap::new(7, b"srv", []).info
                },
                ..ProcessSnap::new(7, b"srv", syscalls)
            },
        );
        tracer_model::compute(None, &snap)
    }

    /// nginx's kind of run: the socket bytes each way, and the bodies read
    /// from a file with pread64 and sent from user space, to the byte.
    #[test]
    fn payload_is_said_by_direction_to_the_byte() {
        let mut syscalls = BTreeMap::new();
        let payload = |calls: u64, socket: u64, file: u64| SyscallStats {
            calls,
            payload_bytes: socket + file,
            payload_socket_bytes: socket,
            ..SyscallStats::ZERO
        };
        syscalls.insert(SyscallKind::Recvfrom, payload(2000, 186_000, 0));
        syscalls.insert(SyscallKind::Pread64, payload(2000, 0, 35_020_000));
        syscalls.insert(SyscallKind::Writev, payload(2000, 35_492_000, 0));
        syscalls.insert(SyscallKind::Write, payload(2003, 0, 204_260));
        let mut snap = Snapshot {
            elapsed: Duration::from_secs(2),
            ..Snapshot::default()
        };
        snap.processes
            .insert(7, ProcessSnap::new(7, b"nginx", syscalls));
        let m = tracer_model::compute(None, &snap);
        assert_eq!(
            payload_line(&m.processes[0]).unwrap(),
            "payload: sockets 35,492,000 B sent, 186,000 received; files and pipes \
             35,020,000 B read, 204,260 written"
        );
        assert_eq!(payload_line(&metrics().processes[0]), None);
    }

    /// memcached's kind of process: each loop thread's own set, busiest
    /// first, beside the table's mean; a single loop needs no such line.
    #[test]
    fn several_loops_each_say_their_own_fds_per_wait() {
        let thread = |tid: u32, name: &str, waits: u64, set: u64| tracer_model::ThreadMetrics {
            tid,
            name: name.into(),
            loop_busy_share: None,
            iterations: waits,
            stalls: 0,
            calls: 3 * waits,
            wait_calls: waits,
            wakeups: waits,
            watched: waits * set,
            watched_waits: waits,
            ready: waits,
            watched_per_wait: None,
            timed_calls: 3 * waits,
            wall_ns: 0,
            off_cpu_ns: 0,
            on_cpu_ns: 0,
            calls_per_sec: 0.0,
            stopped_ns: 0,
            parked_ns: 0,
        };
        let mut m = metrics();
        let p = &mut m.processes[0];
        p.threads = vec![
            thread(10, "memcached", 3, 1),
            thread(11, "mc-worker", 1006, 26),
            thread(12, "mc-worker", 1007, 27),
            thread(13, "mc-lrumaint", 0, 0),
        ];
        assert_eq!(
            loop_sets_line(p).unwrap(),
            "loop threads, fds watched per wait since attach: 12 mc-worker 27.0 (1,007 waits), \
             11 mc-worker 26.0 (1,006 waits), 10 memcached 1.0 (3 waits)"
        );
        p.threads.truncate(2);
        p.threads.remove(0);
        assert_eq!(loop_sets_line(p), None);
    }

    #[test]
    fn table_sorts_by_time_totals_and_fits_100_columns() {
        let text = render(&metrics(), &[(8, "idle".to_owned())], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "pid 7 (srv, exited): poll model, 2.0 s traced");
        assert!(lines[3].starts_with("poll "), "{text}");
        assert!(lines[3].contains("100.0"), "watched: {text}");
        assert!(lines[3].contains(" 1000 "), "bookkeeping per call: {text}");
        assert!(lines[4].starts_with("read "), "{text}");
        assert!(
            lines[6].starts_with(&format!("{:<12} {:>8} {:>6}", "total", 14, 2)),
            "{text}"
        );
        assert_eq!(lines[7], "loop: no iteration ended", "{text}");
        assert!(lines[8].starts_with("poll scans 100 fds"), "{text}");
        assert!(text.contains("pid 8 (idle): no select"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    }

    /// A selection that found nobody says so rather than print no table.
    #[test]
    fn a_run_that_traced_nobody_says_so() {
        let mut m = metrics();
        m.processes.clear();
        m.elapsed_s = 2.0;
        let text = render(&m, &[], false);
        assert!(
            text.starts_with("no process was traced in 2.0 s: none matched the selection"),
            "{text}"
        );
        assert!(!render(&metrics(), &[], false).contains("no process was traced"));
    }

    /// Exited processes summed by name that made no measured call are named
    /// in words, as the ones that did, and not as "pid 0".
    #[test]
    fn a_folded_entry_with_no_calls_is_named_in_words() {
        let mut m = metrics();
        let p = &mut m.processes[0];
        (p.pid, p.comm, p.folded, p.alive) = (0, "sleep".to_owned(), 3, false);
        p.syscalls.clear();
        let text = render(&m, &[], false);
        assert!(
            text.starts_with(
                "sleep: 3 exited processes, folded: no select, poll, epoll or I/O calls seen"
            ),
            "{text}"
        );
        assert!(!text.contains("pid 0"), "{text}");
    }

    /// A quiet master (nginx's, with its workers untraced) says where the
    /// work went.
    #[test]
    fn no_calls_seen_names_the_untraced_children() {
        let mut m = metrics();
        let p = &mut m.processes[0];
        p.syscalls.clear();
        p.untraced_children = 6;
        p.untraced_child_pids = vec![11, 12, 13, 14, 15, 16];
        let text = render(&m, &[], false);
        assert!(
            text.contains(
                "no select, poll, epoll or I/O calls seen; its 6 child processes (11, 12, 13, 14, 2 more) are not traced: --follow traces them"
            ),
            "{text}"
        );
    }

    /// A process whose calls were all lost to a full map is not said to
    /// have made none.
    #[test]
    fn no_calls_seen_names_calls_lost_to_a_full_map() {
        let mut m = metrics();
        m.losses.insert("thread_map_full".to_owned(), 1146);
        let text = render(&m, &[(8, "idle".to_owned())], false);
        assert!(
            text.contains(
                "pid 8 (idle): no select, poll, epoll or I/O calls seen (a full map lost 1,146 calls"
            ),
            "{text}"
        );
    }

    /// The busy share over the run comes from the iterations' time against
    /// the time traced (2 s), beside the last interval's.
    #[test]
    fn the_loop_line_gives_the_run_s_busy_share_beside_the_interval_s() {
        let mut m = metrics();
        let p = &mut m.processes[0];
        assert_eq!(p.total.seconds, 2.0);
        p.total.iterations = 10;
        p.total.iteration_ns = 500_000_000;
        for s in &mut p.syscalls {
            s.total.wall_ns = if s.syscall.is_wait() {
                1_000_000_000
            } else {
                0
            };
        }
        p.loop_busy_share = Some(0.0);
        p.loop_threads = 1;
        let text = render(&m, &[], false);
        let line = text.lines().find(|l| l.starts_with("loop:")).unwrap();
        assert!(
            line.starts_with("loop: busy 25.0 % over the run, 0 % in the last"),
            "{text}"
        );
    }

    /// A stall's time off its CPU says how much of it the thread was
    /// preempted and how much it slept in futex.
    #[test]
    fn the_longest_stall_says_its_preempted_time() {
        let mut m = metrics();
        let p = &mut m.processes[0];
        p.total.iterations = 10;
        p.total.stalls = 1;
        p.total.longest_stall_ns = 195_000_000;
        p.total.longest_stall_off_cpu_ns = 106_000_000;
        p.total.longest_stall_preempted_ns = 98_000_000;
        p.total.longest_stall_futex_ns = 8_000_000;
        p.total.longest_stall_syscalls = vec!["read".into(), "futex".into()];
        let text = render(&m, &[], false);
        assert!(
            // The line wraps at 100 columns, at a space.
            text.replace('\n', " ")
                .contains("(89 ms on-CPU, 98 ms preempted, 8 ms in futex; calls: read, futex)"),
            "{text}"
        );
    }

    /// A process of many threads names its one loop thread: a JVM's
    /// selector shares the name `java` with a dozen others.
    #[test]
    fn the_one_loop_thread_of_many_is_named() {
        let mut m = metrics();
        let p = &mut m.processes[0];
        (p.loop_threads, p.loop_busy_share) = (1, Some(0.5));
        p.threads = vec![
            tracer_model::ThreadMetrics {
                tid: 7,
                name: "java".into(),
                ..Default::default()
            },
            tracer_model::ThreadMetrics {
                tid: 12,
                name: "java".into(),
                wait_calls: 4,
                ..Default::default()
            },
        ];
        let text = render(&m, &[], false);
        let line = text.lines().find(|l| l.starts_with("loop:")).unwrap();
        assert!(line.contains("(1 thread: tid 12 java);"), "{text}");
    }

    /// Folded totals have no pid of their own: they say what they sum.
    #[test]
    fn folded_totals_say_what_they_sum() {
        let mut m = metrics();
        m.processes[0].pid = 0;
        m.processes[0].folded = 3;
        let text = render(&m, &[], false);
        assert_eq!(
            text.lines().next().unwrap(),
            "srv: 3 exited processes, folded: poll model, 2.0 s traced in all",
            "{text}"
        );
        // With their pids (dnsmasq's children for TCP, each alive for
        // milliseconds): the first few, and how many more.
        m.processes[0].folded_pids = vec![101, 102, 103];
        let text = render(&m, &[], false);
        assert_eq!(
            text.lines().next().unwrap(),
            "srv: 3 exited processes (pids 101, 102, 103), folded: poll model, 2.0 s traced in all"
        );
        m.processes[0].folded = 50;
        m.processes[0].folded_pids = (1..=50).collect();
        m.processes[0].total.seconds = 0.038;
        let text = render(&m, &[], false);
        assert_eq!(
            text.lines().next().unwrap(),
            "srv: 50 exited processes (pids 1, 2, 3, 4, 5, 6 and 44 more), folded: poll model, \
             38 ms traced in all"
        );
    }

    /// Figures too large for their column lose decimals, then take a unit:
    /// every column stays under its header.
    #[test]
    fn large_figures_keep_their_columns() {
        assert_eq!(fit(1.903952, 9, 6), "1.903952");
        assert_eq!(fit(100207.99, 7, 2), "100208");
        assert_eq!(fit(5.31, 7, 2), "5.31");
        assert_eq!(fit(432_000_000.0, 8, 0), "432.0M");
        assert_eq!(fit(12_345.0, 8, 0), "12345");
        assert_eq!(fit(123_456.789, 9, 6), "123456.79");
    }

    /// Under --time-every the note says the stalls of untimed iterations
    /// come from the tick, and how many.
    #[test]
    fn sampled_times_say_where_untimed_stalls_come_from() {
        let mut m = metrics();
        m.time_every = 16;
        m.tick_ns = 4_000_000;
        m.processes[0].total.tick_stalls = 2;
        let text = render(&m, &[], false).replace('\n', " ");
        assert!(text.contains("times sampled (--time-every 16)"), "{text}");
        assert!(
            text.contains("by the kernel's 4 ms tick: 2 so far"),
            "{text}"
        );
        m.tick_ns = 0;
        let text = render(&m, &[], false).replace('\n', " ");
        assert!(
            text.contains("stalls found among the timed iterations only"),
            "{text}"
        );
    }

    /// Every row is as wide as the header, in both tables: a heading
    /// wider than its column pushed the wide table's last one out of line.
    #[test]
    fn wide_adds_columns_and_rows_line_up() {
        for wide in [false, true] {
            let text = render(&metrics(), &[], wide);
            let table: Vec<&str> = text
                .lines()
                .skip(1)
                // Columns are set apart by runs of spaces; prose is not.
                .take_while(|l| l.starts_with('-') || l.contains("   "))
                .collect();
            assert!(table.len() >= 4, "{text}");
            assert_eq!(table[0].contains("EINTR"), wide, "{text}");
            let width = table[0].chars().count();
            for line in &table {
                assert_eq!(line.chars().count(), width, "{line:?}\n{text}");
            }
        }
    }
}
