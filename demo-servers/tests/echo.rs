//! Behaviour every echo server must show, each test run against every
//! variant in `ECHO_MODELS` (blocking, select, poll, epoll, epoll --edge,
//! uring, uring --sqpoll) started as real processes on 127.0.0.1 port 0.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Runs `test` against each variant in turn, naming the variant on failure.
fn for_each_server(test: impl Fn(&mut Server)) {
    for model in ECHO_MODELS {
        let label = model.label;
        let mut server = Server::start(model);
        test(&mut server);
        assert!(server.alive(), "{label}: server died");
        let stopped = server.stop();
        eprintln!("{label}: {stopped}");
    }
}

#[test]
fn a_one_mib_message_is_echoed_intact() {
    let message = pattern_bytes(1, 1 << 20);
    for_each_server(|server| {
        let what = server.label;
        let mut client = connect(server.addr);
        let mut writer = client.try_clone().unwrap();
        let to_send = message.clone();
        // Write and read at once: a 1 MiB echo cannot fit in the socket
        // buffers, so a client that writes everything first would deadlock.
        let sender = thread::spawn(move || writer.write_all(&to_send));
        let back = read_exact(&mut client, message.len(), what);
        sender.join().unwrap().unwrap();
        assert!(back == message, "{what}: 1 MiB echo differs");
        expect_eof(&mut client, what);
    });
}

#[test]
fn two_hundred_clients_with_interleaved_partial_writes() {
    const CLIENTS: usize = 200;
    const MESSAGE: usize = 3000;
    let messages: Vec<Vec<u8>> = (0..CLIENTS).map(|i| pattern_bytes(i, MESSAGE)).collect();
    for_each_server(|server| {
        let what = server.label;
        let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server.addr)).collect();
        let mut sent = vec![0; CLIENTS];
        let mut round = 0usize;
        // Round-robin over the clients, each writing a small, varying piece,
        // so the server sees many connections each holding half a message.
        while sent.iter().any(|&n| n < MESSAGE) {
            for (i, c) in clients.iter_mut().enumerate() {
                let piece = 1 + (i * 31 + round * 17) % 97;
                let end = (sent[i] + piece).min(MESSAGE);
                if sent[i] < end {
                    c.write_all(&messages[i][sent[i]..end]).unwrap();
                    sent[i] = end;
                }
            }
            round += 1;
            if round.is_multiple_of(8) {
                thread::sleep(Duration::from_millis(1));
            }
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let back = read_exact(c, MESSAGE, what);
            assert!(back == messages[i], "{what}: client {i} got a wrong echo");
        }
    });
}

#[test]
fn abrupt_disconnects_and_half_closes_leave_the_server_serving() {
    for_each_server(|server| {
        let what = server.label;
        let mut steady = connect(server.addr);
        round_trip(&mut steady, b"before", what);

        // A client in the middle of a message while the others misbehave.
        let message = pattern_bytes(7, 20_000);
        let mut midway = connect(server.addr);
        midway.write_all(&message[..7_000]).unwrap();

        // Resets: half a message sent, some echo unread, then RST.
        for i in 0..30 {
            let mut c = connect(server.addr);
            c.write_all(&pattern_bytes(100 + i, 10_000)).unwrap();
            if i % 2 == 0 {
                let _ = read_exact(&mut c, 100, what);
            }
            set_linger_zero(&c);
            drop(c);
        }
        // Half-closes mid-message: the echo of what was sent still arrives,
        // then the server closes.
        for i in 0..30 {
            let mut c = connect(server.addr);
            let part = pattern_bytes(200 + i, 5_000 + i * 100);
            c.write_all(&part).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back)
                .unwrap_or_else(|e| panic!("{what}: half-closed client {i}: {e}"));
            assert!(
                back == part,
                "{what}: half-closed client {i} got a wrong echo"
            );
        }

        midway.write_all(&message[7_000..]).unwrap();
        let back = read_exact(&mut midway, message.len(), what);
        assert!(
            back == message,
            "{what}: the mid-message client's echo differs"
        );
        round_trip(&mut steady, b"after", what);
        let mut fresh = connect(server.addr);
        round_trip(&mut fresh, b"fresh", what);
    });
}

