//! What `/proc` says about a process the tests started — its children and
//! threads, the syscall it is blocked in, the fds its epoll sets hold — and
//! [`Frozen`], which stops processes by pid so that two tracers can be
//! attached to, and detached from, a process that makes no call meanwhile.
//! The kernel's own view is the independent truth muxtrace's figures are
//! checked against.

use std::{
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// The children of `pid` (of all its threads), from
/// `/proc/PID/task/TID/children`.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for tid in threads(pid) {
        let text =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    out.sort_unstable();
    out
}

/// The thread ids of `pid`; empty once it has exited.
pub fn threads(pid: u32) -> Vec<u32> {
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// CPU time of all of `pid`'s threads, ns, by the scheduler's clock
/// (`/proc/PID/task/TID/schedstat`, not the tick-sampled utime and stime).
/// A thread that exits between the listing and its read is not counted.
pub fn process_cpu_ns(pid: u32) -> Result<u64> {
    let tids = threads(pid);
    if tids.is_empty() {
        bail!("process {pid} has exited");
    }
    Ok(tids
        .iter()
        .filter_map(|tid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
            s.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum())
}

/// A thread's state letter from `/proc/PID/task/TID/stat` (`R`, `S`, `T`,
/// `t`, …), `None` once it is gone.
pub fn thread_state(pid: u32, tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    // The name in parentheses may hold spaces: the state follows the last ')'.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// The syscall number `pid`'s main thread is blocked in (see
/// [`thread_syscall`]).
pub fn blocked_in(pid: u32) -> Option<i64> {
    thread_syscall(pid, pid).map(|(nr, _)| nr)
}

/// Whether `pid`'s main thread is blocked in epoll_wait or epoll_pwait(2):
/// its event loop is waiting.
pub fn waits_in_epoll(pid: u32) -> bool {
    matches!(blocked_in(pid), Some(nr) if is_epoll_wait(nr))
}

fn is_epoll_wait(nr: i64) -> bool {
    nr == libc::SYS_epoll_wait || nr == libc::SYS_epoll_pwait || nr == libc::SYS_epoll_pwait2
}

/// The syscall thread `tid` of `pid` is blocked in and its first argument,
/// from `/proc/PID/task/TID/syscall`: -1 (and its stack pointer) when it is
/// stopped in user space, `None` while it runs or once it is gone.
pub fn thread_syscall(pid: u32, tid: u32) -> Option<(i64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    let mut words = text.split_whitespace();
    let nr = words.next()?.parse().ok()?;
    let arg = u64::from_str_radix(words.next()?.strip_prefix("0x")?, 16).ok()?;
    Some((nr, arg))
}

/// The epoll fd thread `tid` of `pid` waits on (epoll_wait's first
/// argument), `None` unless it is blocked in epoll_wait or epoll_pwait(2).
/// It names the thread's own epoll set where a process has several, one an
/// event loop.
pub fn thread_epoll_wait_fd(pid: u32, tid: u32) -> Option<u32> {
    match thread_syscall(pid, tid)? {
        (nr, epfd) if is_epoll_wait(nr) => u32::try_from(epfd).ok(),
        _ => None,
    }
}

/// Thread `tid`'s name (`/proc/PID/task/TID/comm`, what pthread_setname_np
/// set, else the program's name), `None` once it is gone.
pub fn thread_comm(pid: u32, tid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_owned())
}

/// The epoll fds `pid` holds, from the `anon_inode:[eventpoll]` links in
/// `/proc/PID/fd`.
pub fn epoll_fds(pid: u32) -> Vec<u32> {
    let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                (target.to_str()? == "anon_inode:[eventpoll]")
                    .then(|| e.file_name().to_str()?.parse().ok())?
            })
            .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}

/// The fds registered in `pid`'s epoll fd `epfd`: the `tfd:` lines of
/// `/proc/PID/fdinfo/EPFD`, which the kernel writes from the eventpoll
/// itself.
pub fn epoll_registrations(pid: u32, epfd: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/fdinfo/{epfd}");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    Ok(text.lines().filter(|l| l.starts_with("tfd:")).count() as u64)
}

/// `pid`'s one epoll fd and its registrations; an error when it holds
/// none or several.
pub fn the_epoll_set(pid: u32) -> Result<(u32, u64)> {
    match epoll_fds(pid)[..] {
        [epfd] => Ok((epfd, epoll_registrations(pid, epfd)?)),
        ref other => bail!("pid {pid} holds {} epoll fds: {other:?}", other.len()),
    }
}

