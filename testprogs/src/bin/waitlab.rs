//! Waits in controlled ways, so kernel tests can check each measured figure
//! against what really happened: watched fds, ready fds, interest-set size,
//! copy costs, payload, sleep versus busy time, timeouts, EINTR and EBADF.
//!
//! Setup happens first; then `ready PID` on stdout and a block in
//! `sigwaitinfo` (not a traced call) until SIGUSR1; then the scenario, using
//! raw syscalls only; then `_exit`.
//!
//!   waitlab select K R N     N selects (timeout 0) watching K fds, R readable;
//!                            the fds sit high, so n (highest fd + 1) != K
//!   waitlab poll K R N       the same with poll (nfds = K)
//!   waitlab pollgaps K R U N the same with U unused entries (fd -1, which
//!                            the kernel skips) among the K, every other
//!                            entry while both last (nfds = K + U)
//!   waitlab pollthreads N R  N threads, the i-th (from 1) polling 10·i fds
//!                            of its own, all readable, R times (timeout 0),
//!                            then sleeping for `--linger` before it exits
//!   waitlab epoll A D R N    A epoll_ctl ADDs, D DELs, R of the rest readable,
//!                            then N epoll_waits (timeout 0, maxevents 64)
//!   waitlab sleep MS [N]     N polls (1 by default) that each time out
//!                            after MS ms: each blocks once, and only its
//!                            timer wakes it
//!   waitlab busy N           N polls with timeout 0 on an idle fd
//!   waitlab eintr            one poll and one epoll_wait with no timeout,
//!                            each interrupted by SIGALRM after 100 ms
//!   waitlab timeleft         a select, a pselect6 and a ppoll of the idle
//!                            fd with a 10 s timeout, each interrupted by
//!                            SIGALRM after 100 ms, then a select with a
//!                            20 ms timeout that expires; says `time left
//!                            select US pselect6 US ppoll US expired US`,
//!                            the µs each call wrote back over its timeout
//!   waitlab herd N R         N threads asleep in epoll_wait on one
//!                            level-triggered epoll fd watching a pipe, R
//!                            times: a byte written wakes them one after
//!                            another (each that takes the still-readable
//!                            fd wakes the next), then it is read back
//!   waitlab handoff R        two threads take turns at epoll_wait under a
//!                            lock, as tokio's workers hold its poller:
//!                            never two waiting at once; R bytes written
//!                            30 µs apart, each read by the thread it woke
//!   waitlab eventfd N        N rounds of: an 8-byte write to an eventfd
//!                            (a loop's wakeup, as tokio and libuv signal
//!                            one) and an 8-byte read of it
//!   waitlab stopped FIFO     one poll with no timeout on the FIFO (opened
//!                            read-write), for the test to stop and continue
//!                            and then write a byte to; says `poll returned
//!                            N`, reads the byte; then one more, which
//!                            SIGALRM's handler interrupts after 100 ms
//!   waitlab restart N R      a read of an empty pipe that N SIGALRMs, 30 ms
//!                            apart, cut short; their handler is installed
//!                            with SA_RESTART when R is 1 (the kernel
//!                            restarts the read unseen) and without when 0
//!                            (the read returns EINTR and is called again);
//!                            the N-th handler writes the byte it then reads
//!   waitlab ebadf            epoll_wait on a closed fd, select on a closed fd
//!   waitlab payload B N      N sendto of B bytes, then N recvfrom of B bytes
//!   waitlab splice B N       N rounds of: a sendto of B bytes to a socket,
//!                            a splice of them from that socket into a
//!                            pipe, one from the pipe back into the socket,
//!                            a recvfrom of them at the peer
//!   waitlab positional B N   on an unlinked temporary file: N pwrite64
//!                            and N pread64 of B bytes, then one pwritev,
//!                            preadv, pwritev2 and preadv2 of B bytes in two
//!                            iovecs each
//!   waitlab echoloop N       N rounds of a loop's calls: a sendto of 16
//!                            bytes, a poll (timeout 0) that finds them, a
//!                            recvfrom of the 16
//!   waitlab wakeups N M      N empty wakeups: a byte sent, an epoll_wait
//!                            that reports it, another thread's recvfrom
//!                            that takes it, then this one's, which fails
//!                            EAGAIN; then M that are not: a client
//!                            connects, the wait reports the listener, an
//!                            accept4 takes the connection and a recvfrom
//!                            of it finds nothing yet (an optimistic read)
//!
//! `--linger MS` (last) keeps the process alive that long after the scenario,
//! in nanosleep (not a traced call), so a tracer sees it alive.

