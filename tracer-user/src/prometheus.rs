//! `--prometheus ADDR`: serves `/metrics` in Prometheus's text exposition
//! format, so a fleet's Prometheus scrapes muxtrace like any exporter.
//!
//! Rendering is a pure function of [`Metrics`] (the cumulative `total`
//! windows: Prometheus wants counters and computes its own rates); for a
//! fleet, [`top`] keeps what bounding the series needs to keep every counter
//! monotonic. The server is hyper's HTTP/1.1 on a thread of its own, with a
//! header timeout, a whole-connection timeout and a cap on open
//! connections, so nothing a client does — idle connections, slow headers,
//! a flood — can use up muxtrace's fds or its time, and a scrape never
//! waits for a reading. At the cap a new connection closes the oldest, so
//! clients that connect and send nothing cannot lock a scraper out.

mod top;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    fmt::Write as _,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, header, server::conn::http1, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::watch, task::AbortHandle};
use tracer_common::{fold_pow2, pow2_high, uring::op_name, Pow2Hist, POW2_BUCKETS};
use tracer_model::{Metrics, ProcessMetrics, UringWindow, Window};

use crate::error::{Result, UserError};

/// Connections served at once; a new one beyond closes the oldest.
/// Prometheus needs one; a cap keeps a flood from taking the fds muxtrace
/// reads /proc with.
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
    /// `--prometheus-top`: the few processes with series of their own, the
    /// rest summed; `None` gives every process its own.
    top: Option<top::Top>,
}

impl Exporter {
    /// Binds now, so a taken port is reported before tracing starts.
    pub async fn bind(addr: SocketAddr, top: Option<u32>) -> Result<Exporter> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::AddrNotAvailable => format!(
                    "{} is not an address of this machine: give one it has (ip -brief addr), or a bare port for 127.0.0.1",
                    addr.ip()
                ),
                std::io::ErrorKind::PermissionDenied => format!(
                    "port {} is below net.ipv4.ip_unprivileged_port_start: binding it needs CAP_NET_BIND_SERVICE; pick a port from 1024",
                    addr.port()
                ),
                _ => "pick a free port, e.g. --prometheus 127.0.0.1:9465".to_owned(),
            };
            UserError::usage(format!("cannot listen on {addr} for --prometheus: {e}")).hint(hint)
        })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let (body, rx) = watch::channel(Bytes::new());
        // A thread of its own: a scrape is answered at once, not after the
        // reading of a fleet's maps and /proc that holds the main thread.
        let listener = listener
            .into_std()
            .map_err(|e| UserError::runtime(format!("cannot serve --prometheus on {addr}: {e}")))?;
        std::thread::Builder::new()
            .name("prometheus".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(listener) => serve(listener, rx).await,
                            Err(e) => log::warn!("--prometheus stopped serving: {e}"),
                        }
                    }),
                    Err(e) => log::warn!("--prometheus stopped serving: {e}"),
                }
            })
            .map_err(|e| {
                UserError::runtime(format!("cannot start serving --prometheus on {addr}: {e}"))
            })?;
        Ok(Exporter {
            body,
            addr,
            top: top.map(top::Top::new),
        })
    }

    /// Whether anyone beyond this machine can connect.
    pub fn is_exposed(&self) -> bool {
        !self.addr.ip().is_loopback()
    }

    pub fn publish(&mut self, metrics: &Metrics) {
        let text = match &mut self.top {
            Some(top) => top.render(metrics),
            None => render(metrics),
        };
        let _ = self.body.send(Bytes::from(text));
    }
}

