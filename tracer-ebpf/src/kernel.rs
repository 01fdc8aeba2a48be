//! Reading the kernel's own state at the offsets user space found in its
//! BTF: an fd's open file, whether that file is a socket, and how many fds
//! an eventpoll holds. Reading the truth where it lives is what keeps the
//! figures exact: an epoll set shrinks when a registered file's last
//! reference closes, with no epoll_ctl; a socket fd can be dup'ed, passed or
//! inherited.

use aya_ebpf::helpers::{bpf_get_current_task_btf, bpf_probe_read_kernel};
use tracer_common::{btf_ids, Stat, KFUNC_RDONLY_CAST_INSN};

use crate::{
    filter::lost,
    maps::{btf_id, offsets, task_pid_offset, task_restart_fn_offset, task_tgid_offset},
};

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

/// `bpf_rdonly_cast(addr, id)`: the kernel address `addr` as a read-only,
/// untrusted pointer to the struct with BTF id `id` (a constant the
/// verifier knows). The verifier turns the call into a register move and
/// every load through the pointer into one guarded load, like [`field`]:
/// this is what frees the reads below an fd's file from the probe-read
/// helper (a call, a copy and, on this machine's mitigations, several
/// costly returns each). The instruction is written raw, its id patched
/// at load (`KFUNC_RDONLY_CAST_INSN`); it clobbers what a call does.
#[inline(always)]
fn rdonly_cast(addr: u64, id: u32) -> *const u8 {
    let cast: *const u8;
    // SAFETY: the kfunc only retypes its argument; r0-r5 are declared
    // clobbered as for any call.
    unsafe {
        core::arch::asm!(
            ".quad {insn}",
            insn = const KFUNC_RDONLY_CAST_INSN,
            inlateout("r1") addr => _,
            inlateout("r2") u64::from(id) => _,
            lateout("r0") cast,
            lateout("r3") _,
            lateout("r4") _,
            lateout("r5") _,
            options(pure, nomem, nostack),
        );
    }
    cast
}

/// The field at `offset` of the struct `which` (`btf_ids`) at kernel
/// address `addr`: a typed load where the kernel has `bpf_rdonly_cast`, a
/// probe read elsewhere. `None` when a probe read fails; a typed load that
/// faults reads 0.
#[inline(always)]
pub fn load<T: Copy>(addr: u64, which: usize, offset: u32) -> Option<T> {
    let id = btf_id(which);
    if id != 0 {
        Some(field(rdonly_cast(addr, id), offset))
    } else {
        read(addr + u64::from(offset))
    }
}

/// The current task, BTF-typed, fetched once per program run and handed
/// down: `bpf_get_current_task_btf` is a helper call on this kernel (its
/// x86 JIT does not inline it; a call and a return cost about 14 ns here,
/// with SRSO's safe RET), and a traced call needs the task for its ids and
/// again for an fd's file.
#[derive(Clone, Copy)]
pub struct Task(*const u8);

impl Task {
    #[inline(always)]
    pub fn current() -> Task {
        // SAFETY: the helper has no preconditions.
        let task = unsafe { bpf_get_current_task_btf() } as u64;
        // Typed as the remembered task is, so that the verifier walks the
        // code after the two ways to a thread's task as one.
        Task::typed(task).unwrap_or(Task(task as *const u8))
    }

    /// The task a thread's slot keeps (`ThreadState::task`), known to be
    /// the current one; where the kernel has no `bpf_rdonly_cast`, asked
    /// for again.
    #[inline(always)]
    pub fn remembered(addr: u64) -> Task {
        Task::typed(addr).unwrap_or_else(Task::current)
    }

    /// The task at `addr` typed by `bpf_rdonly_cast` (a register move),
    /// `None` where the kernel lacks it.
    #[inline(always)]
    fn typed(addr: u64) -> Option<Task> {
        let id = btf_id(btf_ids::TASK);
        (id != 0).then(|| Task(rdonly_cast(addr, id)))
    }

    /// Its kernel address, for the thread's slot to keep.
    #[inline(always)]
    pub fn addr(self) -> u64 {
        self.0 as u64
    }

    /// What `bpf_get_current_pid_tgid()` returns (tgid << 32 | tid), by two
    /// typed loads instead of a second helper call.
    #[inline(always)]
    pub fn pid_tgid(self) -> u64 {
        let tid: u32 = field(self.0, task_pid_offset());
        let tgid: u32 = field(self.0, task_tgid_offset());
        u64::from(tgid) << 32 | u64::from(tid)
    }

