//! Bad input gets one sentence, a hint and the documented exit code — never
//! a panic. Each case runs the real binary.
mod common;

use std::{path::Path, process::Command, time::Duration};

use common::*;

/// muxtrace's exit code, stdout and stderr; it must exit within a minute.
fn run(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(MUXTRACE);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (code, stdout, stderr) = finish(spawn(&mut cmd), Duration::from_secs(60));
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    (code.expect("exit code"), stdout, stderr)
}

/// A pid that existed a moment ago and is gone now.
fn vanished_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn missing_pid_is_a_usage_error() {
    let pid = vanished_pid().to_string();
    let (code, _, stderr) = run(&["--pid", &pid, "--summary"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("no process with pid {pid}")),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

/// A process that is there but whose /proc files will not read as one is
/// not called missing: the message names the file and says why.
#[test]
#[ignore = "needs root: mounts over /proc/PID/status in a mount namespace of its own"]
fn a_pid_whose_proc_files_are_hidden_is_not_called_missing() {
    let target = spawn(Command::new("sleep").arg("30"));
    let pid = target.pid();
    let script = format!(
        "mount --bind /dev/null /proc/{pid}/status && exec {} --pid {pid} --summary",
        MUXTRACE
    );
    let (code, _, stderr) = finish(
        spawn(Command::new("unshare").args(["-m", "sh", "-c", &script])),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "/proc/{pid}/status does not read as a process's status file"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("no process with pid"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn pid_zero_is_a_usage_error() {
    let (code, _, stderr) = run(&["--pid", "0"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--pid 0 is not a process id"), "{stderr}");
}

/// A zombie is refused in a sentence, with what still runs: its parent,
/// which has not reaped it (here, this test).
#[test]
fn a_zombie_is_refused_and_its_parent_named() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    eventually("the child's exit", Duration::from_secs(10), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.contains(") Z ").then_some(())
    });
    let (code, _, stderr) = run(&["--pid", &pid.to_string(), "--summary"], &[]);
    child.wait().unwrap();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("process {pid} has exited (it is a zombie")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "its parent, pid {}, has not reaped it",
            std::process::id()
        )),
        "{stderr}"
    );
}

/// A negative pid is a bad pid, said as one — not clap's tip to write
/// `-- -5`, which for muxtrace would start a command named `-5`.
#[test]
fn a_negative_pid_is_a_bad_pid_not_a_flag() {
    let (code, _, stderr) = run(&["--pid", "-5"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--pid -5 is not a process id"), "{stderr}");
    assert!(!stderr.contains("'-- -5'"), "{stderr}");
}

/// A kernel thread: kthreadd (pid 2) where it is one, else the first pid
/// whose flags say PF_KTHREAD.
fn kernel_thread() -> (u32, String) {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let flags = |pid: u32| -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        // Fields after the comm start at field 3 (state); flags is field 9.
        rest.split_whitespace().nth(6)?.parse().ok()
    };
    let comm = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end().to_owned())
            .unwrap_or_default()
    };
    let pids = std::iter::once(2).chain(
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()),
    );
    pids.into_iter()
        .find(|&pid| flags(pid).is_some_and(|f| f & PF_KTHREAD != 0))
        .map(|pid| (pid, comm(pid)))
        .expect("a kernel thread in /proc")
}