async fn serve(listener: TcpListener, body: watch::Receiver<Bytes>) {
    // Open connections by accept order. A connection that sends nothing
    // holds its place until the header timeout: refusing newcomers at the
    // cap let 32 such clients, reconnecting, lock every scraper out, where
    // closing the oldest leaves a scraper (which asks at once) its turn.
    let open: Arc<Mutex<BTreeMap<u64, AbortHandle>>> = Arc::default();
    let mut next_id: u64 = 0;
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
        let oldest = {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            (open.len() >= MAX_CONNECTIONS)
                .then(|| open.pop_first())
                .flatten()
        };
        if let Some((_, oldest)) = oldest {
            log::debug!("prometheus: {MAX_CONNECTIONS} connections open, closing the oldest");
            oldest.abort();
        }
        let (id, body, done) = (next_id, body.clone(), Arc::clone(&open));
        next_id += 1;
        let task = tokio::spawn(async move {
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
            done.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
        // The runtime has one thread: the task cannot end before this.
        open.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, task.abort_handle());
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

/// What a family's integer values are, and how they read in the
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

/// How a family's samples read, and how they combine when processes are
/// summed into `comm="other"`: counters and histograms add, gauges take the
/// largest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Where a family's values come from, and so which labels follow pid and
/// comm.
#[derive(Clone, Copy)]
enum Get {
    /// One value per syscall kind (`syscall`).
    Call(fn(&Window) -> u64),
    /// The same for wait calls only: an iteration is charged to the wait
    /// that ends it, so other calls carry no rows of zeros.
    Wait(fn(&Window) -> u64),
    /// A histogram per syscall kind, in powers of two, and the sum of its
    /// values.
    Hist(fn(&Window) -> (Pow2Hist, u64)),
    /// One value per io_uring opcode (`op`).
    Uring(fn(&UringWindow) -> u64),
    /// Finished io_uring requests per opcode and completion path (`op`,
    /// `path`).
    UringPath,
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    unit: Unit,
    get: Get,
}

const fn calls(name: &'static str, help: &'static str, get: fn(&Window) -> u64) -> Family {
    Family {
        name,
        help,
        kind: Kind::Counter,
        unit: Unit::Count,
        get: Get::Call(get),
    }
}

const fn call_seconds(name: &'static str, help: &'static str, get: fn(&Window) -> u64) -> Family {
    Family {
        name,
        help,
        kind: Kind::Counter,
        unit: Unit::NanosAsSeconds,
        get: Get::Call(get),
    }
}

const fn loop_family(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    unit: Unit,
    get: fn(&Window) -> u64,
) -> Family {
    Family {
        name,
        help,
        kind,
        unit,
        get: Get::Wait(get),
    }
}

const fn histogram(
    name: &'static str,
    help: &'static str,
    unit: Unit,
    get: fn(&Window) -> (Pow2Hist, u64),
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Histogram,
        unit,
        get: Get::Hist(get),
    }
}

const fn uring(
    name: &'static str,
    help: &'static str,
    unit: Unit,
    get: fn(&UringWindow) -> u64,
) -> Family {
    Family {
        name,
        help,
        kind: Kind::Counter,
        unit,
        get: Get::Uring(get),
    }
}

/// An io_uring completion path: the `path` label and the count.
type Path = (&'static str, fn(&UringWindow) -> u64);

const PATHS: [Path; 3] = [
    ("inline", |w| w.inline),
    ("poll", |w| w.polled),
    ("io_wq", |w| w.punted),
];

/// Every per-process family, in the order they are written. One table, so a
/// process's own series and the `other` sum cannot differ in what they hold.
#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    calls("muxtrace_syscalls_total", "Traced syscalls that returned.", |w| w.calls),
    calls("muxtrace_syscall_errors_total", "Traced syscalls that returned an error.", |w| w.errors),
    calls("muxtrace_syscall_eintr_total", "Calls a signal interrupted that returned EINTR to the program (a handler ran).", |w| w.eintr),
    calls("muxtrace_syscall_restarted_total", "Calls a signal, a stop or a ptrace attach cut short that the kernel restarted, unseen by the program (each also counts as an error, and its restart as a call).", |w| w.restarted),
    calls("muxtrace_wait_timeouts_total", "Wait calls that returned with nothing ready.", |w| w.timeouts),
    calls("muxtrace_ready_fds_total", "Ready fds returned by wait calls.", |w| w.ready),
    calls("muxtrace_watched_fds_total", "Watched fds summed over wait calls (select popcount, poll entries naming an fd, epoll interest set).", |w| w.watched),
    calls("muxtrace_scanned_fds_total", "fds the kernel examined in wait calls.", |w| w.scanned),
    calls("muxtrace_sched_wakeups_total", "Scheduler wakeups of threads blocked in a call.", |w| w.sched_wakeups),
    calls("muxtrace_empty_wakeups_total", "Receives that found nothing after a wait reported ready.", |w| w.empty_wakeups),
    calls("muxtrace_syscalls_timed_total", "Of the calls, those whose time was taken: all, unless --time-every N timed one in N (muxtrace_time_every). The duration histogram counts these.", |w| w.timed_calls),
    call_seconds("muxtrace_syscall_seconds_total", "Wall time inside the calls (under --time-every, estimated from the timed calls).", |w| w.wall_ns),
    call_seconds("muxtrace_syscall_on_cpu_seconds_total", "On-CPU time inside the calls (under --time-every, estimated from the timed calls).", |w| w.on_cpu_ns),
    call_seconds("muxtrace_syscall_off_cpu_seconds_total", "Time switched out inside the calls.", |w| w.off_cpu_ns),
    calls("muxtrace_bookkeeping_in_bytes_total", "Bytes copied user to kernel to describe waits (fd sets, pollfds, epoll_event, sigmask, timeouts).", |w| w.bookkeeping_in_bytes),
    calls("muxtrace_bookkeeping_out_bytes_total", "Bytes copied kernel to user by waits.", |w| w.bookkeeping_out_bytes),
    calls("muxtrace_payload_bytes_total", "Bytes moved by receive, send and zero-copy calls.", |w| w.payload_bytes),
    calls("muxtrace_payload_socket_bytes_total", "Of the payload, bytes on sockets.", |w| w.payload_socket_bytes),
    calls("muxtrace_payload_file_bytes_total", "Of the payload, bytes on files, pipes and devices.", |w| w.payload_file_bytes),
    calls("muxtrace_zero_copy_bytes_total", "Of the payload, bytes sendfile and splice moved inside the kernel, never copied through user space.", |w| w.zero_copy_bytes),
    calls("muxtrace_messages_total", "Calls that moved data, counting each message of recvmmsg/sendmmsg.", |w| w.messages),
    calls("muxtrace_runq_delays_total", "Calls whose thread was woken while blocked in them.", |w| w.runq_delays),
    call_seconds("muxtrace_runq_seconds_total", "Run-queue delay of woken calls: sched_wakeup to running again.", |w| w.runq_ns),
    call_seconds("muxtrace_exit_path_seconds_total", "Of woken calls, running again to the call's return.", |w| w.exit_path_ns),
    loop_family("muxtrace_loop_iterations_total", "Event-loop iterations: a wait's return to the same thread's next wait entry.", Kind::Counter, Unit::Count, |w| w.iterations),
    loop_family("muxtrace_loop_iterations_timed_total", "Of the iterations, those timed: all, unless --time-every N timed one in N. The duration histogram counts these.", Kind::Counter, Unit::Count, |w| w.timed_iterations),
    loop_family("muxtrace_loop_iteration_seconds_total", "Time in event-loop iterations, between waits (under --time-every, estimated from the timed iterations).", Kind::Counter, Unit::NanosAsSeconds, |w| w.iteration_ns),
    loop_family("muxtrace_loop_stalls_total", "Iterations at least --stall long: every one (under --time-every N, an untimed one when the kernel's tick shows it at least a tick longer).", Kind::Counter, Unit::Count, |w| w.stalls),
    loop_family("muxtrace_loop_stalls_by_tick_total", "Of the stalls, those in untimed iterations (--time-every N): their length known to within the kernel's tick (muxtrace_kernel_tick_seconds).", Kind::Counter, Unit::Count, |w| w.tick_stalls),
    loop_family("muxtrace_loop_stall_seconds_total", "Time in stalls.", Kind::Counter, Unit::NanosAsSeconds, |w| w.stall_ns),
    loop_family("muxtrace_loop_stall_off_cpu_seconds_total", "Of the stalls' time, switched out (blocked in another call or preempted).", Kind::Counter, Unit::NanosAsSeconds, |w| w.stall_off_cpu_ns),
    loop_family("muxtrace_loop_longest_stall_seconds", "The longest stall since attach.", Kind::Gauge, Unit::NanosAsSeconds, |w| w.longest_stall_ns),
    histogram("muxtrace_loop_iteration_duration_seconds", "Event-loop iteration time (wait return to next wait entry), from log2 buckets.", Unit::NanosAsSeconds, |w| (fold_pow2(&w.hists.iteration_ns), w.timed_iteration_ns)),
    histogram("muxtrace_runq_delay_seconds", "Run-queue delay of woken calls (sched_wakeup to running again), from log2 buckets.", Unit::NanosAsSeconds, |w| (fold_pow2(&w.hists.runq_ns), w.runq_ns)),
    histogram("muxtrace_syscall_duration_seconds", "Wall time per timed call, from log2 buckets.", Unit::NanosAsSeconds, |w| (fold_pow2(&w.hists.wall_ns), w.timed_wall_ns)),
    histogram("muxtrace_watched_fds", "Watched fds per wait call, from log2 buckets.", Unit::Count, |w| (fold_pow2(&w.hists.watched), w.watched)),
    histogram("muxtrace_ready_fds", "Ready fds per wait call, from log2 buckets.", Unit::Count, |w| (w.hists.ready, w.ready)),
    uring("muxtrace_uring_requests_total", "io_uring requests submitted.", Unit::Count, |w| w.submitted),
    uring("muxtrace_uring_sqpoll_requests_total", "io_uring requests an SQPOLL ring's SQ thread submitted, without a syscall.", Unit::Count, |w| w.sqpoll_submitted),
    uring("muxtrace_uring_cqes_total", "io_uring CQEs posted.", Unit::Count, |w| w.cqes),
    uring("muxtrace_uring_errors_total", "io_uring CQEs with an error.", Unit::Count, |w| w.errors),
    uring("muxtrace_uring_bytes_total", "Payload bytes io_uring requests moved.", Unit::Count, |w| w.bytes),
    uring("muxtrace_uring_timed_total", "Finished io_uring requests whose submission was seen.", Unit::Count, |w| w.timed),
    uring("muxtrace_uring_latency_seconds_total", "Submission to last CQE, summed over the timed requests.", Unit::NanosAsSeconds, |w| w.latency_ns),
    Family {
        name: "muxtrace_uring_completions_total",
        help: "Finished io_uring requests by path: inline, internal poll, io-wq worker.",
        kind: Kind::Counter,
        unit: Unit::Count,
        get: Get::UringPath,
    },
];

// A key's fields are bytes: every index must fit.
const _: () = assert!(FAMILIES.len() < u8::MAX as usize);
const _: () = assert!(POW2_BUCKETS < SUM as usize);
const _: () = assert!(tracer_common::SYSCALL_KINDS <= 256);

/// One sample of a process, named by what follows its pid and comm: its
/// family (the index in [`FAMILIES`]), the syscall kind or io_uring opcode,
/// and the part — a histogram's bucket (a count of its own, not cumulative,
/// so that sums of histograms are sums of buckets) or its [`SUM`], a
/// completion path.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Key {
    family: u8,
    label: u8,
    part: u8,
}

