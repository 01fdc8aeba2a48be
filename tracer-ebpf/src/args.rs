//! Reading a syscall's arguments from its saved registers, and the user
//! memory they point at (fd sets, timeouts).

use aya_ebpf::{
    cty::c_void,
    helpers::{
        bpf_get_current_task, bpf_loop, bpf_probe_read_kernel, bpf_probe_read_user,
        bpf_probe_read_user_buf,
    },
    programs::BtfTracePointContext,
};
use tracer_common::Stat;

use crate::{
    filter::lost,
    kernel,
    maps::{nofile_limit_offsets, USER_SCRATCH},
};

/// A syscall's registers as the kernel saved them at entry: `struct pt_regs`
/// on x86_64, whose layout is the ABI's. The raw syscall tracepoints hand
/// the programs a pointer to it; BTF lets them load from it directly.
#[derive(Clone, Copy)]
pub struct Regs(*const u64);

impl Regs {
    #[inline(always)]
    pub fn of(ctx: &BtfTracePointContext) -> Regs {
        Regs(ctx.arg(0))
    }

    /// Where the registers are: the top of the calling task's kernel
    /// stack, so one live thread's alone.
    #[inline(always)]
    pub fn addr(&self) -> u64 {
        self.0 as u64
    }

    #[inline(always)]
    fn word(&self, index: usize) -> u64 {
        // SAFETY: `index` < 21 words of struct pt_regs; the verifier checks
        // each load against the kernel's BTF for the type.
        unsafe { core::ptr::read_volatile(self.0.add(index)) }
    }

    /// The `i`-th syscall argument (x86_64: di, si, dx, r10, r8, r9).
    #[inline(always)]
    pub fn arg(&self, i: usize) -> u64 {
        self.word(match i {
            0 => 14,
            1 => 13,
            2 => 12,
            3 => 7,
            4 => 9,
            _ => 8,
        })
    }

    /// The syscall number (`orig_ax`): at exit, which call is returning.
    #[inline(always)]
    pub fn nr(&self) -> i64 {
        self.word(15) as i64
    }
}

/// The calling thread's id, for log lines on rare paths.
#[inline(always)]
pub fn current_tid() -> u32 {
    kernel::current_pid_tgid() as u32
}

/// Sentinel for "no timeout: blocks until ready".
pub const INFINITE: u64 = u64::MAX;
pub const FD_SETSIZE: u64 = 1024;

/// Microseconds of a user `timespec`/`timeval` (`sub_unit_ns` = 1 for
/// timespec, 1000 for timeval). `None` for a NULL pointer (block forever).
#[inline(always)]
pub fn read_timeout_us(ptr: u64, sub_unit_ns: u64) -> Option<u64> {
    read_timeout(ptr, sub_unit_ns).map(|t| t.us)
}

/// A user timeout as select, pselect6 and ppoll take it.
#[derive(Clone, Copy)]
pub struct Timeout {
    pub us: u64,
    /// The kernel writes the time left back over it at the call's return,
    /// whatever the call returns: a valid timeout that is not zero
    /// (`poll_select_finish`). An invalid one fails the call first.
    pub written_back: bool,
}

/// [`read_timeout_us`], with whether the time left is written back.
#[inline(always)]
pub fn read_timeout(ptr: u64, sub_unit_ns: u64) -> Option<Timeout> {
    if ptr == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_user checks the address; a bad one is an Err.
    match unsafe { bpf_probe_read_user(ptr as *const [i64; 2]) } {
        Ok([sec, frac]) => {
            // select normalises a timeval's µs past a second; a timespec's
            // ns must be below one.
            let valid = sec >= 0 && frac >= 0 && (sub_unit_ns != 1 || frac < 1_000_000_000);
            // Clamped so the multiplication cannot overflow (no 128-bit maths in BPF).
            let whole = if sec < 0 {
                0
            } else if sec > 1 << 40 {
                1 << 40
            } else {
                sec as u64
            };
            let part = if frac < 0 { 0 } else { frac as u64 };
            Some(Timeout {
                us: whole * 1_000_000 + (part & 0xffff_ffff) * sub_unit_ns / 1000,
                written_back: valid && (sec | frac) != 0,
            })
        }
        Err(_) => {
            lost!(
                Stat::UserReadFailed,
                "cannot read a timeout at {:x} (tid {})",
                ptr,
                current_tid()
            );
            // The call fails with EFAULT: nothing is written back.
            Some(Timeout {
                us: 0,
                written_back: false,
            })
        }
    }
}

