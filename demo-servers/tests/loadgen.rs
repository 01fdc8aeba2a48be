//! loadgen against real and deliberately broken servers, and the command
//! lines of every binary.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN).args(args).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "loadgen printed no JSON ({e}); stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn loadgen_reports_json_against_echo_epoll() {
    let server = Server::start_named("epoll");
    let addr = server.addr.to_string();
    let out = loadgen(&[
        "--addr",
        &addr,
        "--conns",
        "8",
        "--idle",
        "10",
        "--size",
        "200",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--json",
    ]);
    assert!(out.status.success(), "loadgen failed: {}", stderr_of(&out));
    let r = json_of(&out);
    for key in [
        "messages",
        "messages_per_sec",
        "bytes_per_sec",
        "latency_us",
        "errors",
        "corrupt",
        "connect_failures",
        "active_conns",
        "idle_conns",
        "duration_s",
    ] {
        assert!(r.get(key).is_some(), "missing {key} in {r}");
    }
    assert!(r["messages"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["corrupt"], 0, "{r}");
    assert_eq!(r["connect_failures"], 0, "{r}");
    assert_eq!(r["active_conns"], 8, "{r}");
    assert_eq!(r["idle_conns"], 10, "{r}");
    let d = r["duration_s"].as_f64().unwrap();
    assert!((0.9..10.0).contains(&d), "{r}");
    let l = &r["latency_us"];
    let (p50, p99, p999, max) = (
        l["p50"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["p999"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{r}");

    // loadgen ends with a half-close and drains, so the server saw no
    // resets, and it echoed at least every message loadgen counted.
    let (conns, bytes, errors) = parse_stopped(&server.stop());
    assert_eq!(conns, 18);
    assert_eq!(errors, 0);
    assert!(bytes >= r["messages"].as_u64().unwrap() * 200);
}

#[test]
fn loadgen_open_loop_paces_its_messages() {
    let server = Server::start_named("poll");
    let addr = server.addr.to_string();
    let out = loadgen(&[
        "--addr",
        &addr,
        "--conns",
        "4",
        "--rate",
        "400",
        "--duration",
        "1s",
        "--json",
    ]);
    assert!(out.status.success(), "loadgen failed: {}", stderr_of(&out));
    let r = json_of(&out);
    let messages = r["messages"].as_u64().unwrap();
    // Paced, not flooding: about 400, certainly not thousands.
    assert!((1..=800).contains(&messages), "{r}");
    assert_eq!(r["rate"], 400.0);
    server.stop();
}

/// An echo server that flips one byte: the 1000th of every connection.
fn corrupting_server() -> (String, Arc<AtomicBool>, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let handle = thread::spawn(move || {
        while !stopping.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        let mut offset = 0usize;
                        while let Ok(n) = s.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            if (offset..offset + n).contains(&1000) {
                                buf[1000 - offset] ^= 0x01;
                            }
                            offset += n;
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(_) => break,
            }
        }
    });
    (addr, stop, handle)
}

#[test]
fn loadgen_detects_a_corrupted_echo() {
    let (addr, stop, handle) = corrupting_server();
    let out = loadgen(&[
        "--addr",
        &addr,
        "--conns",
        "2",
        "--size",
        "64",
        "--duration",
        "1s",
        "--json",
    ]);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr_of(&out));
    let r = json_of(&out);
    assert!(r["corrupt"].as_u64().unwrap() > 0, "{r}");
    assert!(r["errors"].as_u64().unwrap() >= r["corrupt"].as_u64().unwrap());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("corrupt echo at stream byte 1000"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn loadgen_says_when_idle_connections_are_refused() {
    raise_nofile();
    let server = Server::start_named("select");
    let addr = server.addr.to_string();
    let base = [
        "--addr",
        &addr,
        "--conns",
        "4",
        "--idle",
        "1100",
        "--duration",
        "300ms",
    ];

    let out = loadgen(&base);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("of 1100 idle connections could be opened")
            && stderr.contains("--allow-partial-idle"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");

    let mut partial = base.to_vec();
    partial.extend(["--allow-partial-idle", "--json"]);
    let out = loadgen(&partial);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = json_of(&out);
    let open = r["idle_conns"].as_u64().unwrap();
    assert!((900..1100).contains(&open), "{r}");
    assert_eq!(r["connect_failures"].as_u64().unwrap(), 1100 - open, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    server.stop();
}

#[test]
fn loadgen_cannot_connect_is_one_sentence() {
    // Bind and drop a listener to find a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = loadgen(&["--addr", &format!("127.0.0.1:{port}"), "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(
        stderr.starts_with("loadgen: cannot open active connection 1 of 16"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn bad_flags_exit_2_and_help_documents_the_json() {
    for (bin, args) in [
        (LOADGEN, &["--conns", "0", "--addr", "127.0.0.1:1"][..]),
        (
            LOADGEN,
            &["--duration", "10 parsecs", "--addr", "127.0.0.1:1"][..],
        ),
        (LOADGEN, &["--conns", "4"][..]),
        (SERVERS[0].1, &["--bogus"][..]),
        (SERVERS[1].1, &["--listen", "nowhere"][..]),
        (SERVERS[2].1, &["--edge"][..]),
        (env!("CARGO_BIN_EXE_server-bench"), &["--bogus"][..]),
    ] {
        let out = Command::new(bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bin} {args:?}");
    }
    let help = Command::new(LOADGEN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for field in [
        "messages_per_sec",
        "latency_us",
        "corrupt",
        "connect_failures",
    ] {
        assert!(text.contains(field), "--help does not document {field}");
    }
}

#[test]
fn a_server_that_cannot_listen_says_why_and_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for &(label, bin, extra) in &SERVERS {
        let out = Command::new(bin)
            .args(extra)
            .args(["--listen", &addr])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{label}");
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains(&format!("cannot listen on {addr}")),
            "{label}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{label}: {stderr}");
    }
}
