//! The load generators real servers are measured with — ApacheBench (`ab`)
//! for nginx, `redis-benchmark` for redis — run to the end and their
//! reports read back; and [`MemcachedClient`], a text-protocol client that
//! counts every byte it sends and receives.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpStream},
    process::Command,
    time::Duration,
};

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

/// A memcached text-protocol client, one request at a time, that counts
/// every byte it writes to and reads from its socket: the independent
/// witness of the bytes the server's socket calls moved. A reply is read
/// whole before the next request is sent, so nothing is read ahead.
pub struct MemcachedClient {
    stream: TcpStream,
    /// Bytes read but not yet parsed: the reply so far.
    buf: Vec<u8>,
    sent: u64,
    received: u64,
}

/// How long a reply may take.
const MEMCACHED_TIMEOUT: Duration = Duration::from_secs(30);

/// What the parsers return: the value and the bytes it took, or `None`
/// while the reply is not all there yet.
type Parsed<T> = Result<Option<(T, usize)>>;

impl MemcachedClient {
    pub fn connect(port: u16) -> Result<MemcachedClient> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .map_err(|e| anyhow!("cannot connect to memcached on port {port}: {e}"))?;
        stream.set_read_timeout(Some(MEMCACHED_TIMEOUT))?;
        stream.set_write_timeout(Some(MEMCACHED_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(MemcachedClient {
            stream,
            buf: Vec::new(),
            sent: 0,
            received: 0,
        })
    }

    /// `set KEY 0 0 LEN` (flags 0, never expires); an error unless the
    /// reply is `STORED`.
    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        check_key(key)?;
        let mut request = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        self.send(&request)?;
        self.reply(parse_set_reply)
    }