use std::ptr::null_mut;

/// First fd number the watched sockets are moved to.
const HIGH_FD: i32 = 700;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let linger_ms = testprogs::take_linger(&mut args).unwrap_or_else(|| usage());
    let num = |i: usize| -> usize {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let scenario = args.first().map(String::as_str).unwrap_or_else(|| usage());
    let prepared = match scenario {
        "select" | "poll" | "pollgaps" => Prepared::Fds(readable_fds(num(1), num(2))),
        "pollthreads" => {
            let all = 10 * num(1) * (num(1) + 1) / 2;
            Prepared::Fds(readable_fds(all, all))
        }
        "epoll" => Prepared::Epoll(epoll_set(num(1), num(2), num(3))),
        "payload" | "echoloop" | "splice" => Prepared::Fds(readable_fds(1, 0)),
        "positional" => Prepared::File(temporary_file()),
        "sleep" | "busy" | "eintr" | "ebadf" | "timeleft" => Prepared::Fds(readable_fds(1, 0)),
        "stopped" => Prepared::Fifo(open_fifo(args.get(1).unwrap_or_else(|| usage()))),
        "restart" => Prepared::Fifo(restarting_pipe(num(1), num(2))),
        "herd" | "handoff" => Prepared::Epoll(watched_pipe()),
        "wakeups" => Prepared::Epoll(pair_and_listener()),
        // SAFETY: eventfd has no preconditions.
        "eventfd" => Prepared::File(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) }),
        _ => usage(),
    };
    testprogs::wait_for_go();
    // SAFETY: raw syscalls on fds prepared above with valid local buffers.
    unsafe {
        match (scenario, &prepared) {
            ("select", Prepared::Fds(fds)) => {
                let n = fds.watched.iter().max().unwrap() + 1;
                for _ in 0..num(3) {
                    let mut set: libc::fd_set = std::mem::zeroed();
                    for &fd in &fds.watched {
                        libc::FD_SET(fd, &mut set);
                    }
                    let mut tv = libc::timeval {
                        tv_sec: 0,
                        tv_usec: 0,
                    };
                    libc::syscall(libc::SYS_select, n, &mut set, 0, 0, &mut tv);
                }
            }
            ("poll", Prepared::Fds(fds)) => {
                let mut pfds = poll_in(&fds.watched);
                for _ in 0..num(3) {
                    libc::syscall(libc::SYS_poll, pfds.as_mut_ptr(), pfds.len(), 0);
                }
            }
            ("pollthreads", Prepared::Fds(fds)) => {
                let (threads, rounds) = (num(1), num(2));
                let mut first = 0;
                let handles: Vec<_> = (1..=threads)
                    .map(|i| {
                        let mine = fds.watched[first..first + 10 * i].to_vec();
                        first += 10 * i;
                        std::thread::spawn(move || {
                            let mut pfds = poll_in(&mine);
                            for _ in 0..rounds {
                                libc::syscall(libc::SYS_poll, pfds.as_mut_ptr(), pfds.len(), 0);
                            }
                            std::thread::sleep(std::time::Duration::from_millis(linger_ms));
                        })
                    })
                    .collect();
                for h in handles {
                    let _ = h.join();
                }
            }
            ("pollgaps", Prepared::Fds(fds)) => {
                let (mut real, mut unused) = (fds.watched.iter(), num(3));
                let mut pfds = Vec::new();
                for i in 0..fds.watched.len() + unused {
                    let fd = match real.len() {
                        0 => None,
                        _ if i % 2 == 1 && unused > 0 => None,
                        _ => real.next(),
                    };
                    unused -= usize::from(fd.is_none());
                    pfds.push(libc::pollfd {
                        fd: fd.copied().unwrap_or(-1),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
                for _ in 0..num(4) {
                    libc::syscall(libc::SYS_poll, pfds.as_mut_ptr(), pfds.len(), 0);
                }
            }
            ("epoll", Prepared::Epoll(ep)) => {
                for (i, fd) in ep.fds.iter().enumerate() {
                    let mut ev = libc::epoll_event {
                        events: libc::EPOLLIN as u32,
                        u64: i as u64,
                    };
                    libc::syscall(
                        libc::SYS_epoll_ctl,
                        ep.epfd,
                        libc::EPOLL_CTL_ADD,
                        *fd,
                        &mut ev,
                    );
                }
                for fd in ep.fds.iter().take(num(2)) {
                    libc::syscall(libc::SYS_epoll_ctl, ep.epfd, libc::EPOLL_CTL_DEL, *fd, 0);
                }
                let mut events: [libc::epoll_event; 64] = std::mem::zeroed();
                for _ in 0..num(4) {
                    libc::syscall(libc::SYS_epoll_wait, ep.epfd, events.as_mut_ptr(), 64, 0);
                }
            }
            ("sleep", Prepared::Fds(fds)) => {
                let mut pfd = libc::pollfd {
                    fd: fds.idle,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let times = if args.len() > 2 { num(2) } else { 1 };
                for _ in 0..times {
                    libc::syscall(libc::SYS_poll, &mut pfd, 1, num(1) as i64);
                }
            }
            ("busy", Prepared::Fds(fds)) => {
                let mut pfd = libc::pollfd {
                    fd: fds.idle,
                    events: libc::POLLIN,
                    revents: 0,
                };
                for _ in 0..num(1) {
                    libc::syscall(libc::SYS_poll, &mut pfd, 1, 0);
                }
            }
            ("restart", Prepared::Fifo(read_end)) => {
                let interval = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 30_000,
                };
                let timer = libc::itimerval {
                    it_interval: interval,
                    it_value: interval,
                };
                libc::setitimer(libc::ITIMER_REAL, &timer, null_mut());
                let mut byte = 0u8;
                while libc::syscall(libc::SYS_read, *read_end, &mut byte, 1) < 0 {}
            }
            ("eintr", Prepared::Fds(fds)) => {
                interrupt_after_100ms();
                let mut pfd = libc::pollfd {
                    fd: fds.idle,
                    events: libc::POLLIN,
                    revents: 0,
                };
                libc::syscall(libc::SYS_poll, &mut pfd, 1, -1);
                interrupt_after_100ms();
                let epfd = libc::epoll_create1(0);
                let mut events: [libc::epoll_event; 4] = std::mem::zeroed();
                libc::syscall(libc::SYS_epoll_wait, epfd, events.as_mut_ptr(), 4, -1);
            }
            ("timeleft", Prepared::Fds(fds)) => {
                let idle_set = || {
                    let mut set: libc::fd_set = std::mem::zeroed();
                    libc::FD_SET(fds.idle, &mut set);
                    set
                };
                let n = fds.idle + 1;
                let mut set = idle_set();
                let mut tv = libc::timeval {
                    tv_sec: 10,
                    tv_usec: 0,
                };
                interrupt_after_100ms();
                libc::syscall(libc::SYS_select, n, &mut set, 0, 0, &mut tv);
                let mut set = idle_set();
                let mut ts = libc::timespec {
                    tv_sec: 10,
                    tv_nsec: 0,
                };
                interrupt_after_100ms();
                libc::syscall(libc::SYS_pselect6, n, &mut set, 0, 0, &mut ts, 0usize);
                let mut pfd = libc::pollfd {
                    fd: fds.idle,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let mut pts = libc::timespec {
                    tv_sec: 10,
                    tv_nsec: 0,
                };
                interrupt_after_100ms();
                libc::syscall(libc::SYS_ppoll, &mut pfd, 1, &mut pts, 0, 8);
                let mut set = idle_set();
                let mut expired = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 20_000,
                };
                libc::syscall(libc::SYS_select, n, &mut set, 0, 0, &mut expired);
                let us = |sec: i64, sub_us: i64| sec * 1_000_000 + sub_us;
                println!(
                    "time left select {} pselect6 {} ppoll {} expired {}",
                    us(tv.tv_sec, tv.tv_usec),
                    us(ts.tv_sec, ts.tv_nsec / 1000),
                    us(pts.tv_sec, pts.tv_nsec / 1000),
                    us(expired.tv_sec, expired.tv_usec),
                );
            }
            ("eventfd", Prepared::File(efd)) => {
                let mut count = 0u64;
                for _ in 0..num(1) {
                    libc::syscall(libc::SYS_write, *efd, &1u64, 8);
                    libc::syscall(libc::SYS_read, *efd, &mut count, 8);
                }
            }
            ("wakeups", Prepared::Epoll(set)) => {
                let (empty, accepted) = (num(1), num(2));
                let (a, b, listener) = (set.fds[0], set.fds[1], set.fds[2]);
                let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
                let mut buf = [0u8; 8];
                // Two meetings a round: after the wait, and after the theft.
                let turn = std::sync::Arc::new(std::sync::Barrier::new(2));
                let thief = {
                    let turn = std::sync::Arc::clone(&turn);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 8];
                        for _ in 0..empty {
                            turn.wait();
                            libc::syscall(libc::SYS_recvfrom, a, buf.as_mut_ptr(), 8, 0, 0, 0usize);
                            turn.wait();
                        }
                    })
                };
                for _ in 0..empty {
                    libc::syscall(libc::SYS_sendto, b, b"x".as_ptr(), 1, 0, 0, 0usize);
                    libc::syscall(libc::SYS_epoll_wait, set.epfd, events.as_mut_ptr(), 4, -1);
                    turn.wait();
                    turn.wait();
                    libc::syscall(libc::SYS_recvfrom, a, buf.as_mut_ptr(), 8, 0, 0, 0usize);
                }
                let _ = thief.join();
                let addr = waitlab_address();
                let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
                for _ in 0..accepted {
                    // socket, connect and close are not traced calls.
                    let client = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                    assert_eq!(libc::connect(client, (&raw const addr).cast(), len), 0);
                    libc::syscall(libc::SYS_epoll_wait, set.epfd, events.as_mut_ptr(), 4, -1);
                    let conn = libc::syscall(libc::SYS_accept4, listener, 0, 0, libc::SOCK_NONBLOCK)
                        as i32;
                    libc::syscall(libc::SYS_recvfrom, conn, buf.as_mut_ptr(), 8, 0, 0, 0usize);
                    libc::close(conn);
                    libc::close(client);
                }
            }
            ("herd", Prepared::Epoll(set)) => {
                let (threads, rounds) = (num(1), num(2));
                let (epfd, read_end, write_end) = (set.epfd, set.fds[0], set.fds[1]);
                let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads + 1));
                let waiters: Vec<_> = (0..threads)
                    .map(|_| {
                        let barrier = std::sync::Arc::clone(&barrier);
                        std::thread::spawn(move || {
                            for _ in 0..rounds {
                                let mut ev: libc::epoll_event = std::mem::zeroed();
                                libc::syscall(libc::SYS_epoll_wait, epfd, &mut ev, 1, -1);
                                barrier.wait();
                                barrier.wait();
                            }
                        })
                    })
                    .collect();
                let mut byte = 0u8;
                for _ in 0..rounds {
                    // Long enough for every thread to be asleep in its wait.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    libc::syscall(libc::SYS_write, write_end, b"x".as_ptr(), 1);
                    barrier.wait();
                    libc::syscall(libc::SYS_read, read_end, &mut byte, 1);
                    barrier.wait();
                }
                waiters.into_iter().for_each(|w| w.join().unwrap());
            }
            ("handoff", Prepared::Epoll(set)) => {
                let rounds = num(1);
                let (epfd, read_end, write_end) = (set.epfd, set.fds[0], set.fds[1]);
                let poller = std::sync::Arc::new(std::sync::Mutex::new(0usize));
                let workers: Vec<_> = (0..2)
                    .map(|_| {
                        let poller = std::sync::Arc::clone(&poller);
                        std::thread::spawn(move || loop {
                            let mut taken = poller.lock().unwrap();
                            if *taken >= rounds {
                                break;
                            }
                            let mut ev: libc::epoll_event = std::mem::zeroed();
                            libc::syscall(libc::SYS_epoll_wait, epfd, &mut ev, 1, -1);
                            let mut byte = 0u8;
                            libc::syscall(libc::SYS_read, read_end, &mut byte, 1);
                            *taken += 1;
                        })
                    })
                    .collect();
                for _ in 0..rounds {
                    libc::syscall(libc::SYS_write, write_end, b"x".as_ptr(), 1);
                    let until = std::time::Instant::now() + std::time::Duration::from_micros(30);
                    while std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
                workers.into_iter().for_each(|w| w.join().unwrap());
            }
            ("stopped", Prepared::Fifo(fd)) => {
                let mut pfd = libc::pollfd {
                    fd: *fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ready = libc::syscall(libc::SYS_poll, &mut pfd, 1, -1);
                println!("poll returned {ready}");
                let mut byte = 0u8;
                libc::syscall(libc::SYS_read, *fd, &mut byte, 1);
                // Cut short like a stop's, but the handler runs: EINTR, no
                // resumption, and the restart function it left is reset.
                interrupt_after_100ms();
                libc::syscall(libc::SYS_poll, &mut pfd, 1, -1);
            }
            ("ebadf", Prepared::Fds(_)) => {
                let closed = 650;
                libc::close(closed);
                let mut events: [libc::epoll_event; 4] = std::mem::zeroed();
                libc::syscall(libc::SYS_epoll_wait, closed, events.as_mut_ptr(), 4, 0);
                let mut set: libc::fd_set = std::mem::zeroed();
                libc::FD_SET(closed, &mut set);
                let mut tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                };
                libc::syscall(libc::SYS_select, closed + 1, &mut set, 0, 0, &mut tv);
            }
            ("payload", Prepared::Fds(fds)) => {
                let size = num(1);
                let buf = vec![7u8; size];
                let mut rbuf = vec![0u8; size];
                for _ in 0..num(2) {
                    libc::syscall(libc::SYS_sendto, fds.peer, buf.as_ptr(), size, 0, 0, 0usize);
                }
                for _ in 0..num(2) {
                    libc::syscall(
                        libc::SYS_recvfrom,
                        fds.idle,
                        rbuf.as_mut_ptr(),
                        size,
                        libc::MSG_WAITALL,
                        0,
                        0usize,
                    );
                }
            }
            ("splice", Prepared::Fds(fds)) => {
                // A proxy's legs: a socket's bytes spliced into a pipe, and
                // from the pipe into a socket (back to the peer, drained by
                // a recvfrom).
                let size = num(1);
                let buf = vec![7u8; size];
                let mut rbuf = vec![0u8; size];
                let mut pipe = [0i32; 2];
                assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
                let null = std::ptr::null_mut::<i64>();
                for _ in 0..num(2) {
                    libc::syscall(libc::SYS_sendto, fds.peer, buf.as_ptr(), size, 0, 0, 0usize);
                    libc::syscall(
                        libc::SYS_splice,
                        fds.idle,
                        null,
                        pipe[1],
                        null,
                        size,
                        0usize,
                    );
                    libc::syscall(
                        libc::SYS_splice,
                        pipe[0],
                        null,
                        fds.idle,
                        null,
                        size,
                        0usize,
                    );
                    let (peer, rbuf) = (fds.peer, rbuf.as_mut_ptr());
                    libc::syscall(
                        libc::SYS_recvfrom,
                        peer,
                        rbuf,
                        size,
                        libc::MSG_WAITALL,
                        0,
                        0usize,
                    );
                }
            }
            ("positional", Prepared::File(fd)) => {
                let size = num(1);
                let buf = vec![7u8; size];
                let mut rbuf = vec![0u8; size];
                for i in 0..num(2) {
                    let at = (i * size) as i64;
                    libc::syscall(libc::SYS_pwrite64, *fd, buf.as_ptr(), size, at);
                }
                for i in 0..num(2) {
                    let at = (i * size) as i64;
                    libc::syscall(libc::SYS_pread64, *fd, rbuf.as_mut_ptr(), size, at);
                }
                let half = size / 2;
                let out = [
                    libc::iovec {
                        iov_base: buf.as_ptr() as *mut _,
                        iov_len: half,
                    },
                    libc::iovec {
                        iov_base: buf[half..].as_ptr() as *mut _,
                        iov_len: size - half,
                    },
                ];
                let (low, high) = rbuf.split_at_mut(half);
                let into = [
                    libc::iovec {
                        iov_base: low.as_mut_ptr().cast(),
                        iov_len: low.len(),
                    },
                    libc::iovec {
                        iov_base: high.as_mut_ptr().cast(),
                        iov_len: high.len(),
                    },
                ];
                // Offset 0 (its low and high halves), and flags 0 for the v2s.
                libc::syscall(libc::SYS_pwritev, *fd, out.as_ptr(), 2, 0, 0);
                libc::syscall(libc::SYS_preadv, *fd, into.as_ptr(), 2, 0, 0);
                libc::syscall(libc::SYS_pwritev2, *fd, out.as_ptr(), 2, 0, 0, 0usize);
                libc::syscall(libc::SYS_preadv2, *fd, into.as_ptr(), 2, 0, 0, 0usize);
            }
            ("echoloop", Prepared::Fds(fds)) => {
                let mut buf = [7u8; 16];
                let mut pfd = libc::pollfd {
                    fd: fds.idle,
                    events: libc::POLLIN,
                    revents: 0,
                };
                for _ in 0..num(1) {
                    libc::syscall(libc::SYS_sendto, fds.peer, buf.as_ptr(), 16, 0, 0, 0usize);
                    libc::syscall(libc::SYS_poll, &mut pfd, 1, 0);
                    libc::syscall(
                        libc::SYS_recvfrom,
                        fds.idle,
                        buf.as_mut_ptr(),
                        16,
                        libc::MSG_WAITALL,
                        0,
                        0usize,
                    );
                }
            }
            _ => usage(),
        }
        let ts = libc::timespec {
            tv_sec: (linger_ms / 1000) as i64,
            tv_nsec: ((linger_ms % 1000) * 1_000_000) as i64,
        };
        libc::nanosleep(&ts, null_mut());
        libc::_exit(0);
    }
}