/// A kernel thread makes no syscalls: refused before anything is loaded,
/// rather than traced for ever with nothing to show.
#[test]
fn a_kernel_thread_is_refused() {
    let (pid, comm) = kernel_thread();
    let (code, _, stderr) = run(&["--pid", &pid.to_string(), "--summary"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("pid {pid} ({comm}) is a kernel thread")),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn pid_given_twice_is_a_usage_error() {
    let me = std::process::id().to_string();
    let (code, _, stderr) = run(&["--pid", &me, "--pid", &me], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("given twice"), "{stderr}");
}

#[test]
fn bad_flag_is_a_usage_error() {
    let (code, _, stderr) = run(&["--frobnicate"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(&["--pid", "1", "--interval", "soon"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a duration"), "{stderr}");
}

/// Values that once reached `Duration::from_secs_f64`, an `Instant`'s
/// addition or a zero-length tokio interval, and panicked (exit 101 and a
/// backtrace): now each is one clap error naming the value, exit 2.
#[test]
fn absurd_durations_are_usage_errors_not_panics() {
    let me = std::process::id().to_string();
    for (flag, value, why) in [
        (
            "--interval",
            "99999999999999999999999s",
            "is longer than a year",
        ),
        (
            "--duration",
            "10000000000000000000s",
            "is longer than a year",
        ),
        ("--interval", "0.0000000001", "must be a positive duration"),
        ("--duration", "0.0000000001", "must be a positive duration"),
        (
            "--interval",
            "10000000000000000000s",
            "is longer than a year",
        ),
        (
            "--duration",
            "99999999999999999999999s",
            "is longer than a year",
        ),
    ] {
        let (code, stdout, stderr) = run(&["--pid", &me, "--summary", flag, value], &[]);
        assert_eq!(code, 2, "{flag} {value}: {stderr}");
        assert!(stdout.is_empty(), "{flag} {value}: {stdout}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("error: invalid value") && first.contains(value),
            "{flag} {value}: {stderr}"
        );
        assert!(first.contains(why), "{flag} {value}: {stderr}");
        // One sentence and clap's pointer to --help, nothing else.
        let said: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(said.len(), 2, "{flag} {value}: {stderr}");
    }
}

#[test]
fn nothing_to_trace_is_a_usage_error() {
    let (code, _, stderr) = run(&[], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing to trace"), "{stderr}");
}

#[test]
fn too_long_comm_is_a_usage_error() {
    let (code, _, stderr) = run(&["--comm", "a-name-longer-than-fifteen"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("15 bytes"), "{stderr}");
}

#[test]
#[ignore = "needs root: muxtrace checks privileges before it starts the command"]
fn command_not_found_is_a_usage_error() {
    let (code, _, stderr) = run(&["--", "/nonexistent/program"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("command not found"), "{stderr}");
}

/// A traced command that fails or dies says so: muxtrace's own status is
/// 0 (its tracing went well), so the command's end must not be silent.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_command_that_fails_or_dies_is_reported() {
    let (code, _, stderr) = run(&["--summary", "--", "sh", "-c", "exit 3"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("the command sh exited with status 3"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["--summary", "--", "sh", "-c", "kill -SEGV $$"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("the command sh was killed by signal 11"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["--summary", "--", "true"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("the command"),
        "a clean exit is news to no one: {stderr}"
    );
}

#[test]
#[ignore = "needs root: switches to another user to lack it"]
fn no_privileges_is_a_usage_error_with_a_sudo_hint() {
    // Run as nobody, from a copy nobody can execute.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("muxtrace");
    std::fs::copy(MUXTRACE, &exe).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let target = burst(&[]);
    let (code, _, stderr) = finish(
        spawn(
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                ])
                .arg(&exe)
                .args(["--pid", &target.pid().to_string()]),
        ),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("needs root, or CAP_BPF and CAP_PERFMON"),
        "{stderr}"
    );
    assert!(stderr.contains("sudo"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
#[ignore = "needs root: muxtrace checks privileges before it reads the kernel's BTF"]
fn missing_tracepoint_is_named_with_why() {
    let fake = btf_without_name("btf_trace_sched_wakeup");
    let me = std::process::id().to_string();
    let (code, _, stderr) = run(
        &["--pid", &me, "--summary"],
        &[("MUXTRACE_BTF", fake.path())],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the kernel has no tracepoint sched_wakeup"),
        "{stderr}"
    );
    assert!(
        stderr.contains("to count wakeups of blocked threads"),
        "{stderr}"
    );
    assert!(stderr.contains("CONFIG_DEBUG_INFO_BTF"), "{stderr}");
}

#[test]
#[ignore = "needs root: muxtrace checks privileges before it reads the kernel's BTF"]
fn a_kernel_without_btf_is_named() {
    let empty = tempfile::tempdir().unwrap();
    let absent = empty.path().join("vmlinux");
    let me = std::process::id().to_string();
    let (code, _, stderr) = run(&["--pid", &me], &[("MUXTRACE_BTF", &absent)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot read the kernel's BTF type information"),
        "{stderr}"
    );
    assert!(stderr.contains("CONFIG_DEBUG_INFO_BTF=y"), "{stderr}");
}

#[test]
fn help_documents_exit_codes() {
    let (code, stdout, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Exit codes: 0 done"), "{stdout}");
}

/// A usage error: exit 2, the sentence on stderr, and a hint.
fn assert_refused(args: &[&str], sentence: &str) {
    let (code, stdout, stderr) = run(args, &[]);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
    assert!(
        stderr.starts_with(&format!("muxtrace: {sentence}\nhint: ")),
        "{args:?}: {stderr}"
    );
}

#[test]
fn all_with_another_choice_of_processes_is_a_usage_error() {
    let me = std::process::id().to_string();
    for (other, name) in [
        (vec!["--pid", me.as_str()], "--pid"),
        (vec!["--comm", "nginx"], "--comm"),
        (vec!["--cgroup", "/"], "--cgroup"),
        (vec!["--follow"], "--follow"),
        (vec!["--", "true"], "a command"),
    ] {
        let mut args = vec!["--all", "--summary"];
        args.extend(other);
        assert_refused(
            &args,
            &format!(
                "--all traces every process that waits already; {name} cannot be combined with it"
            ),
        );
    }
}

#[test]
fn cgroup_with_comm_follow_or_a_command_is_a_usage_error() {
    for (other, name) in [
        (vec!["--comm", "nginx"], "--comm"),
        (vec!["--follow"], "--follow"),
        (vec!["--", "true"], "a command"),
    ] {
        let mut args = vec!["--cgroup", "/", "--summary"];
        args.extend(other);
        assert_refused(
            &args,
            &format!("--cgroup / traces the cgroup's processes and the children they fork already; {name} cannot be combined with it"),
        );
    }
}

#[test]
fn a_missing_cgroup_is_a_usage_error() {
    assert_refused(
        &["--cgroup", "no-such-cgroup-of-muxtrace", "--summary"],
        "no cgroup no-such-cgroup-of-muxtrace",
    );
}

#[test]
fn a_directory_that_is_no_cgroup_v2_is_a_usage_error() {
    assert_refused(
        &["--cgroup", "/proc", "--summary"],
        "--cgroup /proc is not a cgroup",
    );
    // A cgroup v1 hierarchy's cgroup, where this machine has one (hybrid).
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = mountinfo.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        (after.split_whitespace().next()? == "cgroup")
            .then(|| before.split_whitespace().nth(4).map(str::to_owned))?
    });
    if let Some(v1) = v1 {
        assert_refused(
            &["--cgroup", &v1, "--summary"],
            &format!("--cgroup {v1} is a cgroup v1 hierarchy's; muxtrace follows cgroup v2 only"),
        );
    }
}

#[test]
#[ignore = "needs root: makes a cgroup"]
fn cgroup_with_a_pid_outside_it_is_a_usage_error() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mountinfo
        .lines()
        .find_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            (after.split_whitespace().next()? == "cgroup2").then(|| {
                before
                    .split_whitespace()
                    .nth(4)
                    .map(std::path::PathBuf::from)
            })?
        })
        .expect("a cgroup v2 mount");
    let name = format!("muxtrace-cli-{}", std::process::id());
    let dir = mount.join(&name);
    std::fs::create_dir(&dir).unwrap();
    let me = std::process::id().to_string();
    let (code, _, stderr) = run(&["--cgroup", &name, "--pid", &me, "--summary"], &[]);
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "muxtrace: pid {me} is not in cgroup /{name}\nhint: "
        )),
        "{stderr}"
    );
}

#[test]
fn prometheus_top_zero_or_without_prometheus_is_a_usage_error() {
    assert_refused(
        &["--all", "--prometheus", "0", "--prometheus-top", "0"],
        "--prometheus-top 0 would give no process series of its own",
    );
    assert_refused(
        &["--all", "--summary", "--prometheus-top", "5"],
        "--prometheus-top 5 bounds the series of --prometheus, which is not given",
    );
}

/// An address this machine does not have gets a hint about the address,
/// not about a free port.
#[test]
#[ignore = "needs root: muxtrace checks privileges before it binds"]
fn prometheus_on_an_address_not_of_this_machine_says_so() {
    let me = std::process::id().to_string();
    // TEST-NET-1: documentation only, never a local address.
    let (code, _, stderr) = run(
        &["--pid", &me, "--summary", "--prometheus", "192.0.2.1:9464"],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("hint: 192.0.2.1 is not an address of this machine"),
        "{stderr}"
    );
}
