//! Names both sides must spell alike: the load-time globals the programs
//! read and the maps user space opens.

/// Globals set by user space at load time (`EbpfLoader::override_global`).
pub mod globals {
    /// u32: 1 when forked children join the traced set.
    pub const FOLLOW: &str = "FOLLOW";
    /// [u8; 16]: comm to match at exec and fork, all zero for none.
    pub const COMM: &str = "COMM";
    /// u32: offset of `pid` (the thread id) in `struct task_struct`.
    pub const TASK_PID: &str = "TASK_PID";
    /// u32: offset of `tgid` (the process id) in `struct task_struct`.
    pub const TASK_TGID: &str = "TASK_TGID";
    /// Every global, for the test that checks the object declares them all.
    pub const ALL: [&str; 4] = [FOLLOW, COMM, TASK_PID, TASK_TGID];
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
