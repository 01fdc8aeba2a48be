//! Makes an exact, known number of each syscall muxtrace traces, so kernel
//! tests can compare what muxtrace reports with what really happened.
//!
//! Setup (sockets, epoll fds) happens first; with `--wait-signal` the program
//! then prints `ready` and blocks in `sigwaitinfo` (not a traced call) until
//! SIGUSR1, so a tracer can attach in between. The burst itself is raw
//! `syscall(2)`s only — no allocation, no printing — and then `_exit`.
//!
//! A literal passed to the variadic `libc::syscall` is an `i32`, and glibc
//! takes a sixth argument from a full stack slot: its upper half is then
//! whatever the stack held (pselect6 once read its NULL sigmask as
//! `0xfff00000000` and failed EFAULT). Sixth arguments here are `usize`.
//!
//! Usage: syscall-burst [--wait-signal] [--fork] [--count NAME=N]... [--all N]
//! Default: every syscall `N = 3 + index` times (3 for select, 4 for pselect6 …).

/// In `SyscallKind` order (tracer-common/src/kind.rs); io_uring's calls
/// need a ring of their own: uringlab makes them.
const NAMES: [&str; KINDS] = [
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "accept4",
    "recvfrom",
    "recvmsg",
    "read",
    "sendto",
    "sendmsg",
    "write",
    "accept",
    "readv",
    "writev",
    "recvmmsg",
    "sendmmsg",
    "sendfile",
    "splice",
];
const KINDS: usize = 22;

fn main() {
    let mut counts: [u64; KINDS] = std::array::from_fn(|i| 3 + i as u64);
    let mut wait_signal = false;
    let mut fork = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--wait-signal" => wait_signal = true,
            "--fork" => fork = true,
            "--all" => {
                let n = args.next().and_then(|v| v.parse().ok()).expect("--all N");
                counts = [n; KINDS];
            }
            "--count" => {
                let spec = args.next().expect("--count NAME=N");
                let (name, n) = spec.split_once('=').expect("--count NAME=N");
                let i = NAMES
                    .iter()
                    .position(|x| *x == name)
                    .expect("unknown syscall name");
                counts[i] = n.parse().expect("count");
            }
            other => {
                eprintln!("syscall-burst: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let fds = setup();
    if wait_signal {
        testprogs::wait_for_go();
    }
    if fork {
        // SAFETY: the child only makes raw syscalls and _exits.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                burst(&fds, &counts);
                libc::_exit(0);
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            libc::_exit(0);
        }
    }
    burst(&fds, &counts);
    // SAFETY: ends the process without running any more (traced) syscalls.
    unsafe { libc::_exit(0) };
}

struct Fds {
    /// A non-blocking socketpair: data written to `b` is read from `a`.
    a: i32,
    b: i32,
    /// An epoll fd watching `a`, and an empty one for epoll_ctl ADD/DEL.
    ep: i32,
    ep_ctl: i32,
    /// A non-blocking listening socket with no pending connection.
    listener: i32,
    /// A file of `KINDS` × 256 zero bytes for sendfile and splice to read, and a
    /// pipe for splice to write into.
    file: i32,
    pipe_w: i32,
}

fn setup() -> Fds {
    // SAFETY: plain socket/epoll setup with checked results.
    unsafe {
        let mut pair = [0i32; 2];
        assert_eq!(
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
                0,
                pair.as_mut_ptr()
            ),
            0
        );
        let ep = libc::epoll_create1(0);
        let ep_ctl = libc::epoll_create1(0);
        assert!(ep >= 0 && ep_ctl >= 0);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        assert_eq!(
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, pair[0], &mut ev),
            0
        );
        let listener = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as u16;
        // Abstract socket name, unique per process.
        let name = format!("syscall-burst-{}", std::process::id());
        for (i, b) in name.bytes().enumerate() {
            addr.sun_path[i + 1] = b as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as u32;
        assert_eq!(libc::bind(listener, (&raw const addr).cast(), len), 0);
        assert_eq!(libc::listen(listener, 1), 0);
        let file = libc::memfd_create(c"syscall-burst".as_ptr(), 0);
        assert!(file >= 0);
        // Sized, not written: setup makes no traced call for it (a started
        // command is traced from its first).
        assert_eq!(libc::ftruncate(file, (KINDS * 256) as libc::off_t), 0);
        let mut pipe = [0i32; 2];
        assert_eq!(libc::pipe2(pipe.as_mut_ptr(), libc::O_NONBLOCK), 0);
        Fds {
            a: pair[0],
            b: pair[1],
            ep,
            ep_ctl,
            listener,
            file,
            pipe_w: pipe[1],
        }
    }
}

