//! A real Prometheus server scrapes muxtrace tracing a real echo server under
//! load, and its query API reports a non-zero rate of the server's syscall.
mod common;

use std::time::Duration;

use common::*;

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn prometheus_scrapes_a_nonzero_rate_of_the_servers_syscall() {
    let server = echo_server();
    let _load = background_load(&server.addr().to_string(), 4, 2000);
    let exporter_port = free_port();
    let pid = server.pid().to_string();
    let exporter = format!("127.0.0.1:{exporter_port}");
    let mt = muxtrace(&[
        "--pid",
        &pid,
        "--prometheus",
        &exporter,
        "--interval",
        "500ms",
        "--summary",
    ]);

    // muxtrace's own endpoint first: the exposition is there and well formed.
    let text = eventually(
        "an epoll_wait series at /metrics",
        Duration::from_secs(20),
        || http_get(exporter_port, "/metrics").filter(|b| b.contains("syscall=\"epoll_wait\"")),
    );
    assert!(
        text.contains("# TYPE muxtrace_syscalls_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE muxtrace_syscall_duration_seconds histogram"),
        "{text}"
    );

    let prometheus = Prometheus::scraping(&exporter);
    let prom_port = prometheus.port;
    let query = url_encode(&format!(
        "rate(muxtrace_syscalls_total{{pid=\"{pid}\",syscall=\"epoll_wait\"}}[5s])"
    ));
    let rate = eventually(
        "a non-zero rate in Prometheus",
        Duration::from_secs(90),
        || {
            let body = http_get(prom_port, &format!("/api/v1/query?query={query}"))?;
            let v: serde_json::Value = serde_json::from_str(&body).expect("query API JSON");
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|&rate| rate > 0.0)
        },
    );
    assert!(
        rate > 10.0,
        "epoll_wait rate {rate}/s under 2,000 messages/s"
    );
    mt.signal(libc::SIGINT);
    finish_ok(mt);
}