#[test]
fn a_client_that_never_reads_does_not_stall_the_others() {
    // Far more than all socket buffers on the path can hold; reaching it
    // would mean the server buffers without bound.
    const CEILING: usize = 256 << 20;
    for_each_server(|server| {
        let what = server.label;
        let hog = connect(server.addr);
        hog.set_nonblocking(true).unwrap();
        let chunk = vec![0x5a; 64 * 1024];
        let mut pushed = 0usize;
        // Push until writes have been refused for a whole second.
        let mut stalled_since = None::<Instant>;
        while pushed < CEILING {
            match (&hog).write(&chunk) {
                Ok(n) => {
                    pushed += n;
                    stalled_since = None;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let since = *stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(1) {
                        break;
                    }
                    wait_writable(&hog, 100);
                }
                Err(e) => panic!("{what}: hog write: {e}"),
            }
        }
        assert!(
            pushed < CEILING,
            "{what}: server accepted {pushed} bytes from a client that never reads"
        );

        // The others are served while the hog sits there.
        let started = Instant::now();
        let workers: Vec<_> = (0..10)
            .map(|i| {
                let addr = server.addr;
                thread::spawn(move || {
                    let mut c = connect(addr);
                    let msg = pattern_bytes(300 + i, 1024);
                    for _ in 0..50 {
                        round_trip(&mut c, &msg, "client beside the hog");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a client beside the hog failed");
        }
        assert!(
            started.elapsed() < IO_TIMEOUT,
            "{what}: clients beside the hog were too slow"
        );
        eprintln!("{what}: hog stalled after {} KiB", pushed / 1024);
        drop(hog);
    });
}

fn wait_writable(s: &TcpStream, timeout_ms: i32) {
    let mut pfd = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
}

#[test]
fn two_thousand_idle_connections_on_every_model_but_select() {
    // select cannot hold them: see select_refuses_descriptors_at_or_above_fd_setsize.
    // The blocking server gets one thread each; 2,000 small-stack threads
    // are well within this machine's means.
    const IDLE: usize = 2000;
    raise_nofile();
    for label in ECHO_MODELS.map(|m| m.label) {
        if label == "select" {
            continue;
        }
        let mut server = Server::start_named(label);
        let mut idle: Vec<TcpStream> = (0..IDLE).map(|_| connect(server.addr)).collect();
        let mut active = connect(server.addr);
        round_trip(&mut active, &pattern_bytes(1, 50_000), label);
        // Every idle connection was really accepted and is served.
        for c in idle.iter_mut() {
            c.write_all(b"!").unwrap();
        }
        for (i, c) in idle.iter_mut().enumerate() {
            let back = read_exact(c, 1, label);
            assert_eq!(back, b"!", "{label}: idle connection {i}");
        }
        round_trip(&mut active, b"still here", label);
        drop(idle);
        drop(active);
        assert!(server.alive(), "{label}: server died");
        let (conns, _, errors) = parse_stopped(&server.stop());
        assert_eq!(conns, IDLE as u64 + 1, "{label}");
        assert_eq!(errors, 0, "{label}");
    }
}

#[test]
fn select_refuses_descriptors_at_or_above_fd_setsize() {
    const TOTAL: usize = 1100;
    raise_nofile();
    let mut server = Server::start_named("select");
    let mut clients: Vec<TcpStream> = (0..TOTAL).map(|_| connect(server.addr)).collect();
    // Probe each one: an accepted connection echoes, a refused one was
    // closed by the server (EOF, or a reset because we wrote to it).
    for c in clients.iter_mut() {
        let _ = c.write_all(b"?");
    }
    let served: Vec<bool> = clients
        .iter_mut()
        .map(|c| {
            let mut b = [0u8; 1];
            match c.read(&mut b) {
                Ok(1) => true,
                Ok(_) => false,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
                Err(e) => panic!("select probe: {e}"),
            }
        })
        .collect();
    let accepted = served.iter().filter(|&&s| s).count();
    // The server's own descriptors (stdio, listener, self-pipe, the spare
    // for EMFILE) come first, so somewhat fewer than 1024 fit.
    assert!(
        (1000..1024).contains(&accepted),
        "accepted {accepted} connections"
    );
    assert!(
        served[..accepted].iter().all(|&s| s),
        "the accepted connections are the first ones"
    );
    let refused = TOTAL - accepted;
    let line = "refusing connection: fd 1024 >= FD_SETSIZE (1024), select(2) cannot watch it";
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stderr().matches(line).count() < refused && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches(line).count(),
        refused,
        "one log line per refusal; stderr:\n{stderr}"
    );

    // Below the limit everything still works...
    for i in [0, accepted / 2, accepted - 1] {
        round_trip(&mut clients[i], b"ok", "select below the limit");
    }
    // ...and freeing descriptors makes room for new connections again.
    let rest = clients.split_off(accepted);
    drop(rest);
    clients.truncate(accepted - 10);
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut extra_refusals = 0;
    loop {
        let mut c = connect(server.addr);
        if c.write_all(b"new").is_ok() {
            let mut b = [0u8; 3];
            if c.read_exact(&mut b).is_ok() && &b == b"new" {
                break;
            }
        }
        // The server had not yet seen the closes; it refused this one.
        extra_refusals += 1;
        assert!(
            Instant::now() < deadline,
            "no room after closing 10 connections"
        );
        thread::sleep(Duration::from_millis(50));
    }
    drop(clients);
    assert!(server.alive(), "select server died");
    let (conns, _, errors) = parse_stopped(&server.stop());
    assert_eq!(conns, accepted as u64 + 1);
    assert_eq!(errors, (refused + extra_refusals) as u64);
}

#[test]
fn sigterm_and_sigint_stop_cleanly_with_matching_stats() {
    let sizes = [1_000usize, 20_000, 300_000];
    for (n, model) in ECHO_MODELS.into_iter().enumerate() {
        let label = model.label;
        let server = Server::start(model);
        for (i, &size) in sizes.iter().enumerate() {
            let mut c = connect(server.addr);
            let msg = pattern_bytes(i, size);
            let mut w = c.try_clone().unwrap();
            let sender = thread::spawn(move || {
                w.write_all(&msg)?;
                w.shutdown(Shutdown::Write)
            });
            let mut back = Vec::new();
            // EOF comes after the server has counted every echoed byte.
            c.read_to_end(&mut back).unwrap();
            sender.join().unwrap().unwrap();
            assert_eq!(back, pattern_bytes(i, size), "{label}");
        }
        // Two idle clients still connected must not delay the stop.
        let idle = [connect(server.addr), connect(server.addr)];
        // All five accepted (in order) once the probe is echoed; its EOF
        // means the server has also counted the probe's echoed byte.
        let mut probe = connect(server.addr);
        round_trip(&mut probe, b"x", label);
        expect_eof(&mut probe, label);
        let signal = if n % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        let started = Instant::now();
        let (status, rest) = server.stop_with(signal);
        assert!(status.success(), "{label}: exit status {status}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{label}: slow stop"
        );
        let total: usize = sizes.iter().sum::<usize>() + 1;
        let expected = format!("stopped: connections=6 bytes_echoed={total} errors=0");
        assert_eq!(rest.trim(), expected, "{label} (signal {signal})");
        drop(idle);
    }
}
