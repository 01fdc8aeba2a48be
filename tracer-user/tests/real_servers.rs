//! The real-server tier: nginx, redis, Python's http.server, lighttpd,
//! memcached and Node.js — written without muxtrace in mind — under load, every figure
//! muxtrace reports checked against a witness that could contradict it:
//! `strace -c -f` over the same calls (and strace's calls written out
//! whole), what ab and our own redis and memcached clients received, nginx's
//! access log on disk, and the kernel's `/proc/PID/fdinfo` of each epoll
//! fd. Run as root, one at a time
//! (`cargo xtask test`); the servers start from `harness/servers/`.
//!
//! The window two tracers compare is made exact by freezing the server
//! (`harness::Frozen`, SIGSTOP) while both attach and again while both
//! detach: a stopped process makes no call and none of its threads is inside
//! one, so each tracer sees exactly the calls that entered and returned in
//! between, whatever it does at its own attach and detach — no tolerance is
//! needed. Without the freeze the counts differ by the calls in progress at
//! the edges: strace's attach and detach interrupt a blocked epoll_wait (it
//! returns EINTR), a return muxtrace counts when it saw the call's entry and
//! strace never counts; and redis's timer wakes it ten times a second, so
//! its calls also land between the two tracers' attaches.
mod common;

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use common::*;
use harness::{
    clients::{ab_request_bytes, run_ab, AbReport, MemcachedClient},
    muxtrace::{final_metrics, json_lines, process, JsonLine},
    procfs::{epoll_registrations, poll_until, the_epoll_set},
    strace::Counts,
    Frozen, Lighttpd, Memcached, Nginx, NginxOptions, Redis, Strace,
};
use tracer_common::SyscallKind;
use tracer_model::{IoModel, Metrics, ProcessMetrics, Window};

/// The file nginx serves: a few TCP segments, one sendfile call.
const BODY_BYTES: usize = 17_510;
/// ab's concurrency: connections open at once.
const CONCURRENCY: u64 = 50;
/// How long a load or a settling server may take on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(60);

fn nginx(sendfile: bool) -> Nginx {
    Nginx::start(NginxOptions {
        sendfile,
        body_bytes: BODY_BYTES,
    })
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn ab(url: &str, requests: u64) -> AbReport {
    let r = run_ab(url, requests, CONCURRENCY, Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        (r.complete, r.failed, r.non_2xx),
        (requests, 0, 0),
        "ab: {r:?}"
    );
    r
}

/// muxtrace `ARGS --json`, attached.
fn json_muxtrace(args: &[&str]) -> Proc {
    let mut all = args.to_vec();
    all.push("--json");
    muxtrace(&all)
}

/// Stops muxtrace (SIGINT) and returns every JSON line it wrote, the final
/// one last.
fn stop_muxtrace(mt: Proc) -> Vec<JsonLine> {
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}: {stdout}"));
    json_lines(&stdout).unwrap()
}

fn last(lines: &[JsonLine]) -> &Metrics {
    &lines.last().expect("a final line").metrics
}

fn proc_of(m: &Metrics, pid: u32) -> &ProcessMetrics {
    process(m, pid).unwrap_or_else(|e| panic!("{e:#}"))
}

/// `f` of the total window of each syscall of `kinds`, summed over every
/// process in `m` (the folded entries of exited ones included).
fn sum(m: &Metrics, kinds: impl Fn(SyscallKind) -> bool, f: impl Fn(&Window) -> u64) -> u64 {
    m.processes
        .iter()
        .flat_map(|p| &p.syscalls)
        .filter(|s| kinds(s.syscall))
        .map(|s| f(&s.total))
        .sum()
}

/// The same, over the processes `pids` only.
fn sum_over(
    m: &Metrics,
    pids: &[u32],
    kinds: impl Fn(SyscallKind) -> bool,
    f: impl Fn(&Window) -> u64,
) -> u64 {
    pids.iter()
        .flat_map(|&p| &proc_of(m, p).syscalls)
        .filter(|s| kinds(s.syscall))
        .map(|s| f(&s.total))
        .sum()
}

/// A process-wide figure of the since-attach window, summed over every
/// process (the payload by direction: what a client counts).
fn flow(m: &Metrics, f: impl Fn(&Window) -> u64) -> u64 {
    m.processes.iter().map(|p| f(&p.total)).sum()
}

/// The same, over the processes `pids` only.
fn flow_over(m: &Metrics, pids: &[u32], f: impl Fn(&Window) -> u64) -> u64 {
    pids.iter().map(|&p| f(&proc_of(m, p).total)).sum()
}

fn of(kind: SyscallKind) -> impl Fn(SyscallKind) -> bool {
    move |k| k == kind
}

/// The socket bytes sent are what ab received ("Total transferred"), and
/// those received what ab sent (`requests`' bytes).
fn assert_socket_bytes_are_ab_s(m: &Metrics, ab: &AbReport, requests: u64, table: &str) {
    assert_eq!(
        flow(m, |w| w.socket_sent_bytes),
        ab.total_transferred,
        "socket bytes sent vs ab: {ab:?}\n{table}"
    );
    assert_eq!(
        flow(m, |w| w.socket_received_bytes),
        requests,
        "socket bytes received\n{table}"
    );
}

/// Successful calls of `kind` over every process.
fn successes(m: &Metrics, kind: SyscallKind) -> u64 {
    sum(m, of(kind), |w| w.calls - w.errors)
}

/// Every syscall muxtrace traces: its (calls, errors) over all processes
/// beside strace's, and the rows that differ.
fn against_strace(m: &Metrics, strace: &BTreeMap<String, Counts>) -> (String, Vec<String>) {
    let mut table = format!("{:<12} {:>20} {:>20}\n", "syscall", "muxtrace", "strace -c");
    let mut differ = Vec::new();
    // strace names a syscall by its number: a kind split from another
    // (a splice that receives) is counted under the one it came from.
    for kind in SyscallKind::ALL
        .into_iter()
        .filter(|k| k.dispatched() == *k)
    {
        let under = |k: SyscallKind| k.dispatched() == kind;
        let mux = Counts {
            calls: sum(m, under, |w| w.calls),
            errors: sum(m, under, |w| w.errors),
        };
        let st = strace.get(kind.name()).copied().unwrap_or_default();
        if mux == Counts::default() && st == Counts::default() {
            continue;
        }
        let cell = |c: Counts| format!("{} ({} err)", c.calls, c.errors);
        table += &format!("{:<12} {:>20} {:>20}\n", kind.name(), cell(mux), cell(st));
        if mux != st {
            differ.push(kind.name().to_owned());
        }
    }
    let untraced: Vec<&str> = strace
        .keys()
        .filter(|k| SyscallKind::from_name(k).is_none())
        .map(String::as_str)
        .collect();
    table += &format!("(strace also counted, untraced by muxtrace: {untraced:?})\n");
    (table, differ)
}

/// The figures the README's table quotes, over the processes `pids`: per
/// wait call the fds watched and returned ready, the payload by class, and
/// traced calls per message received.
fn headline(m: &Metrics, pids: &[u32]) -> String {
    let waits = |f: fn(&Window) -> u64| sum_over(m, pids, SyscallKind::is_wait, f);
    let wait_calls = waits(|w| w.calls).max(1) as f64;
    let watched_max = pids
        .iter()
        .flat_map(|&p| &proc_of(m, p).syscalls)
        .filter(|s| s.syscall.is_wait())
        .map(|s| s.total.watched_max)
        .max()
        .unwrap_or(0);
    let calls: u64 = pids.iter().map(|&p| proc_of(m, p).total.calls).sum();
    let messages: u64 = pids
        .iter()
        .map(|&p| proc_of(m, p).total.receives_with_data)
        .sum();
    format!(
        "watched per wait {:.1} (max {watched_max}), ready per wait {:.2}, socket bytes sent {} \
         received {}, file bytes {}, zero-copy bytes {}, syscalls per message {:.2}",
        waits(|w| w.watched) as f64 / wait_calls,
        waits(|w| w.ready) as f64 / wait_calls,
        flow_over(m, pids, |w| w.socket_sent_bytes),
        flow_over(m, pids, |w| w.socket_received_bytes),
        sum_over(m, pids, |_| true, |w| w.payload_file_bytes),
        sum_over(m, pids, |_| true, |w| w.zero_copy_bytes),
        calls as f64 / messages.max(1) as f64,
    )
}

