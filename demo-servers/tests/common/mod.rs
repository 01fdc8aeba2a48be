//! What the integration tests share: the real server binaries, started and
//! stopped through `harness` (never leaked), and blocking clients that check
//! every echoed byte.

#![allow(dead_code)] // each test crate uses a different subset

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

pub use demo_servers::pattern::Pattern;
pub use harness::{EchoModel, ECHO_MODELS};

pub const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// Generous: a loaded 2-core machine can stall a process for seconds.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Where cargo built this package's binaries.
pub fn bin_dir() -> &'static Path {
    Path::new(LOADGEN).parent().expect("target dir")
}

/// A model's server binary.
pub fn bin(model: &EchoModel) -> PathBuf {
    bin_dir().join(model.bin)
}

/// A running server, labelled for messages. Dropping it stops the process
/// by pid, so a failing test never leaves one behind.
pub struct Server {
    pub label: &'static str,
    pub addr: SocketAddr,
    server: harness::EchoServer,
}

impl Server {
    pub fn start(model: EchoModel) -> Server {
        let server = model
            .start(bin_dir(), None)
            .unwrap_or_else(|e| panic!("{}: {e:#}", model.label));
        Server {
            label: model.label,
            addr: server.addr(),
            server,
        }
    }

    pub fn start_named(label: &str) -> Server {
        Server::start(EchoModel::named(label).expect("known server"))
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&mut self) -> String {
        self.server.proc().stderr()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.server.proc().is_running()
    }

    /// Sends `signal` by pid, waits for the exit and returns the status and
    /// what the server printed after its address.
    pub fn stop_with(self, signal: i32) -> (ExitStatus, String) {
        let label = self.label;
        self.server
            .stop_with(signal)
            .unwrap_or_else(|e| panic!("{label}: {e:#}"))
    }

    /// SIGTERM, and the `stopped:` line, which must be there.
    pub fn stop(self) -> String {
        let label = self.label;
        self.server
            .stop()
            .unwrap_or_else(|e| panic!("{label}: {e:#}"))
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
