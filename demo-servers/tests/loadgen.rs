//! loadgen against real and deliberately broken servers, and the command
//! lines of every binary.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use harness::{run_loadgen, LoadgenRun, Report};

fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN).args(args).output().unwrap()
}

/// `loadgen ARGS --json`, run to its end.
fn loadgen_json(args: &[&str]) -> LoadgenRun {
    run_loadgen(Path::new(LOADGEN), args, None).unwrap()
}

/// The run's report, which must be there whatever the exit status.
fn report_of(run: &LoadgenRun) -> Report {
    run.report
        .clone()
        .unwrap_or_else(|| panic!("loadgen printed no JSON; stderr {:?}", run.stderr))
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn loadgen_reports_json_against_echo_epoll() {
    let server = Server::start_named("epoll");
    let addr = server.addr.to_string();
    // Every field is there: the report parses into harness::Report, the
    // type loadgen itself serializes.
    let run = loadgen_json(&[
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
    ]);
    assert!(run.status.success(), "loadgen failed: {}", run.stderr);
    let r = report_of(&run);
    assert!(r.messages > 0, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.corrupt, 0, "{r:?}");
    assert_eq!(r.connect_failures, 0, "{r:?}");
    assert_eq!(r.active_conns, 8, "{r:?}");
    assert_eq!(r.idle_conns, 10, "{r:?}");
    assert!((0.9..10.0).contains(&r.duration_s), "{r:?}");
    let l = r.latency_us;
    assert!(
        0.0 < l.p50 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
        "{r:?}"
    );

    // loadgen ends with a half-close and drains, so the server saw no
    // resets, and it echoed at least every message loadgen counted.
    let (conns, bytes, errors) = parse_stopped(&server.stop());
    assert_eq!(conns, 18);
    assert_eq!(errors, 0);
    assert!(bytes >= r.messages * 200);
}

#[test]
fn loadgen_open_loop_paces_its_messages() {
    let server = Server::start_named("poll");
    let addr = server.addr.to_string();
    let run = loadgen_json(&[
        "--addr",
        &addr,
        "--conns",
        "4",
        "--rate",
        "400",
        "--duration",
        "1s",
    ]);
    assert!(run.status.success(), "loadgen failed: {}", run.stderr);
    let r = report_of(&run);
    // Paced, not flooding: about 400, certainly not thousands.
    assert!((1..=800).contains(&r.messages), "{r:?}");
    assert_eq!(r.rate, Some(400.0));
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
    let run = loadgen_json(&[
        "--addr",
        &addr,
        "--conns",
        "2",
        "--size",
        "64",
        "--duration",
        "1s",
    ]);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    assert_eq!(run.status.code(), Some(1), "stderr: {}", run.stderr);
    let r = report_of(&run);
    assert!(r.corrupt > 0, "{r:?}");
    assert!(r.errors >= r.corrupt, "{r:?}");
    let stderr = &run.stderr;
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
    partial.push("--allow-partial-idle");
    let run = loadgen_json(&partial);
    assert!(run.status.success(), "{}", run.stderr);
    let r = report_of(&run);
    let open = r.idle_conns;
    assert!((900..1100).contains(&open), "{r:?}");
    assert_eq!(r.connect_failures, 1100 - open, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
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
    let loadgen = PathBuf::from(LOADGEN);
    let server_bench = PathBuf::from(env!("CARGO_BIN_EXE_server-bench"));
    for (program, args) in [
        (&loadgen, &["--conns", "0", "--addr", "127.0.0.1:1"][..]),
        (
            &loadgen,
            &["--duration", "10 parsecs", "--addr", "127.0.0.1:1"][..],
        ),
        (&loadgen, &["--warmup", "0s", "--addr", "127.0.0.1:1"][..]),
        (&loadgen, &["--conns", "4"][..]),
        (&bin(&ECHO_MODELS[0]), &["--bogus"][..]),
        (&bin(&ECHO_MODELS[1]), &["--listen", "nowhere"][..]),
        (&bin(&ECHO_MODELS[2]), &["--edge"][..]),
        (&server_bench, &["--bogus"][..]),
    ] {
        let out = Command::new(program).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{} {args:?}", program.display());
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
    for model in ECHO_MODELS {
        let label = model.label;
        let out = Command::new(bin(&model))
            .args(model.args)
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