/// Waits until nginx's master waits for signals and its workers in epoll.
fn until_quiet(nginx: &Nginx) {
    poll_until("nginx quiet", SETTLE, || nginx.is_quiet().then_some(()))
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// What [`traced_window`] attaches beside muxtrace.
enum Beside {
    Nothing,
    /// strace -c: its table.
    StraceC,
    /// strace -C: its table and every call written out whole.
    StraceCalls,
}

/// What one traced window left.
struct Traced<B, L, E> {
    /// muxtrace's JSON lines, the final one last.
    lines: Vec<JsonLine>,
    /// strace's table, and all it wrote (with the calls under
    /// `Beside::StraceCalls`); empty with `Beside::Nothing`.
    strace: BTreeMap<String, Counts>,
    strace_text: String,
    /// What `at_start`, `load` and `at_end` returned.
    start: B,
    load: L,
    end: E,
}

impl<B, L, E> Traced<B, L, E> {
    fn metrics(&self) -> &Metrics {
        last(&self.lines)
    }
}

/// The window two witnesses compare, with nothing in flight at its edges:
/// freezes `pids`, runs `at_start`, attaches muxtrace (`ARGS --json`) and
/// strace (`Strace::attach` or `Strace::attach_verbose`); thaws; runs
/// `load` (given muxtrace); freezes again, detaches both, runs `at_end`;
/// thaws.
fn traced_window<B, L, E>(
    pids: &[u32],
    mux_args: &[&str],
    strace: Beside,
    at_start: impl FnOnce() -> B,
    load: impl FnOnce(&Proc) -> L,
    at_end: impl FnOnce() -> E,
) -> Traced<B, L, E> {
    let frozen = Frozen::new(pids).unwrap_or_else(|e| panic!("{e:#}"));
    let start = at_start();
    let mt = json_muxtrace(mux_args);
    let st = match strace {
        Beside::Nothing => None,
        Beside::StraceC => Some(Strace::attach(pids)),
        Beside::StraceCalls => Some(Strace::attach_verbose(pids)),
    }
    .map(|st| st.unwrap_or_else(|e| panic!("{e:#}")));
    frozen.thaw();
    let load = load(&mt);
    let frozen = Frozen::new(pids).unwrap_or_else(|e| panic!("{e:#}"));
    let lines = stop_muxtrace(mt);
    let (strace, strace_text) = st
        .map(|st| st.finish_verbose().unwrap_or_else(|e| panic!("{e:#}")))
        .unwrap_or_default();
    let end = at_end();
    frozen.thaw();
    Traced {
        lines,
        strace,
        strace_text,
        start,
        load,
        end,
    }
}

/// nginx's two logs at one moment.
struct Logs {
    access: String,
    error: String,
}

impl Logs {
    fn of(nginx: &Nginx) -> Logs {
        Logs {
            access: nginx.access_log(),
            error: nginx.error_log(),
        }
    }

    /// What was appended since `before` (both logs only grow).
    fn since(&self, before: &Logs) -> Logs {
        Logs {
            access: self.access[before.access.len()..].to_owned(),
            error: self.error[before.error.len()..].to_owned(),
        }
    }

    /// Requests served: one access log line each.
    fn requests(&self) -> u64 {
        self.access.lines().count() as u64
    }

    /// Connections closed before they sent a request, which nginx logs at
    /// info level.
    fn unused_connections(&self) -> u64 {
        self.error
            .lines()
            .filter(|l| l.contains("while waiting for request"))
            .count() as u64
    }

    /// Bytes of the error log's lines written by `pid` (`… [level] PID#TID: …`).
    fn error_bytes_of(&self, pid: u32) -> u64 {
        let tag = format!(" {pid}#{pid}: ");
        self.error
            .lines()
            .filter(|l| l.contains(&tag))
            .map(|l| l.len() as u64 + 1)
            .sum()
    }

    /// Everything nginx wrote to files.
    fn bytes(&self) -> u64 {
        (self.access.len() + self.error.len()) as u64
    }
}

/// nginx under ab with strace -c beside muxtrace: every count equal, and
/// the bytes equal what ab sent and received and what nginx logged.
fn nginx_against_strace_and_ab(sendfile: bool) {
    const REQUESTS: u64 = 2_000;
    let nginx = nginx(sendfile);
    let url = nginx.url();
    let request_bytes = ab_request_bytes(&url, SETTLE).unwrap_or_else(|e| panic!("{e:#}"));
    until_quiet(&nginx);
    let master = nginx.master_pid().to_string();
    let t = traced_window(
        &nginx.pids(),
        &["--follow", "--pid", &master, "--interval", "30s"],
        Beside::StraceC,
        || Logs::of(&nginx),
        |_| {
            let ab = ab(&url, REQUESTS);
            until_quiet(&nginx);
            ab
        },
        || Logs::of(&nginx),
    );
    let (m, ab, logs) = (t.metrics(), t.load, t.end.since(&t.start));
    let (table, differ) = against_strace(m, &t.strace);
    println!(
        "nginx, sendfile {sendfile}, {REQUESTS} requests at concurrency {CONCURRENCY} \
         ({:.0}/s under both tracers):\n{table}{}",
        ab.requests_per_sec,
        headline(m, &nginx.pids())
    );
    assert!(differ.is_empty(), "{differ:?} differ:\n{table}");
    for w in nginx.workers() {
        assert_eq!(proc_of(m, *w).model, IoModel::Epoll);
    }

    // Each request is one connection, accepted once and answered once; ab
    // also opens a few it never uses (see Logs::unused_connections).
    assert_eq!(logs.requests(), REQUESTS);
    assert_eq!(
        successes(m, SyscallKind::Accept4),
        REQUESTS + logs.unused_connections(),
        "{table}"
    );
    assert_eq!(sum(m, of(SyscallKind::Writev), |w| w.calls), REQUESTS);
    // Every byte ab received left nginx on a socket, every byte ab sent
    // arrived on one…
    assert_socket_bytes_are_ab_s(m, &ab, REQUESTS * request_bytes, &table);
    // …and what went to files is the logs' growth.
    let file = flow(m, |w| w.file_written_bytes);
    assert_eq!(file, logs.bytes(), "file bytes vs the logs");
    let zero_copy = sum(m, |_| true, |w| w.zero_copy_bytes);
    // Without sendfile each body is read into nginx (pread64) and written
    // back out (writev): copied twice; with it, never.
    let file_read = flow(m, |w| w.file_read_bytes);
    if sendfile {
        assert_eq!(file_read, 0, "{table}");
    } else {
        assert_eq!(file_read, REQUESTS * BODY_BYTES as u64, "{table}");
        assert_eq!(sum(m, of(SyscallKind::Pread64), |w| w.calls), REQUESTS);
    }
    if sendfile {
        // The bodies, and only they, never crossed user space.
        assert_eq!(ab.html_transferred, REQUESTS * BODY_BYTES as u64);
        assert_eq!(zero_copy, ab.html_transferred, "{ab:?}");
        let by_sendfile = sum(m, of(SyscallKind::Sendfile), |w| w.payload_socket_bytes);
        assert_eq!(by_sendfile, ab.html_transferred);
    } else {
        assert_eq!(zero_copy, 0);
        assert_eq!(sum(m, of(SyscallKind::Sendfile), |w| w.calls), 0);
    }
    assert_eq!(our_losses(&m.losses), [], "{:?}", m.losses);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn nginx_writev_counts_equal_strace_and_bytes_equal_what_ab_received() {
    nginx_against_strace_and_ab(false);
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn nginx_sendfile_counts_equal_strace_and_zero_copy_bytes_are_the_bodies() {
    nginx_against_strace_and_ab(true);
}

/// A thread's time on a CPU and waiting for one, ns, as the scheduler
/// counts it (`/proc/PID/task/TID/schedstat`).
fn cpu_and_queue_ns(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/schedstat"))
        .unwrap_or_else(|e| panic!("schedstat of {pid}: {e}"));
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    fields.next().unwrap() + fields.next().unwrap()
}

/// nginx idle in `epoll_wait(-1)` before and after a burst: a worker's busy
/// share over the run is at most its time on and queued for a CPU over the
/// time traced, as the scheduler counted it (over a slightly longer span) —
/// not the burst's own share, which the waits in progress at attach and at
/// the end, never completed calls, would leave if they were not counted as
/// waiting.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn nginx_idle_around_a_burst_is_busy_no_more_than_the_scheduler_says() {
    let nginx = nginx(false);
    let url = nginx.url();
    until_quiet(&nginx);
    let workers = nginx.workers().to_vec();
    let pid_args: Vec<String> = workers.iter().map(u32::to_string).collect();
    let mut args: Vec<&str> = Vec::new();
    for pid in &pid_args {
        args.extend(["--pid", pid]);
    }
    args.extend(["--interval", "30s"]);
    let scheduler = || -> Vec<u64> { workers.iter().map(|w| cpu_and_queue_ns(*w)).collect() };
    // Not frozen at the edges (see traced_window): a stop ends the wait in
    // progress, and these waits are to be in progress.
    let before = scheduler();
    let mt = json_muxtrace(&args);
    thread::sleep(Duration::from_secs(2));
    ab(&url, 2_000);
    until_quiet(&nginx);
    thread::sleep(Duration::from_secs(2));
    let lines = stop_muxtrace(mt);
    let after = scheduler();
    let m = last(&lines);
    for (i, w) in workers.iter().enumerate() {
        let p = proc_of(m, *w);
        let busy = p
            .loop_busy_share_since_attach
            .unwrap_or_else(|| panic!("worker {w} has a loop: {p:?}"));
        let scheduled = (after[i] - before[i]) as f64 / 1e9 / p.total.seconds;
        println!(
            "nginx worker {w}: busy {:.2} % over {:.1} s traced; on or queued for a CPU {:.2} %",
            busy * 100.0,
            p.total.seconds,
            scheduled * 100.0
        );
        assert!(p.total.iterations > 0 && busy > 0.0, "{p:?}");
        assert!(
            busy <= scheduled + 0.01,
            "worker {w}: busy {busy:.4} over the run, on or queued for a CPU {scheduled:.4}"
        );
    }
}

/// The `tfd:` lines of each pid's one epoll fd, sampled until `stop`: the
/// fewest and most seen per pid.
fn sample_interest_sets(
    pids: Vec<u32>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<(u64, u64)>> {
    thread::spawn(move || {
        let epfds: Vec<u32> = pids.iter().map(|&p| the_epoll_set(p).unwrap().0).collect();
        let mut seen = vec![(u64::MAX, 0); pids.len()];
        while !stop.load(Ordering::Relaxed) {
            for (i, (&pid, &epfd)) in pids.iter().zip(&epfds).enumerate() {
                if let Ok(n) = epoll_registrations(pid, epfd) {
                    seen[i] = (seen[i].0.min(n), seen[i].1.max(n));
                }
            }
            thread::sleep(Duration::from_millis(1));
        }
        seen
    })
}

/// How many JSON lines muxtrace has written so far.
fn lines_so_far(mt: &Proc) -> usize {
    mt.lines(harness::Stream::Stdout).len()
}

/// Waits until muxtrace has written `n` lines.
fn wait_lines(mt: &Proc, n: usize) {
    eventually(&format!("{n} JSON lines"), SETTLE, || {
        (lines_so_far(mt) >= n).then_some(())
    });
}

fn epoll_wait_interval(p: &ProcessMetrics) -> Option<&Window> {
    p.syscalls
        .iter()
        .find(|s| s.syscall == SyscallKind::EpollWait)
        .map(|s| &s.interval)
}

/// `--pid` of nginx's master alone: the master sleeps in rt_sigsuspend,
/// which muxtrace does not measure, and its workers serve. The master's
/// entry names the workers as its untraced children, as /proc lists them,
/// and says `--follow` traces them.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn nginx_s_master_alone_names_its_untraced_workers() {
    let nginx = nginx(false);
    let master = nginx.master_pid();
    until_quiet(&nginx);
    let mt = muxtrace(&[
        "--pid",
        &master.to_string(),
        "--json",
        "--interval",
        "500ms",
        "--duration",
        "2s",
    ]);
    // The workers serve; the master makes none of the calls measured.
    ab(&nginx.url(), 200);
    let (stdout, _) = finish_ok(mt);
    let m = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(m.processes.len(), 1, "{stdout}");
    let p = proc_of(&m, master);
    assert_eq!(p.total.calls, 0, "{p:#?}");
    // The title nginx gave its master, as ps shows it.
    assert!(
        p.title
            .as_deref()
            .is_some_and(|t| t.starts_with("nginx: master process")),
        "{:?}",
        p.title
    );
    let mut workers = nginx.workers().to_vec();
    workers.sort_unstable();
    assert_eq!(p.untraced_children, workers.len() as u64, "{p:#?}");
    assert_eq!(p.untraced_child_pids, workers, "{p:#?}");
    let named = workers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        p.verdict.ends_with(&format!(
            "its {} child processes ({named}) are not traced: --follow traces them",
            workers.len()
        )),
        "{}",
        p.verdict
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn nginx_after_20000_connections_interest_sets_equal_fdinfo_and_follow_takes_the_workers() {
    const REQUESTS: u64 = 20_000;
    // Each worker registers 3 fds of its own in its epoll set: the
    // listening socket, its channel socket to the master and an eventfd.
    // Each connection it holds adds one.
    const OWN: u64 = 3;
    let nginx = nginx(false);
    let workers = nginx.workers().to_vec();
    let master = nginx.master_pid();
    until_quiet(&nginx);
    let mut quiet_from = 0;
    let mut load_s = 0.0;
    // --follow on the master takes the workers that exist at attach.
    let t = traced_window(
        &nginx.pids(),
        &[
            "--follow",
            "--pid",
            &master.to_string(),
            "--interval",
            "500ms",
        ],
        Beside::Nothing,
        || Logs::of(&nginx),
        |mt| {
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = sample_interest_sets(workers.clone(), Arc::clone(&stop));
            let started = Instant::now();
            let ab = ab(&nginx.url(), REQUESTS);
            load_s = started.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            let sampled = sampler.join().unwrap();
            until_quiet(&nginx);
            // The intervals from here on start after the load has ended.
            quiet_from = lines_so_far(mt) + 1;
            wait_lines(mt, quiet_from + 1);
            // The master passes SIGUSR1 (reopen the logs) to each worker
            // over its channel socket: a wait that returns one ready fd
            // with nothing but the worker's own fds registered. The freeze
            // that ends the window returns each worker's next wait with
            // EINTR: a second such wait.
            let before = nginx.error_log().len();
            nginx.signal_master(libc::SIGUSR1);
            // Each worker's own line ("PID#TID: reopening logs"); the
            // master writes two (the signal's and its own), so a count of
            // matches could be reached while a worker had not yet read its
            // channel message.
            poll_until("every worker reopened its logs", SETTLE, || {
                let log = nginx.error_log();
                let since = &log[before..];
                let all = workers.iter().all(|w| {
                    since
                        .lines()
                        .any(|l| l.contains(&format!(" {w}#")) && l.ends_with("reopening logs"))
                });
                (all && nginx.is_quiet()).then_some(())
            })
            .unwrap_or_else(|e| panic!("{e:#}"));
            (ab, sampled)
        },
        || {
            let sets: Vec<(u32, u64)> = workers
                .iter()
                .map(|&w| the_epoll_set(w).unwrap_or_else(|e| panic!("{e:#}")))
                .collect();
            (Logs::of(&nginx), sets)
        },
    );
    let m = t.metrics();
    let (ab, sampled) = &t.load;
    let logs = t.end.0.since(&t.start);
    let lines = &t.lines;

    let mut report = format!(
        "{REQUESTS} requests at concurrency {CONCURRENCY} in {load_s:.1} s ({:.0}/s)\n",
        ab.requests_per_sec
    );
    for (i, &w) in workers.iter().enumerate() {
        let (epfd, registered) = t.end.1[i];
        assert_eq!(registered, OWN, "worker {w}: fdinfo after the load");
        let p = proc_of(m, w);
        assert!(p.alive && p.model == IoModel::Epoll, "{p:#?}");
        assert_eq!(p.title.as_deref(), Some("nginx: worker process"));
        // The interest set muxtrace read from fdinfo at its last reading.
        assert_eq!(
            p.epoll_interest.get(&epfd),
            Some(&registered),
            "worker {w}: {:?}",
            p.epoll_interest
        );
        // Each wait's own figure, read from the kernel's eventpoll at the
        // call: after the load, every one watched exactly the set.
        let mut quiet_waits = 0;
        for line in &lines[quiet_from..] {
            let Some(win) = epoll_wait_interval(proc_of(&line.metrics, w)) else {
                continue;
            };
            if win.calls > 0 {
                assert_eq!(
                    (win.watched_min, win.watched_max),
                    (registered, registered),
                    "worker {w}, interval at {} s: {win:?}",
                    line.metrics.elapsed_s
                );
                quiet_waits += win.calls;
            }
        }
        // The reopen's wait returned before the worker reopened its logs; the
        // freeze's EINTR return may land after muxtrace's last reading.
        assert!(
            quiet_waits >= 1,
            "worker {w}: {quiet_waits} waits after the load"
        );
        // Under load: never fewer than its own fds, never more than those
        // and every connection ab held open at once — a worker serves a
        // connection to its close before it waits again, so at a wait's
        // entry each connection it holds is one ab still has open. (The
        // first interval's minimums are wrong, 0, for a reason of their
        // own, pinned by
        // minimums_of_the_total_and_first_interval_are_measured_not_zero.)
        for line in &lines[1..] {
            if let Some(win) = epoll_wait_interval(proc_of(&line.metrics, w)) {
                if win.calls > 0 {
                    assert!(
                        win.watched_min >= OWN && win.watched_max <= OWN + CONCURRENCY,
                        "worker {w}: {win:?}"
                    );
                }
            }
        }
        let total = harness::muxtrace::total(p, SyscallKind::EpollWait).unwrap();
        let (fewest, most) = sampled[i];
        assert!(
            total.watched_max > OWN && total.watched_max <= OWN + CONCURRENCY,
            "worker {w}: watched_max {} (fdinfo sampled {fewest}..={most})",
            total.watched_max
        );
        assert!(total.ready_max <= total.watched_max, "{total:?}");
        // fdinfo read between two calls can see a connection the worker is
        // about to close after ab has closed its end: one more at most.
        assert!(
            fewest >= OWN && most <= OWN + CONCURRENCY + 1,
            "worker {w}: fdinfo sampled {fewest}..={most}"
        );
        report += &format!(
            "worker {w}: epoll_wait {} calls, watched avg {:.1} max {} (fdinfo sampled \
             under load {fewest}..={most}), ready avg {:.2} max {}; after: fdinfo {registered}, \
             muxtrace {:?}\n",
            total.calls,
            total.watched_avg,
            total.watched_max,
            total.ready_avg,
            total.ready_max,
            p.epoll_interest
        );
    }
    println!("{report}{}", headline(m, &nginx.pids()));
    // --follow traces every child: none is left to hint at.
    for p in &m.processes {
        assert_eq!(p.untraced_children, 0, "{p:#?}");
    }

    // The workers existed before attach: --follow counted all their calls.
    assert_eq!(logs.requests(), REQUESTS);
    let accepted: u64 = workers
        .iter()
        .map(|&w| {
            harness::muxtrace::total(proc_of(m, w), SyscallKind::Accept4)
                .map_or(0, |a| a.calls - a.errors)
        })
        .sum();
    assert_eq!(
        accepted,
        REQUESTS + logs.unused_connections(),
        "accepts by the workers\n{report}"
    );
    assert_eq!(successes(m, SyscallKind::Accept4), accepted);
    assert_eq!(sum(m, of(SyscallKind::Writev), |w| w.calls), REQUESTS);
    // What ab received, the workers sent (the master's channel messages
    // are socket bytes too: see below).
    assert_eq!(
        sum_over(m, &workers, SyscallKind::sends_payload, |w| w
            .payload_socket_bytes),
        ab.total_transferred
    );
    let workers_file = sum_over(m, &workers, SyscallKind::sends_payload, |w| {
        w.payload_file_bytes
    });
    let workers_logged: u64 = workers.iter().map(|&w| logs.error_bytes_of(w)).sum();
    assert_eq!(
        workers_file,
        logs.access.len() as u64 + workers_logged,
        "the workers' file bytes vs their log lines"
    );

    // The master made a handful of calls: one 32-byte channel message per
    // worker and its own log lines, nothing it waits on. A controller, not
    // a blocking server.
    let mp = proc_of(m, master);
    let send = harness::muxtrace::total(mp, SyscallKind::Sendmsg)
        .unwrap_or_else(|| panic!("no sendmsg by the master: {mp:#?}"));
    assert_eq!(send.calls, Nginx::WORKERS as u64, "{mp:#?}");
    assert_eq!(send.payload_socket_bytes, 32 * Nginx::WORKERS as u64);
    let write = harness::muxtrace::total(mp, SyscallKind::Write)
        .unwrap_or_else(|| panic!("no write by the master: {mp:#?}"));
    assert_eq!(write.payload_file_bytes, logs.error_bytes_of(master));
    assert_eq!(mp.total.calls, send.calls + write.calls, "{mp:#?}");
    assert_eq!(mp.model, IoModel::Idle, "{mp:#?}");
    for &w in &workers {
        let recv = harness::muxtrace::total(proc_of(m, w), SyscallKind::Recvmsg).unwrap();
        assert_eq!(recv.payload_socket_bytes, 32, "worker {w}: {recv:?}");
    }
    assert_eq!(our_losses(&m.losses), [], "{:?}", m.losses);
}

/// Raises this process's open-file limit to its hard limit: the redis tests
/// hold 2,000 connections.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(lim.rlim_cur >= 4_096, "open-file limit {}", lim.rlim_cur);
}

fn redis() -> Redis {
    Redis::start(None).unwrap_or_else(|e| panic!("{e:#}"))
}

/// redis alone on CPU 1, one redis-benchmark client on CPU 0 beside
/// muxtrace: its main thread's iterations, the on-CPU part of its waits
/// and its run-queue delays add up to its CPU time as the scheduler counts
/// it (the README's "Against `top`"; on-CPU alone read 21–23 % below).
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn redis_on_cpu_time_and_run_queue_delay_are_the_scheduler_s_cpu_time() {
    let redis = Redis::start(Some(1)).unwrap_or_else(|e| panic!("{e:#}"));
    let pid = redis.pid();
    let before = scheduler_cpu_ns(pid);
    let mt = json_muxtrace(&["--pid", &pid.to_string(), "--interval", "30s"]);
    pin_to_cpu(mt.pid(), 0);
    harness::clients::run_redis_benchmark(redis.port(), "ping,set,get", 20_000, 1, Some(0), LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // redis back in its wait: only its 10 timer wakeups a second from here.
    thread::sleep(Duration::from_millis(300));
    let lines = stop_muxtrace(mt);
    let after = scheduler_cpu_ns(pid);
    let p = proc_of(last(&lines), pid);
    assert!(
        p.total.iterations >= 60_000,
        "an iteration a request: {:?}",
        p.total.iterations
    );
    assert_cpu_adds_up(p, after - before);
}

/// How a test pauses a process for a while.
#[derive(Debug, Clone, Copy)]
enum Pause {
    /// SIGSTOP, then SIGCONT.
    Signal,
    /// cgroup v2's freezer (`cgroup.freeze`, what `docker pause` writes on
    /// a cgroup v2 host): the tasks sleep in its trap.
    CgroupV2,
    /// cgroup v1's (`freezer.state`): the tasks are put in the
    /// refrigerator, TASK_FROZEN.
    CgroupV1,
}

/// Pauses `pid` as `how` says for `length` and lets it go on: when it was
/// seen paused and when it was let go.
fn pause(pid: u32, how: Pause, length: Duration) -> (Instant, Instant) {
    let write = |path: &std::path::Path, what: &str| {
        std::fs::write(path, what).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    let until = |what: &str, done: &dyn Fn() -> bool| {
        poll_until(what, SETTLE, || done().then_some(())).unwrap_or_else(|e| panic!("{e:#}"))
    };
    // The hierarchy's root, and a cgroup of the test's own below it.
    let cgroup = |root: PathBuf| {
        let dir = root.join(format!("muxtrace-pause-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        write(&dir.join("cgroup.procs"), &pid.to_string());
        (root, dir)
    };
    let leave = |(root, dir): (PathBuf, PathBuf)| {
        write(&root.join("cgroup.procs"), &pid.to_string());
        let _ = std::fs::remove_dir(&dir);
    };
    let paused = |(state, want): (&std::path::Path, &str)| read(state).contains(want);
    match how {
        Pause::Signal => {
            // SAFETY: signals to the process this test started, by pid.
            unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
            until("stopped", &|| {
                let stat = read(std::path::Path::new(&format!("/proc/{pid}/stat")));
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('T'))
            });
            let from = Instant::now();
            thread::sleep(length);
            let to = Instant::now();
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGCONT) };
            (from, to)
        }
        Pause::CgroupV2 | Pause::CgroupV1 => {
            let v2 = matches!(how, Pause::CgroupV2);
            let root = if v2 {
                cgroup2_mount()
            } else {
                PathBuf::from("/sys/fs/cgroup/freezer")
            };
            let (root, dir) = cgroup(root);
            let (control, freeze, thaw, state, frozen) = if v2 {
                ("cgroup.freeze", "1", "0", "cgroup.events", "frozen 1")
            } else {
                (
                    "freezer.state",
                    "FROZEN",
                    "THAWED",
                    "freezer.state",
                    "FROZEN",
                )
            };
            write(&dir.join(control), freeze);
            until("frozen", &|| paused((&dir.join(state), frozen)));
            let from = Instant::now();
            thread::sleep(length);
            let to = Instant::now();
            write(&dir.join(control), thaw);
            until("thawed", &|| !paused((&dir.join(state), frozen)));
            leave((root, dir));
            (from, to)
        }
    }
}

/// redis idle (its timer wakes it 10 times a second) paused for 1.5 s as
/// `how` says: time paused is neither waiting nor busy. The intervals it
/// spans read no busy share (they read 100 %), none reads more than the
/// idle loop's, the pause is no stall (it read one of 1.5 s), and the
/// main thread's time stopped is the pause the test made.
fn redis_paused_is_neither_busy_nor_waiting(how: Pause) {
    const PAUSE: Duration = Duration::from_millis(1500);
    let redis = redis();
    let pid = redis.pid();
    let mt = json_muxtrace(&["--pid", &pid.to_string(), "--interval", "250ms"]);
    thread::sleep(Duration::from_millis(1000));
    let sent = Instant::now();
    let (paused, resumed) = pause(pid, how, PAUSE);
    thread::sleep(Duration::from_millis(1000));
    let lines = stop_muxtrace(mt);
    let main = |m: &Metrics| {
        proc_of(m, pid)
            .threads
            .iter()
            .find(|t| t.tid == pid)
            .cloned()
            .expect("redis's main thread")
    };
    let shares: Vec<Option<f64>> = lines
        .iter()
        .filter(|l| l.kind == harness::LineKind::Interval)
        .map(|l| main(&l.metrics).loop_busy_share)
        .collect();
    println!("redis paused by {how:?}, its main thread's busy share per 250 ms: {shares:?}");
    // At least four intervals lie wholly inside the 1.5 s pause.
    assert!(
        shares.iter().filter(|s| s.is_none()).count() >= 4,
        "{shares:?}"
    );
    let busiest = shares.iter().flatten().copied().fold(0.0, f64::max);
    assert!(
        busiest < 0.2,
        "an idle redis read {busiest} busy: {shares:?}"
    );
    let p = proc_of(last(&lines), pid);
    assert_eq!(p.total.stalls, 0, "{:?}", p.total);
    assert!(p.total.iteration_max_ns < 50_000_000, "{:?}", p.total);
    let stopped_ns = main(last(&lines)).stopped_ns;
    let at_least = resumed.duration_since(paused).as_nanos() as u64;
    let at_most = Instant::now().duration_since(sent).as_nanos() as u64;
    assert!(
        (at_least..=at_most).contains(&stopped_ns),
        "stopped {stopped_ns} ns, the test paused it {at_least}..={at_most}"
    );
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn redis_stopped_is_neither_busy_nor_waiting() {
    redis_paused_is_neither_busy_nor_waiting(Pause::Signal);
}

/// The same frozen by its cgroup, as `docker pause` does: cgroup v2's
/// freezer, and v1's where the host mounts it (this one, hybrid, does).
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn redis_frozen_by_its_cgroup_is_neither_busy_nor_waiting() {
    redis_paused_is_neither_busy_nor_waiting(Pause::CgroupV2);
    if std::path::Path::new("/sys/fs/cgroup/freezer/freezer.state").exists()
        || std::path::Path::new("/sys/fs/cgroup/freezer/tasks").exists()
    {
        redis_paused_is_neither_busy_nor_waiting(Pause::CgroupV1);
    } else {
        println!("no cgroup v1 freezer mounted: v2's alone");
    }
}

/// Waits until redis's epoll set holds `n` fds, as fdinfo lists them.
fn until_registered(pid: u32, epfd: u32, n: u64) {
    let mut last = None;
    poll_until(&format!("{n} fds in redis's epoll set"), SETTLE, || {
        last = epoll_registrations(pid, epfd).ok();
        (last == Some(n)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#} (fdinfo last listed {last:?})"));
}

/// Checks one phase: redis's set holds `expected` fds, and muxtrace says so
/// both ways — each epoll_wait of a whole interval after the set settled
/// watched exactly that many, and the interest set read at that interval.
fn check_phase(mt: &Proc, pid: u32, epfd: u32, expected: u64, phase: &str) -> String {
    // Lines written so far: the next one may cover time before the set
    // settled, and the one after may hold a wait entered before it (redis
    // sleeps at most 1/hz = 100 ms, less than an interval): the third is
    // wholly after.
    let n = lines_so_far(mt) + 3;
    wait_lines(mt, n);
    let line: JsonLine = mt.lines(harness::Stream::Stdout)[n - 1].parse().unwrap();
    let p = proc_of(&line.metrics, pid);
    let w = epoll_wait_interval(p).unwrap_or_else(|| panic!("{phase}: no epoll_wait: {p:#?}"));
    let now = epoll_registrations(pid, epfd).unwrap();
    assert_eq!(now, expected, "{phase}: fdinfo");
    assert!(
        w.calls >= 2,
        "{phase}: redis waits hz = 10 times a second: {w:?}"
    );
    assert_eq!(
        (w.watched_min, w.watched_max),
        (expected, expected),
        "{phase}: watched per wait: {w:?}"
    );
    assert_eq!(
        p.epoll_interest.get(&epfd),
        Some(&expected),
        "{phase}: {:?}",
        p.epoll_interest
    );
    format!(
        "{phase}: fdinfo {now}, muxtrace epoll_interest {:?}, {} waits watched {}..={}\n",
        p.epoll_interest, w.calls, w.watched_min, w.watched_max
    )
}

/// Opens `n` idle connections to redis in batches, each accepted (redis's
/// epoll set, `registered` fds before, grown by it) before the next: a
/// burst beyond the listen backlog can lose a connection for good — the
/// client's last handshake ACK is dropped while the accept queue is full,
/// and an idle client sends nothing that would retry it.
fn connect_idle(port: u16, n: usize, pid: u32, epfd: u32, registered: u64) -> Vec<TcpStream> {
    const BATCH: usize = 100;
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let batch = BATCH.min(n - clients.len());
        clients.extend(
            (0..batch).map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect to redis")),
        );
        until_registered(pid, epfd, registered + clients.len() as u64);
    }
    clients
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn redis_interest_set_follows_1000_idle_clients_before_and_1000_after_attach() {
    const CLIENTS: usize = 1_000;
    raise_nofile();
    let redis = redis();
    let pid = redis.pid();
    let (epfd, own) = the_epoll_set(pid).unwrap_or_else(|e| panic!("{e:#}"));
    let mut clients = connect_idle(redis.port(), CLIENTS, pid, epfd, own);
    until_registered(pid, epfd, own + CLIENTS as u64);
    let mt = json_muxtrace(&["--pid", &pid.to_string(), "--interval", "500ms"]);
    let mut report = check_phase(&mt, pid, epfd, own + CLIENTS as u64, "1,000 before attach");
    clients.extend(connect_idle(
        redis.port(),
        CLIENTS,
        pid,
        epfd,
        own + CLIENTS as u64,
    ));
    until_registered(pid, epfd, own + 2 * CLIENTS as u64);
    report += &check_phase(&mt, pid, epfd, own + 2 * CLIENTS as u64, "and 1,000 after");
    drop(clients);
    until_registered(pid, epfd, own);
    report += &check_phase(&mt, pid, epfd, own, "all closed");
    println!("{report}");
    let lines = stop_muxtrace(mt);
    let m = last(&lines);
    assert_eq!(
        successes(m, SyscallKind::Accept4),
        CLIENTS as u64,
        "{report}"
    );
    assert_eq!(our_losses(&m.losses), [], "{:?}", m.losses);
}

/// A RESP client that counts every byte it sends and receives.
struct RespClient {
    stream: TcpStream,
    sent: u64,
    received: u64,
}

impl RespClient {
    fn connect(port: u16) -> RespClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        RespClient {
            stream,
            sent: 0,
            received: 0,
        }
    }

    fn command(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).as_bytes());
            out.extend(*a);
            out.extend(b"\r\n");
        }
        self.stream.write_all(&out).unwrap();
        self.sent += out.len() as u64;
    }

    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf).unwrap();
        self.received += n as u64;
        buf
    }

    fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            line.extend(self.read_exact(1));
        }
        line
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.command(&[b"SET", key, value]);
        assert_eq!(self.line(), b"+OK\r\n");
    }

    fn get(&mut self, key: &[u8]) -> Vec<u8> {
        self.command(&[b"GET", key]);
        let head = self.line();
        let len: usize = std::str::from_utf8(&head[1..head.len() - 2])
            .unwrap()
            .parse()
            .unwrap();
        let value = self.read_exact(len);
        assert_eq!(self.read_exact(2), b"\r\n");
        value
    }
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn redis_100kb_values_counts_equal_strace_and_socket_bytes_equal_what_the_client_got() {
    const VALUE: usize = 100 * 1024;
    const KEYS: usize = 10;
    const GETS: usize = 200;
    // Registered and silent throughout: epoll never looks at them.
    const IDLE: usize = 1_000;
    raise_nofile();
    let redis = redis();
    let pid = redis.pid();
    let port = redis.port();
    let (epfd, mut own) = the_epoll_set(pid).unwrap_or_else(|e| panic!("{e:#}"));
    let idle = connect_idle(port, IDLE, pid, epfd, own);
    own += IDLE as u64;
    until_registered(pid, epfd, own);
    let t = traced_window(
        &[pid],
        &["--pid", &pid.to_string(), "--interval", "30s"],
        Beside::StraceC,
        || (),
        |_| {
            let mut clients = [RespClient::connect(port), RespClient::connect(port)];
            for k in 0..KEYS {
                let value: Vec<u8> = (0..VALUE).map(|i| b'a' + ((i + k) % 26) as u8).collect();
                clients[k % 2].set(format!("key:{k}").as_bytes(), &value);
            }
            for g in 0..GETS {
                let k = g % KEYS;
                let value = clients[g % 2].get(format!("key:{k}").as_bytes());
                assert_eq!(value.len(), VALUE);
                assert_eq!(value[0], b'a' + (k % 26) as u8);
            }
            let sent = clients.iter().map(|c| c.sent).sum::<u64>();
            let received = clients.iter().map(|c| c.received).sum::<u64>();
            drop(clients);
            // Both connections closed and unregistered: redis has read
            // every byte and written every reply.
            until_registered(pid, epfd, own);
            (sent, received)
        },
        || (),
    );
    let (m, (sent, received)) = (t.metrics(), t.load);
    let (table, differ) = against_strace(m, &t.strace);
    println!(
        "redis, {KEYS} SETs and {GETS} GETs of {VALUE}-byte values on 2 connections, \
         {IDLE} idle ones:\n{table}client sent {sent} B, received {received} B\n{}",
        headline(m, &[pid])
    );
    assert!(differ.is_empty(), "{differ:?} differ:\n{table}");
    let p = proc_of(m, pid);
    assert_eq!(p.model, IoModel::Epoll);
    assert_eq!(successes(m, SyscallKind::Accept4), 2);
    assert_eq!(
        flow(m, |w| w.socket_sent_bytes),
        received,
        "socket bytes redis sent vs what the client received\n{table}"
    );
    assert_eq!(
        flow(m, |w| w.socket_received_bytes),
        sent,
        "socket bytes redis received vs what the client sent\n{table}"
    );
    assert_eq!(sum(m, |_| true, |w| w.zero_copy_bytes), 0);
    // Every wait watched the idle connections too.
    let waits = harness::muxtrace::total(p, SyscallKind::EpollWait).unwrap();
    assert!(waits.watched_max >= own, "{waits:?}");
    assert_eq!(our_losses(&m.losses), [], "{:?}", m.losses);
    drop(idle);
}

