//! Processes the demo and the benches start: each held by a [`Guard`] that
//! stops it by pid when dropped, however the task ends.
use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context as _, Result};

/// A child stopped (SIGTERM, a grace period, then SIGKILL) and reaped on drop.
pub struct Guard(pub Child);

impl Guard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `sig` and waits up to 10 s for the exit, then kills.
    pub fn stop_with(&mut self, sig: i32) {
        stop(&mut self.0, sig);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        stop(&mut self.0, libc::SIGTERM);
    }
}

pub fn stop(child: &mut Child, sig: i32) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: signalling our own unreaped child by pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts an echo server on a free loopback port, optionally pinned to a CPU,
/// and returns it with the address it printed.
pub fn start_server(
    bin: &Path,
    name: &str,
    args: &[&str],
    cpu: Option<u32>,
) -> Result<(Guard, String)> {
    let mut cmd = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(bin.join(name));
            c
        }
        None => Command::new(bin.join(name)),
    };
    let mut child = cmd
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.join(name).display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let guard = Guard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow!("{name} did not say where it listens (said {line:?})"))?
        .to_owned();
    Ok((guard, addr))
}