/// A pollfd array asking each of `fds` for input.
fn poll_in(fds: &[i32]) -> Vec<libc::pollfd> {
    fds.iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect()
}

fn usage() -> ! {
    eprintln!("usage: see the doc comment of testprogs/src/bin/waitlab.rs");
    std::process::exit(2);
}

enum Prepared {
    Fds(Fds),
    Epoll(EpollSet),
    Fifo(i32),
    File(i32),
}

/// A file in the temporary folder, unlinked at once: nothing is left.
fn temporary_file() -> i32 {
    let dir = std::ffi::CString::new(std::env::temp_dir().into_os_string().into_encoded_bytes())
        .unwrap_or_else(|_| usage());
    // SAFETY: a valid NUL-terminated path; O_TMPFILE names no file.
    let fd = unsafe { libc::open(dir.as_ptr(), libc::O_TMPFILE | libc::O_RDWR, 0o600) };
    assert!(fd >= 0, "O_TMPFILE: {}", std::io::Error::last_os_error());
    fd
}

/// The FIFO at `path`, opened read-write: the open does not wait for a
/// writer, and the FIFO never reads as closed.
fn open_fifo(path: &str) -> i32 {
    let path = std::ffi::CString::new(path).unwrap_or_else(|_| usage());
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
    assert!(
        fd >= 0,
        "open the FIFO: {}",
        std::io::Error::last_os_error()
    );
    fd
}

