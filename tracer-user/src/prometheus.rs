//! `--prometheus ADDR`: serves `/metrics` in Prometheus's text exposition
//! format, so a fleet's Prometheus scrapes muxtrace like any exporter.
//!
//! Rendering is a pure function of [`Metrics`] (the cumulative `total`
//! windows: Prometheus wants counters and computes its own rates). The server
//! is hyper's HTTP/1.1 with a header timeout, a whole-connection timeout and
//! a cap on open connections, so nothing a client does — idle connections,
//! slow headers, a flood — can use up muxtrace's fds or its time.

use std::{convert::Infallible, fmt::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, header, server::conn::http1, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{watch, Semaphore},
};
use tracer_common::{fold_pow2, pow2_high, Pow2Hist, POW2_BUCKETS};
use tracer_model::{Metrics, Window};

use crate::error::{Result, UserError};

/// Connections served at once; more are closed on accept. Prometheus needs
/// one; a cap keeps a flood from taking the fds muxtrace reads /proc with.
pub const MAX_CONNECTIONS: usize = 32;
/// A request's head must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection, keep-alive included, lasts at most this long.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// `9464`, `127.0.0.1:9464` or `[::1]:9464`. A bare port binds loopback only:
/// exposing the figures beyond the machine must be asked for by address.
pub fn parse_addr(s: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("'{s}' is not an address to listen on (try 127.0.0.1:9464 or 9464)"))
}

pub struct Exporter {
    body: watch::Sender<Bytes>,
    pub addr: SocketAddr,
}

impl Exporter {
    /// Binds now, so a taken port is reported before tracing starts.
    pub async fn bind(addr: SocketAddr) -> Result<Exporter> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            UserError::usage(format!("cannot listen on {addr} for --prometheus: {e}"))
                .hint("pick a free port, e.g. --prometheus 127.0.0.1:9465")
        })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let (body, rx) = watch::channel(Bytes::new());
        tokio::spawn(serve(listener, rx));
        Ok(Exporter { body, addr })
    }

    /// Whether anyone beyond this machine can connect.
    pub fn is_exposed(&self) -> bool {
        !self.addr.ip().is_loopback()
    }

    pub fn publish(&self, metrics: &Metrics) {
        let _ = self.body.send(Bytes::from(render(metrics)));
    }
}

async fn serve(listener: TcpListener, body: watch::Receiver<Bytes>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of fds (or another transient failure): wait rather than spin.
                log::debug!("prometheus accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            log::debug!("prometheus: {MAX_CONNECTIONS} connections open, closing a new one");
            continue;
        };
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let body = body.borrow().clone();
                async move { Ok::<_, Infallible>(respond(&request, body)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Err(e)) => log::debug!("prometheus client: {e}"),
                Err(_) => log::debug!("prometheus client: connection timed out"),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

fn respond(request: &Request<Incoming>, metrics: Bytes) -> Response<Full<Bytes>> {
    let head = request.method() == Method::HEAD;
    let (status, content_type, text) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics,
        ),
        (&Method::GET | &Method::HEAD, "/") => (
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"muxtrace: metrics at /metrics\n"),
        ),
        (&Method::GET | &Method::HEAD, _) => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"not found\n"),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"GET or HEAD only\n"),
        ),
    };
    let length = text.len();
    let mut response = Response::new(Full::new(if head { Bytes::new() } else { text }));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    // HEAD answers with the length GET would send.
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    }
    response
}

/// Label values may hold anything a comm can: escape `\`, `"` and newlines
/// as the exposition format requires.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    get: fn(&Window) -> f64,
}

