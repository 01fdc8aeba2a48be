//! Zero-timeout `poll` calls at a fixed rate, then the CPU time they took:
//! the bench checks muxtrace's own-cost figure against what tracing added
//! to it. Paced, not flat out, so the calls made do not depend on what each
//! costs: a loop that runs flat out makes fewer calls while muxtrace samples
//! its cost (the kernel's accounting slows each one), and its CPU is always
//! all of one core.
//!
//!   pacer RATE SECONDS   after `ready PID` and SIGUSR1: RATE calls a second
//!                        (rounded up to a whole number a millisecond), a
//!                        burst every millisecond (absolute clock), for
//!                        SECONDS; then on stdout `calls N cpu_ns C wall_ns W`
//!                        (the thread's CPU time from the scheduler's clock).
//!                        A wall time past SECONDS means it fell behind: it
//!                        ran flat out, and its figures mean nothing.

use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(rate), Some(ms_total)) = (
        args.first().and_then(|v| v.parse::<u64>().ok()),
        args.get(1)
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|s| s.checked_mul(1000)),
    ) else {
        eprintln!("usage: pacer RATE SECONDS");
        std::process::exit(2);
    };
    testprogs::wait_for_go();
    let per_ms = rate.div_ceil(1000);
    let mut pollfd = libc::pollfd {
        fd: 0,
        events: 0,
        revents: 0,
    };
    let start = testprogs::clock_ns(libc::CLOCK_MONOTONIC);
    let cpu_start = testprogs::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    let mut calls = 0u64;
    for ms in 1..=ms_total {
        for _ in 0..per_ms {
            // SAFETY: one valid pollfd, no timeout.
            unsafe { libc::syscall(libc::SYS_poll, &mut pollfd, 1, 0) };
        }
        calls += per_ms;
        let due = start + ms * 1_000_000;
        let ts = libc::timespec {
            tv_sec: (due / 1_000_000_000) as libc::time_t,
            tv_nsec: (due % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: a valid timespec; an early return (a signal) only shortens
        // one pause.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
    }
    let cpu = testprogs::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) - cpu_start;
    let wall = testprogs::clock_ns(libc::CLOCK_MONOTONIC) - start;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "calls {calls} cpu_ns {cpu} wall_ns {wall}");
    let _ = out.flush();
}
