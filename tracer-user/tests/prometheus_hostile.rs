//! `/metrics` against clients that misbehave or merely differ: idle
//! connections by the thousand while muxtrace has few fds, methods other
//! than GET, a scrape before the first interval, and an address beyond
//! loopback. Tracing must not notice any of it. Traffic stays on loopback.
mod common;

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    process::Command,
    time::{Duration, Instant},
};

use common::*;
use harness::{
    muxtrace::{json_lines, process, ATTACHED, ATTACH_TIMEOUT},
    Stream,
};

/// A process that makes a poll every 10 ms until it is stopped.
fn steady() -> Proc {
    ready("hardship", &["steady", "10"])
}

/// One HTTP/1.1 exchange on a fresh connection, read to its end.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn exchange(port: u16, method: &str, path: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("the whole answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Raises this process's fd limit to its hard limit: the test holds more
/// connections than a default soft limit allows.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// 1,100 idle connections — more than muxtrace has fds — held open while
/// muxtrace traces a live process under a limit of 256 fds. Before the
/// connection cap and timeouts, every fd went to idle clients, /proc could
/// no longer be opened, the failed read was taken for the target's exit,
/// and muxtrace ended its session. Now the target stays alive, its calls
/// keep being counted, and a real Prometheus still scrapes muxtrace.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn idle_connections_beyond_the_fd_limit_cannot_stop_tracing() {
    let have = raise_fd_limit();
    assert!(have >= 2_000, "this test needs 2,000 fds, has {have}");
    let target = steady();
    let pid = target.pid();
    let port = free_port();
    let exporter = format!("127.0.0.1:{port}");
    let pid_arg = pid.to_string();
    let mt = spawn(
        Command::new("prlimit")
            .args(["--nofile=256:256", "--", MUXTRACE])
            .args(["--pid", &pid_arg, "--json", "--interval", "300ms"])
            .args(["--prometheus", &exporter]),
    );
    mt.wait_line(ATTACHED, ATTACH_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Two intervals first, so those that follow are all under the flood.
    let before = eventually("two JSON lines", Duration::from_secs(20), || {
        let n = mt.lines(Stream::Stdout).len();
        (n >= 2).then_some(n)
    });

    let addr: SocketAddr = exporter.parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            idle.push(c);
        }
    }
    let opened = idle.len();
    // Long enough for many intervals and for /proc to be read every 100 ms.
    std::thread::sleep(Duration::from_secs(4));
    let mut mt = mt;
    assert!(
        mt.is_running(),
        "muxtrace ended under the flood of {opened} connections:\n{}",
        mt.stderr()
    );
    assert!(opened >= 1_000, "only {opened} connections opened");
    let lines = json_lines(&mt.stdout()).unwrap_or_else(|e| panic!("{e:#}"));
    let flooded = &lines[before..];
    assert!(flooded.len() >= 8, "{} lines in 4 s", flooded.len());
    for l in flooded {
        let p = process(&l.metrics, pid).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(p.alive, "taken for exited at {} s", l.metrics.elapsed_s);
    }
    for l in &flooded[flooded.len() - 3..] {
        let p = process(&l.metrics, pid).unwrap();
        assert!(
            p.interval.calls > 0,
            "no calls counted at {} s: {:?}",
            l.metrics.elapsed_s,
            p.interval
        );
    }

    // The idle connections are still held (by us) while Prometheus scrapes.
    let prometheus = Prometheus::scraping(&exporter);
    let calls = eventually(
        "Prometheus's first successful scrape of muxtrace",
        Duration::from_secs(90),
        || {
            let up = prometheus.value("up{job=\"muxtrace\"}")?;
            let calls = prometheus.value(&format!(
                "muxtrace_syscalls_total{{pid=\"{pid}\",syscall=\"poll\"}}"
            ))?;
            (up == 1.0 && calls > 0.0).then_some(calls)
        },
    );
    assert!(calls > 0.0);
    let counted: u64 = flooded
        .iter()
        .map(|l| process(&l.metrics, pid).unwrap().interval.calls)
        .sum();
    eprintln!(
        "{opened} idle connections held against a 256-fd limit: {} intervals in 4 s, \
         all alive, {counted} polls counted; Prometheus scraped up=1, {calls} polls",
        flooded.len()
    );
    drop(idle);
    assert!(mt.is_running(), "{}", mt.stderr());
    mt.signal(libc::SIGINT);
    let (stdout, _) = finish_ok(mt);
    let last = harness::muxtrace::final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(process(&last, pid).unwrap().alive);
    drop(target);
}

