//! What to trace: checking pids, reading names and start times from /proc,
//! finding processes by name, and starting a command stopped at the door.

use std::{
    collections::BTreeSet,
    ffi::{CString, OsStr},
    fs,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use crate::error::{Result, UserError};

/// The kernel's clock ticks per second (USER_HZ), the unit of a process's
/// start time in /proc/PID/stat.
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

/// Now, in CLOCK_BOOTTIME ns: the clock of /proc's process start times,
/// which counts suspend as they do, and of the kernel's exit records.
pub fn boot_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Boot-clock ns in the clock ticks /proc gives process start times in.
pub fn boot_ns_to_ticks(ns: u64) -> u64 {
    (ns as f64 / 1e9 * clock_ticks_per_sec()) as u64
}

/// A process as identified by /proc: the pid alone can be reused, the pid
/// with its start time cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start_time: u64,
    /// Its name when first seen: a process that exits before muxtrace has
    /// attached still has one.
    pub comm: Vec<u8>,
}

impl ProcessId {
    pub fn of(pid: u32) -> Option<ProcessId> {
        let fields = stat_fields(pid)?;
        Some(ProcessId {
            pid,
            start_time: fields.get(19)?.parse().ok()?,
            comm: comm_of(pid).unwrap_or_else(|| b"?".to_vec()),
        })
    }

    /// Still the same process (not exited, pid not reused). Only the kernel
    /// saying the pid is gone counts as exited: a read that fails for another
    /// reason (out of fds, say) leaves it alive — muxtrace never stops
    /// tracing a process because it could not look.
    pub fn alive(&self) -> bool {
        match read_stat(self.pid) {
            Ok(Some(fields)) => {
                let start = fields.get(19).and_then(|v| v.parse::<u64>().ok());
                start == Some(self.start_time) && !all_threads_gone(&fields)
            }
            Ok(None) => false,
            Err(e) => {
                log::warn!(
                    "cannot read /proc/{}/stat ({e}); taking it as still running",
                    self.pid
                );
                true
            }
        }
    }
}

/// /proc/PID/stat's fields after the comm; `Ok(None)` when the process is
/// gone (ENOENT, ESRCH), `Err` when it could not be read for another reason.
fn read_stat(pid: u32) -> std::io::Result<Option<Vec<String>>> {
    parse_stat(fs::read(format!("/proc/{pid}/stat")))
}

fn parse_stat(read: std::io::Result<Vec<u8>>) -> std::io::Result<Option<Vec<String>>> {
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let stat = String::from_utf8_lossy(&bytes);
    // The comm (field 2) may hold spaces and parentheses: split after the last ')'.
    let Some(end) = stat.rfind(')') else {
        return Ok(None);
    };
    Ok(Some(
        stat[end + 1..]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    ))
}

/// Whether a process's /proc/PID/stat fields (after the comm) say all its
/// threads are gone. The state is its main thread's: a main thread that
/// ended alone (`pthread_exit`, or an exec from another thread while it is
/// replaced) is a zombie while the others run, so a zombie counts as gone
/// only when it is the last thread (num_threads, field 20, counts it).
fn all_threads_gone(fields: &[String]) -> bool {
    let threads = fields.get(17).and_then(|v| v.parse::<u64>().ok());
    match fields.first().map(String::as_str) {
        Some("X") => true,
        Some("Z") => threads.is_none_or(|n| n <= 1),
        _ => false,
    }
}

/// The /proc directory of a process's fds: its own, unless its main thread
/// has ended alone, which leaves that thread's view empty; then a live
/// thread's.
fn fd_owner_dir(pid: u32) -> PathBuf {
    let leader = PathBuf::from(format!("/proc/{pid}"));
    let main_thread_ended = stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z"));
    if !main_thread_ended {
        return leader;
    }
    let Ok(tasks) = fs::read_dir(leader.join("task")) else {
        return leader;
    };
    tasks
        .flatten()
        .map(|t| t.path())
        .find(|dir| {
            parse_stat(fs::read(dir.join("stat")))
                .ok()
                .flatten()
                .is_some_and(|f| f.first().is_some_and(|s| s != "Z" && s != "X"))
        })
        .unwrap_or(leader)
}

