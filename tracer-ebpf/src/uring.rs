//! The io_uring programs, on the io_uring tracepoints (BTF-typed, like the
//! syscall and scheduler programs: they run before the kernel formats a
//! trace record, and read the request at the offsets user space found in
//! the kernel's BTF — the counterpart of reading the tracefs `format`).
//!
//! A request is attributed to the process of the task its tracepoint runs
//! in: the submitter (or its ring's SQ thread) at submission; at
//! completion, the submitter running its task work, or an io-wq worker
//! that completes on its behalf. The SQ thread and the io-wq workers are
//! threads of the ring owner's process (same tgid), so one array load
//! (`maybe_traced`) still turns every other task away first.
//!
//! Per request: its submission time and path (internal poll, io-wq punt)
//! in an LRU map from submission to its last CQE; per (process, opcode):
//! counts, results, bytes, errors, paths and latency, per CPU.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{
    btf_ids, bucket,
    uring::{self, IORING_CQE_F_MORE, IORING_SETUP_SQPOLL, OP_AUX},
    uring_path, ErrnoClass, Stat, StatsKey, UringReq, UringStats,
};

use crate::{
    filter::{is_traced, lost, maybe_traced},
    kernel,
    maps::{self, uring_offsets, URING_REQS, URING_STATS, ZERO_URING},
};

/// A `struct io_kiocb *` handed to a program by the kernel, BTF-typed.
#[derive(Clone, Copy)]
struct Req(*const u8);

impl Req {
    #[inline(always)]
    fn arg(ctx: &BtfTracePointContext, n: usize) -> Req {
        Req(ctx.arg(n))
    }

    /// A field at a BTF offset.
    #[inline(always)]
    fn field<T: Copy>(&self, offset: u32) -> T {
        // SAFETY: the offset is a member of io_kiocb read from the kernel's
        // BTF; the verifier checks the load against that BTF.
        unsafe { core::ptr::read_volatile(self.0.add(offset as usize).cast::<T>()) }
    }

    #[inline(always)]
    fn id(&self) -> u64 {
        self.0 as u64
    }
}

/// The traced process of the current task, `None` for any other.
#[inline(always)]
fn traced_tgid() -> Option<u32> {
    let tgid = (kernel::current_pid_tgid() >> 32) as u32;
    // A request's tracepoints run far less often than syscalls: the exact
    // lookup after the candidates filter is affordable here (io threads
    // have no thread slot that would stand for it).
    (maybe_traced(tgid) && is_traced(tgid)).then_some(tgid)
}

/// The (process, opcode) aggregate on this CPU, created on first use.
#[inline(always)]
fn uring_slot(tgid: u32, op: u8) -> Option<&'static mut UringStats> {
    let key = StatsKey {
        tgid,
        kind: u32::from(op),
    };
    if let Some(p) = URING_STATS.get_ptr_mut(key) {
        // SAFETY: a per-CPU map value: no other program writes this CPU's
        // copy while this one runs.
        return Some(unsafe { &mut *p });
    }
    let zero = ZERO_URING.get_ptr(0)?;
    // SAFETY: ZERO_URING is never written: a valid, zeroed value.
    let zero = unsafe { &*zero };
    if URING_STATS.insert(key, zero, 0).is_err() {
        lost!(
            Stat::StatsMapFull,
            "aggregate map full: pid {} io_uring opcode {} is not counted",
            tgid,
            op
        );
        return None;
    }
    // SAFETY: as above.
    URING_STATS.get_ptr_mut(key).map(|p| unsafe { &mut *p })
}

/// A request is submitted: `io_uring_submit_req(req)`.
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn mux_uring_submit(ctx: BtfTracePointContext) -> i32 {
    let Some(tgid) = traced_tgid() else {
        return 0;
    };
    let req = Req::arg(&ctx, 0);
    let o = uring_offsets();
    let op: u8 = req.field(o.kiocb_opcode);
    let ring: *const u8 = req.field(o.kiocb_ctx);
    let sqpoll = !ring.is_null() && {
        // SAFETY: a member of io_ring_ctx at its BTF offset, from a
        // BTF-typed pointer the verifier follows.
        let flags: u32 = unsafe { core::ptr::read_volatile(ring.add(o.ctx_flags as usize).cast()) };
        flags & IORING_SETUP_SQPOLL != 0
    };
    // SAFETY: the helper has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let inflight = UringReq {
        submit_ns: now,
        path: 0,
        _pad: 0,
    };
    // An LRU map: a full one evicts its oldest request, whose last CQE then
    // counts without a latency.
    let _ = URING_REQS.insert(req.id(), inflight, 0);
    if let Some(s) = uring_slot(tgid, op) {
        s.submitted += 1;
        if sqpoll {
            s.sqpoll_submitted += 1;
        }
    }
    0
}

