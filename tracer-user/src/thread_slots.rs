//! The threads' slots (`THREAD_STATES`), read through a shared mapping: a
//! reading copies every slot at once, where a syscall per slot would cost
//! ~1 µs each at every reading.

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    ptr::NonNull,
};

use aya::{maps::Map, Ebpf};
use tracer_common::{maps, ThreadState, PID_MAX_LIMIT};

use crate::error::{Result, UserError};

/// How many `THREAD_INDEX` entries cover every tid the kernel can hand out
/// now. Inside a pid namespace the pid_max read there may be the
/// namespace's (Linux 6.14+), below the kernel's tids: the whole range then.
pub fn index_entries(in_pidns: bool) -> u32 {
    let pid_max = if in_pidns {
        PID_MAX_LIMIT
    } else {
        std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map_or(PID_MAX_LIMIT, |n| n.clamp(1, PID_MAX_LIMIT))
    };
    pid_max.div_ceil(tracer_common::TIDS_PER_INDEX_ENTRY)
}

/// `THREAD_STATES` mapped into user space.
pub struct ThreadSlots {
    base: NonNull<ThreadState>,
    slots: usize,
    bytes: usize,
}

// SAFETY: the mapping is plain shared memory; `ThreadSlots` only copies
// slots out or stores one word, so it may move between threads.
unsafe impl Send for ThreadSlots {}

impl ThreadSlots {
    /// Maps the `slots` slots of the loaded object's `THREAD_STATES`.
    pub fn map(ebpf: &Ebpf, slots: u32) -> Result<ThreadSlots> {
        let name = maps::THREAD_STATES;
        let Some(Map::Array(data)) = ebpf.map(name) else {
            return Err(UserError::runtime(format!(
                "map {name} missing from the eBPF object"
            )));
        };
        // The kernel rounds each value up to 8 bytes; ThreadState is already.
        const _: () = assert!(size_of::<ThreadState>().is_multiple_of(8));
        let slots = slots as usize;
        let page = 4096;
        let bytes = (slots * size_of::<ThreadState>()).div_ceil(page) * page;
        // SAFETY: a shared mapping of an mmapable array's fd, at most its
        // size; the kernel keeps the map alive while the mapping exists.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                data.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(UserError::runtime(format!(
                "cannot map {name}: {}",
                std::io::Error::last_os_error()
            )));
        }
        let base = NonNull::new(addr.cast::<ThreadState>())
            .ok_or_else(|| UserError::runtime(format!("cannot map {name}: null mapping")))?;
        Ok(ThreadSlots { base, slots, bytes })
    }

    fn bound(&self, used: u32) -> usize {
        self.slots.min(used as usize)
    }

    fn slot(&self, index: usize) -> *mut ThreadState {
        debug_assert!(index < self.slots);
        // SAFETY: below `slots`, inside the mapping.
        unsafe { self.base.as_ptr().add(index) }
    }

    /// Every claimed slot of a thread still traced among the first `used`,
    /// copied as it is now (the programs keep writing: a field may be a call
    /// newer than another, as with a hash map's lookup). Only the slots
    /// read are mapped in: muxtrace's memory follows the threads traced at
    /// once, not `--max-threads`.
    pub fn live(&self, used: u32) -> Vec<ThreadState> {
        (0..self.bound(used))
            .filter_map(|i| {
                let slot = self.slot(i);
                // SAFETY: a valid slot; its first words, then (when claimed)
                // a torn copy of plain integers. Only claimed slots are
                // copied whole: most of a large table is free.
                unsafe {
                    let claimed = std::ptr::read_volatile(&raw const (*slot).tgid) != 0
                        && std::ptr::read_volatile(&raw const (*slot).evicted) == 0;
                    claimed.then(|| std::ptr::read_volatile(slot))
                }
                .filter(|state| state.tgid != 0)
            })
            .collect()
    }

    /// Marks the slots of the threads of `pids` (as user space names them)
    /// evicted: the programs stop seeing them at once, and each thread gives
    /// its own back (user space never frees one, so none is freed twice).
    pub fn evict(&self, pids: &[u32], used: u32) {
        for i in 0..self.bound(used) {
            let slot = self.slot(i);
            // SAFETY: a valid slot; single aligned words.
            unsafe {
                let tgid = std::ptr::read_volatile(&raw const (*slot).tgid);
                if tgid != 0 && pids.contains(&tgid) {
                    std::ptr::write_volatile(&raw mut (*slot).evicted, 1);
                }
            }
        }
    }
}

impl Drop for ThreadSlots {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
