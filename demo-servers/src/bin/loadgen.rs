//! `loadgen`: drives an echo server and verifies every echoed byte.
//!
//! `--conns N` active connections send `--size B`-byte messages; `--idle M`
//! more connections are opened and held without traffic (the idle load whose
//! cost differs between select, poll and epoll). Each active connection's
//! stream comes from [`demo_servers::pattern`], so every byte that comes back
//! is checked against what was sent: a wrong, lost, duplicated or reordered
//! byte is a *corrupt* echo, and any error makes loadgen exit 1.
//!
//! Pacing: without `--rate`, closed loop — each connection sends its next
//! message as soon as the previous echo is complete, and latency is measured
//! from that send. With `--rate R`, open loop — messages are scheduled at R
//! per second in total, round-robin over the connections, sent on schedule
//! whether or not earlier echoes came back, and latency is measured from the
//! *scheduled* time, so a stalled server shows up as latency instead of
//! silently lowering the send rate (no coordinated omission).
//!
//! The client side is one epoll loop per `--threads` (default 1): it must
//! never be the bottleneck, and a thread per connection would compete with
//! the servers for the two cores. Latency is recorded in an HDR histogram.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use demo_servers::net;
use demo_servers::pattern::{Pattern, MAX_SLICE};
use demo_servers::sys::{self, cvt, monotonic_ns};
use harness::loadgen::{Latency, Report};
use hdrhistogram::Histogram;
use tracer_common::duration::parse_duration;

const AFTER_HELP: &str = "\
Output (--json): one object on stdout at the end:
  messages          messages fully echoed and verified in the measured window
  messages_per_sec  messages / duration_s
  bytes_per_sec     echoed bytes received and verified per second
  latency_us        {p50, p99, p999, max}: microseconds from send (closed
                    loop) or from the scheduled send time (--rate) until the
                    last byte of the echo arrived
  errors            connections that failed: reset, closed by the server,
                    or a corrupt echo (corrupt ones included)
  corrupt           echoes with a byte that differs from what was sent
  connect_failures  idle connections that could not be opened or that the
                    server closed right away
  active_conns      active connections opened (--conns)
  idle_conns        idle connections still open at the end
  duration_s        length of the measured window (after --warmup)
Also: size, rate (null for closed loop), idle_requested, threads.

Exit status: 0 clean run; 1 any error or corrupt echo, or fewer idle
connections than asked (unless --allow-partial-idle); 2 bad arguments.";