/// `f`'s first `Some`, asked every 20 ms; an error naming `what` after
/// `timeout`.
pub fn poll_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// How long processes may take to stop after SIGSTOP.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopped threads and their tracers must not run to count as
/// stopped.
const STILL_FOR: Duration = Duration::from_millis(30);

/// A thread's tid, state, schedstat and its tracer's schedstat.
type ThreadRun = (u32, Option<char>, Option<String>, Option<String>);

/// Processes stopped with SIGSTOP until the guard drops (SIGCONT).
///
/// A stopped process makes no syscall, and none of its threads is inside
/// one: a thread stops on its way back to user space, so a blocking call in
/// progress returns first (epoll_wait with EINTR; calls the kernel restarts
/// are entered anew after SIGCONT). Two tracers attached while the process
/// is frozen and detached while it is frozen again therefore see exactly
/// the same calls — every call that both enters and returns in between —
/// whatever each does at its own attach and detach.
///
/// Under a ptracer (strace), `t` is also a thread in a syscall stop, which
/// strace resumes: it then makes the call, past the tracepoint, while the
/// stop looks done. strace counted one `recvfrom` more than muxtrace in
/// 3 of 40 lighttpd windows so. The guard therefore also waits until
/// neither the threads nor their tracers have run for [`STILL_FOR`]: a
/// tracer that has not run has no resume pending.
pub struct Frozen {
    pids: Vec<u32>,
}

impl Frozen {
    /// SIGSTOP to every pid, then waits until each of their threads is
    /// stopped (`T`, or `t` under a ptracer).
    pub fn new(pids: &[u32]) -> Result<Frozen> {
        let frozen = Frozen {
            pids: pids.to_vec(),
        };
        for &pid in pids {
            // SAFETY: a signal to a process the caller started, by pid.
            if unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) } != 0 {
                bail!("cannot stop pid {pid}: {}", std::io::Error::last_os_error());
            }
        }
        for &pid in pids {
            poll_until(
                &format!("every thread of pid {pid} stopped"),
                STOP_TIMEOUT,
                || {
                    let tids = threads(pid);
                    (!tids.is_empty()
                        && tids
                            .iter()
                            .all(|&t| matches!(thread_state(pid, t), Some('T' | 't'))))
                    .then_some(())
                },
            )?;
        }
        let mut before = frozen.runs();
        poll_until("every thread still", STOP_TIMEOUT, || {
            thread::sleep(STILL_FOR);
            let now = frozen.runs();
            let still = now == before;
            before = now;
            still.then_some(())
        })?;
        Ok(frozen)
    }

    /// Each thread's state and schedstat (time run, time queued, times
    /// run), and its tracer's schedstat: any change means one ran.
    fn runs(&self) -> Vec<ThreadRun> {
        let schedstat = |task: &str| std::fs::read_to_string(format!("{task}/schedstat")).ok();
        self.pids
            .iter()
            .flat_map(|&pid| threads(pid).into_iter().map(move |t| (pid, t)))
            .map(|(pid, t)| {
                let task = format!("/proc/{pid}/task/{t}");
                let tracer = std::fs::read_to_string(format!("{task}/status"))
                    .ok()
                    .and_then(|status| {
                        let line = status.lines().find(|l| l.starts_with("TracerPid:"))?;
                        line.split_whitespace().nth(1)?.parse::<u32>().ok()
                    })
                    .filter(|&tracer| tracer != 0);
                (
                    t,
                    thread_state(pid, t),
                    schedstat(&task),
                    tracer.and_then(|tracer| schedstat(&format!("/proc/{tracer}"))),
                )
            })
            .collect()
    }

    /// SIGCONT now.
    pub fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: as in `new`.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
        }
    }
}

