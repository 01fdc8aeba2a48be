//! muxtrace without root: a non-root user (nobody) with CAP_BPF and
//! CAP_PERFMON only. What that is enough for, and what needs more — the
//! README's "Requirements" table, checked against the kernel.
mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::*;
use harness::muxtrace::{final_metrics, json_lines, process, total, ATTACHED, ATTACH_TIMEOUT};
use tracer_common::SyscallKind;

const NOBODY: &str = "65534";

/// Copies of muxtrace and the test programs that nobody may run (the
/// build's own directories need not be reachable for other users).
struct Binaries {
    dir: tempfile::TempDir,
}

impl Binaries {
    fn copy() -> Binaries {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        for from in [
            PathBuf::from(MUXTRACE),
            workspace_bin("syscall-burst"),
            workspace_bin("hardship"),
        ] {
            let to = dir.path().join(from.file_name().unwrap());
            std::fs::copy(&from, &to).unwrap();
            std::fs::set_permissions(&to, PermissionsExt::from_mode(0o755)).unwrap();
        }
        Binaries { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `setpriv` switching to nobody with exactly `caps` (e.g. `+bpf,+perfmon`)
/// inherited and ambient, so they survive the exec of `exe`.
fn as_nobody(caps: &str, exe: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ]);
    if !caps.is_empty() {
        cmd.args([
            format!("--inh-caps={caps}"),
            format!("--ambient-caps={caps}"),
        ]);
    }
    cmd.arg(exe);
    cmd
}

/// A syscall-burst waiting for SIGUSR1, run by nobody or by root.
fn burst_of(bins: &Binaries, nobody: bool) -> Proc {
    let exe = bins.path("syscall-burst");
    let mut cmd = match nobody {
        true => as_nobody("", &exe),
        false => Command::new(&exe),
    };
    let p = spawn(cmd.arg("--wait-signal"));
    p.wait_line("ready ", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    p
}

/// syscall-burst's default: each syscall 3 + its index times.
const BURST: [(&str, u64); 15] = [
    ("select", 3),
    ("pselect6", 4),
    ("poll", 5),
    ("ppoll", 6),
    ("epoll_wait", 7),
    ("epoll_pwait", 8),
    ("epoll_pwait2", 9),
    ("epoll_ctl", 10),
    ("accept4", 11),
    ("recvfrom", 12),
    ("recvmsg", 13),
    ("read", 14),
    ("sendto", 15),
    ("sendmsg", 16),
    ("write", 17),
];

/// What one capability-only run of muxtrace saw of one burst.
struct Seen {
    pid: u32,
    /// fd classes while the burst ran (before its signal).
    fd_classes_while_running: usize,
    final_metrics: tracer_model::Metrics,
    stderr: String,
}

/// muxtrace run by nobody with `caps`, with `--json`, on a burst owned by
/// nobody or root; the burst is let go after two intervals.
fn traced_by_nobody(bins: &Binaries, caps: &str, burst_by_nobody: bool) -> Seen {
    run_by_nobody(&bins.path("muxtrace"), bins, caps, burst_by_nobody)
}

fn run_by_nobody(exe: &Path, bins: &Binaries, caps: &str, burst_by_nobody: bool) -> Seen {
    let target = burst_of(bins, burst_by_nobody);
    let pid = target.pid();
    let mt = spawn(as_nobody(caps, exe).args([
        "--pid",
        &pid.to_string(),
        "--json",
        "--interval",
        "200ms",
    ]));
    mt.wait_line(ATTACHED, ATTACH_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let lines = eventually("two intervals", Duration::from_secs(20), || {
        let text = mt.stdout();
        let lines = json_lines(&text).ok()?;
        (lines.len() >= 2).then_some(lines)
    });
    let fd_classes_while_running = process(&lines[1].metrics, pid)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .fd_classes
        .values()
        .map(|&n| n as usize)
        .sum();
    target.signal(libc::SIGUSR1);
    let (stdout, stderr) = finish_ok(mt);
    Seen {
        pid,
        fd_classes_while_running,
        final_metrics: final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}")),
        stderr,
    }
}

/// Every call of the burst counted, exactly, and the figures the probes
/// read from kernel memory (an epoll set's size, whether an fd is a
/// socket) measured too.
fn assert_exact(m: &tracer_model::Metrics, pid: u32) {
    let p = process(m, pid).unwrap_or_else(|e| panic!("{e:#}"));
    for (name, calls) in BURST {
        let kind = SyscallKind::from_name(name).unwrap();
        let w = total(p, kind).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(w.calls, calls, "{name}");
    }
    let epoll_wait = total(p, SyscallKind::EpollWait).unwrap();
    assert_eq!(
        epoll_wait.watched_avg, 1.0,
        "the epoll set read from the kernel"
    );
    let sendto = total(p, SyscallKind::Sendto).unwrap();
    assert!(sendto.payload_socket_bytes > 0, "socket bytes: {sendto:?}");
    assert_eq!(sendto.payload_socket_bytes, sendto.payload_bytes);
}

const WARNING: &str = "cannot list /proc/";

/// CAP_BPF and CAP_PERFMON alone, as nobody: every call counted exactly, of
/// nobody's own process and of root's. nobody's fds are listed; root's are
/// not (that needs more, below), and muxtrace says so once. Our own cost
/// needs CAP_SYS_ADMIN: without it, `cost` is null.
#[test]
#[ignore = "needs root: switches to another user with chosen capabilities"]
fn bpf_and_perfmon_alone_count_every_call_of_any_user() {
    let bins = Binaries::copy();
    for by_nobody in [true, false] {
        let seen = traced_by_nobody(&bins, "+bpf,+perfmon", by_nobody);
        let m = &seen.final_metrics;
        assert_exact(m, seen.pid);
        assert!(m.cost.is_none(), "cost without CAP_SYS_ADMIN: {:?}", m.cost);
        match by_nobody {
            true => {
                assert!(seen.fd_classes_while_running > 0, "nobody's own fds");
                assert!(!seen.stderr.contains(WARNING), "{}", seen.stderr);
            }
            false => {
                assert_eq!(seen.fd_classes_while_running, 0, "root's fds");
                assert_eq!(
                    seen.stderr.matches(WARNING).count(),
                    1,
                    "said once: {}",
                    seen.stderr
                );
                assert!(seen.stderr.contains("Permission denied"), "{}", seen.stderr);
            }
        }
    }
}

/// The calls of one syscall summed over every entry of processes named
/// `comm` (exited followed children and `--comm` matches are folded into one
/// entry per name).
fn calls_named(m: &tracer_model::Metrics, comm: &str, kind: SyscallKind) -> u64 {
    m.processes
        .iter()
        .filter(|p| p.comm == comm)
        .filter_map(|p| total(p, kind))
        .map(|w| w.calls)
        .sum()
}

/// `--comm`, `--follow` and `-- CMD` need nothing beyond the two either
/// (/proc/PID/stat, status and comm are world-readable): root's burst found
/// by name, root's burst's forked child followed, and a command nobody
/// starts, each counted exactly.
#[test]
#[ignore = "needs root: switches to another user with chosen capabilities"]
fn comm_follow_and_a_started_command_need_nothing_more() {
    let bins = Binaries::copy();
    let exe = bins.path("muxtrace");
    let caps = "+bpf,+perfmon";
    for how in ["--comm", "--follow"] {
        let mut cmd = Command::new(bins.path("syscall-burst"));
        cmd.arg("--wait-signal");
        if how == "--follow" {
            cmd.arg("--fork");
        }
        let target = spawn(&mut cmd);
        target
            .wait_line("ready ", Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let pid = target.pid().to_string();
        let which: &[&str] = match how {
            "--comm" => &["--comm", "syscall-burst"],
            _ => &["--follow", "--pid", &pid],
        };
        let mt = spawn(
            as_nobody(caps, &exe)
                .args(which)
                .args(["--json", "--interval", "200ms"]),
        );
        mt.wait_line(ATTACHED, ATTACH_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e:#}"));
        target.signal(libc::SIGUSR1);
        // --comm waits for more processes of the name: stopped once the
        // burst's calls are all in.
        eventually("the burst's calls", Duration::from_secs(30), || {
            let lines = json_lines(&mt.stdout()).ok()?;
            let last = lines.last()?;
            (calls_named(&last.metrics, "syscall-burst", SyscallKind::Write) == 17).then_some(())
        });
        mt.signal(libc::SIGINT);
        let (stdout, _) = finish_ok(mt);
        let m = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
        for (name, calls) in BURST {
            let kind = SyscallKind::from_name(name).unwrap();
            assert_eq!(
                calls_named(&m, "syscall-burst", kind),
                calls,
                "{how} {name}"
            );
        }
    }

    // A started command runs as nobody, traced from its first call, so what
    // it does before the burst counts too: Rust's runtime polls the standard
    // fds once before main, setup adds the epoll fd's one socket, and the
    // loader and glibc read files (the libraries' ELF headers, /proc/self/maps
    // for the main thread's stack: a count that depends on that file's
    // length). The burst's own reads are the socket's: 14 calls of a byte.
    let mt = spawn(
        as_nobody(caps, &exe)
            .args(["--json", "--"])
            .arg(bins.path("syscall-burst")),
    );
    let (stdout, stderr) = finish_ok(mt);
    assert!(stderr.contains(ATTACHED), "{stderr}");
    let m = final_metrics(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let started: Vec<_> = m
        .processes
        .iter()
        .filter(|p| p.comm == "syscall-burst")
        .collect();
    assert_eq!(started.len(), 1, "one started process: {:?}", m.processes);
    let p = started[0];
    for (name, calls) in BURST {
        let kind = SyscallKind::from_name(name).unwrap();
        let w = total(p, kind).unwrap_or_else(|| panic!("-- CMD: no {name}"));
        match name {
            "poll" | "epoll_ctl" => assert_eq!(w.calls, calls + 1, "-- CMD {name}"),
            "read" => {
                assert_eq!(w.payload_socket_bytes, calls, "-- CMD read: {w:?}");
                assert!(w.payload_file_bytes > 0, "-- CMD read: {w:?}");
                assert!(
                    (calls + 2..=calls + 12).contains(&w.calls),
                    "-- CMD read: the burst's 14 and the runtime's few: {w:?}"
                );
            }
            _ => assert_eq!(w.calls, calls, "-- CMD {name}"),
        }
    }
}

/// The same two as file capabilities (`setcap cap_bpf,cap_perfmon+ep`, as
/// muxtrace's hint says), run by nobody with no capabilities of its own.
#[test]
#[ignore = "needs root: sets file capabilities and switches to another user"]
fn file_capabilities_bpf_and_perfmon_suffice() {
    let bins = Binaries::copy();
    let exe = bins.path("muxtrace");
    let ok = Command::new("setcap")
        .args(["cap_bpf,cap_perfmon+ep"])
        .arg(&exe)
        .status()
        .expect("setcap (libcap2-bin)")
        .success();
    assert!(ok, "setcap failed");
    let seen = run_by_nobody(&exe, &bins, "-all", true);
    assert_exact(&seen.final_metrics, seen.pid);
    assert!(seen.fd_classes_while_running > 0, "nobody's own fds");
}

/// What needs more than the two: muxtrace's own cost (BPF_ENABLE_STATS)
/// needs CAP_SYS_ADMIN; another user's fds need CAP_DAC_READ_SEARCH (to list
/// /proc/PID/fd, mode 0500) and CAP_SYS_PTRACE (to read each fd's link); a
/// privileged port for `--prometheus`, CAP_NET_BIND_SERVICE.
#[test]
#[ignore = "needs root: switches to another user with chosen capabilities"]
fn own_cost_other_users_fds_and_low_ports_need_more_capabilities() {
    let bins = Binaries::copy();
    let seen = traced_by_nobody(&bins, "+bpf,+perfmon,+sys_admin", false);
    let cost = seen
        .final_metrics
        .cost
        .as_ref()
        .expect("cost with CAP_SYS_ADMIN");
    assert!(cost.run_count > 0, "{cost:?}");
    // The accounting's own time was measured (an empty program's test runs)
    // and taken out of the programs' run time.
    assert!(cost.accounting_ns_per_run > 0.0, "{cost:?}");

    let seen = traced_by_nobody(&bins, "+bpf,+perfmon,+dac_read_search,+sys_ptrace", false);
    assert!(seen.fd_classes_while_running > 0, "root's fds");
    assert!(!seen.stderr.contains(WARNING), "{}", seen.stderr);
    // Either one alone is not enough.
    for caps in [
        "+bpf,+perfmon,+sys_ptrace",
        "+bpf,+perfmon,+dac_read_search",
    ] {
        let seen = traced_by_nobody(&bins, caps, false);
        assert_eq!(seen.fd_classes_while_running, 0, "{caps}");
    }
}

/// With one of the two missing: exit 2 before anything is loaded, naming
/// the missing capability.
#[test]
#[ignore = "needs root: switches to another user with chosen capabilities"]
fn a_missing_capability_is_named() {
    let bins = Binaries::copy();
    let me = std::process::id().to_string();
    for (caps, missing) in [
        ("+bpf", "CAP_PERFMON"),
        ("+perfmon", "CAP_BPF"),
        ("+sys_admin", "CAP_BPF and CAP_PERFMON"),
    ] {
        let (code, _, stderr) = finish(
            spawn(as_nobody(caps, &bins.path("muxtrace")).args(["--pid", &me])),
            Duration::from_secs(60),
        );
        assert_eq!(code, Some(2), "{caps}: {stderr}");
        assert!(
            stderr.contains(&format!("this process lacks {missing}")),
            "{caps}: {stderr}"
        );
        assert!(stderr.contains("setcap cap_bpf,cap_perfmon+ep"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_detached();
}

/// The unit's `KEY=` values, split on whitespace (the last line of each
/// key wins, as systemd reads it).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// deploy/muxtrace.service, run as systemd would run it as far as
/// capabilities go: its ExecStart's flags (on a free port, a shorter
/// interval) as a user of its own with exactly its ambient capabilities,
/// its bounding set and no_new_privs. A root process's series reach
/// /metrics; with any one of the capabilities taken away it exits with
/// code 2 naming it. `systemd-analyze verify` checks the file where it is
/// installed (systemd need not run).
#[test]
#[ignore = "needs root: switches to another user with chosen capabilities"]
fn the_systemd_units_capabilities_serve_a_fleet() {
    let unit = include_str!("../../deploy/muxtrace.service");
    let ambient = unit_values(unit, "AmbientCapabilities");
    assert_eq!(ambient, unit_values(unit, "CapabilityBoundingSet"));
    assert_eq!(unit_values(unit, "NoNewPrivileges"), ["yes"]);
    let exec = unit_values(unit, "ExecStart");
    assert!(exec.contains(&"--all".to_owned()), "{exec:?}");
    let caps = |of: &[String]| {
        of.iter()
            .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let bins = Binaries::copy();
    let exe = bins.path("muxtrace");
    if let Ok(out) = Command::new("systemd-analyze").arg("--version").output() {
        if out.status.success() {
            let dir = tempfile::tempdir().unwrap();
            let copy = dir.path().join("muxtrace.service");
            let text = unit.replace(&exec[0], exe.to_str().unwrap());
            std::fs::write(&copy, text).unwrap();
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&copy)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The unit's flags, on a free port and every 500 ms.
    let port = free_port();
    let mut args: Vec<String> = exec[1..].to_vec();
    for (flag, value) in [
        ("--prometheus", format!("127.0.0.1:{port}")),
        ("--interval", "500ms".to_owned()),
    ] {
        let at = args.iter().position(|a| a == flag).expect(flag) + 1;
        args[at] = value;
    }
    let as_unit = |with: &[String]| {
        let caps = caps(with);
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--no-new-privs",
        ]);
        if with.is_empty() {
            cmd.arg("--bounding-set=-all");
        } else {
            cmd.args([
                format!("--inh-caps={caps}"),
                format!("--ambient-caps={caps}"),
                format!("--bounding-set=-all,{caps}"),
            ]);
        }
        cmd.arg(&exe).args(&args);
        cmd
    };
    let busy = spawn(Command::new(bins.path("hardship")).args(["steady", "2"]));
    busy.wait_line("ready ", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mt = spawn(&mut as_unit(&ambient));
    mt.wait_line(ATTACHED, ATTACH_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let own = format!(
        "pid=\"{}\",comm=\"hardship\",syscall=\"poll\"}} ",
        busy.pid()
    );
    eventually(
        "root's busy process in /metrics",
        Duration::from_secs(20),
        || {
            let text = http_get(port, "/metrics")?;
            let line = text
                .lines()
                .find(|l| l.starts_with("muxtrace_syscalls_total{") && l.contains(&own))?;
            (line.rsplit(' ').next()?.parse::<f64>().ok()? > 0.0).then_some(())
        },
    );
    mt.signal(libc::SIGTERM);
    finish_ok(mt);
    for missing in 0..ambient.len() {
        let mut fewer = ambient.clone();
        let gone = fewer.remove(missing);
        let (code, _, stderr) = finish(spawn(&mut as_unit(&fewer)), Duration::from_secs(30));
        assert_eq!(code, Some(2), "without {gone}: {stderr}");
        assert!(stderr.contains(&format!("lacks {gone}")), "{stderr}");
    }
}
