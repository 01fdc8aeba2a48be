//! Reading the kernel's own state at the offsets user space found in its
//! BTF: an fd's open file, whether that file is a socket, and how many fds
//! an eventpoll holds. Reading the truth where it lives is what keeps the
//! figures exact: an epoll set shrinks when a registered file's last
//! reference closes, with no epoll_ctl; a socket fd can be dup'ed, passed or
//! inherited.

use aya_ebpf::helpers::{bpf_get_current_task_btf, bpf_probe_read_kernel};
use tracer_common::Stat;

use crate::{filter::lost, maps::offsets};

/// `S_IFMT` and `S_IFSOCK` of an inode's mode.
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

#[inline(always)]
fn read<T: Copy>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one is an Err.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.ok()
}

/// A field of a kernel object whose type the verifier knows from BTF (the
/// current task, or a struct pointer loaded from one), loaded in place: the
/// JIT emits one guarded load (a fault reads 0) where a probe read is a
/// helper call and a copy, about 40 ns each. The offsets are read-only
/// globals, so the verifier checks each load against the field's type.
#[inline(always)]
fn field<T: Copy>(object: *const u8, offset: u32) -> T {
    // SAFETY: `object` is a BTF-typed kernel pointer: the verifier accepts
    // the load only at a valid field, and the JIT turns a fault into 0.
    unsafe { core::ptr::read_volatile(object.add(offset as usize) as *const T) }
}

/// The open file behind `fd` in the current process (its kernel address),
/// `None` when the fd is not open. Everything down to the fd array is a
/// typed load; the array slot (a variable index, which typed loads do not
/// allow) is one probe read.
#[inline(always)]
pub fn current_file(fd: u32) -> Option<u64> {
    let o = offsets();
    // SAFETY: the helper has no preconditions.
    let task = unsafe { bpf_get_current_task_btf() } as *const u8;
    let files: *const u8 = field(task, o.task_files);
    let fdt: *const u8 = field(files, o.files_fdt);
    let max_fds: u32 = field(fdt, o.fdt_max_fds);
    if fd >= max_fds {
        return None;
    }
    let slots: u64 = field(fdt, o.fdt_fd);
    let file: u64 = read(slots + 8 * fd as u64)?;
    (file != 0).then_some(file)
}

/// Whether the open file is a socket (its inode's type).
#[inline(always)]
pub fn is_socket(file: u64) -> bool {
    let o = offsets();
    let Some(inode) = read::<u64>(file + o.file_inode as u64) else {
        return false;
    };
    read::<u16>(inode + o.inode_mode as u64).is_some_and(|mode| mode & S_IFMT == S_IFSOCK)
}

/// Whether the current process's `fd` is a socket; `false` (counted) when
/// the fd table cannot be read.
#[inline(always)]
pub fn fd_is_socket(fd: u32) -> bool {
    match current_file(fd) {
        Some(file) => is_socket(file),
        None => false,
    }
}

/// An epoll fd's eventpoll (its identity) and the fds registered in it: the
/// eventpoll's reference count less the one its own file holds (since Linux
/// 6.4 every registration holds one).
#[inline(always)]
pub fn epoll_set(epfd: u32) -> Option<(u64, u64)> {
    let o = offsets();
    // 0: this kernel's eventpoll has no reference count (before Linux 6.4).
    if o.eventpoll_refcount == 0 {
        return None;
    }
    let file = current_file(epfd)?;
    let Some(ep) = read::<u64>(file + o.file_private_data as u64) else {
        lost!(
            Stat::KernelReadFailed,
            "cannot read the eventpoll of epoll fd {}",
            epfd
        );
        return None;
    };
    let Some(refs) = read::<u32>(ep + o.eventpoll_refcount as u64) else {
        lost!(
            Stat::KernelReadFailed,
            "cannot read the interest set of epoll fd {}",
            epfd
        );
        return None;
    };
    Some((ep, u64::from(refs.saturating_sub(1))))
}

/// The private data of the current process's `fd`'s open file (an
/// io_uring fd's ring, `struct io_ring_ctx`).
#[inline(never)]
pub fn file_private_data(fd: u32) -> Option<u64> {
    let file = current_file(fd)?;
    read::<u64>(file + offsets().file_private_data as u64).filter(|p| *p != 0)
}
