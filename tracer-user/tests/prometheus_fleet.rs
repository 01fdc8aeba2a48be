//! A real Prometheus scrapes `muxtrace --all` over 300 busy processes with
//! `--prometheus-top`: at most N pids and `other` have series, every
//! counter only grows (Prometheus's own `resets()` says so), `other` holds
//! the rest, and a process that becomes the busiest gets series of its own
//! with its exact count. Run as root, one at a time (`cargo xtask test`).
mod common;

use std::{
    fs,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

/// Processes with series of their own in this test.
const TOP: usize = 10;
/// Busy processes: each a poll that times out after 20 ms, again and again
/// (50 calls a second, a sliver of a CPU).
const BUSY: usize = 300;
/// The polls (timeout 0) the process that becomes the busiest makes: a few
/// hundred ms of CPU, far above the busy ones' noisy tens of µs to ms.
const BURST: u64 = 400_000;

/// Busy processes, each stopped by its pid when dropped.
struct Busy(Vec<Child>);

impl Busy {
    fn start(n: usize) -> Busy {
        let exe = workspace_bin("hardship");
        let mut children = Busy(Vec::with_capacity(n));
        for _ in 0..n {
            let child = Command::new(&exe)
                .args(["steady", "20"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("hardship steady");
            children.0.push(child);
        }
        children
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// A body sent in chunks (`Transfer-Encoding: chunked`, as Prometheus
/// sends longer answers), joined.
fn dechunk(body: &str) -> String {
    if body.starts_with('{') {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// The result vector of an instant query: (labels, value) pairs.
fn query(prom_port: u16, promql: &str) -> Vec<(serde_json::Value, f64)> {
    let body = http_get(
        prom_port,
        &format!("/api/v1/query?query={}", url_encode(promql)),
    )
    .unwrap_or_else(|| panic!("no answer to {promql}"));
    let body = dechunk(&body);
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{promql}: {e}: {body}"));
    assert_eq!(v["status"], "success", "{promql}: {body}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let value = r["value"][1].as_str().unwrap().parse().unwrap();
            (r["metric"].clone(), value)
        })
        .collect()
}

fn scalar(prom_port: u16, promql: &str) -> Option<f64> {
    query(prom_port, promql).first().map(|(_, v)| *v)
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_real_prometheus_scrapes_300_processes_bounded() {
    let busy = Busy::start(BUSY);
    // The one that will be the busiest: a waitlab under a name of its own.
    let dir = tempfile::tempdir().unwrap();
    let name = format!("mxtop{}", std::process::id() % 100_000);
    let exe = dir.path().join(&name);
    fs::copy(workspace_bin("waitlab"), &exe).unwrap();
    let burst = spawn(Command::new(&exe).args(["busy", &BURST.to_string(), "--linger", "120000"]));
    burst
        .wait_line("ready ", LONG)
        .unwrap_or_else(|e| panic!("{e:#}"));

    let port = free_port();
    let exporter = format!("127.0.0.1:{port}");
    let top = TOP.to_string();
    let started = Instant::now();
    let mt = muxtrace(&[
        "--all",
        "--prometheus",
        &exporter,
        "--prometheus-top",
        &top,
        "--interval",
        "500ms",
        "--summary",
    ]);
    let prometheus = Prometheus::scraping(&exporter);
    let prom_port = prometheus.port;

    // Every busy process admitted (at its first poll), all but TOP in other.
    let others = eventually(
        "the busy processes in pid=\"other\"",
        Duration::from_secs(60),
        || {
            let text = http_get(port, "/metrics")?;
            let line = text
                .lines()
                .find(|l| l.starts_with("muxtrace_traced_processes{series=\"other\"}"))?;
            let n: usize = line.rsplit(' ').next()?.parse().ok()?;
            (n >= BUSY - TOP).then_some(n)
        },
    );
    // Some readings with the fleet in place first: then the burst.
    std::thread::sleep(Duration::from_secs(8).saturating_sub(started.elapsed()));
    burst.signal(libc::SIGUSR1);
    let burst_pid = burst.pid().to_string();

    // It takes a place at once (it is busier than every shown process by
    // far, so it need not wait for one's readings), with its exact count.
    let own = format!("muxtrace_syscalls_total{{comm=\"{name}\",syscall=\"poll\"}}");
    let (labels, calls) = eventually(
        "the busiest process's own series in Prometheus",
        Duration::from_secs(60),
        || {
            query(prom_port, &format!("max_over_time({own}[5m])"))
                .into_iter()
                .next()
                .filter(|(_, v)| *v >= BURST as f64)
        },
    );
    assert_eq!(calls, BURST as f64, "{labels}");
    assert_eq!(labels["pid"], burst_pid.as_str(), "{labels}");

    // Several scrapes' worth of bounds, each checked at an instant.
    let by_family =
        "count by (__name__) (count by (__name__, pid) ({__name__=~\"muxtrace_.+\",pid!=\"\"}))";
    let mut other_seen = Vec::new();
    for _ in 0..6 {
        let families = query(prom_port, by_family);
        assert!(families.len() > 20, "{families:?}");
        for (family, pids) in &families {
            assert!(
                *pids <= (TOP + 1) as f64,
                "{} has {pids} pids, more than {TOP} and other",
                family["__name__"]
            );
        }
        let other = scalar(
            prom_port,
            "muxtrace_syscalls_total{pid=\"other\",comm=\"other\",syscall=\"poll\"}",
        )
        .expect("pid=\"other\" in Prometheus");
        other_seen.push(other);
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        other_seen.windows(2).all(|w| w[0] <= w[1]) && other_seen[0] < other_seen[5],
        "other's polls must grow: {other_seen:?}"
    );
    // No counter of any series went down while scraped, by Prometheus's own
    // count of resets, family by family (resets drops the name).
    let names = dechunk(&http_get(prom_port, "/api/v1/label/__name__/values").unwrap());
    let names: serde_json::Value = serde_json::from_str(&names).unwrap();
    let counters: Vec<&str> = names["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .filter(|n| n.starts_with("muxtrace_"))
        .filter(|n| {
            ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|s| n.ends_with(s))
        })
        .collect();
    assert!(counters.len() > 20, "{counters:?}");
    for name in &counters {
        let resets = scalar(prom_port, &format!("sum(resets({name}[5m]))")).unwrap_or(0.0);
        assert_eq!(resets, 0.0, "{name} went down");
    }
    let pids_ever = scalar(
        prom_port,
        "count(count by (pid) (last_over_time(muxtrace_syscalls_total[5m])))",
    )
    .unwrap();
    let samples = scalar(
        prom_port,
        "max_over_time(scrape_samples_scraped{job=\"muxtrace\"}[5m])",
    )
    .unwrap();
    let scrape_avg = scalar(
        prom_port,
        "avg_over_time(scrape_duration_seconds{job=\"muxtrace\"}[5m])",
    )
    .unwrap();
    let scrape = scalar(
        prom_port,
        "max_over_time(scrape_duration_seconds{job=\"muxtrace\"}[5m])",
    )
    .unwrap();

    // muxtrace's own answer: bounded in size and quick.
    let t = Instant::now();
    let text = http_get(port, "/metrics").expect("/metrics");
    let took = t.elapsed();
    assert!(text.len() < 1 << 20, "{} bytes", text.len());
    assert!(took < Duration::from_secs(1), "{took:?}");
    eprintln!(
        "fleet: {others} processes in other, {pids_ever} pids with series over the run, \
         {samples} samples per scrape at most, scrape {:.1} ms on average, {:.1} ms at most; \
         /metrics {} bytes in {:.1} ms",
        scrape_avg * 1e3,
        scrape * 1e3,
        text.len(),
        took.as_secs_f64() * 1e3
    );

    mt.signal(libc::SIGINT);
    finish_ok(mt);
    drop(burst);
    drop(busy);
}
