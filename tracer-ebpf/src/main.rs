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
#![no_std]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]
#![no_main]

mod args;
mod filter;
mod floor;
mod kernel;
mod maps;
mod sched;
mod syscalls;
mod uring;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