const COUNTERS: &[Family] = &[
    Family { name: "muxtrace_syscalls_total", help: "Traced syscalls that returned.", kind: "counter", get: |w| w.calls as f64 },
    Family { name: "muxtrace_syscall_errors_total", help: "Traced syscalls that returned an error.", kind: "counter", get: |w| w.errors as f64 },
    Family { name: "muxtrace_syscall_eintr_total", help: "Calls interrupted by a signal.", kind: "counter", get: |w| w.eintr as f64 },
    Family { name: "muxtrace_wait_timeouts_total", help: "Wait calls that returned with nothing ready.", kind: "counter", get: |w| w.timeouts as f64 },
    Family { name: "muxtrace_ready_fds_total", help: "Ready fds returned by wait calls.", kind: "counter", get: |w| w.ready as f64 },
    Family { name: "muxtrace_watched_fds_total", help: "Watched fds summed over wait calls (select popcount, poll nfds, epoll interest set).", kind: "counter", get: |w| w.watched as f64 },
    Family { name: "muxtrace_scanned_fds_total", help: "fds the kernel examined in wait calls.", kind: "counter", get: |w| w.scanned as f64 },
    Family { name: "muxtrace_sched_wakeups_total", help: "Scheduler wakeups of threads blocked in a call.", kind: "counter", get: |w| w.sched_wakeups as f64 },
    Family { name: "muxtrace_empty_wakeups_total", help: "Receives that found nothing after a wait reported ready.", kind: "counter", get: |w| w.empty_wakeups as f64 },
    Family { name: "muxtrace_syscall_seconds_total", help: "Wall time inside the calls.", kind: "counter", get: |w| w.wall_ns as f64 / 1e9 },
    Family { name: "muxtrace_syscall_on_cpu_seconds_total", help: "On-CPU time inside the calls.", kind: "counter", get: |w| w.on_cpu_ns as f64 / 1e9 },
    Family { name: "muxtrace_syscall_off_cpu_seconds_total", help: "Time switched out inside the calls.", kind: "counter", get: |w| w.off_cpu_ns as f64 / 1e9 },
    Family { name: "muxtrace_bookkeeping_in_bytes_total", help: "Bytes copied user to kernel to describe waits (fd sets, pollfds, epoll_event, sigmask, timeouts).", kind: "counter", get: |w| w.bookkeeping_in_bytes as f64 },
    Family { name: "muxtrace_bookkeeping_out_bytes_total", help: "Bytes copied kernel to user by waits.", kind: "counter", get: |w| w.bookkeeping_out_bytes as f64 },
    Family { name: "muxtrace_payload_bytes_total", help: "Bytes moved by receive, send and zero-copy calls.", kind: "counter", get: |w| w.payload_bytes as f64 },
    Family { name: "muxtrace_payload_socket_bytes_total", help: "Of the payload, bytes on sockets.", kind: "counter", get: |w| w.payload_socket_bytes as f64 },
    Family { name: "muxtrace_payload_file_bytes_total", help: "Of the payload, bytes on files, pipes and devices.", kind: "counter", get: |w| w.payload_file_bytes as f64 },
    Family { name: "muxtrace_zero_copy_bytes_total", help: "Of the payload, bytes sendfile and splice moved inside the kernel, never copied through user space.", kind: "counter", get: |w| w.zero_copy_bytes as f64 },
    Family { name: "muxtrace_messages_total", help: "Calls that moved data, counting each message of recvmmsg/sendmmsg.", kind: "counter", get: |w| w.messages as f64 },
    Family { name: "muxtrace_runq_delays_total", help: "Calls whose thread was woken while blocked in them.", kind: "counter", get: |w| w.runq_delays as f64 },
    Family { name: "muxtrace_runq_seconds_total", help: "Run-queue delay of woken calls: sched_wakeup to running again.", kind: "counter", get: |w| w.runq_ns as f64 / 1e9 },
    Family { name: "muxtrace_exit_path_seconds_total", help: "Of woken calls, running again to the call's return.", kind: "counter", get: |w| w.exit_path_ns as f64 / 1e9 },
];

/// Event-loop families: written for wait calls only (an iteration is charged
/// to the wait that ends it), so other calls carry no rows of zeros.
const LOOP_COUNTERS: &[Family] = &[
    Family {
        name: "muxtrace_loop_iterations_total",
        help: "Event-loop iterations: a wait's return to the same thread's next wait entry.",
        kind: "counter",
        get: |w| w.iterations as f64,
    },
    Family {
        name: "muxtrace_loop_iteration_seconds_total",
        help: "Time in event-loop iterations, between waits.",
        kind: "counter",
        get: |w| w.iteration_ns as f64 / 1e9,
    },
    Family {
        name: "muxtrace_loop_stalls_total",
        help: "Iterations at least --stall long.",
        kind: "counter",
        get: |w| w.stalls as f64,
    },
    Family {
        name: "muxtrace_loop_stall_seconds_total",
        help: "Time in stalls.",
        kind: "counter",
        get: |w| w.stall_ns as f64 / 1e9,
    },
    Family {
        name: "muxtrace_loop_stall_off_cpu_seconds_total",
        help: "Of the stalls' time, switched out (blocked in another call or preempted).",
        kind: "counter",
        get: |w| w.stall_off_cpu_ns as f64 / 1e9,
    },
    Family {
        name: "muxtrace_loop_longest_stall_seconds",
        help: "The longest stall since attach.",
        kind: "gauge",
        get: |w| w.longest_stall_ns as f64 / 1e9,
    },
];