/// Load generator for the echo servers: active and idle connections,
/// verified echoes, HDR latency percentiles.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, after_help = AFTER_HELP)]
struct Args {
    /// Server address, e.g. 127.0.0.1:7000.
    #[arg(long, value_name = "ADDR")]
    addr: SocketAddr,
    /// Active connections sending messages.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    conns: u32,
    /// Idle connections opened and held without traffic.
    #[arg(long, default_value_t = 0)]
    idle: u32,
    /// Bytes per message.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    size: u32,
    /// Messages per second across all active connections (open loop);
    /// without it, closed loop.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Length of the measured run: 10s, 500ms, ...
    #[arg(long, default_value = "10s", value_parser = duration_arg)]
    duration: Duration,
    /// Traffic before measuring starts (not counted); none by default.
    #[arg(long, value_parser = duration_arg)]
    warmup: Option<Duration>,
    /// Print one JSON object on stdout instead of the text report.
    #[arg(long)]
    json: bool,
    /// Go on with fewer idle connections than --idle when the rest cannot be
    /// opened or are closed by the server (select's 1024-descriptor limit).
    #[arg(long)]
    allow_partial_idle: bool,
    /// Client threads, each with its own epoll loop and share of --conns.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| format!("'{s}' {e}"))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "`{text}` is not a positive number of messages per second"
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => finish(&args, &report),
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Error lines printed per run before the rest are only counted.
const LOGGED_ERRORS: u64 = 10;
static LOGGED: AtomicU64 = AtomicU64::new(0);

fn log_error(msg: std::fmt::Arguments<'_>) {
    let n = LOGGED.fetch_add(1, Relaxed);
    if n < LOGGED_ERRORS {
        eprintln!("loadgen: {msg}");
    } else if n == LOGGED_ERRORS {
        eprintln!("loadgen: further errors are counted, not logged");
    }
}

fn finish(args: &Args, r: &Report) -> ExitCode {
    let text = if args.json {
        match serde_json::to_string(r) {
            Ok(line) => line + "\n",
            Err(e) => {
                eprintln!("loadgen: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let mode = match r.rate {
            Some(rate) => format!("open loop at {rate} msg/s"),
            None => "closed loop".to_string(),
        };
        let l = &r.latency_us;
        format!(
            "loadgen: {} active + {} idle connections to {}, {}-byte messages, {}, {:.2} s\n\
             \x20 messages  {} ({:.0} msg/s, {:.1} MB/s)\n\
             \x20 latency   p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs\n\
             \x20 errors    {} (corrupt {}), idle connections open {} of {}\n",
            r.active_conns,
            r.idle_conns,
            args.addr,
            r.size,
            mode,
            r.duration_s,
            r.messages,
            r.messages_per_sec,
            r.bytes_per_sec / 1e6,
            l.p50,
            l.p99,
            l.p999,
            l.max,
            r.errors,
            r.corrupt,
            r.idle_conns,
            r.idle_requested
        )
    };
    // A reader that went away (`| head`) is not a failure of the run.
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("loadgen: cannot write the report: {e}");
            return ExitCode::FAILURE;
        }
    }
    if r.errors > 0 {
        eprintln!(
            "loadgen: the run saw {} errors, {} of them corrupt echoes",
            r.errors, r.corrupt
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Counters the workers publish for the progress line.
#[derive(Default)]
struct Progress {
    messages: AtomicU64,
    errors: AtomicU64,
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let limit = net::raise_nofile_limit().unwrap_or(0);
    let n_active = args.conns as usize;
    let mut active = Vec::with_capacity(n_active);
    for i in 0..n_active {
        let stream = connect(args.addr).with_context(|| {
            format!(
                "cannot open active connection {} of {} to {}",
                i + 1,
                n_active,
                args.addr
            )
        })?;
        active.push(stream);
    }

    // Client loops are set up before the idle connections are opened: their
    // epoll and timer descriptors must not be the ones that hit the limit.
    let pattern = Arc::new(Pattern::new());
    let progress = Arc::new(Progress::default());
    let threads = (args.threads as usize).min(n_active);
    let mut workers = Vec::with_capacity(threads);
    let mut first = 0;
    for t in 0..threads {
        let count = n_active / threads + usize::from(t < n_active % threads);
        let streams: Vec<TcpStream> = active.drain(..count).collect();
        let rate = args.rate.map(|r| r * count as f64 / n_active as f64);
        workers.push(Worker::new(
            streams,
            first,
            args.size as u64,
            rate,
            &pattern,
            &progress,
        )?);
        first += count;
    }

    // Idle connections come after the active ones, so a server with a
    // descriptor ceiling (select) spends its low descriptors on the
    // connections that carry traffic.
    let mut idle = IdleSet::new()?;
    let mut idle_error = None;
    for _ in 0..args.idle {
        match connect(args.addr) {
            Ok(s) => idle.add(s)?,
            Err(e) => {
                idle_error = Some(e);
                break;
            }
        }
    }
    let opened = idle.len();
    if args.idle > 0 {
        idle.settle()?;
    }
    let open = idle.len();
    let requested = args.idle as usize;
    let connect_failures = (requested - open) as u64;
    if open < requested {
        let why = match &idle_error {
            Some(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                format!("{e}; the open-file limit is {limit}")
            }
            Some(e) => e.to_string(),
            None => format!("the server closed {} of them", opened - open),
        };
        let msg = format!("only {open} of {requested} idle connections could be opened ({why})");
        if !args.allow_partial_idle {
            bail!("{msg}; pass --allow-partial-idle to run with fewer");
        }
        eprintln!("loadgen: {msg}; continuing with {open}");
    }

    let plan = Plan::new(args);
    let workers = workers
        .into_iter()
        .enumerate()
        .map(|(t, worker)| {
            thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || worker.run(plan))
                .context("cannot start a client thread")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    idle.watch_until(plan.end, &plan, &progress, n_active);

    let mut total = Outcome::empty();
    for w in workers {
        match w.join() {
            Ok(Ok(o)) => total.merge(o),
            Ok(Err(e)) => return Err(e.context("client loop failed")),
            Err(_) => bail!("a client thread panicked"),
        }
    }

    let duration_s = (total.stopped_at.max(plan.warm_end) - plan.warm_end) as f64 / 1e9;
    let per_sec = |x: u64| {
        if duration_s > 0.0 {
            x as f64 / duration_s
        } else {
            0.0
        }
    };
    let h = &total.hist;
    let us = |q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1e3
        }
    };
    Ok(Report {
        messages: total.messages,
        messages_per_sec: per_sec(total.messages),
        bytes_per_sec: per_sec(total.bytes),
        latency_us: Latency {
            p50: us(0.5),
            p99: us(0.99),
            p999: us(0.999),
            max: if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1e3
            },
        },
        errors: total.errors,
        corrupt: total.corrupt,
        connect_failures,
        active_conns: n_active as u64,
        idle_conns: idle.len() as u64,
        duration_s,
        size: args.size as u64,
        rate: args.rate,
        idle_requested: requested as u64,
        threads: threads as u64,
    })
}

/// Connects with a timeout (a full accept queue drops SYNs, and a blocking
/// connect would then wait for minutes), then switches to non-blocking.
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Creates an epoll instance.
fn epoll() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked and then owned.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: epoll_create1 just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn epoll_ctl(epfd: RawFd, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a live epoll_event.
    cvt(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) }).map(drop)
}