/// The inode of the initial pid namespace (`PROC_PID_INIT_INO`).
const INITIAL_PIDNS_INO: u64 = 0xEFFF_FFFC;

/// The pid namespace muxtrace runs in, when it is not the initial one: then
/// every pid here (given, read from /proc, shown) is that namespace's, and
/// the programs translate the kernel's. /proc must be the namespace's own
/// (`unshare --pid --fork --mount-proc`, any container runtime): one that
/// shows another namespace's pids is refused.
pub fn pid_namespace() -> Result<Option<crate::probes::PidNamespace>> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata("/proc/self/ns/pid").map_err(|e| {
        UserError::runtime(format!("cannot read /proc/self/ns/pid: {e}"))
            .hint("muxtrace needs /proc mounted")
    })?;
    if meta.ino() == INITIAL_PIDNS_INO {
        return Ok(None);
    }
    let own = std::process::id();
    let proc_self = fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse::<u32>().ok());
    if proc_self != Some(own) {
        return Err(UserError::usage(
            "muxtrace runs in a pid namespace but /proc shows another namespace's pids",
        )
        .hint("mount this namespace's /proc (unshare --pid --fork --mount-proc, or run it in the container)"));
    }
    // bpf_get_ns_current_pid_tgid compares with the kernel's dev_t encoding.
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev) as u64, libc::minor(dev) as u64);
    Ok(Some(crate::probes::PidNamespace {
        dev: (major << 20) | minor,
        ino: meta.ino(),
    }))
}

/// Checks the `--pid` arguments and turns each into the tgid to trace.
pub fn resolve_pids(pids: &[i64]) -> Result<Vec<ProcessId>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &pid in pids {
        if pid <= 0 || pid > i64::from(i32::MAX) {
            return Err(UserError::usage(format!(
                "--pid {pid} is not a process id (pids are positive integers)"
            ))
            .hint("find the pid with: pgrep -f NAME"));
        }
        let pid = pid as u32;
        if !seen.insert(pid) {
            return Err(UserError::usage(format!("--pid {pid} is given twice"))
                .hint("name each process once"));
        }
        let Some(tgid) = tgid_of(pid) else {
            return Err(unreadable_or_missing(pid, "status"));
        };
        if tgid != pid {
            log::warn!(
                "pid {pid} is a thread of process {tgid}: tracing {tgid} and all its threads"
            );
            if !seen.insert(tgid) && pids.contains(&i64::from(tgid)) {
                return Err(UserError::usage(format!(
                    "--pid {pid} is a thread of process {tgid}, which is also given"
                ))
                .hint("name each process once"));
            }
        }
        let id = ProcessId::of(tgid).ok_or_else(|| unreadable_or_missing(tgid, "stat"))?;
        if is_kernel_thread(tgid) {
            return Err(UserError::usage(format!(
                "pid {pid} ({}) is a kernel thread: it makes no syscalls to trace",
                String::from_utf8_lossy(&id.comm)
            ))
            .hint("give the pid of a user-space process (pgrep -f NAME)"));
        }
        if is_zombie(tgid) {
            // Its parent, which holds it, is what still runs.
            let parent = fs::read_to_string(format!("/proc/{tgid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("PPid:"))
                        .and_then(|v| v.trim().parse::<u32>().ok())
                });
            let hint = match parent {
                Some(ppid) => format!(
                    "it has nothing left to trace; its parent, pid {ppid}, has not reaped it yet"
                ),
                None => "it has nothing left to trace".to_owned(),
            };
            return Err(UserError::usage(format!(
                "process {pid} has exited (it is a zombie waiting for its parent)"
            ))
            .hint(hint));
        }
        out.push(id);
    }
    Ok(out)
}