struct Fds {
    /// Watched fds, moved to HIGH_FD and up; the first `ready` are readable.
    watched: Vec<i32>,
    /// An fd with nothing to read, and the peer that writes to it.
    idle: i32,
    peer: i32,
}

struct EpollSet {
    epfd: i32,
    fds: Vec<i32>,
}

fn socketpair() -> (i32, i32) {
    let mut pair = [0i32; 2];
    // SAFETY: valid two-element array.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
            0,
            pair.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair");
    (pair[0], pair[1])
}

/// `k` watched fds at HIGH_FD.., the first `ready` of them with a byte to read.
fn readable_fds(k: usize, ready: usize) -> Fds {
    raise_nofile();
    let mut watched = Vec::new();
    for i in 0..k {
        let (a, b) = socketpair();
        let high = HIGH_FD + 2 * i as i32;
        // SAFETY: dup2 onto a free high fd number; the originals are closed.
        unsafe {
            assert_eq!(libc::dup2(a, high), high);
            libc::close(a);
            if i < ready {
                assert_eq!(libc::write(b, b"x".as_ptr().cast(), 1), 1);
            }
        }
        // Keep `b` open (leaked on purpose) so `high` does not see EOF.
        watched.push(high);
    }
    let (idle, peer) = socketpair();
    Fds {
        watched,
        idle,
        peer,
    }
}