fn epoll_wait(epfd: RawFd, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `events` is a live buffer of that many entries.
    let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, timeout_ms) };
    match cvt(n) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Milliseconds from `now` until `deadline`, rounded up, at most `cap`.
fn timeout_ms(now: u64, deadline: u64, cap: u64) -> i32 {
    (deadline.saturating_sub(now).div_ceil(1_000_000)).min(cap) as i32
}

/// The held idle connections, watched for the server closing them.
struct IdleSet {
    epfd: OwnedFd,
    /// Indexed by token; `None` once the server closed it.
    conns: Vec<Option<TcpStream>>,
    open: usize,
}

impl IdleSet {
    fn new() -> io::Result<IdleSet> {
        Ok(IdleSet {
            epfd: epoll()?,
            conns: Vec::new(),
            open: 0,
        })
    }

    fn len(&self) -> usize {
        self.open
    }

    fn add(&mut self, s: TcpStream) -> io::Result<()> {
        let events = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        epoll_ctl(
            self.epfd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            s.as_raw_fd(),
            events,
            self.conns.len() as u64,
        )?;
        self.conns.push(Some(s));
        self.open += 1;
        Ok(())
    }

    /// Waits up to `timeout_ms` and drops the idle connections the server
    /// closed (any readiness on an idle connection means that: nothing is
    /// ever sent on them). Returns how many were dropped.
    fn reap(&mut self, timeout_ms: i32) -> io::Result<usize> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let n = epoll_wait(self.epfd.as_raw_fd(), &mut events, timeout_ms)?;
        let mut dropped = 0;
        for ev in &events[..n] {
            if let Some(s) = self.conns.get_mut(ev.u64 as usize).and_then(Option::take) {
                let _ = epoll_ctl(
                    self.epfd.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    s.as_raw_fd(),
                    0,
                    0,
                );
                self.open -= 1;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Gives the server time to accept — or refuse — the idle connections:
    /// done once 200 ms pass without one being closed (2 s at most).
    fn settle(&mut self) -> io::Result<()> {
        let give_up = monotonic_ns() + 2_000_000_000;
        let mut quiet_since = monotonic_ns();
        loop {
            let now = monotonic_ns();
            if now >= give_up || now - quiet_since >= 200_000_000 {
                return Ok(());
            }
            if self.reap(50)? > 0 {
                quiet_since = monotonic_ns();
            }
        }
    }

    /// The main thread's job during the run: notice idle connections the
    /// server closes, and draw the progress line when stderr is a terminal.
    fn watch_until(&mut self, end: u64, plan: &Plan, progress: &Progress, active: usize) {
        let tty = sys::is_terminal(2);
        let mut next_tick = monotonic_ns() + 1_000_000_000;
        let mut last_messages = 0;
        loop {
            let now = monotonic_ns();
            if now >= end {
                break;
            }
            if now >= next_tick {
                next_tick = now + 1_000_000_000;
                if tty {
                    let messages = progress.messages.load(Relaxed);
                    eprint!(
                        "\r{:6.1}s  {:>10.0} msg/s  {} active, {} idle  errors {}   ",
                        (now - plan.t0) as f64 / 1e9,
                        (messages - last_messages) as f64,
                        active,
                        self.open,
                        progress.errors.load(Relaxed)
                    );
                    last_messages = messages;
                }
            }
            let wait = timeout_ms(now, end.min(next_tick), 1000);
            if self.reap(wait).is_err() {
                thread::sleep(Duration::from_millis(wait as u64));
            }
        }
        if tty {
            eprint!("\r{:70}\r", "");
        }
    }
}

/// When things happen, in `CLOCK_MONOTONIC` nanoseconds: the run starts
/// (`t0`), measuring starts (`warm_end`), the run ends (`end`).
#[derive(Debug, Clone, Copy)]
struct Plan {
    t0: u64,
    warm_end: u64,
    end: u64,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        let t0 = monotonic_ns();
        let warm_end = t0 + args.warmup.unwrap_or_default().as_nanos() as u64;
        Plan {
            t0,
            warm_end,
            end: warm_end + args.duration.as_nanos() as u64,
        }
    }
}

/// What a worker measured.
struct Outcome {
    hist: Histogram<u64>,
    messages: u64,
    bytes: u64,
    errors: u64,
    corrupt: u64,
    stopped_at: u64,
}

impl Outcome {
    fn empty() -> Outcome {
        Outcome {
            // 1 ns .. 1 hour at 3 significant digits; always valid bounds.
            hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("constant histogram bounds are valid"),
            messages: 0,
            bytes: 0,
            errors: 0,
            corrupt: 0,
            stopped_at: 0,
        }
    }

