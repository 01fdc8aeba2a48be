//! An event loop that does known things between its waits, so the kernel
//! tests can check muxtrace's loop-health figures against what it did:
//! iteration times, stalls on and off a CPU, busy share, run-queue delay.
//!
//! Setup first; then `ready PID` on stdout and a block in `sigwaitinfo` (not
//! a traced call) until SIGUSR1; then the scenario; then `_exit`. Every wait
//! is an `epoll_wait` on an epoll fd.
//!
//!   looplab spins WAIT_MS MS [MS …]   for each MS: a wait of WAIT_MS (an
//!                                     empty set: it times out), then MS ms
//!                                     spinning on a CPU; a last wait closes
//!                                     the last iteration
//!   looplab sleeps WAIT_MS MS [MS …]  the same, sleeping MS ms in nanosleep
//!                                     (off a CPU) instead of spinning, then
//!                                     writing one byte to /dev/null
//!   looplab parks WAIT_MS MS [MS …]   the same, parked MS ms in a futex wait
//!                                     that times out, as a runtime's worker
//!                                     waits for work, then the write; a
//!                                     second thread waits on the same epoll
//!                                     fd first, as tokio's workers share one
//!                                     poller
//!   looplab locks WAIT_MS MS [MS …]   the same futex waits by a loop alone
//!                                     on its epoll fd: a loop blocked on a
//!                                     lock
//!   looplab naps WAIT_MS MS [MS …]    sleeps' nanosleep by a thread of a
//!                                     pool on one epoll fd, as parks: Go's
//!                                     sysmon between its polls
//!
//! spins and sleeps print each iteration as the program timed it, on stderr:
//! `iteration WALL_NS CPU_NS SWITCHES` (from a wait's return to the next
//! wait; SWITCHES counts the times the thread left its CPU, voluntarily or
//! not). CPU time alone is no measure of time off a CPU: the kernel leaves
//! out of it the time it spent on interrupts and, in a VM, time stolen.
//! Then `queued NS`: the time the thread spent waiting for a CPU over the
//! whole scenario — preempted between a wait's return and its clock read,
//! it delays the program's figures, not muxtrace's.
//!   looplab shares MS                 one iteration of MS ms of wall time
//!                                     spinning, between two 5 ms waits, on
//!                                     CPU 0 beside a thread that spins
//!                                     there all along: about half of it
//!                                     preempted
//!   looplab steady SPIN_MS WAIT_MS S  S seconds of: a WAIT_MS wait, SPIN_MS
//!                                     spinning (busy SPIN/(SPIN+WAIT))
//!   looplab runq N HOGS               the loop thread, pinned to CPU 0,
//!                                     waits on a pipe a feeder writes to
//!                                     20 ms after the loop read the last
//!                                     byte, N times, while HOGS threads at
//!                                     nice -15 spin on CPU 0; prints its
//!                                     own write → return latency

use std::{io::Write as _, ptr::null_mut, time::Duration};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let scenario = args.first().map(String::as_str).unwrap_or_else(|| usage());
    // Before any thread starts: threads inherit the mask, and SIGUSR1 must
    // reach only the sigwaitinfo below.
    block_go();
    let ep = epoll();
    match scenario {
        "spins" | "sleeps" | "parks" | "locks" | "naps" => {
            let wait_ms = num(1);
            let steps: Vec<u64> = (2..args.len()).map(num).collect();
            let null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null");
            // Each iteration as the program itself saw it: from just after a
            // wait's return to just before the next wait, wall and CPU time
            // (a busy machine may stretch a spin: the tests compare with this).
            let mut own = Vec::with_capacity(steps.len());
            wait_for_go();
            if scenario == "parks" || scenario == "naps" {
                // The pool's other worker, done with the poller before the
                // loop takes it.
                std::thread::spawn(move || wait(ep, wait_ms as i32))
                    .join()
                    .expect("the second worker");
            }
            let queued = run_queue_ns();
            for ms in steps {
                wait(ep, wait_ms as i32);
                let (wall, cpu, switches) = (monotonic_ns(), thread_cpu_ns(), context_switches());
                match scenario {
                    "spins" => spin(Duration::from_millis(ms)),
                    "sleeps" | "naps" => nanosleep(Duration::from_millis(ms)),
                    _ => park(Duration::from_millis(ms)),
                }
                if scenario != "spins" {
                    let _ = (&null).write(b"x");
                }
                own.push((
                    monotonic_ns() - wall,
                    thread_cpu_ns() - cpu,
                    context_switches() - switches,
                ));
            }
            wait(ep, wait_ms as i32);
            for (wall, cpu, switches) in own {
                eprintln!("iteration {wall} {cpu} {switches}");
            }
            eprintln!("queued {}", run_queue_ns() - queued);
        }
        "steady" => {
            let (spin_ms, wait_ms, seconds) = (num(1), num(2), num(3));
            wait_for_go();
            let start = now();
            let end = start + Duration::from_secs(seconds);
            let mut n = 0;
            while now() < end {
                wait(ep, wait_ms as i32);
                spin(Duration::from_millis(spin_ms));
                n += 1;
            }
            wait(ep, 0);
            eprintln!("steady: {n} iterations in {:?}", start.elapsed());
        }
        "runq" => runq(num(1), num(2)),
        "shares" => shares(Duration::from_millis(num(1))),
        _ => usage(),
    }
    // SAFETY: ends the process without running destructors.
    unsafe { libc::_exit(0) };
}