/// Reads two u64s from user memory (pselect6's `{sigset_t *, size_t}`).
#[inline(always)]
pub fn read_user_pair(ptr: u64) -> Option<[u64; 2]> {
    // SAFETY: bpf_probe_read_user checks the address; a bad one is an Err.
    match unsafe { bpf_probe_read_user(ptr as *const [u64; 2]) } {
        Ok(pair) => Some(pair),
        Err(_) => {
            lost!(
                Stat::UserReadFailed,
                "cannot read pselect6's sigmask argument at {:x} (tid {})",
                ptr,
                current_tid()
            );
            None
        }
    }
}

/// Popcount of one fd set's first `n` bits, read from user memory in one go
/// into the per-CPU scratch buffer.
#[inline(never)]
pub fn fd_set_popcount(ptr: u64, n: u64) -> u64 {
    if ptr == 0 || n == 0 {
        return 0;
    }
    let Some(buf) = USER_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: a per-CPU map value: nothing else uses it while this runs.
    let buf = unsafe { &mut *buf };
    let words = n.div_ceil(64);
    let bytes = (words * 8) as usize;
    // Bounded for the verifier: 8..=128 bytes.
    let bytes = if bytes > 128 { 128 } else { bytes };
    // SAFETY: `bytes & 0xff` ≤ 128 bytes lie inside `buf` (512 bytes).
    let dst =
        unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), bytes & 0xff) };
    if bytes == 0 || dst.len() > 128 {
        return 0;
    }
    // SAFETY: the helper checks the user address; `dst` is a valid buffer.
    if unsafe { bpf_probe_read_user_buf(ptr as *const u8, dst) }.is_err() {
        lost!(
            Stat::UserReadFailed,
            "cannot read a select fd set at {:x} (tid {})",
            ptr,
            current_tid()
        );
        return 0;
    }
    let mut count = 0u64;
    let last = (words - 1) as usize;
    let tail_bits = n - (words - 1) * 64;
    let mut i = 0usize;
    while i < 16 {
        if i > last {
            break;
        }
        let mut w = buf[i];
        if i == last && tail_bits < 64 {
            w &= (1u64 << tail_bits) - 1;
        }
        count += w.count_ones() as u64;
        i += 1;
    }
    count
}

/// pollfds read from user memory at once (the scratch buffer's 512 bytes).
const POLLFDS_PER_READ: u64 = 64;
/// pollfds read at most per call: fs.nr_open's default, which bounds
/// RLIMIT_NOFILE and so `nfds` (the kernel refuses a larger poll with
/// EINVAL). The runs are a `bpf_loop`, whose callback the verifier walks
/// once, so the bound costs nothing at attach (an unrolled 1,024 took ~10
/// ms, 4,096 ~70 ms).
pub const POLLFDS_READ_MAX: u64 = 1 << 20;

/// The negative fds among the `n` (1..=[`POLLFDS_PER_READ`]) pollfds at
/// `ptr`, read into `buf`; `None` when the helper cannot read them.
#[inline(always)]
fn negative_pollfds(buf: &mut [u64; 64], ptr: u64, n: u64) -> Option<u64> {
    // 8..=512 bytes, bounded for the verifier.
    let bytes = (n * 8) as usize & 0x3ff;
    if bytes == 0 || bytes > 512 {
        return Some(0);
    }
    // SAFETY: `bytes` ≤ 512 lie inside `buf` (512 bytes).
    let dst = unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), bytes) };
    // SAFETY: the helper checks the user address; `dst` is a valid buffer.
    if unsafe { bpf_probe_read_user_buf(ptr as *const u8, dst) }.is_err() {
        return None;
    }
    // `struct pollfd` is {int fd; short events; short revents}: the fd is
    // the low half of each little-endian word, negative when its bit 31 is
    // set.
    let mut negative = 0;
    let mut i = 0usize;
    while i < POLLFDS_PER_READ as usize {
        if i as u64 >= n {
            break;
        }
        negative += (buf[i] >> 31) & 1;
        i += 1;
    }
    Some(negative)
}

/// Counts a run of pollfds the helper could not read: they stay counted
/// as watched.
#[inline(always)]
fn lose_unreadable_run(ptr: u64, first: u64) {
    lost!(
        Stat::UserReadFailed,
        "cannot read poll's fds {}.. at {:x}: counted as watched (tid {})",
        first,
        ptr,
        current_tid()
    );
}

