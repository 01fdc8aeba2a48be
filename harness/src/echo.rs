//! The echo servers of `demo-servers`: which ones there are, and starting
//! one on a free loopback port to learn the address it printed.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Command, ExitStatus},
    time::Duration,
};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::proc::{Proc, Stream};

/// One I/O model: a server binary and the arguments that select the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoModel {
    /// Short name, as reports and charts label the model.
    pub label: &'static str,
    /// The binary, in the target directory.
    pub bin: &'static str,
    pub args: &'static [&'static str],
}

/// Every echo server variant, in the order reports show them.
pub const ECHO_MODELS: [EchoModel; 7] = [
    EchoModel {
        label: "blocking",
        bin: "echo-blocking",
        args: &[],
    },
    EchoModel {
        label: "select",
        bin: "echo-select",
        args: &[],
    },
    EchoModel {
        label: "poll",
        bin: "echo-poll",
        args: &[],
    },
    EchoModel {
        label: "epoll",
        bin: "echo-epoll",
        args: &[],
    },
    EchoModel {
        label: "epoll-et",
        bin: "echo-epoll",
        args: &["--edge"],
    },
    EchoModel {
        label: "uring",
        bin: "echo-uring",
        args: &[],
    },
    EchoModel {
        label: "uring-sqpoll",
        bin: "echo-uring",
        args: &["--sqpoll"],
    },
];

impl EchoModel {
    /// The model with this label.
    pub fn named(label: &str) -> Result<EchoModel> {
        ECHO_MODELS
            .into_iter()
            .find(|m| m.label == label)
            .ok_or_else(|| anyhow!("no echo model is called {label:?}"))
    }

    /// The command line that selects the model: `epoll --edge`.
    pub fn command_line(&self) -> String {
        let name = self.bin.strip_prefix("echo-").unwrap_or(self.bin);
        std::iter::once(name)
            .chain(self.args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts this model's server from `bin_dir`.
    pub fn start(&self, bin_dir: &Path, cpu: Option<u32>) -> Result<EchoServer> {
        EchoServer::start(&bin_dir.join(self.bin), self.args, cpu)
    }
}

/// How long a server may take to say where it listens.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// `prog`, run by `taskset -c CPU` when `cpu` is given.
pub fn pinned(prog: &Path, cpu: Option<u32>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(prog);
            c
        }
        None => Command::new(prog),
    }
}

/// A running echo server, stopped by pid when dropped.
pub struct EchoServer {
    proc: Proc,
    addr: SocketAddr,
}

impl EchoServer {
    /// Starts `bin ARGS --listen 127.0.0.1:0` (pinned to `cpu` with taskset
    /// when given) and reads the `listening on ADDR` line it prints first.
    pub fn start(bin: &Path, args: &[&str], cpu: Option<u32>) -> Result<EchoServer> {
        let proc = Proc::spawn(
            pinned(bin, cpu)
                .args(args)
                .args(["--listen", "127.0.0.1:0"]),
        )?;
        let line = proc
            .wait_line("listening on ", LISTEN_TIMEOUT)
            .with_context(|| format!("{} did not say where it listens", bin.display()))?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| anyhow!("{} printed {line:?} instead of its address", bin.display()))?;
        Ok(EchoServer { proc, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// The guard alone, for callers that keep processes in one list.
    pub fn into_proc(self) -> Proc {
        self.proc
    }

    /// Sends `sig`, waits for the exit, and returns the status and what the
    /// server printed after its `listening on` line.
    pub fn stop_with(mut self, sig: i32) -> Result<(ExitStatus, String)> {
        let status = self.proc.stop_with(sig)?;
        self.proc.wait_output_closed();
        let rest = self
            .proc
            .lines(Stream::Stdout)
            .iter()
            .skip_while(|l| !l.starts_with("listening on "))
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect();
        Ok((status, rest))
    }

    /// SIGTERM; the server must exit 0 and print its `stopped:` line, which
    /// is returned.
    pub fn stop(self) -> Result<String> {
        let (status, rest) = self.stop_with(libc::SIGTERM)?;
        if !status.success() {
            bail!("the server exited with {status}");
        }
        rest.lines()
            .find(|l| l.starts_with("stopped:"))
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("the server printed no stopped: line (it said {rest:?})"))
    }
}
