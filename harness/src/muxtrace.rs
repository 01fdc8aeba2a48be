//! muxtrace as a subject: started until it has attached, and its `--json`
//! lines read back into the model's own types.

use std::{path::Path, process::Command, str::FromStr, time::Duration};

use anyhow::{anyhow, Context as _, Result};
use serde::Deserialize;
use tracer_common::SyscallKind;
use tracer_model::{Metrics, ProcessMetrics, Window};

use crate::proc::Proc;

/// What muxtrace prints on stderr once every probe is attached.
pub const ATTACHED: &str = "muxtrace: attached";

/// How long attaching may take on a loaded machine.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `exe ARGS` (muxtrace) and returns once it says it has attached.
pub fn start_muxtrace(exe: &Path, args: &[&str]) -> Result<Proc> {
    let p = Proc::spawn(Command::new(exe).args(args))?;
    p.wait_line(ATTACHED, ATTACH_TIMEOUT)
        .context("muxtrace did not attach")?;
    Ok(p)
}

/// `exe --pid PID --json --interval INTERVAL` (muxtrace), attached.
pub fn json_on(exe: &Path, pid: u32, interval: &str) -> Result<Proc> {
    start_muxtrace(
        exe,
        &["--pid", &pid.to_string(), "--json", "--interval", interval],
    )
}

/// The `type` of a `--json` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// One per `--interval`.
    Interval,
    /// The last line, when muxtrace ends.
    Final,
}

/// One `--json` line: `{"type": "interval"|"final", …Metrics}`.
#[derive(Debug, Clone)]
pub struct JsonLine {
    pub kind: LineKind,
    pub metrics: Metrics,
}

impl FromStr for JsonLine {
    type Err = anyhow::Error;

    fn from_str(line: &str) -> Result<JsonLine> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: LineKind,
        }
        // Two passes rather than `#[serde(flatten)]`, which cannot read the
        // number-keyed maps (epoll_interest) back.
        let Kind { kind } = serde_json::from_str(line)
            .with_context(|| format!("not a muxtrace --json line: {line}"))?;
        let metrics = serde_json::from_str(line)
            .with_context(|| format!("not a muxtrace --json line: {line}"))?;
        Ok(JsonLine { kind, metrics })
    }
}

/// Every line of `text`, each a `--json` line.
pub fn json_lines(text: &str) -> Result<Vec<JsonLine>> {
    text.lines().map(str::parse).collect()
}

/// The metrics of the last line, which must be the final one.
pub fn final_metrics(text: &str) -> Result<Metrics> {
    let last = json_lines(text)?
        .pop()
        .ok_or_else(|| anyhow!("muxtrace wrote no JSON line"))?;
    match last.kind {
        LineKind::Final => Ok(last.metrics),
        LineKind::Interval => Err(anyhow!("muxtrace's last JSON line is not the final one")),
    }
}

/// The process with this pid in `metrics`.
pub fn process(metrics: &Metrics, pid: u32) -> Result<&ProcessMetrics> {
    metrics
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .ok_or_else(|| anyhow!("pid {pid} is not in muxtrace's metrics"))
}

/// The run-so-far window of one syscall of a process; `None` when the
/// process made no such call.
pub fn total(process: &ProcessMetrics, kind: SyscallKind) -> Option<&Window> {
    process
        .syscalls
        .iter()
        .find(|s| s.syscall == kind)
        .map(|s| &s.total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_model::{IoModel, SyscallMetrics};

    fn metrics() -> Metrics {
        let window = Window {
            calls: 7,
            ..Window::default()
        };
        Metrics {
            elapsed_s: 1.0,
            interval_s: 1.0,
            processes: vec![ProcessMetrics {
                pid: 42,
                folded: 0,
                folded_pids: Vec::new(),
                untraced_children: 0,
                untraced_child_pids: Vec::new(),
                blocked_in: std::collections::BTreeMap::new(),
                comm: "echo-epoll".into(),
                title: None,
                alive: true,
                model: IoModel::Epoll,
                syscalls: vec![SyscallMetrics {
                    syscall: SyscallKind::EpollWait,
                    total: window.clone(),
                    interval: window.clone(),
                }],
                total: window.clone(),
                interval: window,
                threads: vec![],
                exited_threads: None,
                epoll_interest: [(5, 60)].into(),
                fd_classes: [("socket".to_owned(), 3)].into(),
                loop_threads: 1,
                loop_busy_share: Some(0.25),
                loop_busy_share_since_attach: None,
                uring: None,
                verdict: String::new(),
                state: String::new(),
            }],
            losses: [("json_lines_dropped".to_owned(), 2)].into(),
            cost: None,
            map_entries: [("threads".to_owned(), 1)].into(),
            stall_threshold_ns: 50_000_000,
            time_every: 1,
            tick_ns: 4_000_000,
        }
    }

    /// Written the way muxtrace's `--json` writes a line.
    fn line(kind: &str, m: &Metrics) -> String {
        let mut v = serde_json::to_value(m).unwrap();
        v["type"] = kind.into();
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn lines_read_back_into_the_model() {
        let m = metrics();
        let text = format!("{}\n{}\n", line("interval", &m), line("final", &m));
        let lines = json_lines(&text).unwrap();
        assert_eq!(lines[0].kind, LineKind::Interval);
        let last = final_metrics(&text).unwrap();
        let p = process(&last, 42).unwrap();
        assert_eq!(p.epoll_interest[&5], 60);
        assert_eq!(total(p, SyscallKind::EpollWait).unwrap().calls, 7);
        assert!(total(p, SyscallKind::Select).is_none());
        assert_eq!(last.losses["json_lines_dropped"], 2);
    }

    #[test]
    fn a_line_without_its_type_or_a_field_is_an_error() {
        let m = metrics();
        let good = line("final", &m);
        assert!(good.parse::<JsonLine>().is_ok());
        assert!(serde_json::to_string(&m)
            .unwrap()
            .parse::<JsonLine>()
            .is_err());
        assert!(good
            .replace(r#""elapsed_s":1.0,"#, "")
            .parse::<JsonLine>()
            .is_err());
        assert!(final_metrics(&line("interval", &m)).is_err());
    }
}
