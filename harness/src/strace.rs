//! `strace -c -f` as a second opinion: attached to running processes until
//! stopped, its summary table read back per syscall; with `-C`, every call
//! written out whole as well, for what the table does not say (which
//! entries of a poll's array name an fd).

use std::{
    collections::BTreeMap, os::unix::process::ExitStatusExt as _, path::PathBuf, process::Command,
    time::Duration,
};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::proc::Proc;

/// How long strace may take to attach or to write its table.
const TIMEOUT: Duration = Duration::from_secs(30);

/// strace counting the calls of some processes (all their threads, and
/// children they fork) into a table written when it is stopped.
pub struct Strace {
    proc: Proc,
    table: PathBuf,
    _dir: tempfile::TempDir,
}

/// One row of `strace -c`: calls that returned, and of those the failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub errors: u64,
}

impl Strace {
    /// `strace -c -f -p PID …`, returned once strace says it has attached
    /// to every pid.
    pub fn attach(pids: &[u32]) -> Result<Strace> {
        Strace::spawn(pids, &["-c"])
    }

    /// `strace -C -v -s 65535 -f -p PID …`: the table, and before it every
    /// call with its arguments unabbreviated.
    pub fn attach_verbose(pids: &[u32]) -> Result<Strace> {
        Strace::spawn(pids, &["-C", "-v", "-s", "65535"])
    }

    fn spawn(pids: &[u32], mode: &[&str]) -> Result<Strace> {
        let dir = tempfile::tempdir()?;
        let table = dir.path().join("strace-c.txt");
        let mut cmd = Command::new("strace");
        cmd.args(mode).args(["-f", "-o"]).arg(&table);
        for pid in pids {
            cmd.args(["-p", &pid.to_string()]);
        }
        let proc = Proc::spawn(&mut cmd)?;
        for pid in pids {
            // "strace: Process 42 attached" or "… attached with 5 threads".
            proc.wait_line(&format!("Process {pid} attached"), TIMEOUT)
                .context("strace did not attach")?;
        }
        Ok(Strace {
            proc,
            table,
            _dir: dir,
        })
    }

    /// Stops strace (SIGINT: it detaches and writes its table) and returns
    /// the table: syscall name → counts.
    pub fn finish(self) -> Result<BTreeMap<String, Counts>> {
        Ok(self.finish_verbose()?.0)
    }

    /// [`Strace::finish`], with everything strace wrote (the calls, under
    /// [`Strace::attach_verbose`]).
    pub fn finish_verbose(mut self) -> Result<(BTreeMap<String, Counts>, String)> {
        self.proc.signal(libc::SIGINT);
        let status = self.proc.wait_exit(TIMEOUT)?;
        // strace ends itself with the signal that stopped it, once its
        // table is written.
        if !status.success() && status.signal() != Some(libc::SIGINT) {
            bail!("strace exited with {status}: {}", self.proc.stderr());
        }
        let text = std::fs::read_to_string(&self.table)
            .with_context(|| format!("strace wrote no table at {}", self.table.display()))?;
        Ok((parse_table(&text)?, text))
    }
}

/// One `poll` as strace wrote it: its `nfds`, and how many of its entries
/// name an fd (not negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollCall {
    pub nfds: u64,
    pub fds: u64,
}