    fn merge(&mut self, o: Outcome) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&o.hist);
        self.messages += o.messages;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.corrupt += o.corrupt;
        self.stopped_at = self.stopped_at.max(o.stopped_at);
    }
}

/// One active connection's place in its stream.
struct Active {
    /// `None` once it failed.
    stream: Option<TcpStream>,
    /// Global connection number, for messages and the pattern seed.
    index: usize,
    seed: u64,
    /// Stream offsets: bytes asked to be sent, sent, received and verified.
    send_end: u64,
    sent: u64,
    recvd: u64,
    /// Start times (send or scheduled) of messages not yet fully echoed.
    starts: VecDeque<u64>,
    /// EPOLLOUT registered because a send came up short.
    want_out: bool,
}

const TIMER_TOKEN: u64 = u64::MAX;

/// How long the end-of-run drain waits for the server to finish echoing.
const DRAIN_LIMIT_NS: u64 = 2_000_000_000;

struct Worker {
    epfd: OwnedFd,
    timer: Option<OwnedFd>,
    conns: Vec<Active>,
    pattern: Arc<Pattern>,
    progress: Arc<Progress>,
    scratch: Vec<u8>,
    out: Outcome,
    size: u64,
    /// Set when the run starts.
    plan: Plan,
    /// Open loop: this worker's share of the rate, and messages issued.
    rate: Option<f64>,
    issued: u64,
    armed: u64,
    /// The run is over; only in-flight echoes are still read.
    draining: bool,
}