/// The part of a histogram's key that holds the sum of its values.
const SUM: u8 = u8::MAX;

/// A process's samples: what its series say, without pid and comm.
pub type Samples = BTreeMap<Key, u64>;

/// Every sample of one process, from its since-attach figures.
pub fn samples(p: &ProcessMetrics) -> Samples {
    let mut out = Samples::new();
    for (i, family) in FAMILIES.iter().enumerate() {
        let key = |label: u8, part: u8| Key {
            family: i as u8,
            label,
            part,
        };
        match family.get {
            Get::Call(get) | Get::Wait(get) => {
                let waits_only = matches!(family.get, Get::Wait(_));
                for s in p
                    .syscalls
                    .iter()
                    .filter(|s| !waits_only || s.syscall.is_wait())
                {
                    out.insert(key(s.syscall as u8, 0), get(&s.total));
                }
            }
            Get::Hist(get) => {
                for s in &p.syscalls {
                    let (hist, sum) = get(&s.total);
                    if hist.iter().all(|&n| n == 0) {
                        continue;
                    }
                    for (b, &n) in hist.iter().enumerate().filter(|(_, n)| **n > 0) {
                        out.insert(key(s.syscall as u8, b as u8), n);
                    }
                    out.insert(key(s.syscall as u8, SUM), sum);
                }
            }
            Get::Uring(get) => {
                for op in p.uring.iter().flat_map(|u| &u.ops) {
                    out.insert(key(op.opcode, 0), get(&op.total));
                }
            }
            Get::UringPath => {
                for op in p.uring.iter().flat_map(|u| &u.ops) {
                    for (k, (_, get)) in PATHS.iter().enumerate() {
                        out.insert(key(op.opcode, k as u8), get(&op.total));
                    }
                }
            }
        }
    }
    out
}