/// Bug: the `_min` of every `total` window, and of the first interval's,
/// is 0 however large every call was. New (tgid, syscall) aggregates are
/// inserted from ZERO_STATS, whose `Range`s are all-zero ({min 0, max 0}, a
/// range holding 0) rather than `Range::EMPTY`, and a per-CPU map insert
/// zero-fills the other CPUs' copies the same way; `extend` can never raise
/// a min of 0, and the first interval is epoch 0, which those zeroed epoch
/// slots claim.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn minimums_of_the_total_and_first_interval_are_measured_not_zero() {
    let redis = redis();
    let pid = redis.pid();
    let (_, registered) = the_epoll_set(pid).unwrap_or_else(|e| panic!("{e:#}"));
    let mt = json_muxtrace(&["--pid", &pid.to_string(), "--interval", "500ms"]);
    wait_lines(&mt, 3);
    let lines = stop_muxtrace(mt);
    // redis's timer wakes it 10 times a second; each wait watches its set,
    // unchanged throughout, and takes a few µs at least.
    let first = epoll_wait_interval(proc_of(&lines[0].metrics, pid)).expect("waits in 500 ms");
    let total =
        harness::muxtrace::total(proc_of(last(&lines), pid), SyscallKind::EpollWait).unwrap();
    let second = epoll_wait_interval(proc_of(&lines[1].metrics, pid)).unwrap();
    assert_eq!(
        (second.watched_min, second.watched_max),
        (registered, registered),
        "the second interval: {second:?}"
    );
    assert!(second.wall_min_ns > 0, "{second:?}");
    let found = [
        ("total watched_min", total.watched_min, registered),
        ("total wall_min_ns > 0", u64::from(total.wall_min_ns > 0), 1),
        ("first interval watched_min", first.watched_min, registered),
        (
            "first interval wall_min_ns > 0",
            u64::from(first.wall_min_ns > 0),
            1,
        ),
    ];
    let wrong: Vec<_> = found.iter().filter(|(_, got, want)| got != want).collect();
    assert!(
        wrong.is_empty(),
        "(figure, muxtrace, truth): {wrong:?}\ntotal: {total:?}\nfirst interval: {first:?}"
    );
}