fn epoll_set(add: usize, del: usize, ready: usize) -> EpollSet {
    raise_nofile();
    // SAFETY: epoll_create1 has no preconditions.
    let epfd = unsafe { libc::epoll_create1(0) };
    let mut fds = Vec::new();
    for i in 0..add {
        let (a, b) = socketpair();
        // The deleted ones come first; readiness goes to the ones that stay.
        if i >= del && i < del + ready {
            // SAFETY: writing one byte from a static buffer.
            unsafe { assert_eq!(libc::write(b, b"x".as_ptr().cast(), 1), 1) };
        }
        fds.push(a);
    }
    EpollSet { epfd, fds }
}

/// A level-triggered epoll fd watching a pipe's read end for input:
/// `fds` holds the read end, then the write end.
/// A non-blocking socketpair's first end and a listening unix socket
/// (abstract, named after the pid), both in one epoll set: `fds` holds the
/// pair's ends and the listener.
fn pair_and_listener() -> EpollSet {
    let (a, b) = socketpair();
    // SAFETY: plain socket and epoll setup on local structs.
    unsafe {
        let listener = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        let addr = waitlab_address();
        let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
        assert_eq!(libc::bind(listener, (&raw const addr).cast(), len), 0);
        assert_eq!(libc::listen(listener, 8), 0);
        let epfd = libc::epoll_create1(0);
        for fd in [a, listener] {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            assert_eq!(libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev), 0);
        }
        EpollSet {
            epfd,
            fds: vec![a, b, listener],
        }
    }
}

