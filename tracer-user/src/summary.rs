//! The end-of-run table: per process, one row per syscall, like `strace -c`.

use std::fmt::Write as _;

use tracer_common::SyscallKind;

use crate::{snapshot::Snapshot, targets::display_comm};

/// Renders the table for every process in the snapshot. `extra` lists traced
/// processes that made none of the measured calls, so they are not silently
/// missing.
pub fn render(snapshot: &Snapshot, idle: &[(u32, Vec<u8>)]) -> String {
    let mut out = String::new();
    for process in snapshot.processes.values() {
        let state = if process.alive { "" } else { ", exited" };
        let _ = writeln!(
            out,
            "pid {} ({}{state})",
            process.tgid,
            display_comm(&process.comm)
        );
        let total_ns: u64 = process.syscalls.values().map(|s| s.wall_ns).sum();
        let _ = writeln!(
            out,
            "{:>6} {:>11} {:>11} {:>10} {:>9}  syscall",
            "% time", "seconds", "usecs/call", "calls", "errors"
        );
        let _ = writeln!(out, "{}", rule());
        let mut rows: Vec<(SyscallKind, &tracer_common::SyscallStats)> =
            process.syscalls.iter().map(|(k, s)| (*k, s)).collect();
        rows.sort_by(|a, b| b.1.wall_ns.cmp(&a.1.wall_ns).then(a.0.cmp(&b.0)));
        let (mut calls, mut errors) = (0u64, 0u64);
        for (kind, s) in rows {
            calls += s.calls;
            errors += s.errors;
            let _ = writeln!(
                out,
                "{:>6.2} {:>11.6} {:>11} {:>10} {:>9}  {}",
                percent(s.wall_ns, total_ns),
                s.wall_ns as f64 / 1e9,
                per_call_us(s.wall_ns, s.calls),
                s.calls,
                if s.errors > 0 {
                    s.errors.to_string()
                } else {
                    String::new()
                },
                kind.name()
            );
        }
        let _ = writeln!(out, "{}", rule());
        let _ = writeln!(
            out,
            "{:>6.2} {:>11.6} {:>11} {:>10} {:>9}  total",
            100.0,
            total_ns as f64 / 1e9,
            per_call_us(total_ns, calls),
            calls,
            if errors > 0 {
                errors.to_string()
            } else {
                String::new()
            },
        );
        out.push('\n');
    }
    for (tgid, comm) in idle {
        if !snapshot.processes.contains_key(tgid) {
            let _ = writeln!(
                out,
                "pid {tgid} ({}): no select, poll, epoll or socket I/O calls seen\n",
                display_comm(comm)
            );
        }
    }
    let losses: Vec<String> = tracer_common::Stat::ALL
        .iter()
        .filter(|s| snapshot.counters[**s as usize] > 0)
        .map(|s| format!("{}={}", s.name(), snapshot.counters[*s as usize]))
        .collect();
    if !losses.is_empty() || snapshot.read_errors > 0 {
        let _ = writeln!(
            out,
            "lost or unmeasured: {}{}",
            losses.join(" "),
            if snapshot.read_errors > 0 {
                format!(" map_read_errors={}", snapshot.read_errors)
            } else {
                String::new()
            }
        );
    }
    out
}

fn rule() -> &'static str {
    "------ ----------- ----------- ---------- ---------  ----------------"
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn per_call_us(ns: u64, calls: u64) -> u64 {
    ns.checked_div(calls).unwrap_or(0) / 1000
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tracer_common::SyscallStats;

    use super::*;
    use crate::snapshot::ProcessSnap;

    fn stats(calls: u64, errors: u64, wall_ns: u64) -> SyscallStats {
        SyscallStats {
            calls,
            errors,
            wall_ns,
            ..SyscallStats::ZERO
        }
    }

    #[test]
    fn table_sorts_by_time_and_totals() {
        let mut syscalls = BTreeMap::new();
        syscalls.insert(SyscallKind::Read, stats(10, 2, 1_000_000));
        syscalls.insert(SyscallKind::EpollWait, stats(4, 0, 3_000_000));
        let mut snap = Snapshot::default();
        snap.processes.insert(
            7,
            ProcessSnap {
                tgid: 7,
                comm: b"srv".to_vec(),
                alive: false,
                syscalls,
            },
        );
        let text = render(&snap, &[(8, b"idle".to_vec())]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "pid 7 (srv, exited)");
        assert!(lines[3].ends_with("epoll_wait"), "{text}");
        assert!(lines[3].starts_with(" 75.00"), "{text}");
        assert!(lines[4].ends_with("read"), "{text}");
        assert!(lines[6].contains("        14         2  total"), "{text}");
        assert!(text.contains("pid 8 (idle): no select"), "{text}");
    }
}