/// Whether a key's values add up across processes (counters, histogram
/// buckets and sums) or take the largest (gauges).
pub fn adds_up(key: &Key) -> bool {
    FAMILIES[key.family as usize].kind != Kind::Gauge
}

/// One set of series: a process's own, or the `other` sum.
pub struct Row<'a> {
    /// `pid="…",comm="…"`, escaped.
    labels: String,
    samples: &'a Samples,
}

impl<'a> Row<'a> {
    pub fn new(pid: &str, comm: &str, samples: &'a Samples) -> Row<'a> {
        Row {
            labels: format!("pid=\"{pid}\",comm=\"{}\"", escape_label(comm)),
            samples,
        }
    }
}

/// The labels after pid and comm, by what the family is per.
fn labels_of(family: &Family, key: &Key) -> String {
    let syscall =
        || tracer_common::SyscallKind::from_u32(u32::from(key.label)).map_or("?", |k| k.name());
    let op = || op_name(u32::from(key.label));
    match family.get {
        Get::Call(_) | Get::Wait(_) | Get::Hist(_) => format!("syscall=\"{}\"", syscall()),
        Get::Uring(_) => format!("op=\"{}\"", op()),
        Get::UringPath => format!(
            "op=\"{}\",path=\"{}\"",
            op(),
            PATHS.get(usize::from(key.part)).map_or("?", |p| p.0)
        ),
    }
}

/// Every per-process family, each row's samples in turn.
/// A family of one unlabelled series: its HELP, TYPE and value lines.
#[rustfmt::skip]
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// A gauge per event-loop thread of the processes in `shown`, where
/// `value` has a figure for it.
fn thread_gauge(
    out: &mut String,
    name: &str,
    help: &str,
    shown: &[&ProcessMetrics],
    value: impl Fn(&tracer_model::ThreadMetrics) -> Option<f64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for p in shown {
        for t in &p.threads {
            if let Some(v) = value(t) {
                let _ = writeln!(
                    out,
                    "{name}{{pid=\"{}\",comm=\"{}\",tid=\"{}\",thread=\"{}\"}} {v}",
                    p.pid,
                    escape_label(&p.comm),
                    t.tid,
                    escape_label(&t.name)
                );
            }
        }
    }
}

fn write_families(out: &mut String, rows: &[Row]) {
    for (i, family) in FAMILIES.iter().enumerate() {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.name());
        let first = Key {
            family: i as u8,
            label: 0,
            part: 0,
        };
        let last = Key {
            family: i as u8,
            label: u8::MAX,
            part: u8::MAX,
        };
        for row in rows {
            let mut samples = row.samples.range(first..=last).peekable();
            if !matches!(family.get, Get::Hist(_)) {
                for (key, v) in samples {
                    let _ = writeln!(
                        out,
                        "{}{{{},{}}} {}",
                        family.name,
                        row.labels,
                        labels_of(family, key),
                        family.unit.decimal(*v)
                    );
                }
                continue;
            }
            // A histogram's buckets, then its sum, per syscall kind.
            while let Some((key, _)) = samples.peek() {
                let label = key.label;
                let mut hist: Pow2Hist = [0; POW2_BUCKETS];
                let mut sum = 0;
                while let Some((key, v)) = samples.next_if(|(k, _)| k.label == label) {
                    match key.part {
                        SUM => sum = *v,
                        b => hist[usize::from(b)] = *v,
                    }
                }
                let key = Key {
                    family: i as u8,
                    label,
                    part: 0,
                };
                let labels = format!("{},{}", row.labels, labels_of(family, &key));
                write_histogram(out, family, &labels, &hist, sum);
            }
        }
    }
}

