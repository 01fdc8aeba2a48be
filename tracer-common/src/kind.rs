//! What the programs classify: the syscalls measured, and the errno classes
//! an event loop cares about.

/// Declares the measured syscalls once: the enum (its discriminant indexes
/// arrays on both sides and is part of map keys, so the order is fixed),
/// `ALL`, each one's name and x86_64 number, and the dispatch from number
/// to kind.
macro_rules! syscall_kinds {
    ($($kind:ident = $index:literal, $name:literal, $nr:ident;)*) => {
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum SyscallKind {
            $($kind = $index,)*
        }

        /// Number of [`SyscallKind`]s.
        pub const SYSCALL_KINDS: usize = [$($index),*].len();

        impl SyscallKind {
            pub const ALL: [SyscallKind; SYSCALL_KINDS] = [$(SyscallKind::$kind,)*];

            /// The syscall's name (as strace and the kernel spell it).
            pub const fn name(self) -> &'static str {
                match self {
                    $(SyscallKind::$kind => $name,)*
                }
            }

            /// The x86_64 syscall number.
            pub const fn nr(self) -> i64 {
                match self {
                    $(SyscallKind::$kind => nr::$nr,)*
                }
            }

            /// The kind of x86_64 syscall `nr`, for the programs' dispatch at
            /// the raw syscall tracepoints; `None` for calls not measured.
            /// A number two kinds share dispatches to the first (the
            /// programs split it by its arguments).
            #[inline(always)]
            #[allow(unreachable_patterns)]
            pub const fn from_nr(nr: i64) -> Option<SyscallKind> {
                match nr {
                    $(nr::$nr => Some(SyscallKind::$kind),)*
                    _ => None,
                }
            }
        }
    };
}

syscall_kinds! {
    Select = 0, "select", SELECT;
    Pselect6 = 1, "pselect6", PSELECT6;
    Poll = 2, "poll", POLL;
    Ppoll = 3, "ppoll", PPOLL;
    EpollWait = 4, "epoll_wait", EPOLL_WAIT;
    EpollPwait = 5, "epoll_pwait", EPOLL_PWAIT;
    EpollPwait2 = 6, "epoll_pwait2", EPOLL_PWAIT2;
    EpollCtl = 7, "epoll_ctl", EPOLL_CTL;
    Accept4 = 8, "accept4", ACCEPT4;
    Recvfrom = 9, "recvfrom", RECVFROM;
    Recvmsg = 10, "recvmsg", RECVMSG;
    Read = 11, "read", READ;
    Sendto = 12, "sendto", SENDTO;
    Sendmsg = 13, "sendmsg", SENDMSG;
    Write = 14, "write", WRITE;
    Accept = 15, "accept", ACCEPT;
    Readv = 16, "readv", READV;
    Writev = 17, "writev", WRITEV;
    Recvmmsg = 18, "recvmmsg", RECVMMSG;
    Sendmmsg = 19, "sendmmsg", SENDMMSG;
    Sendfile = 20, "sendfile", SENDFILE;
    Splice = 21, "splice", SPLICE;
    // One syscall, two kinds: an io_uring_enter that waits for completions
    // (IORING_ENTER_GETEVENTS with min_complete > 0) is a wait like
    // epoll_wait; one that only submits (or only wakes the SQ thread) is not.
    IoUringEnter = 22, "io_uring_enter", IO_URING_ENTER;
    IoUringWait = 23, "io_uring_enter/wait", IO_URING_ENTER;
    // At an offset, so never on a socket (which is not seekable): a file's
    // payload. nginx with sendfile off reads each body with pread64, and
    // lighttpd a small file.
    Pread64 = 24, "pread64", PREAD64;
    Pwrite64 = 25, "pwrite64", PWRITE64;
    Preadv = 26, "preadv", PREADV;
    Pwritev = 27, "pwritev", PWRITEV;
    Preadv2 = 28, "preadv2", PREADV2;
    Pwritev2 = 29, "pwritev2", PWRITEV2;
    // A splice from a socket (into a pipe) receives: a proxy's first leg
    // (haproxy's splice-response). Split from `Splice` at entry.
    SpliceRecv = 30, "splice/recv", SPLICE;
}

