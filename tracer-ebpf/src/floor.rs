//! Empty programs on the two raw syscall tracepoints muxtrace's syscall
//! programs sit on. They measure nothing: the `syscall_cost` bench attaches
//! them alone, and what they add to a syscall is the floor — the kernel's
//! tracepoint slow path and one program dispatch each way — under which no
//! program on these attach points can go. Never attached by muxtrace; nor
//! is the last, an empty program that measures the kernel's accounting.

use aya_ebpf::{
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};

#[btf_tracepoint(function = "sys_enter")]
pub fn floor_sys_enter(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn floor_sys_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}

// The same on the scheduler tracepoints muxtrace sits on: with the pair
// above, what the kernel spends reaching muxtrace's programs outside their
// run time, which its own-cost figure cannot see (the bench's `floor`).

#[btf_tracepoint(function = "sched_switch")]
pub fn floor_sched_switch(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_wakeup")]
pub fn floor_sched_wakeup(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn floor_sched_fork(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn floor_sched_exec(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn floor_sched_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "signal_deliver")]
pub fn floor_signal_deliver(_ctx: BtfTracePointContext) -> i32 {
    0
}

/// Never attached: muxtrace runs it through `BPF_PROG_TEST_RUN` while the
/// kernel's run-time accounting is on. An empty program's accounted run
/// time is what the accounting's window holds beyond any program's work
/// (the halves of its two clock reads inside it, and the call into the
/// program and back), which every one of muxtrace's runs carries too: the
/// own-cost figure takes it out. The call is in the floor whether or not
/// the accounting is on; the clock reads are not.
#[raw_tracepoint]
pub fn mux_accounting(_ctx: RawTracePointContext) -> i32 {
    0
}