/// Marks the request's path and counts the event.
#[inline(always)]
fn on_path(req: Req, tgid: u32, bit: u32) {
    if let Some(r) = URING_REQS.get_ptr_mut(req.id()) {
        // SAFETY: a map value, valid for the program's run.
        unsafe { (*r).path |= bit };
    }
    let op: u8 = req.field(uring_offsets().kiocb_opcode);
    if let Some(s) = uring_slot(tgid, op) {
        if bit == uring_path::POLLED {
            s.poll_arms += 1;
        } else {
            s.async_punts += 1;
        }
    }
}

/// The file was not ready: the kernel arms an internal poll and retries
/// the request when it is. `io_uring_poll_arm(req, mask, events)`.
#[btf_tracepoint(function = "io_uring_poll_arm")]
pub fn mux_uring_poll(ctx: BtfTracePointContext) -> i32 {
    let Some(tgid) = traced_tgid() else {
        return 0;
    };
    on_path(Req::arg(&ctx, 0), tgid, uring_path::POLLED);
    0
}

/// The request goes to an io-wq worker thread (it would block, or
/// IOSQE_ASYNC asked). `io_uring_queue_async_work(req, rw)`.
#[btf_tracepoint(function = "io_uring_queue_async_work")]
pub fn mux_uring_async(ctx: BtfTracePointContext) -> i32 {
    let Some(tgid) = traced_tgid() else {
        return 0;
    };
    on_path(Req::arg(&ctx, 0), tgid, uring_path::PUNTED);
    0
}

/// A CQE is posted: `io_uring_complete(ctx, req, cqe)`. `req` is untyped
/// (`void *`, NULL for a CQE without a request), so it is read as an
/// io_kiocb at its address (`kernel::load`); the CQE is typed (its layout
/// is the UAPI's).
#[btf_tracepoint(function = "io_uring_complete")]
pub fn mux_uring_complete(ctx: BtfTracePointContext) -> i32 {
    let Some(tgid) = traced_tgid() else {
        return 0;
    };
    let req: u64 = ctx.arg(1);
    let cqe: *const u8 = ctx.arg(2);
    // SAFETY: struct io_uring_cqe { u64 user_data; s32 res; u32 flags; },
    // a BTF-typed pointer the verifier checks the loads against.
    let (res, cflags) = unsafe {
        (
            core::ptr::read_volatile(cqe.add(8).cast::<i32>()),
            core::ptr::read_volatile(cqe.add(12).cast::<u32>()),
        )
    };
    let o = uring_offsets();
    let op = if req == 0 {
        OP_AUX
    } else {
        kernel::load::<u8>(req, btf_ids::IO_KIOCB, o.kiocb_opcode).unwrap_or(OP_AUX)
    };
    complete(req, op, tgid, res, cflags);
    0
}

#[inline(never)]
fn complete(req: u64, op: u8, tgid: u32, res: i32, cflags: u32) {
    let Some(s) = uring_slot(tgid, op) else {
        return;
    };
    s.cqes += 1;
    if res < 0 {
        s.errors += 1;
        s.errno[ErrnoClass::of((-(res as i64)) as u64) as usize] += 1;
    } else if res > 0 && uring::is_payload(op) {
        let bytes = res as u64;
        s.bytes += bytes;
        s.messages += 1;
        if uring::on_socket_only(op) || on_socket(req) {
            s.socket_bytes += bytes;
            s.socket_messages += 1;
        }
    }
    if cflags & IORING_CQE_F_MORE != 0 || req == 0 {
        return;
    }
    s.completed += 1;
    let Some(r) = URING_REQS.get_ptr(req) else {
        return;
    };
    // SAFETY: a map value, valid for the program's run.
    let r = unsafe { *r };
    let _ = URING_REQS.remove(req);
    if r.path & uring_path::PUNTED != 0 {
        s.punted += 1;
    } else if r.path & uring_path::POLLED != 0 {
        s.polled += 1;
    } else {
        s.inline += 1;
    }
    // SAFETY: the helper has no preconditions.
    let latency = unsafe { bpf_ktime_get_ns() }.saturating_sub(r.submit_ns);
    s.timed += 1;
    s.latency_ns += latency;
    s.hist_latency_ns[bucket(latency)] += 1;
    s.latency_extremes.extend(maps::epoch(), latency);
}

/// Whether the request's file is a socket.
#[inline(always)]
fn on_socket(req: u64) -> bool {
    match kernel::load::<u64>(req, btf_ids::IO_KIOCB, uring_offsets().kiocb_file) {
        Some(file) if file != 0 => kernel::is_socket(file),
        _ => false,
    }
}

/// CQEs waiting in the CQ ring of `ring` (an `io_ring_ctx`): the kernel's
/// tail less the application's head. `None` when the ring cannot be read.
#[inline(never)]
pub fn cq_ready(ring: u64) -> Option<u64> {
    let o = uring_offsets();
    let rings: u64 =
        kernel::load::<u64>(ring, btf_ids::IO_RING_CTX, o.ctx_rings).filter(|&rings| rings != 0)?;
    let head: u32 = kernel::load(rings, btf_ids::IO_RINGS, o.cq_head)?;
    let tail: u32 = kernel::load(rings, btf_ids::IO_RINGS, o.cq_tail)?;
    Some(u64::from(tail.wrapping_sub(head)))
}