/// One more than the highest syscall number measured: the size of
/// [`KIND_OF_NR`].
pub const KIND_TABLE_LEN: usize = 512;

/// `restart_syscall` (x86_64): how the kernel resumes a call that a signal
/// without a handler cut short when the call keeps what is left of its
/// timeout in the task's restart block. Of the waits only `poll` does; the
/// others are re-entered under their own number, or return EINTR (epoll).
pub const NR_RESTART_SYSCALL: i64 = 219;

/// What such a call returns at the exit tracepoint before it resumes.
pub const ERESTART_RESTARTBLOCK: i64 = 516;

/// What [`KIND_OF_NR`] holds for a syscall not measured.
pub const NOT_MEASURED: u8 = u8::MAX;

/// [`SyscallKind::from_nr`] as a table, for the programs: one load
/// instead of a tree of comparisons, and a value the verifier cannot
/// know, so it checks the code after the dispatch once, not once per kind.
pub const KIND_OF_NR: [u8; KIND_TABLE_LEN] = {
    let mut table = [NOT_MEASURED; KIND_TABLE_LEN];
    let mut nr = 0;
    while nr < KIND_TABLE_LEN {
        if let Some(kind) = SyscallKind::from_nr(nr as i64) {
            table[nr] = kind as u8;
        }
        nr += 1;
    }
    table
};

