//! `strace -c -f` as a second opinion: attached to running processes until
//! stopped, its summary table read back per syscall.

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
        let dir = tempfile::tempdir()?;
        let table = dir.path().join("strace-c.txt");
        let mut cmd = Command::new("strace");
        cmd.args(["-c", "-f", "-o"]).arg(&table);
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
    pub fn finish(mut self) -> Result<BTreeMap<String, Counts>> {
        self.proc.signal(libc::SIGINT);
        let status = self.proc.wait_exit(TIMEOUT)?;
        // strace ends itself with the signal that stopped it, once its
        // table is written.
        if !status.success() && status.signal() != Some(libc::SIGINT) {
            bail!("strace exited with {status}: {}", self.proc.stderr());
        }
        let text = std::fs::read_to_string(&self.table)
            .with_context(|| format!("strace wrote no table at {}", self.table.display()))?;
        parse_table(&text)
    }
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