struct HistFamily {
    name: &'static str,
    help: &'static str,
    /// The histogram in powers of two, and the sum of its values.
    get: fn(&Window) -> (Pow2Hist, u64),
    unit: Unit,
}

/// What a histogram's integer values are, and how they read in the
/// exposition format: exact decimals, never float noise.
#[derive(Clone, Copy)]
enum Unit {
    /// Counted things (fds): written as integers.
    Count,
    /// Nanoseconds, written as seconds: `1023` → `0.000001023`.
    NanosAsSeconds,
}

impl Unit {
    fn decimal(self, v: u64) -> String {
        match self {
            Unit::Count => v.to_string(),
            Unit::NanosAsSeconds => {
                let frac = format!("{:09}", v % 1_000_000_000);
                let frac = frac.trim_end_matches('0');
                if frac.is_empty() {
                    format!("{}", v / 1_000_000_000)
                } else {
                    format!("{}.{frac}", v / 1_000_000_000)
                }
            }
        }
    }
}

const HISTOGRAMS: &[HistFamily] = &[
    HistFamily {
        name: "muxtrace_loop_iteration_duration_seconds",
        help: "Event-loop iteration time (wait return to next wait entry), from log2 buckets.",
        get: |w| (fold_pow2(&w.hists.iteration_ns), w.iteration_ns),
        unit: Unit::NanosAsSeconds,
    },
    HistFamily {
        name: "muxtrace_runq_delay_seconds",
        help: "Run-queue delay of woken calls (sched_wakeup to running again), from log2 buckets.",
        get: |w| (fold_pow2(&w.hists.runq_ns), w.runq_ns),
        unit: Unit::NanosAsSeconds,
    },
    HistFamily {
        name: "muxtrace_syscall_duration_seconds",
        help: "Wall time per call, from log2 buckets.",
        get: |w| (fold_pow2(&w.hists.wall_ns), w.wall_ns),
        unit: Unit::NanosAsSeconds,
    },
    HistFamily {
        name: "muxtrace_watched_fds",
        help: "Watched fds per wait call, from log2 buckets.",
        get: |w| (fold_pow2(&w.hists.watched), w.watched),
        unit: Unit::Count,
    },
    HistFamily {
        name: "muxtrace_ready_fds",
        help: "Ready fds per wait call, from log2 buckets.",
        get: |w| (w.hists.ready, w.ready),
        unit: Unit::Count,
    },
];