/// The thread-group id of a pid or tid, from /proc/PID/status.
/// Why a named pid cannot be traced when /proc/PID/`file` gave nothing: the
/// process is gone, or it is there and /proc will not show it (a `hidepid`
/// mount, a /proc of another pid namespace, a file mounted over).
fn unreadable_or_missing(pid: u32, file: &str) -> UserError {
    let path = format!("/proc/{pid}/{file}");
    match (fs::metadata(format!("/proc/{pid}")), fs::read(&path)) {
        (Ok(_), Err(e)) => UserError::usage(format!("cannot read {path}: {e}")).hint(
            "muxtrace names and follows a process through /proc: run it as root, on a /proc \
             mounted without hidepid, in the traced process's pid namespace",
        ),
        (Ok(_), Ok(_)) => {
            UserError::usage(format!("{path} does not read as a process's {file} file"))
                .hint("is something mounted over /proc?")
        }
        (Err(_), _) => UserError::usage(format!("no process with pid {pid}"))
            .hint("it may have exited; find the pid with: pgrep -f NAME"),
    }
}

pub fn tgid_of(pid: u32) -> Option<u32> {
    // Lossy: the name in it may hold bytes that are not UTF-8.
    let status = read_lossy(&format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn read_lossy(path: &str) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    read_stat(pid).ok().flatten()
}

/// A kernel thread (PF_KTHREAD in the flags, field 9 of /proc/PID/stat).
pub fn is_kernel_thread(pid: u32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    stat_fields(pid)
        .and_then(|f| f.get(6)?.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// A process on its way out: PF_EXITING in the flags (set before its memory
/// is released), or a zombie. Its /proc/PID/fd then belongs to root
/// whatever its user, so a listing refused is no matter of privileges.
/// The flags are those of the thread whose fds are listed.
pub fn is_exiting(pid: u32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let exiting = parse_stat(fs::read(fd_owner_dir(pid).join("stat")))
        .ok()
        .flatten()
        .and_then(|f| f.get(6)?.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_EXITING != 0);
    exiting || is_zombie(pid)
}

/// A zombie waiting for its parent: every thread has ended.
fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| all_threads_gone(&f))
}

/// The process name (comm), raw: it may hold any byte but NUL.
pub fn comm_of(pid: u32) -> Option<Vec<u8>> {
    let mut comm = fs::read(format!("/proc/{pid}/comm")).ok()?;
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    // An empty read names nothing: the caller's "?" says so.
    (!comm.is_empty()).then_some(comm)
}

/// The kernel keeps 15 bytes of a process name.
pub const COMM_LEN: usize = 15;

/// Checks a `--comm` argument.
pub fn check_comm(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(UserError::usage("--comm needs a process name"));
    }
    if name.len() > COMM_LEN {
        return Err(UserError::usage(format!(
            "--comm {name} is longer than the {COMM_LEN} bytes the kernel keeps of a process name"
        ))
        .hint(format!(
            "use its first {COMM_LEN} bytes: --comm {}",
            truncate_comm(name)
        )));
    }
    Ok(())
}

fn truncate_comm(name: &str) -> String {
    let mut end = COMM_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// The parent of a process, from /proc/PID/stat.
fn parent_of(pid: u32) -> Option<u32> {
    // Fields after the comm start at field 3: state, then ppid.
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Every process descended from `pid` now (children, their children, …),
/// parents before children; never muxtrace itself (`--follow` of the shell
/// it runs from) nor its own children, which it names itself if at all.
pub fn descendants(pid: u32) -> Vec<ProcessId> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != own)
        .filter_map(|p| Some((p, parent_of(p)?)))
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(child, ppid)| *ppid == parent && !found.contains(child))
                .map(|(child, _)| *child)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    found[1..]
        .iter()
        .filter_map(|&p| ProcessId::of(p))
        .collect()
}

/// The children of `pid` now, from each of its threads' `children` list
/// (a child belongs to the thread that forked it); never muxtrace itself.
pub fn children(pid: u32) -> Vec<u32> {
    let own = std::process::id();
    let mut found: Vec<u32> = per_thread(pid, "children")
        .into_iter()
        .flat_map(|list| {
            list.split_ascii_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|&child| child != own)
        .collect();
    found.sort_unstable();
    found
}

/// Most a process title keeps: the rest of a long one is cut.
const TITLE_MAX: usize = 80;

/// The title a process gave itself over its command line (setproctitle:
/// `nginx: worker process`, `postgres: checkpointer`), which tells apart
/// processes of one name; `None` for an ordinary command line, whose
/// arguments are never shown.
pub fn process_title(pid: u32, comm: &[u8]) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    title_of(&raw, comm)
}

