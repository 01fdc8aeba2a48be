//! muxtrace's eBPF programs: one `sys_enter`/`sys_exit` pair per traced
//! syscall, plus the scheduler tracepoints that split a call's wall time into
//! on- and off-CPU and keep the traced set up to date.
//!
//! They only measure and aggregate: every call of a traced process is folded
//! into per-CPU aggregates keyed by (tgid, syscall kind), and per-thread
//! running totals. No event per syscall leaves the kernel, and no map entry is
//! inserted or removed on the hot path (a thread's slot is inserted on its
//! first traced call and removed when it exits). Policy — what to trace, what
//! it means — lives in user space.
//!
//! - [`maps`]: every map and load-time global;
//! - [`filter`]: who is traced, and the slots of traced threads and processes;
//! - [`args`]: reading syscall arguments and user memory;
//! - [`kernel`]: reading the kernel's fd tables and eventpolls;
//! - [`syscalls`]: the enter/exit programs;
//! - [`sched`]: the scheduler programs;
//! - [`floor`]: empty programs, the floor the bench measures against.
//!
//! They build for the bpf target only (tracer-user's build.rs builds them);
//! built for the host, as `cargo build --workspace` does, this is an empty
//! program that says so.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(target_arch = "bpf")]
mod args;
#[cfg(target_arch = "bpf")]
mod filter;
#[cfg(target_arch = "bpf")]
mod floor;
#[cfg(target_arch = "bpf")]
mod kernel;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod sched;
#[cfg(target_arch = "bpf")]
mod syscalls;
#[cfg(target_arch = "bpf")]
mod uring;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("tracer-ebpf holds eBPF programs: it builds for the bpf target, by tracer-user's build.rs; there is nothing to run here");
    std::process::exit(2);
}

#[cfg(all(not(test), target_arch = "bpf"))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