/// The measured part: sends first (so receives find data), then receives,
/// then the waits, then epoll_ctl and the accepts. Raw syscalls only; one
/// byte (one message) per call.
fn burst(fds: &Fds, counts: &[u64; KINDS]) {
    let byte = [b'x'; 1];
    let mut buf = [0u8; 64];
    // SAFETY: raw syscalls on fds set up above with valid local buffers.
    unsafe {
        for _ in 0..counts[14] {
            libc::syscall(libc::SYS_write, fds.b, byte.as_ptr(), 1);
        }
        for _ in 0..counts[12] {
            libc::syscall(libc::SYS_sendto, fds.b, byte.as_ptr(), 1, 0, 0, 0usize);
        }
        let mut iov = libc::iovec {
            iov_base: byte.as_ptr() as *mut _,
            iov_len: 1,
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        for _ in 0..counts[13] {
            libc::syscall(libc::SYS_sendmsg, fds.b, &msg, 0);
        }
        for _ in 0..counts[17] {
            libc::syscall(libc::SYS_writev, fds.b, &iov, 1);
        }
        let mut mmsg: libc::mmsghdr = std::mem::zeroed();
        mmsg.msg_hdr = msg;
        for _ in 0..counts[19] {
            libc::syscall(libc::SYS_sendmmsg, fds.b, &mut mmsg, 1, 0);
        }
        let mut offset: libc::off_t = 0;
        for _ in 0..counts[20] {
            libc::syscall(libc::SYS_sendfile, fds.b, fds.file, &mut offset, 1);
        }
        let mut offset: libc::loff_t = 0;
        for _ in 0..counts[21] {
            libc::syscall(
                libc::SYS_splice,
                fds.file,
                &mut offset,
                fds.pipe_w,
                0,
                1,
                0usize,
            );
        }
        for _ in 0..counts[11] {
            libc::syscall(libc::SYS_read, fds.a, buf.as_mut_ptr(), 1);
        }
        for _ in 0..counts[9] {
            libc::syscall(libc::SYS_recvfrom, fds.a, buf.as_mut_ptr(), 1, 0, 0, 0usize);
        }
        let mut riov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut rmsg: libc::msghdr = std::mem::zeroed();
        rmsg.msg_iov = &mut riov;
        rmsg.msg_iovlen = 1;
        for _ in 0..counts[10] {
            libc::syscall(libc::SYS_recvmsg, fds.a, &mut rmsg, 0);
        }
        for _ in 0..counts[16] {
            libc::syscall(libc::SYS_readv, fds.a, &riov, 1);
        }
        let mut rmmsg: libc::mmsghdr = std::mem::zeroed();
        rmmsg.msg_hdr = rmsg;
        for _ in 0..counts[18] {
            libc::syscall(
                libc::SYS_recvmmsg,
                fds.a,
                &mut rmmsg,
                1,
                libc::MSG_DONTWAIT,
                0,
            );
        }
        let zero_tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let zero_ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        for _ in 0..counts[0] {
            let mut set: libc::fd_set = std::mem::zeroed();
            libc::FD_SET(fds.a, &mut set);
            let mut tv = zero_tv;
            libc::syscall(libc::SYS_select, fds.a + 1, &mut set, 0, 0, &mut tv);
        }
        for _ in 0..counts[1] {
            let mut set: libc::fd_set = std::mem::zeroed();
            libc::FD_SET(fds.a, &mut set);
            let mut ts = zero_ts;
            libc::syscall(
                libc::SYS_pselect6,
                fds.a + 1,
                &mut set,
                0,
                0,
                &mut ts,
                0usize,
            );
        }
        let mut pfd = libc::pollfd {
            fd: fds.a,
            events: libc::POLLIN,
            revents: 0,
        };
        for _ in 0..counts[2] {
            libc::syscall(libc::SYS_poll, &mut pfd, 1, 0);
        }
        for _ in 0..counts[3] {
            let mut ts = zero_ts;
            libc::syscall(libc::SYS_ppoll, &mut pfd, 1, &mut ts, 0, 8);
        }
        let mut events: [libc::epoll_event; 8] = std::mem::zeroed();
        for _ in 0..counts[4] {
            libc::syscall(libc::SYS_epoll_wait, fds.ep, events.as_mut_ptr(), 8, 0);
        }
        for _ in 0..counts[5] {
            libc::syscall(
                libc::SYS_epoll_pwait,
                fds.ep,
                events.as_mut_ptr(),
                8,
                0,
                0,
                8usize,
            );
        }
        for _ in 0..counts[6] {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                fds.ep,
                events.as_mut_ptr(),
                8,
                &zero_ts,
                0,
                8usize,
            );
        }
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        for i in 0..counts[7] {
            let op = if i % 2 == 0 {
                libc::EPOLL_CTL_ADD
            } else {
                libc::EPOLL_CTL_DEL
            };
            libc::syscall(libc::SYS_epoll_ctl, fds.ep_ctl, op, fds.b, &mut ev);
        }
        for _ in 0..counts[8] {
            libc::syscall(libc::SYS_accept4, fds.listener, 0, 0, libc::SOCK_NONBLOCK);
        }
        for _ in 0..counts[15] {
            libc::syscall(libc::SYS_accept, fds.listener, 0, 0);
        }
    }
}