fn usage() -> ! {
    eprintln!("usage: see the doc comment of testprogs/src/bin/looplab.rs");
    std::process::exit(2);
}

fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Off a CPU for `d`, in nanosleep itself (std's sleep is clock_nanosleep).
fn nanosleep(d: Duration) {
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    };
    // SAFETY: a valid timespec; an early return (a signal) only shortens it.
    unsafe { libc::nanosleep(&ts, null_mut()) };
}

/// Asleep in `futex(FUTEX_WAIT)` for `d`: nobody wakes the word, so the
/// wait times out, as a parked worker's does when no work comes.
fn park(d: Duration) {
    let word = std::sync::atomic::AtomicU32::new(0);
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    };
    // SAFETY: a private futex word that lives across the call, a valid
    // timespec; an early return (a signal) only shortens the park.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            0u32,
            &ts,
        )
    };
}

/// On a CPU for `d`: clock reads through the vDSO, no syscall.
/// One iteration that shares CPU 0 with a spinning thread of equal weight.
fn shares(d: Duration) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hog = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            pin_to_cpu0();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    let ep = epoll();
    wait_for_go();
    pin_to_cpu0();
    wait(ep, 5);
    spin(d);
    wait(ep, 5);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = hog.join();
}

fn spin(d: Duration) {
    let end = now() + d;
    while now() < end {
        std::hint::spin_loop();
    }
}

fn epoll() -> i32 {
    // SAFETY: plain syscall.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1");
    ep
}

/// One epoll_wait of up to `timeout_ms`.
fn wait(ep: i32, timeout_ms: i32) -> i32 {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    // SAFETY: a valid buffer of 8 events.
    unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 8, timeout_ms) }
}

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t with CPU 0 set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The loop thread and the hogs share CPU 0; a feeder on any CPU makes the
/// loop thread ready every 20 ms; each wakeup waits for CPU 0.
fn runq(n: u64, hogs: u64) {
    let mut fds = [0i32; 2];
    // SAFETY: a valid two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read_end, write_end) = (fds[0], fds[1]);
    let ep = epoll();
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY: a valid event for an open fd.
    assert_eq!(
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, read_end, &mut event) },
        0
    );
    pin_to_cpu0();
    // The hogs start after the go: before it, muxtrace is attaching, and
    // on a small machine they would starve it too.
    wait_for_go();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for _ in 0..hogs {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            pin_to_cpu0();
            // Heavier than the loop thread (nice -15, as root): the
            // scheduler makes a woken loop thread wait for its turn.
            // SAFETY: setting this thread's own nice value.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -15) };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
    }
    // When the feeder wrote, for the loop thread's own latency measure. The
    // feeder writes the next byte only once the loop has read the last one,
    // so every wait blocks and each latency is timed from its own write.
    let written_at = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (consumed, next) = std::sync::mpsc::channel::<()>();
    let feeder = {
        let written_at = std::sync::Arc::clone(&written_at);
        std::thread::spawn(move || {
            for _ in 0..n {
                std::thread::sleep(Duration::from_millis(20));
                written_at.store(monotonic_ns(), std::sync::atomic::Ordering::SeqCst);
                // SAFETY: writing one byte from a local.
                unsafe { libc::write(write_end, b"x".as_ptr().cast(), 1) };
                if next.recv().is_err() {
                    break;
                }
            }
        })
    };
    let mut byte = [0u8; 1];
    let (mut sum, mut max) = (0u64, 0u64);
    for _ in 0..n {
        while wait(ep, -1) <= 0 {}
        let latency =
            monotonic_ns().saturating_sub(written_at.load(std::sync::atomic::Ordering::SeqCst));
        sum += latency;
        max = max.max(latency);
        // SAFETY: reading one byte into a local.
        unsafe { libc::read(read_end, byte.as_mut_ptr().cast(), 1) };
        let _ = consumed.send(());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = feeder.join();
    // Write → the loop's code running again: wakeup, run queue, exit path.
    eprintln!(
        "runq: {n} wakeups, write to return: mean {} ns, max {max} ns",
        sum / n.max(1)
    );
}

/// How often this thread has left its CPU: blocked or preempted.
fn context_switches() -> u64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer; RUSAGE_THREAD reports the calling thread.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    (usage.ru_nvcsw + usage.ru_nivcsw) as u64
}

/// How long this thread has waited on a run queue, ns (schedstat's second
/// field).
fn run_queue_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

/// This thread's CPU time in ns.
fn thread_cpu_ns() -> u64 {
    testprogs::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CLOCK_MONOTONIC in ns: the clock the kernel's programs stamp with.
fn monotonic_ns() -> u64 {
    testprogs::clock_ns(libc::CLOCK_MONOTONIC)
}

fn go_set() -> libc::sigset_t {
    // SAFETY: building a signal set in a local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        set
    }
}

fn block_go() {
    let set = go_set();
    // SAFETY: blocking a signal for this thread (and those it starts).
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, null_mut()) };
}

fn wait_for_go() {
    let set = go_set();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready {}", std::process::id());
    let _ = out.flush();
    // SAFETY: waiting for a blocked signal with a valid set.
    while unsafe { libc::sigwaitinfo(&set, null_mut()) } < 0 {}
}