/// Every `poll` in strace's output (`poll([{fd=3, events=POLLIN}, {fd=-1},
/// …], 3, 1000) = 1 (…)`, or cut by `<unfinished ...>` under -f: its
/// arguments are written whole all the same).
pub fn poll_calls(text: &str) -> Result<Vec<PollCall>> {
    let mut calls = Vec::new();
    for line in text.lines() {
        // The call's name first, after the thread's id under -f.
        let call = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        if call.starts_with("poll(NULL, ") {
            calls.push(PollCall { nfds: 0, fds: 0 });
            continue;
        }
        let Some(args) = call.strip_prefix("poll([") else {
            continue;
        };
        let bad = || anyhow!("not a poll strace wrote out whole: {line:?}");
        // The array ends at the first "]": its entries hold none.
        let (array, rest) = args.split_once("], ").ok_or_else(bad)?;
        let nfds = rest
            .split(',')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(bad)?;
        let mut fds = 0;
        let mut entries = 0;
        for entry in array.split("{fd=").skip(1) {
            entries += 1;
            let fd: i64 = entry
                .split(|c: char| c != '-' && !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?;
            fds += u64::from(fd >= 0);
        }
        if entries != nfds {
            bail!("{entries} entries written of nfds {nfds} (abbreviated?): {line:?}");
        }
        calls.push(PollCall { nfds, fds });
    }
    Ok(calls)
}

/// The rows of `strace -c`'s table (`% time seconds usecs/call calls errors
/// syscall`, the errors column blank when there were none), without the
/// total.
pub fn parse_table(text: &str) -> Result<BTreeMap<String, Counts>> {
    let mut rows = BTreeMap::new();
    let mut header = false;
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"%") {
            header = true;
            continue;
        }
        if !header || cols.len() < 5 || cols[0].starts_with('-') {
            continue;
        }
        let name = cols[cols.len() - 1];
        if name == "total" {
            continue;
        }
        let number = |i: usize| {
            cols[i]
                .parse::<u64>()
                .map_err(|_| anyhow!("not a strace -c row: {line:?}"))
        };
        let counts = match cols.len() {
            5 => Counts {
                calls: number(3)?,
                errors: 0,
            },
            6 => Counts {
                calls: number(3)?,
                errors: number(4)?,
            },
            _ => bail!("not a strace -c row: {line:?}"),
        };
        rows.insert(name.to_owned(), counts);
    }
    if !header {
        bail!("no strace -c table in:\n{text}");
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_with_free_slots_cut_calls_and_no_array() {
        let text = "\
12 poll([{fd=3, events=POLLIN}, {fd=-1}, {fd=7, events=POLLIN|POLLOUT}], 3, 1000) = 1 ([{fd=7, revents=POLLOUT}])
12 poll([{fd=-1}, {fd=4, events=POLLIN}], 2, 1000 <unfinished ...>
13 read(5, \"poll([{fd=9\", 11) = 11
12 <... poll resumed>) = 0 (Timeout)
12 poll(NULL, 0, 10) = 0 (Timeout)
12 restart_syscall(<... resuming interrupted poll ...>) = 1
";
        let calls = poll_calls(text).unwrap();
        assert_eq!(
            calls,
            [
                PollCall { nfds: 3, fds: 2 },
                PollCall { nfds: 2, fds: 1 },
                PollCall { nfds: 0, fds: 0 },
            ]
        );
        assert!(poll_calls("1 poll([{fd=3, events=POLLIN}, ...], 40, 0) = 0").is_err());
    }

    #[test]
    fn rows_with_and_without_errors() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 85.38    0.759263       54233        14         4 futex
  9.75    0.086691          21      4001           write
  1.20    0.010704          18       578         1 epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.889323         100      8868         8 total
";
        let rows = parse_table(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows["futex"],
            Counts {
                calls: 14,
                errors: 4
            }
        );
        assert_eq!(
            rows["write"],
            Counts {
                calls: 4001,
                errors: 0
            }
        );
        assert_eq!(rows["epoll_wait"].errors, 1);
    }

    #[test]
    fn no_table_is_an_error_and_an_empty_one_is_not() {
        assert!(parse_table("strace: attach: ptrace(PTRACE_SEIZE, 1): EPERM").is_err());
        let empty = "% time     seconds  usecs/call     calls    errors syscall\n\
                     ------ ----------- ----------- --------- --------- ----------------\n\
                     100.00    0.000000           0         0           total\n";
        assert!(parse_table(empty).unwrap().is_empty());
    }
}
