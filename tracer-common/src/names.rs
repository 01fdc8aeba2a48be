//! Names both sides must spell alike: the load-time globals the programs
//! read and the maps user space opens.

/// Globals set by user space at load time (`EbpfLoader::override_global`).
pub mod globals {
    /// u32: 1 when forked children join the traced set.
    pub const FOLLOW: &str = "FOLLOW";
    /// [u8; 16]: comm to match at exec and fork, all zero for none.
    pub const COMM: &str = "COMM";
    /// u32: `sched:sched_switch` offset of `next_pid`.
    pub const SWITCH_NEXT_PID: &str = "SWITCH_NEXT_PID";
    /// u32: `sched:sched_wakeup` offset of `pid`.
    pub const WAKEUP_PID: &str = "WAKEUP_PID";
    /// u32: `sched:sched_process_fork` offset of `child_pid`.
    pub const FORK_CHILD_PID: &str = "FORK_CHILD_PID";
    /// u32: `sched:sched_process_exit` offset of `group_dead`, 0 when this
    /// kernel has no such field.
    pub const EXIT_GROUP_DEAD: &str = "EXIT_GROUP_DEAD";
    /// Every global, for the test that checks the object declares them all.
    pub const ALL: [&str; 6] = [
        FOLLOW,
        COMM,
        SWITCH_NEXT_PID,
        WAKEUP_PID,
        FORK_CHILD_PID,
        EXIT_GROUP_DEAD,
    ];
}

/// Map names, shared so user space finds what the programs declare.
pub mod maps {
    pub const TRACED: &str = "TRACED";
    pub const THREADS: &str = "THREADS";
    pub const STATS: &str = "STATS";
    pub const EPOLL: &str = "EPOLL";
    pub const COUNTERS: &str = "COUNTERS";
    pub const SOCKET_FDS: &str = "SOCKET_FDS";
    pub const CANDIDATES: &str = "CANDIDATES";
}