    /// `restart_block.fn`: how `restart_syscall` will resume the task's
    /// last interrupted call; 0 where its offset is unknown.
    #[inline(always)]
    pub fn restart_fn(self) -> u64 {
        match task_restart_fn_offset() {
            0 => 0,
            offset => field(self.0, offset),
        }
    }
}

/// `bpf_get_current_pid_tgid()`, where nothing else needs the task.
#[inline(always)]
pub fn current_pid_tgid() -> u64 {
    Task::current().pid_tgid()
}

/// The open file behind `fd` in the current process (its kernel address),
/// `None` when the fd is not open. Everything down to the fd array is a
/// typed load; the array slot (a variable index, which typed loads do not
/// allow) is read as the first member of a struct that starts with a file
/// pointer.
#[inline(always)]
pub fn current_file(task: Task, fd: u32) -> Option<u64> {
    let o = offsets();
    let files: *const u8 = field(task.0, o.task_files);
    let fdt: *const u8 = field(files, o.files_fdt);
    let max_fds: u32 = field(fdt, o.fdt_max_fds);
    if fd >= max_fds {
        return None;
    }
    let slots: u64 = field(fdt, o.fdt_fd);
    let file: u64 = load(slots + 8 * u64::from(fd), btf_ids::FILE_SLOT, 0)?;
    (file != 0).then_some(file)
}

/// What an open file is, as payload goes: a socket, an anonymous inode
/// (eventfd, timerfd, signalfd, inotify: a wakeup, a tick or a notice,
/// whose inode has no type), or anything else (files, pipes, ttys).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Socket,
    Anonymous,
    Other,
}

/// The open file's type, from its inode's mode; `Other` when unreadable.
#[inline(always)]
pub fn file_type(file: u64) -> FileType {
    let o = offsets();
    let Some(inode) = load::<u64>(file, btf_ids::FILE, o.file_inode) else {
        return FileType::Other;
    };
    match load::<u16>(inode, btf_ids::INODE, o.inode_mode).map(|mode| mode & S_IFMT) {
        Some(S_IFSOCK) => FileType::Socket,
        Some(0) => FileType::Anonymous,
        _ => FileType::Other,
    }
}

/// Whether the open file is a socket (its inode's type).
#[inline(always)]
pub fn is_socket(file: u64) -> bool {
    file_type(file) == FileType::Socket
}

/// The type of the current process's `fd`; `Other` when the fd table
/// cannot be read.
#[inline(always)]
pub fn fd_type(task: Task, fd: u32) -> FileType {
    match current_file(task, fd) {
        Some(file) => file_type(file),
        None => FileType::Other,
    }
}

/// Whether the current process's `fd` is a socket; `false` when the fd
/// table cannot be read.
#[inline(always)]
pub fn fd_is_socket(task: Task, fd: u32) -> bool {
    fd_type(task, fd) == FileType::Socket
}

/// An epoll fd's eventpoll (its identity) and the fds registered in it: the
/// eventpoll's reference count less the one its own file holds (since Linux
/// 6.4 every registration holds one).
#[inline(always)]
pub fn epoll_set(task: Task, epfd: u32) -> Option<(u64, u64)> {
    let o = offsets();
    // 0: this kernel's eventpoll has no reference count (before Linux 6.4).
    if o.eventpoll_refcount == 0 {
        return None;
    }
    let file = current_file(task, epfd)?;
    // A typed load that faults reads 0, which no epoll file's eventpoll
    // and no open eventpoll's reference count is: both count as unread.
    let Some(ep) = load::<u64>(file, btf_ids::FILE, o.file_private_data).filter(|&ep| ep != 0)
    else {
        lost!(
            Stat::KernelReadFailed,
            "cannot read the eventpoll of epoll fd {}",
            epfd
        );
        return None;
    };
    let Some(refs) =
        load::<u32>(ep, btf_ids::EVENTPOLL, o.eventpoll_refcount).filter(|&refs| refs != 0)
    else {
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
pub fn file_private_data(task: Task, fd: u32) -> Option<u64> {
    let file = current_file(task, fd)?;
    load::<u64>(file, btf_ids::FILE, offsets().file_private_data).filter(|p| *p != 0)
}
