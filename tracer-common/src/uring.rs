//! io_uring's opcodes as the programs and user space classify them. The
//! numbers are the kernel's UAPI (`enum io_uring_op` in
//! <linux/io_uring.h>), stable across kernels: new ones are only appended.

/// `io_uring_enter` flags.
pub const IORING_ENTER_GETEVENTS: u64 = 1 << 0;
pub const IORING_ENTER_REGISTERED_RING: u64 = 1 << 4;
pub const IORING_ENTER_EXT_ARG: u64 = 1 << 3;
/// The extended argument lives in a registered region, not in user memory.
pub const IORING_ENTER_EXT_ARG_REG: u64 = 1 << 6;
/// `io_uring_setup` flag of a ring whose SQ thread submits.
pub const IORING_SETUP_SQPOLL: u32 = 1 << 1;
/// A CQE with this flag is not its request's last (multishot).
pub const IORING_CQE_F_MORE: u32 = 1 << 1;

/// The key of CQEs the kernel posts without a request (`req` NULL at the
/// tracepoint: multishot follow-ups, messages from other rings).
pub const OP_AUX: u8 = 255;
/// Opcodes from here up (but [`OP_AUX`]) are newer than this table.
pub const OP_KNOWN: u8 = 63;

/// The names of opcodes 0..[`OP_KNOWN`], lower case without `IORING_OP_`.
pub const OP_NAMES: [&str; OP_KNOWN as usize] = [
    "nop",
    "readv",
    "writev",
    "fsync",
    "read_fixed",
    "write_fixed",
    "poll_add",
    "poll_remove",
    "sync_file_range",
    "sendmsg",
    "recvmsg",
    "timeout",
    "timeout_remove",
    "accept",
    "async_cancel",
    "link_timeout",
    "connect",
    "fallocate",
    "openat",
    "close",
    "files_update",
    "statx",
    "read",
    "write",
    "fadvise",
    "madvise",
    "send",
    "recv",
    "openat2",
    "epoll_ctl",
    "splice",
    "provide_buffers",
    "remove_buffers",
    "tee",
    "shutdown",
    "renameat",
    "unlinkat",
    "mkdirat",
    "symlinkat",
    "linkat",
    "msg_ring",
    "fsetxattr",
    "setxattr",
    "fgetxattr",
    "getxattr",
    "socket",
    "uring_cmd",
    "send_zc",
    "sendmsg_zc",
    "read_multishot",
    "waitid",
    "futex_wait",
    "futex_wake",
    "futex_waitv",
    "fixed_fd_install",
    "ftruncate",
    "bind",
    "listen",
    "recv_zc",
    "epoll_wait",
    "readv_fixed",
    "writev_fixed",
    "pipe",
];

pub mod op {
    pub const NOP: u8 = 0;
    pub const READV: u8 = 1;
    pub const WRITEV: u8 = 2;
    pub const READ_FIXED: u8 = 4;
    pub const WRITE_FIXED: u8 = 5;
    pub const SENDMSG: u8 = 9;
    pub const RECVMSG: u8 = 10;
    pub const ACCEPT: u8 = 13;
    pub const READ: u8 = 22;
    pub const WRITE: u8 = 23;
    pub const SEND: u8 = 26;
    pub const RECV: u8 = 27;
    pub const SPLICE: u8 = 30;
    pub const TEE: u8 = 33;
    pub const SEND_ZC: u8 = 47;
    pub const SENDMSG_ZC: u8 = 48;
    pub const READ_MULTISHOT: u8 = 49;
    pub const RECV_ZC: u8 = 58;
    pub const READV_FIXED: u8 = 60;
    pub const WRITEV_FIXED: u8 = 61;
}

/// The name of opcode `op` (`aux` for [`OP_AUX`], `op_N` for one newer
/// than this table).
pub fn op_name(op: u32) -> alloc_free::Name {
    alloc_free::Name::of(op)
}

/// Requests whose positive result is payload bytes received.
pub const fn is_receive(op: u8) -> bool {
    matches!(
        op,
        op::READV
            | op::READ_FIXED
            | op::RECVMSG
            | op::READ
            | op::RECV
            | op::READ_MULTISHOT
            | op::RECV_ZC
            | op::READV_FIXED
    )
}

/// Requests whose positive result is payload bytes sent.
pub const fn is_send(op: u8) -> bool {
    matches!(
        op,
        op::WRITEV
            | op::WRITE_FIXED
            | op::SENDMSG
            | op::WRITE
            | op::SEND
            | op::SEND_ZC
            | op::SENDMSG_ZC
            | op::WRITEV_FIXED
    )
}

/// Requests that move payload between two fds in the kernel.
pub const fn is_zero_copy(op: u8) -> bool {
    matches!(op, op::SPLICE | op::TEE)
}

/// Requests whose positive result is payload bytes.
pub const fn is_payload(op: u8) -> bool {
    is_receive(op) || is_send(op) || is_zero_copy(op)
}

/// Requests that work only on sockets; the other payload requests work on
/// any file, so whether theirs is a socket must be looked up.
pub const fn on_socket_only(op: u8) -> bool {
    matches!(
        op,
        op::SENDMSG
            | op::RECVMSG
            | op::SEND
            | op::RECV
            | op::SEND_ZC
            | op::SENDMSG_ZC
            | op::RECV_ZC
    )
}

mod alloc_free {
    use super::{OP_AUX, OP_NAMES};

    /// An opcode's name without allocating (`no_std`).
    pub struct Name {
        known: Option<&'static str>,
        op: u32,
    }

    impl Name {
        pub(super) fn of(op: u32) -> Name {
            let known = if op == u32::from(OP_AUX) {
                Some("aux")
            } else {
                OP_NAMES.get(op as usize).copied()
            };
            Name { known, op }
        }
    }

    impl core::fmt::Display for Name {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.known {
                Some(name) => f.write_str(name),
                None => write!(f, "op_{}", self.op),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_disjoint_and_named() {
        for op in 0..=255u8 {
            let classes = [is_receive(op), is_send(op), is_zero_copy(op)];
            assert!(classes.iter().filter(|c| **c).count() <= 1, "{op}");
            if on_socket_only(op) {
                assert!(is_payload(op), "{op}");
            }
        }
        assert_eq!(OP_NAMES[op::RECV as usize], "recv");
        assert_eq!(OP_NAMES[op::SEND_ZC as usize], "send_zc");
        assert_eq!(OP_NAMES[op::WRITEV_FIXED as usize], "writev_fixed");
        assert_eq!(OP_NAMES[op::ACCEPT as usize], "accept");
    }
}