impl Worker {
    fn new(
        streams: Vec<TcpStream>,
        first_index: usize,
        size: u64,
        rate: Option<f64>,
        pattern: &Arc<Pattern>,
        progress: &Arc<Progress>,
    ) -> anyhow::Result<Worker> {
        let epfd = epoll().context("cannot create an epoll instance")?;
        let mut conns = Vec::with_capacity(streams.len());
        for (i, s) in streams.into_iter().enumerate() {
            epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                s.as_raw_fd(),
                libc::EPOLLIN as u32,
                i as u64,
            )
            .context("cannot watch a connection")?;
            let index = first_index + i;
            conns.push(Active {
                stream: Some(s),
                index,
                seed: Pattern::stream_seed(index),
                send_end: 0,
                sent: 0,
                recvd: 0,
                starts: VecDeque::new(),
                want_out: false,
            });
        }
        let timer = match rate {
            Some(_) => {
                // SAFETY: plain syscall; the result is checked and then owned.
                let fd = cvt(unsafe {
                    libc::timerfd_create(
                        libc::CLOCK_MONOTONIC,
                        libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                    )
                })
                .context("cannot create a timer")?;
                // SAFETY: timerfd_create just returned this descriptor.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                epoll_ctl(
                    epfd.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    fd.as_raw_fd(),
                    libc::EPOLLIN as u32,
                    TIMER_TOKEN,
                )
                .context("cannot watch the timer")?;
                Some(fd)
            }
            None => None,
        };
        Ok(Worker {
            epfd,
            timer,
            conns,
            pattern: Arc::clone(pattern),
            progress: Arc::clone(progress),
            scratch: vec![0; MAX_SLICE],
            out: Outcome::empty(),
            size,
            plan: Plan {
                t0: 0,
                warm_end: 0,
                end: 0,
            },
            rate,
            issued: 0,
            armed: 0,
            draining: false,
        })
    }

    fn run(mut self, plan: Plan) -> anyhow::Result<Outcome> {
        self.plan = plan;
        if self.rate.is_none() {
            for i in 0..self.conns.len() {
                self.issue(i, monotonic_ns());
            }
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut published = (0, 0);
        loop {
            let now = monotonic_ns();
            if now >= self.plan.end {
                break;
            }
            if self.rate.is_some() {
                self.issue_due(now)?;
            }
            let n = epoll_wait(
                self.epfd.as_raw_fd(),
                &mut events,
                timeout_ms(now, self.plan.end, 100),
            )
            .context("epoll_wait failed")?;
            for ev in &events[..n] {
                let (mask, token) = (ev.events, ev.u64);
                if token == TIMER_TOKEN {
                    self.drain_timer();
                    continue;
                }
                let i = token as usize;
                if mask & libc::EPOLLOUT as u32 != 0 {
                    self.send(i);
                }
                if mask & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                    self.receive(i);
                }
            }
            // Publish deltas for the progress line.
            let now_counts = (self.out.messages, self.out.errors);
            self.progress
                .messages
                .fetch_add(now_counts.0 - published.0, Relaxed);
            self.progress
                .errors
                .fetch_add(now_counts.1 - published.1, Relaxed);
            published = now_counts;
        }
        self.out.stopped_at = monotonic_ns();
        self.drain(&mut events);
        Ok(self.out)
    }

    /// Ends politely: half-closes every connection and reads (and verifies)
    /// the echoes still in flight until the server closes its side, so the
    /// server sees a clean EOF rather than a reset of unread data. Gives up
    /// after [`DRAIN_LIMIT_NS`]; nothing received here is counted.
    fn drain(&mut self, events: &mut [libc::epoll_event]) {
        self.draining = true;
        let epfd = self.epfd.as_raw_fd();
        for (i, c) in self.conns.iter_mut().enumerate() {
            if let Some(s) = &c.stream {
                // SAFETY: plain syscall on a socket we own.
                unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_WR) };
                if c.want_out {
                    c.want_out = false;
                    let _ = epoll_ctl(
                        epfd,
                        libc::EPOLL_CTL_MOD,
                        s.as_raw_fd(),
                        libc::EPOLLIN as u32,
                        i as u64,
                    );
                }
            }
        }
        let give_up = monotonic_ns() + DRAIN_LIMIT_NS;
        while self.conns.iter().any(|c| c.stream.is_some()) {
            let now = monotonic_ns();
            if now >= give_up {
                break;
            }
            let Ok(n) = epoll_wait(epfd, events, timeout_ms(now, give_up, 100)) else {
                break;
            };
            for ev in &events[..n] {
                if ev.u64 != TIMER_TOKEN {
                    self.receive(ev.u64 as usize);
                }
            }
        }
    }

    /// Open loop: issue every message whose scheduled time has come, then
    /// arm the timer for the next one.
    fn issue_due(&mut self, now: u64) -> anyhow::Result<()> {
        let Some(rate) = self.rate else { return Ok(()) };
        let t0 = self.plan.t0;
        let at = move |k: u64| t0 + (k as f64 * 1e9 / rate) as u64;
        let n = self.conns.len() as u64;
        while at(self.issued) <= now {
            let k = self.issued;
            self.issued += 1;
            self.issue((k % n) as usize, at(k));
        }
        let next = at(self.issued);
        if next != self.armed {
            self.armed = next;
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: (next / 1_000_000_000) as libc::time_t,
                    tv_nsec: (next % 1_000_000_000) as libc::c_long,
                },
            };
            if let Some(timer) = &self.timer {
                // SAFETY: `spec` is a live itimerspec; old value not wanted.
                cvt(unsafe {
                    libc::timerfd_settime(
                        timer.as_raw_fd(),
                        libc::TFD_TIMER_ABSTIME,
                        &spec,
                        std::ptr::null_mut(),
                    )
                })
                .context("cannot arm the timer")?;
            }
        }
        Ok(())
    }

    fn drain_timer(&mut self) {
        if let Some(timer) = &self.timer {
            // Non-blocking; EAGAIN just means it was already drained.
            let mut expirations = [0u8; 8];
            // SAFETY: reading at most 8 bytes into an 8-byte buffer.
            unsafe { libc::read(timer.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
        }
    }

    /// Adds one message, started at `start`, to connection `i` and sends.
    fn issue(&mut self, i: usize, start: u64) {
        let c = &mut self.conns[i];
        if c.stream.is_none() {
            return;
        }
        c.starts.push_back(start);
        c.send_end += self.size;
        self.send(i);
    }

    /// Sends as much of the connection's owed bytes as the socket takes;
    /// EPOLLOUT is watched only while some are left.
    fn send(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(fd) = c.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        while c.sent < c.send_end {
            let len = (c.send_end - c.sent).min(MAX_SLICE as u64) as usize;
            let bytes = self.pattern.slice(c.seed, c.sent, len);
            match sys::send(fd, bytes) {
                Ok(n) => c.sent += n as u64,
                Err(e) if sys::would_block(&e) => break,
                Err(e) => {
                    return self.fail(i, format_args!("send failed: {e}"), false);
                }
            }
        }
        let want_out = c.sent < c.send_end;
        if want_out != c.want_out {
            c.want_out = want_out;
            let events = if want_out {
                libc::EPOLLIN | libc::EPOLLOUT
            } else {
                libc::EPOLLIN
            } as u32;
            if let Err(e) = epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_MOD,
                fd,
                events,
                i as u64,
            ) {
                self.fail(i, format_args!("epoll_ctl failed: {e}"), false);
            }
        }
    }

    /// Reads what arrived, verifies every byte, completes messages.
    fn receive(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(fd) = c.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let n = match sys::recv(fd, &mut self.scratch) {
            Ok(0) if self.draining => {
                // The server's answer to our half-close: a clean end.
                if let Some(s) = c.stream.take() {
                    let _ = epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, 0, 0);
                    drop(s);
                }
                return;
            }
            Ok(0) => return self.fail(i, format_args!("the server closed the connection"), false),
            Ok(n) => n,
            Err(e) if sys::would_block(&e) => return,
            Err(e) => return self.fail(i, format_args!("receive failed: {e}"), false),
        };
        let data = &self.scratch[..n];
        if c.recvd + n as u64 > c.sent {
            let extra = c.recvd + n as u64 - c.sent;
            return self.fail(
                i,
                format_args!("the server echoed {extra} bytes more than were sent"),
                true,
            );
        }
        if let Some(j) = self.pattern.first_mismatch(c.seed, c.recvd, data) {
            let at = c.recvd + j as u64;
            let expected = self.pattern.slice(c.seed, at, 1)[0];
            let got = data[j];
            return self.fail(
                i,
                format_args!(
                    "corrupt echo at stream byte {at}: got {got:#04x}, sent {expected:#04x}"
                ),
                true,
            );
        }
        c.recvd += n as u64;
        let now = monotonic_ns();
        let measuring = now >= self.plan.warm_end && !self.draining;
        if measuring {
            self.out.bytes += n as u64;
        }
        // Messages are back to back in the stream: the oldest outstanding
        // one is complete once `recvd` passes its end.
        let mut done = c.send_end / self.size - c.starts.len() as u64;
        let mut completed = 0;
        while let Some(&start) = c.starts.front() {
            if c.recvd < (done + 1) * self.size {
                break;
            }
            c.starts.pop_front();
            done += 1;
            completed += 1;
            if measuring {
                self.out.messages += 1;
                self.out
                    .hist
                    .saturating_record(now.saturating_sub(start).max(1));
            }
        }
        // Closed loop: the next message goes out as soon as the echo is in.
        if self.rate.is_none() && completed > 0 && !self.draining {
            self.issue(i, monotonic_ns());
        }
    }

    /// Counts a failed connection, logs why, and closes it.
    fn fail(&mut self, i: usize, why: std::fmt::Arguments<'_>, corrupt: bool) {
        let c = &mut self.conns[i];
        log_error(format_args!("connection {}: {why}", c.index));
        self.out.errors += 1;
        if corrupt {
            self.out.corrupt += 1;
        }
        if let Some(s) = c.stream.take() {
            let _ = epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                s.as_raw_fd(),
                0,
                0,
            );
            drop(s);
        }
        c.starts.clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
