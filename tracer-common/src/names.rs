//! Names both sides must spell alike: the load-time globals the programs
//! read and the maps user space opens.

/// Globals set by user space at load time (`EbpfLoader::override_global`).
pub mod globals {
    /// u32: 1 when forked children join the traced set.
    pub const FOLLOW: &str = "FOLLOW";
    /// u64: an event-loop iteration at least this long (ns) is a stall.
    pub const STALL_NS: &str = "STALL_NS";
    /// u32: one call in this many is timed, and one loop iteration in this
    /// many with the wait that ends it (`--time-every`); 1 times them all.
    pub const TIME_EVERY: &str = "TIME_EVERY";
    /// u64: the kernel's tick (one jiffy), ns, and u64: the jiffies an
    /// untimed iteration must span to be surely a stall (`--stall` / tick
    /// rounded up, plus one); a tick of 0 finds stalls in timed iterations
    /// only.
    pub const TICK_NS: &str = "TICK_NS";
    pub const STALL_TICKS: &str = "STALL_TICKS";
    /// [u8; 16]: comm to match at exec and fork, all zero for none.
    pub const COMM: &str = "COMM";
    /// u32: offset of `pid` (the thread id) in `struct task_struct`.
    pub const TASK_PID: &str = "TASK_PID";
    /// u32: offset of `tgid` (the process id) in `struct task_struct`.
    pub const TASK_TGID: &str = "TASK_TGID";
    /// u32: offsets of `group_leader` and `start_boottime` in `struct
    /// task_struct`, for a process's start at its exit.
    pub const TASK_GROUP_LEADER: &str = "TASK_GROUP_LEADER";
    pub const TASK_START_BOOTTIME: &str = "TASK_START_BOOTTIME";
    /// u32: offset of `restart_block.fn` in `struct task_struct`, 0 where
    /// unknown (a resumed `poll` is then not counted).
    pub const TASK_RESTART_FN: &str = "TASK_RESTART_FN";
    /// u32: offset of `jobctl` in `struct task_struct`, 0 where unknown (a
    /// task in the cgroup freezer's trap then reads as busy, not stopped).
    pub const TASK_JOBCTL: &str = "TASK_JOBCTL";
    /// u32: offsets of `signal` in `struct task_struct` and of
    /// `rlim[RLIMIT_NOFILE].rlim_cur` in `struct signal_struct`, 0 where
    /// unknown: poll refuses more entries than that limit, and they are not
    /// read.
    pub const TASK_SIGNAL: &str = "TASK_SIGNAL";
    pub const SIGNAL_NOFILE: &str = "SIGNAL_NOFILE";
    /// u32 offsets of the fields between a task and an fd's open file and
    /// what it points at: `task_struct.files`, `files_struct.fdt`,
    /// `fdtable.max_fds`, `fdtable.fd`, `file.private_data`, `file.f_inode`,
    /// `inode.i_mode`, `eventpoll.refcount`.
    pub const TASK_FILES: &str = "TASK_FILES";
    pub const FILES_FDT: &str = "FILES_FDT";
    pub const FDT_MAX_FDS: &str = "FDT_MAX_FDS";
    pub const FDT_FD: &str = "FDT_FD";
    pub const FILE_PRIVATE_DATA: &str = "FILE_PRIVATE_DATA";
    pub const FILE_INODE: &str = "FILE_INODE";
    pub const INODE_MODE: &str = "INODE_MODE";
    pub const EVENTPOLL_REFCOUNT: &str = "EVENTPOLL_REFCOUNT";
    /// [u32; btf_ids::COUNT]: the kernel's BTF ids of the structs the programs read by
    /// typed loads after `bpf_rdonly_cast` (`crate::btf_ids`), all 0 where the
    /// kernel has no such kfunc: the probe-read helper then reads them.
    pub const BTF_IDS: &str = "BTF_IDS";
    /// u32 offsets for the io_uring programs: `io_kiocb.opcode`,
    /// `io_kiocb.ctx`, `io_kiocb.file`, `io_ring_ctx.flags`,
    /// `io_ring_ctx.rings`, and of the CQ ring's head and tail in `io_rings`
    /// (`io_rings.cq` + `io_uring.head`/`tail`).
    pub const KIOCB_OPCODE: &str = "KIOCB_OPCODE";
    pub const KIOCB_CTX: &str = "KIOCB_CTX";
    pub const KIOCB_FILE: &str = "KIOCB_FILE";
    pub const RING_CTX_FLAGS: &str = "RING_CTX_FLAGS";
    pub const RING_CTX_RINGS: &str = "RING_CTX_RINGS";
    pub const RINGS_CQ_HEAD: &str = "RINGS_CQ_HEAD";
    pub const RINGS_CQ_TAIL: &str = "RINGS_CQ_TAIL";
    /// u64: the pid namespace muxtrace runs in, as `bpf_get_ns_current_pid_tgid`
    /// wants it (the kernel's dev_t of nsfs and the inode of
    /// /proc/self/ns/pid); an inode of 0 means the initial namespace, whose
    /// pids are the kernel's own: nothing to translate.
    pub const PIDNS_DEV: &str = "PIDNS_DEV";
    pub const PIDNS_INO: &str = "PIDNS_INO";
    /// u32: which processes the kernel admits by itself
    /// ([`crate::records::admit`]).
    pub const ADMIT: &str = "ADMIT";
    /// u32: muxtrace's own pid as user space sees it: never admitted.
    pub const SELF_TGID: &str = "SELF_TGID";
    /// u64: the `--cgroup`'s id (its directory's inode on cgroup2), and u32:
    /// its depth below the root cgroup (the root's is 0), for
    /// `bpf_get_current_ancestor_cgroup_id`.
    pub const CGROUP_ID: &str = "CGROUP_ID";
    pub const CGROUP_LEVEL: &str = "CGROUP_LEVEL";
    /// [u8; CGROUP_PATH_LEN]: the `--cgroup`'s path in its hierarchy with no
    /// trailing slash (empty for the root), NUL-padded (cut to the length:
    /// a longer one compares on its start only).
    pub const CGROUP_PATH: &str = "CGROUP_PATH";
    /// Every global, for the test that checks the object declares them all.
    pub const ALL: [&str; 37] = [
        FOLLOW,
        STALL_NS,
        TIME_EVERY,
        TICK_NS,
        STALL_TICKS,
        COMM,
        TASK_PID,
        TASK_TGID,
        TASK_GROUP_LEADER,
        TASK_START_BOOTTIME,
        TASK_RESTART_FN,
        TASK_JOBCTL,
        TASK_SIGNAL,
        SIGNAL_NOFILE,
        TASK_FILES,
        FILES_FDT,
        FDT_MAX_FDS,
        FDT_FD,
        FILE_PRIVATE_DATA,
        FILE_INODE,
        INODE_MODE,
        EVENTPOLL_REFCOUNT,
        BTF_IDS,
        KIOCB_OPCODE,
        KIOCB_CTX,
        KIOCB_FILE,
        RING_CTX_FLAGS,
        RING_CTX_RINGS,
        RINGS_CQ_HEAD,
        RINGS_CQ_TAIL,
        PIDNS_DEV,
        PIDNS_INO,
        ADMIT,
        SELF_TGID,
        CGROUP_ID,
        CGROUP_LEVEL,
        CGROUP_PATH,
    ];
}

