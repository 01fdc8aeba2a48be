//! The load generators real servers are measured with — ApacheBench (`ab`)
//! for nginx, `redis-benchmark` for redis — run to the end and their
//! reports read back.

use std::{process::Command, time::Duration};

use anyhow::{anyhow, bail, Result};

use crate::{echo::pinned, proc::Proc};

/// What `ab` reports about a run: every figure counted by ab itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbReport {
    pub complete: u64,
    pub failed: u64,
    /// Responses whose status was not 2xx.
    pub non_2xx: u64,
    /// Bytes ab received: headers and bodies.
    pub total_transferred: u64,
    /// Of which bodies.
    pub html_transferred: u64,
    pub requests_per_sec: f64,
}

/// `ab -q -n REQUESTS -c CONCURRENCY URL` (one connection per request: no
/// keep-alive), to the end.
pub fn run_ab(url: &str, requests: u64, concurrency: u64, timeout: Duration) -> Result<AbReport> {
    let p = Proc::spawn(Command::new("ab").args([
        "-q",
        "-n",
        &requests.to_string(),
        "-c",
        &concurrency.to_string(),
        url,
    ]))?;
    let done = p.finish(timeout)?;
    if !done.status.success() {
        bail!(
            "ab exited with {}: {}{}",
            done.status,
            done.stdout,
            done.stderr
        );
    }
    parse_ab(&done.stdout)
}

/// The bytes of the request ab sends to `url`, from the one it prints at
/// `-v 2` (one request, made for this): every request of a run is the same.
pub fn ab_request_bytes(url: &str, timeout: Duration) -> Result<u64> {
    let p = Proc::spawn(Command::new("ab").args(["-v", "2", "-n", "1", "-c", "1", url]))?;
    let done = p.finish(timeout)?;
    parse_ab_request(&done.stdout)
}

/// ab prints `INFO: GET header == `, `---`, the request (lines ended by
/// `\r\n`, then an empty one), a newline and `---`.
pub fn parse_ab_request(text: &str) -> Result<u64> {
    let block = text
        .split_once(" header == \n---\n")
        .and_then(|(_, rest)| rest.split_once("\n\n---\n"))
        .map(|(request, _)| request)
        .ok_or_else(|| anyhow!("ab printed no request header:\n{text}"))?;
    // The request's own last "\n" is the first of the two before "---".
    Ok(block.len() as u64 + 1)
}

/// The figures of ab's report.
pub fn parse_ab(text: &str) -> Result<AbReport> {
    let field = |name: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.split_whitespace().next())
    };
    let count = |name: &str| -> Result<u64> {
        field(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("ab's report has no {name:?} line:\n{text}"))
    };
    Ok(AbReport {
        complete: count("Complete requests:")?,
        failed: count("Failed requests:")?,
        // Only written when there were some.
        non_2xx: field("Non-2xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        total_transferred: count("Total transferred:")?,
        html_transferred: count("HTML transferred:")?,
        requests_per_sec: field("Requests per second:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("ab's report has no requests per second:\n{text}"))?,
    })
}

/// Requests per second of each `redis-benchmark` test (`SET`, `GET`, …).
pub type RedisBenchReport = Vec<(String, f64)>;

/// `redis-benchmark -h 127.0.0.1 -p PORT -t TESTS -n REQUESTS -c CLIENTS
/// -P 1 --csv` (no pipelining), run on `cpu` when given.
pub fn run_redis_benchmark(
    port: u16,
    tests: &str,
    requests: u64,
    clients: u64,
    cpu: Option<u32>,
    timeout: Duration,
) -> Result<RedisBenchReport> {
    let mut cmd = pinned("redis-benchmark".as_ref(), cpu);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", tests])
        .args(["-n", &requests.to_string(), "-c", &clients.to_string()])
        .args(["-P", "1", "--csv"]);
    let done = Proc::spawn(&mut cmd)?.finish(timeout)?;
    if !done.status.success() {
        bail!(
            "redis-benchmark exited with {}: {}",
            done.status,
            done.stderr
        );
    }
    parse_redis_benchmark_csv(&done.stdout)
}

/// `"SET","41841.00",…` lines (after a `"test","rps",…` header).
pub fn parse_redis_benchmark_csv(text: &str) -> Result<RedisBenchReport> {
    let rows: RedisBenchReport = text
        .lines()
        .filter_map(|l| {
            let mut cols = l.split(',').map(|c| c.trim().trim_matches('"'));
            let test = cols.next()?;
            let rps = cols.next()?.parse().ok()?;
            Some((test.to_owned(), rps))
        })
        .collect();
    if rows.is_empty() {
        bail!("no redis-benchmark results in:\n{text}");
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AB: &str = "\
Server Software:        nginx/1.22.1
Server Hostname:        127.0.0.1
Server Port:            18080

Document Path:          /index.html
Document Length:        17510 bytes

Concurrency Level:      50
Time taken for tests:   1.432 seconds
Complete requests:      2000
Failed requests:        0
Total transferred:      35492000 bytes
HTML transferred:       35020000 bytes
Requests per second:    1396.65 [#/sec] (mean)
";

    #[test]
    fn ab_report() {
        let r = parse_ab(AB).unwrap();
        assert_eq!(r.complete, 2000);
        assert_eq!(r.failed, 0);
        assert_eq!(r.non_2xx, 0);
        assert_eq!(r.total_transferred, 35_492_000);
        assert_eq!(r.html_transferred, 35_020_000);
        assert_eq!(r.requests_per_sec, 1396.65);
        let with_errors = AB.replace(
            "Total transferred",
            "Non-2xx responses:      7\nTotal transferred",
        );
        assert_eq!(parse_ab(&with_errors).unwrap().non_2xx, 7);
        assert!(parse_ab("apr_socket_recv: Connection refused (111)").is_err());
    }

    #[test]
    fn ab_request() {
        let text = "Benchmarking 127.0.0.1 (be patient)...INFO: GET header == \n---\n\
                    GET / HTTP/1.0\r\nHost: 127.0.0.1:18099\r\nAccept: */*\r\n\r\n\n---\n\
                    LOG: header received:\n";
        let request = "GET / HTTP/1.0\r\nHost: 127.0.0.1:18099\r\nAccept: */*\r\n\r\n";
        assert_eq!(parse_ab_request(text).unwrap(), request.len() as u64);
        assert!(parse_ab_request("ab: invalid URL").is_err());
    }

    #[test]
    fn redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n\
                    \"SET\",\"41841.00\",\"0.601\",\"0.160\"\n\
                    \"GET\",\"43478.26\",\"0.580\",\"0.152\"\n";
        let r = parse_redis_benchmark_csv(text).unwrap();
        assert_eq!(
            r,
            vec![("SET".to_owned(), 41841.0), ("GET".to_owned(), 43478.26)]
        );
        assert!(parse_redis_benchmark_csv("Could not connect").is_err());
    }
}