/// The `bpf_loop` callback's context: the array, how many of its entries
/// to read, and the negative fds found so far.
#[repr(C)]
struct PollfdScan {
    ptr: u64,
    to_read: u64,
    negative: u64,
}

/// One `bpf_loop` pass: the negative fds of run `index + 1` (the first is
/// read inline). Returns 1 (stop) at the end or at an unreadable run.
extern "C" fn count_negative_pollfds(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `PollfdScan` on `pollfds_watched`'s stack, which
    // bpf_loop hands to every pass.
    let scan = unsafe { &mut *ctx.cast::<PollfdScan>() };
    let first = ((index & 0xffff_ffff) + 1) * POLLFDS_PER_READ;
    if first >= scan.to_read {
        return 1;
    }
    let Some(buf) = USER_SCRATCH.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: a per-CPU map value: nothing else uses it while this runs.
    let buf = unsafe { &mut *buf };
    let n = (scan.to_read - first).min(POLLFDS_PER_READ);
    match negative_pollfds(buf, scan.ptr + first * 8, n) {
        Some(negative) => {
            scan.negative += negative;
            0
        }
        None => {
            lose_unreadable_run(scan.ptr, first);
            1
        }
    }
}

/// The calling task's RLIMIT_NOFILE soft limit, `None` where unknown.
#[inline(always)]
fn nofile_limit() -> Option<u64> {
    let (task_signal, signal_nofile) = nofile_limit_offsets();
    if task_signal == 0 {
        return None;
    }
    // SAFETY: bpf_get_current_task has no preconditions; the reads check
    // their kernel addresses.
    unsafe {
        let task = bpf_get_current_task();
        let signal = bpf_probe_read_kernel((task + u64::from(task_signal)) as *const u64).ok()?;
        bpf_probe_read_kernel((signal + u64::from(signal_nofile)) as *const u64).ok()
    }
}

/// The entries of a poll's array that name an fd: the kernel skips an
/// entry whose fd is negative (servers such as lighttpd keep free slots
/// that way: 224 of 425 entries in one poll a helper saw), so `nfds`
/// overstates what it polls. Entries past [`POLLFDS_READ_MAX`] count as
/// watched, unread (`Stat::PollTruncated`), and so do those of a run the
/// helper could not read (`Stat::UserReadFailed`: a bad pointer fails the
/// call with EFAULT, which watches nothing, but a page the helper may not
/// fault in, swapped out, the kernel's own copy reads). The first run is
/// read inline, the rest in a `bpf_loop`: the loop's callback costs a
/// poll of one run ~10 ns. A poll over its RLIMIT_NOFILE is refused
/// (EINVAL) and not read: any process could otherwise make each of its
/// calls read 8 MiB.
#[inline(never)]
pub fn pollfds_watched(ptr: u64, nfds: u64) -> u64 {
    if nfds == 0 {
        return 0;
    }
    if nfds > POLLFDS_PER_READ && nofile_limit().is_some_and(|limit| nfds > limit) {
        return 0;
    }
    let to_read = if nfds > POLLFDS_READ_MAX {
        lost!(
            Stat::PollTruncated,
            "poll of {} fds: entries past {} counted as watched, unread (tid {})",
            nfds,
            POLLFDS_READ_MAX,
            current_tid()
        );
        POLLFDS_READ_MAX
    } else {
        nfds
    };
    let Some(buf) = USER_SCRATCH.get_ptr_mut(0) else {
        return nfds;
    };
    // SAFETY: a per-CPU map value: nothing else uses it while this runs.
    let buf = unsafe { &mut *buf };
    let Some(negative) = negative_pollfds(buf, ptr, to_read.min(POLLFDS_PER_READ)) else {
        lose_unreadable_run(ptr, 0);
        return nfds;
    };
    if to_read <= POLLFDS_PER_READ {
        return nfds - negative;
    }
    let mut scan = PollfdScan {
        ptr,
        to_read,
        negative,
    };
    let runs = (to_read.div_ceil(POLLFDS_PER_READ) - 1) as u32;
    // SAFETY: the callback matches bpf_loop's contract and reads `scan`
    // only for the duration of the call.
    unsafe {
        bpf_loop(
            runs,
            count_negative_pollfds as *mut c_void,
            (&mut scan as *mut PollfdScan).cast(),
            0,
        );
    }
    nfds - scan.negative
}