/// A histogram in the text format. Powers of two, exactly: bucket b holds
/// the integers 2^(b-1) ..= 2^b - 1, so `le = 2^b - 1` is its exact bound
/// (the fine buckets nest inside them).
fn write_histogram(out: &mut String, family: &Family, labels: &str, hist: &Pow2Hist, sum: u64) {
    let count: u64 = hist.iter().sum();
    if count == 0 {
        return;
    }
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

/// The exposition text with every process's own series: what a handful of
/// processes the user chose get.
pub fn render(metrics: &Metrics) -> String {
    let samples: Vec<Samples> = metrics.processes.iter().map(samples).collect();
    let rows: Vec<Row> = metrics
        .processes
        .iter()
        .zip(&samples)
        .map(|(p, s)| Row::new(&p.pid.to_string(), &p.comm, s))
        .collect();
    let live = metrics
        .processes
        .iter()
        .filter(|p| p.folded == 0 && p.alive)
        .count();
    let exited = metrics.processes.iter().map(|p| p.folded).sum();
    let shown: Vec<&ProcessMetrics> = metrics.processes.iter().collect();
    write_all(
        metrics,
        &rows,
        &shown,
        Counts {
            own: live,
            other: 0,
            exited,
        },
    )
}

/// How many processes have series of their own, how many live ones are
/// summed into `other`, and how many exited.
pub struct Counts {
    pub own: usize,
    pub other: usize,
    pub exited: u64,
}

/// The whole exposition: `rows` for the per-process families, then the
/// per-thread and per-process gauges of the processes in `shown`, then
/// muxtrace's own figures.
pub fn write_all(
    metrics: &Metrics,
    rows: &[Row],
    shown: &[&ProcessMetrics],
    counts: Counts,
) -> String {
    let mut out = String::new();
    write_families(&mut out, rows);
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
        let seconds = |ns: u64| Unit::NanosAsSeconds.decimal(ns);
        single(&mut out, "muxtrace_probe_seconds_total", "counter", "Run time of muxtrace's own eBPF programs during the cost samples (muxtrace_probe_sampled_seconds_total), less the kernel accounting's own time in each run.", seconds(cost.run_time_ns));
        single(
            &mut out,
            "muxtrace_probe_runs_total",
            "counter",
            "Runs of muxtrace's own eBPF programs during the cost samples.",
            cost.run_count,
        );
        // The kernel accounts run time only while asked (it costs two clock
        // reads a run), so the run time covers the samples alone: their
        // length is the denominator of any rate of it.
        single(&mut out, "muxtrace_probe_sampled_seconds_total", "counter", "Length of the cost samples (a tenth of each interval, 100 ms at most, in four pieces): rate(muxtrace_probe_seconds_total) / rate(muxtrace_probe_sampled_seconds_total) is the share of a CPU the programs cost.", seconds((cost.sampled_s * 1e9).round() as u64));
        single(&mut out, "muxtrace_probe_cpu_ratio", "gauge", "Share of one CPU muxtrace's programs cost over the last ten intervals' samples, with what sampling costs (the dashboard's own cost).", cost.cpu_percent / 100.0);
        single(&mut out, "muxtrace_probe_accounting_seconds_per_run", "gauge", "What the kernel's run-time accounting adds to each run it times, measured at every sample; taken out of muxtrace_probe_seconds_total.", cost.accounting_ns_per_run / 1e9);
    }
    single(&mut out, "muxtrace_time_every", "gauge", "One call in this many, and one loop iteration in this many, is timed (--time-every); 1 when every one is.", metrics.time_every);
    if metrics.tick_ns != 0 {
        single(&mut out, "muxtrace_kernel_tick_seconds", "gauge", "The kernel's tick (one jiffy): under --time-every, the resolution of the stalls found in untimed iterations.", Unit::NanosAsSeconds.decimal(metrics.tick_ns));
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
        "# HELP muxtrace_traced_processes Live traced processes: with series of their own (series=\"own\"), or summed into pid=\"other\" (series=\"other\")."
    );
    let _ = writeln!(out, "# TYPE muxtrace_traced_processes gauge");
    let _ = writeln!(
        out,
        "muxtrace_traced_processes{{series=\"own\"}} {}",
        counts.own
    );
    let _ = writeln!(
        out,
        "muxtrace_traced_processes{{series=\"other\"}} {}",
        counts.other
    );
    let _ = writeln!(
        out,
        "# HELP muxtrace_exited_processes_total Traced processes that exited (or were evicted), their figures folded."
    );
    let _ = writeln!(out, "# TYPE muxtrace_exited_processes_total counter");
    let _ = writeln!(out, "muxtrace_exited_processes_total {}", counts.exited);
    thread_gauge(
        &mut out,
        "muxtrace_loop_busy_ratio",
        "Share of the last interval an event-loop thread spent outside wait calls.",
        shown,
        |t| t.loop_busy_share,
    );
    thread_gauge(
        &mut out,
        "muxtrace_loop_watched_fds_per_wait",
        "Fds an event-loop thread's wait calls watched, per call, over the last interval (or the one it waits in): its own interest set.",
        shown,
        |t| t.watched_per_wait,
    );
    let _ = writeln!(
        out,
        "# HELP muxtrace_process_alive 1 while the traced process runs."
    );
    let _ = writeln!(out, "# TYPE muxtrace_process_alive gauge");
    for p in shown {
        let _ = writeln!(
            out,
            "muxtrace_process_alive{{pid=\"{}\",comm=\"{}\",model=\"{}\"}} {}",
            p.pid,
            escape_label(&p.comm),
            p.model.name(),
            u8::from(p.alive)
        );
    }
    let _ = writeln!(
        out,
        "# HELP muxtrace_process_state The verdict in one word: 1 for the process's state now, 0 for the others."
    );
    let _ = writeln!(out, "# TYPE muxtrace_process_state gauge");
    for p in shown {
        // A series per state, always: an alert on one never sees it vanish.
        for state in tracer_model::STATES {
            let _ = writeln!(
                out,
                "muxtrace_process_state{{pid=\"{}\",comm=\"{}\",state=\"{state}\"}} {}",
                p.pid,
                escape_label(&p.comm),
                u8::from(p.state == state)
            );
        }
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
        s.timed = 3;
        s.wall_ns = 3000;
        s.on_cpu_ns = 3000;
        s.hist_wall_ns[bucket(1000)] = 3;
        // Two iterations of 1.5 ms between the waits, one of them woken
        // after 3 µs in the run queue.
        s.iterations = 2;
        s.timed_iterations = 2;
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
            text.contains(&format!("muxtrace_loop_iterations_total{{{labels}}} 2\n"))
                && text.contains(&format!(
                    "muxtrace_loop_iterations_timed_total{{{labels}}} 2\n"
                )),
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
    fn io_uring_requests_by_opcode_and_path() {
        let mut recv = tracer_common::UringStats::ZERO;
        recv.submitted = 10;
        recv.cqes = 10;
        recv.timed = 10;
        recv.inline = 7;
        recv.polled = 2;
        recv.punted = 1;
        recv.bytes = 640;
        recv.latency_ns = 50_000;
        let mut snap = Snapshot {
            elapsed: Duration::from_secs(1),
            ..Snapshot::default()
        };
        let mut p = ProcessSnap::new(9, b"srv", []);
        p.uring.insert(tracer_common::uring::op::RECV, recv);
        snap.processes.insert(9, p);
        let text = render(&tracer_model::compute(None, &snap));
        for line in [
            "muxtrace_uring_requests_total{pid=\"9\",comm=\"srv\",op=\"recv\"} 10\n",
            "muxtrace_uring_bytes_total{pid=\"9\",comm=\"srv\",op=\"recv\"} 640\n",
            "muxtrace_uring_completions_total{pid=\"9\",comm=\"srv\",op=\"recv\",path=\"poll\"} 2\n",
            "muxtrace_uring_completions_total{pid=\"9\",comm=\"srv\",op=\"recv\",path=\"io_wq\"} 1\n",
            "muxtrace_uring_latency_seconds_total{pid=\"9\",comm=\"srv\",op=\"recv\"} 0.00005\n",
            "muxtrace_process_alive{pid=\"9\",comm=\"srv\",model=\"io_uring\"} 1\n",
            // A first reading has no interval yet: quiet, and no other state.
            "muxtrace_process_state{pid=\"9\",comm=\"srv\",state=\"quiet\"} 1\n",
            "muxtrace_process_state{pid=\"9\",comm=\"srv\",state=\"idle\"} 0\n",
            "muxtrace_process_state{pid=\"9\",comm=\"srv\",state=\"exited\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
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
                timed_calls: 3,
                wait_calls: 3,
                wakeups: 0,
                watched: 3,
                watched_waits: 3,
                ready: 0,
                watched_per_wait: Some(1.0),
                wall_ns: 3000,
                off_cpu_ns: 0,
                on_cpu_ns: 3000,
                calls_per_sec: 3.0,
                stopped_ns: 0,
                parked_ns: 0,
            });
        metrics.losses.insert("x".into(), 1);
        metrics.cost = Some(tracer_model::Cost {
            run_time_ns: 1,
            run_count: 1,
            sampled_s: 0.1,
            ns_per_run: 1.0,
            accounting_ns_per_run: 0.0,
            cpu_percent: 0.0,
            accounting_percent: 0.0,
        });
        metrics.tick_ns = 4_000_000;
        let text = render(&metrics);
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = family.split(' ').next().unwrap();
            assert!(
                doc.contains(&format!("`{name}")),
                "{name} is not in docs/prometheus.md"
            );
        }
    }

    /// The run time covers the samples only: their length is exposed, so a
    /// rate of one over the other is the CPU share the dashboard shows.
    #[test]
    fn own_cost_comes_with_its_samples_length() {
        let mut metrics = metrics(b"srv");
        metrics.cost = Some(tracer_model::Cost {
            run_time_ns: 3_000_000,
            run_count: 20_000,
            sampled_s: 0.1,
            ns_per_run: 150.0,
            accounting_ns_per_run: 50.0,
            cpu_percent: 3.5,
            accounting_percent: 0.5,
        });
        let text = render(&metrics);
        for line in [
            "muxtrace_probe_seconds_total 0.003\n",
            "muxtrace_probe_sampled_seconds_total 0.1\n",
            "muxtrace_probe_cpu_ratio 0.035\n",
            "muxtrace_probe_accounting_seconds_per_run 0.00000005\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
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