impl SyscallKind {
    pub const fn from_u32(v: u32) -> Option<SyscallKind> {
        if (v as usize) < SYSCALL_KINDS {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }

    /// The kind whose [`name`](Self::name) is `name`.
    pub fn from_name(name: &str) -> Option<SyscallKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Calls that wait for readiness: their return value counts ready fds.
    pub const fn is_wait(self) -> bool {
        matches!(
            self,
            SyscallKind::Select
                | SyscallKind::Pselect6
                | SyscallKind::Poll
                | SyscallKind::Ppoll
                | SyscallKind::EpollWait
                | SyscallKind::EpollPwait
                | SyscallKind::EpollPwait2
                | SyscallKind::IoUringWait
        )
    }

    /// Either io_uring_enter kind.
    pub const fn is_io_uring(self) -> bool {
        matches!(self, SyscallKind::IoUringEnter | SyscallKind::IoUringWait)
    }

    /// The kind the programs' dispatch on the syscall number gives (an
    /// io_uring wait is an io_uring_enter until its arguments are read).
    pub const fn dispatched(self) -> SyscallKind {
        match self {
            SyscallKind::IoUringWait => SyscallKind::IoUringEnter,
            SyscallKind::SpliceRecv => SyscallKind::Splice,
            k => k,
        }
    }

    pub const fn is_epoll_wait(self) -> bool {
        matches!(
            self,
            SyscallKind::EpollWait | SyscallKind::EpollPwait | SyscallKind::EpollPwait2
        )
    }

    pub const fn is_select(self) -> bool {
        matches!(self, SyscallKind::Select | SyscallKind::Pselect6)
    }

    pub const fn is_poll(self) -> bool {
        matches!(self, SyscallKind::Poll | SyscallKind::Ppoll)
    }

    /// Calls whose non-negative return value is payload bytes received.
    pub const fn is_receive(self) -> bool {
        matches!(
            self,
            SyscallKind::Recvfrom
                | SyscallKind::Recvmsg
                | SyscallKind::Read
                | SyscallKind::Readv
                | SyscallKind::Recvmmsg
                | SyscallKind::Pread64
                | SyscallKind::Preadv
                | SyscallKind::Preadv2
                | SyscallKind::SpliceRecv
        )
    }

    /// Calls whose non-negative return value is payload bytes sent.
    pub const fn is_send(self) -> bool {
        matches!(
            self,
            SyscallKind::Sendto
                | SyscallKind::Sendmsg
                | SyscallKind::Write
                | SyscallKind::Writev
                | SyscallKind::Sendmmsg
                | SyscallKind::Pwrite64
                | SyscallKind::Pwritev
                | SyscallKind::Pwritev2
        )
    }

    /// Calls at a file offset: never on a socket, so their payload is a
    /// file's without looking the fd up.
    pub const fn is_positional(self) -> bool {
        matches!(
            self,
            SyscallKind::Pread64
                | SyscallKind::Pwrite64
                | SyscallKind::Preadv
                | SyscallKind::Pwritev
                | SyscallKind::Preadv2
                | SyscallKind::Pwritev2
        )
    }

    /// Calls whose payload leaves toward a peer or a file: the sends, and
    /// the zero-copy calls that do not receive (sendfile, a splice into a
    /// socket or between a pipe and a file).
    pub const fn sends_payload(self) -> bool {
        self.is_send() || (self.is_zero_copy() && !self.is_receive())
    }

    /// Calls that move payload between two fds inside the kernel, never
    /// through user space: their return value is bytes moved.
    pub const fn is_zero_copy(self) -> bool {
        matches!(
            self,
            SyscallKind::Sendfile | SyscallKind::Splice | SyscallKind::SpliceRecv
        )
    }

    /// Calls whose return value is a number of messages (`struct mmsghdr`),
    /// each carrying its own byte count.
    pub const fn is_mmsg(self) -> bool {
        matches!(self, SyscallKind::Recvmmsg | SyscallKind::Sendmmsg)
    }

    /// Calls that work on any fd, so whether it is a socket must be looked up.
    pub const fn needs_fd_class(self) -> bool {
        matches!(
            self,
            SyscallKind::Read | SyscallKind::Write | SyscallKind::Readv | SyscallKind::Writev
        ) || self.is_zero_copy()
    }

    /// Calls that return a new connected socket.
    pub const fn is_accept(self) -> bool {
        matches!(self, SyscallKind::Accept | SyscallKind::Accept4)
    }
}

/// x86_64 syscall numbers (the kernel's arch/x86/entry/syscalls/syscall_64.tbl)
/// of the calls the programs dispatch on: the measured ones, and those that
/// change what an fd means.
pub mod nr {
    pub const READ: i64 = 0;
    pub const WRITE: i64 = 1;
    pub const CLOSE: i64 = 3;
    pub const POLL: i64 = 7;
    pub const PREAD64: i64 = 17;
    pub const PWRITE64: i64 = 18;
    pub const READV: i64 = 19;
    pub const WRITEV: i64 = 20;
    pub const SELECT: i64 = 23;
    pub const SENDFILE: i64 = 40;
    pub const ACCEPT: i64 = 43;
    pub const SENDTO: i64 = 44;
    pub const RECVFROM: i64 = 45;
    pub const SENDMSG: i64 = 46;
    pub const RECVMSG: i64 = 47;
    pub const EPOLL_WAIT: i64 = 232;
    pub const EPOLL_CTL: i64 = 233;
    pub const PSELECT6: i64 = 270;
    pub const PPOLL: i64 = 271;
    pub const SPLICE: i64 = 275;
    pub const PREADV: i64 = 295;
    pub const PWRITEV: i64 = 296;
    pub const EPOLL_PWAIT: i64 = 281;
    pub const ACCEPT4: i64 = 288;
    pub const RECVMMSG: i64 = 299;
    pub const SENDMMSG: i64 = 307;
    pub const PREADV2: i64 = 327;
    pub const PWRITEV2: i64 = 328;
    pub const IO_URING_ENTER: i64 = 426;
    pub const EPOLL_PWAIT2: i64 = 441;
}

impl core::fmt::Display for SyscallKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Errno classes counted separately, because each means something different
/// for an event loop: EINTR is a signal, EBADF a bug, EAGAIN an empty wakeup.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrnoClass {
    Eintr = 0,
    Ebadf = 1,
    Einval = 2,
    Eagain = 3,
    Other = 4,
    /// Cut short by a signal, a stop or a ptrace attach, and restarted by
    /// the kernel: the program never saw it return. At the exit tracepoint
    /// the call still carries the kernel's restart code (ERESTARTSYS 512,
    /// ERESTARTNOINTR 513, ERESTARTNOHAND 514, ERESTART_RESTARTBLOCK 516);
    /// the signal that follows decides whether it restarts or returns
    /// EINTR, and `signal_deliver` moves those that return EINTR to
    /// [`ErrnoClass::Eintr`]. strace -c counts both as an error, and the
    /// restart as a call of its own; so does muxtrace.
    Restarted = 5,
}
pub const ERRNO_CLASSES: usize = 6;

