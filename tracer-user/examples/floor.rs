//! The bench's `floor` configuration: muxtrace's empty programs on every
//! tracepoint muxtrace attaches to, held until SIGINT or SIGTERM. The
//! machine's CPU under a load with these attached, against none, is what
//! the kernel spends reaching muxtrace's programs, which its own-cost figure
//! (their run time) cannot hold.
//!
//! `cargo run --release -p tracer-user --example floor` (as root); prints
//! `attached` once they are.
use std::process::ExitCode;

fn main() -> ExitCode {
    // Blocked before the attach, so a signal that comes early still waits
    // for sigwait and the programs are always detached by the drop.
    // SAFETY: plain signal-set calls on a local set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let programs = match tracer_user::EmptyPrograms::attach_everywhere() {
        Ok(programs) => programs,
        Err(e) => {
            eprintln!("floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("floor: attached: empty programs on muxtrace's tracepoints");
    let mut signal = 0;
    // SAFETY: `set` is initialised and `signal` a valid out-pointer.
    unsafe { libc::sigwait(&set, &mut signal) };
    drop(programs);
    ExitCode::SUCCESS
}
