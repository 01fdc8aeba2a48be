//! Makes life hard for the probes, in ways the hardening tests check:
//! many threads, churning threads, garbage pointers, an exec, an odd name.
//! After setup: `ready PID` on stdout, then a block in `sigwaitinfo` until
//! SIGUSR1 (except `afterexec` and `steady`), then the scenario with raw
//! syscalls, then `_exit` — after `--linger MS` in nanosleep (not traced),
//! when given last.
//!
//!   hardship threads N K     N threads alive at once, each K polls (timeout 0)
//!   hardship churn N         N threads one after another, each one poll
//!   hardship garbage         bad pointers and a huge n for select, pselect6,
//!                            ppoll and poll, then 7 good polls
//!   hardship exec K          exec itself as `afterexec K` (passing --linger
//!                            on), by the path /proc/self/exe: its comm
//!                            becomes `exe`
//!   hardship threadexec K    a second thread makes K polls, prints
//!                            `thread TID`, and execs as `exec`'s does: the
//!                            process takes that thread on under the
//!                            leader's tid, and TID is free for the kernel
//!                            to give to any new task
//!   hardship leaderexit K    the main thread ends alone (exit, not
//!                            exit_group) before `ready`, leaving a
//!                            zombie main thread; a second thread waits for
//!                            SIGUSR1, then registers both ends of a
//!                            socketpair in an epoll fd and makes K polls
//!   hardship afterexec K     K epoll_pwait2 calls (timeout 0), no waiting
//!   hardship steady MS       at once, a poll that times out after MS ms on
//!                            no fd, again and again until killed: a live
//!                            process whose calls keep coming
//!   hardship name K          renames itself (prctl) to the bytes a"b\nc\xff,
//!                            then K polls
//!   hardship children N K    N children, one after another: each forked,
//!                            makes K polls and exits, and is reaped before
//!                            the next; the parent makes no traced call