/// Clients that connect and send nothing, as many as the connection cap,
/// cannot lock a scraper out: the scrape that follows them is answered at
/// once. (They held every place until the 5 s header timeout, and a
/// scrape meanwhile was closed unanswered.)
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn silent_clients_at_the_connection_cap_leave_a_scraper_its_turn() {
    let target = steady();
    let mt = muxtrace(&[
        "--pid",
        &target.pid().to_string(),
        "--json",
        "--prometheus",
        "0",
    ]);
    let port = served_port(&mt);
    let silent: Vec<TcpStream> = (0..tracer_user::PROMETHEUS_MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    // Every one accepted and holding its place.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let answer = exchange(port, "GET", "/metrics");
        assert_eq!(answer.status, 200);
        assert!(
            String::from_utf8_lossy(&answer.body).contains("muxtrace_syscalls_total"),
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    drop(silent);
    mt.signal(libc::SIGINT);
    finish_ok(mt);
    assert_detached();
}

/// The port of `--prometheus ADDR` from muxtrace's own line.
fn served_port(mt: &Proc) -> u16 {
    let line = mt
        .wait_line("Prometheus metrics at http://", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e:#}"));
    line.rsplit_once(':')
        .and_then(|(_, rest)| rest.strip_suffix("/metrics"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// `le` as Prometheus's text format wants it: a plain decimal, short, and
/// the exact bound of a power-of-two bucket — `2^b − 1` ns written in
/// seconds, or `2^b − 1` fds.
fn check_le(line: &str, seconds: bool) {
    let le = line
        .split("le=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no le in {line}"));
    if le == "+Inf" {
        return;
    }
    assert!(
        le.len() <= 15 && le.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "not a short decimal: {line}"
    );
    let (int, frac) = le.split_once('.').unwrap_or((le, ""));
    assert!(frac.len() <= 9 && !frac.ends_with('0'), "{line}");
    let int: u64 = int.parse().unwrap();
    let value = match seconds {
        true => {
            let frac: u64 = format!("{frac:0<9}").parse().unwrap();
            int * 1_000_000_000 + frac
        }
        false => {
            assert!(frac.is_empty(), "a count with a fraction: {line}");
            int
        }
    };
    assert!(
        (value + 1).is_power_of_two(),
        "{le} is not 2^b - 1 {}: {line}",
        if seconds { "ns" } else { "" }
    );
}

/// A scrape right after "attached" already has the traced process; HEAD
/// answers like GET with no body; other methods get 405 with `Allow`; the
/// histogram bounds are exact short decimals; and an address beyond
/// loopback is warned about (the test itself talks to 127.0.0.1 only).
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn metrics_endpoint_speaks_http_properly_from_the_start() {
    let target = steady();
    let pid = target.pid();
    // One interval in 5 s: the first scrapes below come before it.
    let mt = muxtrace(&[
        "--pid",
        &pid.to_string(),
        "--summary",
        "--interval",
        "5s",
        "--prometheus",
        "0.0.0.0:0",
    ]);
    let attached = Instant::now();
    let port = served_port(&mt);
    let warning = mt
        .wait_line("is not a loopback address", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(warning.starts_with("muxtrace: 0.0.0.0 "), "{warning}");

    let early = exchange(port, "GET", "/metrics");
    let early_at = attached.elapsed();
    assert_eq!(early.status, 200);
    let text = String::from_utf8(early.body).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with(&format!(
            "muxtrace_process_alive{{pid=\"{pid}\",comm=\"hardship\""
        )) && l.ends_with(" 1")),
        "a scrape {early_at:?} after attaching, before the first interval:\n{text}"
    );

    // HEAD: GET's status and length, no body. The figures change every
    // interval, so GET is asked again right after when the two differ.
    let (head, get) = (0..5)
        .map(|_| {
            (
                exchange(port, "HEAD", "/metrics"),
                exchange(port, "GET", "/metrics"),
            )
        })
        .find(|(h, g)| h.header("content-length") == Some(&g.body.len().to_string()))
        .expect("HEAD's Content-Length is GET's body length");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD with a body");
    assert_eq!(head.header("content-type"), get.header("content-type"));
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let refused = exchange(port, method, "/metrics");
        assert_eq!(refused.status, 405, "{method}");
        assert_eq!(refused.header("allow"), Some("GET, HEAD"), "{method}");
    }
    assert_eq!(exchange(port, "GET", "/nothing-here").status, 404);

    // After the first interval: histograms, each bound exact.
    let text = eventually("a poll duration histogram", Duration::from_secs(30), || {
        http_get(port, "/metrics").filter(|t| {
            t.contains(&format!(
                "muxtrace_syscall_duration_seconds_count{{pid=\"{pid}\",comm=\"hardship\",syscall=\"poll\"}}"
            ))
        })
    });
    let mut bounds = 0;
    for line in text.lines().filter(|l| l.contains("_bucket{")) {
        let name = line.split('{').next().unwrap_or_default();
        check_le(line, name.ends_with("_seconds_bucket"));
        bounds += 1;
    }
    assert!(bounds >= 3, "{text}");
    // The 10 ms polls: 2^24 - 1 ns is the bound just above them.
    assert!(text.contains("le=\"0.016777215\""), "{text}");
    mt.signal(libc::SIGINT);
    finish_ok(mt);
}