/// The exposition text for one set of metrics.
pub fn render(metrics: &Metrics) -> String {
    let mut out = String::new();
    let families = COUNTERS.iter().map(|f| (f, false));
    for (family, waits_only) in families.chain(LOOP_COUNTERS.iter().map(|f| (f, true))) {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for p in &metrics.processes {
            for s in p
                .syscalls
                .iter()
                .filter(|s| !waits_only || s.syscall.is_wait())
            {
                let _ = writeln!(
                    out,
                    "{}{{pid=\"{}\",comm=\"{}\",syscall=\"{}\"}} {}",
                    family.name,
                    p.pid,
                    escape_label(&p.comm),
                    s.syscall,
                    (family.get)(&s.total)
                );
            }
        }
    }
    for family in HISTOGRAMS {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} histogram", family.name);
        for p in &metrics.processes {
            for s in &p.syscalls {
                let (hist, sum) = (family.get)(&s.total);
                let hist = &hist;
                let count: u64 = hist.iter().sum();
                if count == 0 {
                    continue;
                }
                let labels = format!(
                    "pid=\"{}\",comm=\"{}\",syscall=\"{}\"",
                    p.pid,
                    escape_label(&p.comm),
                    s.syscall
                );
                // Powers of two, exactly: bucket b holds the integers
                // 2^(b-1) ..= 2^b - 1, so `le = 2^b - 1` is its exact bound
                // (the fine buckets nest inside them).
                let last = hist.iter().rposition(|&n| n > 0).unwrap_or(0);
                let mut cumulative = 0u64;
                for (b, &n) in hist.iter().enumerate().take(last + 1) {
                    cumulative += n;
                    if b == POW2_BUCKETS - 1 {
                        break;
                    }
                    let le = family.unit.decimal(pow2_high(b) - 1);
                    let _ = writeln!(
                        out,
                        "{}_bucket{{{labels},le=\"{le}\"}} {cumulative}",
                        family.name
                    );
                }
                let _ = writeln!(
                    out,
                    "{}_bucket{{{labels},le=\"+Inf\"}} {count}",
                    family.name
                );
                let _ = writeln!(
                    out,
                    "{}_sum{{{labels}}} {}",
                    family.name,
                    family.unit.decimal(sum)
                );
                let _ = writeln!(out, "{}_count{{{labels}}} {count}", family.name);
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP muxtrace_lost_events_total Events the probes could not measure or store."
    );
    let _ = writeln!(out, "# TYPE muxtrace_lost_events_total counter");
    for (reason, n) in &metrics.losses {
        let _ = writeln!(
            out,
            "muxtrace_lost_events_total{{reason=\"{}\"}} {n}",
            escape_label(reason)
        );
    }
    if let Some(cost) = &metrics.cost {
        let _ = writeln!(
            out,
            "# HELP muxtrace_probe_seconds_total Run time of muxtrace's own eBPF programs."
        );
        let _ = writeln!(out, "# TYPE muxtrace_probe_seconds_total counter");
        let _ = writeln!(
            out,
            "muxtrace_probe_seconds_total {}",
            cost.run_time_ns as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "# HELP muxtrace_probe_runs_total Runs of muxtrace's own eBPF programs."
        );
        let _ = writeln!(out, "# TYPE muxtrace_probe_runs_total counter");
        let _ = writeln!(out, "muxtrace_probe_runs_total {}", cost.run_count);
    }
    let _ = writeln!(
        out,
        "# HELP muxtrace_map_entries Entries in muxtrace's bounded kernel maps now."
    );
    let _ = writeln!(out, "# TYPE muxtrace_map_entries gauge");
    for (map, n) in &metrics.map_entries {
        let _ = writeln!(out, "muxtrace_map_entries{{map=\"{map}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP muxtrace_loop_busy_ratio Share of the last interval an event-loop thread spent outside wait calls."
    );
    let _ = writeln!(out, "# TYPE muxtrace_loop_busy_ratio gauge");
    for p in &metrics.processes {
        for t in &p.threads {
            if let Some(busy) = t.loop_busy_share {
                let _ = writeln!(
                    out,
                    "muxtrace_loop_busy_ratio{{pid=\"{}\",comm=\"{}\",tid=\"{}\",thread=\"{}\"}} {busy}",
                    p.pid,
                    escape_label(&p.comm),
                    t.tid,
                    escape_label(&t.name)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP muxtrace_process_alive 1 while the traced process runs."
    );
    let _ = writeln!(out, "# TYPE muxtrace_process_alive gauge");
    for p in &metrics.processes {
        let _ = writeln!(
            out,
            "muxtrace_process_alive{{pid=\"{}\",comm=\"{}\",model=\"{}\"}} {}",
            p.pid,
            escape_label(&p.comm),
            p.model.name(),
            u8::from(p.alive)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracer_common::{bucket, SyscallKind, SyscallStats};

    use super::*;
    use tracer_model::{ProcessSnap, Snapshot};

    fn metrics(comm: &[u8]) -> Metrics {
        let mut s = SyscallStats::ZERO;
        s.calls = 3;
        s.wall_ns = 3000;
        s.hist_wall_ns[bucket(1000)] = 3;
        // Two iterations of 1.5 ms between the waits, one of them woken
        // after 3 µs in the run queue.
        s.iterations = 2;
        s.iteration_ns = 3_000_000;
        s.hist_iteration_ns[bucket(1_500_000)] = 2;
        s.runq_delays = 1;
        s.runq_ns = 3000;
        s.hist_runq_ns[bucket(3000)] = 1;
        let mut read = SyscallStats::ZERO;
        read.calls = 1;
        let mut snap = Snapshot {
            elapsed: Duration::from_secs(1),
            ..Snapshot::default()
        };
        snap.processes.insert(
            9,
            ProcessSnap::new(
                9,
                comm,
                [(SyscallKind::EpollWait, s), (SyscallKind::Read, read)],
            ),
        );
        tracer_model::compute(None, &snap)
    }

    #[test]
    fn counters_and_histograms() {
        let text = render(&metrics(b"srv"));
        assert!(
            text.contains(
                "muxtrace_syscalls_total{pid=\"9\",comm=\"srv\",syscall=\"epoll_wait\"} 3\n"
            ),
            "{text}"
        );
        // 1000 ns sits in [512, 1024): the bucket with le = 1023 ns.
        assert!(text.contains("muxtrace_syscall_duration_seconds_bucket{pid=\"9\",comm=\"srv\",syscall=\"epoll_wait\",le=\"0.000001023\"} 3"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("muxtrace_syscall_duration_seconds_count{pid=\"9\",comm=\"srv\",syscall=\"epoll_wait\"} 3"), "{text}");
    }

    #[test]
    fn loop_families_only_for_waits() {
        let text = render(&metrics(b"srv"));
        let labels = "pid=\"9\",comm=\"srv\",syscall=\"epoll_wait\"";
        assert!(
            text.contains(&format!("muxtrace_loop_iterations_total{{{labels}}} 2\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "muxtrace_loop_iteration_seconds_total{{{labels}}} 0.003\n"
            )),
            "{text}"
        );
        // 1.5 ms sits in [2^20, 2^21) ns: le = 2^21 − 1 ns.
        assert!(text.contains(&format!("muxtrace_loop_iteration_duration_seconds_bucket{{{labels},le=\"0.002097151\"}} 2\n")), "{text}");
        assert!(
            text.contains(&format!(
                "muxtrace_runq_delay_seconds_sum{{{labels}}} 0.000003\n"
            )),
            "{text}"
        );
        assert!(
            !text.contains(
                "muxtrace_loop_iterations_total{pid=\"9\",comm=\"srv\",syscall=\"read\"}"
            ),
            "{text}"
        );
        // Run-queue delay applies to any call.
        assert!(
            text.contains(
                "muxtrace_runq_delays_total{pid=\"9\",comm=\"srv\",syscall=\"read\"} 0\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn every_family_is_documented() {
        let doc = include_str!("../../docs/prometheus.md");
        let mut metrics = metrics(b"srv");
        metrics.processes[0]
            .threads
            .push(tracer_model::ThreadMetrics {
                tid: 9,
                name: "srv".into(),
                loop_busy_share: Some(0.5),
                iterations: 2,
                stalls: 0,
                calls: 3,
                wait_calls: 3,
                wakeups: 0,
                wall_ns: 3000,
                off_cpu_ns: 0,
                on_cpu_ns: 3000,
                calls_per_sec: 3.0,
            });
        metrics.losses.insert("x".into(), 1);
        metrics.cost = Some(tracer_model::Cost {
            run_time_ns: 1,
            run_count: 1,
            sampled_s: 0.1,
            ns_per_run: 1.0,
            cpu_percent: 0.0,
        });
        let text = render(&metrics);
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = family.split(' ').next().unwrap();
            assert!(
                doc.contains(&format!("`{name}")),
                "{name} is not in docs/prometheus.md"
            );
        }
    }

    #[test]
    fn bucket_edges_are_exact_decimals() {
        assert_eq!(Unit::NanosAsSeconds.decimal(1023), "0.000001023");
        assert_eq!(Unit::NanosAsSeconds.decimal(2_000_000_000), "2");
        assert_eq!(Unit::NanosAsSeconds.decimal(2_500_000_000), "2.5");
        assert_eq!(
            Unit::NanosAsSeconds.decimal((1 << 40) - 1),
            "1099.511627775"
        );
        assert_eq!(Unit::Count.decimal(1023), "1023");
        let text = render(&metrics(b"srv"));
        for line in text.lines().filter(|l| l.contains("le=\"")) {
            let le = line
                .split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert!(
                le == "+Inf" || (le.len() < 16 && le.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }

    #[test]
    fn odd_comms_are_escaped() {
        // Control bytes become '?' before rendering; quotes and backslashes
        // are escaped; bytes that are not UTF-8 become U+FFFD.
        let text = render(&metrics(b"a\"b\\c\nd\xff"));
        assert!(text.contains("comm=\"a\\\"b\\\\c?d\u{fffd}\""), "{text}");
        assert_eq!(escape_label("x\ny"), "x\\ny");
        // Every sample line stays one line.
        for line in text.lines() {
            assert!(
                line.starts_with('#') || line.starts_with("muxtrace_"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_addr("0.0.0.0:1").unwrap(),
            "0.0.0.0:1".parse().unwrap()
        );
        assert!(parse_addr("localhost").is_err());
    }
}
