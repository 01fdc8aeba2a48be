//! Kernel tests of the full measurement: each figure checked against what a
//! waitlab scenario really did (see testprogs/src/bin/waitlab.rs).
mod common;

use common::*;
use serde_json::Value;

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

fn f(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

#[test]
fn select_counts_set_bits_not_n() {
    // 10 watched fds at 700, 702, … 718: n = 719, watched = 10, 3 ready.
    let p = waitlab_metrics(&["select", "10", "3", "5"]);
    let s = syscall_total(&p, "select");
    assert_eq!(u(s, "calls"), 5);
    assert_eq!(f(s, "watched_avg"), 10.0, "{s}");
    assert_eq!(f(s, "size_arg_avg"), 719.0, "n is reported separately: {s}");
    assert_eq!(u(s, "ready"), 5 * 3, "{s}");
    assert_eq!(u(s, "scanned"), 5 * 10, "{s}");
    // One non-NULL set of ⌈719/64⌉·8 = 96 bytes in and out, plus the
    // 16-byte timeval each way.
    assert_eq!(u(s, "bookkeeping_in_bytes"), 5 * (96 + 16), "{s}");
    assert_eq!(u(s, "bookkeeping_out_bytes"), 5 * (96 + 16), "{s}");
    assert_eq!(u(s, "zero_timeouts"), 5, "{s}");
}

#[test]
fn poll_watches_nfds_and_copies_pollfds() {
    let p = waitlab_metrics(&["poll", "40", "7", "6"]);
    let s = syscall_total(&p, "poll");
    assert_eq!(u(s, "calls"), 6);
    assert_eq!(f(s, "watched_avg"), 40.0, "{s}");
    assert_eq!(u(s, "ready"), 6 * 7, "{s}");
    assert_eq!(f(s, "ready_avg"), 7.0, "{s}");
    assert_eq!(u(s, "bookkeeping_in_bytes"), 6 * 8 * 40, "{s}");
    assert_eq!(u(s, "bookkeeping_out_bytes"), 6 * 2 * 40, "{s}");
    assert!((f(s, "efficiency") - 7.0 / 40.0).abs() < 1e-9, "{s}");
}

#[test]
fn epoll_interest_set_follows_add_and_del() {
    // 100 ADD, 40 DEL → 60 registered; 5 of them ready.
    let p = waitlab_metrics(&["epoll", "100", "40", "5", "4"]);
    let w = syscall_total(&p, "epoll_wait");
    assert_eq!(u(w, "calls"), 4);
    assert_eq!(f(w, "watched_avg"), 60.0, "{w}");
    assert_eq!(f(w, "size_arg_avg"), 64.0, "maxevents: {w}");
    assert_eq!(u(w, "ready"), 4 * 5, "{w}");
    assert_eq!(u(w, "scanned"), 4 * 5, "epoll examines only ready fds: {w}");
    assert_eq!(u(w, "bookkeeping_in_bytes"), 0, "{w}");
    assert_eq!(u(w, "bookkeeping_out_bytes"), 4 * 5 * 12, "{w}");
    let c = syscall_total(&p, "epoll_ctl");
    assert_eq!(u(c, "calls"), 140);
    // ADD copies one 12-byte epoll_event in; DEL copies none.
    assert_eq!(u(c, "bookkeeping_in_bytes"), 100 * 12, "{c}");
    let sets: Vec<u64> = p["epoll_interest"]
        .as_object()
        .expect("epoll_interest")
        .values()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(sets.contains(&60), "{}", p["epoll_interest"]);
}

#[test]
fn payload_bytes_equal_what_was_sent() {
    let p = waitlab_metrics(&["payload", "1000", "8"]);
    let send = syscall_total(&p, "sendto");
    let recv = syscall_total(&p, "recvfrom");
    assert_eq!(u(send, "payload_bytes"), 8000, "{send}");
    assert_eq!(u(recv, "payload_bytes"), 8000, "{recv}");
    assert_eq!(u(recv, "receives_with_data"), 8, "{recv}");
    // The socketpair existed before muxtrace attached: classed from /proc.
    assert_eq!(u(send, "payload_socket_bytes"), 8000, "{send}");
}

#[test]
fn a_sleeping_wait_is_off_cpu() {
    let p = waitlab_metrics(&["sleep", "200"]);
    let s = syscall_total(&p, "poll");
    assert_eq!(u(s, "calls"), 1);
    assert_eq!(u(s, "timeouts"), 1, "{s}");
    let wall = u(s, "wall_ns");
    assert!(wall >= 200_000_000, "{s}");
    let off = u(s, "off_cpu_ns") as f64;
    assert!(
        off >= 0.95 * wall as f64,
        "off-CPU {off} of wall {wall}: {s}"
    );
    assert!(u(s, "sched_wakeups") >= 1, "{s}");
}

#[test]
fn a_busy_zero_timeout_loop_is_on_cpu() {
    let p = waitlab_metrics(&["busy", "20000"]);
    let s = syscall_total(&p, "poll");
    assert_eq!(u(s, "calls"), 20000);
    assert_eq!(u(s, "zero_timeouts"), 20000, "{s}");
    let share = f(s, "on_cpu_share");
    assert!(share > 0.9, "on-CPU share {share}: {s}");
}

#[test]
fn eintr_is_counted_as_such() {
    let p = waitlab_metrics(&["eintr"]);
    for name in ["poll", "epoll_wait"] {
        let s = syscall_total(&p, name);
        assert_eq!(u(s, "calls"), 1, "{s}");
        assert_eq!(u(s, "eintr"), 1, "{name}: {s}");
        assert_eq!(u(s, "errors"), 1, "{s}");
        assert_eq!(u(s, "infinite_timeouts"), 1, "{s}");
    }
}

#[test]
fn ebadf_is_counted_as_such() {
    let p = waitlab_metrics(&["ebadf"]);
    for name in ["epoll_wait", "select"] {
        let s = syscall_total(&p, name);
        assert_eq!(u(s, "ebadf"), 1, "{name}: {s}");
    }
}