/// Whether the kernel's syscall tracepoints are visible in tracefs (what
/// bpftrace and perf trace attach to by name), mounting
/// tracefs where it belongs if it is not: muxtrace attaches by BTF and
/// needs none, and a fresh machine may not have it mounted. Without it
/// bpftrace still prints "Attaching N probes..." and runs with none
/// attached, so a cost measured then would be a tracer that is not there.
pub fn syscall_tracepoints_ready() -> bool {
    const TRACEFS: &str = "/sys/kernel/tracing";
    let ready = || {
        ["events/syscalls", "events/raw_syscalls"]
            .iter()
            .all(|d| std::path::Path::new(TRACEFS).join(d).is_dir())
    };
    if !ready() {
        let _ = std::process::Command::new("mount")
            .args(["-t", "tracefs", "nodev", TRACEFS])
            .status();
    }
    ready()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::proc::Proc;

    #[test]
    fn a_frozen_process_is_stopped_until_thawed() {
        let p = Proc::spawn(Command::new("sleep").arg("30")).unwrap();
        let pid = p.pid();
        let frozen = Frozen::new(&[pid]).unwrap();
        assert_eq!(thread_state(pid, pid), Some('T'));
        frozen.thaw();
        poll_until("running again", Duration::from_secs(10), || {
            (thread_state(pid, pid) == Some('S')).then_some(())
        })
        .unwrap();
        // A sleep the stop interrupted resumes through restart_syscall; one
        // the stop came before is entered anew.
        assert!(
            matches!(
                blocked_in(pid),
                Some(nr) if nr == libc::SYS_clock_nanosleep || nr == libc::SYS_restart_syscall
            ),
            "blocked in {:?}",
            blocked_in(pid)
        );
    }

    #[test]
    fn children_and_threads_of_this_process() {
        let me = std::process::id();
        assert!(threads(me).contains(&me));
        let p = Proc::spawn(Command::new("sleep").arg("30")).unwrap();
        assert!(children(me).contains(&p.pid()));
        assert!(epoll_fds(p.pid()).is_empty());
    }

    /// A named thread blocked in epoll_wait shows its name and the epoll fd
    /// it waits on; once woken, no epoll fd.
    #[test]
    fn a_thread_waiting_in_epoll_shows_its_name_and_its_epoll_fd() {
        // SAFETY: plain fd syscalls on fds this test owns and closes.
        let (epfd, efd) = unsafe {
            let epfd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            let efd = libc::eventfd(0, libc::EFD_CLOEXEC);
            assert!(epfd >= 0 && efd >= 0);
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 0,
            };
            assert_eq!(libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, efd, &mut ev), 0);
            (epfd, efd)
        };
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let waiter = thread::Builder::new()
            .name("epoll-waiter".into())
            .spawn(move || {
                // SAFETY: gettid has no arguments; epoll_wait writes at most
                // one event into `ev`.
                unsafe {
                    tid_tx.send(libc::gettid() as u32).unwrap();
                    let mut ev = libc::epoll_event { events: 0, u64: 0 };
                    libc::epoll_wait(epfd, &mut ev, 1, 30_000)
                }
            })
            .unwrap();
        let me = std::process::id();
        let tid = tid_rx.recv().unwrap();
        assert_eq!(thread_comm(me, tid).as_deref(), Some("epoll-waiter"));
        let waiting = poll_until("the thread in epoll_wait", Duration::from_secs(10), || {
            thread_epoll_wait_fd(me, tid)
        });
        // SAFETY: an 8-byte write to the eventfd wakes the waiter.
        unsafe { libc::write(efd, 1u64.to_ne_bytes().as_ptr().cast(), 8) };
        assert_eq!(waiter.join().unwrap(), 1);
        assert_eq!(waiting.unwrap(), epfd as u32);
        assert_eq!(thread_epoll_wait_fd(me, me), None);
        // SAFETY: both fds are ours and no longer used.
        unsafe {
            libc::close(efd);
            libc::close(epfd);
        }
    }

    /// Every thread's CPU counts: a thread spinning beside an idle main
    /// thread shows, to within the scheduler's clock.
    #[test]
    fn a_process_cpu_counts_its_busy_thread() {
        let me = std::process::id();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinning = std::sync::Arc::clone(&stop);
        let spinner = thread::spawn(move || {
            while !spinning.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let before = process_cpu_ns(me).unwrap();
        thread::sleep(Duration::from_millis(300));
        let used = process_cpu_ns(me).unwrap() - before;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spinner.join().unwrap();
        // At least a third of the 300 ms on a shared 2-core machine.
        assert!(used > 100_000_000, "{used} ns");
        let p = Proc::spawn(&mut Command::new("true")).unwrap();
        let pid = p.pid();
        let _ = p.finish(Duration::from_secs(10));
        assert!(process_cpu_ns(pid).is_err());
    }
}