    /// `get KEY`: its value, `None` on a miss.
    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        self.send(format!("get {key}\r\n").as_bytes())?;
        self.reply(|buf| parse_get_reply(buf, key))
    }

    /// `stats`: every `STAT name value` line. The request's own 7 bytes are
    /// in the `bytes_read` it returns; its reply is in the `bytes_written`
    /// of the next one only (memcached counts a reply once sent).
    pub fn stats(&mut self) -> Result<BTreeMap<String, String>> {
        self.send(b"stats\r\n")?;
        self.reply(parse_stats_reply)
    }

    /// Bytes written to the socket so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Bytes read from the socket so far.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        self.sent += bytes.len() as u64;
        Ok(())
    }

    /// Reads until `parse` has a whole reply; an error if the server closes
    /// first or sends more than the reply (we never pipeline).
    fn reply<T>(&mut self, parse: impl Fn(&[u8]) -> Parsed<T>) -> Result<T> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some((value, used)) = parse(&self.buf)? {
                if used != self.buf.len() {
                    bail!(
                        "memcached sent {} bytes past its reply: {:?}",
                        self.buf.len() - used,
                        String::from_utf8_lossy(&self.buf[used..])
                    );
                }
                self.buf.clear();
                return Ok(value);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!(
                    "memcached closed the connection mid-reply after {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
            self.received += n as u64;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A key memcached's text protocol takes: 1 to 250 bytes, no spaces or
/// control characters (which would end or split the command line).
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 250 || key.bytes().any(|b| b <= b' ' || b == 0x7f) {
        bail!("not a memcached key: {key:?}");
    }
    Ok(())
}

/// The first `\r\n`-ended line of `buf` (without it) and the bytes up to
/// and including the `\r\n`; `None` until it is all there.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

/// An error line (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`, or anything
/// else not expected) as an error.
fn unexpected<T>(what: &str, line: &[u8]) -> Result<T> {
    bail!(
        "memcached answered {what} with {:?}",
        String::from_utf8_lossy(line)
    )
}

/// `STORED\r\n`.
pub fn parse_set_reply(buf: &[u8]) -> Parsed<()> {
    match line(buf) {
        None => Ok(None),
        Some((b"STORED", used)) => Ok(Some(((), used))),
        Some((other, _)) => unexpected("set", other),
    }
}

/// `END\r\n` (a miss), or `VALUE KEY FLAGS BYTES [CAS]\r\n`, BYTES of data,
/// `\r\nEND\r\n`.
pub fn parse_get_reply(buf: &[u8], key: &str) -> Parsed<Option<Vec<u8>>> {
    let Some((head, head_len)) = line(buf) else {
        return Ok(None);
    };
    if head == b"END" {
        return Ok(Some((None, head_len)));
    }
    let text = std::str::from_utf8(head).unwrap_or("");
    let words: Vec<&str> = text.split(' ').collect();
    let bytes = match words[..] {
        ["VALUE", k, flags, bytes] | ["VALUE", k, flags, bytes, _]
            if k == key && flags.parse::<u32>().is_ok() =>
        {
            bytes.parse::<usize>().ok()
        }
        _ => None,
    };
    let Some(bytes) = bytes else {
        return unexpected(&format!("get {key}"), head);
    };
    const TAIL: &[u8] = b"\r\nEND\r\n";
    let total = head_len + bytes + TAIL.len();
    if buf.len() < total {
        // Only a tail that cannot become the right one is an error early.
        let have = &buf[(head_len + bytes).min(buf.len())..];
        if !TAIL.starts_with(have) {
            return unexpected(&format!("get {key}"), have);
        }
        return Ok(None);
    }
    let tail = &buf[head_len + bytes..total];
    if tail != TAIL {
        return unexpected(&format!("get {key} (after its {bytes} bytes)"), tail);
    }
    Ok(Some((
        Some(buf[head_len..head_len + bytes].to_vec()),
        total,
    )))
}

/// `STAT NAME VALUE\r\n` lines up to `END\r\n`; a value may hold spaces.
pub fn parse_stats_reply(buf: &[u8]) -> Parsed<BTreeMap<String, String>> {
    let mut stats = BTreeMap::new();
    let mut at = 0;
    while let Some((l, used)) = line(&buf[at..]) {
        at += used;
        if l == b"END" {
            return Ok(Some((stats, at)));
        }
        let text = String::from_utf8_lossy(l);
        let Some((name, value)) = text
            .strip_prefix("STAT ")
            .and_then(|rest| rest.split_once(' '))
        else {
            return unexpected("stats", l);
        };
        stats.insert(name.to_owned(), value.to_owned());
    }
    Ok(None)
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

    /// Each prefix of a whole reply is "not yet"; the whole is parsed and
    /// says how many bytes it took, with more bytes after it left alone.
    fn parses_only_when_whole<T: std::fmt::Debug + PartialEq>(
        reply: &[u8],
        parse: impl Fn(&[u8]) -> Parsed<T>,
        want: T,
    ) {
        for cut in 0..reply.len() {
            assert_eq!(parse(&reply[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(parse(reply).unwrap(), Some((want, reply.len())));
        let mut more = reply.to_vec();
        more.extend_from_slice(b"STORED\r\n");
        let (_, used) = parse(&more).unwrap().unwrap();
        assert_eq!(used, reply.len());
    }

    #[test]
    fn memcached_set_reply() {
        parses_only_when_whole(b"STORED\r\n", parse_set_reply, ());
        for bad in [
            &b"NOT_STORED\r\n"[..],
            b"SERVER_ERROR object too large for cache\r\n",
            b"ERROR\r\n",
        ] {
            let e = parse_set_reply(bad).unwrap_err();
            assert!(format!("{e}").contains("memcached answered set"), "{e}");
        }
    }

    #[test]
    fn memcached_get_reply_a_value_a_miss_and_a_value_holding_the_end_marker() {
        parses_only_when_whole(
            b"VALUE k1 0 5\r\nhello\r\nEND\r\n",
            |b| parse_get_reply(b, "k1"),
            Some(b"hello".to_vec()),
        );
        parses_only_when_whole(b"END\r\n", |b| parse_get_reply(b, "k1"), None);
        // The data is taken by its length, whatever it holds; a CAS column
        // (gets) is allowed.
        let data = b"\r\nEND\r\nVALUE x 0 1\r\n";
        let mut reply = format!("VALUE k 7 {} 42\r\n", data.len()).into_bytes();
        reply.extend_from_slice(data);
        reply.extend_from_slice(b"\r\nEND\r\n");
        parses_only_when_whole(&reply, |b| parse_get_reply(b, "k"), Some(data.to_vec()));
        let empty = b"VALUE k 0 0\r\n\r\nEND\r\n";
        parses_only_when_whole(empty, |b| parse_get_reply(b, "k"), Some(Vec::new()));
    }

    #[test]
    fn memcached_get_reply_errors() {
        let get = |b: &[u8]| parse_get_reply(b, "k");
        // Another key, a length that is not a number, an error line.
        assert!(get(b"VALUE other 0 1\r\nx\r\nEND\r\n").is_err());
        assert!(get(b"VALUE k 0 x\r\n").is_err());
        assert!(get(b"SERVER_ERROR out of memory\r\n").is_err());
        assert!(get(b"CLIENT_ERROR bad command line format\r\n").is_err());
        // Data longer than said: the tail is wrong, early or whole.
        assert!(get(b"VALUE k 0 1\r\nxy").is_err());
        assert!(get(b"VALUE k 0 1\r\nxy\r\nEND\r\n").is_err());
        assert!(get(b"VALUE k 0 1\r\nx\r\nENDS\r\n").is_err());
    }

    #[test]
    fn memcached_stats_reply() {
        let reply = b"STAT pid 4242\r\nSTAT bytes_read 7\r\n\
                      STAT version 1.6.18\r\nSTAT libevent 2.1.12-stable\r\n\
                      STAT odd a value with spaces\r\nEND\r\n";
        let want: BTreeMap<String, String> = [
            ("pid", "4242"),
            ("bytes_read", "7"),
            ("version", "1.6.18"),
            ("libevent", "2.1.12-stable"),
            ("odd", "a value with spaces"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        parses_only_when_whole(reply, parse_stats_reply, want);
        parses_only_when_whole(b"END\r\n", parse_stats_reply, BTreeMap::new());
        assert!(parse_stats_reply(b"STAT\r\nEND\r\n").is_err());
        assert!(parse_stats_reply(b"ERROR\r\n").is_err());
    }

    #[test]
    fn memcached_keys() {
        assert!(check_key("key:1").is_ok());
        assert!(check_key(&"k".repeat(250)).is_ok());
        for bad in ["", "a b", "a\r\nb", "tab\t", &"k".repeat(251)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
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