use std::{io::Write as _, ptr::null_mut};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let linger_ms = testprogs::take_linger(&mut args).unwrap_or_else(|| usage());
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let scenario = args.first().cloned().unwrap_or_else(|| usage());
    if scenario == "afterexec" {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let mut events: [libc::epoll_event; 4] = unsafe { std::mem::zeroed() };
        // SAFETY: raw syscalls with valid local buffers.
        unsafe {
            let ep = libc::epoll_create1(0);
            for _ in 0..num(1) {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    ep,
                    events.as_mut_ptr(),
                    4,
                    &ts,
                    0,
                    8usize,
                );
            }
        }
        finish(linger_ms);
    }
    if scenario == "steady" {
        let ms = num(1) as i32;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "ready {}", std::process::id());
        let _ = out.flush();
        // A negative fd is ignored by poll: each call waits its full timeout.
        let mut pfd = libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd.
            unsafe { libc::syscall(libc::SYS_poll, &mut pfd, 1, ms) };
        }
    }
    if scenario == "leaderexit" {
        let k = num(1);
        // SAFETY: signal-mask manipulation on this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            // Blocked before the spawn, so the survivor inherits it and a
            // SIGUSR1 never finds a thread that would die of it.
            libc::sigprocmask(libc::SIG_BLOCK, &set, null_mut());
        }
        std::thread::spawn(move || {
            // Only the main thread's end is waited for: `ready` then names a
            // process whose /proc/PID/stat reads Z.
            while !main_thread_is_zombie() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            testprogs::wait_for_go();
            let mut pair = [0; 2];
            // SAFETY: valid buffers; the fds live until _exit.
            unsafe {
                libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr());
                let ep = libc::epoll_create1(0);
                for fd in pair {
                    let mut ev = libc::epoll_event {
                        events: libc::EPOLLIN as u32,
                        u64: fd as u64,
                    };
                    libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
                }
            }
            polls(k);
            finish(linger_ms)
        });
        // SAFETY: SYS_exit ends this thread only, without unwinding; the
        // process lives on in the other.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
    }
    if scenario == "name" {
        let name = b"a\"b\nc\xff\0";
        // SAFETY: PR_SET_NAME with a NUL-terminated buffer.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
    testprogs::wait_for_go();
    match scenario.as_str() {
        "threads" => {
            let (n, k) = (num(1), num(2));
            // All threads live at once: each waits for the others (futex, not
            // traced) before exiting.
            let all_done = std::sync::Arc::new(std::sync::Barrier::new(n as usize));
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let all_done = std::sync::Arc::clone(&all_done);
                    std::thread::spawn(move || {
                        polls(k);
                        all_done.wait();
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
        }
        "churn" => {
            for _ in 0..num(1) {
                let _ = std::thread::spawn(|| polls(1)).join();
            }
        }
        "garbage" => garbage(),
        "exec" => exec_as_afterexec(num(1), linger_ms),
        "threadexec" => {
            let k = num(1);
            let thread = std::thread::spawn(move || {
                polls(k);
                // SAFETY: gettid has no arguments and cannot fail.
                let tid = unsafe { libc::gettid() };
                let mut out = std::io::stdout();
                let _ = writeln!(out, "thread {tid}");
                let _ = out.flush();
                exec_as_afterexec(k, linger_ms)
            });
            let _ = thread.join();
            std::process::exit(3);
        }
        "name" => polls(num(1)),
        "children" => {
            let (n, k) = (num(1), num(2));
            for _ in 0..n {
                // SAFETY: the child makes raw syscalls only, then _exits;
                // the parent reaps it (wait4 is not traced).
                unsafe {
                    let pid = libc::fork();
                    if pid == 0 {
                        polls(k);
                        libc::_exit(0);
                    }
                    if pid < 0 {
                        libc::_exit(3);
                    }
                    let mut status = 0;
                    libc::waitpid(pid, &mut status, 0);
                }
            }
        }
        _ => usage(),
    }
    finish(linger_ms);
}

/// Execs itself as `afterexec K`, passing the linger on, by the path
/// /proc/self/exe.
fn exec_as_afterexec(k: u64, linger_ms: u64) -> ! {
    let exe = std::ffi::CString::new("/proc/self/exe").unwrap();
    let a0 = std::ffi::CString::new("hardship").unwrap();
    let a1 = std::ffi::CString::new("afterexec").unwrap();
    let a2 = std::ffi::CString::new(k.to_string()).unwrap();
    let a3 = std::ffi::CString::new("--linger").unwrap();
    let a4 = std::ffi::CString::new(linger_ms.to_string()).unwrap();
    let argv = [
        a0.as_ptr(),
        a1.as_ptr(),
        a2.as_ptr(),
        a3.as_ptr(),
        a4.as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: valid NUL-terminated argv; environ is the process's own.
    unsafe {
        extern "C" {
            static environ: *const *const libc::c_char;
        }
        libc::execve(exe.as_ptr(), argv.as_ptr(), environ);
    }
    std::process::exit(3);
}

fn main_thread_is_zombie() -> bool {
    std::fs::read_to_string("/proc/self/stat").is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn polls(k: u64) {
    let mut pfd = libc::pollfd {
        fd: 0,
        events: 0,
        revents: 0,
    };
    for _ in 0..k {
        // SAFETY: one valid pollfd.
        unsafe { libc::syscall(libc::SYS_poll, &mut pfd, 1, 0) };
    }
}

/// Pointers into unmapped memory and sizes the kernel rejects: the probes
/// must count their failed reads and carry on.
fn garbage() {
    let bad = 0x10usize;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the kernel validates every pointer; ours are only passed on.
    unsafe {
        // An fd set at a bad address: one failed read.
        libc::syscall(libc::SYS_select, 64, bad, 0, 0, &tv);
        // n far beyond FD_SETSIZE with no sets: counted as truncated.
        libc::syscall(libc::SYS_select, 1i64 << 30, 0, 0, 0, &tv);
        // pselect6's sigmask pair at a bad address: one failed read.
        libc::syscall(libc::SYS_pselect6, 0, 0, 0, 0, &ts, bad);
        // ppoll's timeout at a bad address: one failed read.
        let mut pfd = libc::pollfd {
            fd: 0,
            events: 0,
            revents: 0,
        };
        libc::syscall(libc::SYS_ppoll, &mut pfd, 1, bad, 0, 8);
        // poll with a bad array and an nfds over RLIMIT_NOFILE: EINVAL.
        libc::syscall(libc::SYS_poll, bad, 0x7fff_ffffu64, 0);
    }
    polls(7);
}

fn usage() -> ! {
    eprintln!("usage: see the doc comment of testprogs/src/bin/hardship.rs");
    std::process::exit(2);
}

fn finish(linger_ms: u64) -> ! {
    let ts = libc::timespec {
        tv_sec: (linger_ms / 1000) as i64,
        tv_nsec: ((linger_ms % 1000) * 1_000_000) as i64,
    };
    // SAFETY: nanosleep then _exit: no more traced calls.
    unsafe {
        libc::nanosleep(&ts, null_mut());
        libc::_exit(0);
    }
}