/// The `wakeups` listener's abstract address, unique to the process.
fn waitlab_address() -> libc::sockaddr_un {
    // SAFETY: a zeroed sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as u16;
    let name = format!("waitlab-{}", std::process::id());
    for (i, b) in name.bytes().enumerate() {
        addr.sun_path[i + 1] = b as libc::c_char;
    }
    addr
}

fn watched_pipe() -> EpollSet {
    let mut ends = [0i32; 2];
    // SAFETY: plain pipe and epoll setup on a local array and event.
    unsafe {
        assert_eq!(libc::pipe(ends.as_mut_ptr()), 0);
        let epfd = libc::epoll_create1(0);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        assert_eq!(
            libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, ends[0], &mut ev),
            0
        );
        EpollSet {
            epfd,
            fds: ends.to_vec(),
        }
    }
}

fn raise_nofile() {
    // SAFETY: valid pointers to a local rlimit.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
}

extern "C" fn on_alarm(_: i32) {}

/// The `restart` scenario's alarms still to come, and the pipe end its
/// last handler writes to.
static ALARMS_LEFT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PIPE_WRITE_END: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_counted_alarm(_: i32) {
    use std::sync::atomic::Ordering::Relaxed;
    if ALARMS_LEFT.fetch_sub(1, Relaxed) == 1 {
        // SAFETY: a zeroed timer disarms it; one byte from a static buffer.
        unsafe {
            libc::setitimer(libc::ITIMER_REAL, &std::mem::zeroed(), null_mut());
            libc::syscall(
                libc::SYS_write,
                PIPE_WRITE_END.load(Relaxed),
                b"x".as_ptr(),
                1,
            );
        }
    }
}