/// ERESTARTSYS: restarted after a handler installed with SA_RESTART.
pub const ERESTARTSYS: u64 = 512;
/// ERESTARTNOINTR: always restarted, whatever the handler.
pub const ERESTARTNOINTR: u64 = 513;
/// `sa_flags` bit of a handler after which ERESTARTSYS calls restart.
pub const SA_RESTART: u64 = 0x1000_0000;

impl ErrnoClass {
    /// `errno` is positive (the negated return value).
    #[inline(always)]
    pub const fn of(errno: u64) -> ErrnoClass {
        match errno {
            4 => ErrnoClass::Eintr,
            512 | 513 | 514 | 516 => ErrnoClass::Restarted,
            9 => ErrnoClass::Ebadf,
            22 => ErrnoClass::Einval,
            11 => ErrnoClass::Eagain,
            _ => ErrnoClass::Other,
        }
    }

    /// A signal's interruption, returned (EINTR) or restarted: the call did
    /// wait, and a poll copied its revents back.
    #[inline(always)]
    pub const fn is_interruption(self) -> bool {
        matches!(self, ErrnoClass::Eintr | ErrnoClass::Restarted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_dispatches_as_from_nr_does() {
        for (nr, &entry) in KIND_OF_NR.iter().enumerate() {
            let kind = match entry {
                NOT_MEASURED => None,
                k => SyscallKind::from_u32(u32::from(k)),
            };
            assert_eq!(kind, SyscallKind::from_nr(nr as i64), "nr {nr}");
        }
        // Every measured number fits in the table.
        for kind in SyscallKind::ALL {
            assert!((kind.nr() as usize) < KIND_TABLE_LEN, "{kind:?}");
        }
    }

    #[test]
    fn kinds_round_trip_by_number_and_name() {
        for (i, kind) in SyscallKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i);
            assert_eq!(SyscallKind::from_u32(i as u32), Some(kind));
            assert_eq!(SyscallKind::from_name(kind.name()), Some(kind));
            assert_eq!(SyscallKind::from_nr(kind.nr()), Some(kind.dispatched()));
        }
        assert_eq!(SyscallKind::from_nr(nr::CLOSE), None);
        assert_eq!(SyscallKind::from_nr(-1), None);
        assert_eq!(SyscallKind::from_u32(SYSCALL_KINDS as u32), None);
        assert_eq!(SyscallKind::from_name("getpid"), None);
    }

    #[test]
    fn every_wait_is_exactly_one_family() {
        for kind in SyscallKind::ALL {
            let families = [
                kind.is_select(),
                kind.is_poll(),
                kind.is_epoll_wait(),
                kind == SyscallKind::IoUringWait,
            ]
            .iter()
            .filter(|f| **f)
            .count();
            assert_eq!(families, usize::from(kind.is_wait()), "{kind:?}");
            assert!(!(kind.is_receive() && kind.is_send()), "{kind:?}");
            assert!(!(kind.is_receive() && kind.sends_payload()), "{kind:?}");
            let payload = kind.is_receive() || kind.is_send() || kind.is_zero_copy();
            assert!(!(payload && kind.is_wait()), "{kind:?}");
        }
    }

    #[test]
    fn errno_classes() {
        assert_eq!(ErrnoClass::of(4), ErrnoClass::Eintr);
        // The kernel's restart codes, seen at the exit tracepoint.
        for restart in [512, 513, 514, 516] {
            assert_eq!(ErrnoClass::of(restart), ErrnoClass::Restarted, "{restart}");
            assert!(ErrnoClass::of(restart).is_interruption());
        }
        assert_eq!(ErrnoClass::of(9), ErrnoClass::Ebadf);
        assert_eq!(ErrnoClass::of(22), ErrnoClass::Einval);
        assert_eq!(ErrnoClass::of(11), ErrnoClass::Eagain);
        assert_eq!(ErrnoClass::of(515), ErrnoClass::Other);
        assert_eq!(ErrnoClass::of(0), ErrnoClass::Other);
        assert_eq!(ErrnoClass::of(u64::MAX), ErrnoClass::Other);
    }
}