/// Map names, shared so user space finds what the programs declare.
pub mod maps {
    pub const TRACED: &str = "TRACED";
    pub const THREAD_INDEX: &str = "THREAD_INDEX";
    pub const THREAD_STATES: &str = "THREAD_STATES";
    pub const FREE_THREADS: &str = "FREE_THREADS";
    pub const THREAD_HIGH_WATER: &str = "THREAD_HIGH_WATER";
    pub const STATS: &str = "STATS";
    pub const STATS_SLOTS: &str = "STATS_SLOTS";
    pub const FREE_STATS: &str = "FREE_STATS";
    pub const LAST_WAKEUPS: &str = "LAST_WAKEUPS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const CANDIDATES: &str = "CANDIDATES";
    pub const EPOCH: &str = "EPOCH";
    pub const EXIT_COMMS: &str = "EXIT_COMMS";
    pub const EXITED_THREADS: &str = "EXITED_THREADS";
    pub const URING_STATS: &str = "URING_STATS";
    pub const URING_REQS: &str = "URING_REQS";
    pub const NS_PENDING: &str = "NS_PENDING";
    pub const NS_PENDING_ACTIVE: &str = "NS_PENDING_ACTIVE";
    pub const NS_TGIDS: &str = "NS_TGIDS";
    pub const EVICTED: &str = "EVICTED";
    pub const JOINED: &str = "JOINED";
}
