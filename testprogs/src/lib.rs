//! What the test programs share: the `--linger MS` argument and the start
//! signal. Each prints `ready PID` and blocks in `sigwaitinfo` (not a traced
//! call) until SIGUSR1, so a tracer attaches in between and sees nothing of
//! the program's set-up.

use std::{io::Write as _, ptr::null_mut};

/// Takes `--linger MS` (last) out of `args`: 0 when absent, `None` when its
/// value is missing or not a number.
pub fn take_linger(args: &mut Vec<String>) -> Option<u64> {
    let Some(i) = args.iter().position(|a| a == "--linger") else {
        return Some(0);
    };
    let ms = args.get(i + 1)?.parse().ok()?;
    args.truncate(i);
    Some(ms)
}

/// `clock` in ns (CLOCK_MONOTONIC, a thread's CPU time…).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a local timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Blocks SIGUSR1 (threads spawned later inherit the mask, which is
/// harmless), says `ready PID` on stdout and waits for it.
pub fn wait_for_go() {
    // SAFETY: signal-mask manipulation on this thread, and a wait for a
    // blocked signal with a valid set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigprocmask(libc::SIG_BLOCK, &set, null_mut());
        let mut out = std::io::stdout();
        let _ = writeln!(out, "ready {}", std::process::id());
        let _ = out.flush();
        while libc::sigwaitinfo(&set, null_mut()) < 0 {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn linger_is_taken_off_the_end_or_refused() {
        let mut args = words("children 5 3 --linger 600");
        assert_eq!(take_linger(&mut args), Some(600));
        assert_eq!(args, words("children 5 3"));
        let mut none = words("nops 100 8");
        assert_eq!(take_linger(&mut none), Some(0));
        assert_eq!(none, words("nops 100 8"));
        assert_eq!(take_linger(&mut words("x --linger")), None);
        assert_eq!(take_linger(&mut words("x --linger soon")), None);
    }
}
