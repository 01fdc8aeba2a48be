//! Test harness shared by the integration tests: start the real server
//! binaries, read their address, stop them by pid, and never leak one.

#![allow(dead_code)] // each test crate uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use demo_servers::pattern::Pattern;

/// Every server variant: label, binary, extra arguments.
pub const SERVERS: [(&str, &str, &[&str]); 5] = [
    ("blocking", env!("CARGO_BIN_EXE_echo-blocking"), &[]),
    ("select", env!("CARGO_BIN_EXE_echo-select"), &[]),
    ("poll", env!("CARGO_BIN_EXE_echo-poll"), &[]),
    ("epoll", env!("CARGO_BIN_EXE_echo-epoll"), &[]),
    ("epoll-edge", env!("CARGO_BIN_EXE_echo-epoll"), &["--edge"]),
];

pub const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// Generous: a loaded 2-core machine can stall a process for seconds.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server. Dropping it kills and reaps the process, so a failing
/// test never leaves one behind.
pub struct Server {
    pub label: &'static str,
    pub addr: SocketAddr,
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(label: &'static str, bin: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .args(extra)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr_pipe = child.stderr.take().expect("stderr piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        // Drain stderr continuously so the server never blocks on it.
        thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut server = Server {
            label,
            addr: "127.0.0.1:0".parse().unwrap(),
            child,
            stdout: BufReader::new(stdout),
            stderr,
        };
        let mut first = String::new();
        server.stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{label}: first line was {first:?}"));
        server.addr = addr.parse().unwrap();
        server
    }

    /// Starts every variant.
    pub fn all() -> Vec<Server> {
        SERVERS
            .iter()
            .map(|&(label, bin, extra)| Server::start(label, bin, extra))
            .collect()
    }

    pub fn start_named(label: &str) -> Server {
        let &(label, bin, extra) = SERVERS.iter().find(|s| s.0 == label).expect("known server");
        Server::start(label, bin, extra)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` by pid, waits (killing after 15 s) and returns the exit
    /// status and the rest of stdout.
    pub fn stop_with(mut self, signal: i32) -> (ExitStatus, String) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.pid(), signal) };
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{}: did not stop within 15 s of signal {signal}",
                    self.label
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (status, rest)
    }

    /// SIGTERM, and the `stopped:` line, which must be there.
    pub fn stop(self) -> String {
        let label = self.label;
        let (status, rest) = self.stop_with(libc::SIGTERM);
        assert!(status.success(), "{label}: exit status {status}");
        rest.lines()
            .find(|l| l.starts_with("stopped:"))
            .unwrap_or_else(|| panic!("{label}: no stopped line in {rest:?}"))
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses `stopped: connections=N bytes_echoed=B errors=E`.
pub fn parse_stopped(line: &str) -> (u64, u64, u64) {
    let mut it = line
        .strip_prefix("stopped: ")
        .unwrap_or_else(|| panic!("not a stopped line: {line:?}"))
        .split(' ')
        .map(|kv| kv.split_once('=').unwrap().1.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

/// Soft fd limit to hard, for the thousands-of-connections tests (which may
/// run two at a time: 2,000 + 1,100 client sockets plus the servers' share).
pub fn raise_nofile() {
    let limit = demo_servers::net::raise_nofile_limit().unwrap();
    assert!(
        limit >= 8192,
        "these tests need RLIMIT_NOFILE >= 8192, the hard limit is {limit}"
    );
}

/// A blocking client with generous timeouts and no Nagle delay.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// `len` bytes of connection `seed`'s pattern stream.
pub fn pattern_bytes(seed: usize, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    Pattern::new().fill(Pattern::stream_seed(seed), 0, &mut v);
    v
}

/// Reads exactly `len` bytes or panics with context.
pub fn read_exact(s: &mut TcpStream, len: usize, what: &str) -> Vec<u8> {
    let mut buf = vec![0; len];
    s.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: reading {len} bytes: {e}"));
    buf
}

/// Writes `data`, reads its echo back and checks it.
pub fn round_trip(s: &mut TcpStream, data: &[u8], what: &str) {
    s.write_all(data)
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    let back = read_exact(s, data.len(), what);
    assert!(back == data, "{what}: echo differs");
}

/// Half-closes and expects the server to close after echoing everything.
pub fn expect_eof(s: &mut TcpStream, what: &str) {
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("{what}: waiting for EOF: {e}"));
    assert!(rest.is_empty(), "{what}: {} unexpected bytes", rest.len());
}

/// Makes `close` send a reset instead of a FIN.
pub fn set_linger_zero(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a live linger struct and its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}
