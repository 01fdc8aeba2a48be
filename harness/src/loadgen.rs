//! loadgen's `--json` report, declared once: loadgen serializes this type
//! and every reader deserializes it, so a field renamed on one side fails to
//! build or to parse instead of reading as zero.

use std::{path::Path, process::ExitStatus, time::Duration};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use tracer_common::duration::parse_duration;

use crate::{echo::pinned, proc::Proc};

/// One loadgen run, as `--json` prints it (`loadgen --help` describes each
/// field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Messages fully echoed and verified in the measured window.
    pub messages: u64,
    pub messages_per_sec: f64,
    /// Echoed bytes received and verified per second.
    pub bytes_per_sec: f64,
    pub latency_us: Latency,
    /// Connections that failed, corrupt ones included.
    pub errors: u64,
    /// Echoes with a byte that differs from what was sent.
    pub corrupt: u64,
    /// Idle connections that could not be opened or were closed at once.
    pub connect_failures: u64,
    pub active_conns: u64,
    /// Idle connections still open at the end.
    pub idle_conns: u64,
    /// The measured window (after `--warmup`).
    pub duration_s: f64,
    pub size: u64,
    /// Messages per second asked for; `None` for a closed loop.
    pub rate: Option<f64>,
    pub idle_requested: u64,
    pub threads: u64,
}

/// Microseconds from the send (or the scheduled send, with `--rate`) until
/// the echo's last byte arrived.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What a loadgen run left: its exit status, its report when it printed
/// one (a run with errors prints it and exits 1), and its stderr.
#[derive(Debug)]
pub struct LoadgenRun {
    pub status: ExitStatus,
    pub report: Option<Report>,
    pub stderr: String,
}

impl LoadgenRun {
    /// The report of a clean run, or why there is none: the exit status
    /// and loadgen's last words.
    pub fn into_report(self) -> Result<Report> {
        let last = self.stderr.lines().last().unwrap_or("no message").trim();
        match self.report {
            Some(report) if self.status.success() => Ok(report),
            Some(_) => Err(anyhow!("loadgen {}: {last}", self.status)),
            None => Err(anyhow!(
                "loadgen printed no JSON report ({}: {last})",
                self.status
            )),
        }
    }
}

/// Slack on top of the run's own `--warmup` and `--duration` for opening
/// connections and reporting, before the run counts as hung.
const SLACK: Duration = Duration::from_secs(120);

/// Runs `loadgen ARGS --json` to its end (pinned to `cpu` with taskset when
/// given) and reads its report. A run that outlasts its own duration and
/// warm-up by two minutes is stopped and is an error.
pub fn run_loadgen(exe: &Path, args: &[&str], cpu: Option<u32>) -> Result<LoadgenRun> {
    let flag = |name: &str, default: Duration| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| parse_duration(v).ok())
            .unwrap_or(default)
    };
    // loadgen's own defaults: 10 s measured, no warm-up.
    let limit = flag("--duration", Duration::from_secs(10)) + flag("--warmup", Duration::ZERO);
    let proc = Proc::spawn(pinned(exe, cpu).args(args).arg("--json"))?;
    let done = proc.finish(limit + SLACK)?;
    let report = serde_json::from_str(done.stdout.trim()).ok();
    Ok(LoadgenRun {
        status: done.status,
        report,
        stderr: done.stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_what_loadgen_writes() {
        let text = r#"{"messages":10,"messages_per_sec":5.0,"bytes_per_sec":320.0,
            "latency_us":{"p50":1.0,"p99":2.0,"p999":3.0,"max":4.0},"errors":0,"corrupt":0,
            "connect_failures":0,"active_conns":2,"idle_conns":0,"duration_s":2.0,"size":64,
            "rate":null,"idle_requested":0,"threads":1}"#;
        let r: Report = serde_json::from_str(text).unwrap();
        assert_eq!(r.latency_us.p999, 3.0);
        assert_eq!(r.rate, None);
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A field missing is an error, not a zero.
        assert!(serde_json::from_str::<Report>(&text.replace(r#""corrupt":0,"#, "")).is_err());
    }
}