/// A title begins with the process's name and a colon; its NULs (a
/// title written over several arguments) and runs of spaces are one space.
fn title_of(cmdline: &[u8], comm: &[u8]) -> Option<String> {
    if comm.is_empty() || !cmdline.starts_with(comm) || cmdline.get(comm.len()) != Some(&b':') {
        return None;
    }
    let text = String::from_utf8_lossy(cmdline);
    let words: Vec<&str> = text
        .split(|c: char| c == '\0' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let mut title = words.join(" ");
    if title.chars().count() > TITLE_MAX {
        title = title.chars().take(TITLE_MAX - 1).collect::<String>() + "…";
    }
    Some(title)
}

/// The syscall numbers the threads of `pid` are blocked in now, from
/// /proc/PID/task/TID/syscall: a thread that runs, or sleeps outside a
/// call, adds none.
pub fn blocked_syscalls(pid: u32) -> Vec<i64> {
    per_thread(pid, "syscall")
        .iter()
        .filter_map(|line| line.split_ascii_whitespace().next()?.parse::<i64>().ok())
        .filter(|&nr| nr >= 0)
        .collect()
}

/// The file `name` of each of `pid`'s threads (/proc/PID/task/TID/name),
/// those that could be read.
fn per_thread(pid: u32, name: &str) -> Vec<String> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join(name)).ok())
        .collect()
}

/// Running processes whose comm is `name`.
pub fn find_by_comm(name: &str) -> Vec<ProcessId> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut out: Vec<ProcessId> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        // Kernel threads make no syscalls: `--pid 2` is refused, and
        // `--comm kthreadd` must not trace it either.
        .filter(|&pid| pid != own && comm_of(pid).as_deref() == Some(name.as_bytes()))
        .filter(|&pid| !is_kernel_thread(pid))
        .filter_map(ProcessId::of)
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// What a process's fds are, from /proc/PID/fd: class → count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdTable {
    pub classes: std::collections::BTreeMap<String, u32>,
}

/// A process's fds by class; `Err` when /proc/PID/fd cannot be listed (the
/// process is another user's and muxtrace lacks CAP_SYS_PTRACE, say).
pub fn fd_table(pid: u32) -> std::io::Result<FdTable> {
    let mut table = FdTable::default();
    let entries = fs::read_dir(fd_owner_dir(pid).join("fd"))?;
    for e in entries.flatten() {
        let Ok(target) = fs::read_link(e.path()) else {
            continue;
        };
        let class = fd_class(target.as_os_str().as_bytes());
        *table.classes.entry(class.to_owned()).or_default() += 1;
    }
    Ok(table)
}

/// epoll instances of a process with the number of fds registered in each,
/// from /proc/PID/fdinfo (one `tfd:` line per registration), each once
/// under its lowest fd: mio (tokio) duplicates its epoll fd, and the two
/// fds read as two loops.
pub fn epoll_sets(pid: u32) -> Vec<(u32, u64)> {
    let dir = fd_owner_dir(pid);
    let Ok(entries) = fs::read_dir(dir.join("fd")) else {
        return Vec::new();
    };
    let mut sets: Vec<(u32, u64)> = entries
        .flatten()
        .filter_map(|e| {
            let fd: u32 = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            if fd_class(target.as_os_str().as_bytes()) != "epoll" {
                return None;
            }
            let info = read_lossy(&dir.join(format!("fdinfo/{fd}")).to_string_lossy())?;
            Some((
                fd,
                info.lines().filter(|l| l.starts_with("tfd:")).count() as u64,
            ))
        })
        .collect();
    sets.sort_unstable();
    let mut kept: Vec<(u32, u64)> = Vec::with_capacity(sets.len());
    for (fd, registered) in sets {
        if !kept.iter().any(|&(first, _)| same_file(pid, first, fd)) {
            kept.push((fd, registered));
        }
    }
    kept
}

/// Whether two fds of `pid` are one open file (kcmp's KCMP_FILE): a
/// `dup` of the other. Not known (kcmp refused) reads as different.
fn same_file(pid: u32, a: u32, b: u32) -> bool {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp only compares the two processes' (here one's) files.
    let order = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(pid),
            libc::c_long::from(pid),
            KCMP_FILE,
            libc::c_long::from(a),
            libc::c_long::from(b),
        )
    };
    order == 0
}