/// Python's `http.server` (the standard library's ThreadingHTTPServer) is
/// built unlike nginx and redis: one thread polls the listening socket
/// (`poll`, one fd, 0.5 s timeout) and every connection gets a thread of
/// its own that reads and writes blocking, then exits. muxtrace must count
/// the calls of 500 threads that each live for one request as strace does,
/// and the bytes must be what ab received, the file's bodies and the
/// server's own log lines.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn python_http_server_thread_per_request_counts_equal_strace_and_bytes_equal_what_ab_got() {
    const REQUESTS: u64 = 500;
    // Its listen backlog (socketserver's request_queue_size): ab's 50 at
    // once overflowed it, and each dropped SYN waited a second to retry.
    const PY_CONCURRENCY: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..BODY_BYTES).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("index.bin"), &body).unwrap();
    let port = harness::servers::free_port().unwrap().to_string();
    let server = Proc::spawn(Command::new("python3").args([
        "-m",
        "http.server",
        &port,
        "--bind",
        "127.0.0.1",
        "--directory",
        &dir.path().to_string_lossy(),
    ]))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let pid = server.pid();
    let url = format!("http://127.0.0.1:{port}/index.bin");
    poll_until("python's http.server listening", SETTLE, || {
        TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).ok()
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let request_bytes = ab_request_bytes(&url, SETTLE).unwrap_or_else(|e| panic!("{e:#}"));
    // Only the polling thread left: no connection is in flight.
    let one_thread = || {
        poll_until("the handler threads' exit", SETTLE, || {
            (harness::procfs::threads(pid).len() == 1).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e:#}"))
    };
    one_thread();
    let logged = || server.lines(harness::Stream::Stderr);
    let t = traced_window(
        &[pid],
        &["--pid", &pid.to_string(), "--interval", "30s"],
        Beside::StraceC,
        || logged().len(),
        |_| {
            // The poll frozen at the window's start resumes as
            // restart_syscall, which neither tracer counts as a poll
            // (muxtrace counts a resumption of a poll it saw cut short):
            // let it time out before a connection could make it return
            // ready.
            thread::sleep(Duration::from_millis(700));
            let ab = run_ab(&url, REQUESTS, PY_CONCURRENCY, Duration::from_secs(180))
                .unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(
                (ab.complete, ab.failed, ab.non_2xx),
                (REQUESTS, 0, 0),
                "{ab:?}"
            );
            one_thread();
            ab
        },
        || (),
    );
    let (m, ab) = (t.metrics(), t.load);
    // A line on stderr for each request, one write each (stderr is line
    // buffered); read here, after the window, as the reader thread may lag.
    let lines = poll_until("a log line per request", SETTLE, || {
        let all = logged();
        (all.len() as u64 >= t.start as u64 + REQUESTS).then(|| all[t.start..].to_vec())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let (table, differ) = against_strace(m, &t.strace);
    println!(
        "python3 -m http.server, {REQUESTS} requests at concurrency {PY_CONCURRENCY} \
         ({:.0}/s under both tracers):\n{table}{}",
        ab.requests_per_sec,
        headline(m, &[pid])
    );
    assert!(differ.is_empty(), "{differ:?} differ:\n{table}");
    let p = proc_of(m, pid);
    assert_eq!(p.model, IoModel::Poll);
    // The handler threads are gone, each with its calls: the polling thread
    // and the exited ones hold every call the process made.
    let exited = p.exited_threads.as_ref().expect("exited threads");
    assert_eq!(exited.threads, REQUESTS, "{exited:?}");
    assert_eq!(p.threads.len(), 1, "{:?}", p.threads);
    assert_eq!(
        exited.calls + p.threads[0].calls,
        p.total.calls,
        "{exited:?} {:?}",
        p.threads
    );
    // One fd a poll, and each poll that found it ready led to one accept.
    let polls = harness::muxtrace::total(p, SyscallKind::Poll).unwrap();
    assert_eq!(polls.watched, polls.calls, "{polls:?}");
    assert_eq!(
        polls.ready,
        sum(m, of(SyscallKind::Accept4), |w| w.calls),
        "{table}"
    );
    assert_socket_bytes_are_ab_s(m, &ab, REQUESTS * request_bytes, &table);
    assert_eq!(ab.html_transferred, REQUESTS * BODY_BYTES as u64);
    assert_eq!(
        flow(m, |w| w.file_read_bytes),
        ab.html_transferred,
        "file bytes read: the bodies\n{table}"
    );
    assert_eq!(lines.len() as u64, REQUESTS, "{lines:?}");
    let log_bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    assert_eq!(
        flow(m, |w| w.file_written_bytes),
        log_bytes,
        "file bytes written: the log lines\n{table}"
    );
    assert_eq!(our_losses(&m.losses), [], "{:?}", m.losses);
}

/// lighttpd's poll backend keeps the free slots of its pollfd array as fd
/// -1, which the kernel skips: the fds muxtrace says each poll watched are
/// the entries that name one, call by call as strace wrote them out, and
/// nfds is the size argument. Every count equals strace's, and the bytes
/// what ab sent and received.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn lighttpd_s_polls_watch_the_fds_strace_shows_them_polling_not_nfds() {
    const REQUESTS: u64 = 300;
    const IDLE: usize = 200;
    let lighttpd = Lighttpd::start("poll", BODY_BYTES).unwrap_or_else(|e| panic!("{e:#}"));
    let pid = lighttpd.pid();
    let url = lighttpd.url();
    let request_bytes = ab_request_bytes(&url, SETTLE).unwrap_or_else(|e| panic!("{e:#}"));
    // Idle connections held open make the array long; ab's come and go
    // and free slots in it.
    let open_fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let before = open_fds();
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(("127.0.0.1", lighttpd.port())).expect("connect to lighttpd"))
        .collect();
    poll_until("lighttpd holding the idle connections", SETTLE, || {
        (open_fds() >= before + IDLE).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let t = traced_window(
        &[pid],
        &["--pid", &pid.to_string(), "--interval", "30s"],
        Beside::StraceCalls,
        || (),
        |_| ab(&url, REQUESTS),
        || (),
    );
    drop(idle);
    let (m, ab) = (t.metrics(), t.load);
    let (table, differ) = against_strace(m, &t.strace);
    let calls = harness::strace::poll_calls(&t.strace_text).unwrap_or_else(|e| panic!("{e:#}"));
    let fds: Vec<u64> = calls.iter().map(|c| c.fds).collect();
    let nfds: u64 = calls.iter().map(|c| c.nfds).sum();
    let polls = harness::muxtrace::total(proc_of(m, pid), SyscallKind::Poll).unwrap();
    println!(
        "lighttpd (poll), {REQUESTS} requests at concurrency {CONCURRENCY}, {IDLE} idle \
         connections:\n{table}{}\npolls: muxtrace watched {} (min {}, max {}) of nfds {}; \
         strace: {} entries naming an fd of {nfds}",
        headline(m, &[pid]),
        polls.watched,
        polls.watched_min,
        polls.watched_max,
        polls.size_arg,
        fds.iter().sum::<u64>(),
    );
    assert!(differ.is_empty(), "{differ:?} differ:\n{table}");
    assert_eq!(proc_of(m, pid).model, IoModel::Poll);
    assert_eq!(polls.calls, calls.len() as u64, "{table}");
    assert_eq!(polls.watched, fds.iter().sum::<u64>(), "{calls:?}");
    assert_eq!(polls.size_arg, nfds, "{calls:?}");
    assert_eq!(
        (polls.watched_min, polls.watched_max),
        (*fds.iter().min().unwrap(), *fds.iter().max().unwrap()),
        "{calls:?}"
    );
    assert!(
        nfds > polls.watched,
        "no free slot in lighttpd's array: the case is not exercised ({calls:?})"
    );
    assert_eq!(polls.scanned, polls.watched, "{polls:?}");
    assert_socket_bytes_are_ab_s(m, &ab, REQUESTS * request_bytes, &table);
    assert_eq!(our_losses(&m.losses), [], "{:?}", m.losses);
}

/// Node.js (libuv: `epoll_pwait`) with a worker thread idle in an event loop
/// of its own, as an app's background worker: the process's busy share is
/// its main loop's, and that is what Node itself measures
/// (`performance.eventLoopUtilization()`, over the same two seconds of
/// load). It read half of it when the process's share was the mean of its
/// loops.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn node_s_busy_share_is_its_main_loop_s_as_node_measures_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("node-http.js");
    std::fs::write(&script, harness::servers::NODE_HTTP).unwrap();
    let port = harness::servers::free_port().unwrap().to_string();
    let node = Proc::spawn(
        Command::new("node")
            .arg(&script)
            .arg(&port)
            .arg(BODY_BYTES.to_string()),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    node.wait_line("ready ", SETTLE)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let pid = node.pid();
    // Node's own measure: idle and active ms of its main loop so far.
    let elu = || {
        let asked = node.lines(harness::Stream::Stdout).len();
        node.signal(libc::SIGUSR2);
        poll_until("node's eventLoopUtilization", SETTLE, || {
            let lines = node.lines(harness::Stream::Stdout);
            let line = lines[asked..].iter().find(|l| l.starts_with("elu "))?;
            let mut ms = line.split_whitespace().skip(1).map(|v| v.parse::<f64>());
            Some((ms.next()?.ok()?, ms.next()?.ok()?))
        })
        .unwrap_or_else(|e| panic!("{e:#}"))
    };
    let mt = json_muxtrace(&["--pid", &pid.to_string(), "--interval", "500ms"]);
    let url = format!("http://127.0.0.1:{port}/");
    // Four seconds of one client at a time, the loop busy about 60 % (at
    // 20 it is saturated, and both read 0.98); the two in the middle are
    // compared.
    let load =
        Proc::spawn(Command::new("ab").args(["-q", "-t", "4", "-n", "10000000", "-c", "1", &url]))
            .unwrap_or_else(|e| panic!("{e:#}"));
    thread::sleep(Duration::from_millis(1000));
    let (idle0, active0) = elu();
    let first = lines_so_far(&mt);
    thread::sleep(Duration::from_millis(2000));
    let (idle1, active1) = elu();
    let last_line = lines_so_far(&mt);
    let done = load.finish(Duration::from_secs(60)).unwrap();
    assert!(done.status.success(), "ab: {}{}", done.stdout, done.stderr);
    let lines = stop_muxtrace(mt);
    let node_share = (active1 - active0) / ((active1 - active0) + (idle1 - idle0));
    // The intervals that ended in the window, less the first, which began
    // before it.
    let window = &lines[first + 1..last_line.min(lines.len())];
    assert!(window.len() >= 2, "{} lines", window.len());
    let mut main_shares = Vec::new();
    for line in window {
        let p = proc_of(&line.metrics, pid);
        let main = p
            .threads
            .iter()
            .find(|t| t.tid == pid)
            .expect("the main thread");
        let busiest = p
            .threads
            .iter()
            .filter_map(|t| t.loop_busy_share)
            .fold(0.0, f64::max);
        // The worker's loop wakes ten times a second: a loop thread too.
        assert!(p.loop_threads >= 2, "{:?}", p.threads);
        assert_eq!(p.loop_busy_share, Some(busiest));
        assert_eq!(main.loop_busy_share, Some(busiest), "{:?}", p.threads);
        main_shares.push(busiest);
    }
    let ours = main_shares.iter().sum::<f64>() / main_shares.len() as f64;
    println!(
        "node's main loop busy {:.3} by eventLoopUtilization, {ours:.3} by muxtrace ({main_shares:?})",
        node_share
    );
    assert!(
        (ours - node_share).abs() <= 0.05,
        "muxtrace {ours:.3} ({main_shares:?}), node {node_share:.3}"
    );
}

/// memcached: a main thread accepts and hands each connection to one of its
/// workers, each an event loop on an epoll of its own. With the
/// connections opened before the window, each set stays as the kernel
/// holds it, and each worker's watched fds per wait are its own epoll's
/// registrations in fdinfo (the process's figure, the mean over all its
/// waits, matches none of them). Every count equals strace's; the socket
/// bytes equal what the clients sent and received.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn memcached_s_workers_each_watch_their_own_epoll_set_and_bytes_equal_the_clients_s() {
    // 51 connections with the stats client: the two sets differ by one.
    const IDLE: usize = 40;
    const CLIENTS: usize = 10;
    const ROUNDS: usize = 100;
    let memcached = Memcached::start(2).unwrap_or_else(|e| panic!("{e:#}"));
    let pid = memcached.pid();
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(("127.0.0.1", memcached.port())).expect("connect"))
        .collect();
    let mut clients: Vec<MemcachedClient> = (0..CLIENTS)
        .map(|_| MemcachedClient::connect(memcached.port()).unwrap_or_else(|e| panic!("{e:#}")))
        .collect();
    // memcached's own count of its socket bytes, asked outside the window.
    let mut stats_client =
        MemcachedClient::connect(memcached.port()).unwrap_or_else(|e| panic!("{e:#}"));
    // Each worker's set: its connections and its notify eventfd.
    let workers = memcached.worker_epoll_fds().to_vec();
    let sets = || -> Vec<u64> {
        workers
            .iter()
            .map(|&(_, epfd)| epoll_registrations(pid, epfd).unwrap_or_else(|e| panic!("{e:#}")))
            .collect()
    };
    let registered = poll_until(
        "memcached's workers holding every connection",
        SETTLE,
        || {
            let sets = sets();
            let connections = IDLE + CLIENTS + 1;
            (sets.iter().sum::<u64>() == (connections + workers.len()) as u64).then_some(sets)
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    poll_until("memcached quiet", SETTLE, || {
        memcached.is_quiet().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let value = vec![b'v'; 1000];
    let bytes = |c: &[MemcachedClient]| -> (u64, u64) {
        c.iter()
            .map(|c| (c.bytes_sent(), c.bytes_received()))
            .fold((0, 0), |(s, r), (cs, cr)| (s + cs, r + cr))
    };
    let before = bytes(&clients);
    let stat = |stats: &BTreeMap<String, String>, name: &str| -> u64 {
        stats[name]
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let stats_before = stats_client.stats().unwrap_or_else(|e| panic!("{e:#}"));
    let first_reply = stats_client.bytes_received();
    let t = traced_window(
        &[pid],
        &["--pid", &pid.to_string(), "--interval", "30s"],
        Beside::StraceC,
        || (),
        |_| {
            for round in 0..ROUNDS {
                for (i, c) in clients.iter_mut().enumerate() {
                    let key = format!("k{i}-{round}");
                    c.set(&key, &value).unwrap_or_else(|e| panic!("{e:#}"));
                    let got = c.get(&key).unwrap_or_else(|e| panic!("{e:#}"));
                    assert_eq!(got.as_deref(), Some(&value[..]), "{key}");
                }
            }
            bytes(&clients)
        },
        sets,
    );
    let stats_after = stats_client.stats().unwrap_or_else(|e| panic!("{e:#}"));
    drop(idle);
    let m = t.metrics();
    let (table, differ) = against_strace(m, &t.strace);
    let p = proc_of(m, pid);
    let per_worker: Vec<(u32, u64, u64, Option<f64>)> = workers
        .iter()
        .map(|&(tid, _)| {
            let th = p.threads.iter().find(|t| t.tid == tid);
            let th = th.unwrap_or_else(|| panic!("worker {tid} not in {:?}", p.threads));
            assert_eq!(th.watched_waits, th.wait_calls, "{th:?}");
            (tid, th.wait_calls, th.watched, th.watched_per_wait)
        })
        .collect();
    println!(
        "memcached -t 2, {CLIENTS} clients × {ROUNDS} set+get of 1000 bytes, {IDLE} idle \
         connections:\n{table}{}\nworkers' epoll sets by fdinfo {registered:?}; by muxtrace \
         (tid, waits, watched, per wait) {per_worker:?}",
        headline(m, &[pid]),
    );
    assert!(differ.is_empty(), "{differ:?} differ:\n{table}");
    assert_eq!(p.model, IoModel::Epoll);
    assert_eq!(t.end, registered, "the sets changed in the window");
    assert_ne!(registered[0], registered[1], "the case is not exercised");
    for (&(tid, waits, watched, per_wait), &set) in per_worker.iter().zip(&registered) {
        // Every wait of theirs was taken (none refused).
        assert!(waits > 0, "worker {tid} never waited\n{table}");
        assert_eq!(watched, waits * set, "worker {tid}: {per_worker:?}");
        assert_eq!(per_wait, Some(set as f64), "worker {tid}");
    }
    // The main thread's set: the listening socket. The freeze cut its
    // wait short: it waited again at least once.
    let main_set = epoll_registrations(pid, memcached.main_epoll_fd()).unwrap();
    let main = p
        .threads
        .iter()
        .find(|t| t.tid == pid)
        .expect("the main thread");
    assert!(main.watched_waits > 0, "{main:?}");
    assert_eq!(main.watched, main.watched_waits * main_set, "{main:?}");
    // The threads add up to the process.
    let threads_watched: u64 = p.threads.iter().map(|t| t.watched).sum::<u64>()
        + p.exited_threads.as_ref().map_or(0, |e| e.watched);
    assert_eq!(threads_watched, sum(m, SyscallKind::is_wait, |w| w.watched));
    let ((sent0, received0), (sent1, received1)) = (before, t.load);
    assert_eq!(
        flow(m, |w| w.socket_received_bytes),
        sent1 - sent0,
        "socket bytes received: what the clients sent\n{table}"
    );
    assert_eq!(
        flow(m, |w| w.socket_sent_bytes),
        received1 - received0,
        "socket bytes sent: what the clients received\n{table}"
    );
    // memcached counts a request's bytes as it reads them (the second
    // `stats`, 7 bytes, is in its own figure) and a reply's once sent (the
    // first `stats` reply is in the second figure only).
    let read = stat(&stats_after, "bytes_read") - stat(&stats_before, "bytes_read");
    let written = stat(&stats_after, "bytes_written") - stat(&stats_before, "bytes_written");
    assert_eq!(read - 7, sent1 - sent0, "memcached's bytes_read\n{table}");
    assert_eq!(
        written - first_reply,
        received1 - received0,
        "memcached's bytes_written"
    );
    assert_eq!(our_losses(&m.losses), [], "{:?}", m.losses);
}
