//! Kernel tests of the io_uring figures: each uringlab scenario
//! (testprogs/src/bin/uringlab.rs) does exactly known io_uring work and
//! reports every io_uring_enter and every CQE as the kernel returned them;
//! muxtrace's counts must be those, exactly — enters, waits, SQEs, CQEs,
//! CQEs per wait, bytes, errors by errno, and each request's path.
mod common;

use std::{path::Path, time::Duration};

use common::*;
use tracer_common::SyscallKind;
use tracer_model::{IoModel, ProcessMetrics, UringWindow};

/// What uringlab's report says the kernel did.
#[derive(Debug, Default)]
struct Lab {
    enters: u64,
    /// Enters with GETEVENTS and a wait of at least 1.
    waits: u64,
    /// CQEs reaped right after each wait: what its ring held as it returned.
    cqes_after_waits: u64,
    /// The total line.
    sqes: u64,
    cqes: u64,
    bytes: u64,
    errors: u64,
    /// CQE count and summed positive results by the report's op name.
    by_op: std::collections::BTreeMap<String, (u64, u64)>,
    errnos: Vec<String>,
    sqpoll: bool,
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
}

fn num(line: &str, name: &str) -> u64 {
    field(line, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

fn parse(report: &str) -> Lab {
    let mut lab = Lab::default();
    let mut in_wait = false;
    let mut total = false;
    for line in report.lines() {
        if line.starts_with("ring ") {
            lab.sqpoll = field(line, "sqpoll") == Some("1");
        } else if line.starts_with("enter ") {
            lab.enters += 1;
            in_wait = num(line, "wait") > 0
                && field(line, "flags").is_some_and(|f| f.split('|').any(|f| f == "GETEVENTS"));
            if in_wait {
                lab.waits += 1;
            }
        } else if line.starts_with("cqe ") {
            if in_wait {
                lab.cqes_after_waits += 1;
            }
            let op = field(line, "op").expect("an op").to_owned();
            let entry = lab.by_op.entry(op).or_default();
            entry.0 += 1;
            if let Some(errno) = field(line, "errno") {
                lab.errnos.push(errno.to_owned());
            } else {
                entry.1 += num(line, "bytes");
            }
        } else if line.starts_with("total ") {
            total = true;
            assert_eq!(num(line, "enters"), lab.enters, "{report}");
            lab.sqes = num(line, "sqes");
            lab.cqes = num(line, "cqes");
            lab.bytes = num(line, "bytes");
            lab.errors = num(line, "errors");
        }
    }
    assert!(total, "uringlab printed no total: {report}");
    lab
}

/// Runs a uringlab scenario under `muxtrace --json` and returns what
/// uringlab reported and muxtrace's final view of it.
fn uringlab(args: &[&str]) -> (Lab, ProcessMetrics) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--linger", "300"]);
    let lab = ready("uringlab", &all);
    let pid = lab.pid();
    let pid_arg = pid.to_string();
    let mt = harness::start_muxtrace(
        Path::new(MUXTRACE),
        &["--pid", &pid_arg, "--json", "--interval", "10s"],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    lab.signal(libc::SIGUSR1);
    let (code, _, report) = finish(lab, Duration::from_secs(60));
    assert_eq!(code, Some(0), "uringlab: {report}");
    let (stdout, _) = finish_ok(mt);
    let metrics = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let p = harness::muxtrace::process(&metrics, pid)
        .unwrap_or_else(|e| panic!("{e:#}: {stdout}"))
        .clone();
    assert_eq!(our_losses(&metrics.losses), [], "{:?}", metrics.losses);
    (parse(&report), p)
}

fn uring(p: &ProcessMetrics) -> &UringWindow {
    &p.uring
        .as_ref()
        .unwrap_or_else(|| panic!("no io_uring figures: {p:?}"))
        .total
}

/// Payload the process's syscalls moved (not its requests).
fn syscall_payload(p: &ProcessMetrics) -> u64 {
    p.syscalls.iter().map(|s| s.total.payload_bytes).sum()
}

fn calls(p: &ProcessMetrics, kind: SyscallKind) -> u64 {
    p.syscalls
        .iter()
        .find(|s| s.syscall == kind)
        .map_or(0, |s| s.total.calls)
}

/// The figures every scenario must match with uringlab's own report.
fn check_common(lab: &Lab, p: &ProcessMetrics) {
    let u = uring(p);
    assert_eq!(p.model, IoModel::IoUring, "{p:?}");
    assert_eq!(u.enters, lab.enters, "{lab:?} {u:?}");
    assert_eq!(
        calls(p, SyscallKind::IoUringEnter) + calls(p, SyscallKind::IoUringWait),
        lab.enters
    );
    assert_eq!(
        calls(p, SyscallKind::IoUringWait),
        lab.waits,
        "{lab:?} {u:?}"
    );
    assert_eq!(u.waits, lab.waits);
    assert_eq!(u.submitted, lab.sqes, "{lab:?} {u:?}");
    assert_eq!(u.cqes, lab.cqes, "{lab:?} {u:?}");
    assert_eq!(u.completed, lab.cqes, "single-shot requests: one CQE each");
    assert_eq!(u.bytes, lab.bytes, "{lab:?} {u:?}");
    assert_eq!(u.errors, lab.errors, "{lab:?} {u:?}");
    // Every request was submitted while muxtrace watched: each is timed,
    // on exactly one path.
    assert_eq!(u.timed, u.completed, "{u:?}");
    assert_eq!(u.inline + u.polled + u.punted, u.timed, "{u:?}");
    assert!(
        u.latency_min_ns > 0 && u.latency_min_ns <= u.latency_max_ns,
        "{u:?}"
    );
    // CQEs per wait: what each wait's ring held as it returned, which is
    // what uringlab reaped right after it.
    let ready: u64 = p
        .syscalls
        .iter()
        .filter(|s| s.syscall == SyscallKind::IoUringWait)
        .map(|s| s.total.ready)
        .sum();
    assert_eq!(ready, lab.cqes_after_waits, "{lab:?} {u:?}");
    // The rings are shared memory: no extended argument, nothing copied.
    assert_eq!(u.bookkeeping_bytes, 0, "{u:?}");
    // By opcode, as uringlab named each CQE.
    for (op, (cqes, bytes)) in &lab.by_op {
        let row = p
            .uring
            .as_ref()
            .unwrap()
            .ops
            .iter()
            .find(|o| &o.op == op)
            .unwrap_or_else(|| panic!("no {op} row: {p:?}"));
        assert_eq!(row.total.cqes, *cqes, "{op}: {row:?}");
        assert_eq!(row.total.bytes, *bytes, "{op}: {row:?}");
    }
    assert_eq!(p.uring.as_ref().unwrap().ops.len(), lab.by_op.len());
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn nops_in_batches() {
    // 100 NOPs in batches of 8: 13 enters, each a wait; 12 of 8, one of 4.
    let (lab, p) = uringlab(&["nops", "100", "8"]);
    check_common(&lab, &p);
    let u = uring(&p);
    assert_eq!((lab.enters, lab.sqes, lab.cqes), (13, 100, 100), "{lab:?}");
    assert_eq!(u.inline, 100, "{u:?}");
    assert!((u.sqes_per_enter - 100.0 / 13.0).abs() < 1e-9, "{u:?}");
    assert!((u.cqes_per_wait - 100.0 / 13.0).abs() < 1e-9, "{u:?}");
    assert_eq!(u.messages, 0, "a NOP moves nothing");
    // The process's payload is its syscalls' alone (the report's write).
    assert_eq!(p.total.payload_bytes, syscall_payload(&p));
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn recvs_complete_inline() {
    let (lab, p) = uringlab(&["recvs", "6", "300"]);
    check_common(&lab, &p);
    let u = uring(&p);
    assert_eq!((lab.enters, lab.bytes), (6, 1800), "{lab:?}");
    assert_eq!((u.inline, u.polled, u.punted), (6, 0, 0), "{u:?}");
    assert_eq!(
        (u.messages, u.receives, u.socket_bytes),
        (6, 6, 1800),
        "{u:?}"
    );
    // The process's payload and messages include what its requests moved;
    // its syscalls per message are its enters (and the report's one write)
    // per received message.
    assert_eq!(p.total.payload_socket_bytes, 1800);
    assert_eq!(p.total.socket_received_bytes, 1800, "{:?}", p.total);
    assert_eq!(p.total.receives_with_data, 6);
    assert!(
        (p.total.syscalls_per_receive - p.total.calls as f64 / 6.0).abs() < 1e-9,
        "{:?}",
        p.total
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn recvs_on_an_empty_socket_go_through_the_internal_poll() {
    let (lab, p) = uringlab(&["recvpoll", "5", "64"]);
    check_common(&lab, &p);
    let u = uring(&p);
    // Per round: an enter that only submits, a sendto, an enter that only waits.
    assert_eq!((lab.enters, lab.waits), (10, 5), "{lab:?}");
    assert_eq!(calls(&p, SyscallKind::IoUringEnter), 5);
    assert_eq!(calls(&p, SyscallKind::Sendto), 5);
    assert_eq!((u.polled, u.poll_arms, u.inline), (5, 5, 0), "{u:?}");
    assert_eq!(u.bytes, 5 * 64);
    assert!((u.sqes_per_enter - 0.5).abs() < 1e-9, "{u:?}");
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn failed_requests_count_their_errno() {
    let (lab, p) = uringlab(&["fail"]);
    check_common(&lab, &p);
    let u = uring(&p);
    assert_eq!(lab.errnos, ["EBADF", "ENOTSOCK"], "{lab:?}");
    assert_eq!((u.errors, u.ebadf, u.other_errors), (2, 1, 1), "{u:?}");
    let ops = &p.uring.as_ref().unwrap().ops;
    let read = ops.iter().find(|o| o.op == "read").unwrap();
    let recv = ops.iter().find(|o| o.op == "recv").unwrap();
    assert_eq!((read.total.errors, read.total.ebadf), (1, 1), "{read:?}");
    assert_eq!(
        (recv.total.errors, recv.total.other_errors),
        (1, 1),
        "{recv:?}"
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn forced_async_requests_are_punted_to_io_wq() {
    let (lab, p) = uringlab(&["async", "6"]);
    check_common(&lab, &p);
    let u = uring(&p);
    assert_eq!(
        (lab.enters, lab.sqes, lab.bytes),
        (1, 6, 6 * 4096),
        "{lab:?}"
    );
    assert_eq!((u.punted, u.async_punts), (6, 6), "{u:?}");
    assert_eq!(u.punt_share, 1.0);
    // A regular file: file bytes, not socket bytes.
    assert_eq!(u.socket_bytes, 0, "{u:?}");
    // The report's write to stderr (a pipe) is file payload too.
    assert_eq!(
        p.total.payload_file_bytes,
        6 * 4096 + syscall_payload(&p),
        "{:?}",
        p.total
    );
    // The requests read the file; the report was written.
    assert_eq!(
        (p.total.file_read_bytes, p.total.file_written_bytes),
        (6 * 4096, syscall_payload(&p)),
        "{:?}",
        p.total
    );
    assert!(
        p.verdict
            .contains("100 % of requests punted to io-wq workers"),
        "{}",
        p.verdict
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn sqpoll_submissions_cost_no_syscall() {
    let (lab, p) = uringlab(&["sqpoll", "40"]);
    assert!(lab.sqpoll, "{lab:?}");
    check_common(&lab, &p);
    let u = uring(&p);
    // One enter that only woke the SQ thread; it took all 40.
    assert_eq!((lab.enters, lab.waits, lab.sqes), (1, 0, 40), "{lab:?}");
    assert_eq!((u.sqpoll_submitted, u.enter_submitted), (40, 0), "{u:?}");
    assert_eq!(u.sqpoll_share, 1.0);
    assert!(
        p.verdict.contains("40 of 40 submissions by the SQ thread"),
        "{}",
        p.verdict
    );
}