/// A pipe for the `restart` scenario, its SIGALRM handler installed with
/// SA_RESTART or without: the read end.
fn restarting_pipe(alarms: usize, sa_restart: usize) -> i32 {
    use std::sync::atomic::Ordering::Relaxed;
    if alarms == 0 || sa_restart > 1 {
        usage();
    }
    let mut ends = [0i32; 2];
    // SAFETY: a valid array of two fds; a handler with no preconditions.
    unsafe {
        assert_eq!(libc::pipe(ends.as_mut_ptr()), 0, "pipe");
        ALARMS_LEFT.store(alarms, Relaxed);
        PIPE_WRITE_END.store(ends[1], Relaxed);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_counted_alarm as *const () as usize;
        if sa_restart == 1 {
            sa.sa_flags = libc::SA_RESTART;
        }
        libc::sigaction(libc::SIGALRM, &sa, null_mut());
    }
    ends[0]
}

/// SIGALRM in 100 ms, with a handler installed without SA_RESTART so the
/// blocked call returns EINTR.
fn interrupt_after_100ms() {
    // SAFETY: installing a no-op handler and arming a one-shot timer.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        libc::sigaction(libc::SIGALRM, &sa, null_mut());
        let timer = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            },
        };
        libc::setitimer(libc::ITIMER_REAL, &timer, null_mut());
    }
}