/// The class of an fd from its /proc link target.
pub fn fd_class(target: &[u8]) -> &'static str {
    match target {
        t if t.starts_with(b"socket:") => "socket",
        t if t.starts_with(b"pipe:") => "pipe",
        b"anon_inode:[eventfd]" => "eventfd",
        b"anon_inode:[eventpoll]" => "epoll",
        b"anon_inode:[timerfd]" => "timerfd",
        b"anon_inode:[signalfd]" => "signalfd",
        t if t.starts_with(b"anon_inode:") => "anon_inode",
        t if t.starts_with(b"/dev/") => "device",
        _ => "file",
    }
}

/// A thread's name (comm), raw.
pub fn thread_name(pid: u32, tid: u32) -> Option<Vec<u8>> {
    let mut comm = fs::read(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    Some(comm)
}

/// A command started by muxtrace, held before `execve` until it is traced.
pub struct Launched {
    pub pid: u32,
    gate: Option<std::os::fd::OwnedFd>,
    exec_error: std::os::fd::OwnedFd,
    reaped: Option<i32>,
    /// muxtrace ended it (the session ended first).
    terminated: bool,
}

impl Launched {
    /// Forks; the child waits on a pipe, then execs `argv`. With `output`,
    /// its stdout and stderr go there and its stdin is /dev/null: the
    /// dashboard owns the terminal, and a command that logs would write over
    /// it, one that reads would take its keys.
    pub fn start(argv: &[String], output: Option<&std::fs::File>) -> Result<Launched> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

        let program = resolve_program(&argv[0])?;
        let to_c = |s: &[u8]| {
            CString::new(s).map_err(|_| UserError::usage("a command argument contains a NUL byte"))
        };
        let path = to_c(program.as_os_str().as_bytes())?;
        let args: Vec<CString> = argv
            .iter()
            .map(|a| to_c(a.as_bytes()))
            .collect::<Result<_>>()?;
        let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        arg_ptrs.push(std::ptr::null());
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());

        let redirect = match output {
            Some(out) => {
                let null = std::fs::File::open("/dev/null").map_err(|e| {
                    UserError::runtime(format!("cannot open /dev/null for the command: {e}"))
                })?;
                Some((null, out.as_raw_fd()))
            }
            None => None,
        };
        let redirect_fds = redirect
            .as_ref()
            .map(|(null, out)| (null.as_raw_fd(), *out));
        let gate = pipe()?;
        let errors = pipe()?;
        // SAFETY: the child only calls async-signal-safe functions (read,
        // close, dup2, execve, write, _exit) on memory prepared before the
        // fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(UserError::runtime(format!(
                "cannot start {}: fork failed: {}",
                argv[0],
                std::io::Error::last_os_error()
            )));
        }
        if pid == 0 {
            unsafe {
                libc::close(gate.1);
                libc::close(errors.0);
                let mut byte = 0u8;
                // Blocks until the parent has added us to the traced set.
                libc::read(gate.0, (&raw mut byte).cast(), 1);
                libc::close(gate.0);
                if let Some((null, out)) = redirect_fds {
                    libc::dup2(null, 0);
                    libc::dup2(out, 1);
                    libc::dup2(out, 2);
                }
                libc::execve(path.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(errors.1, (&raw const errno).cast(), 4);
                libc::_exit(127);
            }
        }
        // SAFETY: the fds were just created by pipe2 and are owned here.
        unsafe {
            libc::close(gate.0);
            libc::close(errors.1);
            Ok(Launched {
                pid: pid as u32,
                gate: Some(OwnedFd::from_raw_fd(gate.1)),
                exec_error: OwnedFd::from_raw_fd(errors.0),
                reaped: None,
                terminated: false,
            })
        }
    }

    /// Lets the child exec; fails if exec failed.
    pub fn release(&mut self, argv0: &str) -> Result<()> {
        use std::os::fd::AsRawFd;
        if let Some(gate) = self.gate.take() {
            let byte = 1u8;
            // SAFETY: writing one byte from a local to an owned fd.
            unsafe { libc::write(gate.as_raw_fd(), (&raw const byte).cast(), 1) };
        }
        let mut errno = 0i32;
        // SAFETY: reading into a local; EOF (exec succeeded, CLOEXEC) returns 0.
        let n = unsafe { libc::read(self.exec_error.as_raw_fd(), (&raw mut errno).cast(), 4) };
        if n == 4 {
            self.wait_blocking();
            return Err(UserError::usage(format!(
                "cannot run {argv0}: {}",
                std::io::Error::from_raw_os_error(errno)
            )));
        }
        Ok(())
    }

    /// Reaps the child if it has exited; returns whether it has.
    pub fn try_reap(&mut self) -> bool {
        if self.reaped.is_some() {
            return true;
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(self.pid as i32, &mut status, libc::WNOHANG) };
        if rc == self.pid as i32 || rc < 0 {
            self.reaped = Some(status);
            return true;
        }
        false
    }

    fn wait_blocking(&mut self) {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
        self.reaped = Some(status);
    }

    /// Stops the child if it still runs (muxtrace was interrupted).
    /// How the command ended, when it ended by itself and not well: a
    /// tracer that wraps a command must not hide its failure behind its own
    /// exit status 0. None for a clean exit, one muxtrace ended, or one
    /// still running.
    pub fn failure(&self) -> Option<String> {
        let status = self.reaped.filter(|_| !self.terminated)?;
        if libc::WIFEXITED(status) {
            let code = libc::WEXITSTATUS(status);
            return (code != 0).then(|| format!("exited with status {code}"));
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            // SAFETY: strsignal returns a static or thread-local string,
            // copied at once.
            let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(signal)) }
                .to_string_lossy()
                .into_owned();
            return Some(format!("was killed by signal {signal} ({name})"));
        }
        None
    }

    pub fn terminate(&mut self) {
        if !self.try_reap() {
            self.terminated = true;
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
            for _ in 0..50 {
                if self.try_reap() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // SAFETY: as above.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
            self.wait_blocking();
        }
    }
}

/// (read end, write end), both close-on-exec.
fn pipe() -> Result<(i32, i32)> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(UserError::runtime(format!(
            "pipe2 failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok((fds[0], fds[1]))
}

/// Finds the program like a shell would, before forking.
fn resolve_program(name: &str) -> Result<PathBuf> {
    let not_found = || {
        UserError::usage(format!("cannot run {name}: command not found"))
            .hint("give a path or a program on $PATH")
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(not_found())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(OsStr::new(name));
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(not_found())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dup'd epoll fd is one instance, listed once under its lowest fd;
    /// a second epoll instance is listed apart.
    #[test]
    fn a_duplicated_epoll_fd_is_one_set() {
        // SAFETY: plain fd calls on fds this test owns and closes.
        let (first, copy, other) = unsafe {
            let first = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            let copy = libc::fcntl(first, libc::F_DUPFD_CLOEXEC, 0);
            let other = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            (first, copy, other)
        };
        assert!(first >= 0 && copy >= 0 && other >= 0);
        let sets = epoll_sets(std::process::id());
        let fds: Vec<u32> = sets.iter().map(|&(fd, _)| fd).collect();
        // SAFETY: closing the fds opened above.
        unsafe {
            libc::close(first);
            libc::close(copy);
            libc::close(other);
        }
        assert!(fds.contains(&(first as u32)), "{sets:?}");
        assert!(!fds.contains(&(copy as u32)), "{sets:?}");
        assert!(fds.contains(&(other as u32)), "{sets:?}");
    }

    /// Titles as nginx and PostgreSQL set them are read; a command line
    /// with arguments, or one of another program, is not shown.
    #[test]
    fn a_title_is_the_name_a_colon_and_what_follows() {
        assert_eq!(
            title_of(b"nginx: worker process\0\0\0\0", b"nginx").as_deref(),
            Some("nginx: worker process")
        );
        assert_eq!(
            title_of(b"postgres: checkpointer   \0", b"postgres").as_deref(),
            Some("postgres: checkpointer")
        );
        assert_eq!(title_of(b"/usr/sbin/nginx\0-c\0x.conf\0", b"nginx"), None);
        assert_eq!(title_of(b"nginx\0-g\0daemon off;\0", b"nginx"), None);
        assert_eq!(title_of(b"", b"nginx"), None);
        let long = [b"nginx: ".as_slice(), &[b'x'; 200]].concat();
        let title = title_of(&long, b"nginx").unwrap();
        assert_eq!(title.chars().count(), TITLE_MAX);
        assert!(title.ends_with('…'), "{title}");
    }

    #[test]
    fn own_process_resolves() {
        let me = std::process::id();
        let ids = resolve_pids(&[i64::from(me)]).unwrap();
        assert_eq!(ids[0].pid, me);
        assert!(ids[0].alive());
    }

    /// With no fd left, /proc cannot be read: that is not the process's exit.
    #[test]
    fn a_failed_proc_read_is_not_an_exit() {
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(parse_stat(Err(emfile)).is_err());
        let gone = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert!(matches!(parse_stat(Err(gone)), Ok(None)));
        let esrch = std::io::Error::from_raw_os_error(libc::ESRCH);
        assert!(matches!(parse_stat(Err(esrch)), Ok(None)));
        let fields = parse_stat(Ok(b"7 (a) b) S 1 7".to_vec())).unwrap().unwrap();
        assert_eq!(fields, ["S", "1", "7"]);
    }

    /// A zombie main thread with others still running is a live process.
    #[test]
    fn a_zombie_main_thread_is_an_exit_only_when_it_is_the_last() {
        let stat = |state: &str, threads: u32| {
            let mut f: Vec<String> = (0..20).map(|i| i.to_string()).collect();
            f[0] = state.to_owned();
            f[17] = threads.to_string();
            f
        };
        assert!(!all_threads_gone(&stat("S", 1)));
        assert!(!all_threads_gone(&stat("Z", 2)));
        assert!(all_threads_gone(&stat("Z", 1)));
        assert!(all_threads_gone(&stat("X", 3)));
        assert!(all_threads_gone(&["Z".to_owned()]));
    }

    #[test]
    fn a_child_is_a_descendant() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.iter().any(|p| p.pid == child.id()), "{found:?}");
        assert!(descendants(child.id()).is_empty());
    }

    #[test]
    fn a_kernel_thread_is_refused() {
        // kthreadd is pid 2 in the initial pid namespace.
        if comm_of(2).as_deref() == Some(b"kthreadd") {
            let e = resolve_pids(&[2]).unwrap_err();
            assert_eq!(e.code, 2);
            assert!(e.message.contains("kernel thread"), "{}", e.message);
        }
        assert!(!is_kernel_thread(std::process::id()));
    }

    /// Tests run on the host: its namespace is the initial one, whose pids
    /// need no translation.
    #[test]
    fn the_initial_pid_namespace_is_no_namespace() {
        let initial = fs::metadata("/proc/1/ns/pid")
            .ok()
            .is_some_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == INITIAL_PIDNS_INO);
        if initial {
            assert_eq!(pid_namespace().unwrap(), None);
        }
    }

    #[test]
    fn bad_pids_are_usage_errors() {
        assert_eq!(resolve_pids(&[0]).unwrap_err().code, 2);
        assert_eq!(resolve_pids(&[-3]).unwrap_err().code, 2);
        let me = i64::from(std::process::id());
        let twice = resolve_pids(&[me, me]).unwrap_err();
        assert!(twice.message.contains("twice"), "{}", twice.message);
    }

    #[test]
    fn fd_classes_from_link_targets() {
        assert_eq!(fd_class(b"socket:[1234]"), "socket");
        assert_eq!(fd_class(b"pipe:[99]"), "pipe");
        assert_eq!(fd_class(b"anon_inode:[eventpoll]"), "epoll");
        assert_eq!(fd_class(b"anon_inode:[eventfd]"), "eventfd");
        assert_eq!(fd_class(b"/dev/null"), "device");
        assert_eq!(fd_class(b"/var/log/x.log"), "file");
    }

    #[test]
    fn long_comm_is_refused_with_the_prefix() {
        let e = check_comm("a-very-long-process-name").unwrap_err();
        assert!(e.hint.unwrap().contains("a-very-long-pro"));
    }
}
